//! A store that times every operation of another: each call is delegated unchanged and recorded
//! in `pronet_store_operation_duration_seconds{store="profile",operation,outcome}`.

use super::{ProfileStore, StoreResult};
use crate::domain::{
    ConnectionRecord, Cursor, DegreeRecord, FollowCursor, FollowTarget, FollowerRecord,
    FollowingRecord, IdempotencyKey, InvitationDirection, InvitationRecord, ProfileChanges,
    ProfileFields, ProfileRecord, RelationshipRecord, SearchHit, SearchQuery, SuggestionInputs,
};
use std::collections::HashMap;

/// The `store` label of this service's operations.
pub const STORE_NAME: &str = "profile";

/// The store with every operation timed (and traced).
pub type TimedStore = pronet_common::timed::Timed<dyn ProfileStore>;

pronet_common::timed_store! {
    impl ProfileStore;
    async fn create_profile(&self, id: &str, fields: ProfileFields, now: i64, idempotency: Option<&IdempotencyKey>) -> StoreResult<ProfileRecord>;
    async fn get_profile(&self, id: &str, viewer: Option<&str>) -> StoreResult<Option<ProfileRecord>>;
    async fn get_profile_by_handle(&self, handle_key: &str, viewer: Option<&str>) -> StoreResult<Option<ProfileRecord>>;
    async fn batch_get_profiles(&self, ids: &[String], viewer: Option<&str>) -> StoreResult<Vec<ProfileRecord>>;
    async fn update_profile(&self, id: &str, changes: ProfileChanges, now: i64) -> StoreResult<ProfileRecord>;
    async fn create_invitation(&self, invitation: InvitationRecord, idempotency: Option<&IdempotencyKey>) -> StoreResult<InvitationRecord>;
    async fn accept_invitation(&self, invitation_id: &str, member_id: &str, now: i64) -> StoreResult<InvitationRecord>;
    async fn list_invitations(&self, member_id: &str, direction: InvitationDirection, after: Option<Cursor>, limit: usize) -> StoreResult<Vec<InvitationRecord>>;
    async fn list_connections(&self, member_id: &str, after: Option<Cursor>, limit: usize) -> StoreResult<Vec<ConnectionRecord>>;
    async fn follow(&self, member_id: &str, target: FollowTarget, now: i64) -> StoreResult<FollowingRecord>;
    async fn list_following(&self, member_id: &str, after: Option<FollowCursor>, limit: usize) -> StoreResult<Vec<FollowingRecord>>;
    async fn block_member(&self, member_id: &str, blocked_id: &str, now: i64) -> StoreResult<()>;
    async fn unblock_member(&self, member_id: &str, blocked_id: &str) -> StoreResult<()>;
    async fn relationships(&self, viewer_id: &str, ids: &[String]) -> StoreResult<Vec<RelationshipRecord>>;
    async fn lookup_handles(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>>;
    async fn decline_invitation(&self, invitation_id: &str, member_id: &str, now: i64) -> StoreResult<InvitationRecord>;
    async fn withdraw_invitation(&self, invitation_id: &str, member_id: &str, now: i64) -> StoreResult<InvitationRecord>;
    async fn remove_connection(&self, member_id: &str, other_id: &str) -> StoreResult<()>;
    async fn unfollow(&self, member_id: &str, target: &FollowTarget) -> StoreResult<()>;
    async fn list_followers(&self, member_id: &str, after: Option<Cursor>, limit: usize) -> StoreResult<Vec<FollowerRecord>>;
    async fn connection_degree(&self, viewer_id: &str, member_id: &str) -> StoreResult<DegreeRecord>;
    async fn suggestion_candidates(&self, member_id: &str) -> StoreResult<SuggestionInputs>;
    async fn search_profiles(&self, searcher: &str, query: &SearchQuery, window: std::ops::Range<usize>) -> StoreResult<Vec<SearchHit>>;
    async fn search_highlights(&self, query: &SearchQuery, ids: &[String]) -> StoreResult<HashMap<String, Vec<String>>>;
    async fn import_connections(&self, pairs: &[(String, String)], now: i64) -> StoreResult<(u64, u64)>;
    async fn import_profiles(&self, profiles: Vec<(String, ProfileFields)>, now: i64) -> StoreResult<(u64, u64)>;
}
