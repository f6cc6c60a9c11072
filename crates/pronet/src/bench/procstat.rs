//! CPU time and peak resident memory of server processes, from `/proc` (Linux only).

use std::time::Duration;

use serde::Serialize;

/// Clock ticks per second of `/proc/PID/stat` times: `sysconf(_SC_CLK_TCK)`, which is 100 on
/// every Linux architecture we run on (reading it would need libc and `unsafe`).
const CLK_TCK: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Peak resident set size since the process started (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
}

pub fn sample(pid: u32) -> Result<ProcSample, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("process {pid}: {e}"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("process {pid}: {e}"))?;
    parse(&stat, &status).ok_or_else(|| format!("process {pid}: unreadable /proc entries"))
}

fn parse(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())?;
    Some(ProcSample {
        cpu: Duration::from_secs_f64((utime + stime) as f64 / CLK_TCK),
        peak_rss_kib,
    })
}

/// What a server process used during a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcUsage {
    pub pid: u32,
    pub cpu_seconds: f64,
    /// CPU seconds per wall second: 1.0 is one core busy.
    pub cpu_cores: f64,
    /// Since the process started, not only during this run.
    pub peak_rss_mib: f64,
}

pub fn usage(pid: u32, before: ProcSample, after: ProcSample, wall: Duration) -> ProcUsage {
    let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    ProcUsage {
        pid,
        cpu_seconds: cpu,
        cpu_cores: cpu / wall.as_secs_f64().max(1e-9),
        peak_rss_mib: after.peak_rss_kib as f64 / 1024.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_peak_rss() {
        let stat = "4242 (pronet (up)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 \
                    12 0 100 1000000 2000 18446744073709551615";
        let status = "Name:\tpronet\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1000 kB\n";
        let s = parse(stat, status).unwrap();
        assert_eq!(s.cpu, Duration::from_secs(3));
        assert_eq!(s.peak_rss_kib, 204_800);
        let u = usage(
            1,
            ProcSample {
                cpu: Duration::from_secs(1),
                ..s
            },
            s,
            Duration::from_secs(4),
        );
        assert_eq!(u.cpu_seconds, 2.0);
        assert_eq!(u.cpu_cores, 0.5);
        assert_eq!(u.peak_rss_mib, 200.0);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.peak_rss_kib > 0);
    }
}
