//! What the embedded store's driver costs a write: the same React-shaped write (read the
//! member's reaction, insert it, bump the post's counts, append an event to the outbox and move
//! its head) through sqlx's async SQLite driver with a group commit as the stores ran it until
//! December 2026, and through [`SqliteDb::write`] as they run it now (rusqlite on a dedicated
//! thread, cached statements); same pragmas (WAL, `synchronous=FULL`), same batching (one
//! transaction per batch of up to 256, a savepoint per write).
//! A measurement, not a check: run it in release with
//! `cargo test --release -p pronet-common driver_cost -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::oneshot;

use super::{MigrationFile, SqliteDb};

const SCHEMA: &str = "
CREATE TABLE reactions (post_id TEXT NOT NULL, member_id TEXT NOT NULL,
    reaction_type INTEGER NOT NULL, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL,
    PRIMARY KEY (post_id, member_id)) WITHOUT ROWID;
CREATE TABLE post_counts (post_id TEXT PRIMARY KEY, likes INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE outbox (sequence INTEGER PRIMARY KEY, id TEXT NOT NULL, payload BLOB NOT NULL,
    create_time INTEGER NOT NULL);
CREATE TABLE outbox_head (id INTEGER PRIMARY KEY CHECK (id = 1), sequence INTEGER NOT NULL);
INSERT INTO outbox_head (id, sequence) VALUES (1, 0);
";

const WRITES: usize = 40_000;
const CONCURRENCY: usize = 256;
const BATCH: usize = 256;

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn ids(i: usize) -> (String, String) {
    (format!("{:032x}", i % 5_000), format!("{:032x}", i * 7 + 1))
}

fn report(name: &str, started: Instant, cpu: f64) {
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    eprintln!(
        "{name}: {WRITES} writes in {wall:.2} s = {:.0}/s; {:.1} µs of CPU a write ({:.2} cores)",
        WRITES as f64 / wall,
        cpu * 1e6 / WRITES as f64,
        cpu / wall
    );
}

async fn sqlx_react(
    tx: &mut sqlx::SqliteConnection,
    post: &str,
    member: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let existing =
        sqlx::query("SELECT reaction_type FROM reactions WHERE post_id = ? AND member_id = ?")
            .bind(post)
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?;
    if existing.is_some() {
        return Ok(());
    }
    sqlx::query("INSERT INTO reactions (post_id, member_id, reaction_type, create_time, update_time) VALUES (?, ?, 1, ?, ?)")
        .bind(post)
        .bind(member)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO post_counts (post_id, likes) VALUES (?, 1) ON CONFLICT (post_id) DO UPDATE SET likes = likes + 1")
        .bind(post)
        .execute(&mut *tx)
        .await?;
    let head: i64 = sqlx::query(
        "UPDATE outbox_head SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    sqlx::query("INSERT INTO outbox (sequence, id, payload, create_time) VALUES (?, ?, ?, ?)")
        .bind(head)
        .bind(member)
        .bind(&[7u8; 120][..])
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn rusqlite_react(
    tx: &rusqlite::Connection,
    post: &str,
    member: &str,
    now: i64,
) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    let existing: Option<i64> = tx
        .prepare_cached("SELECT reaction_type FROM reactions WHERE post_id = ? AND member_id = ?")?
        .query_row((post, member), |r| r.get(0))
        .optional()?;
    if existing.is_some() {
        return Ok(());
    }
    tx.prepare_cached("INSERT INTO reactions (post_id, member_id, reaction_type, create_time, update_time) VALUES (?, ?, 1, ?, ?)")?
        .execute((post, member, now, now))?;
    tx.prepare_cached("INSERT INTO post_counts (post_id, likes) VALUES (?, 1) ON CONFLICT (post_id) DO UPDATE SET likes = likes + 1")?
        .execute([post])?;
    let head: i64 = tx
        .prepare_cached(
            "UPDATE outbox_head SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence",
        )?
        .query_row([], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO outbox (sequence, id, payload, create_time) VALUES (?, ?, ?, ?)",
    )?
    .execute((head, member, &[7u8; 120][..], now))?;
    Ok(())
}

type Reply = oneshot::Sender<Result<(), sqlx::Error>>;

/// The sqlx writer as the stores ran it: one connection, group commits of up to [`BATCH`]
/// queued writes, each in a savepoint.
async fn sqlx_writer(
    mut conn: sqlx::SqliteConnection,
    mut jobs: tokio::sync::mpsc::Receiver<(usize, Reply)>,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let mut tx = conn.begin().await?;
        let mut replies = Vec::with_capacity(batch.len());
        for (i, reply) in batch.drain(..) {
            let (post, member) = ids(i);
            let mut savepoint = Connection::begin(&mut *tx).await?;
            let result = sqlx_react(&mut savepoint, &post, &member, i as i64).await;
            if result.is_ok() {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
            replies.push((reply, result));
        }
        tx.commit().await?;
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in release"]
async fn driver_cost() {
    let dir = tempfile::tempdir().expect("temp dir");

    static MIGRATIONS: &[MigrationFile] = &[MigrationFile {
        version: 1,
        description: "bench",
        sql: SCHEMA,
    }];

    // sqlx: its own group commit on one writer connection of a migrated store.
    let path = dir.path().join("sqlx.db");
    SqliteDb::open(&path, MIGRATIONS)
        .await
        .expect("migrate")
        .close()
        .await;
    let conn = {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .pragma("cache_size", "-32000")
            .connect()
            .await
            .expect("connect")
    };
    let (send, jobs) = tokio::sync::mpsc::channel::<(usize, Reply)>(4096);
    let writer = tokio::spawn(sqlx_writer(conn, jobs));
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..CONCURRENCY {
        let send = send.clone();
        tasks.spawn(async move {
            for i in (t..WRITES).step_by(CONCURRENCY) {
                let (reply, answer) = oneshot::channel();
                send.send((i, reply)).await.expect("send");
                answer.await.expect("reply").expect("write");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    report("sqlx + group commit", started, cpu);
    drop(send);
    writer.await.expect("join").expect("sqlx writer");

    // The stores' writer: rusqlite on its thread.
    let db = Arc::new(
        SqliteDb::open(&dir.path().join("rusqlite.db"), MIGRATIONS)
            .await
            .expect("open"),
    );
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..CONCURRENCY {
        let db = db.clone();
        tasks.spawn(async move {
            for i in (t..WRITES).step_by(CONCURRENCY) {
                db.write(move |conn| {
                    let (post, member) = ids(i);
                    rusqlite_react(conn, &post, &member, i as i64)
                })
                .await
                .expect("write");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    report(
        "SqliteDb::write (rusqlite thread + group commit)",
        started,
        cpu,
    );
    db.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
