//! plan, apply, destroy and iot grant against the peers. Each test says which peer covers what:
//! "moto" is moto 5.2.5's own implementation, "stub" is peers/stub_proxy.py.

use std::path::Path;

use groupcast::Outputs;
use serde_json::Value;

use crate::util::{Peers, example, is_write, ok, provisioner, scratch, stderr, stdout};

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("groupcast.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn apply(dir: &Path, peers: &Peers, config: &str) -> std::process::Output {
    apply_with(dir, peers, config, &[])
}

/// `apply` with more arguments (`--allow-delete`, a plan file).
fn apply_with(dir: &Path, peers: &Peers, config: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--config",
        config,
        "apply",
        "--outputs",
        "outputs.json",
        "--out",
        "deployed",
    ];
    args.extend_from_slice(more);
    provisioner(dir, Some(peers), &args)
}

fn plan(dir: &Path, peers: &Peers, config: &str) -> std::process::Output {
    provisioner(
        dir,
        Some(peers),
        &["--config", config, "plan", "--detailed-exitcode"],
    )
}

/// What groupcast owns, by the independent boto3 view: counts that must not grow on re-runs.
fn owned_summary(list: &Value) -> Value {
    let owned = |kind: &str| -> Vec<Value> {
        list[kind]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["tags"]["groupcast:project"] == "acme-live")
            .cloned()
            .collect()
    };
    let events = owned("event_apis");
    let graphql = owned("graphql_apis");
    serde_json::json!({
        "event_apis": events.iter().map(|a| &a["name"]).collect::<Vec<_>>(),
        "namespaces": events.iter().map(|a| &a["namespaces"]).collect::<Vec<_>>(),
        "event_api_keys": events.iter().map(|a| a["api_keys"].as_array().unwrap().len()).collect::<Vec<_>>(),
        "graphql_apis": graphql.iter().map(|a| &a["name"]).collect::<Vec<_>>(),
        "data_sources": graphql.iter().map(|a| &a["data_sources"]).collect::<Vec<_>>(),
        "resolvers": graphql.iter().map(|a| &a["resolvers"]).collect::<Vec<_>>(),
        "iot_policies": owned("iot_policies").iter().map(|p| &p["name"]).collect::<Vec<_>>(),
        "iam_roles": owned("iam_roles").iter().map(|r| serde_json::json!([r["name"], r["policies"]])).collect::<Vec<_>>(),
    })
}

fn expected_summary() -> Value {
    serde_json::json!({
        "event_apis": ["acme-live-events"],
        "namespaces": [["jobs", "live"]],
        "event_api_keys": [1],
        "graphql_apis": ["acme-live-pubsub"],
        "data_sources": [["groupcast_none"]],
        "resolvers": [["Mutation.publish", "Mutation.revoke", "Subscription.subscribe"]],
        "iot_policies": ["acme-live-admins", "acme-live-editors", "acme-live-team-a", "acme-live-x--Team-5fB"],
        "iam_roles": [
            ["acme-live-appsync-logs", ["groupcast"]],
            ["acme-live-authorizer", ["groupcast"]],
            ["acme-live-iot-grant", ["groupcast"]],
            ["acme-live-publisher", ["groupcast"]],
        ],
    })
}

/// moto: Event API, namespaces, API key, GraphQL API + schema, IoT policies, DescribeEndpoint.
/// stub: data sources, resolvers, IoT tags, and the call log that proves run two only reads.
#[test]
fn apply_twice_creates_everything_once_and_the_second_run_only_reads() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("apply-twice");
    let config = write_config(&dir, &example());

    let before = plan(&dir, peers, &config);
    assert_eq!(before.status.code(), Some(2), "{}", stderr(&before));
    assert!(
        stdout(&before).contains("+ create event-api acme-live-events"),
        "{}",
        stdout(&before)
    );

    ok(&apply(&dir, peers, &config));
    assert_eq!(owned_summary(&peers.list()), expected_summary());
    let outputs = Outputs::from_path(dir.join("outputs.json")).unwrap();
    let events = outputs.events.as_ref().unwrap();
    assert_eq!(
        events
            .namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["live", "jobs"]
    );
    assert!(
        events.namespaces[0]
            .arn
            .ends_with(&format!("apis/{}/channelNamespace/live", events.api_id)),
        "{events:?}"
    );
    assert!(
        events.http_host.contains("appsync-api")
            && events.realtime_host.contains("appsync-realtime-api")
    );
    assert!(events.api_key.is_some());
    let graphql = outputs.graphql.as_ref().unwrap();
    assert!(
        graphql.api_key.is_none(),
        "no [graphql.auth.api_key], so no key"
    );
    let iot = outputs.iot.as_ref().unwrap();
    assert_eq!(iot.policies["Team_B"], "acme-live-x--Team-5fB");
    assert!(
        iot.data_endpoint
            .ends_with("-ats.iot.us-east-1.amazonaws.com"),
        "{}",
        iot.data_endpoint
    );
    // AppSync may invoke the deployed authorizer, from this Event API only (moto's Lambda).
    let functions = peers.list()["functions"].clone();
    assert_eq!(
        functions,
        serde_json::json!([{"name": "acme-live-authorizer", "statements": [
            {"sid": "groupcast-acme-live-events", "source_arn": events.api_arn}]}]),
    );
    // What cargo lambda deploy needs: roles in the outputs, the environment as env files.
    let publisher_lambda = &outputs.lambdas["publisher"];
    assert_eq!(
        publisher_lambda.role_arn,
        "arn:aws:iam::123456789012:role/acme-live-publisher"
    );
    let env = std::fs::read_to_string(dir.join("deployed/lambda/publisher.env")).unwrap();
    assert!(
        env.contains(&format!(
            "GROUPCAST_EVENTS_URL='https://{}'\n",
            events.http_host
        )),
        "{env}"
    );
    assert!(dir.join("deployed/lambda/iot-grant.env").exists());
    // The deployed documents carry the real ids.
    let publisher =
        std::fs::read_to_string(dir.join("deployed/iam/publisher-policy.json")).unwrap();
    assert!(
        publisher.contains(&format!("apis/{}/channelNamespace/live", events.api_id)),
        "{publisher}"
    );
    assert!(
        publisher.contains(&format!(
            "apis/{}/types/Mutation/fields/publish",
            graphql.api_id
        )),
        "{publisher}"
    );

    peers.reset_calls();
    ok(&apply(&dir, peers, &config));
    let calls = peers.calls();
    assert!(!calls.is_empty());
    let writes: Vec<&Value> = calls.iter().filter(|c| is_write(c)).collect();
    assert!(
        writes.is_empty(),
        "second apply made write calls: {writes:#?}"
    );
    assert_eq!(owned_summary(&peers.list()), expected_summary());
    let again = Outputs::from_path(dir.join("outputs.json")).unwrap();
    assert_eq!(
        again.events, outputs.events,
        "the same API, namespaces and key"
    );
    assert_eq!(again.graphql, outputs.graphql);

    let after = plan(&dir, peers, &config);
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&after),
        stderr(&after)
    );
    let json = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "--output",
            "json",
            "plan",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(json.status.code(), Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&json)).unwrap(),
        serde_json::json!({"changes": []})
    );
}

