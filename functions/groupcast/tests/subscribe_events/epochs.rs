//! Time-sliced channels (issue 14) against the local server: with `epoch_seconds = 2` and a clock
//! placed just before an epoch boundary, the subscriber holds `epoch::window`, subscribes the next
//! epoch at the boundary, unsubscribes the old one after the grace (never before its successor is
//! confirmed), hands every message over once with the logical channel, and ends a group's stream when
//! one of its epochs is refused.

use std::sync::Arc;
use std::time::Duration;

use groupcast::Authorizer;
use groupcast::epoch::{self, Clock};
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{SubscribeError, Subscription, SubscriptionEvent};
use serde_json::{Value, json};

use crate::server::{Behaviour, Server};
use crate::{STEP, fast_reconnect, message, next_event, until_active, wait_until};

const P: u64 = 2;

/// A clock `at_ms` milliseconds into an epoch of `P` seconds (the system clock, shifted), and the
/// epoch it is in now.
fn clock_into_epoch(at_ms: u64) -> (Clock, u64) {
    let period = P * 1000;
    let now = Clock::system().unix_millis();
    let offset = (at_ms + period - now % period) % period;
    let clock = Clock::offset_millis(offset as i64);
    let n = epoch::epoch_at(clock.unix_seconds(), P);
    (clock, n)
}

fn subscriber(server: &Server, clock: Clock) -> EventsSubscriber {
    EventsSubscriber::builder()
        .realtime_url(&server.base)
        .http_host("abc.appsync-api.us-east-1.amazonaws.com")
        .namespace("live")
        .epoch_seconds(P)
        .clock(clock)
        .authorizer(Authorizer::api_key("da2-test"))
        .reconnect(fast_reconnect())
        .build()
        .unwrap()
}

