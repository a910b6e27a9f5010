//! The AWS side: the options that build the SDK configuration (profiles, SSO, region, endpoint,
//! retries, the account check) and the small traits, [`AppSync`], [`Iot`], [`Iam`], [`Lambda`]
//! and [`EventBridge`], that every AWS call goes through (bundled as a [`Cloud`]). The types here are the
//! provisioner's own view of live resources, so reconciling logic never touches SDK types and
//! `PartialEq` on a spec tells "in sync" from "needs an update".

pub(crate) mod calls;
#[cfg(test)]
pub(crate) mod fake;
mod sdk;
mod sdk_events;
mod sdk_iam;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub(crate) use sdk::{SdkAppSync, SdkIot};
pub(crate) use sdk_events::SdkEvents;
pub(crate) use sdk_iam::{SdkIam, SdkLambda, SdkSts};

use crate::config::Config;

/// What an AWS call failure looks like to the reconciler.
pub(crate) type Result<T> = anyhow::Result<T>;

/// The AWS options every subcommand takes (flattened into the global options): they build the
/// SDK configuration, like cargo-lambda's `RemoteConfig`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsOptions {
    /// AWS region for API calls (default: the config's project.region).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub(crate) region: Option<String>,
    /// AWS profile (SSO, credential_process and static profiles work).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,
    /// Send every AWS call to this endpoint (local peers such as moto).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
}

