//! The open subscriptions of every realtime connection, and the two things a mutation does to
//! them: deliver its result to the subscriptions whose filter matches (AppSync's enhanced
//! filters, groupcast-vtl's evaluator), and invalidate those whose invalidation filter matches an
//! `invalidateSubscriptions` payload.
//!
//! A delivery is serialized once per (subscription field key, selection set) and the same bytes
//! are spliced into each matching subscription's `data` frame; connections receive ready text over
//! an unbounded channel, so a publish never waits for a slow reader.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use groupcast_vtl::filter::filter_matches;
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;

use super::parse::Field;

/// What a connection's writer is told to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this text frame (cheap to clone, never copied again on its way out).
    Text(Utf8Bytes),
    /// The subscription `id` was invalidated: send AppSync's invalidation frame.
    Invalidated { id: String },
}

/// One subscription, as registered by `start`.
#[derive(Debug)]
pub struct Sub {
    pub connection: u64,
    pub id: String,
    /// The schema field (`subscribe`).
    pub field: String,
    /// The key the field has in the data (its alias, or its name).
    pub key: String,
    /// The selection set, and a canonical text of it with the key (the serialization cache key).
    pub selection: Vec<Field>,
    pub shape: String,
    /// The enhanced filter set at subscribe time; `None`: argument filtering.
    pub filter: Option<Json>,
    /// Without an enhanced filter, AppSync filters on the subscription's non-null arguments
    /// (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-data.html).
    pub argument_filter: Map<String, Json>,
    pub invalidation_filter: Option<Json>,
    /// The filter (or argument filter) as JSON text: subscriptions with the same filter share one
    /// evaluation per delivery.
    pub filter_key: String,
    /// Who subscribed (for the decision log).
    pub principal: String,
    pub tx: mpsc::UnboundedSender<Outbound>,
}

impl Sub {
    fn matches(&self, payload: &Json) -> bool {
        match &self.filter {
            Some(f) => filter_matches(f, payload),
            None => self
                .argument_filter
                .iter()
                .all(|(k, v)| v.is_null() || payload.get(k) == Some(v)),
        }
    }
}

/// Every open subscription, by (connection, subscription id).
#[derive(Debug, Default)]
pub struct Hub {
    subs: RwLock<HashMap<(u64, String), Arc<Sub>>>,
}

/// The JSON text of a string (for splicing ids into frames).
fn quoted(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

impl Hub {
    /// Registers `sub`; false if its id is already in use on its connection.
    pub fn add(&self, sub: Sub) -> bool {
        let Ok(mut subs) = self.subs.write() else {
            return false;
        };
        let key = (sub.connection, sub.id.clone());
        if subs.contains_key(&key) {
            return false;
        }
        subs.insert(key, Arc::new(sub));
        true
    }

    /// Removes one subscription; whether it existed.
    pub fn remove(&self, connection: u64, id: &str) -> bool {
        self.subs
            .write()
            .map(|mut s| s.remove(&(connection, id.to_owned())).is_some())
            .unwrap_or(false)
    }

    /// Removes every subscription of a closed connection.
    pub fn remove_connection(&self, connection: u64) {
        if let Ok(mut s) = self.subs.write() {
            s.retain(|(c, _), _| *c != connection);
        }
    }

    /// How many subscriptions `connection` holds.
    pub fn count(&self, connection: u64) -> usize {
        self.subs
            .read()
            .map(|s| s.keys().filter(|(c, _)| *c == connection).count())
            .unwrap_or(0)
    }

    /// Delivers `payload` (the mutation's selected result) to every subscription of `fields`
    /// whose filter matches; `shape(sub)` gives the payload as that subscription selects it.
    /// Returns the subscriptions reached.
    pub fn deliver(
        &self,
        fields: &[String],
        payload: &Json,
        shape: impl Fn(&Sub) -> Json,
    ) -> Vec<Arc<Sub>> {
        let Ok(subs) = self.subs.read() else {
            return Vec::new();
        };
        let mut bodies: HashMap<&str, String> = HashMap::new();
        let mut verdicts: HashMap<&str, bool> = HashMap::new();
        let mut reached = Vec::new();
        for sub in subs.values() {
            if !fields.contains(&sub.field)
                || !*verdicts
                    .entry(sub.filter_key.as_str())
                    .or_insert_with(|| sub.matches(payload))
            {
                continue;
            }
            let body = bodies.entry(sub.shape.as_str()).or_insert_with(|| {
                let mut data = Map::new();
                data.insert(sub.key.clone(), shape(sub));
                serde_json::json!({"data": data}).to_string()
            });
            let frame = format!(
                r#"{{"id":{},"type":"data","payload":{body}}}"#,
                quoted(&sub.id)
            );
            if sub.tx.send(Outbound::Text(Utf8Bytes::from(frame))).is_ok() {
                reached.push(sub.clone());
            }
        }
        reached
    }

    /// Removes, and tells, every subscription of `field` whose invalidation filter matches
    /// `payload`. Returns the ones invalidated.
    pub fn invalidate(&self, field: &str, payload: &Json) -> Vec<Arc<Sub>> {
        let Ok(mut subs) = self.subs.write() else {
            return Vec::new();
        };
        let hit: Vec<(u64, String)> = subs
            .iter()
            .filter(|(_, s)| {
                s.field == field
                    && s.invalidation_filter
                        .as_ref()
                        .is_some_and(|f| filter_matches(f, payload))
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in hit {
            if let Some(s) = subs.remove(&k) {
                let _ = s.tx.send(Outbound::Invalidated { id: s.id.clone() });
                out.push(s);
            }
        }
        out
    }
}
