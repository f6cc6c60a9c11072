//! The store test suite, run against both backends: each `check_*` takes a fresh, empty store,
//! and `on_both_backends!` instantiates it on SQLite (a temporary file) and on PostgreSQL (a
//! schema of its own on the test server), as `<behaviour>::sqlite` and `<behaviour>::postgres`.
//!
//! `candidate_query_bench` (ignored) loads 100,000 posts into each backend and prints the
//! candidate query's plans and timings.

use std::collections::HashSet;
use std::sync::Arc;

use pronet_common::ids::new_id;
use pronet_common::outbox::Payload;
use pronet_common::testing::{key, postgres_schema, sorted_ids};
use pronet_common::time::to_timestamp;
use pronet_proto::events::v1 as pb;
use pronet_proto::post::v1::Visibility as PbVisibility;

use super::postgres::PgPostStore;
use super::sqlite::SqlitePostStore;
use super::{CreatedPost, PostStore};
use crate::domain::{
    Cursor, Mention, PostEdit, PostRecord, PostText, RecentPostsQuery, TimeRange, Visibility,
};
use crate::events::SOURCE;

type Store = Arc<dyn PostStore>;

macro_rules! on_both_backends {
    ($($check:ident => $behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = SqlitePostStore::open(&dir.path().join("post.db")).await.unwrap();
                $check(Arc::new(store.clone())).await;
                store.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(t) = postgres_schema(stringify!($behaviour)).await else {
                    return;
                };
                let store = PgPostStore::open(&t.url, &t.schema).await.unwrap();
                $check(Arc::new(store.clone())).await;
                store.close().await;
                drop(t);
            }
        }
    )*};
}

on_both_backends! {
    check_creates_and_gets_a_post => creates_and_gets_a_post,
    check_keeps_posts_without_hashtags_or_mentions => keeps_posts_without_hashtags_or_mentions,
    check_batch_get_returns_each_existing_post_once => batch_get_returns_each_existing_post_once,
    check_pages_an_authors_posts_newest_first_without_repeats =>
        pages_an_authors_posts_newest_first_without_repeats,
    check_pages_of_an_exact_multiple_end_with_an_empty_page =>
        pages_of_an_exact_multiple_end_with_an_empty_page,
    check_pages_through_posts_that_all_share_one_time =>
        pages_through_posts_that_all_share_one_time,
    check_lists_only_an_authors_posts_of_the_given_visibilities =>
        lists_only_an_authors_posts_of_the_given_visibilities,
    check_recent_posts_by_authors_since_newest_first => recent_posts_by_authors_since_newest_first,
    check_recent_posts_cap_each_author_before_the_overall_limit =>
        recent_posts_cap_each_author_before_the_overall_limit,
    check_recent_posts_add_hashtag_posts_once => recent_posts_add_hashtag_posts_once,
    check_recent_posts_break_time_ties_by_id => recent_posts_break_time_ties_by_id,
    check_recent_posts_of_nobody_are_empty => recent_posts_of_nobody_are_empty,
    check_a_retried_create_returns_the_first_post => a_retried_create_returns_the_first_post,
    check_idempotency_keys_are_scoped_by_caller => idempotency_keys_are_scoped_by_caller,
    check_racing_creates_with_one_key_make_one_post => racing_creates_with_one_key_make_one_post,
    check_concurrent_creates_without_keys_all_land => concurrent_creates_without_keys_all_land,
    check_keeps_reshares_and_resolved_mentions => keeps_reshares_and_resolved_mentions,
    check_a_deleted_post_is_gone_from_every_read => a_deleted_post_is_gone_from_every_read,
    check_racing_deletes_delete_once => racing_deletes_delete_once,
    check_an_edit_rewrites_the_text_and_its_hashtags => an_edit_rewrites_the_text_and_its_hashtags,
    check_racing_edits_leave_the_index_matching_the_text =>
        racing_edits_leave_the_index_matching_the_text,
    check_lists_an_authors_posts_in_a_time_range => lists_an_authors_posts_in_a_time_range,
    check_pages_posts_by_hashtag_newest_first => pages_posts_by_hashtag_newest_first,
    check_counts_hashtag_posts_per_window => counts_hashtag_posts_per_window,
    check_imports_posts_as_creates_would_and_skips_existing_ids =>
        imports_posts_as_creates_would_and_skips_existing_ids,
    check_imports_a_full_batch_with_its_hashtags => imports_a_full_batch_with_its_hashtags,
    check_a_create_writes_post_created_with_what_it_carries =>
        a_create_writes_post_created_with_what_it_carries,
    check_a_replayed_key_writes_no_event => a_replayed_key_writes_no_event,
    check_racing_creates_with_one_key_write_one_event =>
        racing_creates_with_one_key_write_one_event,
    check_a_failed_create_writes_no_event => a_failed_create_writes_no_event,
    check_an_import_writes_post_created_per_imported_post_only =>
        an_import_writes_post_created_per_imported_post_only,
    check_an_edit_writes_post_edited_and_a_missed_edit_nothing =>
        an_edit_writes_post_edited_and_a_missed_edit_nothing,
    check_a_delete_writes_post_deleted_once => a_delete_writes_post_deleted_once,
    check_racing_deletes_write_one_post_deleted => racing_deletes_write_one_post_deleted,
    check_export_is_the_current_posts_at_the_outbox_head =>
        export_is_the_current_posts_at_the_outbox_head,
    check_export_since_keeps_posts_created_from_then =>
        export_since_keeps_posts_created_from_then,
    check_export_of_an_empty_store_is_position_zero => export_of_an_empty_store_is_position_zero,
    check_export_pages_through_many_posts_sharing_times_once_each =>
        export_pages_through_many_posts_sharing_times_once_each,
}

fn post(id: &str, author: &str, text: &str, time: i64) -> PostRecord {
    PostRecord::new(
        id.into(),
        author.into(),
        PostText::parse(text).unwrap(),
        Visibility::Public,
        time,
    )
}

fn ids(posts: &[PostRecord]) -> Vec<&str> {
    posts.iter().map(|p| p.id.as_str()).collect()
}

fn recent(authors: &[&str], hashtags: &[&str], since: i64) -> RecentPostsQuery {
    RecentPostsQuery {
        author_ids: authors.iter().map(|s| s.to_string()).collect(),
        hashtags: hashtags.iter().map(|s| s.to_string()).collect(),
        since,
        max_posts: 1000,
        max_posts_per_author: None,
    }
}

