//! Invitations: creating, accepting and closing them.

use super::*;

/// Accepts the pending `inv` in the write and connects its members both ways; with the
/// `ConnectionMade` to append unless they already were connected (by an import).
pub(super) fn accept_in(
    conn: &rusqlite::Connection,
    mut inv: InvitationRecord,
    now: i64,
) -> StoreResult<(InvitationRecord, Option<NewEvent>)> {
    conn.prepare_cached(SET_INVITATION_STATE)?.execute((
        InvitationState::Accepted as i64,
        now,
        &inv.id,
    ))?;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO connections (member_id, other_id, create_time) \
             VALUES (?1, ?2, ?3), (?2, ?1, ?3)",
        )?
        .execute((&inv.inviter_id, &inv.invitee_id, now))?;
    let made =
        (inserted > 0).then(|| events::connection_made(now, &inv.inviter_id, &inv.invitee_id));
    inv.state = InvitationState::Accepted;
    Ok((inv, made))
}

pub(super) fn close_invitation_in(
    conn: &rusqlite::Connection,
    invitation_id: &str,
    member_id: &str,
    state: InvitationState,
    now: i64,
) -> StoreResult<InvitationRecord> {
    let mut inv = fetch_optional(
        conn,
        INVITATION_BY_ID,
        [invitation_id],
        invitation_from_write_row,
    )?
    .ok_or(ProfileError::NotFound("invitation"))?;
    check_closer(&inv, member_id, state)?;
    conn.prepare_cached(SET_INVITATION_STATE)?
        .execute((state as i64, now, invitation_id))?;
    inv.state = state;
    Ok(inv)
}

pub(super) fn insert_invitation_in(
    conn: &rusqlite::Connection,
    inv: InvitationRecord,
    key: Option<&IdempotencyKey>,
) -> StoreResult<InvitationRecord> {
    if !profile_exists(conn, &inv.inviter_id)? {
        return Err(ProfileError::NotFound("inviter"));
    }
    // A block either way looks exactly like a missing invitee.
    if !profile_exists(conn, &inv.invitee_id)?
        || blocked_either_way(conn, &inv.inviter_id, &inv.invitee_id)?
    {
        return Err(ProfileError::NotFound("invitee"));
    }
    let connected = conn
        .prepare_cached(CONNECTED)?
        .exists((&inv.inviter_id, &inv.invitee_id))?;
    if connected {
        return Err(ProfileError::AlreadyConnected);
    }
    // The invitee already asked: both want the connection, so accept theirs.
    let reverse = fetch_optional(
        conn,
        &format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE inviter_id = ? AND invitee_id = ? AND state = ?"
        ),
        (
            &inv.invitee_id,
            &inv.inviter_id,
            InvitationState::Pending as i64,
        ),
        invitation_from_write_row,
    )?;
    if let Some(theirs) = reverse {
        let (accepted, made) = accept_in(conn, theirs, inv.create_time)?;
        if let Some(key) = key {
            record_idempotency_key(conn, key, &accepted.id, inv.create_time)?;
        }
        outbox::append_sqlite(conn, made.as_slice())?;
        return Ok(accepted);
    }
    let result = conn
        .prepare_cached(
            "INSERT INTO invitations (id, inviter_id, invitee_id, message, state, create_time, \
             update_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute((
            &inv.id,
            &inv.inviter_id,
            &inv.invitee_id,
            &inv.message,
            InvitationState::Pending as i64,
            inv.create_time,
            inv.create_time,
        ));
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ProfileError::InvitationPending),
        Err(e) => return Err(e.into()),
    }
    if let Some(key) = key {
        record_idempotency_key(conn, key, &inv.id, inv.create_time)?;
    }
    Ok(InvitationRecord {
        state: InvitationState::Pending,
        ..inv
    })
}

pub(super) fn accept_invitation_in(
    conn: &rusqlite::Connection,
    invitation_id: &str,
    member_id: &str,
    now: i64,
) -> StoreResult<InvitationRecord> {
    let inv = fetch_optional(
        conn,
        INVITATION_BY_ID,
        [invitation_id],
        invitation_from_write_row,
    )?
    .ok_or(ProfileError::NotFound("invitation"))?;
    if inv.invitee_id != member_id {
        return Err(ProfileError::NotInvitee("accept"));
    }
    if inv.state != InvitationState::Pending {
        return Err(ProfileError::InvitationNotPending);
    }
    let (inv, made) = accept_in(conn, inv, now)?;
    outbox::append_sqlite(conn, made.as_slice())?;
    Ok(inv)
}
