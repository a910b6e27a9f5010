//! Small statistics over timing samples: median and percentiles, and the JSON figures the
//! benchmarks print (one line each, read by `bench/run.sh`).

use std::time::Duration;

/// The `p`-th percentile (0–100) of `samples`, by nearest rank. Sorts `samples`.
///
/// Panics if `samples` is empty: a benchmark without samples has nothing to report.
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    assert!(!samples.is_empty(), "percentile of no samples");
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Throughput of one timed run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Throughput {
    /// Wall time of the measured window.
    pub(crate) elapsed: Duration,
    /// Requests answered with success.
    pub(crate) requests: u64,
    /// Events the sink reported successful.
    pub(crate) events: u64,
    /// Requests that failed (any cause).
    pub(crate) errors: u64,
}

impl Throughput {
    pub(crate) fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_nearest_rank() {
        let mut s = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut s, 50.0), 3.0);
        assert_eq!(percentile(&mut s, 100.0), 5.0);
        assert_eq!(percentile(&mut s, 0.0), 1.0);
        let mut even = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut even, 50.0), 2.0);
        assert_eq!(percentile(&mut even, 99.0), 4.0);
    }

    #[test]
    fn throughput_divides_by_elapsed_time() {
        let t = Throughput {
            elapsed: Duration::from_millis(500),
            requests: 100,
            events: 500,
            errors: 0,
        };
        assert_eq!(t.requests_per_s(), 200.0);
        assert_eq!(t.events_per_s(), 1000.0);
    }
}
