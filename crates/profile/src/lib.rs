//! The profile service: member profiles, invitations, connections and follows.
//!
//! `service` is the tonic adapter, `domain` the types and rules, `store` the storage trait with
//! one module per backend.

pub mod config;
pub mod domain;
pub mod error;
pub mod service;
pub mod store;

use std::sync::Arc;

use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_proto::profile::v1::profile_service_server::ProfileServiceServer;
use tonic::service::Routes;

pub use config::ProfileConfig;
pub use service::ProfileApi;
use store::sqlite::SqliteProfileStore;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.profile.v1.ProfileService";

/// Opens the store and returns the service's routes.
pub async fn build(config: &ProfileConfig) -> Result<Routes, sqlx::Error> {
    let store = SqliteProfileStore::open(&config.database_path).await?;
    let api = ProfileApi::new(Arc::new(store));
    Ok(Routes::new(
        ProfileServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    ))
}
