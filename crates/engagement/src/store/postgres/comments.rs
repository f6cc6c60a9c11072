//! Comments and replies, their reactions, and finding them again.

use super::*;

/// The comment created by the first request with `key`, which has committed.
pub(super) async fn first_comment(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
) -> StoreResult<CommentRecord> {
    let row = sqlx::query(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = \
         (SELECT resource_id FROM idempotency_keys WHERE caller = $1 AND request_id = $2)"
    ))
    .bind(&key.caller)
    .bind(&key.request_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| EngagementError::Corrupt("idempotency key without its comment".into()))?;
    comment_from_row(&row)
}

pub(super) async fn fetch_comment(
    conn: &mut PgConnection,
    comment_id: &str,
) -> StoreResult<Option<CommentRecord>> {
    sqlx::query(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = $1"
    ))
    .bind(comment_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(comment_from_row)
    .transpose()
}

/// Serializes the comment writes of one post until the transaction ends.
pub(super) async fn lock_post_comments(conn: &mut PgConnection, post_id: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('comments:' || $1))")
        .bind(post_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the comments of the post of `comment_id` (a comment never changes post) and returns
/// the comment as it is under the lock; `NotFound("comment")` if it is gone.
pub(super) async fn lock_comment(
    conn: &mut PgConnection,
    comment_id: &str,
) -> StoreResult<CommentRecord> {
    let post_id: Option<String> = sqlx::query_scalar("SELECT post_id FROM comments WHERE id = $1")
        .bind(comment_id)
        .fetch_optional(&mut *conn)
        .await?;
    let post_id = post_id.ok_or(EngagementError::NotFound("comment"))?;
    lock_post_comments(conn, &post_id).await?;
    fetch_comment(conn, comment_id)
        .await?
        .ok_or(EngagementError::NotFound("comment"))
}

pub(super) async fn require_comment(
    conn: &mut PgConnection,
    comment_id: &str,
) -> StoreResult<CommentRecord> {
    fetch_comment(conn, comment_id)
        .await?
        .ok_or(EngagementError::NotFound("comment"))
}
