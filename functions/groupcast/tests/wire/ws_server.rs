//! A local AppSync Events WebSocket server on 127.0.0.1 (tokio-tungstenite): it checks the
//! subprotocols, decodes the `header-…` auth object, acks `connection_init`, sends `ka` (or
//! withholds it), records every client message, and answers each `publish` as the test says:
//! a JSON message (at once or later), silence, or a dropped connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// One connection as it arrived.
#[derive(Debug, Clone)]
pub struct WsConn {
    /// The request path.
    pub path: String,
    /// `Sec-WebSocket-Protocol` as sent.
    pub protocols: String,
    /// The auth object decoded from the `header-…` subprotocol.
    pub auth: Value,
    /// Every client message, parsed, with when it arrived.
    pub messages: Vec<(Instant, Value)>,
    /// Every client message as sent.
    pub raw: Vec<String>,
}

impl WsConn {
    /// The `publish` messages.
    pub fn publishes(&self) -> Vec<Value> {
        self.messages
            .iter()
            .filter(|(_, m)| m["type"] == "publish")
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// How to answer one publish.
#[derive(Debug, Clone)]
pub enum WsReply {
    /// Send this message (its `id` is set to the publish's).
    Json(Value),
    /// Never answer.
    Silence,
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Wait (without holding up other messages), then answer.
    After(Duration, Box<WsReply>),
}

/// What the server does besides answering publishes.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// The `connection_ack` message.
    pub ack: Value,
    /// Send `ka` this often; `None` withholds it.
    pub ka_every: Option<Duration>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            ack: json!({"type": "connection_ack", "connectionTimeoutMs": 300_000}),
            ka_every: Some(Duration::from_secs(60)),
        }
    }
}

/// `handler(connection number, publish number over all connections, publish message)`.
type Handler = dyn Fn(usize, usize, &Value) -> WsReply + Send + Sync;

#[derive(Default)]
struct State {
    conns: Vec<WsConn>,
    publishes: usize,
    rejected: Vec<String>,
    /// Publishes received and not yet answered, now and at most.
    outstanding: usize,
    max_outstanding: usize,
}

pub struct WsServer {
    /// `ws://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `publish_success` with every event successful: identifiers `c{conn}-p{n}-{index}`.
pub fn all_successful(conn: usize, n: usize, publish: &Value) -> Value {
    let count = publish["events"].as_array().map_or(0, Vec::len);
    let ok: Vec<Value> = (0..count)
        .map(|i| json!({"identifier": format!("c{conn}-p{n}-{i}"), "index": i}))
        .collect();
    json!({"type": "publish_success", "successful": ok, "failed": []})
}

impl WsServer {
    pub async fn start(
        behaviour: Behaviour,
        handler: impl Fn(usize, usize, &Value) -> WsReply + Send + Sync + 'static,
    ) -> WsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("ws://{}", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                // A connection's task ends when its client goes, or with the test's runtime.
                tokio::spawn(serve(
                    stream,
                    st.clone(),
                    handler.clone(),
                    behaviour.clone(),
                ));
            }
        });
        WsServer { base, state, task }
    }

    /// A server that answers every publish with all events successful.
    pub async fn ok() -> WsServer {
        WsServer::start(Behaviour::default(), |c, n, p| {
            WsReply::Json(all_successful(c, n, p))
        })
        .await
    }

    pub fn conns(&self) -> Vec<WsConn> {
        self.state.lock().unwrap().conns.clone()
    }

    /// Every publish over every connection, in arrival order.
    pub fn publishes(&self) -> Vec<Value> {
        self.conns().iter().flat_map(WsConn::publishes).collect()
    }

    /// The most publishes that were ever awaiting an answer at once.
    pub fn max_outstanding(&self) -> usize {
        self.state.lock().unwrap().max_outstanding
    }

    /// Handshakes refused, and why.
    pub fn rejected(&self) -> Vec<String> {
        self.state.lock().unwrap().rejected.clone()
    }
}

