//! One suite for every backend: each `check_*` takes a fresh store and runs twice, as
//! `sqlite_*` on a temporary file and as `postgres_*` in a schema of its own (skipped, loudly,
//! when no PostgreSQL is reachable outside CI). Races run 32 or more tasks on four threads.

use std::sync::Arc;

use pronet_common::error::ServiceError;
use pronet_common::testing::{key, postgres_schema, sorted_ids};

use super::postgres::PgProfileStore;
use super::sqlite::SqliteProfileStore;
use super::*;
use crate::domain::{
    limits, rank_search, rank_suggestions, Affinity, Degree, DegreeRecord, Education, Handle,
    InvitationState, Position, ReasonKind, SearchQuery, YearMonth,
};

/// Generates, for each `check => sqlite_test, postgres_test;`, a test on each backend.
macro_rules! on_both_backends {
    ($($check:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteProfileStore::open(&dir.path().join("profile.db"))
                .await
                .unwrap();
            $check(Arc::new(store)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            let Some(t) = postgres_schema(stringify!($check)).await else {
                return;
            };
            let store = PgProfileStore::open(&t.url, &t.schema).await.unwrap();
            $check(Arc::new(store)).await;
            // The schema is dropped only now, after the check is done with it.
            drop(t);
        }
    )*};
}

on_both_backends! {
    check_profiles_are_created_and_found =>
        sqlite_profiles_are_created_and_found, postgres_profiles_are_created_and_found;
    check_a_taken_id_is_told_apart_from_a_taken_handle =>
        sqlite_a_taken_id_is_told_apart_from_a_taken_handle,
        postgres_a_taken_id_is_told_apart_from_a_taken_handle;
    check_racing_creates_without_a_key_create_one =>
        sqlite_racing_creates_without_a_key_create_one,
        postgres_racing_creates_without_a_key_create_one;
    check_profiles_are_updated =>
        sqlite_profiles_are_updated, postgres_profiles_are_updated;
    check_concurrent_updates_lose_no_change =>
        sqlite_concurrent_updates_lose_no_change, postgres_concurrent_updates_lose_no_change;
    check_invitations_follow_the_rules =>
        sqlite_invitations_follow_the_rules, postgres_invitations_follow_the_rules;
    check_racing_invitations_make_one_invitation =>
        sqlite_racing_invitations_make_one_invitation,
        postgres_racing_invitations_make_one_invitation;
    check_accepting_connects_both_ways =>
        sqlite_accepting_connects_both_ways, postgres_accepting_connects_both_ways;
    check_racing_accepts_connect_once_both_ways =>
        sqlite_racing_accepts_connect_once_both_ways,
        postgres_racing_accepts_connect_once_both_ways;
    check_follows_are_idempotent_and_check_the_target =>
        sqlite_follows_are_idempotent_and_check_the_target,
        postgres_follows_are_idempotent_and_check_the_target;
    check_racing_follows_of_one_target_make_one_row =>
        sqlite_racing_follows_of_one_target_make_one_row,
        postgres_racing_follows_of_one_target_make_one_row;
    check_block_removes_connection_follows_and_invitations_both_ways =>
        sqlite_block_removes_connection_follows_and_invitations_both_ways,
        postgres_block_removes_connection_follows_and_invitations_both_ways;
    check_blocked_members_are_hidden_and_cannot_invite_or_follow =>
        sqlite_blocked_members_are_hidden_and_cannot_invite_or_follow,
        postgres_blocked_members_are_hidden_and_cannot_invite_or_follow;
    check_blocks_are_idempotent_and_never_for_oneself =>
        sqlite_blocks_are_idempotent_and_never_for_oneself,
        postgres_blocks_are_idempotent_and_never_for_oneself;
    check_a_block_racing_invitations_and_follows_leaves_none =>
        sqlite_a_block_racing_invitations_and_follows_leaves_none,
        postgres_a_block_racing_invitations_and_follows_leaves_none;
    check_relationships_come_in_request_order =>
        sqlite_relationships_come_in_request_order,
        postgres_relationships_come_in_request_order;
    check_handles_resolve_in_request_order =>
        sqlite_handles_resolve_in_request_order,
        postgres_handles_resolve_in_request_order;
    check_connections_page_newest_first =>
        sqlite_connections_page_newest_first, postgres_connections_page_newest_first;
    check_invitations_page_newest_first =>
        sqlite_invitations_page_newest_first, postgres_invitations_page_newest_first;
    check_following_pages_newest_first =>
        sqlite_following_pages_newest_first, postgres_following_pages_newest_first;
    check_create_profile_retries_return_the_first_profile =>
        sqlite_create_profile_retries_return_the_first_profile,
        postgres_create_profile_retries_return_the_first_profile;
    check_racing_create_profile_retries_create_one =>
        sqlite_racing_create_profile_retries_create_one,
        postgres_racing_create_profile_retries_create_one;
    check_create_invitation_retries_return_the_first_invitation =>
        sqlite_create_invitation_retries_return_the_first_invitation,
        postgres_create_invitation_retries_return_the_first_invitation;
    check_racing_create_invitation_retries_create_one =>
        sqlite_racing_create_invitation_retries_create_one,
        postgres_racing_create_invitation_retries_create_one;
    check_decline_and_withdraw_follow_the_state_rules =>
        sqlite_decline_and_withdraw_follow_the_state_rules,
        postgres_decline_and_withdraw_follow_the_state_rules;
    check_inviting_back_accepts_the_pending_invitation =>
        sqlite_inviting_back_accepts_the_pending_invitation,
        postgres_inviting_back_accepts_the_pending_invitation;
    check_removing_a_connection_removes_it_both_ways =>
        sqlite_removing_a_connection_removes_it_both_ways,
        postgres_removing_a_connection_removes_it_both_ways;
    check_unfollow_is_idempotent =>
        sqlite_unfollow_is_idempotent, postgres_unfollow_is_idempotent;
    check_followers_page_newest_first =>
        sqlite_followers_page_newest_first, postgres_followers_page_newest_first;
    check_counts_stay_exact_under_concurrent_accepts_and_follows =>
        sqlite_counts_stay_exact_under_concurrent_accepts_and_follows,
        postgres_counts_stay_exact_under_concurrent_accepts_and_follows;
    check_concurrent_imports_and_accepts_in_a_cycle_all_land =>
        sqlite_concurrent_imports_and_accepts_in_a_cycle_all_land,
        postgres_concurrent_imports_and_accepts_in_a_cycle_all_land;
    check_degrees_on_a_small_graph =>
        sqlite_degrees_on_a_small_graph, postgres_degrees_on_a_small_graph;
    check_degrees_around_a_hub_of_six_thousand =>
        sqlite_degrees_around_a_hub_of_six_thousand,
        postgres_degrees_around_a_hub_of_six_thousand;
    check_positions_education_and_open_to_work_are_stored_and_updated =>
        sqlite_positions_education_and_open_to_work_are_stored_and_updated,
        postgres_positions_education_and_open_to_work_are_stored_and_updated;
    check_suggestions_are_second_degree_ranked_and_exclude_what_they_must =>
        sqlite_suggestions_are_second_degree_ranked_and_exclude_what_they_must,
        postgres_suggestions_are_second_degree_ranked_and_exclude_what_they_must;
    check_suggestions_around_a_hub_stay_bounded =>
        sqlite_suggestions_around_a_hub_stay_bounded,
        postgres_suggestions_around_a_hub_stay_bounded;
    check_suggestions_keep_the_cap_and_compare_key_tables_that_follow_updates =>
        sqlite_suggestions_keep_the_cap_and_compare_key_tables_that_follow_updates,
        postgres_suggestions_keep_the_cap_and_compare_key_tables_that_follow_updates;
    check_batch_get_of_a_thousand_ids_counts_each_and_hides_blocked =>
        sqlite_batch_get_of_a_thousand_ids_counts_each_and_hides_blocked,
        postgres_batch_get_of_a_thousand_ids_counts_each_and_hides_blocked;
    check_search_matches_words_filters_and_hides_blocked =>
        sqlite_search_matches_words_filters_and_hides_blocked,
        postgres_search_matches_words_filters_and_hides_blocked;
    check_search_ranks_headline_matches_above_summary_matches =>
        sqlite_search_ranks_headline_matches_above_summary_matches,
        postgres_search_ranks_headline_matches_above_summary_matches;
    check_search_follows_updates_in_the_same_transaction =>
        sqlite_search_follows_updates_in_the_same_transaction,
        postgres_search_follows_updates_in_the_same_transaction;
    check_search_scores_the_newest_matches_and_degrees_only_where_needed =>
        sqlite_search_scores_the_newest_matches_and_degrees_only_where_needed,
        postgres_search_scores_the_newest_matches_and_degrees_only_where_needed;
    check_importing_connections_connects_both_ways_and_skips_the_rest =>
        sqlite_importing_connections_connects_both_ways_and_skips_the_rest,
        postgres_importing_connections_connects_both_ways_and_skips_the_rest;
    check_importing_profiles_skips_taken_ids_and_handles =>
        sqlite_importing_profiles_skips_taken_ids_and_handles,
        postgres_importing_profiles_skips_taken_ids_and_handles;
    check_profile_writes_append_their_events_and_no_ops_none =>
        sqlite_profile_writes_append_their_events_and_no_ops_none,
        postgres_profile_writes_append_their_events_and_no_ops_none;
    check_connection_writes_append_their_events_and_no_ops_none =>
        sqlite_connection_writes_append_their_events_and_no_ops_none,
        postgres_connection_writes_append_their_events_and_no_ops_none;
    check_follow_and_block_writes_append_their_events_and_no_ops_none =>
        sqlite_follow_and_block_writes_append_their_events_and_no_ops_none,
        postgres_follow_and_block_writes_append_their_events_and_no_ops_none;
    check_racing_writes_append_one_event_per_change_in_sequence =>
        sqlite_racing_writes_append_one_event_per_change_in_sequence,
        postgres_racing_writes_append_one_event_per_change_in_sequence;
    check_export_is_the_current_graph_at_the_outbox_head =>
        sqlite_export_is_the_current_graph_at_the_outbox_head,
        postgres_export_is_the_current_graph_at_the_outbox_head;
    check_imports_append_one_event_per_row_and_export_pages_through_them =>
        sqlite_imports_append_one_event_per_row_and_export_pages_through_them,
        postgres_imports_append_one_event_per_row_and_export_pages_through_them;
}

/// Tasks each race runs at once.
const RACERS: usize = 32;

type Store = Arc<dyn ProfileStore>;

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

/// Profiles for each id, handle = id, created at time 1.
async fn members(store: &Store, ids: &[&str]) {
    for id in ids {
        store.create_profile(id, fields(id), 1, None).await.unwrap();
    }
}

fn invitation(id: &str, from: &str, to: &str, time: i64) -> InvitationRecord {
    InvitationRecord {
        id: id.into(),
        inviter_id: from.into(),
        invitee_id: to.into(),
        message: format!("{from} to {to}"),
        state: InvitationState::Pending,
        create_time: time,
    }
}

/// Connects `a` and `b` at `time` through an invitation `a->b`.
async fn connect(store: &Store, a: &str, b: &str, time: i64) {
    let id = format!("{a}-{b}");
    store
        .create_invitation(invitation(&id, a, b, time), None)
        .await
        .unwrap();
    store.accept_invitation(&id, b, time).await.unwrap();
}

async fn connections(store: &Store, id: &str) -> Vec<ConnectionRecord> {
    store.list_connections(id, None, 1000).await.unwrap()
}

async fn connected_ids(store: &Store, id: &str) -> Vec<String> {
    connections(store, id)
        .await
        .into_iter()
        .map(|c| c.member_id)
        .collect()
}

async fn following(store: &Store, id: &str) -> Vec<FollowTarget> {
    store
        .list_following(id, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.target)
        .collect()
}

async fn pending(store: &Store, id: &str, direction: InvitationDirection) -> Vec<String> {
    store
        .list_invitations(id, direction, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

fn member(id: &str) -> FollowTarget {
    FollowTarget::Member(id.into())
}

fn hashtag(tag: &str) -> FollowTarget {
    FollowTarget::Hashtag(tag.into())
}

/// Runs `n` copies of `task(i)` at once and returns their results in order of `i`.
async fn race<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

/// All pages of `fetch(after)` with page size `limit`, stopping after the first short page,
/// exactly as a client following next-page tokens does.
async fn pages<T, C, F, Fut>(limit: usize, cursor: impl Fn(&T) -> C, fetch: F) -> Vec<Vec<T>>
where
    F: Fn(Option<C>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<T>>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after.take()).await.unwrap();
        let full = page.len() == limit;
        if let Some(last) = page.last() {
            after = Some(cursor(last));
        }
        all.push(page);
        if !full || all.len() > 100 {
            return all;
        }
    }
}

async fn check_profiles_are_created_and_found(store: Store) {
    let mut f = fields("Ada_L");
    f.headline = "Engineer".into();
    f.summary = "line one\nline two".into();
    f.location = "London".into();
    f.industry = "Computing".into();
    f.skills = vec!["Rust".into(), "Go".into(), "Émigré \"quoted\"".into()];
    let created = store.create_profile("ada", f, 100, None).await.unwrap();
    assert_eq!(
        created,
        ProfileRecord {
            id: "ada".into(),
            handle: "Ada_L".into(),
            display_name: "Ada_L".into(),
            headline: "Engineer".into(),
            summary: "line one\nline two".into(),
            location: "London".into(),
            industry: "Computing".into(),
            skills: vec!["Rust".into(), "Go".into(), "Émigré \"quoted\"".into()],
            positions: Vec::new(),
            education: Vec::new(),
            open_to_work: false,
            create_time: 100,
            update_time: 100,
            connection_count: 0,
            follower_count: 0,
        }
    );
    let found = Some(created.clone());
    assert_eq!(store.get_profile("ada", None).await.unwrap(), found);
    assert_eq!(store.get_profile("ada", Some("ada")).await.unwrap(), found);
    assert_eq!(
        store.get_profile_by_handle("ada_l", None).await.unwrap(),
        found
    );
    assert_eq!(
        store
            .get_profile_by_handle("ada_l", Some("zed"))
            .await
            .unwrap(),
        found
    );
    // The key is lowercase: the stored spelling is not a key.
    assert_eq!(
        store.get_profile_by_handle("Ada_L", None).await.unwrap(),
        None
    );
    assert_eq!(store.get_profile("nobody", None).await.unwrap(), None);

    members(&store, &["bob"]).await;
    let ids: Vec<String> = ["bob", "nobody", "ada", "bob"].map(String::from).to_vec();
    let found = store.batch_get_profiles(&ids, None).await.unwrap();
    assert_eq!(sorted_ids(found, |p| p.id), ["ada", "bob"]);
    assert_eq!(store.batch_get_profiles(&[], None).await.unwrap(), []);
    assert_eq!(
        store
            .batch_get_profiles(&["nobody".to_string()], Some("ada"))
            .await
            .unwrap(),
        []
    );
}

