//! AppSync Events over WebSocket ([`crate::Transport::EventsWs`]): one long-lived connection per
//! publisher to `wss://{realtime host}/event/realtime`, publish messages on it, and their answers
//! mapped back to the same per-event results as the HTTP transport.
//!
//! - **Connect**: subprotocols `aws-appsync-event-ws` and `header-<base64url(auth object)>` (no
//!   padding); the auth object's `host` is always the *HTTP* host, and IAM signs
//!   `POST https://{http host}/event` with body `{}`. Then `connection_init`, and wait for
//!   `connection_ack`, whose `connectionTimeoutMs` (top level or under `payload`, default 300000)
//!   bounds the silence between two `ka` keep-alives. A connection that misses it is closed; the
//!   next attempt connects anew.
//! - **Publish**: `{"type":"publish","id",…,"channel","events":[≤5 JSON strings],"authorization"}`,
//!   with a fresh id per attempt (unique per connection) and the authorization of that message:
//!   IAM signs exactly the `{"channel":…,"events":[…]}` bytes the message carries. The batches
//!   (and their limits) are those of the HTTP transport ([`crate::events`]).
//! - **Answers**: `publish_success` is read by the HTTP transport's parser (both failed-entry
//!   spellings), and its failed events with a transient code are re-sent alone, as over HTTP;
//!   `publish_error` carries `errors[{errorType,message}]`: unauthorized is final, throttling and
//!   internal errors are retried, anything else is final.
//! - **Pace**: at most [`PUBLISHES_PER_SECOND`] publish messages in any one-second window per
//!   connection (AWS's quota), and at most the publisher's concurrency awaiting an answer.
//! - **Connection loss**: every publish awaiting an answer fails as retryable; the retry policy
//!   reconnects and resends the same events (same event ids) under a new publish id.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::client::Resolved;
use crate::config::EventsWsEndpoint;
use crate::error::{Error, GraphqlError};
use crate::events::iam_headers;
use crate::retry::{self, AttemptError};
use crate::sign::{APPSYNC_SERVICE, SigV4};

/// The subprotocol of the AppSync Events WebSocket protocol.
pub const SUBPROTOCOL: &str = "aws-appsync-event-ws";
/// Publish messages AWS accepts per second on one connection; see [`limits`](crate::limits).
pub use crate::limits::EVENTS_WS_PUBLISHES_PER_SECOND as PUBLISHES_PER_SECOND;
/// The keep-alive timeout when `connection_ack` names none.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_millis(300_000);

/// The publisher's WebSocket side: the current connection, made on first use and remade after a
/// loss.
#[derive(Debug)]
pub(crate) struct EventsWs {
    endpoint: EventsWsEndpoint,
    region: Option<String>,
    in_flight: usize,
    current: Mutex<Option<Arc<Connection>>>,
}

/// One open connection: a task owns the socket; publishes reach it through `commands`.
#[derive(Debug)]
struct Connection {
    commands: mpsc::Sender<Command>,
    /// Send times of the last [`PUBLISHES_PER_SECOND`] publish messages.
    window: Mutex<VecDeque<Instant>>,
    in_flight: Semaphore,
}

#[derive(Debug)]
enum Command {
    Publish {
        id: String,
        frame: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// A message from the server, as far as the publisher reads it.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
    #[serde(rename = "connectionTimeoutMs", default)]
    connection_timeout_ms: Option<u64>,
    #[serde(default)]
    payload: Option<AckPayload>,
}

#[derive(Deserialize)]
struct AckPayload {
    #[serde(rename = "connectionTimeoutMs", default)]
    connection_timeout_ms: Option<u64>,
}

impl EventsWs {
    pub(crate) fn new(
        endpoint: EventsWsEndpoint,
        region: Option<String>,
        in_flight: usize,
    ) -> Self {
        EventsWs {
            endpoint,
            region,
            in_flight: in_flight.max(1),
            current: Mutex::new(None),
        }
    }

