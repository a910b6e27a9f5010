//! The IoT subscriber against Debian's mosquitto over WebSocket on 127.0.0.1, behind a small TCP
//! relay that records each WebSocket upgrade request (so the presigned URL on the wire can be
//! re-verified by botocore). mosquitto has no SigV4: the signature is checked by botocore, the
//! MQTT behaviour by the broker, whose ACL refuses one group's topics like an IoT policy would.
//!
//! mosquitto missing is a failure, not a skip: install it with
//! `apt-get install -y mosquitto mosquitto-clients` (`.ci/run` does).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use groupcast::Envelope;
use groupcast::subscribe::iot::IotSubscriber;
use groupcast::subscribe::{ConnectionState, SubscribeError, SubscriptionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::{creds, fast_reconnect, free_port, next_message, no_message, python, until};

const PREFIX: &str = "gc";
const IDENTITY: &str = "us-east-1:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn require(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    if let Ok(out) = Command::new("which").arg(tool).output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    panic!(
        "{tool} is not installed: the IoT subscriber tests need a real MQTT broker. Install it with \
         `apt-get install -y mosquitto mosquitto-clients` (.ci/run does)"
    );
}

/// One mosquitto process of this test, on its own ports, with an ACL that lets anonymous clients
/// publish anywhere under `gc/` but read only `gc/team-a/#` and `gc/x--Team-5fB/#` (Team_B).
struct Broker {
    child: Option<Child>,
    dir: PathBuf,
    tcp: u16,
    ws: u16,
}

