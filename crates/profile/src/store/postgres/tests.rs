//! The PostgreSQL store on its own: what only its SQL shows (stored rows, query plans,
//! migrations). Behaviour both backends share is in `store::tests`.

use pronet_common::testing::postgres_schema;

use super::*;
use crate::domain::Handle;

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
async fn reopening_applies_no_migration_twice() {
    let Some(t) = postgres_schema("pg_reopen").await else {
        return;
    };
    let s = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
    s.create_profile("ada", fields("ada"), 1, None)
        .await
        .unwrap();
    s.close().await;
    let s = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
    assert!(s.get_profile("ada", None).await.unwrap().is_some());
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8]);
    s.close().await;
}

#[tokio::test]
async fn blocking_again_keeps_the_first_record() {
    let Some(t) = postgres_schema("pg_block_once").await else {
        return;
    };
    let s = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
    s.create_profile("ada", fields("ada"), 1, None)
        .await
        .unwrap();
    s.create_profile("bob", fields("bob"), 1, None)
        .await
        .unwrap();
    s.block_member("ada", "bob", 10).await.unwrap();
    s.block_member("ada", "bob", 20).await.unwrap();
    let times: Vec<i64> = sqlx::query_scalar("SELECT create_time FROM blocks")
        .fetch_all(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(times, [10]);
    s.close().await;
}

#[tokio::test]
async fn a_key_is_recorded_with_what_it_created_and_only_then() {
    let Some(t) = postgres_schema("pg_key_rows").await else {
        return;
    };
    let s = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
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
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, [("member:ada".into(), "r1".into(), "ada".into(), 1)]);
    s.close().await;
}

#[tokio::test]
async fn hot_queries_use_the_indexes() {
    let Some(t) = postgres_schema("pg_plans").await else {
        return;
    };
    let s = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
    let mut conn = s.db.pool.acquire().await.unwrap();
    // Tables this small are scanned whatever the indexes; forbid that to see which exist.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let ids = vec!["b".to_string(), "c".to_string()];
    let plans = [
        (RELATIONSHIPS.to_string(), true),
        (
            format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $2 AND {VISIBLE_TO_VIEWER}"),
            false,
        ),
        (
            "SELECT other_id, create_time FROM connections \
             WHERE member_id = $1 AND (create_time, other_id) < ($2, $3) \
             ORDER BY create_time DESC, other_id DESC LIMIT 10"
                .to_string(),
            false,
        ),
        (
            format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations \
                 WHERE invitee_id = $1 AND state = 1 AND (create_time, id) < ($2, $3) \
                 ORDER BY create_time DESC, id DESC LIMIT 10"
            ),
            false,
        ),
        (
            "SELECT target_kind, target, create_time FROM follows \
             WHERE member_id = $1 AND (create_time, target_kind, target) < ($2, 3, $3) \
             ORDER BY create_time DESC, target_kind DESC, target DESC LIMIT 10"
                .to_string(),
            false,
        ),
    ];
    for (sql, takes_list) in plans {
        let explain = format!("EXPLAIN {sql}");
        let query = sqlx::query_scalar::<_, String>(&explain).bind("a");
        let query = if takes_list {
            query.bind(&ids)
        } else if sql.contains("$3") {
            query.bind(i64::MAX).bind("")
        } else {
            query.bind("b")
        };
        let plan = query.fetch_all(&mut *conn).await.unwrap().join("\n");
        assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
        // Pages come straight off an index, already in order.
        if !takes_list {
            assert!(!plan.contains("Sort"), "{sql}\n{plan}");
        }
    }
    drop(conn);
    s.close().await;
}
