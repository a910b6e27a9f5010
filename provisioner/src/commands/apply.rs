//! `provisioner apply`: make live state match the config, then write the outputs file and the
//! documents rendered with the real ids.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use groupcast::Outputs;

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
    /// Print API keys on stdout (`--output json`); by default they are redacted there, since
    /// stdout often ends up in CI logs. The outputs file always holds them (mode 0600).
    #[arg(long)]
    pub(crate) show_secrets: bool,
    #[command(flatten)]
    pub(crate) templates: TemplateArgs,
}

/// The outputs with every API key replaced by a placeholder.
fn redacted(outputs: &Outputs) -> Outputs {
    let mut o = outputs.clone();
    let hide = |k: &mut Option<String>| {
        if k.is_some() {
            *k = Some("(redacted: see the outputs file, or pass --show-secrets)".to_owned());
        }
    };
    if let Some(e) = o.events.as_mut() {
        hide(&mut e.api_key);
    }
    if let Some(g) = o.graphql.as_mut() {
        hide(&mut g.api_key);
    }
    o
}

/// Writes `text` to `path` atomically (a temporary file beside it, renamed over it) and, on
/// Unix, readable by the owner only: the outputs file holds API keys.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Applies `config`.
pub(crate) async fn run(global: &Global, config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let renderer = args.templates.renderer()?;
    let cloud = global.aws.connect(config).await?;
    let progress = std::io::stderr().is_terminal() && global.output == OutputFormat::Text;
    let mut r = Reconciler::new(&cloud, config, &renderer, Mode::Apply { progress })?;
    let mut outputs = r.run().await?;
    outputs.lambdas = crate::lambdas::lambdas(config, &outputs);
    write_private(&args.outputs, &(outputs.to_json_pretty() + "\n"))
        .with_context(|| format!("writing {}", args.outputs.display()))?;
    // The documents as applied (rendered with the real API ids), and the functions' env files.
    let mut deployed = r.rendered().clone();
    deployed
        .files
        .extend(crate::lambdas::env_files(&outputs.lambdas));
    deployed.write(&args.out)?.eprint_removed();
    match global.output {
        OutputFormat::Json => {
            let shown = if args.show_secrets {
                outputs.clone()
            } else {
                redacted(&outputs)
            };
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "changes": r.changes,
                    "outputs": shown,
                }))?
            )
        }
        OutputFormat::Text => {
            let n = r.changes.len();
            outln!(
                "Applied {n} change(s). Outputs: {}. Documents with real ids: {}/",
                args.outputs.display(),
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
