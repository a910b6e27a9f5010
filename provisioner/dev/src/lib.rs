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
//! - [`functions`] — the Lambda functions the stack runs (iot-grant) and the AWS endpoint its
//!   functions call.
//!
//! The provisioner's `dev` subcommand (provisioner/src/commands/dev.rs) is a thin adapter: it
//! loads the config, builds a [`system::System`], and calls into this crate.

pub mod auth;
pub mod aws;
pub mod events;
pub mod functions;
pub mod graphql;
pub mod identity;
pub mod iot;
pub mod lambda_rt;
pub mod log;
pub mod outputs;
pub mod run;
pub mod sigv4;
pub mod system;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

/// The ports the stack listens on (127.0.0.1 unless `--listen`), fixed by default so a frontend's
/// outputs stay valid across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// AppSync Events: HTTPS `POST /event` and WSS `/event/realtime`.
    pub events: u16,
    /// AppSync GraphQL: HTTPS `POST /graphql` and its realtime WebSocket.
    pub graphql: u16,
    /// IoT: MQTT over WSS (`/mqtt`, SigV4-presigned or custom-authorizer query).
    pub iot_wss: u16,
    /// IoT: MQTT over TLS on TCP.
    pub iot_mqtt: u16,
    /// The emulated AWS APIs (Cognito user pool incl. JWKS and tokens, Cognito identity, IoT
    /// control plane, Lambda Invoke).
    pub aws: u16,
}

impl Default for Ports {
    fn default() -> Ports {
        Ports {
            events: 4510,
            graphql: 4511,
            iot_wss: 4512,
            iot_mqtt: 4513,
            aws: 4514,
        }
    }
}

/// Everything a transport needs while it serves: what to serve, who is calling, where to log.
/// Shared by all connections of all transports (`Arc<Stack>`).
pub struct Stack {
    /// The rendered system.
    pub system: Arc<system::System>,
    /// The one place callers are authenticated.
    pub auth: auth::Authenticator,
    /// The decision log.
    pub log: log::DecisionLog,
    /// TLS for every listener; `None` serves plain TCP (transports' own tests only).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Where the CA, keys, users and attachments are kept across runs.
    pub state_dir: PathBuf,
    /// Where each endpoint listens.
    pub ports: Ports,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("system", &self.system)
            .field("auth", &self.auth)
            .field("tls", &self.tls.is_some())
            .field("state_dir", &self.state_dir)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}
