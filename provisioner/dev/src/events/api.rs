//! The Event API's rules, shared by the HTTP and WebSocket sides: who may connect, subscribe and
//! publish (the API's connection auth modes and each namespace's subscribe / publish modes, through
//! [`crate::auth::Authenticator`] only), what the namespace's rendered handler decides, and what is
//! broadcast. Every decision is logged ([`crate::log::DecisionLog`]).
//!
//! Errors are AppSync's `{errorType, message}` with the HTTP status the HTTP endpoint answers
//! with; the WebSocket side puts the same error into `subscribe_error` / `publish_error`
//! (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use groupcast::limits::{EVENT_MAX_BYTES, EVENTS_PER_PUBLISH};
use groupcast_appsync_js::{Ctx, Handler, IncomingEvent, PublishVerdict, Verdict};
use serde_json::{Value, json};

use super::channel::{self, Channel};
use super::hub::{Hub, Outgoing};
use crate::Stack;
use crate::auth::{AuthFailureKind, AuthRequest, Authenticated};
use crate::log::{Decision, Outcome};
use crate::system::AuthMode;

/// An error as AppSync answers it: HTTP status, `errorType`, `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (the WebSocket side ignores it).
    pub status: u16,
    /// AppSync's `errorType` (also the HTTP `x-amzn-errortype` header).
    pub error_type: &'static str,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// 400 `BadRequestException`: the request breaks a documented rule.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            error_type: "BadRequestException",
            message: message.into(),
        }
    }

    /// `{"errors":[{"errorType","message"}]}`.
    pub fn errors(&self) -> Value {
        json!([{"errorType": self.error_type, "message": self.message}])
    }
}

/// A caller's credentials as AppSync receives them: header names lower-case.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub headers: &'a BTreeMap<String, String>,
    pub source_ip: IpAddr,
}

/// One accepted publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// `{identifier, index}` of every event not failed by the handler.
    pub successful: Vec<(String, usize)>,
    /// `(identifier, index, message)` of events the handler returned with an `error` property.
    pub failed: Vec<(String, usize, String)>,
    /// `data` frames queued.
    pub delivered: usize,
}

impl Published {
    /// `successful` and `failed` as AppSync writes them. A failed entry carries both spellings
    /// AWS's own clients read (`code`/`message`: Amplify Android; `errorCode`/`errorMessage`:
    /// Amplify Swift — aws-protocols.md §1 "Response"; AWS documents neither).
    pub fn body(&self) -> (Value, Value) {
        let successful: Vec<Value> = self
            .successful
            .iter()
            .map(|(id, index)| json!({"identifier": id, "index": index}))
            .collect();
        let failed: Vec<Value> = self
            .failed
            .iter()
            .map(|(id, index, message)| {
                json!({"identifier": id, "index": index, "code": 400, "message": message,
                       "errorCode": 400, "errorMessage": message})
            })
            .collect();
        (Value::Array(successful), Value::Array(failed))
    }
}

/// A namespace's handler instances: QuickJS runtimes are `Send` but not `Sync`, so each sits
/// behind a lock and concurrent invocations take whichever instance is free.
struct Namespace {
    pool: Vec<Mutex<Handler>>,
    next: AtomicUsize,
    publish_modes: Vec<AuthMode>,
    subscribe_modes: Vec<AuthMode>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("handlers", &self.pool.len())
            .field("publish_modes", &self.publish_modes)
            .field("subscribe_modes", &self.subscribe_modes)
            .finish()
    }
}

impl Namespace {
    fn with_handler<R>(&self, f: impl FnOnce(&Handler) -> R) -> R {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(h) = self.pool[(start + i) % n].try_lock() {
                return f(&h);
            }
        }
        let h = self.pool[start]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&h)
    }
}

/// The Event API being served.
#[derive(Debug)]
pub struct Api {
    pub stack: Arc<Stack>,
    namespaces: HashMap<String, Namespace>,
    connection_modes: Vec<AuthMode>,
    /// The live subscriptions.
    pub hub: Hub,
}

/// The handler's reason for a refusal: its last log line (the rendered handler logs
/// `groupcast: subscribe rejected: WHY` before `util.unauthorized()`), else the verdict's message.
fn reason(logs: &[String], fallback: &str) -> String {
    logs.last().cloned().unwrap_or_else(|| fallback.to_owned())
}

impl Api {
    /// Loads every namespace's handler `instances` times.
    pub fn new(stack: Arc<Stack>, instances: usize) -> Result<Api, String> {
        let Some(events) = stack.system.events.clone() else {
            return Err("the system has no [events] API to serve".into());
        };
        let mut namespaces = HashMap::new();
        for ns in &events.namespaces {
            let mut pool = Vec::new();
            for _ in 0..instances.max(1) {
                let handler = Handler::load(&ns.handler_js)
                    .map_err(|e| format!("events namespace {}: {e}", ns.name))?;
                pool.push(Mutex::new(handler));
            }
            namespaces.insert(
                ns.name.clone(),
                Namespace {
                    pool,
                    next: AtomicUsize::new(0),
                    publish_modes: ns.publish_auth_modes.clone(),
                    subscribe_modes: ns.subscribe_auth_modes.clone(),
                },
            );
        }
        Ok(Api {
            stack,
            namespaces,
            connection_modes: events.connection_auth_modes,
            hub: Hub::default(),
        })
    }

