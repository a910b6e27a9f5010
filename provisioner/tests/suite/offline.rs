//! Offline commands (no peers): `render` and config validation, through the real binary.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{example, ok, provisioner, repo, scratch, stderr};

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

const EXAMPLE_ARTIFACTS: [&str; 24] = [
    ".groupcast-rendered",
    "eventbridge/iot-sync-rule.json",
    "events/jobs.js",
    "events/live.js",
    "graphql/Mutation.publish.request.vtl",
    "graphql/Mutation.publish.response.vtl",
    "graphql/Mutation.revoke.request.vtl",
    "graphql/Mutation.revoke.response.vtl",
    "graphql/Subscription.subscribe.request.vtl",
    "graphql/Subscription.subscribe.response.vtl",
    "graphql/schema.graphql",
    "iam/appsync-logs-role-policy.json",
    "iam/appsync-logs-trust.json",
    "iam/authorizer-role-policy.json",
    "iam/deployer-policy.json",
    "iam/identity-pool-iot-policy.json",
    "iam/iot-grant-role-policy.json",
    "iam/lambda-trust.json",
    "iam/publisher-policy.json",
    "iam/publisher-role-policy.json",
    "iot/acme-live-admins.json",
    "iot/acme-live-editors.json",
    "iot/acme-live-team-a.json",
    "iot/acme-live-x--Team-5fB.json",
];

#[test]
fn render_writes_every_artifact_byte_identically_across_runs() {
    let dir = scratch("render-twice");
    let config = repo().join("examples/groupcast.toml");
    let config = config.to_str().unwrap();
    ok(&provisioner(
        &dir,
        None,
        &["--config", config, "render", "--out", "a"],
    ));
    ok(&provisioner(
        &dir,
        None,
        &["--config", config, "render", "--out", "b"],
    ));
    let (a, b) = (tree(&dir.join("a")), tree(&dir.join("b")));
    assert_eq!(
        a.keys().map(String::as_str).collect::<Vec<_>>(),
        EXAMPLE_ARTIFACTS
    );
    assert_eq!(a, b, "two renders of the same config differ");
    // Policies are JSON; the IoT policy of an encoded group names only its segment.
    let policy: serde_json::Value =
        serde_json::from_slice(&a["iot/acme-live-x--Team-5fB.json"]).unwrap();
    let text = policy.to_string();
    assert!(
        text.contains("groupcast/x--Team-5fB/*") && !text.contains("Team_B"),
        "{text}"
    );
    let publisher: serde_json::Value =
        serde_json::from_slice(&a["iam/publisher-policy.json"]).unwrap();
    assert!(
        publisher
            .to_string()
            .contains("apis/*/channelNamespace/live"),
        "{publisher}"
    );
}

