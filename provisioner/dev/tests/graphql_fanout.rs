//! Fan-out of the local GraphQL endpoint: N subscribers on N realtime connections, every
//! publish reaching each of them once. The default run checks correctness with 200 subscribers;
//! the benchmark (1,000 subscribers, deliveries per second) is ignored by default:
//! `cargo test -p groupcast-dev --test graphql_fanout -- --ignored --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use groupcast_appsync_js::{CognitoIdentity, IamIdentity};
use groupcast_dev::auth::{Authenticator, Identity};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, GraphqlSystem, System};
use groupcast_dev::{Ports, Stack};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graphql");

fn stack() -> Arc<Stack> {
    let mut templates = std::collections::BTreeMap::new();
    let mut schema = String::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "schema.graphql" {
            schema = text;
        } else {
            templates.insert(name, text);
        }
    }
    let member = Identity::Cognito(CognitoIdentity {
        sub: "member".into(),
        claims: json!({"sub": "member", "cognito:groups": ["team-a"]})
            .as_object()
            .unwrap()
            .clone(),
        groups: Some(vec!["team-a".into()]),
        ..CognitoIdentity::default()
    });
    let publisher = Identity::Iam(IamIdentity {
        user_arn: "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local".into(),
        ..IamIdentity::default()
    });
    let (log, _) = DecisionLog::capture();
    Arc::new(Stack {
        system: Arc::new(System {
            graphql: Some(GraphqlSystem {
                name: "acme-live".into(),
                schema,
                templates,
                auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
                groups_claim: "cognito:groups".into(),
            }),
            ..System::default()
        }),
        auth: Authenticator::fixed(vec![
            ("member".into(), AuthMode::Cognito, member, "member".into()),
            (
                "publisher".into(),
                AuthMode::Iam,
                publisher,
                "publisher".into(),
            ),
        ]),
        log,
        tls: None,
        state_dir: std::env::temp_dir(),
        ports: Ports::default(),
    })
}

/// Starts `subscribers` subscriptions, publishes `messages` to their group, and returns the
/// deliveries per second (from the first publish to the last delivery).
async fn run(subscribers: usize, messages: usize) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(groupcast_dev::graphql::serve(listener, stack()));
    let received = Arc::new(AtomicUsize::new(0));
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"Authorization": "member", "host": addr.to_string()}).to_string());
    let data = json!({"query": groupcast::subscribe::graphql::SUBSCRIPTION_QUERY, "variables": {}})
        .to_string();
    let start = json!({"id": "s", "type": "start", "payload": {"data": data,
        "extensions": {"authorization": {"Authorization": "member"}}}})
    .to_string();
    let mut ready = Vec::new();
    for _ in 0..subscribers {
        let mut req = format!("ws://{addr}/graphql/realtime")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            format!("graphql-ws, header-{header}").parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        ws.send(Frame::text(r#"{"type":"connection_init"}"#))
            .await
            .unwrap();
        ws.send(Frame::text(start.clone())).await.unwrap();
        let received = received.clone();
        let (acked, ack) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut acked = Some(acked);
            while let Some(Ok(f)) = ws.next().await {
                if let Frame::Text(t) = f {
                    if t.contains(r#""type":"data""#) {
                        received.fetch_add(1, Ordering::Relaxed);
                    } else if t.contains("start_ack")
                        && let Some(a) = acked.take()
                    {
                        let _ = a.send(());
                    }
                }
            }
        });
        ready.push(ack);
    }
    for r in ready {
        tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .unwrap()
            .unwrap();
    }
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/graphql");
    let began = Instant::now();
    for i in 0..messages {
        let body = json!({"query": groupcast::graphql::PUBLISH_MUTATION, "variables": {
            "topic": format!("t/{i}"), "data": "{\"i\":1}", "groups": ["team-a"],
            "uuid": uuid::Uuid::new_v4().to_string()}});
        let r = client
            .post(&url)
            .header("authorization", "publisher")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let published = began.elapsed().as_secs_f64();
    let want = subscribers * messages;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < want {
        assert!(
            Instant::now() < deadline,
            "{} of {want} delivered",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "{subscribers} subscribers, {messages} messages: publishing took {published:.2} s, the last delivery arrived after {elapsed:.2} s"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        received.load(Ordering::Relaxed),
        want,
        "a message was delivered twice"
    );
    want as f64 / elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_reaches_each_of_two_hundred_subscribers_exactly_once() {
    run(200, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn deliveries_per_second_with_a_thousand_subscribers() {
    let rate = run(1000, 200).await;
    println!("graphql fan-out: {rate:.0} deliveries/s (1000 subscribers, 200 messages)");
}
