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
//! The Lambda itself runs elsewhere: whoever builds the stack registers an [`Invoke`] with
//! [`set_invoker`] (the real iot-authorizer binary under the emulated Runtime API). Without one,
//! every custom-authorizer CONNECT is refused (fail closed).

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

/// Runs the registered authorizer on `c`.
pub async fn authorize(stack: &Stack, c: &Credentials) -> Result<Answer, String> {
    let Some(invoke) = state::of(&stack.state_dir).authorizer() else {
        return Err("no custom authorizer runtime is registered with the local stack".into());
    };
    let v = invoke(event(c)).await?;
    answer(&v)
}
