//! The AWS IoT Core custom authorizer: a thin adapter over `groupcast_auth::iot_authorizer`.
//! Configuration (`GROUPCAST_JWT_*`, `GROUPCAST_IOT_*`, `GROUPCAST_REGION`, `GROUPCAST_ACCOUNT_ID`)
//! is read once, at cold start; a bad setting stops the function there, naming the variable.

use std::time::{SystemTime, UNIX_EPOCH};

use groupcast_auth::iot_authorizer::{self, Rules, TokenClaims};
use groupcast_auth::jwt::{JwtConfig, Verifier};
use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let verifier = Verifier::new(JwtConfig::from_env()?)?;
    let rules = Rules::from_lookup(|k| std::env::var(k).ok())?;
    let (verifier, rules) = (&verifier, &rules);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            // The token's groups claim until a membership source that reads the issuer lands
            // (groupcast_auth::membership): `None` selects it.
            let membership: Option<&TokenClaims<'_>> = None;
            Ok::<_, Error>(
                iot_authorizer::handle(verifier, rules, membership, event.payload, now).await,
            )
        },
    ))
    .await
}
