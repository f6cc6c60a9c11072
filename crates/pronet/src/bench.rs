//! The benchmark: `pronet bench seed` fills a running suite with a large seeded network
//! through the public gRPC API, and `pronet bench run` drives it open loop (requests at a
//! fixed rate whatever the latency, latency measured from the intended send time) and reports
//! HDR percentiles, offered and achieved rates, errors by code and the servers' CPU and RSS.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_targets() {
        let t = parse_targets("feed=10.0.0.1:9000").unwrap();
        assert_eq!(t.feed, "10.0.0.1:9000".parse().unwrap());
        assert_eq!(t.profile, default_targets().profile);
        assert!(parse_targets("search=1.2.3.4:1").is_err());
    }
}
