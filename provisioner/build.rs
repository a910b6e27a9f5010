//! Embeds every `*.tera` file of the repository's `templates/` and `vtl/` directories into the
//! binary, so `provisioner render` works from any directory without the source tree.
//!
//! Names: a file under `templates/` is named by its path relative to `templates/`
//! (`events/handler.js.tera`); a file under `vtl/` by `vtl/` plus its relative path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, base, prefix, out);
        } else if path.extension().is_some_and(|e| e == "tera") {
            let rel = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                format!("{prefix}{rel}"),
                path.canonicalize().expect("readable template"),
            ));
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("..");
    let mut files = Vec::new();
    for (sub, prefix) in [("templates", ""), ("vtl", "vtl/")] {
        let dir = root.join(sub);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&dir, &dir, prefix, &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// Templates embedded at build time: (name, text).\npub(crate) static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for (name, path) in &files {
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
