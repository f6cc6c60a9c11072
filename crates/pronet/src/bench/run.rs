//! `bench run`: one open-loop run at a rate, or `--find-max`: the highest rate whose p99 holds
//! the SLO (doubling, then bisection), each step a short run; reported as a table or JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::open_loop::{self, Schedule};
use super::procstat::{self, ProcUsage};
use super::stats::LatencySummary;
use super::workload::{Mix, Workload};

/// The report of one run (one step of a search).
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub intended: u64,
    pub sent: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub latency: LatencySummary,
    /// Latencies of the successful requests only.
    pub ok_latency: LatencySummary,
    pub elapsed_s: f64,
    pub servers: Vec<ProcUsage>,
    /// Whether the step held the SLO (find-max only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holds_slo: Option<bool>,
}

/// Runs the workload once at `schedule`, sampling the server processes around it.
pub async fn step(workload: &Arc<Workload>, schedule: Schedule, pids: &[u32]) -> StepReport {
    let before: Vec<_> = pids.iter().map(|&p| procstat::sample(p)).collect();
    let w = workload.clone();
    let r = open_loop::run(schedule, move |seq, conn| {
        let w = w.clone();
        async move { w.call(seq, conn).await }
    })
    .await;
    let servers = pids
        .iter()
        .zip(before)
        .filter_map(|(&pid, before)| {
            let after = procstat::sample(pid);
            match (before, after) {
                (Ok(b), Ok(a)) => Some(procstat::usage(pid, b, a, r.elapsed)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot read server process");
                    None
                }
            }
        })
        .collect();
    StepReport {
        offered_rps: r.offered_rate,
        achieved_rps: r.achieved_rate,
        intended: r.intended,
        sent: r.sent,
        ok: r.outcomes.ok,
        errors: r.outcomes.errors.clone(),
        latency: r.outcomes.latency_summary(),
        ok_latency: r.outcomes.ok_latency_summary(),
        elapsed_s: r.elapsed.as_secs_f64(),
        servers,
        holds_slo: None,
    }
}

/// A step holds the SLO when its p99 is within it, under 1% of requests failed, and it kept up
/// with the schedule (achieved within 5% of offered).
pub fn holds(report: &StepReport, slo_p99: Duration) -> bool {
    let total = report.intended.max(1) as f64;
    let failed: u64 = report.errors.values().sum();
    report.latency.p99_ms <= slo_p99.as_secs_f64() * 1e3
        && (failed as f64) / total < 0.01
        && report.achieved_rps >= 0.95 * report.offered_rps
}

/// The result of `--find-max`.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub slo_p99_ms: f64,
    /// The highest rate that held, if any did.
    pub max_rps: Option<f64>,
    pub best: Option<StepReport>,
    pub steps: Vec<StepReport>,
}

/// Doubles from `start` until a step fails the SLO, then bisects between the last rate that
/// held and the first that did not until they are within 10% (or `max_steps` runs).
pub async fn find_max(
    workload: &Arc<Workload>,
    base: Schedule,
    start: f64,
    slo_p99: Duration,
    pids: &[u32],
    max_steps: usize,
    mut on_step: impl FnMut(&StepReport),
) -> SearchReport {
    let mut steps = Vec::new();
    let mut good: Option<StepReport> = None;
    let mut bad: Option<f64> = None;
    let mut rate = start.max(1.0);
    while steps.len() < max_steps {
        let mut r = step(workload, Schedule { rate, ..base }, pids).await;
        let ok = holds(&r, slo_p99);
        r.holds_slo = Some(ok);
        on_step(&r);
        steps.push(r.clone());
        if ok {
            good = Some(r);
        } else {
            bad = Some(rate);
        }
        let lo = good.as_ref().map_or(0.0, |g| g.offered_rps);
        rate = match bad {
            None => rate * 2.0,
            Some(hi) if lo > 0.0 && hi / lo <= 1.1 => break,
            Some(hi) if lo == 0.0 && hi <= 1.0 => break,
            Some(hi) => ((lo + hi) / 2.0).round().max(1.0),
        };
        // Let queues left over from a failed step empty before the next one starts.
        if !ok {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    SearchReport {
        slo_p99_ms: slo_p99.as_secs_f64() * 1e3,
        max_rps: good.as_ref().map(|g| g.offered_rps),
        best: good,
        steps,
    }
}

/// The options a report repeats, so a JSON file says what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunSetup {
    pub mix: Mix,
    pub duration_s: f64,
    pub connections: usize,
    pub max_in_flight: usize,
    /// Members who make requests (of the band, if one was given).
    pub members: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degree: Option<crate::bench::DegreeBand>,
    pub skew: f64,
}

pub fn header() -> String {
    format!(
        "{:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
        "offered/s",
        "achieved",
        "ok p99 ms",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "servers"
    )
}

pub fn row(r: &StepReport) -> String {
    let errors = if r.errors.is_empty() {
        "0".to_string()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let servers = r
        .servers
        .iter()
        .map(|s| {
            format!(
                "pid {} {:.2} cores, peak {:.0} MiB",
                s.pid, s.cpu_cores, s.peak_rss_mib
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let verdict = match r.holds_slo {
        Some(true) => " ok",
        Some(false) => " over",
        None => "",
    };
    format!(
        "{:>9.0} {:>9.1} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}  {servers}{verdict}",
        r.offered_rps,
        r.achieved_rps,
        r.ok_latency.p99_ms,
        r.latency.p50_ms,
        r.latency.p90_ms,
        r.latency.p99_ms,
        r.latency.p99_9_ms,
        r.latency.max_ms,
        errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::Outcomes;

    fn report(p99_ms: f64, offered: f64, achieved: f64, failed: u64) -> StepReport {
        let mut latency = Outcomes::new().latency_summary();
        latency.p99_ms = p99_ms;
        StepReport {
            ok_latency: latency,
            offered_rps: offered,
            achieved_rps: achieved,
            intended: 1_000,
            sent: 1_000,
            ok: 1_000 - failed,
            errors: [("Unavailable".to_string(), failed)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            latency,
            elapsed_s: 1.0,
            servers: vec![],
            holds_slo: None,
        }
    }

    #[test]
    fn slo_needs_latency_errors_and_rate() {
        let slo = Duration::from_millis(25);
        assert!(holds(&report(20.0, 1000.0, 990.0, 0), slo));
        assert!(!holds(&report(30.0, 1000.0, 990.0, 0), slo));
        assert!(!holds(&report(20.0, 1000.0, 990.0, 20), slo));
        assert!(!holds(&report(20.0, 1000.0, 800.0, 0), slo));
    }
}
