//! AppSync Events: exact requests per authorizer, batching, channels, the 240 KB limit and the
//! mapping of failed entries.

use std::sync::Arc;

use groupcast::{Authorizer, Error, Outcome, PublishOptions, Publisher, StaticToken, Transport};
use serde_json::json;

use crate::server::{Reply, Server, events_success};
use crate::{creds, fast_retries, msg};

fn api_key_publisher(server: &Server) -> Publisher {
    Publisher::builder()
        .events(&server.base, "live")
        .authorizer(Authorizer::api_key("da2-test-key"))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

/// The exact body groupcast must send: the channel, then each envelope as a JSON string.
fn expected_body(channel: &str, envelopes: &[String]) -> String {
    let events: Vec<String> = envelopes
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    format!(
        "{{\"channel\":{},\"events\":[{}]}}",
        serde_json::to_string(channel).unwrap(),
        events.join(",")
    )
}

#[tokio::test]
async fn api_key_request_has_the_exact_body_and_headers() {
    let server = Server::events_ok().await;
    let m = msg(
        "chat/room-1",
        &["team-a"],
        json!({"text": "hi \"you\"", "n": 1}),
    );
    let report = api_key_publisher(&server).publish(&m).await.unwrap();

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/event"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-api-key"), Some("da2-test-key"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        r.text(),
        expected_body("/live/team-a/chat/room-1", &[m.envelope_json()])
    );
    // The event is the envelope's JSON text, carried as a string.
    let event: serde_json::Value =
        serde_json::from_str(r.json()["events"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        event,
        json!({"id": m.id(), "topic": "chat/room-1", "data": {"text": "hi \"you\"", "n": 1}, "groups": ["team-a"]})
    );

    assert_eq!(report.deliveries.len(), 1);
    let d = &report.deliveries[0];
    assert_eq!(
        (d.message_id, d.group.as_str(), d.transport),
        (m.id(), "team-a", Transport::Events)
    );
    assert_eq!(
        d.outcome,
        Outcome::Delivered {
            identifier: Some("r0-0".into())
        }
    );
    assert!(report.is_complete());
}

#[tokio::test]
async fn token_request_sends_the_token_as_authorization() {
    let server = Server::events_ok().await;
    let publisher = Publisher::builder()
        .events(&server.base, "live")
        .authorizer(Authorizer::token(StaticToken("eyJhbGciOi.jwt.sig".into())))
        .build()
        .unwrap();
    let m = msg("t", &["g"], json!(1));
    assert!(publisher.publish(&m).await.unwrap().is_complete());
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), Some("eyJhbGciOi.jwt.sig"));
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), expected_body("/live/g/t", &[m.envelope_json()]));
}

