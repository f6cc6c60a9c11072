//! `pronet.events.v1.EventService`: serves a service's outbox as a gRPC stream (the embedded
//! transport: no broker to run) and exports its current state for readers that start from
//! nothing. Every service with an outbox serves it the same way; only the export differs, behind
//! [`EventSource`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event_service_server::{EventService, EventServiceServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::outbox::{Outbox, Payload};
use crate::shutdown::Shutdown;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.events.v1.EventService";

/// Events per stream message unless the reader asks otherwise.
const DEFAULT_BATCH: usize = 500;
const MAX_BATCH: usize = 5000;
/// How often a tail without local commit notifications (PostgreSQL) looks for new events, and
/// how long a notified tail waits at most (a commit made by another process).
const POLL: Duration = Duration::from_millis(20);
/// An idle stream sends an empty message this often, so both ends notice a dead peer.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Events per export message.
pub const EXPORT_BATCH: usize = 1000;

/// Where an export sends its events: the export's position first, then batches.
pub struct ExportSink {
    source: &'static str,
    position: Option<i64>,
    batch: Vec<pb::Event>,
    tx: mpsc::Sender<Result<pb::ExportStateResponse, Status>>,
}

/// The reader went away: stop exporting.
#[derive(Debug, thiserror::Error)]
#[error("export reader gone")]
pub struct ExportClosed;

impl ExportSink {
    /// The outbox position of the snapshot being exported; set before the first event.
    pub fn set_position(&mut self, position: i64) {
        self.position = Some(position);
    }

    /// Adds one piece of state (occurring at `time`, microseconds).
    pub async fn push(&mut self, time: i64, payload: Payload) -> Result<(), ExportClosed> {
        self.batch.push(pb::Event {
            id: String::new(),
            sequence: 0,
            source: self.source.to_owned(),
            occur_time: Some(crate::time::to_timestamp(time)),
            payload: Some(payload),
        });
        if self.batch.len() >= EXPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ExportClosed> {
        let events = std::mem::take(&mut self.batch);
        self.tx
            .send(Ok(pb::ExportStateResponse {
                position: self.position.unwrap_or_default(),
                events,
            }))
            .await
            .map_err(|_| ExportClosed)
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Closed(#[from] ExportClosed),
    #[error("export store: {0}")]
    Store(String),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.to_string())
    }
}

/// What a service's store gives its readers: the outbox its writes append their events to (in
/// the transaction of their change), and its current state as events. Every store trait
/// extends it, so the event service takes the store itself.
#[tonic::async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// The outbox the store's writes append their events to.
    fn outbox(&self) -> Outbox;

    /// Pushes every piece of state a reader needs (for posts and engagement, those at or
    /// after `since`, microseconds) to `sink`, read in one consistent snapshot whose outbox
    /// position is given to the sink first.
    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError>;
}

/// The `pronet.events.v1.EventService` of one service.
pub struct EventServer {
    source: &'static str,
    outbox: Outbox,
    store: Arc<dyn EventSource>,
    /// Ends every open stream when the server drains: a stream never ends by itself, and a
    /// draining server waits for its calls to finish.
    shutdown: Shutdown,
}

impl EventServer {
    pub fn new(source: &'static str, store: Arc<dyn EventSource>, shutdown: Shutdown) -> Self {
        Self {
            source,
            outbox: store.outbox(),
            store,
            shutdown,
        }
    }

    /// The tonic service, ready to add to a server's routes.
    pub fn into_service(self) -> EventServiceServer<Self> {
        EventServiceServer::new(self)
    }
}

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn store_error(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "outbox read failed");
    Status::unavailable("event store unavailable")
}

