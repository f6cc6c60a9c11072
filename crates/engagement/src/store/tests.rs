//! One store suite, run against both backends: each `check_*` takes any store, and
//! `store_tests!` runs it on a fresh SQLite file (`check_x::sqlite`) and on a fresh PostgreSQL
//! schema (`check_x::postgres`, skipped loudly outside CI when PostgreSQL is unreachable).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pronet_common::outbox::Payload;
use pronet_common::rng::SplitMix64;
use pronet_common::testing::postgres_schema;
use pronet_common::time::to_timestamp;
use pronet_proto::engagement::v1::ReactionType as PbReactionType;
use pronet_proto::events::v1 as pb;

use super::postgres::PgEngagementStore;
use super::sqlite::SqliteEngagementStore;
use super::*;
use crate::domain::{
    limits, ActivityKind, CommentCursor, CommentListing, CommentOrder, EngagementImport,
    ImportCounts, ImpressionRecord, ReactionQuery, MAX_MUTES,
};
use crate::error::EngagementError;

type Store = Arc<dyn EngagementStore>;

/// Tasks writing at once in the concurrency checks.
const TASKS: usize = 32;

/// For each `check_x`, a module `check_x` with tests `sqlite` and `postgres` running it.
macro_rules! store_tests {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
                    .await
                    .expect("open store");
                super::$check(Arc::new(store.clone())).await;
                store.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(t) = postgres_schema(stringify!($check)).await else {
                    return;
                };
                let store = PgEngagementStore::open(&t.url, &t.schema)
                    .await
                    .expect("open store");
                super::$check(Arc::new(store.clone())).await;
                // Connections first, then the schema (when `t` drops).
                store.close().await;
                drop(t);
            }
        }
    )*};
}

store_tests!(
    check_a_first_reaction_is_created_and_counted,
    check_changing_a_reaction_type_moves_its_count,
    check_reacting_twice_with_the_same_type_counts_once,
    check_a_thousand_members_reacting_at_once_are_all_counted,
    check_one_member_reacting_at_once_with_every_type_leaves_one_reaction,
    check_members_changing_reactions_on_many_posts_at_once_keep_counts_exact,
    check_comments_are_stored_and_counted,
    check_a_comment_retried_with_its_request_id_is_stored_once,
    check_racing_comment_retries_store_one_comment,
    check_repeated_shares_are_counted_once,
    check_repeated_shares_racing_are_counted_once,
    check_mixed_engagement_at_once_keeps_counts_equal_to_rows,
    check_stats_come_in_request_order_with_zeros_for_unknown_posts,
    check_stats_of_the_largest_batch_are_one_read,
    check_recent_activity_is_filtered_by_members_and_since_newest_first,
    check_recent_activity_limits_cut_exactly,
    check_recent_activity_breaks_time_ties_bytewise_by_kind_member_and_post,
    check_a_changed_reaction_shows_its_new_type_at_its_first_time,
    check_unreact_removes_the_reaction_and_its_count,
    check_reacting_and_unreacting_at_once_keeps_counts_exact,
    check_replies_are_counted_on_the_post_and_their_top_level_comment,
    check_deleting_a_top_level_comment_takes_its_replies_and_reactions,
    check_deleting_a_reply_uncounts_it_once,
    check_comment_reactions_are_one_per_member_and_move_counts,
    check_an_edit_sets_the_text_and_update_time,
    check_replies_reactions_and_deletes_at_once_leave_no_phantom_counts,
    check_top_level_comments_page_by_relevance_and_newest,
    check_replies_page_oldest_first,
    check_reactions_list_newest_first_for_members_in_or_out,
    check_impressions_count_once_per_member_post_and_day,
    check_racing_impressions_count_once,
    check_an_import_counts_exactly_as_the_one_by_one_writes,
    check_a_retried_import_is_skipped_whole_and_changes_no_count,
    check_an_imported_reaction_of_another_type_moves_its_count,
    check_a_full_import_keeps_counts_equal_to_rows,
    check_imports_racing_reacts_keep_counts_exact,
    check_reacting_writes_reaction_set_only_when_the_reaction_changes,
    check_unreacting_writes_the_removed_type_only_when_there_was_one,
    check_a_comment_writes_comment_created_once_and_a_failed_one_none,
    check_deleting_a_top_level_comment_writes_one_event_per_comment_removed,
    check_edits_and_comment_reactions_write_no_events,
    check_a_share_writes_share_recorded_only_when_counted,
    check_impressions_write_the_new_posts_and_first_views_once,
    check_an_import_writes_the_events_of_what_it_imported,
    check_a_retried_import_writes_no_events,
    check_export_is_the_current_engagement_at_the_outbox_head,
    check_export_impressions_rebuild_each_posts_counts,
    check_export_since_keeps_engagement_created_from_then,
    check_export_of_an_empty_store_is_position_zero,
    check_export_splits_a_member_shown_many_posts_into_bounded_events,
    check_mutes_are_made_once_listed_newest_first_and_taken_back,
    check_mutes_write_their_events_only_when_they_change,
    check_mutes_past_the_cap_are_refused_also_when_racing,
    check_export_has_every_mute_and_hidden_posts_since,
);

async fn stats(store: &Store, post_id: &str) -> PostStatsRecord {
    let mut all = store
        .batch_get_post_stats(&[post_id.to_owned()])
        .await
        .expect("stats");
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// Every post's maintained counts equal a COUNT(*) of its rows, and the API reads them.
async fn assert_counts_match_rows(store: &Store) {
    let stored: BTreeMap<String, PostStatsRecord> = store
        .stored_stats()
        .await
        .unwrap()
        .into_iter()
        // An all-zero row counts nothing, like a missing one.
        .filter(|s| *s != PostStatsRecord::zero(&s.post_id))
        .map(|s| (s.post_id.clone(), s))
        .collect();
    let counted: BTreeMap<String, PostStatsRecord> = store
        .counted_stats()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.post_id.clone(), s))
        .collect();
    assert_eq!(stored, counted, "counts drifted from the rows");
    let drift = store.comment_count_drift().await.unwrap();
    assert!(drift.is_empty(), "comment counts drifted: {drift:?}");
    let ids: Vec<String> = counted.keys().cloned().collect();
    let read = store.batch_get_post_stats(&ids).await.unwrap();
    assert_eq!(read, counted.into_values().collect::<Vec<_>>());
}

fn comment(id: &str, post_id: &str, member_id: &str, create_time: i64) -> CommentRecord {
    CommentRecord::new(
        id.into(),
        post_id.into(),
        member_id.into(),
        "well said".into(),
        create_time,
    )
}

fn share(id: &str, post_id: &str, member_id: &str, create_time: i64) -> ShareRecord {
    ShareRecord {
        id: id.into(),
        post_id: post_id.into(),
        member_id: member_id.into(),
        create_time,
    }
}

fn key(caller: &str, request_id: &str) -> Option<IdempotencyKey> {
    Some(pronet_common::testing::key(caller, request_id))
}

fn activity(member: &str, post: &str, kind: ActivityKind, time: i64) -> ActivityRecord {
    ActivityRecord {
        member_id: member.into(),
        post_id: post.into(),
        kind,
        create_time: time,
    }
}

/// Runs `TASKS` tasks at once, task `i` running `f(store, i)`, and waits for all.
async fn in_tasks<F, Fut, T>(store: &Store, f: F) -> Vec<T>
where
    F: Fn(Store, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| tokio::spawn(f(Arc::clone(store), i)))
        .collect();
    let mut results = Vec::with_capacity(TASKS);
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

async fn check_a_first_reaction_is_created_and_counted(store: Store) {
    assert!(store.stored_stats().await.unwrap().is_empty());
    let reaction = store
        .react("p1", "m1", ReactionType::Support, 100)
        .await
        .unwrap();
    assert_eq!(
        reaction,
        ReactionRecord {
            post_id: "p1".into(),
            member_id: "m1".into(),
            reaction_type: ReactionType::Support,
            create_time: 100,
        }
    );
    assert_eq!(stats(&store, "p1").await.reactions, [0, 0, 1, 0, 0, 0]);
    assert_counts_match_rows(&store).await;
}

async fn check_changing_a_reaction_type_moves_its_count(store: Store) {
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
    assert_counts_match_rows(&store).await;
}

async fn check_reacting_twice_with_the_same_type_counts_once(store: Store) {
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
    assert_counts_match_rows(&store).await;
}

async fn check_a_thousand_members_reacting_at_once_are_all_counted(store: Store) {
    const MEMBERS: usize = 1000;
    in_tasks(&store, |store, task| async move {
        // Task `task` reacts for members task, task + 32, ...
        for i in (task..MEMBERS).step_by(TASKS) {
            let t = ReactionType::ALL[i % 6];
            store
                .react("p1", &format!("m{i}"), t, 1_000 + i as i64)
                .await
                .expect("react");
        }
    })
    .await;

    let s = stats(&store, "p1").await;
    assert_eq!(s.total_reactions(), MEMBERS as i64);
    // 1000 = 6 x 166 + 4: the first four types get one more.
    assert_eq!(s.reactions, [167, 167, 167, 167, 166, 166]);
    assert_counts_match_rows(&store).await;
}

async fn check_one_member_reacting_at_once_with_every_type_leaves_one_reaction(store: Store) {
    let results = in_tasks(&store, |store, task| async move {
        let mut seen = Vec::new();
        for round in 0..5 {
            let t = ReactionType::ALL[(task + round) % 6];
            let now = 1_000 + (task * 10 + round) as i64;
            seen.push(store.react("p1", "m1", t, now).await.expect("react"));
        }
        seen
    })
    .await;

    let s = stats(&store, "p1").await;
    assert_eq!(s.total_reactions(), 1);
    // Every call saw the one reaction, created by whichever came first.
    let times: HashSet<i64> = results.iter().flatten().map(|r| r.create_time).collect();
    assert_eq!(times.len(), 1, "{times:?}");
    let recent = store
        .list_recent_activity(&["m1".to_string()], 0, 10)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    let ActivityKind::Reaction(kept) = recent[0].kind else {
        panic!("{recent:?}");
    };
    assert_eq!(s.reaction_count(kept), 1);
    assert_counts_match_rows(&store).await;
}

async fn check_members_changing_reactions_on_many_posts_at_once_keep_counts_exact(store: Store) {
    in_tasks(&store, |store, task| async move {
        // Tasks overlap on members and posts, in different orders.
        for round in 0..20 {
            let post = format!("p{}", (task + round) % 4);
            let member = format!("m{}", (task * 7 + round) % 16);
            let t = ReactionType::ALL[(task * 3 + round) % 6];
            store
                .react(&post, &member, t, (round * 100 + task) as i64)
                .await
                .expect("react");
        }
    })
    .await;
    let total: i64 = store
        .stored_stats()
        .await
        .unwrap()
        .iter()
        .map(PostStatsRecord::total_reactions)
        .sum();
    assert!(total > 0 && total <= 64, "{total}");
    assert_counts_match_rows(&store).await;
}

