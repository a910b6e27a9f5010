//! Property tests ("fuzzing" on stable Rust, inside `cargo test`) of the config loader,
//! [`Config::parse`]: the bundled example mutated (lines deleted, duplicated, swapped; keys
//! renamed; values of other types, unicode and garbage; text inserted; the file truncated),
//! arbitrary text, and plausible configs with generated groups, principals, tags and names.
//!
//! Properties: nothing panics; every error is a [`ConfigError`] whose `field` is a key path of
//! the schema or of the file as written (or `(file)`), whose `rule` is a non-empty sentence and
//! whose line lies in the file; every config that loads keeps the invariants the rest of the
//! provisioner relies on (every IoT group mapped to a policy name, publisher principals that are
//! session prefixes ending in `/` or IAM user ARNs, auth modes with their providers, …) and
//! renders.
//!
//! Cases are bounded and the seed is fixed, so a run is reproducible; `PROPTEST_CASES` raises the
//! count for a longer local run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as RunnerConfig, RngSeed};

use super::*;
use crate::render::{Ids, Renderer};

const EXAMPLE: &str = include_str!("../../examples/groupcast.toml");
const FILE: &str = "fuzz.toml";

fn runner(default_cases: u32) -> RunnerConfig {
    RunnerConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(default_cases),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x636f_6e66_6967_7a7a),
        ..RunnerConfig::default()
    }
}

/// Every key path the schema has, with array indexes as `[]`; `tags.*` is any tag key.
const SCHEMA_PATHS: &[&str] = &[
    "project",
    "project.name",
    "project.region",
    "project.account_id",
    "tags",
    "tags.*",
    "publisher",
    "publisher.extra_principal_arns",
    "publisher.extra_principal_arns[]",
    "events",
    "events.name",
    "events.connection_auth_modes",
    "events.connection_auth_modes[]",
    "events.default_publish_auth_modes",
    "events.default_publish_auth_modes[]",
    "events.default_subscribe_auth_modes",
    "events.default_subscribe_auth_modes[]",
    "events.namespaces",
    "events.namespaces[]",
    "events.namespaces[].name",
    "events.namespaces[].group_check",
    "events.namespaces[].publish_iam_only",
    "events.namespaces[].epoch_seconds",
    "graphql",
    "graphql.name",
    "graphql.subscriber_auth_modes",
    "graphql.subscriber_auth_modes[]",
    "graphql.groups_claim",
    "graphql.max_groups_per_subscription",
    "iot",
    "iot.topic_prefix",
    "iot.policy_name_pattern",
    "iot.groups",
    "iot.groups[]",
];

/// The keys of `[events.auth]` / `[graphql.auth]`, below `{api}.auth`.
const AUTH_PATHS: &[&str] = &[
    "",
    ".cognito",
    ".cognito.user_pool_id",
    ".cognito.region",
    ".cognito.app_id_client_regex",
    ".iam",
    ".api_key",
    ".api_key.expires_in_days",
    ".lambda",
    ".lambda.authorizer_arn",
    ".lambda.result_ttl_seconds",
    ".lambda.identity_validation_expression",
    ".oidc",
    ".oidc.issuer",
    ".oidc.client_id",
    ".oidc.iat_ttl_ms",
    ".oidc.auth_ttl_ms",
    ".oidc.groups_claim",
];

/// Every key name of the schema (what a mutation renames a key to, most of the time).
const KEYS: &[&str] = &[
    "project",
    "name",
    "region",
    "account_id",
    "tags",
    "events",
    "connection_auth_modes",
    "default_publish_auth_modes",
    "default_subscribe_auth_modes",
    "auth",
    "cognito",
    "user_pool_id",
    "app_id_client_regex",
    "iam",
    "api_key",
    "expires_in_days",
    "lambda",
    "authorizer_arn",
    "result_ttl_seconds",
    "identity_validation_expression",
    "oidc",
    "issuer",
    "client_id",
    "iat_ttl_ms",
    "auth_ttl_ms",
    "groups_claim",
    "namespaces",
    "group_check",
    "publish_iam_only",
    "epoch_seconds",
    "graphql",
    "subscriber_auth_modes",
    "max_groups_per_subscription",
    "iot",
    "topic_prefix",
    "policy_name_pattern",
    "groups",
    "publisher",
    "extra_principal_arns",
];

