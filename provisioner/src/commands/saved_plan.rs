//! Saved plans: what `plan --out FILE` writes and `apply FILE` checks before it changes anything.
//!
//! A plan file records the reviewed changes and three digests: the config file's bytes, the
//! documents rendered from it (templates and provisioner version included), and the change list
//! itself. The change list carries each change's diff, whose "deployed" side is the live state
//! the plan was read from, so its digest stands for that live state. `apply FILE` refuses unless
//! the config and documents are unchanged and a freshly computed plan has the same digest, and
//! then names what differs.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

use crate::config::Config;
use crate::reconcile::Change;
use crate::render::{Ids, Renderer};

/// The `format` of the plan files this version writes and reads.
pub(crate) const FORMAT: &str = "groupcast-plan/1";

/// A plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SavedPlan {
    pub(crate) format: String,
    pub(crate) provisioner_version: String,
    pub(crate) project: String,
    pub(crate) region: String,
    pub(crate) account_id: String,
    /// The config file as `plan` was given it (shown in messages only).
    pub(crate) config_path: String,
    pub(crate) config_sha256: String,
    pub(crate) documents_sha256: String,
    pub(crate) changes_sha256: String,
    /// The changes, as `plan --output json` prints them.
    pub(crate) changes: Vec<Value>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of the documents rendered from `config` (without API ids: those are live state,
/// covered by the changes' diffs).
fn documents_sha256(config: &Config, renderer: &Renderer) -> anyhow::Result<String> {
    let rendered = renderer.render(config, &Ids::default())?;
    // Paths and contents, length-prefixed, so no two different sets hash alike.
    let mut h = sha2::Sha256::new();
    for (path, text) in &rendered.files {
        for part in [path.as_bytes(), text.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn changes_json(changes: &[Change]) -> anyhow::Result<Vec<Value>> {
    changes
        .iter()
        .map(|c| serde_json::to_value(c).map_err(Into::into))
        .collect()
}

fn changes_sha256(changes: &[Value]) -> anyhow::Result<String> {
    Ok(sha256_hex(serde_json::to_string(changes)?.as_bytes()))
}

fn config_sha256(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

/// One change as a line: `- delete namespace jobs`.
fn line(c: &Value) -> String {
    let symbol = match c["action"].as_str() {
        Some("create") => "+ create",
        Some("update") => "~ update",
        Some("delete") => "- delete",
        _ => "?",
    };
    format!(
        "{symbol} {} {}",
        c["kind"].as_str().unwrap_or("?"),
        c["name"].as_str().unwrap_or("?")
    )
}

impl SavedPlan {
    /// The plan file for `changes`, computed from the config at `config_path`.
    pub(crate) fn new(
        config_path: &Path,
        config: &Config,
        renderer: &Renderer,
        changes: &[Change],
    ) -> anyhow::Result<Self> {
        let changes = changes_json(changes)?;
        Ok(SavedPlan {
            format: FORMAT.to_owned(),
            provisioner_version: env!("CARGO_PKG_VERSION").to_owned(),
            project: config.project.name.clone(),
            region: config.project.region.clone(),
            account_id: config.project.account_id.clone(),
            config_path: config_path.display().to_string(),
            config_sha256: config_sha256(config_path)?,
            documents_sha256: documents_sha256(config, renderer)?,
            changes_sha256: changes_sha256(&changes)?,
            changes,
        })
    }

    /// Writes the plan to `path` (pretty JSON, reviewable and diffable).
    pub(crate) fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing the plan file {}", path.display()))
    }

    /// Reads a plan file and checks it is whole: its format and that its changes still hash to
    /// the digest it records (a hand-edited plan is not the reviewed one).
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the plan file {}", path.display()))?;
        let plan: SavedPlan = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a plan file written by provisioner plan --out",
                path.display()
            )
        })?;
        if plan.format != FORMAT {
            bail!(
                "{}: format {:?} is not {FORMAT:?}: run plan --out again with this provisioner",
                path.display(),
                plan.format
            );
        }
        if changes_sha256(&plan.changes)? != plan.changes_sha256 {
            bail!(
                "{}: its changes do not match its changesSha256: the file was edited after plan \
                 wrote it; run plan --out again",
                path.display()
            );
        }
        Ok(plan)
    }

    /// Offline checks, before any AWS call: the config file and the rendered documents are the
    /// ones the plan was computed from.
    pub(crate) fn check_inputs(
        &self,
        config_path: &Path,
        config: &Config,
        renderer: &Renderer,
    ) -> anyhow::Result<()> {
        if config_sha256(config_path)? != self.config_sha256 {
            bail!(
                "the config file {} is not the one the plan was computed from (the plan read {}; \
                 its sha256 differs): nothing was changed; run plan --out again and review it",
                config_path.display(),
                self.config_path
            );
        }
        if documents_sha256(config, renderer)? != self.documents_sha256 {
            bail!(
                "the rendered documents differ from the plan's (other --templates, or another \
                 provisioner version than {}): nothing was changed; run plan --out again",
                self.provisioner_version
            );
        }
        Ok(())
    }

    /// Compares the plan computed now with the saved one; on a difference, refuses naming the
    /// changes that are new, gone or different (live state changed since the plan).
    pub(crate) fn check_changes(&self, fresh: &[Change]) -> anyhow::Result<()> {
        let fresh = changes_json(fresh)?;
        if changes_sha256(&fresh)? == self.changes_sha256 {
            return Ok(());
        }
        let key = |c: &Value| line(c);
        let mut lines = Vec::new();
        for c in &fresh {
            match self.changes.iter().find(|s| key(s) == key(c)) {
                None => lines.push(format!("  not in the plan:  {}", line(c))),
                Some(s) if s != c => lines.push(format!("  diff changed:     {}", line(c))),
                Some(_) => {}
            }
        }
        for s in &self.changes {
            if !fresh.iter().any(|c| key(c) == key(s)) {
                lines.push(format!("  no longer needed: {}", line(s)));
            }
        }
        if lines.is_empty() {
            lines.push("  the same changes, in another order".to_owned());
        }
        bail!(
            "live state changed since the plan was saved, so apply would not do what was reviewed; \
             nothing was changed (run plan --out again and review it):\n{}",
            lines.join("\n")
        )
    }
}
