//! The Cognito side of iot-grant: which identity pool and user pool it trusts (read once, at cold
//! start) and the one call that binds a user's ID token to their identity id,
//! `cognito-identity:GetId`.
//!
//! GetId with `Logins = {"cognito-idp.<region>.amazonaws.com/<userPoolId>": <ID token>}` returns the
//! identity id of the user that token names, creating it on first use; Cognito verifies the token
//! itself and refuses it with `NotAuthorizedException`. GetId is a public API: it needs no IAM
//! permission. https://docs.aws.amazon.com/cognitoidentity/latest/APIReference/API_GetId.html

use std::future::Future;

use groupcast_auth::jwt::{self, JwtConfig};
/// `GROUPCAST_COGNITO_USER_POOL_ID`: the user pool whose ID tokens are the logins, `<region>_<id>`;
/// also where the users' current groups are read.
pub(crate) use groupcast_auth::membership::USER_POOL_ENV;
use groupcast_auth::membership::UserPoolId;

/// `GROUPCAST_COGNITO_IDENTITY_POOL_ID`: the identity pool, `<region>:<guid>`.
pub(crate) const IDENTITY_POOL_ENV: &str = "GROUPCAST_COGNITO_IDENTITY_POOL_ID";

/// Where identity ids come from: the identity pool and the user pool login provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CognitoSettings {
    /// `<region>:<guid>`.
    pub identity_pool_id: String,
    /// The pool's region (the part before `:`), where GetId must be sent.
    pub identity_pool_region: String,
    /// The `Logins` key: `cognito-idp.<region>.amazonaws.com/<userPoolId>`.
    pub login_provider: String,
    /// The user pool: its users' current groups (`groupcast_auth::membership`).
    pub user_pool: UserPoolId,
}

/// A setting that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {rule}")]
pub(crate) struct SettingError {
    pub var: &'static str,
    pub rule: String,
}

