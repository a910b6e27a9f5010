//! The config file: its schema (serde, unknown keys rejected), its validation rules, and errors
//! that name the file, the line and column, the field and the rule it broke.
//!
//! Parsing is two-step: serde builds the typed [`Config`] (syntax, types, unknown and missing
//! keys), then [`Config::validate`] checks every rule serde cannot express. Both kinds of error
//! carry a field path (`iot.groups[2]`); its line comes from toml's spanned document
//! ([`toml::de::DeTable`]), so validation code never handles spans itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use groupcast::limits::{
    AUTHORIZER_TTL_MAX_SECONDS, IOT_TOPIC_MAX_SLASHES, SUBSCRIPTION_MAX_GROUPS,
};
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

/// The tag groupcast puts on everything it creates; its value is `project.name`.
pub(crate) const PROJECT_TAG: &str = "groupcast:project";

/// A config file that could not be read, parsed or validated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {field}: {rule}", file.display())]
pub(crate) struct ConfigError {
    /// The config file.
    pub(crate) file: PathBuf,
    /// 1-based line of the offending key or value (or of its nearest enclosing table).
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) column: usize,
    /// Dotted path of the field, e.g. `iot.groups[2]`; `(file)` for whole-file problems.
    pub(crate) field: String,
    /// The rule, in words.
    pub(crate) rule: String,
}

/// An AppSync authorization mode, spelled as the AppSync API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum AuthMode {
    #[serde(rename = "API_KEY")]
    ApiKey,
    #[serde(rename = "AWS_IAM")]
    Iam,
    #[serde(rename = "AMAZON_COGNITO_USER_POOLS")]
    Cognito,
    #[serde(rename = "OPENID_CONNECT")]
    Oidc,
    #[serde(rename = "AWS_LAMBDA")]
    Lambda,
}

impl AuthMode {
    /// The name AppSync uses (`AWS_IAM`, …).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "API_KEY",
            AuthMode::Iam => "AWS_IAM",
            AuthMode::Cognito => "AMAZON_COGNITO_USER_POOLS",
            AuthMode::Oidc => "OPENID_CONNECT",
            AuthMode::Lambda => "AWS_LAMBDA",
        }
    }

    /// The config table that configures this mode's provider (`api_key`, `iam`, …).
    fn provider_key(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "api_key",
            AuthMode::Iam => "iam",
            AuthMode::Cognito => "cognito",
            AuthMode::Oidc => "oidc",
            AuthMode::Lambda => "lambda",
        }
    }

    /// The GraphQL schema directive that admits this mode.
    pub(crate) fn graphql_directive(self) -> &'static str {
        match self {
            AuthMode::ApiKey => "@aws_api_key",
            AuthMode::Iam => "@aws_iam",
            AuthMode::Cognito => "@aws_cognito_user_pools",
            AuthMode::Oidc => "@aws_oidc",
            AuthMode::Lambda => "@aws_lambda",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) project: Project,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) events: Option<Events>,
    pub(crate) graphql: Option<Graphql>,
    pub(crate) iot: Option<Iot>,
    #[serde(default)]
    pub(crate) publisher: Publisher,
    #[serde(default)]
    pub(crate) logging: Logging,
}

/// `[logging]`: how much the AppSync APIs log to CloudWatch, through the role
/// [`Config::appsync_logs_role_name`] (the handler's rejection reasons show from `ERROR` up).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Logging {
    #[serde(default)]
    pub(crate) level: LogLevel,
}

/// An AppSync log level. The Event API's `logLevel` and the GraphQL API's `fieldLogLevel` accept
/// the same five values (https://docs.aws.amazon.com/appsync/latest/APIReference/API_EventLogConfig.html,
/// https://docs.aws.amazon.com/appsync/latest/APIReference/API_LogConfig.html), so one level
/// serves both; serde rejects anything else with the list of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum LogLevel {
    #[serde(rename = "NONE")]
    None,
    #[default]
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "ALL")]
    All,
    #[serde(rename = "INFO")]
    Info,
    #[serde(rename = "DEBUG")]
    Debug,
}

impl LogLevel {
    /// The name AppSync uses (`ERROR`, …): `logLevel` / `fieldLogLevel` in apply's `logConfig`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::None => "NONE",
            LogLevel::Error => "ERROR",
            LogLevel::All => "ALL",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
}

/// The Lambda functions groupcast ships. Each function and its execution role share one
/// name, `{project}-{suffix}` ([`Config::function_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Function {
    Publisher,
    Authorizer,
    IotGrant,
    /// The IoT custom authorizer (`iot.auth = "custom-authorizer"`).
    IotAuthorizer,
}

impl Function {
    /// Every function, in a fixed order.
    pub(crate) const ALL: [Function; 4] = [
        Function::Publisher,
        Function::Authorizer,
        Function::IotGrant,
        Function::IotAuthorizer,
    ];

    /// The binary's name in the workspace, also the function and role name suffix.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Function::Publisher => "publisher",
            Function::Authorizer => "authorizer",
            Function::IotGrant => "iot-grant",
            Function::IotAuthorizer => "iot-authorizer",
        }
    }
}

/// `[publisher]`: the trusted publisher. Only these IAM principals may publish (the Events
/// `onPublish` handler and the GraphQL publish resolver check the caller's ARN against
/// [`Config::publisher_principals`]); every other IAM caller, an end user's identity-pool
/// session included, is refused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Publisher {
    /// More principals that may publish besides the publisher Lambda's execution role
    /// ([`Config::publisher_role_name`]): IAM role ARNs (any session of the role) or IAM user ARNs.
    #[serde(default)]
    pub(crate) extra_principal_arns: Vec<String>,
    /// The publisher uses the `events-ws` transport (a WebSocket), so its role also gets
    /// `appsync:EventConnect` on the Event API. Publishing over HTTP needs no connect permission.
    #[serde(default)]
    pub(crate) websocket: bool,
}

/// `[project]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Project {
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) account_id: String,
}

impl Project {
    /// The ARN partition of the project's region: `aws-cn` in China, `aws-us-gov` in GovCloud,
    /// `aws` elsewhere (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
    pub(crate) fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }
}

/// The ARN partition of `region` (see [`Project::partition`]).
pub(crate) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `[events]`: the AppSync Event API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Events {
    pub(crate) name: String,
    pub(crate) connection_auth_modes: Vec<AuthMode>,
    pub(crate) default_publish_auth_modes: Vec<AuthMode>,
    pub(crate) default_subscribe_auth_modes: Vec<AuthMode>,
    #[serde(default)]
    pub(crate) auth: AuthProviders,
    #[serde(default)]
    pub(crate) namespaces: Vec<Namespace>,
}

/// `[[events.namespaces]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    /// `onSubscribe` requires the second channel segment to be one of the caller's groups.
    #[serde(default = "yes")]
    pub(crate) group_check: bool,
    /// Only `AWS_IAM` (the trusted publisher) may publish.
    #[serde(default = "yes")]
    pub(crate) publish_iam_only: bool,
    /// Time-sliced channels (`/{name}/{group segment}/t{N}/{topic}`, [`groupcast::epoch`]): the
    /// epoch's length in seconds. `None`: channels without an epoch, as before.
    #[serde(default)]
    pub(crate) epoch_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

/// `[events.auth]` / `[graphql.auth]`: one optional table per provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthProviders {
    pub(crate) cognito: Option<CognitoAuth>,
    pub(crate) iam: Option<IamAuth>,
    pub(crate) api_key: Option<ApiKeyAuth>,
    pub(crate) lambda: Option<LambdaAuth>,
    pub(crate) oidc: Option<OidcAuth>,
}

impl AuthProviders {
    fn has(&self, mode: AuthMode) -> bool {
        match mode {
            AuthMode::ApiKey => self.api_key.is_some(),
            AuthMode::Iam => self.iam.is_some(),
            AuthMode::Cognito => self.cognito.is_some(),
            AuthMode::Oidc => self.oidc.is_some(),
            AuthMode::Lambda => self.lambda.is_some(),
        }
    }

    /// The configured providers' modes, in a fixed order.
    pub(crate) fn modes(&self) -> Vec<AuthMode> {
        [
            AuthMode::Cognito,
            AuthMode::Iam,
            AuthMode::ApiKey,
            AuthMode::Lambda,
            AuthMode::Oidc,
        ]
        .into_iter()
        .filter(|m| self.has(*m))
        .collect()
    }
}

