//! AppSync Events over WebSocket (`Transport::EventsWs`) against the local server in `ws_server`:
//! exact auth objects per authorizer (IAM re-verified by botocore), batching, answer mapping,
//! retries over a new connection, keep-alive, pacing and the deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use groupcast::{Authorizer, Error, Outcome, Publisher, RetryPolicy, StaticToken, Transport};
use serde_json::{Value, json};

use crate::ws_server::{Behaviour, WsReply, WsServer, all_successful};
use crate::{ACCESS_KEY, creds, fast_retries, msg};

/// The Events HTTP host: every auth object names it, though nothing is sent to it.
const HTTP_HOST: &str = "abc123.appsync-api.eu-west-1.amazonaws.com";

fn builder(server: &WsServer, auth: Authorizer) -> groupcast::PublisherBuilder {
    Publisher::builder()
        .events(HTTP_HOST, "live")
        .events_realtime(&server.base)
        .transports([Transport::EventsWs])
        .region("eu-west-1")
        .authorizer(auth)
        .retry_policy(fast_retries())
}

fn api_key_publisher(server: &WsServer) -> Publisher {
    builder(server, Authorizer::api_key("da2-ws-key"))
        .build()
        .unwrap()
}

fn is_valid_publish_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
}

/// The message ids inside a publish's events.
fn event_ids(publish: &Value) -> Vec<String> {
    publish["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let env: Value = serde_json::from_str(e.as_str().unwrap()).unwrap();
            env["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn api_key_connection_and_publish_carry_the_exact_auth_objects() {
    let server = WsServer::ok().await;
    let m = msg("chat", &["team-a"], json!({"text": "hi \"you\""}));
    let report = api_key_publisher(&server).publish(&m).await.unwrap();

    let conns = server.conns();
    assert_eq!(conns.len(), 1, "rejected: {:?}", server.rejected());
    let c = &conns[0];
    assert_eq!(c.path, "/event/realtime");
    assert!(
        c.protocols.starts_with("aws-appsync-event-ws, header-"),
        "{}",
        c.protocols
    );
    assert_eq!(
        c.auth.to_string(),
        format!(r#"{{"host":"{HTTP_HOST}","x-api-key":"da2-ws-key"}}"#)
    );
    assert_eq!(c.raw[0], r#"{"type":"connection_init"}"#);
    let p = &c.publishes()[0];
    let id = p["id"].as_str().unwrap();
    assert!(is_valid_publish_id(id), "{id}");
    assert_eq!(
        c.raw[1],
        format!(
            r#"{{"type":"publish","id":"{id}","channel":"/live/team-a/chat","events":[{}],"authorization":{{"host":"{HTTP_HOST}","x-api-key":"da2-ws-key"}}}}"#,
            serde_json::to_string(&m.envelope_json()).unwrap()
        )
    );

    assert_eq!(report.deliveries.len(), 1);
    let d = &report.deliveries[0];
    assert_eq!(
        (d.message_id, d.group.as_str(), d.transport),
        (m.id(), "team-a", Transport::EventsWs)
    );
    assert_eq!(
        d.outcome,
        Outcome::Delivered {
            identifier: Some("c0-p0-0".into())
        }
    );
}

#[tokio::test]
async fn token_connection_and_publish_send_the_token_as_authorization() {
    let server = WsServer::ok().await;
    let p = builder(
        &server,
        Authorizer::token(StaticToken("eyJhbGciOi.jwt.sig".into())),
    )
    .build()
    .unwrap();
    assert!(
        p.publish(&msg("t", &["g"], json!(1)))
            .await
            .unwrap()
            .is_complete()
    );
    let c = &server.conns()[0];
    let expected = format!(r#"{{"Authorization":"eyJhbGciOi.jwt.sig","host":"{HTTP_HOST}"}}"#);
    assert_eq!(c.auth.to_string(), expected);
    assert_eq!(c.publishes()[0]["authorization"].to_string(), expected);
}

/// Runs tests/verify_sigv4.py over (auth object, signed body) pairs.
fn botocore_verify(signed: &[(&Value, String)]) -> Vec<Value> {
    let requests: Vec<Value> = signed
        .iter()
        .map(|(auth, body)| {
            let headers: Vec<(String, String)> = auth
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            json!({"method": "POST", "target": "/event", "headers": headers, "body": body})
        })
        .collect();
    crate::sigv4::botocore_verify(&requests)
}

#[tokio::test]
async fn iam_connect_and_publish_are_signed_as_documented_and_botocore_verifies_them() {
    let server = WsServer::ok().await;
    let p = builder(&server, Authorizer::iam(creds(Some("SESSION/TOKEN+=="))))
        .build()
        .unwrap();
    let m = msg("chat/room-1", &["team-a"], json!({"text": "hé \"q\" \\ /"}));
    assert!(p.publish(&m).await.unwrap().is_complete());

    let c = &server.conns()[0];
    let publish = &c.publishes()[0];
    for auth in [&c.auth, &publish["authorization"]] {
        let keys: Vec<&str> = auth
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "accept",
                "content-encoding",
                "content-type",
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "authorization"
            ]
        );
        assert_eq!(auth["accept"], "application/json, text/javascript");
        assert_eq!(auth["content-encoding"], "amz-1.0");
        assert_eq!(auth["content-type"], "application/json; charset=UTF-8");
        assert_eq!(auth["host"], HTTP_HOST);
        assert_eq!(auth["x-amz-security-token"], "SESSION/TOKEN+==");
        let a = auth["authorization"].as_str().unwrap();
        assert!(
            a.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"))
                && a.contains("/eu-west-1/appsync/aws4_request, SignedHeaders=accept;content-encoding;content-type;host;x-amz-date;x-amz-security-token, Signature="),
            "{a}"
        );
    }

    // What AppSync hashes: `{}` for the connection; for a publish, its channel and events,
    // serialized here independently of the library.
    let publish_body =
        serde_json::to_string(&json!({"channel": publish["channel"], "events": publish["events"]}))
            .unwrap();
    assert_eq!(publish["channel"], "/live/team-a/chat/room-1");
    let results = botocore_verify(&[
        (&c.auth, "{}".to_owned()),
        (&publish["authorization"], publish_body.clone()),
        // Swapped bodies must not verify.
        (&c.auth, publish_body),
        (&publish["authorization"], "{}".to_owned()),
    ]);
    assert_eq!(results[0]["ok"], true, "connect: {}", results[0]);
    assert_eq!(results[1]["ok"], true, "publish: {}", results[1]);
    assert_eq!(results[0]["service"], "appsync");
    assert_eq!(results[0]["region"], "eu-west-1");
    assert_eq!(results[2]["ok"], false);
    assert_eq!(results[3]["ok"], false);
}

#[tokio::test]
async fn twelve_events_to_one_channel_go_as_five_five_two_with_unique_ids() {
    let server = WsServer::ok().await;
    let msgs: Vec<_> = (0..12)
        .map(|i| msg("t", &["g"], json!({ "n": i })))
        .collect();
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &Default::default())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");

    let conns = server.conns();
    assert_eq!(conns.len(), 1, "one connection for the whole call");
    let publishes = conns[0].publishes();
    let mut sizes: Vec<usize> = publishes
        .iter()
        .map(|p| p["events"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 5, 5]);
    let ids: Vec<&str> = publishes
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| is_valid_publish_id(id)), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "publish ids repeat: {ids:?}");

    // Every event went exactly once, in message order within each publish, and the report
    // carries the identifier the server gave that (publish, index).
    let mut at: HashMap<String, String> = HashMap::new();
    for (n, p) in publishes.iter().enumerate() {
        assert_eq!(p["channel"], "/live/g/t");
        for (i, id) in event_ids(p).into_iter().enumerate() {
            assert!(at.insert(id, format!("c0-p{n}-{i}")).is_none());
        }
    }
    assert_eq!(at.len(), 12);
    for d in &report.deliveries {
        assert_eq!(
            d.outcome,
            Outcome::Delivered {
                identifier: Some(at[&d.message_id.to_string()].clone())
            }
        );
    }
}

