//! `groupcast watch` through the real binary against the project's Events emulator, which runs the
//! real rendered `live` handler: the active line, a published message as one JSON line (once,
//! however many of the watcher's groups it was addressed to), a foreign group refused while the
//! own groups keep receiving, and the exit codes of the ends.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::util::{Scratch, repo};

/// The publisher's key: the emulator's stand-in for the IAM publisher.
const API_KEY: &str = "da2-clitestpublisherkey";
/// The bound on every wait for the wire.
const STEP: Duration = Duration::from_secs(15);

/// The emulator, shared by the tests of this binary; it stops when this process exits (its
/// stdin closes).
struct Emulator {
    port: u16,
    _child: Mutex<Child>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

impl Emulator {
    fn get() -> &'static Emulator {
        EMULATOR.get_or_init(Emulator::start)
    }

    fn start() -> Emulator {
        let mut child = Command::new("node")
            .arg(repo().join("cli/tests/peers/events-peer.mjs"))
            .arg(API_KEY)
            .env("GROUPCAST_PROVISIONER", provisioner())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node cli/tests/peers/events-peer.mjs (node must be on PATH)");
        let lines = line_channel(child.stdout.take().unwrap());
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the Events emulator did not start within 120 s");
        let port = serde_json::from_str::<Value>(&line).unwrap()["port"]
            .as_u64()
            .unwrap_or_else(|| panic!("the peer printed {line:?}, not {{\"port\": N}}"));
        Emulator {
            port: u16::try_from(port).unwrap(),
            _child: Mutex::new(child),
        }
    }

