//! AppSync Events on the local stack: HTTPS `POST /event` (publish) and WSS `/event/realtime`
//! (subscribe, unsubscribe, publish), with AppSync's wire protocol, running each namespace's
//! rendered handler (`onSubscribe` / `onPublish`) in QuickJS (groupcast-appsync-js).
//!
//! - [`channel`]: channel path rules and wildcard matching.
//! - [`api`]: who may connect / subscribe / publish (through [`crate::auth::Authenticator`] only,
//!   with the API's connection modes and each namespace's modes), the handler verdicts, the
//!   decisions logged.
//! - [`hub`]: live subscriptions and the fan-out of a publish (one handler run per publish, none
//!   per delivery).
//! - [`ws`]: the realtime protocol of one connection.
//! - this module: the listener, TLS, HTTP routing and the HTTP publish.
//!
//! HTTP (https://docs.aws.amazon.com/appsync/latest/eventapi/publish-http.html): `POST /event`
//! with `{"channel","events":[JSON strings]}` and the caller's auth headers answers 200
//! `{"failed":[…],"successful":[{"identifier","index"}]}`. Errors answer with the status, an
//! `x-amzn-errortype` header naming AppSync's error type and the body
//! `{"errors":[{"errorType","message"}]}` (aws-protocols.md §1: the body amplify-js reads): 400
//! `BadRequestException` (not JSON, a broken channel or events rule, over 1.2 MB), 401
//! `UnauthorizedException` (no, unusable or invalid credentials, or the handler's
//! `util.unauthorized()`), 403 (`InvalidSignatureException` for a SigV4 signature that does not
//! verify; `MessageProcessingError` for the handler's `util.error`), 404 `NotFoundException`
//! (unknown path or namespace). Every answer
//! carries CORS headers so a browser page on another origin can publish, as AppSync allows.

pub mod api;
pub mod channel;
pub mod hub;
pub mod ws;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::Stack;
use crate::log::Outcome;
use api::{Api, ApiError, Caller};

/// The subprotocol AppSync's realtime endpoint speaks, echoed on the upgrade
/// (event-api-websocket-protocol.html, "Connect").
pub const SUBPROTOCOL: &str = "aws-appsync-event-ws";
/// The prefix of the subprotocol carrying the base64url auth object.
pub const HEADER_PREFIX: &str = "header-";
/// AppSync's keep-alive period (event-api-websocket-protocol.html: `ka` "every 60 seconds").
pub const KA_INTERVAL: Duration = Duration::from_secs(60);
/// The `connectionTimeoutMs` AppSync acknowledges with (event-api-websocket-protocol.html).
pub const CONNECTION_TIMEOUT_MS: u64 = 300_000;
/// A realtime connection's longest life: AppSync ends it after 24 hours
/// (event-api-websocket-protocol.html; aws-protocols.md §2 "Connect").
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A request (HTTP body or WebSocket message) is at most 1.2 MB
/// (https://docs.aws.amazon.com/general/latest/gr/appsync.html, Event API quotas).
pub use groupcast::limits::EVENTS_REQUEST_MAX_BYTES as REQUEST_MAX_BYTES;

/// How the endpoint behaves where tests need it to differ from AppSync's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Time between two `ka` messages.
    pub ka_interval: Duration,
    /// `connectionTimeoutMs` in `connection_ack`.
    pub connection_timeout_ms: u64,
    /// Handler instances per namespace (concurrent handler runs). Default: the machine's cores.
    pub handler_instances: usize,
    /// How long a WebSocket connection may live before it is closed (AppSync: 24 hours,
    /// event-api-websocket-protocol.html, "Connect").
    pub max_connection_lifetime: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ka_interval: KA_INTERVAL,
            connection_timeout_ms: CONNECTION_TIMEOUT_MS,
            handler_instances: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
            max_connection_lifetime: MAX_CONNECTION_LIFETIME,
        }
    }
}

/// Serves the Event API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) -> std::io::Result<()> {
    serve_with(listener, stack, Options::default()).await
}

/// [`serve`] with [`Options`]. Fails at once (before serving) when a namespace's handler does not
/// load or the system has no Event API; after that, only the task's drop ends it.
pub async fn serve_with(
    listener: TcpListener,
    stack: Arc<Stack>,
    options: Options,
) -> std::io::Result<()> {
    let api = Arc::new(Api::new(stack, options.handler_instances).map_err(std::io::Error::other)?);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors and the like: wait and go on; one failed accept ends nothing.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            match api.stack.tls.clone() {
                Some(tls) => {
                    if let Ok(stream) = tls.accept(tcp).await {
                        serve_connection(stream, peer, api, options).await;
                    }
                }
                None => serve_connection(tcp, peer, api, options).await,
            }
        });
    }
}

