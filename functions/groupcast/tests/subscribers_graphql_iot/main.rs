//! The GraphQL and IoT subscribers (feature `subscribe`) against real peers on 127.0.0.1.
//!
//! - `iot`: Debian's mosquitto (MQTT over WebSocket), started per test on free ports; the
//!   presigned URL on the wire re-verified by botocore (tests/verify_presigned.py).
//! - `graphql_edges`: a local Rust server speaking AppSync's realtime protocol, for the edges
//!   (group split, de-dup, refused part, stop on drop, reconnect, invalidation, garbage).
//! - `graphql_simulator`: `amplify-appsync-simulator` (tests/node_modules), a third-party peer of
//!   the protocol, started through node.

// Test helpers are `pub` for sibling modules; this crate has no outside users.
#![allow(unreachable_pub)]

mod graphql_edges;
mod graphql_simulator;
mod iot;
mod mqtt_peer;

use std::time::Duration;

use aws_credential_types::Credentials;
use groupcast::subscribe::{ReconnectPolicy, Subscription, SubscriptionEvent};

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

/// Reconnects quickly, so tests do not wait.
pub fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        base: Duration::from_millis(50),
        max: Duration::from_millis(300),
    }
}

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python of the test peers: `$GROUPCAST_PYTHON`, else `<repo>/.venv/bin/python`.
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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The next event within `secs` seconds, or a panic saying what was awaited.
pub async fn next(sub: &mut Subscription, secs: u64, what: &str) -> SubscriptionEvent {
    match tokio::time::timeout(Duration::from_secs(secs), sub.next_event()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the subscription ended while waiting for {what}"),
        Err(_) => panic!("no event within {secs} s while waiting for {what}"),
    }
}

/// Skips state events until `pred` holds for one, which is returned; panics on timeout.
pub async fn until(
    sub: &mut Subscription,
    secs: u64,
    what: &str,
    pred: impl Fn(&SubscriptionEvent) -> bool,
) -> SubscriptionEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, sub.next_event()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(SubscriptionEvent::State(_) | SubscriptionEvent::Active)) => {}
            Ok(Some(e)) => panic!("while waiting for {what}: unexpected {e:?}"),
            Ok(None) => panic!("the subscription ended while waiting for {what}"),
            Err(_) => panic!("no event within {secs} s while waiting for {what}"),
        }
    }
}

/// The next message (skipping state and Active events).
pub async fn next_message(
    sub: &mut Subscription,
    secs: u64,
    what: &str,
) -> groupcast::subscribe::Received {
    match until(sub, secs, what, |e| {
        matches!(
            e,
            SubscriptionEvent::Message(_) | SubscriptionEvent::PartEnded { .. }
        )
    })
    .await
    {
        SubscriptionEvent::Message(m) => m,
        other => panic!("while waiting for {what}: {other:?}"),
    }
}

/// Asserts no message arrives within `ms` milliseconds.
pub async fn no_message(sub: &mut Subscription, ms: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, sub.next_event()).await {
            Err(_) => return,
            Ok(Some(SubscriptionEvent::Message(m))) => panic!("unexpected message {m:?}"),
            Ok(Some(_)) => {}
            Ok(None) => return,
        }
    }
}
