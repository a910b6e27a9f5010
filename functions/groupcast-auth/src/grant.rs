//! IoT grants: make the groupcast IoT policies attached to a Cognito identity exactly those of
//! the user's groups.
//!
//! The provisioner creates one IoT policy per group, named by a pattern such as
//! `acme-live-{group}`, where `{group}` is `groupcast::group_segment` of the group. [`reconcile`]
//! lists the policies attached to the identity, detaches every one that matches the pattern but
//! belongs to no current group (stale), then attaches the missing ones. Policies that do not match
//! the pattern are never touched. Running it twice changes nothing the second time.
//!
//! The AWS calls sit behind [`IotPolicyApi`], implemented for `aws_sdk_iot::Client` with the
//! `iot` feature, so the iot-grant function and the provisioner's `iot grant` share this logic and
//! tests can fake IoT.

use std::future::Future;

use groupcast::{decode_segment, group_segment};
use serde::Serialize;

/// The policy-name pattern variable, e.g. `GROUPCAST_IOT_POLICY_PATTERN=acme-live-{group}`.
pub const PATTERN_ENV: &str = "GROUPCAST_IOT_POLICY_PATTERN";
const PLACEHOLDER: &str = "{group}";
/// IoT policy names are at most this long.
const POLICY_NAME_MAX: usize = 128;

/// How an IoT call failed, as far as [`reconcile`] cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The policy (or target) does not exist.
    NotFound,
    /// A quota is reached (10 policies per Cognito identity).
    LimitExceeded,
    /// Anything else (throttling, permissions, network).
    Other,
}

/// A failed IoT call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ApiErrorKind,
    /// What the service said.
    pub message: String,
}