async fn check_comments_are_stored_and_counted(store: Store) {
    for (i, member) in ["m1", "m1", "m2"].into_iter().enumerate() {
        let c = comment(&format!("c{i}"), "p1", member, 100 + i as i64);
        assert_eq!(store.create_comment(c.clone(), None).await.unwrap(), c);
    }
    let s = stats(&store, "p1").await;
    assert_eq!(s.comments, 3);
    assert_eq!(s.total_reactions(), 0);
    let recent = store
        .list_recent_activity(&["m1".to_string()], 0, 10)
        .await
        .unwrap();
    assert_eq!(
        recent,
        [
            activity("m1", "p1", ActivityKind::Comment, 101),
            activity("m1", "p1", ActivityKind::Comment, 100),
        ]
    );
    assert_counts_match_rows(&store).await;
}

async fn check_a_comment_retried_with_its_request_id_is_stored_once(store: Store) {
    let first = comment("c1", "p1", "m1", 100);
    let stored = store
        .create_comment(first.clone(), key("member:m1", "r1"))
        .await
        .unwrap();
    assert_eq!(stored, first);
    // A retry makes a new id and time; it gets the first comment back, whatever it carries.
    let mut retry = comment("c2", "p2", "m1", 200);
    retry.text = "edited".into();
    let again = store
        .create_comment(retry, key("member:m1", "r1"))
        .await
        .unwrap();
    assert_eq!(again, first);

    // Another request id, or another caller with the same one, is another comment.
    let other = comment("c3", "p1", "m1", 300);
    assert_eq!(
        store
            .create_comment(other.clone(), key("member:m1", "r2"))
            .await
            .unwrap(),
        other
    );
    let by_m2 = comment("c4", "p1", "m2", 400);
    assert_eq!(
        store
            .create_comment(by_m2.clone(), key("member:m2", "r1"))
            .await
            .unwrap(),
        by_m2
    );
    assert_eq!(stats(&store, "p1").await.comments, 3);
    assert_eq!(stats(&store, "p2").await.comments, 0);
    assert_counts_match_rows(&store).await;
}

async fn check_racing_comment_retries_store_one_comment(store: Store) {
    let results = in_tasks(&store, |store, task| async move {
        let attempt = comment(&format!("c{task}"), "p1", "m1", 100 + task as i64);
        store
            .create_comment(attempt, key("member:m1", "race"))
            .await
            .expect("create comment")
    })
    .await;
    let winner = &results[0];
    assert!(
        results.iter().all(|c| c == winner),
        "every retry gets the same comment: {results:?}"
    );
    let task: usize = winner.id.trim_start_matches('c').parse().unwrap();
    assert_eq!(*winner, comment(&winner.id, "p1", "m1", 100 + task as i64));
    assert_eq!(stats(&store, "p1").await.comments, 1);
    assert_counts_match_rows(&store).await;
}

async fn check_repeated_shares_are_counted_once(store: Store) {
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
    // The same member on another post is another share.
    store
        .record_share(share("s4", "p2", "m1", 700))
        .await
        .unwrap();

    let s = stats(&store, "p1").await;
    assert_eq!(s.shares, 2);
    assert_eq!(s.comments, 0);
    assert_eq!(stats(&store, "p2").await.shares, 1);
    assert_counts_match_rows(&store).await;
}

async fn check_repeated_shares_racing_are_counted_once(store: Store) {
    const MEMBERS: usize = 4;
    let results = in_tasks(&store, |store, task| async move {
        // Every task shares as every member, each starting with a different one.
        let mut got = Vec::new();
        for k in 0..MEMBERS {
            let member = format!("m{}", (task + k) % MEMBERS);
            let attempt = share(&format!("s{task}-{k}"), "p1", &member, task as i64);
            got.push(store.record_share(attempt).await.expect("share"));
        }
        got
    })
    .await;
    let firsts: HashSet<(String, String)> = results
        .iter()
        .flatten()
        .map(|s| (s.member_id.clone(), s.id.clone()))
        .collect();
    assert_eq!(firsts.len(), MEMBERS, "one share per member: {firsts:?}");
    assert_eq!(stats(&store, "p1").await.shares, MEMBERS as i64);
    assert_counts_match_rows(&store).await;
}

async fn check_mixed_engagement_at_once_keeps_counts_equal_to_rows(store: Store) {
    in_tasks(&store, |store, task| async move {
        for round in 0..15 {
            let post = format!("p{}", (task + round) % 3);
            let member = format!("m{}", (task + 2 * round) % 8);
            let now = (task * 100 + round) as i64;
            match (task + round) % 3 {
                0 => {
                    let t = ReactionType::ALL[round % 6];
                    store.react(&post, &member, t, now).await.map(drop)
                }
                1 => {
                    // Half the comments are retries of one another.
                    let c = comment(&format!("c{task}-{round}"), &post, &member, now);
                    let k = key(&format!("member:{member}"), &format!("r{}", round % 2));
                    store.create_comment(c, k).await.map(drop)
                }
                _ => {
                    let s = share(&format!("s{task}-{round}"), &post, &member, now);
                    store.record_share(s).await.map(drop)
                }
            }
            .expect("write");
        }
    })
    .await;
    assert_counts_match_rows(&store).await;
}

async fn check_stats_come_in_request_order_with_zeros_for_unknown_posts(store: Store) {
    assert!(store.batch_get_post_stats(&[]).await.unwrap().is_empty());
    // Nothing stored yet: zeros, still in order.
    let unknown = store
        .batch_get_post_stats(&["x".to_string(), "y".to_string()])
        .await
        .unwrap();
    assert_eq!(
        unknown,
        [PostStatsRecord::zero("x"), PostStatsRecord::zero("y")]
    );

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
        .create_comment(comment("c1", "p2", "m1", 100), None)
        .await
        .unwrap();
    store
        .record_share(share("s1", "p2", "m3", 100))
        .await
        .unwrap();

    let ids: Vec<String> = ["p2", "unknown", "p1", "p2"].map(String::from).to_vec();
    let all = store.batch_get_post_stats(&ids).await.unwrap();
    let order: Vec<&str> = all.iter().map(|s| s.post_id.as_str()).collect();
    assert_eq!(order, ["p2", "unknown", "p1", "p2"]);
    assert_eq!(all[0].reactions, [0, 0, 0, 0, 0, 2]);
    assert_eq!((all[0].comments, all[0].shares), (1, 1));
    assert_eq!(all[1], PostStatsRecord::zero("unknown"));
    assert_eq!(all[2].reactions, [1, 0, 0, 0, 0, 0]);
    assert_eq!(all[3], all[0]);
    assert_counts_match_rows(&store).await;
}

async fn check_stats_of_the_largest_batch_are_one_read(store: Store) {
    store
        .react("p4999", "m1", ReactionType::Support, 1)
        .await
        .unwrap();
    let ids: Vec<String> = (0..limits::MAX_BATCH_STATS)
        .map(|i| format!("p{i}"))
        .collect();
    let all = store.batch_get_post_stats(&ids).await.unwrap();
    assert_eq!(all.len(), ids.len());
    assert_eq!(all[4999].reaction_count(ReactionType::Support), 1);
    assert_eq!(all[0], PostStatsRecord::zero("p0"));
}

