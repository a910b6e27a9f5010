//! The AppSync GraphQL subscriber: the rendered schema's `subscribe(prefix, onlyGroups)` over
//! AppSync's realtime WebSocket protocol, one connection per [`GraphqlSubscriber`].
//!
//! The protocol (<https://docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html>,
//! `shared/reference/aws-protocols.md` §8):
//! - **Endpoint**: the GraphQL URL with `appsync-api` replaced by `appsync-realtime-api` and
//!   `wss://` ([`realtime_url`]), plus `?header=<base64 auth object>&payload=e30=`, subprotocol
//!   `graphql-ws`. The auth object names the *HTTP* host; IAM signs `POST …/graphql/connect` with
//!   body `{}`.
//! - `connection_init` → `connection_ack` (`payload.connectionTimeoutMs`: the longest silence
//!   between two `ka` keep-alives before the connection counts as lost).
//! - `start` (`payload.data` = the JSON text `{query, variables}`, `payload.extensions.authorization`
//!   = the auth object; IAM signs `POST …/graphql` with `data` as the body) → `start_ack` (the
//!   part is active) or `error` (the part is refused: final for that part only); then `data`
//!   messages; `stop` → `complete`.
//! - An invalidated subscription (<https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-invalidation.html>)
//!   gets `{"message":"Subscription complete."}`: that part ends with
//!   [`SubscribeError::Invalidated`], and is never restarted.
//!
//! Groups: `onlyGroups` holds at most [`crate::limits::SUBSCRIPTION_MAX_GROUPS`] groups (the
//! subscription filter's capacity; a deployment may configure fewer, [`GraphqlSubscriberBuilder::max_groups`]),
//! so more groups are split into several subscriptions ("parts") on the same connection, merged
//! and de-duplicated by message id. Fail closed: a message whose groups share none with the part's
//! groups, or whose topic does not begin with the prefix, is dropped even if the service sent it.
//!
//! Loss of the connection (close, network error, missed keep-alive) reconnects after
//! [`ReconnectPolicy::delay`] and restarts every part that has not ended.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use uuid::Uuid;

use super::{
    ConnectionState, Dedup, Received, ReconnectPolicy, SubscribeError, Subscription,
    SubscriptionEvent,
};
use crate::auth::Authorizer;
use crate::error::GraphqlError;
use crate::limits::{FILTER_VALUE_MAX_CHARS, SUBSCRIPTION_MAX_GROUPS};
use crate::message::Envelope;
use crate::outputs::Outputs;
use crate::sign::{APPSYNC_SERVICE, SigV4};

/// The WebSocket subprotocol of AppSync's GraphQL realtime protocol.
pub const SUBPROTOCOL: &str = "graphql-ws";

/// The subscription groupcast sends: the rendered schema's (`templates/graphql/schema.graphql.tera`)
/// `subscribe(prefix, onlyGroups)` selecting every field of `Message`.
pub const SUBSCRIPTION_QUERY: &str = "subscription Subscribe($prefix: String, $onlyGroups: [String!]) { subscribe(prefix: $prefix, onlyGroups: $onlyGroups) { uuid topic data groups } }";

/// The keep-alive timeout when `connection_ack` names none (the documented default, 5 minutes).
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_millis(300_000);

/// How long the handshake (WebSocket upgrade + `connection_ack`) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// How often dropped [`Subscription`]s are looked for (their parts then get `stop`).
const DROP_CHECK: Duration = Duration::from_millis(200);

/// The text AppSync sends when it invalidates a subscription.
pub const INVALIDATION_MESSAGE: &str = "Subscription complete.";

/// The realtime endpoint of a GraphQL endpoint URL: `https://X.appsync-api.R.amazonaws.com/graphql`
/// → `wss://X.appsync-realtime-api.R.amazonaws.com/graphql` (documented); any other `https://`
/// host (a custom domain) → `wss://host/graphql/realtime` (documented); `http://` (a local
/// server) → `ws://` at the same path.
///
/// # Errors
/// [`SubscribeError::Invalid`] (`graphql.url`) when `url` is not an http(s) URL.
pub fn realtime_url(url: &str) -> Result<String, SubscribeError> {
    let u = reqwest::Url::parse(url.trim())
        .map_err(|e| invalid("graphql.url", format!("{url:?}: {e}")))?;
    let host = u.host_str().unwrap_or_default();
    match u.scheme() {
        "https" if host.contains(".appsync-api.") => {
            let mut r = u.clone();
            r.set_host(Some(&host.replacen(
                ".appsync-api.",
                ".appsync-realtime-api.",
                1,
            )))
            .map_err(|e| invalid("graphql.url", format!("{url:?}: {e}")))?;
            Ok(r.as_str().replacen("https://", "wss://", 1))
        }
        "https" => Ok(format!("wss://{}/graphql/realtime", authority(&u))),
        "http" => Ok(u.as_str().replacen("http://", "ws://", 1)),
        other => Err(invalid(
            "graphql.url",
            format!(
                "{url:?}: the scheme is {other:?}; expected https (or http for a local server)"
            ),
        )),
    }
}

fn authority(u: &reqwest::Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
        None => u.host_str().unwrap_or_default().to_owned(),
    }
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> SubscribeError {
    SubscribeError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// Builds a [`GraphqlSubscriber`]; start from [`GraphqlSubscriber::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct GraphqlSubscriberBuilder {
    url: Option<String>,
    realtime_url: Option<String>,
    region: Option<String>,
    authorizer: Option<Authorizer>,
    max_groups: Option<usize>,
    reconnect: ReconnectPolicy,
    buffer: Option<usize>,
}

