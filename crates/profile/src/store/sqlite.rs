//! The embedded profile store on SQLite.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use pronet_common::db::{MigrationFile, SqliteDb};
use pronet_common::events::{ExportError, ExportSink};
use pronet_common::outbox::{self, NewEvent, Outbox};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{ProfileStore, StoreResult, EXPORT_PAGE};
use crate::domain::{
    check_closer, count_reached, from_json, limits, mutual_by_merge, search_degree_needed,
    search_hits, to_json, Affinity, ConnectionRecord, Cursor, Degree, DegreeRecord, FollowCursor,
    FollowTarget, FollowerRecord, FollowingRecord, IdempotencyKey, InvitationDirection,
    InvitationRecord, InvitationState, ProfileChanges, ProfileFields, ProfileRecord,
    RelationshipRecord, SearchDocument, SearchHit, SearchQuery, SuggestionCandidate,
    SuggestionInputs,
};
use crate::error::ProfileError;
use crate::events;

const MIGRATIONS: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "profiles",
        sql: include_str!("../../migrations/sqlite/0001_profiles.sql"),
    },
    MigrationFile {
        version: 2,
        description: "blocks",
        sql: include_str!("../../migrations/sqlite/0002_blocks.sql"),
    },
    MigrationFile {
        version: 3,
        description: "idempotency keys",
        sql: include_str!("../../migrations/sqlite/0003_idempotency_keys.sql"),
    },
    MigrationFile {
        version: 4,
        description: "followers",
        sql: include_str!("../../migrations/sqlite/0004_followers.sql"),
    },
    MigrationFile {
        version: 5,
        description: "profile depth",
        sql: include_str!("../../migrations/sqlite/0005_profile_depth.sql"),
    },
    MigrationFile {
        version: 6,
        description: "profile schools",
        sql: include_str!("../../migrations/sqlite/0006_profile_schools.sql"),
    },
    MigrationFile {
        version: 7,
        description: "member counts",
        sql: include_str!("../../migrations/sqlite/0007_member_counts.sql"),
    },
    MigrationFile {
        version: 8,
        description: "outbox",
        sql: outbox::SQLITE_MIGRATION,
    },
];

/// The counts are read in the same statement from `member_counts`, which triggers keep in step
/// with the connections and follows in their own transactions: exact, and one primary-key read
/// each however big the network.
const PROFILE_COLUMNS: &str = "id, handle, display_name, headline, summary, location, industry, \
     skills, positions, education, open_to_work, create_time, update_time, \
     COALESCE((SELECT m.connections FROM member_counts m WHERE m.member_id = profiles.id), 0) \
     AS connection_count, \
     COALESCE((SELECT m.followers FROM member_counts m WHERE m.member_id = profiles.id), 0) \
     AS follower_count";
const INVITATION_COLUMNS: &str = "id, inviter_id, invitee_id, message, state, create_time";

#[derive(Debug, Clone)]
pub struct SqliteProfileStore {
    db: SqliteDb,
}

impl SqliteProfileStore {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: SqliteDb::open(path, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// A [`ProfileRecord`] from a row of [`PROFILE_COLUMNS`], each column read with `$get`
/// (sqlx's `try_get` on the readers, rusqlite's `get` inside a write): one mapping for both.
macro_rules! profile_record {
    ($row:expr, $get:ident) => {{
        let row = $row;
        let skills: String = row.$get("skills")?;
        let positions: String = row.$get("positions")?;
        let education: String = row.$get("education")?;
        Ok(ProfileRecord {
            id: row.$get("id")?,
            handle: row.$get("handle")?,
            display_name: row.$get("display_name")?,
            headline: row.$get("headline")?,
            summary: row.$get("summary")?,
            location: row.$get("location")?,
            industry: row.$get("industry")?,
            skills: serde_json::from_str(&skills)
                .map_err(|e| ProfileError::Corrupt(format!("skills: {e}")))?,
            positions: from_json(&positions, "positions")?,
            education: from_json(&education, "education")?,
            open_to_work: row.$get("open_to_work")?,
            create_time: row.$get("create_time")?,
            update_time: row.$get("update_time")?,
            connection_count: row.$get("connection_count")?,
            follower_count: row.$get("follower_count")?,
        })
    }};
}

/// An [`InvitationRecord`] from a row of [`INVITATION_COLUMNS`] (see `profile_record!`).
macro_rules! invitation_record {
    ($row:expr, $get:ident) => {{
        let row = $row;
        let state: i64 = row.$get("state")?;
        Ok(InvitationRecord {
            id: row.$get("id")?,
            inviter_id: row.$get("inviter_id")?,
            invitee_id: row.$get("invitee_id")?,
            message: row.$get("message")?,
            state: InvitationState::from_i64(state)
                .ok_or_else(|| ProfileError::Corrupt(format!("invitation state {state}")))?,
            create_time: row.$get("create_time")?,
        })
    }};
}

fn profile_from_row(row: &SqliteRow) -> StoreResult<ProfileRecord> {
    profile_record!(row, try_get)
}

fn invitation_from_row(row: &SqliteRow) -> StoreResult<InvitationRecord> {
    invitation_record!(row, try_get)
}

/// [`profile_from_row`] for a row read inside a write.
fn profile_from_write_row(row: &rusqlite::Row<'_>) -> StoreResult<ProfileRecord> {
    profile_record!(row, get)
}

/// [`invitation_from_row`] for a row read inside a write.
fn invitation_from_write_row(row: &rusqlite::Row<'_>) -> StoreResult<InvitationRecord> {
    invitation_record!(row, get)
}

fn skills_json(skills: &[String]) -> String {
    serde_json::to_string(skills).unwrap_or_else(|_| "[]".into())
}

/// A UNIQUE or PRIMARY KEY constraint failed (what sqlx's `is_unique_violation` matched).
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

/// The `table.column` a unique violation names: SQLite says
/// "UNIQUE constraint failed: profiles.handle_key".
fn unique_violation_column(err: &rusqlite::Error) -> Option<&str> {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) if is_unique_violation(err) => {
            message.rsplit(": ").next()
        }
        _ => None,
    }
}

