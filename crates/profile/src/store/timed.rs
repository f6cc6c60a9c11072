//! A store that times every operation of another: each call is delegated unchanged and recorded
//! in `pronet_store_operation_duration_seconds{store="profile",operation,outcome}`.

use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::events::{ExportError, ExportSink};
use pronet_common::metrics::Metrics;
use pronet_common::outbox::Outbox;

use super::{ProfileStore, StoreResult};
use crate::domain::{
    ConnectionRecord, Cursor, DegreeRecord, FollowCursor, FollowTarget, FollowerRecord,
    FollowingRecord, IdempotencyKey, InvitationDirection, InvitationRecord, ProfileChanges,
    ProfileFields, ProfileRecord, RelationshipRecord, SearchHit, SearchQuery, SuggestionInputs,
};
use std::collections::HashMap;

/// The `store` label of this service's operations.
pub const STORE_NAME: &str = "profile";

pub struct TimedStore {
    inner: Arc<dyn ProfileStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn new(inner: Arc<dyn ProfileStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl ProfileStore for TimedStore {
    async fn create_profile(
        &self,
        id: &str,
        fields: ProfileFields,
        now: i64,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<ProfileRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "create_profile",
                self.inner.create_profile(id, fields, now, idempotency),
            )
            .await
    }

    async fn get_profile(
        &self,
        id: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "get_profile",
                self.inner.get_profile(id, viewer),
            )
            .await
    }

