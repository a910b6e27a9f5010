//! The command line: global options, one `Args` struct per subcommand, and `run`, which
//! dispatches to the command modules and maps results to exit codes.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::render::{Ids, Renderer};

/// Create and update groupcast's AWS resources (AppSync Events, AppSync GraphQL, IoT Core) from
/// one config file.
#[derive(Debug, Parser)]
#[command(
    name = "provisioner",
    version,
    after_help = "Config reference: docs/config.md"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// The config file.
    #[arg(
        long,
        global = true,
        default_value = "groupcast.toml",
        value_name = "FILE"
    )]
    pub(crate) config: PathBuf,
    /// AWS region for API calls (default: the config's project.region).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub(crate) region: Option<String>,
    /// AWS profile (SSO, credential_process and static profiles work).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,
    /// Send every AWS call to this endpoint (local peers such as moto).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Result format on stdout; with json nothing else is printed there.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// `provisioner render --out DIR`: write every document (schema, VTL, handlers, policies)
    /// offline, without credentials.
    #[command(
        after_help = "Example:\n  provisioner render --config examples/groupcast.toml --out out/"
    )]
    Render(RenderArgs),
    /// `provisioner plan`: show what apply would create, update or delete, with diffs.
    /// Exit code 0 = no changes, 2 = changes, 1 = error.
    #[command(after_help = "Example:\n  provisioner plan --config groupcast.toml --profile prod")]
    Plan(PlanArgs),
    /// `provisioner apply`: create or update everything to match the config, then write the
    /// outputs JSON and the rendered documents with the real API ids.
    #[command(
        after_help = "Example:\n  provisioner apply --config groupcast.toml --outputs groupcast.outputs.json --out deployed/"
    )]
    Apply(ApplyArgs),
    /// `provisioner destroy --yes`: delete everything groupcast created for this project (only
    /// resources carrying its groupcast:project tag).
    #[command(after_help = "Example:\n  provisioner destroy --config groupcast.toml --yes")]
    Destroy(DestroyArgs),
    /// IoT Core operations.
    #[command(subcommand)]
    Iot(IotCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum IotCommand {
    /// `provisioner iot grant --identity-id ID --groups a,b`: attach exactly these groups' IoT
    /// policies to a Cognito identity and detach its other groupcast policies.
    #[command(
        after_help = "Example:\n  provisioner iot grant --identity-id us-east-1:0f6d…-… --groups team-a,admins"
    )]
    Grant(GrantArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Load templates from DIR/templates and DIR/vtl instead of the embedded copies.
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Load templates from DIR/templates and DIR/vtl instead of the embedded copies.
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Where to write the outputs JSON (the publish library reads it).
    #[arg(long, value_name = "FILE", default_value = "groupcast.outputs.json")]
    pub(crate) outputs: PathBuf,
    /// Where to write the documents rendered with the real API ids.
    #[arg(long, value_name = "DIR", default_value = "groupcast.deployed")]
    pub(crate) out: PathBuf,
    /// Load templates from DIR/templates and DIR/vtl instead of the embedded copies.
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The Cognito identity id (REGION:UUID).
    #[arg(long, value_name = "ID")]
    pub(crate) identity_id: String,
    /// The groups to grant, comma separated; each must be in iot.groups. Empty revokes all.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub(crate) groups: Vec<String>,
}

/// Loads the renderer the options ask for.
pub(crate) fn renderer(templates: Option<&PathBuf>) -> anyhow::Result<Renderer> {
    Ok(match templates {
        Some(dir) => Renderer::from_dir(dir)?,
        None => Renderer::embedded()?,
    })
}

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.global.config)?;
    match cli.command {
        Command::Render(args) => {
            let rendered = renderer(args.templates.as_ref())?.render(&config, &Ids::default())?;
            let done = rendered.write(&args.out)?;
            let shown = |paths: &[PathBuf]| -> Vec<String> {
                paths.iter().map(|p| p.display().to_string()).collect()
            };
            match cli.global.output {
                OutputFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "written": shown(&done.written),
                            "removed": shown(&done.removed),
                        }))?
                    );
                }
                OutputFormat::Text => {
                    for p in &done.written {
                        println!("{}", p.display());
                    }
                    done.eprint_removed();
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => crate::commands::plan(&cli.global, &config, args).await,
        Command::Apply(args) => crate::commands::apply(&cli.global, &config, args).await,
        Command::Destroy(args) => {
            if !args.yes && !confirm(&config)? {
                anyhow::bail!("destroy cancelled (pass --yes to skip the question)");
            }
            crate::commands::destroy(&cli.global, &config).await
        }
        Command::Iot(IotCommand::Grant(args)) => {
            crate::commands::grant(&cli.global, &config, args).await
        }
    }
}

fn confirm(config: &Config) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("destroy needs --yes when stdin is not a terminal");
    }
    eprint!(
        "Delete every resource tagged groupcast:project={} in {}? Type the project name to confirm: ",
        config.project.name, config.project.region
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim() == config.project.name)
}
