//! Store connections for both backends.
//!
//! - Embedded (default): one SQLite file per service in WAL mode with `synchronous=FULL` (a
//!   commit is on disk before the client hears of it, so it survives kill -9 and power loss),
//!   one writer connection (SQLite has one writer anyway; a single connection avoids
//!   lock-upgrade failures) and a pool of readers.
//! - PostgreSQL (production): one schema per service in a shared database, a connection pool
//!   with prepared-statement caching, `search_path` set per connection.
//!
//! Writes on SQLite go through [`SqliteDb::write`]: plain closures over the one writer connection
//! (rusqlite, on a thread of its own), each fsync shared among all the writes queued at the time
//! ([`group_commit`]). Reads use sqlx's pool of read-only connections.
//!
//! Migrations are versioned SQL files embedded by each service and applied at start-up; on
//! PostgreSQL the migrator holds an advisory lock, so replicas starting together apply each
//! migration once.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

#[cfg(test)]
mod driver_cost;
pub mod group_commit;

pub use group_commit::not_committed;
use group_commit::GroupCommitter;

/// Where a service keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (`sqlite://PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    // URLs may carry passwords: never printed whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("sqlite URL needs a path: sqlite://DIR/FILE.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            PgConnectOptions::from_str(raw).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
            return Ok(Self::Postgres(raw.to_owned()));
        }
        Err("database URL must start with sqlite:// or postgres://".into())
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme && url[scheme + 3..at].contains(':') => {
                    let userinfo = &url[scheme + 3..at];
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

/// One versioned migration, embedded with `include_str!`. Never edit one once released: add
/// the next version instead.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// `sql` with its placeholders as PostgreSQL takes them: the backends share their
/// dialect-neutral statements written as SQLite takes them. Plain `?` placeholders are numbered
/// `$1`, `$2`, ... in order; SQLite's numbered `?N` (a value used twice) is `$N`. A statement
/// uses one form or the other.
pub fn numbered(sql: &str) -> String {
    debug_assert!(
        {
            let mut forms = sql
                .match_indices('?')
                .map(|(i, _)| sql[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
            let first = forms.next();
            forms.all(|numbered| Some(numbered) == first)
        },
        "a statement mixes ? and ?N: {sql}"
    );
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if !chars.peek().is_some_and(char::is_ascii_digit) {
            n += 1;
            out.push_str(&n.to_string());
        }
    }
    out
}

/// A migrations list, one line a migration: `version: "description" => sql`.
#[macro_export]
macro_rules! migrations {
    ($($version:literal: $description:literal => $sql:expr),* $(,)?) => {
        &[$($crate::db::MigrationFile {
            version: $version,
            description: $description,
            sql: $sql,
        }),*]
    };
}

/// A service's SQLite database: a single writer and a pool of readers on one file.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pub reader: SqlitePool,
    /// The one writer connection, on its own thread: every write goes through
    /// [`SqliteDb::write`].
    commits: GroupCommitter,
}

impl SqliteDb {
    /// Opens (creating if needed) `path` and applies `migrations`.
    pub async fn open(path: &Path, migrations: &[MigrationFile]) -> Result<Self, sqlx::Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-32000")
            .pragma("temp_store", "memory");
        {
            // Migrations run through sqlx's migrator on a connection of their own, closed
            // before the writer opens.
            // (A pool of one: the migrator's future over a bare connection is not `Send`.)
            let migrations_conn = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            migrator(migrations).run(&migrations_conn).await?;
            migrations_conn.close().await;
        }
        let writer = open_writer(path).map_err(io_error)?;
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let commits = GroupCommitter::start(writer, &name)?;
        // No ping before each use: a reader is a local file handle that cannot go stale, and
        // the ping is a round trip to its worker thread on every query.
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { reader, commits })
    }

    /// Runs `write` inside the next group commit (one transaction, the write in its own
    /// savepoint) and returns its result once that commit is on disk. An error from `write`
    /// undoes its own changes only. `write` runs on the writer thread, so it must not block on
    /// anything but the database; its statements should come from `prepare_cached`.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        self.commits.write(write).await
    }

    /// Changes after every durable group commit (the outbox stream wakes on it).
    pub fn commit_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Group commits so far (each holding one or more writes).
    pub fn group_commits(&self) -> u64 {
        self.commits.commits()
    }

    /// Writes queued for the writer, not yet taken into a batch.
    pub fn queued_writes(&self) -> usize {
        self.commits.queued()
    }

    /// Commits the queued writes and closes the writer and the readers; later writes fail.
    pub async fn close(&self) {
        self.commits.close().await;
        self.reader.close().await;
    }
}

