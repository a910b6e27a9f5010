//! The publisher Lambda's batch policy (feature `lambda`): turns each kind of invocation into
//! messages, publishes them through anything that implements [`Publish`], and shapes the answer
//! for its caller. The `publisher` function is an adapter over [`handle`]; SQS and EventBridge
//! inputs are read as `aws_lambda_events` types.
//!
//! | invocation | input | answer |
//! |---|---|---|
//! | direct | `{topic, data, groups, transports?, id?}` or a list of them | per message its id and per-transport results (with the attempts each took); an invalid message fails the call before anything is sent |
//! | SQS | [`SqsEvent`]: `Records[].body` is one message | [`SqsBatchResponse`] naming only the records that failed (unparsable, or a delivery failed), so SQS retries only those |
//! | EventBridge | [`EventBridgeEvent`]: `detail` is the message | as direct; any failed delivery fails the invocation, so Lambda retries it |
//! | revoke | `{"revoke": {"user", "groups", "transports"?}}` | the [`crate::RevokeReport`] (per transport: `invalidated`, `synced`, `expires` with `within_seconds` and its bound (Events in a time-sliced namespace), `not_supported` with its bound, `failed`) and `complete`; invalid input fails the call before anything is sent |
//!
//! Message ids stay stable across redeliveries, so subscribers can drop duplicates: the body's `id`
//! when it has one, else the SQS `messageId` / EventBridge event `id` (both UUIDs, kept by every
//! redelivery of that record or event). Two records of one batch with the same id are one message,
//! published once.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Delivery, Error, Message, Outcome, Publish, PublishOptions, Transport};

/// The fields of a message as callers write it.
const MESSAGE_FIELDS: &str = "topic, data, groups, transports, id";

/// Why an invocation failed; [`Failure::error_type`] is the Lambda `errorType`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The event is none of the accepted shapes, or a message is invalid. Nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Some deliveries failed (EventBridge only; direct calls report them in the answer).
    #[error("{failed} of {total} deliveries failed; first: {first}")]
    PublishFailed {
        /// Deliveries that failed.
        failed: usize,
        /// Deliveries attempted.
        total: usize,
        /// The first failure, in words.
        first: String,
    },
    /// The publisher refused the call as a whole (configuration, credentials).
    #[error("publish: {0}")]
    Publish(String),
}

impl Failure {
    /// The Lambda `errorType` of this failure: `InvalidInput`, `PublishFailed` or `PublishError`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Failure::InvalidInput(_) => "InvalidInput",
            Failure::PublishFailed { .. } => "PublishFailed",
            Failure::Publish(_) => "PublishError",
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone)]
struct Published {
    message: Message,
    /// The deliveries, or why the message was refused before sending.
    result: Result<Vec<Delivery>, String>,
}

impl Published {
    fn ok(&self) -> bool {
        self.result
            .as_ref()
            .is_ok_and(|ds| ds.iter().all(|d| d.outcome.is_delivered()))
    }
}

/// Handles any accepted invocation. See the [module docs](self).
///
/// # Errors
/// [`Failure::InvalidInput`] when the event is none of the accepted shapes or (direct,
/// EventBridge) a message is invalid; [`Failure::PublishFailed`] when an EventBridge message was
/// not delivered everywhere; [`Failure::Publish`] when the publisher refused the call as a whole.
pub async fn handle<P: Publish + Sync>(publisher: &P, event: Value) -> Result<Value, Failure> {
    handle_until(publisher, event, None).await
}

/// [`handle`], ending every publish by `deadline` when given (see [`PublishOptions::deadline`]):
/// pass the invocation's deadline less the time to answer, so that a slow endpoint yields
/// reported failures (and `batchItemFailures`) rather than a timed-out invocation.
///
/// # Errors
/// As [`handle`].
pub async fn handle_until<P: Publish + Sync>(
    publisher: &P,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<Value, Failure> {
    if event.get("Records").is_some_and(Value::is_array) {
        let event: SqsEvent = serde_json::from_value(event)
            .map_err(|e| Failure::InvalidInput(format!("Records: {e}")))?;
        let answer = handle_sqs(publisher, event, deadline).await?;
        return Ok(serde_json::to_value(answer).expect("a batch response serializes"));
    }
    if let Some(revoke) = event.get("revoke") {
        return handle_revoke(publisher, &event, revoke.clone(), deadline).await;
    }
    if event.get("detail-type").is_some() && event.get("detail").is_some() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(event)
            .map_err(|e| Failure::InvalidInput(format!("EventBridge event: {e}")))?;
        return handle_eventbridge(publisher, event, deadline).await;
    }
    handle_direct(publisher, event, deadline).await
}