async fn check_recent_activity_is_filtered_by_members_and_since_newest_first(store: Store) {
    let members = vec!["m1".to_string(), "m2".to_string()];
    assert!(store
        .list_recent_activity(&members, 0, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .react("p1", "m1", ReactionType::Like, 100)
        .await
        .unwrap();
    store
        .react("p2", "m1", ReactionType::Celebrate, 400)
        .await
        .unwrap();
    store
        .create_comment(comment("c1", "p1", "m2", 300), None)
        .await
        .unwrap();
    store
        .create_comment(comment("c2", "p3", "m1", 50), None)
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

    let got = store
        .list_recent_activity(&members, 100, 100)
        .await
        .unwrap();
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
        .list_recent_activity(&members, 0, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_recent_activity(&members, 501, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_recent_activity(&["nobody".to_string()], 0, 10)
        .await
        .unwrap()
        .is_empty());
    // A member named twice is listed once.
    let twice = ["m2", "m1", "m2", "nobody"].map(String::from);
    assert_eq!(
        store.list_recent_activity(&twice, 100, 100).await.unwrap(),
        got
    );
}

async fn check_recent_activity_limits_cut_exactly(store: Store) {
    // Six reactions newer than everything else, then two comments and two shares.
    for i in 0..6 {
        store
            .react(&format!("p{i}"), "m1", ReactionType::Like, 1_000 + i)
            .await
            .unwrap();
    }
    for i in 0..2 {
        store
            .create_comment(comment(&format!("c{i}"), "p0", "m1", 500 + i), None)
            .await
            .unwrap();
        store
            .record_share(share(&format!("s{i}"), &format!("p{i}"), "m1", 100 + i))
            .await
            .unwrap();
    }
    let members = ["m1".to_string()];
    let all = store.list_recent_activity(&members, 0, 100).await.unwrap();
    assert_eq!(all.len(), 10);
    let times: Vec<i64> = all.iter().map(|a| a.create_time).collect();
    assert_eq!(
        times,
        [1005, 1004, 1003, 1002, 1001, 1000, 501, 500, 101, 100]
    );
    // A limit of exactly the number of rows, one less, and below one table's share.
    assert_eq!(
        store.list_recent_activity(&members, 0, 10).await.unwrap(),
        all
    );
    assert_eq!(
        store.list_recent_activity(&members, 0, 9).await.unwrap(),
        all[..9]
    );
    assert_eq!(
        store.list_recent_activity(&members, 0, 3).await.unwrap(),
        all[..3]
    );
    assert_eq!(
        store.list_recent_activity(&members, 0, 7).await.unwrap(),
        all[..7]
    );
    // `since` exactly at a row keeps it.
    assert_eq!(
        store
            .list_recent_activity(&members, 500, 100)
            .await
            .unwrap(),
        all[..8]
    );
}

async fn check_recent_activity_breaks_time_ties_bytewise_by_kind_member_and_post(store: Store) {
    // Ids of every allowed character class, in byte order '-' < '0' < 'A' < '_' < 'a'; a
    // locale-aware collation would order them otherwise.
    let members = ["a1", "_x", "M1", "-y", "0z"].map(String::from);
    for member in &members {
        for post in ["pb", "pA", "p_"] {
            store
                .react(post, member, ReactionType::Like, 7)
                .await
                .unwrap();
        }
        store
            .create_comment(comment(&format!("c{member}"), "p", member, 7), None)
            .await
            .unwrap();
        store
            .record_share(share(&format!("s{member}"), "p", member, 7))
            .await
            .unwrap();
    }
    let all = store.list_recent_activity(&members, 0, 1000).await.unwrap();
    let listed: Vec<(ActivityKind, &str, &str)> = all
        .iter()
        .map(|a| (a.kind, a.member_id.as_str(), a.post_id.as_str()))
        .collect();
    let mut expected = Vec::new();
    let like = ActivityKind::Reaction(ReactionType::Like);
    for member in ["-y", "0z", "M1", "_x", "a1"] {
        for post in ["pA", "p_", "pb"] {
            expected.push((like, member, post));
        }
    }
    for kind in [ActivityKind::Comment, ActivityKind::Share] {
        for member in ["-y", "0z", "M1", "_x", "a1"] {
            expected.push((kind, member, "p"));
        }
    }
    assert_eq!(listed, expected);
    // A limit inside the tie takes the first in that order.
    for limit in [1, 15, 16, 24, 25] {
        let cut = store
            .list_recent_activity(&members, 7, limit)
            .await
            .unwrap();
        assert_eq!(cut, all[..limit], "limit {limit}");
    }
}

async fn check_a_changed_reaction_shows_its_new_type_at_its_first_time(store: Store) {
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
    assert_eq!(
        got,
        [activity(
            "m1",
            "p1",
            ActivityKind::Reaction(ReactionType::Funny),
            100
        )]
    );
    // Its first time decides whether it is recent, not when it changed.
    assert!(store
        .list_recent_activity(&["m1".to_string()], 150, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn check_unreact_removes_the_reaction_and_its_count(store: Store) {
    assert!(
        !store.unreact("p1", "m1").await.unwrap(),
        "nothing to remove"
    );
    store
        .react("p1", "m1", ReactionType::Love, 100)
        .await
        .unwrap();
    store
        .react("p1", "m2", ReactionType::Love, 100)
        .await
        .unwrap();
    assert!(store.unreact("p1", "m1").await.unwrap());
    assert!(
        !store.unreact("p1", "m1").await.unwrap(),
        "a repeat is a no-op"
    );
    let s = stats(&store, "p1").await;
    assert_eq!(s.reaction_count(ReactionType::Love), 1);
    assert_eq!(s.total_reactions(), 1);
    // Reacting again is a new reaction, at its new time.
    let again = store
        .react("p1", "m1", ReactionType::Like, 300)
        .await
        .unwrap();
    assert_eq!(again.create_time, 300);
    assert_eq!(stats(&store, "p1").await.total_reactions(), 2);
    assert_counts_match_rows(&store).await;
}

async fn check_reacting_and_unreacting_at_once_keeps_counts_exact(store: Store) {
    in_tasks(&store, |store, task| async move {
        for round in 0..20 {
            let member = format!("m{}", (task + round) % 8);
            if (task + round) % 3 == 0 {
                store.unreact("p1", &member).await.expect("unreact");
            } else {
                let t = ReactionType::ALL[(task * 5 + round) % 6];
                store
                    .react("p1", &member, t, round as i64)
                    .await
                    .expect("react");
            }
        }
    })
    .await;
    assert!(stats(&store, "p1").await.total_reactions() <= 8);
    assert_counts_match_rows(&store).await;
}

fn reply(id: &str, post_id: &str, member_id: &str, parent: &str, time: i64) -> CommentRecord {
    let mut c = comment(id, post_id, member_id, time);
    c.parent_id = Some(parent.into());
    c
}

async fn check_replies_are_counted_on_the_post_and_their_top_level_comment(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    let r1 = store
        .create_comment(reply("r1", "p1", "m2", "c1", 200), None)
        .await
        .unwrap();
    assert_eq!(r1.parent_id.as_deref(), Some("c1"));
    // A reply to a reply answers the top-level comment.
    let r2 = store
        .create_comment(reply("r2", "p1", "m3", "r1", 300), None)
        .await
        .unwrap();
    assert_eq!(r2.parent_id.as_deref(), Some("c1"));
    let c1 = store.get_comment("c1").await.unwrap().unwrap();
    assert_eq!(c1.reply_count, 2);
    assert_eq!(
        store.get_comment("r1").await.unwrap().unwrap().reply_count,
        0
    );
    assert_eq!(stats(&store, "p1").await.comments, 3);

    // The parent must be a comment of the same post.
    for (id, parent, post) in [("x1", "nope", "p1"), ("x2", "c1", "p2")] {
        let err = store
            .create_comment(reply(id, post, "m1", parent, 400), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngagementError::NotFound("comment")),
            "{err:?}"
        );
    }
    assert!(store.get_comment("x1").await.unwrap().is_none());
    assert_eq!(stats(&store, "p2").await.comments, 0);
    assert_counts_match_rows(&store).await;
}

async fn check_deleting_a_top_level_comment_takes_its_replies_and_reactions(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    store
        .create_comment(comment("c2", "p1", "m1", 101), None)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .create_comment(reply(&format!("r{i}"), "p1", "m2", "c1", 200 + i), None)
            .await
            .unwrap();
        store
            .react_to_comment(&format!("r{i}"), "m3", ReactionType::Like, 300)
            .await
            .unwrap();
    }
    store
        .react_to_comment("c1", "m3", ReactionType::Funny, 300)
        .await
        .unwrap();
    assert_eq!(stats(&store, "p1").await.comments, 5);

    assert_eq!(store.delete_comment("c1").await.unwrap(), 4);
    assert_eq!(stats(&store, "p1").await.comments, 1);
    for id in ["c1", "r0", "r1", "r2"] {
        assert!(store.get_comment(id).await.unwrap().is_none(), "{id}");
    }
    let err = store.delete_comment("c1").await.unwrap_err();
    assert!(
        matches!(err, EngagementError::NotFound("comment")),
        "{err:?}"
    );
    let listed = store
        .list_comments(
            "p1",
            &CommentListing::TopLevel(CommentOrder::Newest),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "c2");
    assert_counts_match_rows(&store).await;
}

async fn check_deleting_a_reply_uncounts_it_once(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    store
        .create_comment(reply("r1", "p1", "m2", "c1", 200), None)
        .await
        .unwrap();
    store
        .create_comment(reply("r2", "p1", "m2", "c1", 201), None)
        .await
        .unwrap();
    assert_eq!(store.delete_comment("r1").await.unwrap(), 1);
    assert_eq!(
        store.get_comment("c1").await.unwrap().unwrap().reply_count,
        1
    );
    assert_eq!(stats(&store, "p1").await.comments, 2);
    assert!(store.delete_comment("r1").await.is_err());
    assert_eq!(stats(&store, "p1").await.comments, 2);
    assert_counts_match_rows(&store).await;
}

async fn check_comment_reactions_are_one_per_member_and_move_counts(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    let c = store
        .react_to_comment("c1", "m2", ReactionType::Like, 200)
        .await
        .unwrap();
    assert_eq!((c.reactions, c.total_reactions()), ([1, 0, 0, 0, 0, 0], 1));
    let c = store
        .react_to_comment("c1", "m2", ReactionType::Like, 201)
        .await
        .unwrap();
    assert_eq!(c.total_reactions(), 1, "the same type again counts once");
    let c = store
        .react_to_comment("c1", "m2", ReactionType::Support, 202)
        .await
        .unwrap();
    assert_eq!(c.reactions, [0, 0, 1, 0, 0, 0]);
    let c = store
        .react_to_comment("c1", "m3", ReactionType::Support, 203)
        .await
        .unwrap();
    assert_eq!(c.reactions, [0, 0, 2, 0, 0, 0]);
    let c = store.unreact_to_comment("c1", "m2").await.unwrap();
    assert_eq!(c.reactions, [0, 0, 1, 0, 0, 0]);
    let c = store.unreact_to_comment("c1", "m2").await.unwrap();
    assert_eq!(c.total_reactions(), 1, "a repeat unreact is a no-op");
    // Comment reactions are not the post's.
    assert_eq!(stats(&store, "p1").await.total_reactions(), 0);
    for err in [
        store
            .react_to_comment("nope", "m2", ReactionType::Like, 1)
            .await
            .unwrap_err(),
        store.unreact_to_comment("nope", "m2").await.unwrap_err(),
    ] {
        assert!(
            matches!(err, EngagementError::NotFound("comment")),
            "{err:?}"
        );
    }
    assert_counts_match_rows(&store).await;
}

async fn check_an_edit_sets_the_text_and_update_time(store: Store) {
    let first = store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    assert_eq!(first.update_time, None);
    let edited = store
        .update_comment_text("c1", "better said", 500)
        .await
        .unwrap();
    assert_eq!(edited.text, "better said");
    assert_eq!(edited.update_time, Some(500));
    assert_eq!(edited.create_time, 100);
    assert_eq!(store.get_comment("c1").await.unwrap().unwrap(), edited);
    let err = store.update_comment_text("nope", "x", 1).await.unwrap_err();
    assert!(
        matches!(err, EngagementError::NotFound("comment")),
        "{err:?}"
    );
}

async fn check_replies_reactions_and_deletes_at_once_leave_no_phantom_counts(store: Store) {
    for i in 0..4 {
        store
            .create_comment(comment(&format!("c{i}"), "p1", "m0", i), None)
            .await
            .unwrap();
    }
    in_tasks(&store, |store, task| async move {
        for round in 0..10 {
            let parent = format!("c{}", (task + round) % 4);
            let member = format!("m{}", task % 8);
            let result = match (task + round) % 4 {
                0 => store
                    .create_comment(
                        reply(&format!("r{task}-{round}"), "p1", &member, &parent, 10),
                        None,
                    )
                    .await
                    .map(drop),
                1 => store
                    .react_to_comment(&parent, &member, ReactionType::ALL[round % 6], 10)
                    .await
                    .map(drop),
                2 => store.unreact_to_comment(&parent, &member).await.map(drop),
                // Now and then a top-level comment goes, with everything under it.
                _ if round == 5 => store.delete_comment(&parent).await.map(drop),
                _ => store
                    .create_comment(
                        comment(&format!("t{task}-{round}"), "p1", &member, 20),
                        None,
                    )
                    .await
                    .map(drop),
            };
            match result {
                Ok(()) | Err(EngagementError::NotFound("comment")) => {}
                Err(err) => panic!("{err:?}"),
            }
        }
    })
    .await;
    assert_counts_match_rows(&store).await;
}

async fn comment_ids(store: &Store, listing: &CommentListing, page: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<CommentCursor> = None;
    loop {
        let got = store
            .list_comments("p1", listing, after.as_ref(), page)
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        after = got.last().map(CommentRecord::cursor);
        let full = got.len() == page;
        pages.push(got.into_iter().map(|c| c.id).collect());
        if !full {
            break;
        }
    }
    pages
}

async fn check_top_level_comments_page_by_relevance_and_newest(store: Store) {
    let relevant = CommentListing::TopLevel(CommentOrder::MostRelevant);
    let newest = CommentListing::TopLevel(CommentOrder::Newest);
    assert!(comment_ids(&store, &relevant, 2).await.is_empty());
    // c0..c4 at times 100, 100, 101, 102, 103 (c0 and c1 tie on time).
    for (i, time) in [100, 100, 101, 102, 103].into_iter().enumerate() {
        store
            .create_comment(comment(&format!("c{i}"), "p1", "m1", time), None)
            .await
            .unwrap();
    }
    store
        .create_comment(comment("other", "p2", "m1", 500), None)
        .await
        .unwrap();
    // c1: two replies; c2: one reaction and one reply; c0: one reaction.
    store
        .create_comment(reply("r1", "p1", "m2", "c1", 200), None)
        .await
        .unwrap();
    store
        .create_comment(reply("r2", "p1", "m2", "c1", 201), None)
        .await
        .unwrap();
    store
        .create_comment(reply("r3", "p1", "m2", "c2", 202), None)
        .await
        .unwrap();
    store
        .react_to_comment("c2", "m3", ReactionType::Like, 300)
        .await
        .unwrap();
    store
        .react_to_comment("c0", "m3", ReactionType::Like, 300)
        .await
        .unwrap();
    // Scores: c1 2, c2 2 (newer), c0 1, c4 0 (newest), c3 0.
    let all = vec!["c2", "c1", "c0", "c4", "c3"];
    let flat = |pages: Vec<Vec<String>>| pages.concat();
    assert_eq!(flat(comment_ids(&store, &relevant, 100).await), all);
    assert_eq!(flat(comment_ids(&store, &relevant, 2).await), all);
    // Exact multiple of the page size.
    let pages = comment_ids(&store, &relevant, 5).await;
    assert_eq!(pages.len(), 1);
    // Newest first; the time tie is broken by id, descending.
    let by_time = vec!["c4", "c3", "c2", "c1", "c0"];
    assert_eq!(flat(comment_ids(&store, &newest, 100).await), by_time);
    assert_eq!(flat(comment_ids(&store, &newest, 1).await), by_time);
    assert_eq!(flat(comment_ids(&store, &newest, 2).await), by_time);
}

async fn check_replies_page_oldest_first(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 100), None)
        .await
        .unwrap();
    let listing = CommentListing::Replies("c1".into());
    assert!(comment_ids(&store, &listing, 2).await.is_empty());
    for (id, time) in [("rb", 200), ("ra", 200), ("rc", 150), ("rd", 300)] {
        store
            .create_comment(reply(id, "p1", "m2", "c1", time), None)
            .await
            .unwrap();
    }
    let want = vec!["rc", "ra", "rb", "rd"];
    for page in [1, 2, 3, 4, 10] {
        assert_eq!(comment_ids(&store, &listing, page).await.concat(), want);
    }
}

async fn reactors(store: &Store, query: ReactionQuery) -> Vec<String> {
    let mut all = Vec::new();
    let mut q = query;
    loop {
        let got = store.list_reactions(&q).await.unwrap();
        let full = got.len() == q.limit;
        all.extend(got.iter().map(|r| r.member_id.clone()));
        match got.last() {
            Some(last) if full => q.after = Some((last.create_time, last.member_id.clone())),
            _ => break,
        }
    }
    all
}

async fn check_reactions_list_newest_first_for_members_in_or_out(store: Store) {
    // m0..m5 at times 100, 100, 101, 102, 102, 103, alternating Like and Love.
    for (i, time) in [100, 100, 101, 102, 102, 103].into_iter().enumerate() {
        let t = [ReactionType::Like, ReactionType::Love][i % 2];
        store.react("p1", &format!("m{i}"), t, time).await.unwrap();
    }
    store
        .react("p2", "m9", ReactionType::Like, 500)
        .await
        .unwrap();
    let query = |members: &[&str], include: bool, limit: usize| ReactionQuery {
        post_id: "p1".into(),
        reaction_type: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        include,
        after: None,
        limit,
    };
    let everyone = vec!["m5", "m4", "m3", "m2", "m1", "m0"];
    for limit in [1, 2, 3, 6, 10] {
        assert_eq!(reactors(&store, query(&[], false, limit)).await, everyone);
    }
    assert_eq!(
        reactors(&store, query(&["m1", "m4", "zz"], true, 1)).await,
        ["m4", "m1"]
    );
    assert_eq!(
        reactors(&store, query(&["m1", "m4", "zz"], false, 2)).await,
        ["m5", "m3", "m2", "m0"]
    );
    assert!(reactors(&store, query(&[], true, 5)).await.is_empty());
    let mut loves = query(&[], false, 2);
    loves.reaction_type = Some(ReactionType::Love);
    assert_eq!(reactors(&store, loves).await, ["m5", "m3", "m1"]);
    let unreacted = store.unreact("p1", "m5").await.unwrap();
    assert!(unreacted);
    assert_eq!(reactors(&store, query(&[], false, 1)).await[0], "m4");
}

async fn check_impressions_count_once_per_member_post_and_day(store: Store) {
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        store
            .record_impressions("m1", &ids(&["p1", "p2"]), 10, 1)
            .await
            .unwrap(),
        2
    );
    // The same day again: nothing new.
    assert_eq!(
        store
            .record_impressions("m1", &ids(&["p1", "p2"]), 10, 2)
            .await
            .unwrap(),
        0
    );
    // The next day: new impressions, no new viewer.
    assert_eq!(
        store
            .record_impressions("m1", &ids(&["p1"]), 11, 3)
            .await
            .unwrap(),
        1
    );
    // Another member.
    assert_eq!(
        store
            .record_impressions("m2", &ids(&["p1"]), 11, 4)
            .await
            .unwrap(),
        1
    );
    let p1 = stats(&store, "p1").await;
    assert_eq!((p1.impressions, p1.unique_viewers), (3, 2));
    let p2 = stats(&store, "p2").await;
    assert_eq!((p2.impressions, p2.unique_viewers), (1, 1));
    assert_eq!(store.record_impressions("m1", &[], 12, 5).await.unwrap(), 0);

    let asked = ids(&["p3", "p2", "nope", "p1", "p2"]);
    assert_eq!(
        store.list_seen_posts("m1", &asked).await.unwrap(),
        ["p2", "p1", "p2"]
    );
    assert_eq!(store.list_seen_posts("m2", &asked).await.unwrap(), ["p1"]);
    assert!(store
        .list_seen_posts("m3", &asked)
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_seen_posts("m1", &[]).await.unwrap().is_empty());
    assert_counts_match_rows(&store).await;
}

async fn check_racing_impressions_count_once(store: Store) {
    let counted = in_tasks(&store, |store, task| async move {
        // Every task shows the same four posts to the same member, and to one of its own.
        let posts: Vec<String> = (0..4).map(|i| format!("p{}", (task + i) % 4)).collect();
        let shared = store
            .record_impressions("m0", &posts, 7, task as i64)
            .await
            .expect("impressions");
        let own = store
            .record_impressions(&format!("m{}", task + 1), &posts, 7, task as i64)
            .await
            .expect("impressions");
        (shared, own)
    })
    .await;
    let shared: usize = counted.iter().map(|(s, _)| s).sum();
    assert_eq!(shared, 4, "each of m0's four impressions counted once");
    assert!(counted.iter().all(|(_, own)| *own == 4));
    for p in 0..4 {
        let s = stats(&store, &format!("p{p}")).await;
        assert_eq!(
            (s.impressions, s.unique_viewers),
            (TASKS as i64 + 1, TASKS as i64 + 1)
        );
    }
    assert_counts_match_rows(&store).await;
}

/// What a store holds after a reopen, on either backend.
async fn write_before_reopen(store: &Store) {
    store
        .react("p1", "m1", ReactionType::Like, 1)
        .await
        .unwrap();
    store
        .create_comment(comment("c1", "p1", "m1", 2), key("member:m1", "r1"))
        .await
        .unwrap();
}

async fn check_after_reopen(store: &Store) {
    let s = stats(store, "p1").await;
    assert_eq!((s.total_reactions(), s.comments), (1, 1));
    // The idempotency key survived too.
    let again = store
        .create_comment(comment("c2", "p1", "m1", 3), key("member:m1", "r1"))
        .await
        .unwrap();
    assert_eq!(again.id, "c1");
    assert_counts_match_rows(store).await;
}

#[tokio::test]
async fn sqlite_data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engagement.db");
    let store = SqliteEngagementStore::open(&path).await.unwrap();
    write_before_reopen(&(Arc::new(store.clone()) as Store)).await;
    store.close().await;
    let store = SqliteEngagementStore::open(&path).await.unwrap();
    check_after_reopen(&(Arc::new(store.clone()) as Store)).await;
    store.close().await;
}