async fn create(store: &Store, post: PostRecord) -> PostRecord {
    let created = store.create_post(post.clone(), None).await.unwrap();
    assert!(!created.replayed);
    assert_eq!(created.post, post);
    created.post
}

/// Every page of `author`'s posts of `size`: the page sizes, and (time, id) of every post
/// in the order listed.
async fn page_through(
    store: &Store,
    author: &str,
    size: usize,
) -> (Vec<usize>, Vec<(i64, String)>) {
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_posts_by_author(
                author,
                &Visibility::ALL,
                TimeRange::default(),
                after.clone(),
                size,
            )
            .await
            .unwrap();
        sizes.push(page.len());
        assert!(page.iter().all(|p| p.author_id == author));
        seen.extend(page.iter().map(|p| (p.create_time, p.id.clone())));
        match page.last() {
            Some(last) if page.len() == size => {
                after = Some(Cursor {
                    time: last.create_time,
                    id: last.id.clone(),
                })
            }
            _ => return (sizes, seen),
        }
    }
}

fn assert_newest_first_once(seen: &[(i64, String)], count: usize) {
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), count);
    assert_eq!(seen.len(), count);
    let mut newest_first = seen.to_vec();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first);
}

async fn check_creates_and_gets_a_post(store: Store) {
    let mut created = post("p1", "ada", "Hello @Bob_B #Rust #rust #WASM #Ελλάδα", 42);
    created.visibility = Visibility::Connections;
    create(&store, created.clone()).await;
    let got = store.get_post("p1").await.unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(got.hashtags, ["rust", "wasm", "ελλάδα"]);
    assert_eq!(got.mentions, ["bob_b"]);
    assert_eq!(got.visibility, Visibility::Connections);
    assert_eq!(store.get_post("nope").await.unwrap(), None);
}

async fn check_keeps_posts_without_hashtags_or_mentions(store: Store) {
    let plain = post("p1", "ada", "nothing to see\n\there", 1);
    create(&store, plain.clone()).await;
    let got = store.get_post("p1").await.unwrap().unwrap();
    assert_eq!(got, plain);
    assert!(got.hashtags.is_empty() && got.mentions.is_empty());
}

async fn check_batch_get_returns_each_existing_post_once(store: Store) {
    for (id, t) in [("a", 1), ("b", 2), ("c", 3)] {
        create(&store, post(id, "ada", "text", t)).await;
    }
    let want: Vec<String> = ["c", "missing", "a", "c"].map(String::from).into();
    let found = store.batch_get_posts(&want).await.unwrap();
    assert_eq!(sorted_ids(found, |p| p.id), ["a", "c"]);
    assert!(store.batch_get_posts(&[]).await.unwrap().is_empty());
    let missing: Vec<String> = vec!["x".into(), "y".into()];
    assert!(store.batch_get_posts(&missing).await.unwrap().is_empty());
}

async fn check_pages_an_authors_posts_newest_first_without_repeats(store: Store) {
    // 25 posts; pairs share a create_time so the id must break ties between pages.
    for i in 0..25_i64 {
        create(
            &store,
            post(&format!("post{i:02}"), "ada", "mine", 1_000 + i / 2),
        )
        .await;
        // Another author's posts at the same times must not leak in.
        create(
            &store,
            post(&format!("other{i:02}"), "bob", "theirs", 1_000 + i / 2),
        )
        .await;
    }
    let (sizes, seen) = page_through(&store, "ada", 10).await;
    assert_eq!(sizes, [10, 10, 5]);
    assert_newest_first_once(&seen, 25);
    assert_eq!(seen[0].1, "post24");
    assert_eq!(seen[24].1, "post00");
    let (sizes, seen) = page_through(&store, "nobody", 10).await;
    assert_eq!(sizes, [0]);
    assert!(seen.is_empty());
}

async fn check_pages_of_an_exact_multiple_end_with_an_empty_page(store: Store) {
    for i in 0..20_i64 {
        create(&store, post(&format!("p{i:02}"), "ada", "text", 100 + i)).await;
    }
    let (sizes, seen) = page_through(&store, "ada", 10).await;
    assert_eq!(sizes, [10, 10, 0]);
    assert_newest_first_once(&seen, 20);
    let (sizes, _) = page_through(&store, "ada", 20).await;
    assert_eq!(sizes, [20, 0]);
    let (sizes, _) = page_through(&store, "ada", 1).await;
    assert_eq!(sizes.len(), 21);
}

async fn check_pages_through_posts_that_all_share_one_time(store: Store) {
    // Mixed case and '-'/'_' ids: both backends must order them byte by byte.
    let names = ["A", "B", "Z", "_x", "-y", "a", "b", "z", "a-1", "a_1", "aa"];
    for id in names {
        create(&store, post(id, "ada", "same instant", 7)).await;
    }
    let (sizes, seen) = page_through(&store, "ada", 4).await;
    assert_eq!(sizes, [4, 4, 3]);
    assert_newest_first_once(&seen, names.len());
    let mut bytewise: Vec<&str> = names.to_vec();
    bytewise.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
    let listed: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(listed, bytewise);
}

async fn check_lists_only_an_authors_posts_of_the_given_visibilities(store: Store) {
    for (id, t, visibility) in [
        ("p1", 1, Visibility::Public),
        ("p2", 2, Visibility::Connections),
        ("p3", 3, Visibility::Public),
    ] {
        let mut p = post(id, "ada", "text", t);
        p.visibility = visibility;
        create(&store, p).await;
    }
    let list = |visibilities: &'static [Visibility]| {
        let store = store.clone();
        async move {
            store
                .list_posts_by_author("ada", visibilities, TimeRange::default(), None, 10)
                .await
                .unwrap()
        }
    };
    assert_eq!(ids(&list(&Visibility::ALL).await), ["p3", "p2", "p1"]);
    assert_eq!(ids(&list(&[Visibility::Public]).await), ["p3", "p1"]);
    assert_eq!(ids(&list(&[Visibility::Connections]).await), ["p2"]);
    assert!(list(&[]).await.is_empty());
    // A cursor in the middle: strictly after it.
    let after = Cursor {
        time: 2,
        id: "p2".into(),
    };
    let got = store
        .list_posts_by_author(
            "ada",
            &Visibility::ALL,
            TimeRange::default(),
            Some(after),
            10,
        )
        .await
        .unwrap();
    assert_eq!(ids(&got), ["p1"]);
}