/// `--output json`: stdout is one JSON document (plan: the changes; apply: the outputs).
#[test]
fn json_output_is_only_json() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("json");
    let config = write_config(&dir, &example());
    let p = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "--output",
            "json",
            "plan",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(p.status.code(), Some(2), "{}", stderr(&p));
    let plan: Value = serde_json::from_str(&stdout(&p)).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    // Everything is created; the GraphQL API's schema-hash tag is then set (an update), as
    // apply will do once the schema is in.
    assert!(
        changes.iter().all(|c| c["action"] == "create"
            || (c["kind"] == "graphql-api" && c["name"] == "acme-live-pubsub (tags)")),
        "{plan:#}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "iot-policy" && c["name"] == "acme-live-x--Team-5fB"),
        "{plan:#}"
    );
    let a = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "--output",
            "json",
            "apply",
            "--outputs",
            "o.json",
            "--out",
            "d",
        ],
    );
    let printed: Value = serde_json::from_str(&ok(&a)).unwrap();
    let written = Outputs::from_path(dir.join("o.json")).unwrap();
    // stdout (CI logs) never shows the API key; the outputs file, readable by its owner only, does.
    let key = written.events.as_ref().unwrap().api_key.clone().unwrap();
    assert!(!stdout(&a).contains(&key), "{}", stdout(&a));
    assert!(
        printed["outputs"]["events"]["apiKey"]
            .as_str()
            .unwrap()
            .starts_with("(redacted")
    );
    let mut shown: Outputs = serde_json::from_value(printed["outputs"].clone()).unwrap();
    shown.events.as_mut().unwrap().api_key = Some(key);
    assert_eq!(shown, written);
    let applied = printed["changes"].as_array().unwrap();
    assert!(
        applied
            .iter()
            .any(|c| c["kind"] == "event-api" && c["action"] == "create"),
        "{printed:#}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("o.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Each change was also a line on stderr, though stderr is not a terminal here.
    assert!(
        stderr(&a).contains("+ create event-api acme-live-events"),
        "{}",
        stderr(&a)
    );
}

