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

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic::Status;

    #[test]
    fn not_found_names_the_thing_and_storage_failures_hide_detail() {
        let s = Status::from(PostError::NotFound("post"));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "post not found");
        let s = Status::from(PostError::Corrupt("hashtags: /secret".into()));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
    }

    #[test]
    fn a_down_profile_service_is_unavailable() {
        let s = Status::from(PostError::Dependency {
            dependency: "profile",
            status: Box::new(Status::unavailable("tcp connect error")),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "profile service unavailable");
    }
}
