//! The IoT side of the reconciler: one policy per group (a changed document becomes a new
//! default version), their deletion, `iot grant`'s logic, [`grant_groups`], and in
//! `iot.auth = "custom-authorizer"` mode the IoT custom authorizer instead of the policies.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use groupcast::outputs::IotOutputs;
use groupcast_auth::grant::{self, GrantRules, IotPolicyApi, PolicyPattern};

use super::{PolicyDoc, Reconciler, State};
use crate::aws::{self, AuthorizerSpec, Cloud, Iot};
use crate::config::{Config, PROJECT_TAG};

impl State for AuthorizerSpec {
    fn text(&self) -> String {
        super::pretty(self)
    }
}

impl<C: Cloud> Reconciler<'_, C> {
    /// groupcast's policies among the names matching the pattern: (name, arn).
    async fn owned_policies(&self, pattern: &str) -> anyhow::Result<Vec<(String, String)>> {
        let iot = self.cloud.iot();
        let pattern = PolicyPattern::parse(pattern)?;
        let mut out = Vec::new();
        for name in iot.list_policy_names().await? {
            if !pattern.matches(&name) {
                continue;
            }
            if let Some(p) = iot.get_policy(&name).await?
                && self.owned(&iot.tags(&p.arn).await?)
            {
                out.push((name, p.arn));
            }
        }
        Ok(out)
    }

    /// Deletes a policy: detached from every identity, its old versions, then itself. The change
    /// names how many identities hold the policy (plan shows who loses access).
    async fn delete_policy(&mut self, name: &str) -> anyhow::Result<()> {
        let iot = self.cloud.iot();
        let doc = PolicyDoc::absent();
        let attached = iot.targets(name).await?.len();
        let label = match attached {
            1 => format!("{name} (attached to 1 identity)"),
            n => format!("{name} (attached to {n} identities)"),
        };
        self.converge(
            "iot-policy",
            &label,
            Some(&doc),
            None,
            async |_| Ok(()),
            async |_| Ok(()),
            async || {
                for target in iot.targets(name).await? {
                    iot.detach(name, &target).await?;
                }
                for v in iot.list_versions(name).await? {
                    if !v.is_default {
                        iot.delete_version(name, &v.id).await?;
                    }
                }
                iot.delete_policy(name).await
            },
        )
        .await?;
        Ok(())
    }

    /// The project's IoT custom authorizer: created or updated from `iot/custom-authorizer.json`
    /// in custom-authorizer mode, deleted otherwise (a switch back to identity-pool must not
    /// leave a way in). Returns its name when it is wanted.
    async fn iot_authorizer(&mut self, wanted: bool) -> anyhow::Result<Option<String>> {
        let iot = self.cloud.iot();
        let name = self.config.iot_authorizer_name();
        let desired: Option<AuthorizerSpec> = if wanted {
            let path = crate::render::CUSTOM_AUTHORIZER_PATH;
            let doc = self
                .rendered
                .get(path)
                .with_context(|| format!("{path} was not rendered"))?;
            Some(serde_json::from_str(doc).with_context(|| path.to_owned())?)
        } else {
            None
        };
        let live = iot.get_authorizer(&name).await?;
        let live_tags = match &live {
            Some(a) => Some(iot.tags(&a.arn).await?),
            None => None,
        };
        if let Some(t) = &live_tags
            && !self.owned(t)
        {
            if !wanted {
                return Ok(None);
            }
            bail!(
                "IoT authorizer {name:?} exists but is not tagged {PROJECT_TAG}={}: groupcast will not change it",
                self.project()
            );
        }
        let tags = self.config.resource_tags();
        let live_spec = live.as_ref().map(|a| a.spec.clone());
        let recreate = matches!((&live_spec, &desired), (Some(l), Some(d)) if l.signing_disabled != d.signing_disabled);
        self.converge(
            "iot-authorizer",
            &name,
            live_spec.as_ref(),
            desired.as_ref(),
            async |d| iot.create_authorizer(&name, d, &tags).await.map(drop),
            // IoT fixes signingDisabled at creation: a change there is a replacement.
            async |d| {
                if recreate {
                    iot.delete_authorizer(&name).await?;
                    iot.create_authorizer(&name, d, &tags).await.map(drop)
                } else {
                    iot.update_authorizer(&name, d).await
                }
            },
            async || iot.delete_authorizer(&name).await,
        )
        .await?;
        if wanted && let (Some(a), Some(live_tags)) = (&live, &live_tags) {
            let arn = a.arn.clone();
            self.sync_tags(
                "iot-authorizer",
                &name,
                live_tags,
                &tags,
                async |t| iot.tag(&arn, t).await,
                async |k| iot.untag(&arn, k).await,
            )
            .await?;
        }
        Ok(wanted.then_some(name))
    }

    /// One IoT policy per group (a changed document becomes a new default version), or in
    /// custom-authorizer mode the authorizer and no policies.
    pub(crate) async fn iot(&mut self) -> anyhow::Result<Option<IotOutputs>> {
        let project = self.project().to_owned();
        let Some(iot_cfg) = self.config.iot.clone() else {
            return Ok(None);
        };
        let iot = self.cloud.iot();
        let pattern = iot_cfg.pattern(&project);
        let tags = self.config.resource_tags();
        let mut policies = BTreeMap::new();
        let policy_groups = if iot_cfg.custom_authorizer() {
            Vec::new()
        } else {
            self.config.iot_groups()
        };
        for g in policy_groups {
            let path = format!("iot/{}.json", g.policy_name);
            let doc = self
                .rendered
                .get(&path)
                .with_context(|| format!("{path} was not rendered"))?
                .to_owned();
            policies.insert(g.group.clone(), g.policy_name.clone());
            let live = iot.get_policy(&g.policy_name).await?;
            let live_tags = match &live {
                Some(p) => Some(iot.tags(&p.arn).await?),
                None => None,
            };
            if let Some(t) = &live_tags
                && !self.owned(t)
            {
                bail!(
                    "IoT policy {:?} exists but is not tagged {PROJECT_TAG}={project}: groupcast will not change it",
                    g.policy_name
                );
            }
            let name = g.policy_name.clone();
            self.converge(
                "iot-policy",
                &g.policy_name,
                live.as_ref()
                    .map(|p| PolicyDoc::parse(&p.document))
                    .as_ref(),
                Some(&PolicyDoc::parse(&doc)),
                async |_| iot.create_policy(&name, &doc, &tags).await.map(drop),
                async |_| new_policy_version(iot, &name, &doc).await,
                async || Ok(()),
            )
            .await?;
            if let (Some(p), Some(live_tags)) = (&live, &live_tags) {
                let arn = p.arn.clone();
                self.sync_tags(
                    "iot-policy",
                    &g.policy_name,
                    live_tags,
                    &tags,
                    async |t| iot.tag(&arn, t).await,
                    async |k| iot.untag(&arn, k).await,
                )
                .await?;
            }
        }
        let desired: BTreeSet<&String> = policies.values().collect();
        for (name, _) in self.owned_policies(&pattern).await? {
            if !desired.contains(&name) {
                self.delete_policy(&name).await?;
            }
        }
        let custom_authorizer = self.iot_authorizer(iot_cfg.custom_authorizer()).await?;
        let data_endpoint = if self.applying() {
            iot.data_endpoint().await?
        } else {
            String::new()
        };
        Ok(Some(IotOutputs {
            data_endpoint,
            topic_prefix: iot_cfg.topic_prefix.clone(),
            policy_name_pattern: pattern,
            policies,
            custom_authorizer,
        }))
    }

    /// Deletes every IoT policy this project owns, and its custom authorizer.
    pub(super) async fn destroy_iot(&mut self) -> anyhow::Result<()> {
        if let Some(iot) = &self.config.iot {
            let pattern = iot.pattern(self.project());
            for (name, _) in self.owned_policies(&pattern).await? {
                self.delete_policy(&name).await?;
            }
            self.iot_authorizer(false).await?;
        }
        Ok(())
    }
}