/// ada: a1..a4 (a3 carries #rust), bob: b1..b2, cat: c1 #rust and an old c0 #rust,
/// dan: d1 #go. Times are the numbers below; `since` is 100.
async fn recent_fixture(store: &Store) {
    for p in [
        post("a0", "ada", "too old", 99),
        post("a1", "ada", "one", 101),
        post("a2", "ada", "two", 104),
        post("a3", "ada", "three #Rust", 107),
        post("a4", "ada", "four", 110),
        post("b1", "bob", "one", 100),
        post("b2", "bob", "two", 105),
        post("c0", "cat", "old #rust", 50),
        post("c1", "cat", "new #rust #go", 102),
        post("d1", "dan", "#go", 108),
    ] {
        create(store, p).await;
    }
}

async fn check_recent_posts_by_authors_since_newest_first(store: Store) {
    recent_fixture(&store).await;
    let got = store
        .list_recent_posts(&recent(&["ada", "bob"], &[], 100))
        .await
        .unwrap();
    // Exactly at `since` (b1) is in; before it (a0) is out.
    assert_eq!(ids(&got), ["a4", "a3", "b2", "a2", "a1", "b1"]);
    let mut q = recent(&["ada", "bob"], &[], 100);
    q.max_posts = 2;
    assert_eq!(
        ids(&store.list_recent_posts(&q).await.unwrap()),
        ["a4", "a3"]
    );
    q.max_posts = 0;
    assert!(store.list_recent_posts(&q).await.unwrap().is_empty());
}

async fn check_recent_posts_cap_each_author_before_the_overall_limit(store: Store) {
    recent_fixture(&store).await;
    let mut q = recent(&["ada", "bob"], &[], 100);
    q.max_posts_per_author = Some(2);
    let got = store.list_recent_posts(&q).await.unwrap();
    assert_eq!(ids(&got), ["a4", "a3", "b2", "b1"]);
    q.max_posts = 3;
    let got = store.list_recent_posts(&q).await.unwrap();
    assert_eq!(ids(&got), ["a4", "a3", "b2"]);
    // A cap above the overall limit is the overall limit.
    q.max_posts_per_author = Some(10);
    let got = store.list_recent_posts(&q).await.unwrap();
    assert_eq!(ids(&got), ["a4", "a3", "b2"]);
}

async fn check_recent_posts_add_hashtag_posts_once(store: Store) {
    recent_fixture(&store).await;
    let mut q = recent(&["ada"], &["rust", "go"], 100);
    q.max_posts_per_author = Some(1);
    let got = store.list_recent_posts(&q).await.unwrap();
    // a4 by author (capped at one), a3 by its hashtag despite the cap, c1 once although it
    // carries both hashtags, d1 by #go; c0 is before `since`.
    assert_eq!(ids(&got), ["a4", "d1", "a3", "c1"]);
    let got = store
        .list_recent_posts(&recent(&[], &["rust"], 0))
        .await
        .unwrap();
    assert_eq!(ids(&got), ["a3", "c1", "c0"]);
    assert_eq!(got[1], post("c1", "cat", "new #rust #go", 102));
    q.max_posts = 2;
    let got = store.list_recent_posts(&q).await.unwrap();
    assert_eq!(ids(&got), ["a4", "d1"]);
    // A post found by author and by hashtag is listed once.
    let got = store
        .list_recent_posts(&recent(&["ada"], &["rust"], 100))
        .await
        .unwrap();
    assert_eq!(ids(&got), ["a4", "a3", "a2", "c1", "a1"]);
}

async fn check_recent_posts_break_time_ties_by_id(store: Store) {
    for (id, author) in [("x1", "ada"), ("X2", "bob"), ("x3", "ada"), ("_4", "cat")] {
        create(&store, post(id, author, "tie #same", 500)).await;
    }
    let got = store
        .list_recent_posts(&recent(&["ada", "bob"], &["same"], 0))
        .await
        .unwrap();
    assert_eq!(ids(&got), ["x3", "x1", "_4", "X2"]);
    let mut q = recent(&["ada", "bob"], &[], 0);
    q.max_posts = 2;
    assert_eq!(
        ids(&store.list_recent_posts(&q).await.unwrap()),
        ["x3", "x1"]
    );
}

async fn check_recent_posts_of_nobody_are_empty(store: Store) {
    recent_fixture(&store).await;
    let got = store.list_recent_posts(&recent(&[], &[], 0)).await.unwrap();
    assert!(got.is_empty());
    let got = store
        .list_recent_posts(&recent(&["zed"], &["nothing"], 0))
        .await
        .unwrap();
    assert!(got.is_empty());
    let got = store
        .list_recent_posts(&recent(&["ada"], &["rust"], 1_000))
        .await
        .unwrap();
    assert!(got.is_empty());
}

async fn check_a_retried_create_returns_the_first_post(store: Store) {
    let k = key("member:ada", "req-1");
    let first = post("p1", "ada", "first #one", 10);
    let created = store.create_post(first.clone(), Some(&k)).await.unwrap();
    assert_eq!(
        created,
        CreatedPost {
            post: first.clone(),
            replayed: false
        }
    );
    // The retry carries a new id (and here other text): the first post comes back.
    let retry = post("p2", "ada", "second #two", 11);
    let replayed = store.create_post(retry, Some(&k)).await.unwrap();
    assert_eq!(
        replayed,
        CreatedPost {
            post: first.clone(),
            replayed: true
        }
    );
    assert_eq!(store.get_post("p2").await.unwrap(), None);
    let all = store
        .list_posts_by_author("ada", &Visibility::ALL, TimeRange::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&all), ["p1"]);
    assert!(store
        .list_recent_posts(&recent(&[], &["two"], 0))
        .await
        .unwrap()
        .is_empty());
    // Another request id creates.
    let other_key = key("member:ada", "req-2");
    let other = store
        .create_post(post("p3", "ada", "third", 12), Some(&other_key))
        .await
        .unwrap();
    assert!(!other.replayed);
    assert_eq!(other.post.id, "p3");
}

async fn check_idempotency_keys_are_scoped_by_caller(store: Store) {
    let callers = ["member:ada", "member:bob", "service:feed", "service:demo"];
    for (i, caller) in callers.into_iter().enumerate() {
        let created = store
            .create_post(
                post(&format!("p{i}"), "ada", "hi", 1),
                Some(&key(caller, "r")),
            )
            .await
            .unwrap();
        assert!(!created.replayed, "{caller}");
        assert_eq!(created.post.id, format!("p{i}"));
    }
    let again = store
        .create_post(post("p9", "ada", "hi", 1), Some(&key("service:feed", "r")))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.post.id, "p2");
}

