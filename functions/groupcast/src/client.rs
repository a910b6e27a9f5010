//! The [`Publisher`]: validates a whole call first, then sends every request over one pooled HTTP
//! client (or, for [`Transport::EventsWs`], the publisher's WebSocket connection) with bounded
//! concurrency and retries, and reports every (message, group, transport).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use crate::auth::Authorizer;
use crate::config::{PublisherBuilder, Settings, parse_url};
use crate::error::Error;
use crate::message::Message;
use crate::report::{Delivery, Outcome, PublishReport};
use crate::retry::{self, AttemptError, Item};
use crate::sign::{APPSYNC_SERVICE, IOT_DATA_SERVICE, SigV4};
use crate::transport::Transport;
use crate::{events, graphql, group_segment, iot};

/// Per-call choices; the default uses the publisher's configuration.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// The transports to use (default: the publisher's).
    pub transports: Option<Vec<Transport>>,
    /// The authorizer of Events and GraphQL requests (default: the publisher's). IoT requests
    /// use it when it is [`Authorizer::Iam`], and the publisher's IAM credentials otherwise.
    pub authorizer: Option<Authorizer>,
    /// A wall-clock time the call must end by, e.g. a Lambda invocation's deadline less the time
    /// to answer: the call's deadline is the earlier of this and the publisher's (default: the
    /// publisher's alone). One already past fails every delivery, retryable, without sending.
    pub deadline: Option<SystemTime>,
}

/// Publishing (and revoking) as an interface, so that functions can be tested with a fake.
pub trait Publish {
    /// Publishes `msgs`; see [`Publisher::publish_all`].
    fn publish_all(
        &self,
        msgs: &[Message],
        opts: &PublishOptions,
    ) -> impl Future<Output = Result<PublishReport, Error>> + Send;

    /// Revokes `user`'s access to `groups`; see [`Publisher::revoke_with`]. The default refuses:
    /// an implementation that cannot revoke must never report that it did.
    fn revoke(
        &self,
        user: &str,
        groups: &[String],
        opts: &PublishOptions,
    ) -> impl Future<Output = Result<crate::RevokeReport, Error>> + Send {
        let _ = (user, groups, opts);
        async {
            Err(Error::Config(
                "revoke: this publisher does not implement revocation".into(),
            ))
        }
    }
}

/// Publishes messages to groups. Cheap to clone (one `Arc`); share one per process so that its
/// HTTP connections are reused.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) settings: Settings,
    /// The AppSync Events WebSocket connection, when that transport is configured.
    #[cfg(feature = "websocket")]
    ws: Option<crate::events_ws::EventsWs>,
}

/// Credentials or a token, fetched once per call and reused by every attempt of it.
#[derive(Clone)]
pub(crate) enum Resolved {
    Iam(Credentials),
    ApiKey(String),
    Token(String),
}

/// A complete HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// One HTTP request's worth of work, and the report slots it decides.
struct Unit {
    transport: Transport,
    url: reqwest::Url,
    body: Vec<u8>,
    /// Events units: where each event lies in `body`, so a retry can resend some of them.
    spans: Vec<std::ops::Range<usize>>,
    auth: Resolved,
    slots: Vec<usize>,
}

