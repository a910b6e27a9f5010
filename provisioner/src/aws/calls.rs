//! What the operator sees of AWS calls while they run: [`CallLog`], the SDK interceptor every
//! client carries (one `-v` log line per call with operation, resource and duration; a line per
//! retry at any verbosity), and [`poll_line`], the progress of a long wait such as GraphQL
//! schema creation (one line updated in place on a terminal, a line per poll otherwise).

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// The interceptor that logs every call (added to each client in `sdk*.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallLog;

/// When the call started (kept in the call's config bag).
#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The resource the request names (the request itself is gone once sent).
#[derive(Debug, Clone)]
struct Resource(String);

impl Storable for Resource {
    type Storer = StoreReplace<Self>;
}

/// Why the last attempt failed, for the retry line.
#[derive(Debug, Clone)]
struct LastFailure(String);

impl Storable for LastFailure {
    type Storer = StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map_or_else(|| "(unknown operation)".to_owned(), |m| m.name().to_owned())
}

/// The resource a request names: the decoded URL path for REST services (AppSync, IoT, Lambda:
/// `/v2/apis/abc/channelNamespaces/live`), the name and ARN parameters of the form body for query
/// services (IAM, STS: `RoleName=acme-live-publisher`).
fn resource(req: &HttpRequest) -> String {
    let uri = req.uri();
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |i| &after_scheme[i..])
        .split('?')
        .next()
        .unwrap_or("/");
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    if path != "/" {
        return decode(path);
    }
    let body = req
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let named: Vec<String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.ends_with("Name") || k.ends_with("Arn"))
        .map(|(k, v)| format!("{k}={}", decode(v)))
        .collect();
    if named.is_empty() {
        "-".to_owned()
    } else {
        named.join(" ")
    }
}

/// An attempt's failure in a few words: the HTTP status and error type, or the transport cause.
fn failure(ctx: &FinalizerInterceptorContextRef<'_>) -> Option<String> {
    if let Some(resp) = ctx.response() {
        let status = resp.status().as_u16();
        if status < 400 {
            return None;
        }
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .map(|t| format!(" {}", t.split(':').next().unwrap_or(t)))
            .unwrap_or_default();
        return Some(format!("HTTP {status}{kind}"));
    }
    match ctx.output_or_error() {
        Some(Err(e)) if e.is_timeout_error() => Some("timed out".to_owned()),
        Some(Err(e)) if e.is_connector_error() => Some("could not connect".to_owned()),
        Some(Err(_)) => Some("failed".to_owned()),
        _ => None,
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "groupcast::CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(Resource(resource(context.request())));
        Ok(())
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let why = cfg
                .load::<LastFailure>()
                .map_or_else(|| "failed".to_owned(), |f| f.0.clone());
            // Retries (throttling, 5xx) can run for many seconds: say so at any verbosity.
            eprintln!(
                "retrying {} {} (attempt {attempt}; the last one: {why})",
                operation(cfg),
                resource(context.request())
            );
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(why) = failure(context) {
            cfg.interceptor_state().store_put(LastFailure(why));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let took = cfg
            .load::<Started>()
            .map_or(Duration::ZERO, |s| s.0.elapsed());
        let resource = cfg
            .load::<Resource>()
            .map_or_else(|| "-".to_owned(), |r| r.0.clone());
        let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let outcome = failure(context).unwrap_or_else(|| "ok".to_owned());
        tracing::info!(
            target: "provisioner::aws",
            "{} {resource}: {outcome} in {} ms{}",
            operation(cfg),
            took.as_millis(),
            if attempts > 1 {
                format!(" ({attempts} attempts)")
            } else {
                String::new()
            }
        );
        Ok(())
    }
}

/// Progress of a long wait: `what` is now `status` after `elapsed`. On a terminal the line is
/// rewritten in place (`done` ends it); elsewhere (CI logs) each poll is its own line.
pub(crate) fn poll_line(what: &str, status: &str, elapsed: Duration, done: bool) {
    let text = format!("{what}: {status} ({} s)", elapsed.as_secs());
    if std::io::stderr().is_terminal() {
        // \r and "erase line" (ESC [2K) rewrite the one progress line.
        eprint!("\r\u{1b}[2K{text}");
        if done {
            eprintln!();
        }
    } else {
        eprintln!("{text}");
    }
}
