//! IoT data plane: one signed request per (message, group), the topic URL-encoded, the envelope
//! as the body, and the IoT limits checked before anything is sent.

use groupcast::{Authorizer, Error, Outcome, PublishOptions, Publisher};
use serde_json::json;

use crate::server::{Reply, Server};
use crate::{creds, fast_retries, msg};

fn publisher(server: &Server, prefix: &str) -> Publisher {
    Publisher::builder()
        .iot(&server.base, prefix)
        .region("eu-central-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(creds(None)))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

#[tokio::test]
async fn publishes_the_envelope_to_one_encoded_topic_per_group() {
    let server = Server::start(|_, _| Reply::ok(json!({}))).await;
    let m = msg("chat/room-1", &["team-a", "Team_B"], json!({"text": "hi"}));
    let report = publisher(&server, "gc/app").publish(&m).await.unwrap();
    let mut reqs = server.requests();
    reqs.sort_by(|a, b| a.target.cmp(&b.target));
    let targets: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/topics/gc%2Fapp%2Fteam-a%2Fchat%2Froom-1?qos=1",
            "/topics/gc%2Fapp%2Fx--Team-5fB%2Fchat%2Froom-1?qos=1"
        ]
    );
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.text(), m.envelope_json());
        let auth = r.header("authorization").unwrap();
        assert!(
            auth.contains(
                "/eu-central-1/iotdata/aws4_request, SignedHeaders=content-type;host;x-amz-date, "
            ),
            "{auth}"
        );
    }
    assert_eq!(report.deliveries.len(), 2);
    for d in &report.deliveries {
        assert_eq!(d.outcome, Outcome::Delivered { identifier: None });
    }
}

#[tokio::test]
async fn a_payload_of_exactly_128_kb_is_sent_and_one_byte_more_is_invalid() {
    let server = Server::start(|_, _| Reply::ok(json!({}))).await;
    let p = publisher(&server, "gc");
    let base = msg("t", &["g"], json!("")).envelope_json().len();
    let at = msg("t", &["g"], json!("x".repeat(128_000 - base)));
    assert_eq!(at.envelope_json().len(), 128_000);
    assert!(p.publish(&at).await.unwrap().is_complete());
    let over = msg("t", &["g"], json!("x".repeat(128_001 - base)));
    let err = p
        .publish_all(&[over], &PublishOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, rule } if field == "messages[0].data" && rule.contains("128001 bytes")),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn topics_with_more_than_seven_slashes_are_invalid_before_sending() {
    let server = Server::start(|_, _| Reply::ok(json!({}))).await;
    // prefix (4 levels) + group + topic (3 levels) = 8 levels, 7 slashes: allowed.
    assert!(
        publisher(&server, "a/b/c/d")
            .publish(&msg("x/y/z", &["g"], json!(1)))
            .await
            .unwrap()
            .is_complete()
    );
    // One more prefix level: 8 slashes.
    let err = publisher(&server, "a/b/c/d/e")
        .publish(&msg("x/y/z", &["g"], json!(1)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("8 '/'"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn iot_needs_iam_credentials() {
    let err = Publisher::builder()
        .iot("http://127.0.0.1:9", "gc")
        .authorizer(Authorizer::api_key("k"))
        .region("us-east-1")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.starts_with("iot")),
        "{err}"
    );
}

/// Publishes one message to 6 groups (6 IoT requests) against a server that takes 400 ms per
/// request; returns the arrival offsets of the requests, sorted.
async fn arrivals_with_concurrency(n: usize) -> Vec<std::time::Duration> {
    let server = Server::start(|_, _| {
        Reply::After(
            std::time::Duration::from_millis(400),
            Box::new(Reply::ok(json!({}))),
        )
    })
    .await;
    let p = Publisher::builder()
        .iot(&server.base, "gc")
        .region("us-east-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(creds(None)))
        .concurrency(n)
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    let report = p
        .publish(&msg("t", &["g1", "g2", "g3", "g4", "g5", "g6"], json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete());
    let mut at: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.at.duration_since(start))
        .collect();
    at.sort();
    at
}

#[tokio::test]
async fn concurrency_bounds_the_requests_in_flight() {
    use std::time::Duration;
    // Two at a time: three waves, 400 ms apart (margins are wide for a loaded machine).
    let at = arrivals_with_concurrency(2).await;
    assert_eq!(at.len(), 6);
    assert!(at[1] < Duration::from_millis(300), "{at:?}");
    assert!(
        at[2] >= Duration::from_millis(380) && at[4] >= Duration::from_millis(780),
        "{at:?}"
    );
    // Six at a time: one wave, nobody waits for a reply.
    let at = arrivals_with_concurrency(6).await;
    assert!(at[5] < Duration::from_millis(300), "{at:?}");
}
