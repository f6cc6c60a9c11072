//! A store that times every operation of another into the metrics registry
//! (`pronet_store_operation_duration_seconds{store="post",operation,outcome}`), changing
//! nothing else.

use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::events::{ExportError, ExportSink};
use pronet_common::metrics::Metrics;
use pronet_common::outbox::Outbox;

use super::{CreatedPost, PostStore, StoreResult};
use crate::domain::{
    Cursor, IdempotencyKey, PostEdit, PostRecord, RecentPostsQuery, TimeRange, Visibility,
};

/// The `store` label of this service's operations.
const STORE_NAME: &str = "post";

pub struct TimedStore {
    inner: Arc<dyn PostStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn new(inner: Arc<dyn PostStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl PostStore for TimedStore {
    async fn create_post(
        &self,
        post: PostRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<CreatedPost> {
        self.metrics
            .time_store(STORE_NAME, "create_post", self.inner.create_post(post, key))
            .await
    }

    async fn import_posts(&self, posts: Vec<PostRecord>) -> StoreResult<(u64, u64)> {
        self.metrics
            .time_store(STORE_NAME, "import_posts", self.inner.import_posts(posts))
            .await
    }

    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        self.metrics
            .time_store(STORE_NAME, "get_post", self.inner.get_post(id))
            .await
    }

    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "batch_get_posts",
                self.inner.batch_get_posts(ids),
            )
            .await
    }

    async fn list_posts_by_author(
        &self,
        author_id: &str,
        visibilities: &[Visibility],
        range: TimeRange,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_posts_by_author",
                self.inner
                    .list_posts_by_author(author_id, visibilities, range, after, limit),
            )
            .await
    }

    async fn delete_post(&self, id: &str, delete_time: i64) -> StoreResult<bool> {
        self.metrics
            .time_store(
                STORE_NAME,
                "delete_post",
                self.inner.delete_post(id, delete_time),
            )
            .await
    }

    async fn update_post(&self, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>> {
        self.metrics
            .time_store(STORE_NAME, "update_post", self.inner.update_post(id, edit))
            .await
    }

    async fn list_posts_by_hashtag(
        &self,
        hashtag: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_posts_by_hashtag",
                self.inner.list_posts_by_hashtag(hashtag, after, limit),
            )
            .await
    }

    async fn count_hashtag_posts(&self, since: i64, until: i64) -> StoreResult<Vec<(String, i64)>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "count_hashtag_posts",
                self.inner.count_hashtag_posts(since, until),
            )
            .await
    }

    async fn hashtag_posts(
        &self,
        hashtags: &[String],
        since: i64,
        until: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "hashtag_posts",
                self.inner.hashtag_posts(hashtags, since, until, limit),
            )
            .await
    }

    async fn list_recent_posts(&self, query: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_recent_posts",
                self.inner.list_recent_posts(query),
            )
            .await
    }

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
}

#[cfg(test)]
mod tests {
    use crate::domain::PostText;
    use crate::store::sqlite::SqlitePostStore;

    use super::*;

    #[tokio::test]
    async fn times_each_operation_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqlitePostStore::open(&dir.path().join("post.db"))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let store = TimedStore::new(Arc::new(sqlite.clone()), metrics.clone());

        let post = PostRecord::new(
            "p1".into(),
            "alice".into(),
            PostText::parse("hello #rust").unwrap(),
            Visibility::Public,
            1_000,
        );
        let created = store.create_post(post.clone(), None).await.unwrap();
        assert_eq!(created.post, post);
        assert_eq!(store.get_post("p1").await.unwrap(), Some(post));

        let text = metrics.render();
        for operation in ["create_post", "get_post"] {
            let line = format!(
                "pronet_store_operation_duration_seconds_count{{store=\"post\",operation=\"{operation}\",outcome=\"ok\"}} 1"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        sqlite.close().await;
    }
}
