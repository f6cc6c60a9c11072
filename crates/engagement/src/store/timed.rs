//! A store that times every operation of another: each call is delegated unchanged and its
//! duration recorded in `pronet_store_operation_duration_seconds`, by operation and outcome.

#[cfg(test)]
use super::HotQueryPlans;
use super::{EngagementStore, StoreResult};
use crate::domain::{
    ActivityRecord, CommentCursor, CommentListing, CommentRecord, EngagementImport, IdempotencyKey,
    ImportCounts, Mute, MuteKind, PostStatsRecord, ReactionQuery, ReactionRecord, ReactionType,
    ShareRecord,
};

/// The `store` label of this service's operations.
pub const STORE_NAME: &str = "engagement";

/// The store with every operation timed (and traced).
pub type TimedStore = pronet_common::timed::Timed<dyn EngagementStore>;

pronet_common::timed_store! {
    impl EngagementStore;
    async fn react(&self, post_id: &str, member_id: &str, reaction_type: ReactionType, now: i64) -> StoreResult<ReactionRecord>;
    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool>;
    async fn create_comment(&self, comment: CommentRecord, key: Option<IdempotencyKey>) -> StoreResult<CommentRecord>;
    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>>;
    async fn update_comment_text(&self, comment_id: &str, text: &str, now: i64) -> StoreResult<CommentRecord>;
    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64>;
    async fn react_to_comment(&self, comment_id: &str, member_id: &str, reaction_type: ReactionType, now: i64) -> StoreResult<CommentRecord>;
    async fn unreact_to_comment(&self, comment_id: &str, member_id: &str) -> StoreResult<CommentRecord>;
    async fn list_comments(&self, post_id: &str, listing: &CommentListing, after: Option<&CommentCursor>, limit: usize) -> StoreResult<Vec<CommentRecord>>;
    async fn list_reactions(&self, query: &ReactionQuery) -> StoreResult<Vec<ReactionRecord>>;
    async fn record_impressions(&self, member_id: &str, post_ids: &[String], day: i64, now: i64) -> StoreResult<usize>;
    async fn list_seen_posts(&self, member_id: &str, post_ids: &[String]) -> StoreResult<Vec<String>>;
    async fn mute(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64>;
    async fn unmute(&self, member_id: &str, mute: &Mute) -> StoreResult<bool>;
    async fn list_mutes(&self, member_id: &str, kind: MuteKind, limit: usize) -> StoreResult<Vec<String>>;
    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord>;
    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts>;
    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>>;
    async fn list_recent_activity(&self, member_ids: &[String], since: i64, limit: usize) -> StoreResult<Vec<ActivityRecord>>;
    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;
    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;
    #[cfg(test)]
    async fn bulk_load(&self, reactions: &[ReactionRecord], comments: &[CommentRecord], shares: &[ShareRecord]) -> StoreResult<()>;
    #[cfg(test)]
    async fn comment_count_drift(&self) -> StoreResult<Vec<String>>;
    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()>;
    #[cfg(test)]
    async fn explain_hot_queries(&self, post_ids: &[String], member_ids: &[String], since: i64, limit: usize) -> StoreResult<HotQueryPlans>;
}
