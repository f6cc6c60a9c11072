//! The post service's errors (the services' shared ones, which `pronet_common::error` turns into gRPC
//! statuses) and why it could not be built.

/// The post service's errors: the services' shared ones.
pub type PostError = pronet_common::error::ServiceError;

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open the post store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("invalid profile service address: {0}")]
    ProfileAddr(String),
    #[error("invalid engagement service address: {0}")]
    EngagementAddr(String),
}
