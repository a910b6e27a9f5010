//! The message model: what server code publishes, and the envelope subscribers receive.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::group::{group_segment, is_valid_segment};
use crate::limits::TOPIC_MAX_SEGMENTS;

/// One message to one or more groups.
///
/// Build it with [`Message::builder`]; a built message is valid: its topic follows the topic rule,
/// it has at least one group, and every group maps to a channel segment. The `id` is a UUID v4
/// made once, at build time, and sent unchanged on every retry and every transport.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    id: Uuid,
    topic: String,
    data: serde_json::Value,
    groups: Vec<String>,
}

/// What subscribers receive on every transport: `{"id","topic","data","groups"}`.
///
/// AppSync Events carries it as the event's JSON text, IoT Core as the MQTT payload. GraphQL
/// subscribers receive the same fields as `{uuid, topic, data, groups}` (`data` as AWSJSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The message id (UUID v4).
    pub id: Uuid,
    /// The message topic.
    pub topic: String,
    /// The payload.
    pub data: serde_json::Value,
    /// The groups the message is addressed to.
    pub groups: Vec<String>,
}

impl Message {
    /// Starts a message to `topic`. See [`MessageBuilder`].
    ///
    /// ```
    /// use groupcast::Message;
    /// let msg = Message::builder("comments/post-42")
    ///     .data(serde_json::json!({"text": "hello"}))
    ///     .groups(["editors", "team-a"])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(msg.groups(), ["editors", "team-a"]);
    /// ```
    pub fn builder(topic: impl Into<String>) -> MessageBuilder {
        MessageBuilder {
            id: None,
            topic: topic.into(),
            data: serde_json::Value::Null,
            groups: Vec::new(),
        }
    }

    /// The id, kept across retries and transports.
    pub fn id(&self) -> Uuid {
        self.id
    }
    /// The topic: 1–3 channel segments joined by `/`.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The payload.
    pub fn data(&self) -> &serde_json::Value {
        &self.data
    }
    /// The groups, in the order given, without duplicates.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }
    /// The envelope subscribers receive.
    pub fn envelope(&self) -> Envelope {
        Envelope {
            id: self.id,
            topic: self.topic.clone(),
            data: self.data.clone(),
            groups: self.groups.clone(),
        }
    }
    /// The envelope as compact JSON text.
    pub fn envelope_json(&self) -> String {
        // A message serializes as its envelope (same fields, same order; a test holds them
        // equal), so the payload is not deep-copied into an `Envelope` first.
        serde_json::to_string(self).expect("a JSON value always serializes")
    }
}

/// Builds a [`Message`]; [`build`](Self::build) validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct MessageBuilder {
    id: Option<Uuid>,
    topic: String,
    data: serde_json::Value,
    groups: Vec<String>,
}

impl MessageBuilder {
    /// Sets the payload (default `null`).
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
    /// Adds one group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }
    /// Adds groups.
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }
    /// Keeps an id made earlier, e.g. when a queue redelivers a message; by default a new UUID v4.
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Validates and builds the message.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field (`topic`, `groups`, `groups[i]`) and the rule broken.
    pub fn build(self) -> Result<Message, Error> {
        validate_topic(&self.topic)?;
        if self.groups.is_empty() {
            return Err(Error::invalid(
                "groups",
                "a message needs at least one group; an empty list would reach no one",
            ));
        }
        let mut groups: Vec<String> = Vec::with_capacity(self.groups.len());
        for (i, g) in self.groups.into_iter().enumerate() {
            group_segment(&g).map_err(|e| Error::invalid(format!("groups[{i}]"), e.to_string()))?;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Ok(Message {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            topic: self.topic,
            data: self.data,
            groups,
        })
    }
}

/// The topic rule: 1–3 segments joined by `/`, each a valid channel segment (1–50 of
/// `[A-Za-z0-9-]`, alphanumeric at both ends). It is what fits every transport: an Events channel
/// `/{namespace}/{group}/{topic}` of at most 5 segments, and an IoT topic level path.
pub fn validate_topic(topic: &str) -> Result<(), Error> {
    const RULE: &str = "1 to 3 segments joined by '/', each 1-50 characters of [A-Za-z0-9-] \
                        starting and ending with a letter or digit";
    if topic.is_empty() {
        return Err(Error::invalid(
            "topic",
            format!("must not be empty: {RULE}"),
        ));
    }
    let segments: Vec<&str> = topic.split('/').collect();
    if segments.len() > TOPIC_MAX_SEGMENTS {
        return Err(Error::invalid(
            "topic",
            format!("{topic:?} has {} segments: {RULE}", segments.len()),
        ));
    }
    if let Some(bad) = segments.iter().find(|s| !is_valid_segment(s)) {
        return Err(Error::invalid(
            "topic",
            format!("{topic:?} has the segment {bad:?}: {RULE}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_v4_and_distinct() {
        let ids: std::collections::HashSet<Uuid> = (0..10_000)
            .map(|_| Message::builder("t").group("g").build().unwrap().id())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }

    #[test]
    fn envelope_json_is_the_envelope_serialized() {
        let m = Message::builder("jobs/42")
            .data(serde_json::json!({"b": [1, {"z": null, "a": "é\u{2028}"}], "a": 1.5}))
            .groups(["team-a", "Team_B"])
            .build()
            .unwrap();
        assert_eq!(
            m.envelope_json(),
            serde_json::to_string(&m.envelope()).unwrap()
        );
        let back: Envelope = serde_json::from_str(&m.envelope_json()).unwrap();
        assert_eq!(back, m.envelope());
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn builds_with_a_fresh_v4_id_and_deduplicated_groups() {
        let m = Message::builder("a/b")
            .groups(["x", "y", "x"])
            .build()
            .unwrap();
        assert_eq!(m.id().get_version_num(), 4);
        assert_eq!(m.groups(), ["x", "y"]);
        let envelope: serde_json::Value = serde_json::from_str(&m.envelope_json()).unwrap();
        assert_eq!(envelope["id"], m.id().to_string());
        assert_eq!(envelope["groups"], serde_json::json!(["x", "y"]));
    }

    #[test]
    fn rejects_bad_topics_naming_the_field() {
        for t in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/b/c/d",
            "a b",
            "a*",
            "-a",
            &"a".repeat(51),
        ] {
            let e = Message::builder(t).group("g").build().unwrap_err();
            assert!(e.to_string().contains("topic"), "{t:?}: {e}");
            assert_eq!(field_of(e), "topic");
        }
    }

    #[test]
    fn rejects_empty_and_unmappable_groups_naming_the_index() {
        assert_eq!(
            field_of(Message::builder("t").build().unwrap_err()),
            "groups"
        );
        let e = Message::builder("t")
            .groups(["ok", ""])
            .build()
            .unwrap_err();
        assert_eq!(field_of(e), "groups[1]");
        let e = Message::builder("t")
            .group("é".repeat(20))
            .build()
            .unwrap_err();
        assert_eq!(field_of(e), "groups[0]");
    }
}
