//! The benchmark's workload, shared by every command: 5 messages to one group with a payload of
//! `--data-bytes`, fixed static IAM credentials, and the one Events request they make; plus the
//! `sign` micro benchmark and the wrk script built from that request.
//!
//! The request is built the way `groupcast::Publisher` builds it, with groupcast's functions:
//! envelopes with [`Message::envelope_json`], the channel with [`groupcast::events::channel`]
//! and [`groupcast::group_segment`], the body with [`groupcast::events::publish_body`], the IAM
//! header set of an Events publish with [`groupcast::events::iam_headers`], then
//! [`groupcast::sign::sign_headers`]. A test checks the body and signed headers against what the
//! publisher sends.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use clap::Args;
use groupcast::Message;
use groupcast::sign::{APPSYNC_SERVICE, sign_headers};
use http::HeaderMap;

use crate::stats::percentile;

/// Events per request: AppSync's maximum, the batch the benchmark is about.
pub(crate) const EVENTS_PER_REQUEST: usize = groupcast::limits::EVENTS_PER_PUBLISH;

/// Static example credentials (AWS's documentation pair). Nothing leaves 127.0.0.1.
pub(crate) fn credentials() -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "groupcast-bench",
    )
}

/// What is published; the same defaults as `bench/node/publish.mjs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct Workload {
    /// Bytes of text in each message's `data` (`{"text":"xxx…"}`).
    #[arg(long, default_value_t = 100)]
    pub(crate) data_bytes: usize,
    /// Channel namespace.
    #[arg(long, default_value = "bench")]
    pub(crate) namespace: String,
    /// The group every message goes to.
    #[arg(long, default_value = "readers")]
    pub(crate) group: String,
    /// Message topic.
    #[arg(long, default_value = "load/test")]
    pub(crate) topic: String,
    /// SigV4 region.
    #[arg(long, default_value = "us-east-1")]
    pub(crate) region: String,
}

impl Workload {
    /// 5 fresh messages (new UUIDs) to the group.
    pub(crate) fn messages(&self) -> Result<Vec<Message>, groupcast::Error> {
        let data = serde_json::json!({ "text": "x".repeat(self.data_bytes) });
        (0..EVENTS_PER_REQUEST)
            .map(|_| {
                Message::builder(self.topic.as_str())
                    .data(data.clone())
                    .group(self.group.as_str())
                    .build()
            })
            .collect()
    }

    /// The channel the group's messages go to.
    pub(crate) fn channel(&self) -> anyhow::Result<String> {
        Ok(groupcast::events::channel(
            &self.namespace,
            &groupcast::group_segment(&self.group)?,
            &self.topic,
        ))
    }
}

/// One publish request: body and headers (signed).
#[derive(Debug)]
pub(crate) struct SignedRequest {
    pub(crate) body: Vec<u8>,
    pub(crate) headers: HeaderMap,
}

/// The Events body for `envelopes` on `channel`: groupcast's own [`groupcast::events::publish_body`].
pub(crate) fn events_body(channel: &str, envelopes: &[String]) -> Vec<u8> {
    groupcast::events::publish_body(channel, envelopes)
}

/// Serializes `msgs` into one Events request and signs it, as one publish attempt does.
pub(crate) fn serialize_and_sign(
    url: &str,
    channel: &str,
    msgs: &[Message],
    credentials: &Credentials,
    region: &str,
) -> Result<SignedRequest, groupcast::Error> {
    let envelopes: Vec<String> = msgs.iter().map(Message::envelope_json).collect();
    let body = events_body(channel, &envelopes);
    let mut headers = groupcast::events::iam_headers();
    sign_headers(
        "POST",
        url,
        &mut headers,
        &body,
        credentials,
        region,
        APPSYNC_SERVICE,
        SystemTime::now(),
    )?;
    Ok(SignedRequest { body, headers })
}

