//! Authorizers: how a request proves who sends it. IAM (SigV4 with credentials from a
//! [`SharedCredentialsProvider`]), an API key (`x-api-key`), or a token (`Authorization: <token>`)
//! from a [`TokenProvider`], with [`CachingTokenProvider`] to fetch and refresh one.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use futures::future::BoxFuture;

use crate::error::Error;

/// How requests are authorized. AppSync Events and GraphQL accept all three; the IoT data plane
/// accepts IAM only (see [`crate::PublisherBuilder::credentials`]).
#[derive(Clone)]
pub enum Authorizer {
    /// SigV4 (`AWS_IAM`).
    Iam(IamAuth),
    /// An AppSync API key (`API_KEY`), sent as `x-api-key`.
    ApiKey(String),
    /// A token sent as `Authorization: <token>`: a Cognito or OIDC JWT, or a Lambda authorizer's
    /// token.
    Token(Arc<dyn TokenProvider>),
}

impl fmt::Debug for Authorizer {
    // Never print secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorizer::Iam(i) => f.debug_tuple("Iam").field(i).finish(),
            Authorizer::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Authorizer::Token(p) => f.debug_tuple("Token").field(p).finish(),
        }
    }
}

impl Authorizer {
    /// An API key authorizer.
    pub fn api_key(key: impl Into<String>) -> Self {
        Authorizer::ApiKey(key.into())
    }
    /// A token authorizer over `provider`.
    pub fn token(provider: impl TokenProvider + 'static) -> Self {
        Authorizer::Token(Arc::new(provider))
    }
    /// An IAM authorizer over fixed credentials.
    pub fn iam(credentials: Credentials) -> Self {
        Authorizer::Iam(IamAuth::from_credentials(credentials))
    }
    /// The name used in `GROUPCAST_AUTH` and in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Authorizer::Iam(_) => "iam",
            Authorizer::ApiKey(_) => "api-key",
            Authorizer::Token(_) => "token",
        }
    }
}

/// IAM credentials for SigV4, from any provider (the default chain, a role, fixed keys).
#[derive(Clone, Debug)]
pub struct IamAuth {
    provider: SharedCredentialsProvider,
    // The default chain does not cache by itself (the SDK's identity cache does, and we have none).
    cache: Arc<tokio::sync::Mutex<Option<Credentials>>>,
}

/// Credentials this close to their expiry are fetched anew.
const CREDENTIALS_REFRESH_BEFORE: Duration = Duration::from_secs(300);

impl IamAuth {
    /// Over a provider.
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        IamAuth {
            provider,
            cache: Arc::default(),
        }
    }
    /// Over fixed credentials.
    pub fn from_credentials(credentials: Credentials) -> Self {
        IamAuth::new(SharedCredentialsProvider::new(credentials))
    }
    /// Over `aws-config`'s default chain (environment, profile, web identity, ECS, IMDS). The
    /// chain caches and refreshes what it loads.
    ///
    /// # Errors
    /// [`Error::Credentials`] when the chain has no provider at all.
    pub async fn from_default_chain() -> Result<Self, Error> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let provider = config.credentials_provider().ok_or_else(|| {
            Error::Credentials("the default AWS credentials chain is empty".into())
        })?;
        Ok(IamAuth {
            provider,
            cache: Arc::default(),
        })
    }
    /// The provider.
    pub fn provider(&self) -> &SharedCredentialsProvider {
        &self.provider
    }
    /// Current credentials: cached, and fetched from the provider again 5 minutes before they
    /// expire.
    ///
    /// # Errors
    /// [`Error::Credentials`] when the provider cannot supply them.
    pub async fn credentials(&self) -> Result<Credentials, Error> {
        let mut cached = self.cache.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| SystemTime::now() + CREDENTIALS_REFRESH_BEFORE < exp);
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Credentials(format!("IAM credentials: {e}")))?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

/// Supplies the token sent as `Authorization`. Called before every request (retries included),
/// so implementations should cache; [`CachingTokenProvider`] does.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// The current token.
    fn token(&self) -> BoxFuture<'_, Result<String, Error>>;
}

/// A fixed token.
#[derive(Clone)]
pub struct StaticToken(pub String);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

/// A token with its expiry, as a fetch function returns it.
#[derive(Clone)]
pub struct Token {
    /// The token text.
    pub value: String,
    /// When it stops being valid; `None` = never.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

type FetchFn = dyn Fn() -> BoxFuture<'static, Result<Token, Error>> + Send + Sync;

/// Fetches a token with a function, keeps it, and fetches a new one `refresh_before` ahead of its
/// expiry. Concurrent callers share one fetch.
pub struct CachingTokenProvider {
    fetch: Box<FetchFn>,
    refresh_before: Duration,
    cached: tokio::sync::Mutex<Option<Token>>,
}

impl fmt::Debug for CachingTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingTokenProvider")
            .field("refresh_before", &self.refresh_before)
            .finish_non_exhaustive()
    }
}

impl CachingTokenProvider {
    /// Over `fetch`, refreshing 60 s before expiry.
    pub fn new<F>(fetch: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<Token, Error>> + Send + Sync + 'static,
    {
        CachingTokenProvider {
            fetch: Box::new(fetch),
            refresh_before: Duration::from_secs(60),
            cached: tokio::sync::Mutex::new(None),
        }
    }
    /// How long before expiry a new token is fetched.
    #[must_use]
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }
    /// Drops the cached token, e.g. after the service refused it.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

impl TokenProvider for CachingTokenProvider {
    fn token(&self) -> BoxFuture<'_, Result<String, Error>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            let fresh = cached.as_ref().is_some_and(|t| match t.expires_at {
                None => true,
                Some(exp) => SystemTime::now() + self.refresh_before < exp,
            });
            if !fresh {
                *cached = Some((self.fetch)().await?);
            }
            Ok(cached.as_ref().map(|t| t.value.clone()).unwrap_or_default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn caching_provider_fetches_once_until_near_expiry() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let p = CachingTokenProvider::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                Ok(Token {
                    value: format!("t{n}"),
                    expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
                })
            })
        });
        assert_eq!(p.token().await.unwrap(), "t1");
        assert_eq!(p.token().await.unwrap(), "t1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        p.invalidate().await;
        assert_eq!(p.token().await.unwrap(), "t2");
    }

    #[tokio::test]
    async fn caching_provider_refreshes_a_token_inside_the_margin() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let p = CachingTokenProvider::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            // Expires in 30 s: inside the 60 s margin, so every call refetches.
            Box::pin(async move {
                Ok(Token {
                    value: format!("t{n}"),
                    expires_at: Some(SystemTime::now() + Duration::from_secs(30)),
                })
            })
        });
        assert_eq!(p.token().await.unwrap(), "t1");
        assert_eq!(p.token().await.unwrap(), "t2");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = format!(
            "{:?} {:?}",
            Authorizer::api_key("da2-secret"),
            Authorizer::token(StaticToken("jwt-secret".into()))
        );
        assert!(!s.contains("secret"), "{s}");
    }
}
