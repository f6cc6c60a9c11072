//! The engagement store: what the service needs from its storage, whatever the backend.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    ActivityRecord, CommentRecord, PostStatsRecord, ReactionRecord, ReactionType, ShareRecord,
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

    /// Stores a comment and counts it, in one transaction.
    async fn create_comment(&self, comment: CommentRecord) -> StoreResult<CommentRecord>;

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
}
