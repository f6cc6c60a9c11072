//! The embedded engagement store on SQLite.
//!
//! Every write changes its rows and the post's `post_stats` counts in one transaction on the
//! single writer connection, so the read-then-write of a reaction cannot race another write and
//! the counts never drift from the rows.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use pronet_common::db::{placeholders, MigrationFile, SqliteDb};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{EngagementStore, StoreResult};
use crate::domain::{
    ActivityKind, ActivityRecord, CommentRecord, PostStatsRecord, ReactionRecord, ReactionType,
    ShareRecord,
};
use crate::error::EngagementError;

const MIGRATIONS: &[MigrationFile] = &[MigrationFile {
    version: 1,
    description: "engagement",
    sql: include_str!("../../migrations/sqlite/0001_engagement.sql"),
}];

const COMMENT_COUNT: &str = "comment_count";
const SHARE_COUNT: &str = "share_count";

/// Activity kinds as numbered in the recent-activity query.
const KIND_REACTION: i64 = 1;
const KIND_COMMENT: i64 = 2;
const KIND_SHARE: i64 = 3;

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

/// The `post_stats` column counting a reaction type.
fn count_column(reaction_type: ReactionType) -> &'static str {
    match reaction_type {
        ReactionType::Like => "like_count",
        ReactionType::Celebrate => "celebrate_count",
        ReactionType::Support => "support_count",
        ReactionType::Love => "love_count",
        ReactionType::Insightful => "insightful_count",
        ReactionType::Funny => "funny_count",
    }
}

fn reaction_type_from(n: i64) -> StoreResult<ReactionType> {
    ReactionType::from_number(n)
        .ok_or_else(|| EngagementError::Corrupt(format!("reaction type {n}")))
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
        let mut tx = self.db.writer.begin().await?;
        let existing = sqlx::query(
            "SELECT reaction_type, create_time FROM reactions WHERE post_id = ? AND member_id = ?",
        )
        .bind(post_id)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        let create_time = match existing {
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
                add_counts(&mut tx, post_id, &[(count_column(reaction_type), 1)]).await?;
                now
            }
            Some(row) => {
                let old = reaction_type_from(row.try_get("reaction_type")?)?;
                let create_time: i64 = row.try_get("create_time")?;
                if old != reaction_type {
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
                        &mut tx,
                        post_id,
                        &[(count_column(old), -1), (count_column(reaction_type), 1)],
                    )
                    .await?;
                }
                create_time
            }
        };
        tx.commit().await?;
        Ok(ReactionRecord {
            post_id: post_id.to_owned(),
            member_id: member_id.to_owned(),
            reaction_type,
            create_time,
        })
    }

    async fn create_comment(&self, comment: CommentRecord) -> StoreResult<CommentRecord> {
        let mut tx = self.db.writer.begin().await?;
        sqlx::query(
            "INSERT INTO comments (id, post_id, member_id, text, create_time) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&comment.id)
        .bind(&comment.post_id)
        .bind(&comment.member_id)
        .bind(&comment.text)
        .bind(comment.create_time)
        .execute(&mut *tx)
        .await?;
        add_counts(&mut tx, &comment.post_id, &[(COMMENT_COUNT, 1)]).await?;
        tx.commit().await?;
        Ok(comment)
    }

    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord> {
        let mut tx = self.db.writer.begin().await?;
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
                add_counts(&mut tx, &share.post_id, &[(SHARE_COUNT, 1)]).await?;
                share
            }
        };
        tx.commit().await?;
        Ok(recorded)
    }

    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>> {
        if post_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM post_stats WHERE post_id IN ({})",
            placeholders(post_ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in post_ids {
            query = query.bind(id);
        }
        let found: HashMap<String, PostStatsRecord> = query
            .fetch_all(&self.db.reader)
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
        let members = placeholders(member_ids.len());
        // Each table gives at most its own newest `limit` rows, ordered exactly as the final
        // list, so the outer sort sees at most 3 x limit rows and still picks the true newest.
        let branch = |table: &str, kind: i64, reaction_type: &str| {
            format!(
                "SELECT * FROM (SELECT member_id, post_id, {kind} AS kind, \
                 {reaction_type} AS reaction_type, create_time FROM {table} \
                 WHERE member_id IN ({members}) AND create_time >= ? \
                 ORDER BY create_time DESC, member_id, post_id LIMIT ?)"
            )
        };
        let sql = format!(
            "SELECT member_id, post_id, kind, reaction_type, create_time FROM ({} UNION ALL {} \
             UNION ALL {}) ORDER BY create_time DESC, kind, member_id, post_id LIMIT ?",
            branch("reactions", KIND_REACTION, "reaction_type"),
            branch("comments", KIND_COMMENT, "0"),
            branch("shares", KIND_SHARE, "0"),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut query = sqlx::query(&sql);
        for _ in 0..3 {
            for id in member_ids {
                query = query.bind(id);
            }
            query = query.bind(since).bind(limit);
        }
        query
            .bind(limit)
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(activity_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests;
