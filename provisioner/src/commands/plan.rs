//! `provisioner plan`: what apply would change, with diffs, without changing anything.

use std::path::PathBuf;
use std::process::ExitCode;

use super::saved_plan::SavedPlan;
use super::{Global, OutputFormat, TemplateArgs, print_changes};
use crate::config::Config;
use crate::reconcile::{Mode, Reconciler};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Exit 2 when there are changes (0 when none, 1 on error), as `terraform plan
    /// -detailed-exitcode`; without it a successful plan exits 0.
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Also write the plan to FILE, for `apply FILE` to apply exactly it (docs/config.md, "Saved
    /// plans").
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// Compares `config` with live state. Exit code 0, or with `--detailed-exitcode` 0 = no changes
/// and 2 = changes.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let renderer = args.templates.renderer()?;
    let cloud = global.aws.connect(config).await?;
    let mut r = Reconciler::new(&cloud, config, &renderer, Mode::Plan)?;
    r.run().await?;
    if let Some(path) = &args.out {
        SavedPlan::new(&global.config, config, &renderer, &r.changes)?.write(path)?;
        eprintln!(
            "Saved the plan to {}: apply it with provisioner apply {}",
            path.display(),
            path.display()
        );
    }
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "changes": r.changes }))?
        ),
        OutputFormat::Text if r.changes.is_empty() => outln!(
            "No changes: live state matches {}.",
            global.config.display()
        ),
        OutputFormat::Text => print_changes(&r.changes)?,
    }
    Ok(if r.changes.is_empty() || !args.detailed_exitcode {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