    /// Logs one decision of this transport.
    pub fn decide(
        &self,
        action: &str,
        target: &str,
        principal: Option<&str>,
        outcome: Outcome,
        reason: Option<&str>,
    ) {
        self.stack.log.decision(Decision {
            transport: "events",
            action,
            target,
            principal,
            outcome,
            reason,
        });
    }

    /// Authenticates through the stack's one authenticator; a refusal is logged and answered
    /// 401 `UnauthorizedException`, or 403 `InvalidSignatureException` for a SigV4 signature that
    /// does not verify.
    #[allow(clippy::too_many_arguments)]
    async fn authenticate(
        &self,
        caller: Caller<'_>,
        body: &[u8],
        channel: Option<&str>,
        operation: &str,
        action: &str,
        target: &str,
        modes: &[AuthMode],
    ) -> Result<Authenticated, ApiError> {
        let req = AuthRequest {
            headers: caller.headers,
            method: "POST",
            path: "/event",
            body,
            source_ip: caller.source_ip,
            channel,
            operation: Some(operation),
        };
        self.stack
            .auth
            .authenticate(&req, modes)
            .await
            .map_err(|failure| {
                self.decide(
                    action,
                    target,
                    None,
                    Outcome::Refused,
                    Some(&failure.message),
                );
                // AppSync answers a missing, unparsable or invalid token with 401
                // `UnauthorizedException` (e.g. aws-amplify/amplify-js#4373, #2645) and a SigV4
                // signature that does not verify with 403 `InvalidSignatureException`
                // (aws-amplify/amplify-js#2422); neither body is documented.
                let sigv4 = caller
                    .headers
                    .get("authorization")
                    .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
                match failure.kind {
                    AuthFailureKind::Forbidden if sigv4 => ApiError {
                        status: 403,
                        error_type: "InvalidSignatureException",
                        message: failure.message,
                    },
                    AuthFailureKind::Unauthorized | AuthFailureKind::Forbidden => ApiError {
                        status: 401,
                        error_type: "UnauthorizedException",
                        message: failure.message,
                    },
                }
            })
    }

    /// A WebSocket connect: the `header-` auth object against the API's connection modes. The
    /// IAM signature covers `POST /event` with body `{}` (event-api-websocket-protocol.html,
    /// "IAM").
    pub async fn connect(&self, caller: Caller<'_>) -> Result<Authenticated, ApiError> {
        let who = self
            .authenticate(
                caller,
                b"{}",
                None,
                "EVENT_CONNECT",
                "connect",
                "/event/realtime",
                &self.connection_modes,
            )
            .await?;
        self.decide(
            "connect",
            "/event/realtime",
            Some(&who.principal),
            Outcome::Admitted,
            Some(who.mode.as_str()),
        );
        Ok(who)
    }

    fn namespace(&self, action: &str, channel: &Channel) -> Result<&Namespace, ApiError> {
        self.namespaces.get(&channel.namespace).ok_or_else(|| {
            let message = format!(
                "channel: namespace {:?} does not exist in this API",
                channel.namespace
            );
            self.decide(
                action,
                &channel.path,
                None,
                Outcome::Refused,
                Some(&message),
            );
            ApiError {
                status: 404,
                error_type: "NotFoundException",
                message,
            }
        })
    }

    /// A subscribe to `raw` (a `/*` wildcard allowed): the channel's rules, the namespace's
    /// subscribe modes, then `onSubscribe`. IAM signs `{"channel":"…"}`
    /// (event-api-websocket-protocol.html, "Subscribe").
    pub async fn subscribe(&self, caller: Caller<'_>, raw: &str) -> Result<Channel, ApiError> {
        let channel = channel::parse(raw, true).map_err(|message| {
            self.decide("subscribe", raw, None, Outcome::Refused, Some(&message));
            ApiError::bad_request(message)
        })?;
        let ns = self.namespace("subscribe", &channel)?;
        let body = json!({ "channel": raw }).to_string();
        let who = self
            .authenticate(
                caller,
                body.as_bytes(),
                Some(&channel.path),
                "EVENT_SUBSCRIBE",
                "subscribe",
                &channel.path,
                &ns.subscribe_modes,
            )
            .await?;
        let mut ctx = Ctx::subscribe(who.identity.clone(), channel.path.clone());
        ctx.headers = caller.headers.clone();
        let run = ns.with_handler(|h| h.subscribe(&ctx));
        match run.verdict.subscribe_error() {
            None => {
                self.decide(
                    "subscribe",
                    &channel.path,
                    Some(&who.principal),
                    Outcome::Admitted,
                    None,
                );
                Ok(channel)
            }
            Some(e) => {
                let why = match &run.verdict {
                    Verdict::Error(m) => m.clone(),
                    _ => reason(&run.logs, &e.message),
                };
                self.decide(
                    "subscribe",
                    &channel.path,
                    Some(&who.principal),
                    Outcome::Refused,
                    Some(&why),
                );
                Err(ApiError {
                    status: 401,
                    error_type: e.error_type,
                    message: e.message,
                })
            }
        }
    }

