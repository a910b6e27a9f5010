//! Test peers shared by groupcast-auth and the Lambda functions' tests (included by `#[path]`):
//!
//! - [`Http`]: a local HTTP server on 127.0.0.1 (free port) over a closure: the JWKS endpoint,
//!   the Events sink.
//! - [`TestKey`]: RS256 / ES256 keys generated per test run, their JWKS and token minting.
//! - [`RuntimeApi`]: an emulation of the Lambda Runtime API (`/2018-06-01/runtime/...`) that hands
//!   out invocations and collects responses and errors, and [`spawn_function`] to run a real
//!   function binary against it.
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------------------------
// HTTP server

/// One request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub type Reply = Response<Full<Bytes>>;
type BoxFut = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// A local HTTP/1.1 server; stops when dropped.
pub struct Http {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Http {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

impl Http {
    /// Serves `handler` on 127.0.0.1 at a free port.
    pub async fn serve<F, Fut>(handler: F) -> Http
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Arc<dyn Fn(Req) -> BoxFut + Send + Sync> =
            Arc::new(move |r| Box::pin(handler(r)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|c| c.to_bytes())
                                    .unwrap_or_default();
                                let req = Req {
                                    method: parts.method,
                                    path: parts
                                        .uri
                                        .path_and_query()
                                        .map(|p| p.to_string())
                                        .unwrap_or_default(),
                                    headers: parts.headers,
                                    body,
                                };
                                Ok::<_, Infallible>(handler(req).await)
                            }
                        });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Http { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, JWKS, tokens

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A signing key generated for this test run.
pub struct TestKey {
    pub kid: String,
    pub alg: jsonwebtoken::Algorithm,
    pub encoding: jsonwebtoken::EncodingKey,
    /// The public key as SPKI PEM (what an attacker would use as an HMAC secret).
    pub public_pem: String,
}

impl TestKey {
    pub fn rs256(kid: &str) -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let private = pem(
            "PRIVATE KEY",
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .unwrap()
                .as_ref(),
        );
        let public =
            AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).unwrap();
        TestKey {
            kid: kid.into(),
            alg: jsonwebtoken::Algorithm::RS256,
            encoding: jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    pub fn es256(kid: &str) -> TestKey {
        let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(alg).unwrap();
        let private = pem("PRIVATE KEY", pair.to_pkcs8v1().unwrap().as_ref());
        let public =
            AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).unwrap();
        TestKey {
            kid: kid.into(),
            alg: jsonwebtoken::Algorithm::ES256,
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    /// The public JWK, as an issuer publishes it.
    pub fn jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(
            jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding, self.alg).unwrap(),
        )
        .unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// A token signed by this key with `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// `{"keys": [...]}` for `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// Claims of a valid Cognito ID token for `issuer`, client `aud`, in `groups`, valid 1 h.
pub fn id_claims(issuer: &str, aud: &str, groups: &[&str]) -> Value {
    let now = now_secs();
    json!({
        "sub": "5f1c2e7a-user", "iss": issuer, "aud": aud, "token_use": "id",
        "cognito:groups": groups, "iat": now, "auth_time": now, "exp": now + 3600,
    })
}

/// A JWKS endpoint serving whatever is in `keys` now, counting fetches.
pub struct JwksServer {
    pub http: Http,
    pub keys: Arc<Mutex<Value>>,
    pub hits: Arc<Mutex<u32>>,
}

impl JwksServer {
    pub async fn start(initial: Value) -> JwksServer {
        let keys = Arc::new(Mutex::new(initial));
        let hits = Arc::new(Mutex::new(0));
        let (k, h) = (keys.clone(), hits.clone());
        let http = Http::serve(move |req: Req| {
            let (k, h) = (k.clone(), h.clone());
            async move {
                if req.path != "/.well-known/jwks.json" {
                    return reply(404, "{}");
                }
                *h.lock().unwrap() += 1;
                let body = k.lock().unwrap().to_string();
                reply(200, body)
            }
        })
        .await;
        JwksServer { http, keys, hits }
    }

    /// The issuer URL whose default JWKS URL is this server.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.http.addr)
    }

    pub fn hits(&self) -> u32 {
        *self.hits.lock().unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Lambda Runtime API emulation

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct RuntimeState {
    queue: VecDeque<(String, Value)>,
    outcomes: HashMap<String, (Outcome, Instant)>,
    init_error: Option<Value>,
    next_id: u64,
}

/// The emulated Runtime API. Invocations queued with [`RuntimeApi::invoke`] are handed out on
/// `GET /2018-06-01/runtime/invocation/next` (long-poll); `POST .../{id}/response` and
/// `.../{id}/error` are collected.
pub struct RuntimeApi {
    pub http: Http,
    state: Arc<Mutex<RuntimeState>>,
    changed: Arc<Notify>,
    pub function_arn: String,
}

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:groupcast-test";

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let state = Arc::new(Mutex::new(RuntimeState::default()));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let http = Http::serve(move |req: Req| {
            let (s, c) = (s.clone(), c.clone());
            async move { handle_runtime(req, s, c).await }
        })
        .await;
        RuntimeApi {
            http,
            state,
            changed,
            function_arn: ARN.into(),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.http.addr.to_string()
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, payload: Value) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = format!("req-{:04}-0000-4000-8000-000000000000", s.next_id);
        s.queue.push_back((id.clone(), payload));
        drop(s);
        self.changed.notify_waiters();
        id
    }

    /// Waits for the outcome of `id` (and when it arrived), up to `timeout`.
    pub async fn outcome_at(&self, id: &str, timeout: Duration) -> (Outcome, Instant) {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let s = self.state.lock().unwrap();
                if let Some(o) = s.outcomes.get(id) {
                    return o.clone();
                }
                if let Some(e) = &s.init_error {
                    panic!("the function failed to initialise: {e}");
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no response for invocation {id} within {timeout:?}"
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    pub async fn outcome(&self, id: &str) -> Outcome {
        self.outcome_at(id, Duration::from_secs(30)).await.0
    }

    /// Invokes and waits for a successful response body.
    pub async fn call(&self, payload: Value) -> Value {
        let id = self.invoke(payload);
        match self.outcome(&id).await {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!("invocation {id} failed: {e}"),
        }
    }
}

async fn handle_runtime(req: Req, state: Arc<Mutex<RuntimeState>>, changed: Arc<Notify>) -> Reply {
    let path = req.path.clone();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if req.method == Method::GET && rest == "invocation/next" {
        loop {
            let notified = changed.notified();
            if let Some((id, payload)) = state.lock().unwrap().queue.pop_front() {
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                return Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .header("lambda-runtime-aws-request-id", &id)
                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                    .header("lambda-runtime-invoked-function-arn", ARN)
                    .header("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
                    .body(Full::new(Bytes::from(payload.to_string())))
                    .unwrap();
            }
            notified.await;
        }
    }
    let parse = |b: &Bytes| {
        serde_json::from_slice::<Value>(b).unwrap_or_else(|_| json!(String::from_utf8_lossy(b)))
    };
    if req.method == Method::POST && rest == "init/error" {
        state.lock().unwrap().init_error = Some(parse(&req.body));
        changed.notify_waiters();
        return reply(202, r#"{"status":"OK"}"#);
    }
    let invocation = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.split_once('/'));
    if let (true, Some((id, kind))) = (req.method == Method::POST, invocation) {
        let outcome = match kind {
            "response" => Outcome::Response(parse(&req.body)),
            // The body is `{"errorType", "errorMessage"}` (the header only says "unhandled").
            "error" => Outcome::Error(parse(&req.body)),
            _ => return reply(404, "{}"),
        };
        state
            .lock()
            .unwrap()
            .outcomes
            .insert(id.to_owned(), (outcome, Instant::now()));
        changed.notify_waiters();
        return reply(202, r#"{"status":"OK"}"#);
    }
    reply(404, r#"{"errorMessage":"unknown runtime API path"}"#)
}

/// Starts a function binary against `runtime` with the usual Lambda environment plus `env`.
/// The child is killed when the returned handle drops.
pub fn spawn_function(
    binary: &str,
    runtime: &RuntimeApi,
    env: &[(&str, String)],
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "groupcast-test")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/groupcast-test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0000")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"))
}
