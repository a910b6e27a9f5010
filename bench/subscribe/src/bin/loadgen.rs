//! The subscriber benchmark's load generator: a local AppSync Events realtime server (wss:// on
//! 127.0.0.1, the protocol of aws-protocols.md §2) for ONE client connection. It acks
//! `connection_init`, confirms every `subscribe`, and once `--subscriptions` are confirmed (and
//! a short quiet pause, so the client's measurement starts idle) sends `--messages` `data`
//! messages round-robin over the subscriptions, each a distinct groupcast envelope of about
//! `--bytes` payload. It then waits for the client to leave and exits.
//!
//! Prints `{"port": N}` on its first line. Usage:
//! `subscribe-loadgen --cert cert.pem --key key.pem --subscriptions 1000 --messages 300000 --bytes 100`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

struct Args {
    cert: String,
    key: String,
    subscriptions: usize,
    messages: usize,
    bytes: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        cert: String::new(),
        key: String::new(),
        subscriptions: 1000,
        messages: 300_000,
        bytes: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cert" => a.cert = value,
            "--key" => a.key = value,
            "--subscriptions" => a.subscriptions = value.parse()?,
            "--messages" => a.messages = value.parse()?,
            "--bytes" => a.bytes = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.cert.is_empty() || a.key.is_empty() {
        bail!("--cert and --key are required");
    }
    Ok(a)
}

// tungstenite's handshake callback returns its (large) ErrorResponse by value.
#[allow(clippy::result_large_err)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let certs = CertificateDer::pem_file_iter(&a.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&a.key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", json!({"port": listener.local_addr()?.port()}));

    let (tcp, _) = listener.accept().await?;
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await?;
    let ws = tokio_tungstenite::accept_hdr_async(tls, |_req: &Request, mut resp: Response| {
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("aws-appsync-event-ws"),
        );
        Ok(resp)
    })
    .await?;
    let (mut sink, mut stream) = ws.split();

    // Handshake and subscriptions.
    let mut ids: Vec<String> = Vec::with_capacity(a.subscriptions);
    while ids.len() < a.subscriptions {
        let Some(frame) = stream.next().await else {
            bail!("the client left after {} subscriptions", ids.len());
        };
        let Frame::Text(t) = frame? else { continue };
        let m: Value = serde_json::from_str(t.as_str())?;
        let reply = match m["type"].as_str() {
            Some("connection_init") => {
                json!({"type": "connection_ack", "connectionTimeoutMs": 300_000})
            }
            Some("subscribe") => {
                let id = m["id"].as_str().unwrap_or_default().to_owned();
                ids.push(id.clone());
                json!({"type": "subscribe_success", "id": id})
            }
            _ => continue,
        };
        sink.send(Frame::text(reply.to_string())).await?;
    }
    // The load: distinct envelopes, round-robin over the subscriptions, encoded as WebSocket
    // frames before the clock starts and written to the TLS stream in large chunks, so that the
    // generator writes faster than any client reads: every client then reads full buffers, and
    // its CPU time per message is its own cost, not the cost of waiting for small batches.
    // (Server frames are not masked: a text frame is 0x81, the length, the payload; RFC 6455 §5.2.)
    let pad = "x".repeat(a.bytes.saturating_sub(20));
    let mut wire: Vec<u8> = Vec::with_capacity(a.messages * (a.bytes + 200));
    for n in 0..a.messages {
        let k = n % ids.len();
        let envelope = json!({
            "id": uuid::Uuid::new_v4(),
            "topic": "bench",
            "data": {"n": n, "text": pad},
            "groups": [format!("g{k}")],
        })
        .to_string();
        let frame = json!({"type": "data", "id": ids[k], "event": envelope}).to_string();
        wire.push(0x81);
        match frame.len() {
            l if l < 126 => wire.push(l as u8),
            l if l <= 0xffff => {
                wire.push(126);
                wire.extend_from_slice(&(l as u16).to_be_bytes());
            }
            l => {
                wire.push(127);
                wire.extend_from_slice(&(l as u64).to_be_bytes());
            }
        }
        wire.extend_from_slice(frame.as_bytes());
    }
    sink.flush().await?;
    let mut ws = sink.reunite(stream).context("reunite")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    {
        let raw = ws.get_mut();
        for chunk in wire.chunks(256 * 1024) {
            raw.write_all(chunk).await?;
        }
        raw.flush().await?;
    }
    let (mut sink, mut stream) = ws.split();
    eprintln!(
        "loadgen: {} messages written in {:.2} s",
        a.messages,
        started.elapsed().as_secs_f64()
    );
    // Keep the connection (with keep-alives) until the client leaves.
    loop {
        tokio::select! {
            f = stream.next() => match f {
                None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep(Duration::from_secs(10)) => {
                if sink.send(Frame::text(r#"{"type":"ka"}"#)).await.is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}