impl PublisherBuilder {
    /// Checks the configuration and builds the publisher.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Invalid`] naming what is missing or wrong.
    pub fn build(self) -> Result<Publisher, Error> {
        let (settings, http) = self.settings()?;
        for t in &settings.transports {
            check_authorizable(&settings, *t, None)?;
        }
        let http = match http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .user_agent(concat!("groupcast/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(settings.retry.attempt_timeout)
                .tcp_nodelay(true)
                .pool_max_idle_per_host(settings.concurrency.max(8))
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
        };
        #[cfg(feature = "websocket")]
        let ws = settings.events_ws.clone().map(|ep| {
            crate::events_ws::EventsWs::new(ep, settings.region.clone(), settings.concurrency)
        });
        Ok(Publisher {
            inner: Arc::new(Inner {
                http,
                settings,
                #[cfg(feature = "websocket")]
                ws,
            }),
        })
    }
}

impl PublisherBuilder {
    /// As [`Self::build`], but when the configuration needs IAM credentials and was given none
    /// (IoT is configured, or Events or GraphQL have no other authorizer), takes them from
    /// `aws-config`'s default chain, and its region when none was set. What
    /// [`Publisher::from_env`] does after reading the environment, for callers (the `groupcast`
    /// command line) that layer their own settings over it.
    ///
    /// # Errors
    /// As [`Self::build`], and [`Error::Credentials`] when the default chain has no provider.
    pub async fn build_with_default_credentials(mut self) -> Result<Publisher, Error> {
        if self.needs_default_credentials() {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let provider = config.credentials_provider().ok_or_else(|| {
                Error::Credentials("the default AWS credentials chain is empty".into())
            })?;
            self.iam = Some(crate::auth::IamAuth::new(provider));
            // The chain's region (e.g. from ~/.aws/config) when no variable named one.
            if self.region.is_none() {
                self.region = config.region().map(ToString::to_string);
            }
        }
        self.build()
    }
}

/// Fails unless requests of `t` can be authorized under `override_auth`.
fn check_authorizable(
    s: &Settings,
    t: Transport,
    override_auth: Option<&Authorizer>,
) -> Result<(), Error> {
    let needs_region = match t {
        Transport::Events | Transport::EventsWs | Transport::Graphql => {
            let a = override_auth.or(match t {
                Transport::Events | Transport::EventsWs => s.events_authorizer.as_ref(),
                _ => s.graphql_authorizer.as_ref(),
            });
            match a {
                None => {
                    return Err(Error::Config(format!(
                        "{t}: no authorizer: set one (builder .authorizer or .credentials, or GROUPCAST_AUTH)"
                    )));
                }
                Some(a) => matches!(a, Authorizer::Iam(_)),
            }
        }
        Transport::Iot => {
            if !matches!(override_auth, Some(Authorizer::Iam(_))) && s.iam.is_none() {
                return Err(Error::Config(
                    "iot: the IoT data plane needs IAM credentials (builder .credentials, or the default AWS chain via Publisher::from_env)".into(),
                ));
            }
            true
        }
    };
    if needs_region && s.region.is_none() {
        return Err(Error::Config(format!(
            "{t}: IAM signing needs a region: set GROUPCAST_REGION or AWS_REGION, or call .region()"
        )));
    }
    Ok(())
}

impl Publisher {
    /// Starts a configuration in code.
    pub fn builder() -> PublisherBuilder {
        PublisherBuilder::default()
    }

    /// Configures from `GROUPCAST_*` variables (and `GROUPCAST_OUTPUTS`), with IAM credentials
    /// from `aws-config`'s default chain when IAM is used (and its region, when no variable or
    /// outputs file gave one).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or malformed.
    pub async fn from_env() -> Result<Publisher, Error> {
        PublisherBuilder::default()
            .env()?
            .build_with_default_credentials()
            .await
    }

    /// The transports a call uses by default.
    pub fn transports(&self) -> &[Transport] {
        &self.inner.settings.transports
    }

    /// Publishes one message with the default options.
    ///
    /// # Errors
    /// As [`Self::publish_all`].
    pub async fn publish(&self, msg: &Message) -> Result<PublishReport, Error> {
        self.publish_all(std::slice::from_ref(msg), &PublishOptions::default())
            .await
    }