    /// One attempt at one publish message: `body` is the batch's `{"channel":…,"events":[…]}`
    /// with `n` events. On an answer, the fate of each event, as [`crate::events`] parses it.
    pub(crate) async fn publish(
        &self,
        auth: &Resolved,
        body: &[u8],
        n: usize,
    ) -> Result<Vec<Result<Option<String>, Error>>, AttemptError> {
        let conn = self.connection(auth).await?;
        let _permit = conn
            .in_flight
            .acquire()
            .await
            .map_err(|_| AttemptError::Retryable("the connection closed".into()))?;
        // Paced last, right before sending, so that the booked times are the send times.
        conn.pace().await;
        let id = uuid::Uuid::new_v4().to_string();
        let authorization = self
            .auth_object(auth, body, SystemTime::now())
            .map_err(AttemptError::Fatal)?;
        let frame = publish_frame(&id, body, &authorization);
        let (reply, answer) = oneshot::channel();
        if conn
            .commands
            .send(Command::Publish { id, frame, reply })
            .await
            .is_err()
        {
            return Err(AttemptError::Retryable(
                "the connection closed before the publish was sent".into(),
            ));
        }
        match answer.await {
            Err(_) => Err(AttemptError::Retryable(
                "the connection closed before the server answered".into(),
            )),
            Ok(Err(reason)) => Err(AttemptError::Retryable(format!(
                "WebSocket connection lost: {reason}"
            ))),
            Ok(Ok(text)) => classify_answer(&text, n),
        }
    }

    /// The open connection, or a new one.
    async fn connection(&self, auth: &Resolved) -> Result<Arc<Connection>, AttemptError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && !c.commands.is_closed()
        {
            return Ok(c.clone());
        }
        *current = None;
        let c = Arc::new(self.connect(auth).await?);
        *current = Some(c.clone());
        Ok(c)
    }

    async fn connect(&self, auth: &Resolved) -> Result<Connection, AttemptError> {
        let header = auth_object(
            &self.endpoint,
            self.region.as_deref(),
            auth,
            b"{}",
            SystemTime::now(),
        )
        .map_err(AttemptError::Fatal)?;
        let (ws, timeout) = open(&self.endpoint, &header).await?;
        let (commands, receiver) = mpsc::channel(self.in_flight);
        tokio::spawn(run(ws, receiver, timeout));
        Ok(Connection {
            commands,
            window: Mutex::new(VecDeque::with_capacity(PUBLISHES_PER_SECOND)),
            in_flight: Semaphore::new(self.in_flight),
        })
    }

    /// The authorization of a publish message (`body` its `{"channel":…,"events":[…]}`).
    pub(crate) fn auth_object(
        &self,
        auth: &Resolved,
        body: &[u8],
        time: SystemTime,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        auth_object(&self.endpoint, self.region.as_deref(), auth, body, time)
    }
}

/// An open, acknowledged AppSync Events WebSocket.
pub(crate) type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `endpoint` with the connection authorization `header` (from [`auth_object`] over `{}`),
/// sends `connection_init` and waits for `connection_ack`: the socket and its keep-alive timeout.
/// The publisher and the subscriber (`subscribe::events`) both connect here.
///
/// AWS: "To connect … use the `aws-appsync-event-ws` subprotocol and a `header-` subprotocol
/// holding the base64url-encoded authorization"; after `connection_init` the service answers
/// `connection_ack` with `connectionTimeoutMs`
/// (<https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html>).
pub(crate) async fn open(
    endpoint: &EventsWsEndpoint,
    header: &serde_json::Map<String, serde_json::Value>,
) -> Result<(WsStream, Duration), AttemptError> {
    let mut request = endpoint.url.as_str().into_client_request().map_err(|e| {
        AttemptError::Fatal(Error::Config(format!(
            "events.realtime_url {:?}: {e}",
            endpoint.url
        )))
    })?;
    let mut protocols = HeaderValue::from_str(&subprotocols(header)).map_err(|_| {
        AttemptError::Fatal(Error::Config(
            "the WebSocket auth header is not a valid header value".into(),
        ))
    })?;
    protocols.set_sensitive(true);
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols);
    let (mut ws, _response) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(classify_ws)?;
    ws.send(Frame::text(r#"{"type":"connection_init"}"#))
        .await
        .map_err(classify_ws)?;
    let timeout = loop {
        let text = match ws.next().await {
            None => {
                return Err(AttemptError::Retryable(
                    "the server closed the connection before connection_ack".into(),
                ));
            }
            Some(Err(e)) => return Err(classify_ws(e)),
            Some(Ok(Frame::Text(t))) => t,
            Some(Ok(Frame::Close(f))) => {
                return Err(AttemptError::Retryable(format!(
                    "the server closed the connection before connection_ack: {f:?}"
                )));
            }
            Some(Ok(_)) => continue,
        };
        let a: Answer = serde_json::from_str(text.as_str()).map_err(|e| {
            AttemptError::Fatal(Error::Protocol(format!(
                "AppSync Events WebSocket message is not JSON: {e}: {}",
                retry::snippet(text.as_str())
            )))
        })?;
        match a.kind.as_str() {
            "connection_ack" => break keep_alive_timeout(&a),
            "connection_error" | "error" => return Err(classify_errors(a.errors)),
            _ => {}
        }
    };
    tracing::debug!(url = %endpoint.url, keep_alive_ms = timeout.as_millis() as u64, "events-ws connected");
    Ok((ws, timeout))
}

/// The keep-alive timeout of a `connection_ack`: `connectionTimeoutMs` at the top level (the
/// docs, amplify-js) or under `payload` (the Swift client), [`DEFAULT_CONNECTION_TIMEOUT`] when
/// neither holds a positive number (aws-protocols.md §2, "Parse leniently").
fn keep_alive_timeout(ack: &Answer) -> Duration {
    ack.connection_timeout_ms
        .or(ack.payload.as_ref().and_then(|p| p.connection_timeout_ms))
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_CONNECTION_TIMEOUT, Duration::from_millis)
}

