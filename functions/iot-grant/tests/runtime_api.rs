//! The real `iot-grant` binary under an emulated Lambda Runtime API, verifying ID tokens against a
//! local JWKS server and calling AWS through a local stub in front of a moto server (real Cognito
//! identities and real IoT policies and attachments there).
//!
//! moto 5.2.5 lacks two things the grant relies on, so the stub serves them and forwards the rest:
//! - `cognito-identity:GetId` *with logins*: moto ignores `Logins` and mints a new identity per
//!   call. The stub answers as Cognito does, the same identity for the same user pool login,
//!   from identities created in moto (so IoT accepts them as targets), and records every request.
//! - IoT `ListTagsForResource`: moto does not implement IoT tags; the stub holds the tags.
//!
//! moto serves the user pool too (users, groups, AdminGetUser, AdminListGroupsForUser). It looks
//! users up by `Username` only, where Cognito also takes the `sub`; the users here are created with
//! their `Username` equal to the `sub` of the tokens the test mints, as the function asks by `sub`.
//!
//! The attacks: a token for user A naming identity B; another project's policies (tagged
//! otherwise, or untagged) whose names match the pattern; a forged token; a token minted before a
//! removal (its `cognito:groups` still lists the group) replayed after it; a sync aimed at one
//! user touching anyone else; a user pool that cannot be asked.

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::Full;
use hyper::Response;
use hyper::body::Bytes;
use serde_json::{Value, json};
use support::{
    Http, JwksServer, Outcome, Req, RuntimeApi, TestKey, id_claims, jwks, spawn_function,
};

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

    /// Runs a boto3 snippet with `iot`, `ci` (cognito-identity) and `idp` (cognito-idp) clients
    /// bound to this server; the snippet sets `out`, printed as JSON.
    async fn boto3(&self, snippet: &str) -> Value {
        let script = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url={url:?}, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             iot = boto3.client('iot', **kw)\nci = boto3.client('cognito-identity', **kw)\n\
             idp = boto3.client('cognito-idp', **kw)\nout = None\n\
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

    /// The mapping's record for `user`: the thing's attributes, or `null` when there is none.
    async fn thing(&self, user: &str) -> Value {
        self.boto3(&format!(
            "try:\n    out = iot.describe_thing(thingName='groupcast_acme_' + {user:?})['attributes']\n\
             except iot.exceptions.ResourceNotFoundException:\n    out = None"
        ))
        .await
    }
}

/// What the stub knows and saw.
#[derive(Default)]
struct StubState {
    identity_pool: String,
    /// The user pool login provider, `cognito-idp.us-east-1.amazonaws.com/<user pool id>`.
    provider: String,
    /// Answer every user pools (cognito-idp) call with a 500, as an outage would.
    fail_user_pool: bool,
    /// A user pool login's `sub` → its identity id (created in moto).
    identities: HashMap<String, String>,
    /// IoT policy ARN → tags.
    tags: HashMap<String, Vec<(String, String)>>,
    /// Every GetId request body.
    get_id: Vec<Value>,
}

/// The stub in front of moto (see the module docs).
struct Stub {
    http: Http,
    state: Arc<Mutex<StubState>>,
}

fn aws_reply(status: u16, content_type: &str, body: Value) -> support::Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Cognito's answer to GetId for `body`: the identity of a valid user pool login, or the error
/// Cognito gives.
fn get_id(state: &StubState, body: &Value) -> (u16, Value) {
    let refuse = |message: &str| {
        (
            400,
            json!({"__type": "NotAuthorizedException", "message": message}),
        )
    };
    if body["IdentityPoolId"] != json!(state.identity_pool) {
        return (
            400,
            json!({"__type": "ResourceNotFoundException", "message": "IdentityPool not found"}),
        );
    }
    let logins = body["Logins"].as_object().cloned().unwrap_or_default();
    let (Some(token), 1) = (
        logins.get(&state.provider).and_then(Value::as_str),
        logins.len(),
    ) else {
        return refuse("Invalid login token. Not a valid user pool login for this identity pool.");
    };
    // Cognito verifies the token itself; the function verified it already, so the stub only reads
    // whose it is.
    let claims: Option<Value> = token.split('.').nth(1).and_then(|p| {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    });
    let Some(claims) = claims.filter(|c| c["iss"] == json!(format!("https://{}", state.provider)))
    else {
        return refuse("Invalid login token. Issuer doesn't match providerName");
    };
    match claims["sub"].as_str().and_then(|s| state.identities.get(s)) {
        Some(id) => (200, json!({"IdentityId": id})),
        None => refuse("unknown user"),
    }
}

