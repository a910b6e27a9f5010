//! The subcommands, one module each with its `Args` beside its `run`, and what they share: the
//! global options ([`Global`], including the AWS options that build the SDK configuration), the
//! template loader and the printing of changes.

pub(crate) mod apply;
pub(crate) mod destroy;
pub(crate) mod dev;
pub(crate) mod iot;
pub(crate) mod lock;
pub(crate) mod plan;
pub(crate) mod render;
pub(crate) mod saved_plan;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::aws::AwsOptions;
use crate::reconcile::{Action, Change};
use crate::render::Renderer;

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
    #[command(flatten)]
    pub(crate) aws: AwsOptions,
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

/// `--templates DIR`, shared by the commands that render.
#[derive(Debug, Clone, Args)]
pub(crate) struct TemplateArgs {
    /// Load templates from DIR/templates and DIR/vtl instead of the embedded copies.
    #[arg(long, value_name = "DIR")]
    pub(crate) templates: Option<PathBuf>,
}

impl TemplateArgs {
    /// Loads the renderer the options ask for.
    pub(crate) fn renderer(&self) -> anyhow::Result<Renderer> {
        Ok(match &self.templates {
            Some(dir) => Renderer::from_dir(dir)?,
            None => Renderer::embedded()?,
        })
    }
}

/// Prints a plan: each change with its diff, then the counts.
fn print_changes(changes: &[Change]) -> anyhow::Result<()> {
    for c in changes {
        outln!("{} {} {}", c.action.symbol(), c.kind, c.name);
        if let Some(d) = &c.diff {
            for line in d.lines() {
                outln!("    {line}");
            }
        }
    }
    let count = |a| changes.iter().filter(|c| c.action == a).count();
    outln!(
        "Plan: {} to create, {} to update, {} to delete.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Delete)
    );
    let guarded = changes.iter().filter(|c| c.guarded()).count();
    if guarded > 0 {
        outln!(
            "{guarded} of the deletions (APIs, namespaces, IoT policies, IAM roles) need apply --allow-delete."
        );
    }
    Ok(())
}
