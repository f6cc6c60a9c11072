//! The profile service's errors and the one place they become gRPC statuses (on the base
//! every service shares, `pronet_common::error::ServiceError`).

use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller already has a profile: one per member id.
    #[error("profile already exists")]
    ProfileExists,
    #[error("handle is already taken")]
    HandleTaken,
    #[error("members are already connected")]
    AlreadyConnected,
    #[error("an invitation between these members is already pending")]
    InvitationPending,
    /// The member is the invitation's inviter, not its invitee; the verb says what they tried.
    #[error("only the invitee can {0} this invitation")]
    NotInvitee(&'static str),
    #[error("only the inviter can withdraw this invitation")]
    NotInviter,
    #[error("invitation is no longer pending")]
    InvitationNotPending,
    /// What every service's store fails with (storage, corrupt data).
    #[error(transparent)]
    Service(#[from] pronet_common::error::ServiceError),
}

impl ProfileError {
    /// Stored data that cannot be what it says (`what` says which and why).
    pub fn corrupt(what: String) -> Self {
        Self::Service(pronet_common::error::ServiceError::Corrupt(what))
    }
}

impl From<sqlx::Error> for ProfileError {
    fn from(err: sqlx::Error) -> Self {
        Self::Service(err.into())
    }
}

impl From<rusqlite::Error> for ProfileError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Service(err.into())
    }
}

impl From<ProfileError> for Status {
    /// The rules of the profile domain map here; what every service shares (not found,
    /// storage) maps as `ServiceError` does.
    fn from(err: ProfileError) -> Self {
        use pronet_common::error::ServiceError;
        match err {
            ProfileError::NotFound(what) => ServiceError::NotFound(what).into(),
            ProfileError::ProfileExists
            | ProfileError::HandleTaken
            | ProfileError::InvitationPending => Status::already_exists(err.to_string()),
            ProfileError::AlreadyConnected | ProfileError::InvitationNotPending => {
                Status::failed_precondition(err.to_string())
            }
            ProfileError::NotInvitee(_) | ProfileError::NotInviter => {
                Status::permission_denied(err.to_string())
            }
            ProfileError::Service(err) => err.into(),
        }
    }
}
