//! Rows to records, and the statements of the hot reads (post stats, recent activity).

use super::*;

/// Reaction types are stored as SMALLINT.
pub(super) fn reaction_type_number(reaction_type: ReactionType) -> i16 {
    // Numbers are 1..=6.
    reaction_type.number() as i16
}

pub(super) fn comment_from_row(row: &PgRow) -> StoreResult<CommentRecord> {
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

pub(super) fn stats_from_row(row: &PgRow) -> StoreResult<PostStatsRecord> {
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

pub(super) fn activity_from_row(row: &PgRow) -> StoreResult<ActivityRecord> {
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

/// `ids` without repeats, in their first order.
pub(super) fn distinct(ids: &[String]) -> Vec<&str> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Columns bound as arrays: one statement per table however many rows.
pub(super) fn column<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}
