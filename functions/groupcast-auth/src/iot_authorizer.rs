//! The AWS IoT Core custom authorizer (feature `iot-authorizer`): a subscriber's JWT in, an IoT
//! policy granting exactly their *current* IoT groups' topics out, recomputed at every refresh
//! (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html).
//!
//! - **The token** comes from the MQTT CONNECT password (MQTT over TLS), or from the header or
//!   query parameter named [`TOKEN_KEY_ENV`] (MQTT over WebSocket), or from the request's `token`
//!   field (filled by IoT from the authorizer's `tokenKeyName`); `Bearer ` is stripped. Two
//!   different tokens in one request are refused: which one would be authenticated is ambiguous.
//! - **Verification** is [`crate::jwt::Verifier`], the Events authorizer's: issuer, signature,
//!   expiry, audience, `token_use`. Any failure answers `isAuthenticated: false`.
//! - **The groups** are the user's current groups from a [`Membership`] source: the user pool
//!   ([`crate::membership::CognitoMembership`], when [`USER_POOL_ENV`] is set), else the token's
//!   groups claim ([`TokenClaims`], for issuers groupcast cannot ask), kept to the project's IoT
//!   groups ([`crate::grant::GROUPS_ENV`]): the same groups the identity-pool mode makes
//!   policies for. A failed lookup, a deleted or disabled user: refused.
//! - **The policy** is `templates/iot/group-policy.json.tera`, the very template the provisioner
//!   renders for the identity-pool mode, rendered by the provisioner with placeholders into
//!   [`POLICY_ENV`] and completed here per group with the user's id ([`crate::iot_policy`]):
//!   connect as that id or `{id}-…`, subscribe/receive `{prefix}/{segment}/*`, nothing else.
//!   The statements are packed into documents of at most [`POLICY_DOCUMENT_MAX_CHARS`]
//!   characters, at most [`MAX_POLICY_DOCUMENTS`] of them; a user whose groups do not fit is
//!   refused rather than granted a silent subset.
//! - **Lifetimes**: `refreshAfterInSeconds` is [`REFRESH_ENV`] (300–86400, AWS's range), and
//!   `disconnectAfterInSeconds` is the token's remaining lifetime (at most 86400), so a connection
//!   never outlives its token; a token with less than 300 s left (AWS's minimum) is refused.

use std::collections::{BTreeMap, BTreeSet};

use crate::iot_policy::PolicyTemplate;
use crate::jwt::Verifier;
use crate::membership::Membership;
use aws_lambda_events::event::iam::IamPolicyDocument;
use aws_lambda_events::event::iot::{
    IoTCoreCustomAuthorizerRequest, IoTCoreCustomAuthorizerResponse,
};
use serde_json::{Value, json};

/// `GROUPCAST_IOT_POLICY`: the group policy the provisioner rendered with placeholders.
pub const POLICY_ENV: &str = crate::iot_policy::POLICY_ENV;
/// `GROUPCAST_IOT_REFRESH_SECS`: `refreshAfterInSeconds`, 300–86400 (default 300).
pub const REFRESH_ENV: &str = "GROUPCAST_IOT_REFRESH_SECS";
/// `GROUPCAST_IOT_TOKEN_KEY`: the header or query parameter that carries the token over
/// WebSocket (default [`DEFAULT_TOKEN_KEY`]); the authorizer's `tokenKeyName`.
pub const TOKEN_KEY_ENV: &str = "GROUPCAST_IOT_TOKEN_KEY";
/// The default token key name.
pub const DEFAULT_TOKEN_KEY: &str = "groupcast-token";
/// AWS's range for `refreshAfterInSeconds` and `disconnectAfterInSeconds` (custom-auth-lambda.html).
pub const MIN_SECS: u64 = 300;
/// See [`MIN_SECS`].
pub const MAX_SECS: u64 = 86_400;
/// The most policy documents one answer may hold: the `policyDocuments` entry of the response
/// values on https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html.
/// Checked 2026-11 with the documentation search: the page (and its translations) was found, but
/// no excerpt reached the number in that entry (one stops at "the maximum number of policy
/// documents is…"), so 10 is kept unconfirmed by a quotable source; no AWS page found says
/// otherwise.
pub const MAX_POLICY_DOCUMENTS: usize = 10;
/// The most characters one policy document may hold. AWS IoT's own policy documents: "a maximum
/// length of 2048, excluding whitespace" (CreatePolicy,
/// https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html), the quota
/// `groupcast::limits::IOT_POLICY_MAX_CHARS`. That the same 2048 applies to each document of a
/// custom authorizer's answer is custom-auth-lambda.html's `policyDocuments` entry, which the
/// search did not reach either (see [`MAX_POLICY_DOCUMENTS`]).
pub const POLICY_DOCUMENT_MAX_CHARS: usize = groupcast::limits::IOT_POLICY_MAX_CHARS;