async fn check_racing_creates_with_one_key_make_one_post(store: Store) {
    let k = key("service:feed", "the-one");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                let p = post(&new_id(), "ada", &format!("attempt {i} #race"), 1_000 + i);
                store.create_post(p, Some(&k)).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let first: Vec<&CreatedPost> = results.iter().filter(|c| !c.replayed).collect();
    assert_eq!(first.len(), 1, "exactly one call creates");
    let winner = &first[0].post;
    assert!(results.iter().all(|c| &c.post == winner));
    let all = store
        .list_posts_by_author("ada", &Visibility::ALL, TimeRange::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all, std::slice::from_ref(winner));
    let tagged = store
        .list_recent_posts(&recent(&[], &["race"], 0))
        .await
        .unwrap();
    assert_eq!(tagged, std::slice::from_ref(winner));
}

async fn check_concurrent_creates_without_keys_all_land(store: Store) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let p = post(&format!("p{i:02}"), "ada", "busy #day", 1_000 + i % 4);
                store.create_post(p, None).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!(!task.await.unwrap().replayed);
    }
    let (sizes, seen) = page_through(&store, "ada", 10).await;
    assert_eq!(sizes, [10, 10, 10, 2]);
    assert_newest_first_once(&seen, 32);
    let tagged = store
        .list_recent_posts(&recent(&[], &["day"], 0))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 32);
}

/// The candidate query at feed scale, on both backends. See the module docs.
mod bench {
    use std::time::{Duration, Instant};

    use pronet_common::rng::SplitMix64;

    use super::*;

    const POSTS: usize = 100_000;
    const AUTHORS: usize = 10_000;
    const HASHTAGS: usize = 300;
    const DAY: i64 = 86_400_000_000;
    const RUNS: usize = 50;
    /// Fixed "now", so both backends and every run hold the same data.
    const NOW: i64 = 1_750_000_000_000_000;

    /// Skewed towards 0: index `n * u^power`.
    fn skewed(rng: &mut SplitMix64, n: usize, power: i32) -> usize {
        ((rng.unit().powi(power) * n as f64) as usize).min(n - 1)
    }

    fn author(i: usize) -> String {
        format!("author{i:05}")
    }

    /// 100,000 posts: authors skewed (author00000 writes ~4.6% of them, the last ones a few
    /// each), times uniform over 30 days, 1-2 hashtags of 300 (also skewed), a fifth for
    /// connections only.
    fn posts() -> Vec<PostRecord> {
        let mut rng = SplitMix64::new(42);
        (0..POSTS)
            .map(|n| {
                let author = author(skewed(&mut rng, AUTHORS, 3));
                let time = NOW - (rng.unit() * 30.0 * DAY as f64) as i64;
                let mut text = format!("post {n} by @{author} on things");
                for _ in 0..1 + rng.below(2) {
                    text.push_str(&format!(" #topic{:03}", skewed(&mut rng, HASHTAGS, 2)));
                }
                let visibility = if rng.below(5) == 0 {
                    Visibility::Connections
                } else {
                    Visibility::Public
                };
                let id = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
                PostRecord::new(
                    id,
                    author,
                    PostText::parse(&text).unwrap(),
                    visibility,
                    time,
                )
            })
            .collect()
    }

    /// The feed's query: 1000 distinct authors and 10 followed hashtags, 14 days, 2000 posts,
    /// 25 per author.
    fn query(rng: &mut SplitMix64) -> RecentPostsQuery {
        let mut authors = HashSet::new();
        while authors.len() < 1000 {
            authors.insert(author(rng.below(AUTHORS)));
        }
        let mut hashtags = HashSet::new();
        while hashtags.len() < 10 {
            hashtags.insert(format!("topic{:03}", rng.below(HASHTAGS)));
        }
        RecentPostsQuery {
            author_ids: authors.into_iter().collect(),
            hashtags: hashtags.into_iter().collect(),
            since: NOW - 14 * DAY,
            max_posts: 2000,
            max_posts_per_author: Some(25),
        }
    }

    /// Median and p99 of `RUNS` queries with different authors (after 3 unmeasured ones),
    /// and every run's result, to compare the backends.
    async fn time_runs(store: &Store) -> (Duration, Duration, Vec<Vec<String>>) {
        let mut rng = SplitMix64::new(7);
        let queries: Vec<RecentPostsQuery> = (0..RUNS + 3).map(|_| query(&mut rng)).collect();
        let mut times = Vec::with_capacity(RUNS);
        let mut results = Vec::with_capacity(RUNS);
        for (i, q) in queries.iter().enumerate() {
            let start = Instant::now();
            let got = store.list_recent_posts(q).await.unwrap();
            let elapsed = start.elapsed();
            if i >= 3 {
                times.push(elapsed);
                results.push(got.into_iter().map(|p| p.id).collect());
            }
        }
        times.sort();
        let p99 = times[(times.len() * 99).div_ceil(100) - 1];
        (times[times.len() / 2], p99, results)
    }