/// A direct invocation: one message or a list of them.
///
/// # Errors
/// As [`handle`].
pub async fn handle_direct<P: Publish + Sync>(
    publisher: &P,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<Value, Failure> {
    let (inputs, field): (Vec<Value>, fn(usize) -> String) = match event {
        Value::Array(items) => (items, |i| format!("[{i}]")),
        single @ Value::Object(_) => (vec![single], |_| String::new()),
        _ => {
            return Err(Failure::InvalidInput(
                "expected a message {topic, data, groups, transports?}, a list of them, an SQS or an EventBridge event".into(),
            ));
        }
    };
    let mut messages = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let (message, transports) = parse_message(input, None)
            .map_err(|e| Failure::InvalidInput(format!("{}{e}", field(i))))?;
        messages.push((message, transports));
    }
    let published = publish(publisher, messages, deadline).await?;
    Ok(answer(&published))
}

/// The fields of a revoke input.
const REVOKE_FIELDS: &str = "user, groups, transports";

/// A revocation: `{"revoke": {"user", "groups", "transports"?}}`, nothing else. Answers the
/// report, with `complete` true only when every transport did what revocation needs there.
///
/// # Errors
/// [`Failure::InvalidInput`] naming the field (`revoke.user`, …) when the input is malformed or
/// the publisher refuses it as invalid; [`Failure::Publish`] when it refuses the call otherwise
/// (configuration, credentials). Failures on a transport are in the answer, not errors.
pub async fn handle_revoke<P: Publish + Sync>(
    publisher: &P,
    event: &Value,
    revoke: Value,
    deadline: Option<SystemTime>,
) -> Result<Value, Failure> {
    if let Some(other) = event
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != "revoke"))
    {
        return Err(Failure::InvalidInput(format!(
            "{other}: unknown field beside revoke; a revoke input is {{\"revoke\": {{{REVOKE_FIELDS}}}}}"
        )));
    }
    let Value::Object(mut fields) = revoke else {
        return Err(Failure::InvalidInput(format!(
            "revoke: an object {{{REVOKE_FIELDS}}}, not {}",
            kind_of(&revoke)
        )));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !REVOKE_FIELDS.split(", ").any(|f| f == k.as_str()))
    {
        return Err(Failure::InvalidInput(format!(
            "revoke.{unknown}: unknown field; a revoke has only {REVOKE_FIELDS}"
        )));
    }
    let at = |e: String| Failure::InvalidInput(format!("revoke{e}"));
    let user: String = take(&mut fields, "user")
        .map_err(at)?
        .ok_or_else(|| at(".user: missing; the subscriber's user id (sub)".into()))?;
    let groups: Vec<String> = take(&mut fields, "groups")
        .map_err(at)?
        .ok_or_else(|| at(".groups: missing; the groups the user left".into()))?;
    let transports: Option<Vec<Transport>> = take(&mut fields, "transports").map_err(at)?;
    if transports.as_ref().is_some_and(Vec::is_empty) {
        return Err(at(
            ".transports: the list is empty; omit it to use the publisher's transports".into(),
        ));
    }
    let opts = PublishOptions {
        transports,
        deadline,
        ..Default::default()
    };
    let report = publisher
        .revoke(&user, &groups, &opts)
        .await
        .map_err(|e| match e {
            Error::Invalid { field, rule } => at(format!(".{field}: {rule}")),
            other => Failure::Publish(other.to_string()),
        })?;
    for t in &report.transports {
        tracing::info!(transport = %t.transport, outcome = ?t.outcome, attempts = t.attempts, "revoke");
    }
    let mut answer = serde_json::to_value(&report).expect("a revoke report serializes");
    answer["complete"] = Value::Bool(report.is_complete());
    Ok(answer)
}

