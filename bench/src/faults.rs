//! `faults`: issue 13's fault scenario, measured. One publish of 1,000 messages × 5 groups
//! (5,000 events on 5 channels) against the library's fault-injecting Events sink (10% HTTP 500,
//! 5% 429, 5% resets, 2% per-event `failed`, seeded), by groupcast's [`Publisher`] (the code the
//! publisher Lambda runs) with the default attempts and with `--max-attempts`, then by the Node
//! publisher written as AWS documents it (`bench/node/faults.mjs`, no retries), each against a
//! fresh sink with the same seed and the same message ids (so the same bytes, and the same faults
//! on the first attempt). Prints one JSON line per publisher: events delivered, reported
//! failed, missing (reported delivered but not at the sink: must be 0), duplicates at the sink,
//! and wall time.

// The sink is the test peer itself, so the benchmark measures against exactly what CI asserts on.
#[allow(unreachable_pub)]
#[path = "../../functions/groupcast/tests/wire/fault_sink.rs"]
mod fault_sink;
#[allow(dead_code, unreachable_pub)]
#[path = "../../functions/groupcast/tests/wire/server.rs"]
mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use groupcast::{Authorizer, Message, Outcome, Publisher, RetryPolicy};
use serde_json::{Value, json};

use fault_sink::{FaultSink, Faults};

/// Arguments of `faults`.
#[derive(Debug, Args)]
pub(crate) struct FaultArgs {
    /// Messages, each to 5 groups.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// The sink's seed.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// The larger attempt budget measured beside the default one.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// The Node publisher script (run with `node`); omitted: Rust only.
    #[arg(long)]
    node_script: Option<String>,
}

const GROUPS: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];

pub(crate) fn run(args: &FaultArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        for attempts in [RetryPolicy::default().max_attempts, args.max_attempts] {
            let row = groupcast_run(args, attempts).await?;
            println!("{row}");
        }
        if let Some(script) = &args.node_script {
            println!("{}", node_run(args, script).await?);
        }
        Ok(())
    })
}

/// Counts of the sink: each accepted (channel, id), how often.
fn accepted(sink: &FaultSink) -> HashMap<(String, String), usize> {
    let mut at = HashMap::new();
    for a in sink.accepted() {
        *at.entry(a).or_insert(0) += 1;
    }
    at
}

async fn groupcast_run(args: &FaultArgs, max_attempts: u32) -> anyhow::Result<Value> {
    let sink = FaultSink::start(Faults::issue_13(args.seed)).await;
    let publisher = Publisher::builder()
        .events(sink.base(), "live")
        .authorizer(Authorizer::api_key("da2-bench"))
        .retry_policy(RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        })
        .build()?;
    let msgs: Vec<Message> = (0..args.messages)
        .map(|i| {
            Message::builder("orders")
                .data(json!({"n": i}))
                .groups(GROUPS)
                .id(message_id(i))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let report = publisher.publish_all(&msgs, &Default::default()).await?;
    let wall = start.elapsed();
    let at = accepted(&sink);
    let (mut delivered, mut failed, mut missing) = (0, 0, 0);
    let mut attempts: HashMap<u32, usize> = HashMap::new();
    for d in &report.deliveries {
        *attempts.entry(d.attempts).or_insert(0) += 1;
        match d.outcome {
            Outcome::Delivered { .. } => {
                delivered += 1;
                let key = (
                    format!("/live/{}/orders", d.group),
                    d.message_id.to_string(),
                );
                if !at.contains_key(&key) {
                    missing += 1;
                }
            }
            Outcome::Failed { .. } => failed += 1,
        }
    }
    let mut attempts: Vec<(u32, usize)> = attempts.into_iter().collect();
    attempts.sort_unstable();
    Ok(json!({
        "publisher": format!("groupcast (max_attempts {max_attempts})"),
        "events": report.deliveries.len(),
        "delivered": delivered,
        "reported_failed": failed,
        "neither_or_both": report.deliveries.len() - delivered - failed,
        "missing_at_sink": missing,
        "duplicates_at_sink": at.values().map(|n| n - 1).sum::<usize>(),
        "wall_s": round3(wall),
        "attempts_histogram": attempts.iter().map(|(a, n)| json!([a, n])).collect::<Vec<_>>(),
        "sink": format!("{:?}", sink.tally()),
    }))
}

async fn node_run(args: &FaultArgs, script: &str) -> anyhow::Result<Value> {
    let sink = FaultSink::start(Faults::issue_13(args.seed)).await;
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(["--url", &format!("{}/event", sink.base())])
        .args(["--messages", &args.messages.to_string()])
        .args(["--groups", &GROUPS.join(",")])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out).await??;
    anyhow::ensure!(
        out.status.success(),
        "node {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut row: Value = serde_json::from_slice(&out.stdout)?;
    // The sink's view: what the Node publisher said was delivered must be there.
    let at = accepted(&sink);
    let delivered_ids: Vec<(String, String)> =
        serde_json::from_value(row["delivered_ids"].take()).unwrap_or_default();
    let missing = delivered_ids
        .iter()
        .filter(|k| !at.contains_key(*k))
        .count();
    let obj = row.as_object_mut().expect("an object");
    obj.remove("delivered_ids");
    obj.insert("missing_at_sink".into(), json!(missing));
    obj.insert(
        "duplicates_at_sink".into(),
        json!(at.values().map(|n| n - 1).sum::<usize>()),
    );
    obj.insert("sink".into(), json!(format!("{:?}", sink.tally())));
    Ok(row)
}

/// Message `i`'s id, the same in `bench/node/faults.mjs`: with the same ids the bodies are the
/// same bytes, so both publishers meet the same seeded faults on their first attempts.
fn message_id(i: usize) -> uuid::Uuid {
    uuid::Uuid::parse_str(&format!("13130000-0000-4000-8000-{i:012}")).expect("a UUID")
}

fn round3(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
