//! Against a real moto server (started here on a free port, killed on drop): a SigV4-signed
//! Events publish gets successful entries, and an IoT data publish reaches moto with the
//! envelope as its body, read back from moto's request recorder.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine;
use groupcast::{Outcome, Publisher};
use serde_json::json;

use crate::{creds, msg, python};

/// A running `moto_server` with request recording; killed when dropped.
struct Moto {
    child: Child,
    base: String,
    dir: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

impl Moto {
    async fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("groupcast-moto-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", dir.join("recording.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "start moto (python -m moto.server); install tests/requirements.txt into .venv",
            );
        let moto = Moto {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let start = Instant::now();
        let client = reqwest::Client::new();
        loop {
            let ready = client
                .get(format!("{}/moto-api/", moto.base))
                .send()
                .await
                .is_ok();
            if ready {
                return moto;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start listening on {} within 60 s",
                moto.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The recorded requests, one JSON object per line.
    async fn recording(&self) -> Vec<serde_json::Value> {
        let text = reqwest::get(format!(
            "{}/moto-api/recorder/download-recording",
            self.base
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn publisher(moto: &Moto) -> Publisher {
    Publisher::builder()
        .events(&moto.base, "live")
        .iot(&moto.base, "gc")
        .region("us-east-1")
        .credentials(SharedCredentialsProvider::new(creds(None)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn moto_accepts_a_signed_events_publish() {
    let moto = Moto::start().await;
    let msgs: Vec<_> = (0..6)
        .map(|i| msg("chat/room-1", &["team-a", "Team_B"], json!({"i": i})))
        .collect();
    let opts = groupcast::PublishOptions {
        transports: Some(vec![groupcast::Transport::Events]),
        ..Default::default()
    };
    let report = publisher(&moto).publish_all(&msgs, &opts).await.unwrap();
    assert_eq!(report.deliveries.len(), 12);
    for d in &report.deliveries {
        let Outcome::Delivered {
            identifier: Some(id),
        } = &d.outcome
        else {
            panic!("{d:?}")
        };
        assert_eq!(
            uuid::Uuid::parse_str(id).unwrap().get_version_num(),
            4,
            "moto's identifiers are UUID v4"
        );
    }
    // 6 events per channel, 2 channels: 5 + 1 each.
    let events: Vec<serde_json::Value> = moto
        .recording()
        .await
        .into_iter()
        .filter(|r| r["url"].as_str().unwrap().ends_with("/event"))
        .collect();
    assert_eq!(events.len(), 4);
}

#[tokio::test]
async fn moto_receives_the_iot_envelope() {
    let moto = Moto::start().await;
    let m = msg(
        "chat/room-1",
        &["team-a", "Team_B"],
        json!({"text": "héllo"}),
    );
    let opts = groupcast::PublishOptions {
        transports: Some(vec![groupcast::Transport::Iot]),
        ..Default::default()
    };
    let report = publisher(&moto)
        .publish_all(std::slice::from_ref(&m), &opts)
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let mut topics: Vec<(String, String)> = moto
        .recording()
        .await
        .into_iter()
        .filter(|r| r["url"].as_str().unwrap().contains("/topics/"))
        .map(|r| {
            let body = r["body"].as_str().unwrap();
            let body = if r["body_encoded"] == true {
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .unwrap(),
                )
                .unwrap()
            } else {
                body.to_owned()
            };
            let url = r["url"].as_str().unwrap();
            (url[url.find("/topics/").unwrap()..].to_owned(), body)
        })
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        [
            (
                "/topics/gc%2Fteam-a%2Fchat%2Froom-1?qos=1".to_owned(),
                m.envelope_json()
            ),
            (
                "/topics/gc%2Fx--Team-5fB%2Fchat%2Froom-1?qos=1".to_owned(),
                m.envelope_json()
            ),
        ]
    );
}
