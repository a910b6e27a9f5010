//! Configuration: from code ([`PublisherBuilder`]), from `GROUPCAST_*` environment variables and
//! from the provisioner's [`Outputs`]. Endpoints accept bare hosts (as the outputs file holds them,
//! `https://` is assumed) or full base URLs such as `http://127.0.0.1:8080`.
//!
//! | Variable | Meaning |
//! |---|---|
//! | `GROUPCAST_OUTPUTS` | path of the provisioner's outputs JSON; read first, the variables below override it |
//! | `GROUPCAST_EVENTS_URL` | AppSync Events HTTP host or base URL (`/event` is appended) |
//! | `GROUPCAST_EVENTS_NAMESPACE` | channel namespace (default: the outputs' first namespace) |
//! | `GROUPCAST_EVENTS_EPOCH_SECONDS` | the namespace's epoch in seconds when its channels are time-sliced (`/{ns}/{group}/t{N}/{topic}`, [`crate::epoch`]); `0` = off; default: the outputs' `events.namespaces[].epochSeconds` of the namespace used |
//! | `GROUPCAST_EVENTS_REALTIME_URL` | AppSync Events realtime host or `wss://` base URL (`/event/realtime` is appended), for the `events-ws` transport |
//! | `GROUPCAST_GRAPHQL_URL` | GraphQL endpoint (a bare host gets `/graphql`) |
//! | `GROUPCAST_IOT_ENDPOINT` | IoT `iot:Data-ATS` host or base URL |
//! | `GROUPCAST_IOT_TOPIC_PREFIX` | first levels of every IoT topic (default `groupcast`) |
//! | `GROUPCAST_IOT_GRANT_FUNCTION` | name or ARN of the iot-grant Lambda function that [`crate::Publisher::revoke`] asks to re-sync a user's IoT policies (default: the outputs' `lambdas.iot-grant.functionName`) |
//! | `GROUPCAST_LAMBDA_ENDPOINT` | Lambda API host or base URL for that call (default `https://lambda.{region}.amazonaws.com`) |
//! | `GROUPCAST_REGION` | signing region; falls back to `AWS_REGION`, the outputs' region, then (in `from_env`, with IAM) the AWS config's region |
//! | `GROUPCAST_AUTH` | `iam` (default) or `api-key`, for Events and GraphQL; IoT always signs with IAM |
//! | `GROUPCAST_API_KEY` | the API key for `api-key` (default: the outputs' `apiKey` of each API) |
//! | `GROUPCAST_TRANSPORTS` | comma list of `events`, `events-ws`, `graphql`, `iot` (default: every configured one but `events-ws`) |
//! | `GROUPCAST_DEADLINE_MS` | time budget of one publish call, retries included (default 10000) |
//! | `GROUPCAST_MAX_ATTEMPTS` | attempts per request, the first included (default 4) |
//! | `GROUPCAST_CONCURRENCY` | requests in flight per publish call (default 32) |
//! | `GROUPCAST_RETRY_BASE_MS` | the backoff cap before the first retry, doubled per retry (default 50) |
//! | `GROUPCAST_RETRY_MAX_MS` | the largest backoff cap (default 2000) |
//! | `GROUPCAST_ATTEMPT_TIMEOUT_MS` | the longest one attempt may take before it is retried (default 5000) |
//!
//! IAM credentials come from `aws-config`'s default chain ([`crate::Publisher::from_env`]) or from
//! [`PublisherBuilder::credentials`].

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;

use crate::auth::{Authorizer, IamAuth};
use crate::epoch::Clock;
use crate::error::Error;
use crate::group::is_valid_segment;
use crate::outputs::Outputs;
use crate::retry::RetryPolicy;
use crate::transport::Transport;

/// Default time budget of one publish call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// Default requests in flight per publish call.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Default IoT topic prefix.
pub const DEFAULT_IOT_TOPIC_PREFIX: &str = "groupcast";

#[derive(Debug, Clone)]
pub(crate) struct EventsEndpoint {
    /// `…/event`, parsed once here rather than by every request.
    pub(crate) url: reqwest::Url,
    pub(crate) namespace: String,
    /// The namespace's epoch when its channels are time-sliced ([`crate::epoch`]), checked.
    pub(crate) epoch_seconds: Option<u64>,
}

/// Where the WebSocket transport connects, and the HTTP host its auth objects name.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "websocket"), allow(dead_code))]
pub(crate) struct EventsWsEndpoint {
    /// `wss://{realtime host}/event/realtime` (or `ws://…` in tests).
    pub(crate) url: String,
    /// The HTTP `…/event` URL: what IAM signs.
    pub(crate) http_url: String,
    /// The HTTP host, with its port when not the default: the auth objects' `host`.
    pub(crate) http_host: String,
}

/// Why `events-ws` cannot be used when the crate is built without its `websocket` feature.
pub(crate) const NO_WEBSOCKET_FEATURE: &str = "events-ws: this build of groupcast lacks the WebSocket transport: enable the groupcast crate's `websocket` feature";

