//! Feeding the index from the other services' events. One
//! [`EventFollower`](pronet_common::event_follower::EventFollower) per source (export when the
//! index holds nothing of it, then the stream after the export's position; gRPC or NATS
//! JetStream), each applying into the index through [`IndexSource`]. The index is ready once
//! every source has caught up with the head it saw on connecting; until then the feed's health
//! is NOT_SERVING.
//!
//! With a file to save the index to ([`SavedIndex`]), a replica that finds one loads it first
//! and streams each source after the saved positions (no export); the index is saved again
//! every few minutes while whole, and once more when the server stops.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pronet_common::auth::ServiceAuth;
use pronet_common::event_follower::{EventApplier, EventFollower, FollowerConfig};
use pronet_common::metrics::Metrics;
use pronet_common::nats::NatsConfig;
use pronet_common::shutdown::Shutdown;
use pronet_common::time::{from_timestamp, now_micros};
use pronet_proto::events::v1 as pb;
use tokio::sync::watch;

use crate::index::{FeedIndex, Source};
use crate::posts::Upstreams;

/// How often posts that left the window are dropped and the index's size is reported.
const EVICT_EVERY: Duration = Duration::from_secs(30);

/// The shared index.
pub type SharedIndex = Arc<RwLock<FeedIndex>>;

/// Where the index is saved, and how often.
#[derive(Debug, Clone)]
pub struct SavedIndex {
    pub path: PathBuf,
    pub every: Duration,
}

/// The running followers; dropping this does not stop them (they stop with the shutdown).
pub struct IndexFeeder {
    ready: watch::Receiver<bool>,
    saver: Option<tokio::task::JoinHandle<()>>,
}

/// What the followers need, kept until the saved index (if any) is loaded.
struct Follow {
    index: SharedIndex,
    up: Upstreams,
    window: Duration,
    consumer: String,
    nats: Option<NatsConfig>,
    shutdown: Shutdown,
    metrics: Option<Arc<Metrics>>,
}

impl IndexFeeder {
    /// Loads the saved index when there is one, then starts one follower per source, the
    /// evictor and the saver.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        index: SharedIndex,
        up: &Upstreams,
        window: Duration,
        consumer: String,
        nats: Option<NatsConfig>,
        shutdown: Shutdown,
        metrics: Option<Arc<Metrics>>,
        saved: Option<SavedIndex>,
    ) -> Result<Self, String> {
        // Fail now on a bad address rather than in the task below.
        for addr in [&up.profile_addr, &up.post_addr, &up.engagement_addr] {
            pronet_common::upstream::lazy_channel(addr, up.limits)?;
        }
        let (ready_tx, ready) = watch::channel(false);
        let follow = Follow {
            index: index.clone(),
            up: up.clone(),
            window,
            consumer,
            nats,
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
        };
        let path = saved.as_ref().map(|s| s.path.clone());
        tokio::spawn(async move {
            let restored_at = match path {
                Some(path) => restore(&follow.index, path, follow.window).await,
                None => None,
            };
            match start_followers(&follow, restored_at) {
                Ok(caught_up) => {
                    let stop = follow.shutdown.clone();
                    tokio::select! {
                        _ = all_caught_up(caught_up, ready_tx) => {}
                        _ = stop.wait() => {}
                    }
                }
                Err(e) => tracing::error!(error = %e, "the feed index cannot follow its sources"),
            }
        });
        let saver =
            saved.map(|saved| tokio::spawn(save_loop(index.clone(), saved, shutdown.clone())));
        tokio::spawn(async move {
            tokio::select! {
                _ = evict_loop(index, metrics) => {}
                _ = shutdown.wait() => {}
            }
        });
        Ok(Self { ready, saver })
    }

    /// The task that saves the index; it ends after its last save, once the shutdown fired
    /// (a server awaits it before the process exits).
    pub fn take_saver(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.saver.take()
    }

    /// Turns true once every source has caught up (and false while one rebuilds).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }
}

/// Loads the saved index into `index`; the time it was saved, or `None` (no file, or one that
/// cannot be used: then every source is exported).
async fn restore(index: &SharedIndex, path: PathBuf, window: Duration) -> Option<i64> {
    let started = Instant::now();
    let shown = path.display().to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading it: {e}")),
        };
        FeedIndex::load(&bytes, window.as_micros() as i64).map(Some)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match loaded {
        Ok(Some((loaded, info))) => {
            let mut index = index.write().unwrap_or_else(|p| p.into_inner());
            let budget = index.memory_budget();
            *index = loaded;
            index.set_memory_budget(budget);
            tracing::info!(
                file = shown,
                members = info.members,
                posts = info.posts,
                age_s = (now_micros() - info.saved_at) / 1_000_000,
                ms = started.elapsed().as_millis() as u64,
                "feed index loaded from its saved copy; replaying the events since"
            );
            Some(info.saved_at)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(file = shown, error = %e, "the saved feed index cannot be used; exporting every source");
            None
        }
    }
}

/// Saves the index every `saved.every` while it is whole, and once more at shutdown.
async fn save_loop(index: SharedIndex, saved: SavedIndex, shutdown: Shutdown) {
    let mut every = tokio::time::interval(saved.every);
    every.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            _ = shutdown.wait() => true,
        };
        let (index, path) = (index.clone(), saved.path.clone());
        let done = tokio::task::spawn_blocking(move || save(&index, &path)).await;
        match done {
            Ok(Ok(Some((bytes, ms)))) => {
                tracing::info!(file = %saved.path.display(), bytes, ms, "feed index saved")
            }
            Ok(Ok(None)) => tracing::debug!("feed index not saved: a source is still loading"),
            Ok(Err(e)) => {
                tracing::warn!(file = %saved.path.display(), error = %e, "could not save the feed index")
            }
            Err(e) => tracing::warn!(error = %e, "the feed index saver failed"),
        }
        if stopping {
            return;
        }
    }
}

/// Writes the index to `path` (through a temporary file, synced, then renamed, so a crash
/// leaves the previous copy whole); the bytes written and the milliseconds taken.
fn save(index: &SharedIndex, path: &std::path::Path) -> std::io::Result<Option<(usize, u64)>> {
    use std::io::Write;
    let started = Instant::now();
    let Some(bytes) = index
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .save(now_micros())
    else {
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(Some((bytes.len(), started.elapsed().as_millis() as u64)))
}

/// Starts one follower per source; their caught-up signals.
fn start_followers(
    f: &Follow,
    restored_at: Option<i64>,
) -> Result<Vec<watch::Receiver<bool>>, String> {
    let up = &f.up;
    let auth = ServiceAuth::new(up.auth.clone(), "feed");
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
                consumer: f.consumer.clone(),
                // Posts and engagement older than the window never become candidates.
                export_window: Some(f.window),
                nats: f.nats.clone(),
                shutdown: f.shutdown.clone(),
                restored_at,
            },
            Arc::new(IndexSource {
                source,
                index: f.index.clone(),
                metrics: f.metrics.clone(),
            }),
        )?;
        caught_up.push(follower.caught_up());
    }
    Ok(caught_up)
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
                ("mutes", stats.mutes),
                ("approx_bytes", stats.approx_bytes),
            ] {
                m.feed_index_size(part, value as i64);
            }
        }
    }
}
