//! Renders every AWS document from the tera templates in `templates/` and `vtl/` (the contract is
//! `templates/README.md`): template loading (embedded or from a directory), the context, the
//! `json` filter, size and syntax checks, and writing the artifacts under an output directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use groupcast::limits::{self, IOT_POLICY_MAX_CHARS, NAMESPACE_CODE_MAX_CHARS};
use serde_json::{Value, json};
use tera::Tera;

use crate::config::{CognitoAuth, Config, Function, IOT_TOKEN_KEY_NAME};

mod iam;
pub(crate) use iam::{RoleDoc, identity_pool_role, roles};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The placeholder for an API id that does not exist yet (before `apply`).
pub(crate) const UNKNOWN_ID: &str = "*";

/// Template names (see the module docs of `build.rs` for how files are named).
pub(crate) const SCHEMA: &str = "graphql/schema.graphql.tera";
pub(crate) const HANDLER: &str = "events/handler.js.tera";
pub(crate) const IOT_POLICY: &str = "iot/group-policy.json.tera";
/// The IoT custom authorizer's settings (`iot.auth = "custom-authorizer"`), and where they render.
pub(crate) const CUSTOM_AUTHORIZER: &str = "iot/custom-authorizer.json.tera";
pub(crate) const CUSTOM_AUTHORIZER_PATH: &str = "iot/custom-authorizer.json";
/// The group policy for the iot-authorizer, rendered once with the client id and the group's
/// level as placeholders (groupcast_auth::iot_policy); its environment carries it.
pub(crate) const AUTHORIZER_POLICY_PATH: &str = "iot/authorizer-group-policy.json";
pub(crate) const PUBLISHER_POLICY: &str = "iam/publisher-policy.json.tera";
pub(crate) const IOT_SYNC_RULE: &str = "eventbridge/iot-sync-rule.json.tera";
/// The rendered IoT sync rule (PutRule and PutTargets input), with `[iot]` and a user pool.
pub(crate) const IOT_SYNC_RULE_PATH: &str = "eventbridge/iot-sync-rule.json";
/// The GraphQL resolvers, as (type, field): each is a unit resolver on the NONE data source whose
/// templates are `vtl/{type}.{field}.{request,response}.vtl.tera`, rendered to
/// `graphql/{type}.{field}.{request,response}.vtl`. Rendering and `apply` both walk this one list
/// (reconcile/appsync.rs), so a new resolver is one entry here plus its two templates.
pub(crate) const RESOLVERS: [(&str, &str); 3] = [
    ("Mutation", "publish"),
    // Closes a user's subscriptions to groups they left (docs/isolation.md, "Revocation").
    ("Mutation", "revoke"),
    ("Subscription", "subscribe"),
];

/// Every resolver template, as (template name, artifact path under the output directory).
pub(crate) fn vtl_templates() -> impl Iterator<Item = (String, String)> {
    RESOLVERS.into_iter().flat_map(|(type_name, field)| {
        ["request", "response"].map(|suffix| {
            (
                format!("vtl/{type_name}.{field}.{suffix}.vtl.tera"),
                resolver_path(type_name, field, suffix),
            )
        })
    })
}

/// Where the rendered `suffix` (`request` or `response`) template of a resolver lives.
pub(crate) fn resolver_path(type_name: &str, field: &str, suffix: &str) -> String {
    format!("graphql/{type_name}.{field}.{suffix}.vtl")
}

/// Why rendering failed. Nothing is written when any artifact fails.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    #[error("template {name} is missing from {source_desc}")]
    Missing { name: String, source_desc: String },
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

/// API ids to put in ARNs; `None` renders [`UNKNOWN_ID`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) events_api_id: Option<String>,
    pub(crate) graphql_api_id: Option<String>,
}

/// Every rendered document, keyed by its path under the output directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) files: BTreeMap<String, String>,
}