#[tonic::async_trait]
impl EventService for EventServer {
    type StreamEventsStream = EventStream<pb::StreamEventsResponse>;
    type ExportStateStream = EventStream<pb::ExportStateResponse>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let req = request.into_inner();
        let mut v = crate::FieldViolations::new();
        if req.after_sequence < 0 {
            v.add("after_sequence", "must not be negative");
        }
        if req.max_batch < 0 || req.max_batch as usize > MAX_BATCH {
            v.add("max_batch", format!("must be in 0..={MAX_BATCH}"));
        }
        if req.consumer.len() > 128 {
            v.add("consumer", "must be at most 128 characters");
        }
        v.into_result()?;
        let batch = if req.max_batch == 0 {
            DEFAULT_BATCH
        } else {
            req.max_batch as usize
        };
        let status = self.outbox.status().await.map_err(store_error)?;
        if req.after_sequence < status.pruned_through {
            return Err(crate::error::failed_precondition(
                "OUTBOX_PRUNED",
                format!(
                    "events after {} were pruned (through {}): rebuild from ExportState",
                    req.after_sequence, status.pruned_through
                ),
            ));
        }
        // A reader resuming after a sequence has applied everything through it: that is the
        // position pruning may go up to (what was merely sent may not be applied yet).
        if !req.consumer.is_empty() {
            self.outbox
                .record_position(&req.consumer, req.after_sequence, crate::time::now_micros())
                .await
                .map_err(store_error)?;
        }
        let (tx, rx) = mpsc::channel(4);
        // The first message tells the reader the head it must reach to be caught up.
        let opening = pb::StreamEventsResponse {
            events: Vec::new(),
            head_sequence: status.head,
        };
        tx.send(Ok(opening))
            .await
            .map_err(|_| Status::cancelled("reader gone"))?;
        let tail = Tail {
            outbox: self.outbox.clone(),
            head: status.head,
            position: req.after_sequence,
            shutdown: self.shutdown.clone(),
            stop_at: req.stop_at_head.then_some(status.head),
            batch,
            tx,
        };
        tokio::spawn(tail.run());
        tracing::info!(
            source = self.source,
            after = req.after_sequence,
            head = status.head,
            "event stream opened"
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_event_head(
        &self,
        _request: Request<pb::GetEventHeadRequest>,
    ) -> Result<Response<pb::GetEventHeadResponse>, Status> {
        let head = self.outbox.status().await.map_err(store_error)?.head;
        Ok(Response::new(pb::GetEventHeadResponse {
            head_sequence: head,
        }))
    }

    async fn acknowledge_events(
        &self,
        request: Request<pb::AcknowledgeEventsRequest>,
    ) -> Result<Response<pb::AcknowledgeEventsResponse>, Status> {
        let req = request.into_inner();
        let mut v = crate::FieldViolations::new();
        if req.consumer.is_empty() || req.consumer.len() > 128 {
            v.add("consumer", "must be 1-128 characters");
        }
        if req.position < 0 {
            v.add("position", "must not be negative");
        }
        v.into_result()?;
        let head = self.outbox.status().await.map_err(store_error)?.head;
        if req.position > head {
            return Err(crate::error::invalid_field(
                "position",
                format!("is past the newest event ({head})"),
            ));
        }
        self.outbox
            .record_position(&req.consumer, req.position, crate::time::now_micros())
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::AcknowledgeEventsResponse {}))
    }

    async fn export_state(
        &self,
        request: Request<pb::ExportStateRequest>,
    ) -> Result<Response<Self::ExportStateStream>, Status> {
        let req = request.into_inner();
        let since = match req.since.as_ref().map(crate::time::from_timestamp) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(why)) => return Err(crate::error::invalid_field("since", &why)),
        };
        let (tx, rx) = mpsc::channel(4);
        let mut sink = ExportSink {
            source: self.source,
            position: None,
            batch: Vec::with_capacity(EXPORT_BATCH),
            tx: tx.clone(),
        };
        let store = self.store.clone();
        let source = self.source;
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = store.export_state(since, &mut sink).await;
            let result = match result {
                Ok(()) => sink.flush().await.map_err(ExportError::from),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => tracing::info!(
                    source,
                    position = sink.position.unwrap_or_default(),
                    ms = started.elapsed().as_millis() as u64,
                    "state exported"
                ),
                Err(ExportError::Closed(_)) => {}
                Err(ExportError::Store(e)) => {
                    let _ = tx.send(Err(store_error(e))).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One reader's stream: catch up, then follow commits.
struct Tail {
    outbox: Outbox,
    /// The newest sequence known to be committed.
    head: i64,
    position: i64,
    shutdown: Shutdown,
    stop_at: Option<i64>,
    batch: usize,
    tx: mpsc::Sender<Result<pb::StreamEventsResponse, Status>>,
}

impl Tail {
    async fn run(mut self) {
        let mut commits = self.outbox.commit_watch();
        let mut last_sent = tokio::time::Instant::now();
        loop {
            if self.stop_at.is_some_and(|stop| self.position >= stop) {
                break;
            }
            // Mark the commits so far as seen before reading, so a commit after the read
            // wakes the wait below.
            if let Some(rx) = commits.as_mut() {
                rx.borrow_and_update();
            }
            let events = match self.outbox.read_after(self.position, self.batch).await {
                Ok(events) => events,
                Err(e) => {
                    let _ = self.tx.send(Err(store_error(e))).await;
                    return;
                }
            };
            let full = events.len() >= self.batch;
            if let Some(last) = events.last() {
                self.position = last.sequence;
                self.head = self.head.max(self.position);
                let message = pb::StreamEventsResponse {
                    events,
                    head_sequence: self.head,
                };
                if self.tx.send(Ok(message)).await.is_err() {
                    break;
                }
                last_sent = tokio::time::Instant::now();
                if full {
                    // More may be waiting: read on without waiting.
                    continue;
                }
            } else if self.stop_at.is_some() {
                // Nothing more stored: the head was reached.
                break;
            }
            if last_sent.elapsed() >= HEARTBEAT {
                self.head = match self.outbox.status().await {
                    Ok(s) => s.head,
                    Err(e) => {
                        let _ = self.tx.send(Err(store_error(e))).await;
                        return;
                    }
                };
                let beat = pb::StreamEventsResponse {
                    events: Vec::new(),
                    head_sequence: self.head,
                };
                if self.tx.send(Ok(beat)).await.is_err() {
                    break;
                }
                last_sent = tokio::time::Instant::now();
            }
            let wait = async {
                match commits.as_mut() {
                    // Commits of this process wake the tail at once; the timeout bounds the
                    // wait for one made elsewhere.
                    Some(rx) => {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(250), rx.changed()).await;
                    }
                    None => tokio::time::sleep(POLL).await,
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = self.tx.closed() => break,
                // The reader resumes elsewhere (another replica, or this one restarted).
                _ = self.shutdown.wait() => break,
            }
        }
    }
}

/// How long events are kept when a reader it is waiting for stays away.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often the outbox is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How often a server checks that its store answers.
const STORE_PROBE_EVERY: Duration = Duration::from_secs(2);
/// Longest the store may take to answer the probe.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the service's store answers, checked every 2 s by reading the outbox's head (one
/// small read on either backend): false while it fails or takes more than 1 s, so the server's
/// health says NOT_SERVING and load balancers send the calls elsewhere.
pub fn watch_store(
    source: &'static str,
    outbox: Outbox,
    shutdown: Shutdown,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STORE_PROBE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.wait() => return,
            }
            let ok = matches!(
                tokio::time::timeout(STORE_PROBE_TIMEOUT, outbox.status()).await,
                Ok(Ok(_))
            );
            if ok != *tx.borrow() {
                if ok {
                    tracing::info!(source, "store answers again");
                } else {
                    tracing::error!(source, "store does not answer: not serving");
                }
                tx.send_replace(ok);
            }
        }
    });
    rx
}

