//! The SHA-256 work that one SigV4 signature of the benchmark's request cannot avoid, so that
//! `sign` can say how much of its time is hashing and how much is everything else.
//!
//! A SigV4 signature hashes the body, hashes the canonical request, derives the signing key
//! (four chained HMAC-SHA256) and HMACs the string to sign. The floor does exactly that work for
//! the benchmark's request, with the very functions and inputs `aws-sigv4` uses:
//! [`aws_sigv4::sign::v4::generate_signing_key`] and [`aws_sigv4::sign::v4::calculate_signature`]
//! (public in `aws-sigv4`), `sha2` at the version `aws-sigv4` hashes with, the canonical request
//! `aws-sigv4` itself built (read from its trace event), and aws-lc-rs for the body, as groupcast
//! hashes it. Nothing here signs a request: it only times the hashing.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use sha2_sigv4::{Digest, Sha256};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The hashing inputs of one signature of a request.
#[derive(Debug, Clone)]
pub(crate) struct SigningWork {
    pub(crate) body: Vec<u8>,
    pub(crate) canonical_request: String,
    pub(crate) secret: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) time: SystemTime,
}

impl SigningWork {
    /// The hashing a signature of this request does; returns the signature so that none of it
    /// can be optimised away.
    pub(crate) fn hash(&self) -> String {
        let payload = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.body);
        let creq = Sha256::digest(self.canonical_request.as_bytes());
        let key = self.signing_key();
        // Same length as the real string to sign: algorithm, date-time, scope, request hash.
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}/{}/{}/aws4_request\n{}",
            "20240101T000000Z",
            "20240101",
            self.region,
            self.service,
            hex::encode(creq)
        );
        std::hint::black_box(payload);
        aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes())
    }

    /// The signing key derivation alone: four HMAC-SHA256 that `aws-sigv4` repeats per request.
    pub(crate) fn signing_key(&self) -> impl AsRef<[u8]> + use<> {
        aws_sigv4::sign::v4::generate_signing_key(
            &self.secret,
            self.time,
            &self.region,
            &self.service,
        )
    }
}

/// Runs `sign` once and returns the canonical request `aws-sigv4` built for it, from the
/// `canonical_request` field of its trace event.
pub(crate) fn capture_canonical_request(sign: impl FnOnce()) -> anyhow::Result<String> {
    let seen = Arc::new(Mutex::new(None));
    let subscriber = tracing_subscriber::registry().with(CanonicalRequestLayer(Arc::clone(&seen)));
    tracing::subscriber::with_default(subscriber, sign);
    let captured = seen
        .lock()
        .map_err(|_| anyhow::anyhow!("capture lock poisoned"))?
        .take();
    captured.ok_or_else(|| anyhow::anyhow!("aws-sigv4 logged no canonical_request trace event"))
}

/// Keeps the `canonical_request` field of the events it sees.
struct CanonicalRequestLayer(Arc<Mutex<Option<String>>>);

impl<S: tracing::Subscriber> Layer<S> for CanonicalRequestLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        struct Find(Option<String>);
        impl Visit for Find {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "canonical_request" {
                    // `%value` fields arrive as Display wrapped in Debug: this is the text.
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut find = Find(None);
        event.record(&mut find);
        if let (Some(found), Ok(mut slot)) = (find.0, self.0.lock()) {
            *slot = Some(found);
        }
    }
}

/// The work of one signature of `body` with `headers` signed by `credentials`.
pub(crate) fn signing_work(
    body: &[u8],
    canonical_request: String,
    credentials: &Credentials,
    region: &str,
    service: &str,
) -> SigningWork {
    SigningWork {
        body: body.to_vec(),
        canonical_request,
        secret: credentials.secret_access_key().to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        time: SystemTime::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{credentials, serialize_and_sign};

    #[test]
    fn the_captured_canonical_request_is_the_one_signed() {
        let creds = credentials();
        let msgs: Vec<groupcast::Message> = (0..5)
            .map(|_| {
                groupcast::Message::builder("load/test")
                    .group("readers")
                    .build()
                    .unwrap()
            })
            .collect();
        let mut signed = None;
        let creq = capture_canonical_request(|| {
            signed = Some(serialize_and_sign(
                "https://h.example/event",
                "/bench/readers/load/test",
                &msgs,
                &creds,
                "us-east-1",
            ));
        })
        .unwrap();
        let signed = signed.unwrap().unwrap();
        // SigV4's canonical request: method, path, query, headers, signed header list, payload hash.
        let lines: Vec<&str> = creq.lines().collect();
        assert_eq!(lines[0], "POST");
        assert_eq!(lines[1], "/event");
        assert!(lines.contains(&"host:h.example"), "{creq}");
        assert!(
            lines.contains(&"accept;content-encoding;content-type;host;x-amz-date"),
            "{creq}"
        );
        let payload = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &signed.body);
        assert_eq!(*lines.last().unwrap(), hex::encode(payload));
    }

    #[test]
    fn the_floor_uses_the_signers_key_derivation() {
        let w = signing_work(b"{}", "x".into(), &credentials(), "us-east-1", "appsync");
        let a = w.signing_key();
        let b = aws_sigv4::sign::v4::generate_signing_key(
            credentials().secret_access_key(),
            w.time,
            "us-east-1",
            "appsync",
        );
        assert_eq!(a.as_ref(), b.as_ref());
        assert_eq!(w.hash().len(), 64);
    }
}
