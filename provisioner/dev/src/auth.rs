//! Who is calling: the one place the local stack authenticates a request, for every transport.
//!
//! A transport gathers the caller's auth headers (HTTP headers, or the `header-` map of an AppSync
//! WebSocket) into an [`AuthRequest`] and asks [`Authenticator::authenticate`] with the modes the
//! API, namespace or field allows. The answer is the identity AppSync would hand the handler or
//! resolver ([`Identity`], the same type `groupcast-appsync-js` builds `ctx.identity` from; GraphQL
//! serializes it into `$ctx.identity`), or an [`AuthFailure`] saying why not.
//!
//! The checks: JWTs verified with groupcast-auth's verifier against the local issuer's JWKS (held
//! in memory) or the configured OIDC issuer; SigV4 recomputed with aws-sigv4 ([`crate::sigv4`])
//! from the publisher's key pair or identity-pool credentials; API keys from the system; the Lambda
//! authorizer binary under an emulated Runtime API ([`crate::lambda_rt`]), its allows cached.
//! [`Authenticator::fixed`] is a test double for the transports' own tests: fixed `Authorization`
//! values map to fixed identities.
//!
//! Which mode a request is judged by (AppSync's selection): `x-api-key` → `API_KEY`; an
//! `Authorization` starting `AWS4-HMAC-SHA256` → `AWS_IAM`; any other `Authorization` →
//! `AMAZON_COGNITO_USER_POOLS` when it verifies against the user pool (the local issuer),
//! `OPENID_CONNECT` when it verifies against the OIDC issuer, else `AWS_LAMBDA`. AWS documents
//! that a SigV4 signature or an OIDC/user-pool token is not handed to the Lambda authorizer when
//! those modes are enabled ("Circumventing SigV4 and OIDC token authorization limitations",
//! https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html), which is this order.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use groupcast_appsync_js::{CognitoIdentity, IamIdentity, LambdaIdentity, OidcIdentity};
use groupcast_auth::jwt::{JwtConfig, Verifier};
use serde_json::{Value, json};

pub use groupcast_appsync_js::Identity;

use crate::identity::{IdentityError, IdentityPool, Issuer, KeyPair};
use crate::lambda_rt::{JsonServer, LambdaFunction};
use crate::sigv4;
use crate::system::{AuthMode, LambdaAuthorizerSettings, System};

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
    real: Option<Real>,
}

/// The real checks, built by [`Authenticator::new`].
#[derive(Debug)]
struct Real {
    system: Arc<System>,
    /// The local issuer's URL (`iss` of Cognito tokens, `issuer` of the identity).
    issuer_url: String,
    issuer: Arc<Issuer>,
    /// Tokens of the local issuer (standing in for the user pool).
    cognito: Verifier,
    /// `app_id_client_regex`, anchored: the app client ids the user-pool mode admits.
    app_client: Option<AppClientRegex>,
    /// Tokens of the configured OIDC provider, when one is configured.
    oidc: Option<Verifier>,
    publisher: KeyPair,
    pool: IdentityPool,
    lambda: Option<LambdaAuthorizer>,
}

fn unauthorized(message: impl Into<String>) -> AuthFailure {
    AuthFailure {
        kind: AuthFailureKind::Unauthorized,
        message: message.into(),
    }
}

fn forbidden(message: impl Into<String>) -> AuthFailure {
    AuthFailure {
        kind: AuthFailureKind::Forbidden,
        message: message.into(),
    }
}

/// AppSync's message for a caller it does not admit.
const NOT_AUTHORIZED: &str = "You are not authorized to make this call.";

/// The publisher's principal ARN: `arn:aws:sts::{account}:assumed-role/{project}-publisher/local`.
pub fn publisher_arn(system: &System) -> String {
    format!(
        "arn:aws:sts::{}:assumed-role/{}-publisher/local",
        system.account_id, system.project
    )
}