impl Rendered {
    /// A document by its relative path, e.g. `events/live.js`.
    pub(crate) fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// Writes every document under `dir`, creating directories as needed, and removes the
    /// documents an earlier write put there that this rendering no longer has (a group, namespace
    /// or section taken out of the config), so that `dir` never holds a stale policy or handler
    /// that a later deploy step could pick up.
    ///
    /// Only files listed in `dir`'s [`MANIFEST`] from the earlier write are ever removed:
    /// anything else in `dir` is left alone. Directories emptied that way are removed too.
    pub(crate) fn write(&self, dir: &Path) -> Result<Written, RenderError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |error| RenderError::Io { path, error }
        };
        let manifest_path = dir.join(MANIFEST);
        let earlier = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => parse_manifest(&manifest_path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&manifest_path)(e)),
        };
        let mut written = Vec::new();
        for (rel, text) in &self.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, text).map_err(io(&path))?;
            written.push(path);
        }
        // The manifest lists what is there now before anything is removed: an interrupted run
        // leaves at worst a stale file that the next run removes, never a forgotten one.
        let mut listing = String::from(MANIFEST_HEADER);
        for rel in self.files.keys() {
            listing.push_str(rel);
            listing.push('\n');
        }
        std::fs::write(&manifest_path, listing).map_err(io(&manifest_path))?;
        let mut removed = Vec::new();
        for rel in earlier.iter().filter(|rel| !self.files.contains_key(*rel)) {
            let path = dir.join(rel);
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            }
            // Up to `dir`, drop directories this left empty (remove_dir refuses non-empty ones).
            let mut parent = path.parent();
            while let Some(p) = parent.filter(|p| *p != dir) {
                if std::fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
        }
        Ok(Written { written, removed })
    }
}

/// The file in an output directory that lists what the last `render`/`apply` wrote there.
pub(crate) const MANIFEST: &str = ".groupcast-rendered";
const MANIFEST_HEADER: &str = "# Written by groupcast's provisioner: the documents it rendered here, one per line.\n\
     # The next render removes those of them it no longer renders. Do not edit.\n";

/// The relative paths a manifest lists. Each must be a plain relative path (no `..`, no root):
/// a tampered manifest must not make a render delete anything outside its directory.
fn parse_manifest(path: &Path, text: &str) -> Result<Vec<String>, RenderError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let plain = Path::new(line)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(RenderError::Invalid {
                path: format!("{}:{}", path.display(), n + 1),
                message: format!(
                    "{line:?} is not a relative path inside the output directory; \
                     delete the file to start afresh"
                ),
            });
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

/// What [`Rendered::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Every document written, in path order.
    pub(crate) written: Vec<PathBuf>,
    /// Documents of an earlier write that this one no longer has, now deleted.
    pub(crate) removed: Vec<PathBuf>,
}

impl Written {
    /// Names each removed document on stderr, as `render` and `apply` report them.
    pub(crate) fn eprint_removed(&self) {
        for p in &self.removed {
            eprintln!("removed {} (no longer rendered)", p.display());
        }
    }
}

/// The loaded templates.
#[derive(Debug)]
pub(crate) struct Renderer {
    tera: Tera,
    source_desc: String,
}

impl Renderer {
    /// The templates embedded in this binary at build time.
    pub(crate) fn embedded() -> Result<Renderer, RenderError> {
        Renderer::from_templates(
            EMBEDDED
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            "the templates embedded in this binary (templates/ and vtl/ at build time)".to_owned(),
        )
    }

    /// The templates under `root/templates` and `root/vtl` (for template development).
    pub(crate) fn from_dir(root: &Path) -> Result<Renderer, RenderError> {
        let mut files = Vec::new();
        for (sub, prefix) in [("templates", ""), ("vtl", "vtl/")] {
            let dir = root.join(sub);
            collect(&dir, &dir, prefix, &mut files)?;
        }
        if files.is_empty() {
            return Err(RenderError::Invalid {
                path: root.display().to_string(),
                message: "no *.tera files under templates/ or vtl/ (--templates names the directory holding both)"
                    .to_owned(),
            });
        }
        Renderer::from_templates(files, format!("{}/{{templates,vtl}}", root.display()))
    }

    fn from_templates(
        files: Vec<(String, String)>,
        source_desc: String,
    ) -> Result<Renderer, RenderError> {
        let mut tera = Tera::default();
        // These are not HTML: escaping is the templates' job, through the `json` filter.
        tera.autoescape_on(Vec::new());
        tera.register_filter("json", json_filter);
        tera.add_raw_templates(files)
            .map_err(|e| RenderError::Template {
                name: "(loading)".to_owned(),
                message: chain(&e),
            })?;
        Ok(Renderer { tera, source_desc })
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        if !self.tera.get_template_names().any(|n| n == name) {
            return Err(RenderError::Missing {
                name: name.to_owned(),
                source_desc: self.source_desc.clone(),
            });
        }
        let ctx = tera::Context::from_value(ctx.clone()).map_err(|e| RenderError::Template {
            name: name.to_owned(),
            message: chain(&e),
        })?;
        self.tera
            .render(name, &ctx)
            .map_err(|e| RenderError::Template {
                name: name.to_owned(),
                message: chain(&e),
            })
    }

