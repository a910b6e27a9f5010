//! The AWS side: the SDK configuration (profiles, SSO, region, endpoint, retries) and the two small
//! traits, [`AppSync`] and [`Iot`], that every AWS call goes through. The types here are the
//! provisioner's own view of live resources, so reconciling logic never touches SDK types and
//! `PartialEq` on a spec tells "in sync" from "needs an update".

mod sdk;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub(crate) use sdk::{SdkAppSync, SdkIot};

use crate::cli::Global;
use crate::config::Config;

/// What an AWS call failure looks like to the reconciler.
pub(crate) type Result<T> = anyhow::Result<T>;

/// Loads the SDK configuration from the global options, the environment and profiles.
pub(crate) async fn sdk_config(
    global: &Global,
    config: &Config,
) -> anyhow::Result<aws_config::SdkConfig> {
    let region = global
        .region
        .clone()
        .unwrap_or_else(|| config.project.region.clone());
    if region != config.project.region {
        // Rendered ARNs and policies name project.region: deploying them elsewhere would be wrong.
        anyhow::bail!(
            "--region/AWS_REGION is {region} but project.region in {} is {}; they must match",
            global.config.display(),
            config.project.region
        );
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region));
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // IoT's policy APIs allow ~15 calls/s: retry throttling with backoff. AWS_MAX_ATTEMPTS and
    // AWS_RETRY_MODE (read by aws-config) still win, so tests can turn retries down.
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(8)
                .with_initial_backoff(Duration::from_millis(250)),
        );
    }
    Ok(loader.load().await)
}

/// One AppSync auth provider, as both the Event API and the GraphQL API describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderSpec {
    pub(crate) auth_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cognito: Option<CognitoSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) oidc: Option<OidcSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lambda: Option<LambdaSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CognitoSpec {
    pub(crate) user_pool_id: String,
    pub(crate) aws_region: String,
    pub(crate) app_id_client_regex: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OidcSpec {
    pub(crate) issuer: String,
    pub(crate) client_id: Option<String>,
    pub(crate) iat_ttl: i64,
    pub(crate) auth_ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LambdaSpec {
    pub(crate) authorizer_uri: String,
    pub(crate) ttl_seconds: i32,
    pub(crate) identity_validation_expression: Option<String>,
}

/// An Event API's `eventConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventConfigSpec {
    pub(crate) auth_providers: Vec<ProviderSpec>,
    pub(crate) connection_auth_modes: Vec<String>,
    pub(crate) default_publish_auth_modes: Vec<String>,
    pub(crate) default_subscribe_auth_modes: Vec<String>,
}

/// A live Event API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventApi {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) http_host: String,
    pub(crate) realtime_host: String,
    pub(crate) config: Option<EventConfigSpec>,
}

/// A channel namespace, desired or live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamespaceSpec {
    pub(crate) name: String,
    pub(crate) publish_auth_modes: Vec<String>,
    pub(crate) subscribe_auth_modes: Vec<String>,
    pub(crate) code: String,
}

/// A live channel namespace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Namespace {
    pub(crate) spec: NamespaceSpec,
    pub(crate) arn: String,
}

/// A live API key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiKey {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    /// Epoch seconds.
    pub(crate) expires: i64,
}

/// A GraphQL API's auth: the default type and the additional providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlAuthSpec {
    pub(crate) authentication_type: String,
    pub(crate) additional: Vec<ProviderSpec>,
}

/// A live GraphQL API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphqlApi {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) url: String,
    pub(crate) realtime_url: Option<String>,
    pub(crate) auth: GraphqlAuthSpec,
}

/// A unit resolver on the NONE data source, desired or live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResolverSpec {
    pub(crate) type_name: String,
    pub(crate) field_name: String,
    pub(crate) data_source: String,
    pub(crate) request: String,
    pub(crate) response: String,
}

/// A live IoT policy (its default version).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) document: String,
    pub(crate) default_version: String,
}

/// One version of an IoT policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyVersion {
    pub(crate) id: String,
    pub(crate) is_default: bool,
    /// Epoch seconds, for "oldest first"; `None` sorts by the numeric id.
    pub(crate) created: Option<f64>,
}

/// AppSync: Event APIs, namespaces, GraphQL APIs, schema, data sources, resolvers, keys, tags.
pub(crate) trait AppSync {
    async fn list_event_apis(&self) -> Result<Vec<EventApi>>;
    async fn get_event_api(&self, id: &str) -> Result<EventApi>;
    /// Tags of any AppSync resource (for list results that come without them).
    async fn tags_of(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    async fn create_event_api(
        &self,
        name: &str,
        config: &EventConfigSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<EventApi>;
    async fn update_event_api(
        &self,
        id: &str,
        name: &str,
        config: &EventConfigSpec,
    ) -> Result<EventApi>;
    async fn delete_event_api(&self, id: &str) -> Result<()>;
    async fn list_namespaces(&self, api_id: &str) -> Result<Vec<Namespace>>;
    async fn create_namespace(
        &self,
        api_id: &str,
        spec: &NamespaceSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<Namespace>;
    async fn update_namespace(&self, api_id: &str, spec: &NamespaceSpec) -> Result<Namespace>;
    async fn delete_namespace(&self, api_id: &str, name: &str) -> Result<()>;
    async fn list_api_keys(&self, api_id: &str) -> Result<Vec<ApiKey>>;
    async fn create_api_key(&self, api_id: &str, description: &str, expires: i64)
    -> Result<ApiKey>;
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()>;

    async fn list_graphql_apis(&self) -> Result<Vec<GraphqlApi>>;
    async fn create_graphql_api(
        &self,
        name: &str,
        auth: &GraphqlAuthSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<GraphqlApi>;
    async fn update_graphql_api(
        &self,
        id: &str,
        name: &str,
        auth: &GraphqlAuthSpec,
    ) -> Result<GraphqlApi>;
    async fn delete_graphql_api(&self, id: &str) -> Result<()>;
    /// Starts schema creation and waits for it; `Err` carries AppSync's details when it fails.
    async fn put_schema(&self, api_id: &str, sdl: &str) -> Result<()>;
    /// The live schema as SDL, for diffs (`None` when it cannot be read).
    async fn schema_sdl(&self, api_id: &str) -> Result<Option<String>>;
    async fn has_data_source(&self, api_id: &str, name: &str) -> Result<bool>;
    async fn create_none_data_source(&self, api_id: &str, name: &str) -> Result<()>;
    async fn get_resolver(
        &self,
        api_id: &str,
        type_name: &str,
        field: &str,
    ) -> Result<Option<ResolverSpec>>;
    async fn create_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()>;
    async fn update_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()>;
}

/// IoT Core: policies, their versions, tags and attachments.
pub(crate) trait Iot {
    async fn get_policy(&self, name: &str) -> Result<Option<Policy>>;
    async fn list_policy_names(&self) -> Result<Vec<String>>;
    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Policy>;
    async fn list_versions(&self, name: &str) -> Result<Vec<PolicyVersion>>;
    async fn create_version(&self, name: &str, document: &str) -> Result<()>;
    async fn delete_version(&self, name: &str, version: &str) -> Result<()>;
    async fn delete_policy(&self, name: &str) -> Result<()>;
    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()>;
    async fn targets(&self, name: &str) -> Result<Vec<String>>;
    async fn detach(&self, name: &str, target: &str) -> Result<()>;
    async fn data_endpoint(&self) -> Result<String>;
}
