//! The AWS port: groupcast-auth's `CognitoMembership` (the real user pools SDK) reads a user's
//! current groups from it across pages; the Admin* group calls change the directory; Cognito
//! identity's GetId / GetCredentialsForIdentity give the deterministic identity id and credentials
//! the SigV4 check accepts; the JWKS is served where Cognito serves it; unknown calls get AWS's
//! error shape.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use groupcast_auth::membership::{CognitoMembership, Membership, MembershipError, UserPoolId};
use groupcast_dev::auth::Authenticator;
use groupcast_dev::identity::{Directory, Issuer, identity_id};
use groupcast_dev::system::System;
use groupcast_dev::{Ports, Stack};

const POOL: &str = "us-east-1_Local";

struct Port {
    url: String,
    stack: Arc<Stack>,
    issuer: Arc<Issuer>,
    dir: PathBuf,
    _task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Port {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start() -> Port {
    let dir = std::env::temp_dir().join(format!("groupcast-dev-aws-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut system = System {
        project: "demo".into(),
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
    let task = tokio::spawn(groupcast_dev::aws::serve(listener, stack.clone()));
    Port {
        url: format!("http://{addr}"),
        stack,
        issuer,
        dir,
        _task: task,
    }
}

fn idp_config(url: &str) -> aws_sdk_cognitoidentityprovider::config::Builder {
    use aws_sdk_cognitoidentityprovider::config;
    config::Builder::new()
        .behavior_version(config::BehaviorVersion::latest())
        .credentials_provider(config::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .endpoint_url(url)
        .retry_config(config::retry::RetryConfig::disabled())
}

fn groups(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn cognito_membership_reads_the_current_groups_from_the_aws_port_across_pages() {
    let port = start().await;
    let directory = Directory::open(&port.dir);
    let many: Vec<String> = (0..75).map(|i| format!("g{i:03}")).collect();
    directory.set_groups("alice", &many).unwrap();
    directory.set_groups("bob", &groups(&["team-b"])).unwrap();
    let m = CognitoMembership::new(idp_config(&port.url), UserPoolId::parse(POOL).unwrap());
    assert_eq!(m.current_groups("alice").await.unwrap(), many);
    assert_eq!(m.current_groups("bob").await.unwrap(), groups(&["team-b"]));
    // By sub too, as AdminListGroupsForUser accepts.
    let sub = groupcast_dev::identity::user_sub("bob");
    assert_eq!(m.current_groups(&sub).await.unwrap(), groups(&["team-b"]));
    let e = m.current_groups("nobody").await.unwrap_err();
    assert!(matches!(e, MembershipError::UserNotFound { .. }), "{e}");
    // Another pool: not found, never someone's groups.
    let other = CognitoMembership::new(
        idp_config(&port.url),
        UserPoolId::parse("us-east-1_Other").unwrap(),
    );
    assert!(other.current_groups("bob").await.is_err());
}

#[tokio::test]
async fn admin_group_calls_change_the_directory() {
    let port = start().await;
    let directory = Directory::open(&port.dir);
    directory.set_groups("alice", &groups(&["team-a"])).unwrap();
    let client = aws_sdk_cognitoidentityprovider::Client::from_conf(
        idp_config(&port.url)
            .region(aws_sdk_cognitoidentityprovider::config::Region::new(
                "us-east-1",
            ))
            .build(),
    );
    client
        .admin_add_user_to_group()
        .user_pool_id(POOL)
        .username("alice")
        .group_name("editors")
        .send()
        .await
        .unwrap();
    assert_eq!(
        directory.groups("alice"),
        Some(groups(&["editors", "team-a"]))
    );
    client
        .admin_remove_user_from_group()
        .user_pool_id(POOL)
        .username("alice")
        .group_name("team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(directory.groups("alice"), Some(groups(&["editors"])));
    let e = client
        .admin_add_user_to_group()
        .user_pool_id(POOL)
        .username("nobody")
        .group_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata::code(&e),
        Some("UserNotFoundException")
    );
    let got = client
        .admin_get_user()
        .user_pool_id(POOL)
        .username("alice")
        .send()
        .await
        .unwrap();
    assert!(got.enabled());
    assert_eq!(got.username(), "alice");
}

#[tokio::test]
async fn get_id_and_get_credentials_for_identity_give_the_users_identity_and_working_credentials() {
    let port = start().await;
    use aws_sdk_cognitoidentity::config;
    let client = aws_sdk_cognitoidentity::Client::from_conf(
        config::Builder::new()
            .behavior_version(config::BehaviorVersion::latest())
            .region(config::Region::new("us-east-1"))
            .endpoint_url(&port.url)
            .retry_config(config::retry::RetryConfig::disabled())
            .build(),
    );
    let provider = groupcast_dev::auth::provider_name(port.issuer.issuer_url());
    let token = port
        .issuer
        .mint("alice", &groups(&["team-a"]), Duration::from_secs(600))
        .unwrap();
    let pool_id = groupcast_dev::identity::identity_pool_id("us-east-1", "demo");
    let id = client
        .get_id()
        .identity_pool_id(&pool_id)
        .logins(&provider, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        id.identity_id(),
        Some(identity_id("us-east-1", "alice").as_str())
    );
    let creds = client
        .get_credentials_for_identity()
        .identity_id(id.identity_id().unwrap())
        .logins(&provider, &token)
        .send()
        .await
        .unwrap();
    let c = creds.credentials().unwrap();
    let pool = port.stack.auth.identity_pool().unwrap();
    let (resolved, secret) = pool
        .resolve(c.access_key_id().unwrap(), c.session_token())
        .unwrap();
    assert_eq!(resolved, identity_id("us-east-1", "alice"));
    assert_eq!(secret, c.secret_key().unwrap());
    // A forged session token, or another user's identity id, is refused.
    assert!(
        pool.resolve(c.access_key_id().unwrap(), Some("9999999999.AAAA"))
            .is_none()
    );
    let e = client
        .get_credentials_for_identity()
        .identity_id(identity_id("us-east-1", "bob"))
        .logins(&provider, &token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_cognitoidentity::error::ProvideErrorMetadata::code(&e),
        Some("NotAuthorizedException")
    );
    // A token of another issuer: refused.
    let dir2 = std::env::temp_dir().join(format!("groupcast-dev-aws-{}", uuid::Uuid::new_v4()));
    let forger = Issuer::load_or_create(&dir2, port.issuer.issuer_url(), "client").unwrap();
    let forged = forger.mint("alice", &[], Duration::from_secs(600)).unwrap();
    let _ = std::fs::remove_dir_all(&dir2);
    let e = client
        .get_id()
        .identity_pool_id(&pool_id)
        .logins(&provider, &forged)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_cognitoidentity::error::ProvideErrorMetadata::code(&e),
        Some("NotAuthorizedException")
    );
}

#[tokio::test]
async fn the_jwks_is_served_where_cognito_serves_it_and_unknown_calls_get_aws_errors() {
    let port = start().await;
    let req = |path: &str, target: Option<&str>| groupcast_dev::aws::AwsRequest {
        method: if target.is_some() {
            "POST".into()
        } else {
            "GET".into()
        },
        path: path.into(),
        query: String::new(),
        headers: target
            .iter()
            .map(|t| ("x-amz-target".to_owned(), t.to_string()))
            .collect(),
        body: b"{}".to_vec(),
    };
    let r = groupcast_dev::aws::handle(
        &port.stack,
        &req(&format!("/{POOL}/.well-known/jwks.json"), None),
    )
    .await;
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, port.issuer.jwks());
    let r =
        groupcast_dev::aws::handle(&port.stack, &req("/other/.well-known/jwks.json", None)).await;
    assert_eq!(r.status, 404);
    let r = groupcast_dev::aws::handle(
        &port.stack,
        &req(
            "/",
            Some("AWSCognitoIdentityProviderService.DeleteUserPool"),
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    assert!(body["message"].as_str().unwrap().contains("DeleteUserPool"));
    let r = groupcast_dev::aws::handle(&port.stack, &req("/", Some("Nonsense"))).await;
    assert_eq!(r.status, 400);
    let mut bad = req("/", Some("AWSCognitoIdentityProviderService.AdminGetUser"));
    bad.body = b"[1,2".to_vec();
    let r = groupcast_dev::aws::handle(&port.stack, &bad).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["__type"],
        "SerializationException"
    );
}
