//! Membership: the groups a user holds NOW, read from the source of truth (the Cognito user pool)
//! rather than from a token.
//!
//! A token's `cognito:groups` is a snapshot taken when it was minted: an ID token minted before a
//! user left a group still lists that group for up to a day. Anything that *grants* access on the
//! strength of a token (iot-grant attaching IoT policies, the IoT custom authorizer answering with
//! a policy) must therefore take the token only as proof of WHO the user is, and ask [`Membership`]
//! which groups that user holds.
//!
//! - [`Membership`]: the question, as a trait (the unit tests and iot-grant's handler tests answer it
//!   in memory).
//! - [`CognitoMembership`] (feature `cognito`): the answer from a user pool, `AdminGetUser` (a
//!   disabled user holds no groups) then `AdminListGroupsForUser` (every page).
//! - [`UserPoolId`]: the one parser of `<region>_<id>` user pool ids and their region.
//!
//! The caller decides what a user who is gone means ([`MembershipError::user_is_gone`]): a grant
//! refuses, a revocation sync detaches everything.

use std::future::Future;

/// `GROUPCAST_COGNITO_USER_POOL_ID`: the user pool, `<region>_<id>`.
pub const USER_POOL_ENV: &str = "GROUPCAST_COGNITO_USER_POOL_ID";

/// Cognito `Username` (and so the `user` asked about) is 1 to 128 characters
/// (AdminListGroupsForUser API reference, `Username` length constraints:
/// https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminListGroupsForUser.html).
const USERNAME_MAX: usize = 128;

/// Why the groups of a user are not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The user name is not one Cognito could hold; nothing was asked.
    #[error("user {user:?}: {rule}")]
    BadUser {
        /// The user as given.
        user: String,
        /// The rule it broke.
        rule: String,
    },
    /// The user pool has no such user (deleted, or never existed).
    #[error("user {user:?} does not exist in the user pool")]
    UserNotFound {
        /// The user asked about.
        user: String,
    },
    /// The user exists but is disabled: they hold no groups.
    #[error("user {user:?} is disabled in the user pool")]
    UserDisabled {
        /// The user asked about.
        user: String,
    },
    /// The lookup itself failed (permissions, throttling, network): the groups are unknown.
    #[error("cognito-idp:{operation} for user {user:?}: {message}")]
    Lookup {
        /// `AdminGetUser` or `AdminListGroupsForUser`.
        operation: &'static str,
        /// The user asked about.
        user: String,
        /// What the service (or the connection) said.
        message: String,
    },
}

impl MembershipError {
    /// Whether the user is deleted or disabled: a definite answer that they hold no groups, as
    /// opposed to [`MembershipError::Lookup`] (unknown) or [`MembershipError::BadUser`].
    pub fn user_is_gone(&self) -> bool {
        matches!(
            self,
            MembershipError::UserNotFound { .. } | MembershipError::UserDisabled { .. }
        )
    }
}

/// Where a user's current groups come from.
pub trait Membership {
    /// The groups `user` holds now, sorted and distinct. `user` is the Cognito `sub` or user name
    /// (`AdminListGroupsForUser` takes either).
    ///
    /// # Errors
    /// [`MembershipError`]: the user is unknown or disabled, or the lookup failed. Never an empty
    /// list in place of a failure: callers fail closed on an error.
    fn current_groups(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<String>, MembershipError>> + Send;
}

/// Checks `user` against Cognito's `Username` constraints as far as they can be checked here:
/// 1-128 characters, none of them white space or control characters (the API's pattern is
/// letters, marks, symbols, numbers and punctuation).
///
/// # Errors
/// [`MembershipError::BadUser`] naming the rule.
pub fn validate_user(user: &str) -> Result<(), MembershipError> {
    let bad = |rule: &str| MembershipError::BadUser {
        user: user.chars().take(USERNAME_MAX).collect(),
        rule: rule.to_owned(),
    };
    if user.is_empty() {
        return Err(bad("must not be empty"));
    }
    if user.chars().count() > USERNAME_MAX {
        return Err(bad("must be at most 128 characters (Cognito Username)"));
    }
    if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "must not contain white space or control characters (Cognito Username)",
        ));
    }
    Ok(())
}

/// A user pool id, `<region>_<id>`: the region is where its API calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPoolId {
    id: String,
    region_len: usize,
}

impl UserPoolId {
    /// Parses `<region>_<id>`: at most 55 characters, the region of word characters and `-`, the id
    /// alphanumeric (`UserPoolId` pattern `[\w-]+_[0-9a-zA-Z]+`, Cognito user pools API reference).
    ///
    /// # Errors
    /// The rule broken, as text, for the caller to name its field.
    pub fn parse(id: &str) -> Result<Self, String> {
        let region_len = id
            .split_once('_')
            .filter(|(region, rest)| {
                id.len() <= 55
                    && !region.is_empty()
                    && region
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_alphanumeric())
            })
            .map(|(region, _)| region.len())
            .ok_or_else(|| format!("{id:?} is not a user pool id <region>_<id>"))?;
        Ok(UserPoolId {
            id: id.to_owned(),
            region_len,
        })
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The region, the part before the first `_`.
    pub fn region(&self) -> &str {
        &self.id[..self.region_len]
    }
}

