//! The profile store: what the service needs from its storage, whatever the backend.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    ConnectionRecord, Cursor, FollowCursor, FollowTarget, FollowingRecord, InvitationDirection,
    InvitationRecord, ProfileChanges, ProfileFields, ProfileRecord,
};
use crate::error::ProfileError;

pub type StoreResult<T> = Result<T, ProfileError>;

#[async_trait]
pub trait ProfileStore: Send + Sync + 'static {
    /// Creates a profile; `HandleTaken` when the handle's key exists.
    async fn create_profile(
        &self,
        id: &str,
        fields: ProfileFields,
        now: i64,
    ) -> StoreResult<ProfileRecord>;

    async fn get_profile(&self, id: &str) -> StoreResult<Option<ProfileRecord>>;

    /// Looks a profile up by the lowercase handle key.
    async fn get_profile_by_handle(&self, handle_key: &str) -> StoreResult<Option<ProfileRecord>>;

    /// The profiles that exist among `ids`, in no particular order.
    async fn batch_get_profiles(&self, ids: &[String]) -> StoreResult<Vec<ProfileRecord>>;

    /// Applies `changes`; `NotFound` or `HandleTaken`.
    async fn update_profile(
        &self,
        id: &str,
        changes: ProfileChanges,
        now: i64,
    ) -> StoreResult<ProfileRecord>;

    /// Records a pending invitation. Both members must exist, not be connected, and have no
    /// pending invitation between them either way.
    async fn create_invitation(
        &self,
        invitation: InvitationRecord,
    ) -> StoreResult<InvitationRecord>;

    /// Accepts a pending invitation as `member_id` and connects the two members both ways, in
    /// one transaction. Returns the accepted invitation.
    async fn accept_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord>;

    /// Pending invitations of a member, newest first, after `after`.
    async fn list_invitations(
        &self,
        member_id: &str,
        direction: InvitationDirection,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<InvitationRecord>>;

    /// Connections of a member, newest first, after `after`.
    async fn list_connections(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;

    /// Follows a member (who must exist) or a hashtag; following again keeps the first record.
    async fn follow(
        &self,
        member_id: &str,
        target: FollowTarget,
        now: i64,
    ) -> StoreResult<FollowingRecord>;

    /// What a member follows, newest first, after `after`.
    async fn list_following(
        &self,
        member_id: &str,
        after: Option<FollowCursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowingRecord>>;
}