impl Broker {
    fn start() -> Broker {
        let dir = std::env::temp_dir().join(format!(
            "gc-mosquitto-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = Broker {
            child: None,
            dir,
            tcp: free_port(),
            ws: free_port(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let acl = self.dir.join("acl");
        std::fs::write(
            &acl,
            "topic write gc/#\ntopic read gc/team-a/#\ntopic read gc/x--Team-5fB/#\n",
        )
        .unwrap();
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\npersistence false\nallow_anonymous true\nacl_file {}\nlog_dest file {}\nlog_type all\n\
                 listener {} 127.0.0.1\nlistener {} 127.0.0.1\nprotocol websockets\n",
                acl.display(),
                self.dir.join("log").display(),
                self.tcp,
                self.ws
            ),
        )
        .unwrap();
        let child = Command::new(require("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.ws)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", self.tcp)).is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not listen on {} and {} within 10 s; its log: {}",
                self.tcp,
                self.ws,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills our own mosquitto (by its PID) and waits for it.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Publishes `payload` to `topic` with mosquitto_pub, QoS 1.
    fn publish(&self, topic: &str, payload: &[u8]) {
        let mut child = Command::new(require("mosquitto_pub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.tcp.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-s",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_pub");
        child.stdin.take().unwrap().write_all_sync(payload);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mosquitto_pub to {topic} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

trait WriteAllSync {
    fn write_all_sync(self, bytes: &[u8]);
}

impl WriteAllSync for std::process::ChildStdin {
    fn write_all_sync(mut self, bytes: &[u8]) {
        use std::io::Write;
        self.write_all(bytes).unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP relay to the broker's WebSocket port that records each connection's request head.
struct Relay {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let h = h.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match client.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let Ok(mut upstream) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    if upstream.write_all(&head).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Relay { port, heads, task }
    }

    /// The request targets (`/mqtt?X-Amz-…`) and Host headers seen so far.
    fn requests(&self) -> Vec<(String, String)> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|head| {
                let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
                let host = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                (target, host)
            })
            .collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn subscriber(relay: &Relay, token: Option<&str>, suffix: &str) -> IotSubscriber {
    IotSubscriber::builder()
        .endpoint(format!("ws://127.0.0.1:{}/mqtt", relay.port))
        .region("us-east-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(creds(token)))
        .client_id(groupcast::iot::client_id(IDENTITY, Some(suffix)).unwrap())
        .topic_prefix(PREFIX)
        .reconnect_policy(fast_reconnect())
        .build()
        .unwrap()
}

fn envelope(groups: &[&str], n: i64) -> Envelope {
    Envelope {
        id: Uuid::new_v4(),
        topic: "chat".into(),
        data: serde_json::json!({"n": n}),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn publish(broker: &Broker, topic: &str, e: &Envelope) {
    broker.publish(topic, &serde_json::to_vec(e).unwrap());
}

async fn active(sub: &mut groupcast::subscribe::Subscription) {
    until(sub, 10, "Active", |e| {
        matches!(e, SubscriptionEvent::Active)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_the_callers_group_topics_arrive_once_and_a_foreign_groups_never() {
    let broker = Broker::start();
    let relay = Relay::start(broker.ws).await;
    let s = subscriber(&relay, None, "one");
    let mut sub = s
        .subscribe_groups(&["team-a", "Team_B"], "chat")
        .await
        .unwrap();
    active(&mut sub).await;

    let both = envelope(&["team-a", "Team_B"], 1);
    publish(&broker, "gc/team-a/chat", &both);
    publish(&broker, "gc/x--Team-5fB/chat", &both);
    let foreign = envelope(&["other"], 2);
    publish(&broker, "gc/other/chat", &foreign);
    // Garbage on our own topic: dropped, never a panic.
    broker.publish("gc/team-a/chat", b"not json at all");
    broker.publish("gc/team-a/chat", b"{\"id\":\"nope\",\"groups\":3}");
    broker.publish("gc/team-a/chat", &[0xff, 0xfe, 0x00]);
    // Our topic, but the envelope names only another group: dropped (fail closed).
    let spoofed = envelope(&["other"], 3);
    publish(&broker, "gc/team-a/chat", &spoofed);
    let b_only = envelope(&["Team_B"], 4);
    publish(&broker, "gc/x--Team-5fB/chat", &b_only);

    let first = next_message(&mut sub, 10, "the message to both groups").await;
    assert_eq!(first.envelope, both);
    let second = next_message(&mut sub, 10, "the Team_B message").await;
    assert_eq!(
        second.envelope, b_only,
        "the duplicate, the foreign, the garbage and the spoofed message never arrive"
    );
    assert_eq!(second.part, "gc/x--Team-5fB/chat");
    no_message(&mut sub, 500).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_the_broker_refuses_with_suback_0x80_ends_only_that_part_and_the_others_keep_receiving()
 {
    let peer = crate::mqtt_peer::MqttPeer::start().await;
    let s = IotSubscriber::builder()
        .endpoint(format!("ws://127.0.0.1:{}/mqtt", peer.port))
        .region("us-east-1")
        .credentials(aws_credential_types::provider::SharedCredentialsProvider::new(creds(None)))
        .client_id(groupcast::iot::client_id(IDENTITY, Some("two")).unwrap())
        .topic_prefix(PREFIX)
        .reconnect_policy(fast_reconnect())
        .build()
        .unwrap();
    let mut sub = s
        .subscribe_groups(&["team-a", "forbidden"], "chat")
        .await
        .unwrap();
    let ended = until(&mut sub, 10, "the refused part", |e| {
        matches!(e, SubscriptionEvent::PartEnded { .. })
    })
    .await;
    match ended {
        SubscriptionEvent::PartEnded { part, error } => {
            assert_eq!(part, "gc/forbidden/chat");
            assert!(
                matches!(&error, SubscribeError::Unauthorized { part, .. } if part == "gc/forbidden/chat"),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    active(&mut sub).await;
    let e = envelope(&["team-a"], 1);
    peer.push("gc/team-a/chat", serde_json::to_vec(&e).unwrap());
    assert_eq!(
        next_message(&mut sub, 10, "team-a's message")
            .await
            .envelope,
        e
    );
    // The refused filter's messages never arrive, even if sent.
    peer.push(
        "gc/forbidden/chat",
        serde_json::to_vec(&envelope(&["forbidden"], 2)).unwrap(),
    );
    no_message(&mut sub, 300).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_broker_restarts_the_subscriber_reconnects_resubscribes_and_receives_again() {
    let mut broker = Broker::start();
    let relay = Relay::start(broker.ws).await;
    let s = subscriber(&relay, Some("session-token"), "three");
    let mut states = s.states();
    let mut sub = s.subscribe_groups(&["team-a"], "chat").await.unwrap();
    active(&mut sub).await;
    let before = envelope(&["team-a"], 1);
    publish(&broker, "gc/team-a/chat", &before);
    assert_eq!(
        next_message(&mut sub, 10, "the first message")
            .await
            .envelope,
        before
    );

    broker.stop();
    until(&mut sub, 10, "a backoff", |e| {
        matches!(e, SubscriptionEvent::State(ConnectionState::Backoff { .. }))
    })
    .await;
    broker.spawn();
    active(&mut sub).await;
    assert_eq!(*states.borrow_and_update(), ConnectionState::Connected);
    let after = envelope(&["team-a"], 2);
    publish(&broker, "gc/team-a/chat", &after);
    assert_eq!(
        next_message(&mut sub, 10, "the message after the restart")
            .await
            .envelope,
        after
    );

    // Every connection attempt was presigned (the URL is signed anew in each upgrade request).
    let requests = relay.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        requests.iter().all(|(t, _)| t.contains("X-Amz-Signature=")),
        "{requests:?}"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_subscription_unsubscribes_its_filters_and_close_ends_the_others() {
    let broker = Broker::start();
    let relay = Relay::start(broker.ws).await;
    let s = subscriber(&relay, None, "four");
    let mut keep = s.subscribe_groups(&["team-a"], "chat").await.unwrap();
    active(&mut keep).await;
    let mut gone = s.subscribe_groups(&["Team_B"], "chat").await.unwrap();
    active(&mut gone).await;
    drop(gone);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !broker.log().contains("UNSUBSCRIBE") {
        assert!(
            std::time::Instant::now() < deadline,
            "no UNSUBSCRIBE in the broker log:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = envelope(&["team-a"], 1);
    publish(&broker, "gc/team-a/chat", &e);
    assert_eq!(
        next_message(&mut keep, 10, "team-a's message")
            .await
            .envelope,
        e
    );
    s.close().await;
    // The stream ends after close.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while keep.next_event().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the subscription did not end after close()");
    assert!(matches!(
        s.subscribe_groups(&["team-a"], "chat").await,
        Err(SubscribeError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presigned_url_on_the_wire_is_verified_by_botocore_and_a_tampered_one_is_not() {
    let broker = Broker::start();
    let relay = Relay::start(broker.ws).await;
    let s = subscriber(&relay, Some("the/session+token="), "five");
    let mut sub = s.subscribe_groups(&["team-a"], "chat").await.unwrap();
    active(&mut sub).await;
    let (target, host) = relay
        .requests()
        .into_iter()
        .next()
        .expect("one upgrade request");
    assert!(target.starts_with("/mqtt?"), "{target}");
    let url = format!("http://{host}{target}");
    let verdict = |url: &str| -> serde_json::Value {
        let input = serde_json::json!({
            "access_key": crate::ACCESS_KEY,
            "secret_key": crate::SECRET_KEY,
            "token": "the/session+token=",
            "url": url,
        });
        let path = std::env::temp_dir().join(format!("gc-presigned-{}.json", Uuid::new_v4()));
        std::fs::write(&path, input.to_string()).unwrap();
        let out = Command::new(python())
            .arg(crate::repo_root().join("functions/groupcast/tests/verify_presigned.py"))
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = verdict(&url);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["service"], "iotdevicegateway");
    assert_eq!(v["region"], "us-east-1");
    let tampered = url.replace("/mqtt?", "/mqtx?");
    assert_eq!(verdict(&tampered)["ok"], false);
    s.close().await;
}