/// The authorization of a connection (`body` `{}`), a subscribe message (`body`
/// `{"channel":…}`) or a publish message (`body` its `{"channel":…,"events":[…]}`), as a JSON
/// object. Its `host` is always the HTTP host, and IAM signs `POST https://{http host}/event`
/// with `body` (<https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html>,
/// "IAM authorization"; aws-protocols.md §2).
pub(crate) fn auth_object(
    endpoint: &EventsWsEndpoint,
    region: Option<&str>,
    auth: &Resolved,
    body: &[u8],
    time: SystemTime,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let host = endpoint.http_host.clone();
    let mut o = serde_json::Map::new();
    match auth {
        Resolved::ApiKey(k) => {
            o.insert("host".into(), host.into());
            o.insert("x-api-key".into(), k.clone().into());
        }
        Resolved::Token(t) => {
            o.insert("Authorization".into(), t.clone().into());
            o.insert("host".into(), host.into());
        }
        Resolved::Iam(credentials) => {
            let mut headers: HeaderMap = iam_headers();
            SigV4 {
                credentials,
                region: region.unwrap_or_default(),
                service: APPSYNC_SERVICE,
            }
            .sign("POST", &endpoint.http_url, &mut headers, body, time)?;
            for name in ["accept", "content-encoding", "content-type"] {
                o.insert(name.into(), header_text(&headers, name).into());
            }
            o.insert("host".into(), host.into());
            for name in ["x-amz-date", "x-amz-security-token", "authorization"] {
                if headers.contains_key(name) {
                    o.insert(name.into(), header_text(&headers, name).into());
                }
            }
        }
    }
    Ok(o)
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `Sec-WebSocket-Protocol` for `auth`: the protocol, then the auth object as base64url JSON
/// without padding.
pub fn subprotocols(auth: &serde_json::Map<String, serde_json::Value>) -> String {
    let json = serde_json::to_vec(auth).expect("a JSON map serializes");
    format!(
        "{SUBPROTOCOL}, header-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    )
}

/// The publish message for a batch body `{"channel":…,"events":[…]}`: its fields are spliced in
/// as they are, so the bytes IAM signed are the bytes the message carries.
pub fn publish_frame(
    id: &str,
    body: &[u8],
    authorization: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let body = std::str::from_utf8(body).expect("publish bodies are JSON text");
    let inner = &body[1..body.len() - 1];
    format!(
        "{{\"type\":\"publish\",\"id\":{},{inner},\"authorization\":{}}}",
        serde_json::to_string(id).expect("a string serializes"),
        serde_json::to_string(authorization).expect("a JSON map serializes"),
    )
}

impl Connection {
    /// Waits until one more publish message keeps this connection within
    /// [`PUBLISHES_PER_SECOND`] in every one-second window, and books it.
    async fn pace(&self) {
        let mut w = self.window.lock().await;
        let now = Instant::now();
        while w
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            w.pop_front();
        }
        if w.len() >= PUBLISHES_PER_SECOND {
            let oldest = w.pop_front().expect("the window is full");
            // Holding the lock queues later publishes behind this one, in order.
            tokio::time::sleep_until(oldest + Duration::from_secs(1)).await;
        }
        w.push_back(Instant::now());
    }
}

/// The connection's task: sends publish messages, routes answers by id, watches `ka`.
async fn run<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    mut commands: mpsc::Receiver<Command>,
    keep_alive: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut pending: HashMap<String, oneshot::Sender<Result<String, String>>> = HashMap::new();
    let mut ka_deadline = Instant::now() + keep_alive;
    let reason: String = loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                None => {
                    // Every handle is gone: the publisher was dropped.
                    let _ = sink.send(Frame::Close(None)).await;
                    return;
                }
                Some(Command::Publish { id, frame, reply }) => {
                    if let Err(e) = sink.send(Frame::text(frame)).await {
                        let _ = reply.send(Err(e.to_string()));
                        break format!("sending failed: {e}");
                    }
                    // Drop the slots of attempts that timed out and stopped listening.
                    if pending.len() >= 1024 {
                        pending.retain(|_, r| !r.is_closed());
                    }
                    pending.insert(id, reply);
                }
            },
            frame = stream.next() => match frame {
                None => break "the server closed the connection".into(),
                Some(Err(e)) => break e.to_string(),
                Some(Ok(Frame::Close(f))) => break format!("the server closed the connection: {f:?}"),
                Some(Ok(Frame::Text(t))) => {
                    let Ok(a) = serde_json::from_str::<Answer>(t.as_str()) else {
                        tracing::warn!(message = %retry::snippet(t.as_str()), "events-ws: ignoring a message that is not JSON");
                        continue;
                    };
                    match (a.kind.as_str(), a.id) {
                        ("ka", _) => ka_deadline = Instant::now() + keep_alive,
                        ("publish_success" | "publish_error" | "error", Some(id)) => {
                            if let Some(reply) = pending.remove(&id) {
                                let _ = reply.send(Ok(t.as_str().to_owned()));
                            }
                        }
                        ("connection_error", _) => {
                            break format!("connection_error: {}", errors_text(&a.errors));
                        }
                        (kind, _) => tracing::debug!(kind, "events-ws: ignoring a message"),
                    }
                }
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep_until(ka_deadline) => {
                let _ = sink.send(Frame::Close(None)).await;
                break format!("no keep-alive (ka) within connectionTimeoutMs = {} ms", keep_alive.as_millis());
            }
        }
    };
    // Close first, so that the next attempt sees this connection gone and connects anew.
    commands.close();
    tracing::warn!(reason = %reason, awaiting = pending.len(), "events-ws connection lost");
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(reason.clone()));
    }
    while let Ok(Command::Publish { reply, .. }) = commands.try_recv() {
        let _ = reply.send(Err(reason.clone()));
    }
}