/// Where [`crate::Publisher::revoke`] invokes the iot-grant function: the Lambda Invoke URL,
/// `{endpoint}/2015-03-31/functions/{name}/invocations`
/// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
#[derive(Debug, Clone)]
pub(crate) struct IotGrantEndpoint {
    pub(crate) function: String,
    pub(crate) url: reqwest::Url,
}

#[derive(Debug, Clone)]
pub(crate) struct IotEndpoint {
    /// Base URL, no trailing `/`.
    pub(crate) base: String,
    pub(crate) topic_prefix: String,
}

/// Builds a [`crate::Publisher`]. Start from [`crate::Publisher::builder`].
///
/// ```
/// use groupcast::{Authorizer, Publisher, Transport};
/// let publisher = Publisher::builder()
///     .events("abc.appsync-api.us-east-1.amazonaws.com", "live")
///     .graphql("https://def.appsync-api.us-east-1.amazonaws.com/graphql")
///     .authorizer(Authorizer::api_key("da2-example"))
///     .build()
///     .unwrap();
/// # let _ = publisher;
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct PublisherBuilder {
    pub(crate) events: Option<(String, Option<String>)>,
    pub(crate) events_realtime: Option<String>,
    pub(crate) graphql: Option<String>,
    pub(crate) iot: Option<(String, Option<String>)>,
    pub(crate) region: Option<String>,
    pub(crate) authorizer: Option<Authorizer>,
    pub(crate) events_authorizer: Option<Authorizer>,
    pub(crate) graphql_authorizer: Option<Authorizer>,
    pub(crate) iam: Option<IamAuth>,
    pub(crate) transports: Option<Vec<Transport>>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) concurrency: Option<usize>,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) iot_grant_function: Option<String>,
    pub(crate) lambda_endpoint: Option<String>,
    /// Set in code or by `GROUPCAST_EVENTS_EPOCH_SECONDS`: wins over the outputs; 0 = off.
    pub(crate) events_epoch_seconds: Option<u64>,
    /// Each outputs namespace's epoch, so the one of the namespace finally used is taken.
    outputs_namespace_epochs: Vec<(String, Option<u64>)>,
    pub(crate) clock: Clock,
    outputs_events_api_key: Option<String>,
    outputs_graphql_api_key: Option<String>,
}

/// What `build` checked, ready for the publisher.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) events: Option<EventsEndpoint>,
    pub(crate) events_ws: Option<EventsWsEndpoint>,
    /// `…/graphql`, parsed once.
    pub(crate) graphql: Option<reqwest::Url>,
    pub(crate) iot: Option<IotEndpoint>,
    pub(crate) iot_grant: Option<IotGrantEndpoint>,
    pub(crate) region: Option<String>,
    pub(crate) events_authorizer: Option<Authorizer>,
    pub(crate) graphql_authorizer: Option<Authorizer>,
    pub(crate) iam: Option<IamAuth>,
    pub(crate) transports: Vec<Transport>,
    pub(crate) deadline: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) concurrency: usize,
    /// "Now" for picking epochs.
    pub(crate) clock: Clock,
}

