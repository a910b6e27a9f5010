//! The IAM side of the reconciler: the roles `apply` creates (the three functions' execution
//! roles and AppSync's logging role) with their trust policies, tags and inline policies; the
//! inline policy on the identity pool's authenticated role (the user's role: groupcast only adds
//! its own policy to it); and the authorizer's resource-policy statements that let AppSync invoke
//! it (https://docs.aws.amazon.com/appsync/latest/eventapi/configure-event-api-auth.html,
//! "AWS Lambda authorization").

use anyhow::{Context as _, bail};

use super::{ApiArns, PolicyDoc, Reconciler, State};
use crate::aws::{Cloud, Iam, Lambda, Permission};
use crate::config::{Function, PROJECT_TAG};
use crate::render::{RoleDoc, identity_pool_role, roles};

/// The name of the inline policy groupcast puts on the roles it creates.
pub(crate) const ROLE_POLICY: &str = "groupcast";
/// The principal AppSync invokes Lambda authorizers as.
const APPSYNC_PRINCIPAL: &str = "appsync.amazonaws.com";
/// The principal IoT invokes custom authorizers as
/// (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-authorize.html).
const IOT_PRINCIPAL: &str = "iot.amazonaws.com";
/// Shown as the source ARN of a permission whose API does not exist yet (plan).
pub(super) const UNKNOWN_ARN: &str = "(known after apply)";

impl State for Permission {
    fn text(&self) -> String {
        super::pretty(self)
    }
}

