//! The reconciler: walks the config against live state through the [`AppSync`] and [`Iot`]
//! traits. In plan mode it only records [`Change`]s; in apply mode it also makes them, resource
//! by resource, so a re-run after a failure picks up where the last run stopped (resources are
//! found by name plus the `groupcast:project` tag, and each is created with that tag in the same
//! call). Also `iot grant`'s logic, [`grant_groups`].

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use groupcast::Outputs;
use groupcast::outputs::{
    EventsOutputs, GraphqlOutputs, IotOutputs, NamespaceOutputs, OUTPUTS_VERSION,
};
use groupcast_auth::grant::{self, GrantRules, IotPolicyApi};
use serde::Serialize;
use sha2::Digest as _;

use crate::aws::{
    self, AppSync, CognitoSpec, EventApi, EventConfigSpec, GraphqlApi, GraphqlAuthSpec, Iot,
    LambdaSpec, NamespaceSpec, OidcSpec, ProviderSpec, ResolverSpec,
};
use crate::config::{AuthMode, AuthProviders, Config, PROJECT_TAG};
use crate::render::Rendered;
/// The tag on the GraphQL API that records which schema was last applied successfully. AppSync
/// reformats schemas, so comparing text would report changes forever.
pub(crate) const SCHEMA_TAG: &str = "groupcast:schema-sha256";
/// The NONE data source the resolvers use.
pub(crate) const NONE_DATA_SOURCE: &str = "groupcast_none";
/// The description groupcast gives its API keys (how it finds them again).
pub(crate) const API_KEY_DESCRIPTION: &str = "groupcast";

/// One thing apply creates, updates or deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Change {
    pub(crate) action: Action,
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diff: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+ create",
            Action::Update => "~ update",
            Action::Delete => "- delete",
        }
    }
}

/// Walks config against live state; see the module docs.
#[derive(Debug)]
pub(crate) struct Reconciler<'a, A, I> {
    pub(crate) appsync: &'a A,
    pub(crate) iot: &'a I,
    pub(crate) config: &'a Config,
    pub(crate) rendered: &'a Rendered,
    /// `false` for plan.
    pub(crate) apply: bool,
    /// Print each change on stderr as it happens.
    pub(crate) progress: bool,
    pub(crate) changes: Vec<Change>,
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("live", "config")
        .to_string()
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("specs serialize") + "\n"
}

fn pretty_json_text(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s)
        .map(|v| pretty(&v))
        .unwrap_or_else(|_| s.to_owned())
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn provider_spec(mode: AuthMode, auth: &AuthProviders, region: &str) -> ProviderSpec {
    let mut p = ProviderSpec {
        auth_type: mode.as_str().to_owned(),
        cognito: None,
        oidc: None,
        lambda: None,
    };
    match mode {
        AuthMode::Cognito => {
            let c = auth
                .cognito
                .as_ref()
                .expect("validated: mode has its provider");
            p.cognito = Some(CognitoSpec {
                user_pool_id: c.user_pool_id.clone(),
                aws_region: c.region.clone().unwrap_or_else(|| region.to_owned()),
                app_id_client_regex: c.app_id_client_regex.clone(),
            });
        }
        AuthMode::Oidc => {
            let o = auth
                .oidc
                .as_ref()
                .expect("validated: mode has its provider");
            p.oidc = Some(OidcSpec {
                issuer: o.issuer.clone(),
                client_id: o.client_id.clone(),
                iat_ttl: o.iat_ttl_ms.unwrap_or(0),
                auth_ttl: o.auth_ttl_ms.unwrap_or(0),
            });
        }
        AuthMode::Lambda => {
            let l = auth
                .lambda
                .as_ref()
                .expect("validated: mode has its provider");
            p.lambda = Some(LambdaSpec {
                authorizer_uri: l.authorizer_arn.clone(),
                ttl_seconds: i32::try_from(l.result_ttl_seconds).expect("validated: at most 3600"),
                identity_validation_expression: l.identity_validation_expression.clone(),
            });
        }
        AuthMode::Iam | AuthMode::ApiKey => {}
    }
    p
}

fn names(modes: &[AuthMode]) -> Vec<String> {
    modes.iter().map(|m| m.as_str().to_owned()).collect()
}

