//! The official `aws-amplify` Events client (6.22.1) against the Events endpoint, once, as a check
//! of the wire format (the e2e suite holds the full third-party run). Amplify always connects with
//! `wss://` (for a custom domain it appends `/realtime` to the HTTP endpoint's path), so this test
//! serves TLS with a throwaway certificate made by `openssl`, trusted through
//! `NODE_EXTRA_CA_CERTS`. Ignored by default; needs `node`, `openssl` and a node_modules holding
//! `aws-amplify` and `ws`:
//!
//! ```text
//! GROUPCAST_AMPLIFY_NODE_MODULES=/path/to/node_modules \
//!   cargo test -p groupcast-dev --test events_amplify -- --ignored
//! ```
//!
//! Amplify is configured with an API key; the test's fixed authenticator maps that key to a
//! Cognito user of group `team-a`, so the rendered handler sees a user.

mod rendered;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use groupcast_appsync_js::{CognitoIdentity, IamIdentity, Identity};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::events::{Options, serve_with};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, EventsSystem, Namespace, System};
use groupcast_dev::{Ports, Stack};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
const PUBLISHER_ARN: &str = "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local";

fn tls_acceptor(dir: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
#[ignore = "needs node and aws-amplify: set GROUPCAST_AMPLIFY_NODE_MODULES"]
async fn the_official_amplify_events_client_subscribes_is_refused_a_foreign_group_and_receives_its_own()
 {
    let modules = std::env::var("GROUPCAST_AMPLIFY_NODE_MODULES")
        .expect("GROUPCAST_AMPLIFY_NODE_MODULES: a node_modules with aws-amplify and ws");
    let dir = std::env::temp_dir().join(format!("groupcast-events-amplify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = tls_acceptor(&dir);
    let system = System {
        events: Some(EventsSystem {
            name: "amplify".into(),
            connection_auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            namespaces: vec![Namespace {
                name: "live".into(),
                handler_js: rendered::events_handler("live"),
                publish_auth_modes: vec![AuthMode::Iam],
                subscribe_auth_modes: vec![AuthMode::Cognito],
                epoch_seconds: None,
            }],
        }),
        ..Default::default()
    };
    let alice = Identity::Cognito(CognitoIdentity {
        sub: "s".into(),
        issuer: ISSUER.into(),
        username: "alice".into(),
        groups: Some(vec!["team-a".into()]),
        ..Default::default()
    });
    let publisher = Identity::Iam(IamIdentity {
        account_id: "123456789012".into(),
        user_arn: PUBLISHER_ARN.into(),
        ..Default::default()
    });
    let auth = Authenticator::fixed(vec![
        ("da2-alice".into(), AuthMode::Cognito, alice, "alice".into()),
        (
            "publisher-sig".into(),
            AuthMode::Iam,
            publisher,
            PUBLISHER_ARN.into(),
        ),
    ]);
    let (log, lines) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system),
        auth,
        log,
        tls: Some(tls),
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_with(listener, stack, Options::default()));

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/amplify/events-check.mjs"
    );
    // std's process and a reader thread: the crate's tokio has no `process` feature.
    let mut node =
        std::process::Command::new(std::env::var("GROUPCAST_NODE").unwrap_or("node".into()))
            .arg(script)
            .arg(&modules)
            .arg(format!("https://127.0.0.1:{port}/event"))
            .arg("da2-alice")
            .env("NODE_EXTRA_CA_CERTS", dir.join("cert.pem"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    let stdout = node.stdout.take().unwrap();
    let (tx, mut out) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = Vec::new();
    let step = Duration::from_secs(20);
    loop {
        let line = tokio::time::timeout(step, out.recv()).await.unwrap();
        let Some(line) = line else {
            panic!(
                "node ended: {said:?}; decisions {:?}",
                lines.lock().unwrap()
            )
        };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
        said.push(v.clone());
        if v["ready"] == true {
            break;
        }
    }
    assert!(
        said.iter().any(|v| v["refused"]
            .as_str()
            .is_some_and(|m| m.contains("Unauthorized"))),
        "{said:?}"
    );
    // webpki refuses a self-signed certificate as its own server certificate (node accepts it
    // through NODE_EXTRA_CA_CERTS); this client talks to 127.0.0.1 only.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    for channel in ["/live/team-b/x", "/live/team-a/x"] {
        let resp = http
            .post(format!("https://127.0.0.1:{port}/event"))
            .header("authorization", "publisher-sig")
            .body(format!(
                r#"{{"channel":"{channel}","events":["{{\"n\":1}}"]}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    loop {
        let line = tokio::time::timeout(step, out.recv()).await.unwrap();
        let Some(line) = line else { break };
        said.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
    }
    let status = tokio::task::spawn_blocking(move || node.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{said:?}");
    assert!(said.iter().all(|v| v.get("leaked").is_none()), "{said:?}");
    assert!(
        said.iter()
            .any(|v| v["data"] == serde_json::json!({"n": 1})),
        "{said:?}"
    );
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
