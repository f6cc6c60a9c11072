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
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::Sqlite;

use super::export::{self, ImpressionGroups};
use super::import::{
    distinct_comments, distinct_shares, first_views, fold_impressions, fold_reactions,
    impression_events, reaction_event, StatsDeltas, StoredReaction, StoredReactions,
    ROWS_PER_STATEMENT, STATS_COLUMNS,
};
use super::{
    comment_cursor_binds, count_column, list_comments_sql, reaction_type_from, CursorValue,
    EngagementStore, StoreResult, COMMENT_COLUMNS, COMMENT_COUNT, IMPRESSION_COUNT, KIND_COMMENT,
    KIND_REACTION, KIND_SHARE, SHARE_COUNT, UNIQUE_VIEWER_COUNT,
};
use crate::domain::{
    ActivityKind, ActivityRecord, CommentCursor, CommentListing, CommentRecord, EngagementImport,
    IdempotencyKey, ImportCounts, PostStatsRecord, ReactionQuery, ReactionRecord, ReactionType,
    ShareRecord,
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

/// Adds `delta` to each named count of a post, creating its stats row if needed. The column
/// names come from this module only, never from input.
async fn add_counts(
    conn: &mut SqliteConnection,
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
    let mut query = sqlx::query(&sql).bind(post_id);
    for (_, delta) in changes {
        query = query.bind(*delta);
    }
    query.execute(conn).await?;
    Ok(())
}

/// The comment created by the first request with `key`.
async fn first_comment(
    conn: &mut SqliteConnection,
    key: &IdempotencyKey,
) -> StoreResult<CommentRecord> {
    let row = sqlx::query(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = \
         (SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?)"
    ))
    .bind(&key.caller)
    .bind(&key.request_id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| EngagementError::Corrupt("idempotency key without its comment".into()))?;
    comment_from_row(&row)
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

async fn fetch_comment(
    conn: &mut SqliteConnection,
    comment_id: &str,
) -> StoreResult<Option<CommentRecord>> {
    sqlx::query(&format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE id = ?"
    ))
    .bind(comment_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(comment_from_row)
    .transpose()
}

async fn require_comment(
    conn: &mut SqliteConnection,
    comment_id: &str,
) -> StoreResult<CommentRecord> {
    fetch_comment(conn, comment_id)
        .await?
        .ok_or(EngagementError::NotFound("comment"))
}

/// Adds to a comment's reaction counts (and their total, kept for ordering).
async fn add_comment_counts(
    conn: &mut SqliteConnection,
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
    let mut query = sqlx::query(&sql);
    for (_, delta) in changes {
        query = query.bind(*delta);
    }
    let total: i64 = changes.iter().map(|(_, d)| d).sum();
    query.bind(total).bind(comment_id).execute(conn).await?;
    Ok(())
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
            .write(move |tx| {
                Box::pin(
                    async move { react_in(tx, &post_id, &member_id, reaction_type, now).await },
                )
            })
            .await
    }

    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord> {
        self.db
            .write(move |tx| Box::pin(async move { create_comment_in(tx, comment, key).await }))
            .await
    }

    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool> {
        let post_id = post_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |tx| Box::pin(async move { unreact_in(tx, &post_id, &member_id).await }))
            .await
    }

    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>> {
        let mut conn = self.db.reader.acquire().await?;
        fetch_comment(&mut conn, comment_id).await
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
            .write(move |tx| {
                Box::pin(async move { update_comment_text_in(tx, &comment_id, &text, now).await })
            })
            .await
    }

    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64> {
        let comment_id = comment_id.to_owned();
        self.db
            .write(move |tx| Box::pin(async move { delete_comment_in(tx, &comment_id).await }))
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
            .write(move |tx| {
                Box::pin(async move {
                    react_to_comment_in(tx, &comment_id, &member_id, reaction_type, now).await
                })
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
            .write(move |tx| {
                Box::pin(async move { unreact_to_comment_in(tx, &comment_id, &member_id).await })
            })
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
            .write(move |tx| {
                Box::pin(
                    async move { record_impressions_in(tx, &member_id, &post_ids, day, now).await },
                )
            })
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
            .write(move |tx| Box::pin(async move { record_share_in(tx, share).await }))
            .await
    }

    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts> {
        if batch.is_empty() {
            return Ok(ImportCounts::default());
        }
        self.db
            .write(move |tx| Box::pin(async move { import_engagement_in(tx, batch).await }))
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
        // Multi-row inserts of a few thousand values each, in one transaction per table.
        const ROWS: usize = 1000;
        let mut tx = self.db.writer.begin().await?;
        for chunk in reactions.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                 update_time) VALUES {}",
                vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(&r.post_id)
                    .bind(&r.member_id)
                    .bind(r.reaction_type.number())
                    .bind(r.create_time)
                    .bind(r.create_time);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let mut tx = self.db.writer.begin().await?;
        for chunk in comments.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO comments (id, post_id, member_id, text, create_time) VALUES {}",
                vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for c in chunk {
                query = query
                    .bind(&c.id)
                    .bind(&c.post_id)
                    .bind(&c.member_id)
                    .bind(&c.text)
                    .bind(c.create_time);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in shares.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO shares (post_id, member_id, id, create_time) VALUES {}",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for s in chunk {
                query = query
                    .bind(&s.post_id)
                    .bind(&s.member_id)
                    .bind(&s.id)
                    .bind(s.create_time);
            }
            query.execute(&mut *tx).await?;
        }
        // Every touched post's counts from all of its rows, old and new. (`WHERE true` tells
        // SQLite's parser the ON CONFLICT belongs to the INSERT, not to the SELECT's join.)
        sqlx::query(&format!(
            "INSERT INTO post_stats SELECT * FROM ({}) WHERE true \
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
            .fetch_all(&self.db.reader)
            .await?)
    }

    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()> {
        // Reader connections load the statistics with the schema: the first ANALYZE creates
        // sqlite_stat1, which changes the schema and makes open connections reload it.
        sqlx::query("ANALYZE").execute(&self.db.writer).await?;
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

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`).

async fn react_in(
    tx: &mut SqliteConnection,
    post_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<ReactionRecord> {
    let existing = sqlx::query(
        "SELECT reaction_type, create_time FROM reactions WHERE post_id = ? AND member_id = ?",
    )
    .bind(post_id)
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (create_time, previous) = match existing {
        None => {
            sqlx::query(
                "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
                     update_time) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(post_id)
            .bind(member_id)
            .bind(reaction_type.number())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            add_counts(&mut *tx, post_id, &[(count_column(reaction_type), 1)]).await?;
            (now, None)
        }
        Some(row) => {
            let old = reaction_type_from(row.try_get("reaction_type")?)?;
            let create_time: i64 = row.try_get("create_time")?;
            if old == reaction_type {
                // The same type again: nothing changed, no event.
                return Ok(ReactionRecord {
                    post_id: post_id.to_owned(),
                    member_id: member_id.to_owned(),
                    reaction_type,
                    create_time,
                });
            }
            sqlx::query(
                "UPDATE reactions SET reaction_type = ?, update_time = ? \
                         WHERE post_id = ? AND member_id = ?",
            )
            .bind(reaction_type.number())
            .bind(now)
            .bind(post_id)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
            add_counts(
                &mut *tx,
                post_id,
                &[(count_column(old), -1), (count_column(reaction_type), 1)],
            )
            .await?;
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
        tx,
        &[events::at(now, events::reaction_set(&reaction, previous))],
    )
    .await?;
    Ok(reaction)
}

async fn create_comment_in(
    tx: &mut SqliteConnection,
    comment: CommentRecord,
    key: Option<IdempotencyKey>,
) -> StoreResult<CommentRecord> {
    if let Some(key) = &key {
        // The key first: a retry finds it and returns the first comment. (The one writer
        // connection makes racing retries take turns.)
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (caller, request_id) DO NOTHING",
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
            let first = first_comment(&mut *tx, key).await?;
            return Ok(first);
        }
    }
    let mut comment = comment;
    if let Some(parent_id) = comment.parent_id.take() {
        let parent = fetch_comment(&mut *tx, &parent_id)
            .await?
            .filter(|p| p.post_id == comment.post_id)
            .ok_or(EngagementError::NotFound("comment"))?;
        // One level of threading: a reply to a reply answers its top-level comment.
        let top = parent.parent_id.unwrap_or(parent.id);
        sqlx::query("UPDATE comments SET reply_count = reply_count + 1 WHERE id = ?")
            .bind(&top)
            .execute(&mut *tx)
            .await?;
        comment.parent_id = Some(top);
    }
    sqlx::query(
        "INSERT INTO comments (id, post_id, member_id, text, create_time, parent_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&comment.id)
    .bind(&comment.post_id)
    .bind(&comment.member_id)
    .bind(&comment.text)
    .bind(comment.create_time)
    .bind(&comment.parent_id)
    .execute(&mut *tx)
    .await?;
    add_counts(&mut *tx, &comment.post_id, &[(COMMENT_COUNT, 1)]).await?;
    outbox::append_sqlite(
        tx,
        &[events::at(
            comment.create_time,
            events::comment_created(&comment),
        )],
    )
    .await?;
    Ok(comment)
}

async fn unreact_in(
    tx: &mut SqliteConnection,
    post_id: &str,
    member_id: &str,
) -> StoreResult<bool> {
    let removed: Option<i64> = sqlx::query_scalar(
        "DELETE FROM reactions WHERE post_id = ? AND member_id = ? RETURNING reaction_type",
    )
    .bind(post_id)
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(old) = removed {
        let old = reaction_type_from(old)?;
        add_counts(&mut *tx, post_id, &[(count_column(old), -1)]).await?;
        outbox::append_sqlite(
            tx,
            &[events::at(
                now_micros(),
                events::reaction_removed(post_id, member_id, old),
            )],
        )
        .await?;
    }
    Ok(removed.is_some())
}

async fn update_comment_text_in(
    tx: &mut SqliteConnection,
    comment_id: &str,
    text: &str,
    now: i64,
) -> StoreResult<CommentRecord> {
    sqlx::query("UPDATE comments SET text = ?, update_time = ? WHERE id = ?")
        .bind(text)
        .bind(now)
        .bind(comment_id)
        .execute(&mut *tx)
        .await?;
    let comment = require_comment(&mut *tx, comment_id).await?;
    Ok(comment)
}

async fn delete_comment_in(tx: &mut SqliteConnection, comment_id: &str) -> StoreResult<u64> {
    let comment = require_comment(&mut *tx, comment_id).await?;
    let replies = match &comment.parent_id {
        None => {
            sqlx::query(
                "DELETE FROM comment_reactions WHERE comment_id IN \
                     (SELECT id FROM comments WHERE parent_id = ?)",
            )
            .bind(comment_id)
            .execute(&mut *tx)
            .await?;
            let mut replies: Vec<(String, String, i64)> = sqlx::query_as(
                "DELETE FROM comments WHERE parent_id = ? RETURNING id, member_id, create_time",
            )
            .bind(comment_id)
            .fetch_all(&mut *tx)
            .await?;
            replies.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
            replies
        }
        Some(parent) => {
            sqlx::query("UPDATE comments SET reply_count = reply_count - 1 WHERE id = ?")
                .bind(parent)
                .execute(&mut *tx)
                .await?;
            Vec::new()
        }
    };
    sqlx::query("DELETE FROM comment_reactions WHERE comment_id = ?")
        .bind(comment_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM comments WHERE id = ?")
        .bind(comment_id)
        .execute(&mut *tx)
        .await?;
    let removed = replies.len() as u64 + 1;
    add_counts(
        &mut *tx,
        &comment.post_id,
        &[(COMMENT_COUNT, -(removed as i64))],
    )
    .await?;
    outbox::append_sqlite(tx, &super::deleted_comment_events(&comment, &replies)).await?;
    Ok(removed)
}

async fn react_to_comment_in(
    tx: &mut SqliteConnection,
    comment_id: &str,
    member_id: &str,
    reaction_type: ReactionType,
    now: i64,
) -> StoreResult<CommentRecord> {
    require_comment(&mut *tx, comment_id).await?;
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT reaction_type FROM comment_reactions WHERE comment_id = ? AND member_id = ?",
    )
    .bind(comment_id)
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO comment_reactions (comment_id, member_id, reaction_type, \
                     create_time) VALUES (?, ?, ?, ?)",
            )
            .bind(comment_id)
            .bind(member_id)
            .bind(reaction_type.number())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            add_comment_counts(&mut *tx, comment_id, &[(count_column(reaction_type), 1)]).await?;
        }
        Some(old) => {
            let old = reaction_type_from(old)?;
            if old != reaction_type {
                sqlx::query(
                    "UPDATE comment_reactions SET reaction_type = ? \
                         WHERE comment_id = ? AND member_id = ?",
                )
                .bind(reaction_type.number())
                .bind(comment_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
                add_comment_counts(
                    &mut *tx,
                    comment_id,
                    &[(count_column(old), -1), (count_column(reaction_type), 1)],
                )
                .await?;
            }
        }
    }
    let comment = require_comment(&mut *tx, comment_id).await?;
    Ok(comment)
}

async fn unreact_to_comment_in(
    tx: &mut SqliteConnection,
    comment_id: &str,
    member_id: &str,
) -> StoreResult<CommentRecord> {
    require_comment(&mut *tx, comment_id).await?;
    let removed: Option<i64> = sqlx::query_scalar(
        "DELETE FROM comment_reactions WHERE comment_id = ? AND member_id = ? \
             RETURNING reaction_type",
    )
    .bind(comment_id)
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(old) = removed {
        add_comment_counts(
            &mut *tx,
            comment_id,
            &[(count_column(reaction_type_from(old)?), -1)],
        )
        .await?;
    }
    let comment = require_comment(&mut *tx, comment_id).await?;
    Ok(comment)
}

async fn record_impressions_in(
    tx: &mut SqliteConnection,
    member_id: &str,
    post_ids: &[String],
    day: i64,
    now: i64,
) -> StoreResult<usize> {
    let mut counted = Vec::new();
    let mut first_views = Vec::new();
    for post_id in post_ids {
        let new = sqlx::query(
            "INSERT INTO impressions (post_id, member_id, day, create_time) \
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(post_id)
        .bind(member_id)
        .bind(day)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !new {
            continue;
        }
        counted.push(post_id.clone());
        // A first ever impression is always also a new one for the day.
        let first = sqlx::query(
            "INSERT INTO post_viewers (member_id, post_id, first_time) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
        )
        .bind(member_id)
        .bind(post_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        if first == 1 {
            first_views.push(post_id.clone());
        }
        add_counts(
            &mut *tx,
            post_id,
            &[(IMPRESSION_COUNT, 1), (UNIQUE_VIEWER_COUNT, first)],
        )
        .await?;
    }
    let n = counted.len();
    if n > 0 {
        let payload = events::impressions_recorded(member_id, counted, first_views);
        outbox::append_sqlite(tx, &[events::at(now, payload)]).await?;
    }
    Ok(n)
}

async fn record_share_in(
    tx: &mut SqliteConnection,
    share: ShareRecord,
) -> StoreResult<ShareRecord> {
    let existing =
        sqlx::query("SELECT id, create_time FROM shares WHERE post_id = ? AND member_id = ?")
            .bind(&share.post_id)
            .bind(&share.member_id)
            .fetch_optional(&mut *tx)
            .await?;
    let recorded = match existing {
        Some(row) => ShareRecord {
            id: row.try_get("id")?,
            create_time: row.try_get("create_time")?,
            ..share
        },
        None => {
            sqlx::query(
                "INSERT INTO shares (post_id, member_id, id, create_time) VALUES (?, ?, ?, ?)",
            )
            .bind(&share.post_id)
            .bind(&share.member_id)
            .bind(&share.id)
            .bind(share.create_time)
            .execute(&mut *tx)
            .await?;
            add_counts(&mut *tx, &share.post_id, &[(SHARE_COUNT, 1)]).await?;
            outbox::append_sqlite(
                tx,
                &[events::at(
                    share.create_time,
                    events::share_recorded(&share),
                )],
            )
            .await?;
            share
        }
    };
    Ok(recorded)
}

async fn import_engagement_in(
    tx: &mut SqliteConnection,
    batch: EngagementImport,
) -> StoreResult<ImportCounts> {
    let mut counts = ImportCounts::default();
    let mut deltas = StatsDeltas::default();
    // The payload of every change, appended last.
    let mut payloads = Vec::new();

    // Reactions: what is stored for each (post, member), then one upsert of every pair that
    // changes (new, or another type). The single writer makes the read-then-write safe.
    let folded = fold_reactions(&batch.reactions);
    let mut stored = StoredReactions::new();
    // Two values a pair.
    for chunk in folded.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT post_id, member_id, reaction_type, create_time FROM reactions \
             WHERE (post_id, member_id) IN (VALUES {})",
            vec!["(?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query.bind(&r.post_id).bind(&r.member_id);
        }
        for row in query.fetch_all(&mut *tx).await? {
            stored.insert(
                (row.try_get("post_id")?, row.try_get("member_id")?),
                StoredReaction {
                    reaction_type: reaction_type_from(row.try_get("reaction_type")?)?,
                    create_time: row.try_get("create_time")?,
                },
            );
        }
    }
    let mut changed = Vec::with_capacity(folded.len());
    for r in &folded {
        let before = stored
            .get(&(r.post_id.clone(), r.member_id.clone()))
            .copied();
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
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        // A new reaction starts at its first time; a changed one keeps its create time.
        let sql = format!(
            "INSERT INTO reactions (post_id, member_id, reaction_type, create_time, \
             update_time) VALUES {} ON CONFLICT (post_id, member_id) DO UPDATE SET \
             reaction_type = excluded.reaction_type, update_time = excluded.update_time",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(&r.post_id)
                .bind(&r.member_id)
                .bind(r.final_type().number())
                .bind(r.first_time)
                .bind(r.last_time);
        }
        query.execute(&mut *tx).await?;
    }

    // Comments: an id stored before is left alone (RETURNING names only inserted rows).
    let (comments, repeats) = distinct_comments(batch.comments);
    counts.skipped += repeats;
    for chunk in comments.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO comments (id, post_id, member_id, text, create_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING id",
            vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for c in chunk {
            query = query
                .bind(&c.id)
                .bind(&c.post_id)
                .bind(&c.member_id)
                .bind(&c.text)
                .bind(c.create_time);
        }
        let inserted: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        counts.comments += inserted.len() as u64;
        counts.skipped += (chunk.len() - inserted.len()) as u64;
        // Ids are distinct in the batch: each inserted one names one comment of the chunk.
        for c in chunk.iter().filter(|c| inserted.contains(&c.id)) {
            deltas.comment(&c.post_id);
            payloads.push(events::comment_created(c));
        }
    }

    // Shares: skipped when the (post, member) or the id is taken.
    let (shares, repeats) = distinct_shares(batch.shares);
    counts.skipped += repeats;
    for chunk in shares.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO shares (post_id, member_id, id, create_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING id",
            vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for s in chunk {
            query = query
                .bind(&s.post_id)
                .bind(&s.member_id)
                .bind(&s.id)
                .bind(s.create_time);
        }
        let inserted: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        counts.shares += inserted.len() as u64;
        counts.skipped += (chunk.len() - inserted.len()) as u64;
        // Share ids are distinct in the batch.
        for s in chunk.iter().filter(|s| inserted.contains(&s.id)) {
            deltas.share(&s.post_id);
            payloads.push(events::share_recorded(s));
        }
    }

    // Impressions: once per (post, member, day); the new ones' first views make viewers.
    let (impressions, repeats) = fold_impressions(&batch.impressions);
    counts.skipped += repeats;
    let mut new = Vec::new();
    for chunk in impressions.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO impressions (post_id, member_id, day, create_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING post_id, member_id, day",
            vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String, i64)>(&sql);
        for i in chunk {
            query = query
                .bind(&i.post_id)
                .bind(&i.member_id)
                .bind(i.day)
                .bind(i.time);
        }
        let inserted: HashSet<(String, String, i64)> =
            query.fetch_all(&mut *tx).await?.into_iter().collect();
        counts.skipped += (chunk.len() - inserted.len()) as u64;
        new.extend(
            chunk
                .iter()
                .filter(|i| inserted.contains(&(i.post_id.clone(), i.member_id.clone(), i.day))),
        );
    }
    counts.impressions = new.len() as u64;
    for i in &new {
        deltas.impression(&i.post_id);
    }
    let new: Vec<_> = new.into_iter().cloned().collect();
    let mut viewers = HashSet::new();
    for chunk in first_views(&new).chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO post_viewers (member_id, post_id, first_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING member_id, post_id",
            vec!["(?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for (member_id, post_id, time) in chunk {
            query = query.bind(member_id).bind(post_id).bind(*time);
        }
        for (member_id, post_id) in query.fetch_all(&mut *tx).await? {
            deltas.viewer(&post_id);
            viewers.insert((member_id, post_id));
        }
    }
    payloads.extend(impression_events(&new, &viewers));

    // One counts upsert per post; 11 values a row.
    let rows = deltas.rows();
    for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
        let sets: Vec<String> = STATS_COLUMNS
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO post_stats (post_id, {}) VALUES {} ON CONFLICT (post_id) DO UPDATE SET {}",
            STATS_COLUMNS.join(", "),
            vec![format!("(?, {})", placeholders(STATS_COLUMNS.len())); chunk.len()].join(", "),
            sets.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (post_id, row) in chunk {
            query = query.bind(*post_id);
            for delta in row {
                query = query.bind(*delta);
            }
        }
        query.execute(&mut *tx).await?;
    }
    let now = now_micros();
    let events: Vec<NewEvent> = payloads.into_iter().map(|p| events::at(now, p)).collect();
    outbox::append_sqlite(tx, &events).await?;
    Ok(counts)
}
