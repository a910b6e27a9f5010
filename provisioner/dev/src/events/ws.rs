//! One WebSocket connection of `/event/realtime`, after the upgrade: AppSync's Events protocol
//! (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html;
//! aws-protocols.md §2).
//!
//! - The connection is authenticated at once from the `header-` subprotocol against the API's
//!   connection auth modes; a refusal is `connection_error` with `UnauthorizedException`, then a
//!   close (1008).
//! - `connection_init` → `connection_ack {connectionTimeoutMs}` and a `ka` at once; `ka` then
//!   follows every [`super::Options::ka_interval`] (AppSync: 60 s) from the start of the
//!   connection, whether or not the client sent `connection_init` (AWS marks it optional).
//! - `subscribe {id, channel, authorization}` → `subscribe_success {id}` or `subscribe_error {id,
//!   errors}`; `unsubscribe {id}` → `unsubscribe_success {id}` or `unsubscribe_error`
//!   (`UnknownOperationError`); `publish {id, channel, events, authorization}`
//!   (https://docs.aws.amazon.com/appsync/latest/eventapi/publish-websocket.html) →
//!   `publish_success {id, successful, failed}` or `publish_error {id, errors}`. A message without
//!   `authorization` is authorized with the connection's `header-` object.
//! - `id`: `^[a-zA-Z0-9-_+]{1,128}$`, unique among the connection's subscriptions.
//! - A text frame that is not a JSON object with a string `type`, or a binary frame, is answered
//!   with `error` (`BadRequestException`) and closes this connection (1008 / 1003); an unknown
//!   `type` is answered with `error` (`UnknownOperationError`) and the connection stays.
//! - A connection is closed (1000) after [`super::Options::max_connection_lifetime`] (AppSync:
//!   24 hours).
//! - Frames go out through one writer task that batches whatever is queued (one flush per batch);
//!   `data` frames come from [`super::hub::Hub::deliver`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Options;
use super::api::{Api, ApiError, Caller};
use super::channel::Channel;
use super::hub::Outbox;
use crate::log::{Decision, Outcome};

/// Whether `id` is a valid message id (event-api-websocket-protocol.html: "id … must be unique
/// per connection", `^[a-zA-Z0-9-_+]{1,128}$`).
pub fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'))
}

/// A JSON object of strings as a header map with lower-case names (non-string values are left
/// out: no AppSync auth header is anything but a string).
pub fn header_map(obj: &Map<String, Value>) -> BTreeMap<String, String> {
    obj.iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned())))
        .collect()
}

fn frame(v: Value) -> Frame {
    Frame::text(v.to_string())
}

fn error_frame(kind: &str, id: Option<&str>, e: &ApiError) -> Frame {
    match id {
        Some(id) => frame(json!({"type": kind, "id": id, "errors": e.errors()})),
        None => frame(json!({"type": kind, "errors": e.errors()})),
    }
}

