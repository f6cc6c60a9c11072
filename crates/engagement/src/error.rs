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

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic::Status;

    use super::*;

    #[test]
    fn not_found_names_the_missing_thing() {
        let status = Status::from(EngagementError::NotFound("post"));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "post not found");
    }

    #[test]
    fn a_down_dependency_is_unavailable_and_storage_detail_stays_hidden() {
        let status = Status::from(EngagementError::Dependency {
            dependency: "post",
            status: Box::new(Status::unavailable("tcp connect error")),
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "post service unavailable");

        let status = Status::from(EngagementError::Corrupt("reaction type 9 at /data".into()));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
