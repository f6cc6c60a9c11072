//! Freshness: how long writes take to reach the feed's index, read from the feed's own
//! `pronet_feed_index_lag_seconds` histogram (each event's time, set before its commit, to the
//! moment the index applied it) before and after a run: the difference is the run's writes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::Serialize;

/// Cumulative bucket counts per source: `upper bound (s) -> count`.
pub type Buckets = BTreeMap<String, Vec<(f64, u64)>>;

/// The lag of one source's events during a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceLag {
    pub source: String,
    pub events: u64,
    /// Bucket upper bounds (ms) holding the 50th and 99th percentile: "at most this".
    pub p50_ms_at_most: f64,
    pub p99_ms_at_most: f64,
}

/// Reads the feed's metrics at `url` (`http://HOST:PORT/metrics`).
pub fn scrape(url: &str) -> Result<Buckets, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut conn = TcpStream::connect(host).map_err(|e| format!("{url}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{url}: {e}"))?;
    let mut body = String::new();
    conn.read_to_string(&mut body)
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(parse(&body))
}

/// The lag histogram's buckets in a Prometheus text exposition.
pub fn parse(text: &str) -> Buckets {
    let mut out: Buckets = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("pronet_feed_index_lag_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|kv| {
                kv.strip_prefix(&format!("{name}=\""))
                    .and_then(|v| v.strip_suffix('"'))
            })
        };
        let (Some(source), Some(le)) = (label("source"), label("le")) else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse() {
                Ok(b) => b,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        out.entry(source.to_owned())
            .or_default()
            .push((bound, count as u64));
    }
    for buckets in out.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The lag of what was applied between `before` and `after`, per source with events.
pub fn lag_between(before: &Buckets, after: &Buckets) -> Vec<SourceLag> {
    let mut out = Vec::new();
    for (source, buckets) in after {
        let earlier = before.get(source);
        let delta: Vec<(f64, u64)> = buckets
            .iter()
            .map(|(bound, n)| {
                let was = earlier
                    .and_then(|b| b.iter().find(|(x, _)| x == bound))
                    .map_or(0, |(_, n)| *n);
                (*bound, n.saturating_sub(was))
            })
            .collect();
        let events = delta.last().map_or(0, |(_, n)| *n);
        if events == 0 {
            continue;
        }
        let at = |q: f64| {
            let want = (q * events as f64).ceil() as u64;
            delta
                .iter()
                .find(|(_, n)| *n >= want)
                .map_or(f64::INFINITY, |(b, _)| b * 1e3)
        };
        out.push(SourceLag {
            source: source.clone(),
            events,
            p50_ms_at_most: at(0.50),
            p99_ms_at_most: at(0.99),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# TYPE pronet_feed_index_lag_seconds histogram
pronet_feed_index_lag_seconds_bucket{le=\"0.001\",source=\"post\"} 10
pronet_feed_index_lag_seconds_bucket{le=\"0.002\",source=\"post\"} 10
pronet_feed_index_lag_seconds_bucket{le=\"+Inf\",source=\"post\"} 10
";
    const AFTER: &str = "\
pronet_feed_index_lag_seconds_bucket{le=\"0.001\",source=\"post\"} 60
pronet_feed_index_lag_seconds_bucket{le=\"0.002\",source=\"post\"} 109
pronet_feed_index_lag_seconds_bucket{le=\"+Inf\",source=\"post\"} 110
pronet_feed_index_lag_seconds_bucket{le=\"0.001\",source=\"engagement\"} 0
pronet_feed_index_lag_seconds_bucket{le=\"+Inf\",source=\"engagement\"} 0
";

    #[test]
    fn the_runs_lag_is_the_difference_of_the_histograms() {
        let lag = lag_between(&parse(BEFORE), &parse(AFTER));
        assert_eq!(
            lag,
            [SourceLag {
                source: "post".into(),
                events: 100,
                p50_ms_at_most: 1.0,
                p99_ms_at_most: 2.0,
            }]
        );
    }
}
