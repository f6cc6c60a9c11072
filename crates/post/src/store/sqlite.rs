//! The embedded post store on SQLite.

use std::path::Path;

use async_trait::async_trait;
use pronet_common::db::{placeholders, MigrationFile, SqliteDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, Outbox};
use pronet_common::time::now_micros;
use rusqlite::{Connection, OptionalExtension};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite};

use super::sql::{
    CLAIM_KEY, COUNT_HASHTAG_POSTS, DELETE_POST, DELETE_POST_HASHTAGS, EXPORT_DELETED_POSTS,
    EXPORT_POSTS_FIRST_PAGE, GET_POST, POSTS_BY_HASHTAG, POST_COLUMNS, RECORDED_KEY, STORED_POST,
    UPDATE_POST,
};
use super::{
    distinct_posts, export_error, finds_no_recent_posts, mentions_from_json, mentions_to_json,
    page_bound, sql_limit, visibility_from_code, CreatedPost, PostStore, StoreResult, EXPORT_PAGE,
};
use crate::domain::{
    Cursor, IdempotencyKey, PostEdit, PostRecord, RecentPostsQuery, TimeRange, Visibility,
};
use crate::error::PostError;
use crate::events;

const MIGRATIONS: &[MigrationFile] = pronet_common::migrations![
    1: "posts" => include_str!("../../migrations/sqlite/0001_posts.sql"),
    2: "idempotency keys" => include_str!("../../migrations/sqlite/0002_idempotency_keys.sql"),
    3: "edits deletes reshares" => include_str!("../../migrations/sqlite/0003_edits_deletes_reshares.sql"),
    4: "outbox" => outbox::SQLITE_MIGRATION,
];

#[derive(Debug, Clone)]
pub struct SqlitePostStore {
    db: SqliteDb,
}