enum Next {
    Continue,
    Close(CloseCode, &'static str),
}

struct Session {
    api: Arc<Api>,
    outbox: Outbox,
    conn_headers: BTreeMap<String, String>,
    source_ip: IpAddr,
    subs: HashMap<String, Channel>,
    options: Options,
}

/// Serves one upgraded connection until either side closes it.
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    api: Arc<Api>,
    conn_headers: BTreeMap<String, String>,
    source_ip: IpAddr,
    options: Options,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (outbox, mut rx, overflow) = Outbox::new();
    let (mut sink, mut stream) = ws.split();
    let ka_every = options.ka_interval;
    let writer = tokio::spawn(async move {
        let mut ka = tokio::time::interval_at(tokio::time::Instant::now() + ka_every, ka_every);
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(first) = next else { break };
                    let mut closing = matches!(first, Frame::Close(_));
                    if sink.feed(first).await.is_err() { return; }
                    while !closing {
                        match rx.try_recv() {
                            Ok(f) => {
                                closing = matches!(f, Frame::Close(_));
                                if sink.feed(f).await.is_err() { return; }
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() || closing { return; }
                }
                _ = ka.tick() => {
                    if sink.send(Frame::text(r#"{"type":"ka"}"#)).await.is_err() { return; }
                }
            }
        }
        let _ = sink.close().await;
    });

    let mut session = Session {
        api,
        outbox,
        conn_headers,
        source_ip,
        subs: HashMap::new(),
        options,
    };
    let close = session.run(&mut stream, &overflow).await;
    // Unsubscribe everything before the goodbye, so no data frame follows it.
    for (id, channel) in session.subs.drain() {
        session.api.hub.remove(&channel, &id, session.outbox.conn);
    }
    if let Some((code, reason)) = close {
        session.outbox.send(Frame::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
    }
    drop(session);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(2), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

impl Session {
    /// Reads frames until the client leaves (`None`) or the connection must close (`Some`).
    async fn run<S>(
        &mut self,
        stream: &mut futures::stream::SplitStream<WebSocketStream<S>>,
        overflow: &tokio::sync::Notify,
    ) -> Option<(CloseCode, &'static str)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let caller = Caller {
            headers: &self.conn_headers,
            source_ip: self.source_ip,
        };
        if let Err(e) = self.api.connect(caller).await {
            self.outbox.send(error_frame("connection_error", None, &e));
            return Some((CloseCode::Policy, "Unauthorized"));
        }
        let end_of_life = tokio::time::sleep(self.options.max_connection_lifetime);
        tokio::pin!(end_of_life);
        loop {
            let next = tokio::select! {
                m = stream.next() => m,
                _ = &mut end_of_life => return Some((CloseCode::Normal, "connection lifetime reached")),
                _ = overflow.notified() => {
                    self.api.stack.log.decision(Decision {
                        transport: "events",
                        action: "deliver",
                        target: "/event/realtime",
                        principal: None,
                        outcome: Outcome::Refused,
                        reason: Some("the client stopped reading: connection closed"),
                    });
                    return Some((CloseCode::Again, "slow consumer"));
                }
            };
            let next = match next {
                None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => return None,
                Some(Ok(Frame::Text(text))) => self.message(text.as_str()).await,
                Some(Ok(Frame::Binary(_))) => {
                    let e = ApiError::bad_request("binary frames are not part of the protocol");
                    self.outbox.send(error_frame("error", None, &e));
                    Next::Close(CloseCode::Unsupported, "binary frame")
                }
                Some(Ok(_)) => Next::Continue,
            };
            if let Next::Close(code, reason) = next {
                self.api.decide(
                    "message",
                    "/event/realtime",
                    None,
                    Outcome::Refused,
                    Some(reason),
                );
                return Some((code, reason));
            }
        }
    }

    async fn message(&mut self, text: &str) -> Next {
        let msg = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                let e = ApiError::bad_request("the message is not a JSON object");
                self.outbox.send(error_frame("error", None, &e));
                return Next::Close(CloseCode::Policy, "malformed message");
            }
        };
        let Some(kind) = msg.get("type").and_then(Value::as_str) else {
            let e = ApiError::bad_request("type: a string is required");
            self.outbox.send(error_frame("error", None, &e));
            return Next::Close(CloseCode::Policy, "malformed message");
        };
        match kind {
            "connection_init" => {
                let ack = json!({"type": "connection_ack",
                                 "connectionTimeoutMs": self.options.connection_timeout_ms});
                self.outbox.send(frame(ack));
                self.outbox.send(Frame::text(r#"{"type":"ka"}"#));
            }
            "subscribe" => self.subscribe(&msg).await,
            "unsubscribe" => self.unsubscribe(&msg),
            "publish" => self.publish(&msg).await,
            other => {
                let e = ApiError {
                    status: 400,
                    error_type: "UnknownOperationError",
                    message: format!("type: unknown message type {other:?}"),
                };
                self.outbox.send(error_frame("error", None, &e));
            }
        }
        Next::Continue
    }

    /// The message's id if valid, else answers `kind` with the error and returns `None`.
    fn id<'m>(&self, kind: &str, msg: &'m Map<String, Value>) -> Option<&'m str> {
        match msg.get("id").and_then(Value::as_str) {
            Some(id) if is_valid_id(id) => Some(id),
            other => {
                let e = ApiError::bad_request("id: required, 1-128 characters of [a-zA-Z0-9-_+]");
                self.outbox.send(error_frame(kind, other, &e));
                None
            }
        }
    }

    /// The message's own `authorization` map, else the connection's.
    fn headers(&self, msg: &Map<String, Value>) -> BTreeMap<String, String> {
        match msg.get("authorization").and_then(Value::as_object) {
            Some(auth) => header_map(auth),
            None => self.conn_headers.clone(),
        }
    }

    async fn subscribe(&mut self, msg: &Map<String, Value>) {
        let Some(id) = self.id("subscribe_error", msg) else {
            return;
        };
        if self.subs.contains_key(id) {
            let e = ApiError::bad_request(format!("id: {id} is already in use on this connection"));
            self.outbox
                .send(error_frame("subscribe_error", Some(id), &e));
            return;
        }
        let Some(raw) = msg.get("channel").and_then(Value::as_str) else {
            let e = ApiError::bad_request("channel: a string is required");
            self.outbox
                .send(error_frame("subscribe_error", Some(id), &e));
            return;
        };
        let headers = self.headers(msg);
        let caller = Caller {
            headers: &headers,
            source_ip: self.source_ip,
        };
        match self.api.subscribe(caller, raw).await {
            Ok(channel) => {
                // The ack is queued before the subscription joins the hub: no data frame of it
                // can overtake its subscribe_success.
                self.outbox
                    .send(frame(json!({"type": "subscribe_success", "id": id})));
                self.api.hub.add(&channel, id, &self.outbox);
                self.subs.insert(id.to_owned(), channel);
            }
            Err(e) => {
                self.outbox
                    .send(error_frame("subscribe_error", Some(id), &e));
            }
        }
    }

    fn unsubscribe(&mut self, msg: &Map<String, Value>) {
        let Some(id) = self.id("unsubscribe_error", msg) else {
            return;
        };
        match self.subs.remove(id) {
            Some(channel) => {
                self.api.hub.remove(&channel, id, self.outbox.conn);
                self.api.stack.log.decision(Decision {
                    transport: "events",
                    action: "unsubscribe",
                    target: &channel.path,
                    principal: None,
                    outcome: Outcome::Admitted,
                    reason: None,
                });
                self.outbox
                    .send(frame(json!({"type": "unsubscribe_success", "id": id})));
            }
            None => {
                let e = ApiError {
                    status: 400,
                    error_type: "UnknownOperationError",
                    message: format!("id: no subscription {id} on this connection"),
                };
                self.outbox
                    .send(error_frame("unsubscribe_error", Some(id), &e));
            }
        }
    }

    async fn publish(&mut self, msg: &Map<String, Value>) {
        let Some(id) = self.id("publish_error", msg) else {
            return;
        };
        let headers = self.headers(msg);
        let caller = Caller {
            headers: &headers,
            source_ip: self.source_ip,
        };
        // What an IAM caller signed: `{"channel":…,"events":[…]}` as the message carries them
        // (aws-protocols.md §2, "IAM signing for subscribe and publish").
        let signed =
            json!({"channel": msg.get("channel"), "events": msg.get("events")}).to_string();
        match self
            .api
            .publish(
                caller,
                signed.as_bytes(),
                msg.get("channel"),
                msg.get("events"),
            )
            .await
        {
            Ok(published) => {
                let (successful, failed) = published.body();
                self.outbox
                    .send(frame(json!({"type": "publish_success", "id": id,
                    "successful": successful, "failed": failed})));
            }
            Err(e) => {
                self.outbox.send(error_frame("publish_error", Some(id), &e));
            }
        }
    }
}