#[tokio::test]
async fn postgres_data_survives_a_reopen() {
    let Some(t) = postgres_schema("reopen").await else {
        return;
    };
    let store = PgEngagementStore::open(&t.url, &t.schema).await.unwrap();
    write_before_reopen(&(Arc::new(store.clone()) as Store)).await;
    store.close().await;
    // Migrating an up-to-date schema again changes nothing.
    let store = PgEngagementStore::open(&t.url, &t.schema).await.unwrap();
    check_after_reopen(&(Arc::new(store.clone()) as Store)).await;
    store.close().await;
}

// ----------------------------------------------------------------------------------------------
// The hot read queries at feed scale.

/// An id shaped like the service's (32 hex digits), random rather than time-ordered.
fn random_id(rng: &mut SplitMix64) -> String {
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

/// `n` distinct items of `from`.
fn sample(rng: &mut SplitMix64, from: &[String], n: usize) -> Vec<String> {
    let mut picked = HashSet::with_capacity(n);
    while picked.len() < n {
        picked.insert(rng.below(from.len()));
    }
    picked.into_iter().map(|i| from[i].clone()).collect()
}

const BENCH_POSTS: usize = 100_000;
const BENCH_MEMBERS: usize = 50_000;
const BENCH_BATCH: usize = 1000;
const BENCH_RUNS: usize = 50;
const DAY_MICROS: i64 = 86_400_000_000;

struct Seed {
    posts: Vec<String>,
    members: Vec<String>,
    reactions: Vec<ReactionRecord>,
    comments: Vec<CommentRecord>,
    shares: Vec<ShareRecord>,
    now: i64,
}

/// 100,000 posts with 1 to 5 reactions each (about 300,000), 30,000 comments and 30,000 shares
/// by 50,000 members over 30 days.
fn bench_seed() -> Seed {
    let mut rng = SplitMix64::new(42);
    let now = 1_750_000_000_000_000;
    let posts: Vec<String> = (0..BENCH_POSTS).map(|_| random_id(&mut rng)).collect();
    let members: Vec<String> = (0..BENCH_MEMBERS).map(|_| random_id(&mut rng)).collect();
    let time = |rng: &mut SplitMix64| now - (rng.next_u64() % (30 * DAY_MICROS as u64)) as i64;
    let mut reactions = Vec::with_capacity(3 * BENCH_POSTS);
    for post in &posts {
        let n = 1 + rng.below(5);
        for member in sample(&mut rng, &members, n) {
            reactions.push(ReactionRecord {
                post_id: post.clone(),
                member_id: member,
                reaction_type: ReactionType::ALL[rng.below(6)],
                create_time: time(&mut rng),
            });
        }
    }
    let comments = (0..30_000)
        .map(|_| {
            CommentRecord::new(
                random_id(&mut rng),
                posts[rng.below(BENCH_POSTS)].clone(),
                members[rng.below(BENCH_MEMBERS)].clone(),
                "well said".into(),
                time(&mut rng),
            )
        })
        .collect();
    let mut shared = HashSet::new();
    let mut shares = Vec::new();
    while shares.len() < 30_000 {
        let (post, member) = (rng.below(BENCH_POSTS), rng.below(BENCH_MEMBERS));
        if shared.insert((post, member)) {
            shares.push(ShareRecord {
                id: random_id(&mut rng),
                post_id: posts[post].clone(),
                member_id: members[member].clone(),
                create_time: time(&mut rng),
            });
        }
    }
    Seed {
        posts,
        members,
        reactions,
        comments,
        shares,
        now,
    }
}

/// Median and p99 (nearest rank) of `runs`.
fn summary(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let rank = |p: f64| runs[((p * runs.len() as f64).ceil() as usize).max(1) - 1];
    format!(
        "median {:>8.2} ms, p99 {:>8.2} ms ({} runs)",
        rank(0.5).as_secs_f64() * 1e3,
        rank(0.99).as_secs_f64() * 1e3,
        runs.len()
    )
}

/// Whether a plan reads a whole table instead of looking rows up by an index.
fn full_scans(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter(|line| {
            let line = line.trim_start_matches([' ', '-', '>', '|', '`']).trim();
            // PostgreSQL: "Seq Scan on t"; SQLite: "SCAN t" (a search is "SEARCH t USING ...",
            // and "SCAN ... USING COVERING INDEX" still reads a whole index).
            line.contains("Seq Scan") || line.starts_with("SCAN ")
        })
        // SQLite reading a subquery's rows as they come, or the ids bound as a JSON array
        // (`json_each(?)`: a walk over the argument, not over a table).
        .filter(|line| !line.contains("SCAN (subquery-") && !line.contains("SCAN json_each"))
        .collect()
}

async fn bench(store: Store, seed: &Seed) {
    let started = Instant::now();
    store
        .bulk_load(&seed.reactions, &seed.comments, &seed.shares)
        .await
        .unwrap();
    store.analyze().await.unwrap();
    let loaded = started.elapsed();
    let stored = store.stored_stats().await.unwrap().len();
    assert_eq!(stored, BENCH_POSTS, "every post has stats");

    let mut rng = SplitMix64::new(7);
    let since = seed.now - 7 * DAY_MICROS;
    let limit = limits::DEFAULT_MAX_ACTIVITIES;
    let post_batches: Vec<Vec<String>> = (0..=BENCH_RUNS)
        .map(|_| sample(&mut rng, &seed.posts, BENCH_BATCH))
        .collect();
    let member_batches: Vec<Vec<String>> = (0..=BENCH_RUNS)
        .map(|_| sample(&mut rng, &seed.members, BENCH_BATCH))
        .collect();

    let plans = store
        .explain_hot_queries(&post_batches[0], &member_batches[0], since, limit)
        .await
        .unwrap();
    println!(
        "\n===== {}: {} reactions, {} comments, {} shares, {} posts with stats; loaded and analyzed in {:.1} s",
        plans.backend,
        seed.reactions.len(),
        seed.comments.len(),
        seed.shares.len(),
        stored,
        loaded.as_secs_f64()
    );
    println!(
        "--- batch_get_post_stats({BENCH_BATCH} random post ids):\n{}",
        plans.post_stats
    );
    println!(
        "--- list_recent_activity({BENCH_BATCH} random members, last 7 of 30 days, limit {limit}):\n{}",
        plans.recent_activity
    );

    // The first batch warmed the caches (and, on PostgreSQL, was the EXPLAINed one).
    let mut stats_runs = Vec::with_capacity(BENCH_RUNS);
    for ids in &post_batches[1..] {
        let started = Instant::now();
        let got = store.batch_get_post_stats(ids).await.unwrap();
        stats_runs.push(started.elapsed());
        assert_eq!(got.len(), BENCH_BATCH);
        assert!(got.iter().all(|s| s.total_reactions() > 0));
    }
    let mut activity_runs = Vec::with_capacity(BENCH_RUNS);
    let mut listed = 0;
    for members in &member_batches[1..] {
        let started = Instant::now();
        let got = store
            .list_recent_activity(members, since, limit)
            .await
            .unwrap();
        activity_runs.push(started.elapsed());
        listed += got.len();
    }
    println!(
        "--- {}: batch_get_post_stats      {}",
        plans.backend,
        summary(stats_runs)
    );
    println!(
        "--- {}: list_recent_activity      {} ({} activities per call on average)",
        plans.backend,
        summary(activity_runs),
        listed / BENCH_RUNS
    );

    for (query, plan) in [
        ("batch_get_post_stats", &plans.post_stats),
        ("list_recent_activity", &plans.recent_activity),
    ] {
        let scans = full_scans(plan);
        assert!(
            scans.is_empty(),
            "{} {query} reads whole tables: {scans:?}",
            plans.backend
        );
    }
}

/// `cargo test -p pronet-engagement --release -- --ignored stats_query_bench --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: seeds 100,000 posts on each backend"]
async fn stats_query_bench() {
    let seed = bench_seed();

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .unwrap();
    bench(Arc::new(sqlite.clone()), &seed).await;
    sqlite.close().await;

    let Some(t) = postgres_schema("stats_query_bench").await else {
        return;
    };
    let pg = PgEngagementStore::open(&t.url, &t.schema).await.unwrap();
    bench(Arc::new(pg.clone()), &seed).await;
    pg.close().await;
}

fn reaction(post_id: &str, member_id: &str, t: ReactionType, time: i64) -> ReactionRecord {
    ReactionRecord {
        post_id: post_id.into(),
        member_id: member_id.into(),
        reaction_type: t,
        create_time: time,
    }
}

fn impression(post_id: &str, member_id: &str, view_time: i64) -> ImpressionRecord {
    ImpressionRecord {
        post_id: post_id.into(),
        member_id: member_id.into(),
        view_time,
    }
}

/// Some of everything on posts `{prefix}1` and `{prefix}2`, with repeats of each kind.
fn sample_import(prefix: &str) -> EngagementImport {
    use ReactionType::*;
    let p1 = format!("{prefix}1");
    let p2 = format!("{prefix}2");
    EngagementImport {
        reactions: vec![
            reaction(&p1, "m1", Like, 10),
            reaction(&p1, "m2", Like, 11),
            reaction(&p1, "m3", Love, 12),
            reaction(&p2, "m1", Funny, 13),
            // The same member again: replaces the Funny.
            reaction(&p2, "m1", Celebrate, 14),
        ],
        comments: vec![
            comment(&format!("{prefix}c1"), &p1, "m1", 20),
            comment(&format!("{prefix}c2"), &p1, "m2", 21),
            comment(&format!("{prefix}c1"), &p1, "m1", 20),
        ],
        shares: vec![
            share(&format!("{prefix}s1"), &p1, "m1", 30),
            // The same (post, member), then the same id: skipped.
            share(&format!("{prefix}s2"), &p1, "m1", 31),
            share(&format!("{prefix}s1"), &p2, "m3", 32),
            share(&format!("{prefix}s3"), &p2, "m2", 33),
        ],
        impressions: vec![
            impression(&p1, "m1", 40),
            // The same day: skipped.
            impression(&p1, "m1", 41),
            impression(&p1, "m1", DAY_MICROS + 40),
            impression(&p1, "m2", 42),
            impression(&p2, "m1", 43),
        ],
    }
}

async fn check_an_import_counts_exactly_as_the_one_by_one_writes(store: Store) {
    use ReactionType::*;
    let counts = store
        .import_engagement(sample_import("p"))
        .await
        .expect("import");
    assert_eq!(
        counts,
        ImportCounts {
            reactions: 4,
            comments: 2,
            shares: 2,
            impressions: 4,
            skipped: 5,
        }
    );
    let p1 = stats(&store, "p1").await;
    assert_eq!(p1.reactions, [2, 0, 0, 1, 0, 0]);
    assert_eq!(
        (p1.comments, p1.shares, p1.impressions, p1.unique_viewers),
        (2, 1, 3, 2)
    );
    let p2 = stats(&store, "p2").await;
    assert_eq!(p2.reactions, [0, 1, 0, 0, 0, 0]);
    assert_eq!(
        (p2.comments, p2.shares, p2.impressions, p2.unique_viewers),
        (0, 1, 1, 1)
    );

    // The same engagement, one write at a time, on posts q1 and q2: the same counts.
    let one_by_one = sample_import("q");
    for r in &one_by_one.reactions {
        store
            .react(&r.post_id, &r.member_id, r.reaction_type, r.create_time)
            .await
            .unwrap();
    }
    for c in one_by_one.comments.into_iter().take(2) {
        store.create_comment(c, None).await.unwrap();
    }
    for s in [
        &one_by_one.shares[0],
        &one_by_one.shares[1],
        &one_by_one.shares[3],
    ] {
        store.record_share(s.clone()).await.unwrap();
    }
    for i in &one_by_one.impressions {
        let day = crate::domain::utc_day(i.view_time);
        let posts = [i.post_id.clone()];
        store
            .record_impressions(&i.member_id, &posts, day, i.view_time)
            .await
            .unwrap();
    }
    for (imported, written) in [("p1", "q1"), ("p2", "q2")] {
        let mut expected = stats(&store, written).await;
        expected.post_id = imported.into();
        assert_eq!(stats(&store, imported).await, expected);
    }
    let listed = store
        .list_reactions(&ReactionQuery {
            post_id: "p2".into(),
            reaction_type: None,
            members: Vec::new(),
            include: false,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    // A new reaction starts at its first time.
    assert_eq!(listed, [reaction("p2", "m1", Celebrate, 13)]);
    assert_counts_match_rows(&store).await;
}

async fn check_a_retried_import_is_skipped_whole_and_changes_no_count(store: Store) {
    store.import_engagement(sample_import("p")).await.unwrap();
    let before = store.stored_stats().await.unwrap();
    let batch = sample_import("p");
    let items = batch.len() as u64;
    let counts = store.import_engagement(batch).await.unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            skipped: items,
            ..ImportCounts::default()
        }
    );
    assert_eq!(store.stored_stats().await.unwrap(), before);
    assert_eq!(
        store
            .import_engagement(EngagementImport::default())
            .await
            .unwrap(),
        ImportCounts::default()
    );
    assert_counts_match_rows(&store).await;
}

async fn check_an_imported_reaction_of_another_type_moves_its_count(store: Store) {
    use ReactionType::*;
    store.react("p1", "m1", Like, 5).await.unwrap();
    store.react("p1", "m2", Like, 6).await.unwrap();
    let batch = EngagementImport {
        reactions: vec![
            reaction("p1", "m1", Love, 50),
            reaction("p1", "m2", Like, 51),
        ],
        ..EngagementImport::default()
    };
    let counts = store.import_engagement(batch).await.unwrap();
    assert_eq!((counts.reactions, counts.skipped), (1, 1));
    assert_eq!(stats(&store, "p1").await.reactions, [1, 0, 0, 1, 0, 0]);
    let listed = store
        .list_reactions(&ReactionQuery {
            post_id: "p1".into(),
            reaction_type: Some(Love),
            members: Vec::new(),
            include: false,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    // The type changes; the reaction keeps its first time.
    assert_eq!(listed, [reaction("p1", "m1", Love, 5)]);
    assert_counts_match_rows(&store).await;
}

async fn check_a_full_import_keeps_counts_equal_to_rows(store: Store) {
    // The largest batch, over many statements on SQLite: 10 posts, 10,000 items.
    let posts: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let mut batch = EngagementImport::default();
    for i in 0..4000usize {
        let t = ReactionType::ALL[i % 6];
        batch.reactions.push(reaction(
            &posts[i % 10],
            &format!("m{}", i / 10),
            t,
            i as i64,
        ));
    }
    for i in 0..2000usize {
        let post = &posts[i % 10];
        let member = format!("m{i}");
        batch
            .comments
            .push(comment(&format!("c{i}"), post, &member, i as i64));
        batch
            .shares
            .push(share(&format!("s{i}"), post, &member, i as i64));
        let view = (i % 3) as i64 * DAY_MICROS + i as i64;
        batch
            .impressions
            .push(impression(post, &format!("m{}", i / 30), view));
    }
    let counts = store.import_engagement(batch).await.unwrap();
    assert_eq!(
        (counts.reactions, counts.comments, counts.shares),
        (4000, 2000, 2000)
    );
    assert_eq!(counts.impressions + counts.skipped, 2000);
    let all = store.batch_get_post_stats(&posts).await.unwrap();
    assert_eq!(all.iter().map(|s| s.total_reactions()).sum::<i64>(), 4000);
    assert_eq!(all.iter().map(|s| s.comments).sum::<i64>(), 2000);
    assert_eq!(all.iter().map(|s| s.shares).sum::<i64>(), 2000);
    assert_eq!(
        all.iter().map(|s| s.impressions).sum::<i64>(),
        counts.impressions as i64
    );
    assert_counts_match_rows(&store).await;
}

async fn check_imports_racing_reacts_keep_counts_exact(store: Store) {
    // Half the tasks import reactions of every member to one post, the other half react one
    // by one with other types, all at once.
    in_tasks(&store, |store, task| async move {
        let t = ReactionType::ALL[task % 6];
        if task % 2 == 0 {
            let batch = EngagementImport {
                reactions: (0..50)
                    .map(|m| reaction("p1", &format!("m{m}"), t, task as i64))
                    .collect(),
                ..EngagementImport::default()
            };
            store.import_engagement(batch).await.expect("import");
        } else {
            for m in 0..50 {
                store
                    .react("p1", &format!("m{m}"), t, task as i64)
                    .await
                    .expect("react");
            }
        }
    })
    .await;
    assert_eq!(stats(&store, "p1").await.total_reactions(), 50);
    assert_counts_match_rows(&store).await;
}

// Events: what each write appends to the outbox, and the export.

/// Every event in the outbox, checked to be numbered 1..n and from this service, as payloads.
async fn written(store: &Store) -> Vec<Payload> {
    let events = store.outbox().read_after(0, 1000).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.sequence, i as i64 + 1, "sequences are 1..n in order");
        assert_eq!(e.source, crate::events::SOURCE);
        assert!(!e.id.is_empty());
    }
    events
        .into_iter()
        .map(|e| e.payload.expect("a payload"))
        .collect()
}

fn ts(micros: i64) -> Option<prost_types::Timestamp> {
    Some(to_timestamp(micros))
}

fn reaction_set(
    post: &str,
    member: &str,
    t: PbReactionType,
    previous: PbReactionType,
    create_time: i64,
) -> Payload {
    Payload::ReactionSet(pb::ReactionSet {
        post_id: post.into(),
        member_id: member.into(),
        reaction_type: t as i32,
        previous_type: previous as i32,
        create_time: ts(create_time),
    })
}

fn reaction_removed(post: &str, member: &str, t: PbReactionType) -> Payload {
    Payload::ReactionRemoved(pb::ReactionRemoved {
        post_id: post.into(),
        member_id: member.into(),
        reaction_type: t as i32,
    })
}

fn comment_created(id: &str, post: &str, member: &str, parent: &str, time: i64) -> Payload {
    Payload::CommentCreated(pb::CommentCreated {
        comment_id: id.into(),
        post_id: post.into(),
        member_id: member.into(),
        parent_comment_id: parent.into(),
        create_time: ts(time),
    })
}

fn comment_deleted(id: &str, post: &str, member: &str) -> Payload {
    Payload::CommentDeleted(pb::CommentDeleted {
        comment_id: id.into(),
        post_id: post.into(),
        member_id: member.into(),
    })
}

fn share_recorded(id: &str, post: &str, member: &str, time: i64) -> Payload {
    Payload::ShareRecorded(pb::ShareRecorded {
        share_id: id.into(),
        post_id: post.into(),
        member_id: member.into(),
        create_time: ts(time),
    })
}

fn impressions_recorded(member: &str, posts: &[&str], first_views: &[&str]) -> Payload {
    Payload::ImpressionsRecorded(pb::ImpressionsRecorded {
        member_id: member.into(),
        post_ids: posts.iter().map(|p| p.to_string()).collect(),
        first_view_post_ids: first_views.iter().map(|p| p.to_string()).collect(),
        view_times: Vec::new(),
    })
}

/// The same, from an import or an export: with when each post was shown.
fn impressions_at(member: &str, posts: &[&str], first_views: &[&str], times: &[i64]) -> Payload {
    crate::events::impressions_recorded_at(
        member,
        posts.iter().map(|p| p.to_string()).collect(),
        first_views.iter().map(|p| p.to_string()).collect(),
        times.to_vec(),
    )
}

fn ids(posts: &[&str]) -> Vec<String> {
    posts.iter().map(|p| p.to_string()).collect()
}

/// The export of `store` since `since`, through the event service: its position (the same in
/// every message) and its payloads with their times.
async fn export(store: &Store, since: Option<i64>) -> (i64, Vec<(Payload, i64)>) {
    let (positions, events) =
        pronet_common::testing::export_through_service(crate::events::SOURCE, store.clone(), since)
            .await;
    let position = positions.first().copied();
    assert!(positions.iter().all(|p| Some(*p) == position));
    assert!(events
        .iter()
        .all(|e| e.sequence == 0 && e.source == crate::events::SOURCE));
    let events = events
        .into_iter()
        .map(|e| {
            let time = pronet_common::time::from_timestamp(&e.occur_time.unwrap()).unwrap();
            (e.payload.unwrap(), time)
        })
        .collect();
    (
        position.expect("an export sends at least one message"),
        events,
    )
}

async fn check_reacting_writes_reaction_set_only_when_the_reaction_changes(store: Store) {
    use PbReactionType::{Like, Love, Unspecified};
    store
        .react("p1", "m1", ReactionType::Like, 10)
        .await
        .unwrap();
    // The same type again changes nothing.
    store
        .react("p1", "m1", ReactionType::Like, 20)
        .await
        .unwrap();
    store
        .react("p1", "m1", ReactionType::Love, 30)
        .await
        .unwrap();
    store
        .react("p2", "m1", ReactionType::Love, 40)
        .await
        .unwrap();
    assert_eq!(
        written(&store).await,
        [
            reaction_set("p1", "m1", Like, Unspecified, 10),
            // A change keeps the time the member first reacted.
            reaction_set("p1", "m1", Love, Like, 10),
            reaction_set("p2", "m1", Love, Unspecified, 40),
        ]
    );
    let events = store.outbox().read_after(0, 10).await.unwrap();
    let times: Vec<i64> = events
        .iter()
        .map(|e| pronet_common::time::from_timestamp(e.occur_time.as_ref().unwrap()).unwrap())
        .collect();
    assert_eq!(times, [10, 30, 40]);
}

async fn check_unreacting_writes_the_removed_type_only_when_there_was_one(store: Store) {
    use PbReactionType::{Funny, Unspecified};
    // Nothing to remove: no event.
    assert!(!store.unreact("p1", "m1").await.unwrap());
    store
        .react("p1", "m1", ReactionType::Funny, 10)
        .await
        .unwrap();
    assert!(store.unreact("p1", "m1").await.unwrap());
    assert!(!store.unreact("p1", "m1").await.unwrap());
    assert_eq!(
        written(&store).await,
        [
            reaction_set("p1", "m1", Funny, Unspecified, 10),
            reaction_removed("p1", "m1", Funny),
        ]
    );
}

async fn check_a_comment_writes_comment_created_once_and_a_failed_one_none(store: Store) {
    let key = IdempotencyKey {
        caller: "member:m1".into(),
        request_id: "r1".into(),
    };
    store
        .create_comment(comment("c1", "p1", "m1", 10), Some(key.clone()))
        .await
        .unwrap();
    // The retry returns the first comment and writes nothing.
    store
        .create_comment(comment("c1b", "p1", "m1", 11), Some(key))
        .await
        .unwrap();
    let mut reply = comment("r1", "p1", "m2", 20);
    reply.parent_id = Some("c1".into());
    store.create_comment(reply, None).await.unwrap();
    // A reply to a reply answers the top-level comment.
    let mut nested = comment("r2", "p1", "m3", 30);
    nested.parent_id = Some("r1".into());
    store.create_comment(nested, None).await.unwrap();
    // Failed writes: an unknown parent, a parent on another post.
    let mut orphan = comment("r3", "p1", "m3", 40);
    orphan.parent_id = Some("nope".into());
    assert!(matches!(
        store.create_comment(orphan, None).await,
        Err(EngagementError::NotFound("comment"))
    ));
    let mut elsewhere = comment("r4", "p2", "m3", 40);
    elsewhere.parent_id = Some("c1".into());
    assert!(store.create_comment(elsewhere, None).await.is_err());
    assert_eq!(
        written(&store).await,
        [
            comment_created("c1", "p1", "m1", "", 10),
            comment_created("r1", "p1", "m2", "c1", 20),
            comment_created("r2", "p1", "m3", "c1", 30),
        ]
    );
}

async fn check_deleting_a_top_level_comment_writes_one_event_per_comment_removed(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 10), None)
        .await
        .unwrap();
    for (id, member, time) in [("r1", "m2", 20), ("r2", "m3", 30), ("r3", "m4", 40)] {
        let mut reply = comment(id, "p1", member, time);
        reply.parent_id = Some("c1".into());
        store.create_comment(reply, None).await.unwrap();
    }
    store
        .react_to_comment("r1", "m9", ReactionType::Like, 50)
        .await
        .unwrap();
    let before = written(&store).await.len();
    // A reply alone.
    assert_eq!(store.delete_comment("r3").await.unwrap(), 1);
    // The top-level comment with its remaining replies.
    assert_eq!(store.delete_comment("c1").await.unwrap(), 3);
    // Gone: a failed delete writes nothing.
    assert!(matches!(
        store.delete_comment("c1").await,
        Err(EngagementError::NotFound("comment"))
    ));
    let events = written(&store).await;
    assert_eq!(
        events[before..],
        [
            comment_deleted("r3", "p1", "m4"),
            comment_deleted("c1", "p1", "m1"),
            comment_deleted("r1", "p1", "m2"),
            comment_deleted("r2", "p1", "m3"),
        ]
    );
}

