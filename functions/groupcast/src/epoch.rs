//! The one rule for time-sliced AppSync Events channels ("epochs"): which epoch a moment is in, how an
//! epoch is written as a channel segment, and which epochs a subscriber holds.
//!
//! # Why
//! AWS offers no way to close an Event API subscription from the server: `onSubscribe` runs once and
//! a connection lives up to 24 h (docs/isolation.md, "Events: open subscriptions"). A namespace with
//! `epoch_seconds = P` therefore puts the epoch in every channel: `/{namespace}/{group segment}/t{N}/{topic}`
//! with `N = floor(unix seconds / P)`. Publishers publish to the current epoch; the generated
//! `onSubscribe` admits only epochs near the server's clock ([`ADMITTED`]), so every subscription is
//! re-checked against the caller's groups at least once per period, and a removed member's open
//! subscription stops receiving within `2 P` (plus the authorizer's cache time) of the removal.
//!
//! # The rule
//! - [`epoch_at`]: `N = floor(unix_seconds / P)`.
//! - [`segment`]: `t` followed by `N` in decimal, no leading zeros (`t0`, `t5889012`).
//! - [`parse_segment`]: the inverse; anything else (`t`, `t01`, `T1`, `t-1`, `t1a`, more than
//!   [`MAX_DIGITS`] digits) is no epoch segment.
//! - [`admitted`]: the epochs `onSubscribe` and `onPublish` accept at server epoch `n`: `n-1`, `n`, `n+1`.
//!   The past epoch receives nothing new once publishers moved on, so admitting it costs no bound and
//!   absorbs clock skew at a boundary; the next epoch lets a subscriber be in place before it starts.
//! - [`window`]: the epochs a subscriber holds at its epoch `n`: `n` and `n+1`, and `n-1` during the
//!   first [`grace`] of `n` (for a publisher whose clock is slightly behind).
//!
//! The generated Events handler (templates/events/handler.js.tera) and `clients/js` carry copies of
//! this rule; `tests/fixtures/epoch-segments.json` holds the table all three must agree on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::limits::{EPOCH_SECONDS_MAX, EPOCH_SECONDS_MIN};

/// The first character of an epoch segment.
pub const PREFIX: char = 't';

/// Digits an epoch number may have in a segment. 15 decimal digits stay exact in a JavaScript number,
/// which the handler and `clients/js` compute with; `P >= 2` keeps real epochs far below that.
pub const MAX_DIGITS: usize = 15;

/// How far from the server's epoch `n` an admitted epoch may be: `n-1 ..= n+1`.
pub const ADMITTED: u64 = 1;

/// Why a period is no epoch period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EpochError {
    /// The period is outside [`EPOCH_SECONDS_MIN`]..=[`EPOCH_SECONDS_MAX`].
    #[error(
        "epoch_seconds is {0}: an epoch lasts {EPOCH_SECONDS_MIN}-{EPOCH_SECONDS_MAX} seconds \
         (limits::EPOCH_SECONDS_MIN/MAX); subscribers re-subscribe once per epoch, so below 60 costs \
         many re-subscriptions"
    )]
    Period(u64),
}

/// Checks an epoch period in seconds. The provisioner's config check and the publisher's builder both
/// call this: one rule.
pub fn check_period(seconds: u64) -> Result<(), EpochError> {
    if (EPOCH_SECONDS_MIN..=EPOCH_SECONDS_MAX).contains(&seconds) {
        Ok(())
    } else {
        Err(EpochError::Period(seconds))
    }
}

/// The epoch `unix_seconds` falls in, for a period of `period_seconds` (checked by [`check_period`];
/// a zero period is treated as 1 rather than dividing by zero).
///
/// ```
/// assert_eq!(groupcast::epoch::epoch_at(1_000, 300), 3);
/// assert_eq!(groupcast::epoch::epoch_at(1_200, 300), 4);
/// ```
pub fn epoch_at(unix_seconds: u64, period_seconds: u64) -> u64 {
    unix_seconds / period_seconds.max(1)
}

/// The channel segment of epoch `n`: `t{n}`.
///
/// ```
/// assert_eq!(groupcast::epoch::segment(42), "t42");
/// ```
pub fn segment(n: u64) -> String {
    format!("{PREFIX}{n}")
}

/// The epoch a channel segment names, or `None` when it is no epoch segment.
///
/// ```
/// use groupcast::epoch::parse_segment;
/// assert_eq!(parse_segment("t42"), Some(42));
/// assert_eq!(parse_segment("t042"), None);
/// assert_eq!(parse_segment("*"), None);
/// ```
pub fn parse_segment(s: &str) -> Option<u64> {
    let digits = s.strip_prefix(PREFIX)?;
    let ok = !digits.is_empty()
        && digits.len() <= MAX_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !ok {
        return None;
    }
    digits.parse().ok()
}

/// Whether epoch `n` is admitted when the server's clock is in epoch `now`: `now-1 ..= now+1`.
pub fn admitted(n: u64, now: u64) -> bool {
    n.abs_diff(now) <= ADMITTED
}

/// How long into an epoch a subscriber keeps the previous one: half the period, at most 30 s.
pub fn grace(period_seconds: u64) -> Duration {
    Duration::from_millis((period_seconds.max(1) * 500).min(30_000))
}

