//! Following one service's domain events into a reader's own state: the consumer side of
//! `pronet.events.v1`, shared by every reader (the feed's index, the engagement service's
//! visibility cache). What the state is and how an event changes it stay with the reader,
//! behind [`EventApplier`]; this module only moves events.
//!
//! One [`EventFollower`] per source: when the state holds nothing of the source yet, it applies
//! the source's ExportState (its state as of a snapshot) and then streams the events after the
//! export's position; afterwards it resumes after the last sequence applied, reconnecting with
//! back-off. OUTBOX_PRUNED (the reader fell behind what the source keeps) resets the source's
//! state and rebuilds it from a new export. The follower reports through a watch channel
//! whether it has caught up with the head it saw on connecting.
//!
//! With NATS configured (production), the events come from the source's JetStream stream
//! instead, through a durable pull consumer started just before the export (or, after a broken
//! connection, a minute before the last event applied); what the state already holds is
//! skipped by sequence. The export itself is always the service's gRPC ExportState.
//!
//! [`crate::event_head`] asks a source for its committed head now, for readers that must not
//! answer from a state older than a request (read-after-write across services).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event_service_client::EventServiceClient;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::auth::ServiceAuth;
use crate::nats::{self, NatsConfig};
use crate::shutdown::Shutdown;
use crate::time::{from_timestamp, now_micros, to_timestamp};
use crate::upstream::{lazy_channel, CallLimits};

type Client = EventServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Event batches can be large (5,000 events).
const MAX_EVENT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Retry delays after a failed stream: the first, and the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How far before the export (or the last event applied) a JetStream consumer starts: covers
/// clock differences between NATS and this replica; the repeats are skipped by sequence.
const NATS_START_MARGIN: i64 = 60_000_000;
/// Most JetStream messages applied as one batch.
const NATS_BATCH: usize = 500;

/// A reader's state for one source, as the follower feeds it. Implementations lock their own
/// state; each call is one short critical section.
pub trait EventApplier: Send + Sync + 'static {
    /// Applies events of the source in order. Exported events (sequence 0) always apply;
    /// streamed ones at or below [`EventApplier::position`] are repeats and must be skipped,
    /// and each one applied moves the position to its sequence.
    fn apply(&self, events: &[pb::Event]);
    /// Forgets everything the source contributed (before a new export) and the position.
    fn reset(&self);
    /// The sequence of the source applied so far.
    fn position(&self) -> i64;
    /// Sets the position after applying an export taken at `position`: from here on the state
    /// is the source's as of that snapshot, and streaming resumes after it.
    fn set_position(&self, position: i64);
}

/// Where and how to follow one source.
#[derive(Clone)]
pub struct FollowerConfig {
    /// The source's name (`profile`, `post`, `engagement`): its JetStream stream and the logs.
    pub source: &'static str,
    /// The source's EventService (`host:port` or a full `http://` URI).
    pub addr: String,
    /// The service token the calls carry.
    pub auth: ServiceAuth,
    pub connect_timeout: Duration,
    /// The name this replica reads under (the source's outbox keeps each reader's position for
    /// pruning; JetStream durable consumers are named after it).
    pub consumer: String,
    /// Only the state of the last `export_window` is exported (ExportState `since`); `None`
    /// exports all of it.
    pub export_window: Option<Duration>,
    /// Read the events from NATS JetStream instead of the source's gRPC stream.
    pub nats: Option<NatsConfig>,
    /// The follower stops when it fires.
    pub shutdown: Shutdown,
    /// Set when the reader's state was restored from a copy saved at this time (microseconds):
    /// the follower streams after the applier's position instead of exporting first. If the
    /// source cannot continue from there (pruned, or a source whose history is shorter, or a
    /// gap in the JetStream stream), the state is reset and rebuilt from an export.
    pub restored_at: Option<i64>,
}

/// A running follower; dropping this does not stop it (it lives until the shutdown fires).
pub struct EventFollower {
    caught_up: watch::Receiver<bool>,
}