#[tokio::test]
async fn a_message_to_three_groups_goes_to_three_channels() {
    let server = WsServer::ok().await;
    let m = msg("t", &["a", "b", "Team_C"], json!(null));
    let report = api_key_publisher(&server).publish(&m).await.unwrap();
    assert!(report.is_complete());
    let mut channels: Vec<String> = server
        .publishes()
        .iter()
        .map(|p| p["channel"].as_str().unwrap().to_owned())
        .collect();
    channels.sort();
    assert_eq!(channels, ["/live/a/t", "/live/b/t", "/live/x--Team-5fC/t"]);
}

#[tokio::test]
async fn failed_entries_of_both_spellings_map_to_their_message_and_group() {
    let server = WsServer::start(Behaviour::default(), |_, _, _| {
        WsReply::Json(json!({
            "type": "publish_success",
            "successful": [{"identifier": "ok0", "index": 0}, {"identifier": "ok2", "index": 2}],
            "failed": [
                {"identifier": "f1", "index": 1, "code": 401, "message": "denied by handler"},
                {"identifier": "f3", "index": 3, "errorCode": "BadEvent", "errorMessage": "bad"}
            ]
        }))
    })
    .await;
    let msgs: Vec<_> = (0..5).map(|i| msg("t", &["g"], json!(i))).collect();
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        server.publishes().len(),
        1,
        "per-event failures are not retried"
    );
    let outcome = |i: usize| &report.deliveries[i].outcome;
    assert_eq!(
        *outcome(0),
        Outcome::Delivered {
            identifier: Some("ok0".into())
        }
    );
    assert_eq!(
        *outcome(1),
        Outcome::Failed {
            error: "event failed (401): denied by handler".into(),
            retryable: false
        }
    );
    assert_eq!(
        *outcome(2),
        Outcome::Delivered {
            identifier: Some("ok2".into())
        }
    );
    assert_eq!(
        *outcome(3),
        Outcome::Failed {
            error: "event failed (BadEvent): bad".into(),
            retryable: false
        }
    );
    // Not mentioned: failed, never assumed delivered.
    assert!(
        matches!(outcome(4), Outcome::Failed { error, retryable: false } if error.contains("neither as successful nor as failed")),
        "{:?}",
        outcome(4)
    );
    for (d, m) in report.deliveries.iter().zip(&msgs) {
        assert_eq!((d.message_id, d.group.as_str()), (m.id(), "g"));
    }
}

