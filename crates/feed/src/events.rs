//! Feeding the index from the other services' events (the embedded transport: each service's
//! `pronet.events.v1.EventService` stream). One task per source: when the index holds nothing
//! of the source yet, it applies the source's ExportState (its state as of a snapshot) and then
//! streams the events after the export's position; afterwards it resumes after the last
//! sequence applied. The index is ready once every source has caught up with the head it saw on
//! connecting; until then the feed's health is NOT_SERVING.
//!
//! With NATS configured (production), the events come from each service's JetStream stream
//! instead, through a durable pull consumer started just before the export (or, after a
//! broken connection, a minute before the last event applied); what the index already holds is
//! skipped by sequence. The export itself is always the service's gRPC ExportState.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use pronet_common::auth::{ServiceAuth, ServiceCredentials};
use pronet_common::metrics::Metrics;
use pronet_common::nats::{self, NatsConfig};
use pronet_common::shutdown::Shutdown;
use pronet_common::time::{from_timestamp, now_micros, to_timestamp};
use pronet_common::upstream::{lazy_channel, CallLimits};
use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event_service_client::EventServiceClient;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::index::{FeedIndex, Source};
use crate::sources::Upstreams;

type Client = EventServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// Event batches can be large (5,000 events).
const MAX_EVENT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Retry delays after a failed stream: the first, and the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often posts that left the window are dropped and the index's size is reported.
const EVICT_EVERY: Duration = Duration::from_secs(30);

/// The shared index.
pub type SharedIndex = Arc<RwLock<FeedIndex>>;

/// Where each source stands.
#[derive(Debug, Default)]
struct Progress {
    exported: [AtomicBool; 3],
    caught_up: [AtomicBool; 3],
}

impl Progress {
    fn slot(source: Source) -> usize {
        source as usize
    }
}

/// The running feeders; dropping this does not stop them (they live with the runtime).
pub struct IndexFeeder {
    ready: watch::Receiver<bool>,
}

impl IndexFeeder {
    /// Starts one feeder per source, and the evictor.
    pub fn start(
        index: SharedIndex,
        up: &Upstreams,
        window: Duration,
        consumer: String,
        nats: Option<NatsConfig>,
        shutdown: Shutdown,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, String> {
        let (ready_tx, ready) = watch::channel(false);
        let ready_tx = Arc::new(ready_tx);
        let progress = Arc::new(Progress::default());
        // A stream's first response comes at once; only connecting is bounded here.
        let limits = CallLimits {
            connect_timeout: up.limits.connect_timeout,
            request_timeout: Duration::from_secs(60),
        };
        let auth = ServiceAuth(ServiceCredentials::new(up.auth.clone(), "feed"));
        for (source, addr) in [
            (Source::Profile, &up.profile_addr),
            (Source::Post, &up.post_addr),
            (Source::Engagement, &up.engagement_addr),
        ] {
            let client =
                EventServiceClient::with_interceptor(lazy_channel(addr, limits)?, auth.clone())
                    .max_decoding_message_size(MAX_EVENT_MESSAGE_BYTES);
            let feeder = SourceFeeder {
                source,
                client,
                index: index.clone(),
                progress: progress.clone(),
                ready: ready_tx.clone(),
                window,
                consumer: consumer.clone(),
                nats: nats.clone(),
                resume_from: 0,
                metrics: metrics.clone(),
            };
            let stop = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = feeder.run() => {}
                    _ = stop.wait() => {}
                }
            });
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = evict_loop(index, metrics) => {}
                _ = shutdown.wait() => {}
            }
        });
        Ok(Self { ready })
    }

    /// Turns true once every source has caught up (and false while one rebuilds).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }
}

async fn evict_loop(index: SharedIndex, metrics: Option<Arc<Metrics>>) {
    let mut every = tokio::time::interval(EVICT_EVERY);
    loop {
        every.tick().await;
        let (evicted, stats) = {
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            (index.evict(now_micros()), index.stats())
        };
        tracing::debug!(evicted, ?stats, "feed index");
        if let Some(m) = &metrics {
            for (part, value) in [
                ("members", stats.members),
                ("posts", stats.posts),
                ("stubs", stats.stubs),
                ("connection_edges", stats.connection_edges),
                ("follow_edges", stats.follow_edges),
                ("activities", stats.activities),
                ("approx_bytes", stats.approx_bytes),
            ] {
                m.feed_index_size(part, value as i64);
            }
        }
    }
}

