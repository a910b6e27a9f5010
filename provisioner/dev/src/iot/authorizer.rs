//! Custom-authorizer mode (`iot.auth = "custom-authorizer"`): the request IoT Core sends the
//! authorizer Lambda at CONNECT, the answer it expects, and how the broker honours it
//! (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html):
//! - the event: `{token?, signatureVerified, protocols, protocolData: {tls: {serverName},
//!   http: {headers, queryString}, mqtt: {username, password (base64), clientId}},
//!   connectionMetadata: {id}}` (aws_lambda_events' `IoTCoreCustomAuthorizerRequest`);
//! - the answer: `{isAuthenticated, principalId, policyDocuments, refreshAfterInSeconds,
//!   disconnectAfterInSeconds}`; the documents are the session's only rights (enforced by
//!   [`super::policy`] like attached policies), the authorizer is invoked again every
//!   `refreshAfterInSeconds` with the same credentials and its new documents replace the old
//!   (a refusal then closes the connection), and the connection is closed after
//!   `disconnectAfterInSeconds`. The values are honoured as returned (AWS enforces 300–86400;
//!   groupcast's iot-authorizer never returns less, and tests may).
//!
//! The Lambda is the real iot-authorizer binary (`IotAuth::CustomAuthorizer { binary }`), started
//! at the first CONNECT under the emulated Runtime API ([`crate::lambda_rt`]); tests may register
//! another [`Invoke`] with [`set_invoker`]. Without either, every custom-authorizer CONNECT is
//! refused (fail closed).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::policy::Policy;
use super::state;
use crate::Stack;

/// Invokes the authorizer Lambda with an event; its JSON answer, or why it failed.
pub type Invoke =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// Registers the authorizer invocation of `stack` (custom-authorizer mode).
pub fn set_invoker(stack: &Stack, invoke: Invoke) {
    state::of(&stack.state_dir).set_authorizer(invoke);
}

/// What a client presented at CONNECT.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// MQTT CONNECT username and password (MQTT on TLS).
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub client_id: String,
    /// The WebSocket upgrade's headers and raw query (MQTT over WSS).
    pub headers: Option<BTreeMap<String, String>>,
    pub query: Option<String>,
    /// TLS SNI, if any.
    pub server_name: Option<String>,
    /// An id per connection (`connectionMetadata.id`).
    pub connection_id: String,
}

/// The event IoT Core sends the authorizer for `c`.
pub fn event(c: &Credentials) -> Value {
    use base64::Engine;
    let mut protocols = Vec::new();
    let mut data = serde_json::Map::new();
    data.insert("tls".into(), json!({ "serverName": c.server_name }));
    if let Some(headers) = &c.headers {
        protocols.push("http");
        data.insert(
            "http".into(),
            json!({ "headers": headers, "queryString": c.query.clone().unwrap_or_default() }),
        );
    }
    protocols.push("mqtt");
    let mut mqtt = json!({ "clientId": c.client_id });
    if let Some(u) = &c.username {
        mqtt["username"] = json!(u);
    }
    if let Some(p) = &c.password {
        mqtt["password"] = json!(base64::engine::general_purpose::STANDARD.encode(p));
    }
    data.insert("mqtt".into(), mqtt);
    json!({
        "signatureVerified": false,
        "protocols": protocols,
        "protocolData": data,
        "connectionMetadata": { "id": c.connection_id },
    })
}

/// An authorizer's answer, checked.
#[derive(Debug, Clone)]
pub struct Answer {
    pub principal_id: String,
    pub policies: Vec<Policy>,
    pub refresh_after: Duration,
    pub disconnect_after: Duration,
}

/// Reads the authorizer's answer; `Err` says why the client is refused (not authenticated, or
/// an answer that breaks the shape: a missing field, a document that does not parse).
pub fn answer(v: &Value) -> Result<Answer, String> {
    if v.get("isAuthenticated").and_then(Value::as_bool) != Some(true) {
        return Err("the custom authorizer answered isAuthenticated: false".into());
    }
    let principal_id = v
        .get("principalId")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or("the custom authorizer's answer has no principalId")?
        .to_owned();
    let secs = |field: &str| {
        v.get(field)
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("the custom authorizer's answer has no numeric {field}"))
    };
    let refresh_after = secs("refreshAfterInSeconds")?;
    let disconnect_after = secs("disconnectAfterInSeconds")?;
    let docs = v
        .get("policyDocuments")
        .and_then(Value::as_array)
        .ok_or("the custom authorizer's answer has no policyDocuments array")?;
    let policies = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let parsed = match d {
                Value::String(text) => Policy::parse(text),
                other => Policy::from_value(other),
            };
            parsed.map_err(|e| format!("policyDocuments[{i}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Answer {
        principal_id,
        policies,
        refresh_after,
        disconnect_after,
    })
}

/// When the broker asks the authorizer again: after the `refreshAfterInSeconds` it answered, or
/// after the stack's dev-only cap ([`crate::system::IotSystem::refresh_cap`],
/// `provisioner dev --iot-refresh-seconds`) when that is shorter. AWS refreshes no sooner than
/// 300 s (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html); the cap
/// exists so a test sees a removal within seconds. The choice is logged (action
/// `refresh-schedule`), so a run with the cap never passes for AWS's timing.
pub fn refresh_after(stack: &Stack, who: &str, answer: &Answer) -> Duration {
    let cap = stack.system.iot.as_ref().and_then(|i| i.refresh_cap);
    let (after, reason) = match cap {
        Some(cap) if cap < answer.refresh_after => (
            cap,
            format!(
                "asking the authorizer again in {} s: the dev-only --iot-refresh-seconds cap, \
                 not its refreshAfterInSeconds {} s (AWS waits that long)",
                cap.as_secs_f64(),
                answer.refresh_after.as_secs()
            ),
        ),
        _ => (
            answer.refresh_after,
            format!(
                "asking the authorizer again in {} s (its refreshAfterInSeconds)",
                answer.refresh_after.as_secs()
            ),
        ),
    };
    stack.log.decision(crate::log::Decision {
        transport: "iot",
        action: "refresh-schedule",
        target: who,
        principal: Some(&answer.principal_id),
        outcome: crate::log::Outcome::Admitted,
        reason: Some(&reason),
    });
    after
}

