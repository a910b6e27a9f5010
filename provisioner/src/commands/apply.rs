//! `provisioner apply`: make live state match the config, then write the outputs file and the
//! documents rendered with the real ids.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Global, OutputFormat, TemplateArgs};
use crate::config::Config;
use crate::reconcile::{Mode, Reconciler};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the outputs JSON (the publish library reads it).
    #[arg(long, value_name = "FILE", default_value = "groupcast.outputs.json")]
    pub(crate) outputs: PathBuf,
    /// Where to write the documents rendered with the real API ids.
    #[arg(long, value_name = "DIR", default_value = "groupcast.deployed")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// Applies `config`.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let renderer = args.templates.renderer()?;
    let cloud = global.aws.connect(config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let mut r = Reconciler::new(&cloud, config, &renderer, Mode::Apply { progress })?;
    let outputs = r.run().await?;
    std::fs::write(&args.outputs, outputs.to_json_pretty() + "\n")
        .with_context(|| format!("writing {}", args.outputs.display()))?;
    // The documents as applied: rendered with the real API ids.
    r.rendered().write(&args.out)?.eprint_removed();
    match global.output {
        OutputFormat::Json => println!("{}", outputs.to_json_pretty()),
        OutputFormat::Text => {
            let n = r.changes.len();
            println!(
                "Applied {n} change(s). Outputs: {}. Documents with real ids: {}/",
                args.outputs.display(),
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