#[tokio::test]
async fn iam_request_signs_the_documented_header_set() {
    let server = Server::events_ok().await;
    let publisher = Publisher::builder()
        .events(&server.base, "live")
        .region("eu-west-1")
        .authorizer(Authorizer::iam(creds(Some("SESSION-TOKEN"))))
        .build()
        .unwrap();
    let m = msg("t", &["g"], json!({"a": 1}));
    assert!(publisher.publish(&m).await.unwrap().is_complete());
    let r = &server.requests()[0];
    assert_eq!(
        r.header("accept"),
        Some("application/json, text/javascript")
    );
    assert_eq!(r.header("content-encoding"), Some("amz-1.0"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(r.header("x-amz-security-token"), Some("SESSION-TOKEN"));
    let date = r.header("x-amz-date").unwrap();
    assert_eq!(date.len(), 16, "{date}");
    let auth = r.header("authorization").unwrap();
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/eu-west-1/appsync/aws4_request, \
         SignedHeaders=accept;content-encoding;content-type;host;x-amz-date;x-amz-security-token, Signature=",
        crate::ACCESS_KEY,
        &date[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    assert_eq!(auth.len(), prefix.len() + 64);
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.text(), expected_body("/live/g/t", &[m.envelope_json()]));
}

#[tokio::test]
async fn twelve_events_to_one_channel_go_as_five_five_two() {
    let server = Server::events_ok().await;
    let msgs: Vec<_> = (0..12)
        .map(|i| msg("news", &["team-a"], json!({"i": i})))
        .collect();
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &PublishOptions::default())
        .await
        .unwrap();

    let reqs = server.requests();
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| r.json()["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [5, 5, 2]);
    // Requests may complete in any order; match them by content.
    let mut seen = vec![];
    for r in &reqs {
        assert_eq!(r.json()["channel"], "/live/team-a/news");
        for e in r.json()["events"].as_array().unwrap() {
            let env: serde_json::Value = serde_json::from_str(e.as_str().unwrap()).unwrap();
            seen.push(env["data"]["i"].as_i64().unwrap());
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    // Each message's identifier names the request and index that carried it.
    assert_eq!(report.deliveries.len(), 12);
    for (i, (d, m)) in report.deliveries.iter().zip(&msgs).enumerate() {
        assert_eq!(d.message_id, m.id());
        let Outcome::Delivered {
            identifier: Some(id),
        } = &d.outcome
        else {
            panic!("{d:?}")
        };
        let (n, idx) = id[1..].split_once('-').unwrap();
        let r = &reqs[n.parse::<usize>().unwrap()];
        let sent: serde_json::Value = serde_json::from_str(
            r.json()["events"][idx.parse::<usize>().unwrap()]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sent["data"]["i"], i as i64, "{id}");
    }
}

#[tokio::test]
async fn a_message_to_three_groups_goes_to_three_channels() {
    let server = Server::events_ok().await;
    let m = msg("t/x", &["a", "Team_B", "c-3"], json!(null));
    let report = api_key_publisher(&server).publish(&m).await.unwrap();
    let mut channels: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.json()["channel"].as_str().unwrap().to_owned())
        .collect();
    channels.sort();
    assert_eq!(
        channels,
        ["/live/a/t/x", "/live/c-3/t/x", "/live/x--Team-5fB/t/x"]
    );
    for r in server.requests() {
        assert_eq!(r.json()["events"], json!([m.envelope_json()]));
    }
    let groups: Vec<&str> = report.deliveries.iter().map(|d| d.group.as_str()).collect();
    assert_eq!(groups, ["a", "Team_B", "c-3"]);
    assert!(report.is_complete());
}

/// A message whose envelope JSON is exactly `len` bytes.
fn message_of_envelope_len(len: usize) -> groupcast::Message {
    let base = msg("t", &["g"], json!("")).envelope_json().len();
    let m = groupcast::Message::builder("t")
        .group("g")
        .data(json!("x".repeat(len - base)))
        .build()
        .unwrap();
    assert_eq!(m.envelope_json().len(), len);
    m
}

#[tokio::test]
async fn an_event_of_exactly_240_kb_is_sent() {
    let server = Server::events_ok().await;
    let m = message_of_envelope_len(groupcast::limits::EVENT_MAX_BYTES);
    let report = api_key_publisher(&server).publish(&m).await.unwrap();
    assert!(report.is_complete());
    let r = &server.requests()[0];
    assert_eq!(r.json()["events"][0].as_str().unwrap().len(), 240_000);
}

#[tokio::test]
async fn an_event_one_byte_over_240_kb_is_invalid_and_nothing_is_sent() {
    let server = Server::events_ok().await;
    let ok = msg("t", &["g"], json!(1));
    let over = message_of_envelope_len(groupcast::limits::EVENT_MAX_BYTES + 1);
    let err = api_key_publisher(&server)
        .publish_all(&[ok, over], &PublishOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Invalid { field, rule } => {
            assert_eq!(field, "messages[1].data");
            assert!(
                rule.contains("240001 bytes") && rule.contains("240000"),
                "{rule}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        0,
        "nothing may be sent when any input is invalid"
    );
}

#[tokio::test]
async fn failed_entries_map_back_to_their_message_and_group_in_both_spellings() {
    // Channel b fails index 1 (code/message) and index 2 (errorCode/errorMessage); channel a
    // succeeds throughout.
    let server = Server::start(|req, n| {
        if req.json()["channel"] == "/live/b/t" {
            Reply::ok(json!({
                "successful": [{"identifier": "ok-b0", "index": 0}],
                "failed": [
                    {"identifier": "f1", "index": 1, "code": 401, "message": "handler said no"},
                    {"identifier": "f2", "index": 2, "errorCode": "BadRequest", "errorMessage": "bad event"}
                ]
            }))
        } else {
            Reply::ok(events_success(req, n))
        }
    })
    .await;
    let msgs: Vec<_> = (0..3).map(|i| msg("t", &["a", "b"], json!(i))).collect();
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &PublishOptions::default())
        .await
        .unwrap();
    assert_eq!(report.deliveries.len(), 6);
    let outcome = |i: usize, g: &str| {
        report
            .deliveries
            .iter()
            .find(|d| d.message_id == msgs[i].id() && d.group == g)
            .unwrap()
            .outcome
            .clone()
    };
    for i in 0..3 {
        assert!(outcome(i, "a").is_delivered());
    }
    assert_eq!(
        outcome(0, "b"),
        Outcome::Delivered {
            identifier: Some("ok-b0".into())
        }
    );
    assert_eq!(
        outcome(1, "b"),
        Outcome::Failed {
            error: "event failed (401): handler said no".into(),
            retryable: false
        }
    );
    assert_eq!(
        outcome(2, "b"),
        Outcome::Failed {
            error: "event failed (BadRequest): bad event".into(),
            retryable: false
        }
    );
    assert_eq!(report.failures().count(), 2);
    assert!(!report.is_complete());
    assert_eq!(server.requests().len(), 2, "event failures are not retried");
}

#[tokio::test]
async fn an_event_the_response_leaves_out_is_reported_failed() {
    let server = Server::start(|_, _| {
        Reply::ok(json!({"successful": [{"identifier": "x", "index": 0}], "failed": []}))
    })
    .await;
    let msgs = [msg("t", &["g"], json!(0)), msg("t", &["g"], json!(1))];
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &PublishOptions::default())
        .await
        .unwrap();
    assert!(report.deliveries[0].outcome.is_delivered());
    let Outcome::Failed { error, .. } = &report.deliveries[1].outcome else {
        panic!()
    };
    assert!(
        error.contains("event 1 neither as successful nor as failed"),
        "{error}"
    );
}

#[tokio::test]
async fn a_call_may_override_the_authorizer() {
    let server = Server::events_ok().await;
    let opts = PublishOptions {
        authorizer: Some(groupcast::Authorizer::Token(Arc::new(StaticToken(
            "per-call".into(),
        )))),
        ..PublishOptions::default()
    };
    let report = api_key_publisher(&server)
        .publish_all(&[msg("t", &["g"], json!(1))], &opts)
        .await
        .unwrap();
    assert!(report.is_complete());
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), Some("per-call"));
    assert_eq!(r.header("x-api-key"), None);
}

#[tokio::test]
async fn an_unconfigured_transport_is_a_config_error_before_sending() {
    let server = Server::events_ok().await;
    let opts = PublishOptions {
        transports: Some(vec![Transport::Events, Transport::Iot]),
        ..Default::default()
    };
    let err = api_key_publisher(&server)
        .publish_all(&[msg("t", &["g"], json!(1))], &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.starts_with("iot")),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn auth_rejections_are_reported_and_not_retried() {
    for status in [401u16, 403] {
        let server = Server::start(move |_, _| {
            Reply::Json(
                status,
                r#"{"errors":[{"errorType":"UnauthorizedException"}]}"#.into(),
            )
        })
        .await;
        let report = api_key_publisher(&server)
            .publish(&msg("t", &["g"], json!(1)))
            .await
            .unwrap();
        let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
            panic!()
        };
        assert!(
            error.starts_with(&format!("not authorized ({status})")),
            "{error}"
        );
        assert!(!retryable);
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn requests_are_split_to_stay_within_1_2_mb() {
    let server = Server::events_ok().await;
    // Quotes double twice: `"` is `\"` in the envelope and `\\\"` in the request, so five events
    // of about 200 kB each need about 2 MB: more than one request even though 5 events fit.
    let msgs: Vec<_> = (0..5)
        .map(|i| msg("t", &["g"], json!(format!("{i}{}", "\"".repeat(100_000)))))
        .collect();
    assert!(
        msgs.iter()
            .all(|m| m.envelope_json().len() <= groupcast::limits::EVENT_MAX_BYTES)
    );
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &PublishOptions::default())
        .await
        .unwrap();
    assert!(report.is_complete());
    let reqs = server.requests();
    assert!(reqs.len() > 1, "{} requests", reqs.len());
    let mut events = 0;
    for r in &reqs {
        assert!(
            r.body.len() <= groupcast::limits::EVENTS_REQUEST_MAX_BYTES,
            "{} bytes",
            r.body.len()
        );
        events += r.json()["events"].as_array().unwrap().len();
    }
    assert_eq!(events, 5);
}

#[tokio::test]
async fn a_caching_token_provider_is_asked_once_across_calls() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, SystemTime};

    let server = Server::events_ok().await;
    let fetches = Arc::new(AtomicU32::new(0));
    let f = fetches.clone();
    let provider = groupcast::CachingTokenProvider::new(move || {
        let n = f.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            Ok(groupcast::Token {
                value: format!("jwt-{n}"),
                expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
            })
        })
    });
    let p = Publisher::builder()
        .events(&server.base, "live")
        .authorizer(Authorizer::token(provider))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(
            p.publish(&msg("t", &["g"], json!(1)))
                .await
                .unwrap()
                .is_complete()
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    for r in server.requests() {
        assert_eq!(r.header("authorization"), Some("jwt-1"));
    }
}

