//! The iot-grant handler: two requests, one grant implementation (`groupcast_auth::grant`).
//!
//! **Grant** `{token, identityId?}`, from the user's client: this project's IoT policies on the
//! token's own Cognito identity become exactly those of the user's IoT groups. The identity is the
//! token's, never the caller's choice: after the ID token verifies (`groupcast_auth::jwt`), the
//! function asks Cognito which identity that token logs in as (`cognito-identity:GetId`,
//! [`crate::identity`]); a request that names another `identityId` is refused with both ids. The
//! token proves only WHO the user is: their groups are read from the user pool now
//! (`groupcast_auth::membership`), never from the token's `cognito:groups`, so a token minted
//! before a removal cannot re-attach the group's policy. A failed lookup, or a deleted or disabled
//! user, changes nothing. The user → identity mapping is recorded ([`crate::registry`]) before
//! anything is attached.
//!
//! **Sync** `{"sync": {"user": "<Cognito sub>"}}`, from trusted server code (the EventBridge rule
//! on Cognito's group-change calls, `Publisher::revoke`): the policies of groups the user no longer
//! holds are detached from the identity recorded for that user, and nothing is attached
//! (`groupcast_auth::grant::narrow`): widening stays the user's own request. A deleted or disabled
//! user holds no groups, so everything of this project is detached. A user with no recorded
//! identity has nothing to detach. A failed lookup fails the invocation and changes nothing (the
//! caller retries). Only that one identity is ever touched. Because a sync only moves the identity
//! toward what the user pool says, a sync for any user, by anyone, can take away only access the
//! user no longer has a right to.

use groupcast_auth::grant::{self, Grant, GrantError, GrantRules, IotPolicyApi};
use groupcast_auth::jwt::{JwtError, VerifiedToken, Verifier};
use groupcast_auth::membership::{Membership, MembershipError};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};

use crate::identity::{IdentityError, IdentityIds};
use crate::registry::{RegistryError, UserIdentities};

/// The grant request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrantRequest {
    /// The user's ID token (a `Bearer ` prefix is allowed).
    pub token: String,
    /// Optional: the identity id the caller believes is the token's; it must be.
    #[serde(default)]
    pub identity_id: Option<String>,
}

/// The sync request: `{"sync": {"user": "<sub>"}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncRequest {
    pub sync: SyncTarget,
}

/// Whose attachments to sync.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncTarget {
    /// The user's Cognito `sub`.
    pub user: String,
}

/// The grant response: who, which groups, and what changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantResponse {
    /// The token's `sub`.
    pub sub: String,
    /// The user's current groups, from the user pool (not the token's claims).
    pub groups: Vec<String>,
    /// What the grant did, on the token's identity (`identityId`).
    #[serde(flatten)]
    pub grant: Grant,
}

/// The sync response. `identityId` is `null` (and every list empty) when no identity is recorded
/// for the user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncResponse {
    /// The user synced.
    pub user: String,
    /// The groups the user holds now; empty for a deleted or disabled user.
    pub groups: Vec<String>,
    /// Why `groups` is empty when the user pool said so: `deleted` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_state: Option<&'static str>,
    /// The identity synced, or `null`.
    pub identity_id: Option<String>,
    /// Always empty: a sync never attaches.
    pub attached: Vec<String>,
    /// This project's policies detached from the identity.
    pub detached: Vec<String>,
    /// This project's policies left attached (the user still holds their groups).
    pub kept: Vec<String>,
}

/// Either answer.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Response {
    Grant(GrantResponse),
    Sync(SyncResponse),
}

