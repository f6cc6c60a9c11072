//! The engagement store on PostgreSQL: one schema of a shared database, a pool of connections.
//!
//! Writers run concurrently at READ COMMITTED, so every read-then-write is made safe by the row
//! it is about: a reaction or share is claimed with `INSERT ... ON CONFLICT DO NOTHING` (a
//! racing writer waits for the first to commit and then sees its row), and a reaction changed
//! in place is locked with `SELECT ... FOR UPDATE` before its counts move. Counts change with
//! an upsert that adds to the stored value, never a value computed from an earlier read. Each
//! transaction locks its row first and the post's `post_stats` row last, so writers of one post
//! queue on that row without deadlocking.
//!
//! Comment writes (create a reply, edit, delete, react to a comment) first take a transaction
//! advisory lock on their post's comments, so a reply never lands under a parent being deleted
//! and a reaction never outlives its comment; the counts then change as on SQLite.
//!
//! Lists of ids are bound as one array, `unnest`ed and looked up one by one through an index
//! (see the read queries): one prepared statement whatever their length, and work that grows
//! with the ids asked for, never with the tables.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use pronet_common::db::{pg_placeholders, MigrationFile, PgDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, NewEvent, Outbox};
use pronet_common::time::now_micros;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::export::{self, ImpressionGroups};
use super::import::{
    distinct_comments, distinct_shares, first_views, fold_impressions, fold_reactions,
    impression_events, reaction_event, StatsDeltas, StoredReaction, StoredReactions, STATS_COLUMNS,
};
use super::{
    comment_cursor_binds, count_column, list_comments_sql, mute_limit_reached, numbered,
    reaction_type_from, CursorValue, EngagementStore, StoreResult, COMMENT_COLUMNS, COMMENT_COUNT,
    IMPRESSION_COUNT, KIND_COMMENT, KIND_REACTION, KIND_SHARE, MUTE_COUNT_SQL, MUTE_DELETE_SQL,
    MUTE_INSERT_SQL, MUTE_LIST_SQL, MUTE_TIME_SQL, SHARE_COUNT, UNIQUE_VIEWER_COUNT,
};
use crate::domain::{
    ActivityKind, ActivityRecord, CommentCursor, CommentListing, CommentRecord, EngagementImport,
    IdempotencyKey, ImportCounts, Mute, MuteKind, PostStatsRecord, ReactionQuery, ReactionRecord,
    ReactionType, ShareRecord,
};
use crate::error::EngagementError;
use crate::events;

mod comments;
mod counts;
mod imports;
mod mutes;
mod rows;
use comments::*;
use counts::*;
use imports::*;
use rows::*;

const MIGRATIONS: &[MigrationFile] = pronet_common::migrations![
    1: "engagement" => include_str!("../../migrations/postgres/0001_engagement.sql"),
    2: "idempotency keys" => include_str!("../../migrations/postgres/0002_idempotency_keys.sql"),
    3: "threads and impressions" => include_str!("../../migrations/postgres/0003_threads_impressions.sql"),
    4: "share ids" => include_str!("../../migrations/postgres/0004_share_ids.sql"),
    5: "covering activity indexes" => include_str!("../../migrations/postgres/0005_covering_activity.sql"),
    6: "outbox" => outbox::POSTGRES_MIGRATION,
    7: "feed mutes" => include_str!("../../migrations/postgres/0007_feed_mutes.sql"),
];

/// The stats of the posts in `$1`: one primary-key lookup per id, whatever the table's size.
/// (`post_id = ANY($1)` reads the same rows, but the planner prices each of a long list's
/// index probes so high that it scans the whole table instead; a LATERAL subquery with a
/// LIMIT cannot be turned into a join that does.)
const STATS_SQL: &str = "SELECT s.post_id, s.like_count, s.celebrate_count, s.support_count, \
     s.love_count, s.insightful_count, s.funny_count, s.comment_count, s.share_count, \
     s.impression_count, s.unique_viewer_count \
     FROM unnest($1::text[]) AS q (post_id) CROSS JOIN LATERAL \
     (SELECT * FROM post_stats WHERE post_stats.post_id = q.post_id LIMIT 1) AS s";