/// The service's events server for `store` (its outbox, and its state for ExportState); starts pruning
/// the outbox in the background (what every reader is past, and what is older than
/// [`RETENTION`]).
pub fn event_service(
    source: &'static str,
    store: Arc<dyn EventSource>,
    shutdown: Shutdown,
) -> EventServiceServer<EventServer> {
    let pruned = store.outbox();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRUNE_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait() => return,
            }
            match pruned.prune(RETENTION, crate::time::now_micros()).await {
                Ok(through) => tracing::debug!(source, through, "outbox pruned"),
                Err(e) => tracing::warn!(source, error = %e, "outbox prune failed"),
            }
        }
    });
    EventServer::new(source, store, shutdown).into_service()
}

#[cfg(test)]
mod store_health_tests {
    use super::*;

    #[tokio::test]
    async fn a_store_that_stops_answering_turns_readiness_off() {
        let dir = tempfile::tempdir().unwrap();
        let migration = [crate::db::MigrationFile {
            version: 1,
            description: "outbox",
            sql: crate::outbox::SQLITE_MIGRATION,
        }];
        let db = crate::db::SqliteDb::open(&dir.path().join("o.db"), &migration)
            .await
            .unwrap();
        let shutdown = Shutdown::new();
        let mut ready = watch_store("test", Outbox::sqlite(db.clone()), shutdown.clone());
        assert!(*ready.borrow());
        // Its connections closed: every read fails, as when the database is gone.
        db.close().await;
        let changed = tokio::time::timeout(Duration::from_secs(10), ready.wait_for(|r| !*r)).await;
        assert!(matches!(changed, Ok(Ok(_))), "readiness stayed on");
        shutdown.trigger();
    }
}
