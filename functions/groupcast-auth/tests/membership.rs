//! `CognitoMembership` (feature `cognito`) against a local stand-in for the user pools API (the
//! awsJson1.1 protocol on 127.0.0.1) and against moto's user pools: it asks the configured pool
//! about the given user with SigV4-signed JSON 1.1 calls, follows `NextToken` across pages, treats
//! a disabled user as holding no groups, reports a deleted user and a failed lookup as errors,
//! never as an empty list, retries only what is transient, and goes where the SDK's endpoint
//! settings say.

mod support;

use std::sync::{Arc, Mutex};

use groupcast_auth::membership::{CognitoMembership, Membership, MembershipError, UserPoolId};
use serde_json::{Value, json};
use support::{Http, Req, reply};

const POOL: &str = "eu-west-1_TestPool9";

/// The stand-in's users: name → (enabled, groups); every request it saw (target, body).
#[derive(Default)]
struct Pool {
    users: Vec<(&'static str, bool, Vec<String>)>,
    /// Fail every call with this HTTP status and error code.
    fail: Option<(u16, &'static str)>,
    /// With `fail`: only the first this many calls (0 = every call).
    fail_first: usize,
    seen: Vec<(String, Value)>,
    /// The `Authorization` header of every request.
    auth: Vec<String>,
}

fn error(status: u16, code: &str) -> support::Reply {
    reply(
        status,
        json!({"__type": code, "message": format!("{code} from the stand-in")}).to_string(),
    )
}

fn answer(pool: &mut Pool, req: &Req) -> support::Reply {
    let target = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    pool.seen.push((target.clone(), body.clone()));
    pool.auth.push(
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    if let Some((status, code)) = pool.fail
        && (pool.fail_first == 0 || pool.seen.len() <= pool.fail_first)
    {
        return error(status, code);
    }
    if body["UserPoolId"] != POOL {
        return error(400, "ResourceNotFoundException");
    }
    let Some((name, enabled, groups)) = pool
        .users
        .iter()
        .find(|(n, _, _)| body["Username"] == *n)
        .cloned()
    else {
        return error(400, "UserNotFoundException");
    };
    match target.as_str() {
        "AWSCognitoIdentityProviderService.AdminGetUser" => reply(
            200,
            json!({"Username": name, "Enabled": enabled, "UserStatus": "CONFIRMED"}).to_string(),
        ),
        "AWSCognitoIdentityProviderService.AdminListGroupsForUser" => {
            // Pages of two, to make the client follow NextToken.
            let start: usize = body["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = groups
                .iter()
                .skip(start)
                .take(2)
                .map(|g| json!({"GroupName": g, "UserPoolId": POOL}))
                .collect();
            let mut out = json!({ "Groups": page });
            if start + 2 < groups.len() {
                out["NextToken"] = json!((start + 2).to_string());
            }
            reply(200, out.to_string())
        }
        other => error(400, &format!("UnknownOperation {other}")),
    }
}

async fn stand_in(pool: Pool) -> (Http, Arc<Mutex<Pool>>, CognitoMembership) {
    stand_in_with(pool, 1).await
}

/// The stand-in, and a client allowed `attempts` attempts per call (`AWS_MAX_ATTEMPTS`).
async fn stand_in_with(pool: Pool, attempts: u32) -> (Http, Arc<Mutex<Pool>>, CognitoMembership) {
    let pool = Arc::new(Mutex::new(pool));
    let p = pool.clone();
    let http = Http::serve(move |req: Req| {
        let p = p.clone();
        async move { answer(&mut p.lock().unwrap(), &req) }
    })
    .await;
    let sdk = sdk_config(&http.url(""), attempts);
    let membership = CognitoMembership::new(&sdk, UserPoolId::parse(POOL).unwrap());
    (http, pool, membership)
}

/// What `aws_config::load_from_env()` would give with `AWS_ENDPOINT_URL=endpoint`,
/// `AWS_MAX_ATTEMPTS=attempts` and fixed keys.
fn sdk_config(endpoint: &str, attempts: u32) -> aws_config::SdkConfig {
    use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKID", "secret", None, None, "test",
        )))
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts))
        .build()
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_current_groups_are_read_from_the_pool_across_every_page_for_that_user_only() {
    let (_http, pool, m) = stand_in(Pool {
        users: vec![
            (
                "alice",
                true,
                groups(&["team-c", "admins", "team-a", "team-b", "x"]),
            ),
            ("bob", true, groups(&["bob-only"])),
        ],
        ..Pool::default()
    })
    .await;
    assert_eq!(m.pool().region(), "eu-west-1");
    let got = m.current_groups("alice").await.unwrap();
    assert_eq!(got, ["admins", "team-a", "team-b", "team-c", "x"]);
    let seen = pool.lock().unwrap().seen.clone();
    let targets: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "AWSCognitoIdentityProviderService.AdminGetUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
            "AWSCognitoIdentityProviderService.AdminListGroupsForUser",
        ],
        "one AdminGetUser, then three pages"
    );
    for (_, body) in &seen {
        assert_eq!(body["UserPoolId"], POOL);
        assert_eq!(body["Username"], "alice");
    }
}

