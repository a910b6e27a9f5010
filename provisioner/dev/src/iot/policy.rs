//! AWS IoT policy evaluation, once, for every IoT decision of the local stack (connect,
//! subscribe, publish, receive). A port of the isolation harness's model
//! (tests/harness/lib/policy.js), so the stack and the harness agree rule for rule:
//!
//! - A request is allowed when some `Allow` statement matches its action and resource and no
//!   `Deny` statement does: an explicit deny wins over any allow, and no allow means deny
//!   (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html, "IAM policy
//!   evaluation logic" as IoT follows it).
//! - Resource patterns use `*` (any run of characters, `/` included) and `?` (one character);
//!   MQTT's `+` and `#` are literal characters in a policy
//!   (https://docs.aws.amazon.com/iot/latest/developerguide/pub-sub-policy.html, "Using wildcard
//!   characters in MQTT and AWS IoT Core policies";
//!   https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html).
//!   Actions compare case-insensitively, resources case-sensitively.
//! - Policy variables `${…}` are replaced from the request (`iot:ClientId`,
//!   `cognito-identity.amazonaws.com:sub`, …,
//!   https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html); an
//!   unknown variable makes the statement not match (fail closed: an Allow is not granted; a Deny
//!   with an unknown variable does not apply, as in the harness).
//! - Resources: `client/{clientId}` for `iot:Connect`, `topicfilter/{filter}` for
//!   `iot:Subscribe`, `topic/{topic}` for `iot:Publish` and `iot:Receive`, each under
//!   `arn:aws:iot:{region}:{account}:`
//!   (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html).
//! - `NotAction`, `NotResource` and `Condition` are not used by groupcast's policies. A Deny
//!   carrying one matches everything (the harness's choice: a Deny test notices); an Allow
//!   carrying one is refused when the document is parsed, so it can never widen access.

use std::collections::BTreeMap;

use serde_json::Value;

/// An IoT action the broker authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connect,
    Subscribe,
    Publish,
    Receive,
}

impl Action {
    /// The action's name in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Subscribe => "iot:Subscribe",
            Action::Publish => "iot:Publish",
            Action::Receive => "iot:Receive",
        }
    }
}

/// One statement, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    /// `None`: the statement uses `NotAction`/`NotResource`/`Condition` and matches everything.
    actions: Option<Vec<String>>,
    resources: Vec<String>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// Why a policy document was not accepted; names the field and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("policy document {field}: {rule}")]
pub struct PolicyError {
    pub field: String,
    pub rule: String,
}

fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| PolicyError {
                    field: field.to_owned(),
                    rule: "must be a string or an array of strings".into(),
                })
            })
            .collect(),
        Some(_) => Err(PolicyError {
            field: field.to_owned(),
            rule: "must be a string or an array of strings".into(),
        }),
    }
}

impl Policy {
    /// Parses a policy document's JSON text.
    ///
    /// # Errors
    /// [`PolicyError`] naming the field (`Statement[i].Effect`, …) that breaks a rule.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError {
            field: "(document)".into(),
            rule: format!("must be JSON: {e}"),
        })?;
        Policy::from_value(&doc)
    }

    /// Parses a policy document already decoded as JSON.
    ///
    /// # Errors
    /// As [`Policy::parse`].
    pub fn from_value(doc: &Value) -> Result<Policy, PolicyError> {
        let raw = match doc.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            _ => {
                return Err(PolicyError {
                    field: "Statement".into(),
                    rule: "must be an object or an array of objects".into(),
                });
            }
        };
        let mut statements = Vec::new();
        for (i, st) in raw.iter().enumerate() {
            let field = |f: &str| format!("Statement[{i}].{f}");
            let allow = match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => {
                    return Err(PolicyError {
                        field: field("Effect"),
                        rule: "must be \"Allow\" or \"Deny\"".into(),
                    });
                }
            };
            let unsupported = ["NotAction", "NotResource", "Condition"]
                .into_iter()
                .find(|k| st.get(*k).is_some());
            if let Some(k) = unsupported {
                if allow {
                    return Err(PolicyError {
                        field: field(k),
                        rule: "is not supported by the local stack in an Allow statement \
                               (refused rather than risk granting too much)"
                            .into(),
                    });
                }
                statements.push(Statement {
                    allow,
                    actions: None,
                    resources: Vec::new(),
                });
                continue;
            }
            statements.push(Statement {
                allow,
                actions: Some(strings(st.get("Action"), &field("Action"))?),
                resources: strings(st.get("Resource"), &field("Resource"))?,
            });
        }
        Ok(Policy { statements })
    }
}

/// `*`/`?` wildcard matching (iterative, backtracking on the last `*`), as the harness's
/// `globMatch`.
pub fn glob_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, v) = (fold(pattern), fold(value));
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

