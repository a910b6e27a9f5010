//! AppSync Events over HTTP: channels, batching and the publish response.
//!
//! A message to N groups goes to N channels `/{namespace}/{group segment}/{topic}`. Events for one
//! channel (from one or many messages) are batched up to [`EVENTS_PER_PUBLISH`] per request and
//! [`EVENTS_REQUEST_MAX_BYTES`] per body. Each event is the message envelope's JSON *text*,
//! carried as a JSON string. The response names each event by its index in the request, as
//! `successful` or `failed`; failed entries come spelled `code`/`message` or
//! `errorCode`/`errorMessage`, and both are read. The publisher re-sends the failed events whose
//! code is transient ([`crate::retry::is_transient_code`]), alone and byte for byte.

use serde::Deserialize;

use crate::error::Error;
use crate::limits::{
    EPOCH_TOPIC_MAX_SEGMENTS, EVENT_MAX_BYTES, EVENTS_PER_PUBLISH, EVENTS_REQUEST_MAX_BYTES,
};

/// The channel of `topic` for a group: `/{namespace}/{segment}/{topic}`.
pub fn channel(namespace: &str, segment: &str, topic: &str) -> String {
    format!("/{namespace}/{segment}/{topic}")
}

/// The channel of `topic` for a group in epoch `epoch`: `/{namespace}/{segment}/t{epoch}/{topic}`
/// in a time-sliced namespace ([`crate::epoch`]), [`channel`] when `epoch` is `None`.
///
/// ```
/// use groupcast::events::epoch_channel;
/// assert_eq!(epoch_channel("live", "team-a", Some(42), "jobs"), "/live/team-a/t42/jobs");
/// assert_eq!(epoch_channel("live", "team-a", None, "jobs"), "/live/team-a/jobs");
/// ```
pub fn epoch_channel(namespace: &str, segment: &str, epoch: Option<u64>, topic: &str) -> String {
    match epoch {
        Some(n) => format!(
            "/{namespace}/{segment}/{}/{topic}",
            crate::epoch::segment(n)
        ),
        None => channel(namespace, segment, topic),
    }
}

/// In a time-sliced namespace the epoch segment takes one of the channel's segments: a topic has at
/// most [`EPOCH_TOPIC_MAX_SEGMENTS`] (a final `*` of a subscription included).
pub(crate) fn check_epoch_topic(field: &str, topic: &str) -> Result<(), Error> {
    let n = topic.split('/').count();
    if n > EPOCH_TOPIC_MAX_SEGMENTS {
        return Err(Error::invalid(
            field,
            format!(
                "{topic:?} has {n} segments; in a time-sliced namespace (epoch_seconds) a channel is \
                 /{{namespace}}/{{group}}/t{{epoch}}/{{topic}}, so a topic has at most \
                 {EPOCH_TOPIC_MAX_SEGMENTS} (limits::EPOCH_TOPIC_MAX_SEGMENTS)"
            ),
        ));
    }
    Ok(())
}

/// The headers AWS documents for an IAM-signed publish to AppSync Events (HTTP `POST /event`, and
/// the WebSocket transport's IAM auth objects), before signing: sign all of them, plus `host`.
///
/// ```
/// let headers = groupcast::events::iam_headers();
/// assert_eq!(headers["content-encoding"], "amz-1.0");
/// assert_eq!(headers.len(), 3);
/// ```
pub fn iam_headers() -> http::HeaderMap {
    use http::HeaderValue;
    let mut headers = http::HeaderMap::with_capacity(3);
    headers.insert(
        "accept",
        HeaderValue::from_static("application/json, text/javascript"),
    );
    headers.insert("content-encoding", HeaderValue::from_static("amz-1.0"));
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    headers
}

/// Checks one event (the envelope JSON text) against the per-event limit.
pub(crate) fn check_event(field: &str, event: &str) -> Result<(), Error> {
    if event.len() > EVENT_MAX_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "as an AppSync event (the envelope JSON) it is {} bytes; an event holds at most \
                 {EVENT_MAX_BYTES} bytes (limits::EVENT_MAX_BYTES) and AppSync drops larger ones \
                 silently",
                event.len()
            ),
        ));
    }
    Ok(())
}

/// One request's worth of events for one channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch<K> {
    /// What each event stands for, by its index in the request.
    pub(crate) keys: Vec<K>,
    /// The request body `{"channel":…,"events":[…]}`.
    pub(crate) body: Vec<u8>,
    /// Where each event (a JSON string) lies in `body`, so that a retry of some events resends
    /// exactly their bytes ([`subset_body`]).
    pub(crate) spans: Vec<std::ops::Range<usize>>,
}

