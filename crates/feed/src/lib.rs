//! The feed-ranking service: each member's personalized home feed, ranked from what their
//! network posted and engaged with, every item explained.
//!
//! The feed reads as: `events` (consume the other services' event streams, apply, track
//! positions) → `index` (the in-memory state, no I/O; it is the `domain::CandidateSource`) →
//! `domain` (`feed`: a member's ranked feed and the explanation of one post, over any candidate
//! source; `ranking`: signals and ordering; `profile`: ranking profiles; visibility and
//! reasons; pure functions) → `service` (the tonic adapter: `service.rs` the handlers,
//! `service/convert.rs` their typed inputs and the items, reasons and filters as protobuf).
//! `snapshot` keeps rankings for later pages; `posts` is the client of the post service, for
//! the one call a page makes (post bodies, with kept copies for degraded pages); `profiles`
//! holds the ranking profiles in use (`ranking.toml`, hot-reloaded); `error` its errors and
//! their statuses.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod index;
pub mod posts;
pub mod profiles;
pub mod service;
pub mod snapshot;
pub mod training;

use std::sync::{Arc, RwLock};

use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_proto::feed::v1::feed_service_server::FeedServiceServer;
use tonic::service::Routes;

pub use config::FeedConfig;
pub use posts::Upstreams;
pub use service::FeedApi;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.feed.v1.FeedService";

/// Who may call each method: members read their own feed; services (a gateway) any feed.
pub fn access(_path: &str) -> pronet_common::auth::Access {
    pronet_common::auth::Access::MemberOrService
}

/// The feed service, built: its routes and whether its index is ready to serve.
pub struct BuiltFeed {
    pub routes: Routes,
    /// True once the index has caught up with every source (health SERVING from then on).
    pub ready: tokio::sync::watch::Receiver<bool>,
    pub index: events::SharedIndex,
    /// Saves the index until the shutdown, then once more: await it before exiting.
    pub saver: Option<tokio::task::JoinHandle<()>>,
}

/// Builds the service and starts feeding its index from the other services' events
/// (connected lazily, retried until they answer).
pub fn build(config: &FeedConfig) -> Result<BuiltFeed, String> {
    let mut state = index::FeedIndex::new(config.window.as_micros() as i64);
    state.set_memory_budget(config.memory_budget);
    state.set_log_capacity(config.trainer.log_capacity);
    let index = Arc::new(RwLock::new(state));
    let mut feeder = events::IndexFeeder::start(
        index.clone(),
        &config.upstreams,
        config.window,
        config.consumer.clone(),
        config.nats.clone(),
        config.shutdown.clone(),
        config.metrics.clone(),
        config.saved_index.clone(),
    )?;
    let bodies = posts::PostBodies::connect(
        &config.upstreams,
        config.hydrate_budget,
        config.metrics.clone(),
    )?;
    let token_key = config
        .upstreams
        .auth
        .derive_key(snapshot::TokenKey::PURPOSE)
        .map(snapshot::TokenKey::new)
        .ok_or("the feed cannot sign page tokens: it needs the signing key (PRONET_JWT_PRIVATE_KEY_FILE)")?;
    let cache = snapshot::SnapshotCache::new(config.snapshot_ttl, config.snapshot_capacity);
    let profiles = match &config.ranking_profiles {
        Some(path) => profiles::RankingProfiles::load(path)?,
        None => profiles::RankingProfiles::built_in(),
    };
    profiles.watch(config.profiles_poll, config.shutdown.clone());
    let mut trainer = training::Trainer::new(
        index.clone(),
        Arc::new(training::ModelSlot::default()),
        config.trainer,
        config.metrics.clone(),
    );
    if let Some(saved) = &config.saved_index {
        trainer = trainer.with_saved_model(training::saved::model_path(&saved.path));
    }
    let trainer = Arc::new(trainer);
    trainer
        .clone()
        .spawn(feeder.ready(), config.shutdown.clone());
    let api = FeedApi::new(
        index.clone(),
        feeder.ready(),
        service::FeedParts {
            bodies,
            profiles,
            cache,
            token_key,
            metrics: config.metrics.clone(),
            trainer,
        },
    );
    Ok(BuiltFeed {
        routes: Routes::new(
            FeedServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
        ),
        ready: feeder.ready(),
        saver: feeder.take_saver(),
        index,
    })
}
