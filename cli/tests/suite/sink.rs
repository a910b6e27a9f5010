//! An HTTP sink that answers `POST /event` as AppSync Events does
//! (<https://docs.aws.amazon.com/appsync/latest/eventapi/publish-http.html>: a 200 whose body lists
//! each event under `successful` or `failed`, by `index`; a 401 with `errors` when the caller is not
//! authorized), and records every request so a test can check what was, or was not, sent.
//! For `revoke` it also answers AppSync GraphQL's `POST /graphql` with the `revoke` mutation's
//! result, or a GraphQL error (200 with `errors`, as AppSync answers a resolver or authorization
//! error: <https://docs.aws.amazon.com/appsync/latest/devguide/troubleshooting-and-common-mistakes.html>).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use serde_json::{Value, json};

/// How the sink answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Every event successful.
    AllOk,
    /// Events on channels with this segment failed (code 401, as a namespace handler refusing
    /// them), the others successful.
    FailSegment(&'static str),
    /// HTTP 401 for every request.
    Unauthorized,
    /// `POST /graphql`: the `revoke` mutation succeeds, echoing its `userId` and `groups`.
    GraphqlRevoked,
    /// `POST /graphql`: a GraphQL error, `data.revoke` null.
    GraphqlError,
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) api_key: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Value,
}

pub(crate) struct Sink {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _rt: tokio::runtime::Runtime,
}

impl Sink {
    pub(crate) fn start(mode: Mode) -> Sink {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = requests.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let log = log.clone();
                            async move { Ok::<_, Infallible>(answer(mode, req, &log).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Sink {
            url: format!("http://{addr}"),
            requests,
            _rt: rt,
        }
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The channels published to, sorted.
    pub(crate) fn channels(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .requests()
            .iter()
            .map(|r| r.body["channel"].as_str().unwrap_or_default().to_owned())
            .collect();
        c.sort();
        c
    }
}

async fn answer(
    mode: Mode,
    req: Request<hyper::body::Incoming>,
    log: &Mutex<Vec<Recorded>>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (api_key, authorization) = (header("x-api-key"), header("authorization"));
    let path = req.uri().path().to_owned();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log.lock().unwrap().push(Recorded {
        path: path.clone(),
        api_key,
        authorization,
        body: body.clone(),
    });
    let reply = |status: u16, v: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap()
    };
    if path == "/graphql" && matches!(mode, Mode::GraphqlRevoked | Mode::GraphqlError) {
        return match mode {
            Mode::GraphqlRevoked => reply(
                200,
                json!({"data": {"revoke": {
                    "userId": body["variables"]["userId"],
                    "groups": body["variables"]["groups"],
                }}}),
            ),
            _ => reply(
                200,
                json!({"data": {"revoke": null}, "errors": [{
                    "errorType": "Unauthorized",
                    "message": "Not Authorized to access revoke on type Mutation"
                }]}),
            ),
        };
    }
    if path != "/event" {
        return reply(
            404,
            json!({"errors": [{"errorType": "NotFound", "message": path}]}),
        );
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    let n = body["events"].as_array().map_or(0, Vec::len);
    match mode {
        Mode::Unauthorized => reply(
            401,
            json!({"errors": [{"errorType": "UnauthorizedException", "message": "You are not authorized to make this call."}]}),
        ),
        Mode::FailSegment(seg) if channel.split('/').any(|s| s == seg) => reply(
            200,
            json!({"successful": [], "failed": (0..n).map(|i| json!({
                "identifier": format!("f-{i}"), "index": i, "code": 401,
                "message": "Unauthorized: the handler refused this channel"
            })).collect::<Vec<_>>()}),
        ),
        _ => reply(
            200,
            json!({"failed": [], "successful": (0..n).map(|i| json!({
                "identifier": format!("{channel}#{i}"), "index": i
            })).collect::<Vec<_>>()}),
        ),
    }
}
