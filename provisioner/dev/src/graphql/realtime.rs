//! AppSync's GraphQL realtime protocol over WebSocket
//! (https://docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html):
//!
//! - Handshake: subprotocol `graphql-ws` (echoed); the connection's auth object (`{"host", …
//!   "Authorization" | "x-api-key" | SigV4 headers}`) as base64 JSON in the `header` query
//!   parameter (with `payload=e30=`), as documented and as groupcast's subscriber sends it, or as a
//!   `header-<base64url>` subprotocol, as aws-amplify 6 sends it (`AWSWebSocketProvider`,
//!   `_initializeWebSocketConnection`). The connection authenticates with any of the API's modes.
//! - `connection_init` → `connection_ack` `{"payload":{"connectionTimeoutMs":300000}}`, then `ka`
//!   at once and every minute; a refused connection gets `connection_error`
//!   (`{"errors":[{"errorType","message","errorCode":401}]}`, which aws-amplify treats as final)
//!   and is closed.
//! - `start` (`{"id","payload":{"data":"{query,variables}","extensions":{"authorization":{…}}}}`):
//!   the subscription's own auth (its field's modes), then its request and response templates;
//!   `start_ack`, or `error` `{"id","payload":{"errors":[{errorType, message, path, locations,
//!   data, errorInfo}]}}` for that id only.
//! - `data` `{"id","type":"data","payload":{"data":{"<field>":{…}}}}` per matching mutation.
//! - `stop` → `complete`.
//! - Invalidation (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-invalidation.html:
//!   AppSync "forcibly unsubscribe[s] and close[s]" the subscription; the client is told
//!   "Subscription complete."): `{"id","type":"complete","payload":{"message":"Subscription complete."}}`,
//!   the subscription removed, and the socket closed once it holds no other subscription, so a
//!   subscription to a group the user keeps on the same socket survives. The `complete` type is
//!   what aws-amplify added handling for when AppSync introduced invalidation
//!   (aws-amplify/amplify-js pull request 9898, "Allow for complete messages to be captured in a
//!   subscription"); the exact frame is not in AWS's documentation, and groupcast's subscriber
//!   accepts the message at the top level or in `payload`.
//! - A frame that is not a JSON object with a known `type`, or a binary frame, gets an `error`
//!   and closes that connection only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as Frame, Utf8Bytes};

use super::api::GqlError;
use super::hub::{Outbound, Sub};
use super::parse::OpKind;
use super::{GRAPHQL_PATH, Service, gql_request, json_response, pick_operation};
use crate::auth::{AuthFailure, AuthRequest, Authenticated};
use crate::log::Outcome;

/// The subprotocol of AppSync's GraphQL realtime protocol.
pub const SUBPROTOCOL: &str = "graphql-ws";
/// `connectionTimeoutMs` in `connection_ack`: AppSync's documented 5 minutes.
pub const CONNECTION_TIMEOUT_MS: u64 = 300_000;
/// How often `ka` is sent (AppSync: about every minute; well inside the timeout).
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// What an invalidated subscription is told.
pub const INVALIDATION_MESSAGE: &str = "Subscription complete.";
/// Subscriptions per connection (AppSync's quota, https://docs.aws.amazon.com/general/latest/gr/appsync.html).
pub const MAX_SUBSCRIPTIONS: usize = 200;
/// The largest frame read (AppSync's 240 KB subscription payload and auth headers fit easily).
const MAX_FRAME_BYTES: usize = 1024 * 1024;

fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(t))
        .ok()
}

/// A JSON object of header values, keys lower-cased; non-string values are refused.
fn auth_headers(v: &Json) -> Option<BTreeMap<String, String>> {
    v.as_object()?
        .iter()
        .map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
        .collect()
}

/// The connection's auth object: the `header` query parameter, else a `header-` subprotocol.
fn connect_headers(
    query: Option<&str>,
    protocols: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let from_query = query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "header").then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    });
    let from_protocol = protocols
        .iter()
        .find_map(|p| p.strip_prefix("header-").map(str::to_owned));
    let Some(encoded) = from_query.or(from_protocol) else {
        return Err("the connection carries no auth: give the base64 auth object in the `header` query parameter or a `header-` subprotocol".into());
    };
    let bytes = decode_b64(&encoded).ok_or("header: not base64")?;
    let v: Json = serde_json::from_slice(&bytes).map_err(|e| format!("header: not JSON: {e}"))?;
    auth_headers(&v).ok_or_else(|| "header: must be a JSON object of string values".into())
}

fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"errors": [{"errorType": "BadRequestException", "message": message}]}),
    )
}

/// Answers a WebSocket upgrade on the realtime path.
pub(super) async fn upgrade(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    service: Arc<Service>,
) -> Response<Full<Bytes>> {
    let h = req.headers();
    let is_upgrade = h
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = h.get(hyper::header::SEC_WEBSOCKET_KEY).cloned() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the realtime endpoint takes a WebSocket upgrade (subprotocol graphql-ws)",
        );
    };
    if !is_upgrade {
        return plain(StatusCode::BAD_REQUEST, "Upgrade: websocket is required");
    }
    let protocols: Vec<String> = h
        .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .collect();
    if !protocols.iter().any(|p| p == SUBPROTOCOL) {
        service.decide(
            "connect",
            "realtime",
            None,
            Outcome::Refused,
            Some("no graphql-ws subprotocol"),
        );
        return plain(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol: graphql-ws is required",
        );
    }
    // The connection's identity, decided now; a refusal is told after the upgrade as
    // connection_error, as AppSync does.
    let auth = match connect_headers(req.uri().query(), &protocols) {
        Err(message) => Err(AuthFailure {
            kind: crate::auth::AuthFailureKind::Unauthorized,
            message,
        }),
        Ok(headers) => {
            let request = AuthRequest {
                headers: &headers,
                method: "POST",
                path: "/graphql/connect",
                body: b"{}",
                source_ip: peer.ip(),
                channel: None,
                operation: None,
            };
            service
                .stack
                .auth
                .authenticate(&request, service.api.modes())
                .await
        }
    };
    match &auth {
        Ok(a) => service.decide(
            "connect",
            "realtime",
            Some(&a.principal),
            Outcome::Admitted,
            None,
        ),
        Err(f) => service.decide(
            "connect",
            "realtime",
            None,
            Outcome::Refused,
            Some(&f.message),
        ),
    }
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut config = WebSocketConfig::default();
                config.max_message_size = Some(MAX_FRAME_BYTES);
                config.max_frame_size = Some(MAX_FRAME_BYTES);
                let ws = WebSocketStream::from_raw_socket(
                    hyper_util::rt::TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                Connection::new(service, peer, auth).run(ws).await;
            }
            Err(e) => tracing::debug!(error = %e, %peer, "graphql: upgrade failed"),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hs = r.headers_mut();
    hs.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    hs.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        hs.insert(hyper::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    hs.insert(
        hyper::header::SEC_WEBSOCKET_PROTOCOL,
        hyper::header::HeaderValue::from_static(SUBPROTOCOL),
    );
    r
}

/// `{"type":"error","id"?,"payload":{"errors":[…]}}`.
fn error_frame(id: Option<&str>, errors: Vec<Json>) -> String {
    let mut f = json!({"type": "error", "payload": {"errors": errors}});
    if let Some(id) = id {
        f["id"] = Json::String(id.to_owned());
    }
    f.to_string()
}

fn simple_error(error_type: &str, message: &str) -> Json {
    json!({"errorType": error_type, "message": message})
}

/// What handling one client frame leads to.
enum Next {
    Continue,
    /// Close the connection (after the frames already queued).
    Close(CloseCode, String),
}

struct Connection {
    service: Arc<Service>,
    id: u64,
    peer: SocketAddr,
    auth: Result<Authenticated, AuthFailure>,
    initialized: bool,
    tx: mpsc::UnboundedSender<Outbound>,
    rx: mpsc::UnboundedReceiver<Outbound>,
}

impl Connection {
    fn new(
        service: Arc<Service>,
        peer: SocketAddr,
        auth: Result<Authenticated, AuthFailure>,
    ) -> Connection {
        let (tx, rx) = mpsc::unbounded_channel();
        Connection {
            id: service.connection_id(),
            service,
            peer,
            auth,
            initialized: false,
            tx,
            rx,
        }
    }

    fn send(&self, text: String) {
        let _ = self.tx.send(Outbound::Text(Utf8Bytes::from(text)));
    }

