//! The real `authorizer` binary under an emulated Lambda Runtime API, verifying tokens against a
//! local JWKS server, in both AppSync request shapes: Events (allow/deny per operation and
//! channel, the handlerContext contract) and GraphQL (the resolverContext contract,
//! `Mutation.publish` denied); forged tokens and malformed requests denied, ttlOverride bounded by
//! the token's lifetime.

#[path = "../../groupcast-auth/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::{
    JwksServer, Outcome, RuntimeApi, TestKey, id_claims, jwks, now_secs, spawn_function,
};

const CLIENT: &str = "app-client";

fn request(token: &str, operation: &str, channel: Option<&str>) -> Value {
    json!({
        "authorizationToken": token,
        "requestContext": {
            "apiId": "abcdefghijklmnopqrstuvwxyz", "accountId": "123456789012", "requestId": "r-1",
            "operation": operation,
            "channelNamespaceName": channel.map(|_| "live"),
            "channel": channel,
        },
        "requestHeaders": {"authorization": token, "host": "example.appsync-api.us-east-1.amazonaws.com"}
    })
}

/// A GraphQL authorizer request, as AppSync sends it (no `operation`: `queryString` instead).
fn graphql_request(token: &str, query: &str) -> Value {
    json!({
        "authorizationToken": token,
        "requestContext": {
            "apiId": "abcdefghijklmnopqrstuvwxyz", "accountId": "123456789012", "requestId": "r-2",
            "queryString": query, "operationName": "OnNews", "variables": {"onlyGroups": ["team-a"]},
        },
        "requestHeaders": {"authorization": token, "host": "example.appsync-api.us-east-1.amazonaws.com"}
    })
}

const SUBSCRIBE: &str = "subscription OnNews($onlyGroups: [String!]) { subscribe(onlyGroups: $onlyGroups) { topic data uuid } }";

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
        ("GROUPCAST_AUTHORIZER_TTL_SECS", "600".to_owned()),
    ];
    env.extend(extra_env.iter().cloned());
    let child = spawn_function(env!("CARGO_BIN_EXE_authorizer"), &runtime, &env);
    Harness {
        runtime,
        jwks,
        rsa,
        _child: child,
    }
}

#[tokio::test]
async fn connect_and_own_group_subscribe_are_allowed_with_the_handler_context() {
    let h = start(&[]).await;
    let claims = id_claims(&h.jwks.issuer(), CLIENT, &["team-a", "Team_B"]);
    let token = h.rsa.sign(&claims);

    let r = h.runtime.call(request(&token, "EVENT_CONNECT", None)).await;
    assert_eq!(r["isAuthorized"], true, "{r}");
    assert_eq!(
        r["handlerContext"],
        json!({"sub": "5f1c2e7a-user", "groups": "[\"team-a\",\"Team_B\"]"})
    );
    assert_eq!(r["ttlOverride"], 600);

    for channel in [
        "/live/team-a/news",
        "/live/x--Team-5fB/news/*",
        "live/team-a/a/b",
    ] {
        let r = h
            .runtime
            .call(request(
                &format!("Bearer {token}"),
                "EVENT_SUBSCRIBE",
                Some(channel),
            ))
            .await;
        assert_eq!(r["isAuthorized"], true, "{channel}: {r}");
    }
    // The handlerContext groups value is JSON array text, as templates/README.md specifies.
    let groups: Vec<String> =
        serde_json::from_str(r["handlerContext"]["groups"].as_str().unwrap()).unwrap();
    assert_eq!(groups, ["team-a", "Team_B"]);
}

#[tokio::test]
async fn other_groups_wildcards_and_publish_are_denied() {
    let h = start(&[]).await;
    let token = h
        .rsa
        .sign(&id_claims(&h.jwks.issuer(), CLIENT, &["team-a"]));
    let cases = [
        ("EVENT_SUBSCRIBE", Some("/live/team-b/news")),
        ("EVENT_SUBSCRIBE", Some("/live/*")),
        ("EVENT_SUBSCRIBE", Some("/live/team-*/news")),
        ("EVENT_SUBSCRIBE", Some("/other/team-a/news")),
        ("EVENT_SUBSCRIBE", None),
        ("EVENT_PUBLISH", Some("/live/team-a/news")),
        ("EVENT_DELETE_EVERYTHING", Some("/live/team-a/news")),
    ];
    for (op, channel) in cases {
        let r = h.runtime.call(request(&token, op, channel)).await;
        assert_eq!(
            r,
            json!({"isAuthorized": false, "ttlOverride": 0}),
            "{op} {channel:?}"
        );
    }
    // Not an authorizer request at all: a deny, not a function error.
    let r = h.runtime.call(json!({"hello": "world"})).await;
    assert_eq!(r["isAuthorized"], false);
}

