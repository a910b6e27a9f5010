//! The real `iot-grant` binary under an emulated Lambda Runtime API, verifying tokens against a
//! local JWKS server and calling IoT on a local moto server (a real Cognito identity and real IoT
//! policies there): attach, detach stale, leave foreign policies, idempotent, forged tokens refused.

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{JwksServer, Outcome, RuntimeApi, TestKey, id_claims, jwks, spawn_function};

const CLIENT: &str = "app-client";

/// A moto server on a free loopback port, stopped on drop.
struct Moto {
    url: String,
    python: PathBuf,
    _child: tokio::process::Child,
}

fn python() -> PathBuf {
    let path = std::env::var_os("GROUPCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    assert!(
        path.exists(),
        "moto is needed: {} does not exist. Create the venv (python3 -m venv .venv && .venv/bin/pip \
         install -r tests/requirements.txt) or set GROUPCAST_PYTHON",
        path.display()
    );
    path
}

impl Moto {
    async fn start() -> Moto {
        let python = python();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Moto {
            url: format!("http://127.0.0.1:{port}"),
            python,
            _child: child,
        }
    }

    /// Runs a boto3 snippet with `iot` and `ci` (cognito-identity) clients bound to this server;
    /// the snippet sets `out`, printed as JSON.
    async fn boto3(&self, snippet: &str) -> Value {
        let script = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url={url:?}, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             iot = boto3.client('iot', **kw)\nci = boto3.client('cognito-identity', **kw)\nout = None\n\
             {snippet}\nprint(json.dumps(out))\n",
            url = self.url
        );
        let output = tokio::process::Command::new(&self.python)
            .args(["-c", &script])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "boto3 snippet failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    async fn attached(&self, identity: &str) -> Vec<String> {
        let v = self
            .boto3(&format!(
                "out = sorted(p['policyName'] for p in iot.list_attached_policies(target={identity:?})['policies'])"
            ))
            .await;
        serde_json::from_value(v).unwrap()
    }
}

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

#[tokio::test]
async fn grants_exactly_the_users_groups_policies_idempotently() {
    let moto = Moto::start().await;
    let identity = moto
        .boto3(&format!(
            "pool = ci.create_identity_pool(IdentityPoolName='groupcast', AllowUnauthenticatedIdentities=False)\n\
             ident = ci.get_id(IdentityPoolId=pool['IdentityPoolId'])['IdentityId']\n\
             for name in ['acme-live-team-a', 'acme-live-team-b', 'acme-live-x--Team-5fC', 'acme-live-old', 'device-policy']:\n    \
                 iot.create_policy(policyName=name, policyDocument={DOC:?})\n\
             for name in ['acme-live-old', 'device-policy', 'acme-live-team-a']:\n    \
                 iot.attach_policy(policyName=name, target=ident)\n\
             out = ident"
        ))
        .await;
    let identity = identity.as_str().unwrap().to_owned();

    let key = TestKey::es256("ec-1");
    let jwks = JwksServer::start(jwks(&[&key])).await;
    let runtime = RuntimeApi::start().await;
    let env = [
        ("GROUPCAST_JWT_ISSUER", jwks.issuer()),
        ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
        ("GROUPCAST_JWT_ALGORITHMS", "ES256".to_owned()),
        (
            "GROUPCAST_IOT_POLICY_PATTERN",
            "acme-live-{group}".to_owned(),
        ),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ];
    let _child = spawn_function(env!("CARGO_BIN_EXE_iot-grant"), &runtime, &env);
    let token = |groups: &[&str]| key.sign(&id_claims(&jwks.issuer(), CLIENT, groups));

    let r = runtime
        .call(json!({"token": token(&["team-a", "team-b", "Team_C", "no-iot"]), "identityId": identity}))
        .await;
    assert_eq!(r["sub"], "5f1c2e7a-user");
    assert_eq!(
        r["attached"],
        json!(["acme-live-team-b", "acme-live-x--Team-5fC"]),
        "{r}"
    );
    assert_eq!(r["detached"], json!(["acme-live-old"]));
    assert_eq!(r["kept"], json!(["acme-live-team-a"]));
    assert_eq!(r["missing"], json!(["no-iot"]));
    let expected = [
        "acme-live-team-a",
        "acme-live-team-b",
        "acme-live-x--Team-5fC",
        "device-policy",
    ];
    assert_eq!(moto.attached(&identity).await, expected);

    // Idempotent: the same call changes nothing.
    let r = runtime
        .call(json!({"token": format!("Bearer {}", token(&["team-a", "team-b", "Team_C", "no-iot"])), "identityId": identity}))
        .await;
    assert_eq!(
        (r["attached"].clone(), r["detached"].clone()),
        (json!([]), json!([])),
        "{r}"
    );
    assert_eq!(moto.attached(&identity).await, expected);

    // Leaving groups detaches their policies; the foreign policy stays.
    let r = runtime
        .call(json!({"token": token(&["team-b"]), "identityId": identity}))
        .await;
    assert_eq!(
        r["detached"],
        json!(["acme-live-team-a", "acme-live-x--Team-5fC"]),
        "{r}"
    );
    assert_eq!(
        moto.attached(&identity).await,
        ["acme-live-team-b", "device-policy"]
    );

    // A forged token (signed by another key under the same kid) changes nothing.
    let forged = TestKey::es256("ec-1").sign(&id_claims(&jwks.issuer(), CLIENT, &["team-a"]));
    let id = runtime.invoke(json!({"token": forged, "identityId": identity}));
    match runtime.outcome(&id).await {
        Outcome::Error(e) => assert_eq!(e["errorType"], "Unauthorized", "{e}"),
        other => panic!("a forged token was answered: {other:?}"),
    }
    let id = runtime.invoke(json!({"token": token(&["team-a"]), "identityId": "not-an-identity"}));
    match runtime.outcome(&id).await {
        Outcome::Error(e) => assert_eq!(e["errorType"], "BadRequest", "{e}"),
        other => panic!("a bad identity id was answered: {other:?}"),
    }
    assert_eq!(
        moto.attached(&identity).await,
        ["acme-live-team-b", "device-policy"]
    );
}