/// Replaces `${name}` from `vars`; `None` when a variable is unknown. `$(*)`, `$(?)`, `$($)`
/// stand for the literal characters is not modelled (groupcast's policies do not use them).
pub fn substitute(pattern: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // No closing brace: not a variable, literal text (as the harness's regex leaves it).
            out.push_str(&rest[start..]);
            return Some(out);
        };
        out.push_str(vars.get(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Statement {
    fn matches(&self, action: Action, resource: &str, vars: &BTreeMap<String, String>) -> bool {
        let Some(actions) = &self.actions else {
            return true;
        };
        actions.iter().any(|a| glob_match(a, action.as_str(), true))
            && self
                .resources
                .iter()
                .any(|r| substitute(r, vars).is_some_and(|p| glob_match(&p, resource, false)))
    }
}

/// The verdict and the statement that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// An explicit Deny matched.
    Denied,
    /// No Allow matched.
    NotAllowed,
}

/// Whether `policies` allow `action` on `resource` for a caller with policy variables `vars`.
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    action: Action,
    resource: &str,
    vars: &BTreeMap<String, String>,
) -> Verdict {
    let mut allowed = false;
    for st in policies.into_iter().flat_map(|p| &p.statements) {
        if !st.matches(action, resource, vars) {
            continue;
        }
        if !st.allow {
            return Verdict::Denied;
        }
        allowed = true;
    }
    if allowed {
        Verdict::Allowed
    } else {
        Verdict::NotAllowed
    }
}

/// The resource ARN prefix `arn:aws:iot:{region}:{account}:`.
pub fn arn_prefix(region: &str, account: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";
    const ID: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";

    fn group_policy(group: &str) -> Policy {
        Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Action":"iot:Connect","Resource":["{ARN}client/${{cognito-identity.amazonaws.com:sub}}","{ARN}client/${{cognito-identity.amazonaws.com:sub}}-*"]}},
              {{"Effect":"Allow","Action":"iot:Subscribe","Resource":"{ARN}topicfilter/groupcast/{group}/*"}},
              {{"Effect":"Allow","Action":"iot:Receive","Resource":"{ARN}topic/groupcast/{group}/*"}}]}}"#
        ))
        .unwrap()
    }

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "cognito-identity.amazonaws.com:sub".to_owned(),
            ID.to_owned(),
        )])
    }

    #[test]
    fn the_identity_may_connect_as_itself_or_with_a_dash_suffix_and_as_nobody_else() {
        let p = [group_policy("team-a")];
        let connect = |c: &str| evaluate(&p, Action::Connect, &format!("{ARN}client/{c}"), &vars());
        assert_eq!(connect(ID), Verdict::Allowed);
        assert_eq!(connect(&format!("{ID}-tab2")), Verdict::Allowed);
        assert_eq!(
            connect("us-east-1:11111111-1b7d-4c3e-9a51-2d7f3b8e6c41"),
            Verdict::NotAllowed
        );
        assert_eq!(connect(&format!("x{ID}")), Verdict::NotAllowed);
    }

    #[test]
    fn mqtt_wildcards_are_literal_in_policies_so_hash_and_foreign_filters_are_refused() {
        let p = [group_policy("team-a")];
        let sub = |f: &str| {
            evaluate(
                &p,
                Action::Subscribe,
                &format!("{ARN}topicfilter/{f}"),
                &vars(),
            )
        };
        assert_eq!(sub("groupcast/team-a/#"), Verdict::Allowed);
        assert_eq!(sub("groupcast/team-a/news"), Verdict::Allowed);
        assert_eq!(sub("#"), Verdict::NotAllowed);
        assert_eq!(sub("groupcast/+/news"), Verdict::NotAllowed);
        assert_eq!(sub("groupcast/team-b/#"), Verdict::NotAllowed);
        assert_eq!(sub("groupcast/team-ab/x"), Verdict::NotAllowed);
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let deny = Policy::parse(&format!(
            r#"{{"Statement":{{"Effect":"Deny","Action":"iot:*","Resource":"{ARN}topic/groupcast/team-a/secret"}}}}"#
        ))
        .unwrap();
        let p = [group_policy("team-a"), deny];
        let recv = |t: &str| evaluate(&p, Action::Receive, &format!("{ARN}topic/{t}"), &vars());
        assert_eq!(recv("groupcast/team-a/news"), Verdict::Allowed);
        assert_eq!(recv("groupcast/team-a/secret"), Verdict::Denied);
    }

    #[test]
    fn an_unknown_policy_variable_grants_nothing() {
        let p = [group_policy("team-a")];
        let none = BTreeMap::new();
        assert_eq!(
            evaluate(&p, Action::Connect, &format!("{ARN}client/{ID}"), &none),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn actions_compare_case_insensitively_and_resources_case_sensitively() {
        let p = [Policy::parse(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"IOT:receive","Resource":"{ARN}topic/a/?"}}]}}"#
        ))
        .unwrap()];
        assert_eq!(
            evaluate(&p, Action::Receive, &format!("{ARN}topic/a/b"), &vars()),
            Verdict::Allowed
        );
        assert_eq!(
            evaluate(&p, Action::Receive, &format!("{ARN}topic/A/b"), &vars()),
            Verdict::NotAllowed
        );
        assert_eq!(
            evaluate(&p, Action::Receive, &format!("{ARN}topic/a/bc"), &vars()),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn an_allow_with_a_condition_is_refused_and_bad_documents_name_the_field() {
        let e = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "Statement[0].Condition");
        let e = Policy::parse(r#"{"Statement":[{"Effect":"Maybe"}]}"#).unwrap_err();
        assert_eq!(e.field, "Statement[0].Effect");
        assert!(Policy::parse("not json").is_err());
    }
}
