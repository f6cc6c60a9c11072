//! The writes behind several of the store's methods: idempotent creates (what a key recorded,
//! the first result again, racing retries), and closing invitations.

use super::*;

impl PgProfileStore {
    /// Moves a pending invitation to `state` (declined by its invitee or withdrawn by its
    /// inviter) as `member_id`, under the pair's lock like accepting.
    pub(super) async fn close_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        state: InvitationState,
        now: i64,
    ) -> StoreResult<InvitationRecord> {
        let pair: Option<(String, String)> =
            sqlx::query_as("SELECT inviter_id, invitee_id FROM invitations WHERE id = $1")
                .bind(invitation_id)
                .fetch_optional(&self.db.pool)
                .await?;
        let (inviter_id, invitee_id) = pair.ok_or(ProfileError::NotFound("invitation"))?;
        let mut tx = self.db.pool.begin().await?;
        self.lock_pair(&mut tx, &inviter_id, &invitee_id).await?;
        let row = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1 FOR UPDATE"
        ))
        .bind(invitation_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ProfileError::NotFound("invitation"))?;
        let mut inv = invitation_from_row(&row)?;
        check_closer(&inv, member_id, state)?;
        sqlx::query(&numbered(SET_INVITATION_STATE))
            .bind(state as i64)
            .bind(now)
            .bind(invitation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        inv.state = state;
        Ok(inv)
    }

    /// Serializes the transactions that change how `a` and `b` relate (see the module docs);
    /// released at commit or rollback. Keyed by schema too, so services and test schemas
    /// sharing a server do not wait on each other (a hash collision only costs a wait).
    pub(super) async fn lock_pair(
        &self,
        conn: &mut PgConnection,
        a: &str,
        b: &str,
    ) -> StoreResult<()> {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{} pair {low} {high}", self.db.schema))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The resource an idempotency key created, if a request with it succeeded.
    pub(super) async fn recorded(&self, key: &IdempotencyKey) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(&numbered(RECORDED_KEY))
            .bind(&key.caller)
            .bind(&key.request_id)
            .fetch_optional(&self.db.pool)
            .await?)
    }

    /// After a failed create with `key` (its transaction rolled back): when a request with the
    /// same key has committed meanwhile, the failure was the race with it (its row, its pending
    /// invitation or its key), and its resource is the answer.
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
        sqlx::query(&numbered(INVITATION_BY_ID))
            .bind(id)
            .fetch_optional(&self.db.pool)
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
        let mut tx = self.db.pool.begin().await?;
        let result = insert_profile_row(&mut tx, id, &f, now, false).await;
        if let Err(e) = result {
            let err = match violated_unique(&e) {
                Some("profiles_pkey") => ProfileError::ProfileExists,
                Some(_) => {
                    // The failed statement aborted the transaction: look outside it. The
                    // member's own profile wins over the handle, as on SQLite.
                    tx.rollback().await?;
                    if profile_exists(&self.db.pool, id).await? {
                        ProfileError::ProfileExists
                    } else {
                        ProfileError::HandleTaken
                    }
                }
                None => e.into(),
            };
            return Err(err);
        }
        write_index_rows(&mut tx, id, &f.search_document()).await?;
        if let Some(key) = key {
            record_idempotency_key(&mut tx, key, id, now).await?;
        }
        let event = events::profile_created(now, id, f.handle.as_str(), &f.display_name);
        outbox::append_postgres(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(ProfileRecord {
            id: id.to_owned(),
            handle: f.handle.as_str().to_owned(),
            display_name: f.display_name,
            headline: f.headline,
            summary: f.summary,
            location: f.location,
            industry: f.industry,
            skills: f.skills,
            positions: f.positions,
            education: f.education,
            open_to_work: f.open_to_work,
            create_time: now,
            update_time: now,
            connection_count: 0,
            follower_count: 0,
        })
    }

    pub(super) async fn insert_invitation(
        &self,
        inv: InvitationRecord,
        key: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord> {
        let mut tx = self.db.pool.begin().await?;
        self.lock_pair(&mut tx, &inv.inviter_id, &inv.invitee_id)
            .await?;
        if !profile_exists(&mut *tx, &inv.inviter_id).await? {
            return Err(ProfileError::NotFound("inviter"));
        }
        // A block either way looks exactly like a missing invitee.
        if !profile_exists(&mut *tx, &inv.invitee_id).await?
            || blocked_either_way(&mut tx, &inv.inviter_id, &inv.invitee_id).await?
        {
            return Err(ProfileError::NotFound("invitee"));
        }
        let connected = sqlx::query(&numbered(CONNECTED))
            .bind(&inv.inviter_id)
            .bind(&inv.invitee_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if connected {
            return Err(ProfileError::AlreadyConnected);
        }
        // The invitee already asked: both want the connection, so accept theirs. The pair's
        // lock makes this read current.
        let reverse = sqlx::query(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE inviter_id = $1 AND invitee_id = $2 AND state = $3 FOR UPDATE"
        ))
        .bind(&inv.invitee_id)
        .bind(&inv.inviter_id)
        .bind(InvitationState::Pending as i64)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = reverse {
            let theirs = invitation_from_row(&row)?;
            let (accepted, made) = accept_in(&mut tx, theirs, inv.create_time).await?;
            if let Some(key) = key {
                record_idempotency_key(&mut tx, key, &accepted.id, inv.create_time).await?;
            }
            outbox::append_postgres(&mut tx, made.as_slice()).await?;
            tx.commit().await?;
            return Ok(accepted);
        }
        let result = sqlx::query(
            "INSERT INTO invitations (id, inviter_id, invitee_id, message, state, create_time, \
             update_time) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&inv.id)
        .bind(&inv.inviter_id)
        .bind(&inv.invitee_id)
        .bind(&inv.message)
        .bind(InvitationState::Pending as i64)
        .bind(inv.create_time)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if violated_unique(&e) == Some("invitations_one_pending_per_pair") => {
                return Err(ProfileError::InvitationPending)
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(key) = key {
            record_idempotency_key(&mut tx, key, &inv.id, inv.create_time).await?;
        }
        tx.commit().await?;
        Ok(InvitationRecord {
            state: InvitationState::Pending,
            ..inv
        })
    }
}
