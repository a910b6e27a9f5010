//! `provisioner render`: every document, offline, without credentials.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Global, OutputFormat, TemplateArgs};
use crate::config::Config;
use crate::render::Ids;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// Renders `config` into `args.out` and lists what it wrote (and removed).
pub(crate) fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let rendered = args.templates.renderer()?.render(config, &Ids::default())?;
    let done = rendered.write(&args.out)?;
    let shown = |paths: &[PathBuf]| -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    };
    match global.output {
        OutputFormat::Json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "written": shown(&done.written),
                    "removed": shown(&done.removed),
                }))?
            );
        }
        OutputFormat::Text => {
            for p in &done.written {
                outln!("{}", p.display());
            }
            done.eprint_removed();
        }
    }
    Ok(ExitCode::SUCCESS)
}
