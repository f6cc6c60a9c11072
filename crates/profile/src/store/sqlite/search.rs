//! Search: the index rows written with a profile, and the filters of a query.

use super::*;

/// Replaces the member's rows in the filter tables ([`INDEX_TABLES`]).
pub(super) fn write_index_rows(
    conn: &rusqlite::Connection,
    id: &str,
    doc: &SearchDocument,
) -> StoreResult<()> {
    for table in &INDEX_TABLES {
        conn.prepare_cached(table.clear)?.execute([id])?;
        let keys = (table.keys)(doc);
        if keys.is_empty() {
            continue;
        }
        // One cached single-row statement per key: in-process, as fast as a multi-row insert.
        let mut insert = conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {} (member_id, {}) VALUES (?1, ?2)",
            table.name, table.column
        ))?;
        for k in keys {
            insert.execute((id, k))?;
        }
    }
    Ok(())
}

/// The filters of a search on `profiles p`, and their values in order.
pub(super) fn search_filters(q: &SearchQuery, searcher: &str) -> (String, Vec<String>) {
    let mut sql = String::from(
        " AND p.id <> ? AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ? \
         AND blocked_id = p.id) AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = ? \
         AND blocker_id = p.id)",
    );
    let mut binds = vec![searcher.to_owned(); 3];
    for key in &q.skill_keys {
        sql.push_str(" AND p.id IN (SELECT member_id FROM profile_skills WHERE skill_key = ?)");
        binds.push(key.clone());
    }
    if let Some(key) = &q.company_key {
        sql.push_str(
            " AND p.id IN (SELECT member_id FROM profile_companies WHERE company_key = ?)",
        );
        binds.push(key.clone());
    }
    if let Some(key) = &q.location_key {
        sql.push_str(" AND p.location_key = ?");
        binds.push(key.clone());
    }
    if let Some(key) = &q.industry_key {
        sql.push_str(" AND p.industry_key = ?");
        binds.push(key.clone());
    }
    if q.open_to_work {
        sql.push_str(" AND p.open_to_work = 1");
    }
    (sql, binds)
}
