//! The GraphQL API as the rendered system defines it: the schema's fields and their auth
//! directives, the resolver templates (NONE data source) and how one field is resolved through
//! them, and AppSync's error shape. No I/O: the HTTP endpoint and the realtime WebSocket call in.
//!
//! AppSync's rules followed here:
//! - Auth per field: a field's auth directives (`@aws_iam`, `@aws_cognito_user_pools`, …) name the
//!   modes that may call it; without any, its type's directives; without any, the API's default
//!   mode. The type a field returns is checked the same way
//!   (https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html, "Using additional
//!   authorization modes"). A refused field is `null` with an `Unauthorized` error
//!   "Not Authorized to access F on type T".
//! - NONE data source: the request template's `payload` becomes `$ctx.result` of the response
//!   template (https://docs.aws.amazon.com/appsync/latest/devguide/resolver-mapping-template-reference-none.html).
//! - `$extensions.setSubscriptionFilter` / `setSubscriptionInvalidationFilter` only in a
//!   subscription's response template, `invalidateSubscriptions` only in a mutation's
//!   (https://docs.aws.amazon.com/appsync/latest/devguide/extensions.html).
//! - `AWSJSON` arguments arrive as JSON text and reach the resolver parsed; `AWSJSON` results are
//!   sent as JSON text (https://docs.aws.amazon.com/appsync/latest/devguide/scalars.html).

use std::collections::BTreeMap;

use groupcast_vtl::{AuthType, Context, Template, TemplateError};
use serde_json::{Map, Value as Json, json};

use super::parse::{self, Field, OpKind, TypeDef};
use crate::auth::{Authenticated, Identity};
use crate::system::{AuthMode, GraphqlSystem};

/// One GraphQL error, in AppSync's shape (`path`, `data`, `errorType`, `errorInfo`, `locations`,
/// `message`).
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub error_type: String,
    pub message: String,
    pub path: Option<Vec<String>>,
    pub location: Option<(usize, usize)>,
    /// `data` and `errorInfo` (boxed: errors travel in `Result`s and are rarely this rich).
    pub data: Box<Json>,
    pub error_info: Box<Json>,
}

impl GqlError {
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> GqlError {
        GqlError {
            error_type: error_type.into(),
            message: message.into(),
            path: None,
            location: None,
            data: Box::new(Json::Null),
            error_info: Box::new(Json::Null),
        }
    }

    fn at(mut self, field: &Field) -> GqlError {
        self.path = Some(vec![field.key().to_owned()]);
        self.location = Some((field.line, field.column));
        self
    }

    fn from_template(e: &TemplateError, field: &Field) -> GqlError {
        GqlError {
            // A template error without a type: AppSync leaves errorType out; we say which kind.
            error_type: e
                .error_type
                .clone()
                .unwrap_or_else(|| "MappingTemplate".into()),
            message: e.message.clone(),
            path: None,
            location: None,
            data: Box::new(e.data.clone()),
            error_info: Box::new(e.error_info.clone()),
        }
        .at(field)
    }

    pub fn to_json(&self) -> Json {
        json!({
            "path": self.path,
            "data": self.data,
            "errorType": self.error_type,
            "errorInfo": self.error_info,
            "locations": self.location.map(|(line, column)| vec![json!({"line": line, "column": column, "sourceName": null})]).unwrap_or_default(),
            "message": self.message,
        })
    }
}

/// A schema field's resolver: its parsed templates.
#[derive(Debug)]
struct Resolver {
    request: Template,
    response: Template,
}

/// What resolving one mutation field produced.
#[derive(Debug)]
pub struct Resolved {
    /// The field's value (the response template's output), before the selection set.
    pub value: Json,
    /// `$extensions.invalidateSubscriptions` calls.
    pub invalidations: Vec<Json>,
}

/// What running a subscription field's templates produced: the filters to keep.
#[derive(Debug)]
pub struct SubscribeOutcome {
    pub filter: Option<Json>,
    pub invalidation_filter: Option<Json>,
}

/// The API: schema, auth and resolvers. Built once per stack.
#[derive(Debug)]
pub struct Api {
    types: BTreeMap<String, TypeDef>,
    resolvers: BTreeMap<(String, String), Resolver>,
    modes: Vec<AuthMode>,
}

fn directive_mode(name: &str) -> Option<AuthMode> {
    Some(match name {
        "aws_api_key" => AuthMode::ApiKey,
        "aws_iam" => AuthMode::Iam,
        "aws_cognito_user_pools" | "aws_auth" => AuthMode::Cognito,
        "aws_oidc" => AuthMode::Oidc,
        "aws_lambda" => AuthMode::Lambda,
        _ => return None,
    })
}

