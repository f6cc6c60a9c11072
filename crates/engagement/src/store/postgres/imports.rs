//! Bulk imports: many rows in one transaction, counts exactly as one by one.

use super::*;

pub(super) async fn import_engagement_in(
    tx: &mut PgConnection,
    batch: EngagementImport,
) -> StoreResult<ImportCounts> {
    let mut counts = ImportCounts::default();
    let mut deltas = StatsDeltas::default();
    // The payload of every change, appended last.
    let mut payloads = Vec::new();

    // Reactions, as `react` does per row but for all pairs at once, in (post, member) order so
    // concurrent imports lock shared rows in the same order: claim the new pairs with an
    // insert, lock the taken ones and read their types, then change those that differ.
    let folded = fold_reactions(&batch.reactions);
    let mut stored = StoredReactions::new();
    let mut created: HashSet<(String, String)> = HashSet::new();
    let mut open: Vec<&crate::store::import::FoldedReaction> = folded.iter().collect();
    // An unreact may commit between our insert finding a row taken and our lock on it; then
    // the row is free again, so claim it anew.
    while !open.is_empty() {
        let claimed: Vec<(String, String)> = sqlx::query_as(
            "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, update_time) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int2[], $4::int8[], $5::int8[]) \
             ORDER BY 1, 2 ON CONFLICT (post_id, member_id) DO NOTHING \
             RETURNING post_id, member_id",
        )
        .bind(column(&open, |r| r.post_id.clone()))
        .bind(column(&open, |r| r.member_id.clone()))
        .bind(column(&open, |r| reaction_type_number(r.final_type())))
        .bind(column(&open, |r| r.first_time))
        .bind(column(&open, |r| r.last_time))
        .fetch_all(&mut *tx)
        .await?;
        created.extend(claimed);
        let taken: Vec<&crate::store::import::FoldedReaction> = open
            .iter()
            .copied()
            .filter(|r| !created.contains(&(r.post_id.clone(), r.member_id.clone())))
            .collect();
        if taken.is_empty() {
            break;
        }
        // Locked until we commit, so the types read are the ones the counts move from.
        let rows = sqlx::query(
            "SELECT r.post_id, r.member_id, r.reaction_type, r.create_time FROM reactions r \
             JOIN unnest($1::text[], $2::text[]) AS q (p, m) \
               ON r.post_id = q.p AND r.member_id = q.m \
             ORDER BY r.post_id, r.member_id FOR UPDATE OF r",
        )
        .bind(column(&taken, |r| r.post_id.clone()))
        .bind(column(&taken, |r| r.member_id.clone()))
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let t: i16 = row.try_get("reaction_type")?;
            stored.insert(
                (row.try_get("post_id")?, row.try_get("member_id")?),
                StoredReaction {
                    reaction_type: reaction_type_from(t.into())?,
                    create_time: row.try_get("create_time")?,
                },
            );
        }
        open = taken
            .into_iter()
            .filter(|r| !stored.contains_key(&(r.post_id.clone(), r.member_id.clone())))
            .collect();
    }
    let mut changed = Vec::new();
    for r in &folded {
        let key = (r.post_id.clone(), r.member_id.clone());
        let before = stored.get(&key).copied();
        let before_type = before.map(|s| s.reaction_type);
        let (written, skipped) = r.outcome(before_type);
        counts.reactions += written;
        counts.skipped += skipped;
        if written > 0 {
            deltas.reaction_change(r, before_type);
            payloads.push(reaction_event(r, before));
            if before.is_some() {
                changed.push(r);
            }
        }
    }
    if !changed.is_empty() {
        sqlx::query(
            "UPDATE reactions r SET reaction_type = u.t, update_time = u.c \
             FROM unnest($1::text[], $2::text[], $3::int2[], $4::int8[]) AS u (p, m, t, c) \
             WHERE r.post_id = u.p AND r.member_id = u.m",
        )
        .bind(column(&changed, |r| r.post_id.clone()))
        .bind(column(&changed, |r| r.member_id.clone()))
        .bind(column(&changed, |r| reaction_type_number(r.final_type())))
        .bind(column(&changed, |r| r.last_time))
        .execute(&mut *tx)
        .await?;
    }

    // Comments: an id stored before is left alone (RETURNING names only inserted rows).
    let (comments, repeats) = distinct_comments(batch.comments);
    counts.skipped += repeats;
    if !comments.is_empty() {
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO comments (id, post_id, member_id, text, create_time) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(column(&comments, |c| c.id.clone()))
        .bind(column(&comments, |c| c.post_id.clone()))
        .bind(column(&comments, |c| c.member_id.clone()))
        .bind(column(&comments, |c| c.text.clone()))
        .bind(column(&comments, |c| c.create_time))
        .fetch_all(&mut *tx)
        .await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        counts.comments = inserted.len() as u64;
        counts.skipped += (comments.len() - inserted.len()) as u64;
        // Ids are distinct in the batch: each inserted one names one comment.
        for c in comments.iter().filter(|c| inserted.contains(&c.id)) {
            deltas.comment(&c.post_id);
            payloads.push(events::comment_created(c));
        }
    }

    // Shares: skipped when the (post, member) or the id is taken (a racing insert of either
    // waits for ours, then does nothing).
    let (shares, repeats) = distinct_shares(batch.shares);
    counts.skipped += repeats;
    if !shares.is_empty() {
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO shares (post_id, member_id, id, create_time) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(column(&shares, |s| s.post_id.clone()))
        .bind(column(&shares, |s| s.member_id.clone()))
        .bind(column(&shares, |s| s.id.clone()))
        .bind(column(&shares, |s| s.create_time))
        .fetch_all(&mut *tx)
        .await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        counts.shares = inserted.len() as u64;
        counts.skipped += (shares.len() - inserted.len()) as u64;
        // Share ids are distinct in the batch.
        for s in shares.iter().filter(|s| inserted.contains(&s.id)) {
            deltas.share(&s.post_id);
            payloads.push(events::share_recorded(s));
        }
    }

    // Impressions: once per (post, member, day); the new ones' first views make viewers.
    let (impressions, repeats) = fold_impressions(&batch.impressions);
    counts.skipped += repeats;
    if !impressions.is_empty() {
        let kept = impressions.len();
        let inserted: HashSet<(String, String, i64)> = sqlx::query_as(
            "INSERT INTO impressions (post_id, member_id, day, create_time) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[]) \
             ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING RETURNING post_id, member_id, day",
        )
        .bind(column(&impressions, |i| i.post_id.clone()))
        .bind(column(&impressions, |i| i.member_id.clone()))
        .bind(column(&impressions, |i| i.day))
        .bind(column(&impressions, |i| i.time))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let new: Vec<_> = impressions
            .into_iter()
            .filter(|i| inserted.contains(&(i.post_id.clone(), i.member_id.clone(), i.day)))
            .collect();
        counts.skipped += (kept - new.len()) as u64;
        counts.impressions = new.len() as u64;
        for i in &new {
            deltas.impression(&i.post_id);
        }
        let first = first_views(&new);
        let mut viewers = HashSet::new();
        if !first.is_empty() {
            let inserted: Vec<(String, String)> = sqlx::query_as(
                "INSERT INTO post_viewers (member_id, post_id, first_time) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
                 ORDER BY 1, 2 ON CONFLICT DO NOTHING RETURNING member_id, post_id",
            )
            .bind(column(&first, |f| f.0.clone()))
            .bind(column(&first, |f| f.1.clone()))
            .bind(column(&first, |f| f.2))
            .fetch_all(&mut *tx)
            .await?;
            for (member_id, post_id) in inserted {
                deltas.viewer(&post_id);
                viewers.insert((member_id, post_id));
            }
        }
        payloads.extend(impression_events(&new, &viewers));
    }

    // One counts upsert per post, in post order (the lock order of every writer), last.
    let rows = deltas.rows();
    if !rows.is_empty() {
        let sets: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("{c} = post_stats.{c} + excluded.{c}"))
            .collect();
        let arrays: Vec<String> = (2..=STATS_COLUMNS.len() + 1)
            .map(|i| format!("${i}::int8[]"))
            .collect();
        let sql = format!(
            "INSERT INTO post_stats (post_id, {}) SELECT * FROM unnest($1::text[], {}) \
             ORDER BY 1 ON CONFLICT (post_id) DO UPDATE SET {}",
            STATS_COLUMNS.join(", "),
            arrays.join(", "),
            sets.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(column(&rows, |(post, _)| post.to_string()));
        for i in 0..STATS_COLUMNS.len() {
            query = query.bind(column(&rows, |(_, d)| d[i]));
        }
        query.execute(&mut *tx).await?;
    }
    // Last: from here to the commit, other appending transactions wait for this one.
    let now = now_micros();
    let events: Vec<NewEvent> = payloads.into_iter().map(|p| events::at(now, p)).collect();
    outbox::append_postgres(tx, &events).await?;
    Ok(counts)
}
