//! The MQTT 3.1.1 broker: who is connected (one session per client id), what each session
//! subscribed to, and the fan-out of a publish to every session whose filter matches the topic
//! and whose `iot:Receive` allows it *at that moment* (checked per delivery, as AWS does:
//! "The iot:Receive permission is checked every time a message is delivered to a client", so
//! detaching a policy stops delivery to open sessions —
//! https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html).
//!
//! Framing is `rumqttc::mqttbytes::v4` (see [`super::session`]); this module owns only routing
//! and authorization.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rumqttc::mqttbytes::QoS;
use tokio::sync::mpsc;

use super::policy::{self, Action, Policy, Verdict};
use super::state::IotState;
use crate::Stack;
use crate::log::{Decision, Outcome};

/// What a session's writer is asked to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Deliver a PUBLISH.
    Deliver {
        topic: String,
        payload: Bytes,
        qos: QoS,
    },
    /// Close the connection (another connection took the client id, or the authorizer said so).
    Close(&'static str),
}

/// Where a session's rights come from.
#[derive(Debug)]
pub enum Authority {
    /// A Cognito identity: the policies attached to it, read at every check (attachment mode).
    Identity { identity_id: String },
    /// The policy documents the custom authorizer returned, replaced at each refresh.
    Documents(Mutex<Vec<Policy>>),
}

/// A connected client as the policies see it.
#[derive(Debug)]
pub struct Principal {
    pub authority: Authority,
    /// Policy variables (`iot:ClientId`, `cognito-identity.amazonaws.com:sub`, …).
    pub vars: BTreeMap<String, String>,
    /// For logs: the identity id or the authorizer's principal id.
    pub name: String,
}

