//! SigV4 request signing with `aws-sigv4`: the one place groupcast computes a signature.
//!
//! Callers put every header they want signed into a [`http::HeaderMap`] first; [`SigV4::sign`]
//! signs all of them (the host comes from the URL, as the server sees it) and adds `authorization`,
//! `x-amz-date` and, for temporary credentials, `x-amz-security-token`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// SigV4 signing name of AppSync (Events and GraphQL).
pub const APPSYNC_SERVICE: &str = "appsync";
/// SigV4 signing name of the IoT Core data plane.
pub const IOT_DATA_SERVICE: &str = "iotdata";

/// What a SigV4 signature is made with: credentials, region and signing name.
#[derive(Debug, Clone, Copy)]
pub struct SigV4<'a> {
    /// The credentials.
    pub credentials: &'a Credentials,
    /// The region, e.g. `us-east-1`.
    pub region: &'a str,
    /// The signing name: [`APPSYNC_SERVICE`] or [`IOT_DATA_SERVICE`].
    pub service: &'a str,
}

impl SigV4<'_> {
    /// Signs a request in place: adds `authorization`, `x-amz-date` and (temporary credentials
    /// only) `x-amz-security-token` to `headers`. Every header already in `headers` is signed,
    /// plus `host` taken from `url`. `url` must be percent-encoded once, as it will be sent; the
    /// canonical URI is encoded again, as AWS expects for every service but S3.
    ///
    /// # Errors
    /// [`Error::Credentials`] when signing fails (a malformed URL or header).
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &mut HeaderMap,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), Error> {
        let identity: Identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::Credentials(format!("SigV4 parameters: {e}")))?
            .into();
        let signable_headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.to_str()?)))
            .collect::<Result<_, http::header::ToStrError>>()
            .map_err(|e| {
                Error::Credentials(format!("SigV4: a header is not visible ASCII: {e}"))
            })?;
        // aws-sigv4 would hash the body with the portable `sha2` crate; aws-lc-rs (already our TLS
        // crypto provider) hashes it with assembly, and the payload hash is most of a publish's
        // SHA-256 work. The canonical request is the same either way (botocore checks it in tests).
        let request = SignableRequest::new(
            method,
            url,
            signable_headers.into_iter(),
            SignableBody::Precomputed(payload_sha256_hex(body)),
        )
        .map_err(|e| Error::Credentials(format!("SigV4 request {url}: {e}")))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| Error::Credentials(format!("SigV4 signing: {e}")))?
            .into_parts();
        let (new_headers, _query) = instructions.into_parts();
        for header in new_headers {
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|e| Error::Credentials(format!("SigV4 header {}: {e}", header.name())))?;
            value.set_sensitive(header.sensitive());
            headers.insert(HeaderName::from_static(header.name()), value);
        }
        Ok(())
    }
}

impl SigV4<'_> {
    /// A presigned URL (SigV4 query authentication): `url` (percent-encoded once, no query) plus
    /// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`
    /// (`host`) and `X-Amz-Signature`, over an empty body. A session token is *not* signed but
    /// appended afterwards as `X-Amz-Security-Token`, as AWS IoT requires for MQTT over WebSocket
    /// (<https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html>).
    ///
    /// # Errors
    /// [`Error::Credentials`] when signing fails (a malformed URL).
    pub fn presign_excluding_token(
        &self,
        method: &str,
        url: &str,
        expires_in: std::time::Duration,
        time: SystemTime,
    ) -> Result<String, Error> {
        use aws_sigv4::http_request::{SessionTokenMode, SignatureLocation};
        let identity: Identity = self.credentials.clone().into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        settings.session_token_mode = SessionTokenMode::Exclude;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| Error::Credentials(format!("SigV4 parameters: {e}")))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            std::iter::empty(),
            SignableBody::Precomputed(payload_sha256_hex(b"")),
        )
        .map_err(|e| Error::Credentials(format!("SigV4 request {url}: {e}")))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| Error::Credentials(format!("SigV4 signing: {e}")))?
            .into_parts();
        let (_headers, query) = instructions.into_parts();
        let mut out = String::from(url);
        for (i, (name, value)) in query.iter().enumerate() {
            out.push(if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            });
            out.push_str(name);
            out.push('=');
            out.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
        }
        Ok(out)
    }
}

