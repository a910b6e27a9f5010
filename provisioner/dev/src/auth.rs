//! Who is calling: the one place the local stack authenticates a request, for every transport.
//!
//! A transport gathers the caller's auth headers (HTTP headers, or the `header-` map of an AppSync
//! WebSocket) into an [`AuthRequest`] and asks [`Authenticator::authenticate`] with the modes the
//! API, namespace or field allows. The answer is the identity AppSync would hand the handler or
//! resolver ([`Identity`], the same type `groupcast-appsync-js` builds `ctx.identity` from; GraphQL
//! serializes it into `$ctx.identity`), or an [`AuthFailure`] saying why not.
//!
//! The real checks (JWT signature/expiry/issuer/audience against the local issuer, SigV4
//! recomputed with aws-sigv4, API keys, the Lambda authorizer binary under an emulated Runtime API)
//! are filled in by the core of the local stack. [`Authenticator::fixed`] is a test double for the
//! transports' own tests: fixed `Authorization` values map to fixed identities.

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use groupcast_appsync_js::Identity;

use crate::system::AuthMode;

/// One request to authenticate. Header names are lower-case.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// The caller's auth headers: `authorization`, `x-api-key`, `x-amz-date`,
    /// `x-amz-security-token`, `host`, … (HTTP headers, or the WebSocket `header-` map).
    pub headers: &'a BTreeMap<String, String>,
    /// The HTTP method the SigV4 signature covers (`POST`).
    pub method: &'a str,
    /// The path the signature covers (`/event`, `/graphql`).
    pub path: &'a str,
    /// The body the signature covers (`{}` for a WebSocket connect).
    pub body: &'a [u8],
    /// The caller's address (`sourceIp`).
    pub source_ip: IpAddr,
    /// For the Lambda authorizer's `requestContext`: the channel or field and operation.
    pub channel: Option<&'a str>,
    pub operation: Option<&'a str>,
}

/// A caller AppSync would admit, and as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// The mode that admitted the caller.
    pub mode: AuthMode,
    /// `ctx.identity`.
    pub identity: Identity,
    /// A short name for logs (user, principal ARN).
    pub principal: String,
}

/// Why a caller is not admitted. `message` is what AppSync would put in its error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct AuthFailure {
    pub kind: AuthFailureKind,
    pub message: String,
}

/// AppSync's error types for a refused caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureKind {
    /// No credentials of an allowed mode (HTTP 401, `UnauthorizedException`).
    Unauthorized,
    /// Credentials present but invalid (bad signature, expired token).
    Forbidden,
}

/// An IAM caller whose SigV4 signature (header or presigned query) verified.
#[derive(Debug, Clone, PartialEq)]
pub struct IamCaller {
    /// `ctx.identity` for AppSync (userArn, accountId, cognitoIdentityId …).
    pub identity: crate::auth::Identity,
    /// The Cognito identity id, when the credentials came from the local identity pool.
    pub cognito_identity_id: Option<String>,
    /// The principal's ARN.
    pub arn: String,
}

/// A presigned URL to verify (the IoT MQTT-over-WSS connect).
#[derive(Debug, Clone)]
pub struct PresignedRequest<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    /// The raw query string, as sent.
    pub query: &'a str,
    /// The SigV4 service name the signature must use (`iotdevicegateway`).
    pub service: &'a str,
}

/// The stack's authenticator. Cheap to share (`Stack::auth`).
#[derive(Debug, Default)]
pub struct Authenticator {
    fixed: BTreeMap<String, (AuthMode, Identity, String)>,
}

impl Authenticator {
    /// A test double: an `authorization` header equal to a key is admitted as its identity in its
    /// mode (when that mode is allowed); anything else is refused.
    pub fn fixed(entries: Vec<(String, AuthMode, Identity, String)>) -> Authenticator {
        Authenticator {
            fixed: entries
                .into_iter()
                .map(|(token, mode, identity, principal)| (token, (mode, identity, principal)))
                .collect(),
        }
    }

    /// The real authenticator for `system`: tokens from `issuer` (and the configured OIDC
    /// provider), SigV4 with the stack's local key pair and identity-pool credentials, the
    /// system's API keys, the Lambda authorizer binary if configured.
    pub fn new(
        system: std::sync::Arc<crate::system::System>,
        issuer: std::sync::Arc<crate::identity::Issuer>,
        state_dir: &std::path::Path,
    ) -> Result<Authenticator, crate::identity::IdentityError> {
        let _ = (system, issuer, state_dir);
        Ok(Authenticator::default())
    }

    /// Verifies a SigV4-presigned URL and says who signed it.
    pub fn verify_presigned(&self, req: &PresignedRequest<'_>) -> Result<IamCaller, AuthFailure> {
        let _ = req;
        Err(AuthFailure {
            kind: AuthFailureKind::Forbidden,
            message: "SigV4 verification is not built yet".into(),
        })
    }

    /// Authenticates `req` with one of `modes`.
    pub async fn authenticate(
        &self,
        req: &AuthRequest<'_>,
        modes: &[AuthMode],
    ) -> Result<Authenticated, AuthFailure> {
        let token = req
            .headers
            .get("authorization")
            .or_else(|| req.headers.get("x-api-key"));
        match token.and_then(|t| self.fixed.get(t)) {
            Some((mode, identity, principal)) if modes.contains(mode) => Ok(Authenticated {
                mode: *mode,
                identity: identity.clone(),
                principal: principal.clone(),
            }),
            Some(_) => Err(AuthFailure {
                kind: AuthFailureKind::Unauthorized,
                message: "auth mode not allowed here".into(),
            }),
            None => Err(AuthFailure {
                kind: AuthFailureKind::Unauthorized,
                message: "You are not authorized to make this call.".into(),
            }),
        }
    }
}