    /// Renders every artifact `config` asks for. Checks sizes and JSON syntax before returning.
    pub(crate) fn render(&self, config: &Config, ids: &Ids) -> Result<Rendered, RenderError> {
        let base = base_context(config);
        let mut files = BTreeMap::new();
        let with = |extra: Value| {
            let mut ctx = base.clone();
            if let (Value::Object(c), Value::Object(e)) = (&mut ctx, extra) {
                c.extend(e);
            }
            ctx
        };
        let region = &config.project.region;
        let account = &config.project.account_id;
        let partition = config.project.partition();

        if let Some(gq) = &config.graphql {
            let modes: Vec<&str> = gq
                .subscriber_auth_modes
                .iter()
                .map(|m| m.as_str())
                .collect();
            let directives: Vec<&str> = gq
                .subscriber_auth_modes
                .iter()
                .map(|m| m.graphql_directive())
                .collect();
            let ctx = with(json!({"graphql": {
                "subscriber_auth_modes": modes,
                "subscriber_directives": directives,
                "groups_claim": gq.groups_claim,
                "max_groups": gq.max_groups_per_subscription,
            }}));
            files.insert(
                "graphql/schema.graphql".to_owned(),
                self.render_one(SCHEMA, &ctx)?,
            );
            for (template, file) in vtl_templates() {
                files.insert(file, self.render_one(&template, &ctx)?);
            }
        }

        let mut namespace_arns = Vec::new();
        if let Some(ev) = &config.events {
            let api = ids.events_api_id.as_deref().unwrap_or(UNKNOWN_ID);
            let oidc_claim = ev
                .auth
                .oidc
                .as_ref()
                .map_or("groups", |o| o.groups_claim.as_str());
            // The handler recognises a caller's mode by who issued its identity, never by which
            // fields it happens to carry (templates/README.md, "Context").
            let cognito_issuers = ev
                .auth
                .cognito
                .as_ref()
                .map_or_else(Vec::new, |c| cognito_issuers(c, region));
            let oidc_issuer = ev.auth.oidc.as_ref().map(|o| o.issuer.as_str());
            // A namespace subscribes with the API's default modes: groupcast sets them explicitly
            // on every namespace (reconcile.rs), and has no per-namespace override.
            let subscribe_modes: Vec<&str> = ev
                .default_subscribe_auth_modes
                .iter()
                .map(|m| m.as_str())
                .collect();
            for ns in &ev.namespaces {
                namespace_arns.push(format!(
                    "arn:{partition}:appsync:{region}:{account}:apis/{api}/channelNamespace/{}",
                    ns.name
                ));
                let ctx = with(json!({"namespace": {
                    "name": ns.name,
                    "group_check": ns.group_check,
                    "publish_iam_only": ns.publish_iam_only,
                    "lambda_groups_key": "groups",
                    "oidc_groups_claim": oidc_claim,
                    "subscribe_auth_modes": subscribe_modes,
                    "cognito_issuers": cognito_issuers,
                    "oidc_issuer": oidc_issuer,
                    // 0: channels without epochs (the handler has no epoch code at all).
                    "epoch_seconds": ns.epoch_seconds.unwrap_or(0),
                }}));
                let path = format!("events/{}.js", ns.name);
                let code = self.render_one(HANDLER, &ctx)?;
                let chars = code.chars().count();
                if chars > NAMESPACE_CODE_MAX_CHARS {
                    return Err(RenderError::Invalid {
                        path,
                        message: format!(
                            "handler code is {chars} characters; a channel namespace holds at most {NAMESPACE_CODE_MAX_CHARS}"
                        ),
                    });
                }
                files.insert(path, code);
            }
        }

        if let Some(iot) = &config.iot
            && iot.custom_authorizer()
        {
            let ctx = with(json!({"iot": {
                "topic_prefix": iot.topic_prefix,
                "authorizer_function_arn": config.function_arn(Function::IotAuthorizer),
                "token_key_name": IOT_TOKEN_KEY_NAME,
            }}));
            let path = CUSTOM_AUTHORIZER_PATH.to_owned();
            let doc = self.render_one(CUSTOM_AUTHORIZER, &ctx)?;
            serde_json::from_str::<crate::aws::AuthorizerSpec>(&doc).map_err(|e| {
                RenderError::Invalid {
                    path: path.clone(),
                    message: format!("not CreateAuthorizer settings: {e}"),
                }
            })?;
            files.insert(path, doc);
            // The group policy with placeholders: the Lambda fills in the user and each group
            // (groupcast_auth::iot_policy), so the template stays the one statement of a grant.
            use groupcast_auth::iot_policy::{
                CLIENT_ID_PLACEHOLDER, GROUP_LEVEL_PLACEHOLDER, PolicyTemplate,
            };
            let ctx = with(json!({"iot": {
                "topic_prefix": iot.topic_prefix,
                "group": "",
                "group_level": GROUP_LEVEL_PLACEHOLDER,
                "policy_name": "",
                "client_id": CLIENT_ID_PLACEHOLDER,
            }}));
            let path = AUTHORIZER_POLICY_PATH.to_owned();
            let doc = self.render_one(IOT_POLICY, &ctx)?;
            PolicyTemplate::parse(&doc).map_err(|message| RenderError::Invalid {
                path: path.clone(),
                message,
            })?;
            files.insert(path, doc);
        } else if let Some(iot) = &config.iot {
            for g in config.iot_groups() {
                let ctx = with(json!({"iot": {
                    "topic_prefix": iot.topic_prefix,
                    "group": g.group,
                    "group_level": g.level,
                    "policy_name": g.policy_name,
                }}));
                let path = format!("iot/{}.json", g.policy_name);
                let doc = self.render_one(IOT_POLICY, &ctx)?;
                check_json(&path, &doc)?;
                let chars = doc.chars().filter(|c| !c.is_whitespace()).count();
                if chars > IOT_POLICY_MAX_CHARS {
                    return Err(RenderError::Invalid {
                        path,
                        message: format!(
                            "IoT policy for group {:?} is {chars} characters without whitespace; IoT allows at most {IOT_POLICY_MAX_CHARS}",
                            g.group
                        ),
                    });
                }
                files.insert(path, doc);
            }
        }

        if let (Some(name), Some((user_pool_id, _))) =
            (config.iot_sync_rule_name(), config.cognito_user_pool())
        {
            let ctx = with(json!({"rule": {
                "name": name,
                "user_pool_id": user_pool_id,
                "function_arn": config.function_arn(crate::config::Function::IotGrant),
            }}));
            let doc = self.render_one(IOT_SYNC_RULE, &ctx)?;
            check_json(IOT_SYNC_RULE_PATH, &doc)?;
            files.insert(IOT_SYNC_RULE_PATH.to_owned(), doc);
        }

        let graphql_publish_arn = config.graphql.as_ref().map(|_| {
            let api = ids.graphql_api_id.as_deref().unwrap_or(UNKNOWN_ID);
            format!("arn:{partition}:appsync:{region}:{account}:apis/{api}/types/Mutation/fields/publish")
        });
        let iot_topic_arn = config.iot.as_ref().map(|i| {
            format!(
                "arn:{partition}:iot:{region}:{account}:topic/{}/*",
                i.topic_prefix
            )
        });
        // `revoke` re-syncs a user's IoT policies by invoking the iot-grant function: the
        // unqualified function ARN, which a policy may name alone
        // (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html).
        // Only the attachment mode has an iot-grant to sync (custom-authorizer mode revokes by refresh).
        let iot_grant_function_arn = (config.iot.is_some() && !config.iot_custom_authorizer())
            .then(|| {
                format!(
                    "arn:{partition}:lambda:{region}:{account}:function:{}",
                    config.function_name(Function::IotGrant)
                )
            });
        let ctx = with(json!({"publisher": {
            "namespace_arns": namespace_arns,
            "graphql_publish_arn": graphql_publish_arn,
            "iot_topic_arn": iot_topic_arn,
            "iot_grant_function_arn": iot_grant_function_arn,
        }}));
        let path = iam::PUBLISHER_POLICY_PATH.to_owned();
        let doc = self.render_one(PUBLISHER_POLICY, &ctx)?;
        check_json(&path, &doc)?;
        files.insert(path, doc);

        self.render_iam(config, ids, &base, &mut files)?;
        Ok(Rendered { files })
    }
}

