//! The AppSync Events subscriber: one WebSocket per [`EventsSubscriber`] to
//! `wss://{realtime host}/event/realtime`, made on first use, carrying every [`Subscription`]
//! made through it, and remade after a loss with every live part subscribed again.
//!
//! Protocol (<https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html>;
//! `/work/shared/reference/aws-protocols.md` §2), shared with the publisher through
//! [`crate::events_ws`] (subprotocols, auth object, IAM signing, `connection_ack` parsing):
//!
//! - **Connect**: subprotocols `aws-appsync-event-ws` and `header-<base64url(auth)>`, then
//!   `connection_init`, then `connection_ack` whose `connectionTimeoutMs` bounds the silence between
//!   two messages (AWS sends `ka` every 60 s). The default authorizer is resolved anew on every
//!   connect, so a token provider's fresh token is used after a reconnect.
//! - **Subscribe**: one `{"type":"subscribe","id","channel","authorization"}` per part, with the
//!   authorization of the part's authorizer (the subscriber's, or the override given to
//!   [`EventsSubscriber::subscribe_with`]); IAM signs `{"channel":"…"}`. A part is confirmed by
//!   `subscribe_success`; [`SubscriptionEvent::Active`] is reported once every live part of a
//!   subscription is confirmed, again after each reconnect.
//! - **Refusal**: `subscribe_error` (AWS: `Unauthorized` when the handler calls
//!   `util.unauthorized()`, <https://docs.aws.amazon.com/appsync/latest/eventapi/writing-event-handlers.html>)
//!   ends that part alone with [`SubscriptionEvent::PartEnded`]; it is never sent again, not even
//!   after a reconnect. When no part is left, the subscription ends.
//! - **Data**: `{"type":"data","id","event"}`; `event` is read leniently as one JSON string (what
//!   the Amplify clients parse), an array of them (what the docs show), or a JSON object. Each
//!   event must be a groupcast [`Envelope`]; anything else is **skipped with a `tracing` warning**
//!   (a groupcast channel only carries envelopes, and a subscriber cannot act on anything else).
//!   Messages are de-duplicated per subscription by envelope id ([`Dedup`]).
//! - **Loss**: a close, a network error, `connection_error`, or no message within
//!   `connectionTimeoutMs` ends the connection; the subscriber waits [`ReconnectPolicy::delay`]
//!   ([`ConnectionState::Backoff`]) and connects again. Consecutive failures count up; the count is
//!   reset by a connection that stayed up [`STABLE_AFTER`]. A refusal of the connection itself
//!   (HTTP 401/403 on the upgrade, `connection_error` before `connection_ack`, any other 4xx) is
//!   final: every part ends with [`SubscribeError::Connection`], then [`ConnectionState::Closed`].
//! - **Epochs** (a time-sliced namespace, [`crate::epoch`]; `epochSeconds` in the outputs,
//!   `GROUPCAST_EVENTS_EPOCH_SECONDS`, [`EventsSubscriberBuilder::epoch_seconds`]): each channel of
//!   [`EventsSubscriber::subscribe_groups`] is a logical channel `/{ns}/{group}/{topic}` held as one
//!   part per epoch of [`crate::epoch::window`] (`/{ns}/{group}/t{N}/{topic}`) of the subscriber's
//!   clock. At [`crate::epoch::next_change_millis`] the new epochs are subscribed, and a dropped epoch
//!   is unsubscribed only once every epoch of the new window is confirmed: new before old, so nothing
//!   published meanwhile is missed. Messages carry the logical channel ([`Received::part`]); a message
//!   is published to one epoch, and the subscription's [`Dedup`] drops any second copy. A refused
//!   epoch (the handler re-checks the caller's groups on every subscribe, and refuses epochs far from
//!   its clock) ends the whole logical channel with [`SubscriptionEvent::PartEnded`] naming it, as a
//!   refused channel does: a member removed from a group stops receiving within two epochs.
//! - **Drop**: dropping a [`Subscription`] sends `unsubscribe` for each of its parts.
//!   [`EventsSubscriber::close`] unsubscribes everything, closes the socket and ends every
//!   subscription. The connection lives while any handle or any subscription does.
//! - **Malformed frames** (not JSON, wrong field types, unknown ids, unknown types) are logged and
//!   ignored; nothing in a frame can panic the connection task.
//!
//! A slow consumer slows the connection: messages wait for room in the subscription's buffer
//! ([`SUBSCRIPTION_BUFFER`]) rather than being dropped, and TCP flow control pushes back on the
//! server.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::auth::Authorizer;
use crate::client::{Resolved, resolve};
use crate::config::{
    EventsWsEndpoint, base_url, check_namespace, host_of, parse_epoch_seconds, realtime_url,
    resolve_epoch,
};
use crate::epoch::Clock;
use crate::error::{Error, GraphqlError};
use crate::events_ws::{self, WsStream};
use crate::group::{group_segment, is_valid_segment};
use crate::limits::CHANNEL_MAX_SEGMENTS;
use crate::message::{Envelope, validate_topic};
use crate::outputs::Outputs;
use crate::retry::{AttemptError, snippet};
use crate::subscribe::{
    ConnectionState, Dedup, Received, ReconnectPolicy, SubscribeError, Subscription,
    SubscriptionEvent,
};

/// Events a subscription buffers before the connection waits for its consumer.
pub const SUBSCRIPTION_BUFFER: usize = 1024;
/// The longest a connect (TCP, TLS, upgrade, `connection_ack`) may take before it counts as a
/// failed attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection that stayed up this long resets the count of failed attempts.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// After `close()` sent its close frame, how long it waits for the server's.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Receives groupcast messages over AppSync Events. Cheap to clone; clones share one connection.
///
/// The README's example ("Subscribing from Rust"), kept compiling here:
///
/// ```no_run
/// use groupcast::subscribe::{events::EventsSubscriber, SubscriptionEvent};
/// use groupcast::{Authorizer, Outputs, StaticToken};
///
/// # async fn run(id_token: String) -> Result<(), Box<dyn std::error::Error>> {
/// // The user's Cognito token (a TokenProvider refreshes it); the outputs name the Events API.
/// let outputs = Outputs::from_path("groupcast.outputs.json")?;
/// let subscriber = EventsSubscriber::from_outputs(&outputs, Authorizer::token(StaticToken(id_token)))?;
/// let mut sub = subscriber.subscribe_groups(&["editors", "team-a"], "comments/*").await?;
/// while let Some(event) = sub.next_event().await {
///     match event {
///         SubscriptionEvent::Active => eprintln!("listening: nothing published from now on is missed"),
///         SubscriptionEvent::Message(m) => println!("{}", serde_json::to_string(&m.envelope)?),
///         SubscriptionEvent::PartEnded { part, error } => eprintln!("{part}: {error}"),
///         _ => {} // connection states: connecting, connected, backoff, closed
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct EventsSubscriber {
    inner: Arc<Shared>,
}

/// Builds an [`EventsSubscriber`]. Start from [`EventsSubscriber::builder`].
///
/// ```
/// use groupcast::Authorizer;
/// use groupcast::subscribe::events::EventsSubscriber;
/// let subscriber = EventsSubscriber::builder()
///     .realtime_url("abc.appsync-realtime-api.us-east-1.amazonaws.com")
///     .namespace("live")
///     .authorizer(Authorizer::api_key("da2-example"))
///     .build()
///     .unwrap();
/// # let _ = subscriber;
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct EventsSubscriberBuilder {
    realtime: Option<String>,
    http: Option<String>,
    namespace: Option<String>,
    region: Option<String>,
    authorizer: Option<Authorizer>,
    reconnect: ReconnectPolicy,
    outputs_api_key: Option<String>,
    /// Set in code or by `GROUPCAST_EVENTS_EPOCH_SECONDS` (0 = off): wins over the outputs.
    epoch_seconds: Option<u64>,
    outputs_namespace_epochs: Vec<(String, Option<u64>)>,
    clock: Clock,
}

