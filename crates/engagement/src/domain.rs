//! Engagement-service types and rules: reactions, comments, shares, their counts, and every
//! limit in one place.

use pronet_common::pagination::page_size;

/// Every limit of the engagement service.
pub mod limits {
    use pronet_common::input::TextRule;

    pub const COMMENT_TEXT: TextRule = TextRule::multi_line(1, 1250);
    pub const MAX_BATCH_STATS: usize = 5000;
    pub const MAX_ACTIVITY_MEMBERS: usize = 5000;
    pub const DEFAULT_MAX_ACTIVITIES: usize = 1000;
    pub const MAX_ACTIVITIES: usize = 10_000;
    pub const DEFAULT_COMMENT_PAGE: usize = 20;
    pub const MAX_COMMENT_PAGE: usize = 100;
    pub const DEFAULT_REACTION_PAGE: usize = 50;
    pub const MAX_REACTION_PAGE: usize = 200;
    /// Connections of the viewer listed first by `ListReactions`.
    pub const MAX_CONNECTIONS_FIRST: usize = 5000;
    pub const MAX_IMPRESSIONS: usize = 100;
    /// Items (reactions, comments, shares and impressions together) one import may carry.
    pub const MAX_IMPORT_ITEMS: usize = 10_000;
    pub const MAX_SEEN_POSTS: usize = 5000;
}

/// Microseconds in a day: impressions count once per member, post and UTC day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The UTC day (days since the epoch) of a time in microseconds.
pub fn utc_day(micros: i64) -> i64 {
    micros.div_euclid(DAY_MICROS)
}

/// The six reactions, numbered as in the proto (which is also how they are stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReactionType {
    Like = 1,
    Celebrate = 2,
    Support = 3,
    Love = 4,
    Insightful = 5,
    Funny = 6,
}

impl ReactionType {
    /// Every reaction type, in enum order.
    pub const ALL: [ReactionType; 6] = [
        Self::Like,
        Self::Celebrate,
        Self::Support,
        Self::Love,
        Self::Insightful,
        Self::Funny,
    ];

    pub fn number(self) -> i64 {
        self as i64
    }

    /// The reaction type numbered `n`; `None` for 0 (unspecified) and unknown numbers.
    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.number() == n)
    }

    /// Position in [`ReactionType::ALL`].
    pub fn index(self) -> usize {
        self as usize - 1
    }
}

/// The most activities a `ListRecentActivity` call returns: 0 means the default, larger values
/// are capped, negative ones refused.
pub fn max_activities(raw: i32) -> Result<usize, String> {
    page_size(raw, limits::DEFAULT_MAX_ACTIVITIES, limits::MAX_ACTIVITIES)
}

/// One member's reaction to one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionRecord {
    pub post_id: String,
    pub member_id: String,
    pub reaction_type: ReactionType,
    /// When the member first reacted to the post, whatever the type now.
    pub create_time: i64,
}

/// A comment on a post, or a reply to a top-level comment, with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRecord {
    pub id: String,
    pub post_id: String,
    pub member_id: String,
    pub text: String,
    pub create_time: i64,
    /// The top-level comment a reply answers; `None` for a top-level comment.
    pub parent_id: Option<String>,
    /// When the text was last edited; `None` if never.
    pub update_time: Option<i64>,
    /// Replies to a top-level comment.
    pub reply_count: i64,
    /// Reactions per type, indexed by [`ReactionType::index`].
    pub reactions: [i64; 6],
}

impl CommentRecord {
    /// A new comment without replies or reactions.
    pub fn new(id: String, post_id: String, member_id: String, text: String, now: i64) -> Self {
        Self {
            id,
            post_id,
            member_id,
            text,
            create_time: now,
            parent_id: None,
            update_time: None,
            reply_count: 0,
            reactions: [0; 6],
        }
    }

    pub fn total_reactions(&self) -> i64 {
        self.reactions
            .iter()
            .fold(0i64, |sum, n| sum.saturating_add(*n))
    }

    /// Where this comment sits in a list ordered by `order`.
    pub fn cursor(&self) -> CommentCursor {
        CommentCursor {
            score: self.reply_count.saturating_add(self.total_reactions()),
            create_time: self.create_time,
            id: self.id.clone(),
        }
    }
}