impl EventFollower {
    /// Starts following `config.source` into `applier`. Connects lazily, so the source need
    /// not be up yet. Must be called within a tokio runtime.
    pub fn start(config: FollowerConfig, applier: Arc<dyn EventApplier>) -> Result<Self, String> {
        // A stream's first response comes at once; only connecting is bounded here.
        let limits = CallLimits {
            connect_timeout: config.connect_timeout,
            request_timeout: Duration::from_secs(60),
        };
        let client =
            EventServiceClient::with_interceptor(lazy_channel(&config.addr, limits)?, config.auth)
                .max_decoding_message_size(MAX_EVENT_MESSAGE_BYTES);
        let (caught_up_tx, caught_up) = watch::channel(false);
        let acks = acknowledge_loop(
            config.source,
            client.clone(),
            applier.clone(),
            config.consumer.clone(),
        );
        let follower = SourceFollower {
            source: config.source,
            client,
            applier,
            caught_up: caught_up_tx,
            exported: config.restored_at.is_some(),
            export_window: config.export_window,
            consumer: config.consumer,
            nats: config.nats,
            resume_from: config
                .restored_at
                .map_or(0, |t| t.saturating_sub(NATS_START_MARGIN)),
        };
        let stop = config.shutdown;
        tokio::spawn(async move {
            tokio::select! {
                _ = follower.run() => {}
                _ = acks => {}
                _ = stop.wait() => {}
            }
        });
        Ok(Self { caught_up })
    }

    /// Turns true once the source has caught up with the head seen on connecting, false again
    /// while it is rebuilt from an export.
    pub fn caught_up(&self) -> watch::Receiver<bool> {
        self.caught_up.clone()
    }
}

/// How often a reader tells the source what it applied.
const ACKNOWLEDGE_EVERY: Duration = Duration::from_secs(10);

/// Tells the source, now and then, the position the reader has applied, so the outbox can be
/// pruned behind it. The reader keeps its state in memory only and rebuilds from an export
/// after a restart, so it never asks again for what it applied.
async fn acknowledge_loop(
    source: &'static str,
    mut client: Client,
    applier: Arc<dyn EventApplier>,
    consumer: String,
) {
    let mut acknowledged = 0;
    let mut every = tokio::time::interval(ACKNOWLEDGE_EVERY);
    loop {
        every.tick().await;
        let position = applier.position();
        if position <= acknowledged {
            continue;
        }
        let request = pb::AcknowledgeEventsRequest {
            consumer: consumer.clone(),
            position,
        };
        match client.acknowledge_events(request).await {
            Ok(_) => acknowledged = position,
            Err(status) => tracing::debug!(
                source,
                code = ?status.code(),
                message = status.message(),
                "could not acknowledge events"
            ),
        }
    }
}

/// Why following a source stopped.
enum Stop {
    /// The source pruned events the state still needs: rebuild it from an export.
    Pruned,
    Failed(Status),
}

impl From<Status> for Stop {
    fn from(s: Status) -> Self {
        if s.code() == Code::FailedPrecondition && s.message().contains("pruned") {
            Self::Pruned
        } else {
            Self::Failed(s)
        }
    }
}

struct SourceFollower {
    source: &'static str,
    client: Client,
    applier: Arc<dyn EventApplier>,
    caught_up: watch::Sender<bool>,
    /// Whether the state holds an export of the source (the stream resumes after it).
    exported: bool,
    export_window: Option<Duration>,
    consumer: String,
    nats: Option<NatsConfig>,
    /// With NATS: the publish time (microseconds) from which the stream must be read again.
    resume_from: i64,
}

