//! The transactional outbox: every service appends its domain events (`pronet.events.v1`) to
//! an `outbox` table in the same transaction as the change they describe, so an event exists
//! if and only if its change committed.
//!
//! - Sequences come from the one-row `outbox_head` table, bumped by the appending transaction.
//!   On PostgreSQL the bump takes the row's lock until commit, so transactions that append
//!   commit in sequence order and a reader never sees sequence n+1 before n (a plain
//!   `BIGSERIAL` would let a later sequence commit first and a tailing reader skip the
//!   earlier one for good). Stores append last in their transactions to hold the lock briefly.
//!   On SQLite the single writer gives the same order.
//! - [`Outbox`] reads the table for the event stream ([`crate::events`]), keeps each named
//!   reader's position and prunes what every reader is past (or what is older than the
//!   retention window).
//!
//! The SQL is the same for every service: [`SQLITE_MIGRATION`] and [`POSTGRES_MIGRATION`] are
//! added to each service's migrations under its own version number.

use std::time::Duration;

use pronet_proto::events::v1 as pb;
use prost::Message;
use sqlx::{PgConnection, Row, SqliteConnection};
use tokio::sync::watch;

use crate::db::{PgDb, SqliteDb};

pub use pb::event::Payload;

/// The outbox tables on SQLite.
pub const SQLITE_MIGRATION: &str = "\
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    create_time INTEGER NOT NULL
);
CREATE TABLE outbox_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL
);
INSERT INTO outbox_head (id, seq, pruned_through) VALUES (1, 0, 0);
CREATE TABLE outbox_consumers (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
";

/// The outbox tables on PostgreSQL.
pub const POSTGRES_MIGRATION: &str = "\
CREATE TABLE outbox (
    seq BIGINT PRIMARY KEY,
    payload BYTEA NOT NULL,
    create_time BIGINT NOT NULL
);
CREATE TABLE outbox_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO outbox_head (id, seq, pruned_through) VALUES (1, 0, 0);
CREATE TABLE outbox_consumers (
    consumer TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
";

/// An event ready to append: encoded, with its id and time, sequence still to be assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: String,
    pub occur_time: i64,
    encoded: Vec<u8>,
}

impl NewEvent {
    /// An event of `source` (`profile`, `post`, `engagement`) that happened at `now`
    /// (microseconds since the epoch).
    pub fn new(source: &str, now: i64, payload: Payload) -> Self {
        let id = crate::ids::new_id();
        let event = pb::Event {
            id: id.clone(),
            sequence: 0,
            source: source.to_owned(),
            occur_time: Some(crate::time::to_timestamp(now)),
            payload: Some(payload),
        };
        Self {
            id,
            occur_time: now,
            encoded: event.encode_to_vec(),
        }
    }
}

/// Appends `events` (in order) inside the caller's SQLite write ([`SqliteDb::write`]). Call it
/// last in the write, after the change it describes.
pub fn append_sqlite(conn: &rusqlite::Connection, events: &[NewEvent]) -> rusqlite::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let head: i64 = conn
        .prepare_cached("UPDATE outbox_head SET seq = seq + ? RETURNING seq")?
        .query_row([n], |row| row.get(0))?;
    let mut insert =
        conn.prepare_cached("INSERT INTO outbox (seq, payload, create_time) VALUES (?, ?, ?)")?;
    for (seq, event) in (head - n + 1..).zip(events) {
        insert.execute((seq, event.encoded.as_slice(), event.occur_time))?;
    }
    Ok(())
}