async fn check_edits_and_comment_reactions_write_no_events(store: Store) {
    store
        .create_comment(comment("c1", "p1", "m1", 10), None)
        .await
        .unwrap();
    store.update_comment_text("c1", "edited", 20).await.unwrap();
    store
        .react_to_comment("c1", "m2", ReactionType::Love, 30)
        .await
        .unwrap();
    store
        .react_to_comment("c1", "m2", ReactionType::Like, 40)
        .await
        .unwrap();
    store.unreact_to_comment("c1", "m2").await.unwrap();
    assert_eq!(
        written(&store).await,
        [comment_created("c1", "p1", "m1", "", 10)]
    );
}

async fn check_a_share_writes_share_recorded_only_when_counted(store: Store) {
    store
        .record_share(share("s1", "p1", "m1", 10))
        .await
        .unwrap();
    // A repeat by the same member returns the first and writes nothing.
    let again = store
        .record_share(share("s2", "p1", "m1", 20))
        .await
        .unwrap();
    assert_eq!(again.id, "s1");
    store
        .record_share(share("s3", "p1", "m2", 30))
        .await
        .unwrap();
    assert_eq!(
        written(&store).await,
        [
            share_recorded("s1", "p1", "m1", 10),
            share_recorded("s3", "p1", "m2", 30),
        ]
    );
}

