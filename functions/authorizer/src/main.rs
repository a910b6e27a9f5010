//! The AppSync Events Lambda authorizer: a thin adapter over `groupcast_auth::events`.
//! Configuration (`GROUPCAST_JWT_*`, `GROUPCAST_AUTHORIZER_TTL_SECS`) is read once, at cold start.

use std::time::{SystemTime, UNIX_EPOCH};

use groupcast_auth::events;
use groupcast_auth::jwt::{JwtConfig, Verifier};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing_subscriber::EnvFilter;

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_span_list(false)
        .without_time()
        .init();

    let verifier = Verifier::new(JwtConfig::from_env()?)?;
    let max_ttl = events::ttl_from_lookup(|k| std::env::var(k).ok())?;
    let verifier = &verifier;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            Ok::<_, Error>(events::handle(verifier, event.payload, max_ttl, now).await)
        },
    ))
    .await
}