#[tokio::test]
async fn missing_credentials_fail_the_call_before_anything_is_sent() {
    #[derive(Debug)]
    struct NoCredentials;
    impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "no profile, no role",
                ),
            ))
        }
    }
    let server = Server::events_ok().await;
    let p = Publisher::builder()
        .events(&server.base, "live")
        .region("us-east-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(NoCredentials))
        .build()
        .unwrap();
    let err = p.publish(&msg("t", &["g"], json!(1))).await.unwrap_err();
    assert!(matches!(err, Error::Credentials(_)), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn an_unreadable_success_response_is_a_failure_and_not_retried() {
    // The events may have been accepted: a retry could duplicate them, so report and stop.
    let server = Server::start(|_, _| Reply::Json(200, "<html>gateway</html>".into())).await;
    let report = api_key_publisher(&server)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    let Outcome::Failed { error, retryable } = &report.deliveries[0].outcome else {
        panic!()
    };
    assert!(error.starts_with("unexpected response:"), "{error}");
    assert!(!retryable);
    assert_eq!(server.requests().len(), 1);
}

/// A clock fixed at `unix_seconds`.
fn fixed_clock(unix_seconds: u64) -> groupcast::epoch::Clock {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    groupcast::epoch::Clock::new(move || at)
}

#[tokio::test]
async fn in_a_time_sliced_namespace_each_publish_goes_to_the_epoch_of_the_publishers_clock() {
    let server = Server::events_ok().await;
    let publisher = |t: u64| {
        Publisher::builder()
            .events(&server.base, "live")
            .events_epoch_seconds(300)
            .clock(fixed_clock(t))
            .authorizer(Authorizer::api_key("da2-test-key"))
            .retry_policy(fast_retries())
            .build()
            .unwrap()
    };
    let m = msg("chat/room-1", &["team-a", "Team_B"], json!(1));
    // The shared table's row: 1795000000 s at 300 s is epoch 5983333.
    let report = publisher(1_795_000_000).publish(&m).await.unwrap();
    assert!(report.is_complete());
    let channels: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.json()["channel"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        channels,
        [
            "/live/team-a/t5983333/chat/room-1",
            "/live/x--Team-5fB/t5983333/chat/room-1"
        ]
    );
    // The report shows where each delivery went.
    let shown: Vec<Option<&str>> = report
        .deliveries
        .iter()
        .map(|d| d.channel.as_deref())
        .collect();
    assert_eq!(
        shown,
        [
            Some("/live/team-a/t5983333/chat/room-1"),
            Some("/live/x--Team-5fB/t5983333/chat/room-1")
        ]
    );
    // One period later, the next epoch.
    publisher(1_795_000_300).publish(&m).await.unwrap();
    assert_eq!(
        server.requests()[2].json()["channel"],
        "/live/team-a/t5983334/chat/room-1"
    );
}

#[tokio::test]
async fn in_a_time_sliced_namespace_a_three_segment_topic_is_invalid_before_sending() {
    let server = Server::events_ok().await;
    let publisher = Publisher::builder()
        .events(&server.base, "live")
        .events_epoch_seconds(60)
        .authorizer(Authorizer::api_key("k"))
        .build()
        .unwrap();
    let m = msg("a/b/c", &["team-a"], json!(1));
    let e = publisher.publish(&m).await.unwrap_err();
    let Error::Invalid { field, rule } = e else {
        panic!("expected Invalid, got {e:?}");
    };
    assert_eq!(field, "messages[0].topic");
    assert!(rule.contains("EPOCH_TOPIC_MAX_SEGMENTS"), "{rule}");
    assert!(server.requests().is_empty());
    // Two segments fit, and without epochs three still do.
    publisher
        .publish(&msg("a/b", &["team-a"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 1);
}
