//! The iot-grant handler: a request `{token, identityId}` from the app backend in, the user's
//! groups' IoT policies reconciled on that Cognito identity (`groupcast_auth::grant`), a report out.
//!
//! The token is verified first (`groupcast_auth::jwt`); nothing is attached or detached for a
//! token that does not verify. The caller is trusted to pair the token with the identity id it
//! obtained for that same token (`cognito-identity:GetId`): invoke this function only from the
//! backend's IAM role.

use groupcast_auth::grant::{self, GrantError, GrantReport, IotPolicyApi, PolicyPattern};
use groupcast_auth::jwt::{JwtError, Verifier};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};

/// The request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrantRequest {
    /// The user's JWT (ID or access token; a `Bearer ` prefix is allowed).
    pub token: String,
    /// The user's Cognito identity id, `<region>:<uuid>`.
    pub identity_id: String,
}

/// The response: who, which groups, and what changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantResponse {
    /// The token's `sub`.
    pub sub: String,
    /// The token's groups.
    pub groups: Vec<String>,
    /// What reconcile did.
    #[serde(flatten)]
    pub report: GrantReport,
}

/// Why a grant failed; the variant is the Lambda `errorType`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The request is not `{token, identityId}`.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The token did not verify.
    #[error("token rejected: {0}")]
    Unauthorized(#[from] JwtError),
    /// The identity id or an IoT call failed.
    #[error("{0}")]
    Grant(#[from] GrantError),
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        let error_type = match &f {
            Failure::BadRequest(_) | Failure::Grant(GrantError::Target { .. }) => "BadRequest",
            Failure::Unauthorized(_) => "Unauthorized",
            Failure::Grant(_) => "GrantFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: f.to_string(),
        }
    }
}

/// Verifies, then reconciles. See the [module docs](self).
pub(crate) async fn handle<A: IotPolicyApi + Sync>(
    verifier: &Verifier,
    iot: &A,
    pattern: &PolicyPattern,
    event: serde_json::Value,
) -> Result<GrantResponse, Failure> {
    let request: GrantRequest = serde_json::from_value(event).map_err(|e| {
        Failure::BadRequest(format!(
            "{e}; expected {{\"token\": \"<JWT>\", \"identityId\": \"<region>:<uuid>\"}}"
        ))
    })?;
    grant::validate_identity_id(&request.identity_id)?;
    let token = verifier
        .verify(groupcast_auth::events::strip_bearer(&request.token))
        .await?;
    let report = grant::reconcile(iot, pattern, &request.identity_id, &token.groups).await?;
    Ok(GrantResponse {
        sub: token.sub,
        groups: token.groups,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use groupcast_auth::grant::ApiError;
    use groupcast_auth::jwt::JwtConfig;
    use serde_json::json;

    /// IoT that must never be called: requests rejected before verification never reach it.
    struct Untouchable;
    impl IotPolicyApi for Untouchable {
        async fn attached_policies(&self, _: &str) -> Result<Vec<String>, ApiError> {
            panic!("IoT called")
        }
        async fn attach_policy(&self, _: &str, _: &str) -> Result<(), ApiError> {
            panic!("IoT called")
        }
        async fn detach_policy(&self, _: &str, _: &str) -> Result<(), ApiError> {
            panic!("IoT called")
        }
    }

    fn verifier() -> Verifier {
        // Port 9 (discard) on loopback: a fetch fails fast, which is the point of these tests.
        let mut c = JwtConfig::new("http://127.0.0.1:9", vec!["client".into()]);
        c.jwks_url = "http://127.0.0.1:9/jwks.json".into();
        Verifier::new(c).unwrap()
    }

    #[tokio::test]
    async fn malformed_requests_are_rejected_before_any_iot_call() {
        let p = PolicyPattern::parse("g-{group}").unwrap();
        for (event, field) in [
            (json!({"token": "t"}), "identityId"),
            (
                json!({"identityId": "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41"}),
                "token",
            ),
            (
                json!({"token": "t", "identityId": "us-east-1:x", "extra": 1}),
                "extra",
            ),
            (
                json!({"token": "t", "identityId": "../../thinggroup/x"}),
                "identityId",
            ),
        ] {
            let e = handle(&verifier(), &Untouchable, &p, event.clone())
                .await
                .unwrap_err();
            assert!(e.to_string().contains(field), "{event}: {e}");
            assert_eq!(Diagnostic::from(e).error_type, "BadRequest");
        }
    }

    #[tokio::test]
    async fn an_unverifiable_token_is_unauthorized_and_touches_nothing() {
        let p = PolicyPattern::parse("g-{group}").unwrap();
        let event = json!({"token": "a.b.c", "identityId": "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41"});
        let e = handle(&verifier(), &Untouchable, &p, event)
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "Unauthorized");
    }
}