impl SqlitePostStore {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: SqliteDb::open(path, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

fn post_from_row(row: &SqliteRow) -> StoreResult<PostRecord> {
    post_from_columns(
        row.try_get("id")?,
        row.try_get("author_id")?,
        row.try_get("text")?,
        row.try_get("visibility")?,
        row.try_get("hashtags")?,
        row.try_get("mentions")?,
        row.try_get("create_time")?,
        row.try_get("update_time")?,
        row.try_get("reshare_of")?,
        row.try_get("mentioned_members")?,
    )
}

/// [`post_from_row`] for a row the writer read (`RETURNING` [`POST_COLUMNS`]).
fn post_from_written(row: &rusqlite::Row<'_>) -> StoreResult<PostRecord> {
    post_from_columns(
        row.get("id")?,
        row.get("author_id")?,
        row.get("text")?,
        row.get("visibility")?,
        row.get("hashtags")?,
        row.get("mentions")?,
        row.get("create_time")?,
        row.get("update_time")?,
        row.get("reshare_of")?,
        row.get("mentioned_members")?,
    )
}

/// A post from its stored columns, in [`POST_COLUMNS`] order.
#[allow(clippy::too_many_arguments)]
fn post_from_columns(
    id: String,
    author_id: String,
    text: String,
    visibility: i64,
    hashtags: String,
    mentions: String,
    create_time: i64,
    update_time: Option<i64>,
    reshare_of: Option<String>,
    mentioned_members: String,
) -> StoreResult<PostRecord> {
    Ok(PostRecord {
        id,
        author_id,
        text,
        visibility: visibility_from_code(visibility)?,
        hashtags: serde_json::from_str(&hashtags)
            .map_err(|e| PostError::Corrupt(format!("hashtags: {e}")))?,
        mentions: serde_json::from_str(&mentions)
            .map_err(|e| PostError::Corrupt(format!("mentions: {e}")))?,
        create_time,
        update_time,
        reshare_of,
        mentioned_members: mentions_from_json(&mentioned_members)?,
    })
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// The candidate query of `q` (which names some authors or hashtags); bind with
/// [`bind_recent_posts`].
fn recent_posts_sql(q: &RecentPostsQuery) -> String {
    // Each branch keeps only its newest `max_posts`: the newest `max_posts` of the union
    // are among them, and the branches stay small however many posts match.
    let mut branches = Vec::with_capacity(1 + q.hashtags.len());
    if !q.author_ids.is_empty() {
        let authors = placeholders(q.author_ids.len());
        branches.push(match q.max_posts_per_author {
            // Ranks each author's posts so the per-author cap applies before the overall
            // limit. The IN list walks posts_by_author one author at a time, already in
            // (author, newest first) order, so the ranking needs no sort.
            Some(_) => format!(
                "SELECT id, create_time FROM ( \
                   SELECT id, create_time, ROW_NUMBER() OVER ( \
                     PARTITION BY author_id ORDER BY create_time DESC, id DESC \
                   ) AS author_rank \
                   FROM posts WHERE author_id IN ({authors}) AND create_time >= ? \
                     AND delete_time IS NULL) \
                 WHERE author_rank <= ? \
                 ORDER BY create_time DESC, id DESC LIMIT ?"
            ),
            None => format!(
                "SELECT id, create_time FROM posts \
                 WHERE author_id IN ({authors}) AND create_time >= ? \
                   AND delete_time IS NULL \
                 ORDER BY create_time DESC, id DESC LIMIT ?"
            ),
        });
    }
    // One branch per hashtag, each reading at most `max_posts` entries of the primary key
    // backwards: an IN list over several hashtags would read (and sort) every entry of the
    // window, and a popular hashtag has tens of thousands. UNION (not ALL) counts a post
    // carrying two of the hashtags once.
    for _ in &q.hashtags {
        branches.push(
            "SELECT post_id AS id, create_time FROM post_hashtags \
             WHERE hashtag = ? AND create_time >= ? \
             ORDER BY create_time DESC, post_id DESC LIMIT ?"
                .to_owned(),
        );
    }
    // A deleted post has no hashtag rows left, and the author branches skip it.
    // The union is cut to the newest `max_posts` before any post is read whole: each cut id
    // costs two b-tree lookups (the id's index, then the row).
    let union = branches
        .iter()
        .map(|b| format!("SELECT id, create_time FROM ({b})"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE id IN ( \
           SELECT id FROM ({union} ORDER BY create_time DESC, id DESC LIMIT ?)) \
         ORDER BY create_time DESC, id DESC"
    )
}

/// Binds `q` to [`recent_posts_sql`]'s placeholders, in their order.
fn bind_recent_posts<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
    q: &'q RecentPostsQuery,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    let limit = sql_limit(q.max_posts);
    if !q.author_ids.is_empty() {
        for author in &q.author_ids {
            query = query.bind(author);
        }
        query = query.bind(q.since);
        if let Some(cap) = q.max_posts_per_author {
            query = query.bind(sql_limit(cap));
        }
        query = query.bind(limit);
    }
    for hashtag in &q.hashtags {
        query = query.bind(hashtag).bind(q.since).bind(limit);
    }
    query.bind(limit)
}

#[async_trait]
impl PostStore for SqlitePostStore {
    async fn create_post(
        &self,
        post: PostRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<CreatedPost> {
        // Writes run one at a time on the writer connection, so a key found taken here was
        // written, with its post, by an earlier write (committed before or with this one).
        let key = key.cloned();
        self.db
            .write(move |conn| create_post_in(conn, post, key.as_ref()))
            .await
    }

    async fn import_posts(&self, posts: Vec<PostRecord>) -> StoreResult<(u64, u64)> {
        let (posts, repeats) = distinct_posts(posts);
        if posts.is_empty() {
            return Ok((0, repeats));
        }
        let (imported, skipped) = self
            .db
            .write(move |conn| import_posts_in(conn, &posts))
            .await?;
        Ok((imported, skipped + repeats))
    }

    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        sqlx::query(GET_POST)
            .bind(id)
            .fetch_optional(&self.db.reader)
            .await?
            .as_ref()
            .map(post_from_row)
            .transpose()
    }

    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>> {
        // A repeated id is looked up once; the caller repeats the post.
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE id IN ({}) AND delete_time IS NULL",
            placeholders(ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn list_posts_by_author(
        &self,
        author_id: &str,
        visibilities: &[Visibility],
        range: TimeRange,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        if visibilities.is_empty() {
            return Ok(Vec::new());
        }
        let (time, id) = page_bound(after);
        let (start, end) = range.bounds();
        // Filtered here rather than after paging, so a viewer gets full pages.
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts \
             WHERE author_id = ? AND (create_time, id) < (?, ?) \
               AND create_time >= ? AND create_time < ? \
               AND visibility IN ({}) AND delete_time IS NULL \
             ORDER BY create_time DESC, id DESC LIMIT ?",
            placeholders(visibilities.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(author_id)
            .bind(time)
            .bind(id)
            .bind(start)
            .bind(end);
        for visibility in visibilities {
            query = query.bind(visibility.as_i64());
        }
        query
            .bind(sql_limit(limit))
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn list_recent_posts(&self, q: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>> {
        if finds_no_recent_posts(q) {
            return Ok(Vec::new());
        }
        let sql = recent_posts_sql(q);
        bind_recent_posts(sqlx::query(&sql), q)
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn delete_post(&self, id: &str, delete_time: i64) -> StoreResult<bool> {
        // One writer connection: the check in the UPDATE cannot race another delete.
        let id = id.to_owned();
        self.db
            .write(move |conn| delete_post_in(conn, &id, delete_time))
            .await
    }

    async fn update_post(&self, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>> {
        let id = id.to_owned();
        let edit = edit.clone();
        self.db
            .write(move |conn| update_post_in(conn, &id, &edit))
            .await
    }

    async fn list_posts_by_hashtag(
        &self,
        hashtag: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        let (time, id) = page_bound(after);
        // One range of post_hashtags' primary key; deleted posts have no rows there, the
        // delete_time check only guards the invariant.
        sqlx::query(POSTS_BY_HASHTAG)
            .bind(hashtag)
            .bind(time)
            .bind(id)
            .bind(sql_limit(limit))
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn count_hashtag_posts(&self, since: i64, until: i64) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(COUNT_HASHTAG_POSTS)
            .bind(since)
            .bind(until)
            .fetch_all(&self.db.reader)
            .await?)
    }

    async fn hashtag_posts(
        &self,
        hashtags: &[String],
        since: i64,
        until: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        if hashtags.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT hashtag, post_id FROM post_hashtags \
             WHERE hashtag IN ({}) AND create_time >= ? AND create_time < ? \
             ORDER BY create_time DESC, post_id DESC, hashtag LIMIT ?",
            placeholders(hashtags.len())
        );
        let mut query = sqlx::query_as(&sql);
        for hashtag in hashtags {
            query = query.bind(hashtag);
        }
        Ok(query
            .bind(since)
            .bind(until)
            .bind(sql_limit(limit))
            .fetch_all(&self.db.reader)
            .await?)
    }
}

#[async_trait]
impl EventSource for SqlitePostStore {
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
        let since = since.unwrap_or(i64::MIN);
        // Keyset pages in (create_time, id) order along posts_by_time.
        let mut after: Option<(i64, String)> = None;
        loop {
            let rows = match &after {
                None => {
                    sqlx::query(EXPORT_POSTS_FIRST_PAGE)
                        .bind(since)
                        .bind(sql_limit(EXPORT_PAGE))
                        .fetch_all(&mut *tx)
                        .await?
                }
                Some((time, id)) => {
                    sqlx::query(&format!(
                        "SELECT {POST_COLUMNS} FROM posts \
                         WHERE create_time >= ? AND (create_time > ? OR id > ?) \
                           AND delete_time IS NULL \
                         ORDER BY create_time, id LIMIT ?"
                    ))
                    .bind(time)
                    .bind(time)
                    .bind(id)
                    .bind(sql_limit(EXPORT_PAGE))
                    .fetch_all(&mut *tx)
                    .await?
                }
            };
            let full = rows.len() == EXPORT_PAGE;
            for row in &rows {
                let post = post_from_row(row).map_err(export_error)?;
                sink.push(post.create_time, events::post_created_payload(&post))
                    .await?;
                after = Some((post.create_time, post.id));
            }
            if !full {
                break;
            }
        }
        // Posts of the window deleted since: a reader that heard of engagement on them (the
        // engagement service keeps it) knows to drop it.
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(EXPORT_DELETED_POSTS)
                .bind(since)
                .bind(&after)
                .bind(sql_limit(EXPORT_PAGE))
                .fetch_all(&mut *tx)
                .await?;
            let full = rows.len() == EXPORT_PAGE;
            for (id, author, deleted) in rows {
                sink.push(deleted, events::post_deleted_payload(&id, &author))
                    .await?;
                after = id;
            }
            if !full {
                break;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Bulk loading and query plans, for the candidate query benchmark.
#[cfg(test)]
impl SqlitePostStore {
    /// Inserts `posts` (with their hashtags) through the import path, 1000 to a transaction.
    pub(crate) async fn insert_many(&self, posts: &[PostRecord]) -> StoreResult<()> {
        for chunk in posts.chunks(1000) {
            self.import_posts(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Gathers the planner's statistics.
    pub(crate) async fn analyze(&self) -> StoreResult<()> {
        self.db.write(|conn| conn.execute_batch("ANALYZE")).await?;
        // Readers reload the statistics when they next prepare a statement; the new schema
        // cookie makes them notice.
        Ok(())
    }

    /// `EXPLAIN QUERY PLAN` of the candidate query of `q`, as an indented tree.
    pub(crate) async fn explain_recent_posts(&self, q: &RecentPostsQuery) -> StoreResult<String> {
        let sql = format!("EXPLAIN QUERY PLAN {}", recent_posts_sql(q));
        let rows = bind_recent_posts(sqlx::query(&sql), q)
            .fetch_all(&self.db.reader)
            .await?;
        let mut depth: Vec<(i64, usize)> = Vec::new();
        let mut out = String::new();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let parent: i64 = row.try_get("parent")?;
            let detail: String = row.try_get("detail")?;
            let level = depth
                .iter()
                .find(|(node, _)| *node == parent)
                .map_or(0, |(_, level)| level + 1);
            depth.push((id, level));
            out.push_str(&format!("{}{detail}\n", "  ".repeat(level)));
        }
        Ok(out)
    }
}

// The writes, each run by the group commit inside its transaction (`SqliteDb::write`).

/// The post first created with `key`, read on the writer connection: the write that created
/// it may share this write's transaction.
fn replay_in(conn: &Connection, key: &IdempotencyKey) -> StoreResult<CreatedPost> {
    let resource_id: String = conn
        .prepare_cached(RECORDED_KEY)?
        .query_row((&key.caller, &key.request_id), |row| row.get(0))
        .optional()?
        .ok_or_else(|| PostError::Corrupt("idempotency key conflict without its row".into()))?;
    // Deleted or not: a retry gets the first result.
    let post = conn
        .prepare_cached(STORED_POST)?
        .query([&resource_id])?
        .next()?
        .map(post_from_written)
        .transpose()?
        .ok_or_else(|| {
            PostError::Corrupt(format!("idempotency key names missing post {resource_id}"))
        })?;
    Ok(CreatedPost {
        post,
        replayed: true,
    })
}

/// Indexes `post_id`'s hashtags (`post_hashtags`).
fn insert_hashtags(
    conn: &Connection,
    post_id: &str,
    create_time: i64,
    hashtags: &[String],
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO post_hashtags (hashtag, create_time, post_id) VALUES (?, ?, ?)",
    )?;
    for hashtag in hashtags {
        insert.execute((hashtag, create_time, post_id))?;
    }
    Ok(())
}

fn create_post_in(
    conn: &Connection,
    post: PostRecord,
    key: Option<&IdempotencyKey>,
) -> StoreResult<CreatedPost> {
    if let Some(key) = key {
        let mut claim = conn.prepare_cached(CLAIM_KEY)?;
        let claimed = claim.execute((&key.caller, &key.request_id, &post.id, now_micros()))? == 1;
        if !claimed {
            return replay_in(conn, key);
        }
    }
    if !insert_post(conn, &post)? {
        // Ids are fresh UUIDv7s: a collision is a bug, never a silent success.
        return Err(PostError::Corrupt(format!(
            "post id {} already stored",
            post.id
        )));
    }
    insert_hashtags(conn, &post.id, post.create_time, &post.hashtags)?;
    outbox::append_sqlite(conn, &[events::post_created(&post, now_micros())])?;
    Ok(CreatedPost {
        post,
        replayed: false,
    })
}

/// Inserts `post` unless its id exists; true when inserted.
fn insert_post(conn: &Connection, post: &PostRecord) -> rusqlite::Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO posts (id, author_id, text, visibility, hashtags, mentions, \
             create_time, reshare_of, mentioned_members) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute((
            &post.id,
            &post.author_id,
            &post.text,
            post.visibility.as_i64(),
            json_list(&post.hashtags),
            json_list(&post.mentions),
            post.create_time,
            &post.reshare_of,
            mentions_to_json(&post.mentioned_members),
        ))?;
    Ok(inserted == 1)
}

fn delete_post_in(conn: &Connection, id: &str, delete_time: i64) -> StoreResult<bool> {
    let author: Option<String> = conn
        .prepare_cached(DELETE_POST)?
        .query_row((delete_time, id), |row| row.get(0))
        .optional()?;
    let Some(author) = author else {
        return Ok(false);
    };
    conn.prepare_cached(DELETE_POST_HASHTAGS)?.execute([id])?;
    outbox::append_sqlite(conn, &[events::post_deleted(id, &author, now_micros())])?;
    Ok(true)
}

fn update_post_in(conn: &Connection, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>> {
    let post = conn
        .prepare_cached(UPDATE_POST)?
        .query((
            &edit.text,
            json_list(&edit.hashtags),
            json_list(&edit.mentions),
            mentions_to_json(&edit.mentioned_members),
            edit.update_time,
            id,
        ))?
        .next()?
        .map(post_from_written)
        .transpose()?;
    let Some(post) = post else {
        return Ok(None);
    };
    conn.prepare_cached(DELETE_POST_HASHTAGS)?.execute([id])?;
    insert_hashtags(conn, id, post.create_time, &post.hashtags)?;
    outbox::append_sqlite(conn, &[events::post_edited(&post, now_micros())])?;
    Ok(Some(post))
}

/// Imports `posts`, skipping ids that exist (and their hashtags); returns (imported, skipped).
fn import_posts_in(conn: &Connection, posts: &[PostRecord]) -> StoreResult<(u64, u64)> {
    let mut created = Vec::with_capacity(posts.len());
    let now = now_micros();
    for post in posts {
        if insert_post(conn, post)? {
            insert_hashtags(conn, &post.id, post.create_time, &post.hashtags)?;
            created.push(events::post_created(post, now));
        }
    }
    outbox::append_sqlite(conn, &created)?;
    let imported = created.len() as u64;
    Ok((imported, posts.len() as u64 - imported))
}