/// Arguments of `sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) workload: Workload,
    /// The URL signed (only its host and path matter).
    #[arg(
        long,
        default_value = "https://example1234567890.appsync-api.us-east-1.amazonaws.com/event"
    )]
    pub(crate) url: String,
    /// Seconds of warm-up before sampling.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Seconds of sampling, for each phase.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) duration: f64,
    /// Run exactly this many calls per phase, without warm-up, instead of timing for
    /// `--duration`: for instruction counts under `valgrind --tool=callgrind`
    /// (`bench/instructions.sh`).
    #[arg(long)]
    pub(crate) iterations: Option<u64>,
    /// Run only this phase (the others report nothing): lets `bench/instructions.sh` count each
    /// phase's instructions apart.
    #[arg(long, value_enum)]
    pub(crate) phase: Option<SignPhase>,
}

/// The phases of `sign`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SignPhase {
    /// Serialize 5 envelopes, build the body, sign: one publish attempt's CPU work.
    Total,
    /// SigV4 sign alone, over a body made once.
    Sign,
    /// The SHA-256 work a signature of this request requires (see `floor.rs`).
    Sha256Work,
    /// The signing key derivation alone (4 HMAC-SHA256), repeated by `aws-sigv4` per request.
    SigningKey,
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux; ns). Unlike wall
/// time it does not grow while other processes hold the CPU. This kernel updates it at scheduler
/// ticks (4 ms here), so it is only read at the ends of a whole phase.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How long a phase runs.
#[derive(Debug, Clone, Copy)]
enum Run {
    Timed {
        warmup: Duration,
        duration: Duration,
    },
    Counted(u64),
}

/// One phase's timings: wall-clock µs of each call, and the mean CPU µs per call.
struct Phase {
    wall: Vec<f64>,
    cpu_mean_us: Option<f64>,
}

/// Times `f` per call, for the phase's duration after its warm-up, or for a fixed count.
fn time_calls<T>(run: Run, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<Phase> {
    let (count, until) = match run {
        Run::Timed { warmup, duration } => {
            let warm_until = Instant::now() + warmup;
            while Instant::now() < warm_until {
                std::hint::black_box(f()?);
            }
            (u64::MAX, Some(Instant::now() + duration))
        }
        Run::Counted(n) => (n, None),
    };
    let mut wall = Vec::with_capacity(1 << 18);
    let cpu0 = thread_cpu_ns();
    for _ in 0..count {
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        let t = Instant::now();
        std::hint::black_box(f()?);
        wall.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let cpu_mean_us = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if !wall.is_empty() => {
            Some(b.saturating_sub(a) as f64 / 1e3 / wall.len() as f64)
        }
        _ => None,
    };
    Ok(Phase { wall, cpu_mean_us })
}

/// Per-request timings of one phase: wall-clock percentiles and the mean CPU time, in µs.
fn summary(mut phase: Phase) -> serde_json::Value {
    serde_json::json!({
        "median_us": percentile(&mut phase.wall, 50.0),
        "p10_us": percentile(&mut phase.wall, 10.0),
        "p90_us": percentile(&mut phase.wall, 90.0),
        "p99_us": percentile(&mut phase.wall, 99.0),
        "samples": phase.wall.len(),
        "cpu_mean_us": phase.cpu_mean_us,
    })
}

/// `sign`: times serialize + sign per request; the sign step alone over a body made once; the
/// SHA-256 work that signature requires ([`crate::floor`]); and the signing key derivation alone.
pub(crate) fn run_sign(args: &SignArgs) -> anyhow::Result<()> {
    let w = &args.workload;
    let msgs = w.messages()?;
    let channel = w.channel()?;
    let creds = credentials();
    let run = match args.iterations {
        Some(n) => Run::Counted(n),
        None => Run::Timed {
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.duration),
        },
    };

    let mut first = None;
    let canonical_request = crate::floor::capture_canonical_request(|| {
        first = Some(serialize_and_sign(
            &args.url, &channel, &msgs, &creds, &w.region,
        ));
    })?;
    let body_len = first
        .ok_or_else(|| anyhow::anyhow!("nothing signed"))??
        .body
        .len();
    let wanted = |p: SignPhase| args.phase.is_none_or(|only| only == p);
    let mut out = serde_json::json!({
        "bench": "sign",
        "what": "serialize 5 envelopes + Events body + SigV4 sign, per request",
        "body_bytes": body_len,
        "canonical_request_bytes": canonical_request.len(),
    });
    if wanted(SignPhase::Total) {
        out["total"] = summary(time_calls(run, || {
            Ok(serialize_and_sign(
                &args.url, &channel, &msgs, &creds, &w.region,
            )?)
        })?);
    }

    let envelopes: Vec<String> = msgs.iter().map(Message::envelope_json).collect();
    let body = events_body(&channel, &envelopes);
    if wanted(SignPhase::Sign) {
        out["sign_only"] = summary(time_calls(run, || {
            let mut headers = groupcast::events::iam_headers();
            sign_headers(
                "POST",
                &args.url,
                &mut headers,
                &body,
                &creds,
                &w.region,
                APPSYNC_SERVICE,
                SystemTime::now(),
            )?;
            Ok(headers)
        })?);
    }

    let work =
        crate::floor::signing_work(&body, canonical_request, &creds, &w.region, APPSYNC_SERVICE);
    if wanted(SignPhase::Sha256Work) {
        out["sha256_work"] = summary(time_calls(run, || Ok(work.hash()))?);
    }
    if wanted(SignPhase::SigningKey) {
        out["signing_key"] = summary(time_calls(run, || {
            Ok(work.signing_key().as_ref().to_vec())
        })?);
    }
    println!("{out}");
    Ok(())
}