/// An SQS batch: the records that failed (unusable, or not delivered everywhere) by `messageId`.
///
/// # Errors
/// [`Failure::InvalidInput`] when a record has no `messageId`: it could not be named for a retry,
/// so the whole batch fails and SQS retries it.
pub async fn handle_sqs<P: Publish + Sync>(
    publisher: &P,
    event: SqsEvent,
    deadline: Option<SystemTime>,
) -> Result<SqsBatchResponse, Failure> {
    let mut failures: Vec<String> = Vec::new();
    let mut messages = Vec::new();
    let mut record_ids: Vec<(String, Uuid)> = Vec::new();
    for (i, record) in event.records.into_iter().enumerate() {
        let Some(record_id) = record.message_id else {
            return Err(Failure::InvalidInput(format!(
                "Records[{i}].messageId: missing; a record without it cannot be reported failed"
            )));
        };
        let input = serde_json::from_str::<Value>(record.body.as_deref().unwrap_or_default())
            .map_err(|e| format!(".body: not JSON: {e}"));
        let fallback_id = Uuid::parse_str(&record_id).ok();
        match input.and_then(|v| parse_message(v, fallback_id)) {
            Ok((message, transports)) => {
                record_ids.push((record_id, message.id()));
                messages.push((message, transports));
            }
            Err(e) => {
                // Reported as failed: SQS retries it, then moves it to the dead-letter queue.
                tracing::error!(record = record_id, error = %format!("Records[{i}]{e}"), "unusable SQS record");
                failures.push(record_id);
            }
        }
    }
    match publish(publisher, messages, deadline).await {
        Ok(published) => {
            let ok: HashMap<Uuid, bool> =
                published.iter().map(|p| (p.message.id(), p.ok())).collect();
            failures.extend(
                record_ids
                    .into_iter()
                    .filter(|(_, id)| !ok.get(id).copied().unwrap_or(false))
                    .map(|(record, _)| record),
            );
            log_summary(&published);
        }
        Err(e) => {
            tracing::error!(error = %e, "publish refused; every record of the batch is retried");
            failures.extend(record_ids.into_iter().map(|(record, _)| record));
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    Ok(response)
}

/// An EventBridge event whose `detail` is the message; its `id` is the message id when the
/// detail has none.
///
/// # Errors
/// As [`handle`]: any failed delivery fails the invocation, so that Lambda retries it.
pub async fn handle_eventbridge<P: Publish + Sync>(
    publisher: &P,
    event: EventBridgeEvent<Value>,
    deadline: Option<SystemTime>,
) -> Result<Value, Failure> {
    let event_id = event.id.as_deref().and_then(|s| Uuid::parse_str(s).ok());
    let message = parse_message(event.detail, event_id)
        .map_err(|e| Failure::InvalidInput(format!("detail{e}")))?;
    let published = publish(publisher, vec![message], deadline).await?;
    let deliveries: Vec<&Delivery> = published
        .iter()
        .flat_map(|p| p.result.iter().flatten())
        .collect();
    let failed: Vec<&Delivery> = deliveries
        .iter()
        .copied()
        .filter(|d| !d.outcome.is_delivered())
        .collect();
    if let Some(first) = failed.first() {
        return Err(Failure::PublishFailed {
            failed: failed.len(),
            total: deliveries.len(),
            first: format!(
                "{} via {}: {}",
                first.group,
                first.transport,
                outcome_text(&first.outcome)
            ),
        });
    }
    Ok(answer(&published))
}

/// Parses and validates one message as callers write it (`{topic, data?, groups, transports?,
/// id?}`, nothing else); `fallback_id` is its id when the input has none.
///
/// # Errors
/// The text starts with the field path (`.topic`, `.groups[1]`, …) so callers can prefix it,
/// then the rule the field broke.
pub fn parse_message(
    input: Value,
    fallback_id: Option<Uuid>,
) -> Result<(Message, Option<Vec<Transport>>), String> {
    let Value::Object(mut fields) = input else {
        return Err(format!(
            ": a message is a JSON object {{{MESSAGE_FIELDS}}}, not {}",
            kind_of(&input)
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !MESSAGE_FIELDS.split(", ").any(|f| f == k.as_str()))
    {
        return Err(format!(
            ".{unknown}: unknown field; a message has only {MESSAGE_FIELDS}"
        ));
    }
    let topic: String = take(&mut fields, "topic")?
        .ok_or_else(|| ".topic: missing; every message needs a topic".to_owned())?;
    let groups: Vec<String> = take(&mut fields, "groups")?
        .ok_or_else(|| ".groups: missing; every message needs its groups".to_owned())?;
    let data: Value = fields.remove("data").unwrap_or_default();
    let transports: Option<Vec<Transport>> = take(&mut fields, "transports")?;
    let id: Option<Uuid> = take(&mut fields, "id")?;
    let mut builder = Message::builder(topic).data(data).groups(groups);
    if let Some(id) = id.or(fallback_id) {
        builder = builder.id(id);
    }
    let message = builder.build().map_err(|e| match e {
        Error::Invalid { field, rule } => format!(".{field}: {rule}"),
        other => format!(": {other}"),
    })?;
    if transports.as_ref().is_some_and(Vec::is_empty) {
        return Err(
            ".transports: the list is empty; omit it to use the publisher's transports".into(),
        );
    }
    Ok((message, transports))
}

/// Field `name` of a message, read as `T` (absent or null: `None`); the error names the field.
fn take<T: serde::de::DeserializeOwned>(
    fields: &mut serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<T>, String> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| format!(".{name}: {e}")),
    }
}

/// A JSON value's kind, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Publishes `messages`, one call per distinct transport choice, and pairs each message with its
/// deliveries. A message whose id already appeared is the same message: it is published once.
/// When a call is refused as invalid, its messages are retried one by one so that only the
/// invalid ones fail.
async fn publish<P: Publish + Sync>(
    publisher: &P,
    messages: Vec<(Message, Option<Vec<Transport>>)>,
    deadline: Option<SystemTime>,
) -> Result<Vec<Published>, Failure> {
    let mut by_choice: BTreeMap<Option<Vec<Transport>>, Vec<Message>> = BTreeMap::new();
    let mut seen: Vec<Uuid> = Vec::new();
    for (message, transports) in messages {
        if seen.contains(&message.id()) {
            continue;
        }
        seen.push(message.id());
        let transports = transports.map(|mut t| {
            t.sort();
            t.dedup();
            t
        });
        by_choice.entry(transports).or_default().push(message);
    }
    let mut published = Vec::new();
    for (transports, batch) in by_choice {
        let opts = PublishOptions {
            transports,
            deadline,
            ..Default::default()
        };
        match publisher.publish_all(&batch, &opts).await {
            Ok(report) => published.extend(pair(batch, report.deliveries)),
            Err(Error::Invalid { .. }) if batch.len() > 1 => {
                for message in batch {
                    let one = std::slice::from_ref(&message);
                    let result = match publisher.publish_all(one, &opts).await {
                        Ok(report) => Ok(report.deliveries),
                        Err(e @ Error::Invalid { .. }) => Err(e.to_string()),
                        Err(e) => return Err(Failure::Publish(e.to_string())),
                    };
                    published.push(Published { message, result });
                }
            }
            Err(e @ Error::Invalid { .. }) => {
                let message = batch.into_iter().next().expect("a batch is never empty");
                published.push(Published {
                    message,
                    result: Err(e.to_string()),
                });
            }
            Err(e) => return Err(Failure::Publish(e.to_string())),
        }
    }
    Ok(published)
}

fn pair(batch: Vec<Message>, deliveries: Vec<Delivery>) -> Vec<Published> {
    let mut by_id: HashMap<Uuid, Vec<Delivery>> = HashMap::new();
    for d in deliveries {
        by_id.entry(d.message_id).or_default().push(d);
    }
    batch
        .into_iter()
        .map(|message| {
            let deliveries = by_id.remove(&message.id()).unwrap_or_default();
            // A report without entries for a message means nothing was attempted: not delivered.
            let result = if deliveries.is_empty() {
                Err("no delivery reported".to_owned())
            } else {
                Ok(deliveries)
            };
            Published { message, result }
        })
        .collect()
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered { .. } => "delivered".into(),
        Outcome::Failed { error, retryable } => format!("{error} (retryable: {retryable})"),
    }
}

/// One delivery as the answer shows it.
#[derive(Debug, Serialize)]
struct DeliveryView<'a> {
    group: &'a str,
    #[serde(flatten)]
    outcome: &'a Outcome,
    /// The attempts it took.
    attempts: u32,
}

