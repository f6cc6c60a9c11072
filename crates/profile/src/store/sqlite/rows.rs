//! Rows to records, uniqueness errors and the idempotency keys, for every area.

use super::*;

pub(super) fn profile_from_row(row: &SqliteRow) -> StoreResult<ProfileRecord> {
    profile_record!(row, try_get)
}

pub(super) fn invitation_from_row(row: &SqliteRow) -> StoreResult<InvitationRecord> {
    invitation_record!(row, try_get)
}

/// [`profile_from_row`] for a row read inside a write.
pub(super) fn profile_from_write_row(row: &rusqlite::Row<'_>) -> StoreResult<ProfileRecord> {
    profile_record!(row, get)
}

/// [`invitation_from_row`] for a row read inside a write.
pub(super) fn invitation_from_write_row(row: &rusqlite::Row<'_>) -> StoreResult<InvitationRecord> {
    invitation_record!(row, get)
}

/// A UNIQUE or PRIMARY KEY constraint failed (what sqlx's `is_unique_violation` matched).
pub(super) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

/// The `table.column` a unique violation names: SQLite says
/// "UNIQUE constraint failed: profiles.handle_key".
pub(super) fn unique_violation_column(err: &rusqlite::Error) -> Option<&str> {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) if is_unique_violation(err) => {
            message.rsplit(": ").next()
        }
        _ => None,
    }
}

/// `?2, ?3, ...`: numbered placeholders for an `IN` list of `n` values after `?1`, so one
/// binding serves every place the list appears.
pub(super) fn numbered_placeholders(n: usize) -> String {
    (2..n + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the member `id` has a profile, inside a write.
pub(super) fn profile_exists(conn: &rusqlite::Connection, id: &str) -> StoreResult<bool> {
    Ok(conn.prepare_cached(PROFILE_EXISTS)?.exists([id])?)
}

/// The first row of `sql` mapped by `f` (or none), inside a write.
pub(super) fn fetch_optional<T, P: rusqlite::Params>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: P,
    f: fn(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query_and_then(params, f)?;
    rows.next().transpose()
}

/// Records in the write that `key` created `resource_id`. A key already recorded is a unique
/// violation, which the caller resolves by replaying.
pub(super) fn record_idempotency_key(
    conn: &rusqlite::Connection,
    key: &IdempotencyKey,
    resource_id: &str,
    now: i64,
) -> StoreResult<()> {
    conn.prepare_cached(INSERT_IDEMPOTENCY_KEY)?.execute((
        &key.caller,
        &key.request_id,
        resource_id,
        now,
    ))?;
    Ok(())
}