/// The three IoT calls a grant needs.
pub trait IotPolicyApi {
    /// Names of every policy attached to `target` (all pages).
    fn attached_policies(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;
    /// `AttachPolicy(policy, target)`; attaching an attached policy succeeds.
    fn attach_policy(
        &self,
        policy: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `DetachPolicy(policy, target)`.
    fn detach_policy(
        &self,
        policy: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Why a grant failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The policy-name pattern breaks a rule.
    #[error("policy name pattern {pattern:?}: {rule}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// The rule it broke.
        rule: String,
    },
    /// The target is not a Cognito identity id.
    #[error("identityId {target:?}: {rule}")]
    Target {
        /// The target as given.
        target: String,
        /// The rule it broke.
        rule: String,
    },
    /// An IoT call failed; the calls before it took effect, so the grant is safe to re-run.
    #[error("IoT {operation}{}: {error}", policy.as_ref().map(|p| format!(" {p}")).unwrap_or_default())]
    Api {
        /// `ListAttachedPolicies`, `AttachPolicy` or `DetachPolicy`.
        operation: &'static str,
        /// The policy, for attach/detach.
        policy: Option<String>,
        /// The failure.
        error: ApiError,
    },
}

/// A validated policy-name pattern: `prefix{group}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPattern {
    prefix: String,
    suffix: String,
}

impl PolicyPattern {
    /// Parses a pattern with exactly one `{group}` and otherwise only IoT policy-name characters
    /// (`[A-Za-z0-9_+=,.@-]`).
    ///
    /// # Errors
    /// [`GrantError::Pattern`] naming the rule.
    pub fn parse(pattern: &str) -> Result<Self, GrantError> {
        let bad = |rule: &str| GrantError::Pattern {
            pattern: pattern.to_owned(),
            rule: rule.to_owned(),
        };
        let (prefix, suffix) = pattern
            .split_once(PLACEHOLDER)
            .ok_or_else(|| bad("must contain {group} exactly once"))?;
        if suffix.contains(PLACEHOLDER) {
            return Err(bad("must contain {group} exactly once"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if !prefix.chars().chain(suffix.chars()).all(ok) {
            return Err(bad(
                "outside {group}, only [A-Za-z0-9_+=,.@-] may appear (IoT policy names)",
            ));
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err(bad(
                "needs a fixed prefix or suffix, or every policy would look like a group policy",
            ));
        }
        if prefix.len() + suffix.len() + 1 > POLICY_NAME_MAX {
            return Err(bad("leaves no room for a group within 128 characters"));
        }
        Ok(PolicyPattern {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The policy name for `group`, or `None` when the group has no segment or the name would be
    /// longer than IoT allows.
    pub fn policy_for(&self, group: &str) -> Option<String> {
        let segment = group_segment(group).ok()?;
        let name = format!("{}{segment}{}", self.prefix, self.suffix);
        (name.len() <= POLICY_NAME_MAX).then_some(name)
    }

    /// Whether `policy` is a group policy of this pattern (its middle decodes as a segment).
    pub fn matches(&self, policy: &str) -> bool {
        policy
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(&self.suffix))
            .is_some_and(|segment| decode_segment(segment).is_some())
    }
}

/// What [`reconcile`] did. Every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantReport {
    /// The identity.
    pub identity_id: String,
    /// Group policies newly attached.
    pub attached: Vec<String>,
    /// Stale group policies detached.
    pub detached: Vec<String>,
    /// Group policies already attached.
    pub kept: Vec<String>,
    /// Groups without a policy in IoT (not provisioned for IoT): nothing was granted for them.
    pub missing: Vec<String>,
    /// Groups that map to no policy name (no channel segment, or too long).
    pub unmappable: Vec<String>,
}

/// Checks that `identity_id` looks like a Cognito identity id (`<region>:<uuid>`).
///
/// # Errors
/// [`GrantError::Target`] naming the rule.
pub fn validate_identity_id(identity_id: &str) -> Result<(), GrantError> {
    let ok = identity_id.len() <= 55
        && identity_id.split_once(':').is_some_and(|(region, id)| {
            !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !id.is_empty()
                && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(GrantError::Target {
            target: identity_id.to_owned(),
            rule: "must be a Cognito identity id: <region>:<uuid>, at most 55 characters".into(),
        })
    }
}

/// Makes the group policies attached to `identity_id` exactly those of `groups`. See the
/// [module docs](self). Stale policies are detached before new ones are attached, so the
/// 10-policies-per-identity quota is not hit by the swap itself.
///
/// # Errors
/// [`GrantError`]; an `Api` error stops the grant where it failed (re-running completes it).
pub async fn reconcile<A: IotPolicyApi + ?Sized>(
    api: &A,
    pattern: &PolicyPattern,
    identity_id: &str,
    groups: &[String],
) -> Result<GrantReport, GrantError> {
    validate_identity_id(identity_id)?;
    let mut report = GrantReport {
        identity_id: identity_id.to_owned(),
        ..Default::default()
    };
    let mut wanted: Vec<(String, &str)> = Vec::new();
    for group in groups {
        match pattern.policy_for(group) {
            Some(policy) if !wanted.iter().any(|(p, _)| *p == policy) => {
                wanted.push((policy, group))
            }
            Some(_) => {}
            None => report.unmappable.push(group.clone()),
        }
    }
    let attached = api
        .attached_policies(identity_id)
        .await
        .map_err(|error| GrantError::Api {
            operation: "ListAttachedPolicies",
            policy: None,
            error,
        })?;
    for policy in attached.iter().filter(|p| pattern.matches(p)) {
        if wanted.iter().any(|(w, _)| w == policy) {
            report.kept.push(policy.clone());
        } else {
            api.detach_policy(policy, identity_id)
                .await
                .map_err(|error| GrantError::Api {
                    operation: "DetachPolicy",
                    policy: Some(policy.clone()),
                    error,
                })?;
            report.detached.push(policy.clone());
        }
    }
    for (policy, group) in &wanted {
        if attached.contains(policy) {
            continue;
        }
        match api.attach_policy(policy, identity_id).await {
            Ok(()) => report.attached.push(policy.clone()),
            Err(ApiError {
                kind: ApiErrorKind::NotFound,
                ..
            }) => report.missing.push((*group).to_owned()),
            Err(error) => {
                return Err(GrantError::Api {
                    operation: "AttachPolicy",
                    policy: Some(policy.clone()),
                    error,
                });
            }
        }
    }
    for list in [
        &mut report.attached,
        &mut report.detached,
        &mut report.kept,
        &mut report.missing,
        &mut report.unmappable,
    ] {
        list.sort();
    }
    tracing::info!(
        identity_id,
        attached = ?report.attached,
        detached = ?report.detached,
        kept = report.kept.len(),
        missing = ?report.missing,
        "IoT grant reconciled"
    );
    Ok(report)
}

#[cfg(feature = "iot")]
mod aws {
    //! [`IotPolicyApi`] over the AWS SDK.

    use aws_sdk_iot::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

    use super::{ApiError, ApiErrorKind, IotPolicyApi};

    fn api_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        e: SdkError<E, R>,
    ) -> ApiError {
        let kind = match e.as_service_error().and_then(|s| s.code()) {
            Some("ResourceNotFoundException") => ApiErrorKind::NotFound,
            Some("LimitExceededException") => ApiErrorKind::LimitExceeded,
            _ => ApiErrorKind::Other,
        };
        ApiError {
            kind,
            message: DisplayErrorContext(&e).to_string(),
        }
    }

    impl IotPolicyApi for aws_sdk_iot::Client {
        async fn attached_policies(&self, target: &str) -> Result<Vec<String>, ApiError> {
            let mut names = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let page = self
                    .list_attached_policies()
                    .target(target)
                    .recursive(false)
                    .page_size(250)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(api_error)?;
                names.extend(
                    page.policies()
                        .iter()
                        .filter_map(|p| p.policy_name().map(str::to_owned)),
                );
                match page.next_marker() {
                    Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                    _ => return Ok(names),
                }
            }
        }

        async fn attach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.attach_policy()
                .policy_name(policy)
                .target(target)
                .send()
                .await
                .map_err(api_error)?;
            Ok(())
        }

        async fn detach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.detach_policy()
                .policy_name(policy)
                .target(target)
                .send()
                .await
                .map_err(api_error)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    const ID: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";

    /// IoT in memory: existing policies and attachments, and a log of calls.
    #[derive(Default)]
    struct FakeIot {
        policies: BTreeSet<String>,
        attached: Mutex<BTreeSet<String>>,
        calls: Mutex<Vec<String>>,
        fail_attach: Option<ApiErrorKind>,
    }

    impl FakeIot {
        fn new(policies: &[&str], attached: &[&str]) -> Self {
            FakeIot {
                policies: policies.iter().map(|s| s.to_string()).collect(),
                attached: Mutex::new(attached.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }
        }
        fn attached(&self) -> Vec<String> {
            self.attached.lock().unwrap().iter().cloned().collect()
        }
    }

    impl IotPolicyApi for FakeIot {
        async fn attached_policies(&self, target: &str) -> Result<Vec<String>, ApiError> {
            self.calls.lock().unwrap().push(format!("list {target}"));
            Ok(self.attached())
        }
        async fn attach_policy(&self, policy: &str, _target: &str) -> Result<(), ApiError> {
            self.calls.lock().unwrap().push(format!("attach {policy}"));
            if let Some(kind) = self.fail_attach {
                return Err(ApiError {
                    kind,
                    message: "boom".into(),
                });
            }
            if !self.policies.contains(policy) {
                return Err(ApiError {
                    kind: ApiErrorKind::NotFound,
                    message: "no such policy".into(),
                });
            }
            self.attached.lock().unwrap().insert(policy.to_owned());
            Ok(())
        }
        async fn detach_policy(&self, policy: &str, _target: &str) -> Result<(), ApiError> {
            self.calls.lock().unwrap().push(format!("detach {policy}"));
            self.attached.lock().unwrap().remove(policy);
            Ok(())
        }
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pattern_maps_groups_through_the_segment_rule_and_recognises_its_own_names() {
        let p = PolicyPattern::parse("acme-live-{group}").unwrap();
        assert_eq!(p.policy_for("team-a").unwrap(), "acme-live-team-a");
        assert_eq!(p.policy_for("Team_A").unwrap(), "acme-live-x--Team-5fA");
        assert_eq!(p.policy_for(""), None);
        assert!(p.matches("acme-live-team-a"));
        assert!(p.matches("acme-live-x--Team-5fA"));
        assert!(!p.matches("acme-live-"));
        assert!(!p.matches("acme-live-a--b"), "not a canonical segment");
        assert!(!p.matches("other-team-a"));
        let s = PolicyPattern::parse("{group}.groupcast").unwrap();
        assert_eq!(s.policy_for("a").unwrap(), "a.groupcast");
        assert!(s.matches("a.groupcast") && !s.matches("a.groupcast2"));
    }

    #[test]
    fn pattern_rules_are_enforced() {
        for (bad, rule) in [
            ("acme", "exactly once"),
            ("{group}-{group}", "exactly once"),
            ("{group}", "prefix or suffix"),
            ("acme/{group}", "[A-Za-z0-9_+=,.@-]"),
            (&format!("{}{{group}}", "a".repeat(128)), "128"),
        ] {
            let e = PolicyPattern::parse(bad).unwrap_err();
            assert!(e.to_string().contains(rule), "{bad:?}: {e}");
        }
    }

    #[test]
    fn identity_ids_are_validated() {
        assert!(validate_identity_id(ID).is_ok());
        for bad in [
            "",
            "us-east-1",
            ":abc",
            "us-east-1:",
            "us-east-1:zz",
            "us-east-1:ab/../x",
            &format!("us-east-1:{}", "a".repeat(60)),
        ] {
            assert!(
                validate_identity_id(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("identityId"),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn reconcile_attaches_missing_detaches_stale_and_leaves_foreign_policies() {
        let iot = FakeIot::new(
            &["g-team-a", "g-team-b", "g-x--Team-5fC", "g-old"],
            &["g-team-a", "g-old", "g-a--b", "device-policy"],
        );
        let p = PolicyPattern::parse("g-{group}").unwrap();
        let report = reconcile(
            &iot,
            &p,
            ID,
            &groups(&["team-a", "team-b", "Team_C", "no-iot", ""]),
        )
        .await
        .unwrap();
        assert_eq!(report.attached, ["g-team-b", "g-x--Team-5fC"]);
        assert_eq!(
            report.detached,
            ["g-old"],
            "g-a--b is not a canonical segment, so not ours"
        );
        assert_eq!(report.kept, ["g-team-a"]);
        assert_eq!(report.missing, ["no-iot"]);
        assert_eq!(report.unmappable, [""]);
        assert_eq!(
            iot.attached(),
            [
                "device-policy",
                "g-a--b",
                "g-team-a",
                "g-team-b",
                "g-x--Team-5fC"
            ]
        );
        let calls = iot.calls.lock().unwrap().clone();
        let first_attach = calls.iter().position(|c| c.starts_with("attach")).unwrap();
        assert!(
            calls.iter().rposition(|c| c.starts_with("detach")).unwrap() < first_attach,
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn reconcile_is_idempotent_and_empties_on_no_groups() {
        let iot = FakeIot::new(&["g-a", "g-b"], &[]);
        let p = PolicyPattern::parse("g-{group}").unwrap();
        reconcile(&iot, &p, ID, &groups(&["a", "b"])).await.unwrap();
        let second = reconcile(&iot, &p, ID, &groups(&["a", "b", "a"]))
            .await
            .unwrap();
        assert!(second.attached.is_empty() && second.detached.is_empty());
        assert_eq!(second.kept, ["g-a", "g-b"]);
        let emptied = reconcile(&iot, &p, ID, &[]).await.unwrap();
        assert_eq!(emptied.detached, ["g-a", "g-b"]);
        assert!(iot.attached().is_empty());
    }

    #[tokio::test]
    async fn reconcile_stops_on_other_api_errors_naming_the_call() {
        let mut iot = FakeIot::new(&["g-a"], &[]);
        iot.fail_attach = Some(ApiErrorKind::LimitExceeded);
        let p = PolicyPattern::parse("g-{group}").unwrap();
        let e = reconcile(&iot, &p, ID, &groups(&["a"])).await.unwrap_err();
        assert!(
            matches!(&e, GrantError::Api { operation: "AttachPolicy", policy: Some(p), .. } if p == "g-a"),
            "{e}"
        );
        let e = reconcile(&iot, &p, "not-an-id", &groups(&["a"]))
            .await
            .unwrap_err();
        assert!(matches!(e, GrantError::Target { .. }));
    }
}
