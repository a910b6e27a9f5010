//! The real `publisher` binary under an emulated Lambda Runtime API, publishing over AppSync
//! Events (API key) to a local sink that fails selected channels: direct invoke, SQS partial batch
//! failures (only the failed records reported, nothing published twice), EventBridge; and a revoke
//! input over GraphQL, the Lambda Invoke API (IAM-signed) and Events (reported as not supported).

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{Http, Outcome, Req, RuntimeApi, reply, spawn_function};

const API_KEY: &str = "da2-localtestkey";

/// One event the sink accepted: its channel and the envelope it carried.
#[derive(Debug, Clone)]
struct Received {
    channel: String,
    envelope: Value,
}

/// An AppSync Events HTTP endpoint: accepts `POST /event` with the API key, answers 400 for any
/// channel whose group segment starts with `down`, records what it accepted.
async fn sink() -> (Http, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = received.clone();
    let http = Http::serve(move |req: Req| {
        let r = r.clone();
        async move {
            if req.path != "/event" || req.headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
                return reply(401, r#"{"errors":[{"errorType":"UnauthorizedException","message":"no"}]}"#);
            }
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let channel = body["channel"].as_str().unwrap().to_owned();
            if channel.split('/').nth(2).is_some_and(|g| g.starts_with("down")) {
                return reply(400, r#"{"errors":[{"errorType":"BadRequestException","message":"channel is down"}]}"#);
            }
            let events = body["events"].as_array().unwrap();
            let mut successful = Vec::new();
            for (i, e) in events.iter().enumerate() {
                let envelope: Value = serde_json::from_str(e.as_str().expect("each event is JSON text")).unwrap();
                r.lock().unwrap().push(Received { channel: channel.clone(), envelope });
                successful.push(json!({"identifier": format!("ev-{}", r.lock().unwrap().len()), "index": i}));
            }
            reply(200, json!({"failed": [], "successful": successful}).to_string())
        }
    })
    .await;
    (http, received)
}

struct Harness {
    runtime: RuntimeApi,
    received: Arc<Mutex<Vec<Received>>>,
    _sink: Http,
    _child: tokio::process::Child,
}

async fn start() -> Harness {
    let (sink, received) = sink().await;
    let runtime = RuntimeApi::start().await;
    let env = [
        ("GROUPCAST_EVENTS_URL", format!("http://{}", sink.addr)),
        ("GROUPCAST_EVENTS_NAMESPACE", "live".to_owned()),
        ("GROUPCAST_AUTH", "api-key".to_owned()),
        ("GROUPCAST_API_KEY", API_KEY.to_owned()),
        ("GROUPCAST_TRANSPORTS", "events".to_owned()),
        ("GROUPCAST_MAX_ATTEMPTS", "2".to_owned()),
    ];
    let child = spawn_function(env!("CARGO_BIN_EXE_publisher"), &runtime, &env);
    Harness {
        runtime,
        received,
        _sink: sink,
        _child: child,
    }
}

fn deliveries_of(received: &[Received], id: &str) -> Vec<String> {
    let mut channels: Vec<String> = received
        .iter()
        .filter(|r| r.envelope["id"] == id)
        .map(|r| r.channel.clone())
        .collect();
    channels.sort();
    channels
}

#[tokio::test]
async fn direct_invoke_publishes_to_each_groups_channel_and_answers_per_message() {
    let h = start().await;
    let r = h
        .runtime
        .call(json!({"topic": "news", "data": {"headline": "hi"}, "groups": ["team-a", "Team_B"]}))
        .await;
    assert_eq!(r["complete"], true, "{r}");
    let id = r["messages"][0]["id"].as_str().unwrap().to_owned();
    let events = &r["messages"][0]["transports"]["events"];
    assert_eq!(events.as_array().unwrap().len(), 2, "{r}");
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered" && d["identifier"].is_string())
    );

    let received = h.received.lock().unwrap().clone();
    assert_eq!(
        deliveries_of(&received, &id),
        ["/live/team-a/news", "/live/x--Team-5fB/news"]
    );
    let envelope = &received[0].envelope;
    assert_eq!(envelope["data"], json!({"headline": "hi"}));
    assert_eq!(envelope["groups"], json!(["team-a", "Team_B"]));

    // An invalid message is a function error naming the field; nothing is sent.
    let before = h.received.lock().unwrap().len();
    let id = h
        .runtime
        .invoke(json!([{"topic": "ok", "groups": ["a"]}, {"topic": "not ok", "groups": ["a"]}]));
    match h.runtime.outcome(&id).await {
        Outcome::Error(e) => {
            assert_eq!(e["errorType"], "InvalidInput", "{e}");
            assert!(
                e["errorMessage"].as_str().unwrap().contains("[1].topic"),
                "{e}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(h.received.lock().unwrap().len(), before);
}

#[tokio::test]
async fn sqs_batch_reports_only_failed_records_and_keeps_ids_across_redelivery() {
    let h = start().await;
    let good = "11111111-1111-4111-8111-111111111111";
    let partly_down = "22222222-2222-4222-8222-222222222222";
    let garbage = "33333333-3333-4333-8333-333333333333";
    let body_id = "0b5c7d9e-2f41-4a63-8b75-9c0d1e2f3a4b";
    let record = |id: &str, body: String| {
        json!({"messageId": id, "receiptHandle": "AQEB", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
               "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:groupcast", "awsRegion": "us-east-1"})
    };
    let batch = json!({"Records": [
        record(good, json!({"topic": "orders", "data": 1, "groups": ["team-a", "team-b"]}).to_string()),
        record(partly_down, json!({"topic": "orders", "data": 2, "groups": ["team-a", "down-1"], "id": body_id}).to_string()),
        record(garbage, "{not json".to_owned()),
    ]});
    let r = h.runtime.call(batch).await;
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": garbage}, {"itemIdentifier": partly_down}]})
    );

    let received = h.received.lock().unwrap().clone();
    // The good record: once per group, under the SQS messageId (it had no id of its own).
    assert_eq!(
        deliveries_of(&received, good),
        ["/live/team-a/orders", "/live/team-b/orders"]
    );
    // The failed record reached its healthy group once, under the body's id.
    assert_eq!(deliveries_of(&received, body_id), ["/live/team-a/orders"]);
    assert_eq!(received.len(), 3, "nothing else was sent: {received:?}");

    // SQS redelivers only the failed record; it keeps its id, so subscribers can drop the repeat.
    let retry = json!({"Records": [record(partly_down, json!({"topic": "orders", "data": 2, "groups": ["team-a", "down-1"], "id": body_id}).to_string())]});
    let r = h.runtime.call(retry).await;
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": partly_down}]})
    );
    let received = h.received.lock().unwrap().clone();
    assert_eq!(
        deliveries_of(&received, body_id),
        ["/live/team-a/orders", "/live/team-a/orders"]
    );
}

#[tokio::test]
async fn eventbridge_detail_is_published_and_a_failed_delivery_fails_the_invocation() {
    let h = start().await;
    let event = |groups: Value| {
        json!({"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "OrderShipped",
               "source": "acme.orders", "account": "123456789012", "time": "2026-11-22T15:00:00Z",
               "region": "us-east-1", "resources": [], "detail": {"topic": "shipping", "data": {"n": 1}, "groups": groups}})
    };
    let r = h.runtime.call(event(json!(["team-a"]))).await;
    assert_eq!(
        r["messages"][0]["id"],
        "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    );
    let received = h.received.lock().unwrap().clone();
    assert_eq!(
        deliveries_of(&received, "6a7e8feb-b491-4cf7-a9f1-bf3703467718"),
        ["/live/team-a/shipping"]
    );

    let id = h.runtime.invoke(event(json!(["down-2"])));
    match h.runtime.outcome(&id).await {
        Outcome::Error(e) => assert_eq!(e["errorType"], "PublishFailed", "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A GraphQL endpoint and the Lambda Invoke API on one local server, recording every request:
/// `revoke` answers by echoing its variables, the grant function with what it detached.
async fn revoke_peer() -> (Http, Arc<Mutex<Vec<(String, String, Value)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let http = Http::serve(move |req: Req| {
        let s = s.clone();
        async move {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            s.lock()
                .unwrap()
                .push((req.path.clone(), auth, body.clone()));
            match req.path.as_str() {
                "/graphql" => {
                    let v = &body["variables"];
                    reply(
                        200,
                        json!({"data": {"revoke": {"userId": v["userId"], "groups": v["groups"]}}})
                            .to_string(),
                    )
                }
                "/2015-03-31/functions/acme-live-iot-grant/invocations" => reply(
                    200,
                    json!({"user": body["sync"]["user"], "detached": ["acme-live-team-a"]})
                        .to_string(),
                ),
                _ => reply(404, r#"{"message":"no such path"}"#),
            }
        }
    })
    .await;
    (http, seen)
}

#[tokio::test]
async fn a_revoke_input_revokes_on_every_transport_and_answers_per_transport() {
    let (peer, log) = revoke_peer().await;
    let runtime = RuntimeApi::start().await;
    let base = format!("http://{}", peer.addr);
    let env = [
        ("GROUPCAST_EVENTS_URL", base.clone()),
        ("GROUPCAST_EVENTS_NAMESPACE", "live".to_owned()),
        ("GROUPCAST_GRAPHQL_URL", format!("{base}/graphql")),
        ("GROUPCAST_IOT_ENDPOINT", base.clone()),
        (
            "GROUPCAST_IOT_GRANT_FUNCTION",
            "acme-live-iot-grant".to_owned(),
        ),
        ("GROUPCAST_LAMBDA_ENDPOINT", base.clone()),
        ("GROUPCAST_MAX_ATTEMPTS", "2".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDGROUPCASTTEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "groupcast/test/secret".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let _child = spawn_function(env!("CARGO_BIN_EXE_publisher"), &runtime, &env);

    let r = runtime
        .call(json!({"revoke": {"user": "sub-1", "groups": ["team-a", "Team_B"]}}))
        .await;
    assert_eq!(r["user"], "sub-1", "{r}");
    assert_eq!(r["groups"], json!(["team-a", "Team_B"]));
    assert_eq!(
        r["complete"], false,
        "Events cannot revoke, so the revocation is not complete: {r}"
    );
    let by: Vec<(&str, &str)> = r["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["transport"].as_str().unwrap(),
                t["outcome"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("events", "not_supported"),
            ("graphql", "invalidated"),
            ("iot", "synced")
        ],
        "{r}"
    );
    assert!(
        r["transports"][0]["outcome"]["bound"]
            .as_str()
            .unwrap()
            .contains("24 hours"),
        "{r}"
    );
    assert_eq!(
        r["transports"][2]["outcome"]["response"]["detached"],
        json!(["acme-live-team-a"])
    );

    let seen = log.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2,
        "one mutation and one invocation, nothing for Events: {seen:?}"
    );
    let gql = seen.iter().find(|(p, ..)| p == "/graphql").unwrap();
    assert!(
        gql.1.contains("/us-east-1/appsync/aws4_request"),
        "{}",
        gql.1
    );
    assert_eq!(
        gql.2["variables"],
        json!({"userId": "sub-1", "groups": ["team-a", "Team_B"]})
    );
    let invoke = seen
        .iter()
        .find(|(p, ..)| p.ends_with("/invocations"))
        .unwrap();
    assert!(
        invoke
            .1
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDGROUPCASTTEST/"),
        "{}",
        invoke.1
    );
    assert!(
        invoke.1.contains("/us-east-1/lambda/aws4_request"),
        "{}",
        invoke.1
    );
    assert_eq!(invoke.2, json!({"sync": {"user": "sub-1"}}));

    // A malformed revoke is a function error naming the field; nothing is sent.
    let id = runtime.invoke(json!({"revoke": {"user": "sub-1", "groups": []}}));
    match runtime.outcome(&id).await {
        Outcome::Error(e) => {
            assert_eq!(e["errorType"], "InvalidInput", "{e}");
            assert!(
                e["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("revoke.groups"),
                "{e}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        log.lock().unwrap().len(),
        2,
        "the invalid revoke sent nothing"
    );
}
