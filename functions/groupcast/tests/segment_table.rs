//! Checks `groupcast::group_segment` against the shared table in `tests/fixtures/group-segments.json`.
//!
//! The generated Events handler carries a JavaScript copy of the rule; the Node harness
//! (`tests/harness/segments.test.js`) runs that copy over the same table, so the two cannot drift apart.

use std::collections::HashMap;

use groupcast::{decode_segment, group_segment};

fn table() -> Vec<(String, Option<String>, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/group-segments.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no `cases` list"));
    cases
        .iter()
        .map(|c| {
            let group = c["group"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: case without a `group` string: {c}"));
            let segment = c["segment"].as_str().map(str::to_owned);
            let note = c["note"].as_str().unwrap_or_default().to_owned();
            (group.to_owned(), segment, note)
        })
        .collect()
}

#[test]
fn the_rust_mapping_agrees_with_the_shared_table() {
    let cases = table();
    assert!(
        cases.len() >= 40,
        "the table should stress the rule: {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (group, expected, note) in &cases {
        let got = group_segment(group).ok();
        if &got != expected {
            failures.push(format!(
                "{group:?} ({note}): table says {expected:?}, group_segment gives {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_segment_in_the_table_decodes_to_its_group_and_none_is_shared() {
    let mut owner: HashMap<String, String> = HashMap::new();
    for (group, segment, _) in table() {
        let Some(segment) = segment else { continue };
        assert_eq!(
            decode_segment(&segment).as_deref(),
            Some(group.as_str()),
            "{segment:?}"
        );
        if let Some(prev) = owner.insert(segment.clone(), group.clone()) {
            panic!("{prev:?} and {group:?} share the segment {segment:?}");
        }
    }
}
