//! The features of the learned ranking model: one impression (a member shown a post at a time)
//! as numbers. This is their one home: training computes them for each logged view as of its
//! view time (the post's counts before the view, its age then), serving computes them for each
//! candidate as of now, both through [`features`], so the model sees the same thing in both.
//!
//! Dense features (one weight each per engagement kind):
//!
//! | name | value |
//! |---|---|
//! | `bias` | 1 |
//! | `age_days` | the post's age at the view, in days (capped at 14) |
//! | `age_lt_1h` … `age_ge_256h` | one of 10 age buckets, doubling from 1 hour |
//! | `engagement_rate` | `ln(((reactions + comments + shares) + 1) / (views + 20) / 0.05)`: engagement per view before this one, smoothed toward 5% |
//! | `log_views` | `ln(1 + views)` before this one |
//! | `log_reactions`, `log_comments`, `log_shares` | `ln(1 + count)` before this one |
//! | `tie_connection`, `tie_followed`, `tie_other` | how the member relates to the author |
//! | `followed_hashtag` | followed hashtags the post carries (at most 2) |
//! | `no_hashtag` | 1 when the post carries none |
//! | `hashtag_interest` | the member's interest in the post's hashtags from their views and engagement before this view (the ranking signal of that name, with the default parameters) |
//! | `author_affinity` | the same for its author |
//!
//! Hashed crosses (one weight each per engagement kind, learned per key: GLMix's per-member
//! and per-item coefficients): `member`, `post`, `author`, `hashtag` (per hashtag),
//! `member_x_hashtag`, `member_x_author`. Keys are stable hashes of the ids, so a saved model
//! means the same after a restart.

use super::{AuthorRelation, Counts, RANKED_TAGS};

const HOUR: f64 = 3_600_000_000.0;

/// Dense features, in [`DENSE_NAMES`] order.
pub const DENSE: usize = 24;

pub const DENSE_NAMES: [&str; DENSE] = [
    "bias",
    "age_days",
    "age_lt_1h",
    "age_1_2h",
    "age_2_4h",
    "age_4_8h",
    "age_8_16h",
    "age_16_32h",
    "age_32_64h",
    "age_64_128h",
    "age_128_256h",
    "age_ge_256h",
    "engagement_rate",
    "log_views",
    "log_reactions",
    "log_comments",
    "log_shares",
    "tie_connection",
    "tie_followed",
    "tie_other",
    "followed_hashtag",
    "no_hashtag",
    "hashtag_interest",
    "author_affinity",
];

const AGE_BUCKETS: usize = 10;
const FIRST_AGE_BUCKET: usize = 2;
const ENGAGEMENT_RATE: usize = 12;
const TIE: usize = 17;
const FOLLOWED_HASHTAG: usize = 20;
const NO_HASHTAG: usize = 21;
const INTEREST: usize = 22;
const AFFINITY: usize = 23;

/// The dense features about this member in particular (their interests): a model without
/// them and without hashed crosses is global, the same for everyone.
pub const PERSONAL_DENSE: [usize; 2] = [INTEREST, AFFINITY];

/// The families of hashed crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Member,
    Post,
    Author,
    Hashtag,
    MemberHashtag,
    MemberAuthor,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Self::Member,
        Self::Post,
        Self::Author,
        Self::Hashtag,
        Self::MemberHashtag,
        Self::MemberAuthor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Post => "post",
            Self::Author => "author",
            Self::Hashtag => "hashtag",
            Self::MemberHashtag => "member_x_hashtag",
            Self::MemberAuthor => "member_x_author",
        }
    }
}

/// Most hashed features of one impression: member, post, author, member × author, and per
/// hashtag the hashtag and member × hashtag.
pub const MAX_HASHED: usize = 4 + 2 * RANKED_TAGS;

/// One hashed feature: its family, its key, and which of the post's hashtags it is about
/// (for naming it in an explanation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    pub family: Family,
    pub key: u64,
    /// Index into the post's hashtags, for the hashtag families.
    pub tag: u8,
}

