//! The iot-grant Lambda: a thin adapter over [`handler`]. Configuration (`GROUPCAST_PROJECT`,
//! `GROUPCAST_IOT_GROUPS`, `GROUPCAST_IOT_POLICY_PATTERN`, `GROUPCAST_COGNITO_*`,
//! `GROUPCAST_JWT_*`) and the AWS clients are set up once, at cold start.

mod handler;
mod identity;
mod registry;

use groupcast_auth::grant::GrantRules;
use groupcast_auth::jwt::Verifier;
use groupcast_auth::membership::CognitoMembership;
use identity::{CognitoIdentityIds, CognitoSettings};
use lambda_runtime::{Error, LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = |k: &str| std::env::var(k).ok();
    let rules = GrantRules::from_lookup(env)?;
    let cognito = CognitoSettings::from_lookup(env)?;
    let verifier = Verifier::new(cognito.jwt_config(env)?)?;
    let sdk = aws_config::load_from_env().await;
    let iot = aws_sdk_iot::Client::new(&sdk);
    let deps = handler::Deps {
        verifier,
        membership: CognitoMembership::new(&sdk, cognito.user_pool.clone()),
        registry: registry::IotRegistry::new(iot.clone(), rules.project()),
        identities: CognitoIdentityIds::new(&sdk, cognito),
        iot,
        rules,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(deps, event.payload).await
        },
    ))
    .await
}
