//! AppSync GraphQL pubsub on the local stack: HTTPS `POST /graphql` and the realtime WebSocket,
//! running the rendered VTL (groupcast-vtl) and its enhanced filters.
//!
//! - [`parse`]: the GraphQL operations clients send and the rendered schema's types and auth
//!   directives.
//! - [`api`]: the schema's auth rules, resolving a field through its request and response
//!   templates (NONE data source), selection sets, AppSync's error shape.
//! - [`hub`]: the open subscriptions; delivery to matching filters, invalidation.
//! - [`realtime`]: AppSync's GraphQL realtime protocol over WebSocket.
//!
//! Paths (one port): `POST /graphql` (queries and mutations); the realtime WebSocket on
//! `GET /graphql/realtime` — what the official aws-amplify client derives for any endpoint that is
//! not an `*.appsync-api.*.amazonaws.com` host (`getRealtimeEndpointUrl` in
//! `@aws-amplify/api-graphql`'s `AWSWebSocketProvider/appsyncUrl.ts`: a "custom domain" gets
//! `/realtime` appended and `https://`/`http://` become `wss://`), as AppSync serves custom
//! domains (https://docs.aws.amazon.com/appsync/latest/devguide/custom-domain-name.html) — and on
//! `GET /graphql`, the path of AppSync's own realtime host, which groupcast's subscriber uses for
//! a plain `http://` endpoint.

pub mod api;
pub mod hub;
pub mod parse;
pub mod realtime;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value as Json, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::Stack;
use crate::auth::{AuthFailureKind, AuthRequest};
use crate::log::{Decision, Outcome};
use api::{Api, GqlError};
use hub::Hub;
use parse::OpKind;

/// The HTTP request path of queries and mutations.
pub const GRAPHQL_PATH: &str = "/graphql";
/// The realtime path aws-amplify derives for a non-AppSync host (`{endpoint}/realtime`).
pub const REALTIME_PATH: &str = "/graphql/realtime";
/// The largest request body read (AppSync's request limit is far below it for pubsub).
const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// What every connection of the GraphQL endpoint shares.
#[derive(Debug)]
pub struct Service {
    pub stack: Arc<Stack>,
    pub api: Api,
    pub hub: Hub,
    next_connection: AtomicU64,
}

impl Service {
    /// The service of `stack`'s `[graphql]`. Errors name the file or setting at fault.
    pub fn new(stack: Arc<Stack>) -> Result<Service, String> {
        let system = stack
            .system
            .graphql
            .as_ref()
            .ok_or("graphql: the system has no [graphql] API")?;
        let api = Api::new(system)?;
        Ok(Service {
            stack,
            api,
            hub: Hub::default(),
            next_connection: AtomicU64::new(1),
        })
    }

    fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    fn decide(
        &self,
        action: &str,
        target: &str,
        principal: Option<&str>,
        outcome: Outcome,
        reason: Option<&str>,
    ) {
        self.stack.log.decision(Decision {
            transport: "graphql",
            action,
            target,
            principal,
            outcome,
            reason,
        });
    }
}

/// Serves the GraphQL API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    let service = Arc::new(Service::new(stack).map_err(std::io::Error::other)?);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait, never end `serve` for one connection.
                tracing::warn!(error = %e, "graphql: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            match service.stack.tls.clone() {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => serve_connection(tls, peer, service).await,
                    Err(e) => tracing::debug!(error = %e, %peer, "graphql: TLS handshake failed"),
                },
                None => serve_connection(tcp, peer, service).await,
            }
        });
    }
}

async fn serve_connection<S>(io: S, peer: SocketAddr, service: Arc<Service>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, service).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .with_upgrades()
        .await
    {
        tracing::debug!(error = %e, %peer, "graphql: connection ended with an error");
    }
}