impl Stub {
    async fn start(moto: &str) -> Stub {
        let state = Arc::new(Mutex::new(StubState::default()));
        let (s, moto) = (state.clone(), moto.to_owned());
        let client = reqwest::Client::new();
        let http = Http::serve(move |req: Req| {
            let (s, moto, client) = (s.clone(), moto.clone(), client.clone());
            async move {
                let target = req
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok());
                if target.is_some_and(|t| t.starts_with("AWSCognitoIdentityProviderService."))
                    && s.lock().unwrap().fail_user_pool
                {
                    return aws_reply(
                        500,
                        "application/x-amz-json-1.1",
                        json!({"__type": "InternalErrorException", "message": "injected outage"}),
                    );
                }
                if target == Some("AWSCognitoIdentityService.GetId") {
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    let mut state = s.lock().unwrap();
                    state.get_id.push(body.clone());
                    let (status, answer) = get_id(&state, &body);
                    return aws_reply(status, "application/x-amz-json-1.1", answer);
                }
                if req.method == hyper::Method::GET && req.path.starts_with("/tags?") {
                    let arn = req.path["/tags?".len()..]
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("resourceArn="))
                        .map(percent_decode)
                        .unwrap_or_default();
                    let state = s.lock().unwrap();
                    let tags: Vec<Value> = state
                        .tags
                        .get(&arn)
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| json!({"Key": k, "Value": v}))
                        .collect();
                    return aws_reply(200, "application/json", json!({ "tags": tags }));
                }
                forward(&client, &moto, req).await
            }
        })
        .await;
        Stub { http, state }
    }

    fn url(&self) -> String {
        self.http.url("")
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], s.get(i + 1..i + 3)) {
            (b'%', Some(hex)) if u8::from_str_radix(hex, 16).is_ok() => {
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

async fn forward(client: &reqwest::Client, moto: &str, req: Req) -> support::Reply {
    let mut request = client.request(req.method.clone(), format!("{moto}{}", req.path));
    for (name, value) in &req.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.body(req.body.clone()).send().await.unwrap();
    let mut reply = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !["content-length", "transfer-encoding", "connection"].contains(&name.as_str()) {
            reply = reply.header(name, value);
        }
    }
    reply
        .body(Full::new(answer.bytes().await.unwrap()))
        .unwrap()
}

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

/// Project `acme` with the default `{project}-{group}` pattern, two users' identities in moto,
/// and policies: `acme`'s own, project `acme-live`'s `acme-live-team-a` (which `acme-{group}`
/// matches, and which `acme`'s group `live-team-a` would want by name), an untagged
/// `acme-handmade`, and a foreign `device-policy`. The user pool (in moto) holds A in `team-a`,
/// `live-team-a` and `Team_X` (not an IoT group), and B in `team-b`.
struct World {
    moto: Moto,
    stub: Stub,
    jwks: JwksServer,
    key: TestKey,
    runtime: RuntimeApi,
    user_pool: String,
    a: String,
    b: String,
    _child: tokio::process::Child,
}

// Cognito subs are UUIDs; moto's users are named by them (module docs).
const A_SUB: &str = "0a1b2c3d-0000-4000-8000-00000000000a";
const B_SUB: &str = "0a1b2c3d-0000-4000-8000-00000000000b";

impl World {
    async fn start() -> World {
        let moto = Moto::start().await;
        let setup = moto
            .boto3(&format!(
                "pool = ci.create_identity_pool(IdentityPoolName='groupcast', AllowUnauthenticatedIdentities=False)['IdentityPoolId']\n\
                 a = ci.get_id(IdentityPoolId=pool)['IdentityId']\n\
                 b = ci.get_id(IdentityPoolId=pool)['IdentityId']\n\
                 arns = {{}}\n\
                 for name in ['acme-team-a', 'acme-team-b', 'acme-admins', 'acme-live-team-a', 'acme-handmade', 'device-policy']:\n    \
                     arns[name] = iot.create_policy(policyName=name, policyDocument={DOC:?})['policyArn']\n\
                 for name in ['acme-admins', 'acme-live-team-a', 'acme-handmade', 'device-policy']:\n    \
                     iot.attach_policy(policyName=name, target=a)\n\
                 for name in ['acme-team-b', 'acme-live-team-a']:\n    \
                     iot.attach_policy(policyName=name, target=b)\n\
                 user_pool = idp.create_user_pool(PoolName='groupcast')['UserPool']['Id']\n\
                 for g in ['team-a', 'team-b', 'admins', 'live-team-a', 'Team_X']:\n    \
                     idp.create_group(UserPoolId=user_pool, GroupName=g)\n\
                 for user, groups in [({A_SUB:?}, ['team-a', 'live-team-a', 'Team_X']), ({B_SUB:?}, ['team-b'])]:\n    \
                     idp.admin_create_user(UserPoolId=user_pool, Username=user)\n    \
                     for g in groups:\n        \
                         idp.admin_add_user_to_group(UserPoolId=user_pool, Username=user, GroupName=g)\n\
                 out = dict(pool=pool, a=a, b=b, arns=arns, user_pool=user_pool)"
            ))
            .await;
        let (a, b) = (
            setup["a"].as_str().unwrap().to_owned(),
            setup["b"].as_str().unwrap().to_owned(),
        );
        let user_pool = setup["user_pool"].as_str().unwrap().to_owned();
        let stub = Stub::start(&moto.url).await;
        {
            let mut s = stub.state.lock().unwrap();
            s.identity_pool = setup["pool"].as_str().unwrap().to_owned();
            s.provider = format!("cognito-idp.us-east-1.amazonaws.com/{user_pool}");
            s.identities = HashMap::from([(A_SUB.into(), a.clone()), (B_SUB.into(), b.clone())]);
            for (name, project) in [
                ("acme-team-a", "acme"),
                ("acme-team-b", "acme"),
                ("acme-admins", "acme"),
                ("acme-live-team-a", "acme-live"),
            ] {
                let arn = setup["arns"][name].as_str().unwrap().to_owned();
                s.tags
                    .insert(arn, vec![("groupcast:project".into(), project.into())]);
            }
        }
        let key = TestKey::es256("ec-1");
        let jwks = JwksServer::start(jwks(&[&key])).await;
        let runtime = RuntimeApi::start().await;
        let env = [
            ("GROUPCAST_PROJECT", "acme".to_owned()),
            (
                "GROUPCAST_IOT_GROUPS",
                r#"["team-a","team-b","admins","live-team-a"]"#.to_owned(),
            ),
            ("GROUPCAST_IOT_POLICY_PATTERN", "acme-{group}".to_owned()),
            (
                "GROUPCAST_COGNITO_IDENTITY_POOL_ID",
                setup["pool"].as_str().unwrap().to_owned(),
            ),
            ("GROUPCAST_COGNITO_USER_POOL_ID", user_pool.clone()),
            // The issuer is the user pool's (the default); only the keys are served locally.
            (
                "GROUPCAST_JWT_JWKS_URL",
                jwks.http.url("/.well-known/jwks.json"),
            ),
            ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
            ("GROUPCAST_JWT_ALGORITHMS", "ES256".to_owned()),
            ("AWS_ENDPOINT_URL", stub.url()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_MAX_ATTEMPTS", "1".to_owned()),
        ];
        let child = spawn_function(env!("CARGO_BIN_EXE_iot-grant"), &runtime, &env);
        World {
            moto,
            stub,
            jwks,
            key,
            runtime,
            user_pool,
            a,
            b,
            _child: child,
        }
    }

    fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.us-east-1.amazonaws.com/{}",
            self.user_pool
        )
    }

    /// An ID token for `sub` whose `cognito:groups` claims `groups` (what the pool said when it
    /// was minted, or a lie: the function must not care).
    fn token(&self, sub: &str, groups: &[&str]) -> String {
        let mut claims = id_claims(&self.issuer(), CLIENT, groups);
        claims["sub"] = json!(sub);
        self.key.sign(&claims)
    }

    /// Runs a boto3 statement against the user pool, with `pool` bound to its id.
    async fn in_pool(&self, statement: &str) {
        self.moto
            .boto3(&format!("pool = {:?}\n{statement}", self.user_pool))
            .await;
    }

    async fn error(&self, payload: Value) -> Value {
        let id = self.runtime.invoke(payload);
        match self.runtime.outcome(&id).await {
            Outcome::Error(e) => e,
            Outcome::Response(r) => panic!("answered instead of refused: {r}"),
        }
    }

    fn get_id_requests(&self) -> Vec<Value> {
        self.stub.state.lock().unwrap().get_id.clone()
    }
}

