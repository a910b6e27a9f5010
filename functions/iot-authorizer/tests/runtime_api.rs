//! The real `iot-authorizer` binary under an emulated Lambda Runtime API, verifying tokens against
//! a local JWKS server, with requests shaped as AWS IoT sends them for MQTT over TLS (the token is
//! the MQTT password) and MQTT over WebSocket (header or query parameter)
//! (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html). Every returned
//! policy is checked by evaluating it (`groupcast_auth::iot_authorizer::policy_allows`), not by
//! comparing text.

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

use aws_lambda_events::event::iam::IamPolicyDocument;
use base64::Engine as _;
use groupcast_auth::iot_authorizer::policy_allows;
use serde_json::{Value, json};
use support::{JwksServer, RuntimeApi, TestKey, id_claims, jwks, now_secs, spawn_function};

const CLIENT: &str = "app-client";
const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";
/// `GROUPCAST_IOT_POLICY` as `provisioner apply` sets it (prefix `groupcast`, us-east-1,
/// account 123456789012; the provisioner's tests keep this fixture its rendering).
const POLICY: &str = include_str!("../../groupcast-auth/tests/fixtures/iot-authorizer-policy.json");
const SUB: &str = "5f1c2e7a-user";

/// An MQTT-over-TLS request: the token is the CONNECT password (base64 in the event).
fn mqtt(token: &str, client_id: &str) -> Value {
    json!({
        "token": null,
        "signatureVerified": false,
        "protocols": ["tls", "mqtt"],
        "protocolData": {
            "tls": {"serverName": "example-ats.iot.eu-west-1.amazonaws.com"},
            "mqtt": {
                "username": "?x-amz-customauthorizer-name=acme-live-groupcast",
                "password": base64::engine::general_purpose::STANDARD.encode(token),
                "clientId": client_id,
            }
        },
        "connectionMetadata": {"id": "e56f08c3-c559-490f-aa9f-7e8427d0f57b"}
    })
}

/// An MQTT-over-WebSocket request: the token in a header and/or the query string.
fn wss(header: Option<&str>, query: Option<&str>) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert(
        "host".into(),
        json!("example-ats.iot.eu-west-1.amazonaws.com"),
    );
    if let Some(h) = header {
        headers.insert("groupcast-token".into(), json!(h));
    }
    json!({
        "signatureVerified": false,
        "protocols": ["tls", "http", "mqtt"],
        "protocolData": {
            "tls": {"serverName": "example-ats.iot.eu-west-1.amazonaws.com"},
            "http": {
                "headers": headers,
                "queryString": query.map_or_else(String::new, |q| format!("?x-amz-customauthorizer-name=acme-live-groupcast&groupcast-token={q}")),
            },
            "mqtt": {"clientId": SUB}
        },
        "connectionMetadata": {"id": "e56f08c3-c559-490f-aa9f-7e8427d0f57c"}
    })
}

struct Harness {
    runtime: RuntimeApi,
    jwks: JwksServer,
    rsa: TestKey,
    _child: tokio::process::Child,
}

async fn start(extra_env: &[(&str, String)]) -> Harness {
    let rsa = TestKey::rs256("rsa-1");
    let jwks = JwksServer::start(jwks(&[&rsa])).await;
    let runtime = RuntimeApi::start().await;
    let mut env = vec![
        ("GROUPCAST_JWT_ISSUER", jwks.issuer()),
        ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
        ("GROUPCAST_JWT_TOKEN_USE", "id".to_owned()),
        ("GROUPCAST_JWT_ALGORITHMS", "RS256".to_owned()),
        (
            "GROUPCAST_IOT_GROUPS",
            r##"["team-a","Team_B","admins","*","+","#"]"##.to_owned(),
        ),
        ("GROUPCAST_IOT_POLICY", POLICY.to_owned()),
        ("GROUPCAST_IOT_REFRESH_SECS", "600".to_owned()),
    ];
    env.extend(extra_env.iter().cloned());
    let child = spawn_function(env!("CARGO_BIN_EXE_iot-authorizer"), &runtime, &env);
    Harness {
        runtime,
        jwks,
        rsa,
        _child: child,
    }
}

fn documents(r: &Value) -> Vec<IamPolicyDocument> {
    serde_json::from_value(r["policyDocuments"].clone()).unwrap()
}

fn allows(r: &Value, action: &str, resource: &str) -> bool {
    policy_allows(&documents(r), action, &format!("{ARN}{resource}"))
}

fn refused(r: &Value) -> bool {
    r["isAuthenticated"] == false && r["policyDocuments"].as_array().is_none_or(Vec::is_empty)
}

