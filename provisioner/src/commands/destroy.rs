//! `provisioner destroy`: delete everything groupcast owns for this project.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::lock::Lock;
use super::{Global, OutputFormat};
use crate::config::Config;
use crate::reconcile::{Mode, Reconciler};
use crate::render::Renderer;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// The outputs file apply wrote; removed once everything is deleted (when it describes
    /// this project's region), so no publisher keeps using deleted endpoints.
    #[arg(long, value_name = "FILE", default_value = "groupcast.outputs.json")]
    pub(crate) outputs: PathBuf,
}

/// Deletes, after confirmation (or `--yes`), every resource tagged with the project.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    if !args.yes && !confirm(config)? {
        anyhow::bail!("destroy cancelled (pass --yes to skip the question)");
    }
    let renderer = Renderer::embedded()?;
    let _lock = Lock::acquire(&args.outputs, config, "destroy")?;
    let cloud = global.aws.connect(config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let mut r = Reconciler::new(&cloud, config, &renderer, Mode::Apply { progress })?;
    r.destroy().await?;
    let removed = match groupcast::Outputs::from_path(&args.outputs) {
        Ok(o) if o.region == config.project.region => {
            std::fs::remove_file(&args.outputs)?;
            eprintln!(
                "removed {} (its resources are deleted)",
                args.outputs.display()
            );
            Some(args.outputs.display().to_string())
        }
        _ => None,
    };
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "changes": r.changes,
                "removedOutputs": removed,
            }))?
        ),
        OutputFormat::Text => outln!("Deleted {} resource(s).", r.changes.len()),
    }
    Ok(ExitCode::SUCCESS)
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