impl GraphqlSubscriberBuilder {
    /// The GraphQL endpoint (`https://….appsync-api.….amazonaws.com/graphql`, or `http://…` for a
    /// local server). Its host goes into every auth object; the realtime URL is derived from it
    /// ([`realtime_url`]) unless given.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
    /// The realtime endpoint (`wss://…/graphql`), when it is not the derived one.
    pub fn realtime_url(mut self, url: impl Into<String>) -> Self {
        self.realtime_url = Some(url.into());
        self
    }
    /// The SigV4 region (IAM only; default: the one in an AppSync host name).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// How the connection and every subscription are authorized: a Cognito/OIDC or Lambda token,
    /// an API key, or IAM.
    pub fn authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }
    /// Groups per subscription (the deployment's `graphql.max_groups_per_subscription`; default and
    /// largest [`SUBSCRIPTION_MAX_GROUPS`]).
    pub fn max_groups(mut self, n: usize) -> Self {
        self.max_groups = Some(n);
        self
    }
    /// The reconnect backoff.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }
    /// Events buffered per subscription before the connection waits for its reader (default 256).
    pub fn buffer(mut self, n: usize) -> Self {
        self.buffer = Some(n);
        self
    }

    /// Checks the settings. Nothing connects until the first [`GraphqlSubscriber::subscribe`].
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] naming the setting (`graphql.url`, `authorizer`, `region`,
    /// `max_groups`).
    pub fn build(self) -> Result<GraphqlSubscriber, SubscribeError> {
        let url = self
            .url
            .ok_or_else(|| invalid("graphql.url", "is required: the GraphQL endpoint URL"))?;
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| invalid("graphql.url", format!("{url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid(
                "graphql.url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        let realtime = match self.realtime_url {
            Some(r) => {
                let p = reqwest::Url::parse(r.trim())
                    .map_err(|e| invalid("graphql.realtime_url", format!("{r:?}: {e}")))?;
                if !matches!(p.scheme(), "ws" | "wss") {
                    return Err(invalid(
                        "graphql.realtime_url",
                        format!("{r:?} is not a ws(s) URL"),
                    ));
                }
                r.trim().to_owned()
            }
            None => realtime_url(&url)?,
        };
        let authorizer = self.authorizer.ok_or_else(|| {
            invalid(
                "authorizer",
                "is required: a token, an API key or IAM credentials",
            )
        })?;
        let region = self.region.or_else(|| {
            // X.appsync-api.REGION.amazonaws.com
            let host = parsed.host_str().unwrap_or_default();
            let mut labels = host.split('.');
            labels.find(|l| *l == "appsync-api")?;
            labels.next().map(str::to_owned)
        });
        if matches!(authorizer, Authorizer::Iam(_)) && region.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "region",
                "IAM signing needs a region: set it, or use an AppSync host name that names it",
            ));
        }
        let max_groups = self.max_groups.unwrap_or(SUBSCRIPTION_MAX_GROUPS);
        if !(1..=SUBSCRIPTION_MAX_GROUPS).contains(&max_groups) {
            return Err(invalid(
                "max_groups",
                format!(
                    "{max_groups}: must be 1 to {SUBSCRIPTION_MAX_GROUPS} (limits::SUBSCRIPTION_MAX_GROUPS)"
                ),
            ));
        }
        let (states, _) = watch::channel(ConnectionState::Closed);
        Ok(GraphqlSubscriber {
            inner: Arc::new(Inner {
                settings: Arc::new(Settings {
                    http_url: parsed.as_str().to_owned(),
                    http_host: authority(&parsed),
                    realtime_url: realtime,
                    region: region.unwrap_or_default(),
                    authorizer,
                    reconnect: self.reconnect,
                }),
                max_groups,
                buffer: self.buffer.unwrap_or(256).max(1),
                states,
                task: tokio::sync::Mutex::new(TaskState::NotStarted),
            }),
        })
    }
}

#[derive(Debug)]
struct Settings {
    http_url: String,
    http_host: String,
    realtime_url: String,
    region: String,
    authorizer: Authorizer,
    reconnect: ReconnectPolicy,
}

#[derive(Debug)]
enum TaskState {
    NotStarted,
    Running(mpsc::Sender<Command>),
    Closed,
}

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    max_groups: usize,
    buffer: usize,
    states: watch::Sender<ConnectionState>,
    task: tokio::sync::Mutex<TaskState>,
}

/// Receives groupcast messages from an AppSync GraphQL pubsub API. Cheap to clone (one
/// connection, shared); see the [module docs](self).
#[derive(Debug, Clone)]
pub struct GraphqlSubscriber {
    inner: Arc<Inner>,
}

impl GraphqlSubscriber {
    /// Starts a builder.
    pub fn builder() -> GraphqlSubscriberBuilder {
        GraphqlSubscriberBuilder::default()
    }

