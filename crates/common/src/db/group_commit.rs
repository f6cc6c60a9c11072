//! Group commit for the embedded store.
//!
//! With `synchronous=FULL` every SQLite commit waits for an fsync, so one writer committing
//! each write on its own tops out near the disk's fsync rate (~1-4k/s here). The committer
//! below runs every queued write in one transaction, each inside its own savepoint, and commits
//! once: a write that fails rolls back only its savepoint, and no caller hears "ok" before the
//! commit holding its write is on disk. Batches form by themselves: while one commit waits for
//! the disk, the next writes queue up. Durability is unchanged; only the fsyncs are shared.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::FutureExt;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};

/// What a write returns: a future borrowing the writer connection.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Most writes in one transaction: bounds the work lost to a failed commit and the latency the
/// first writer of a batch waits for the last.
const MAX_BATCH: usize = 256;

/// Writes waiting for the committer before callers wait to queue (back-pressure).
const QUEUE: usize = 4096;

/// A queued write, type-erased.
trait Job: Send {
    /// Runs the write on the connection (inside its savepoint).
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> WriteFuture<'c, Box<dyn Ran>>;
    /// Answers the caller without running: the batch could not start.
    fn fail(self: Box<Self>, why: &str);
}

/// A write that ran, waiting for its batch's commit.
trait Ran: Send {
    fn ok(&self) -> bool;
    /// Answers the caller: its own result if the batch committed, else the batch's failure.
    fn deliver(self: Box<Self>, batch_failure: Option<&str>);
}

struct Pending<F, T, E> {
    write: F,
    reply: oneshot::Sender<Result<T, E>>,
}

struct Done<T, E> {
    result: Result<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
}

fn failure<E: From<sqlx::Error>>(why: &str) -> E {
    E::from(sqlx::Error::Io(std::io::Error::other(format!(
        "write not committed: {why}"
    ))))
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> WriteFuture<'c, Box<dyn Ran>> {
        let Pending { write, reply } = *self;
        Box::pin(async move {
            let result = write(conn).await;
            Box::new(Done { result, reply }) as Box<dyn Ran>
        })
    }

    fn fail(self: Box<Self>, why: &str) {
        let _ = self.reply.send(Err(failure(why)));
    }
}

impl<T: Send, E: From<sqlx::Error> + Send> Ran for Done<T, E> {
    fn ok(&self) -> bool {
        self.result.is_ok()
    }

    fn deliver(self: Box<Self>, batch_failure: Option<&str>) {
        let result = match batch_failure {
            None => self.result,
            Some(why) => Err(failure(why)),
        };
        // The caller may have gone (cancelled request): its write stands all the same.
        let _ = self.reply.send(result);
    }
}

/// The handle writes are queued through; cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
    /// Bumped after every durable commit: readers tailing a table (the outbox) wake on it.
    committed: watch::Sender<u64>,
}

impl GroupCommitter {
    /// Starts the committer on `writer` (a pool of one connection, shared with anything else
    /// that writes directly, such as migrations).
    pub fn start(writer: SqlitePool) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        let committed = watch::Sender::new(0);
        tokio::spawn(commit_loop(
            writer,
            jobs,
            commits.clone(),
            committed.clone(),
        ));
        Self {
            queue,
            commits,
            committed,
        }
    }

    /// Changes after every durable commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Transactions committed so far (each holding one or more writes).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Runs `write` in the next group commit and returns its result once that commit is
    /// durable. The write sees the connection inside a transaction; its error rolls back its
    /// own changes only.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c, Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Box::new(Pending { write, reply }))
            .await
            .map_err(|_| failure::<E>("the writer has stopped"))?;
        answer
            .await
            .map_err(|_| failure::<E>("the writer dropped the write"))?
    }
}

async fn commit_loop(
    writer: SqlitePool,
    mut jobs: mpsc::Receiver<Box<dyn Job>>,
    commits: Arc<AtomicU64>,
    committed: watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if commit_batch(&writer, &mut batch).await {
            let n = commits.fetch_add(1, Ordering::Relaxed) + 1;
            committed.send_replace(n);
        }
        batch.clear();
    }
}

/// Runs and commits one batch; true when it committed.
async fn commit_batch(writer: &SqlitePool, batch: &mut Vec<Box<dyn Job>>) -> bool {
    let mut conn = match writer.acquire().await {
        Ok(conn) => conn,
        Err(e) => return fail_all(batch, &e.to_string()),
    };
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, &e.to_string()),
    };
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    for job in batch.drain(..) {
        if let Some(why) = &broken {
            job.fail(why);
            continue;
        }
        let mut savepoint = match Connection::begin(&mut *tx).await {
            Ok(sp) => sp,
            Err(e) => {
                job.fail(&e.to_string());
                broken = Some(e.to_string());
                continue;
            }
        };
        // A panicking write must not take the committer (and every later write) with it: its
        // caller sees its reply dropped and its savepoint is rolled back.
        let outcome = AssertUnwindSafe(job.run(&mut savepoint))
            .catch_unwind()
            .await;
        let (done, step) = match outcome {
            Ok(done) if done.ok() => {
                let step = savepoint.commit().await;
                (Some(done), step)
            }
            Ok(done) => (Some(done), savepoint.rollback().await),
            Err(_) => {
                tracing::error!("a write panicked; its changes are rolled back");
                (None, savepoint.rollback().await)
            }
        };
        if let Err(e) = step {
            broken = Some(e.to_string());
        }
        ran.extend(done);
    }
    let failure = match broken {
        Some(why) => {
            let _ = tx.rollback().await;
            Some(why)
        }
        None => tx.commit().await.err().map(|e| e.to_string()),
    };
    if let Some(why) = &failure {
        tracing::error!(error = %why, writes = ran.len(), "group commit failed");
    }
    for done in ran {
        done.deliver(failure.as_deref());
    }
    failure.is_none()
}

fn fail_all(batch: &mut Vec<Box<dyn Job>>, why: &str) -> bool {
    tracing::error!(error = %why, writes = batch.len(), "group commit could not start");
    for job in batch.drain(..) {
        job.fail(why);
    }
    false
}
