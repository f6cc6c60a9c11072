//! The feed service's errors and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The index has not caught up with the other services yet (health says NOT_SERVING).
    #[error("the feed index is still loading")]
    NotReady,
    #[error("the feed is shutting down")]
    ShuttingDown,
    /// No profile: the member does not exist (yet, as far as the index knows).
    #[error("member not found")]
    MemberNotFound,
    /// A ranking did not finish (it panicked on the blocking pool).
    #[error("ranking task failed: {0}")]
    RankingFailed(String),
}

impl From<FeedError> for Status {
    fn from(err: FeedError) -> Self {
        match err {
            FeedError::NotReady | FeedError::ShuttingDown => Status::unavailable(err.to_string()),
            FeedError::MemberNotFound => Status::not_found(err.to_string()),
            FeedError::RankingFailed(_) => {
                pronet_common::error::internal("feed ranking failed", err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_loading_index_is_retryable_and_a_failed_ranking_hides_its_detail() {
        let s = Status::from(FeedError::NotReady);
        assert_eq!(
            (s.code(), s.message()),
            (Code::Unavailable, "the feed index is still loading")
        );
        let s = Status::from(FeedError::MemberNotFound);
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "member not found")
        );
        let s = Status::from(FeedError::RankingFailed("panicked at src/x.rs".into()));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }
}
