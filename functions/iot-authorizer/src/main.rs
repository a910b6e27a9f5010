//! The AWS IoT Core custom authorizer: a thin adapter over `groupcast_auth::iot_authorizer`.
//! Configuration (`GROUPCAST_JWT_*`, `GROUPCAST_IOT_GROUPS`, `GROUPCAST_IOT_POLICY` (the group policy
//! the provisioner rendered with placeholders), `GROUPCAST_IOT_REFRESH_SECS`, `GROUPCAST_IOT_TOKEN_KEY`,
//! `GROUPCAST_COGNITO_USER_POOL_ID`) is read once, at cold start; a bad setting stops the function
//! there, naming the variable.

use std::time::{SystemTime, UNIX_EPOCH};

use groupcast_auth::iot_authorizer::{self, Rules, TokenClaims};
use groupcast_auth::jwt::{JwtConfig, Verifier};
use groupcast_auth::membership::{CognitoMembership, Membership};
use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |k: &str| std::env::var(k).ok();
    let jwt = JwtConfig::from_env()?;
    let pool = iot_authorizer::user_pool_from_lookup(env, &jwt.issuer)?;
    let verifier = Verifier::new(jwt)?;
    let rules = Rules::from_lookup(env)?;
    match pool {
        // The user pool answers which groups the user holds now, at every connect and refresh.
        Some(pool) => {
            let sdk = aws_config::load_from_env().await;
            let membership = CognitoMembership::new(&sdk, pool);
            serve(&verifier, &rules, Some(&membership)).await
        }
        // Another issuer: the token's groups claim, bounded by the token's expiry.
        None => serve::<TokenClaims<'_>>(&verifier, &rules, None).await,
    }
}

async fn serve<M: Membership + Sync>(
    verifier: &Verifier,
    rules: &Rules,
    membership: Option<&M>,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            Ok::<_, Error>(
                iot_authorizer::handle(verifier, rules, membership, event.payload, now).await,
            )
        },
    ))
    .await
}