/// Appends `events` (in order) inside the caller's PostgreSQL transaction. Call it last in the
/// transaction: from here to the commit, other appending transactions wait for this one.
pub async fn append_postgres(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let head: i64 = sqlx::query_scalar("UPDATE outbox_head SET seq = seq + $1 RETURNING seq")
        .bind(events.len() as i64)
        .fetch_one(&mut *conn)
        .await?;
    let first = head - events.len() as i64 + 1;
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.encoded.as_slice()).collect();
    let times: Vec<i64> = events.iter().map(|e| e.occur_time).collect();
    sqlx::query(
        "INSERT INTO outbox (seq, payload, create_time) \
         SELECT $1 + ord - 1, payload, create_time \
         FROM UNNEST($2::bytea[], $3::bigint[]) WITH ORDINALITY AS e(payload, create_time, ord)",
    )
    .bind(first)
    .bind(payloads)
    .bind(times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest sequence committed, read inside the caller's SQLite (read) transaction: the
/// position of the snapshot it reads (for an export).
pub async fn head_sqlite(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM outbox_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
}

/// The newest sequence committed, read inside the caller's PostgreSQL transaction.
pub async fn head_postgres(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM outbox_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
}

/// A read-only transaction on one snapshot of a SQLite store and the outbox position of that
/// snapshot, for an export: its first read (the head) fixes the WAL snapshot every later query
/// of the transaction reads, so the state read is exactly what the position says committed.
pub async fn snapshot_sqlite(
    db: &SqliteDb,
) -> Result<(sqlx::Transaction<'static, sqlx::Sqlite>, i64), sqlx::Error> {
    let mut tx = db.reader.begin().await?;
    let head = head_sqlite(&mut tx).await?;
    Ok((tx, head))
}

/// The same on PostgreSQL: a REPEATABLE READ, READ ONLY transaction, whose snapshot is taken
/// by its first read (the head).
pub async fn snapshot_postgres(
    db: &PgDb,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, i64), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let head = head_postgres(&mut tx).await?;
    Ok((tx, head))
}

/// Decodes a stored event and sets its sequence.
pub fn decode(seq: i64, payload: &[u8]) -> Result<pb::Event, OutboxError> {
    let mut event = pb::Event::decode(payload)
        .map_err(|e| OutboxError::Corrupt(format!("event {seq}: {e}")))?;
    event.sequence = seq;
    Ok(event)
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("outbox store: {0}")]
    Write(#[from] rusqlite::Error),
    #[error("outbox corrupt: {0}")]
    Corrupt(String),
}

/// A service's outbox, for reading: the events, the head, readers' positions and pruning.
#[derive(Debug, Clone)]
pub struct Outbox {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

/// What [`Outbox::status`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStatus {
    /// The newest sequence committed.
    pub head: i64,
    /// Every sequence up to here was pruned.
    pub pruned_through: i64,
}

impl Outbox {
    pub fn sqlite(db: SqliteDb) -> Self {
        Self {
            backend: Backend::Sqlite(db),
        }
    }

    pub fn postgres(db: PgDb) -> Self {
        Self {
            backend: Backend::Postgres(db),
        }
    }

    /// Changes after each commit of this process's writer (SQLite); `None` where commits can
    /// come from other processes (PostgreSQL replicas) and readers poll instead.
    pub fn commit_watch(&self) -> Option<watch::Receiver<u64>> {
        match &self.backend {
            Backend::Sqlite(db) => Some(db.commit_watch()),
            Backend::Postgres(_) => None,
        }
    }

    pub async fn status(&self) -> Result<OutboxStatus, OutboxError> {
        let sql = "SELECT seq, pruned_through FROM outbox_head WHERE id = 1";
        let (head, pruned_through): (i64, i64) = match &self.backend {
            Backend::Sqlite(db) => sqlx::query_as(sql).fetch_one(&db.reader).await?,
            Backend::Postgres(db) => sqlx::query_as(sql).fetch_one(&db.pool).await?,
        };
        Ok(OutboxStatus {
            head,
            pruned_through,
        })
    }

