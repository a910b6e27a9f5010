//! # groupcast
//!
//! Publish one message to a set of groups, through AppSync Events, an AppSync GraphQL pubsub API or
//! AWS IoT Core, so that only members of those groups receive it.
//!
//! - [`Message`]: what you publish; built and validated with [`Message::builder`].
//! - [`Publisher`]: sends messages over the configured [`Transport`]s (with the `websocket`
//!   feature, also AppSync Events over one long-lived WebSocket, [`Transport::EventsWs`]) and returns a
//!   [`PublishReport`] with one [`Delivery`] per (message, group, transport). Configure it in code
//!   ([`Publisher::builder`]), from `GROUPCAST_*` variables ([`Publisher::from_env`], listed in
//!   [`config`]) or from the provisioner's [`Outputs`].
//! - [`Authorizer`]: IAM (SigV4), an API key, or a [`TokenProvider`]; one per publisher, and a
//!   publish call may override it ([`PublishOptions`]).
//! - [`Publisher::revoke`]: one call that stops a user receiving groups they left, on every
//!   configured transport, with a [`RevokeReport`] per transport ([`revoke`]).
//! - [`group_segment`]: the one rule from a group name to a channel segment and IoT topic level.
//! - [`limits`]: every AWS limit groupcast enforces, checked before anything is sent.
//! - `lambda` (feature `lambda`): the publisher Lambda's batch policy for direct, SQS and
//!   EventBridge invocations.
//!
//! ```no_run
//! # async fn run() -> Result<(), groupcast::Error> {
//! use groupcast::{Message, Publisher};
//! let publisher = Publisher::from_env().await?; // e.g. GROUPCAST_OUTPUTS=outputs.json
//! let msg = Message::builder("comments/post-42")
//!     .data(serde_json::json!({"text": "hello"}))
//!     .groups(["editors", "team-a"])
//!     .build()?;
//! let report = publisher.publish(&msg).await?;
//! for failure in report.failures() {
//!     eprintln!("{} via {} to {}: {:?}", failure.message_id, failure.transport, failure.group, failure.outcome);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//! - Oversize or invalid input is an [`Error::Invalid`] before any request is sent.
//! - Requests are retried on 429, 5xx, network errors and timeouts, with exponential backoff and
//!   full jitter, within one deadline per call; never on validation or auth errors. A retry
//!   resends the same bytes, so the message id stays the same.
//! - An AppSync Events response that fails some events with a transient code (429, 5xx,
//!   throttling, internal errors: [`retry::is_transient_code`]) is followed by a retry of only
//!   those events, byte for byte, within the same attempt budget and deadline; other failed
//!   events are final. Each [`Delivery`] says how many attempts carried it.
//! - Nothing is dropped silently: an event the service does not confirm is reported as failed.

#![warn(missing_docs)]

mod auth;
mod client;
pub mod config;
pub mod epoch;
mod error;
pub mod events;
#[cfg(feature = "websocket")]
pub mod events_ws;
#[cfg(test)]
mod fuzz;
pub mod graphql;
pub mod group;
pub mod iot;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limits;
mod message;
pub mod outputs;
mod report;
pub mod retry;
pub mod revoke;
pub mod sign;
#[cfg(feature = "subscribe")]
pub mod subscribe;
mod transport;

#[doc(inline)]
pub use auth::{Authorizer, CachingTokenProvider, IamAuth, StaticToken, Token, TokenProvider};
#[doc(inline)]
pub use client::{Publish, PublishOptions, Publisher};
#[doc(inline)]
pub use config::PublisherBuilder;
#[doc(inline)]
pub use error::{Error, GraphqlError};
#[doc(inline)]
pub use group::{GroupError, decode_segment, group_segment, is_valid_segment};
#[doc(inline)]
pub use message::{Envelope, Message, MessageBuilder, validate_topic};
#[doc(inline)]
pub use outputs::Outputs;
#[doc(inline)]
pub use report::{Delivery, Outcome, PublishReport};
#[doc(inline)]
pub use retry::RetryPolicy;
#[doc(inline)]
pub use revoke::{RevokeOutcome, RevokeReport, TransportRevocation};
#[doc(inline)]
pub use transport::Transport;
