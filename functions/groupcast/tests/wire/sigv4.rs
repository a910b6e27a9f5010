//! SigV4 checked independently of aws-sigv4: signed requests captured from every transport are
//! re-verified by botocore's `SigV4Auth` (tests/verify_sigv4.py), and a tampered body must fail.

use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::{Authorizer, Publisher};
use serde_json::json;

use crate::server::{Captured, Reply, Server, events_success};
use crate::{ACCESS_KEY, SECRET_KEY, creds, msg, python};

/// Runs the botocore verifier over `requests` (each `{method, target, headers, body}`); one
/// result per request. The WebSocket tests use it too.
pub(crate) fn botocore_verify<R: serde::Serialize>(requests: &[R]) -> Vec<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!(
        "groupcast-sigv4-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("requests.json");
    let spec = json!({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "requests": requests});
    std::fs::write(&input, spec.to_string()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_sigv4.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "verify_sigv4.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Publishes over every transport with IAM, with and without a session token, and returns
/// the captured requests.
async fn capture_signed_requests() -> Vec<Captured> {
    let server = Server::start(|req, n| {
        if req.target.starts_with("/event") {
            Reply::ok(events_success(req, n))
        } else if req.target.starts_with("/graphql") {
            let v = &req.json()["variables"];
            Reply::ok(json!({"data": {"publish": {"topic": v["topic"], "data": v["data"], "groups": v["groups"], "uuid": v["uuid"]}}}))
        } else {
            Reply::ok(json!({}))
        }
    })
    .await;
    for token in [None, Some("IQoJb3JpZ2luX2VjE/session+token==")] {
        let publisher = Publisher::builder()
            .events(&server.base, "live")
            .graphql(format!("{}/graphql", server.base))
            .iot(&server.base, "gc/app")
            .region("eu-west-1")
            .credentials(SharedCredentialsProvider::new(creds(token)))
            .build()
            .unwrap();
        // "Team_B/é" needs encoding twice over: in its segment and in the IoT URL path.
        let m = msg(
            "chat/room-1",
            &["team-a", "Team_B/é"],
            json!({"text": "hé \"quoted\" \\ /"}),
        );
        let report = publisher.publish(&m).await.unwrap();
        assert!(report.is_complete(), "{report:?}");
    }
    server.requests()
}

#[tokio::test]
async fn botocore_verifies_every_signature_groupcast_makes() {
    let requests = capture_signed_requests().await;
    // Per token: 2 Events channels + 1 GraphQL mutation + 2 IoT topics.
    assert_eq!(requests.len(), 10);
    let results = botocore_verify(&requests);
    for (r, v) in requests.iter().zip(&results) {
        assert_eq!(v["ok"], true, "{} {}: {v}", r.method, r.target);
    }
    let services: Vec<&str> = results
        .iter()
        .map(|v| v["service"].as_str().unwrap())
        .collect();
    assert_eq!(services.iter().filter(|s| **s == "appsync").count(), 6);
    assert_eq!(services.iter().filter(|s| **s == "iotdata").count(), 4);
    assert!(results.iter().all(|v| v["region"] == "eu-west-1"));
    // The IoT path was sent encoded once and signed encoded twice, as AWS expects.
    let iot: Vec<&serde_json::Value> = results
        .iter()
        .filter(|v| v["service"] == "iotdata")
        .collect();
    assert!(
        iot.iter().any(|v| v["canonical_uri"]
            == "/topics/gc%252Fapp%252Fx--Team-5fB-2f-c3-a9%252Fchat%252Froom-1"),
        "{iot:?}"
    );
    // Session tokens are signed.
    let with_token = requests
        .iter()
        .filter(|r| r.header("x-amz-security-token").is_some())
        .count();
    assert_eq!(with_token, 5);
}

#[tokio::test]
async fn botocore_rejects_a_tampered_request() {
    let requests = capture_signed_requests().await;
    let mut tampered = requests.clone();
    for r in &mut tampered {
        r.body.extend_from_slice(b" ");
    }
    let results = botocore_verify(&tampered);
    for (r, v) in tampered.iter().zip(&results) {
        assert_eq!(
            v["ok"], false,
            "tampered {} {} still verified: {v}",
            r.method, r.target
        );
        assert_eq!(v["reason"], "signature mismatch");
    }
    // And a changed date in the signature scope is caught too.
    let mut moved = requests[0].clone();
    for (k, v) in &mut moved.headers {
        if k == "x-amz-date" {
            v.replace_range(9..11, if &v[9..11] == "00" { "01" } else { "00" });
        }
    }
    assert_eq!(botocore_verify(&[moved])[0]["ok"], false);
}

#[tokio::test]
async fn api_key_and_token_requests_carry_no_signature() {
    let server = Server::events_ok().await;
    for auth in [
        Authorizer::api_key("k"),
        Authorizer::token(groupcast::StaticToken("t".into())),
    ] {
        let p = Publisher::builder()
            .events(&server.base, "live")
            .authorizer(auth)
            .build()
            .unwrap();
        p.publish(&msg("t", &["g"], json!(1))).await.unwrap();
    }
    for r in server.requests() {
        assert_eq!(r.header("x-amz-date"), None);
        assert!(!r.header("authorization").unwrap_or("").starts_with("AWS4"));
    }
}
