//! Custom-authorizer mode with the real iot-authorizer binary (functions/iot-authorizer) under
//! the emulated Lambda Runtime API: a token minted by the local issuer connects over MQTT (the
//! JWT as the CONNECT password) and gets exactly its groups' topics; a forged token, another
//! user's client id and an unknown token are refused. Needs `cargo build -p iot-authorizer`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use groupcast_dev::auth::Authenticator;
use groupcast_dev::identity::{Issuer, user_sub};
use groupcast_dev::iot;
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{IotAuth, IotSystem, System};
use groupcast_dev::{Ports, Stack};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use uuid::Uuid;

fn iot_authorizer_binary() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let bin = target.join("debug/iot-authorizer");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p iot-authorizer` first",
        bin.display()
    );
    bin
}

struct Fixture {
    issuer: Arc<Issuer>,
    port: u16,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Fixture {
    let dir = std::env::temp_dir().join(format!("gc-dev-iotbin-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = Arc::new(System {
        project: "acme".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        iot: Some(IotSystem {
            grant_function: None,
            refresh_cap: None,
            topic_prefix: "groupcast".into(),
            policies: BTreeMap::new(),
            group_policies: ["team-a", "team-b"]
                .iter()
                .map(|g| (g.to_string(), format!("acme-{g}")))
                .collect(),
            auth: IotAuth::CustomAuthorizer {
                binary: Some(iot_authorizer_binary()),
                // What render writes for this prefix, region and account (the provisioner's tests
                // keep this fixture equal to its rendering).
                policy: Some(
                    include_str!("../../../functions/groupcast-auth/tests/fixtures/iot-authorizer-policy.json")
                        .to_owned(),
                ),
            },
        }),
        ..System::default()
    });
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/local-pool", "local-client").unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let stack = Arc::new(Stack {
        system,
        auth,
        log: DecisionLog::capture().0,
        tls: None,
        state_dir: dir,
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(iot::serve_mqtt(listener, stack));
    Fixture { issuer, port, task }
}

type Rx = tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>;

fn client(f: &Fixture, client_id: &str, token: &str) -> (AsyncClient, Rx) {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", f.port);
    options.set_credentials(
        "user?x-amz-customauthorizer-name=acme-iot-authorizer",
        token,
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
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

async fn connack(rx: &mut Rx) -> ConnectReturnCode {
    // The first CONNECT starts the binary: allow it time.
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Some(Ok(Packet::ConnAck(a)))) => a.code,
        Ok(Some(Err(e))) if e.contains("NotAuthorized") => ConnectReturnCode::NotAuthorized,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn suback(c: &AsyncClient, rx: &mut Rx, filter: &str) -> SubscribeReasonCode {
    c.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Ok(Packet::SubAck(a)))) => return a.return_codes[0],
            Ok(Some(Ok(_))) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_real_iot_authorizer_grants_a_minted_tokens_groups_and_refuses_forgeries() {
    let f = start().await;
    let sub = user_sub("alice");
    let token = f
        .issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(3600))
        .unwrap();
    let (c, mut rx) = client(&f, &sub, &token);
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::Success);
    assert_eq!(
        suback(&c, &mut rx, "groupcast/team-a/#").await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    assert_eq!(
        suback(&c, &mut rx, "groupcast/team-b/#").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(suback(&c, &mut rx, "#").await, SubscribeReasonCode::Failure);

    // Another user's client id with alice's token.
    let (_c, mut rx) = client(&f, &user_sub("bob"), &token);
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::NotAuthorized);
    // A token with a forged signature.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (_c, mut rx) = client(&f, &sub, &forged);
    assert_eq!(connack(&mut rx).await, ConnectReturnCode::NotAuthorized);
}
