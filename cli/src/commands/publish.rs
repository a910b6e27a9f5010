//! `groupcast publish`: one message to its groups through `groupcast::Publisher`, and the report,
//! one line per (group, transport).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use groupcast::{Delivery, Message, Outcome, PublishReport, Transport};
use uuid::Uuid;

use super::{Global, exit, field_flag};
use crate::config::{name_flags, parse_transport};
use crate::output::{self, Format, Paint};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The message's topic: 1 to 3 segments joined by `/` (e.g. `comments/post-42`).
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: String,
    /// A group to send to; repeat for several. Each (group, transport) is reported.
    #[arg(long = "group", value_name = "GROUP", required = true)]
    pub(crate) groups: Vec<String>,
    /// The payload: JSON text, or `-` to read it from stdin.
    #[arg(
        long,
        value_name = "JSON",
        required_unless_present = "data_file",
        conflicts_with = "data_file",
        allow_hyphen_values = true
    )]
    pub(crate) data: Option<String>,
    /// Read the payload (JSON) from a file.
    #[arg(long, value_name = "PATH")]
    pub(crate) data_file: Option<PathBuf>,
    /// The transports to use, comma-separated or repeated: events, events-ws, graphql, iot
    /// [default: every configured one but events-ws].
    #[arg(
        long = "transport",
        value_name = "TRANSPORT",
        env = "GROUPCAST_TRANSPORTS",
        value_delimiter = ',',
        value_parser = parse_transport
    )]
    pub(crate) transports: Vec<Transport>,
    /// The message id [default: a random v4 UUID]. Subscribers de-duplicate by it, so resending
    /// with the same id is safe.
    #[arg(long, value_name = "UUID")]
    pub(crate) id: Option<Uuid>,
}

impl Args {
    /// The payload from `--data`, `--data -` (stdin) or `--data-file`.
    fn payload(&self) -> anyhow::Result<serde_json::Value> {
        let (what, text) = match (&self.data, &self.data_file) {
            (Some(d), _) if d == "-" => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("--data -: reading stdin")?;
                ("--data - (stdin)".to_owned(), s)
            }
            (Some(d), _) => ("--data".to_owned(), d.clone()),
            (None, Some(p)) => {
                let what = format!("--data-file {}", p.display());
                let s = std::fs::read_to_string(p).with_context(|| what.clone())?;
                (what, s)
            }
            (None, None) => {
                anyhow::bail!("--data: required (JSON text, or - for stdin), or --data-file PATH")
            }
        };
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{what}: not valid JSON: {e}"))
    }

    /// The message, checked by the library; its errors name the flag.
    fn message(&self) -> anyhow::Result<Message> {
        let data = self.payload()?;
        let mut b = Message::builder(self.topic.clone())
            .data(data)
            .groups(self.groups.iter().cloned());
        if let Some(id) = self.id {
            b = b.id(id);
        }
        b.build().map_err(|e| flag_error(&e, &self.groups))
    }
}

/// A library input error as the flag it came from: `topic` → `--topic`, `groups[i]` → `--group`
/// with its value, `messages[0].data` → `--data`.
fn flag_error(e: &groupcast::Error, groups: &[String]) -> anyhow::Error {
    if let groupcast::Error::Invalid { field, rule } = e {
        let field = field.strip_prefix("messages[0].").unwrap_or(field);
        return anyhow::anyhow!("{}: {rule}", field_flag(field, groups));
    }
    anyhow::anyhow!(name_flags(&e.to_string()))
}

/// `groupcast publish`. Exit 0 when every delivery succeeded, [`exit::DELIVERY_FAILED`] when any
/// failed; an error (exit 1) before anything is sent.
pub(crate) async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    // Input first: a bad flag is reported before any configuration is read or credential loaded.
    let msg = args.message()?;
    let publisher = global.connection.publisher(&args.transports).await?;
    let report = publisher
        .publish(&msg)
        .await
        .map_err(|e| flag_error(&e, &args.groups))?;
    print_report(global.format.resolve(), &report)?;
    if report.is_complete() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(exit::DELIVERY_FAILED))
    }
}

/// Prints the report: JSON lines (each a [`Delivery`], as the library serializes it) or a table
/// with a summary line. A failure summary also goes to stderr in JSON mode, for the person
/// watching a script.
fn print_report(format: Format, report: &PublishReport) -> anyhow::Result<()> {
    let failed = report.failures().count();
    let total = report.deliveries.len();
    match format {
        Format::Json | Format::Auto => {
            for d in &report.deliveries {
                outln!("{}", serde_json::to_string(d)?);
            }
            if failed > 0 {
                eprintln!("groupcast: {failed} of {total} deliveries failed");
            }
        }
        Format::Table => {
            let paint = Paint {
                on: output::color_on_stdout(),
            };
            let rows: Vec<Vec<String>> = report.deliveries.iter().map(row).collect();
            let lines = output::table(
                &["GROUP", "TRANSPORT", "RESULT", "ATTEMPTS", "DETAIL"],
                &rows,
                |r, c, s| match (&report.deliveries[r].outcome, c) {
                    (Outcome::Delivered { .. }, 2) => paint.green(s),
                    (Outcome::Failed { .. }, 2) => paint.red(s),
                    _ => s.to_owned(),
                },
            );
            for l in lines {
                outln!("{l}");
            }
            let id = report
                .deliveries
                .first()
                .map(|d| d.message_id.to_string())
                .unwrap_or_default();
            if failed == 0 {
                outln!("message {id}: all {total} deliveries succeeded");
            } else {
                outln!(
                    "message {id}: {}",
                    paint.red(&format!("{failed} of {total} deliveries failed"))
                );
            }
        }
    }
    Ok(())
}

fn row(d: &Delivery) -> Vec<String> {
    let (result, detail) = match &d.outcome {
        Outcome::Delivered { identifier } => (
            "delivered",
            identifier.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        Outcome::Failed { error, retryable } => (
            "FAILED",
            if *retryable {
                format!("{error} (retryable)")
            } else {
                error.clone()
            },
        ),
    };
    vec![
        output::cell(&d.group, 40),
        d.transport.to_string(),
        result.to_owned(),
        d.attempts.to_string(),
        output::cell(&detail, 200),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_input_errors_name_the_flag_and_the_group_given() {
        let groups = vec!["ok".to_owned(), String::new()];
        let e = groupcast::Error::Invalid {
            field: "groups[1]".into(),
            rule: "empty".into(),
        };
        assert_eq!(flag_error(&e, &groups).to_string(), "--group \"\": empty");
        let e = groupcast::Error::Invalid {
            field: "messages[0].data".into(),
            rule: "too big".into(),
        };
        assert_eq!(flag_error(&e, &groups).to_string(), "--data: too big");
        let e = groupcast::Error::Invalid {
            field: "topic".into(),
            rule: "bad".into(),
        };
        assert_eq!(flag_error(&e, &groups).to_string(), "--topic: bad");
    }
}