/// `$util.authType()` of a mode.
pub fn auth_type(mode: AuthMode) -> AuthType {
    match mode {
        AuthMode::ApiKey => AuthType::ApiKey,
        AuthMode::Iam => AuthType::Iam,
        AuthMode::Cognito => AuthType::UserPool,
        AuthMode::Oidc => AuthType::Oidc,
        AuthMode::Lambda => AuthType::Lambda,
    }
}

/// `$ctx.identity` for a GraphQL resolver: null for API keys; a Lambda authorizer's context is
/// `resolverContext` (https://docs.aws.amazon.com/appsync/latest/devguide/resolver-context-reference.html).
pub fn identity_json(identity: &Identity) -> Json {
    match identity {
        Identity::ApiKey => Json::Null,
        Identity::Lambda(l) => json!({"resolverContext": l.handler_context}),
        other => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

impl Api {
    /// The API of `system`: its schema parsed, each `Type.field.{request,response}.vtl` pair
    /// parsed. Errors name the file and the rule.
    pub fn new(system: &GraphqlSystem) -> Result<Api, String> {
        let types = parse::schema(&system.schema).map_err(|e| {
            format!(
                "graphql/schema.graphql:{}:{}: {}",
                e.line, e.column, e.message
            )
        })?;
        let mut resolvers = BTreeMap::new();
        for (name, text) in &system.templates {
            let Some(stem) = name.strip_suffix(".request.vtl") else {
                continue;
            };
            let mut parts = stem.splitn(2, '.');
            let (Some(t), Some(f)) = (parts.next(), parts.next()) else {
                return Err(format!("graphql/{name}: expected Type.field.request.vtl"));
            };
            let response_name = format!("{stem}.response.vtl");
            let response = system.templates.get(&response_name).ok_or_else(|| {
                format!("graphql/{name}: its response template {response_name} is missing")
            })?;
            let parse_one = |n: &str, text: &str| {
                Template::parse(text)
                    .map_err(|e| format!("graphql/{n}:{}:{}: {}", e.line, e.column, e.message))
            };
            resolvers.insert(
                (t.to_owned(), f.to_owned()),
                Resolver {
                    request: parse_one(name, text)?,
                    response: parse_one(&response_name, response)?,
                },
            );
        }
        if system.auth_modes.is_empty() {
            return Err("graphql.auth_modes: the API needs at least one auth mode".into());
        }
        Ok(Api {
            types,
            resolvers,
            modes: system.auth_modes.clone(),
        })
    }

    /// Every mode the API accepts (the connection and a request authenticate with one of them).
    pub fn modes(&self) -> &[AuthMode] {
        &self.modes
    }

    fn modes_of(&self, directives: &[parse::Directive]) -> Vec<AuthMode> {
        directives
            .iter()
            .filter_map(|d| directive_mode(&d.name))
            .collect()
    }

    /// The modes that may call `type_name.field`, and the field's definition; `None` when the
    /// schema has no such field.
    pub fn field_modes(&self, type_name: &str, field: &str) -> Option<Vec<AuthMode>> {
        let t = self.types.get(type_name)?;
        let f = t.fields.get(field)?;
        let mut modes = self.modes_of(&f.directives);
        if modes.is_empty() {
            modes = self.modes_of(&t.directives);
        }
        if modes.is_empty() {
            modes = vec![self.modes[0]];
        }
        // The returned type's own directives, when it has any, must admit the mode too.
        if let Some(ret) = self.types.get(&f.type_name) {
            let ret_modes = self.modes_of(&ret.directives);
            if !ret_modes.is_empty() {
                modes.retain(|m| ret_modes.contains(m));
            }
        }
        modes.retain(|m| self.modes.contains(m));
        Some(modes)
    }

    /// Whether `caller` may call `type_name.field`; the error AppSync gives when not.
    pub fn authorize(
        &self,
        type_name: &str,
        field: &Field,
        caller: &Authenticated,
    ) -> Result<(), GqlError> {
        let refused = || {
            GqlError::new(
                "Unauthorized",
                format!(
                    "Not Authorized to access {} on type {type_name}",
                    field.name
                ),
            )
            .at(field)
        };
        let modes = self.field_modes(type_name, &field.name).ok_or_else(|| {
            GqlError::new(
                "ValidationError",
                format!(
                    "Validation error of type FieldUndefined: Field '{}' in type '{type_name}' is undefined",
                    field.name
                ),
            )
            .at(field)
        })?;
        if !modes.contains(&caller.mode) {
            return Err(refused());
        }
        // @aws_cognito_user_pools(cognito_groups: [...]) / @aws_auth: the caller's groups must
        // include one of them.
        let def = &self.types[type_name].fields[&field.name];
        for d in &def.directives {
            if directive_mode(&d.name) == Some(AuthMode::Cognito)
                && caller.mode == AuthMode::Cognito
                && let Some(allowed) = d.args.get("cognito_groups").and_then(Json::as_array)
            {
                let groups = match &caller.identity {
                    Identity::Cognito(c) => c.groups.clone().unwrap_or_default(),
                    _ => Vec::new(),
                };
                if !allowed
                    .iter()
                    .any(|g| g.as_str().is_some_and(|g| groups.iter().any(|x| x == g)))
                {
                    return Err(refused());
                }
            }
        }
        Ok(())
    }

    /// The subscription fields `@aws_subscribe(mutations: [...])` links to `mutation`.
    pub fn subscribers_of(&self, mutation: &str) -> Vec<String> {
        let Some(t) = self.types.get("Subscription") else {
            return Vec::new();
        };
        t.fields
            .iter()
            .filter(|(_, f)| {
                f.directives.iter().any(|d| {
                    d.name == "aws_subscribe"
                        && d.args
                            .get("mutations")
                            .and_then(Json::as_array)
                            .is_some_and(|m| m.iter().any(|x| x.as_str() == Some(mutation)))
                })
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The field's arguments as the resolver sees them: variables substituted, AWSJSON text
    /// parsed. Unknown arguments are a validation error, as AppSync's.
    pub fn arguments(
        &self,
        type_name: &str,
        field: &Field,
        vars: &Map<String, Json>,
    ) -> Result<Json, GqlError> {
        let def = self
            .types
            .get(type_name)
            .and_then(|t| t.fields.get(&field.name));
        let mut args = Map::new();
        for (name, value) in &field.args {
            let arg_type = def.and_then(|d| d.args.get(name)).ok_or_else(|| {
                GqlError::new(
                    "ValidationError",
                    format!(
                        "Validation error of type UnknownArgument: Unknown field argument {name}"
                    ),
                )
                .at(field)
            })?;
            let mut v = value.resolve(vars);
            if arg_type == "AWSJSON"
                && let Json::String(text) = &v
            {
                v = serde_json::from_str(text).map_err(|e| {
                    GqlError::new(
                        "ValidationError",
                        format!("Variable '{name}' has an invalid value: AWSJSON must be JSON text ({e})"),
                    )
                    .at(field)
                })?;
            }
            args.insert(name.clone(), v);
        }
        Ok(Json::Object(args))
    }

    fn context(
        &self,
        type_name: &str,
        field: &Field,
        args: Json,
        caller: &Authenticated,
    ) -> Context {
        let selection: Vec<Json> = field
            .selection
            .iter()
            .map(|f| Json::String(f.name.clone()))
            .collect();
        Context {
            arguments: args,
            identity: identity_json(&caller.identity),
            info: json!({
                "fieldName": field.name,
                "parentTypeName": type_name,
                "variables": {},
                "selectionSetList": selection,
            }),
            auth_type: auth_type(caller.mode),
            ..Context::default()
        }
    }

    /// Runs the request then the response template of `type_name.field` (NONE data source).
    /// Returns the response outcome's value and extensions.
    fn run(
        &self,
        type_name: &str,
        field: &Field,
        args: Json,
        caller: &Authenticated,
    ) -> Result<Option<(Json, groupcast_vtl::Extensions)>, GqlError> {
        let Some(r) = self
            .resolvers
            .get(&(type_name.to_owned(), field.name.clone()))
        else {
            return Ok(None);
        };
        let mut ctx = self.context(type_name, field, args, caller);
        let req = r.request.evaluate(&ctx);
        if let Some(e) = &req.error {
            return Err(GqlError::from_template(e, field));
        }
        let req_json = req.json.unwrap_or(Json::Null);
        if req.returned {
            // #return in a request template skips the data source and the response template.
            return Ok(Some((req_json, req.extensions)));
        }
        if req_json.get("version").and_then(Json::as_str) != Some("2018-05-29") {
            return Err(GqlError::new(
                "MappingTemplate",
                "the NONE data source's request needs \"version\": \"2018-05-29\"",
            )
            .at(field));
        }
        ctx.result = req_json.get("payload").cloned().unwrap_or(Json::Null);
        ctx.stash = req.stash;
        let resp = r.response.evaluate(&ctx);
        if let Some(e) = &resp.error {
            return Err(GqlError::from_template(e, field));
        }
        if let Some(e) = resp.appended_errors.first() {
            return Err(GqlError::from_template(e, field));
        }
        let violations = resp.extensions.limit_violations();
        if !violations.is_empty() {
            return Err(GqlError::new("ExtensionsError", violations.join("; ")).at(field));
        }
        Ok(Some((resp.json.unwrap_or(Json::Null), resp.extensions)))
    }

    /// Resolves one query or mutation field.
    pub fn resolve(
        &self,
        kind: OpKind,
        field: &Field,
        vars: &Map<String, Json>,
        caller: &Authenticated,
    ) -> Result<Resolved, GqlError> {
        let type_name = kind.type_name();
        self.authorize(type_name, field, caller)?;
        let args = self.arguments(type_name, field, vars)?;
        match self.run(type_name, field, args, caller)? {
            None => Ok(Resolved {
                value: Json::Null,
                invalidations: Vec::new(),
            }),
            Some((value, ext)) => {
                if (kind != OpKind::Mutation && !ext.invalidate_subscriptions.is_empty())
                    || !ext.subscription_filters.is_empty()
                    || !ext.subscription_invalidation_filters.is_empty()
                {
                    return Err(GqlError::new(
                        "ExtensionsError",
                        "setSubscriptionFilter and setSubscriptionInvalidationFilter belong in a subscription's response template, invalidateSubscriptions in a mutation's",
                    )
                    .at(field));
                }
                Ok(Resolved {
                    value,
                    invalidations: ext.invalidate_subscriptions,
                })
            }
        }
    }

    /// Authorizes and runs a subscription field's templates at subscribe time.
    pub fn subscribe(
        &self,
        field: &Field,
        vars: &Map<String, Json>,
        caller: &Authenticated,
    ) -> Result<SubscribeOutcome, GqlError> {
        self.authorize("Subscription", field, caller)?;
        let args = self.arguments("Subscription", field, vars)?;
        match self.run("Subscription", field, args, caller)? {
            None => Ok(SubscribeOutcome {
                filter: None,
                invalidation_filter: None,
            }),
            Some((_, ext)) => {
                if !ext.invalidate_subscriptions.is_empty() {
                    return Err(GqlError::new(
                        "ExtensionsError",
                        "invalidateSubscriptions belongs in a mutation's response template",
                    )
                    .at(field));
                }
                // The last call wins, as a later $extensions call replaces an earlier one.
                Ok(SubscribeOutcome {
                    filter: ext.subscription_filters.last().cloned(),
                    invalidation_filter: ext.subscription_invalidation_filters.last().cloned(),
                })
            }
        }
    }

    /// `value` shaped by `selection` for a field returning `type_name`: only the selected keys
    /// (under their aliases), `__typename` answered, `AWSJSON` as JSON text.
    pub fn select(&self, type_name: &str, selection: &[Field], value: &Json) -> Json {
        if selection.is_empty() || value.is_null() {
            return value.clone();
        }
        if let Json::Array(items) = value {
            return Json::Array(
                items
                    .iter()
                    .map(|v| self.select(type_name, selection, v))
                    .collect(),
            );
        }
        let Json::Object(obj) = value else {
            return Json::Null;
        };
        let fields = self.types.get(type_name).map(|t| &t.fields);
        let mut out = Map::new();
        for f in selection {
            if f.name == "__typename" {
                out.insert(f.key().to_owned(), Json::String(type_name.to_owned()));
                continue;
            }
            let v = obj.get(&f.name).cloned().unwrap_or(Json::Null);
            let ftype = fields
                .and_then(|fs| fs.get(&f.name))
                .map(|d| d.type_name.as_str())
                .unwrap_or("");
            let v = match (ftype, v) {
                ("AWSJSON", Json::String(s)) => Json::String(s),
                ("AWSJSON", Json::Null) => Json::Null,
                ("AWSJSON", other) => Json::String(other.to_string()),
                (_, other) => self.select(ftype, &f.selection, &other),
            };
            out.insert(f.key().to_owned(), v);
        }
        Json::Object(out)
    }

    /// The type `type_name.field` returns.
    pub fn return_type(&self, type_name: &str, field: &str) -> Option<&str> {
        Some(
            self.types
                .get(type_name)?
                .fields
                .get(field)?
                .type_name
                .as_str(),
        )
    }
}
