//! Retries: 500, 429 and a reset connection are retried with the same bytes; 400 is not; the
//! deadline bounds the whole call.

use std::time::{Duration, Instant};

use groupcast::{Authorizer, Outcome, Publisher, RetryPolicy};
use serde_json::json;

use crate::server::{Reply, Server, events_success};
use crate::{fast_retries, msg};

fn publisher(server: &Server, policy: RetryPolicy, deadline: Duration) -> Publisher {
    Publisher::builder()
        .events(&server.base, "live")
        .authorizer(Authorizer::api_key("k"))
        .retry_policy(policy)
        .deadline(deadline)
        .build()
        .unwrap()
}

/// Fails the first request with `first`, then succeeds; checks one retry with identical bytes.
async fn retried_once_after(first: Reply) {
    let server = Server::start(move |req, n| {
        if n == 0 {
            first.clone()
        } else {
            Reply::ok(events_success(req, n))
        }
    })
    .await;
    let m = msg("t", &["g"], json!({"v": 1}));
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish(&m)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Delivered {
            identifier: Some("r1-0".into())
        }
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body, "a retry resends the same event");
    let event: serde_json::Value =
        serde_json::from_str(reqs[1].json()["events"][0].as_str().unwrap()).unwrap();
    assert_eq!(event["id"], m.id().to_string());
}

#[tokio::test]
async fn retries_a_500_then_succeeds_with_the_same_event_id() {
    retried_once_after(Reply::Json(500, "{}".into())).await;
}

#[tokio::test]
async fn retries_a_429_then_succeeds_with_the_same_event_id() {
    retried_once_after(Reply::Json(429, r#"{"message":"slow down"}"#.into())).await;
}

#[tokio::test]
async fn retries_a_reset_connection_then_succeeds_with_the_same_event_id() {
    retried_once_after(Reply::Reset).await;
}

#[tokio::test]
async fn does_not_retry_a_400() {
    let server =
        Server::start(|_, _| Reply::Json(400, r#"{"message":"bad channel"}"#.into())).await;
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Failed {
            error: r#"rejected (400): {"message":"bad channel"}"#.into(),
            retryable: false
        }
    );
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let server = Server::start(|_, _| Reply::Json(503, "{}".into())).await;
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 4);
    let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
        panic!()
    };
    assert!(
        error.starts_with("gave up after 4 attempt(s)") && error.contains("HTTP 503"),
        "{error}"
    );
    assert!(retryable);
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10_000,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        attempt_timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn the_deadline_bounds_a_server_that_always_fails() {
    let server = Server::start(|_, _| Reply::Json(500, "{}".into())).await;
    let deadline = Duration::from_millis(700);
    let start = Instant::now();
    let report = publisher(&server, patient(), deadline)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed < deadline + Duration::from_millis(300),
        "took {elapsed:?}"
    );
    let sent = server.requests().len();
    assert!(
        sent >= 3,
        "it kept retrying until the deadline: {sent} requests"
    );
    let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
        panic!()
    };
    assert!(
        error.starts_with(&format!("gave up after {sent} attempt(s)")),
        "{error} vs {sent} requests"
    );
    assert!(retryable);
}

#[tokio::test]
async fn the_deadline_bounds_a_server_that_never_answers() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(30),
            Box::new(Reply::Json(200, "{}".into())),
        )
    })
    .await;
    let deadline = Duration::from_millis(500);
    let start = Instant::now();
    let report = publisher(&server, patient(), deadline)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed < deadline + Duration::from_millis(300),
        "took {elapsed:?}"
    );
    assert_eq!(server.requests().len(), 1);
    let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
        panic!()
    };
    assert!(
        error.starts_with("gave up after 1 attempt(s)") && error.contains("timed out"),
        "{error}"
    );
    assert!(retryable);
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried_within_the_deadline() {
    let server = Server::start(|req, n| {
        if n == 0 {
            Reply::After(
                Duration::from_secs(30),
                Box::new(Reply::Json(200, "{}".into())),
            )
        } else {
            Reply::ok(events_success(req, n))
        }
    })
    .await;
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(200),
        ..fast_retries()
    };
    let report = publisher(&server, policy, Duration::from_secs(5))
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
}

/// A first answer that fails events 1 (`code` 500) and 3 (`errorCode` ThrottlingException) of
/// five, and event 4 for good (401); every later answer succeeds.
fn partly_failed(req: &crate::server::Captured, n: usize) -> Reply {
    if n > 0 {
        return Reply::ok(events_success(req, n));
    }
    Reply::ok(json!({
        "successful": [{"identifier": "a0", "index": 0}, {"identifier": "a2", "index": 2}],
        "failed": [
            {"identifier": "f1", "index": 1, "code": 500, "message": "internal"},
            {"identifier": "f3", "index": 3, "errorCode": "ThrottlingException", "errorMessage": "slow down"},
            {"identifier": "f4", "index": 4, "code": 401, "message": "denied by handler"}
        ]
    }))
}