#[derive(Debug)]
struct Settings {
    endpoint: EventsWsEndpoint,
    namespace: String,
    region: Option<String>,
    authorizer: Authorizer,
    reconnect: ReconnectPolicy,
    /// The namespace's epoch, when its channels are time-sliced.
    epoch_seconds: Option<u64>,
    clock: Clock,
}

#[derive(Debug)]
struct Shared {
    settings: Arc<Settings>,
    states: Arc<watch::Sender<ConnectionState>>,
    /// Why the subscriber cannot take subscriptions any more (closed, or refused at connect).
    ended: Arc<Mutex<Option<SubscribeError>>>,
    /// The connection task's commands; `None` until first use.
    commands: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    next_sub: AtomicU64,
}

impl EventsSubscriberBuilder {
    /// The realtime host (`abc.appsync-realtime-api.us-east-1.amazonaws.com`) or a `wss://`/`ws://`
    /// base URL; `/event/realtime` is appended (as [`crate::PublisherBuilder::events_realtime`]).
    pub fn realtime_url(mut self, url: impl Into<String>) -> Self {
        self.realtime = Some(url.into());
        self
    }
    /// The HTTP host (`abc.appsync-api.us-east-1.amazonaws.com`) or base URL: the `host` of every
    /// auth object, and what IAM signs. Default: the realtime host with `appsync-realtime-api`
    /// replaced by `appsync-api` (AWS's pair of hosts), or the same host for a custom domain.
    pub fn http_host(mut self, url: impl Into<String>) -> Self {
        self.http = Some(url.into());
        self
    }
    /// The channel namespace [`EventsSubscriber::subscribe_groups`] subscribes in.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
    /// The SigV4 signing region (IAM only).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// How the connection and every subscription are authorized (unless overridden per
    /// subscription): a user's token ([`Authorizer::Token`], fetched anew on each reconnect), an
    /// API key, IAM, or a Lambda authorizer's token.
    pub fn authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }
    /// The reconnect backoff.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }
    /// The namespace's epoch in seconds when its channels are time-sliced ([`crate::epoch`]):
    /// [`EventsSubscriber::subscribe_groups`] then holds each channel's epochs and rotates them.
    /// `0` turns epochs off. Default: the outputs' `epochSeconds` of the namespace used.
    pub fn epoch_seconds(mut self, seconds: u64) -> Self {
        self.epoch_seconds = Some(seconds);
        self
    }
    /// Where "now" comes from when picking epochs (default: the system clock); for tests.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
    /// Takes the realtime and HTTP hosts, the first namespace and the region from the
    /// provisioner's outputs (as [`crate::PublisherBuilder::outputs`]). The outputs' API key is
    /// used only through [`Self::env_with`] with `GROUPCAST_AUTH=api-key`.
    pub fn outputs(mut self, outputs: &Outputs) -> Self {
        if !outputs.region.is_empty() {
            self.region = Some(outputs.region.clone());
        }
        if let Some(e) = &outputs.events {
            if !e.realtime_host.is_empty() {
                self.realtime = Some(e.realtime_host.clone());
            }
            if !e.http_host.is_empty() {
                self.http = Some(e.http_host.clone());
            }
            if let Some(ns) = e.namespaces.first() {
                self.namespace = Some(ns.name.clone());
            }
            self.outputs_namespace_epochs = e
                .namespaces
                .iter()
                .map(|n| (n.name.clone(), n.epoch_seconds))
                .collect();
            self.outputs_api_key = e.api_key.clone();
        }
        self
    }
    /// Applies the publisher's variables where they mean the same (see [`crate::config`]):
    /// `GROUPCAST_OUTPUTS`, `GROUPCAST_EVENTS_URL` (the HTTP host), `GROUPCAST_EVENTS_NAMESPACE`,
    /// `GROUPCAST_EVENTS_REALTIME_URL`, `GROUPCAST_EVENTS_EPOCH_SECONDS`, `GROUPCAST_REGION` (else `AWS_REGION`), and
    /// `GROUPCAST_AUTH=api-key` with `GROUPCAST_API_KEY` (else the outputs' key).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is malformed.
    pub fn env_with(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(path) = get("GROUPCAST_OUTPUTS") {
            self = self.outputs(&Outputs::from_path(&path)?);
        }
        if let Some(url) = get("GROUPCAST_EVENTS_URL") {
            self.http = Some(url);
        }
        if let Some(ns) = get("GROUPCAST_EVENTS_NAMESPACE") {
            self.namespace = Some(ns);
        }
        if let Some(url) = get("GROUPCAST_EVENTS_REALTIME_URL") {
            self.realtime = Some(url);
        }
        if let Some(v) = get("GROUPCAST_EVENTS_EPOCH_SECONDS") {
            self.epoch_seconds = Some(parse_epoch_seconds("GROUPCAST_EVENTS_EPOCH_SECONDS", &v)?);
        }
        if let Some(region) = get("GROUPCAST_REGION").or_else(|| get("AWS_REGION")) {
            self.region = Some(region);
        }
        match get("GROUPCAST_AUTH")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            // IAM credentials are the caller's to give (builder `.authorizer`); `build` names them.
            None | Some("iam") => {}
            Some("api-key") => {
                let key = get("GROUPCAST_API_KEY")
                    .or_else(|| self.outputs_api_key.clone())
                    .ok_or_else(|| {
                        Error::Config(
                            "GROUPCAST_AUTH=api-key but the Events API has no key: set GROUPCAST_API_KEY"
                                .into(),
                        )
                    })?;
                self.authorizer = Some(Authorizer::ApiKey(key));
            }
            Some(other) => {
                return Err(Error::Config(format!(
                    "GROUPCAST_AUTH={other:?}: expected iam or api-key"
                )));
            }
        }
        Ok(self)
    }
    /// Applies the process environment. See [`Self::env_with`].
    ///
    /// # Errors
    /// As [`Self::env_with`].
    pub fn env(self) -> Result<Self, Error> {
        self.env_with(|k| std::env::var(k).ok())
    }

    /// Checks the configuration. Nothing connects until the first subscription.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Invalid`] naming what is missing or wrong
    /// (`events.realtime_url`, `events.url`, `events.namespace`, `authorizer`).
    pub fn build(self) -> Result<EventsSubscriber, Error> {
        let realtime = self.realtime.ok_or_else(|| {
            Error::Config(
                "events.realtime_url: no realtime endpoint: set it on the builder, GROUPCAST_EVENTS_REALTIME_URL or GROUPCAST_OUTPUTS".into(),
            )
        })?;
        let url = realtime_url(&realtime)?;
        let http = match self.http {
            Some(h) => h,
            None => derive_http(&url),
        };
        let mut http_url = base_url("events.url", &http)?;
        if !http_url.ends_with("/event") {
            http_url.push_str("/event");
        }
        let namespace = self.namespace.ok_or_else(|| {
            Error::Config(
                "events.namespace: no channel namespace: set it on the builder, GROUPCAST_EVENTS_NAMESPACE or GROUPCAST_OUTPUTS".into(),
            )
        })?;
        check_namespace(&namespace)?;
        let epoch_seconds = resolve_epoch(
            self.epoch_seconds,
            &self.outputs_namespace_epochs,
            &namespace,
        )?;
        let authorizer = self.authorizer.ok_or_else(|| {
            Error::Config(
                "authorizer: the subscriber has no authorizer: give it a token provider, an API key or IAM credentials".into(),
            )
        })?;
        if matches!(authorizer, Authorizer::Iam(_)) && self.region.is_none() {
            return Err(Error::Config(
                "region: IAM signs with a region: set it on the builder, GROUPCAST_REGION or GROUPCAST_OUTPUTS".into(),
            ));
        }
        let endpoint = EventsWsEndpoint {
            url,
            http_host: host_of(&http_url),
            http_url,
        };
        let settings = Settings {
            endpoint,
            namespace,
            region: self.region,
            authorizer,
            reconnect: self.reconnect,
            epoch_seconds,
            clock: self.clock,
        };
        let (states, _) = watch::channel(ConnectionState::Connecting);
        Ok(EventsSubscriber {
            inner: Arc::new(Shared {
                settings: Arc::new(settings),
                states: Arc::new(states),
                ended: Arc::default(),
                commands: Mutex::new(None),
                next_sub: AtomicU64::new(1),
            }),
        })
    }
}

