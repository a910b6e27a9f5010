//! Real Lambda function binaries run locally under an emulated Lambda Runtime API
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): the stack starts the binary
//! with `AWS_LAMBDA_RUNTIME_API` pointing at a loopback HTTP server that hands out invocations on
//! `GET /2018-06-01/runtime/invocation/next` and collects `POST …/{id}/response` / `…/{id}/error`.
//! Used for the AppSync Lambda authorizer (functions/authorizer) and the IoT custom authorizer.
//!
//! ```no_run
//! # async fn f() -> Result<(), groupcast_dev::lambda_rt::InvokeError> {
//! use groupcast_dev::lambda_rt::LambdaFunction;
//! let f = LambdaFunction::start("target/debug/authorizer".as_ref(), &[]).await?;
//! let answer = f.invoke(serde_json::json!({"authorizationToken": "…"})).await?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// AppSync gives a Lambda authorizer 10 seconds
/// (https://docs.aws.amazon.com/appsync/latest/eventapi/configure-event-api-auth.html); the same
/// bound serves every invocation here.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response or error body read from the function (Lambda's synchronous payload
/// limit, 6 MB: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// Why an invocation has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The binary could not be started or the Runtime API could not listen.
    #[error("cannot start the function: {0}")]
    Start(String),
    /// The function reported an error (`{errorType, errorMessage}`), or failed to initialise.
    #[error("function error: {0}")]
    Function(Value),
    /// No answer within [`INVOKE_TIMEOUT`].
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

type Outcome = Result<Value, Value>;

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<Value>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    queued: Notify,
    arn: String,
}

/// A running function: its process and its Runtime API. Killed when dropped.
pub struct LambdaFunction {
    shared: Arc<Shared>,
    /// Owns the process: waits for it to exit (failing every pending invocation then), and kills
    /// it when aborted (`kill_on_drop`).
    watcher: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
    name: String,
}

impl std::fmt::Debug for LambdaFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaFunction")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        self.server.abort();
        self.watcher.abort();
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

async fn runtime_api(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if method == Method::GET && rest == "invocation/next" {
        loop {
            let notified = shared.queued.notified();
            let next = lock(&shared).queue.pop_front();
            if let Some((id, payload)) = next {
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
                    + INVOKE_TIMEOUT.as_millis();
                let mut r = reply(200, payload.to_string());
                let headers = r.headers_mut();
                for (k, v) in [
                    ("lambda-runtime-aws-request-id", id.as_str()),
                    ("lambda-runtime-deadline-ms", &deadline.to_string()),
                    ("lambda-runtime-invoked-function-arn", &shared.arn),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000;Sampled=0",
                    ),
                ] {
                    if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
                        headers.insert(k, v);
                    }
                }
                return r;
            }
            notified.await;
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(413, r#"{"errorMessage":"payload too large"}"#),
    };
    let parse = |b: &Bytes| {
        serde_json::from_slice::<Value>(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
    };
    if method == Method::POST && rest == "init/error" {
        let error = parse(&body);
        let mut state = lock(&shared);
        state.init_error = Some(error.clone());
        for (_, waiter) in state.waiting.drain() {
            let _ = waiter.send(Err(error.clone()));
        }
        return reply(202, r#"{"status":"OK"}"#);
    }
    let invocation = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.split_once('/'));
    if let (true, Some((id, kind))) = (method == Method::POST, invocation) {
        let outcome = match kind {
            "response" => Ok(parse(&body)),
            "error" => Err(parse(&body)),
            _ => return reply(404, r#"{"errorMessage":"unknown runtime API path"}"#),
        };
        if let Some(waiter) = lock(&shared).waiting.remove(id) {
            let _ = waiter.send(outcome);
        }
        return reply(202, r#"{"status":"OK"}"#);
    }
    reply(404, r#"{"errorMessage":"unknown runtime API path"}"#)
}

impl LambdaFunction {
    /// Starts `binary` with the Lambda environment (function name from the file name, region
    /// `us-east-1` unless `env` says otherwise) plus `env`, against a fresh Runtime API.
    pub async fn start(
        binary: &Path,
        env: &[(String, String)],
    ) -> Result<LambdaFunction, InvokeError> {
        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            queued: Notify::new(),
            arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        });
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| InvokeError::Start(format!("Runtime API listener: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| InvokeError::Start(format!("Runtime API address: {e}")))?;
        let s = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(runtime_api(s, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(InvokeError::Start(format!("{}: {e}", binary.display())));
            }
        };
        let s = shared.clone();
        let watcher = tokio::spawn(async move {
            let status = child.wait().await;
            // A function that exits (e.g. its configuration is refused before the runtime
            // starts) answers no more invocations: fail them now rather than at the timeout.
            let error = serde_json::json!({
                "errorType": "Runtime.ExitError",
                "errorMessage": format!("the function exited: {status:?}"),
            });
            tracing::warn!(%error, "Lambda function exited");
            let mut state = lock(&s);
            state.init_error.get_or_insert(error.clone());
            for (_, waiter) in state.waiting.drain() {
                let _ = waiter.send(Err(error.clone()));
            }
        });
        Ok(LambdaFunction {
            shared,
            watcher,
            server,
            name,
        })
    }

    /// Invokes the function with `payload` and waits for its answer (at most
    /// [`INVOKE_TIMEOUT`]). Invocations are served one at a time, in order, as Lambda does for
    /// one execution environment.
    pub async fn invoke(&self, payload: Value) -> Result<Value, InvokeError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = lock(&self.shared);
            if let Some(e) = &state.init_error {
                return Err(InvokeError::Function(e.clone()));
            }
            state.next_id += 1;
            let id = format!(
                "{:08x}-0000-4000-8000-{:012x}",
                std::process::id(),
                state.next_id
            );
            state.waiting.insert(id.clone(), tx);
            state.queue.push_back((id.clone(), payload));
            id
        };
        self.shared.queued.notify_waiters();
        let outcome = tokio::time::timeout(INVOKE_TIMEOUT, rx).await;
        let mut state = lock(&self.shared);
        state.waiting.remove(&id);
        state.queue.retain(|(q, _)| q != &id);
        drop(state);
        match outcome {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(InvokeError::Function(e)),
            Ok(Err(_)) => Err(InvokeError::Function(Value::String(
                "the function went away".into(),
            ))),
            Err(_) => Err(InvokeError::Timeout(INVOKE_TIMEOUT)),
        }
    }
}

/// A loopback HTTP server answering `GET {path}` with a fixed JSON document: the JWKS a
/// function binary fetches (plain HTTP on 127.0.0.1, which groupcast-auth's verifier trusts),
/// so it needs no trust in the stack's CA. Stops when dropped.
#[derive(Debug)]
pub struct JsonServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JsonServer {
    /// Serves `body` at `path` (e.g. `/jwks.json`).
    pub async fn start(path: &str, body: Value) -> std::io::Result<JsonServer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let body = Bytes::from(body.to_string());
        let path = path.to_owned();
        let url = format!("http://{addr}{path}");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (body, path) = (body.clone(), path.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let r = if req.method() == Method::GET && req.uri().path() == path {
                            reply(200, body.clone())
                        } else {
                            reply(404, r#"{"message":"not found"}"#)
                        };
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(JsonServer { url, task })
    }

    /// The document's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}
