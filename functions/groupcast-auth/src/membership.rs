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
    //! [`super::Membership`] over the user pools API's JSON 1.1 protocol, signed by the
    //! library's SigV4 path (`groupcast::sign`, aws-sigv4 underneath). Two operations do not
    //! justify the user pools SDK crate: it cost the Lambdas that linked it ~300 KB of zip
    //! (BENCHMARKS.md, Lambda sizes).

    use std::time::{Duration, SystemTime};

    use aws_config::SdkConfig;
    use aws_types::service_config::ServiceConfigKey;
    use groupcast::IamAuth;
    use groupcast::retry::{RetryPolicy, is_transient_code};
    use groupcast::sign::SigV4;
    use serde_json::{Value, json};

    use super::{Membership, MembershipError, UserPoolId, validate_user};

    /// The user pools API's SigV4 signing name and JSON 1.1 target prefix
    /// (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/Welcome.html,
    /// "Using this API reference": `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`,
    /// `Content-Type: application/x-amz-json-1.1`).
    const SERVICE: &str = "cognito-idp";
    const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
    /// The service id the SDKs derive `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` and the
    /// profile's `cognito_identity_provider` section from
    /// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
    const SERVICE_ID: &str = "Cognito Identity Provider";
    /// The most groups one `AdminListGroupsForUser` page returns (`Limit` 0-60, API reference).
    const PAGE_SIZE: u32 = 60;
    /// A bound on pages followed, so a service (or stand-in) that repeats a `NextToken` forever
    /// cannot hold an invocation: 100 pages is 6 000 groups, far beyond any user's.
    const MAX_PAGES: usize = 100;

    /// A user's current groups from a Cognito user pool. Its role needs
    /// `cognito-idp:AdminGetUser` and `cognito-idp:AdminListGroupsForUser` on the pool's ARN.
    #[derive(Debug, Clone)]
    pub struct CognitoMembership {
        http: reqwest::Client,
        credentials: Option<IamAuth>,
        endpoint: String,
        retry: RetryPolicy,
        pool: UserPoolId,
    }

    impl CognitoMembership {
        /// A client for `pool` from `config` (what `aws_config::load_from_env()` loaded): its
        /// credentials provider; its endpoint override the way the SDK took it
        /// (`AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` or the profile's service section first,
        /// then `AWS_ENDPOINT_URL` / `endpoint_url`); its retry attempts (`AWS_MAX_ATTEMPTS`,
        /// default 3, the SDK's standard mode). The region is always the pool's: the user pools
        /// API answers for a pool only in its region. No credentials is not an error here: every
        /// lookup then fails, closed.
        pub fn new(config: &SdkConfig, pool: UserPoolId) -> Self {
            let key = ServiceConfigKey::builder()
                .service_id(SERVICE_ID)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .expect("every field is set");
            let endpoint = config
                .service_config()
                .and_then(|c| c.load_config(key))
                .or_else(|| config.endpoint_url().map(str::to_owned))
                .unwrap_or_else(|| default_endpoint(pool.region()));
            let max_attempts = config.retry_config().map_or(3, |r| r.max_attempts()).max(1);
            CognitoMembership {
                http: reqwest::Client::builder()
                    .user_agent(concat!("groupcast-auth/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default(),
                credentials: config.credentials_provider().map(IamAuth::new),
                endpoint,
                retry: RetryPolicy {
                    max_attempts,
                    base_delay: Duration::from_millis(50),
                    max_delay: Duration::from_secs(1),
                    // IoT waits at most 5 s for a custom authorizer (config-custom-auth.html).
                    attempt_timeout: Duration::from_secs(2),
                },
                pool,
            }
        }

        /// The pool asked.
        pub fn pool(&self) -> &UserPoolId {
            &self.pool
        }

        /// The endpoint the calls go to.
        pub fn endpoint(&self) -> &str {
            &self.endpoint
        }

        /// One operation, retried on throttling, 5xx and connection failures.
        async fn call(
            &self,
            operation: &'static str,
            user: &str,
            body: &Value,
        ) -> Result<Value, MembershipError> {
            let mut attempt = 1;
            loop {
                match self.call_once(operation, user, body).await {
                    Err(Failure::Retryable(e)) if attempt < self.retry.max_attempts => {
                        tracing::debug!(operation, attempt, error = %e, "retrying");
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(Failure::Retryable(e) | Failure::Final(e)) => return Err(e),
                    Ok(v) => return Ok(v),
                }
            }
        }

        async fn call_once(
            &self,
            operation: &'static str,
            user: &str,
            body: &Value,
        ) -> Result<Value, Failure> {
            let lookup = |message: String| MembershipError::Lookup {
                operation,
                user: user.to_owned(),
                message,
            };
            let Some(auth) = &self.credentials else {
                return Err(Failure::Final(lookup(
                    "no AWS credentials (the default chain found none)".into(),
                )));
            };
            let credentials = auth
                .credentials()
                .await
                .map_err(|e| Failure::Final(lookup(e.to_string())))?;
            let body = serde_json::to_vec(body).expect("JSON values serialize");
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "content-type",
                http::HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            headers.insert(
                "x-amz-target",
                http::HeaderValue::from_str(&format!("{TARGET_PREFIX}{operation}"))
                    .expect("operation names are ASCII"),
            );
            let url = format!("{}/", self.endpoint.trim_end_matches('/'));
            SigV4 {
                credentials: &credentials,
                region: self.pool.region(),
                service: SERVICE,
            }
            .sign("POST", &url, &mut headers, &body, SystemTime::now())
            .map_err(|e| Failure::Final(lookup(e.to_string())))?;
            let sent = self
                .http
                .post(&url)
                .headers(headers)
                .body(body)
                .timeout(self.retry.attempt_timeout)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(": ");
                        text.push_str(&s.to_string());
                        source = s.source();
                    }
                    return Err(Failure::Retryable(lookup(text)));
                }
            };
            let status = response.status().as_u16();
            let header_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Failure::Retryable(lookup(format!("reading the answer: {e}"))))?;
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                return match value {
                    Value::Object(_) => Ok(value),
                    _ => Err(Failure::Final(lookup(format!(
                        "HTTP {status}: the answer is not a JSON object"
                    )))),
                };
            }
            let code = error_code(header_type.as_deref(), &value);
            if code.as_deref() == Some("UserNotFoundException") {
                return Err(Failure::Final(MembershipError::UserNotFound {
                    user: user.to_owned(),
                }));
            }
            let message = value
                .get("message")
                .or_else(|| value.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let text = format!(
                "HTTP {status}: {}: {message}",
                code.as_deref().unwrap_or("unknown error")
            );
            let retryable =
                status == 429 || status >= 500 || code.as_deref().is_some_and(is_transient_code);
            Err(if retryable {
                Failure::Retryable(lookup(text))
            } else {
                Failure::Final(lookup(text))
            })
        }
    }

    /// How one attempt failed.
    enum Failure {
        Retryable(MembershipError),
        Final(MembershipError),
    }

    /// The user pools endpoint of `region`: `cognito-idp.{region}.amazonaws.com`, `.com.cn` in
    /// the China regions (https://docs.aws.amazon.com/general/latest/gr/cognito_identity.html).
    fn default_endpoint(region: &str) -> String {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://cognito-idp.{region}.{suffix}")
    }

    /// An awsJson1.1 error's code: the `X-Amzn-ErrorType` header, else the body's `__type` (or
    /// `code`), without a namespace before `#` nor anything after `:`
    /// (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html, "Operation error
    /// serialization").
    pub(super) fn error_code(header: Option<&str>, body: &Value) -> Option<String> {
        let raw = header
            .filter(|h| !h.trim().is_empty())
            .map(str::to_owned)
            .or_else(|| {
                ["__type", "code"]
                    .iter()
                    .find_map(|k| body.get(*k).and_then(Value::as_str).map(str::to_owned))
            })?;
        let after_hash = raw.rsplit('#').next().unwrap_or(&raw);
        let code = after_hash.split(':').next().unwrap_or(after_hash).trim();
        (!code.is_empty()).then(|| code.to_owned())
    }

    impl Membership for CognitoMembership {
        async fn current_groups(&self, user: &str) -> Result<Vec<String>, MembershipError> {
            validate_user(user)?;
            let pool = self.pool.as_str();
            // AdminGetUser: `Enabled` is false for a user an administrator disabled
            // (AdminDisableUser); AdminListGroupsForUser still lists such a user's groups, so it
            // is asked first. UserNotFoundException: no such user.
            // https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminGetUser.html
            let got = self
                .call(
                    "AdminGetUser",
                    user,
                    &json!({"UserPoolId": pool, "Username": user}),
                )
                .await?;
            // Absent `Enabled` is not "enabled": fail closed.
            if got.get("Enabled").and_then(Value::as_bool) != Some(true) {
                return Err(MembershipError::UserDisabled {
                    user: user.to_owned(),
                });
            }
            // Every page (`Limit` at most 60; `NextToken` until absent):
            // https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_AdminListGroupsForUser.html
            let operation = "AdminListGroupsForUser";
            let malformed = |what: &str| MembershipError::Lookup {
                operation,
                user: user.to_owned(),
                message: format!("malformed answer: {what}"),
            };
            let mut names = Vec::new();
            let mut next: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let mut request = json!({"UserPoolId": pool, "Username": user, "Limit": PAGE_SIZE});
                if let Some(token) = &next {
                    request["NextToken"] = json!(token);
                }
                let page = self.call(operation, user, &request).await?;
                let groups = match page.get("Groups") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(g)) => g.as_slice(),
                    Some(_) => return Err(malformed("Groups is not a list")),
                };
                for g in groups {
                    match g.get("GroupName").and_then(Value::as_str) {
                        Some(name) => names.push(name.to_owned()),
                        None => return Err(malformed("a group without a GroupName")),
                    }
                }
                next = match page.get("NextToken") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(t)) if t.is_empty() => None,
                    Some(Value::String(t)) => Some(t.clone()),
                    Some(_) => return Err(malformed("NextToken is not a string")),
                };
                if next.is_none() {
                    names.sort();
                    names.dedup();
                    return Ok(names);
                }
            }
            Err(malformed(&format!(
                "more than {MAX_PAGES} pages of groups (a repeating NextToken?)"
            )))
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
