//! JWT verification against an issuer's JWKS: the one gate every groupcast Lambda puts in front
//! of a user's groups.
//!
//! [`Verifier::verify`] accepts a token only when all of these hold, and fails closed otherwise:
//!
//! - it is a compact JWS of at most [`MAX_TOKEN_BYTES`], whose header `alg` is one of the
//!   configured algorithms (RS256, ES256; never `none` or an HMAC algorithm);
//! - its `kid` names a signing key of the issuer's JWKS of the same family as `alg` (the JWKS is
//!   fetched once, cached, and refetched on an unknown `kid` at most once per
//!   [`JwtConfig::jwks_min_refresh`]);
//! - the signature verifies, `iss` is the configured issuer, `exp` lies in the future and `nbf`
//!   (when present) in the past, both within [`JwtConfig::leeway_secs`];
//! - `aud` or `client_id` is one of the configured audiences (Cognito ID tokens carry `aud`,
//!   access tokens `client_id`);
//! - `token_use`, when configured, is one of the configured values;
//! - the groups claim is absent (no groups) or an array of strings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// The longest token accepted; real Cognito tokens are 1–4 KB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Environment variable names read by [`JwtConfig::from_env`].
pub mod env {
    /// The token issuer, e.g. `https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123`.
    pub const ISSUER: &str = "GROUPCAST_JWT_ISSUER";
    /// The JWKS URL (default `{issuer}/.well-known/jwks.json`).
    pub const JWKS_URL: &str = "GROUPCAST_JWT_JWKS_URL";
    /// Comma-separated accepted audiences / app client ids (matched against `aud` or `client_id`).
    pub const AUDIENCES: &str = "GROUPCAST_JWT_AUDIENCES";
    /// Comma-separated accepted `token_use` values (`id`, `access`); unset: not checked.
    pub const TOKEN_USE: &str = "GROUPCAST_JWT_TOKEN_USE";
    /// The claim holding the groups (default `cognito:groups`).
    pub const GROUPS_CLAIM: &str = "GROUPCAST_JWT_GROUPS_CLAIM";
    /// Comma-separated accepted algorithms, a subset of `RS256,ES256` (default `RS256`).
    pub const ALGORITHMS: &str = "GROUPCAST_JWT_ALGORITHMS";
    /// Clock leeway in seconds for `exp` and `nbf` (default 0, at most 300).
    pub const LEEWAY_SECS: &str = "GROUPCAST_JWT_LEEWAY_SECS";
    /// Least seconds between two JWKS fetches (default 30).
    pub const JWKS_MIN_REFRESH_SECS: &str = "GROUPCAST_JWKS_MIN_REFRESH_SECS";
    /// Seconds after which a cached JWKS is refetched on next use (default 3600).
    pub const JWKS_MAX_AGE_SECS: &str = "GROUPCAST_JWKS_MAX_AGE_SECS";
}

/// The default groups claim (Cognito user pools).
pub const DEFAULT_GROUPS_CLAIM: &str = "cognito:groups";

/// What a token must satisfy. Read it with [`JwtConfig::from_env`] or build it in code.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Where the issuer's signing keys are published.
    pub jwks_url: String,
    /// Accepted `aud` / `client_id` values; at least one.
    pub audiences: Vec<String>,
    /// Accepted `token_use` values; empty means the claim is not checked.
    pub token_use: Vec<String>,
    /// The claim holding the user's groups.
    pub groups_claim: String,
    /// Accepted signature algorithms: RS256 and/or ES256.
    pub algorithms: Vec<Algorithm>,
    /// Clock leeway for `exp` and `nbf`, seconds.
    pub leeway_secs: u64,
    /// Least time between two JWKS fetches (rate limit for unknown `kid`s).
    pub jwks_min_refresh: Duration,
    /// Age after which a cached JWKS is refetched on next use.
    pub jwks_max_age: Duration,
}

