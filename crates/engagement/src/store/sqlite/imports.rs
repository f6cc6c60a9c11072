//! Bulk imports: many rows in one transaction, counts exactly as one by one.

use super::*;

/// The counts upsert of one post in an import: its id, then a delta per [`STATS_COLUMNS`].
pub(super) fn import_stats_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let sets: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO post_stats (post_id, {}) VALUES (?, {}) \
             ON CONFLICT (post_id) DO UPDATE SET {}",
            STATS_COLUMNS.join(", "),
            placeholders(STATS_COLUMNS.len()),
            sets.join(", ")
        )
    })
}

/// An import's rows go through cached single-row statements (on the writer's own connection
/// a statement costs no more per row than a multi-row one); `ON CONFLICT DO NOTHING` inserts
/// tell a new row by the one row they changed.
pub(super) fn import_engagement_in(
    conn: &Connection,
    batch: EngagementImport,
) -> StoreResult<ImportCounts> {
    let mut counts = ImportCounts::default();
    let mut deltas = StatsDeltas::default();
    // The payload of every change, appended last.
    let mut payloads = Vec::new();

    // Reactions: what is stored for each (post, member), then an upsert of every pair that
    // changes (new, or another type). The single writer makes the read-then-write safe.
    let folded = fold_reactions(&batch.reactions);
    let mut stored = Vec::with_capacity(folded.len());
    {
        let mut select = conn.prepare_cached(
            "SELECT reaction_type, create_time FROM reactions WHERE post_id = ? AND member_id = ?",
        )?;
        for r in &folded {
            let row: Option<(i64, i64)> = select
                .query_row((&r.post_id, &r.member_id), |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            stored.push(match row {
                Some((reaction_type, create_time)) => Some(StoredReaction {
                    reaction_type: reaction_type_from(reaction_type)?,
                    create_time,
                }),
                None => None,
            });
        }
    }
    let mut changed = Vec::with_capacity(folded.len());
    for (r, before) in folded.iter().zip(stored) {
        let before_type = before.map(|s| s.reaction_type);
        let (written, skipped) = r.outcome(before_type);
        counts.reactions += written;
        counts.skipped += skipped;
        if written > 0 {
            deltas.reaction_change(r, before_type);
            payloads.push(reaction_event(r, before));
            changed.push(r);
        }
    }
    {
        // A new reaction starts at its first time; a changed one keeps its create time.
        let mut upsert = conn.prepare_cached(
            "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
             update_time) VALUES (?, ?, ?, ?, ?) ON CONFLICT (post_id, member_id) DO UPDATE SET \
             reaction_type = excluded.reaction_type, update_time = excluded.update_time",
        )?;
        for r in changed {
            upsert.execute((
                &r.post_id,
                &r.member_id,
                r.final_type().number(),
                r.first_time,
                r.last_time,
            ))?;
        }
    }

    // Comments: an id stored before is left alone.
    let (comments, repeats) = distinct_comments(batch.comments);
    counts.skipped += repeats;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO comments (id, post_id, member_id, text, create_time) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )?;
        for c in &comments {
            let inserted =
                insert.execute((&c.id, &c.post_id, &c.member_id, &c.text, c.create_time))? == 1;
            if inserted {
                counts.comments += 1;
                deltas.comment(&c.post_id);
                payloads.push(events::comment_created(c));
            } else {
                counts.skipped += 1;
            }
        }
    }

    // Shares: skipped when the (post, member) or the id is taken.
    let (shares, repeats) = distinct_shares(batch.shares);
    counts.skipped += repeats;
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO shares (post_id, member_id, id, create_time) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )?;
        for s in &shares {
            let inserted = insert.execute((&s.post_id, &s.member_id, &s.id, s.create_time))? == 1;
            if inserted {
                counts.shares += 1;
                deltas.share(&s.post_id);
                payloads.push(events::share_recorded(s));
            } else {
                counts.skipped += 1;
            }
        }
    }

    // Impressions: once per (post, member, day); the new ones' first views make viewers.
    let (impressions, repeats) = fold_impressions(&batch.impressions);
    counts.skipped += repeats;
    let mut new = Vec::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO impressions (post_id, member_id, day, create_time) VALUES (?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )?;
        for i in impressions {
            if insert.execute((&i.post_id, &i.member_id, i.day, i.time))? == 1 {
                new.push(i);
            } else {
                counts.skipped += 1;
            }
        }
    }
    counts.impressions = new.len() as u64;
    for i in &new {
        deltas.impression(&i.post_id);
    }
    let mut viewers = HashSet::new();
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO post_viewers (member_id, post_id, first_time) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )?;
        for (member_id, post_id, time) in first_views(&new) {
            if insert.execute((&member_id, &post_id, time))? == 1 {
                deltas.viewer(&post_id);
                viewers.insert((member_id, post_id));
            }
        }
    }
    payloads.extend(impression_events(&new, &viewers));

    // One counts upsert per post.
    {
        let mut upsert = conn.prepare_cached(import_stats_sql())?;
        for (post_id, row) in deltas.rows() {
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(row.len() + 1);
            params.push(&post_id);
            params.extend(row.iter().map(|delta| delta as &dyn ToSql));
            upsert.execute(params.as_slice())?;
        }
    }
    let now = now_micros();
    let events: Vec<NewEvent> = payloads.into_iter().map(|p| events::at(now, p)).collect();
    outbox::append_sqlite(conn, &events)?;
    Ok(counts)
}
