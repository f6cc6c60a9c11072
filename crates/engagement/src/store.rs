//! The engagement store: what the service needs from its storage, whatever the backend.
//!
//! Both backends keep the same invariants: a post's counts change in the same transaction as
//! the rows they count, so they never drift from them, also under concurrent writers; a member
//! has at most one reaction and one share per post; a create request retried with the same
//! idempotency key creates nothing more.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    ActivityRecord, CommentRecord, IdempotencyKey, PostStatsRecord, ReactionRecord, ReactionType,
    ShareRecord,
};
use crate::error::EngagementError;

pub type StoreResult<T> = Result<T, EngagementError>;

#[async_trait]
pub trait EngagementStore: Send + Sync + 'static {
    /// Sets a member's reaction to a post and its counts, in one transaction. Reacting again
    /// with another type changes the type (and moves the count); with the same type it changes
    /// nothing. Returns the reaction, created when the member first reacted.
    async fn react(
        &self,
        post_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<ReactionRecord>;

    /// Stores a comment and counts it, in one transaction. With a `key` already used, returns
    /// the comment its first request created and stores nothing, also when the two race.
    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord>;

    /// Records a share and counts it, in one transaction; a repeat by the same member returns
    /// the first share unchanged and is not counted again.
    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord>;

    /// Stats of every post in `post_ids`, in the same order; posts without engagement (or
    /// unknown ones) get zeros.
    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>>;

    /// Reactions, comments and shares by `member_ids` created at or after `since`, newest
    /// first, at most `limit`.
    async fn list_recent_activity(
        &self,
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>>;

    // Test support: what the store suite needs to look behind the API, on either backend.

    /// Every stored `post_stats` row.
    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;

    /// The counts of every post with rows, counted from the rows.
    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;

    /// Inserts many rows in large transactions, bypassing the per-write path, then sets the
    /// counts of the posts they touch from their rows. For the bench's seed.
    #[cfg(test)]
    async fn bulk_load(
        &self,
        reactions: &[ReactionRecord],
        comments: &[CommentRecord],
        shares: &[ShareRecord],
    ) -> StoreResult<()>;

    /// Refreshes the planner's statistics.
    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()>;

    /// The plans of the statements `batch_get_post_stats` and `list_recent_activity` run for
    /// these arguments, as the backend explains them (executing them where it can).
    #[cfg(test)]
    async fn explain_hot_queries(
        &self,
        post_ids: &[String],
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<HotQueryPlans>;
}

/// How the backend runs the hot read queries.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct HotQueryPlans {
    pub backend: &'static str,
    pub post_stats: String,
    pub recent_activity: String,
}

/// The `post_stats` column counting a reaction type.
fn count_column(reaction_type: ReactionType) -> &'static str {
    match reaction_type {
        ReactionType::Like => "like_count",
        ReactionType::Celebrate => "celebrate_count",
        ReactionType::Support => "support_count",
        ReactionType::Love => "love_count",
        ReactionType::Insightful => "insightful_count",
        ReactionType::Funny => "funny_count",
    }
}

const COMMENT_COUNT: &str = "comment_count";
const SHARE_COUNT: &str = "share_count";

/// Activity kinds as numbered in the recent-activity query.
const KIND_REACTION: i64 = 1;
const KIND_COMMENT: i64 = 2;
const KIND_SHARE: i64 = 3;

fn reaction_type_from(n: i64) -> StoreResult<ReactionType> {
    ReactionType::from_number(n)
        .ok_or_else(|| EngagementError::Corrupt(format!("reaction type {n}")))
}

/// Every post's counts straight from its rows, in the columns of `post_stats`; the same SQL on
/// both backends.
#[cfg(test)]
const COUNTED_FROM_ROWS: &str = "SELECT post_id, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 1 THEN 1 ELSE 0 END) AS BIGINT) AS like_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 2 THEN 1 ELSE 0 END) AS BIGINT) AS celebrate_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 3 THEN 1 ELSE 0 END) AS BIGINT) AS support_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 4 THEN 1 ELSE 0 END) AS BIGINT) AS love_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 5 THEN 1 ELSE 0 END) AS BIGINT) AS insightful_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 6 THEN 1 ELSE 0 END) AS BIGINT) AS funny_count, \
    CAST(SUM(CASE WHEN kind = 2 THEN 1 ELSE 0 END) AS BIGINT) AS comment_count, \
    CAST(SUM(CASE WHEN kind = 3 THEN 1 ELSE 0 END) AS BIGINT) AS share_count \
    FROM (SELECT post_id, 1 AS kind, reaction_type FROM reactions \
          UNION ALL SELECT post_id, 2, 0 FROM comments \
          UNION ALL SELECT post_id, 3, 0 FROM shares) AS engaged \
    GROUP BY post_id";

#[cfg(test)]
mod tests;
