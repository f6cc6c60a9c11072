//! The member graph: connections, follows, blocks, degrees and the graph's export.

use super::*;

/// Whether `a` blocked `b` or `b` blocked `a`.
pub(super) async fn blocked_either_way(
    conn: &mut PgConnection,
    a: &str,
    b: &str,
) -> StoreResult<bool> {
    // Numbered once: invitations, follows and degrees each ask it.
    static SQL: LazyLock<String> = LazyLock::new(|| numbered(BLOCKED_EITHER_WAY));
    Ok(sqlx::query(SQL.as_str())
        .bind(a)
        .bind(b)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Pushes the graph to `sink`, one keyset page of each table at a time (in primary-key order,
/// so each page is one index range), never the whole of a table in memory.
pub(super) async fn export_graph(
    conn: &mut PgConnection,
    sink: &mut ExportSink,
) -> Result<(), ExportError> {
    let mut after: Option<String> = None;
    loop {
        let sql = format!(
            "SELECT id, handle, display_name, create_time FROM profiles {} ORDER BY id LIMIT {}",
            if after.is_some() { "WHERE id > $1" } else { "" },
            EXPORT_PAGE
        );
        let mut q = sqlx::query_as::<_, (String, String, String, i64)>(&sql);
        if let Some(id) = &after {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        for (id, handle, display_name, time) in &rows {
            sink.push(
                *time,
                events::profile_created_payload(id, handle, display_name),
            )
            .await?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == EXPORT_PAGE => after = Some(last.0.clone()),
            _ => break,
        }
    }

    // Each connection is stored both ways: the row with the smaller id first stands for it.
    let mut after: Option<(String, String)> = None;
    loop {
        let sql = format!(
            "SELECT member_id, other_id, create_time FROM connections \
             WHERE member_id < other_id {} ORDER BY member_id, other_id LIMIT {}",
            if after.is_some() {
                "AND (member_id, other_id) > ($1, $2)"
            } else {
                ""
            },
            EXPORT_PAGE
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql);
        if let Some((a, b)) = &after {
            q = q.bind(a).bind(b);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        for (a, b, time) in &rows {
            sink.push(*time, events::connection_made_payload(a, b))
                .await?;
        }
        match rows.last() {
            Some((a, b, _)) if rows.len() as i64 == EXPORT_PAGE => {
                after = Some((a.clone(), b.clone()))
            }
            _ => break,
        }
    }

    let mut after: Option<(String, i64, String)> = None;
    loop {
        let sql = format!(
            "SELECT member_id, target_kind, target, create_time FROM follows {} \
             ORDER BY member_id, target_kind, target LIMIT {}",
            if after.is_some() {
                "WHERE (member_id, target_kind, target) > ($1, $2, $3)"
            } else {
                ""
            },
            EXPORT_PAGE
        );
        let mut q = sqlx::query_as::<_, (String, i64, String, i64)>(&sql);
        if let Some((member, kind, target)) = &after {
            q = q.bind(member).bind(kind).bind(target);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        for (member, kind, target, time) in &rows {
            let target = FollowTarget::from_parts(*kind, target.clone())
                .ok_or_else(|| ExportError::Store(format!("follow kind {kind}")))?;
            sink.push(*time, events::followed_payload(member, &target))
                .await?;
        }
        match rows.last() {
            Some((member, kind, target, _)) if rows.len() as i64 == EXPORT_PAGE => {
                after = Some((member.clone(), *kind, target.clone()))
            }
            _ => break,
        }
    }

    let mut after: Option<(String, String)> = None;
    loop {
        let sql = format!(
            "SELECT blocker_id, blocked_id, create_time FROM blocks {} \
             ORDER BY blocker_id, blocked_id LIMIT {}",
            if after.is_some() {
                "WHERE (blocker_id, blocked_id) > ($1, $2)"
            } else {
                ""
            },
            EXPORT_PAGE
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql);
        if let Some((a, b)) = &after {
            q = q.bind(a).bind(b);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        for (blocker, blocked, time) in &rows {
            sink.push(*time, events::member_blocked_payload(blocker, blocked))
                .await?;
        }
        match rows.last() {
            Some((a, b, _)) if rows.len() as i64 == EXPORT_PAGE => {
                after = Some((a.clone(), b.clone()))
            }
            _ => break,
        }
    }
    Ok(())
}

pub(super) const RELATIONSHIPS: &str = "SELECT ids.id, \
     EXISTS (SELECT 1 FROM connections WHERE member_id = $1 AND other_id = ids.id) AS connected, \
     EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = ids.id) \
     OR EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ids.id AND blocked_id = $1) AS blocked \
     FROM unnest($2::text[]) WITH ORDINALITY AS ids (id, n) ORDER BY ids.n";
