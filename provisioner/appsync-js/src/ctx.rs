//! The `ctx` an AppSync Events handler receives, built from Rust types: the caller's identity per
//! auth mode, the channel, the operation, the published events and the request headers.
//!
//! The shape is AppSync's (context-reference.html, `../shared/reference/aws-protocols.md` §3):
//! `{identity, info: {channel: {path, segments}, channelNamespace: {name}, operation}, request:
//! {headers, domainName}, stash, events, error, result}`, and the same as the isolation harness's
//! `eventsCtx` (tests/harness/lib/handler.js), which the parity test checks field by field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which handler runs: AppSync's `ctx.info.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `onSubscribe`.
    Subscribe,
    /// `onPublish`.
    Publish,
}

/// One published event as the handler sees it: `{id, payload}`, the payload already parsed
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/channel-namespace-handlers.html).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingEvent {
    /// The id AppSync gave the event; returned events must reuse it.
    pub id: String,
    /// The event's JSON value.
    pub payload: Value,
}

/// `ctx.identity` for a caller of the `AWS_IAM` auth mode
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/context-reference.html).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamIdentity {
    /// The caller's account.
    pub account_id: String,
    /// Set for a Cognito identity-pool session, else `null`.
    pub cognito_identity_pool_id: Option<String>,
    /// Set for a Cognito identity-pool session, else `null`.
    pub cognito_identity_id: Option<String>,
    /// The caller's source addresses.
    pub source_ip: Vec<String>,
    /// The principal's unique id (`AROA...:session` for a role session).
    pub username: String,
    /// The principal's ARN (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` for a role session).
    pub user_arn: String,
    /// `authenticated` / `unauthenticated` for identity-pool sessions, else `null`.
    pub cognito_identity_auth_type: Option<String>,
    /// The identity pool's provider, else `null`.
    pub cognito_identity_auth_provider: Option<String>,
}

/// `ctx.identity` for a caller of the `AMAZON_COGNITO_USER_POOLS` auth mode
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/context-reference.html): `groups` is a field
/// of its own, `null` when the user is in no group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CognitoIdentity {
    /// The user's `sub`.
    pub sub: String,
    /// The verified token's issuer (the user pool's URL).
    pub issuer: String,
    /// `cognito:username`.
    pub username: String,
    /// The token's claims.
    pub claims: Map<String, Value>,
    /// The caller's source addresses.
    pub source_ip: Vec<String>,
    /// The API's default strategy (`ALLOW` / `DENY`), when set.
    pub default_auth_strategy: Option<String>,
    /// `cognito:groups`, or `null`.
    pub groups: Option<Vec<String>>,
}

/// `ctx.identity` for a caller of the `OPENID_CONNECT` auth mode. The Events context page does not
/// document it (aws-protocols.md §3, **UNDOCUMENTED**); this is the GraphQL context's OIDC shape
/// (https://docs.aws.amazon.com/appsync/latest/devguide/resolver-context-reference-js.html), as the
/// harness models it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcIdentity {
    /// The token's `sub`.
    pub sub: String,
    /// The verified token's issuer.
    pub issuer: String,
    /// The token's claims.
    pub claims: Map<String, Value>,
}

/// `ctx.identity` for a caller of the `AWS_LAMBDA` auth mode: what the authorizer returned as
/// `handlerContext` (https://docs.aws.amazon.com/appsync/latest/eventapi/configure-event-api-auth.html).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaIdentity {
    /// The authorizer's `handlerContext`, as it returned it.
    pub handler_context: Value,
}

/// `ctx.identity`, per auth mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Identity {
    /// `API_KEY`: AppSync populates no identity, so `ctx.identity` is `null`.
    ApiKey,
    /// `AWS_IAM`.
    Iam(IamIdentity),
    /// `AMAZON_COGNITO_USER_POOLS`.
    Cognito(CognitoIdentity),
    /// `OPENID_CONNECT`.
    Oidc(OidcIdentity),
    /// `AWS_LAMBDA`.
    Lambda(LambdaIdentity),
    /// Any JSON value as it is: forged and malformed identities for tests, and the parity test's
    /// corpus, which holds identities no auth mode produces.
    Raw(Value),
}

/// The `ctx` of one handler invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Ctx {
    /// The caller.
    pub identity: Identity,
    /// The channel path as the client sent it (`/ns/a/b`, possibly with a trailing `*`); `None` only
    /// for tests of a missing path.
    pub channel: Option<String>,
    /// `SUBSCRIBE` or `PUBLISH`.
    pub operation: Operation,
    /// The published events (`null` for a subscribe).
    pub events: Option<Vec<IncomingEvent>>,
    /// The request's headers.
    pub headers: BTreeMap<String, String>,
    /// The custom domain the request came through, if any.
    pub domain_name: Option<String>,
}

