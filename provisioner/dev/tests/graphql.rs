//! The local GraphQL pubsub endpoint, end to end on 127.0.0.1: groupcast's own publisher and
//! GraphQL subscriber, and raw HTTP and realtime frames, against the rendered schema and VTL of
//! examples/groupcast.toml (tests/fixtures/graphql, as `provisioner render` writes them).
//! Authentication is `Authenticator::fixed`: each token below stands for one caller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::subscribe::{SubscribeError, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, StaticToken};
use groupcast_appsync_js::{CognitoIdentity, IamIdentity};
use groupcast_dev::auth::{Authenticator, Identity};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, GraphqlSystem, System};
use groupcast_dev::{Ports, Stack};
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graphql");
const PUBLISHER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local";
const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);
const SUBSCRIPTION: &str = groupcast::subscribe::graphql::SUBSCRIPTION_QUERY;

fn system() -> System {
    let mut templates = std::collections::BTreeMap::new();
    let mut schema = String::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "schema.graphql" {
            schema = text;
        } else {
            templates.insert(name, text);
        }
    }
    System {
        project: "acme-live".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        graphql: Some(GraphqlSystem {
            name: "acme-live".into(),
            schema,
            templates,
            auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            groups_claim: "cognito:groups".into(),
        }),
        ..System::default()
    }
}

fn user(sub: Option<&str>, groups: Option<&[&str]>) -> Identity {
    let mut claims = serde_json::Map::new();
    if let Some(s) = sub {
        claims.insert("sub".into(), json!(s));
    }
    if let Some(g) = groups {
        claims.insert("cognito:groups".into(), json!(g));
    }
    Identity::Cognito(CognitoIdentity {
        sub: sub.unwrap_or_default().into(),
        issuer: "https://127.0.0.1/pool".into(),
        username: sub.unwrap_or("nobody").into(),
        claims,
        source_ip: vec!["127.0.0.1".into()],
        default_auth_strategy: None,
        groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
    })
}

fn iam(arn: &str, pool: Option<&str>) -> Identity {
    Identity::Iam(IamIdentity {
        account_id: "123456789012".into(),
        cognito_identity_pool_id: pool.map(str::to_owned),
        user_arn: arn.into(),
        username: "AROAEXAMPLE:local".into(),
        ..IamIdentity::default()
    })
}

struct Local {
    url: String,
    addr: std::net::SocketAddr,
    decisions: Arc<Mutex<Vec<Json>>>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Local {
    let cognito = |t: &str, sub: Option<&str>, groups: Option<&[&str]>| {
        (
            t.to_owned(),
            AuthMode::Cognito,
            user(sub, groups),
            t.to_owned(),
        )
    };
    let auth = Authenticator::fixed(vec![
        cognito("alice", Some("alice-sub"), Some(&["team-a", "team-y"])),
        cognito("bob", Some("bob-sub"), Some(&["team-b"])),
        cognito("carol", Some("carol-sub"), Some(&["team-a", "team-b"])),
        cognito("dave", Some("dave-sub"), Some(&["team-a"])),
        cognito("nogroups", Some("nogroups-sub"), None),
        cognito("nosub", None, Some(&["team-a"])),
        (
            "publisher".into(),
            AuthMode::Iam,
            iam(PUBLISHER_ARN, None),
            PUBLISHER_ARN.into(),
        ),
        (
            "pool-user".into(),
            AuthMode::Iam,
            iam(
                "arn:aws:sts::123456789012:assumed-role/acme-live-identity-pool-auth/CognitoIdentityCredentials",
                Some("us-east-1:pool"),
            ),
            "pool-user".into(),
        ),
    ]);
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system()),
        auth,
        log,
        tls: None,
        state_dir: std::env::temp_dir(),
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(groupcast_dev::graphql::serve(listener, stack));
    Local {
        url: format!("http://{addr}/graphql"),
        addr,
        decisions,
        _server: server,
    }
}

fn publisher(local: &Local) -> Publisher {
    Publisher::builder()
        .graphql(&local.url)
        .graphql_authorizer(Authorizer::token(StaticToken("publisher".into())))
        .region("us-east-1")
        .build()
        .unwrap()
}

