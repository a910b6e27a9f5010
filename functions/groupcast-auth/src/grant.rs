//! IoT grants: make this project's groupcast IoT policies attached to a Cognito identity exactly
//! those of the user's IoT groups. The one implementation behind both the iot-grant Lambda and
//! the provisioner's `iot grant`.
//!
//! The provisioner creates one IoT policy per group of `iot.groups`, named by a pattern such as
//! `acme-live-{group}` (`{group}` is `groupcast::group_segment` of the group) and tagged
//! `groupcast:project=<project>`. [`GrantRules`] holds those three facts; [`plan`] decides and
//! [`apply`] carries out (together: [`reconcile`]):
//!
//! - **Only `iot.groups`.** A group outside the project's IoT groups gets nothing (it is listed in
//!   [`Grant::ignored`]), whatever policy its name would map to.
//! - **Only this project's policies.** A policy is this project's when its name matches the
//!   pattern *and* it carries the tag `groupcast:project=<project>`. Nothing else is ever attached
//!   or detached: with the default `{project}-{group}` pattern, project `acme` owns neither
//!   `acme-live-team-a` (tagged `acme-live`) nor an untagged policy of that name.
//! - **The quota.** IoT allows 10 policies per Cognito identity; a grant that would need more is
//!   refused before any change.
//! - **Attach what is missing, detach only this project's policies no longer wanted**, detaching
//!   first so narrowing never waits on widening. Running it twice changes nothing the second time.
//! - **A sync only narrows.** [`narrow`] ([`plan_narrowing`]) detaches the policies of groups the
//!   user no longer holds and attaches nothing: the revocation path runs on the server's word, and
//!   widening stays the user's own request.
//!
//! The AWS calls sit behind [`IotPolicyApi`], implemented for `aws_sdk_iot::Client` with the `iot`
//! feature, so the unit tests below run against an in-memory IoT.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use groupcast::{decode_segment, group_segment, limits::IOT_POLICIES_PER_TARGET};
use serde::Serialize;

/// `GROUPCAST_PROJECT`: the provisioner's `project.name`, the value of the ownership tag.
pub const PROJECT_ENV: &str = "GROUPCAST_PROJECT";
/// `GROUPCAST_IOT_GROUPS`: the project's `iot.groups` as JSON array text, e.g. `["admins","team-a"]`
/// (JSON because a Cognito group name may hold a comma).
pub const GROUPS_ENV: &str = "GROUPCAST_IOT_GROUPS";
/// `GROUPCAST_IOT_POLICY_PATTERN`: the policy-name pattern, e.g. `acme-live-{group}`.
pub const PATTERN_ENV: &str = "GROUPCAST_IOT_POLICY_PATTERN";
/// The tag that marks a resource as this project's (`groupcast:project=<project>`).
pub const PROJECT_TAG: &str = "groupcast:project";
const PLACEHOLDER: &str = "{group}";
/// IoT policy names are at most this long (IoT `CreatePolicy` API reference).
const POLICY_NAME_MAX: usize = 128;

/// How an IoT call failed, as far as a grant cares.
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