/// A Cognito user pool provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CognitoAuth {
    pub(crate) user_pool_id: String,
    /// Defaults to `project.region`.
    pub(crate) region: Option<String>,
    pub(crate) app_id_client_regex: Option<String>,
}

/// IAM: nothing to configure, the table's presence enables it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IamAuth {}

/// API key provider; apply creates one key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyAuth {
    #[serde(default = "default_key_days")]
    pub(crate) expires_in_days: u32,
}

fn default_key_days() -> u32 {
    7
}

/// Lambda authorizer provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LambdaAuth {
    pub(crate) authorizer_arn: String,
    /// AppSync's cache lifetime for an allow (`authorizerResultTtlInSeconds`) and the authorizer's
    /// `ttlOverride` cap, 0-3600 (API_LambdaAuthorizerConfig).
    #[serde(default = "default_ttl")]
    pub(crate) result_ttl_seconds: u64,
    pub(crate) identity_validation_expression: Option<String>,
    /// Where the authorizer reads the caller's groups (issue 14).
    #[serde(default)]
    pub(crate) groups_source: GroupsSource,
    /// The user pool for `groups_source = "user-pool"`; defaults to the configured Cognito pool.
    pub(crate) user_pool_id: Option<String>,
}

/// `groups_source` of a Lambda authorizer table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum GroupsSource {
    /// The token's groups claim: a removal takes effect when the token expires.
    #[default]
    Token,
    /// The user's current groups in the user pool (`AdminListGroupsForUser`), at every request
    /// AppSync has not cached: a token minted before a removal opens nothing new.
    UserPool,
}

fn default_ttl() -> u64 {
    300
}

/// OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcAuth {
    pub(crate) issuer: String,
    pub(crate) client_id: Option<String>,
    /// Milliseconds a token is valid after it was issued (0 = not checked).
    pub(crate) iat_ttl_ms: Option<i64>,
    /// Milliseconds a token is valid after authentication (0 = not checked).
    pub(crate) auth_ttl_ms: Option<i64>,
    /// The claim that holds the caller's groups.
    #[serde(default = "default_oidc_claim")]
    pub(crate) groups_claim: String,
}

fn default_oidc_claim() -> String {
    "groups".to_owned()
}

/// `[graphql]`: the AppSync GraphQL pubsub API. Publishing is always `AWS_IAM`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Graphql {
    pub(crate) name: String,
    pub(crate) subscriber_auth_modes: Vec<AuthMode>,
    #[serde(default = "default_groups_claim")]
    pub(crate) groups_claim: String,
    #[serde(default = "default_max_groups")]
    pub(crate) max_groups_per_subscription: usize,
    #[serde(default)]
    pub(crate) auth: AuthProviders,
}

fn default_groups_claim() -> String {
    "cognito:groups".to_owned()
}

fn default_max_groups() -> usize {
    SUBSCRIPTION_MAX_GROUPS
}

/// `[iot]`: IoT Core topics and one policy per group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Iot {
    pub(crate) topic_prefix: String,
    pub(crate) policy_name_pattern: Option<String>,
    pub(crate) groups: Vec<String>,
    /// The Cognito identity pool whose identities get the group policies (`REGION:UUID`). The
    /// iot-grant role may resolve identities (`cognito-identity:GetId`) in this pool only.
    pub(crate) identity_pool_id: Option<String>,
    /// The identity pool's authenticated role (the user's): apply puts the IAM half of IoT's
    /// two-policy rule on it (`iam/identity-pool-iot-policy.json`).
    pub(crate) authenticated_role_name: Option<String>,
    /// How subscribers get their IoT rights (default: identity-pool attachments).
    #[serde(default)]
    pub(crate) auth: IotAuth,
    /// `refreshAfterInSeconds` of the custom authorizer's answers: how long a removed member
    /// keeps a group at most (300-86400, AWS's range; default 300).
    pub(crate) refresh_after_seconds: Option<u64>,
}

/// `iot.auth`: how a subscriber's IoT connection gets its group rights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum IotAuth {
    /// Cognito identity pool: one IoT policy per group, attached to the identity by iot-grant.
    #[default]
    IdentityPool,
    /// An IoT custom authorizer (the iot-authorizer Lambda) answers each connection with its
    /// user's current groups' rights: no identity pool, no attachments.
    CustomAuthorizer,
}

/// `refreshAfterInSeconds` when `iot.refresh_after_seconds` is not set.
pub(crate) const DEFAULT_IOT_REFRESH_SECS: u64 = 300;
/// The token header / query parameter the custom authorizer reads (its `tokenKeyName`), the
/// iot-authorizer's default `GROUPCAST_IOT_TOKEN_KEY`.
pub(crate) const IOT_TOKEN_KEY_NAME: &str = "groupcast-token";

impl Iot {
    /// Whether subscribers connect through the custom authorizer.
    pub(crate) fn custom_authorizer(&self) -> bool {
        self.auth == IotAuth::CustomAuthorizer
    }

    /// `refreshAfterInSeconds` for the custom authorizer.
    pub(crate) fn refresh_secs(&self) -> u64 {
        self.refresh_after_seconds
            .unwrap_or(DEFAULT_IOT_REFRESH_SECS)
    }

    /// The pattern, defaulting to `{project}-{group}`.
    pub(crate) fn pattern(&self, project: &str) -> String {
        self.policy_name_pattern
            .clone()
            .unwrap_or_else(|| format!("{project}-{{group}}"))
    }
}

/// One configured IoT group, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IotGroup {
    pub(crate) group: String,
    pub(crate) level: String,
    pub(crate) policy_name: String,
}