impl<C: Cloud> Reconciler<'_, C> {
    /// The roles and their trust policies and tags (their permissions come later, once the API
    /// ids they name are known: [`Self::role_policies`]). Roles of this project that the config
    /// no longer needs are deleted.
    pub(super) async fn roles(&mut self) -> anyhow::Result<()> {
        let iam = self.cloud.iam();
        let tags = self.config.resource_tags();
        let wanted = roles(self.config);
        for r in &wanted {
            let trust = self.document(&r.trust_path)?;
            let live = self.owned_role(&r.role_name).await?;
            let name = r.role_name.clone();
            self.converge(
                "iam-role",
                &r.role_name,
                live.as_ref()
                    .map(|l| PolicyDoc::parse(&l.trust_policy))
                    .as_ref(),
                Some(&PolicyDoc::parse(&trust)),
                async |_| iam.create_role(&name, &trust, &tags).await.map(drop),
                async |_| iam.update_trust_policy(&name, &trust).await,
                async || Ok(()),
            )
            .await?;
            if let Some(l) = &live {
                let live_tags = l.tags.clone();
                self.sync_tags(
                    "iam-role",
                    &r.role_name,
                    &live_tags,
                    &tags,
                    async |t| iam.tag_role(&name, t).await,
                    async |k| iam.untag_role(&name, k).await,
                )
                .await?;
            }
        }
        for name in self.config.all_role_names() {
            if !wanted.iter().any(|r| r.role_name == name) {
                self.delete_role(&name).await?;
            }
        }
        Ok(())
    }

    /// A role of this project by name; `None` when there is none, an error when a role of that
    /// name exists without this project's tag (groupcast never changes what it did not make).
    async fn owned_role(&self, name: &str) -> anyhow::Result<Option<crate::aws::Role>> {
        match self.cloud.iam().get_role(name).await? {
            Some(r) if self.owned(&r.tags) => Ok(Some(r)),
            Some(_) => bail!(
                "IAM role {name:?} exists but is not tagged {PROJECT_TAG}={}: groupcast will not take it over",
                self.project()
            ),
            None => Ok(None),
        }
    }

    /// Deletes a role of this project, if there is one: its inline policies, then the role.
    async fn delete_role(&mut self, name: &str) -> anyhow::Result<()> {
        let iam = self.cloud.iam();
        let Some(live) = iam.get_role(name).await? else {
            return Ok(());
        };
        if !self.owned(&live.tags) {
            return Ok(());
        }
        self.converge(
            "iam-role",
            name,
            Some(&PolicyDoc::parse(&live.trust_policy)),
            None,
            async |_| Ok(()),
            async |_| Ok(()),
            async || {
                for policy in iam.role_policy_names(name).await? {
                    iam.delete_role_policy(name, &policy).await?;
                }
                iam.delete_role(name).await
            },
        )
        .await?;
        Ok(())
    }

    /// A rendered document by path (the final rendering, with API ids, once there is one).
    fn document(&self, path: &str) -> anyhow::Result<String> {
        self.rendered()
            .get(path)
            .map(str::to_owned)
            .with_context(|| format!("{path} was not rendered"))
    }

    /// Each role's inline policy, rendered with the API ids, and the identity pool role's.
    pub(super) async fn role_policies(&mut self) -> anyhow::Result<()> {
        let iam = self.cloud.iam();
        for RoleDoc {
            role_name,
            policy_path,
            ..
        } in roles(self.config)
        {
            let doc = self.document(&policy_path)?;
            let live = match self.cloud.iam().get_role(&role_name).await? {
                Some(_) => iam.role_policy(&role_name, ROLE_POLICY).await?,
                None => None,
            };
            self.converge(
                "iam-role-policy",
                &format!("{role_name}/{ROLE_POLICY}"),
                live.as_deref().map(PolicyDoc::parse).as_ref(),
                Some(&PolicyDoc::parse(&doc)),
                async |_| iam.put_role_policy(&role_name, ROLE_POLICY, &doc).await,
                async |_| iam.put_role_policy(&role_name, ROLE_POLICY, &doc).await,
                async || Ok(()),
            )
            .await?;
        }
        if let Some((role_name, policy_path)) = identity_pool_role(self.config) {
            let doc = self.document(&policy_path)?;
            if iam.get_role(&role_name).await?.is_none() {
                bail!(
                    "iot.authenticated_role_name: IAM role {role_name:?} does not exist; name your identity \
                     pool's authenticated role (groupcast adds its IoT policy to it, docs/config.md)"
                );
            }
            let policy = self.config.identity_pool_policy_name();
            let live = iam.role_policy(&role_name, &policy).await?;
            self.converge(
                "iam-role-policy",
                &format!("{role_name}/{policy}"),
                live.as_deref().map(PolicyDoc::parse).as_ref(),
                Some(&PolicyDoc::parse(&doc)),
                async |_| iam.put_role_policy(&role_name, &policy, &doc).await,
                async |_| iam.put_role_policy(&role_name, &policy, &doc).await,
                async || Ok(()),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes the roles and the identity pool role's groupcast policy.
    pub(super) async fn destroy_roles(&mut self) -> anyhow::Result<()> {
        for name in self.config.all_role_names() {
            self.delete_role(&name).await?;
        }
        if let Some((role_name, _)) = identity_pool_role(self.config) {
            let iam = self.cloud.iam();
            let policy = self.config.identity_pool_policy_name();
            if iam.get_role(&role_name).await?.is_some()
                && let Some(live) = iam.role_policy(&role_name, &policy).await?
            {
                self.converge(
                    "iam-role-policy",
                    &format!("{role_name}/{policy}"),
                    Some(&PolicyDoc::parse(&live)),
                    None,
                    async |_| Ok(()),
                    async |_| Ok(()),
                    async || iam.delete_role_policy(&role_name, &policy).await,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// AppSync's permission to invoke each configured Lambda authorizer, scoped to the API that
    /// uses it with `SourceArn` (https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html).
    /// `arns` names the APIs (an API not created yet has no ARN: plan shows its statement as to
    /// be created); `None` removes every statement (destroy). A function that does not exist yet is reported, not an error:
    /// deploy it (docs/lambdas.md) and apply again.
    pub(super) async fn authorizer_permissions(
        &mut self,
        arns: Option<&ApiArns>,
    ) -> anyhow::Result<()> {
        let destroying = arns.is_none();
        let arns = arns.cloned().unwrap_or_default();
        // (label, function, principal, source ARN when known)
        let mut wanted = Vec::new();
        if let Some(l) = self
            .config
            .events
            .as_ref()
            .and_then(|e| e.auth.lambda.as_ref())
        {
            wanted.push((
                "events",
                l.authorizer_arn.clone(),
                APPSYNC_PRINCIPAL,
                arns.events.clone(),
            ));
        }
        if let Some(l) = self
            .config
            .graphql
            .as_ref()
            .and_then(|g| g.auth.lambda.as_ref())
        {
            wanted.push((
                "graphql",
                l.authorizer_arn.clone(),
                APPSYNC_PRINCIPAL,
                arns.graphql.clone(),
            ));
        }
        // IoT's permission to invoke the iot-authorizer, scoped to the project's authorizer by
        // SourceArn (custom-authorizer mode only; destroy removes it). After a switch back to
        // identity-pool the authorizer it names is deleted, so the statement admits nothing.
        if self.config.iot_custom_authorizer() {
            wanted.push((
                "iot",
                self.config.function_arn(Function::IotAuthorizer),
                IOT_PRINCIPAL,
                Some(self.config.iot_authorizer_arn()),
            ));
        }
        for (label, function, principal, api_arn) in wanted {
            let statement_id = format!("groupcast-{}-{label}", self.project());
            let desired = (!destroying).then(|| Permission {
                statement_id: statement_id.clone(),
                principal: principal.to_owned(),
                action: "lambda:InvokeFunction".to_owned(),
                source_arn: Some(api_arn.clone().unwrap_or_else(|| UNKNOWN_ARN.to_owned())),
            });
            let why = if principal == IOT_PRINCIPAL {
                "let IoT invoke it"
            } else {
                "let AppSync invoke it"
            };
            self.lambda_permission(
                &function,
                &statement_id,
                desired,
                api_arn.is_some(),
                true,
                "Lambda authorizer",
                why,
            )
            .await?;
        }
        Ok(())
    }

    /// One statement of a function's resource policy (`statement_id`), converged to `desired`
    /// (`None` removes it). `known`: the source ARN exists, so apply can add it (plan shows it
    /// with [`UNKNOWN_ARN`] otherwise). A function that does not exist yet is reported, not an
    /// error: `what` names it and `why` says what the statement is for; with `record_missing`
    /// the statement also stays a pending change in every plan until the function exists (the
    /// authorizer, which an API cannot work without), else apply only prints a note (iot-grant,
    /// which is deployed after the first apply that creates its role).
    #[expect(
        clippy::too_many_arguments,
        reason = "which statement (function, id), its state, and how to report a missing function"
    )]
    pub(super) async fn lambda_permission(
        &mut self,
        function: &str,
        statement_id: &str,
        desired: Option<Permission>,
        known: bool,
        record_missing: bool,
        what: &str,
        why: &str,
    ) -> anyhow::Result<()> {
        let lambda = self.cloud.lambda();
        let Some(live_all) = lambda.permissions(function).await? else {
            if let Some(d) = &desired {
                if !record_missing {
                    if self.applying() {
                        eprintln!(
                            "note: {what} {function} does not exist yet: deploy it \
                             (docs/lambdas.md), then run apply again to {why}"
                        );
                    }
                    return Ok(());
                }
                self.record(
                    super::Action::Create,
                    "lambda-permission",
                    format!("{function} ({statement_id}; the function does not exist yet)"),
                    Some(super::unified("", &d.text())),
                );
                if self.applying() {
                    eprintln!(
                        "note: {what} {function} does not exist yet: deploy it \
                         (docs/lambdas.md), then run apply again to {why}"
                    );
                }
            }
            return Ok(());
        };
        let live = live_all
            .into_iter()
            .find(|p| p.statement_id == statement_id);
        self.converge(
            "lambda-permission",
            &format!("{function} ({statement_id})"),
            live.as_ref(),
            desired.as_ref(),
            async |d| match known {
                true => lambda.add_permission(function, d).await,
                false => Ok(()),
            },
            // A statement cannot be edited: replace it.
            async |d| {
                lambda.remove_permission(function, statement_id).await?;
                lambda.add_permission(function, d).await
            },
            async || lambda.remove_permission(function, statement_id).await,
        )
        .await?;
        Ok(())
    }
}