#[tokio::test]
async fn a_valid_token_as_mqtt_password_gets_exactly_its_iot_groups_topics() {
    let h = start(&[]).await;
    let token = h.rsa.sign(&id_claims(
        &h.jwks.issuer(),
        CLIENT,
        &["team-a", "Team_B", "not-an-iot-group"],
    ));
    let r = h.runtime.call(mqtt(&token, SUB)).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    assert_eq!(r["principalId"], "5f1c2e7auser");
    assert_eq!(r["refreshAfterInSeconds"], 600);
    let disconnect = r["disconnectAfterInSeconds"].as_u64().unwrap();
    assert!((3590..=3600).contains(&disconnect), "{disconnect}");

    // Connect: as the user's own id, or the id plus "-" and a suffix; nobody else's.
    assert!(allows(&r, "iot:Connect", &format!("client/{SUB}")));
    assert!(allows(&r, "iot:Connect", &format!("client/{SUB}-tab-2")));
    for other in ["client/5f1c2e7a-userx", "client/someone-else", "client/*"] {
        assert!(!allows(&r, "iot:Connect", other), "{other}");
    }
    // The two IoT groups, and nothing else.
    for level in ["team-a", "x--Team-5fB"] {
        assert!(allows(
            &r,
            "iot:Subscribe",
            &format!("topicfilter/groupcast/{level}/news")
        ));
        assert!(allows(
            &r,
            "iot:Receive",
            &format!("topic/groupcast/{level}/news/today")
        ));
    }
    for (action, resource) in [
        ("iot:Receive", "topic/groupcast/admins/news"),
        ("iot:Receive", "topic/groupcast/not-an-iot-group/news"),
        ("iot:Receive", "topic/groupcast/team-ab/news"),
        ("iot:Subscribe", "topicfilter/groupcast/#"),
        ("iot:Subscribe", "topicfilter/groupcast/+/news"),
        ("iot:Subscribe", "topicfilter/#"),
        ("iot:Publish", "topic/groupcast/team-a/news"),
        ("iot:RetainPublish", "topic/groupcast/team-a/news"),
        ("iot:UpdateThingShadow", "thing/x"),
    ] {
        assert!(!allows(&r, action, resource), "{action} {resource}");
    }
    let actions: std::collections::BTreeSet<String> = documents(&r)
        .iter()
        .flat_map(|d| d.statement.iter().flat_map(|s| s.action.clone()))
        .collect();
    assert_eq!(
        actions.into_iter().collect::<Vec<_>>(),
        ["iot:Connect", "iot:Receive", "iot:Subscribe"]
    );
    for d in documents(&r) {
        assert!(serde_json::to_string(&d).unwrap().len() <= 2048);
    }
}

#[tokio::test]
async fn a_token_in_the_websocket_header_or_query_is_accepted_and_two_different_tokens_are_refused()
{
    let h = start(&[]).await;
    let token = h
        .rsa
        .sign(&id_claims(&h.jwks.issuer(), CLIENT, &["team-a"]));
    let r = h
        .runtime
        .call(wss(Some(&format!("Bearer {token}")), None))
        .await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    assert!(allows(&r, "iot:Receive", "topic/groupcast/team-a/x"));
    let r = h.runtime.call(wss(None, Some(&token))).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    // The same token twice is one token.
    let r = h.runtime.call(wss(Some(&token), Some(&token))).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    let admin = h
        .rsa
        .sign(&id_claims(&h.jwks.issuer(), CLIENT, &["admins"]));
    let r = h.runtime.call(wss(Some(&token), Some(&admin))).await;
    assert!(refused(&r), "{r}");
    let r = h.runtime.call(wss(None, None)).await;
    assert!(refused(&r), "{r}");
}

#[tokio::test]
async fn forged_expired_wrong_audience_and_nearly_expired_tokens_are_refused() {
    let h = start(&[]).await;
    let issuer = h.jwks.issuer();
    let forger = TestKey::rs256("rsa-1"); // same kid, another key: a forgery
    let mut expired = id_claims(&issuer, CLIENT, &["team-a"]);
    expired["exp"] = json!(now_secs() - 10);
    let mut nearly = id_claims(&issuer, CLIENT, &["team-a"]);
    nearly["exp"] = json!(now_secs() + 120);
    let mut other_issuer = id_claims("https://evil.example", CLIENT, &["team-a"]);
    other_issuer["iss"] = json!("https://evil.example");
    let good = h.rsa.sign(&id_claims(&issuer, CLIENT, &["team-a"]));
    let mut tampered: Vec<&str> = good.split('.').collect();
    let evil_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&id_claims(&issuer, CLIENT, &["admins"])).unwrap());
    tampered[1] = &evil_payload;
    let tampered = tampered.join(".");
    for (what, token) in [
        (
            "forged",
            forger.sign(&id_claims(&issuer, CLIENT, &["team-a"])),
        ),
        ("expired", h.rsa.sign(&expired)),
        ("nearly expired", h.rsa.sign(&nearly)),
        (
            "wrong audience",
            h.rsa.sign(&id_claims(&issuer, "other-app", &["team-a"])),
        ),
        ("other issuer", h.rsa.sign(&other_issuer)),
        ("tampered payload", tampered),
        ("not a JWT", "hello".to_owned()),
    ] {
        let r = h.runtime.call(mqtt(&token, SUB)).await;
        assert!(refused(&r), "{what}: {r}");
    }
    // A token with no IoT group connects to nothing: refused rather than granted a bare connect.
    let none = h
        .rsa
        .sign(&id_claims(&issuer, CLIENT, &["not-an-iot-group"]));
    assert!(refused(&h.runtime.call(mqtt(&none, SUB)).await));
    // Not an IoT request at all.
    assert!(refused(
        &h.runtime.call(json!({"authorizationToken": good})).await
    ));
}

