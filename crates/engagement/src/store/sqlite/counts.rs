//! A post's and a comment's counts, changed in the same transaction as their rows.

use super::*;

/// Adds `delta` to each named count of a post, creating its stats row if needed. The column
/// names come from this module only, never from input (so the statements are few and cached).
pub(super) fn add_counts(
    conn: &Connection,
    post_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let columns: Vec<&str> = changes.iter().map(|(column, _)| *column).collect();
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO post_stats (post_id, {}) VALUES (?, {}) \
         ON CONFLICT (post_id) DO UPDATE SET {}",
        columns.join(", "),
        placeholders(changes.len()),
        sets.join(", ")
    );
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(changes.len() + 1);
    params.push(&post_id);
    params.extend(changes.iter().map(|(_, delta)| delta as &dyn ToSql));
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(())
}

/// Adds to a comment's reaction counts (and their total, kept for ordering).
pub(super) fn add_comment_counts(
    conn: &Connection,
    comment_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let sets: Vec<String> = changes
        .iter()
        .map(|(c, _)| format!("{c} = {c} + ?"))
        .collect();
    let sql = format!(
        "UPDATE comments SET {}, total_reactions = total_reactions + ? WHERE id = ?",
        sets.join(", ")
    );
    let total: i64 = changes.iter().map(|(_, d)| d).sum();
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(changes.len() + 2);
    params.extend(changes.iter().map(|(_, delta)| delta as &dyn ToSql));
    params.push(&total);
    params.push(&comment_id);
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(())
}
