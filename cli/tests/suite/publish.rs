//! `groupcast publish` through the real binary against the sink: the report lines, the exit codes,
//! input refused before anything is sent, and where the configuration comes from.

use serde_json::{Value, json};

use crate::sink::{Mode, Sink};
use crate::util::Scratch;

/// Flags that point `publish` at the sink with an API key.
fn to_sink(sink: &Sink) -> Vec<String> {
    [
        "--events-url",
        &sink.url,
        "--events-namespace",
        "live",
        "--api-key",
        "da2-flag",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn args<'a>(base: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = vec!["publish"];
    v.extend(base.iter().map(String::as_str));
    v.extend_from_slice(more);
    v
}

#[test]
fn every_delivery_succeeding_prints_one_json_line_per_group_and_exits_0() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-ok");
    let base = to_sink(&sink);
    let id = "0b1a4b5e-58f4-4a6e-9d7c-8d1f4d3c2b1a";
    let run = s.run(
        &args(
            &base,
            &[
                "--topic",
                "news",
                "--group",
                "team-a",
                "--group",
                "Team_B",
                "--data",
                r#"{"text":"hi","n":1}"#,
                "--id",
                id,
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.describe());
    for (line, group) in lines.iter().zip(["team-a", "Team_B"]) {
        assert_eq!(line["group"], group);
        assert_eq!(line["transport"], "events");
        assert_eq!(line["message_id"], id);
        assert_eq!(line["outcome"]["status"], "delivered");
        assert_eq!(line["attempts"], 1);
        assert!(
            line["outcome"]["identifier"]
                .as_str()
                .unwrap()
                .starts_with("/live/")
        );
    }
    assert_eq!(
        sink.channels(),
        ["/live/team-a/news", "/live/x--Team-5fB/news"],
        "one request per group channel, the group rule applied"
    );
    for r in sink.requests() {
        assert_eq!(r.path, "/event");
        assert_eq!(r.api_key.as_deref(), Some("da2-flag"));
        let event: Value = serde_json::from_str(r.body["events"][0].as_str().unwrap()).unwrap();
        assert_eq!(
            event,
            json!({"id": id, "topic": "news", "data": {"text": "hi", "n": 1}, "groups": ["team-a", "Team_B"]})
        );
    }
}

#[test]
fn a_failed_group_is_reported_failed_and_the_exit_code_is_2() {
    let sink = Sink::start(Mode::FailSegment("team-b"));
    let s = Scratch::new("pub-some");
    let base = to_sink(&sink);
    let run = s.run(
        &args(
            &base,
            &[
                "--topic", "news", "--group", "team-a", "--group", "team-b", "--data", "1",
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 2, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines[0]["group"], "team-a");
    assert_eq!(lines[0]["outcome"]["status"], "delivered");
    assert_eq!(lines[1]["group"], "team-b");
    assert_eq!(lines[1]["outcome"]["status"], "failed");
    assert_eq!(lines[1]["outcome"]["retryable"], false);
    assert!(
        lines[1]["outcome"]["error"]
            .as_str()
            .unwrap()
            .contains("the handler refused this channel"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr().contains("1 of 2 deliveries failed"),
        "{}",
        run.describe()
    );
}

#[test]
fn a_401_fails_every_delivery_without_a_retry_and_exits_2() {
    let sink = Sink::start(Mode::Unauthorized);
    let s = Scratch::new("pub-401");
    let base = to_sink(&sink);
    let run = s.run(
        &args(
            &base,
            &[
                "--topic", "news", "--group", "team-a", "--group", "admins", "--data", "{}",
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 2, "{}", run.describe());
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["outcome"]["status"], "failed");
        assert_eq!(l["outcome"]["retryable"], false);
        assert!(
            l["outcome"]["error"].as_str().unwrap().contains("401"),
            "{l}"
        );
    }
    assert_eq!(sink.requests().len(), 2, "a 401 is never retried");
}

#[test]
fn the_table_format_shows_a_row_per_delivery_and_a_summary_without_colour_under_no_color() {
    let sink = Sink::start(Mode::FailSegment("team-b"));
    let s = Scratch::new("pub-table");
    let base = to_sink(&sink);
    let run = s.run(
        &args(
            &base,
            &[
                "--format", "table", "--topic", "news", "--group", "team-a", "--group", "team-b",
                "--data", "{}",
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 2, "{}", run.describe());
    let out = run.stdout();
    let rows: Vec<&str> = out.lines().collect();
    assert!(
        rows[0].starts_with("GROUP")
            && rows[0].contains("TRANSPORT")
            && rows[0].ends_with("DETAIL"),
        "{out}"
    );
    assert!(
        rows[1].starts_with("team-a") && rows[1].contains("delivered"),
        "{out}"
    );
    assert!(
        rows[2].starts_with("team-b") && rows[2].contains("FAILED"),
        "{out}"
    );
    assert!(rows[3].ends_with("1 of 2 deliveries failed"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "NO_COLOR=1: no escape codes: {out:?}"
    );
}

#[test]
fn data_comes_from_stdin_with_data_dash_and_from_a_file_with_data_file() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-stdin");
    let base = to_sink(&sink);
    let run = s.run_with_stdin(
        &args(&base, &["--topic", "t", "--group", "g", "--data", "-"]),
        &[],
        Some("{\"from\": \"stdin\"}\n"),
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let file = s.write("payload.json", r#"{"from": "file"}"#);
    let run = s.run(
        &args(
            &base,
            &[
                "--topic",
                "t",
                "--group",
                "g",
                "--data-file",
                file.to_str().unwrap(),
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let sent: Vec<Value> = sink
        .requests()
        .iter()
        .map(|r| serde_json::from_str(r.body["events"][0].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(sent[0]["data"], json!({"from": "stdin"}));
    assert_eq!(sent[1]["data"], json!({"from": "file"}));
}

/// Runs a bad invocation against a sink; asserts exit 1, `stderr_has` in stderr, nothing sent.
fn refused(more: &[&str], stderr_has: &[&str]) {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-bad");
    let base = to_sink(&sink);
    let run = s.run(&args(&base, more), &[]);
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
fn data_that_is_not_json_is_refused_naming_the_flag_and_nothing_is_sent() {
    refused(
        &["--topic", "t", "--group", "g", "--data", "{oops"],
        &["--data: not valid JSON"],
    );
    refused(
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--data-file",
            "missing.json",
        ],
        &["--data-file missing.json"],
    );
}

#[test]
fn a_missing_group_is_a_usage_error_naming_the_flag_and_nothing_is_sent() {
    refused(&["--topic", "t", "--data", "{}"], &["--group <GROUP>"]);
}

#[test]
fn an_unknown_transport_is_refused_with_the_known_ones_and_nothing_is_sent() {
    refused(
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--data",
            "{}",
            "--transport",
            "events,smoke",
        ],
        &[
            "--transport",
            "\"smoke\"",
            "expected one of events, events-ws, graphql, iot",
        ],
    );
}

#[test]
fn a_transport_without_an_endpoint_is_refused_naming_the_flag() {
    refused(
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--data",
            "{}",
            "--transport",
            "iot",
        ],
        &["--transport (transports): iot", "no endpoint configured"],
    );
}

#[test]
fn an_invalid_group_or_topic_names_the_flag_and_the_value() {
    refused(
        &[
            "--topic", "t", "--group", "ok", "--group", "", "--data", "{}",
        ],
        &["--group \"\":"],
    );
    refused(
        &["--topic", "a/b/c/d", "--group", "g", "--data", "{}"],
        &["--topic:", "4 segments"],
    );
}

/// An outputs file whose Events API is the sink, in namespace `ns`, with an API key.
fn outputs_json(sink: &Sink, ns: &str) -> String {
    json!({
        "version": 1,
        "region": "us-east-1",
        "events": {
            "apiId": "a", "apiArn": "arn:aws:appsync:us-east-1:123456789012:apis/a",
            "httpHost": sink.url, "realtimeHost": "",
            "namespaces": [{"name": ns, "arn": "n"}],
            "apiKey": "da2-outputs"
        }
    })
    .to_string()
}

#[test]
fn the_default_outputs_file_in_the_working_directory_configures_endpoint_namespace_and_key() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-outputs");
    s.write("groupcast.outputs.json", &outputs_json(&sink, "fromfile"));
    let run = s.run(
        &[
            "publish", "--auth", "api-key", "--topic", "t", "--group", "g", "--data", "{}",
        ],
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    assert_eq!(sink.channels(), ["/fromfile/g/t"]);
    assert_eq!(sink.requests()[0].api_key.as_deref(), Some("da2-outputs"));
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_outputs_file() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-precedence");
    let file = s.write("elsewhere.json", &outputs_json(&sink, "fromfile"));
    let env = [
        ("GROUPCAST_OUTPUTS", file.to_str().unwrap()),
        ("GROUPCAST_EVENTS_NAMESPACE", "fromenv"),
        ("GROUPCAST_AUTH", "api-key"),
        ("GROUPCAST_API_KEY", "da2-env"),
    ];
    let msg = ["--topic", "t", "--group", "g", "--data", "{}"];
    let mut a = vec!["publish"];
    a.extend_from_slice(&msg);
    let run = s.run(&a, &env);
    assert_eq!(run.code(), 0, "{}", run.describe());
    a.extend_from_slice(&["--events-namespace", "fromflag", "--api-key", "da2-flag"]);
    let run = s.run(&a, &env);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let seen: Vec<(String, Option<String>)> = sink
        .requests()
        .iter()
        .map(|r| {
            (
                r.body["channel"].as_str().unwrap().to_owned(),
                r.api_key.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/fromenv/g/t".to_owned(), Some("da2-env".to_owned())),
            ("/fromflag/g/t".to_owned(), Some("da2-flag".to_owned())),
        ]
    );
}

#[test]
fn a_token_is_sent_as_the_authorization_header() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-token");
    let run = s.run(
        &[
            "publish",
            "--events-url",
            &sink.url,
            "--events-namespace",
            "live",
            "--topic",
            "t",
            "--group",
            "g",
            "--data",
            "{}",
        ],
        &[("GROUPCAST_TOKEN", "eyJ.test.token")],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let r = &sink.requests()[0];
    assert_eq!(r.authorization.as_deref(), Some("eyJ.test.token"));
    assert_eq!(r.api_key, None);
}

#[test]
fn a_named_outputs_file_that_is_missing_is_an_error_naming_the_flag() {
    let s = Scratch::new("pub-nofile");
    let run = s.run(
        &[
            "publish",
            "--outputs",
            "nope.json",
            "--topic",
            "t",
            "--group",
            "g",
            "--data",
            "{}",
        ],
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(
        run.stderr().contains("--outputs nope.json"),
        "{}",
        run.describe()
    );
}

#[test]
fn without_any_configuration_the_error_says_what_to_set() {
    let s = Scratch::new("pub-noconfig");
    let run = s.run(
        &[
            "publish",
            "--api-key",
            "k",
            "--topic",
            "t",
            "--group",
            "g",
            "--data",
            "{}",
        ],
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.describe());
    let err = run.stderr();
    assert!(
        err.contains("no transport is configured")
            && err.contains("--events-url/GROUPCAST_EVENTS_URL")
            && err.contains("no groupcast.outputs.json here"),
        "{}",
        run.describe()
    );
}

#[test]
fn the_help_documents_the_precedence_the_variables_and_the_exit_codes() {
    let s = Scratch::new("help");
    let run = s.run(&["publish", "--help"], &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let help = run.stdout();
    for want in [
        "flags > GROUPCAST_* environment > outputs file",
        "[env: GROUPCAST_EVENTS_URL=]",
        "[env: GROUPCAST_TOKEN]",
        "--data-file",
    ] {
        assert!(
            help.contains(want),
            "publish --help lacks {want:?}:\n{help}"
        );
    }
    let help = s.run(&["--help"], &[]).stdout();
    assert!(help.contains("2 publish: a delivery failed"), "{help}");
}

/// The epoch of now at `period` seconds, and the next (a test may straddle a boundary).
fn epochs_now(period: u64) -> [u64; 2] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let n = groupcast::epoch::epoch_at(now, period);
    [n, n + 1]
}

/// Whether `channel` is `/{ns}/{seg}/t{N}/{topic}` with N the epoch of now (or the next).
fn in_current_epoch(channel: &str, head: &str, topic: &str, period: u64) -> bool {
    epochs_now(period)
        .iter()
        .any(|n| channel == format!("{head}/t{n}/{topic}"))
}

#[test]
fn publish_in_a_time_sliced_namespace_sends_to_the_current_epoch_and_shows_the_channel() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-epoch");
    let base = to_sink(&sink);
    let run = s.run(
        &args(
            &base,
            &[
                "--events-epoch-seconds",
                "60",
                "--topic",
                "news",
                "--group",
                "team-a",
                "--data",
                "{}",
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.describe());
    let channel = &sink.channels()[0];
    assert!(
        in_current_epoch(channel, "/live/team-a", "news", 60),
        "{channel}"
    );
    assert_eq!(run.json_lines()[0]["channel"], channel.as_str());
    // A topic with no room for the epoch is refused naming the flag, before anything is sent.
    let run = s.run(
        &args(
            &base,
            &[
                "--events-epoch-seconds",
                "60",
                "--topic",
                "a/b/c",
                "--group",
                "team-a",
                "--data",
                "{}",
            ],
        ),
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("--topic"), "{}", run.describe());
    assert!(
        run.stderr().contains("EPOCH_TOPIC_MAX_SEGMENTS"),
        "{}",
        run.describe()
    );
    assert_eq!(sink.channels().len(), 1);
}

#[test]
fn the_epoch_comes_from_the_outputs_file_and_the_variable_overrides_it() {
    let sink = Sink::start(Mode::AllOk);
    let s = Scratch::new("pub-epoch-outputs");
    let mut outputs: Value = serde_json::from_str(&outputs_json(&sink, "live")).unwrap();
    outputs["events"]["namespaces"][0]["epochSeconds"] = json!(300);
    s.write("groupcast.outputs.json", &outputs.to_string());
    let a = [
        "publish", "--auth", "api-key", "--topic", "t", "--group", "g", "--data", "{}",
    ];
    let run = s.run(&a, &[]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let run = s.run(&a, &[("GROUPCAST_EVENTS_EPOCH_SECONDS", "0")]);
    assert_eq!(run.code(), 0, "{}", run.describe());
    let channels: Vec<String> = sink
        .requests()
        .iter()
        .map(|r| r.body["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        in_current_epoch(&channels[0], "/live/g", "t", 300),
        "{channels:?}"
    );
    assert_eq!(channels[1], "/live/g/t", "0 turns epochs off");
    // A period outside the limits names the flag and the variable.
    let run = s.run(&a, &[("GROUPCAST_EVENTS_EPOCH_SECONDS", "1")]);
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(
        run.stderr()
            .contains("--events-epoch-seconds/GROUPCAST_EVENTS_EPOCH_SECONDS"),
        "{}",
        run.describe()
    );
    assert_eq!(sink.channels().len(), 2);
}