/// stub: UpdateApi, UpdateChannelNamespace, UpdateResolver (moto has none of them);
/// moto: IoT policy versions (CreatePolicyVersion, the 5-version limit, DeletePolicyVersion).
#[test]
fn changed_config_is_planned_with_diffs_then_applied_as_updates() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("updates");
    let config = write_config(&dir, &example());
    ok(&apply(&dir, peers, &config));

    let changed = example()
        .replace("result_ttl_seconds = 300", "result_ttl_seconds = 60")
        // jobs's handler changes with its epoch (the example's 300 s).
        .replace("\nepoch_seconds = 300", "\nepoch_seconds = 60")
        .replace(
            "groups_claim = \"cognito:groups\"",
            "groups_claim = \"custom:teams\"",
        );
    let config = write_config(&dir, &changed);
    let p = plan(&dir, peers, &config);
    assert_eq!(p.status.code(), Some(2), "{}", stderr(&p));
    let text = stdout(&p);
    for line in [
        "~ update event-api acme-live-events",
        "~ update namespace jobs",
        "~ update resolver Subscription.subscribe",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let diff_line = |sign: char, needle: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(sign) && l.contains(needle))
    };
    assert!(
        diff_line('-', "\"ttlSeconds\": 300,") && diff_line('+', "\"ttlSeconds\": 60,"),
        "{text}"
    );
    assert!(diff_line('+', "claims.get('custom:teams')"), "{text}");
    assert!(
        !text.contains("namespace live"),
        "live did not change:\n{text}"
    );

    ok(&apply(&dir, peers, &config));
    let p = plan(&dir, peers, &config);
    assert_eq!(p.status.code(), Some(0), "{}", stdout(&p));
    assert_eq!(owned_summary(&peers.list()), expected_summary());

    // Six more policy documents: IoT keeps at most 5 versions, the newest is the default.
    for i in 0..6 {
        let config = write_config(
            &dir,
            &changed.replace(
                "topic_prefix = \"groupcast\"",
                &format!("topic_prefix = \"gc{i}\""),
            ),
        );
        ok(&apply(&dir, peers, &config));
    }
    let list = peers.list();
    for p in list["iot_policies"].as_array().unwrap() {
        // Versions 1 (initial) and 2..=7 (six updates): at 5 versions the oldest non-default one
        // goes first, so 1 and 2 were deleted.
        assert_eq!(p["versions"], 5, "{p}");
        assert_eq!(
            p["version_ids"],
            serde_json::json!(["3", "4", "5", "6", "7"]),
            "{p}"
        );
        assert_eq!(p["default_version"], "7", "{p}");
        assert!(
            p["default_document"].to_string().contains("topic/gc5/"),
            "{p}"
        );
    }
}

/// Every call index of a full apply fails once in turn; the re-run converges, nothing doubles.
/// moto + stub as above; the stub injects the failure.
#[test]
fn a_failure_at_any_call_converges_on_rerun_without_duplicates() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("converge");
    let config = write_config(&dir, &example());
    ok(&apply(&dir, peers, &config));
    let total = peers.calls().len();
    assert!(total > 20, "a full apply made only {total} calls");

    // Failing at each write call is what matters. The reconciler's unit tests fail every write of
    // an apply in turn against the in-memory fake (reconcile::tests); here, against moto, the
    // first write of every kind of call, every third write and every 40th read, which bounds
    // the run time on 2 cores.
    let calls = peers.calls();
    let mut writes = 0;
    let mut kinds = std::collections::BTreeSet::new();
    let mut points: Vec<usize> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let write = is_write(c);
        let mut sampled = i % 40 == 0;
        if write {
            writes += 1;
            let path = c["path"].as_str().unwrap_or_default();
            let kind = match c["action"].as_str() {
                Some(action) => action.to_owned(),
                None => format!(
                    "{} {}",
                    c["method"],
                    path.split('/').take(3).collect::<Vec<_>>().join("/")
                ),
            };
            sampled |= kinds.insert(kind) || writes % 3 == 1;
        }
        if sampled {
            points.push(i + 1);
        }
    }
    for n in points {
        peers.reset();
        peers.fail_call(n);
        let failed = apply(&dir, peers, &config);
        assert_eq!(
            failed.status.code(),
            Some(1),
            "call {n} ({}) was made to fail:\n{}",
            calls[n - 1],
            stderr(&failed)
        );
        assert!(
            stderr(&failed).contains(&format!("injected failure on call {n}")),
            "{}",
            stderr(&failed)
        );
        ok(&apply(&dir, peers, &config));
        assert_eq!(
            owned_summary(&peers.list()),
            expected_summary(),
            "after failing call {n}"
        );
        let p = plan(&dir, peers, &config);
        assert_eq!(
            p.status.code(),
            Some(0),
            "after failing call {n}:\n{}",
            stdout(&p)
        );
    }
}

/// moto: DeleteApi, DeleteGraphqlApi, policy deletion with versions and attachments; stub: tags.
#[test]
fn destroy_deletes_what_groupcast_owns_and_nothing_else() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("destroy");
    let config = write_config(&dir, &example());
    ok(&apply(&dir, peers, &config));
    // A second version and an attachment make the deletion path do its full work.
    let changed = example().replace("topic_prefix = \"groupcast\"", "topic_prefix = \"gc2\"");
    ok(&apply(&dir, peers, &write_config(&dir, &changed)));
    let identity = peers.inventory(&["identity"]).trim().to_owned();
    ok(&provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "iot",
            "grant",
            "--identity-id",
            &identity,
            "--groups",
            "admins",
        ],
    ));
    // Not groupcast's: an untagged Event API and an IoT policy whose name fits the pattern.
    peers.inventory(&["foreign", "acme-live-intruder"]);

    let refused = provisioner(&dir, Some(peers), &["--config", &config, "destroy"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "error: destroy needs --yes when stdin is not a terminal\n"
    );

    assert!(dir.join("outputs.json").exists());
    ok(&provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "destroy",
            "--yes",
            "--outputs",
            "outputs.json",
        ],
    ));
    assert!(
        !dir.join("outputs.json").exists(),
        "destroy left the outputs file"
    );
    let list = peers.list();
    // AppSync may no longer invoke the authorizer.
    for f in list["functions"].as_array().unwrap() {
        assert_eq!(f["statements"], serde_json::json!([]), "{f}");
    }
    let empty: Vec<Value> = Vec::new();
    assert_eq!(
        owned_summary(&list),
        serde_json::json!({
            "event_apis": empty, "namespaces": empty, "event_api_keys": empty, "graphql_apis": empty,
            "data_sources": empty, "resolvers": empty, "iot_policies": empty, "iam_roles": empty,
        })
    );
    let names = |kind: &str| {
        list[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("event_apis"), ["acme-live-intruder"]);
    assert_eq!(names("iot_policies"), ["acme-live-intruder"]);
    assert_eq!(names("graphql_apis"), empty);
}

