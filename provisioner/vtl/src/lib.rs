//! groupcast's Velocity (AppSync VTL) interpreter and AppSync's enhanced subscription filters, for
//! running the rendered resolver templates without AWS (the local stack, issue 11).
//!
//! No Rust crate evaluates Velocity, so this crate implements the subset groupcast's templates use
//! (see [`parser`] for the grammar and [`unsupported`] for the check that a template stays inside
//! it), with AppSync's `$util`, `$ctx`/`$context` and `$extensions`, and Java's value semantics
//! where the templates rely on them. `provisioner/tests/suite/vtl.rs` proves it agrees with
//! amplify-appsync-simulator's `VelocityTemplate` on every template and input of the isolation
//! harness.
//!
//! ## The subset
//! - Directives: `#set` (to a variable, a map key `$a.b` or an index `$a[i]`), `#if`/`#elseif`/
//!   `#else`/`#end`, `#foreach` (lists, map values, ranges `[1..n]`; `$foreach.hasNext/index/
//!   count/first/last`), `#break`, `#stop`, `#return` and `#return(value)`, the `#{name}` forms.
//! - Comments `##` and `#* *#`, unparsed `#[[ ]]#`.
//! - References `$a`, `$!a`, `${a}`, `$!{a}`, properties `$a.b`, methods `$a.m(…)`, indexes
//!   `$a[i]`; a null reference renders as its own text (`$!` renders nothing).
//! - Expressions: `null true false`, integers and decimals, `'literal'` and `"interpolated $a"`
//!   strings, lists, maps, `! && || == != < <= > >= + - * / %` and `not and or eq ne lt le gt ge`.
//! - Methods (Java's): strings `length isEmpty contains startsWith endsWith equals
//!   equalsIgnoreCase indexOf lastIndexOf substring toLowerCase toUpperCase trim concat replace
//!   toString`; lists `size isEmpty contains containsAll indexOf get add addAll remove clear`;
//!   maps `get put putAll containsKey containsValue keySet values size isEmpty remove clear`.
//! - `$util`: `qr quiet toJson parseJson autoId error appendError unauthorized validate isNull
//!   isNullOrEmpty isNullOrBlank defaultIfNull defaultIfNullOrEmpty defaultIfNullOrBlank isString
//!   isNumber isBoolean isList isMap typeOf matches authType`, and
//!   `$util.transform.toSubscriptionFilter`; no other namespaces (`$util.time`…).
//! - `$extensions`: `setSubscriptionFilter setSubscriptionInvalidationFilter
//!   invalidateSubscriptions`, captured into [`Extensions`].
//!
//! Where AppSync's Java Velocity and the simulator's JavaScript engine differ, we follow Java
//! (no template of ours depends on it, which the differential test shows): only null and false
//! are false (`""` and `0` are true); `==` across kinds compares `toString()`; `<`… order
//! numbers only; `+` adds numbers only; `$util.matches` matches the whole string; strings count
//! UTF-16 code units. With `info` given, `$util.unauthorized()` says AppSync's "Not Authorized
//! to access F on type T" (the simulator: "Unauthorized"). As the simulator (and unlike Velocity
//! 1.7), `#set` of a null value assigns it. Identifiers are `[A-Za-z_][A-Za-z0-9_]*` (Velocity
//! also allows `-`).
//!
//! ```
//! use groupcast_vtl::{AuthType, Context, evaluate};
//! let ctx = Context { auth_type: AuthType::UserPool, ..Context::default() };
//! let out = evaluate(r#"#set($x = [1, 2]) {"n": $x.size(), "t": "$util.authType()"}"#, &ctx);
//! assert_eq!(out.json, Some(serde_json::json!({"n": 2, "t": "User Pool Authorization"})));
//! ```

mod eval;
pub mod filter;
mod parser;
mod value;

use serde_json::Value as Json;

pub use parser::ParseError;

use eval::{EXTENSIONS, Eval, FOREACH_PROPERTIES, Halt, METHODS, UTIL_FUNCTIONS, mapping_error};
use parser::{Expr, Node, Reference, Segment};
use value::Value;

/// How the caller was authorized, as `$util.authType()` names it
/// (https://docs.aws.amazon.com/appsync/latest/devguide/utility-helpers-in-util.html: "Returns a
/// String describing the multi-auth type being used by a request").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    #[default]
    ApiKey,
    Iam,
    UserPool,
    Oidc,
    Lambda,
}

