//! Rows to records, uniqueness errors and the idempotency keys, for every area.

use super::*;

pub(super) fn profile_from_row(row: &PgRow) -> StoreResult<ProfileRecord> {
    profile_record!(row, try_get)
}

pub(super) fn invitation_from_row(row: &PgRow) -> StoreResult<InvitationRecord> {
    invitation_record!(row, try_get)
}

/// The constraint a unique violation names (see the migrations), or `None` for other errors.
pub(super) fn violated_unique(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Some(db.constraint().unwrap_or_default())
        }
        _ => None,
    }
}

/// Whether the member `id` has a profile.
pub(super) async fn profile_exists<'e, E>(executor: E, id: &str) -> StoreResult<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    // Numbered once: most writes ask it once or twice.
    static SQL: LazyLock<String> = LazyLock::new(|| numbered(PROFILE_EXISTS));
    Ok(sqlx::query(SQL.as_str())
        .bind(id)
        .fetch_optional(executor)
        .await?
        .is_some())
}

/// Records in the transaction that `key` created `resource_id`. A key already recorded is a
/// unique violation, which the caller resolves by replaying.
pub(super) async fn record_idempotency_key(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    resource_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(&numbered(INSERT_IDEMPOTENCY_KEY))
        .bind(&key.caller)
        .bind(&key.request_id)
        .bind(resource_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
