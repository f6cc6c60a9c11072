//! Time as microseconds since the Unix epoch (what the stores keep) and its protobuf form.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Converts a client timestamp, refusing values outside years 1..9999 or with bad nanos.
pub fn from_timestamp(ts: &Timestamp) -> Result<i64, String> {
    const MIN_SECONDS: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) {
        return Err("must be between years 1 and 9999".into());
    }
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err("nanos must be in 0..999999999".into());
    }
    Ok(ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_before_epoch() {
        for micros in [0, 1, 1_700_000_000_123_456, -1, -1_500_000] {
            assert_eq!(from_timestamp(&to_timestamp(micros)).unwrap(), micros);
        }
    }

    #[test]
    fn refuses_out_of_range() {
        let bad = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert!(from_timestamp(&bad).is_err());
        let bad_nanos = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert!(from_timestamp(&bad_nanos).is_err());
    }
}