/// The answer to a direct or EventBridge invocation.
fn answer(published: &[Published]) -> Value {
    log_summary(published);
    let messages: Vec<Value> = published
        .iter()
        .map(|p| {
            let mut entry =
                json!({"id": p.message.id(), "topic": p.message.topic(), "delivered": p.ok()});
            match &p.result {
                Ok(deliveries) => {
                    let mut transports: BTreeMap<&str, Vec<DeliveryView<'_>>> = BTreeMap::new();
                    for d in deliveries {
                        transports
                            .entry(d.transport.as_str())
                            .or_default()
                            .push(DeliveryView {
                                group: &d.group,
                                outcome: &d.outcome,
                                attempts: d.attempts,
                            });
                    }
                    entry["transports"] = serde_json::to_value(transports).expect("serializable");
                }
                Err(e) => entry["error"] = json!(e),
            }
            entry
        })
        .collect();
    json!({"complete": published.iter().all(Published::ok), "messages": messages})
}

fn log_summary(published: &[Published]) {
    for p in published {
        match &p.result {
            Err(e) => {
                tracing::error!(id = %p.message.id(), topic = p.message.topic(), error = %e, "message refused")
            }
            Ok(ds) => {
                for d in ds.iter().filter(|d| !d.outcome.is_delivered()) {
                    tracing::warn!(id = %p.message.id(), group = d.group, transport = %d.transport, outcome = %outcome_text(&d.outcome), "delivery failed");
                }
                let delivered = ds.iter().filter(|d| d.outcome.is_delivered()).count();
                tracing::info!(id = %p.message.id(), topic = p.message.topic(), delivered, failed = ds.len() - delivered, "published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishReport;
    use std::sync::Mutex;

    /// One `publish_all` call: its message ids and transports.
    type Call = (Vec<Uuid>, Option<Vec<Transport>>);

    /// Delivers everything except to `fail_groups`; refuses as invalid any call holding a
    /// message whose data is `"too-big"`; records each call's message ids and transports.
    #[derive(Default)]
    struct FakePublisher {
        fail_groups: Vec<&'static str>,
        calls: Mutex<Vec<Call>>,
    }

    impl Publish for FakePublisher {
        async fn publish_all(
            &self,
            msgs: &[Message],
            opts: &PublishOptions,
        ) -> Result<PublishReport, Error> {
            self.calls.lock().unwrap().push((
                msgs.iter().map(Message::id).collect(),
                opts.transports.clone(),
            ));
            if let Some(i) = msgs.iter().position(|m| m.data() == &json!("too-big")) {
                return Err(Error::invalid(format!("messages[{i}].data"), "too big"));
            }
            let transports = opts.transports.clone().unwrap_or(vec![Transport::Events]);
            let mut deliveries = Vec::new();
            for m in msgs {
                for t in &transports {
                    for g in m.groups() {
                        let outcome = if self.fail_groups.contains(&g.as_str()) {
                            Outcome::Failed {
                                error: "sink said no".into(),
                                retryable: true,
                            }
                        } else {
                            Outcome::Delivered {
                                identifier: Some(format!("ev-{g}")),
                            }
                        };
                        deliveries.push(Delivery {
                            message_id: m.id(),
                            group: g.clone(),
                            transport: *t,
                            outcome,
                            attempts: 1,
                            channel: None,
                        });
                    }
                }
            }
            Ok(PublishReport { deliveries })
        }
    }

    /// One `revoke` call: user, groups, transports.
    type RevokeCall = (String, Vec<String>, Option<Vec<Transport>>);

    /// Revokes by recording the call and answering GraphQL invalidated, Events not supported.
    #[derive(Default)]
    struct Revoker {
        calls: Mutex<Vec<RevokeCall>>,
    }

    impl Publish for Revoker {
        async fn publish_all(
            &self,
            _msgs: &[Message],
            _opts: &PublishOptions,
        ) -> Result<PublishReport, Error> {
            Err(Error::Config("not here".into()))
        }

        async fn revoke(
            &self,
            user: &str,
            groups: &[String],
            opts: &PublishOptions,
        ) -> Result<crate::RevokeReport, Error> {
            self.calls.lock().unwrap().push((
                user.to_owned(),
                groups.to_vec(),
                opts.transports.clone(),
            ));
            if user.trim().is_empty() {
                return Err(Error::invalid("user", "blank"));
            }
            Ok(crate::RevokeReport {
                user: user.to_owned(),
                groups: groups.to_vec(),
                transports: vec![
                    crate::TransportRevocation {
                        transport: Transport::Events,
                        outcome: crate::RevokeOutcome::NotSupported {
                            bound: "24 h".into(),
                        },
                        attempts: 0,
                    },
                    crate::TransportRevocation {
                        transport: Transport::Graphql,
                        outcome: crate::RevokeOutcome::Invalidated,
                        attempts: 1,
                    },
                ],
            })
        }
    }

    #[tokio::test]
    async fn a_revoke_input_reaches_revoke_and_answers_the_report_per_transport() {
        let p = Revoker::default();
        let r = handle(
            &p,
            json!({"revoke": {"user": "sub-1", "groups": ["team-a"], "transports": ["graphql", "events"]}}),
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            json!({"user": "sub-1", "groups": ["team-a"], "complete": false, "transports": [
                {"transport": "events", "outcome": {"status": "not_supported", "bound": "24 h"}, "attempts": 0},
                {"transport": "graphql", "outcome": {"status": "invalidated"}, "attempts": 1},
            ]})
        );
        assert_eq!(
            p.calls.lock().unwrap()[0],
            (
                "sub-1".to_owned(),
                vec!["team-a".to_owned()],
                Some(vec![Transport::Graphql, Transport::Events])
            )
        );
    }

    #[tokio::test]
    async fn a_malformed_revoke_input_is_refused_by_field_before_revoking() {
        let p = Revoker::default();
        for (event, field) in [
            (json!({"revoke": "sub-1"}), "revoke: an object"),
            (json!({"revoke": {"groups": ["g"]}}), "revoke.user: missing"),
            (json!({"revoke": {"user": "u"}}), "revoke.groups: missing"),
            (
                json!({"revoke": {"user": "u", "groups": "g"}}),
                "revoke.groups: invalid type",
            ),
            (
                json!({"revoke": {"user": "u", "groups": ["g"], "transports": []}}),
                "revoke.transports: the list is empty",
            ),
            (
                json!({"revoke": {"user": "u", "groups": ["g"], "transports": ["mqtt"]}}),
                "revoke.transports:",
            ),
            (
                json!({"revoke": {"user": "u", "groups": ["g"], "all": true}}),
                "revoke.all: unknown field",
            ),
            (
                json!({"revoke": {"user": "u", "groups": ["g"]}, "topic": "t"}),
                "topic: unknown field beside revoke",
            ),
        ] {
            let e = handle(&p, event.clone()).await.unwrap_err();
            assert_eq!(e.error_type(), "InvalidInput", "{event}");
            assert!(e.to_string().contains(field), "{event}: {e}");
        }
        assert!(p.calls.lock().unwrap().is_empty(), "nothing reached revoke");
        // The publisher's own validation names the field under revoke.
        let e = handle(&p, json!({"revoke": {"user": " ", "groups": ["g"]}}))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid input: revoke.user: blank");
    }

    #[tokio::test]
    async fn a_publisher_that_cannot_revoke_refuses_rather_than_reporting_success() {
        let e = handle(
            &FakePublisher::default(),
            json!({"revoke": {"user": "u", "groups": ["g"]}}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.error_type(), "PublishError");
        assert!(
            e.to_string().contains("does not implement revocation"),
            "{e}"
        );
    }

    const SQS_ID: &str = "059f36b4-87a3-44ab-83d2-661975830a7d";

    fn sqs(records: &[(&str, String)]) -> Value {
        json!({"Records": records.iter().map(|(id, body)| json!({
            "messageId": id, "receiptHandle": "AQEB", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"
        })).collect::<Vec<_>>()})
    }

    #[tokio::test]
    async fn direct_invoke_answers_per_message_id_and_per_transport() {
        let p = FakePublisher {
            fail_groups: vec!["b"],
            ..Default::default()
        };
        let v = handle(&p, json!({"topic": "news", "data": {"x": 1}, "groups": ["a", "b"], "transports": ["events", "iot"]})).await.unwrap();
        assert_eq!(v["complete"], false);
        let m = &v["messages"][0];
        assert_eq!(m["topic"], "news");
        assert_eq!(m["delivered"], false);
        Uuid::parse_str(m["id"].as_str().unwrap()).unwrap();
        assert_eq!(
            m["transports"]["events"][0],
            json!({"group": "a", "status": "delivered", "identifier": "ev-a", "attempts": 1})
        );
        assert_eq!(
            m["transports"]["iot"][1],
            json!({"group": "b", "status": "failed", "error": "sink said no", "retryable": true, "attempts": 1})
        );
        let list = handle(
            &p,
            json!([{"topic": "t", "groups": ["a"]}, {"topic": "u", "groups": ["a"]}]),
        )
        .await
        .unwrap();
        assert_eq!(list["complete"], true);
        assert_eq!(list["messages"].as_array().unwrap().len(), 2);
        assert_eq!(
            p.calls.lock().unwrap().len(),
            2,
            "the list went out in one call"
        );
    }

    #[tokio::test]
    async fn direct_invoke_with_an_invalid_message_sends_nothing_and_names_the_field() {
        let p = FakePublisher::default();
        for (event, field) in [
            (
                json!([{"topic": "t", "groups": ["a"]}, {"topic": "a b", "groups": ["a"]}]),
                "[1].topic",
            ),
            (json!({"topic": "t", "groups": []}), ".groups"),
            (
                json!({"topic": "t", "groups": ["a"], "transports": ["smoke-signal"]}),
                "smoke-signal",
            ),
            (
                json!({"topic": "t", "groups": ["a"], "transports": []}),
                ".transports",
            ),
            (json!({"topic": "t", "groups": ["a"], "extra": 1}), "extra"),
            (json!("hello"), "expected a message"),
        ] {
            let e = handle(&p, event.clone()).await.unwrap_err();
            assert!(e.to_string().contains(field), "{event}: {e}");
            assert_eq!(e.error_type(), "InvalidInput");
        }
        assert!(p.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqs_reports_only_the_failed_and_unusable_records() {
        let p = FakePublisher {
            fail_groups: vec!["down"],
            ..Default::default()
        };
        let v = handle(
            &p,
            sqs(&[
                (
                    "11111111-1111-4111-8111-111111111111",
                    json!({"topic": "t", "groups": ["a"]}).to_string(),
                ),
                (
                    "22222222-2222-4222-8222-222222222222",
                    json!({"topic": "t", "groups": ["a", "down"]}).to_string(),
                ),
                ("33333333-3333-4333-8333-333333333333", "not json".into()),
                (
                    "44444444-4444-4444-8444-444444444444",
                    json!({"topic": "t"}).to_string(),
                ),
                (
                    "55555555-5555-4555-8555-555555555555",
                    json!({"topic": "t", "groups": ["b"], "data": "too-big"}).to_string(),
                ),
                (
                    "66666666-6666-4666-8666-666666666666",
                    json!({"topic": "t", "groups": ["b"]}).to_string(),
                ),
            ]),
        )
        .await
        .unwrap();
        let failed: Vec<&str> = v["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        assert_eq!(
            failed,
            [
                "33333333-3333-4333-8333-333333333333",
                "44444444-4444-4444-8444-444444444444",
                "22222222-2222-4222-8222-222222222222",
                "55555555-5555-4555-8555-555555555555",
            ]
        );
        // One batch call refused as invalid, then one call per message; record 1 and 6 delivered.
        let calls = p.calls.lock().unwrap();
        assert_eq!(calls.len(), 1 + 4);
    }

    #[tokio::test]
    async fn sqs_message_ids_are_stable_across_redeliveries_and_duplicates_are_sent_once() {
        let p = FakePublisher::default();
        let body_id = "7d2f5c1e-0a4b-4c8d-9e6f-1a2b3c4d5e6f";
        let with_id = json!({"topic": "t", "groups": ["a"], "id": body_id}).to_string();
        let without_id = json!({"topic": "t", "groups": ["a"]}).to_string();
        let event = sqs(&[
            (SQS_ID, without_id),
            ("a-non-uuid-id", with_id.clone()),
            ("b-non-uuid-id", with_id),
        ]);
        for _ in 0..2 {
            let v = handle(&p, event.clone()).await.unwrap();
            assert_eq!(v, json!({"batchItemFailures": []}));
        }
        let calls = p.calls.lock().unwrap();
        let expected = vec![
            Uuid::parse_str(SQS_ID).unwrap(),
            Uuid::parse_str(body_id).unwrap(),
        ];
        assert_eq!(
            calls[0].0, expected,
            "the body id wins, else the SQS messageId; the duplicate is sent once"
        );
        assert_eq!(calls[1].0, expected, "a redelivery keeps the ids");
    }

    #[tokio::test]
    async fn sqs_batch_refused_as_a_whole_retries_every_record() {
        struct Broken;
        impl Publish for Broken {
            async fn publish_all(
                &self,
                _: &[Message],
                _: &PublishOptions,
            ) -> Result<crate::PublishReport, Error> {
                Err(Error::Credentials("no credentials".into()))
            }
        }
        let v = handle(
            &Broken,
            sqs(&[(SQS_ID, json!({"topic": "t", "groups": ["a"]}).to_string())]),
        )
        .await
        .unwrap();
        assert_eq!(
            v,
            json!({"batchItemFailures": [{"itemIdentifier": SQS_ID}]})
        );
    }

    #[tokio::test]
    async fn eventbridge_detail_is_the_message_and_failures_fail_the_invocation() {
        let p = FakePublisher {
            fail_groups: vec!["down"],
            ..Default::default()
        };
        let event = |groups: Value| {
            json!({
                "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "OrderShipped",
                "source": "acme.orders", "account": "123456789012", "time": "2026-11-22T15:00:00Z",
                "region": "us-east-1", "resources": [], "detail": {"topic": "orders", "data": {"n": 1}, "groups": groups}
            })
        };
        let v = handle(&p, event(json!(["a"]))).await.unwrap();
        assert_eq!(
            v["messages"][0]["id"],
            "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
        );
        assert_eq!(v["complete"], true);
        let e = handle(&p, event(json!(["a", "down"]))).await.unwrap_err();
        assert!(e.to_string().contains("1 of 2 deliveries failed"), "{e}");
        assert_eq!(e.error_type(), "PublishFailed");
        let e = handle(&p, event(json!([]))).await.unwrap_err();
        assert!(e.to_string().contains("detail.groups"), "{e}");
    }

    #[tokio::test]
    async fn an_sqs_record_without_a_message_id_fails_the_batch_so_sqs_retries_it_whole() {
        let p = FakePublisher::default();
        let event = json!({"Records": [
            {"messageId": SQS_ID, "body": json!({"topic": "t", "groups": ["a"]}).to_string()},
            {"body": json!({"topic": "t", "groups": ["a"]}).to_string()}
        ]});
        let e = handle(&p, event).await.unwrap_err();
        assert!(e.to_string().contains("Records[1].messageId"), "{e}");
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(p.calls.lock().unwrap().is_empty(), "nothing was sent");
    }

    #[tokio::test]
    async fn a_malformed_eventbridge_envelope_is_invalid_input_naming_the_field() {
        let p = FakePublisher::default();
        let e = handle(
            &p,
            json!({"detail-type": "X", "source": "s", "time": "yesterday", "detail": {"topic": "t", "groups": ["a"]}}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(e.to_string().contains("EventBridge event"), "{e}");
        let e = handle(&p, json!({"detail-type": "X", "detail": {}}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("source"), "{e}");
    }

    #[tokio::test]
    async fn the_invocation_deadline_reaches_every_publish_call() {
        #[derive(Default)]
        struct Deadlines(Mutex<Vec<Option<SystemTime>>>);
        impl Publish for Deadlines {
            async fn publish_all(
                &self,
                _: &[Message],
                opts: &PublishOptions,
            ) -> Result<crate::PublishReport, Error> {
                self.0.lock().unwrap().push(opts.deadline);
                Ok(crate::PublishReport::default())
            }
        }
        let p = Deadlines::default();
        let until = SystemTime::now() + std::time::Duration::from_secs(3);
        let message = json!({"topic": "t", "groups": ["a"]});
        handle_until(&p, message.clone(), Some(until))
            .await
            .unwrap();
        handle_until(&p, sqs(&[(SQS_ID, message.to_string())]), Some(until))
            .await
            .unwrap();
        handle(&p, message).await.unwrap();
        assert_eq!(*p.0.lock().unwrap(), [Some(until), Some(until), None]);
    }
}