/// Runs the registered authorizer on `c`.
pub async fn authorize(stack: &Stack, c: &Credentials) -> Result<Answer, String> {
    let st = state::of(&stack.state_dir);
    let invoke = match st.authorizer() {
        Some(invoke) => invoke,
        // The configured binary, started once; a failed start is retried at the next CONNECT.
        None => {
            let _guard = st.authorizer_start.lock().await;
            match st.authorizer() {
                Some(invoke) => invoke,
                None => {
                    let invoke = start_binary(stack).await?;
                    st.set_authorizer(invoke.clone());
                    invoke
                }
            }
        }
    };
    let v = invoke(event(c)).await?;
    answer(&v)
}

/// The real iot-authorizer binary under the emulated Runtime API, started on first use when
/// `iot.auth` names its binary and nothing else was registered. Its configuration
/// (functions/iot-authorizer: `GROUPCAST_JWT_*`, `GROUPCAST_IOT_GROUPS`, `GROUPCAST_IOT_POLICY`)
/// points at the local issuer, whose JWKS a loopback server hands it.
///
/// The groups: when the local tokens carry the user pool's Cognito issuer
/// (`https://cognito-idp.{region}.amazonaws.com/{pool}`, what `provisioner dev` mints with a
/// configured pool) and the stack's functions endpoint runs ([`crate::functions::start`]), the
/// user's CURRENT groups from the stack's user directory (`GROUPCAST_COGNITO_USER_POOL_ID`, as
/// `provisioner apply` deploys it), re-read at every refresh. Otherwise the binary accepts no
/// pool (it checks the issuer), so the groups are the token's `cognito:groups` (its documented
/// fallback for other issuers: a removed member keeps access until the token expires, which
/// `disconnectAfterInSeconds` never outlives).
pub(crate) async fn start_binary(stack: &Stack) -> Result<Invoke, String> {
    use crate::lambda_rt::{JsonServer, LambdaFunction};
    let Some(iot) = stack.system.iot.as_ref() else {
        return Err("this stack serves no [iot]".into());
    };
    let crate::system::IotAuth::CustomAuthorizer {
        binary: Some(binary),
        policy,
    } = &iot.auth
    else {
        return Err(
            "the iot-authorizer binary was not found (build it with `cargo build -p iot-authorizer`)"
                .into(),
        );
    };
    let Some(issuer) = stack.auth.issuer() else {
        return Err("the stack has no local token issuer for the authorizer to trust".into());
    };
    // GROUPCAST_IOT_POLICY: the rendered placeholder policy, whitespace-free as apply sets it.
    let policy = policy
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|p| p.to_string())
        .ok_or(
            "iot/authorizer-group-policy.json was not rendered (custom-authorizer mode needs it)",
        )?;
    let jwks = JsonServer::start("/jwks.json", issuer.jwks())
        .await
        .map_err(|e| format!("JWKS server for the iot-authorizer: {e}"))?;
    let groups: Vec<&String> = iot.group_policies.keys().collect();
    let env = vec![
        (
            "GROUPCAST_JWT_ISSUER".to_owned(),
            issuer.issuer_url().to_owned(),
        ),
        (
            "GROUPCAST_JWT_AUDIENCES".to_owned(),
            issuer.client_id().to_owned(),
        ),
        ("GROUPCAST_JWT_TOKEN_USE".to_owned(), "id".to_owned()),
        ("GROUPCAST_JWT_JWKS_URL".to_owned(), jwks.url().to_owned()),
        (
            "GROUPCAST_IOT_GROUPS".to_owned(),
            serde_json::to_string(&groups).unwrap_or_default(),
        ),
        ("GROUPCAST_IOT_POLICY".to_owned(), policy),
    ];
    let mut env = env;
    if let Some(pool) = stack.system.identity.user_pool_id.as_deref()
        && issuer.issuer_url() == cognito_issuer(&stack.system, pool)
        && let Some(endpoint) = crate::functions::endpoint(&stack.state_dir)
    {
        env.push(("GROUPCAST_COGNITO_USER_POOL_ID".to_owned(), pool.to_owned()));
        env.extend(crate::functions::aws_env(
            &stack.state_dir,
            &stack.system.region,
            &endpoint,
        )?);
    }
    let f = LambdaFunction::start(binary, &env)
        .await
        .map_err(|e| e.to_string())?;
    let f = Arc::new((f, jwks));
    Ok(Arc::new(move |event: Value| {
        let f = f.clone();
        Box::pin(async move { f.0.invoke(event).await.map_err(|e| e.to_string()) })
    }))
}

/// The issuer of `pool`'s ID tokens
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html).
fn cognito_issuer(system: &crate::system::System, pool: &str) -> String {
    let region = system
        .identity
        .user_pool_region
        .clone()
        .or_else(|| pool.split_once('_').map(|(r, _)| r.to_owned()))
        .unwrap_or_else(|| system.region.clone());
    format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
}
