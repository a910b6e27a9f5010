//! groupcast's one Lambda authorizer for both AppSync APIs: which request shape arrived, and the
//! parts both answers share.
//!
//! - AppSync Events sends `requestContext.operation` (`EVENT_CONNECT`, …): [`crate::events`].
//! - AppSync GraphQL sends `requestContext.queryString` and no `operation`: [`crate::graphql`].
//! - Anything else (not an object, neither marker, a marker of the wrong type): denied, never a
//!   failure, so AppSync never sees an error it might misread.
//!
//! Both allows carry the caller as `{"sub": …, "groups": "<JSON array text>"}`, the Events
//! `handlerContext` and the GraphQL `resolverContext` alike (`templates/README.md`), and a
//! `ttlOverride` that never outlives the token nor `GROUPCAST_AUTHORIZER_TTL_SECS`. Every deny is
//! `{"isAuthorized": false, "ttlOverride": 0}`, valid in both shapes and never cached.
//!
//! **Where the groups come from** ([`handle_with`]): the token's groups claim by default, or —
//! with `GROUPCAST_COGNITO_USER_POOL_ID` set (`groups_source = "user-pool"` in the config) — the
//! user's CURRENT groups in that user pool ([`crate::membership`]), the token then proving only
//! who the caller is. A token minted before a removal still lists the group for its lifetime;
//! read from the pool, it opens no new subscription once the user has left (after at most the
//! `ttlOverride` of an allow AppSync already cached). A deleted or disabled user, or a failed
//! lookup, is denied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{self, AuthorizerRequest, AuthorizerResponse};
use crate::graphql::{self, GraphqlAuthorizerRequest, GraphqlAuthorizerResponse};
use crate::jwt::{VerifiedToken, Verifier};
use crate::membership::{Membership, MembershipError, USER_POOL_ENV};

/// The longest cache lifetime AppSync accepts for an authorizer result, seconds.
pub const MAX_TTL_SECS: u64 = groupcast::limits::AUTHORIZER_TTL_MAX_SECONDS;
/// `GROUPCAST_AUTHORIZER_TTL_SECS`: the cache lifetime to ask for (default 300, at most 3600).
pub const TTL_ENV: &str = "GROUPCAST_AUTHORIZER_TTL_SECS";
/// The default cache lifetime, seconds.
pub const DEFAULT_TTL_SECS: u64 = 300;

/// An authorizer request, by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// AppSync Events.
    Events(AuthorizerRequest),
    /// AppSync GraphQL.
    Graphql(GraphqlAuthorizerRequest),
}

/// An authorizer answer, in the request's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// For AppSync Events.
    Events(AuthorizerResponse),
    /// For AppSync GraphQL.
    Graphql(GraphqlAuthorizerResponse),
}

impl Response {
    /// Whether the caller is allowed.
    pub fn is_authorized(&self) -> bool {
        match self {
            Response::Events(r) => r.is_authorized,
            Response::Graphql(r) => r.is_authorized,
        }
    }
}

/// Which shape `event` is, parsed.
///
/// # Errors
/// Why it is neither shape (for the log).
pub fn parse(event: serde_json::Value) -> Result<Request, String> {
    let ctx = event
        .get("requestContext")
        .and_then(serde_json::Value::as_object)
        .ok_or("no requestContext object: not an AppSync authorizer request")?;
    if ctx.contains_key("operation") {
        AuthorizerRequest::deserialize(&event)
            .map(Request::Events)
            .map_err(|e| {
                let at = field_of(&event, EVENTS_STRINGS);
                format!("AppSync Events authorizer request: {at}{e}")
            })
    } else if ctx.contains_key("queryString") {
        GraphqlAuthorizerRequest::deserialize(&event)
            .map(Request::Graphql)
            .map_err(|e| {
                let at = field_of(&event, GRAPHQL_STRINGS);
                format!("AppSync GraphQL authorizer request: {at}{e}")
            })
    } else {
        Err("requestContext has neither operation (Events) nor queryString (GraphQL)".into())
    }
}

/// The string fields of an Events request, as JSON pointers, and whether they may be `null`.
const EVENTS_STRINGS: &[(&str, bool)] = &[
    ("/authorizationToken", false),
    ("/requestContext/operation", false),
    ("/requestContext/channelNamespaceName", true),
    ("/requestContext/channel", true),
    ("/requestContext/apiId", true),
    ("/requestContext/accountId", true),
    ("/requestContext/requestId", true),
];

/// The string fields of a GraphQL request, as [`EVENTS_STRINGS`].
const GRAPHQL_STRINGS: &[(&str, bool)] = &[
    ("/authorizationToken", false),
    ("/requestContext/queryString", false),
    ("/requestContext/operationName", true),
    ("/requestContext/apiId", true),
    ("/requestContext/accountId", true),
    ("/requestContext/requestId", true),
];

