//! Search: the index rows written with a profile, and the filters of a query.

use super::*;

/// Replaces the member's rows in the filter tables ([`INDEX_TABLES`]).
pub(super) async fn write_index_rows(
    tx: &mut PgConnection,
    id: &str,
    doc: &SearchDocument,
) -> StoreResult<()> {
    // Numbered once: every profile written (a thousand an import) clears its rows.
    static CLEAR: LazyLock<[String; 3]> = LazyLock::new(|| INDEX_TABLES.map(|t| numbered(t.clear)));
    for (table, clear) in INDEX_TABLES.iter().zip(CLEAR.iter()) {
        sqlx::query(clear).bind(id).execute(&mut *tx).await?;
        sqlx::query(&format!(
            "INSERT INTO {} (member_id, {}) SELECT $1, k FROM unnest($2::text[]) k \
             ON CONFLICT DO NOTHING",
            table.name, table.column
        ))
        .bind(id)
        .bind((table.keys)(doc))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The filters of a search on `profiles p`; the searcher is `$1`, the filter values follow
/// from `$first` on, in the order returned.
pub(super) fn search_filters(q: &SearchQuery, first: usize) -> (String, Vec<String>) {
    let mut sql = String::from(
        " AND p.id <> $1 AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 \
         AND blocked_id = p.id) AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = $1 \
         AND blocker_id = p.id)",
    );
    let mut binds: Vec<String> = Vec::new();
    let next = |binds: &mut Vec<String>, v: &String| {
        binds.push(v.clone());
        format!("${}", first + binds.len() - 1)
    };
    for key in &q.skill_keys {
        let n = next(&mut binds, key);
        sql.push_str(&format!(
            " AND p.id IN (SELECT member_id FROM profile_skills WHERE skill_key = {n})"
        ));
    }
    if let Some(key) = &q.company_key {
        let n = next(&mut binds, key);
        sql.push_str(&format!(
            " AND p.id IN (SELECT member_id FROM profile_companies WHERE company_key = {n})"
        ));
    }
    if let Some(key) = &q.location_key {
        let n = next(&mut binds, key);
        sql.push_str(&format!(" AND p.location_key = {n}"));
    }
    if let Some(key) = &q.industry_key {
        let n = next(&mut binds, key);
        sql.push_str(&format!(" AND p.industry_key = {n}"));
    }
    if q.open_to_work {
        sql.push_str(" AND p.open_to_work");
    }
    (sql, binds)
}

/// The query words as `plainto_tsquery` input: the same words, all required.
pub(super) fn ts_words(q: &SearchQuery) -> String {
    q.terms.join(" ")
}
