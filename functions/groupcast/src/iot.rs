//! The IoT Core data plane transport: `POST {endpoint}/topics/{url-encoded topic}?qos=1`, signed
//! for `iotdata`, one request per (message, group), the envelope JSON as the payload.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;
use crate::limits::{IOT_PAYLOAD_MAX_BYTES, IOT_TOPIC_MAX_BYTES, IOT_TOPIC_MAX_SLASHES};

/// Everything but RFC 3986 unreserved characters is encoded, `/` included: the topic is one path
/// segment of the URL.
const TOPIC_IN_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The IoT topic of `topic` for a group: `{prefix}/{segment}/{topic}`.
pub fn topic(prefix: &str, segment: &str, topic: &str) -> String {
    format!("{prefix}/{segment}/{topic}")
}

/// The publish URL for `topic` under `base` (`https://…-ats.iot.…amazonaws.com`).
pub fn publish_url(base: &str, topic: &str) -> String {
    format!(
        "{base}/topics/{}?qos=1",
        utf8_percent_encode(topic, TOPIC_IN_PATH)
    )
}

/// Bytes in an MQTT client id IoT Core accepts.
pub const CLIENT_ID_MAX_BYTES: usize = 128;

/// The rule of a Cognito identity id, in words.
pub const IDENTITY_ID_RULE: &str =
    "must be a Cognito identity id: <region>:<uuid>, at most 55 characters";

/// Whether `identity_id` looks like a Cognito identity id (`<region>:<uuid>`, at most 55
/// characters): the one rule for the IoT grant's target (`groupcast_auth::grant`) and the client
/// id ([`client_id`]).
pub fn is_identity_id(identity_id: &str) -> bool {
    identity_id.len() <= 55
        && identity_id.split_once(':').is_some_and(|(region, id)| {
            !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !id.is_empty()
                && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        })
}

/// The MQTT client id a subscriber connects with: the Cognito identity id, or the identity id +
/// `-` + `suffix`, the two forms the group policy's `iot:Connect` allows
/// (`client/${cognito-identity.amazonaws.com:sub}` and `…:sub}-*`,
/// `templates/iot/group-policy.json.tera`; clients/js `iotClientId` is the same rule). A suffix lets
/// one user hold several connections, since a second connection with a client id in use
/// disconnects the first
/// (<https://docs.aws.amazon.com/iot-device-defender/latest/devguide/audit-chk-conflicting-client-ids.html>).
///
/// # Errors
/// [`Error::Invalid`] naming `identity_id` (not `<region>:<uuid>`, at most 55 characters) or
/// `suffix` (not 1+ characters of `[A-Za-z0-9_-]`, or the id would pass 128 bytes).
pub fn client_id(identity_id: &str, suffix: Option<&str>) -> Result<String, Error> {
    if !is_identity_id(identity_id) {
        return Err(Error::invalid(
            "identityId",
            format!("identityId {identity_id:?}: {IDENTITY_ID_RULE}"),
        ));
    }
    let Some(suffix) = suffix else {
        return Ok(identity_id.to_owned());
    };
    let max = CLIENT_ID_MAX_BYTES - identity_id.len() - 1;
    if suffix.is_empty()
        || suffix.len() > max
        || !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid(
            "suffix",
            format!(
                "client id suffix {suffix:?}: must be 1-{max} characters of [A-Za-z0-9_-], so that the client id stays within IoT Core's {CLIENT_ID_MAX_BYTES} bytes"
            ),
        ));
    }
    Ok(format!("{identity_id}-{suffix}"))
}

/// Checks a topic prefix: non-empty levels, no wildcards, not a reserved `$` topic.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    const RULE: &str = "an IoT topic prefix is one or more non-empty levels joined by '/', without \
                        '+', '#', '*', '?' or a leading '$'";
    let bad = prefix.is_empty()
        || prefix.starts_with('$')
        || prefix.split('/').any(str::is_empty)
        || prefix.contains(['+', '#', '*', '?', '\0']);
    if bad {
        return Err(Error::invalid(
            "iot.topic_prefix",
            format!("{prefix:?}: {RULE}"),
        ));
    }
    Ok(())
}

/// Checks a topic and a payload against the IoT limits.
pub(crate) fn check(field: &str, topic: &str, payload_len: usize) -> Result<(), Error> {
    if topic.len() > IOT_TOPIC_MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "IoT topic {topic:?} is {} bytes; IoT Core allows at most {IOT_TOPIC_MAX_BYTES} \
                 (limits::IOT_TOPIC_MAX_BYTES)",
                topic.len()
            ),
        ));
    }
    let slashes = topic.matches('/').count();
    if slashes > IOT_TOPIC_MAX_SLASHES {
        return Err(Error::invalid(
            field,
            format!(
                "IoT topic {topic:?} has {slashes} '/'; IoT Core allows at most \
                 {IOT_TOPIC_MAX_SLASHES} (limits::IOT_TOPIC_MAX_SLASHES)"
            ),
        ));
    }
    if payload_len > IOT_PAYLOAD_MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "as an IoT payload (the envelope JSON) it is {payload_len} bytes; IoT Core allows \
                 at most {IOT_PAYLOAD_MAX_BYTES} (limits::IOT_PAYLOAD_MAX_BYTES)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_whole_topic_as_one_path_segment() {
        assert_eq!(
            publish_url(
                "https://x-ats.iot.us-east-1.amazonaws.com",
                "gc/x--a-2fb/t/u"
            ),
            "https://x-ats.iot.us-east-1.amazonaws.com/topics/gc%2Fx--a-2fb%2Ft%2Fu?qos=1"
        );
    }

    #[test]
    fn checks_topic_bytes_slashes_and_payload() {
        assert!(check("data", "a/b/c/d/e/f/g/h", 10).is_ok());
        let e = check("data", "a/b/c/d/e/f/g/h/i", 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("8 '/'"), "{e}");
        assert!(check("data", &"a".repeat(256), 10).is_ok());
        assert!(check("data", &"a".repeat(257), 10).is_err());
        assert!(check("data", "a", 128_000).is_ok());
        assert!(
            check("data", "a", 128_001)
                .unwrap_err()
                .to_string()
                .contains("128000")
        );
    }

    #[test]
    fn a_client_id_is_the_identity_id_or_the_identity_id_dash_suffix_within_128_bytes() {
        let id = "eu-west-1:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert_eq!(client_id(id, None).unwrap(), id);
        assert_eq!(client_id(id, Some("tab-2")).unwrap(), format!("{id}-tab-2"));
        let longest = "x".repeat(CLIENT_ID_MAX_BYTES - id.len() - 1);
        assert_eq!(
            client_id(id, Some(&longest)).unwrap().len(),
            CLIENT_ID_MAX_BYTES
        );
        let field = |e: Error| match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        for bad in [
            "team-a",
            "",
            "EU:abc",
            "eu-west-1:",
            "eu:1:2",
            "eu-west-1:xyz",
        ] {
            assert_eq!(
                field(client_id(bad, None).unwrap_err()),
                "identityId",
                "{bad:?}"
            );
        }
        for bad in ["", "a b", "a/b", "+", "#", "é", &format!("{longest}x")] {
            assert_eq!(
                field(client_id(id, Some(bad)).unwrap_err()),
                "suffix",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_wildcard_and_reserved_prefixes() {
        for p in ["", "$aws", "a/+", "a/#", "a//b", "a/"] {
            assert!(check_prefix(p).is_err(), "{p:?}");
        }
        assert!(check_prefix("org/app").is_ok());
    }
}
