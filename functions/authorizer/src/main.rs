//! The AppSync Lambda authorizer, for Event APIs and GraphQL APIs alike: a thin adapter over
//! `groupcast_auth::authorizer`. Configuration (`GROUPCAST_JWT_*`, `GROUPCAST_AUTHORIZER_TTL_SECS`,
//! `GROUPCAST_COGNITO_USER_POOL_ID`) is read once, at cold start; a bad setting stops the function
//! there, naming the variable.

use std::time::{SystemTime, UNIX_EPOCH};

use groupcast_auth::authorizer::{self, TokenClaims};
use groupcast_auth::jwt::{JwtConfig, Verifier};
use groupcast_auth::membership::{CognitoMembership, Membership};
use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |k: &str| std::env::var(k).ok();
    let jwt = JwtConfig::from_env()?;
    let pool = authorizer::user_pool_from_lookup(env, &jwt.issuer)?;
    let verifier = Verifier::new(jwt)?;
    let max_ttl = authorizer::ttl_from_lookup(env)?;
    match pool {
        // groups_source = "user-pool": the pool answers which groups the user holds now, at every
        // request AppSync has not cached, so a token minted before a removal opens nothing new.
        Some(pool) => {
            let sdk = aws_config::load_from_env().await;
            let membership = CognitoMembership::new(&sdk, pool);
            serve(&verifier, max_ttl, Some(&membership)).await
        }
        // The token's groups claim, for the token's lifetime.
        None => serve::<TokenClaims<'_>>(&verifier, max_ttl, None).await,
    }
}

async fn serve<M: Membership + Sync>(
    verifier: &Verifier,
    max_ttl: u64,
    membership: Option<&M>,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            Ok::<_, Error>(
                authorizer::handle_with(verifier, membership, event.payload, max_ttl, now).await,
            )
        },
    ))
    .await
}
