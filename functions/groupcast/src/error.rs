//! The crate's error type.

use std::time::Duration;

/// Everything that can go wrong in groupcast.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input broke a rule. Nothing was sent.
    #[error("invalid {field}: {rule}")]
    Invalid {
        /// The field, e.g. `topic`, `groups[2]`, `data`.
        field: String,
        /// The rule it broke, in words.
        rule: String,
    },
    /// Configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The service refused our credentials (HTTP 401/403). Never retried.
    #[error("not authorized ({status}): {message}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// What the service said.
        message: String,
    },
    /// Credentials or a token could not be obtained.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The service rejected the request (4xx other than 401/403/429). Never retried.
    #[error("rejected ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// What the service said.
        message: String,
    },
    /// The service accepted the request but failed this event.
    #[error("event failed{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    EventFailed {
        /// `code` / `errorCode` from the response, when given.
        code: Option<String>,
        /// `message` / `errorMessage` from the response.
        message: String,
    },
    /// GraphQL returned `errors`.
    #[error("graphql: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Graphql(Vec<GraphqlError>),
    /// Retries ran out, or the deadline passed, on a retryable failure.
    #[error("gave up after {attempts} attempt(s) in {elapsed:?}: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },
    /// The response was not what the protocol promises.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

/// One entry of a GraphQL `errors` array.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct GraphqlError {
    /// `errorType`, e.g. `Unauthorized`.
    #[serde(rename = "errorType", default)]
    pub error_type: Option<String>,
    /// `message`.
    #[serde(default)]
    pub message: String,
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_type {
            Some(t) => write!(f, "{t}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Error {
    /// An [`Error::Invalid`] for `field` breaking `rule`.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