fn reject(why: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

/// Checks the handshake as AppSync does: the event subprotocol, and a decodable auth object.
fn check_handshake(req: &Request) -> Result<(String, String, Value), String> {
    let protocols = req
        .headers()
        .get("sec-websocket-protocol")
        .ok_or("no Sec-WebSocket-Protocol")?
        .to_str()
        .map_err(|e| e.to_string())?
        .to_owned();
    let list: Vec<&str> = protocols.split(',').map(str::trim).collect();
    if !list.contains(&"aws-appsync-event-ws") {
        return Err(format!("no aws-appsync-event-ws in {protocols:?}"));
    }
    let header = list
        .iter()
        .find_map(|p| p.strip_prefix("header-"))
        .ok_or_else(|| format!("no header- subprotocol in {protocols:?}"))?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| format!("header- is not unpadded base64url: {e}"))?;
    let auth: Value =
        serde_json::from_slice(&json).map_err(|e| format!("header- is not JSON: {e}"))?;
    Ok((req.uri().path().to_owned(), protocols, auth))
}

// tungstenite's handshake callback returns its (large) ErrorResponse by value.
#[allow(clippy::result_large_err)]
async fn serve(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    handler: Arc<Handler>,
    behaviour: Behaviour,
) {
    let mut seen: Option<(String, String, Value)> = None;
    let st = state.clone();
    let callback = |req: &Request, mut resp: Response| match check_handshake(req) {
        Ok(s) => {
            seen = Some(s);
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("aws-appsync-event-ws"),
            );
            Ok(resp)
        }
        Err(why) => {
            st.lock().unwrap().rejected.push(why.clone());
            Err(reject(why))
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (path, protocols, auth) = seen.expect("the callback ran");
    let conn = {
        let mut s = state.lock().unwrap();
        s.conns.push(WsConn {
            path,
            protocols,
            auth,
            messages: Vec::new(),
            raw: Vec::new(),
        });
        s.conns.len() - 1
    };
    let (mut sink, mut source) = ws.split();
    // The next `ka`: none before the ack, nor ever when withheld.
    let mut next_ka: Option<tokio::time::Instant> = None;
    // Answers due later arrive here from their timers.
    let (later_tx, mut later) = tokio::sync::mpsc::unbounded_channel::<Value>();
    loop {
        let at = next_ka;
        let tick = async move {
            match at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            Some(v) = later.recv() => {
                state.lock().unwrap().outstanding -= 1;
                if sink.send(Frame::text(v.to_string())).await.is_err() {
                    return;
                }
            }
            () = tick => {
                next_ka = behaviour.ka_every.map(|d| tokio::time::Instant::now() + d);
                if sink.send(Frame::text(json!({"type": "ka"}).to_string())).await.is_err() {
                    return;
                }
            }
            frame = source.next() => {
                let text = match frame {
                    Some(Ok(Frame::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let msg: Value = serde_json::from_str(&text).expect("client messages are JSON");
                let n = {
                    let mut s = state.lock().unwrap();
                    let c = &mut s.conns[conn];
                    c.messages.push((Instant::now(), msg.clone()));
                    c.raw.push(text);
                    if msg["type"] == "publish" {
                        s.publishes += 1;
                    }
                    s.publishes.saturating_sub(1)
                };
                let reply = match msg["type"].as_str() {
                    Some("connection_init") => {
                        next_ka = behaviour.ka_every.map(|d| tokio::time::Instant::now() + d);
                        Some(behaviour.ack.clone())
                    }
                    Some("publish") => {
                        {
                            let mut s = state.lock().unwrap();
                            s.outstanding += 1;
                            s.max_outstanding = s.max_outstanding.max(s.outstanding);
                        }
                        let mut reply = handler(conn, n, &msg);
                        let mut delay = Duration::ZERO;
                        while let WsReply::After(d, next) = reply {
                            delay += d;
                            reply = *next;
                        }
                        match reply {
                            WsReply::Json(mut v) => {
                                v["id"] = msg["id"].clone();
                                let tx = later_tx.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    let _ = tx.send(v);
                                });
                                None
                            }
                            WsReply::Silence => None,
                            WsReply::Drop => return,
                            WsReply::After(..) => unreachable!(),
                        }
                    }
                    _ => None,
                };
                if let Some(v) = reply
                    && sink.send(Frame::text(v.to_string())).await.is_err()
                {
                    return;
                }
            }
        }
    }
}