impl Config {
    /// Reads, parses and validates `path`.
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 1,
            column: 1,
            field: "(file)".to_owned(),
            rule: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates `text`, naming `path` in errors.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let locate = |span: Option<Range<usize>>, field: Option<String>, rule: String| {
            // Recoverable parsing: a syntax error still gets the path of the key it sits in.
            let (doc, _) = DeTable::parse_recoverable(text);
            let start = span.as_ref().map_or(0, |s| s.start);
            let field = field
                .or_else(|| path_at(doc.get_ref(), start))
                .unwrap_or_else(|| "(file)".to_owned());
            let (line, column) = line_col(text, start);
            ConfigError {
                file: path.to_owned(),
                line,
                column,
                field,
                rule,
            }
        };
        let config: Config = toml::from_str(text).map_err(|e| {
            let rule = e.message().trim_end().to_owned();
            locate(e.span(), None, rule)
        })?;
        config.validate().map_err(|(field, rule)| {
            let span = DeTable::parse(text)
                .ok()
                .map(|d| span_of(d.get_ref(), &field));
            locate(span, Some(field), rule)
        })?;
        Ok(config)
    }

    /// The IoT groups with their topic levels and policy names (valid after [`Config::validate`]).
    pub(crate) fn iot_groups(&self) -> Vec<IotGroup> {
        let Some(iot) = &self.iot else {
            return Vec::new();
        };
        let pattern = iot.pattern(&self.project.name);
        iot.groups
            .iter()
            .filter_map(|g| {
                let level = groupcast::group_segment(g).ok()?;
                let policy_name = pattern.replace("{group}", &level);
                Some(IotGroup {
                    group: g.clone(),
                    level,
                    policy_name,
                })
            })
            .collect()
    }

    /// The name of one of groupcast's Lambda functions and of its execution role, which `apply`
    /// creates: `{project}-publisher`, `{project}-authorizer`, `{project}-iot-grant`.
    pub(crate) fn function_name(&self, f: Function) -> String {
        format!("{}-{}", self.project.name, f.suffix())
    }

    /// The Cognito user pool the APIs authenticate with (`[events.auth.cognito]`, else
    /// `[graphql.auth.cognito]`): where iot-grant reads users' current groups, and whose
    /// group-change calls the IoT sync rule watches. `(user pool id, its region)`.
    pub(crate) fn cognito_user_pool(&self) -> Option<(String, String)> {
        self.cognito_pool().map(|c| {
            let region = c
                .region
                .clone()
                .unwrap_or_else(|| self.project.region.clone());
            (c.user_pool_id.clone(), region)
        })
    }

    /// The EventBridge rule that runs iot-grant's sync on Cognito group changes:
    /// `{project}-iot-sync`, with `[iot]` and a Cognito user pool in `project.region` (a rule sees
    /// its own region's events only).
    pub(crate) fn iot_sync_rule_name(&self) -> Option<String> {
        let (_, region) = self.cognito_user_pool()?;
        // In custom-authorizer mode there is no iot-grant and nothing attached to sync.
        (self.iot.is_some() && !self.iot_custom_authorizer() && region == self.project.region)
            .then(|| format!("{}-iot-sync", self.project.name))
    }

    /// The ARN of one of groupcast's functions (deployed as docs/lambdas.md says, under
    /// [`Config::function_name`]).
    pub(crate) fn function_arn(&self, f: Function) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{}",
            self.project.partition(),
            self.project.region,
            self.project.account_id,
            self.function_name(f)
        )
    }

    /// The IoT custom authorizer's name (`iot.auth = "custom-authorizer"`): the function's name,
    /// `{project}-iot-authorizer`.
    pub(crate) fn iot_authorizer_name(&self) -> String {
        self.function_name(Function::IotAuthorizer)
    }

    /// The IoT custom authorizer's ARN (known before it exists: IoT names it by its name).
    pub(crate) fn iot_authorizer_arn(&self) -> String {
        format!(
            "arn:{}:iot:{}:{}:authorizer/{}",
            self.project.partition(),
            self.project.region,
            self.project.account_id,
            self.iot_authorizer_name()
        )
    }

    /// The Cognito user pool an API authenticates with (Events first, then GraphQL): where the
    /// IoT custom authorizer reads users' current groups.
    pub(crate) fn cognito_pool(&self) -> Option<&CognitoAuth> {
        self.events
            .as_ref()
            .and_then(|e| e.auth.cognito.as_ref())
            .or_else(|| self.graphql.as_ref().and_then(|g| g.auth.cognito.as_ref()))
    }

    /// Whether `[iot]` uses the custom authorizer.
    pub(crate) fn iot_custom_authorizer(&self) -> bool {
        self.iot.as_ref().is_some_and(Iot::custom_authorizer)
    }

    /// The publisher Lambda's execution role, which `apply` creates: `{project}-publisher`.
    pub(crate) fn publisher_role_name(&self) -> String {
        self.function_name(Function::Publisher)
    }

    /// The role AppSync assumes to write both APIs' logs to CloudWatch: `{project}-appsync-logs`.
    pub(crate) fn appsync_logs_role_name(&self) -> String {
        format!("{}-appsync-logs", self.project.name)
    }

    /// Whether an API authorizes callers with a Lambda authorizer (`[events.auth.lambda]` or
    /// `[graphql.auth.lambda]`): then the authorizer function and its role are deployed.
    pub(crate) fn uses_lambda_auth(&self) -> bool {
        self.authorizer_arns().next().is_some()
    }

    /// The configured Lambda authorizer ARNs, Event API first, without repeats.
    pub(crate) fn authorizer_arns(&self) -> impl Iterator<Item = &str> {
        let events = self.events.as_ref().and_then(|e| e.auth.lambda.as_ref());
        let graphql = self.graphql.as_ref().and_then(|g| g.auth.lambda.as_ref());
        let events_arn = events.map(|l| l.authorizer_arn.as_str());
        let graphql_arn = graphql
            .map(|l| l.authorizer_arn.as_str())
            .filter(|a| Some(*a) != events_arn);
        events_arn.into_iter().chain(graphql_arn)
    }

    /// Who may publish, as the templates test it against the caller's ARN
    /// (`ctx.identity.userArn` in Events handlers, `$ctx.identity.userArn` in VTL): an entry
    /// ending in `/` is the prefix of a role's assumed-role session ARNs
    /// (`arn:aws:sts::ACCOUNT:assumed-role/NAME/`, any session name), any other entry an IAM user
    /// ARN matched exactly. The publisher role always comes first, then
    /// `publisher.extra_principal_arns` (valid after [`Config::validate`]).
    ///
    /// An assumed-role ARN names the role without its path
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns),
    /// so a role ARN `arn:aws:iam::1:role/ci/pub` becomes `arn:aws:sts::1:assumed-role/pub/`.
    pub(crate) fn publisher_principals(&self) -> Vec<String> {
        let p = self.project.partition();
        let account = &self.project.account_id;
        let mut out = vec![format!(
            "arn:{p}:sts::{account}:assumed-role/{}/",
            self.publisher_role_name()
        )];
        for arn in &self.publisher.extra_principal_arns {
            if let Some(parsed) = parse_principal_arn(arn) {
                out.push(match parsed.kind {
                    "role" => format!(
                        "arn:{}:sts::{}:assumed-role/{}/",
                        parsed.partition, parsed.account, parsed.name
                    ),
                    _ => arn.clone(),
                });
            }
        }
        out
    }

    /// The AppSync log level of both APIs (`[logging] level`), as AppSync spells it.
    pub(crate) fn appsync_log_level(&self) -> &str {
        self.logging.level.as_str()
    }

    /// Every role name `apply` may have created for this project, configured or not: what
    /// `destroy` and the cleanup of roles the config no longer needs look for.
    pub(crate) fn all_role_names(&self) -> Vec<String> {
        [
            "publisher",
            "authorizer",
            "iot-grant",
            "iot-authorizer",
            "appsync-logs",
        ]
        .iter()
        .map(|r| format!("{}-{r}", self.project.name))
        .collect()
    }

    /// The ARN of one of the project's IAM roles.
    pub(crate) fn role_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:role/{name}",
            self.project.partition(),
            self.project.account_id
        )
    }

    /// The inline policy groupcast puts on the identity pool's authenticated role.
    pub(crate) fn identity_pool_policy_name(&self) -> String {
        format!("groupcast-{}-iot", self.project.name)
    }

    /// Every tag groupcast puts on a resource: the configured ones plus [`PROJECT_TAG`].
    pub(crate) fn resource_tags(&self) -> BTreeMap<String, String> {
        let mut tags = self.tags.clone();
        tags.insert(PROJECT_TAG.to_owned(), self.project.name.clone());
        tags
    }

    /// Checks every rule serde cannot express. `Err((field path, rule))` for the first broken one.
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        let p = &self.project;
        check(
            "project.name",
            is_name(&p.name, 1, 32, |c| c.is_ascii_alphanumeric() || c == '-'),
            "must be 1-32 characters of A-Z, a-z, 0-9 and -",
        )?;
        check(
            "project.region",
            is_region(&p.region),
            "must be an AWS region name such as us-east-1",
        )?;
        check(
            "project.account_id",
            p.account_id.len() == 12 && p.account_id.bytes().all(|b| b.is_ascii_digit()),
            "must be 12 digits",
        )?;
        for (k, v) in &self.tags {
            let field = format!("tags.{}", path_key(k));
            check(
                &field,
                !k.is_empty() && k.chars().count() <= 128 && k.chars().all(is_tag_key_char),
                "a tag key is 1-128 characters of A-Z, a-z, 0-9, space and + - = . _ : / \
                 (what AppSync, IoT and IAM all accept)",
            )?;
            check(
                &field,
                v.chars().count() <= 256 && v.chars().all(|c| is_tag_key_char(c) || c == '@'),
                "a tag value is at most 256 characters of A-Z, a-z, 0-9, space and + - = . _ : / @ \
                 (what AppSync, IoT and IAM all accept)",
            )?;
            check(
                &field,
                !k.starts_with("aws:") && !k.starts_with("groupcast:"),
                "tag keys starting with aws: or groupcast: are reserved (groupcast adds groupcast:project itself)",
            )?;
        }
        check(
            "publisher.websocket",
            !self.publisher.websocket || self.events.is_some(),
            "websocket = true is the events-ws transport: it needs [events]",
        )?;
        for (i, arn) in self.publisher.extra_principal_arns.iter().enumerate() {
            check(
                &format!("publisher.extra_principal_arns[{i}]"),
                parse_principal_arn(arn).is_some(),
                "must be an IAM role or user ARN (arn:aws:iam::ACCOUNT:role/NAME or arn:aws:iam::ACCOUNT:user/NAME)",
            )?;
        }
        if let Some(ev) = &self.events {
            self.validate_events(ev)?;
        }
        if let Some(gq) = &self.graphql {
            self.validate_graphql(gq)?;
        }
        if let Some(iot) = &self.iot {
            self.validate_iot(iot)?;
        }
        check(
            "(file)",
            self.events.is_some() || self.graphql.is_some() || self.iot.is_some(),
            "configure at least one of [events], [graphql], [iot]",
        )
    }

    fn validate_events(&self, ev: &Events) -> Result<(), (String, String)> {
        check(
            "events.name",
            is_name(&ev.name, 1, 50, |c| {
                c.is_ascii_alphanumeric() || "_- ".contains(c)
            }),
            "must be 1-50 characters of A-Z, a-z, 0-9, _, - and space",
        )?;
        validate_providers("events.auth", &ev.auth, &self.project.region)?;
        for (key, modes) in [
            ("connection_auth_modes", &ev.connection_auth_modes),
            ("default_publish_auth_modes", &ev.default_publish_auth_modes),
            (
                "default_subscribe_auth_modes",
                &ev.default_subscribe_auth_modes,
            ),
        ] {
            validate_modes(&format!("events.{key}"), modes, &ev.auth, "events.auth")?;
        }
        let mut seen = BTreeSet::new();
        for (i, ns) in ev.namespaces.iter().enumerate() {
            let field = format!("events.namespaces[{i}].name");
            check(
                &field,
                groupcast::is_valid_segment(&ns.name),
                "a namespace name is 1-50 characters of A-Z, a-z, 0-9 and -, starting and ending with a letter or digit",
            )?;
            check(
                &field,
                seen.insert(ns.name.as_str()),
                "namespace names must be unique",
            )?;
            if let Some(other) = ev.namespaces[..i]
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(&ns.name))
            {
                return Err((
                    field,
                    format!(
                        "namespace {:?} differs from namespace {:?} only by case: their handlers \
                         (events/{}.js) would overwrite each other on a case-insensitive disk",
                        ns.name, other.name, ns.name
                    ),
                ));
            }
            if ns.publish_iam_only {
                check(
                    &format!("events.namespaces[{i}].publish_iam_only"),
                    ev.auth.iam.is_some(),
                    "publish_iam_only needs the AWS_IAM provider: add [events.auth.iam]",
                )?;
            }
            if let Some(seconds) = ns.epoch_seconds {
                let field = format!("events.namespaces[{i}].epoch_seconds");
                groupcast::epoch::check_period(seconds)
                    .map_err(|e| (field.clone(), e.to_string()))?;
                // Epochs bound how long an open subscription outlives a removal only because
                // onSubscribe re-checks the caller's groups at each re-subscription; without
                // group_check there is no onSubscribe to re-check anything.
                check(
                    &field,
                    ns.group_check,
                    "epoch_seconds needs group_check = true: epochs make subscribers re-subscribe so \
                     that onSubscribe re-checks their groups, and without group_check there is no check",
                )?;
            }
        }
        check(
            "events.namespaces",
            !ev.namespaces.is_empty(),
            "configure at least one [[events.namespaces]]",
        )
    }

    fn validate_graphql(&self, gq: &Graphql) -> Result<(), (String, String)> {
        check(
            "graphql.name",
            is_name(&gq.name, 1, 65, |c| {
                c.is_ascii_alphanumeric() || "_- ".contains(c)
            }),
            "must be 1-65 characters of A-Z, a-z, 0-9, _, - and space",
        )?;
        validate_providers("graphql.auth", &gq.auth, &self.project.region)?;
        validate_modes(
            "graphql.subscriber_auth_modes",
            &gq.subscriber_auth_modes,
            &gq.auth,
            "graphql.auth",
        )?;
        check(
            "graphql.groups_claim",
            is_claim(&gq.groups_claim),
            "must match ^[A-Za-z0-9:._-]{1,128}$",
        )?;
        check(
            "graphql.max_groups_per_subscription",
            (1..=SUBSCRIPTION_MAX_GROUPS).contains(&gq.max_groups_per_subscription),
            &format!(
                "must be 1-{SUBSCRIPTION_MAX_GROUPS} (AppSync allows 10 filters of 20 containsAny values)"
            ),
        )
    }

    fn validate_iot(&self, iot: &Iot) -> Result<(), (String, String)> {
        let prefix = &iot.topic_prefix;
        check(
            "iot.topic_prefix",
            !prefix.is_empty()
                && prefix.split('/').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                }),
            "must be one or more /-separated levels of A-Z, a-z, 0-9, _, - and . (no wildcards, no $, no empty level)",
        )?;
        // A topic is {prefix}/{group}/{topic...}: leave room for the group and at least one level.
        let max_prefix_slashes = IOT_TOPIC_MAX_SLASHES - 2;
        check(
            "iot.topic_prefix",
            prefix.matches('/').count() <= max_prefix_slashes,
            &format!(
                "may hold at most {max_prefix_slashes} slashes (an IoT topic has at most {IOT_TOPIC_MAX_SLASHES})"
            ),
        )?;
        let pattern = iot.pattern(&self.project.name);
        check(
            "iot.policy_name_pattern",
            pattern.matches("{group}").count() == 1,
            "must contain {group} exactly once",
        )?;
        let fixed = pattern.replace("{group}", "");
        check(
            "iot.policy_name_pattern",
            fixed.chars().all(is_policy_char),
            "outside {group}, a policy name holds only letters, digits, _ and +=,.@-",
        )?;
        check(
            "iot.groups",
            !iot.groups.is_empty(),
            "list at least one group",
        )?;
        let mut seen = BTreeSet::new();
        for (i, g) in iot.groups.iter().enumerate() {
            let field = format!("iot.groups[{i}]");
            let level = groupcast::group_segment(g).map_err(|e| (field.clone(), e.to_string()))?;
            check(&field, seen.insert(g.as_str()), "groups must be unique")?;
            let name = pattern.replace("{group}", &level);
            // Policy names are case sensitive in IoT, but their documents (iot/NAME.json) would
            // overwrite each other on a case-insensitive disk (macOS, Windows): refuse the pair.
            if let Some((other, other_name)) = iot.groups[..i].iter().find_map(|o| {
                let o_name = pattern.replace("{group}", &groupcast::group_segment(o).ok()?);
                o_name.eq_ignore_ascii_case(&name).then_some((o, o_name))
            }) {
                return Err((
                    field,
                    format!(
                        "group {g:?} (policy {name}) and group {other:?} (policy {other_name}) \
                         differ only by case: their documents iot/{name}.json would overwrite each \
                         other on a case-insensitive disk; rename one of the groups"
                    ),
                ));
            }
            check(
                &field,
                (1..=128).contains(&name.chars().count()),
                &format!("its policy name {name:?} is longer than 128 characters"),
            )?;
        }
        if let Some(id) = &iot.identity_pool_id {
            let (region, uuid) = id.split_once(':').unwrap_or(("", ""));
            check(
                "iot.identity_pool_id",
                is_region(region) && is_uuid(uuid),
                "must be an identity pool id REGION:UUID such as us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc",
            )?;
            check(
                "iot.identity_pool_id",
                partition_of(region) == self.project.partition(),
                &format!(
                    "the identity pool's region must be in project.region's partition ({})",
                    self.project.partition()
                ),
            )?;
        }
        if iot.custom_authorizer() {
            // No identity pool in this mode: its keys would configure nothing.
            for (field, set) in [
                ("iot.identity_pool_id", iot.identity_pool_id.is_some()),
                (
                    "iot.authenticated_role_name",
                    iot.authenticated_role_name.is_some(),
                ),
            ] {
                check(
                    field,
                    !set,
                    "only with iot.auth = \"identity-pool\": the custom authorizer uses no identity pool",
                )?;
            }
        } else {
            check(
                "iot.refresh_after_seconds",
                iot.refresh_after_seconds.is_none(),
                "only with iot.auth = \"custom-authorizer\" (attached policies are not refreshed)",
            )?;
        }
        // https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html
        // (refreshAfterInSeconds: 300 to 86,400).
        check(
            "iot.refresh_after_seconds",
            (300..=86_400).contains(&iot.refresh_secs()),
            "must be 300-86400 seconds (AWS IoT's range for refreshAfterInSeconds)",
        )?;
        if let Some(role) = &iot.authenticated_role_name {
            // https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html (RoleName).
            check(
                "iot.authenticated_role_name",
                is_name(role, 1, 64, is_policy_char),
                "must be an IAM role name: 1-64 characters of letters, digits and _+=,.@- (the name, not the ARN)",
            )?;
        }
        self.validate_authorizer_groups_source()
    }

    /// `groups_source = "user-pool"` needs a user pool (its own `user_pool_id`, else the
    /// configured Cognito pool), and the one authorizer function serving both APIs cannot read
    /// groups two ways.
    fn validate_authorizer_groups_source(&self) -> Result<(), (String, String)> {
        let tables = [
            (
                "events.auth.lambda",
                self.events.as_ref().and_then(|e| e.auth.lambda.as_ref()),
            ),
            (
                "graphql.auth.lambda",
                self.graphql.as_ref().and_then(|g| g.auth.lambda.as_ref()),
            ),
        ];
        let mut seen: Option<(&str, &LambdaAuth, Option<String>)> = None;
        for (at, l) in tables {
            let Some(l) = l else { continue };
            let pool = self.lambda_user_pool(l);
            if let Some(id) = &l.user_pool_id {
                check(
                    &format!("{at}.user_pool_id"),
                    groupcast_auth::membership::UserPoolId::parse(id).is_ok(),
                    "must be a user pool id such as us-east-1_AbCdEf123",
                )?;
                check(
                    &format!("{at}.user_pool_id"),
                    l.groups_source == GroupsSource::UserPool,
                    "is read only with groups_source = \"user-pool\"",
                )?;
            }
            if l.groups_source == GroupsSource::UserPool {
                check(
                    &format!("{at}.groups_source"),
                    pool.is_some(),
                    "\"user-pool\" needs a user pool: set user_pool_id here, or configure \
                     [events.auth.cognito] or [graphql.auth.cognito]",
                )?;
            }
            if let Some((first_at, first, first_pool)) = &seen {
                check(
                    &format!("{at}.groups_source"),
                    first.authorizer_arn != l.authorizer_arn
                        || (first.groups_source == l.groups_source && *first_pool == pool),
                    &format!(
                        "the same authorizer function as {first_at} reads groups one way: use the \
                         same groups_source and user pool in both tables"
                    ),
                )?;
            }
            seen = Some((at, l, pool));
        }
        Ok(())
    }

    /// The user pool a Lambda authorizer table reads current groups from: none with
    /// `groups_source = "token"`; else its `user_pool_id`, or the configured Cognito pool.
    fn lambda_user_pool(&self, l: &LambdaAuth) -> Option<String> {
        (l.groups_source == GroupsSource::UserPool).then(|| {
            l.user_pool_id
                .clone()
                .or_else(|| self.cognito_user_pool().map(|(id, _)| id))
        })?
    }

    /// The user pool groupcast's Lambda authorizer reads current groups from
    /// (`GROUPCAST_COGNITO_USER_POOL_ID`), Event API table first: `None` reads the token.
    pub(crate) fn authorizer_user_pool(&self) -> Option<String> {
        self.events
            .as_ref()
            .and_then(|e| e.auth.lambda.as_ref())
            .or_else(|| self.graphql.as_ref().and_then(|g| g.auth.lambda.as_ref()))
            .and_then(|l| self.lambda_user_pool(l))
    }
}