/// moto: AttachPolicy / DetachPolicy / ListAttachedPolicies / GetPolicy on a Cognito identity
/// (created in moto's cognito-identity backend first); stub: the tags that mark groupcast's
/// policies. An untagged policy whose name fits the pattern (`acme-live-intruder`) is never
/// granted nor revoked: only the `groupcast:project` tag makes a policy this project's.
#[test]
fn iot_grant_attaches_exactly_the_requested_groups() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("grant");
    let config = write_config(&dir, &example());
    let identity = peers.inventory(&["identity"]).trim().to_owned();
    // Before apply no policy exists: the grant is refused, naming the groups, and changes nothing.
    let early = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "iot",
            "grant",
            "--identity-id",
            &identity,
            "--groups",
            "admins",
        ],
    );
    assert_eq!(early.status.code(), Some(1));
    assert_eq!(
        stderr(&early),
        "error: --groups: [\"admins\"] have no IoT policy yet: run provisioner apply first; nothing was changed\n"
    );
    ok(&apply(&dir, peers, &config));
    peers.inventory(&["foreign", "someone-elses"]);
    peers.inventory(&["attach", "someone-elses", &identity]);
    peers.inventory(&["foreign", "acme-live-intruder"]);
    peers.inventory(&["attach", "acme-live-intruder", &identity]);
    let attached =
        || -> Value { serde_json::from_str(&peers.inventory(&["attached", &identity])).unwrap() };
    let grant = |groups: &str| {
        let out = ok(&provisioner(
            &dir,
            Some(peers),
            &[
                "--config",
                &config,
                "--output",
                "json",
                "iot",
                "grant",
                "--identity-id",
                &identity,
                "--groups",
                groups,
            ],
        ));
        serde_json::from_str::<Value>(&out).unwrap()
    };

    // Argument rules, all checked before any AWS call.
    let refused = |args: &[&str], expected: &str| {
        peers.reset_calls();
        let mut all = vec!["--config", config.as_str(), "iot", "grant"];
        all.extend_from_slice(args);
        let out = provisioner(&dir, Some(peers), &all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(peers.calls().is_empty(), "{args:?}: {:#?}", peers.calls());
    };
    // No --groups is not "revoke all".
    refused(
        &["--identity-id", &identity],
        "the following required arguments were not provided:\n  --groups <GROUPS>",
    );
    refused(
        &["--identity-id", &identity, "--groups", "admins,,team-a"],
        "error: --groups: entry 2 of \"admins,,team-a\" is empty (a stray comma?)",
    );
    refused(
        &[
            "--identity-id",
            &identity,
            "--groups",
            "admins",
            "--revoke-all",
        ],
        "cannot be used with",
    );
    refused(
        &["--identity-id", "0f6d2a8e-not-an-id", "--groups", "admins"],
        "error: --identity-id: identityId \"0f6d2a8e-not-an-id\": must be a Cognito identity id: <region>:<uuid>",
    );

    // Entries are trimmed.
    let g = grant(" admins , team-a ");
    assert_eq!(
        g["attached"],
        serde_json::json!(["acme-live-admins", "acme-live-team-a"])
    );
    assert_eq!(
        attached(),
        serde_json::json!([
            "acme-live-admins",
            "acme-live-intruder",
            "acme-live-team-a",
            "someone-elses"
        ])
    );

    let g = grant("Team_B,admins");
    assert_eq!(g["attached"], serde_json::json!(["acme-live-x--Team-5fB"]));
    assert_eq!(g["detached"], serde_json::json!(["acme-live-team-a"]));
    assert_eq!(
        attached(),
        serde_json::json!([
            "acme-live-admins",
            "acme-live-intruder",
            "acme-live-x--Team-5fB",
            "someone-elses"
        ])
    );

    let unknown = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "iot",
            "grant",
            "--identity-id",
            &identity,
            "--groups",
            "root",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "error: --groups: \"root\" is not in iot.groups, so it has no policy\n"
    );
    assert_eq!(
        attached(),
        serde_json::json!([
            "acme-live-admins",
            "acme-live-intruder",
            "acme-live-x--Team-5fB",
            "someone-elses"
        ])
    );

    let g = grant("");
    assert_eq!(
        g["detached"],
        serde_json::json!(["acme-live-admins", "acme-live-x--Team-5fB"])
    );
    assert_eq!(
        attached(),
        serde_json::json!(["acme-live-intruder", "someone-elses"])
    );
    // --revoke-all says the same in words.
    grant("admins");
    ok(&provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "iot",
            "grant",
            "--identity-id",
            &identity,
            "--revoke-all",
        ],
    ));
    assert_eq!(
        attached(),
        serde_json::json!(["acme-live-intruder", "someone-elses"])
    );
}

