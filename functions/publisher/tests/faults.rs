//! The fault-injection suite through the real `publisher` binary under an emulated Lambda Runtime
//! API, against the library's fault-injecting Events sink (10% HTTP 500, 5% 429, 5% resets, 2%
//! per-event failures at seeded rates, or slow answers): direct invocations of issue 13's
//! scenario (1,000 messages × 5 groups), SQS redelivery of `batchItemFailures` until every group
//! of every record is reached, and the deadline of a sink that does not answer in time.

// The test peers are shared with other test crates; not every item is used here.
#![allow(unreachable_pub, dead_code)]

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

#[path = "../../groupcast/tests/wire/server.rs"]
mod server;

#[path = "../../groupcast/tests/wire/fault_sink.rs"]
mod fault_sink;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fault_sink::{FaultSink, Faults};
use serde_json::{Value, json};
use support::{Outcome, RuntimeApi, spawn_function};

const GROUPS: [&str; 5] = ["g0", "g1", "g2", "g3", "Team_4"];

struct Harness {
    runtime: RuntimeApi,
    sink: FaultSink,
    _child: tokio::process::Child,
}

/// The binary, publishing over Events with an API key to `sink`, with short backoffs and `env`.
async fn start(faults: Faults, env: &[(&str, &str)]) -> Harness {
    let sink = FaultSink::start(faults).await;
    let runtime = RuntimeApi::start().await;
    let mut vars: Vec<(&str, String)> = vec![
        ("GROUPCAST_EVENTS_URL", sink.base().to_owned()),
        ("GROUPCAST_EVENTS_NAMESPACE", "live".to_owned()),
        ("GROUPCAST_AUTH", "api-key".to_owned()),
        ("GROUPCAST_API_KEY", "da2-local".to_owned()),
        ("GROUPCAST_TRANSPORTS", "events".to_owned()),
        ("GROUPCAST_RETRY_BASE_MS", "1".to_owned()),
        ("GROUPCAST_RETRY_MAX_MS", "10".to_owned()),
        ("GROUPCAST_DEADLINE_MS", "20000".to_owned()),
        // Each failure is logged; keep the test output to errors.
        ("AWS_LAMBDA_LOG_LEVEL", "error".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ];
    vars.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let child = spawn_function(env!("CARGO_BIN_EXE_publisher"), &runtime, &vars);
    Harness {
        runtime,
        sink,
        _child: child,
    }
}

fn channel(group: &str) -> String {
    format!("/live/{}/orders", groupcast::group_segment(group).unwrap())
}

fn accepted(sink: &FaultSink) -> HashMap<(String, String), usize> {
    let mut at: HashMap<(String, String), usize> = HashMap::new();
    for a in sink.accepted() {
        *at.entry(a).or_default() += 1;
    }
    at
}

/// Checks a direct answer for `n` messages: every (message, group) once, delivered or failed;
/// every delivered one at the sink. Returns (delivered, failed).
fn check_direct(answer: &Value, n: usize, sink: &FaultSink) -> (usize, usize) {
    let messages = answer["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), n);
    let at = accepted(sink);
    let (mut delivered, mut failed) = (0, 0);
    for m in messages {
        let id = m["id"].as_str().unwrap();
        let entries = m["transports"]["events"]
            .as_array()
            .expect("events entries");
        let groups: HashSet<&str> = entries
            .iter()
            .map(|e| e["group"].as_str().unwrap())
            .collect();
        assert_eq!(entries.len(), GROUPS.len(), "{m}");
        assert_eq!(
            groups,
            HashSet::from(GROUPS),
            "one entry per group, never two: {m}"
        );
        for e in entries {
            match e["status"].as_str() {
                Some("delivered") => {
                    delivered += 1;
                    let key = (channel(e["group"].as_str().unwrap()), id.to_owned());
                    assert!(
                        at.contains_key(&key),
                        "reported delivered, missing at the sink: {key:?}"
                    );
                    assert!(e["attempts"].as_u64().unwrap() >= 1, "{e}");
                }
                Some("failed") => failed += 1,
                other => panic!("neither delivered nor failed: {other:?} in {e}"),
            }
        }
    }
    (delivered, failed)
}

/// `n` messages with fixed ids, so that the sink's rolls (which hash the bytes) repeat run to run.
fn scenario(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"topic": "orders", "data": {"n": i}, "groups": GROUPS, "id": format!("13130000-0000-4000-8000-{i:012}")}))
            .collect(),
    )
}