impl Principal {
    /// The policies in force for this principal now. Attached policies the rendered system does
    /// not hold, or that do not parse, grant nothing (fail closed).
    fn policies(&self, stack: &Stack, state: &IotState) -> Vec<Arc<Policy>> {
        match &self.authority {
            Authority::Identity { identity_id } => {
                let Some(iot) = stack.system.iot.as_ref() else {
                    return Vec::new();
                };
                state
                    .attached(identity_id)
                    .iter()
                    .filter_map(|name| state.parsed(name, iot.policies.get(name)?))
                    .collect()
            }
            Authority::Documents(docs) => docs
                .lock()
                .map(|d| d.iter().cloned().map(Arc::new).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether this principal may do `action` on `resource` (`client/…`, `topic/…`,
    /// `topicfilter/…`, without the ARN prefix), and in words why not.
    pub fn check(
        &self,
        stack: &Stack,
        state: &IotState,
        action: Action,
        resource: &str,
    ) -> Result<(), String> {
        let arn = format!(
            "{}{resource}",
            policy::arn_prefix(&stack.system.region, &stack.system.account_id)
        );
        let policies = self.policies(stack, state);
        match policy::evaluate(policies.iter().map(|p| &**p), action, &arn, &self.vars) {
            Verdict::Allowed => Ok(()),
            Verdict::Denied => Err(format!("{} on {arn}: explicitly denied", action.as_str())),
            Verdict::NotAllowed => Err(format!(
                "{} on {arn}: no attached policy allows it ({} in force)",
                action.as_str(),
                policies.len()
            )),
        }
    }
}

#[derive(Debug)]
struct Entry {
    client_id: String,
    principal: Arc<Principal>,
    /// Granted filters and their QoS.
    filters: Vec<(String, QoS)>,
    tx: mpsc::UnboundedSender<Outbound>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    sessions: HashMap<u64, Entry>,
    by_client: HashMap<String, u64>,
}

/// The broker of one stack (in [`IotState`]).
#[derive(Debug, Default)]
pub struct Broker {
    inner: Mutex<Inner>,
}

impl Broker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Registers a session; a session already holding `client_id` is closed, as AWS does
    /// ("a second connection with the same client id disconnects the first",
    /// https://docs.aws.amazon.com/iot/latest/developerguide/troubleshoot_disconnects.html).
    pub(crate) fn register(
        &self,
        client_id: &str,
        principal: Arc<Principal>,
        tx: mpsc::UnboundedSender<Outbound>,
    ) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        if let Some(old) = inner.by_client.insert(client_id.to_owned(), id)
            && let Some(e) = inner.sessions.remove(&old)
        {
            let _ = e.tx.send(Outbound::Close("DUPLICATE_CLIENT_ID"));
        }
        inner.sessions.insert(
            id,
            Entry {
                client_id: client_id.to_owned(),
                principal,
                filters: Vec::new(),
                tx,
            },
        );
        id
    }

    /// Forgets session `id`.
    pub(crate) fn remove(&self, id: u64) {
        let mut inner = self.lock();
        if let Some(e) = inner.sessions.remove(&id)
            && inner.by_client.get(&e.client_id) == Some(&id)
        {
            inner.by_client.remove(&e.client_id);
        }
    }

    /// Adds (or replaces the QoS of) a granted filter of session `id`.
    pub(crate) fn subscribe(&self, id: u64, filter: &str, qos: QoS) {
        if let Some(e) = self.lock().sessions.get_mut(&id) {
            e.filters.retain(|(f, _)| f != filter);
            e.filters.push((filter.to_owned(), qos));
        }
    }

    /// Removes a filter of session `id`.
    pub(crate) fn unsubscribe(&self, id: u64, filter: &str) {
        if let Some(e) = self.lock().sessions.get_mut(&id) {
            e.filters.retain(|(f, _)| f != filter);
        }
    }

    /// Number of sessions connected now.
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Delivers `payload` on `topic` to every session with a matching filter whose
    /// `iot:Receive` on `topic/{topic}` is allowed now; returns how many received it. Each
    /// session receives a message once, at the highest QoS of its matching filters capped by the
    /// publish's QoS (MQTT 3.1.1 §3.3.5).
    pub fn publish(
        &self,
        stack: &Stack,
        state: &IotState,
        topic: &str,
        payload: Bytes,
        qos: QoS,
    ) -> usize {
        let targets: Vec<(Arc<Principal>, String, QoS, mpsc::UnboundedSender<Outbound>)> = self
            .lock()
            .sessions
            .values()
            .filter_map(|e| {
                let granted = e
                    .filters
                    .iter()
                    .filter(|(f, _)| filter_matches(f, topic))
                    .map(|(_, q)| *q)
                    .max_by_key(|q| *q as u8)?;
                let qos = if (granted as u8) < (qos as u8) {
                    granted
                } else {
                    qos
                };
                Some((e.principal.clone(), e.client_id.clone(), qos, e.tx.clone()))
            })
            .collect();
        let mut delivered = 0;
        for (principal, client_id, qos, tx) in targets {
            let verdict = principal.check(stack, state, Action::Receive, &format!("topic/{topic}"));
            let who = format!("{} ({client_id})", principal.name);
            stack.log.decision(Decision {
                transport: "iot",
                action: "receive",
                target: topic,
                principal: Some(&who),
                outcome: if verdict.is_ok() {
                    Outcome::Admitted
                } else {
                    Outcome::Refused
                },
                reason: verdict.as_ref().err().map(String::as_str),
            });
            if verdict.is_ok()
                && tx
                    .send(Outbound::Deliver {
                        topic: topic.to_owned(),
                        payload: payload.clone(),
                        qos,
                    })
                    .is_ok()
            {
                delivered += 1;
            }
        }
        delivered
    }
}

/// Whether MQTT topic filter `filter` matches topic name `topic` (MQTT 3.1.1 §4.7: `+` one
/// level, `#` this level and all below, and topics starting with `$` are not matched by a
/// filter starting with a wildcard, §4.7.2).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `filter` is a valid MQTT topic filter (§4.7.1): non-empty, `#` only as the whole last
/// level, `+` only as a whole level, no NUL.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| {
        (!l.contains('#') || (*l == "#" && i == levels.len() - 1))
            && (!l.contains('+') || *l == "+")
    })
}

/// Whether `topic` is a valid MQTT topic name to publish to (§4.7.3): non-empty, no wildcard,
/// no NUL.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_filters_match_topics_as_the_standard_says() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/#", "a"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("#", "a/b"));
        assert!(!filter_matches("#", "$aws/things"));
        assert!(!filter_matches("+/x", "$sys/x"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b", "a/bc"));
    }

    #[test]
    fn malformed_filters_and_topics_are_recognised() {
        assert!(valid_filter("a/#") && valid_filter("+/b/+") && valid_filter("#"));
        assert!(
            !valid_filter("a/#/b")
                && !valid_filter("a/b#")
                && !valid_filter("a+/b")
                && !valid_filter("")
        );
        assert!(
            valid_topic("a/b") && !valid_topic("a/+") && !valid_topic("a/#") && !valid_topic("")
        );
    }
}