const HEADERS: &[&str] = &[
    "[project]",
    "[tags]",
    "[publisher]",
    "[events]",
    "[events.auth]",
    "[events.auth.iam]",
    "[events.auth.oidc]",
    "[events.auth.api_key]",
    "[events.auth.lambda]",
    "[events.auth.cognito]",
    "[[events.namespaces]]",
    "[graphql]",
    "[graphql.auth.iam]",
    "[graphql.auth.lambda]",
    "[graphql.auth.oidc]",
    "[graphql.auth.api_key]",
    "[iot]",
    "[[iot]]",
    "[[project]]",
    "[events.namespaces]",
];

/// `s` as a TOML basic string (control characters escaped, as TOML requires).
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Strings the rules care about, near misses of them, and any unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,24}",
        2 => "[a-zA-Z0-9_ .:/@+=,{}-]{0,20}",
        1 => ".{0,8}",
        1 => "x--[a-zA-Z0-9-]{0,10}",
        3 => select(vec![
            "", " ", "us-east-1", "cn-north-1", "us-gov-west-1", "eu-west-", "us-east-1_AbC",
            "us-east-1_", "_x", "123456789012", "12345678901", "1234567890123",
            "arn:aws:iam::123456789012:role/ci/deployer", "arn:aws:iam::123456789012:user/ops",
            "arn:aws:iam::123456789012:role/", "arn:aws-cn:iam::123456789012:role/x",
            "arn:aws:sts::123456789012:assumed-role/x/y", "arn:aws:iam::123456789012:user/a//b",
            "arn:aws:lambda:us-east-1:123456789012:function:f", "arn:aws", "https://login.example.com",
            "https://", "http://x", "AWS_IAM", "AWS_LAMBDA", "API_KEY", "OPENID_CONNECT",
            "AMAZON_COGNITO_USER_POOLS", "{group}", "p-{group}", "{group}{group}", "p {group}",
            "Team_B", "team-a", "é", "aws:x", "groupcast:project", "\u{0}", "a/b", "a//b", "$aws",
            "#", "*", "+", "a.b", "cognito:groups", "live", "Live",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A TOML value as text: strings, numbers, booleans, dates, arrays and inline tables, and
/// unquoted garbage.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => text().prop_map(|s| toml_str(&s)),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-5i64..400).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => Just("1979-05-27T07:32:00Z".to_owned()),
        1 => "\\PC{0,12}",
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..3).prop_map(|kv| {
                let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", kv.join(", "))
            }),
        ]
    })
}

/// A key as TOML text: a schema key, a bare one, a quoted unicode one, a dotted one.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
        1 => "\\PC{0,10}".prop_map(|k| toml_str(&k)),
        1 => "[a-z]{1,5}\\.[a-z]{1,5}",
    ]
}

