//! The AppSync side of the reconciler: the Event API with its namespaces and API key, the
//! GraphQL API with its schema, NONE data source, resolvers and API key; and the desired-state
//! builders for both APIs.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use groupcast::outputs::{EventsOutputs, GraphqlOutputs, NamespaceOutputs};

use super::{
    API_KEY_DESCRIPTION, Action, NONE_DATA_SOURCE, Reconciler, SCHEMA_TAG, State, now_secs, pretty,
    sha256_hex, unified,
};
use crate::aws::{
    ApiKey, AppSync as _, Cloud, CognitoSpec, EventApi, EventConfigSpec, GraphqlApi,
    GraphqlApiSpec, LambdaSpec, LogConfigSpec, NamespaceSpec, OidcSpec, ProviderSpec, ResolverSpec,
};
use crate::config::{AuthMode, AuthProviders, Config, PROJECT_TAG};

impl State for EventConfigSpec {
    fn text(&self) -> String {
        pretty(self)
    }
}

impl State for GraphqlApiSpec {
    fn text(&self) -> String {
        pretty(self)
    }
}

impl State for NamespaceSpec {
    fn text(&self) -> String {
        format!(
            "publishAuthModes: {:?}\nsubscribeAuthModes: {:?}\n{}",
            self.publish_auth_modes, self.subscribe_auth_modes, self.code
        )
    }
}

/// A data source groupcast only ever creates (the NONE one): it exists or not.
#[derive(Debug, PartialEq)]
struct DataSource;

impl State for DataSource {
    fn text(&self) -> String {
        format!("{NONE_DATA_SOURCE}: NONE\n")
    }
}

/// An API key has no state to compare; it only exists or not.
#[derive(Debug, PartialEq)]
struct KeyState;

impl State for KeyState {
    fn text(&self) -> String {
        String::new()
    }
}

impl State for ResolverSpec {
    fn text(&self) -> String {
        format!("{}\n{}", self.request, self.response)
    }
}

/// Both APIs' logging: the configured level, written with the project's AppSync logging role.
fn log_config(config: &Config) -> Option<LogConfigSpec> {
    Some(LogConfigSpec {
        level: config.appsync_log_level().to_owned(),
        role_arn: config.role_arn(&config.appsync_logs_role_name()),
    })
}

/// A client-id regex that only matches whole ids. AppSync takes `appIdClientRegex` and OIDC
/// `clientId` as regular expressions
/// (https://docs.aws.amazon.com/appsync/latest/APIReference/API_OpenIDConnectConfig.html,
/// https://docs.aws.amazon.com/appsync/latest/APIReference/API_CognitoConfig.html) without saying
/// whether they must match the whole id; anchored, they do either way, so `abc` never admits
/// `xabcx`.
pub(crate) fn full_match(regex: &str) -> String {
    // Kept as written only when plainly anchored: `^a|b$` is `^a` or `b$`, not anchored at all.
    if regex.starts_with('^')
        && regex.ends_with('$')
        && !regex.ends_with("\\$")
        && !regex.contains('|')
    {
        regex.to_owned()
    } else {
        format!("^(?:{regex})$")
    }
}

/// A literal client id as a regex that matches exactly it (OIDC `client_id` in the config is an
/// id, not a pattern).
pub(crate) fn literal(id: &str) -> String {
    let mut out = String::from("^");
    for c in id.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
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
                app_id_client_regex: c.app_id_client_regex.as_deref().map(full_match),
            });
        }
        AuthMode::Oidc => {
            let o = auth
                .oidc
                .as_ref()
                .expect("validated: mode has its provider");
            p.oidc = Some(OidcSpec {
                issuer: o.issuer.clone(),
                client_id: o.client_id.as_deref().map(literal),
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
        log_config: log_config(config),
    })
}

