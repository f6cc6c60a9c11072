//! The member graph: connections, follows, blocks, degrees and the graph's export.

use super::*;

/// Whether `a` blocked `b` or `b` blocked `a`, inside a write.
pub(super) fn blocked_either_way(
    conn: &rusqlite::Connection,
    a: &str,
    b: &str,
) -> StoreResult<bool> {
    Ok(conn.prepare_cached(BLOCKED_EITHER_WAY)?.exists((a, b))?)
}

/// The mutual connections of `?1` and `?2` (`?1` the smaller side): their count and the first
/// `?3` ids in id order, as a JSON array. By merge, both lists are read once in id order; by
/// probe, each row of `?1`'s list is a primary-key search of `?2`'s.
pub(super) fn degree_mutual_sql(merge: bool) -> String {
    let mutual = if merge {
        "SELECT other_id FROM connections WHERE member_id = ?1 \
         INTERSECT SELECT other_id FROM connections WHERE member_id = ?2 ORDER BY 1"
    } else {
        "SELECT a.other_id FROM connections a CROSS JOIN connections b \
         WHERE a.member_id = ?1 AND b.member_id = ?2 AND b.other_id = a.other_id \
         ORDER BY a.other_id"
    };
    format!(
        "SELECT (SELECT COUNT(*) FROM ({mutual})), \
         (SELECT json_group_array(other_id) FROM (SELECT other_id FROM ({mutual}) LIMIT ?3))"
    )
}

