//! The SQLite store on its own: constraint errors, blocks and relationships.

use super::*;
use crate::domain::Handle;

async fn store() -> (SqliteProfileStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteProfileStore::open(&dir.path().join("profile.db"))
        .await
        .unwrap();
    (store, dir)
}

fn fields(handle: &str) -> ProfileFields {
    ProfileFields {
        handle: Handle::parse(handle).unwrap(),
        display_name: handle.into(),
        headline: String::new(),
        summary: String::new(),
        location: String::new(),
        industry: String::new(),
        skills: Vec::new(),
    }
}

#[tokio::test]
async fn a_taken_id_is_told_apart_from_a_taken_handle() {
    let (s, _dir) = store().await;
    s.create_profile("ada", fields("ada"), 1).await.unwrap();
    // Id and handle both taken: the id wins, so a retried create says the profile exists.
    let err = s.create_profile("ada", fields("ada"), 2).await.unwrap_err();
    assert!(matches!(err, ProfileError::ProfileExists), "{err:?}");
    let err = s
        .create_profile("ada", fields("other"), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::ProfileExists), "{err:?}");
    let err = s.create_profile("bob", fields("Ada"), 2).await.unwrap_err();
    assert!(matches!(err, ProfileError::HandleTaken), "{err:?}");
}

#[tokio::test]
async fn blocks_are_stored_once_and_never_for_oneself() {
    let (s, _dir) = store().await;
    s.create_profile("ada", fields("ada"), 1).await.unwrap();
    s.create_profile("bob", fields("bob"), 1).await.unwrap();
    s.block_member("ada", "bob", 10).await.unwrap();
    s.block_member("ada", "bob", 20).await.unwrap();
    let times: Vec<i64> = sqlx::query_scalar("SELECT create_time FROM blocks")
        .fetch_all(&s.db.reader)
        .await
        .unwrap();
    assert_eq!(times, [10], "blocking again keeps the first record");
    let err = s.block_member("ada", "ada", 30).await.unwrap_err();
    assert!(matches!(err, ProfileError::Storage(_)), "{err:?}");
    let err = s.block_member("zed", "ada", 30).await.unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("member")), "{err:?}");
}

#[tokio::test]
async fn relationship_lookups_use_the_indexes() {
    let (s, _dir) = store().await;
    // Each direction of "blocked either way" is an index search, not a scan.
    for sql in [
        "SELECT blocked_id FROM blocks WHERE blocker_id = ?1 AND blocked_id IN (?2, ?3) \
         UNION SELECT blocker_id FROM blocks WHERE blocked_id = ?1 AND blocker_id IN (?2, ?3)",
        "SELECT other_id FROM connections WHERE member_id = ?1 AND other_id IN (?2, ?3)",
    ] {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind("a")
            .bind("b")
            .bind("c")
            .fetch_all(&s.db.reader)
            .await
            .unwrap();
        let details: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            details.iter().all(|d| !d.starts_with("SCAN")),
            "{sql}: {details:?}"
        );
        assert!(
            details.iter().any(|d| d.starts_with("SEARCH")),
            "{details:?}"
        );
    }
}

#[test]
fn numbered_placeholders_follow_the_first() {
    assert_eq!(numbered_placeholders(3), "?2, ?3, ?4");
    assert_eq!(numbered_placeholders(1), "?2");
}
