//! The embedded engagement store on SQLite.
//!
//! Every write changes its rows and the post's `post_stats` counts in one transaction on the
//! single writer connection, so the read-then-write of a reaction cannot race another write and
//! the counts never drift from the rows.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use pronet_common::db::{placeholders, MigrationFile, SqliteDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, NewEvent, Outbox};
use pronet_common::time::now_micros;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::Sqlite;

use super::export::{self, ImpressionGroups};
use super::import::{
    distinct_comments, distinct_shares, first_views, fold_impressions, fold_reactions,
    impression_events, reaction_event, StatsDeltas, StoredReaction, STATS_COLUMNS,
};
use super::{
    comment_cursor_binds, count_column, list_comments_sql, mute_limit_reached, reaction_type_from,
    CursorValue, EngagementStore, StoreResult, COMMENT_COLUMNS, COMMENT_COUNT, IMPRESSION_COUNT,
    KIND_COMMENT, KIND_REACTION, KIND_SHARE, MUTE_COUNT_SQL, MUTE_DELETE_SQL, MUTE_INSERT_SQL,
    MUTE_LIST_SQL, MUTE_TIME_SQL, SHARE_COUNT, UNIQUE_VIEWER_COUNT,
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
mod impressions;
mod mutes;
mod reactions;
mod rows;
use comments::*;
use counts::*;
use imports::*;
use impressions::*;
use mutes::*;
use reactions::*;
use rows::*;

const MIGRATIONS: &[MigrationFile] = pronet_common::migrations![
    1: "engagement" => include_str!("../../migrations/sqlite/0001_engagement.sql"),
    2: "idempotency keys" => include_str!("../../migrations/sqlite/0002_idempotency_keys.sql"),
    3: "threads and impressions" => include_str!("../../migrations/sqlite/0003_threads_impressions.sql"),
    4: "share ids" => include_str!("../../migrations/sqlite/0004_share_ids.sql"),
    5: "covering activity indexes" => include_str!("../../migrations/sqlite/0005_covering_activity.sql"),
    6: "outbox" => outbox::SQLITE_MIGRATION,
    7: "feed mutes" => include_str!("../../migrations/sqlite/0007_feed_mutes.sql"),
];

type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

#[derive(Debug, Clone)]
pub struct SqliteEngagementStore {
    db: SqliteDb,
}

impl SqliteEngagementStore {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: SqliteDb::open(path, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

#[async_trait]
impl EngagementStore for SqliteEngagementStore {
    async fn react(
        &self,
        post_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<ReactionRecord> {
        let post_id = post_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| react_in(conn, &post_id, &member_id, reaction_type, now))
            .await
    }

    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord> {
        self.db
            .write(move |conn| create_comment_in(conn, comment, key))
            .await
    }

    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool> {
        let post_id = post_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| unreact_in(conn, &post_id, &member_id))
            .await
    }

    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>> {
        sqlx::query(&format!(
            "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = ?"
        ))
        .bind(comment_id)
        .fetch_optional(&self.db.reader)
        .await?
        .as_ref()
        .map(comment_from_row)
        .transpose()
    }

    async fn update_comment_text(
        &self,
        comment_id: &str,
        text: &str,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        let comment_id = comment_id.to_owned();
        let text = text.to_owned();
        self.db
            .write(move |conn| update_comment_text_in(conn, &comment_id, &text, now))
            .await
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64> {
        let comment_id = comment_id.to_owned();
        self.db
            .write(move |conn| delete_comment_in(conn, &comment_id))
            .await
    }

    async fn react_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<CommentRecord> {
        let comment_id = comment_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| {
                react_to_comment_in(conn, &comment_id, &member_id, reaction_type, now)
            })
            .await
    }

    async fn unreact_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
    ) -> StoreResult<CommentRecord> {
        let comment_id = comment_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| unreact_to_comment_in(conn, &comment_id, &member_id))
            .await
    }

    async fn list_comments(
        &self,
        post_id: &str,
        listing: &CommentListing,
        after: Option<&CommentCursor>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let sql = list_comments_sql(listing, after.is_some());
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
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db.reader)
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
            let not = if q.include { "" } else { "NOT " };
            sql.push_str(&format!(
                " AND member_id {not}IN ({})",
                placeholders(q.members.len())
            ));
        }
        if q.after.is_some() {
            sql.push_str(" AND (create_time < ? OR (create_time = ? AND member_id < ?))");
        }
        sql.push_str(" ORDER BY create_time DESC, member_id DESC LIMIT ?");
        let mut query = sqlx::query(&sql).bind(&q.post_id);
        if let Some(t) = q.reaction_type {
            query = query.bind(t.number());
        }
        for m in &q.members {
            query = query.bind(m);
        }
        if let Some((time, member)) = &q.after {
            query = query.bind(*time).bind(*time).bind(member);
        }
        query
            .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(|row| {
                Ok(ReactionRecord {
                    post_id: row.try_get("post_id")?,
                    member_id: row.try_get("member_id")?,
                    reaction_type: reaction_type_from(row.try_get("reaction_type")?)?,
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
        let member_id = member_id.to_owned();
        let post_ids = post_ids.to_vec();
        self.db
            .write(move |conn| record_impressions_in(conn, &member_id, &post_ids, day, now))
            .await
    }

    async fn list_seen_posts(
        &self,
        member_id: &str,
        post_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT post_id FROM post_viewers WHERE member_id = ? AND post_id IN ({})",
            placeholders(post_ids.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(member_id);
        for id in post_ids {
            query = query.bind(id);
        }
        let seen: std::collections::HashSet<String> = query
            .fetch_all(&self.db.reader)
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
        self.db
            .write(move |conn| record_share_in(conn, share))
            .await
    }

    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts> {
        if batch.is_empty() {
            return Ok(ImportCounts::default());
        }
        self.db
            .write(move |conn| import_engagement_in(conn, batch))
            .await
    }

    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One bound JSON array in and one JSON array out: a row per post through sqlx's
        // worker channel (and a bind per id) cost more than SQLite's lookups themselves.
        let ids = serde_json::to_string(post_ids)
            .map_err(|e| EngagementError::Corrupt(format!("encoding post ids: {e}")))?;
        let packed: String = sqlx::query_scalar(stats_json_sql())
            .bind(ids)
            .fetch_one(&self.db.reader)
            .await?;
        let rows: Vec<StatsRow> = serde_json::from_str(&packed)
            .map_err(|e| EngagementError::Corrupt(format!("decoding post stats: {e}")))?;
        let found: HashMap<String, PostStatsRecord> = rows
            .into_iter()
            .map(|r| (r.0.clone(), stats_from_json(r)))
            .collect();
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
        let sql = activity_sql(member_ids.len());
        bind_activity(sqlx::query(&sql), member_ids, since, limit)
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(activity_from_row)
            .collect()
    }

    async fn mute(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64> {
        let member_id = member_id.to_owned();
        let mute = mute.clone();
        self.db
            .write(move |conn| mute_in(conn, &member_id, &mute, now))
            .await
    }

    async fn unmute(&self, member_id: &str, mute: &Mute) -> StoreResult<bool> {
        let member_id = member_id.to_owned();
        let mute = mute.clone();
        self.db
            .write(move |conn| unmute_in(conn, &member_id, &mute))
            .await
    }

    async fn list_mutes(
        &self,
        member_id: &str,
        kind: MuteKind,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(MUTE_LIST_SQL)
            .bind(member_id)
            .bind(kind.number())
            .bind(limit as i64)
            .fetch_all(&self.db.reader)
            .await?)
    }

    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        sqlx::query("SELECT * FROM post_stats ORDER BY post_id")
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(stats_from_row)
            .collect()
    }

    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>> {
        sqlx::query(&format!("{} ORDER BY post_id", super::COUNTED_FROM_ROWS))
            .fetch_all(&self.db.reader)
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
        // Cached single-row inserts, in one write for the reactions and one for the rest.
        let reactions = reactions.to_vec();
        self.db
            .write(move |conn| -> StoreResult<()> {
                let mut insert = conn.prepare_cached(
                    "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                     update_time) VALUES (?, ?, ?, ?, ?)",
                )?;
                for r in &reactions {
                    insert.execute((
                        &r.post_id,
                        &r.member_id,
                        r.reaction_type.number(),
                        r.create_time,
                        r.create_time,
                    ))?;
                }
                Ok(())
            })
            .await?;
        let (comments, shares) = (comments.to_vec(), shares.to_vec());
        self.db
            .write(move |conn| -> StoreResult<()> {
                let mut insert = conn.prepare_cached(
                    "INSERT INTO comments (id, post_id, member_id, text, create_time) \
                     VALUES (?, ?, ?, ?, ?)",
                )?;
                for c in &comments {
                    insert.execute((&c.id, &c.post_id, &c.member_id, &c.text, c.create_time))?;
                }
                let mut insert = conn.prepare_cached(
                    "INSERT INTO shares (post_id, member_id, id, create_time) VALUES (?, ?, ?, ?)",
                )?;
                for s in &shares {
                    insert.execute((&s.post_id, &s.member_id, &s.id, s.create_time))?;
                }
                // Every touched post's counts from all of its rows, old and new. (`WHERE true`
                // tells SQLite's parser the ON CONFLICT belongs to the INSERT, not to the
                // SELECT's join.)
                conn.execute(
                    &format!(
                        "INSERT INTO post_stats SELECT * FROM ({}) WHERE true \
                         ON CONFLICT (post_id) DO UPDATE SET like_count = excluded.like_count, \
                         celebrate_count = excluded.celebrate_count, \
                         support_count = excluded.support_count, \
                         love_count = excluded.love_count, \
                         insightful_count = excluded.insightful_count, \
                         funny_count = excluded.funny_count, \
                         comment_count = excluded.comment_count, \
                         share_count = excluded.share_count",
                        super::COUNTED_FROM_ROWS
                    ),
                    [],
                )?;
                Ok(())
            })
            .await
    }

    #[cfg(test)]
    async fn comment_count_drift(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(super::COMMENT_DRIFT)
            .fetch_all(&self.db.reader)
            .await?)
    }

    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()> {
        // Reader connections load the statistics with the schema: the first ANALYZE creates
        // sqlite_stat1, which changes the schema and makes open connections reload it.
        self.db.write(|conn| conn.execute_batch("ANALYZE")).await?;
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
        async fn plan(db: &sqlx::SqlitePool, query: SqliteQuery<'_>) -> StoreResult<String> {
            // Rows are (id, parent, _, detail), parents first: indent each under its parent.
            let mut depths: HashMap<i64, usize> = HashMap::new();
            let mut lines = Vec::new();
            for row in query.fetch_all(db).await? {
                let (id, parent): (i64, i64) = (row.try_get("id")?, row.try_get("parent")?);
                let depth = depths.get(&parent).map_or(0, |d| d + 1);
                depths.insert(id, depth);
                let detail: String = row.try_get("detail")?;
                lines.push(format!("{}{detail}", "  ".repeat(depth)));
            }
            Ok(lines.join("\n"))
        }
        let stats = format!("EXPLAIN QUERY PLAN {}", stats_json_sql());
        let ids = serde_json::to_string(post_ids)
            .map_err(|e| EngagementError::Corrupt(format!("encoding post ids: {e}")))?;
        let activity = format!("EXPLAIN QUERY PLAN {}", activity_sql(member_ids.len()));
        Ok(super::HotQueryPlans {
            backend: "SQLite",
            post_stats: plan(&self.db.reader, sqlx::query(&stats).bind(ids)).await?,
            recent_activity: plan(
                &self.db.reader,
                bind_activity(sqlx::query(&activity), member_ids, since, limit),
            )
            .await?,
        })
    }
}