impl PublisherBuilder {
    /// AppSync Events: the HTTP host (`abc.appsync-api.us-east-1.amazonaws.com`) or base URL, and
    /// the channel namespace.
    pub fn events(mut self, url: impl Into<String>, namespace: impl Into<String>) -> Self {
        self.events = Some((url.into(), Some(namespace.into())));
        self
    }
    /// AppSync Events over WebSocket: the realtime host
    /// (`abc.appsync-realtime-api.us-east-1.amazonaws.com`) or a `wss://`/`ws://` base URL;
    /// `/event/realtime` is appended. Needs [`Self::events`] too (its host goes into every auth
    /// object, its namespace into every channel). Enables [`Transport::EventsWs`], which a call
    /// uses only when named ([`Self::transports`] or per call).
    pub fn events_realtime(mut self, url: impl Into<String>) -> Self {
        self.events_realtime = Some(url.into());
        self
    }
    /// AppSync GraphQL: the endpoint URL (`https://…/graphql`) or host.
    pub fn graphql(mut self, url: impl Into<String>) -> Self {
        self.graphql = Some(url.into());
        self
    }
    /// IoT Core: the `iot:Data-ATS` host or base URL, and the topic prefix.
    pub fn iot(mut self, endpoint: impl Into<String>, topic_prefix: impl Into<String>) -> Self {
        self.iot = Some((endpoint.into(), Some(topic_prefix.into())));
        self
    }
    /// The iot-grant Lambda function (name or ARN) that [`crate::Publisher::revoke`] invokes to
    /// re-sync a user's IoT policies with their current groups.
    pub fn iot_grant_function(mut self, name: impl Into<String>) -> Self {
        self.iot_grant_function = Some(name.into());
        self
    }
    /// The Lambda API host or base URL for that call (default
    /// `https://lambda.{region}.amazonaws.com`).
    pub fn lambda_endpoint(mut self, url: impl Into<String>) -> Self {
        self.lambda_endpoint = Some(url.into());
        self
    }
    /// The SigV4 signing region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
    /// The default authorizer of Events and GraphQL (IoT: see [`Self::credentials`]).
    pub fn authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = Some(authorizer);
        self
    }
    /// The default authorizer of Events, over [`Self::authorizer`].
    pub fn events_authorizer(mut self, authorizer: Authorizer) -> Self {
        self.events_authorizer = Some(authorizer);
        self
    }
    /// The default authorizer of GraphQL, over [`Self::authorizer`].
    pub fn graphql_authorizer(mut self, authorizer: Authorizer) -> Self {
        self.graphql_authorizer = Some(authorizer);
        self
    }
    /// IAM credentials: they sign IoT requests, and Events and GraphQL requests when no other
    /// authorizer is set.
    pub fn credentials(mut self, provider: SharedCredentialsProvider) -> Self {
        self.iam = Some(IamAuth::new(provider));
        self
    }
    /// The transports a publish call uses unless told otherwise (default: every configured one).
    pub fn transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        self.transports = Some(transports.into_iter().collect());
        self
    }
    /// The time budget of one publish call, retries included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
    /// Attempts per request, the first included.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }
    /// The whole retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Requests in flight per publish call.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n);
        self
    }
    /// The Events namespace's epoch in seconds: every Events publish (HTTP and WebSocket) goes to
    /// `/{namespace}/{group}/t{N}/{topic}` with `N` the epoch of the publisher's clock
    /// ([`crate::epoch`]). `0` turns epochs off. Default: the outputs' `epochSeconds` of the
    /// namespace used. Checked by [`crate::epoch::check_period`] at build.
    pub fn events_epoch_seconds(mut self, seconds: u64) -> Self {
        self.events_epoch_seconds = Some(seconds);
        self
    }
    /// Where "now" comes from when picking an epoch (default: the system clock); for tests.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
    /// Use this HTTP client instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Takes endpoints, region and API keys from the provisioner's outputs. Values set on the
    /// builder before stay unless the outputs have them.
    pub fn outputs(mut self, outputs: &Outputs) -> Self {
        if !outputs.region.is_empty() {
            self.region = Some(outputs.region.clone());
        }
        if let Some(e) = &outputs.events {
            self.events = Some((
                e.http_host.clone(),
                e.namespaces.first().map(|n| n.name.clone()),
            ));
            self.outputs_events_api_key = e.api_key.clone();
            self.outputs_namespace_epochs = e
                .namespaces
                .iter()
                .map(|n| (n.name.clone(), n.epoch_seconds))
                .collect();
            if !e.realtime_host.is_empty() {
                self.events_realtime = Some(e.realtime_host.clone());
            }
        }
        if let Some(g) = &outputs.graphql {
            self.graphql = Some(g.url.clone());
            self.outputs_graphql_api_key = g.api_key.clone();
        }
        if let Some(i) = &outputs.iot {
            self.iot = Some((i.data_endpoint.clone(), Some(i.topic_prefix.clone())));
        }
        if let Some(l) = outputs.lambdas.get(crate::outputs::IOT_GRANT_LAMBDA) {
            self.iot_grant_function = Some(l.function_name.clone());
        }
        self
    }

    /// Applies the `GROUPCAST_*` variables (see the [module docs](self)) read through `var`.
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
            let ns = self.events.take().and_then(|(_, ns)| ns);
            self.events = Some((url, ns));
        }
        if let Some(ns) = get("GROUPCAST_EVENTS_NAMESPACE") {
            let Some((url, _)) = self.events.take() else {
                return Err(Error::Config(
                    "GROUPCAST_EVENTS_NAMESPACE is set but no Events endpoint is: set GROUPCAST_EVENTS_URL or GROUPCAST_OUTPUTS".into(),
                ));
            };
            self.events = Some((url, Some(ns)));
        }
        if let Some(v) = get("GROUPCAST_EVENTS_EPOCH_SECONDS") {
            self.events_epoch_seconds =
                Some(parse_epoch_seconds("GROUPCAST_EVENTS_EPOCH_SECONDS", &v)?);
        }
        if let Some(url) = get("GROUPCAST_EVENTS_REALTIME_URL") {
            if self.events.is_none() {
                return Err(Error::Config(
                    "GROUPCAST_EVENTS_REALTIME_URL is set but no Events endpoint is: set GROUPCAST_EVENTS_URL or GROUPCAST_OUTPUTS (its host goes into every WebSocket auth object)".into(),
                ));
            }
            self.events_realtime = Some(url);
        }
        if let Some(url) = get("GROUPCAST_GRAPHQL_URL") {
            self.graphql = Some(url);
        }
        if let Some(url) = get("GROUPCAST_IOT_ENDPOINT") {
            let prefix = self.iot.take().and_then(|(_, p)| p);
            self.iot = Some((url, prefix));
        }
        if let Some(prefix) = get("GROUPCAST_IOT_TOPIC_PREFIX") {
            let Some((url, _)) = self.iot.take() else {
                return Err(Error::Config(
                    "GROUPCAST_IOT_TOPIC_PREFIX is set but no IoT endpoint is: set GROUPCAST_IOT_ENDPOINT or GROUPCAST_OUTPUTS".into(),
                ));
            };
            self.iot = Some((url, Some(prefix)));
        }
        if let Some(name) = get("GROUPCAST_IOT_GRANT_FUNCTION") {
            self.iot_grant_function = Some(name);
        }
        if let Some(url) = get("GROUPCAST_LAMBDA_ENDPOINT") {
            self.lambda_endpoint = Some(url);
        }
        if let Some(region) = get("GROUPCAST_REGION").or_else(|| get("AWS_REGION")) {
            self.region = Some(region);
        }
        match get("GROUPCAST_AUTH")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("iam") => {}
            Some("api-key") => {
                let key = get("GROUPCAST_API_KEY");
                if self.events.is_some() {
                    let k = key.clone().or_else(|| self.outputs_events_api_key.clone()).ok_or_else(|| {
                        Error::Config("GROUPCAST_AUTH=api-key but the Events API has no key: set GROUPCAST_API_KEY".into())
                    })?;
                    self.events_authorizer = Some(Authorizer::ApiKey(k));
                }
                if self.graphql.is_some() {
                    let k = key.or_else(|| self.outputs_graphql_api_key.clone()).ok_or_else(|| {
                        Error::Config("GROUPCAST_AUTH=api-key but the GraphQL API has no key: set GROUPCAST_API_KEY".into())
                    })?;
                    self.graphql_authorizer = Some(Authorizer::ApiKey(k));
                }
            }
            Some(other) => {
                return Err(Error::Config(format!(
                    "GROUPCAST_AUTH={other:?}: expected iam or api-key"
                )));
            }
        }
        if let Some(list) = get("GROUPCAST_TRANSPORTS") {
            let ts = list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(str::parse)
                .collect::<Result<Vec<Transport>, Error>>()
                .map_err(|e| Error::Config(format!("GROUPCAST_TRANSPORTS: {e}")))?;
            self.transports = Some(ts);
        }
        if let Some(ms) = get("GROUPCAST_DEADLINE_MS") {
            let ms: u64 = parse_positive("GROUPCAST_DEADLINE_MS", &ms)?;
            self.deadline = Some(Duration::from_millis(ms));
        }
        if let Some(n) = get("GROUPCAST_MAX_ATTEMPTS") {
            self.retry.max_attempts = parse_positive("GROUPCAST_MAX_ATTEMPTS", &n)?;
        }
        if let Some(n) = get("GROUPCAST_CONCURRENCY") {
            self.concurrency = Some(parse_positive("GROUPCAST_CONCURRENCY", &n)?);
        }
        for (name, field) in [
            ("GROUPCAST_RETRY_BASE_MS", &mut self.retry.base_delay),
            ("GROUPCAST_RETRY_MAX_MS", &mut self.retry.max_delay),
            (
                "GROUPCAST_ATTEMPT_TIMEOUT_MS",
                &mut self.retry.attempt_timeout,
            ),
        ] {
            if let Some(ms) = get(name) {
                *field = Duration::from_millis(parse_positive(name, &ms)?);
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

    /// Whether the configuration needs IAM credentials that were not given.
    pub(crate) fn needs_default_credentials(&self) -> bool {
        if self.iam.is_some() {
            return false;
        }
        let transports = self.transports.clone().unwrap_or_else(|| self.configured());
        transports.iter().any(|t| match t {
            Transport::Iot => true,
            Transport::Events | Transport::EventsWs => {
                self.events_authorizer.is_none() && self.authorizer.is_none()
            }
            Transport::Graphql => self.graphql_authorizer.is_none() && self.authorizer.is_none(),
        })
    }

    fn configured(&self) -> Vec<Transport> {
        let mut v = Vec::new();
        if self.events.is_some() {
            v.push(Transport::Events);
        }
        if self.events.is_some() && self.events_realtime.is_some() {
            v.push(Transport::EventsWs);
        }
        if self.graphql.is_some() {
            v.push(Transport::Graphql);
        }
        if self.iot.is_some() {
            v.push(Transport::Iot);
        }
        v
    }

    /// Checks everything and builds the settings.
    pub(crate) fn settings(self) -> Result<(Settings, Option<reqwest::Client>), Error> {
        let configured = self.configured();
        if configured.is_empty() {
            return Err(Error::Config(
                "no transport is configured: give an Events, GraphQL or IoT endpoint (GROUPCAST_EVENTS_URL, GROUPCAST_GRAPHQL_URL, GROUPCAST_IOT_ENDPOINT or GROUPCAST_OUTPUTS)".into(),
            ));
        }
        let events = match self.events {
            None => None,
            Some((url, ns)) => {
                let ns = ns.ok_or_else(|| {
                    Error::Config(
                        "events.namespace: no channel namespace: set GROUPCAST_EVENTS_NAMESPACE"
                            .into(),
                    )
                })?;
                check_namespace(&ns)?;
                let mut url = base_url("events.url", &url)?;
                if !url.ends_with("/event") {
                    url.push_str("/event");
                }
                let epoch_seconds = resolve_epoch(
                    self.events_epoch_seconds,
                    &self.outputs_namespace_epochs,
                    &ns,
                )?;
                Some(EventsEndpoint {
                    url: parse_url("events.url", &url)?,
                    namespace: ns,
                    epoch_seconds,
                })
            }
        };
        let events_ws = match (self.events_realtime, &events) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Config(
                    "events.realtime_url: the WebSocket transport needs the Events HTTP endpoint too (builder .events, GROUPCAST_EVENTS_URL or GROUPCAST_OUTPUTS): its host goes into every auth object".into(),
                ));
            }
            (Some(url), Some(ep)) => Some(EventsWsEndpoint {
                url: realtime_url(&url)?,
                http_url: ep.url.to_string(),
                http_host: host_of(ep.url.as_str()),
            }),
        };
        let graphql = match self.graphql {
            None => None,
            Some(url) => {
                let mut url = base_url("graphql.url", &url)?;
                let path = reqwest::Url::parse(&url)
                    .map(|u| u.path().to_owned())
                    .unwrap_or_default();
                if path.is_empty() || path == "/" {
                    url.push_str("/graphql");
                }
                Some(parse_url("graphql.url", &url)?)
            }
        };
        let iot = match self.iot {
            None => None,
            Some((url, prefix)) => {
                let prefix = prefix.unwrap_or_else(|| DEFAULT_IOT_TOPIC_PREFIX.to_owned());
                crate::iot::check_prefix(&prefix)?;
                Some(IotEndpoint {
                    base: base_url("iot.endpoint", &url)?,
                    topic_prefix: prefix,
                })
            }
        };
        let iot_grant = match self.iot_grant_function {
            None => None,
            Some(name) => Some(iot_grant_endpoint(
                &name,
                self.lambda_endpoint.as_deref(),
                self.region.as_deref(),
            )?),
        };
        let transports = match self.transports {
            // events-ws reaches the same channels as events: only ever used when named.
            None => configured
                .into_iter()
                .filter(|t| *t != Transport::EventsWs)
                .collect(),
            Some(ts) => {
                if ts.is_empty() {
                    return Err(Error::Config(
                        "transports: the list is empty; name at least one of events, graphql, iot"
                            .into(),
                    ));
                }
                for t in &ts {
                    if !configured.contains(t) {
                        return Err(Error::Config(format!(
                            "transports: {t} is listed but has no endpoint configured"
                        )));
                    }
                }
                let ts = dedup(ts);
                check_transport_set(&ts)?;
                ts
            }
        };
        let authorizer = self
            .authorizer
            .or_else(|| self.iam.clone().map(Authorizer::Iam));
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(Error::invalid("concurrency", "must be at least 1"));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::invalid("max_attempts", "must be at least 1"));
        }
        let settings = Settings {
            events_authorizer: self.events_authorizer.or_else(|| authorizer.clone()),
            graphql_authorizer: self.graphql_authorizer.or_else(|| authorizer.clone()),
            events,
            events_ws,
            graphql,
            iot,
            iot_grant,
            region: self.region,
            iam: self.iam,
            transports,
            deadline: self.deadline.unwrap_or(DEFAULT_DEADLINE),
            retry: self.retry,
            concurrency,
            clock: self.clock,
        };
        Ok((settings, self.http))
    }
}

