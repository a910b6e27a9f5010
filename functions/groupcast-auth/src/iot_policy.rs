//! The IoT group policy as the custom authorizer (`iot.auth = "custom-authorizer"`) applies it,
//! without a template engine in the Lambda.
//!
//! `templates/iot/group-policy.json.tera` stays the one statement of what a group grants. The
//! provisioner renders it ONCE per project with the group's topic level and the client id left as
//! placeholders ([`GROUP_LEVEL_PLACEHOLDER`], [`CLIENT_ID_PLACEHOLDER`]) and hands the document to
//! the iot-authorizer in [`POLICY_ENV`]. At each connect and refresh the Lambda only puts the
//! user's values in: the group's level is `groupcast::group_segment` (1-50 of `[A-Za-z0-9-]`),
//! the client id passes [`validate_client_id`] first. Neither alphabet holds `{` or `}`, and the
//! substitution is one pass, so a value can never produce or hit a placeholder.
//! (Until issue 14's size work the Lambda linked tera and rendered the template itself: 450 KB of
//! zip over AWS's 3.5 MB target, BENCHMARKS.md.)

use serde_json::Value;

/// `GROUPCAST_IOT_POLICY`: the group policy rendered with placeholders (JSON text).
pub const POLICY_ENV: &str = "GROUPCAST_IOT_POLICY";
/// Stands for the client id (the verified token's `sub`) in [`POLICY_ENV`].
pub const CLIENT_ID_PLACEHOLDER: &str = "{client_id}";
/// Stands for the group's topic level (`groupcast::group_segment`) in [`POLICY_ENV`].
pub const GROUP_LEVEL_PLACEHOLDER: &str = "{group_level}";
/// The longest client id the policy is made for: IoT's client ids are at most 128 bytes, and the
/// `-…` suffix needs room (https://docs.aws.amazon.com/general/latest/gr/iot-core.html, "Client
/// ID size").
pub const CLIENT_ID_MAX: usize = 100;

/// The client-id rule of the custom authorizer's policy: 1-[`CLIENT_ID_MAX`] of
/// `[A-Za-z0-9_.:@=,-]`. No IoT policy wildcard (`*`, `?`), no policy variable (`$`), no MQTT
/// `+`/`#`, no `/`: a `sub` holding any of them is refused, never granted a wider client-id
/// pattern (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html).
///
/// # Errors
/// The rule, naming `iot.client_id`.
pub fn validate_client_id(id: &str) -> Result<(), String> {
    let ok = (1..=CLIENT_ID_MAX).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:@=,-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "iot.client_id: {:?} must be 1-{CLIENT_ID_MAX} of [A-Za-z0-9_.:@=,-]",
            id.chars().take(CLIENT_ID_MAX + 1).collect::<String>()
        ))
    }
}

/// The rendered group policy with its placeholders, checked once (at cold start).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyTemplate {
    statements: Vec<Value>,
}

