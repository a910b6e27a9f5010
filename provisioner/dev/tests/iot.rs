//! The local stack's IoT Core, end to end on 127.0.0.1: groupcast's own `IotSubscriber` (rumqttc
//! over a presigned WSS URL) and a raw rumqttc client against `iot::serve_wss`, the data-plane
//! publish, the control plane's attach/detach, malformed input.
//!
//! Until the core's SigV4 verification lands, the presigned URL is checked by a test verifier
//! (`serve_wss_with`) that admits the test's access keys for the `iotdevicegateway` scope only,
//! and the data-plane publish by `Authenticator::fixed`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::Envelope;
use groupcast::subscribe::iot::{IotSubscriber, presigned_url};
use groupcast::subscribe::{SubscribeError, SubscriptionEvent};
use groupcast_dev::auth::{
    AuthFailure, AuthFailureKind, Authenticator, IamCaller, Identity, PresignedRequest,
};
use groupcast_dev::aws::AwsRequest;
use groupcast_dev::iot::{self, control};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, IotAuth, IotSystem, System};
use groupcast_dev::{Ports, Stack};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, Transport,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const PREFIX: &str = "groupcast";
const ALICE: &str = "us-east-1:aaaaaaaa-0000-4000-8000-000000000001";
const BOB: &str = "us-east-1:bbbbbbbb-0000-4000-8000-000000000002";
const PUBLISHER: &str = "arn:aws:sts::123456789012:assumed-role/acme-publisher/local";