/// The epoch of namespace `ns`: the one set in code or by the variable (`0` = off) over the outputs'
/// entry for `ns`, checked by [`crate::epoch::check_period`] (field `events.epoch_seconds`).
pub(crate) fn resolve_epoch(
    set: Option<u64>,
    outputs: &[(String, Option<u64>)],
    ns: &str,
) -> Result<Option<u64>, Error> {
    let p = match set {
        Some(0) => None,
        Some(p) => Some(p),
        None => outputs.iter().find(|(n, _)| n == ns).and_then(|(_, p)| *p),
    };
    if let Some(p) = p {
        crate::epoch::check_period(p)
            .map_err(|e| Error::invalid("events.epoch_seconds", e.to_string()))?;
    }
    Ok(p)
}

/// `GROUPCAST_EVENTS_EPOCH_SECONDS`: a whole number, 0 (off) or a period [`crate::epoch::check_period`] takes.
pub(crate) fn parse_epoch_seconds(name: &str, v: &str) -> Result<u64, Error> {
    let p: u64 = v.parse().map_err(|_| {
        Error::Config(format!(
            "{name}={v:?}: expected a whole number of seconds (0 = no epochs)"
        ))
    })?;
    if p != 0 {
        crate::epoch::check_period(p).map_err(|e| Error::Config(format!("{name}={v:?}: {e}")))?;
    }
    Ok(p)
}

