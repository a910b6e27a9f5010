//! `publish`: groupcast's [`Publisher`] publishing 5-event batches to a sink in a closed loop.
//!
//! Each of `--concurrency` tasks builds 5 fresh messages to one group, calls
//! [`Publisher::publish_all`] (one signed Events request, since the 5 share a channel), checks that
//! the report is complete, and starts again. Warm-up first, then the measured window.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use groupcast::{Authorizer, PublishOptions, Publisher};

use crate::drive::drive;
use crate::stats::Throughput;
use crate::workload::{SignedRequest, Workload, credentials, serialize_and_sign};

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    pub(crate) workload: Workload,
    /// The sink's publish URL, e.g. `http://127.0.0.1:8080/event`.
    #[arg(long)]
    pub(crate) url: String,
    /// Publish calls in flight at once (each is one request of 5 events).
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) warmup: f64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Who sends. `groupcast` is the benchmark; the others apportion its cost: `reqwest-signed`
    /// does only the per-request work (serialize + sign, as `sign` times it) and POSTs with a
    /// plain reqwest client; `reqwest-presigned` POSTs one request signed once (what wrk sends).
    #[arg(long, value_enum, default_value_t = Client::Groupcast)]
    pub(crate) client: Client,
}

/// Who sends the requests; see [`PublishArgs::client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Client {
    Groupcast,
    ReqwestSigned,
    ReqwestPresigned,
}

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::Groupcast => "groupcast",
            Client::ReqwestSigned => "reqwest + sign per request (no groupcast Publisher)",
            Client::ReqwestPresigned => "reqwest, one presigned request (no signing)",
        }
    }
}

/// The publisher under test: IAM with static credentials, the sink as Events endpoint.
pub(crate) fn publisher(
    url: &str,
    w: &Workload,
    concurrency: usize,
) -> Result<Publisher, groupcast::Error> {
    Publisher::builder()
        .events(url, w.namespace.as_str())
        .region(w.region.as_str())
        .authorizer(Authorizer::iam(credentials()))
        // Sizes the connection pool to the load (groupcast keeps max(concurrency, 8) idle).
        .concurrency(concurrency)
        .build()
}

