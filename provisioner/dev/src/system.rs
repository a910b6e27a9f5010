//! What the local stack serves: the rendered system as plain data. The provisioner builds it from
//! the config and the documents `provisioner render` writes (provisioner/src/commands/dev.rs);
//! tests build it by hand. Nothing here does I/O.

use std::collections::BTreeMap;

/// An AppSync auth mode, as the config and AppSync's APIs spell it
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/configure-event-api-auth.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthMode {
    /// `API_KEY`: the `x-api-key` header.
    ApiKey,
    /// `AWS_IAM`: a SigV4 signature.
    Iam,
    /// `AMAZON_COGNITO_USER_POOLS`: a user pool ID or access token in `Authorization`.
    Cognito,
    /// `OPENID_CONNECT`: an OIDC token in `Authorization`.
    Oidc,
    /// `AWS_LAMBDA`: any `Authorization` value, judged by the Lambda authorizer.
    Lambda,
}

impl AuthMode {
    /// AppSync's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "API_KEY",
            AuthMode::Iam => "AWS_IAM",
            AuthMode::Cognito => "AMAZON_COGNITO_USER_POOLS",
            AuthMode::Oidc => "OPENID_CONNECT",
            AuthMode::Lambda => "AWS_LAMBDA",
        }
    }

    /// The mode AppSync's name names, if any.
    pub fn parse(name: &str) -> Option<AuthMode> {
        [
            AuthMode::ApiKey,
            AuthMode::Iam,
            AuthMode::Cognito,
            AuthMode::Oidc,
            AuthMode::Lambda,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }
}

/// The whole rendered system.
#[derive(Debug, Clone, Default)]
pub struct System {
    /// `project.name`.
    pub project: String,
    /// `project.region`.
    pub region: String,
    /// `project.account_id`.
    pub account_id: String,
    /// Who may publish (IAM principals: an entry ending in `/` is a role's session-ARN prefix).
    pub publisher_principals: Vec<String>,
    /// The identity providers the APIs trust.
    pub identity: IdentitySettings,
    /// `[events]`, if configured.
    pub events: Option<EventsSystem>,
    /// `[graphql]`, if configured.
    pub graphql: Option<GraphqlSystem>,
    /// `[iot]`, if configured.
    pub iot: Option<IotSystem>,
}

/// The identity providers: the user pool the local token issuer stands in for, an OIDC
/// provider, the Lambda authorizer, the API keys.
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    /// The Cognito user pool id the tokens' `iss` names (`https://cognito-idp.{region}.amazonaws.com/{id}`
    /// on AWS; the local issuer's URL locally).
    pub user_pool_id: Option<String>,
    /// The user pool's region.
    pub user_pool_region: Option<String>,
    /// `app_id_client_regex`: the token's `aud`/`client_id` must match it.
    pub app_id_client_regex: Option<String>,
    /// OIDC: issuer, client id, groups claim.
    pub oidc: Option<OidcSettings>,
    /// The Lambda authorizer, if the config names one.
    pub lambda_authorizer: Option<LambdaAuthorizerSettings>,
    /// API keys accepted (the stack makes one when the config asks for API keys).
    pub api_keys: Vec<String>,
}

/// `[events.auth.oidc]`.
#[derive(Debug, Clone, Default)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: Option<String>,
    pub groups_claim: String,
}

/// `[events.auth.lambda]`: the authorizer binary the stack runs under its emulated Runtime API.
#[derive(Debug, Clone, Default)]
pub struct LambdaAuthorizerSettings {
    /// The configured function ARN (AppSync passes it nowhere; kept for logs and outputs).
    pub arn: String,
    /// The result TTL in seconds (the authorizer's `ttlOverride` wins).
    pub result_ttl_seconds: u64,
    /// Path of the authorizer binary to run, when found (`--authorizer-bin`, or target/).
    pub binary: Option<std::path::PathBuf>,
    /// `groups_source = "user-pool"`: the pool the authorizer reads the caller's current groups
    /// from (its `GROUPCAST_COGNITO_USER_POOL_ID`), answered by the stack's user directory when
    /// it is [`IdentitySettings::user_pool_id`]. `None` reads the token's groups claim.
    pub user_pool_id: Option<String>,
}

