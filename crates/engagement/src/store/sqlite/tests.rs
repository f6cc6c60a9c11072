use std::sync::Arc;

use super::*;

/// A store on a fresh SQLite file; keep the directory alive as long as the store.
async fn store() -> (tempfile::TempDir, SqliteEngagementStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .expect("open store");
    (dir, store)
}

async fn stats(store: &SqliteEngagementStore, post_id: &str) -> PostStatsRecord {
    let mut all = store
        .batch_get_post_stats(&[post_id.to_owned()])
        .await
        .expect("stats");
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// Counts straight from the rows, to check the maintained counts against.
async fn counted_from_rows(store: &SqliteEngagementStore, post_id: &str) -> PostStatsRecord {
    let mut counted = PostStatsRecord::zero(post_id);
    let rows = sqlx::query(
        "SELECT reaction_type, COUNT(*) AS n FROM reactions WHERE post_id = ? GROUP BY reaction_type",
    )
    .bind(post_id)
    .fetch_all(&store.db.reader)
    .await
    .unwrap();
    for row in rows {
        let t = ReactionType::from_number(row.get("reaction_type")).unwrap();
        counted.reactions[t.index()] = row.get("n");
    }
    let count = |sql: &'static str| {
        let reader = store.db.reader.clone();
        let post_id = post_id.to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(post_id)
                .fetch_one(&reader)
                .await
                .unwrap()
        }
    };
    counted.comments = count("SELECT COUNT(*) FROM comments WHERE post_id = ?").await;
    counted.shares = count("SELECT COUNT(*) FROM shares WHERE post_id = ?").await;
    counted
}

fn comment(id: &str, post_id: &str, member_id: &str, create_time: i64) -> CommentRecord {
    CommentRecord {
        id: id.into(),
        post_id: post_id.into(),
        member_id: member_id.into(),
        text: "well said".into(),
        create_time,
    }
}

fn share(id: &str, post_id: &str, member_id: &str, create_time: i64) -> ShareRecord {
    ShareRecord {
        id: id.into(),
        post_id: post_id.into(),
        member_id: member_id.into(),
        create_time,
    }
}

#[tokio::test]
async fn changing_a_reaction_type_moves_its_count() {
    let (_dir, store) = store().await;
    let first = store
        .react("p1", "m1", ReactionType::Like, 100)
        .await
        .unwrap();
    assert_eq!(first.reaction_type, ReactionType::Like);
    assert_eq!(first.create_time, 100);

    let changed = store
        .react("p1", "m1", ReactionType::Insightful, 200)
        .await
        .unwrap();
    assert_eq!(
        changed,
        ReactionRecord {
            post_id: "p1".into(),
            member_id: "m1".into(),
            reaction_type: ReactionType::Insightful,
            // The time of the first reaction survives a change of type.
            create_time: 100,
        }
    );

    let s = stats(&store, "p1").await;
    assert_eq!(s.reaction_count(ReactionType::Like), 0);
    assert_eq!(s.reaction_count(ReactionType::Insightful), 1);
    assert_eq!(s.total_reactions(), 1);
    assert_eq!(s, counted_from_rows(&store, "p1").await);
}