/// The `iss` values a token of user pool `c` may carry: the original issuer
/// `https://cognito-idp.{region}.amazonaws.com/{pool}` and the multi-Region "updated" issuer
/// `https://issuer-cognito-idp.{region}.amazonaws.com/{pool}` a pool can be switched to
/// (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_IssuerConfigurationType.html).
/// The region is the one `apply` gives AppSync for the pool: `cognito.region`, else the project's.
fn cognito_issuers(c: &CognitoAuth, project_region: &str) -> Vec<String> {
    let region = c.region.as_deref().unwrap_or(project_region);
    ["cognito-idp", "issuer-cognito-idp"]
        .iter()
        .map(|host| format!("https://{host}.{region}.amazonaws.com/{}", c.user_pool_id))
        .collect()
}

/// The variables every template gets (templates/README.md, "Context").
fn base_context(config: &Config) -> Value {
    json!({
        "project": config.project.name,
        "region": config.project.region,
        "account_id": config.project.account_id,
        "partition": config.project.partition(),
        "publisher_principals": config.publisher_principals(),
        "limits": {
            "segment_max_chars": limits::CHANNEL_SEGMENT_MAX_CHARS,
            "channel_max_segments": limits::CHANNEL_MAX_SEGMENTS,
            "filter_group_max_filters": limits::FILTER_GROUP_MAX_FILTERS,
            "filter_max_conditions": limits::FILTER_MAX_CONDITIONS,
            "contains_any_max_values": limits::FILTER_CONTAINS_ANY_MAX_VALUES,
            "filter_value_max_chars": limits::FILTER_VALUE_MAX_CHARS,
            "subscription_max_groups": limits::SUBSCRIPTION_MAX_GROUPS,
            "epoch_max_digits": groupcast::epoch::MAX_DIGITS,
            "epoch_admitted": groupcast::epoch::ADMITTED,
        },
        "encoded_prefix": groupcast::group::ENCODED_PREFIX,
    })
}

