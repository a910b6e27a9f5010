//! Renders every AWS document from the tera templates in `templates/` and `vtl/` (the contract is
//! `templates/README.md`): template loading (embedded or from a directory), the context, the
//! `json` filter, size and syntax checks, and writing the artifacts under an output directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use groupcast::limits::{self, IOT_POLICY_MAX_CHARS, NAMESPACE_CODE_MAX_CHARS};
use serde_json::{Value, json};
use tera::Tera;

use crate::config::Config;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The placeholder for an API id that does not exist yet (before `apply`).
pub(crate) const UNKNOWN_ID: &str = "*";

/// Template names (see the module docs of `build.rs` for how files are named).
pub(crate) const SCHEMA: &str = "graphql/schema.graphql.tera";
pub(crate) const HANDLER: &str = "events/handler.js.tera";
pub(crate) const IOT_POLICY: &str = "iot/group-policy.json.tera";
pub(crate) const PUBLISHER_POLICY: &str = "iam/publisher-policy.json.tera";
/// The four resolver templates: (template, artifact file name, type, field, request?).
pub(crate) const VTL: [(&str, &str); 4] = [
    (
        "vtl/Mutation.publish.request.vtl.tera",
        "Mutation.publish.request.vtl",
    ),
    (
        "vtl/Mutation.publish.response.vtl.tera",
        "Mutation.publish.response.vtl",
    ),
    (
        "vtl/Subscription.subscribe.request.vtl.tera",
        "Subscription.subscribe.request.vtl",
    ),
    (
        "vtl/Subscription.subscribe.response.vtl.tera",
        "Subscription.subscribe.response.vtl",
    ),
];

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

    /// Writes every document under `dir`, creating directories as needed.
    pub(crate) fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
        let mut written = Vec::new();
        for (rel, text) in &self.files {
            let path = dir.join(rel);
            let io = |error| RenderError::Io {
                path: path.display().to_string(),
                error,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&path, text).map_err(io)?;
            written.push(path);
        }
        Ok(written)
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
            for (template, file) in VTL {
                files.insert(format!("graphql/{file}"), self.render_one(template, &ctx)?);
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
            for ns in &ev.namespaces {
                namespace_arns.push(format!(
                    "arn:aws:appsync:{region}:{account}:apis/{api}/channelNamespace/{}",
                    ns.name
                ));
                let ctx = with(json!({"namespace": {
                    "name": ns.name,
                    "group_check": ns.group_check,
                    "publish_iam_only": ns.publish_iam_only,
                    "lambda_groups_key": "groups",
                    "oidc_groups_claim": oidc_claim,
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

        if let Some(iot) = &config.iot {
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

        let graphql_publish_arn = config.graphql.as_ref().map(|_| {
            let api = ids.graphql_api_id.as_deref().unwrap_or(UNKNOWN_ID);
            format!("arn:aws:appsync:{region}:{account}:apis/{api}/types/Mutation/fields/publish")
        });
        let iot_topic_arn = config
            .iot
            .as_ref()
            .map(|i| format!("arn:aws:iot:{region}:{account}:topic/{}/*", i.topic_prefix));
        let ctx = with(json!({"publisher": {
            "namespace_arns": namespace_arns,
            "graphql_publish_arn": graphql_publish_arn,
            "iot_topic_arn": iot_topic_arn,
        }}));
        let path = "iam/publisher-policy.json".to_owned();
        let doc = self.render_one(PUBLISHER_POLICY, &ctx)?;
        check_json(&path, &doc)?;
        files.insert(path, doc);
        Ok(Rendered { files })
    }
}

/// The variables every template gets (templates/README.md, "Context").
fn base_context(config: &Config) -> Value {
    json!({
        "project": config.project.name,
        "region": config.project.region,
        "account_id": config.project.account_id,
        "limits": {
            "segment_max_chars": limits::CHANNEL_SEGMENT_MAX_CHARS,
            "channel_max_segments": limits::CHANNEL_MAX_SEGMENTS,
            "filter_group_max_filters": limits::FILTER_GROUP_MAX_FILTERS,
            "filter_max_conditions": limits::FILTER_MAX_CONDITIONS,
            "contains_any_max_values": limits::FILTER_CONTAINS_ANY_MAX_VALUES,
            "filter_value_max_chars": limits::FILTER_VALUE_MAX_CHARS,
            "subscription_max_groups": limits::SUBSCRIPTION_MAX_GROUPS,
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
        .chain(VTL.iter().map(|(t, _)| ((*t).to_owned(), "x".to_owned())))
        .collect();
        let r = Renderer::from_templates(files, "test".into()).unwrap();
        let e = r.render(&config, &Ids::default()).unwrap_err().to_string();
        assert!(
            e.starts_with("iot/acme-live-admins.json: IoT policy for group \"admins\" is 2"),
            "{e}"
        );
        assert!(e.ends_with("IoT allows at most 2048"), "{e}");
    }
}