#[tokio::test]
async fn reacting_twice_with_the_same_type_counts_once() {
    let (_dir, store) = store().await;
    let first = store
        .react("p1", "m1", ReactionType::Love, 100)
        .await
        .unwrap();
    let again = store
        .react("p1", "m1", ReactionType::Love, 300)
        .await
        .unwrap();
    assert_eq!(again, first);

    let s = stats(&store, "p1").await;
    assert_eq!(s.reaction_count(ReactionType::Love), 1);
    assert_eq!(s.total_reactions(), 1);
    assert_eq!(s, counted_from_rows(&store, "p1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reactions_of_many_members_are_all_counted() {
    let (_dir, store) = store().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let t = ReactionType::ALL[i % 6];
                store
                    .react("p1", &format!("m{i}"), t, 1_000 + i as i64)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("react");
    }

    let s = stats(&store, "p1").await;
    assert_eq!(s.total_reactions(), 200);
    // 200 = 6 x 33 + 2: the first two types get one more.
    assert_eq!(s.reactions, [34, 34, 33, 33, 33, 33]);
    assert_eq!(s, counted_from_rows(&store, "p1").await);
}

#[tokio::test]
async fn comments_and_shares_are_counted_and_a_repeat_share_once() {
    let (_dir, store) = store().await;
    for (i, member) in ["m1", "m1", "m2"].into_iter().enumerate() {
        let c = comment(&format!("c{i}"), "p1", member, 100 + i as i64);
        assert_eq!(store.create_comment(c.clone()).await.unwrap(), c);
    }
    let first = store
        .record_share(share("s1", "p1", "m1", 500))
        .await
        .unwrap();
    assert_eq!(first, share("s1", "p1", "m1", 500));
    let repeat = store
        .record_share(share("s2", "p1", "m1", 900))
        .await
        .unwrap();
    assert_eq!(repeat, first, "a repeat share returns the first unchanged");
    store
        .record_share(share("s3", "p1", "m2", 600))
        .await
        .unwrap();

    let s = stats(&store, "p1").await;
    assert_eq!(s.comments, 3);
    assert_eq!(s.shares, 2);
    assert_eq!(s.total_reactions(), 0);
    assert_eq!(s, counted_from_rows(&store, "p1").await);
}

#[tokio::test]
async fn stats_come_in_request_order_with_zeros_for_unknown_posts() {
    let (_dir, store) = store().await;
    store
        .react("p1", "m1", ReactionType::Like, 100)
        .await
        .unwrap();
    store
        .react("p2", "m1", ReactionType::Funny, 100)
        .await
        .unwrap();
    store
        .react("p2", "m2", ReactionType::Funny, 100)
        .await
        .unwrap();
    store
        .create_comment(comment("c1", "p2", "m1", 100))
        .await
        .unwrap();

    let ids: Vec<String> = ["p2", "unknown", "p1", "p2"].map(String::from).to_vec();
    let all = store.batch_get_post_stats(&ids).await.unwrap();
    let order: Vec<&str> = all.iter().map(|s| s.post_id.as_str()).collect();
    assert_eq!(order, ["p2", "unknown", "p1", "p2"]);
    assert_eq!(all[0].reactions, [0, 0, 0, 0, 0, 2]);
    assert_eq!(all[0].comments, 1);
    assert_eq!(all[1], PostStatsRecord::zero("unknown"));
    assert_eq!(all[2].reactions, [1, 0, 0, 0, 0, 0]);
    assert_eq!(all[3], all[0]);

    assert!(store.batch_get_post_stats(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn stats_of_the_largest_batch_are_one_read() {
    let (_dir, store) = store().await;
    store
        .react("p4999", "m1", ReactionType::Support, 1)
        .await
        .unwrap();
    let ids: Vec<String> = (0..crate::domain::limits::MAX_BATCH_STATS)
        .map(|i| format!("p{i}"))
        .collect();
    let all = store.batch_get_post_stats(&ids).await.unwrap();
    assert_eq!(all.len(), ids.len());
    assert_eq!(all[4999].reaction_count(ReactionType::Support), 1);
    assert_eq!(all[0], PostStatsRecord::zero("p0"));
}

#[tokio::test]
async fn recent_activity_is_filtered_by_members_and_since_newest_first() {
    let (_dir, store) = store().await;
    store
        .react("p1", "m1", ReactionType::Like, 100)
        .await
        .unwrap();
    store
        .react("p2", "m1", ReactionType::Celebrate, 400)
        .await
        .unwrap();
    store
        .create_comment(comment("c1", "p1", "m2", 300))
        .await
        .unwrap();
    store
        .create_comment(comment("c2", "p3", "m1", 50))
        .await
        .unwrap();
    store
        .record_share(share("s1", "p3", "m2", 500))
        .await
        .unwrap();
    // Someone outside the set.
    store
        .react("p1", "m9", ReactionType::Love, 450)
        .await
        .unwrap();
    store
        .record_share(share("s2", "p1", "m9", 460))
        .await
        .unwrap();

    let members = vec!["m1".to_string(), "m2".to_string()];
    let got = store
        .list_recent_activity(&members, 100, 100)
        .await
        .unwrap();
    let activity = |member: &str, post: &str, kind, time| ActivityRecord {
        member_id: member.into(),
        post_id: post.into(),
        kind,
        create_time: time,
    };
    assert_eq!(
        got,
        [
            activity("m2", "p3", ActivityKind::Share, 500),
            activity(
                "m1",
                "p2",
                ActivityKind::Reaction(ReactionType::Celebrate),
                400
            ),
            activity("m2", "p1", ActivityKind::Comment, 300),
            // `since` is inclusive; the comment at 50 is older.
            activity("m1", "p1", ActivityKind::Reaction(ReactionType::Like), 100),
        ]
    );

    let newest_two = store.list_recent_activity(&members, 0, 2).await.unwrap();
    assert_eq!(newest_two, got[..2]);
    assert!(store
        .list_recent_activity(&[], 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_recent_activity(&members, 501, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_changed_reaction_shows_its_new_type_at_its_first_time() {
    let (_dir, store) = store().await;
    store
        .react("p1", "m1", ReactionType::Like, 100)
        .await
        .unwrap();
    store
        .react("p1", "m1", ReactionType::Funny, 200)
        .await
        .unwrap();
    let got = store
        .list_recent_activity(&["m1".to_string()], 0, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, ActivityKind::Reaction(ReactionType::Funny));
    assert_eq!(got[0].create_time, 100);
}

#[tokio::test]
async fn data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engagement.db");
    let store = SqliteEngagementStore::open(&path).await.unwrap();
    store
        .react("p1", "m1", ReactionType::Like, 1)
        .await
        .unwrap();
    store.close().await;
    let store = SqliteEngagementStore::open(&path).await.unwrap();
    assert_eq!(stats(&store, "p1").await.total_reactions(), 1);
}