impl CognitoSettings {
    /// Reads the two pool ids through `get`.
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let var = |var: &'static str, example: &str| {
            get(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SettingError {
                    var,
                    rule: format!("must be set, e.g. {example}"),
                })
        };
        let identity_pool_id = var(
            IDENTITY_POOL_ENV,
            "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41",
        )?;
        let user_pool_id = var(USER_POOL_ENV, "us-east-1_AbC123xyz")?;
        // IdentityPoolId: `[\w-]+:[0-9a-f-]+`, 1-55 characters (GetId API reference).
        let identity_pool_region = identity_pool_id
            .split_once(':')
            .filter(|(region, guid)| {
                identity_pool_id.len() <= 55
                    && is_word(region)
                    && !guid.is_empty()
                    && guid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            })
            .map(|(region, _)| region.to_owned())
            .ok_or_else(|| SettingError {
                var: IDENTITY_POOL_ENV,
                rule: format!("{identity_pool_id:?} is not an identity pool id <region>:<guid>"),
            })?;
        let user_pool = UserPoolId::parse(&user_pool_id).map_err(|rule| SettingError {
            var: USER_POOL_ENV,
            rule,
        })?;
        Ok(CognitoSettings {
            identity_pool_id,
            identity_pool_region,
            // The provider name AWS documents for a user pool login (GetId `Logins`).
            login_provider: format!(
                "cognito-idp.{}.amazonaws.com/{user_pool_id}",
                user_pool.region()
            ),
            user_pool,
        })
    }

    /// The user pool's token issuer, `https://` + the login provider: the only issuer whose ID
    /// tokens Cognito accepts as this login.
    pub(crate) fn issuer(&self) -> String {
        format!("https://{}", self.login_provider)
    }

    /// The JWT settings (`GROUPCAST_JWT_*`) for this user pool: the issuer defaults to the user
    /// pool's and must be it when set; `token_use` defaults to `id` and must be only that, since
    /// a login is an ID token.
    pub(crate) fn jwt_config(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<JwtConfig, Box<dyn std::error::Error + Send + Sync>> {
        let issuer = self.issuer();
        let config = JwtConfig::from_lookup(|k| {
            let v = get(k).filter(|v| !v.trim().is_empty());
            match k {
                jwt::env::ISSUER => v.or_else(|| Some(issuer.clone())),
                jwt::env::TOKEN_USE => v.or_else(|| Some("id".to_owned())),
                _ => v,
            }
        })?;
        if config.issuer.trim_end_matches('/') != issuer {
            return Err(SettingError {
                var: jwt::env::ISSUER,
                rule: format!(
                    "{:?} is not the issuer of {USER_POOL_ENV}'s tokens, {issuer:?}: the token \
                     verified must be the login Cognito resolves",
                    config.issuer
                ),
            }
            .into());
        }
        if config.token_use != ["id"] {
            return Err(SettingError {
                var: jwt::env::TOKEN_USE,
                rule: format!(
                    "{:?}: iot-grant takes ID tokens only (a user pool login is an ID token); \
                     set it to id or leave it unset",
                    config.token_use.join(",")
                ),
            }
            .into());
        }
        Ok(config)
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why GetId gave no identity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cognito-identity:GetId: {message}")]
pub(crate) struct IdentityError {
    /// Cognito refused the login (`NotAuthorizedException`): the token, not the service.
    pub not_authorized: bool,
    pub message: String,
}

/// Resolves the identity id of an ID token.
pub(crate) trait IdentityIds {
    /// The Cognito identity id that `id_token` logs in as.
    fn identity_id(
        &self,
        id_token: &str,
    ) -> impl Future<Output = Result<String, IdentityError>> + Send;
}

/// [`IdentityIds`] over the AWS SDK.
#[derive(Debug, Clone)]
pub(crate) struct CognitoIdentityIds {
    client: aws_sdk_cognitoidentity::Client,
    settings: CognitoSettings,
}

impl CognitoIdentityIds {
    /// A client for the identity pool's region.
    pub(crate) fn new(sdk: &aws_config::SdkConfig, settings: CognitoSettings) -> Self {
        let config = aws_sdk_cognitoidentity::config::Builder::from(sdk)
            .region(aws_sdk_cognitoidentity::config::Region::new(
                settings.identity_pool_region.clone(),
            ))
            .build();
        CognitoIdentityIds {
            client: aws_sdk_cognitoidentity::Client::from_conf(config),
            settings,
        }
    }
}

impl IdentityIds for CognitoIdentityIds {
    async fn identity_id(&self, id_token: &str) -> Result<String, IdentityError> {
        use aws_sdk_cognitoidentity::error::{DisplayErrorContext, ProvideErrorMetadata};
        let out = self
            .client
            .get_id()
            .identity_pool_id(&self.settings.identity_pool_id)
            .logins(&self.settings.login_provider, id_token)
            .send()
            .await
            .map_err(|e| IdentityError {
                not_authorized: e.as_service_error().and_then(|s| s.code())
                    == Some("NotAuthorizedException"),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        out.identity_id.ok_or_else(|| IdentityError {
            not_authorized: false,
            message: "the answer has no IdentityId".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let vars = vars.to_vec();
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const POOLS: [(&str, &str); 2] = [
        (
            IDENTITY_POOL_ENV,
            "eu-west-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41",
        ),
        (USER_POOL_ENV, "us-east-1_AbC123xyz"),
    ];

    #[test]
    fn the_login_provider_is_the_user_pools_and_getid_goes_to_the_identity_pools_region() {
        let s = CognitoSettings::from_lookup(lookup(&POOLS)).unwrap();
        assert_eq!(
            s.login_provider,
            "cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123xyz"
        );
        assert_eq!(s.identity_pool_region, "eu-west-1");
        assert_eq!(
            s.issuer(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123xyz"
        );
    }

    #[test]
    fn pool_ids_are_required_and_checked_naming_the_variable() {
        for (vars, var) in [
            (&POOLS[1..], IDENTITY_POOL_ENV),
            (&POOLS[..1], USER_POOL_ENV),
            (
                &[(IDENTITY_POOL_ENV, "no-colon"), POOLS[1]][..],
                IDENTITY_POOL_ENV,
            ),
            (
                &[POOLS[0], (USER_POOL_ENV, "us-east-1_../x")][..],
                USER_POOL_ENV,
            ),
        ] {
            let e = CognitoSettings::from_lookup(lookup(vars)).unwrap_err();
            assert_eq!(e.var, var, "{e}");
        }
    }

    #[test]
    fn jwt_settings_default_to_the_user_pools_id_tokens_and_refuse_anything_else() {
        let s = CognitoSettings::from_lookup(lookup(&POOLS)).unwrap();
        let c = s
            .jwt_config(lookup(&[("GROUPCAST_JWT_AUDIENCES", "client")]))
            .unwrap();
        assert_eq!(c.issuer, s.issuer());
        assert_eq!(c.token_use, ["id"]);
        let e = s
            .jwt_config(lookup(&[
                ("GROUPCAST_JWT_AUDIENCES", "client"),
                ("GROUPCAST_JWT_ISSUER", "https://issuer.example"),
            ]))
            .unwrap_err();
        assert!(e.to_string().starts_with("GROUPCAST_JWT_ISSUER:"), "{e}");
        let e = s
            .jwt_config(lookup(&[
                ("GROUPCAST_JWT_AUDIENCES", "client"),
                ("GROUPCAST_JWT_TOKEN_USE", "id,access"),
            ]))
            .unwrap_err();
        assert!(e.to_string().starts_with("GROUPCAST_JWT_TOKEN_USE:"), "{e}");
    }
}