/// The features of one impression.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub dense: [f32; DENSE],
    hashed: [Hashed; MAX_HASHED],
    hashed_len: u8,
}

impl Features {
    /// The hashed features present (each with value 1).
    pub fn hashed(&self) -> &[Hashed] {
        &self.hashed[..self.hashed_len as usize]
    }

    fn push(&mut self, family: Family, key: u64, tag: u8) {
        self.hashed[self.hashed_len as usize] = Hashed { family, key, tag };
        self.hashed_len += 1;
    }
}

/// A member shown a post at a time, as hashes and numbers: what [`features`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Impression<'a> {
    /// Stable hashes ([`stable_hash`]) of the member's, the post's and the author's ids and of
    /// the post's first hashtags.
    pub member: u64,
    pub post: u64,
    pub author: u64,
    pub tags: &'a [u64],
    pub create_time: i64,
    /// The post's counts before this view.
    pub counts: &'a Counts,
    pub relation: AuthorRelation,
    /// Followed hashtags the post carries.
    pub followed_hashtags: usize,
    /// The member's `hashtag_interest` and `author_affinity` for the post before this view.
    pub interest: f64,
    pub affinity: f64,
    /// When the member is (or was) shown it.
    pub at: i64,
}

/// The features of an impression (see the module's table).
pub fn features(i: &Impression) -> Features {
    let mut f = Features {
        dense: [0.0; DENSE],
        hashed: [Hashed {
            family: Family::Member,
            key: 0,
            tag: 0,
        }; MAX_HASHED],
        hashed_len: 0,
    };
    let d = &mut f.dense;
    d[0] = 1.0;
    let age_hours = (i.at - i.create_time).max(0) as f64 / HOUR;
    d[1] = (age_hours / 24.0).min(14.0) as f32;
    let bucket = if age_hours < 1.0 {
        0
    } else {
        (age_hours.log2().floor() as usize + 1).min(AGE_BUCKETS - 1)
    };
    d[FIRST_AGE_BUCKET + bucket] = 1.0;
    let c = i.counts;
    let reactions = c.total_reactions().max(0) as f64;
    let comments = c.comments.max(0) as f64;
    let shares = c.shares.max(0) as f64;
    let events = reactions + comments + shares;
    let views = (c.impressions.max(0) as f64).max(events);
    d[ENGAGEMENT_RATE] = (((events + 1.0) / (views + 20.0)) / 0.05).ln() as f32;
    d[ENGAGEMENT_RATE + 1] = views.ln_1p() as f32;
    d[ENGAGEMENT_RATE + 2] = reactions.ln_1p() as f32;
    d[ENGAGEMENT_RATE + 3] = comments.ln_1p() as f32;
    d[ENGAGEMENT_RATE + 4] = shares.ln_1p() as f32;
    let tie = match i.relation {
        AuthorRelation::Connection => 0,
        AuthorRelation::Followed => 1,
        AuthorRelation::Other => 2,
    };
    d[TIE + tie] = 1.0;
    d[FOLLOWED_HASHTAG] = i.followed_hashtags.min(2) as f32;
    d[NO_HASHTAG] = f32::from(u8::from(i.tags.is_empty()));
    d[INTEREST] = i.interest as f32;
    d[AFFINITY] = i.affinity as f32;

    f.push(Family::Member, cross(Family::Member, i.member, 0), 0);
    f.push(Family::Post, cross(Family::Post, i.post, 0), 0);
    f.push(Family::Author, cross(Family::Author, i.author, 0), 0);
    f.push(
        Family::MemberAuthor,
        cross(Family::MemberAuthor, i.member, i.author),
        0,
    );
    for (n, t) in i.tags.iter().take(RANKED_TAGS).enumerate() {
        f.push(Family::Hashtag, cross(Family::Hashtag, *t, 0), n as u8);
        f.push(
            Family::MemberHashtag,
            cross(Family::MemberHashtag, i.member, *t),
            n as u8,
        );
    }
    f
}

