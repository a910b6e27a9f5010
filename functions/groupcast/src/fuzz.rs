//! Property tests ("fuzzing" on stable Rust, inside `cargo test`) of every parser that takes
//! outside input: the group rule, the AppSync Events / GraphQL publish responses, WebSocket
//! answers, the IoT topic rules, the configuration (variables and outputs JSON) and the
//! publisher Lambda's event decoders. Properties: nothing panics; every error names the field (or
//! the document) and the rule; `decode_segment(group_segment(g)) == Some(g)`.
//!
//! Cases are bounded and the seed is fixed, so a run is reproducible; `PROPTEST_CASES` raises the
//! count for a longer local run.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Value, json};

use crate::error::Error;
use crate::group::{decode_segment, group_segment, is_valid_segment};

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6772_6f75_7063_6173),
        ..Config::default()
    }
}

/// Any JSON value, up to a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names that the parsers know, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "successful",
            "failed",
            "errors",
            "index",
            "identifier",
            "code",
            "message",
            "errorCode",
            "errorMessage",
            "errorType",
            "data",
            "publish",
            "topic",
            "groups",
            "uuid",
            "type",
            "id",
            "transports",
            "connectionTimeoutMs",
            "payload",
            "Records",
            "messageId",
            "body",
            "detail",
            "detail-type",
            "source",
            "time",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z-]{1,8}",
    ]
}

