//! Loads a rendered handler into QuickJS (rquickjs) and runs its `onSubscribe` / `onPublish`, bounded
//! in time, memory and stack.
//!
//! The handler is one ES module that imports `util` from `@aws-appsync/utils` and exports
//! `onPublish` and/or `onSubscribe` (writing-event-handlers.html). As the isolation harness does
//! (tests/harness/lib/handler.js), the import must appear exactly once in its documented form and is
//! removed; `util` is a global of the handler's realm, set up by `prelude.js`. The rest is evaluated
//! as a module (strict, as AppSync evaluates it), and its exports must be functions named
//! `onPublish` / `onSubscribe`.
//!
//! One handler keeps one realm across invocations, as the harness does; each invocation receives
//! the ctx as JSON text parsed inside the realm. AppSync stops a handler after 30 s
//! (https://docs.aws.amazon.com/general/latest/gr/appsync.html, Event API quotas); locally
//! [`Limits::time`] is far smaller, and a handler past it is interrupted (an exception it cannot
//! catch) and answered with [`Verdict::Error`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rquickjs::{Context, Ctx as JsCtx, Exception, Function, Module, Object, Runtime, Value};

use crate::ctx::{Ctx, Operation};
use crate::util;
use crate::verdict::{PublishVerdict, Verdict};

/// The one import a handler may have, exactly as AWS documents it (writing-event-handlers.html).
pub const UTIL_IMPORT: &str = "import { util } from '@aws-appsync/utils';";

const PRELUDE: &str = include_str!("prelude.js");

/// The global under which the prelude keeps the engine's handles (frozen, not writable, not
/// enumerable). Handles live in the realm, not in Rust, so a [`Handler`] holds no JavaScript value
/// and can be `Send`.
const ENGINE_KEY: &str = "__groupcast_appsync_js_engine";

/// How far one load or invocation may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time of one invocation (and of evaluating the module). Default 100 ms: the
    /// rendered handler takes tens of microseconds.
    pub time: Duration,
    /// Memory of the handler's runtime, prelude and module included. Default 32 MiB.
    pub memory_bytes: usize,
    /// The JavaScript stack. Default 256 KiB (QuickJS's own default).
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(100),
            memory_bytes: 32 << 20,
            stack_bytes: 256 << 10,
        }
    }
}

/// Why a handler could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The source does not import `util` exactly once as [`UTIL_IMPORT`].
    #[error("handler must import util exactly once as `{UTIL_IMPORT}` (found {found})")]
    Import {
        /// How many times the import appears.
        found: usize,
    },
    /// The module imports something besides `util`.
    #[error("handler imports something besides util: {0}")]
    OtherImport(String),
    /// The module does not compile.
    #[error("handler does not compile: {0}")]
    Syntax(String),
    /// Evaluating the module failed: its top-level code threw, ran out of time or memory, or it
    /// imports something besides `util`.
    #[error("handler module failed to evaluate: {0}")]
    Evaluation(String),
    /// The module exports something besides the functions `onPublish` / `onSubscribe`.
    #[error("handler exports {0}: only the functions onPublish and onSubscribe may be exported")]
    Export(String),
    /// The engine could not be set up.
    #[error("JavaScript engine: {0}")]
    Engine(String),
}

/// Where `util.time.nowEpochSeconds()` reads the time: the seconds since 1970-01-01T00:00:00Z
/// (https://docs.aws.amazon.com/appsync/latest/devguide/time-helpers-in-util-time-js.html). A handler
/// of a namespace with time-sliced channels (`groupcast::epoch`) admits epochs by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system clock, as AppSync reads its own. The default.
    #[default]
    System,
    /// A fixed moment in seconds since the Unix epoch: tests choose the server's time with it.
    Fixed(u64),
}

/// [`Clock`] in one atomic word, so the native `util.time` function and [`Handler::set_clock`]
/// share it without a lock: `u64::MAX` is [`Clock::System`].
#[derive(Debug)]
struct SharedClock(AtomicU64);

impl SharedClock {
    const SYSTEM: u64 = u64::MAX;

    fn set(&self, clock: Clock) {
        let word = match clock {
            Clock::System => Self::SYSTEM,
            Clock::Fixed(s) => s.min(Self::SYSTEM - 1),
        };
        self.0.store(word, Ordering::Relaxed);
    }

    fn now_epoch_seconds(&self) -> u64 {
        match self.0.load(Ordering::Relaxed) {
            Self::SYSTEM => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            fixed => fixed,
        }
    }
}