    async fn run<S>(mut self, ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut sink, mut stream) = ws.split();
        let mut ka = tokio::time::interval(KEEP_ALIVE);
        ka.tick().await;
        let close = loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => break None,
                    Some(Ok(Frame::Text(t))) => match self.on_text(t.as_str()).await {
                        Next::Continue => {}
                        Next::Close(code, reason) => break Some((code, reason)),
                    },
                    Some(Ok(Frame::Binary(_))) => {
                        self.send(error_frame(None, vec![simple_error("UnsupportedOperation", "binary frames are not part of the protocol; send JSON text")]));
                        break Some((CloseCode::Unsupported, "binary frame".into()));
                    }
                    Some(Ok(_)) => {}
                },
                out = self.rx.recv() => {
                    let Some(out) = out else { break None };
                    // Everything already queued goes out in one flush.
                    let mut batch = vec![out];
                    while batch.len() < 256 {
                        match self.rx.try_recv() {
                            Ok(o) => batch.push(o),
                            Err(_) => break,
                        }
                    }
                    let mut invalidated = false;
                    let mut failed = false;
                    for out in batch {
                        let text = match out {
                            Outbound::Text(t) => t,
                            Outbound::Invalidated { id } => {
                                invalidated = true;
                                Utf8Bytes::from(json!({"id": id, "type": "complete", "payload": {"message": INVALIDATION_MESSAGE}}).to_string())
                            }
                        };
                        if sink.feed(Frame::Text(text)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break None;
                    }
                    // An invalidation closes the socket once nothing else is subscribed on it.
                    if invalidated && self.service.hub.count(self.id) == 0 {
                        break Some((CloseCode::Normal, INVALIDATION_MESSAGE.into()));
                    }
                },
                _ = ka.tick(), if self.initialized => {
                    if sink.send(Frame::text(r#"{"type":"ka"}"#)).await.is_err() {
                        break None;
                    }
                }
            }
        };
        self.service.hub.remove_connection(self.id);
        if let Some((code, reason)) = close {
            // Flush what was queued (the error or connection_error), then close.
            while let Ok(Outbound::Text(t)) = self.rx.try_recv() {
                if sink.send(Frame::Text(t)).await.is_err() {
                    return;
                }
            }
            let _ = sink
                .send(Frame::Close(Some(CloseFrame {
                    code,
                    reason: reason.chars().take(100).collect::<String>().into(),
                })))
                .await;
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        let frame: Json = match serde_json::from_str(text) {
            Ok(Json::Object(o)) => Json::Object(o),
            _ => {
                return self.malformed("a message must be a JSON object with a `type`");
            }
        };
        let kind = frame.get("type").and_then(Json::as_str).unwrap_or("");
        match kind {
            "connection_init" => match &self.auth {
                Ok(_) => {
                    self.initialized = true;
                    self.send(
                        json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}})
                            .to_string(),
                    );
                    self.send(r#"{"type":"ka"}"#.into());
                    Next::Continue
                }
                Err(f) => {
                    self.send(
                        json!({"type": "connection_error", "payload": {"errors": [{
                            "errorType": "UnauthorizedException", "message": f.message, "errorCode": 401}]}})
                        .to_string(),
                    );
                    Next::Close(CloseCode::Policy, "Unauthorized".into())
                }
            },
            "start" => self.start(&frame).await,
            "stop" => {
                let Some(id) = frame.get("id").and_then(Json::as_str) else {
                    return self.malformed("stop: id must be the string id of a start");
                };
                if self.service.hub.remove(self.id, id) {
                    self.service.decide("unsubscribe", id, self.principal(), Outcome::Admitted, None);
                }
                self.send(json!({"type": "complete", "id": id}).to_string());
                Next::Continue
            }
            "connection_terminate" => Next::Close(CloseCode::Normal, "terminated".into()),
            "ka" => Next::Continue,
            other => self.malformed(&format!(
                "type {other:?}: not a message of the GraphQL realtime protocol (connection_init, start, stop)"
            )),
        }
    }

    fn principal(&self) -> Option<&str> {
        self.auth.as_ref().ok().map(|a| a.principal.as_str())
    }

    fn malformed(&self, message: &str) -> Next {
        self.service.decide(
            "frame",
            "realtime",
            self.principal(),
            Outcome::Refused,
            Some(message),
        );
        self.send(error_frame(
            None,
            vec![simple_error("UnsupportedOperation", message)],
        ));
        Next::Close(CloseCode::Protocol, "malformed message".into())
    }

    fn refuse(&self, id: &str, target: &str, principal: Option<&str>, e: &GqlError) -> Next {
        self.service.decide(
            "subscribe",
            target,
            principal,
            Outcome::Refused,
            Some(&e.message),
        );
        self.send(error_frame(Some(id), vec![e.to_json()]));
        Next::Continue
    }

    async fn start(&mut self, frame: &Json) -> Next {
        let id = match frame.get("id").and_then(Json::as_str) {
            Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
            _ => return self.malformed("start: id must be a string of 1-128 characters"),
        };
        if !self.initialized {
            return self.refuse(
                &id,
                "realtime",
                None,
                &GqlError::new(
                    "UnsupportedOperation",
                    "start before connection_init: initialize the connection first",
                ),
            );
        }
        let payload = frame.get("payload");
        let Some(data_text) = payload.and_then(|p| p.get("data")).and_then(Json::as_str) else {
            return self.refuse(
                &id,
                "realtime",
                None,
                &GqlError::new(
                    "ValidationError",
                    "payload.data: must be the JSON text {query, variables}",
                ),
            );
        };
        let gql = match serde_json::from_str::<Json>(data_text)
            .map_err(|e| format!("payload.data: not JSON: {e}"))
            .and_then(|v| gql_request(&v))
        {
            Ok(g) => g,
            Err(m) => {
                return self.refuse(&id, "realtime", None, &GqlError::new("ValidationError", m));
            }
        };
        let op = match pick_operation(&gql) {
            Ok(op) => op,
            Err(e) => return self.refuse(&id, "realtime", None, &e),
        };
        if op.kind != OpKind::Subscription || op.fields.len() != 1 {
            return self.refuse(
                &id,
                "realtime",
                None,
                &GqlError::new(
                    "ValidationError",
                    "a start carries one subscription operation selecting one subscription field",
                ),
            );
        }
        let field = &op.fields[0];
        let target = format!("Subscription.{}", field.name);
        let Some(modes) = self.service.api.field_modes("Subscription", &field.name) else {
            return self.refuse(
                &id,
                &target,
                None,
                &GqlError::new(
                    "ValidationError",
                    format!("Validation error of type FieldUndefined: Field '{}' in type 'Subscription' is undefined", field.name),
                ),
            );
        };
        // The subscription's own authorization (extensions.authorization), as AppSync checks
        // each start; body = the data text, which an IAM signature covers.
        let headers = payload
            .and_then(|p| p.get("extensions"))
            .and_then(|e| e.get("authorization"))
            .and_then(auth_headers)
            .unwrap_or_default();
        let request = AuthRequest {
            headers: &headers,
            method: "POST",
            path: GRAPHQL_PATH,
            body: data_text.as_bytes(),
            source_ip: self.peer.ip(),
            channel: Some(&field.name),
            operation: gql.operation_name.as_deref(),
        };
        let caller = match self.service.stack.auth.authenticate(&request, &modes).await {
            Ok(c) => c,
            Err(f) => {
                return self.refuse(
                    &id,
                    &target,
                    None,
                    &GqlError::new("UnauthorizedException", f.message),
                );
            }
        };
        let vars = op.variables_with_defaults(&gql.variables);
        let outcome = match self.service.api.subscribe(field, &vars, &caller) {
            Ok(o) => o,
            Err(e) => return self.refuse(&id, &target, Some(&caller.principal), &e),
        };
        if self.service.hub.count(self.id) >= MAX_SUBSCRIPTIONS {
            return self.refuse(
                &id,
                &target,
                Some(&caller.principal),
                &GqlError::new(
                    "LimitExceededError",
                    format!("a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions"),
                ),
            );
        }
        let argument_filter = match self.service.api.arguments("Subscription", field, &vars) {
            Ok(Json::Object(m)) => m,
            _ => Default::default(),
        };
        let shape = format!("{}:{:?}", field.key(), field.selection);
        let filter_key = match &outcome.filter {
            Some(f) => format!("filter:{f}"),
            None => format!("arguments:{}", Json::Object(argument_filter.clone())),
        };
        let added = self.service.hub.add(Sub {
            connection: self.id,
            id: id.clone(),
            field: field.name.clone(),
            key: field.key().to_owned(),
            selection: field.selection.clone(),
            shape,
            filter: outcome.filter,
            argument_filter,
            invalidation_filter: outcome.invalidation_filter,
            filter_key,
            principal: caller.principal.clone(),
            tx: self.tx.clone(),
        });
        if !added {
            return self.refuse(
                &id,
                &target,
                Some(&caller.principal),
                &GqlError::new(
                    "DuplicatedOperationError",
                    format!("a subscription with id {id} is already started on this connection"),
                ),
            );
        }
        self.service.decide(
            "subscribe",
            &target,
            Some(&caller.principal),
            Outcome::Admitted,
            None,
        );
        self.send(json!({"type": "start_ack", "id": id}).to_string());
        Next::Continue
    }
}