    async fn get_profile_by_handle(
        &self,
        handle_key: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "get_profile_by_handle",
                self.inner.get_profile_by_handle(handle_key, viewer),
            )
            .await
    }

    async fn batch_get_profiles(
        &self,
        ids: &[String],
        viewer: Option<&str>,
    ) -> StoreResult<Vec<ProfileRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "batch_get_profiles",
                self.inner.batch_get_profiles(ids, viewer),
            )
            .await
    }

    async fn update_profile(
        &self,
        id: &str,
        changes: ProfileChanges,
        now: i64,
    ) -> StoreResult<ProfileRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "update_profile",
                self.inner.update_profile(id, changes, now),
            )
            .await
    }

    async fn create_invitation(
        &self,
        invitation: InvitationRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "create_invitation",
                self.inner.create_invitation(invitation, idempotency),
            )
            .await
    }

    async fn accept_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "accept_invitation",
                self.inner.accept_invitation(invitation_id, member_id, now),
            )
            .await
    }

    async fn list_invitations(
        &self,
        member_id: &str,
        direction: InvitationDirection,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<InvitationRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_invitations",
                self.inner
                    .list_invitations(member_id, direction, after, limit),
            )
            .await
    }

    async fn list_connections(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_connections",
                self.inner.list_connections(member_id, after, limit),
            )
            .await
    }

    async fn follow(
        &self,
        member_id: &str,
        target: FollowTarget,
        now: i64,
    ) -> StoreResult<FollowingRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "follow",
                self.inner.follow(member_id, target, now),
            )
            .await
    }

    async fn list_following(
        &self,
        member_id: &str,
        after: Option<FollowCursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowingRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_following",
                self.inner.list_following(member_id, after, limit),
            )
            .await
    }

    async fn block_member(&self, member_id: &str, blocked_id: &str, now: i64) -> StoreResult<()> {
        self.metrics
            .time_store(
                STORE_NAME,
                "block_member",
                self.inner.block_member(member_id, blocked_id, now),
            )
            .await
    }

    async fn unblock_member(&self, member_id: &str, blocked_id: &str) -> StoreResult<()> {
        self.metrics
            .time_store(
                STORE_NAME,
                "unblock_member",
                self.inner.unblock_member(member_id, blocked_id),
            )
            .await
    }

    async fn relationships(
        &self,
        viewer_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<RelationshipRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "relationships",
                self.inner.relationships(viewer_id, ids),
            )
            .await
    }

    async fn lookup_handles(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "lookup_handles",
                self.inner.lookup_handles(keys),
            )
            .await
    }

    async fn decline_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "decline_invitation",
                self.inner.decline_invitation(invitation_id, member_id, now),
            )
            .await
    }

    async fn withdraw_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "withdraw_invitation",
                self.inner
                    .withdraw_invitation(invitation_id, member_id, now),
            )
            .await
    }

    async fn remove_connection(&self, member_id: &str, other_id: &str) -> StoreResult<()> {
        self.metrics
            .time_store(
                STORE_NAME,
                "remove_connection",
                self.inner.remove_connection(member_id, other_id),
            )
            .await
    }

    async fn unfollow(&self, member_id: &str, target: &FollowTarget) -> StoreResult<()> {
        self.metrics
            .time_store(
                STORE_NAME,
                "unfollow",
                self.inner.unfollow(member_id, target),
            )
            .await
    }

    async fn list_followers(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowerRecord>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "list_followers",
                self.inner.list_followers(member_id, after, limit),
            )
            .await
    }

    async fn connection_degree(
        &self,
        viewer_id: &str,
        member_id: &str,
    ) -> StoreResult<DegreeRecord> {
        self.metrics
            .time_store(
                STORE_NAME,
                "connection_degree",
                self.inner.connection_degree(viewer_id, member_id),
            )
            .await
    }

    async fn suggestion_candidates(&self, member_id: &str) -> StoreResult<SuggestionInputs> {
        self.metrics
            .time_store(
                STORE_NAME,
                "suggestion_candidates",
                self.inner.suggestion_candidates(member_id),
            )
            .await
    }

    async fn search_profiles(
        &self,
        searcher: &str,
        query: &SearchQuery,
        window: std::ops::Range<usize>,
    ) -> StoreResult<Vec<SearchHit>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "search_profiles",
                self.inner.search_profiles(searcher, query, window),
            )
            .await
    }

    async fn search_highlights(
        &self,
        query: &SearchQuery,
        ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<String>>> {
        self.metrics
            .time_store(
                STORE_NAME,
                "search_highlights",
                self.inner.search_highlights(query, ids),
            )
            .await
    }

    async fn import_connections(
        &self,
        pairs: &[(String, String)],
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        self.metrics
            .time_store(
                STORE_NAME,
                "import_connections",
                self.inner.import_connections(pairs, now),
            )
            .await
    }

    async fn import_profiles(
        &self,
        profiles: Vec<(String, ProfileFields)>,
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        self.metrics
            .time_store(
                STORE_NAME,
                "import_profiles",
                self.inner.import_profiles(profiles, now),
            )
            .await
    }

    fn outbox(&self) -> Outbox {
        self.inner.outbox()
    }

    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut ExportSink,
    ) -> Result<(), ExportError> {
        self.metrics
            .time_store(
                STORE_NAME,
                "export_state",
                self.inner.export_state(since, sink),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Handle;
    use crate::store::sqlite::SqliteProfileStore;

    #[tokio::test]
    async fn operations_are_timed_by_name_and_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteProfileStore::open(&dir.path().join("profile.db"))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let store = TimedStore::new(Arc::new(sqlite), metrics.clone());

        let fields = ProfileFields {
            handle: Handle::parse("ada").unwrap(),
            display_name: "Ada".into(),
            headline: String::new(),
            summary: String::new(),
            location: String::new(),
            industry: String::new(),
            skills: Vec::new(),
            positions: Vec::new(),
            education: Vec::new(),
            open_to_work: false,
        };
        let created = store.create_profile("ada", fields, 1, None).await.unwrap();
        let found = store.get_profile("ada", None).await.unwrap();
        assert_eq!(found, Some(created));

        let text = metrics.render();
        for operation in ["create_profile", "get_profile"] {
            let line = format!(
                "pronet_store_operation_duration_seconds_count{{store=\"profile\",operation=\"{operation}\",outcome=\"ok\"}} 1"
            );
            assert!(text.contains(&line), "{line} not in\n{text}");
        }
    }
}
