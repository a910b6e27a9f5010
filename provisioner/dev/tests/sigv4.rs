//! SigV4 against botocore: requests signed by botocore (an independent signer) with the stack's
//! publisher key pair or identity-pool credentials are admitted as the right principal, the Events
//! WebSocket connect header map included; tampered bodies, signatures, keys and stale dates are
//! refused; presigned IoT URLs round-trip with the session token signed or appended after signing.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use groupcast_dev::auth::{AuthRequest, Authenticator, Identity, PresignedRequest};
use groupcast_dev::identity::{Issuer, identity_id, publisher_credentials};
use groupcast_dev::system::{AuthMode, System};
use serde_json::{Value, json};

const HOST: &str = "127.0.0.1:4510";

struct Fixture {
    dir: PathBuf,
    auth: Authenticator,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-sigv4-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = Arc::new(System {
        project: "demo".into(),
        region: "eu-west-1".into(),
        account_id: "123456789012".into(),
        ..System::default()
    });
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/eu-west-1_Local", "client").unwrap(),
    );
    let auth = Authenticator::new(system, issuer, &dir).unwrap();
    Fixture { dir, auth }
}

fn botocore(input: Value) -> Value {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("GROUPCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../.venv/bin/python"));
    let path = std::env::temp_dir().join(format!(
        "groupcast-dev-botocore-{}.json",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&path, input.to_string()).unwrap();
    let out = std::process::Command::new(&python)
        .arg(manifest.join("tests/sign_botocore.py"))
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the Python test peer {} (GROUPCAST_PYTHON): {e}",
                python.display()
            )
        });
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "sign_botocore.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lower(headers: &Value) -> BTreeMap<String, String> {
    headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .collect()
}

async fn check(
    auth: &Authenticator,
    headers: &BTreeMap<String, String>,
    path: &str,
    body: &[u8],
) -> Result<groupcast_dev::auth::Authenticated, groupcast_dev::auth::AuthFailure> {
    auth.authenticate(
        &AuthRequest {
            headers,
            method: "POST",
            path,
            body,
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            channel: None,
            operation: None,
        },
        &[AuthMode::Iam],
    )
    .await
}

/// The Events header set (aws-protocols.md §1), as Amplify and the docs sign it.
fn events_headers() -> Value {
    json!({
        "accept": "application/json, text/javascript",
        "content-encoding": "amz-1.0",
        "content-type": "application/json; charset=UTF-8",
        "host": HOST,
    })
}

#[tokio::test]
async fn a_publish_signed_by_botocore_with_the_publisher_key_pair_is_admitted_and_a_tampered_one_refused()
 {
    let f = fixture();
    let keys = publisher_credentials(&f.dir).unwrap();
    let body = r#"{"channel":"/live/team-a/news","events":["{\"a\":1}"]}"#;
    let signed = botocore(json!({
        "access_key": keys.access_key_id, "secret_key": keys.secret_access_key, "token": null,
        "region": "eu-west-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": body, "service": "appsync"}],
    }));
    let headers = lower(&signed["requests"][0]["headers"]);
    let a = check(&f.auth, &headers, "/event", body.as_bytes())
        .await
        .unwrap();
    assert_eq!(a.mode, AuthMode::Iam);
    assert_eq!(
        a.principal,
        "arn:aws:sts::123456789012:assumed-role/demo-publisher/local"
    );
    let v = serde_json::to_value(&a.identity).unwrap();
    assert_eq!(v["userArn"], a.principal.as_str());
    assert_eq!(v["accountId"], "123456789012");
    assert_eq!(v["cognitoIdentityPoolId"], Value::Null);

    // The body changed after signing.
    let tampered = body.replace("team-a", "team-b");
    assert!(
        check(&f.auth, &headers, "/event", tampered.as_bytes())
            .await
            .is_err()
    );
    // The signature changed.
    let mut h = headers.clone();
    let auth = h["authorization"].clone();
    let last = auth.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    h.insert(
        "authorization".into(),
        format!("{}{flipped}", &auth[..auth.len() - 1]),
    );
    assert!(check(&f.auth, &h, "/event", body.as_bytes()).await.is_err());
    // A signed header changed.
    let mut h = headers.clone();
    h.insert("host".into(), "127.0.0.1:9999".into());
    assert!(check(&f.auth, &h, "/event", body.as_bytes()).await.is_err());
    // Another path.
    assert!(
        check(&f.auth, &headers, "/graphql", body.as_bytes())
            .await
            .is_err()
    );
    // Signed with another secret.
    let other = botocore(json!({
        "access_key": keys.access_key_id, "secret_key": "not-the-secret", "token": null,
        "region": "eu-west-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": body, "service": "appsync"}],
    }));
    assert!(
        check(
            &f.auth,
            &lower(&other["requests"][0]["headers"]),
            "/event",
            body.as_bytes()
        )
        .await
        .is_err()
    );
    // An unknown access key.
    let unknown = botocore(json!({
        "access_key": "AKIAUNKNOWN000000000", "secret_key": keys.secret_access_key, "token": null,
        "region": "eu-west-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": body, "service": "appsync"}],
    }));
    assert!(
        check(
            &f.auth,
            &lower(&unknown["requests"][0]["headers"]),
            "/event",
            body.as_bytes()
        )
        .await
        .is_err()
    );
    // Another region or service in the scope.
    let wrong_region = botocore(json!({
        "access_key": keys.access_key_id, "secret_key": keys.secret_access_key, "token": null,
        "region": "us-east-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": body, "service": "appsync"}],
    }));
    assert!(
        check(
            &f.auth,
            &lower(&wrong_region["requests"][0]["headers"]),
            "/event",
            body.as_bytes()
        )
        .await
        .is_err()
    );
    // Not a mode this request may use.
    let r = f
        .auth
        .authenticate(
            &AuthRequest {
                headers: &headers,
                method: "POST",
                path: "/event",
                body: body.as_bytes(),
                source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                channel: None,
                operation: None,
            },
            &[AuthMode::Cognito, AuthMode::ApiKey],
        )
        .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn the_events_websocket_connect_header_map_signed_with_identity_pool_credentials_is_admitted_as_that_identity()
 {
    let f = fixture();
    let pool = f.auth.identity_pool().unwrap();
    let id = identity_id("eu-west-1", "alice");
    let c = pool
        .credentials_for(&id, Duration::from_secs(3600))
        .unwrap();
    // The connect signs POST https://{host}/event with body {} (event-api-websocket-protocol.html).
    let signed = botocore(json!({
        "access_key": c.access_key_id, "secret_key": c.secret_access_key, "token": c.session_token,
        "region": "eu-west-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": "{}", "service": "appsync"}],
    }));
    let headers = lower(&signed["requests"][0]["headers"]);
    assert!(headers.contains_key("x-amz-security-token"));
    let a = check(&f.auth, &headers, "/event", b"{}").await.unwrap();
    let Identity::Iam(iam) = &a.identity else {
        panic!("{:?}", a.identity)
    };
    assert_eq!(iam.cognito_identity_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        iam.cognito_identity_auth_type.as_deref(),
        Some("authenticated")
    );
    assert!(
        iam.cognito_identity_pool_id
            .as_deref()
            .unwrap()
            .starts_with("eu-west-1:")
    );
    // Without the session token, or with another one: refused.
    let mut h = headers.clone();
    h.remove("x-amz-security-token");
    assert!(check(&f.auth, &h, "/event", b"{}").await.is_err());
    let bob = pool
        .credentials_for(&identity_id("eu-west-1", "bob"), Duration::from_secs(3600))
        .unwrap();
    let mut h = headers.clone();
    h.insert("x-amz-security-token".into(), bob.session_token);
    assert!(check(&f.auth, &h, "/event", b"{}").await.is_err());
}

