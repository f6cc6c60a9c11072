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
use pronet_common::events::{ExportError, ExportSink};
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

const MIGRATIONS: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "engagement",
        sql: include_str!("../../migrations/sqlite/0001_engagement.sql"),
    },
    MigrationFile {
        version: 2,
        description: "idempotency keys",
        sql: include_str!("../../migrations/sqlite/0002_idempotency_keys.sql"),
    },
    MigrationFile {
        version: 3,
        description: "threads and impressions",
        sql: include_str!("../../migrations/sqlite/0003_threads_impressions.sql"),
    },
    MigrationFile {
        version: 4,
        description: "share ids",
        sql: include_str!("../../migrations/sqlite/0004_share_ids.sql"),
    },
    MigrationFile {
        version: 5,
        description: "covering activity indexes",
        sql: include_str!("../../migrations/sqlite/0005_covering_activity.sql"),
    },
    MigrationFile {
        version: 6,
        description: "outbox",
        sql: outbox::SQLITE_MIGRATION,
    },
    MigrationFile {
        version: 7,
        description: "feed mutes",
        sql: include_str!("../../migrations/sqlite/0007_feed_mutes.sql"),
    },
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

fn comment_from_row(row: &SqliteRow) -> StoreResult<CommentRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.try_get(count_column(t))?;
    }
    Ok(CommentRecord {
        id: row.try_get("id")?,
        post_id: row.try_get("post_id")?,
        member_id: row.try_get("member_id")?,
        text: row.try_get("text")?,
        create_time: row.try_get("create_time")?,
        parent_id: row.try_get("parent_id")?,
        update_time: row.try_get("update_time")?,
        reply_count: row.try_get("reply_count")?,
        reactions,
    })
}

/// Used by the test-only consistency checks; reads go through `stats_from_json`.
#[cfg(test)]
fn stats_from_row(row: &SqliteRow) -> StoreResult<PostStatsRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.try_get(count_column(t))?;
    }
    Ok(PostStatsRecord {
        post_id: row.try_get("post_id")?,
        reactions,
        comments: row.try_get(COMMENT_COUNT)?,
        shares: row.try_get(SHARE_COUNT)?,
        impressions: row.try_get(IMPRESSION_COUNT)?,
        unique_viewers: row.try_get(UNIQUE_VIEWER_COUNT)?,
    })
}

fn activity_from_row(row: &SqliteRow) -> StoreResult<ActivityRecord> {
    let kind: i64 = row.try_get("kind")?;
    let kind = match kind {
        KIND_REACTION => ActivityKind::Reaction(reaction_type_from(row.try_get("reaction_type")?)?),
        KIND_COMMENT => ActivityKind::Comment,
        KIND_SHARE => ActivityKind::Share,
        other => return Err(EngagementError::Corrupt(format!("activity kind {other}"))),
    };
    Ok(ActivityRecord {
        member_id: row.try_get("member_id")?,
        post_id: row.try_get("post_id")?,
        kind,
        create_time: row.try_get("create_time")?,
    })
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

/// The stats of `n` posts: one primary-key lookup each.
/// A `post_stats` row as `stats_json_sql` packs it: the id, then the counts in
/// [`ReactionType::ALL`] order, then comments, shares, impressions and unique viewers.
type StatsRow = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

fn stats_from_json(r: StatsRow) -> PostStatsRecord {
    let mut reactions = [0i64; 6];
    for (t, n) in ReactionType::ALL.iter().zip([r.1, r.2, r.3, r.4, r.5, r.6]) {
        reactions[t.index()] = n;
    }
    PostStatsRecord {
        post_id: r.0,
        reactions,
        comments: r.7,
        shares: r.8,
        impressions: r.9,
        unique_viewers: r.10,
    }
}

/// The stats of the posts in a bound JSON array of ids, as one JSON array of [`StatsRow`]s
/// (each id looked up by primary key).
fn stats_json_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let reactions: Vec<&str> = ReactionType::ALL.iter().map(|&t| count_column(t)).collect();
        format!(
            "SELECT json_group_array(json_array(post_id, {}, {COMMENT_COUNT}, {SHARE_COUNT}, \
             {IMPRESSION_COUNT}, {UNIQUE_VIEWER_COUNT})) FROM post_stats \
             WHERE post_id IN (SELECT value FROM json_each(?))",
            reactions.join(", ")
        )
    })
}