/// Why a grant or sync failed; [`Failure::error_type`] is the Lambda `errorType`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The request is neither shape, or a field is malformed.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The token did not verify.
    #[error("token rejected: {0}")]
    Unauthorized(#[from] JwtError),
    /// Cognito refused the token as a login, or could not be asked.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The request names an identity that is not the token's.
    #[error(
        "identityId {requested:?} in the request is not the token's identity {token:?} \
         (cognito-identity:GetId for the token's login): nothing was changed"
    )]
    IdentityMismatch {
        /// What the request named.
        requested: String,
        /// What Cognito says the token is.
        token: String,
    },
    /// The user's current groups are unknown, or the user is deleted or disabled: nothing was
    /// changed.
    #[error("{0}; nothing was changed")]
    Membership(#[from] MembershipError),
    /// The user → identity mapping could not be read or written: nothing was changed.
    #[error("{0}; nothing was changed")]
    Registry(#[from] RegistryError),
    /// The grant was refused (quota) or an IoT call failed.
    #[error("{0}")]
    Grant(#[from] GrantError),
}

impl Failure {
    fn error_type(&self) -> &'static str {
        match self {
            Failure::BadRequest(_)
            | Failure::Grant(GrantError::Target { .. })
            | Failure::Membership(MembershipError::BadUser { .. })
            | Failure::Registry(RegistryError::BadUser { .. }) => "BadRequest",
            Failure::Unauthorized(_) => "Unauthorized",
            Failure::Identity(e) if e.not_authorized => "Unauthorized",
            Failure::Membership(e) if e.user_is_gone() => "Unauthorized",
            Failure::Identity(_) => "IdentityFailed",
            Failure::IdentityMismatch { .. } => "IdentityMismatch",
            Failure::Membership(_) => "MembershipFailed",
            Failure::Registry(_) => "RegistryFailed",
            Failure::Grant(GrantError::Quota { .. }) => "QuotaExceeded",
            Failure::Grant(_) => "GrantFailed",
        }
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.error_type().into(),
            error_message: f.to_string(),
        }
    }
}

/// What the handler needs, built once at cold start.
#[derive(Debug)]
pub(crate) struct Deps<I, A, M, R> {
    pub verifier: Verifier,
    pub identities: I,
    pub iot: A,
    pub rules: GrantRules,
    /// The user pool: current groups.
    pub membership: M,
    /// The user → identity mapping.
    pub registry: R,
}

const SHAPES: &str = "expected {\"token\": \"<ID token>\", \"identityId\": \"<region>:<uuid>\" (optional)} \
                      or {\"sync\": {\"user\": \"<Cognito sub>\"}}";

/// Tells the two requests apart (an object with a `sync` key is a sync) and runs one.
pub(crate) async fn handle<I, A, M, R>(
    deps: &Deps<I, A, M, R>,
    event: serde_json::Value,
) -> Result<Response, Failure>
where
    I: IdentityIds + Sync,
    A: IotPolicyApi + Sync,
    M: Membership + Sync,
    R: UserIdentities + Sync,
{
    if event.get("sync").is_some() {
        let request: SyncRequest = serde_json::from_value(event)
            .map_err(|e| Failure::BadRequest(format!("{e}; {SHAPES}")))?;
        return sync(deps, &request.sync.user).await.map(Response::Sync);
    }
    let request: GrantRequest =
        serde_json::from_value(event).map_err(|e| Failure::BadRequest(format!("{e}; {SHAPES}")))?;
    if let Some(id) = &request.identity_id {
        grant::validate_identity_id(id)?;
    }
    let raw = groupcast_auth::events::strip_bearer(&request.token);
    let token = deps.verifier.verify(raw).await?;
    grant_to_token_identity(deps, raw, token, request.identity_id.as_deref())
        .await
        .map(Response::Grant)
}

/// For a verified `token` (`raw` is its text): its identity from Cognito, the mismatch check, the
/// user's current groups, the mapping, then the grant.
pub(crate) async fn grant_to_token_identity<I, A, M, R>(
    deps: &Deps<I, A, M, R>,
    raw: &str,
    token: VerifiedToken,
    requested: Option<&str>,
) -> Result<GrantResponse, Failure>
where
    I: IdentityIds + Sync,
    A: IotPolicyApi + Sync,
    M: Membership + Sync,
    R: UserIdentities + Sync,
{
    let identity = deps.identities.identity_id(raw).await?;
    if let Some(requested) = requested.filter(|r| *r != identity) {
        tracing::warn!(
            sub = token.sub,
            requested,
            identity,
            "refused: identityId is not the token's"
        );
        return Err(Failure::IdentityMismatch {
            requested: requested.to_owned(),
            token: identity,
        });
    }
    // The source of truth, not the token's claims (module docs).
    let groups = deps.membership.current_groups(&token.sub).await?;
    deps.registry.record(&token.sub, &identity).await?;
    let grant = grant::reconcile(&deps.iot, &deps.rules, &identity, &groups).await?;
    Ok(GrantResponse {
        sub: token.sub,
        groups,
        grant,
    })
}

