//! The GraphQL subscriber against `amplify-appsync-simulator` 2.4.1, a third-party implementation
//! of AppSync's realtime protocol (tests/node_modules; tests/appsync_simulator.cjs starts it with
//! groupcast's schema). A Cognito user subscribes over WebSocket, groupcast's own publisher sends
//! the `publish` mutation over HTTP (IAM), the subscriber receives the envelope.
//!
//! The simulator filters nothing (shared/reference/local-peers.md §2): a publish to another group
//! reaches the socket too, and the subscriber must drop it itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use groupcast::subscribe::SubscriptionEvent;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::{Authorizer, Message, Publisher, StaticToken, Transport};

use crate::{creds, fast_reconnect, free_port, next_message, no_message, repo_root, until};

/// Our own node process running the simulator; killed by its PID on drop.
struct Simulator {
    child: Child,
    port: u16,
}

impl Simulator {
    fn start() -> Simulator {
        let repo = repo_root();
        let node_modules = repo.join("tests/node_modules");
        assert!(
            node_modules.join("amplify-appsync-simulator").exists(),
            "amplify-appsync-simulator is not installed in {}: run `npm ci --prefix tests`",
            node_modules.display()
        );
        let (port, ws_port) = (free_port(), free_port());
        let mut child = Command::new("node")
            .arg(repo.join("functions/groupcast/tests/appsync_simulator.cjs"))
            .arg(repo.join("templates/graphql/schema.graphql.tera"))
            .arg(port.to_string())
            .arg(ws_port.to_string())
            .env("NODE_PATH", &node_modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is needed for the simulator test (Node 20, as .ci/run expects)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.trim() == "READY" {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("amplify-appsync-simulator did not start within 60 s (its errors are above)");
        }
        Simulator { child, port }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An unsigned Cognito-looking ID token: the simulator decodes it without verifying
/// (local-peers.md §2); AppSync would verify it.
fn cognito_token(groups: &[&str]) -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(serde_json::json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test",
            "sub": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "cognito:username": "alice",
            "cognito:groups": groups,
            "token_use": "id",
            "exp": 4_102_444_800u64,
        }))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cognito_user_receives_what_the_publisher_sends_through_the_appsync_simulator() {
    let sim = Simulator::start();
    let url = format!("http://127.0.0.1:{}/graphql", sim.port);
    let subscriber = GraphqlSubscriber::builder()
        .url(&url)
        .authorizer(Authorizer::token(StaticToken(cognito_token(&["team-a"]))))
        .reconnect_policy(fast_reconnect())
        .build()
        .unwrap();
    let only = vec!["team-a".to_owned()];
    let mut sub = subscriber.subscribe("chat/", Some(&only)).await.unwrap();
    // start_ack: from here on nothing is missed.
    until(&mut sub, 20, "start_ack", |e| {
        matches!(e, SubscriptionEvent::Active)
    })
    .await;

    let publisher = Publisher::builder()
        .graphql(&url)
        .region("us-east-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(creds(None)))
        .transports([Transport::Graphql])
        .build()
        .unwrap();
    let send = |topic: &str, groups: &[&str]| {
        Message::builder(topic)
            .data(serde_json::json!({"text": "hello", "n": [1, 2, {"k": null}]}))
            .groups(groups.iter().copied())
            .build()
            .unwrap()
    };
    // The simulator delivers all three; the subscriber keeps only the one for team-a under chat/.
    let other_group = send("chat/room1", &["team-b"]);
    let other_topic = send("news/today", &["team-a"]);
    let mine = send("chat/room1", &["team-b", "team-a"]);
    for m in [&other_group, &other_topic, &mine] {
        let report = publisher.publish(m).await.unwrap();
        assert!(report.failures().next().is_none(), "{report:?}");
    }
    let received = next_message(&mut sub, 20, "the message for team-a").await;
    assert_eq!(received.envelope, mine.envelope());
    assert_eq!(received.part, "team-a");
    no_message(&mut sub, 500).await;
    subscriber.close().await;
}
