//! Custom-authorizer mode: the broker asks the registered authorizer at CONNECT (MQTT over TLS:
//! username/password; here plain TCP, the transports' test mode), enforces the policy documents
//! it returns, asks again every `refreshAfterInSeconds` (a removed group stops being received on
//! the open session) and disconnects after `disconnectAfterInSeconds`.
//!
//! The authorizer here is a stand-in with the iot-authorizer's answer shape (the documents are
//! templates/iot/group-policy.json.tera rendered with `iot.client_id`); running the real binary
//! needs the core's emulated Lambda runtime (see the report).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use groupcast_dev::auth::Authenticator;
use groupcast_dev::iot::{self, authorizer};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{IotAuth, IotSystem, System};
use groupcast_dev::{Ports, Stack};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use serde_json::{Value, json};
use uuid::Uuid;

const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";

/// The document the iot-authorizer renders for `group` and the verified user `user`.
fn document(user: &str, group: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": [format!("{ARN}client/{user}"), format!("{ARN}client/{user}-*")]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{ARN}topicfilter/groupcast/{group}/*")},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{ARN}topic/groupcast/{group}/*")}
        ]
    })
    .to_string()
}

struct Fixture {
    stack: Arc<Stack>,
    decisions: Arc<Mutex<Vec<Value>>>,
    port: u16,
    wss: u16,
    /// alice's current groups, as the user directory would say.
    groups: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    wss_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
        self.wss_task.abort();
    }
}

async fn start(refresh: u64, disconnect: u64, register: bool) -> Fixture {
    let dir = std::env::temp_dir().join(format!("gc-dev-iotca-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(System {
            project: "acme".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            iot: Some(IotSystem {
                grant_function: None,
                refresh_cap: None,
                topic_prefix: "groupcast".into(),
                policies: BTreeMap::new(),
                group_policies: BTreeMap::new(),
                auth: IotAuth::CustomAuthorizer {
                    binary: None,
                    policy: None,
                },
            }),
            ..System::default()
        }),
        auth: Authenticator::default(),
        log,
        tls: None,
        state_dir: dir,
        ports: Ports::default(),
    });
    let groups = Arc::new(Mutex::new(vec!["team-a".to_owned()]));
    if register {
        let g = groups.clone();
        authorizer::set_invoker(
            &stack,
            Arc::new(move |event: Value| {
                let g = g.clone();
                Box::pin(async move {
                    let password = event["protocolData"]["mqtt"]["password"]
                        .as_str()
                        .unwrap_or("");
                    let password = base64::engine::general_purpose::STANDARD
                        .decode(password)
                        .unwrap_or_default();
                    let header =
                        event["protocolData"]["http"]["headers"]["groupcast-token"].as_str();
                    if password != b"alice-token" && header != Some("alice-token") {
                        return Ok(json!({ "isAuthenticated": false }));
                    }
                    let docs: Vec<String> = g
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|gr| document("alice", gr))
                        .collect();
                    Ok(json!({
                        "isAuthenticated": true,
                        "principalId": "alice",
                        "policyDocuments": docs,
                        "refreshAfterInSeconds": refresh,
                        "disconnectAfterInSeconds": disconnect,
                    }))
                })
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(iot::serve_mqtt(listener, stack.clone()));
    let wss_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wss = wss_listener.local_addr().unwrap().port();
    let wss_task = tokio::spawn(iot::serve_wss(wss_listener, stack.clone()));
    Fixture {
        stack,
        decisions,
        port,
        wss,
        groups,
        task,
        wss_task,
    }
}

type Rx = tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>;

fn client(f: &Fixture, client_id: &str, password: &str) -> (AsyncClient, Rx) {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", f.port);
    options.set_credentials(
        "alice?x-amz-customauthorizer-name=acme-iot-authorizer",
        password,
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    (client, rx)
}

async fn next(rx: &mut Rx, wait: Duration) -> Option<Result<Packet, String>> {
    tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
}

async fn connack(rx: &mut Rx) -> ConnectReturnCode {
    match next(rx, Duration::from_secs(5)).await {
        Some(Ok(Packet::ConnAck(a))) => a.code,
        Some(Err(e)) if e.contains("NotAuthorized") => ConnectReturnCode::NotAuthorized,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn suback(c: &AsyncClient, rx: &mut Rx, filter: &str) -> SubscribeReasonCode {
    c.subscribe(filter, QoS::AtMostOnce).await.unwrap();
    loop {
        match next(rx, Duration::from_secs(5)).await {
            Some(Ok(Packet::SubAck(a))) => return a.return_codes[0],
            Some(Ok(_)) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

async fn publish_received(f: &Fixture, rx: &mut Rx, topic: &str) -> bool {
    let st = iot::state::of(&f.stack.state_dir);
    st.broker.publish(
        &f.stack,
        &st,
        topic,
        bytes::Bytes::from_static(b"{}"),
        QoS::AtMostOnce,
    );
    loop {
        match next(rx, Duration::from_millis(500)).await {
            Some(Ok(Packet::Publish(p))) => return p.topic == topic,
            Some(Ok(_)) => {}
            _ => return false,
        }
    }
}

#[tokio::test]
async fn the_authorizers_documents_grant_exactly_its_groups_and_a_refresh_drops_a_removed_group() {
    let f = start(1, 3600, true).await;
    let (c, mut rx) = client(&f, "alice", "alice-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::Success);
    assert_eq!(
        suback(&c, &mut rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    assert_eq!(
        suback(&c, &mut rx, "groupcast/team-b/#").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(suback(&c, &mut rx, "#").await, SubscribeReasonCode::Failure);
    assert!(publish_received(&f, &mut rx, "groupcast/team-a/news").await);

    // alice leaves team-a; within one refresh (1 s here) the open session stops receiving it.
    f.groups.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !publish_received(&f, &mut rx, "groupcast/team-a/news").await,
        "received after the refresh"
    );
    let decisions = f.decisions.lock().unwrap().clone();
    assert!(
        decisions
            .iter()
            .any(|d| d["action"] == "refresh" && d["outcome"] == "admitted")
    );
    assert!(
        decisions
            .iter()
            .any(|d| d["action"] == "receive" && d["outcome"] == "refused")
    );
}

#[tokio::test]
async fn the_connection_is_closed_after_disconnect_after_in_seconds() {
    let f = start(3600, 1, true).await;
    let (_c, mut rx) = client(&f, "alice", "alice-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::Success);
    let closed = loop {
        match next(&mut rx, Duration::from_secs(3)).await {
            Some(Ok(_)) => {}
            Some(Err(_)) => break true,
            None => break false,
        }
    };
    assert!(
        closed,
        "still connected 3 s after disconnectAfterInSeconds = 1"
    );
}

#[tokio::test]
async fn a_refused_token_a_foreign_client_id_or_no_authorizer_is_refused_at_connect() {
    let f = start(3600, 3600, true).await;
    let (_c, mut rx) = client(&f, "alice", "forged-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::NotAuthorized);
    let (_c, mut rx) = client(&f, "bob", "alice-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::NotAuthorized);
    let (_c, mut rx) = client(&f, "alice-tab", "alice-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::Success);

    let none = start(3600, 3600, false).await;
    let (_c, mut rx) = client(&none, "alice", "alice-token");
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::NotAuthorized);
}

/// A WebSocket CONNECT for `client_id` with `token` in the authorizer's header; the CONNACK.
async fn wss_connack(f: &Fixture, token: Option<&str>, client_id: &str) -> [u8; 4] {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as M;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://127.0.0.1:{}/mqtt", f.wss),
    )
    .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    if let Some(t) = token {
        req.headers_mut()
            .insert("groupcast-token", t.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut out = bytes::BytesMut::new();
    rumqttc::mqttbytes::v4::Packet::Connect(rumqttc::mqttbytes::v4::Connect::new(client_id))
        .write(&mut out, 1 << 20)
        .unwrap();
    ws.send(M::binary(out.to_vec())).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(M::Binary(b)))) => return b[..4].try_into().unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no CONNACK: {other:?}"),
        }
    }
}

#[tokio::test]
async fn over_wss_the_token_header_goes_to_the_authorizer_instead_of_sigv4() {
    let f = start(3600, 3600, true).await;
    assert_eq!(
        wss_connack(&f, Some("alice-token"), "alice").await,
        [0x20, 0x02, 0x00, 0x00]
    );
    assert_eq!(
        wss_connack(&f, Some("forged"), "alice").await,
        [0x20, 0x02, 0x00, 0x05]
    );
    assert_eq!(
        wss_connack(&f, None, "alice").await,
        [0x20, 0x02, 0x00, 0x05]
    );
}
