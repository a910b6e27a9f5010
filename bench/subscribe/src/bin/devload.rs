//! The load client of the local-stack benchmark (bench/dev/run.sh, BENCHMARKS.md "The local
//! stack"): `--subscribers` separate connections made with groupcast's own subscribers (Events,
//! GraphQL; one connection each, each user in several groups), and groupcast's own `Publisher`
//! over the same transport (SigV4 with the stack's local key pair), publishing one message per
//! group with a timestamp in its payload. Per phase it prints one JSON line: messages published,
//! deliveries received, deliveries per second and the publish-to-receive latency p50/p99.
//!
//! Phases, alternating for `--rounds` rounds on the same connections: `paced` (a fixed
//! `--rate` of messages per second) and `flat` (as fast as the publisher goes, `--concurrency`
//! publishes in flight). A phase lasts `--seconds`, then waits up to 2 s for the stragglers.
//!
//! Usage: `dev-load --transport events|graphql --outputs OUTPUTS.json --credentials
//! credentials.json --tokens TOKENS --subscribers 1000 --rounds 5 --seconds 5 --rate 100`
//! where TOKENS has one line per user: `USER GROUP1,GROUP2,… TOKEN` (from `provisioner dev
//! token`); subscriber k is user k mod users. Trusts the stack's CA through `SSL_CERT_FILE`.
//! `--api-key KEY` instead of `--credentials` publishes with an API key (the Node fixture, which
//! checks no SigV4).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use groupcast::StaticToken;
use groupcast::subscribe::SubscriptionEvent;
use groupcast::subscribe::events::EventsSubscriber;
use groupcast::subscribe::graphql::GraphqlSubscriber;
use groupcast::{Authorizer, Message, Outputs, Publisher, Transport};
use serde_json::json;
use std::sync::Mutex;

/// Microseconds since the Unix epoch: the payload's timestamp, read by the receiver in the same
/// process (one clock, so no skew).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

struct Args {
    transport: String,
    outputs: String,
    credentials: String,
    tokens: String,
    subscribers: usize,
    rounds: usize,
    seconds: f64,
    rate: f64,
    concurrency: usize,
    /// Publish with this API key instead of SigV4 (the Node fixture checks no SigV4).
    api_key: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        transport: "events".into(),
        outputs: String::new(),
        credentials: String::new(),
        tokens: String::new(),
        subscribers: 1000,
        rounds: 5,
        seconds: 5.0,
        rate: 100.0,
        concurrency: 16,
        api_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--transport" => a.transport = v,
            "--outputs" => a.outputs = v,
            "--credentials" => a.credentials = v,
            "--tokens" => a.tokens = v,
            "--subscribers" => a.subscribers = v.parse()?,
            "--rounds" => a.rounds = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--rate" => a.rate = v.parse()?,
            "--concurrency" => a.concurrency = v.parse()?,
            "--api-key" => a.api_key = Some(v),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// What every subscriber task adds to: deliveries and their latencies (µs) in the current phase.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    latencies: Mutex<Vec<u32>>,
    /// When the last delivery arrived (µs since the epoch).
    last_us: AtomicU64,
}

struct User {
    groups: Vec<String>,
    token: String,
}

fn users(path: &str) -> anyhow::Result<Vec<User>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--tokens {path}"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_whitespace();
        let (_user, groups, token) = (f.next(), f.next(), f.next());
        let (Some(groups), Some(token)) = (groups, token) else {
            bail!("--tokens: a line is not `USER GROUPS TOKEN`");
        };
        out.push(User {
            groups: groups.split(',').map(str::to_owned).collect(),
            token: token.to_owned(),
        });
    }
    if out.is_empty() {
        bail!("--tokens: no users");
    }
    Ok(out)
}