#[tokio::test]
async fn publish_success_with_transient_failed_events_resends_only_those() {
    let server = WsServer::start(Behaviour::default(), |c, n, p| {
        if n == 0 {
            WsReply::Json(json!({
                "type": "publish_success",
                "successful": [{"identifier": "ok0", "index": 0}, {"identifier": "ok2", "index": 2}],
                "failed": [
                    {"identifier": "f1", "index": 1, "errorCode": 500, "errorMessage": "internal"},
                    {"identifier": "f3", "index": 3, "code": "InternalFailure", "message": "try again"},
                    {"identifier": "f4", "index": 4, "code": 400, "message": "bad"}
                ]
            }))
        } else {
            WsReply::Json(all_successful(c, n, p))
        }
    })
    .await;
    let msgs: Vec<_> = (0..5).map(|i| msg("t", &["g"], json!(i))).collect();
    let report = api_key_publisher(&server)
        .publish_all(&msgs, &Default::default())
        .await
        .unwrap();
    let p = server.publishes();
    assert_eq!(p.len(), 2);
    assert_eq!(
        p[1]["events"],
        json!([p[0]["events"][1], p[0]["events"][3]])
    );
    assert_ne!(p[0]["id"], p[1]["id"], "a new publish id per attempt");
    let attempts: Vec<u32> = report.deliveries.iter().map(|d| d.attempts).collect();
    assert_eq!(attempts, [1, 2, 1, 2, 1]);
    for i in [0, 1, 2, 3] {
        assert!(
            report.deliveries[i].outcome.is_delivered(),
            "{i}: {report:?}"
        );
    }
    assert_eq!(
        report.deliveries[4].outcome,
        Outcome::Failed {
            error: "event failed (400): bad".into(),
            retryable: false
        }
    );
}

#[tokio::test]
async fn publish_error_unauthorized_is_not_retried() {
    let server = WsServer::start(Behaviour::default(), |_, _, _| {
        WsReply::Json(json!({"type": "publish_error", "errors": [
            {"errorType": "UnauthorizedException", "message": "You are not authorized to make this call."}
        ]}))
    })
    .await;
    let report = api_key_publisher(&server)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.publishes().len(), 1);
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Failed {
            error: "not authorized (401): UnauthorizedException: You are not authorized to make this call.".into(),
            retryable: false
        }
    );
}