/// `requestContext.channel: ` when that string field holds something else: serde's message
/// (`invalid type: map, expected a string`) does not say which field it is.
fn field_of(event: &serde_json::Value, strings: &[(&str, bool)]) -> String {
    strings
        .iter()
        .find(|(pointer, null_ok)| {
            event
                .pointer(pointer)
                .is_some_and(|v| !(v.is_string() || (*null_ok && v.is_null())))
        })
        .map(|(pointer, _)| format!("{}: ", pointer[1..].replace('/', ".")))
        .unwrap_or_default()
}

/// The Lambda handler body with the token's groups: [`handle_with`] and no membership source.
pub async fn handle(
    verifier: &Verifier,
    event: serde_json::Value,
    max_ttl: u64,
    now_secs: u64,
) -> Response {
    handle_with::<TokenClaims<'static>>(verifier, None, event, max_ttl, now_secs).await
}

/// The Lambda handler body: [`parse`]s the raw event and authorizes it in its shape, with the
/// caller's groups from `membership` when given (else from the token, [`TokenClaims`]).
pub async fn handle_with<M: Membership + Sync>(
    verifier: &Verifier,
    membership: Option<&M>,
    event: serde_json::Value,
    max_ttl: u64,
    now_secs: u64,
) -> Response {
    match parse(event) {
        Ok(Request::Events(r)) => Response::Events(
            events::authorize_with(verifier, membership, &r, max_ttl, now_secs).await,
        ),
        Ok(Request::Graphql(r)) => Response::Graphql(
            graphql::authorize_with(verifier, membership, &r, max_ttl, now_secs).await,
        ),
        Err(reason) => {
            tracing::warn!(%reason, "deny: malformed authorizer request");
            Response::Events(AuthorizerResponse::deny())
        }
    }
}

/// `token` with its groups replaced by the ones `membership` says the user holds now (sorted,
/// distinct); `token` unchanged without a source. The token stays the proof of who the user is
/// and of how long an allow may be cached (`exp`).
///
/// # Errors
/// The [`MembershipError`]: unknown, deleted or disabled user, or a failed lookup. The caller
/// denies: never the token's groups in place of an answer.
pub async fn with_current_groups<M: Membership + Sync>(
    mut token: VerifiedToken,
    membership: Option<&M>,
) -> Result<VerifiedToken, MembershipError> {
    if let Some(m) = membership {
        token.groups = m.current_groups(&token.sub).await?;
    }
    Ok(token)
}

/// The groups claim of the token being checked: for issuers groupcast cannot ask. Revocation
/// then takes effect when the token expires (`disconnectAfterInSeconds` never outlives it).
#[derive(Debug, Clone)]
pub struct TokenClaims<'a>(pub &'a VerifiedToken);

impl Membership for TokenClaims<'_> {
    async fn current_groups(&self, user: &str) -> Result<Vec<String>, MembershipError> {
        if user != self.0.sub {
            return Err(MembershipError::BadUser {
                user: user.to_owned(),
                rule: format!("the token's groups belong to {:?}", self.0.sub),
            });
        }
        Ok(self.0.groups.clone())
    }
}

/// The user pool to read groups from ([`crate::membership::USER_POOL_ENV`]), checked against the token issuer
/// `issuer`: a pool's tokens are issued by `https://cognito-idp.{region}.amazonaws.com/{pool}`
/// (or the `issuer-cognito-idp` host), so any other issuer's `sub` would be looked up in the
/// wrong directory.
///
/// # Errors
/// The variable and the rule it broke.
pub fn user_pool_from_lookup(
    get: impl Fn(&str) -> Option<String>,
    issuer: &str,
) -> Result<Option<crate::membership::UserPoolId>, String> {
    let Some(id) = get(USER_POOL_ENV)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let pool =
        crate::membership::UserPoolId::parse(&id).map_err(|e| format!("{USER_POOL_ENV}: {e}"))?;
    let region = pool.region();
    let ok = ["cognito-idp", "issuer-cognito-idp"].iter().any(|host| {
        issuer.trim_end_matches('/') == format!("https://{host}.{region}.amazonaws.com/{id}")
    });
    if !ok {
        return Err(format!(
            "{USER_POOL_ENV}: {id:?} did not issue tokens of GROUPCAST_JWT_ISSUER {issuer:?}: \
             groups would be read from another directory"
        ));
    }
    Ok(Some(pool))
}

/// `{"sub": …, "groups": "<JSON array text>"}`: who the caller is, for the handler or resolver.
pub fn identity_context(token: &VerifiedToken) -> BTreeMap<String, String> {
    let groups = serde_json::Value::from(token.groups.clone()).to_string();
    BTreeMap::from([
        ("sub".to_owned(), token.sub.clone()),
        ("groups".to_owned(), groups),
    ])
}

/// The cache lifetime for an allow: `max_ttl`, at most [`MAX_TTL_SECS`], never past `exp`.
pub fn ttl(token: &VerifiedToken, max_ttl: u64, now_secs: u64) -> u64 {
    let remaining = token.exp.saturating_sub(now_secs);
    max_ttl.min(MAX_TTL_SECS).min(remaining)
}