/// A lowercase UUID, `8-4-4-4-12` hex digits (the form Cognito uses in identity pool ids).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn validate_providers(
    at: &str,
    auth: &AuthProviders,
    region: &str,
) -> Result<(), (String, String)> {
    if let Some(c) = &auth.cognito {
        let (region, id) = c.user_pool_id.split_once('_').unwrap_or(("", ""));
        check(
            &format!("{at}.cognito.user_pool_id"),
            is_region(region) && !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "must be a user pool id such as us-east-1_AbCdEf123",
        )?;
        if let Some(r) = &c.region {
            check(
                &format!("{at}.cognito.region"),
                is_region(r),
                "must be an AWS region name such as us-east-1",
            )?;
        }
    }
    if let Some(k) = &auth.api_key {
        check(
            &format!("{at}.api_key.expires_in_days"),
            (1..=365).contains(&k.expires_in_days),
            "must be 1-365 (an API key lasts at least 1 day and at most 365)",
        )?;
    }
    if let Some(l) = &auth.lambda {
        let field = format!("{at}.lambda.authorizer_arn");
        let parsed = parse_lambda_arn(&l.authorizer_arn);
        check(
            &field,
            parsed.is_some(),
            "must be a Lambda function ARN (arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME, \
             PARTITION one of aws, aws-cn, aws-us-gov)",
        )?;
        let partition = partition_of(region);
        check(
            &field,
            parsed.is_some_and(|a| a.partition == partition),
            &format!(
                "must be in the project region's partition: arn:{partition}:lambda:… \
                 (project.region is {region})"
            ),
        )?;
        check(
            &format!("{at}.lambda.result_ttl_seconds"),
            l.result_ttl_seconds <= AUTHORIZER_TTL_MAX_SECONDS,
            &format!("must be 0-{AUTHORIZER_TTL_MAX_SECONDS} seconds"),
        )?;
    }
    if let Some(o) = &auth.oidc {
        check(
            &format!("{at}.oidc.issuer"),
            o.issuer.starts_with("https://") && o.issuer.len() > "https://".len(),
            "must be an https:// URL",
        )?;
        check(
            &format!("{at}.oidc.client_id"),
            o.client_id.as_deref().is_some_and(|c| !c.trim().is_empty()),
            "is required: without it AppSync accepts tokens the issuer minted for any of its clients \
             (https://docs.aws.amazon.com/appsync/latest/APIReference/API_OpenIDConnectConfig.html)",
        )?;
        check(
            &format!("{at}.oidc.groups_claim"),
            is_claim(&o.groups_claim),
            "must match ^[A-Za-z0-9:._-]{1,128}$",
        )?;
        for (key, v) in [("iat_ttl_ms", o.iat_ttl_ms), ("auth_ttl_ms", o.auth_ttl_ms)] {
            if let Some(v) = v {
                check(
                    &format!("{at}.oidc.{key}"),
                    v >= 0,
                    "must be 0 or more milliseconds",
                )?;
            }
        }
    }
    Ok(())
}

