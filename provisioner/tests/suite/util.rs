//! Test harness: the peers (a moto server behind the stub of `peers/stub_proxy.py`), a scratch
//! directory per test, and running the real `provisioner` binary against them.
//!
//! One moto + stub pair serves the whole test binary. The stub starts moto itself and stops it
//! when its stdin closes, i.e. when this process exits, so no peer outlives the tests. Tests take
//! [`Peers::get`]'s lock (they share moto's state), which also resets moto and the call log.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::Value;

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub(crate) fn python() -> PathBuf {
    let p = std::env::var_os("GROUPCAST_PYTHON")
        .map_or_else(|| repo().join(".venv/bin/python"), PathBuf::from);
    assert!(
        p.exists(),
        "{} not found: these tests need the Python peers (python3 -m venv .venv && .venv/bin/pip install -r \
         tests/requirements.txt), or GROUPCAST_PYTHON pointing at such a python",
        p.display()
    );
    p
}

pub(crate) struct Peers {
    /// The stub's URL: what the provisioner gets as --endpoint-url.
    pub(crate) url: String,
    _child: Mutex<Child>,
}

static PEERS: OnceLock<Peers> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

impl Peers {
    /// The shared peers, reset, and a guard that keeps other tests off them until dropped.
    pub(crate) fn get() -> (&'static Peers, MutexGuard<'static, ()>) {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let peers = PEERS.get_or_init(Peers::start);
        peers.reset();
        (peers, guard)
    }

    /// Empties moto, deploys the example's Lambda authorizer (apply grants AppSync the right to
    /// invoke it) and forgets the calls so far.
    pub(crate) fn reset(&self) {
        self.post("/moto-api/reset");
        self.inventory(&["function", &example_authorizer()]);
        self.post("/_stub/calls/reset");
    }

    fn start() -> Peers {
        let mut child = Command::new(python())
            .arg(repo().join("provisioner/tests/peers/stub_proxy.py"))
            .arg("--spawn-moto")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start stub_proxy.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("stub_proxy.py did not start within 60 s");
        let port = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("stub_proxy.py failed to start (said {line:?}); see stderr"));
        Peers {
            url: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new(child),
        }
    }

    fn http(&self, method: &str, path: &str) -> Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = reqwest::Client::new();
            let req = match method {
                "GET" => client.get(format!("{}{path}", self.url)),
                _ => client.post(format!("{}{path}", self.url)),
            };
            let resp = req
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("stub answers");
            assert!(
                resp.status().is_success(),
                "{method} {path}: {}",
                resp.status()
            );
            let text = resp.text().await.unwrap();
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    pub(crate) fn post(&self, path: &str) -> Value {
        self.http("POST", path)
    }

    /// Every AWS call the stub has seen since the last reset: `[{method, path, service}]`.
    pub(crate) fn calls(&self) -> Vec<Value> {
        self.http("GET", "/_stub/calls").as_array().unwrap().clone()
    }

    pub(crate) fn reset_calls(&self) {
        self.post("/_stub/calls/reset");
    }

    /// The Nth AWS call from now fails with a 400.
    pub(crate) fn fail_call(&self, nth: usize) {
        self.post(&format!("/_stub/fail?nth={nth}"));
    }

    /// `inventory.py` (boto3): an independent view of moto + stub.
    pub(crate) fn inventory(&self, args: &[&str]) -> String {
        let out = Command::new(python())
            .arg(repo().join("provisioner/tests/peers/inventory.py"))
            .arg(&self.url)
            .args(args)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run inventory.py");
        assert!(
            out.status.success(),
            "inventory.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn list(&self) -> Value {
        serde_json::from_str(&self.inventory(&["list"])).unwrap()
    }
}

/// A fresh scratch directory for one test, removed afterwards unless the test failed (kept for a
/// look at what the provisioner wrote).
pub(crate) struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "groupcast-provisioner-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// The function name of the example's Lambda authorizer ARN.
pub(crate) fn example_authorizer() -> String {
    let text = example();
    let arn = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("authorizer_arn = \""))
        .expect("the example has a Lambda authorizer");
    arn.split('"')
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned()
}

/// Whether a call the stub recorded changes something: any non-GET call except the reads of
/// query-protocol services (IAM and STS POST their Get*/List* calls) and IoT's
/// ListTargetsForPolicy, a `POST /policy-targets/{policyName}`
/// (https://docs.aws.amazon.com/iot/latest/apireference/API_ListTargetsForPolicy.html).
pub(crate) fn is_write(call: &Value) -> bool {
    let read_action = call["action"].as_str().is_some_and(|a| {
        a.starts_with("Get") || a.starts_with("List") || a.starts_with("Describe")
    });
    let list_targets = call["service"] == "iot"
        && call["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/policy-targets/"));
    call["method"] != "GET" && !read_action && !list_targets
}

/// The bundled example config.
pub(crate) fn example() -> String {
    std::fs::read_to_string(repo().join("examples/groupcast.toml")).unwrap()
}

/// Runs `provisioner ARGS` in `dir`, against `peers` when given, with test credentials and a
/// single attempt per call (moto answers unimplemented calls with a slow-to-retry 500).
pub(crate) fn provisioner(dir: &Path, peers: Option<&Peers>, args: &[&str]) -> Output {
    provisioner_with(dir, peers, args, |_| {})
}

/// [`provisioner`], with a last word on the command (e.g. other retry settings).
pub(crate) fn provisioner_with(
    dir: &Path,
    peers: Option<&Peers>,
    args: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    cmd.current_dir(dir)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // No ~/.aws here: the developer's profiles stay out of the tests.
        .env("HOME", dir)
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .stdin(Stdio::null());
    if let Some(p) = peers {
        cmd.arg("--endpoint-url").arg(&p.url);
    }
    cmd.args(args);
    adjust(&mut cmd);
    cmd.output().expect("run provisioner")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}
