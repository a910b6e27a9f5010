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
    fn rejects_wildcard_and_reserved_prefixes() {
        for p in ["", "$aws", "a/+", "a/#", "a//b", "a/"] {
            assert!(check_prefix(p).is_err(), "{p:?}");
        }
        assert!(check_prefix("org/app").is_ok());
    }
}