#[tokio::test]
async fn failed_events_with_a_transient_code_are_resent_alone_with_their_bytes() {
    let server = Server::start(partly_failed).await;
    let msgs: Vec<_> = (0..5).map(|i| msg("t", &["g"], json!(i))).collect();
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish_all(&msgs, &Default::default())
        .await
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one retry, of the two transient failures");
    let first = reqs[0].json();
    let retry = reqs[1].json();
    assert_eq!(retry["channel"], first["channel"]);
    assert_eq!(
        retry["events"],
        json!([first["events"][1], first["events"][3]]),
        "only events 1 and 3, as they were sent (same ids)"
    );
    let outcomes: Vec<(&Outcome, u32)> = report
        .deliveries
        .iter()
        .map(|d| (&d.outcome, d.attempts))
        .collect();
    let delivered = |id: &str| Outcome::Delivered {
        identifier: Some(id.into()),
    };
    assert_eq!(outcomes[0], (&delivered("a0"), 1));
    assert_eq!(outcomes[1], (&delivered("r1-0"), 2));
    assert_eq!(outcomes[2], (&delivered("a2"), 1));
    assert_eq!(outcomes[3], (&delivered("r1-1"), 2));
    assert_eq!(
        outcomes[4],
        (
            &Outcome::Failed {
                error: "event failed (401): denied by handler".into(),
                retryable: false
            },
            1
        ),
        "a non-transient code is final"
    );
}

#[tokio::test]
async fn a_transient_event_failure_that_persists_uses_the_attempt_budget_then_fails_retryable() {
    let server = Server::start(|req, _| {
        let count = req.json()["events"].as_array().map_or(0, Vec::len);
        let failed: Vec<_> = (0..count)
            .map(|i| json!({"identifier": "f", "index": i, "errorCode": 503, "errorMessage": "busy"}))
            .collect();
        Reply::ok(json!({"successful": [], "failed": failed}))
    })
    .await;
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 4, "fast_retries allows 4 attempts");
    let d = &report.deliveries[0];
    assert_eq!(d.attempts, 4);
    let Outcome::Failed { error, retryable } = &d.outcome else {
        panic!("{d:?}")
    };
    assert!(
        error.starts_with("gave up after 4 attempt(s)")
            && error.ends_with("event failed (503): busy"),
        "{error}"
    );
    assert!(retryable);
}

#[tokio::test]
async fn every_delivery_says_how_many_attempts_it_took() {
    let server = Server::start(|req, n| {
        if n < 2 {
            Reply::Json(500, "{}".into())
        } else {
            Reply::ok(events_success(req, n))
        }
    })
    .await;
    let report = publisher(&server, fast_retries(), Duration::from_secs(10))
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete());
    assert_eq!(report.deliveries[0].attempts, 3);
}

#[tokio::test]
async fn a_call_deadline_earlier_than_the_publishers_ends_the_call_by_it() {
    let server = Server::start(|_, _| {
        Reply::After(
            Duration::from_secs(30),
            Box::new(Reply::Json(200, "{}".into())),
        )
    })
    .await;
    let p = publisher(&server, patient(), Duration::from_secs(10));
    let opts = groupcast::PublishOptions {
        deadline: Some(std::time::SystemTime::now() + Duration::from_millis(400)),
        ..Default::default()
    };
    let start = Instant::now();
    let report = p
        .publish_all(&[msg("t", &["g"], json!(1))], &opts)
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(800), "took {elapsed:?}");
    let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
        panic!()
    };
    assert!(*retryable && error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn a_call_deadline_already_past_sends_nothing_and_fails_every_delivery_retryable() {
    let server = Server::events_ok().await;
    let p = publisher(&server, fast_retries(), Duration::from_secs(10));
    let opts = groupcast::PublishOptions {
        deadline: Some(std::time::SystemTime::now() - Duration::from_secs(1)),
        ..Default::default()
    };
    let report = p
        .publish_all(&[msg("t", &["a", "b"], json!(1))], &opts)
        .await
        .unwrap();
    assert!(server.requests().is_empty());
    for d in &report.deliveries {
        assert_eq!(d.attempts, 0);
        let Outcome::Failed { error, retryable } = &d.outcome else {
            panic!()
        };
        assert!(*retryable && error.contains("deadline passed"), "{error}");
    }
}
