//! The IAM documents beyond the publisher policy (`templates/iam/`, contract in
//! `templates/README.md`, "IAM documents"): the Lambda execution roles' trust and permissions,
//! the identity pool role's IoT policy, AppSync's logging role, and the deployer policy built from
//! [`DEPLOYER_ACTIONS`]. Also which roles `apply` creates ([`roles`]) and which policy it puts on
//! the user's identity pool role ([`identity_pool_role`]), so apply iterates the same list render
//! writes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Ids, RenderError, Renderer, UNKNOWN_ID, check_json};
use crate::config::{Config, Function};

/// Template names.
pub(crate) const LAMBDA_TRUST_TEMPLATE: &str = "iam/lambda-trust.json.tera";
pub(crate) const PUBLISHER_ROLE_TEMPLATE: &str = "iam/publisher-role-policy.json.tera";
pub(crate) const AUTHORIZER_ROLE_TEMPLATE: &str = "iam/authorizer-role-policy.json.tera";
pub(crate) const IOT_GRANT_ROLE_TEMPLATE: &str = "iam/iot-grant-role-policy.json.tera";
pub(crate) const IOT_AUTHORIZER_ROLE_TEMPLATE: &str = "iam/iot-authorizer-role-policy.json.tera";
pub(crate) const IDENTITY_POOL_TEMPLATE: &str = "iam/identity-pool-iot-policy.json.tera";
pub(crate) const APPSYNC_LOGS_TRUST_TEMPLATE: &str = "iam/appsync-logs-trust.json.tera";
pub(crate) const APPSYNC_LOGS_ROLE_TEMPLATE: &str = "iam/appsync-logs-role-policy.json.tera";
pub(crate) const DEPLOYER_TEMPLATE: &str = "iam/deployer-policy.json.tera";

/// Rendered paths (keys of [`super::Rendered::files`]).
pub(crate) const PUBLISHER_POLICY_PATH: &str = "iam/publisher-policy.json";
pub(crate) const LAMBDA_TRUST: &str = "iam/lambda-trust.json";
pub(crate) const PUBLISHER_ROLE_POLICY: &str = "iam/publisher-role-policy.json";
pub(crate) const AUTHORIZER_ROLE_POLICY: &str = "iam/authorizer-role-policy.json";
pub(crate) const IOT_GRANT_ROLE_POLICY: &str = "iam/iot-grant-role-policy.json";
pub(crate) const IOT_AUTHORIZER_ROLE_POLICY: &str = "iam/iot-authorizer-role-policy.json";
pub(crate) const IDENTITY_POOL_IOT_POLICY: &str = "iam/identity-pool-iot-policy.json";
pub(crate) const APPSYNC_LOGS_TRUST: &str = "iam/appsync-logs-trust.json";
pub(crate) const APPSYNC_LOGS_ROLE_POLICY: &str = "iam/appsync-logs-role-policy.json";
pub(crate) const DEPLOYER_POLICY: &str = "iam/deployer-policy.json";

/// The service principals that assume groupcast's roles.
pub(crate) const LAMBDA_SERVICE: &str = "lambda.amazonaws.com";
pub(crate) const APPSYNC_SERVICE: &str = "appsync.amazonaws.com";

/// A role `apply` creates: its name, its trust policy and its (inline) permissions policy, both as
/// paths into [`super::Rendered::files`], and the service that assumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleDoc {
    pub(crate) role_name: String,
    pub(crate) trust_path: String,
    pub(crate) policy_path: String,
    pub(crate) service: &'static str,
}

/// Every role `apply` must create for `config`, in a fixed order: the publisher's always, the
/// authorizer's when an API uses a Lambda authorizer, the iot-grant's with `[iot]` (the
/// iot-authorizer's instead with `iot.auth = "custom-authorizer"`), AppSync's
/// logging role with `[events]` or `[graphql]`. Each path is rendered by [`Renderer::render`].
/// The identity pool's role is the user's and not in this list: see [`identity_pool_role`].
pub(crate) fn roles(config: &Config) -> Vec<RoleDoc> {
    let lambda = |f: Function, policy_path: &str| RoleDoc {
        role_name: config.function_name(f),
        trust_path: LAMBDA_TRUST.to_owned(),
        policy_path: policy_path.to_owned(),
        service: LAMBDA_SERVICE,
    };
    let mut out = vec![lambda(Function::Publisher, PUBLISHER_ROLE_POLICY)];
    if config.uses_lambda_auth() {
        out.push(lambda(Function::Authorizer, AUTHORIZER_ROLE_POLICY));
    }
    match &config.iot {
        Some(iot) if iot.custom_authorizer() => {
            out.push(lambda(Function::IotAuthorizer, IOT_AUTHORIZER_ROLE_POLICY));
        }
        Some(_) => out.push(lambda(Function::IotGrant, IOT_GRANT_ROLE_POLICY)),
        None => {}
    }
    if config.events.is_some() || config.graphql.is_some() {
        out.push(RoleDoc {
            role_name: config.appsync_logs_role_name(),
            trust_path: APPSYNC_LOGS_TRUST.to_owned(),
            policy_path: APPSYNC_LOGS_ROLE_POLICY.to_owned(),
            service: APPSYNC_SERVICE,
        });
    }
    out
}