/// Why a token was refused, or why the verifier could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// A configuration variable is missing or invalid.
    #[error("configuration {var}: {rule}")]
    Config {
        /// The environment variable (or field).
        var: &'static str,
        /// The rule it broke.
        rule: String,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is not one of the configured algorithms.
    #[error("token alg {alg} is not accepted (accepted: {accepted})")]
    Algorithm {
        /// The header's algorithm.
        alg: String,
        /// The configured algorithms.
        accepted: String,
    },
    /// The header has no `kid`.
    #[error("token header has no kid: the signing key cannot be chosen")]
    MissingKid,
    /// No signing key with this `kid` in the issuer's JWKS (after a refresh, when allowed).
    #[error("unknown kid {kid:?}: not in the issuer's JWKS")]
    UnknownKid {
        /// The header's `kid`.
        kid: String,
    },
    /// The key named by `kid` cannot verify this `alg`.
    #[error("key {kid:?} cannot verify alg {alg}: {rule}")]
    KeyMismatch {
        /// The header's `kid`.
        kid: String,
        /// The header's algorithm.
        alg: String,
        /// Why not.
        rule: String,
    },
    /// The JWKS could not be fetched or read.
    #[error("JWKS {url}: {reason}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    Signature,
    /// `exp` has passed.
    #[error("token expired (exp)")]
    Expired,
    /// `nbf` lies in the future.
    #[error("token not yet valid (nbf in the future)")]
    NotYetValid,
    /// A claim is missing or has the wrong value.
    #[error("claim {claim}: {rule}")]
    Claim {
        /// The claim name.
        claim: String,
        /// The rule it broke.
        rule: String,
    },
}

/// A token that passed [`Verifier::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `sub`.
    pub sub: String,
    /// The groups claim, in token order (empty when the claim is absent).
    pub groups: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// Every claim, for callers that need more.
    pub claims: Map<String, Value>,
}

