use std::sync::Mutex;

use pronet_common::time::to_timestamp;
use pronet_proto::events::v1 as pb;
use pronet_proto::post::v1::Visibility as PbVisibility;

use super::*;

fn event(sequence: i64, payload: Payload) -> pb::Event {
    pb::Event {
        id: format!("e{sequence}"),
        sequence,
        source: String::new(),
        occur_time: Some(to_timestamp(1)),
        payload: Some(payload),
    }
}

fn post_created(id: &str, author: &str, visibility: PbVisibility) -> Payload {
    Payload::PostCreated(pb::PostCreated {
        post_id: id.into(),
        author_id: author.into(),
        visibility: visibility as i32,
        ..Default::default()
    })
}

fn post_deleted(id: &str, author: &str) -> Payload {
    Payload::PostDeleted(pb::PostDeleted {
        post_id: id.into(),
        author_id: author.into(),
    })
}

fn connected(a: &str, b: &str) -> Payload {
    Payload::ConnectionMade(pb::ConnectionMade {
        member_id: a.into(),
        other_id: b.into(),
    })
}

fn disconnected(a: &str, b: &str) -> Payload {
    Payload::ConnectionRemoved(pb::ConnectionRemoved {
        member_id: a.into(),
        other_id: b.into(),
    })
}

fn blocked(a: &str, b: &str) -> Payload {
    Payload::MemberBlocked(pb::MemberBlocked {
        member_id: a.into(),
        blocked_id: b.into(),
    })
}

fn unblocked(a: &str, b: &str) -> Payload {
    Payload::MemberUnblocked(pb::MemberUnblocked {
        member_id: a.into(),
        blocked_id: b.into(),
    })
}

/// A loaded cache (both exports empty, at position 0) with `ada`'s public post `pub` and her
/// connections-only post `conn`.
fn loaded() -> CacheState {
    let mut s = CacheState::default();
    s.set_position(CacheSource::Profile, 0);
    s.set_position(CacheSource::Post, 0);
    s.apply(
        CacheSource::Post,
        &event(1, post_created("pub", "ada", PbVisibility::Public)),
    );
    s.apply(
        CacheSource::Post,
        &event(2, post_created("conn", "ada", PbVisibility::Connections)),
    );
    s
}

const NOW: [i64; 2] = [0, 0];

#[test]
fn public_posts_are_visible_to_strangers_and_connections_only_posts_need_a_connection() {
    let mut s = loaded();
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Visible);
    assert_eq!(s.answer("conn", "bob", NOW), Answer::Hidden);
    s.apply(CacheSource::Profile, &event(1, connected("bob", "ada")));
    assert_eq!(s.answer("conn", "bob", NOW), Answer::Visible);
    s.apply(CacheSource::Profile, &event(2, disconnected("ada", "bob")));
    assert_eq!(s.answer("conn", "bob", NOW), Answer::Hidden);
}

#[test]
fn authors_see_their_own_posts_and_no_viewer_sees_what_exists() {
    let s = loaded();
    assert_eq!(s.answer("conn", "ada", NOW), Answer::Visible);
    assert_eq!(s.answer("conn", "", NOW), Answer::Visible);
}

#[test]
fn a_block_hides_even_public_posts_both_ways_and_ends_the_connection() {
    let mut s = loaded();
    s.apply(
        CacheSource::Post,
        &event(3, post_created("bobs", "bob", PbVisibility::Public)),
    );
    s.apply(CacheSource::Profile, &event(1, connected("ada", "bob")));
    s.apply(CacheSource::Profile, &event(2, blocked("ada", "bob")));
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Hidden);
    assert_eq!(s.answer("bobs", "ada", NOW), Answer::Hidden);
    // Lifting the block does not bring the connection back.
    s.apply(CacheSource::Profile, &event(3, unblocked("ada", "bob")));
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Visible);
    assert_eq!(s.answer("bobs", "ada", NOW), Answer::Visible);
    assert_eq!(s.answer("conn", "bob", NOW), Answer::Hidden);
}

#[test]
fn a_block_by_either_member_is_lifted_only_by_its_own_unblock() {
    let mut s = loaded();
    s.apply(CacheSource::Profile, &event(1, blocked("ada", "bob")));
    s.apply(CacheSource::Profile, &event(2, blocked("bob", "ada")));
    s.apply(CacheSource::Profile, &event(3, unblocked("ada", "bob")));
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Hidden);
    s.apply(CacheSource::Profile, &event(4, unblocked("bob", "ada")));
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Visible);
}

#[test]
fn deleted_posts_are_hidden_even_from_their_author_and_stay_deleted() {
    let mut s = loaded();
    s.apply(CacheSource::Post, &event(3, post_deleted("pub", "ada")));
    assert_eq!(s.answer("pub", "ada", NOW), Answer::Hidden);
    assert_eq!(s.answer("pub", "", NOW), Answer::Hidden);
    // An export lists a window's deletions after its creations; a creation heard again (a
    // repeat) does not bring the post back.
    s.apply(
        CacheSource::Post,
        &event(0, post_created("pub", "ada", PbVisibility::Public)),
    );
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Hidden);
}