/// One publish call of 5 fresh messages; the events the sink accepted, or why not.
pub(crate) async fn publish_once(p: &Publisher, w: &Workload) -> Result<u64, String> {
    let msgs = w.messages().map_err(|e| e.to_string())?;
    let report = p
        .publish_all(&msgs, &PublishOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(f) = report.failures().next() {
        return Err(format!("{:?}", f.outcome));
    }
    Ok(report.delivered().count() as u64)
}

/// One POST of a signed request with a plain reqwest client; the events the sink accepted.
async fn post(http: &reqwest::Client, url: &str, r: SignedRequest) -> Result<u64, String> {
    let response = http
        .post(url)
        .headers(r.headers)
        .body(r.body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    match v["successful"].as_array() {
        Some(ok) if status.is_success() => Ok(ok.len() as u64),
        _ => Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// Warm-up, then the measured run, of `once` on `rt`.
fn measure<F, Fut>(
    rt: &tokio::runtime::Runtime,
    args: &PublishArgs,
    once: F,
) -> (Throughput, Option<String>)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let (_, warm_err) = rt.block_on(drive(
        args.concurrency,
        Duration::from_secs_f64(args.warmup),
        once.clone(),
    ));
    let (t, err) = rt.block_on(drive(
        args.concurrency,
        Duration::from_secs_f64(args.duration),
        once,
    ));
    (t, err.or(warm_err))
}

pub(crate) fn run(args: &PublishArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    let w = Arc::new(args.workload.clone());
    let (t, err) = match args.client {
        Client::Groupcast => {
            let p = publisher(&args.url, &w, args.concurrency)?;
            measure(&rt, args, move || {
                let (p, w) = (p.clone(), w.clone());
                async move { publish_once(&p, &w).await }
            })
        }
        Client::ReqwestSigned | Client::ReqwestPresigned => {
            // Configured as groupcast configures its own client.
            let http = reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(args.concurrency)
                .build()?;
            let url: Arc<str> = args.url.as_str().into();
            let channel: Arc<str> = w.channel()?.into();
            let presigned = Arc::new(serialize_and_sign(
                &url,
                &channel,
                &w.messages()?,
                &credentials(),
                &w.region,
            )?);
            let signed = args.client == Client::ReqwestSigned;
            measure(&rt, args, move || {
                let (http, url, channel, w, presigned) = (
                    http.clone(),
                    url.clone(),
                    channel.clone(),
                    w.clone(),
                    presigned.clone(),
                );
                async move {
                    let r = if signed {
                        let msgs = w.messages().map_err(|e| e.to_string())?;
                        serialize_and_sign(&url, &channel, &msgs, &credentials(), &w.region)
                            .map_err(|e| e.to_string())?
                    } else {
                        SignedRequest {
                            body: presigned.body.clone(),
                            headers: presigned.headers.clone(),
                        }
                    };
                    post(&http, &url, r).await
                }
            })
        }
    };
    let out = serde_json::json!({
        "publisher": args.client.label(),
        "concurrency": args.concurrency,
        "threads": args.threads,
        "duration_s": t.elapsed.as_secs_f64(),
        "requests": t.requests,
        "events": t.events,
        "errors": t.errors,
        "first_error": err,
        "requests_per_s": t.requests_per_s().round() as u64,
        "events_per_s": t.events_per_s().round() as u64,
    });
    println!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::events_body;
    use groupcast::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const ACCEPTED: &str = r#"{"failed":[],"successful":[{"identifier":"a","index":0},{"identifier":"b","index":1},{"identifier":"c","index":2},{"identifier":"d","index":3},{"identifier":"e","index":4}]}"#;

    /// Accepts one HTTP/1.1 request on 127.0.0.1, answers `ACCEPTED`, returns (head, body).
    async fn capture_one(listener: TcpListener) -> (String, Vec<u8>) {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body_start) = loop {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the request ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8(buf[..i].to_vec()).unwrap(), i + 4);
            }
        };
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a content-length header");
        while buf.len() < body_start + len {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed inside the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ACCEPTED}",
            ACCEPTED.len()
        );
        sock.write_all(reply.as_bytes()).await.unwrap();
        (head, buf[body_start..body_start + len].to_vec())
    }

    fn workload() -> Workload {
        Workload {
            data_bytes: 20,
            namespace: "bench".into(),
            group: "readers".into(),
            topic: "load/test".into(),
            region: "us-east-1".into(),
        }
    }

    // The `sign` benchmark and the wrk script rebuild groupcast's request: this checks that they
    // build the very body and signed header set the publisher sends.
    #[tokio::test]
    async fn the_benchmarked_request_is_the_one_the_publisher_sends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/event", listener.local_addr().unwrap());
        let server = tokio::spawn(capture_one(listener));
        let w = workload();
        let msgs: Vec<Message> = w.messages().unwrap();
        let p = publisher(&url, &w, 4).unwrap();
        let report = tokio::time::timeout(
            Duration::from_secs(10),
            p.publish_all(&msgs, &PublishOptions::default()),
        )
        .await
        .expect("publish within 10 s")
        .unwrap();
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.delivered().count(), 5);
        let (head, body) = server.await.unwrap();

        let envelopes: Vec<String> = msgs.iter().map(Message::envelope_json).collect();
        let channel = w.channel().unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            String::from_utf8(events_body(&channel, &envelopes)).unwrap()
        );
        let ours = serialize_and_sign(&url, &channel, &msgs, &credentials(), &w.region).unwrap();
        let signed_headers = |auth: &str| {
            auth.split("SignedHeaders=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_owned()
        };
        let sent_auth = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("authorization: ")
                    .or_else(|| l.strip_prefix("Authorization: "))
            })
            .expect("an authorization header");
        assert_eq!(
            signed_headers(sent_auth),
            signed_headers(ours.headers["authorization"].to_str().unwrap())
        );
        for name in ["accept", "content-encoding", "content-type"] {
            let sent = head
                .lines()
                .find_map(|l| {
                    l.split_once(": ")
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
                .unwrap_or_else(|| panic!("the publisher sent no {name} header"));
            assert_eq!(sent, ours.headers[name].to_str().unwrap(), "{name}");
        }
    }

    #[tokio::test]
    async fn post_sends_the_signed_request_and_counts_accepted_events() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/event", listener.local_addr().unwrap());
        let server = tokio::spawn(capture_one(listener));
        let w = workload();
        let r = serialize_and_sign(
            &url,
            &w.channel().unwrap(),
            &w.messages().unwrap(),
            &credentials(),
            &w.region,
        )
        .unwrap();
        let body = r.body.clone();
        let n = tokio::time::timeout(
            Duration::from_secs(10),
            post(&reqwest::Client::new(), &url, r),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 5);
        let (head, sent) = server.await.unwrap();
        assert_eq!(sent, body);
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: aws4-hmac-sha256 credential=akidexample/"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn publish_once_counts_the_events_the_sink_accepted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/event", listener.local_addr().unwrap());
        let server = tokio::spawn(capture_one(listener));
        let w = workload();
        let p = publisher(&url, &w, 4).unwrap();
        let n = tokio::time::timeout(Duration::from_secs(10), publish_once(&p, &w))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 5);
        server.await.unwrap();
    }
}
