//! A store that times every operation of another into the metrics registry
//! (`pronet_store_operation_duration_seconds{store="post",operation,outcome}`), changing
//! nothing else.

use super::{CreatedPost, PostStore, StoreResult};
use crate::domain::{
    Cursor, IdempotencyKey, PostEdit, PostRecord, RecentPostsQuery, TimeRange, Visibility,
};

/// The `store` label of this service's operations.
pub const STORE_NAME: &str = "post";

/// The store with every operation timed (and traced).
pub type TimedStore = pronet_common::timed::Timed<dyn PostStore>;

pronet_common::timed_store! {
    impl PostStore;
    async fn create_post(&self, post: PostRecord, key: Option<&IdempotencyKey>) -> StoreResult<CreatedPost>;
    async fn import_posts(&self, posts: Vec<PostRecord>) -> StoreResult<(u64, u64)>;
    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>>;
    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>>;
    async fn list_posts_by_author(&self, author_id: &str, visibilities: &[Visibility], range: TimeRange, after: Option<Cursor>, limit: usize) -> StoreResult<Vec<PostRecord>>;
    async fn delete_post(&self, id: &str, delete_time: i64) -> StoreResult<bool>;
    async fn update_post(&self, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>>;
    async fn list_posts_by_hashtag(&self, hashtag: &str, after: Option<Cursor>, limit: usize) -> StoreResult<Vec<PostRecord>>;
    async fn count_hashtag_posts(&self, since: i64, until: i64) -> StoreResult<Vec<(String, i64)>>;
    async fn hashtag_posts(&self, hashtags: &[String], since: i64, until: i64, limit: usize) -> StoreResult<Vec<(String, String)>>;
    async fn list_recent_posts(&self, query: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>>;
}

#[cfg(test)]
mod tests {
    use crate::domain::PostText;
    use pronet_common::db::DatabaseUrl;
    use pronet_common::metrics::Metrics;

    use super::*;

    #[tokio::test]
    async fn times_each_operation_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let database = DatabaseUrl::Sqlite(dir.path().join("post.db"));
        let store = crate::open_store(&database, Some(metrics.clone()))
            .await
            .unwrap();

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

        pronet_common::testing::assert_timed_once(
            &metrics,
            STORE_NAME,
            &["create_post", "get_post"],
        );
    }
}