/// The sync of one user (module docs).
pub(crate) async fn sync<I, A, M, R>(
    deps: &Deps<I, A, M, R>,
    user: &str,
) -> Result<SyncResponse, Failure>
where
    A: IotPolicyApi + Sync,
    M: Membership + Sync,
    R: UserIdentities + Sync,
{
    groupcast_auth::membership::validate_user(user)?;
    let Some(identity) = deps.registry.identity_of(user).await? else {
        tracing::info!(user, "sync: no identity recorded, nothing to detach");
        return Ok(SyncResponse {
            user: user.to_owned(),
            groups: Vec::new(),
            user_state: None,
            identity_id: None,
            attached: Vec::new(),
            detached: Vec::new(),
            kept: Vec::new(),
        });
    };
    let (groups, user_state) = match deps.membership.current_groups(user).await {
        Ok(groups) => (groups, None),
        Err(MembershipError::UserNotFound { .. }) => (Vec::new(), Some("deleted")),
        Err(MembershipError::UserDisabled { .. }) => (Vec::new(), Some("disabled")),
        Err(e) => return Err(e.into()),
    };
    let grant = grant::narrow(&deps.iot, &deps.rules, &identity, &groups).await?;
    Ok(SyncResponse {
        user: user.to_owned(),
        groups,
        user_state,
        identity_id: Some(grant.identity_id),
        attached: grant.attached,
        detached: grant.detached,
        kept: grant.kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use groupcast_auth::grant::{ApiError, PROJECT_TAG};
    use groupcast_auth::jwt::JwtConfig;
    use serde_json::json;

    const A: &str = "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41";
    const B: &str = "us-east-1:7d1e4f00-2c3b-4a5d-8e6f-90a1b2c3d4e5";

    /// Cognito that knows one login: the token text "token-a" is identity A.
    struct OneLogin;
    impl IdentityIds for OneLogin {
        async fn identity_id(&self, id_token: &str) -> Result<String, IdentityError> {
            match id_token {
                "token-a" => Ok(A.to_owned()),
                _ => Err(IdentityError {
                    not_authorized: true,
                    message: "NotAuthorizedException: Invalid login token.".into(),
                }),
            }
        }
    }

    /// IoT recording writes over a set of attachments per identity; every policy `g-*` exists,
    /// tagged project `p`.
    #[derive(Default)]
    struct Recorder {
        writes: Mutex<Vec<String>>,
        attached: Mutex<BTreeMap<String, Vec<String>>>,
    }
    impl Recorder {
        fn writes(&self) -> Vec<String> {
            self.writes.lock().unwrap().clone()
        }
    }
    impl IotPolicyApi for Recorder {
        async fn attached_policies(&self, target: &str) -> Result<Vec<String>, ApiError> {
            Ok(self
                .attached
                .lock()
                .unwrap()
                .get(target)
                .cloned()
                .unwrap_or_default())
        }
        async fn policy_tags(
            &self,
            policy: &str,
        ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
            Ok(policy
                .starts_with("g-")
                .then(|| BTreeMap::from([(PROJECT_TAG.to_owned(), "p".to_owned())])))
        }
        async fn attach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.writes
                .lock()
                .unwrap()
                .push(format!("attach {policy} {target}"));
            Ok(())
        }
        async fn detach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
            self.writes
                .lock()
                .unwrap()
                .push(format!("detach {policy} {target}"));
            Ok(())
        }
    }

    /// The user pool: user → groups, or the error it answers with.
    #[derive(Default)]
    struct Pool(BTreeMap<String, Result<Vec<String>, MembershipError>>);
    impl Membership for Pool {
        async fn current_groups(&self, user: &str) -> Result<Vec<String>, MembershipError> {
            self.0
                .get(user)
                .cloned()
                .unwrap_or_else(|| Err(MembershipError::UserNotFound { user: user.into() }))
        }
    }

    /// The mapping in memory.
    #[derive(Default)]
    struct Map(Mutex<BTreeMap<String, String>>);
    impl UserIdentities for Map {
        async fn identity_of(&self, user: &str) -> Result<Option<String>, RegistryError> {
            Ok(self.0.lock().unwrap().get(user).cloned())
        }
        async fn record(&self, user: &str, identity_id: &str) -> Result<(), RegistryError> {
            self.0
                .lock()
                .unwrap()
                .insert(user.to_owned(), identity_id.to_owned());
            Ok(())
        }
    }

    fn deps(user_a: Result<Vec<String>, MembershipError>) -> Deps<OneLogin, Recorder, Pool, Map> {
        // Port 9 (discard) on loopback: a JWKS fetch fails fast; these tests verify no token.
        let mut c = JwtConfig::new("http://127.0.0.1:9", vec!["client".into()]);
        c.jwks_url = "http://127.0.0.1:9/jwks.json".into();
        Deps {
            verifier: Verifier::new(c).unwrap(),
            identities: OneLogin,
            iot: Recorder::default(),
            rules: GrantRules::new("p", "g-{group}", &["team-a".into(), "team-b".into()]).unwrap(),
            membership: Pool(BTreeMap::from([("user-a".to_owned(), user_a)])),
            registry: Map::default(),
        }
    }

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|g| g.to_string()).collect()
    }

    fn verified(groups: &[&str]) -> VerifiedToken {
        VerifiedToken {
            sub: "user-a".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            exp: u64::MAX,
            claims: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_token_for_user_a_naming_identity_b_is_refused_naming_both_and_changes_nothing() {
        let d = deps(Ok(groups(&["team-a"])));
        let e = grant_to_token_identity(&d, "token-a", verified(&["team-a"]), Some(B))
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(message.contains(A) && message.contains(B), "{message}");
        assert_eq!(Diagnostic::from(e).error_type, "IdentityMismatch");
        assert!(d.iot.writes().is_empty());
        assert!(d.registry.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_grant_goes_to_the_tokens_own_identity_whether_or_not_the_request_names_it() {
        for requested in [None, Some(A)] {
            let d = deps(Ok(groups(&["admins", "team-a"])));
            let r = grant_to_token_identity(&d, "token-a", verified(&["team-a"]), requested)
                .await
                .unwrap();
            assert_eq!(r.grant.identity_id, A);
            assert_eq!(r.grant.attached, ["g-team-a"]);
            assert_eq!(r.grant.ignored, ["admins"]);
            assert_eq!(d.iot.writes(), [format!("attach g-team-a {A}")]);
            assert_eq!(
                d.registry.0.lock().unwrap()["user-a"],
                A,
                "mapping recorded"
            );
        }
    }

    #[tokio::test]
    async fn the_groups_granted_are_the_user_pools_not_the_tokens_claims() {
        // The token still says team-a and team-b (minted before a removal); the pool says team-b.
        let d = deps(Ok(groups(&["team-b"])));
        let r = grant_to_token_identity(&d, "token-a", verified(&["team-a", "team-b"]), None)
            .await
            .unwrap();
        assert_eq!(r.groups, ["team-b"]);
        assert_eq!(d.iot.writes(), [format!("attach g-team-b {A}")]);
    }

    #[tokio::test]
    async fn a_failed_membership_lookup_or_a_gone_user_fails_the_grant_closed() {
        for (answer, error_type) in [
            (
                Err(MembershipError::Lookup {
                    operation: "AdminListGroupsForUser",
                    user: "user-a".into(),
                    message: "ThrottlingException".into(),
                }),
                "MembershipFailed",
            ),
            (
                Err(MembershipError::UserDisabled {
                    user: "user-a".into(),
                }),
                "Unauthorized",
            ),
            (
                Err(MembershipError::UserNotFound {
                    user: "user-a".into(),
                }),
                "Unauthorized",
            ),
        ] {
            let d = deps(answer);
            let e = grant_to_token_identity(&d, "token-a", verified(&["team-a"]), None)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("nothing was changed"), "{e}");
            assert_eq!(Diagnostic::from(e).error_type, error_type);
            assert!(d.iot.writes().is_empty());
            assert!(d.registry.0.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_login_cognito_refuses_is_unauthorized_and_changes_nothing() {
        let d = deps(Ok(groups(&["team-a"])));
        let e = grant_to_token_identity(&d, "token-x", verified(&["team-a"]), None)
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "Unauthorized");
        assert!(d.iot.writes().is_empty());
    }

    #[tokio::test]
    async fn a_sync_detaches_the_groups_the_user_left_from_the_recorded_identity_only() {
        let d = deps(Ok(groups(&["team-b"])));
        d.registry
            .0
            .lock()
            .unwrap()
            .insert("user-a".into(), A.into());
        d.iot.attached.lock().unwrap().extend([
            (A.to_owned(), groups(&["g-team-a", "other"])),
            (B.to_owned(), groups(&["g-team-a"])),
        ]);
        let r = match handle(&d, json!({"sync": {"user": "user-a"}}))
            .await
            .unwrap()
        {
            Response::Sync(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.identity_id.as_deref(), Some(A));
        assert_eq!(r.detached, ["g-team-a"]);
        assert!(
            r.attached.is_empty(),
            "team-b is held but was never asked for"
        );
        assert_eq!(d.iot.writes(), [format!("detach g-team-a {A}")]);
    }

    #[tokio::test]
    async fn a_sync_for_a_deleted_or_disabled_user_detaches_everything_of_the_project() {
        for (answer, state) in [
            (
                Err(MembershipError::UserNotFound {
                    user: "user-a".into(),
                }),
                "deleted",
            ),
            (
                Err(MembershipError::UserDisabled {
                    user: "user-a".into(),
                }),
                "disabled",
            ),
        ] {
            let d = deps(answer);
            d.registry
                .0
                .lock()
                .unwrap()
                .insert("user-a".into(), A.into());
            d.iot
                .attached
                .lock()
                .unwrap()
                .insert(A.to_owned(), groups(&["g-team-a", "g-team-b"]));
            let r = sync(&d, "user-a").await.unwrap();
            assert_eq!(r.user_state, Some(state));
            assert_eq!(r.detached, ["g-team-a", "g-team-b"]);
        }
    }

    #[tokio::test]
    async fn a_sync_whose_lookup_fails_changes_nothing_and_reports_the_failure() {
        let d = deps(Err(MembershipError::Lookup {
            operation: "AdminGetUser",
            user: "user-a".into(),
            message: "AccessDenied".into(),
        }));
        d.registry
            .0
            .lock()
            .unwrap()
            .insert("user-a".into(), A.into());
        d.iot
            .attached
            .lock()
            .unwrap()
            .insert(A.to_owned(), groups(&["g-team-a"]));
        let e = sync(&d, "user-a").await.unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "MembershipFailed");
        assert!(d.iot.writes().is_empty());
    }

    #[tokio::test]
    async fn a_sync_for_a_user_without_a_recorded_identity_touches_nothing() {
        let d = deps(Ok(Vec::new()));
        let r = sync(&d, "user-a").await.unwrap();
        assert_eq!(r.identity_id, None);
        assert!(r.detached.is_empty() && r.attached.is_empty());
        assert!(d.iot.writes().is_empty());
    }

    #[tokio::test]
    async fn malformed_requests_are_rejected_before_any_call() {
        for (event, field) in [
            (json!({"identityId": A}), "token"),
            (json!({"token": "t", "identityId": A, "extra": 1}), "extra"),
            (
                json!({"token": "t", "identityId": "../../thinggroup/x"}),
                "identityId",
            ),
            (json!("just a string"), "expected"),
            (json!({"sync": {}}), "user"),
            (json!({"sync": {"user": "u", "groups": []}}), "groups"),
            (json!({"sync": {"user": "u"}, "token": "t"}), "token"),
            (json!({"sync": {"user": ""}}), "empty"),
        ] {
            let d = deps(Ok(groups(&["team-a"])));
            let e = handle(&d, event.clone()).await.unwrap_err();
            assert!(e.to_string().contains(field), "{event}: {e}");
            assert_eq!(Diagnostic::from(e).error_type, "BadRequest", "{event}");
            assert!(d.iot.writes().is_empty());
        }
    }

    #[tokio::test]
    async fn an_unverifiable_token_is_unauthorized_before_cognito_is_asked() {
        let d = deps(Ok(groups(&["team-a"])));
        // "token-a" would resolve, but it is not a JWT that verifies.
        let e = handle(&d, json!({"token": "token-a"})).await.unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "Unauthorized");
        assert!(d.iot.writes().is_empty());
    }
}
