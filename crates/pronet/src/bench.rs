//! The benchmark: `pronet bench seed` fills a running suite with a large seeded network
//! through the public gRPC API, and `pronet bench run` drives it open loop (requests at a
//! fixed rate whatever the latency, latency measured from the intended send time) and reports
//! HDR percentiles, offered and achieved rates, errors by code and the servers' CPU and RSS.

pub mod eval;
pub mod freshness;
pub mod graph;
pub mod open_loop;
pub mod procstat;
pub mod run;
pub mod seed;
pub mod stats;
pub mod workload;

use std::net::SocketAddr;
use std::path::Path;

use crate::suite::SuiteAddrs;

/// Where `bench seed` writes the member ids it made up, one a line, for `bench run`.
pub const MEMBERS_FILE: &str = "bench-members.txt";

/// Where `bench seed` writes each member's connection count, one a line in the order of
/// `MEMBERS_FILE`, so `bench run --degree` can act as the members of a band.
pub const DEGREES_FILE: &str = "bench-degrees.txt";

/// Where `bench seed` records the time its posts are dated from (microseconds since the epoch).
pub const SEED_TIME_FILE: &str = "bench-seed-time.txt";

/// The `pronet up` ports.
pub fn default_targets() -> SuiteAddrs {
    SuiteAddrs {
        profile: ([127, 0, 0, 1], 50051).into(),
        post: ([127, 0, 0, 1], 50052).into(),
        engagement: ([127, 0, 0, 1], 50053).into(),
        feed: ([127, 0, 0, 1], 50054).into(),
    }
}

/// Parses `profile=ADDR,post=ADDR,engagement=ADDR,feed=ADDR`; services left out keep the
/// `pronet up` port.
pub fn parse_targets(raw: &str) -> Result<SuiteAddrs, String> {
    let mut addrs = default_targets();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("target {part:?}: expected SERVICE=ADDR"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("target {part:?}: invalid address"))?;
        match name {
            "profile" => addrs.profile = addr,
            "post" => addrs.post = addr,
            "engagement" => addrs.engagement = addr,
            "feed" => addrs.feed = addr,
            other => return Err(format!("unknown service {other:?} in --targets")),
        }
    }
    Ok(addrs)
}

/// Reads the member ids `bench seed` wrote.
pub fn read_members(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = data_dir.join(MEMBERS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "reading {}: {e} (run `pronet bench seed` first, or pass --members-from-demo)",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Connections per member of a planned graph (`members` of them, edges stored once).
pub fn degrees(members: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut degrees = vec![0; members];
    for &(a, b) in edges {
        degrees[a] += 1;
        degrees[b] += 1;
    }
    degrees
}

/// Reads the connection counts `bench seed` wrote.
pub fn read_degrees(data_dir: &Path) -> anyhow::Result<Vec<usize>> {
    let path = data_dir.join(DEGREES_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "reading {}: {e} (written by `pronet bench seed`)",
            path.display()
        )
    })?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse()
                .map_err(|_| anyhow::anyhow!("{}: {l:?} is not a count", path.display()))
        })
        .collect()
}

/// A band of connection counts, `MIN..MAX` (MAX excluded) or `MIN..` (no upper bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DegreeBand {
    pub min: usize,
    pub max: Option<usize>,
}

impl DegreeBand {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (lo, hi) = raw
            .split_once("..")
            .ok_or_else(|| format!("degree band {raw:?}: expected MIN..MAX or MIN.."))?;
        let number = |s: &str| {
            s.trim()
                .replace('_', "")
                .parse::<usize>()
                .map_err(|_| format!("degree band {raw:?}: {s:?} is not a count"))
        };
        let min = number(lo)?;
        let max = if hi.trim().is_empty() {
            None
        } else {
            Some(number(hi)?)
        };
        if max.is_some_and(|m| m <= min) {
            return Err(format!("degree band {raw:?}: empty"));
        }
        Ok(Self { min, max })
    }

    pub fn contains(&self, degree: usize) -> bool {
        degree >= self.min && self.max.is_none_or(|m| degree < m)
    }

    /// The indices of the members whose count is in the band.
    pub fn members(&self, degrees: &[usize]) -> Vec<usize> {
        (0..degrees.len())
            .filter(|&i| self.contains(degrees[i]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degree_bands_select_members() {
        let degrees = degrees(5, &[(0, 1), (0, 2), (0, 3), (1, 2)]);
        assert_eq!(degrees, vec![3, 2, 2, 1, 0]);
        let band = DegreeBand::parse("2..3").unwrap();
        assert_eq!(band.members(&degrees), vec![1, 2]);
        let open = DegreeBand::parse("1..").unwrap();
        assert_eq!(open.members(&degrees), vec![0, 1, 2, 3]);
        assert_eq!(DegreeBand::parse("10_000..").unwrap().min, 10_000);
        assert!(DegreeBand::parse("3..3").is_err());
        assert!(DegreeBand::parse("3").is_err());
        assert!(DegreeBand::parse("a..").is_err());
    }

    #[test]
    fn parses_partial_targets() {
        let t = parse_targets("feed=10.0.0.1:9000").unwrap();
        assert_eq!(t.feed, "10.0.0.1:9000".parse().unwrap());
        assert_eq!(t.profile, default_targets().profile);
        assert!(parse_targets("search=1.2.3.4:1").is_err());
    }
}
