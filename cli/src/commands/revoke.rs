//! `groupcast revoke`: make every transport stop delivering groups' messages to a user who left
//! them, through `groupcast::Publisher::revoke`, and the report, one line per transport. What
//! each transport can do, and the bound where it cannot, is the library's (`groupcast::revoke`,
//! docs/isolation.md "Revocation"); this module only adapts it to a shell.

use std::process::ExitCode;

use groupcast::{RevokeOutcome, RevokeReport, Transport, TransportRevocation};
use serde::Serialize;

use super::{Global, exit, field_flag};
use crate::config::{name_flags, parse_transport};
use crate::output::{self, Format, Paint};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The user's id as subscribers are identified: the Cognito or OIDC `sub`, or the `sub` the
    /// Lambda authorizer returns.
    #[arg(long, value_name = "SUB")]
    pub(crate) user: String,
    /// A group the user no longer belongs to; repeat for several.
    #[arg(long = "group", value_name = "GROUP", required = true)]
    pub(crate) groups: Vec<String>,
    /// The transports to revoke on, comma-separated or repeated: events, events-ws, graphql, iot
    /// [default: every configured one but events-ws]. Events cannot revoke (exit 6).
    #[arg(
        long = "transport",
        value_name = "TRANSPORT",
        env = "GROUPCAST_TRANSPORTS",
        value_delimiter = ',',
        value_parser = parse_transport
    )]
    pub(crate) transports: Vec<Transport>,
}

/// A library input error as the flag it came from: `user` → `--user`, `groups[i]` → `--group`
/// with its value, `groups` → `--group`.
fn flag_error(e: &groupcast::Error, groups: &[String]) -> anyhow::Error {
    if let groupcast::Error::Invalid { field, rule } = e {
        let flag = match field.as_str() {
            "user" => "--user".to_owned(),
            f => field_flag(f, groups),
        };
        return anyhow::anyhow!("{flag}: {rule}");
    }
    anyhow::anyhow!(name_flags(&e.to_string()))
}

/// The exit code of a report: 0 when every transport revoked, [`exit::REVOKE_FAILED`] when any
/// failed (it wins: retrying may help), else [`exit::REVOKE_NOT_SUPPORTED`] when a transport
/// cannot revoke at all (Events), so a script never mistakes a bounded revocation for a done one.
fn code(report: &RevokeReport) -> u8 {
    if report.failures().next().is_some() {
        exit::REVOKE_FAILED
    } else if report.is_complete() {
        0
    } else {
        exit::REVOKE_NOT_SUPPORTED
    }
}

/// `groupcast revoke`. The exit code is [`code`]'s; an error (exit 1) before anything is sent.
pub(crate) async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    // The flags clap cannot check (a blank user, a bad group) are checked by the library before
    // any request; a publisher is built first only because the check lives in `revoke`.
    let publisher = global.connection.publisher(&args.transports).await?;
    let report = publisher
        .revoke(&args.user, &args.groups)
        .await
        .map_err(|e| flag_error(&e, &args.groups))?;
    print_report(global.format.resolve(), &report)?;
    Ok(ExitCode::from(code(&report)))
}

/// One JSON line: the user and groups with one transport's result.
#[derive(Serialize)]
struct Line<'a> {
    user: &'a str,
    groups: &'a [String],
    #[serde(flatten)]
    transport: &'a TransportRevocation,
}