/// One invocation's verdict and the lines the handler logged (its reasons: the rendered handler
/// logs `groupcast: subscribe rejected: WHY` before `util.unauthorized()`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation<V> {
    /// What the handler decided.
    pub verdict: V,
    /// `console.log` / `console.error` lines, in order.
    pub logs: Vec<String>,
}

/// A loaded handler. `Send`, so one can sit behind a lock; invocations on one handler run one at
/// a time.
pub struct Handler {
    has_on_subscribe: bool,
    has_on_publish: bool,
    context: Context,
    deadline: Arc<Deadline>,
    limits: Limits,
    clock: Arc<SharedClock>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("has_on_subscribe", &self.has_on_subscribe)
            .field("has_on_publish", &self.has_on_publish)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a call returned, before it is read as a verdict.
enum Outcome {
    /// The function returned; its value as JSON text (`None`: `undefined`).
    Returned(Option<String>),
    /// `util.unauthorized()`.
    Unauthorized,
    /// `util.error(msg)`, any other exception, or a limit.
    Failed(String),
}

impl Handler {
    /// Loads a rendered handler with the default [`Limits`].
    pub fn load(source: &str) -> Result<Handler, LoadError> {
        Handler::load_with(source, Limits::default())
    }

    /// Loads a rendered handler.
    pub fn load_with(source: &str, limits: Limits) -> Result<Handler, LoadError> {
        let found = source.matches(UTIL_IMPORT).count();
        if found != 1 {
            return Err(LoadError::Import { found });
        }
        let body = source.replacen(UTIL_IMPORT, "", 1);

        let engine = |e: rquickjs::Error| LoadError::Engine(e.to_string());
        let runtime = Runtime::new().map_err(engine)?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        let deadline = Arc::new(Deadline::new());
        let watch = Arc::clone(&deadline);
        runtime.set_interrupt_handler(Some(Box::new(move || watch.expired())));
        let context = Context::full(&runtime).map_err(engine)?;
        let clock = Arc::new(SharedClock(AtomicU64::new(SharedClock::SYSTEM)));

        deadline.arm(limits.time);
        let loaded = context.with(|ctx| -> Result<_, LoadError> {
            let seal = install_prelude(&ctx, Arc::clone(&clock))
                .map_err(|e| LoadError::Engine(describe(&ctx, e)))?;
            // QuickJS resolves imports as it compiles; without a module loader, any import fails.
            let module = Module::declare(ctx.clone(), "handler.js", body).map_err(|e| {
                let message = describe(&ctx, e);
                if message.starts_with("could not load module") {
                    LoadError::OtherImport(message)
                } else {
                    LoadError::Syntax(message)
                }
            })?;
            let (module, promise) = module
                .eval()
                .map_err(|e| LoadError::Evaluation(describe(&ctx, e)))?;
            promise
                .finish::<()>()
                .map_err(|e| LoadError::Evaluation(describe(&ctx, e)))?;
            let namespace = module
                .namespace()
                .map_err(|e| LoadError::Evaluation(describe(&ctx, e)))?;
            let (mut on_subscribe, mut on_publish) = (None, None);
            for key in namespace.keys::<String>() {
                let key = key.map_err(|e| LoadError::Export(describe(&ctx, e)))?;
                let value: Value = namespace
                    .get(&key)
                    .map_err(|e| LoadError::Evaluation(describe(&ctx, e)))?;
                let Some(function) = value.as_function().cloned() else {
                    return Err(LoadError::Export(format!("{key} (not a function)")));
                };
                match key.as_str() {
                    "onSubscribe" => on_subscribe = Some(function),
                    "onPublish" => on_publish = Some(function),
                    _ => return Err(LoadError::Export(key)),
                }
            }
            let has = (on_subscribe.is_some(), on_publish.is_some());
            seal.call::<_, ()>((ENGINE_KEY, on_subscribe, on_publish))
                .map_err(|e| LoadError::Engine(describe(&ctx, e)))?;
            Ok(has)
        });
        let fired = deadline.disarm();
        let (has_on_subscribe, has_on_publish) = match loaded {
            Err(_) if fired => {
                return Err(LoadError::Evaluation(format!(
                    "ran longer than {:?}",
                    limits.time
                )));
            }
            other => other?,
        };
        Ok(Handler {
            has_on_subscribe,
            has_on_publish,
            context,
            deadline,
            limits,
            clock,
        })
    }