#[tokio::test]
async fn a_token_for_user_a_naming_identity_b_is_refused_and_changes_nothing() {
    let w = World::start().await;
    let (a_before, b_before) = (w.moto.attached(&w.a).await, w.moto.attached(&w.b).await);

    // A's valid token, with groups B has no policies for, aimed at B's identity.
    let token_a = w.token(A_SUB, &["team-a", "admins"]);
    let e = w.error(json!({"token": token_a, "identityId": w.b})).await;
    assert_eq!(e["errorType"], "IdentityMismatch", "{e}");
    let message = e["errorMessage"].as_str().unwrap();
    assert!(
        message.contains(&w.a) && message.contains(&w.b),
        "the error names both identities: {message}"
    );
    // A token with no groups aimed at B (which would strip B's policies) is refused too.
    let e = w
        .error(json!({"token": w.token(A_SUB, &[]), "identityId": w.b}))
        .await;
    assert_eq!(e["errorType"], "IdentityMismatch", "{e}");

    assert_eq!(w.moto.attached(&w.a).await, a_before);
    assert_eq!(w.moto.attached(&w.b).await, b_before);
    assert_eq!(w.moto.thing(A_SUB).await, Value::Null, "nothing recorded");
    // The identity came from Cognito, asked with the user pool login and the raw token.
    let requests = w.get_id_requests();
    assert_eq!(requests.len(), 2);
    let mut logins = serde_json::Map::new();
    logins.insert(
        w.issuer().trim_start_matches("https://").to_owned(),
        json!(token_a),
    );
    assert_eq!(requests[0]["Logins"], Value::Object(logins));
}