fn validate_modes(
    field: &str,
    modes: &[AuthMode],
    auth: &AuthProviders,
    auth_at: &str,
) -> Result<(), (String, String)> {
    check(field, !modes.is_empty(), "list at least one auth mode")?;
    let mut seen = BTreeSet::new();
    for (i, m) in modes.iter().enumerate() {
        let f = format!("{field}[{i}]");
        check(&f, seen.insert(*m), "auth modes must be unique")?;
        check(
            &f,
            auth.has(*m),
            &format!(
                "{m} needs its provider: add [{auth_at}.{}]",
                m.provider_key()
            ),
        )?;
    }
    Ok(())
}

/// A Lambda function ARN, split: `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LambdaArn<'a> {
    pub(crate) partition: &'a str,
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
    pub(crate) name: &'a str,
}

/// Splits a Lambda function ARN; `None` for anything else. The partition must be a real one
/// (`aws`, `aws-cn`, `aws-us-gov`); names are `[A-Za-z0-9_-]{1,64}` and a qualifier (version or
/// alias) `[A-Za-z0-9$_-]{1,128}`
/// (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html#API_GetFunction_RequestSyntax).
pub(crate) fn parse_lambda_arn(arn: &str) -> Option<LambdaArn<'_>> {
    let parts: Vec<&str> = arn.split(':').collect();
    let (partition, region, account, name, qualifier) = match parts[..] {
        ["arn", p, "lambda", r, a, "function", n] => (p, r, a, n, None),
        ["arn", p, "lambda", r, a, "function", n, q] => (p, r, a, n, Some(q)),
        _ => return None,
    };
    let ok = matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && is_region(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && is_name(name, 1, 64, |c| {
            c.is_ascii_alphanumeric() || "_-".contains(c)
        })
        && qualifier.is_none_or(|q| {
            is_name(q, 1, 128, |c| {
                c.is_ascii_alphanumeric() || "$_-".contains(c)
            })
        });
    ok.then_some(LambdaArn {
        partition,
        region,
        account,
        name,
    })
}

/// An IAM role or user ARN, split: `arn:PARTITION:iam::ACCOUNT:(role|user)/[PATH/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalArn<'a> {
    pub(crate) partition: &'a str,
    pub(crate) account: &'a str,
    /// `role` or `user`.
    pub(crate) kind: &'a str,
    /// The name, without the path.
    pub(crate) name: &'a str,
}

/// Splits an IAM role or user ARN; `None` for anything else (names and paths use IAM's
/// `[\w+=,.@-]` alphabet, https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html).
pub(crate) fn parse_principal_arn(arn: &str) -> Option<PrincipalArn<'_>> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let (kind, path_name) = resource.split_once('/')?;
    let name = path_name.rsplit('/').next()?;
    let ok = matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && matches!(kind, "role" | "user")
        && (1..=64).contains(&name.len())
        && path_name
            .split('/')
            .all(|part| !part.is_empty() && part.chars().all(is_policy_char));
    ok.then_some(PrincipalArn {
        partition,
        account,
        kind,
        name,
    })
}

