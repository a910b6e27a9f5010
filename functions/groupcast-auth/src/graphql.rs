//! The AppSync GraphQL Lambda authorizer: its request and response types and its decision.
//!
//! AppSync sends `{authorizationToken, requestContext: {apiId, accountId, requestId, queryString,
//! operationName, variables}, requestHeaders}` and reads back `{isAuthorized, resolverContext,
//! deniedFields, ttlOverride}`: `resolverContext` is a flat map of strings visible to resolvers as
//! `$ctx.identity.resolverContext`, `deniedFields` lists fields (`TypeName.FieldName` or their
//! ARNs) forced to `null` for this caller, and `ttlOverride` is how long the answer may be cached.
//! https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html#aws-lambda-authorization
//!
//! groupcast's rule ([`decide`]): a verified token is allowed; which groups it may receive is
//! checked at subscribe time by the generated `Subscription.subscribe` resolver, from
//! `resolverContext.groups`. `Mutation.publish` is always denied: end users never publish (the
//! publisher signs with IAM, which does not reach this authorizer). The answer never depends on
//! the query, so AppSync may cache it for the token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authorizer;
use crate::events::strip_bearer;
use crate::jwt::{VerifiedToken, Verifier};
use crate::membership::Membership;

/// Fields an end user may never resolve, whatever the schema's directives say.
pub const DENIED_FIELDS: &[&str] = &["Mutation.publish"];

/// What AppSync sends a GraphQL API's Lambda authorizer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlAuthorizerRequest {
    /// The `Authorization` value the client sent.
    #[serde(default)]
    pub authorization_token: String,
    /// The API and the GraphQL request.
    pub request_context: GraphqlRequestContext,
}

/// `requestContext` of a [`GraphqlAuthorizerRequest`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlRequestContext {
    /// The GraphQL API id.
    #[serde(default)]
    pub api_id: Option<String>,
    /// The AWS account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// AppSync's request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The GraphQL document (the shape's marker: Events requests have `operation` instead).
    pub query_string: String,
    /// The operation to run, when the document names one.
    #[serde(default)]
    pub operation_name: Option<String>,
    /// The operation's variables.
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
}

/// What the GraphQL authorizer answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphqlAuthorizerResponse {
    /// Allow or deny.
    pub is_authorized: bool,
    /// `$ctx.identity.resolverContext`; only on allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver_context: Option<BTreeMap<String, String>>,
    /// Fields forced to `null` for this caller; only on allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_fields: Option<Vec<String>>,
    /// How long AppSync may cache this answer, seconds.
    pub ttl_override: u64,
}

impl GraphqlAuthorizerResponse {
    /// A deny, never cached.
    pub fn deny() -> Self {
        GraphqlAuthorizerResponse {
            is_authorized: false,
            resolver_context: None,
            denied_fields: None,
            ttl_override: 0,
        }
    }
}

/// The decision for a verified token: allowed, with `resolverContext = {"sub", "groups": "<JSON
/// array text>"}` (the same encoding as the Events `handlerContext`), [`DENIED_FIELDS`], and a
/// `ttlOverride` that never outlives the token.
pub fn decide(token: &VerifiedToken, max_ttl: u64, now_secs: u64) -> GraphqlAuthorizerResponse {
    GraphqlAuthorizerResponse {
        is_authorized: true,
        resolver_context: Some(authorizer::identity_context(token)),
        denied_fields: Some(DENIED_FIELDS.iter().map(|f| f.to_string()).collect()),
        ttl_override: authorizer::ttl(token, max_ttl, now_secs),
    }
}

/// Verifies the request's token and decides. Never fails: a token that does not verify is a deny,
/// logged with its reason (never the token).
pub async fn authorize(
    verifier: &Verifier,
    request: &GraphqlAuthorizerRequest,
    max_ttl: u64,
    now_secs: u64,
) -> GraphqlAuthorizerResponse {
    authorize_with::<authorizer::TokenClaims<'static>>(verifier, None, request, max_ttl, now_secs)
        .await
}

/// [`authorize`], with the caller's groups from `membership` when given (the user's current
/// groups: [`authorizer::with_current_groups`]); a failed lookup is a deny.
pub async fn authorize_with<M: Membership + Sync>(
    verifier: &Verifier,
    membership: Option<&M>,
    request: &GraphqlAuthorizerRequest,
    max_ttl: u64,
    now_secs: u64,
) -> GraphqlAuthorizerResponse {
    let ctx = &request.request_context;
    let verified = match verifier
        .verify(strip_bearer(&request.authorization_token))
        .await
    {
        Ok(token) => authorizer::with_current_groups(token, membership)
            .await
            .map_err(|e| format!("current groups: {e}")),
        Err(reason) => Err(format!("token: {reason}")),
    };
    match verified {
        Ok(token) => {
            let response = decide(&token, max_ttl, now_secs);
            tracing::info!(
                shape = "graphql",
                operation = ctx.operation_name.as_deref(),
                sub = token.sub,
                ttl = response.ttl_override,
                "allow"
            );
            response
        }
        Err(reason) => {
            tracing::warn!(shape = "graphql", operation = ctx.operation_name.as_deref(), %reason, "deny");
            GraphqlAuthorizerResponse::deny()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(groups: &[&str], exp: u64) -> VerifiedToken {
        VerifiedToken {
            sub: "user-1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            exp,
            claims: Default::default(),
        }
    }

    #[test]
    fn the_documented_request_parses() {
        let r: GraphqlAuthorizerRequest = serde_json::from_value(json!({
            "authorizationToken": "t",
            "requestContext": {"apiId": "a", "accountId": "111122223333", "requestId": "r",
                "queryString": "subscription S { subscribe { topic } }", "operationName": "S",
                "variables": {}},
            "requestHeaders": {"host": "x"}
        }))
        .unwrap();
        assert_eq!(r.request_context.operation_name.as_deref(), Some("S"));
    }

    #[test]
    fn an_allow_carries_the_groups_as_json_array_text_and_denies_publish() {
        let r = decide(&token(&["Team_A", "b"], 10_000), 300, 1000);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "isAuthorized": true,
                "resolverContext": {"groups": "[\"Team_A\",\"b\"]", "sub": "user-1"},
                "deniedFields": ["Mutation.publish"],
                "ttlOverride": 300
            })
        );
    }

    #[test]
    fn ttl_never_outlives_the_token() {
        assert_eq!(decide(&token(&[], 1042), 300, 1000).ttl_override, 42);
        assert_eq!(decide(&token(&[], 999_999), 9999, 1000).ttl_override, 3600);
        assert_eq!(
            serde_json::to_value(GraphqlAuthorizerResponse::deny()).unwrap(),
            json!({"isAuthorized": false, "ttlOverride": 0})
        );
    }
}