#[tokio::test]
async fn forged_and_expired_tokens_are_denied() {
    let h = start(&[]).await;
    let issuer = h.jwks.issuer();
    let claims = id_claims(&issuer, CLIENT, &["team-a"]);
    let mut hs = jsonwebtoken::Header::new(Algorithm::HS256);
    hs.kid = Some("rsa-1".into());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(h.rsa.public_pem.as_bytes()),
    )
    .unwrap();
    let mut expired = claims.clone();
    expired["exp"] = json!(now_secs() - 5);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let good = h.rsa.sign(&claims);
    let forged = [
        hs256,
        TestKey::rs256("rsa-1").sign(&claims),
        TestKey::rs256("unknown").sign(&claims),
        h.rsa.sign(&expired),
        h.rsa.sign(&wrong_aud),
        good[..good.len() - 3].to_owned(),
        String::new(),
    ];
    for token in forged {
        let r = h.runtime.call(request(&token, "EVENT_CONNECT", None)).await;
        assert_eq!(r["isAuthorized"], false, "{token:.30}…: {r}");
    }
    assert!(
        h.runtime.call(request(&good, "EVENT_CONNECT", None)).await["isAuthorized"]
            .as_bool()
            .unwrap()
    );
}

#[tokio::test]
async fn ttl_override_never_outlives_the_token() {
    let h = start(&[]).await;
    let mut claims = id_claims(&h.jwks.issuer(), CLIENT, &["team-a"]);
    claims["exp"] = json!(now_secs() + 42);
    let r = h
        .runtime
        .call(request(
            &h.rsa.sign(&claims),
            "EVENT_SUBSCRIBE",
            Some("/live/team-a/x"),
        ))
        .await;
    assert_eq!(r["isAuthorized"], true);
    let ttl = r["ttlOverride"].as_u64().unwrap();
    assert!((40..=42).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn missing_configuration_stops_the_function_before_any_invocation() {
    let runtime = RuntimeApi::start().await;
    let mut child = spawn_function(
        env!("CARGO_BIN_EXE_authorizer"),
        &runtime,
        &[("GROUPCAST_JWT_ISSUER", "https://issuer.example".into())],
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(!status.success());
    let id = runtime.invoke(request("t", "EVENT_CONNECT", None));
    let outcome = tokio::time::timeout(Duration::from_millis(500), runtime.outcome(&id)).await;
    assert!(
        outcome.is_err(),
        "nobody answered: {:?}",
        outcome.ok().map(|o| matches!(o, Outcome::Response(_)))
    );
}

#[tokio::test]
async fn graphql_requests_are_allowed_with_the_resolver_context_and_publish_denied() {
    let h = start(&[]).await;
    let token = h
        .rsa
        .sign(&id_claims(&h.jwks.issuer(), CLIENT, &["team-a", "Team_B"]));
    let r = h.runtime.call(graphql_request(&token, SUBSCRIBE)).await;
    assert_eq!(
        r,
        json!({
            "isAuthorized": true,
            "resolverContext": {"sub": "5f1c2e7a-user", "groups": "[\"team-a\",\"Team_B\"]"},
            "deniedFields": ["Mutation.publish"],
            "ttlOverride": 600
        })
    );
    // resolverContext.groups is JSON array text, the same encoding as the Events handlerContext.
    let groups: Vec<String> =
        serde_json::from_str(r["resolverContext"]["groups"].as_str().unwrap()).unwrap();
    assert_eq!(groups, ["team-a", "Team_B"]);
    // A publish attempt is answered the same way: the field itself is denied.
    let publish = "mutation { publish(topic: \"x\", data: \"{}\", groups: [\"team-a\"]) { uuid } }";
    let r = h
        .runtime
        .call(graphql_request(&format!("Bearer {token}"), publish))
        .await;
    assert_eq!(r["deniedFields"], json!(["Mutation.publish"]), "{r}");
}

#[tokio::test]
async fn graphql_requests_with_bad_tokens_and_malformed_requests_are_denied_without_a_crash() {
    let h = start(&[]).await;
    let claims = id_claims(&h.jwks.issuer(), CLIENT, &["team-a"]);
    let mut expired = claims.clone();
    expired["exp"] = json!(now_secs() - 5);
    let deny = json!({"isAuthorized": false, "ttlOverride": 0});
    for token in [
        TestKey::rs256("rsa-1").sign(&claims),
        h.rsa.sign(&expired),
        String::new(),
    ] {
        let r = h.runtime.call(graphql_request(&token, SUBSCRIBE)).await;
        assert_eq!(r, deny, "{token:.30}…");
    }
    let good = h.rsa.sign(&claims);
    for malformed in [
        json!({"authorizationToken": good, "requestContext": {"apiId": "a"}}),
        json!({"authorizationToken": good, "requestContext": {"queryString": 42}}),
        json!({"authorizationToken": good, "requestContext": "queryString"}),
        json!({"authorizationToken": good}),
        json!([good]),
        json!(null),
    ] {
        let r = h.runtime.call(malformed.clone()).await;
        assert_eq!(r, deny, "{malformed:.60}");
    }
    // Still serving: the malformed requests were denials, not crashes.
    let r = h.runtime.call(graphql_request(&good, SUBSCRIBE)).await;
    assert_eq!(r["isAuthorized"], true, "{r}");
}

/// A stand-in for the Cognito user pools API (awsJson1.1 on 127.0.0.1): `AdminGetUser` and
/// `AdminListGroupsForUser` for one user, whose state the test changes. It counts lookups, so a
/// test can tell the pool was asked rather than the token read.
#[derive(Default)]
struct UserPool {
    enabled: bool,
    groups: Vec<String>,
    lookups: usize,
}

const POOL: &str = "us-east-1_TestPool1";
const SUB: &str = "5f1c2e7a-user";

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
            let mut s = state.lock().unwrap();
            s.lookups += 1;
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
                other => support::reply(
                    400,
                    json!({"__type": "UnknownOperationException", "message": other}).to_string(),
                ),
            }
        }
    })
    .await
}

