//! The Rust policy evaluation (`iot::policy`) agrees with the isolation harness's model
//! (tests/harness/lib/policy.js, run by Node) on every case of a corpus of the rendered group
//! policy's shapes and the attacks on them: one rule, two implementations, proven equal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use groupcast_dev::iot::policy::{Action, Policy, Verdict, evaluate};
use serde_json::{Value, json};

const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";
const ID: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";

fn corpus() -> Vec<(Vec<Value>, Action, String, BTreeMap<String, String>)> {
    let group = |g: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": [
                format!("{ARN}client/${{cognito-identity.amazonaws.com:sub}}"),
                format!("{ARN}client/${{cognito-identity.amazonaws.com:sub}}-*")]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{ARN}topicfilter/groupcast/{g}/*")},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{ARN}topic/groupcast/{g}/*")}]})
    };
    let deny = json!({"Statement": [{"Effect": "Deny", "Action": ["iot:Receive", "iot:Subscribe"],
        "Resource": [format!("{ARN}topic/groupcast/team-a/secret*"), format!("{ARN}topicfilter/groupcast/team-a/secret*")]}]});
    let wild = json!({"Statement": {"Effect": "Allow", "Action": "IOT:*", "Resource": format!("{ARN}topic/a?c/${{iot:ClientId}}")}});
    let broken_var = json!({"Statement": {"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{ARN}topic/${{open")}});
    let policy_sets = vec![
        vec![group("team-a")],
        vec![group("team-a"), group("team-b")],
        vec![group("team-a"), deny],
        vec![wild],
        vec![broken_var],
        vec![],
    ];
    let var_sets = vec![
        BTreeMap::from([
            (
                "cognito-identity.amazonaws.com:sub".to_owned(),
                ID.to_owned(),
            ),
            ("iot:ClientId".to_owned(), ID.to_owned()),
        ]),
        BTreeMap::from([("iot:ClientId".to_owned(), "dev*ce".to_owned())]),
        BTreeMap::new(),
    ];
    let requests = [
        (Action::Connect, format!("client/{ID}")),
        (Action::Connect, format!("client/{ID}-tab")),
        (Action::Connect, format!("client/{ID}x")),
        (
            Action::Connect,
            "client/us-east-1:00000000-1b7d-4c3e-9a51-2d7f3b8e6c41".to_owned(),
        ),
        (Action::Connect, "client/dev*ce".to_owned()),
        (
            Action::Subscribe,
            "topicfilter/groupcast/team-a/#".to_owned(),
        ),
        (
            Action::Subscribe,
            "topicfilter/groupcast/team-a/news".to_owned(),
        ),
        (
            Action::Subscribe,
            "topicfilter/groupcast/team-a/secret".to_owned(),
        ),
        (
            Action::Subscribe,
            "topicfilter/groupcast/team-b/#".to_owned(),
        ),
        (Action::Subscribe, "topicfilter/groupcast/+/news".to_owned()),
        (Action::Subscribe, "topicfilter/#".to_owned()),
        (
            Action::Subscribe,
            "topicfilter/groupcast/team-ab/x".to_owned(),
        ),
        (Action::Receive, "topic/groupcast/team-a/news".to_owned()),
        (
            Action::Receive,
            "topic/groupcast/team-a/secret/x".to_owned(),
        ),
        (Action::Receive, "topic/groupcast/team-b/news".to_owned()),
        (Action::Receive, "topic/groupcast/team-a".to_owned()),
        (Action::Receive, "topic/abc/dev*ce".to_owned()),
        (Action::Receive, "topic/${open".to_owned()),
        (Action::Publish, "topic/groupcast/team-a/news".to_owned()),
        (Action::Publish, "topic/aXc/dev*ce".to_owned()),
    ];
    let mut out = Vec::new();
    for p in &policy_sets {
        for v in &var_sets {
            for (a, r) in &requests {
                out.push((p.clone(), *a, format!("{ARN}{r}"), v.clone()));
            }
        }
    }
    out
}

#[test]
fn the_rust_policy_evaluation_agrees_with_the_harness_model_on_every_case() {
    let cases = corpus();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = root.join("tests/harness/lib/policy.js");
    let input: Vec<Value> = cases
        .iter()
        .map(|(p, a, r, v)| json!({"policies": p, "action": a.as_str(), "resource": r, "vars": v}))
        .collect();
    let file = std::env::temp_dir().join(format!("gc-policy-parity-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&input).unwrap()).unwrap();
    let script = format!(
        "const {{allows}} = require({model:?}); const cases = require({file:?}); \
         console.log(JSON.stringify(cases.map(c => allows(c.policies, c.action, c.resource, c.vars))));",
        model = model.canonicalize().unwrap().to_str().unwrap(),
        file = file.to_str().unwrap()
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .output()
        .expect("node runs the harness model");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let js: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(js.len(), cases.len());
    let mut allowed = 0;
    for ((p, a, r, v), js) in cases.iter().zip(js) {
        let docs: Vec<Policy> = p.iter().map(|d| Policy::from_value(d).unwrap()).collect();
        let rust = evaluate(&docs, *a, r, v) == Verdict::Allowed;
        assert_eq!(rust, js, "{} on {r} with {v:?} under {p:?}", a.as_str());
        allowed += usize::from(rust);
    }
    // The corpus exercises both answers.
    assert!(
        allowed > 20 && allowed < cases.len() - 20,
        "{allowed} of {}",
        cases.len()
    );
}
