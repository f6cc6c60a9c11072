//! Impressions (once per member, post and day; unique viewers) and shares.

use super::*;

pub(super) fn record_impressions_in(
    conn: &Connection,
    member_id: &str,
    post_ids: &[String],
    day: i64,
    now: i64,
) -> StoreResult<usize> {
    let mut counted = Vec::new();
    let mut first_views = Vec::new();
    for post_id in post_ids {
        let new = conn
            .prepare_cached(
                "INSERT INTO impressions (post_id, member_id, day, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute((post_id, member_id, day, now))?
            == 1;
        if !new {
            continue;
        }
        counted.push(post_id.clone());
        // A first ever impression is always also a new one for the day.
        let first = conn
            .prepare_cached(
                "INSERT INTO post_viewers (member_id, post_id, first_time) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute((member_id, post_id, now))? as i64;
        if first == 1 {
            first_views.push(post_id.clone());
        }
        add_counts(
            conn,
            post_id,
            &[(IMPRESSION_COUNT, 1), (UNIQUE_VIEWER_COUNT, first)],
        )?;
    }
    let n = counted.len();
    if n > 0 {
        let payload = events::impressions_recorded(member_id, counted, first_views);
        outbox::append_sqlite(conn, &[events::at(now, payload)])?;
    }
    Ok(n)
}

pub(super) fn record_share_in(conn: &Connection, share: ShareRecord) -> StoreResult<ShareRecord> {
    let existing: Option<(String, i64)> = conn
        .prepare_cached("SELECT id, create_time FROM shares WHERE post_id = ? AND member_id = ?")?
        .query_row((&share.post_id, &share.member_id), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let recorded = match existing {
        Some((id, create_time)) => ShareRecord {
            id,
            create_time,
            ..share
        },
        None => {
            conn.prepare_cached(
                "INSERT INTO shares (post_id, member_id, id, create_time) VALUES (?, ?, ?, ?)",
            )?
            .execute((
                &share.post_id,
                &share.member_id,
                &share.id,
                share.create_time,
            ))?;
            add_counts(conn, &share.post_id, &[(SHARE_COUNT, 1)])?;
            outbox::append_sqlite(
                conn,
                &[events::at(
                    share.create_time,
                    events::share_recorded(&share),
                )],
            )?;
            share
        }
    };
    Ok(recorded)
}