fn check(field: &str, ok: bool, rule: &str) -> Result<(), (String, String)> {
    if ok {
        Ok(())
    } else {
        Err((field.to_owned(), rule.to_owned()))
    }
}

fn is_name(s: &str, min: usize, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    (min..=max).contains(&s.chars().count()) && s.chars().all(allowed)
}

/// `^[A-Za-z0-9:._-]{1,128}$`: safe inside a single-quoted VTL string and a JSON key.
pub(crate) fn is_claim(s: &str) -> bool {
    is_name(s, 1, 128, |c| {
        c.is_ascii_alphanumeric() || ":._-".contains(c)
    })
}

/// The tag key characters AppSync (`^(?!aws:)[ a-zA-Z+-=._:/]+$`,
/// https://docs.aws.amazon.com/appsync/latest/APIReference/API_TagResource.html), IoT and IAM
/// (`[\p{L}\p{Z}\p{N}_.:/=+\-@]`, https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html)
/// all accept; values also take `@`.
fn is_tag_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " +-=._:/".contains(c)
}

/// `[\w+=,.@-]`, the IoT policy name alphabet.
fn is_policy_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Region names: lowercase words joined by `-`, ending in a number (`us-east-1`, `us-gov-west-1`).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// One step of a field path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A key as one step of a field path: as written, or in double quotes (`"` and `\` escaped by a
/// backslash) when it is empty or holds `.`, `[`, `]` or `"`, so that every path names exactly one
/// key (`events."a.b"`, not `events.a.b`, which reads as two). [`parse_path`] reads it back.
fn path_key(k: &str) -> String {
    if !k.is_empty() && !k.contains(['.', '[', ']', '"']) {
        return k.to_owned();
    }
    let mut out = String::from('"');
    for c in k.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn parse_path(field: &str) -> Vec<Step> {
    // Split at the dots outside quoted keys ([`path_key`]).
    let mut parts = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in field.chars() {
        if c == '.' && !quoted {
            parts.push(String::new());
            continue;
        }
        if c == '"' && !escaped {
            quoted = !quoted;
        }
        escaped = quoted && !escaped && c == '\\';
        if let Some(part) = parts.last_mut() {
            part.push(c);
        }
    }
    let mut steps = Vec::new();
    for part in &parts {
        let (key, rest) = match part.strip_prefix('"') {
            Some(q) => {
                let (mut key, mut chars) = (String::new(), q.char_indices());
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => key.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => key.push(c),
                    }
                }
                (key, q[end..].trim_start_matches('['))
            }
            None => part
                .split_once('[')
                .map_or((part.clone(), ""), |(k, r)| (k.to_owned(), r)),
        };
        steps.push(Step::Key(key));
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                steps.push(Step::Index(i));
            }
        }
    }
    steps
}

/// The span of `field` in the document, or of its nearest existing ancestor.
fn span_of(doc: &DeTable<'_>, field: &str) -> Range<usize> {
    let steps = parse_path(field);
    let mut best = 0..0;
    let mut table = doc;
    let mut value: Option<&DeValue<'_>> = None;
    for step in steps {
        let next = match (step, value) {
            (Step::Key(k), None) => {
                table
                    .iter()
                    .find(|(key, _)| key.get_ref() == &k)
                    .map(|(key, v)| {
                        // Point at the key: that is what the user reads as "the field".
                        best = key.span();
                        v
                    })
            }
            (Step::Key(k), Some(DeValue::Table(t))) => t
                .iter()
                .find(|(key, _)| key.get_ref() == &k)
                .map(|(key, v)| {
                    best = key.span();
                    v
                }),
            (Step::Index(i), Some(DeValue::Array(a))) => a.get(i).inspect(|v| best = v.span()),
            _ => None,
        };
        match next {
            Some(v) => {
                value = Some(v.get_ref());
                if let DeValue::Table(t) = v.get_ref() {
                    table = t;
                }
            }
            None => break,
        }
    }
    best
}

