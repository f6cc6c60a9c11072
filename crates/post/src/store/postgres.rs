//! The post store on PostgreSQL: one schema of a shared database.
//!
//! Lists travel as arrays (`= ANY($1)`, `unnest($1)`), so each query is one prepared
//! statement whatever the number of ids.

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use pronet_common::db::{numbered, MigrationFile, PgDb};
use pronet_common::events::{EventSource, ExportError, ExportSink};
use pronet_common::outbox::{self, Outbox};
use pronet_common::time::now_micros;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::sql::{self, POST_COLUMNS};
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
    1: "posts" => include_str!("../../migrations/postgres/0001_posts.sql"),
    2: "idempotency keys" => include_str!("../../migrations/postgres/0002_idempotency_keys.sql"),
    3: "edits deletes reshares" => include_str!("../../migrations/postgres/0003_edits_deletes_reshares.sql"),
    4: "outbox" => outbox::POSTGRES_MIGRATION,
];

// The shared statements (`super::sql`) of the request paths, numbered once.
static GET_POST: LazyLock<String> = LazyLock::new(|| numbered(sql::GET_POST));
static POSTS_BY_HASHTAG: LazyLock<String> = LazyLock::new(|| numbered(sql::POSTS_BY_HASHTAG));
static COUNT_HASHTAG_POSTS: LazyLock<String> = LazyLock::new(|| numbered(sql::COUNT_HASHTAG_POSTS));
static CLAIM_KEY: LazyLock<String> = LazyLock::new(|| numbered(sql::CLAIM_KEY));
static DELETE_POST: LazyLock<String> = LazyLock::new(|| numbered(sql::DELETE_POST));
static DELETE_POST_HASHTAGS: LazyLock<String> =
    LazyLock::new(|| numbered(sql::DELETE_POST_HASHTAGS));
static UPDATE_POST: LazyLock<String> = LazyLock::new(|| numbered(sql::UPDATE_POST));

/// The feed's candidate query. $1 author ids, $2 hashtags, $3 since, $4 posts per author,
/// $5 posts overall.
///
/// Each author's newest posts are one short descending range of posts_by_author, read by a
/// LATERAL subquery with its own LIMIT, so the per-author cap costs at most $4 index entries
/// per author, whatever the author's history (no window over every matching row). Hashtags
/// likewise read at most $5 entries each from post_hashtags' primary key. Only the newest $5
/// ids of the union are fetched whole, through posts' primary key: the ids go in as an array
/// so the planner cannot turn the fetch into a hash join over a sequential scan of posts.
const RECENT_POSTS_SQL: &str = "\
WITH candidates AS (
    SELECT by_author.id, by_author.create_time
    FROM unnest($1::text[]) AS author(id)
    CROSS JOIN LATERAL (
        SELECT p.id, p.create_time FROM posts p
        WHERE p.author_id = author.id AND p.create_time >= $3 AND p.delete_time IS NULL
        ORDER BY p.create_time DESC, p.id DESC
        LIMIT $4
    ) AS by_author
    UNION
    SELECT by_hashtag.post_id, by_hashtag.create_time
    FROM unnest($2::text[]) AS tag(name)
    CROSS JOIN LATERAL (
        SELECT h.post_id, h.create_time FROM post_hashtags h
        WHERE h.hashtag = tag.name AND h.create_time >= $3
        ORDER BY h.create_time DESC, h.post_id DESC
        LIMIT $5
    ) AS by_hashtag
    ORDER BY create_time DESC, id DESC
    LIMIT $5
)
SELECT id, author_id, text, visibility, hashtags, mentions, create_time,
    update_time, reshare_of, mentioned_members FROM posts
WHERE id = ANY (ARRAY(SELECT id FROM candidates))
ORDER BY create_time DESC, id DESC";

#[derive(Debug, Clone)]
pub struct PgPostStore {
    db: PgDb,
}

