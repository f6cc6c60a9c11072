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
