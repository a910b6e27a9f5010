//! The embedded engine against Node, case by case: `node/events-verdicts.js` renders the harness's
//! configs with the provisioner, runs the Events handler's whole adversarial corpus (and probes of
//! `util`, `JSON.parse` and the method allow-list) through the isolation harness's own runner
//! (tests/harness/lib/handler.js), and prints each case with Node's verdict. Here every case is
//! replayed in QuickJS with a ctx built from Rust types; the ctx, the verdict, the rejection message
//! and the log lines (the handler's reasons) must be the same. A runtime error's message is the
//! engine's own wording, so for those only the kind is compared.
//!
//! Needs `node` (or `$GROUPCAST_NODE`) and the provisioner, which render.js builds with cargo unless
//! `$GROUPCAST_PROVISIONER` names a binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use groupcast_appsync_js::{
    Clock, Ctx, Handler, Identity, IncomingEvent, Operation, PublishVerdict, Verdict,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Corpus {
    handlers: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    handler: String,
    op: String,
    input: Input,
    ctx: Value,
    node: NodeVerdict,
}

#[derive(Deserialize)]
struct Input {
    path: Option<String>,
    identity: Value,
    events: Option<Vec<IncomingEvent>>,
    /// The server's clock for `util.time.nowEpochSeconds()` (epoch namespaces); `None`: the real one.
    now: Option<u64>,
}

#[derive(Deserialize)]
struct NodeVerdict {
    allowed: bool,
    kind: Option<String>,
    message: Option<String>,
    logs: Vec<String>,
    #[serde(default)]
    value: Value,
}

fn node_cases() -> Corpus {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/events-verdicts.js");
    let node = std::env::var("GROUPCAST_NODE").unwrap_or_else(|_| "node".into());
    let out = Command::new(&node)
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {node} (set GROUPCAST_NODE): {e}"));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{} printed no corpus: {e}", script.display()))
}

/// The case's ctx, built from Rust types as the local stack will build it.
fn ctx_of(case: &Case) -> Ctx {
    let identity = match &case.input.identity {
        Value::Null => Identity::ApiKey,
        other => Identity::Raw(other.clone()),
    };
    let operation = if case.op == "publish" {
        Operation::Publish
    } else {
        Operation::Subscribe
    };
    Ctx {
        identity,
        channel: case.input.path.clone(),
        operation,
        events: case.input.events.clone(),
        headers: BTreeMap::new(),
        domain_name: None,
    }
}

/// Node's verdict, in the engine's terms; `None` for a runtime error (any message matches).
fn expected_subscribe(node: &NodeVerdict) -> Option<Verdict> {
    match (node.allowed, node.kind.as_deref()) {
        (true, _) => Some(Verdict::Allowed),
        (false, Some("unauthorized")) => Some(Verdict::Unauthorized),
        (false, Some("error")) => Some(Verdict::Error(node.message.clone().unwrap_or_default())),
        _ => None,
    }
}

fn expected_publish(node: &NodeVerdict, events: &[IncomingEvent]) -> Option<PublishVerdict> {
    match (node.allowed, node.kind.as_deref()) {
        (true, _) => Some(PublishVerdict::from_returned(Some(&node.value), events)),
        (false, Some("unauthorized")) => Some(PublishVerdict::Unauthorized),
        (false, Some("error")) => Some(PublishVerdict::Error(
            node.message.clone().unwrap_or_default(),
        )),
        _ => None,
    }
}

#[test]
fn the_engine_gives_nodes_verdict_on_every_case_of_the_harness_corpus() {
    let corpus = node_cases();
    let handlers: BTreeMap<&str, Handler> = corpus
        .handlers
        .iter()
        .map(|(name, source)| {
            let handler = Handler::load(source).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name.as_str(), handler)
        })
        .collect();
    let mut mismatches = Vec::new();
    for case in &corpus.cases {
        let ctx = ctx_of(case);
        if ctx.to_json() != case.ctx {
            mismatches.push(format!(
                "{}: ctx differs\n  rust: {}\n  node: {}",
                case.name,
                ctx.to_json(),
                case.ctx
            ));
            continue;
        }
        let handler = &handlers[case.handler.as_str()];
        handler.set_clock(case.input.now.map_or(Clock::System, Clock::Fixed));
        let (matches, got, logs) = if case.op == "publish" {
            let run = handler.publish(&ctx);
            let events = case.input.events.as_deref().unwrap_or_default();
            let ok = match expected_publish(&case.node, events) {
                Some(expected) => run.verdict == expected,
                None => matches!(run.verdict, PublishVerdict::Error(_)),
            };
            (ok, format!("{:?}", run.verdict), run.logs)
        } else {
            let run = handler.subscribe(&ctx);
            let ok = match expected_subscribe(&case.node) {
                Some(expected) => run.verdict == expected,
                None => matches!(run.verdict, Verdict::Error(_)),
            };
            (ok, format!("{:?}", run.verdict), run.logs)
        };
        if !matches {
            mismatches.push(format!(
                "{}: engine {got}, node allowed={} kind={:?} message={:?} value={}",
                case.name, case.node.allowed, case.node.kind, case.node.message, case.node.value
            ));
        } else if logs != case.node.logs {
            mismatches.push(format!(
                "{}: logs differ\n  engine: {logs:?}\n  node:   {:?}",
                case.name, case.node.logs
            ));
        }
    }
    let count = |f: &dyn Fn(&Case) -> bool| corpus.cases.iter().filter(|c| f(c)).count();
    let admitted = count(&|c| c.node.allowed);
    let probes = count(&|c| c.name.starts_with("probe: "));
    eprintln!(
        "parity: {} cases ({} admitted by Node, {} refused; {} probes), {} mismatches",
        corpus.cases.len(),
        admitted,
        corpus.cases.len() - admitted,
        probes,
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        corpus.cases.len(),
        mismatches.join("\n")
    );
    // The corpus is the harness's: 72 subscribe and 25 publish attacks at the time of writing, the
    // segment table and the probes. Far fewer means the enumeration broke, not that all is well.
    assert!(
        corpus.cases.len() >= 300 && admitted >= 50 && admitted + 50 <= corpus.cases.len(),
        "suspiciously small corpus"
    );
    // Epoch namespaces (issue 14): the epoch attacks and the shared epoch table, each at its clock.
    let epoch_cases = count(&|c| c.handler.starts_with("epochs/") && c.input.now.is_some());
    let epoch_admitted = count(&|c| c.handler.starts_with("epochs/") && c.node.allowed);
    assert!(
        epoch_cases >= 80 && epoch_admitted >= 20 && epoch_admitted + 40 <= epoch_cases,
        "suspiciously few epoch cases: {epoch_cases} ({epoch_admitted} admitted)"
    );
}
