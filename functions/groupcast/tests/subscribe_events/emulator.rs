//! The subscriber against the project's Node AppSync Events emulator
//! (`tests/e2e/events-emulator.mjs`, started by `emulator.mjs` beside this file), which runs the
//! Events handler `provisioner render` produced from `tests/e2e/e2e.toml`: the real `onSubscribe`
//! decides who may subscribe where, and the real publisher publishes over HTTP.
//!
//! What the emulator trusts (its header says so): Cognito JWTs are decoded, never verified, so the
//! tokens here are unsigned; the API key stands in for the IAM publisher.
//!
//! Needs `node` on PATH (the harness's `ws` comes from `tests/node_modules`) and the provisioner
//! binary: `$GROUPCAST_PROVISIONER`, else `provisioner` in this test's target directory (built by
//! `cargo test --workspace`, or `cargo build -p groupcast-provisioner`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use groupcast::subscribe::SubscriptionEvent;
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{SubscribeError, Subscription};
use groupcast::{Authorizer, Message, Publisher, StaticToken, Transport};
use serde_json::{Value, json};

use crate::{events_within, fast_reconnect, until_active};

const API_KEY: &str = "da2-rust-subscriber-e2e";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The provisioner binary the emulator renders with.
fn provisioner() -> PathBuf {
    if let Some(p) = std::env::var_os("GROUPCAST_PROVISIONER") {
        return PathBuf::from(p);
    }
    // This test runs as {target}/debug/deps/subscribe_events-…; the binary is {target}/debug/provisioner.
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("provisioner"))
        .unwrap();
    assert!(
        p.exists(),
        "the provisioner binary is missing at {}: build it (`cargo build -p groupcast-provisioner`, \
         which `cargo test --workspace` does) or set GROUPCAST_PROVISIONER",
        p.display()
    );
    p
}

/// A running emulator; killed (it is our child) when dropped.
struct Emulator {
    child: Child,
    realtime_url: String,
    http_url: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    fn start() -> Emulator {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/subscribe_events/emulator.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(API_KEY)
            .env("GROUPCAST_PROVISIONER", provisioner())
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("node (on PATH) runs the Events emulator: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the emulator prints its address within 60 s");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the emulator printed {line:?}: {e}"));
        Emulator {
            child,
            realtime_url: v["realtimeUrl"].as_str().unwrap().to_owned(),
            http_url: v["httpUrl"].as_str().unwrap().to_owned(),
        }
    }
}

/// An unsigned (alg "none") Cognito ID token, as tests/e2e/isolation.e2e.test.js makes them.
fn cognito_jwt(name: &str, groups: &[&str]) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = json!({
        "sub": format!("sub-{name}"), "cognito:username": name,
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_E2eTest01",
        "token_use": "id", "exp": exp, "cognito:groups": groups,
    });
    format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

async fn publish(publisher: &Publisher, topic: &str, groups: &[&str], n: u32) -> Message {
    let m = Message::builder(topic)
        .groups(groups.iter().copied())
        .data(json!({"n": n}))
        .build()
        .unwrap();
    let report = publisher.publish(&m).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    m
}

fn ids(events: &[SubscriptionEvent]) -> Vec<(uuid::Uuid, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Message(m) => Some((m.envelope.id, m.part.clone())),
            _ => None,
        })
        .collect()
}

fn part_errors(events: &[SubscriptionEvent]) -> Vec<(String, SubscribeError)> {
    events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::PartEnded { part, error } => Some((part.clone(), error.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn against_the_rendered_handler_a_member_receives_its_groups_once_and_a_foreign_group_is_refused()
 {
    let emu = tokio::task::spawn_blocking(Emulator::start).await.unwrap();
    // carol is in team-a and Team_B, not team-b.
    let carol = EventsSubscriber::builder()
        .realtime_url(&emu.realtime_url)
        .namespace("live")
        .authorizer(Authorizer::token(StaticToken(cognito_jwt(
            "carol",
            &["team-a", "Team_B"],
        ))))
        .reconnect(fast_reconnect())
        .build()
        .unwrap();
    let mut sub: Subscription = carol
        .subscribe_groups(&["team-a", "Team_B", "team-b"], "*")
        .await
        .unwrap();
    let before = until_active(&mut sub).await;
    let refused = part_errors(&before);
    assert_eq!(refused.len(), 1, "{before:?}");
    assert_eq!(refused[0].0, "/live/team-b/*");
    assert!(
        matches!(&refused[0].1, SubscribeError::Unauthorized { part, .. } if part == "/live/team-b/*"),
        "the handler's util.unauthorized() is a typed Unauthorized: {:?}",
        refused[0].1
    );
    // dave's Lambda token on carol's connection: the per-subscription authorizer decides alone.
    let mut admins = carol
        .subscribe_with(
            "/live/admins/*",
            Authorizer::token(StaticToken("opaque-token-dave".into())),
        )
        .await
        .unwrap();
    until_active(&mut admins).await;

    let publisher = Publisher::builder()
        .events(&emu.http_url, "live")
        .authorizer(Authorizer::api_key(API_KEY))
        .transports([Transport::Events])
        .build()
        .unwrap();
    let both = publish(&publisher, "news", &["team-a", "Team_B"], 1).await;
    let foreign = publish(&publisher, "news", &["team-b"], 2).await;
    let mine = publish(&publisher, "ops/alerts", &["Team_B"], 3).await;
    let ops = publish(&publisher, "ops/alerts", &["admins"], 4).await;

    let got = ids(&events_within(&mut sub, Duration::from_millis(500)).await);
    let got_ids: Vec<_> = got.iter().map(|(id, _)| *id).collect();
    assert!(
        !got_ids.contains(&foreign.id()),
        "a team-b message reached carol: {got:?}"
    );
    let mut expected = vec![both.id(), mine.id()];
    let mut sorted = got_ids.clone();
    expected.sort();
    sorted.sort();
    assert_eq!(sorted, expected, "each of carol's messages once: {got:?}");
    assert!(
        got.iter()
            .all(|(_, part)| part == "/live/team-a/*" || part == "/live/x--Team-5fB/*"),
        "{got:?}"
    );
    let admin = ids(&events_within(&mut admins, Duration::from_millis(200)).await);
    assert_eq!(
        admin,
        [(ops.id(), "/live/admins/*".to_owned())],
        "dave's subscription"
    );
    carol.close().await;
}