/// A JSON response with AppSync's headers.
pub(crate) fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// `{"errors":[…]}` with an HTTP status: a request AppSync refuses before resolving anything.
fn request_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    if let Ok(v) = hyper::header::HeaderValue::from_str(error_type) {
        let mut r = json_response(
            status,
            &json!({"errors": [{"errorType": error_type, "message": message}]}),
        );
        r.headers_mut().insert("x-amzn-errortype", v);
        return r;
    }
    json_response(status, &json!({"errors": [{"message": message}]}))
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    service: Arc<Service>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, GRAPHQL_PATH) => http_request(req, peer, &service).await,
        (Method::GET, GRAPHQL_PATH | REALTIME_PATH) => realtime::upgrade(req, peer, service).await,
        _ => request_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!(
                "{} {path}: the local GraphQL API serves POST {GRAPHQL_PATH} and the realtime WebSocket at {REALTIME_PATH}",
                req.method()
            ),
        ),
    }
}

/// The caller's auth headers, lower-cased.
fn header_map(headers: &hyper::HeaderMap) -> std::collections::BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// A request body `{query, variables, operationName}`.
pub(crate) struct GqlRequest {
    pub query: String,
    pub variables: Map<String, Json>,
    pub operation_name: Option<String>,
}

/// Reads `{query, variables, operationName}`; the error names the field and the rule.
pub(crate) fn gql_request(v: &Json) -> Result<GqlRequest, String> {
    let Some(o) = v.as_object() else {
        return Err("the body must be a JSON object {query, variables, operationName}".into());
    };
    let query = o
        .get("query")
        .and_then(Json::as_str)
        .ok_or("query: must be a string holding the GraphQL document")?
        .to_owned();
    let variables = match o.get("variables") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(m)) => m.clone(),
        Some(_) => return Err("variables: must be a JSON object".into()),
    };
    let operation_name = match o.get("operationName") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err("operationName: must be a string".into()),
    };
    Ok(GqlRequest {
        query,
        variables,
        operation_name,
    })
}

/// The operation `req` names, parsed; or the error AppSync gives (a validation error).
pub(crate) fn pick_operation(req: &GqlRequest) -> Result<parse::Operation, GqlError> {
    let ops = parse::document(&req.query).map_err(|e| {
        let mut g = GqlError::new(
            "InvalidSyntax",
            format!(
                "Invalid Syntax : {} at line {} column {}",
                e.message, e.line, e.column
            ),
        );
        g.location = Some((e.line, e.column));
        g
    })?;
    let mut ops = ops.into_iter();
    match &req.operation_name {
        Some(name) => ops
            .find(|o| o.name.as_deref() == Some(name))
            .ok_or_else(|| {
                GqlError::new(
                    "ValidationError",
                    format!("Unknown operation named '{name}'."),
                )
            }),
        None => {
            let first = ops.next();
            match (first, ops.next()) {
                (Some(op), None) => Ok(op),
                _ => Err(GqlError::new(
                    "ValidationError",
                    "operationName: the document holds several operations; name the one to run",
                )),
            }
        }
    }
}

