//! What a handler decided, and how AppSync answers the client for it.
//!
//! `util.unauthorized()` and `util.error(msg)` reject (channel-namespace-handlers.html, Error
//! handling; writing-event-handlers.html): AppSync answers a subscribe with `subscribe_error`
//! (`Unauthorized` for `util.unauthorized`) and a publish with `publish_error` / HTTP 401
//! `UnauthorizedException` (aws-protocols.md §2, handler errors). Any other exception fails the
//! operation as well: closed.
//!
//! What `onPublish` returns is checked against the published events by AppSync's rules
//! (https://docs.aws.amazon.com/appsync/latest/eventapi/writing-event-handlers.html and
//! channel-namespace-handlers.html, aws-protocols.md §3): ids must come from the input (an unknown
//! id is an error), `null` entries are ignored, an event carrying an `error` property is not
//! broadcast, and `[]` broadcasts nothing.

use serde::Serialize;
use serde_json::Value;

use crate::ctx::IncomingEvent;

/// What `onSubscribe` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The handler returned: the subscription stands (or there is no `onSubscribe`).
    Allowed,
    /// The handler called `util.unauthorized()`.
    Unauthorized,
    /// The handler called `util.error(message)`, threw, or ran out of time or memory.
    Error(String),
}

/// An error as AppSync puts it in `subscribe_error` / `publish_error` frames and HTTP error bodies:
/// `{errorType, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireError {
    /// AppSync's error type.
    pub error_type: &'static str,
    /// The message.
    pub message: String,
}

impl Verdict {
    /// The error of the `subscribe_error` frame AppSync answers with, or `None` when allowed:
    /// `Unauthorized` for `util.unauthorized()` (aws-protocols.md §2, [EV-WRITE]), else
    /// `SubscriptionProcessingError`, the subscribe error type of event-api-websocket-protocol.html.
    pub fn subscribe_error(&self) -> Option<WireError> {
        match self {
            Verdict::Allowed => None,
            Verdict::Unauthorized => Some(WireError {
                error_type: "Unauthorized",
                message: "Unauthorized".into(),
            }),
            Verdict::Error(message) => Some(WireError {
                error_type: "SubscriptionProcessingError",
                message: message.clone(),
            }),
        }
    }
}

/// One event `onPublish` returned with an `error` property: not broadcast, reported as failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedEvent {
    /// The event's id.
    pub id: String,
    /// Its `error` property as text (a non-string error is its JSON text).
    pub error: String,
}

/// What `onPublish` decided.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishVerdict {
    /// The handler returned: `broadcast` goes to every subscriber of the channel, in the order
    /// returned; `failed` are the events it marked with an `error` property.
    Events {
        /// The events to broadcast, `{id, payload}` with ids from the input.
        broadcast: Vec<IncomingEvent>,
        /// Returned events carrying an `error` property.
        failed: Vec<FailedEvent>,
    },
    /// The handler called `util.unauthorized()`.
    Unauthorized,
    /// The handler called `util.error(message)`, threw, returned something that is not a list of
    /// the input's events, or ran out of time or memory.
    Error(String),
}

impl PublishVerdict {
    /// Checks what `onPublish` returned (`None`: `undefined`) against the events it was given.
    pub fn from_returned(returned: Option<&Value>, input: &[IncomingEvent]) -> PublishVerdict {
        let items = match returned {
            // `OutgoingEvent[] | null`: null broadcasts nothing, like [] (INFERRED from the
            // signature in channel-namespace-handlers.html); so does undefined.
            None | Some(Value::Null) => {
                return PublishVerdict::Events {
                    broadcast: vec![],
                    failed: vec![],
                };
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                return PublishVerdict::Error(format!(
                    "onPublish returned {}, not a list of events",
                    kind_of(other)
                ));
            }
        };
        let mut broadcast = Vec::new();
        let mut failed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let event = match item {
                Value::Null => continue,
                Value::Object(event) => event,
                other => {
                    return PublishVerdict::Error(format!(
                        "onPublish returned {} at index {i}, not an event",
                        kind_of(other)
                    ));
                }
            };
            let Some(id) = event.get("id").and_then(Value::as_str) else {
                return PublishVerdict::Error(format!(
                    "onPublish returned an event without a string id at index {i}"
                ));
            };
            if !input.iter().any(|e| e.id == id) {
                return PublishVerdict::Error(format!(
                    "onPublish returned event id {id:?}, which was not published"
                ));
            }
            if let Some(error) = event.get("error") {
                let error = match error {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                failed.push(FailedEvent {
                    id: id.to_owned(),
                    error,
                });
                continue;
            }
            broadcast.push(IncomingEvent {
                id: id.to_owned(),
                payload: event.get("payload").cloned().unwrap_or(Value::Null),
            });
        }
        PublishVerdict::Events { broadcast, failed }
    }

