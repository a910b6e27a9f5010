//! Retries: which failures are worth another attempt, and exponential backoff with full jitter,
//! all inside one deadline.
//!
//! Retried: HTTP 429, 5xx, connect errors, resets and timeouts. Never retried: validation, auth
//! (401/403) and every other 4xx. A retry resends the same bytes, so the message id never changes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (≥ 1).
    pub max_attempts: u32,
    /// The backoff cap before the first retry; it doubles per retry.
    pub base_delay: Duration,
    /// The largest backoff cap.
    pub max_delay: Duration,
    /// The longest one attempt may take before it counts as a (retryable) timeout.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1 for the first retry): uniformly random in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]` ("full jitter"), which spreads retries of
    /// many clients apart.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth another attempt; the text says why.
    Retryable(String),
    /// Final.
    Fatal(Error),
}

/// The final failure of a request, and whether a later call might succeed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

/// Runs `attempt` until it succeeds, fails fatally, runs out of attempts or passes `deadline`.
/// Returns the outcome and the number of attempts started.
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Instant,
    mut attempt: F,
) -> (Result<T, Failure>, u32)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    let mut last = String::from("the deadline passed before the first attempt");
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        attempts += 1;
        let attempt_deadline = deadline.min(now + policy.attempt_timeout);
        match tokio::time::timeout_at(attempt_deadline, attempt(attempts)).await {
            Ok(Ok(v)) => return (Ok(v), attempts),
            Ok(Err(AttemptError::Fatal(error))) => {
                return (
                    Err(Failure {
                        error,
                        retryable: false,
                    }),
                    attempts,
                );
            }
            Ok(Err(AttemptError::Retryable(why))) => last = why,
            Err(_) => {
                last = format!("attempt timed out after {:?}", attempt_deadline - now);
            }
        }
        if attempts >= policy.max_attempts.max(1) {
            break;
        }
        let pause = policy.backoff(attempts);
        if Instant::now() + pause >= deadline {
            break;
        }
        tracing::debug!(attempt = attempts, pause_ms = pause.as_millis() as u64, reason = %last, "retrying");
        tokio::time::sleep(pause).await;
    }
    let error = Error::Exhausted {
        attempts,
        elapsed: start.elapsed(),
        last,
    };
    (
        Err(Failure {
            error,
            retryable: true,
        }),
        attempts,
    )
}

/// Classifies an HTTP status that is not a success. `body` is the response text, for messages.
pub(crate) fn classify_status(status: u16, body: &str) -> AttemptError {
    let message = snippet(body);
    match status {
        401 | 403 => AttemptError::Fatal(Error::Auth { status, message }),
        429 | 500..=599 => AttemptError::Retryable(format!("HTTP {status}: {message}")),
        _ => AttemptError::Fatal(Error::Rejected { status, message }),
    }
}

/// Classifies a transport-level failure: everything reqwest reports before a complete response
/// (connect, reset, timeout, a body cut short) is worth another attempt.
pub(crate) fn classify_reqwest(e: &reqwest::Error) -> AttemptError {
    if e.is_builder() {
        return AttemptError::Fatal(Error::Config(format!("building the request: {e}")));
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    AttemptError::Retryable(text)
}

/// The first 500 characters of a response body, for error messages.
pub(crate) fn snippet(body: &str) -> String {
    match body.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for retry in 1..=6 {
            let cap =
                Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_millis(350));
            let samples: Vec<Duration> = (0..200).map(|_| p.backoff(retry)).collect();
            assert!(samples.iter().all(|d| *d <= cap), "retry {retry}");
            // Full jitter: some pauses fall in the lower half of the range.
            assert!(samples.iter().any(|d| *d < cap / 2), "retry {retry}");
        }
        assert!(p.backoff(40) <= Duration::from_millis(350));
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify_status(401, ""),
            AttemptError::Fatal(Error::Auth { status: 401, .. })
        ));
        assert!(matches!(
            classify_status(403, ""),
            AttemptError::Fatal(Error::Auth { status: 403, .. })
        ));
        assert!(matches!(
            classify_status(400, "bad"),
            AttemptError::Fatal(Error::Rejected { status: 400, .. })
        ));
        assert!(matches!(
            classify_status(404, ""),
            AttemptError::Fatal(Error::Rejected { .. })
        ));
        for s in [429, 500, 502, 503, 504] {
            assert!(
                matches!(classify_status(s, ""), AttemptError::Retryable(_)),
                "{s}"
            );
        }
    }

    #[tokio::test]
    async fn stops_at_max_attempts_and_never_retries_fatal_errors() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = AtomicU32::new(0);
        let (r, attempts) = run(&p, deadline, |_| {
            n.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(AttemptError::Retryable("503".into())) }
        })
        .await;
        assert_eq!((attempts, n.load(Ordering::SeqCst)), (3, 3));
        assert!(r.unwrap_err().retryable);

        let (r, attempts) = run(&p, deadline, |_| async {
            Err::<(), _>(AttemptError::Fatal(Error::Rejected {
                status: 400,
                message: "no".into(),
            }))
        })
        .await;
        assert_eq!(attempts, 1);
        assert!(!r.unwrap_err().retryable);
    }
}