/// The body of a request for some events of `body` (by their index), each byte for byte as in
/// `body`: what a retry of only those events sends.
pub(crate) fn subset_body(
    body: &[u8],
    spans: &[std::ops::Range<usize>],
    which: &[usize],
) -> Vec<u8> {
    let head = spans.first().map_or(0, |s| s.start);
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(&body[..head]);
    for (n, &i) in which.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&body[spans[i].clone()]);
    }
    out.extend_from_slice(BODY_TAIL.as_bytes());
    out
}

const BODY_HEAD: &str = "{\"channel\":";
const BODY_MID: &str = ",\"events\":[";
const BODY_TAIL: &str = "]}";

/// The body of one publish request: `{"channel":…,"events":[…]}` with each event (JSON text) as a
/// JSON string, byte for byte as the publisher sends it. The caller keeps to the limits; the
/// publisher itself batches with them.
pub fn publish_body(channel: &str, events: &[impl AsRef<str>]) -> Vec<u8> {
    let channel_json = serde_json::to_string(channel).expect("a string serializes");
    let encoded: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e.as_ref()).expect("a string serializes"))
        .collect();
    assemble(&channel_json, &encoded).0
}

/// The body, and where each event lies in it.
fn assemble(channel_json: &str, encoded: &[String]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let len = BODY_HEAD.len()
        + channel_json.len()
        + BODY_MID.len()
        + encoded.iter().map(|e| e.len() + 1).sum::<usize>()
        + BODY_TAIL.len();
    let mut body = String::with_capacity(len);
    let mut spans = Vec::with_capacity(encoded.len());
    body.push_str(BODY_HEAD);
    body.push_str(channel_json);
    body.push_str(BODY_MID);
    for (i, e) in encoded.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        spans.push(body.len()..body.len() + e.len());
        body.push_str(e);
    }
    body.push_str(BODY_TAIL);
    (body.into_bytes(), spans)
}

/// Splits a channel's events into requests of at most 5 events and 1.2 MB, keeping their order.
///
/// # Errors
/// [`Error::Invalid`] when one event alone would not fit a request body.
pub(crate) fn batches<K: Clone>(
    channel: &str,
    events: &[(K, &str)],
) -> Result<Vec<Batch<K>>, Error> {
    let channel_json = serde_json::to_string(channel).expect("a string serializes");
    let fixed = BODY_HEAD.len() + channel_json.len() + BODY_MID.len() + BODY_TAIL.len();
    let mut out = Vec::new();
    let mut keys: Vec<K> = Vec::new();
    let mut encoded: Vec<String> = Vec::new();
    let mut size = fixed;
    let flush = |keys: &mut Vec<K>, encoded: &mut Vec<String>, out: &mut Vec<Batch<K>>| {
        if keys.is_empty() {
            return;
        }
        let (body, spans) = assemble(&channel_json, encoded);
        out.push(Batch {
            keys: std::mem::take(keys),
            body,
            spans,
        });
        encoded.clear();
    };
    for (key, event) in events {
        let enc = serde_json::to_string(event).expect("a string serializes");
        if fixed + enc.len() > EVENTS_REQUEST_MAX_BYTES {
            return Err(Error::invalid(
                "data",
                format!(
                    "one event makes a {} byte request to {channel}; a request holds at most \
                     {EVENTS_REQUEST_MAX_BYTES} bytes (limits::EVENTS_REQUEST_MAX_BYTES)",
                    fixed + enc.len()
                ),
            ));
        }
        let extra = enc.len() + usize::from(!encoded.is_empty());
        if keys.len() == EVENTS_PER_PUBLISH || size + extra > EVENTS_REQUEST_MAX_BYTES {
            flush(&mut keys, &mut encoded, &mut out);
            size = fixed;
        }
        size += enc.len() + usize::from(!encoded.is_empty());
        keys.push(key.clone());
        encoded.push(enc);
    }
    flush(&mut keys, &mut encoded, &mut out);
    Ok(out)
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    successful: Vec<Succeeded>,
    #[serde(default)]
    failed: Vec<Failed>,
    #[serde(default)]
    errors: Option<Vec<crate::GraphqlError>>,
}