#[tokio::test]
async fn wildcard_groups_and_wildcard_user_ids_gain_nothing() {
    let h = start(&[]).await;
    let issuer = h.jwks.issuer();
    // Groups named `*`, `+` and `#` are IoT groups here: they get their own encoded levels only.
    let token = h.rsa.sign(&id_claims(&issuer, CLIENT, &["*", "+", "#"]));
    let r = h.runtime.call(mqtt(&token, SUB)).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    for level in ["x---2a", "x---2b", "x---23"] {
        assert!(allows(
            &r,
            "iot:Receive",
            &format!("topic/groupcast/{level}/m")
        ));
    }
    for resource in [
        "topic/groupcast/team-a/m",
        "topic/groupcast/admins/m",
        "topic/groupcast/*/m",
    ] {
        assert!(!allows(&r, "iot:Receive", resource), "{resource}");
    }
    assert!(!allows(&r, "iot:Subscribe", "topicfilter/groupcast/#"));
    assert!(!allows(&r, "iot:Subscribe", "topicfilter/groupcast/+/m"));
    // A `sub` that would be a wildcard, a policy variable or a topic separator in the client ARN
    // is refused, never rendered.
    for sub in ["*", "user*", "a?", "${iot:ClientId}", "a/b", "a+b", "a#"] {
        let mut claims = id_claims(&issuer, CLIENT, &["team-a"]);
        claims["sub"] = json!(sub);
        let r = h.runtime.call(mqtt(&h.rsa.sign(&claims), "x")).await;
        assert!(refused(&r), "sub {sub:?}: {r}");
    }
}

#[tokio::test]
async fn a_token_minted_after_removal_drops_the_group_and_the_old_one_cannot_outlive_its_expiry() {
    // With the token's groups as the source, a removal takes effect with the next token: the
    // connection's disconnectAfterInSeconds never exceeds the old token's lifetime, and the new
    // token (minted after the removal) no longer carries the group.
    let h = start(&[]).await;
    let issuer = h.jwks.issuer();
    let mut before = id_claims(&issuer, CLIENT, &["team-a", "admins"]);
    before["exp"] = json!(now_secs() + 900);
    let r = h.runtime.call(mqtt(&h.rsa.sign(&before), SUB)).await;
    assert!(allows(&r, "iot:Receive", "topic/groupcast/admins/m"));
    assert!(r["disconnectAfterInSeconds"].as_u64().unwrap() <= 900);
    assert!(
        r["refreshAfterInSeconds"].as_u64().unwrap()
            <= r["disconnectAfterInSeconds"].as_u64().unwrap()
    );
    let after = h.rsa.sign(&id_claims(&issuer, CLIENT, &["team-a"]));
    let r = h.runtime.call(mqtt(&after, SUB)).await;
    assert!(allows(&r, "iot:Receive", "topic/groupcast/team-a/m"));
    assert!(!allows(&r, "iot:Receive", "topic/groupcast/admins/m"));
}

