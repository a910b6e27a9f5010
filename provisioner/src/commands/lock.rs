//! The apply lock: one `apply` or `destroy` at a time per outputs file, so two concurrent runs
//! never both create what neither has seen yet (duplicate APIs, keys).
//!
//! The lock is a file beside the outputs file, `<outputs>.lock`, created with `create_new` (the
//! file system's atomic create-if-absent) and removed when the run ends, failed or not. It holds
//! who took it (pid, host, start time) for the message a second run gets. A run that is killed
//! leaves its lock behind; the message says how to tell and what to delete. It guards runs that
//! share the outputs file (one checkout, one CI workspace); runs on different machines each need
//! their pipeline's own serialization (e.g. a CI concurrency group).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;

/// A held lock; dropping it removes the lock file.
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
}

/// The lock file that guards `outputs`.
pub(crate) fn path_for(outputs: &Path) -> PathBuf {
    let mut name = outputs
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "groupcast.outputs.json".into());
    name.push(".lock");
    outputs.with_file_name(name)
}

impl Lock {
    /// Takes the lock beside `outputs` for `command` (apply or destroy) on `config`'s project, or
    /// refuses naming the holder.
    pub(crate) fn acquire(outputs: &Path, config: &Config, command: &str) -> anyhow::Result<Lock> {
        let path = path_for(outputs);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let holder = serde_json::json!({
            "command": command,
            "project": config.project.name,
            "pid": std::process::id(),
            "host": host,
            "startedUnix": started,
        });
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let lock = Lock { path };
                writeln!(f, "{holder}")
                    .with_context(|| format!("writing the lock file {}", lock.path.display()))?;
                Ok(lock)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "another apply or destroy of this project is running: the lock file {} exists \
                     ({}). Wait for it to finish. If none is running (a killed run leaves its lock \
                     behind: check that pid on that host), delete {} and run again",
                    path.display(),
                    held.trim(),
                    path.display()
                )
            }
            Err(e) => Err(e).with_context(|| format!("creating the lock file {}", path.display())),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