    /// A publish of `events` to `channel` (the request's fields, unchecked), with `signed` the
    /// bytes an IAM signature covers. Order: the channel, the namespace, the caller (the
    /// namespace's publish modes), the events (1 to 5 strings of JSON, each at most 240 KB:
    /// publish-http.html, https://docs.aws.amazon.com/general/latest/gr/appsync.html), then
    /// `onPublish`, whose returned events are broadcast.
    pub async fn publish(
        &self,
        caller: Caller<'_>,
        signed: &[u8],
        channel: Option<&Value>,
        events: Option<&Value>,
    ) -> Result<Published, ApiError> {
        let Some(raw) = channel.and_then(Value::as_str) else {
            let message = "channel: a string is required";
            self.decide("publish", "", None, Outcome::Refused, Some(message));
            return Err(ApiError::bad_request(message));
        };
        let channel = channel::parse(raw, false).map_err(|message| {
            self.decide("publish", raw, None, Outcome::Refused, Some(&message));
            ApiError::bad_request(message)
        })?;
        let ns = self.namespace("publish", &channel)?;
        let who = self
            .authenticate(
                caller,
                signed,
                Some(&channel.path),
                "EVENT_PUBLISH",
                "publish",
                &channel.path,
                &ns.publish_modes,
            )
            .await?;
        let input = parse_events(events).map_err(|message| {
            self.decide(
                "publish",
                &channel.path,
                Some(&who.principal),
                Outcome::Refused,
                Some(&message),
            );
            ApiError::bad_request(message)
        })?;
        let mut ctx = Ctx::publish(who.identity.clone(), channel.path.clone(), input.clone());
        ctx.headers = caller.headers.clone();
        let run = ns.with_handler(|h| h.publish(&ctx));
        if let Some((status, e)) = run.verdict.publish_error() {
            let why = match &run.verdict {
                PublishVerdict::Error(m) => m.clone(),
                _ => reason(&run.logs, &e.message),
            };
            self.decide(
                "publish",
                &channel.path,
                Some(&who.principal),
                Outcome::Refused,
                Some(&why),
            );
            return Err(ApiError {
                status,
                error_type: e.error_type,
                message: e.message,
            });
        }
        let PublishVerdict::Events { broadcast, failed } = run.verdict else {
            return Err(ApiError {
                status: 500,
                error_type: "InternalFailureException",
                message: "onPublish gave no verdict".into(),
            });
        };
        let index_of = |id: &str| input.iter().position(|e| e.id == id).unwrap_or(0);
        let outgoing: Vec<Outgoing> = broadcast
            .iter()
            .map(|e| Outgoing {
                event_json: Value::String(e.payload.to_string()).to_string(),
            })
            .collect();
        let delivered = self.hub.deliver(&channel.path, &outgoing);
        let failed: Vec<(String, usize, String)> = failed
            .into_iter()
            .map(|f| {
                let i = index_of(&f.id);
                (f.id, i, f.error)
            })
            .collect();
        let successful = input
            .iter()
            .enumerate()
            .filter(|(_, e)| !failed.iter().any(|f| f.0 == e.id))
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        let summary = format!(
            "{} event(s) broadcast, {delivered} data frame(s) queued",
            outgoing.len()
        );
        self.decide(
            "publish",
            &channel.path,
            Some(&who.principal),
            Outcome::Admitted,
            Some(&summary),
        );
        Ok(Published {
            successful,
            failed,
            delivered,
        })
    }
}

/// The published events: 1 to 5 strings, each valid JSON of at most 240 KB, each given a fresh
/// identifier.
fn parse_events(events: Option<&Value>) -> Result<Vec<IncomingEvent>, String> {
    let Some(Value::Array(items)) = events else {
        return Err(format!(
            "events: a list of 1 to {EVENTS_PER_PUBLISH} strings of JSON is required"
        ));
    };
    if items.is_empty() || items.len() > EVENTS_PER_PUBLISH {
        return Err(format!(
            "events: {} given, 1 to {EVENTS_PER_PUBLISH} are allowed",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::String(text) = item else {
                return Err(format!("events[{i}]: must be a string of JSON"));
            };
            if text.len() > EVENT_MAX_BYTES {
                return Err(format!(
                    "events[{i}]: {} bytes, an event is at most {EVENT_MAX_BYTES}",
                    text.len()
                ));
            }
            let payload: Value = serde_json::from_str(text)
                .map_err(|e| format!("events[{i}]: not valid JSON ({e})"))?;
            Ok(IncomingEvent {
                id: uuid::Uuid::new_v4().to_string(),
                payload,
            })
        })
        .collect()
}