/// moto: an existing, untagged Event API with the configured name is never adopted or changed.
#[test]
fn apply_refuses_to_take_over_an_untagged_resource_with_the_same_name() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("foreign");
    peers.inventory(&["foreign", "acme-live-events"]);
    let config = write_config(&dir, &example());
    peers.reset_calls();
    let out = apply(&dir, peers, &config);
    assert_eq!(out.status.code(), Some(1));
    // The roles come first in apply order (AppSync's logging role must exist before the APIs
    // name it), but the conflict is found in the read-only plan pass: no role is created.
    assert_eq!(
        stderr(&out),
        "error: an Event API named \"acme-live-events\" exists but is not tagged groupcast:project=acme-live: groupcast \
         will not take it over\n"
    );
    // Found by the read-only plan pass: not even the IAM roles (earlier in apply order) were made.
    let writes: Vec<Value> = peers.calls().into_iter().filter(is_write).collect();
    assert!(
        writes.is_empty(),
        "apply wrote before refusing: {writes:#?}"
    );
    let out = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "--output",
            "json",
            "plan",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).is_empty(),
        "nothing but JSON on stdout, and no JSON on error"
    );
}

/// Copies the fixture templates (tests/fixtures/templates) to `dir/templates-copy`.
fn copy_fixture_templates(dir: &Path) -> std::path::PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let target = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &target)
            } else {
                std::fs::copy(&p, &target).map(drop).unwrap()
            }
        }
    }
    let to = dir.join("templates-copy");
    copy(
        &crate::util::repo().join("provisioner/tests/fixtures/templates"),
        &to,
    );
    to
}

/// moto: schema creation parses the SDL (graphql-core) and reports FAILED with details; apply
/// stops with them, and the next apply with a valid schema converges.
#[test]
fn a_schema_that_appsync_rejects_stops_apply_with_its_details() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("schema");
    let config = write_config(&dir, &example());
    let templates = copy_fixture_templates(&dir);
    let schema = templates.join("templates/graphql/schema.graphql.tera");
    let good = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, good.replace("type Mutation {", "type Mutation (")).unwrap();
    let t = templates.to_str().unwrap();
    let args = [
        "--config",
        &config,
        "apply",
        "--outputs",
        "o.json",
        "--out",
        "d",
        "--templates",
        t,
    ];
    let out = provisioner(&dir, Some(peers), &args);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\nerror: GraphQL schema of acme-live-pubsub: schema creation FAILED: "),
        "{err}"
    );
    assert!(
        !dir.join("o.json").exists(),
        "no outputs after a failed apply"
    );

    std::fs::write(&schema, good).unwrap();
    ok(&provisioner(&dir, Some(peers), &args));
    let p = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "plan",
            "--detailed-exitcode",
            "--templates",
            t,
        ],
    );
    assert_eq!(p.status.code(), Some(0), "{}", stdout(&p));
}

/// moto: DeleteChannelNamespace, DeleteGraphqlApi, DeletePolicy; stub: tags. What the config no
/// longer names is deleted (it carries groupcast's tag), the rest is left as it is.
#[test]
fn removed_namespaces_groups_and_sections_are_deleted_on_apply() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("removals");
    let full = example();
    ok(&apply(&dir, peers, &write_config(&dir, &full)));
    let before = peers.list();

    let graphql = &full[full.find("[graphql]").unwrap()..full.find("[iot]").unwrap()];
    let smaller = full
        .replace(graphql, "")
        .replace(jobs_block(&full), "")
        .replace(", \"editors\"]", "]");
    let config = write_config(&dir, &smaller);
    let p = plan(&dir, peers, &config);
    assert_eq!(p.status.code(), Some(2));
    let text = stdout(&p);
    for line in [
        "- delete namespace jobs",
        "- delete graphql-api acme-live-pubsub",
        "- delete iot-policy acme-live-editors",
        // The roles' permissions follow the namespaces and APIs they name.
        "~ update iam-role-policy acme-live-publisher/groupcast",
        "~ update iam-role-policy acme-live-appsync-logs/groupcast",
        "Plan: 0 to create, 2 to update, 3 to delete.",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        text.contains("3 of the deletions (APIs, namespaces, IoT policies, IAM roles) need apply --allow-delete."),
        "{text}"
    );
    assert!(dir.join("deployed/events/jobs.js").exists());
    // Without --allow-delete apply refuses before its first write, listing the deletions.
    peers.reset_calls();
    let refused = apply(&dir, peers, &config);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let e = stderr(&refused);
    for line in [
        "error: apply would delete 3 resource(s) and needs --allow-delete for that; nothing was changed",
        "\n  - delete namespace jobs\n",
        "\n  - delete graphql-api acme-live-pubsub (",
        "\n  - delete iot-policy acme-live-editors (attached to 0 identities)",
    ] {
        assert!(e.contains(line), "missing {line:?} in\n{e}");
    }
    let writes: Vec<Value> = peers.calls().into_iter().filter(is_write).collect();
    assert!(writes.is_empty(), "a refused apply wrote: {writes:#?}");
    assert!(
        !dir.join("outputs.json.lock").exists(),
        "the lock outlived the run"
    );
    let applied = apply_with(&dir, peers, &config, &["--allow-delete"]);
    ok(&applied);
    // The deployed documents follow the config too: nothing of what left it stays behind.
    for gone in [
        "events/jobs.js",
        "graphql/schema.graphql",
        "iot/acme-live-editors.json",
    ] {
        assert!(
            !dir.join("deployed").join(gone).exists(),
            "{gone} is still deployed"
        );
        assert!(
            stderr(&applied).contains(&format!("removed deployed/{gone} (no longer rendered)")),
            "{}",
            stderr(&applied)
        );
    }
    assert!(!dir.join("deployed/graphql").exists());
    assert!(dir.join("deployed/events/live.js").exists());
    let after = owned_summary(&peers.list());
    assert_eq!(after["event_apis"], serde_json::json!(["acme-live-events"]));
    assert_eq!(after["namespaces"], serde_json::json!([["live"]]));
    assert_eq!(after["graphql_apis"], serde_json::json!([]));
    assert_eq!(
        after["iot_policies"],
        serde_json::json!([
            "acme-live-admins",
            "acme-live-team-a",
            "acme-live-x--Team-5fB"
        ])
    );
    // The Event API kept its id: it was updated in place, not replaced.
    assert_eq!(
        peers.list()["event_apis"][0]["id"],
        before["event_apis"][0]["id"]
    );
    assert_eq!(plan(&dir, peers, &config).status.code(), Some(0));
}