/// RFC 3986 unreserved characters stay, everything else is encoded, as SigV4 encodes query values.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Lowercase hex SHA-256 of `body`, as SigV4's canonical request wants it. Written out rather
/// than `hex::encode`, which cost about 1k more instructions per signature (`bench/instructions.sh`).
fn payload_sha256_hex(body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Signs a request in place; the same as [`SigV4::sign`] with the parts given one by one.
///
/// # Errors
/// As [`SigV4::sign`].
// One flat call for callers that hold the parts (the benchmark).
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), Error> {
    SigV4 {
        credentials,
        region,
        service,
    }
    .sign(method, url, headers, body, time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    // 2024-01-01T00:00:00Z
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_704_067_200)
    }

    #[test]
    fn signs_every_given_header_and_the_host() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        SigV4 {
            credentials: &creds(None),
            region: "us-east-1",
            service: "appsync",
        }
        .sign("POST", "https://h.example/event", &mut h, b"{}", t0())
        .unwrap();
        let auth = h["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/appsync/aws4_request, \
             SignedHeaders=accept;content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );
        assert_eq!(h["x-amz-date"], "20240101T000000Z");
        assert!(!h.contains_key("x-amz-security-token"));
    }

    #[test]
    fn signs_the_session_token_when_there_is_one() {
        let mut h = HeaderMap::new();
        SigV4 {
            credentials: &creds(Some("TOKEN")),
            region: "eu-west-1",
            service: "iotdata",
        }
        .sign("POST", "https://h.example/x", &mut h, b"", t0())
        .unwrap();
        assert_eq!(h["x-amz-security-token"], "TOKEN");
        assert!(
            h["authorization"]
                .to_str()
                .unwrap()
                .contains("SignedHeaders=host;x-amz-date;x-amz-security-token")
        );
    }

    #[test]
    fn sign_headers_is_sigv4_sign() {
        let c = creds(Some("T"));
        let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
        sign_headers(
            "POST",
            "https://h.example/x",
            &mut a,
            b"x",
            &c,
            "us-east-1",
            "appsync",
            t0(),
        )
        .unwrap();
        SigV4 {
            credentials: &c,
            region: "us-east-1",
            service: "appsync",
        }
        .sign("POST", "https://h.example/x", &mut b, b"x", t0())
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_presigned_url_signs_without_the_session_token_and_appends_it_after() {
        let presign = |token: Option<&str>| {
            SigV4 {
                credentials: &creds(token),
                region: "us-east-1",
                service: "iotdevicegateway",
            }
            .presign_excluding_token(
                "GET",
                "https://a-ats.iot.us-east-1.amazonaws.com/mqtt",
                std::time::Duration::from_secs(300),
                t0(),
            )
            .unwrap()
        };
        let with = presign(Some("to/ken+="));
        let without = presign(None);
        assert!(
            without.starts_with(
                "https://a-ats.iot.us-east-1.amazonaws.com/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&\
                 X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fiotdevicegateway%2Faws4_request&\
                 X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="
            ),
            "{without}"
        );
        // The token is not signed: the same signature, the token appended, encoded.
        assert_eq!(
            with,
            format!("{without}&X-Amz-Security-Token=to%2Fken%2B%3D")
        );
    }

    #[test]
    fn the_signature_depends_on_the_body() {
        let sig = |body: &[u8]| {
            let mut h = HeaderMap::new();
            SigV4 {
                credentials: &creds(None),
                region: "us-east-1",
                service: "appsync",
            }
            .sign("POST", "https://h.example/x", &mut h, body, t0())
            .unwrap();
            h["authorization"].to_str().unwrap().to_owned()
        };
        assert_ne!(sig(b"a"), sig(b"b"));
        assert_eq!(sig(b"a"), sig(b"a"));
    }
}
