//! The open-loop scheduler. Request `k` is due at `start + k / rate`, whatever happened to the
//! requests before it, and its latency is measured from that intended time: a server that
//! stalls shows as high latency at the offered rate, not as a lower rate with flattering
//! latencies (no coordinated omission). Requests go round-robin over the connections, each with
//! a bounded number in flight; a request that finds its connection full waits for a slot, and
//! that wait counts in its latency. The run ends at `duration`; what is still in flight then
//! gets `drain_timeout` to answer, and whatever could not be sent in time is counted as
//! `unsent`. The timer's own granularity (it wakes up to a millisecond late) is not counted.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::stats::Outcomes;

/// How late tokio's timer may wake a sleep (it ticks every millisecond), with a margin.
const TIMER_SLACK: Duration = Duration::from_micros(1500);

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Requests per second, across all connections.
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    /// Requests in flight per connection at most.
    pub max_in_flight: usize,
    /// How long requests still in flight at the end may take to answer.
    pub drain_timeout: Duration,
}

/// What one open-loop run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcomes: Outcomes,
    /// Requests the schedule called for.
    pub intended: u64,
    pub sent: u64,
    pub offered_rate: f64,
    /// Successful answers per second, over the run plus the time its last answer took.
    pub achieved_rate: f64,
    /// From the start to the last answer (at least `duration`).
    pub elapsed: Duration,
}

/// Runs `op(seq, connection)` on the schedule. `op` answers `Err(code)` for a failed request.
pub async fn run<F, Fut>(schedule: Schedule, op: F) -> RunResult
where
    F: Fn(u64, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let connections = schedule.connections.max(1);
    let slots: Vec<Arc<Semaphore>> = (0..connections)
        .map(|_| Arc::new(Semaphore::new(schedule.max_in_flight.max(1))))
        .collect();
    let outcomes = Arc::new(Mutex::new(Outcomes::new()));
    let last_answer = Arc::new(Mutex::new(None::<Instant>));
    let op = Arc::new(op);
    let intended = (schedule.rate * schedule.duration.as_secs_f64()).floor() as u64;
    let start = Instant::now();
    let end = start + schedule.duration;
    let mut tasks = JoinSet::new();
    let mut sent = 0u64;
    for seq in 0..intended {
        let due = start + Duration::from_secs_f64(seq as f64 / schedule.rate);
        sleep_until(due).await;
        // tokio's timer wakes on its next millisecond tick, up to a millisecond after `due`:
        // that slack is the load generator's, not the server's, so latency counts from the
        // wake-up. A sender later than that has fallen behind, and then `due` counts.
        let woke = Instant::now();
        let due = if woke.saturating_duration_since(due) <= TIMER_SLACK {
            woke
        } else {
            due
        };
        let conn = (seq % connections as u64) as usize;
        // A full connection holds this request back (its latency keeps counting from `due`),
        // but never past the end of the run.
        // `biased`: a free slot wins even when the sender runs late past the end.
        let permit = tokio::select! {
            biased;
            p = slots[conn].clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = sleep_until(end) => break,
        };
        sent += 1;
        let (op, outcomes, last_answer) = (op.clone(), outcomes.clone(), last_answer.clone());
        tasks.spawn(async move {
            let outcome = op(seq, conn).await;
            let now = Instant::now();
            drop(permit);
            outcomes
                .lock()
                .expect("not poisoned")
                .record(now - due, outcome);
            let mut last = last_answer.lock().expect("not poisoned");
            *last = Some(last.map_or(now, |l| l.max(now)));
        });
        // Reap finished tasks so a long run does not keep them all.
        while tasks.try_join_next().is_some() {}
    }
    let deadline = Instant::now().max(end) + schedule.drain_timeout;
    while !tasks.is_empty() {
        if timeout_at(deadline, tasks.join_next()).await.is_err() {
            break;
        }
    }
    let stuck = tasks.len() as u64;
    tasks.abort_all();
    let mut outcomes = outcomes.lock().expect("not poisoned").clone();
    outcomes.record_unanswered("drain_timeout", stuck);
    outcomes.record_unanswered("unsent", intended - sent);
    let last = last_answer.lock().expect("not poisoned").unwrap_or(end);
    let elapsed = (last.max(end)) - start;
    RunResult {
        achieved_rate: outcomes.ok as f64 / elapsed.as_secs_f64(),
        outcomes,
        intended,
        sent,
        offered_rate: schedule.rate,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, secs: u64) -> Schedule {
        Schedule {
            rate,
            duration: Duration::from_secs(secs),
            connections: 4,
            max_in_flight: 64,
            drain_timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_server_shows_high_latency_at_the_offered_rate() {
        // Every answer takes 50 ms: open loop keeps sending 200/s, about 10 in flight.
        let r = run(schedule(200.0, 5), |_, _| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        })
        .await;
        assert_eq!(r.intended, 1_000);
        assert_eq!(r.sent, 1_000);
        assert_eq!(r.outcomes.ok, 1_000);
        assert!(r.outcomes.percentile(50.0) >= Duration::from_millis(50));
        assert!(r.achieved_rate > 190.0, "achieved {}", r.achieved_rate);
    }

    #[tokio::test(start_paused = true)]
    async fn a_saturated_server_shows_queueing_not_a_lower_rate_with_low_latency() {
        // The server answers one request at a time in 20 ms (50/s at most) and is offered
        // 100/s: a closed-loop client would report 20 ms at 50/s. Open loop must show the
        // queue: latencies of seconds by the end of a 4 s run.
        let server = Arc::new(tokio::sync::Mutex::new(()));
        let r = run(schedule(100.0, 4), move |_, _| {
            let server = server.clone();
            async move {
                let _busy = server.lock().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            }
        })
        .await;
        assert_eq!(r.sent, 400, "the schedule did not slow down");
        assert!(
            r.outcomes.percentile(99.0) > Duration::from_millis(3_000),
            "p99 {:?}",
            r.outcomes.percentile(99.0)
        );
        assert!(r.outcomes.percentile(50.0) > Duration::from_millis(1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn full_connections_hold_requests_back_and_the_wait_counts() {
        // One connection, one request in flight, 100 ms answers, offered 50/s for 1 s: only
        // about 10 can be sent; the rest are reported unsent, and the sent ones waited.
        let s = Schedule {
            connections: 1,
            max_in_flight: 1,
            ..schedule(50.0, 1)
        };
        let r = run(s, |_, _| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        })
        .await;
        assert_eq!(r.intended, 50);
        assert!(r.sent <= 11, "sent {}", r.sent);
        assert_eq!(r.outcomes.errors["unsent"], 50 - r.sent);
        assert!(r.outcomes.max() > Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_never_answer_are_drain_timeouts() {
        let s = Schedule {
            drain_timeout: Duration::from_millis(100),
            ..schedule(10.0, 1)
        };
        let r = run(s, |seq, _| async move {
            if seq == 3 {
                std::future::pending::<()>().await;
            }
            Err("Unavailable".to_string())
        })
        .await;
        assert_eq!(r.outcomes.errors["drain_timeout"], 1);
        assert_eq!(r.outcomes.errors["Unavailable"], 9);
        assert_eq!(r.outcomes.ok, 0);
    }
}