async fn check_impressions_write_the_new_posts_and_first_views_once(store: Store) {
    let day = crate::domain::DAY_MICROS;
    assert_eq!(
        store
            .record_impressions("m1", &ids(&["p2", "p1"]), 1, day + 1)
            .await
            .unwrap(),
        2
    );
    // p1 again the same day counts nothing; p3 is new.
    store
        .record_impressions("m1", &ids(&["p1", "p3"]), 1, day + 2)
        .await
        .unwrap();
    // Nothing new: no event.
    assert_eq!(
        store
            .record_impressions("m1", &ids(&["p1", "p3"]), 1, day + 3)
            .await
            .unwrap(),
        0
    );
    // The next day p1 counts again, though not as a first view; p4 is both.
    store
        .record_impressions("m1", &ids(&["p4", "p1"]), 2, 2 * day + 1)
        .await
        .unwrap();
    store
        .record_impressions("m2", &ids(&["p1"]), 2, 2 * day + 2)
        .await
        .unwrap();
    assert_eq!(
        written(&store).await,
        [
            impressions_recorded("m1", &["p2", "p1"], &["p2", "p1"]),
            impressions_recorded("m1", &["p3"], &["p3"]),
            impressions_recorded("m1", &["p4", "p1"], &["p4"]),
            impressions_recorded("m2", &["p1"], &["p1"]),
        ]
    );
}