impl JwtConfig {
    /// A config for `issuer` and `audiences` with every other field at its default.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        let issuer = issuer.into();
        JwtConfig {
            jwks_url: default_jwks_url(&issuer),
            issuer,
            audiences,
            token_use: Vec::new(),
            groups_claim: DEFAULT_GROUPS_CLAIM.to_owned(),
            algorithms: vec![Algorithm::RS256],
            leeway_secs: 0,
            jwks_min_refresh: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
        }
    }

    /// Reads the config from the process environment (names in [`env`]).
    ///
    /// # Errors
    /// [`JwtError::Config`] naming the variable and the rule it broke.
    pub fn from_env() -> Result<Self, JwtError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the config through `get` (a stand-in for the environment in tests).
    ///
    /// # Errors
    /// [`JwtError::Config`] naming the variable and the rule it broke.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, JwtError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let secs =
            |var: &'static str, default: u64, max: u64| -> Result<u64, JwtError> {
                match get(var) {
                    None => Ok(default),
                    Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                        JwtError::Config {
                            var,
                            rule: format!("{v:?} is not a whole number of seconds 0-{max}"),
                        }
                    }),
                }
            };
        let issuer = get(env::ISSUER).ok_or_else(|| JwtError::Config {
            var: env::ISSUER,
            rule: "must be set to the token issuer URL".into(),
        })?;
        let mut config = JwtConfig::new(issuer, list(env::AUDIENCES));
        if let Some(url) = get(env::JWKS_URL) {
            config.jwks_url = url;
        }
        config.token_use = list(env::TOKEN_USE);
        if let Some(claim) = get(env::GROUPS_CLAIM) {
            config.groups_claim = claim;
        }
        if get(env::ALGORITHMS).is_some() {
            config.algorithms = list(env::ALGORITHMS)
                .iter()
                .map(|a| match a.as_str() {
                    "RS256" => Ok(Algorithm::RS256),
                    "ES256" => Ok(Algorithm::ES256),
                    other => Err(JwtError::Config {
                        var: env::ALGORITHMS,
                        rule: format!("{other:?} is not accepted: use RS256 and/or ES256"),
                    }),
                })
                .collect::<Result<_, _>>()?;
        }
        config.leeway_secs = secs(env::LEEWAY_SECS, 0, 300)?;
        config.jwks_min_refresh =
            Duration::from_secs(secs(env::JWKS_MIN_REFRESH_SECS, 30, 86_400)?);
        config.jwks_max_age = Duration::from_secs(secs(env::JWKS_MAX_AGE_SECS, 3600, 86_400)?);
        config.validate()?;
        Ok(config)
    }

    /// Checks the config's own rules.
    ///
    /// # Errors
    /// [`JwtError::Config`] naming the field and the rule.
    pub fn validate(&self) -> Result<(), JwtError> {
        if !is_trusted_url(&self.issuer) {
            return Err(JwtError::Config {
                var: env::ISSUER,
                rule: format!(
                    "{:?} must be an https:// URL (http:// only for 127.0.0.1/localhost)",
                    self.issuer
                ),
            });
        }
        if !is_trusted_url(&self.jwks_url) {
            return Err(JwtError::Config {
                var: env::JWKS_URL,
                rule: format!(
                    "{:?} must be an https:// URL (http:// only for 127.0.0.1/localhost)",
                    self.jwks_url
                ),
            });
        }
        if self.audiences.is_empty() {
            return Err(JwtError::Config {
                var: env::AUDIENCES,
                rule: "must list at least one accepted audience / app client id; \
                       accepting any audience would accept tokens minted for other apps"
                    .into(),
            });
        }
        if self.algorithms.is_empty()
            || self
                .algorithms
                .iter()
                .any(|a| !matches!(a, Algorithm::RS256 | Algorithm::ES256))
        {
            return Err(JwtError::Config {
                var: env::ALGORITHMS,
                rule: "must be a non-empty subset of RS256, ES256".into(),
            });
        }
        if self.groups_claim.is_empty() {
            return Err(JwtError::Config {
                var: env::GROUPS_CLAIM,
                rule: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

/// `{issuer}/.well-known/jwks.json`, the OIDC discovery location Cognito uses.
pub fn default_jwks_url(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

fn is_trusted_url(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty();
    }
    url.strip_prefix("http://").is_some_and(|rest| {
        [
            "127.0.0.1:",
            "127.0.0.1/",
            "localhost:",
            "localhost/",
            "[::1]:",
        ]
        .iter()
        .any(|p| rest.starts_with(p))
    })
}

/// One usable signing key from the JWKS.
#[derive(Clone)]
struct SigningKey {
    key: Arc<DecodingKey>,
    /// The only algorithm this key verifies (from its type and curve, and its `alg` if given).
    alg: Algorithm,
}

#[derive(Default)]
struct JwksCache {
    keys: HashMap<String, SigningKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Verifies tokens for one [`JwtConfig`], caching the issuer's JWKS. Build it once per process.
pub struct Verifier {
    config: JwtConfig,
    http: reqwest::Client,
    cache: Mutex<JwksCache>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `config`; nothing is fetched until the first token.
    ///
    /// # Errors
    /// [`JwtError::Config`] when the config breaks a rule or no HTTP client can be built.
    pub fn new(config: JwtConfig) -> Result<Self, JwtError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| JwtError::Config {
                var: env::JWKS_URL,
                rule: format!("HTTP client: {e}"),
            })?;
        Ok(Verifier {
            config,
            http,
            cache: Mutex::new(JwksCache::default()),
        })
    }

    /// A verifier whose signing keys are those of `jwks` (a JWKS document), held from the start:
    /// for an issuer in the same process (the local stack's token issuer), so verification needs
    /// no fetch. An unknown `kid` still refetches from [`JwtConfig::jwks_url`] under the usual
    /// rate limit, so set [`JwtConfig::jwks_min_refresh`] high to never fetch.
    ///
    /// # Errors
    /// [`JwtError::Config`] as for [`Verifier::new`]; [`JwtError::Jwks`] when `jwks` is not a JWKS
    /// document.
    pub fn with_jwks(config: JwtConfig, jwks: &[u8]) -> Result<Self, JwtError> {
        let verifier = Verifier::new(config)?;
        let keys =
            parse_jwks(jwks, &verifier.config.algorithms).map_err(|reason| JwtError::Jwks {
                url: verifier.config.jwks_url.clone(),
                reason,
            })?;
        let now = Instant::now();
        Ok(Verifier {
            cache: Mutex::new(JwksCache {
                keys,
                fetched_at: Some(now),
                last_attempt: Some(now),
            }),
            ..verifier
        })
    }

    /// The config in use.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Verifies `token` (a bare compact JWS; strip any `Bearer ` first). See the [module docs](self).
    ///
    /// # Errors
    /// The first rule the token breaks, as a [`JwtError`].
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        if token.split('.').count() != 3 || token.split('.').any(str::is_empty) {
            return Err(JwtError::Malformed(
                "not three non-empty dot-separated parts".into(),
            ));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| JwtError::Malformed(format!("header: {e}")))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(JwtError::Algorithm {
                alg: format!("{:?}", header.alg),
                accepted: self.accepted_algorithms(),
            });
        }
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self.key_for(&kid).await?;
        if key.alg != header.alg {
            return Err(JwtError::KeyMismatch {
                kid,
                alg: format!("{:?}", header.alg),
                rule: format!("the key verifies {:?} only", key.alg),
            });
        }

        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false; // `aud` or `client_id`: checked below
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                // Reached only past the signature: jsonwebtoken reads the registered claims with
                // fixed types and reports a wrong one (`"sub": ["u"]`) as a JSON syntax error at
                // a column; name the claim instead.
                ErrorKind::Json(_) => mistyped_claim(token).unwrap_or_else(|| map_decode_error(e)),
                _ => map_decode_error(e),
            })?;
        self.check_claims(data.claims)
    }

    fn accepted_algorithms(&self) -> String {
        self.config
            .algorithms
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn check_claims(&self, claims: Map<String, Value>) -> Result<VerifiedToken, JwtError> {
        let claim_err = |claim: &str, rule: String| JwtError::Claim {
            claim: claim.to_owned(),
            rule,
        };
        // jsonwebtoken's issuer check also passes an array that holds the issuer among others;
        // `iss` is one string (RFC 7519, section 4.1.1), and it must be the configured issuer.
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(claim_err(
                "iss",
                "is not the configured issuer (one string)".into(),
            ));
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let client_id = claims.get("client_id").and_then(Value::as_str);
        let matches = |v: &str| self.config.audiences.iter().any(|a| a == v);
        if !audiences.iter().copied().chain(client_id).any(matches) {
            return Err(claim_err(
                "aud",
                "neither aud nor client_id is one of the configured audiences".into(),
            ));
        }
        if !self.config.token_use.is_empty() {
            let token_use = claims.get("token_use").and_then(Value::as_str);
            if !token_use.is_some_and(|u| self.config.token_use.iter().any(|t| t == u)) {
                return Err(claim_err(
                    "token_use",
                    format!("{token_use:?} is not one of {:?}", self.config.token_use),
                ));
            }
        }
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(claim_err("sub", "must be a non-empty string".into())),
        };
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
            .ok_or_else(|| claim_err("exp", "must be a number of seconds".into()))?;
        let claim = &self.config.groups_claim;
        let groups = match claims.get(claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| claim_err(claim, "must be an array of strings".into()))?,
            Some(_) => return Err(claim_err(claim, "must be an array of strings".into())),
        };
        Ok(VerifiedToken {
            sub,
            groups,
            exp,
            claims,
        })
    }

    /// The key for `kid`: from the cache, or after a (rate-limited) refetch of the JWKS.
    async fn key_for(&self, kid: &str) -> Result<SigningKey, JwtError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        let fresh = cache
            .fetched_at
            .is_some_and(|t| now.duration_since(t) < self.config.jwks_max_age);
        if fresh && let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        // Until a first fetch succeeds, retry at most once a second rather than once per
        // `jwks_min_refresh`, so a blip at cold start does not deny everyone for that long.
        let interval = match cache.fetched_at {
            None => self.config.jwks_min_refresh.min(Duration::from_secs(1)),
            Some(_) => self.config.jwks_min_refresh,
        };
        let may_fetch = cache
            .last_attempt
            .is_none_or(|t| now.duration_since(t) >= interval);
        if may_fetch {
            cache.last_attempt = Some(now);
            match self.fetch_jwks().await {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "fetched JWKS");
                    cache.keys = keys;
                    cache.fetched_at = Some(now);
                }
                // A stale cache keeps serving through a failed refresh: keys are rotated by adding
                // new ones, which an unknown kid refetches anyway.
                Err(e) if !cache.keys.is_empty() => {
                    tracing::warn!(error = %e, "JWKS refresh failed")
                }
                Err(e) => return Err(e),
            }
        } else if !cache.keys.contains_key(kid) {
            tracing::warn!(kid, "unknown kid; JWKS refetch rate-limited");
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| JwtError::UnknownKid {
                kid: kid.to_owned(),
            })
    }

    async fn fetch_jwks(&self) -> Result<HashMap<String, SigningKey>, JwtError> {
        let url = &self.config.jwks_url;
        let err = |reason: String| JwtError::Jwks {
            url: url.clone(),
            reason,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| err(format!("request: {e}")))?;
        if !response.status().is_success() {
            return Err(err(format!("HTTP {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| err(format!("body: {e}")))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(err(format!("larger than {MAX_JWKS_BYTES} bytes")));
        }
        parse_jwks(&body, &self.config.algorithms).map_err(err)
    }
}

/// The usable signing keys of a JWKS document, by `kid`. Keys without a `kid`, not for
/// signatures, of another type or curve, or for an algorithm not accepted are skipped.
fn parse_jwks(body: &[u8], accepted: &[Algorithm]) -> Result<HashMap<String, SigningKey>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for raw in doc.keys {
        // One key of an unsupported type must not make the whole set unusable.
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| !matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature))
        {
            continue;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => continue,
        };
        let declared_ok = match jwk.common.key_algorithm {
            None => true,
            Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
            Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
            Some(_) => false,
        };
        if !declared_ok || !accepted.contains(&alg) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        debug_assert!(matches!(
            key.family(),
            AlgorithmFamily::Rsa | AlgorithmFamily::Ec
        ));
        keys.insert(
            kid,
            SigningKey {
                key: Arc::new(key),
                alg,
            },
        );
    }
    Ok(keys)
}

