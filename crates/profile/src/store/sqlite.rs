//! The embedded profile store on SQLite.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use pronet_common::db::{MigrationFile, SqliteDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, NewEvent, Outbox};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::rows::{
    following_after, following_record, invitation_record, page_after, profile_record, skills_json,
};
use super::{invitations_page, ProfileStore, StoreResult, EXPORT_PAGE, INDEX_TABLES};
use super::{
    BLOCKED_EITHER_WAY, CONNECTED, CONNECTIONS_PAGE, DELETE_BLOCK, DELETE_CONNECTION,
    DELETE_FOLLOW, DELETE_MEMBER_FOLLOWS_EITHER_WAY, DELETE_PENDING_INVITATIONS_EITHER_WAY,
    EXPANDED, FOLLOWERS_PAGE, FOLLOWING_PAGE, FOLLOW_TIME, INSERT_BLOCK, INSERT_IDEMPOTENCY_KEY,
    INVITATION_BY_ID, INVITATION_COLUMNS, PROFILE_EXISTS, RECORDED_KEY, SET_INVITATION_STATE,
};
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

use graph::*;
use invitations::*;
use profiles::*;
use rows::*;
use search::*;

const MIGRATIONS: &[MigrationFile] = pronet_common::migrations![
    1: "profiles" => include_str!("../../migrations/sqlite/0001_profiles.sql"),
    2: "blocks" => include_str!("../../migrations/sqlite/0002_blocks.sql"),
    3: "idempotency keys" => include_str!("../../migrations/sqlite/0003_idempotency_keys.sql"),
    4: "followers" => include_str!("../../migrations/sqlite/0004_followers.sql"),
    5: "profile depth" => include_str!("../../migrations/sqlite/0005_profile_depth.sql"),
    6: "profile schools" => include_str!("../../migrations/sqlite/0006_profile_schools.sql"),
    7: "member counts" => include_str!("../../migrations/sqlite/0007_member_counts.sql"),
    8: "outbox" => outbox::SQLITE_MIGRATION,
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

/// Keeps the profiles a viewer may see: none blocked either way with the viewer. Binds the
/// viewer twice, after the query's other values; a NULL viewer (a service) sees every profile.
/// Each direction is one primary-key lookup.
const VISIBLE_TO_VIEWER: &str = "NOT EXISTS (SELECT 1 FROM blocks \
     WHERE blocker_id = ? AND blocked_id = profiles.id) \
     AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = ? AND blocker_id = profiles.id)";

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
                    .prepare_cached(DELETE_CONNECTION)?
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
                let removed = conn.prepare_cached(DELETE_FOLLOW)?.execute((
                    &member_id,
                    target.kind(),
                    target.value(),
                ))?;
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
        let (time, key) = page_after(after);
        let rows = sqlx::query(FOLLOWERS_PAGE)
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
        let (time, key) = page_after(after);
        sqlx::query(invitations_page(direction))
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
        let (time, key) = page_after(after);
        let rows = sqlx::query(CONNECTIONS_PAGE)
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
        let (time, kind, target) = following_after(after);
        let rows = sqlx::query(FOLLOWING_PAGE)
            .bind(member_id)
            .bind(time)
            .bind(kind)
            .bind(target)
            .bind(limit as i64)
            .fetch_all(&self.db.reader)
            .await?;
        rows.iter()
            .map(|r| {
                following_record(
                    r.try_get("target_kind")?,
                    r.try_get("target")?,
                    r.try_get("create_time")?,
                )
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
                    .prepare_cached(DELETE_BLOCK)?
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
        self.find_suggestion_candidates(member_id).await
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
}

#[async_trait]
impl EventSource for SqliteProfileStore {
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

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`), on the
// writer's connection: reads they make go through it too, to see the batch's earlier writes.

mod graph;
mod invitations;
mod profiles;
mod rows;
mod search;
mod suggestions;
mod writes;

#[cfg(test)]
mod tests;
