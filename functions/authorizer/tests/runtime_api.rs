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