/// The first registered claim of `token` whose type jsonwebtoken cannot read, if any. Only for
/// naming a refusal: the token is refused either way.
fn mistyped_claim(token: &str) -> Option<JwtError> {
    let claims = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .ok()?
        .claims;
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    ["iss", "sub", "aud", "exp", "nbf"]
        .into_iter()
        .find_map(|claim| {
            let v = claims.get(claim).filter(|v| !v.is_null())?;
            let rule = match claim {
                "iss" | "sub" if !v.is_string() => "must be a string",
                "aud" if !v.is_string() && !strings(v) => "must be a string or an array of strings",
                "exp" | "nbf" if !v.is_number() => "must be a number of seconds",
                _ => return None,
            };
            Some(JwtError::Claim {
                claim: claim.to_owned(),
                rule: rule.to_owned(),
            })
        })
}

fn map_decode_error(e: jsonwebtoken::errors::Error) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::Claim {
            claim: "iss".into(),
            rule: "is not the configured issuer".into(),
        },
        ErrorKind::MissingRequiredClaim(c) => JwtError::Claim {
            claim: c.clone(),
            rule: "is required".into(),
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            JwtError::Malformed("algorithm does not match the key".into())
        }
        _ => JwtError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_from_env_applies_defaults() {
        let c = JwtConfig::from_lookup(lookup(&[
            (
                env::ISSUER,
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X/",
            ),
            (env::AUDIENCES, "client-a, client-b"),
        ]))
        .unwrap();
        assert_eq!(
            c.jwks_url,
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X/.well-known/jwks.json"
        );
        assert_eq!(c.audiences, ["client-a", "client-b"]);
        assert_eq!(c.groups_claim, "cognito:groups");
        assert_eq!(c.algorithms, [Algorithm::RS256]);
        assert!(c.token_use.is_empty());
        assert_eq!(c.leeway_secs, 0);
    }

    #[test]
    fn config_rejects_missing_audience_unknown_algorithm_and_plain_http() {
        let e = JwtConfig::from_lookup(lookup(&[(env::ISSUER, "https://i")])).unwrap_err();
        assert!(
            matches!(
                e,
                JwtError::Config {
                    var: env::AUDIENCES,
                    ..
                }
            ),
            "{e}"
        );
        let e = JwtConfig::from_lookup(lookup(&[
            (env::ISSUER, "https://i"),
            (env::AUDIENCES, "a"),
            (env::ALGORITHMS, "RS256,HS256"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                e,
                JwtError::Config {
                    var: env::ALGORITHMS,
                    ..
                }
            ),
            "{e}"
        );
        let e = JwtConfig::from_lookup(lookup(&[
            (env::ISSUER, "http://evil.example"),
            (env::AUDIENCES, "a"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                e,
                JwtError::Config {
                    var: env::ISSUER,
                    ..
                }
            ),
            "{e}"
        );
        let e = JwtConfig::from_lookup(lookup(&[(env::AUDIENCES, "a")])).unwrap_err();
        assert!(e.to_string().contains(env::ISSUER), "{e}");
        let e = JwtConfig::from_lookup(lookup(&[
            (env::ISSUER, "https://i"),
            (env::AUDIENCES, "a"),
            (env::LEEWAY_SECS, "9999"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                e,
                JwtError::Config {
                    var: env::LEEWAY_SECS,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn jwks_parsing_keeps_only_usable_signing_keys() {
        let body = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "declared-es", "alg": "ES256", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"weird": true}
        ]});
        let keys = parse_jwks(
            body.to_string().as_bytes(),
            &[Algorithm::RS256, Algorithm::ES256],
        )
        .unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["rsa"]);
        assert!(
            parse_jwks(body.to_string().as_bytes(), &[Algorithm::ES256])
                .unwrap()
                .is_empty()
        );
        assert!(parse_jwks(b"[]", &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn only_https_or_loopback_http_is_trusted() {
        assert!(is_trusted_url(
            "https://cognito-idp.eu-west-1.amazonaws.com/x"
        ));
        assert!(is_trusted_url("http://127.0.0.1:8080/jwks"));
        assert!(!is_trusted_url("http://127.0.0.1.evil.example/jwks"));
        assert!(!is_trusted_url("http://example.com"));
        assert!(!is_trusted_url("https://"));
    }
}
