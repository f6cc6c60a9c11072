//! Latency and outcome statistics of one run: an HDR histogram of latencies in microseconds
//! (3 significant digits, up to an hour) and counts of errors by gRPC status code.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The percentiles every report shows.
pub const PERCENTILES: [(&str, f64); 4] =
    [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

/// What the requests of a run came to.
#[derive(Debug, Clone)]
pub struct Outcomes {
    /// Latencies of every answered request (successes and errors alike: a fast error still
    /// occupied the schedule), from its intended send time.
    pub latency_us: Histogram<u64>,
    /// Latencies of the successful requests only: what an admitted request costs when the
    /// server sheds the rest.
    pub ok_latency_us: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Outcomes {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcomes {
    pub fn new() -> Self {
        Self {
            // An hour is far beyond any drain timeout; values above saturate instead of failing.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ok_latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, latency: Duration, outcome: Result<(), String>) {
        let us = (latency.as_micros() as u64).max(1);
        self.latency_us.saturating_record(us);
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.ok_latency_us.saturating_record(us);
            }
            Err(code) => *self.errors.entry(code).or_default() += 1,
        }
    }

    /// A request that never got an answer (still in flight when the drain timed out, or never
    /// sent because the run was over): an error, not a latency sample.
    pub fn record_unanswered(&mut self, what: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(what.to_string()).or_default() += n;
        }
    }

    pub fn answered(&self) -> u64 {
        self.latency_us.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_percentile(p))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.latency_us.max())
    }

    pub fn latency_summary(&self) -> LatencySummary {
        summary(&self.latency_us)
    }

    /// The latencies of the successful requests.
    pub fn ok_latency_summary(&self) -> LatencySummary {
        summary(&self.ok_latency_us)
    }
}

fn summary(h: &Histogram<u64>) -> LatencySummary {
    let ms = |us: u64| us as f64 / 1e3;
    LatencySummary {
        p50_ms: ms(h.value_at_percentile(50.0)),
        p90_ms: ms(h.value_at_percentile(90.0)),
        p99_ms: ms(h.value_at_percentile(99.0)),
        p99_9_ms: ms(h.value_at_percentile(99.9)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1e3,
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        // 1..=10_000 µs once each: the p-th percentile is p% of 10 ms.
        let mut o = Outcomes::new();
        for us in 1..=10_000u64 {
            o.record(Duration::from_micros(us), Ok(()));
        }
        let close = |got: Duration, want_us: u64| {
            let got = got.as_micros() as f64;
            // Three significant digits: within 0.1% (plus one bucket).
            assert!(
                (got - want_us as f64).abs() <= want_us as f64 * 0.001 + 1.0,
                "got {got} µs, want {want_us} µs"
            );
        };
        close(o.percentile(50.0), 5_000);
        close(o.percentile(90.0), 9_000);
        close(o.percentile(99.0), 9_900);
        close(o.percentile(99.9), 9_990);
        close(o.max(), 10_000);
        assert_eq!(o.answered(), 10_000);
        assert_eq!(o.ok, 10_000);
    }

    #[test]
    fn a_slow_tail_shows_in_the_high_percentiles_only() {
        // 99% at 1 ms, 1% at 100 ms.
        let mut o = Outcomes::new();
        for i in 0..1_000 {
            let ms = if i % 100 == 0 { 100 } else { 1 };
            o.record(Duration::from_millis(ms), Ok(()));
        }
        assert_eq!(o.percentile(50.0).as_millis(), 1);
        assert_eq!(o.percentile(99.0).as_millis(), 1);
        assert_eq!(o.percentile(99.9).as_millis(), 100);
    }

    #[test]
    fn errors_are_counted_by_code() {
        let mut o = Outcomes::new();
        o.record(Duration::from_millis(1), Err("Unavailable".into()));
        o.record(Duration::from_millis(1), Err("Unavailable".into()));
        o.record(Duration::from_millis(1), Ok(()));
        o.record_unanswered("unsent", 3);
        assert_eq!(o.errors["Unavailable"], 2);
        assert_eq!(o.errors["unsent"], 3);
        assert_eq!(o.error_count(), 5);
        assert_eq!(o.ok, 1);
    }
}
