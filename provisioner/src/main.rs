//! `provisioner`: render, plan, apply and destroy groupcast's AWS resources from one config file,
//! and serve them locally (`dev`).
//! See docs/config.md for the config file and `provisioner --help` for the commands.
//!
//! This file is the command tree and start-up; each subcommand's `Args` and `run` live in
//! `commands/`. Modules depend one way: `commands` → `reconcile` → `aws` → `config`, and
//! `commands`/`reconcile` → `render` → `config`.

/// `println!` that returns the write error instead of panicking (a closed pipe is an error the
/// caller ends quietly on, not a crash).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod aws;
mod commands;
mod config;
mod lambdas;
mod reconcile;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{Global, apply, destroy, dev, iot, plan, render as render_cmd};

/// Create and update groupcast's AWS resources (AppSync Events, AppSync GraphQL, IoT Core, and
/// the IAM permissions they need) from one config file.
#[derive(Debug, Parser)]
#[command(
    name = "provisioner",
    version,
    after_help = "Config reference: docs/config.md"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// `provisioner render --out DIR`: write every document (schema, VTL, handlers, policies)
    /// offline, without credentials.
    #[command(
        after_help = "Example:\n  provisioner render --config examples/groupcast.toml --out out/"
    )]
    Render(render_cmd::Args),
    /// `provisioner plan`: show what apply would create, update or delete, with diffs.
    /// Exit code 0 = success, 1 = error; with --detailed-exitcode 0 = no changes, 2 = changes.
    #[command(after_help = "Example:\n  provisioner plan --config groupcast.toml --profile prod")]
    Plan(plan::Args),
    /// `provisioner apply [PLAN_FILE]`: create or update everything to match the config (or
    /// exactly a plan saved with `plan --out`), then write the outputs JSON and the rendered
    /// documents with the real API ids. Deleting an API, namespace, IoT policy or IAM role needs
    /// --allow-delete; a second concurrent apply is refused (a lock file beside the outputs).
    #[command(
        after_help = "Example:\n  provisioner apply --config groupcast.toml --outputs groupcast.outputs.json --out deployed/\n  \
                      provisioner plan --out reviewed.plan && provisioner apply reviewed.plan"
    )]
    Apply(apply::Args),
    /// `provisioner destroy --yes`: delete everything groupcast created for this project (only
    /// resources carrying its groupcast:project tag).
    #[command(after_help = "Example:\n  provisioner destroy --config groupcast.toml --yes")]
    Destroy(destroy::Args),
    /// IoT Core operations.
    #[command(subcommand)]
    Iot(iot::Command),
    /// `provisioner dev`: serve the rendered system on this machine (AppSync Events, GraphQL
    /// pubsub, IoT MQTT, a local Cognito token issuer) over TLS with a local CA, until Ctrl-C or
    /// SIGTERM; `provisioner dev token` prints a local user's ID token. See docs/dev.md.
    #[command(
        after_help = "Example:\n  provisioner --config examples/groupcast.toml dev\n  \
                      provisioner --config examples/groupcast.toml dev token --user alice --groups team-a,editors\n  \
                      provisioner --config groupcast.toml dev --ports events=0,graphql=0,iot_wss=0,iot_mqtt=0,aws=0 --outputs dev.outputs.json"
    )]
    Dev(Box<dev::Args>),
    /// `provisioner completions bash|zsh|fish`: print a shell completion script (no config
    /// needed).
    #[command(
        after_help = "Example:\n  provisioner completions bash > /etc/bash_completion.d/provisioner\n  \
                      provisioner completions zsh > \"${fpath[1]}/_provisioner\"\n  \
                      provisioner completions fish > ~/.config/fish/completions/provisioner.fish"
    )]
    Completions {
        /// The shell to write the script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Usage errors exit 1 like every other error: 2 means "changes present" for
    // `plan --detailed-exitcode`, and a typo must never read as that. Help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let level = ["warn", "info", "debug", "trace"][usize::from(cli.global.verbose.min(3))];
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli).await {
        Ok(code) => code,
        // `provisioner plan | head`: the reader has all it wants; end quietly, as ripgrep does.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions { shell } = cli.command {
        // Into a buffer first: clap_complete panics on a write error, and a closed pipe must
        // end quietly like every other command's output.
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut <Cli as clap::CommandFactory>::command(),
            "provisioner",
            &mut script,
        );
        std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = config::Config::load(&cli.global.config)?;
    let g = &cli.global;
    match cli.command {
        Command::Render(args) => render_cmd::run(g, &config, args),
        Command::Plan(args) => plan::run(g, &config, args).await,
        Command::Apply(args) => apply::run(g, &config, args).await,
        Command::Destroy(args) => destroy::run(g, &config, args).await,
        Command::Iot(iot::Command::Grant(args)) => iot::grant(g, &config, args).await,
        Command::Dev(args) => dev::run(g, &config, *args).await,
        Command::Completions { .. } => unreachable!("handled before the config is loaded"),
    }
}