/// The GraphQL API's desired settings: IAM (the publisher) by default, every other configured
/// provider as an additional one.
pub(crate) fn graphql_api_spec(config: &Config) -> Option<GraphqlApiSpec> {
    let gq = config.graphql.as_ref()?;
    Some(GraphqlApiSpec {
        authentication_type: AuthMode::Iam.as_str().to_owned(),
        additional: gq
            .auth
            .modes()
            .into_iter()
            .filter(|m| *m != AuthMode::Iam)
            .map(|m| provider_spec(m, &gq.auth, &config.project.region))
            .collect(),
        log_config: log_config(config),
    })
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

impl<C: Cloud> Reconciler<'_, C> {
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
            let label = format!("{} ({})", a.name(), a.id());
            self.check_delete(kind, &label)?;
            self.record(Action::Delete, kind, label, None);
            if self.applying() {
                delete(a.id()).await?;
            }
        }
        Ok(kept)
    }

    /// Every Event API, with tags. A list result without tags or `eventConfig` is completed with
    /// read calls, so ownership and drift never depend on what a list call chooses to return.
    /// `ListApis` may list other kinds of API: only those with an `eventConfig` are Event APIs,
    /// and only those are ever settled (deleted) here.
    async fn event_apis(&self) -> anyhow::Result<Vec<EventApi>> {
        let appsync = self.cloud.appsync();
        let mut apis = appsync.list_event_apis().await?;
        for a in &mut apis {
            if a.tags.is_empty() && !a.arn.is_empty() {
                a.tags = appsync.tags_of(&a.arn).await?;
            }
            if a.config.is_none() && self.owned(&a.tags) {
                *a = EventApi {
                    tags: a.tags.clone(),
                    ..appsync.get_event_api(&a.id).await?
                };
            }
        }
        apis.retain(|a| a.config.is_some() || !self.owned(&a.tags));
        Ok(apis)
    }

    /// Every GraphQL API, with tags (see [`Self::event_apis`]).
    async fn graphql_apis(&self) -> anyhow::Result<Vec<GraphqlApi>> {
        let appsync = self.cloud.appsync();
        let mut apis = appsync.list_graphql_apis().await?;
        for a in &mut apis {
            if a.tags.is_empty() && !a.arn.is_empty() {
                a.tags = appsync.tags_of(&a.arn).await?;
            }
        }
        Ok(apis)
    }

    /// The Event API, its namespaces and its API key.
    pub(crate) async fn events(&mut self) -> anyhow::Result<Option<EventsOutputs>> {
        let appsync = self.cloud.appsync();
        let live_apis = self.event_apis().await?;
        let wanted = self.config.events.as_ref().map(|ev| ev.name.clone());
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
        let id = api.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        // An owned API always has its config (see event_apis); were it missing, update it
        // rather than create a second API of the same name.
        let live_config = api.as_ref().map(|a| {
            a.config.clone().unwrap_or(EventConfigSpec {
                auth_providers: Vec::new(),
                connection_auth_modes: Vec::new(),
                default_publish_auth_modes: Vec::new(),
                default_subscribe_auth_modes: Vec::new(),
                log_config: None,
            })
        });
        let result = self
            .converge(
                "event-api",
                &ev.name,
                live_config.as_ref(),
                Some(&desired),
                async |d| appsync.create_event_api(&ev.name, d, &tags).await,
                async |d| appsync.update_event_api(&id, &ev.name, d).await,
                async || Ok(()),
            )
            .await?;
        // A created API carries its tags already; an existing one is brought in line.
        if let Some(live) = &api {
            let (arn, live_tags) = (live.arn.clone(), live.tags.clone());
            self.sync_tags(
                "event-api",
                &ev.name,
                &live_tags,
                &tags,
                async |t| appsync.tag(&arn, t).await,
                async |k| appsync.untag(&arn, k).await,
            )
            .await?;
        }
        // Keep the listed tags: an update response need not carry them.
        let api = match (api, result) {
            (Some(live), Some(updated)) => Some(EventApi {
                tags: live.tags,
                ..updated
            }),
            (None, created) => created,
            (live, None) => live,
        };

        let live_ns = match &api {
            Some(a) => appsync.list_namespaces(&a.id).await?,
            None => Vec::new(),
        };
        let api_id = api.as_ref().map(|a| a.id.clone());
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
            let live = live_ns.iter().find(|l| l.spec.name == ns.name);
            let id = api_id.clone().unwrap_or_default();
            let made = self
                .converge(
                    "namespace",
                    &ns.name,
                    live.map(|l| &l.spec),
                    Some(&spec),
                    async |s| appsync.create_namespace(&id, s, &tags).await,
                    async |s| appsync.update_namespace(&id, s).await,
                    async || Ok(()),
                )
                .await?;
            let arn = made.map(|n| n.arn).or_else(|| live.map(|l| l.arn.clone()));
            // Namespaces carry the project's tags too, kept in sync like the API's.
            if let Some(l) = live {
                let (ns_arn, live_tags) = (l.arn.clone(), l.tags.clone());
                self.sync_tags(
                    "namespace",
                    &ns.name,
                    &live_tags,
                    &tags,
                    async |t| appsync.tag(&ns_arn, t).await,
                    async |k| appsync.untag(&ns_arn, k).await,
                )
                .await?;
            }
            if let Some(arn) = arn {
                ns_outputs.push(NamespaceOutputs {
                    name: ns.name.clone(),
                    arn,
                    // Publishers and subscribers put the epoch in every channel of this namespace.
                    epoch_seconds: ns.epoch_seconds,
                });
            }
        }
        for l in &live_ns {
            if !ev.namespaces.iter().any(|n| n.name == l.spec.name) {
                let id = api_id.clone().unwrap_or_default();
                let name = l.spec.name.clone();
                self.converge(
                    "namespace",
                    &l.spec.name,
                    Some(&l.spec),
                    None,
                    async |_| Ok(()),
                    async |_| Ok(()),
                    async || appsync.delete_namespace(&id, &name).await,
                )
                .await?;
            }
        }

        let api_key = match &ev.auth.api_key {
            Some(k) => {
                self.api_key(api_id.as_deref(), &ev.name, k.expires_in_days)
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

    /// groupcast's API key on `api_id`: an unexpired one if there is one, else a new one. Keys
    /// groupcast made that have expired are deleted, so they never pile up toward AppSync's 50
    /// keys per API (https://docs.aws.amazon.com/general/latest/gr/appsync.html); a replaced key
    /// that is still valid is left to serve its last hours, and goes on a later apply.
    async fn api_key(
        &mut self,
        api_id: Option<&str>,
        api_name: &str,
        days: u32,
    ) -> anyhow::Result<Option<String>> {
        let appsync = self.cloud.appsync();
        let now = now_secs();
        let ours: Vec<ApiKey> = match api_id {
            Some(id) => appsync
                .list_api_keys(id)
                .await?
                .into_iter()
                .filter(|k| k.description.as_deref() == Some(API_KEY_DESCRIPTION))
                .collect(),
            None => Vec::new(),
        };
        // Keep using a key with more than a day left; replace it when it is about to expire.
        let current = ours
            .iter()
            .filter(|k| k.expires > now + 86_400)
            .max_by_key(|k| k.expires)
            .cloned();
        let mut key = current.as_ref().map(|k| k.id.clone());
        if current.is_none() {
            self.record(
                Action::Create,
                "api-key",
                format!("{api_name} (expires in {days} days)"),
                None,
            );
            if let (Some(id), true) = (api_id, self.applying()) {
                // AppSync rounds expiry down to the hour; add an hour so the key lasts the full days.
                let slack = if days < 365 { 3_600 } else { 0 };
                let expires = now + i64::from(days) * 86_400 + slack;
                key = Some(
                    appsync
                        .create_api_key(id, API_KEY_DESCRIPTION, expires)
                        .await?
                        .id,
                );
            }
        }
        for old in ours.iter().filter(|k| k.expires <= now) {
            let name = format!(
                "{api_name} ({}…)",
                old.id.chars().take(8).collect::<String>()
            );
            let id = api_id.unwrap_or_default();
            self.converge(
                "api-key",
                &name,
                Some(&KeyState),
                None,
                async |_| Ok(()),
                async |_| Ok(()),
                async || appsync.delete_api_key(id, &old.id).await,
            )
            .await?;
        }
        Ok(key)
    }

    /// The GraphQL API, its schema, NONE data source, resolvers and API key.
    pub(crate) async fn graphql(&mut self) -> anyhow::Result<Option<GraphqlOutputs>> {
        let live_apis = self.graphql_apis().await?;
        let wanted = self.config.graphql.as_ref().map(|gq| gq.name.clone());
        let appsync = self.cloud.appsync();
        let api = self
            .settle("graphql-api", wanted.as_deref(), live_apis, async |id| {
                appsync.delete_graphql_api(id).await
            })
            .await?;
        let Some(gq) = self.config.graphql.clone() else {
            return Ok(None);
        };
        let desired = graphql_api_spec(self.config).expect("graphql configured");
        let schema = self
            .rendered
            .get("graphql/schema.graphql")
            .context("schema was not rendered")?
            .to_owned();
        let mut tags = self.config.resource_tags();
        let id = api.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let result = self
            .converge(
                "graphql-api",
                &gq.name,
                api.as_ref().map(|a| &a.spec),
                Some(&desired),
                async |d| appsync.create_graphql_api(&gq.name, d, &tags).await,
                async |d| appsync.update_graphql_api(&id, &gq.name, d).await,
                async || Ok(()),
            )
            .await?;
        // Keep the listed tags (the schema hash among them): an update response need not carry them.
        let api = match (api, result) {
            (Some(live), Some(updated)) => Some(GraphqlApi {
                tags: live.tags,
                ..updated
            }),
            (None, created) => created,
            (live, None) => live,
        };

        let hash = sha256_hex(&schema);
        let live_hash = api.as_ref().and_then(|a| a.tags.get(SCHEMA_TAG).cloned());
        if live_hash.as_deref() != Some(hash.as_str()) {
            let live_sdl = match &api {
                Some(a) => appsync.schema_sdl(&a.id).await?.unwrap_or_default(),
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
            if let (Some(a), true) = (&api, self.applying()) {
                appsync
                    .put_schema(&a.id, &schema)
                    .await
                    .with_context(|| format!("GraphQL schema of {}", gq.name))?;
            }
        }

        if live_hash.as_deref() == Some(hash.as_str()) {
            self.in_sync("graphql-schema", &gq.name);
        }

        let has_ds = match &api {
            Some(a) => appsync.has_data_source(&a.id, NONE_DATA_SOURCE).await?,
            None => false,
        };
        let none = DataSource;
        let id = api.as_ref().map(|a| a.id.clone());
        self.converge(
            "data-source",
            &format!("{NONE_DATA_SOURCE} (NONE)"),
            has_ds.then_some(&none),
            Some(&none),
            async |_| match &id {
                Some(id) => appsync.create_none_data_source(id, NONE_DATA_SOURCE).await,
                None => Ok(()),
            },
            async |_| Ok(()),
            async || Ok(()),
        )
        .await?;

        for (type_name, field) in crate::render::RESOLVERS {
            let get = |suffix: &str| {
                let path = crate::render::resolver_path(type_name, field, suffix);
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
            let live = match &id {
                Some(id) => appsync.get_resolver(id, type_name, field).await?,
                None => None,
            };
            let id = id.clone().unwrap_or_default();
            self.converge(
                "resolver",
                &format!("{type_name}.{field}"),
                live.as_ref(),
                Some(&spec),
                async |s| appsync.create_resolver(&id, s).await,
                async |s| appsync.update_resolver(&id, s).await,
                async || Ok(()),
            )
            .await?;
        }

        // Last: the schema hash is recorded only once schema, data source and resolvers are in.
        // A plan for an API still to be created shows this step too, as apply will make it.
        tags.insert(SCHEMA_TAG.to_owned(), hash);
        let live = match &api {
            Some(a) => Some((a.arn.clone(), a.tags.clone())),
            None if !self.applying() => Some((String::new(), self.config.resource_tags())),
            None => None,
        };
        if let Some((arn, live_tags)) = live {
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

    /// Deletes both APIs (everything in them goes with them).
    pub(super) async fn destroy_apis(&mut self) -> anyhow::Result<()> {
        let appsync = self.cloud.appsync();
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_regexes_are_anchored_so_they_match_whole_ids_only() {
        assert_eq!(full_match("^[a-z0-9]{26}$"), "^[a-z0-9]{26}$");
        assert_eq!(full_match("abc"), "^(?:abc)$");
        assert_eq!(full_match("^a|b$"), "^(?:^a|b$)$");
        assert_eq!(full_match("a|b"), "^(?:a|b)$");
        assert_eq!(full_match("^abc\\$"), "^(?:^abc\\$)$");
        assert_eq!(literal("groupcast"), "^groupcast$");
        assert_eq!(literal("app.example+1"), "^app\\.example\\+1$");
    }
}
