//! Negative feedback: hidden posts, muted hashtags and authors.

use super::*;

impl PgEngagementStore {
    pub(super) async fn mute_in(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64> {
        let kind = mute.kind.number() as i16;
        let mut tx = self.db.pool.begin().await?;
        // One member's mutes are made one at a time, so the cap holds under racing requests.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        let first: Option<i64> = sqlx::query_scalar(&numbered(MUTE_TIME_SQL))
            .bind(member_id)
            .bind(kind)
            .bind(&mute.target)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(first) = first {
            return Ok(first);
        }
        if let Some(cap) = mute.kind.cap() {
            let held: i64 = sqlx::query_scalar(&numbered(MUTE_COUNT_SQL))
                .bind(member_id)
                .bind(kind)
                .fetch_one(&mut *tx)
                .await?;
            if held >= cap as i64 {
                return Err(mute_limit_reached(mute.kind, cap));
            }
        }
        sqlx::query(&numbered(MUTE_INSERT_SQL))
            .bind(member_id)
            .bind(kind)
            .bind(&mute.target)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        outbox::append_postgres(
            &mut tx,
            &[events::at(now, events::muted(member_id, mute, now))],
        )
        .await?;
        tx.commit().await?;
        Ok(now)
    }
}

impl PgEngagementStore {
    pub(super) async fn unmute_in(&self, member_id: &str, mute: &Mute) -> StoreResult<bool> {
        let mut tx = self.db.pool.begin().await?;
        let removed = sqlx::query(&numbered(MUTE_DELETE_SQL))
            .bind(member_id)
            .bind(mute.kind.number() as i16)
            .bind(&mute.target)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if removed {
            outbox::append_postgres(
                &mut tx,
                &[events::at(now_micros(), events::unmuted(member_id, mute))],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}