impl PolicyTemplate {
    /// Parses the document the provisioner rendered: an IAM-style policy whose `Statement` list
    /// names [`CLIENT_ID_PLACEHOLDER`] and [`GROUP_LEVEL_PLACEHOLDER`], and no policy variable
    /// (`${…}`: the attachment mode's rendering, which would grant by Cognito identity instead).
    ///
    /// # Errors
    /// What is wrong with the document.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON text of a policy: {e}"))?;
        let Some(Value::Array(statements)) = doc.get("Statement") else {
            return Err("the policy has no Statement list".to_owned());
        };
        let mut strings = Vec::new();
        for s in statements {
            collect_strings(s, &mut strings);
        }
        if strings.iter().any(|s| s.contains("${")) {
            return Err(
                "the policy holds a policy variable (${…}): rendered for the attachment mode, not with the client-id placeholder"
                    .to_owned(),
            );
        }
        for p in [CLIENT_ID_PLACEHOLDER, GROUP_LEVEL_PLACEHOLDER] {
            if !strings.iter().any(|s| s.contains(p)) {
                return Err(format!("the policy never names {p}"));
            }
        }
        Ok(PolicyTemplate {
            statements: statements.clone(),
        })
    }

    /// The statements for `client_id` and `group`: the placeholders replaced, in every string.
    ///
    /// # Errors
    /// The client id breaks [`validate_client_id`], or the group has no topic level.
    pub fn statements(&self, client_id: &str, group: &str) -> Result<Vec<Value>, String> {
        validate_client_id(client_id)?;
        let level = groupcast::group_segment(group)
            .map_err(|e| format!("group {group:?} has no topic level: {e}"))?;
        Ok(self
            .statements
            .iter()
            .map(|s| substitute(s, client_id, &level))
            .collect())
    }
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn substitute(v: &Value, client_id: &str, level: &str) -> Value {
    match v {
        Value::String(s) => Value::String(replace_once(s, client_id, level)),
        Value::Array(a) => {
            Value::Array(a.iter().map(|v| substitute(v, client_id, level)).collect())
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), substitute(v, client_id, level)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One left-to-right pass: what is put in is never scanned again.
fn replace_once(s: &str, client_id: &str, level: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(CLIENT_ID_PLACEHOLDER) {
            out.push_str(client_id);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(GROUP_LEVEL_PLACEHOLDER) {
            out.push_str(level);
            rest = r;
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The template as the provisioner renders it for the Lambda (prefix `groupcast`,
    /// `us-east-1`, account 123456789012; provisioner/src/render.rs checks it stays so).
    pub(crate) const RENDERED: &str = include_str!("../tests/fixtures/iot-authorizer-policy.json");

    #[test]
    fn the_placeholders_are_replaced_in_one_pass_with_the_segment_and_the_checked_client_id() {
        let t = PolicyTemplate::parse(RENDERED).unwrap();
        let s = t.statements("u-1", "Team_B").unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("client/u-1\"") && text.contains("client/u-1-*\""),
            "{text}"
        );
        assert!(
            text.contains("topicfilter/groupcast/x--Team-5fB/*"),
            "{text}"
        );
        assert!(!text.contains('{') || !text.contains("_level}"), "{text}");
        // A client id that spells a placeholder is refused by the rule; a level never can.
        assert!(t.statements("{group_level}", "a").is_err());
        assert_eq!(
            replace_once("{client_id}{group_level}", "{group_level}", "x"),
            "{group_level}x"
        );
    }

    #[test]
    fn a_document_without_both_placeholders_or_with_a_policy_variable_is_refused() {
        let with =
            |s: &str| json!({"Version": "2012-10-17", "Statement": [{"Resource": s}]}).to_string();
        assert!(PolicyTemplate::parse(&with("{client_id}/{group_level}")).is_ok());
        for (doc, why) in [
            (with("{client_id}"), "{group_level}"),
            (with("{group_level}"), "{client_id}"),
            (
                with("${iot:ClientId}/{client_id}/{group_level}"),
                "policy variable",
            ),
            ("{}".to_owned(), "Statement"),
            ("nope".to_owned(), "JSON"),
        ] {
            let e = PolicyTemplate::parse(&doc).unwrap_err();
            assert!(e.contains(why), "{doc}: {e}");
        }
    }

    #[test]
    fn client_ids_follow_the_rule() {
        for ok in [
            "a",
            "eu-west-1:0f2c6a9e-1b7d",
            "a_b.c@d=e,f",
            &"x".repeat(100),
        ] {
            assert!(validate_client_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "*",
            "a?",
            "a/b",
            "${x}",
            "a+b",
            "a#",
            "a b",
            "é",
            &"x".repeat(101),
        ] {
            let e = validate_client_id(bad).unwrap_err();
            assert!(e.starts_with("iot.client_id:"), "{bad}: {e}");
        }
    }
}