/// Why following a source stopped.
enum Stop {
    /// The source pruned events the index still needs: rebuild the source from an export.
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

struct SourceFeeder {
    source: Source,
    client: Client,
    index: SharedIndex,
    progress: Arc<Progress>,
    ready: Arc<watch::Sender<bool>>,
    window: Duration,
    consumer: String,
    nats: Option<NatsConfig>,
    /// With NATS: the publish time (microseconds) from which the stream must be read again.
    resume_from: i64,
    metrics: Option<Arc<Metrics>>,
}

/// How far before the export (or the last event applied) a JetStream consumer starts: covers
/// clock differences between NATS and this replica; the repeats are skipped by sequence.
const NATS_START_MARGIN: i64 = 60_000_000;

impl SourceFeeder {
    async fn run(mut self) {
        let mut delay = RETRY_FIRST;
        loop {
            match self.follow().await {
                Ok(()) => {
                    tracing::info!(source = self.source.name(), "event stream ended; resuming");
                    delay = RETRY_FIRST;
                }
                Err(Stop::Pruned) => {
                    tracing::warn!(
                        source = self.source.name(),
                        "events the index needs were pruned; rebuilding from an export"
                    );
                    self.write().reset(self.source);
                    let slot = Progress::slot(self.source);
                    self.progress.exported[slot].store(false, Ordering::SeqCst);
                    self.progress.caught_up[slot].store(false, Ordering::SeqCst);
                    self.ready.send_replace(false);
                }
                Err(Stop::Failed(status)) => {
                    tracing::warn!(
                        source = self.source.name(),
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

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, FeedIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, events: &[pb::Event]) {
        if events.is_empty() {
            return;
        }
        {
            let mut index = self.write();
            for e in events {
                index.apply(self.source, e);
            }
        }
        // Every streamed event's lag (exported state has no meaningful age).
        if let Some(m) = &self.metrics {
            let now = now_micros();
            for e in events.iter().filter(|e| e.sequence > 0) {
                if let Some(t) = e.occur_time.as_ref().and_then(|t| from_timestamp(t).ok()) {
                    m.feed_index_lag(self.source.name(), (now - t).max(0) as f64 / 1e6);
                }
            }
        }
    }

    /// Marks the source caught up once `reached`; the index is ready when every source is.
    fn check_caught_up(&self, reached: bool) {
        let slot = Progress::slot(self.source);
        if !reached || self.progress.caught_up[slot].load(Ordering::SeqCst) {
            return;
        }
        self.progress.caught_up[slot].store(true, Ordering::SeqCst);
        let position = self
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .position(self.source);
        tracing::info!(
            source = self.source.name(),
            position,
            "feed index caught up"
        );
        if self
            .progress
            .caught_up
            .iter()
            .all(|c| c.load(Ordering::SeqCst))
        {
            self.ready.send_replace(true);
        }
    }

    async fn follow(&mut self) -> Result<(), Stop> {
        let slot = Progress::slot(self.source);
        if !self.progress.exported[slot].load(Ordering::SeqCst) {
            self.resume_from = now_micros() - NATS_START_MARGIN;
            self.export().await?;
            self.progress.exported[slot].store(true, Ordering::SeqCst);
        }
        if let Some(config) = self.nats.clone() {
            return self.follow_nats(&config).await;
        }
        let after = self
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .position(self.source);
        let mut stream = self
            .client
            .stream_events(pb::StreamEventsRequest {
                after_sequence: after,
                consumer: self.consumer.clone(),
                stop_at_head: false,
                max_batch: 0,
            })
            .await?
            .into_inner();
        let mut target: Option<i64> = None;
        while let Some(message) = stream.message().await? {
            self.apply(&message.events);
            let target = *target.get_or_insert(message.head_sequence);
            let position = self
                .index
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .position(self.source);
            self.check_caught_up(position >= target);
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
            self.source.name()
        );
        let consumer = nats::consumer(&js, config, self.source.name(), &durable, self.resume_from)
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
            let first = messages.next().await;
            let mut pending = Vec::new();
            let Some(first) = first else {
                return Ok(());
            };
            pending.push(first);
            while let Some(Some(more)) = messages.next().now_or_never() {
                pending.push(more);
                if pending.len() >= 500 {
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
                        tracing::error!(source = self.source.name(), error = %e, "skipping an event")
                    }
                }
                if let Ok(info) = message.info() {
                    remaining = info.pending;
                }
                last = Some(message);
            }
            self.apply(&batch);
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
                    tracing::warn!(source = self.source.name(), error = %e, "could not acknowledge");
                }
            }
            self.check_caught_up(remaining == 0);
        }
    }

    /// Applies the source's state as of a snapshot and sets the position to the snapshot's.
    async fn export(&mut self) -> Result<(), Stop> {
        let started = std::time::Instant::now();
        let since = now_micros() - self.window.as_micros() as i64;
        let mut stream = self
            .client
            .export_state(pb::ExportStateRequest {
                since: Some(to_timestamp(since)),
            })
            .await?
            .into_inner();
        let mut position = None;
        let mut events = 0usize;
        // Applied as it arrives: a failure midway leaves a partial source, so it is reset
        // before the next try.
        let applied = async {
            while let Some(message) = stream.message().await? {
                events += message.events.len();
                self.apply(&message.events);
                position = Some(message.position);
            }
            Ok::<(), Status>(())
        }
        .await;
        if let Err(status) = applied {
            self.write().reset(self.source);
            return Err(Stop::Failed(status));
        }
        let position = position.unwrap_or_default();
        self.write().set_position(self.source, position);
        tracing::info!(
            source = self.source.name(),
            position,
            events,
            ms = started.elapsed().as_millis() as u64,
            "feed index loaded from export"
        );
        Ok(())
    }
}
