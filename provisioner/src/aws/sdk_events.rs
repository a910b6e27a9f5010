//! The [`EventBridge`] trait over `aws-sdk-eventbridge`: the default event bus's rules, their
//! targets (with input transformers) and tags; "not found" as `None`, paginators for lists.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_eventbridge as eb;
use aws_sdk_eventbridge::error::ProvideErrorMetadata as _;

use super::sdk::sdk_err;
use super::{EventBridge, Result, Rule, RuleSpec, RuleTarget};

/// EventBridge through `aws-sdk-eventbridge`.
#[derive(Debug, Clone)]
pub(crate) struct SdkEvents(eb::Client);

impl SdkEvents {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        SdkEvents(eb::Client::from_conf(
            eb::config::Builder::from(config)
                .interceptor(super::calls::CallLog)
                .build(),
        ))
    }

    /// Every target of `rule` (ListTargetsByRule, all pages).
    async fn targets(&self, rule: &str) -> Result<Vec<eb::types::Target>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        // ListTargetsByRule has NextToken but no generated paginator in the SDK.
        loop {
            let page = self
                .0
                .list_targets_by_rule()
                .rule(rule)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| sdk_err("ListTargetsByRule", e))?;
            out.extend(page.targets.unwrap_or_default());
            match page.next_token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => return Ok(out),
            }
        }
    }
}

const NOT_FOUND: &str = "ResourceNotFoundException";

impl EventBridge for SdkEvents {
    async fn get_rule(&self, name: &str) -> Result<Option<Rule>> {
        let rule = match self.0.describe_rule().name(name).send().await {
            Ok(out) => out,
            Err(e) if e.code() == Some(NOT_FOUND) => return Ok(None),
            Err(e) => return Err(sdk_err("DescribeRule", e)),
        };
        let arn = rule.arn.context("DescribeRule returned no ARN")?;
        let targets = self
            .targets(name)
            .await?
            .into_iter()
            .map(|t| {
                let transformer = t.input_transformer;
                RuleTarget {
                    id: t.id,
                    arn: t.arn,
                    input_paths: transformer
                        .as_ref()
                        .and_then(|x| x.input_paths_map.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    input_template: transformer.map(|x| x.input_template).unwrap_or_default(),
                }
            })
            .collect();
        let tags = self
            .0
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| sdk_err("ListTagsForResource", e))?
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect();
        let pattern = rule.event_pattern.unwrap_or_default();
        Ok(Some(Rule {
            name: rule.name.unwrap_or_else(|| name.to_owned()),
            arn,
            spec: RuleSpec {
                description: rule.description.unwrap_or_default(),
                state: rule
                    .state
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                event_pattern: serde_json::from_str(&pattern)
                    .unwrap_or(serde_json::Value::String(pattern)),
                targets,
            },
            tags,
        }))
    }

    async fn put_rule(
        &self,
        name: &str,
        spec: &RuleSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        let tags: Vec<eb::types::Tag> = tags
            .iter()
            .map(|(k, v)| {
                eb::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect();
        // PutRule creates or updates; tags apply only when it creates
        // (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html).
        let arn = self
            .0
            .put_rule()
            .name(name)
            .description(&spec.description)
            .state(eb::types::RuleState::from(spec.state.as_str()))
            .event_pattern(spec.event_pattern.to_string())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_err("PutRule", e))?
            .rule_arn
            .context("PutRule returned no RuleArn")?;
        let targets = spec
            .targets
            .iter()
            .map(|t| {
                let transformer = eb::types::InputTransformer::builder()
                    .set_input_paths_map(Some(t.input_paths.clone().into_iter().collect()))
                    .input_template(&t.input_template)
                    .build()
                    .context("InputTransformer needs a template")?;
                eb::types::Target::builder()
                    .id(&t.id)
                    .arn(&t.arn)
                    .input_transformer(transformer)
                    .build()
                    .context("a target needs an id and an ARN")
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .0
            .put_targets()
            .rule(name)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| sdk_err("PutTargets", e))?;
        // PutTargets reports per-target failures in the answer, not as an error.
        if let Some(f) = out.failed_entries.unwrap_or_default().first() {
            anyhow::bail!(
                "PutTargets: {}: {}",
                f.error_code.as_deref().unwrap_or("failed"),
                f.error_message.as_deref().unwrap_or("(no message)")
            );
        }
        let wanted: Vec<&str> = spec.targets.iter().map(|t| t.id.as_str()).collect();
        let stale: Vec<String> = self
            .targets(name)
            .await?
            .into_iter()
            .map(|t| t.id)
            .filter(|id| !wanted.contains(&id.as_str()))
            .collect();
        if !stale.is_empty() {
            self.0
                .remove_targets()
                .rule(name)
                .set_ids(Some(stale))
                .send()
                .await
                .map_err(|e| sdk_err("RemoveTargets", e))?;
        }
        Ok(arn)
    }

    async fn delete_rule(&self, name: &str) -> Result<()> {
        // A rule must have no targets before it can be deleted
        // (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DeleteRule.html).
        let ids: Vec<String> = self
            .targets(name)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        if !ids.is_empty() {
            self.0
                .remove_targets()
                .rule(name)
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(|e| sdk_err("RemoveTargets", e))?;
        }
        self.0
            .delete_rule()
            .name(name)
            .send()
            .await
            .map_err(|e| sdk_err("DeleteRule", e))?;
        Ok(())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags: Vec<eb::types::Tag> = tags
            .iter()
            .map(|(k, v)| {
                eb::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect();
        self.0
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_err("TagResource", e))?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.0
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_err("UntagResource", e))?;
        Ok(())
    }
}
