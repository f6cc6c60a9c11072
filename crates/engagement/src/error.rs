//! The engagement service's errors and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum EngagementError {
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
    /// A failed write on the embedded store (its writer runs on rusqlite).
    #[error("storage failure: {0}")]
    Write(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A member holds as many of something as they may (the message says what and how to go on).
    #[error("{0}")]
    LimitReached(String),
}

impl From<EngagementError> for Status {
    fn from(err: EngagementError) -> Self {
        match err {
            EngagementError::NotFound(_) => Status::not_found(err.to_string()),
            EngagementError::LimitReached(_) => Status::resource_exhausted(err.to_string()),
            EngagementError::Dependency { dependency, status } => {
                pronet_common::upstream::dependency_failed(dependency, *status)
            }
            EngagementError::Storage(_)
            | EngagementError::Write(_)
            | EngagementError::Corrupt(_) => {
                pronet_common::error::internal("engagement store failed", err)
            }
        }
    }
}

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