/// The ARN of an identity-pool session: the pool's authenticated role, session
/// `CognitoIdentityCredentials` (the session name Cognito's enhanced flow gives:
/// https://docs.aws.amazon.com/cognito/latest/developerguide/authentication-flow.html).
pub fn identity_pool_arn(system: &System) -> String {
    format!(
        "arn:aws:sts::{}:assumed-role/{}-identity-pool-authenticated/CognitoIdentityCredentials",
        system.account_id, system.project
    )
}

/// A role's unique id (`AROA…`, 21 characters), deterministic per role name.
fn role_id(name: &str) -> String {
    let u = crate::identity::derived_uuid("role", name)
        .simple()
        .to_string();
    format!("AROA{}", u[..17].to_ascii_uppercase())
}

/// The user pool's provider name as Cognito identity knows it (`cognito-idp.{region}.amazonaws.com/{pool}`
/// on AWS; the local issuer's host and path here).
pub fn provider_name(issuer_url: &str) -> String {
    issuer_url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_owned()
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
            real: None,
        }
    }

    /// The real authenticator for `system`: tokens from `issuer` (and the configured OIDC
    /// provider), SigV4 with the stack's local key pair and identity-pool credentials, the
    /// system's API keys, the Lambda authorizer binary if configured (started on first use).
    pub fn new(
        system: std::sync::Arc<crate::system::System>,
        issuer: std::sync::Arc<crate::identity::Issuer>,
        state_dir: &std::path::Path,
    ) -> Result<Authenticator, crate::identity::IdentityError> {
        let cognito = local_verifier(&issuer)?;
        let app_client = system
            .identity
            .app_id_client_regex
            .as_deref()
            .map(AppClientRegex::new)
            .transpose()?;
        if let Some(re) = &app_client
            && !re.admits(issuer.client_id())
        {
            tracing::warn!(
                client_id = issuer.client_id(),
                app_id_client_regex = %re.source,
                "the local issuer's app client id does not match app_id_client_regex: \
                 every user-pool token will be refused, as AppSync would"
            );
        }
        let oidc = match &system.identity.oidc {
            // The local issuer stands in for the OIDC provider when it is the configured issuer.
            Some(o) if o.issuer.trim_end_matches('/') == issuer.issuer_url() => None,
            Some(o) => {
                let mut config = JwtConfig::new(
                    o.issuer.trim_end_matches('/'),
                    o.client_id.iter().cloned().collect(),
                );
                config.groups_claim = o.groups_claim.clone();
                if config.audiences.is_empty() {
                    // AppSync checks the client id only when one is configured
                    // (OpenIDConnectConfig.clientId, https://docs.aws.amazon.com/appsync/latest/APIReference/API_OpenIDConnectConfig.html);
                    // the verifier insists on one, so an OIDC mode without it stays refused.
                    None
                } else {
                    match Verifier::new(config) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            return Err(IdentityError(format!("[auth.oidc] issuer: {e}")));
                        }
                    }
                }
            }
            None => None,
        };
        let lambda =
            system.identity.lambda_authorizer.clone().map(|settings| {
                LambdaAuthorizer::new(settings, &issuer, state_dir, &system.region)
            });
        Ok(Authenticator {
            fixed: BTreeMap::new(),
            real: Some(Real {
                issuer_url: issuer.issuer_url().to_owned(),
                issuer: issuer.clone(),
                cognito,
                app_client,
                oidc,
                publisher: crate::identity::publisher_credentials(state_dir)?,
                pool: IdentityPool::load_or_create(state_dir, &system.region)?,
                lambda,
                system,
            }),
        })
    }

    /// The local token issuer (`None` for the [`Authenticator::fixed`] double).
    pub fn issuer(&self) -> Option<&Arc<Issuer>> {
        self.real.as_ref().map(|r| &r.issuer)
    }

    /// The local identity pool (`None` for the [`Authenticator::fixed`] double).
    pub fn identity_pool(&self) -> Option<&IdentityPool> {
        self.real.as_ref().map(|r| &r.pool)
    }

    /// Verifies a token of the local issuer (e.g. a `Logins` value of Cognito identity's GetId).
    pub async fn verify_local_token(
        &self,
        token: &str,
    ) -> Result<groupcast_auth::jwt::VerifiedToken, AuthFailure> {
        let Some(real) = &self.real else {
            return Err(forbidden("tokens need the real authenticator"));
        };
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        real.cognito
            .verify(token)
            .await
            .map_err(|e| forbidden(e.to_string()))
    }

    /// Verifies a SigV4-presigned URL and says who signed it.
    pub fn verify_presigned(&self, req: &PresignedRequest<'_>) -> Result<IamCaller, AuthFailure> {
        let Some(real) = &self.real else {
            return Err(forbidden("SigV4 needs the real authenticator"));
        };
        let (scope, token) =
            sigv4::presigned_credentials(req.query).map_err(|e| forbidden(e.to_string()))?;
        let (caller, secret) = real.iam_caller(&scope.access_key_id, token.as_deref(), None)?;
        let expect = sigv4::Expect {
            region: &real.system.region,
            service: req.service,
            now: SystemTime::now(),
        };
        sigv4::verify_presigned(
            &sigv4::Presigned {
                method: req.method,
                host: req.host,
                path: req.path,
                query: req.query,
            },
            &secret,
            &expect,
        )
        .map_err(|e| forbidden(e.to_string()))?;
        Ok(caller)
    }

    /// A SigV4 header-signed request to another AWS API than AppSync, whose signature must name
    /// `service` in its credential scope: the AWS port's IoT control plane (`iot`), Lambda Invoke
    /// (`lambda`), the IoT data-plane publish (`iotdata`). [`Self::authenticate`] admits `appsync`
    /// signatures only, so an AppSync signature is never accepted by another API nor the reverse.
    pub async fn authenticate_service(
        &self,
        req: &AuthRequest<'_>,
        service: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let Some(real) = &self.real else {
            return self.authenticate_fixed(req, &[AuthMode::Iam]);
        };
        match req.headers.get("authorization") {
            Some(a) if a.starts_with("AWS4-HMAC-SHA256") => real.authenticate_iam(req, service),
            _ => Err(unauthorized(NOT_AUTHORIZED)),
        }
    }

    /// Authenticates `req` with one of `modes`.
    ///
    /// For the AppSync Events WebSocket connect, pass the `header-` map as `headers`, `method`
    /// `POST`, `path` `/event`, `body` `{}` (what the client signed), `operation`
    /// `EVENT_CONNECT`; for a subscribe/publish its `authorization` map, the channel, and the
    /// body the client signed (`{"channel":…}` / `{"channel":…,"events":[…]}`).
    pub async fn authenticate(
        &self,
        req: &AuthRequest<'_>,
        modes: &[AuthMode],
    ) -> Result<Authenticated, AuthFailure> {
        let Some(real) = &self.real else {
            return self.authenticate_fixed(req, modes);
        };
        let allowed = |m: AuthMode| modes.contains(&m);
        if let Some(key) = req.headers.get("x-api-key") {
            if !allowed(AuthMode::ApiKey) {
                return Err(unauthorized(NOT_AUTHORIZED));
            }
            // Constant-time comparison against each configured key.
            let known = real.system.identity.api_keys.iter().any(|k| {
                aws_lc_rs::constant_time::verify_slices_are_equal(k.as_bytes(), key.as_bytes())
                    .is_ok()
            });
            return if known {
                Ok(Authenticated {
                    mode: AuthMode::ApiKey,
                    identity: Identity::ApiKey,
                    principal: "api-key".into(),
                })
            } else {
                Err(unauthorized(NOT_AUTHORIZED))
            };
        }
        let Some(authorization) = req.headers.get("authorization") else {
            return Err(unauthorized(NOT_AUTHORIZED));
        };
        if authorization.starts_with("AWS4-HMAC-SHA256") {
            if !allowed(AuthMode::Iam) {
                return Err(unauthorized(NOT_AUTHORIZED));
            }
            return real.authenticate_iam(req, APPSYNC_SERVICE);
        }
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim();
        let mut refusals = Vec::new();
        if allowed(AuthMode::Cognito) || allowed(AuthMode::Oidc) {
            match real.cognito.verify(token).await {
                Ok(v) => {
                    let sub = v.sub.clone();
                    let mode = if allowed(AuthMode::Cognito) {
                        AuthMode::Cognito
                    } else {
                        AuthMode::Oidc
                    };
                    if mode == AuthMode::Cognito
                        && let Some(re) = &real.app_client
                    {
                        re.check(&v.claims)?;
                    }
                    return Ok(real.token_identity(mode, v.claims, sub, req.source_ip));
                }
                Err(e) => refusals.push(format!("user pool: {e}")),
            }
        }
        if allowed(AuthMode::Oidc)
            && let Some(oidc) = &real.oidc
        {
            match oidc.verify(token).await {
                Ok(v) => {
                    let issuer = oidc.config().issuer.clone();
                    return Ok(Authenticated {
                        mode: AuthMode::Oidc,
                        principal: v.sub.clone(),
                        identity: Identity::Oidc(OidcIdentity {
                            sub: v.sub,
                            issuer,
                            claims: v.claims,
                        }),
                    });
                }
                Err(e) => refusals.push(format!("OIDC: {e}")),
            }
        }
        if allowed(AuthMode::Lambda)
            && let Some(lambda) = &real.lambda
        {
            return lambda.authorize(&real.system, req, token).await;
        }
        tracing::debug!(reasons = ?refusals, "token refused");
        Err(forbidden(if refusals.is_empty() {
            NOT_AUTHORIZED.to_owned()
        } else {
            refusals.join("; ")
        }))
    }

    fn authenticate_fixed(
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
            Some(_) => Err(unauthorized("auth mode not allowed here")),
            None => Err(unauthorized(NOT_AUTHORIZED)),
        }
    }
}