/// The identity pool's authenticated role (`iot.authenticated_role_name`, owned by the user) and
/// the path of the policy `apply` puts on it: `(role name, policy path)`; `None` without `[iot]`
/// or without that key.
pub(crate) fn identity_pool_role(config: &Config) -> Option<(String, String)> {
    let role = config.iot.as_ref()?.authenticated_role_name.as_ref()?;
    Some((role.clone(), IDENTITY_POOL_IOT_POLICY.to_owned()))
}

/// What a deployer statement is scoped to; [`deployer_statements`] turns each into ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `*`: the action has no resource type (reading the caller's identity).
    Any,
    /// `*` when `[events]` or `[graphql]` is configured: listing and creating APIs name no API.
    AppsyncAccount,
    /// `*` with `[iot]`: the data endpoint and the policy list name no resource, and attachments
    /// are authorized against their target, which for a Cognito identity has no ARN (see
    /// iot-grant-role-policy).
    IotAccount,
    /// Every AppSync API of the account and region (`apis/*`, which covers namespaces, keys,
    /// data sources and resolvers): API ids are random and apply may create new ones, so the
    /// project cannot be named; apply itself only touches APIs tagged with the project.
    AppsyncApis,
    /// The IoT policies the name pattern produces (`policy/{pattern with * for {group}}`).
    IotPolicies,
    /// The roles apply creates ([`roles`]).
    ProjectRoles,
    /// The user's identity pool role (`iot.authenticated_role_name`), with or without a path.
    IdentityPoolRole,
    /// The AppSync logging role, passed to `appsync.amazonaws.com` only.
    PassLogsRoleToAppsync,
    /// The configured Lambda authorizer functions.
    Authorizers,
    /// The configured identity pool (`iot.identity_pool_id`).
    IdentityPool,
    /// The IoT sync rule `{project}-iot-sync` on the default event bus, with `[iot]` (apply also
    /// reads it to delete one the config no longer wants).
    IotSyncRule,
    /// The iot-grant function, when the IoT sync rule is wanted: EventBridge's permission to
    /// invoke it.
    IotGrantFunction,
    /// The project's IoT custom authorizer, with `[iot]` in either mode (apply deletes one a
    /// switch back to `identity-pool` leaves behind).
    IotAuthorizer,
}

/// The AWS actions `provisioner plan`, `apply`, `destroy` and `iot grant` call, by scope: the one
/// place to extend when a command calls another operation (`iam/deployer-policy.json` renders
/// one statement per row whose scope has resources for the config).
pub(crate) const DEPLOYER_ACTIONS: &[(&str, Scope, &[&str])] = &[
    (
        "GroupcastCallerIdentity",
        Scope::Any,
        &["sts:GetCallerIdentity"],
    ),
    (
        "GroupcastAppsyncAccountWide",
        Scope::AppsyncAccount,
        &[
            "appsync:ListApis",
            "appsync:ListGraphqlApis",
            "appsync:CreateApi",
            "appsync:CreateGraphqlApi",
        ],
    ),
    (
        "GroupcastIotAccountWide",
        Scope::IotAccount,
        &[
            "iot:DescribeEndpoint",
            "iot:ListPolicies",
            "iot:AttachPolicy",
            "iot:DetachPolicy",
            "iot:ListAttachedPolicies",
        ],
    ),
    (
        "GroupcastAppsyncApis",
        Scope::AppsyncApis,
        &[
            "appsync:GetApi",
            "appsync:UpdateApi",
            "appsync:DeleteApi",
            "appsync:ListChannelNamespaces",
            "appsync:CreateChannelNamespace",
            "appsync:UpdateChannelNamespace",
            "appsync:DeleteChannelNamespace",
            "appsync:ListApiKeys",
            "appsync:CreateApiKey",
            "appsync:DeleteApiKey",
            "appsync:UpdateGraphqlApi",
            "appsync:DeleteGraphqlApi",
            "appsync:StartSchemaCreation",
            "appsync:GetSchemaCreationStatus",
            "appsync:GetIntrospectionSchema",
            "appsync:GetDataSource",
            "appsync:CreateDataSource",
            "appsync:GetResolver",
            "appsync:CreateResolver",
            "appsync:UpdateResolver",
            "appsync:ListTagsForResource",
            "appsync:TagResource",
            "appsync:UntagResource",
        ],
    ),
    (
        "GroupcastIotPolicies",
        Scope::IotPolicies,
        &[
            "iot:GetPolicy",
            "iot:CreatePolicy",
            "iot:ListPolicyVersions",
            "iot:CreatePolicyVersion",
            "iot:DeletePolicyVersion",
            "iot:DeletePolicy",
            "iot:ListTargetsForPolicy",
            "iot:ListTagsForResource",
            "iot:TagResource",
            "iot:UntagResource",
        ],
    ),
    (
        "GroupcastRoles",
        Scope::ProjectRoles,
        &[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:DeleteRole",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:ListRoleTags",
        ],
    ),
    (
        "GroupcastIdentityPoolRole",
        Scope::IdentityPoolRole,
        &[
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:ListRolePolicies",
        ],
    ),
    (
        "GroupcastPassLogsRole",
        Scope::PassLogsRoleToAppsync,
        &["iam:PassRole"],
    ),
    (
        "GroupcastAuthorizerPermission",
        Scope::Authorizers,
        &[
            "lambda:GetFunction",
            "lambda:GetPolicy",
            "lambda:AddPermission",
            "lambda:RemovePermission",
        ],
    ),
    (
        "GroupcastIdentityPool",
        Scope::IdentityPool,
        &["cognito-identity:DescribeIdentityPool"],
    ),
    (
        "GroupcastIotSyncRule",
        Scope::IotSyncRule,
        &[
            "events:DescribeRule",
            "events:PutRule",
            "events:DeleteRule",
            "events:ListTargetsByRule",
            "events:PutTargets",
            "events:RemoveTargets",
            "events:ListTagsForResource",
            "events:TagResource",
            "events:UntagResource",
        ],
    ),
    (
        "GroupcastIotSyncPermission",
        Scope::IotGrantFunction,
        &[
            "lambda:GetFunction",
            "lambda:GetPolicy",
            "lambda:AddPermission",
            "lambda:RemovePermission",
        ],
    ),
    (
        "GroupcastIotAuthorizer",
        Scope::IotAuthorizer,
        &[
            "iot:DescribeAuthorizer",
            "iot:CreateAuthorizer",
            "iot:UpdateAuthorizer",
            "iot:DeleteAuthorizer",
            "iot:ListTagsForResource",
            "iot:TagResource",
            "iot:UntagResource",
        ],
    ),
];