/// The IoT calls a grant needs.
pub trait IotPolicyApi {
    /// Names of every policy attached to `target` (all pages).
    fn attached_policies(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Vec<String>, ApiError>> + Send;
    /// The tags of policy `policy`, or `None` when no such policy exists.
    fn policy_tags(
        &self,
        policy: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, ApiError>> + Send;
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
    /// The grant rules (project, IoT groups) break a rule; `field` names the setting.
    #[error("{field}: {rule}")]
    Rules {
        /// The setting: an environment variable, or `project` / `iot.groups[i]`.
        field: String,
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
    /// The grant would leave more policies on the identity than IoT allows; nothing was changed.
    #[error(
        "identityId {identity_id:?}: {wanted} groupcast policies plus {other} other attached \
         policies exceed IoT's {max} policies per identity; nothing was changed"
    )]
    Quota {
        /// The identity.
        identity_id: String,
        /// This project's policies the grant wants on the identity.
        wanted: usize,
        /// Policies on the identity that are not this project's (left alone).
        other: usize,
        /// IoT's quota.
        max: usize,
    },
    /// An IoT call failed; the calls before it took effect, so the grant is safe to re-run.
    #[error("IoT {operation}{}: {error}", policy.as_ref().map(|p| format!(" {p}")).unwrap_or_default())]
    Api {
        /// `ListAttachedPolicies`, `GetPolicy`, `AttachPolicy` or `DetachPolicy`.
        operation: &'static str,
        /// The policy, for the per-policy calls.
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

    /// Whether `policy` is a group policy name of this pattern (its middle decodes as a segment).
    /// A name alone never makes a policy this project's: see [`GrantRules`].
    pub fn matches(&self, policy: &str) -> bool {
        policy
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(&self.suffix))
            .is_some_and(|segment| decode_segment(segment).is_some())
    }
}

/// What a grant may touch: the project (its ownership tag), the policy-name pattern and the
/// project's IoT groups with their policy names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRules {
    project: String,
    pattern: PolicyPattern,
    /// IoT group → its policy name.
    groups: BTreeMap<String, String>,
}

/// What the user's groups ask for, under [`GrantRules`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Policy name → the IoT group it serves.
    pub policies: BTreeMap<String, String>,
    /// Groups that are not IoT groups of the project (sorted, distinct).
    pub ignored: Vec<String>,
}

impl GrantRules {
    /// Rules for `project`, `pattern` and the project's IoT groups (the provisioner's
    /// `project.name`, `iot.policy_name_pattern` and `iot.groups`).
    ///
    /// # Errors
    /// [`GrantError::Pattern`], or [`GrantError::Rules`] naming `project` or `iot.groups[i]`.
    pub fn new(project: &str, pattern: &str, iot_groups: &[String]) -> Result<Self, GrantError> {
        if project.trim().is_empty() {
            return Err(GrantError::Rules {
                field: "project".into(),
                rule: "must name the project whose groupcast:project tag marks its policies".into(),
            });
        }
        let pattern = PolicyPattern::parse(pattern)?;
        let mut groups = BTreeMap::new();
        let mut by_policy: BTreeMap<String, &str> = BTreeMap::new();
        for (i, group) in iot_groups.iter().enumerate() {
            let bad = |rule: String| GrantError::Rules {
                field: format!("iot.groups[{i}]"),
                rule,
            };
            let policy = pattern.policy_for(group).ok_or_else(|| {
                bad(format!(
                    "{group:?} maps to no IoT policy name (no channel segment, or longer than \
                     {POLICY_NAME_MAX} characters)"
                ))
            })?;
            if let Some(other) = by_policy.get(&policy).filter(|o| **o != group.as_str()) {
                return Err(bad(format!(
                    "{group:?} and {other:?} map to the same policy {policy:?}"
                )));
            }
            by_policy.insert(policy.clone(), group);
            groups.insert(group.clone(), policy);
        }
        Ok(GrantRules {
            project: project.to_owned(),
            pattern,
            groups,
        })
    }

    /// Reads [`PROJECT_ENV`], [`GROUPS_ENV`] and [`PATTERN_ENV`] through `get` (the environment,
    /// or a stand-in in tests).
    ///
    /// # Errors
    /// [`GrantError::Rules`] naming the variable and the rule.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, GrantError> {
        let var = |name: &'static str, example: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| GrantError::Rules {
                    field: name.into(),
                    rule: format!("must be set, e.g. {example}"),
                })
        };
        let project = var(PROJECT_ENV, "acme-live")?;
        let pattern = var(PATTERN_ENV, "acme-live-{group}")?;
        let groups_text = var(GROUPS_ENV, r#"["admins","team-a"]"#)?;
        let groups: Vec<String> =
            serde_json::from_str(&groups_text).map_err(|e| GrantError::Rules {
                field: GROUPS_ENV.into(),
                rule: format!("must be JSON array text of group names, e.g. [\"team-a\"]: {e}"),
            })?;
        GrantRules::new(&project, &pattern, &groups).map_err(|e| {
            let field = match &e {
                GrantError::Pattern { .. } => PATTERN_ENV,
                GrantError::Rules { field, .. } if field == "project" => PROJECT_ENV,
                _ => GROUPS_ENV,
            };
            GrantError::Rules {
                field: field.into(),
                rule: e.to_string(),
            }
        })
    }

    /// The project whose tag marks its policies.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The policy-name pattern.
    pub fn pattern(&self) -> &PolicyPattern {
        &self.pattern
    }

    /// The policies `groups` ask for: only IoT groups get one; the others are `ignored`.
    pub fn wanted(&self, groups: &[String]) -> Wanted {
        let mut wanted = Wanted::default();
        let mut ignored = BTreeSet::new();
        for group in groups {
            match self.groups.get(group) {
                Some(policy) => {
                    wanted.policies.insert(policy.clone(), group.clone());
                }
                None => {
                    ignored.insert(group.clone());
                }
            }
        }
        wanted.ignored = ignored.into_iter().collect();
        wanted
    }

    /// Whether a policy with these tags is this project's.
    fn owns(&self, tags: Option<&BTreeMap<String, String>>) -> bool {
        tags.and_then(|t| t.get(PROJECT_TAG)) == Some(&self.project)
    }
}