    /// From the provisioner's outputs (`graphql.url`, `graphql.realtimeUrl`, `region`) and an
    /// authorizer.
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] when the outputs have no GraphQL API, or as
    /// [`GraphqlSubscriberBuilder::build`].
    pub fn from_outputs(
        outputs: &Outputs,
        authorizer: Authorizer,
    ) -> Result<GraphqlSubscriber, SubscribeError> {
        let g = outputs.graphql.as_ref().ok_or_else(|| {
            invalid(
                "graphql",
                "the outputs have no GraphQL API (no [graphql] was provisioned)",
            )
        })?;
        let mut b = GraphqlSubscriber::builder()
            .url(&g.url)
            .authorizer(authorizer);
        if !g.realtime_url.is_empty() {
            b = b.realtime_url(&g.realtime_url);
        }
        if !outputs.region.is_empty() {
            b = b.region(&outputs.region);
        }
        b.build()
    }

    /// The connection's state, as it changes (`Closed` before the first subscription; the
    /// connection closes, and the state stays as it was, while no subscription is left).
    pub fn states(&self) -> watch::Receiver<ConnectionState> {
        self.inner.states.subscribe()
    }

    /// Subscribes to the messages of the caller's groups whose topic begins with `prefix` (empty:
    /// every topic): all the groups the service grants the caller (`only_groups` `None`), or the
    /// given ones, split into subscriptions of at most [`GraphqlSubscriberBuilder::max_groups`]
    /// groups. Connects on first use. The [`Subscription`] reports
    /// [`SubscriptionEvent::Active`] once every part is acknowledged (`start_ack`).
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] for an empty, oversize or duplicate-only group list or a group
    /// longer than a filter value ([`FILTER_VALUE_MAX_CHARS`]); [`SubscribeError::Closed`] after
    /// [`Self::close`] or a final connection error.
    pub async fn subscribe(
        &self,
        prefix: &str,
        only_groups: Option<&[String]>,
    ) -> Result<Subscription, SubscribeError> {
        let parts = plan_parts(prefix, only_groups, self.inner.max_groups)?;
        let (tx, subscription) = Subscription::channel(self.inner.buffer);
        let commands = self.commands().await?;
        commands
            .send(Command::Subscribe {
                prefix: prefix.to_owned(),
                parts,
                tx,
            })
            .await
            .map_err(|_| SubscribeError::Closed)?;
        Ok(subscription)
    }

    /// Stops every subscription (`stop`), closes the connection and ends every [`Subscription`]
    /// stream. Later calls to [`Self::subscribe`] fail with [`SubscribeError::Closed`].
    pub async fn close(&self) {
        let mut task = self.inner.task.lock().await;
        if let TaskState::Running(commands) = &*task {
            let (done, wait) = oneshot::channel();
            if commands.send(Command::Close(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
        *task = TaskState::Closed;
        self.inner.states.send_replace(ConnectionState::Closed);
    }

    async fn commands(&self) -> Result<mpsc::Sender<Command>, SubscribeError> {
        let mut task = self.inner.task.lock().await;
        match &*task {
            TaskState::Running(c) if !c.is_closed() => return Ok(c.clone()),
            TaskState::Running(_) | TaskState::Closed => return Err(SubscribeError::Closed),
            TaskState::NotStarted => {}
        }
        let (commands, receiver) = mpsc::channel(64);
        tokio::spawn(
            Connection {
                settings: self.inner.settings.clone(),
                states: self.inner.states.clone(),
                subs: HashMap::new(),
                routes: HashMap::new(),
                next_sub: 0,
            }
            .run(receiver),
        );
        *task = TaskState::Running(commands.clone());
        Ok(commands)
    }
}

/// One `start`: the groups slice it carries and its `data` text.
#[derive(Debug, Clone)]
struct PartPlan {
    label: String,
    groups: Option<HashSet<String>>,
    data: String,
}

/// The parts of one `subscribe` call.
fn plan_parts(
    prefix: &str,
    only_groups: Option<&[String]>,
    max_groups: usize,
) -> Result<Vec<PartPlan>, SubscribeError> {
    if prefix.chars().count() > FILTER_VALUE_MAX_CHARS {
        return Err(invalid(
            "prefix",
            format!(
                "is {} characters; a filter value holds at most {FILTER_VALUE_MAX_CHARS} (limits::FILTER_VALUE_MAX_CHARS)",
                prefix.chars().count()
            ),
        ));
    }
    let prefix_var = if prefix.is_empty() {
        serde_json::Value::Null
    } else {
        prefix.into()
    };
    let data = |groups: Option<&[String]>| {
        serde_json::json!({
            "query": SUBSCRIPTION_QUERY,
            "variables": {"prefix": prefix_var, "onlyGroups": groups},
        })
        .to_string()
    };
    let Some(groups) = only_groups else {
        return Ok(vec![PartPlan {
            label: "*".into(),
            groups: None,
            data: data(None),
        }]);
    };
    if groups.is_empty() {
        return Err(invalid(
            "only_groups",
            "is empty: give at least one group, or None for all of the caller's groups",
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        if g.is_empty() || g.chars().count() > FILTER_VALUE_MAX_CHARS {
            return Err(invalid(
                format!("only_groups[{i}]"),
                format!(
                    "{g:?}: a group is 1 to {FILTER_VALUE_MAX_CHARS} characters (limits::FILTER_VALUE_MAX_CHARS)"
                ),
            ));
        }
        if !unique.contains(g) {
            unique.push(g.clone());
        }
    }
    Ok(unique
        .chunks(max_groups)
        .map(|chunk| PartPlan {
            label: chunk.join(","),
            groups: Some(chunk.iter().cloned().collect()),
            data: data(Some(chunk)),
        })
        .collect())
}

#[derive(Debug)]
enum Command {
    Subscribe {
        prefix: String,
        parts: Vec<PartPlan>,
        tx: mpsc::Sender<SubscriptionEvent>,
    },
    Close(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Part {
    plan: PartPlan,
    /// The `start` id on the current connection.
    ws_id: Option<String>,
    acked: bool,
    ended: bool,
}

#[derive(Debug)]
struct Sub {
    prefix: String,
    parts: Vec<Part>,
    tx: mpsc::Sender<SubscriptionEvent>,
    dedup: Dedup,
    active_reported: bool,
}

impl Sub {
    fn live(&self) -> bool {
        self.parts.iter().any(|p| !p.ended) && !self.tx.is_closed()
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a connection ended.
enum Lost {
    /// Retry after a backoff.
    Retry(String),
    /// `close()` was called.
    Closed,
    /// Every subscription is gone; connect again when a new one comes.
    Idle,
}

/// The connection task's state: every subscription, and which `start` id belongs to which part.
struct Connection {
    settings: Arc<Settings>,
    states: watch::Sender<ConnectionState>,
    subs: HashMap<u64, Sub>,
    /// `start` id → (subscription, part index).
    routes: HashMap<String, (u64, usize)>,
    next_sub: u64,
}

/// A message from the server, as far as the subscriber reads it.
#[derive(Deserialize)]
struct ServerFrame {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

impl Connection {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut attempt: u32 = 0;
        loop {
            // Connect only while someone listens.
            self.subs.retain(|_, s| s.live());
            if self.subs.is_empty() {
                match commands.recv().await {
                    None => return,
                    Some(Command::Close(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => {
                        self.accept(c);
                        continue;
                    }
                }
            }
            self.set_state(ConnectionState::Connecting).await;
            let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connect()).await;
            let (ws, keep_alive) = match connected {
                Ok(Ok(c)) => c,
                Ok(Err(ConnectError::Final(message))) => {
                    self.end_all(SubscribeError::Connection(message)).await;
                    self.set_state(ConnectionState::Closed).await;
                    return;
                }
                Ok(Err(ConnectError::Retry(reason))) => {
                    tracing::warn!(%reason, "graphql subscriber: connecting failed");
                    attempt = attempt.saturating_add(1);
                    if self.backoff(attempt, &mut commands).await {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    tracing::warn!(
                        "graphql subscriber: no connection_ack within {HANDSHAKE_TIMEOUT:?}"
                    );
                    attempt = attempt.saturating_add(1);
                    if self.backoff(attempt, &mut commands).await {
                        return;
                    }
                    continue;
                }
            };
            attempt = 0;
            self.set_state(ConnectionState::Connected).await;
            match self.serve(ws, keep_alive, &mut commands).await {
                Lost::Closed => {
                    self.set_state(ConnectionState::Closed).await;
                    return;
                }
                Lost::Idle => {}
                Lost::Retry(reason) => {
                    tracing::warn!(%reason, "graphql subscriber: connection lost");
                    attempt = 1;
                    if self.backoff(attempt, &mut commands).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits out the backoff of `attempt`, taking commands meanwhile. True when closed.
    async fn backoff(&mut self, attempt: u32, commands: &mut mpsc::Receiver<Command>) -> bool {
        let delay = self.settings.reconnect.delay(attempt);
        self.set_state(ConnectionState::Backoff { attempt, delay })
            .await;
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return false,
                c = commands.recv() => match c {
                    None => return true,
                    Some(Command::Close(done)) => {
                        self.subs.clear();
                        self.set_state(ConnectionState::Closed).await;
                        let _ = done.send(());
                        return true;
                    }
                    Some(c) => {
                        self.accept(c);
                    }
                }
            }
        }
    }

    /// Registers a new subscription; its parts start on the current or next connection.
    fn accept(&mut self, c: Command) -> Option<u64> {
        let Command::Subscribe { prefix, parts, tx } = c else {
            return None;
        };
        let id = self.next_sub;
        self.next_sub += 1;
        self.subs.insert(
            id,
            Sub {
                prefix,
                parts: parts
                    .into_iter()
                    .map(|plan| Part {
                        plan,
                        ws_id: None,
                        acked: false,
                        ended: false,
                    })
                    .collect(),
                tx,
                dedup: Dedup::default(),
                active_reported: false,
            },
        );
        Some(id)
    }

    async fn set_state(&mut self, state: ConnectionState) {
        if *self.states.borrow() == state {
            return;
        }
        self.states.send_replace(state.clone());
        for s in self.subs.values() {
            let _ = s.tx.send(SubscriptionEvent::State(state.clone())).await;
        }
    }

    /// Ends every live part of every subscription with `error`, and drops them all.
    async fn end_all(&mut self, error: SubscribeError) {
        for (_, s) in self.subs.drain() {
            for p in s.parts.iter().filter(|p| !p.ended) {
                let _ =
                    s.tx.send(SubscriptionEvent::PartEnded {
                        part: p.plan.label.clone(),
                        error: error.clone(),
                    })
                    .await;
            }
        }
        self.routes.clear();
    }

    /// The auth object for the connection (`connect`: IAM signs `…/graphql/connect`, body `{}`)
    /// or for one `start` (IAM signs `…/graphql`, body `data`).
    async fn auth_object(
        &self,
        connect: bool,
        body: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        auth_object(&self.settings, connect, body, SystemTime::now()).await
    }

    async fn connect(&mut self) -> Result<(Ws, Duration), ConnectError> {
        let header = self
            .auth_object(true, "{}")
            .await
            .map_err(ConnectError::Final)?;
        let url = connect_url(&self.settings.realtime_url, &header);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Final(format!("graphql.realtime_url: {e}")))?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            http::HeaderValue::from_static(SUBPROTOCOL),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(classify_ws)?;
        ws.send(Frame::text(r#"{"type":"connection_init"}"#))
            .await
            .map_err(classify_ws)?;
        loop {
            let text = match ws.next().await {
                None => return Err(ConnectError::Retry("closed before connection_ack".into())),
                Some(Err(e)) => return Err(classify_ws(e)),
                Some(Ok(Frame::Text(t))) => t,
                Some(Ok(Frame::Close(f))) => {
                    return Err(ConnectError::Retry(format!(
                        "closed before connection_ack: {f:?}"
                    )));
                }
                Some(Ok(_)) => continue,
            };
            let Ok(f) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
                tracing::warn!(frame = %snippet(text.as_str()), "graphql subscriber: ignoring a message that is not JSON");
                continue;
            };
            match f.kind.as_deref() {
                Some("connection_ack") => {
                    let ms = f
                        .payload
                        .as_ref()
                        .and_then(|p| {
                            // AppSync: connectionTimeoutMs; the simulator: connectionTimeout.
                            p.get("connectionTimeoutMs")
                                .or_else(|| p.get("connectionTimeout"))
                        })
                        .and_then(serde_json::Value::as_u64)
                        .filter(|ms| *ms > 0);
                    return Ok((
                        ws,
                        ms.map_or(DEFAULT_CONNECTION_TIMEOUT, Duration::from_millis),
                    ));
                }
                Some("connection_error" | "error") => {
                    let errors = errors_of(f.payload.as_ref());
                    let text = errors_text(&errors);
                    return Err(if is_unauthorized(&errors) {
                        ConnectError::Final(format!("connection refused: {text}"))
                    } else {
                        ConnectError::Retry(format!("connection_error: {text}"))
                    });
                }
                _ => {}
            }
        }
    }

    /// Serves one connection until it is lost, closed, or nobody listens.
    async fn serve(
        &mut self,
        ws: Ws,
        keep_alive: Duration,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Lost {
        let (mut sink, mut stream) = ws.split();
        self.routes.clear();
        for s in self.subs.values_mut() {
            s.active_reported = false;
            for p in &mut s.parts {
                p.ws_id = None;
                p.acked = false;
            }
        }
        let ids: Vec<u64> = self.subs.keys().copied().collect();
        for id in ids {
            if let Err(reason) = self.start_all(id, &mut sink).await {
                return Lost::Retry(reason);
            }
        }
        let mut ka_deadline = Instant::now() + keep_alive;
        let mut drop_check = tokio::time::interval(DROP_CHECK);
        loop {
            tokio::select! {
                c = commands.recv() => match c {
                    None | Some(Command::Close(_)) => {
                        let ids: Vec<u64> = self.subs.keys().copied().collect();
                        for id in ids {
                            let _ = self.stop_all(id, &mut sink).await;
                        }
                        let _ = sink.send(Frame::Close(None)).await;
                        self.subs.clear();
                        self.routes.clear();
                        if let Some(Command::Close(done)) = c {
                            self.set_state(ConnectionState::Closed).await;
                            let _ = done.send(());
                        }
                        return Lost::Closed;
                    }
                    Some(c) => {
                        if let Some(id) = self.accept(c)
                            && let Err(reason) = self.start_all(id, &mut sink).await
                        {
                            return Lost::Retry(reason);
                        }
                    }
                },
                _ = drop_check.tick() => {
                    let dropped: Vec<u64> = self.subs.iter().filter(|(_, s)| s.tx.is_closed()).map(|(id, _)| *id).collect();
                    for id in dropped {
                        if let Err(reason) = self.stop_all(id, &mut sink).await {
                            return Lost::Retry(reason);
                        }
                        self.subs.remove(&id);
                    }
                    if self.subs.is_empty() {
                        let _ = sink.send(Frame::Close(None)).await;
                        return Lost::Idle;
                    }
                }
                frame = stream.next() => match frame {
                    None => return Lost::Retry("the server closed the connection".into()),
                    Some(Err(e)) => return Lost::Retry(e.to_string()),
                    Some(Ok(Frame::Close(f))) => return Lost::Retry(format!("the server closed the connection: {f:?}")),
                    Some(Ok(Frame::Text(t))) => {
                        match self.on_text(t.as_str()).await {
                            Handled::Ok => {}
                            Handled::KeepAlive => ka_deadline = Instant::now() + keep_alive,
                            Handled::Lost(reason) => return Lost::Retry(reason),
                        }
                    }
                    Some(Ok(_)) => {}
                },
                () = tokio::time::sleep_until(ka_deadline) => {
                    let _ = sink.send(Frame::Close(None)).await;
                    return Lost::Retry(format!("no keep-alive (ka) within connectionTimeoutMs = {} ms", keep_alive.as_millis()));
                }
            }
        }
    }

    /// Sends `start` for every part of subscription `id` that has not ended.
    async fn start_all<S>(&mut self, id: u64, sink: &mut S) -> Result<(), String>
    where
        S: futures::Sink<Frame, Error = tungstenite::Error> + Unpin,
    {
        let Some(sub) = self.subs.get(&id) else {
            return Ok(());
        };
        let mut frames = Vec::new();
        for (i, p) in sub.parts.iter().enumerate() {
            if p.ended {
                continue;
            }
            let ws_id = Uuid::new_v4().to_string();
            let authorization = match self.auth_object(false, &p.plan.data).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "graphql subscriber: cannot authorize a start");
                    return Err(e);
                }
            };
            let frame = serde_json::json!({
                "id": ws_id,
                "type": "start",
                "payload": {"data": p.plan.data, "extensions": {"authorization": authorization}},
            })
            .to_string();
            frames.push((i, ws_id, frame));
        }
        for (i, ws_id, frame) in frames {
            sink.send(Frame::text(frame))
                .await
                .map_err(|e| format!("sending start failed: {e}"))?;
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.parts[i].ws_id = Some(ws_id.clone());
            }
            self.routes.insert(ws_id, (id, i));
        }
        Ok(())
    }

    /// Sends `stop` for every started part of subscription `id`.
    async fn stop_all<S>(&mut self, id: u64, sink: &mut S) -> Result<(), String>
    where
        S: futures::Sink<Frame, Error = tungstenite::Error> + Unpin,
    {
        let Some(sub) = self.subs.get_mut(&id) else {
            return Ok(());
        };
        for p in &mut sub.parts {
            if let Some(ws_id) = p.ws_id.take() {
                self.routes.remove(&ws_id);
                if !p.ended {
                    sink.send(Frame::text(
                        serde_json::json!({"type": "stop", "id": ws_id}).to_string(),
                    ))
                    .await
                    .map_err(|e| format!("sending stop failed: {e}"))?;
                }
            }
        }
        Ok(())
    }

    async fn on_text(&mut self, text: &str) -> Handled {
        let Ok(f) = serde_json::from_str::<ServerFrame>(text) else {
            tracing::warn!(frame = %snippet(text), "graphql subscriber: ignoring a message that is not a JSON object");
            return Handled::Ok;
        };
        let invalidated = is_invalidation(&f);
        let route = f.id.as_ref().and_then(|id| self.routes.get(id).copied());
        match (f.kind.as_deref(), route) {
            (Some("ka"), _) => Handled::KeepAlive,
            (_, None) if invalidated && f.id.is_none() => {
                // An invalidation that names no subscription: fail closed, end them all.
                let all: Vec<(u64, usize)> = self.routes.values().copied().collect();
                for (sub, part) in all {
                    self.end_part(
                        sub,
                        part,
                        SubscribeError::Invalidated {
                            part: String::new(),
                            message: INVALIDATION_MESSAGE.into(),
                        },
                    )
                    .await;
                }
                Handled::Ok
            }
            (_, Some((sub, part))) if invalidated => {
                self.end_part(
                    sub,
                    part,
                    SubscribeError::Invalidated {
                        part: String::new(),
                        message: INVALIDATION_MESSAGE.into(),
                    },
                )
                .await;
                Handled::Ok
            }
            (Some("start_ack"), Some((sub, part))) => {
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.parts[part].acked = true;
                }
                self.report_active(sub).await;
                Handled::Ok
            }
            (Some("data"), Some((sub, part))) => {
                self.on_data(sub, part, f.payload.as_ref()).await;
                Handled::Ok
            }
            (Some("error"), Some((sub, part))) => {
                let errors = errors_of(f.payload.as_ref());
                let message = errors_text(&errors);
                let error = if is_unauthorized(&errors) {
                    SubscribeError::Unauthorized {
                        part: String::new(),
                        message,
                    }
                } else {
                    SubscribeError::Rejected {
                        part: String::new(),
                        error_type: errors
                            .iter()
                            .find_map(|e| e.error_type.clone())
                            .unwrap_or_else(|| "Error".into()),
                        message,
                    }
                };
                self.end_part(sub, part, error).await;
                Handled::Ok
            }
            (Some("complete"), Some((sub, part))) => {
                // We sent no stop (a stopped part has no route): the service ended the part.
                self.end_part(
                    sub,
                    part,
                    SubscribeError::Invalidated {
                        part: String::new(),
                        message: "the service completed the subscription".into(),
                    },
                )
                .await;
                Handled::Ok
            }
            (Some("connection_error"), _) => Handled::Lost(format!(
                "connection_error: {}",
                errors_text(&errors_of(f.payload.as_ref()))
            )),
            (kind, _) => {
                tracing::debug!(?kind, id = ?f.id, "graphql subscriber: ignoring a message");
                Handled::Ok
            }
        }
    }

    /// Ends one part with `error` (its `part` field filled in), and the subscription when no
    /// part is left.
    async fn end_part(&mut self, sub: u64, part: usize, error: SubscribeError) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        let p = &mut s.parts[part];
        if p.ended {
            return;
        }
        p.ended = true;
        if let Some(ws_id) = p.ws_id.take() {
            self.routes.remove(&ws_id);
        }
        let label = p.plan.label.clone();
        let error = with_part(error, &label);
        let _ =
            s.tx.send(SubscriptionEvent::PartEnded { part: label, error })
                .await;
        if s.parts.iter().all(|p| p.ended) {
            self.subs.remove(&sub);
        } else {
            self.report_active(sub).await;
        }
    }

    /// Reports [`SubscriptionEvent::Active`] once every live part of `sub` is acknowledged.
    async fn report_active(&mut self, sub: u64) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        if !s.active_reported && s.parts.iter().filter(|p| !p.ended).all(|p| p.acked) {
            s.active_reported = true;
            let _ = s.tx.send(SubscriptionEvent::Active).await;
        }
    }

    async fn on_data(&mut self, sub: u64, part: usize, payload: Option<&serde_json::Value>) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        let p = &s.parts[part];
        let envelope = match payload.map(envelope_of) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::warn!(error = %e, part = %p.plan.label, "graphql subscriber: dropping a malformed data message");
                return;
            }
            None => {
                tracing::warn!(part = %p.plan.label, "graphql subscriber: dropping a data message without payload");
                return;
            }
        };
        // Fail closed: the service filters by groups and prefix; a message it should not have
        // sent is dropped here too.
        if let Some(groups) = &p.plan.groups
            && !envelope.groups.iter().any(|g| groups.contains(g))
        {
            tracing::warn!(id = %envelope.id, part = %p.plan.label, "graphql subscriber: dropping a message addressed to none of the part's groups");
            return;
        }
        if !envelope.topic.starts_with(&s.prefix) {
            tracing::warn!(id = %envelope.id, topic = %envelope.topic, "graphql subscriber: dropping a message outside the prefix");
            return;
        }
        if !s.dedup.first_time(envelope.id) {
            return;
        }
        let part_label = p.plan.label.clone();
        let _ =
            s.tx.send(SubscriptionEvent::Message(Received {
                envelope,
                part: part_label,
            }))
            .await;
    }
}

enum Handled {
    Ok,
    KeepAlive,
    Lost(String),
}

enum ConnectError {
    Final(String),
    Retry(String),
}

fn with_part(error: SubscribeError, label: &str) -> SubscribeError {
    match error {
        SubscribeError::Unauthorized { message, .. } => SubscribeError::Unauthorized {
            part: label.to_owned(),
            message,
        },
        SubscribeError::Rejected {
            error_type,
            message,
            ..
        } => SubscribeError::Rejected {
            part: label.to_owned(),
            error_type,
            message,
        },
        SubscribeError::Invalidated { message, .. } => SubscribeError::Invalidated {
            part: label.to_owned(),
            message,
        },
        other => other,
    }
}

/// True for AppSync's invalidation message, `{"message":"Subscription complete."}`, top level or
/// in the payload.
fn is_invalidation(f: &ServerFrame) -> bool {
    let payload_message = f
        .payload
        .as_ref()
        .and_then(|p| p.get("message"))
        .and_then(serde_json::Value::as_str);
    f.message.as_deref() == Some(INVALIDATION_MESSAGE)
        || payload_message == Some(INVALIDATION_MESSAGE)
}

/// The envelope in a `data` payload: `{"data":{"subscribe":{uuid, topic, data (AWSJSON), groups}}}`.
fn envelope_of(payload: &serde_json::Value) -> Result<Envelope, String> {
    #[derive(Deserialize)]
    struct Fields {
        uuid: String,
        topic: String,
        data: serde_json::Value,
        groups: Vec<String>,
    }
    let fields = payload
        .get("data")
        .and_then(|d| d.get("subscribe"))
        .filter(|v| !v.is_null())
        .ok_or("no data.subscribe")?;
    let f: Fields =
        serde_json::from_value(fields.clone()).map_err(|e| format!("data.subscribe: {e}"))?;
    let id =
        Uuid::parse_str(&f.uuid).map_err(|e| format!("data.subscribe.uuid {:?}: {e}", f.uuid))?;
    // AWSJSON arrives as JSON text; be lenient with a server that sends it parsed.
    let data = match f.data {
        serde_json::Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| format!("data.subscribe.data is not JSON text: {e}"))?,
        other => other,
    };
    Ok(Envelope {
        id,
        topic: f.topic,
        data,
        groups: f.groups,
    })
}

fn errors_of(payload: Option<&serde_json::Value>) -> Vec<GraphqlError> {
    payload
        .and_then(|p| p.get("errors"))
        .and_then(|e| serde_json::from_value::<Vec<GraphqlError>>(e.clone()).ok())
        .unwrap_or_default()
}

fn is_unauthorized(errors: &[GraphqlError]) -> bool {
    errors.iter().any(|e| {
        let t = e
            .error_type
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        t.contains("unauthorized") || t.contains("forbidden") || t.contains("accessdenied")
    })
}

fn errors_text(errors: &[GraphqlError]) -> String {
    if errors.is_empty() {
        return "no errors given".into();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn snippet(text: &str) -> String {
    crate::retry::snippet(text)
}

/// `{realtime}?header=<base64 auth object>&payload=e30=` (`e30=` is `{}`), as documented.
pub fn connect_url(realtime: &str, header: &serde_json::Map<String, serde_json::Value>) -> String {
    let json = serde_json::to_vec(header).expect("a JSON map serializes");
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    let sep = if realtime.contains('?') { '&' } else { '?' };
    format!(
        "{realtime}{sep}header={}&payload=e30%3D",
        percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// The auth object of the connection (`connect`) or of a `start` whose `data` is `body`.
async fn auth_object(
    settings: &Settings,
    connect: bool,
    body: &str,
    time: SystemTime,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let host = settings.http_host.clone();
    let mut o = serde_json::Map::new();
    match &settings.authorizer {
        Authorizer::ApiKey(k) => {
            o.insert("host".into(), host.into());
            o.insert("x-api-key".into(), k.clone().into());
        }
        Authorizer::Token(p) => {
            let token = p.token().await.map_err(|e| format!("token: {e}"))?;
            o.insert("Authorization".into(), token.into());
            o.insert("host".into(), host.into());
        }
        Authorizer::Iam(iam) => {
            let credentials = iam.credentials().await.map_err(|e| e.to_string())?;
            let url = if connect {
                format!("{}/connect", settings.http_url.trim_end_matches('/'))
            } else {
                settings.http_url.clone()
            };
            let mut headers = crate::events::iam_headers();
            SigV4 {
                credentials: &credentials,
                region: &settings.region,
                service: APPSYNC_SERVICE,
            }
            .sign("POST", &url, &mut headers, body.as_bytes(), time)
            .map_err(|e| e.to_string())?;
            for (name, value) in &headers {
                let key = match name.as_str() {
                    "authorization" => "Authorization".to_owned(),
                    "x-amz-security-token" => "X-Amz-Security-Token".to_owned(),
                    other => other.to_owned(),
                };
                o.insert(key, value.to_str().unwrap_or_default().into());
            }
            o.insert("host".into(), host.into());
        }
    }
    Ok(o)
}

/// A WebSocket failure: an HTTP 401/403 on the upgrade is final, a bad URL too; the rest is
/// retried.
fn classify_ws(e: tungstenite::Error) -> ConnectError {
    match e {
        tungstenite::Error::Http(response) if matches!(response.status().as_u16(), 401 | 403) => {
            ConnectError::Final(format!(
                "the upgrade was refused: HTTP {}",
                response.status()
            ))
        }
        tungstenite::Error::Url(e) => ConnectError::Final(format!("graphql.realtime_url: {e}")),
        other => ConnectError::Retry(format!("WebSocket: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_realtime_url_of_an_appsync_endpoint_swaps_in_appsync_realtime_api() {
        assert_eq!(
            realtime_url("https://abc.appsync-api.eu-west-1.amazonaws.com/graphql").unwrap(),
            "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/graphql"
        );
        assert_eq!(
            realtime_url("https://api.example.com/graphql").unwrap(),
            "wss://api.example.com/graphql/realtime"
        );
        assert_eq!(
            realtime_url("http://127.0.0.1:2000/graphql").unwrap(),
            "ws://127.0.0.1:2000/graphql"
        );
        assert!(realtime_url("ftp://x/graphql").is_err());
        assert!(realtime_url("not a url").is_err());
    }

    #[test]
    fn groups_beyond_the_maximum_are_split_into_parts_that_partition_them() {
        let groups: Vec<String> = (0..450).map(|i| format!("g{i}")).collect();
        let parts = plan_parts("t/", Some(&groups), 200).unwrap();
        assert_eq!(parts.len(), 3);
        let mut seen = Vec::new();
        for p in &parts {
            let data: serde_json::Value = serde_json::from_str(&p.data).unwrap();
            assert_eq!(data["query"], SUBSCRIPTION_QUERY);
            assert_eq!(data["variables"]["prefix"], "t/");
            let only: Vec<String> =
                serde_json::from_value(data["variables"]["onlyGroups"].clone()).unwrap();
            assert!(only.len() <= 200);
            seen.extend(only);
        }
        assert_eq!(seen, groups);
    }

    #[test]
    fn a_group_list_that_breaks_a_rule_is_refused_naming_the_field() {
        let field = |r: Result<Vec<PartPlan>, SubscribeError>| match r {
            Err(SubscribeError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(plan_parts("", Some(&[]), 10)), "only_groups");
        assert_eq!(
            field(plan_parts("", Some(&["a".into(), String::new()]), 10)),
            "only_groups[1]"
        );
        assert_eq!(
            field(plan_parts("", Some(&["x".repeat(257)]), 10)),
            "only_groups[0]"
        );
        assert_eq!(field(plan_parts(&"p".repeat(257), None, 10)), "prefix");
        let all = plan_parts("", None, 10).unwrap();
        assert_eq!(all.len(), 1);
        let data: serde_json::Value = serde_json::from_str(&all[0].data).unwrap();
        assert!(data["variables"]["onlyGroups"].is_null());
        assert!(data["variables"]["prefix"].is_null());
    }

    #[test]
    fn a_data_payload_becomes_the_envelope_and_garbage_is_an_error_not_a_panic() {
        let id = Uuid::new_v4();
        let ok = serde_json::json!({"data": {"subscribe": {
            "uuid": id.to_string(), "topic": "t/a", "data": "{\"k\":[1]}", "groups": ["a"]}}});
        let e = envelope_of(&ok).unwrap();
        assert_eq!(e.id, id);
        assert_eq!(e.data, serde_json::json!({"k": [1]}));
        for bad in [
            serde_json::json!(null),
            serde_json::json!([1, 2]),
            serde_json::json!({"data": null}),
            serde_json::json!({"data": {"subscribe": null}}),
            serde_json::json!({"data": {"subscribe": {"uuid": "nope", "topic": "t", "data": "1", "groups": []}}}),
            serde_json::json!({"data": {"subscribe": {"uuid": id.to_string(), "topic": "t", "data": "{not json", "groups": []}}}),
            serde_json::json!({"data": {"subscribe": {"uuid": id.to_string(), "topic": 5, "data": "1", "groups": "a"}}}),
        ] {
            assert!(envelope_of(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_connect_url_carries_the_auth_object_as_base64_and_an_empty_payload() {
        let mut header = serde_json::Map::new();
        header.insert("host".into(), "h.example".into());
        header.insert("x-api-key".into(), "da2-k".into());
        let url = connect_url("wss://h.example/graphql", &header);
        let q = reqwest::Url::parse(&url).unwrap();
        let pairs: HashMap<String, String> = q.query_pairs().into_owned().collect();
        assert_eq!(pairs["payload"], "e30=");
        let json = base64::engine::general_purpose::STANDARD
            .decode(&pairs["header"])
            .unwrap();
        assert_eq!(json, br#"{"host":"h.example","x-api-key":"da2-k"}"#);
    }

    #[test]
    fn an_iam_subscriber_without_a_region_is_refused_and_one_is_read_from_the_host() {
        let iam = Authorizer::iam(aws_credential_types::Credentials::new(
            "AK", "SK", None, None, "t",
        ));
        let e = GraphqlSubscriber::builder()
            .url("http://127.0.0.1:1/graphql")
            .authorizer(iam.clone())
            .build()
            .unwrap_err();
        assert!(
            matches!(e, SubscribeError::Invalid { ref field, .. } if field == "region"),
            "{e}"
        );
        let s = GraphqlSubscriber::builder()
            .url("https://abc.appsync-api.eu-west-1.amazonaws.com/graphql")
            .authorizer(iam)
            .build()
            .unwrap();
        assert_eq!(s.inner.settings.region, "eu-west-1");
        assert_eq!(
            s.inner.settings.realtime_url,
            "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/graphql"
        );
    }
}