async fn http_request(
    req: Request<Incoming>,
    peer: SocketAddr,
    service: &Service,
) -> Response<Full<Bytes>> {
    let headers = header_map(req.headers());
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "MalformedHttpRequestException",
                &format!("the request body could not be read: {e}"),
            );
        }
    };
    let gql = match serde_json::from_slice::<Json>(&body)
        .map_err(|e| format!("Invalid JSON payload in POST request: {e}"))
        .and_then(|v| gql_request(&v))
    {
        Ok(g) => g,
        Err(message) => {
            service.decide(
                "request",
                GRAPHQL_PATH,
                None,
                Outcome::Refused,
                Some(&message),
            );
            return request_error(
                StatusCode::BAD_REQUEST,
                "MalformedHttpRequestException",
                &message,
            );
        }
    };
    let op = match pick_operation(&gql) {
        Ok(op) => op,
        Err(e) => {
            service.decide(
                "request",
                GRAPHQL_PATH,
                None,
                Outcome::Refused,
                Some(&e.message),
            );
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"data": null, "errors": [e.to_json()]}),
            );
        }
    };
    if op.kind == OpKind::Subscription {
        let message = "subscriptions are served over the realtime WebSocket, not POST /graphql";
        service.decide(
            "request",
            GRAPHQL_PATH,
            None,
            Outcome::Refused,
            Some(message),
        );
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"data": null, "errors": [GqlError::new("UnsupportedOperation", message).to_json()]}),
        );
    }
    let auth_request = AuthRequest {
        headers: &headers,
        method: "POST",
        path: GRAPHQL_PATH,
        body: &body,
        source_ip: peer.ip(),
        channel: op.fields.first().map(|f| f.name.as_str()),
        operation: gql.operation_name.as_deref(),
    };
    let caller = match service
        .stack
        .auth
        .authenticate(&auth_request, service.api.modes())
        .await
    {
        Ok(c) => c,
        Err(f) => {
            let target = op.fields.first().map_or("", |f| f.name.as_str());
            service.decide("request", target, None, Outcome::Refused, Some(&f.message));
            let (status, error_type) = match f.kind {
                AuthFailureKind::Unauthorized => {
                    (StatusCode::UNAUTHORIZED, "UnauthorizedException")
                }
                AuthFailureKind::Forbidden => (StatusCode::FORBIDDEN, "ForbiddenException"),
            };
            return request_error(status, error_type, &f.message);
        }
    };
    let vars = op.variables_with_defaults(&gql.variables);
    let mut data = Map::new();
    let mut errors = Vec::new();
    for field in &op.fields {
        let type_name = op.kind.type_name();
        let target = format!("{type_name}.{}", field.name);
        match service.api.resolve(op.kind, field, &vars, &caller) {
            Err(e) => {
                service.decide(
                    "mutation",
                    &target,
                    Some(&caller.principal),
                    Outcome::Refused,
                    Some(&e.message),
                );
                data.insert(field.key().to_owned(), Json::Null);
                errors.push(e.to_json());
            }
            Ok(resolved) => {
                service.decide(
                    "mutation",
                    &target,
                    Some(&caller.principal),
                    Outcome::Admitted,
                    None,
                );
                let return_type = service
                    .api
                    .return_type(type_name, &field.name)
                    .unwrap_or_default()
                    .to_owned();
                let selected = service
                    .api
                    .select(&return_type, &field.selection, &resolved.value);
                if op.kind == OpKind::Mutation {
                    publish(service, &field.name, &selected, &caller.principal);
                    for call in &resolved.invalidations {
                        invalidate(service, call, &caller.principal);
                    }
                }
                data.insert(field.key().to_owned(), selected);
            }
        }
    }
    let mut body = json!({"data": data});
    if !errors.is_empty() {
        body["errors"] = Json::Array(errors);
    }
    json_response(StatusCode::OK, &body)
}

/// Delivers a mutation's selected result to the subscriptions `@aws_subscribe` links to it whose
/// filters match: filters test the mutation's returned selection set, and a subscriber receives
/// the fields its own selection set names out of it
/// (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-enhanced-filtering.html).
fn publish(service: &Service, mutation: &str, payload: &Json, principal: &str) {
    let fields = service.api.subscribers_of(mutation);
    if fields.is_empty() || payload.is_null() {
        return;
    }
    let reached = service.hub.deliver(&fields, payload, |sub| {
        let t = service
            .api
            .return_type("Subscription", &sub.field)
            .unwrap_or_default();
        service.api.select(t, &sub.selection, payload)
    });
    service.decide(
        "deliver",
        &format!("Mutation.{mutation}"),
        Some(principal),
        Outcome::Admitted,
        Some(&format!("{} subscriptions matched", reached.len())),
    );
}

/// One `$extensions.invalidateSubscriptions({subscriptionField, payload})` call.
fn invalidate(service: &Service, call: &Json, principal: &str) {
    let (Some(field), Some(payload)) = (
        call.get("subscriptionField").and_then(Json::as_str),
        call.get("payload"),
    ) else {
        service.decide(
            "invalidate",
            "?",
            Some(principal),
            Outcome::Refused,
            Some("invalidateSubscriptions: needs subscriptionField (a string) and payload"),
        );
        return;
    };
    for sub in service.hub.invalidate(field, payload) {
        service.decide(
            "invalidate",
            &format!("Subscription.{field}"),
            Some(&sub.principal),
            Outcome::Admitted,
            Some(&format!("invalidated by {principal}")),
        );
    }
}