/// `app_id_client_regex` (AppSync's `appIdClientRegex`): "A regular expression for validating the
/// incoming Amazon Cognito user pool app client ID. If this value isn't set, no filtering is
/// applied." (https://docs.aws.amazon.com/appsync/latest/APIReference/API_CognitoUserPoolConfig.html,
/// and `CognitoConfig` for Events: https://docs.aws.amazon.com/appsync/latest/APIReference/API_CognitoConfig.html).
/// The app client id is the ID token's `aud` or the access token's `client_id`. Matched against the
/// whole id, as the provisioner anchors it when it deploys (`reconcile::appsync::full_match`), so
/// `abc` never admits `xabcx`.
#[derive(Debug)]
struct AppClientRegex {
    source: String,
    anchored: regex_lite::Regex,
}

impl AppClientRegex {
    fn new(source: &str) -> Result<AppClientRegex, IdentityError> {
        let anchored = regex_lite::Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            IdentityError(format!(
                "identity.app_id_client_regex {source:?} is not a regular expression: {e}"
            ))
        })?;
        Ok(AppClientRegex {
            source: source.to_owned(),
            anchored,
        })
    }

    fn admits(&self, client_id: &str) -> bool {
        self.anchored.is_match(client_id)
    }

    /// Refuses a verified token whose app client id does not match.
    fn check(&self, claims: &serde_json::Map<String, Value>) -> Result<(), AuthFailure> {
        let client = claims
            .get("aud")
            .and_then(Value::as_str)
            .or_else(|| claims.get("client_id").and_then(Value::as_str));
        match client {
            Some(id) if self.admits(id) => Ok(()),
            Some(id) => Err(forbidden(format!(
                "the token's app client id {id:?} does not match app_id_client_regex {:?}",
                self.source
            ))),
            None => Err(forbidden(
                "the token names no app client (neither aud nor client_id) and app_id_client_regex is set",
            )),
        }
    }
}

