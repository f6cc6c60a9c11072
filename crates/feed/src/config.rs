//! Configuration of the feed service.

use std::sync::Arc;
use std::time::Duration;

use pronet_common::metrics::Metrics;

use crate::posts::Upstreams;

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub upstreams: Upstreams,
    /// How far back candidates reach.
    pub window: Duration,
    /// Most bytes the index may hold (its own estimate, exported as
    /// `pronet_feed_index_size{part="approx_bytes"}`); past it the oldest posts leave early.
    /// `None`: the window alone bounds it.
    pub memory_budget: Option<usize>,
    /// How long a ranked feed is kept for its later pages.
    pub snapshot_ttl: Duration,
    /// How many ranked feeds are kept at once.
    pub snapshot_capacity: usize,
    /// The name this replica reads the other services' events under (their outboxes keep
    /// each reader's position for pruning).
    pub consumer: String,
    /// Read events from NATS JetStream instead of the services' gRPC streams.
    pub nats: Option<pronet_common::nats::NatsConfig>,
    /// The server's stop signal: the index's readers stop with it.
    pub shutdown: pronet_common::shutdown::Shutdown,
    /// Where the index's size and lag are reported.
    pub metrics: Option<Arc<Metrics>>,
    /// Where the index is saved to start from it next time (`None`: every start exports
    /// every source).
    pub saved_index: Option<crate::events::SavedIndex>,
    /// The ranking profiles file (`None`: the built-in `ranking.toml`).
    pub ranking_profiles: Option<std::path::PathBuf>,
    /// How often that file is checked for changes.
    pub profiles_poll: Duration,
    /// Longest a page waits for its post bodies before it is served degraded, from kept
    /// copies and the index (less when the caller's deadline is nearer).
    pub hydrate_budget: Duration,
    /// How the ranking model is trained from the index's log.
    pub trainer: crate::training::TrainerConfig,
}

/// How often the index is saved by default.
pub const SAVE_EVERY: Duration = Duration::from_secs(300);

impl FeedConfig {
    pub fn new(upstreams: Upstreams) -> Self {
        Self {
            upstreams,
            window: Duration::from_secs(14 * 86_400),
            memory_budget: None,
            snapshot_ttl: Duration::from_secs(600),
            // A ranked feed holds up to 1,000 items (~0.5 MB): 256 of them bound the cache
            // to ~128 MB (1,024 reached 690 MB of RSS under the feed benchmark).
            snapshot_capacity: 256,
            consumer: format!("feed/{}", pronet_common::ids::new_id()),
            nats: None,
            shutdown: Default::default(),
            metrics: None,
            saved_index: None,
            ranking_profiles: None,
            profiles_poll: Duration::from_secs(2),
            hydrate_budget: Duration::from_millis(250),
            trainer: crate::training::TrainerConfig::default(),
        }
    }
}