/// How top-level comments are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentOrder {
    /// Most replies and reactions first, then newest.
    MostRelevant,
    /// Newest first.
    Newest,
}

/// Which comments of a post to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentListing {
    TopLevel(CommentOrder),
    /// The replies to one top-level comment, oldest first.
    Replies(String),
}

/// A keyset position in a list of comments: the last comment of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentCursor {
    /// Replies plus reactions (used by the most-relevant order only).
    pub score: i64,
    pub create_time: i64,
    pub id: String,
}

/// Which reactions to a post to list, newest first (ties by member id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionQuery {
    pub post_id: String,
    pub reaction_type: Option<ReactionType>,
    /// Only reactions by these members (`include`) or only by others (`!include`).
    pub members: Vec<String>,
    pub include: bool,
    /// The `(create_time, member_id)` of the last reaction of the previous page.
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    pub id: String,
    pub post_id: String,
    pub member_id: String,
    pub create_time: i64,
}

/// What a member's negative feedback on their feed is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MuteKind {
    /// A hidden post.
    Post,
    /// A muted hashtag.
    Hashtag,
    /// A muted author ("not interested in this author").
    Author,
}

impl MuteKind {
    /// The number stored in `feed_mutes.kind`.
    pub fn number(self) -> i64 {
        match self {
            MuteKind::Post => 1,
            MuteKind::Hashtag => 2,
            MuteKind::Author => 3,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(MuteKind::Post),
            2 => Some(MuteKind::Hashtag),
            3 => Some(MuteKind::Author),
            _ => None,
        }
    }

    /// Most mutes of this kind a member may hold: hidden posts are not capped (only those of
    /// the feed's window matter to it); hashtags and authors are, since every feed of the
    /// member checks them.
    pub fn cap(self) -> Option<usize> {
        match self {
            MuteKind::Post => None,
            MuteKind::Hashtag | MuteKind::Author => Some(MAX_MUTES),
        }
    }

    /// What the target is, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            MuteKind::Post => "hidden posts",
            MuteKind::Hashtag => "muted hashtags",
            MuteKind::Author => "muted authors",
        }
    }
}

/// Most muted hashtags, and most muted authors, per member.
pub const MAX_MUTES: usize = 1000;

/// One piece of negative feedback: a hidden post, a muted hashtag (lowercase, without `#`) or
/// a muted author.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mute {
    pub kind: MuteKind,
    pub target: String,
}

impl Mute {
    pub fn new(kind: MuteKind, target: impl Into<String>) -> Self {
        Self {
            kind,
            target: target.into(),
        }
    }
}

pub use pronet_common::idempotency::IdempotencyKey;

/// Engagement counts of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostStatsRecord {
    pub post_id: String,
    /// Reactions per type, indexed by [`ReactionType::index`].
    pub reactions: [i64; 6],
    pub comments: i64,
    pub shares: i64,
    /// Member-days the post was shown.
    pub impressions: i64,
    /// Distinct members it was shown to.
    pub unique_viewers: i64,
}

impl PostStatsRecord {
    /// A post nobody engaged with (or one we never heard of).
    pub fn zero(post_id: &str) -> Self {
        Self {
            post_id: post_id.to_owned(),
            reactions: [0; 6],
            comments: 0,
            shares: 0,
            impressions: 0,
            unique_viewers: 0,
        }
    }

    pub fn reaction_count(&self, reaction_type: ReactionType) -> i64 {
        self.reactions[reaction_type.index()]
    }

    /// The reaction types with a non-zero count, in enum order.
    pub fn non_zero_reactions(&self) -> impl Iterator<Item = (ReactionType, i64)> + '_ {
        ReactionType::ALL
            .into_iter()
            .map(|t| (t, self.reaction_count(t)))
            .filter(|(_, n)| *n != 0)
    }

    pub fn total_reactions(&self) -> i64 {
        // Saturating: stored counts come from outside this process and must not panic us.
        self.reactions
            .iter()
            .fold(0i64, |sum, n| sum.saturating_add(*n))
    }
}

/// A member shown a post at a time, as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpressionRecord {
    pub post_id: String,
    pub member_id: String,
    /// When the post was shown; it counts for that UTC day.
    pub view_time: i64,
}

