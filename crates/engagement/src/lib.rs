//! The engagement service: reactions, comments and shares on posts, and their counts.
//!
//! `service` is the tonic adapter, `domain` the types and rules, `store` the storage trait with
//! one module per backend, `posts` the post service as seen from here.

pub mod config;
pub mod domain;
pub mod error;
pub mod posts;
pub mod service;
pub mod store;

use std::sync::Arc;

use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_common::upstream::lazy_channel;
use pronet_proto::engagement::v1::engagement_service_server::EngagementServiceServer;
use tonic::service::Routes;

pub use config::EngagementConfig;
pub use error::BuildError;
use posts::GrpcPostDirectory;
pub use service::EngagementApi;
use store::sqlite::SqliteEngagementStore;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.engagement.v1.EngagementService";

/// Opens the store, prepares a lazy channel to the post service and returns the service's
/// routes. The post service need not be up yet.
pub async fn build(config: &EngagementConfig) -> Result<Routes, BuildError> {
    // The address first: a typo should not leave a freshly created database behind.
    let channel =
        lazy_channel(&config.post_addr, config.call_limits).map_err(BuildError::PostAddr)?;
    let store = SqliteEngagementStore::open(&config.database_path).await?;
    let api = EngagementApi::new(Arc::new(store), Arc::new(GrpcPostDirectory::new(channel)));
    Ok(Routes::new(
        EngagementServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    ))
}

#[cfg(test)]
mod tests {
    use pronet_common::upstream::CallLimits;
    use tonic::server::NamedService;

    use super::*;

    fn config(dir: &tempfile::TempDir, post_addr: &str) -> EngagementConfig {
        EngagementConfig {
            database_path: dir.path().join("engagement.db"),
            post_addr: post_addr.into(),
            call_limits: CallLimits::default(),
        }
    }

    #[test]
    fn service_name_matches_the_generated_server() {
        assert_eq!(SERVICE_NAME, EngagementServiceServer::<EngagementApi>::NAME);
    }

    #[tokio::test]
    async fn builds_before_the_post_service_is_up() {
        let dir = tempfile::tempdir().unwrap();
        assert!(build(&config(&dir, "127.0.0.1:1")).await.is_ok());
        assert!(dir.path().join("engagement.db").exists());
    }

    #[tokio::test]
    async fn refuses_an_invalid_post_address_without_creating_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&config(&dir, "not a host")).await.err();
        assert!(matches!(err, Some(BuildError::PostAddr(_))), "{err:?}");
        assert!(!dir.path().join("engagement.db").exists());
    }
}
