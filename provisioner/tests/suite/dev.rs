//! `provisioner dev` through the real binary: it starts, says it is ready with every URL, serves
//! TLS that a client trusting only the printed CA accepts on every port, writes outputs with the
//! ports it really bound, mints tokens the way Cognito shapes them, refuses a taken port naming
//! the flag, and ends with 0 on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};

use crate::util::{example, scratch, stderr as err_of, stdout};

/// A running `provisioner dev`, killed when dropped (if a test failed before stopping it).
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    seen: Vec<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALL_EPHEMERAL: &str = "events=0,graphql=0,iot_wss=0,iot_mqtt=0,aws=0";

fn dev_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("HOME", dir)
        .args(["--config", "groupcast.toml", "dev"])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

impl Dev {
    fn start(dir: &Path, args: &[&str]) -> Dev {
        let mut child = dev_cmd(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start provisioner dev");
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Dev {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the ready line and returns it; panics with everything printed if the process
    /// ends or 30 s pass first.
    fn ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with("groupcast dev ready") {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        panic!(
            "provisioner dev never said it was ready (exit {status:?}); stderr:\n{}",
            self.seen.join("\n")
        );
    }

    /// Sends SIGTERM and returns the exit code and the rest of stderr.
    fn terminate(&mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status.code(), self.seen.join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "provisioner dev still runs 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The milliseconds the ready line reports.
fn ready_ms(line: &str) -> u64 {
    line.split_whitespace()
        .nth(4)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line:?}"))
}

fn setup(name: &str) -> (crate::util::Scratch, PathBuf) {
    let dir = scratch(name);
    std::fs::write(dir.join("groupcast.toml"), example()).unwrap();
    let state = dir.join("state");
    (dir, state)
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A TLS handshake with `127.0.0.1:port`, trusting only `ca`; the negotiated ALPN protocol.
fn handshake(ca: &Path, port: u16, alpn: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect {port}: {e}"))?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| format!("TLS handshake on {port} timed out"))?
        .map_err(|e| format!("TLS handshake on {port}: {e}"))?;
        Ok(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
    })
}

/// `GET path` over TLS trusting only `ca`; the whole response (status line, headers, body).
fn https_get(ca: &Path, port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    })
}

#[test]
fn dev_starts_says_ready_serves_tls_its_ca_signs_on_every_port_and_writes_the_bound_ports() {
    let (dir, state) = setup("dev-ready");
    let outputs_path = dir.join("dev.outputs.json");
    let mut dev = Dev::start(
        &dir,
        &[
            "--ports",
            ALL_EPHEMERAL,
            "--state-dir",
            state.to_str().unwrap(),
            "--outputs",
            outputs_path.to_str().unwrap(),
        ],
    );
    let line = dev.ready();
    let outputs = read_json(&outputs_path);
    let ports = &outputs["dev"]["ports"];
    let port = |name: &str| -> u16 {
        let p = ports[name]
            .as_u64()
            .unwrap_or_else(|| panic!("dev.ports.{name} in {outputs}"));
        assert_ne!(p, 0, "{name} must be the bound port, not 0");
        u16::try_from(p).unwrap()
    };
    // The ready line and the outputs agree on every URL.
    assert!(
        line.contains(&format!("https://127.0.0.1:{}/event", port("events"))),
        "{line}"
    );
    assert!(line.contains(&format!("wss://127.0.0.1:{}/mqtt", port("iot_wss"))));
    assert!(line.contains(&format!("mqtts://127.0.0.1:{}", port("iot_mqtt"))));
    assert!(line.contains(&format!("https://127.0.0.1:{}", port("aws"))));
    let ca = PathBuf::from(outputs["dev"]["ca_path"].as_str().unwrap());
    assert_eq!(ca, state.join("tls/ca.pem"));
    assert!(line.contains(&ca.display().to_string()), "{line}");

    // The outputs are what `apply` writes, read by the publish library, with local endpoints.
    let parsed = groupcast::Outputs::from_path(&outputs_path).unwrap();
    let events = parsed.events.unwrap();
    assert_eq!(events.http_host, format!("127.0.0.1:{}", port("events")));
    assert_eq!(
        events
            .namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["live", "jobs"]
    );
    assert_eq!(
        parsed.graphql.unwrap().url,
        format!("https://127.0.0.1:{}/graphql", port("graphql"))
    );
    assert_eq!(
        parsed.iot.unwrap().data_endpoint,
        format!("127.0.0.1:{}", port("iot_wss"))
    );
    assert!(parsed.lambdas.contains_key("publisher"));
    // Local tokens carry the configured pool's issuer (so the rendered handler accepts them);
    // its keys are served by the stack.
    assert_eq!(
        outputs["dev"]["issuer"],
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
    );
    assert_eq!(
        outputs["dev"]["jwks_url"],
        format!(
            "https://127.0.0.1:{}/us-east-1_AbCdEf123/.well-known/jwks.json",
            port("aws")
        )
    );
    assert!(
        outputs["dev"]["token_command"]
            .as_str()
            .unwrap()
            .contains("dev token")
    );
    // The JWKS is served at the URL the outputs give, over TLS the printed CA signs.
    let jwks = https_get(
        &ca,
        port("aws"),
        "/us-east-1_AbCdEf123/.well-known/jwks.json",
    );
    assert!(jwks.starts_with("HTTP/1.1 200"), "{jwks}");
    assert!(
        jwks.contains("\"RS256\"") && jwks.contains("\"kid\""),
        "{jwks}"
    );
    let amplify = read_json(&state.join("amplify_outputs.json"));
    assert_eq!(amplify["version"], "1.3");
    assert_eq!(
        amplify["custom"]["events"]["url"],
        format!("https://127.0.0.1:{}/event", port("events"))
    );

    // TLS on every port, trusted through the printed CA alone; HTTP endpoints agree on http/1.1.
    for name in ["events", "graphql", "iot_wss", "aws"] {
        let alpn = handshake(&ca, port(name), &[b"h2", b"http/1.1"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "{name}");
    }
    // The MQTT port: no ALPN (8883 style) and AWS IoT's 443 ALPN both handshake.
    handshake(&ca, port("iot_mqtt"), &[]).unwrap();
    let alpn = handshake(&ca, port("iot_mqtt"), &[b"x-amzn-mqtt-ca"]).unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"x-amzn-mqtt-ca"[..]));

    let (code, all) = dev.terminate();
    assert_eq!(code, Some(0), "{all}");
}

#[test]
fn a_warm_start_reuses_the_ca_and_is_ready_within_a_second() {
    let (dir, state) = setup("dev-warm");
    let args = [
        "--ports",
        ALL_EPHEMERAL,
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut first = Dev::start(&dir, &args);
    first.ready();
    assert_eq!(first.terminate().0, Some(0));
    let ca = std::fs::read(state.join("tls/ca.pem")).unwrap();
    let mut second = Dev::start(&dir, &args);
    let line = second.ready();
    assert!(ready_ms(&line) <= 1000, "{line}");
    assert_eq!(std::fs::read(state.join("tls/ca.pem")).unwrap(), ca);
    assert_eq!(second.terminate().0, Some(0));
}

#[test]
fn sigterm_stops_the_stack_with_exit_code_0_and_removes_its_running_record() {
    let (dir, state) = setup("dev-term");
    let mut dev = Dev::start(
        &dir,
        &[
            "--ports",
            ALL_EPHEMERAL,
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    dev.ready();
    assert!(state.join("running.json").exists());
    let (code, all) = dev.terminate();
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("groupcast dev stopped (SIGTERM)"), "{all}");
    assert!(!state.join("running.json").exists());
}

#[test]
fn a_port_in_use_fails_at_once_naming_the_port_and_the_flag_that_changes_it() {
    let (dir, state) = setup("dev-busy");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = dev_cmd(
        &dir,
        &[
            "--ports",
            ALL_EPHEMERAL,
            "--events-port",
            &port,
            "--state-dir",
            state.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("port {port} (events) on 127.0.0.1 is in use")),
        "{err}"
    );
    assert!(err.contains("--events-port PORT"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_bad_ports_list_is_refused_naming_the_entry() {
    let (dir, state) = setup("dev-badports");
    let out = dev_cmd(
        &dir,
        &[
            "--ports",
            "events=1,mqtt=2",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown port name \"mqtt\""), "{err}");
}

/// The claims of a JWT, decoded without verifying (the stack verifies; this checks the shape).
fn claims(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {jwt:?}");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[test]
fn dev_token_prints_only_an_id_token_with_cognitos_claims_for_the_running_stack() {
    let (dir, state) = setup("dev-token");
    let outputs_path = dir.join("dev.outputs.json");
    let mut dev = Dev::start(
        &dir,
        &[
            "--ports",
            ALL_EPHEMERAL,
            "--state-dir",
            state.to_str().unwrap(),
            "--outputs",
            outputs_path.to_str().unwrap(),
        ],
    );
    dev.ready();
    let outputs = read_json(&outputs_path);
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .current_dir(&*dir)
        .args([
            "--config",
            "groupcast.toml",
            "dev",
            "token",
            "--user",
            "alice",
        ])
        .args(["--groups", "team-a,editors", "--expires-in", "10m"])
        .args(["--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", err_of(&out));
    let text = stdout(&out);
    let jwt = text.trim_end_matches('\n');
    assert!(!jwt.contains('\n') && !jwt.contains(' '), "{text:?}");
    let c = claims(jwt);
    assert_eq!(c["cognito:username"], "alice");
    assert_eq!(
        c["cognito:groups"],
        serde_json::json!(["team-a", "editors"])
    );
    assert_eq!(c["token_use"], "id");
    // The stack's issuer and app client id.
    assert_eq!(c["iss"], outputs["dev"]["issuer"]);
    assert_eq!(c["aud"], outputs["dev"]["user_pool_client_id"]);
    let exp = c["exp"].as_u64().unwrap();
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 600);
    assert!(c["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(dev.terminate().0, Some(0));
}

#[test]
fn dev_token_refuses_a_lifetime_longer_than_cognitos() {
    let (dir, state) = setup("dev-token-long");
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .current_dir(&*dir)
        .args([
            "--config",
            "groupcast.toml",
            "dev",
            "token",
            "--user",
            "alice",
        ])
        .args(["--groups", "team-a", "--expires-in", "2d"])
        .args(["--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    let err = err_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--expires-in") && err.contains("1 day"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

/// A binary built beside this test's provisioner (`{target}/debug/{name}`), or a failure saying
/// how to build it: never a skip.
fn sibling_binary(name: &str, package: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_provisioner")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p {package}`",
        p.display()
    );
    p
}

#[test]
fn groupcast_revoke_against_provisioner_dev_syncs_iot_through_the_iot_grant_function_the_stack_runs()
 {
    let (dir, state) = setup("dev-revoke");
    let grant = sibling_binary("iot-grant", "iot-grant");
    let mut dev = Dev::start(
        &dir,
        &[
            "--ports",
            ALL_EPHEMERAL,
            "--state-dir",
            state.to_str().unwrap(),
            "--iot-grant-bin",
            grant.to_str().unwrap(),
        ],
    );
    dev.ready();
    // The client environment the stack writes (CA, outputs, publisher key, Lambda endpoint), as
    // `set -a; . .groupcast-dev/env` gives a shell.
    let outputs = read_json(&state.join("outputs.json"));
    let env = outputs["dev"]["env"]
        .as_object()
        .unwrap_or_else(|| panic!("no dev.env in {outputs}"));
    assert_eq!(
        outputs["lambdas"]["iot-grant"]["functionName"], "acme-live-iot-grant",
        "{outputs}"
    );
    let mut revoke = Command::new(sibling_binary("groupcast", "groupcast-cli"));
    revoke.current_dir(&*dir).env_remove("RUST_LOG").args([
        "revoke",
        "--user",
        "0d1c2b3a-4f5e-4a6b-8c7d-9e0f1a2b3c4d",
        "--group",
        "team-a",
        "--transport",
        "iot",
    ]);
    for (k, v) in env {
        revoke.env(k, v.as_str().unwrap());
    }
    let out = revoke.output().unwrap();
    let (code, stderr) = dev.terminate();
    let (o, e) = (stdout(&out), err_of(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "groupcast revoke: stdout {o}\nstderr {e}\nprovisioner dev:\n{stderr}"
    );
    assert!(o.contains("synced"), "{o}");
    assert!(
        stderr.contains("aws lambda:InvokeFunction admitted acme-live-iot-grant"),
        "{stderr}"
    );
    assert_eq!(code, Some(0), "{stderr}");
}
