//! What `provisioner render --config examples/groupcast.toml` writes, rendered at test time (once
//! per test binary) so the endpoints are always tested against the current templates: a checked-in
//! copy would keep passing while the Events handler or the VTL templates change under it.
//!
//! The provisioner binary is `$GROUPCAST_PROVISIONER` (scripts/test.sh exports the one
//! `cargo test --workspace --no-run` just built), else `provisioner` in this test's target
//! directory (`cargo build -p groupcast-provisioner`). Missing, the test fails saying so: never a
//! skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory `provisioner render --out` filled for examples/groupcast.toml.
pub(crate) fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| render("examples/groupcast.toml", "rendered"))
}

/// The same for tests/harness/configs/epochs.toml: time-sliced namespaces (`fast` has 2 s epochs).
#[allow(dead_code)]
pub(crate) fn epochs_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| render("tests/harness/configs/epochs.toml", "rendered-epochs"))
}

/// The rendered Events handler of one namespace of tests/harness/configs/epochs.toml.
#[allow(dead_code)]
pub(crate) fn epochs_events_handler(namespace: &str) -> String {
    let path = epochs_dir().join("events").join(format!("{namespace}.js"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the render has no Events handler {}: {e}", path.display()))
}

/// The rendered Events handler of one namespace (`events/{namespace}.js`).
#[allow(dead_code)] // each test binary uses the half it needs
pub(crate) fn events_handler(namespace: &str) -> String {
    let path = dir().join("events").join(format!("{namespace}.js"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the render has no Events handler {}: {e}", path.display()))
}

/// The rendered GraphQL schema and resolver templates (`graphql/`).
#[allow(dead_code)]
pub(crate) fn graphql_dir() -> PathBuf {
    dir().join("graphql")
}

fn provisioner() -> PathBuf {
    if let Some(p) = std::env::var_os("GROUPCAST_PROVISIONER") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "GROUPCAST_PROVISIONER names {}, which does not exist",
            p.display()
        );
        return p;
    }
    // This test runs as {target}/debug/deps/NAME-HASH; the binary is {target}/debug/provisioner.
    let exe = std::env::current_exe().expect("the test knows its own path");
    let p = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("provisioner"))
        .expect("the test runs from {target}/debug/deps");
    assert!(
        p.exists(),
        "the provisioner binary is missing at {}; these tests render examples/groupcast.toml with it. \
         Build it (`cargo build -p groupcast-provisioner`, which `cargo test --workspace` does) \
         or set GROUPCAST_PROVISIONER",
        p.display()
    );
    p
}

/// Removes the renders of earlier runs whose process has ended (where `/proc` says so), so the
/// target's tmp does not grow with every run. A per-process directory, because a test may run its
/// own binary again as a child (graphql_tls) while the parent still reads its render.
fn remove_stale(tmp: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn render(config: &str, label: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = format!("{label}-{}-", env!("CARGO_CRATE_NAME"));
    remove_stale(tmp, &prefix);
    let out = tmp.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let bin = provisioner();
    let run = Command::new(&bin)
        .arg("render")
        .arg("--config")
        .arg(root.join(config))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{} did not start: {e}", bin.display()));
    assert!(
        run.status.success(),
        "`{} render --config {config} --out {}` failed ({}): {}",
        bin.display(),
        out.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    out
}
