//! The iot-grant handler: a request `{token, identityId?}` in, this project's IoT policies on the
//! token's own Cognito identity reconciled with the user's IoT groups (`groupcast_auth::grant`), a
//! report out.
//!
//! The identity is the token's, never the caller's choice: after the ID token verifies
//! (`groupcast_auth::jwt`), the function asks Cognito which identity that token logs in as
//! (`cognito-identity:GetId`, [`crate::identity`]) and grants to that identity only. A request that
//! names an `identityId` must name that same one, or it is refused with both ids in the error.
//! Nothing is attached or detached before all of this holds.

use groupcast_auth::grant::{self, Grant, GrantError, GrantRules, IotPolicyApi};
use groupcast_auth::jwt::{JwtError, VerifiedToken, Verifier};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, IdentityIds};

/// The request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrantRequest {
    /// The user's ID token (a `Bearer ` prefix is allowed).
    pub token: String,
    /// Optional: the identity id the caller believes is the token's; it must be.
    #[serde(default)]
    pub identity_id: Option<String>,
}

/// The response: who, which groups, and what changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantResponse {
    /// The token's `sub`.
    pub sub: String,
    /// The token's groups.
    pub groups: Vec<String>,
    /// What the grant did, on the token's identity (`identityId`).
    #[serde(flatten)]
    pub grant: Grant,
}

/// Why a grant failed; [`Failure::error_type`] is the Lambda `errorType`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The request is not `{token, identityId?}`, or the identity id is malformed.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The token did not verify.
    #[error("token rejected: {0}")]
    Unauthorized(#[from] JwtError),
    /// Cognito refused the token as a login, or could not be asked.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The request names an identity that is not the token's.
    #[error(
        "identityId {requested:?} in the request is not the token's identity {token:?} \
         (cognito-identity:GetId for the token's login): nothing was changed"
    )]
    IdentityMismatch {
        /// What the request named.
        requested: String,
        /// What Cognito says the token is.
        token: String,
    },
    /// The grant was refused (quota) or an IoT call failed.
    #[error("{0}")]
    Grant(#[from] GrantError),
}

impl Failure {
    fn error_type(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) | Failure::Grant(GrantError::Target { .. }) => "BadRequest",
            Failure::Unauthorized(_) => "Unauthorized",
            Failure::Identity(e) if e.not_authorized => "Unauthorized",
            Failure::Identity(_) => "IdentityFailed",
            Failure::IdentityMismatch { .. } => "IdentityMismatch",
            Failure::Grant(GrantError::Quota { .. }) => "QuotaExceeded",
            Failure::Grant(_) => "GrantFailed",
        }
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.error_type().into(),
            error_message: f.to_string(),
        }
    }
}

/// What the handler needs, built once at cold start.
#[derive(Debug)]
pub(crate) struct Deps<I, A> {
    pub verifier: Verifier,
    pub identities: I,
    pub iot: A,
    pub rules: GrantRules,
}

/// Parses, verifies the token, then [`grant_to_token_identity`]. See the [module docs](self).
pub(crate) async fn handle<I: IdentityIds + Sync, A: IotPolicyApi + Sync>(
    deps: &Deps<I, A>,
    event: serde_json::Value,
) -> Result<GrantResponse, Failure> {
    let request: GrantRequest = serde_json::from_value(event).map_err(|e| {
        Failure::BadRequest(format!(
            "{e}; expected {{\"token\": \"<ID token>\", \"identityId\": \"<region>:<uuid>\" (optional)}}"
        ))
    })?;
    if let Some(id) = &request.identity_id {
        grant::validate_identity_id(id)?;
    }
    let raw = groupcast_auth::events::strip_bearer(&request.token);
    let token = deps.verifier.verify(raw).await?;
    grant_to_token_identity(deps, raw, token, request.identity_id.as_deref()).await
}

