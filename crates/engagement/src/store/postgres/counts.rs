//! A post's and a comment's counts, changed in the same transaction as their rows.

use super::*;

/// Adds `delta` to each named count of a post, creating its stats row if needed; the addition
/// happens on the row as locked by the upsert, so concurrent writers never lose a count. The
/// column names come from the store only, never from input.
pub(super) async fn add_counts(
    conn: &mut PgConnection,
    post_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let columns: Vec<&str> = changes.iter().map(|(column, _)| *column).collect();
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = post_stats.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO post_stats (post_id, {}) VALUES ($1, {}) \
         ON CONFLICT (post_id) DO UPDATE SET {}",
        columns.join(", "),
        pg_placeholders(2, changes.len()),
        sets.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(post_id);
    for (_, delta) in changes {
        query = query.bind(*delta);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Adds to a comment's reaction counts (and their total, kept for ordering).
pub(super) async fn add_comment_counts(
    conn: &mut PgConnection,
    comment_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let sets: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = {c} + ${}", i + 1))
        .collect();
    let n = changes.len();
    let sql = format!(
        "UPDATE comments SET {}, total_reactions = total_reactions + ${} WHERE id = ${}",
        sets.join(", "),
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(&sql);
    for (_, delta) in changes {
        query = query.bind(*delta);
    }
    let total: i64 = changes.iter().map(|(_, d)| d).sum();
    query.bind(total).bind(comment_id).execute(conn).await?;
    Ok(())
}
