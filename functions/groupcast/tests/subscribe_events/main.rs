//! The AppSync Events subscriber (`groupcast::subscribe::events`) over the wire.
//!
//! - this file: protocol edges against `server`, a local realtime server on 127.0.0.1 (own groups,
//!   de-dup, refused parts, reconnects, keep-alive, unsubscribe, garbage, auth);
//! - `epochs`: time-sliced channels (issue 14) against `server`: rotation across epoch boundaries,
//!   nothing lost or duplicated, old epochs unsubscribed, a refused epoch ending its group;
//! - `emulator`: against the project's Node Events emulator (`tests/e2e/events-emulator.mjs`)
//!   running the handler `provisioner render` produced, so the real `onSubscribe` verdict.

// Test helpers are `pub` for sibling modules; this crate has no outside users.
#![allow(unreachable_pub)]

mod emulator;
mod epochs;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{
    ConnectionState, Received, ReconnectPolicy, SubscribeError, Subscription, SubscriptionEvent,
};
use groupcast::{Authorizer, Message, TokenProvider};
use serde_json::{Value, json};

use server::{Behaviour, Server};

/// Bound on every wait for the wire.
const STEP: Duration = Duration::from_secs(5);

pub fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy {
        base: Duration::from_millis(20),
        max: Duration::from_millis(200),
    }
}

fn subscriber(server: &Server) -> EventsSubscriber {
    EventsSubscriber::builder()
        .realtime_url(&server.base)
        .http_host("abc.appsync-api.us-east-1.amazonaws.com")
        .namespace("live")
        .authorizer(Authorizer::api_key("da2-test"))
        .reconnect(fast_reconnect())
        .build()
        .unwrap()
}

/// A published envelope's JSON text, and its message.
pub fn message(topic: &str, groups: &[&str], n: u32) -> (Message, String) {
    let m = Message::builder(topic)
        .groups(groups.iter().copied())
        .data(json!({"n": n}))
        .build()
        .unwrap();
    let text = m.envelope_json();
    (m, text)
}

pub async fn next_event(sub: &mut Subscription) -> Option<SubscriptionEvent> {
    tokio::time::timeout(STEP, sub.next_event())
        .await
        .expect("an event within the step")
}

/// Events up to and including the next `Active`.
pub async fn until_active(sub: &mut Subscription) -> Vec<SubscriptionEvent> {
    let mut seen = Vec::new();
    loop {
        match next_event(sub).await {
            Some(SubscriptionEvent::Active) => {
                seen.push(SubscriptionEvent::Active);
                return seen;
            }
            Some(e) => seen.push(e),
            None => panic!("the subscription ended before Active; events: {seen:?}"),
        }
    }
}

/// The next message, skipping state changes and Active; panics on a part error.
pub async fn next_message(sub: &mut Subscription) -> Received {
    loop {
        match next_event(sub).await {
            Some(SubscriptionEvent::Message(m)) => return m,
            Some(SubscriptionEvent::PartEnded { part, error }) => panic!("{part} ended: {error}"),
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
}

/// Every event within `period` (the subscription stays open).
pub async fn events_within(sub: &mut Subscription, period: Duration) -> Vec<SubscriptionEvent> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + period;
    while let Ok(Some(e)) = tokio::time::timeout_at(end, sub.next_event()).await {
        seen.push(e);
    }
    seen
}

fn messages(events: &[SubscriptionEvent]) -> Vec<&Received> {
    events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn subscribing_to_own_groups_confirms_every_channel_then_delivers_their_envelopes() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    assert!(
        server.conns().is_empty(),
        "nothing connects before first use"
    );
    let mut sub = s
        .subscribe_groups(&["team-a", "Team_B"], "*")
        .await
        .unwrap();
    let before = until_active(&mut sub).await;
    assert!(
        before.contains(&SubscriptionEvent::State(ConnectionState::Connected)),
        "{before:?}"
    );
    let conns = server.conns();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].auth,
        json!({"host": "abc.appsync-api.us-east-1.amazonaws.com", "x-api-key": "da2-test"}),
        "the connection's auth object names the HTTP host"
    );
    assert_eq!(conns[0].of("connection_init").len(), 1);
    assert_eq!(
        conns[0].subscribed(),
        ["/live/team-a/*", "/live/x--Team-5fB/*"]
    );
    for m in conns[0].of("subscribe") {
        assert_eq!(
            m["authorization"],
            json!({"host": "abc.appsync-api.us-east-1.amazonaws.com", "x-api-key": "da2-test"})
        );
        let id = m["id"].as_str().unwrap();
        assert!(
            (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c)),
            "{id}"
        );
    }
    assert_eq!(*s.states().borrow(), ConnectionState::Connected);

    let (m, text) = message("news", &["Team_B"], 1);
    assert_eq!(server.publish("/live/x--Team-5fB/news", json!(text)), 1);
    let got = next_message(&mut sub).await;
    assert_eq!(got.envelope, m.envelope());
    assert_eq!(got.part, "/live/x--Team-5fB/*");
}