async fn check_a_taken_id_is_told_apart_from_a_taken_handle(store: Store) {
    store
        .create_profile("ada", fields("ada"), 1, None)
        .await
        .unwrap();
    // Id and handle both taken: the id wins, so a retried create says the profile exists.
    let err = store
        .create_profile("ada", fields("ada"), 2, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::ProfileExists), "{err:?}");
    let err = store
        .create_profile("ada", fields("other"), 2, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::ProfileExists), "{err:?}");
    let err = store
        .create_profile("bob", fields("Ada"), 2, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::HandleTaken), "{err:?}");
    assert_eq!(store.get_profile("bob", None).await.unwrap(), None);
}

async fn check_racing_creates_without_a_key_create_one(store: Store) {
    // One member creating their profile from many places at once.
    let results = race(RACERS, |i| {
        let store = store.clone();
        async move {
            store
                .create_profile("ada", fields("ada"), 100 + i as i64, None)
                .await
        }
    })
    .await;
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, ProfileError::ProfileExists)),
        "{results:?}"
    );
    assert_eq!(
        store.get_profile("ada", None).await.unwrap().as_ref(),
        Some(created[0])
    );
    // Many members after one handle.
    let results = race(RACERS, |i| {
        let store = store.clone();
        async move {
            store
                .create_profile(&format!("m{i}"), fields("Wanted"), 1, None)
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, ProfileError::HandleTaken)),
        "{results:?}"
    );
}

async fn check_profiles_are_updated(store: Store) {
    members(&store, &["ada", "bob"]).await;
    let updated = store
        .update_profile(
            "ada",
            ProfileChanges {
                headline: Some("New".into()),
                skills: Some(vec!["A".into(), "B".into()]),
                ..Default::default()
            },
            200,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.headline.as_str(),
            updated.skills.clone(),
            updated.display_name.as_str(),
            updated.create_time,
            updated.update_time
        ),
        ("New", vec!["A".to_string(), "B".to_string()], "ada", 1, 200)
    );
    assert_eq!(store.get_profile("ada", None).await.unwrap(), Some(updated));

    let renamed = store
        .update_profile(
            "ada",
            ProfileChanges {
                handle: Some(Handle::parse("ADA_2").unwrap()),
                ..Default::default()
            },
            300,
        )
        .await
        .unwrap();
    assert_eq!(renamed.handle, "ADA_2");
    assert_eq!(
        store.get_profile_by_handle("ada_2", None).await.unwrap(),
        Some(renamed)
    );
    assert_eq!(
        store.get_profile_by_handle("ada", None).await.unwrap(),
        None
    );
    // A member may change the case of their own handle.
    store
        .update_profile(
            "ada",
            ProfileChanges {
                handle: Some(Handle::parse("Ada_2").unwrap()),
                ..Default::default()
            },
            400,
        )
        .await
        .unwrap();
    let err = store
        .update_profile(
            "bob",
            ProfileChanges {
                handle: Some(Handle::parse("ada_2").unwrap()),
                ..Default::default()
            },
            500,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::HandleTaken), "{err:?}");
    assert_eq!(
        store
            .get_profile("bob", None)
            .await
            .unwrap()
            .unwrap()
            .handle,
        "bob"
    );
    let err = store
        .update_profile("nobody", ProfileChanges::default(), 600)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("profile")), "{err:?}");
}

async fn check_concurrent_updates_lose_no_change(store: Store) {
    members(&store, &["ada"]).await;
    // Half change the headline, half the location: each update must start from the other's
    // result, or one field comes back empty.
    let results = race(RACERS, |i| {
        let store = store.clone();
        async move {
            let changes = if i % 2 == 0 {
                ProfileChanges {
                    headline: Some(format!("h{i}")),
                    ..Default::default()
                }
            } else {
                ProfileChanges {
                    location: Some(format!("l{i}")),
                    ..Default::default()
                }
            };
            store.update_profile("ada", changes, 10 + i as i64).await
        }
    })
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let ada = store.get_profile("ada", None).await.unwrap().unwrap();
    assert!(ada.headline.starts_with('h'), "{ada:?}");
    assert!(ada.location.starts_with('l'), "{ada:?}");
}

async fn check_invitations_follow_the_rules(store: Store) {
    members(&store, &["ada", "bob", "cyd"]).await;
    let err = store
        .create_invitation(invitation("i0", "zed", "ada", 5), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("inviter")), "{err:?}");
    let err = store
        .create_invitation(invitation("i0", "ada", "zed", 5), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("invitee")), "{err:?}");

    let created = store
        .create_invitation(invitation("i1", "ada", "bob", 10), None)
        .await
        .unwrap();
    assert_eq!(created, invitation("i1", "ada", "bob", 10));
    // One pending invitation per pair (inviting back accepts instead: see
    // `check_inviting_back_accepts_the_pending_invitation`).
    let err = store
        .create_invitation(invitation("i2", "ada", "bob", 20), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::InvitationPending), "{err:?}");
    assert_eq!(
        pending(&store, "bob", InvitationDirection::Received).await,
        ["i1"]
    );
    assert_eq!(
        pending(&store, "ada", InvitationDirection::Sent).await,
        ["i1"]
    );
    assert_eq!(
        pending(&store, "ada", InvitationDirection::Received).await,
        Vec::<String>::new()
    );

    store.accept_invitation("i1", "bob", 30).await.unwrap();
    for (id, from, to) in [("i4", "ada", "bob"), ("i5", "bob", "ada")] {
        let err = store
            .create_invitation(invitation(id, from, to, 40), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProfileError::AlreadyConnected), "{err:?}");
    }
    // Other pairs are unaffected.
    store
        .create_invitation(invitation("i6", "cyd", "ada", 50), None)
        .await
        .unwrap();
    assert_eq!(
        pending(&store, "ada", InvitationDirection::Received).await,
        ["i6"]
    );
}

async fn check_racing_invitations_make_one_invitation(store: Store) {
    members(&store, &["ada", "bob"]).await;
    let results = race(RACERS, |i| {
        let store = store.clone();
        async move {
            let (from, to) = if i % 2 == 0 {
                ("ada", "bob")
            } else {
                ("bob", "ada")
            };
            store
                .create_invitation(invitation(&format!("i{i}"), from, to, i as i64), None)
                .await
        }
    })
    .await;
    // One invitation is created; the first invitation back accepts it; everyone else is
    // told it is pending or that they are connected.
    let ids: std::collections::BTreeSet<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(
                e,
                ProfileError::InvitationPending | ProfileError::AlreadyConnected
            )),
        "{results:?}"
    );
    let accepted = results
        .iter()
        .filter(|r| matches!(r, Ok(i) if i.state == InvitationState::Accepted))
        .count();
    assert!(accepted <= 1, "{results:?}");
    let mut all = pending(&store, "ada", InvitationDirection::Sent).await;
    all.extend(pending(&store, "ada", InvitationDirection::Received).await);
    let connected = connected_ids(&store, "ada").await;
    if accepted == 1 {
        assert!(all.is_empty(), "{all:?}");
        assert_eq!(connected, ["bob"]);
        assert_eq!(connected_ids(&store, "bob").await, ["ada"]);
    } else {
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(connected.is_empty());
    }
}

async fn check_accepting_connects_both_ways(store: Store) {
    members(&store, &["ada", "bob", "cyd"]).await;
    store
        .create_invitation(invitation("i1", "ada", "bob", 10), None)
        .await
        .unwrap();
    let err = store
        .accept_invitation("nope", "bob", 20)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProfileError::NotFound("invitation")),
        "{err:?}"
    );
    for who in ["cyd", "ada"] {
        let err = store.accept_invitation("i1", who, 20).await.unwrap_err();
        assert!(matches!(err, ProfileError::NotInvitee(_)), "{who}: {err:?}");
    }
    let accepted = store.accept_invitation("i1", "bob", 20).await.unwrap();
    assert_eq!(
        accepted,
        InvitationRecord {
            state: InvitationState::Accepted,
            ..invitation("i1", "ada", "bob", 10)
        }
    );
    assert_eq!(
        connections(&store, "ada").await,
        [ConnectionRecord {
            member_id: "bob".into(),
            create_time: 20
        }]
    );
    assert_eq!(
        connections(&store, "bob").await,
        [ConnectionRecord {
            member_id: "ada".into(),
            create_time: 20
        }]
    );
    assert_eq!(connected_ids(&store, "cyd").await, Vec::<String>::new());
    let err = store.accept_invitation("i1", "bob", 30).await.unwrap_err();
    assert!(matches!(err, ProfileError::InvitationNotPending), "{err:?}");
    assert_eq!(
        pending(&store, "bob", InvitationDirection::Received).await,
        Vec::<String>::new()
    );
}

async fn check_racing_accepts_connect_once_both_ways(store: Store) {
    members(&store, &["ada", "bob"]).await;
    store
        .create_invitation(invitation("i1", "ada", "bob", 10), None)
        .await
        .unwrap();
    let results = race(RACERS, |i| {
        let store = store.clone();
        async move { store.accept_invitation("i1", "bob", 100 + i as i64).await }
    })
    .await;
    let winners: Vec<usize> = (0..RACERS).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, ProfileError::InvitationNotPending)),
        "{results:?}"
    );
    // Both ways, once, at the winner's time.
    let time = 100 + winners[0] as i64;
    assert_eq!(
        connections(&store, "ada").await,
        [ConnectionRecord {
            member_id: "bob".into(),
            create_time: time
        }]
    );
    assert_eq!(
        connections(&store, "bob").await,
        [ConnectionRecord {
            member_id: "ada".into(),
            create_time: time
        }]
    );
}

async fn check_follows_are_idempotent_and_check_the_target(store: Store) {
    members(&store, &["ada", "bob"]).await;
    let first = store.follow("ada", member("bob"), 10).await.unwrap();
    assert_eq!(
        first,
        FollowingRecord {
            target: member("bob"),
            create_time: 10
        }
    );
    // Following again keeps the first record.
    assert_eq!(store.follow("ada", member("bob"), 20).await.unwrap(), first);
    store.follow("ada", hashtag("rust"), 30).await.unwrap();
    let err = store.follow("zed", hashtag("rust"), 40).await.unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("member")), "{err:?}");
    let err = store.follow("ada", member("zed"), 40).await.unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("followee")), "{err:?}");
    assert_eq!(
        store.list_following("ada", None, 10).await.unwrap(),
        [
            FollowingRecord {
                target: hashtag("rust"),
                create_time: 30
            },
            first
        ]
    );
    assert_eq!(following(&store, "bob").await, []);
}

async fn check_racing_follows_of_one_target_make_one_row(store: Store) {
    members(&store, &["ada", "bob"]).await;
    // RACERS follows of one member and RACERS of one hashtag, all at once.
    let results = race(2 * RACERS, |i| {
        let store = store.clone();
        async move {
            let target = if i % 2 == 0 {
                member("bob")
            } else {
                hashtag("rust")
            };
            store.follow("ada", target, 100 + i as i64).await
        }
    })
    .await;
    let records: Vec<FollowingRecord> = results.into_iter().map(Result::unwrap).collect();
    let listed = store.list_following("ada", None, 100).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Everyone was told of the one record that was kept.
    for record in &records {
        assert!(listed.contains(record), "{record:?} not in {listed:?}");
    }
}

async fn check_block_removes_connection_follows_and_invitations_both_ways(store: Store) {
    members(&store, &["ada", "bob", "cyd", "dee"]).await;
    connect(&store, "ada", "bob", 10).await;
    connect(&store, "bob", "cyd", 10).await;
    for (who, whom) in [
        ("ada", "bob"),
        ("bob", "ada"),
        ("cyd", "ada"),
        ("bob", "cyd"),
    ] {
        store.follow(who, member(whom), 20).await.unwrap();
    }
    store.follow("ada", hashtag("rust"), 20).await.unwrap();
    store
        .create_invitation(invitation("i1", "cyd", "ada", 30), None)
        .await
        .unwrap();
    store
        .create_invitation(invitation("i2", "dee", "ada", 30), None)
        .await
        .unwrap();
    let counts = |id: &'static str| {
        let store = store.clone();
        async move {
            let p = store.get_profile(id, None).await.unwrap().unwrap();
            (p.connection_count, p.follower_count)
        }
    };
    // ada: connected with bob, followed by bob and cyd; bob: with ada and cyd, followed by ada;
    // cyd: with bob, followed by bob.
    assert_eq!(counts("ada").await, (1, 2));
    assert_eq!(counts("bob").await, (2, 1));
    assert_eq!(counts("cyd").await, (1, 1));

    store.block_member("ada", "bob", 40).await.unwrap();
    store.block_member("ada", "cyd", 40).await.unwrap();
    // The counts drop with the rows the blocks removed; bob and cyd keep each other.
    assert_eq!(counts("ada").await, (0, 0));
    assert_eq!(counts("bob").await, (1, 0));
    assert_eq!(counts("cyd").await, (1, 1));
    let batch = store
        .batch_get_profiles(&["ada".into(), "bob".into()], None)
        .await
        .unwrap();
    for p in &batch {
        let expected = if p.id == "ada" { (0, 0) } else { (1, 0) };
        assert_eq!((p.connection_count, p.follower_count), expected, "{}", p.id);
    }
    assert_eq!(batch.len(), 2);
    assert_eq!(connected_ids(&store, "ada").await, Vec::<String>::new());
    assert_eq!(connected_ids(&store, "bob").await, ["cyd"]);
    assert_eq!(following(&store, "ada").await, [hashtag("rust")]);
    assert_eq!(following(&store, "bob").await, [member("cyd")]);
    assert_eq!(following(&store, "cyd").await, []);
    assert_eq!(
        pending(&store, "ada", InvitationDirection::Received).await,
        ["i2"]
    );
    assert_eq!(
        pending(&store, "cyd", InvitationDirection::Sent).await,
        Vec::<String>::new()
    );
}

