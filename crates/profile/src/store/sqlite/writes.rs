//! The writes behind several of the store's methods: idempotent creates (what a key recorded,
//! the first result again, racing retries), and closing invitations.

use super::*;

impl SqliteProfileStore {
    /// Moves a pending invitation to `state` (declined by its invitee or withdrawn by its
    /// inviter) as `member_id`.
    pub(super) async fn close_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        state: InvitationState,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        let invitation_id = invitation_id.to_owned();
        let member_id = member_id.to_owned();
        self.db
            .write(move |conn| close_invitation_in(conn, &invitation_id, &member_id, state, now))
            .await
    }

    /// The resource an idempotency key created, if a request with it succeeded.
    pub(super) async fn recorded(&self, key: &IdempotencyKey) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(RECORDED_KEY)
            .bind(&key.caller)
            .bind(&key.request_id)
            .fetch_optional(&self.db.reader)
            .await?)
    }

    /// After a failed create with `key`: when a request with the same key has succeeded
    /// meanwhile, the failure was the race with it (or with its effects), and its resource is
    /// the answer.
    pub(super) async fn recorded_after_failure(
        &self,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<Option<String>> {
        match key {
            Some(key) => self.recorded(key).await,
            None => Ok(None),
        }
    }

    pub(super) async fn replay_profile(&self, id: &str) -> StoreResult<ProfileRecord> {
        self.get_profile(id, None)
            .await?
            .ok_or(ProfileError::NotFound("profile"))
    }

    pub(super) async fn replay_invitation(&self, id: &str) -> StoreResult<InvitationRecord> {
        sqlx::query(INVITATION_BY_ID)
            .bind(id)
            .fetch_optional(&self.db.reader)
            .await?
            .as_ref()
            .map(invitation_from_row)
            .transpose()?
            // Only a block removes an invitation; a new one would not be found either.
            .ok_or(ProfileError::NotFound("invitee"))
    }

    pub(super) async fn insert_profile(
        &self,
        id: &str,
        f: ProfileFields,
        now: i64,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<ProfileRecord> {
        let id = id.to_owned();
        let key = key.cloned();
        self.db
            .write(move |conn| insert_profile_in(conn, &id, f, now, key.as_ref()))
            .await
    }

    pub(super) async fn insert_invitation(
        &self,
        inv: InvitationRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord> {
        let key = key.cloned();
        self.db
            .write(move |conn| insert_invitation_in(conn, inv, key.as_ref()))
            .await
    }
}