    fn report(
        backend: &str,
        load: Duration,
        (median, p99, results): &(Duration, Duration, Vec<Vec<String>>),
    ) {
        let rows: usize = results.iter().map(Vec::len).sum();
        println!(
            "{backend}: loaded {POSTS} posts in {load:.1?}; list_recent_posts over {RUNS} \
             author sets: median {median:.2?}, p99 {p99:.2?}, {} posts per run on average",
            rows / results.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "loads 100,000 posts into each backend; run in release with --nocapture"]
    async fn candidate_query_bench() {
        let posts = posts();
        let plan_query = query(&mut SplitMix64::new(1));

        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqlitePostStore::open(&dir.path().join("post.db"))
            .await
            .unwrap();
        let start = Instant::now();
        sqlite.insert_many(&posts).await.unwrap();
        sqlite.analyze().await.unwrap();
        let load = start.elapsed();
        let plan = sqlite.explain_recent_posts(&plan_query).await.unwrap();
        println!("\n=== SQLite: EXPLAIN QUERY PLAN (1000 authors, 10 hashtags, 14 days, 2000 posts, 25 per author)\n{plan}");
        // A full scan of posts would read "SCAN posts" without an index.
        assert!(
            !plan.lines().any(|l| l.trim() == "SCAN posts"),
            "full scan of posts"
        );
        let sqlite_store: Store = Arc::new(sqlite.clone());
        let sqlite_runs = time_runs(&sqlite_store).await;
        report("SQLite", load, &sqlite_runs);
        sqlite.close().await;

        let Some(t) = postgres_schema("candidatebench").await else {
            return;
        };
        let pg = PgPostStore::open(&t.url, &t.schema).await.unwrap();
        let start = Instant::now();
        pg.insert_many(&posts).await.unwrap();
        pg.analyze().await.unwrap();
        let load = start.elapsed();
        let plan = pg.explain_recent_posts(&plan_query).await.unwrap();
        println!("\n=== PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) (same query)\n{plan}");
        assert!(
            !plan.contains("Seq Scan on posts"),
            "sequential scan of posts"
        );
        let pg_store: Store = Arc::new(pg.clone());
        let pg_runs = time_runs(&pg_store).await;
        report("PostgreSQL", load, &pg_runs);
        pg.close().await;

        // Same data, same queries: the same posts in the same order.
        assert_eq!(sqlite_runs.2, pg_runs.2, "the backends disagree");
        drop(t);
    }
}

fn edit(text: &str, time: i64) -> PostEdit {
    let text = PostText::parse(text).unwrap();
    PostEdit {
        hashtags: text.hashtags(),
        mentions: text.mentions(),
        mentioned_members: Vec::new(),
        text: text.into_string(),
        update_time: time,
    }
}

async fn by_hashtag(store: &Store, tag: &str) -> Vec<String> {
    let posts = store.list_posts_by_hashtag(tag, None, 100).await.unwrap();
    posts.into_iter().map(|p| p.id).collect()
}

async fn check_keeps_reshares_and_resolved_mentions(store: Store) {
    create(&store, post("orig", "ada", "original", 1)).await;
    let mut reshare = post("re", "bob", "look @Ada @ghost", 2);
    reshare.reshare_of = Some("orig".into());
    reshare.mentions = vec!["ada".into()];
    reshare.mentioned_members = vec![Mention {
        handle: "Ada".into(),
        member_id: "m-ada".into(),
    }];
    create(&store, reshare.clone()).await;
    assert_eq!(store.get_post("re").await.unwrap(), Some(reshare.clone()));
    let listed = store
        .list_posts_by_author("bob", &Visibility::ALL, TimeRange::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed, [reshare]);
    let original = store.get_post("orig").await.unwrap().unwrap();
    assert_eq!(original.reshare_of, None);
    assert!(original.mentioned_members.is_empty());
    assert!(!original.edited());
}

async fn check_a_deleted_post_is_gone_from_every_read(store: Store) {
    create(&store, post("gone", "ada", "bye #rust", 10)).await;
    create(&store, post("kept", "ada", "hi #rust", 5)).await;
    assert!(store.delete_post("gone", 20).await.unwrap());
    assert!(!store.delete_post("gone", 21).await.unwrap(), "only once");
    assert!(!store.delete_post("unknown", 21).await.unwrap());

    assert_eq!(store.get_post("gone").await.unwrap(), None);
    let both: Vec<String> = vec!["gone".into(), "kept".into()];
    assert_eq!(ids(&store.batch_get_posts(&both).await.unwrap()), ["kept"]);
    let listed = store
        .list_posts_by_author("ada", &Visibility::ALL, TimeRange::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&listed), ["kept"]);
    assert_eq!(by_hashtag(&store, "rust").await, ["kept"]);
    for query in [recent(&["ada"], &[], 0), recent(&[], &["rust"], 0)] {
        let recent = store.list_recent_posts(&query).await.unwrap();
        assert_eq!(ids(&recent), ["kept"]);
    }
    let mut per_author = recent(&["ada"], &[], 0);
    per_author.max_posts_per_author = Some(1);
    assert_eq!(
        ids(&store.list_recent_posts(&per_author).await.unwrap()),
        ["kept"]
    );
    assert_eq!(
        store.count_hashtag_posts(0, 100).await.unwrap(),
        [("rust".to_string(), 1)]
    );
    let tags = ["rust".to_string()];
    assert_eq!(
        store.hashtag_posts(&tags, 0, 100, 10).await.unwrap(),
        [("rust".to_string(), "kept".to_string())]
    );
    // A deleted post cannot be edited back into the index.
    assert_eq!(
        store
            .update_post("gone", &edit("back #rust", 30))
            .await
            .unwrap(),
        None
    );
    assert_eq!(by_hashtag(&store, "rust").await, ["kept"]);
}

async fn check_racing_deletes_delete_once(store: Store) {
    create(&store, post("p", "ada", "once #x", 1)).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.delete_post("p", 100 + i).await.unwrap() })
        })
        .collect();
    let mut deleted = 0;
    for task in tasks {
        deleted += usize::from(task.await.unwrap());
    }
    assert_eq!(deleted, 1);
    assert!(by_hashtag(&store, "x").await.is_empty());
}

async fn check_an_edit_rewrites_the_text_and_its_hashtags(store: Store) {
    create(&store, post("p", "ada", "old #Rust #go @bob", 7)).await;
    let mut change = edit("new #go #Wasm", 9);
    change.mentions = vec!["carol".into()];
    change.mentioned_members = vec![Mention {
        handle: "Carol".into(),
        member_id: "m-carol".into(),
    }];
    let updated = store.update_post("p", &change).await.unwrap().unwrap();
    assert_eq!(updated.text, "new #go #Wasm");
    assert_eq!(updated.hashtags, ["go", "wasm"]);
    assert_eq!(updated.mentions, ["carol"]);
    assert_eq!(updated.mentioned_members, change.mentioned_members);
    assert_eq!(updated.update_time, Some(9));
    assert!(updated.edited());
    assert_eq!(updated.create_time, 7, "the post keeps its place");
    assert_eq!(store.get_post("p").await.unwrap(), Some(updated));
    assert!(by_hashtag(&store, "rust").await.is_empty());
    assert_eq!(by_hashtag(&store, "go").await, ["p"]);
    assert_eq!(by_hashtag(&store, "wasm").await, ["p"]);
    assert_eq!(
        store.update_post("unknown", &edit("x", 1)).await.unwrap(),
        None
    );
}

async fn check_racing_edits_leave_the_index_matching_the_text(store: Store) {
    create(&store, post("p", "ada", "start #start", 1)).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let text = format!("edit #tag{i} #both");
                store.update_post("p", &edit(&text, 10 + i)).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_some());
    }
    let last = store.get_post("p").await.unwrap().unwrap();
    let mut indexed = Vec::new();
    for i in 0..32 {
        let tag = format!("tag{i}");
        if !by_hashtag(&store, &tag).await.is_empty() {
            indexed.push(tag);
        }
    }
    assert_eq!(indexed.len(), 1, "{indexed:?}");
    assert_eq!(last.hashtags, [indexed[0].clone(), "both".to_string()]);
    assert_eq!(by_hashtag(&store, "both").await, ["p"]);
    assert!(by_hashtag(&store, "start").await.is_empty());
}