impl PgPostStore {
    /// Connects to `url` and migrates `schema`, creating it if needed.
    pub async fn open(url: &str, schema: &str) -> Result<Self, sqlx::Error> {
        Ok(Self {
            db: PgDb::open(url, schema, MIGRATIONS).await?,
        })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// The post first created with `key`, whose transaction has committed.
    async fn replay(&self, key: &IdempotencyKey) -> StoreResult<CreatedPost> {
        let resource_id: String = sqlx::query_scalar(&numbered(sql::RECORDED_KEY))
            .bind(&key.caller)
            .bind(&key.request_id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| PostError::Corrupt("idempotency key conflict without its row".into()))?;
        // Deleted or not: a retry gets the first result.
        let post = sqlx::query(&numbered(sql::STORED_POST))
            .bind(&resource_id)
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(post_from_row)
            .transpose()?
            .ok_or_else(|| {
                PostError::Corrupt(format!("idempotency key names missing post {resource_id}"))
            })?;
        Ok(CreatedPost {
            post,
            replayed: true,
        })
    }
}

fn post_from_row(row: &PgRow) -> StoreResult<PostRecord> {
    Ok(PostRecord {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        text: row.try_get("text")?,
        visibility: visibility_from_code(row.try_get::<i16, _>("visibility")?.into())?,
        hashtags: row.try_get("hashtags")?,
        mentions: row.try_get("mentions")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
        reshare_of: row.try_get("reshare_of")?,
        mentioned_members: mentions_from_json(&row.try_get::<String, _>("mentioned_members")?)?,
    })
}

fn visibility_code(v: Visibility) -> i16 {
    match v {
        Visibility::Public => 1,
        Visibility::Connections => 2,
    }
}

/// Binds `q` to [`RECENT_POSTS_SQL`].
fn bind_recent_posts<'q>(
    query: Query<'q, Postgres, PgArguments>,
    q: &'q RecentPostsQuery,
) -> Query<'q, Postgres, PgArguments> {
    // Without a cap an author still cannot contribute more than the overall limit.
    let per_author = q
        .max_posts_per_author
        .map_or(q.max_posts, |cap| cap.min(q.max_posts));
    query
        .bind(&q.author_ids)
        .bind(&q.hashtags)
        .bind(q.since)
        .bind(sql_limit(per_author))
        .bind(sql_limit(q.max_posts))
}