/// The IoT policy names the pattern produces, as an IAM resource pattern: `{group}` becomes `*`.
fn iot_policy_glob(config: &Config) -> Option<String> {
    let iot = config.iot.as_ref()?;
    Some(iot.pattern(&config.project.name).replace("{group}", "*"))
}

/// The ARNs one scope covers for `config`; empty when the config has no such resource.
fn scope_resources(config: &Config, scope: Scope) -> (Vec<String>, Option<Value>) {
    let p = config.project.partition();
    let region = &config.project.region;
    let account = &config.project.account_id;
    let role_arn = |name: &str| format!("arn:{p}:iam::{account}:role/{name}");
    match scope {
        Scope::Any => (vec!["*".to_owned()], None),
        Scope::AppsyncAccount => {
            let any = config.events.is_some() || config.graphql.is_some();
            (any.then(|| "*".to_owned()).into_iter().collect(), None)
        }
        Scope::IotAccount => (
            config
                .iot
                .as_ref()
                .map(|_| "*".to_owned())
                .into_iter()
                .collect(),
            None,
        ),
        Scope::AppsyncApis => {
            let any = config.events.is_some() || config.graphql.is_some();
            let arns = any.then(|| format!("arn:{p}:appsync:{region}:{account}:apis/*"));
            (arns.into_iter().collect(), None)
        }
        Scope::IotPolicies => {
            let arns = iot_policy_glob(config)
                .map(|glob| format!("arn:{p}:iot:{region}:{account}:policy/{glob}"));
            (arns.into_iter().collect(), None)
        }
        Scope::ProjectRoles => (
            roles(config)
                .iter()
                .map(|r| role_arn(&r.role_name))
                .collect(),
            None,
        ),
        // A role ARN carries the role's path (`role/service-role/NAME`); the user's role may
        // have one.
        Scope::IdentityPoolRole => match identity_pool_role(config) {
            Some((name, _)) => (vec![role_arn(&name), role_arn(&format!("*/{name}"))], None),
            None => (Vec::new(), None),
        },
        // iam:PassedToService limits where the role may be passed
        // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PassedToService).
        Scope::PassLogsRoleToAppsync => {
            if config.events.is_some() || config.graphql.is_some() {
                (
                    vec![role_arn(&config.appsync_logs_role_name())],
                    Some(json!({"StringEquals": {"iam:PassedToService": APPSYNC_SERVICE}})),
                )
            } else {
                (Vec::new(), None)
            }
        }
        Scope::Authorizers => {
            let mut arns: Vec<String> = config.authorizer_arns().map(str::to_owned).collect();
            if config.iot_custom_authorizer() {
                // IoT's invoke permission on the iot-authorizer.
                arns.push(config.function_arn(Function::IotAuthorizer));
            }
            (arns, None)
        }
        Scope::IotAuthorizer => (
            config
                .iot
                .as_ref()
                .map(|_| config.iot_authorizer_arn())
                .into_iter()
                .collect(),
            None,
        ),
        // Rule ARNs on the default bus: arn:PARTITION:events:REGION:ACCOUNT:rule/NAME
        // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html).
        Scope::IotSyncRule => {
            let arns = config.iot.as_ref().map(|_| {
                format!(
                    "arn:{p}:events:{region}:{account}:rule/{}-iot-sync",
                    config.project.name
                )
            });
            (arns.into_iter().collect(), None)
        }
        Scope::IotGrantFunction => {
            let arns = config
                .iot_sync_rule_name()
                .map(|_| config.function_arn(Function::IotGrant));
            (arns.into_iter().collect(), None)
        }
        Scope::IdentityPool => {
            let pool = config
                .iot
                .as_ref()
                .and_then(|i| i.identity_pool_id.as_ref());
            let arns = pool.map(|id| {
                let pool_region = id.split(':').next().unwrap_or(region);
                format!("arn:{p}:cognito-identity:{pool_region}:{account}:identitypool/{id}")
            });
            (arns.into_iter().collect(), None)
        }
    }
}