/// stub: answers the first call (STS GetCallerIdentity, the account check) with 429
/// ThrottlingException. With the provisioner's
/// own retry settings (no AWS_MAX_ATTEMPTS in the environment), the SDK backs off and retries.
#[test]
fn throttling_is_retried_with_backoff() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("throttle");
    let config = write_config(&dir, &example());
    let args = [
        "--config",
        &config,
        "apply",
        "--outputs",
        "o.json",
        "--out",
        "d",
    ];
    peers.post("/_stub/fail?nth=1&status=429&type=ThrottlingException");
    let out = crate::util::provisioner_with(&dir, Some(peers), &args, |cmd| {
        cmd.env_remove("AWS_MAX_ATTEMPTS");
    });
    ok(&out);
    let calls = peers.calls();
    assert_eq!(
        (&calls[0]["method"], &calls[0]["path"]),
        (&calls[1]["method"], &calls[1]["path"]),
        "{calls:#?}"
    );
    assert_eq!(calls[0]["action"], "GetCallerIdentity");
    assert_eq!(owned_summary(&peers.list()), expected_summary());
    // The retry is a line on stderr, without -v: a pipeline log says why the run waits.
    assert!(
        stderr(&out).contains("retrying GetCallerIdentity - (attempt 2; the last one: HTTP 429"),
        "{}",
        stderr(&out)
    );

    // The same failure with retries turned off is reported, naming the throttling.
    peers.post("/moto-api/reset");
    peers.post("/_stub/fail?nth=1&status=429&type=ThrottlingException");
    let out = provisioner(&dir, Some(peers), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "error: GetCallerIdentity: ThrottlingException: injected failure on call 1\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// moto (STS): credentials of another account than `project.account_id` stop every AWS command
/// before its first AWS change, naming both accounts.
#[test]
fn credentials_of_another_account_are_refused_before_any_change() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("account");
    let text = example().replace("123456789012", "210987654321");
    let config = write_config(&dir, &text);
    for args in [
        vec!["--config", config.as_str(), "plan"],
        vec!["--config", config.as_str(), "apply"],
        vec!["--config", config.as_str(), "destroy", "--yes"],
    ] {
        let out = provisioner(&dir, Some(peers), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("account 123456789012") && e.contains("project.account_id is 210987654321"),
            "{e}"
        );
    }
    assert!(
        peers.calls().iter().all(|c| !is_write(c)),
        "{:#?}",
        peers.calls()
    );
}