/// One edit of the file.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Replace the value of the i-th `key = value` line.
    SetValue(Index, String),
    /// Rename the key of the i-th `key = value` line.
    RenameKey(Index, String),
    InsertLine(Index, String),
    InsertText(Index, String),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => select(HEADERS).prop_map(str::to_owned),
        1 => key().prop_map(|k| format!("[{k}]")),
        1 => "\\PC{0,30}",
    ];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        5 => (any::<Index>(), value()).prop_map(|(i, v)| Mutation::SetValue(i, v)),
        2 => (any::<Index>(), key()).prop_map(|(i, k)| Mutation::RenameKey(i, k)),
        2 => (any::<Index>(), line).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        1 => (any::<Index>(), "\\PC{1,6}|.{1,3}").prop_map(|(i, s)| Mutation::InsertText(i, s)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn is_assignment(line: &str) -> bool {
    let t = line.trim_start();
    !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| is_assignment(&lines[i]))
        .collect();
    match m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let at = i.index(lines.len());
            lines.insert(at, lines[at].clone());
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a.index(n), b.index(n));
        }
        Mutation::SetValue(i, v) if !assignments.is_empty() => {
            let at = assignments[i.index(assignments.len())];
            let (k, _) = lines[at].split_once('=').unwrap_or_default();
            lines[at] = format!("{k}= {v}");
        }
        Mutation::RenameKey(i, k) if !assignments.is_empty() => {
            let at = assignments[i.index(assignments.len())];
            let (_, v) = lines[at].split_once('=').unwrap_or_default();
            lines[at] = format!("{k} ={v}");
        }
        Mutation::InsertLine(i, l) => {
            let at = i.index(lines.len() + 1);
            lines.insert(at, l.clone());
        }
        Mutation::InsertText(i, s) => {
            let mut text = lines.join("\n");
            let mut at = i.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, s);
            return text;
        }
        Mutation::Truncate(i) => {
            let text = lines.join("\n");
            let mut at = i.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return text[..at].to_owned();
        }
        _ => {}
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The steps of a path as a schema path: `iot.groups[12].x` → `iot.groups[].x`.
fn normalize(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

fn is_schema_path(normalized: &str) -> bool {
    if SCHEMA_PATHS.contains(&normalized) || normalized.starts_with("tags.") {
        return true;
    }
    ["events.auth", "graphql.auth"].iter().any(|api| {
        normalized
            .strip_prefix(api)
            .is_some_and(|rest| AUTH_PATHS.contains(&rest))
    })
}

/// Whether every step of `field` exists in the document as written (recovered past syntax
/// errors, as [`Config::parse`] does to locate them).
fn resolves_in(text: &str, field: &str) -> bool {
    let (doc, _) = DeTable::parse_recoverable(text);
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = doc.get_ref();
    for step in parse_path(field) {
        let next = match (step, value) {
            (Step::Key(k), None) => table.iter().find(|(key, _)| key.get_ref() == &k),
            (Step::Key(k), Some(DeValue::Table(t))) => {
                t.iter().find(|(key, _)| key.get_ref() == &k)
            }
            (Step::Index(i), Some(DeValue::Array(a))) => match a.get(i) {
                Some(v) => {
                    value = Some(v.get_ref());
                    if let DeValue::Table(t) = v.get_ref() {
                        table = t;
                    }
                    continue;
                }
                None => return false,
            },
            _ => return false,
        };
        match next {
            Some((_, v)) => {
                value = Some(v.get_ref());
                if let DeValue::Table(t) = v.get_ref() {
                    table = t;
                }
            }
            None => return false,
        }
    }
    true
}

/// The error properties: a real key path (or `(file)`), a rule in words, a line in the file.
fn check_error(text: &str, e: &ConfigError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.file.as_path(), Path::new(FILE));
    let rule = e.rule.as_str();
    prop_assert!(
        !rule.is_empty()
            && !rule.starts_with(char::is_whitespace)
            && rule.chars().filter(|c| c.is_alphabetic()).count() >= 2,
        "the rule is not a sentence: {e}"
    );
    prop_assert!(!e.field.is_empty(), "no field: {e}");
    if e.field != "(file)" {
        let steps = parse_path(&e.field);
        let normalized = normalize(&steps);
        let parent = normalize(&steps[..steps.len() - 1]);
        let unknown_key_of_a_schema_table =
            rule.starts_with("unknown field") && (parent.is_empty() || is_schema_path(&parent));
        prop_assert!(
            is_schema_path(&normalized)
                || unknown_key_of_a_schema_table
                || resolves_in(text, &e.field),
            "field {:?} is neither a schema path nor a key of the file: {e}",
            e.field
        );
    }
    let lines = text.matches('\n').count() + 1;
    prop_assert!(
        (1..=lines).contains(&e.line) && e.column >= 1,
        "line {} of {lines}: {e}",
        e.line
    );
    let shown = e.to_string();
    prop_assert!(
        shown.starts_with(&format!("{FILE}:{}:{}: ", e.line, e.column))
            && shown.ends_with(&format!("{}: {}", e.field, e.rule)),
        "{shown}"
    );
    Ok(())
}

fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME`, matched exactly by the templates.
fn is_iam_user_arn(s: &str) -> bool {
    let Some(rest) = ["arn:aws:", "arn:aws-cn:", "arn:aws-us-gov:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, user)) = rest
        .strip_prefix("iam::")
        .and_then(|r| r.split_once(":user/"))
    else {
        return false;
    };
    is_account(account)
        && !user.is_empty()
        && user.split('/').all(|p| !p.is_empty())
        && !user.contains(['*', '?', '$', '"', '\'', '\\'])
}

/// `arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/`: one role's sessions, never a wider prefix.
fn is_session_prefix(s: &str) -> bool {
    let Some(rest) = ["arn:aws:", "arn:aws-cn:", "arn:aws-us-gov:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, role)) = rest
        .strip_prefix("sts::")
        .and_then(|r| r.split_once(":assumed-role/"))
    else {
        return false;
    };
    let Some(name) = role.strip_suffix('/') else {
        return false;
    };
    is_account(account)
        && (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn is_policy_name(s: &str) -> bool {
    (1..=128).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// What a loaded config guarantees to the rest of the provisioner.
fn check_valid(c: &Config) -> Result<(), TestCaseError> {
    let p = &c.project;
    prop_assert!(
        (1..=32).contains(&p.name.len())
            && p.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "project.name {:?}",
        p.name
    );
    prop_assert!(is_region_name(&p.region), "project.region {:?}", p.region);
    prop_assert!(is_account(&p.account_id), "{:?}", p.account_id);
    prop_assert!(c.events.is_some() || c.graphql.is_some() || c.iot.is_some());

    for (k, v) in c.resource_tags() {
        prop_assert!((1..=128).contains(&k.chars().count()), "tag key {k:?}");
        prop_assert!(v.chars().count() <= 256, "tag {k:?} value {v:?}");
    }
    prop_assert!(
        c.tags
            .keys()
            .all(|k| !k.starts_with("aws:") && !k.starts_with("groupcast:"))
    );

    let principals = c.publisher_principals();
    prop_assert_eq!(
        principals.len(),
        1 + c.publisher.extra_principal_arns.len(),
        "a configured principal was dropped"
    );
    prop_assert_eq!(
        &principals[0],
        &format!(
            "arn:{}:sts::{}:assumed-role/{}-publisher/",
            p.partition(),
            p.account_id,
            p.name
        )
    );
    for principal in &principals {
        prop_assert!(
            is_session_prefix(principal) || is_iam_user_arn(principal),
            "publisher principal {principal:?} is neither one role's session prefix nor an IAM user ARN"
        );
    }

    if let Some(iot) = &c.iot {
        let mapped = c.iot_groups();
        prop_assert_eq!(mapped.len(), iot.groups.len(), "an IoT group was dropped");
        prop_assert!(!mapped.is_empty());
        let mut names = BTreeSet::new();
        for (g, m) in iot.groups.iter().zip(&mapped) {
            prop_assert_eq!(&m.group, g);
            prop_assert!(groupcast::is_valid_segment(&m.level), "{m:?}");
            prop_assert_eq!(groupcast::decode_segment(&m.level), Some(g.clone()));
            prop_assert!(
                is_policy_name(&m.policy_name),
                "IoT group {g:?} has no valid policy name: {:?}",
                m.policy_name
            );
            prop_assert!(m.policy_name.contains(&m.level));
            prop_assert!(
                names.insert(m.policy_name.to_ascii_lowercase()),
                "two groups share policy {:?} (up to case)",
                m.policy_name
            );
        }
        let prefix_ok = iot.topic_prefix.split('/').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        });
        prop_assert!(prefix_ok, "iot.topic_prefix {:?}", iot.topic_prefix);
    }

    let providers_ok = |modes: &[AuthMode], auth: &AuthProviders| {
        !modes.is_empty()
            && modes.iter().collect::<BTreeSet<_>>().len() == modes.len()
            && modes.iter().all(|m| auth.modes().contains(m))
    };
    let auth_ok = |auth: &AuthProviders| {
        auth.oidc.as_ref().is_none_or(|o| {
            o.issuer.starts_with("https://")
                && o.client_id.as_deref().is_some_and(|c| !c.trim().is_empty())
                && is_claim(&o.groups_claim)
        }) && auth
            .lambda
            .as_ref()
            .is_none_or(|l| l.result_ttl_seconds <= AUTHORIZER_TTL_MAX_SECONDS)
            && auth
                .api_key
                .as_ref()
                .is_none_or(|k| (1..=365).contains(&k.expires_in_days))
    };
    if let Some(ev) = &c.events {
        for modes in [
            &ev.connection_auth_modes,
            &ev.default_publish_auth_modes,
            &ev.default_subscribe_auth_modes,
        ] {
            prop_assert!(providers_ok(modes, &ev.auth), "{modes:?} / {:?}", ev.auth);
        }
        prop_assert!(auth_ok(&ev.auth), "{:?}", ev.auth);
        prop_assert!(!ev.namespaces.is_empty());
        let mut seen = BTreeSet::new();
        for ns in &ev.namespaces {
            prop_assert!(groupcast::is_valid_segment(&ns.name), "{:?}", ns.name);
            prop_assert!(seen.insert(ns.name.to_ascii_lowercase()), "{:?}", ns.name);
            prop_assert!(!ns.publish_iam_only || ev.auth.iam.is_some());
            let epoch_ok = ns
                .epoch_seconds
                .is_none_or(|p| ns.group_check && groupcast::epoch::check_period(p).is_ok());
            prop_assert!(epoch_ok, "{:?}", ns);
        }
    }
    if let Some(gq) = &c.graphql {
        prop_assert!(providers_ok(&gq.subscriber_auth_modes, &gq.auth));
        prop_assert!(auth_ok(&gq.auth), "{:?}", gq.auth);
        prop_assert!(is_claim(&gq.groups_claim), "{:?}", gq.groups_claim);
        prop_assert!((1..=SUBSCRIPTION_MAX_GROUPS).contains(&gq.max_groups_per_subscription));
    }

    // Whatever loads renders: no artifact fails after the config was accepted.
    let rendered = Renderer::embedded()
        .and_then(|r| r.render(c, &Ids::default()))
        .map_err(|e| TestCaseError::fail(format!("a valid config does not render: {e}")))?;
    for m in c.iot_groups() {
        let path = format!("iot/{}.json", m.policy_name);
        prop_assert!(rendered.get(&path).is_some(), "no {path}");
    }
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match Config::parse(Path::new(FILE), text) {
        Ok(c) => check_valid(&c),
        Err(e) => check_error(text, &e),
    }
}

/// The example with `key = …` (the first such line at or after the line holding `after`)
/// replaced by `key = value`.
fn set(text: &str, after: &str, key: &str, value: &str) -> String {
    let start = text.find(after).expect("anchor in the example");
    let rest = &text[start..];
    let at = start
        + rest
            .find(&format!("\n{key} = "))
            .expect("key in the example")
        + 1;
    let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
    format!("{}{key} = {value}{}", &text[..at], &text[end..])
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A group name: any unicode, or the characters groups use.
fn group() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{1,12}",
        "[a-zA-Z0-9_ .-]{1,16}",
        "x--[a-zA-Z0-9-]{0,8}",
        select(vec![
            "admins", "Admins", "team-a", "Team_B", "é", "a/b", "+", "#", "*"
        ])
        .prop_map(str::to_owned),
    ]
}

/// An extra publisher principal: valid role and user ARNs, and near misses.
fn principal() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z0-9_+=,.@-]{1,70}";
    prop_oneof![
        30 => (
            select(vec!["aws", "aws-cn", "aws-us-gov"]),
            "[0-9]{12}",
            select(vec!["role", "user"]),
            prop::collection::vec("[a-zA-Z0-9_+=,.@-]{1,64}", 1..3),
        )
            .prop_map(|(p, a, kind, path)| format!("arn:{p}:iam::{a}:{kind}/{}", path.join("/"))),
        2 => (
            select(vec!["aws", "aws-cn", "aws-us-gov", "aws-x", ""]),
            "[0-9]{11,13}",
            select(vec!["role", "user", "group", "assumed-role"]),
            prop::collection::vec(name, 1..3),
            select(vec!["", "/", "//"]),
        )
            .prop_map(|(p, a, kind, path, tail)| format!(
                "arn:{p}:iam::{a}:{kind}/{}{tail}",
                path.join("/")
            )),
        1 => "arn:aws:(iam|sts)::123456789012:\\PC{0,20}",
        1 => text(),
    ]
}

proptest! {
    #![proptest_config(runner(256))]

    #[test]
    fn the_mutated_example_never_panics_and_errors_name_a_real_key_and_a_rule(
        mutations in prop::collection::vec(mutation(), 1..5)
    ) {
        let mut text = EXAMPLE.to_owned();
        for m in &mutations {
            text = apply(&text, m);
        }
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_name_a_real_key_and_a_rule(
        lines in prop::collection::vec(prop_oneof![
            3 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
            2 => select(HEADERS).prop_map(str::to_owned),
            1 => "\\PC{0,30}",
            1 => ".{0,10}",
        ], 0..12)
    ) {
        check(&lines.join("\n"))?;
    }

    #[test]
    fn plausible_configs_that_load_keep_every_invariant_and_errors_name_their_field(
        groups in prop::collection::vec(group(), 0..6),
        arns in prop::collection::vec(principal(), 0..4),
        pattern in prop_oneof![
            2 => Just(None),
            4 => "[a-zA-Z0-9_+=,.@-]{0,20}\\{group\\}[a-zA-Z0-9_+=,.@-]{0,20}".prop_map(Some),
            1 => text().prop_map(Some),
        ],
        prefix in prop_oneof![
            10 => "[a-zA-Z0-9_.-]{1,10}(/[a-zA-Z0-9_.-]{1,6}){0,6}",
            1 => text(),
        ],
        namespaces in prop::collection::vec(prop_oneof![
            10 => "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?",
            1 => text(),
        ], 0..4),
        tags in prop::collection::vec(prop_oneof![
            10 => ("[a-zA-Z0-9 +=._:/-]{1,20}", "[a-zA-Z0-9 +=._:/@-]{0,30}"),
            1 => (text(), text()),
        ], 0..3),
        name in prop_oneof![10 => "[a-zA-Z0-9-]{1,32}", 1 => text()],
        region in prop_oneof![
            10 => select(vec!["us-east-1", "cn-north-1", "us-gov-west-1", "eu-central-2"]).prop_map(str::to_owned),
            1 => text(),
        ],
        claim in prop_oneof![10 => "[A-Za-z0-9:._-]{1,10}", 1 => text()],
        max_groups in prop_oneof![10 => 1usize..=200, 1 => 0usize..260],
    ) {
        let mut text = set(EXAMPLE, "[iot]", "groups", &toml_list(&groups));
        text = set(&text, "[iot]", "topic_prefix", &toml_str(&prefix));
        text = match &pattern {
            Some(p) => set(&text, "[iot]", "policy_name_pattern", &toml_str(p)),
            None => text.replace("policy_name_pattern = \"acme-live-{group}\"", ""),
        };
        text = set(&text, "[project]", "name", &toml_str(&name));
        text = set(&text, "[project]", "region", &toml_str(&region));
        // The example's authorizer lives in the project's region and partition (when the
        // generated region is one a region rule could accept at all).
        if !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let partition = crate::config::partition_of(&region);
            text = text.replace(
                "arn:aws:lambda:us-east-1:",
                &format!("arn:{partition}:lambda:{region}:"),
            );
        }
        text = set(&text, "[graphql]", "groups_claim", &toml_str(&claim));
        text = set(&text, "[graphql]", "max_groups_per_subscription", &max_groups.to_string());
        let mut extra = String::new();
        for (k, v) in &tags {
            let _ = writeln!(extra, "{} = {}", toml_str(k), toml_str(v));
        }
        text = text.replace("[tags]", &format!("[tags]\n{extra}"));
        // The example has a [publisher] table already: the generated principals go into it.
        text = if text.contains("\n[publisher]\n") {
            text.replacen("\n[publisher]\n", &format!("\n[publisher]\nextra_principal_arns = {}\n", toml_list(&arns)), 1)
        } else {
            format!("{text}\n[publisher]\nextra_principal_arns = {}\n", toml_list(&arns))
        };
        for ns in &namespaces {
            let _ = write!(text, "\n[[events.namespaces]]\nname = {}\n", toml_str(ns));
        }
        match Config::parse(Path::new(FILE), &text) {
            Ok(c) => {
                prop_assert_eq!(&c.iot.as_ref().map(|i| i.groups.clone()), &Some(groups));
                prop_assert_eq!(&c.publisher.extra_principal_arns, &arns);
                check_valid(&c)?;
            }
            Err(e) => {
                check_error(&text, &e)?;
                // Only what was generated can be wrong: the rest is the valid example. A tag key
                // given twice is the TOML parser's "duplicate key", which names the line only.
                let generated = ["iot.", "publisher.", "tags", "events.namespaces", "project.",
                    "graphql.groups_claim", "graphql.max_groups_per_subscription", "(file)"];
                prop_assert!(
                    generated.iter().any(|g| e.field.starts_with(g)),
                    "an error outside the generated fields: {e}"
                );
            }
        }
    }
}

#[test]
fn a_key_holding_a_dot_or_nothing_is_named_in_quotes_so_its_path_names_one_key() {
    let parse = |text: &str| Config::parse(Path::new(FILE), text).unwrap_err();
    // Found by the_mutated_example_…: `"." = ""` in [events] was reported as `events..`.
    let e = parse(&EXAMPLE.replace(
        "[events.auth.cognito]",
        "\".\" = \"\"\n\n[events.auth.cognito]",
    ));
    assert_eq!(e.field, r#"events.".""#);
    assert!(e.rule.starts_with("unknown field `.`"), "{e}");
    assert_eq!(e.line, 20);
    // Found by arbitrary_text_…: an empty key was reported with an empty field.
    let e = parse(&format!("\"\" = 1\n{EXAMPLE}"));
    assert_eq!((e.field.as_str(), e.line), (r#""""#, 1));
    // A tag key with a dot is one key, in type errors and in rule errors alike, and located.
    for value in ["5", "\"R&D\""] {
        let e = parse(&EXAMPLE.replace("team = \"platform\"", &format!("\"a.b\" = {value}")));
        assert_eq!((e.field.as_str(), e.line), (r#"tags."a.b""#, 11), "{e}");
    }
    assert_eq!(
        parse_path(r#"events."a.b\"c\\"[2].x"#),
        [
            Step::Key("events".into()),
            Step::Key("a.b\"c\\".into()),
            Step::Index(2),
            Step::Key("x".into()),
        ]
    );
}