/// The deployer policy's statements: one per [`DEPLOYER_ACTIONS`] row that has resources.
fn deployer_statements(config: &Config) -> Vec<Value> {
    DEPLOYER_ACTIONS
        .iter()
        .filter_map(|(sid, scope, actions)| {
            let (resources, condition) = scope_resources(config, *scope);
            (!resources.is_empty()).then(|| {
                json!({
                    "sid": sid,
                    "actions": actions,
                    "resources": resources,
                    "condition": condition,
                })
            })
        })
        .collect()
}

impl Renderer {
    /// Renders the IAM documents into `files`, which already holds the publisher policy (the
    /// publisher role policy reuses its statements). `base` is the context every template gets.
    pub(super) fn render_iam(
        &self,
        config: &Config,
        ids: &Ids,
        base: &Value,
        files: &mut BTreeMap<String, String>,
    ) -> Result<(), RenderError> {
        let p = config.project.partition();
        let region = &config.project.region;
        let account = &config.project.account_id;
        let publisher = files
            .get(PUBLISHER_POLICY_PATH)
            .ok_or_else(|| RenderError::Invalid {
                path: PUBLISHER_POLICY_PATH.to_owned(),
                message: "the publisher role policy is built from it, and it was not rendered"
                    .to_owned(),
            })?;
        let publish_statements = serde_json::from_str::<Value>(publisher)
            .ok()
            .and_then(|d| d.get("Statement").cloned())
            .unwrap_or(Value::Null);
        let event_connect_arn =
            (config.publisher.websocket && config.events.is_some()).then(|| {
                let api = ids.events_api_id.as_deref().unwrap_or(UNKNOWN_ID);
                format!("arn:{p}:appsync:{region}:{account}:apis/{api}")
            });

        let mut put = |template: &str, path: &str, iam: Value| -> Result<(), RenderError> {
            let mut ctx = base.clone();
            if let Value::Object(c) = &mut ctx {
                c.insert("iam".to_owned(), iam);
                if let Some(iot) = &config.iot {
                    c.insert("iot".to_owned(), json!({"topic_prefix": iot.topic_prefix}));
                }
            }
            let doc = self.render_one(template, &ctx)?;
            check_json(path, &doc)?;
            files.insert(path.to_owned(), doc);
            Ok(())
        };

        put(LAMBDA_TRUST_TEMPLATE, LAMBDA_TRUST, json!({}))?;
        put(
            PUBLISHER_ROLE_TEMPLATE,
            PUBLISHER_ROLE_POLICY,
            json!({
                "function_name": config.function_name(Function::Publisher),
                "publish_statements": publish_statements,
                "event_connect_arn": event_connect_arn,
            }),
        )?;
        if config.uses_lambda_auth() {
            put(
                AUTHORIZER_ROLE_TEMPLATE,
                AUTHORIZER_ROLE_POLICY,
                json!({
                    "function_name": config.function_name(Function::Authorizer),
                    "user_pool_arn": config.authorizer_user_pool().map(|id| {
                        // A user pool answers only in its own region: the one in its id.
                        let pool_region = id.split_once('_').map_or(region.as_str(), |(r, _)| r);
                        format!("arn:{p}:cognito-idp:{pool_region}:{account}:userpool/{id}")
                    }),
                }),
            )?;
        }
        if config.iot_custom_authorizer() {
            put(
                IOT_AUTHORIZER_ROLE_TEMPLATE,
                IOT_AUTHORIZER_ROLE_POLICY,
                json!({
                    "function_name": config.function_name(Function::IotAuthorizer),
                    "user_pool_arn": config.cognito_pool().map(|c| format!(
                        "arn:{p}:cognito-idp:{}:{account}:userpool/{}",
                        c.region.as_deref().unwrap_or(region),
                        c.user_pool_id
                    )),
                }),
            )?;
        } else if let Some(iot) = &config.iot {
            put(
                IOT_GRANT_ROLE_TEMPLATE,
                IOT_GRANT_ROLE_POLICY,
                json!({
                    "function_name": config.function_name(Function::IotGrant),
                    "iot_policy_glob": iot_policy_glob(config),
                    "identity_pool_id": iot.identity_pool_id,
                    "user_pool_id": config.cognito_user_pool().map(|(id, _)| id),
                    "project": config.project.name,
                }),
            )?;
            // Rendered with [iot] whether or not apply manages the role: without
            // iot.authenticated_role_name, attach it to your identity pool's role yourself.
            put(IDENTITY_POOL_TEMPLATE, IDENTITY_POOL_IOT_POLICY, json!({}))?;
        }
        if config.events.is_some() || config.graphql.is_some() {
            let mut api_ids = Vec::new();
            for (configured, id) in [
                (config.events.is_some(), &ids.events_api_id),
                (config.graphql.is_some(), &ids.graphql_api_id),
            ] {
                let id = id.as_deref().unwrap_or(UNKNOWN_ID).to_owned();
                if configured && !api_ids.contains(&id) {
                    api_ids.push(id);
                }
            }
            put(APPSYNC_LOGS_TRUST_TEMPLATE, APPSYNC_LOGS_TRUST, json!({}))?;
            put(
                APPSYNC_LOGS_ROLE_TEMPLATE,
                APPSYNC_LOGS_ROLE_POLICY,
                json!({"api_ids": api_ids}),
            )?;
        }
        put(
            DEPLOYER_TEMPLATE,
            DEPLOYER_POLICY,
            json!({"deployer_statements": deployer_statements(config)}),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::render::Rendered;

    const BUNDLED: &str = include_str!("../../../examples/groupcast.toml");

    /// The bundled example with its optional identity pool role on (commented out there, as the
    /// role must exist before apply).
    fn example() -> String {
        let on = BUNDLED.replace("# authenticated_role_name", "authenticated_role_name");
        assert_ne!(on, BUNDLED);
        on
    }

    fn config(text: &str) -> Config {
        Config::parse(Path::new("g.toml"), text).unwrap()
    }

    fn render(config: &Config, ids: &Ids) -> Rendered {
        Renderer::embedded().unwrap().render(config, ids).unwrap()
    }

    fn doc(r: &Rendered, path: &str) -> Value {
        serde_json::from_str(r.get(path).unwrap_or_else(|| panic!("{path} not rendered"))).unwrap()
    }

    fn statements(r: &Rendered, path: &str) -> Vec<Value> {
        doc(r, path)["Statement"].as_array().unwrap().clone()
    }

    /// The statement with `sid`, or a panic naming the document.
    fn sid(r: &Rendered, path: &str, sid: &str) -> Value {
        statements(r, path)
            .into_iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("{path} has no statement {sid}"))
    }

    fn real_ids() -> Ids {
        Ids {
            events_api_id: Some("evapi123".to_owned()),
            graphql_api_id: Some("gqlapi456".to_owned()),
        }
    }

    /// Every IAM document the bundled example renders, in path order.
    const ALL_IAM: [&str; 9] = [
        APPSYNC_LOGS_ROLE_POLICY,
        APPSYNC_LOGS_TRUST,
        AUTHORIZER_ROLE_POLICY,
        DEPLOYER_POLICY,
        IDENTITY_POOL_IOT_POLICY,
        IOT_GRANT_ROLE_POLICY,
        LAMBDA_TRUST,
        PUBLISHER_POLICY_PATH,
        PUBLISHER_ROLE_POLICY,
    ];

    #[test]
    fn the_bundled_example_renders_every_iam_document_with_star_ids_before_apply() {
        let r = render(&config(&example()), &Ids::default());
        let iam: Vec<&str> = r
            .files
            .keys()
            .map(String::as_str)
            .filter(|p| p.starts_with("iam/"))
            .collect();
        assert_eq!(iam, ALL_IAM);

        let trust = sid(&r, LAMBDA_TRUST, "GroupcastLambdaAssumeRole");
        assert_eq!(
            trust["Principal"],
            json!({"Service": "lambda.amazonaws.com"})
        );
        assert_eq!(trust["Action"], "sts:AssumeRole");
        assert_eq!(
            trust["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": "123456789012"}})
        );

