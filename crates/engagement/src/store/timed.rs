//! A store that times every operation of another: each call is delegated unchanged and its
//! duration recorded in `pronet_store_operation_duration_seconds`, by operation and outcome.

use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::events::{ExportError, ExportSink};
use pronet_common::metrics::Metrics;
use pronet_common::outbox::Outbox;

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

/// Wraps a store, timing each of its operations.
pub struct TimedStore {
    inner: Arc<dyn EngagementStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn new(inner: Arc<dyn EngagementStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl EngagementStore for TimedStore {
    fn outbox(&self) -> Outbox {
        self.inner.outbox()
    }

    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        self.metrics
            .time_store(
                STORE_NAME,
                "export_state",
                self.inner.export_state(since, sink),
            )
            .await
    }

    async fn react(
        &self,
        post_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<ReactionRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "react",
                self.inner.react(post_id, member_id, reaction_type, now),
            )
            .await
    }

    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool> {
        self.metrics
            .time_store(
                STORE_NAME,
                "unreact",
                self.inner.unreact(post_id, member_id),
            )
            .await
    }

    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "create_comment",
                self.inner.create_comment(comment, key),
            )
            .await
    }

    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "get_comment",
                self.inner.get_comment(comment_id),
            )
            .await
    }

    async fn update_comment_text(
        &self,
        comment_id: &str,
        text: &str,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "update_comment_text",
                self.inner.update_comment_text(comment_id, text, now),
            )
            .await
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64> {
        self.metrics
            .time_store(
                STORE_NAME,
                "delete_comment",
                self.inner.delete_comment(comment_id),
            )
            .await
    }

    async fn react_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "react_to_comment",
                self.inner
                    .react_to_comment(comment_id, member_id, reaction_type, now),
            )
            .await
    }

    async fn unreact_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
    ) -> StoreResult<CommentRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "unreact_to_comment",
                self.inner.unreact_to_comment(comment_id, member_id),
            )
            .await
    }

    async fn list_comments(
        &self,
        post_id: &str,
        listing: &CommentListing,
        after: Option<&CommentCursor>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_comments",
                self.inner.list_comments(post_id, listing, after, limit),
            )
            .await
    }

    async fn list_reactions(&self, query: &ReactionQuery) -> StoreResult<Vec<ReactionRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_reactions",
                self.inner.list_reactions(query),
            )
            .await
    }

    async fn record_impressions(
        &self,
        member_id: &str,
        post_ids: &[String],
        day: i64,
        now: i64,
    ) -> StoreResult<usize> {
        self.metrics
            .time_store(
                STORE_NAME,
                "record_impressions",
                self.inner.record_impressions(member_id, post_ids, day, now),
            )
            .await
    }

    async fn list_seen_posts(
        &self,
        member_id: &str,
        post_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_seen_posts",
                self.inner.list_seen_posts(member_id, post_ids),
            )
            .await
    }

    async fn mute(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64> {
        self.metrics
            .time_store(STORE_NAME, "mute", self.inner.mute(member_id, mute, now))
            .await
    }

    async fn unmute(&self, member_id: &str, mute: &Mute) -> StoreResult<bool> {
        self.metrics
            .time_store(STORE_NAME, "unmute", self.inner.unmute(member_id, mute))
            .await
    }

    async fn list_mutes(
        &self,
        member_id: &str,
        kind: MuteKind,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_mutes",
                self.inner.list_mutes(member_id, kind, limit),
            )
            .await
    }

    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        self.metrics
            .time_store(STORE_NAME, "record_share", self.inner.record_share(share))
            .await
    }

    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts> {
        self.metrics
            .time_store(
                STORE_NAME,
                "import_engagement",
                self.inner.import_engagement(batch),
            )
            .await
    }

    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "batch_get_post_stats",
                self.inner.batch_get_post_stats(post_ids),
            )
            .await
    }

    async fn list_recent_activity(
        &self,
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_recent_activity",
                self.inner.list_recent_activity(member_ids, since, limit),
            )
            .await
    }

    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        self.metrics
            .time_store(STORE_NAME, "stored_stats", self.inner.stored_stats())
            .await
    }

    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        self.metrics
            .time_store(STORE_NAME, "counted_stats", self.inner.counted_stats())
            .await
    }

    #[cfg(test)]
    async fn bulk_load(
        &self,
        reactions: &[ReactionRecord],
        comments: &[CommentRecord],
        shares: &[ShareRecord],
    ) -> StoreResult<()> {
        self.metrics
            .time_store(
                STORE_NAME,
                "bulk_load",
                self.inner.bulk_load(reactions, comments, shares),
            )
            .await
    }

    #[cfg(test)]
    async fn comment_count_drift(&self) -> StoreResult<Vec<String>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "comment_count_drift",
                self.inner.comment_count_drift(),
            )
            .await
    }

    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()> {
        self.metrics
            .time_store(STORE_NAME, "analyze", self.inner.analyze())
            .await
    }

    #[cfg(test)]
    async fn explain_hot_queries(
        &self,
        post_ids: &[String],
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<HotQueryPlans> {
        self.metrics
            .time_store(
                STORE_NAME,
                "explain_hot_queries",
                self.inner
                    .explain_hot_queries(post_ids, member_ids, since, limit),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteEngagementStore;

    #[tokio::test]
    async fn operations_are_timed_by_name_and_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let store = TimedStore::new(Arc::new(sqlite), metrics.clone());

        store
            .react("post-1", "member-1", ReactionType::Like, 1_000)
            .await
            .unwrap();
        let stats = store
            .batch_get_post_stats(&["post-1".to_owned()])
            .await
            .unwrap();
        assert_eq!(stats.len(), 1);

        let text = metrics.render();
        for operation in ["react", "batch_get_post_stats"] {
            let line = format!(
                "pronet_store_operation_duration_seconds_count{{store=\"engagement\",operation=\"{operation}\",outcome=\"ok\"}} 1"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
