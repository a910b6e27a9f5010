//! `client_ids`: prints what [`groupcast::iot::client_id`] makes of each (identity id, suffix)
//! pair, as JSON, so that the JS channel helper's `iotClientId` can be checked against the Rust
//! rule (`clients/js/test/rust.test.js`).
//!
//! Reads one JSON array of `[identityId, suffix or null]` pairs on stdin; writes one JSON array on
//! stdout with, per pair, `{"clientId", "field", "message"}`: `clientId` is the result or null,
//! `field` names the refused input (`identityId`, `suffix`) or is null, `message` is the rule's
//! text. Exits 2 when stdin is not such an array.
//!
//! ```text
//! echo '[["us-east-1:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "tab-1"]]' | cargo run -q -p groupcast --example client_ids
//! ```

use std::io::Read;
use std::process::ExitCode;

use groupcast::Error;
use groupcast::iot::client_id;
use serde_json::{Value, json};

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("client_ids: reading stdin: {e}");
        return ExitCode::from(2);
    }
    let pairs: Vec<(String, Option<String>)> = match serde_json::from_str(&input) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("client_ids: stdin must be one JSON array of [identityId, suffix|null]: {e}");
            return ExitCode::from(2);
        }
    };
    let out: Vec<Value> = pairs
        .iter()
        .map(|(id, suffix)| match client_id(id, suffix.as_deref()) {
            Ok(c) => json!({"clientId": c, "field": null, "message": null}),
            Err(Error::Invalid { field, rule }) => {
                json!({"clientId": null, "field": field, "message": rule})
            }
            Err(other) => json!({"clientId": null, "field": "other", "message": other.to_string()}),
        })
        .collect();
    println!("{}", Value::Array(out));
    ExitCode::SUCCESS
}