/// The namespace rule (`events.namespace`): a channel's first segment.
pub(crate) fn check_namespace(ns: &str) -> Result<(), Error> {
    if is_valid_segment(ns) {
        return Ok(());
    }
    Err(Error::invalid(
        "events.namespace",
        format!(
            "{ns:?} is not a namespace name: 1-50 characters of [A-Za-z0-9-], alphanumeric at both ends"
        ),
    ))
}

/// Rules on a set of transports: `events-ws` needs the `websocket` feature, and is never combined
/// with `events`, which reaches the same channels.
pub(crate) fn check_transport_set(ts: &[Transport]) -> Result<(), Error> {
    if ts.contains(&Transport::EventsWs) {
        if !cfg!(feature = "websocket") {
            return Err(Error::Config(NO_WEBSOCKET_FEATURE.into()));
        }
        if ts.contains(&Transport::Events) {
            return Err(Error::invalid(
                "transports",
                "events and events-ws publish to the same channels, so subscribers would get every event twice: choose one",
            ));
        }
    }
    Ok(())
}

/// The realtime endpoint URL: `wss://` assumed for a bare host, `/event/realtime` appended.
pub(crate) fn realtime_url(s: &str) -> Result<String, Error> {
    let field = "events.realtime_url";
    let s = s.trim().trim_end_matches('/');
    let mut url = if s.contains("://") {
        s.to_owned()
    } else {
        format!("wss://{s}")
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => {}
        Ok(_) => {
            return Err(Error::invalid(
                field,
                format!("{s:?} is not a ws(s) URL or host name"),
            ));
        }
        Err(e) => {
            return Err(Error::invalid(
                field,
                format!("{s:?} is not a URL or host name: {e}"),
            ));
        }
    }
    if !url.ends_with("/event/realtime") {
        url.push_str("/event/realtime");
    }
    Ok(url)
}

