//! Invitations to connect: their states and who may close them.

/// Invitation states, numbered as in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending = 1,
    Accepted = 2,
    Declined = 3,
    Withdrawn = 4,
}

impl InvitationState {
    pub fn from_i64(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Pending),
            2 => Some(Self::Accepted),
            3 => Some(Self::Declined),
            4 => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: String,
    pub inviter_id: String,
    pub invitee_id: String,
    pub message: String,
    pub state: InvitationState,
    pub create_time: i64,
}

/// Whether `member_id` may move `inv` to `to`: only its invitee declines, only its inviter
/// withdraws, and only while it is pending (who may act is checked first, as for accepting).
pub fn check_closer(
    inv: &InvitationRecord,
    member_id: &str,
    to: InvitationState,
) -> Result<(), crate::error::ProfileError> {
    use crate::error::ProfileError;
    match to {
        InvitationState::Declined if inv.invitee_id != member_id => {
            return Err(ProfileError::NotInvitee("decline"))
        }
        InvitationState::Withdrawn if inv.inviter_id != member_id => {
            return Err(ProfileError::NotInviter)
        }
        InvitationState::Declined | InvitationState::Withdrawn => {}
        InvitationState::Pending | InvitationState::Accepted => {
            return Err(ProfileError::corrupt(format!("cannot close into {to:?}")))
        }
    }
    if inv.state != InvitationState::Pending {
        return Err(ProfileError::InvitationNotPending);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationDirection {
    Received,
    Sent,
}