/// Well-formed publish responses with arbitrary indexes and codes, and noise.
fn events_response() -> impl Strategy<Value = Vec<u8>> {
    let entry = (0usize..8, json_value(), json_value(), any::<bool>()).prop_map(
        |(index, code, message, spelling)| {
            if spelling {
                json!({"identifier": "x", "index": index, "code": code, "message": message})
            } else {
                json!({"identifier": "x", "index": index, "errorCode": code, "errorMessage": message})
            }
        },
    );
    let ok = (0usize..8).prop_map(|i| json!({"identifier": format!("id{i}"), "index": i}));
    prop_oneof![
        (
            prop::collection::vec(ok, 0..6),
            prop::collection::vec(entry, 0..6)
        )
            .prop_map(|(s, f)| json!({"successful": s, "failed": f})
                .to_string()
                .into_bytes()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_of_encode_is_the_group_and_the_segment_is_valid(g in "\\PC{0,24}|[a-zA-Z0-9_ .-]{0,24}") {
        match group_segment(&g) {
            Ok(seg) => {
                prop_assert!(is_valid_segment(&seg), "{seg:?}");
                prop_assert_eq!(decode_segment(&seg), Some(g));
            }
            Err(e) => {
                // The error says which rule: empty, or too long once encoded (naming the group).
                let text = e.to_string();
                prop_assert!(g.is_empty() || text.contains("at most"), "{text}");
                prop_assert!(text.contains("group"), "{text}");
            }
        }
    }

    #[test]
    fn decode_segment_never_panics_and_only_decodes_canonical_segments(s in "\\PC{0,60}|x--[a-zA-Z0-9-]{0,40}|[a-zA-Z0-9-]{1,50}") {
        if let Some(g) = decode_segment(&s) {
            // Injective: the group decoded from a segment maps back to exactly that segment.
            prop_assert_eq!(group_segment(&g).ok(), Some(s));
        }
    }

    #[test]
    fn events_response_parser_never_panics_and_answers_every_event(body in events_response(), n in 0usize..7) {
        match crate::events::parse_response(&body, n) {
            Ok(per_event) => {
                prop_assert_eq!(per_event.len(), n);
                for r in per_event.iter().filter_map(|r| r.as_ref().err()) {
                    let text = r.to_string();
                    prop_assert!(
                        matches!(r, Error::EventFailed { .. })
                            || text.contains("neither as successful nor as failed"),
                        "{text}"
                    );
                }
            }
            Err(Error::Protocol(m)) => {
                prop_assert!(m.starts_with("AppSync Events publish response is not {successful, failed}: "), "{m}");
            }
            Err(Error::Graphql(errors)) => prop_assert!(!errors.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn graphql_response_parser_never_panics_and_names_what_is_missing(v in json_value(), raw in prop::collection::vec(any::<u8>(), 0..32)) {
        for body in [v.to_string().into_bytes(), raw.clone()] {
            match crate::graphql::parse_response(&body) {
                Ok(_) => {}
                Err(Error::Protocol(m)) => prop_assert!(
                    m.starts_with("GraphQL response: ") || m.contains("data.publish"),
                    "{m}"
                ),
                Err(Error::Graphql(errors)) => prop_assert!(!errors.is_empty()),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
            let _ = crate::graphql::errors_in(&body);
        }
    }

    #[test]
    fn iot_topic_rules_never_panic_and_name_the_field(prefix in "\\PC{0,40}", topic in "\\PC{0,300}", len in 0usize..200_000) {
        if let Err(e) = crate::iot::check_prefix(&prefix) {
            prop_assert!(e.to_string().starts_with("invalid iot.topic_prefix: "), "{e}");
        }
        if let Err(e) = crate::iot::check("messages[0].data", &topic, len) {
            let text = e.to_string();
            prop_assert!(text.starts_with("invalid messages[0].data: ") && text.contains("limits::"), "{text}");
        }
    }

    #[test]
    fn config_variables_never_panic_and_errors_name_the_variable(
        name in prop::sample::select(vec![
            "GROUPCAST_EVENTS_URL", "GROUPCAST_EVENTS_NAMESPACE", "GROUPCAST_EVENTS_REALTIME_URL",
            "GROUPCAST_GRAPHQL_URL", "GROUPCAST_IOT_ENDPOINT", "GROUPCAST_IOT_TOPIC_PREFIX",
            "GROUPCAST_REGION", "GROUPCAST_AUTH", "GROUPCAST_API_KEY", "GROUPCAST_TRANSPORTS",
            "GROUPCAST_DEADLINE_MS", "GROUPCAST_MAX_ATTEMPTS", "GROUPCAST_CONCURRENCY",
            "GROUPCAST_RETRY_BASE_MS", "GROUPCAST_RETRY_MAX_MS", "GROUPCAST_ATTEMPT_TIMEOUT_MS",
        ]),
        value in "\\PC{0,40}|[0-9]{0,22}|-?[0-9]{1,5}",
    ) {
        let var = |k: &str| (k == name).then(|| value.clone());
        if let Err(e) = crate::PublisherBuilder::default().env_with(var) {
            prop_assert!(e.to_string().contains(name), "{name}={value:?}: {e}");
        }
    }

    #[test]
    fn outputs_json_never_panics_and_errors_name_the_document(v in json_value(), raw in "\\PC{0,40}") {
        for text in [v.to_string(), raw.clone()] {
            if let Err(e) = crate::Outputs::from_json(&text) {
                prop_assert!(e.to_string().starts_with("configuration: outputs JSON: "), "{e}");
            }
        }
    }
}

#[cfg(feature = "websocket")]
proptest! {
    #![proptest_config(config())]

    #[test]
    fn websocket_answers_never_panic_and_publish_success_answers_every_event(v in json_value(), body in events_response(), n in 0usize..7) {
        use crate::retry::AttemptError;
        let mut success: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut success {
            m.insert("type".into(), json!("publish_success"));
        }
        for text in [v.to_string(), success.to_string(), String::from_utf8_lossy(&body).into_owned()] {
            match crate::events_ws::classify_answer(&text, n) {
                Ok(per_event) => prop_assert_eq!(per_event.len(), n),
                Err(AttemptError::Retryable(why)) => prop_assert!(!why.is_empty()),
                Err(AttemptError::Fatal(e)) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}

#[cfg(feature = "lambda")]
proptest! {
    #![proptest_config(config())]

    #[test]
    fn message_decoder_never_panics_and_errors_name_the_field_and_the_rule(v in json_value(), topic in "\\PC{0,20}", groups in prop::collection::vec("\\PC{0,8}", 0..3), extra in json_value()) {
        let fields = ["topic", "data", "groups", "transports", "id"];
        let shaped = json!({"topic": topic, "groups": groups, "data": extra.clone(), "transports": extra.clone()});
        for input in [v.clone(), shaped, json!({"topic": "t", "groups": ["g"], "id": extra.clone()})] {
            let is_object = input.is_object();
            if let Err(e) = crate::lambda::parse_message(input, None) {
                let (field, rule) = e.split_once(": ").unwrap_or(("", ""));
                prop_assert!(!rule.is_empty(), "no rule in {e:?}");
                if is_object {
                    let name = field.trim_start_matches('.');
                    prop_assert!(field.starts_with('.') && !name.is_empty(), "no field in {e:?}");
                    let known = fields.iter().any(|f| name.starts_with(f));
                    prop_assert!(known || rule.starts_with("unknown field"), "{e:?}");
                } else {
                    prop_assert!(field.is_empty() && rule.contains("JSON object"), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn lambda_event_decoders_never_panic(v in json_value(), records in prop::collection::vec(json_value(), 0..3), detail in json_value()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let p = Refuser;
        for event in [
            v.clone(),
            json!({"Records": records}),
            json!({"detail-type": "t", "source": "s", "detail": detail}),
            json!({"detail-type": v.clone(), "detail": detail}),
        ] {
            if let Err(e) = rt.block_on(crate::lambda::handle(&p, event)) {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                prop_assert!(["InvalidInput", "PublishFailed", "PublishError"].contains(&e.error_type()));
            }
        }
    }
}

/// A publisher that refuses every call, so the decoders run without a network.
#[cfg(feature = "lambda")]
struct Refuser;

#[cfg(feature = "lambda")]
impl crate::Publish for Refuser {
    async fn publish_all(
        &self,
        _: &[crate::Message],
        _: &crate::PublishOptions,
    ) -> Result<crate::PublishReport, Error> {
        Err(Error::Credentials("no network in property tests".into()))
    }
}
