//! The iot-grant Lambda: a thin adapter over [`handler`]. Configuration (`GROUPCAST_JWT_*`,
//! `GROUPCAST_IOT_POLICY_PATTERN`) and the IoT client are set up once, at cold start.

mod handler;

use groupcast_auth::grant::{PATTERN_ENV, PolicyPattern};
use groupcast_auth::jwt::{JwtConfig, Verifier};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tracing_subscriber::EnvFilter;

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false);
    fmt.with_span_list(false).without_time().init();

    let verifier = Verifier::new(JwtConfig::from_env()?)?;
    let pattern = std::env::var(PATTERN_ENV)
        .map_err(|_| format!("{PATTERN_ENV} must be set, e.g. acme-live-{{group}}"))?;
    let pattern = PolicyPattern::parse(&pattern)?;
    let iot = aws_sdk_iot::Client::new(&aws_config::load_from_env().await);
    let (verifier, pattern, iot) = (&verifier, &pattern, &iot);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(verifier, iot, pattern, event.payload).await
        },
    ))
    .await
}
