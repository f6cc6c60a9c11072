//! The profile store on PostgreSQL: the service's own schema in a shared database.
//!
//! Transactions run at READ COMMITTED, where each statement reads what was committed when it
//! started, so a read followed by a write is not atomic by itself. Every transaction that
//! changes how two members relate (invite, accept, follow, block) therefore first takes a
//! transaction-scoped advisory lock on the unordered pair: they run one after another for that
//! pair, and each one's reads see everything the previous one committed. Constraints (primary
//! keys, the one-pending-invitation index) stay the last line of defence and map to the same
//! errors as on SQLite.

use async_trait::async_trait;
use pronet_common::db::{MigrationFile, PgDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, NewEvent, Outbox};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

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
    check_closer, from_json, limits, search_degree_needed, search_hits, to_json, Affinity,
    ConnectionRecord, Cursor, Degree, DegreeRecord, FollowCursor, FollowTarget, FollowerRecord,
    FollowingRecord, IdempotencyKey, InvitationDirection, InvitationRecord, InvitationState,
    ProfileChanges, ProfileFields, ProfileRecord, RelationshipRecord, SearchDocument, SearchHit,
    SearchQuery, SuggestionCandidate, SuggestionInputs,
};
use crate::error::ProfileError;
use crate::events;
use pronet_common::db::numbered;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use graph::*;
use invitations::*;
use profiles::*;
use rows::*;
use search::*;

const MIGRATIONS: &[MigrationFile] = pronet_common::migrations![
    1: "profiles" => include_str!("../../migrations/postgres/0001_profiles.sql"),
    2: "blocks" => include_str!("../../migrations/postgres/0002_blocks.sql"),
    3: "idempotency keys" => include_str!("../../migrations/postgres/0003_idempotency_keys.sql"),
    4: "followers" => include_str!("../../migrations/postgres/0004_followers.sql"),
    5: "profile depth" => include_str!("../../migrations/postgres/0005_profile_depth.sql"),
    6: "profile schools" => include_str!("../../migrations/postgres/0006_profile_schools.sql"),
    7: "member counts" => include_str!("../../migrations/postgres/0007_member_counts.sql"),
    8: "outbox" => outbox::POSTGRES_MIGRATION,
];

/// Skills are JSONB, read back as their JSON text.
/// The counts are read in the same statement from `member_counts`, which triggers keep in step
/// with the connections and follows in their own transactions: exact, and one primary-key read
/// each however big the network.
const PROFILE_COLUMNS: &str = "id, handle, display_name, headline, summary, location, industry, \
     skills::text AS skills, positions::text AS positions, education::text AS education, \
     open_to_work, create_time, update_time, \
     COALESCE((SELECT m.connections FROM member_counts m WHERE m.member_id = profiles.id), 0) \
     AS connection_count, \
     COALESCE((SELECT m.followers FROM member_counts m WHERE m.member_id = profiles.id), 0) \
     AS follower_count";

#[derive(Debug, Clone)]
pub struct PgProfileStore {
    db: PgDb,
}