#[test]
fn render_removes_the_documents_a_changed_config_no_longer_has_and_keeps_other_files() {
    let dir = scratch("render-stale");
    let full = example();
    // The example without its [graphql] section and without the "editors" IoT group.
    let start = full.find("[graphql]").unwrap();
    let end = full.find("[iot]").unwrap();
    let smaller = format!("{}{}", &full[..start], &full[end..]).replace(r#", "editors"]"#, "]");
    assert_ne!(smaller, full);
    std::fs::write(dir.join("full.toml"), &full).unwrap();
    std::fs::write(dir.join("smaller.toml"), &smaller).unwrap();

    ok(&provisioner(
        &dir,
        None,
        &["--config", "full.toml", "render", "--out", "out"],
    ));
    std::fs::write(dir.join("out/deploy-notes.md"), "ours").unwrap();
    let out = ok(&provisioner(
        &dir,
        None,
        &[
            "--config",
            "smaller.toml",
            "--output",
            "json",
            "render",
            "--out",
            "out",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let removed: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().strip_prefix("out/").unwrap())
        .collect();
    assert_eq!(
        removed,
        [
            "graphql/Mutation.publish.request.vtl",
            "graphql/Mutation.publish.response.vtl",
            "graphql/Mutation.revoke.request.vtl",
            "graphql/Mutation.revoke.response.vtl",
            "graphql/Subscription.subscribe.request.vtl",
            "graphql/Subscription.subscribe.response.vtl",
            "graphql/schema.graphql",
            "iot/acme-live-editors.json",
        ]
    );
    let left = tree(&dir.join("out"));
    let expected: Vec<&str> = EXAMPLE_ARTIFACTS
        .iter()
        .copied()
        .filter(|p| !p.starts_with("graphql/") && *p != "iot/acme-live-editors.json")
        .chain(["deploy-notes.md"])
        .collect();
    let mut expected = expected;
    expected.sort_unstable();
    assert_eq!(
        left.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    assert!(!dir.join("out/graphql").exists());
    assert_eq!(left["deploy-notes.md"], b"ours");
}

#[test]
fn render_with_a_template_directory_uses_it_and_names_a_missing_template() {
    let dir = scratch("render-templates");
    let config = repo().join("examples/groupcast.toml");
    let config = config.to_str().unwrap();
    let fixtures = repo().join("provisioner/tests/fixtures/templates");
    ok(&provisioner(
        &dir,
        None,
        &[
            "--config",
            config,
            "render",
            "--out",
            "o",
            "--templates",
            fixtures.to_str().unwrap(),
        ],
    ));
    let handler = std::fs::read_to_string(dir.join("o/events/live.js")).unwrap();
    let want =
        "const NAMESPACE = \"live\";\nconst GROUP_CHECK = true;\nconst PUBLISH_IAM_ONLY = true;\n";
    assert!(handler.starts_with(want), "{handler}");

    // Per-namespace settings reach the handler's context.
    let cfg = dir.join("jobs-open.toml");
    let open = "name = \"jobs\"\ngroup_check = false\npublish_iam_only = false";
    // Without the example's epoch: an epoch needs group_check.
    let plain = example().replace("\nepoch_seconds = 300", "\n");
    std::fs::write(&cfg, plain.replace("name = \"jobs\"", open)).unwrap();
    let cfg = cfg.to_str().unwrap();
    let t = fixtures.to_str().unwrap();
    ok(&provisioner(
        &dir,
        None,
        &["--config", cfg, "render", "--out", "j", "--templates", t],
    ));
    let jobs = std::fs::read_to_string(dir.join("j/events/jobs.js")).unwrap();
    let want = "const NAMESPACE = \"jobs\";\nconst GROUP_CHECK = false;\nconst PUBLISH_IAM_ONLY = false;\n\
                const OIDC_GROUPS_CLAIM = \"groups\";\n";
    assert!(jobs.starts_with(want), "{jobs}");

    // A copy of the fixtures without the handler template: render fails and writes nothing.
    let partial = dir.join("partial");
    for f in [
        "templates/iot/group-policy.json.tera",
        "templates/iam/publisher-policy.json.tera",
    ] {
        std::fs::create_dir_all(partial.join(f).parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join(f), partial.join(f)).unwrap();
    }
    let cfg = dir.join("events-only.toml");
    let text = example();
    let events_only = &text[..text.find("[graphql]").unwrap()];
    std::fs::write(&cfg, events_only).unwrap();
    let out = provisioner(
        &dir,
        None,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "render",
            "--out",
            "p",
            "--templates",
            partial.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: template events/handler.js.tera is missing from {}/{{templates,vtl}}\n",
            partial.display()
        )
    );
    assert!(!dir.join("p").exists());
}

/// The 1-based line of the first line of `text` starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

#[test]
fn bad_configs_are_rejected_with_file_line_field_and_rule() {
    let dir = scratch("bad-configs");
    let base = example();
    let cases: Vec<(String, &str, String)> = vec![
        (
            base.replace("# group_check = true", "group_chek = true"),
            "group_chek",
            "1: events.namespaces[0].group_chek: unknown field `group_chek`, expected one of `name`, `group_check`, `publish_iam_only`, `epoch_seconds`".into(),
        ),
        (
            base.replace("result_ttl_seconds = 300", "result_ttl_seconds = \"300\""),
            "result_ttl_seconds",
            "22: events.auth.lambda.result_ttl_seconds: invalid type: string \"300\", expected u64".into(),
        ),
        (
            base.replace("result_ttl_seconds = 300", "result_ttl_seconds = 3601"),
            "result_ttl_seconds",
            "1: events.auth.lambda.result_ttl_seconds: must be 0-3600 seconds".into(),
        ),
        (
            base.replace("groups_claim = \"cognito:groups\"", "groups_claim = \"cognito:groups'\""),
            "groups_claim",
            "1: graphql.groups_claim: must match ^[A-Za-z0-9:._-]{1,128}$".into(),
        ),
        (
            base.replace("max_groups_per_subscription = 50", "max_groups_per_subscription = 201"),
            "max_groups_per_subscription",
            "1: graphql.max_groups_per_subscription: must be 1-200 (AppSync allows 10 filters of 20 containsAny values)".into(),
        ),
        (
            base.replace("policy_name_pattern = \"acme-live-{group}\"", "policy_name_pattern = \"acme-live\""),
            "policy_name_pattern",
            "1: iot.policy_name_pattern: must contain {group} exactly once".into(),
        ),
        (
            base.replace("\"editors\"]", "\"editors\", \"\"]"),
            "groups =",
            "52: iot.groups[4]: group name is empty: a group needs at least one character".into(),
        ),
        (
            base.replace("\"editors\"]", &format!("\"editors\", \"{}\"]", "ü".repeat(20))),
            "groups =",
            format!(
                "52: iot.groups[4]: group {:?} cannot be mapped to a channel segment: its encoded form is 123 characters and \
                 a segment holds at most 50; names of letters, digits and inner single hyphens map to themselves, other \
                 characters cost 3 per UTF-8 byte",
                "ü".repeat(20)
            ),
        ),
        (
            base.replace("subscriber_auth_modes = [\"AMAZON_COGNITO_USER_POOLS\"]", "subscriber_auth_modes = [\"AWS_LAMBDA\"]"),
            "subscriber_auth_modes",
            "26: graphql.subscriber_auth_modes[0]: AWS_LAMBDA needs its provider: add [graphql.auth.lambda]".into(),
        ),
        (
            base.replace("name = \"jobs\"", "name = \"jobs/x\""),
            "name = \"jobs/x\"",
            "1: events.namespaces[1].name: a namespace name is 1-50 characters of A-Z, a-z, 0-9 and -, starting and ending \
             with a letter or digit"
                .into(),
        ),
        (
            base.replace("default_publish_auth_modes = [\"AWS_IAM\"]", "default_publish_auth_modes = [\"API_KEYS\"]"),
            "default_publish_auth_modes",
            "31: events.default_publish_auth_modes[0]: unknown variant `API_KEYS`, expected one of `API_KEY`, `AWS_IAM`, \
             `AMAZON_COGNITO_USER_POOLS`, `OPENID_CONNECT`, `AWS_LAMBDA`"
                .into(),
        ),
        (
            base.replace("level = \"ERROR\"", "level = \"WARN\""),
            "level =",
            "9: logging.level: unknown variant `WARN`, expected one of `NONE`, `ERROR`, `ALL`, `INFO`, `DEBUG`".into(),
        ),
        (
            base.replace("arn:aws:lambda:us-east-1:", "arn:aws-cn:lambda:cn-north-1:"),
            "authorizer_arn",
            "1: events.auth.lambda.authorizer_arn: must be in the project region's partition: arn:aws:lambda:… \
             (project.region is us-east-1)"
                .into(),
        ),
        (
            base.replace("arn:aws:lambda:us-east-1:", "arn:aws-eu:lambda:us-east-1:"),
            "authorizer_arn",
            "1: events.auth.lambda.authorizer_arn: must be a Lambda function ARN \
             (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME, PARTITION one of aws, aws-cn, aws-us-gov)"
                .into(),
        ),
        (
            base.replace("us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc", "us-east-1:pool"),
            "identity_pool_id",
            "1: iot.identity_pool_id: must be an identity pool id REGION:UUID such as \
             us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc"
                .into(),
        ),
        (
            base.replace("# websocket = false", "websocket = \"yes\""),
            "websocket",
            "13: publisher.websocket: invalid type: string \"yes\", expected a boolean".into(),
        ),
    ];
    for (i, (text, line_prefix, rest)) in cases.iter().enumerate() {
        assert_ne!(text, &base, "case {i} did not change the example");
        let file = format!("bad{i}.toml");
        std::fs::write(dir.join(&file), text).unwrap();
        let out = provisioner(&dir, None, &["--config", &file, "render", "--out", "o"]);
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let want = format!("error: {file}:{}:{rest}\n", line_of(text, line_prefix));
        assert_eq!(stderr(&out), want, "case {i}");
    }
    assert!(!dir.join("o").exists(), "a rejected config wrote artifacts");
}

#[test]
fn render_writes_the_iam_documents_in_the_regions_partition_with_event_connect_for_a_websocket_publisher()
 {
    let dir = scratch("render-iam-cn");
    let cn = example()
        .replace("us-east-1", "cn-north-1")
        .replace("arn:aws:", "arn:aws-cn:")
        .replace("# websocket = false", "websocket = true")
        .replace("# authenticated_role_name", "authenticated_role_name");
    std::fs::write(dir.join("cn.toml"), &cn).unwrap();
    ok(&provisioner(
        &dir,
        None,
        &["--config", "cn.toml", "render", "--out", "o"],
    ));
    let files = tree(&dir.join("o"));
    let iam: Vec<&String> = files.keys().filter(|p| p.starts_with("iam/")).collect();
    assert_eq!(iam.len(), 9, "{iam:?}");
    for path in iam {
        let text = String::from_utf8(files[path].clone()).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        assert!(
            !text.contains("arn:aws:"),
            "{path} names the aws partition:\n{text}"
        );
    }
    let role: serde_json::Value =
        serde_json::from_slice(&files["iam/publisher-role-policy.json"]).unwrap();
    let connect: Vec<&serde_json::Value> = role["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == "appsync:EventConnect")
        .collect();
    assert_eq!(
        connect[0]["Resource"],
        "arn:aws-cn:appsync:cn-north-1:123456789012:apis/*"
    );
    assert_eq!(connect.len(), 1);
}

#[test]
fn help_shows_an_example_for_every_subcommand() {
    let dir = scratch("help");
    for sub in [
        &["render"][..],
        &["plan"],
        &["apply"],
        &["destroy"],
        &["iot", "grant"],
        &["completions"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = ok(&provisioner(&dir, None, &args));
        let example = format!("provisioner {}", sub.join(" "));
        assert!(
            out.contains("Example:") && out.contains(&example),
            "{sub:?}:\n{out}"
        );
    }
}

/// Usage errors exit 1, never 2 (which `plan --detailed-exitcode` uses for "changes present");
/// help exits 0.
#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let dir = scratch("usage");
    for args in [
        &["plan", "--confg", "x"][..],
        &["--output", "yaml", "plan"],
        &["nosuch"],
    ] {
        let out = provisioner(&dir, None, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error:"), "{}", stderr(&out));
    }
    assert_eq!(provisioner(&dir, None, &["--help"]).status.code(), Some(0));
    assert_eq!(
        provisioner(&dir, None, &["--version"]).status.code(),
        Some(0)
    );
}

/// `provisioner render | head -1`: a reader that stops early ends the run quietly with 0.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let dir = scratch("pipe");
    let config = dir.join("groupcast.toml");
    std::fs::write(&config, example()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .current_dir(&*dir)
        .args(["--config", config.to_str().unwrap(), "render", "--out", "o"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

/// `provisioner completions SHELL` needs no config file and prints a script that knows the
/// subcommands and their options; bash parses the bash one.
#[test]
fn completions_print_a_script_for_each_shell_without_a_config() {
    let dir = scratch("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = provisioner(&dir, None, &["completions", shell]);
        let script = ok(&out);
        for word in [
            "apply",
            "destroy",
            "allow-delete",
            "detailed-exitcode",
            "revoke-all",
        ] {
            assert!(script.contains(word), "{shell}: no {word:?}");
        }
    }
    let bash = ok(&provisioner(&dir, None, &["completions", "bash"]));
    std::fs::write(dir.join("provisioner.bash"), bash).unwrap();
    if let Ok(check) = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.join("provisioner.bash"))
        .output()
    {
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let bad = provisioner(&dir, None, &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&bad)
    );
}
