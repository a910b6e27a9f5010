//! The local stack (`provisioner dev`): one process that serves what `provisioner render`
//! produced, with the same rules as AWS, so the official clients and groupcast's own publisher
//! and subscribers work unchanged against it (issue 11).
//!
//! How it is put together, module by module:
//! - [`system`] — *what* is served: plain data built by the provisioner from the config and the
//!   rendered documents (handlers, VTL, IoT policies, auth settings). No I/O.
//! - [`auth`] — *who* is calling: every transport hands the caller's headers to one
//!   [`auth::Authenticator`], which verifies JWTs, SigV4 signatures and API keys, runs the Lambda
//!   authorizer, and answers with the identity AppSync would give the handler or resolver.
//! - [`log`] — every admit / refuse decision, on stderr, text or JSON.
//! - `events`, `graphql`, `iot` — the three transports, each `serve(listener, stack)`.
//!
//! The provisioner's `dev` subcommand (provisioner/src/commands/dev.rs) is a thin adapter: it
//! loads the config, builds a [`system::System`], and calls into this crate.

pub mod auth;
pub mod log;
pub mod system;

use std::sync::Arc;

/// Everything a transport needs while it serves: what to serve, who is calling, where to log.
/// Shared by all connections of all transports (`Arc<Stack>`).
#[derive(Debug)]
pub struct Stack {
    /// The rendered system.
    pub system: Arc<system::System>,
    /// The one place callers are authenticated.
    pub auth: auth::Authenticator,
    /// The decision log.
    pub log: log::DecisionLog,
}
