//! The post service's errors and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl From<PostError> for Status {
    fn from(err: PostError) -> Self {
        match err {
            PostError::NotFound(_) => Status::not_found(err.to_string()),
            PostError::Storage(_) | PostError::Corrupt(_) => {
                pronet_common::error::internal("post store failed", err)
            }
        }
    }
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
}