async fn check_an_import_writes_the_events_of_what_it_imported(store: Store) {
    use PbReactionType::{Celebrate, Funny, Like, Unspecified};
    let day = crate::domain::DAY_MICROS;
    store
        .react("p1", "m1", ReactionType::Like, 5)
        .await
        .unwrap();
    store
        .react("p3", "m3", ReactionType::Love, 6)
        .await
        .unwrap();
    store
        .create_comment(comment("c0", "p1", "m1", 7), None)
        .await
        .unwrap();
    store
        .record_share(share("s0", "p1", "m1", 8))
        .await
        .unwrap();
    store
        .record_impressions("m1", &ids(&["p2"]), 0, 9)
        .await
        .unwrap();
    let before = written(&store).await.len();
    let reaction = |post: &str, member: &str, t, time| ReactionRecord {
        post_id: post.into(),
        member_id: member.into(),
        reaction_type: t,
        create_time: time,
    };
    let view = |post: &str, member: &str, time| ImpressionRecord {
        post_id: post.into(),
        member_id: member.into(),
        view_time: time,
    };
    let batch = EngagementImport {
        reactions: vec![
            // A changed type: its first time stays the stored one.
            reaction("p1", "m1", ReactionType::Celebrate, 100),
            // New, changed within the batch: the last type at the first time.
            reaction("p2", "m2", ReactionType::Like, 110),
            reaction("p2", "m2", ReactionType::Funny, 120),
            // The stored type again: skipped.
            reaction("p3", "m3", ReactionType::Love, 130),
        ],
        comments: vec![
            comment("c1", "p1", "m2", 140),
            comment("c0", "p1", "m9", 150),
        ],
        shares: vec![
            share("s1", "p2", "m2", 160),
            // Taken (post, member), taken id: skipped.
            share("s2", "p1", "m1", 170),
            share("s0", "p3", "m5", 180),
        ],
        impressions: vec![
            // m1 saw p2 on day 0 already: new impressions on days 1 and 2, no first view.
            view("p2", "m1", day + 5),
            view("p2", "m1", 2 * day + 5),
            view("p1", "m1", day + 6),
            // Again the same day: folded.
            view("p1", "m1", day + 7),
            // The same day as stored: skipped.
            view("p2", "m1", 10),
            view("p1", "m2", 2 * day + 8),
        ],
    };
    let counts = store.import_engagement(batch).await.unwrap();
    assert_eq!(
        (
            counts.reactions,
            counts.comments,
            counts.shares,
            counts.impressions
        ),
        (2, 1, 1, 4)
    );
    let events = written(&store).await;
    assert_eq!(
        events[before..],
        [
            reaction_set("p1", "m1", Celebrate, Like, 5),
            reaction_set("p2", "m2", Funny, Unspecified, 110),
            comment_created("c1", "p1", "m2", "", 140),
            share_recorded("s1", "p2", "m2", 160),
            impressions_at("m1", &["p1", "p2"], &["p1"], &[day + 6, day + 5]),
            impressions_at("m1", &["p2"], &[], &[2 * day + 5]),
            impressions_at("m2", &["p1"], &["p1"], &[2 * day + 8]),
        ]
    );
}

async fn check_a_retried_import_writes_no_events(store: Store) {
    let batch = EngagementImport {
        reactions: vec![ReactionRecord {
            post_id: "p1".into(),
            member_id: "m1".into(),
            reaction_type: ReactionType::Support,
            create_time: 10,
        }],
        comments: vec![comment("c1", "p1", "m2", 20)],
        shares: vec![share("s1", "p1", "m3", 30)],
        impressions: vec![ImpressionRecord {
            post_id: "p1".into(),
            member_id: "m4".into(),
            view_time: 40,
        }],
    };
    store.import_engagement(batch.clone()).await.unwrap();
    let first = written(&store).await;
    assert_eq!(first.len(), 4);
    let counts = store.import_engagement(batch).await.unwrap();
    assert_eq!(counts.skipped, 4);
    assert_eq!(written(&store).await, first);
}

async fn check_export_is_the_current_engagement_at_the_outbox_head(store: Store) {
    use PbReactionType::{Funny, Like, Unspecified};
    store
        .react("p1", "m1", ReactionType::Like, 10)
        .await
        .unwrap();
    store
        .react("p1", "m1", ReactionType::Funny, 15)
        .await
        .unwrap();
    store
        .react("p1", "m2", ReactionType::Like, 20)
        .await
        .unwrap();
    store
        .react("p2", "m3", ReactionType::Like, 25)
        .await
        .unwrap();
    // Removed: absent from the export.
    store.unreact("p2", "m3").await.unwrap();
    store
        .create_comment(comment("c1", "p1", "m1", 30), None)
        .await
        .unwrap();
    let mut reply = comment("c2", "p1", "m2", 35);
    reply.parent_id = Some("c1".into());
    store.create_comment(reply, None).await.unwrap();
    store
        .create_comment(comment("c3", "p2", "m2", 40), None)
        .await
        .unwrap();
    store.delete_comment("c3").await.unwrap();
    store
        .record_share(share("s1", "p1", "m4", 45))
        .await
        .unwrap();
    store
        .record_impressions("m1", &ids(&["p1"]), 0, 50)
        .await
        .unwrap();
    let head = store.outbox().status().await.unwrap().head;
    assert_eq!(head, written(&store).await.len() as i64);
    let (position, events) = export(&store, None).await;
    assert_eq!(position, head);
    assert_eq!(
        events,
        [
            // The reaction as it is now, at its last change, with its first time.
            (reaction_set("p1", "m1", Funny, Unspecified, 10), 15),
            (reaction_set("p1", "m2", Like, Unspecified, 20), 20),
            (comment_created("c1", "p1", "m1", "", 30), 30),
            (comment_created("c2", "p1", "m2", "c1", 35), 35),
            (share_recorded("s1", "p1", "m4", 45), 45),
            (impressions_at("m1", &["p1"], &["p1"], &[50]), 50),
        ]
    );
    // The export is a read: the outbox is as it was.
    assert_eq!(store.outbox().status().await.unwrap().head, head);
}

