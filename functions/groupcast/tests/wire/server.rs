//! A small HTTP/1.1 server on 127.0.0.1 that records every request and answers as a test's
//! handler says: a status and body, a delay, or a reset connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Captured {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "as_text")]
    pub body: Vec<u8>,
    /// When the request was read.
    #[serde(skip)]
    pub at: std::time::Instant,
}

fn as_text<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(std::str::from_utf8(b).expect("test bodies are UTF-8"))
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status and JSON body.
    Json(u16, String),
    /// Status, extra headers and JSON body (e.g. Lambda's `X-Amz-Function-Error`).
    JsonWith(u16, Vec<(String, String)>, String),
    /// Close the connection with a TCP reset instead of answering.
    Reset,
    /// Wait, then answer.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok(body: serde_json::Value) -> Reply {
        Reply::Json(200, body.to_string())
    }
}

type Handler = dyn Fn(&Captured, usize) -> Reply + Send + Sync;

pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    requests: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts a server; `handler` gets each request and its number (0-based, over all connections).
    pub async fn start(
        handler: impl Fn(&Captured, usize) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, reqs.clone(), handler.clone()));
            }
        });
        Server {
            base,
            requests,
            task,
        }
    }

    /// A server answering every Events publish with one success per event.
    pub async fn events_ok() -> Server {
        Server::start(|req, n| Reply::ok(events_success(req, n))).await
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

/// `{"successful":[{"identifier":"r{n}-{i}","index":i}…],"failed":[]}` for an Events request.
pub fn events_success(req: &Captured, n: usize) -> serde_json::Value {
    let count = req.json()["events"].as_array().map_or(0, Vec::len);
    let ok: Vec<_> = (0..count)
        .map(|i| serde_json::json!({"identifier": format!("r{n}-{i}"), "index": i}))
        .collect();
    serde_json::json!({"successful": ok, "failed": []})
}

async fn serve(stream: TcpStream, requests: Arc<Mutex<Vec<Captured>>>, handler: Arc<Handler>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if stream.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').expect("header line");
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let req = Captured {
            method,
            target,
            headers,
            body,
            at: std::time::Instant::now(),
        };
        let n = {
            let mut r = requests.lock().unwrap();
            r.push(req.clone());
            r.len() - 1
        };
        let mut reply = handler(&req, n);
        while let Reply::After(d, next) = reply {
            tokio::time::sleep(d).await;
            reply = *next;
        }
        let reply = match reply {
            Reply::Json(status, body) => Reply::JsonWith(status, Vec::new(), body),
            other => other,
        };
        match reply {
            Reply::JsonWith(status, extra, body) => {
                let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n",
                    body.len()
                );
                let s = stream.get_mut();
                if s.write_all(head.as_bytes()).await.is_err()
                    || s.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
            Reply::Reset => {
                stream.get_ref().set_zero_linger().ok();
                return;
            }
            Reply::After(..) | Reply::Json(..) => unreachable!(),
        }
    }
}
