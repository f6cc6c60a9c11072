//! Feeding the index from the other services' events. One
//! [`EventFollower`](pronet_common::event_follower::EventFollower) per source (export when the
//! index holds nothing of it, then the stream after the export's position; gRPC or NATS
//! JetStream), each applying into the index through [`IndexSource`]. The index is ready once
//! every source has caught up with the head it saw on connecting; until then the feed's health
//! is NOT_SERVING.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use pronet_common::auth::{ServiceAuth, ServiceCredentials};
use pronet_common::event_follower::{EventApplier, EventFollower, FollowerConfig};
use pronet_common::metrics::Metrics;
use pronet_common::nats::NatsConfig;
use pronet_common::shutdown::Shutdown;
use pronet_common::time::{from_timestamp, now_micros};
use pronet_proto::events::v1 as pb;
use tokio::sync::watch;

use crate::index::{FeedIndex, Source};
use crate::sources::Upstreams;

/// How often posts that left the window are dropped and the index's size is reported.
const EVICT_EVERY: Duration = Duration::from_secs(30);

/// The shared index.
pub type SharedIndex = Arc<RwLock<FeedIndex>>;

/// The running followers; dropping this does not stop them (they stop with the shutdown).
pub struct IndexFeeder {
    ready: watch::Receiver<bool>,
}

impl IndexFeeder {
    /// Starts one follower per source, and the evictor.
    pub fn start(
        index: SharedIndex,
        up: &Upstreams,
        window: Duration,
        consumer: String,
        nats: Option<NatsConfig>,
        shutdown: Shutdown,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, String> {
        let auth = ServiceAuth(ServiceCredentials::new(up.auth.clone(), "feed"));
        let mut caught_up = Vec::with_capacity(Source::ALL.len());
        for (source, addr) in [
            (Source::Profile, &up.profile_addr),
            (Source::Post, &up.post_addr),
            (Source::Engagement, &up.engagement_addr),
        ] {
            let follower = EventFollower::start(
                FollowerConfig {
                    source: source.name(),
                    addr: addr.clone(),
                    auth: auth.clone(),
                    connect_timeout: up.limits.connect_timeout,
                    consumer: consumer.clone(),
                    // Posts and engagement older than the window never become candidates.
                    export_window: Some(window),
                    nats: nats.clone(),
                    shutdown: shutdown.clone(),
                },
                Arc::new(IndexSource {
                    source,
                    index: index.clone(),
                    metrics: metrics.clone(),
                }),
            )?;
            caught_up.push(follower.caught_up());
        }
        let (ready_tx, ready) = watch::channel(false);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = all_caught_up(caught_up, ready_tx) => {}
                _ = stop.wait() => {}
            }
        });
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

/// Keeps `ready` true exactly while every follower is caught up.
async fn all_caught_up(mut followers: Vec<watch::Receiver<bool>>, ready: watch::Sender<bool>) {
    loop {
        // Every receiver is marked seen (no short cut), so only new changes wake the wait.
        let seen: Vec<bool> = followers
            .iter_mut()
            .map(|f| *f.borrow_and_update())
            .collect();
        let all = seen.iter().all(|c| *c);
        if ready.send_if_modified(|r| std::mem::replace(r, all) != all) && all {
            tracing::info!("feed index caught up with every source");
        }
        let changes = followers.iter_mut().map(|f| Box::pin(f.changed()));
        if futures_util::future::select_all(changes).await.0.is_err() {
            return;
        }
    }
}

/// One source's share of the index, as its follower feeds it.
struct IndexSource {
    source: Source,
    index: SharedIndex,
    metrics: Option<Arc<Metrics>>,
}

impl IndexSource {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, FeedIndex> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventApplier for IndexSource {
    fn apply(&self, events: &[pb::Event]) {
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

    fn reset(&self) {
        self.write().reset(self.source);
    }

    fn position(&self) -> i64 {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .position(self.source)
    }

    fn set_position(&self, position: i64) {
        self.write().set_position(self.source, position);
    }
}

async fn evict_loop(index: SharedIndex, metrics: Option<Arc<Metrics>>) {
    let mut every = tokio::time::interval(EVICT_EVERY);
    loop {
        every.tick().await;
        let (evicted, stats, over_budget) = {
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            let before = index.over_budget_evictions();
            let evicted = index.evict(now_micros());
            let over_budget = index.over_budget_evictions() - before;
            (evicted, index.stats(), over_budget)
        };
        if over_budget > 0 {
            tracing::warn!(
                over_budget,
                approx_bytes = stats.approx_bytes,
                "the feed index is over its memory budget: its oldest posts left before the window"
            );
        }
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
