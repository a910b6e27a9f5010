//! The AppSync Events Lambda authorizer: its request and response types and its decision.
//!
//! [`authorize`] verifies the token, then [`decide`] applies groupcast's rule:
//!
//! - `EVENT_CONNECT`: allowed with a valid token.
//! - `EVENT_SUBSCRIBE`: allowed only when the channel is `/{namespace}/{segment}[/…]`, the
//!   namespace is the request's, and `segment` (no `*`) is `groupcast::group_segment` of one of
//!   the token's groups.
//! - `EVENT_PUBLISH`: always denied. End users never publish; groupcast's trusted publishers use
//!   IAM or an API key, which do not reach this authorizer.
//! - anything else: denied.
//!
//! An allow carries `handlerContext = {"sub": …, "groups": "<JSON array text>"}` (the contract in
//! `templates/README.md`, read by the generated Events handler) and a `ttlOverride` that never
//! outlives the token. A deny carries `ttlOverride: 0`, so a refusal is never cached. The Lambda
//! entry that tells this shape from the GraphQL one is [`crate::authorizer::handle`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authorizer;
use crate::jwt::{JwtError, VerifiedToken, Verifier};
use crate::membership::{Membership, MembershipError};

/// What AppSync sends the authorizer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerRequest {
    /// The `Authorization` value the client sent.
    #[serde(default)]
    pub authorization_token: String,
    /// Where and what.
    pub request_context: RequestContext,
}

/// `requestContext` of an [`AuthorizerRequest`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The Event API id.
    #[serde(default)]
    pub api_id: Option<String>,
    /// The AWS account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// AppSync's request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// What the client asks to do.
    pub operation: Operation,
    /// The channel namespace (`null` on connect).
    #[serde(default)]
    pub channel_namespace_name: Option<String>,
    /// The channel path (`null` on connect).
    #[serde(default)]
    pub channel: Option<String>,
}

/// `requestContext.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Open a WebSocket connection.
    EventConnect,
    /// Subscribe to a channel.
    EventSubscribe,
    /// Publish to a channel.
    EventPublish,
    /// An operation this authorizer does not know: always denied.
    #[serde(other)]
    Unknown,
}

/// What the authorizer answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    /// Allow or deny.
    pub is_authorized: bool,
    /// `ctx.identity.handlerContext` for the Events handler; only on allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler_context: Option<BTreeMap<String, String>>,
    /// How long AppSync may cache this answer, seconds.
    pub ttl_override: u64,
}