/// A verifier of the local issuer's tokens, its JWKS held in memory (never fetched).
fn local_verifier(issuer: &Issuer) -> Result<Verifier, IdentityError> {
    let mut config = JwtConfig::new(issuer.issuer_url(), vec![issuer.client_id().to_owned()]);
    config.jwks_url = issuer.jwks_url();
    // Never refetch: the keys are this process's own.
    config.jwks_min_refresh = Duration::from_secs(u64::from(u32::MAX));
    config.jwks_max_age = Duration::from_secs(u64::from(u32::MAX));
    Verifier::with_jwks(config, issuer.jwks().to_string().as_bytes())
        .map_err(|e| IdentityError(format!("issuer: {e}")))
}

impl Real {
    fn token_identity(
        &self,
        mode: AuthMode,
        claims: serde_json::Map<String, Value>,
        sub: String,
        source_ip: IpAddr,
    ) -> Authenticated {
        let username = claims
            .get("cognito:username")
            .and_then(Value::as_str)
            .unwrap_or(&sub)
            .to_owned();
        let identity = match mode {
            AuthMode::Oidc => Identity::Oidc(OidcIdentity {
                sub: sub.clone(),
                issuer: self.issuer_url.clone(),
                claims,
            }),
            _ => {
                // `groups` is its own field, `null` when the user is in none
                // (https://docs.aws.amazon.com/appsync/latest/eventapi/context-reference.html).
                let groups = claims.get("cognito:groups").and_then(|g| {
                    g.as_array().map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                });
                Identity::Cognito(CognitoIdentity {
                    sub,
                    issuer: self.issuer_url.clone(),
                    username: username.clone(),
                    claims,
                    source_ip: vec![source_ip.to_string()],
                    default_auth_strategy: Some("ALLOW".into()),
                    groups,
                })
            }
        };
        Authenticated {
            mode,
            identity,
            principal: username,
        }
    }