/// Arguments of `wrk-script`.
#[derive(Debug, Args)]
pub(crate) struct WrkArgs {
    #[command(flatten)]
    pub(crate) workload: Workload,
    /// The sink's publish URL, e.g. `http://127.0.0.1:8080/event`.
    #[arg(long)]
    pub(crate) url: String,
}

/// `wrk-script`: a Lua script making wrk POST one publish signed now, with its headers and body.
pub(crate) fn run_wrk_script(args: &WrkArgs) -> anyhow::Result<()> {
    let w = &args.workload;
    let r = serialize_and_sign(
        &args.url,
        &w.channel()?,
        &w.messages()?,
        &credentials(),
        &w.region,
    )?;
    print!("{}", wrk_lua(&r)?);
    Ok(())
}

/// Lua long brackets hold any text without escapes, given a level the text does not contain.
fn lua_long_string(s: &str) -> String {
    let mut level = 0;
    while s.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    format!("[{eq}[{s}]{eq}]")
}

fn wrk_lua(r: &SignedRequest) -> anyhow::Result<String> {
    let mut lua =
        String::from("-- generated by `groupcast-bench wrk-script`: one signed Events publish\n");
    lua.push_str("wrk.method = \"POST\"\n");
    lua.push_str(&format!(
        "wrk.body = {}\n",
        lua_long_string(std::str::from_utf8(&r.body)?)
    ));
    for (name, value) in &r.headers {
        // Header names are tokens (no quotes or backslashes); `t[[[x]]]` would parse as a call.
        lua.push_str(&format!(
            "wrk.headers[\"{}\"] = {}\n",
            name.as_str(),
            lua_long_string(value.to_str()?)
        ));
    }
    Ok(lua)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn workload() -> Workload {
        Workload {
            data_bytes: 10,
            namespace: "bench".into(),
            group: "readers".into(),
            topic: "load/test".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn serialize_and_sign_makes_a_five_event_signed_publish() {
        let w = workload();
        let msgs = w.messages().unwrap();
        let r = serialize_and_sign(
            "https://h.example/event",
            &w.channel().unwrap(),
            &msgs,
            &credentials(),
            "us-east-1",
        )
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["channel"], "/bench/readers/load/test");
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 5);
        for (e, m) in events.iter().zip(&msgs) {
            assert_eq!(e.as_str().unwrap(), m.envelope_json());
        }
        let auth = r.headers["authorization"].to_str().unwrap();
        assert!(
            auth.contains("/us-east-1/appsync/aws4_request, SignedHeaders=accept;content-encoding;content-type;host;x-amz-date, Signature="),
            "{auth}"
        );
    }

    #[test]
    fn wrk_lua_carries_body_and_headers_verbatim() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        let lua = wrk_lua(&SignedRequest {
            body: br#"{"a":"]]"}"#.to_vec(),
            headers,
        })
        .unwrap();
        assert!(lua.contains(r#"wrk.body = [=[{"a":"]]"}]=]"#), "{lua}");
        assert!(
            lua.contains("wrk.headers[\"authorization\"] = [[AWS4-HMAC-SHA256 x]]"),
            "{lua}"
        );
    }
}