#[tokio::test]
async fn a_disabled_user_holds_no_groups_and_their_groups_are_never_listed() {
    let (_http, pool, m) = stand_in(Pool {
        users: vec![("carol", false, groups(&["team-a"]))],
        ..Pool::default()
    })
    .await;
    let e = m.current_groups("carol").await.unwrap_err();
    assert_eq!(
        e,
        MembershipError::UserDisabled {
            user: "carol".into()
        }
    );
    assert!(e.user_is_gone());
    assert_eq!(pool.lock().unwrap().seen.len(), 1, "only AdminGetUser");
}

#[tokio::test]
async fn a_deleted_user_is_not_found_and_a_failed_lookup_is_an_error_not_an_empty_list() {
    let (_http, pool, m) = stand_in(Pool::default()).await;
    let e = m.current_groups("dave").await.unwrap_err();
    assert_eq!(
        e,
        MembershipError::UserNotFound {
            user: "dave".into()
        }
    );

    pool.lock().unwrap().users = vec![("erin", true, groups(&["team-a"]))];
    for (status, code) in [
        (400, "TooManyRequestsException"),
        (400, "NotAuthorizedException"),
        (500, "InternalErrorException"),
    ] {
        pool.lock().unwrap().fail = Some((status, code));
        let e = m.current_groups("erin").await.unwrap_err();
        assert!(!e.user_is_gone(), "{code}: {e}");
        assert!(
            matches!(&e, MembershipError::Lookup { operation: "AdminGetUser", message, .. } if message.contains(code)),
            "{code}: {e}"
        );
    }
}

#[tokio::test]
async fn a_user_name_cognito_could_not_hold_is_refused_before_any_call() {
    let (_http, pool, m) = stand_in(Pool::default()).await;
    for bad in ["", "two words", &"x".repeat(129)] {
        let e = m.current_groups(bad).await.unwrap_err();
        assert!(matches!(e, MembershipError::BadUser { .. }), "{bad:?}: {e}");
    }
    assert!(pool.lock().unwrap().seen.is_empty());
}

