//! What both backends share of reading and writing rows: the records' column mappings, where a
//! page starts, and the skills' JSON.

use crate::domain::{Cursor, FollowCursor, FollowTarget, FollowingRecord};
use crate::error::ProfileError;

use super::StoreResult;

/// A [`ProfileRecord`](crate::domain::ProfileRecord) from a row of the backend's
/// `PROFILE_COLUMNS`, each column read with `$get` (sqlx's `try_get`, or rusqlite's `get`
/// inside a SQLite write): one mapping for every row type.
macro_rules! profile_record {
    ($row:expr, $get:ident) => {{
        let row = $row;
        let skills: String = row.$get("skills")?;
        let positions: String = row.$get("positions")?;
        let education: String = row.$get("education")?;
        Ok($crate::domain::ProfileRecord {
            id: row.$get("id")?,
            handle: row.$get("handle")?,
            display_name: row.$get("display_name")?,
            headline: row.$get("headline")?,
            summary: row.$get("summary")?,
            location: row.$get("location")?,
            industry: row.$get("industry")?,
            skills: serde_json::from_str(&skills)
                .map_err(|e| $crate::error::ProfileError::corrupt(format!("skills: {e}")))?,
            positions: $crate::domain::from_json(&positions, "positions")?,
            education: $crate::domain::from_json(&education, "education")?,
            open_to_work: row.$get("open_to_work")?,
            create_time: row.$get("create_time")?,
            update_time: row.$get("update_time")?,
            connection_count: row.$get("connection_count")?,
            follower_count: row.$get("follower_count")?,
        })
    }};
}
pub(super) use profile_record;

/// An [`InvitationRecord`](crate::domain::InvitationRecord) from a row of
/// [`INVITATION_COLUMNS`](super::INVITATION_COLUMNS) (see `profile_record!`).
macro_rules! invitation_record {
    ($row:expr, $get:ident) => {{
        let row = $row;
        let state: i64 = row.$get("state")?;
        Ok($crate::domain::InvitationRecord {
            id: row.$get("id")?,
            inviter_id: row.$get("inviter_id")?,
            invitee_id: row.$get("invitee_id")?,
            message: row.$get("message")?,
            state: $crate::domain::InvitationState::from_i64(state).ok_or_else(|| {
                $crate::error::ProfileError::corrupt(format!("invitation state {state}"))
            })?,
            create_time: row.$get("create_time")?,
        })
    }};
}
pub(super) use invitation_record;

/// A [`FollowingRecord`] from the columns of [`FOLLOWING_PAGE`](super::FOLLOWING_PAGE).
pub(super) fn following_record(
    kind: i64,
    target: String,
    create_time: i64,
) -> StoreResult<FollowingRecord> {
    Ok(FollowingRecord {
        target: FollowTarget::from_parts(kind, target)
            .ok_or_else(|| ProfileError::corrupt(format!("follow kind {kind}")))?,
        create_time,
    })
}

/// The `(time, key)` a page of connections, followers or invitations continues below: the
/// cursor's, or above everything for the first page.
pub(super) fn page_after(after: Option<Cursor>) -> (i64, String) {
    after.map_or((i64::MAX, String::new()), |c| (c.time, c.key))
}

/// The `(time, kind, target)` a page of [`FOLLOWING_PAGE`](super::FOLLOWING_PAGE) continues
/// below: the cursor's, or above everything for the first page.
pub(super) fn following_after(after: Option<FollowCursor>) -> (i64, i64, String) {
    after.map_or((i64::MAX, i64::MAX, String::new()), |c| {
        (c.time, c.kind, c.target)
    })
}

/// The skills as the JSON array both backends store.
pub(super) fn skills_json(skills: &[String]) -> String {
    serde_json::to_string(skills).unwrap_or_else(|_| "[]".into())
}