/// One branch of the recent-activity query: the newest `$3` rows of `table` by the members in
/// `$1` since `$2`, ordered as the final list. Each member's rows come from its own range of
/// the by-member index, newest first and at most `$3` of them (a row among the newest `$3` of
/// all is among the newest `$3` of its member's, ties broken by post as in the final order),
/// so the work grows with the members asked for, not with the table; `member_id = ANY($1)`
/// would be planned as a scan of the whole table for long lists. `$1` must not repeat a
/// member (see [`distinct`]), or its rows would be listed twice.
macro_rules! activity_branch {
    ($table:literal, $kind:literal, $reaction_type:literal) => {
        concat!(
            "(SELECT a.member_id, a.post_id, ",
            $kind,
            "::int8 AS kind, a.reaction_type::int8 AS reaction_type, a.create_time \
             FROM unnest($1::text[]) AS m (member_id) CROSS JOIN LATERAL (\
             SELECT t.member_id, t.post_id, t.create_time, ",
            $reaction_type,
            " AS reaction_type FROM ",
            $table,
            " AS t WHERE t.member_id = m.member_id AND t.create_time >= $2 \
             ORDER BY t.create_time DESC, t.post_id LIMIT $3) AS a \
             ORDER BY a.create_time DESC, a.member_id, a.post_id LIMIT $3)"
        )
    };
}

/// The newest `$3` activities of the members in `$1` since `$2`: the outer sort sees at most
/// 3 x `$3` rows and still picks the true newest.
const ACTIVITY_SQL: &str = concat!(
    "SELECT member_id, post_id, kind, reaction_type, create_time FROM (",
    activity_branch!("reactions", "1", "t.reaction_type"),
    " UNION ALL ",
    activity_branch!("comments", "2", "0"),
    " UNION ALL ",
    activity_branch!("shares", "3", "0"),
    ") AS recent ORDER BY create_time DESC, kind, member_id, post_id LIMIT $3"
);

#[derive(Debug, Clone)]
pub struct PgEngagementStore {
    db: PgDb,
}