/// `GROUPCAST_COGNITO_USER_POOL_ID`: when set, groups come from this user pool at every connect
/// and refresh; the token's issuer must be the pool's.
pub const USER_POOL_ENV: &str = crate::membership::USER_POOL_ENV;

// One implementation for both authorizers: the AppSync one reads groups the same way.
pub use crate::authorizer::{TokenClaims, user_pool_from_lookup};

/// The authorizer's configuration, read once at cold start.
#[derive(Debug)]
pub struct Rules {
    policy: PolicyTemplate,
    iot_groups: BTreeSet<String>,
    refresh_secs: u64,
    token_key: String,
}

impl Rules {
    /// Rules from the project's IoT groups, the group policy rendered with placeholders, the
    /// refresh period and the token key name. Completes the policy for every group once, so a
    /// group without a topic level fails here, at cold start, not per connection.
    ///
    /// # Errors
    /// The setting (an environment variable name) and the rule it broke.
    pub fn new(
        iot_groups: &[String],
        policy: PolicyTemplate,
        refresh_secs: u64,
        token_key: &str,
    ) -> Result<Self, String> {
        if !(MIN_SECS..=MAX_SECS).contains(&refresh_secs) {
            return Err(format!(
                "{REFRESH_ENV}: {refresh_secs} is outside AWS's {MIN_SECS}-{MAX_SECS} seconds"
            ));
        }
        let header_ok = !token_key.is_empty()
            && token_key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !header_ok {
            return Err(format!(
                "{TOKEN_KEY_ENV}: {token_key:?} must be a lowercase header name ([a-z0-9-]+)"
            ));
        }
        for group in iot_groups {
            policy
                .statements("0", group)
                .map_err(|e| format!("{}: {e}", crate::grant::GROUPS_ENV))?;
        }
        Ok(Rules {
            policy,
            iot_groups: iot_groups.iter().cloned().collect(),
            refresh_secs,
            token_key: token_key.to_owned(),
        })
    }

