//! Configuration from an environment map passed in by the caller, so tests inject values
//! instead of mutating the process environment.

use std::collections::HashMap;
use std::time::Duration;

/// A snapshot of environment variables.
pub type EnvMap = HashMap<String, String>;

/// The process environment, read once.
pub fn process_env() -> EnvMap {
    std::env::vars().collect()
}

/// Parses a duration written as `250ms`, `5s`, `2m`, `1h` or `3d` (a bare number is seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {raw:?}: expected e.g. 500ms, 30s, 5m, 1h, 14d"))?;
    let secs = |s: u64| Duration::from_secs(s);
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(secs(n)),
        "m" => Ok(secs(n * 60)),
        "h" => Ok(secs(n * 3600)),
        "d" => Ok(secs(n * 86_400)),
        _ => Err(format!(
            "invalid duration unit in {raw:?}: use ms, s, m, h or d"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(
            parse_duration("14d").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("").is_err());
    }
}
