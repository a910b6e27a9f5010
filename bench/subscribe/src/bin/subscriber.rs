//! The groupcast side of the subscriber benchmark: ONE process, one `EventsSubscriber`, one
//! `subscribe_groups` over `--groups` groups (so that many parts on one connection), receiving
//! `--messages` messages from the load generator. Prints one JSON line: messages, the process
//! CPU time and wall time from "all subscriptions active" to the last message, and the peak RSS
//! (`VmHWM`), measured the same way as the Amplify client (amplify.mjs).
//!
//! Usage: `subscribe-groupcast --url wss://127.0.0.1:PORT --groups 1000 --messages 300000`
//! (trusting the load generator's certificate through `SSL_CERT_FILE`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use groupcast::Authorizer;
use groupcast::subscribe::SubscriptionEvent;
use groupcast::subscribe::events::EventsSubscriber;
use serde_json::json;

/// User plus system CPU seconds of this process, from /proc/self/stat (clock ticks of 1/100 s).
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// Peak resident set size in KiB (VmHWM).
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut url = String::new();
    let mut groups = 1000usize;
    let mut messages = 300_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = value,
            "--groups" => groups = value.parse()?,
            "--messages" => messages = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let subscriber = EventsSubscriber::builder()
        .realtime_url(&url)
        .namespace("live")
        .authorizer(Authorizer::api_key("da2-bench"))
        .build()?;
    let names: Vec<String> = (0..groups).map(|k| format!("g{k}")).collect();
    let t0 = Instant::now();
    let mut sub = subscriber.subscribe_groups(&names, "*").await?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), sub.next_event())
            .await
            .context("no Active within 60 s (is the load generator's CA in SSL_CERT_FILE?)")?;
        match next {
            Some(SubscriptionEvent::Active) => break,
            Some(SubscriptionEvent::PartEnded { part, error }) => bail!("{part}: {error}"),
            Some(_) => {}
            None => bail!("the subscription ended before it was active"),
        }
    }
    let subscribe_s = t0.elapsed().as_secs_f64();
    let cpu0 = cpu_seconds()?;
    let mut received = 0usize;
    let mut first: Option<Instant> = None;
    let mut checksum = 0u64;
    while received < messages {
        match sub.next_event().await {
            Some(SubscriptionEvent::Message(m)) => {
                first.get_or_insert_with(Instant::now);
                checksum = checksum.wrapping_add(m.envelope.data["n"].as_u64().unwrap_or(0));
                received += 1;
            }
            Some(SubscriptionEvent::PartEnded { part, error }) => bail!("{part}: {error}"),
            Some(_) => {}
            None => bail!("the subscription ended after {received} messages"),
        }
    }
    let wall = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let cpu = cpu_seconds()? - cpu0;
    println!(
        "{}",
        json!({
            "client": "groupcast",
            "messages": received,
            "checksum": checksum,
            "subscribe_s": subscribe_s,
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_kib": peak_rss_kib()?,
        })
    );
    subscriber.close().await;
    Ok(())
}