/// What a grant does ([`plan`]) or did ([`apply`]). Every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The identity.
    pub identity_id: String,
    /// This project's policies on the identity afterwards (`kept` + `attached`).
    pub policies: Vec<String>,
    /// This project's policies newly attached.
    pub attached: Vec<String>,
    /// This project's policies detached: their groups are no longer the user's.
    pub detached: Vec<String>,
    /// This project's policies already attached and still wanted.
    pub kept: Vec<String>,
    /// IoT groups whose policy does not exist (not applied yet): nothing was granted for them.
    pub missing: Vec<String>,
    /// Policies of IoT groups that exist but are not tagged as this project's: never attached.
    pub not_owned: Vec<String>,
    /// The user's groups that are not IoT groups of this project: nothing was granted for them.
    pub ignored: Vec<String>,
}

/// Checks that `identity_id` looks like a Cognito identity id (`<region>:<uuid>`).
///
/// # Errors
/// [`GrantError::Target`] naming the rule.
pub fn validate_identity_id(identity_id: &str) -> Result<(), GrantError> {
    // The rule is groupcast's, shared with the IoT subscriber's client id (groupcast::iot).
    if groupcast::iot::is_identity_id(identity_id) {
        Ok(())
    } else {
        Err(GrantError::Target {
            target: identity_id.to_owned(),
            rule: groupcast::iot::IDENTITY_ID_RULE.into(),
        })
    }
}

async fn tags_of<A: IotPolicyApi + ?Sized>(
    api: &A,
    policy: &str,
) -> Result<Option<BTreeMap<String, String>>, GrantError> {
    api.policy_tags(policy)
        .await
        .map_err(|error| GrantError::Api {
            operation: "GetPolicy",
            policy: Some(policy.to_owned()),
            error,
        })
}

/// Reads the identity's policies and the tags of the ones that matter, and decides: the [`Grant`]
/// that [`apply`] would carry out. Changes nothing.
///
/// # Errors
/// [`GrantError::Target`], [`GrantError::Quota`] (the wanted policies do not fit beside the
/// others), or [`GrantError::Api`] for a failed read.
pub async fn plan<A: IotPolicyApi + ?Sized>(
    api: &A,
    rules: &GrantRules,
    identity_id: &str,
    groups: &[String],
) -> Result<Grant, GrantError> {
    plan_with(api, rules, identity_id, groups, Scope::Exact).await
}

/// Like [`plan`], but only ever narrows: detaches this project's policies whose groups are not
/// among `groups`, keeps the rest, and attaches nothing (`attached` is empty; a wanted policy
/// not attached yet is left for the user's own grant). What a revocation sync does: it runs on
/// the server's word, not the user's request, so it may take access away but never hand it out.
/// No quota check: narrowing never adds a policy.
///
/// # Errors
/// [`GrantError::Target`], or [`GrantError::Api`] for a failed read.
pub async fn plan_narrowing<A: IotPolicyApi + ?Sized>(
    api: &A,
    rules: &GrantRules,
    identity_id: &str,
    groups: &[String],
) -> Result<Grant, GrantError> {
    plan_with(api, rules, identity_id, groups, Scope::NarrowOnly).await
}