#[tokio::test]
async fn user_a_gets_exactly_their_current_groups_policies_and_another_projects_policies_are_never_touched()
 {
    let w = World::start().await;
    let b_before = w.moto.attached(&w.b).await;

    // No identityId: the function finds A's identity itself. The token claims admins too; the
    // user pool does not, and the pool wins.
    let r = w
        .runtime
        .call(json!({"token": w.token(A_SUB, &["team-a", "admins"])}))
        .await;
    assert_eq!(r["identityId"], json!(w.a), "{r}");
    assert_eq!(r["sub"], A_SUB);
    assert_eq!(
        r["groups"],
        json!(["Team_X", "live-team-a", "team-a"]),
        "{r}"
    );
    assert_eq!(r["attached"], json!(["acme-team-a"]), "{r}");
    assert_eq!(
        r["detached"],
        json!(["acme-admins"]),
        "A is not in admins: {r}"
    );
    assert_eq!(r["policies"], json!(["acme-team-a"]));
    assert_eq!(
        r["notOwned"],
        json!(["acme-live-team-a"]),
        "acme-live's policy is never granted under acme's name: {r}"
    );
    assert_eq!(r["ignored"], json!(["Team_X"]), "not an IoT group: {r}");
    assert_eq!(
        w.moto.attached(&w.a).await,
        [
            "acme-handmade",
            "acme-live-team-a",
            "acme-team-a",
            "device-policy"
        ]
    );
    // The mapping a sync will use, recorded in the IoT registry.
    assert_eq!(
        w.moto.thing(A_SUB).await,
        json!({"identityId": w.a, "groupcastProject": "acme"})
    );

    // Naming A's own identity is fine; the same grant again changes nothing.
    let r = w
        .runtime
        .call(json!({"token": format!("Bearer {}", w.token(A_SUB, &[])), "identityId": w.a}))
        .await;
    assert_eq!(
        (
            r["attached"].clone(),
            r["detached"].clone(),
            r["kept"].clone()
        ),
        (json!([]), json!([]), json!(["acme-team-a"])),
        "{r}"
    );

    // Leaving every group (in the pool) detaches acme's policies only: acme-live's, the
    // untagged one that matches the pattern, and the foreign one stay.
    w.in_pool(&format!(
        "for g in ['team-a', 'live-team-a', 'Team_X']:\n    \
         idp.admin_remove_user_from_group(UserPoolId=pool, Username={A_SUB:?}, GroupName=g)"
    ))
    .await;
    let r = w
        .runtime
        .call(json!({"token": w.token(A_SUB, &["team-a"])}))
        .await;
    assert_eq!(r["detached"], json!(["acme-team-a"]), "{r}");
    assert_eq!(
        w.moto.attached(&w.a).await,
        ["acme-handmade", "acme-live-team-a", "device-policy"]
    );
    assert_eq!(
        w.moto.attached(&w.b).await,
        b_before,
        "B untouched throughout"
    );

    // A forged token (another key under the same kid) is refused before Cognito is asked.
    let asked = w.get_id_requests().len();
    let forged = TestKey::es256("ec-1").sign(&{
        let mut c = id_claims(&w.issuer(), CLIENT, &["team-a"]);
        c["sub"] = json!(A_SUB);
        c
    });
    let e = w.error(json!({"token": forged})).await;
    assert_eq!(e["errorType"], "Unauthorized", "{e}");
    assert_eq!(w.get_id_requests().len(), asked);
    assert_eq!(
        w.moto.attached(&w.a).await,
        ["acme-handmade", "acme-live-team-a", "device-policy"]
    );
    assert!(w.jwks.hits() >= 1);
}