async fn check_export_impressions_rebuild_each_posts_counts(store: Store) {
    let day = crate::domain::DAY_MICROS;
    for d in 0..3 {
        store
            .record_impressions("m1", &ids(&["p1", "p2"]), d, d * day + 1)
            .await
            .unwrap();
    }
    store
        .record_impressions("m2", &ids(&["p2"]), 1, day + 2)
        .await
        .unwrap();
    store
        .import_engagement(EngagementImport {
            impressions: vec![ImpressionRecord {
                post_id: "p3".into(),
                member_id: "m0".into(),
                view_time: 5 * day,
            }],
            ..EngagementImport::default()
        })
        .await
        .unwrap();
    let (_, events) = export(&store, None).await;
    // Per member, in member order: each post once per day shown, first views once.
    assert_eq!(
        events,
        [
            (impressions_at("m0", &["p3"], &["p3"], &[5 * day]), 5 * day),
            (
                impressions_at(
                    "m1",
                    &["p1", "p1", "p1", "p2", "p2", "p2"],
                    &["p1", "p2"],
                    &[2 * day + 1; 6]
                ),
                2 * day + 1
            ),
            (impressions_at("m2", &["p2"], &["p2"], &[day + 2]), day + 2),
        ]
    );
    // Counting them gives the stored counts.
    let mut rebuilt: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (payload, _) in &events {
        let Payload::ImpressionsRecorded(i) = payload else {
            panic!("not impressions: {payload:?}");
        };
        for p in &i.post_ids {
            rebuilt.entry(p.clone()).or_default().0 += 1;
        }
        for p in &i.first_view_post_ids {
            rebuilt.entry(p.clone()).or_default().1 += 1;
        }
    }
    let posts: Vec<String> = rebuilt.keys().cloned().collect();
    let stored: BTreeMap<String, (i64, i64)> = store
        .batch_get_post_stats(&posts)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.post_id, (s.impressions, s.unique_viewers)))
        .collect();
    assert_eq!(rebuilt, stored);
}

async fn check_export_since_keeps_engagement_created_from_then(store: Store) {
    use PbReactionType::{Love, Unspecified};
    let day = crate::domain::DAY_MICROS;
    store
        .react("p1", "m1", ReactionType::Like, 10)
        .await
        .unwrap();
    store
        .react("p1", "m2", ReactionType::Love, 100)
        .await
        .unwrap();
    store
        .create_comment(comment("c1", "p1", "m1", 20), None)
        .await
        .unwrap();
    store
        .create_comment(comment("c2", "p1", "m1", 100), None)
        .await
        .unwrap();
    store
        .record_share(share("s1", "p1", "m1", 30))
        .await
        .unwrap();
    store
        .record_share(share("s2", "p1", "m2", 100))
        .await
        .unwrap();
    store
        .record_impressions("m1", &ids(&["p1"]), 0, 40)
        .await
        .unwrap();
    store
        .record_impressions("m1", &ids(&["p1", "p2"]), 1, day)
        .await
        .unwrap();
    // A reaction created before `since` and changed after it was created before.
    store
        .react("p1", "m1", ReactionType::Love, 200)
        .await
        .unwrap();
    let (_, events) = export(&store, Some(100)).await;
    assert_eq!(
        events,
        [
            (reaction_set("p1", "m2", Love, Unspecified, 100), 100),
            (comment_created("c2", "p1", "m1", "", 100), 100),
            (share_recorded("s2", "p1", "m2", 100), 100),
            // p1 was first shown before: an impression of the window, not a first view.
            (
                impressions_at("m1", &["p1", "p2"], &["p2"], &[day, day]),
                day
            ),
        ]
    );
}

async fn check_export_of_an_empty_store_is_position_zero(store: Store) {
    let (position, events) = export(&store, None).await;
    assert_eq!(position, 0);
    assert!(events.is_empty());
}

async fn check_export_splits_a_member_shown_many_posts_into_bounded_events(store: Store) {
    let posts: Vec<String> = (0..1500).map(|i| format!("p{i:04}")).collect();
    let impressions = posts
        .iter()
        .map(|p| ImpressionRecord {
            post_id: p.clone(),
            member_id: "m1".into(),
            view_time: 10,
        })
        .collect();
    store
        .import_engagement(EngagementImport {
            impressions,
            ..EngagementImport::default()
        })
        .await
        .unwrap();
    let (_, events) = export(&store, None).await;
    let lists: Vec<(usize, usize)> = events
        .iter()
        .map(|(payload, _)| match payload {
            Payload::ImpressionsRecorded(i) => {
                assert_eq!(i.member_id, "m1");
                // Each event's first views are among its own posts.
                assert_eq!(i.first_view_post_ids, i.post_ids);
                (i.post_ids.len(), i.first_view_post_ids.len())
            }
            other => panic!("not impressions: {other:?}"),
        })
        .collect();
    assert_eq!(lists, [(1000, 1000), (500, 500)]);
}

// Negative feedback: hidden posts, muted hashtags and authors.

async fn check_mutes_are_made_once_listed_newest_first_and_taken_back(store: Store) {
    let rust = Mute::new(MuteKind::Hashtag, "rust");
    let sales = Mute::new(MuteKind::Hashtag, "sales");
    assert_eq!(store.mute("m1", &rust, 10).await.unwrap(), 10);
    assert_eq!(store.mute("m1", &sales, 20).await.unwrap(), 20);
    // A repeat keeps the first time.
    assert_eq!(store.mute("m1", &rust, 30).await.unwrap(), 10);
    // Kinds and members are apart: the same target as an author, another member's mute.
    store
        .mute("m1", &Mute::new(MuteKind::Author, "rust"), 40)
        .await
        .unwrap();
    store.mute("m2", &rust, 50).await.unwrap();
    assert_eq!(
        store.list_mutes("m1", MuteKind::Hashtag, 10).await.unwrap(),
        ["sales", "rust"]
    );
    assert_eq!(
        store.list_mutes("m1", MuteKind::Hashtag, 1).await.unwrap(),
        ["sales"]
    );
    assert_eq!(
        store.list_mutes("m1", MuteKind::Author, 10).await.unwrap(),
        ["rust"]
    );
    assert!(store
        .list_mutes("m1", MuteKind::Post, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.unmute("m1", &rust).await.unwrap());
    assert!(!store.unmute("m1", &rust).await.unwrap());
    assert_eq!(
        store.list_mutes("m1", MuteKind::Hashtag, 10).await.unwrap(),
        ["sales"]
    );
    assert_eq!(
        store.list_mutes("m2", MuteKind::Hashtag, 10).await.unwrap(),
        ["rust"]
    );
}

async fn check_mutes_write_their_events_only_when_they_change(store: Store) {
    let post = Mute::new(MuteKind::Post, "p1");
    let tag = Mute::new(MuteKind::Hashtag, "rust");
    let author = Mute::new(MuteKind::Author, "a1");
    for _ in 0..2 {
        store.mute("m1", &post, 5).await.unwrap();
        store.mute("m1", &tag, 6).await.unwrap();
        store.mute("m1", &author, 7).await.unwrap();
    }
    for _ in 0..2 {
        store.unmute("m1", &post).await.unwrap();
        store.unmute("m1", &tag).await.unwrap();
        store.unmute("m1", &author).await.unwrap();
    }
    assert_eq!(
        written(&store).await,
        [
            Payload::PostHidden(pb::PostHidden {
                member_id: "m1".into(),
                post_id: "p1".into(),
                hide_time: ts(5),
            }),
            Payload::HashtagMuted(pb::HashtagMuted {
                member_id: "m1".into(),
                hashtag: "rust".into(),
            }),
            Payload::AuthorMuted(pb::AuthorMuted {
                member_id: "m1".into(),
                author_id: "a1".into(),
            }),
            Payload::PostUnhidden(pb::PostUnhidden {
                member_id: "m1".into(),
                post_id: "p1".into(),
            }),
            Payload::HashtagUnmuted(pb::HashtagUnmuted {
                member_id: "m1".into(),
                hashtag: "rust".into(),
            }),
            Payload::AuthorUnmuted(pb::AuthorUnmuted {
                member_id: "m1".into(),
                author_id: "a1".into(),
            }),
        ]
    );
}

async fn check_mutes_past_the_cap_are_refused_also_when_racing(store: Store) {
    for i in 0..MAX_MUTES - 8 {
        store
            .mute("m1", &Mute::new(MuteKind::Author, format!("a{i}")), 1)
            .await
            .unwrap();
    }
    // 32 racing requests for 8 free places: exactly 8 win.
    let results = in_tasks(&store, |store, i| async move {
        store
            .mute("m1", &Mute::new(MuteKind::Author, format!("racer{i}")), 2)
            .await
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 8);
    for r in results.into_iter().filter_map(Result::err) {
        assert!(
            matches!(&r, EngagementError::LimitReached(m) if m.contains("1000 muted authors")),
            "{r:?}"
        );
    }
    let held = store
        .list_mutes("m1", MuteKind::Author, 2 * MAX_MUTES)
        .await
        .unwrap();
    assert_eq!(held.len(), MAX_MUTES);
    // A repeat of a held mute is no new one; another kind has its own cap; posts have none.
    store
        .mute("m1", &Mute::new(MuteKind::Author, "a0"), 3)
        .await
        .unwrap();
    store
        .mute("m1", &Mute::new(MuteKind::Hashtag, "rust"), 3)
        .await
        .unwrap();
    for i in 0..MAX_MUTES + 1 {
        store
            .mute("m1", &Mute::new(MuteKind::Post, format!("p{i}")), 3)
            .await
            .unwrap();
    }
}

async fn check_export_has_every_mute_and_hidden_posts_since(store: Store) {
    store
        .mute("m1", &Mute::new(MuteKind::Post, "old"), 50)
        .await
        .unwrap();
    store
        .mute("m1", &Mute::new(MuteKind::Post, "new"), 150)
        .await
        .unwrap();
    store
        .mute("m1", &Mute::new(MuteKind::Hashtag, "rust"), 50)
        .await
        .unwrap();
    store
        .mute("m2", &Mute::new(MuteKind::Author, "a1"), 60)
        .await
        .unwrap();
    store
        .mute("m2", &Mute::new(MuteKind::Author, "gone"), 70)
        .await
        .unwrap();
    store
        .unmute("m2", &Mute::new(MuteKind::Author, "gone"))
        .await
        .unwrap();
    let (_, events) = export(&store, Some(100)).await;
    assert_eq!(
        events,
        [
            (
                Payload::PostHidden(pb::PostHidden {
                    member_id: "m1".into(),
                    post_id: "new".into(),
                    hide_time: ts(150),
                }),
                150
            ),
            (
                Payload::HashtagMuted(pb::HashtagMuted {
                    member_id: "m1".into(),
                    hashtag: "rust".into(),
                }),
                50
            ),
            (
                Payload::AuthorMuted(pb::AuthorMuted {
                    member_id: "m2".into(),
                    author_id: "a1".into(),
                }),
                60
            ),
        ]
    );
    let (_, everything) = export(&store, None).await;
    assert_eq!(everything.len(), 4);
}

/// Every operation of the store `open_store` gives is timed under its name.
#[tokio::test]
async fn operations_are_timed_by_name_and_outcome() {
    let (_dir, store, metrics) = pronet_common::timed_sqlite_store!(crate::open_store);

    store
        .react("post-1", "member-1", ReactionType::Like, 1_000)
        .await
        .unwrap();
    let stats = store
        .batch_get_post_stats(&["post-1".to_owned()])
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);

    pronet_common::testing::assert_timed_once(
        &metrics,
        super::timed::STORE_NAME,
        &["react", "batch_get_post_stats"],
    );
}
