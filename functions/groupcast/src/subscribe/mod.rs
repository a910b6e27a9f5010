//! Receiving groupcast messages (feature `subscribe`): the types every subscriber transport shares.
//!
//! This module owns the contract between a transport and its caller, so that AppSync Events
//! (`subscribe::events`), AppSync GraphQL (`subscribe::graphql`) and IoT Core (`subscribe::iot`)
//! look the same from outside:
//!
//! - a [`Subscription`] is a stream of [`SubscriptionEvent`]s for one call (`subscribe_groups`,
//!   or a raw `subscribe`): [`SubscriptionEvent::Active`] once the service has confirmed *every*
//!   part of it (so nothing published afterwards is missed), then [`SubscriptionEvent::Message`]s,
//!   de-duplicated by message id across the parts ([`Dedup`]), [`SubscriptionEvent::PartEnded`]
//!   when the service ends one part with a final error (siblings keep running), and
//!   [`SubscriptionEvent::State`] on every connection state change;
//! - dropping a [`Subscription`] unsubscribes it (its transport sees the receiver closed);
//! - reconnects wait [`ReconnectPolicy::delay`]: exponential backoff with full jitter.
//!
//! A "part" is one service-side subscription: one Events channel, one GraphQL subscription (a
//! slice of the caller's groups), or one MQTT topic filter.

pub mod events;

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::message::Envelope;

/// One thing a subscription reports, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// The service confirmed every part that has not ended (Events `subscribe_success`, GraphQL
    /// `start_ack`, MQTT `SUBACK`). Reported once per (re)connection: after a reconnect it says the
    /// subscription is complete again.
    Active,
    /// A message, reported once per message id however many parts carried it.
    Message(Received),
    /// The service ended one part with an error that retrying will not fix (e.g. unauthorized);
    /// the other parts keep running. Never followed by messages of that part.
    PartEnded {
        /// The part: the Events channel, the GraphQL groups slice, or the MQTT topic filter.
        part: String,
        /// Why.
        error: SubscribeError,
    },
    /// The connection changed state.
    State(ConnectionState),
}

/// A received message and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The message, as the publisher sent it.
    pub envelope: Envelope,
    /// The part it first arrived on (channel, groups slice or topic).
    pub part: String,
}

/// The state of a subscriber's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Opening the connection (first time or after a loss).
    Connecting,
    /// Connected and acknowledged (`connection_ack` / `CONNACK`).
    Connected,
    /// Waiting before the next connection attempt.
    Backoff {
        /// Consecutive failed attempts so far (1 for the first retry).
        attempt: u32,
        /// How long we wait.
        delay: Duration,
    },
    /// Closed for good: by `close()`, by drop, or after a non-recoverable connection error.
    Closed,
}

/// Why a subscription, or one part of it, failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The service refused the caller for this part (Events `Unauthorized`, GraphQL
    /// `Unauthorized`, MQTT SUBACK failure). Final.
    #[error("unauthorized for {part}: {message}")]
    Unauthorized {
        /// The part refused.
        part: String,
        /// What the service said.
        message: String,
    },
    /// The service rejected the subscription for another reason (bad channel, limits). Final.
    #[error("rejected {part} ({error_type}): {message}")]
    Rejected {
        /// The part rejected.
        part: String,
        /// The service's error type.
        error_type: String,
        /// What the service said.
        message: String,
    },
    /// The caller's input broke a rule (a group with no channel segment, a bad topic). Nothing was
    /// sent.
    #[error("invalid {field}: {rule}")]
    Invalid {
        /// The field, e.g. `groups[2]`, `topic`.
        field: String,
        /// The rule, in words.
        rule: String,
    },
    /// The connection could not be made or was refused (authentication at connect is final,
    /// network errors are retried by the transport and only surface as [`ConnectionState`]).
    #[error("connection: {0}")]
    Connection(String),
    /// The subscriber is closed.
    #[error("the subscriber is closed")]
    Closed,
}

/// How long to wait before reconnect attempt `n`: exponential backoff with full jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The cap of the first wait; it doubles per failed attempt.
    pub base: Duration,
    /// The largest cap.
    pub max: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// The wait before reconnect attempt `attempt` (1-based): uniform in `[0, min(max, base·2^(attempt-1))]`.
    /// Full jitter spreads a fleet of clients that lost the same server.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        let millis = cap.as_millis().min(u128::from(u64::MAX)) as u64;
        Duration::from_millis(fastrand::u64(0..=millis))
    }
}

/// Remembers the last `capacity` message ids, so a message addressed to several of the caller's
/// groups (and so delivered on several parts), or re-delivered after a reconnect, is reported once.
#[derive(Debug)]
pub struct Dedup {
    seen: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    capacity: usize,
}

impl Dedup {
    /// The default window: far more messages than can be in flight across a reconnect.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A window of `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Dedup {
            seen: HashSet::with_capacity(capacity.min(65_536)),
            order: VecDeque::with_capacity(capacity.min(65_536)),
            capacity,
        }
    }

    /// True the first time `id` is seen inside the window.
    pub fn first_time(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup::new(Self::DEFAULT_CAPACITY)
    }
}

/// One subscription: a stream of [`SubscriptionEvent`]s. Dropping it unsubscribes every part.
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<SubscriptionEvent>,
}

impl Subscription {
    /// The receiving half a transport hands out; the transport keeps the sender, and treats a
    /// closed sender (the `Subscription` dropped) as "unsubscribe every part".
    pub fn channel(buffer: usize) -> (mpsc::Sender<SubscriptionEvent>, Subscription) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (tx, Subscription { events: rx })
    }

    /// The next event; `None` once the subscription has ended (every part ended, or the
    /// subscriber closed).
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        self.events.recv().await
    }

    /// The next message, skipping state changes. Part errors are returned as `Err` (the subscription
    /// goes on); `None` when it has ended.
    pub async fn next_message(&mut self) -> Option<Result<Received, SubscribeError>> {
        loop {
            match self.events.recv().await? {
                SubscriptionEvent::Message(m) => return Some(Ok(m)),
                SubscriptionEvent::PartEnded { error, .. } => return Some(Err(error)),
                SubscriptionEvent::Active | SubscriptionEvent::State(_) => {}
            }
        }
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_reported_once_within_the_window_and_again_after_it_slides_out() {
        let mut d = Dedup::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(d.first_time(a));
        assert!(!d.first_time(a));
        assert!(d.first_time(b));
        assert!(d.first_time(c)); // a slides out
        assert!(!d.first_time(b));
        assert!(d.first_time(a));
    }

    #[test]
    fn reconnect_delays_stay_under_a_doubling_cap_that_stops_at_the_maximum() {
        let p = ReconnectPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(3) <= Duration::from_millis(400));
            assert!(p.delay(40) <= Duration::from_secs(1));
            assert!(p.delay(u32::MAX) <= Duration::from_secs(1));
        }
    }
}