    /// The caller an access key id names, and its secret key: the publisher's key pair, or
    /// identity-pool credentials (with their session token).
    fn iam_caller(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
        source_ip: Option<IpAddr>,
    ) -> Result<(IamCaller, String), AuthFailure> {
        let system = &self.system;
        let source_ip: Vec<String> = source_ip.iter().map(IpAddr::to_string).collect();
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            access_key_id.as_bytes(),
            self.publisher.access_key_id.as_bytes(),
        )
        .is_ok()
        {
            let arn = publisher_arn(system);
            let identity = Identity::Iam(IamIdentity {
                account_id: system.account_id.clone(),
                cognito_identity_pool_id: None,
                cognito_identity_id: None,
                source_ip,
                username: format!(
                    "{}:local",
                    role_id(&format!("{}-publisher", system.project))
                ),
                user_arn: arn.clone(),
                cognito_identity_auth_type: None,
                cognito_identity_auth_provider: None,
            });
            return Ok((
                IamCaller {
                    identity,
                    cognito_identity_id: None,
                    arn,
                },
                self.publisher.secret_access_key.clone(),
            ));
        }
        let Some((identity_id, secret)) = self.pool.resolve(access_key_id, session_token) else {
            // AWS: "The security token included in the request is invalid."
            return Err(forbidden(
                "The security token included in the request is invalid.",
            ));
        };
        let arn = identity_pool_arn(system);
        let sub = identity_id
            .split_once(':')
            .map_or(identity_id.as_str(), |(_, s)| s)
            .to_owned();
        let provider = provider_name(&self.issuer_url);
        let identity = Identity::Iam(IamIdentity {
            account_id: system.account_id.clone(),
            cognito_identity_pool_id: Some(crate::identity::identity_pool_id(
                &system.region,
                &system.project,
            )),
            cognito_identity_id: Some(identity_id.clone()),
            source_ip,
            username: format!(
                "{}:CognitoIdentityCredentials",
                role_id(&format!("{}-identity-pool-authenticated", system.project))
            ),
            user_arn: arn.clone(),
            cognito_identity_auth_type: Some("authenticated".into()),
            // AppSync's format: "{provider},{provider}:CognitoSignIn:{sub}"
            // (https://docs.aws.amazon.com/appsync/latest/devguide/resolver-context-reference.html).
            cognito_identity_auth_provider: Some(format!(
                "\"{provider}\",\"{provider}:CognitoSignIn:{sub}\""
            )),
        });
        Ok((
            IamCaller {
                identity,
                cognito_identity_id: Some(identity_id),
                arn,
            },
            secret,
        ))
    }

    fn authenticate_iam(
        &self,
        req: &AuthRequest<'_>,
        service: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let (scope, token) =
            sigv4::header_credentials(req.headers).map_err(|e| forbidden(e.to_string()))?;
        let (caller, secret) =
            self.iam_caller(&scope.access_key_id, token.as_deref(), Some(req.source_ip))?;
        let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
        let signed = sigv4::HeaderSigned {
            method: req.method,
            path,
            query,
            headers: req.headers,
            body: req.body,
        };
        let expect = sigv4::Expect {
            region: &self.system.region,
            service,
            now: SystemTime::now(),
        };
        sigv4::verify_headers(&signed, &secret, &expect).map_err(|e| forbidden(e.to_string()))?;
        Ok(Authenticated {
            mode: AuthMode::Iam,
            identity: caller.identity,
            principal: caller.arn,
        })
    }
}