    /// Sets where `util.time.nowEpochSeconds()` reads the time from the next invocation on
    /// ([`Clock::System`] until then).
    pub fn set_clock(&self, clock: Clock) {
        self.clock.set(clock);
    }

    /// Whether the handler exports `onSubscribe` (without it, every subscribe is allowed).
    pub fn has_on_subscribe(&self) -> bool {
        self.has_on_subscribe
    }

    /// Whether the handler exports `onPublish` (without it, the events are broadcast as published).
    pub fn has_on_publish(&self) -> bool {
        self.has_on_publish
    }

    /// The limits this handler runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `onSubscribe`: the verdict only.
    pub fn on_subscribe(&self, ctx: &Ctx) -> Verdict {
        self.subscribe(ctx).verdict
    }

    /// Runs `onPublish`: the verdict only.
    pub fn on_publish(&self, ctx: &Ctx) -> PublishVerdict {
        self.publish(ctx).verdict
    }

    /// Runs `onSubscribe` with `ctx` (its operation is taken as `SUBSCRIBE` whatever it says).
    pub fn subscribe(&self, ctx: &Ctx) -> Invocation<Verdict> {
        let mut ctx_json = ctx.to_json();
        ctx_json["info"]["operation"] = serde_json::json!(Operation::Subscribe);
        let (outcome, logs) = match self.has_on_subscribe {
            false => (Outcome::Returned(None), vec![]),
            true => self.call("onSubscribe", &ctx_json.to_string()),
        };
        // AppSync ignores what onSubscribe returns (channel-namespace-handlers.html: it returns nothing).
        let verdict = match outcome {
            Outcome::Returned(_) => Verdict::Allowed,
            Outcome::Unauthorized => Verdict::Unauthorized,
            Outcome::Failed(message) => Verdict::Error(message),
        };
        Invocation { verdict, logs }
    }

    /// Runs `onPublish` with `ctx` (its operation is taken as `PUBLISH` whatever it says).
    pub fn publish(&self, ctx: &Ctx) -> Invocation<PublishVerdict> {
        let input = ctx.events.as_deref().unwrap_or_default();
        if !self.has_on_publish {
            // No onPublish: the events are broadcast as published (writing-event-handlers.html).
            let verdict = PublishVerdict::Events {
                broadcast: input.to_vec(),
                failed: vec![],
            };
            return Invocation {
                verdict,
                logs: vec![],
            };
        }
        let mut ctx_json = ctx.to_json();
        ctx_json["info"]["operation"] = serde_json::json!(Operation::Publish);
        let (outcome, logs) = self.call("onPublish", &ctx_json.to_string());
        let verdict = match outcome {
            Outcome::Returned(None) => PublishVerdict::from_returned(None, input),
            Outcome::Returned(Some(text)) => match serde_json::from_str::<serde_json::Value>(&text)
            {
                Ok(value) => PublishVerdict::from_returned(Some(&value), input),
                Err(e) => PublishVerdict::Error(format!(
                    "onPublish returned a value that is not JSON data ({e})"
                )),
            },
            Outcome::Unauthorized => PublishVerdict::Unauthorized,
            Outcome::Failed(message) => PublishVerdict::Error(message),
        };
        Invocation { verdict, logs }
    }