/// `[events]`: the Event API and its namespaces.
#[derive(Debug, Clone, Default)]
pub struct EventsSystem {
    /// The API's name.
    pub name: String,
    /// Modes a WebSocket connection may authenticate with.
    pub connection_auth_modes: Vec<AuthMode>,
    /// The channel namespaces.
    pub namespaces: Vec<Namespace>,
}

/// One channel namespace: its rendered handler and auth modes.
#[derive(Debug, Clone, Default)]
pub struct Namespace {
    /// The namespace's name (the channel's first segment).
    pub name: String,
    /// `events/{name}.js` as rendered: the APPSYNC_JS code of `onSubscribe` / `onPublish`.
    pub handler_js: String,
    /// Modes a publish may use.
    pub publish_auth_modes: Vec<AuthMode>,
    /// Modes a subscribe may use.
    pub subscribe_auth_modes: Vec<AuthMode>,
    /// `epoch_seconds`: the namespace's channels are time-sliced (`groupcast::epoch`; the rendered
    /// handler enforces it). Only reported in the outputs.
    pub epoch_seconds: Option<u64>,
}

/// `[graphql]`: the pubsub API's schema and resolver templates.
#[derive(Debug, Clone, Default)]
pub struct GraphqlSystem {
    /// The API's name.
    pub name: String,
    /// `graphql/schema.graphql`.
    pub schema: String,
    /// Resolver templates by file name as rendered (`Mutation.publish.request.vtl`, …).
    pub templates: BTreeMap<String, String>,
    /// The API's default auth mode plus additional ones (the schema's directives pick per field).
    pub auth_modes: Vec<AuthMode>,
    /// `graphql.groups_claim`.
    pub groups_claim: String,
}

/// `[iot]`: topics and the rendered group policies.
#[derive(Debug, Clone, Default)]
pub struct IotSystem {
    /// `iot.topic_prefix`.
    pub topic_prefix: String,
    /// Rendered policy document per policy name (`iot/{name}.json`).
    pub policies: BTreeMap<String, String>,
    /// Group name → policy name.
    pub group_policies: BTreeMap<String, String>,
    /// How devices are authorized.
    pub auth: IotAuth,
    /// Attachment mode: the iot-grant function (`{project}-iot-grant`) the stack runs, so
    /// `Publisher::revoke` reaches it through Lambda `Invoke` on the AWS port.
    pub grant_function: Option<LocalFunction>,
    /// DEV ONLY (`provisioner dev --iot-refresh-seconds`): the broker asks the custom authorizer
    /// again after min(its `refreshAfterInSeconds`, this), so a removal shows within seconds in
    /// a test. AWS never refreshes sooner than 300 s
    /// (https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html).
    pub refresh_cap: Option<std::time::Duration>,
}

/// A Lambda function the stack runs for Lambda `Invoke` on its AWS port
/// ([`crate::functions::start`]).
#[derive(Debug, Clone, Default)]
pub struct LocalFunction {
    /// The function name callers invoke, e.g. `acme-live-iot-grant`.
    pub name: String,
    /// The binary, when found; without it, `Invoke` answers `ResourceNotFoundException`.
    pub binary: Option<std::path::PathBuf>,
    /// Its `GROUPCAST_*` environment (what `provisioner apply` gives the deployed function, with
    /// the stack's pools). The AWS endpoint, credentials and region are added at start.
    pub env: BTreeMap<String, String>,
}

/// `iot.auth`.
#[derive(Debug, Clone, Default)]
pub enum IotAuth {
    /// Cognito identities with policies attached by iot-grant / `provisioner iot grant`.
    #[default]
    Attachment,
    /// The IoT custom authorizer Lambda (functions/iot-authorizer).
    CustomAuthorizer {
        /// Path of the iot-authorizer binary, when found.
        binary: Option<std::path::PathBuf>,
        /// `iot/authorizer-group-policy.json` as rendered: the group policy with placeholders the
        /// Lambda completes (its `GROUPCAST_IOT_POLICY`).
        policy: Option<String>,
    },
}