/// The Event API's desired `eventConfig`: every configured provider, the configured modes.
pub(crate) fn event_config_spec(config: &Config) -> Option<EventConfigSpec> {
    let ev = config.events.as_ref()?;
    Some(EventConfigSpec {
        auth_providers: ev
            .auth
            .modes()
            .into_iter()
            .map(|m| provider_spec(m, &ev.auth, &config.project.region))
            .collect(),
        connection_auth_modes: names(&ev.connection_auth_modes),
        default_publish_auth_modes: names(&ev.default_publish_auth_modes),
        default_subscribe_auth_modes: names(&ev.default_subscribe_auth_modes),
    })
}

/// The GraphQL API's desired auth: IAM (the publisher) by default, every other configured
/// provider as an additional one.
pub(crate) fn graphql_auth_spec(config: &Config) -> Option<GraphqlAuthSpec> {
    let gq = config.graphql.as_ref()?;
    Some(GraphqlAuthSpec {
        authentication_type: AuthMode::Iam.as_str().to_owned(),
        additional: gq
            .auth
            .modes()
            .into_iter()
            .filter(|m| *m != AuthMode::Iam)
            .map(|m| provider_spec(m, &gq.auth, &config.project.region))
            .collect(),
    })
}

/// Whether `name` is a policy name the pattern produces (for some valid group segment).
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let Some((prefix, suffix)) = pattern.split_once("{group}") else {
        return false;
    };
    name.len() > prefix.len() + suffix.len()
        && name.starts_with(prefix)
        && name.ends_with(suffix)
        && groupcast::decode_segment(&name[prefix.len()..name.len() - suffix.len()]).is_some()
}

/// What [`Reconciler::settle`] reads of a live API.
trait LiveApi {
    /// How errors name this kind of API: "an Event API".
    const NOUN: &'static str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn tags(&self) -> &BTreeMap<String, String>;
}

impl LiveApi for EventApi {
    const NOUN: &'static str = "an Event API";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
}

impl LiveApi for GraphqlApi {
    const NOUN: &'static str = "a GraphQL API";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
}