/// Errors say their cause in words, on one line: an endpoint that does not implement a call
/// (the stub answers with moto's HTML 404), no credentials, nothing listening, an unknown profile.
#[test]
fn aws_errors_are_one_readable_line_with_a_hint() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("errors");
    let config = write_config(&dir, &example());
    let last_line =
        |o: &std::process::Output| stderr(o).lines().last().unwrap_or_default().to_owned();

    peers.post("/_stub/fail?nth=1&status=404&type=html");
    let out = plan(&dir, peers, &config);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        last_line(&out),
        "error: GetCallerIdentity: the endpoint does not implement this call (HTTP 404; a local peer without this operation?)"
    );

    let out =
        crate::util::provisioner_with(&dir, Some(peers), &["--config", &config, "plan"], |cmd| {
            cmd.env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY");
        });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        last_line(&out).starts_with(
            "error: GetCallerIdentity: no AWS credentials found (hint: set AWS_PROFILE"
        ),
        "{}",
        stderr(&out)
    );

    let out = provisioner(
        &dir,
        None,
        &[
            "--config",
            &config,
            "--endpoint-url",
            "http://127.0.0.1:9",
            "plan",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        last_line(&out).starts_with("error: GetCallerIdentity: cannot connect to the AWS endpoint"),
        "{}",
        stderr(&out)
    );

    let out = provisioner(
        &dir,
        Some(peers),
        &["--config", &config, "--profile", "prdo", "plan"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        last_line(&out).starts_with("error: --profile/AWS_PROFILE: no profile named \"prdo\""),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "colour codes in a log: {}",
        stderr(&out)
    );
}

/// moto (IAM): the identity pool's authenticated role is the user's; apply adds groupcast's IoT
/// policy to it, and destroy takes only that policy away, leaving the role.
#[test]
fn the_identity_pool_role_gets_the_iot_policy_and_keeps_everything_else() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("pool-role");
    peers.inventory(&["role", "acme-identity-auth"]);
    let text = example().replace(
        "groups = [\"admins\"",
        "authenticated_role_name = \"acme-identity-auth\"\ngroups = [\"admins\"",
    );
    assert!(text.contains("authenticated_role_name = \"acme-identity-auth\""));
    let config = write_config(&dir, &text);
    ok(&apply(&dir, peers, &config));
    let role = |list: &Value| {
        list["iam_roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "acme-identity-auth")
            .cloned()
    };
    let r = role(&peers.list()).expect("the role stays");
    assert_eq!(
        r["policies"],
        serde_json::json!(["groupcast-acme-live-iot"])
    );
    assert_eq!(plan(&dir, peers, &config).status.code(), Some(0));
    ok(&provisioner(
        &dir,
        Some(peers),
        &["--config", &config, "destroy", "--yes"],
    ));
    let r = role(&peers.list()).expect("destroy never deletes the user's role");
    assert_eq!(r["policies"], serde_json::json!([]));
}

/// `plan --out FILE` then `apply FILE` applies the reviewed plan; a config edited in between, or
/// live state changed in between, is refused naming what changed, before any write.
#[test]
fn a_saved_plan_is_applied_only_while_config_and_live_state_match_it() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("saved-plan");
    let config = write_config(&dir, &example());
    let saved = provisioner(
        &dir,
        Some(peers),
        &["--config", &config, "plan", "--out", "reviewed.plan"],
    );
    ok(&saved);
    assert!(
        stderr(&saved).contains("Saved the plan to reviewed.plan"),
        "{}",
        stderr(&saved)
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reviewed.plan")).unwrap()).unwrap();
    assert_eq!(file["format"], "groupcast-plan/1");
    assert_eq!(file["project"], "acme-live");
    assert!(file["changes"].as_array().unwrap().len() > 10, "{file:#}");
    for digest in ["configSha256", "documentsSha256", "changesSha256"] {
        assert_eq!(file[digest].as_str().unwrap().len(), 64, "{digest}");
    }

    // The config changes after review: refused offline, naming the file.
    let edited = example().replace("result_ttl_seconds = 300", "result_ttl_seconds = 60");
    write_config(&dir, &edited);
    peers.reset_calls();
    let out = apply_with(&dir, peers, &config, &["reviewed.plan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: the config file {config} is not the one the plan was computed from"
        )),
        "{}",
        stderr(&out)
    );
    assert!(peers.calls().is_empty(), "{:#?}", peers.calls());

    // The reviewed config again: applied, and the result is exactly the plan.
    write_config(&dir, &example());
    let out = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "--output",
            "json",
            "apply",
            "--plan",
            "reviewed.plan",
            "--outputs",
            "outputs.json",
            "--out",
            "deployed",
        ],
    );
    let printed: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(owned_summary(&peers.list()), expected_summary());
    let summary = |cs: &Value| -> Vec<(Value, Value)> {
        cs.as_array()
            .unwrap()
            .iter()
            .map(|c| (c["action"].clone(), c["kind"].clone()))
            .collect()
    };
    assert_eq!(summary(&printed["changes"]), summary(&file["changes"]));

    // Applying the same plan again: live state has changed since (it was applied), so refused.
    peers.reset_calls();
    let out = apply_with(&dir, peers, &config, &["reviewed.plan"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("error: live state changed since the plan was saved"),
        "{e}"
    );
    assert!(
        e.contains("\n  no longer needed: + create event-api acme-live-events\n"),
        "{e}"
    );
    let writes: Vec<Value> = peers.calls().into_iter().filter(is_write).collect();
    assert!(writes.is_empty(), "{writes:#?}");
}

/// A second apply while one is running (its lock file beside the outputs file) is refused with
/// the holder and the stale-lock advice, before any AWS call; the lock goes when a run ends.
#[test]
fn a_second_concurrent_apply_is_refused_by_the_lock() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("lock");
    let config = write_config(&dir, &example());
    std::fs::write(
        dir.join("outputs.json.lock"),
        "{\"command\":\"apply\",\"pid\":4242}\n",
    )
    .unwrap();
    let out = apply(&dir, peers, &config);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.starts_with("error: another apply or destroy of this project is running: the lock file outputs.json.lock exists ({\"command\":\"apply\",\"pid\":4242})"),
        "{e}"
    );
    assert!(e.contains("delete outputs.json.lock and run again"), "{e}");
    assert!(peers.calls().is_empty(), "{:#?}", peers.calls());
    let destroy = provisioner(
        &dir,
        Some(peers),
        &[
            "--config",
            &config,
            "destroy",
            "--yes",
            "--outputs",
            "outputs.json",
        ],
    );
    assert_eq!(destroy.status.code(), Some(1));
    assert!(stderr(&destroy).contains("the lock file outputs.json.lock exists"));

    std::fs::remove_file(dir.join("outputs.json.lock")).unwrap();
    ok(&apply(&dir, peers, &config));
    assert!(!dir.join("outputs.json.lock").exists());
    // Two applies at once: one of them holds the lock; neither makes duplicates.
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .current_dir(&*dir)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("HOME", &*dir)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .args([
                "--endpoint-url",
                &peers.url,
                "--config",
                &config,
                "apply",
                "--outputs",
                "outputs.json",
                "--out",
                "deployed",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || e.contains("the lock file outputs.json.lock exists"),
            "{e}"
        );
    }
    assert_eq!(owned_summary(&peers.list()), expected_summary());
    assert!(!dir.join("outputs.json.lock").exists());
}

