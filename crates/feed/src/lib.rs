//! The feed-ranking service: each member's personalized home feed, ranked from what their
//! network posted and engaged with, every item explained.
//!
//! `service` is the tonic adapter, `sources` the gRPC calls to the other three services,
//! `domain` the ranking rules, `snapshot` the cached rankings and page tokens.

pub mod config;
pub mod domain;
pub mod service;
pub mod snapshot;
pub mod sources;

use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_proto::feed::v1::feed_service_server::FeedServiceServer;
use tonic::service::Routes;

pub use config::FeedConfig;
pub use service::FeedApi;
pub use sources::Upstreams;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.feed.v1.FeedService";

/// Who may call each method: members read their own feed; services (a gateway) any feed.
pub fn access(_path: &str) -> pronet_common::auth::Access {
    pronet_common::auth::Access::MemberOrService
}

/// Builds the service's routes; dependencies are connected lazily, on first use.
pub fn build(config: &FeedConfig) -> Result<Routes, String> {
    let source = sources::CandidateSource::connect(&config.upstreams)?;
    let cache = snapshot::SnapshotCache::new(config.snapshot_ttl, config.snapshot_capacity);
    let api = FeedApi::new(source, config.window, cache);
    Ok(Routes::new(
        FeedServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    ))
}