/// `iot/{name}.json` exactly as templates/iot/group-policy.json.tera renders it for `group`
/// (partition aws, no custom-authorizer client id).
fn rendered_group_policy(group: &str) -> String {
    let arn = format!("arn:aws:iot:{REGION}:{ACCOUNT}:");
    serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": [
                format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}"),
                format!("{arn}client/${{cognito-identity.amazonaws.com:sub}}-*")]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{arn}topicfilter/{PREFIX}/{group}/*")},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{arn}topic/{PREFIX}/{group}/*")}
        ]
    }))
    .unwrap()
}

fn system() -> System {
    let groups = ["team-a", "team-b"];
    System {
        project: "acme".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        publisher_principals: vec!["arn:aws:sts::123456789012:assumed-role/acme-publisher/".into()],
        iot: Some(IotSystem {
            grant_function: None,
            refresh_cap: None,
            topic_prefix: PREFIX.into(),
            policies: groups
                .iter()
                .map(|g| (format!("acme-{g}"), rendered_group_policy(g)))
                .collect(),
            group_policies: groups
                .iter()
                .map(|g| (g.to_string(), format!("acme-{g}")))
                .collect(),
            auth: IotAuth::Attachment,
        }),
        ..System::default()
    }
}

fn iam(arn: &str) -> Identity {
    Identity::Iam(groupcast_appsync_js::IamIdentity {
        account_id: ACCOUNT.into(),
        user_arn: arn.into(),
        username: arn.into(),
        ..Default::default()
    })
}

/// Access key → Cognito identity id (None: an IAM role, not an identity-pool credential).
fn key_owner(key: &str) -> Option<Option<&'static str>> {
    match key {
        "ALICEKEY" => Some(Some(ALICE)),
        "BOBKEY" => Some(Some(BOB)),
        "ROLEKEY" => Some(None),
        _ => None,
    }
}

/// The test's presigned-URL check: a known access key, the `iotdevicegateway` scope, a signature.
fn test_verifier() -> iot::PresignVerifier {
    Arc::new(|_stack: &Stack, req: &PresignedRequest<'_>| {
        let forbidden = |m: &str| AuthFailure {
            kind: AuthFailureKind::Forbidden,
            message: m.into(),
        };
        let params: BTreeMap<String, String> = req
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect();
        if !params.contains_key("X-Amz-Signature") {
            return Err(forbidden("no X-Amz-Signature"));
        }
        let cred = params
            .get("X-Amz-Credential")
            .ok_or_else(|| forbidden("no X-Amz-Credential"))?;
        let parts: Vec<&str> = cred.split('/').collect();
        if parts.len() != 5 || parts[3] != req.service || req.service != "iotdevicegateway" {
            return Err(forbidden("credential scope is not iotdevicegateway"));
        }
        let owner = key_owner(parts[0]).ok_or_else(|| forbidden("unknown access key"))?;
        let arn = match owner {
            Some(id) => format!("arn:aws:sts::{ACCOUNT}:assumed-role/acme-authenticated/{id}"),
            None => PUBLISHER.to_owned(),
        };
        Ok(IamCaller {
            identity: iam(&arn),
            cognito_identity_id: owner.map(str::to_owned),
            arn,
        })
    })
}

struct Fixture {
    stack: Arc<Stack>,
    decisions: Arc<Mutex<Vec<Value>>>,
    wss: u16,
    mqtt: u16,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn state_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gc-dev-iot-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn start() -> Fixture {
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system()),
        auth: Authenticator::fixed(vec![
            (
                "publisher-signature".into(),
                AuthMode::Iam,
                iam(PUBLISHER),
                PUBLISHER.into(),
            ),
            (
                "stranger-signature".into(),
                AuthMode::Iam,
                iam("arn:aws:sts::123456789012:assumed-role/other/x"),
                "arn:aws:sts::123456789012:assumed-role/other/x".into(),
            ),
        ]),
        log,
        tls: None,
        state_dir: state_dir(),
        ports: Ports::default(),
    });
    let wss = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mqtt = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (wss_port, mqtt_port) = (
        wss.local_addr().unwrap().port(),
        mqtt.local_addr().unwrap().port(),
    );
    let tasks = vec![
        tokio::spawn(iot::serve_wss_with(wss, stack.clone(), test_verifier())),
        tokio::spawn(iot::serve_mqtt(mqtt, stack.clone())),
    ];
    Fixture {
        stack,
        decisions,
        wss: wss_port,
        mqtt: mqtt_port,
        tasks,
    }
}

impl Fixture {
    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/mqtt", self.wss)
    }

    /// AttachPolicy / DetachPolicy through the control plane, as aws-sdk-iot sends them.
    fn set_policy(&self, policy: &str, target: &str, attach: bool) {
        let resp = control::answer(
            &self.stack,
            &AwsRequest {
                method: if attach { "PUT" } else { "POST" }.into(),
                path: format!("/target-policies/{policy}"),
                query: String::new(),
                headers: BTreeMap::new(),
                body: json!({ "target": target }).to_string().into_bytes(),
            },
            "test",
        );
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    }

    /// `POST /topics/{topic}?qos=1` with the given (fixed) authorization; the HTTP status.
    async fn http_publish(&self, auth: &str, topic: &str, body: &str) -> u16 {
        let path = format!(
            "/topics/{}?qos=1",
            groupcast::iot::publish_url("", topic)
                .trim_start_matches("/topics/")
                .trim_end_matches("?qos=1")
        );
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.wss))
            .await
            .unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {auth}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    async fn publish_envelope(&self, group: &str, topic: &str) -> Envelope {
        let env = Envelope {
            id: Uuid::new_v4(),
            topic: topic.into(),
            data: json!({"n": 1}),
            groups: vec![group.into()],
        };
        let t = format!(
            "{PREFIX}/{}/{topic}",
            groupcast::group_segment(group).unwrap()
        );
        let status = self
            .http_publish(
                "publisher-signature",
                &t,
                &serde_json::to_string(&env).unwrap(),
            )
            .await;
        assert_eq!(status, 200);
        env
    }

    fn decisions(&self, action: &str, outcome: &str) -> Vec<Value> {
        self.decisions
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d["action"] == action && d["outcome"] == outcome)
            .cloned()
            .collect()
    }
}

fn creds(key: &str) -> Credentials {
    Credentials::new(key, "secret", None, None, "test")
}

fn subscriber(f: &Fixture, key: &str, client_id: &str) -> IotSubscriber {
    IotSubscriber::builder()
        .endpoint(f.url())
        .region(REGION)
        .credentials(SharedCredentialsProvider::new(creds(key)))
        .client_id(client_id)
        .topic_prefix(PREFIX)
        .build()
        .unwrap()
}

/// A raw rumqttc client on the presigned URL; its event loop is driven into a channel.
fn raw_client(
    f: &Fixture,
    key: &str,
    client_id: &str,
) -> (
    AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>,
) {
    let url = presigned_url(&f.url(), &creds(key), REGION, SystemTime::now()).unwrap();
    let mut options = MqttOptions::new(client_id, url, f.wss);
    options.set_transport(Transport::Ws);
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

async fn next_packet(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>,
) -> Result<Packet, String> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .map_err(|_| "timed out".to_owned())?
        .unwrap_or_else(|| Err("event loop ended".into()))
}

/// The next PUBLISH within `wait`, skipping acks and pings.
async fn next_publish(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>,
    wait: Duration,
) -> Option<rumqttc::Publish> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Ok(Packet::Publish(p)))) => return Some(p),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

async fn suback(
    client: &AsyncClient,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>,
    filter: &str,
) -> SubscribeReasonCode {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    loop {
        match next_packet(rx).await {
            Ok(Packet::SubAck(a)) => return a.return_codes[0],
            Ok(_) => {}
            Err(e) => panic!("no SUBACK for {filter}: {e}"),
        }
    }
}

async fn connected(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>,
) -> ConnectReturnCode {
    match next_packet(rx).await {
        Ok(Packet::ConnAck(a)) => a.code,
        // rumqttc reports a refusing CONNACK as an error naming its code.
        Err(e) if e.contains("NotAuthorized") => ConnectReturnCode::NotAuthorized,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn wait_active(sub: &mut groupcast::subscribe::Subscription) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), sub.next_event()).await {
            Ok(Some(SubscriptionEvent::Active)) => return,
            Ok(Some(SubscriptionEvent::PartEnded { error, .. })) => panic!("part ended: {error}"),
            Ok(Some(_)) => {}
            other => panic!("no Active: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_member_receives_its_own_groups_messages_through_groupcasts_iot_subscriber() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let alice = subscriber(&f, "ALICEKEY", ALICE);
    let mut sub = alice.subscribe_groups(&["team-a"], "news").await.unwrap();
    wait_active(&mut sub).await;
    let sent = f.publish_envelope("team-a", "news").await;
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next_message())
        .await
        .expect("a message within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(got.envelope, sent);
    assert!(!f.decisions("receive", "admitted").is_empty());
    alice.close().await;
}

#[tokio::test]
async fn subscribing_to_a_foreign_groups_topic_is_refused_by_groupcasts_subscriber() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let alice = subscriber(&f, "ALICEKEY", &format!("{ALICE}-tab"));
    let mut sub = alice.subscribe_groups(&["team-b"], "news").await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), sub.next_message()).await {
        Ok(Some(Err(SubscribeError::Unauthorized { part, .. }))) => {
            assert!(part.contains("team-b"), "{part}")
        }
        other => panic!("expected the team-b part refused, got {other:?}"),
    }
    let refused = f.decisions("subscribe", "refused");
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|d| d["target"] == "groupcast/team-b/news"),
        "{refused:?}"
    );
    assert!(f.decisions("subscribe", "admitted").is_empty());
    alice.close().await;
}

#[tokio::test]
async fn a_raw_client_subscribing_to_hash_or_another_group_is_refused_and_receives_nothing_of_it() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let (client, mut rx) = raw_client(&f, "ALICEKEY", ALICE);
    assert_eq!(connected(&mut rx).await, ConnectReturnCode::Success);
    assert_eq!(
        suback(&client, &mut rx, "#").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        suback(&client, &mut rx, "groupcast/+/news").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        suback(&client, &mut rx, "groupcast/team-b/#").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(
        suback(&client, &mut rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    f.publish_envelope("team-b", "news").await;
    let mine = f.publish_envelope("team-a", "news").await;
    let p = next_publish(&mut rx, Duration::from_secs(5))
        .await
        .expect("team-a's message");
    assert_eq!(p.topic, "groupcast/team-a/news");
    assert_eq!(
        serde_json::from_slice::<Envelope>(&p.payload).unwrap(),
        mine
    );
    assert!(
        next_publish(&mut rx, Duration::from_millis(300))
            .await
            .is_none(),
        "team-b's message leaked"
    );
}

#[tokio::test]
async fn a_detach_stops_delivery_on_an_open_session() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let (client, mut rx) = raw_client(&f, "ALICEKEY", ALICE);
    assert_eq!(connected(&mut rx).await, ConnectReturnCode::Success);
    assert_eq!(
        suback(&client, &mut rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    f.publish_envelope("team-a", "before").await;
    assert!(
        next_publish(&mut rx, Duration::from_secs(5))
            .await
            .is_some()
    );
    f.set_policy("acme-team-a", ALICE, false);
    f.publish_envelope("team-a", "after").await;
    assert!(
        next_publish(&mut rx, Duration::from_millis(500))
            .await
            .is_none(),
        "delivered after the detach"
    );
    let refused = f.decisions("receive", "refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["target"], "groupcast/team-a/after");
}

#[tokio::test]
async fn a_client_id_that_is_not_the_identitys_is_refused_at_connect() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    for client_id in [BOB, "alice", &format!("x{ALICE}")] {
        let (_client, mut rx) = raw_client(&f, "ALICEKEY", client_id);
        assert_eq!(
            connected(&mut rx).await,
            ConnectReturnCode::NotAuthorized,
            "{client_id}"
        );
    }
    let (_client, mut rx) = raw_client(&f, "ALICEKEY", &format!("{ALICE}-phone"));
    assert_eq!(connected(&mut rx).await, ConnectReturnCode::Success);
    assert_eq!(f.decisions("connect", "refused").len(), 3);
}

#[tokio::test]
async fn an_identity_with_no_policy_attached_cannot_connect() {
    let f = start().await;
    let (_client, mut rx) = raw_client(&f, "BOBKEY", BOB);
    assert_eq!(connected(&mut rx).await, ConnectReturnCode::NotAuthorized);
}

#[tokio::test]
async fn a_second_connection_with_the_same_client_id_closes_the_first() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let (_c1, mut rx1) = raw_client(&f, "ALICEKEY", ALICE);
    assert_eq!(connected(&mut rx1).await, ConnectReturnCode::Success);
    let (_c2, mut rx2) = raw_client(&f, "ALICEKEY", ALICE);
    assert_eq!(connected(&mut rx2).await, ConnectReturnCode::Success);
    assert!(
        next_packet(&mut rx1).await.is_err(),
        "the first connection stays open"
    );
}

#[tokio::test]
async fn presigned_urls_for_another_service_unknown_keys_or_non_identity_roles_are_refused() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    for (key, service) in [
        ("ALICEKEY", "iotdata"),
        ("NOBODY", "iotdevicegateway"),
        ("ROLEKEY", "iotdevicegateway"),
    ] {
        let url = groupcast::sign::SigV4 {
            credentials: &creds(key),
            region: REGION,
            service,
        }
        .presign_excluding_token("GET", &f.url(), Duration::from_secs(300), SystemTime::now())
        .unwrap();
        let req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .unwrap();
        let mut req = req;
        req.headers_mut()
            .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
        let e = tokio_tungstenite::connect_async(req)
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("403"), "{key} {service}: {e}");
    }
    assert_eq!(f.decisions("wss-connect", "refused").len(), 3);
}

#[tokio::test]
async fn the_data_plane_publish_is_refused_to_non_publishers_outside_the_prefix_and_unsigned() {
    let f = start().await;
    assert_eq!(
        f.http_publish("publisher-signature", "groupcast/team-a/x", "{}")
            .await,
        200
    );
    assert_eq!(
        f.http_publish("stranger-signature", "groupcast/team-a/x", "{}")
            .await,
        403
    );
    assert_eq!(
        f.http_publish("publisher-signature", "elsewhere/team-a/x", "{}")
            .await,
        403
    );
    assert_eq!(
        f.http_publish("garbage", "groupcast/team-a/x", "{}").await,
        403
    );
    assert_eq!(f.decisions("http-publish", "refused").len(), 3);
}

/// A raw WebSocket on the presigned URL, for sending bytes rumqttc never would.
async fn raw_ws(
    f: &Fixture,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = presigned_url(&f.url(), &creds("ALICEKEY"), REGION, SystemTime::now()).unwrap();
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Whether the server closes `ws` within 3 s.
async fn closes(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> bool {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_))) => return true,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// A CONNECT (MQTT 3.1.1, clean session) for `client_id` with `keep_alive` seconds.
fn connect_packet(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    let mut c = rumqttc::mqttbytes::v4::Connect::new(client_id);
    c.keep_alive = keep_alive;
    rumqttc::mqttbytes::v4::Packet::Connect(c)
        .write(&mut out, 1 << 20)
        .unwrap();
    out.to_vec()
}

#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message as M;
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let (good, mut good_rx) = raw_client(&f, "ALICEKEY", &format!("{ALICE}-good"));
    assert_eq!(connected(&mut good_rx).await, ConnectReturnCode::Success);
    assert_eq!(
        suback(&good, &mut good_rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let bad_inputs: Vec<Vec<u8>> = vec![
        vec![0xff; 8],                            // reserved packet type 15 with garbage
        vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x7f], // a remaining length of more than 4 bytes
        vec![0x82, 0x02, 0x00, 0x01],             // SUBSCRIBE before CONNECT
        vec![0x10, 0x03, 0x00, 0x04, b'M'],       // a truncated CONNECT
    ];
    for bad in bad_inputs {
        let mut ws = raw_ws(&f).await;
        ws.send(M::binary(bad.clone())).await.unwrap();
        assert!(closes(&mut ws).await, "{bad:?} left the connection open");
    }
    // After a good CONNECT: garbage, a second CONNECT, QoS 2, a wildcard PUBLISH topic.
    let after_connect: Vec<Vec<u8>> = vec![
        vec![0x00, 0x00],
        connect_packet(&format!("{ALICE}-x"), 30),
        {
            let mut out = bytes::BytesMut::new();
            let mut p = rumqttc::mqttbytes::v4::Publish::new(
                "groupcast/team-a/x",
                rumqttc::mqttbytes::QoS::ExactlyOnce,
                "x",
            );
            p.pkid = 1;
            rumqttc::mqttbytes::v4::Packet::Publish(p)
                .write(&mut out, 1 << 20)
                .unwrap();
            out.to_vec()
        },
    ];
    for bad in after_connect {
        let mut ws = raw_ws(&f).await;
        ws.send(M::binary(connect_packet(&format!("{ALICE}-bad"), 30)))
            .await
            .unwrap();
        ws.send(M::binary(bad.clone())).await.unwrap();
        assert!(
            closes(&mut ws).await,
            "{bad:?} after CONNECT left the connection open"
        );
    }
    // The good connection still receives.
    let sent = f.publish_envelope("team-a", "still").await;
    let p = next_publish(&mut good_rx, Duration::from_secs(5))
        .await
        .expect("still delivered");
    assert_eq!(
        serde_json::from_slice::<Envelope>(&p.payload).unwrap(),
        sent
    );
}

#[tokio::test]
async fn a_connection_silent_past_one_and_a_half_keep_alives_is_closed() {
    use futures::SinkExt;
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let mut ws = raw_ws(&f).await;
    ws.send(tokio_tungstenite::tungstenite::Message::binary(
        connect_packet(ALICE, 1),
    ))
    .await
    .unwrap();
    assert!(
        closes(&mut ws).await,
        "still open 3 s after a 1 s keep-alive"
    );
    assert!(
        f.decisions("disconnect", "refused")
            .iter()
            .any(|d| d["reason"] == "keep-alive expired")
    );
}

#[tokio::test]
async fn random_bytes_on_the_mqtt_port_never_stop_the_broker() {
    let f = start().await;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", f.mqtt))
            .await
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 64) as usize + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        let _ = s.write_all(&bytes).await;
    }
    // The endpoint still answers a well-formed CONNECT (refused: attachment mode has no TCP
    // authentication, see the next test).
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", f.mqtt))
        .await
        .unwrap();
    s.write_all(&connect_packet(ALICE, 30)).await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf[0], 0x20, "a CONNACK");
}

#[tokio::test]
async fn mqtt_over_tls_in_attachment_mode_refuses_connect_and_says_to_use_wss() {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", f.mqtt))
        .await
        .unwrap();
    s.write_all(&connect_packet(ALICE, 30)).await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, [0x20, 0x02, 0x00, 0x05], "CONNACK not authorized");
    let refused = f.decisions("connect", "refused");
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("WSS"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_subscriber_publishing_over_mqtt_is_disconnected_since_the_group_policy_grants_no_publish()
 {
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let (listener, mut listener_rx) = raw_client(&f, "ALICEKEY", &format!("{ALICE}-listener"));
    assert_eq!(
        connected(&mut listener_rx).await,
        ConnectReturnCode::Success
    );
    assert_eq!(
        suback(&listener, &mut listener_rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let (c, mut rx) = raw_client(&f, "ALICEKEY", ALICE);
    assert_eq!(connected(&mut rx).await, ConnectReturnCode::Success);
    c.publish(
        "groupcast/team-a/forged",
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    let closed = loop {
        match next_packet(&mut rx).await {
            Ok(_) => {}
            Err(e) => break e != "timed out",
        }
    };
    assert!(closed, "the publishing connection stayed open");
    assert!(
        next_publish(&mut listener_rx, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(f.decisions("publish", "refused").len(), 1);
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_loses_messages_beyond_its_queue_and_never_blocks_the_broker()
 {
    use futures::{SinkExt, StreamExt};
    let f = start().await;
    f.set_policy("acme-team-a", ALICE, true);
    let mut ws = raw_ws(&f).await;
    ws.send(tokio_tungstenite::tungstenite::Message::binary(
        connect_packet(ALICE, 0),
    ))
    .await
    .unwrap();
    let mut out = bytes::BytesMut::new();
    rumqttc::mqttbytes::v4::Packet::Subscribe(rumqttc::mqttbytes::v4::Subscribe::new(
        "groupcast/team-a/#",
        rumqttc::mqttbytes::QoS::AtMostOnce,
    ))
    .write(&mut out, 1 << 20)
    .unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::binary(
        out.to_vec(),
    ))
    .await
    .unwrap();
    // CONNACK and SUBACK, then this client reads nothing more.
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap();
    }
    let st = iot::state::of(&f.stack.state_dir);
    let payload = bytes::Bytes::from(vec![b'x'; 4096]);
    let started = std::time::Instant::now();
    for _ in 0..20_000 {
        st.broker.publish(
            &f.stack,
            &st,
            "groupcast/team-a/flood",
            payload.clone(),
            rumqttc::mqttbytes::QoS::AtMostOnce,
        );
        tokio::task::yield_now().await;
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let dropped = f
        .decisions("receive", "refused")
        .iter()
        .filter(|d| d["reason"].as_str().is_some_and(|r| r.contains("dropped")))
        .count();
    assert!(dropped > 0, "nothing was dropped for the stalled client");
    drop(ws);
}