/// The writer connection, with the readers' pragmas: WAL, and a commit is durable
/// (`synchronous=FULL`) before its writes are acknowledged.
fn open_writer(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -32000; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

fn io_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(e))
}

/// A service's PostgreSQL schema and the pool that uses it.
#[derive(Debug, Clone)]
pub struct PgDb {
    pub pool: PgPool,
    pub schema: String,
}

/// Connections per service pool: enough for concurrent requests on a few cores, small enough
/// for four services and their replicas to share one server.
pub const PG_MAX_CONNECTIONS: u32 = 16;

impl PgDb {
    /// Connects to `url`, creates `schema` if needed, points every connection's `search_path`
    /// at it and applies `migrations` there.
    pub async fn open(
        url: &str,
        schema: &str,
        migrations: &[MigrationFile],
    ) -> Result<Self, sqlx::Error> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(sqlx::Error::Configuration(
                format!("invalid schema name {schema:?}").into(),
            ));
        }
        let options = PgConnectOptions::from_str(url)?
            .statement_cache_capacity(256)
            .options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        {
            // Replicas starting together must not race on CREATE SCHEMA.
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pronet schema ' || $1))")
                .bind(schema)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        migrator(migrations).run(&pool).await?;
        Ok(Self {
            pool,
            schema: schema.to_owned(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$1, $2, ...` placeholders for PostgreSQL, starting at `$first`.
pub fn pg_placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn migrator(files: &[MigrationFile]) -> Migrator {
    let migrations: Vec<Migration> = files
        .iter()
        .map(|f| {
            Migration::new(
                f.version,
                Cow::Borrowed(f.description),
                MigrationType::Simple,
                Cow::Borrowed(f.sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Placeholders `?, ?, ...` for an `IN (...)` list of `n` values.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c < ? LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND c < $2 LIMIT $3"
        );
        assert_eq!(
            numbered("DELETE FROM c WHERE (m = ?1 AND o = ?2) OR (m = ?2 AND o = ?1)"),
            "DELETE FROM c WHERE (m = $1 AND o = $2) OR (m = $2 AND o = $1)"
        );
    }

    #[test]
    fn parses_and_redacts_database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/post.db").unwrap(),
            DatabaseUrl::Sqlite("data/post.db".into())
        );
        let pg = DatabaseUrl::parse("postgres://app:s3cret@db:5432/pronet").unwrap();
        assert_eq!(pg.redacted(), "postgres://app:***@db:5432/pronet");
        assert!(!format!("{pg:?}").contains("s3cret"));
        let no_password = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(
            no_password.redacted(),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn placeholders_list() {
        assert_eq!(pg_placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(3), "?, ?, ?");
    }

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let files = [MigrationFile {
            version: 1,
            description: "things",
            sql: "CREATE TABLE things (id TEXT PRIMARY KEY)",
        }];
        let db = SqliteDb::open(&path, &files).await.unwrap();
        db.write(|conn| conn.execute("INSERT INTO things (id) VALUES ('a')", []))
            .await
            .unwrap();
        db.close().await;
        let late = db.write(|conn| conn.execute("INSERT INTO things (id) VALUES ('b')", []));
        assert!(late.await.is_err(), "a closed store takes no writes");
        let db = SqliteDb::open(&path, &files).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM things")
            .fetch_one(&db.reader)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    fn insert_thing(
        conn: &rusqlite::Connection,
        id: String,
        then_fail: bool,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached("INSERT INTO things (id) VALUES (?)")?
            .execute([&id])?;
        if then_fail {
            // A unique violation after the write above: the whole write must be undone.
            conn.execute("INSERT INTO things (id) VALUES ('taken')", [])?;
        }
        Ok(())
    }

    // A first write holds the writer until the 300 others are queued, so the batching is
    // deterministic: the 300 make two commits (256 + 44) after the first one's.
    #[tokio::test(flavor = "current_thread")]
    async fn group_commit_shares_commits_and_undoes_only_failed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let files = [MigrationFile {
            version: 1,
            description: "things",
            sql: "CREATE TABLE things (id TEXT PRIMARY KEY); INSERT INTO things VALUES ('taken');",
        }];
        let db = SqliteDb::open(&path, &files).await.unwrap();
        let (running, is_running) = tokio::sync::oneshot::channel();
        let holder = db.clone();
        let hold = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |_| {
                    let _ = running.send(());
                    let start = std::time::Instant::now();
                    while holder.queued_writes() < 300 && start.elapsed() < Duration::from_secs(10)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok::<_, rusqlite::Error>(holder.queued_writes())
                })
                .await
            }
        });
        is_running.await.unwrap();
        let writes = (0..300).map(|i| {
            let db = db.clone();
            async move {
                db.write(move |conn| insert_thing(conn, format!("w{i}"), i % 5 == 0))
                    .await
            }
        });
        let results = futures_util::future::join_all(writes).await;
        let held = hold.await.unwrap();
        assert_eq!(held.unwrap(), 300);
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result.is_err(), i % 5 == 0, "write {i}: {result:?}");
        }
        assert_eq!(db.group_commits(), 3);
        db.close().await;

        // Everything acknowledged is on disk; nothing of a failed write is.
        let db = SqliteDb::open(&path, &files).await.unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM things ORDER BY id")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert_eq!(ids.len(), 1 + 240);
        assert!(ids.iter().all(|id| id == "taken" || {
            let n: usize = id[1..].parse().unwrap();
            !n.is_multiple_of(5)
        }));
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let files = [MigrationFile {
            version: 1,
            description: "things",
            sql: "CREATE TABLE things (id TEXT PRIMARY KEY)",
        }];
        let db = SqliteDb::open(&dir.path().join("t.db"), &files)
            .await
            .unwrap();
        let panicked = db
            .write(|conn| -> rusqlite::Result<()> {
                conn.execute("INSERT INTO things (id) VALUES ('p')", [])?;
                panic!("a bug in a write");
            })
            .await;
        assert!(panicked.is_err());
        db.write(|conn| insert_thing(conn, "after".into(), false))
            .await
            .unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM things")
            .fetch_all(&db.reader)
            .await
            .unwrap();
        assert_eq!(ids, ["after"]);
    }

    #[tokio::test]
    async fn postgres_replicas_starting_together_migrate_once() {
        let Some(t) = crate::testing::postgres_schema("db_migrate").await else {
            return;
        };
        let files = [MigrationFile {
            version: 1,
            description: "things",
            sql: "CREATE TABLE things (id TEXT PRIMARY KEY)",
        }];
        let opens = (0..4).map(|_| PgDb::open(&t.url, &t.schema, &files));
        let dbs = futures_util::future::try_join_all(opens).await.unwrap();
        sqlx::query("INSERT INTO things (id) VALUES ('a')")
            .execute(&dbs[0].pool)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM things")
            .fetch_one(&dbs[3].pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&dbs[1].pool)
            .await
            .unwrap();
        assert_eq!(applied, 1);
        for db in dbs {
            db.close().await;
        }
    }
}