#[tokio::test]
async fn every_call_is_sigv4_signed_for_cognito_idp_in_the_pools_region() {
    let (_http, pool, m) = stand_in(Pool {
        users: vec![("alice", true, groups(&["team-a"]))],
        ..Pool::default()
    })
    .await;
    m.current_groups("alice").await.unwrap();
    let auth = pool.lock().unwrap().auth.clone();
    assert_eq!(auth.len(), 2);
    for a in auth {
        assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{a}");
        assert!(a.contains("/eu-west-1/cognito-idp/aws4_request"), "{a}");
        assert!(
            a.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"),
            "{a}"
        );
    }
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_within_max_attempts_and_refusals_are_not() {
    // Two throttled answers, then the real one: three attempts suffice.
    let (_http, pool, m) = stand_in_with(
        Pool {
            users: vec![("alice", true, groups(&["team-a"]))],
            fail: Some((400, "TooManyRequestsException")),
            fail_first: 2,
            ..Pool::default()
        },
        3,
    )
    .await;
    assert_eq!(m.current_groups("alice").await.unwrap(), ["team-a"]);
    assert_eq!(
        pool.lock().unwrap().seen.len(),
        4,
        "3 AdminGetUser + 1 list"
    );

    // A 500 every time: exactly max_attempts calls, then the error.
    let (_http, pool, m) = stand_in_with(
        Pool {
            users: vec![("alice", true, groups(&["team-a"]))],
            fail: Some((500, "InternalErrorException")),
            ..Pool::default()
        },
        3,
    )
    .await;
    let e = m.current_groups("alice").await.unwrap_err();
    assert!(
        matches!(&e, MembershipError::Lookup { message, .. } if message.contains("InternalErrorException")),
        "{e}"
    );
    assert_eq!(pool.lock().unwrap().seen.len(), 3);

    // Not authorized is final: one call.
    let (_http, pool, m) = stand_in_with(
        Pool {
            users: vec![("alice", true, groups(&["team-a"]))],
            fail: Some((400, "NotAuthorizedException")),
            ..Pool::default()
        },
        3,
    )
    .await;
    m.current_groups("alice").await.unwrap_err();
    assert_eq!(pool.lock().unwrap().seen.len(), 1);
}

#[tokio::test]
async fn a_malformed_or_endless_answer_is_an_error_not_a_list() {
    // Every page hands back the same NextToken: the client stops and fails, closed.
    let loop_pool = Arc::new(Mutex::new(0u32));
    let seen = loop_pool.clone();
    let http = Http::serve(move |req: Req| {
        let seen = seen.clone();
        async move {
            *seen.lock().unwrap() += 1;
            let target = req
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if target.ends_with("AdminGetUser") {
                reply(
                    200,
                    json!({"Username": "alice", "Enabled": true}).to_string(),
                )
            } else {
                reply(
                    200,
                    json!({"Groups": [{"GroupName": "g"}], "NextToken": "again"}).to_string(),
                )
            }
        }
    })
    .await;
    let m = CognitoMembership::new(
        &sdk_config(&http.url(""), 1),
        UserPoolId::parse(POOL).unwrap(),
    );
    let e = m.current_groups("alice").await.unwrap_err();
    assert!(
        matches!(&e, MembershipError::Lookup { operation: "AdminListGroupsForUser", message, .. } if message.contains("pages")),
        "{e}"
    );
    assert_eq!(
        *loop_pool.lock().unwrap(),
        101,
        "one AdminGetUser, 100 pages"
    );

    // A user whose `Enabled` is missing is not taken as enabled.
    let http =
        Http::serve(
            |_req: Req| async move { reply(200, json!({"Username": "alice"}).to_string()) },
        )
        .await;
    let m = CognitoMembership::new(
        &sdk_config(&http.url(""), 1),
        UserPoolId::parse(POOL).unwrap(),
    );
    assert!(matches!(
        m.current_groups("alice").await.unwrap_err(),
        MembershipError::UserDisabled { .. }
    ));
}

/// A profile or `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` answering for the user pools service only.
#[derive(Debug)]
struct ServiceEndpoint(String);

impl aws_types::service_config::LoadServiceConfig for ServiceEndpoint {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        (key.service_id() == "Cognito Identity Provider" && key.env() == "AWS_ENDPOINT_URL")
            .then(|| self.0.clone())
    }
}

#[test]
fn the_endpoint_is_the_service_specific_override_then_the_global_one_then_the_pools_region() {
    let pool = || UserPoolId::parse(POOL).unwrap();
    let global = sdk_config("http://127.0.0.1:1", 1);
    assert_eq!(
        CognitoMembership::new(&global, pool()).endpoint(),
        "http://127.0.0.1:1"
    );
    let specific = global
        .to_builder()
        .service_config(ServiceEndpoint("http://127.0.0.1:2".into()))
        .build();
    assert_eq!(
        CognitoMembership::new(&specific, pool()).endpoint(),
        "http://127.0.0.1:2"
    );
    let none = aws_config::SdkConfig::builder().build();
    assert_eq!(
        CognitoMembership::new(&none, pool()).endpoint(),
        "https://cognito-idp.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        CognitoMembership::new(&none, UserPoolId::parse("cn-north-1_Abc").unwrap()).endpoint(),
        "https://cognito-idp.cn-north-1.amazonaws.com.cn"
    );
}