    /// Flags that point a command at the emulator.
    fn flags(&self) -> Vec<String> {
        let http = format!("http://127.0.0.1:{}", self.port);
        let ws = format!("ws://127.0.0.1:{}", self.port);
        [
            "--events-url",
            &http,
            "--events-realtime-url",
            &ws,
            "--events-namespace",
            "live",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// The provisioner binary the emulator renders the handler with: $GROUPCAST_PROVISIONER, else the
/// one beside this crate's binary (`cargo test --workspace` builds it), else built here.
fn provisioner() -> PathBuf {
    if let Some(p) = std::env::var_os("GROUPCAST_PROVISIONER") {
        return PathBuf::from(p);
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_groupcast"));
    let beside = bin.with_file_name("provisioner");
    if beside.exists() {
        return beside;
    }
    let target = bin.parent().and_then(|d| d.parent()).unwrap().to_owned();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "-q", "-p", "groupcast-provisioner"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo())
        .status()
        .expect("run cargo build -p groupcast-provisioner");
    assert!(
        status.success() && beside.exists(),
        "cargo build -p groupcast-provisioner failed; set GROUPCAST_PROVISIONER"
    );
    beside
}

/// Lines of a child's stream, as they come.
fn line_channel(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// An unsigned (alg "none") Cognito ID token with these groups: the emulator trusts it, by design
/// (verification is tested in functions/groupcast-auth).
fn cognito_token(name: &str, groups: Option<&[&str]>) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut claims = json!({
        "sub": format!("sub-{name}"), "cognito:username": name, "token_use": "id",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_E2eTest01",
        "exp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600,
    });
    if let Some(g) = groups {
        claims["cognito:groups"] = json!(g);
    }
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    )
}

/// A running `groupcast watch`, its stdout lines as they come, its stderr collected.
struct Watch {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(s: &Scratch, emu: &Emulator, token: &str, more: &[&str]) -> Watch {
        let flags = emu.flags();
        let mut args: Vec<&str> = vec!["watch"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(more);
        let mut child = s
            .command(&args, &[("GROUPCAST_TOKEN", token)])
            .stdin(Stdio::null())
            .spawn()
            .expect("start groupcast watch");
        let out = line_channel(child.stdout.take().unwrap());
        let err = line_channel(child.stderr.take().unwrap());
        Watch {
            child,
            out,
            err,
            seen: Vec::new(),
        }
    }

    /// The next stdout line as JSON; fails after [`STEP`], showing what came so far.
    fn next(&mut self) -> Value {
        match self.out.recv_timeout(STEP) {
            Ok(line) => {
                self.seen.push(line.clone());
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "no stdout line within {STEP:?}; so far {:?}; stderr {}",
                self.seen,
                self.stderr_now()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "watch closed stdout; so far {:?}; stderr {}",
                self.seen,
                self.stderr_now()
            ),
        }
    }

    /// stdout lines until one has this `event`, returning it and the lines skipped.
    fn until_event(&mut self, event: &str) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let v = self.next();
            if v["event"] == event {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    fn stderr_now(&self) -> String {
        self.err.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the exit (bounded by [`STEP`]); returns the code, the rest of stdout and stderr.
    fn wait(mut self) -> (i32, Vec<String>, String) {
        let end = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let rest: Vec<String> = self.out.iter().collect();
                let err: Vec<String> = self.err.iter().collect();
                return (status.code().expect("exited"), rest, err.join("\n"));
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("watch did not exit within {STEP:?}; stdout {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `groupcast publish` to the emulator with the publisher's key; returns the message id.
fn publish(s: &Scratch, emu: &Emulator, topic: &str, groups: &[&str], data: Value) -> String {
    let flags = emu.flags();
    let data = data.to_string();
    let mut args: Vec<&str> = vec!["publish"];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(&["--api-key", API_KEY, "--topic", topic, "--data", &data]);
    for g in groups {
        args.extend_from_slice(&["--group", g]);
    }
    let run = s.run(&args, &[]);
    assert_eq!(run.code(), 0, "publish to {groups:?}: {}", run.describe());
    run.json_lines()[0]["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn watch_prints_the_active_line_then_each_message_of_its_groups_once_and_a_foreign_group_refused() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-carol");
    // carol is in team-a and Team_B; team-b is not hers.
    let token = cognito_token("carol", Some(&["team-a", "Team_B"]));
    let mut w = Watch::start(
        &s,
        emu,
        &token,
        &[
            "--group",
            "team-a",
            "--group",
            "Team_B",
            "--group",
            "team-b",
            "--topic",
            "news",
            "--count",
            "2",
            "--timeout",
            "60s",
        ],
    );
    let (active, before) = w.until_event("active");
    assert_eq!(
        active,
        json!({"event": "active", "transport": "events", "groups": ["team-a", "Team_B", "team-b"], "topic": "news"})
    );
    // The refusal may come before or after the active line; it names the foreign group.
    let refused = match before.into_iter().find(|v| v["event"] == "part_ended") {
        Some(v) => v,
        None => w.until_event("part_ended").0,
    };
    assert_eq!(refused["groups"], json!(["team-b"]), "{refused}");
    assert_eq!(refused["kind"], "unauthorized", "{refused}");
    assert_eq!(refused["part"], "/live/team-b/news", "{refused}");

    // Not hers: never printed. Hers, to one group and then to both: printed once each.
    publish(&s, emu, "news", &["team-b"], json!({"n": 0}));
    let m1 = publish(
        &s,
        emu,
        "news",
        &["team-a"],
        json!({"n": 1, "text": "for team-a"}),
    );
    let m2 = publish(&s, emu, "news", &["team-a", "Team_B"], json!({"n": 2}));
    let first = w.next();
    let second = w.next();
    assert_eq!(
        first,
        json!({"event": "message", "id": m1, "topic": "news", "data": {"n": 1, "text": "for team-a"},
               "groups": ["team-a"], "part": "/live/team-a/news"})
    );
    assert_eq!(second["id"], m2.as_str(), "{second}");
    assert_eq!(second["groups"], json!(["team-a", "Team_B"]));
    let (code, rest, err) = w.wait();
    assert_eq!(code, 0, "--count 2 reached; stderr {err}");
    assert!(rest.is_empty(), "nothing after the count: {rest:?}");
    assert!(err.contains("team-b: refused or ended"), "{err}");
    assert!(err.contains("still watching the others"), "{err}");
}

#[test]
fn a_lambda_authorizer_token_watches_its_groups_too() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-dave");
    let mut w = Watch::start(
        &s,
        emu,
        "opaque-token-dave",
        &[
            "--group",
            "admins",
            "--topic",
            "ops/*",
            "--count",
            "1",
            "--timeout",
            "60s",
        ],
    );
    w.until_event("active");
    let id = publish(&s, emu, "ops/alerts", &["admins"], json!({"level": "high"}));
    let m = w.next();
    assert_eq!(m["id"], id.as_str(), "{m}");
    assert_eq!(m["topic"], "ops/alerts");
    assert_eq!(w.wait().0, 0);
}

#[test]
fn a_watch_whose_every_group_is_refused_ends_with_exit_3() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-mallory");
    // mallory's token carries no groups at all.
    let mut w = Watch::start(
        &s,
        emu,
        &cognito_token("mallory", None),
        &["--group", "team-a", "--timeout", "60s"],
    );
    let (ended, _) = w.until_event("part_ended");
    assert_eq!(ended["groups"], json!(["team-a"]));
    let (code, _, err) = w.wait();
    assert_eq!(code, 3, "stderr: {err}");
    assert!(
        err.contains("the subscription ended: every part ended"),
        "{err}"
    );
}

#[test]
fn a_timeout_before_the_count_exits_4_after_the_active_line() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-timeout");
    let token = cognito_token("alice", Some(&["team-a"]));
    let mut w = Watch::start(
        &s,
        emu,
        &token,
        &[
            "--group",
            "team-a",
            "--topic",
            "quiet",
            "--count",
            "1",
            "--timeout",
            "3s",
        ],
    );
    w.until_event("active");
    let (code, rest, err) = w.wait();
    assert_eq!(code, 4, "stderr: {err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(err.contains("passed with 0 of 1 messages"), "{err}");
}

#[test]
fn an_invalid_group_is_refused_before_connecting_naming_the_flag() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-badgroup");
    let w = Watch::start(&s, emu, "t", &["--group", "", "--timeout", "5s"]);
    let (code, rest, err) = w.wait();
    assert_eq!(code, 1, "{err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(err.contains("--group \"\""), "{err}");
}

#[test]
fn a_reader_that_closes_the_pipe_ends_the_watch_quietly_with_exit_0() {
    let emu = Emulator::get();
    let s = Scratch::new("watch-pipe");
    let token = cognito_token("alice", Some(&["team-a"]));
    let flags = emu.flags();
    let mut args: Vec<&str> = vec!["watch"];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(&["--group", "team-a", "--topic", "pipe", "--timeout", "60s"]);
    let mut child = s
        .command(&args, &[("GROUPCAST_TOKEN", &token)])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // `groupcast watch | head -1`: read the active line, then close the pipe.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains(r#""event":"active""#), "{first}");
    drop(out);
    let err = line_channel(child.stderr.take().unwrap());
    publish(&s, emu, "pipe", &["team-a"], json!({"n": 1}));
    let end = Instant::now() + STEP;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < end,
            "watch did not end after its reader left"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let err: Vec<String> = err.iter().collect();
    assert_eq!(status.code(), Some(0), "stderr: {err:?}");
    assert!(
        !err.iter().any(|l| l.contains("error")),
        "a closed pipe is no error: {err:?}"
    );
}

#[test]
fn in_a_time_sliced_namespace_watch_follows_the_epochs_and_prints_each_message_once_with_its_logical_channel()
 {
    let emu = Emulator::get();
    let s = Scratch::new("watch-epochs");
    let token = cognito_token("dave", Some(&["team-a"]));
    let mut w = Watch::start(
        &s,
        emu,
        &token,
        &[
            "--events-epoch-seconds",
            "2",
            "--group",
            "team-a",
            "--topic",
            "news",
            "--count",
            "2",
            "--timeout",
            "60s",
        ],
    );
    w.until_event("active");
    let publish_epoch = |n: u32| -> String {
        let flags = emu.flags();
        let data = json!({ "n": n }).to_string();
        let mut args: Vec<&str> = vec!["publish", "--events-epoch-seconds", "2"];
        args.extend(flags.iter().map(String::as_str));
        args.extend_from_slice(&[
            "--api-key",
            API_KEY,
            "--topic",
            "news",
            "--data",
            &data,
            "--group",
            "team-a",
        ]);
        let run = s.run(&args, &[]);
        assert_eq!(run.code(), 0, "{}", run.describe());
        let line = &run.json_lines()[0];
        assert!(
            line["channel"]
                .as_str()
                .is_some_and(|c| c.starts_with("/live/team-a/t") && c.ends_with("/news")),
            "{line}"
        );
        line["message_id"].as_str().unwrap().to_owned()
    };
    let m1 = publish_epoch(1);
    // Past at least one epoch boundary and the grace after it: the watcher has rotated.
    std::thread::sleep(Duration::from_millis(2_600));
    let m2 = publish_epoch(2);
    let first = w.next();
    let second = w.next();
    assert_eq!(
        (first["id"].as_str(), second["id"].as_str()),
        (Some(m1.as_str()), Some(m2.as_str()))
    );
    for line in [&first, &second] {
        assert_eq!(line["part"], "/live/team-a/news", "{line}");
    }
    let (code, rest, err) = w.wait();
    assert_eq!(code, 0, "--count 2 reached; stderr {err}");
    assert!(rest.is_empty(), "{rest:?}");
}
