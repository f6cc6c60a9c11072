//! The post service's errors and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A service we depend on failed; boxed because a `Status` is large.
    #[error("{dependency} service call failed: {status}")]
    Dependency {
        dependency: &'static str,
        status: Box<Status>,
    },
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("storage failure: {0}")]
    Write(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl From<PostError> for Status {
    fn from(err: PostError) -> Self {
        match err {
            PostError::NotFound(_) => Status::not_found(err.to_string()),
            PostError::Dependency { dependency, status } => {
                pronet_common::upstream::dependency_failed(dependency, *status)
            }
            PostError::Storage(_) | PostError::Write(_) | PostError::Corrupt(_) => {
                pronet_common::error::internal("post store failed", err)
            }
        }
    }
}

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