#[tokio::test]
async fn publish_error_throttled_is_retried_with_the_same_events() {
    let server = WsServer::start(Behaviour::default(), |c, n, p| {
        if n == 0 {
            WsReply::Json(json!({"type": "publish_error", "errors": [
                {"errorType": "ThrottlingException", "message": "slow down"}
            ]}))
        } else {
            WsReply::Json(all_successful(c, n, p))
        }
    })
    .await;
    let report = api_key_publisher(&server)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let p = server.publishes();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["events"], p[1]["events"]);
    assert_ne!(p[0]["id"], p[1]["id"], "a new publish id per attempt");
}

#[tokio::test]
async fn a_dropped_connection_is_remade_and_the_same_events_resent() {
    let server = WsServer::start(Behaviour::default(), |c, n, p| {
        if n == 0 {
            WsReply::Drop
        } else {
            WsReply::Json(all_successful(c, n, p))
        }
    })
    .await;
    let m = msg("t", &["g"], json!({"v": 1}));
    let report = api_key_publisher(&server).publish(&m).await.unwrap();
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Delivered {
            identifier: Some("c1-p1-0".into())
        }
    );
    let conns = server.conns();
    assert_eq!(conns.len(), 2, "reconnected");
    let (first, second) = (&conns[0].publishes()[0], &conns[1].publishes()[0]);
    assert_eq!(first["events"], second["events"], "the same event bytes");
    assert_eq!(event_ids(second), [m.id().to_string()]);
    assert_eq!(conns[1].raw[0], r#"{"type":"connection_init"}"#);
}

#[tokio::test]
async fn a_missing_keep_alive_closes_the_connection_and_the_publish_is_resent() {
    // connectionTimeoutMs under `payload` (as Swift reads it); no `ka` ever; the first publish
    // is never answered: only the keep-alive timeout can end that attempt before 5 s.
    let behaviour = Behaviour {
        ack: json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": 300}}),
        ka_every: None,
    };
    let server = WsServer::start(behaviour, |c, n, p| {
        if n == 0 {
            WsReply::Silence
        } else {
            WsReply::Json(all_successful(c, n, p))
        }
    })
    .await;
    let start = Instant::now();
    let report = api_key_publisher(&server)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(server.conns().len(), 2);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

/// Publishes, idles, publishes again; returns the number of connections used.
async fn connections_after_idling(ka_every: Option<Duration>) -> usize {
    let behaviour = Behaviour {
        ack: json!({"type": "connection_ack", "connectionTimeoutMs": 300}),
        ka_every,
    };
    let server = WsServer::start(behaviour, |c, n, p| WsReply::Json(all_successful(c, n, p))).await;
    let p = api_key_publisher(&server);
    assert!(
        p.publish(&msg("t", &["g"], json!(1)))
            .await
            .unwrap()
            .is_complete()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        p.publish(&msg("t", &["g"], json!(2)))
            .await
            .unwrap()
            .is_complete()
    );
    server.conns().len()
}

#[tokio::test]
async fn keep_alives_keep_an_idle_connection_and_their_absence_replaces_it() {
    assert_eq!(
        connections_after_idling(Some(Duration::from_millis(100))).await,
        1
    );
    assert_eq!(connections_after_idling(None).await, 2);
}

#[tokio::test]
async fn the_deadline_bounds_a_call_the_server_never_answers() {
    let server = WsServer::start(Behaviour::default(), |_, _, _| WsReply::Silence).await;
    let p = builder(&server, Authorizer::api_key("k"))
        .deadline(Duration::from_millis(600))
        .retry_policy(RetryPolicy {
            attempt_timeout: Duration::from_secs(30),
            ..fast_retries()
        })
        .build()
        .unwrap();
    let start = Instant::now();
    let report = p.publish(&msg("t", &["g"], json!(1))).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(
        matches!(&report.deliveries[0].outcome, Outcome::Failed { retryable: true, error } if error.contains("timed out")),
        "{report:?}"
    );
}

#[tokio::test]
async fn at_most_25_publishes_per_second_go_on_one_connection() {
    let server = WsServer::ok().await;
    let groups: Vec<String> = (0..30).map(|i| format!("g{i}")).collect();
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let report = api_key_publisher(&server)
        .publish(&msg("t", &group_refs, json!(1)))
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let conns = server.conns();
    assert_eq!(conns.len(), 1);
    let times: Vec<Instant> = conns[0]
        .messages
        .iter()
        .filter(|(_, m)| m["type"] == "publish")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(times.len(), 30);
    // Any 26 consecutive publishes span at least a second (a little slack for arrival jitter).
    for w in times.windows(26) {
        let span = w[25] - w[0];
        assert!(span >= Duration::from_millis(950), "{span:?}");
    }
}

#[tokio::test]
async fn publishes_awaiting_an_answer_are_bounded_by_the_concurrency() {
    let server = WsServer::start(Behaviour::default(), |c, n, p| {
        WsReply::After(
            Duration::from_millis(100),
            Box::new(WsReply::Json(all_successful(c, n, p))),
        )
    })
    .await;
    let p = builder(&server, Authorizer::api_key("k"))
        .concurrency(2)
        .build()
        .unwrap();
    // Two calls at once share the connection: the bound holds across calls.
    let (m1, m2) = (
        msg("t", &["a", "b", "c"], json!(1)),
        msg("t", &["d", "e", "f"], json!(2)),
    );
    let start = Instant::now();
    let (r1, r2) = tokio::join!(p.publish(&m1), p.publish(&m2));
    assert!(r1.unwrap().is_complete() && r2.unwrap().is_complete());
    assert_eq!(server.conns().len(), 1);
    assert_eq!(server.publishes().len(), 6);
    assert_eq!(server.max_outstanding(), 2);
    // Six answers, 100 ms each, two at a time.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_connection_error_unauthorized_fails_without_retrying() {
    let behaviour = Behaviour {
        ack: json!({"type": "connection_error", "errors": [
            {"errorType": "UnauthorizedException", "message": "bad key"}
        ]}),
        ka_every: None,
    };
    let server = WsServer::start(behaviour, |_, _, _| WsReply::Silence).await;
    let report = api_key_publisher(&server)
        .publish(&msg("t", &["g"], json!(1)))
        .await
        .unwrap();
    assert_eq!(server.conns().len(), 1);
    assert!(server.publishes().is_empty());
    assert_eq!(
        report.deliveries[0].outcome,
        Outcome::Failed {
            error: "not authorized (401): UnauthorizedException: bad key".into(),
            retryable: false
        }
    );
}

#[tokio::test]
async fn oversize_input_is_refused_before_connecting() {
    let server = WsServer::ok().await;
    let big = msg("t", &["g"], json!("x".repeat(240_001)));
    let e = api_key_publisher(&server).publish(&big).await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, .. } if field == "messages[0].data"),
        "{e}"
    );
    assert!(server.conns().is_empty(), "nothing may be sent");
}