impl AuthType {
    /// The text `$util.authType()` returns.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::ApiKey => "API Key Authorization",
            AuthType::Iam => "IAM Authorization",
            AuthType::UserPool => "User Pool Authorization",
            AuthType::Oidc => "Open ID Connect Authorization",
            AuthType::Lambda => "Lambda Authorization",
        }
    }
}

/// What a resolver template sees: `$ctx` (`$context`) and `$util.authType()`. JSON values are
/// given as AppSync would hand them over; `identity` is `null` for API-key callers
/// (https://docs.aws.amazon.com/appsync/latest/devguide/resolver-context-reference.html).
#[derive(Debug, Clone)]
pub struct Context {
    /// `$ctx.arguments` / `$ctx.args`.
    pub arguments: Json,
    /// `$ctx.identity`: claims, sub, issuer… for user pools and OIDC; userArn, accountId…
    /// for IAM; resolverContext for Lambda; null for API keys.
    pub identity: Json,
    /// `$ctx.source`.
    pub source: Json,
    /// `$ctx.result`: the data source's result, in response templates.
    pub result: Json,
    /// `$ctx.stash`: an object shared by a pipeline's templates.
    pub stash: Json,
    /// `$ctx.request.headers`.
    pub request_headers: Json,
    /// `$ctx.info` (fieldName, parentTypeName, variables…), when known.
    pub info: Json,
    /// `$ctx.prev.result`, in pipeline functions.
    pub prev_result: Option<Json>,
    pub auth_type: AuthType,
    /// `$util.autoId()`: a random v4 UUID by default; tests fix it.
    pub auto_id: fn() -> String,
}

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Default for Context {
    fn default() -> Self {
        Context {
            arguments: Json::Object(Default::default()),
            identity: Json::Null,
            source: Json::Null,
            result: Json::Null,
            stash: Json::Object(Default::default()),
            request_headers: Json::Object(Default::default()),
            info: Json::Null,
            prev_result: None,
            auth_type: AuthType::default(),
            auto_id: random_id,
        }
    }
}

impl Context {
    fn to_value(&self) -> Value {
        let args = Value::from_json(&self.arguments);
        let mut entries = vec![
            ("arguments".to_string(), args.clone()),
            ("args".to_string(), args),
            ("identity".to_string(), Value::from_json(&self.identity)),
            ("source".to_string(), Value::from_json(&self.source)),
            ("result".to_string(), Value::from_json(&self.result)),
            ("stash".to_string(), Value::from_json(&self.stash)),
            (
                "request".to_string(),
                Value::map(vec![(
                    "headers".to_string(),
                    Value::from_json(&self.request_headers),
                )]),
            ),
            ("info".to_string(), Value::from_json(&self.info)),
        ];
        if let Some(prev) = &self.prev_result {
            entries.push((
                "prev".to_string(),
                Value::map(vec![("result".to_string(), Value::from_json(prev))]),
            ));
        }
        Value::map(entries)
    }

    /// `$util.unauthorized()`'s message: AppSync names the field ("Not Authorized to access
    /// publish on type Mutation"); without `info` we cannot, and say "Unauthorized" as the
    /// simulator does.
    fn unauthorized_message(&self) -> String {
        match (
            self.info.get("fieldName").and_then(Json::as_str),
            self.info.get("parentTypeName").and_then(Json::as_str),
        ) {
            (Some(f), Some(t)) => format!("Not Authorized to access {f} on type {t}"),
            _ => "Unauthorized".to_string(),
        }
    }
}

/// An error a template raised (`$util.error`, `$util.unauthorized`, `$util.validate`) or that
/// evaluating it caused (`MappingTemplate`: output that is not JSON, bad JSON to parseJson, a
/// template we cannot parse, limits exceeded).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    /// `errorType` in the GraphQL error; `None` when the template gave none.
    pub error_type: Option<String>,
    pub message: String,
    pub data: Json,
    pub error_info: Json,
}

/// The `$extensions` calls a template made, in order, each argument as JSON
/// (https://docs.aws.amazon.com/appsync/latest/devguide/extensions.html).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extensions {
    pub subscription_filters: Vec<Json>,
    pub subscription_invalidation_filters: Vec<Json>,
    pub invalidate_subscriptions: Vec<Json>,
}