/// IoT keeps 5 versions: make room by deleting the oldest non-default one, then add `doc`.
async fn new_policy_version<I: Iot>(iot: &I, name: &str, doc: &str) -> anyhow::Result<()> {
    let mut versions = iot.list_versions(name).await?;
    if versions.len() >= groupcast::limits::IOT_POLICY_MAX_VERSIONS {
        versions.retain(|v| !v.is_default);
        versions.sort_by(|a, b| {
            let key = |v: &aws::PolicyVersion| {
                (v.created.unwrap_or(0.0), v.id.parse::<u64>().unwrap_or(0))
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if let Some(oldest) = versions.first() {
            iot.delete_version(name, &oldest.id).await?;
        }
    }
    iot.create_version(name, doc).await
}

/// What `iot grant` did: groupcast-auth's report (the one grant implementation).
pub(crate) type Grant = groupcast_auth::grant::Grant;

/// `iot grant`: makes this project's policies on `identity` exactly those of `groups`, through
/// [`groupcast_auth::grant`] (only `iot.groups`, only policies tagged with this project, IoT's
/// 10-policy quota; the iot-grant Lambda uses the same code). Stricter than the Lambda about its
/// input, since an operator typed it: a group outside `iot.groups`, a policy not applied yet or
/// another project's policy of the same name is an error, and nothing is changed.
pub(crate) async fn grant_groups<A: IotPolicyApi + Sync>(
    iot: &A,
    config: &Config,
    identity: &str,
    groups: &[String],
) -> anyhow::Result<Grant> {
    let Some(iot_cfg) = &config.iot else {
        bail!("iot grant needs an [iot] section in the config")
    };
    let project = &config.project.name;
    let rules = GrantRules::new(project, &iot_cfg.pattern(project), &iot_cfg.groups)?;
    // `--groups ""` (revoke all) arrives as one empty name.
    let groups: Vec<String> = groups.iter().filter(|g| !g.is_empty()).cloned().collect();
    if let Some(g) = rules.wanted(&groups).ignored.first() {
        bail!("--groups: {g:?} is not in iot.groups, so it has no policy");
    }
    let plan = grant::plan(iot, &rules, identity, &groups).await?;
    if !plan.missing.is_empty() {
        bail!(
            "--groups: {:?} have no IoT policy yet: run provisioner apply first; nothing was changed",
            plan.missing
        );
    }
    if !plan.not_owned.is_empty() {
        bail!(
            "IoT policies {:?} exist but are not tagged {PROJECT_TAG}={project}: groupcast never \
             grants another project's or a hand-made policy; nothing was changed",
            plan.not_owned
        );
    }
    Ok(grant::apply(iot, plan).await?)
}