impl PgEngagementStore {
    /// Connects to `url` and migrates `schema` (created if needed), where the store lives.
    pub async fn open(url: &str, schema: &str) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: PgDb::open(url, schema, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

#[async_trait]
impl EngagementStore for PgEngagementStore {
    async fn react(
        &self,
        post_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<ReactionRecord> {
        let mut tx = self.db.pool.begin().await?;
        // An unreact may commit between our insert finding the row taken and our lock on it;
        // then the row is free again, so claim it anew.
        let (create_time, previous) = loop {
            // Claims the (post, member) row; a racing first reaction waits here for ours to commit
            // and then finds the row taken.
            let created = sqlx::query(
            "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (post_id, member_id) DO NOTHING",
        )
        .bind(post_id)
        .bind(member_id)
        .bind(reaction_type_number(reaction_type))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
            break if created {
                add_counts(&mut tx, post_id, &[(count_column(reaction_type), 1)]).await?;
                (now, None)
            } else {
                // Locked until we commit, so the type read is the one the counts move from.
                let row = sqlx::query(
                    "SELECT reaction_type, create_time FROM reactions \
                 WHERE post_id = $1 AND member_id = $2 FOR UPDATE",
                )
                .bind(post_id)
                .bind(member_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    continue;
                };
                let old = reaction_type_from(row.try_get::<i16, _>("reaction_type")?.into())?;
                let create_time: i64 = row.try_get("create_time")?;
                if old == reaction_type {
                    // The same type again: nothing changed, no event.
                    tx.commit().await?;
                    return Ok(ReactionRecord {
                        post_id: post_id.to_owned(),
                        member_id: member_id.to_owned(),
                        reaction_type,
                        create_time,
                    });
                }
                sqlx::query(
                    "UPDATE reactions SET reaction_type = $1, update_time = $2 \
                     WHERE post_id = $3 AND member_id = $4",
                )
                .bind(reaction_type_number(reaction_type))
                .bind(now)
                .bind(post_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
                add_counts(
                    &mut tx,
                    post_id,
                    &[(count_column(old), -1), (count_column(reaction_type), 1)],
                )
                .await?;
                (create_time, Some(old))
            };
        };
        let reaction = ReactionRecord {
            post_id: post_id.to_owned(),
            member_id: member_id.to_owned(),
            reaction_type,
            create_time,
        };
        outbox::append_postgres(
            &mut tx,
            &[events::at(now, events::reaction_set(&reaction, previous))],
        )
        .await?;
        tx.commit().await?;
        Ok(reaction)
    }

    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord> {
        let mut tx = self.db.pool.begin().await?;
        if let Some(key) = &key {
            // The key first, before anything else is written or locked: a racing retry waits
            // here until ours commits (or rolls back), then finds the key taken and returns the
            // comment the winner committed.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (caller, request_id) DO NOTHING",
            )
            .bind(&key.caller)
            .bind(&key.request_id)
            .bind(&comment.id)
            .bind(comment.create_time)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !claimed {
                let first = first_comment(&mut tx, key).await?;
                tx.commit().await?;
                return Ok(first);
            }
        }
        let mut comment = comment;
        if let Some(parent_id) = comment.parent_id.take() {
            lock_post_comments(&mut tx, &comment.post_id).await?;
            let parent = fetch_comment(&mut tx, &parent_id)
                .await?
                .filter(|p| p.post_id == comment.post_id)
                .ok_or(EngagementError::NotFound("comment"))?;
            // One level of threading: a reply to a reply answers its top-level comment.
            let top = parent.parent_id.unwrap_or(parent.id);
            sqlx::query("UPDATE comments SET reply_count = reply_count + 1 WHERE id = $1")
                .bind(&top)
                .execute(&mut *tx)
                .await?;
            comment.parent_id = Some(top);
        }
        sqlx::query(
            "INSERT INTO comments (id, post_id, member_id, text, create_time, parent_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&comment.id)
        .bind(&comment.post_id)
        .bind(&comment.member_id)
        .bind(&comment.text)
        .bind(comment.create_time)
        .bind(&comment.parent_id)
        .execute(&mut *tx)
        .await?;
        add_counts(&mut tx, &comment.post_id, &[(COMMENT_COUNT, 1)]).await?;
        outbox::append_postgres(
            &mut tx,
            &[events::at(
                comment.create_time,
                events::comment_created(&comment),
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(comment)
    }

    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool> {
        let mut tx = self.db.pool.begin().await?;
        // The delete locks the row: a racing react or unreact waits, then sees it gone.
        let removed: Option<i16> = sqlx::query_scalar(
            "DELETE FROM reactions WHERE post_id = $1 AND member_id = $2 RETURNING reaction_type",
        )
        .bind(post_id)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(old) = removed {
            let old = reaction_type_from(old.into())?;
            add_counts(&mut tx, post_id, &[(count_column(old), -1)]).await?;
            outbox::append_postgres(
                &mut tx,
                &[events::at(
                    now_micros(),
                    events::reaction_removed(post_id, member_id, old),
                )],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed.is_some())
    }

    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>> {
        let mut conn = self.db.pool.acquire().await?;
        fetch_comment(&mut conn, comment_id).await
    }

    async fn update_comment_text(
        &self,
        comment_id: &str,
        text: &str,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        let mut tx = self.db.pool.begin().await?;
        let comment = sqlx::query(&format!(
            "UPDATE comments SET text = $1, update_time = $2 WHERE id = $3 \
             RETURNING {COMMENT_COLUMNS}"
        ))
        .bind(text)
        .bind(now)
        .bind(comment_id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(comment_from_row)
        .transpose()?
        .ok_or(EngagementError::NotFound("comment"))?;
        tx.commit().await?;
        Ok(comment)
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64> {
        let mut tx = self.db.pool.begin().await?;
        let comment = lock_comment(&mut tx, comment_id).await?;
        let replies = match &comment.parent_id {
            None => {
                sqlx::query(
                    "DELETE FROM comment_reactions WHERE comment_id IN \
                     (SELECT id FROM comments WHERE parent_id = $1)",
                )
                .bind(comment_id)
                .execute(&mut *tx)
                .await?;
                let mut replies: Vec<(String, String, i64)> = sqlx::query_as(
                    "DELETE FROM comments WHERE parent_id = $1 \
                     RETURNING id, member_id, create_time",
                )
                .bind(comment_id)
                .fetch_all(&mut *tx)
                .await?;
                replies.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
                replies
            }
            Some(parent) => {
                sqlx::query("UPDATE comments SET reply_count = reply_count - 1 WHERE id = $1")
                    .bind(parent)
                    .execute(&mut *tx)
                    .await?;
                Vec::new()
            }
        };
        sqlx::query("DELETE FROM comment_reactions WHERE comment_id = $1")
            .bind(comment_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM comments WHERE id = $1")
            .bind(comment_id)
            .execute(&mut *tx)
            .await?;
        let removed = replies.len() as u64 + 1;
        add_counts(
            &mut tx,
            &comment.post_id,
            &[(COMMENT_COUNT, -(removed as i64))],
        )
        .await?;
        outbox::append_postgres(&mut tx, &super::deleted_comment_events(&comment, &replies))
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn react_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        let mut tx = self.db.pool.begin().await?;
        lock_comment(&mut tx, comment_id).await?;
        let existing: Option<i16> = sqlx::query_scalar(
            "SELECT reaction_type FROM comment_reactions \
             WHERE comment_id = $1 AND member_id = $2",
        )
        .bind(comment_id)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            None => {
                sqlx::query(
                    "INSERT INTO comment_reactions (comment_id, member_id, reaction_type, \
                     create_time) VALUES ($1, $2, $3, $4)",
                )
                .bind(comment_id)
                .bind(member_id)
                .bind(reaction_type_number(reaction_type))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                add_comment_counts(&mut tx, comment_id, &[(count_column(reaction_type), 1)])
                    .await?;
            }
            Some(old) => {
                let old = reaction_type_from(old.into())?;
                if old != reaction_type {
                    sqlx::query(
                        "UPDATE comment_reactions SET reaction_type = $1 \
                         WHERE comment_id = $2 AND member_id = $3",
                    )
                    .bind(reaction_type_number(reaction_type))
                    .bind(comment_id)
                    .bind(member_id)
                    .execute(&mut *tx)
                    .await?;
                    add_comment_counts(
                        &mut tx,
                        comment_id,
                        &[(count_column(old), -1), (count_column(reaction_type), 1)],
                    )
                    .await?;
                }
            }
        }
        let comment = require_comment(&mut tx, comment_id).await?;
        tx.commit().await?;
        Ok(comment)
    }

    async fn unreact_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
    ) -> StoreResult<CommentRecord> {
        let mut tx = self.db.pool.begin().await?;
        lock_comment(&mut tx, comment_id).await?;
        let removed: Option<i16> = sqlx::query_scalar(
            "DELETE FROM comment_reactions WHERE comment_id = $1 AND member_id = $2 \
             RETURNING reaction_type",
        )
        .bind(comment_id)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(old) = removed {
            let old = reaction_type_from(old.into())?;
            add_comment_counts(&mut tx, comment_id, &[(count_column(old), -1)]).await?;
        }
        let comment = require_comment(&mut tx, comment_id).await?;
        tx.commit().await?;
        Ok(comment)
    }

    async fn list_comments(
        &self,
        post_id: &str,
        listing: &CommentListing,
        after: Option<&CommentCursor>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let sql = numbered(&list_comments_sql(listing, after.is_some()));
        let mut query = sqlx::query(&sql).bind(post_id);
        if let CommentListing::Replies(parent_id) = listing {
            query = query.bind(parent_id);
        }
        if let Some(after) = after {
            for value in comment_cursor_binds(listing, after) {
                query = match value {
                    CursorValue::Int(n) => query.bind(n),
                    CursorValue::Text(t) => query.bind(t),
                };
            }
        }
        query
            .bind(limit_param(limit))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(comment_from_row)
            .collect()
    }

    async fn list_reactions(&self, q: &ReactionQuery) -> StoreResult<Vec<ReactionRecord>> {
        if q.include && q.members.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT post_id, member_id, reaction_type, create_time FROM reactions \
             WHERE post_id = ?",
        );
        if q.reaction_type.is_some() {
            sql.push_str(" AND reaction_type = ?");
        }
        if !q.members.is_empty() {
            sql.push_str(if q.include {
                " AND member_id = ANY(?)"
            } else {
                " AND member_id <> ALL(?)"
            });
        }
        if q.after.is_some() {
            sql.push_str(" AND (create_time < ? OR (create_time = ? AND member_id < ?))");
        }
        sql.push_str(" ORDER BY create_time DESC, member_id DESC LIMIT ?");
        let sql = numbered(&sql);
        let mut query = sqlx::query(&sql).bind(&q.post_id);
        if let Some(t) = q.reaction_type {
            query = query.bind(reaction_type_number(t));
        }
        if !q.members.is_empty() {
            query = query.bind(&q.members);
        }
        if let Some((time, member)) = &q.after {
            query = query.bind(*time).bind(*time).bind(member);
        }
        query
            .bind(limit_param(q.limit))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ReactionRecord {
                    post_id: row.try_get("post_id")?,
                    member_id: row.try_get("member_id")?,
                    reaction_type: reaction_type_from(
                        row.try_get::<i16, _>("reaction_type")?.into(),
                    )?,
                    create_time: row.try_get("create_time")?,
                })
            })
            .collect()
    }

    async fn record_impressions(
        &self,
        member_id: &str,
        post_ids: &[String],
        day: i64,
        now: i64,
    ) -> StoreResult<usize> {
        // Sorted, so concurrent calls lock the rows of shared posts in the same order.
        let mut sorted: Vec<&str> = distinct(post_ids);
        sorted.sort_unstable();
        let mut tx = self.db.pool.begin().await?;
        // A racing insert of the same (post, member, day) waits for ours, then does nothing.
        let mut new: Vec<String> = sqlx::query_scalar(
            "INSERT INTO impressions (post_id, member_id, day, create_time) \
             SELECT p, $2, $3, $4 FROM unnest($1::text[]) AS q (p) ORDER BY p \
             ON CONFLICT DO NOTHING RETURNING post_id",
        )
        .bind(&sorted)
        .bind(member_id)
        .bind(day)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        new.sort_unstable();
        if !new.is_empty() {
            let first: HashSet<String> = sqlx::query_scalar(
                "INSERT INTO post_viewers (member_id, post_id, first_time) \
                 SELECT $1, p, $3 FROM unnest($2::text[]) AS q (p) ORDER BY p \
                 ON CONFLICT DO NOTHING RETURNING post_id",
            )
            .bind(member_id)
            .bind(&new)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            let viewers: Vec<i64> = new.iter().map(|p| i64::from(first.contains(p))).collect();
            sqlx::query(
                "INSERT INTO post_stats (post_id, impression_count, unique_viewer_count) \
                 SELECT p, 1, v FROM unnest($1::text[], $2::int8[]) AS q (p, v) ORDER BY p \
                 ON CONFLICT (post_id) DO UPDATE SET \
                 impression_count = post_stats.impression_count + excluded.impression_count, \
                 unique_viewer_count = post_stats.unique_viewer_count + \
                 excluded.unique_viewer_count",
            )
            .bind(&new)
            .bind(&viewers)
            .execute(&mut *tx)
            .await?;
            // In request order, as on SQLite.
            let counted: HashSet<&str> = new.iter().map(String::as_str).collect();
            let in_order = |ids: &HashSet<&str>| -> Vec<String> {
                distinct(post_ids)
                    .into_iter()
                    .filter(|p| ids.contains(p))
                    .map(str::to_owned)
                    .collect()
            };
            let firsts: HashSet<&str> = first.iter().map(String::as_str).collect();
            let payload =
                events::impressions_recorded(member_id, in_order(&counted), in_order(&firsts));
            outbox::append_postgres(&mut tx, &[events::at(now, payload)]).await?;
        }
        tx.commit().await?;
        Ok(new.len())
    }

    async fn list_seen_posts(
        &self,
        member_id: &str,
        post_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let seen: HashSet<String> = sqlx::query_scalar(
            "SELECT v.post_id FROM unnest($2::text[]) AS q (post_id) CROSS JOIN LATERAL \
             (SELECT post_id FROM post_viewers \
              WHERE member_id = $1 AND post_id = q.post_id LIMIT 1) AS v",
        )
        .bind(member_id)
        .bind(distinct(post_ids))
        .fetch_all(&self.db.pool)
        .await?
        .into_iter()
        .collect();
        Ok(post_ids
            .iter()
            .filter(|id| seen.contains(*id))
            .cloned()
            .collect())
    }

    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        let mut tx = self.db.pool.begin().await?;
        // A racing repeat waits here for the first to commit, then finds the row taken.
        let created = sqlx::query(
            "INSERT INTO shares (post_id, member_id, id, create_time) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (post_id, member_id) DO NOTHING",
        )
        .bind(&share.post_id)
        .bind(&share.member_id)
        .bind(&share.id)
        .bind(share.create_time)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let recorded = if created {
            add_counts(&mut tx, &share.post_id, &[(SHARE_COUNT, 1)]).await?;
            outbox::append_postgres(
                &mut tx,
                &[events::at(
                    share.create_time,
                    events::share_recorded(&share),
                )],
            )
            .await?;
            share
        } else {
            // Shares never change once recorded: the committed row is the first.
            let row = sqlx::query(
                "SELECT id, create_time FROM shares WHERE post_id = $1 AND member_id = $2",
            )
            .bind(&share.post_id)
            .bind(&share.member_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| EngagementError::Corrupt("share vanished".into()))?;
            ShareRecord {
                id: row.try_get("id")?,
                create_time: row.try_get("create_time")?,
                ..share
            }
        };
        tx.commit().await?;
        Ok(recorded)
    }

    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts> {
        if batch.is_empty() {
            return Ok(ImportCounts::default());
        }
        let mut tx = self.db.pool.begin().await?;
        let counts = import_engagement_in(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found: HashMap<String, PostStatsRecord> = sqlx::query(STATS_SQL)
            .bind(post_ids)
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(|row| stats_from_row(row).map(|s| (s.post_id.clone(), s)))
            .collect::<StoreResult<_>>()?;
        Ok(post_ids
            .iter()
            .map(|id| {
                found
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| PostStatsRecord::zero(id))
            })
            .collect())
    }

    async fn list_recent_activity(
        &self,
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>> {
        if member_ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        sqlx::query(ACTIVITY_SQL)
            .bind(distinct(member_ids))
            .bind(since)
            .bind(limit_param(limit))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(activity_from_row)
            .collect()
    }

    async fn mute(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64> {
        self.mute_in(member_id, mute, now).await
    }

    async fn unmute(&self, member_id: &str, mute: &Mute) -> StoreResult<bool> {
        self.unmute_in(member_id, mute).await
    }

    async fn list_mutes(
        &self,
        member_id: &str,
        kind: MuteKind,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(&numbered(MUTE_LIST_SQL))
            .bind(member_id)
            .bind(kind.number() as i16)
            .bind(limit as i64)
            .fetch_all(&self.db.pool)
            .await?)
    }

    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        sqlx::query("SELECT * FROM post_stats ORDER BY post_id")
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(stats_from_row)
            .collect()
    }

    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        sqlx::query(&format!("{} ORDER BY post_id", super::COUNTED_FROM_ROWS))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(stats_from_row)
            .collect()
    }

    #[cfg(test)]
    async fn bulk_load(
        &self,
        reactions: &[ReactionRecord],
        comments: &[CommentRecord],
        shares: &[ShareRecord],
    ) -> StoreResult<()> {
        // Columns bound as arrays and unnested: one statement per 50,000 rows.
        const ROWS: usize = 50_000;
        fn column<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
            rows.iter().map(f).collect()
        }
        let mut tx = self.db.pool.begin().await?;
        for chunk in reactions.chunks(ROWS) {
            sqlx::query(
                "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                 update_time) SELECT p, m, t, c, c \
                 FROM UNNEST($1::text[], $2::text[], $3::int2[], $4::int8[]) AS r (p, m, t, c)",
            )
            .bind(column(chunk, |r| r.post_id.clone()))
            .bind(column(chunk, |r| r.member_id.clone()))
            .bind(column(chunk, |r| reaction_type_number(r.reaction_type)))
            .bind(column(chunk, |r| r.create_time))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in comments.chunks(ROWS) {
            sqlx::query(
                "INSERT INTO comments (id, post_id, member_id, text, create_time) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])",
            )
            .bind(column(chunk, |c| c.id.clone()))
            .bind(column(chunk, |c| c.post_id.clone()))
            .bind(column(chunk, |c| c.member_id.clone()))
            .bind(column(chunk, |c| c.text.clone()))
            .bind(column(chunk, |c| c.create_time))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in shares.chunks(ROWS) {
            sqlx::query(
                "INSERT INTO shares (post_id, member_id, id, create_time) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])",
            )
            .bind(column(chunk, |s| s.post_id.clone()))
            .bind(column(chunk, |s| s.member_id.clone()))
            .bind(column(chunk, |s| s.id.clone()))
            .bind(column(chunk, |s| s.create_time))
            .execute(&mut *tx)
            .await?;
        }
        // Every touched post's counts from all of its rows, old and new.
        sqlx::query(&format!(
            "INSERT INTO post_stats SELECT * FROM ({}) AS counted \
             ON CONFLICT (post_id) DO UPDATE SET like_count = excluded.like_count, \
             celebrate_count = excluded.celebrate_count, support_count = excluded.support_count, \
             love_count = excluded.love_count, insightful_count = excluded.insightful_count, \
             funny_count = excluded.funny_count, comment_count = excluded.comment_count, \
             share_count = excluded.share_count",
            super::COUNTED_FROM_ROWS
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[cfg(test)]
    async fn comment_count_drift(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(super::COMMENT_DRIFT)
            .fetch_all(&self.db.pool)
            .await?)
    }

    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE reactions, comments, shares, post_stats, idempotency_keys")
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    #[cfg(test)]
    async fn explain_hot_queries(
        &self,
        post_ids: &[String],
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<super::HotQueryPlans> {
        fn plan(rows: Vec<PgRow>) -> StoreResult<String> {
            let mut lines = Vec::new();
            for row in rows {
                let line: String = row.try_get(0)?;
                lines.push(line);
            }
            Ok(lines.join("\n"))
        }
        let stats = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {STATS_SQL}"))
            .bind(post_ids)
            .fetch_all(&self.db.pool)
            .await?;
        let activity = sqlx::query(&format!("EXPLAIN (ANALYZE, BUFFERS) {ACTIVITY_SQL}"))
            .bind(distinct(member_ids))
            .bind(since)
            .bind(limit_param(limit))
            .fetch_all(&self.db.pool)
            .await?;
        Ok(super::HotQueryPlans {
            backend: "PostgreSQL",
            post_stats: plan(stats)?,
            recent_activity: plan(activity)?,
        })
    }
}

#[async_trait]
impl EventSource for PgEngagementStore {
    fn outbox(&self) -> Outbox {
        Outbox::postgres(self.db.clone())
    }

    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        // One snapshot for the head and every row read (see the helper).
        let (mut tx, head) = outbox::snapshot_postgres(&self.db).await?;
        sink.set_position(head);
        let since = export::lower_bound(since);
        {
            let sql = numbered(export::REACTIONS_SQL);
            let mut rows = sqlx::query_as::<_, export::ReactionRow>(&sql)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_reaction(sink, row).await?;
            }
        }
        {
            let sql = numbered(export::COMMENTS_SQL);
            let mut rows = sqlx::query_as::<_, export::CommentRow>(&sql)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_comment(sink, row).await?;
            }
        }
        {
            let sql = numbered(export::SHARES_SQL);
            let mut rows = sqlx::query_as::<_, export::ShareRow>(&sql)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_share(sink, row).await?;
            }
        }
        {
            let sql = numbered(export::IMPRESSIONS_SQL);
            let mut groups = ImpressionGroups::default();
            let mut rows = sqlx::query_as::<_, export::ImpressionRow>(&sql)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                groups.add(sink, since, row).await?;
            }
            groups.flush(sink).await?;
        }
        {
            let sql = numbered(export::MUTES_SQL);
            let mut rows = sqlx::query_as::<_, export::MuteRow>(&sql)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_mute(sink, row).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