/// The Invoke URL of the iot-grant function. A function name, ARN or partial ARN holds only
/// `[A-Za-z0-9-_.:$]` (Lambda's `FunctionName` pattern, API_Invoke.html); anything else would
/// change the request path, so it is refused rather than encoded.
fn iot_grant_endpoint(
    name: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<IotGrantEndpoint, Error> {
    let field = "iot_grant.function";
    let name = name.trim();
    if name.is_empty()
        || name.len() > 170
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:$".contains(c))
    {
        return Err(Error::invalid(
            field,
            format!(
                "{name:?} is not a Lambda function name or ARN (1-170 characters of [A-Za-z0-9-_.:$])"
            ),
        ));
    }
    let base = match (endpoint, region) {
        (Some(e), _) => base_url("lambda.endpoint", e)?,
        (None, Some(r)) => format!("https://lambda.{r}.amazonaws.com"),
        (None, None) => {
            return Err(Error::Config(
                "iot_grant.function: invoking it needs a region (GROUPCAST_REGION or AWS_REGION, or .region()) or a Lambda endpoint (GROUPCAST_LAMBDA_ENDPOINT)".into(),
            ));
        }
    };
    // `$` (in `$LATEST`) is the only character here a URL path must encode.
    let path_name = name.replace('$', "%24");
    Ok(IotGrantEndpoint {
        function: name.to_owned(),
        url: parse_url(
            "lambda.endpoint",
            &format!("{base}/2015-03-31/functions/{path_name}/invocations"),
        )?,
    })
}

/// A request URL, parsed once rather than by reqwest on every attempt.
pub(crate) fn parse_url(field: &str, url: &str) -> Result<reqwest::Url, Error> {
    reqwest::Url::parse(url).map_err(|e| Error::invalid(field, format!("{url:?}: {e}")))
}

/// `host[:port]` of a URL that `base_url` accepted, as a `Host` header names it.
pub(crate) fn host_of(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("checked by base_url");
    let host = u.host_str().unwrap_or_default();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

pub(crate) fn dedup(ts: Vec<Transport>) -> Vec<Transport> {
    let mut out: Vec<Transport> = Vec::with_capacity(ts.len());
    for t in ts {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A base URL without a trailing `/`: `https://` is assumed for a bare host.
pub(crate) fn base_url(field: &str, s: &str) -> Result<String, Error> {
    let s = s.trim().trim_end_matches('/');
    let url = if s.contains("://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        Ok(_) => Err(Error::invalid(
            field,
            format!("{s:?} is not an http(s) URL or host name"),
        )),
        Err(e) => Err(Error::invalid(
            field,
            format!("{s:?} is not a URL or host name: {e}"),
        )),
    }
}

fn parse_positive<T: std::str::FromStr + PartialEq + Default>(
    name: &str,
    v: &str,
) -> Result<T, Error> {
    match v.parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(Error::Config(format!(
            "{name}={v:?}: expected a positive whole number"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_every_variable() {
        let b = PublisherBuilder::default()
            .env_with(env(&[
                ("GROUPCAST_EVENTS_URL", "http://127.0.0.1:1234"),
                ("GROUPCAST_EVENTS_NAMESPACE", "live"),
                ("GROUPCAST_GRAPHQL_URL", "gql.example.com"),
                (
                    "GROUPCAST_IOT_ENDPOINT",
                    "a-ats.iot.eu-west-1.amazonaws.com",
                ),
                ("GROUPCAST_IOT_TOPIC_PREFIX", "org/app"),
                ("AWS_REGION", "eu-west-1"),
                ("GROUPCAST_AUTH", "api-key"),
                ("GROUPCAST_API_KEY", "da2-k"),
                ("GROUPCAST_TRANSPORTS", "events, iot"),
                ("GROUPCAST_DEADLINE_MS", "2500"),
                ("GROUPCAST_MAX_ATTEMPTS", "7"),
                ("GROUPCAST_CONCURRENCY", "3"),
                ("GROUPCAST_RETRY_BASE_MS", "2"),
                ("GROUPCAST_RETRY_MAX_MS", "20"),
                ("GROUPCAST_ATTEMPT_TIMEOUT_MS", "300"),
            ]))
            .unwrap();
        let (s, _) = b.settings().unwrap();
        let e = s.events.unwrap();
        assert_eq!(
            (e.url.as_str(), e.namespace.as_str()),
            ("http://127.0.0.1:1234/event", "live")
        );
        assert_eq!(
            s.graphql.as_ref().map(reqwest::Url::as_str),
            Some("https://gql.example.com/graphql")
        );
        let iot = s.iot.unwrap();
        assert_eq!(
            (iot.base.as_str(), iot.topic_prefix.as_str()),
            ("https://a-ats.iot.eu-west-1.amazonaws.com", "org/app")
        );
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(matches!(s.events_authorizer, Some(Authorizer::ApiKey(ref k)) if k == "da2-k"));
        assert_eq!(s.transports, [Transport::Events, Transport::Iot]);
        assert_eq!(s.deadline, Duration::from_millis(2500));
        assert_eq!((s.retry.max_attempts, s.concurrency), (7, 3));
        assert_eq!(
            (
                s.retry.base_delay,
                s.retry.max_delay,
                s.retry.attempt_timeout
            ),
            (
                Duration::from_millis(2),
                Duration::from_millis(20),
                Duration::from_millis(300)
            )
        );
    }

    #[test]
    fn groupcast_region_wins_over_aws_region() {
        let b = PublisherBuilder::default()
            .env_with(env(&[
                ("GROUPCAST_REGION", "ap-south-1"),
                ("AWS_REGION", "us-east-1"),
            ]))
            .unwrap();
        assert_eq!(b.region.as_deref(), Some("ap-south-1"));
    }

    #[test]
    fn malformed_variables_are_named() {
        for (k, v) in [
            ("GROUPCAST_DEADLINE_MS", "soon"),
            ("GROUPCAST_MAX_ATTEMPTS", "0"),
            ("GROUPCAST_RETRY_BASE_MS", "-1"),
            ("GROUPCAST_RETRY_MAX_MS", "0"),
            ("GROUPCAST_ATTEMPT_TIMEOUT_MS", "1s"),
            ("GROUPCAST_TRANSPORTS", "events,smoke"),
            ("GROUPCAST_AUTH", "magic"),
        ] {
            let e = PublisherBuilder::default()
                .env_with(env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn reads_the_outputs_file() {
        let dir = std::env::temp_dir().join(format!("groupcast-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outputs.json");
        std::fs::write(&path, r#"{"version":1,"region":"us-west-2",
            "events":{"apiId":"a","apiArn":"arn","httpHost":"h.appsync-api.us-west-2.amazonaws.com","realtimeHost":"r",
                      "namespaces":[{"name":"live","arn":"n"}],"apiKey":"da2-out"},
            "iot":{"dataEndpoint":"x-ats.iot.us-west-2.amazonaws.com","topicPrefix":"gc","policyNamePattern":"p-{group}"}}"#).unwrap();
        let b = PublisherBuilder::default()
            .env_with(env(&[
                ("GROUPCAST_OUTPUTS", path.to_str().unwrap()),
                ("GROUPCAST_AUTH", "api-key"),
            ]))
            .unwrap();
        let (s, _) = b.settings().unwrap();
        assert_eq!(
            s.events.unwrap().url.as_str(),
            "https://h.appsync-api.us-west-2.amazonaws.com/event"
        );
        assert_eq!(s.iot.unwrap().topic_prefix, "gc");
        assert_eq!(s.region.as_deref(), Some("us-west-2"));
        assert!(matches!(s.events_authorizer, Some(Authorizer::ApiKey(ref k)) if k == "da2-out"));
        assert_eq!(s.transports, [Transport::Events, Transport::Iot]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_realtime_endpoint_comes_from_the_variable_or_the_outputs() {
        let b = PublisherBuilder::default()
            .env_with(env(&[
                ("GROUPCAST_EVENTS_URL", "http://127.0.0.1:1234"),
                ("GROUPCAST_EVENTS_NAMESPACE", "live"),
                ("GROUPCAST_EVENTS_REALTIME_URL", "ws://127.0.0.1:5678"),
                ("GROUPCAST_AUTH", "api-key"),
                ("GROUPCAST_API_KEY", "k"),
            ]))
            .unwrap();
        let (s, _) = b.settings().unwrap();
        let ws = s.events_ws.unwrap();
        assert_eq!(ws.url, "ws://127.0.0.1:5678/event/realtime");
        assert_eq!(ws.http_url, "http://127.0.0.1:1234/event");
        assert_eq!(ws.http_host, "127.0.0.1:1234");
        // Never a default transport: it reaches the same channels as `events`.
        assert_eq!(s.transports, [Transport::Events]);

        let outputs = Outputs::from_json(
            r#"{"version":1,"region":"us-west-2",
            "events":{"apiId":"a","apiArn":"arn","httpHost":"h.appsync-api.us-west-2.amazonaws.com",
                      "realtimeHost":"h.appsync-realtime-api.us-west-2.amazonaws.com",
                      "namespaces":[{"name":"live","arn":"n"}],"apiKey":"da2-out"}}"#,
        )
        .unwrap();
        let (s, _) = PublisherBuilder::default()
            .outputs(&outputs)
            .transports([Transport::EventsWs])
            .settings()
            .unwrap();
        let ws = s.events_ws.unwrap();
        assert_eq!(
            ws.url,
            "wss://h.appsync-realtime-api.us-west-2.amazonaws.com/event/realtime"
        );
        assert_eq!(ws.http_host, "h.appsync-api.us-west-2.amazonaws.com");
        assert_eq!(s.transports, [Transport::EventsWs]);
    }

    #[test]
    fn the_realtime_endpoint_needs_the_http_one_and_a_ws_scheme() {
        let e = PublisherBuilder::default()
            .env_with(env(&[("GROUPCAST_EVENTS_REALTIME_URL", "r.example")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("GROUPCAST_EVENTS_REALTIME_URL"),
            "{e}"
        );
        let e = PublisherBuilder::default()
            .events_realtime("r.example")
            .graphql("g.example")
            .settings()
            .unwrap_err();
        assert!(e.to_string().contains("events.realtime_url"), "{e}");
        let e = PublisherBuilder::default()
            .events("h.example", "live")
            .events_realtime("https://r.example")
            .settings()
            .unwrap_err();
        assert!(e.to_string().contains("events.realtime_url"), "{e}");
    }

    #[test]
    fn rejects_unconfigured_transports_and_bad_namespaces() {
        let e = PublisherBuilder::default()
            .events("h", "live")
            .transports([Transport::Iot])
            .settings()
            .unwrap_err();
        assert!(e.to_string().contains("iot"), "{e}");
        let e = PublisherBuilder::default()
            .events("h", "bad_ns")
            .settings()
            .unwrap_err();
        assert!(e.to_string().contains("events.namespace"), "{e}");
        assert!(PublisherBuilder::default().settings().is_err());
    }

    fn outputs_with_namespaces(namespaces: &str) -> Outputs {
        Outputs::from_json(&format!(
            r#"{{"version":1,"region":"us-west-2",
            "events":{{"apiId":"a","apiArn":"arn","httpHost":"h.example","realtimeHost":"r.example",
                      "namespaces":{namespaces},"apiKey":"k"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_epoch_is_the_outputs_entry_of_the_namespace_actually_used() {
        let outputs = outputs_with_namespaces(
            r#"[{"name":"live","arn":"n"},{"name":"sliced","arn":"m","epochSeconds":300}]"#,
        );
        let (s, _) = PublisherBuilder::default()
            .outputs(&outputs)
            .authorizer(Authorizer::api_key("k"))
            .settings()
            .unwrap();
        assert_eq!(s.events.unwrap().epoch_seconds, None);
        let (s, _) = PublisherBuilder::default()
            .outputs(&outputs)
            .env_with(env(&[("GROUPCAST_EVENTS_NAMESPACE", "sliced")]))
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.events.unwrap().epoch_seconds, Some(300));
    }

    #[test]
    fn the_epoch_variable_overrides_the_outputs_and_zero_turns_epochs_off() {
        let outputs = outputs_with_namespaces(r#"[{"name":"live","arn":"n","epochSeconds":300}]"#);
        for (v, want) in [("60", Some(60)), ("0", None)] {
            let (s, _) = PublisherBuilder::default()
                .outputs(&outputs)
                .env_with(env(&[("GROUPCAST_EVENTS_EPOCH_SECONDS", v)]))
                .unwrap()
                .settings()
                .unwrap();
            assert_eq!(s.events.unwrap().epoch_seconds, want, "{v}");
        }
        let (s, _) = PublisherBuilder::default()
            .outputs(&outputs)
            .events_epoch_seconds(0)
            .settings()
            .unwrap();
        assert_eq!(s.events.unwrap().epoch_seconds, None);
    }

    #[test]
    fn an_epoch_outside_the_limits_is_refused_naming_the_variable_or_the_field_and_the_rule() {
        for v in ["1", "86401", "soon", "-5"] {
            let e = PublisherBuilder::default()
                .env_with(env(&[("GROUPCAST_EVENTS_EPOCH_SECONDS", v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("GROUPCAST_EVENTS_EPOCH_SECONDS"), "{v}: {e}");
        }
        let e = PublisherBuilder::default()
            .events("h.example", "live")
            .events_epoch_seconds(1)
            .settings()
            .unwrap_err()
            .to_string();
        assert!(e.contains("events.epoch_seconds"), "{e}");
        assert!(e.contains("EPOCH_SECONDS_MIN"), "{e}");
        // A bad period in the outputs is refused the same way.
        let outputs = outputs_with_namespaces(r#"[{"name":"live","arn":"n","epochSeconds":1}]"#);
        let e = PublisherBuilder::default()
            .outputs(&outputs)
            .authorizer(Authorizer::api_key("k"))
            .settings()
            .unwrap_err()
            .to_string();
        assert!(e.contains("events.epoch_seconds"), "{e}");
    }
}
