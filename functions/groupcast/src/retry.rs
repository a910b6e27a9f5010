//! Retries: which failures are worth another attempt, and exponential backoff with full jitter,
//! all inside one deadline.
//!
//! Retried: HTTP 429, 5xx, connect errors, resets and timeouts, and, alone, each event an
//! accepted request lists as failed with a transient code ([`is_transient_code`]). Never
//! retried: validation, auth (401/403) and every other 4xx. A retry resends the same bytes (of
//! the request, or of the events it retries), so the message id never changes.

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

/// The final failure of an item, and whether a later call might succeed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// The error, rendered.
    pub(crate) error: String,
    pub(crate) retryable: bool,
}

/// What one attempt said of one item it carried.
#[derive(Debug)]
pub(crate) enum Item<T> {
    /// Final: the item needs no further attempt (delivered, or failed for good).
    Done(T),
    /// Worth another attempt for this item alone; the text says why.
    Retry(String),
}

/// The result of one item: its outcome and the number of attempts that carried it.
pub(crate) type ItemResult<T> = (Result<T, Failure>, u32);

/// Runs attempts over `n` items until each is done, an attempt fails fatally, the attempts run out
/// or `deadline` passes. Each attempt gets its number and the indices still pending, and answers
/// one [`Item`] per pending index, in that order; only the items it answers
/// [`Item::Retry`] are carried by the next attempt, which shares the same attempt budget and
/// deadline. A whole attempt that fails retryably is retried with the same pending items.
pub(crate) async fn run_each<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Instant,
    n: usize,
    mut attempt: F,
) -> Vec<ItemResult<T>>
where
    F: FnMut(u32, &[usize]) -> Fut,
    Fut: Future<Output = Result<Vec<Item<T>>, AttemptError>>,
{
    let start = Instant::now();
    let mut results: Vec<Option<Result<T, Failure>>> = (0..n).map(|_| None).collect();
    let mut carried = vec![0u32; n];
    let mut last: Vec<String> =
        vec![String::from("the deadline passed before the first attempt"); n];
    let mut pending: Vec<usize> = (0..n).collect();
    let mut attempts = 0u32;
    while !pending.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        attempts += 1;
        for &i in &pending {
            carried[i] += 1;
        }
        let attempt_deadline = deadline.min(now + policy.attempt_timeout);
        match tokio::time::timeout_at(attempt_deadline, attempt(attempts, &pending)).await {
            Ok(Ok(items)) if items.len() == pending.len() => {
                let mut still = Vec::new();
                for (i, item) in pending.iter().copied().zip(items) {
                    match item {
                        Item::Done(v) => results[i] = Some(Ok(v)),
                        Item::Retry(why) => {
                            last[i] = why;
                            still.push(i);
                        }
                    }
                }
                pending = still;
            }
            Ok(Ok(items)) => {
                let error = Error::Protocol(format!(
                    "an attempt answered {} items for {} sent",
                    items.len(),
                    pending.len()
                ))
                .to_string();
                for i in pending.drain(..) {
                    results[i] = Some(Err(Failure {
                        error: error.clone(),
                        retryable: false,
                    }));
                }
            }
            Ok(Err(AttemptError::Fatal(e))) => {
                let error = e.to_string();
                for i in pending.drain(..) {
                    results[i] = Some(Err(Failure {
                        error: error.clone(),
                        retryable: false,
                    }));
                }
            }
            Ok(Err(AttemptError::Retryable(why))) => {
                for &i in &pending {
                    last[i].clone_from(&why);
                }
            }
            Err(_) => {
                let why = format!("attempt timed out after {:?}", attempt_deadline - now);
                for &i in &pending {
                    last[i].clone_from(&why);
                }
            }
        }
        if pending.is_empty() || attempts >= policy.max_attempts.max(1) {
            break;
        }
        let pause = policy.backoff(attempts);
        if Instant::now() + pause >= deadline {
            break;
        }
        tracing::debug!(attempt = attempts, pending = pending.len(), pause_ms = pause.as_millis() as u64, reason = %last[pending[0]], "retrying");
        tokio::time::sleep(pause).await;
    }
    let elapsed = start.elapsed();
    results
        .into_iter()
        .zip(carried)
        .zip(last)
        .map(|((r, attempts), last)| {
            let r = r.unwrap_or_else(|| {
                Err(Failure {
                    error: Error::Exhausted {
                        attempts,
                        elapsed,
                        last,
                    }
                    .to_string(),
                    retryable: true,
                })
            });
            (r, attempts)
        })
        .collect()
}