/// The subscribe id of each channel, and the ids unsubscribed, in the order the client sent them.
fn wire_log(server: &Server) -> Vec<(String, String)> {
    server.conns()[0]
        .messages
        .iter()
        .filter_map(|m| match m["type"].as_str() {
            Some("subscribe") => Some((
                format!("+{}", m["channel"].as_str().unwrap_or_default()),
                m["id"].as_str().unwrap_or_default().to_owned(),
            )),
            Some("unsubscribe") => Some((
                "-".to_owned(),
                m["id"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => None,
        })
        .collect()
}

fn subscribed(server: &Server) -> Vec<String> {
    server.conns()[0].subscribed()
}

#[tokio::test]
async fn epochs_rotate_at_the_boundary_and_the_old_one_goes_after_its_successor_with_nothing_lost_or_twice()
 {
    let server = Server::ok().await;
    // 1.5 s into epoch n: past the grace (1 s), so the window is n, n+1.
    let (clock, n) = clock_into_epoch(1_500);
    let s = subscriber(&server, clock.clone());
    let mut sub = s.subscribe_groups(&["team-a"], "*").await.unwrap();
    until_active(&mut sub).await;
    let ch = |k: u64| format!("/live/team-a/t{k}/*");
    assert_eq!(subscribed(&server), [ch(n), ch(n + 1)]);

    // A publisher on the same clock publishes every 50 ms to its current epoch, across the
    // boundary and past the next grace: each publish must find the subscriber there.
    let mut sent = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_millis(2_000);
    let mut i = 0;
    while tokio::time::Instant::now() < end {
        let e = epoch::epoch_at(clock.unix_seconds(), P);
        let (m, text) = message("x", &["team-a"], i);
        let reached = server.publish(&format!("/live/team-a/t{e}/x"), Value::String(text));
        assert_eq!(reached, 1, "message {i} to epoch {e} found no subscription");
        sent.push(m.id());
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same message in two epochs (a publisher retry across a boundary) is handed over once.
    let (dup, text) = message("x", &["team-a"], 999);
    let e = epoch::epoch_at(clock.unix_seconds(), P);
    assert_eq!(
        server.publish(&format!("/live/team-a/t{e}/x"), Value::String(text.clone())),
        1
    );
    assert_eq!(
        server.publish(&format!("/live/team-a/t{}/x", e + 1), Value::String(text)),
        1
    );
    sent.push(dup.id());

    let mut got = Vec::new();
    while got.len() < sent.len() {
        match next_event(&mut sub).await {
            Some(SubscriptionEvent::Message(m)) => {
                assert_eq!(
                    m.part, "/live/team-a/*",
                    "the logical channel, without t{{N}}"
                );
                got.push(m.envelope.id);
            }
            Some(SubscriptionEvent::PartEnded { part, error }) => panic!("{part}: {error}"),
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
    assert_eq!(got, sent, "every message once, in order");
    let extra = crate::events_within(&mut sub, Duration::from_millis(200)).await;
    assert!(
        !extra
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Message(_))),
        "{extra:?}"
    );

    // On the wire: n+2 subscribed at the boundary, n unsubscribed after it, nothing twice.
    let log = wire_log(&server);
    let pos = |what: &str| log.iter().position(|(k, _)| k == what);
    let id_n = log[pos(&format!("+{}", ch(n))).unwrap()].1.clone();
    let add = pos(&format!("+{}", ch(n + 2))).expect("the next epoch was subscribed");
    let drop = log
        .iter()
        .position(|(k, id)| k == "-" && *id == id_n)
        .expect("the old epoch was unsubscribed");
    assert!(add < drop, "new before old: {log:?}");
    let adds: Vec<&String> = log
        .iter()
        .filter(|(k, _)| k != "-")
        .map(|(k, _)| k)
        .collect();
    let mut unique = adds.clone();
    unique.dedup();
    assert_eq!(adds, unique, "each epoch subscribed once");
    // n+1 stays held (until the grace after the next boundary).
    assert!(server.id_of(&ch(n + 1)).is_some());
    assert!(server.id_of(&ch(n)).is_none());
}

/// Refuses `channel` as the generated handler refuses a caller who is not in the group.
fn refusing(channel: String) -> Behaviour {
    Behaviour {
        policy: Arc::new(move |_, c, _| {
            (c == channel).then(
                || json!([{"errorType": "Unauthorized", "message": "not a member of team-a"}]),
            )
        }),
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn a_refused_next_epoch_ends_that_groups_stream_with_the_reason_and_unsubscribes_its_epochs()
{
    let (clock, n) = clock_into_epoch(1_600);
    // The user is removed from team-a: from epoch n+2 on, the handler refuses them.
    let server = Server::start(refusing(format!("/live/team-a/t{}/*", n + 2))).await;
    let s = subscriber(&server, clock);
    let mut sub = s
        .subscribe_groups(&["team-a", "team-b"], "*")
        .await
        .unwrap();
    until_active(&mut sub).await;

    let ended = loop {
        match tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
            Some(SubscriptionEvent::PartEnded { part, error }) => break (part, error),
            Some(SubscriptionEvent::Message(m)) => panic!("unexpected {m:?}"),
            Some(_) => {}
            None => panic!("the whole subscription ended"),
        }
    };
    assert_eq!(ended.0, "/live/team-a/*");
    match ended.1 {
        SubscribeError::Unauthorized { part, message } => {
            assert_eq!(part, format!("/live/team-a/t{}/*", n + 2));
            assert!(message.contains("not a member of team-a"), "{message}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    // Every epoch of team-a is unsubscribed: nothing published there reaches the user.
    wait_until("team-a's epochs unsubscribed", || {
        (n..=n + 2).all(|k| server.id_of(&format!("/live/team-a/t{k}/*")).is_none())
    })
    .await;
    let (_, text) = message("x", &["team-a"], 1);
    for k in n..=n + 2 {
        assert_eq!(
            server.publish(&format!("/live/team-a/t{k}/x"), Value::String(text.clone())),
            0
        );
    }
    // team-b goes on, and team-a is not asked again at the next change.
    let (m, text) = message("x", &["team-b"], 2);
    assert_eq!(
        server.publish(&format!("/live/team-b/t{}/x", n + 1), Value::String(text)),
        1
    );
    let got = crate::next_message(&mut sub).await;
    assert_eq!(
        (got.envelope.id, got.part.as_str()),
        (m.id(), "/live/team-b/*")
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let team_a_later: Vec<String> = subscribed(&server)
        .into_iter()
        .filter(|c| c.starts_with("/live/team-a/") && c != &format!("/live/team-a/t{}/*", n))
        .filter(|c| c != &format!("/live/team-a/t{}/*", n + 1))
        .collect();
    assert_eq!(team_a_later, [format!("/live/team-a/t{}/*", n + 2)]);
}

#[tokio::test]
async fn when_the_only_group_is_refused_at_the_next_epoch_the_subscription_ends() {
    let (clock, n) = clock_into_epoch(1_700);
    let server = Server::start(refusing(format!("/live/team-a/t{}/jobs/*", n + 2))).await;
    let s = subscriber(&server, clock);
    let mut sub: Subscription = s.subscribe_groups(&["team-a"], "jobs/*").await.unwrap();
    until_active(&mut sub).await;
    let mut ended = None;
    while let Some(e) = tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
        if let SubscriptionEvent::PartEnded { part, error } = e {
            ended = Some((part, error));
        }
    }
    let (part, error) = ended.expect("the refusal is reported before the end");
    assert_eq!(part, "/live/team-a/jobs/*");
    assert!(
        matches!(error, SubscribeError::Unauthorized { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn in_a_time_sliced_namespace_a_topic_with_room_for_no_epoch_is_refused_before_sending() {
    let server = Server::ok().await;
    let (clock, _) = clock_into_epoch(0);
    let s = subscriber(&server, clock);
    let e = s.subscribe_groups(&["team-a"], "a/b/*").await.unwrap_err();
    assert!(
        matches!(&e, SubscribeError::Invalid { field, rule } if field == "topic" && rule.contains("EPOCH_TOPIC_MAX_SEGMENTS")),
        "{e:?}"
    );
    assert!(server.conns().is_empty());
}

#[tokio::test]
async fn after_a_lost_connection_the_window_of_now_is_subscribed_again_once_each() {
    let server = Server::ok().await;
    let (clock, n) = clock_into_epoch(1_100);
    let s = subscriber(&server, clock);
    let mut sub = s.subscribe_groups(&["team-a"], "*").await.unwrap();
    until_active(&mut sub).await;
    server.drop_all();
    until_active(&mut sub).await;
    let conns = server.conns();
    assert_eq!(conns.len(), 2);
    let again = conns[1].subscribed();
    let ch = |k: u64| format!("/live/team-a/t{k}/*");
    // Reconnected within the same epoch (the backoff is at most 200 ms), or, on a slow machine,
    // after the boundary: either way the window of the reconnect, each epoch once.
    assert!(
        again == [ch(n), ch(n + 1)] || again == [ch(n), ch(n + 1), ch(n + 2)],
        "{again:?}"
    );
    let (m, text) = message("x", &["team-a"], 1);
    assert_eq!(
        server.publish(&format!("/live/team-a/t{}/x", n + 1), Value::String(text)),
        1
    );
    let got = crate::next_message(&mut sub).await;
    assert_eq!(
        (got.envelope.id, got.part.as_str()),
        (m.id(), "/live/team-a/*")
    );
}