/// Prints the report: JSON lines or a table with a summary line. On stderr, in both formats, the
/// bound of each transport that cannot revoke (what a removed member may still receive), and in
/// JSON mode a failure count, for the person watching a script.
fn print_report(format: Format, report: &RevokeReport) -> anyhow::Result<()> {
    let failed = report.failures().count();
    let total = report.transports.len();
    for t in &report.transports {
        match &t.outcome {
            RevokeOutcome::NotSupported { bound } => {
                eprintln!("groupcast: {}: not revoked: {bound}", t.transport);
            }
            RevokeOutcome::Expires { bound, .. } => {
                eprintln!("groupcast: {}: expires by itself: {bound}", t.transport);
            }
            _ => {}
        }
    }
    match format {
        Format::Json | Format::Auto => {
            for t in &report.transports {
                let line = Line {
                    user: &report.user,
                    groups: &report.groups,
                    transport: t,
                };
                outln!("{}", serde_json::to_string(&line)?);
            }
            if failed > 0 {
                eprintln!("groupcast: revoke failed on {failed} of {total} transports");
            }
        }
        Format::Table => {
            let paint = Paint {
                on: output::color_on_stdout(),
            };
            let rows: Vec<Vec<String>> = report.transports.iter().map(row).collect();
            let lines = output::table(
                &["TRANSPORT", "RESULT", "ATTEMPTS", "DETAIL"],
                &rows,
                |r, c, s| match (&report.transports[r].outcome, c) {
                    (o, 1) if o.is_done() => paint.green(s),
                    (RevokeOutcome::Failed { .. }, 1) => paint.red(s),
                    (RevokeOutcome::NotSupported { .. }, 1) => paint.dim(s),
                    _ => s.to_owned(),
                },
            );
            for l in lines {
                outln!("{l}");
            }
            let who = format!(
                "user {} from {}",
                output::cell(&report.user, 80),
                output::cell(&report.groups.join(", "), 120)
            );
            let not_supported = total
                - failed
                - report
                    .transports
                    .iter()
                    .filter(|t| t.outcome.is_done())
                    .count();
            if report.is_complete() {
                outln!("{who}: revoked on all {total} transports");
            } else if failed > 0 {
                outln!(
                    "{who}: {}",
                    paint.red(&format!("revoke failed on {failed} of {total} transports"))
                );
            } else {
                outln!(
                    "{who}: {not_supported} of {total} transports cannot revoke (bound on stderr)"
                );
            }
        }
    }
    Ok(())
}

fn row(t: &TransportRevocation) -> Vec<String> {
    let (result, detail) = match &t.outcome {
        RevokeOutcome::Invalidated => ("invalidated", "open subscriptions closed".to_owned()),
        RevokeOutcome::Synced { response } => ("synced", response.to_string()),
        RevokeOutcome::Expires { within_seconds, .. } => (
            "expires",
            format!("open subscriptions stop within {within_seconds} s (stderr: the conditions)"),
        ),
        RevokeOutcome::NotSupported { .. } => {
            ("NOT SUPPORTED", "see stderr for the bound".to_owned())
        }
        RevokeOutcome::Failed { error, retryable } => (
            "FAILED",
            if *retryable {
                format!("{error} (retryable)")
            } else {
                error.clone()
            },
        ),
    };
    vec![
        t.transport.to_string(),
        result.to_owned(),
        t.attempts.to_string(),
        output::cell(&detail, 200),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: Vec<RevokeOutcome>) -> RevokeReport {
        RevokeReport {
            user: "u".into(),
            groups: vec!["g".into()],
            transports: outcomes
                .into_iter()
                .map(|outcome| TransportRevocation {
                    transport: Transport::Graphql,
                    outcome,
                    attempts: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn an_expiring_transport_counts_as_revoked_and_its_row_states_the_bound() {
        let r = report(vec![
            RevokeOutcome::Invalidated,
            RevokeOutcome::Expires {
                within_seconds: 600,
                bound: groupcast::revoke::events_epoch_bound("live", 300),
            },
        ]);
        assert!(r.is_complete());
        assert_eq!(code(&r), 0);
        let cells = row(&r.transports[1]);
        assert_eq!(cells[1], "expires");
        assert!(cells[3].contains("within 600 s"), "{cells:?}");
    }

    #[test]
    fn a_failure_outranks_not_supported_which_is_never_success() {
        let failed = RevokeOutcome::Failed {
            error: "x".into(),
            retryable: true,
        };
        let events = RevokeOutcome::NotSupported { bound: "b".into() };
        assert_eq!(code(&report(vec![RevokeOutcome::Invalidated])), 0);
        assert_eq!(
            code(&report(vec![RevokeOutcome::Invalidated, events.clone()])),
            exit::REVOKE_NOT_SUPPORTED
        );
        assert_eq!(code(&report(vec![events, failed])), exit::REVOKE_FAILED);
    }

    #[test]
    fn library_input_errors_name_the_user_and_group_flags() {
        let e = groupcast::Error::Invalid {
            field: "user".into(),
            rule: "blank".into(),
        };
        assert_eq!(flag_error(&e, &[]).to_string(), "--user: blank");
        let e = groupcast::Error::Invalid {
            field: "groups[0]".into(),
            rule: "empty".into(),
        };
        assert_eq!(
            flag_error(&e, &[String::new()]).to_string(),
            "--group \"\": empty"
        );
    }
}
