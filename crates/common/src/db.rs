//! The embedded store's connections: one SQLite file per service in WAL mode with
//! `synchronous=FULL` (a commit is on disk before the client hears of it, so it survives kill -9
//! and power loss), one writer connection (SQLite has one writer anyway; a single connection
//! avoids lock-upgrade failures) and a pool of readers. Migrations are versioned SQL files
//! embedded by each service and applied at start-up.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// One versioned migration, embedded with `include_str!`. Never edit one once released: add
/// the next version instead.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// A service's SQLite database: a single writer and a pool of readers on one file.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone())
            .await?;
        migrator(migrations).run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
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
    fn placeholders_list() {
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
        sqlx::query("INSERT INTO things (id) VALUES ('a')")
            .execute(&db.writer)
            .await
            .unwrap();
        db.close().await;
        let db = SqliteDb::open(&path, &files).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM things")
            .fetch_one(&db.reader)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