/// The authorizer with `GROUPCAST_COGNITO_USER_POOL_ID` (`groups_source = "user-pool"`), its
/// tokens issued by that pool, the user pools API served by `pool`.
fn user_pool_env(
    jwks: &JwksServer,
    pool: &support::Http,
    ttl: &str,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "GROUPCAST_JWT_ISSUER",
            format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}"),
        ),
        (
            "GROUPCAST_JWT_JWKS_URL",
            format!("{}/.well-known/jwks.json", jwks.issuer()),
        ),
        ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
        ("GROUPCAST_JWT_TOKEN_USE", "id".to_owned()),
        ("GROUPCAST_JWT_ALGORITHMS", "RS256".to_owned()),
        ("GROUPCAST_AUTHORIZER_TTL_SECS", ttl.to_owned()),
        ("GROUPCAST_COGNITO_USER_POOL_ID", POOL.to_owned()),
        ("AWS_ENDPOINT_URL", pool.url("")),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_MAX_ATTEMPTS", "1".to_owned()),
    ]
}

#[tokio::test]
async fn with_a_user_pool_a_token_minted_before_the_removal_opens_no_new_subscription() {
    let state = std::sync::Arc::new(std::sync::Mutex::new(UserPool {
        enabled: true,
        groups: vec!["team-a".to_owned(), "admins".to_owned()],
        lookups: 0,
    }));
    let pool = user_pool(state.clone()).await;
    let rsa = TestKey::rs256("rsa-1");
    let jwks_server = JwksServer::start(jwks(&[&rsa])).await;
    let runtime = RuntimeApi::start().await;
    let _child = spawn_function(
        env!("CARGO_BIN_EXE_authorizer"),
        &runtime,
        &user_pool_env(&jwks_server, &pool, "60"),
    );
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}");
    // Minted while the user is in both groups: the token says so for its hour.
    let token = rsa.sign(&id_claims(&issuer, CLIENT, &["team-a", "admins"]));
    let r = runtime
        .call(request(
            &token,
            "EVENT_SUBSCRIBE",
            Some("/live/admins/news"),
        ))
        .await;
    assert_eq!(r["isAuthorized"], true, "{r}");
    // The cached allow is bounded by the configured TTL (result_ttl_seconds).
    assert_eq!(r["ttlOverride"], 60);
    assert!(state.lock().unwrap().lookups > 0, "the pool was asked");

    // Removed from admins. The same token is refused a new admins subscription, keeps team-a,
    // and the handlerContext carries the pool's groups, not the token's.
    state.lock().unwrap().groups = vec!["team-a".to_owned()];
    let r = runtime
        .call(request(
            &token,
            "EVENT_SUBSCRIBE",
            Some("/live/admins/news"),
        ))
        .await;
    assert_eq!(r, json!({"isAuthorized": false, "ttlOverride": 0}));
    let r = runtime
        .call(request(
            &token,
            "EVENT_SUBSCRIBE",
            Some("/live/team-a/news"),
        ))
        .await;
    assert_eq!(r["isAuthorized"], true, "{r}");
    assert_eq!(
        r["handlerContext"],
        json!({"sub": SUB, "groups": "[\"team-a\"]"})
    );
    // GraphQL through the same function: the resolverContext is the pool's groups too.
    let r = runtime.call(graphql_request(&token, SUBSCRIBE)).await;
    assert_eq!(r["resolverContext"]["groups"], "[\"team-a\"]", "{r}");

    // Disabled: even connecting is refused.
    state.lock().unwrap().enabled = false;
    let r = runtime.call(request(&token, "EVENT_CONNECT", None)).await;
    assert_eq!(r, json!({"isAuthorized": false, "ttlOverride": 0}));
}