/// Whether a plan may attach ([`plan`]) or only detach ([`plan_narrowing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Exact,
    NarrowOnly,
}

async fn plan_with<A: IotPolicyApi + ?Sized>(
    api: &A,
    rules: &GrantRules,
    identity_id: &str,
    groups: &[String],
    scope: Scope,
) -> Result<Grant, GrantError> {
    validate_identity_id(identity_id)?;
    let wanted = rules.wanted(groups);
    let attached = api
        .attached_policies(identity_id)
        .await
        .map_err(|error| GrantError::Api {
            operation: "ListAttachedPolicies",
            policy: None,
            error,
        })?;
    let mut grant = Grant {
        identity_id: identity_id.to_owned(),
        ignored: wanted.ignored.clone(),
        ..Grant::default()
    };
    // Attached policies: this project's (name and tag) or someone else's (left alone, counted).
    let mut ours = BTreeSet::new();
    let mut other = 0;
    for policy in attached.iter().collect::<BTreeSet<_>>() {
        let owned =
            rules.pattern.matches(policy) && rules.owns(tags_of(api, policy).await?.as_ref());
        if owned {
            ours.insert(policy.clone());
        } else {
            other += 1;
        }
    }
    for (policy, group) in &wanted.policies {
        if ours.contains(policy) {
            grant.kept.push(policy.clone());
            continue;
        }
        if scope == Scope::NarrowOnly {
            continue;
        }
        match tags_of(api, policy).await? {
            None => grant.missing.push(group.clone()),
            Some(tags) if rules.owns(Some(&tags)) => grant.attached.push(policy.clone()),
            Some(_) => grant.not_owned.push(policy.clone()),
        }
    }
    grant.detached = ours
        .iter()
        .filter(|p| !wanted.policies.contains_key(*p))
        .cloned()
        .collect();
    let wanted_count = grant.kept.len() + grant.attached.len();
    // IoT Core quotas ("Security and identity": policies attached to a certificate or Amazon
    // Cognito identity, 10): https://docs.aws.amazon.com/general/latest/gr/iot-core.html
    if wanted_count + other > IOT_POLICIES_PER_TARGET {
        return Err(GrantError::Quota {
            identity_id: identity_id.to_owned(),
            wanted: wanted_count,
            other,
            max: IOT_POLICIES_PER_TARGET,
        });
    }
    grant.policies = grant.kept.iter().chain(&grant.attached).cloned().collect();
    grant.policies.sort();
    grant.missing.sort();
    Ok(grant)
}

/// Carries out a [`plan`]: detaches first (narrowing access must not wait on a failure to widen
/// it), then attaches.
///
/// # Errors
/// [`GrantError::Api`] for the first failed call; the calls before it took effect, and re-running
/// the grant completes it.
pub async fn apply<A: IotPolicyApi + ?Sized>(api: &A, grant: Grant) -> Result<Grant, GrantError> {
    let target = grant.identity_id.as_str();
    for policy in &grant.detached {
        api.detach_policy(policy, target)
            .await
            .map_err(|error| GrantError::Api {
                operation: "DetachPolicy",
                policy: Some(policy.clone()),
                error,
            })?;
    }
    for policy in &grant.attached {
        api.attach_policy(policy, target)
            .await
            .map_err(|error| GrantError::Api {
                operation: "AttachPolicy",
                policy: Some(policy.clone()),
                error,
            })?;
    }
    tracing::info!(
        identity_id = target,
        attached = ?grant.attached,
        detached = ?grant.detached,
        kept = grant.kept.len(),
        missing = ?grant.missing,
        not_owned = ?grant.not_owned,
        ignored = grant.ignored.len(),
        "IoT grant reconciled"
    );
    Ok(grant)
}