    /// Calls the handler's export `name` with the ctx given as JSON text, within the limits;
    /// collects the logged lines.
    fn call(&self, name: &str, ctx_json: &str) -> (Outcome, Vec<String>) {
        self.context.with(|ctx| {
            let private: Object = match ctx.globals().get(ENGINE_KEY) {
                Ok(p) => p,
                Err(e) => {
                    return (
                        Outcome::Failed(format!("engine: {}", describe(&ctx, e))),
                        vec![],
                    );
                }
            };
            self.deadline.arm(self.limits.time);
            let result = (|| -> rquickjs::Result<Option<String>> {
                let f: Function = private.get(name)?;
                let parse: Function = private.get("parseCtx")?;
                let stringify: Function = private.get("stringify")?;
                let arg: Value = parse.call((ctx_json,))?;
                let returned: Value = f.call((arg,))?;
                stringify.call((returned,))
            })();
            let fired = self.deadline.disarm();
            let outcome = match result {
                Ok(text) => Outcome::Returned(text),
                Err(e) => {
                    let thrown = if e.is_exception() {
                        Some(ctx.catch())
                    } else {
                        None
                    };
                    match thrown {
                        _ if fired => Outcome::Failed(format!(
                            "handler stopped: it ran longer than {:?}",
                            self.limits.time
                        )),
                        // QuickJS throws null when it cannot even allocate its out-of-memory error.
                        Some(thrown) if thrown.is_null() => Outcome::Failed(format!(
                            "handler stopped: out of memory (limit {} bytes), or it threw null",
                            self.limits.memory_bytes
                        )),
                        Some(thrown) => classify(&private, thrown),
                        None => Outcome::Failed(format!("handler failed: {e}")),
                    }
                }
            };
            let logs = private
                .get::<_, Function>("takeLogs")
                .and_then(|take| take.call::<_, Vec<String>>(()))
                .unwrap_or_default();
            if matches!(&outcome, Outcome::Failed(_)) {
                // Whatever a failed call left behind (cycles included) is freed before the next.
                // (Through `ctx`: the runtime's lock is held here.)
                ctx.run_gc();
            }
            (outcome, logs)
        })
    }
}

/// Reads a thrown value with the prelude's `classify`.
fn classify<'js>(private: &Object<'js>, thrown: Value<'js>) -> Outcome {
    let read = || -> rquickjs::Result<(String, String)> {
        let classify: Function = private.get("classify")?;
        let c: Object = classify.call((thrown,))?;
        Ok((c.get("kind")?, c.get("message")?))
    };
    match read() {
        Ok((kind, _)) if kind == "unauthorized" => Outcome::Unauthorized,
        Ok((_, message)) => Outcome::Failed(message),
        Err(e) => Outcome::Failed(format!(
            "handler failed with an error that cannot be read ({e})"
        )),
    }
}

/// Evaluates the prelude and hands it the Rust half of `util`; returns its `seal` function.
fn install_prelude<'js>(
    ctx: &JsCtx<'js>,
    clock: Arc<SharedClock>,
) -> rquickjs::Result<Function<'js>> {
    let native = Object::new(ctx.clone())?;
    // A JavaScript number: seconds since 1970 stay far below 2^53.
    native.set(
        "nowEpochSeconds",
        Function::new(ctx.clone(), move || clock.now_epoch_seconds() as f64)?,
    )?;
    native.set(
        "urlEncode",
        Function::new(ctx.clone(), |s: String| util::url_encode(&s))?,
    )?;
    native.set(
        "base64Encode",
        Function::new(ctx.clone(), |s: String| util::base64_encode(&s))?,
    )?;
    native.set(
        "urlDecode",
        Function::new(ctx.clone(), |ctx: JsCtx<'_>, s: String| {
            util::url_decode(&s).map_err(|m| Exception::throw_message(&ctx, &m))
        })?,
    )?;
    native.set(
        "base64Decode",
        Function::new(ctx.clone(), |ctx: JsCtx<'_>, s: String| {
            util::base64_decode(&s).map_err(|m| Exception::throw_message(&ctx, &m))
        })?,
    )?;
    let setup: Function = ctx.eval(PRELUDE)?;
    setup.call((native,))
}

/// A failed engine call as text: the pending exception's message when there is one.
fn describe(ctx: &JsCtx<'_>, e: rquickjs::Error) -> String {
    if !e.is_exception() {
        return e.to_string();
    }
    let thrown = ctx.catch();
    if let Some(exception) = thrown.as_exception() {
        let message = exception.message().unwrap_or_default();
        return match exception.stack() {
            Some(stack) if !stack.is_empty() => format!("{message}\n{stack}"),
            _ => message,
        };
    }
    thrown
        .as_string()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("a thrown {}", thrown.type_name()))
}

/// When the running invocation must stop: QuickJS polls [`Deadline::expired`] from its interrupt
/// handler while it executes code.
#[derive(Debug)]
struct Deadline {
    epoch: Instant,
    /// Nanoseconds after `epoch`; 0 when nothing runs.
    until: AtomicU64,
    fired: AtomicBool,
}

impl Deadline {
    fn new() -> Self {
        Deadline {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
            fired: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn arm(&self, budget: Duration) {
        let budget = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        self.fired.store(false, Ordering::Relaxed);
        self.until
            .store(self.now().saturating_add(budget).max(1), Ordering::Relaxed);
    }

    /// Stops watching; whether the deadline fired.
    fn disarm(&self) -> bool {
        self.until.store(0, Ordering::Relaxed);
        self.fired.swap(false, Ordering::Relaxed)
    }

    fn expired(&self) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        if until != 0 && self.now() > until {
            self.fired.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}