#[tokio::test]
async fn without_credentials_every_lookup_fails_closed() {
    let (_http, pool, _) = stand_in(Pool::default()).await;
    let http = Http::serve(|_req: Req| async move { reply(200, "{}") }).await;
    let sdk = aws_config::SdkConfig::builder()
        .endpoint_url(http.url(""))
        .build();
    let m = CognitoMembership::new(&sdk, UserPoolId::parse(POOL).unwrap());
    let e = m.current_groups("alice").await.unwrap_err();
    assert!(
        matches!(&e, MembershipError::Lookup { message, .. } if message.contains("credentials")),
        "{e}"
    );
    assert!(pool.lock().unwrap().seen.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Against moto's user pools (GROUPCAST_PYTHON, the project's venv).

/// A moto server on a free loopback port, killed on drop.
struct Moto {
    url: String,
    python: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl Moto {
    async fn start() -> Moto {
        let python = std::env::var_os("GROUPCAST_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
            });
        assert!(
            python.exists(),
            "moto is needed: {} does not exist. Create the venv (python3 -m venv .venv && \
             .venv/bin/pip install -r tests/requirements.txt) or set GROUPCAST_PYTHON",
            python.display()
        );
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
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Moto {
            url: format!("http://127.0.0.1:{port}"),
            python,
            _child: child,
        }
    }

    /// Runs a boto3 snippet with `idp` (cognito-idp) bound to this server; it sets `out`.
    async fn boto3(&self, snippet: &str) -> Value {
        let script = format!(
            "import boto3, json\n\
             idp = boto3.client('cognito-idp', endpoint_url={url:?}, region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\nout = None\n\
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
}

#[tokio::test]
async fn against_moto_the_groups_span_pages_a_disabled_user_and_a_deleted_user_hold_none_and_a_wrong_pool_is_an_error()
 {
    let moto = Moto::start().await;
    // 130 groups for alice: three pages of at most 60. bob holds one, carol is disabled.
    let pool = moto
        .boto3(
            "p = idp.create_user_pool(PoolName='p')['UserPool']['Id']\n\
             for u in ['alice', 'bob', 'carol']:\n    idp.admin_create_user(UserPoolId=p, Username=u)\n\
             for i in range(130):\n    g = 'g-%03d' % i\n    idp.create_group(UserPoolId=p, GroupName=g)\n    \
             idp.admin_add_user_to_group(UserPoolId=p, Username='alice', GroupName=g)\n\
             idp.create_group(UserPoolId=p, GroupName='bob-only')\n\
             idp.admin_add_user_to_group(UserPoolId=p, Username='bob', GroupName='bob-only')\n\
             idp.admin_add_user_to_group(UserPoolId=p, Username='carol', GroupName='g-000')\n\
             idp.admin_disable_user(UserPoolId=p, Username='carol')\n\
             out = p",
        )
        .await;
    let pool = pool.as_str().unwrap().to_owned();
    let sdk = sdk_config(&moto.url, 1);
    let m = CognitoMembership::new(&sdk, UserPoolId::parse(&pool).unwrap());

    let alice = m.current_groups("alice").await.unwrap();
    let want: Vec<String> = (0..130).map(|i| format!("g-{i:03}")).collect();
    assert_eq!(alice, want, "every page, sorted");
    assert_eq!(m.current_groups("bob").await.unwrap(), ["bob-only"]);
    assert_eq!(
        m.current_groups("carol").await.unwrap_err(),
        MembershipError::UserDisabled {
            user: "carol".into()
        }
    );
    let e = m.current_groups("dave").await.unwrap_err();
    assert_eq!(
        e,
        MembershipError::UserNotFound {
            user: "dave".into()
        }
    );
    assert!(e.user_is_gone());

    // Removing alice from a group is seen on the next lookup: no cache, no token.
    moto.boto3(&format!(
        "idp.admin_remove_user_from_group(UserPoolId={pool:?}, Username='alice', GroupName='g-064')"
    ))
    .await;
    let after = m.current_groups("alice").await.unwrap();
    assert_eq!(after.len(), 129);
    assert!(!after.contains(&"g-064".to_owned()));

    // A pool moto does not hold: an error (ResourceNotFoundException), not "no groups".
    let other = CognitoMembership::new(&sdk, UserPoolId::parse("us-east-1_Missing1").unwrap());
    let e = other.current_groups("alice").await.unwrap_err();
    assert!(!e.user_is_gone(), "{e}");
    assert!(
        matches!(&e, MembershipError::Lookup { operation: "AdminGetUser", message, .. } if message.contains("ResourceNotFoundException")),
        "{e}"
    );
}