    /// Reads the rules through `get` (the environment, or a stand-in in tests).
    ///
    /// # Errors
    /// The variable and the rule it broke.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let need = |name: &str, example: &str| {
            var(name).ok_or_else(|| format!("{name}: must be set, e.g. {example}"))
        };
        let groups_text = need(crate::grant::GROUPS_ENV, r#"["admins","team-a"]"#)?;
        let groups: Vec<String> = serde_json::from_str(&groups_text).map_err(|e| {
            format!(
                "{}: must be JSON array text of group names: {e}",
                crate::grant::GROUPS_ENV
            )
        })?;
        let refresh = match var(REFRESH_ENV) {
            None => MIN_SECS,
            Some(v) => v.parse::<u64>().map_err(|_| {
                format!(
                    "{REFRESH_ENV}: {v:?} is not a whole number of seconds {MIN_SECS}-{MAX_SECS}"
                )
            })?,
        };
        let policy = need(
            POLICY_ENV,
            "the iot-authorizer environment `provisioner apply` writes (lambdas.iot-authorizer)",
        )?;
        let policy = PolicyTemplate::parse(&policy).map_err(|e| format!("{POLICY_ENV}: {e}"))?;
        Rules::new(
            &groups,
            policy,
            refresh,
            &var(TOKEN_KEY_ENV).unwrap_or_else(|| DEFAULT_TOKEN_KEY.to_owned()),
        )
    }

    /// The policy documents for a user `client_id` in `groups` (only IoT groups count): the
    /// template's statements for each group, duplicates (the shared connect statement) once,
    /// packed into documents within [`POLICY_DOCUMENT_MAX_CHARS`].
    ///
    /// # Errors
    /// Why no answer can be given (a template refusal, too many groups to fit).
    pub fn policy_documents(
        &self,
        client_id: &str,
        groups: &[String],
    ) -> Result<Vec<IamPolicyDocument>, String> {
        let wanted: BTreeSet<&String> = groups
            .iter()
            .filter(|g| self.iot_groups.contains(*g))
            .collect();
        let mut statements: Vec<Value> = Vec::new();
        for group in wanted {
            for s in self.policy.statements(client_id, group)? {
                if !statements.contains(&s) {
                    statements.push(s);
                }
            }
        }
        pack(statements)
    }
}

/// Packs statements, in order, into as few documents as fit [`POLICY_DOCUMENT_MAX_CHARS`] each
/// (measured on the JSON sent, without whitespace).
fn pack(statements: Vec<Value>) -> Result<Vec<IamPolicyDocument>, String> {
    let to_doc = |s: &[Value]| -> Result<IamPolicyDocument, String> {
        serde_json::from_value(json!({"Version": "2012-10-17", "Statement": s}))
            .map_err(|e| format!("a statement is not an IAM statement: {e}"))
    };
    let chars = |d: &IamPolicyDocument| serde_json::to_string(d).map_or(usize::MAX, |t| t.len());
    let mut docs = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    for s in statements {
        current.push(s);
        if chars(&to_doc(&current)?) > POLICY_DOCUMENT_MAX_CHARS {
            let s = current.pop().expect("just pushed");
            if current.is_empty() {
                return Err(format!(
                    "one statement is over {POLICY_DOCUMENT_MAX_CHARS} characters"
                ));
            }
            docs.push(to_doc(&current)?);
            current = vec![s];
        }
    }
    if !current.is_empty() {
        docs.push(to_doc(&current)?);
    }
    if docs.len() > MAX_POLICY_DOCUMENTS {
        return Err(format!(
            "the groups need {} policy documents; IoT accepts at most {MAX_POLICY_DOCUMENTS}",
            docs.len()
        ));
    }
    Ok(docs)
}

/// The answer that refuses the connection (or ends it, on a refresh).
pub fn deny() -> IoTCoreCustomAuthorizerResponse {
    let mut r = IoTCoreCustomAuthorizerResponse::default();
    r.is_authenticated = false;
    r
}

/// The `principalId` for `sub`: IoT accepts only `[a-zA-Z0-9]{1,128}`
/// (custom-auth-lambda.html); it labels the connection in IoT's logs, nothing more.
pub fn principal_id(sub: &str) -> String {
    let id: String = sub
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(128)
        .collect();
    if id.is_empty() { "user".to_owned() } else { id }
}

