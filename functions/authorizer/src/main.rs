//! The AppSync Lambda authorizer, for Event APIs and GraphQL APIs alike: a thin adapter over
//! `groupcast_auth::authorizer`. Configuration (`GROUPCAST_JWT_*`, `GROUPCAST_AUTHORIZER_TTL_SECS`)
//! is read once, at cold start.

use std::time::{SystemTime, UNIX_EPOCH};

use groupcast_auth::authorizer;
use groupcast_auth::jwt::{JwtConfig, Verifier};
use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let verifier = Verifier::new(JwtConfig::from_env()?)?;
    let max_ttl = authorizer::ttl_from_lookup(|k| std::env::var(k).ok())?;
    let verifier = &verifier;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            Ok::<_, Error>(authorizer::handle(verifier, event.payload, max_ttl, now).await)
        },
    ))
    .await
}