/// The epochs a subscriber holds at `unix_millis` (its clock): the current one and the next, and the
/// previous during the first [`grace`] of the current one. Ascending.
///
/// ```
/// use groupcast::epoch::window;
/// // 1,000,000 s is 3,333 epochs of 300 s and 100 s: past the grace.
/// assert_eq!(window(1_000_000_000, 300), vec![3333, 3334]);
/// // 1 s into epoch 3,000: the previous one is still held.
/// assert_eq!(window(900_000_000 + 1_000, 300), vec![2999, 3000, 3001]);
/// ```
pub fn window(unix_millis: u64, period_seconds: u64) -> Vec<u64> {
    let period_ms = period_seconds.max(1) * 1000;
    let n = unix_millis / period_ms;
    let into = Duration::from_millis(unix_millis % period_ms);
    let mut out = Vec::with_capacity(3);
    if n > 0 && into < grace(period_seconds) {
        out.push(n - 1);
    }
    out.push(n);
    out.push(n + 1);
    out
}

/// When the window of [`window`] next changes after `unix_millis`: the end of the grace, or the next
/// epoch's start. A subscriber re-evaluates its window then.
pub fn next_change_millis(unix_millis: u64, period_seconds: u64) -> u64 {
    let period_ms = period_seconds.max(1) * 1000;
    let start = unix_millis - unix_millis % period_ms;
    let grace_end = start + grace(period_seconds).as_millis() as u64;
    if unix_millis < grace_end {
        grace_end
    } else {
        start + period_ms
    }
}

/// Where the publisher and the subscribers take "now" from when they pick epochs: the system clock,
/// unless a test injects another (`PublisherBuilder::clock`, the subscriber builders' `clock`).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(Arc::new(SystemTime::now))
    }
    /// A clock that reads `now`.
    pub fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }
    /// The system clock moved by `offset_millis` (negative: behind), e.g. to stand just before an
    /// epoch boundary in a test, or to model a client whose clock is off.
    pub fn offset_millis(offset_millis: i64) -> Self {
        Clock::new(move || {
            let now = SystemTime::now();
            let d = Duration::from_millis(offset_millis.unsigned_abs());
            if offset_millis >= 0 {
                now + d
            } else {
                now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)
            }
        })
    }
    /// Now.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
    /// Now in milliseconds since the Unix epoch (0 before it).
    pub fn unix_millis(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
    }
    /// Now in whole seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> u64 {
        self.unix_millis() / 1000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.unix_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_parses_back_to_its_epoch() {
        for n in [0, 1, 9, 10, 5_889_012, 999_999_999_999_999] {
            assert_eq!(parse_segment(&segment(n)), Some(n));
        }
    }

    #[test]
    fn only_the_canonical_spelling_is_an_epoch_segment() {
        for s in [
            "",
            "t",
            "T1",
            "t01",
            "t00",
            "t-1",
            "t+1",
            "t1a",
            "t 1",
            "x1",
            "t1.0",
            "t*",
            "t1000000000000000",
            "٣",
            "t١",
        ] {
            assert_eq!(parse_segment(s), None, "{s:?}");
        }
    }

    #[test]
    fn admitted_epochs_are_the_previous_the_current_and_the_next() {
        assert!(admitted(99, 100) && admitted(100, 100) && admitted(101, 100));
        assert!(!admitted(98, 100) && !admitted(102, 100));
        assert!(admitted(0, 0) && admitted(1, 0) && !admitted(2, 0));
    }

    #[test]
    fn the_window_holds_the_previous_epoch_only_during_the_grace() {
        // P = 10 s: grace 5 s.
        assert_eq!(window(100_000, 10), vec![9, 10, 11]);
        assert_eq!(window(104_999, 10), vec![9, 10, 11]);
        assert_eq!(window(105_000, 10), vec![10, 11]);
        assert_eq!(next_change_millis(100_000, 10), 105_000);
        assert_eq!(next_change_millis(105_000, 10), 110_000);
        assert_eq!(grace(3600), Duration::from_secs(30));
    }

    #[test]
    fn periods_outside_the_limits_are_refused_naming_the_rule() {
        assert!(check_period(EPOCH_SECONDS_MIN).is_ok());
        assert!(check_period(EPOCH_SECONDS_MAX).is_ok());
        let e = check_period(1).unwrap_err().to_string();
        assert!(e.starts_with("epoch_seconds is 1:"), "{e}");
        assert!(check_period(EPOCH_SECONDS_MAX + 1).is_err());
    }

    #[test]
    fn the_shared_table_agrees_with_the_rule() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/epoch-segments.json"))
                .unwrap();
        for case in table["epochs"].as_array().unwrap() {
            let (t, p) = (
                case["unix"].as_u64().unwrap(),
                case["period"].as_u64().unwrap(),
            );
            assert_eq!(epoch_at(t, p), case["epoch"].as_u64().unwrap(), "{case}");
            assert_eq!(
                segment(epoch_at(t, p)),
                case["segment"].as_str().unwrap(),
                "{case}"
            );
        }
        for case in table["segments"].as_array().unwrap() {
            let s = case["segment"].as_str().unwrap();
            assert_eq!(parse_segment(s), case["epoch"].as_u64(), "{case}");
        }
    }
}
