//! The user → identity mapping that lets a server-side sync find a user's Cognito identity without
//! the user's token and without scanning the identity pool: recorded at grant time in the IoT
//! registry, one *thing* per user.
//!
//! - Name: `groupcast_{project}_{user}` ([`thing_name`]). Project names are `[A-Za-z0-9-]`, so the
//!   `_` after the project keeps two projects' things apart whatever the user; the user is the
//!   Cognito `sub` (a UUID), within IoT's thing-name characters `[a-zA-Z0-9:_-]` and 128 characters
//!   (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html).
//! - Attributes: `identityId` = the identity id that `cognito-identity:GetId` returned for the
//!   user's own token, and `groupcastProject` = the project. Attribute values may hold `:`
//!   (`[a-zA-Z0-9_.,@/:#=\[\]-]*`, same page); a thing without a type has up to three attributes.
//!
//! Why the IoT registry rather than a user-pool custom attribute: only IAM principals allowed
//! `iot:CreateThing`/`iot:UpdateThing` on these names can write it (the iot-grant role), whereas a
//! custom attribute is writable by the user themself through `UpdateUserAttributes` unless every
//! app client's write attributes exclude it, and a user who could point the mapping at someone
//! else's identity would aim syncs at it. The registry is free, needs no schema change of a user
//! pool groupcast does not own, and the grant function already talks to IoT.
//!
//! The mapping is written before anything is attached, so every identity that holds a policy of
//! this project through a grant can be found by a sync.

use std::future::Future;

/// The thing attribute holding the identity id.
pub(crate) const IDENTITY_ATTRIBUTE: &str = "identityId";
/// The thing attribute holding the project.
pub(crate) const PROJECT_ATTRIBUTE: &str = "groupcastProject";
/// IoT thing names are at most 128 characters (CreateThing API reference).
const THING_NAME_MAX: usize = 128;

/// Why the mapping could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegistryError {
    /// The user cannot be part of a thing name; nothing was asked.
    #[error("user {user:?}: {rule}")]
    BadUser { user: String, rule: String },
    /// An IoT registry call failed.
    #[error("IoT {operation} {thing}: {message}")]
    Api {
        operation: &'static str,
        thing: String,
        message: String,
    },
    /// A thing of that name exists but is not this project's record.
    #[error(
        "IoT thing {thing} exists but its {PROJECT_ATTRIBUTE} attribute is {found:?}, not this \
         project's: refusing to use or overwrite it"
    )]
    NotOwned {
        thing: String,
        found: Option<String>,
    },
}

/// The name of `user`'s thing in `project`.
///
/// # Errors
/// [`RegistryError::BadUser`] when the user has characters a thing name cannot hold, or the name
/// would be too long.
pub(crate) fn thing_name(project: &str, user: &str) -> Result<String, RegistryError> {
    let bad = |rule: &str| RegistryError::BadUser {
        user: user.chars().take(THING_NAME_MAX).collect(),
        rule: rule.to_owned(),
    };
    if user.is_empty() {
        return Err(bad("must not be empty"));
    }
    if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
    {
        return Err(bad(
            "must be the user's Cognito sub: only A-Z, a-z, 0-9, ':', '_' and '-' (IoT thing names)",
        ));
    }
    let name = format!("groupcast_{project}_{user}");
    if name.len() > THING_NAME_MAX {
        return Err(bad("is too long for an IoT thing name (128 characters)"));
    }
    Ok(name)
}

/// Where the mapping lives.
pub(crate) trait UserIdentities {
    /// The identity recorded for `user`, or `None` when none is (the user never had a grant).
    fn identity_of(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<String>, RegistryError>> + Send;

    /// Records that `user`'s own token resolved to `identity_id` (no write when already so).
    fn record(
        &self,
        user: &str,
        identity_id: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

/// [`UserIdentities`] in the IoT registry (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct IotRegistry {
    client: aws_sdk_iot::Client,
    project: String,
}

impl IotRegistry {
    pub(crate) fn new(client: aws_sdk_iot::Client, project: &str) -> Self {
        IotRegistry {
            client,
            project: project.to_owned(),
        }
    }

    /// The thing's attributes, or `None` when there is no such thing.
    async fn attributes(
        &self,
        thing: &str,
    ) -> Result<Option<std::collections::HashMap<String, String>>, RegistryError> {
        use aws_sdk_iot::error::{DisplayErrorContext, ProvideErrorMetadata};
        match self.client.describe_thing().thing_name(thing).send().await {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("ResourceNotFoundException") =>
            {
                Ok(None)
            }
            Err(e) => Err(RegistryError::Api {
                operation: "DescribeThing",
                thing: thing.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    fn check_owned(
        &self,
        thing: &str,
        attributes: &std::collections::HashMap<String, String>,
    ) -> Result<(), RegistryError> {
        let found = attributes.get(PROJECT_ATTRIBUTE);
        if found != Some(&self.project) {
            return Err(RegistryError::NotOwned {
                thing: thing.to_owned(),
                found: found.cloned(),
            });
        }
        Ok(())
    }
}

impl UserIdentities for IotRegistry {
    async fn identity_of(&self, user: &str) -> Result<Option<String>, RegistryError> {
        let thing = thing_name(&self.project, user)?;
        let Some(attributes) = self.attributes(&thing).await? else {
            return Ok(None);
        };
        self.check_owned(&thing, &attributes)?;
        Ok(attributes.get(IDENTITY_ATTRIBUTE).cloned())
    }

    async fn record(&self, user: &str, identity_id: &str) -> Result<(), RegistryError> {
        use aws_sdk_iot::error::DisplayErrorContext;
        use aws_sdk_iot::types::AttributePayload;
        let thing = thing_name(&self.project, user)?;
        let existing = self.attributes(&thing).await?;
        if let Some(attributes) = &existing {
            self.check_owned(&thing, attributes)?;
            if attributes.get(IDENTITY_ATTRIBUTE).map(String::as_str) == Some(identity_id) {
                return Ok(());
            }
        }
        let payload = AttributePayload::builder()
            .attributes(IDENTITY_ATTRIBUTE, identity_id)
            .attributes(PROJECT_ATTRIBUTE, &self.project)
            .merge(true)
            .build();
        let (operation, result) = if existing.is_some() {
            // The user's login now resolves to another identity (a new identity pool, say).
            let r = self
                .client
                .update_thing()
                .thing_name(&thing)
                .attribute_payload(payload)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(&e).to_string());
            ("UpdateThing", r)
        } else {
            let r = self
                .client
                .create_thing()
                .thing_name(&thing)
                .attribute_payload(payload)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| DisplayErrorContext(&e).to_string());
            ("CreateThing", r)
        };
        result.map_err(|message| RegistryError::Api {
            operation,
            thing,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names_keep_projects_apart_and_take_only_thing_name_characters() {
        assert_eq!(
            thing_name("acme-live", "0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41").unwrap(),
            "groupcast_acme-live_0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41"
        );
        // Project `a` user `b_c` and project `a_b`… cannot collide: projects never hold `_`.
        assert_ne!(
            thing_name("a", "b-c").unwrap(),
            thing_name("a-b", "c").unwrap()
        );
        for bad in ["", "a b", "a/b", "user@example.com", "ü", &"x".repeat(120)] {
            assert!(
                matches!(thing_name("acme", bad), Err(RegistryError::BadUser { .. })),
                "{bad:?}"
            );
        }
    }
}