async fn serve_connection<S>(io: S, peer: SocketAddr, api: Arc<Api>, options: Options)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(route(req, peer, api, options).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

type Body = Full<Bytes>;

fn with_cors(mut resp: Response<Body>, req_headers: &hyper::HeaderMap) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, OPTIONS"),
    );
    // `*` does not cover `Authorization` in browsers: name what the preflight asked for.
    let asked = req_headers
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    h.insert("access-control-allow-headers", asked);
    // As AppSync: a page may read the error type and request id.
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-amzn-RequestId,x-amzn-ErrorType"),
    );
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// AppSync's error answer: the status, `x-amzn-errortype`, `{"errors":[{errorType, message}]}`.
fn error_response(e: &ApiError) -> Response<Body> {
    let mut resp = json_response(e.status, &json!({ "errors": e.errors() }));
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(e.error_type));
    resp
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    api: Arc<Api>,
    options: Options,
) -> Response<Body> {
    let req_headers = req.headers().clone();
    let resp = match (req.method(), req.uri().path()) {
        (_, "/event/realtime") => upgrade(req, peer, api, options),
        (&Method::POST, "/event") => publish(req, peer, api).await,
        (&Method::OPTIONS, "/event") => Response::new(Full::new(Bytes::new())),
        (method, path) => error_response(&ApiError {
            status: 404,
            error_type: "NotFoundException",
            message: format!(
                "{method} {path}: the Event API serves POST /event and /event/realtime"
            ),
        }),
    };
    with_cors(resp, &req_headers)
}

fn headers_of(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.to_owned()))
        })
        .collect()
}

async fn publish(req: Request<Incoming>, peer: SocketAddr, api: Arc<Api>) -> Response<Body> {
    let headers = headers_of(&req);
    let body = match Limited::new(req.into_body(), REQUEST_MAX_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let why = format!("body: a publish request is at most {REQUEST_MAX_BYTES} bytes");
            api.decide("publish", "/event", None, Outcome::Refused, Some(&why));
            return error_response(&ApiError::bad_request(why));
        }
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => {
            let why = "body: a JSON object {\"channel\", \"events\"} is required";
            api.decide("publish", "/event", None, Outcome::Refused, Some(why));
            return error_response(&ApiError::bad_request(why));
        }
    };
    let caller = Caller {
        headers: &headers,
        source_ip: peer.ip(),
    };
    match api
        .publish(caller, &body, parsed.get("channel"), parsed.get("events"))
        .await
    {
        Ok(published) => {
            let (successful, failed) = published.body();
            json_response(200, &json!({"failed": failed, "successful": successful}))
        }
        Err(e) => error_response(&e),
    }
}

/// The auth object of the `header-<base64url(JSON)>` subprotocol (event-api-websocket-protocol.html,
/// "Connect": base64url without padding), as lower-case headers; empty when absent or unreadable
/// (the connect is then refused by the authenticator).
pub fn auth_from_subprotocols(offered: &[&str]) -> BTreeMap<String, String> {
    offered
        .iter()
        .find_map(|p| p.strip_prefix(HEADER_PREFIX))
        .and_then(|b64| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.as_object().map(ws::header_map))
        .unwrap_or_default()
}

fn upgrade(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    api: Arc<Api>,
    options: Options,
) -> Response<Body> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let is_upgrade = req.method() == Method::GET
        && header("upgrade").eq_ignore_ascii_case("websocket")
        && header("connection")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let key = header("sec-websocket-key");
    if !is_upgrade || key.is_empty() {
        return error_response(&ApiError::bad_request(
            "/event/realtime: a WebSocket upgrade (GET, Upgrade: websocket) is required",
        ));
    }
    let protocols = header("sec-websocket-protocol");
    let offered: Vec<&str> = protocols.split(',').map(str::trim).collect();
    if !offered.contains(&SUBPROTOCOL) {
        return error_response(&ApiError::bad_request(format!(
            "sec-websocket-protocol: {SUBPROTOCOL} is required"
        )));
    }
    let conn_headers = auth_from_subprotocols(&offered);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(REQUEST_MAX_BYTES);
        config.max_frame_size = Some(REQUEST_MAX_BYTES);
        // Clients send little; tungstenite zeroes its read buffer up to this size on every read,
        // and keeps one per connection (128 KiB by default): 4 KiB, as its docs advise for many
        // connections of low inbound traffic.
        config.read_buffer_size = 4 * 1024;
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        ws::serve(ws, api, conn_headers, peer.ip(), options).await;
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert("connection", HeaderValue::from_static("upgrade"));
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert("sec-websocket-accept", accept);
    }
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    resp
}
