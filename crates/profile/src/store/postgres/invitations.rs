//! Invitations: creating, accepting and closing them.

use super::*;

/// Accepts the pending `inv` in the transaction and connects its members both ways; the
/// caller holds the pair's lock. With the `ConnectionMade` to append unless they already were
/// connected (by an import).
pub(super) async fn accept_in(
    conn: &mut PgConnection,
    mut inv: InvitationRecord,
    now: i64,
) -> StoreResult<(InvitationRecord, Option<NewEvent>)> {
    sqlx::query(&numbered(SET_INVITATION_STATE))
        .bind(InvitationState::Accepted as i64)
        .bind(now)
        .bind(&inv.id)
        .execute(&mut *conn)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO connections (member_id, other_id, create_time) \
         VALUES ($1, $2, $3), ($2, $1, $3) ON CONFLICT (member_id, other_id) DO NOTHING",
    )
    .bind(&inv.inviter_id)
    .bind(&inv.invitee_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let made =
        (inserted > 0).then(|| events::connection_made(now, &inv.inviter_id, &inv.invitee_id));
    inv.state = InvitationState::Accepted;
    Ok((inv, made))
}
