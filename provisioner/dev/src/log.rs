//! The decision log: every admit and refuse of every transport, one line each on stderr, as text
//! or JSON (`--log-format json`). Transports call [`DecisionLog::decision`]; nothing else prints.

use serde_json::{Value, json};
use std::sync::Arc;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `events subscribe admitted /live/team-a (alice): …`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether a request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Admitted,
    Refused,
}

/// One decision.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// `events`, `graphql`, `iot`, `auth`, `aws`.
    pub transport: &'a str,
    /// `connect`, `subscribe`, `publish`, `deliver`, …
    pub action: &'a str,
    /// The channel, topic or field concerned.
    pub target: &'a str,
    /// Who asked (user, principal ARN, client id), if known.
    pub principal: Option<&'a str>,
    pub outcome: Outcome,
    /// Why: the handler's or template's message, the auth failure.
    pub reason: Option<&'a str>,
}

/// Where decisions go. Cheap to clone. Tests may capture lines with [`DecisionLog::capture`].
#[derive(Debug, Clone, Default)]
pub struct DecisionLog {
    format: LogFormat,
    capture: Option<Arc<std::sync::Mutex<Vec<Value>>>>,
}

impl DecisionLog {
    /// A log that writes to stderr in `format`.
    pub fn new(format: LogFormat) -> DecisionLog {
        DecisionLog {
            format,
            capture: None,
        }
    }

    /// A log that keeps each decision as JSON in memory (and prints nothing), for tests.
    pub fn capture() -> (DecisionLog, Arc<std::sync::Mutex<Vec<Value>>>) {
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        (
            DecisionLog {
                format: LogFormat::Json,
                capture: Some(lines.clone()),
            },
            lines,
        )
    }

    /// Records one decision.
    pub fn decision(&self, d: Decision<'_>) {
        let outcome = match d.outcome {
            Outcome::Admitted => "admitted",
            Outcome::Refused => "refused",
        };
        let value = json!({
            "transport": d.transport,
            "action": d.action,
            "target": d.target,
            "principal": d.principal,
            "outcome": outcome,
            "reason": d.reason,
        });
        if let Some(lines) = &self.capture {
            if let Ok(mut lines) = lines.lock() {
                lines.push(value);
            }
            return;
        }
        match self.format {
            LogFormat::Json => eprintln!("{value}"),
            LogFormat::Text => {
                let who = d.principal.map(|p| format!(" ({p})")).unwrap_or_default();
                let why = d.reason.map(|r| format!(": {r}")).unwrap_or_default();
                eprintln!(
                    "{} {} {outcome} {}{who}{why}",
                    d.transport, d.action, d.target
                );
            }
        }
    }
}