    /// Publishes `msgs` to all their groups over the chosen transports.
    ///
    /// Every (message, transport) is validated before anything is sent. Then each request is sent
    /// and retried (429, 5xx, network errors, timeouts) within the call's deadline.
    ///
    /// # Errors
    /// Only before anything is sent: [`Error::Invalid`] for input over a limit (the field names
    /// the message, e.g. `messages[2].data`), [`Error::Config`] for a transport or authorizer that
    /// is not configured, [`Error::Credentials`] when credentials or a token cannot be had.
    /// Everything after that is in the report, one entry per (message, group, transport).
    pub async fn publish_all(
        &self,
        msgs: &[Message],
        opts: &PublishOptions,
    ) -> Result<PublishReport, Error> {
        let start = Instant::now();
        let mut deadline = start + self.inner.settings.deadline;
        if let Some(until) = opts.deadline {
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            deadline = deadline.min(start + left);
        }
        let s = &self.inner.settings;
        let transports = match &opts.transports {
            Some(ts) if ts.is_empty() => {
                return Err(Error::invalid(
                    "transports",
                    "the list is empty; name at least one transport",
                ));
            }
            Some(ts) => crate::config::dedup(ts.clone()),
            None => s.transports.clone(),
        };
        crate::config::check_transport_set(&transports)?;
        for t in &transports {
            let configured = match t {
                Transport::Events => s.events.is_some(),
                Transport::EventsWs => s.events_ws.is_some(),
                Transport::Graphql => s.graphql.is_some(),
                Transport::Iot => s.iot.is_some(),
            };
            if !configured {
                return Err(Error::Config(format!(
                    "{t}: this publisher has no endpoint for it"
                )));
            }
            check_authorizable(s, *t, opts.authorizer.as_ref())?;
        }

        // Validate every (message, transport) before anything is sent.
        let envelopes: Vec<String> = msgs.iter().map(Message::envelope_json).collect();
        let mut segments: Vec<Vec<String>> = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            let field = format!("messages[{i}].data");
            let segs = msg
                .groups()
                .iter()
                .enumerate()
                .map(|(g, name)| {
                    group_segment(name).map_err(|e| {
                        Error::invalid(format!("messages[{i}].groups[{g}]"), e.to_string())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for t in &transports {
                match t {
                    Transport::Events | Transport::EventsWs => {
                        events::check_event(&field, &envelopes[i])?;
                        let ep = s.events.as_ref().expect("checked above");
                        if ep.epoch_seconds.is_some() {
                            events::check_epoch_topic(
                                &format!("messages[{i}].topic"),
                                msg.topic(),
                            )?;
                        }
                    }
                    Transport::Graphql => graphql::check(&field, msg)?,
                    Transport::Iot => {
                        let ep = s.iot.as_ref().expect("checked above");
                        for seg in &segs {
                            iot::check(
                                &field,
                                &iot::topic(&ep.topic_prefix, seg, msg.topic()),
                                envelopes[i].len(),
                            )?;
                        }
                    }
                }
            }
            segments.push(segs);
        }

        if msgs.is_empty() {
            return Ok(PublishReport::default());
        }

        // Resolve each transport's authorization once for the call.
        let mut auth: HashMap<Transport, Resolved> = HashMap::new();
        for t in &transports {
            let a = match t {
                Transport::Events | Transport::EventsWs => {
                    opts.authorizer.as_ref().or(s.events_authorizer.as_ref())
                }
                Transport::Graphql => opts.authorizer.as_ref().or(s.graphql_authorizer.as_ref()),
                Transport::Iot => None,
            };
            let resolved = match (t, a) {
                (Transport::Iot, _) => {
                    let iam = match &opts.authorizer {
                        Some(Authorizer::Iam(i)) => i,
                        _ => s.iam.as_ref().expect("checked above"),
                    };
                    Resolved::Iam(iam.credentials().await?)
                }
                (_, Some(a)) => resolve(a).await?,
                (_, None) => unreachable!("checked above"),
            };
            auth.insert(*t, resolved);
        }

        // The report's slots, in order: message, transport, group.
        let mut deliveries: Vec<Delivery> = Vec::new();
        let mut slot_of: HashMap<(usize, Transport, usize), usize> = HashMap::new();
        for (i, msg) in msgs.iter().enumerate() {
            for t in &transports {
                for (g, group) in msg.groups().iter().enumerate() {
                    slot_of.insert((i, *t, g), deliveries.len());
                    deliveries.push(Delivery {
                        message_id: msg.id(),
                        group: group.clone(),
                        transport: *t,
                        outcome: Outcome::Failed {
                            error: "no result was recorded".into(),
                            retryable: true,
                        },
                        attempts: 0,
                        channel: None,
                    });
                }
            }
        }

        // Build every request.
        let mut units: Vec<Unit> = Vec::new();
        for t in &transports {
            let a = auth[t].clone();
            match t {
                // The WebSocket transport sends the same batches; its `url` is what IAM signs.
                Transport::Events | Transport::EventsWs => {
                    let ep = s.events.as_ref().expect("checked above");
                    // One epoch for the whole call, from the publisher's clock: a retry resends
                    // the same bytes, and subscribers hold the previous epoch for a grace.
                    let epoch = ep
                        .epoch_seconds
                        .map(|p| crate::epoch::epoch_at(s.clock.unix_seconds(), p));
                    // Grouped by (segment, topic), which names the channel one to one (neither
                    // part holds a `/`): the channel text is built once per channel.
                    let mut order: Vec<(&str, &str)> = Vec::new();
                    let mut by_channel: HashMap<(&str, &str), Vec<(usize, &str)>> = HashMap::new();
                    for (i, msg) in msgs.iter().enumerate() {
                        for (g, seg) in segments[i].iter().enumerate() {
                            let key = (seg.as_str(), msg.topic());
                            let list = by_channel.entry(key).or_insert_with(|| {
                                order.push(key);
                                Vec::new()
                            });
                            list.push((slot_of[&(i, *t, g)], envelopes[i].as_str()));
                        }
                    }
                    for key in order {
                        let ch = events::epoch_channel(&ep.namespace, key.0, epoch, key.1);
                        for (slot, _) in &by_channel[&key] {
                            deliveries[*slot].channel = Some(ch.clone());
                        }
                        for b in events::batches(&ch, &by_channel[&key])? {
                            units.push(Unit {
                                transport: *t,
                                url: ep.url.clone(),
                                body: b.body,
                                spans: b.spans,
                                auth: a.clone(),
                                slots: b.keys,
                            });
                        }
                    }
                }
                Transport::Graphql => {
                    let url = s.graphql.as_ref().expect("checked above");
                    for (i, msg) in msgs.iter().enumerate() {
                        let slots = (0..msg.groups().len())
                            .map(|g| slot_of[&(i, *t, g)])
                            .collect();
                        units.push(Unit {
                            transport: *t,
                            url: url.clone(),
                            body: graphql::body(msg),
                            spans: Vec::new(),
                            auth: a.clone(),
                            slots,
                        });
                    }
                }
                Transport::Iot => {
                    let ep = s.iot.as_ref().expect("checked above");
                    for (i, msg) in msgs.iter().enumerate() {
                        for (g, seg) in segments[i].iter().enumerate() {
                            let topic = iot::topic(&ep.topic_prefix, seg, msg.topic());
                            units.push(Unit {
                                transport: *t,
                                url: parse_url(
                                    "iot.endpoint",
                                    &iot::publish_url(&ep.base, &topic),
                                )?,
                                body: envelopes[i].clone().into_bytes(),
                                spans: Vec::new(),
                                auth: a.clone(),
                                slots: vec![slot_of[&(i, *t, g)]],
                            });
                        }
                    }
                }
            }
        }

        let results: Vec<Vec<(usize, Outcome, u32)>> = futures::stream::iter(units)
            .map(|u| self.run_unit(u, deadline))
            .buffer_unordered(s.concurrency)
            .collect()
            .await;
        for (slot, outcome, attempts) in results.into_iter().flatten() {
            deliveries[slot].outcome = outcome;
            deliveries[slot].attempts = attempts;
        }
        Ok(PublishReport { deliveries })
    }

    /// Sends one request with retries and says what became of each of its slots, and after how
    /// many attempts. An Events request whose response fails some events with a transient code
    /// ([`retry::is_transient_code`]) is retried with only those events, byte for byte (so with
    /// their ids), within the same attempt budget and deadline.
    async fn run_unit(&self, u: Unit, deadline: Instant) -> Vec<(usize, Outcome, u32)> {
        let policy = &self.inner.settings.retry;
        let n = u.slots.len();
        let unit = &u;
        let results = retry::run_each(policy, deadline, n, |_, pending| {
            // Only an Events unit (one span per event) is ever retried in part.
            let body = if pending.len() == n || unit.spans.len() != n {
                std::borrow::Cow::Borrowed(unit.body.as_slice())
            } else {
                std::borrow::Cow::Owned(events::subset_body(&unit.body, &unit.spans, pending))
            };
            let count = pending.len();
            async move { self.attempt(unit, &body, count).await }
        })
        .await;
        let mut failed = 0usize;
        let out: Vec<(usize, Outcome, u32)> = u
            .slots
            .iter()
            .copied()
            .zip(results)
            .map(|(slot, (result, attempts))| {
                let outcome = match result {
                    Ok(outcome) => outcome,
                    Err(f) => {
                        if failed == 0 {
                            tracing::warn!(transport = %u.transport, attempts, error = %f.error, "publish failed");
                        }
                        failed += 1;
                        Outcome::Failed {
                            error: f.error,
                            retryable: f.retryable,
                        }
                    }
                };
                (slot, outcome, attempts)
            })
            .collect();
        if failed > 1 {
            tracing::warn!(transport = %u.transport, failed, of = n, "events of one request failed");
        }
        out
    }

    /// One attempt with `body` (all of the unit's events, or the `n` still pending): sign (when
    /// IAM), send, classify, parse. On success, one item per event or slot.
    async fn attempt(
        &self,
        u: &Unit,
        body: &[u8],
        n: usize,
    ) -> Result<Vec<Item<Outcome>>, AttemptError> {
        if u.transport == Transport::EventsWs {
            return self.attempt_ws(u, body, n).await;
        }
        let mut headers = HeaderMap::new();
        match (&u.auth, u.transport) {
            (Resolved::Iam(_), Transport::Events) => headers = events::iam_headers(),
            (Resolved::Iam(_), Transport::Graphql) => headers = graphql::iam_headers(),
            _ => {
                headers.insert("content-type", HeaderValue::from_static("application/json"));
            }
        }
        let service = if u.transport == Transport::Iot {
            IOT_DATA_SERVICE
        } else {
            APPSYNC_SERVICE
        };
        let Reply {
            status,
            body: response,
            ..
        } = self.post(&u.url, &u.auth, service, headers, body).await?;
        if !(200..300).contains(&status) {
            if u.transport == Transport::Graphql
                && !matches!(status, 401 | 403 | 429 | 500..=599)
                && let Some(errors) = graphql::errors_in(&response)
            {
                return Err(AttemptError::Fatal(Error::Graphql(errors)));
            }
            return Err(retry::classify_status(
                status,
                &String::from_utf8_lossy(&response),
            ));
        }
        match u.transport {
            Transport::Events | Transport::EventsWs => {
                let per_event =
                    events::parse_response(&response, n).map_err(AttemptError::Fatal)?;
                Ok(event_items(per_event))
            }
            Transport::Graphql => {
                let identifier = graphql::parse_response(&response).map_err(AttemptError::Fatal)?;
                Ok((0..n)
                    .map(|_| {
                        Item::Done(Outcome::Delivered {
                            identifier: identifier.clone(),
                        })
                    })
                    .collect())
            }
            Transport::Iot => Ok((0..n)
                .map(|_| Item::Done(Outcome::Delivered { identifier: None }))
                .collect()),
        }
    }

    /// One POST of `body` to `url` with `headers`, authorized by `auth` (IAM: SigV4 with signing
    /// name `service`, every header in `headers` signed). The one request path of publishing and
    /// revoking: a transport-level failure is retryable, any complete response is returned for
    /// the caller to classify.
    pub(crate) async fn post(
        &self,
        url: &reqwest::Url,
        auth: &Resolved,
        service: &str,
        mut headers: HeaderMap,
        body: &[u8],
    ) -> Result<Reply, AttemptError> {
        match auth {
            Resolved::Iam(creds) => {
                let region = self.inner.settings.region.as_deref().unwrap_or_default();
                SigV4 {
                    credentials: creds,
                    region,
                    service,
                }
                .sign("POST", url.as_str(), &mut headers, body, SystemTime::now())
                .map_err(AttemptError::Fatal)?;
            }
            Resolved::ApiKey(k) => {
                headers.insert("x-api-key", header_value("API key", k)?);
            }
            Resolved::Token(t) => {
                headers.insert("authorization", header_value("token", t)?);
            }
        }
        let response = self
            .inner
            .http
            .post(url.clone())
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| retry::classify_reqwest(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| retry::classify_reqwest(&e))?;
        Ok(Reply {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// One attempt over the WebSocket connection (made or remade as needed).
    #[cfg(feature = "websocket")]
    async fn attempt_ws(
        &self,
        u: &Unit,
        body: &[u8],
        n: usize,
    ) -> Result<Vec<Item<Outcome>>, AttemptError> {
        let ws = self.inner.ws.as_ref().ok_or_else(|| {
            AttemptError::Fatal(Error::Config(
                "events-ws: this publisher has no endpoint for it".into(),
            ))
        })?;
        Ok(event_items(ws.publish(&u.auth, body, n).await?))
    }

    #[cfg(not(feature = "websocket"))]
    async fn attempt_ws(
        &self,
        _u: &Unit,
        _body: &[u8],
        _n: usize,
    ) -> Result<Vec<Item<Outcome>>, AttemptError> {
        Err(AttemptError::Fatal(Error::Config(
            crate::config::NO_WEBSOCKET_FEATURE.into(),
        )))
    }
}

/// Credentials or a token for one call, from an authorizer.
pub(crate) async fn resolve(a: &Authorizer) -> Result<Resolved, Error> {
    Ok(match a {
        Authorizer::Iam(i) => Resolved::Iam(i.credentials().await?),
        Authorizer::ApiKey(k) => Resolved::ApiKey(k.clone()),
        Authorizer::Token(p) => Resolved::Token(p.token().await?),
    })
}

/// Per-event results of an Events publish (HTTP or WebSocket): a delivered event is done; a
/// failed one is retried alone when its code is transient ([`retry::is_transient_code`]), and
/// final otherwise: the service decided it. An event the response does not mention is final too:
/// it may have been delivered, and fail closed means it is reported failed, not sent twice.
fn event_items(per_event: Vec<Result<Option<String>, Error>>) -> Vec<Item<Outcome>> {
    per_event
        .into_iter()
        .map(|r| match r {
            Ok(identifier) => Item::Done(Outcome::Delivered { identifier }),
            Err(e) if transient_event_failure(&e) => Item::Retry(e.to_string()),
            Err(e) => Item::Done(Outcome::Failed {
                error: e.to_string(),
                retryable: false,
            }),
        })
        .collect()
}

/// Whether `e` is a failed entry whose code is transient.
fn transient_event_failure(e: &Error) -> bool {
    matches!(e, Error::EventFailed { code: Some(c), .. } if retry::is_transient_code(c))
}

fn header_value(what: &str, v: &str) -> Result<HeaderValue, AttemptError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        AttemptError::Fatal(Error::Config(format!(
            "the {what} is not a valid HTTP header value"
        )))
    })?;
    h.set_sensitive(true);
    Ok(h)
}

impl Publish for Publisher {
    fn publish_all(
        &self,
        msgs: &[Message],
        opts: &PublishOptions,
    ) -> impl Future<Output = Result<PublishReport, Error>> + Send {
        Publisher::publish_all(self, msgs, opts)
    }

    fn revoke(
        &self,
        user: &str,
        groups: &[String],
        opts: &PublishOptions,
    ) -> impl Future<Output = Result<crate::RevokeReport, Error>> + Send {
        Publisher::revoke_with(self, user, groups, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_is_cheap_to_share_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Publisher>();
        shareable::<PublishOptions>();
    }
}
