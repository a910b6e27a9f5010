//! The local stack's AppSync Events endpoint over the wire: groupcast's own subscriber and
//! publishers (HTTP and WebSocket) where they reach, raw frames for the protocol's edges. The
//! namespace runs `events/live.js` as `provisioner render` writes it for examples/groupcast.toml,
//! rendered at test time (tests/rendered). Callers are authenticated by `Authenticator::fixed`: a token names
//! an identity.

mod rendered;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{ReconnectPolicy, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, StaticToken, Transport};
use groupcast_appsync_js::{CognitoIdentity, IamIdentity, Identity};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::events::{Options, serve_with};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, EventsSystem, Namespace, System};
use groupcast_dev::{Ports, Stack};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
const PUBLISHER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local";
/// A namespace whose handler reshapes what it broadcasts, fails one event by AppSync's rule, and
/// answers `util.error` for one channel.
const XFORM: &str = r#"import { util } from '@aws-appsync/utils';
export function onSubscribe(ctx) {
  if (ctx.info.channel.path === '/xform/closed') { util.error('this room is closed'); }
}
export function onPublish(ctx) {
  if (ctx.info.channel.path === '/xform/closed') { util.error('this room is closed'); }
  return ctx.events
    .filter((e) => e.payload.drop !== true)
    .map((e) => (e.payload.fail === true ? { id: e.id, payload: e.payload, error: 'refused by the handler' } : { id: e.id, payload: { wrapped: e.payload } }));
}
"#;
const STEP: Duration = Duration::from_secs(5);

type Log = Arc<Mutex<Vec<Value>>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn user(name: &str, groups: &[&str]) -> Identity {
    Identity::Cognito(CognitoIdentity {
        sub: format!("sub-{name}"),
        issuer: ISSUER.into(),
        username: name.into(),
        groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
        source_ip: vec!["127.0.0.1".into()],
        ..Default::default()
    })
}

fn iam(arn: &str) -> Identity {
    Identity::Iam(IamIdentity {
        account_id: "123456789012".into(),
        user_arn: arn.into(),
        username: "AROAEXAMPLE:local".into(),
        source_ip: vec!["127.0.0.1".into()],
        ..Default::default()
    })
}

/// A running endpoint on 127.0.0.1.
struct Endpoint {
    port: u16,
    log: Log,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Endpoint {
    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
    fn decisions(&self, action: &str, outcome: &str) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d["action"] == action && d["outcome"] == outcome)
            .cloned()
            .collect()
    }
}

async fn start_with(options: Options) -> Endpoint {
    let system = System {
        project: "acme-live".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        events: Some(EventsSystem {
            name: "acme-live-events".into(),
            connection_auth_modes: vec![AuthMode::Cognito, AuthMode::Lambda, AuthMode::Iam],
            namespaces: vec![
                Namespace {
                    name: "live".into(),
                    handler_js: rendered::events_handler("live"),
                    publish_auth_modes: vec![AuthMode::Iam],
                    subscribe_auth_modes: vec![AuthMode::Cognito, AuthMode::Lambda],
                    epoch_seconds: None,
                },
                Namespace {
                    name: "xform".into(),
                    handler_js: XFORM.into(),
                    publish_auth_modes: vec![AuthMode::Iam],
                    subscribe_auth_modes: vec![AuthMode::Cognito],
                    epoch_seconds: None,
                },
            ],
        }),
        ..Default::default()
    };
    let fixed = |token: &str, mode, identity, principal: &str| {
        (token.to_owned(), mode, identity, principal.to_owned())
    };
    let auth = Authenticator::fixed(vec![
        fixed(
            "alice-token",
            AuthMode::Cognito,
            user("alice", &["team-a"]),
            "alice",
        ),
        fixed(
            "bob-token",
            AuthMode::Cognito,
            user("bob", &["team-b"]),
            "bob",
        ),
        fixed(
            "nobody-token",
            AuthMode::Cognito,
            user("nobody", &[]),
            "nobody",
        ),
        fixed(
            "publisher-sig",
            AuthMode::Iam,
            iam(PUBLISHER_ARN),
            PUBLISHER_ARN,
        ),
        fixed(
            "intruder-sig",
            AuthMode::Iam,
            iam("arn:aws:sts::123456789012:assumed-role/other/x"),
            "intruder",
        ),
    ]);
    let (log, lines) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system),
        auth,
        log,
        tls: None,
        state_dir: std::env::temp_dir(),
        ports: Ports::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(serve_with(listener, stack, options));
    Endpoint {
        port,
        log: lines,
        task,
    }
}