    /// At most `limit` events after `after`, in sequence order.
    pub async fn read_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<pb::Event>, OutboxError> {
        let limit = limit as i64;
        let rows = match &self.backend {
            Backend::Sqlite(db) => {
                sqlx::query("SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&db.reader)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            Backend::Postgres(db) => {
                sqlx::query("SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&db.pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        };
        rows.iter()
            .map(|(seq, payload)| decode(*seq, payload))
            .collect()
    }

    /// Where `consumer` last said it stood.
    pub async fn reader_position(&self, consumer: &str) -> Result<Option<i64>, OutboxError> {
        let position = match &self.backend {
            Backend::Sqlite(db) => {
                sqlx::query_scalar("SELECT position FROM outbox_consumers WHERE consumer = ?")
                    .bind(consumer)
                    .fetch_optional(&db.reader)
                    .await?
            }
            Backend::Postgres(db) => {
                sqlx::query_scalar("SELECT position FROM outbox_consumers WHERE consumer = $1")
                    .bind(consumer)
                    .fetch_optional(&db.pool)
                    .await?
            }
        };
        Ok(position)
    }

    /// Records that `consumer` has applied everything through `position`.
    pub async fn record_position(
        &self,
        consumer: &str,
        position: i64,
        now: i64,
    ) -> Result<(), OutboxError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let consumer = consumer.to_owned();
                db.write(move |conn| {
                    conn.prepare_cached(
                        "INSERT INTO outbox_consumers (consumer, position, update_time) \
                         VALUES (?, ?, ?) ON CONFLICT (consumer) DO UPDATE SET \
                         position = MAX(position, excluded.position), \
                         update_time = excluded.update_time",
                    )?
                    .execute((consumer, position, now))
                    .map(|_| ())
                })
                .await?
            }
            Backend::Postgres(db) => {
                sqlx::query(
                    "INSERT INTO outbox_consumers (consumer, position, update_time) \
                     VALUES ($1, $2, $3) ON CONFLICT (consumer) DO UPDATE SET \
                     position = GREATEST(outbox_consumers.position, excluded.position), \
                     update_time = excluded.update_time",
                )
                .bind(consumer)
                .bind(position)
                .bind(now)
                .execute(&db.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes the events every reader heard from within `retention` is past, and every event
    /// older than `retention` whoever still needs it (a reader that far behind rebuilds from an
    /// export). Returns the new `pruned_through`.
    pub async fn prune(&self, retention: Duration, now: i64) -> Result<i64, OutboxError> {
        let horizon = now - retention.as_micros() as i64;
        match &self.backend {
            Backend::Sqlite(db) => Ok(db.write(move |conn| prune_sqlite(conn, horizon)).await?),
            Backend::Postgres(db) => {
                let mut tx = db.pool.begin().await?;
                // The head row's lock orders this against appends.
                let (head, pruned): (i64, i64) = sqlx::query_as(
                    "SELECT seq, pruned_through FROM outbox_head WHERE id = 1 FOR UPDATE",
                )
                .fetch_one(&mut *tx)
                .await?;
                let min_reader: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(position) FROM outbox_consumers WHERE update_time >= $1",
                )
                .bind(horizon)
                .fetch_one(&mut *tx)
                .await?;
                // The first event still young, walking from the oldest: events are appended in
                // time order, so this reads only what is about to be pruned (an aggregate over
                // the time column would read the whole table every minute).
                let young: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM outbox WHERE create_time >= $1 ORDER BY seq LIMIT 1",
                )
                .bind(horizon)
                .fetch_optional(&mut *tx)
                .await?;
                let expired = Some(young.map_or(head, |s| s - 1));
                let through = prune_point(head, pruned, min_reader, expired);
                if through > pruned {
                    sqlx::query("DELETE FROM outbox WHERE seq <= $1")
                        .bind(through)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE outbox_head SET pruned_through = $1 WHERE id = 1")
                        .bind(through)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM outbox_consumers WHERE update_time < $1")
                        .bind(horizon)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(through)
            }
        }
    }
}

fn prune_sqlite(conn: &rusqlite::Connection, horizon: i64) -> rusqlite::Result<i64> {
    use rusqlite::OptionalExtension;
    let (head, pruned): (i64, i64) = conn
        .prepare_cached("SELECT seq, pruned_through FROM outbox_head WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let min_reader: Option<i64> = conn
        .prepare_cached("SELECT MIN(position) FROM outbox_consumers WHERE update_time >= ?")?
        .query_row([horizon], |row| row.get(0))?;
    // See the PostgreSQL version: walk from the oldest to the first young event.
    let young: Option<i64> = conn
        .prepare_cached("SELECT seq FROM outbox WHERE create_time >= ? ORDER BY seq LIMIT 1")?
        .query_row([horizon], |row| row.get(0))
        .optional()?;
    let expired = Some(young.map_or(head, |s| s - 1));
    let through = prune_point(head, pruned, min_reader, expired);
    if through > pruned {
        conn.prepare_cached("DELETE FROM outbox WHERE seq <= ?")?
            .execute([through])?;
        conn.prepare_cached("UPDATE outbox_head SET pruned_through = ? WHERE id = 1")?
            .execute([through])?;
        conn.prepare_cached("DELETE FROM outbox_consumers WHERE update_time < ?")?
            .execute([horizon])?;
    }
    Ok(through)
}

/// How far the outbox may be pruned: what every live reader is past (nothing while no reader
/// has been heard from, so a reader that starts later still finds the events), and anything
/// older than the retention window regardless.
fn prune_point(head: i64, pruned: i64, min_reader: Option<i64>, expired: Option<i64>) -> i64 {
    let by_readers = min_reader.unwrap_or(0).min(head);
    let by_age = expired.unwrap_or(0).min(head);
    by_readers.max(by_age).max(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_point_keeps_what_a_live_reader_needs() {
        // No reader yet, nothing expired: keep everything.
        assert_eq!(prune_point(10, 0, None, None), 0);
        // Readers at 4 and 7 (min 4): through 4.
        assert_eq!(prune_point(10, 0, Some(4), None), 4);
        // Old events go whoever still needs them.
        assert_eq!(prune_point(10, 0, Some(4), Some(6)), 6);
        // Never backwards, never past the head.
        assert_eq!(prune_point(10, 8, Some(4), None), 8);
        assert_eq!(prune_point(10, 0, Some(40), None), 10);
    }

    fn event(time: i64) -> NewEvent {
        NewEvent::new(
            "post",
            time,
            Payload::PostDeleted(pb::PostDeleted {
                post_id: format!("p{time}"),
                author_id: "a".into(),
            }),
        )
    }

    #[tokio::test]
    async fn prunes_what_readers_are_past_and_what_is_too_old_and_refuses_to_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let migration = [crate::db::MigrationFile {
            version: 1,
            description: "outbox",
            sql: SQLITE_MIGRATION,
        }];
        let db = SqliteDb::open(&dir.path().join("o.db"), &migration)
            .await
            .unwrap();
        let hour = 3_600_000_000;
        let now = 100 * hour;
        let events: Vec<NewEvent> = (1..=10).map(|i| event(now - (11 - i) * hour)).collect();
        db.write(move |conn| append_sqlite(conn, &events))
            .await
            .unwrap();
        let outbox = Outbox::sqlite(db);
        let read = outbox.read_after(0, 100).await.unwrap();
        assert_eq!(
            read.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        // No reader yet, a retention longer than any event's age: nothing goes.
        let day = Duration::from_secs(86_400);
        assert_eq!(outbox.prune(day, now).await.unwrap(), 0);
        // A reader past 4: through 4.
        outbox.record_position("feed/a", 4, now).await.unwrap();
        assert_eq!(outbox.prune(day, now).await.unwrap(), 4);
        assert_eq!(outbox.read_after(0, 100).await.unwrap()[0].sequence, 5);
        // Events older than 5 h 30 min (the first 5 are 10..6 hours old) go whoever needs them.
        let retention = Duration::from_secs(5 * 3600 + 1800);
        assert_eq!(outbox.prune(retention, now).await.unwrap(), 5);
        assert_eq!(
            outbox.status().await.unwrap(),
            OutboxStatus {
                head: 10,
                pruned_through: 5
            }
        );
        // A position behind what is kept changes nothing.
        outbox.record_position("feed/a", 2, now).await.unwrap();
        assert_eq!(outbox.reader_position("feed/a").await.unwrap(), Some(4));
    }
}
