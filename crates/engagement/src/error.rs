//! The engagement service's errors (the services' shared ones, which `pronet_common::error` turns into gRPC
//! statuses) and why it could not be built.

/// The engagement service's errors: the services' shared ones.
pub type EngagementError = pronet_common::error::ServiceError;

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open the engagement store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("invalid post service address: {0}")]
    PostAddr(String),
    #[error("invalid profile service address: {0}")]
    ProfileAddr(String),
    /// Calls to the post service carry a service token, which this process must sign.
    #[error("cannot sign service tokens: set PRONET_JWT_PRIVATE_KEY_FILE")]
    CannotSign,
}