async fn check_lists_an_authors_posts_in_a_time_range(store: Store) {
    for t in 1..=6 {
        create(&store, post(&format!("p{t}"), "ada", "text", t * 10)).await;
    }
    let list = |start, end, after: Option<Cursor>, limit| {
        let store = store.clone();
        async move {
            let range = TimeRange { start, end };
            let posts = store
                .list_posts_by_author("ada", &Visibility::ALL, range, after, limit)
                .await
                .unwrap();
            posts.into_iter().map(|p| p.id).collect::<Vec<_>>()
        }
    };
    // Start inclusive, end exclusive.
    assert_eq!(list(Some(20), Some(50), None, 10).await, ["p4", "p3", "p2"]);
    assert_eq!(list(Some(40), None, None, 10).await, ["p6", "p5", "p4"]);
    assert_eq!(list(None, Some(20), None, 10).await, ["p1"]);
    assert!(list(Some(61), None, None, 10).await.is_empty());
    let after = Cursor {
        time: 40,
        id: "p4".into(),
    };
    assert_eq!(list(Some(20), Some(50), Some(after), 1).await, ["p3"]);
}

async fn check_pages_posts_by_hashtag_newest_first(store: Store) {
    assert!(by_hashtag(&store, "rust").await.is_empty());
    // Six posts, two pairs sharing a time, one without the hashtag.
    for (id, t) in [("a", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 3), ("f", 4)] {
        create(&store, post(id, "ada", "about #Rust", t)).await;
    }
    create(&store, post("z", "bob", "about #go", 5)).await;
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_posts_by_hashtag("rust", after.clone(), 3)
            .await
            .unwrap();
        sizes.push(page.len());
        seen.extend(page.iter().map(|p| (p.create_time, p.id.clone())));
        match page.last() {
            Some(last) if page.len() == 3 => {
                after = Some(Cursor {
                    time: last.create_time,
                    id: last.id.clone(),
                })
            }
            _ => break,
        }
    }
    // An exact multiple ends with an empty page.
    assert_eq!(sizes, [3, 3, 0]);
    assert_newest_first_once(&seen, 6);
    assert_eq!(seen[0], (4, "f".to_string()));
    assert_eq!(by_hashtag(&store, "go").await, ["z"]);
}

