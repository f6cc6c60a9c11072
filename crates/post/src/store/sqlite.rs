//! The embedded post store on SQLite.

use std::path::Path;

use async_trait::async_trait;
use pronet_common::db::{placeholders, MigrationFile, SqliteDb};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{PostStore, StoreResult};
use crate::domain::{Cursor, PostRecord, RecentPostsQuery, Visibility};
use crate::error::PostError;

const MIGRATIONS: &[MigrationFile] = &[MigrationFile {
    version: 1,
    description: "posts",
    sql: include_str!("../../migrations/sqlite/0001_posts.sql"),
}];

const POST_COLUMNS: &str = "id, author_id, text, visibility, hashtags, mentions, create_time";

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
    let visibility: i64 = row.try_get("visibility")?;
    let hashtags: String = row.try_get("hashtags")?;
    let mentions: String = row.try_get("mentions")?;
    Ok(PostRecord {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        text: row.try_get("text")?,
        visibility: Visibility::from_i64(visibility)
            .ok_or_else(|| PostError::Corrupt(format!("post visibility {visibility}")))?,
        hashtags: serde_json::from_str(&hashtags)
            .map_err(|e| PostError::Corrupt(format!("hashtags: {e}")))?,
        mentions: serde_json::from_str(&mentions)
            .map_err(|e| PostError::Corrupt(format!("mentions: {e}")))?,
        create_time: row.try_get("create_time")?,
    })
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A row count as SQLite's integer; counts beyond it mean "no limit" anyway.
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl PostStore for SqlitePostStore {
    async fn create_post(&self, post: PostRecord) -> StoreResult<PostRecord> {
        let mut tx = self.db.writer.begin().await?;
        sqlx::query(
            "INSERT INTO posts (id, author_id, text, visibility, hashtags, mentions, create_time) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&post.id)
        .bind(&post.author_id)
        .bind(&post.text)
        .bind(post.visibility.as_i64())
        .bind(json_list(&post.hashtags))
        .bind(json_list(&post.mentions))
        .bind(post.create_time)
        .execute(&mut *tx)
        .await?;
        for hashtag in &post.hashtags {
            sqlx::query(
                "INSERT OR IGNORE INTO post_hashtags (hashtag, create_time, post_id) \
                 VALUES (?, ?, ?)",
            )
            .bind(hashtag)
            .bind(post.create_time)
            .bind(&post.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(post)
    }

    async fn get_post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        sqlx::query(&format!("SELECT {POST_COLUMNS} FROM posts WHERE id = ?"))
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
            "SELECT {POST_COLUMNS} FROM posts WHERE id IN ({})",
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
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        if visibilities.is_empty() {
            return Ok(Vec::new());
        }
        let (time, id) = after.map_or((i64::MAX, String::new()), |c| (c.time, c.id));
        // Filtered here rather than after paging, so a viewer gets full pages.
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts \
             WHERE author_id = ? AND (create_time, id) < (?, ?) AND visibility IN ({}) \
             ORDER BY create_time DESC, id DESC LIMIT ?",
            placeholders(visibilities.len())
        );
        let mut query = sqlx::query(&sql).bind(author_id).bind(time).bind(id);
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
        if (q.author_ids.is_empty() && q.hashtags.is_empty()) || q.max_posts == 0 {
            return Ok(Vec::new());
        }
        let limit = sql_limit(q.max_posts);
        // Each branch keeps only its newest `max_posts`: the newest `max_posts` of the union
        // are among them, and the branches stay small however many posts match.
        let mut branches = Vec::with_capacity(2);
        if !q.author_ids.is_empty() {
            let authors = placeholders(q.author_ids.len());
            branches.push(match q.max_posts_per_author {
                // Ranks each author's posts so the per-author cap applies before the overall
                // limit.
                Some(_) => format!(
                    "SELECT id, create_time FROM ( \
                       SELECT id, create_time, ROW_NUMBER() OVER ( \
                         PARTITION BY author_id ORDER BY create_time DESC, id DESC \
                       ) AS author_rank \
                       FROM posts WHERE author_id IN ({authors}) AND create_time >= ?) \
                     WHERE author_rank <= ? \
                     ORDER BY create_time DESC, id DESC LIMIT ?"
                ),
                None => format!(
                    "SELECT id, create_time FROM posts \
                     WHERE author_id IN ({authors}) AND create_time >= ? \
                     ORDER BY create_time DESC, id DESC LIMIT ?"
                ),
            });
        }
        if !q.hashtags.is_empty() {
            // DISTINCT: a post carrying two of the hashtags must take one place of the limit.
            branches.push(format!(
                "SELECT DISTINCT post_id AS id, create_time FROM post_hashtags \
                 WHERE hashtag IN ({}) AND create_time >= ? \
                 ORDER BY create_time DESC, post_id DESC LIMIT ?",
                placeholders(q.hashtags.len())
            ));
        }
        let union = branches
            .iter()
            .map(|b| format!("SELECT id FROM ({b})"))
            .collect::<Vec<_>>()
            .join(" UNION ");
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE id IN ({union}) \
             ORDER BY create_time DESC, id DESC LIMIT ?"
        );
        // Binds follow the placeholders' order in `sql`.
        let mut query = sqlx::query(&sql);
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
        if !q.hashtags.is_empty() {
            for hashtag in &q.hashtags {
                query = query.bind(hashtag);
            }
            query = query.bind(q.since).bind(limit);
        }
        query = query.bind(limit);
        query
            .fetch_all(&self.db.reader)
            .await?
            .iter()
            .map(post_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::domain::PostText;

    async fn open_store(dir: &tempfile::TempDir) -> SqlitePostStore {
        SqlitePostStore::open(&dir.path().join("post.db"))
            .await
            .unwrap()
    }

    fn post(id: &str, author: &str, text: &str, time: i64) -> PostRecord {
        PostRecord::new(
            id.into(),
            author.into(),
            PostText::parse(text).unwrap(),
            Visibility::Public,
            time,
        )
    }

    fn ids(posts: &[PostRecord]) -> Vec<&str> {
        posts.iter().map(|p| p.id.as_str()).collect()
    }

    fn recent(authors: &[&str], hashtags: &[&str], since: i64) -> RecentPostsQuery {
        RecentPostsQuery {
            author_ids: authors.iter().map(|s| s.to_string()).collect(),
            hashtags: hashtags.iter().map(|s| s.to_string()).collect(),
            since,
            max_posts: 1000,
            max_posts_per_author: None,
        }
    }

    #[tokio::test]
    async fn creates_and_gets_a_post() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        let mut created = post("p1", "ada", "Hello @Bob_B #Rust #rust #WASM", 42);
        created.visibility = Visibility::Connections;
        store.create_post(created.clone()).await.unwrap();
        let got = store.get_post("p1").await.unwrap().unwrap();
        assert_eq!(got, created);
        assert_eq!(got.hashtags, ["rust", "wasm"]);
        assert_eq!(got.mentions, ["bob_b"]);
        assert_eq!(got.visibility, Visibility::Connections);
        assert_eq!(store.get_post("nope").await.unwrap(), None);
        store.close().await;
    }

    #[tokio::test]
    async fn batch_get_returns_each_existing_post_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        for (id, t) in [("a", 1), ("b", 2), ("c", 3)] {
            store.create_post(post(id, "ada", "text", t)).await.unwrap();
        }
        let want: Vec<String> = ["c", "missing", "a", "c"].map(String::from).into();
        let mut got: Vec<String> = store
            .batch_get_posts(&want)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        got.sort();
        assert_eq!(got, ["a", "c"]);
        assert!(store.batch_get_posts(&[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn pages_an_authors_posts_newest_first_without_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        // 25 posts; pairs share a create_time so the id must break ties between pages.
        for i in 0..25_i64 {
            let id = format!("post{i:02}");
            store
                .create_post(post(&id, "ada", "mine", 1_000 + i / 2))
                .await
                .unwrap();
            // Another author's posts at the same times must not leak in.
            store
                .create_post(post(
                    &format!("other{i:02}"),
                    "bob",
                    "theirs",
                    1_000 + i / 2,
                ))
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_posts_by_author("ada", &Visibility::ALL, after.clone(), 10)
                .await
                .unwrap();
            sizes.push(page.len());
            assert!(page.iter().all(|p| p.author_id == "ada"));
            let Some(last) = page.last() else { break };
            after = Some(Cursor {
                time: last.create_time,
                id: last.id.clone(),
            });
            seen.extend(page.iter().map(|p| (p.create_time, p.id.clone())));
            if page.len() < 10 {
                break;
            }
        }
        assert_eq!(sizes, [10, 10, 5]);
        let distinct: HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), 25);
        let mut newest_first = seen.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, newest_first);
        assert_eq!(seen[0].1, "post24");
        assert_eq!(seen[24].1, "post00");
        assert!(store
            .list_posts_by_author("nobody", &Visibility::ALL, None, 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn lists_only_an_authors_posts_of_the_given_visibilities() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        for (id, t, visibility) in [
            ("p1", 1, Visibility::Public),
            ("p2", 2, Visibility::Connections),
            ("p3", 3, Visibility::Public),
        ] {
            let mut p = post(id, "ada", "text", t);
            p.visibility = visibility;
            store.create_post(p).await.unwrap();
        }
        let list = |visibilities: &'static [Visibility]| {
            let store = store.clone();
            async move {
                store
                    .list_posts_by_author("ada", visibilities, None, 10)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(ids(&list(&Visibility::ALL).await), ["p3", "p2", "p1"]);
        assert_eq!(ids(&list(&[Visibility::Public]).await), ["p3", "p1"]);
        assert_eq!(ids(&list(&[Visibility::Connections]).await), ["p2"]);
        assert!(list(&[]).await.is_empty());
    }

    /// ada: a1..a4 (a3 carries #rust), bob: b1..b2, cat: c1 #rust and an old c0 #rust,
    /// dan: d1 #go. Times are the numbers below; `since` is 100.
    async fn recent_fixture(store: &SqlitePostStore) {
        for p in [
            post("a0", "ada", "too old", 99),
            post("a1", "ada", "one", 101),
            post("a2", "ada", "two", 104),
            post("a3", "ada", "three #Rust", 107),
            post("a4", "ada", "four", 110),
            post("b1", "bob", "one", 100),
            post("b2", "bob", "two", 105),
            post("c0", "cat", "old #rust", 50),
            post("c1", "cat", "new #rust #go", 102),
            post("d1", "dan", "#go", 108),
        ] {
            store.create_post(p).await.unwrap();
        }
    }

    #[tokio::test]
    async fn recent_posts_by_authors_since_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        recent_fixture(&store).await;
        let got = store
            .list_recent_posts(&recent(&["ada", "bob"], &[], 100))
            .await
            .unwrap();
        // Exactly at `since` (b1) is in; before it (a0) is out.
        assert_eq!(ids(&got), ["a4", "a3", "b2", "a2", "a1", "b1"]);
    }

    #[tokio::test]
    async fn recent_posts_cap_each_author_before_the_overall_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        recent_fixture(&store).await;
        let mut q = recent(&["ada", "bob"], &[], 100);
        q.max_posts_per_author = Some(2);
        let got = store.list_recent_posts(&q).await.unwrap();
        assert_eq!(ids(&got), ["a4", "a3", "b2", "b1"]);
        q.max_posts = 3;
        let got = store.list_recent_posts(&q).await.unwrap();
        assert_eq!(ids(&got), ["a4", "a3", "b2"]);
    }

    #[tokio::test]
    async fn recent_posts_add_hashtag_posts_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        recent_fixture(&store).await;
        let mut q = recent(&["ada"], &["rust", "go"], 100);
        q.max_posts_per_author = Some(1);
        let got = store.list_recent_posts(&q).await.unwrap();
        // a4 by author (capped at one), a3 by its hashtag despite the cap, c1 once although it
        // carries both hashtags, d1 by #go; c0 is before `since`.
        assert_eq!(ids(&got), ["a4", "d1", "a3", "c1"]);
        let got = store
            .list_recent_posts(&recent(&[], &["rust"], 0))
            .await
            .unwrap();
        assert_eq!(ids(&got), ["a3", "c1", "c0"]);
        q.max_posts = 2;
        let got = store.list_recent_posts(&q).await.unwrap();
        assert_eq!(ids(&got), ["a4", "d1"]);
    }

    #[tokio::test]
    async fn recent_posts_of_nobody_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        recent_fixture(&store).await;
        let got = store.list_recent_posts(&recent(&[], &[], 0)).await.unwrap();
        assert!(got.is_empty());
        let got = store
            .list_recent_posts(&recent(&["zed"], &["nothing"], 0))
            .await
            .unwrap();
        assert!(got.is_empty());
    }
}
