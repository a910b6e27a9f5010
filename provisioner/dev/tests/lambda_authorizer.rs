//! The real authorizer binary (functions/authorizer, `cargo build -p authorizer`) under the emulated
//! Lambda Runtime API: the AWS_LAMBDA mode admits a valid local token for its own group's channel
//! with the authorizer's handlerContext, refuses forged tokens, other groups and publishes, answers
//! the GraphQL shape with resolverContext, and a missing binary refuses instead of failing.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use groupcast_dev::auth::{AuthFailure, AuthRequest, Authenticated, Authenticator, Identity};
use groupcast_dev::identity::{Issuer, user_sub};
use groupcast_dev::lambda_rt::LambdaFunction;
use groupcast_dev::system::{AuthMode, LambdaAuthorizerSettings, System};
use serde_json::{Value, json};

fn authorizer_binary() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let bin = target.join("debug/authorizer");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p authorizer` first",
        bin.display()
    );
    bin
}

struct Fixture {
    dir: PathBuf,
    issuer: Arc<Issuer>,
    auth: Authenticator,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(binary: Option<PathBuf>) -> Fixture {
    fixture_with_pool(binary, None)
}

fn fixture_with_pool(binary: Option<PathBuf>, user_pool_id: Option<&str>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-lambda-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut system = System {
        project: "demo".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        ..System::default()
    };
    system.identity.lambda_authorizer = Some(LambdaAuthorizerSettings {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:demo-authorizer".into(),
        result_ttl_seconds: 300,
        binary,
        user_pool_id: user_pool_id.map(str::to_owned),
    });
    let issuer = Arc::new(
        Issuer::load_or_create(&dir, "https://127.0.0.1:4514/us-east-1_Local", "client").unwrap(),
    );
    let auth = Authenticator::new(Arc::new(system), issuer.clone(), &dir).unwrap();
    Fixture { dir, issuer, auth }
}

async fn ask(
    auth: &Authenticator,
    token: &str,
    path: &str,
    channel: Option<&str>,
    operation: &str,
) -> Result<Authenticated, AuthFailure> {
    let mut headers = BTreeMap::new();
    headers.insert("authorization".to_owned(), token.to_owned());
    headers.insert("host".to_owned(), "127.0.0.1:4510".to_owned());
    auth.authenticate(
        &AuthRequest {
            headers: &headers,
            method: "POST",
            path,
            body: b"{}",
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            channel,
            operation: Some(operation),
        },
        &[AuthMode::Lambda],
    )
    .await
}

#[tokio::test]
async fn the_real_authorizer_admits_a_valid_token_for_its_groups_and_refuses_a_forged_one() {
    let f = fixture(Some(authorizer_binary()));
    let token = f
        .issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let a = ask(&f.auth, &token, "/event", None, "EVENT_CONNECT")
        .await
        .unwrap();
    assert_eq!(a.mode, AuthMode::Lambda);
    let a = ask(
        &f.auth,
        &token,
        "/event",
        Some("/live/team-a/news"),
        "EVENT_SUBSCRIBE",
    )
    .await
    .unwrap();
    let Identity::Lambda(l) = &a.identity else {
        panic!("{:?}", a.identity)
    };
    assert_eq!(l.handler_context["sub"], json!(user_sub("alice")));
    let groups: Vec<String> =
        serde_json::from_str(l.handler_context["groups"].as_str().unwrap()).unwrap();
    assert_eq!(groups, ["team-a"]);
    assert_eq!(a.principal, user_sub("alice"));
    // Served again from the cache (same token, channel, operation).
    assert_eq!(
        ask(
            &f.auth,
            &token,
            "/event",
            Some("/live/team-a/news"),
            "EVENT_SUBSCRIBE"
        )
        .await
        .unwrap(),
        a
    );

    // The authorizer's own rules: other groups, wildcards and publishes are denied.
    for (channel, op) in [
        ("/live/team-b/news", "EVENT_SUBSCRIBE"),
        ("/live/*", "EVENT_SUBSCRIBE"),
        ("/live/team-a/news", "EVENT_PUBLISH"),
    ] {
        assert!(
            ask(&f.auth, &token, "/event", Some(channel), op)
                .await
                .is_err(),
            "{channel} {op}"
        );
    }
    // A token signed by another key, with the same issuer and audience: refused.
    let forger_dir =
        std::env::temp_dir().join(format!("groupcast-dev-forger-{}", uuid::Uuid::new_v4()));
    let forger = Issuer::load_or_create(&forger_dir, f.issuer.issuer_url(), "client").unwrap();
    let forged = forger
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let _ = std::fs::remove_dir_all(&forger_dir);
    assert!(
        ask(
            &f.auth,
            &forged,
            "/event",
            Some("/live/team-a/news"),
            "EVENT_SUBSCRIBE"
        )
        .await
        .is_err()
    );
    assert!(
        ask(&f.auth, "not-a-token", "/event", None, "EVENT_CONNECT")
            .await
            .is_err()
    );

    // The GraphQL request shape: the identity is {resolverContext}.
    let query = "subscription OnNews($onlyGroups: [String!]) { subscribe(onlyGroups: $onlyGroups) { topic data uuid } }";
    let a = ask(&f.auth, &token, "/graphql", None, query).await.unwrap();
    let v = serde_json::to_value(&a.identity).unwrap();
    assert_eq!(v["resolverContext"]["sub"], json!(user_sub("alice")), "{v}");
}

#[tokio::test]
async fn a_missing_authorizer_binary_refuses_instead_of_failing() {
    let f = fixture(None);
    let token = f
        .issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let e = ask(&f.auth, &token, "/event", None, "EVENT_CONNECT")
        .await
        .unwrap_err();
    assert!(e.message.contains("cargo build -p authorizer"), "{e}");
    let f = fixture(Some(PathBuf::from("/nonexistent/authorizer")));
    assert!(
        ask(&f.auth, &token, "/event", None, "EVENT_CONNECT")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_runtime_api_hands_a_function_its_invocations_and_returns_its_answers() {
    // Without configuration the authorizer reports an init error: invoke answers with it.
    let f = LambdaFunction::start(&authorizer_binary(), &[])
        .await
        .unwrap();
    let e = f
        .invoke(json!({"authorizationToken": "x"}))
        .await
        .unwrap_err();
    assert!(
        matches!(e, groupcast_dev::lambda_rt::InvokeError::Function(_)),
        "{e}"
    );
    // Configured: a malformed request is a deny, not an error; invocations run in order.
    let env = vec![
        (
            "GROUPCAST_JWT_ISSUER".to_owned(),
            "https://127.0.0.1:1/pool".to_owned(),
        ),
        ("GROUPCAST_JWT_AUDIENCES".to_owned(), "client".to_owned()),
    ];
    let f = LambdaFunction::start(&authorizer_binary(), &env)
        .await
        .unwrap();
    let (a, b) = tokio::join!(f.invoke(json!({"hello": "world"})), f.invoke(json!([1, 2])));
    assert_eq!(a.unwrap()["isAuthorized"], Value::Bool(false));
    assert_eq!(b.unwrap()["isAuthorized"], Value::Bool(false));
}

#[tokio::test]
async fn a_user_pool_token_is_judged_by_the_user_pool_before_the_lambda_authorizer() {
    let f = fixture(Some(authorizer_binary()));
    let token = f
        .issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let mut headers = BTreeMap::new();
    headers.insert("authorization".to_owned(), token);
    let req = AuthRequest {
        headers: &headers,
        method: "POST",
        path: "/event",
        body: b"{}",
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        channel: Some("/live/team-a/news"),
        operation: Some("EVENT_SUBSCRIBE"),
    };
    let a = f
        .auth
        .authenticate(&req, &[AuthMode::Lambda, AuthMode::Cognito])
        .await
        .unwrap();
    assert_eq!(a.mode, AuthMode::Cognito);
    // Anything else goes to the authorizer, which refuses what it cannot verify.
    let mut opaque = BTreeMap::new();
    opaque.insert("authorization".to_owned(), "opaque-token".to_owned());
    let req = AuthRequest {
        headers: &opaque,
        ..req
    };
    assert!(
        f.auth
            .authenticate(&req, &[AuthMode::Lambda, AuthMode::Cognito])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_user_pool_authorizer_without_the_stacks_functions_endpoint_refuses_rather_than_reading_the_token()
 {
    // groups_source = "user-pool" but no groupcast_dev::functions::start: the authorizer has no
    // directory to ask, and must not fall back to the token's (possibly stale) groups.
    let f = fixture_with_pool(Some(authorizer_binary()), Some("us-east-1_Local"));
    let token = f
        .issuer
        .mint("alice", &["team-a".to_owned()], Duration::from_secs(600))
        .unwrap();
    let e = ask(
        &f.auth,
        &token,
        "/event",
        Some("/live/team-a/news"),
        "EVENT_SUBSCRIBE",
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("functions endpoint"), "{e}");
}