async fn check_counts_hashtag_posts_per_window(store: Store) {
    for (id, text, t) in [
        ("a", "#rust #go", 10),
        ("b", "#rust", 20),
        ("c", "#rust", 30),
        ("d", "#go", 5),
        ("e", "#wasm", 40),
    ] {
        create(&store, post(id, "ada", text, t)).await;
    }
    let mut counts = store.count_hashtag_posts(10, 40).await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [("go".to_string(), 1), ("rust".to_string(), 3)],
        "since inclusive, until exclusive"
    );
    assert!(store.count_hashtag_posts(50, 60).await.unwrap().is_empty());

    let tags = ["rust".to_string(), "go".to_string()];
    let pair = |tag: &str, id: &str| (tag.to_string(), id.to_string());
    assert_eq!(
        store.hashtag_posts(&tags, 0, 100, 10).await.unwrap(),
        [
            pair("rust", "c"),
            pair("rust", "b"),
            pair("go", "a"),
            pair("rust", "a"),
            pair("go", "d"),
        ]
    );
    assert_eq!(
        store.hashtag_posts(&tags, 0, 100, 2).await.unwrap(),
        [pair("rust", "c"), pair("rust", "b")]
    );
    assert!(store
        .hashtag_posts(&[], 0, 100, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn check_imports_posts_as_creates_would_and_skips_existing_ids(store: Store) {
    let created = post("p0", "ada", "created #rust", 100);
    store.create_post(created.clone(), None).await.unwrap();
    let batch = vec![
        // Taken by a created post: left as it is, its hashtag not indexed.
        post("p0", "bob", "imported #go", 150),
        post("p1", "ada", "first #Rust", 200),
        post("p2", "bob", "#go #rust_lang", 300),
        // A repeat within the batch: the first is kept.
        post("p1", "bob", "second #go", 400),
    ];
    assert_eq!(store.import_posts(batch.clone()).await.unwrap(), (2, 2));
    assert_eq!(store.get_post("p0").await.unwrap(), Some(created));
    // An imported post reads back exactly as a created one.
    assert_eq!(store.get_post("p1").await.unwrap(), Some(batch[1].clone()));
    assert_eq!(store.get_post("p2").await.unwrap(), Some(batch[2].clone()));
    let tagged = |tag: &'static str| {
        let store = store.clone();
        async move {
            let posts = store.list_posts_by_hashtag(tag, None, 10).await.unwrap();
            posts.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(tagged("rust").await, ["p1", "p0"]);
    assert_eq!(tagged("go").await, ["p2"]);
    assert_eq!(tagged("rust_lang").await, ["p2"]);

    // A retry changes nothing, and a deleted post stays deleted and unindexed.
    assert!(store.delete_post("p1", 500).await.unwrap());
    assert_eq!(store.import_posts(batch).await.unwrap(), (0, 4));
    assert_eq!(store.get_post("p1").await.unwrap(), None);
    assert_eq!(tagged("rust").await, ["p0"]);
    assert_eq!(store.import_posts(Vec::new()).await.unwrap(), (0, 0));
}

async fn check_imports_a_full_batch_with_its_hashtags(store: Store) {
    // More rows than one statement takes, on either backend.
    let batch: Vec<PostRecord> = (0..1000)
        .map(|i| {
            post(
                &format!("p{i:04}"),
                "ada",
                &format!("#bulk #n{i}"),
                1_000 + i,
            )
        })
        .collect();
    assert_eq!(store.import_posts(batch.clone()).await.unwrap(), (1000, 0));
    let counts: std::collections::HashMap<String, i64> = store
        .count_hashtag_posts(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts.len(), 1001);
    assert_eq!(counts["bulk"], 1000);
    assert_eq!(counts["n999"], 1);
    let ids: Vec<String> = batch.iter().map(|p| p.id.clone()).collect();
    assert_eq!(store.batch_get_posts(&ids).await.unwrap().len(), 1000);
    let mut again = batch;
    again.push(post("p1000", "bob", "late #bulk", 5_000));
    assert_eq!(store.import_posts(again).await.unwrap(), (1, 1000));
}

// Events: what each write appends to the outbox, and the export.

/// Every event in the outbox, checked to be this service's with sequences 1..n in order, as
/// their payloads.
async fn outbox_payloads(store: &Store) -> Vec<Payload> {
    let events = store.outbox().read_after(0, 1000).await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>());
    assert!(events
        .iter()
        .all(|e| e.source == SOURCE && !e.id.is_empty()));
    assert!(events.iter().all(|e| e.occur_time.is_some()));
    events.into_iter().map(|e| e.payload.unwrap()).collect()
}

fn created_payload(post: &PostRecord) -> Payload {
    Payload::PostCreated(pb::PostCreated {
        post_id: post.id.clone(),
        author_id: post.author_id.clone(),
        create_time: Some(to_timestamp(post.create_time)),
        visibility: match post.visibility {
            Visibility::Public => PbVisibility::Public as i32,
            Visibility::Connections => PbVisibility::Connections as i32,
        },
        hashtags: post.hashtags.clone(),
        mentioned_member_ids: post
            .mentioned_members
            .iter()
            .map(|m| m.member_id.clone())
            .collect(),
        reshare_of_post_id: post.reshare_of.clone().unwrap_or_default(),
    })
}

fn deleted_payload(id: &str, author: &str) -> Payload {
    Payload::PostDeleted(pb::PostDeleted {
        post_id: id.into(),
        author_id: author.into(),
    })
}

/// The export of `store` since `since`, through the event service: its position (the same
/// in every message) and its events.
async fn export(store: &Store, since: Option<i64>) -> (i64, Vec<pb::Event>) {
    let (positions, events) =
        pronet_common::testing::export_through_service(SOURCE, store.clone(), since).await;
    let position = positions.first().copied();
    assert!(positions.iter().all(|p| Some(*p) == position));
    assert!(events.iter().all(|e| e.sequence == 0 && e.source == SOURCE));
    (
        position.expect("an export sends at least one message"),
        events,
    )
}

async fn check_a_create_writes_post_created_with_what_it_carries(store: Store) {
    let mut reshare = post("re", "bob", "look @Ada #Rust #go", 2_500_001);
    reshare.visibility = Visibility::Connections;
    reshare.reshare_of = Some("orig".into());
    reshare.mentions = vec!["ada".into()];
    reshare.mentioned_members = vec![Mention {
        handle: "Ada".into(),
        member_id: "m-ada".into(),
    }];
    create(&store, reshare).await;
    create(&store, post("plain", "ada", "hello", 3_000_000)).await;
    assert_eq!(
        outbox_payloads(&store).await,
        [
            Payload::PostCreated(pb::PostCreated {
                post_id: "re".into(),
                author_id: "bob".into(),
                create_time: Some(prost_types::Timestamp {
                    seconds: 2,
                    nanos: 500_001_000,
                }),
                visibility: PbVisibility::Connections as i32,
                hashtags: vec!["rust".into(), "go".into()],
                mentioned_member_ids: vec!["m-ada".into()],
                reshare_of_post_id: "orig".into(),
            }),
            Payload::PostCreated(pb::PostCreated {
                post_id: "plain".into(),
                author_id: "ada".into(),
                create_time: Some(prost_types::Timestamp {
                    seconds: 3,
                    nanos: 0,
                }),
                visibility: PbVisibility::Public as i32,
                hashtags: vec![],
                mentioned_member_ids: vec![],
                reshare_of_post_id: String::new(),
            }),
        ]
    );
    let status = store.outbox().status().await.unwrap();
    assert_eq!(status.head, 2);
}

async fn check_a_replayed_key_writes_no_event(store: Store) {
    let k = key("member:ada", "req-1");
    let first = post("p1", "ada", "first", 10);
    assert!(
        !store
            .create_post(first.clone(), Some(&k))
            .await
            .unwrap()
            .replayed
    );
    let replayed = store
        .create_post(post("p2", "ada", "retry", 11), Some(&k))
        .await
        .unwrap();
    assert!(replayed.replayed);
    assert_eq!(outbox_payloads(&store).await, [created_payload(&first)]);
}

async fn check_racing_creates_with_one_key_write_one_event(store: Store) {
    let k = key("member:ada", "race");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                store
                    .create_post(post(&format!("p{i}"), "ada", "once", i), Some(&k))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut first = Vec::new();
    for task in tasks {
        let created = task.await.unwrap();
        if !created.replayed {
            first.push(created.post);
        }
    }
    assert_eq!(first.len(), 1);
    assert_eq!(outbox_payloads(&store).await, [created_payload(&first[0])]);
}

async fn check_a_failed_create_writes_no_event(store: Store) {
    let original = create(&store, post("p1", "ada", "first #one", 10)).await;
    // The same id again, without a key: the insert fails, and its event with it.
    assert!(store
        .create_post(post("p1", "bob", "again #two", 11), None)
        .await
        .is_err());
    assert_eq!(outbox_payloads(&store).await, [created_payload(&original)]);
    // The outbox goes on from where it was.
    let next = create(&store, post("p2", "ada", "next", 12)).await;
    assert_eq!(
        outbox_payloads(&store).await,
        [created_payload(&original), created_payload(&next)]
    );
}

async fn check_an_import_writes_post_created_per_imported_post_only(store: Store) {
    let existing = create(&store, post("p0", "ada", "created #rust", 100)).await;
    let mut reshare = post("p2", "bob", "#go @ada", 300);
    reshare.reshare_of = Some("p0".into());
    reshare.mentioned_members = vec![Mention {
        handle: "ada".into(),
        member_id: "m-ada".into(),
    }];
    let batch = vec![
        post("p0", "bob", "skipped: the id is taken", 150),
        post("p1", "ada", "first #Rust", 200),
        reshare.clone(),
        post("p1", "bob", "skipped: a repeat", 400),
    ];
    assert_eq!(store.import_posts(batch.clone()).await.unwrap(), (2, 2));
    let expected = [
        created_payload(&existing),
        created_payload(&batch[1]),
        created_payload(&reshare),
    ];
    assert_eq!(outbox_payloads(&store).await, expected);
    // A retry imports nothing and writes nothing.
    assert_eq!(store.import_posts(batch).await.unwrap(), (0, 4));
    assert_eq!(outbox_payloads(&store).await, expected);
}

async fn check_an_edit_writes_post_edited_and_a_missed_edit_nothing(store: Store) {
    let original = create(&store, post("p", "ada", "old #Rust @bob", 7)).await;
    let mut change = edit("new #go #Wasm @carol", 2_000_009);
    change.mentions = vec!["carol".into()];
    change.mentioned_members = vec![Mention {
        handle: "Carol".into(),
        member_id: "m-carol".into(),
    }];
    store.update_post("p", &change).await.unwrap().unwrap();
    // Neither a missing nor a deleted post is edited, and neither writes an event.
    assert_eq!(
        store.update_post("unknown", &edit("x", 1)).await.unwrap(),
        None
    );
    assert!(store.delete_post("p", 3_000_000).await.unwrap());
    assert_eq!(store.update_post("p", &edit("y", 4)).await.unwrap(), None);
    assert_eq!(
        outbox_payloads(&store).await,
        [
            created_payload(&original),
            Payload::PostEdited(pb::PostEdited {
                post_id: "p".into(),
                author_id: "ada".into(),
                hashtags: vec!["go".into(), "wasm".into()],
                mentioned_member_ids: vec!["m-carol".into()],
                update_time: Some(prost_types::Timestamp {
                    seconds: 2,
                    nanos: 9_000,
                }),
            }),
            deleted_payload("p", "ada"),
        ]
    );
}

async fn check_a_delete_writes_post_deleted_once(store: Store) {
    let gone = create(&store, post("gone", "ada", "bye #rust", 10)).await;
    let kept = create(&store, post("kept", "bob", "hi", 5)).await;
    assert!(store.delete_post("gone", 20).await.unwrap());
    assert!(!store.delete_post("gone", 21).await.unwrap());
    assert!(!store.delete_post("unknown", 21).await.unwrap());
    assert_eq!(
        outbox_payloads(&store).await,
        [
            created_payload(&gone),
            created_payload(&kept),
            deleted_payload("gone", "ada"),
        ]
    );
}

async fn check_racing_deletes_write_one_post_deleted(store: Store) {
    let p = create(&store, post("p", "ada", "once #x", 1)).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.delete_post("p", 100 + i).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        outbox_payloads(&store).await,
        [created_payload(&p), deleted_payload("p", "ada")]
    );
}

async fn check_export_is_the_current_posts_at_the_outbox_head(store: Store) {
    let a = create(&store, post("a", "ada", "first #rust", 10)).await;
    create(&store, post("b", "bob", "to go", 20)).await;
    let c = create(&store, post("c", "ada", "old #old", 30)).await;
    let mut imported = post("d", "carol", "imported #go", 5);
    imported.visibility = Visibility::Connections;
    imported.reshare_of = Some("a".into());
    store.import_posts(vec![imported.clone()]).await.unwrap();
    assert!(store.delete_post("b", 40).await.unwrap());
    let edited = store
        .update_post("c", &edit("new #new", 50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.hashtags, ["new"]);
    let head = store.outbox().status().await.unwrap().head;
    assert_eq!(head, 6);

    let (position, events) = export(&store, None).await;
    assert_eq!(position, head);
    let exported: Vec<(Payload, Option<prost_types::Timestamp>)> = events
        .into_iter()
        .map(|e| (e.payload.unwrap(), e.occur_time))
        .collect();
    // Oldest first; the edited one is as it is now; the deleted post comes last as a deletion
    // at its delete time (a reader drops engagement it hears of for it).
    assert_eq!(
        exported,
        [
            (created_payload(&imported), Some(to_timestamp(5))),
            (created_payload(&a), Some(to_timestamp(10))),
            (created_payload(&edited), Some(to_timestamp(30))),
            (deleted_payload("b", "bob"), Some(to_timestamp(40))),
        ]
    );
    assert_ne!(created_payload(&edited), created_payload(&c));
}

async fn check_export_since_keeps_posts_created_from_then(store: Store) {
    let posts: Vec<PostRecord> = (1..=5)
        .map(|i| post(&format!("p{i}"), "ada", "text", i * 1_000_000))
        .collect();
    store.import_posts(posts.clone()).await.unwrap();
    let (position, events) = export(&store, Some(3_000_000)).await;
    assert_eq!(position, 5);
    let exported: Vec<Payload> = events.into_iter().map(|e| e.payload.unwrap()).collect();
    assert_eq!(
        exported,
        [
            created_payload(&posts[2]),
            created_payload(&posts[3]),
            created_payload(&posts[4]),
        ]
    );
    let (_, events) = export(&store, Some(6_000_000)).await;
    assert!(events.is_empty());
}

async fn check_export_of_an_empty_store_is_position_zero(store: Store) {
    assert_eq!(export(&store, None).await, (0, Vec::new()));
}

async fn check_export_pages_through_many_posts_sharing_times_once_each(store: Store) {
    // More than two pages of the export, three posts to each time, so ties straddle the
    // pages' ends.
    let total = 2 * super::EXPORT_PAGE + 7;
    let posts: Vec<PostRecord> = (0..total)
        .map(|i| post(&format!("p{i:05}"), "ada", "text", (i / 3) as i64))
        .collect();
    for chunk in posts.chunks(1000) {
        store.import_posts(chunk.to_vec()).await.unwrap();
    }
    let (position, events) = export(&store, None).await;
    assert_eq!(position, total as i64);
    let exported: Vec<String> = events
        .into_iter()
        .map(|e| match e.payload {
            Some(Payload::PostCreated(c)) => c.post_id,
            other => panic!("not a PostCreated: {other:?}"),
        })
        .collect();
    let expected: Vec<String> = posts.iter().map(|p| p.id.clone()).collect();
    assert_eq!(exported, expected);
}

/// Every operation of the store `open_store` gives is timed under its name.
#[tokio::test]
async fn operations_are_timed_by_name_and_outcome() {
    let (_dir, store, metrics) = pronet_common::timed_sqlite_store!(crate::open_store);

    let post = PostRecord::new(
        "p1".into(),
        "alice".into(),
        PostText::parse("hello #rust").unwrap(),
        Visibility::Public,
        1_000,
    );
    let created = store.create_post(post.clone(), None).await.unwrap();
    assert_eq!(created.post, post);
    assert_eq!(store.get_post("p1").await.unwrap(), Some(post));

    pronet_common::testing::assert_timed_once(
        &metrics,
        super::timed::STORE_NAME,
        &["create_post", "get_post"],
    );
}