/// Waits for `Active`, then counts every message into `tally` until the stream ends.
async fn drain(
    mut sub: groupcast::subscribe::Subscription,
    tally: Arc<Tally>,
    ready: tokio::sync::mpsc::Sender<anyhow::Result<()>>,
) {
    let mut ready = Some(ready);
    let mut batch: Vec<u32> = Vec::with_capacity(256);
    while let Some(ev) = sub.next_event().await {
        match ev {
            SubscriptionEvent::Active => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(())).await;
                }
            }
            SubscriptionEvent::Message(m) => {
                let t = m.envelope.data["t"].as_u64().unwrap_or(0);
                let lat = now_us().saturating_sub(t).min(u64::from(u32::MAX)) as u32;
                tally.received.fetch_add(1, Ordering::Relaxed);
                batch.push(lat);
                tally.last_us.fetch_max(now_us(), Ordering::Relaxed);
            }
            SubscriptionEvent::PartEnded { part, error } => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(anyhow::anyhow!("{part}: {error}"))).await;
                }
            }
            _ => {}
        }
        // Hand partial batches over at once: a phase's end must see every latency.
        if !batch.is_empty() {
            tally
                .latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&mut batch);
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let outputs: Outputs = serde_json::from_str(
        &std::fs::read_to_string(&a.outputs).with_context(|| format!("--outputs {}", a.outputs))?,
    )
    .context("--outputs: not the outputs JSON")?;
    let publish_auth = match &a.api_key {
        Some(key) => Authorizer::api_key(key.clone()),
        None => {
            let creds: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&a.credentials)
                    .with_context(|| format!("--credentials {}", a.credentials))?,
            )?;
            Authorizer::iam(Credentials::new(
                creds["access_key_id"]
                    .as_str()
                    .context("credentials: access_key_id")?,
                creds["secret_access_key"]
                    .as_str()
                    .context("credentials: secret_access_key")?,
                None,
                None,
                "groupcast-dev",
            ))
        }
    };
    let users = users(&a.tokens)?;
    let tally = Arc::new(Tally::default());

    // Connect every subscriber, then wait until each is active.
    let t0 = Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(a.subscribers);
    let mut holders_events = Vec::new();
    let mut holders_graphql = Vec::new();
    for k in 0..a.subscribers {
        let u = &users[k % users.len()];
        let auth = Authorizer::token(StaticToken(u.token.clone()));
        let sub = match a.transport.as_str() {
            "events" => {
                let s = EventsSubscriber::from_outputs(&outputs, auth)?;
                let sub = s.subscribe_groups(&u.groups, "bench").await?;
                holders_events.push(s);
                sub
            }
            "graphql" => {
                let s = GraphqlSubscriber::from_outputs(&outputs, auth)?;
                let sub = s.subscribe("bench", Some(&u.groups)).await?;
                holders_graphql.push(s);
                sub
            }
            other => bail!("--transport {other}: events or graphql"),
        };
        tokio::spawn(drain(sub, tally.clone(), ready_tx.clone()));
    }
    for _ in 0..a.subscribers {
        tokio::time::timeout(Duration::from_secs(120), ready_rx.recv())
            .await
            .context("not every subscriber was active within 120 s")?
            .context("a subscriber ended")??;
    }
    eprintln!(
        "{} subscribers active in {:.2} s",
        a.subscribers,
        t0.elapsed().as_secs_f64()
    );

    let transport = match a.transport.as_str() {
        "events" => Transport::Events,
        _ => Transport::Graphql,
    };
    let publisher = Arc::new(
        Publisher::builder()
            .outputs(&outputs)
            .transports([transport])
            .authorizer(publish_auth)
            .concurrency(a.concurrency)
            .build()?,
    );
    // Every group some user is in, each published to in turn.
    let mut groups: Vec<String> = users.iter().flat_map(|u| u.groups.clone()).collect();
    groups.sort();
    groups.dedup();
    // Expected deliveries of a message to each group: its members' subscriber count.
    let mut members = std::collections::HashMap::<&str, u64>::new();
    for k in 0..a.subscribers {
        for g in &users[k % users.len()].groups {
            *members.entry(g.as_str()).or_default() += 1;
        }
    }

    for round in 1..=a.rounds {
        let order = if round % 2 == 1 {
            ["paced", "flat"]
        } else {
            ["flat", "paced"]
        };
        for phase in order {
            tally.received.store(0, Ordering::Relaxed);
            tally
                .latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            let published = Arc::new(AtomicU64::new(0));
            let expected = Arc::new(AtomicU64::new(0));
            let failed = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let start_us = now_us();
            let end = start + Duration::from_secs_f64(a.seconds);
            let workers = if phase == "flat" { a.concurrency } else { 1 };
            let mut tasks = Vec::new();
            let counter = Arc::new(AtomicU64::new(0));
            for _ in 0..workers {
                let (publisher, groups, published, expected, failed, counter) = (
                    publisher.clone(),
                    groups.clone(),
                    published.clone(),
                    expected.clone(),
                    failed.clone(),
                    counter.clone(),
                );
                let members: std::collections::HashMap<String, u64> =
                    members.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
                let rate = a.rate;
                tasks.push(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    while Instant::now() < end {
                        if phase == "paced" {
                            tick.tick().await;
                        }
                        let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                        let g = &groups[n % groups.len()];
                        let msg = match Message::builder("bench")
                            .group(g.clone())
                            .data(json!({ "t": now_us(), "n": n }))
                            .build()
                        {
                            Ok(m) => m,
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        };
                        match publisher.publish(&msg).await {
                            Ok(r) if r.is_complete() => {
                                published.fetch_add(1, Ordering::Relaxed);
                                expected.fetch_add(members[g], Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                t.await?;
            }
            let publish_s = start.elapsed().as_secs_f64();
            // Wait for the stragglers (up to 2 s), then count.
            let want = expected.load(Ordering::Relaxed);
            let drain_until = Instant::now() + Duration::from_secs(2);
            while tally.received.load(Ordering::Relaxed) < want && Instant::now() < drain_until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // From the first publish to the last delivery.
            let last = tally
                .last_us
                .load(Ordering::Relaxed)
                .saturating_sub(start_us) as f64
                / 1e6;
            let received = tally.received.load(Ordering::Relaxed);
            let mut lat =
                std::mem::take(&mut *tally.latencies.lock().unwrap_or_else(|p| p.into_inner()));
            lat.sort_unstable();
            println!(
                "{}",
                json!({
                    "transport": a.transport,
                    "phase": phase,
                    "round": round,
                    "subscribers": a.subscribers,
                    "published": published.load(Ordering::Relaxed),
                    "publish_failed": failed.load(Ordering::Relaxed),
                    "expected": want,
                    "received": received,
                    "publish_s": publish_s,
                    "deliveries_per_s": received as f64 / last.max(publish_s),
                    "p50_ms": percentile(&lat, 0.50),
                    "p99_ms": percentile(&lat, 0.99),
                    "latency_samples": lat.len(),
                })
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for s in &holders_events {
        s.close().await;
    }
    for s in &holders_graphql {
        s.close().await;
    }
    Ok(())
}