#[tokio::test]
async fn with_a_user_pool_a_failed_lookup_or_an_unknown_user_is_denied_never_the_tokens_groups() {
    let state = std::sync::Arc::new(std::sync::Mutex::new(UserPool {
        enabled: true,
        groups: vec!["team-a".to_owned()],
        lookups: 0,
    }));
    let pool = user_pool(state.clone()).await;
    let rsa = TestKey::rs256("rsa-1");
    let jwks_server = JwksServer::start(jwks(&[&rsa])).await;
    let runtime = RuntimeApi::start().await;
    let mut env = user_pool_env(&jwks_server, &pool, "300");
    let _child = spawn_function(env!("CARGO_BIN_EXE_authorizer"), &runtime, &env);
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}");
    // Another user: the pool does not know them, whatever their token claims.
    let mut stranger = id_claims(&issuer, CLIENT, &["team-a"]);
    stranger["sub"] = json!("someone-else");
    let r = runtime
        .call(request(
            &rsa.sign(&stranger),
            "EVENT_SUBSCRIBE",
            Some("/live/team-a/x"),
        ))
        .await;
    assert_eq!(r, json!({"isAuthorized": false, "ttlOverride": 0}));

    // The pool unreachable: denied, not the token's groups.
    let runtime2 = RuntimeApi::start().await;
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_owned()));
    let _child2 = spawn_function(env!("CARGO_BIN_EXE_authorizer"), &runtime2, &env);
    let token = rsa.sign(&id_claims(&issuer, CLIENT, &["team-a"]));
    let r = runtime2
        .call(request(&token, "EVENT_SUBSCRIBE", Some("/live/team-a/x")))
        .await;
    assert_eq!(r, json!({"isAuthorized": false, "ttlOverride": 0}));
}

#[tokio::test]
async fn a_user_pool_that_did_not_issue_the_tokens_stops_the_function_at_cold_start() {
    let rsa = TestKey::rs256("rsa-1");
    let jwks_server = JwksServer::start(jwks(&[&rsa])).await;
    let runtime = RuntimeApi::start().await;
    // The issuer is the test JWKS server, not the pool: its subs are another directory's.
    let mut child = spawn_function(
        env!("CARGO_BIN_EXE_authorizer"),
        &runtime,
        &[
            ("GROUPCAST_JWT_ISSUER", jwks_server.issuer()),
            ("GROUPCAST_JWT_AUDIENCES", CLIENT.to_owned()),
            ("GROUPCAST_COGNITO_USER_POOL_ID", POOL.to_owned()),
        ],
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(!status.success());
}
