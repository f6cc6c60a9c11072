//! Feed ranking: how candidates are scored and explained. Pure functions over plain data, so
//! every rule is unit-tested without a network.

use std::sync::Arc;

pub mod features;
pub mod feed;
pub mod model;
pub mod profile;
pub mod ranking;

pub use feed::{
    explain, rank_feed, CandidateSource, Explanation, Gathered, NotGathered, RankedFeed, Scoring,
    Standing,
};
pub use profile::{ProfileError, ProfileSet, RankingProfile, Signal};
pub use ranking::{FeedRanker, History, HistoryEvent, Learned, Ranked, Viewer};

/// Every limit of the feed service.
pub mod limits {
    pub const DEFAULT_PAGE_SIZE: usize = 20;
    pub const MAX_PAGE_SIZE: usize = 100;
    /// Deepest a member can page into one feed.
    pub const MAX_FEED_DEPTH: usize = 1000;
    /// Connections and followed members considered as authors.
    pub const MAX_AUTHORS: usize = 5000;
    /// Followed hashtags considered.
    pub const MAX_HASHTAGS: usize = 200;
    /// Recent posts taken by author and hashtag (newest first). Read from the in-memory index,
    /// so the cap is about ranking cost (~1 µs a candidate), not about moving rows between
    /// services as it was when candidates were fetched per request.
    pub const MAX_RECENT_POSTS: i32 = 2000;
    /// Posts per author among the candidates, so one prolific poster cannot crowd out the rest.
    pub const MAX_POSTS_PER_AUTHOR: i32 = 25;
    /// Recent engagement events of connections read (newest first).
    pub const MAX_ACTIVITIES: i32 = 1000;
    /// Members named per reason kind on an item.
    pub const MAX_NAMED_PER_REASON: usize = 3;
    /// Ids per call to another service's batch RPC (hydrating a page needs one).
    pub const BATCH_CHUNK: usize = 1000;
}

/// Who may see a post, and the rule (one copy, shared with the post and engagement services).
pub use pronet_common::visibility::{is_visible, is_visible_to_another, Relation, Visibility};

/// A member's or a hashtag's key in the source of candidates (the feed index).
pub type Key = u32;

/// A post's key in the source of candidates. Unlike members, posts leave (deleted, out of the
/// window), so the key also says which post held the slot: [`Ids::post_id`] answers `None`
/// once that post is gone.
pub type PostKey = u64;

/// Turns the keys candidates carry into the ids responses show. Ranking scores and orders
/// plain numbers; ids are read to break exact ties and, for the items of a page, to show them.
pub trait Ids {
    /// The post's id, `None` once it left the source.
    fn post_id(&self, post: PostKey) -> Option<Arc<str>>;
    fn member_id(&self, member: Key) -> Arc<str>;
    fn hashtag(&self, tag: Key) -> Arc<str>;

    /// [`features::stable_hash`] of the post's id (0 once it left): what the learned model
    /// reads per candidate. A source may keep them instead of hashing the ids each time.
    fn post_hash(&self, post: PostKey) -> u64 {
        self.post_id(post)
            .map_or(0, |id| features::stable_hash(&id))
    }
    fn member_hash(&self, member: Key) -> u64 {
        features::stable_hash(&self.member_id(member))
    }
    fn hashtag_hash(&self, tag: Key) -> u64 {
        features::stable_hash(&self.hashtag(tag))
    }
}

/// How the viewer relates to a post's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorRelation {
    Connection,
    Followed,
    Other,
}

/// What a connection did to a post, in the order reasons are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngagementKind {
    Commented,
    Shared,
    Reacted,
}

/// Engagement counts of a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Per reaction type, indexed by `ReactionType as usize - 1` (like, celebrate, support,
    /// love, insightful, funny).
    pub reactions: [i64; 6],
    pub comments: i64,
    pub shares: i64,
    /// Times the post was shown.
    pub impressions: i64,
    /// Members it was shown to.
    pub unique_viewers: i64,
}

impl Counts {
    pub fn total_reactions(&self) -> i64 {
        self.reactions.iter().sum()
    }
}

/// Most hashtags of a post that ranking reads (interest, diversity): the first four.
pub const RANKED_TAGS: usize = 4;

/// A post's first [`RANKED_TAGS`] hashtags, inline (no allocation per candidate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TagSet {
    keys: [Key; RANKED_TAGS],
    len: u8,
}

