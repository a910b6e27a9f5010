//! What a publish call returns: one [`Delivery`] per (message, group, transport), never fewer.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::transport::Transport;

/// The result of a publish call. It holds exactly one entry per (message, group, transport) that
/// the call was asked to deliver, in the order messages, then transports, then groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishReport {
    /// One entry per (message, group, transport).
    pub deliveries: Vec<Delivery>,
}

/// The fate of one message to one group over one transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message's id.
    pub message_id: Uuid,
    /// The group, as named in the message (not its segment).
    pub group: String,
    /// The transport.
    pub transport: Transport,
    /// Delivered or failed.
    pub outcome: Outcome,
    /// The attempts that carried it: 1 when the first attempt decided it, more after retries
    /// (of the whole request, or of this event alone), 0 when none was made (the deadline had
    /// passed).
    #[serde(default)]
    pub attempts: u32,
    /// The AppSync Events channel it was published to (in a time-sliced namespace with its epoch
    /// segment, `/{namespace}/{group}/t{N}/{topic}`); `None` for GraphQL and IoT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// Delivered, or failed with its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// The service accepted it.
    Delivered {
        /// The service's id for it, when the service gives one (AppSync Events `identifier`,
        /// the GraphQL mutation's returned `uuid`); IoT Core gives none.
        identifier: Option<String>,
    },
    /// It was not delivered.
    Failed {
        /// The cause, in words (an [`crate::Error`] rendered).
        error: String,
        /// Whether trying again later might succeed (throttling, 5xx, network, deadline).
        retryable: bool,
    },
}

impl Outcome {
    /// Whether this is [`Outcome::Delivered`].
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
}

impl PublishReport {
    /// True when every entry was delivered.
    pub fn is_complete(&self) -> bool {
        self.deliveries.iter().all(|d| d.outcome.is_delivered())
    }

    /// The entries that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Delivery> {
        self.deliveries.iter().filter(|d| !d.outcome.is_delivered())
    }

    /// The entries that were delivered.
    pub fn delivered(&self) -> impl Iterator<Item = &Delivery> {
        self.deliveries.iter().filter(|d| d.outcome.is_delivered())
    }

    /// Appends another report's entries (e.g. of a later call).
    pub fn extend(&mut self, other: PublishReport) {
        self.deliveries.extend(other.deliveries);
    }
}