fn subscriber(local: &Local, token: &str) -> GraphqlSubscriber {
    GraphqlSubscriber::builder()
        .url(&local.url)
        .authorizer(Authorizer::token(StaticToken(token.into())))
        .build()
        .unwrap()
}

async fn active(sub: &mut groupcast::subscribe::Subscription) {
    loop {
        match tokio::time::timeout(WAIT, sub.next_event()).await {
            Ok(Some(SubscriptionEvent::Active)) => return,
            Ok(Some(SubscriptionEvent::State(_))) => {}
            other => panic!("expected the subscription to become active, got {other:?}"),
        }
    }
}

/// The topics received within `QUIET` after the last one, up to `n`.
async fn topics(sub: &mut groupcast::subscribe::Subscription, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(WAIT, sub.next_message()).await {
            Ok(Some(Ok(m))) => out.push(m.envelope.topic),
            other => panic!("expected a message after {out:?}, got {other:?}"),
        }
    }
    if let Ok(Some(extra)) = tokio::time::timeout(QUIET, sub.next_message()).await {
        panic!("received more than expected after {out:?}: {extra:?}");
    }
    out
}

async fn publish(p: &Publisher, topic: &str, groups: &[&str]) {
    let m = Message::builder(topic)
        .data(json!({"n": topic}))
        .groups(groups.iter().copied())
        .build()
        .unwrap();
    let report = p.publish(&m).await.unwrap();
    assert!(report.is_complete(), "{report:?}");
}