/// The HTTP base URL that pairs with a realtime URL: `appsync-realtime-api` → `appsync-api`
/// (AWS: "the real-time endpoint … `appsync-realtime-api`", the HTTP one `appsync-api`), the same
/// host otherwise (custom domains serve both), `ws` → `http` and `wss` → `https`.
fn derive_http(realtime: &str) -> String {
    let base = realtime.trim_end_matches("/event/realtime");
    let (scheme, rest) = base.split_once("://").unwrap_or(("wss", base));
    let scheme = if scheme == "ws" { "http" } else { "https" };
    format!(
        "{scheme}://{}",
        rest.replacen(".appsync-realtime-api.", ".appsync-api.", 1)
    )
}

impl EventsSubscriber {
    /// Starts a builder.
    pub fn builder() -> EventsSubscriberBuilder {
        EventsSubscriberBuilder::default()
    }

    /// A subscriber for the provisioner's Events API (realtime and HTTP hosts, first namespace,
    /// region) authorized by `authorizer`.
    ///
    /// # Errors
    /// [`Error::Config`] when the outputs have no Events API.
    pub fn from_outputs(outputs: &Outputs, authorizer: Authorizer) -> Result<Self, Error> {
        if outputs.events.is_none() {
            return Err(Error::Config(
                "events: the outputs have no Events API ([events] in the provisioner's config)"
                    .into(),
            ));
        }
        EventsSubscriberBuilder::default()
            .outputs(outputs)
            .authorizer(authorizer)
            .build()
    }

    /// Subscribes to `topic` in each of `groups`: one part per channel
    /// `/{namespace}/{group_segment(group)}/{topic}`, merged into one stream de-duplicated by
    /// message id. `topic` follows the topic rule ([`validate_topic`]) and may end in `/*`, or be
    /// `*` alone (every topic of the groups).
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] naming `groups`, `groups[i]` or `topic` (nothing is sent);
    /// [`SubscribeError::Closed`] after [`Self::close`]; [`SubscribeError::Connection`] after the
    /// service refused the connection.
    pub async fn subscribe_groups<S: AsRef<str>>(
        &self,
        groups: &[S],
        topic: &str,
    ) -> Result<Subscription, SubscribeError> {
        let settings = &self.inner.settings;
        let specs = group_specs(
            &settings.namespace,
            groups,
            topic,
            settings.epoch_seconds.is_some(),
        )?;
        self.start(specs, None)
    }

    /// Subscribes to one raw channel (`/ns/a/b`, `/ns/a/*`; the leading `/` is optional). A raw
    /// channel is taken as written, also in a time-sliced namespace: it names one epoch and is not
    /// rotated (use [`Self::subscribe_groups`] for that).
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] (field `channel`) when the path breaks AppSync's channel rule;
    /// otherwise as [`Self::subscribe_groups`].
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, SubscribeError> {
        let channel = check_channel(channel)?;
        self.start(vec![Spec::fixed(channel)], None)
    }

    /// As [`Self::subscribe`], with the subscribe message authorized by `authorizer` instead of
    /// the subscriber's (the official clients' per-subscription auth mode). The connection keeps
    /// the subscriber's authorizer.
    ///
    /// # Errors
    /// As [`Self::subscribe`].
    pub async fn subscribe_with(
        &self,
        channel: &str,
        authorizer: Authorizer,
    ) -> Result<Subscription, SubscribeError> {
        let channel = check_channel(channel)?;
        self.start(vec![Spec::fixed(channel)], Some(authorizer))
    }

    /// The connection's state, now and as it changes. [`ConnectionState::Connecting`] until the
    /// first connection is acknowledged (the connection is made on first use).
    pub fn states(&self) -> watch::Receiver<ConnectionState> {
        self.inner.states.subscribe()
    }

    /// Unsubscribes every part, closes the connection, and ends every subscription (each sees
    /// [`ConnectionState::Closed`], then its end). Later subscriptions fail with
    /// [`SubscribeError::Closed`].
    pub async fn close(&self) {
        let commands = {
            let mut ended = lock(&self.inner.ended);
            if ended.is_none() {
                *ended = Some(SubscribeError::Closed);
            }
            lock(&self.inner.commands).clone()
        };
        match commands {
            None => {
                self.inner.states.send_replace(ConnectionState::Closed);
            }
            Some(commands) => {
                let (done, wait) = oneshot::channel();
                if commands.send(Command::Close { done }).is_ok() {
                    let _ = wait.await;
                }
            }
        }
    }

    fn start(
        &self,
        channels: Vec<Spec>,
        authorizer: Option<Authorizer>,
    ) -> Result<Subscription, SubscribeError> {
        let commands = self.commands()?;
        let id = self.inner.next_sub.fetch_add(1, Ordering::Relaxed);
        let (tx, subscription) = Subscription::channel(SUBSCRIPTION_BUFFER);
        let (done, ended) = oneshot::channel::<()>();
        commands
            .send(Command::Subscribe {
                id,
                channels,
                authorizer,
                tx: tx.clone(),
                done,
            })
            .map_err(|_| self.ended_error())?;
        // Unsubscribe when the caller drops the subscription. This watcher holds a command sender,
        // so a live subscription keeps the connection alive; it goes when the connection task
        // ends the subscription (dropping `done`).
        tokio::spawn(async move {
            tokio::select! {
                () = tx.closed() => { let _ = commands.send(Command::Drop { id }); }
                _ = ended => {}
            }
        });
        Ok(subscription)
    }

    /// The connection task's commands, starting it on first use.
    fn commands(&self) -> Result<mpsc::UnboundedSender<Command>, SubscribeError> {
        let mut slot = lock(&self.inner.commands);
        if let Some(e) = lock(&self.inner.ended).clone() {
            return Err(e);
        }
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = Task {
            settings: self.inner.settings.clone(),
            states: self.inner.states.clone(),
            ended: self.inner.ended.clone(),
            commands: receiver,
            subs: HashMap::new(),
            parts: HashMap::new(),
            unsubscribe_due: Vec::new(),
        };
        tokio::spawn(task.run());
        *slot = Some(commands.clone());
        Ok(commands)
    }

    fn ended_error(&self) -> SubscribeError {
        lock(&self.inner.ended)
            .clone()
            .unwrap_or(SubscribeError::Closed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The channels of `subscribe_groups`, or the first rule broken.
fn group_channels<S: AsRef<str>>(
    namespace: &str,
    groups: &[S],
    topic: &str,
) -> Result<Vec<String>, SubscribeError> {
    let invalid = |e: Error| match e {
        Error::Invalid { field, rule } => SubscribeError::Invalid { field, rule },
        other => SubscribeError::Invalid {
            field: "topic".into(),
            rule: other.to_string(),
        },
    };
    let (base, wildcard) = match topic {
        "*" => ("", true),
        t => match t.strip_suffix("/*") {
            Some(b) => (b, true),
            None => (t, false),
        },
    };
    if !base.is_empty() || !wildcard {
        validate_topic(base).map_err(invalid)?;
        let segments = 2 + base.split('/').count() + usize::from(wildcard);
        if segments > CHANNEL_MAX_SEGMENTS {
            return Err(SubscribeError::Invalid {
                field: "topic".into(),
                rule: format!(
                    "{topic:?}: a channel /{{namespace}}/{{group}}/{{topic}} has at most {CHANNEL_MAX_SEGMENTS} segments, so a topic ending in /* has at most {} before it",
                    CHANNEL_MAX_SEGMENTS - 3
                ),
            });
        }
    }
    if groups.is_empty() {
        return Err(SubscribeError::Invalid {
            field: "groups".into(),
            rule: "at least one group: an empty list would receive nothing".into(),
        });
    }
    let mut channels: Vec<String> = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let segment = group_segment(g.as_ref()).map_err(|e| SubscribeError::Invalid {
            field: format!("groups[{i}]"),
            rule: e.to_string(),
        })?;
        let channel = match (base.is_empty(), wildcard) {
            (true, _) => format!("/{namespace}/{segment}/*"),
            (false, true) => format!("/{namespace}/{segment}/{base}/*"),
            (false, false) => format!("/{namespace}/{segment}/{base}"),
        };
        if !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    Ok(channels)
}

/// One logical channel of a subscription: a fixed channel, or (in a time-sliced namespace) a
/// channel held as one part per epoch of the window.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    /// What the caller sees: the channel without epoch, `/{ns}/{group}/{topic}`.
    logical: String,
    /// The namespace, the group segment and the topic, when time-sliced: what
    /// [`crate::events::epoch_channel`] puts the epoch segment between.
    sliced: Option<(String, String, String)>,
}

impl Spec {
    fn fixed(channel: String) -> Self {
        Spec {
            logical: channel,
            sliced: None,
        }
    }
    /// The channel of epoch `n` (the logical channel itself when not time-sliced).
    fn channel(&self, n: Option<u64>) -> String {
        match (&self.sliced, n) {
            (Some((ns, segment, topic)), Some(n)) => {
                crate::events::epoch_channel(ns, segment, Some(n), topic)
            }
            _ => self.logical.clone(),
        }
    }
}

/// The logical channels of `subscribe_groups`: [`group_channels`], split around the place of the
/// epoch segment when the namespace is time-sliced (where the topic, a final `*` included, has at
/// most [`crate::limits::EPOCH_TOPIC_MAX_SEGMENTS`] segments).
fn group_specs<S: AsRef<str>>(
    namespace: &str,
    groups: &[S],
    topic: &str,
    epochs: bool,
) -> Result<Vec<Spec>, SubscribeError> {
    let channels = group_channels(namespace, groups, topic)?;
    if !epochs {
        return Ok(channels.into_iter().map(Spec::fixed).collect());
    }
    crate::events::check_epoch_topic("topic", topic).map_err(|e| match e {
        Error::Invalid { field, rule } => SubscribeError::Invalid { field, rule },
        other => SubscribeError::Invalid {
            field: "topic".into(),
            rule: other.to_string(),
        },
    })?;
    Ok(channels
        .into_iter()
        .map(|logical| {
            // `/{ns}/{segment}/{topic}`: neither the namespace nor the segment holds a `/`.
            let mut it = logical.splitn(4, '/');
            let (_, ns, seg, tail) = (it.next(), it.next(), it.next(), it.next());
            let sliced = Some((
                ns.unwrap_or_default().to_owned(),
                seg.unwrap_or_default().to_owned(),
                tail.unwrap_or_default().to_owned(),
            ));
            Spec { logical, sliced }
        })
        .collect())
}

/// A raw channel, normalised to a leading `/`: 1-5 segments of the segment rule, the last of
/// which may be `*` (AWS: "Channel paths … may end in `*`",
/// <https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-concepts.html>).
fn check_channel(channel: &str) -> Result<String, SubscribeError> {
    const RULE: &str = "a channel is 1 to 5 segments joined by '/' (a leading '/' optional), each 1-50 characters of [A-Za-z0-9-] starting and ending with a letter or digit; the last may be '*'";
    let bad = |why: String| SubscribeError::Invalid {
        field: "channel".into(),
        rule: format!("{channel:?} {why}: {RULE}"),
    };
    let path = channel.strip_prefix('/').unwrap_or(channel);
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > CHANNEL_MAX_SEGMENTS {
        return Err(bad(format!("has {} segments", segments.len())));
    }
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        let wildcard = i == last && i > 0 && *s == "*";
        if !wildcard && !is_valid_segment(s) {
            return Err(bad(format!("has the segment {s:?}")));
        }
    }
    Ok(format!("/{path}"))
}

