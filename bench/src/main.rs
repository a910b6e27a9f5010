//! `groupcast-bench`: the benchmarks behind BENCHMARKS.md, run by `bench/run.sh`.
//!
//! - `sign`: the per-request CPU cost of one AppSync Events publish of 5 events, serialize and
//!   SigV4-sign, through groupcast's own functions; median µs per request.
//! - `publish`: groupcast's [`groupcast::Publisher`] publishing 5-event batches with IAM auth to a
//!   local sink, in a closed loop; events/s.
//! - `wrk-script`: one request signed the same way, as a wrk Lua script, so that wrk measures the
//!   sink's capacity with the very requests the publisher sends.
//! - `faults`: issue 13's fault scenario (1,000 messages × 5 groups against a sink injecting
//!   500 / 429 / resets / per-event failures): delivered, reported failed, duplicates, wall time,
//!   for groupcast and for the Node publisher as AWS documents it.
//!
//! Every command prints one JSON line (or the Lua script) on stdout.

mod drive;
mod faults;
mod floor;
mod publish;
mod stats;
mod workload;

use clap::{Parser, Subcommand};

/// Benchmarks for groupcast: SigV4 sign cost and publish throughput (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// `groupcast-bench sign`: median µs to serialize and sign one 5-event Events publish.
    Sign(workload::SignArgs),
    /// `groupcast-bench publish --url URL`: events/s publishing 5-event batches to a sink.
    Publish(publish::PublishArgs),
    /// `groupcast-bench wrk-script --url URL`: a wrk Lua script replaying one signed publish.
    WrkScript(workload::WrkArgs),
    /// `groupcast-bench faults [--node-script bench/node/faults.mjs]`: the fault scenario.
    Faults(faults::FaultArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sign(args) => workload::run_sign(&args),
        Command::Publish(args) => publish::run(&args),
        Command::WrkScript(args) => workload::run_wrk_script(&args),
        Command::Faults(args) => faults::run(&args),
    }
}
