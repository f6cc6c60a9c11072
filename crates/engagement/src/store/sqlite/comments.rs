//! Comments and replies, their reactions, and finding them again.

use super::*;

/// The comment created by the first request with `key`.
pub(super) fn first_comment(conn: &Connection, key: &IdempotencyKey) -> StoreResult<CommentRecord> {
    conn.prepare_cached(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = \
         (SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?)"
    ))?
    .query_row((&key.caller, &key.request_id), comment_from_written_row)
    .optional()?
    .ok_or_else(|| EngagementError::Corrupt("idempotency key without its comment".into()))
}

pub(super) fn fetch_comment(
    conn: &Connection,
    comment_id: &str,
) -> StoreResult<Option<CommentRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = ?"
        ))?
        .query_row([comment_id], comment_from_written_row)
        .optional()?)
}

pub(super) fn require_comment(conn: &Connection, comment_id: &str) -> StoreResult<CommentRecord> {
    fetch_comment(conn, comment_id)?.ok_or(EngagementError::NotFound("comment"))
}

pub(super) fn create_comment_in(
    conn: &Connection,
    comment: CommentRecord,
    key: Option<IdempotencyKey>,
) -> StoreResult<CommentRecord> {
    if let Some(key) = &key {
        // The key first: a retry finds it and returns the first comment. (The one writer
        // connection makes racing retries take turns.)
        let claimed =
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (caller, request_id) DO NOTHING",
            )?
            .execute((
                &key.caller,
                &key.request_id,
                &comment.id,
                comment.create_time,
            ))? == 1;
        if !claimed {
            return first_comment(conn, key);
        }
    }
    let mut comment = comment;
    if let Some(parent_id) = comment.parent_id.take() {
        let parent = fetch_comment(conn, &parent_id)?
            .filter(|p| p.post_id == comment.post_id)
            .ok_or(EngagementError::NotFound("comment"))?;
        // One level of threading: a reply to a reply answers its top-level comment.
        let top = parent.parent_id.unwrap_or(parent.id);
        conn.prepare_cached("UPDATE comments SET reply_count = reply_count + 1 WHERE id = ?")?
            .execute([&top])?;
        comment.parent_id = Some(top);
    }
    conn.prepare_cached(
        "INSERT INTO comments (id, post_id, member_id, text, create_time, parent_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute((
        &comment.id,
        &comment.post_id,
        &comment.member_id,
        &comment.text,
        comment.create_time,
        &comment.parent_id,
    ))?;
    add_counts(conn, &comment.post_id, &[(COMMENT_COUNT, 1)])?;
    outbox::append_sqlite(
        conn,
        &[events::at(
            comment.create_time,
            events::comment_created(&comment),
        )],
    )?;
    Ok(comment)
}

pub(super) fn update_comment_text_in(
    conn: &Connection,
    comment_id: &str,
    text: &str,
    now: i64,
) -> StoreResult<CommentRecord> {
    conn.prepare_cached("UPDATE comments SET text = ?, update_time = ? WHERE id = ?")?
        .execute((text, now, comment_id))?;
    require_comment(conn, comment_id)
}

pub(super) fn delete_comment_in(conn: &Connection, comment_id: &str) -> StoreResult<u64> {
    let comment = require_comment(conn, comment_id)?;
    let replies = match &comment.parent_id {
        None => {
            conn.prepare_cached(
                "DELETE FROM comment_reactions WHERE comment_id IN \
                     (SELECT id FROM comments WHERE parent_id = ?)",
            )?
            .execute([comment_id])?;
            let mut replies: Vec<(String, String, i64)> = conn
                .prepare_cached(
                    "DELETE FROM comments WHERE parent_id = ? RETURNING id, member_id, create_time",
                )?
                .query_map([comment_id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            replies.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            replies
        }
        Some(parent) => {
            conn.prepare_cached("UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?")?
                .execute([parent])?;
            Vec::new()
        }
    };
    conn.prepare_cached("DELETE FROM comment_reactions WHERE comment_id = ?")?
        .execute([comment_id])?;
    conn.prepare_cached("DELETE FROM comments WHERE id = ?")?
        .execute([comment_id])?;
    let removed = replies.len() as u64 + 1;
    add_counts(
        conn,
        &comment.post_id,
        &[(COMMENT_COUNT, -(removed as i64))],
    )?;
    outbox::append_sqlite(
        conn,
        &crate::store::deleted_comment_events(&comment, &replies),
    )?;
    Ok(removed)
}

pub(super) fn react_to_comment_in(
    conn: &Connection,
    comment_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<CommentRecord> {
    require_comment(conn, comment_id)?;
    let existing: Option<i64> = conn
        .prepare_cached(
            "SELECT reaction_type FROM comment_reactions WHERE comment_id = ? AND member_id = ?",
        )?
        .query_row((comment_id, member_id), |row| row.get(0))
        .optional()?;
    match existing {
        None => {
            conn.prepare_cached(
                "INSERT INTO comment_reactions (comment_id, member_id, reaction_type, \
                     create_time) VALUES (?, ?, ?, ?)",
            )?
            .execute((comment_id, member_id, reaction_type.number(), now))?;
            add_comment_counts(conn, comment_id, &[(count_column(reaction_type), 1)])?;
        }
        Some(old) => {
            let old = reaction_type_from(old)?;
            if old != reaction_type {
                conn.prepare_cached(
                    "UPDATE comment_reactions SET reaction_type = ? \
                         WHERE comment_id = ? AND member_id = ?",
                )?
                .execute((reaction_type.number(), comment_id, member_id))?;
                add_comment_counts(
                    conn,
                    comment_id,
                    &[(count_column(old), -1), (count_column(reaction_type), 1)],
                )?;
            }
        }
    }
    require_comment(conn, comment_id)
}

pub(super) fn unreact_to_comment_in(
    conn: &Connection,
    comment_id: &str,
    member_id: &str,
) -> StoreResult<CommentRecord> {
    require_comment(conn, comment_id)?;
    let removed: Option<i64> = conn
        .prepare_cached(
            "DELETE FROM comment_reactions WHERE comment_id = ? AND member_id = ? \
             RETURNING reaction_type",
        )?
        .query_row((comment_id, member_id), |row| row.get(0))
        .optional()?;
    if let Some(old) = removed {
        add_comment_counts(
            conn,
            comment_id,
            &[(count_column(reaction_type_from(old)?), -1)],
        )?;
    }
    require_comment(conn, comment_id)
}
