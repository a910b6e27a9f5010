//! `groupcast revoke` through the real binary against the sink standing in for AppSync GraphQL
//! (and Events, which is never asked: it cannot revoke): the report lines, the exit codes (0, 5,
//! 6), and bad input refused before anything is sent.

use crate::sink::{Mode, Sink};
use crate::util::{Run, Scratch};

/// Static IAM credentials for the default chain (the environment provider): the revoke mutation
/// is IAM-only, and the sink does not check signatures.
const IAM_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ),
];

/// `groupcast revoke` with the sink as the GraphQL (and Events) endpoint, IAM, region us-east-1.
fn revoke(sink: &Sink, more: &[&str]) -> Run {
    let s = Scratch::new("revoke");
    let mut args = vec![
        "revoke",
        "--graphql-url",
        &sink.url,
        "--events-url",
        &sink.url,
        "--events-namespace",
        "live",
        "--region",
        "us-east-1",
    ];
    args.extend_from_slice(more);
    s.run(&args, IAM_ENV)
}

#[test]
fn a_graphql_revocation_sends_the_user_and_groups_signed_prints_one_line_and_exits_0() {
    let sink = Sink::start(Mode::GraphqlRevoked);
    let run = revoke(
        &sink,
        &[
            "--user",
            "sub-123",
            "--group",
            "team-a",
            "--group",
            "Team_B",
            "--transport",
            "graphql",
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert_eq!(lines[0]["transport"], "graphql");
    assert_eq!(lines[0]["user"], "sub-123");
    assert_eq!(lines[0]["groups"], serde_json::json!(["team-a", "Team_B"]));
    assert_eq!(lines[0]["outcome"]["status"], "invalidated");
    assert_eq!(lines[0]["attempts"], 1);
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].path, "/graphql");
    let query = reqs[0].body["query"].as_str().unwrap_or_default();
    assert!(
        query.contains("revoke("),
        "not the revoke mutation: {query}"
    );
    assert_eq!(
        reqs[0].body["variables"],
        serde_json::json!({"userId": "sub-123", "groups": ["team-a", "Team_B"]})
    );
    let auth = reqs[0].authorization.as_deref().unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "SigV4-signed with the chain's credentials: {auth}"
    );
    assert!(reqs[0].api_key.is_none());
}

#[test]
fn a_graphql_error_reports_the_transport_failed_and_exits_5() {
    let sink = Sink::start(Mode::GraphqlError);
    let run = revoke(
        &sink,
        &[
            "--user",
            "sub-123",
            "--group",
            "team-a",
            "--transport",
            "graphql",
        ],
    );
    assert_eq!(run.code(), 5, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    assert_eq!(lines[0]["outcome"]["status"], "failed");
    assert_eq!(lines[0]["outcome"]["retryable"], false);
    assert!(
        lines[0]["outcome"]["error"]
            .as_str()
            .unwrap()
            .contains("Not Authorized to access revoke"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr().contains("revoke failed on 1 of 1 transports"),
        "{}",
        run.describe()
    );
}

#[test]
fn events_cannot_revoke_so_the_bound_goes_to_stderr_and_the_exit_code_is_6_not_0() {
    let sink = Sink::start(Mode::GraphqlRevoked);
    let run = revoke(
        &sink,
        &[
            "--user",
            "sub-123",
            "--group",
            "team-a",
            "--transport",
            "events,graphql",
        ],
    );
    assert_eq!(run.code(), 6, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.describe());
    assert_eq!(lines[0]["transport"], "events");
    assert_eq!(lines[0]["outcome"]["status"], "not_supported");
    assert_eq!(lines[0]["attempts"], 0);
    assert_eq!(lines[1]["outcome"]["status"], "invalidated");
    let err = run.stderr();
    assert!(
        err.contains("groupcast: events: not revoked: AppSync Events cannot close a subscription from the server")
            && err.contains("24 hours"),
        "{}",
        run.describe()
    );
    assert!(
        sink.requests().iter().all(|r| r.path == "/graphql"),
        "nothing is sent to Events: {:?}",
        sink.requests()
    );
}

#[test]
fn a_failure_wins_over_events_not_supported_and_the_exit_code_is_5() {
    let sink = Sink::start(Mode::GraphqlError);
    let run = revoke(
        &sink,
        &[
            "--user",
            "sub-123",
            "--group",
            "team-a",
            "--transport",
            "events,graphql",
        ],
    );
    assert_eq!(run.code(), 5, "{}", run.describe());
}

#[test]
fn the_table_format_shows_a_row_per_transport_and_says_what_was_not_revoked() {
    let sink = Sink::start(Mode::GraphqlRevoked);
    let run = revoke(
        &sink,
        &[
            "--format",
            "table",
            "--user",
            "sub-123",
            "--group",
            "team-a",
            "--transport",
            "events,graphql",
        ],
    );
    assert_eq!(run.code(), 6, "{}", run.describe());
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TRANSPORT"), "{out}");
    assert!(
        lines[1].contains("events") && lines[1].contains("NOT SUPPORTED"),
        "{out}"
    );
    assert!(
        lines[2].contains("graphql") && lines[2].contains("invalidated"),
        "{out}"
    );
    assert!(
        lines[3].contains("user sub-123 from team-a: 1 of 2 transports cannot revoke"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "no colour under NO_COLOR: {out}");
}

/// A bad invocation: exit 1, `stderr_has` in stderr, no report, nothing sent.
fn refused(more: &[&str], stderr_has: &[&str]) {
    let sink = Sink::start(Mode::GraphqlRevoked);
    let run = revoke(&sink, more);
    assert_eq!(run.code(), 1, "{}", run.describe());
    for want in stderr_has {
        assert!(
            run.stderr().contains(want),
            "stderr lacks {want:?}: {}",
            run.describe()
        );
    }
    assert_eq!(run.stdout(), "", "no report for refused input");
    assert!(
        sink.requests().is_empty(),
        "nothing may be sent: {:?}",
        sink.requests()
    );
}

#[test]
fn a_missing_user_or_group_is_a_usage_error_naming_the_flag_and_nothing_is_sent() {
    refused(&["--group", "team-a"], &["--user <SUB>"]);
    refused(&["--user", "sub-123"], &["--group <GROUP>"]);
}

#[test]
fn a_blank_user_or_a_bad_group_names_the_flag_and_nothing_is_sent() {
    refused(
        &["--user", "  ", "--group", "team-a"],
        &["--user:", "not blank"],
    );
    refused(
        &["--user", "sub-123", "--group", "team-a", "--group", ""],
        &["--group \"\":", "1-256 characters"],
    );
    let long = "g".repeat(257);
    refused(
        &["--user", "sub-123", "--group", &long],
        &["--group \"ggg", "1-256 characters"],
    );
}

#[test]
fn an_unknown_transport_is_refused_naming_the_flag_and_nothing_is_sent() {
    refused(
        &["--user", "u", "--group", "g", "--transport", "smoke"],
        &["--transport", "\"smoke\""],
    );
}