/// Pushes the graph to `sink`, one keyset page of each table at a time (in primary-key order,
/// so each page is one index range), never the whole of a table in memory.
pub(super) async fn export_graph(
    conn: &mut SqliteConnection,
    sink: &mut ExportSink,
) -> Result<(), ExportError> {
    let mut after: Option<String> = None;
    loop {
        let sql = format!(
            "SELECT id, handle, display_name, create_time FROM profiles {} ORDER BY id LIMIT ?",
            if after.is_some() { "WHERE id > ?" } else { "" }
        );
        let mut q = sqlx::query_as::<_, (String, String, String, i64)>(&sql);
        if let Some(id) = &after {
            q = q.bind(id);
        }
        let rows = q.bind(EXPORT_PAGE).fetch_all(&mut *conn).await?;
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
             WHERE member_id < other_id {} ORDER BY member_id, other_id LIMIT ?",
            if after.is_some() {
                "AND (member_id, other_id) > (?, ?)"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql);
        if let Some((a, b)) = &after {
            q = q.bind(a).bind(b);
        }
        let rows = q.bind(EXPORT_PAGE).fetch_all(&mut *conn).await?;
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
             ORDER BY member_id, target_kind, target LIMIT ?",
            if after.is_some() {
                "WHERE (member_id, target_kind, target) > (?, ?, ?)"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_as::<_, (String, i64, String, i64)>(&sql);
        if let Some((member, kind, target)) = &after {
            q = q.bind(member).bind(kind).bind(target);
        }
        let rows = q.bind(EXPORT_PAGE).fetch_all(&mut *conn).await?;
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
             ORDER BY blocker_id, blocked_id LIMIT ?",
            if after.is_some() {
                "WHERE (blocker_id, blocked_id) > (?, ?)"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql);
        if let Some((a, b)) = &after {
            q = q.bind(a).bind(b);
        }
        let rows = q.bind(EXPORT_PAGE).fetch_all(&mut *conn).await?;
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

pub(super) fn follow_in(
    conn: &rusqlite::Connection,
    member_id: &str,
    target: FollowTarget,
    now: i64,
) -> StoreResult<FollowingRecord> {
    if !profile_exists(conn, member_id)? {
        return Err(ProfileError::NotFound("member"));
    }
    if let FollowTarget::Member(followee) = &target {
        // A block either way looks exactly like a missing followee.
        if !profile_exists(conn, followee)? || blocked_either_way(conn, member_id, followee)? {
            return Err(ProfileError::NotFound("followee"));
        }
    }
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO follows (member_id, target_kind, target, create_time) \
             VALUES (?, ?, ?, ?)",
        )?
        .execute((member_id, target.kind(), target.value(), now))?;
    let create_time: i64 = conn
        .prepare_cached(FOLLOW_TIME)?
        .query_row((member_id, target.kind(), target.value()), |row| row.get(0))?;
    if inserted > 0 {
        outbox::append_sqlite(conn, &[events::followed(now, member_id, &target)])?;
    }
    Ok(FollowingRecord {
        target,
        create_time,
    })
}

pub(super) fn block_member_in(
    conn: &rusqlite::Connection,
    member_id: &str,
    blocked_id: &str,
    now: i64,
) -> StoreResult<()> {
    if !profile_exists(conn, member_id)? {
        return Err(ProfileError::NotFound("member"));
    }
    if !profile_exists(conn, blocked_id)? {
        return Err(ProfileError::NotFound("blocked member"));
    }
    let inserted = conn
        .prepare_cached(INSERT_BLOCK)?
        .execute((member_id, blocked_id, now))?;
    conn.prepare_cached(DELETE_CONNECTION)?
        .execute((member_id, blocked_id))?;
    conn.prepare_cached(DELETE_MEMBER_FOLLOWS_EITHER_WAY)?
        .execute((member_id, blocked_id, FollowTarget::MEMBER_KIND))?;
    conn.prepare_cached(DELETE_PENDING_INVITATIONS_EITHER_WAY)?
        .execute((member_id, blocked_id, InvitationState::Pending as i64))?;
    // One event: the block ends the connection and the follows by itself (see the proto).
    if inserted > 0 {
        let event = events::member_blocked(now, member_id, blocked_id);
        outbox::append_sqlite(conn, &[event])?;
    }
    Ok(())
}

pub(super) fn import_connections_in(
    conn: &rusqlite::Connection,
    pairs: &[(String, String)],
    now: i64,
) -> StoreResult<(u64, u64)> {
    let mut made = Vec::new();
    // 500 pairs a statement keeps well under SQLite's bind limit.
    for chunk in pairs.chunks(500) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        // The pairs' values in order, then the time (bound by the forward insert only).
        let mut binds: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 2 + 1);
        for (a, b) in chunk {
            binds.push(a);
            binds.push(b);
        }
        binds.push(&now);
        let (pair_binds, _) = binds.split_at(chunk.len() * 2);
        // RETURNING yields only the rows inserted: the pairs this import connects.
        let forward = format!(
            "WITH v(a, b) AS (VALUES {values}) \
                 INSERT OR IGNORE INTO connections (member_id, other_id, create_time) \
                 SELECT a, b, ? FROM v \
                 WHERE EXISTS (SELECT 1 FROM profiles WHERE id = a) \
                 AND EXISTS (SELECT 1 FROM profiles WHERE id = b) \
                 AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = a AND blocked_id = b) \
                 AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = b AND blocked_id = a) \
                 RETURNING member_id, other_id"
        );
        let mut stmt = conn.prepare(&forward)?;
        let inserted = stmt
            .query_map(binds.as_slice(), |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<HashSet<(String, String)>>>()?;
        // In the order given, whatever order the insert took.
        made.extend(
            chunk
                .iter()
                .filter(|pair| inserted.contains(*pair))
                .cloned(),
        );
        // The other way for every pair now connected one way.
        let backward = format!(
            "WITH v(a, b) AS (VALUES {values}) \
                 INSERT OR IGNORE INTO connections (member_id, other_id, create_time) \
                 SELECT c.other_id, c.member_id, c.create_time FROM v \
                 JOIN connections c ON c.member_id = v.a AND c.other_id = v.b"
        );
        conn.prepare(&backward)?.execute(pair_binds)?;
    }
    let events: Vec<NewEvent> = made
        .iter()
        .map(|(a, b)| events::connection_made(now, a, b))
        .collect();
    outbox::append_sqlite(conn, &events)?;
    let created = made.len() as u64;
    Ok((created, pairs.len() as u64 - created))
}