/// `?2, ?3, ...`: numbered placeholders for an `IN` list of `n` values after `?1`, so one
/// binding serves every place the list appears.
fn numbered_placeholders(n: usize) -> String {
    (2..n + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `sql` (one `?`, bound to `id`) returns a row, inside a write.
fn exists(conn: &rusqlite::Connection, sql: &str, id: &str) -> StoreResult<bool> {
    Ok(conn.prepare_cached(sql)?.exists([id])?)
}

/// The first row of `sql` mapped by `f` (or none), inside a write.
fn fetch_optional<T, P: rusqlite::Params>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: P,
    f: fn(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query_and_then(params, f)?;
    rows.next().transpose()
}

const PROFILE_EXISTS: &str = "SELECT 1 FROM profiles WHERE id = ?";

/// Keeps the profiles a viewer may see: none blocked either way with the viewer. Binds the
/// viewer twice, after the query's other values; a NULL viewer (a service) sees every profile.
/// Each direction is one primary-key lookup.
const VISIBLE_TO_VIEWER: &str = "NOT EXISTS (SELECT 1 FROM blocks \
     WHERE blocker_id = ? AND blocked_id = profiles.id) \
     AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = ? AND blocker_id = profiles.id)";

/// Whether `a` blocked `b` or `b` blocked `a`, inside a write.
fn blocked_either_way(conn: &rusqlite::Connection, a: &str, b: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) \
             OR (blocker_id = ?2 AND blocked_id = ?1)",
        )?
        .exists((a, b))?)
}

/// Records in the write that `key` created `resource_id`. A key already recorded is a unique
/// violation, which the caller resolves by replaying.
fn record_idempotency_key(
    conn: &rusqlite::Connection,
    key: &IdempotencyKey,
    resource_id: &str,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
         VALUES (?, ?, ?, ?)",
    )?
    .execute((&key.caller, &key.request_id, resource_id, now))?;
    Ok(())
}

/// Accepts the pending `inv` in the write and connects its members both ways; with the
/// `ConnectionMade` to append unless they already were connected (by an import).
fn accept_in(
    conn: &rusqlite::Connection,
    mut inv: InvitationRecord,
    now: i64,
) -> StoreResult<(InvitationRecord, Option<NewEvent>)> {
    conn.prepare_cached("UPDATE invitations SET state = ?, update_time = ? WHERE id = ?")?
        .execute((InvitationState::Accepted as i64, now, &inv.id))?;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO connections (member_id, other_id, create_time) \
             VALUES (?1, ?2, ?3), (?2, ?1, ?3)",
        )?
        .execute((&inv.inviter_id, &inv.invitee_id, now))?;
    let made =
        (inserted > 0).then(|| events::connection_made(now, &inv.inviter_id, &inv.invitee_id));
    inv.state = InvitationState::Accepted;
    Ok((inv, made))
}

/// Inserts a profile row; with `skip_conflicts`, a taken id or handle inserts nothing (the
/// result says how many rows were inserted). The full-text index follows by trigger.
fn insert_profile_row(
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

/// Replaces the member's rows in the filter tables (skill keys, current company keys).
fn write_index_rows(
    conn: &rusqlite::Connection,
    id: &str,
    doc: &SearchDocument,
) -> StoreResult<()> {
    for (table, column, keys) in [
        ("profile_skills", "skill_key", &doc.skill_keys),
        (
            "profile_companies",
            "company_key",
            &doc.current_company_keys,
        ),
        ("profile_schools", "school_key", &doc.school_keys),
    ] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE member_id = ?"))?
            .execute([id])?;
        if keys.is_empty() {
            continue;
        }
        // One cached single-row statement per key: in-process, as fast as a multi-row insert.
        let mut insert = conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {table} (member_id, {column}) VALUES (?1, ?2)"
        ))?;
        for k in keys {
            insert.execute((id, k))?;
        }
    }
    Ok(())
}

