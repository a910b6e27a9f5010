//! The AWS IoT Core subscriber: MQTT 3.1.1 over WebSocket with a SigV4-presigned URL, one
//! connection per [`IotSubscriber`], one topic filter `{prefix}/{group segment}/{topic}` per group
//! ([`crate::iot::topic`]), QoS 1.
//!
//! - **MQTT** is `rumqttc`'s (framing, keep-alive pings, QoS 1 acknowledgements); this module
//!   owns which filters are subscribed, what each SUBACK means, reconnects and de-duplication.
//! - **URL**: `wss://{endpoint}/mqtt?X-Amz-…`, presigned for the service `iotdevicegateway` with an
//!   empty payload, the session token appended after signing
//!   (<https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html>,
//!   [`crate::sign::SigV4::presign_excluding_token`]); signed anew for every connection attempt,
//!   so a reconnect never uses stale credentials or an expired URL.
//! - **Client id**: give the one the group policy allows ([`crate::iot::client_id`]); a second
//!   connection with the same id disconnects the first, so one id per subscriber.
//! - **SUBACK failure** (return code 0x80, MQTT 3.1.1 §3.9.3,
//!   <https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html#_Toc398718071>: the IoT
//!   policy does not allow that filter) ends only that part, [`SubscribeError::Unauthorized`]
//!   naming the filter. The IoT guide does not say in words whether a refused subscription is
//!   answered with 0x80 or with a disconnect; a disconnect is retried with the capped backoff.
//! - **Fail closed**: a message whose envelope does not name the group of the topic it arrived on
//!   is dropped, as is a payload that is not an envelope (logged, never a panic).
//! - **Reconnect**: after [`ReconnectPolicy::delay`], then every filter still wanted is subscribed
//!   again (a clean session keeps none); [`SubscriptionEvent::Active`] once all are acknowledged.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Outgoing,
    Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};

use super::{
    ConnectionState, Dedup, Received, ReconnectPolicy, SubscribeError, Subscription,
    SubscriptionEvent,
};
use crate::auth::IamAuth;
use crate::config::DEFAULT_IOT_TOPIC_PREFIX;
use crate::group::group_segment;
use crate::message::{Envelope, validate_topic};
use crate::outputs::Outputs;
use crate::sign::SigV4;

/// The SigV4 signing name of IoT Core's MQTT-over-WebSocket endpoint.
pub const IOT_DEVICE_GATEWAY_SERVICE: &str = "iotdevicegateway";

/// How long a presigned URL stays valid: it is used at once, and made anew for every connection.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(300);

/// The MQTT keep-alive: IoT Core accepts 30 to 1200 seconds
/// (<https://docs.aws.amazon.com/general/latest/gr/iot-core.html>).
pub const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The largest MQTT packet accepted: IoT Core's 128 KB payload plus the topic and header.
const MAX_INCOMING_PACKET: usize = 132 * 1024;

/// How often dropped [`Subscription`]s are looked for (their filters are then unsubscribed).
const DROP_CHECK: Duration = Duration::from_millis(200);

/// Requests (SUBSCRIBE, UNSUBSCRIBE) queued for the connection.
const REQUEST_CAPACITY: usize = 4096;

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> SubscribeError {
    SubscribeError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// The presigned MQTT-over-WebSocket URL of `endpoint_url` (`wss://host/mqtt`, or `ws://…` for a
/// local broker).
///
/// # Errors
/// [`SubscribeError::Connection`] when signing fails.
pub fn presigned_url(
    endpoint_url: &str,
    credentials: &aws_credential_types::Credentials,
    region: &str,
    time: SystemTime,
) -> Result<String, SubscribeError> {
    SigV4 {
        credentials,
        region,
        service: IOT_DEVICE_GATEWAY_SERVICE,
    }
    .presign_excluding_token("GET", endpoint_url, PRESIGN_EXPIRES, time)
    .map_err(|e| SubscribeError::Connection(e.to_string()))
}

/// Builds an [`IotSubscriber`]; start from [`IotSubscriber::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct IotSubscriberBuilder {
    endpoint: Option<String>,
    region: Option<String>,
    iam: Option<IamAuth>,
    client_id: Option<String>,
    topic_prefix: Option<String>,
    reconnect: ReconnectPolicy,
    buffer: Option<usize>,
}

