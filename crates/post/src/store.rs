//! The post store: what the service needs from its storage, whatever the backend.

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
mod tests;

use async_trait::async_trait;

use crate::domain::{Cursor, IdempotencyKey, PostRecord, RecentPostsQuery, Visibility};
use crate::error::PostError;

pub type StoreResult<T> = Result<T, PostError>;

/// What `create_post` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPost {
    /// The new post, or for a replayed key the post first created with it.
    pub post: PostRecord,
    /// The key had been used: nothing was created.
    pub replayed: bool,
}

#[async_trait]
pub trait PostStore: Send + Sync + 'static {
    /// Stores a new post and indexes its hashtags, in one transaction, with `key` when given.
    /// When `key` was used before (also by a racing call), creates nothing and returns the post
    /// created with it first.
    async fn create_post(
        &self,
        post: PostRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<CreatedPost>;

    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>>;

    /// The posts that exist among `ids`, in no particular order, each once.
    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>>;

    /// An author's posts with one of `visibilities` (none for none), newest first, after
    /// `after`.
    async fn list_posts_by_author(
        &self,
        author_id: &str,
        visibilities: &[Visibility],
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>>;

    /// Posts since `query.since` by the query's authors (at most `max_posts_per_author` each)
    /// or carrying any of its hashtags, each once, newest first, at most `max_posts`.
    async fn list_recent_posts(&self, query: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>>;
}