impl Ctx {
    /// The ctx of a subscribe to `channel` by `identity`.
    pub fn subscribe(identity: Identity, channel: impl Into<String>) -> Self {
        Ctx {
            identity,
            channel: Some(channel.into()),
            operation: Operation::Subscribe,
            events: None,
            headers: BTreeMap::new(),
            domain_name: None,
        }
    }

    /// The ctx of a publish of `events` to `channel` by `identity`.
    pub fn publish(
        identity: Identity,
        channel: impl Into<String>,
        events: Vec<IncomingEvent>,
    ) -> Self {
        Ctx {
            identity,
            channel: Some(channel.into()),
            operation: Operation::Publish,
            events: Some(events),
            headers: BTreeMap::new(),
            domain_name: None,
        }
    }

    /// The channel's segments: the path split at `/`, empty parts left out, so `/ns/a/` gives
    /// `["ns", "a"]` (the harness's `eventsCtx` rule; AppSync documents `segments` as the path's
    /// segments, channel-namespace-handlers.html).
    pub fn segments(&self) -> Vec<&str> {
        self.channel
            .as_deref()
            .map(|p| p.split('/').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The ctx as the JSON value the handler receives.
    pub fn to_json(&self) -> Value {
        let segments = self.segments();
        let mut namespace = Map::new();
        // No segment, no namespace name: the key is left out, as `undefined` is in the harness.
        if let Some(first) = segments.first() {
            namespace.insert("name".into(), Value::from(*first));
        }
        let identity = serde_json::to_value(&self.identity).unwrap_or(Value::Null);
        let events = match &self.events {
            Some(events) => serde_json::to_value(events).unwrap_or(Value::Null),
            None => Value::Null,
        };
        serde_json::json!({
            "identity": identity,
            "info": {
                "channel": { "path": self.channel, "segments": segments },
                "channelNamespace": namespace,
                "operation": self.operation,
            },
            "request": { "headers": self.headers, "domainName": self.domain_name },
            "stash": {},
            "events": events,
            "error": null,
            "result": null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subscribe_ctx_has_appsyncs_fields_with_the_namespace_from_the_first_segment() {
        let ctx = Ctx::subscribe(Identity::ApiKey, "/live/team-a/*");
        assert_eq!(
            ctx.to_json(),
            json!({
                "identity": null,
                "info": {
                    "channel": { "path": "/live/team-a/*", "segments": ["live", "team-a", "*"] },
                    "channelNamespace": { "name": "live" },
                    "operation": "SUBSCRIBE",
                },
                "request": { "headers": {}, "domainName": null },
                "stash": {},
                "events": null,
                "error": null,
                "result": null,
            })
        );
    }

    #[test]
    fn each_auth_modes_identity_has_the_documented_field_names() {
        let iam = serde_json::to_value(Identity::Iam(IamIdentity {
            user_arn: "arn:aws:sts::1:assumed-role/r/s".into(),
            ..Default::default()
        }))
        .unwrap();
        let keys: Vec<&str> = iam
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "accountId",
                "cognitoIdentityPoolId",
                "cognitoIdentityId",
                "sourceIp",
                "username",
                "userArn",
                "cognitoIdentityAuthType",
                "cognitoIdentityAuthProvider"
            ]
        );
        let cognito = serde_json::to_value(Identity::Cognito(CognitoIdentity::default())).unwrap();
        let keys: Vec<&str> = cognito
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "sub",
                "issuer",
                "username",
                "claims",
                "sourceIp",
                "defaultAuthStrategy",
                "groups"
            ]
        );
        let lambda = Identity::Lambda(LambdaIdentity {
            handler_context: json!({"groups": "[]"}),
        });
        assert_eq!(
            serde_json::to_value(lambda).unwrap(),
            json!({"handlerContext": {"groups": "[]"}})
        );
        assert_eq!(serde_json::to_value(Identity::ApiKey).unwrap(), Value::Null);
    }

    #[test]
    fn a_publish_ctx_carries_the_events_and_a_path_without_segments_has_no_namespace_name() {
        let events = vec![IncomingEvent {
            id: "e1".into(),
            payload: json!({"a": 1}),
        }];
        let ctx = Ctx::publish(Identity::ApiKey, "/", events);
        let v = ctx.to_json();
        assert_eq!(v["events"], json!([{"id": "e1", "payload": {"a": 1}}]));
        assert_eq!(v["info"]["channelNamespace"], json!({}));
        assert_eq!(v["info"]["operation"], json!("PUBLISH"));
    }
}