/// The dotted path of the deepest key or value whose span holds `offset`. Searches the whole
/// document: a table declared by a `[header]` does not span its keys, so containment of parents
/// cannot guide the search.
fn path_at(doc: &DeTable<'_>, offset: usize) -> Option<String> {
    fn in_table(t: &DeTable<'_>, offset: usize) -> Option<String> {
        for (k, v) in t.iter() {
            if k.span().contains(&offset) {
                return Some(path_key(k.get_ref()));
            }
            if let Some(rest) = in_value(v.get_ref(), offset) {
                let sep = if rest.starts_with('[') { "" } else { "." };
                return Some(format!("{}{sep}{rest}", path_key(k.get_ref())));
            }
            if v.span().contains(&offset) {
                return Some(path_key(k.get_ref()));
            }
        }
        None
    }
    fn in_value(v: &DeValue<'_>, offset: usize) -> Option<String> {
        match v {
            DeValue::Table(t) => in_table(t, offset),
            DeValue::Array(a) => {
                a.iter()
                    .enumerate()
                    .find_map(|(i, e)| match in_value(e.get_ref(), offset) {
                        Some(rest) if rest.starts_with('[') => Some(format!("[{i}]{rest}")),
                        Some(rest) => Some(format!("[{i}].{rest}")),
                        None => e.span().contains(&offset).then(|| format!("[{i}]")),
                    })
            }
            _ => None,
        }
    }
    in_table(doc, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/groupcast.toml");

    fn err(text: &str) -> ConfigError {
        Config::parse(Path::new("g.toml"), text).unwrap_err()
    }

    #[test]
    fn the_bundled_example_is_valid() {
        let c = Config::parse(Path::new("examples/groupcast.toml"), EXAMPLE).unwrap();
        assert_eq!(c.project.name, "acme-live");
        let ns = &c.events.as_ref().unwrap().namespaces;
        assert!(ns.iter().all(|n| n.group_check && n.publish_iam_only));
        assert_eq!(c.iot_groups()[2].policy_name, "acme-live-x--Team-5fB");
    }

    #[test]
    fn an_unmappable_iot_group_names_its_index_line_and_the_rule() {
        let text = EXAMPLE.replace(
            r#""editors"]"#,
            &format!(r#""editors", "{}"]"#, "é".repeat(20)),
        );
        let e = err(&text);
        assert_eq!(e.field, "iot.groups[4]");
        assert_eq!(
            e.line,
            text.lines()
                .position(|l| l.starts_with("groups ="))
                .unwrap()
                + 1
        );
        assert!(e.rule.contains("encoded form is 123 characters"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let text = EXAMPLE
            .replace("group_check = true", "group_chek = true")
            .replace("# group_chek", "group_chek");
        let e = err(&text);
        assert_eq!(e.field, "events.namespaces[0].group_chek");
        assert!(e.rule.contains("unknown field `group_chek`"), "{e}");
    }

    #[test]
    fn a_mode_without_its_provider_is_rejected() {
        let text = EXAMPLE.replace("[events.auth.lambda]", "[events.auth.lambdax]");
        assert!(err(&text).rule.contains("unknown field `lambdax`"));
        let text = EXAMPLE.replace(
            "[events.auth.lambda]                # the function docs/lambdas.md deploys: {project}-authorizer\nauthorizer_arn = \"arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer\"\nresult_ttl_seconds = 300\n",
            "",
        );
        let e = err(&text);
        assert_eq!(e.field, "events.connection_auth_modes[1]");
        assert_eq!(
            e.rule,
            "AWS_LAMBDA needs its provider: add [events.auth.lambda]"
        );
        assert_eq!(e.line, 16);
    }

    #[test]
    fn limits_come_from_the_library() {
        let text = EXAMPLE.replace(
            "max_groups_per_subscription = 50",
            "max_groups_per_subscription = 201",
        );
        let e = err(&text);
        assert_eq!(e.field, "graphql.max_groups_per_subscription");
        assert!(e.rule.starts_with("must be 1-200"));
        let text = EXAMPLE.replace("result_ttl_seconds = 300", "result_ttl_seconds = 3601");
        assert_eq!(err(&text).field, "events.auth.lambda.result_ttl_seconds");
    }

    #[test]
    fn groups_source_user_pool_needs_a_pool_and_one_function_reads_groups_one_way() {
        let on = |extra: &str| {
            EXAMPLE.replace(
                "result_ttl_seconds = 300\n",
                &format!("result_ttl_seconds = 300\n{extra}"),
            )
        };
        // The configured Cognito pool is the default.
        let c = Config::parse(Path::new("g.toml"), &on("groups_source = \"user-pool\"\n")).unwrap();
        assert_eq!(
            c.authorizer_user_pool().as_deref(),
            Some("us-east-1_AbCdEf123")
        );
        // Its own pool wins.
        let c = Config::parse(
            Path::new("g.toml"),
            &on("groups_source = \"user-pool\"\nuser_pool_id = \"eu-west-1_Other9\"\n"),
        )
        .unwrap();
        assert_eq!(
            c.authorizer_user_pool().as_deref(),
            Some("eu-west-1_Other9")
        );
        // The default reads the token.
        let c = Config::parse(Path::new("g.toml"), EXAMPLE).unwrap();
        assert_eq!(c.authorizer_user_pool(), None);

        let e = err(&on("groups_source = \"ldap\"\n"));
        assert_eq!(e.field, "events.auth.lambda.groups_source");
        assert!(e.rule.contains("unknown variant `ldap`"), "{e}");
        let e = err(&on(
            "groups_source = \"user-pool\"\nuser_pool_id = \"not a pool\"\n",
        ));
        assert_eq!(e.field, "events.auth.lambda.user_pool_id");
        let e = err(&on("user_pool_id = \"us-east-1_AbCdEf123\"\n"));
        assert_eq!(e.field, "events.auth.lambda.user_pool_id");
        assert!(e.rule.contains("groups_source"), "{e}");

        // No pool anywhere: the rule names where to put one.
        let no_cognito = on("groups_source = \"user-pool\"\n")
            .replace("[events.auth.cognito]\nuser_pool_id = \"us-east-1_AbCdEf123\"\nregion = \"us-east-1\"\napp_id_client_regex = \"^[a-z0-9]{26}$\"\n", "")
            .replace("\"AMAZON_COGNITO_USER_POOLS\", ", "")
            .replace("[graphql.auth.cognito]\nuser_pool_id = \"us-east-1_AbCdEf123\"\nregion = \"us-east-1\"\n", "[graphql.auth.iam]\n")
            .replace("subscriber_auth_modes = [\"AMAZON_COGNITO_USER_POOLS\"]", "subscriber_auth_modes = [\"AWS_IAM\"]");
        let e = err(&no_cognito);
        assert_eq!(e.field, "events.auth.lambda.groups_source", "{e}");
        assert!(e.rule.contains("user_pool_id"), "{e}");

        // One function for both APIs: the GraphQL table cannot read groups another way.
        let both = on("groups_source = \"user-pool\"\n").replace(
            "[graphql.auth.cognito]",
            "[graphql.auth.lambda]\nauthorizer_arn = \"arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer\"\n\n[graphql.auth.cognito]",
        );
        let e = err(&both);
        assert_eq!(e.field, "graphql.auth.lambda.groups_source", "{e}");
    }

    #[test]
    fn an_authorizer_arn_outside_a_real_partition_is_rejected_with_the_rule() {
        let field = "events.auth.lambda.authorizer_arn";
        for bad in [
            "arn:aws-xx:lambda:us-east-1:123456789012:function:acme-live-authorizer",
            "arn:awsx:lambda:us-east-1:123456789012:function:acme-live-authorizer",
            "arn:aws:lambda:us-east-1:123456789012:layer:acme-live-authorizer",
            "arn:aws:lambda:us-east-1:1234:function:acme-live-authorizer",
            "arn:aws:lambda:us-east-1:123456789012:function:a/b",
        ] {
            let e = err(&EXAMPLE.replace(
                "arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer",
                bad,
            ));
            assert_eq!(e.field, field, "{bad}");
            assert!(
                e.rule.contains("PARTITION one of aws, aws-cn, aws-us-gov"),
                "{e}"
            );
        }
        // A real partition, but not the project region's.
        let e = err(&EXAMPLE.replace(
            "arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:acme-live-authorizer",
        ));
        assert_eq!(e.field, field);
        assert_eq!(
            e.rule,
            "must be in the project region's partition: arn:aws:lambda:… (project.region is us-east-1)"
        );
        // A qualified ARN (version or alias) is a function ARN too.
        let ok = EXAMPLE.replace(
            "function:acme-live-authorizer\"",
            "function:acme-live-authorizer:live\"",
        );
        assert_ne!(ok, EXAMPLE);
        Config::parse(Path::new("g.toml"), &ok).unwrap();
    }

    #[test]
    fn the_new_iot_keys_are_validated_with_field_and_rule() {
        let pool = "us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc";
        for bad in [
            "0f6d3c2a-1b2c-4d5e-8f90-123456789abc",
            "us-east-1:*",
            "us-east-1:0F6D3C2A-1B2C-4D5E-8F90-123456789ABC",
            "useast:0f6d3c2a-1b2c-4d5e-8f90-123456789abc",
        ] {
            let e = err(&EXAMPLE.replace(pool, bad));
            assert_eq!(e.field, "iot.identity_pool_id", "{bad}");
            assert!(
                e.rule
                    .starts_with("must be an identity pool id REGION:UUID"),
                "{e}"
            );
        }
        let e = err(&EXAMPLE.replace(pool, "cn-north-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc"));
        assert_eq!(e.field, "iot.identity_pool_id");
        assert!(e.rule.contains("partition (aws)"), "{e}");
        for bad in [
            "arn:aws:iam::123456789012:role/x",
            "",
            "a b",
            &"r".repeat(65),
        ] {
            let e = err(&EXAMPLE.replace(
                "# authenticated_role_name = \"acme-live-identity-auth\"",
                &format!("authenticated_role_name = {bad:?}"),
            ));
            assert_eq!(e.field, "iot.authenticated_role_name", "{bad}");
            assert!(e.rule.starts_with("must be an IAM role name"), "{e}");
        }
    }

    #[test]
    fn the_log_level_is_one_appsync_accepts_and_defaults_to_error() {
        let c = Config::parse(Path::new("g.toml"), EXAMPLE).unwrap();
        assert_eq!(c.logging.level, LogLevel::Error);
        let without = EXAMPLE.replace("[logging]\nlevel = \"ERROR\"", "");
        assert_ne!(without, EXAMPLE);
        let c = Config::parse(Path::new("g.toml"), &without).unwrap();
        assert_eq!(c.logging.level.as_str(), "ERROR");
        for level in ["NONE", "ERROR", "ALL", "INFO", "DEBUG"] {
            let text = EXAMPLE.replace("level = \"ERROR\"", &format!("level = \"{level}\""));
            let c = Config::parse(Path::new("g.toml"), &text).unwrap();
            assert_eq!(c.logging.level.as_str(), level);
        }
        let e = err(&EXAMPLE.replace("level = \"ERROR\"", "level = \"WARN\""));
        assert_eq!(e.field, "logging.level");
        assert!(e.rule.contains("unknown variant `WARN`"), "{e}");
        assert!(
            e.rule.contains("`NONE`, `ERROR`, `ALL`, `INFO`, `DEBUG`"),
            "{e}"
        );
    }

    #[test]
    fn a_websocket_publisher_needs_the_event_api() {
        let start = EXAMPLE.find("[events]").unwrap();
        let end = EXAMPLE.find("[graphql]").unwrap();
        let no_events = format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..])
            .replace("# websocket = false", "websocket = true");
        let e = err(&no_events);
        assert_eq!(e.field, "publisher.websocket");
        assert_eq!(
            e.rule,
            "websocket = true is the events-ws transport: it needs [events]"
        );
        let c = Config::parse(
            Path::new("g.toml"),
            &EXAMPLE.replace("# websocket = false", "websocket = true"),
        )
        .unwrap();
        assert!(c.publisher.websocket);
    }

    #[test]
    fn functions_and_their_roles_share_one_name_each() {
        let c = Config::parse(Path::new("g.toml"), EXAMPLE).unwrap();
        let names: Vec<String> = Function::ALL.iter().map(|f| c.function_name(*f)).collect();
        assert_eq!(
            names,
            [
                "acme-live-publisher",
                "acme-live-authorizer",
                "acme-live-iot-grant",
                "acme-live-iot-authorizer"
            ]
        );
        assert_eq!(c.publisher_role_name(), names[0]);
        assert_eq!(c.appsync_logs_role_name(), "acme-live-appsync-logs");
        assert_eq!(
            c.authorizer_arns().collect::<Vec<_>>(),
            ["arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer"]
        );
    }

    #[test]
    fn paths_parse_into_keys_and_indexes() {
        assert_eq!(
            parse_path("iot.groups[2]"),
            vec![
                Step::Key("iot".into()),
                Step::Key("groups".into()),
                Step::Index(2)
            ]
        );
    }

    /// The example with `from` replaced by `to`, parsed; the error as `field: rule`.
    fn example_with(from: &str, to: &str) -> Result<Config, String> {
        let text = include_str!("../../examples/groupcast.toml");
        assert!(text.contains(from), "the example has no {from:?}");
        Config::parse(Path::new("x.toml"), &text.replacen(from, to, 1))
            .map_err(|e| format!("{}: {}", e.field, e.rule))
    }

    #[test]
    fn tags_aws_services_reject_are_refused_at_load_naming_the_key() {
        let e = example_with("team = \"platform\"", "team = \"R&D\"").unwrap_err();
        assert!(
            e.starts_with("tags.team: a tag value is at most 256 characters of"),
            "{e}"
        );
        let e = example_with("team = \"platform\"", "\"t#am\" = \"x\"").unwrap_err();
        assert!(
            e.starts_with("tags.t#am: a tag key is 1-128 characters of"),
            "{e}"
        );
        example_with("team = \"platform\"", "\"team:a/b\" = \"x@y.z +1\"").unwrap();
    }

    #[test]
    fn an_oidc_provider_without_client_id_is_refused() {
        let oidc = "[events.auth.oidc]\nissuer = \"https://login.example.com\"\n";
        let e = example_with(
            "[events.auth.iam]\n",
            &format!("[events.auth.iam]\n\n{oidc}"),
        )
        .unwrap_err();
        assert!(
            e.starts_with("events.auth.oidc.client_id: is required"),
            "{e}"
        );
        example_with(
            "[events.auth.iam]\n",
            &format!("[events.auth.iam]\n\n{oidc}client_id = \"groupcast\"\n"),
        )
        .unwrap();
    }

    #[test]
    fn groups_whose_policy_files_differ_only_by_case_are_refused_naming_both() {
        let e = example_with("\"editors\"]", "\"editors\", \"Admins\"]").unwrap_err();
        assert!(e.starts_with("iot.groups[4]: group \"Admins\" (policy acme-live-Admins) and group \"admins\" (policy acme-live-admins) differ only by case"), "{e}");
    }

    #[test]
    fn namespaces_that_differ_only_by_case_are_refused_naming_both() {
        let e = example_with("name = \"jobs\"", "name = \"Live\"").unwrap_err();
        assert!(
            e.starts_with("events.namespaces[1].name: namespace \"Live\" differs from namespace \"live\" only by case"),
            "{e}"
        );
    }

    #[test]
    fn a_namespace_without_epoch_seconds_has_no_epochs() {
        // The example: `live` has none, `jobs` has 300 s epochs.
        let c = example_with("name = \"live\"", "name = \"live\"").unwrap();
        let ns = &c.events.as_ref().unwrap().namespaces;
        assert_eq!(ns[0].epoch_seconds, None);
        assert_eq!(ns[1].epoch_seconds, Some(300));
    }

    #[test]
    fn epoch_seconds_within_the_limits_is_kept() {
        for p in [
            groupcast::limits::EPOCH_SECONDS_MIN,
            300,
            groupcast::limits::EPOCH_SECONDS_MAX,
        ] {
            let c = example_with(
                "name = \"live\"",
                &format!("name = \"live\"\nepoch_seconds = {p}"),
            )
            .unwrap();
            assert_eq!(
                c.events.as_ref().unwrap().namespaces[0].epoch_seconds,
                Some(p)
            );
        }
    }

    #[test]
    fn epoch_seconds_outside_the_limits_is_refused_naming_the_field_and_the_rule() {
        for p in [0, 1, groupcast::limits::EPOCH_SECONDS_MAX + 1] {
            let e = example_with(
                "name = \"live\"",
                &format!("name = \"live\"\nepoch_seconds = {p}"),
            )
            .unwrap_err();
            assert!(
                e.starts_with(&format!("events.namespaces[0].epoch_seconds: epoch_seconds is {p}: an epoch lasts 2-86400 seconds")),
                "{e}"
            );
        }
    }

    #[test]
    fn a_negative_epoch_seconds_is_refused_naming_the_field() {
        let e = err(&EXAMPLE.replacen("name = \"live\"", "name = \"live\"\nepoch_seconds = -5", 1));
        assert_eq!(e.field, "events.namespaces[0].epoch_seconds");
    }

    #[test]
    fn epoch_seconds_on_a_namespace_without_group_check_is_refused() {
        let e = example_with(
            "name = \"live\"",
            "name = \"live\"\ngroup_check = false\nepoch_seconds = 300",
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "events.namespaces[0].epoch_seconds: epoch_seconds needs group_check = true"
            ),
            "{e}"
        );
    }

    #[test]
    fn publisher_principals_are_the_publisher_role_then_the_extra_ones_as_session_prefixes() {
        let config = example_with(
            "[publisher]",
            "[publisher]\nextra_principal_arns = [\"arn:aws:iam::123456789012:role/ci/deployer\", \"arn:aws:iam::123456789012:user/ops\"]",
        )
        .unwrap();
        assert_eq!(
            config.publisher_principals(),
            [
                "arn:aws:sts::123456789012:assumed-role/acme-live-publisher/",
                "arn:aws:sts::123456789012:assumed-role/deployer/",
                "arn:aws:iam::123456789012:user/ops",
            ]
        );
        let e = example_with(
            "[publisher]",
            "[publisher]\nextra_principal_arns = [\"arn:aws:sts::123456789012:assumed-role/x/y\"]",
        )
        .unwrap_err();
        assert!(
            e.starts_with("publisher.extra_principal_arns[0]: must be an IAM role or user ARN"),
            "{e}"
        );
        // The authorizer must move to the China partition with the project (its own rule).
        let text = include_str!("../../examples/groupcast.toml")
            .replacen("region = \"us-east-1\"", "region = \"cn-north-1\"", 1)
            .replace("arn:aws:lambda:us-east-1:", "arn:aws-cn:lambda:cn-north-1:")
            .replace(
                "identity_pool_id = \"us-east-1:",
                "identity_pool_id = \"cn-north-1:",
            );
        let cn = Config::parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!(cn.project.partition(), "aws-cn");
        assert!(cn.publisher_principals()[0].starts_with("arn:aws-cn:sts::"));
    }

    #[test]
    fn the_iot_auth_mode_and_refresh_are_validated_naming_the_field_and_rule() {
        let pool_id = "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"";
        let custom = |extra: &str| {
            EXAMPLE.replace(pool_id, &format!("auth = \"custom-authorizer\"\n{extra}"))
        };
        let c = Config::parse(Path::new("g.toml"), &custom("")).unwrap();
        let iot = c.iot.as_ref().unwrap();
        assert!(iot.custom_authorizer());
        assert_eq!(iot.refresh_secs(), 300);
        let c = Config::parse(
            Path::new("g.toml"),
            &custom("refresh_after_seconds = 86400"),
        )
        .unwrap();
        assert_eq!(c.iot.unwrap().refresh_secs(), 86400);
        let default = Config::parse(Path::new("g.toml"), EXAMPLE).unwrap();
        assert!(
            !default.iot.unwrap().custom_authorizer(),
            "identity-pool is the default"
        );
        for (text, field, rule) in [
            (
                custom("refresh_after_seconds = 299"),
                "iot.refresh_after_seconds",
                "300-86400",
            ),
            (
                custom("refresh_after_seconds = 86401"),
                "iot.refresh_after_seconds",
                "300-86400",
            ),
            (
                EXAMPLE.replace(pool_id, &format!("{pool_id}\nrefresh_after_seconds = 600")),
                "iot.refresh_after_seconds",
                "only with iot.auth = \"custom-authorizer\"",
            ),
            (
                custom(pool_id),
                "iot.identity_pool_id",
                "only with iot.auth = \"identity-pool\"",
            ),
            (
                custom("authenticated_role_name = \"r\""),
                "iot.authenticated_role_name",
                "only with iot.auth = \"identity-pool\"",
            ),
            (
                EXAMPLE.replace(pool_id, "auth = \"token\""),
                "iot.auth",
                "unknown variant",
            ),
        ] {
            let e = err(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(e.rule.contains(rule), "{e}");
        }
    }
}

#[cfg(test)]
#[path = "config_fuzz.rs"]
mod fuzz;