#[tokio::test]
async fn a_bad_setting_stops_the_function_at_cold_start_naming_the_variable() {
    let rsa = TestKey::rs256("rsa-1");
    let jwks_server = JwksServer::start(jwks(&[&rsa])).await;
    // The attachment mode's rendering (a policy variable for the client) and a policy without
    // the group placeholder are refused, as is a refresh under IoT's 300 s.
    let attachment = POLICY.replace("{client_id}", "${cognito-identity.amazonaws.com:sub}");
    let no_group = POLICY.replace("{group_level}", "team-a");
    for (k, v) in [
        ("GROUPCAST_IOT_REFRESH_SECS", "60"),
        ("GROUPCAST_IOT_POLICY", attachment.as_str()),
        ("GROUPCAST_IOT_POLICY", no_group.as_str()),
        ("GROUPCAST_IOT_POLICY", ""),
    ] {
        let runtime = RuntimeApi::start().await;
        let env = vec![
            ("GROUPCAST_JWT_ISSUER", jwks_server.issuer()),
            ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
            ("GROUPCAST_IOT_GROUPS", r#"["team-a"]"#.to_owned()),
            ("GROUPCAST_IOT_POLICY", POLICY.to_owned()),
            (k, v.to_owned()),
        ];
        let mut child = spawn_function(env!("CARGO_BIN_EXE_iot-authorizer"), &runtime, &env);
        let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("the function exits")
            .unwrap();
        assert!(!status.success(), "{k}={v}");
    }
}

/// A stand-in for the Cognito user pools API (awsJson1.1 on 127.0.0.1): `AdminGetUser` and
/// `AdminListGroupsForUser` for one user, whose state the test changes.
#[derive(Default)]
struct UserPool {
    enabled: bool,
    groups: Vec<String>,
}

const POOL: &str = "us-east-1_TestPool1";

async fn user_pool(state: std::sync::Arc<std::sync::Mutex<UserPool>>) -> support::Http {
    support::Http::serve(move |req: support::Req| {
        let state = state.clone();
        async move {
            let target = req
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            if body["UserPoolId"] != POOL || body["Username"] != SUB {
                return support::reply(
                    400,
                    json!({"__type": "UserNotFoundException", "message": "no such user"}).to_string(),
                );
            }
            let s = state.lock().unwrap();
            match target.as_str() {
                "AWSCognitoIdentityProviderService.AdminGetUser" => support::reply(
                    200,
                    json!({"Username": SUB, "Enabled": s.enabled, "UserStatus": "CONFIRMED"})
                        .to_string(),
                ),
                "AWSCognitoIdentityProviderService.AdminListGroupsForUser" => support::reply(
                    200,
                    json!({"Groups": s.groups.iter().map(|g| json!({"GroupName": g, "UserPoolId": POOL})).collect::<Vec<_>>()})
                        .to_string(),
                ),
                other => support::reply(400, json!({"__type": "UnknownOperationException", "message": other}).to_string()),
            }
        }
    })
    .await
}

#[tokio::test]
async fn with_a_user_pool_a_refresh_after_removal_drops_the_group_and_a_disabled_user_is_refused() {
    let state = std::sync::Arc::new(std::sync::Mutex::new(UserPool {
        enabled: true,
        groups: vec!["team-a".to_owned(), "admins".to_owned()],
    }));
    let pool = user_pool(state.clone()).await;
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}");
    let rsa = TestKey::rs256("rsa-1");
    let jwks_server = JwksServer::start(jwks(&[&rsa])).await;
    let runtime = RuntimeApi::start().await;
    let env = vec![
        ("GROUPCAST_JWT_ISSUER", issuer.clone()),
        (
            "GROUPCAST_JWT_JWKS_URL",
            format!("{}/.well-known/jwks.json", jwks_server.issuer()),
        ),
        ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
        ("GROUPCAST_IOT_GROUPS", r#"["team-a","admins"]"#.to_owned()),
        ("GROUPCAST_IOT_POLICY", POLICY.to_owned()),
        ("GROUPCAST_COGNITO_USER_POOL_ID", POOL.to_owned()),
        ("AWS_ENDPOINT_URL", pool.url("")),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_MAX_ATTEMPTS", "1".to_owned()),
    ];
    let _child = spawn_function(env!("CARGO_BIN_EXE_iot-authorizer"), &runtime, &env);
    // The token names both groups, and keeps naming them for its hour.
    let token = rsa.sign(&id_claims(&issuer, CLIENT, &["team-a", "admins"]));
    let r = runtime.call(mqtt(&token, SUB)).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    assert!(allows(&r, "iot:Receive", "topic/groupcast/admins/m"));
    // Removed from admins: IoT's refresh (the same token) no longer gets it.
    state.lock().unwrap().groups = vec!["team-a".to_owned()];
    let r = runtime.call(mqtt(&token, SUB)).await;
    assert_eq!(r["isAuthenticated"], true, "{r}");
    assert!(allows(&r, "iot:Receive", "topic/groupcast/team-a/m"));
    assert!(!allows(&r, "iot:Receive", "topic/groupcast/admins/m"));
    // A group added in the pool but not in the token counts: the pool is the truth.
    state.lock().unwrap().groups = vec!["admins".to_owned()];
    let r = runtime.call(mqtt(&token, SUB)).await;
    assert!(allows(&r, "iot:Receive", "topic/groupcast/admins/m"));
    assert!(!allows(&r, "iot:Receive", "topic/groupcast/team-a/m"));
    // Disabled: the refresh ends the connection.
    state.lock().unwrap().enabled = false;
    assert!(refused(&runtime.call(mqtt(&token, SUB)).await));
}
