//! A local AppSync Events realtime server on 127.0.0.1 for the subscriber's protocol edges: it
//! checks the subprotocols and decodes the `header-…` auth object, acks `connection_init` (as the
//! test says, or not at all), sends `ka` (or withholds it), answers `subscribe` with
//! `subscribe_success` or the `subscribe_error` a policy picks, records every client message,
//! and lets the test publish `data` to matching subscriptions, send raw frames, or drop every
//! connection without a close frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// `policy(connection number, channel, the subscribe message)`: `None` admits, `Some(errors)`
/// refuses with `subscribe_error` carrying `errors`.
type Policy = dyn Fn(usize, &str, &Value) -> Option<Value> + Send + Sync;

/// What the server does besides answering subscriptions.
#[derive(Clone)]
pub struct Behaviour {
    /// `Ok`: the `connection_ack` message; `Err`: answer `connection_init` with this message
    /// (a `connection_error`) and close.
    pub ack: Result<Value, Value>,
    /// Send `ka` this often; `None` withholds it.
    pub ka_every: Option<Duration>,
    /// Refuse the WebSocket upgrade itself with this HTTP status.
    pub refuse_upgrade: Option<u16>,
    pub policy: Arc<Policy>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            ack: Ok(json!({"type": "connection_ack", "connectionTimeoutMs": 300_000})),
            ka_every: Some(Duration::from_secs(60)),
            refuse_upgrade: None,
            policy: Arc::new(|_, _, _| None),
        }
    }
}

/// One connection as it arrived.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    /// The auth object decoded from the `header-…` subprotocol.
    pub auth: Value,
    /// Every client message, parsed.
    pub messages: Vec<Value>,
}

