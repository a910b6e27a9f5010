//! The GraphQL endpoint behind the stack's TLS (`Stack::tls`): groupcast's publisher over HTTPS
//! and its subscriber over WSS at `/graphql/realtime`, the path an `https://` endpoint that is not
//! an AppSync host derives (groupcast's `realtime_url`, aws-amplify's `getRealtimeEndpointUrl`).
//! A throwaway self-signed certificate from the `openssl` command, trusted by the subscriber
//! through `SSL_CERT_FILE` (rustls-native-certs reads it): the test runs itself again as a child
//! process with that variable set, since the environment of a running test cannot be changed
//! safely.

use std::sync::Arc;
use std::time::Duration;

use groupcast::subscribe::SubscriptionEvent;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::{Authorizer, Message, Publisher, StaticToken};
use groupcast_appsync_js::{CognitoIdentity, IamIdentity};
use groupcast_dev::auth::{Authenticator, Identity};
use groupcast_dev::log::DecisionLog;
use groupcast_dev::system::{AuthMode, GraphqlSystem, System};
use groupcast_dev::{Ports, Stack};
use serde_json::json;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graphql");

fn system() -> System {
    let mut templates = std::collections::BTreeMap::new();
    let mut schema = String::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "schema.graphql" {
            schema = text;
        } else {
            templates.insert(name, text);
        }
    }
    System {
        graphql: Some(GraphqlSystem {
            name: "acme-live".into(),
            schema,
            templates,
            auth_modes: vec![AuthMode::Cognito, AuthMode::Iam],
            groups_claim: "cognito:groups".into(),
        }),
        ..System::default()
    }
}

const CHILD: &str = "GROUPCAST_DEV_GRAPHQL_TLS_DIR";

#[test]
fn publisher_and_subscriber_work_over_https_and_wss_at_the_amplify_realtime_path() {
    let dir =
        std::env::temp_dir().join(format!("groupcast-dev-graphql-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tls_child", "--ignored", "--nocapture"])
        .env(CHILD, &dir)
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && out.contains("1 passed"),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[tokio::test]
#[ignore = "run by publisher_and_subscriber_work_over_https_and_wss_at_the_amplify_realtime_path"]
async fn tls_child() {
    let Some(dir) = std::env::var_os(CHILD).map(std::path::PathBuf::from) else {
        return;
    };
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let member = Identity::Cognito(CognitoIdentity {
        sub: "alice-sub".into(),
        claims: json!({"sub": "alice-sub", "cognito:groups": ["team-a"]})
            .as_object()
            .unwrap()
            .clone(),
        groups: Some(vec!["team-a".into()]),
        ..CognitoIdentity::default()
    });
    let publisher_identity = Identity::Iam(IamIdentity {
        user_arn: "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/local".into(),
        ..IamIdentity::default()
    });
    let (log, _) = DecisionLog::capture();
    let stack = Arc::new(Stack {
        system: Arc::new(system()),
        auth: Authenticator::fixed(vec![
            ("alice".into(), AuthMode::Cognito, member, "alice".into()),
            (
                "publisher".into(),
                AuthMode::Iam,
                publisher_identity,
                "publisher".into(),
            ),
        ]),
        log,
        tls: Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(groupcast_dev::graphql::serve(listener, stack));

    assert_eq!(
        groupcast::subscribe::graphql::realtime_url(&url).unwrap(),
        url.replace("https://", "wss://") + "/realtime"
    );
    let pem = std::fs::read(&cert).unwrap();
    let subscriber = GraphqlSubscriber::builder()
        .url(&url)
        .authorizer(Authorizer::token(StaticToken("alice".into())))
        .build()
        .unwrap();
    let mut sub = subscriber.subscribe("", None).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next_event()).await {
            Ok(Some(SubscriptionEvent::Active)) => break,
            Ok(Some(SubscriptionEvent::State(_))) => {}
            other => panic!("expected the subscription to become active, got {other:?}"),
        }
    }
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let publisher = Publisher::builder()
        .graphql(&url)
        .graphql_authorizer(Authorizer::token(StaticToken("publisher".into())))
        .region("us-east-1")
        .http_client(http)
        .build()
        .unwrap();
    let m = Message::builder("t/tls")
        .data(json!({"k": 1}))
        .groups(["team-a"])
        .build()
        .unwrap();
    assert!(publisher.publish(&m).await.unwrap().is_complete());
    match tokio::time::timeout(Duration::from_secs(10), sub.next_message()).await {
        Ok(Some(Ok(r))) => {
            assert_eq!(r.envelope.id, m.id());
            assert_eq!(r.envelope.data, json!({"k": 1}));
        }
        other => panic!("expected the message, got {other:?}"),
    }
}