enum Command {
    Subscribe {
        id: u64,
        channels: Vec<Spec>,
        authorizer: Option<Authorizer>,
        tx: mpsc::Sender<SubscriptionEvent>,
        done: oneshot::Sender<()>,
    },
    Drop {
        id: u64,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// One subscription, as the connection task keeps it.
struct Sub {
    tx: mpsc::Sender<SubscriptionEvent>,
    /// Wire ids of the live parts.
    parts: Vec<String>,
    /// The time-sliced logical channels still live, whose epochs rotate.
    sliced: Vec<Spec>,
    dedup: Dedup,
    /// `Active` was reported on this connection.
    active: bool,
    /// Dropped when the task ends the subscription, which releases its drop watcher.
    _done: oneshot::Sender<()>,
}

/// One service-side subscription (one channel).
struct Part {
    sub: u64,
    /// The channel on the wire (with its epoch segment when time-sliced).
    channel: String,
    /// The channel the caller sees (without epoch).
    logical: String,
    /// The epoch of a time-sliced part.
    epoch: Option<u64>,
    authorizer: Option<Authorizer>,
    /// `subscribe_success` arrived on this connection.
    confirmed: bool,
    /// The subscribe message went out on this connection (so `unsubscribe` is due on drop).
    sent: bool,
}

/// What the server sends, as far as the subscriber reads it. Fields of the wrong type make the
/// whole message unreadable, and it is ignored.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    event: Option<serde_json::Value>,
    #[serde(default)]
    errors: Option<serde_json::Value>,
}

/// How a connection ended.
enum Exit {
    /// Lost: reconnect.
    Lost(String),
    /// Closed by `close()` (which waits on the sender) or by every handle going: stop.
    Closed(Option<oneshot::Sender<()>>),
}

/// The connection task: owns the socket, the subscriptions and their parts.
struct Task {
    settings: Arc<Settings>,
    states: Arc<watch::Sender<ConnectionState>>,
    ended: Arc<Mutex<Option<SubscribeError>>>,
    commands: mpsc::UnboundedReceiver<Command>,
    subs: HashMap<u64, Sub>,
    /// By wire id.
    parts: HashMap<String, Part>,
    /// Parts dropped from their epoch window while handling a message: unsubscribed after it.
    unsubscribe_due: Vec<String>,
}

impl Task {
    async fn run(mut self) {
        let mut attempt: u32 = 0;
        loop {
            // Subscriptions made since: they see this connection's states from the start.
            if let Err(done) = self.absorb_pending() {
                self.finish(SubscribeError::Closed, None).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            self.set_state(ConnectionState::Connecting).await;
            match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
                Ok(Ok((ws, keep_alive, auth))) => {
                    self.set_state(ConnectionState::Connected).await;
                    let since = Instant::now();
                    match self.serve(ws, keep_alive, &auth).await {
                        Exit::Closed(done) => {
                            self.finish(SubscribeError::Closed, None).await;
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                            return;
                        }
                        Exit::Lost(reason) => {
                            tracing::warn!(%reason, "events subscriber: connection lost");
                        }
                    }
                    if since.elapsed() >= STABLE_AFTER {
                        attempt = 0;
                    }
                }
                Ok(Err(AttemptError::Fatal(e))) => {
                    tracing::error!(error = %e, "events subscriber: the connection was refused");
                    let e = SubscribeError::Connection(e.to_string());
                    return self.finish(e.clone(), Some(e)).await;
                }
                Ok(Err(AttemptError::Retryable(reason))) => {
                    tracing::warn!(%reason, "events subscriber: connect failed");
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = CONNECT_TIMEOUT.as_millis() as u64,
                        "events subscriber: connect timed out"
                    );
                }
            }
            attempt = attempt.saturating_add(1);
            let delay = self.settings.reconnect.delay(attempt);
            self.set_state(ConnectionState::Backoff { attempt, delay })
                .await;
            let until = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(Command::Subscribe { id, channels, authorizer, tx, done }) => {
                            let _ = self.add(id, channels, authorizer, tx, done);
                        }
                        Some(Command::Drop { id }) => { let _ = self.remove(id); }
                        Some(Command::Close { done }) => {
                            self.finish(SubscribeError::Closed, None).await;
                            let _ = done.send(());
                            return;
                        }
                        None => return self.finish(SubscribeError::Closed, None).await,
                    },
                }
            }
        }
    }

    /// Resolves the subscriber's authorizer (anew each time: tokens refresh) and connects.
    async fn connect(&self) -> Result<(WsStream, Duration, Resolved), AttemptError> {
        let auth = resolve(&self.settings.authorizer)
            .await
            .map_err(|e| AttemptError::Retryable(format!("the authorizer: {e}")))?;
        let header = events_ws::auth_object(
            &self.settings.endpoint,
            self.settings.region.as_deref(),
            &auth,
            b"{}",
            SystemTime::now(),
        )
        .map_err(AttemptError::Fatal)?;
        let (ws, keep_alive) = events_ws::open(&self.settings.endpoint, &header).await?;
        Ok((ws, keep_alive, auth))
    }

    async fn set_state(&mut self, state: ConnectionState) {
        self.states.send_replace(state.clone());
        for sub in self.subs.values() {
            let _ = sub.tx.send(SubscriptionEvent::State(state.clone())).await;
        }
    }

    fn add(
        &mut self,
        id: u64,
        channels: Vec<Spec>,
        authorizer: Option<Authorizer>,
        tx: mpsc::Sender<SubscriptionEvent>,
        done: oneshot::Sender<()>,
    ) -> Vec<String> {
        let mut wire = Vec::with_capacity(channels.len());
        let window = self.window();
        let mut sliced = Vec::new();
        for spec in channels {
            match (&spec.sliced, &window) {
                (Some(_), Some(epochs)) => {
                    for n in epochs {
                        wire.push(self.new_part(id, &spec, Some(*n), authorizer.clone()));
                    }
                    sliced.push(spec);
                }
                _ => wire.push(self.new_part(id, &spec, None, authorizer.clone())),
            }
        }
        self.subs.insert(
            id,
            Sub {
                tx,
                parts: wire.clone(),
                sliced,
                dedup: Dedup::default(),
                active: false,
                _done: done,
            },
        );
        wire
    }

    /// A new part of subscription `sub` for `spec` in epoch `epoch`; its wire id.
    fn new_part(
        &mut self,
        sub: u64,
        spec: &Spec,
        epoch: Option<u64>,
        authorizer: Option<Authorizer>,
    ) -> String {
        // Unique per connection, of the documented id alphabet ^[a-zA-Z0-9-_+]{1,128}$.
        let w = uuid::Uuid::new_v4().simple().to_string();
        self.parts.insert(
            w.clone(),
            Part {
                sub,
                channel: spec.channel(epoch),
                logical: spec.logical.clone(),
                epoch,
                authorizer,
                confirmed: false,
                sent: false,
            },
        );
        w
    }

    /// The epochs held now, in a time-sliced namespace.
    fn window(&self) -> Option<Vec<u64>> {
        self.settings
            .epoch_seconds
            .map(|p| crate::epoch::window(self.settings.clock.unix_millis(), p))
    }

    /// When the epoch window next changes, as a timer deadline (far away without epochs).
    fn next_rotation(&self) -> Instant {
        match self.settings.epoch_seconds {
            None => Instant::now() + Duration::from_secs(86_400),
            Some(p) => {
                let now = self.settings.clock.unix_millis();
                let next = crate::epoch::next_change_millis(now, p);
                Instant::now() + Duration::from_millis(next.saturating_sub(now))
            }
        }
    }

    /// Adds a part for every epoch of the window that a live time-sliced channel lacks; the new
    /// parts' wire ids, to subscribe.
    fn extend_windows(&mut self) -> Vec<String> {
        let Some(window) = self.window() else {
            return Vec::new();
        };
        let mut added = Vec::new();
        let mut ids: Vec<u64> = self.subs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(sub) = self.subs.get(&id) else {
                continue;
            };
            let specs = sub.sliced.clone();
            let held: Vec<(String, Option<u64>)> = sub
                .parts
                .iter()
                .filter_map(|w| self.parts.get(w))
                .map(|p| (p.logical.clone(), p.epoch))
                .collect();
            let authorizer = sub_authorizer(&self.parts, &sub.parts);
            let mut new = Vec::new();
            for spec in &specs {
                for n in &window {
                    if !held.contains(&(spec.logical.clone(), Some(*n))) {
                        new.push(self.new_part(id, spec, Some(*n), authorizer.clone()));
                    }
                }
            }
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.parts.extend(new.iter().cloned());
            }
            added.extend(new);
        }
        added
    }

    /// Forgets the parts whose epoch left the window, once every epoch of the window of their
    /// channel is held and (when `confirmed_first`) confirmed: new before old. The wire ids the
    /// server holds, to unsubscribe.
    fn drop_old_epochs(&mut self, confirmed_first: bool) -> Vec<String> {
        let Some(window) = self.window() else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        for sub in self.subs.values_mut() {
            for spec in &sub.sliced {
                let mine: Vec<&String> = sub
                    .parts
                    .iter()
                    .filter(|w| {
                        self.parts
                            .get(*w)
                            .is_some_and(|p| p.logical == spec.logical)
                    })
                    .collect();
                let ready = window.iter().all(|n| {
                    mine.iter().any(|w| {
                        self.parts.get(*w).is_some_and(|p| {
                            p.epoch == Some(*n) && (p.confirmed || !confirmed_first)
                        })
                    })
                });
                if !ready {
                    continue;
                }
                for w in mine {
                    if self
                        .parts
                        .get(w)
                        .is_some_and(|p| p.epoch.is_some_and(|n| !window.contains(&n)))
                    {
                        gone.push(w.clone());
                    }
                }
            }
            sub.parts.retain(|w| !gone.contains(w));
        }
        gone.into_iter()
            .filter(|w| self.parts.remove(w).is_some_and(|p| p.sent))
            .collect()
    }

    /// Forgets subscription `id`; the wire ids of its parts that the server holds.
    fn remove(&mut self, id: u64) -> Vec<String> {
        let Some(sub) = self.subs.remove(&id) else {
            return Vec::new();
        };
        sub.parts
            .into_iter()
            .filter(|w| self.parts.remove(w).is_some_and(|p| p.sent))
            .collect()
    }

    /// Ends every subscription: each live part gets `part_error` (when given), every subscription
    /// `State(Closed)`; later calls get `ended`.
    async fn finish(&mut self, ended: SubscribeError, part_error: Option<SubscribeError>) {
        {
            let mut slot = lock(&self.ended);
            if slot.is_none() {
                *slot = Some(ended);
            }
        }
        // No new commands; those already sent are taken, so their subscriptions hear the end too.
        self.commands.close();
        let mut closers = Vec::new();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Subscribe {
                    id,
                    channels,
                    authorizer,
                    tx,
                    done,
                } => {
                    let _ = self.add(id, channels, authorizer, tx, done);
                }
                Command::Drop { id } => {
                    let _ = self.remove(id);
                }
                Command::Close { done } => closers.push(done),
            }
        }
        if let Some(error) = part_error {
            // One end per logical channel, however many epochs it held.
            let mut told: Vec<(u64, String)> = Vec::new();
            for w in self.ordered_parts() {
                let Some(part) = self.parts.get(&w) else {
                    continue;
                };
                let key = (part.sub, part.logical.clone());
                if told.contains(&key) {
                    continue;
                }
                told.push(key);
                if let Some(sub) = self.subs.get(&part.sub) {
                    let _ = sub
                        .tx
                        .send(SubscriptionEvent::PartEnded {
                            part: part.logical.clone(),
                            error: error.clone(),
                        })
                        .await;
                }
            }
        }
        self.set_state(ConnectionState::Closed).await;
        self.parts.clear();
        self.subs.clear();
        for done in closers {
            let _ = done.send(());
        }
    }

    /// Takes the commands waiting while there is no socket: `Err` when one of them (or every
    /// handle going) closes the subscriber, with the `close()` to answer.
    fn absorb_pending(&mut self) -> Result<(), Option<oneshot::Sender<()>>> {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Subscribe {
                    id,
                    channels,
                    authorizer,
                    tx,
                    done,
                }) => {
                    let _ = self.add(id, channels, authorizer, tx, done);
                }
                Ok(Command::Drop { id }) => {
                    let _ = self.remove(id);
                }
                Ok(Command::Close { done }) => return Err(Some(done)),
                Err(mpsc::error::TryRecvError::Empty) => return Ok(()),
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(None),
            }
        }
    }

    /// Wire ids of every live part, by subscription and then in the order given.
    fn ordered_parts(&self) -> Vec<String> {
        let mut subs: Vec<(&u64, &Sub)> = self.subs.iter().collect();
        subs.sort_by_key(|(id, _)| **id);
        subs.into_iter()
            .flat_map(|(_, s)| s.parts.iter().cloned())
            .collect()
    }

    /// Runs one acknowledged connection until it is lost or closed.
    async fn serve(&mut self, ws: WsStream, keep_alive: Duration, auth: &Resolved) -> Exit {
        let (mut sink, mut stream) = ws.split();
        // Every live part again: unconfirmed until the server says so on this connection.
        for sub in self.subs.values_mut() {
            sub.active = false;
        }
        let all = self.ordered_parts();
        for w in &all {
            if let Some(p) = self.parts.get_mut(w) {
                p.confirmed = false;
                p.sent = false;
            }
        }
        // The epochs of now (a backoff may have spanned a change): nothing is on the wire yet.
        self.extend_windows();
        self.drop_old_epochs(false);
        self.unsubscribe_due.clear();
        let all = self.ordered_parts();
        if let Err(reason) = self.send_subscribes(&mut sink, &all, auth).await {
            return Exit::Lost(reason);
        }
        let rotation = tokio::time::sleep_until(self.next_rotation());
        tokio::pin!(rotation);
        // Any message proves the connection alive; the timer is re-armed lazily.
        let mut last_heard = Instant::now();
        let ka = tokio::time::sleep_until(last_heard + keep_alive);
        tokio::pin!(ka);
        loop {
            tokio::select! {
                biased;
                frame = stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None => return Exit::Lost("the server closed the connection".into()),
                        Some(Err(e)) => return Exit::Lost(format!("WebSocket: {e}")),
                        Some(Ok(Frame::Close(f))) => {
                            return Exit::Lost(format!("the server closed the connection: {f:?}"));
                        }
                        Some(Ok(Frame::Text(t))) => {
                            if let Some(reason) = self.on_text(t.as_str()).await {
                                return Exit::Lost(reason);
                            }
                            let due = std::mem::take(&mut self.unsubscribe_due);
                            if let Err(reason) = send_unsubscribes(&mut sink, &due).await {
                                return Exit::Lost(reason);
                            }
                        }
                        Some(Ok(_)) => {}
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Subscribe { id, channels, authorizer, tx, done }) => {
                        let wire = self.add(id, channels, authorizer, tx, done);
                        if let Err(reason) = self.send_subscribes(&mut sink, &wire, auth).await {
                            return Exit::Lost(reason);
                        }
                    }
                    Some(Command::Drop { id }) => {
                        let wire = self.remove(id);
                        if let Err(reason) = send_unsubscribes(&mut sink, &wire).await {
                            return Exit::Lost(reason);
                        }
                    }
                    Some(Command::Close { done }) => {
                        self.close_socket(sink, stream).await;
                        return Exit::Closed(Some(done));
                    }
                    None => {
                        self.close_socket(sink, stream).await;
                        return Exit::Closed(None);
                    }
                },
                () = &mut rotation => {
                    // New epochs first; the old ones go once the new are confirmed
                    // (`on_confirmed`), or now when they already are.
                    let new = self.extend_windows();
                    if let Err(reason) = self.send_subscribes(&mut sink, &new, auth).await {
                        return Exit::Lost(reason);
                    }
                    let mut due = std::mem::take(&mut self.unsubscribe_due);
                    due.extend(self.drop_old_epochs(true));
                    if let Err(reason) = send_unsubscribes(&mut sink, &due).await {
                        return Exit::Lost(reason);
                    }
                    rotation.as_mut().reset(self.next_rotation());
                }
                () = &mut ka => {
                    let due = last_heard + keep_alive;
                    if Instant::now() < due {
                        ka.as_mut().reset(due);
                        continue;
                    }
                    let _ = sink.send(Frame::Close(None)).await;
                    return Exit::Lost(format!(
                        "nothing (not even ka) within connectionTimeoutMs = {} ms",
                        keep_alive.as_millis()
                    ));
                }
            }
        }
    }

    /// Unsubscribes every part the server holds, then closes the socket and waits briefly for the
    /// server's close.
    async fn close_socket(
        &mut self,
        mut sink: futures::stream::SplitSink<WsStream, Frame>,
        mut stream: futures::stream::SplitStream<WsStream>,
    ) {
        let wire: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, p)| p.sent)
            .map(|(w, _)| w.clone())
            .collect();
        if send_unsubscribes(&mut sink, &wire).await.is_err() {
            return;
        }
        if sink.send(Frame::Close(None)).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }

    /// Sends the subscribe messages of parts `wire`. A part whose override authorizer fails ends
    /// alone.
    async fn send_subscribes(
        &mut self,
        sink: &mut futures::stream::SplitSink<WsStream, Frame>,
        wire: &[String],
        auth: &Resolved,
    ) -> Result<(), String> {
        let mut ended: Vec<(String, SubscribeError)> = Vec::new();
        for w in wire {
            let Some(part) = self.parts.get(w) else {
                continue;
            };
            let own;
            let resolved = match &part.authorizer {
                None => auth,
                Some(a) => match resolve(a).await {
                    Ok(r) => {
                        own = r;
                        &own
                    }
                    Err(e) => {
                        ended.push((
                            w.clone(),
                            SubscribeError::Connection(format!(
                                "the subscription's authorizer: {e}"
                            )),
                        ));
                        continue;
                    }
                },
            };
            let frame = match subscribe_frame(&self.settings, w, &part.channel, resolved) {
                Ok(f) => f,
                Err(e) => {
                    ended.push((
                        w.clone(),
                        SubscribeError::Connection(format!("authorizing the subscription: {e}")),
                    ));
                    continue;
                }
            };
            sink.feed(Frame::text(frame))
                .await
                .map_err(|e| format!("sending subscribe: {e}"))?;
            if let Some(p) = self.parts.get_mut(w) {
                p.sent = true;
            }
        }
        sink.flush()
            .await
            .map_err(|e| format!("sending subscribe: {e}"))?;
        for (w, error) in ended {
            self.end_part(&w, error).await;
        }
        Ok(())
    }

    /// Handles one text message; `Some(reason)` when the connection must go.
    async fn on_text(&mut self, text: &str) -> Option<String> {
        let msg: Incoming<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, message = %snippet(text), "events subscriber: ignoring an unreadable message");
                return None;
            }
        };
        let id = msg.id.as_deref();
        match (msg.kind.as_ref(), id) {
            ("ka", _) => {}
            ("data", Some(id)) => self.on_data(id, msg.event).await,
            ("subscribe_success", Some(id)) => self.on_confirmed(id).await,
            ("subscribe_error", Some(id)) => {
                let error = refusal(self.channel_of(id), msg.errors);
                self.end_part(id, error).await;
            }
            // `error` is not in the docs; Amplify reads it as the failure of the message it names.
            ("error", Some(id)) if self.parts.get(id).is_some_and(|p| !p.confirmed) => {
                let error = refusal(self.channel_of(id), msg.errors);
                self.end_part(id, error).await;
            }
            ("connection_error", _) => {
                return Some(format!(
                    "connection_error: {}",
                    errors_of(msg.errors)
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            ("broadcast_error" | "error", _) => {
                tracing::warn!(message = %snippet(text), "events subscriber: the server reported an error");
            }
            (kind, _) => {
                tracing::debug!(kind, "events subscriber: ignoring a message");
            }
        }
        None
    }

    fn channel_of(&self, wire: &str) -> String {
        self.parts
            .get(wire)
            .map(|p| p.channel.clone())
            .unwrap_or_default()
    }

    async fn on_data(&mut self, wire: &str, event: Option<serde_json::Value>) {
        let Some(part) = self.parts.get(wire) else {
            tracing::debug!(
                id = wire,
                "events subscriber: data for no live subscription"
            );
            return;
        };
        let Some(sub) = self.subs.get_mut(&part.sub) else {
            return;
        };
        let events = match event {
            Some(serde_json::Value::Array(items)) => items,
            Some(one) => vec![one],
            None => {
                tracing::warn!(channel = %part.channel, "events subscriber: a data message without event");
                return;
            }
        };
        for e in events {
            let parsed = match e {
                serde_json::Value::String(s) => serde_json::from_str::<Envelope>(&s),
                other => serde_json::from_value::<Envelope>(other),
            };
            let envelope = match parsed {
                Ok(env) => env,
                Err(err) => {
                    tracing::warn!(channel = %part.channel, error = %err, "events subscriber: skipping an event that is not a groupcast envelope");
                    continue;
                }
            };
            if sub.dedup.first_time(envelope.id) {
                let _ = sub
                    .tx
                    .send(SubscriptionEvent::Message(Received {
                        envelope,
                        part: part.logical.clone(),
                    }))
                    .await;
            }
        }
    }

    async fn on_confirmed(&mut self, wire: &str) {
        let Some(part) = self.parts.get_mut(wire) else {
            tracing::debug!(
                id = wire,
                "events subscriber: subscribe_success for no live part"
            );
            return;
        };
        part.confirmed = true;
        let (sub, sliced) = (part.sub, part.epoch.is_some());
        if sliced {
            let due = self.drop_old_epochs(true);
            self.unsubscribe_due.extend(due);
        }
        self.report_active(sub).await;
    }

    /// Reports `Active` once every live part of `sub` is confirmed.
    async fn report_active(&mut self, sub: u64) {
        let Some(s) = self.subs.get(&sub) else {
            return;
        };
        if s.active
            || !s
                .parts
                .iter()
                .all(|w| self.parts.get(w).is_some_and(|p| p.confirmed))
        {
            return;
        }
        let _ = s.tx.send(SubscriptionEvent::Active).await;
        if let Some(s) = self.subs.get_mut(&sub) {
            s.active = true;
        }
    }

    /// Ends part `wire` with `error`, and with it every other epoch of its logical channel (those
    /// the server holds are unsubscribed); its subscription ends when no part is left.
    async fn end_part(&mut self, wire: &str, error: SubscribeError) {
        let Some(part) = self.parts.remove(wire) else {
            tracing::debug!(id = wire, "events subscriber: an error for no live part");
            return;
        };
        tracing::warn!(channel = %part.channel, %error, "events subscriber: a subscription part ended");
        let Some(sub) = self.subs.get_mut(&part.sub) else {
            return;
        };
        sub.parts.retain(|w| w != wire);
        if part.epoch.is_some() {
            sub.sliced.retain(|s| s.logical != part.logical);
            let siblings: Vec<String> = sub
                .parts
                .iter()
                .filter(|w| {
                    self.parts
                        .get(*w)
                        .is_some_and(|p| p.logical == part.logical)
                })
                .cloned()
                .collect();
            sub.parts.retain(|w| !siblings.contains(w));
            for w in siblings {
                if self.parts.remove(&w).is_some_and(|p| p.sent) {
                    self.unsubscribe_due.push(w);
                }
            }
        }
        let _ = sub
            .tx
            .send(SubscriptionEvent::PartEnded {
                part: part.logical,
                error,
            })
            .await;
        if sub.parts.is_empty() {
            self.subs.remove(&part.sub);
        } else {
            self.report_active(part.sub).await;
        }
    }
}

/// The override authorizer of a subscription (every part of one subscription has the same).
fn sub_authorizer(parts: &HashMap<String, Part>, wire: &[String]) -> Option<Authorizer> {
    wire.iter()
        .find_map(|w| parts.get(w))
        .and_then(|p| p.authorizer.clone())
}

/// `{"type":"subscribe","id","channel","authorization"}`; IAM signs `{"channel":"…"}`
/// (<https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html>,
/// "Subscribing to channels").
fn subscribe_frame(
    settings: &Settings,
    wire: &str,
    channel: &str,
    auth: &Resolved,
) -> Result<String, Error> {
    let body = serde_json::json!({ "channel": channel }).to_string();
    let authorization = events_ws::auth_object(
        &settings.endpoint,
        settings.region.as_deref(),
        auth,
        body.as_bytes(),
        SystemTime::now(),
    )?;
    Ok(serde_json::json!({
        "type": "subscribe",
        "id": wire,
        "channel": channel,
        "authorization": authorization,
    })
    .to_string())
}

async fn send_unsubscribes(
    sink: &mut futures::stream::SplitSink<WsStream, Frame>,
    wire: &[String],
) -> Result<(), String> {
    if wire.is_empty() {
        return Ok(());
    }
    for w in wire {
        let frame = serde_json::json!({ "type": "unsubscribe", "id": w }).to_string();
        sink.feed(Frame::text(frame))
            .await
            .map_err(|e| format!("sending unsubscribe: {e}"))?;
    }
    sink.flush()
        .await
        .map_err(|e| format!("sending unsubscribe: {e}"))
}

/// `errors[{errorType,message}]`, read leniently: anything else becomes one error of its text.
fn errors_of(errors: Option<serde_json::Value>) -> Vec<GraphqlError> {
    match errors {
        None => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<GraphqlError>>(v.clone()).unwrap_or_else(|_| {
            vec![GraphqlError {
                error_type: None,
                message: snippet(&v.to_string()),
            }]
        }),
    }
}

/// The typed error of a `subscribe_error`: `Unauthorized`/`UnauthorizedException` (the handler's
/// `util.unauthorized()`) is [`SubscribeError::Unauthorized`], anything else
/// [`SubscribeError::Rejected`].
fn refusal(part: String, errors: Option<serde_json::Value>) -> SubscribeError {
    let errors = errors_of(errors);
    let message = events_ws::errors_text(&errors);
    let unauthorized = errors.iter().any(|e| {
        e.error_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("unauthorized"))
    });
    if unauthorized {
        SubscribeError::Unauthorized { part, message }
    } else {
        SubscribeError::Rejected {
            part,
            error_type: errors
                .iter()
                .find_map(|e| e.error_type.clone())
                .unwrap_or_else(|| "unknown".into()),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: SubscribeError) -> String {
        match e {
            SubscribeError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn group_channels_put_each_group_segment_between_the_namespace_and_the_topic() {
        assert_eq!(
            group_channels("live", &["team-a", "Team_B", "team-a"], "*").unwrap(),
            ["/live/team-a/*", "/live/x--Team-5fB/*"]
        );
        assert_eq!(
            group_channels("live", &["g"], "news/*").unwrap(),
            ["/live/g/news/*"]
        );
        assert_eq!(
            group_channels("live", &["g"], "a/b/c").unwrap(),
            ["/live/g/a/b/c"]
        );
    }

    #[test]
    fn bad_groups_and_topics_are_invalid_naming_the_field() {
        assert_eq!(
            field(group_channels::<&str>("live", &[], "*").unwrap_err()),
            "groups"
        );
        assert_eq!(
            field(group_channels("live", &["ok", ""], "*").unwrap_err()),
            "groups[1]"
        );
        for t in ["", "a*", "/a", "a//b", "a/b/c/*", "a/b/c/d", "*/a", "a/*/b"] {
            assert_eq!(
                field(group_channels("live", &["g"], t).unwrap_err()),
                "topic",
                "{t:?}"
            );
        }
    }

    #[test]
    fn raw_channels_follow_the_channel_rule() {
        assert_eq!(check_channel("live/a/*").unwrap(), "/live/a/*");
        assert_eq!(check_channel("/live").unwrap(), "/live");
        for c in [
            "",
            "/",
            "/*",
            "/live/a b",
            "/l/a/b/c/d/e",
            "/live/*/x",
            "/live/a/",
        ] {
            assert_eq!(field(check_channel(c).unwrap_err()), "channel", "{c:?}");
        }
    }

    #[test]
    fn the_http_host_is_derived_from_the_realtime_host() {
        assert_eq!(
            derive_http("wss://abc.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime"),
            "https://abc.appsync-api.us-east-1.amazonaws.com"
        );
        assert_eq!(
            derive_http("ws://127.0.0.1:9/event/realtime"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            derive_http("wss://events.example.com/event/realtime"),
            "https://events.example.com"
        );
    }

    #[test]
    fn subscribe_errors_are_typed_unauthorized_or_rejected() {
        let e = refusal(
            "/live/x/*".into(),
            Some(serde_json::json!([{"errorType":"Unauthorized","message":"no"}])),
        );
        assert!(matches!(e, SubscribeError::Unauthorized { ref part, .. } if part == "/live/x/*"));
        let e = refusal(
            "/live/x/*".into(),
            Some(serde_json::json!([{"errorType":"SubscriptionProcessingError","message":"bad"}])),
        );
        assert!(
            matches!(e, SubscribeError::Rejected { ref error_type, .. } if error_type == "SubscriptionProcessingError")
        );
        let e = refusal("/c".into(), Some(serde_json::json!(42)));
        assert!(
            matches!(e, SubscribeError::Rejected { ref message, .. } if message.contains("42"))
        );
    }

    #[test]
    fn the_builder_names_what_is_missing() {
        let e = EventsSubscriber::builder().build().unwrap_err();
        assert!(e.to_string().contains("events.realtime_url"), "{e}");
        let e = EventsSubscriber::builder()
            .realtime_url("r.example")
            .authorizer(Authorizer::api_key("k"))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("events.namespace"), "{e}");
        let e = EventsSubscriber::builder()
            .realtime_url("r.example")
            .namespace("bad_ns")
            .authorizer(Authorizer::api_key("k"))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("events.namespace"), "{e}");
        let e = EventsSubscriber::builder()
            .realtime_url("r.example")
            .namespace("live")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("authorizer"), "{e}");
        let e = EventsSubscriber::builder()
            .realtime_url("https://r.example")
            .namespace("live")
            .authorizer(Authorizer::api_key("k"))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("events.realtime_url"), "{e}");
    }

    #[test]
    fn the_outputs_give_the_hosts_the_namespace_and_the_region() {
        let outputs = Outputs::from_json(
            r#"{"version":1,"region":"us-west-2",
            "events":{"apiId":"a","apiArn":"arn","httpHost":"h.appsync-api.us-west-2.amazonaws.com",
                      "realtimeHost":"h.appsync-realtime-api.us-west-2.amazonaws.com",
                      "namespaces":[{"name":"live","arn":"n"}],"apiKey":"da2-out"}}"#,
        )
        .unwrap();
        let s = EventsSubscriber::from_outputs(&outputs, Authorizer::api_key("k")).unwrap();
        let st = &s.inner.settings;
        assert_eq!(
            st.endpoint.url,
            "wss://h.appsync-realtime-api.us-west-2.amazonaws.com/event/realtime"
        );
        assert_eq!(
            st.endpoint.http_host,
            "h.appsync-api.us-west-2.amazonaws.com"
        );
        assert_eq!(
            st.endpoint.http_url,
            "https://h.appsync-api.us-west-2.amazonaws.com/event"
        );
        assert_eq!(st.namespace, "live");
        assert_eq!(st.region.as_deref(), Some("us-west-2"));
        assert!(
            EventsSubscriber::from_outputs(&Outputs::default(), Authorizer::api_key("k")).is_err()
        );
    }

    #[test]
    fn in_a_time_sliced_namespace_each_group_channel_gets_its_epoch_between_group_and_topic() {
        let specs = group_specs("live", &["team-a", "Team_B"], "jobs/*", true).unwrap();
        assert_eq!(specs[0].logical, "/live/team-a/jobs/*");
        assert_eq!(specs[0].channel(Some(7)), "/live/team-a/t7/jobs/*");
        assert_eq!(specs[1].channel(Some(0)), "/live/x--Team-5fB/t0/jobs/*");
        assert_eq!(
            group_specs("live", &["g"], "*", true).unwrap()[0].channel(Some(5)),
            "/live/g/t5/*"
        );
        // Without epochs: the channel as before, whatever the epoch.
        let plain = group_specs("live", &["g"], "a/b/*", false).unwrap();
        assert_eq!(plain[0].channel(Some(5)), "/live/g/a/b/*");
        for t in ["a/b/*", "a/b/c"] {
            assert_eq!(
                field(group_specs("live", &["g"], t, true).unwrap_err()),
                "topic",
                "{t}"
            );
        }
    }

    #[test]
    fn the_epoch_comes_from_the_outputs_namespace_used_or_the_variable_and_zero_is_off() {
        let outputs = Outputs::from_json(
            r#"{"version":1,"region":"us-west-2",
            "events":{"apiId":"a","apiArn":"arn","httpHost":"h.example","realtimeHost":"r.example",
                      "namespaces":[{"name":"live","arn":"n"},{"name":"sliced","arn":"m","epochSeconds":120}]}}"#,
        )
        .unwrap();
        let epoch = |vars: &'static [(&'static str, &'static str)]| {
            EventsSubscriber::builder()
                .outputs(&outputs)
                .authorizer(Authorizer::api_key("k"))
                .env_with(|k| {
                    vars.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| (*v).to_owned())
                })
                .unwrap()
                .build()
                .map(|s| s.inner.settings.epoch_seconds)
        };
        assert_eq!(epoch(&[]).unwrap(), None);
        assert_eq!(
            epoch(&[("GROUPCAST_EVENTS_NAMESPACE", "sliced")]).unwrap(),
            Some(120)
        );
        assert_eq!(
            epoch(&[
                ("GROUPCAST_EVENTS_NAMESPACE", "sliced"),
                ("GROUPCAST_EVENTS_EPOCH_SECONDS", "0")
            ])
            .unwrap(),
            None
        );
        assert_eq!(
            epoch(&[("GROUPCAST_EVENTS_EPOCH_SECONDS", "30")]).unwrap(),
            Some(30)
        );
        let e = EventsSubscriber::builder()
            .env_with(|k| (k == "GROUPCAST_EVENTS_EPOCH_SECONDS").then(|| "1".to_owned()))
            .unwrap_err();
        assert!(
            e.to_string().contains("GROUPCAST_EVENTS_EPOCH_SECONDS"),
            "{e}"
        );
        let e = EventsSubscriber::builder()
            .realtime_url("r.example")
            .namespace("live")
            .epoch_seconds(100_000)
            .authorizer(Authorizer::api_key("k"))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("events.epoch_seconds"), "{e}");
    }
}