impl Extensions {
    /// Every way these calls break AppSync's rules for one request: more than
    /// [`INVALIDATE_SUBSCRIPTIONS_MAX_CALLS`](groupcast::limits::INVALIDATE_SUBSCRIPTIONS_MAX_CALLS)
    /// unique `invalidateSubscriptions` calls ("If you exceed this limit, you will receive a
    /// GraphQL error", https://docs.aws.amazon.com/appsync/latest/devguide/extensions.html), and
    /// each filter's [`filter::limit_violations`]. Where each call is allowed (subscription
    /// response templates set filters, mutation response templates invalidate) is the caller's to
    /// check: it knows which template it ran.
    pub fn limit_violations(&self) -> Vec<String> {
        use groupcast::limits::INVALIDATE_SUBSCRIPTIONS_MAX_CALLS;
        let mut v = Vec::new();
        let mut unique: Vec<&Json> = Vec::new();
        for call in &self.invalidate_subscriptions {
            if !unique.contains(&call) {
                unique.push(call);
            }
        }
        if unique.len() > INVALIDATE_SUBSCRIPTIONS_MAX_CALLS {
            v.push(format!(
                "invalidateSubscriptions: {} unique calls, AppSync allows {INVALIDATE_SUBSCRIPTIONS_MAX_CALLS} per request",
                unique.len()
            ));
        }
        let filters = [
            ("setSubscriptionFilter", &self.subscription_filters),
            (
                "setSubscriptionInvalidationFilter",
                &self.subscription_invalidation_filters,
            ),
        ];
        for (name, calls) in filters {
            for (i, f) in calls.iter().enumerate() {
                v.extend(
                    filter::limit_violations(f)
                        .into_iter()
                        .map(|e| format!("{name} call {}: {e}", i + 1)),
                );
            }
        }
        v
    }
}

/// What evaluating a template produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The rendered text, up to where evaluation stopped.
    pub output: String,
    /// The result: the output parsed as JSON, or the `#return` value. `None` on error.
    pub json: Option<Json>,
    /// Whether `#return` ended the template (in a request template: skip the data source).
    pub returned: bool,
    /// The error that ended evaluation.
    pub error: Option<TemplateError>,
    /// Errors added with `$util.appendError` (they do not stop evaluation).
    pub appended_errors: Vec<TemplateError>,
    pub extensions: Extensions,
    /// `$ctx.stash` after evaluation.
    pub stash: Json,
}

/// A parsed template, to evaluate many times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, ParseError> {
        parser::parse(text).map(|nodes| Template { nodes })
    }

    pub fn evaluate(&self, ctx: &Context) -> Outcome {
        let mut ev = Eval::new(ctx);
        let halt = ev.nodes(&self.nodes).err();
        let mut error = None;
        let mut returned = false;
        let mut json = None;
        match halt {
            Some(Halt::Error(e)) => error = Some(*e),
            Some(Halt::Return(v)) => {
                returned = true;
                match v.map_or(Some(Json::Null), |v| v.to_json()) {
                    Some(j) => json = Some(j),
                    None => error = Some(mapping_error("the #return value is too large")),
                }
            }
            None | Some(Halt::Stop) | Some(Halt::Break) => {
                match serde_json::from_str::<Json>(ev.out.trim()) {
                    Ok(j) => json = Some(j),
                    // The text AppSync (and the simulator) give a NONE data source's request that
                    // is not JSON.
                    Err(_) => {
                        error = Some(mapping_error(format!(
                            "Unable to convert {} to class com.amazonaws.deepdish.transform.model.lambda.LambdaVersionedConfig.",
                            ev.out
                        )))
                    }
                }
            }
        }
        let stash = ev.ctx_value.get("stash").to_json().unwrap_or(Json::Null);
        Outcome {
            output: ev.out,
            json,
            returned,
            error,
            appended_errors: ev.appended,
            extensions: ev.extensions,
            stash,
        }
    }
}

/// Parses and evaluates `template`; a parse error is a `MappingTemplate` error in the outcome.
pub fn evaluate(template: &str, ctx: &Context) -> Outcome {
    match Template::parse(template) {
        Ok(t) => t.evaluate(ctx),
        Err(e) => Outcome {
            output: String::new(),
            json: None,
            returned: false,
            error: Some(mapping_error(format!("the template does not parse: {e}"))),
            appended_errors: Vec::new(),
            extensions: Extensions::default(),
            stash: ctx.stash.clone(),
        },
    }
}

/// `$ctx` fields we provide.
const CTX_FIELDS: &[&str] = &[
    "arguments",
    "args",
    "identity",
    "source",
    "result",
    "stash",
    "request",
    "info",
    "prev",
];