/// [`plan_narrowing`] then [`apply`]: detaches this project's policies on `identity_id` whose
/// groups are not among `groups`; attaches nothing.
///
/// # Errors
/// As [`plan_narrowing`] and [`apply`].
pub async fn narrow<A: IotPolicyApi + ?Sized>(
    api: &A,
    rules: &GrantRules,
    identity_id: &str,
    groups: &[String],
) -> Result<Grant, GrantError> {
    let grant = plan_narrowing(api, rules, identity_id, groups).await?;
    apply(api, grant).await
}

/// [`plan`] then [`apply`]: makes this project's policies on `identity_id` exactly those of the
/// IoT groups among `groups`. See the [module docs](self).
///
/// # Errors
/// As [`plan`] and [`apply`].
pub async fn reconcile<A: IotPolicyApi + ?Sized>(
    api: &A,
    rules: &GrantRules,
    identity_id: &str,
    groups: &[String],
) -> Result<Grant, GrantError> {
    let grant = plan(api, rules, identity_id, groups).await?;
    apply(api, grant).await
}

#[cfg(feature = "iot")]
mod aws {
    //! [`IotPolicyApi`] over the AWS SDK, with the SDK's paginators.

    use std::collections::BTreeMap;

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
            let policies = self
                .list_attached_policies()
                .target(target)
                .recursive(false)
                .page_size(250)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(api_error)?;
            Ok(policies.into_iter().filter_map(|p| p.policy_name).collect())
        }

        async fn policy_tags(
            &self,
            policy: &str,
        ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
            let arn = match self.get_policy().policy_name(policy).send().await {
                Ok(p) => p.policy_arn.unwrap_or_default(),
                Err(e) => {
                    let e = api_error(e);
                    return match e.kind {
                        ApiErrorKind::NotFound => Ok(None),
                        _ => Err(e),
                    };
                }
            };
            let tags = self
                .list_tags_for_resource()
                .resource_arn(arn)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(api_error)?;
            Ok(Some(
                tags.into_iter()
                    .map(|t| (t.key, t.value.unwrap_or_default()))
                    .collect(),
            ))
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
    use std::sync::Mutex;

    const ID: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";

    /// IoT in memory: policies with their tags, one identity's attachments, and a log of calls.
    #[derive(Default)]
    struct FakeIot {
        policies: BTreeMap<String, BTreeMap<String, String>>,
        attached: Mutex<BTreeSet<String>>,
        calls: Mutex<Vec<String>>,
        fail_attach: Option<ApiErrorKind>,
    }

    impl FakeIot {
        /// `policies`: (name, project tag or `None` for untagged).
        fn new(policies: &[(&str, Option<&str>)], attached: &[&str]) -> Self {
            FakeIot {
                policies: policies
                    .iter()
                    .map(|(name, project)| {
                        let tags = project
                            .map(|p| BTreeMap::from([(PROJECT_TAG.to_owned(), p.to_owned())]))
                            .unwrap_or_default();
                        (name.to_string(), tags)
                    })
                    .collect(),
                attached: Mutex::new(attached.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }
        }
        fn attached(&self) -> Vec<String> {
            self.attached.lock().unwrap().iter().cloned().collect()
        }
        fn writes(&self) -> Vec<String> {
            let calls = self.calls.lock().unwrap();
            calls
                .iter()
                .filter(|c| c.starts_with("attach") || c.starts_with("detach"))
                .cloned()
                .collect()
        }
    }

    impl IotPolicyApi for FakeIot {
        async fn attached_policies(&self, target: &str) -> Result<Vec<String>, ApiError> {
            self.calls.lock().unwrap().push(format!("list {target}"));
            Ok(self.attached())
        }
        async fn policy_tags(
            &self,
            policy: &str,
        ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
            self.calls.lock().unwrap().push(format!("tags {policy}"));
            Ok(self.policies.get(policy).cloned())
        }
        async fn attach_policy(&self, policy: &str, _target: &str) -> Result<(), ApiError> {
            self.calls.lock().unwrap().push(format!("attach {policy}"));
            if let Some(kind) = self.fail_attach {
                return Err(ApiError {
                    kind,
                    message: "boom".into(),
                });
            }
            if !self.policies.contains_key(policy) {
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

    fn rules(project: &str, pattern: &str, iot_groups: &[&str]) -> GrantRules {
        GrantRules::new(project, pattern, &groups(iot_groups)).unwrap()
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

    #[test]
    fn rules_refuse_an_empty_project_and_groups_without_a_policy_name() {
        let e = GrantRules::new(" ", "g-{group}", &[]).unwrap_err();
        assert!(e.to_string().starts_with("project:"), "{e}");
        let e = GrantRules::new("acme", "g-{group}", &groups(&["a", ""])).unwrap_err();
        assert!(e.to_string().starts_with("iot.groups[1]:"), "{e}");
        let e = GrantRules::new("acme", "g/{group}", &[]).unwrap_err();
        assert!(matches!(e, GrantError::Pattern { .. }), "{e}");
    }

    #[test]
    fn rules_read_from_the_environment_name_the_variable_that_is_wrong() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let ok = GrantRules::from_lookup(env(&[
            (PROJECT_ENV, "acme-live"),
            (PATTERN_ENV, "acme-live-{group}"),
            (GROUPS_ENV, r#"["team-a","a,b"]"#),
        ]))
        .unwrap();
        assert_eq!(ok.project(), "acme-live");
        assert_eq!(
            ok.wanted(&groups(&["a,b", "x"])).policies,
            BTreeMap::from([("acme-live-x--a-2cb".to_owned(), "a,b".to_owned())])
        );
        for (vars, var) in [
            (
                &[(PATTERN_ENV, "p-{group}"), (GROUPS_ENV, "[]")][..],
                PROJECT_ENV,
            ),
            (&[(PROJECT_ENV, "p"), (GROUPS_ENV, "[]")][..], PATTERN_ENV),
            (
                &[(PROJECT_ENV, "p"), (PATTERN_ENV, "p-{group}")][..],
                GROUPS_ENV,
            ),
            (
                &[
                    (PROJECT_ENV, "p"),
                    (PATTERN_ENV, "p-{group}"),
                    (GROUPS_ENV, "team-a,team-b"),
                ][..],
                GROUPS_ENV,
            ),
            (
                &[
                    (PROJECT_ENV, "p"),
                    (PATTERN_ENV, "p/{group}"),
                    (GROUPS_ENV, "[]"),
                ][..],
                PATTERN_ENV,
            ),
            (
                &[
                    (PROJECT_ENV, "p"),
                    (PATTERN_ENV, "p-{group}"),
                    (GROUPS_ENV, r#"["ok", ""]"#),
                ][..],
                GROUPS_ENV,
            ),
        ] {
            let vars: &'static [(&str, &str)] = Vec::leak(vars.to_vec());
            let e = GrantRules::from_lookup(env(vars)).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}:")), "{e}");
        }
    }

    #[tokio::test]
    async fn attaches_missing_detaches_stale_and_leaves_foreign_policies() {
        let iot = FakeIot::new(
            &[
                ("g-team-a", Some("acme")),
                ("g-team-b", Some("acme")),
                ("g-x--Team-5fC", Some("acme")),
                ("g-old", Some("acme")),
                ("device-policy", None),
            ],
            &["g-team-a", "g-old", "g-a--b", "device-policy"],
        );
        let r = rules(
            "acme",
            "g-{group}",
            &["team-a", "team-b", "Team_C", "no-iot"],
        );
        let grant = reconcile(
            &iot,
            &r,
            ID,
            &groups(&["team-a", "team-b", "Team_C", "no-iot", "not-ours", ""]),
        )
        .await
        .unwrap();
        assert_eq!(grant.attached, ["g-team-b", "g-x--Team-5fC"]);
        assert_eq!(
            grant.detached,
            ["g-old"],
            "g-a--b is not a canonical segment"
        );
        assert_eq!(grant.kept, ["g-team-a"]);
        assert_eq!(grant.policies, ["g-team-a", "g-team-b", "g-x--Team-5fC"]);
        assert_eq!(grant.missing, ["no-iot"]);
        assert_eq!(grant.ignored, ["", "not-ours"]);
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
        let writes = iot.writes();
        assert_eq!(
            writes,
            ["detach g-old", "attach g-team-b", "attach g-x--Team-5fC"]
        );
    }

    #[tokio::test]
    async fn groups_outside_the_iot_groups_get_nothing_even_when_a_policy_has_their_name() {
        // `root` is a Cognito group of the user but not an IoT group: its policy exists and is even
        // tagged as this project's (left over, or made by hand), yet it is never attached.
        let iot = FakeIot::new(&[("g-root", Some("acme")), ("g-a", Some("acme"))], &[]);
        let grant = reconcile(
            &iot,
            &rules("acme", "g-{group}", &["a"]),
            ID,
            &groups(&["root", "a"]),
        )
        .await
        .unwrap();
        assert_eq!(grant.attached, ["g-a"]);
        assert_eq!(grant.ignored, ["root"]);
        assert_eq!(iot.attached(), ["g-a"]);
    }

    #[tokio::test]
    async fn another_projects_policies_under_the_default_pattern_are_never_attached_or_detached() {
        // Project `acme` with the default `{project}-{group}` pattern: `acme-live-team-a` matches
        // `acme-{group}` (segment `live-team-a`) but is project `acme-live`'s, and an untagged
        // policy of a matching name is nobody's. Group `live-team-a` of `acme` would want the
        // first by name: still never attached.
        let iot = FakeIot::new(
            &[
                ("acme-live-team-a", Some("acme-live")),
                ("acme-handmade", None),
                ("acme-team-a", Some("acme")),
            ],
            &["acme-live-team-a", "acme-handmade"],
        );
        let r = rules("acme", "acme-{group}", &["team-a", "live-team-a"]);
        let grant = reconcile(&iot, &r, ID, &groups(&["team-a", "live-team-a"]))
            .await
            .unwrap();
        assert_eq!(grant.attached, ["acme-team-a"]);
        assert_eq!(grant.not_owned, ["acme-live-team-a"]);
        assert!(grant.detached.is_empty(), "{grant:?}");
        // Revoking everything leaves the other project's and the untagged policy attached.
        let revoked = reconcile(&iot, &r, ID, &[]).await.unwrap();
        assert_eq!(revoked.detached, ["acme-team-a"]);
        assert_eq!(iot.attached(), ["acme-handmade", "acme-live-team-a"]);
        assert!(
            !iot.writes()
                .iter()
                .any(|w| w.contains("acme-live") || w.contains("handmade")),
            "{:?}",
            iot.writes()
        );
    }

    #[tokio::test]
    async fn is_idempotent_and_empties_on_no_groups() {
        let iot = FakeIot::new(&[("g-a", Some("p")), ("g-b", Some("p"))], &[]);
        let r = rules("p", "g-{group}", &["a", "b"]);
        reconcile(&iot, &r, ID, &groups(&["a", "b"])).await.unwrap();
        let second = reconcile(&iot, &r, ID, &groups(&["a", "b", "a"]))
            .await
            .unwrap();
        assert!(second.attached.is_empty() && second.detached.is_empty());
        assert_eq!(second.kept, ["g-a", "g-b"]);
        let emptied = reconcile(&iot, &r, ID, &[]).await.unwrap();
        assert_eq!(emptied.detached, ["g-a", "g-b"]);
        assert!(iot.attached().is_empty());
    }

    #[tokio::test]
    async fn a_grant_beyond_the_ten_policy_quota_is_refused_before_any_change() {
        let names: Vec<String> = (0..8).map(|i| format!("g-t{i}")).collect();
        let mut policies: Vec<(&str, Option<&str>)> =
            names.iter().map(|n| (n.as_str(), Some("p"))).collect();
        policies.extend([("other-1", None), ("other-2", None), ("other-3", None)]);
        let iot = FakeIot::new(&policies, &["other-1", "other-2", "other-3", "g-t0"]);
        let iot_groups: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let r = GrantRules::new("p", "g-{group}", &iot_groups).unwrap();
        let e = reconcile(&iot, &r, ID, &iot_groups).await.unwrap_err();
        assert_eq!(
            e,
            GrantError::Quota {
                identity_id: ID.into(),
                wanted: 8,
                other: 3,
                max: 10
            }
        );
        assert!(e.to_string().contains("10 policies per identity"), "{e}");
        assert!(iot.writes().is_empty(), "{:?}", iot.writes());
        // Exactly ten fits.
        let seven = &iot_groups[..7];
        let grant = reconcile(&iot, &r, ID, seven).await.unwrap();
        assert_eq!(grant.policies.len(), 7);
        assert_eq!(iot.attached().len(), 10);
    }

    #[tokio::test]
    async fn narrowing_detaches_groups_no_longer_held_and_never_attaches_even_a_wanted_policy() {
        let iot = FakeIot::new(
            &[
                ("g-a", Some("p")),
                ("g-b", Some("p")),
                ("g-c", Some("p")),
                ("g-other", Some("q")),
            ],
            &["g-a", "g-b", "g-other", "device"],
        );
        let r = rules("p", "g-{group}", &["a", "b", "c", "other"]);
        // The user still holds a and c; c was never granted (the user did not ask).
        let grant = narrow(&iot, &r, ID, &groups(&["a", "c"])).await.unwrap();
        assert_eq!(grant.detached, ["g-b"]);
        assert_eq!(grant.kept, ["g-a"]);
        assert!(grant.attached.is_empty(), "{grant:?}");
        assert_eq!(grant.policies, ["g-a"]);
        assert_eq!(iot.attached(), ["device", "g-a", "g-other"]);
        assert_eq!(iot.writes(), ["detach g-b"]);
        // A user with no groups left loses every policy of this project, and only those.
        let emptied = narrow(&iot, &r, ID, &[]).await.unwrap();
        assert_eq!(emptied.detached, ["g-a"]);
        assert_eq!(iot.attached(), ["device", "g-other"]);
    }

    #[tokio::test]
    async fn narrowing_is_never_refused_by_the_quota_since_it_adds_nothing() {
        let names: Vec<String> = (0..10).map(|i| format!("g-t{i}")).collect();
        let policies: Vec<(&str, Option<&str>)> =
            names.iter().map(|n| (n.as_str(), Some("p"))).collect();
        let attached: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut iot = FakeIot::new(&policies, &attached);
        // Ten attached, plus a foreign one: already over the quota (made by hand, say).
        iot.policies.insert("foreign".into(), BTreeMap::new());
        iot.attached.lock().unwrap().insert("foreign".into());
        let all: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let r = GrantRules::new("p", "g-{group}", &all).unwrap();
        assert!(matches!(
            plan(&iot, &r, ID, &all).await,
            Err(GrantError::Quota { .. })
        ));
        let grant = narrow(&iot, &r, ID, &all[1..]).await.unwrap();
        assert_eq!(grant.detached, ["g-t0"]);
    }

    #[tokio::test]
    async fn plan_reads_only_and_apply_carries_it_out() {
        let iot = FakeIot::new(&[("g-a", Some("p")), ("g-b", Some("p"))], &["g-b"]);
        let r = rules("p", "g-{group}", &["a", "b"]);
        let planned = plan(&iot, &r, ID, &groups(&["a"])).await.unwrap();
        assert_eq!(
            (planned.attached.clone(), planned.detached.clone()),
            (vec!["g-a".to_owned()], vec!["g-b".to_owned()])
        );
        assert!(iot.writes().is_empty());
        apply(&iot, planned).await.unwrap();
        assert_eq!(iot.attached(), ["g-a"]);
    }

    #[tokio::test]
    async fn stops_on_api_errors_naming_the_call_and_refuses_bad_targets() {
        let mut iot = FakeIot::new(&[("g-a", Some("p"))], &[]);
        iot.fail_attach = Some(ApiErrorKind::LimitExceeded);
        let r = rules("p", "g-{group}", &["a"]);
        let e = reconcile(&iot, &r, ID, &groups(&["a"])).await.unwrap_err();
        assert!(
            matches!(&e, GrantError::Api { operation: "AttachPolicy", policy: Some(p), .. } if p == "g-a"),
            "{e}"
        );
        let e = reconcile(&iot, &r, "not-an-id", &groups(&["a"]))
            .await
            .unwrap_err();
        assert!(matches!(e, GrantError::Target { .. }));
    }
}
