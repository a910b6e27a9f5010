//! `segments`: prints what [`groupcast::group_segment`] makes of each name, as JSON, so that other
//! implementations of the group rule can be checked against the Rust one (the JS channel helper's
//! property test, `clients/js/test/rust.test.js`).
//!
//! Reads one JSON array of strings on stdin; writes one JSON array on stdout with, per name,
//! `{"group", "segment", "error", "message"}`: `segment` is the result or null, `error` names the
//! rule that refused the name (`empty`, `too-long`) or is null, `message` is the error's text.
//! Exits 2 when stdin is not a JSON array of strings.
//!
//! ```text
//! echo '["Team_B", ""]' | cargo run -q -p groupcast --example segments
//! ```

use std::io::Read;
use std::process::ExitCode;

use groupcast::{GroupError, group_segment};
use serde_json::{Value, json};

/// The JSON record of one name.
fn record(group: &str) -> Value {
    match group_segment(group) {
        Ok(segment) => json!({"group": group, "segment": segment, "error": null, "message": null}),
        Err(e) => {
            let kind = match e {
                GroupError::Empty => "empty",
                GroupError::TooLongToEncode { .. } => "too-long",
                // GroupError is non_exhaustive: a new rule shows up as a mismatch, not a panic.
                _ => "other",
            };
            json!({"group": group, "segment": null, "error": kind, "message": e.to_string()})
        }
    }
}

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("segments: reading stdin: {e}");
        return ExitCode::from(2);
    }
    let names: Vec<String> = match serde_json::from_str(&input) {
        Ok(names) => names,
        Err(e) => {
            eprintln!("segments: stdin must be one JSON array of strings: {e}");
            return ExitCode::from(2);
        }
    };
    let out: Vec<Value> = names.iter().map(|n| record(n)).collect();
    println!("{}", Value::Array(out));
    ExitCode::SUCCESS
}
