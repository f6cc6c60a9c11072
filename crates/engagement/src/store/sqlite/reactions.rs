//! Reactions to posts.

use super::*;

pub(super) fn react_in(
    conn: &Connection,
    post_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<ReactionRecord> {
    let existing: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT reaction_type, create_time FROM reactions WHERE post_id = ? AND member_id = ?",
        )?
        .query_row((post_id, member_id), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (create_time, previous) = match existing {
        None => {
            conn.prepare_cached(
                "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                     update_time) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute((post_id, member_id, reaction_type.number(), now, now))?;
            add_counts(conn, post_id, &[(count_column(reaction_type), 1)])?;
            (now, None)
        }
        Some((old, create_time)) => {
            let old = reaction_type_from(old)?;
            if old == reaction_type {
                // The same type again: nothing changed, no event.
                return Ok(ReactionRecord {
                    post_id: post_id.to_owned(),
                    member_id: member_id.to_owned(),
                    reaction_type,
                    create_time,
                });
            }
            conn.prepare_cached(
                "UPDATE reactions SET reaction_type = ?, update_time = ? \
                         WHERE post_id = ? AND member_id = ?",
            )?
            .execute((reaction_type.number(), now, post_id, member_id))?;
            add_counts(
                conn,
                post_id,
                &[(count_column(old), -1), (count_column(reaction_type), 1)],
            )?;
            (create_time, Some(old))
        }
    };
    let reaction = ReactionRecord {
        post_id: post_id.to_owned(),
        member_id: member_id.to_owned(),
        reaction_type,
        create_time,
    };
    outbox::append_sqlite(
        conn,
        &[events::at(now, events::reaction_set(&reaction, previous))],
    )?;
    Ok(reaction)
}

pub(super) fn unreact_in(conn: &Connection, post_id: &str, member_id: &str) -> StoreResult<bool> {
    let removed: Option<i64> = conn
        .prepare_cached(
            "DELETE FROM reactions WHERE post_id = ? AND member_id = ? RETURNING reaction_type",
        )?
        .query_row((post_id, member_id), |row| row.get(0))
        .optional()?;
    if let Some(old) = removed {
        let old = reaction_type_from(old)?;
        add_counts(conn, post_id, &[(count_column(old), -1)])?;
        outbox::append_sqlite(
            conn,
            &[events::at(
                now_micros(),
                events::reaction_removed(post_id, member_id, old),
            )],
        )?;
    }
    Ok(removed.is_some())
}