impl IotSubscriberBuilder {
    /// The `iot:Data-ATS` host (`a1b2c3-ats.iot.us-east-1.amazonaws.com`), or a `wss://`/`ws://`
    /// URL (a local broker); `/mqtt` is the path when none is given.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
    /// The SigV4 region (default: the one in an IoT host name).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// IAM credentials that sign the URL (e.g. a Cognito identity's).
    pub fn credentials(mut self, provider: SharedCredentialsProvider) -> Self {
        self.iam = Some(IamAuth::new(provider));
        self
    }
    /// IAM credentials that sign the URL, shared with other clients.
    pub fn iam(mut self, iam: IamAuth) -> Self {
        self.iam = Some(iam);
        self
    }
    /// The MQTT client id; use [`crate::iot::client_id`] for the one the group policy allows.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
    /// The topic prefix (default [`DEFAULT_IOT_TOPIC_PREFIX`]).
    pub fn topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = Some(prefix.into());
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

    /// Checks the settings. Nothing connects until the first
    /// [`IotSubscriber::subscribe_groups`].
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] naming the setting (`iot.endpoint`, `region`, `credentials`,
    /// `client_id`, `iot.topic_prefix`).
    pub fn build(self) -> Result<IotSubscriber, SubscribeError> {
        let endpoint = self
            .endpoint
            .ok_or_else(|| invalid("iot.endpoint", "is required: the iot:Data-ATS host"))?;
        let endpoint = endpoint.trim().trim_end_matches('/');
        let with_scheme = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("wss://{endpoint}")
        };
        let mut url = reqwest::Url::parse(&with_scheme)
            .map_err(|e| invalid("iot.endpoint", format!("{endpoint:?}: {e}")))?;
        let secure = match url.scheme() {
            "wss" => true,
            "ws" => false,
            other => {
                return Err(invalid(
                    "iot.endpoint",
                    format!(
                        "{endpoint:?}: the scheme is {other:?}; expected wss (or ws for a local broker)"
                    ),
                ));
            }
        };
        let Some(host) = url.host_str().map(str::to_owned) else {
            return Err(invalid("iot.endpoint", format!("{endpoint:?} has no host")));
        };
        if url.path().is_empty() || url.path() == "/" {
            url.set_path("/mqtt");
        }
        url.set_query(None);
        let region = self.region.or_else(|| {
            // PREFIX-ats.iot.REGION.amazonaws.com
            let mut labels = host.split('.');
            labels.find(|l| *l == "iot")?;
            labels.next().map(str::to_owned)
        });
        let region = region.filter(|r| !r.is_empty()).ok_or_else(|| {
            invalid(
                "region",
                "IoT signing needs a region: set it, or use an IoT host name that names it",
            )
        })?;
        let iam = self.iam.ok_or_else(|| {
            invalid(
                "credentials",
                "are required: IoT Core over WebSocket signs with IAM",
            )
        })?;
        let client_id = self
            .client_id
            .ok_or_else(|| invalid("client_id", "is required (see groupcast::iot::client_id)"))?;
        if client_id.is_empty() || client_id.len() > crate::iot::CLIENT_ID_MAX_BYTES {
            return Err(invalid(
                "client_id",
                format!(
                    "{client_id:?}: must be 1 to {} bytes",
                    crate::iot::CLIENT_ID_MAX_BYTES
                ),
            ));
        }
        let topic_prefix = self
            .topic_prefix
            .unwrap_or_else(|| DEFAULT_IOT_TOPIC_PREFIX.to_owned());
        crate::iot::check_prefix(&topic_prefix).map_err(|e| match e {
            crate::Error::Invalid { field, rule } => SubscribeError::Invalid { field, rule },
            other => invalid("iot.topic_prefix", other.to_string()),
        })?;
        let (states, _) = watch::channel(ConnectionState::Closed);
        Ok(IotSubscriber {
            inner: Arc::new(Inner {
                settings: Arc::new(Settings {
                    url: url.as_str().to_owned(),
                    secure,
                    region,
                    iam,
                    client_id,
                    topic_prefix,
                    reconnect: self.reconnect,
                }),
                buffer: self.buffer.unwrap_or(256).max(1),
                states,
                conn: tokio::sync::Mutex::new(None),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }
}

#[derive(Debug)]
struct Settings {
    /// `wss://host/mqtt` (unsigned).
    url: String,
    secure: bool,
    region: String,
    iam: IamAuth,
    client_id: String,
    topic_prefix: String,
    reconnect: ReconnectPolicy,
}

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    buffer: usize,
    states: watch::Sender<ConnectionState>,
    conn: tokio::sync::Mutex<Option<Conn>>,
    closed: std::sync::atomic::AtomicBool,
}

/// The running connection: the MQTT client handle, the shared bookkeeping, and the stop signal.
#[derive(Debug)]
struct Conn {
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

/// Receives groupcast messages from AWS IoT Core over MQTT. Cheap to clone (one connection,
/// shared); see the [module docs](self).
#[derive(Debug, Clone)]
pub struct IotSubscriber {
    inner: Arc<Inner>,
}

impl IotSubscriber {
    /// Starts a builder.
    pub fn builder() -> IotSubscriberBuilder {
        IotSubscriberBuilder::default()
    }

    /// From the provisioner's outputs (`iot.dataEndpoint`, `iot.topicPrefix`, `region`), IAM
    /// credentials and the client id ([`crate::iot::client_id`]).
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] when the outputs have no IoT section, or as
    /// [`IotSubscriberBuilder::build`].
    pub fn from_outputs(
        outputs: &Outputs,
        iam: IamAuth,
        client_id: impl Into<String>,
    ) -> Result<IotSubscriber, SubscribeError> {
        let i = outputs.iot.as_ref().ok_or_else(|| {
            invalid(
                "iot",
                "the outputs have no IoT section (no [iot] was provisioned)",
            )
        })?;
        let mut b = IotSubscriber::builder()
            .endpoint(&i.data_endpoint)
            .iam(iam)
            .client_id(client_id)
            .topic_prefix(&i.topic_prefix);
        if !outputs.region.is_empty() {
            b = b.region(&outputs.region);
        }
        b.build()
    }

    /// The connection's state, as it changes (`Closed` before the first subscription).
    pub fn states(&self) -> watch::Receiver<ConnectionState> {
        self.inner.states.subscribe()
    }

    /// Subscribes to `topic` (1–3 topic segments; the last may be MQTT's `#`) of each of `groups`:
    /// one filter `{prefix}/{group segment}/{topic}` per group, QoS 1, merged into one stream
    /// de-duplicated by message id. Connects on first use.
    ///
    /// # Errors
    /// [`SubscribeError::Invalid`] naming `groups`, `groups[i]` or `topic` (nothing is sent);
    /// [`SubscribeError::Closed`] after [`Self::close`] or a final connection error.
    pub async fn subscribe_groups<S: AsRef<str>>(
        &self,
        groups: &[S],
        topic: &str,
    ) -> Result<Subscription, SubscribeError> {
        let parts = plan_filters(&self.inner.settings.topic_prefix, groups, topic)?;
        let conn = self.connection().await?;
        let (tx, subscription) = Subscription::channel(self.inner.buffer);
        let mut shared = conn.shared.lock().unwrap_or_else(|p| p.into_inner());
        if shared.finished {
            return Err(SubscribeError::Closed);
        }
        let id = shared.next_sub;
        shared.next_sub += 1;
        let mut sub = IotSub {
            tx,
            parts: Vec::with_capacity(parts.len()),
            dedup: Dedup::default(),
            active_reported: false,
        };
        for (filter, group) in parts {
            let entry = shared.filters.entry(filter.clone()).or_default();
            entry.refs += 1;
            if entry.refs == 1 {
                shared.pending.push_back(filter.clone());
                if let Err(e) = conn.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                    shared.pending.pop_back();
                    tracing::warn!(error = %e, %filter, "iot subscriber: cannot queue SUBSCRIBE");
                }
            }
            sub.parts.push(IotPart {
                filter,
                group,
                ended: false,
            });
        }
        // Filters another subscription already holds may be acknowledged already.
        let mut out = Vec::new();
        shared.subs.insert(id, sub);
        shared.report_active(id, &mut out);
        drop(shared);
        send_all(out);
        Ok(subscription)
    }

    /// Unsubscribes every filter, disconnects, and ends every [`Subscription`] stream. Later calls
    /// to [`Self::subscribe_groups`] fail with [`SubscribeError::Closed`].
    pub async fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let conn = self.inner.conn.lock().await.take();
        if let Some(conn) = conn {
            {
                let shared = conn.shared.lock().unwrap_or_else(|p| p.into_inner());
                for filter in shared.filters.keys() {
                    let _ = conn.client.try_unsubscribe(filter.clone());
                }
            }
            let _ = conn.client.try_disconnect();
            // Give the driver a moment to send them, then stop it.
            let mut done = conn.done.clone();
            let _ = tokio::time::timeout(Duration::from_secs(2), done.wait_for(|d| *d)).await;
            let _ = conn.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(2), done.wait_for(|d| *d)).await;
        }
        self.inner.states.send_replace(ConnectionState::Closed);
    }

    async fn connection(&self) -> Result<ConnHandle, SubscribeError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SubscribeError::Closed);
        }
        let mut conn = self.inner.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            if *c.done.borrow() {
                return Err(SubscribeError::Closed);
            }
            return Ok(ConnHandle {
                client: c.client.clone(),
                shared: c.shared.clone(),
            });
        }
        let c = start(self.inner.settings.clone(), self.inner.states.clone())?;
        let handle = ConnHandle {
            client: c.client.clone(),
            shared: c.shared.clone(),
        };
        *conn = Some(c);
        Ok(handle)
    }
}