    /// The error of the `publish_error` frame (and HTTP error body) AppSync answers with, and its
    /// HTTP status, or `None` when the handler returned: `UnauthorizedException` / 401 for
    /// `util.unauthorized()` (aws-protocols.md §2, [EV-WRITE]); the handler's message under
    /// `MessageProcessingError` / 403 otherwise, as the Events emulator answers
    /// (tests/e2e/events-emulator.mjs).
    pub fn publish_error(&self) -> Option<(u16, WireError)> {
        match self {
            PublishVerdict::Events { .. } => None,
            PublishVerdict::Unauthorized => Some((
                401,
                WireError {
                    error_type: "UnauthorizedException",
                    message: "Unauthorized".into(),
                },
            )),
            PublishVerdict::Error(message) => Some((
                403,
                WireError {
                    error_type: "MessageProcessingError",
                    message: message.clone(),
                },
            )),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> Vec<IncomingEvent> {
        vec![
            IncomingEvent {
                id: "e1".into(),
                payload: json!({"n": 1}),
            },
            IncomingEvent {
                id: "e2".into(),
                payload: json!({"n": 2}),
            },
        ]
    }

    #[test]
    fn null_entries_are_ignored_and_events_with_an_error_property_are_not_broadcast() {
        let returned = json!([null, {"id": "e2", "payload": {"n": 3}}, {"id": "e1", "payload": {}, "error": "no"}]);
        assert_eq!(
            PublishVerdict::from_returned(Some(&returned), &input()),
            PublishVerdict::Events {
                broadcast: vec![IncomingEvent {
                    id: "e2".into(),
                    payload: json!({"n": 3})
                }],
                failed: vec![FailedEvent {
                    id: "e1".into(),
                    error: "no".into()
                }],
            }
        );
    }

    #[test]
    fn an_event_id_that_was_not_published_is_an_error_and_nothing_is_broadcast() {
        let returned = json!([{"id": "e1", "payload": {}}, {"id": "forged", "payload": {}}]);
        let v = PublishVerdict::from_returned(Some(&returned), &input());
        assert_eq!(
            v,
            PublishVerdict::Error(
                "onPublish returned event id \"forged\", which was not published".into()
            )
        );
    }

    #[test]
    fn null_undefined_and_an_empty_list_broadcast_nothing_and_other_values_are_errors() {
        let nothing = PublishVerdict::Events {
            broadcast: vec![],
            failed: vec![],
        };
        assert_eq!(PublishVerdict::from_returned(None, &input()), nothing);
        assert_eq!(
            PublishVerdict::from_returned(Some(&Value::Null), &input()),
            nothing
        );
        assert_eq!(
            PublishVerdict::from_returned(Some(&json!([])), &input()),
            nothing
        );
        for bad in [
            json!({"id": "e1"}),
            json!("e1"),
            json!([5]),
            json!([{"payload": {}}]),
        ] {
            assert!(
                matches!(
                    PublishVerdict::from_returned(Some(&bad), &input()),
                    PublishVerdict::Error(_)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejections_map_to_appsyncs_error_types() {
        assert_eq!(
            Verdict::Unauthorized.subscribe_error().unwrap().error_type,
            "Unauthorized"
        );
        assert_eq!(
            Verdict::Error("x".into())
                .subscribe_error()
                .unwrap()
                .error_type,
            "SubscriptionProcessingError"
        );
        assert_eq!(Verdict::Allowed.subscribe_error(), None);
        let (status, e) = PublishVerdict::Unauthorized.publish_error().unwrap();
        assert_eq!((status, e.error_type), (401, "UnauthorizedException"));
        let (status, e) = PublishVerdict::Error("bad".into()).publish_error().unwrap();
        assert_eq!(
            (status, e.error_type, e.message.as_str()),
            (403, "MessageProcessingError", "bad")
        );
    }
}