async fn post(local: &Local, token: Option<&str>, body: &Json) -> (u16, Json) {
    let mut r = reqwest::Client::new().post(&local.url).json(body);
    if let Some(t) = token {
        r = r.header("authorization", t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Json::Null))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw realtime connection: `header` query auth (or none), subprotocol graphql-ws.
async fn raw(local: &Local, path: &str, token: Option<&str>) -> Ws {
    let mut url = format!("ws://{}{path}", local.addr);
    if let Some(t) = token {
        let header = json!({"Authorization": t, "host": local.addr.to_string()}).to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(header);
        url = format!(
            "{url}?header={}&payload=e30%3D",
            b64.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
    }
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "graphql-ws");
    ws
}

async fn next_json(ws: &mut Ws) -> Json {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Frame::Text(t)))) => {
                let v: Json = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] != "ka" {
                    return v;
                }
            }
            Ok(Some(Ok(Frame::Ping(_) | Frame::Pong(_)))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Whether the server closes `ws` (a Close frame or the end of the stream) within `WAIT`.
async fn closes(ws: &mut Ws) -> bool {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(None | Some(Err(_)) | Some(Ok(Frame::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
            Err(_) => return false,
        }
    }
}

async fn init(ws: &mut Ws) {
    ws.send(Frame::text(r#"{"type":"connection_init"}"#))
        .await
        .unwrap();
    let ack = next_json(ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    assert_eq!(ack["payload"]["connectionTimeoutMs"], 300_000);
}

async fn start_raw(ws: &mut Ws, id: &str, token: &str, only: Option<&[&str]>) -> Json {
    let data = json!({"query": SUBSCRIPTION, "variables": {"prefix": null, "onlyGroups": only}})
        .to_string();
    let frame = json!({"id": id, "type": "start", "payload": {"data": data,
        "extensions": {"authorization": {"Authorization": token, "host": "127.0.0.1"}}}});
    ws.send(Frame::text(frame.to_string())).await.unwrap();
    next_json(ws).await
}

fn revoke_body(user: &str, groups: &[&str]) -> Json {
    json!({"query": groupcast::graphql::REVOKE_MUTATION, "operationName": "Revoke",
        "variables": {"userId": user, "groups": groups}})
}

#[tokio::test]
async fn a_member_receives_its_own_groups_messages_only() {
    let local = start().await;
    let p = publisher(&local);
    let (alice, bob) = (subscriber(&local, "alice"), subscriber(&local, "bob"));
    let mut a = alice.subscribe("", None).await.unwrap();
    let mut b = bob.subscribe("", None).await.unwrap();
    active(&mut a).await;
    active(&mut b).await;
    publish(&p, "t/for-a", &["team-a"]).await;
    publish(&p, "t/for-b", &["team-b"]).await;
    publish(&p, "t/for-nobody", &["team-z"]).await;
    assert_eq!(topics(&mut a, 1).await, ["t/for-a"]);
    assert_eq!(topics(&mut b, 1).await, ["t/for-b"]);
    let log = local.decisions.lock().unwrap().clone();
    assert!(
        log.iter().any(|d| d["action"] == "subscribe"
            && d["outcome"] == "admitted"
            && d["principal"] == "alice"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_publish_to_groups_a_and_b_reaches_a_members_and_b_members_once_each() {
    let local = start().await;
    let p = publisher(&local);
    let mut subs = Vec::new();
    for t in ["alice", "bob", "carol"] {
        let s = subscriber(&local, t);
        let mut sub = s.subscribe("", None).await.unwrap();
        active(&mut sub).await;
        subs.push((s, sub));
    }
    publish(&p, "t/both", &["team-a", "team-b"]).await;
    for (_, sub) in &mut subs {
        assert_eq!(topics(sub, 1).await, ["t/both"]);
    }
}

#[tokio::test]
async fn the_prefix_and_only_groups_narrow_a_subscription_and_a_foreign_group_is_refused() {
    let local = start().await;
    let p = publisher(&local);
    let carol = subscriber(&local, "carol");
    let mut only_b = carol
        .subscribe("news/", Some(&["team-b".to_string()]))
        .await
        .unwrap();
    active(&mut only_b).await;
    publish(&p, "news/a", &["team-a"]).await;
    publish(&p, "sport/b", &["team-b"]).await;
    publish(&p, "news/b", &["team-b"]).await;
    assert_eq!(topics(&mut only_b, 1).await, ["news/b"]);
    let bob = subscriber(&local, "bob");
    let mut foreign = bob
        .subscribe("", Some(&["team-a".to_string()]))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, foreign.next_message()).await {
        Ok(Some(Err(SubscribeError::Unauthorized { message, .. }))) => {
            assert!(
                message.contains("not a member of the group team-a"),
                "{message}"
            )
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn a_publish_by_anyone_but_an_iam_publisher_is_refused_and_reaches_no_one() {
    let local = start().await;
    let alice = subscriber(&local, "alice");
    let mut a = alice.subscribe("", None).await.unwrap();
    active(&mut a).await;
    let body = json!({"query": groupcast::graphql::PUBLISH_MUTATION, "variables": {
        "topic": "t/forged", "data": "{}", "groups": ["team-a"], "uuid": uuid::Uuid::new_v4().to_string()}});
    // A user pool caller: the field is @aws_iam only.
    let (status, r) = post(&local, Some("carol"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(r["data"]["publish"], Json::Null);
    assert_eq!(r["errors"][0]["errorType"], "Unauthorized", "{r}");
    assert_eq!(
        r["errors"][0]["message"],
        "Not Authorized to access publish on type Mutation"
    );
    assert_eq!(r["errors"][0]["path"], json!(["publish"]));
    assert_eq!(r["errors"][0]["locations"][0]["line"], 1);
    // An IAM caller that is not a publisher principal (an identity-pool session): the template.
    let (status, r) = post(&local, Some("pool-user"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(r["errors"][0]["errorType"], "Unauthorized", "{r}");
    // No credentials at all.
    let (status, r) = post(&local, None, &body).await;
    assert_eq!(status, 401);
    assert_eq!(r["errors"][0]["errorType"], "UnauthorizedException", "{r}");
    if let Ok(Some(m)) = tokio::time::timeout(QUIET, a.next_message()).await {
        panic!("a refused publish was delivered: {m:?}");
    }
    let log = local.decisions.lock().unwrap().clone();
    assert!(
        log.iter().any(|d| d["action"] == "mutation"
            && d["outcome"] == "refused"
            && d["principal"] == "carol"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_subscriber_without_groups_or_without_a_sub_is_refused() {
    let local = start().await;
    let mut ws = raw(&local, "/graphql", Some("alice")).await;
    init(&mut ws).await;
    let r = start_raw(&mut ws, "s1", "nogroups", None).await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["id"], "s1");
    assert_eq!(r["payload"]["errors"][0]["errorType"], "Unauthorized");
    assert_eq!(
        r["payload"]["errors"][0]["path"],
        json!(["subscribe"]),
        "{r}"
    );
    assert!(
        r["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("has no groups"),
        "{r}"
    );
    let r = start_raw(&mut ws, "s2", "nosub", None).await;
    assert_eq!(r["type"], "error", "{r}");
    assert!(
        r["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no usable user id"),
        "{r}"
    );
    // An IAM caller may not subscribe (@aws_cognito_user_pools only): refused before any template.
    let r = start_raw(&mut ws, "s3", "publisher", None).await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(
        r["payload"]["errors"][0]["errorType"], "UnauthorizedException",
        "{r}"
    );
    // The connection goes on: a member's start on it is acknowledged.
    let r = start_raw(&mut ws, "s4", "alice", None).await;
    assert_eq!(r, json!({"type": "start_ack", "id": "s4"}));
    // Through groupcast's subscriber, the refusal ends the part as Unauthorized.
    let nogroups = subscriber(&local, "nogroups");
    let mut s = nogroups.subscribe("", None).await.unwrap();
    match tokio::time::timeout(WAIT, s.next_message()).await {
        Ok(Some(Err(SubscribeError::Unauthorized { .. }))) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn revoke_for_user_a_of_group_x_closes_that_subscription_and_not_bs_nor_as_subscription_to_only_y()
 {
    let local = start().await;
    let p = publisher(&local);
    // Alice (team-a, team-y): one socket holding a team-a and a team-y subscription.
    let mut ws = raw(&local, "/graphql", Some("alice")).await;
    init(&mut ws).await;
    assert_eq!(
        start_raw(&mut ws, "a-x", "alice", Some(&["team-a"])).await["type"],
        "start_ack"
    );
    assert_eq!(
        start_raw(&mut ws, "a-y", "alice", Some(&["team-y"])).await["type"],
        "start_ack"
    );
    // Dave, a fellow member of team-a, through groupcast's subscriber.
    let dave = subscriber(&local, "dave");
    let mut d = dave.subscribe("", None).await.unwrap();
    active(&mut d).await;
    // Alice again, through groupcast's subscriber, on team-a.
    let alice = subscriber(&local, "alice");
    let mut a = alice
        .subscribe("", Some(&["team-a".to_string()]))
        .await
        .unwrap();
    active(&mut a).await;

    // An end user cannot revoke.
    let (_, r) = post(&local, Some("dave"), &revoke_body("alice-sub", &["team-a"])).await;
    assert_eq!(r["errors"][0]["errorType"], "Unauthorized", "{r}");

    let (status, r) = post(
        &local,
        Some("publisher"),
        &revoke_body("alice-sub", &["team-a"]),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["data"]["revoke"],
        json!({"userId": "alice-sub", "groups": ["team-a"]})
    );
    let frame = next_json(&mut ws).await;
    assert_eq!(
        frame,
        json!({"id": "a-x", "type": "complete", "payload": {"message": "Subscription complete."}})
    );
    match tokio::time::timeout(WAIT, a.next_message()).await {
        Ok(Some(Err(SubscribeError::Invalidated { message, .. }))) => {
            assert_eq!(message, "Subscription complete.")
        }
        other => panic!("expected the subscription to be invalidated, got {other:?}"),
    }
    // After: team-a reaches Dave, not Alice; team-y still reaches Alice's other subscription.
    publish(&p, "t/a-after", &["team-a"]).await;
    publish(&p, "t/y-after", &["team-y"]).await;
    assert_eq!(topics(&mut d, 1).await, ["t/a-after"]);
    let data = next_json(&mut ws).await;
    assert_eq!(data["id"], "a-y", "{data}");
    assert_eq!(data["payload"]["data"]["subscribe"]["topic"], "t/y-after");
    let log = local.decisions.lock().unwrap().clone();
    assert_eq!(
        log.iter()
            .filter(|d| d["action"] == "invalidate" && d["outcome"] == "admitted")
            .count(),
        2,
        "{log:?}"
    );
}

#[tokio::test]
async fn an_invalidated_subscription_that_was_the_sockets_last_closes_the_socket() {
    let local = start().await;
    let mut ws = raw(&local, "/graphql", Some("bob")).await;
    init(&mut ws).await;
    assert_eq!(
        start_raw(&mut ws, "b", "bob", None).await["type"],
        "start_ack"
    );
    let (_, r) = post(
        &local,
        Some("publisher"),
        &revoke_body("bob-sub", &["team-b"]),
    )
    .await;
    assert_eq!(r["data"]["revoke"]["userId"], "bob-sub", "{r}");
    assert_eq!(
        next_json(&mut ws).await["payload"]["message"],
        "Subscription complete."
    );
    assert!(closes(&mut ws).await);
}

#[tokio::test]
async fn malformed_frames_close_only_their_own_connection() {
    let local = start().await;
    let p = publisher(&local);
    let mut good = raw(&local, "/graphql", Some("alice")).await;
    init(&mut good).await;
    assert_eq!(
        start_raw(&mut good, "g", "alice", None).await["type"],
        "start_ack"
    );
    for bad in [
        Frame::text("not json"),
        Frame::text("[1,2]"),
        Frame::text(r#"{"type":"subscribe"}"#),
        Frame::text(r#"{"type":"start","payload":{}}"#),
        Frame::text(r#"{"type":"stop"}"#),
        Frame::binary(vec![0u8, 1, 2]),
    ] {
        let mut ws = raw(&local, "/graphql", Some("bob")).await;
        init(&mut ws).await;
        ws.send(bad.clone()).await.unwrap();
        let e = next_json(&mut ws).await;
        assert_eq!(e["type"], "error", "{bad:?}: {e}");
        assert!(e["payload"]["errors"][0]["message"].is_string(), "{e}");
        assert!(closes(&mut ws).await, "{bad:?} left the connection open");
    }
    // A start with a broken query is refused for its id only; the connection goes on.
    let mut ws = raw(&local, "/graphql", Some("bob")).await;
    init(&mut ws).await;
    let data = json!({"query": "subscription { subscribe(", "variables": {}}).to_string();
    ws.send(Frame::text(json!({"id": "q", "type": "start", "payload": {"data": data, "extensions": {"authorization": {"Authorization": "bob"}}}}).to_string())).await.unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["id"].as_str()),
        (Some("error"), Some("q")),
        "{e}"
    );
    assert_eq!(
        start_raw(&mut ws, "q2", "bob", None).await["type"],
        "start_ack"
    );
    // A duplicate id is refused.
    assert_eq!(start_raw(&mut ws, "q2", "bob", None).await["type"], "error");
    // stop answers complete.
    ws.send(Frame::text(r#"{"type":"stop","id":"q2"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "complete", "id": "q2"})
    );
    // The first connection never noticed.
    publish(&p, "t/still", &["team-a"]).await;
    let data = next_json(&mut good).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["subscribe"]["topic"], "t/still");
}

#[tokio::test]
async fn a_connection_without_valid_auth_gets_connection_error_and_is_closed() {
    let local = start().await;
    for token in [None, Some("unknown-token")] {
        let mut ws = raw(&local, "/graphql", token).await;
        ws.send(Frame::text(r#"{"type":"connection_init"}"#))
            .await
            .unwrap();
        let e = next_json(&mut ws).await;
        assert_eq!(e["type"], "connection_error", "{e}");
        assert_eq!(
            e["payload"]["errors"][0]["errorType"],
            "UnauthorizedException"
        );
        assert_eq!(e["payload"]["errors"][0]["errorCode"], 401);
        assert!(closes(&mut ws).await);
    }
    // Without the graphql-ws subprotocol the upgrade is refused.
    let req = format!("ws://{}/graphql/realtime", local.addr)
        .into_client_request()
        .unwrap();
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test]
async fn the_amplify_realtime_path_takes_auth_from_a_header_subprotocol() {
    // aws-amplify 6: wss://{endpoint}/realtime, subprotocols ["graphql-ws", "header-<base64url>"].
    let local = start().await;
    let header = json!({"Authorization": "alice", "host": local.addr.to_string()}).to_string();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
    let mut req = format!("ws://{}/graphql/realtime", local.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("graphql-ws, header-{b64}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    init(&mut ws).await;
    let query = "subscription OnMsg { subscribe { __typename topic groups data } }";
    let data = json!({"query": query, "variables": {}}).to_string();
    ws.send(Frame::text(json!({"id": "amp", "type": "start", "payload": {"data": data, "extensions": {"authorization": {"Authorization": "alice", "host": "h"}}}}).to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "start_ack");
    publish(&publisher(&local), "t/amp", &["team-y"]).await;
    let m = next_json(&mut ws).await;
    let s = &m["payload"]["data"]["subscribe"];
    assert_eq!(s["__typename"], "Message");
    assert_eq!(s["topic"], "t/amp");
    assert_eq!(
        s["data"],
        json!({"n": "t/amp"}).to_string(),
        "AWSJSON travels as JSON text"
    );
    assert!(s.get("uuid").is_none(), "only the selected fields: {s}");
}

#[tokio::test]
async fn bad_http_requests_get_appsyncs_error_shape() {
    let local = start().await;
    let client = reqwest::Client::new();
    let r = client
        .post(&local.url)
        .header("authorization", "publisher")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "MalformedHttpRequestException"
    );
    let v: Json = r.json().await.unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JSON"),
        "{v}"
    );
    let (status, v) = post(
        &local,
        Some("publisher"),
        &json!({"query": "mutation {\n publish(topic: }"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["errors"][0]["errorType"], "InvalidSyntax", "{v}");
    assert_eq!(v["errors"][0]["locations"][0]["line"], 2, "{v}");
    let (status, v) = post(
        &local,
        Some("publisher"),
        &json!({"query": "mutation { nothere { a } }"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["errors"][0]["errorType"], "ValidationError", "{v}");
    let (status, v) = post(
        &local,
        Some("publisher"),
        &json!({"query": groupcast::graphql::PUBLISH_MUTATION,
        "variables": {"topic": "t", "data": "{", "groups": ["team-a"]}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("AWSJSON"),
        "{v}"
    );
    let (_, v) = post(
        &local,
        Some("publisher"),
        &json!({"query": groupcast::graphql::PUBLISH_MUTATION,
        "variables": {"topic": "t", "data": "{}", "groups": []}}),
    )
    .await;
    assert_eq!(v["errors"][0]["errorType"], "ValidationError", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("groups:"),
        "{v}"
    );
    let r = client
        .get(format!("http://{}/nowhere", local.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_stopped_subscription_receives_nothing_more_and_a_connection_holds_at_most_two_hundred() {
    let local = start().await;
    let p = publisher(&local);
    let mut ws = raw(&local, "/graphql", Some("alice")).await;
    init(&mut ws).await;
    for i in 0..200 {
        let r = start_raw(&mut ws, &format!("s{i}"), "alice", None).await;
        assert_eq!(r["type"], "start_ack", "{r}");
    }
    let r = start_raw(&mut ws, "one-too-many", "alice", None).await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["payload"]["errors"][0]["errorType"], "LimitExceededError");
    for i in 1..200 {
        ws.send(Frame::text(
            json!({"type": "stop", "id": format!("s{i}")}).to_string(),
        ))
        .await
        .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "complete");
    }
    publish(&p, "t/after-stop", &["team-a"]).await;
    let data = next_json(&mut ws).await;
    assert_eq!(data["id"], "s0", "only the subscription left: {data}");
    if let Ok(Some(Ok(Frame::Text(t)))) = tokio::time::timeout(QUIET, ws.next()).await {
        panic!("a stopped subscription received {t}");
    }
}
