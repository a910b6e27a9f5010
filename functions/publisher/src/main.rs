//! The trusted publisher Lambda: an adapter over `groupcast::lambda`, whose batch policy handles
//! direct, SQS and EventBridge invocations, and `{"revoke": {"user", "groups"}}` (one call that
//! revokes a user's groups on every configured transport: `groupcast::Publisher::revoke`). The
//! publisher is configured once, at cold start, from the `GROUPCAST_*` variables of the
//! `groupcast` library.

use std::time::Duration;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};

/// Time kept back from the invocation's deadline to send the answer: publishing stops this long
/// before Lambda would end the invocation, so failures are reported rather than cut off.
const ANSWER_MARGIN: Duration = Duration::from_millis(300);

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // The runtime's own setup: AWS_LAMBDA_LOG_LEVEL (else RUST_LOG, else INFO), and JSON lines
    // when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT).
    lambda_runtime::tracing::init_default_subscriber();

    let publisher = groupcast::Publisher::from_env().await?;
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let until = event.context.deadline().checked_sub(ANSWER_MARGIN);
            groupcast::lambda::handle_until(publisher, event.payload, until)
                .await
                .map_err(|f| Diagnostic {
                    error_type: f.error_type().into(),
                    error_message: f.to_string(),
                })
        },
    ))
    .await
}
