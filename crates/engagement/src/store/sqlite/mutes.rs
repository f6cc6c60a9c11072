//! Negative feedback: hidden posts, muted hashtags and authors.

use super::*;

pub(super) fn mute_in(
    conn: &Connection,
    member_id: &str,
    mute: &Mute,
    now: i64,
) -> StoreResult<i64> {
    let kind = mute.kind.number();
    let first: Option<i64> = conn
        .prepare_cached(MUTE_TIME_SQL)?
        .query_row((member_id, kind, &mute.target), |row| row.get(0))
        .optional()?;
    if let Some(first) = first {
        return Ok(first);
    }
    if let Some(cap) = mute.kind.cap() {
        let held: i64 = conn
            .prepare_cached(MUTE_COUNT_SQL)?
            .query_row((member_id, kind), |row| row.get(0))?;
        if held >= cap as i64 {
            return Err(mute_limit_reached(mute.kind, cap));
        }
    }
    conn.prepare_cached(MUTE_INSERT_SQL)?
        .execute((member_id, kind, &mute.target, now))?;
    outbox::append_sqlite(
        conn,
        &[events::at(now, events::muted(member_id, mute, now))],
    )?;
    Ok(now)
}

pub(super) fn unmute_in(conn: &Connection, member_id: &str, mute: &Mute) -> StoreResult<bool> {
    let removed = conn.prepare_cached(MUTE_DELETE_SQL)?.execute((
        member_id,
        mute.kind.number(),
        &mute.target,
    ))? > 0;
    if removed {
        outbox::append_sqlite(
            conn,
            &[events::at(now_micros(), events::unmuted(member_id, mute))],
        )?;
    }
    Ok(removed)
}