#[tokio::test]
async fn a_token_minted_before_a_removal_cannot_reattach_after_a_sync_detached_the_group() {
    let w = World::start().await;
    let b_before = w.moto.attached(&w.b).await;
    // A signs in while in team-a: the token says so, and so does the pool.
    let old_token = w.token(A_SUB, &["team-a", "live-team-a"]);
    let r = w.runtime.call(json!({"token": old_token})).await;
    assert_eq!(r["attached"], json!(["acme-team-a"]), "{r}");

    // An administrator removes A from team-a; the trigger runs the sync.
    w.in_pool(&format!(
        "idp.admin_remove_user_from_group(UserPoolId=pool, Username={A_SUB:?}, GroupName='team-a')"
    ))
    .await;
    let r = w.runtime.call(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(r["identityId"], json!(w.a), "{r}");
    assert_eq!(r["detached"], json!(["acme-team-a"]), "{r}");
    assert_eq!(r["attached"], json!([]), "{r}");
    assert_eq!(r["groups"], json!(["Team_X", "live-team-a"]), "{r}");
    assert!(
        !w.moto
            .attached(&w.a)
            .await
            .contains(&"acme-team-a".to_owned())
    );

    // The pre-removal token (still valid, still claiming team-a) cannot put it back.
    let r = w.runtime.call(json!({"token": old_token})).await;
    assert_eq!(r["attached"], json!([]), "{r}");
    assert_eq!(r["groups"], json!(["Team_X", "live-team-a"]), "{r}");
    assert!(
        !w.moto
            .attached(&w.a)
            .await
            .contains(&"acme-team-a".to_owned())
    );
    // A second sync finds nothing left to do.
    let r = w.runtime.call(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(
        (r["attached"].clone(), r["detached"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(
        w.moto.attached(&w.b).await,
        b_before,
        "B untouched throughout"
    );
}

#[tokio::test]
async fn a_sync_touches_only_the_identity_recorded_for_its_user_and_never_attaches() {
    let w = World::start().await;
    let (a_before, b_before) = (w.moto.attached(&w.a).await, w.moto.attached(&w.b).await);

    // B never asked for a grant: nothing is recorded for B, so a sync for B changes nothing, even
    // though B's identity holds acme-team-b (attached by hand) and B is in team-b.
    let r = w.runtime.call(json!({"sync": {"user": B_SUB}})).await;
    assert_eq!(r["identityId"], Value::Null, "{r}");
    assert_eq!(w.moto.attached(&w.b).await, b_before);

    // A sync for A (after A's grant) while A is in team-a leaves A as granted and B as it was.
    w.runtime
        .call(json!({"token": w.token(A_SUB, &["team-a"])}))
        .await;
    let a_granted = w.moto.attached(&w.a).await;
    // B joins admins in the pool: a sync for B still attaches nothing (widening is B's own
    // request), and a sync for A does not look at B.
    w.in_pool(&format!(
        "idp.admin_add_user_to_group(UserPoolId=pool, Username={B_SUB:?}, GroupName='admins')"
    ))
    .await;
    let r = w.runtime.call(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(r["detached"], json!([]), "{r}");
    assert_eq!(r["kept"], json!(["acme-team-a"]), "{r}");
    assert_eq!(w.moto.attached(&w.a).await, a_granted);
    assert_eq!(w.moto.attached(&w.b).await, b_before);
    assert_ne!(a_granted, a_before, "the grant did change A");

    // B signs in (recorded), then is deleted: the sync detaches every acme policy of B's, and
    // only those; acme-live's stays, and A is untouched.
    let r = w
        .runtime
        .call(json!({"token": w.token(B_SUB, &["team-b"])}))
        .await;
    assert_eq!(r["attached"], json!(["acme-admins"]), "{r}");
    w.in_pool(&format!(
        "idp.admin_delete_user(UserPoolId=pool, Username={B_SUB:?})"
    ))
    .await;
    let r = w.runtime.call(json!({"sync": {"user": B_SUB}})).await;
    assert_eq!(r["identityId"], json!(w.b), "{r}");
    assert_eq!(r["userState"], "deleted", "{r}");
    assert_eq!(r["detached"], json!(["acme-admins", "acme-team-b"]), "{r}");
    assert_eq!(w.moto.attached(&w.b).await, ["acme-live-team-a"]);
    assert_eq!(w.moto.attached(&w.a).await, a_granted, "A untouched");
}

#[tokio::test]
async fn a_disabled_user_is_refused_a_grant_and_a_sync_detaches_everything_of_theirs() {
    let w = World::start().await;
    w.runtime.call(json!({"token": w.token(A_SUB, &[])})).await;
    assert!(
        w.moto
            .attached(&w.a)
            .await
            .contains(&"acme-team-a".to_owned())
    );
    w.in_pool(&format!(
        "idp.admin_disable_user(UserPoolId=pool, Username={A_SUB:?})"
    ))
    .await;
    let before = w.moto.attached(&w.a).await;
    let e = w.error(json!({"token": w.token(A_SUB, &["team-a"])})).await;
    assert_eq!(e["errorType"], "Unauthorized", "{e}");
    assert!(
        e["errorMessage"].as_str().unwrap().contains("disabled"),
        "{e}"
    );
    assert_eq!(w.moto.attached(&w.a).await, before);
    let r = w.runtime.call(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(r["userState"], "disabled", "{r}");
    assert_eq!(r["detached"], json!(["acme-team-a"]), "{r}");
    assert_eq!(
        w.moto.attached(&w.a).await,
        ["acme-handmade", "acme-live-team-a", "device-policy"]
    );
}

#[tokio::test]
async fn when_the_user_pool_cannot_be_asked_the_grant_and_the_sync_fail_closed_and_change_nothing()
{
    let w = World::start().await;
    // A is recorded and granted first, so the sync has an identity to act on.
    w.runtime.call(json!({"token": w.token(A_SUB, &[])})).await;
    let (a_before, b_before) = (w.moto.attached(&w.a).await, w.moto.attached(&w.b).await);
    w.stub.state.lock().unwrap().fail_user_pool = true;

    // B's token claims admins: with the pool unreachable, nothing is attached on its word.
    let e = w
        .error(json!({"token": w.token(B_SUB, &["team-b", "admins"])}))
        .await;
    assert_eq!(e["errorType"], "MembershipFailed", "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(w.moto.thing(B_SUB).await, Value::Null, "nothing recorded");
    let e = w.error(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(e["errorType"], "MembershipFailed", "{e}");
    assert_eq!(w.moto.attached(&w.a).await, a_before);
    assert_eq!(w.moto.attached(&w.b).await, b_before);

    // The pool answers again: the sync goes through.
    w.stub.state.lock().unwrap().fail_user_pool = false;
    let r = w.runtime.call(json!({"sync": {"user": A_SUB}})).await;
    assert_eq!(r["detached"], json!([]), "A still holds team-a: {r}");
}

#[tokio::test]
async fn missing_cognito_configuration_stops_the_function_before_any_invocation() {
    let runtime = RuntimeApi::start().await;
    let mut child = spawn_function(
        env!("CARGO_BIN_EXE_iot-grant"),
        &runtime,
        &[
            ("GROUPCAST_PROJECT", "acme".into()),
            ("GROUPCAST_IOT_GROUPS", r#"["team-a"]"#.into()),
            ("GROUPCAST_IOT_POLICY_PATTERN", "acme-{group}".into()),
            ("GROUPCAST_JWT_AUDIENCES", CLIENT.into()),
        ],
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(!status.success());
}