pub(crate) fn errors_text(errors: &[GraphqlError]) -> String {
    if errors.is_empty() {
        return "no errors given".into();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Maps an answer to a publish message to per-event results, or to an attempt error.
pub(crate) fn classify_answer(
    text: &str,
    n: usize,
) -> Result<Vec<Result<Option<String>, Error>>, AttemptError> {
    let a: Answer = serde_json::from_str(text).map_err(|e| {
        AttemptError::Fatal(Error::Protocol(format!(
            "AppSync Events WebSocket answer is not JSON: {e}: {}",
            retry::snippet(text)
        )))
    })?;
    if a.kind == "publish_success" {
        // Accepted: never retried, like an HTTP 2xx, even when it cannot be read.
        return crate::events::parse_response(text.as_bytes(), n).map_err(AttemptError::Fatal);
    }
    Err(classify_errors(a.errors))
}

/// `errors[{errorType,message}]` of `publish_error`, `connection_error` or `error`: unauthorized
/// is [`Error::Auth`], throttling and service faults ([`retry::is_transient_code`], the rule of a
/// failed event's code too) are retried, everything else is final.
pub(crate) fn classify_errors(errors: Vec<GraphqlError>) -> AttemptError {
    let kinds: Vec<String> = errors
        .iter()
        .map(|e| {
            e.error_type
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect();
    let any = |words: &[&str]| kinds.iter().any(|k| words.iter().any(|w| k.contains(w)));
    if any(&["unauthorized"]) {
        AttemptError::Fatal(Error::Auth {
            status: 401,
            message: errors_text(&errors),
        })
    } else if any(&["forbidden", "accessdenied"]) {
        AttemptError::Fatal(Error::Auth {
            status: 403,
            message: errors_text(&errors),
        })
    } else if errors.iter().any(|e| {
        e.error_type
            .as_deref()
            .is_some_and(retry::is_transient_code)
    }) {
        AttemptError::Retryable(errors_text(&errors))
    } else if errors.is_empty() {
        AttemptError::Fatal(Error::Protocol(
            "the publish failed and the server gave no errors".into(),
        ))
    } else {
        AttemptError::Fatal(Error::Graphql(errors))
    }
}

/// Classifies a WebSocket failure: an HTTP status on the upgrade as the HTTP transport does,
/// a bad URL or an oversize message as final, every network failure as worth another attempt.
pub(crate) fn classify_ws(e: tungstenite::Error) -> AttemptError {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            retry::classify_status(status, &body)
        }
        tungstenite::Error::Url(e) => {
            AttemptError::Fatal(Error::Config(format!("events.realtime_url: {e}")))
        }
        tungstenite::Error::Capacity(e) => AttemptError::Fatal(Error::Rejected {
            status: 413,
            message: format!("WebSocket message too large: {e}"),
        }),
        other => AttemptError::Retryable(format!("WebSocket: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_frame_carries_the_batch_body_verbatim() {
        let body = crate::events::publish_body("/ns/g/t", &["{\"a\":1}", "2"]);
        let mut auth = serde_json::Map::new();
        auth.insert("x-api-key".into(), "k".into());
        let frame = publish_frame("id-1", &body, &auth);
        assert_eq!(
            frame,
            r#"{"type":"publish","id":"id-1","channel":"/ns/g/t","events":["{\"a\":1}","2"],"authorization":{"x-api-key":"k"}}"#
        );
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["events"][0], "{\"a\":1}");
    }

    #[test]
    fn subprotocols_encode_the_auth_object_as_unpadded_base64url() {
        let mut auth = serde_json::Map::new();
        auth.insert("host".into(), "h.example".into());
        auth.insert("x-api-key".into(), "da2-?>".into());
        let p = subprotocols(&auth);
        let (proto, header) = p.split_once(", ").unwrap();
        assert_eq!(proto, SUBPROTOCOL);
        let b64 = header.strip_prefix("header-").unwrap();
        assert!(!b64.contains(['=', '+', '/']), "{b64}");
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        assert_eq!(json, br#"{"host":"h.example","x-api-key":"da2-?>"}"#);
    }

    #[test]
    fn publish_errors_are_classified() {
        let e = |t: &str| GraphqlError {
            error_type: Some(t.into()),
            message: "m".into(),
        };
        assert!(matches!(
            classify_errors(vec![e("UnauthorizedException")]),
            AttemptError::Fatal(Error::Auth { status: 401, .. })
        ));
        assert!(matches!(
            classify_errors(vec![e("ThrottlingException")]),
            AttemptError::Retryable(_)
        ));
        assert!(matches!(
            classify_errors(vec![e("BadRequestException")]),
            AttemptError::Fatal(Error::Graphql(_))
        ));
        assert!(matches!(
            classify_errors(vec![]),
            AttemptError::Fatal(Error::Protocol(_))
        ));
    }

    #[test]
    fn publish_success_is_read_as_the_http_response() {
        let r = classify_answer(
            r#"{"type":"publish_success","id":"x","successful":[{"identifier":"a","index":0}],
                "failed":[{"identifier":"b","index":1,"errorCode":400,"errorMessage":"no"}]}"#,
            2,
        )
        .unwrap();
        assert_eq!(r[0].as_ref().unwrap().as_deref(), Some("a"));
        assert_eq!(
            r[1].as_ref().unwrap_err().to_string(),
            "event failed (400): no"
        );
    }
}