async fn check_blocked_members_are_hidden_and_cannot_invite_or_follow(store: Store) {
    members(&store, &["ada", "bob", "cyd"]).await;
    store.block_member("bob", "ada", 10).await.unwrap();
    // Hidden either way from the two of them, visible to others and to services.
    for (id, viewer) in [("bob", "ada"), ("ada", "bob")] {
        assert_eq!(store.get_profile(id, Some(viewer)).await.unwrap(), None);
        assert_eq!(
            store.get_profile_by_handle(id, Some(viewer)).await.unwrap(),
            None
        );
        assert!(store.get_profile(id, Some("cyd")).await.unwrap().is_some());
        assert!(store.get_profile(id, None).await.unwrap().is_some());
        assert!(store
            .get_profile_by_handle(id, None)
            .await
            .unwrap()
            .is_some());
    }
    let ids: Vec<String> = ["ada", "bob", "cyd"].map(String::from).to_vec();
    let seen = |viewer: Option<&'static str>| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            let mut seen: Vec<String> = store
                .batch_get_profiles(&ids, viewer)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect();
            seen.sort();
            seen
        }
    };
    assert_eq!(seen(Some("ada")).await, ["ada", "cyd"]);
    assert_eq!(seen(Some("bob")).await, ["bob", "cyd"]);
    assert_eq!(seen(None).await, ["ada", "bob", "cyd"]);
    // Either way looks like a missing member.
    for (i, (from, to)) in [("ada", "bob"), ("bob", "ada")].into_iter().enumerate() {
        let err = store
            .create_invitation(invitation(&format!("i{i}"), from, to, 20), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProfileError::NotFound("invitee")), "{err:?}");
        let err = store.follow(from, member(to), 20).await.unwrap_err();
        assert!(matches!(err, ProfileError::NotFound("followee")), "{err:?}");
    }
    // Only the blocker lifts it; lifting what is not there changes nothing.
    store.unblock_member("ada", "bob").await.unwrap();
    store.unblock_member("ada", "nobody").await.unwrap();
    assert_eq!(store.get_profile("bob", Some("ada")).await.unwrap(), None);
    store.unblock_member("bob", "ada").await.unwrap();
    assert!(store
        .get_profile("bob", Some("ada"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(seen(Some("ada")).await, ["ada", "bob", "cyd"]);
    store.follow("ada", member("bob"), 30).await.unwrap();
    store
        .create_invitation(invitation("i9", "bob", "ada", 30), None)
        .await
        .unwrap();
}

async fn check_blocks_are_idempotent_and_never_for_oneself(store: Store) {
    members(&store, &["ada", "bob"]).await;
    store.block_member("ada", "bob", 10).await.unwrap();
    store.block_member("ada", "bob", 20).await.unwrap();
    let ids = vec!["bob".to_string()];
    let blocked = |viewer: &'static str| {
        let (store, ids) = (store.clone(), ids.clone());
        async move { store.relationships(viewer, &ids).await.unwrap()[0].blocked }
    };
    assert!(blocked("ada").await);
    // One record: one unblock lifts it.
    store.unblock_member("ada", "bob").await.unwrap();
    assert!(!blocked("ada").await);
    let err = store.block_member("ada", "ada", 30).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::Service(ServiceError::Storage(_) | ServiceError::Write(_))
        ),
        "{err:?}"
    );
    let err = store.block_member("zed", "ada", 30).await.unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("member")), "{err:?}");
    let err = store.block_member("ada", "zed", 30).await.unwrap_err();
    assert!(
        matches!(err, ProfileError::NotFound("blocked member")),
        "{err:?}"
    );
}

async fn check_a_block_racing_invitations_and_follows_leaves_none(store: Store) {
    const PAIRS: usize = 16;
    let names: Vec<(String, String)> = (0..PAIRS)
        .map(|i| (format!("a{i:02}"), format!("b{i:02}")))
        .collect();
    for (i, (a, b)) in names.iter().enumerate() {
        members(&store, &[a, b]).await;
        // Half the pairs race the block with accepting a pending invitation, half with
        // inviting and accepting.
        if i % 2 == 0 {
            store
                .create_invitation(invitation(&format!("{a}-{b}"), b, a, 1), None)
                .await
                .unwrap();
        }
    }
    // Invites `to` from `from` (unless `pending` already did) and accepts as `to`.
    let invite_and_accept = |store: Store, from: String, to: String, pending: bool, time| async move {
        let id = format!("{from}-{to}-{time}");
        if !pending {
            store
                .create_invitation(invitation(&id, &from, &to, time), None)
                .await?;
        }
        let id = if pending { format!("{to}-{from}") } else { id };
        store.accept_invitation(&id, &to, time).await.map(|_| ())
    };
    // Per pair: the block, the invitation, and a follow each way, all at once.
    let results = race(4 * PAIRS, |i| {
        let store = store.clone();
        let (a, b) = names[i / 4].clone();
        let pending = (i / 4) % 2 == 0;
        let invite = invite_and_accept(store.clone(), b.clone(), a.clone(), pending, 10);
        async move {
            match i % 4 {
                0 => store.block_member(&a, &b, 10).await,
                1 => invite.await,
                2 => store.follow(&a, member(&b), 10).await.map(|_| ()),
                _ => store.follow(&b, member(&a), 10).await.map(|_| ()),
            }
        }
    })
    .await;
    // Each loses to the block or finishes before it; nothing else goes wrong.
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(()) | Err(ProfileError::NotFound("invitee" | "invitation" | "followee")) => {}
            Err(e) => panic!("task {i}: {e:?}"),
        }
    }
    // Again after lifting the block, with the other member blocking.
    let results = race(4 * PAIRS, |i| {
        let store = store.clone();
        let (a, b) = names[i / 4].clone();
        let invite = invite_and_accept(store.clone(), a.clone(), b.clone(), false, 20);
        async move {
            match i % 4 {
                0 => {
                    store.unblock_member(&a, &b).await?;
                    store.block_member(&b, &a, 20).await
                }
                1 => invite.await,
                2 => store.follow(&a, member(&b), 20).await.map(|_| ()),
                _ => store.follow(&b, member(&a), 20).await.map(|_| ()),
            }
        }
    })
    .await;
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(()) | Err(ProfileError::NotFound("invitee" | "invitation" | "followee")) => {}
            Err(e) => panic!("task {i}: {e:?}"),
        }
    }
    for (a, b) in &names {
        assert_eq!(
            store
                .relationships(a, std::slice::from_ref(b))
                .await
                .unwrap(),
            [RelationshipRecord {
                member_id: b.clone(),
                connected: false,
                blocked: true
            }],
            "{a} {b}"
        );
        for id in [a, b] {
            assert_eq!(
                connected_ids(&store, id).await,
                Vec::<String>::new(),
                "{id}"
            );
            assert_eq!(following(&store, id).await, [], "{id}");
            for direction in [InvitationDirection::Sent, InvitationDirection::Received] {
                assert_eq!(
                    pending(&store, id, direction).await,
                    Vec::<String>::new(),
                    "{id}"
                );
            }
        }
    }
}

async fn check_relationships_come_in_request_order(store: Store) {
    members(&store, &["ada", "bob", "cyd", "dee"]).await;
    connect(&store, "ada", "bob", 10).await;
    store.block_member("cyd", "ada", 20).await.unwrap();
    let ids: Vec<String> = ["bob", "cyd", "zed", "bob", "dee", "ada"]
        .map(String::from)
        .to_vec();
    let got: Vec<(String, bool, bool)> = store
        .relationships("ada", &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.member_id, r.connected, r.blocked))
        .collect();
    let want = [
        ("bob", true, false),
        ("cyd", false, true),
        ("zed", false, false),
        ("bob", true, false),
        ("dee", false, false),
        ("ada", false, false),
    ]
    .map(|(id, c, b)| (id.to_string(), c, b));
    assert_eq!(got, want);
    // Blocked either way: the blocker sees it too.
    assert_eq!(
        store
            .relationships("cyd", &["ada".to_string()])
            .await
            .unwrap(),
        [RelationshipRecord {
            member_id: "ada".into(),
            connected: false,
            blocked: true
        }]
    );
    assert_eq!(store.relationships("ada", &[]).await.unwrap(), []);
    assert_eq!(
        store
            .relationships("nobody", &["ada".to_string()])
            .await
            .unwrap(),
        [RelationshipRecord {
            member_id: "ada".into(),
            connected: false,
            blocked: false
        }]
    );
}

async fn check_connections_page_newest_first(store: Store) {
    members(
        &store,
        &["ada", "mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "cyd"],
    )
    .await;
    // Ties on time, broken by member id, newest first.
    for (other, time) in [
        ("mb1", 10),
        ("mb2", 10),
        ("mb3", 20),
        ("mb4", 20),
        ("mb5", 30),
        ("mb6", 30),
    ] {
        connect(&store, "ada", other, time).await;
    }
    let cursor = |c: &ConnectionRecord| Cursor {
        time: c.create_time,
        key: c.member_id.clone(),
    };
    let listed = |limit: usize| {
        let store = store.clone();
        pages(limit, cursor, move |after| {
            let store = store.clone();
            async move { store.list_connections("ada", after, limit).await }
        })
    };
    let ids = |pages: Vec<Vec<ConnectionRecord>>| -> Vec<Vec<String>> {
        pages
            .into_iter()
            .map(|p| p.into_iter().map(|c| c.member_id).collect())
            .collect()
    };
    // An exact multiple of the page size ends with an empty page.
    assert_eq!(
        ids(listed(2).await),
        [
            vec!["mb6", "mb5"],
            vec!["mb4", "mb3"],
            vec!["mb2", "mb1"],
            Vec::<&str>::new()
        ]
    );
    assert_eq!(
        ids(listed(4).await),
        [vec!["mb6", "mb5", "mb4", "mb3"], vec!["mb2", "mb1"]]
    );
    let first = &listed(1).await[0][0];
    assert_eq!(
        first,
        &ConnectionRecord {
            member_id: "mb6".into(),
            create_time: 30
        }
    );
    assert_eq!(store.list_connections("cyd", None, 10).await.unwrap(), []);
    assert_eq!(
        store.list_connections("nobody", None, 10).await.unwrap(),
        []
    );
}

async fn check_invitations_page_newest_first(store: Store) {
    members(
        &store,
        &[
            "ada", "mb1", "mb2", "mb3", "mb4", "mb5", "nb1", "nb2", "nb3", "nb4",
        ],
    )
    .await;
    for (id, from, time) in [
        ("r1", "mb1", 10),
        ("r2", "mb2", 10),
        ("r3", "mb3", 10),
        ("r4", "mb4", 20),
        ("r5", "mb5", 5),
    ] {
        store
            .create_invitation(invitation(id, from, "ada", time), None)
            .await
            .unwrap();
    }
    for (id, to) in [("s1", "nb1"), ("s2", "nb2"), ("s3", "nb3"), ("s4", "nb4")] {
        store
            .create_invitation(invitation(id, "ada", to, 7), None)
            .await
            .unwrap();
    }
    // Accepted invitations leave the lists.
    store.accept_invitation("r5", "ada", 50).await.unwrap();
    let listed = |direction: InvitationDirection, limit: usize| {
        let store = store.clone();
        async move {
            pages(
                limit,
                |i: &InvitationRecord| Cursor {
                    time: i.create_time,
                    key: i.id.clone(),
                },
                move |after| {
                    let store = store.clone();
                    async move { store.list_invitations("ada", direction, after, limit).await }
                },
            )
            .await
            .into_iter()
            .map(|p| p.into_iter().map(|i| i.id).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(InvitationDirection::Received, 3).await,
        [vec!["r4", "r3", "r2"], vec!["r1"]]
    );
    assert_eq!(
        listed(InvitationDirection::Sent, 2).await,
        [vec!["s4", "s3"], vec!["s2", "s1"], vec![]]
    );
    assert_eq!(
        store
            .list_invitations("mb1", InvitationDirection::Received, None, 10)
            .await
            .unwrap(),
        []
    );
    let r4 = store
        .list_invitations("mb4", InvitationDirection::Sent, None, 10)
        .await
        .unwrap();
    assert_eq!(
        r4,
        [InvitationRecord {
            message: "mb4 to ada".into(),
            ..invitation("r4", "mb4", "ada", 20)
        }]
    );
}

async fn check_following_pages_newest_first(store: Store) {
    members(&store, &["ada", "bob", "mb1", "mb2"]).await;
    // Ties on time across kinds: time, then kind (hashtags after members), then target.
    for (target, time) in [
        (member("mb1"), 10),
        (member("mb2"), 10),
        (hashtag("a"), 10),
        (hashtag("b"), 10),
        (hashtag("c"), 20),
    ] {
        store.follow("ada", target, time).await.unwrap();
    }
    let listed = |limit: usize| {
        let store = store.clone();
        async move {
            pages(
                limit,
                |f: &FollowingRecord| FollowCursor {
                    time: f.create_time,
                    kind: f.target.kind(),
                    target: f.target.value().to_owned(),
                },
                move |after| {
                    let store = store.clone();
                    async move { store.list_following("ada", after, limit).await }
                },
            )
            .await
            .into_iter()
            .map(|p| p.into_iter().map(|f| f.target).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(2).await,
        [
            vec![hashtag("c"), hashtag("b")],
            vec![hashtag("a"), member("mb2")],
            vec![member("mb1")]
        ]
    );
    assert_eq!(
        listed(5).await,
        [
            vec![
                hashtag("c"),
                hashtag("b"),
                hashtag("a"),
                member("mb2"),
                member("mb1")
            ],
            vec![]
        ]
    );
    assert_eq!(following(&store, "bob").await, []);
}

async fn check_create_profile_retries_return_the_first_profile(store: Store) {
    let k = key("member:ada", "r1");
    let first = store
        .create_profile("ada", fields("ada"), 10, Some(&k))
        .await
        .unwrap();
    // A retry, even a changed one, returns the first result and creates nothing.
    let again = store
        .create_profile("ada", fields("other"), 20, Some(&k))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        store.get_profile_by_handle("other", None).await.unwrap(),
        None
    );
    // It answers with the profile as it is now.
    let updated = store
        .update_profile(
            "ada",
            ProfileChanges {
                headline: Some("Later".into()),
                ..Default::default()
            },
            30,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .create_profile("ada", fields("ada"), 40, Some(&k))
            .await
            .unwrap(),
        updated
    );
    // Without the key it is a second create.
    let err = store
        .create_profile("ada", fields("ada"), 50, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::ProfileExists), "{err:?}");
    // A failed create records no key: the same key works once the request is fixed. The same
    // request_id from another caller is another key.
    let bobs = key("member:bob", "r1");
    let err = store
        .create_profile("bob", fields("ADA"), 60, Some(&bobs))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::HandleTaken), "{err:?}");
    let bob = store
        .create_profile("bob", fields("bob"), 70, Some(&bobs))
        .await
        .unwrap();
    assert_eq!((bob.id.as_str(), bob.create_time), ("bob", 70));
}

async fn check_racing_create_profile_retries_create_one(store: Store) {
    let k = key("member:ada", "r1");
    let results = race(RACERS, |i| {
        let (store, k) = (store.clone(), k.clone());
        async move {
            store
                .create_profile("ada", fields("ada"), 100 + i as i64, Some(&k))
                .await
        }
    })
    .await;
    let profiles: Vec<ProfileRecord> = results.into_iter().map(Result::unwrap).collect();
    assert!(profiles.iter().all(|p| p == &profiles[0]), "{profiles:?}");
    assert_eq!(
        store.get_profile("ada", None).await.unwrap(),
        Some(profiles[0].clone())
    );
}

async fn check_create_invitation_retries_return_the_first_invitation(store: Store) {
    members(&store, &["ada", "bob", "cyd"]).await;
    let k = key("member:ada", "r1");
    let first = store
        .create_invitation(invitation("i1", "ada", "bob", 10), Some(&k))
        .await
        .unwrap();
    let again = store
        .create_invitation(invitation("i2", "ada", "bob", 20), Some(&k))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        pending(&store, "bob", InvitationDirection::Received).await,
        ["i1"]
    );
    // Accepted since: a new invitation would fail, the retry answers with the accepted one.
    store.accept_invitation("i1", "bob", 30).await.unwrap();
    let late = store
        .create_invitation(invitation("i3", "ada", "bob", 40), Some(&k))
        .await
        .unwrap();
    assert_eq!(
        late,
        InvitationRecord {
            state: InvitationState::Accepted,
            ..first
        }
    );
    // A failed create records no key.
    let k2 = key("member:ada", "r2");
    let err = store
        .create_invitation(invitation("i4", "ada", "zed", 50), Some(&k2))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("invitee")), "{err:?}");
    let to_cy = store
        .create_invitation(invitation("i5", "ada", "cyd", 60), Some(&k2))
        .await
        .unwrap();
    assert_eq!(to_cy.id, "i5");
    // Keys are per caller: bob's "r1" is not ada's.
    let bobs = key("member:bob", "r1");
    let from_bob = store
        .create_invitation(invitation("i6", "bob", "cyd", 70), Some(&bobs))
        .await
        .unwrap();
    assert_eq!(from_bob.id, "i6");
    // Removed by a block: the retry finds no invitee, as a new invitation would.
    store.block_member("cyd", "bob", 80).await.unwrap();
    let err = store
        .create_invitation(invitation("i7", "bob", "cyd", 90), Some(&bobs))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::NotFound("invitee")), "{err:?}");
}

