//! Rows to records, and the statements of the hot reads (post stats, recent activity).

use super::*;

pub(super) fn comment_from_row(row: &SqliteRow) -> StoreResult<CommentRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.try_get(count_column(t))?;
    }
    Ok(CommentRecord {
        id: row.try_get("id")?,
        post_id: row.try_get("post_id")?,
        member_id: row.try_get("member_id")?,
        text: row.try_get("text")?,
        create_time: row.try_get("create_time")?,
        parent_id: row.try_get("parent_id")?,
        update_time: row.try_get("update_time")?,
        reply_count: row.try_get("reply_count")?,
        reactions,
    })
}

/// Used by the test-only consistency checks; reads go through `stats_from_json`.
#[cfg(test)]
pub(super) fn stats_from_row(row: &SqliteRow) -> StoreResult<PostStatsRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.try_get(count_column(t))?;
    }
    Ok(PostStatsRecord {
        post_id: row.try_get("post_id")?,
        reactions,
        comments: row.try_get(COMMENT_COUNT)?,
        shares: row.try_get(SHARE_COUNT)?,
        impressions: row.try_get(IMPRESSION_COUNT)?,
        unique_viewers: row.try_get(UNIQUE_VIEWER_COUNT)?,
    })
}

pub(super) fn activity_from_row(row: &SqliteRow) -> StoreResult<ActivityRecord> {
    let kind: i64 = row.try_get("kind")?;
    let kind = match kind {
        KIND_REACTION => ActivityKind::Reaction(reaction_type_from(row.try_get("reaction_type")?)?),
        KIND_COMMENT => ActivityKind::Comment,
        KIND_SHARE => ActivityKind::Share,
        other => return Err(EngagementError::Corrupt(format!("activity kind {other}"))),
    };
    Ok(ActivityRecord {
        member_id: row.try_get("member_id")?,
        post_id: row.try_get("post_id")?,
        kind,
        create_time: row.try_get("create_time")?,
    })
}

pub(super) fn stats_from_json(r: StatsRow) -> PostStatsRecord {
    let mut reactions = [0i64; 6];
    for (t, n) in ReactionType::ALL.iter().zip([r.1, r.2, r.3, r.4, r.5, r.6]) {
        reactions[t.index()] = n;
    }
    PostStatsRecord {
        post_id: r.0,
        reactions,
        comments: r.7,
        shares: r.8,
        impressions: r.9,
        unique_viewers: r.10,
    }
}

/// The stats of the posts in a bound JSON array of ids, as one JSON array of [`StatsRow`]s
/// (each id looked up by primary key).
pub(super) fn stats_json_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let reactions: Vec<&str> = ReactionType::ALL.iter().map(|&t| count_column(t)).collect();
        format!(
            "SELECT json_group_array(json_array(post_id, {}, {COMMENT_COUNT}, {SHARE_COUNT}, \
             {IMPRESSION_COUNT}, {UNIQUE_VIEWER_COUNT})) FROM post_stats \
             WHERE post_id IN (SELECT value FROM json_each(?))",
            reactions.join(", ")
        )
    })
}

pub(super) fn activity_sql(n: usize) -> String {
    let members = placeholders(n);
    let branch = |table: &str, kind: i64, reaction_type: &str| {
        format!(
            "SELECT * FROM (SELECT member_id, post_id, {kind} AS kind, \
             {reaction_type} AS reaction_type, create_time FROM {table} \
             WHERE member_id IN ({members}) AND create_time >= ? \
             ORDER BY create_time DESC, member_id, post_id LIMIT ?)"
        )
    };
    format!(
        "SELECT member_id, post_id, kind, reaction_type, create_time FROM ({} UNION ALL {} \
         UNION ALL {}) ORDER BY create_time DESC, kind, member_id, post_id LIMIT ?",
        branch("reactions", KIND_REACTION, "reaction_type"),
        branch("comments", KIND_COMMENT, "0"),
        branch("shares", KIND_SHARE, "0"),
    )
}

pub(super) fn bind_activity<'q>(
    mut query: SqliteQuery<'q>,
    member_ids: &'q [String],
    since: i64,
    limit: usize,
) -> SqliteQuery<'q> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    for _ in 0..3 {
        for id in member_ids {
            query = query.bind(id);
        }
        query = query.bind(since).bind(limit);
    }
    query.bind(limit)
}

/// [`comment_from_row`] for a comment a write reads.
pub(super) fn comment_from_written_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CommentRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.get(count_column(t))?;
    }
    Ok(CommentRecord {
        id: row.get("id")?,
        post_id: row.get("post_id")?,
        member_id: row.get("member_id")?,
        text: row.get("text")?,
        create_time: row.get("create_time")?,
        parent_id: row.get("parent_id")?,
        update_time: row.get("update_time")?,
        reply_count: row.get("reply_count")?,
        reactions,
    })
}
