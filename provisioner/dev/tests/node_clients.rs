//! The Node end-to-end suite's clients (tests/e2e/lib) against the stack's real auth, before the
//! whole `provisioner dev` runs: with a token from the real [`Issuer`], the suite's Cognito identity
//! calls (GetId, GetCredentialsForIdentity on the AWS port) get the user's identity, and the IoT
//! URL the suite presigns with those credentials (`@smithy/signature-v4`, the session token
//! appended after signing as AWS IoT wants) passes [`Authenticator::verify_presigned`] as that
//! identity; a tampered one does not. Needs `node` and `npm ci --prefix tests`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use groupcast_dev::auth::{Authenticator, PresignedRequest};
use groupcast_dev::identity::{Issuer, identity_id, identity_pool_id};
use groupcast_dev::system::System;
use groupcast_dev::{Ports, Stack};
use serde_json::{Value, json};

const POOL: &str = "us-east-1_E2eTest01";
const IOT_HOST: &str = "127.0.0.1:4512";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs tests/e2e/lib/identity-probe.mjs with `args`; its JSON answer.
fn probe(args: Value) -> Result<Value, String> {
    let script = repo().join("tests/e2e/lib/identity-probe.mjs");
    assert!(
        repo()
            .join("tests/node_modules/@smithy/signature-v4")
            .exists(),
        "tests/node_modules lacks @smithy/signature-v4: run `npm ci --prefix tests`"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(args.to_string())
        .output()
        .expect("node is needed for this test (Node 20, as .ci/run expects)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the probe prints JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_suites_node_clients_get_the_users_identity_and_presign_an_iot_url_the_stack_verifies()
{
    let dir = std::env::temp_dir().join(format!("groupcast-dev-node-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut system = System {
        project: "e2e".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        ..System::default()
    };
    system.identity.user_pool_id = Some(POOL.into());
    let system = Arc::new(system);
    let issuer = Arc::new(
        Issuer::load_or_create(
            &dir,
            &format!("https://127.0.0.1:{}/{POOL}", addr.port()),
            "client",
        )
        .unwrap(),
    );
    let auth = Authenticator::new(system.clone(), issuer.clone(), &dir).unwrap();
    let stack = Arc::new(Stack {
        system,
        auth,
        log: groupcast_dev::log::DecisionLog::capture().0,
        tls: None,
        state_dir: dir.clone(),
        ports: Ports::default(),
    });
    let _task = tokio::spawn(groupcast_dev::aws::serve(listener, stack.clone()));

    let token = issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let args = json!({
        "awsOrigin": format!("http://{addr}"),
        "identityPoolId": identity_pool_id("us-east-1", "e2e"),
        "token": token,
        "iotUrl": format!("wss://{IOT_HOST}/mqtt"),
        "region": "us-east-1",
    });
    let answer = tokio::task::spawn_blocking({
        let args = args.clone();
        move || probe(args)
    })
    .await
    .unwrap()
    .unwrap();
    let id = identity_id("us-east-1", "alice");
    assert_eq!(answer["identityId"], json!(id), "{answer}");

    let url = answer["url"].as_str().unwrap();
    let (base, query) = url.split_once('?').unwrap();
    assert_eq!(base, format!("wss://{IOT_HOST}/mqtt"));
    assert!(
        query.contains("X-Amz-Security-Token=") && !query.contains("X-Amz-SignedHeaders=host%3B"),
        "the session token is appended, only host is signed: {query}"
    );
    let req = |query| PresignedRequest {
        method: "GET",
        host: IOT_HOST,
        path: "/mqtt",
        query,
        service: "iotdevicegateway",
    };
    let caller = stack.auth.verify_presigned(&req(query)).unwrap();
    assert_eq!(caller.cognito_identity_id.as_deref(), Some(id.as_str()));

    // A tampered signature, or the URL presented at another path: refused.
    let sig = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("X-Amz-Signature="))
        .unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    let tampered = query.replace(sig, &flipped);
    assert!(stack.auth.verify_presigned(&req(&tampered)).is_err());
    assert!(
        stack
            .auth
            .verify_presigned(&PresignedRequest {
                path: "/other",
                ..req(query)
            })
            .is_err()
    );

    // A token whose payload was altered (alice claiming team-b): no identity, no credentials.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    claims["cognito:groups"] = json!(["team-b"]);
    parts[1] = b64.encode(claims.to_string());
    let mut forged = args.clone();
    forged["token"] = json!(parts.join("."));
    let refused = tokio::task::spawn_blocking(move || probe(forged))
        .await
        .unwrap();
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("NotAuthorizedException")),
        "{refused:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