#[tokio::test]
async fn events_ws_is_opt_in_and_never_combined_with_events() {
    let server = WsServer::ok().await;
    // Configured but not named: the default transports leave it out.
    let p = Publisher::builder()
        .events(HTTP_HOST, "live")
        .events_realtime(&server.base)
        .authorizer(Authorizer::api_key("k"))
        .build()
        .unwrap();
    assert_eq!(p.transports(), [Transport::Events]);
    let e = Publisher::builder()
        .events(HTTP_HOST, "live")
        .events_realtime(&server.base)
        .transports([Transport::Events, Transport::EventsWs])
        .authorizer(Authorizer::api_key("k"))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("events-ws"), "{e}");
    // Per call too.
    let opts = groupcast::PublishOptions {
        transports: Some(vec![Transport::EventsWs, Transport::Events]),
        ..Default::default()
    };
    let e = p
        .publish_all(&[msg("t", &["g"], json!(1))], &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    assert!(server.conns().is_empty());
}

#[tokio::test]
async fn in_a_time_sliced_namespace_the_websocket_publishes_to_the_current_epoch_too() {
    let server = WsServer::ok().await;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let publisher = builder(&server, Authorizer::api_key("da2-ws-key"))
        .events_epoch_seconds(2)
        .clock(groupcast::epoch::Clock::new(move || at))
        .build()
        .unwrap();
    let report = publisher
        .publish(&msg("t", &["a"], json!(null)))
        .await
        .unwrap();
    assert!(report.is_complete());
    let channels: Vec<String> = server
        .publishes()
        .iter()
        .map(|p| p["channel"].as_str().unwrap().to_owned())
        .collect();
    // The shared table's row: 1795000000 s at 2 s is epoch 897500000.
    assert_eq!(channels, ["/live/a/t897500000/t"]);
    assert_eq!(
        report.deliveries[0].channel.as_deref(),
        Some("/live/a/t897500000/t")
    );
}