/// The token in `request`, per the protocol (module docs). `Err` says why there is none.
pub fn token_of(request: &IoTCoreCustomAuthorizerRequest, key: &str) -> Result<String, String> {
    let mut found: Vec<(&str, String)> = Vec::new();
    if let Some(t) = request.token.as_deref().filter(|t| !t.is_empty()) {
        found.push(("token", t.to_owned()));
    }
    if let Some(data) = &request.protocol_data {
        if let Some(mqtt) = &data.mqtt
            && !mqtt.password.0.is_empty()
        {
            let text = String::from_utf8(mqtt.password.0.clone())
                .map_err(|_| "the MQTT password is not UTF-8".to_owned())?;
            found.push(("mqtt.password", text));
        }
        if let Some(http) = &data.http {
            for v in http.headers.get_all(key) {
                let v = v
                    .to_str()
                    .map_err(|_| format!("header {key} is not text"))?;
                found.push(("header", v.to_owned()));
            }
            if let Some(q) = &http.query_string {
                for pair in q.trim_start_matches('?').split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if k == key {
                        let v = percent_encoding::percent_decode_str(v)
                            .decode_utf8()
                            .map_err(|_| format!("query parameter {key} is not UTF-8"))?;
                        found.push(("query", v.into_owned()));
                    }
                }
            }
        }
    }
    let bare = |t: &str| {
        let t = t.trim();
        t.strip_prefix("Bearer ").unwrap_or(t).trim().to_owned()
    };
    let tokens: BTreeSet<String> = found.iter().map(|(_, t)| bare(t)).collect();
    match tokens.len() {
        0 => Err(format!(
            "no token: neither an MQTT password, nor a {key} header or query parameter"
        )),
        1 => Ok(tokens.into_iter().next().expect("one")),
        _ => Err(format!(
            "{} different tokens ({}): ambiguous, refused",
            tokens.len(),
            found.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Handles one invocation; never fails (a failure is a deny, with the reason logged).
pub async fn handle<M: Membership>(
    verifier: &Verifier,
    rules: &Rules,
    membership: Option<&M>,
    event: Value,
    now: u64,
) -> IoTCoreCustomAuthorizerResponse {
    match decide(verifier, rules, membership, event, now).await {
        Ok(r) => r,
        Err(reason) => {
            tracing::info!(%reason, "IoT connection refused");
            deny()
        }
    }
}

async fn decide<M: Membership>(
    verifier: &Verifier,
    rules: &Rules,
    membership: Option<&M>,
    event: Value,
    now: u64,
) -> Result<IoTCoreCustomAuthorizerResponse, String> {
    let request: IoTCoreCustomAuthorizerRequest = serde_json::from_value(event)
        .map_err(|e| format!("not an IoT custom authorizer request: {e}"))?;
    let token = token_of(&request, &rules.token_key)?;
    let verified = verifier
        .verify(&token)
        .await
        .map_err(|e| format!("token: {e}"))?;
    let remaining = verified.exp.saturating_sub(now);
    if remaining < MIN_SECS {
        return Err(format!(
            "token expires in {remaining} s, under IoT's shortest connection of {MIN_SECS} s: \
             refresh the token and connect again"
        ));
    }
    let groups = match membership {
        Some(m) => m.current_groups(&verified.sub).await,
        None => TokenClaims(&verified).current_groups(&verified.sub).await,
    }
    .map_err(|e| format!("groups of {:?}: {e}", verified.sub))?;
    let docs = rules
        .policy_documents(&verified.sub, &groups)
        .map_err(|e| format!("user {:?}: {e}", verified.sub))?;
    if !docs.iter().any(|d| {
        d.statement
            .iter()
            .any(|s| s.action.iter().any(|a| a == "iot:Subscribe"))
    }) {
        return Err(format!("user {:?} is in no IoT group", verified.sub));
    }
    let disconnect = remaining.min(MAX_SECS);
    let mut r = IoTCoreCustomAuthorizerResponse::default();
    r.is_authenticated = true;
    r.principal_id = Some(principal_id(&verified.sub));
    r.disconnect_after_in_seconds = u32::try_from(disconnect).unwrap_or(u32::MAX);
    r.refresh_after_in_seconds =
        u32::try_from(rules.refresh_secs.min(disconnect)).unwrap_or(u32::MAX);
    r.policy_documents = docs.into_iter().map(Some).collect();
    Ok(r)
}

/// Whether `documents` allow `action` on `resource`, as IoT evaluates policies: some Allow
/// statement matches both and no Deny does; `*` matches any run of characters (`/` included),
/// `?` one character, everything else (MQTT `+` and `#` too) is literal; actions compare
/// case-insensitively. A resource holding a policy variable (`${…}`) matches nothing: the
/// authorizer's documents carry none, so one appearing is a fault (fail closed).
/// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html)
pub fn policy_allows(documents: &[IamPolicyDocument], action: &str, resource: &str) -> bool {
    use aws_lambda_events::event::iam::IamPolicyEffect;
    let matches = |s: &aws_lambda_events::event::iam::IamPolicyStatement| {
        s.condition.is_none()
            && s.action
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && s.resource
                .iter()
                .any(|r| !r.contains("${") && glob(r, resource))
    };
    let all = documents.iter().flat_map(|d| d.statement.iter());
    let mut allowed = false;
    for s in all {
        if matches(s) {
            match s.effect {
                IamPolicyEffect::Deny => return false,
                _ => allowed = true,
            }
        }
    }
    allowed
}

/// `*`/`?` wildcard matching, iterative with backtracking on the last `*`.
fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
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

/// The topics and client ids the answer allows, per IoT action, for tests and logs.
pub fn summary(documents: &[IamPolicyDocument]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in documents.iter().flat_map(|d| d.statement.iter()) {
        for a in &s.action {
            out.entry(a.clone()).or_default().extend(s.resource.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012:";

    fn policy() -> PolicyTemplate {
        PolicyTemplate::parse(crate::iot_policy::tests::RENDERED).unwrap()
    }

    fn rules(groups: &[&str]) -> Rules {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        Rules::new(&groups, policy(), 600, DEFAULT_TOKEN_KEY).unwrap()
    }

    fn strings(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_policy_grants_connect_as_the_user_and_only_their_iot_groups_topics() {
        let r = rules(&["team-a", "Team_B", "admins"]);
        let docs = r
            .policy_documents("user-1", &strings(&["team-a", "Team_B", "not-iot"]))
            .unwrap();
        assert_eq!(docs.len(), 1);
        let allows = |a: &str, res: &str| policy_allows(&docs, a, &format!("{ARN}{res}"));
        assert!(allows("iot:Connect", "client/user-1"));
        assert!(allows("iot:Connect", "client/user-1-tab2"));
        assert!(!allows("iot:Connect", "client/user-10"));
        assert!(!allows("iot:Connect", "client/user-2"));
        assert!(allows("iot:Subscribe", "topicfilter/groupcast/team-a/news"));
        assert!(allows("iot:Receive", "topic/groupcast/x--Team-5fB/news"));
        assert!(!allows("iot:Receive", "topic/groupcast/admins/news"));
        assert!(!allows("iot:Receive", "topic/groupcast/not-iot/news"));
        assert!(!allows("iot:Subscribe", "topicfilter/groupcast/#"));
        assert!(!allows("iot:Subscribe", "topicfilter/groupcast/+/news"));
        assert!(!allows("iot:Receive", "topic/groupcast/team-ab/news"));
        assert!(!allows("iot:Publish", "topic/groupcast/team-a/news"));
        let s = summary(&docs);
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            ["iot:Connect", "iot:Receive", "iot:Subscribe"]
        );
        assert_eq!(s["iot:Connect"].len(), 2, "one connect statement: {s:?}");
    }

    #[test]
    fn wildcards_in_a_user_id_are_refused_by_the_client_id_rule_not_granted() {
        let r = rules(&["team-a"]);
        for id in [
            "*",
            "a*",
            "a?",
            "a/b",
            "${iot:ClientId}",
            "a+b",
            "a#",
            "",
            "a b",
        ] {
            let e = r.policy_documents(id, &strings(&["team-a"])).unwrap_err();
            assert!(e.contains("iot.client_id"), "{id:?}: {e}");
        }
    }

    #[test]
    fn many_groups_are_split_across_documents_within_the_limits_or_refused() {
        let groups: Vec<String> = (0..60).map(|i| format!("group-{i:02}")).collect();
        let r = Rules::new(&groups, policy(), 300, "k").unwrap();
        let docs = r.policy_documents("u", &groups).unwrap();
        assert!(
            docs.len() > 1 && docs.len() <= MAX_POLICY_DOCUMENTS,
            "{}",
            docs.len()
        );
        for d in &docs {
            assert!(serde_json::to_string(d).unwrap().len() <= POLICY_DOCUMENT_MAX_CHARS);
        }
        for g in &groups {
            assert!(policy_allows(
                &docs,
                "iot:Receive",
                &format!("{ARN}topic/groupcast/{g}/x")
            ));
        }
        let many: Vec<String> = (0..400).map(|i| format!("group-{i:03}")).collect();
        let r = Rules::new(&many, policy(), 300, "k").unwrap();
        let e = r.policy_documents("u", &many).unwrap_err();
        assert!(e.contains("at most 10"), "{e}");
    }

    #[test]
    fn settings_out_of_range_name_the_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let base = [
            ("GROUPCAST_IOT_GROUPS", r#"["team-a"]"#),
            (POLICY_ENV, crate::iot_policy::tests::RENDERED),
        ];
        assert!(Rules::from_lookup(env(Vec::leak(base.to_vec()))).is_ok());
        for (k, v, field) in [
            (REFRESH_ENV, "299", REFRESH_ENV),
            (REFRESH_ENV, "86401", REFRESH_ENV),
            (REFRESH_ENV, "soon", REFRESH_ENV),
            (POLICY_ENV, "{}", POLICY_ENV),
            (
                POLICY_ENV,
                r#"{"Statement":[{"Resource":"{client_id}"}]}"#,
                POLICY_ENV,
            ),
            ("GROUPCAST_IOT_GROUPS", r#"[""]"#, "GROUPCAST_IOT_GROUPS"),
            (TOKEN_KEY_ENV, "Token Key", TOKEN_KEY_ENV),
            ("GROUPCAST_IOT_GROUPS", "team-a", "GROUPCAST_IOT_GROUPS"),
        ] {
            let mut vars = base.to_vec();
            vars.retain(|(n, _)| *n != k);
            vars.push((k, v));
            let e = Rules::from_lookup(env(Vec::leak(vars))).unwrap_err();
            assert!(e.starts_with(&format!("{field}:")), "{k}={v}: {e}");
        }
    }

    #[test]
    fn a_user_pool_is_used_only_for_the_issuer_it_runs() {
        let pool = |v: Option<&'static str>| {
            move |k: &str| {
                (k == USER_POOL_ENV)
                    .then_some(v)
                    .flatten()
                    .map(str::to_owned)
            }
        };
        let cognito = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123";
        assert_eq!(user_pool_from_lookup(pool(None), cognito).unwrap(), None);
        let p = user_pool_from_lookup(pool(Some("eu-west-1_AbC123")), cognito)
            .unwrap()
            .unwrap();
        assert_eq!(p.as_str(), "eu-west-1_AbC123");
        for (id, issuer) in [
            ("eu-west-1_Other1", cognito),
            ("eu-west-1_AbC123", "https://login.example.com"),
            ("not a pool", cognito),
        ] {
            let e = user_pool_from_lookup(pool(Some(id)), issuer).unwrap_err();
            assert!(e.starts_with(USER_POOL_ENV), "{id} {issuer}: {e}");
        }
    }

    #[test]
    fn principal_ids_are_alphanumeric_labels() {
        assert_eq!(principal_id("5f1c2e7a-user"), "5f1c2e7auser");
        assert_eq!(principal_id("---"), "user");
        assert_eq!(principal_id(&"a".repeat(300)).len(), 128);
    }
}
