//! SigV4 verification by recomputation: the caller's signature is checked by signing the same
//! request again with AWS's own signer (aws-sigv4) and the secret key the access key id names, and
//! comparing in constant time. No hand-written canonicalisation or HMAC.
//!
//! Two shapes: header-signed requests (`Authorization: AWS4-HMAC-SHA256 Credential=…,
//! SignedHeaders=…, Signature=…`, e.g. AppSync HTTP and the Events WebSocket `header-` map) and
//! presigned URLs (`X-Amz-Signature` in the query, the IoT MQTT-over-WSS connect)
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};

/// How far a request's `x-amz-date` may lie from now: AWS refuses a signature more than 15
/// minutes off ("Signature expired" / `RequestTimeTooSkewed`,
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/signing-elements.html#signing-elements-timestamp).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The longest presigned-URL lifetime SigV4 allows, 7 days (`X-Amz-Expires`,
/// https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
const MAX_EXPIRES: u64 = 7 * 24 * 3600;

/// The parts of a SigV4 `Credential`: `AKID/yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

/// A signature that did not verify, and why (for logs; callers answer AWS's generic error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SigV4Error(pub String);

fn err(msg: impl Into<String>) -> SigV4Error {
    SigV4Error(msg.into())
}

fn parse_scope(credential: &str) -> Result<Scope, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"]
            if !akid.is_empty() && date.len() == 8 && !region.is_empty() && !service.is_empty() =>
        {
            Ok(Scope {
                access_key_id: (*akid).to_owned(),
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
            })
        }
        _ => Err(err(format!(
            "Credential {credential:?}: not AKID/yyyymmdd/region/service/aws4_request"
        ))),
    }
}

/// `yyyymmddThhmmssZ` → time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` split.
fn parse_authorization(value: &str) -> Result<(Scope, Vec<String>, String), SigV4Error> {
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| err("Authorization: not AWS4-HMAC-SHA256"))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let scope = parse_scope(credential.ok_or_else(|| err("Authorization: no Credential"))?)?;
    let signed: Vec<String> = signed
        .ok_or_else(|| err("Authorization: no SignedHeaders"))?
        .split(';')
        .map(str::to_owned)
        .collect();
    let signature = signature.ok_or_else(|| err("Authorization: no Signature"))?;
    Ok((scope, signed, signature.to_owned()))
}

/// The access key id and session token a header-signed request names, before any check (to look
/// up the secret key).
pub fn header_credentials(
    headers: &BTreeMap<String, String>,
) -> Result<(Scope, Option<String>), SigV4Error> {
    let auth = headers
        .get("authorization")
        .ok_or_else(|| err("no Authorization header"))?;
    let (scope, _, _) = parse_authorization(auth)?;
    Ok((scope, headers.get("x-amz-security-token").cloned()))
}

/// What is being verified against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The region the scope must name.
    pub region: &'a str,
    /// The service the scope must name (`appsync`, `iotdevicegateway`).
    pub service: &'a str,
    /// Now.
    pub now: SystemTime,
}

fn check_scope(
    scope: &Scope,
    amz_date: &str,
    expect: &Expect<'_>,
) -> Result<SystemTime, SigV4Error> {
    if scope.region != expect.region || scope.service != expect.service {
        return Err(err(format!(
            "Credential scope {}/{}: must be {}/{}",
            scope.region, scope.service, expect.region, expect.service
        )));
    }
    if !amz_date.starts_with(&scope.date) {
        return Err(err(format!(
            "Credential date {} does not match X-Amz-Date {amz_date}",
            scope.date
        )));
    }
    parse_amz_date(amz_date)
        .ok_or_else(|| err(format!("X-Amz-Date {amz_date:?}: not yyyymmddThhmmssZ")))
}

fn skewed(signed_at: SystemTime, now: SystemTime) -> bool {
    let diff = match now.duration_since(signed_at) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    diff > MAX_SKEW
}

/// The request as the signer sees it.
struct ToSign<'a> {
    method: &'a str,
    uri: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

fn signature_of(
    req: &ToSign<'_>,
    scope: &Scope,
    secret: &str,
    at: SystemTime,
    settings: SigningSettings,
) -> Result<String, SigV4Error> {
    let credentials = aws_credential_types::Credentials::new(
        scope.access_key_id.clone(),
        secret.to_owned(),
        None,
        None,
        "groupcast-dev",
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&scope.region)
        .name(&scope.service)
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| err(format!("signing parameters: {e}")))?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.uri,
        req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| err(format!("request: {e}")))?;
    let out = sign(signable, &params).map_err(|e| err(format!("signing: {e}")))?;
    Ok(out.signature().to_owned())
}

fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// A URI aws-sigv4 can sign: `https://{host}{path}[?{query}]`. Checked here, so the signer's
/// own expectations (an authority) always hold.
fn uri(host: &str, path: &str, query: &str) -> Result<String, SigV4Error> {
    if host.is_empty() || !path.starts_with('/') {
        return Err(err("host and path are required"));
    }
    let uri = if query.is_empty() {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}{path}?{query}")
    };
    match uri.parse::<http::Uri>() {
        Ok(u) if u.authority().is_some() && u.host().is_some() => Ok(uri),
        _ => Err(err(format!("{uri:?} is not a valid request URI"))),
    }
}

/// One header-signed request.
#[derive(Debug, Clone, Copy)]
pub struct HeaderSigned<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string (`""` for none).
    pub query: &'a str,
    /// Lower-case header names.
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
}

/// Verifies a header-signed request whose secret key is `secret`. `host` and `x-amz-date` must be
/// signed, as AWS requires
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
pub fn verify_headers(
    req: &HeaderSigned<'_>,
    secret: &str,
    expect: &Expect<'_>,
) -> Result<Scope, SigV4Error> {
    let auth = req
        .headers
        .get("authorization")
        .ok_or_else(|| err("no Authorization header"))?;
    let (scope, signed, signature) = parse_authorization(auth)?;
    for required in ["host", "x-amz-date"] {
        if !signed.iter().any(|h| h == required) {
            return Err(err(format!("SignedHeaders must include {required}")));
        }
    }
    let amz_date = req
        .headers
        .get("x-amz-date")
        .ok_or_else(|| err("no X-Amz-Date header"))?;
    let at = check_scope(&scope, amz_date, expect)?;
    if skewed(at, expect.now) {
        return Err(err(
            "Signature expired: X-Amz-Date is more than 15 minutes from now",
        ));
    }
    let mut headers = Vec::with_capacity(signed.len());
    for name in &signed {
        if name.is_empty() || name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err(format!(
                "SignedHeaders entry {name:?} is not a lower-case name"
            )));
        }
        if name == "x-amz-date" {
            continue; // the signer adds it from `at`
        }
        let value = req
            .headers
            .get(name)
            .ok_or_else(|| err(format!("signed header {name} is missing")))?;
        headers.push((name.clone(), value.clone()));
    }
    let host = req.headers.get("host").map(String::as_str).unwrap_or("");
    let uri = uri(host, req.path, req.query)?;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::Headers;
    // Sign exactly the headers the caller signed: none excluded, none added but x-amz-date.
    settings.excluded_headers = Some(Vec::new());
    let to_sign = ToSign {
        method: req.method,
        uri: &uri,
        headers: &headers,
        body: req.body,
    };
    let ours = signature_of(&to_sign, &scope, secret, at, settings)?;
    if same(&ours, &signature) {
        Ok(scope)
    } else {
        Err(err(
            "The request signature we calculated does not match the signature you provided",
        ))
    }
}

/// One presigned URL.
#[derive(Debug, Clone, Copy)]
pub struct Presigned<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    /// The raw query string as sent.
    pub query: &'a str,
}

