//! Rows to records, uniqueness errors and the idempotency keys, for every area.

use super::*;

pub(super) fn profile_from_row(row: &PgRow) -> StoreResult<ProfileRecord> {
    let skills: String = row.try_get("skills")?;
    Ok(ProfileRecord {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        display_name: row.try_get("display_name")?,
        headline: row.try_get("headline")?,
        summary: row.try_get("summary")?,
        location: row.try_get("location")?,
        industry: row.try_get("industry")?,
        skills: serde_json::from_str(&skills)
            .map_err(|e| ProfileError::corrupt(format!("skills: {e}")))?,
        positions: from_json(&row.try_get::<String, _>("positions")?, "positions")?,
        education: from_json(&row.try_get::<String, _>("education")?, "education")?,
        open_to_work: row.try_get("open_to_work")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
        connection_count: row.try_get("connection_count")?,
        follower_count: row.try_get("follower_count")?,
    })
}

pub(super) fn invitation_from_row(row: &PgRow) -> StoreResult<InvitationRecord> {
    let state: i64 = row.try_get("state")?;
    Ok(InvitationRecord {
        id: row.try_get("id")?,
        inviter_id: row.try_get("inviter_id")?,
        invitee_id: row.try_get("invitee_id")?,
        message: row.try_get("message")?,
        state: InvitationState::from_i64(state)
            .ok_or_else(|| ProfileError::corrupt(format!("invitation state {state}")))?,
        create_time: row.try_get("create_time")?,
    })
}

pub(super) fn skills_json(skills: &[String]) -> String {
    serde_json::to_string(skills).unwrap_or_else(|_| "[]".into())
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

pub(super) async fn exists<'e, E>(executor: E, sql: &str, id: &str) -> StoreResult<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    Ok(sqlx::query(sql)
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
