//! Feed snapshots and page tokens. The first page ranks the member's candidates once and keeps
//! the ranking in a bounded in-memory cache; later pages read it, so they never repeat an item
//! even while engagement keeps moving scores. A page token also carries short hashes of every
//! item already served and the snapshot's time, so a replica that lacks the snapshot (restart,
//! another replica, expiry) re-ranks as of that time and still skips what was served.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{Ranked, RankingProfile};

/// One member's ranked feed as of a moment.
#[derive(Debug)]
pub struct Snapshot {
    pub member_id: String,
    /// When the feed was ranked (microseconds since the epoch).
    pub as_of: i64,
    /// How many candidates were scored.
    pub scored: usize,
    /// Best first, at most the deepest page a member can reach.
    pub items: Vec<Ranked>,
    /// The profile that ranked it.
    pub profile: Arc<RankingProfile>,
    /// The model it ranked with and the viewer, so the page's predictions are the ones that
    /// ranked it.
    pub learned: crate::domain::Learned,
}

/// A bounded cache of snapshots with a time to live.
#[derive(Debug)]
pub struct SnapshotCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<u128, (Instant, Arc<Snapshot>)>,
    order: VecDeque<u128>,
}

impl SnapshotCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
        }
    }

    pub fn get(&self, id: u128) -> Option<Arc<Snapshot>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get(&id) {
            Some((at, snap)) if at.elapsed() < self.ttl => Some(snap.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, id: u128, snapshot: Arc<Snapshot>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.insert(id, (Instant::now(), snapshot)).is_none() {
            inner.order.push_back(id);
        }
        while inner.map.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// What a page token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub snapshot_id: u128,
    pub as_of: i64,
    /// Hashes of the post ids already served, in serving order.
    pub served: Vec<u32>,
}

/// Version 2: signed (version 1 tokens carried no tag and are refused).
const TOKEN_VERSION: u8 = 2;
const HEADER_LEN: usize = 1 + 16 + 8;
/// Bytes of HMAC-SHA256 kept at the end of a token.
const TAG_LEN: usize = 16;

/// The key page tokens are signed with, derived from the service's signing key so every
/// replica (and a restarted one) accepts the tokens of the others.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The purpose the key is derived for (see `AuthConfig::derive_key`).
    pub const PURPOSE: &'static str = "pronet feed page token v1";

    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl PageToken {
    /// The token as a client carries it: the fields, then a tag that makes any change to them
    /// detectable.
    pub fn encode(&self, key: &TokenKey) -> String {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 4 * self.served.len() + TAG_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.snapshot_id.to_be_bytes());
        bytes.extend_from_slice(&self.as_of.to_be_bytes());
        for h in &self.served {
            bytes.extend_from_slice(&h.to_be_bytes());
        }
        let tag = pronet_common::auth::mac(&key.0, &bytes);
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token's fields, if `key` signed exactly them.
    pub fn decode(token: &str, key: &TokenKey) -> Result<Self, String> {
        let invalid = || "is not a page token from this service".to_string();
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() < HEADER_LEN + TAG_LEN
            || bytes[0] != TOKEN_VERSION
            || !(bytes.len() - HEADER_LEN - TAG_LEN).is_multiple_of(4)
        {
            return Err(invalid());
        }
        let (bytes, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if !pronet_common::auth::verify_mac(&key.0, bytes, tag) {
            return Err("was altered or not issued by this service".to_string());
        }
        let snapshot_id = u128::from_be_bytes(bytes[1..17].try_into().map_err(|_| invalid())?);
        let as_of = i64::from_be_bytes(bytes[17..25].try_into().map_err(|_| invalid())?);
        let served = bytes[HEADER_LEN..]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            snapshot_id,
            as_of,
            served,
        })
    }
}

/// FNV-1a, 32 bits: short, stable across processes and versions (unlike std's hasher). A
/// collision can only make a page skip an item, never repeat one.
pub fn post_hash(post_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in post_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> TokenKey {
        TokenKey::new([n; 32])
    }

    fn token() -> PageToken {
        PageToken {
            snapshot_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            as_of: 1_700_000_000_000_000,
            served: vec![1, 2, u32::MAX],
        }
    }

    #[test]
    fn token_round_trips() {
        let t = token();
        assert_eq!(PageToken::decode(&t.encode(&key(1)), &key(1)).unwrap(), t);
    }

    #[test]
    fn garbage_tokens_are_refused() {
        let k = key(1);
        assert!(PageToken::decode("", &k).is_err());
        assert!(PageToken::decode("!!!", &k).is_err());
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode([2u8; 42]), &k).is_err());
        assert!(PageToken::decode(&URL_SAFE_NO_PAD.encode([2u8; 25]), &k).is_err());
    }

    #[test]
    fn a_tampered_token_or_another_keys_is_refused() {
        let encoded = token().encode(&key(1));
        let mut bytes = URL_SAFE_NO_PAD.decode(&encoded).unwrap();
        // Every single-bit change anywhere, tag included, is caught.
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(PageToken::decode(&tampered, &key(1)).is_err(), "byte {i}");
            bytes[i] ^= 0x01;
        }
        assert_eq!(
            PageToken::decode(&encoded, &key(2)).unwrap_err(),
            "was altered or not issued by this service"
        );
        // A served hash dropped (to see an item again) breaks the tag too.
        let mut shorter = token();
        shorter.served.pop();
        let forged = {
            let mut b = URL_SAFE_NO_PAD.decode(shorter.encode(&key(9))).unwrap();
            let n = b.len();
            b[n - 16..].copy_from_slice(&bytes[bytes.len() - 16..]);
            URL_SAFE_NO_PAD.encode(b)
        };
        assert!(PageToken::decode(&forged, &key(1)).is_err());
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(post_hash(""), 0x811c_9dc5);
        assert_eq!(post_hash("a"), 0xe40c_292c);
    }

    #[test]
    fn cache_evicts_oldest_beyond_capacity_and_expires() {
        let snap = |m: &str| {
            Arc::new(Snapshot {
                member_id: m.into(),
                as_of: 0,
                scored: 0,
                items: vec![],
                profile: crate::domain::ProfileSet::built_in()
                    .default_profile()
                    .clone(),
                learned: crate::domain::Learned::prior(),
            })
        };
        let cache = SnapshotCache::new(Duration::from_secs(60), 2);
        cache.insert(1, snap("a"));
        cache.insert(2, snap("b"));
        cache.insert(3, snap("c"));
        assert!(cache.get(1).is_none());
        assert_eq!(cache.get(3).unwrap().member_id, "c");
        let expired = SnapshotCache::new(Duration::ZERO, 2);
        expired.insert(1, snap("a"));
        assert!(expired.get(1).is_none());
    }
}