impl Conn {
    /// The client messages of one `type`.
    pub fn of(&self, kind: &str) -> Vec<Value> {
        self.messages
            .iter()
            .filter(|m| m["type"] == kind)
            .cloned()
            .collect()
    }
    /// The channels subscribed, in order.
    pub fn subscribed(&self) -> Vec<String> {
        self.of("subscribe")
            .iter()
            .map(|m| m["channel"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

enum Out {
    Text(String),
    Binary(Vec<u8>),
    /// Drop the TCP connection without a close frame.
    Drop,
}

struct Live {
    n: usize,
    out: mpsc::UnboundedSender<Out>,
    /// Admitted subscriptions: id → channel.
    subs: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    conns: Vec<Conn>,
    live: Vec<Live>,
    upgrades_refused: usize,
}

pub struct Server {
    /// `ws://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a subscription to `sub` receives a publish to `channel`: equal, or `sub` ends in `/*`
/// and `channel` lies below the rest (AWS: "a wildcard … matches several levels").
pub fn matches(sub: &str, channel: &str) -> bool {
    match sub.strip_suffix("/*") {
        Some(prefix) => channel
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1),
        None => sub == channel,
    }
}

impl Server {
    pub async fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("ws://{}", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, st.clone(), behaviour.clone()));
            }
        });
        Server { base, state, task }
    }

    pub async fn ok() -> Server {
        Server::start(Behaviour::default()).await
    }

    pub fn conns(&self) -> Vec<Conn> {
        self.state.lock().unwrap().conns.clone()
    }

    /// Every client message of one type over every connection.
    pub fn all_of(&self, kind: &str) -> Vec<Value> {
        self.conns().iter().flat_map(|c| c.of(kind)).collect()
    }

    pub fn upgrades_refused(&self) -> usize {
        self.state.lock().unwrap().upgrades_refused
    }

    /// Connections still open.
    pub fn live_connections(&self) -> usize {
        self.state.lock().unwrap().live.len()
    }

    /// Admitted subscriptions on live connections.
    pub fn live_subscriptions(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .live
            .iter()
            .map(|l| l.subs.len())
            .sum()
    }

    /// Sends `data` with `event` to every admitted subscription matching `channel`; how many.
    pub fn publish(&self, channel: &str, event: Value) -> usize {
        let s = self.state.lock().unwrap();
        let mut n = 0;
        for live in &s.live {
            for (id, sub) in &live.subs {
                if matches(sub, channel) {
                    let frame = json!({"type": "data", "id": id, "event": event}).to_string();
                    if live.out.send(Out::Text(frame)).is_ok() {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// The subscription id a live connection holds for `channel`.
    pub fn id_of(&self, channel: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.live.iter().find_map(|l| {
            l.subs
                .iter()
                .find(|(_, c)| c.as_str() == channel)
                .map(|(id, _)| id.clone())
        })
    }

    /// Sends a raw text frame on every live connection.
    pub fn send_raw(&self, text: &str) {
        for live in &self.state.lock().unwrap().live {
            let _ = live.out.send(Out::Text(text.to_owned()));
        }
    }

    pub fn send_binary(&self, bytes: &[u8]) {
        for live in &self.state.lock().unwrap().live {
            let _ = live.out.send(Out::Binary(bytes.to_vec()));
        }
    }

    /// Drops every live connection without a close frame.
    pub fn drop_all(&self) {
        let mut s = self.state.lock().unwrap();
        for live in s.live.drain(..) {
            let _ = live.out.send(Out::Drop);
        }
    }
}

fn decode_auth(req: &Request) -> Result<Value, String> {
    let protocols = req
        .headers()
        .get("sec-websocket-protocol")
        .ok_or("no Sec-WebSocket-Protocol")?
        .to_str()
        .map_err(|e| e.to_string())?;
    let list: Vec<&str> = protocols.split(',').map(str::trim).collect();
    if !list.contains(&"aws-appsync-event-ws") {
        return Err(format!("no aws-appsync-event-ws in {protocols:?}"));
    }
    if req.uri().path() != "/event/realtime" {
        return Err(format!("path {}", req.uri().path()));
    }
    let header = list
        .iter()
        .find_map(|p| p.strip_prefix("header-"))
        .ok_or("no header- subprotocol")?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| format!("header- is not unpadded base64url: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("header- is not JSON: {e}"))
}

fn refuse(status: u16, why: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r
}

// tungstenite's handshake callback returns its (large) ErrorResponse by value.
#[allow(clippy::result_large_err)]
async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>, behaviour: Behaviour) {
    let mut auth: Option<Value> = None;
    let st = state.clone();
    let callback = |req: &Request, mut resp: Response| {
        if let Some(status) = behaviour.refuse_upgrade {
            st.lock().unwrap().upgrades_refused += 1;
            return Err(refuse(status, "refused by the test".into()));
        }
        match decode_auth(req) {
            Ok(a) => {
                auth = Some(a);
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static("aws-appsync-event-ws"),
                );
                Ok(resp)
            }
            Err(why) => Err(refuse(400, why)),
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (out_tx, mut out) = mpsc::unbounded_channel::<Out>();
    let n = {
        let mut s = state.lock().unwrap();
        s.conns.push(Conn {
            auth: auth.unwrap_or(Value::Null),
            messages: Vec::new(),
        });
        let n = s.conns.len() - 1;
        s.live.push(Live {
            n,
            out: out_tx.clone(),
            subs: HashMap::new(),
        });
        n
    };
    let (mut sink, mut source) = ws.split();
    let mut next_ka: Option<tokio::time::Instant> = None;
    let forget = |state: &Arc<Mutex<State>>| state.lock().unwrap().live.retain(|l| l.n != n);
    loop {
        let at = next_ka;
        let tick = async move {
            match at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            o = out.recv() => match o {
                Some(Out::Text(t)) => {
                    if sink.send(Frame::text(t)).await.is_err() { return forget(&state); }
                }
                Some(Out::Binary(b)) => {
                    if sink.send(Frame::binary(b)).await.is_err() { return forget(&state); }
                }
                Some(Out::Drop) | None => return forget(&state),
            },
            () = tick => {
                next_ka = behaviour.ka_every.map(|d| tokio::time::Instant::now() + d);
                if sink.send(Frame::text(r#"{"type":"ka"}"#)).await.is_err() {
                    return forget(&state);
                }
            }
            frame = source.next() => {
                let text = match frame {
                    Some(Ok(Frame::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => return forget(&state),
                    Some(Ok(_)) => continue,
                };
                let Ok(msg) = serde_json::from_str::<Value>(&text) else { continue };
                state.lock().unwrap().conns[n].messages.push(msg.clone());
                let reply = match msg["type"].as_str() {
                    Some("connection_init") => match &behaviour.ack {
                        Ok(ack) => {
                            next_ka = behaviour.ka_every.map(|d| tokio::time::Instant::now() + d);
                            ack.clone()
                        }
                        Err(error) => {
                            let _ = sink.send(Frame::text(error.to_string())).await;
                            let _ = sink.send(Frame::Close(None)).await;
                            return forget(&state);
                        }
                    },
                    Some("subscribe") => {
                        let id = msg["id"].as_str().unwrap_or_default().to_owned();
                        let channel = msg["channel"].as_str().unwrap_or_default().to_owned();
                        match (behaviour.policy)(n, &channel, &msg) {
                            None => {
                                // Registered before the answer: anything published after the
                                // client reads subscribe_success reaches it.
                                let mut s = state.lock().unwrap();
                                if let Some(l) = s.live.iter_mut().find(|l| l.n == n) {
                                    l.subs.insert(id.clone(), channel);
                                }
                                json!({"type": "subscribe_success", "id": id})
                            }
                            Some(errors) => json!({"type": "subscribe_error", "id": id, "errors": errors}),
                        }
                    }
                    Some("unsubscribe") => {
                        let id = msg["id"].as_str().unwrap_or_default().to_owned();
                        let mut s = state.lock().unwrap();
                        let known = s
                            .live
                            .iter_mut()
                            .find(|l| l.n == n)
                            .is_some_and(|l| l.subs.remove(&id).is_some());
                        if known {
                            json!({"type": "unsubscribe_success", "id": id})
                        } else {
                            json!({"type": "unsubscribe_error", "id": id,
                                   "errors": [{"errorType": "UnknownOperationError", "message": "no such subscription"}]})
                        }
                    }
                    _ => continue,
                };
                if sink.send(Frame::text(reply.to_string())).await.is_err() {
                    return forget(&state);
                }
            }
        }
    }
}
