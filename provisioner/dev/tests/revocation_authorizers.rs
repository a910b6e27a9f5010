//! Issue 14, end to end in the local stack, for the two transports whose bound is a re-check
//! against the user directory rather than a revoke call: a member removed from a group in the
//! stack's user directory (Cognito's `AdminRemoveUserFromGroup` on the AWS port) loses that
//! group, while a fellow member keeps it and the removed member keeps their other group.
//!
//! - **IoT, custom-authorizer mode**: the real iot-authorizer binary reads the user's CURRENT
//!   groups from the stack's directory at every refresh; the broker asks it again after the
//!   dev-only refresh cap (1 s here; AWS: `refreshAfterInSeconds`, 300 s at least), so an open MQTT
//!   session stops receiving the group within the cap.
//! - **Events, `groups_source = "user-pool"`**: the real authorizer binary reads current groups
//!   at every request AppSync has not cached (`result_ttl_seconds`, 1 s here), so a token minted
//!   before the removal opens no new subscription to the group's channel.
//! - **Events, open subscriptions in a time-sliced namespace** (`epoch_seconds = 2`, the rendered
//!   handler of tests/harness/configs/epochs.toml's `fast`): groupcast's own subscriber re-takes
//!   each epoch, the real authorizer reads current groups, the handler refuses the removed
//!   member's next epoch, so an OPEN subscription stops receiving within 2 epochs + the TTL.
//!
//! Each scenario also runs WITHOUT the removal and asserts the member still receives / still
//! subscribes: the test fails if the re-check stops reading the directory (it cannot pass
//! vacuously). Needs `cargo build -p iot-authorizer -p authorizer`.

mod rendered;
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::{ReconnectPolicy, Subscription, SubscriptionEvent};
use groupcast::{Authorizer, Message, Publisher, StaticToken};
use groupcast_dev::auth::{AuthRequest, Authenticator};
use groupcast_dev::identity::{Directory, Issuer, user_sub};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{
    AuthMode, EventsSystem, IotAuth, IotSystem, LambdaAuthorizerSettings, Namespace, System,
};
use groupcast_dev::{Ports, Stack};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{Value, json};
use support::{ACCOUNT, POOL, PREFIX, PROJECT, REGION, binary, groups};

const CLIENT: &str = "client";
/// The dev-only refresh cap of these tests.
const REFRESH_CAP: Duration = Duration::from_secs(1);
/// The Events authorizer's cache lifetime in these tests.
const RESULT_TTL: Duration = Duration::from_secs(1);
const QUIET: Duration = Duration::from_millis(500);