impl PgProfileStore {
    /// Connects to `url` and migrates `schema`, creating it if needed.
    pub async fn open(url: &str, schema: &str) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: PgDb::open(url, schema, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

/// Keeps the profiles a viewer may see: none blocked either way with the viewer, who is `$1`.
/// A NULL viewer (a service) sees every profile. Each direction is one index lookup.
const VISIBLE_TO_VIEWER: &str = "NOT EXISTS (SELECT 1 FROM blocks \
     WHERE blocker_id = $1 AND blocked_id = profiles.id) \
     AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocked_id = $1 AND blocker_id = profiles.id)";

#[async_trait]
impl ProfileStore for PgProfileStore {
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
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $2 AND {VISIBLE_TO_VIEWER}"
        ))
        .bind(viewer)
        .bind(id)
        .fetch_optional(&self.db.pool)
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
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE handle_key = $2 AND {VISIBLE_TO_VIEWER}"
        ))
        .bind(viewer)
        .bind(handle_key)
        .fetch_optional(&self.db.pool)
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
        sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = ANY($2) AND {VISIBLE_TO_VIEWER}"
        ))
        .bind(viewer)
        .bind(ids)
        .fetch_all(&self.db.pool)
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
        let mut tx = self.db.pool.begin().await?;
        // Locked until commit, so concurrent updates apply one after another and none is
        // lost. NO KEY: the id does not change, so rows referencing it need not wait.
        let row = sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ProfileError::NotFound("profile"))?;
        let before = profile_from_row(&row)?;
        let mut profile = before.clone();
        changes.apply(&mut profile);
        profile.update_time = now;
        let doc = profile.search_document();
        let result = sqlx::query(
            "UPDATE profiles SET handle = $1, handle_key = $2, display_name = $3, \
             headline = $4, summary = $5, location = $6, industry = $7, skills = $8::jsonb, \
             update_time = $9, positions = $11::jsonb, education = $12::jsonb, \
             open_to_work = $13, location_key = $14, industry_key = $15, skills_text = $16, \
             positions_text = $17 WHERE id = $10",
        )
        .bind(&profile.handle)
        .bind(profile.handle.to_ascii_lowercase())
        .bind(&profile.display_name)
        .bind(&profile.headline)
        .bind(&profile.summary)
        .bind(&profile.location)
        .bind(&profile.industry)
        .bind(skills_json(&profile.skills))
        .bind(now)
        .bind(id)
        .bind(to_json(&profile.positions))
        .bind(to_json(&profile.education))
        .bind(profile.open_to_work)
        .bind(&doc.location_key)
        .bind(&doc.industry_key)
        .bind(&doc.skills_text)
        .bind(&doc.positions_text)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if violated_unique(&e).is_some() => return Err(ProfileError::HandleTaken),
            Err(e) => return Err(e.into()),
        }
        write_index_rows(&mut tx, id, &doc).await?;
        let renamed = events::profile_renamed(now, &before, &profile);
        outbox::append_postgres(&mut tx, renamed.as_slice()).await?;
        tx.commit().await?;
        Ok(profile)
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
        // The pair first (an invitation's members never change), then the pair's lock, then
        // the invitation again: a concurrent accept or block may have changed it meanwhile.
        let pair: Option<(String, String)> =
            sqlx::query_as("SELECT inviter_id, invitee_id FROM invitations WHERE id = $1")
                .bind(invitation_id)
                .fetch_optional(&self.db.pool)
                .await?;
        let (inviter_id, invitee_id) = pair.ok_or(ProfileError::NotFound("invitation"))?;
        let mut tx = self.db.pool.begin().await?;
        self.lock_pair(&mut tx, &inviter_id, &invitee_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1 FOR UPDATE"
        ))
        .bind(invitation_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ProfileError::NotFound("invitation"))?;
        let inv = invitation_from_row(&row)?;
        if inv.invitee_id != member_id {
            return Err(ProfileError::NotInvitee("accept"));
        }
        if inv.state != InvitationState::Pending {
            return Err(ProfileError::InvitationNotPending);
        }
        let (inv, made) = accept_in(&mut tx, inv, now).await?;
        outbox::append_postgres(&mut tx, made.as_slice()).await?;
        tx.commit().await?;
        Ok(inv)
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
        let mut tx = self.db.pool.begin().await?;
        self.lock_pair(&mut tx, member_id, other_id).await?;
        let removed = sqlx::query(&numbered(DELETE_CONNECTION))
            .bind(member_id)
            .bind(other_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(ProfileError::NotFound("connection"));
        }
        let now = pronet_common::time::now_micros();
        let event = events::connection_removed(now, member_id, other_id);
        outbox::append_postgres(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unfollow(&self, member_id: &str, target: &FollowTarget) -> StoreResult<()> {
        // One DELETE (then its event): a concurrent follow either commits first (and is
        // removed) or after.
        let mut tx = self.db.pool.begin().await?;
        let removed = sqlx::query(&numbered(DELETE_FOLLOW))
            .bind(member_id)
            .bind(target.kind())
            .bind(target.value())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            let event = events::unfollowed(pronet_common::time::now_micros(), member_id, target);
            outbox::append_postgres(&mut tx, &[event]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_followers(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowerRecord>> {
        let (time, key) = page_after(after);
        let rows = sqlx::query(&numbered(FOLLOWERS_PAGE))
            .bind(FollowTarget::MEMBER_KIND)
            .bind(member_id)
            .bind(time)
            .bind(key)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
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
        // REPEATABLE READ: every query below reads one snapshot.
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        if !profile_exists(&mut *tx, viewer_id).await? {
            return Err(ProfileError::NotFound("viewer"));
        }
        if !profile_exists(&mut *tx, member_id).await?
            || blocked_either_way(&mut tx, viewer_id, member_id).await?
        {
            return Err(ProfileError::NotFound("member"));
        }
        if viewer_id == member_id {
            return Ok(DegreeRecord {
                degree: Degree::Myself,
                mutual_count: 0,
                mutual_ids: Vec::new(),
            });
        }
        let count =
            "SELECT COALESCE((SELECT connections FROM member_counts WHERE member_id = $1), 0)";
        let viewer_count: i64 = sqlx::query_scalar(count)
            .bind(viewer_id)
            .fetch_one(&mut *tx)
            .await?;
        let member_count: i64 = sqlx::query_scalar(count)
            .bind(member_id)
            .fetch_one(&mut *tx)
            .await?;
        let (small, large) = if viewer_count <= member_count {
            (viewer_id, member_id)
        } else {
            (member_id, viewer_id)
        };
        let connected = sqlx::query(&numbered(CONNECTED))
            .bind(viewer_id)
            .bind(member_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let mutual_count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connections a JOIN connections b \
             ON b.member_id = $2 AND b.other_id = a.other_id WHERE a.member_id = $1",
        )
        .bind(small)
        .bind(large)
        .fetch_one(&mut *tx)
        .await?;
        let mutual_ids: Vec<String> = if mutual_count > 0 {
            sqlx::query_scalar(
                "SELECT a.other_id FROM connections a JOIN connections b \
                 ON b.member_id = $2 AND b.other_id = a.other_id WHERE a.member_id = $1 \
                 ORDER BY a.other_id LIMIT $3",
            )
            .bind(small)
            .bind(large)
            .bind(limits::MAX_MUTUAL_IDS as i64)
            .fetch_all(&mut *tx)
            .await?
        } else {
            Vec::new()
        };
        let degree = if connected {
            Degree::First
        } else if mutual_count > 0 {
            Degree::Second
        } else {
            // A third degree is an edge between a neighbour of each: expand (at most the cap
            // of) the smaller side's neighbours and look for one in the other's.
            let third = sqlx::query(
                "SELECT 1 FROM (SELECT other_id FROM connections WHERE member_id = $1 \
                 ORDER BY create_time DESC, other_id DESC LIMIT $3) n \
                 JOIN connections c ON c.member_id = n.other_id \
                 WHERE EXISTS (SELECT 1 FROM connections o \
                 WHERE o.member_id = $2 AND o.other_id = c.other_id) LIMIT 1",
            )
            .bind(small)
            .bind(large)
            .bind(limits::DEGREE_EXPANSION_CAP as i64)
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
        sqlx::query(&numbered(invitations_page(direction)))
            .bind(member_id)
            .bind(InvitationState::Pending as i64)
            .bind(time)
            .bind(key)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
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
        let rows = sqlx::query(&numbered(CONNECTIONS_PAGE))
            .bind(member_id)
            .bind(time)
            .bind(key)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
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
        let mut tx = self.db.pool.begin().await?;
        if let FollowTarget::Member(followee) = &target {
            self.lock_pair(&mut tx, member_id, followee).await?;
        }
        if !profile_exists(&mut *tx, member_id).await? {
            return Err(ProfileError::NotFound("member"));
        }
        if let FollowTarget::Member(followee) = &target {
            // A block either way looks exactly like a missing followee.
            if !profile_exists(&mut *tx, followee).await?
                || blocked_either_way(&mut tx, member_id, followee).await?
            {
                return Err(ProfileError::NotFound("followee"));
            }
        }
        // A concurrent follow of the same target makes this insert wait for it and then do
        // nothing; the next statement reads the row it committed.
        let inserted = sqlx::query(
            "INSERT INTO follows (member_id, target_kind, target, create_time) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (member_id, target_kind, target) DO NOTHING",
        )
        .bind(member_id)
        .bind(target.kind())
        .bind(target.value())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let create_time: i64 = sqlx::query_scalar(&numbered(FOLLOW_TIME))
            .bind(member_id)
            .bind(target.kind())
            .bind(target.value())
            .fetch_one(&mut *tx)
            .await?;
        if inserted > 0 {
            outbox::append_postgres(&mut tx, &[events::followed(now, member_id, &target)]).await?;
        }
        tx.commit().await?;
        Ok(FollowingRecord {
            target,
            create_time,
        })
    }

    async fn list_following(
        &self,
        member_id: &str,
        after: Option<FollowCursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowingRecord>> {
        let (time, kind, target) = following_after(after);
        let rows = sqlx::query(&numbered(FOLLOWING_PAGE))
            .bind(member_id)
            .bind(time)
            .bind(kind)
            .bind(target)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
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
        // One transaction: nobody sees the block without its clean-up, or the reverse. The pair
        // lock makes a concurrent invite, accept or follow either finish before the clean-up
        // (which then removes what it made) or start after the block (and see it).
        let mut tx = self.db.pool.begin().await?;
        self.lock_pair(&mut tx, member_id, blocked_id).await?;
        if !profile_exists(&mut *tx, member_id).await? {
            return Err(ProfileError::NotFound("member"));
        }
        if !profile_exists(&mut *tx, blocked_id).await? {
            return Err(ProfileError::NotFound("blocked member"));
        }
        let inserted = sqlx::query(&numbered(INSERT_BLOCK))
            .bind(member_id)
            .bind(blocked_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(&numbered(DELETE_CONNECTION))
            .bind(member_id)
            .bind(blocked_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&numbered(DELETE_MEMBER_FOLLOWS_EITHER_WAY))
            .bind(member_id)
            .bind(blocked_id)
            .bind(FollowTarget::MEMBER_KIND)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&numbered(DELETE_PENDING_INVITATIONS_EITHER_WAY))
            .bind(member_id)
            .bind(blocked_id)
            .bind(InvitationState::Pending as i64)
            .execute(&mut *tx)
            .await?;
        // One event: the block ends the connection and the follows by itself (see the proto).
        if inserted > 0 {
            let event = events::member_blocked(now, member_id, blocked_id);
            outbox::append_postgres(&mut tx, &[event]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unblock_member(&self, member_id: &str, blocked_id: &str) -> StoreResult<()> {
        let mut tx = self.db.pool.begin().await?;
        let lifted = sqlx::query(&numbered(DELETE_BLOCK))
            .bind(member_id)
            .bind(blocked_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if lifted > 0 {
            let now = pronet_common::time::now_micros();
            let event = events::member_unblocked(now, member_id, blocked_id);
            outbox::append_postgres(&mut tx, &[event]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn relationships(
        &self,
        viewer_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<RelationshipRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, so one snapshot; every EXISTS is a primary-key lookup, and the rows
        // come back in request order, repeats included.
        let rows = sqlx::query(RELATIONSHIPS)
            .bind(viewer_id)
            .bind(ids)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RelationshipRecord {
                    member_id: r.try_get("id")?,
                    connected: r.try_get("connected")?,
                    blocked: r.try_get("blocked")?,
                })
            })
            .collect()
    }

    async fn lookup_handles(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement; each key is a search of the handle_key unique index, and the rows
        // come back in request order, repeats included.
        Ok(sqlx::query_as(
            "SELECT p.handle, p.id FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n) \
             JOIN profiles p ON p.handle_key = k.key ORDER BY k.n",
        )
        .bind(keys)
        .fetch_all(&self.db.pool)
        .await?)
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
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        if !profile_exists(&mut *tx, searcher).await? {
            return Err(ProfileError::NotFound("searcher"));
        }
        let cap = limits::SEARCH_CANDIDATE_CAP;
        let rows: Vec<(String, i64, f64)> = if query.terms.is_empty() {
            let (filters, binds) = search_filters(query, 2);
            let sql = format!(
                "SELECT p.id, p.update_time, 0.0::float8 FROM profiles p WHERE TRUE{filters} \
                 ORDER BY p.update_time DESC, p.id LIMIT {cap}"
            );
            let mut q = sqlx::query_as(&sql).bind(searcher);
            for b in &binds {
                q = q.bind(b);
            }
            q.fetch_all(&mut *tx).await?
        } else {
            // ts_rank_cd over the A/B/C weights of the generated search_vector. Only the
            // SEARCH_MATCH_CAP most recently created matches are ranked (as on SQLite).
            let (filters, binds) = search_filters(query, 3);
            let match_cap = limits::SEARCH_MATCH_CAP;
            let sql = format!(
                "SELECT p.id, p.update_time, ts_rank_cd(p.search_vector, q)::float8 AS relevance \
                 FROM (SELECT m.* FROM profiles m, plainto_tsquery('simple', $2) mq \
                   WHERE m.search_vector @@ mq ORDER BY m.create_time DESC, m.id DESC \
                   LIMIT {match_cap}) p, plainto_tsquery('simple', $2) q \
                 WHERE TRUE{filters} \
                 ORDER BY relevance DESC, p.id LIMIT {cap}"
            );
            let mut q = sqlx::query_as(&sql).bind(searcher).bind(ts_words(query));
            for b in &binds {
                q = q.bind(b);
            }
            q.fetch_all(&mut *tx).await?
        };
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // Degrees only where the ranking or the page needs them.
        let ids: Vec<&str> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| search_degree_needed(*i, &window))
            .map(|(_, (id, _, _))| id.as_str())
            .collect();
        let first: HashSet<String> = sqlx::query_scalar(
            "SELECT other_id FROM connections WHERE member_id = $1 AND other_id = ANY($2::text[])",
        )
        .bind(searcher)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        // Second degree: the first mutual connection found settles it (EXISTS stops there).
        let second: HashSet<String> = sqlx::query_scalar(
            "SELECT x.id FROM unnest($2::text[]) AS x(id) WHERE EXISTS (SELECT 1 \
             FROM connections c JOIN connections m ON m.member_id = $1 \
             AND m.other_id = c.other_id WHERE c.member_id = x.id)",
        )
        .bind(searcher)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        tx.commit().await?;
        Ok(search_hits(rows, &window, |id| {
            if first.contains(id) {
                Degree::First
            } else if second.contains(id) {
                Degree::Second
            } else {
                Degree::OutOfNetwork
            }
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
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.id, ts_headline('simple', concat_ws(' · ', NULLIF(p.headline, ''), \
             NULLIF(p.skills_text, ''), NULLIF(p.positions_text, ''), NULLIF(p.summary, '')), q, \
             'StartSel=[, StopSel=], MaxWords=24, MinWords=8, MaxFragments=2, \
             FragmentDelimiter=\" … \"') \
             FROM profiles p, plainto_tsquery('simple', $1) q \
             WHERE p.id = ANY($2::text[]) AND p.search_vector @@ q",
        )
        .bind(ts_words(query))
        .bind(ids)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, h)| (id, vec![h])).collect())
    }

    async fn import_connections(
        &self,
        pairs: &[(String, String)],
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        let (a, b): (Vec<&str>, Vec<&str>) =
            pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).unzip();
        let mut tx = self.db.pool.begin().await?;
        // A block committed while this runs could otherwise miss the connections it must
        // remove: blocks wait for the import (imports are rare and short).
        sqlx::query("LOCK TABLE blocks IN SHARE MODE")
            .execute(&mut *tx)
            .await?;
        // The two inserts below each lock their members' count rows (in member order within a
        // statement, not across the two): imports take their turn so that two of them never
        // hold each other's rows. A per-item write holding a count row is waited for, never
        // the other way round.
        sqlx::query("LOCK TABLE member_counts IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        // RETURNING yields only the rows inserted: the pairs this import connects.
        let inserted: HashSet<(String, String)> = sqlx::query_as(
            "INSERT INTO connections (member_id, other_id, create_time) \
             SELECT v.a, v.b, $3 FROM unnest($1::text[], $2::text[]) AS v(a, b) \
             WHERE EXISTS (SELECT 1 FROM profiles WHERE id = v.a) \
             AND EXISTS (SELECT 1 FROM profiles WHERE id = v.b) \
             AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = v.a AND blocked_id = v.b) \
             AND NOT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = v.b AND blocked_id = v.a) \
             ON CONFLICT DO NOTHING RETURNING member_id, other_id",
        )
        .bind(&a)
        .bind(&b)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        // The other way for every pair now connected one way.
        sqlx::query(
            "INSERT INTO connections (member_id, other_id, create_time) \
             SELECT c.other_id, c.member_id, c.create_time \
             FROM unnest($1::text[], $2::text[]) AS v(a, b) \
             JOIN connections c ON c.member_id = v.a AND c.other_id = v.b \
             ON CONFLICT DO NOTHING",
        )
        .bind(&a)
        .bind(&b)
        .execute(&mut *tx)
        .await?;
        // In the order given, whatever order the insert took.
        let events: Vec<NewEvent> = pairs
            .iter()
            .filter(|pair| inserted.contains(*pair))
            .map(|(a, b)| events::connection_made(now, a, b))
            .collect();
        outbox::append_postgres(&mut tx, &events).await?;
        tx.commit().await?;
        let created = events.len() as u64;
        Ok((created, pairs.len() as u64 - created))
    }

    async fn import_profiles(
        &self,
        profiles: Vec<(String, ProfileFields)>,
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        let total = profiles.len() as u64;
        let mut created = Vec::new();
        let mut tx = self.db.pool.begin().await?;
        // One statement per profile (a few per profile with its filter rows): an import of
        // 1000 is a few thousand statements on one connection, in one transaction.
        for (id, f) in &profiles {
            if insert_profile_row(&mut tx, id, f, now, true)
                .await?
                .rows_affected()
                == 1
            {
                write_index_rows(&mut tx, id, &f.search_document()).await?;
                created.push(events::profile_created(
                    now,
                    id,
                    f.handle.as_str(),
                    &f.display_name,
                ));
            }
        }
        outbox::append_postgres(&mut tx, &created).await?;
        tx.commit().await?;
        let created = created.len() as u64;
        Ok((created, total - created))
    }
}

#[async_trait]
impl EventSource for PgProfileStore {
    fn outbox(&self) -> Outbox {
        Outbox::postgres(self.db.clone())
    }

    async fn export_state(
        &self,
        _since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        // One snapshot for the head and every page (see the helper). Dropped unfinished (an
        // error, a reader gone), it rolls back.
        let (mut tx, head) = outbox::snapshot_postgres(&self.db).await?;
        sink.set_position(head);
        export_graph(&mut tx, sink).await?;
        tx.commit().await?;
        Ok(())
    }
}

mod graph;
mod invitations;
mod profiles;
mod rows;
mod search;
mod suggestions;
mod writes;

#[cfg(test)]
mod tests;
