//! Profiles: creating, updating and importing them with their search index rows.

use super::*;

/// Inserts a profile row; with `skip_conflicts`, a taken id or handle inserts nothing (the
/// result says how many rows were inserted). The full-text index follows by trigger.
pub(super) fn insert_profile_row(
    conn: &rusqlite::Connection,
    id: &str,
    f: &ProfileFields,
    now: i64,
    skip_conflicts: bool,
) -> rusqlite::Result<usize> {
    let doc = f.search_document();
    let sql = format!(
        "INSERT INTO profiles (id, handle, handle_key, display_name, headline, summary, \
         location, industry, skills, positions, education, open_to_work, location_key, \
         industry_key, skills_text, positions_text, search_docid, create_time, update_time) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         (SELECT COALESCE(MAX(search_docid), 0) + 1 FROM profiles), ?, ?){}",
        if skip_conflicts {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        }
    );
    conn.prepare_cached(&sql)?.execute(rusqlite::params![
        id,
        f.handle.as_str(),
        f.handle.key(),
        f.display_name,
        f.headline,
        f.summary,
        f.location,
        f.industry,
        skills_json(&f.skills),
        to_json(&f.positions),
        to_json(&f.education),
        f.open_to_work,
        doc.location_key,
        doc.industry_key,
        doc.skills_text,
        doc.positions_text,
        now,
        now,
    ])
}

pub(super) fn insert_profile_in(
    conn: &rusqlite::Connection,
    id: &str,
    f: ProfileFields,
    now: i64,
    key: Option<&IdempotencyKey>,
) -> StoreResult<ProfileRecord> {
    let result = insert_profile_row(conn, id, &f, now, false);
    if let Err(e) = result {
        return Err(match unique_violation_column(&e) {
            Some("profiles.id") => ProfileError::ProfileExists,
            // SQLite names the handle when both are taken (a retried create), so look for
            // the member's own profile: it wins over the handle.
            Some(_) if profile_exists(conn, id)? => ProfileError::ProfileExists,
            Some(_) => ProfileError::HandleTaken,
            None => e.into(),
        });
    }
    write_index_rows(conn, id, &f.search_document())?;
    if let Some(key) = key {
        record_idempotency_key(conn, key, id, now)?;
    }
    let event = events::profile_created(now, id, f.handle.as_str(), &f.display_name);
    outbox::append_sqlite(conn, &[event])?;
    Ok(ProfileRecord {
        id: id.to_owned(),
        handle: f.handle.as_str().to_owned(),
        display_name: f.display_name,
        headline: f.headline,
        summary: f.summary,
        location: f.location,
        industry: f.industry,
        skills: f.skills,
        positions: f.positions,
        education: f.education,
        open_to_work: f.open_to_work,
        create_time: now,
        update_time: now,
        connection_count: 0,
        follower_count: 0,
    })
}

pub(super) fn update_profile_in(
    conn: &rusqlite::Connection,
    id: &str,
    changes: ProfileChanges,
    now: i64,
) -> StoreResult<ProfileRecord> {
    let before = fetch_optional(
        conn,
        &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = ?"),
        [id],
        profile_from_write_row,
    )?
    .ok_or(ProfileError::NotFound("profile"))?;
    let mut profile = before.clone();
    changes.apply(&mut profile);
    profile.update_time = now;
    let doc = profile.search_document();
    let result = conn
        .prepare_cached(
            "UPDATE profiles SET handle = ?, handle_key = ?, display_name = ?, headline = ?, \
             summary = ?, location = ?, industry = ?, skills = ?, positions = ?, education = ?, \
             open_to_work = ?, location_key = ?, industry_key = ?, skills_text = ?, \
             positions_text = ?, update_time = ? WHERE id = ?",
        )?
        .execute(rusqlite::params![
            profile.handle,
            profile.handle.to_ascii_lowercase(),
            profile.display_name,
            profile.headline,
            profile.summary,
            profile.location,
            profile.industry,
            skills_json(&profile.skills),
            to_json(&profile.positions),
            to_json(&profile.education),
            profile.open_to_work,
            doc.location_key,
            doc.industry_key,
            doc.skills_text,
            doc.positions_text,
            now,
            id,
        ]);
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ProfileError::HandleTaken),
        Err(e) => return Err(e.into()),
    }
    write_index_rows(conn, id, &doc)?;
    let renamed = events::profile_renamed(now, &before, &profile);
    outbox::append_sqlite(conn, renamed.as_slice())?;
    Ok(profile)
}

pub(super) fn import_profiles_in(
    conn: &rusqlite::Connection,
    profiles: Vec<(String, ProfileFields)>,
    now: i64,
) -> StoreResult<(u64, u64)> {
    let total = profiles.len() as u64;
    let mut created = Vec::new();
    // In-process statements: one per profile costs microseconds, not round trips.
    for (id, f) in &profiles {
        if insert_profile_row(conn, id, f, now, true)? == 1 {
            write_index_rows(conn, id, &f.search_document())?;
            created.push(events::profile_created(
                now,
                id,
                f.handle.as_str(),
                &f.display_name,
            ));
        }
    }
    outbox::append_sqlite(conn, &created)?;
    let created = created.len() as u64;
    Ok((created, total - created))
}