/// Every use in `template` of Velocity this crate does not implement: a `$util` function or
/// namespace, an `$extensions` call, a method, a `$ctx` field or a `$foreach` property we do not
/// know. Empty when the template stays inside the supported subset; `Err` when it does not parse.
pub fn unsupported(template: &str) -> Result<Vec<String>, ParseError> {
    let nodes = parser::parse(template)?;
    let mut found = Vec::new();
    walk_nodes(&nodes, &mut found);
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk_nodes(nodes: &[Node], found: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Stop | Node::Return(None) => {}
            Node::Ref(r) => walk_ref(r, found),
            Node::Set(r, e) => {
                walk_ref(r, found);
                walk_expr(e, found);
            }
            Node::If(branches, otherwise) => {
                for (c, body) in branches {
                    walk_expr(c, found);
                    walk_nodes(body, found);
                }
                if let Some(body) = otherwise {
                    walk_nodes(body, found);
                }
            }
            Node::Foreach(_, e, body) => {
                walk_expr(e, found);
                walk_nodes(body, found);
            }
            Node::Return(Some(e)) => walk_expr(e, found),
        }
    }
}

fn walk_expr(e: &Expr, found: &mut Vec<String>) {
    match e {
        Expr::Null | Expr::Bool(_) | Expr::Int(_) | Expr::Float(_) | Expr::Str(_) => {}
        Expr::Interp(nodes) => walk_nodes(nodes, found),
        Expr::List(items) => items.iter().for_each(|i| walk_expr(i, found)),
        Expr::Range(a, b) | Expr::Bin(_, a, b) => {
            walk_expr(a, found);
            walk_expr(b, found);
        }
        Expr::Map(entries) => {
            for (k, v) in entries {
                walk_expr(k, found);
                walk_expr(v, found);
            }
        }
        Expr::Ref(r) => walk_ref(r, found),
        Expr::Not(e) | Expr::Neg(e) => walk_expr(e, found),
    }
}

fn walk_ref(r: &Reference, found: &mut Vec<String>) {
    let at = format!("line {}, column {}", r.line, r.column);
    let mut segs = r.path.iter();
    match r.name.as_str() {
        "util" | "utils" => match segs.next() {
            Some(Segment::Method(m, _)) if UTIL_FUNCTIONS.contains(&m.as_str()) => {}
            Some(Segment::Method(m, _)) => found.push(format!("$util.{m}() ({at})")),
            Some(Segment::Prop(p))
                if p == "transform"
                    && matches!(segs.next(), Some(Segment::Method(m, _)) if m == "toSubscriptionFilter") =>
                {}
            Some(Segment::Prop(p)) => {
                // The namespace is the finding; its functions are not methods of a value.
                found.push(format!("$util.{p} namespace ({at})"));
                return;
            }
            _ => found.push(format!("$util used as a value ({at})")),
        },
        "extensions" => match segs.next() {
            Some(Segment::Method(m, _)) if EXTENSIONS.contains(&m.as_str()) => {}
            Some(Segment::Method(m, _)) => found.push(format!("$extensions.{m}() ({at})")),
            _ => found.push(format!("$extensions used as a value ({at})")),
        },
        "ctx" | "context" => match segs.next() {
            Some(Segment::Prop(p)) if CTX_FIELDS.contains(&p.as_str()) => {}
            Some(Segment::Prop(p)) => found.push(format!("$ctx.{p} ({at})")),
            Some(_) => found.push(format!("$ctx used other than by field ({at})")),
            None => {}
        },
        "foreach" => match segs.next() {
            Some(Segment::Prop(p)) if FOREACH_PROPERTIES.contains(&p.as_str()) => {}
            Some(Segment::Prop(p)) => found.push(format!("$foreach.{p} ({at})")),
            _ => found.push(format!("$foreach used other than by property ({at})")),
        },
        _ => {}
    }
    for s in r.path.iter() {
        match s {
            Segment::Method(m, args) => {
                // $util.x() and $extensions.x() were checked above.
                let util = matches!(r.name.as_str(), "util" | "utils");
                let head = (std::ptr::eq(s, &r.path[0]) && (util || r.name == "extensions"))
                    || (util
                        && r.path.len() > 1
                        && std::ptr::eq(s, &r.path[1])
                        && matches!(&r.path[0], Segment::Prop(p) if p == "transform"));
                if !head && !METHODS.contains(&m.as_str()) {
                    found.push(format!(".{m}() ({at})"));
                }
                args.iter().for_each(|a| walk_expr(a, found));
            }
            Segment::Index(e) => walk_expr(e, found),
            Segment::Prop(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
