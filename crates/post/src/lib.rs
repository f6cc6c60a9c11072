//! The post service: members' posts, with the hashtags and @handle mentions found in their text.
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
use pronet_proto::post::v1::post_service_server::PostServiceServer;
use tonic::service::Routes;

pub use config::PostConfig;
pub use service::PostApi;
use store::sqlite::SqlitePostStore;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.post.v1.PostService";

/// Opens the store and returns the service's routes.
pub async fn build(config: &PostConfig) -> Result<Routes, sqlx::Error> {
    let store = SqlitePostStore::open(&config.database_path).await?;
    let api = PostApi::new(Arc::new(store));
    Ok(Routes::new(
        PostServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    ))
}
