//! Wire tests: the publisher against local servers on 127.0.0.1 that capture every request.
//!
//! - `events`, `graphql`, `iot`: bodies, headers per authorizer, batching, limits, response mapping.
//! - `retries`: what is retried, with which body, and the deadline.
//! - `revoke`: `Publisher::revoke` per transport (GraphQL mutation, Lambda Invoke, Events bound).
//! - `sigv4`: captured signatures re-verified by botocore (Python), independently of aws-sigv4.
//! - `moto`: signed Events and IoT publishes against a real moto server.
//! - `events_ws`: AppSync Events over WebSocket against `ws_server`, a local protocol peer.
//! - `faults`: the fault-injection suite against `fault_sink` (500, 429, resets, per-event
//!   failures, slow responses at seeded rates).

// Test helpers are `pub` for sibling modules; this crate has no outside users.
#![allow(unreachable_pub)]

mod events;
mod events_ws;
mod fault_sink;
mod faults;
mod from_env;
mod graphql;
mod iot;
mod moto;
mod retries;
mod revoke;
mod server;
mod sigv4;
mod ws_server;

use std::time::Duration;

use aws_credential_types::Credentials;
use groupcast::{Message, RetryPolicy};

/// Fast retries, so tests do not wait.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        attempt_timeout: Duration::from_secs(5),
    }
}

pub fn msg(topic: &str, groups: &[&str], data: serde_json::Value) -> Message {
    Message::builder(topic)
        .groups(groups.iter().copied())
        .data(data)
        .build()
        .unwrap()
}

pub const ACCESS_KEY: &str = "AKIDGROUPCASTTEST";
pub const SECRET_KEY: &str = "groupcast/test/secret+key/0123456789abcdef";

pub fn creds(session_token: Option<&str>) -> Credentials {
    Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        session_token.map(str::to_owned),
        None,
        "test",
    )
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python of the test peers: `$GROUPCAST_PYTHON`, else `<repo>/.venv/bin/python`. Missing is
/// a failure, not a skip: CI installs it.
pub fn python() -> std::path::PathBuf {
    let p = std::env::var_os("GROUPCAST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "Python test peer not found at {}: create it with `python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt` \
         or set GROUPCAST_PYTHON",
        p.display()
    );
    p
}