#[tokio::test]
async fn direct_with_the_defaults_every_event_is_delivered_or_reported_failed_exactly_once() {
    let h = start(Faults::issue_13(13), &[]).await;
    let answer = h.runtime.call(scenario(1000)).await;
    let (delivered, failed) = check_direct(&answer, 1000, &h.sink);
    assert_eq!(delivered + failed, 5000);
    assert_eq!(answer["complete"], failed == 0);
    let t = h.sink.tally();
    assert!(
        t.http_500 > 0 && t.http_429 > 0 && t.resets > 0 && t.events_failed > 0,
        "{t:?}"
    );
}

#[tokio::test]
async fn direct_with_eight_attempts_delivers_all_five_thousand_events() {
    let h = start(Faults::issue_13(13), &[("GROUPCAST_MAX_ATTEMPTS", "8")]).await;
    let answer = h.runtime.call(scenario(1000)).await;
    assert_eq!(check_direct(&answer, 1000, &h.sink), (5000, 0));
    assert_eq!(answer["complete"], true);
}

fn sqs_record(id: &str, body: &Value) -> Value {
    json!({"messageId": id, "receiptHandle": "AQEB", "body": body.to_string(),
           "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "x",
           "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:groupcast",
           "awsRegion": "us-east-1"})
}

#[tokio::test]
async fn sqs_redelivery_of_batch_item_failures_reaches_every_group_of_every_record() {
    // Two attempts per request: about one record in five fails a group at first (each group
    // fails with p ≈ 0.22² ≈ 0.05) and needs redelivery; the rest shrinks fivefold per round.
    let h = start(Faults::issue_13(21), &[("GROUPCAST_MAX_ATTEMPTS", "2")]).await;
    let records: Vec<(String, Value)> = (0..200)
        .map(|i| {
            let id = format!("{i:08x}-1111-4111-8111-111111111111");
            let body = json!({"topic": "orders", "data": {"n": i}, "groups": GROUPS});
            (id, body)
        })
        .collect();
    // Batches of 100 (a batching window allows up to 10,000 records per invocation).
    let mut queue: Vec<&(String, Value)> = records.iter().collect();
    let mut rounds = 0;
    let mut first_round_failures = 0;
    while !queue.is_empty() {
        rounds += 1;
        assert!(
            rounds <= 12,
            "still {} records failing after 12 rounds",
            queue.len()
        );
        let mut again = Vec::new();
        for batch in queue.chunks(100) {
            let event = json!({"Records": batch.iter().map(|(id, body)| sqs_record(id, body)).collect::<Vec<_>>()});
            let answer = h.runtime.call(event).await;
            let failed: HashSet<&str> = answer["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap())
                .collect();
            again.extend(
                batch
                    .iter()
                    .copied()
                    .filter(|(id, _)| failed.contains(id.as_str())),
            );
        }
        if rounds == 1 {
            first_round_failures = again.len();
        }
        queue = again;
    }
    assert!(
        first_round_failures > 0,
        "the faults made some records fail at first"
    );
    assert!(rounds > 1);
    let at = accepted(&h.sink);
    for (id, _) in &records {
        for g in GROUPS {
            assert!(
                at.contains_key(&(channel(g), id.clone())),
                "record {id} never reached {g}"
            );
        }
    }
}

#[tokio::test]
async fn a_sink_slower_than_the_deadline_yields_failures_not_a_hung_invocation() {
    let h = start(
        Faults::slow(Duration::from_secs(60)),
        &[
            ("GROUPCAST_DEADLINE_MS", "800"),
            ("GROUPCAST_MAX_ATTEMPTS", "8"),
        ],
    )
    .await;
    // Direct: every delivery reported failed, within the deadline.
    let start = Instant::now();
    let id = h.runtime.invoke(scenario(10));
    let (outcome, at) = h.runtime.outcome_at(&id, Duration::from_secs(10)).await;
    let took = at - start;
    let Outcome::Response(answer) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(check_direct(&answer, 10, &h.sink), (0, 50));
    assert!(took < Duration::from_millis(2500), "took {took:?}");

    // SQS: every record is reported failed, so SQS redelivers it.
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            sqs_record(
                &format!("{i:08x}-2222-4222-8222-222222222222"),
                &scenario(1)[0],
            )
        })
        .collect();
    let start = Instant::now();
    let id = h.runtime.invoke(json!({"Records": batch}));
    let (outcome, at) = h.runtime.outcome_at(&id, Duration::from_secs(10)).await;
    let Outcome::Response(answer) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        answer["batchItemFailures"].as_array().unwrap().len(),
        5,
        "{answer}"
    );
    assert!(
        at - start < Duration::from_millis(2500),
        "took {:?}",
        at - start
    );
}
