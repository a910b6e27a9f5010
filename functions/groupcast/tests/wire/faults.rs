//! The fault-injection suite, through the library: the scenario of issue 13 (1,000 messages × 5
//! groups against a sink injecting 10% HTTP 500, 5% 429, 5% resets and 2% per-event failures),
//! slow responses, and a sink too slow for the deadline. Every event is reported exactly once,
//! delivered or failed; nothing reported delivered is missing at the sink.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use groupcast::{Authorizer, Message, Outcome, PublishReport, Publisher, RetryPolicy};
use serde_json::json;

use crate::fault_sink::{FaultSink, Faults};

pub const GROUPS: [&str; 5] = ["g0", "g1", "g2", "g3", "Team_4"];

/// The default policy but for short backoffs, so the suite stays fast; the budget of attempts is
/// the default one unless a test says otherwise.
fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    }
}

fn publisher(sink: &FaultSink, policy: RetryPolicy, deadline: Duration) -> Publisher {
    Publisher::builder()
        .events(sink.base(), "live")
        .authorizer(Authorizer::api_key("k"))
        .retry_policy(policy)
        .deadline(deadline)
        .build()
        .unwrap()
}

/// `n` messages with fixed ids, so that the sink's rolls (which hash the bytes) repeat run to run.
fn messages(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            Message::builder("orders")
                .groups(GROUPS)
                .data(json!({"n": i}))
                .id(uuid::Uuid::from_u128(
                    0x1313_0000_0000_4000_8000_0000_0000_0000 + i as u128,
                ))
                .build()
                .unwrap()
        })
        .collect()
}

/// What became of a scenario.
#[derive(Debug)]
struct Counts {
    delivered: usize,
    failed: usize,
    duplicates: usize,
}

/// Checks that every (message, group) has exactly one delivery, and that every delivered one was
/// accepted by the sink on its group's channel; counts the rest.
fn check(msgs: &[Message], report: &PublishReport, sink: &FaultSink) -> Counts {
    assert_eq!(report.deliveries.len(), msgs.len() * GROUPS.len());
    let keys: HashSet<(String, String)> = report
        .deliveries
        .iter()
        .map(|d| (d.message_id.to_string(), d.group.clone()))
        .collect();
    assert_eq!(
        keys.len(),
        report.deliveries.len(),
        "one entry per event, never two"
    );
    for m in msgs {
        for g in GROUPS {
            assert!(
                keys.contains(&(m.id().to_string(), g.to_owned())),
                "{} {g} missing",
                m.id()
            );
        }
    }
    let mut accepted: HashMap<(String, String), usize> = HashMap::new();
    for a in sink.accepted() {
        *accepted.entry(a).or_default() += 1;
    }
    let mut counts = Counts {
        delivered: 0,
        failed: 0,
        duplicates: accepted.values().map(|n| n - 1).sum(),
    };
    for d in &report.deliveries {
        let segment = groupcast::group_segment(&d.group).unwrap();
        let at = (format!("/live/{segment}/orders"), d.message_id.to_string());
        match &d.outcome {
            Outcome::Delivered { .. } => {
                counts.delivered += 1;
                assert!(
                    accepted.contains_key(&at),
                    "reported delivered, missing at the sink: {at:?}"
                );
                assert!(d.attempts >= 1);
            }
            Outcome::Failed { .. } => counts.failed += 1,
        }
    }
    counts
}

#[tokio::test]
async fn with_the_default_attempts_every_event_is_delivered_or_reported_failed_exactly_once() {
    let sink = FaultSink::start(Faults::issue_13(13)).await;
    let msgs = messages(1000);
    let p = publisher(
        &sink,
        policy(RetryPolicy::default().max_attempts),
        Duration::from_secs(20),
    );
    let report = p.publish_all(&msgs, &Default::default()).await.unwrap();
    let c = check(&msgs, &report, &sink);
    assert_eq!(c.delivered + c.failed, 5000, "{c:?}");
    let t = sink.tally();
    assert!(
        t.http_500 > 0 && t.http_429 > 0 && t.resets > 0 && t.events_failed > 0,
        "{t:?}"
    );
    // What still failed after 4 attempts is retryable, and says so.
    for d in report.failures() {
        let Outcome::Failed { error, retryable } = &d.outcome else {
            unreachable!()
        };
        assert!(
            *retryable && error.starts_with("gave up after 4 attempt(s)"),
            "{error}"
        );
    }
    // Retries happened per event too: some deliveries took more than one attempt.
    assert!(report.deliveries.iter().any(|d| d.attempts > 1));
}

#[tokio::test]
async fn with_eight_attempts_all_five_thousand_events_of_the_scenario_are_delivered() {
    let sink = FaultSink::start(Faults::issue_13(13)).await;
    let msgs = messages(1000);
    let p = publisher(&sink, policy(8), Duration::from_secs(20));
    let report = p.publish_all(&msgs, &Default::default()).await.unwrap();
    let c = check(&msgs, &report, &sink);
    assert_eq!(
        (c.delivered, c.failed),
        (5000, 0),
        "{c:?}: {:?}",
        report.failures().next()
    );
    let t = sink.tally();
    assert!(
        t.events_failed > 50,
        "per-event failures were injected and retried: {t:?}"
    );
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried_and_the_repeats_are_duplicates_not_losses() {
    let faults = Faults {
        slow: 0.10,
        slow_by: Duration::from_millis(400),
        ..Faults::issue_13(7)
    };
    let sink = FaultSink::start(faults).await;
    let msgs = messages(200);
    let p = publisher(
        &sink,
        RetryPolicy {
            attempt_timeout: Duration::from_millis(150),
            ..policy(8)
        },
        Duration::from_secs(20),
    );
    let report = p.publish_all(&msgs, &Default::default()).await.unwrap();
    let c = check(&msgs, &report, &sink);
    assert_eq!((c.delivered, c.failed), (1000, 0), "{c:?}");
    assert!(sink.tally().slow > 0);
    assert!(
        c.duplicates > 0,
        "a timed-out attempt the sink had accepted is sent again: {c:?}"
    );
}

#[tokio::test]
async fn a_sink_slower_than_the_deadline_yields_failures_within_the_deadline() {
    let sink = FaultSink::start(Faults::slow(Duration::from_secs(30))).await;
    let msgs = messages(20);
    let deadline = Duration::from_millis(600);
    let p = publisher(&sink, policy(8), deadline);
    let start = Instant::now();
    let report = p.publish_all(&msgs, &Default::default()).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed < deadline + Duration::from_millis(400),
        "took {elapsed:?}"
    );
    let c = check(&msgs, &report, &sink);
    assert_eq!((c.delivered, c.failed), (0, 100), "{c:?}");
    for d in report.failures() {
        let Outcome::Failed { error, retryable } = &d.outcome else {
            unreachable!()
        };
        assert!(*retryable && error.contains("timed out"), "{error}");
    }
}