/// For a verified `token` (`raw` is its text): its identity from Cognito, the mismatch check,
/// then the grant.
pub(crate) async fn grant_to_token_identity<I: IdentityIds + Sync, A: IotPolicyApi + Sync>(
    deps: &Deps<I, A>,
    raw: &str,
    token: VerifiedToken,
    requested: Option<&str>,
) -> Result<GrantResponse, Failure> {
    let identity = deps.identities.identity_id(raw).await?;
    if let Some(requested) = requested.filter(|r| *r != identity) {
        tracing::warn!(
            sub = token.sub,
            requested,
            identity,
            "refused: identityId is not the token's"
        );
        return Err(Failure::IdentityMismatch {
            requested: requested.to_owned(),
            token: identity,
        });
    }
    let grant = grant::reconcile(&deps.iot, &deps.rules, &identity, &token.groups).await?;
    Ok(GrantResponse {
        sub: token.sub,
        groups: token.groups,
        grant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use groupcast_auth::grant::{ApiError, PROJECT_TAG};
    use groupcast_auth::jwt::JwtConfig;
    use serde_json::json;

    const A: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";
    const B: &str = "us-east-1:7d1e4f00-2c3b-4a5d-8e6f-90a1b2c3d4e5";

    /// Cognito that knows one login: the token text "token-a" is identity A.
    struct OneLogin;
    impl IdentityIds for OneLogin {
        async fn identity_id(&self, id_token: &str) -> Result<String, IdentityError> {
            match id_token {
                "token-a" => Ok(A.to_owned()),
                _ => Err(IdentityError {
                    not_authorized: true,
                    message: "NotAuthorizedException: Invalid login token.".into(),
                }),
            }
        }
    }

    /// IoT recording writes; every policy `g-*` exists, tagged project `p`.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl IotPolicyApi for Recorder {
        async fn attached_policies(&self, _: &str) -> Result<Vec<String>, ApiError> {
            Ok(Vec::new())
        }
        async fn policy_tags(
            &self,
            policy: &str,
        ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
            Ok(policy
                .starts_with("g-")
                .then(|| BTreeMap::from([(PROJECT_TAG.to_owned(), "p".to_owned())])))
        }
        async fn attach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("attach {policy} {target}"));
            Ok(())
        }
        async fn detach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("detach {policy} {target}"));
            Ok(())
        }
    }

    fn deps() -> Deps<OneLogin, Recorder> {
        // Port 9 (discard) on loopback: a JWKS fetch fails fast; these tests verify no token.
        let mut c = JwtConfig::new("http://127.0.0.1:9", vec!["client".into()]);
        c.jwks_url = "http://127.0.0.1:9/jwks.json".into();
        Deps {
            verifier: Verifier::new(c).unwrap(),
            identities: OneLogin,
            iot: Recorder::default(),
            rules: GrantRules::new("p", "g-{group}", &["team-a".into(), "team-b".into()]).unwrap(),
        }
    }

    fn verified(groups: &[&str]) -> VerifiedToken {
        VerifiedToken {
            sub: "user-a".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            exp: u64::MAX,
            claims: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_token_for_user_a_naming_identity_b_is_refused_naming_both_and_changes_nothing() {
        let d = deps();
        let e = grant_to_token_identity(&d, "token-a", verified(&["team-a"]), Some(B))
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(message.contains(A) && message.contains(B), "{message}");
        assert_eq!(Diagnostic::from(e).error_type, "IdentityMismatch");
        assert!(d.iot.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_grant_goes_to_the_tokens_own_identity_whether_or_not_the_request_names_it() {
        for requested in [None, Some(A)] {
            let d = deps();
            let r =
                grant_to_token_identity(&d, "token-a", verified(&["team-a", "admins"]), requested)
                    .await
                    .unwrap();
            assert_eq!(r.grant.identity_id, A);
            assert_eq!(r.grant.attached, ["g-team-a"]);
            assert_eq!(r.grant.ignored, ["admins"]);
            assert_eq!(*d.iot.0.lock().unwrap(), [format!("attach g-team-a {A}")]);
        }
    }

    #[tokio::test]
    async fn a_login_cognito_refuses_is_unauthorized_and_changes_nothing() {
        let d = deps();
        let e = grant_to_token_identity(&d, "token-x", verified(&["team-a"]), None)
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "Unauthorized");
        assert!(d.iot.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_requests_are_rejected_before_any_call() {
        for (event, field) in [
            (json!({"identityId": A}), "token"),
            (json!({"token": "t", "identityId": A, "extra": 1}), "extra"),
            (
                json!({"token": "t", "identityId": "../../thinggroup/x"}),
                "identityId",
            ),
            (json!("just a string"), "expected"),
        ] {
            let d = deps();
            let e = handle(&d, event.clone()).await.unwrap_err();
            assert!(e.to_string().contains(field), "{event}: {e}");
            assert_eq!(Diagnostic::from(e).error_type, "BadRequest");
            assert!(d.iot.0.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn an_unverifiable_token_is_unauthorized_before_cognito_is_asked() {
        let d = deps();
        // "token-a" would resolve, but it is not a JWT that verifies.
        let e = handle(&d, json!({"token": "token-a"})).await.unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "Unauthorized");
        assert!(d.iot.0.lock().unwrap().is_empty());
    }
}
