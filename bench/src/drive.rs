//! The closed-loop load driver: `concurrency` tasks each publish, await the answer and publish
//! again until the deadline; a warm-up run first fills the connection pool and caches.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stats::Throughput;

/// Runs `publish_once` from `concurrency` tasks for `duration` and counts the outcome.
///
/// `publish_once` returns the number of events the sink accepted, or an error text. The first
/// error is kept so that a run full of failures says why.
pub(crate) async fn drive<F, Fut>(
    concurrency: usize,
    duration: Duration,
    publish_once: F,
) -> (Throughput, Option<String>)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let requests = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let f = publish_once.clone();
        let (requests, events, errors, first_error) = (
            requests.clone(),
            events.clone(),
            errors.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match f().await {
                    Ok(n) => {
                        requests.fetch_add(1, Ordering::Relaxed);
                        events.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a publish task panicked");
    }
    let elapsed = start.elapsed();
    let t = Throughput {
        elapsed,
        requests: requests.load(Ordering::Relaxed),
        events: events.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
    };
    let e = first_error.lock().expect("not poisoned").take();
    (t, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drive_counts_successes_and_keeps_the_first_error() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let (t, err) = drive(4, Duration::from_millis(50), move || {
            let c = c.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                // Every 3rd call fails, so both counters move.
                if c.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                    Err("boom".to_string())
                } else {
                    Ok(5)
                }
            }
        })
        .await;
        let total = calls.load(Ordering::Relaxed);
        assert!(total > 0);
        assert_eq!(t.requests + t.errors, total);
        assert_eq!(t.events, t.requests * 5);
        assert!(t.errors > 0);
        assert_eq!(err.as_deref(), Some("boom"));
        assert!(t.elapsed >= Duration::from_millis(50));
    }
}
