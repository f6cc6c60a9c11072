//! The SQLite store on its own: what only its SQL shows (stored rows, query plans). Behaviour
//! both backends share is in `store::tests`.

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
        positions: Vec::new(),
        education: Vec::new(),
        open_to_work: false,
    }
}

#[tokio::test]
async fn blocking_again_keeps_the_first_record() {
    let (s, _dir) = store().await;
    s.create_profile("ada", fields("ada"), 1, None)
        .await
        .unwrap();
    s.create_profile("bob", fields("bob"), 1, None)
        .await
        .unwrap();
    s.block_member("ada", "bob", 10).await.unwrap();
    s.block_member("ada", "bob", 20).await.unwrap();
    let times: Vec<i64> = sqlx::query_scalar("SELECT create_time FROM blocks")
        .fetch_all(&s.db.reader)
        .await
        .unwrap();
    assert_eq!(times, [10]);
}

#[tokio::test]
async fn a_key_is_recorded_with_what_it_created_and_only_then() {
    let (s, _dir) = store().await;
    let key = IdempotencyKey {
        caller: "member:ada".into(),
        request_id: "r1".into(),
    };
    s.create_profile("ada", fields("ada"), 1, Some(&key))
        .await
        .unwrap();
    let bobs = IdempotencyKey {
        caller: "member:bob".into(),
        request_id: "r1".into(),
    };
    s.create_profile("bob", fields("ada"), 2, Some(&bobs))
        .await
        .unwrap_err();
    let rows: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT caller, request_id, resource_id, create_time FROM idempotency_keys")
            .fetch_all(&s.db.reader)
            .await
            .unwrap();
    assert_eq!(rows, [("member:ada".into(), "r1".into(), "ada".into(), 1)]);
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

#[tokio::test]
async fn search_filters_and_suggestions_use_indexes() {
    let (s, _dir) = store().await;
    // Full-text runs on the FTS5 index (compiled into sqlx's bundled SQLite); filters and the
    // join back to profiles are index searches, never scans of profiles.
    for sql in [
        "SELECT p.id FROM profile_search CROSS JOIN profiles p \
         ON p.search_docid = profile_search.rowid \
         WHERE profile_search MATCH '\"rust\"' AND p.location_key = 'berlin' \
         AND p.id IN (SELECT member_id FROM profile_skills WHERE skill_key = 'go')",
        "SELECT p.id FROM profiles p WHERE p.id IN (SELECT member_id FROM profile_companies \
         WHERE company_key = 'acme') ORDER BY p.update_time DESC, p.id LIMIT 200",
        "SELECT c.other_id FROM connections c WHERE c.member_id = 'a' \
         AND (c.create_time, c.other_id) >= (5, 'x')",
    ] {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&s.db.reader)
            .await
            .unwrap();
        let details: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect();
        assert!(
            details
                .iter()
                .all(|d| !d.starts_with("SCAN p ") && !d.starts_with("SCAN c ") && d != "SCAN p"),
            "{sql}: {details:?}"
        );
        if sql.contains("MATCH") {
            assert!(
                details[0].starts_with("SCAN profile_search VIRTUAL TABLE INDEX 0:M"),
                "{details:?}"
            );
        }
    }
}
