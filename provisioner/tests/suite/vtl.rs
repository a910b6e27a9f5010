//! The rendered resolver templates under groupcast-vtl (provisioner/vtl), our Velocity interpreter:
//! they stay inside the subset it implements, and it agrees with amplify-appsync-simulator's
//! `VelocityTemplate` on every template render the isolation harness makes (a differential test).
//!
//! The simulator's side is `tests/harness/vtl-differential.js`: it runs the harness's GraphQL test
//! files (graphql.test.js: the adversarial corpus; property.test.js: 300 seeded random users,
//! subscriptions and messages), then 200 seeded random callers of every auth mode with random
//! claims, resolverContext, IAM ARNs and arguments (a property test over both engines), and
//! records each render — template text, the context the
//! simulator built, its outcome and the `$extensions` calls (lib/vtl.js gives the simulator an
//! `$extensions` object; we wrap it to record every call). Both engines get `$util.autoId()` fixed.
//!
//! How outcomes compare (the simulator is not AppSync; each rule says where it differs):
//! - both succeed: the result JSON (numbers by value), the `#return` flag and every `$extensions`
//!   call's argument are equal;
//! - both fail: the error types are equal and the messages too, except that for output that is
//!   not JSON (`MappingTemplate`, "Unable to convert …") only the start is compared, since the two
//!   engines lay out whitespace differently;
//! - the simulator hit a JavaScript exception with no `$util` error (e.g. `JSON.parse` in
//!   `$util.parseJson`): ours must fail with a `MappingTemplate` error;
//! - `$extensions` calls made before an error are compared too.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use std::sync::OnceLock;

use groupcast_vtl::filter::{filter_matches, limit_violations};
use groupcast_vtl::{AuthType, Context, Outcome, Template, unsupported};
use serde_json::{Value, json};

use crate::util::{ok, provisioner, repo, scratch};

const AUTO_ID: &str = "00000000-0000-4000-8000-000000000000";

fn auto_id() -> String {
    AUTO_ID.to_string()
}

/// Renders `config` and returns its `graphql/*.vtl` files by name.
fn rendered_vtl(config: &Path) -> BTreeMap<String, String> {
    let dir = scratch(&format!(
        "vtl-{}",
        config.file_stem().unwrap().to_string_lossy()
    ));
    ok(&provisioner(
        &dir,
        None,
        &[
            "--config",
            config.to_str().unwrap(),
            "render",
            "--out",
            "out",
        ],
    ));
    let mut files = BTreeMap::new();
    let graphql = dir.join("out/graphql");
    if let Ok(entries) = std::fs::read_dir(&graphql) {
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "vtl") {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                files.insert(name, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    files
}

fn configs() -> Vec<std::path::PathBuf> {
    let r = repo();
    vec![
        r.join("examples/groupcast.toml"),
        r.join("tests/harness/configs/harness.toml"),
        r.join("tests/harness/configs/small.toml"),
        r.join("tests/harness/configs/modes.toml"),
    ]
}

#[test]
fn every_rendered_template_uses_only_velocity_the_interpreter_implements() {
    let mut seen = 0;
    for config in configs() {
        for (name, text) in rendered_vtl(&config) {
            seen += 1;
            match unsupported(&text) {
                Ok(found) => assert!(
                    found.is_empty(),
                    "{} ({}): uses Velocity groupcast-vtl does not implement: {found:?}",
                    name,
                    config.display()
                ),
                Err(e) => panic!(
                    "{} ({}): groupcast-vtl cannot parse it: {e}",
                    name,
                    config.display()
                ),
            }
        }
    }
    assert!(
        seen >= 8,
        "only {seen} templates rendered; the configs render 4 each"
    );
}

#[test]
fn unsupported_names_a_util_function_a_method_and_an_extension_it_lacks() {
    let found = unsupported(
        "$util.time.nowISO8601() $util.base64Encode('x') $a.split(',') $extensions.evictFromApiCache('a','b',{})",
    )
    .unwrap();
    assert_eq!(found.len(), 4, "{found:?}");
}

fn auth_type(s: &str) -> Option<AuthType> {
    [
        AuthType::ApiKey,
        AuthType::Iam,
        AuthType::UserPool,
        AuthType::Oidc,
        AuthType::Lambda,
    ]
    .into_iter()
    .find(|a| a.as_str() == s)
}

/// Numbers compare by value (1 and 1.0 are one JSON number to AppSync and the simulator).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        v => v.clone(),
    }
}