#[cfg(feature = "cognito")]
pub use self::cognito::CognitoMembership;

#[cfg(feature = "cognito")]
mod cognito {
    //! [`super::Membership`] over the user pools SDK.

    use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata};
    use aws_sdk_cognitoidentityprovider::{Client, config};

    use super::{Membership, MembershipError, UserPoolId, validate_user};

    /// A user's current groups from a Cognito user pool. Its role needs
    /// `cognito-idp:AdminGetUser` and `cognito-idp:AdminListGroupsForUser` on the pool's ARN.
    #[derive(Debug, Clone)]
    pub struct CognitoMembership {
        client: Client,
        pool: UserPoolId,
    }

    impl CognitoMembership {
        /// A client for `pool`, from `config` (e.g. `config::Builder::from(&sdk_config)`) with its
        /// region set to the pool's: the user pools API answers for a pool only in its region.
        pub fn new(config: config::Builder, pool: UserPoolId) -> Self {
            let config = config
                .region(config::Region::new(pool.region().to_owned()))
                .build();
            CognitoMembership {
                client: Client::from_conf(config),
                pool,
            }
        }

        /// The pool asked.
        pub fn pool(&self) -> &UserPoolId {
            &self.pool
        }
    }

    fn lookup_error<E, R>(
        operation: &'static str,
        user: &str,
        e: aws_sdk_cognitoidentityprovider::error::SdkError<E, R>,
    ) -> MembershipError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        if e.as_service_error().and_then(|s| s.code()) == Some("UserNotFoundException") {
            return MembershipError::UserNotFound {
                user: user.to_owned(),
            };
        }
        MembershipError::Lookup {
            operation,
            user: user.to_owned(),
            message: DisplayErrorContext(&e).to_string(),
        }
    }

    impl Membership for CognitoMembership {
        async fn current_groups(&self, user: &str) -> Result<Vec<String>, MembershipError> {
            validate_user(user)?;
            // AdminGetUser: `Enabled` is false for a user an administrator disabled
            // (AdminDisableUser); AdminListGroupsForUser still lists such a user's groups, so it
            // is asked first. UserNotFoundException: no such user.
            // https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminGetUser.html
            let got = self
                .client
                .admin_get_user()
                .user_pool_id(self.pool.as_str())
                .username(user)
                .send()
                .await
                .map_err(|e| lookup_error("AdminGetUser", user, e))?;
            if !got.enabled() {
                return Err(MembershipError::UserDisabled {
                    user: user.to_owned(),
                });
            }
            // Every page (the API returns at most 60 groups per call):
            // https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminListGroupsForUser.html
            let groups = self
                .client
                .admin_list_groups_for_user()
                .user_pool_id(self.pool.as_str())
                .username(user)
                .into_paginator()
                .page_size(60)
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| lookup_error("AdminListGroupsForUser", user, e))?;
            let mut names: Vec<String> = groups.into_iter().filter_map(|g| g.group_name).collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pool_ids_give_their_region_and_malformed_ones_are_refused() {
        let p = UserPoolId::parse("eu-west-1_AbC123xyz").unwrap();
        assert_eq!(
            (p.as_str(), p.region()),
            ("eu-west-1_AbC123xyz", "eu-west-1")
        );
        for bad in [
            "",
            "eu-west-1",
            "_abc",
            "eu-west-1_",
            "eu-west-1_../x",
            "eu west-1_abc",
            &format!("eu-west-1_{}", "a".repeat(50)),
        ] {
            let e = UserPoolId::parse(bad).unwrap_err();
            assert!(e.contains("is not a user pool id"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn user_names_follow_cognitos_username_constraints() {
        for ok in [
            "alice",
            "0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41",
            "a@b.c",
            "Zoë+1",
        ] {
            assert!(validate_user(ok).is_ok(), "{ok:?}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("a b", "white space"),
            ("a\u{0}b", "control"),
            (&"x".repeat(129), "128"),
        ] {
            let e = validate_user(bad).unwrap_err();
            assert!(
                matches!(&e, MembershipError::BadUser { rule: r, .. } if r.contains(rule)),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn only_a_deleted_or_disabled_user_counts_as_gone() {
        let user = || "u".to_owned();
        assert!(MembershipError::UserNotFound { user: user() }.user_is_gone());
        assert!(MembershipError::UserDisabled { user: user() }.user_is_gone());
        assert!(
            !MembershipError::Lookup {
                operation: "AdminGetUser",
                user: user(),
                message: "throttled".into()
            }
            .user_is_gone(),
            "an unknown answer is not a no"
        );
        assert!(
            !MembershipError::BadUser {
                user: user(),
                rule: "r".into()
            }
            .user_is_gone()
        );
    }
}