async fn check_racing_create_invitation_retries_create_one(store: Store) {
    members(&store, &["ada", "bob"]).await;
    let k = key("member:ada", "r1");
    let results = race(RACERS, |i| {
        let (store, k) = (store.clone(), k.clone());
        async move {
            store
                .create_invitation(
                    invitation(&format!("i{i}"), "ada", "bob", 100 + i as i64),
                    Some(&k),
                )
                .await
        }
    })
    .await;
    let invitations: Vec<InvitationRecord> = results.into_iter().map(Result::unwrap).collect();
    assert!(
        invitations.iter().all(|i| i == &invitations[0]),
        "{invitations:?}"
    );
    assert_eq!(
        pending(&store, "ada", InvitationDirection::Sent).await,
        [invitations[0].id.clone()]
    );
    assert_eq!(
        pending(&store, "bob", InvitationDirection::Received).await,
        [invitations[0].id.clone()]
    );
}

async fn check_handles_resolve_in_request_order(store: Store) {
    store
        .create_profile("m-ada", fields("Ada_L"), 1, None)
        .await
        .unwrap();
    store
        .create_profile("m-bob", fields("bob"), 1, None)
        .await
        .unwrap();
    let keys: Vec<String> = ["bob", "ghost", "ada_l", "bob"].map(String::from).to_vec();
    let pair = |h: &str, id: &str| (h.to_string(), id.to_string());
    assert_eq!(
        store.lookup_handles(&keys).await.unwrap(),
        [
            pair("bob", "m-bob"),
            pair("Ada_L", "m-ada"),
            pair("bob", "m-bob")
        ]
    );
    assert!(store.lookup_handles(&[]).await.unwrap().is_empty());
    let nobody: Vec<String> = vec!["ghost".into()];
    assert!(store.lookup_handles(&nobody).await.unwrap().is_empty());
}

async fn check_decline_and_withdraw_follow_the_state_rules(store: Store) {
    members(&store, &["ann", "bea", "cal"]).await;
    store
        .create_invitation(invitation("ann-bea", "ann", "bea", 10), None)
        .await
        .unwrap();
    // Only the invitee declines, only the inviter withdraws; strangers neither.
    for who in ["ann", "cal"] {
        let err = store
            .decline_invitation("ann-bea", who, 11)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProfileError::NotInvitee("decline")),
            "{who}: {err:?}"
        );
    }
    for who in ["bea", "cal"] {
        let err = store
            .withdraw_invitation("ann-bea", who, 11)
            .await
            .unwrap_err();
        assert!(matches!(err, ProfileError::NotInviter), "{who}: {err:?}");
    }
    let err = store
        .decline_invitation("nope", "bea", 11)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProfileError::NotFound("invitation")),
        "{err:?}"
    );
    let declined = store
        .decline_invitation("ann-bea", "bea", 12)
        .await
        .unwrap();
    assert_eq!(declined.state, InvitationState::Declined);
    assert!(pending(&store, "bea", InvitationDirection::Received)
        .await
        .is_empty());
    // Closed for good: neither accept, decline again, nor withdraw.
    for err in [
        store
            .decline_invitation("ann-bea", "bea", 13)
            .await
            .unwrap_err(),
        store
            .withdraw_invitation("ann-bea", "ann", 13)
            .await
            .unwrap_err(),
        store
            .accept_invitation("ann-bea", "bea", 13)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, ProfileError::InvitationNotPending), "{err:?}");
    }
    assert!(connected_ids(&store, "ann").await.is_empty());
    // A declined invitation no longer blocks a new one; that one can be withdrawn.
    store
        .create_invitation(invitation("ann-bea-2", "ann", "bea", 20), None)
        .await
        .unwrap();
    let withdrawn = store
        .withdraw_invitation("ann-bea-2", "ann", 21)
        .await
        .unwrap();
    assert_eq!(withdrawn.state, InvitationState::Withdrawn);
    assert!(pending(&store, "ann", InvitationDirection::Sent)
        .await
        .is_empty());
    let err = store
        .accept_invitation("ann-bea-2", "bea", 22)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::InvitationNotPending), "{err:?}");
    let err = store
        .decline_invitation("ann-bea-2", "bea", 22)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::InvitationNotPending), "{err:?}");
    // An accepted invitation cannot be withdrawn.
    connect(&store, "ann", "cal", 30).await;
    let err = store
        .withdraw_invitation("ann-cal", "ann", 31)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::InvitationNotPending), "{err:?}");
}

async fn check_inviting_back_accepts_the_pending_invitation(store: Store) {
    members(&store, &["ann", "bea"]).await;
    store
        .create_invitation(
            invitation("ann-bea", "ann", "bea", 10),
            Some(&key("member:a", "k1")),
        )
        .await
        .unwrap();
    let answer = store
        .create_invitation(
            invitation("bea-ann", "bea", "ann", 20),
            Some(&key("member:b", "k2")),
        )
        .await
        .unwrap();
    assert_eq!(answer.id, "ann-bea");
    assert_eq!(answer.inviter_id, "ann");
    assert_eq!(answer.state, InvitationState::Accepted);
    assert_eq!(connected_ids(&store, "ann").await, ["bea"]);
    assert_eq!(connected_ids(&store, "bea").await, ["ann"]);
    assert!(pending(&store, "ann", InvitationDirection::Received)
        .await
        .is_empty());
    assert!(pending(&store, "bea", InvitationDirection::Received)
        .await
        .is_empty());
    // The retry replays the accepted invitation; a fresh invite finds them connected.
    let retried = store
        .create_invitation(
            invitation("bea-ann-2", "bea", "ann", 30),
            Some(&key("member:b", "k2")),
        )
        .await
        .unwrap();
    assert_eq!(retried, answer);
    let err = store
        .create_invitation(invitation("bea-ann-3", "bea", "ann", 30), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::AlreadyConnected), "{err:?}");
}

async fn check_removing_a_connection_removes_it_both_ways(store: Store) {
    members(&store, &["ann", "bea", "cal"]).await;
    connect(&store, "ann", "bea", 10).await;
    connect(&store, "ann", "cal", 11).await;
    store.remove_connection("bea", "ann").await.unwrap();
    assert_eq!(connected_ids(&store, "ann").await, ["cal"]);
    assert!(connected_ids(&store, "bea").await.is_empty());
    let err = store.remove_connection("ann", "bea").await.unwrap_err();
    assert!(
        matches!(err, ProfileError::NotFound("connection")),
        "{err:?}"
    );
    let err = store.remove_connection("ann", "nobody").await.unwrap_err();
    assert!(
        matches!(err, ProfileError::NotFound("connection")),
        "{err:?}"
    );
    // They may connect again.
    store
        .create_invitation(invitation("ann-bea-2", "ann", "bea", 20), None)
        .await
        .unwrap();
    store
        .accept_invitation("ann-bea-2", "bea", 21)
        .await
        .unwrap();
    assert_eq!(connected_ids(&store, "bea").await, ["ann"]);
    let a = store.get_profile("ann", None).await.unwrap().unwrap();
    assert_eq!(a.connection_count, 2);
}