/// `-v` logs every AWS call with its operation, resource and duration; schema creation polling is
/// a line per poll off a terminal, with or without -v. moto + stub as in the apply tests.
#[test]
fn verbose_logs_every_aws_call_and_schema_polls_are_lines() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("verbose");
    let config = write_config(&dir, &example());
    let quiet = apply(&dir, peers, &config);
    ok(&quiet);
    let e = stderr(&quiet);
    assert!(
        e.lines()
            .any(|l| l.starts_with("GraphQL schema creation on API ") && l.contains(": SUCCESS (")),
        "{e}"
    );
    assert!(!e.contains(" ms"), "per-call lines without -v:\n{e}");

    peers.reset();
    let out = provisioner(
        &dir,
        Some(peers),
        &[
            "-v",
            "--config",
            &config,
            "apply",
            "--outputs",
            "o.json",
            "--out",
            "d",
        ],
    );
    ok(&out);
    let e = stderr(&out);
    let logged: Vec<&str> = e
        .lines()
        .filter(|l| l.contains("provisioner::aws"))
        .collect();
    for needle in [
        "GetCallerIdentity -: ok in ",
        "CreateApi /v2/apis: ok in ",
        "CreateChannelNamespace /v2/apis/",
        "GetRole RoleName=acme-live-",
        "CreatePolicy /policies/acme-live-admins: ok in ",
    ] {
        assert!(
            logged
                .iter()
                .any(|l| l.contains(needle) && l.ends_with(" ms")),
            "no {needle:?} call logged in\n{e}"
        );
    }
    // One line per call the stub saw (each call is logged once, whatever its outcome).
    assert_eq!(logged.len(), peers.calls().len(), "{e}");
}

/// `iot.auth = "custom-authorizer"`. stub: Create/Describe/Update/DeleteAuthorizer (moto 5.2.5 has
/// none) and the authorizer's tags; moto: the roles and the Lambda permission.
#[test]
fn custom_authorizer_mode_creates_the_authorizer_and_iot_s_invoke_permission_then_only_reads() {
    let (peers, _guard) = Peers::get();
    let dir = scratch("iot-custom-authorizer");
    peers.inventory(&["function", "acme-live-iot-authorizer"]);
    let text = example().replace(
        "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
        "auth = \"custom-authorizer\"\nrefresh_after_seconds = 600",
    );
    assert!(text.contains("custom-authorizer"));
    let config = write_config(&dir, &text);
    let before = plan(&dir, peers, &config);
    assert!(
        stdout(&before).contains("+ create iot-authorizer acme-live-iot-authorizer"),
        "{}",
        stdout(&before)
    );
    ok(&apply(&dir, peers, &config));
    let outputs = Outputs::from_path(dir.join("outputs.json")).unwrap();
    let iot = outputs.iot.as_ref().unwrap();
    assert_eq!(
        iot.custom_authorizer.as_deref(),
        Some("acme-live-iot-authorizer")
    );
    assert!(iot.policies.is_empty(), "{iot:?}");
    let list = peers.list();
    let summary = owned_summary(&list);
    assert_eq!(summary["iot_policies"], serde_json::json!([]));
    let roles: Vec<&Value> = summary["iam_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r[0])
        .collect();
    assert!(
        roles.contains(&&serde_json::json!("acme-live-iot-authorizer")),
        "{roles:?}"
    );
    assert!(
        !roles.contains(&&serde_json::json!("acme-live-iot-grant")),
        "{roles:?}"
    );
    let function = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "acme-live-iot-authorizer")
        .unwrap();
    assert_eq!(
        function["statements"],
        serde_json::json!([{
            "sid": "groupcast-acme-live-iot",
            "source_arn": "arn:aws:iot:us-east-1:123456789012:authorizer/acme-live-iot-authorizer",
        }])
    );
    let env = std::fs::read_to_string(dir.join("deployed/lambda/iot-authorizer.env")).unwrap();
    assert!(env.contains("GROUPCAST_IOT_REFRESH_SECS='600'\n"), "{env}");
    // The second plan finds the authorizer, its role and IoT's statement in sync.
    let again = plan(&dir, peers, &config);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    ok(&provisioner(
        &dir,
        Some(peers),
        &["--config", &config, "destroy", "--yes"],
    ));
    let after = plan(&dir, peers, &config);
    assert!(
        stdout(&after).contains("+ create iot-authorizer acme-live-iot-authorizer"),
        "{}",
        stdout(&after)
    );
}

/// The example's `[[events.namespaces]]` table of `jobs`, its epoch and comments included: everything
/// up to the next table.
fn jobs_block(full: &str) -> &str {
    let start = full
        .find("[[events.namespaces]]\nname = \"jobs\"")
        .expect("the example has a jobs namespace");
    let len = full[start + 1..]
        .find("\n[")
        .map_or(full.len() - start, |i| i + 2);
    &full[start..start + len]
}
