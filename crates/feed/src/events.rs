//! Feeding the index from the other services' events (the embedded transport: each service's
//! `pronet.events.v1.EventService` stream). One task per source: when the index holds nothing
//! of the source yet, it applies the source's ExportState (its state as of a snapshot) and then
//! streams the events after the export's position; afterwards it resumes after the last
//! sequence applied. The index is ready once every source has caught up with the head it saw on
//! connecting; until then the feed's health is NOT_SERVING.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pronet_common::auth::{ServiceAuth, ServiceCredentials};
use pronet_common::metrics::Metrics;
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
            let client = EventServiceClient::with_interceptor(lazy_channel(addr, limits)?, auth.clone())
                .max_decoding_message_size(MAX_EVENT_MESSAGE_BYTES);
            let feeder = SourceFeeder {
                source,
                client,
                index: index.clone(),
                progress: progress.clone(),
                ready: ready_tx.clone(),
                window,
                consumer: consumer.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(feeder.run());
        }
        tokio::spawn(evict_loop(index, metrics));
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
    metrics: Option<Arc<Metrics>>,
}

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
        if let (Some(m), Some(last)) = (&self.metrics, events.last()) {
            if last.sequence > 0 {
                if let Some(t) = last.occur_time.as_ref().and_then(|t| from_timestamp(t).ok()) {
                    let lag = (now_micros() - t).max(0) as f64 / 1e6;
                    m.feed_index_lag(self.source.name(), lag);
                }
            }
        }
    }

    async fn follow(&mut self) -> Result<(), Stop> {
        let slot = Progress::slot(self.source);
        if !self.progress.exported[slot].load(Ordering::SeqCst) {
            self.export().await?;
            self.progress.exported[slot].store(true, Ordering::SeqCst);
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
            if !self.progress.caught_up[slot].load(Ordering::SeqCst) {
                let position = self
                    .index
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .position(self.source);
                if position >= target {
                    self.progress.caught_up[slot].store(true, Ordering::SeqCst);
                    tracing::info!(source = self.source.name(), position, "feed index caught up");
                    let all = self
                        .progress
                        .caught_up
                        .iter()
                        .all(|c| c.load(Ordering::SeqCst));
                    if all {
                        self.ready.send_replace(true);
                    }
                }
            }
        }
        Ok(())
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
