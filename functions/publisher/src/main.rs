//! The trusted publisher Lambda: a thin adapter over [`handler`]. The publisher is configured once,
//! at cold start, from the `GROUPCAST_*` variables of the `groupcast` library.

mod handler;

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

    let publisher = groupcast::Publisher::from_env().await?;
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(publisher, event.payload).await
        },
    ))
    .await
}