async fn start() -> Endpoint {
    start_with(Options::default()).await
}

fn header_protocol(auth: &Value) -> String {
    format!(
        "header-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(auth.to_string())
    )
}

/// A raw connection authorized with `token`, after `connection_init` / `connection_ack`.
async fn raw_connect(ep: &Endpoint, token: &str) -> Ws {
    let mut ws = raw_connect_no_init(ep, token).await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

async fn raw_connect_no_init(ep: &Endpoint, token: &str) -> Ws {
    let auth = json!({"Authorization": token, "host": format!("127.0.0.1:{}", ep.port)});
    let mut req = format!("{}/event/realtime", ep.ws())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("aws-appsync-event-ws,{}", header_protocol(&auth))
            .parse()
            .unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "aws-appsync-event-ws"
    );
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Frame::text(v.to_string())).await.unwrap();
}

/// The next text frame as JSON, skipping `ka`.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let v = recv_any(ws).await;
        if v["type"] != "ka" {
            return v;
        }
    }
}

async fn recv_any(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("a frame within the step")
        {
            Some(Ok(Frame::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Frames that arrive within `period`, `ka` left out.
async fn frames_within(ws: &mut Ws, period: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + period;
    while let Ok(Some(Ok(Frame::Text(t)))) = tokio::time::timeout_at(end, ws.next()).await {
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["type"] != "ka" {
            out.push(v);
        }
    }
    out
}

async fn subscribe(ws: &mut Ws, id: &str, channel: &str, token: &str) -> Value {
    send(
        ws,
        json!({"type": "subscribe", "id": id, "channel": channel,
               "authorization": {"Authorization": token}}),
    )
    .await;
    recv(ws).await
}

async fn http_publish(ep: &Endpoint, token: &str, body: &str) -> (u16, Option<String>, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/event", ep.http()))
        .header("authorization", token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap();
    (status, kind, body)
}

fn subscriber(ep: &Endpoint, token: &str) -> EventsSubscriber {
    EventsSubscriber::builder()
        .realtime_url(ep.ws())
        .http_host(ep.http())
        .namespace("live")
        .authorizer(Authorizer::token(StaticToken(token.into())))
        .reconnect(ReconnectPolicy {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .build()
        .unwrap()
}

fn publisher(ep: &Endpoint, token: &str, ws: bool) -> Publisher {
    let mut b = Publisher::builder()
        .events(ep.http(), "live")
        .region("us-east-1")
        .events_authorizer(Authorizer::token(StaticToken(token.into())))
        .max_attempts(1);
    if ws {
        b = b.events_realtime(ep.ws()).transports([Transport::EventsWs]);
    }
    b.build().unwrap()
}

fn message(group: &str, n: u32) -> Message {
    Message::builder("chat")
        .group(group)
        .data(json!({"n": n}))
        .build()
        .unwrap()
}

async fn next_message(
    sub: &mut groupcast::subscribe::Subscription,
) -> groupcast::subscribe::Received {
    loop {
        match tokio::time::timeout(STEP, sub.next_event())
            .await
            .expect("an event within the step")
        {
            Some(SubscriptionEvent::Message(m)) => return m,
            Some(SubscriptionEvent::PartEnded { part, error }) => panic!("{part} ended: {error}"),
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
}

async fn until_active(sub: &mut groupcast::subscribe::Subscription) {
    loop {
        match tokio::time::timeout(STEP, sub.next_event())
            .await
            .expect("an event within the step")
        {
            Some(SubscriptionEvent::Active) => return,
            Some(SubscriptionEvent::PartEnded { part, error }) => panic!("{part} ended: {error}"),
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
}

#[tokio::test]
async fn a_user_subscribed_to_their_own_group_receives_what_the_publisher_sends_there_over_http_and_websocket()
 {
    let ep = start().await;
    let alice = subscriber(&ep, "alice-token");
    let mut sub = alice.subscribe_groups(&["team-a"], "chat").await.unwrap();
    until_active(&mut sub).await;

    for (n, over_ws) in [(1, false), (2, true)] {
        let report = publisher(&ep, "publisher-sig", over_ws)
            .publish(&message("team-a", n))
            .await
            .unwrap();
        assert!(
            report.deliveries.iter().all(|d| d.outcome.is_delivered()),
            "{report:?}"
        );
        let got = next_message(&mut sub).await;
        assert_eq!(got.envelope.data, json!({"n": n}));
    }
    assert_eq!(ep.decisions("subscribe", "admitted").len(), 1);
    assert_eq!(ep.decisions("publish", "admitted").len(), 2);
    alice.close().await;
}

#[tokio::test]
async fn a_foreign_group_a_wildcard_group_segment_and_a_user_without_groups_are_refused_with_subscribe_error()
 {
    let ep = start().await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    for (id, channel, token) in [
        ("foreign", "/live/team-b/chat", "alice-token"),
        ("wild", "/live/*", "alice-token"),
        ("nogroups", "/live/team-a/chat", "nobody-token"),
    ] {
        let answer = subscribe(&mut ws, id, channel, token).await;
        assert_eq!(
            answer,
            json!({"type": "subscribe_error", "id": id,
                   "errors": [{"errorType": "Unauthorized", "message": "Unauthorized"}]}),
            "{channel}"
        );
    }
    let refused = ep.decisions("subscribe", "refused");
    assert_eq!(refused.len(), 3);
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no group whose segment is team-b"),
        "{refused:?}"
    );
    // The refused ids never joined: publishing there reaches no one.
    let (status, _, _) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/live/team-b/chat","events":["1"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        frames_within(&mut ws, Duration::from_millis(200))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_groupcast_subscriber_sees_a_foreign_group_part_end_and_its_own_group_stay() {
    let ep = start().await;
    let alice = subscriber(&ep, "alice-token");
    let mut sub = alice
        .subscribe_groups(&["team-a", "team-b"], "chat")
        .await
        .unwrap();
    let mut ended = Vec::new();
    loop {
        match tokio::time::timeout(STEP, sub.next_event()).await.unwrap() {
            Some(SubscriptionEvent::PartEnded { part, .. }) => ended.push(part),
            Some(SubscriptionEvent::Active) => break,
            Some(_) => {}
            None => panic!("ended"),
        }
    }
    assert_eq!(ended, ["/live/team-b/chat"]);
    publisher(&ep, "publisher-sig", false)
        .publish(&message("team-a", 7))
        .await
        .unwrap();
    assert_eq!(next_message(&mut sub).await.envelope.data, json!({"n": 7}));
}

#[tokio::test]
async fn a_publish_by_anyone_but_the_publisher_is_refused_over_http_and_websocket() {
    let ep = start().await;
    let body = r#"{"channel":"/live/team-a/chat","events":["{\"n\":1}"]}"#;
    // A user token: Cognito is not among the namespace's publish modes.
    let (status, kind, v) = http_publish(&ep, "alice-token", body).await;
    assert_eq!(
        (status, kind.as_deref()),
        (401, Some("UnauthorizedException"))
    );
    assert_eq!(v["errors"][0]["errorType"], "UnauthorizedException");
    // An IAM principal that is not the publisher: the handler's util.unauthorized().
    let (status, kind, v) = http_publish(&ep, "intruder-sig", body).await;
    assert_eq!(
        (status, kind.as_deref()),
        (401, Some("UnauthorizedException"))
    );
    assert_eq!(
        v,
        json!({"errors": [{"errorType": "UnauthorizedException", "message": "Unauthorized"}]})
    );
    let refused = ep.decisions("publish", "refused");
    assert!(
        refused[1]["reason"]
            .as_str()
            .unwrap()
            .contains("is not one"),
        "{refused:?}"
    );

    let mut ws = raw_connect(&ep, "alice-token").await;
    send(
        &mut ws,
        json!({"type": "publish", "id": "p1", "channel": "/live/team-a/chat",
               "events": ["{\"n\":1}"], "authorization": {"Authorization": "intruder-sig"}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "publish_error", "id": "p1",
               "errors": [{"errorType": "UnauthorizedException", "message": "Unauthorized"}]})
    );
    // The groupcast publisher reports the refusal as a failed, final delivery.
    let report = publisher(&ep, "intruder-sig", false)
        .publish(&message("team-a", 1))
        .await
        .unwrap();
    assert!(!report.deliveries[0].outcome.is_delivered(), "{report:?}");
}

#[tokio::test]
async fn a_publish_fans_out_to_exact_and_wildcard_subscriptions_on_every_connection_and_nowhere_else()
 {
    let ep = start().await;
    let mut a = raw_connect(&ep, "alice-token").await;
    let mut b = raw_connect(&ep, "alice-token").await;
    let mut other = raw_connect(&ep, "bob-token").await;
    assert_eq!(
        subscribe(&mut a, "exact", "/live/team-a/chat", "alice-token").await["type"],
        "subscribe_success"
    );
    assert_eq!(
        subscribe(&mut a, "wild", "live/team-a/*", "alice-token").await["type"],
        "subscribe_success"
    );
    assert_eq!(
        subscribe(&mut b, "deep", "/live/team-a/chat/*", "alice-token").await["type"],
        "subscribe_success"
    );
    assert_eq!(
        subscribe(&mut b, "w2", "/live/team-a/*", "alice-token").await["type"],
        "subscribe_success"
    );
    assert_eq!(
        subscribe(&mut other, "bob", "/live/team-b/*", "bob-token").await["type"],
        "subscribe_success"
    );

    let (status, _, v) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/live/team-a/chat","events":["{\"n\":1}","\"two\""]}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["failed"], json!([]));
    assert_eq!(v["successful"][1]["index"], 1);
    assert!(v["successful"][0]["identifier"].is_string());

    let mut got_a = frames_within(&mut a, Duration::from_millis(300)).await;
    got_a.sort_by_key(|f| f["id"].to_string());
    assert_eq!(
        got_a,
        vec![
            json!({"type": "data", "id": "exact", "event": "{\"n\":1}"}),
            json!({"type": "data", "id": "exact", "event": "\"two\""}),
            json!({"type": "data", "id": "wild", "event": "{\"n\":1}"}),
            json!({"type": "data", "id": "wild", "event": "\"two\""}),
        ]
    );
    // `/live/team-a/chat/*` lies below the channel: it does not receive it.
    let got_b = frames_within(&mut b, Duration::from_millis(100)).await;
    assert_eq!(got_b.len(), 2, "{got_b:?}");
    assert!(got_b.iter().all(|f| f["id"] == "w2"));
    assert!(
        frames_within(&mut other, Duration::from_millis(100))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_an_unknown_id_gets_unsubscribe_error() {
    let ep = start().await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut ws, "s1", "/live/team-a/chat", "alice-token").await["type"],
        "subscribe_success"
    );
    send(&mut ws, json!({"type": "unsubscribe", "id": "s1"})).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "unsubscribe_success", "id": "s1"})
    );
    send(&mut ws, json!({"type": "unsubscribe", "id": "s1"})).await;
    let e = recv(&mut ws).await;
    assert_eq!(
        (&e["type"], &e["id"]),
        (&json!("unsubscribe_error"), &json!("s1"))
    );
    assert_eq!(e["errors"][0]["errorType"], "UnknownOperationError");
    let (status, _, _) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/live/team-a/chat","events":["1"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        frames_within(&mut ws, Duration::from_millis(200))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn ka_follows_the_ack_at_once_and_then_periodically() {
    let ep = start_with(Options {
        ka_interval: Duration::from_millis(150),
        ..Options::default()
    })
    .await;
    let mut ws = raw_connect_no_init(&ep, "alice-token").await;
    send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(
        recv_any(&mut ws).await,
        json!({"type": "connection_ack", "connectionTimeoutMs": 300000})
    );
    assert_eq!(recv_any(&mut ws).await, json!({"type": "ka"}));
    let start = tokio::time::Instant::now();
    for _ in 0..2 {
        assert_eq!(recv_any(&mut ws).await, json!({"type": "ka"}));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_malformed_frame_closes_only_its_own_connection() {
    let ep = start().await;
    let mut good = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut good, "s", "/live/team-a/chat", "alice-token").await["type"],
        "subscribe_success"
    );
    for bad in [
        Frame::text("not json"),
        Frame::text("[1,2]"),
        Frame::text(r#"{"type":5}"#),
        Frame::binary(vec![1u8, 2]),
    ] {
        let mut ws = raw_connect(&ep, "alice-token").await;
        ws.send(bad.clone()).await.unwrap();
        let e = recv(&mut ws).await;
        assert_eq!(e["type"], "error", "{bad:?}");
        assert_eq!(e["errors"][0]["errorType"], "BadRequestException");
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Frame::Close(Some(_)))) | None | Some(Err(_)) => {}
            other => panic!("{bad:?}: expected the connection to close, got {other:?}"),
        }
    }
    assert_eq!(ep.decisions("message", "refused").len(), 4);
    // An unknown type is answered and the connection stays.
    send(&mut good, json!({"type": "bogus"})).await;
    assert_eq!(
        recv(&mut good).await["errors"][0]["errorType"],
        "UnknownOperationError"
    );
    let (status, _, _) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/live/team-a/chat","events":["1"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        recv(&mut good).await,
        json!({"type": "data", "id": "s", "event": "1"})
    );
}

#[tokio::test]
async fn subscribe_ids_and_channels_are_checked_as_appsync_documents() {
    let ep = start().await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    let long = "a".repeat(129);
    for (id, channel) in [
        ("bad id!", "/live/team-a/chat"),
        (long.as_str(), "/live/team-a/chat"),
        ("c1", "/live/team-a/a_b"),
        ("c2", "/live/team-a/b/c/d/e"),
        ("c3", "/nope/team-a"),
    ] {
        let e = subscribe(&mut ws, id, channel, "alice-token").await;
        assert_eq!(e["type"], "subscribe_error", "{id} {channel}");
        assert!(e["errors"][0]["errorType"].is_string(), "{e}");
    }
    assert_eq!(
        subscribe(&mut ws, "dup", "/live/team-a/chat", "alice-token").await["type"],
        "subscribe_success"
    );
    let e = subscribe(&mut ws, "dup", "/live/team-a/other", "alice-token").await;
    assert_eq!(e["type"], "subscribe_error");
}

#[tokio::test]
async fn a_connection_without_valid_credentials_gets_connection_error_and_is_closed() {
    let ep = start().await;
    let mut ws = raw_connect_no_init(&ep, "forged").await;
    let e = recv(&mut ws).await;
    assert_eq!(e["type"], "connection_error");
    assert_eq!(e["errors"][0]["errorType"], "UnauthorizedException");
    assert!(matches!(
        tokio::time::timeout(STEP, ws.next()).await.unwrap(),
        Some(Ok(Frame::Close(_))) | None | Some(Err(_))
    ));
    assert_eq!(ep.decisions("connect", "refused").len(), 1);

    // Without the protocol's subprotocol the upgrade itself is refused.
    let mut req = format!("{}/event/realtime", ep.ws())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[tokio::test]
async fn http_errors_carry_the_status_x_amzn_errortype_and_appsyncs_body() {
    let ep = start().await;
    let cases: &[(&str, u16, &str)] = &[
        ("not json", 400, "BadRequestException"),
        (r#"{"events":["1"]}"#, 400, "BadRequestException"),
        (
            r#"{"channel":"/live/team-a/chat","events":[]}"#,
            400,
            "BadRequestException",
        ),
        (
            r#"{"channel":"/live/team-a/chat","events":["1","2","3","4","5","6"]}"#,
            400,
            "BadRequestException",
        ),
        (
            r#"{"channel":"/live/team-a/chat","events":[{"n":1}]}"#,
            400,
            "BadRequestException",
        ),
        (
            r#"{"channel":"/live/team-a/chat","events":["{nope"]}"#,
            400,
            "BadRequestException",
        ),
        (
            r#"{"channel":"/live/team-a/*","events":["1"]}"#,
            400,
            "BadRequestException",
        ),
        (
            r#"{"channel":"/nope/team-a","events":["1"]}"#,
            404,
            "NotFoundException",
        ),
    ];
    for (body, status, kind) in cases {
        let (s, k, v) = http_publish(&ep, "publisher-sig", body).await;
        assert_eq!((s, k.as_deref()), (*status, Some(*kind)), "{body}: {v}");
        assert_eq!(v["errors"][0]["errorType"], *kind, "{body}");
        assert!(v["errors"][0]["message"].is_string(), "{body}");
    }
    // Every refusal is a logged decision, the body's own included.
    assert_eq!(ep.decisions("publish", "refused").len(), cases.len());
    let big = format!(
        r#"{{"channel":"/live/team-a/chat","events":["\"{}\""]}}"#,
        "x".repeat(240_001)
    );
    let (s, k, _) = http_publish(&ep, "publisher-sig", &big).await;
    assert_eq!((s, k.as_deref()), (400, Some("BadRequestException")));

    let resp = reqwest::get(format!("{}/other", ep.http())).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-amzn-errortype"], "NotFoundException");
    // A browser's preflight is answered, naming the headers it asked for.
    let resp = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/event", ep.http()))
        .header("origin", "http://localhost:5173")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-headers"],
        "authorization,content-type"
    );
}

#[tokio::test]
async fn a_publish_over_the_websocket_is_answered_with_publish_success_and_delivered() {
    let ep = start().await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut ws, "s", "/live/team-a/*", "alice-token").await["type"],
        "subscribe_success"
    );
    send(
        &mut ws,
        json!({"type": "publish", "id": "p1", "channel": "/live/team-a/chat",
               "events": ["{\"n\":1}"], "authorization": {"Authorization": "publisher-sig"}}),
    )
    .await;
    let mut frames = [recv(&mut ws).await, recv(&mut ws).await];
    frames.sort_by_key(|f| f["type"].to_string());
    assert_eq!(
        frames[0],
        json!({"type": "data", "id": "s", "event": "{\"n\":1}"})
    );
    assert_eq!(frames[1]["type"], "publish_success");
    assert_eq!(frames[1]["id"], "p1");
    assert_eq!(frames[1]["failed"], json!([]));
    assert_eq!(frames[1]["successful"][0]["index"], 0);
}

#[tokio::test]
async fn a_connection_is_closed_normally_when_its_lifetime_ends_and_its_subscriptions_with_it() {
    let ep = start_with(Options {
        max_connection_lifetime: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut ws, "s", "/live/team-a/chat", "alice-token").await["type"],
        "subscribe_success"
    );
    loop {
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Frame::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 1000);
                break;
            }
            Some(Ok(Frame::Text(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn what_on_publish_returns_is_what_is_broadcast_and_an_event_it_fails_is_reported_failed() {
    let ep = start().await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut ws, "x", "/xform/room", "alice-token").await["type"],
        "subscribe_success"
    );
    let (status, _, v) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/xform/room","events":["{\"n\":1}","{\"drop\":true}","{\"fail\":true}"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // The dropped event was accepted (nothing to broadcast); the failed one is reported.
    let successful: Vec<u64> = v["successful"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(successful, [0, 1]);
    assert_eq!(v["failed"][0]["index"], 2);
    assert_eq!(v["failed"][0]["message"], "refused by the handler");
    assert_eq!(
        frames_within(&mut ws, Duration::from_millis(200)).await,
        [json!({"type": "data", "id": "x", "event": "{\"wrapped\":{\"n\":1}}"})]
    );
}

#[tokio::test]
async fn a_handlers_util_error_answers_403_message_processing_error_and_subscription_processing_error()
 {
    let ep = start().await;
    let (status, kind, v) = http_publish(
        &ep,
        "publisher-sig",
        r#"{"channel":"/xform/closed","events":["1"]}"#,
    )
    .await;
    assert_eq!(
        (status, kind.as_deref()),
        (403, Some("MessageProcessingError"))
    );
    assert_eq!(v["errors"][0]["message"], "this room is closed");
    let mut ws = raw_connect(&ep, "alice-token").await;
    assert_eq!(
        subscribe(&mut ws, "c", "/xform/closed", "alice-token").await,
        json!({"type": "subscribe_error", "id": "c",
               "errors": [{"errorType": "SubscriptionProcessingError", "message": "this room is closed"}]})
    );
    let refused = ep.decisions("subscribe", "refused");
    assert_eq!(refused[0]["reason"], "this room is closed");
}

#[tokio::test]
async fn publishes_beyond_the_per_connection_quota_get_publish_error_until_the_second_has_passed() {
    assert_eq!(Options::default().ws_publish_per_second, 25);
    let ep = start_with(Options {
        ws_publish_per_second: 3,
        ..Options::default()
    })
    .await;
    let mut ws = raw_connect(&ep, "alice-token").await;
    let publish = |id: &str| {
        json!({"type": "publish", "id": id, "channel": "/live/team-a/chat",
               "events": ["{\"n\":1}"], "authorization": {"Authorization": "publisher-sig"}})
    };
    for id in ["p1", "p2", "p3", "p4"] {
        send(&mut ws, publish(id)).await;
    }
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..4 {
        let v = recv(&mut ws).await;
        answers.insert(v["id"].as_str().unwrap().to_owned(), v);
    }
    for id in ["p1", "p2", "p3"] {
        assert_eq!(answers[id]["type"], "publish_success", "{answers:?}");
    }
    let refused = &answers["p4"];
    assert_eq!(refused["type"], "publish_error", "{refused}");
    assert_eq!(refused["errors"][0]["errorType"], "LimitExceededException");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("3 publish requests per second"),
        "{refused}"
    );
    // Another connection has its own quota.
    let mut other = raw_connect(&ep, "alice-token").await;
    send(&mut other, publish("q1")).await;
    assert_eq!(recv(&mut other).await["type"], "publish_success");
    // A second later the connection may publish again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut ws, publish("p5")).await;
    assert_eq!(recv(&mut ws).await["type"], "publish_success");
}
