//! Throughput and latency of the Events endpoint (issue 11's benchmark): `SUBSCRIBERS` WebSocket
//! connections (default 1,000), each subscribed to the same channel through the rendered handler,
//! and one publisher sending 5-event HTTP publishes. Server and clients share this process and its
//! two worker threads, so the figures are a floor. Ignored by default:
//!
//! ```text
//! cargo test -p groupcast-dev --test events_throughput -- --ignored --nocapture
//! ```
//!
//! Phase 1 publishes as fast as answers come back (deliveries/s); phase 2 paces publishes to
//! `RATE` deliveries/s (default 20,000) and reports publish-to-receive latency p50/p99.

mod rendered;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use groupcast_appsync_js::{CognitoIdentity, IamIdentity, Identity};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::events::{Options, serve_with};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, EventsSystem, Namespace, System};
use groupcast_dev::{Ports, Stack};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
const PUBLISHER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `t` (µs since the epoch) inside a data frame's event text: `…\\"t\\":123,…`.
fn sent_at(frame: &str) -> Option<u64> {
    let at = frame.find(r#"\"t\":"#)? + 6;
    let digits: String = frame[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn one_thousand_subscribers_receive_twenty_thousand_deliveries_a_second_within_fifty_ms_p99()
{
    let subscribers = env_or("SUBSCRIBERS", 1000) as usize;
    let rate = env_or("RATE", 20_000);
    let system = System {
        events: Some(EventsSystem {
            name: "bench".into(),
            connection_auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            namespaces: vec![Namespace {
                name: "live".into(),
                handler_js: rendered::events_handler("live"),
                publish_auth_modes: vec![AuthMode::Iam],
                subscribe_auth_modes: vec![AuthMode::Cognito],
                epoch_seconds: None,
            }],
        }),
        ..Default::default()
    };
    let auth = Authenticator::fixed(vec![
        (
            "alice-token".into(),
            AuthMode::Cognito,
            Identity::Cognito(CognitoIdentity {
                sub: "s".into(),
                issuer: ISSUER.into(),
                username: "alice".into(),
                groups: Some(vec!["team-a".into()]),
                ..Default::default()
            }),
            "alice".into(),
        ),
        (
            "publisher-sig".into(),
            AuthMode::Iam,
            Identity::Iam(IamIdentity {
                account_id: "123456789012".into(),
                user_arn: PUBLISHER_ARN.into(),
                ..Default::default()
            }),
            PUBLISHER_ARN.into(),
        ),
    ]);
    let (log, _lines) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system),
        auth,
        log,
        tls: None,
        state_dir: std::env::temp_dir(),
        ports: Ports::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_with(listener, stack, Options::default()));

    let epoch = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let recording = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let auth_obj = json!({"Authorization": "alice-token", "host": format!("127.0.0.1:{port}")});
    let protocol = format!(
        "aws-appsync-event-ws,header-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(auth_obj.to_string())
    );
    let connect_start = Instant::now();
    let mut ready = Vec::new();
    for i in 0..subscribers {
        let mut req = format!("ws://127.0.0.1:{port}/event/realtime")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        // A small read buffer: tungstenite zeroes it on every read (see the server's config).
        let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
        config.read_buffer_size = 4 * 1024;
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
            .await
            .unwrap();
        ws.send(Frame::text(
            json!({"type": "subscribe", "id": format!("s{i}"), "channel": "/live/team-a/bench",
                   "authorization": {"Authorization": "alice-token"}})
            .to_string(),
        ))
        .await
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push(rx);
        let (received, latencies, recording) =
            (received.clone(), latencies.clone(), recording.clone());
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut mine = Vec::new();
            // The clients share the server's two cores: read frames by substring, not by parsing.
            while let Some(Ok(Frame::Text(t))) = ws.next().await {
                let t = t.as_str();
                if t.starts_with(r#"{"type":"data""#) {
                    received.fetch_add(1, Ordering::Relaxed);
                    if recording.load(Ordering::Relaxed) {
                        let sent = sent_at(t).unwrap_or(0);
                        let now = epoch.elapsed().as_micros() as u64;
                        mine.push(now.saturating_sub(sent));
                        if mine.len() >= 64 {
                            latencies.lock().unwrap().append(&mut mine);
                        }
                    }
                } else if t.contains("subscribe_success")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
            }
            latencies.lock().unwrap().append(&mut mine);
        });
    }
    for rx in ready {
        rx.await.unwrap();
    }
    println!(
        "{subscribers} subscribers connected and subscribed in {:?}",
        connect_start.elapsed()
    );

    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/event");
    let publish = |client: reqwest::Client, url: String| async move {
        let t = epoch.elapsed().as_micros() as u64;
        let events: Vec<String> = (0..5)
            .map(|k| json!({"t": t, "k": k}).to_string())
            .collect();
        let resp = client
            .post(&url)
            .header("authorization", "publisher-sig")
            .body(json!({"channel": "/live/team-a/bench", "events": events}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    };
    let wait_for = |target: u64| {
        let received = received.clone();
        async move {
            let end = Instant::now() + Duration::from_secs(120);
            while received.load(Ordering::Relaxed) < target && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            received.load(Ordering::Relaxed)
        }
    };

    // Phase 1: flat out.
    let publishes = env_or("PUBLISHES", 200);
    let expected = publishes * 5 * subscribers as u64;
    let start = Instant::now();
    for _ in 0..publishes {
        publish(client.clone(), url.clone()).await;
    }
    let got = wait_for(expected).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "flat out: {got}/{expected} deliveries in {secs:.2} s = {:.0} deliveries/s",
        got as f64 / secs
    );
    assert_eq!(got, expected, "every delivery arrives");

    // Phase 2: paced at `rate`, latencies recorded.
    received.store(0, Ordering::Relaxed);
    recording.store(true, Ordering::Relaxed);
    let per_publish = 5 * subscribers as u64;
    let interval = Duration::from_secs_f64(per_publish as f64 / rate as f64);
    let paced = env_or("PACED_PUBLISHES", 100);
    let start = Instant::now();
    let mut tick = tokio::time::interval(interval);
    for _ in 0..paced {
        tick.tick().await;
        tokio::spawn(publish(client.clone(), url.clone()));
    }
    let got = wait_for(paced * per_publish).await;
    let secs = start.elapsed().as_secs_f64();
    recording.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    println!(
        "paced at {rate}/s: {got} deliveries in {secs:.2} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        got as f64 / secs,
        percentile(&lat, 0.5) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        lat.len()
    );
    assert_eq!(got, paced * per_publish);
    server.abort();
}