/// Engagement recorded elsewhere, imported in one transaction. Comments are top-level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngagementImport {
    /// Each with the time the member reacted (`create_time`), applied in order as `React`
    /// would apply them.
    pub reactions: Vec<ReactionRecord>,
    pub comments: Vec<CommentRecord>,
    pub shares: Vec<ShareRecord>,
    pub impressions: Vec<ImpressionRecord>,
}

impl EngagementImport {
    /// Items of all four kinds.
    pub fn len(&self) -> usize {
        self.reactions.len() + self.comments.len() + self.shares.len() + self.impressions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an import wrote: new rows (for reactions, also changed types) of each kind, and the
/// items skipped as duplicates of what was stored or earlier in the batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub reactions: u64,
    pub comments: u64,
    pub shares: u64,
    pub impressions: u64,
    pub skipped: u64,
}

/// What kind of engagement an activity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Reaction(ReactionType),
    Comment,
    Share,
}

/// One member's engagement with one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRecord {
    pub member_id: String,
    pub post_id: String,
    pub kind: ActivityKind,
    pub create_time: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pronet_common::auth::Caller;

    #[test]
    fn reaction_types_map_to_their_proto_numbers_and_back() {
        for (i, t) in ReactionType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(t.number(), i as i64 + 1);
            assert_eq!(ReactionType::from_number(t.number()), Some(t));
        }
        assert_eq!(ReactionType::from_number(1), Some(ReactionType::Like));
        assert_eq!(ReactionType::from_number(6), Some(ReactionType::Funny));
    }

    #[test]
    fn unspecified_and_unknown_reaction_numbers_are_refused() {
        for n in [0, -1, 7, i64::MAX, i64::MIN] {
            assert_eq!(ReactionType::from_number(n), None, "{n}");
        }
    }

    #[test]
    fn max_activities_defaults_caps_and_refuses_negative() {
        assert_eq!(max_activities(0).unwrap(), 1000);
        assert_eq!(max_activities(5).unwrap(), 5);
        assert_eq!(max_activities(10_000).unwrap(), 10_000);
        assert_eq!(max_activities(i32::MAX).unwrap(), 10_000);
        assert!(max_activities(-1).is_err());
        assert!(max_activities(i32::MIN).is_err());
    }

    #[test]
    fn idempotency_keys_are_scoped_by_caller() {
        let member = IdempotencyKey::new(&Caller::Member("a".into()), "r1".into());
        let service = IdempotencyKey::new(&Caller::Service("a".into()), "r1".into());
        assert_eq!(member.caller, "member:a");
        assert_eq!(service.caller, "service:a");
        assert_eq!(member.request_id, "r1");
        assert_ne!(member, service);
    }

    #[test]
    fn limits_match_the_contract() {
        assert_eq!(limits::COMMENT_TEXT.min_chars, 1);
        assert_eq!(limits::COMMENT_TEXT.max_chars, 1250);
        assert!(limits::COMMENT_TEXT.parse("line one\nline two").is_ok());
        assert!(limits::COMMENT_TEXT.parse(&"é".repeat(1250)).is_ok());
        assert!(limits::COMMENT_TEXT.parse(&"é".repeat(1251)).is_err());
        assert!(limits::COMMENT_TEXT.parse(" \n ").is_err());
        assert_eq!(limits::MAX_BATCH_STATS, 5000);
        assert_eq!(limits::MAX_ACTIVITY_MEMBERS, 5000);
    }

    #[test]
    fn stats_list_non_zero_reactions_in_enum_order_and_sum_them() {
        let mut stats = PostStatsRecord::zero("p1");
        assert_eq!(stats.non_zero_reactions().count(), 0);
        assert_eq!(stats.total_reactions(), 0);
        stats.reactions[ReactionType::Funny.index()] = 2;
        stats.reactions[ReactionType::Like.index()] = 3;
        let listed: Vec<_> = stats.non_zero_reactions().collect();
        assert_eq!(listed, [(ReactionType::Like, 3), (ReactionType::Funny, 2)]);
        assert_eq!(stats.total_reactions(), 5);
        stats.reactions = [i64::MAX; 6];
        assert_eq!(stats.total_reactions(), i64::MAX);
    }
}
