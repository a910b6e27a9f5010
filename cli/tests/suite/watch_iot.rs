//! `groupcast watch --transport iot` through the real binary against Debian's mosquitto over
//! WebSocket on 127.0.0.1 (mosquitto has no SigV4: the presigned URL is the library's, verified
//! in its own tests; here the wiring is under test: endpoint, prefix, client id, credentials from
//! the default chain, the topic translated to an MQTT filter). A message is published with
//! `mosquitto_pub`, since the broker has no IoT HTTP data plane.
//!
//! mosquitto missing is a failure, not a skip: `apt-get install -y mosquitto mosquitto-clients`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::Scratch;

fn require(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = PathBuf::from(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{tool} is not installed: this test needs a real MQTT broker: apt-get install -y mosquitto \
         mosquitto-clients"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Our own mosquitto, killed by its PID when dropped.
struct Broker {
    child: Child,
    tcp: u16,
    ws: u16,
}

impl Broker {
    fn start(s: &Scratch) -> Broker {
        let (tcp, ws) = (free_port(), free_port());
        let conf = s.write(
            "mosquitto.conf",
            &format!(
                "persistence false\nallow_anonymous true\nlistener {tcp} 127.0.0.1\n\
                 listener {ws} 127.0.0.1\nprotocol websockets\n"
            ),
        );
        let child = Command::new(require("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", ws)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err()
        {
            assert!(Instant::now() < end, "mosquitto did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child, tcp, ws }
    }

    fn publish(&self, topic: &str, payload: &Value) {
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
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_pub");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_over_iot_prints_the_active_line_and_a_message_published_to_its_group_topic() {
    let s = Scratch::new("watch-iot");
    let broker = Broker::start(&s);
    let endpoint = format!("ws://127.0.0.1:{}/mqtt", broker.ws);
    let mut child = s
        .command(
            &[
                "watch",
                "--transport",
                "iot",
                "--iot-endpoint",
                &endpoint,
                "--iot-topic-prefix",
                "gc",
                "--region",
                "us-east-1",
                "--client-id",
                "us-east-1:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-cli",
                "--group",
                "Team_B",
                "--topic",
                "jobs/*",
                "--count",
                "1",
                "--timeout",
                "30s",
            ],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                ),
            ],
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let active: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{e}: {line:?}; stderr {:?}", child.stderr.take()));
    assert_eq!(active["event"], "active", "{active}");
    assert_eq!(active["transport"], "iot");
    let id = "7d3c2b1a-0f9e-4d8c-9b7a-6f5e4d3c2b1a";
    let envelope = json!({"id": id, "topic": "jobs/42", "data": {"n": 1}, "groups": ["Team_B"]});
    // The group rule: Team_B's topic level is x--Team-5fB; `jobs/*` is the filter `jobs/#`.
    broker.publish("gc/x--Team-5fB/jobs/42", &envelope);
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let m: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        m,
        json!({"event": "message", "id": id, "topic": "jobs/42", "data": {"n": 1},
               "groups": ["Team_B"], "part": "gc/x--Team-5fB/jobs/#"})
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn watch_over_iot_without_a_client_id_is_refused_naming_the_flag() {
    let s = Scratch::new("watch-iot-noid");
    let run = s.run(
        &[
            "watch",
            "--transport",
            "iot",
            "--iot-endpoint",
            "ws://127.0.0.1:9/mqtt",
            "--group",
            "g",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("--client-id"), "{}", run.describe());
}