/// Whether an error code that AWS returns for one event (an AppSync Events `failed` entry's
/// `code`/`errorCode`, or an `errorType` of a WebSocket `publish_error`) names a transient failure,
/// so that re-sending that event alone may succeed. Everything else is final.
///
/// AWS documents no codes for Events' failed entries (/work/shared/reference/aws-protocols.md §1);
/// its clients carry them as an integer (Amplify Swift `FailedEvent.errorCode`, Amplify Android
/// `"code":401`), i.e. an HTTP status, while `publish_error` carries AWS error names. Both are read
/// with the rules of AWS's own SDKs:
/// - a number (or numeric text) is retryable exactly when the same HTTP status is
///   ([`classify_status`]): 429 and 5xx. The SDKs' standard retry mode retries "HTTP 500, 502,
///   503, and 504 responses" and throttling
///   (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html>,
///   <https://docs.aws.amazon.com/sdk-for-python/v1/guide/config-retries.html>);
/// - a name is retryable when it is one of the SDKs' throttling or transient error codes
///   (`aws_runtime::retries::classifiers::THROTTLING_ERRORS` and `TRANSIENT_ERRORS` of the Rust
///   SDK: `ThrottlingException`, `TooManyRequestsException`, `LimitExceededException`,
///   `RequestTimeout`, …), one of AWS's common server errors `InternalFailure` (HTTP 500) and
///   `ServiceUnavailable` (HTTP 503)
///   (<https://docs.aws.amazon.com/appsync/latest/APIReference/CommonErrors.html>), or a name of
///   those families (it contains `throttl`, `toomanyrequests`, `limitexceeded` or `unavailable`,
///   or starts with `internal`, as `InternalServerError` does), compared without case.
///
/// Authorization (401, 403, `UnauthorizedException`), validation (400, `BadRequestException`) and
/// unknown codes are final: retrying cannot change them, and an event is never sent twice on a
/// guess.
pub fn is_transient_code(code: &str) -> bool {
    let code = code.trim();
    if let Ok(status) = code.parse::<u16>() {
        return matches!(classify_status(status, ""), AttemptError::Retryable(_));
    }
    const NAMED: &[&str] = &[
        // aws-runtime 1.x, retries::classifiers::THROTTLING_ERRORS and TRANSIENT_ERRORS.
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        // AWS common errors, and AppSync's "An internal AppSync error occurred. Try your request
        // again." (aws-sdk-appsync `Error::InternalFailureException`).
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
    ];
    if NAMED.iter().any(|n| n.eq_ignore_ascii_case(code)) {
        return true;
    }
    let lower = code.to_ascii_lowercase();
    lower.starts_with("internal")
        || ["throttl", "toomanyrequests", "limitexceeded", "unavailable"]
            .iter()
            .any(|w| lower.contains(w))
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
        let r = run_each(&p, deadline, 2, |_, _| {
            n.fetch_add(1, Ordering::SeqCst);
            async { Err::<Vec<Item<()>>, _>(AttemptError::Retryable("503".into())) }
        })
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 3);
        for (result, attempts) in r {
            assert_eq!(attempts, 3);
            let f = result.unwrap_err();
            assert!(f.retryable);
            assert!(
                f.error.starts_with("gave up after 3 attempt(s)"),
                "{}",
                f.error
            );
            assert!(f.error.ends_with(": 503"), "{}", f.error);
        }

        let r = run_each(&p, deadline, 2, |_, _| async {
            Err::<Vec<Item<()>>, _>(AttemptError::Fatal(Error::Rejected {
                status: 400,
                message: "no".into(),
            }))
        })
        .await;
        for (result, attempts) in r {
            assert_eq!(attempts, 1);
            assert_eq!(
                result.unwrap_err(),
                Failure {
                    error: "rejected (400): no".into(),
                    retryable: false
                }
            );
        }
    }

    #[tokio::test]
    async fn a_retry_carries_only_the_items_answered_retry_and_shares_the_budget() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = std::sync::Mutex::new(Vec::new());
        // Item 0 is done at once, item 1 on the second attempt, item 2 never.
        let r = run_each(&p, deadline, 3, |k, pending| {
            seen.lock().unwrap().push(pending.to_vec());
            let items: Vec<Item<u32>> = pending
                .iter()
                .map(|&i| match (i, k) {
                    (0, _) | (1, 2..) => Item::Done(k),
                    _ => Item::Retry(format!("event {i} failed (500)")),
                })
                .collect();
            async move { Ok(items) }
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), [vec![0, 1, 2], vec![1, 2], vec![2]]);
        assert_eq!(r[0], (Ok(1), 1));
        assert_eq!(r[1], (Ok(2), 2));
        let (result, attempts) = &r[2];
        assert_eq!(*attempts, 3);
        let f = result.as_ref().unwrap_err();
        assert!(f.retryable);
        assert!(
            f.error.starts_with("gave up after 3 attempt(s)")
                && f.error.ends_with("event 2 failed (500)"),
            "{}",
            f.error
        );
    }

    #[tokio::test]
    async fn the_deadline_ends_per_item_retries() {
        let p = RetryPolicy {
            max_attempts: 1000,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        let start = Instant::now();
        let r = run_each(&p, start + Duration::from_millis(100), 1, |_, _| async {
            Ok(vec![Item::<()>::Retry("throttled".into())])
        })
        .await;
        assert!(start.elapsed() < Duration::from_millis(300));
        assert!(r[0].1 >= 2, "it retried until the deadline: {:?}", r[0]);
        assert!(r[0].0.as_ref().unwrap_err().retryable);
    }

    #[tokio::test]
    async fn an_answer_of_the_wrong_length_fails_closed() {
        let p = RetryPolicy::default();
        let r = run_each(
            &p,
            Instant::now() + Duration::from_secs(1),
            2,
            |_, _| async { Ok(vec![Item::Done(())]) },
        )
        .await;
        assert!(
            r.iter()
                .all(|(res, _)| res.as_ref().is_err_and(|f| !f.retryable))
        );
    }

    #[test]
    fn transient_codes_are_429_5xx_and_the_sdks_throttling_and_server_error_names() {
        for c in [
            "429",
            "500",
            "502",
            "503",
            "504",
            " 500 ",
            "ThrottlingException",
            "throttlingexception",
            "TooManyRequestsException",
            "LimitExceededException",
            "ApiLimitExceededException",
            "RequestTimeout",
            "InternalFailure",
            "InternalFailureException",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "SlowDown",
        ] {
            assert!(is_transient_code(c), "{c}");
        }
        for c in [
            "400",
            "401",
            "403",
            "404",
            "413",
            "0",
            "-1",
            "99999",
            "",
            "UnauthorizedException",
            "Unauthorized",
            "BadRequestException",
            "AccessDeniedException",
            "ValidationException",
            "E",
            "MessageProcessingError",
        ] {
            assert!(!is_transient_code(c), "{c}");
        }
    }
}