#[async_trait]
impl PostStore for PgPostStore {
    async fn create_post(
        &self,
        post: PostRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<CreatedPost> {
        let mut tx = self.db.pool.begin().await?;
        if let Some(key) = key {
            // Claims the key first. A racing request with the same key waits here on our
            // uncommitted row; once we commit, its insert does nothing and it replays our post
            // (if we roll back, it proceeds as the first).
            let claimed = sqlx::query(&CLAIM_KEY)
                .bind(&key.caller)
                .bind(&key.request_id)
                .bind(&post.id)
                .bind(now_micros())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !claimed {
                tx.rollback().await?;
                return self.replay(key).await;
            }
        }
        sqlx::query(
            "INSERT INTO posts (id, author_id, text, visibility, hashtags, mentions, create_time, \
             reshare_of, mentioned_members) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&post.id)
        .bind(&post.author_id)
        .bind(&post.text)
        .bind(visibility_code(post.visibility))
        .bind(&post.hashtags)
        .bind(&post.mentions)
        .bind(post.create_time)
        .bind(&post.reshare_of)
        .bind(mentions_to_json(&post.mentioned_members))
        .execute(&mut *tx)
        .await?;
        if !post.hashtags.is_empty() {
            sqlx::query(
                "INSERT INTO post_hashtags (hashtag, create_time, post_id) \
                 SELECT tag, $2, $3 FROM unnest($1::text[]) AS tag \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&post.hashtags)
            .bind(post.create_time)
            .bind(&post.id)
            .execute(&mut *tx)
            .await?;
        }
        outbox::append_postgres(&mut tx, &[events::post_created(&post, now_micros())]).await?;
        tx.commit().await?;
        Ok(CreatedPost {
            post,
            replayed: false,
        })
    }

    async fn import_posts(&self, posts: Vec<PostRecord>) -> StoreResult<(u64, u64)> {
        let (posts, repeats) = distinct_posts(posts);
        if posts.is_empty() {
            return Ok((0, repeats));
        }
        let mut tx = self.db.pool.begin().await?;
        // unnest flattens a 2-D array, so hashtags and mentions go in as one delimited string
        // per post (string_to_array('') is the empty array).
        let joined = |list: fn(&PostRecord) -> &Vec<String>| -> Vec<String> {
            posts.iter().map(|p| list(p).join("\u{1f}")).collect()
        };
        let column =
            |f: fn(&PostRecord) -> String| -> Vec<String> { posts.iter().map(f).collect() };
        // Only rows inserted come back: an existing id is skipped, and so are its hashtags. A
        // racing import of the same id waits for ours, then skips it.
        let ids: HashSet<String> = sqlx::query_scalar(
            "INSERT INTO posts (id, author_id, text, visibility, hashtags, mentions, \
             create_time, reshare_of, mentioned_members) \
             SELECT id, author_id, text, visibility, \
               string_to_array(hashtags, E'\\x1f'), \
               string_to_array(mentions, E'\\x1f'), create_time, reshare_of, mentioned \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::text[], \
               $6::text[], $7::bigint[], $8::text[], $9::text[]) \
               AS t(id, author_id, text, visibility, hashtags, mentions, create_time, \
                 reshare_of, mentioned) \
             ORDER BY id \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(column(|p| p.id.clone()))
        .bind(column(|p| p.author_id.clone()))
        .bind(column(|p| p.text.clone()))
        .bind(
            posts
                .iter()
                .map(|p| visibility_code(p.visibility))
                .collect::<Vec<_>>(),
        )
        .bind(joined(|p| &p.hashtags))
        .bind(joined(|p| &p.mentions))
        .bind(posts.iter().map(|p| p.create_time).collect::<Vec<_>>())
        .bind(
            posts
                .iter()
                .map(|p| p.reshare_of.clone())
                .collect::<Vec<_>>(),
        )
        .bind(column(|p| mentions_to_json(&p.mentioned_members)))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let imported: Vec<&PostRecord> = posts.iter().filter(|p| ids.contains(&p.id)).collect();
        let (mut tags, mut times, mut tag_ids) = (Vec::new(), Vec::new(), Vec::new());
        for p in &imported {
            for tag in &p.hashtags {
                tags.push(tag.clone());
                times.push(p.create_time);
                tag_ids.push(p.id.clone());
            }
        }
        if !tags.is_empty() {
            sqlx::query(
                "INSERT INTO post_hashtags (hashtag, create_time, post_id) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tags)
            .bind(times)
            .bind(tag_ids)
            .execute(&mut *tx)
            .await?;
        }
        let now = now_micros();
        let created: Vec<_> = imported
            .iter()
            .map(|p| events::post_created(p, now))
            .collect();
        outbox::append_postgres(&mut tx, &created).await?;
        tx.commit().await?;
        let imported = imported.len() as u64;
        Ok((imported, posts.len() as u64 - imported + repeats))
    }

    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        sqlx::query(&GET_POST)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .as_ref()
            .map(post_from_row)
            .transpose()
    }

    async fn batch_get_posts(&self, ids: &[String]) -> StoreResult<Vec<PostRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // `= ANY` matches each row once, however often its id is repeated.
        sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE id = ANY ($1::text[]) AND delete_time IS NULL"
        ))
        .bind(ids)
        .fetch_all(&self.db.pool)
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
        let visibilities: Vec<i16> = visibilities.iter().copied().map(visibility_code).collect();
        // Filtered here rather than after paging, so a viewer gets full pages.
        sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM posts \
             WHERE author_id = $1 AND (create_time, id) < ($2, $3) \
               AND create_time >= $6 AND create_time < $7 \
               AND visibility = ANY ($4::smallint[]) AND delete_time IS NULL \
             ORDER BY create_time DESC, id DESC LIMIT $5"
        ))
        .bind(author_id)
        .bind(time)
        .bind(id)
        .bind(visibilities)
        .bind(sql_limit(limit))
        .bind(start)
        .bind(end)
        .fetch_all(&self.db.pool)
        .await?
        .iter()
        .map(post_from_row)
        .collect()
    }

    async fn list_recent_posts(&self, q: &RecentPostsQuery) -> StoreResult<Vec<PostRecord>> {
        if finds_no_recent_posts(q) {
            return Ok(Vec::new());
        }
        bind_recent_posts(sqlx::query(RECENT_POSTS_SQL), q)
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn delete_post(&self, id: &str, delete_time: i64) -> StoreResult<bool> {
        let mut tx = self.db.pool.begin().await?;
        // The row lock serializes racing deletes (and edits): the second one re-checks
        // delete_time after the first commits and changes nothing.
        let author: Option<String> = sqlx::query_scalar(&DELETE_POST)
            .bind(delete_time)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(author) = author else {
            tx.rollback().await?;
            return Ok(false);
        };
        sqlx::query(&DELETE_POST_HASHTAGS)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        outbox::append_postgres(&mut tx, &[events::post_deleted(id, &author, now_micros())])
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn update_post(&self, id: &str, edit: &PostEdit) -> StoreResult<Option<PostRecord>> {
        let mut tx = self.db.pool.begin().await?;
        // The UPDATE comes first: it locks the row, so racing edits and deletes rewrite the
        // hashtag rows one after the other.
        let row = sqlx::query(&UPDATE_POST)
            .bind(&edit.text)
            .bind(&edit.hashtags)
            .bind(&edit.mentions)
            .bind(mentions_to_json(&edit.mentioned_members))
            .bind(edit.update_time)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let post = post_from_row(&row)?;
        sqlx::query(&DELETE_POST_HASHTAGS)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if !post.hashtags.is_empty() {
            sqlx::query(
                "INSERT INTO post_hashtags (hashtag, create_time, post_id) \
                 SELECT tag, $2, $3 FROM unnest($1::text[]) AS tag \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&post.hashtags)
            .bind(post.create_time)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        outbox::append_postgres(&mut tx, &[events::post_edited(&post, now_micros())]).await?;
        tx.commit().await?;
        Ok(Some(post))
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
        sqlx::query(&POSTS_BY_HASHTAG)
            .bind(hashtag)
            .bind(time)
            .bind(id)
            .bind(sql_limit(limit))
            .fetch_all(&self.db.pool)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }

    async fn count_hashtag_posts(&self, since: i64, until: i64) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(&COUNT_HASHTAG_POSTS)
            .bind(since)
            .bind(until)
            .fetch_all(&self.db.pool)
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
        Ok(sqlx::query_as(
            "SELECT hashtag, post_id FROM post_hashtags \
             WHERE hashtag = ANY ($1::text[]) AND create_time >= $2 AND create_time < $3 \
             ORDER BY create_time DESC, post_id DESC, hashtag LIMIT $4",
        )
        .bind(hashtags)
        .bind(since)
        .bind(until)
        .bind(sql_limit(limit))
        .fetch_all(&self.db.pool)
        .await?)
    }
}

#[async_trait]
impl EventSource for PgPostStore {
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
        let since = since.unwrap_or(i64::MIN);
        // Keyset pages in (create_time, id) order along posts_by_time.
        let mut after: Option<(i64, String)> = None;
        let first_page = numbered(sql::EXPORT_POSTS_FIRST_PAGE);
        loop {
            let rows = match &after {
                None => {
                    sqlx::query(&first_page)
                        .bind(since)
                        .bind(sql_limit(EXPORT_PAGE))
                        .fetch_all(&mut *tx)
                        .await?
                }
                Some((time, id)) => {
                    sqlx::query(&format!(
                        "SELECT {POST_COLUMNS} FROM posts \
                         WHERE create_time >= $1 AND (create_time, id) > ($1, $2) \
                           AND delete_time IS NULL \
                         ORDER BY create_time, id LIMIT $3"
                    ))
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
        let deleted_page = numbered(sql::EXPORT_DELETED_POSTS);
        loop {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(&deleted_page)
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
impl PgPostStore {
    /// Inserts `posts` (with their hashtags) through the import path, 10,000 to a
    /// transaction.
    pub(crate) async fn insert_many(&self, posts: &[PostRecord]) -> StoreResult<()> {
        for chunk in posts.chunks(10_000) {
            self.import_posts(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Gathers the planner's statistics.
    pub(crate) async fn analyze(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE posts, post_hashtags")
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// `EXPLAIN (ANALYZE, BUFFERS)` of the candidate query of `q`.
    pub(crate) async fn explain_recent_posts(&self, q: &RecentPostsQuery) -> StoreResult<String> {
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {RECENT_POSTS_SQL}");
        let rows = bind_recent_posts(sqlx::query(&sql), q)
            .fetch_all(&self.db.pool)
            .await?;
        let mut out = String::new();
        for row in rows {
            let line: String = row.try_get(0)?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}