#[async_trait]
impl EventSource for SqliteEngagementStore {
    fn outbox(&self) -> Outbox {
        Outbox::sqlite(self.db.clone())
    }

    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        // One snapshot for the head and every row read (see the helper).
        let (mut tx, head) = outbox::snapshot_sqlite(&self.db).await?;
        sink.set_position(head);
        let since = export::lower_bound(since);
        {
            let mut rows = sqlx::query_as::<_, export::ReactionRow>(export::REACTIONS_SQL)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_reaction(sink, row).await?;
            }
        }
        {
            let mut rows = sqlx::query_as::<_, export::CommentRow>(export::COMMENTS_SQL)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_comment(sink, row).await?;
            }
        }
        {
            let mut rows = sqlx::query_as::<_, export::ShareRow>(export::SHARES_SQL)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                export::push_share(sink, row).await?;
            }
        }
        {
            let mut groups = ImpressionGroups::default();
            let mut rows = sqlx::query_as::<_, export::ImpressionRow>(export::IMPRESSIONS_SQL)
                .bind(since)
                .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                groups.add(sink, since, row).await?;
            }
            groups.flush(sink).await?;
        }
        {
            let mut rows = sqlx::query_as::<_, export::MuteRow>(export::MUTES_SQL)
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

/// The stats of `n` posts: one primary-key lookup each.
/// A `post_stats` row as `stats_json_sql` packs it: the id, then the counts in
/// [`ReactionType::ALL`] order, then comments, shares, impressions and unique viewers.
type StatsRow = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`), on the
// writer's own connection: what they read includes the earlier writes of the same batch.