/// The key of a hashed feature.
fn cross(family: Family, a: u64, b: u64) -> u64 {
    mix(mix(a ^ (family as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ b)
}

/// SplitMix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of an id that is the same in every process and on every machine (FNV-1a, then
/// mixed), so a saved model's keys mean the same after a restart.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impression<'a>(counts: &'a Counts, tags: &'a [u64], age_hours: f64) -> Impression<'a> {
        Impression {
            member: stable_hash("m1"),
            post: stable_hash("p1"),
            author: stable_hash("a1"),
            tags,
            create_time: 0,
            counts,
            relation: AuthorRelation::Followed,
            followed_hashtags: 3,
            interest: 0.0,
            affinity: 0.0,
            at: (age_hours * HOUR) as i64,
        }
    }

    #[test]
    fn stable_hash_is_fixed_across_processes() {
        // A saved model depends on these values: they must never change.
        assert_eq!(stable_hash(""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash("rust"), stable_hash("rust"));
        assert_ne!(stable_hash("rust"), stable_hash("Rust"));
    }

    #[test]
    fn dense_features_follow_the_table() {
        let counts = Counts {
            reactions: [3, 0, 1, 0, 0, 0],
            comments: 2,
            shares: 1,
            impressions: 50,
            unique_viewers: 40,
        };
        let f = features(&impression(&counts, &[], 5.0));
        let named = |n: &str| f.dense[DENSE_NAMES.iter().position(|x| *x == n).unwrap()];
        assert_eq!(named("bias"), 1.0);
        assert!((named("age_days") - 5.0 / 24.0).abs() < 1e-6);
        // 5 hours: the 4-8 h bucket, and only it.
        assert_eq!(named("age_4_8h"), 1.0);
        assert_eq!(f.dense[2..12].iter().sum::<f32>(), 1.0);
        let rate = ((7.0f64 + 1.0) / (50.0 + 20.0) / 0.05).ln() as f32;
        assert!((named("engagement_rate") - rate).abs() < 1e-6);
        assert!((named("log_reactions") - 4f32.ln_1p()).abs() < 1e-6);
        assert_eq!(named("tie_followed"), 1.0);
        assert_eq!(named("tie_connection") + named("tie_other"), 0.0);
        assert_eq!(named("followed_hashtag"), 2.0);
        assert_eq!(named("no_hashtag"), 1.0);
        // Without hashtags: member, post, author, member x author.
        assert_eq!(f.hashed().len(), 4);
    }

    #[test]
    fn age_buckets_double_from_an_hour_and_the_last_one_takes_the_rest() {
        let counts = Counts::default();
        let bucket = |h: f64| {
            let f = features(&impression(&counts, &[], h));
            f.dense[2..12].iter().position(|v| *v == 1.0).unwrap()
        };
        assert_eq!(bucket(0.5), 0);
        assert_eq!(bucket(1.0), 1);
        assert_eq!(bucket(3.9), 2);
        assert_eq!(bucket(200.0), 8);
        assert_eq!(bucket(10_000.0), 9);
    }

    #[test]
    fn each_hashtag_brings_its_own_and_the_members_cross() {
        let counts = Counts::default();
        let tags = [stable_hash("rust"), stable_hash("go")];
        let f = features(&impression(&counts, &tags, 1.0));
        assert_eq!(f.hashed().len(), 8);
        let keys: std::collections::HashSet<u64> = f.hashed().iter().map(|h| h.key).collect();
        assert_eq!(keys.len(), 8, "no two features share a key");
        // Another member shares the hashtag's key but not the cross.
        let mut other = impression(&counts, &tags, 1.0);
        other.member = stable_hash("m2");
        let g = features(&other);
        let of = |f: &Features, fam: Family| -> Vec<u64> {
            f.hashed()
                .iter()
                .filter(|h| h.family == fam)
                .map(|h| h.key)
                .collect()
        };
        assert_eq!(of(&f, Family::Hashtag), of(&g, Family::Hashtag));
        assert_ne!(of(&f, Family::MemberHashtag), of(&g, Family::MemberHashtag));
    }
}