impl SourceFollower {
    async fn run(mut self) {
        let mut delay = RETRY_FIRST;
        loop {
            match self.follow().await {
                Ok(()) => {
                    tracing::info!(source = self.source, "event stream ended; resuming");
                    delay = RETRY_FIRST;
                }
                Err(Stop::Pruned) => {
                    tracing::warn!(
                        source = self.source,
                        consumer = self.consumer,
                        "events the reader needs were pruned; rebuilding from an export"
                    );
                    self.applier.reset();
                    self.exported = false;
                    self.caught_up.send_replace(false);
                }
                Err(Stop::Failed(status)) => {
                    tracing::warn!(
                        source = self.source,
                        code = ?status.code(),
                        message = status.message(),
                        retry_in = ?delay,
                        "event stream failed"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Marks the source caught up once `reached` (once per export).
    fn check_caught_up(&self, reached: bool) {
        if !reached || *self.caught_up.borrow() {
            return;
        }
        self.caught_up.send_replace(true);
        tracing::info!(
            source = self.source,
            consumer = self.consumer,
            position = self.applier.position(),
            "events caught up"
        );
    }

    async fn follow(&mut self) -> Result<(), Stop> {
        if !self.exported {
            self.resume_from = now_micros() - NATS_START_MARGIN;
            self.export().await?;
            self.exported = true;
        }
        if let Some(config) = self.nats.clone() {
            return self.follow_nats(&config).await;
        }
        let mut stream = self
            .client
            .stream_events(pb::StreamEventsRequest {
                after_sequence: self.applier.position(),
                consumer: self.consumer.clone(),
                stop_at_head: false,
                max_batch: 0,
            })
            .await?
            .into_inner();
        let mut target: Option<i64> = None;
        while let Some(message) = stream.message().await? {
            if target.is_none() && message.head_sequence < self.applier.position() {
                // The state is ahead of the source: it came from another history (a saved
                // copy from before the source's data was replaced).
                tracing::warn!(
                    source = self.source,
                    head = message.head_sequence,
                    position = self.applier.position(),
                    "the state is ahead of the source's head"
                );
                return Err(Stop::Pruned);
            }
            if !message.events.is_empty() {
                self.applier.apply(&message.events);
            }
            let target = *target.get_or_insert(message.head_sequence);
            self.check_caught_up(self.applier.position() >= target);
        }
        Ok(())
    }

    /// Follows the source's JetStream stream until it breaks.
    async fn follow_nats(&mut self, config: &NatsConfig) -> Result<(), Stop> {
        let unavailable = |e: String| Stop::Failed(Status::unavailable(e));
        let js = nats::connect(&config.url).await.map_err(unavailable)?;
        let durable = format!(
            "{}-{}",
            self.consumer.replace(['/', '.', '*', '>'], "-"),
            self.source
        );
        let consumer = nats::consumer(&js, config, self.source, &durable, self.resume_from)
            .await
            .map_err(unavailable)?;
        // Nothing pending at creation: caught up already.
        self.check_caught_up(consumer.cached_info().num_pending == 0);
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable(format!("consuming {durable}: {e}")))?;
        let mut batch: Vec<pb::Event> = Vec::new();
        loop {
            // Apply what has arrived in one go, then wait for more.
            let Some(first) = messages.next().await else {
                return Ok(());
            };
            let mut pending = vec![first];
            while let Some(Some(more)) = messages.next().now_or_never() {
                pending.push(more);
                if pending.len() >= NATS_BATCH {
                    break;
                }
            }
            let mut last = None;
            let mut remaining = u64::MAX;
            for message in pending {
                let message =
                    message.map_err(|e| unavailable(format!("reading {durable}: {e}")))?;
                match nats::decode(&message.payload) {
                    Ok(event) => batch.push(event),
                    Err(e) => {
                        tracing::error!(source = self.source, error = %e, "skipping an event")
                    }
                }
                if let Ok(info) = message.info() {
                    remaining = info.pending;
                }
                last = Some(message);
            }
            // Sequences are dense, so an event past the next one means the stream lost some
            // (it was read from too late a time).
            let position = self.applier.position();
            let mut next = position + 1;
            for sequence in batch.iter().map(|e| e.sequence).filter(|s| *s > position) {
                if sequence > next {
                    tracing::warn!(
                        source = self.source,
                        expected = next,
                        sequence,
                        "a gap in the JetStream stream"
                    );
                    return Err(Stop::Pruned);
                }
                next = next.max(sequence + 1);
            }
            if !batch.is_empty() {
                self.applier.apply(&batch);
            }
            if let Some(t) = batch
                .last()
                .and_then(|e| e.occur_time.as_ref())
                .and_then(|t| from_timestamp(t).ok())
            {
                self.resume_from = t - NATS_START_MARGIN;
            }
            batch.clear();
            // Acknowledging the last acknowledges all before it (AckPolicy::All).
            if let Some(last) = last {
                if let Err(e) = last.ack().await {
                    tracing::warn!(source = self.source, error = %e, "could not acknowledge");
                }
            }
            self.check_caught_up(remaining == 0);
        }
    }

    /// Applies the source's state as of a snapshot and sets the position to the snapshot's.
    async fn export(&mut self) -> Result<(), Stop> {
        let started = std::time::Instant::now();
        let since = self
            .export_window
            .map(|w| to_timestamp(now_micros().saturating_sub(w.as_micros() as i64)));
        let mut stream = self
            .client
            .export_state(pb::ExportStateRequest { since })
            .await?
            .into_inner();
        let mut position = None;
        let mut events = 0usize;
        // Applied as it arrives: a failure midway leaves a partial source, so it is reset
        // before the next try.
        let applied = async {
            while let Some(message) = stream.message().await? {
                events += message.events.len();
                if !message.events.is_empty() {
                    self.applier.apply(&message.events);
                }
                position = Some(message.position);
            }
            Ok::<(), Status>(())
        }
        .await;
        if let Err(status) = applied {
            self.applier.reset();
            return Err(Stop::Failed(status));
        }
        let position = position.unwrap_or_default();
        self.applier.set_position(position);
        tracing::info!(
            source = self.source,
            consumer = self.consumer,
            position,
            events,
            ms = started.elapsed().as_millis() as u64,
            "state loaded from export"
        );
        Ok(())
    }
}
