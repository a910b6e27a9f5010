//! The emulated AWS APIs on the stack's `aws` port: the Cognito user pool the local token issuer
//! stands in for (JWKS, the Admin* group calls), Cognito identity (GetId,
//! GetCredentialsForIdentity), Lambda Invoke, and the IoT control plane ([`crate::iot::control`]).
//! (To be built.)

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Stack;

/// One HTTP request to the AWS port, body read. Header names are lower-case.
#[derive(Debug, Clone)]
pub struct AwsRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// The answer to an [`AwsRequest`].
#[derive(Debug, Clone)]
pub struct AwsResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Serves the AWS APIs on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let _ = (listener, stack);
    Err(std::io::Error::other("the AWS endpoint is not built yet"))
}