#[tokio::test]
async fn a_re_dated_request_is_refused() {
    let f = fixture();
    let keys = publisher_credentials(&f.dir).unwrap();
    let signed = botocore(json!({
        "access_key": keys.access_key_id, "secret_key": keys.secret_access_key, "token": null,
        "region": "eu-west-1",
        "requests": [{"method": "POST", "url": format!("https://{HOST}/event"), "headers": events_headers(), "body": "{}", "service": "appsync"}],
    }));
    let mut headers = lower(&signed["requests"][0]["headers"]);
    // (A correctly signed request 16 minutes old is refused by the skew rule: sigv4's unit tests.)
    headers.insert("x-amz-date".into(), "20200101T000000Z".into());
    assert!(check(&f.auth, &headers, "/event", b"{}").await.is_err());
}

#[tokio::test]
async fn a_presigned_iot_url_round_trips_with_the_token_appended_after_signing_or_signed() {
    let f = fixture();
    let pool = f.auth.identity_pool().unwrap();
    let id = identity_id("eu-west-1", "alice");
    let c = pool
        .credentials_for(&id, Duration::from_secs(3600))
        .unwrap();
    let host = "127.0.0.1:4512";
    let signed = botocore(json!({
        "access_key": c.access_key_id, "secret_key": c.secret_access_key, "token": c.session_token,
        "region": "eu-west-1",
        "presign": [
            {"url": format!("wss://{host}/mqtt"), "service": "iotdevicegateway", "expires": 300, "token_after": true},
            {"url": format!("wss://{host}/mqtt"), "service": "iotdevicegateway", "expires": 300, "token_after": false},
        ],
    }));
    fn req(query: &str) -> PresignedRequest<'_> {
        PresignedRequest {
            method: "GET",
            host: "127.0.0.1:4512",
            path: "/mqtt",
            query,
            service: "iotdevicegateway",
        }
    }
    for url in signed["presign"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        let query = url.split_once('?').unwrap().1;
        let caller = f.auth.verify_presigned(&req(query)).unwrap();
        assert_eq!(caller.cognito_identity_id.as_deref(), Some(id.as_str()));
        assert!(
            caller.arn.ends_with("/CognitoIdentityCredentials"),
            "{}",
            caller.arn
        );
        // Another service, path or host; a tampered signature: refused.
        assert!(
            f.auth
                .verify_presigned(&PresignedRequest {
                    service: "iotdata",
                    ..req(query)
                })
                .is_err()
        );
        assert!(
            f.auth
                .verify_presigned(&PresignedRequest {
                    path: "/other",
                    ..req(query)
                })
                .is_err()
        );
        assert!(
            f.auth
                .verify_presigned(&PresignedRequest {
                    host: "127.0.0.1:1",
                    ..req(query)
                })
                .is_err()
        );
        let tampered = query.replace("X-Amz-Expires=300", "X-Amz-Expires=301");
        assert!(f.auth.verify_presigned(&req(&tampered)).is_err());
        let no_token = query
            .split('&')
            .filter(|p| !p.starts_with("X-Amz-Security-Token="))
            .collect::<Vec<_>>()
            .join("&");
        assert!(
            f.auth.verify_presigned(&req(&no_token)).is_err(),
            "identity-pool keys need their token"
        );
    }
}
