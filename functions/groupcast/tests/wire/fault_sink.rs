//! A fault-injecting AppSync Events sink on 127.0.0.1, over [`crate::server::Server`]: each
//! `POST /event` is answered HTTP 500, 429, a reset connection, or 200 with some events `failed`,
//! at seeded rates, and optionally slowly. It records every event it accepted (its channel and
//! envelope id), so that a test can check that nothing reported delivered is missing.
//!
//! Deterministic under concurrency: the roll of a request depends on the seed, its bytes and how
//! often those bytes came before, not on arrival order; the roll of an event on the seed, its
//! channel and text and how often that pair came before. So a run repeats exactly when its
//! messages do (fixed ids: the envelope carries the id).
//!
//! Shared by the library's wire tests, the publisher Lambda's tests and the benchmark (`#[path]`),
//! each of which declares `server.rs` as this module's sibling `server`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::server::{Captured, Reply, Server};

/// The rates of each fault, as fractions of requests (or of events, for `event_failed`).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub seed: u64,
    pub http_500: f64,
    pub http_429: f64,
    pub reset: f64,
    /// Per event of an otherwise successful response: listed as `failed` with a transient code
    /// (500 or `InternalFailure`, in either spelling of AWS's clients).
    pub event_failed: f64,
    /// Per request that is answered: accept (and record) its events, then wait this long.
    pub slow: f64,
    pub slow_by: Duration,
}

impl Faults {
    /// The scenario of issue 13: 10% HTTP 500, 5% 429, 5% resets, 2% per-event failures.
    pub fn issue_13(seed: u64) -> Faults {
        Faults {
            seed,
            http_500: 0.10,
            http_429: 0.05,
            reset: 0.05,
            event_failed: 0.02,
            slow: 0.0,
            slow_by: Duration::ZERO,
        }
    }

    /// No faults; every response waits `by`.
    pub fn slow(by: Duration) -> Faults {
        Faults {
            seed: 0,
            http_500: 0.0,
            http_429: 0.0,
            reset: 0.0,
            event_failed: 0.0,
            slow: 1.0,
            slow_by: by,
        }
    }
}

/// What the sink did, in counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub requests: usize,
    pub http_500: usize,
    pub http_429: usize,
    pub resets: usize,
    pub events_failed: usize,
    pub slow: usize,
}

#[derive(Default)]
struct State {
    seen: HashMap<u64, u64>,
    accepted: Vec<(String, String)>,
    tally: Tally,
}

pub struct FaultSink {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

/// A uniform number in [0, 1) from `parts`.
fn roll(parts: impl Hash) -> f64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn key(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl FaultSink {
    pub async fn start(faults: Faults) -> FaultSink {
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let server = Server::start(move |req, _| answer(&faults, &st, req)).await;
        FaultSink { server, state }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// Every event accepted, as (channel, envelope id), in order; repeats are duplicates.
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub fn tally(&self) -> Tally {
        self.state.lock().unwrap().tally
    }
}

fn answer(f: &Faults, state: &Mutex<State>, req: &Captured) -> Reply {
    let mut s = state.lock().unwrap();
    s.tally.requests += 1;
    let body_key = key(&req.body);
    let nth = {
        let n = s.seen.entry(body_key).or_insert(0);
        *n += 1;
        *n
    };
    let r = roll((f.seed, "request", body_key, nth));
    if r < f.http_500 {
        s.tally.http_500 += 1;
        return Reply::Json(
            500,
            r#"{"errors":[{"errorType":"InternalFailure","message":"injected"}]}"#.into(),
        );
    }
    if r < f.http_500 + f.http_429 {
        s.tally.http_429 += 1;
        return Reply::Json(429, r#"{"message":"Rate exceeded (injected)"}"#.into());
    }
    if r < f.http_500 + f.http_429 + f.reset {
        s.tally.resets += 1;
        return Reply::Reset;
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => return Reply::Json(400, r#"{"message":"not JSON"}"#.into()),
    };
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        let text = e.as_str().unwrap_or_default();
        let event_key = key((&channel, text));
        let nth = {
            let n = s.seen.entry(event_key).or_insert(0);
            *n += 1;
            *n
        };
        let r = roll((f.seed, "event", event_key, nth));
        if r < f.event_failed {
            s.tally.events_failed += 1;
            // Both spellings AWS's clients read (aws-protocols.md §1).
            failed.push(if nth % 2 == 0 {
                json!({"identifier": format!("f-{i}"), "index": i, "code": 500, "message": "injected"})
            } else {
                json!({"identifier": format!("f-{i}"), "index": i, "errorCode": "InternalFailure", "errorMessage": "injected"})
            });
            continue;
        }
        let id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        s.accepted.push((channel.clone(), id));
        successful.push(json!({"identifier": format!("ev-{}", s.accepted.len()), "index": i}));
    }
    let reply = Reply::ok(json!({"successful": successful, "failed": failed}));
    if roll((f.seed, "slow", body_key, nth)) < f.slow {
        s.tally.slow += 1;
        return Reply::After(f.slow_by, Box::new(reply));
    }
    reply
}