impl TagSet {
    pub fn from_keys(keys: impl IntoIterator<Item = Key>) -> Self {
        let mut set = Self::default();
        for k in keys {
            if set.len as usize == RANKED_TAGS {
                break;
            }
            if !set.as_slice().contains(&k) {
                set.keys[set.len as usize] = k;
                set.len += 1;
            }
        }
        set
    }

    pub fn as_slice(&self) -> &[Key] {
        &self.keys[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A post that may enter the feed, with everything ranking needs. Posts and members are keys
/// ([`Ids`] names them), so a candidate copies no strings; the two lists are usually empty and
/// then allocate nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub post: PostKey,
    pub author: Key,
    pub create_time: i64,
    pub relation: AuthorRelation,
    /// The post's hashtags (the first few), for interest and diversity.
    pub tags: TagSet,
    /// Followed hashtags the post carries.
    pub matched_hashtags: Vec<Key>,
    /// Connections who engaged, by kind, sorted and without repeats (a member may appear
    /// under several kinds): see [`Candidate::normalize_engaged`].
    pub engaged: Vec<(EngagementKind, Key)>,
    pub counts: Counts,
    /// The viewer was shown this post already.
    pub seen: bool,
    /// The viewer reacted to, commented on or shared this post.
    pub engaged_by_viewer: bool,
}

#[cfg(test)]
impl Candidate {
    /// A fresh, unseen post of a connection with no tags and no engagement (tests adjust it).
    pub(crate) fn plain(post: PostKey, author: Key, create_time: i64) -> Self {
        Self {
            post,
            author,
            create_time,
            relation: AuthorRelation::Connection,
            tags: TagSet::default(),
            matched_hashtags: vec![],
            engaged: Vec::new(),
            counts: Counts::default(),
            seen: false,
            engaged_by_viewer: false,
        }
    }
}

impl Candidate {
    /// Sorts the engagers by kind then member and drops repeats (a member who commented
    /// twice is one commenter).
    pub fn normalize_engaged(&mut self) {
        if self.engaged.len() > 1 {
            self.engaged.sort_unstable();
            self.engaged.dedup();
        }
    }

    /// Members who engaged, each once whatever they did.
    pub fn distinct_engagers(&self) -> usize {
        match self.engaged.len() {
            0 | 1 => self.engaged.len(),
            n if n <= 16 => (0..n)
                .filter(|&i| {
                    !self.engaged[..i]
                        .iter()
                        .any(|(_, m)| *m == self.engaged[i].1)
                })
                .count(),
            _ => {
                let mut members: Vec<Key> = self.engaged.iter().map(|(_, m)| *m).collect();
                members.sort_unstable();
                members.dedup();
                members.len()
            }
        }
    }

    /// The engagers of one kind, in key order.
    pub fn engagers(&self, kind: EngagementKind) -> impl Iterator<Item = Key> + '_ {
        self.engaged
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, m)| *m)
    }
}

/// Why an item is in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ConnectionPosted(Arc<str>),
    FollowedMemberPosted(Arc<str>),
    ConnectionEngaged(EngagementKind, Arc<str>),
    FollowedHashtag(Arc<str>),
}

/// The reasons of a candidate, strongest first: who wrote it, what connections did, hashtags.
pub fn reasons(c: &Candidate, ids: &impl Ids) -> Vec<Reason> {
    let mut out = Vec::new();
    match c.relation {
        AuthorRelation::Connection => out.push(Reason::ConnectionPosted(ids.member_id(c.author))),
        AuthorRelation::Followed => out.push(Reason::FollowedMemberPosted(ids.member_id(c.author))),
        AuthorRelation::Other => {}
    }
    for kind in [
        EngagementKind::Commented,
        EngagementKind::Shared,
        EngagementKind::Reacted,
    ] {
        let mut named: Vec<Arc<str>> = c.engagers(kind).map(|m| ids.member_id(m)).collect();
        // Named in id order, so the reasons do not depend on how the source keys members.
        named.sort_unstable();
        for m in named.into_iter().take(limits::MAX_NAMED_PER_REASON) {
            out.push(Reason::ConnectionEngaged(kind, m));
        }
    }
    for tag in &c.matched_hashtags {
        out.push(Reason::FollowedHashtag(ids.hashtag(*tag)));
    }
    out
}
