//! The subcommands, one module each with its `Args` beside its `run`, and what they share: the
//! global options ([`Global`]: where the configuration comes from, the output format, logging) and
//! the exit codes ([`exit`]).

pub(crate) mod publish;
pub(crate) mod revoke;
pub(crate) mod watch;

use clap::Args;

use crate::config::Connection;
use crate::output::Format;

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Output on stdout: JSON lines, a table, or auto (a table when stdout is a terminal, JSON
    /// lines otherwise). NO_COLOR (any non-empty value) turns colours off.
    #[arg(long, global = true, value_enum, default_value_t = Format::Auto, env = "GROUPCAST_FORMAT")]
    pub(crate) format: Format,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// The flag a library input field came from: `topic` → `--topic`, `data` → `--data`,
/// `groups[i]` → `--group` with the value given, `groups` → `--group`; other fields as they are.
/// The library names fields (`Error::Invalid`, `SubscribeError::Invalid`); the user typed flags.
pub(crate) fn field_flag(field: &str, groups: &[String]) -> String {
    let index = field
        .strip_prefix("groups[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|i| i.parse::<usize>().ok());
    match (field, index.and_then(|i| groups.get(i))) {
        (_, Some(g)) => format!("--group {g:?}"),
        ("topic", None) => "--topic".to_owned(),
        ("data", None) => "--data".to_owned(),
        (f, None) if f.starts_with("groups") => "--group".to_owned(),
        (f, None) => f.to_owned(),
    }
}

/// The exit codes, as documented in `--help` and docs/cli.md.
pub(crate) mod exit {
    /// A usage or configuration error: nothing was sent, nothing subscribed.
    pub(crate) const USAGE: u8 = 1;
    /// `publish`: at least one (group, transport) delivery failed; the report says which.
    pub(crate) const DELIVERY_FAILED: u8 = 2;
    /// `watch`: the subscription ended: every group was refused, or the connection was closed
    /// for good (refused at connect, or lost and not recoverable).
    pub(crate) const SUBSCRIPTION_ENDED: u8 = 3;
    /// `watch --timeout T`: the time ran out before `--count` messages arrived, or before the
    /// subscription was active.
    pub(crate) const TIMED_OUT: u8 = 4;
    /// `revoke`: the revocation failed on at least one transport (the report says which and
    /// whether retrying may help). Wins over [`REVOKE_NOT_SUPPORTED`].
    pub(crate) const REVOKE_FAILED: u8 = 5;
    /// `revoke`: nothing failed, but at least one transport cannot revoke (AppSync Events): a
    /// removed member may still receive there within the bound printed on stderr.
    pub(crate) const REVOKE_NOT_SUPPORTED: u8 = 6;
}