        // The publisher's role: the publish statements, byte for byte the same JSON, then logs.
        let publish = statements(&r, PUBLISHER_POLICY_PATH);
        let role = statements(&r, PUBLISHER_ROLE_POLICY);
        assert_eq!(role[..publish.len()], publish[..]);
        let sids: Vec<&str> = role[publish.len()..]
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["GroupcastLogGroup", "GroupcastLogEvents"]);
        assert_eq!(
            sid(&r, PUBLISHER_ROLE_POLICY, "GroupcastLogGroup")["Resource"],
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/acme-live-publisher"
        );
        assert_eq!(
            sid(&r, PUBLISHER_ROLE_POLICY, "GroupcastLogEvents")["Resource"],
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/acme-live-publisher:*"
        );
        assert_eq!(
            publish[0]["Resource"][0],
            "arn:aws:appsync:us-east-1:123456789012:apis/*/channelNamespace/live"
        );

        // The authorizer, groups from the token (the example's default): logs only.
        let auth = statements(&r, AUTHORIZER_ROLE_POLICY);
        assert_eq!(auth.len(), 2);
        assert!(auth.iter().all(|s| {
            s["Resource"]
                .as_str()
                .unwrap()
                .contains("/aws/lambda/acme-live-authorizer")
        }));

        // iot-grant: attachments need "*" (IoT scopes them by target), reads only this project's
        // policies, GetId only in the configured pool.
        let attach = sid(&r, IOT_GRANT_ROLE_POLICY, "GroupcastIotAttach");
        assert_eq!(attach["Resource"], "*");
        assert_eq!(
            attach["Action"],
            json!([
                "iot:AttachPolicy",
                "iot:DetachPolicy",
                "iot:ListAttachedPolicies"
            ])
        );
        assert_eq!(
            sid(&r, IOT_GRANT_ROLE_POLICY, "GroupcastIotReadPolicies")["Resource"],
            "arn:aws:iot:us-east-1:123456789012:policy/acme-live-*"
        );
        assert_eq!(
            sid(&r, IOT_GRANT_ROLE_POLICY, "GroupcastResolveIdentity")["Resource"],
            "arn:aws:cognito-identity:us-east-1:123456789012:identitypool/us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc"
        );

        // The identity pool role: connect as yourself (plus suffixes), the prefix, never publish.
        let pool = statements(&r, IDENTITY_POOL_IOT_POLICY);
        let actions: Vec<&str> = pool.iter().map(|s| s["Action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["iot:Connect", "iot:Subscribe", "iot:Receive"]);
        assert_eq!(
            pool[0]["Resource"],
            json!([
                "arn:aws:iot:us-east-1:123456789012:client/${cognito-identity.amazonaws.com:sub}",
                "arn:aws:iot:us-east-1:123456789012:client/${cognito-identity.amazonaws.com:sub}-*"
            ])
        );
        assert_eq!(
            pool[1]["Resource"],
            "arn:aws:iot:us-east-1:123456789012:topicfilter/groupcast/*"
        );
        assert_eq!(
            pool[2]["Resource"],
            "arn:aws:iot:us-east-1:123456789012:topic/groupcast/*"
        );

        // AppSync's logging role.
        let trust = sid(&r, APPSYNC_LOGS_TRUST, "GroupcastAppsyncAssumeRole");
        assert_eq!(
            trust["Principal"],
            json!({"Service": "appsync.amazonaws.com"})
        );
        assert_eq!(
            sid(&r, APPSYNC_LOGS_ROLE_POLICY, "GroupcastAppsyncLogGroups")["Resource"],
            json!(["arn:aws:logs:us-east-1:123456789012:log-group:/aws/appsync/apis/*"])
        );
    }

    #[test]
    fn real_api_ids_replace_the_stars_once_apply_knows_them() {
        let r = render(&config(&example()), &real_ids());
        let publish = statements(&r, PUBLISHER_ROLE_POLICY);
        assert_eq!(
            publish[0]["Resource"][0],
            "arn:aws:appsync:us-east-1:123456789012:apis/evapi123/channelNamespace/live"
        );
        assert_eq!(
            publish[1]["Resource"],
            json!([
                "arn:aws:appsync:us-east-1:123456789012:apis/gqlapi456/types/Mutation/fields/publish",
                "arn:aws:appsync:us-east-1:123456789012:apis/gqlapi456/types/Mutation/fields/revoke"
            ])
        );
        assert_eq!(
            sid(&r, APPSYNC_LOGS_ROLE_POLICY, "GroupcastAppsyncLogEvents")["Resource"],
            json!([
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/appsync/apis/evapi123:*",
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/appsync/apis/gqlapi456:*"
            ])
        );
        // The deployer keeps apis/*: apply may create the APIs anew (see Scope::AppsyncApis).
        for path in ALL_IAM.iter().filter(|p| **p != DEPLOYER_POLICY) {
            let text = r.get(path).unwrap();
            assert!(
                !text.contains("apis/*"),
                "{path} still has a * API id:\n{text}"
            );
        }
    }

    #[test]
    fn the_publisher_role_gets_event_connect_only_with_websocket_true() {
        let connects = |text: &str, ids: &Ids| {
            let r = render(&config(text), ids);
            statements(&r, PUBLISHER_ROLE_POLICY)
                .into_iter()
                .filter(|s| s.to_string().contains("EventConnect"))
                .collect::<Vec<_>>()
        };
        assert_eq!(connects(&example(), &real_ids()), Vec::<Value>::new());
        let ws = example().replace("# websocket = false", "websocket = true");
        assert_ne!(ws, example());
        assert_eq!(
            connects(&ws, &real_ids()),
            [json!({
                "Sid": "GroupcastEventsConnect",
                "Effect": "Allow",
                "Action": "appsync:EventConnect",
                "Resource": "arn:aws:appsync:us-east-1:123456789012:apis/evapi123"
            })]
        );
        assert_eq!(
            connects(&ws, &Ids::default())[0]["Resource"],
            "arn:aws:appsync:us-east-1:123456789012:apis/*"
        );
        // The shared publisher policy (for other publishers) never gets it.
        let r = render(&config(&ws), &real_ids());
        assert!(
            !r.get(PUBLISHER_POLICY_PATH)
                .unwrap()
                .contains("EventConnect")
        );
    }

    #[test]
    fn a_china_region_project_renders_the_aws_cn_partition_in_every_iam_document() {
        let cn = example()
            .replace("us-east-1", "cn-north-1")
            .replace("arn:aws:", "arn:aws-cn:");
        for ids in [Ids::default(), real_ids()] {
            let r = render(&config(&cn), &ids);
            for path in ALL_IAM {
                let text = r.get(path).unwrap();
                assert!(
                    !text.contains("arn:aws:"),
                    "{path} names the aws partition:\n{text}"
                );
                if path != APPSYNC_LOGS_TRUST && path != LAMBDA_TRUST {
                    assert!(text.contains("arn:aws-cn:"), "{path}:\n{text}");
                }
            }
        }
    }

    #[test]
    fn the_publisher_may_invoke_exactly_the_iot_grant_function_and_only_with_iot() {
        let r = render(&config(&example()), &real_ids());
        let invokes = |r: &Rendered, path: &str| -> Vec<Value> {
            statements(r, path)
                .into_iter()
                .filter(|s| s.to_string().contains("lambda:"))
                .collect()
        };
        for path in [PUBLISHER_POLICY_PATH, PUBLISHER_ROLE_POLICY] {
            assert_eq!(
                invokes(&r, path),
                [json!({
                    "Sid": "GroupcastIotGrantInvoke",
                    "Effect": "Allow",
                    "Action": "lambda:InvokeFunction",
                    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:acme-live-iot-grant",
                })],
                "{path}"
            );
        }
        // In GovCloud the function's ARN is in the aws-us-gov partition.
        let gov = example()
            .replace("us-east-1", "us-gov-west-1")
            .replace("arn:aws:", "arn:aws-us-gov:");
        let r = render(&config(&gov), &real_ids());
        assert_eq!(
            sid(&r, PUBLISHER_ROLE_POLICY, "GroupcastIotGrantInvoke")["Resource"],
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:acme-live-iot-grant"
        );

        // Without [iot] there is no iot-grant function and nothing to invoke.
        let full = example();
        let no_iot = format!(
            "{}{}",
            &full[..full.find("[iot]").unwrap()],
            &full[full.find("[publisher]").unwrap()..]
        );
        let r = render(&config(&no_iot), &real_ids());
        for path in [PUBLISHER_POLICY_PATH, PUBLISHER_ROLE_POLICY] {
            assert_eq!(invokes(&r, path), Vec::<Value>::new(), "{path}");
        }
    }

    #[test]
    fn the_publisher_policy_refuses_to_invoke_any_function_but_iot_grant() {
        let c = config(&example());
        let renderer = Renderer::embedded().unwrap();
        let base = super::super::base_context(&c);
        for arn in [
            "arn:aws:lambda:us-east-1:123456789012:function:acme-live-publisher",
            "arn:aws:lambda:us-east-1:123456789012:function:*",
            "arn:aws:lambda:us-east-1:123456789012:function:acme-live-iot-grant:*",
            "arn:aws:lambda:us-east-1:999999999999:function:acme-live-iot-grant",
            "*",
        ] {
            let mut ctx = base.clone();
            ctx["publisher"] = json!({
                "namespace_arns": [],
                "graphql_publish_arn": null,
                "iot_topic_arn": "arn:aws:iot:us-east-1:123456789012:topic/groupcast/*",
                "iot_grant_function_arn": arn,
            });
            let err = renderer
                .render_one(super::super::PUBLISHER_POLICY, &ctx)
                .unwrap_err();
            assert!(
                format!("{err:?}").contains("publisher.iot_grant_function_arn"),
                "{arn}: {err:?}"
            );
        }
    }

    #[test]
    fn roles_lists_what_apply_creates_and_each_document_is_rendered() {
        let c = config(&example());
        let r = render(&c, &Ids::default());
        let roles = roles(&c);
        let names: Vec<(&str, &str)> = roles
            .iter()
            .map(|d| (d.role_name.as_str(), d.service))
            .collect();
        assert_eq!(
            names,
            [
                ("acme-live-publisher", LAMBDA_SERVICE),
                ("acme-live-authorizer", LAMBDA_SERVICE),
                ("acme-live-iot-grant", LAMBDA_SERVICE),
                ("acme-live-appsync-logs", APPSYNC_SERVICE),
            ]
        );
        for d in &roles {
            assert!(r.get(&d.trust_path).is_some(), "{}", d.trust_path);
            assert!(r.get(&d.policy_path).is_some(), "{}", d.policy_path);
            let trusted = doc(&r, &d.trust_path).to_string();
            assert!(trusted.contains(d.service), "{}: {trusted}", d.role_name);
        }
        assert_eq!(
            identity_pool_role(&c),
            Some((
                "acme-live-identity-auth".to_owned(),
                IDENTITY_POOL_IOT_POLICY.to_owned()
            ))
        );
        assert!(r.get(IDENTITY_POOL_IOT_POLICY).is_some());
        // As shipped, the example leaves the role out (it must exist before apply): apply puts
        // the policy on no role, but render still writes it, to attach by hand.
        let shipped = config(BUNDLED);
        assert_eq!(identity_pool_role(&shipped), None);
        let r = render(&shipped, &Ids::default());
        assert!(r.get(IDENTITY_POOL_IOT_POLICY).is_some());
        assert!(!r.get(DEPLOYER_POLICY).unwrap().contains("identity-auth"));
    }

    #[test]
    fn roles_and_documents_follow_the_sections_configured() {
        // IoT only: no authorizer, no AppSync logging role.
        let full = example();
        let start = full.find("[events]").unwrap();
        let end = full.find("[iot]").unwrap();
        let iot_only = format!("{}{}", &full[..start], &full[end..])
            .replace("authenticated_role_name = \"acme-live-identity-auth\"", "")
            .replace(
                "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
                "",
            );
        let c = config(&iot_only);
        let names: Vec<String> = roles(&c).into_iter().map(|d| d.role_name).collect();
        assert_eq!(names, ["acme-live-publisher", "acme-live-iot-grant"]);
        assert_eq!(identity_pool_role(&c), None);
        let r = render(&c, &Ids::default());
        assert!(
            r.get(IDENTITY_POOL_IOT_POLICY).is_some(),
            "IoT users need it"
        );
        for absent in [
            AUTHORIZER_ROLE_POLICY,
            APPSYNC_LOGS_TRUST,
            APPSYNC_LOGS_ROLE_POLICY,
        ] {
            assert!(
                r.get(absent).is_none(),
                "{absent} rendered for an IoT-only config"
            );
        }
        // Without a configured pool, GetId stays in this account and region.
        assert_eq!(
            sid(&r, IOT_GRANT_ROLE_POLICY, "GroupcastResolveIdentity")["Resource"],
            "arn:aws:cognito-identity:us-east-1:123456789012:identitypool/*"
        );
        let deployer = doc(&r, DEPLOYER_POLICY).to_string();
        for absent in [
            "appsync:",
            "lambda:",
            "iam:PassRole",
            "cognito-identity:",
            "identity-auth",
        ] {
            assert!(!deployer.contains(absent), "{absent} in {deployer}");
        }

        // Events without a Lambda authorizer: no authorizer role.
        let no_lambda = example()
            .replace(
                "\"AMAZON_COGNITO_USER_POOLS\", \"AWS_LAMBDA\", \"AWS_IAM\"",
                "\"AMAZON_COGNITO_USER_POOLS\", \"AWS_IAM\"",
            )
            .replace(
                "[\"AMAZON_COGNITO_USER_POOLS\", \"AWS_LAMBDA\"]",
                "[\"AMAZON_COGNITO_USER_POOLS\"]",
            )
            .replace("[events.auth.lambda]", "[events.auth.lambdaless]");
        let no_lambda = no_lambda.replace(
            "[events.auth.lambdaless]                # the function docs/lambdas.md deploys: {project}-authorizer\nauthorizer_arn = \"arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer\"\nresult_ttl_seconds = 300\n",
            "",
        );
        let c = config(&no_lambda);
        assert!(
            !roles(&c)
                .iter()
                .any(|d| d.role_name.ends_with("-authorizer"))
        );
        assert!(
            render(&c, &Ids::default())
                .get(AUTHORIZER_ROLE_POLICY)
                .is_none()
        );
    }

    #[test]
    fn the_deployer_policy_holds_every_listed_action_scoped_to_the_project() {
        let c = config(&example());
        let r = render(&c, &real_ids());
        let statements = statements(&r, DEPLOYER_POLICY);
        let mut listed: Vec<&str> = DEPLOYER_ACTIONS
            .iter()
            .flat_map(|(_, _, a)| a.iter().copied())
            .collect();
        let mut rendered: Vec<&str> = statements
            .iter()
            .flat_map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
            })
            .collect();
        listed.sort_unstable();
        rendered.sort_unstable();
        assert_eq!(rendered, listed);
        for s in &statements {
            for a in s["Action"].as_array().unwrap() {
                assert!(!a.as_str().unwrap().contains('*'), "wildcard action {a}");
            }
        }
        let by_sid = |sid: &str| {
            statements
                .iter()
                .find(|s| s["Sid"] == sid)
                .unwrap_or_else(|| panic!("no {sid}"))
                .clone()
        };
        assert_eq!(
            by_sid("GroupcastRoles")["Resource"],
            json!([
                "arn:aws:iam::123456789012:role/acme-live-publisher",
                "arn:aws:iam::123456789012:role/acme-live-authorizer",
                "arn:aws:iam::123456789012:role/acme-live-iot-grant",
                "arn:aws:iam::123456789012:role/acme-live-appsync-logs"
            ])
        );
        let pass = by_sid("GroupcastPassLogsRole");
        assert_eq!(
            pass["Resource"],
            json!(["arn:aws:iam::123456789012:role/acme-live-appsync-logs"])
        );
        assert_eq!(
            pass["Condition"],
            json!({"StringEquals": {"iam:PassedToService": "appsync.amazonaws.com"}})
        );
        assert_eq!(
            by_sid("GroupcastAuthorizerPermission")["Resource"],
            json!(["arn:aws:lambda:us-east-1:123456789012:function:acme-live-authorizer"])
        );
        assert_eq!(
            by_sid("GroupcastIotPolicies")["Resource"],
            json!(["arn:aws:iot:us-east-1:123456789012:policy/acme-live-*"])
        );
        // Only the rows AWS cannot scope name "*".
        let star: Vec<&str> = statements
            .iter()
            .filter(|s| s["Resource"] == json!(["*"]))
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            star,
            [
                "GroupcastCallerIdentity",
                "GroupcastAppsyncAccountWide",
                "GroupcastIotAccountWide"
            ]
        );
    }
}