#[tokio::test]
async fn a_message_addressed_to_several_of_the_callers_groups_arrives_once() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b", "team-c"], "news")
        .await
        .unwrap();
    until_active(&mut sub).await;
    let (both, text) = message("news", &["team-a", "team-b", "team-c"], 1);
    for g in ["team-a", "team-b", "team-c"] {
        assert_eq!(server.publish(&format!("/live/{g}/news"), json!(text)), 1);
    }
    let (other, text2) = message("news", &["team-b"], 2);
    server.publish("/live/team-b/news", json!(text2));
    // The same envelope again later (a publisher retry) is still a duplicate.
    server.publish("/live/team-c/news", json!(text));
    let got = events_within(&mut sub, Duration::from_millis(300)).await;
    let ids: Vec<_> = messages(&got).iter().map(|m| m.envelope.id).collect();
    assert_eq!(ids, [both.id(), other.id()], "{got:?}");
}

#[tokio::test]
async fn a_refused_group_ends_only_its_part_with_a_typed_error_and_is_never_asked_again() {
    let server = Server::start(Behaviour {
        policy: Arc::new(|_, channel, _| {
            (channel == "/live/team-b/*")
                .then(|| json!([{"errorType": "Unauthorized", "message": "not a member"}]))
        }),
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b", "team-c"], "*")
        .await
        .unwrap();
    let events = until_active(&mut sub).await;
    let ended: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::PartEnded { part, error } => Some((part.clone(), error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0].0, "/live/team-b/*");
    assert!(
        matches!(&ended[0].1, SubscribeError::Unauthorized { part, message } if part == "/live/team-b/*" && message.contains("not a member")),
        "{:?}",
        ended[0].1
    );

    // The siblings keep receiving.
    let (m, text) = message("news", &["team-c"], 1);
    server.publish("/live/team-c/news", json!(text));
    assert_eq!(next_message(&mut sub).await.envelope.id, m.id());

    // After a reconnect, the refused part is not asked again: no loop.
    server.drop_all();
    until_active(&mut sub).await;
    let conns = server.conns();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[1].subscribed(), ["/live/team-a/*", "/live/team-c/*"]);
    let (m, text) = message("news", &["team-a"], 2);
    server.publish("/live/team-a/news", json!(text));
    assert_eq!(next_message(&mut sub).await.envelope.id, m.id());
    let refused = server
        .all_of("subscribe")
        .iter()
        .filter(|m| m["channel"] == "/live/team-b/*")
        .count();
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn a_subscription_whose_every_part_is_refused_ends_after_reporting_each() {
    let server = Server::start(Behaviour {
        policy: Arc::new(|_, _, _| {
            Some(json!([{"errorType": "SubscriptionProcessingError", "message": "bad channel"}]))
        }),
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s.subscribe_groups(&["a", "b"], "*").await.unwrap();
    let mut all = Vec::new();
    while let Some(e) = next_event(&mut sub).await {
        all.push(e);
    }
    let mut ended = Vec::new();
    for e in &all {
        if let SubscriptionEvent::PartEnded { part, error } = e {
            assert!(
                matches!(error, SubscribeError::Rejected { error_type, .. } if error_type == "SubscriptionProcessingError"),
                "{error:?}"
            );
            ended.push(part.clone());
        }
    }
    assert_eq!(ended, ["/live/a/*", "/live/b/*"]);
    assert!(
        !all.contains(&SubscriptionEvent::Active),
        "Active is never reported without a live part: {all:?}"
    );
    // The subscriber itself goes on.
    let mut other = s.subscribe("/live/c").await.unwrap();
    let events = events_within(&mut other, Duration::from_millis(200)).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::PartEnded { part, .. } if part == "/live/c")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_dropped_connection_reconnects_resubscribes_and_loses_nothing_published_after_active() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut states = s.states();
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    until_active(&mut sub).await;
    let (m1, t1) = message("t", &["team-a"], 1);
    server.publish("/live/team-a/t", json!(t1));
    assert_eq!(next_message(&mut sub).await.envelope.id, m1.id());

    server.drop_all();
    let events = until_active(&mut sub).await;
    let states_seen: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::State(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            states_seen.first(),
            Some(ConnectionState::Backoff { attempt: 1, .. })
        ),
        "{states_seen:?}"
    );
    assert_eq!(
        states_seen[1..],
        [ConnectionState::Connecting, ConnectionState::Connected]
    );
    assert_eq!(*states.borrow_and_update(), ConnectionState::Connected);
    let conns = server.conns();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[1].subscribed(), ["/live/team-a/*", "/live/team-b/*"]);

    // Everything published once Active is reported arrives.
    let mut sent = Vec::new();
    for n in 0..50 {
        let g = if n % 2 == 0 { "team-a" } else { "team-b" };
        let (m, t) = message("t", &[g], n);
        assert_eq!(server.publish(&format!("/live/{g}/t"), json!(t)), 1);
        sent.push(m.id());
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(next_message(&mut sub).await.envelope.id);
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_connection_silent_past_the_acks_keep_alive_timeout_is_replaced() {
    // connectionTimeoutMs under `payload` (the Swift client's reading), and no ka at all.
    let server = Server::start(Behaviour {
        ack: Ok(json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": 300}})),
        ka_every: None,
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s.subscribe("/live/team-a/*").await.unwrap();
    until_active(&mut sub).await;
    let started = tokio::time::Instant::now();
    until_active(&mut sub).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "replaced only after the timeout: {waited:?}"
    );
    assert_eq!(server.conns().len(), 2);
    assert_eq!(server.conns()[1].subscribed(), ["/live/team-a/*"]);
}

#[tokio::test]
async fn keep_alives_within_the_timeout_keep_the_connection() {
    let server = Server::start(Behaviour {
        ack: Ok(json!({"type": "connection_ack", "connectionTimeoutMs": 300})),
        ka_every: Some(Duration::from_millis(100)),
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s.subscribe("/live/team-a/*").await.unwrap();
    until_active(&mut sub).await;
    let events = events_within(&mut sub, Duration::from_millis(1000)).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(server.conns().len(), 1);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_its_parts_and_leaves_the_others() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut keep = s.subscribe("/live/team-c/*").await.unwrap();
    until_active(&mut keep).await;
    let mut gone = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    until_active(&mut gone).await;
    assert_eq!(server.live_subscriptions(), 3);
    let ids: Vec<Value> = server.conns()[0]
        .of("subscribe")
        .iter()
        .skip(1)
        .map(|m| m["id"].clone())
        .collect();
    drop(gone);
    wait_until("two unsubscribes", || {
        server.all_of("unsubscribe").len() == 2
    })
    .await;
    let unsubscribed: Vec<Value> = server
        .all_of("unsubscribe")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(unsubscribed, ids);
    wait_until("the server to forget them", || {
        server.live_subscriptions() == 1
    })
    .await;
    let (m, t) = message("x", &["team-c"], 1);
    server.publish("/live/team-c/x", json!(t));
    assert_eq!(next_message(&mut keep).await.envelope.id, m.id());
}

#[tokio::test]
async fn garbage_frames_neither_panic_nor_end_the_subscription() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut sub = s.subscribe_groups(&["team-a"], "*").await.unwrap();
    until_active(&mut sub).await;
    let id = server.id_of("/live/team-a/*").unwrap();
    let (m1, t1) = message("t", &["team-a"], 1);
    let (m2, t2) = message("t", &["team-a"], 2);
    for raw in [
        "not json".to_owned(),
        "".to_owned(),
        "[]".to_owned(),
        "{}".to_owned(),
        "null".to_owned(),
        r#"{"type":5}"#.to_owned(),
        r#"{"type":"data","id":7,"event":"x"}"#.to_owned(),
        r#"{"type":"data","id":"no-such-id","event":"{}"}"#.to_owned(),
        json!({"type": "data", "id": id}).to_string(),
        json!({"type": "data", "id": id, "event": 42}).to_string(),
        json!({"type": "data", "id": id, "event": "not json"}).to_string(),
        json!({"type": "data", "id": id, "event": "{\"id\":\"not-a-uuid\"}"}).to_string(),
        json!({"type": "data", "id": id, "event": [1, null, {"a": 1}]}).to_string(),
        json!({"type": "subscribe_error", "id": "no-such-id", "errors": "x"}).to_string(),
        json!({"type": "subscribe_success", "id": "no-such-id"}).to_string(),
        json!({"type": "subscribe_success", "id": id}).to_string(),
        json!({"type": "broadcast_error", "id": id, "errors": [{"errorType": "MessageProcessingError"}]}).to_string(),
        json!({"type": "error"}).to_string(),
        json!({"type": "unsubscribe_error", "id": "nope", "errors": 3}).to_string(),
        json!({"type": "connection_ack"}).to_string(),
        json!({"type": "something-new", "id": id}).to_string(),
        "\u{0}\u{ffff}".to_owned(),
        "x".repeat(100_000),
    ] {
        server.send_raw(&raw);
    }
    server.send_binary(&[0xff, 0x00, 0x7b]);
    // The docs' form: `event` as an array of JSON strings.
    server.send_raw(&json!({"type": "data", "id": id, "event": [t1]}).to_string());
    // An event as a JSON object rather than text.
    let object: Value = serde_json::from_str(&t2).unwrap();
    server.send_raw(&json!({"type": "data", "id": id, "event": object}).to_string());
    let events = events_within(&mut sub, Duration::from_millis(300)).await;
    let got: Vec<_> = messages(&events).iter().map(|m| m.envelope.id).collect();
    assert_eq!(got, [m1.id(), m2.id()], "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::PartEnded { .. })),
        "{events:?}"
    );
    assert_eq!(server.conns().len(), 1, "the connection stayed up");
    let (m3, t3) = message("t", &["team-a"], 3);
    server.publish("/live/team-a/t", json!(t3));
    assert_eq!(next_message(&mut sub).await.envelope.id, m3.id());
}

#[tokio::test]
async fn a_connection_refused_with_401_is_final_and_not_retried() {
    let server = Server::start(Behaviour {
        refuse_upgrade: Some(401),
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    let mut parts = Vec::new();
    let mut last_state = None;
    while let Some(e) = next_event(&mut sub).await {
        match e {
            SubscriptionEvent::PartEnded { part, error } => {
                assert!(
                    matches!(&error, SubscribeError::Connection(m) if m.contains("401")),
                    "{error:?}"
                );
                parts.push(part);
            }
            SubscriptionEvent::State(s) => last_state = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(parts, ["/live/team-a/*", "/live/team-b/*"]);
    assert_eq!(last_state, Some(ConnectionState::Closed));
    assert_eq!(*s.states().borrow(), ConnectionState::Closed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.upgrades_refused(), 1, "no retry loop");
    let e = s.subscribe("/live/team-a/*").await.unwrap_err();
    assert!(matches!(e, SubscribeError::Connection(_)), "{e:?}");
}

#[tokio::test]
async fn a_connection_error_before_the_ack_is_final() {
    let server = Server::start(Behaviour {
        ack: Err(
            json!({"type": "connection_error", "errors": [{"errorType": "UnauthorizedException", "message": "token expired"}]}),
        ),
        ..Behaviour::default()
    })
    .await;
    let s = subscriber(&server);
    let mut sub = s.subscribe("/live/team-a/*").await.unwrap();
    let mut errors = Vec::new();
    while let Some(e) = next_event(&mut sub).await {
        if let SubscriptionEvent::PartEnded { error, .. } = e {
            errors.push(error.to_string());
        }
    }
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("token expired"), "{errors:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.conns().len(), 1, "no retry loop");
}

#[tokio::test]
async fn an_unreachable_server_is_retried_with_growing_backoff_and_states_say_so() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = EventsSubscriber::builder()
        .realtime_url(format!("ws://127.0.0.1:{port}"))
        .namespace("live")
        .authorizer(Authorizer::api_key("k"))
        .reconnect(ReconnectPolicy {
            base: Duration::from_millis(10),
            max: Duration::from_millis(40),
        })
        .build()
        .unwrap();
    let mut sub = s.subscribe("/live/a").await.unwrap();
    let mut attempts = Vec::new();
    while attempts.len() < 4 {
        if let Some(SubscriptionEvent::State(ConnectionState::Backoff { attempt, delay })) =
            next_event(&mut sub).await
        {
            assert!(delay <= Duration::from_millis(40), "{delay:?}");
            attempts.push(attempt);
        }
    }
    assert_eq!(attempts, [1, 2, 3, 4]);
    s.close().await;
    let rest = events_within(&mut sub, Duration::from_millis(500)).await;
    assert_eq!(
        rest.last(),
        Some(&SubscriptionEvent::State(ConnectionState::Closed)),
        "{rest:?}"
    );
    assert!(
        tokio::time::timeout(STEP, sub.next_event())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn close_unsubscribes_everything_closes_and_ends_every_subscription() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut a = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    let mut b = s.subscribe("/live/team-c/x").await.unwrap();
    until_active(&mut a).await;
    until_active(&mut b).await;
    s.close().await;
    let mut unsubscribed: Vec<String> = server
        .all_of("unsubscribe")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    let mut subscribed: Vec<String> = server
        .all_of("subscribe")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    unsubscribed.sort();
    subscribed.sort();
    assert_eq!(unsubscribed, subscribed);
    for sub in [&mut a, &mut b] {
        let rest = events_within(sub, Duration::from_millis(200)).await;
        assert_eq!(
            rest,
            [SubscriptionEvent::State(ConnectionState::Closed)],
            "then the end"
        );
        assert!(sub.next_event().await.is_none());
    }
    assert_eq!(*s.states().borrow(), ConnectionState::Closed);
    wait_until("the server to see the close", || {
        server.live_subscriptions() == 0
    })
    .await;
    assert_eq!(
        s.subscribe("/live/a").await.unwrap_err(),
        SubscribeError::Closed
    );
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_sent() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let e = s.subscribe_groups(&["ok", ""], "*").await.unwrap_err();
    assert!(
        matches!(&e, SubscribeError::Invalid { field, .. } if field == "groups[1]"),
        "{e:?}"
    );
    let e = s.subscribe_groups(&["ok"], "a/b/c/*").await.unwrap_err();
    assert!(
        matches!(&e, SubscribeError::Invalid { field, .. } if field == "topic"),
        "{e:?}"
    );
    let e = s.subscribe_groups::<&str>(&[], "*").await.unwrap_err();
    assert!(
        matches!(&e, SubscribeError::Invalid { field, .. } if field == "groups"),
        "{e:?}"
    );
    let e = s.subscribe("/live/a b").await.unwrap_err();
    assert!(
        matches!(&e, SubscribeError::Invalid { field, .. } if field == "channel"),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.conns().is_empty());
}

/// A token provider that hands out `t1`, `t2`, … one per call.
#[derive(Debug, Default)]
struct Counting(AtomicU32);

impl TokenProvider for Counting {
    fn token(&self) -> BoxFuture<'_, Result<String, groupcast::Error>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move { Ok(format!("t{n}")) })
    }
}

#[tokio::test]
async fn a_token_provider_is_asked_again_on_every_reconnect() {
    let server = Server::ok().await;
    let s = EventsSubscriber::builder()
        .realtime_url(&server.base)
        .namespace("live")
        .authorizer(Authorizer::token(Counting::default()))
        .reconnect(fast_reconnect())
        .build()
        .unwrap();
    let mut sub = s.subscribe("/live/a/*").await.unwrap();
    until_active(&mut sub).await;
    server.drop_all();
    until_active(&mut sub).await;
    let conns = server.conns();
    // The HTTP host is derived from the realtime one (here the same 127.0.0.1 host and port).
    let host = server.base.trim_start_matches("ws://");
    assert_eq!(conns[0].auth, json!({"Authorization": "t1", "host": host}));
    assert_eq!(conns[1].auth, json!({"Authorization": "t2", "host": host}));
    assert_eq!(
        conns[1].of("subscribe")[0]["authorization"],
        json!({"Authorization": "t2", "host": host})
    );
}

#[tokio::test]
async fn a_per_subscription_authorizer_authorizes_only_its_subscribe_message() {
    let server = Server::ok().await;
    let s = subscriber(&server);
    let mut own = s
        .subscribe_with(
            "/live/admins/*",
            Authorizer::token(groupcast::StaticToken("lambda-token".into())),
        )
        .await
        .unwrap();
    let mut default = s.subscribe("/live/team-a/*").await.unwrap();
    until_active(&mut own).await;
    until_active(&mut default).await;
    let c = &server.conns()[0];
    assert_eq!(
        c.auth["x-api-key"], "da2-test",
        "the connection keeps the default"
    );
    let subs = c.of("subscribe");
    assert_eq!(
        subs[0]["authorization"],
        json!({"Authorization": "lambda-token", "host": "abc.appsync-api.us-east-1.amazonaws.com"})
    );
    assert_eq!(subs[1]["authorization"]["x-api-key"], "da2-test");
}

#[tokio::test]
async fn iam_signs_the_connection_over_an_empty_object_and_each_subscribe_over_its_channel() {
    let server = Server::ok().await;
    let credentials = aws_credential_types::Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some("session".into()),
        None,
        "test",
    );
    let s = EventsSubscriber::builder()
        .realtime_url(&server.base)
        .http_host("abc.appsync-api.us-east-1.amazonaws.com")
        .namespace("live")
        .region("us-east-1")
        .authorizer(Authorizer::iam(credentials))
        .reconnect(fast_reconnect())
        .build()
        .unwrap();
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    until_active(&mut sub).await;
    let c = &server.conns()[0];
    for auth in std::iter::once(c.auth.clone())
        .chain(c.of("subscribe").iter().map(|m| m["authorization"].clone()))
    {
        assert_eq!(auth["host"], "abc.appsync-api.us-east-1.amazonaws.com");
        assert_eq!(auth["x-amz-security-token"], "session");
        assert!(
            auth["x-amz-date"].as_str().is_some_and(|d| d.len() == 16),
            "{auth}"
        );
        let a = auth["authorization"].as_str().unwrap();
        assert!(
            a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{a}"
        );
        assert!(a.contains("/us-east-1/appsync/aws4_request"), "{a}");
    }
    // Each signature covers its own body: the channel.
    let sigs: std::collections::HashSet<String> = c
        .of("subscribe")
        .iter()
        .map(|m| {
            m["authorization"]["authorization"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .chain([c.auth["authorization"].as_str().unwrap().to_owned()])
        .collect();
    assert_eq!(sigs.len(), 3);
    // botocore re-derives each signature from the body it must cover: `{}` for the connection,
    // `{"channel":…}` for a subscribe; swapped bodies fail.
    let subs = c.of("subscribe");
    let channel_body = |m: &Value| json!({"channel": m["channel"]}).to_string();
    let results = botocore_verify(&[
        (&c.auth, "{}".to_owned()),
        (&subs[0]["authorization"], channel_body(&subs[0])),
        (&subs[1]["authorization"], channel_body(&subs[1])),
        (&subs[0]["authorization"], channel_body(&subs[1])),
    ]);
    assert_eq!(results[0]["ok"], true, "connect: {}", results[0]);
    assert_eq!(results[1]["ok"], true, "subscribe: {}", results[1]);
    assert_eq!(results[2]["ok"], true, "subscribe: {}", results[2]);
    assert_eq!(results[1]["service"], "appsync");
    assert_eq!(results[1]["region"], "us-east-1");
    assert_eq!(
        results[3]["ok"], false,
        "another channel's body: {}",
        results[3]
    );
}

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Runs tests/verify_sigv4.py (botocore, independent of aws-sigv4) over (auth object, signed
/// body) pairs, as `POST /event`.
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
    let dir = std::env::temp_dir().join(format!(
        "groupcast-sub-sigv4-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("requests.json");
    let spec = json!({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "requests": requests});
    std::fs::write(&input, spec.to_string()).unwrap();
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("GROUPCAST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../.venv/bin/python"));
    let out = std::process::Command::new(&python)
        .arg(manifest.join("tests/verify_sigv4.py"))
        .arg(&input)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the Python test peer {} (GROUPCAST_PYTHON): {e}",
                python.display()
            )
        });
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "verify_sigv4.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_subscriber_dropped_with_its_subscriptions_alive_keeps_serving_them() {
    let server = Server::ok().await;
    let mut sub = subscriber(&server).subscribe("/live/a/*").await.unwrap();
    until_active(&mut sub).await;
    let (m, t) = message("x", &["a"], 1);
    server.publish("/live/a/x", json!(t));
    assert_eq!(next_message(&mut sub).await.envelope.id, m.id());
    drop(sub);
    wait_until("the unsubscribe", || {
        server.all_of("unsubscribe").len() == 1
    })
    .await;
    wait_until("the connection to close with its last user", || {
        server.live_connections() == 0
    })
    .await;
}