/// AppSync signs with service name `appsync` in the API's region
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html).
const APPSYNC_SERVICE: &str = "appsync";

// -------------------------------------------------------------------------------------------
// The Lambda authorizer

/// Allows of the Lambda authorizer by (token, channel or query, operation): until when, as whom.
type AllowCache = HashMap<(String, String, String), (Instant, Authenticated)>;

/// The configured Lambda authorizer: the real binary, started on first use, its allows cached.
struct LambdaAuthorizer {
    settings: LambdaAuthorizerSettings,
    env: Vec<(String, String)>,
    /// The stack's state dir and region: where a `groups_source = "user-pool"` authorizer
    /// finds the functions' AWS endpoint and credentials ([`crate::functions`]).
    state_dir: std::path::PathBuf,
    region: String,
    jwks: Value,
    running: tokio::sync::OnceCell<Result<(LambdaFunction, JsonServer), String>>,
    /// Allows by (token, channel or query, operation), until their expiry.
    cache: Mutex<AllowCache>,
}

impl std::fmt::Debug for LambdaAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaAuthorizer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The most allows kept in the cache; beyond it, expired entries are dropped first, then all.
const CACHE_MAX: usize = 10_000;

impl LambdaAuthorizer {
    fn new(
        settings: LambdaAuthorizerSettings,
        issuer: &Issuer,
        state_dir: &std::path::Path,
        region: &str,
    ) -> LambdaAuthorizer {
        // The authorizer's own configuration (functions/authorizer: GROUPCAST_JWT_*,
        // GROUPCAST_AUTHORIZER_TTL_SECS), pointed at the local issuer.
        let env = vec![
            (
                "GROUPCAST_JWT_ISSUER".into(),
                issuer.issuer_url().to_owned(),
            ),
            (
                "GROUPCAST_JWT_AUDIENCES".into(),
                issuer.client_id().to_owned(),
            ),
            ("GROUPCAST_JWT_TOKEN_USE".into(), "id".into()),
            (
                "GROUPCAST_AUTHORIZER_TTL_SECS".into(),
                settings.result_ttl_seconds.min(3600).to_string(),
            ),
        ];
        LambdaAuthorizer {
            settings,
            env,
            state_dir: state_dir.to_owned(),
            region: region.to_owned(),
            jwks: issuer.jwks(),
            running: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn function(&self) -> Result<&LambdaFunction, AuthFailure> {
        let running = self
            .running
            .get_or_init(|| async {
                let binary = self.settings.binary.clone().ok_or_else(|| {
                    "the Lambda authorizer binary was not found (build it with `cargo build -p authorizer`)"
                        .to_owned()
                })?;
                let jwks = JsonServer::start("/jwks.json", self.jwks.clone())
                    .await
                    .map_err(|e| format!("JWKS server for the authorizer: {e}"))?;
                let mut env = self.env.clone();
                env.push(("GROUPCAST_JWT_JWKS_URL".into(), jwks.url().to_owned()));
                // groups_source = "user-pool": the caller's current groups from the stack's user
                // directory, through Cognito's AdminListGroupsForUser on the functions' endpoint
                // (the binary checks at cold start that the pool issued GROUPCAST_JWT_ISSUER's
                // tokens, and refuses every caller otherwise).
                if let Some(pool) = &self.settings.user_pool_id {
                    let endpoint = crate::functions::endpoint(&self.state_dir).ok_or(
                        "groups_source = \"user-pool\" needs the stack's functions endpoint \
                         (groupcast_dev::functions::start), which is not running",
                    )?;
                    env.push(("GROUPCAST_COGNITO_USER_POOL_ID".into(), pool.clone()));
                    env.extend(crate::functions::aws_env(
                        &self.state_dir,
                        &self.region,
                        &endpoint,
                    )?);
                }
                let f = LambdaFunction::start(&binary, &env)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((f, jwks))
            })
            .await;
        match running {
            Ok((f, _)) => Ok(f),
            Err(e) => {
                tracing::error!(error = %e, "Lambda authorizer unavailable");
                Err(forbidden(format!("Lambda authorizer unavailable: {e}")))
            }
        }
    }

    async fn authorize(
        &self,
        system: &System,
        req: &AuthRequest<'_>,
        token: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let graphql = req.path.starts_with("/graphql");
        let operation = req
            .operation
            .unwrap_or(if graphql { "" } else { "EVENT_CONNECT" });
        let key = (
            token.to_owned(),
            req.channel.unwrap_or("").to_owned(),
            operation.to_owned(),
        );
        if let Some((until, hit)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && *until > Instant::now()
        {
            return Ok(hit.clone());
        }
        let api_id = crate::identity::derived_uuid("api", &system.project)
            .simple()
            .to_string();
        let request_id = uuid::Uuid::new_v4().to_string();
        let headers: BTreeMap<&String, &String> = req.headers.iter().collect();
        // The request AppSync sends the authorizer: Events
        // (https://docs.aws.amazon.com/appsync/latest/eventapi/configure-event-api-auth.html) or
        // GraphQL (https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html#aws-lambda-authorization).
        let event = if graphql {
            json!({
                "authorizationToken": token,
                "requestContext": {
                    "apiId": api_id, "accountId": system.account_id, "requestId": request_id,
                    "queryString": operation, "operationName": Value::Null, "variables": {},
                },
                "requestHeaders": headers,
            })
        } else {
            let namespace = req
                .channel
                .map(|c| c.trim_start_matches('/').split('/').next().unwrap_or(""));
            json!({
                "authorizationToken": token,
                "requestContext": {
                    "apiId": api_id, "accountId": system.account_id, "requestId": request_id,
                    "operation": operation,
                    "channelNamespaceName": namespace,
                    "channel": req.channel,
                },
                "requestHeaders": headers,
            })
        };
        let function = self.function().await?;
        let answer = function.invoke(event).await.map_err(|e| {
            tracing::warn!(error = %e, "Lambda authorizer failed");
            unauthorized(NOT_AUTHORIZED)
        })?;
        if answer.get("isAuthorized") != Some(&Value::Bool(true)) {
            return Err(unauthorized(NOT_AUTHORIZED));
        }
        let (context_field, context) = if graphql {
            ("resolverContext", answer.get("resolverContext"))
        } else {
            ("handlerContext", answer.get("handlerContext"))
        };
        let context = context.cloned().unwrap_or_else(|| json!({}));
        let identity = if graphql {
            // $ctx.identity of a Lambda-authorized GraphQL call is {resolverContext}.
            Identity::Raw(json!({ context_field: context }))
        } else {
            Identity::Lambda(LambdaIdentity {
                handler_context: context.clone(),
            })
        };
        let principal = context
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("lambda")
            .to_owned();
        let admitted = Authenticated {
            mode: AuthMode::Lambda,
            identity,
            principal,
        };
        let ttl = answer
            .get("ttlOverride")
            .and_then(Value::as_u64)
            .unwrap_or(self.settings.result_ttl_seconds)
            .min(3600);
        if ttl > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_MAX {
                let now = Instant::now();
                cache.retain(|_, (until, _)| *until > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                (Instant::now() + Duration::from_secs(ttl), admitted.clone()),
            );
        }
        Ok(admitted)
    }
}
