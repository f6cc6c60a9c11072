//! The post store: what the service needs from its storage, whatever the backend.
//!
//! The statements both backends run alike are written once, in `sql`.

pub mod postgres;
mod sql;
pub mod sqlite;
pub mod timed;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use pronet_common::events::{EventSource, ExportError};

use crate::domain::{
    Cursor, IdempotencyKey, Mention, PostEdit, PostRecord, RecentPostsQuery, TimeRange, Visibility,
};
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

/// Resolved mentions as a JSON array of `[handle, member_id]` pairs.
pub(crate) fn mentions_to_json(mentions: &[Mention]) -> String {
    let pairs: Vec<[&str; 2]> = mentions
        .iter()
        .map(|m| [m.handle.as_str(), m.member_id.as_str()])
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn mentions_from_json(json: &str) -> StoreResult<Vec<Mention>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(json)
        .map_err(|e| PostError::Corrupt(format!("mentioned_members: {e}")))?;
    Ok(pairs
        .into_iter()
        .map(|(handle, member_id)| Mention { handle, member_id })
        .collect())
}

/// A stored visibility code (the proto's numbers) as a [`Visibility`].
pub(crate) fn visibility_from_code(code: i64) -> StoreResult<Visibility> {
    Visibility::from_i64(code).ok_or_else(|| PostError::Corrupt(format!("post visibility {code}")))
}

/// The keyset bound `(create_time, id)` of a newest-first page: before `after`, or past the
/// newest post when `None`.
pub(crate) fn page_bound(after: Option<Cursor>) -> (i64, String) {
    after.map_or((i64::MAX, String::new()), |c| (c.time, c.id))
}

/// A row count as a SQL integer (SQLite's INTEGER, PostgreSQL's BIGINT); counts beyond it mean
/// "no limit" anyway.
pub(crate) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether `q` can find no post (it names no author and no hashtag, or allows none): both
/// backends then answer without a query.
pub(crate) fn finds_no_recent_posts(q: &RecentPostsQuery) -> bool {
    (q.author_ids.is_empty() && q.hashtags.is_empty()) || q.max_posts == 0
}

/// `posts` with distinct ids, the first of each kept, and how many repeats were dropped.
pub(crate) fn distinct_posts(posts: Vec<PostRecord>) -> (Vec<PostRecord>, u64) {
    let total = posts.len();
    let mut seen = std::collections::HashSet::with_capacity(total);
    let kept: Vec<PostRecord> = posts
        .into_iter()
        .filter(|p| seen.insert(p.id.clone()))
        .collect();
    let repeats = (total - kept.len()) as u64;
    (kept, repeats)
}

/// Its events ([`EventSource`]): the outbox its writes append to, and `export_state`:
/// Exports, from one consistent snapshot, the outbox position of that snapshot and then
/// every post not deleted created at or after `since` (everything when `None`) as
/// `PostCreated` (as it is now: after any edits), streamed in pages.
#[async_trait]
pub trait PostStore: EventSource {
    /// Stores a new post and indexes its hashtags, in one transaction, with `key` when given.
    /// When `key` was used before (also by a racing call), creates nothing and returns the post
    /// created with it first. Appends `PostCreated` unless replayed.
    async fn create_post(
        &self,
        post: PostRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<CreatedPost>;

    /// Stores posts written elsewhere, with their hashtag rows, in one transaction, many rows
    /// per statement: `(imported, skipped)`. A post whose id exists (deleted or not, also
    /// earlier in `posts`) is skipped and left as it is, so a retried import changes nothing.
    /// Appends one `PostCreated` per imported post.
    async fn import_posts(&self, posts: Vec<PostRecord>) -> StoreResult<(u64, u64)>;

    /// The post, unless it does not exist or was deleted (as every read below).
    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>>;

    /// The posts that exist among `ids`, in no particular order, each once.
    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>>;

    /// An author's posts with one of `visibilities` (none for none) created in `range`, newest
    /// first, after `after`.
    async fn list_posts_by_author(
        &self,
        author_id: &str,
        visibilities: &[Visibility],
        range: TimeRange,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>>;

    /// Soft-deletes a post and removes it from the hashtag index, in one transaction. False
    /// when it does not exist or was already deleted (also by a racing call). Appends
    /// `PostDeleted` when it deleted.
    async fn delete_post(&self, id: &str, delete_time: i64) -> StoreResult<bool>;

    /// Replaces a post's text and what was extracted from it, rewriting its hashtag rows in
    /// the same transaction, and appends `PostEdited`. `None` when it does not exist or was
    /// deleted.
    async fn update_post(&self, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>>;

    /// Posts carrying `hashtag` (normalized), newest first, after `after`.
    async fn list_posts_by_hashtag(
        &self,
        hashtag: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>>;

    /// Posts per hashtag created in `[since, until)`, in no particular order (one grouped
    /// query).
    async fn count_hashtag_posts(&self, since: i64, until: i64) -> StoreResult<Vec<(String, i64)>>;

    /// `(hashtag, post id)` of posts carrying one of `hashtags` created in `[since, until)`,
    /// newest first, at most `limit` pairs.
    async fn hashtag_posts(
        &self,
        hashtags: &[String],
        since: i64,
        until: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>>;

    /// Posts since `query.since` by the query's authors (at most `max_posts_per_author` each)
    /// or carrying any of its hashtags, each once, newest first, at most `max_posts`.
    async fn list_recent_posts(&self, query: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>>;
}

/// Posts per page of an export: bounded memory however many posts there are.
pub(crate) const EXPORT_PAGE: usize = 5000;

/// A store failure during an export, as the export reports it.
pub(crate) fn export_error(e: PostError) -> ExportError {
    ExportError::Store(e.to_string())
}