#[derive(Deserialize)]
struct Succeeded {
    #[serde(default)]
    identifier: Option<String>,
    index: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failed {
    index: usize,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_code: Option<serde_json::Value>,
    #[serde(default)]
    error_message: Option<String>,
}

/// The fate of each of the `n` events of a request: `Ok(identifier)` or the event's error.
/// An event the response does not mention is failed as a protocol error: never assumed delivered.
///
/// # Errors
/// [`Error::Protocol`] when the body is not a publish response; [`Error::Graphql`] when it carries
/// `errors`.
pub(crate) fn parse_response(
    body: &[u8],
    n: usize,
) -> Result<Vec<Result<Option<String>, Error>>, Error> {
    let r: Response = serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "AppSync Events publish response is not {{successful, failed}}: {e}: {}",
            crate::retry::snippet(&String::from_utf8_lossy(body))
        ))
    })?;
    if let Some(errors) = r.errors.filter(|e| !e.is_empty()) {
        return Err(Error::Graphql(errors));
    }
    let mut out: Vec<Option<Result<Option<String>, Error>>> = (0..n).map(|_| None).collect();
    for s in r.successful {
        if let Some(slot) = out.get_mut(s.index) {
            *slot = Some(Ok(s.identifier));
        }
    }
    // A failure wins over a success for the same index: fail closed on contradictions.
    for f in r.failed {
        if let Some(slot) = out.get_mut(f.index) {
            let code = f.code.or(f.error_code).map(|c| match c {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
            let message = f
                .message
                .or(f.error_message)
                .unwrap_or_else(|| "no message given".into());
            *slot = Some(Err(Error::EventFailed { code, message }));
        }
    }
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                Err(Error::Protocol(format!(
                    "the publish response lists event {i} neither as successful nor as failed"
                )))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_twelve_events_into_five_five_two() {
        let events: Vec<(usize, &str)> = (0..12).map(|i| (i, "{}")).collect();
        let b = batches("/ns/g/t", &events).unwrap();
        assert_eq!(
            b.iter().map(|b| b.keys.len()).collect::<Vec<_>>(),
            [5, 5, 2]
        );
        assert_eq!(b[2].keys, [10, 11]);
        assert_eq!(b[0].body, publish_body("/ns/g/t", &["{}"; 5]));
        assert_eq!(b[2].spans.len(), 2);
        let body: serde_json::Value = serde_json::from_slice(&b[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"channel": "/ns/g/t", "events": ["{}", "{}", "{}", "{}", "{}"]})
        );
    }

    #[test]
    fn a_subset_body_carries_the_chosen_events_byte_for_byte() {
        let events = ["{\"a\":1}", "\"two\"", "3", "[4]"];
        let keyed: Vec<(usize, &str)> = events.iter().copied().enumerate().collect();
        let b = batches("/ns/g/t", &keyed).unwrap().remove(0);
        assert_eq!(subset_body(&b.body, &b.spans, &[0, 1, 2, 3]), b.body);
        assert_eq!(
            subset_body(&b.body, &b.spans, &[1, 3]),
            publish_body("/ns/g/t", &[events[1], events[3]])
        );
        assert_eq!(
            subset_body(&b.body, &b.spans, &[2]),
            publish_body("/ns/g/t", &[events[2]])
        );
    }

    #[test]
    fn splits_by_request_size() {
        // Four events of ~500 kB: only two fit one 1.2 MB request.
        let big = format!("\"{}\"", "a".repeat(499_000));
        let events: Vec<(usize, &str)> = (0..4).map(|i| (i, big.as_str())).collect();
        let b = batches("/ns/g/t", &events).unwrap();
        assert!(b.iter().all(|b| b.body.len() <= EVENTS_REQUEST_MAX_BYTES));
        assert_eq!(b.iter().map(|b| b.keys.len()).collect::<Vec<_>>(), [2, 2]);
    }

    #[test]
    fn parses_both_failure_spellings_and_fails_unmentioned_events() {
        let body = br#"{"successful":[{"identifier":"id0","index":0}],
            "failed":[{"identifier":"x","index":1,"code":401,"message":"nope"},
                      {"identifier":"y","index":2,"errorCode":"E","errorMessage":"bad"}]}"#;
        let r = parse_response(body, 4).unwrap();
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some("id0"));
        assert_eq!(
            r[1].as_ref().unwrap_err().to_string(),
            "event failed (401): nope"
        );
        assert_eq!(
            r[2].as_ref().unwrap_err().to_string(),
            "event failed (E): bad"
        );
        assert!(matches!(r[3], Err(Error::Protocol(_))));
    }

    #[test]
    fn rejects_a_body_that_is_not_a_publish_response() {
        assert!(matches!(
            parse_response(b"<html>", 1),
            Err(Error::Protocol(_))
        ));
        let e = parse_response(
            br#"{"errors":[{"errorType":"BadRequest","message":"m"}]}"#,
            1,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Graphql(_)));
    }
}