/// `{{ value | json }}`: serde_json text, with U+2028/U+2029 escaped so it is also a JavaScript
/// literal. The only way config strings should reach a document.
fn json_filter(value: &Value, _args: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(to_js_safe_json(value)))
}

pub(crate) fn to_js_safe_json(value: &Value) -> String {
    serde_json::to_string(value)
        .expect("a JSON value always serializes")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn check_json(path: &str, doc: &str) -> Result<(), RenderError> {
    serde_json::from_str::<Value>(doc)
        .map(drop)
        .map_err(|e| RenderError::Invalid {
            path: path.to_owned(),
            message: format!("the template did not render valid JSON: {e}"),
        })
}

fn collect(
    dir: &Path,
    base: &Path,
    prefix: &str,
    out: &mut Vec<(String, String)>,
) -> Result<(), RenderError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, base, prefix, out)?;
        } else if path.extension().is_some_and(|e| e == "tera") {
            let rel = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).map_err(|error| RenderError::Io {
                path: path.display().to_string(),
                error,
            })?;
            out.push((format!("{prefix}{rel}"), text));
        }
    }
    Ok(())
}

/// An error with its causes: tera puts the useful part (line, variable) in the source chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(paths: &[&str]) -> Rendered {
        Rendered {
            files: paths
                .iter()
                .map(|p| ((*p).to_owned(), format!("doc {p}\n")))
                .collect(),
        }
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("groupcast-render-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A statement as IoT reads it: effect, actions and resources as sorted lists (a single
    /// string and a one-element list mean the same).
    fn normalized(statement: &Value) -> (String, Vec<String>, Vec<String>) {
        let list = |v: &Value| -> Vec<String> {
            let mut l: Vec<String> = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
                other => panic!("not a string or list: {other}"),
            };
            l.sort();
            l
        };
        (
            statement["Effect"].as_str().unwrap().to_owned(),
            list(&statement["Action"]),
            list(&statement["Resource"]),
        )
    }

    #[test]
    fn the_iot_authorizers_policy_equals_the_provisioners_rendering_for_every_group_and_user() {
        use groupcast_auth::iot_authorizer::Rules;
        use groupcast_auth::iot_policy::PolicyTemplate;
        let renderer = Renderer::embedded().unwrap();
        let example = include_str!("../../examples/groupcast.toml").replace(
            "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
            "auth = \"custom-authorizer\"",
        );
        // The example, and variants in other partitions and with a deeper, odder prefix.
        let parse = |text: &str, region: &str| {
            let mut c = Config::parse(Path::new("x.toml"), text).unwrap();
            c.project.region = region.to_owned();
            c
        };
        let deeper = example.replace(
            "topic_prefix = \"groupcast\"",
            "topic_prefix = \"a.b/c_d-e/F9\"",
        );
        let variants = [
            parse(&example, "us-east-1"),
            parse(&example, "cn-north-1"),
            parse(&example, "us-gov-west-1"),
            parse(&deeper, "eu-west-1"),
        ];
        // Seeded odd names beside each config's own groups: underscores, double dashes, a
        // segment-like name, non-ASCII, spaces, wildcards, 50+ characters.
        let mut rng = fastrand::Rng::with_seed(14);
        let alphabet: Vec<char> = "aZ09-_ .*?+#$/@éß中{}".chars().collect();
        let mut odd: Vec<String> = [
            "Team_B",
            "a--b",
            "x--fake",
            "ünïcode",
            "with space",
            "*",
            "+",
            "#",
            "a/b",
            "{group_level}",
            "{client_id}",
            &"g".repeat(60),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for _ in 0..40 {
            let len = rng.usize(1..20);
            odd.push(
                (0..len)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect(),
            );
        }
        let users = [
            "0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41",
            "us-east-1:0f2c6a9e-1b7d-4c3e-9a51-2d7f3b8e6c41",
            "a@b.c",
            "x_y=z,w",
        ];
        let mut compared = 0;
        for config in &variants {
            let files = renderer.render(config, &Ids::default()).unwrap();
            let lambdas = crate::lambdas::lambdas(config, &groupcast::Outputs::default(), &files);
            let env = &lambdas["iot-authorizer"].environment;
            let iot = config.iot.as_ref().unwrap();
            let mut groups = iot.groups.clone();
            groups.extend(
                odd.iter()
                    .filter(|g| groupcast::group_segment(g).is_ok())
                    .cloned(),
            );
            groups.sort();
            groups.dedup();
            let policy = PolicyTemplate::parse(&env["GROUPCAST_IOT_POLICY"]).unwrap();
            let rules = Rules::new(&groups, policy.clone(), 300, "k").unwrap();
            let base = base_context(config);
            for user in users {
                let mut all_rendered: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
                for g in &groups {
                    // The provisioner: the template rendered for this user and group.
                    let mut ctx = base.clone();
                    ctx["iot"] = json!({
                        "topic_prefix": iot.topic_prefix,
                        "group": g,
                        "group_level": groupcast::group_segment(g).unwrap(),
                        "policy_name": "",
                        "client_id": user,
                    });
                    let doc: Value =
                        serde_json::from_str(&renderer.render_one(IOT_POLICY, &ctx).unwrap())
                            .unwrap();
                    let want: Vec<_> = doc["Statement"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(normalized)
                        .collect();
                    // The Lambda: the placeholders filled in, and its answer for that one group.
                    let got: Vec<_> = policy
                        .statements(user, g)
                        .unwrap()
                        .iter()
                        .map(normalized)
                        .collect();
                    assert_eq!(got, want, "{g:?} for {user:?}");
                    let docs = rules
                        .policy_documents(user, std::slice::from_ref(g))
                        .unwrap();
                    let answered: Vec<_> = docs
                        .iter()
                        .flat_map(|d| d.statement.iter())
                        .map(|s| normalized(&serde_json::to_value(s).unwrap()))
                        .collect();
                    assert_eq!(answered, want, "{g:?} for {user:?}");
                    for s in want {
                        if !all_rendered.contains(&s) {
                            all_rendered.push(s);
                        }
                    }
                    compared += 1;
                }
                // All groups at once: exactly the union of the per-group policies.
                let docs = rules.policy_documents(user, &groups).unwrap();
                let mut answered: Vec<_> = docs
                    .iter()
                    .flat_map(|d| d.statement.iter())
                    .map(|s| normalized(&serde_json::to_value(s).unwrap()))
                    .collect();
                answered.sort();
                all_rendered.sort();
                assert_eq!(answered, all_rendered, "all groups for {user:?}");
            }
        }
        assert!(compared > 200, "{compared}");
    }

    #[test]
    fn the_iot_authorizer_fixture_is_what_the_provisioner_renders() {
        // functions/groupcast-auth/tests/fixtures/iot-authorizer-policy.json feeds the Lambda's
        // own tests; it must stay the provisioner's rendering (prefix groupcast, us-east-1,
        // 123456789012).
        let example = include_str!("../../examples/groupcast.toml").replace(
            "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
            "auth = \"custom-authorizer\"",
        );
        let config = Config::parse(Path::new("x.toml"), &example).unwrap();
        let files = Renderer::embedded()
            .unwrap()
            .render(&config, &Ids::default())
            .unwrap();
        assert_eq!(
            files.get(AUTHORIZER_POLICY_PATH).unwrap(),
            include_str!(
                "../../functions/groupcast-auth/tests/fixtures/iot-authorizer-policy.json"
            ),
            "regenerate the fixture: provisioner render, {AUTHORIZER_POLICY_PATH}"
        );
    }

    #[test]
    fn a_second_write_removes_what_it_no_longer_renders_and_nothing_else() {
        let dir = scratch_dir("stale");
        let first = rendered(&["graphql/schema.graphql", "iot/p-a.json", "iot/p-b.json"]);
        let done = first.write(&dir).unwrap();
        assert_eq!(done.written.len(), 3);
        assert!(done.removed.is_empty());
        // Someone else's file in the output directory, and one in a rendered directory.
        std::fs::write(dir.join("README.txt"), "mine").unwrap();
        std::fs::write(dir.join("iot/notes.txt"), "mine too").unwrap();

        let second = rendered(&["iot/p-a.json"]);
        let done = second.write(&dir).unwrap();
        assert_eq!(
            done.removed,
            vec![dir.join("graphql/schema.graphql"), dir.join("iot/p-b.json")]
        );
        assert!(!dir.join("graphql").exists(), "the emptied directory stays");
        assert!(dir.join("iot/p-a.json").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("README.txt")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("iot/notes.txt")).unwrap(),
            "mine too"
        );
        let manifest = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        assert_eq!(
            manifest
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["iot/p-a.json"]
        );

        // A file the manifest lists but someone already deleted is no error.
        std::fs::remove_file(dir.join("iot/p-a.json")).unwrap();
        assert!(rendered(&[]).write(&dir).unwrap().removed.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_naming_paths_outside_the_directory_is_refused_before_anything_changes() {
        let parent = scratch_dir("escape");
        let dir = parent.join("out");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(parent.join("victim.txt"), "keep").unwrap();
        for bad in ["../victim.txt", "/etc/passwd", "iot/../../victim.txt"] {
            std::fs::write(dir.join(MANIFEST), format!("{bad}\n")).unwrap();
            let e = rendered(&["iot/p-a.json"])
                .write(&dir)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(".groupcast-rendered:1") && e.contains("not a relative path"),
                "{e}"
            );
            assert!(!dir.join("iot").exists(), "{bad}: wrote before refusing");
        }
        assert_eq!(
            std::fs::read_to_string(parent.join("victim.txt")).unwrap(),
            "keep"
        );
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn the_json_filter_escapes_quotes_and_line_separators() {
        let v = Value::String("a\"}\u{2028}</script>\u{2029}".to_owned());
        assert_eq!(to_js_safe_json(&v), r#""a\"}\u2028</script>\u2029""#);
    }

    #[test]
    fn a_missing_template_is_named() {
        let r = Renderer::from_templates(vec![], "nowhere".into()).unwrap();
        let e = r.render_one(HANDLER, &json!({})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "template events/handler.js.tera is missing from nowhere"
        );
    }

    #[test]
    fn an_oversize_iot_policy_is_rejected_before_writing() {
        let text = include_str!("../../examples/groupcast.toml");
        let config = Config::parse(Path::new("x.toml"), text).unwrap();
        let big = format!(
            "{{\"a\": {{{{ iot.group_level | json }}}}, \"b\": \"{}\"}}",
            "x".repeat(2100)
        );
        let files = vec![
            (IOT_POLICY.to_owned(), big),
            (PUBLISHER_POLICY.to_owned(), "{}".to_owned()),
            (HANDLER.to_owned(), "x".to_owned()),
            (SCHEMA.to_owned(), "x".to_owned()),
        ]
        .into_iter()
        .chain(vtl_templates().map(|(t, _)| (t, "x".to_owned())))
        .collect();
        let r = Renderer::from_templates(files, "test".into()).unwrap();
        let e = r.render(&config, &Ids::default()).unwrap_err().to_string();
        assert!(
            e.starts_with("iot/acme-live-admins.json: IoT policy for group \"admins\" is 2"),
            "{e}"
        );
        assert!(e.ends_with("IoT allows at most 2048"), "{e}");
    }

    #[test]
    fn an_epoch_namespace_gets_the_epoch_checks_within_the_code_limit_and_the_others_none() {
        let example = include_str!("../../examples/groupcast.toml");
        // The example's jobs has 300 s epochs; make them 2 s, live has none.
        assert!(example.contains("\nepoch_seconds = 300"));
        let text = example.replacen("\nepoch_seconds = 300", "\nepoch_seconds = 2", 1);
        let config = Config::parse(Path::new("x.toml"), &text).unwrap();
        let r = Renderer::embedded()
            .unwrap()
            .render(&config, &Ids::default())
            .unwrap();
        let jobs = r.get("events/jobs.js").unwrap();
        assert!(jobs.contains("const EPOCH_SECONDS = 2;"), "{jobs}");
        assert!(jobs.contains("util.time.nowEpochSeconds()"));
        assert!(jobs.chars().count() <= NAMESPACE_CODE_MAX_CHARS);
        // The namespace without epochs is rendered exactly as without the key anywhere.
        let before = Renderer::embedded()
            .unwrap()
            .render(
                &Config::parse(Path::new("x.toml"), example).unwrap(),
                &Ids::default(),
            )
            .unwrap();
        assert_eq!(r.get("events/live.js"), before.get("events/live.js"));
        assert!(!r.get("events/live.js").unwrap().contains("EPOCH"));
    }

    #[test]
    fn custom_authorizer_mode_renders_the_authorizer_and_its_role_instead_of_group_policies() {
        let text = include_str!("../../examples/groupcast.toml").replace(
            "identity_pool_id = \"us-east-1:0f6d3c2a-1b2c-4d5e-8f90-123456789abc\"",
            "auth = \"custom-authorizer\"",
        );
        let config = Config::parse(Path::new("x.toml"), &text).unwrap();
        let r = Renderer::embedded()
            .unwrap()
            .render(&config, &Ids::default())
            .unwrap();
        let settings: Value = serde_json::from_str(r.get(CUSTOM_AUTHORIZER_PATH).unwrap()).unwrap();
        assert_eq!(
            settings,
            json!({
                "authorizerFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:acme-live-iot-authorizer",
                "tokenKeyName": "groupcast-token",
                "signingDisabled": true,
                "status": "ACTIVE",
                "enableCachingForHttp": false,
            })
        );
        let role: Value =
            serde_json::from_str(r.get("iam/iot-authorizer-role-policy.json").unwrap()).unwrap();
        let actions: Vec<&Value> = role["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["Action"])
            .collect();
        assert_eq!(
            actions,
            [
                &json!([
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminListGroupsForUser"
                ]),
                &json!("logs:CreateLogGroup"),
                &json!(["logs:CreateLogStream", "logs:PutLogEvents"])
            ]
        );
        assert_eq!(
            role["Statement"][0]["Resource"],
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"
        );
        for absent in [
            "iot/acme-live-admins.json",
            "iam/iot-grant-role-policy.json",
            "iam/identity-pool-iot-policy.json",
        ] {
            assert!(r.get(absent).is_none(), "{absent} rendered");
        }
        let deployer = r.get("iam/deployer-policy.json").unwrap();
        assert!(deployer.contains("iot:CreateAuthorizer"), "{deployer}");
        assert!(
            deployer
                .contains("arn:aws:iot:us-east-1:123456789012:authorizer/acme-live-iot-authorizer"),
            "{deployer}"
        );
        assert!(
            deployer.contains("function:acme-live-iot-authorizer"),
            "the invoke permission's function: {deployer}"
        );
        // The identity-pool mode still renders its documents and no authorizer.
        let pool = Config::parse(
            Path::new("x.toml"),
            include_str!("../../examples/groupcast.toml"),
        )
        .unwrap();
        let r = Renderer::embedded()
            .unwrap()
            .render(&pool, &Ids::default())
            .unwrap();
        assert!(r.get(CUSTOM_AUTHORIZER_PATH).is_none());
        assert!(r.get("iot/acme-live-admins.json").is_some());
        assert!(r.get("iam/iot-authorizer-role-policy.json").is_none());
    }
}