impl<A: AppSync, I: Iot> Reconciler<'_, A, I> {
    fn record(
        &mut self,
        action: Action,
        kind: &'static str,
        name: impl Into<String>,
        diff: Option<String>,
    ) {
        let change = Change {
            action,
            kind,
            name: name.into(),
            diff,
        };
        if self.progress {
            eprintln!("{} {} {}", change.action.symbol(), change.kind, change.name);
        }
        self.changes.push(change);
    }

    /// Progress for a resource that needs nothing.
    fn in_sync(&self, kind: &str, name: &str) {
        if self.progress {
            eprintln!("= {kind} {name} (in sync)");
        }
    }

    fn project(&self) -> &str {
        &self.config.project.name
    }

    fn owned(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(PROJECT_TAG).map(String::as_str) == Some(self.project())
    }

    /// Tags to add and keys to remove so that `live` carries exactly `desired` (aws: keys stay).
    async fn sync_tags<F, G>(
        &mut self,
        kind: &'static str,
        name: &str,
        live: &BTreeMap<String, String>,
        desired: &BTreeMap<String, String>,
        tag: F,
        untag: G,
    ) -> anyhow::Result<()>
    where
        F: AsyncFnOnce(&BTreeMap<String, String>) -> anyhow::Result<()>,
        G: AsyncFnOnce(&[String]) -> anyhow::Result<()>,
    {
        let add: BTreeMap<String, String> = desired
            .iter()
            .filter(|(k, v)| live.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove: Vec<String> = live
            .keys()
            .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:"))
            .cloned()
            .collect();
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        self.record(
            Action::Update,
            kind,
            format!("{name} (tags)"),
            Some(unified(&pretty(live), &pretty(desired))),
        );
        if self.apply {
            if !add.is_empty() {
                tag(&add).await?;
            }
            if !remove.is_empty() {
                untag(&remove).await?;
            }
        }
        Ok(())
    }

    /// The one live API of a kind that the config names (`wanted`), once the rest are settled:
    /// every API this project owns that is not the wanted one (or a second of that name) is
    /// deleted, and an API of the wanted name that this project does not own stops the run, as
    /// taking it over would change a resource someone else made. `wanted: None` deletes them all.
    async fn settle<T: LiveApi>(
        &mut self,
        kind: &'static str,
        wanted: Option<&str>,
        live: Vec<T>,
        delete: impl AsyncFn(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<Option<T>> {
        let (ours, others): (Vec<T>, Vec<T>) = live.into_iter().partition(|a| self.owned(a.tags()));
        if let Some(name) = wanted
            && others.iter().any(|a| a.name() == name)
            && !ours.iter().any(|a| a.name() == name)
        {
            bail!(
                "{} named {name:?} exists but is not tagged {PROJECT_TAG}={}: groupcast will not take it over",
                T::NOUN,
                self.project()
            );
        }
        let mut kept = None;
        for a in ours {
            if kept.is_none() && Some(a.name()) == wanted {
                kept = Some(a);
                continue;
            }
            self.record(
                Action::Delete,
                kind,
                format!("{} ({})", a.name(), a.id()),
                None,
            );
            if self.apply {
                delete(a.id()).await?;
            }
        }
        Ok(kept)
    }

    /// Every Event API, with tags. A list result without tags or `eventConfig` is completed with
    /// read calls, so ownership and drift never depend on what a list call chooses to return.
    async fn event_apis(&self) -> anyhow::Result<Vec<EventApi>> {
        let mut apis = self.appsync.list_event_apis().await?;
        for a in &mut apis {
            if a.tags.is_empty() && !a.arn.is_empty() {
                a.tags = self.appsync.tags_of(&a.arn).await?;
            }
            if a.config.is_none() && self.owned(&a.tags) {
                *a = EventApi {
                    tags: a.tags.clone(),
                    ..self.appsync.get_event_api(&a.id).await?
                };
            }
        }
        Ok(apis)
    }

    /// Every GraphQL API, with tags (see [`Self::event_apis`]).
    async fn graphql_apis(&self) -> anyhow::Result<Vec<GraphqlApi>> {
        let mut apis = self.appsync.list_graphql_apis().await?;
        for a in &mut apis {
            if a.tags.is_empty() && !a.arn.is_empty() {
                a.tags = self.appsync.tags_of(&a.arn).await?;
            }
        }
        Ok(apis)
    }

    /// The Event API, its namespaces and its API key.
    pub(crate) async fn events(&mut self) -> anyhow::Result<Option<EventsOutputs>> {
        let live_apis = self.event_apis().await?;
        let wanted = self.config.events.as_ref().map(|ev| ev.name.clone());
        let appsync = self.appsync;
        let api = self
            .settle("event-api", wanted.as_deref(), live_apis, async |id| {
                appsync.delete_event_api(id).await
            })
            .await?;
        let Some(ev) = self.config.events.clone() else {
            return Ok(None);
        };
        let desired = event_config_spec(self.config).expect("events configured");
        let tags = self.config.resource_tags();
        let api = match api {
            Some(mut a) => {
                if a.config.as_ref() != Some(&desired) {
                    let live = a.config.as_ref().map(pretty).unwrap_or_default();
                    self.record(
                        Action::Update,
                        "event-api",
                        &ev.name,
                        Some(unified(&live, &pretty(&desired))),
                    );
                    if self.apply {
                        // Keep the listed tags: an update response need not carry them.
                        let updated = self
                            .appsync
                            .update_event_api(&a.id, &ev.name, &desired)
                            .await?;
                        a = EventApi {
                            tags: a.tags,
                            ..updated
                        };
                    }
                } else {
                    self.in_sync("event-api", &ev.name);
                }
                let (arn, live_tags) = (a.arn.clone(), a.tags.clone());
                let appsync = self.appsync;
                self.sync_tags(
                    "event-api",
                    &ev.name,
                    &live_tags,
                    &tags,
                    async |t| appsync.tag(&arn, t).await,
                    async |k| appsync.untag(&arn, k).await,
                )
                .await?;
                Some(a)
            }
            None => {
                self.record(
                    Action::Create,
                    "event-api",
                    &ev.name,
                    Some(unified("", &pretty(&desired))),
                );
                if self.apply {
                    Some(
                        self.appsync
                            .create_event_api(&ev.name, &desired, &tags)
                            .await?,
                    )
                } else {
                    None
                }
            }
        };

        let live_ns = match &api {
            Some(a) => self.appsync.list_namespaces(&a.id).await?,
            None => Vec::new(),
        };
        let mut ns_outputs = Vec::new();
        for ns in &ev.namespaces {
            let path = format!("events/{}.js", ns.name);
            let code = self
                .rendered
                .get(&path)
                .with_context(|| format!("{path} was not rendered"))?
                .to_owned();
            let spec = NamespaceSpec {
                name: ns.name.clone(),
                publish_auth_modes: if ns.publish_iam_only {
                    vec![AuthMode::Iam.as_str().to_owned()]
                } else {
                    names(&ev.default_publish_auth_modes)
                },
                // Explicit modes (not "API default") so live state compares equal on every service.
                subscribe_auth_modes: names(&ev.default_subscribe_auth_modes),
                code,
            };
            match live_ns.iter().find(|l| l.spec.name == ns.name) {
                Some(l) if l.spec == spec => {
                    self.in_sync("namespace", &ns.name);
                    ns_outputs.push(NamespaceOutputs {
                        name: ns.name.clone(),
                        arn: l.arn.clone(),
                    })
                }
                Some(l) => {
                    let mut diff = unified(&l.spec.code, &spec.code);
                    if (&l.spec.publish_auth_modes, &l.spec.subscribe_auth_modes)
                        != (&spec.publish_auth_modes, &spec.subscribe_auth_modes)
                    {
                        let modes = |s: &NamespaceSpec| {
                            format!(
                                "publishAuthModes: {:?}\nsubscribeAuthModes: {:?}\n",
                                s.publish_auth_modes, s.subscribe_auth_modes
                            )
                        };
                        diff.push_str(&unified(&modes(&l.spec), &modes(&spec)));
                    }
                    self.record(Action::Update, "namespace", &ns.name, Some(diff));
                    let arn = match (&api, self.apply) {
                        (Some(a), true) => self.appsync.update_namespace(&a.id, &spec).await?.arn,
                        _ => l.arn.clone(),
                    };
                    ns_outputs.push(NamespaceOutputs {
                        name: ns.name.clone(),
                        arn,
                    });
                }
                None => {
                    self.record(
                        Action::Create,
                        "namespace",
                        &ns.name,
                        Some(unified("", &spec.code)),
                    );
                    if let (Some(a), true) = (&api, self.apply) {
                        let created = self.appsync.create_namespace(&a.id, &spec, &tags).await?;
                        ns_outputs.push(NamespaceOutputs {
                            name: ns.name.clone(),
                            arn: created.arn,
                        });
                    }
                }
            }
        }
        for l in &live_ns {
            if !ev.namespaces.iter().any(|n| n.name == l.spec.name) {
                self.record(Action::Delete, "namespace", &l.spec.name, None);
                if let (Some(a), true) = (&api, self.apply) {
                    self.appsync.delete_namespace(&a.id, &l.spec.name).await?;
                }
            }
        }

        let api_key = match &ev.auth.api_key {
            Some(k) => {
                self.api_key(
                    api.as_ref().map(|a| a.id.as_str()),
                    &ev.name,
                    k.expires_in_days,
                )
                .await?
            }
            None => None,
        };
        Ok(api.map(|a| EventsOutputs {
            api_id: a.id,
            api_arn: a.arn,
            http_host: a.http_host,
            realtime_host: a.realtime_host,
            namespaces: ns_outputs,
            api_key,
        }))
    }

    /// groupcast's API key on `api_id`: an unexpired one if there is one, else a new one.
    async fn api_key(
        &mut self,
        api_id: Option<&str>,
        api_name: &str,
        days: u32,
    ) -> anyhow::Result<Option<String>> {
        let now = now_secs();
        if let Some(id) = api_id {
            let keys = self.appsync.list_api_keys(id).await?;
            // Keep using a key with more than a day left; replace it when it is about to expire.
            if let Some(k) = keys
                .iter()
                .filter(|k| {
                    k.description.as_deref() == Some(API_KEY_DESCRIPTION)
                        && k.expires > now + 86_400
                })
                .max_by_key(|k| k.expires)
            {
                return Ok(Some(k.id.clone()));
            }
        }
        self.record(
            Action::Create,
            "api-key",
            format!("{api_name} (expires in {days} days)"),
            None,
        );
        let (Some(id), true) = (api_id, self.apply) else {
            return Ok(None);
        };
        // AppSync rounds expiry down to the hour; add an hour so the key lasts the full days.
        let slack = if days < 365 { 3_600 } else { 0 };
        let key = self
            .appsync
            .create_api_key(
                id,
                API_KEY_DESCRIPTION,
                now + i64::from(days) * 86_400 + slack,
            )
            .await?;
        Ok(Some(key.id))
    }

    /// The GraphQL API, its schema, NONE data source, resolvers and API key.
    pub(crate) async fn graphql(&mut self) -> anyhow::Result<Option<GraphqlOutputs>> {
        let live_apis = self.graphql_apis().await?;
        let wanted = self.config.graphql.as_ref().map(|gq| gq.name.clone());
        let appsync = self.appsync;
        let api = self
            .settle("graphql-api", wanted.as_deref(), live_apis, async |id| {
                appsync.delete_graphql_api(id).await
            })
            .await?;
        let Some(gq) = self.config.graphql.clone() else {
            return Ok(None);
        };
        let desired = graphql_auth_spec(self.config).expect("graphql configured");
        let schema = self
            .rendered
            .get("graphql/schema.graphql")
            .context("schema was not rendered")?
            .to_owned();
        let mut tags = self.config.resource_tags();
        let api = match api {
            Some(mut a) => {
                if a.auth != desired {
                    self.record(
                        Action::Update,
                        "graphql-api",
                        &gq.name,
                        Some(unified(&pretty(&a.auth), &pretty(&desired))),
                    );
                    if self.apply {
                        let updated = self
                            .appsync
                            .update_graphql_api(&a.id, &gq.name, &desired)
                            .await?;
                        a = GraphqlApi {
                            tags: a.tags,
                            ..updated
                        };
                    }
                } else {
                    self.in_sync("graphql-api", &gq.name);
                }
                Some(a)
            }
            None => {
                self.record(
                    Action::Create,
                    "graphql-api",
                    &gq.name,
                    Some(unified("", &pretty(&desired))),
                );
                if self.apply {
                    Some(
                        self.appsync
                            .create_graphql_api(&gq.name, &desired, &tags)
                            .await?,
                    )
                } else {
                    None
                }
            }
        };

        let hash = sha256_hex(&schema);
        let live_hash = api.as_ref().and_then(|a| a.tags.get(SCHEMA_TAG).cloned());
        if live_hash.as_deref() != Some(hash.as_str()) {
            let live_sdl = match &api {
                Some(a) => self.appsync.schema_sdl(&a.id).await?.unwrap_or_default(),
                None => String::new(),
            };
            let action = if live_sdl.is_empty() {
                Action::Create
            } else {
                Action::Update
            };
            self.record(
                action,
                "graphql-schema",
                &gq.name,
                Some(unified(&live_sdl, &schema)),
            );
            if let (Some(a), true) = (&api, self.apply) {
                self.appsync
                    .put_schema(&a.id, &schema)
                    .await
                    .with_context(|| format!("GraphQL schema of {}", gq.name))?;
            }
        }

        if live_hash.as_deref() == Some(hash.as_str()) {
            self.in_sync("graphql-schema", &gq.name);
        }

        let has_ds = match &api {
            Some(a) => {
                self.appsync
                    .has_data_source(&a.id, NONE_DATA_SOURCE)
                    .await?
            }
            None => false,
        };
        if !has_ds {
            self.record(
                Action::Create,
                "data-source",
                format!("{NONE_DATA_SOURCE} (NONE)"),
                None,
            );
            if let (Some(a), true) = (&api, self.apply) {
                self.appsync
                    .create_none_data_source(&a.id, NONE_DATA_SOURCE)
                    .await?;
            }
        }

        for (type_name, field) in [("Mutation", "publish"), ("Subscription", "subscribe")] {
            let get = |suffix: &str| {
                let path = format!("graphql/{type_name}.{field}.{suffix}.vtl");
                self.rendered
                    .get(&path)
                    .map(str::to_owned)
                    .with_context(|| format!("{path} was not rendered"))
            };
            let spec = ResolverSpec {
                type_name: type_name.to_owned(),
                field_name: field.to_owned(),
                data_source: NONE_DATA_SOURCE.to_owned(),
                request: get("request")?,
                response: get("response")?,
            };
            let live = match &api {
                Some(a) => self.appsync.get_resolver(&a.id, type_name, field).await?,
                None => None,
            };
            let name = format!("{type_name}.{field}");
            match live {
                Some(l) if l == spec => self.in_sync("resolver", &name),
                Some(l) => {
                    let diff = unified(
                        &format!("{}\n{}", l.request, l.response),
                        &format!("{}\n{}", spec.request, spec.response),
                    );
                    self.record(Action::Update, "resolver", name, Some(diff));
                    if let (Some(a), true) = (&api, self.apply) {
                        self.appsync.update_resolver(&a.id, &spec).await?;
                    }
                }
                None => {
                    self.record(Action::Create, "resolver", name, None);
                    if let (Some(a), true) = (&api, self.apply) {
                        self.appsync.create_resolver(&a.id, &spec).await?;
                    }
                }
            }
        }

        // Last: the schema hash is recorded only once schema, data source and resolvers are in.
        if let Some(a) = &api {
            tags.insert(SCHEMA_TAG.to_owned(), hash);
            let (arn, live_tags) = (a.arn.clone(), a.tags.clone());
            let appsync = self.appsync;
            self.sync_tags(
                "graphql-api",
                &gq.name,
                &live_tags,
                &tags,
                async |t| appsync.tag(&arn, t).await,
                async |k| appsync.untag(&arn, k).await,
            )
            .await?;
        }

        let api_key = match &gq.auth.api_key {
            Some(k) => {
                self.api_key(
                    api.as_ref().map(|a| a.id.as_str()),
                    &gq.name,
                    k.expires_in_days,
                )
                .await?
            }
            None => None,
        };
        Ok(api.map(|a| {
            let realtime_url = a.realtime_url.clone().unwrap_or_else(|| {
                a.url.replacen("https://", "wss://", 1).replacen(
                    "appsync-api",
                    "appsync-realtime-api",
                    1,
                )
            });
            GraphqlOutputs {
                api_id: a.id,
                api_arn: a.arn,
                url: a.url,
                realtime_url,
                api_key,
            }
        }))
    }

    /// groupcast's policies among the names matching the pattern: (name, arn).
    async fn owned_policies(&self, pattern: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for name in self.iot.list_policy_names().await? {
            if !matches_pattern(pattern, &name) {
                continue;
            }
            if let Some(p) = self.iot.get_policy(&name).await?
                && self.owned(&self.iot.tags(&p.arn).await?)
            {
                out.push((name, p.arn));
            }
        }
        Ok(out)
    }

    async fn delete_policy(&mut self, name: &str) -> anyhow::Result<()> {
        self.record(Action::Delete, "iot-policy", name, None);
        if !self.apply {
            return Ok(());
        }
        for target in self.iot.targets(name).await? {
            self.iot.detach(name, &target).await?;
        }
        for v in self.iot.list_versions(name).await? {
            if !v.is_default {
                self.iot.delete_version(name, &v.id).await?;
            }
        }
        self.iot.delete_policy(name).await
    }

    /// One IoT policy per group; a changed document becomes a new default version.
    pub(crate) async fn iot(&mut self) -> anyhow::Result<Option<IotOutputs>> {
        let project = self.project().to_owned();
        let Some(iot) = self.config.iot.clone() else {
            return Ok(None);
        };
        let pattern = iot.pattern(&project);
        let tags = self.config.resource_tags();
        let mut policies = BTreeMap::new();
        let groups = self.config.iot_groups();
        for g in &groups {
            let path = format!("iot/{}.json", g.policy_name);
            let doc = self
                .rendered
                .get(&path)
                .with_context(|| format!("{path} was not rendered"))?
                .to_owned();
            policies.insert(g.group.clone(), g.policy_name.clone());
            match self.iot.get_policy(&g.policy_name).await? {
                None => {
                    self.record(
                        Action::Create,
                        "iot-policy",
                        &g.policy_name,
                        Some(unified("", &doc)),
                    );
                    if self.apply {
                        self.iot.create_policy(&g.policy_name, &doc, &tags).await?;
                    }
                }
                Some(p) => {
                    let live_tags = self.iot.tags(&p.arn).await?;
                    if !self.owned(&live_tags) {
                        bail!(
                            "IoT policy {:?} exists but is not tagged {PROJECT_TAG}={project}: groupcast will not change it",
                            g.policy_name
                        );
                    }
                    let same = serde_json::from_str::<serde_json::Value>(&p.document).ok()
                        == serde_json::from_str::<serde_json::Value>(&doc).ok();
                    if same {
                        self.in_sync("iot-policy", &g.policy_name);
                    } else {
                        let diff = unified(&pretty_json_text(&p.document), &pretty_json_text(&doc));
                        self.record(Action::Update, "iot-policy", &g.policy_name, Some(diff));
                        if self.apply {
                            self.new_policy_version(&g.policy_name, &doc).await?;
                        }
                    }
                    let iot_api = self.iot;
                    let arn = p.arn.clone();
                    self.sync_tags(
                        "iot-policy",
                        &g.policy_name,
                        &live_tags,
                        &tags,
                        async |t| iot_api.tag(&arn, t).await,
                        async |k| iot_api.untag(&arn, k).await,
                    )
                    .await?;
                }
            }
        }
        let desired: BTreeSet<&String> = policies.values().collect();
        for (name, _) in self.owned_policies(&pattern).await? {
            if !desired.contains(&name) {
                self.delete_policy(&name).await?;
            }
        }
        let data_endpoint = if self.apply {
            self.iot.data_endpoint().await?
        } else {
            String::new()
        };
        Ok(Some(IotOutputs {
            data_endpoint,
            topic_prefix: iot.topic_prefix.clone(),
            policy_name_pattern: pattern,
            policies,
        }))
    }

    /// IoT keeps 5 versions: make room by deleting the oldest non-default one, then add `doc`.
    async fn new_policy_version(&self, name: &str, doc: &str) -> anyhow::Result<()> {
        let mut versions = self.iot.list_versions(name).await?;
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
                self.iot.delete_version(name, &oldest.id).await?;
            }
        }
        self.iot.create_version(name, doc).await
    }

    /// Everything: events, graphql, iot, in that order.
    pub(crate) async fn run(&mut self) -> anyhow::Result<Outputs> {
        let events = self.events().await?;
        let graphql = self.graphql().await?;
        let iot = self.iot().await?;
        Ok(Outputs {
            version: OUTPUTS_VERSION,
            region: self.config.project.region.clone(),
            events,
            graphql,
            iot,
        })
    }

    /// Deletes everything groupcast owns for this project.
    pub(crate) async fn destroy(&mut self) -> anyhow::Result<()> {
        let appsync = self.appsync;
        let live = self.event_apis().await?;
        self.settle("event-api", None, live, async |id| {
            appsync.delete_event_api(id).await
        })
        .await?;
        let live = self.graphql_apis().await?;
        self.settle("graphql-api", None, live, async |id| {
            appsync.delete_graphql_api(id).await
        })
        .await?;
        if let Some(iot) = &self.config.iot {
            let pattern = iot.pattern(self.project());
            for (name, _) in self.owned_policies(&pattern).await? {
                self.delete_policy(&name).await?;
            }
        }
        Ok(())
    }
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
            "--groups: {:?} have no IoT policy yet (run provisioner apply); nothing was changed",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_match_the_pattern_only_for_valid_segments() {
        assert!(matches_pattern("acme-{group}", "acme-team-a"));
        assert!(matches_pattern("acme-{group}", "acme-x--Team-5fB"));
        assert!(!matches_pattern("acme-{group}", "acme-"));
        assert!(!matches_pattern("acme-{group}", "other-team-a"));
        assert!(!matches_pattern("acme-{group}", "acme-a--b"));
        assert!(matches_pattern("{group}.gc", "admins.gc"));
    }
}