/// Why a request was denied (for logs; AppSync only sees `isAuthorized: false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DenyReason {
    /// The token did not verify.
    #[error("token: {0}")]
    Token(#[from] JwtError),
    /// The user's current groups are not known (user gone, disabled, lookup failed).
    #[error("current groups: {0}")]
    Membership(#[from] MembershipError),
    /// End users may not publish.
    #[error("EVENT_PUBLISH is not allowed to end users")]
    Publish,
    /// The operation is not one this authorizer knows.
    #[error("unknown operation")]
    UnknownOperation,
    /// The channel is not a group channel of the request's namespace.
    #[error("channel {channel:?}: {rule}")]
    Channel {
        /// The channel as requested.
        channel: String,
        /// The rule it broke.
        rule: String,
    },
    /// The channel's group segment maps from none of the token's groups.
    #[error("channel group segment {segment:?} is not one of the caller's groups")]
    NotMember {
        /// The channel's group segment.
        segment: String,
    },
}

impl AuthorizerResponse {
    /// A deny, never cached.
    pub fn deny() -> Self {
        AuthorizerResponse {
            is_authorized: false,
            handler_context: None,
            ttl_override: 0,
        }
    }
}

/// Verifies the request's token and decides on the token's groups. Never fails: every problem
/// is a deny, logged with its reason (never the token).
pub async fn authorize(
    verifier: &Verifier,
    request: &AuthorizerRequest,
    max_ttl: u64,
    now_secs: u64,
) -> AuthorizerResponse {
    authorize_with::<authorizer::TokenClaims<'static>>(verifier, None, request, max_ttl, now_secs)
        .await
}

/// [`authorize`], with the caller's groups from `membership` when given (the user's current
/// groups: [`authorizer::with_current_groups`]); a failed lookup is a deny.
pub async fn authorize_with<M: Membership + Sync>(
    verifier: &Verifier,
    membership: Option<&M>,
    request: &AuthorizerRequest,
    max_ttl: u64,
    now_secs: u64,
) -> AuthorizerResponse {
    let ctx = &request.request_context;
    let token = strip_bearer(&request.authorization_token);
    let decision = match verifier.verify(token).await {
        Ok(verified) => match authorizer::with_current_groups(verified, membership).await {
            Ok(current) => decide(ctx, &current, max_ttl, now_secs).map(|r| (r, current.sub)),
            Err(e) => Err(DenyReason::Membership(e)),
        },
        Err(e) => Err(DenyReason::Token(e)),
    };
    match decision {
        Ok((response, sub)) => {
            tracing::info!(operation = ?ctx.operation, channel = ctx.channel.as_deref(), sub, ttl = response.ttl_override, "allow");
            response
        }
        Err(reason) => {
            tracing::warn!(operation = ?ctx.operation, channel = ctx.channel.as_deref(), %reason, "deny");
            AuthorizerResponse::deny()
        }
    }
}

/// The decision for a verified token. See the [module docs](self).
///
/// # Errors
/// The [`DenyReason`].
pub fn decide(
    ctx: &RequestContext,
    token: &VerifiedToken,
    max_ttl: u64,
    now_secs: u64,
) -> Result<AuthorizerResponse, DenyReason> {
    match ctx.operation {
        Operation::EventConnect => {}
        Operation::EventSubscribe => check_subscribe(ctx, &token.groups)?,
        Operation::EventPublish => return Err(DenyReason::Publish),
        Operation::Unknown => return Err(DenyReason::UnknownOperation),
    }
    Ok(AuthorizerResponse {
        is_authorized: true,
        handler_context: Some(authorizer::identity_context(token)),
        ttl_override: authorizer::ttl(token, max_ttl, now_secs),
    })
}

fn check_subscribe(ctx: &RequestContext, groups: &[String]) -> Result<(), DenyReason> {
    let channel = ctx.channel.as_deref().unwrap_or_default();
    let bad = |rule: &str| DenyReason::Channel {
        channel: channel.to_owned(),
        rule: rule.to_owned(),
    };
    let segments: Vec<&str> = channel
        .strip_prefix('/')
        .unwrap_or(channel)
        .split('/')
        .collect();
    if segments.len() < 2 || segments.len() > groupcast::limits::CHANNEL_MAX_SEGMENTS {
        return Err(bad(
            "a group channel is /{namespace}/{group}[/topic…] with at most 5 segments",
        ));
    }
    let namespace = segments[0];
    // Checked even when the request names no namespace: `//team-a` is no namespace's channel.
    if !groupcast::is_valid_segment(namespace) {
        return Err(bad("the namespace segment is not a valid channel segment"));
    }
    if ctx
        .channel_namespace_name
        .as_deref()
        .is_some_and(|ns| ns != namespace)
    {
        return Err(bad(
            "the first segment is not the request's channel namespace",
        ));
    }
    let segment = segments[1];
    if segment.contains('*') {
        return Err(bad(
            "the group segment must not be a wildcard: it would span other groups",
        ));
    }
    if !groupcast::is_valid_segment(segment) {
        return Err(bad("the group segment is not a valid channel segment"));
    }
    let last = segments.len() - 1;
    let rest_ok = segments
        .iter()
        .enumerate()
        .skip(2)
        .all(|(i, s)| groupcast::is_valid_segment(s) || (i == last && *s == "*"));
    if !rest_ok {
        return Err(bad(
            "topic segments must be valid channel segments; only a whole last segment may be *",
        ));
    }
    let member = groups
        .iter()
        .any(|g| groupcast::group_segment(g).is_ok_and(|s| s == segment));
    if member {
        Ok(())
    } else {
        Err(DenyReason::NotMember {
            segment: segment.to_owned(),
        })
    }
}

/// The token without a leading `Bearer ` (any case).
pub fn strip_bearer(token: &str) -> &str {
    let t = token.trim();
    match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => t[7..].trim_start(),
        _ => t,
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

    fn ctx(op: Operation, channel: Option<&str>) -> RequestContext {
        RequestContext {
            api_id: Some("api".into()),
            account_id: None,
            request_id: None,
            operation: op,
            channel_namespace_name: channel.map(|_| "live".into()),
            channel: channel.map(Into::into),
        }
    }

    #[test]
    fn request_parses_the_documented_shape_including_null_channel_on_connect() {
        let r: AuthorizerRequest = serde_json::from_value(json!({
            "authorizationToken": "t",
            "requestContext": {"apiId": "a", "accountId": "1", "requestId": "r", "operation": "EVENT_CONNECT",
                               "channelNamespaceName": null, "channel": null},
            "requestHeaders": {"x": "y"}
        }))
        .unwrap();
        assert_eq!(r.request_context.operation, Operation::EventConnect);
        assert_eq!(r.request_context.channel, None);
        let r: RequestContext =
            serde_json::from_value(json!({"operation": "EVENT_SOMETHING_NEW"})).unwrap();
        assert_eq!(r.operation, Operation::Unknown);
    }

    #[test]
    fn subscribe_to_own_group_is_allowed_with_the_handler_context_contract() {
        let r = decide(
            &ctx(Operation::EventSubscribe, Some("/live/x--Team-5fA/news/*")),
            &token(&["Team_A", "b"], 10_000),
            300,
            1000,
        )
        .unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"isAuthorized": true, "handlerContext": {"groups": "[\"Team_A\",\"b\"]", "sub": "user-1"}, "ttlOverride": 300})
        );
        assert!(
            decide(
                &ctx(Operation::EventSubscribe, Some("live/b")),
                &token(&["b"], 10_000),
                300,
                1000
            )
            .is_ok()
        );
    }

    #[test]
    fn subscribe_outside_own_groups_or_with_wildcards_is_denied() {
        let t = token(&["team-a", "Team_A"], 10_000);
        for channel in [
            "/live/team-b/x",
            "/live/*",
            "/live/team-a*",
            "/live/TEAM-A/x",
            "/live",
            "/live//x",
            "",
            "/live/Team_A/x",
            "/other/team-a/x",
            "/live/team-a/a/b/c/d",
            "/live/team-a//x",
            "/live/team-a/x*",
            "/live/team-a/*/x",
            "/live/team-a/",
        ] {
            let e = decide(
                &ctx(Operation::EventSubscribe, Some(channel)),
                &t,
                300,
                1000,
            )
            .unwrap_err();
            assert!(
                matches!(e, DenyReason::Channel { .. } | DenyReason::NotMember { .. }),
                "{channel:?}: {e}"
            );
        }
        let no_channel = RequestContext {
            channel: None,
            ..ctx(Operation::EventSubscribe, Some("/live/team-a"))
        };
        assert!(decide(&no_channel, &t, 300, 1000).is_err());
        assert!(
            decide(
                &ctx(Operation::EventSubscribe, Some("/live/team-a")),
                &token(&[], 10_000),
                300,
                1000
            )
            .is_err()
        );
    }

    /// Found by tests/fuzz.rs: with no channelNamespaceName (or an empty one), a channel with an
    /// empty or blank namespace segment (`//team-a`, `/ /team-a`) was allowed.
    #[test]
    fn a_channel_whose_namespace_segment_is_not_a_segment_is_denied() {
        let t = token(&["team-a"], 10_000);
        for (namespace, channel) in [
            (None, "//team-a"),
            (None, "/ /team-a"),
            (Some(""), "//team-a"),
            (None, "/li*ve/team-a"),
        ] {
            let ctx = RequestContext {
                channel_namespace_name: namespace.map(Into::into),
                ..ctx(Operation::EventSubscribe, Some(channel))
            };
            let e = decide(&ctx, &t, 300, 1000).unwrap_err();
            assert!(
                matches!(&e, DenyReason::Channel { rule, .. } if rule.contains("namespace")),
                "{channel:?}: {e}"
            );
        }
    }

    #[test]
    fn publish_and_unknown_operations_are_denied_and_connect_allowed() {
        let t = token(&["team-a"], 10_000);
        assert_eq!(
            decide(
                &ctx(Operation::EventPublish, Some("/live/team-a/x")),
                &t,
                300,
                1000
            )
            .unwrap_err(),
            DenyReason::Publish
        );
        assert_eq!(
            decide(&ctx(Operation::Unknown, None), &t, 300, 1000).unwrap_err(),
            DenyReason::UnknownOperation
        );
        assert!(
            decide(&ctx(Operation::EventConnect, None), &t, 300, 1000)
                .unwrap()
                .is_authorized
        );
    }

    #[test]
    fn ttl_never_outlives_the_token_nor_3600() {
        let c = ctx(Operation::EventConnect, None);
        assert_eq!(
            decide(&c, &token(&[], 1042), 300, 1000)
                .unwrap()
                .ttl_override,
            42
        );
        assert_eq!(
            decide(&c, &token(&[], 999_999), 9999, 1000)
                .unwrap()
                .ttl_override,
            3600
        );
        assert_eq!(
            decide(&c, &token(&[], 1000), 300, 1000)
                .unwrap()
                .ttl_override,
            0
        );
        let deny = serde_json::to_value(AuthorizerResponse::deny()).unwrap();
        assert_eq!(deny, json!({"isAuthorized": false, "ttlOverride": 0}));
    }

    #[test]
    fn bearer_prefix_is_stripped() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc"), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearerabc"), "Bearerabc");
    }
}
