//! # groupcast
//!
//! Publish one message to a set of groups, through AppSync Events, an AppSync GraphQL pubsub API or
//! AWS IoT Core, so that only members of those groups receive it.
//!
//! - [`Message`]: what you publish; built and validated with [`Message::builder`].
//! - [`group_segment`]: the one rule from a group name to a channel segment and IoT topic level.
//! - [`limits`]: every AWS limit groupcast enforces, checked before anything is sent.
//! - [`Outputs`]: the provisioner's outputs file, from which a publisher configures itself.

#![warn(missing_docs)]

mod error;
pub mod group;
pub mod limits;
mod message;
pub mod outputs;

#[doc(inline)]
pub use error::{Error, GraphqlError};
#[doc(inline)]
pub use group::{GroupError, decode_segment, group_segment, is_valid_segment};
#[doc(inline)]
pub use message::{Envelope, Message, MessageBuilder, validate_topic};
#[doc(inline)]
pub use outputs::Outputs;