/// Reads `GROUPCAST_AUTHORIZER_TTL_SECS` through `get`.
///
/// # Errors
/// A message naming the variable and the rule.
pub fn ttl_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<u64, String> {
    match get(TTL_ENV)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        None => Ok(DEFAULT_TTL_SECS),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_TTL_SECS)
            .ok_or_else(|| {
                format!("{TTL_ENV}: {v:?} is not a whole number of seconds 0-{MAX_TTL_SECS}")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwtConfig;
    use serde_json::json;

    fn verifier() -> Verifier {
        // Port 9 (discard) on loopback: a JWKS fetch fails fast; these requests never verify.
        let mut c = JwtConfig::new("http://127.0.0.1:9", vec!["client".into()]);
        c.jwks_url = "http://127.0.0.1:9/jwks.json".into();
        Verifier::new(c).unwrap()
    }

    #[test]
    fn the_shape_is_told_by_operation_or_query_string() {
        let events = parse(json!({
            "authorizationToken": "t",
            "requestContext": {"apiId": "a", "accountId": "1", "requestId": "r",
                "operation": "EVENT_CONNECT", "channelNamespaceName": null, "channel": null},
            "requestHeaders": {}
        }))
        .unwrap();
        assert!(matches!(events, Request::Events(_)));
        let graphql = parse(json!({
            "authorizationToken": "t",
            "requestContext": {"apiId": "a", "accountId": "1", "requestId": "r",
                "queryString": "subscription { subscribe { topic } }", "operationName": null,
                "variables": {}},
            "requestHeaders": {}
        }))
        .unwrap();
        assert!(matches!(graphql, Request::Graphql(_)));
    }

    #[tokio::test]
    async fn malformed_requests_are_denied_never_a_panic() {
        let long = "x".repeat(100_000);
        for event in [
            json!(null),
            json!("text"),
            json!([1, 2]),
            json!({}),
            json!({"requestContext": null}),
            json!({"requestContext": "x"}),
            json!({"requestContext": {}}),
            json!({"requestContext": {"apiId": "a"}}),
            json!({"requestContext": {"operation": 7}}),
            json!({"requestContext": {"queryString": ["not", "a", "string"]}}),
            json!({"authorizationToken": 5, "requestContext": {"queryString": "q"}}),
            json!({"authorizationToken": long, "requestContext": {"queryString": "q"}}),
            json!({"authorizationToken": "a.b.c", "requestContext": {"operation": "EVENT_CONNECT"}}),
        ] {
            let r = handle(&verifier(), event.clone(), 300, 1000).await;
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                json!({"isAuthorized": false, "ttlOverride": 0}),
                "{event:.80}"
            );
        }
    }

    /// Found by tests/fuzz.rs: a field of the wrong type was logged as "invalid type: map,
    /// expected a string", naming no field.
    #[test]
    fn a_field_of_the_wrong_type_is_named_in_the_reason() {
        let reason = |event| parse(event).unwrap_err();
        assert_eq!(
            reason(
                json!({"requestContext": {"operation": "EVENT_SUBSCRIBE", "channel": {"a": 1}}})
            ),
            "AppSync Events authorizer request: requestContext.channel: invalid type: map, expected a string"
        );
        assert!(
            reason(json!({"authorizationToken": null, "requestContext": {"queryString": "q"}}))
                .starts_with(
                    "AppSync GraphQL authorizer request: authorizationToken: invalid type: null"
                ),
        );
        assert!(
            reason(json!({"requestContext": {"queryString": ["q"]}}))
                .starts_with("AppSync GraphQL authorizer request: requestContext.queryString: "),
        );
    }

    #[test]
    fn both_shapes_carry_the_same_identity_context() {
        let token = VerifiedToken {
            sub: "u".into(),
            groups: vec!["a\"b".into(), "Team_A".into()],
            exp: 2000,
            claims: Default::default(),
        };
        let events = crate::events::decide(
            &crate::events::RequestContext {
                api_id: None,
                account_id: None,
                request_id: None,
                operation: crate::events::Operation::EventConnect,
                channel_namespace_name: None,
                channel: None,
            },
            &token,
            300,
            1000,
        )
        .unwrap();
        let graphql = graphql::decide(&token, 300, 1000);
        assert_eq!(events.handler_context, graphql.resolver_context);
        let groups: Vec<String> =
            serde_json::from_str(&graphql.resolver_context.unwrap()["groups"]).unwrap();
        assert_eq!(groups, token.groups);
    }

    #[test]
    fn ttl_setting_is_bounded() {
        assert_eq!(ttl_from_lookup(|_| None), Ok(300));
        assert_eq!(ttl_from_lookup(|_| Some("60".into())), Ok(60));
        assert!(
            ttl_from_lookup(|_| Some("3601".into()))
                .unwrap_err()
                .contains(TTL_ENV)
        );
    }
}