fn activity_sql(n: usize) -> String {
    let members = placeholders(n);
    let branch = |table: &str, kind: i64, reaction_type: &str| {
        format!(
            "SELECT * FROM (SELECT member_id, post_id, {kind} AS kind, \
             {reaction_type} AS reaction_type, create_time FROM {table} \
             WHERE member_id IN ({members}) AND create_time >= ? \
             ORDER BY create_time DESC, member_id, post_id LIMIT ?)"
        )
    };
    format!(
        "SELECT member_id, post_id, kind, reaction_type, create_time FROM ({} UNION ALL {} \
         UNION ALL {}) ORDER BY create_time DESC, kind, member_id, post_id LIMIT ?",
        branch("reactions", KIND_REACTION, "reaction_type"),
        branch("comments", KIND_COMMENT, "0"),
        branch("shares", KIND_SHARE, "0"),
    )
}

fn bind_activity<'q>(
    mut query: SqliteQuery<'q>,
    member_ids: &'q [String],
    since: i64,
    limit: usize,
) -> SqliteQuery<'q> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    for _ in 0..3 {
        for id in member_ids {
            query = query.bind(id);
        }
        query = query.bind(since).bind(limit);
    }
    query.bind(limit)
}

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`), on the
// writer's own connection: what they read includes the earlier writes of the same batch.

/// Adds `delta` to each named count of a post, creating its stats row if needed. The column
/// names come from this module only, never from input (so the statements are few and cached).
fn add_counts(
    conn: &Connection,
    post_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let columns: Vec<&str> = changes.iter().map(|(column, _)| *column).collect();
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO post_stats (post_id, {}) VALUES (?, {}) \
         ON CONFLICT (post_id) DO UPDATE SET {}",
        columns.join(", "),
        placeholders(changes.len()),
        sets.join(", ")
    );
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(changes.len() + 1);
    params.push(&post_id);
    params.extend(changes.iter().map(|(_, delta)| delta as &dyn ToSql));
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(())
}

/// Adds to a comment's reaction counts (and their total, kept for ordering).
fn add_comment_counts(
    conn: &Connection,
    comment_id: &str,
    changes: &[(&'static str, i64)],
) -> StoreResult<()> {
    let sets: Vec<String> = changes
        .iter()
        .map(|(c, _)| format!("{c} = {c} + ?"))
        .collect();
    let sql = format!(
        "UPDATE comments SET {}, total_reactions = total_reactions + ? WHERE id = ?",
        sets.join(", ")
    );
    let total: i64 = changes.iter().map(|(_, d)| d).sum();
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(changes.len() + 2);
    params.extend(changes.iter().map(|(_, delta)| delta as &dyn ToSql));
    params.push(&total);
    params.push(&comment_id);
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(())
}

/// [`comment_from_row`] for a comment a write reads.
fn comment_from_written_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CommentRecord> {
    let mut reactions = [0i64; 6];
    for t in ReactionType::ALL {
        reactions[t.index()] = row.get(count_column(t))?;
    }
    Ok(CommentRecord {
        id: row.get("id")?,
        post_id: row.get("post_id")?,
        member_id: row.get("member_id")?,
        text: row.get("text")?,
        create_time: row.get("create_time")?,
        parent_id: row.get("parent_id")?,
        update_time: row.get("update_time")?,
        reply_count: row.get("reply_count")?,
        reactions,
    })
}

/// The comment created by the first request with `key`.
fn first_comment(conn: &Connection, key: &IdempotencyKey) -> StoreResult<CommentRecord> {
    conn.prepare_cached(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = \
         (SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?)"
    ))?
    .query_row((&key.caller, &key.request_id), comment_from_written_row)
    .optional()?
    .ok_or_else(|| EngagementError::Corrupt("idempotency key without its comment".into()))
}

fn fetch_comment(conn: &Connection, comment_id: &str) -> StoreResult<Option<CommentRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = ?"
        ))?
        .query_row([comment_id], comment_from_written_row)
        .optional()?)
}

fn require_comment(conn: &Connection, comment_id: &str) -> StoreResult<CommentRecord> {
    fetch_comment(conn, comment_id)?.ok_or(EngagementError::NotFound("comment"))
}

fn react_in(
    conn: &Connection,
    post_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<ReactionRecord> {
    let existing: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT reaction_type, create_time FROM reactions WHERE post_id = ? AND member_id = ?",
        )?
        .query_row((post_id, member_id), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (create_time, previous) = match existing {
        None => {
            conn.prepare_cached(
                "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                     update_time) VALUES (?, ?, ?, ?, ?)",
            )?
            .execute((post_id, member_id, reaction_type.number(), now, now))?;
            add_counts(conn, post_id, &[(count_column(reaction_type), 1)])?;
            (now, None)
        }
        Some((old, create_time)) => {
            let old = reaction_type_from(old)?;
            if old == reaction_type {
                // The same type again: nothing changed, no event.
                return Ok(ReactionRecord {
                    post_id: post_id.to_owned(),
                    member_id: member_id.to_owned(),
                    reaction_type,
                    create_time,
                });
            }
            conn.prepare_cached(
                "UPDATE reactions SET reaction_type = ?, update_time = ? \
                         WHERE post_id = ? AND member_id = ?",
            )?
            .execute((reaction_type.number(), now, post_id, member_id))?;
            add_counts(
                conn,
                post_id,
                &[(count_column(old), -1), (count_column(reaction_type), 1)],
            )?;
            (create_time, Some(old))
        }
    };
    let reaction = ReactionRecord {
        post_id: post_id.to_owned(),
        member_id: member_id.to_owned(),
        reaction_type,
        create_time,
    };
    outbox::append_sqlite(
        conn,
        &[events::at(now, events::reaction_set(&reaction, previous))],
    )?;
    Ok(reaction)
}

fn create_comment_in(
    conn: &Connection,
    comment: CommentRecord,
    key: Option<IdempotencyKey>,
) -> StoreResult<CommentRecord> {
    if let Some(key) = &key {
        // The key first: a retry finds it and returns the first comment. (The one writer
        // connection makes racing retries take turns.)
        let claimed =
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (caller, request_id) DO NOTHING",
            )?
            .execute((
                &key.caller,
                &key.request_id,
                &comment.id,
                comment.create_time,
            ))? == 1;
        if !claimed {
            return first_comment(conn, key);
        }
    }
    let mut comment = comment;
    if let Some(parent_id) = comment.parent_id.take() {
        let parent = fetch_comment(conn, &parent_id)?
            .filter(|p| p.post_id == comment.post_id)
            .ok_or(EngagementError::NotFound("comment"))?;
        // One level of threading: a reply to a reply answers its top-level comment.
        let top = parent.parent_id.unwrap_or(parent.id);
        conn.prepare_cached("UPDATE comments SET reply_count = reply_count + 1 WHERE id = ?")?
            .execute([&top])?;
        comment.parent_id = Some(top);
    }
    conn.prepare_cached(
        "INSERT INTO comments (id, post_id, member_id, text, create_time, parent_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute((
        &comment.id,
        &comment.post_id,
        &comment.member_id,
        &comment.text,
        comment.create_time,
        &comment.parent_id,
    ))?;
    add_counts(conn, &comment.post_id, &[(COMMENT_COUNT, 1)])?;
    outbox::append_sqlite(
        conn,
        &[events::at(
            comment.create_time,
            events::comment_created(&comment),
        )],
    )?;
    Ok(comment)
}

fn unreact_in(conn: &Connection, post_id: &str, member_id: &str) -> StoreResult<bool> {
    let removed: Option<i64> = conn
        .prepare_cached(
            "DELETE FROM reactions WHERE post_id = ? AND member_id = ? RETURNING reaction_type",
        )?
        .query_row((post_id, member_id), |row| row.get(0))
        .optional()?;
    if let Some(old) = removed {
        let old = reaction_type_from(old)?;
        add_counts(conn, post_id, &[(count_column(old), -1)])?;
        outbox::append_sqlite(
            conn,
            &[events::at(
                now_micros(),
                events::reaction_removed(post_id, member_id, old),
            )],
        )?;
    }
    Ok(removed.is_some())
}

fn mute_in(conn: &Connection, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64> {
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

fn unmute_in(conn: &Connection, member_id: &str, mute: &Mute) -> StoreResult<bool> {
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

fn update_comment_text_in(
    conn: &Connection,
    comment_id: &str,
    text: &str,
    now: i64,
) -> StoreResult<CommentRecord> {
    conn.prepare_cached("UPDATE comments SET text = ?, update_time = ? WHERE id = ?")?
        .execute((text, now, comment_id))?;
    require_comment(conn, comment_id)
}

fn delete_comment_in(conn: &Connection, comment_id: &str) -> StoreResult<u64> {
    let comment = require_comment(conn, comment_id)?;
    let replies = match &comment.parent_id {
        None => {
            conn.prepare_cached(
                "DELETE FROM comment_reactions WHERE comment_id IN \
                     (SELECT id FROM comments WHERE parent_id = ?)",
            )?
            .execute([comment_id])?;
            let mut replies: Vec<(String, String, i64)> = conn
                .prepare_cached(
                    "DELETE FROM comments WHERE parent_id = ? RETURNING id, member_id, create_time",
                )?
                .query_map([comment_id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            replies.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            replies
        }
        Some(parent) => {
            conn.prepare_cached("UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?")?
                .execute([parent])?;
            Vec::new()
        }
    };
    conn.prepare_cached("DELETE FROM comment_reactions WHERE comment_id = ?")?
        .execute([comment_id])?;
    conn.prepare_cached("DELETE FROM comments WHERE id = ?")?
        .execute([comment_id])?;
    let removed = replies.len() as u64 + 1;
    add_counts(
        conn,
        &comment.post_id,
        &[(COMMENT_COUNT, -(removed as i64))],
    )?;
    outbox::append_sqlite(conn, &super::deleted_comment_events(&comment, &replies))?;
    Ok(removed)
}

fn react_to_comment_in(
    conn: &Connection,
    comment_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<CommentRecord> {
    require_comment(conn, comment_id)?;
    let existing: Option<i64> = conn
        .prepare_cached(
            "SELECT reaction_type FROM comment_reactions WHERE comment_id = ? AND member_id = ?",
        )?
        .query_row((comment_id, member_id), |row| row.get(0))
        .optional()?;
    match existing {
        None => {
            conn.prepare_cached(
                "INSERT INTO comment_reactions (comment_id, member_id, reaction_type, \
                     create_time) VALUES (?, ?, ?, ?)",
            )?
            .execute((comment_id, member_id, reaction_type.number(), now))?;
            add_comment_counts(conn, comment_id, &[(count_column(reaction_type), 1)])?;
        }
        Some(old) => {
            let old = reaction_type_from(old)?;
            if old != reaction_type {
                conn.prepare_cached(
                    "UPDATE comment_reactions SET reaction_type = ? \
                         WHERE comment_id = ? AND member_id = ?",
                )?
                .execute((reaction_type.number(), comment_id, member_id))?;
                add_comment_counts(
                    conn,
                    comment_id,
                    &[(count_column(old), -1), (count_column(reaction_type), 1)],
                )?;
            }
        }
    }
    require_comment(conn, comment_id)
}

fn unreact_to_comment_in(
    conn: &Connection,
    comment_id: &str,
    member_id: &str,
) -> StoreResult<CommentRecord> {
    require_comment(conn, comment_id)?;
    let removed: Option<i64> = conn
        .prepare_cached(
            "DELETE FROM comment_reactions WHERE comment_id = ? AND member_id = ? \
             RETURNING reaction_type",
        )?
        .query_row((comment_id, member_id), |row| row.get(0))
        .optional()?;
    if let Some(old) = removed {
        add_comment_counts(
            conn,
            comment_id,
            &[(count_column(reaction_type_from(old)?), -1)],
        )?;
    }
    require_comment(conn, comment_id)
}

fn record_impressions_in(
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

fn record_share_in(conn: &Connection, share: ShareRecord) -> StoreResult<ShareRecord> {
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

/// The counts upsert of one post in an import: its id, then a delta per [`STATS_COLUMNS`].
fn import_stats_sql() -> &'static str {
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
fn import_engagement_in(conn: &Connection, batch: EngagementImport) -> StoreResult<ImportCounts> {
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