/// The decoded query parameters, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', "%20"))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// The access key id and session token of a presigned URL, before any check.
pub fn presigned_credentials(query: &str) -> Result<(Scope, Option<String>), SigV4Error> {
    let pairs = query_pairs(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scope = parse_scope(&get("X-Amz-Credential").ok_or_else(|| err("no X-Amz-Credential"))?)?;
    Ok((scope, get("X-Amz-Security-Token")))
}

/// Verifies a presigned URL whose secret key is `secret`. The session token may have been signed
/// (in the query before signing) or appended after signing, as the AWS IoT WebSocket connect
/// does: "append `X-Amz-Security-Token` … after signing"
/// (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html#mqtt-ws, the SigV4
/// steps for MQTT over WebSocket). Both are accepted.
pub fn verify_presigned(
    req: &Presigned<'_>,
    secret: &str,
    expect: &Expect<'_>,
) -> Result<Scope, SigV4Error> {
    let pairs = query_pairs(req.query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
        return Err(err("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let scope = parse_scope(get("X-Amz-Credential").ok_or_else(|| err("no X-Amz-Credential"))?)?;
    let amz_date = get("X-Amz-Date").ok_or_else(|| err("no X-Amz-Date"))?;
    let signature = get("X-Amz-Signature").ok_or_else(|| err("no X-Amz-Signature"))?;
    let signed: Vec<&str> = get("X-Amz-SignedHeaders")
        .ok_or_else(|| err("no X-Amz-SignedHeaders"))?
        .split(';')
        .collect();
    if signed != ["host"] {
        return Err(err("X-Amz-SignedHeaders must be host"));
    }
    let expires: u64 = get("X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .filter(|e| (1..=MAX_EXPIRES).contains(e))
        .ok_or_else(|| err("X-Amz-Expires must be 1-604800 seconds"))?;
    let at = check_scope(&scope, amz_date, expect)?;
    if at > expect.now + MAX_SKEW {
        return Err(err("X-Amz-Date lies in the future"));
    }
    if expect.now > at + Duration::from_secs(expires) {
        return Err(err("Request has expired (X-Amz-Date + X-Amz-Expires)"));
    }
    let signer_params = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let rebuild = |keep_token: bool| -> String {
        pairs
            .iter()
            .filter(|(k, _)| !signer_params.contains(&k.as_str()))
            .filter(|(k, _)| keep_token || k != "X-Amz-Security-Token")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let headers = vec![("host".to_owned(), req.host.to_owned())];
    let has_token = get("X-Amz-Security-Token").is_some();
    let variants: &[bool] = if has_token { &[false, true] } else { &[false] };
    for &keep_token in variants {
        let uri = uri(req.host, req.path, &rebuild(keep_token))?;
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
        settings.session_token_mode = SessionTokenMode::Exclude;
        settings.excluded_headers = Some(Vec::new());
        let to_sign = ToSign {
            method: req.method,
            uri: &uri,
            headers: &headers,
            body: b"",
        };
        let ours = signature_of(&to_sign, &scope, secret, at, settings)?;
        if same(&ours, signature) {
            return Ok(scope);
        }
    }
    Err(err(
        "The request signature we calculated does not match the signature you provided",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_to_their_instant_and_malformed_ones_do_not() {
        let t = parse_amz_date("20240101T000000Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_704_067_200
        );
        let t = parse_amz_date("20000229T235959Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 951_868_799);
        for bad in [
            "",
            "20240101T000000",
            "2024-01-01T00:00:00Z",
            "20241301T000000Z",
            "2024010xT000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_request_signed_by_aws_sigv4_verifies_and_a_changed_body_does_not() {
        let mut headers = BTreeMap::new();
        headers.insert("host".to_owned(), "example.test:4510".to_owned());
        headers.insert("content-type".to_owned(), "application/json".to_owned());
        let now = SystemTime::now();
        let scope = Scope {
            access_key_id: "AKIDEXAMPLE".into(),
            date: String::new(),
            region: "us-east-1".into(),
            service: "appsync".into(),
        };
        // Sign with the real signer, then verify.
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::Headers;
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
        let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&scope.region)
            .name(&scope.service)
            .time(now)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let pairs: Vec<(String, String)> = headers.clone().into_iter().collect();
        let signable = SignableRequest::new(
            "POST",
            "https://example.test:4510/event",
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(b"{}"),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (k, v) in instructions.headers() {
            headers.insert(k.to_ascii_lowercase(), v.to_owned());
        }
        let expect = Expect {
            region: "us-east-1",
            service: "appsync",
            now,
        };
        let req = HeaderSigned {
            method: "POST",
            path: "/event",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        verify_headers(&req, "secret", &expect).unwrap();
        assert!(verify_headers(&req, "other", &expect).is_err());
        let tampered = HeaderSigned {
            body: b"{\"a\":1}",
            ..req
        };
        assert!(verify_headers(&tampered, "secret", &expect).is_err());
        let later = Expect {
            now: now + Duration::from_secs(16 * 60),
            ..expect
        };
        assert!(verify_headers(&req, "secret", &later).is_err());
        let other_service = Expect {
            service: "iotdevicegateway",
            ..expect
        };
        assert!(verify_headers(&req, "secret", &other_service).is_err());
    }
}