struct ConnHandle {
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
}

/// The filters of one call, with the group each belongs to, checked against IoT's limits.
fn plan_filters<S: AsRef<str>>(
    prefix: &str,
    groups: &[S],
    topic: &str,
) -> Result<Vec<(String, String)>, SubscribeError> {
    if groups.is_empty() {
        return Err(invalid(
            "groups",
            "at least one group is needed; an empty list would receive nothing",
        ));
    }
    // The topic rule, with MQTT's multi-level wildcard allowed as the last segment.
    let base = if topic == "#" {
        None
    } else {
        Some(topic.strip_suffix("/#").unwrap_or(topic))
    };
    if let Some(base) = base {
        validate_topic(base).map_err(|e| match e {
            crate::Error::Invalid { field, rule } => SubscribeError::Invalid {
                field,
                rule: format!("{rule} (the last segment may also be '#')"),
            },
            other => invalid("topic", other.to_string()),
        })?;
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let g = g.as_ref();
        let segment =
            group_segment(g).map_err(|e| invalid(format!("groups[{i}]"), e.to_string()))?;
        let filter = crate::iot::topic(prefix, &segment, topic);
        crate::iot::check("topic", &filter, 0).map_err(|e| match e {
            crate::Error::Invalid { field, rule } => SubscribeError::Invalid { field, rule },
            other => invalid("topic", other.to_string()),
        })?;
        if !out.iter().any(|(f, _)| *f == filter) {
            out.push((filter, g.to_owned()));
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct FilterState {
    refs: usize,
    acked: bool,
}

#[derive(Debug)]
struct IotPart {
    filter: String,
    group: String,
    ended: bool,
}

#[derive(Debug)]
struct IotSub {
    tx: mpsc::Sender<SubscriptionEvent>,
    parts: Vec<IotPart>,
    dedup: Dedup,
    active_reported: bool,
}

/// What the driver, the janitor and `subscribe_groups` share.
#[derive(Debug, Default)]
struct Shared {
    subs: HashMap<u64, IotSub>,
    filters: HashMap<String, FilterState>,
    /// Filters whose SUBSCRIBE is queued, in queue order: each becomes one `Outgoing::Subscribe`.
    pending: VecDeque<String>,
    /// SUBSCRIBE packet id → its filter, on the current connection.
    pkids: HashMap<u16, String>,
    next_sub: u64,
    /// The driver has stopped: nothing more will be received.
    finished: bool,
}

type Out = Vec<(mpsc::Sender<SubscriptionEvent>, SubscriptionEvent)>;

/// Sends without waiting, for where waiting is not possible (under the lock's caller, outside the
/// driver): only state changes and the `Active` of a brand-new subscription go this way; a reader
/// whose buffer is full misses a state change, never a message or a part's end.
fn send_all(out: Out) {
    for (tx, event) in out {
        let _ = tx.try_send(event);
    }
}

impl Shared {
    fn report_active(&mut self, id: u64, out: &mut Out) {
        let Some(s) = self.subs.get_mut(&id) else {
            return;
        };
        let all_acked = s
            .parts
            .iter()
            .filter(|p| !p.ended)
            .all(|p| self.filters.get(&p.filter).is_some_and(|f| f.acked));
        if !s.active_reported && all_acked {
            s.active_reported = true;
            out.push((s.tx.clone(), SubscriptionEvent::Active));
        }
    }

    fn state(&self, state: &ConnectionState, out: &mut Out) {
        for s in self.subs.values() {
            out.push((s.tx.clone(), SubscriptionEvent::State(state.clone())));
        }
    }

    /// Removes dropped subscriptions; returns the filters nobody wants any more.
    fn collect_dropped(&mut self) -> Vec<String> {
        let dropped: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        let mut unwanted = Vec::new();
        for id in dropped {
            if let Some(s) = self.subs.remove(&id) {
                for p in s.parts.iter().filter(|p| !p.ended) {
                    if let Some(f) = self.filters.get_mut(&p.filter) {
                        f.refs = f.refs.saturating_sub(1);
                        if f.refs == 0 {
                            self.filters.remove(&p.filter);
                            unwanted.push(p.filter.clone());
                        }
                    }
                }
            }
        }
        unwanted
    }
}

fn start(
    settings: Arc<Settings>,
    states: watch::Sender<ConnectionState>,
) -> Result<Conn, SubscribeError> {
    let mut options = MqttOptions::new(settings.client_id.clone(), settings.url.clone(), 443);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING_PACKET, 16 * 1024);
    options.set_transport(if settings.secure {
        Transport::Wss(TlsConfiguration::Rustls(Arc::new(tls_config()?)))
    } else {
        Transport::Ws
    });
    // Presign every connection attempt with fresh credentials.
    let signer = settings.clone();
    options.set_request_modifier(move |mut request: http::Request<()>| {
        let signer = signer.clone();
        async move {
            match signer.iam.credentials().await {
                Ok(credentials) => {
                    match presigned_url(
                        &signer.url,
                        &credentials,
                        &signer.region,
                        SystemTime::now(),
                    )
                    .map_err(|e| e.to_string())
                    .and_then(|u| u.parse::<http::Uri>().map_err(|e| e.to_string()))
                    {
                        Ok(uri) => *request.uri_mut() = uri,
                        Err(e) => {
                            tracing::warn!(error = %e, "iot subscriber: cannot presign the URL")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "iot subscriber: no IAM credentials to presign with")
                }
            }
            request
        }
    });
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, done) = watch::channel(false);
    tokio::spawn(janitor(client.clone(), shared.clone(), stop_rx.clone()));
    tokio::spawn(drive(
        eventloop,
        client.clone(),
        shared.clone(),
        settings,
        states,
        stop_rx,
        done_tx,
    ));
    Ok(Conn {
        client,
        shared,
        stop,
        done,
    })
}

/// TLS with the tree's rustls and its aws-lc-rs provider, the platform's root certificates.
fn tls_config() -> Result<rumqttc::tokio_rustls::rustls::ClientConfig, SubscribeError> {
    use rumqttc::tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(SubscribeError::Connection(format!(
            "no root certificates found for TLS: {:?}",
            found.errors
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SubscribeError::Connection(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// Unsubscribes the filters of dropped subscriptions.
async fn janitor(client: AsyncClient, shared: Arc<Mutex<Shared>>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(DROP_CHECK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let unwanted = shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .collect_dropped();
        for filter in unwanted {
            if let Err(e) = client.try_unsubscribe(filter.clone()) {
                tracing::warn!(error = %e, %filter, "iot subscriber: cannot queue UNSUBSCRIBE");
            }
        }
    }
}

/// Whether a connection error is final: the broker or the WebSocket upgrade refused the
/// credentials.
fn is_final(e: &ConnectionError) -> bool {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized
            | ConnectReturnCode::BadUserNamePassword
            | ConnectReturnCode::BadClientId,
        ) => true,
        // rumqttc does not re-export its tungstenite, whose `Error::Http` reads "HTTP error: 403 …".
        ConnectionError::Websocket(e) => {
            let text = e.to_string();
            text.starts_with("HTTP error: 401") || text.starts_with("HTTP error: 403")
        }
        _ => false,
    }
}

/// Drives the MQTT event loop: connection states, SUBACKs, messages, backoff.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Mutex<Shared>>,
    settings: Arc<Settings>,
    states: watch::Sender<ConnectionState>,
    mut stop: watch::Receiver<bool>,
    done: watch::Sender<bool>,
) {
    let mut attempt: u32 = 0;
    let set_state = |state: ConnectionState, out: &mut Out, shared: &Shared| {
        if *states.borrow() != state {
            states.send_replace(state.clone());
            shared.state(&state, out);
        }
    };
    {
        let mut out = Vec::new();
        set_state(
            ConnectionState::Connecting,
            &mut out,
            &shared.lock().unwrap_or_else(|p| p.into_inner()),
        );
        send_all(out);
    }
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            _ = stop.changed() => break,
        };
        let mut out: Out = Vec::new();
        let mut messages: Out = Vec::new();
        let mut backoff = None;
        let mut fatal = None;
        {
            let mut sh = shared.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    attempt = 0;
                    sh.pkids.clear();
                    for f in sh.filters.values_mut() {
                        f.acked = false;
                    }
                    for s in sh.subs.values_mut() {
                        s.active_reported = false;
                    }
                    set_state(ConnectionState::Connected, &mut out, &sh);
                    // A clean session holds no subscriptions: subscribe to every wanted filter.
                    let wanted: Vec<String> = sh.filters.keys().cloned().collect();
                    for filter in wanted {
                        sh.pending.push_back(filter.clone());
                        if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                            sh.pending.pop_back();
                            tracing::warn!(error = %e, %filter, "iot subscriber: cannot queue SUBSCRIBE");
                        }
                    }
                }
                Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => {
                    if let Some(filter) = sh.pending.pop_front() {
                        sh.pkids.insert(pkid, filter);
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if let Some(filter) = sh.pkids.remove(&ack.pkid) {
                        let refused = ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, SubscribeReasonCode::Failure));
                        if refused {
                            on_refused(&mut sh, &filter, &mut out);
                        } else if let Some(f) = sh.filters.get_mut(&filter) {
                            f.acked = true;
                            let ids: Vec<u64> = sh.subs.keys().copied().collect();
                            for id in ids {
                                sh.report_active(id, &mut out);
                            }
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    on_publish(&mut sh, &p.topic, &p.payload, &mut messages);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    // close(): the DISCONNECT went out.
                    sh.finished = true;
                }
                Ok(_) => {}
                Err(e) => {
                    if is_final(&e) {
                        fatal = Some(e.to_string());
                    } else {
                        attempt = attempt.saturating_add(1);
                        let delay = settings.reconnect.delay(attempt);
                        tracing::warn!(error = %e, attempt, ?delay, "iot subscriber: connection lost");
                        set_state(ConnectionState::Backoff { attempt, delay }, &mut out, &sh);
                        backoff = Some(delay);
                    }
                }
            }
            if let Some(message) = &fatal {
                for (_, s) in sh.subs.drain() {
                    for p in s.parts.iter().filter(|p| !p.ended) {
                        out.push((
                            s.tx.clone(),
                            SubscriptionEvent::PartEnded {
                                part: p.filter.clone(),
                                error: SubscribeError::Connection(message.clone()),
                            },
                        ));
                    }
                }
                sh.finished = true;
            }
        }
        // Outside the lock, in order; a slow reader makes the connection wait rather than lose
        // a message or a part's end.
        for (tx, event) in out.into_iter().chain(messages) {
            let _ = tx.send(event).await;
        }
        if shared.lock().unwrap_or_else(|p| p.into_inner()).finished {
            break;
        }
        if let Some(delay) = backoff {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => break,
            }
            let mut out = Vec::new();
            set_state(
                ConnectionState::Connecting,
                &mut out,
                &shared.lock().unwrap_or_else(|p| p.into_inner()),
            );
            send_all(out);
        }
    }
    let mut sh = shared.lock().unwrap_or_else(|p| p.into_inner());
    sh.finished = true;
    let mut out = Vec::new();
    set_state(ConnectionState::Closed, &mut out, &sh);
    // Dropping the senders ends every Subscription stream.
    sh.subs.clear();
    drop(sh);
    send_all(out);
    let _ = done.send(true);
}

