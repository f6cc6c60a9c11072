//! The member graph: connections, follows, degrees and relationships, and their cursors.

/// A connection seen from one member: the other member and when they connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub member_id: String,
    pub create_time: i64,
}

/// What a member follows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FollowTarget {
    Member(String),
    Hashtag(String),
}

impl FollowTarget {
    /// Stored kind number of a member.
    pub const MEMBER_KIND: i64 = 1;
    /// Stored kind number of a hashtag.
    pub const HASHTAG_KIND: i64 = 2;

    /// Stored kind number: 1 member, 2 hashtag.
    pub fn kind(&self) -> i64 {
        match self {
            Self::Member(_) => Self::MEMBER_KIND,
            Self::Hashtag(_) => Self::HASHTAG_KIND,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Member(v) | Self::Hashtag(v) => v,
        }
    }

    pub fn from_parts(kind: i64, value: String) -> Option<Self> {
        match kind {
            Self::MEMBER_KIND => Some(Self::Member(value)),
            Self::HASHTAG_KIND => Some(Self::Hashtag(value)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowingRecord {
    pub target: FollowTarget,
    pub create_time: i64,
}

/// How a viewer relates to one member.
/// A member who follows another, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerRecord {
    pub member_id: String,
    pub create_time: i64,
}

/// How far a member is from a viewer in the connection graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degree {
    Myself,
    First,
    Second,
    Third,
    OutOfNetwork,
}

/// A degree with the mutual connections behind it (counted for first and second degree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegreeRecord {
    pub degree: Degree,
    pub mutual_count: i64,
    /// At most `limits::MAX_MUTUAL_IDS`, smallest ids first.
    pub mutual_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipRecord {
    pub member_id: String,
    /// The two are connected.
    pub connected: bool,
    /// One of the two blocked the other.
    pub blocked: bool,
}

/// Position after the last item of a newest-first page: its time and a tie-breaking key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub key: String,
}

/// Position in a following list: time, then kind, then target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowCursor {
    pub time: i64,
    pub kind: i64,
    pub target: String,
}

/// Member pairs to connect, each unordered pair once, none with itself; and how many of the
/// pairs given were dropped for that.
pub fn distinct_pairs(pairs: &[(String, String)]) -> (Vec<(String, String)>, u64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut dropped = 0;
    for (a, b) in pairs {
        if a == b {
            dropped += 1;
            continue;
        }
        let key = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        if !seen.insert(key) {
            dropped += 1;
        }
    }
    (seen.into_iter().collect(), dropped)
}