/// The filters of a search on `profiles p`, and their values in order.
fn search_filters(q: &SearchQuery, searcher: &str) -> (String, Vec<String>) {
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

/// The member's most recent connections a suggestion search expands (`?1` the member, `?2`
/// the cap).
const EXPANDED: &str = "SELECT other_id AS id FROM connections WHERE member_id = ?1 \
     ORDER BY create_time DESC, other_id DESC LIMIT ?2";

/// The mutual connections of `?1` and `?2` (`?1` the smaller side): their count and the first
/// `?3` ids in id order, as a JSON array. By merge, both lists are read once in id order; by
/// probe, each row of `?1`'s list is a primary-key search of `?2`'s.
fn degree_mutual_sql(merge: bool) -> String {
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

impl SqliteProfileStore {
    /// Moves a pending invitation to `state` (declined by its invitee or withdrawn by its
    /// inviter) as `member_id`.
    async fn close_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        state: InvitationState,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        let invitation_id = invitation_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| close_invitation_in(conn, &invitation_id, &member_id, state, now))
            .await
    }

    /// The resource an idempotency key created, if a request with it succeeded.
    async fn recorded(&self, key: &IdempotencyKey) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?",
        )
        .bind(&key.caller)
        .bind(&key.request_id)
        .fetch_optional(&self.db.reader)
        .await?)
    }

    /// After a failed create with `key`: when a request with the same key has succeeded
    /// meanwhile, the failure was the race with it (or with its effects), and its resource is
    /// the answer.
    async fn recorded_after_failure(
        &self,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<Option<String>> {
        match key {
            Some(key) => self.recorded(key).await,
            None => Ok(None),
        }
    }

    async fn replay_profile(&self, id: &str) -> StoreResult<ProfileRecord> {
        self.get_profile(id, None)
            .await?
            .ok_or(ProfileError::NotFound("profile"))
    }

    async fn replay_invitation(&self, id: &str) -> StoreResult<InvitationRecord> {
        sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.db.reader)
        .await?
        .as_ref()
        .map(invitation_from_row)
        .transpose()?
        // Only a block removes an invitation; a new one would not be found either.
        .ok_or(ProfileError::NotFound("invitee"))
    }

    async fn insert_profile(
        &self,
        id: &str,
        f: ProfileFields,
        now: i64,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<ProfileRecord> {
        let id = id.to_owned();
        let key = key.cloned();
        self.db
            .write(move |conn| insert_profile_in(conn, &id, f, now, key.as_ref()))
            .await
    }

    async fn insert_invitation(
        &self,
        inv: InvitationRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord> {
        let key = key.cloned();
        self.db
            .write(move |conn| insert_invitation_in(conn, inv, key.as_ref()))
            .await
    }
}

#[async_trait]
impl ProfileStore for SqliteProfileStore {
    async fn create_profile(
        &self,
        id: &str,
        f: ProfileFields,
        now: i64,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<ProfileRecord> {
        if let Some(key) = key {
            if let Some(id) = self.recorded(key).await? {
                return self.replay_profile(&id).await;
            }
        }
        match self.insert_profile(id, f, now, key).await {
            Err(err) => match self.recorded_after_failure(key).await? {
                Some(id) => self.replay_profile(&id).await,
                None => Err(err),
            },
            created => created,
        }
    }

    async fn get_profile(
        &self,
        id: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>> {
        sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = ? AND {VISIBLE_TO_VIEWER}"
        ))
        .bind(id)
        .bind(viewer)
        .bind(viewer)
        .fetch_optional(&self.db.reader)
        .await?
        .as_ref()
        .map(profile_from_row)
        .transpose()
    }

    async fn get_profile_by_handle(
        &self,
        handle_key: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>> {
        sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE handle_key = ? AND {VISIBLE_TO_VIEWER}"
        ))
        .bind(handle_key)
        .bind(viewer)
        .bind(viewer)
        .fetch_optional(&self.db.reader)
        .await?
        .as_ref()
        .map(profile_from_row)
        .transpose()
    }

    async fn batch_get_profiles(
        &self,
        ids: &[String],
        viewer: Option<&str>,
    ) -> StoreResult<Vec<ProfileRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids as one bound JSON array: one statement text for every batch size (cached
        // once), no per-id bind (the post service asks for up to 1,000 authors at once).
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles \
             WHERE id IN (SELECT value FROM json_each(?)) AND {VISIBLE_TO_VIEWER}"
        );
        sqlx::query(&sql)
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .bind(viewer)
            .bind(viewer)
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(profile_from_row)
            .collect()
    }

    async fn update_profile(
        &self,
        id: &str,
        changes: ProfileChanges,
        now: i64,
    ) -> StoreResult<ProfileRecord> {
        let id = id.to_owned();
        self.db
            .write(move |conn| update_profile_in(conn, &id, changes, now))
            .await
    }

    async fn create_invitation(
        &self,
        inv: InvitationRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord> {
        if let Some(key) = key {
            if let Some(id) = self.recorded(key).await? {
                return self.replay_invitation(&id).await;
            }
        }
        match self.insert_invitation(inv, key).await {
            Err(err) => match self.recorded_after_failure(key).await? {
                Some(id) => self.replay_invitation(&id).await,
                None => Err(err),
            },
            created => created,
        }
    }

    async fn accept_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        let invitation_id = invitation_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| accept_invitation_in(conn, &invitation_id, &member_id, now))
            .await
    }

    async fn decline_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        self.close_invitation(invitation_id, member_id, InvitationState::Declined, now)
            .await
    }

    async fn withdraw_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        self.close_invitation(invitation_id, member_id, InvitationState::Withdrawn, now)
            .await
    }

    async fn remove_connection(&self, member_id: &str, other_id: &str) -> StoreResult<()> {
        let (member_id, other_id) = (member_id.to_owned(), other_id.to_owned());
        let now = pronet_common::time::now_micros();
        self.db
            .write(move |conn| {
                let removed = conn
                    .prepare_cached(
                        "DELETE FROM connections WHERE (member_id = ?1 AND other_id = ?2) \
                         OR (member_id = ?2 AND other_id = ?1)",
                    )?
                    .execute((&member_id, &other_id))?;
                if removed == 0 {
                    return Err(ProfileError::NotFound("connection"));
                }
                let event = events::connection_removed(now, &member_id, &other_id);
                outbox::append_sqlite(conn, &[event])?;
                Ok(())
            })
            .await
    }

    async fn unfollow(&self, member_id: &str, target: &FollowTarget) -> StoreResult<()> {
        let (member_id, target) = (member_id.to_owned(), target.clone());
        let now = pronet_common::time::now_micros();
        self.db
            .write(move |conn| {
                let removed = conn
                    .prepare_cached(
                        "DELETE FROM follows WHERE member_id = ? AND target_kind = ? AND target = ?",
                    )?
                    .execute((&member_id, target.kind(), target.value()))?;
                if removed > 0 {
                    let event = events::unfollowed(now, &member_id, &target);
                    outbox::append_sqlite(conn, &[event])?;
                }
                Ok::<_, ProfileError>(())
            })
            .await
    }

    async fn list_followers(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowerRecord>> {
        let (time, key) = after.map_or((i64::MAX, String::new()), |c| (c.time, c.key));
        let rows = sqlx::query(
            "SELECT member_id, create_time FROM follows \
             WHERE target_kind = ? AND target = ? AND (create_time, member_id) < (?, ?) \
             ORDER BY create_time DESC, member_id DESC LIMIT ?",
        )
        .bind(FollowTarget::MEMBER_KIND)
        .bind(member_id)
        .bind(time)
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.db.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FollowerRecord {
                    member_id: r.try_get("member_id")?,
                    create_time: r.try_get("create_time")?,
                })
            })
            .collect()
    }

    async fn connection_degree(
        &self,
        viewer_id: &str,
        member_id: &str,
    ) -> StoreResult<DegreeRecord> {
        // One snapshot for every query; the first reads everything that is a primary-key
        // lookup: both profiles, blocks either way, a direct connection and both counts.
        let mut tx = self.db.reader.begin().await?;
        let (viewer_exists, member_exists, blocked, connected, viewer_count, member_count): (
            bool,
            bool,
            bool,
            bool,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM profiles WHERE id = ?1), \
             EXISTS (SELECT 1 FROM profiles WHERE id = ?2), \
             EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2) \
               OR EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?2 AND blocked_id = ?1), \
             EXISTS (SELECT 1 FROM connections WHERE member_id = ?1 AND other_id = ?2), \
             COALESCE((SELECT connections FROM member_counts WHERE member_id = ?1), 0), \
             COALESCE((SELECT connections FROM member_counts WHERE member_id = ?2), 0)",
        )
        .bind(viewer_id)
        .bind(member_id)
        .fetch_one(&mut *tx)
        .await?;
        if !viewer_exists {
            return Err(ProfileError::NotFound("viewer"));
        }
        if !member_exists || blocked {
            return Err(ProfileError::NotFound("member"));
        }
        if viewer_id == member_id {
            return Ok(DegreeRecord {
                degree: Degree::Myself,
                mutual_count: 0,
                mutual_ids: Vec::new(),
            });
        }
        let (small, large, small_count, large_count) = if viewer_count <= member_count {
            (viewer_id, member_id, viewer_count, member_count)
        } else {
            (member_id, viewer_id, member_count, viewer_count)
        };
        // Mutual connections, exactly: the count and the first ids (both lists are in id
        // order in the primary key). Lists of a similar size are merged (INTERSECT reads both
        // once, in order: two hubs cost their two lists, not one probe per row); a small list
        // against a much larger one probes the larger's primary key once per row instead.
        let mutual = degree_mutual_sql(mutual_by_merge(small_count, large_count));
        let (mutual_count, ids): (i64, String) = sqlx::query_as(&mutual)
            .bind(small)
            .bind(large)
            .bind(limits::MAX_MUTUAL_IDS as i64)
            .fetch_one(&mut *tx)
            .await?;
        let mutual_ids: Vec<String> = from_json(&ids, "mutual ids")?;
        let degree = if connected {
            Degree::First
        } else if mutual_count > 0 {
            Degree::Second
        } else {
            // A third degree is an edge between a neighbour of each: the smaller side's (at
            // most the cap of its most recent) neighbours, best connected first (the likeliest
            // to reach the other side; the materialized list is read in its order and EXISTS
            // stops at the first edge), each checked against the whole other side by walking
            // the shorter of the two lists (the counts say which) and probing the other's
            // primary key: a hub neighbour costs the other side's list, not its own.
            let third = sqlx::query(
                "WITH a AS MATERIALIZED (SELECT n.other_id AS a, \
                   COALESCE(m.connections, 0) AS degree FROM (SELECT other_id FROM connections \
                     WHERE member_id = ?1 ORDER BY create_time DESC, other_id DESC LIMIT ?3) n \
                   LEFT JOIN member_counts m ON m.member_id = n.other_id \
                   ORDER BY degree DESC, a) \
                 SELECT 1 FROM a WHERE CASE WHEN a.degree <= ?4 \
                   THEN EXISTS (SELECT 1 FROM connections e CROSS JOIN connections o \
                     WHERE e.member_id = a.a AND o.member_id = ?2 AND o.other_id = e.other_id) \
                   ELSE EXISTS (SELECT 1 FROM connections o CROSS JOIN connections e \
                     WHERE o.member_id = ?2 AND e.member_id = a.a AND e.other_id = o.other_id) \
                   END LIMIT 1",
            )
            .bind(small)
            .bind(large)
            .bind(limits::DEGREE_EXPANSION_CAP as i64)
            .bind(large_count)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if third {
                Degree::Third
            } else {
                Degree::OutOfNetwork
            }
        };
        tx.commit().await?;
        Ok(DegreeRecord {
            degree,
            mutual_count,
            mutual_ids,
        })
    }

    async fn list_invitations(
        &self,
        member_id: &str,
        direction: InvitationDirection,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<InvitationRecord>> {
        let column = match direction {
            InvitationDirection::Received => "invitee_id",
            InvitationDirection::Sent => "inviter_id",
        };
        let (time, key) = after.map_or((i64::MAX, String::new()), |c| (c.time, c.key));
        sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE {column} = ? AND state = ? AND (create_time, id) < (?, ?) \
             ORDER BY create_time DESC, id DESC LIMIT ?"
        ))
        .bind(member_id)
        .bind(InvitationState::Pending as i64)
        .bind(time)
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.db.reader)
        .await?
        .iter()
        .map(invitation_from_row)
        .collect()
    }

    async fn list_connections(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let (time, key) = after.map_or((i64::MAX, String::new()), |c| (c.time, c.key));
        let rows = sqlx::query(
            "SELECT other_id, create_time FROM connections \
             WHERE member_id = ? AND (create_time, other_id) < (?, ?) \
             ORDER BY create_time DESC, other_id DESC LIMIT ?",
        )
        .bind(member_id)
        .bind(time)
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.db.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConnectionRecord {
                    member_id: r.try_get("other_id")?,
                    create_time: r.try_get("create_time")?,
                })
            })
            .collect()
    }

    async fn follow(
        &self,
        member_id: &str,
        target: FollowTarget,
        now: i64,
    ) -> StoreResult<FollowingRecord> {
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| follow_in(conn, &member_id, target, now))
            .await
    }

    async fn list_following(
        &self,
        member_id: &str,
        after: Option<FollowCursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowingRecord>> {
        let (time, kind, target) = after.map_or((i64::MAX, i64::MAX, String::new()), |c| {
            (c.time, c.kind, c.target)
        });
        let rows = sqlx::query(
            "SELECT target_kind, target, create_time FROM follows \
             WHERE member_id = ? AND (create_time, target_kind, target) < (?, ?, ?) \
             ORDER BY create_time DESC, target_kind DESC, target DESC LIMIT ?",
        )
        .bind(member_id)
        .bind(time)
        .bind(kind)
        .bind(target)
        .bind(limit as i64)
        .fetch_all(&self.db.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: i64 = r.try_get("target_kind")?;
                let value: String = r.try_get("target")?;
                Ok(FollowingRecord {
                    target: FollowTarget::from_parts(kind, value)
                        .ok_or_else(|| ProfileError::Corrupt(format!("follow kind {kind}")))?,
                    create_time: r.try_get("create_time")?,
                })
            })
            .collect()
    }

    async fn block_member(&self, member_id: &str, blocked_id: &str, now: i64) -> StoreResult<()> {
        // One transaction: nobody sees the block without its clean-up, or the reverse.
        let member_id = member_id.to_owned();
        let blocked_id = blocked_id.to_owned();
        self.db
            .write(move |conn| block_member_in(conn, &member_id, &blocked_id, now))
            .await
    }

    async fn unblock_member(&self, member_id: &str, blocked_id: &str) -> StoreResult<()> {
        let (member_id, blocked_id) = (member_id.to_owned(), blocked_id.to_owned());
        let now = pronet_common::time::now_micros();
        self.db
            .write(move |conn| {
                let lifted = conn
                    .prepare_cached("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")?
                    .execute((&member_id, &blocked_id))?;
                if lifted > 0 {
                    let event = events::member_unblocked(now, &member_id, &blocked_id);
                    outbox::append_sqlite(conn, &[event])?;
                }
                Ok::<_, ProfileError>(())
            })
            .await
    }

    async fn relationships(
        &self,
        viewer_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<RelationshipRecord>> {
        let distinct: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        let list = numbered_placeholders(distinct.len());
        // Both queries read one snapshot.
        let mut tx = self.db.reader.begin().await?;
        // Point lookups in the connections primary key.
        let sql = format!(
            "SELECT other_id FROM connections WHERE member_id = ?1 AND other_id IN ({list})"
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(viewer_id);
        for id in &distinct {
            query = query.bind(*id);
        }
        let connected: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        // One branch per direction; each is a search of an index (the primary key or
        // `blocks_reverse`, as SQLite prefers), never a scan.
        let sql = format!(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ?1 AND blocked_id IN ({list}) \
             UNION SELECT blocker_id FROM blocks WHERE blocked_id = ?1 AND blocker_id IN ({list})"
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(viewer_id);
        for id in &distinct {
            query = query.bind(*id);
        }
        let blocked: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        tx.commit().await?;
        Ok(ids
            .iter()
            .map(|id| RelationshipRecord {
                member_id: id.clone(),
                connected: connected.contains(id),
                blocked: blocked.contains(id),
            })
            .collect())
    }

    async fn lookup_handles(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        if distinct.is_empty() {
            return Ok(Vec::new());
        }
        // One search of the handle_key unique index per key.
        let sql = format!(
            "SELECT handle_key, handle, id FROM profiles WHERE handle_key IN ({})",
            pronet_common::db::placeholders(distinct.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
        for key in &distinct {
            query = query.bind(*key);
        }
        let found: HashMap<String, (String, String)> = query
            .fetch_all(&self.db.reader)
            .await?
            .into_iter()
            .map(|(key, handle, id)| (key, (handle, id)))
            .collect();
        Ok(keys.iter().filter_map(|k| found.get(k).cloned()).collect())
    }

    async fn suggestion_candidates(&self, member_id: &str) -> StoreResult<SuggestionInputs> {
        // One snapshot for every query.
        let mut tx = self.db.reader.begin().await?;
        let Some((industry, positions, education)) = sqlx::query_as::<_, (String, String, String)>(
            "SELECT industry, positions, education FROM profiles WHERE id = ?",
        )
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(ProfileError::NotFound("member"));
        };
        let member = Affinity::of(
            &from_json(&positions, "positions")?,
            &from_json(&education, "education")?,
            &industry,
        );
        // Each expanded connection brings its FANOUT_CAP most recent connections as one JSON
        // array (one search of connections_newest each), so a hub among them costs no more
        // than FANOUT_CAP ids and the whole walk at most EXPANSION_CAP x FANOUT_CAP. They are
        // counted and ranked here, in memory: SQLite's GROUP BY and sort of those rows cost
        // several times more than the walk itself.
        let expansions: Vec<(String, String)> = sqlx::query_as(&format!(
            "WITH n AS ({EXPANDED}) SELECT n.id, (SELECT json_group_array(o) FROM ( \
               SELECT f.other_id AS o FROM connections f WHERE f.member_id = n.id \
               ORDER BY f.create_time DESC, f.other_id DESC LIMIT ?3)) FROM n"
        ))
        .bind(member_id)
        .bind(limits::SUGGESTION_EXPANSION_CAP as i64)
        .bind(limits::SUGGESTION_FANOUT_CAP as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut lists = Vec::with_capacity(expansions.len());
        for (id, reached) in expansions {
            lists.push((id, from_json::<String>(&reached, "connections")?));
        }
        let reached = count_reached(member_id, &lists);
        // The exclusions, primary-key probes, run in rank order until CANDIDATE_CAP pass (no
        // ORDER BY: json_each yields the array in order, and a sort would make SQLite probe
        // every member reached before the LIMIT): a few hundred probes, not five for each of
        // thousands. The kept come back with their index in the ranking.
        // Only those kept are compared with the member: primary-key probes of the company and
        // school key tables (with the member's keys) and of the candidate's industry key,
        // never their profiles' JSON.
        let ranked: Vec<&str> = reached.iter().map(|r| r.member_id).collect();
        let industry_key = member.industry.as_ref().map(|(k, _)| k.as_str());
        type Row = (i64, String, String, Option<bool>);
        let mut kept: Vec<Row> = sqlx::query_as(
            "SELECT h.key, \
               (SELECT json_group_array(k.value) FROM json_each(?4) k WHERE EXISTS (SELECT 1 \
                 FROM profile_companies pc WHERE pc.member_id = h.value \
                 AND pc.company_key = k.value)), \
               (SELECT json_group_array(k.value) FROM json_each(?5) k WHERE EXISTS (SELECT 1 \
                 FROM profile_schools ps WHERE ps.member_id = h.value \
                 AND ps.school_key = k.value)), \
               (SELECT p.industry_key FROM profiles p WHERE p.id = h.value) = ?6 \
             FROM json_each(?2) h \
             WHERE NOT EXISTS (SELECT 1 FROM connections x \
                 WHERE x.member_id = ?1 AND x.other_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = ?1 AND blocker_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM invitations WHERE inviter_id = ?1 AND state = ?7 \
                 AND invitee_id = h.value) \
               AND NOT EXISTS (SELECT 1 FROM invitations WHERE invitee_id = ?1 AND state = ?7 \
                 AND inviter_id = h.value) \
             LIMIT ?3",
        )
        .bind(member_id)
        .bind(serde_json::to_string(&ranked).unwrap_or_default())
        .bind(limits::SUGGESTION_CANDIDATE_CAP as i64)
        .bind(serde_json::to_string(&member.company_keys()).unwrap_or_default())
        .bind(serde_json::to_string(&member.school_keys()).unwrap_or_default())
        .bind(industry_key)
        .bind(InvitationState::Pending as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        kept.sort_unstable_by_key(|(index, ..)| *index);
        let mut candidates = Vec::with_capacity(kept.len());
        for (index, companies, schools, same_industry) in kept {
            let r = usize::try_from(index)
                .ok()
                .and_then(|i| reached.get(i))
                .ok_or_else(|| ProfileError::Corrupt(format!("suggestion index {index}")))?;
            candidates.push(SuggestionCandidate {
                affinity: Affinity::of_shared_keys(
                    from_json(&companies, "company keys")?,
                    from_json(&schools, "school keys")?,
                    industry_key
                        .filter(|_| same_industry == Some(true))
                        .map(str::to_owned),
                ),
                member_id: r.member_id.to_owned(),
                mutual_count: r.mutual_ids.len() as i64,
                mutual_ids: r
                    .mutual_ids
                    .iter()
                    .take(limits::MAX_MUTUAL_IDS)
                    .map(|id| (*id).to_owned())
                    .collect(),
            });
        }
        Ok(SuggestionInputs { member, candidates })
    }

    async fn search_profiles(
        &self,
        searcher: &str,
        query: &SearchQuery,
        window: std::ops::Range<usize>,
    ) -> StoreResult<Vec<SearchHit>> {
        let mut tx = self.db.reader.begin().await?;
        let Some(searcher_count) = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE((SELECT connections FROM member_counts WHERE member_id = p.id), 0) \
             FROM profiles p WHERE p.id = ?",
        )
        .bind(searcher)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(ProfileError::NotFound("searcher"));
        };
        let (filters, binds) = search_filters(query, searcher);
        let cap = limits::SEARCH_CANDIDATE_CAP;
        let rows: Vec<(String, i64, f64)> = if query.terms.is_empty() {
            let sql = format!(
                "SELECT p.id, p.update_time, 0.0 FROM profiles p WHERE 1 = 1{filters} \
                 ORDER BY p.update_time DESC, p.id LIMIT {cap}"
            );
            let mut q = sqlx::query_as(&sql);
            for b in &binds {
                q = q.bind(b);
            }
            q.fetch_all(&mut *tx).await?
        } else {
            // bm25 is lower for better matches; weights in column order: headline, skills,
            // positions, summary. Only the SEARCH_MATCH_CAP newest matches (highest document
            // ids: the index reads them in that order, no sort) are scored, so a common word
            // costs what a rare one does; the filters then probe each of those.
            let match_cap = limits::SEARCH_MATCH_CAP;
            let sql = format!(
                "SELECT p.id, p.update_time, m.relevance FROM (SELECT rowid AS docid, \
                 -bm25(profile_search, 4.0, 2.0, 2.0, 1.0) AS relevance FROM profile_search \
                 WHERE profile_search MATCH ? ORDER BY rowid DESC LIMIT {match_cap}) m \
                 CROSS JOIN profiles p ON p.search_docid = m.docid WHERE 1 = 1{filters} \
                 ORDER BY m.relevance DESC, p.id LIMIT {cap}"
            );
            let mut q = sqlx::query_as(&sql).bind(query.fts5_match());
            for b in &binds {
                q = q.bind(b);
            }
            q.fetch_all(&mut *tx).await?
        };
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Degrees only where the ranking or the page needs them (a second degree costs a scan
        // of the hit's connections).
        let needed: Vec<&str> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| search_degree_needed(*i, &window))
            .map(|(_, (id, _, _))| id.as_str())
            .collect();
        // One statement for their degrees: first is a primary-key search; second is settled
        // by the first mutual connection found (EXISTS stops there), walking the shorter of
        // the two lists (the counts say which) and probing the other's primary key: a hub
        // searcher costs each hit its own short list, a hub hit costs the searcher's, never
        // tens of thousands of rows either way.
        let degrees: Vec<(String, i64)> = sqlx::query_as(
            "SELECT h.value, CASE \
               WHEN EXISTS (SELECT 1 FROM connections WHERE member_id = ?1 AND other_id = h.value) \
                 THEN 1 \
               WHEN COALESCE((SELECT connections FROM member_counts \
                   WHERE member_id = h.value), 0) <= ?3 \
                 THEN CASE WHEN EXISTS (SELECT 1 FROM connections c CROSS JOIN connections s \
                   WHERE c.member_id = h.value AND s.member_id = ?1 AND s.other_id = c.other_id) \
                   THEN 2 ELSE 0 END \
               ELSE CASE WHEN EXISTS (SELECT 1 FROM connections s CROSS JOIN connections c \
                   WHERE s.member_id = ?1 AND c.member_id = h.value AND c.other_id = s.other_id) \
                   THEN 2 ELSE 0 END \
             END FROM json_each(?2) h",
        )
        .bind(searcher)
        .bind(serde_json::to_string(&needed).unwrap_or_default())
        .bind(searcher_count)
        .fetch_all(&mut *tx)
        .await?;
        let degrees: HashMap<String, i64> = degrees.into_iter().collect();
        tx.commit().await?;
        Ok(search_hits(rows, &window, |id| match degrees.get(id) {
            Some(1) => Degree::First,
            Some(2) => Degree::Second,
            _ => Degree::OutOfNetwork,
        }))
    }

    async fn search_highlights(
        &self,
        query: &SearchQuery,
        ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<String>>> {
        if ids.is_empty() || query.terms.is_empty() {
            return Ok(HashMap::new());
        }
        // The ids as one bound JSON array: one statement text (prepared once) for any page.
        let q = sqlx::query_as::<_, (String, String)>(
            "SELECT p.id, snippet(profile_search, -1, '[', ']', '…', 16) \
             FROM json_each(?2) h CROSS JOIN profiles p ON p.id = h.value \
             CROSS JOIN profile_search ON profile_search.rowid = p.search_docid \
             WHERE profile_search MATCH ?1",
        )
        .bind(query.fts5_match())
        .bind(serde_json::to_string(ids).unwrap_or_default());
        Ok(q.fetch_all(&self.db.reader)
            .await?
            .into_iter()
            .map(|(id, snippet)| (id, vec![snippet]))
            .collect())
    }

    async fn import_connections(
        &self,
        pairs: &[(String, String)],
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        let pairs = pairs.to_vec();
        self.db
            .write(move |conn| import_connections_in(conn, &pairs, now))
            .await
    }

    async fn import_profiles(
        &self,
        profiles: Vec<(String, ProfileFields)>,
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        self.db
            .write(move |conn| import_profiles_in(conn, profiles, now))
            .await
    }

    fn outbox(&self) -> Outbox {
        Outbox::sqlite(self.db.clone())
    }

    async fn export_state(
        &self,
        _since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        // One snapshot for the head and every page (see the helper). Dropped unfinished (an
        // error, a reader gone), it rolls back.
        let (mut tx, head) = outbox::snapshot_sqlite(&self.db).await?;
        sink.set_position(head);
        export_graph(&mut tx, sink).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Pushes the graph to `sink`, one keyset page of each table at a time (in primary-key order,
/// so each page is one index range), never the whole of a table in memory.
async fn export_graph(
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

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`), on the
// writer's connection: reads they make go through it too, to see the batch's earlier writes.

fn close_invitation_in(
    conn: &rusqlite::Connection,
    invitation_id: &str,
    member_id: &str,
    state: InvitationState,
    now: i64,
) -> StoreResult<InvitationRecord> {
    let mut inv = fetch_optional(
        conn,
        &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = ?"),
        [invitation_id],
        invitation_from_write_row,
    )?
    .ok_or(ProfileError::NotFound("invitation"))?;
    check_closer(&inv, member_id, state)?;
    conn.prepare_cached("UPDATE invitations SET state = ?, update_time = ? WHERE id = ?")?
        .execute((state as i64, now, invitation_id))?;
    inv.state = state;
    Ok(inv)
}

fn insert_profile_in(
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
            Some(_) if exists(conn, PROFILE_EXISTS, id)? => ProfileError::ProfileExists,
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

fn insert_invitation_in(
    conn: &rusqlite::Connection,
    inv: InvitationRecord,
    key: Option<&IdempotencyKey>,
) -> StoreResult<InvitationRecord> {
    if !exists(conn, PROFILE_EXISTS, &inv.inviter_id)? {
        return Err(ProfileError::NotFound("inviter"));
    }
    // A block either way looks exactly like a missing invitee.
    if !exists(conn, PROFILE_EXISTS, &inv.invitee_id)?
        || blocked_either_way(conn, &inv.inviter_id, &inv.invitee_id)?
    {
        return Err(ProfileError::NotFound("invitee"));
    }
    let connected = conn
        .prepare_cached("SELECT 1 FROM connections WHERE member_id = ? AND other_id = ?")?
        .exists((&inv.inviter_id, &inv.invitee_id))?;
    if connected {
        return Err(ProfileError::AlreadyConnected);
    }
    // The invitee already asked: both want the connection, so accept theirs.
    let reverse = fetch_optional(
        conn,
        &format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE inviter_id = ? AND invitee_id = ? AND state = ?"
        ),
        (
            &inv.invitee_id,
            &inv.inviter_id,
            InvitationState::Pending as i64,
        ),
        invitation_from_write_row,
    )?;
    if let Some(theirs) = reverse {
        let (accepted, made) = accept_in(conn, theirs, inv.create_time)?;
        if let Some(key) = key {
            record_idempotency_key(conn, key, &accepted.id, inv.create_time)?;
        }
        outbox::append_sqlite(conn, made.as_slice())?;
        return Ok(accepted);
    }
    let result = conn
        .prepare_cached(
            "INSERT INTO invitations (id, inviter_id, invitee_id, message, state, create_time, \
             update_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute((
            &inv.id,
            &inv.inviter_id,
            &inv.invitee_id,
            &inv.message,
            InvitationState::Pending as i64,
            inv.create_time,
            inv.create_time,
        ));
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ProfileError::InvitationPending),
        Err(e) => return Err(e.into()),
    }
    if let Some(key) = key {
        record_idempotency_key(conn, key, &inv.id, inv.create_time)?;
    }
    Ok(InvitationRecord {
        state: InvitationState::Pending,
        ..inv
    })
}

fn update_profile_in(
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

fn accept_invitation_in(
    conn: &rusqlite::Connection,
    invitation_id: &str,
    member_id: &str,
    now: i64,
) -> StoreResult<InvitationRecord> {
    let inv = fetch_optional(
        conn,
        &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = ?"),
        [invitation_id],
        invitation_from_write_row,
    )?
    .ok_or(ProfileError::NotFound("invitation"))?;
    if inv.invitee_id != member_id {
        return Err(ProfileError::NotInvitee("accept"));
    }
    if inv.state != InvitationState::Pending {
        return Err(ProfileError::InvitationNotPending);
    }
    let (inv, made) = accept_in(conn, inv, now)?;
    outbox::append_sqlite(conn, made.as_slice())?;
    Ok(inv)
}

fn follow_in(
    conn: &rusqlite::Connection,
    member_id: &str,
    target: FollowTarget,
    now: i64,
) -> StoreResult<FollowingRecord> {
    if !exists(conn, PROFILE_EXISTS, member_id)? {
        return Err(ProfileError::NotFound("member"));
    }
    if let FollowTarget::Member(followee) = &target {
        // A block either way looks exactly like a missing followee.
        if !exists(conn, PROFILE_EXISTS, followee)?
            || blocked_either_way(conn, member_id, followee)?
        {
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
        .prepare_cached(
            "SELECT create_time FROM follows \
             WHERE member_id = ? AND target_kind = ? AND target = ?",
        )?
        .query_row((member_id, target.kind(), target.value()), |row| row.get(0))?;
    if inserted > 0 {
        outbox::append_sqlite(conn, &[events::followed(now, member_id, &target)])?;
    }
    Ok(FollowingRecord {
        target,
        create_time,
    })
}

fn block_member_in(
    conn: &rusqlite::Connection,
    member_id: &str,
    blocked_id: &str,
    now: i64,
) -> StoreResult<()> {
    if !exists(conn, PROFILE_EXISTS, member_id)? {
        return Err(ProfileError::NotFound("member"));
    }
    if !exists(conn, PROFILE_EXISTS, blocked_id)? {
        return Err(ProfileError::NotFound("blocked member"));
    }
    let inserted = conn
        .prepare_cached(
            // Not OR IGNORE: that would also swallow the CHECK against blocking oneself.
            "INSERT INTO blocks (blocker_id, blocked_id, create_time) VALUES (?, ?, ?) \
             ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
        )?
        .execute((member_id, blocked_id, now))?;
    // Each OR branch is one primary-key (or sent-invitations index) lookup.
    conn.prepare_cached(
        "DELETE FROM connections WHERE (member_id = ?1 AND other_id = ?2) \
         OR (member_id = ?2 AND other_id = ?1)",
    )?
    .execute((member_id, blocked_id))?;
    conn.prepare_cached(
        "DELETE FROM follows WHERE (member_id = ?1 AND target_kind = ?3 AND target = ?2) \
         OR (member_id = ?2 AND target_kind = ?3 AND target = ?1)",
    )?
    .execute((member_id, blocked_id, FollowTarget::MEMBER_KIND))?;
    conn.prepare_cached(
        "DELETE FROM invitations \
         WHERE (inviter_id = ?1 AND state = ?3 AND invitee_id = ?2) \
         OR (inviter_id = ?2 AND state = ?3 AND invitee_id = ?1)",
    )?
    .execute((member_id, blocked_id, InvitationState::Pending as i64))?;
    // One event: the block ends the connection and the follows by itself (see the proto).
    if inserted > 0 {
        let event = events::member_blocked(now, member_id, blocked_id);
        outbox::append_sqlite(conn, &[event])?;
    }
    Ok(())
}

fn import_connections_in(
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

fn import_profiles_in(
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

#[cfg(test)]
mod tests;