#[test]
fn unknown_posts_and_unknown_visibilities_are_left_to_the_post_service() {
    let mut s = loaded();
    assert_eq!(s.answer("nothing", "bob", NOW), Answer::Unknown);
    s.apply(
        CacheSource::Post,
        &event(3, post_created("odd", "ada", PbVisibility::Unspecified)),
    );
    assert_eq!(s.answer("odd", "bob", NOW), Answer::Unknown);
}

#[test]
fn answers_only_when_both_sources_are_loaded_and_at_the_heads() {
    let mut s = CacheState::default();
    s.apply(
        CacheSource::Post,
        &event(0, post_created("p", "ada", PbVisibility::Public)),
    );
    s.set_position(CacheSource::Post, 5);
    // The profile export has not been applied: a block may be missing.
    assert_eq!(s.answer("p", "bob", [0, 5]), Answer::Unknown);
    s.set_position(CacheSource::Profile, 7);
    assert_eq!(s.answer("p", "bob", [7, 5]), Answer::Visible);
    // A head past what was applied: something committed the cache has not seen.
    assert_eq!(s.answer("p", "bob", [8, 5]), Answer::Unknown);
    assert_eq!(s.answer("p", "bob", [7, 6]), Answer::Unknown);
}

#[test]
fn repeated_events_are_skipped_by_sequence() {
    let mut s = loaded();
    s.apply(CacheSource::Profile, &event(1, blocked("ada", "bob")));
    s.apply(CacheSource::Profile, &event(2, unblocked("ada", "bob")));
    // At-least-once delivery: the block again, with its old sequence.
    s.apply(CacheSource::Profile, &event(1, blocked("ada", "bob")));
    assert_eq!(s.position(CacheSource::Profile), 2);
    assert_eq!(s.answer("pub", "bob", [2, 2]), Answer::Visible);
}

#[test]
fn a_reset_source_answers_nothing_until_reloaded() {
    let mut s = loaded();
    s.apply(CacheSource::Profile, &event(1, blocked("ada", "bob")));
    s.reset(CacheSource::Profile);
    assert_eq!(s.position(CacheSource::Profile), 0);
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Unknown);
    s.set_position(CacheSource::Profile, 1);
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Visible);
    s.reset(CacheSource::Post);
    assert_eq!(s.answer("pub", "bob", NOW), Answer::Unknown);
}

#[tokio::test]
async fn reach_waits_for_the_followers_and_gives_up_after_the_wait() {
    let cache = Arc::new(VisibilityCache::new());
    let (profile, post) = (
        cache.feed(CacheSource::Profile),
        cache.feed(CacheSource::Post),
    );
    profile.set_position(3);
    post.set_position(4);
    assert!(cache.loaded());
    assert!(cache.reach([3, 4], Duration::ZERO).await);
    assert!(!cache.reach([4, 4], Duration::from_millis(10)).await);
    let waiting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.reach([4, 4], Duration::from_secs(5)).await })
    };
    profile.apply(&[event(4, blocked("ada", "bob"))]);
    assert!(waiting.await.unwrap());
    assert_eq!(profile.position(), 4);
}

/// Answers every post visible, and records what it was asked.
#[derive(Default)]
struct RecordingDirectory {
    asked: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl PostDirectory for RecordingDirectory {
    async fn require_visible_post(&self, post_id: &str, _: &str) -> Result<(), EngagementError> {
        self.asked.lock().unwrap().push(vec![post_id.to_owned()]);
        Ok(())
    }

    async fn visible_posts(
        &self,
        post_ids: &[String],
        _: &str,
    ) -> Result<HashSet<String>, EngagementError> {
        self.asked.lock().unwrap().push(post_ids.to_vec());
        Ok(post_ids.iter().cloned().collect())
    }
}

fn unreachable_sources() -> CacheSources {
    CacheSources {
        profile_addr: "127.0.0.1:1".into(),
        post_addr: "127.0.0.1:1".into(),
        auth: pronet_common::testing::test_auth(),
        limits: CallLimits::default(),
        nats: None,
        shutdown: Shutdown::default(),
        metrics: None,
    }
}

#[tokio::test]
async fn the_post_service_answers_while_the_cache_is_not_loaded_and_down_sources_fail_fast() {
    let cache = Arc::new(VisibilityCache::new());
    let fallback = Arc::new(RecordingDirectory::default());
    let directory =
        CachedPostDirectory::new(cache.clone(), &unreachable_sources(), fallback.clone()).unwrap();
    // Not loaded: no probe, the post service answers.
    directory.require_visible_post("p", "bob").await.unwrap();
    // Loaded, but the heads cannot be read: the sources are down, and the post service (one
    // of them, or asking the other) could not answer either: UNAVAILABLE at once, nothing
    // asked of it, even for a post the cache holds as deleted.
    cache.feed(CacheSource::Profile).set_position(0);
    cache
        .feed(CacheSource::Post)
        .apply(&[event(0, post_deleted("p", "ada"))]);
    cache.feed(CacheSource::Post).set_position(0);
    let err = directory
        .require_visible_post("p", "bob")
        .await
        .unwrap_err();
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::Unavailable);
    // The next requests fail too (at once, while backing off).
    let ids = vec!["p".to_owned(), "q".to_owned()];
    let err = directory.visible_posts(&ids, "bob").await.unwrap_err();
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::Unavailable);
    assert_eq!(*fallback.asked.lock().unwrap(), vec![vec!["p".to_owned()]]);
}