/// SUBACK 0x80 for `filter`: ends that part of every subscription holding it.
fn on_refused(sh: &mut Shared, filter: &str, out: &mut Out) {
    sh.filters.remove(filter);
    let mut finished = Vec::new();
    for (id, s) in &mut sh.subs {
        for p in s
            .parts
            .iter_mut()
            .filter(|p| !p.ended && p.filter == filter)
        {
            p.ended = true;
            out.push((
                s.tx.clone(),
                SubscriptionEvent::PartEnded {
                    part: filter.to_owned(),
                    error: SubscribeError::Unauthorized {
                        part: filter.to_owned(),
                        message: "the broker refused the subscription (SUBACK return code 0x80)"
                            .into(),
                    },
                },
            ));
        }
        if s.parts.iter().all(|p| p.ended) {
            finished.push(*id);
        }
    }
    for id in finished {
        sh.subs.remove(&id);
    }
    let ids: Vec<u64> = sh.subs.keys().copied().collect();
    for id in ids {
        sh.report_active(id, out);
    }
}

/// A PUBLISH: the envelope, to every subscription with a live filter matching the topic, once
/// per message id, if the envelope names that filter's group.
fn on_publish(sh: &mut Shared, topic: &str, payload: &[u8], out: &mut Out) {
    let envelope: Envelope = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, %topic, bytes = payload.len(), "iot subscriber: dropping a payload that is not a groupcast envelope");
            return;
        }
    };
    for s in sh.subs.values_mut() {
        let Some(part) = s.parts.iter().find(|p| {
            !p.ended && rumqttc::matches(topic, &p.filter) && envelope.groups.contains(&p.group)
        }) else {
            if s.parts
                .iter()
                .any(|p| !p.ended && rumqttc::matches(topic, &p.filter))
            {
                tracing::warn!(id = %envelope.id, %topic, "iot subscriber: dropping a message that does not name the topic's group");
            }
            continue;
        };
        if s.dedup.first_time(envelope.id) {
            out.push((
                s.tx.clone(),
                SubscriptionEvent::Message(Received {
                    envelope: envelope.clone(),
                    part: part.filter.clone(),
                }),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_one_per_group_under_the_prefix_and_bad_input_names_the_field() {
        let f = plan_filters("gc", &["team-a", "Team_B", "team-a"], "chat/#").unwrap();
        assert_eq!(
            f,
            vec![
                ("gc/team-a/chat/#".to_owned(), "team-a".to_owned()),
                ("gc/x--Team-5fB/chat/#".to_owned(), "Team_B".to_owned()),
            ]
        );
        let field = |r: Result<Vec<(String, String)>, SubscribeError>| match r {
            Err(SubscribeError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(plan_filters::<&str>("gc", &[], "t")), "groups");
        assert_eq!(field(plan_filters("gc", &["a", ""], "t")), "groups[1]");
        assert_eq!(field(plan_filters("gc", &["a"], "a/+")), "topic");
        assert_eq!(field(plan_filters("gc", &["a"], "a/b/c/d")), "topic");
        assert_eq!(field(plan_filters("gc", &["a"], "")), "topic");
        // 8 slashes: over IoT's 7.
        assert_eq!(field(plan_filters("a/b/c/d/e/f", &["a"], "t/u")), "topic");
        assert!(plan_filters("a/b/c/d/e", &["a"], "t/u").is_ok());
    }

    #[tokio::test]
    async fn a_message_not_naming_the_topics_group_and_garbage_payloads_are_dropped() {
        let (tx, mut rx) = Subscription::channel(16);
        let mut sh = Shared::default();
        sh.subs.insert(
            0,
            IotSub {
                tx,
                parts: vec![IotPart {
                    filter: "gc/a/t".into(),
                    group: "a".into(),
                    ended: false,
                }],
                dedup: Dedup::default(),
                active_reported: false,
            },
        );
        let mut out = Vec::new();
        for garbage in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"{\"id\":\"x\"}",
            b"\xff\xfe",
            b"null",
        ] {
            on_publish(&mut sh, "gc/a/t", garbage, &mut out);
        }
        let foreign = Envelope {
            id: uuid::Uuid::new_v4(),
            topic: "t".into(),
            data: serde_json::json!(1),
            groups: vec!["b".into()],
        };
        on_publish(
            &mut sh,
            "gc/a/t",
            &serde_json::to_vec(&foreign).unwrap(),
            &mut out,
        );
        assert!(out.is_empty());
        let mine = Envelope {
            groups: vec!["b".into(), "a".into()],
            ..foreign
        };
        let bytes = serde_json::to_vec(&mine).unwrap();
        on_publish(&mut sh, "gc/a/t", &bytes, &mut out);
        on_publish(&mut sh, "gc/a/t", &bytes, &mut out);
        on_publish(&mut sh, "gc/b/t", &bytes, &mut out);
        assert_eq!(out.len(), 1);
        send_all(out);
        match rx.next_event().await {
            Some(SubscriptionEvent::Message(m)) => {
                assert_eq!(m.envelope, mine);
                assert_eq!(m.part, "gc/a/t");
            }
            other => panic!("{other:?}"),
        }
    }
}