/// The stack with its real authenticator and its functions ([`groupcast_dev::functions::start`],
/// as `provisioner dev` starts them), tokens from the user pool's Cognito issuer (what
/// `provisioner dev` mints when the config names a pool), serving the AWS port, IoT over MQTT
/// and WSS (plain: TLS is the transports' own tests' business).
struct Fixture {
    stack: Arc<Stack>,
    issuer: Arc<Issuer>,
    dir: PathBuf,
    aws_url: String,
    iot_url: String,
    mqtt_port: u16,
    /// `http://127.0.0.1:{port}` of the Events endpoint (HTTP publish and WebSocket).
    events_url: String,
    decisions: Arc<Mutex<Vec<Value>>>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    _functions: groupcast_dev::functions::Functions,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(system: System) -> Fixture {
    let dir = std::env::temp_dir().join(format!("gc-dev-revoke-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut system = system;
    system.project = PROJECT.into();
    system.region = REGION.into();
    system.account_id = ACCOUNT.into();
    system.publisher_principals = vec![format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/{PROJECT}-publisher/"
    )];
    system.identity.user_pool_id = Some(POOL.into());
    system.identity.user_pool_region = Some(REGION.into());
    let system = Arc::new(system);
    let issuer = Arc::new(
        Issuer::load_or_create(
            &dir,
            &format!("https://cognito-idp.{REGION}.amazonaws.com/{POOL}"),
            CLIENT,
        )
        .unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let (log, decisions) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system,
        auth,
        log,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let aws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wss = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mqtt = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aws_url = format!("http://{}", aws.local_addr().unwrap());
    let iot_url = format!("http://{}", wss.local_addr().unwrap());
    let mqtt_port = mqtt.local_addr().unwrap().port();
    let events = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let events_url = format!("http://{}", events.local_addr().unwrap());
    let mut tasks = vec![
        tokio::spawn(groupcast_dev::aws::serve(aws, stack.clone())),
        tokio::spawn(groupcast_dev::iot::serve_wss(wss, stack.clone())),
        tokio::spawn(groupcast_dev::iot::serve_mqtt(mqtt, stack.clone())),
    ];
    if stack.system.events.is_some() {
        tasks.push(tokio::spawn(groupcast_dev::events::serve(
            events,
            stack.clone(),
        )));
    }
    let functions = groupcast_dev::functions::start(&stack).await.unwrap();
    Fixture {
        stack,
        issuer,
        dir,
        aws_url,
        iot_url,
        mqtt_port,
        events_url,
        decisions,
        tasks,
        _functions: functions,
    }
}

impl Fixture {
    fn publisher_keys(&self) -> Credentials {
        support::publisher_keys(&self.dir)
    }

    /// Cognito's `AdminRemoveUserFromGroup` on the AWS port: the removal an administrator makes.
    async fn remove_from_group(&self, user: &str, group: &str) {
        support::remove_from_group(&self.aws_url, &self.dir, user, group).await;
    }

    fn token(&self, user: &str, group_list: &[&str]) -> String {
        self.issuer
            .mint(user, &groups(group_list), Duration::from_secs(3600))
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// IoT, custom-authorizer mode

fn iot_system() -> System {
    System {
        iot: Some(IotSystem {
            topic_prefix: PREFIX.into(),
            policies: BTreeMap::new(),
            group_policies: ["team-a", "team-y"]
                .iter()
                .map(|g| (g.to_string(), format!("{PROJECT}-{g}")))
                .collect(),
            auth: IotAuth::CustomAuthorizer {
                binary: Some(binary("iot-authorizer")),
                // What render writes for this prefix, region and account (the provisioner's tests
                // keep this fixture equal to its rendering).
                policy: Some(
                    include_str!(
                        "../../../functions/groupcast-auth/tests/fixtures/iot-authorizer-policy.json"
                    )
                    .to_owned(),
                ),
            },
            grant_function: None,
            refresh_cap: Some(REFRESH_CAP),
        }),
        ..System::default()
    }
}

type Rx = tokio::sync::mpsc::UnboundedReceiver<Result<Packet, String>>;

/// An MQTT client of `user` with the custom authorizer's username/password (the JWT as password),
/// subscribed to each group's `{prefix}/{group}/#`.
async fn mqtt_subscriber(
    f: &Fixture,
    user: &str,
    token: &str,
    group_list: &[&str],
) -> (AsyncClient, Rx) {
    let mut options = MqttOptions::new(user_sub(user), "127.0.0.1", f.mqtt_port);
    options.set_credentials(
        format!("{user}?x-amz-customauthorizer-name={PROJECT}-iot-authorizer"),
        token,
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
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
    // The first CONNECT starts the binary: allow it time.
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Some(Ok(Packet::ConnAck(a)))) => {
            assert_eq!(a.code, rumqttc::ConnectReturnCode::Success, "{user}")
        }
        other => panic!("{user}: expected CONNACK, got {other:?}"),
    }
    for g in group_list {
        client
            .subscribe(format!("{PREFIX}/{g}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Ok(Packet::SubAck(a)))) => {
                    assert_eq!(
                        a.return_codes[0],
                        SubscribeReasonCode::Success(QoS::AtLeastOnce),
                        "{user} subscribing to {g}"
                    );
                    break;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("{user}: no SUBACK for {g}: {other:?}"),
            }
        }
    }
    (client, rx)
}

/// The `step` of every message received until the client stays quiet for [`QUIET`], with its group.
async fn received(rx: &mut Rx) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(QUIET, rx.recv()).await {
        match p {
            Ok(Packet::Publish(p)) => {
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                let step = v["data"]["step"]
                    .as_str()
                    .or_else(|| v["step"].as_str())
                    .unwrap_or("?");
                got.push(step.to_owned());
            }
            Ok(_) => {}
            Err(e) => got.push(format!("error: {e}")),
        }
    }
    got.sort();
    got
}

fn iot_publisher(f: &Fixture) -> Publisher {
    Publisher::builder()
        .iot(&f.iot_url, PREFIX)
        .credentials(SharedCredentialsProvider::new(f.publisher_keys()))
        .region(REGION)
        .build()
        .unwrap()
}

async fn publish(publisher: &Publisher, step: &str, group: &str) {
    let m = Message::builder("news")
        .data(json!({ "step": step }))
        .groups([group])
        .build()
        .unwrap();
    let r = publisher.publish(&m).await.unwrap();
    assert!(r.is_complete(), "{r:?}");
}

/// Alice (team-a, team-y) and Dave (team-a) hold open MQTT sessions authorized by the custom
/// authorizer; Alice is removed from team-a (if `remove`), then the test waits out the refresh
/// cap. Returns what Alice's session received after that.
async fn iot_custom_authorizer_scenario(remove: bool) -> Vec<String> {
    let f = start(iot_system()).await;
    let directory = Directory::open(&f.dir);
    directory
        .set_groups("alice", &groups(&["team-a", "team-y"]))
        .unwrap();
    directory.set_groups("dave", &groups(&["team-a"])).unwrap();
    // Tokens minted before the removal, held for the whole session (and offered again at refresh).
    let alice_token = f.token("alice", &["team-a", "team-y"]);
    let dave_token = f.token("dave", &["team-a"]);
    let (alice, mut alice_rx) =
        mqtt_subscriber(&f, "alice", &alice_token, &["team-a", "team-y"]).await;
    let (dave, mut dave_rx) = mqtt_subscriber(&f, "dave", &dave_token, &["team-a"]).await;
    let publisher = iot_publisher(&f);
    publish(&publisher, "before", "team-a").await;
    assert_eq!(received(&mut alice_rx).await, ["before"]);
    assert_eq!(received(&mut dave_rx).await, ["before"]);

    if remove {
        f.remove_from_group("alice", "team-a").await;
    }
    // Within the cap (plus the authorizer's answer), every session was re-authorized.
    tokio::time::sleep(REFRESH_CAP * 2 + QUIET).await;
    publish(&publisher, "after", "team-a").await;
    publish(&publisher, "after-y", "team-y").await;
    let alice_got = received(&mut alice_rx).await;
    assert_eq!(
        received(&mut dave_rx).await,
        ["after"],
        "a fellow member keeps team-a"
    );
    assert!(
        alice_got.contains(&"after-y".to_owned()),
        "alice keeps team-y: {alice_got:?}"
    );

    let log = f.decisions.lock().unwrap().clone();
    let refreshed = |who: &str| {
        log.iter().any(|d| {
            d["action"] == "refresh" && d["target"].as_str().is_some_and(|t| t.contains(who))
        })
    };
    assert!(
        refreshed(&user_sub("alice")),
        "alice's session was never refreshed: {log:?}"
    );
    assert!(
        log.iter().any(|d| d["action"] == "refresh-schedule"
            && d["reason"].as_str().is_some_and(|r| r.contains("dev-only"))),
        "the capped refresh is logged as dev-only: {log:?}"
    );
    let _ = alice.disconnect().await;
    let _ = dave.disconnect().await;
    alice_got
}

#[tokio::test]
async fn iot_custom_authorizer_a_member_removed_in_the_directory_stops_receiving_the_group_within_the_refresh_cap_while_a_fellow_member_keeps_it()
 {
    let alice_got = iot_custom_authorizer_scenario(true).await;
    assert_eq!(alice_got, ["after-y"], "team-a delivered after the removal");
}

#[tokio::test]
async fn iot_custom_authorizer_without_the_removal_the_member_keeps_receiving_after_the_refresh() {
    // The control for the test above: the refresh alone does not stop delivery, so that test's
    // silence is the directory's doing.
    let alice_got = iot_custom_authorizer_scenario(false).await;
    assert_eq!(alice_got, ["after", "after-y"]);
}

// ---------------------------------------------------------------------------------------------
// Events, groups_source = "user-pool"

fn events_system() -> System {
    let mut system = System::default();
    system.identity.lambda_authorizer = Some(LambdaAuthorizerSettings {
        arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PROJECT}-authorizer"),
        result_ttl_seconds: RESULT_TTL.as_secs(),
        binary: Some(binary("authorizer")),
        user_pool_id: Some(POOL.into()),
    });
    system
}

/// Whether the stack's Lambda authorizer lets `token` open a subscription to `channel`: the
/// check the Events endpoint makes for every `subscribe` (the real authorizer binary, its
/// answers cached for `ttlOverride` as AppSync caches them).
async fn may_subscribe(f: &Fixture, token: &str, channel: &str) -> bool {
    let headers = BTreeMap::from([
        ("authorization".to_owned(), token.to_owned()),
        ("host".to_owned(), "127.0.0.1:4510".to_owned()),
    ]);
    f.stack
        .auth
        .authenticate(
            &AuthRequest {
                headers: &headers,
                method: "POST",
                path: "/event",
                body: b"{}",
                source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                channel: Some(channel),
                operation: Some("EVENT_SUBSCRIBE"),
            },
            &[AuthMode::Lambda],
        )
        .await
        .is_ok()
}

/// Alice (team-a, team-y) and Dave (team-a) hold tokens minted before Alice's removal from team-a
/// (if `remove`); after the authorizer's cache lifetime, whether Alice's old token may open a new
/// subscription to team-a's channel.
async fn events_user_pool_scenario(remove: bool) -> bool {
    let f = start(events_system()).await;
    let directory = Directory::open(&f.dir);
    directory
        .set_groups("alice", &groups(&["team-a", "team-y"]))
        .unwrap();
    directory.set_groups("dave", &groups(&["team-a"])).unwrap();
    let alice = f.token("alice", &["team-a", "team-y"]);
    let dave = f.token("dave", &["team-a"]);
    assert!(may_subscribe(&f, &alice, "/live/team-a/news").await);
    assert!(may_subscribe(&f, &dave, "/live/team-a/news").await);

    if remove {
        f.remove_from_group("alice", "team-a").await;
    }
    tokio::time::sleep(RESULT_TTL + Duration::from_millis(200)).await;
    assert!(
        may_subscribe(&f, &dave, "/live/team-a/news").await,
        "a fellow member keeps team-a"
    );
    assert!(
        may_subscribe(&f, &alice, "/live/team-y/news").await,
        "alice keeps team-y"
    );
    may_subscribe(&f, &alice, "/live/team-a/news").await
}

#[tokio::test]
async fn events_user_pool_groups_a_token_minted_before_the_removal_opens_no_new_subscription_to_the_group_after_the_result_ttl()
 {
    assert!(!events_user_pool_scenario(true).await);
}

#[tokio::test]
async fn events_user_pool_groups_without_the_removal_the_same_old_token_still_subscribes() {
    assert!(events_user_pool_scenario(false).await);
}

// ---------------------------------------------------------------------------------------------
// Events, open subscriptions in a time-sliced namespace

/// The epoch of the `fast` namespace (tests/harness/configs/epochs.toml).
const EPOCH: Duration = Duration::from_secs(2);

/// `fast`'s handler as rendered, with this stack's publisher principal in place of the harness
/// project's (the only line changed; the epoch checks are the template's own).
fn fast_handler() -> String {
    let rendered = rendered::epochs_events_handler("fast");
    let publishers = json!([format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/{PROJECT}-publisher/"
    )]);
    let mut replaced = 0;
    let handler = rendered
        .lines()
        .map(|l| {
            if l.starts_with("const PUBLISHERS = ") {
                replaced += 1;
                format!("const PUBLISHERS = {publishers};")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        replaced, 1,
        "the rendered handler names its publishers once"
    );
    assert!(
        handler.contains(&format!("const EPOCH_SECONDS = {};", EPOCH.as_secs())),
        "fast is rendered with {EPOCH:?} epochs"
    );
    handler
}

fn events_epoch_system() -> System {
    let mut system = events_system();
    system.events = Some(EventsSystem {
        name: format!("{PROJECT}-events"),
        connection_auth_modes: vec![AuthMode::Lambda, AuthMode::Iam],
        namespaces: vec![Namespace {
            name: "fast".into(),
            handler_js: fast_handler(),
            publish_auth_modes: vec![AuthMode::Iam],
            subscribe_auth_modes: vec![AuthMode::Lambda],
            epoch_seconds: Some(EPOCH.as_secs()),
        }],
    });
    system
}

impl Fixture {
    fn events_subscriber(&self, token: String) -> EventsSubscriber {
        EventsSubscriber::builder()
            .realtime_url(self.events_url.replace("http://", "ws://"))
            .http_host(&self.events_url)
            .namespace("fast")
            .epoch_seconds(EPOCH.as_secs())
            .authorizer(Authorizer::token(StaticToken(token)))
            .reconnect(ReconnectPolicy {
                base: Duration::from_millis(20),
                max: Duration::from_millis(200),
            })
            .build()
            .unwrap()
    }

    fn events_publisher(&self) -> Publisher {
        Publisher::builder()
            .events(&self.events_url, "fast")
            .events_epoch_seconds(EPOCH.as_secs())
            .region(REGION)
            .events_authorizer(Authorizer::iam(self.publisher_keys()))
            .max_attempts(1)
            .build()
            .unwrap()
    }
}

/// What one subscriber saw: each message's logical channel and when it arrived, and the parts
/// that ended.
#[derive(Default)]
struct Seen {
    messages: Vec<(String, Instant)>,
    ended: Vec<(String, String)>,
}

fn record(mut sub: Subscription) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = seen.clone();
    tokio::spawn(async move {
        while let Some(event) = sub.next_event().await {
            let mut s = out.lock().unwrap();
            match event {
                SubscriptionEvent::Message(m) => s.messages.push((m.part, Instant::now())),
                SubscriptionEvent::PartEnded { part, error } => {
                    s.ended.push((part, error.to_string()))
                }
                _ => {}
            }
        }
    });
    seen
}

/// Alice (team-a, team-y) and Dave (team-a) subscribe to both groups' `news` with groupcast's
/// subscriber, which re-takes every epoch; the publisher sends to each group every 100 ms. If
/// `remove`, Alice leaves team-a in the directory mid-stream (no revoke call: the epochs are the
/// mechanism). Returns when Alice last received a team-a message, relative to the removal moment.
async fn events_epoch_scenario(remove: bool) -> Option<Duration> {
    let f = start(events_epoch_system()).await;
    let directory = Directory::open(&f.dir);
    directory
        .set_groups("alice", &groups(&["team-a", "team-y"]))
        .unwrap();
    directory.set_groups("dave", &groups(&["team-a"])).unwrap();
    let alice_sub = f.events_subscriber(f.token("alice", &["team-a", "team-y"]));
    let dave_sub = f.events_subscriber(f.token("dave", &["team-a"]));
    let alice = record(
        alice_sub
            .subscribe_groups(&["team-a", "team-y"], "news")
            .await
            .unwrap(),
    );
    let dave = record(
        dave_sub
            .subscribe_groups(&["team-a"], "news")
            .await
            .unwrap(),
    );

    let publisher = f.events_publisher();
    let publishing = tokio::spawn(async move {
        loop {
            for g in ["team-a", "team-y"] {
                let m = Message::builder("news")
                    .data(json!({"group": g}))
                    .groups([g])
                    .build()
                    .unwrap();
                let report = publisher.publish(&m).await.unwrap();
                assert!(report.failures().next().is_none(), "{report:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // Both receive team-a before anything changes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(has(&alice, "/fast/team-a/news") && has(&dave, "/fast/team-a/news")) {
        assert!(Instant::now() < deadline, "no team-a message reached both");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let removed_at = Instant::now();
    if remove {
        f.remove_from_group("alice", "team-a").await;
    }
    // The bound: the epoch after the current one is held at most to its end (2 epochs), the
    // authorizer's allow is cached for RESULT_TTL; then watch one more epoch.
    let bound = 2 * EPOCH + RESULT_TTL;
    tokio::time::sleep(bound + EPOCH + Duration::from_millis(500)).await;
    publishing.abort();
    let now = Instant::now();

    let recent = |seen: &Arc<Mutex<Seen>>, part: &str| {
        seen.lock()
            .unwrap()
            .messages
            .iter()
            .any(|(p, at)| p == part && now.duration_since(*at) < EPOCH)
    };
    assert!(
        recent(&dave, "/fast/team-a/news"),
        "a fellow member keeps receiving team-a"
    );
    assert!(
        recent(&alice, "/fast/team-y/news"),
        "alice keeps receiving her other group"
    );
    let ended = alice.lock().unwrap().ended.clone();
    if remove {
        assert!(
            ended
                .iter()
                .any(|(part, why)| part == "/fast/team-a/news" && why.contains("/fast/team-a/t")),
            "alice's team-a stream ends with the refusal of an epoch: {ended:?}"
        );
    } else {
        assert!(ended.is_empty(), "{ended:?}");
    }
    assert!(dave.lock().unwrap().ended.is_empty());
    let last = alice
        .lock()
        .unwrap()
        .messages
        .iter()
        .filter(|(p, _)| p == "/fast/team-a/news")
        .map(|(_, at)| *at)
        .max();
    let last = last.map(|at| at.saturating_duration_since(removed_at));
    eprintln!(
        "remove = {remove}: alice's last team-a message {last:?} after the moment; ended: {ended:?}"
    );
    if remove {
        assert!(
            last.is_some_and(|l| l <= bound),
            "alice received team-a {last:?} after her removal; the bound is {bound:?}"
        );
    }
    alice_sub.close().await;
    dave_sub.close().await;
    last
}

fn has(seen: &Arc<Mutex<Seen>>, part: &str) -> bool {
    seen.lock().unwrap().messages.iter().any(|(p, _)| p == part)
}

#[tokio::test]
async fn events_epochs_a_removed_member_s_open_subscription_stops_receiving_the_group_within_two_epochs_and_the_ttl()
 {
    let last = events_epoch_scenario(true).await;
    assert!(last.is_some());
}

#[tokio::test]
async fn events_epochs_without_the_removal_the_same_open_subscription_keeps_receiving_past_the_bound()
 {
    let last = events_epoch_scenario(false).await.unwrap();
    assert!(
        last > 2 * EPOCH + RESULT_TTL,
        "alice still received team-a {last:?} after the moment, past the bound"
    );
}