async fn check_unfollow_is_idempotent(store: Store) {
    members(&store, &["ann", "bea"]).await;
    store.follow("ann", member("bea"), 10).await.unwrap();
    store.follow("ann", hashtag("rust"), 11).await.unwrap();
    for _ in 0..2 {
        store.unfollow("ann", &member("bea")).await.unwrap();
        assert_eq!(following(&store, "ann").await, [hashtag("rust")]);
    }
    store.unfollow("ann", &hashtag("rust")).await.unwrap();
    store.unfollow("ann", &hashtag("never")).await.unwrap();
    store.unfollow("ann", &member("nobody")).await.unwrap();
    assert!(following(&store, "ann").await.is_empty());
    let b = store.get_profile("bea", None).await.unwrap().unwrap();
    assert_eq!(b.follower_count, 0);
    assert!(store
        .list_followers("bea", None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn check_followers_page_newest_first(store: Store) {
    let ids: Vec<String> = (0..7).map(|i| format!("fan{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    members(&store, &refs).await;
    members(&store, &["star"]).await;
    assert!(store
        .list_followers("star", None, 3)
        .await
        .unwrap()
        .is_empty());
    // Ties on time are ordered by follower id, descending.
    for (i, id) in ids.iter().enumerate() {
        store
            .follow(id, member("star"), 100 + (i as i64 / 2))
            .await
            .unwrap();
    }
    // Hashtag follows named like the member do not count.
    store.follow("fan0", hashtag("star"), 200).await.unwrap();
    let all = pages(
        3,
        |f: &FollowerRecord| Cursor {
            time: f.create_time,
            key: f.member_id.clone(),
        },
        |after| store.list_followers("star", after, 3),
    )
    .await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let order: Vec<String> = all.into_iter().flatten().map(|f| f.member_id).collect();
    assert_eq!(
        order,
        ["fan6", "fan5", "fan4", "fan3", "fan2", "fan1", "fan0"]
    );
    let star = store.get_profile("star", None).await.unwrap().unwrap();
    assert_eq!(star.follower_count, 7);
}

/// Imports whose pairs share members in opposite orders, racing accepts that connect members
/// in a cycle (a-b, b-c, c-a): every one lands (no deadlock between their count updates), and
/// the counts equal the rows.
async fn check_concurrent_imports_and_accepts_in_a_cycle_all_land(store: Store) {
    let ids: Vec<String> = (0..40).map(|i| format!("imp{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    members(&store, &refs).await;
    members(&store, &["cya", "cyb", "cyc"]).await;
    for (id, from, to) in [
        ("ab", "cya", "cyb"),
        ("bc", "cyb", "cyc"),
        ("ca", "cyc", "cya"),
    ] {
        store
            .create_invitation(invitation(id, from, to, 10), None)
            .await
            .unwrap();
    }
    // Import i connects member i with every other member, half of them listed backwards, so
    // each import locks the others' members in another order.
    let imports = race(8, |i| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            let pairs: Vec<(String, String)> = (0..ids.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let (a, b) = (ids[i].clone(), ids[j].clone());
                    if j % 2 == 0 {
                        (a, b)
                    } else {
                        (b, a)
                    }
                })
                .collect();
            store.import_connections(&pairs, 20).await
        }
    });
    let accepts = race(3, |i| {
        let store = store.clone();
        async move {
            let (id, invitee) = [("ab", "cyb"), ("bc", "cyc"), ("ca", "cya")][i];
            store.accept_invitation(id, invitee, 30).await.map(|_| ())
        }
    });
    let (imports, accepts) = tokio::join!(imports, accepts);
    let created: u64 = imports.into_iter().map(|r| r.unwrap().0).sum();
    for r in accepts {
        r.unwrap();
    }
    // 8 members each connected to all 39 others, pairs among the 8 imported twice: 8 x 39
    // pairs less the 28 repeated.
    assert_eq!(created, 8 * 39 - 28);
    for (i, id) in ids.iter().enumerate() {
        let p = store.get_profile(id, None).await.unwrap().unwrap();
        assert_eq!(p.connection_count, if i < 8 { 39 } else { 8 }, "{id}");
    }
    for id in ["cya", "cyb", "cyc"] {
        let p = store.get_profile(id, None).await.unwrap().unwrap();
        assert_eq!(p.connection_count, 2, "{id}");
    }
}

async fn check_counts_stay_exact_under_concurrent_accepts_and_follows(store: Store) {
    let ids: Vec<String> = (0..RACERS).map(|i| format!("mem{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    members(&store, &refs).await;
    members(&store, &["hub"]).await;
    for id in &ids {
        store
            .create_invitation(invitation(&format!("{id}-hub"), id, "hub", 10), None)
            .await
            .unwrap();
    }
    let results = race(RACERS, |i| {
        let store = store.clone();
        let id = format!("mem{i:02}");
        async move {
            store
                .accept_invitation(&format!("{id}-hub"), "hub", 20)
                .await?;
            store.follow(&id, member("hub"), 20).await?;
            // Following twice changes nothing.
            store.follow(&id, member("hub"), 21).await?;
            store.get_profile(&id, None).await
        }
    })
    .await;
    for r in results {
        assert_eq!(r.unwrap().unwrap().connection_count, 1);
    }
    let hub = store.get_profile("hub", None).await.unwrap().unwrap();
    assert_eq!((hub.connection_count, hub.follower_count), (32, 32));
    // Removals race too; the counts follow the rows.
    race(RACERS / 2, |i| {
        let store = store.clone();
        async move {
            let id = format!("mem{i:02}");
            store.remove_connection("hub", &id).await.unwrap();
            store.unfollow(&id, &member("hub")).await.unwrap();
        }
    })
    .await;
    let hub = store.get_profile("hub", None).await.unwrap().unwrap();
    assert_eq!((hub.connection_count, hub.follower_count), (16, 16));
    let batch = store
        .batch_get_profiles(&["hub".to_string(), "mem00".to_string()], None)
        .await
        .unwrap();
    let counts: std::collections::BTreeMap<String, (i64, i64)> = batch
        .into_iter()
        .map(|p| (p.id, (p.connection_count, p.follower_count)))
        .collect();
    assert_eq!(counts["hub"], (16, 16));
    assert_eq!(counts["mem00"], (0, 0));
}

fn degree(degree: Degree, mutual_count: i64, mutual_ids: &[&str]) -> DegreeRecord {
    DegreeRecord {
        degree,
        mutual_count,
        mutual_ids: mutual_ids.iter().map(|s| s.to_string()).collect(),
    }
}

async fn check_degrees_on_a_small_graph(store: Store) {
    // v - a - x - y - far   v - b - x   v - (m1..m6) - two   lone
    let ids = [
        "vic", "ann", "bea", "xia", "yan", "far", "two", "lone", "mo1", "mo2", "mo3", "mo4", "mo5",
        "mo6",
    ];
    members(&store, &ids).await;
    for (p, q) in [
        ("vic", "ann"),
        ("vic", "bea"),
        ("ann", "xia"),
        ("bea", "xia"),
        ("xia", "yan"),
        ("yan", "far"),
    ] {
        connect(&store, p, q, 10).await;
    }
    for m in ["mo6", "mo2", "mo4", "mo1", "mo5", "mo3"] {
        connect(&store, "vic", m, 11).await;
        connect(&store, m, "two", 12).await;
    }
    let d = |v: &'static str, m: &'static str| {
        let store = store.clone();
        async move { store.connection_degree(v, m).await }
    };
    assert_eq!(
        d("vic", "vic").await.unwrap(),
        degree(Degree::Myself, 0, &[])
    );
    assert_eq!(
        d("vic", "ann").await.unwrap(),
        degree(Degree::First, 0, &[])
    );
    assert_eq!(
        d("ann", "bea").await.unwrap(),
        degree(Degree::Second, 2, &["vic", "xia"])
    );
    assert_eq!(
        d("vic", "xia").await.unwrap(),
        degree(Degree::Second, 2, &["ann", "bea"])
    );
    assert_eq!(
        d("xia", "vic").await.unwrap(),
        degree(Degree::Second, 2, &["ann", "bea"])
    );
    assert_eq!(
        d("vic", "two").await.unwrap(),
        degree(Degree::Second, 6, &["mo1", "mo2", "mo3", "mo4", "mo5"])
    );
    assert_eq!(
        d("vic", "yan").await.unwrap(),
        degree(Degree::Third, 0, &[])
    );
    assert_eq!(
        d("yan", "vic").await.unwrap(),
        degree(Degree::Third, 0, &[])
    );
    assert_eq!(
        d("vic", "far").await.unwrap(),
        degree(Degree::OutOfNetwork, 0, &[])
    );
    assert_eq!(
        d("vic", "lone").await.unwrap(),
        degree(Degree::OutOfNetwork, 0, &[])
    );
    // First degree still counts mutuals.
    assert_eq!(d("ann", "xia").await.unwrap().mutual_count, 0);
    connect(&store, "ann", "bea", 20).await;
    assert_eq!(
        d("ann", "bea").await.unwrap(),
        degree(Degree::First, 2, &["vic", "xia"])
    );
    // Missing members and blocks either way look the same.
    for (v, m, what) in [("vic", "nobody", "member"), ("nobody", "vic", "viewer")] {
        let err = d(v, m).await.unwrap_err();
        assert!(
            matches!(err, ProfileError::NotFound(w) if w == what),
            "{err:?}"
        );
    }
    store.block_member("yan", "vic", 30).await.unwrap();
    for (v, m) in [("vic", "yan"), ("yan", "vic")] {
        let err = d(v, m).await.unwrap_err();
        assert!(matches!(err, ProfileError::NotFound("member")), "{err:?}");
    }
}

/// Creates `ids` and connects each to `hub`, sixteen writers at a time.
async fn connect_to_hub(store: &Store, hub: &str, ids: Vec<String>) {
    let ids = Arc::new(ids);
    let hub = hub.to_string();
    race(16, |w| {
        let (store, ids, hub) = (store.clone(), ids.clone(), hub.clone());
        async move {
            for id in ids.iter().skip(w).step_by(16) {
                store.create_profile(id, fields(id), 1, None).await.unwrap();
                let inv = format!("{id}-{hub}");
                store
                    .create_invitation(invitation(&inv, id, &hub, 2), None)
                    .await
                    .unwrap();
                store.accept_invitation(&inv, &hub, 3).await.unwrap();
            }
        }
    })
    .await;
}

/// A hub bigger than the search's expansion cap (5,000 neighbours per side).
async fn check_degrees_around_a_hub_of_six_thousand(store: Store) {
    members(&store, &["hub", "vic", "wes", "far"]).await;
    let spokes: Vec<String> = (0..6_000).map(|i| format!("sp{i:05}")).collect();
    connect_to_hub(&store, "hub", spokes).await;
    // v and w are spokes too; far hangs off the oldest spoke.
    connect(&store, "vic", "hub", 10).await;
    connect(&store, "wes", "hub", 10).await;
    connect(&store, "sp00000", "far", 10).await;
    let hub = store.get_profile("hub", None).await.unwrap().unwrap();
    assert_eq!(hub.connection_count, 6_002);
    assert_eq!(
        store.connection_degree("hub", "vic").await.unwrap(),
        degree(Degree::First, 0, &[])
    );
    assert_eq!(
        store.connection_degree("vic", "wes").await.unwrap(),
        degree(Degree::Second, 1, &["hub"])
    );
    assert_eq!(
        store.connection_degree("hub", "far").await.unwrap(),
        degree(Degree::Second, 1, &["sp00000"])
    );
    assert_eq!(
        store.connection_degree("vic", "far").await.unwrap(),
        degree(Degree::Third, 0, &[])
    );
    assert_eq!(
        store.connection_degree("far", "wes").await.unwrap(),
        degree(Degree::Third, 0, &[])
    );
    members(&store, &["lone"]).await;
    assert_eq!(
        store.connection_degree("hub", "lone").await.unwrap(),
        degree(Degree::OutOfNetwork, 0, &[])
    );
    assert_eq!(
        store.connection_degree("lone", "vic").await.unwrap(),
        degree(Degree::OutOfNetwork, 0, &[])
    );
    // How fast these answers are is for the benchmark to say, not this test.
}

fn position(title: &str, company: &str, current: bool) -> Position {
    Position {
        title: title.into(),
        company: company.into(),
        start: YearMonth {
            year: 2020,
            month: 1,
        },
        end: (!current).then_some(YearMonth {
            year: 2021,
            month: 6,
        }),
        current,
    }
}

fn school(name: &str) -> Education {
    Education {
        school: name.into(),
        degree: "BSc".into(),
        field_of_study: "Physics".into(),
        start_year: 2010,
        end_year: 2014,
    }
}

async fn check_positions_education_and_open_to_work_are_stored_and_updated(store: Store) {
    let mut f = fields("ada");
    f.positions = vec![
        position("Engineer", "Acme", true),
        position("Intern", "Initech", false),
    ];
    f.education = vec![school("MIT")];
    f.open_to_work = true;
    let created = store
        .create_profile("ada", f.clone(), 1, None)
        .await
        .unwrap();
    assert_eq!(created.positions, f.positions);
    let found = store.get_profile("ada", None).await.unwrap().unwrap();
    assert_eq!(found, created);
    assert!(found.open_to_work);
    assert_eq!(found.education, [school("MIT")]);

    let updated = store
        .update_profile(
            "ada",
            ProfileChanges {
                positions: Some(vec![position("CTO", "Globex", true)]),
                open_to_work: Some(false),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(updated.positions, [position("CTO", "Globex", true)]);
    assert!(!updated.open_to_work);
    // Untouched by the change.
    assert_eq!(updated.education, [school("MIT")]);
    assert_eq!(
        store.get_profile("ada", None).await.unwrap().unwrap(),
        updated
    );
}

async fn check_suggestions_are_second_degree_ranked_and_exclude_what_they_must(store: Store) {
    // me - a, b, c. x knows a, b, c (3 mutual); y knows a (1 mutual) and works at Acme like me;
    // z knows a, b but is blocked by me; w knows b with a pending invitation to me; a - b too.
    // oli knows c and has my pending invitation; bok knows a, b and blocked me.
    let ids = [
        "vic", "ann", "bea", "cid", "xia", "yan", "zed", "wes", "lone", "oli", "bok",
    ];
    for id in ids {
        let mut f = fields(id);
        if id == "vic" || id == "yan" {
            f.positions = vec![position(
                "Engineer",
                if id == "vic" { "Acme" } else { " ACME " },
                true,
            )];
            f.education = vec![school("MIT")];
            f.industry = "Software".into();
        }
        store.create_profile(id, f, 1, None).await.unwrap();
    }
    for (p, q) in [
        ("vic", "ann"),
        ("vic", "bea"),
        ("vic", "cid"),
        ("ann", "bea"),
        ("xia", "ann"),
        ("xia", "bea"),
        ("xia", "cid"),
        ("yan", "ann"),
        ("zed", "ann"),
        ("zed", "bea"),
        ("wes", "bea"),
        ("oli", "cid"),
        ("bok", "ann"),
        ("bok", "bea"),
    ] {
        connect(&store, p, q, 10).await;
    }
    store.block_member("vic", "zed", 20).await.unwrap();
    store.block_member("bok", "vic", 20).await.unwrap();
    store
        .create_invitation(invitation("wes-vic", "wes", "vic", 30), None)
        .await
        .unwrap();
    store
        .create_invitation(invitation("vic-oli", "vic", "oli", 30), None)
        .await
        .unwrap();

    let inputs = store.suggestion_candidates("vic").await.unwrap();
    let found: Vec<(&str, i64, Vec<&str>)> = inputs
        .candidates
        .iter()
        .map(|c| {
            let ids = c.mutual_ids.iter().map(String::as_str).collect();
            (c.member_id.as_str(), c.mutual_count, ids)
        })
        .collect();
    assert_eq!(
        found,
        [
            ("xia", 3, vec!["ann", "bea", "cid"]),
            ("yan", 1, vec!["ann"])
        ]
    );
    let ranked = rank_suggestions(inputs);
    // y: 10 + 30 (company) + 20 (school) + 10 (industry) = 70 beats x: 3 x 10.
    assert_eq!(ranked[0].member_id, "yan");
    assert_eq!(ranked[0].score, 70);
    let kinds: Vec<ReasonKind> = ranked[0].reasons.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            ReasonKind::MutualConnections,
            ReasonKind::SharedCompany,
            ReasonKind::SharedSchool,
            ReasonKind::SharedIndustry
        ]
    );
    assert_eq!(ranked[0].reasons[1].value, "Acme");
    assert_eq!(ranked[0].reasons[1].text, "also at Acme");
    assert_eq!(ranked[1].member_id, "xia");
    assert_eq!(ranked[1].reasons[0].text, "3 mutual connections");

    // Once the invitation is gone, w shows up; a member with no connections gets nothing.
    store
        .decline_invitation("wes-vic", "vic", 40)
        .await
        .unwrap();
    let after: Vec<String> = store
        .suggestion_candidates("vic")
        .await
        .unwrap()
        .candidates
        .into_iter()
        .map(|c| c.member_id)
        .collect();
    assert_eq!(after, ["xia", "wes", "yan"]);
    // Once my invitation is withdrawn and bok lifts the block, both show up (bok with 2
    // mutual connections, oli with 1): the invitation and the block were what kept them out.
    store
        .withdraw_invitation("vic-oli", "vic", 50)
        .await
        .unwrap();
    store.unblock_member("bok", "vic").await.unwrap();
    let after: Vec<(String, i64)> = store
        .suggestion_candidates("vic")
        .await
        .unwrap()
        .candidates
        .into_iter()
        .map(|c| (c.member_id, c.mutual_count))
        .collect();
    let after: Vec<(&str, i64)> = after.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    assert_eq!(
        after,
        [("xia", 3), ("bok", 2), ("oli", 1), ("wes", 1), ("yan", 1)]
    );
    assert!(store
        .suggestion_candidates("lone")
        .await
        .unwrap()
        .candidates
        .is_empty());
    assert!(matches!(
        store.suggestion_candidates("nobody").await,
        Err(ProfileError::NotFound("member"))
    ));
}

async fn check_suggestions_around_a_hub_stay_bounded(store: Store) {
    // me - hub; the hub has more connections than the fan-out cap: only that many are
    // reached through it, and never more candidates than the candidate cap.
    members(&store, &["vic", "hub"]).await;
    connect(&store, "vic", "hub", 1).await;
    let n = limits::SUGGESTION_FANOUT_CAP + 150;
    let ids: Vec<String> = (0..n).map(|i| format!("m{i:05}")).collect();
    let profiles: Vec<(String, ProfileFields)> =
        ids.iter().map(|id| (id.clone(), fields(id))).collect();
    store.import_profiles(profiles, 1).await.unwrap();
    let pairs: Vec<(String, String)> = ids.iter().map(|id| ("hub".into(), id.clone())).collect();
    assert_eq!(
        store.import_connections(&pairs, 5).await.unwrap(),
        (n as u64, 0)
    );
    let got = store.suggestion_candidates("vic").await.unwrap().candidates;
    assert_eq!(
        got.len(),
        limits::SUGGESTION_FANOUT_CAP.min(limits::SUGGESTION_CANDIDATE_CAP)
    );
    assert!(got.iter().all(|c| c.mutual_count == 1));
    // All connected at the same time: the most recent are the largest ids.
    assert_eq!(got[0].member_id, format!("m{:05}", 150));
}

async fn check_suggestions_keep_the_cap_and_compare_key_tables_that_follow_updates(store: Store) {
    let mut f = fields("vic");
    f.positions = vec![position("Engineer", "Acme", true)];
    f.education = vec![school("MIT"), school("ETH")];
    f.industry = "Software".into();
    store.create_profile("vic", f, 1, None).await.unwrap();
    members(&store, &["hub0", "hub1", "hub2"]).await;
    // Three connections, each with FANOUT_CAP others: more candidates than the cap, one mutual
    // connection each.
    let per = limits::SUGGESTION_FANOUT_CAP - 1;
    let ids: Vec<String> = (0..3 * per).map(|i| format!("m{i:05}")).collect();
    let profiles: Vec<(String, ProfileFields)> =
        ids.iter().map(|id| (id.clone(), fields(id))).collect();
    store.import_profiles(profiles, 1).await.unwrap();
    let mut pairs: Vec<(String, String)> = (0..3)
        .map(|h| ("vic".to_string(), format!("hub{h}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        pairs.push((format!("hub{}", i / per), id.clone()));
    }
    store.import_connections(&pairs, 2).await.unwrap();
    let got = store.suggestion_candidates("vic").await.unwrap();
    assert!(3 * per > limits::SUGGESTION_CANDIDATE_CAP);
    assert_eq!(got.candidates.len(), limits::SUGGESTION_CANDIDATE_CAP);
    let expected: Vec<&str> = ids[..limits::SUGGESTION_CANDIDATE_CAP]
        .iter()
        .map(String::as_str)
        .collect();
    let found: Vec<&str> = got
        .candidates
        .iter()
        .map(|c| c.member_id.as_str())
        .collect();
    assert_eq!(found, expected);
    assert!(got
        .candidates
        .iter()
        .all(|c| c.affinity == Affinity::default()));

    // The second school (spelled otherwise), a current company and the industry, set by an
    // update: shared keys only, the member's spelling shows.
    store
        .update_profile(
            "m00000",
            ProfileChanges {
                education: Some(vec![school(" eth ")]),
                positions: Some(vec![
                    position("Intern", "Acme", false),
                    position("Lead", "ACME", true),
                ]),
                industry: Some("software".into()),
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    let inputs = store.suggestion_candidates("vic").await.unwrap();
    let first = &inputs.candidates[0];
    assert_eq!(first.member_id, "m00000");
    assert_eq!(
        first.affinity,
        Affinity::of_shared_keys(
            vec!["acme".into()],
            vec!["eth".into()],
            Some("software".into())
        )
    );
    let ranked = rank_suggestions(inputs);
    assert_eq!(ranked[0].member_id, "m00000");
    assert_eq!(ranked[0].score, 10 + 30 + 20 + 10);
    let values: Vec<&str> = ranked[0].reasons.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["1", "Acme", "ETH", "Software"]);

    // Gone once the update removes them.
    store
        .update_profile(
            "m00000",
            ProfileChanges {
                education: Some(vec![]),
                positions: Some(vec![position("Lead", "Acme", false)]),
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    let inputs = store.suggestion_candidates("vic").await.unwrap();
    let first = inputs
        .candidates
        .iter()
        .find(|c| c.member_id == "m00000")
        .unwrap();
    assert_eq!(
        first.affinity,
        Affinity::of_shared_keys(vec![], vec![], Some("software".into()))
    );
}

async fn check_batch_get_of_a_thousand_ids_counts_each_and_hides_blocked(store: Store) {
    // As the post service asks: up to 1,000 authors, some repeated, some unknown.
    let ids: Vec<String> = (0..990).map(|i| format!("a{i:05}")).collect();
    let profiles: Vec<(String, ProfileFields)> =
        ids.iter().map(|id| (id.clone(), fields(id))).collect();
    store.import_profiles(profiles, 1).await.unwrap();
    members(&store, &["viewer"]).await;
    // a00000 knows the next 10; a00001 follows a00000; a00002 blocked the viewer.
    let pairs: Vec<(String, String)> = (1..=10).map(|i| (ids[0].clone(), ids[i].clone())).collect();
    store.import_connections(&pairs, 2).await.unwrap();
    store
        .follow(&ids[1], FollowTarget::Member(ids[0].clone()), 3)
        .await
        .unwrap();
    store.block_member(&ids[2], "viewer", 4).await.unwrap();
    let mut asked = ids.clone();
    asked.extend(["a00000", "a00003", "nobody1", "nobody2"].map(String::from));
    asked.extend((0..6).map(|i| format!("zz{i}")));
    assert_eq!(asked.len(), 1000);
    let got = store
        .batch_get_profiles(&asked, Some("viewer"))
        .await
        .unwrap();
    let by_id: std::collections::HashMap<&str, &ProfileRecord> =
        got.iter().map(|p| (p.id.as_str(), p)).collect();
    assert_eq!(got.len(), 989, "each once, the blocked one hidden");
    assert!(!by_id.contains_key(ids[2].as_str()));
    let first = by_id["a00000"];
    assert_eq!((first.connection_count, first.follower_count), (10, 1));
    assert_eq!(by_id["a00001"].connection_count, 1);
    assert_eq!(by_id["a00500"].connection_count, 0);
    // Without a viewer nothing is hidden.
    assert_eq!(
        store.batch_get_profiles(&asked, None).await.unwrap().len(),
        990
    );
}

fn search(terms: &[&str]) -> SearchQuery {
    SearchQuery {
        terms: terms.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// Every degree of a search's hits.
const ALL: std::ops::Range<usize> = 0..limits::SEARCH_CANDIDATE_CAP;

async fn check_search_scores_the_newest_matches_and_degrees_only_where_needed(store: Store) {
    members(&store, &["rec"]).await;
    // More matches than the match cap, all equally relevant, created in id order: only the
    // SEARCH_MATCH_CAP newest (the largest ids) are scored, the best SEARCH_CANDIDATE_CAP of
    // those (then by id) come back.
    let extra = 100;
    let ids: Vec<String> = (0..limits::SEARCH_MATCH_CAP + extra)
        .map(|i| format!("w{i:05}"))
        .collect();
    let profiles: Vec<(String, ProfileFields)> = ids
        .iter()
        .map(|id| {
            let mut f = fields(id);
            f.headline = "Welder".into();
            (id.clone(), f)
        })
        .collect();
    store.import_profiles(profiles, 1).await.unwrap();
    let at = |i: usize| ids[extra + i].clone();
    // Text index 40 (degree-ranked) and 120 (not).
    let pairs = vec![("rec".to_string(), at(40)), ("rec".to_string(), at(120))];
    store.import_connections(&pairs, 2).await.unwrap();

    let hits = store
        .search_profiles("rec", &search(&["welder"]), 0..20)
        .await
        .unwrap();
    let expected: Vec<String> = (0..limits::SEARCH_CANDIDATE_CAP).map(at).collect();
    assert_eq!(hit_ids(&hits), expected);
    // Degrees for the degree-ranked head and the page only.
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h.degree.is_some(), i < limits::SEARCH_DEGREE_RANKED, "{i}");
    }
    assert_eq!(hits[40].degree, Some(Degree::First));
    let ranked = rank_search(hits, true);
    // The first degree in the head ranks first; the one past the head keeps its place.
    assert_eq!(ranked[0].member_id, at(40));
    assert_eq!(ranked[120].member_id, at(120));
    assert_eq!(ranked[1].member_id, at(0));

    let hits = store
        .search_profiles("rec", &search(&["welder"]), 110..130)
        .await
        .unwrap();
    for (i, h) in hits.iter().enumerate() {
        let needed = i < limits::SEARCH_DEGREE_RANKED || (110..130).contains(&i);
        assert_eq!(h.degree.is_some(), needed, "{i}");
    }
    assert_eq!(hits[120].degree, Some(Degree::First));
    assert_eq!(hits[121].degree, Some(Degree::OutOfNetwork));
}

fn hit_ids(hits: &[crate::domain::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.member_id.as_str()).collect()
}

async fn check_search_matches_words_filters_and_hides_blocked(store: Store) {
    let mut rec = fields("rec");
    rec.headline = "Recruiter".into();
    store.create_profile("rec", rec, 1, None).await.unwrap();
    let people = [
        // id, headline, skills, company (current), location, open, industry, past company
        (
            "ann",
            "Rust engineer",
            vec!["Rust", "Go"],
            "Acme",
            "Berlin",
            true,
            "Software",
            None,
        ),
        (
            "bob",
            "Engineer",
            vec!["Rust"],
            "Globex",
            "berlin ",
            false,
            " SOFTWARE",
            None,
        ),
        (
            "cat",
            "Gardener",
            vec!["Plants"],
            "Acme",
            "Paris",
            true,
            "Software",
            None,
        ),
        (
            "dan",
            "Rust engineer and Rust trainer",
            vec!["Rust"],
            "Initech",
            "Berlin",
            true,
            "Education",
            // A past position at Acme: never a current company.
            Some("Acme"),
        ),
        (
            "eve",
            "Rust engineer",
            vec!["Rust"],
            "Acme",
            "Berlin",
            true,
            "Software",
            None,
        ),
        // Blocked by the searcher below.
        (
            "fay",
            "Rust engineer",
            vec!["Rust"],
            "Acme",
            "Berlin",
            true,
            "Software",
            None,
        ),
    ];
    for (i, (id, headline, skills, company, location, open, industry, past)) in
        people.iter().enumerate()
    {
        let mut f = fields(id);
        f.headline = headline.to_string();
        f.skills = skills.iter().map(|s| s.to_string()).collect();
        f.positions = vec![position("Staff", company, true)];
        if let Some(past) = past {
            f.positions.push(position("Intern", past, false));
        }
        f.location = location.to_string();
        f.industry = industry.to_string();
        f.open_to_work = *open;
        store
            .create_profile(id, f, 10 + i as i64, None)
            .await
            .unwrap();
    }
    connect(&store, "rec", "bob", 20).await;
    connect(&store, "bob", "ann", 21).await;
    store.block_member("eve", "rec", 22).await.unwrap();
    // Before the searcher blocks fay, fay is found; after, never (either direction hides).
    let hits = store
        .search_profiles("rec", &search(&["rust"]), ALL)
        .await
        .unwrap();
    let mut ids = hit_ids(&hits);
    ids.sort();
    assert_eq!(ids, ["ann", "bob", "dan", "fay"]);
    store.block_member("rec", "fay", 23).await.unwrap();

    let hits = store
        .search_profiles("rec", &search(&["rust"]), ALL)
        .await
        .unwrap();
    let mut ids = hit_ids(&hits);
    ids.sort();
    // Blocked eve (who blocked the searcher) and fay (blocked by the searcher) never show, nor
    // the searcher; cat has no Rust.
    assert_eq!(ids, ["ann", "bob", "dan"]);
    let degree_of = |id: &str| hits.iter().find(|h| h.member_id == id).unwrap().degree;
    assert_eq!(degree_of("bob"), Some(Degree::First));
    assert_eq!(degree_of("ann"), Some(Degree::Second));
    assert_eq!(degree_of("dan"), Some(Degree::OutOfNetwork));
    assert!(hits.iter().all(|h| h.relevance > 0.0));
    // Words in skills and positions count too, all words must match, case ignored.
    let hits = store
        .search_profiles("rec", &search(&["globex"]), ALL)
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["bob"]);
    let hits = store
        .search_profiles("rec", &search(&["rust", "gardener"]), ALL)
        .await
        .unwrap();
    assert!(hits.is_empty());

    // Filters: skills (all), current company, location key, open to work.
    let q = SearchQuery {
        terms: vec!["engineer".into()],
        skill_keys: vec!["rust".into(), "go".into()],
        ..Default::default()
    };
    assert_eq!(
        hit_ids(&store.search_profiles("rec", &q, ALL).await.unwrap()),
        ["ann"]
    );
    let q = SearchQuery {
        company_key: Some("acme".into()),
        open_to_work: true,
        ..Default::default()
    };
    let ranked = rank_search(store.search_profiles("rec", &q, ALL).await.unwrap(), false);
    // Without words: degree first (ann is second degree), then most recently updated.
    assert_eq!(hit_ids(&ranked), ["ann", "cat"]);
    let q = SearchQuery {
        location_key: Some("berlin".into()),
        open_to_work: false,
        ..Default::default()
    };
    let ranked = rank_search(store.search_profiles("rec", &q, ALL).await.unwrap(), false);
    assert_eq!(hit_ids(&ranked), ["bob", "ann", "dan"]);
    // Current company only: dan's past position at Acme does not count.
    let q = SearchQuery {
        company_key: Some("acme".into()),
        ..Default::default()
    };
    let ranked = rank_search(store.search_profiles("rec", &q, ALL).await.unwrap(), false);
    assert_eq!(hit_ids(&ranked), ["ann", "cat"]);

    // Industry (a canonical key: bob's " SOFTWARE" is "software"), alone and combined with
    // location and with words (more numbered parameters on PostgreSQL).
    let sorted_ids = |q: SearchQuery| {
        let store = store.clone();
        async move {
            let hits = store.search_profiles("rec", &q, ALL).await.unwrap();
            let mut ids: Vec<String> = hits.into_iter().map(|h| h.member_id).collect();
            ids.sort();
            ids
        }
    };
    let q = SearchQuery {
        industry_key: Some("software".into()),
        ..Default::default()
    };
    let ranked = rank_search(store.search_profiles("rec", &q, ALL).await.unwrap(), false);
    // eve blocked the searcher, the searcher blocked fay; dan is in education.
    assert_eq!(hit_ids(&ranked), ["bob", "ann", "cat"]);
    let q = SearchQuery {
        industry_key: Some("education".into()),
        ..Default::default()
    };
    assert_eq!(sorted_ids(q).await, ["dan"]);
    let q = SearchQuery {
        industry_key: Some("software".into()),
        location_key: Some("berlin".into()),
        ..Default::default()
    };
    let ranked = rank_search(store.search_profiles("rec", &q, ALL).await.unwrap(), false);
    assert_eq!(hit_ids(&ranked), ["bob", "ann"]);
    let q = SearchQuery {
        industry_key: Some("software".into()),
        location_key: Some("paris".into()),
        ..Default::default()
    };
    assert_eq!(sorted_ids(q).await, ["cat"]);
    let q = SearchQuery {
        terms: vec!["rust".into()],
        industry_key: Some("education".into()),
        ..Default::default()
    };
    assert_eq!(sorted_ids(q).await, ["dan"]);
    let q = SearchQuery {
        terms: vec!["engineer".into()],
        location_key: Some("berlin".into()),
        industry_key: Some("software".into()),
        ..Default::default()
    };
    assert_eq!(sorted_ids(q).await, ["ann", "bob"]);
    let q = SearchQuery {
        terms: vec!["engineer".into()],
        skill_keys: vec!["rust".into()],
        company_key: Some("acme".into()),
        location_key: Some("berlin".into()),
        industry_key: Some("software".into()),
        open_to_work: true,
    };
    assert_eq!(sorted_ids(q).await, ["ann"]);
    let q = SearchQuery {
        terms: vec!["engineer".into()],
        location_key: Some("paris".into()),
        industry_key: Some("software".into()),
        ..Default::default()
    };
    assert!(sorted_ids(q).await.is_empty());

    let marked = store
        .search_highlights(&search(&["rust"]), &["dan".into(), "bob".into()])
        .await
        .unwrap();
    assert!(marked["dan"][0].contains("[Rust]"), "{:?}", marked["dan"]);
    assert!(marked["bob"][0].contains("[Rust]"), "{:?}", marked["bob"]);
    assert!(matches!(
        store
            .search_profiles("nobody", &search(&["rust"]), ALL)
            .await,
        Err(ProfileError::NotFound("searcher"))
    ));
}

async fn check_search_ranks_headline_matches_above_summary_matches(store: Store) {
    // "kayak" in the headline of hed_a (out of network) and hed_b (second degree), and only in
    // the summary of sum (first degree). Fillers keep the word rare (a positive idf on SQLite).
    members(&store, &["rec"]).await;
    for (id, headline, summary) in [
        ("hed_a", "Kayak instructor", ""),
        ("hed_b", "Kayak instructor", ""),
        ("sum", "Accountant", "Weekend kayak"),
    ] {
        let mut f = fields(id);
        f.headline = headline.into();
        f.summary = summary.into();
        store.create_profile(id, f, 2, None).await.unwrap();
    }
    for i in 0..6 {
        let id = format!("filler{i}");
        let mut f = fields(&id);
        f.headline = "Accountant".into();
        store.create_profile(&id, f, 3, None).await.unwrap();
    }
    connect(&store, "rec", "sum", 10).await;
    connect(&store, "sum", "hed_b", 11).await;

    let hits = store
        .search_profiles("rec", &search(&["kayak"]), ALL)
        .await
        .unwrap();
    // Text order: relevance descending, then id; the two headline matches score the same.
    assert_eq!(hit_ids(&hits), ["hed_a", "hed_b", "sum"]);
    let relevance = |id: &str| hits.iter().find(|h| h.member_id == id).unwrap().relevance;
    assert_eq!(relevance("hed_a"), relevance("hed_b"));
    assert!(
        relevance("hed_a") > relevance("sum") && relevance("sum") > 0.0,
        "{hits:?}"
    );
    // The summary match is out of the best band (below 3/4 of the best relevance)...
    assert!(
        relevance("sum") <= 0.75 * relevance("hed_a"),
        "summary {} vs headline {}",
        relevance("sum"),
        relevance("hed_a")
    );
    let degree_of = |id: &str| hits.iter().find(|h| h.member_id == id).unwrap().degree;
    assert_eq!(degree_of("sum"), Some(Degree::First));
    assert_eq!(degree_of("hed_b"), Some(Degree::Second));
    assert_eq!(degree_of("hed_a"), Some(Degree::OutOfNetwork));
    // ... so its first degree does not lift it above the headline matches; within the best
    // band the second degree comes before the out-of-network member.
    let ranked = rank_search(hits, true);
    assert_eq!(hit_ids(&ranked), ["hed_b", "hed_a", "sum"]);
}

async fn check_search_follows_updates_in_the_same_transaction(store: Store) {
    members(&store, &["rec"]).await;
    let mut f = fields("ann");
    f.headline = "Carpenter".into();
    // Words found in the summary only.
    f.summary = "Restores antique harpsichords\nand clavichords".into();
    store.create_profile("ann", f, 1, None).await.unwrap();
    let found = |word: &'static str| {
        let store = store.clone();
        async move {
            let hits = store
                .search_profiles("rec", &search(&[word]), ALL)
                .await
                .unwrap();
            hits.into_iter().map(|h| h.member_id).collect::<Vec<_>>()
        }
    };
    for word in ["carpenter", "harpsichords", "clavichords"] {
        assert_eq!(found(word).await, ["ann"], "{word}");
    }
    let marked = store
        .search_highlights(&search(&["harpsichords"]), &["ann".into()])
        .await
        .unwrap();
    assert!(
        marked["ann"][0].contains("[harpsichords]"),
        "{:?}",
        marked["ann"]
    );
    store
        .update_profile(
            "ann",
            ProfileChanges {
                headline: Some("Welder".into()),
                summary: Some("Builds timber frames".into()),
                positions: Some(vec![position("Foreman", "Umbrella", true)]),
                skills: Some(vec!["Kotlin".into()]),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    for (word, hit) in [
        ("carpenter", false),
        ("harpsichords", false),
        ("clavichords", false),
        ("welder", true),
        ("timber", true),
        ("frames", true),
        ("umbrella", true),
        ("kotlin", true),
    ] {
        let hits = found(word).await;
        assert_eq!(hits.len(), usize::from(hit), "{word}: {hits:?}");
    }
    let q = SearchQuery {
        company_key: Some("umbrella".into()),
        skill_keys: vec!["kotlin".into()],
        ..Default::default()
    };
    assert_eq!(
        hit_ids(&store.search_profiles("rec", &q, ALL).await.unwrap()),
        ["ann"]
    );
    // Once Umbrella is a past position, its word still matches but the current-company filter
    // no longer does; the summary alone changing moves the text index too.
    store
        .update_profile(
            "ann",
            ProfileChanges {
                positions: Some(vec![
                    position("Foreman", "Umbrella", false),
                    position("Director", "Hooli", true),
                ]),
                summary: Some("Now restores harpsichords again".into()),
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    let by_company = |company: &'static str| {
        let store = store.clone();
        async move {
            let q = SearchQuery {
                company_key: Some(company.into()),
                ..Default::default()
            };
            let hits = store.search_profiles("rec", &q, ALL).await.unwrap();
            hits.into_iter().map(|h| h.member_id).collect::<Vec<_>>()
        }
    };
    assert!(by_company("umbrella").await.is_empty());
    assert_eq!(by_company("hooli").await, ["ann"]);
    for (word, hit) in [
        ("umbrella", true),
        ("hooli", true),
        ("timber", false),
        ("harpsichords", true),
        ("welder", true),
    ] {
        let hits = found(word).await;
        assert_eq!(hits.len(), usize::from(hit), "{word}: {hits:?}");
    }
}

async fn check_importing_connections_connects_both_ways_and_skips_the_rest(store: Store) {
    members(&store, &["ann", "bea", "cid", "dov", "eli"]).await;
    connect(&store, "ann", "bea", 1).await;
    store.block_member("dov", "ann", 2).await.unwrap();
    let pairs: Vec<(String, String)> = [
        ("ann", "bea"),   // already connected
        ("ann", "cid"),   // new
        ("cid", "eli"),   // new
        ("ann", "dov"),   // blocked
        ("ann", "ghost"), // unknown member
    ]
    .iter()
    .map(|(x, y)| (x.to_string(), y.to_string()))
    .collect();
    assert_eq!(store.import_connections(&pairs, 9).await.unwrap(), (2, 3));
    assert_eq!(connected_ids(&store, "ann").await, ["cid", "bea"]);
    assert_eq!(connected_ids(&store, "cid").await, ["eli", "ann"]);
    assert_eq!(connected_ids(&store, "eli").await, ["cid"]);
    assert!(connected_ids(&store, "dov").await.is_empty());
    // Again: nothing new.
    assert_eq!(store.import_connections(&pairs, 10).await.unwrap(), (0, 5));
}

async fn check_importing_profiles_skips_taken_ids_and_handles(store: Store) {
    members(&store, &["ada"]).await;
    let mut rich = fields("bob");
    rich.skills = vec!["Rust".into()];
    rich.positions = vec![position("Engineer", "Acme", true)];
    let batch = vec![
        ("ada".to_string(), fields("ada2")), // id taken
        ("x1".to_string(), fields("ada")),   // handle taken
        ("bob".to_string(), rich.clone()),
        ("cat".to_string(), fields("cat")),
    ];
    assert_eq!(store.import_profiles(batch, 5).await.unwrap(), (2, 2));
    let bob = store.get_profile("bob", None).await.unwrap().unwrap();
    assert_eq!(bob.positions, rich.positions);
    assert_eq!(bob.create_time, 5);
    assert!(store.get_profile("x1", None).await.unwrap().is_none());
    // Imported profiles are indexed like created ones.
    let q = SearchQuery {
        company_key: Some("acme".into()),
        skill_keys: vec!["rust".into()],
        ..Default::default()
    };
    assert_eq!(
        hit_ids(&store.search_profiles("ada", &q, ALL).await.unwrap()),
        ["bob"]
    );
}

// Events: what each write appends to the outbox, and the export.

mod event_payloads {
    //! Expected payloads, spelled out field by field (not through `crate::events`).
    use pronet_proto::events::v1 as pb;

    pub use pb::event::Payload;

    pub fn created(id: &str, handle: &str, name: &str) -> Payload {
        Payload::ProfileCreated(pb::ProfileCreated {
            member_id: id.into(),
            handle: handle.into(),
            display_name: name.into(),
        })
    }

    pub fn renamed(id: &str, handle: &str, name: &str) -> Payload {
        Payload::ProfileRenamed(pb::ProfileRenamed {
            member_id: id.into(),
            handle: handle.into(),
            display_name: name.into(),
        })
    }

    pub fn made(a: &str, b: &str) -> Payload {
        Payload::ConnectionMade(pb::ConnectionMade {
            member_id: a.into(),
            other_id: b.into(),
        })
    }

    pub fn removed(a: &str, b: &str) -> Payload {
        Payload::ConnectionRemoved(pb::ConnectionRemoved {
            member_id: a.into(),
            other_id: b.into(),
        })
    }

    pub fn followed(a: &str, b: &str) -> Payload {
        Payload::MemberFollowed(pb::MemberFollowed {
            member_id: a.into(),
            followee_id: b.into(),
        })
    }

    pub fn unfollowed(a: &str, b: &str) -> Payload {
        Payload::MemberUnfollowed(pb::MemberUnfollowed {
            member_id: a.into(),
            followee_id: b.into(),
        })
    }

    pub fn tag_followed(a: &str, tag: &str) -> Payload {
        Payload::HashtagFollowed(pb::HashtagFollowed {
            member_id: a.into(),
            hashtag: tag.into(),
        })
    }

    pub fn tag_unfollowed(a: &str, tag: &str) -> Payload {
        Payload::HashtagUnfollowed(pb::HashtagUnfollowed {
            member_id: a.into(),
            hashtag: tag.into(),
        })
    }

    pub fn blocked(a: &str, b: &str) -> Payload {
        Payload::MemberBlocked(pb::MemberBlocked {
            member_id: a.into(),
            blocked_id: b.into(),
        })
    }

    pub fn unblocked(a: &str, b: &str) -> Payload {
        Payload::MemberUnblocked(pb::MemberUnblocked {
            member_id: a.into(),
            blocked_id: b.into(),
        })
    }
}

use event_payloads::*;
use pronet_proto::events::v1 as events_pb;

/// Every event in the outbox, checked for what all share: sequences 1..n in order, the
/// profile source, an id.
async fn outbox_events(store: &Store) -> Vec<events_pb::Event> {
    let events = store.outbox().read_after(0, 1000).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.sequence, i as i64 + 1, "{events:?}");
        assert_eq!(e.source, crate::events::SOURCE);
        assert!(!e.id.is_empty());
    }
    events
}

/// The payloads of the events after `after` (an earlier `outbox_head`).
async fn events_since(store: &Store, after: usize) -> Vec<Payload> {
    outbox_events(store)
        .await
        .into_iter()
        .skip(after)
        .map(|e| e.payload.unwrap())
        .collect()
}

async fn outbox_head(store: &Store) -> usize {
    let status = store.outbox().status().await.unwrap();
    assert_eq!(status.head as usize, outbox_events(store).await.len());
    status.head as usize
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    pronet_common::time::from_timestamp(t.as_ref().unwrap()).unwrap()
}

/// ExportState as a reader calls it: every message's position, and the events.
async fn export(store: &Store, since: Option<i64>) -> (Vec<i64>, Vec<events_pb::Event>) {
    pronet_common::testing::export_through_service(crate::events::SOURCE, store.clone(), since)
        .await
}

async fn check_profile_writes_append_their_events_and_no_ops_none(store: Store) {
    let mut f = fields("Ada_L");
    f.display_name = "Ada Lovelace".into();
    store
        .create_profile("ada", f, 100, Some(&key("svc", "r1")))
        .await
        .unwrap();
    let events = outbox_events(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(micros(&events[0].occur_time), 100);
    assert_eq!(
        events[0].payload,
        Some(created("ada", "Ada_L", "Ada Lovelace"))
    );

    // A replayed key, a taken id and a taken handle create nothing, and write nothing.
    store
        .create_profile("ada", fields("other"), 101, Some(&key("svc", "r1")))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_profile("ada", fields("other"), 102, None)
            .await,
        Err(ProfileError::ProfileExists)
    ));
    assert!(matches!(
        store
            .create_profile("bob", fields("ada_l"), 103, None)
            .await,
        Err(ProfileError::HandleTaken)
    ));
    assert_eq!(outbox_head(&store).await, 1);

    store
        .create_profile("bob", fields("bob"), 104, None)
        .await
        .unwrap();
    // Neither the handle nor the display name: no event.
    store
        .update_profile(
            "ada",
            ProfileChanges {
                headline: Some("Engineer".into()),
                ..Default::default()
            },
            200,
        )
        .await
        .unwrap();
    // Set to what they already are: no event either.
    store
        .update_profile(
            "ada",
            ProfileChanges {
                handle: Some(Handle::parse("Ada_L").unwrap()),
                display_name: Some("Ada Lovelace".into()),
                ..Default::default()
            },
            201,
        )
        .await
        .unwrap();
    store
        .update_profile(
            "ada",
            ProfileChanges {
                display_name: Some("Countess".into()),
                ..Default::default()
            },
            202,
        )
        .await
        .unwrap();
    // A change of case is a change of the handle as written.
    store
        .update_profile(
            "ada",
            ProfileChanges {
                handle: Some(Handle::parse("ada_l").unwrap()),
                ..Default::default()
            },
            203,
        )
        .await
        .unwrap();
    // Failed updates write nothing.
    assert!(matches!(
        store
            .update_profile(
                "bob",
                ProfileChanges {
                    handle: Some(Handle::parse("ADA_L").unwrap()),
                    ..Default::default()
                },
                204,
            )
            .await,
        Err(ProfileError::HandleTaken)
    ));
    assert!(matches!(
        store
            .update_profile(
                "nobody",
                ProfileChanges {
                    display_name: Some("X".into()),
                    ..Default::default()
                },
                205,
            )
            .await,
        Err(ProfileError::NotFound(_))
    ));

    // An import: one event per profile created, in order; the skipped ones none.
    let (imported, skipped) = store
        .import_profiles(
            vec![
                ("cat".into(), fields("cat")),
                ("bob".into(), fields("bob_again")),
                ("dan".into(), fields("BOB")),
                ("eve".into(), fields("eve")),
            ],
            300,
        )
        .await
        .unwrap();
    assert_eq!((imported, skipped), (2, 2));
    // An import that imports nothing writes nothing.
    store
        .import_profiles(vec![("cat".into(), fields("cat"))], 301)
        .await
        .unwrap();

    let events = outbox_events(&store).await;
    assert_eq!(
        events
            .iter()
            .map(|e| micros(&e.occur_time))
            .collect::<Vec<_>>(),
        [100, 104, 202, 203, 300, 300]
    );
    assert_eq!(
        events
            .into_iter()
            .map(|e| e.payload.unwrap())
            .collect::<Vec<_>>(),
        [
            created("ada", "Ada_L", "Ada Lovelace"),
            created("bob", "bob", "bob"),
            renamed("ada", "Ada_L", "Countess"),
            renamed("ada", "ada_l", "Countess"),
            created("cat", "cat", "cat"),
            created("eve", "eve", "eve"),
        ]
    );
}

async fn check_connection_writes_append_their_events_and_no_ops_none(store: Store) {
    members(&store, &["ada", "bob", "cat", "dan", "eve", "fay"]).await;
    let start = outbox_head(&store).await;
    assert_eq!(start, 6);

    // Invitations write nothing until one connects.
    store
        .create_invitation(invitation("i1", "ada", "bob", 10), Some(&key("ada", "k1")))
        .await
        .unwrap();
    store
        .create_invitation(invitation("i2", "ada", "cat", 11), None)
        .await
        .unwrap();
    store
        .create_invitation(invitation("i3", "dan", "ada", 12), None)
        .await
        .unwrap();
    store
        .create_invitation(invitation("i4", "eve", "ada", 13), None)
        .await
        .unwrap();
    store.decline_invitation("i3", "ada", 14).await.unwrap();
    store.withdraw_invitation("i4", "eve", 15).await.unwrap();
    assert_eq!(events_since(&store, start).await, []);

    // Accepting connects inviter and invitee; a refused accept writes nothing.
    assert!(store.accept_invitation("i1", "ada", 20).await.is_err());
    store.accept_invitation("i1", "bob", 21).await.unwrap();
    assert!(store.accept_invitation("i1", "bob", 22).await.is_err());
    // Inviting back accepts the pending invitation: its inviter is the event's member.
    let accepted = store
        .create_invitation(invitation("i5", "cat", "ada", 23), Some(&key("cat", "k5")))
        .await
        .unwrap();
    assert_eq!(accepted.id, "i2");
    // Replayed keys change nothing and write nothing.
    store
        .create_invitation(invitation("i5", "cat", "ada", 24), Some(&key("cat", "k5")))
        .await
        .unwrap();
    store
        .create_invitation(invitation("i1", "ada", "bob", 25), Some(&key("ada", "k1")))
        .await
        .unwrap();
    // Refused invitations write nothing.
    assert!(store
        .create_invitation(invitation("i6", "ada", "bob", 26), None)
        .await
        .is_err());
    assert!(store
        .create_invitation(invitation("i7", "ada", "nobody", 27), None)
        .await
        .is_err());
    assert_eq!(
        events_since(&store, start).await,
        [made("ada", "bob"), made("ada", "cat")]
    );

    // Removing writes who removed it; removing what is not there writes nothing.
    store.remove_connection("bob", "ada").await.unwrap();
    assert!(matches!(
        store.remove_connection("bob", "ada").await,
        Err(ProfileError::NotFound("connection"))
    ));
    assert!(store.remove_connection("dan", "eve").await.is_err());

    // An import: one event per pair it connects, none for those already connected, unknown
    // or blocked.
    store.block_member("fay", "eve", 30).await.unwrap();
    let mark = outbox_head(&store).await;
    let (created_pairs, skipped) = store
        .import_connections(
            &[
                ("dan".into(), "eve".into()),
                ("ada".into(), "cat".into()),
                ("bob".into(), "ada".into()),
                ("fay".into(), "nobody".into()),
                ("eve".into(), "fay".into()),
                ("cat".into(), "bob".into()),
            ],
            40,
        )
        .await
        .unwrap();
    assert_eq!((created_pairs, skipped), (3, 3));
    assert_eq!(
        events_since(&store, mark).await,
        [made("dan", "eve"), made("bob", "ada"), made("cat", "bob")]
    );
    // Nothing new to connect: no event.
    store
        .import_connections(&[("dan".into(), "eve".into())], 41)
        .await
        .unwrap();
    assert_eq!(
        events_since(&store, start).await,
        [
            made("ada", "bob"),
            made("ada", "cat"),
            removed("bob", "ada"),
            blocked("fay", "eve"),
            made("dan", "eve"),
            made("bob", "ada"),
            made("cat", "bob"),
        ]
    );
}

async fn check_follow_and_block_writes_append_their_events_and_no_ops_none(store: Store) {
    members(&store, &["ada", "bob", "cat"]).await;
    connect(&store, "ada", "bob", 5).await;
    let start = outbox_head(&store).await;

    store.follow("ada", member("bob"), 10).await.unwrap();
    store.follow("bob", member("ada"), 11).await.unwrap();
    store.follow("ada", hashtag("rust"), 12).await.unwrap();
    // Following again keeps the first record and writes nothing; refused follows neither.
    store.follow("ada", member("bob"), 13).await.unwrap();
    store.follow("ada", hashtag("rust"), 14).await.unwrap();
    assert!(store.follow("ada", member("nobody"), 15).await.is_err());
    assert!(store.follow("nobody", hashtag("rust"), 16).await.is_err());
    store.follow("cat", hashtag("go"), 17).await.unwrap();
    store.unfollow("cat", &hashtag("go")).await.unwrap();
    store.follow("cat", member("ada"), 18).await.unwrap();
    store.unfollow("cat", &member("ada")).await.unwrap();
    // Unfollowing what is not followed writes nothing.
    store.unfollow("cat", &member("ada")).await.unwrap();
    store.unfollow("cat", &hashtag("go")).await.unwrap();
    assert_eq!(
        events_since(&store, start).await,
        [
            followed("ada", "bob"),
            followed("bob", "ada"),
            tag_followed("ada", "rust"),
            tag_followed("cat", "go"),
            tag_unfollowed("cat", "go"),
            followed("cat", "ada"),
            unfollowed("cat", "ada"),
        ]
    );

    // A block is one event, though it ends the connection and both follows.
    let mark = outbox_head(&store).await;
    store.block_member("bob", "ada", 20).await.unwrap();
    assert!(connected_ids(&store, "ada").await.is_empty());
    assert_eq!(following(&store, "ada").await, [hashtag("rust")]);
    // Blocking again, blocking oneself or a missing member: nothing.
    store.block_member("bob", "ada", 21).await.unwrap();
    assert!(store.block_member("bob", "bob", 22).await.is_err());
    assert!(store.block_member("bob", "nobody", 23).await.is_err());
    // A follow refused by the block: nothing.
    assert!(store.follow("ada", member("bob"), 24).await.is_err());
    store.unblock_member("bob", "ada").await.unwrap();
    // Lifting a block that is not there (again, or the other way): nothing.
    store.unblock_member("bob", "ada").await.unwrap();
    store.unblock_member("ada", "bob").await.unwrap();
    assert_eq!(
        events_since(&store, mark).await,
        [blocked("bob", "ada"), unblocked("bob", "ada")]
    );
}

async fn check_racing_writes_append_one_event_per_change_in_sequence(store: Store) {
    let ids: Vec<String> = (0..RACERS).map(|i| format!("m{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    members(&store, &refs).await;
    members(&store, &["hub"]).await;
    let start = outbox_head(&store).await;
    // Each member follows the hub twice at once and blocks nobody: one event per member.
    let results = race(RACERS * 2, |i| {
        let store = store.clone();
        async move {
            store
                .follow(&format!("m{:02}", i / 2), member("hub"), i as i64)
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok));
    // `outbox_events` checks the sequences are 1..n, gap-free and in order.
    let mut followers: Vec<Payload> = events_since(&store, start).await;
    followers.sort_by_key(|p| format!("{p:?}"));
    let expected: Vec<Payload> = ids.iter().map(|id| followed(id, "hub")).collect();
    assert_eq!(followers, expected);
}

async fn check_export_is_the_current_graph_at_the_outbox_head(store: Store) {
    // Nothing yet: the head is 0, and one message says so.
    let (positions, events) = export(&store, None).await;
    assert_eq!((positions, events), (vec![0], vec![]));

    store
        .create_profile("cat", fields("cat"), 3, None)
        .await
        .unwrap();
    store
        .create_profile("ada", fields("Ada"), 1, None)
        .await
        .unwrap();
    store
        .create_profile("bob", fields("bob"), 2, None)
        .await
        .unwrap();
    store
        .create_profile("dan", fields("dan"), 4, None)
        .await
        .unwrap();
    store
        .update_profile(
            "bob",
            ProfileChanges {
                display_name: Some("Bob B".into()),
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    connect(&store, "cat", "ada", 10).await;
    connect(&store, "bob", "cat", 11).await;
    connect(&store, "ada", "dan", 12).await;
    store.remove_connection("dan", "ada").await.unwrap();
    store
        .import_connections(&[("dan".into(), "bob".into())], 13)
        .await
        .unwrap();
    store.follow("ada", member("cat"), 20).await.unwrap();
    store.follow("ada", hashtag("rust"), 21).await.unwrap();
    store.follow("dan", member("ada"), 22).await.unwrap();
    store.follow("dan", hashtag("go"), 23).await.unwrap();
    store.unfollow("dan", &hashtag("go")).await.unwrap();
    store.follow("bob", member("dan"), 24).await.unwrap();
    // The block ends bob's connection with dan and his follow of dan.
    store.block_member("dan", "bob", 30).await.unwrap();
    store.block_member("cat", "dan", 31).await.unwrap();
    store.unblock_member("cat", "dan").await.unwrap();

    let head = outbox_head(&store).await as i64;
    assert!(head > 0);
    let (positions, events) = export(&store, None).await;
    assert_eq!(positions, [head]);
    for e in &events {
        assert_eq!((e.sequence, e.source.as_str()), (0, crate::events::SOURCE));
    }
    let state: Vec<(i64, Payload)> = events
        .into_iter()
        .map(|e| (micros(&e.occur_time), e.payload.unwrap()))
        .collect();
    let expected = vec![
        (1, created("ada", "Ada", "Ada")),
        (2, created("bob", "bob", "Bob B")),
        (3, created("cat", "cat", "cat")),
        (4, created("dan", "dan", "dan")),
        // Once per pair, smaller id first.
        (10, made("ada", "cat")),
        (11, made("bob", "cat")),
        (20, followed("ada", "cat")),
        (21, tag_followed("ada", "rust")),
        (22, followed("dan", "ada")),
        (30, blocked("dan", "bob")),
    ];
    assert_eq!(state, expected);

    // The profile graph is exported whole whatever the window.
    let (positions, events) = export(&store, Some(25)).await;
    assert_eq!(positions, [head]);
    assert_eq!(events.len(), expected.len());

    // Later writes move the head, and the next export with it.
    store.follow("cat", hashtag("sql"), 40).await.unwrap();
    let (positions, events) = export(&store, None).await;
    assert_eq!(positions, [head + 1]);
    assert_eq!(events.len(), expected.len() + 1);
}

/// More rows than an export page (and than one outbox INSERT) in each of two tables.
async fn check_imports_append_one_event_per_row_and_export_pages_through_them(store: Store) {
    let spokes: Vec<String> = (0..5_001).map(|i| format!("sp{i:05}")).collect();
    let mut profiles = vec![("hub".to_string(), fields("hub"))];
    profiles.extend(spokes.iter().map(|id| (id.clone(), fields(id))));
    assert_eq!(
        store.import_profiles(profiles, 1).await.unwrap(),
        (5_002, 0)
    );
    // The hub sorts first: every pair's stored forward row has the hub as member.
    let pairs: Vec<(String, String)> = spokes.iter().map(|id| ("hub".into(), id.clone())).collect();
    assert_eq!(
        store.import_connections(&pairs, 2).await.unwrap(),
        (5_001, 0)
    );
    let head = store.outbox().status().await.unwrap().head;
    assert_eq!(head, 10_003);
    // The last of each import, in the order given.
    let last = store.outbox().read_after(5_001, 2).await.unwrap();
    assert_eq!(
        last.into_iter()
            .map(|e| (e.sequence, e.payload.unwrap()))
            .collect::<Vec<_>>(),
        [
            (5_002, created("sp05000", "sp05000", "sp05000")),
            (5_003, made("hub", "sp00000")),
        ]
    );

    let (positions, events) = export(&store, None).await;
    assert!(positions.iter().all(|p| *p == head), "{positions:?}");
    let mut ids = Vec::new();
    let mut others = Vec::new();
    for e in events {
        match e.payload.unwrap() {
            Payload::ProfileCreated(p) => ids.push(p.member_id),
            Payload::ConnectionMade(c) => {
                assert_eq!(c.member_id, "hub");
                others.push(c.other_id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut all_ids = vec!["hub".to_string()];
    all_ids.extend(spokes.iter().cloned());
    all_ids.sort();
    assert_eq!(ids, all_ids);
    assert_eq!(others, spokes);
}

/// Every operation of the store `open_store` gives is timed under its name.
#[tokio::test]
async fn operations_are_timed_by_name_and_outcome() {
    let (_dir, store, metrics) = pronet_common::timed_sqlite_store!(crate::open_store);

    let fields = fields("ada");
    let created = store.create_profile("ada", fields, 1, None).await.unwrap();
    let found = store.get_profile("ada", None).await.unwrap();
    assert_eq!(found, Some(created));

    pronet_common::testing::assert_timed_once(
        &metrics,
        super::timed::STORE_NAME,
        &["create_profile", "get_profile"],
    );
}
