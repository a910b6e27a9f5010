//! `groupcast watch --transport graphql` through the real binary against amplify-appsync-simulator
//! (tests/node_modules), started by the library's own test script
//! (functions/groupcast/tests/appsync_simulator.cjs) with groupcast's schema, and `groupcast
//! publish --transport graphql` sending to it. The simulator filters nothing (local-peers.md §2),
//! so it delivers every publish: what is printed shows the watch keeps only its groups' messages
//! of its topic.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::util::{Scratch, repo};

/// Our own node process running the simulator; killed by its PID when dropped.
struct Simulator {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Simulator {
    fn start() -> Simulator {
        let modules = repo().join("tests/node_modules");
        assert!(
            modules.join("amplify-appsync-simulator").exists(),
            "amplify-appsync-simulator is not in {}: run `npm ci --prefix tests`",
            modules.display()
        );
        let (port, ws_port) = (free_port(), free_port());
        let mut child = Command::new("node")
            .arg(repo().join("functions/groupcast/tests/appsync_simulator.cjs"))
            .arg(repo().join("templates/graphql/schema.graphql.tera"))
            .arg(port.to_string())
            .arg(ws_port.to_string())
            .env("NODE_PATH", &modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is needed for the simulator (Node 20)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.trim() == "READY" {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("amplify-appsync-simulator did not start within 60 s (its errors are above)");
        }
        Simulator { child, port }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An unsigned Cognito-looking ID token the simulator decodes without verifying.
fn cognito_token(groups: &[&str]) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test",
            "sub": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "cognito:username": "alice",
            "cognito:groups": groups, "token_use": "id", "exp": 4_102_444_800u64,
        }))
    )
}

#[test]
fn watch_over_graphql_prints_only_its_groups_messages_of_its_topic() {
    let sim = Simulator::start();
    let s = Scratch::new("watch-graphql");
    let url = format!("http://127.0.0.1:{}/graphql", sim.port);
    let mut child = s
        .command(
            &[
                "watch",
                "--transport",
                "graphql",
                "--graphql-url",
                &url,
                "--group",
                "team-a",
                "--topic",
                "chat/*",
                "--count",
                "1",
                "--timeout",
                "60s",
            ],
            &[("GROUPCAST_TOKEN", &cognito_token(&["team-a"]))],
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let active: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(active["event"], "active", "{active}");
    assert_eq!(active["transport"], "graphql");
    // IAM publisher (the simulator checks only the signature's shape and key id).
    let publish = |topic: &str, groups: &[&str]| -> String {
        let mut a = vec![
            "publish",
            "--transport",
            "graphql",
            "--graphql-url",
            &url,
            "--region",
            "us-east-1",
            "--topic",
            topic,
            "--data",
            r#"{"text":"hello"}"#,
        ];
        for g in groups {
            a.extend_from_slice(&["--group", g]);
        }
        let run = s.run(
            &a,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                ),
            ],
        );
        assert_eq!(run.code(), 0, "{}", run.describe());
        run.json_lines()[0]["message_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    publish("chat/room1", &["team-b"]);
    publish("news/today", &["team-a"]);
    let mine = publish("chat/room1", &["team-b", "team-a"]);
    line.clear();
    out.read_line(&mut line).unwrap();
    let m: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(m["event"], "message", "{m}");
    assert_eq!(
        m["id"],
        mine.as_str(),
        "the other group's and the other topic's never print: {m}"
    );
    assert_eq!(m["data"], json!({"text": "hello"}));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
