//! `groupcast`: publish a message to groups, watch the groups' messages, and revoke a user's
//! access to groups they left, from a shell.
//! See docs/cli.md for every flag, variable, exit code and output format.
//!
//! This file is the command tree and start-up; each subcommand's `Args` and `run` live in
//! `commands/`. The `groupcast` library does the work: `config` turns flags, `GROUPCAST_*`
//! variables and the provisioner's outputs file into its configuration, `output` owns how
//! results look (JSON lines or a table). Modules depend one way: `commands` → `config`, `output`.

/// `println!` that returns the write error instead of panicking (a closed pipe is an error the
/// caller ends quietly on, not a crash).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod commands;
mod config;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{Global, exit, publish, revoke, watch};

/// Publish messages to groups and watch the messages of groups, through AppSync Events, AppSync
/// GraphQL or AWS IoT Core.
///
/// Configuration, highest precedence first: flags, then GROUPCAST_* environment variables, then
/// the provisioner's outputs file (--outputs, default groupcast.outputs.json).
#[derive(Debug, Parser)]
#[command(
    name = "groupcast",
    version,
    after_help = "Exit codes: 0 success; 1 usage or configuration error; 2 publish: a delivery failed; \
                  3 watch: the subscription ended (every group refused, or the connection closed); \
                  4 watch: --timeout passed before --count messages or before the subscription was active; \
                  5 revoke: a transport failed; 6 revoke: a transport cannot revoke (Events; the bound is on stderr).\n\
                  Reference: docs/cli.md"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// `groupcast publish --topic T --group G --data JSON`: publish one message to its groups and
    /// print one report line per (group, transport). Exit 0 when every delivery succeeded, 2 when
    /// any failed.
    #[command(
        after_help = "Examples:\n  groupcast publish --topic news --group team-a --data '{\"text\":\"hi\"}'\n  \
                      echo '{\"n\":1}' | groupcast publish --topic jobs/42 --group team-a --group admins --data -"
    )]
    Publish(publish::Args),
    /// `groupcast watch --group G [--topic T]`: subscribe to the groups' messages and print each
    /// one as a JSON line (a table row on a terminal), after a line saying the subscription is
    /// active.
    #[command(
        after_help = "Examples:\n  groupcast watch --group team-a --token \"$ID_TOKEN\"\n  \
                      groupcast watch --group team-a --topic news --count 1 --timeout 30s | jq .data"
    )]
    Watch(watch::Args),
    /// `groupcast revoke --user SUB --group G`: make every transport stop delivering the groups'
    /// messages to a user who left them, and print one report line per transport. Exit 0 when
    /// every transport revoked, 5 when any failed, 6 when one cannot (Events: the bound goes to
    /// stderr).
    #[command(
        after_help = "Examples:\n  groupcast revoke --user \"$SUB\" --group team-a\n  \
                      groupcast revoke --user \"$SUB\" --group team-a --group admins --transport graphql,iot\n\n\
                      Exit codes: 0 revoked on every transport; 1 usage or configuration error (nothing sent); \
                      5 a transport failed; 6 a transport cannot revoke (Events; bound on stderr)."
    )]
    Revoke(revoke::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's default is 2, which `publish` uses for a
    // failed delivery). Help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let level = ["warn", "info", "debug", "trace"][usize::from(cli.global.verbose.min(3))];
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // The library's warnings (why a connect failed, a frame it skipped) read as short lines
    // beside watch's own; timestamps and module paths only from -vv on.
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::color_on_stderr());
    if cli.global.verbose >= 2 {
        log.init();
    } else {
        log.without_time().with_target(false).init();
    }
    let result = match cli.command {
        Command::Publish(args) => publish::run(&cli.global, args).await,
        Command::Watch(args) => watch::run(&cli.global, args).await,
        Command::Revoke(args) => revoke::run(&cli.global, args).await,
    };
    match result {
        Ok(code) => code,
        // `groupcast watch | head -1`: the reader has all it wants; end quietly, as ripgrep does.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
