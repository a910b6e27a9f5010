//! The EventBridge side of the reconciler: the rule `{project}-iot-sync` that runs iot-grant's
//! sync when Cognito removes a user from a group, deletes or disables one
//! (`templates/eventbridge/iot-sync-rule.json.tera`, docs/isolation.md "IoT attachments: sync"),
//! and the iot-grant function's resource-policy statement that lets EventBridge invoke it, scoped
//! to that rule's ARN (`SourceArn`: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions).

use anyhow::{Context as _, bail};

use super::iam::UNKNOWN_ARN;
use super::{Reconciler, State};
use crate::aws::{Cloud, EventBridge, Permission, RuleSpec, RuleTarget};
use crate::config::Function;
use crate::render::IOT_SYNC_RULE_PATH;

/// The principal EventBridge invokes targets as.
const EVENTS_PRINCIPAL: &str = "events.amazonaws.com";

impl State for RuleSpec {
    fn text(&self) -> String {
        super::pretty(self)
    }
}

/// The desired rule from its rendered document (`eventbridge/iot-sync-rule.json`): its name and
/// what PutRule and PutTargets set. The builder of this resource kind.
pub(super) fn iot_sync_rule(document: &str) -> anyhow::Result<(String, RuleSpec)> {
    let doc: serde_json::Value =
        serde_json::from_str(document).context("eventbridge/iot-sync-rule.json is not JSON")?;
    let text = |v: &serde_json::Value, field: &str| {
        v[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("eventbridge/iot-sync-rule.json: {field} must be a string"))
    };
    let target = &doc["Target"];
    let transformer = &target["InputTransformer"];
    let input_paths = transformer["InputPathsMap"]
        .as_object()
        .context("eventbridge/iot-sync-rule.json: Target.InputTransformer.InputPathsMap must be an object")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .context("eventbridge/iot-sync-rule.json: InputPathsMap values must be strings")
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((
        text(&doc, "Name")?,
        RuleSpec {
            description: text(&doc, "Description")?,
            state: text(&doc, "State")?,
            event_pattern: doc["EventPattern"].clone(),
            targets: vec![RuleTarget {
                id: text(target, "Id")?,
                arn: text(target, "Arn")?,
                input_paths,
                input_template: text(transformer, "InputTemplate")?,
            }],
        },
    ))
}

impl<C: Cloud> Reconciler<'_, C> {
    /// The IoT sync rule and EventBridge's permission to invoke iot-grant: created or updated when
    /// the config wants the rule (`[iot]` and a Cognito user pool in `project.region`), deleted
    /// when it does not or when `destroying`. A same-named rule without this project's tag is
    /// never changed.
    pub(super) async fn iot_sync(&mut self, destroying: bool) -> anyhow::Result<()> {
        let events = self.cloud.events();
        let name = format!("{}-iot-sync", self.project());
        let desired = match self.rendered().get(IOT_SYNC_RULE_PATH) {
            Some(doc) if !destroying => Some(iot_sync_rule(doc)?.1),
            _ => None,
        };
        let live = events.get_rule(&name).await?;
        if let Some(l) = &live
            && !self.owned(&l.tags)
        {
            if desired.is_none() {
                return Ok(());
            }
            bail!(
                "EventBridge rule {name} exists but is not tagged {}={}: refusing to change it \
                 (rename the project or delete that rule)",
                crate::config::PROJECT_TAG,
                self.project()
            );
        }
        if desired.is_none() && live.is_none() {
            // Never made (or already gone): no rule, so no statement of ours to look for.
            return Ok(());
        }
        let statement_id = format!("groupcast-{}-iot-sync", self.project());
        let function = self.config.function_arn(Function::IotGrant);
        let Some(desired) = desired else {
            // Taking it away: the permission first, so a failure in between leaves a rule that
            // a rerun still finds (and with it this cleanup), never an orphaned statement.
            self.lambda_permission(&function, &statement_id, None, true, false, "", "")
                .await?;
            self.converge(
                "eventbridge-rule",
                &name,
                live.as_ref().map(|l| &l.spec),
                None,
                async |_| Ok(String::new()),
                async |_| Ok(String::new()),
                async || events.delete_rule(&name).await,
            )
            .await?;
            return Ok(());
        };
        let tags = self.config.resource_tags();
        let applied = self
            .converge(
                "eventbridge-rule",
                &name,
                live.as_ref().map(|l| &l.spec),
                Some(&desired),
                async |d| events.put_rule(&name, d, &tags).await,
                async |d| events.put_rule(&name, d, &tags).await,
                async || Ok(()),
            )
            .await?;
        if let Some(l) = &live {
            let arn = l.arn.clone();
            self.sync_tags(
                "eventbridge-rule",
                &name,
                &l.tags,
                &tags,
                async |t| events.tag(&arn, t).await,
                async |k| events.untag(&arn, k).await,
            )
            .await?;
        }
        let rule_arn = applied.or_else(|| live.as_ref().map(|l| l.arn.clone()));
        let permission = Permission {
            statement_id: statement_id.clone(),
            principal: EVENTS_PRINCIPAL.to_owned(),
            action: "lambda:InvokeFunction".to_owned(),
            source_arn: Some(rule_arn.clone().unwrap_or_else(|| UNKNOWN_ARN.to_owned())),
        };
        self.lambda_permission(
            &function,
            &statement_id,
            Some(permission),
            rule_arn.is_some(),
            false,
            "the iot-grant function",
            "let the IoT sync rule invoke it",
        )
        .await
    }
}