impl AwsOptions {
    /// Loads the SDK configuration from these options, the environment and profiles.
    pub(crate) async fn sdk_config(
        &self,
        config: &Config,
    ) -> anyhow::Result<aws_config::SdkConfig> {
        let region = self
            .region
            .clone()
            .unwrap_or_else(|| config.project.region.clone());
        if region != config.project.region {
            // Rendered ARNs and policies name project.region: deploying them elsewhere would be wrong.
            anyhow::bail!(
                "--region/AWS_REGION is {region} but project.region in the config is {}; they must match",
                config.project.region
            );
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region));
        if let Some(profile) = &self.profile {
            check_profile(profile).await?;
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &self.endpoint_url {
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

    /// The SDK clients, once the caller's account is checked against `project.account_id`:
    /// rendered policies name that account, so deploying them into another one would be wrong.
    pub(crate) async fn connect(&self, config: &Config) -> anyhow::Result<Sdk> {
        let sdk = self.sdk_config(config).await?;
        let cloud = Sdk::new(&sdk);
        let account = cloud.sts.account_id().await?;
        if account != config.project.account_id {
            anyhow::bail!(
                "the credentials in use belong to account {account}, but project.account_id is {}: \
                 use credentials for {} (--profile) or fix the config",
                config.project.account_id,
                config.project.account_id
            );
        }
        Ok(cloud)
    }
}

/// A named profile must exist: aws-config would otherwise fall back to the default chain and
/// deploy with whatever credentials that finds.
async fn check_profile(name: &str) -> anyhow::Result<()> {
    use aws_types::os_shim_internal::{Env, Fs};
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| anyhow::anyhow!("--profile {name}: cannot read the AWS config files: {e}"))?;
    if set.get_profile(name).is_none() {
        let known: Vec<&str> = set.profiles().collect();
        anyhow::bail!(
            "--profile/AWS_PROFILE: no profile named {name:?} in the AWS config or credentials file \
             (profiles found: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(())
}

/// Every AWS service the reconciler talks to, one client each. Generic code takes a `Cloud`, so
/// tests pass the in-memory fake (`aws::fake`) and the binary the SDK ([`Sdk`]).
pub(crate) trait Cloud {
    type AppSync: AppSync;
    type Iot: Iot;
    type Iam: Iam;
    type Lambda: Lambda;
    type Events: EventBridge;
    fn appsync(&self) -> &Self::AppSync;
    fn iot(&self) -> &Self::Iot;
    fn iam(&self) -> &Self::Iam;
    fn lambda(&self) -> &Self::Lambda;
    fn events(&self) -> &Self::Events;
}

/// The AWS SDK clients.
#[derive(Debug, Clone)]
pub(crate) struct Sdk {
    pub(crate) appsync: SdkAppSync,
    pub(crate) iot: SdkIot,
    pub(crate) iam: SdkIam,
    pub(crate) lambda: SdkLambda,
    pub(crate) events: SdkEvents,
    pub(crate) sts: SdkSts,
}

impl Sdk {
    pub(crate) fn new(config: &aws_config::SdkConfig) -> Self {
        Sdk {
            appsync: SdkAppSync::new(config),
            iot: SdkIot::new(config),
            iam: SdkIam::new(config),
            lambda: SdkLambda::new(config),
            events: SdkEvents::new(config),
            sts: SdkSts::new(config),
        }
    }
}

impl Cloud for Sdk {
    type AppSync = SdkAppSync;
    type Iot = SdkIot;
    type Iam = SdkIam;
    type Lambda = SdkLambda;
    type Events = SdkEvents;
    fn appsync(&self) -> &SdkAppSync {
        &self.appsync
    }
    fn iot(&self) -> &SdkIot {
        &self.iot
    }
    fn iam(&self) -> &SdkIam {
        &self.iam
    }
    fn lambda(&self) -> &SdkLambda {
        &self.lambda
    }
    fn events(&self) -> &SdkEvents {
        &self.events
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_config: Option<LogConfigSpec>,
}

/// An API's CloudWatch logging: the level and the role AppSync writes logs with
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/monitoring.html,
/// https://docs.aws.amazon.com/appsync/latest/devguide/monitoring.html#cwl).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogConfigSpec {
    pub(crate) level: String,
    pub(crate) role_arn: String,
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
    pub(crate) tags: BTreeMap<String, String>,
}

/// A live API key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiKey {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    /// Epoch seconds.
    pub(crate) expires: i64,
}

/// A GraphQL API's settings groupcast manages: the default auth type, the additional providers
/// and logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlApiSpec {
    pub(crate) authentication_type: String,
    pub(crate) additional: Vec<ProviderSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_config: Option<LogConfigSpec>,
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
    pub(crate) spec: GraphqlApiSpec,
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
    async fn delete_api_key(&self, api_id: &str, key_id: &str) -> Result<()>;
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()>;

    async fn list_graphql_apis(&self) -> Result<Vec<GraphqlApi>>;
    async fn create_graphql_api(
        &self,
        name: &str,
        auth: &GraphqlApiSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<GraphqlApi>;
    async fn update_graphql_api(
        &self,
        id: &str,
        name: &str,
        auth: &GraphqlApiSpec,
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
    /// An IoT custom authorizer by name; `None` when there is none.
    async fn get_authorizer(&self, name: &str) -> Result<Option<Authorizer>>;
    /// `CreateAuthorizer` with `tags`; returns the authorizer's ARN.
    async fn create_authorizer(
        &self,
        name: &str,
        spec: &AuthorizerSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String>;
    /// `UpdateAuthorizer` (every field but `signingDisabled`, which IoT fixes at creation).
    async fn update_authorizer(&self, name: &str, spec: &AuthorizerSpec) -> Result<()>;
    /// Sets the authorizer `INACTIVE`, then `DeleteAuthorizer` (IoT refuses to delete an
    /// active one: https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteAuthorizer.html).
    async fn delete_authorizer(&self, name: &str) -> Result<()>;
}

/// The settings of an IoT custom authorizer groupcast manages (`iot/custom-authorizer.json`,
/// https://docs.aws.amazon.com/iot/latest/apireference/API_CreateAuthorizer.html).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthorizerSpec {
    pub(crate) authorizer_function_arn: String,
    pub(crate) token_key_name: String,
    pub(crate) signing_disabled: bool,
    pub(crate) status: String,
    pub(crate) enable_caching_for_http: bool,
}

/// A live IoT custom authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authorizer {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) spec: AuthorizerSpec,
}

/// A live IAM role.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) arn: String,
    /// The trust policy, as JSON text (decoded: IAM returns it URL-encoded).
    pub(crate) trust_policy: String,
    pub(crate) tags: BTreeMap<String, String>,
}

/// IAM: roles, their trust policies, inline policies and tags.
pub(crate) trait Iam {
    async fn get_role(&self, name: &str) -> Result<Option<Role>>;
    async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Role>;
    async fn update_trust_policy(&self, name: &str, trust_policy: &str) -> Result<()>;
    /// Deletes a role that has no inline policies left.
    async fn delete_role(&self, name: &str) -> Result<()>;
    async fn role_policy_names(&self, role: &str) -> Result<Vec<String>>;
    /// An inline policy's document as JSON text (decoded), `None` when the role has no such policy.
    async fn role_policy(&self, role: &str, policy: &str) -> Result<Option<String>>;
    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> Result<()>;
    async fn delete_role_policy(&self, role: &str, policy: &str) -> Result<()>;
    async fn tag_role(&self, role: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag_role(&self, role: &str, keys: &[String]) -> Result<()>;
}

/// One statement of a Lambda function's resource policy, as groupcast reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Permission {
    pub(crate) statement_id: String,
    pub(crate) principal: String,
    pub(crate) action: String,
    pub(crate) source_arn: Option<String>,
}

/// Lambda: the resource policy of a function (who may invoke it).
pub(crate) trait Lambda {
    /// The function's permissions; `None` when the function does not exist (yet).
    async fn permissions(&self, function: &str) -> Result<Option<Vec<Permission>>>;
    async fn add_permission(&self, function: &str, permission: &Permission) -> Result<()>;
    async fn remove_permission(&self, function: &str, statement_id: &str) -> Result<()>;
}

/// An EventBridge rule on the default bus with its targets, desired or live: what PutRule and
/// PutTargets set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleSpec {
    pub(crate) description: String,
    /// `ENABLED` or `DISABLED`.
    pub(crate) state: String,
    /// Compared as JSON (EventBridge may return it reformatted).
    pub(crate) event_pattern: serde_json::Value,
    pub(crate) targets: Vec<RuleTarget>,
}

/// One target of a rule, with its input transformer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleTarget {
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) input_paths: BTreeMap<String, String>,
    pub(crate) input_template: String,
}

/// A live EventBridge rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) spec: RuleSpec,
    pub(crate) tags: BTreeMap<String, String>,
}

/// EventBridge: rules on the default event bus, their targets and tags.
pub(crate) trait EventBridge {
    /// The rule with its targets and tags; `None` when there is no such rule.
    async fn get_rule(&self, name: &str) -> Result<Option<Rule>>;
    /// PutRule (with `tags` when it creates the rule), then PutTargets with `spec`'s targets,
    /// then RemoveTargets for any other target. Returns the rule's ARN.
    async fn put_rule(
        &self,
        name: &str,
        spec: &RuleSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String>;
    /// RemoveTargets (every target: a rule with targets cannot be deleted), then DeleteRule.
    async fn delete_rule(&self, name: &str) -> Result<()>;
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()>;
}