/// Why `ours` disagrees with the simulator's record, or `None`.
fn disagreement(sim: &Value, ours: &Outcome) -> Option<String> {
    let ext = &sim["extensions"];
    let calls = [
        (
            "setSubscriptionFilter",
            &ours.extensions.subscription_filters,
        ),
        (
            "setSubscriptionInvalidationFilter",
            &ours.extensions.subscription_invalidation_filters,
        ),
        (
            "invalidateSubscriptions",
            &ours.extensions.invalidate_subscriptions,
        ),
    ];
    for (name, got) in calls {
        let want = ext[name].as_array().cloned().unwrap_or_default();
        let got: Vec<Value> = got.iter().map(normalize).collect();
        let want: Vec<Value> = want.iter().map(normalize).collect();
        if got != want {
            return Some(format!(
                "$extensions.{name}: simulator {want:?}, ours {got:?}"
            ));
        }
    }
    let err_type = ours.error.as_ref().and_then(|e| e.error_type.clone());
    let err_msg = ours.error.as_ref().map(|e| e.message.clone());
    match sim["kind"].as_str().unwrap_or("") {
        "ok" => {
            let want = normalize(&sim["result"]);
            match &ours.json {
                Some(got) if normalize(got) == want => {
                    let want_return = sim["isReturn"].as_bool().unwrap_or(false);
                    (ours.returned != want_return).then(|| {
                        format!("#return: simulator {want_return}, ours {}", ours.returned)
                    })
                }
                Some(got) => Some(format!("result: simulator {want}, ours {got}")),
                None => Some(format!(
                    "simulator succeeded with {want}; ours failed: {:?}",
                    ours.error
                )),
            }
        }
        "error" | "threw" => {
            let want_type = sim["errorType"].as_str().map(str::to_string);
            let want_msg = sim["message"].as_str().unwrap_or("").to_string();
            if ours.error.is_none() {
                return Some(format!(
                    "simulator failed ({want_type:?}: {want_msg}); ours succeeded with {:?}",
                    ours.json
                ));
            }
            if want_type != err_type {
                return Some(format!(
                    "error type: simulator {want_type:?}, ours {err_type:?} (ours: {err_msg:?})"
                ));
            }
            let msg = err_msg.unwrap_or_default();
            let same = if want_msg.starts_with("Unable to convert ") {
                msg.starts_with("Unable to convert ")
            } else {
                msg == want_msg
            };
            (!same).then(|| format!("error message: simulator {want_msg:?}, ours {msg:?}"))
        }
        "exception" => (err_type.as_deref() != Some("MappingTemplate")).then(|| {
            format!(
                "simulator threw a JavaScript exception; ours: {:?} {:?}",
                ours.error, ours.json
            )
        }),
        other => Some(format!("unknown simulator record kind {other:?}")),
    }
}

/// The driver's records, run once for the tests that read them.
fn simulator_records() -> &'static Value {
    static RECORDS: OnceLock<Value> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let tests_dir = repo().join("tests");
        assert!(
            tests_dir.join("node_modules/amplify-appsync-simulator").exists(),
            "tests/node_modules is missing: run `npm ci --prefix tests` (the differential test runs the simulator)"
        );
        let out = Command::new("node")
            .arg("harness/vtl-differential.js")
            .current_dir(&tests_dir)
            .env("GROUPCAST_PROVISIONER", env!("CARGO_BIN_EXE_provisioner"))
            .stdin(Stdio::null())
            .output()
            .expect("run node (the differential test needs Node 20 and tests/node_modules)");
        assert!(
            out.status.success(),
            "vtl-differential.js failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the driver prints JSON")
    })
}

#[test]
fn the_filter_evaluator_agrees_with_the_harness_model_on_every_filter_the_templates_set_and_every_operator()
 {
    let checks = simulator_records()["filterChecks"].as_array().unwrap();
    let mut mismatches = Vec::new();
    let mut cases = 0;
    for c in checks {
        let filter = &c["filter"];
        let valid = limit_violations(filter).is_empty();
        if valid != c["valid"].as_bool().unwrap() {
            mismatches.push(format!(
                "filter {filter}: harness valid={}, ours {:?}",
                c["valid"],
                limit_violations(filter)
            ));
        }
        for m in c["messages"].as_array().unwrap() {
            cases += 1;
            let ours = filter_matches(filter, &m["message"]);
            if ours != m["matches"].as_bool().unwrap() {
                mismatches.push(format!(
                    "filter {filter}\n  message {}: harness {}, ours {ours}",
                    m["message"], m["matches"]
                ));
            }
        }
    }
    eprintln!(
        "filter differential: {} filters, {cases} filter x message cases, {} mismatches",
        checks.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} disagreements:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        checks.len() >= 24 && cases >= 1000,
        "too few filter cases: {cases}"
    );
}

#[test]
fn the_interpreter_agrees_with_the_simulator_on_every_render_of_the_isolation_harness() {
    let data = simulator_records();
    let texts: Vec<&str> = data["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let templates: Vec<Template> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Template::parse(t).unwrap_or_else(|e| panic!("template {i} does not parse: {e}\n{t}"))
        })
        .collect();
    let records = data["records"].as_array().unwrap();
    let mut mismatches = Vec::new();
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        let c = &r["context"];
        let ctx = Context {
            arguments: c["arguments"].clone(),
            identity: c["identity"].clone(),
            source: c["source"].clone(),
            result: c["result"].clone(),
            stash: c["stash"].clone(),
            auth_type: auth_type(c["authType"].as_str().unwrap_or(""))
                .unwrap_or_else(|| panic!("unknown authType in {r}")),
            auto_id,
            ..Context::default()
        };
        let i = r["template"].as_u64().unwrap() as usize;
        let ours = templates[i].evaluate(&ctx);
        *per_file
            .entry(r["file"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if let Some(why) = disagreement(&r["sim"], &ours) {
            let first_line = texts[i].lines().next().unwrap_or("");
            mismatches.push(format!(
                "{} / {:?}\n  template {i}: {first_line}\n  input: {}\n  simulator: {}\n  ours: error {:?}, result {:?}, extensions {:?}\n  => {why}",
                r["file"], r["test"], c, r["sim"], ours.error, ours.json, ours.extensions
            ));
        }
    }
    eprintln!(
        "VTL differential: {} renders of {} templates ({per_file:?}), {} mismatches",
        records.len(),
        texts.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} renders disagree:\n\n{}",
        mismatches.len(),
        records.len(),
        mismatches.join("\n\n")
    );
    // The harness renders all four templates, the corpus and the property test's 300 runs.
    assert!(
        texts.len() >= 4,
        "only {} templates were rendered",
        texts.len()
    );
    assert!(
        records.len() >= 500,
        "only {} renders recorded",
        records.len()
    );
}
