use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use pronet_common::auth::{Access, AuthLayer, Caller};
use pronet_common::error::MAX_LISTED_VIOLATIONS;
use pronet_common::testing::{test_auth as auth, with_caller as from};
use pronet_common::upstream::{lazy_channel, CallLimits};
use pronet_proto::post::v1 as post_pb;
use pronet_proto::post::v1::post_service_server::{PostService, PostServiceServer};
use pronet_proto::Timestamp;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::Code;

use super::*;
use crate::error::EngagementError;
use crate::posts::{GrpcPostDirectory, MAX_POSTS_PER_BATCH};
use crate::profiles::MemberGraph;
use crate::store::sqlite::SqliteEngagementStore;

/// Whether a fake post exists and `viewer` may see it: `p1`, `p2`, `p3` are public; `secret`
/// is `m2`'s connections-only post, which only `m2` may see.
fn fake_visible(post_id: &str, viewer: &str) -> bool {
    match post_id {
        "p1" | "p2" | "p3" => true,
        "secret" => viewer == "m2",
        _ => false,
    }
}

/// The fake post service behind the directory. Counts the calls and keeps the batch asks, so
/// tests can tell that a request never reached the post service, or how it did.
#[derive(Default)]
struct KnownPosts {
    calls: AtomicUsize,
    /// `(post_ids, viewer_id)` of each `visible_posts` call.
    batches: Mutex<Vec<(Vec<String>, String)>>,
}

impl KnownPosts {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn batches(&self) -> Vec<(Vec<String>, String)> {
        self.batches.lock().unwrap().clone()
    }
}

#[async_trait]
impl PostDirectory for KnownPosts {
    async fn require_visible_post(
        &self,
        post_id: &str,
        viewer_id: &str,
    ) -> Result<(), EngagementError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if fake_visible(post_id, viewer_id) {
            Ok(())
        } else {
            Err(EngagementError::NotFound("post"))
        }
    }

    async fn visible_posts(
        &self,
        post_ids: &[String],
        viewer_id: &str,
    ) -> Result<HashSet<String>, EngagementError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.batches
            .lock()
            .unwrap()
            .push((post_ids.to_vec(), viewer_id.to_owned()));
        Ok(post_ids
            .iter()
            .filter(|id| fake_visible(id, viewer_id))
            .cloned()
            .collect())
    }
}

/// The fake profile service's graph: connections and blocks, both symmetric.
#[derive(Default)]
struct FakeGraph {
    connected: Mutex<HashSet<(String, String)>>,
    blocked: Mutex<HashSet<(String, String)>>,
    /// The member ids of each `blocked_among` call.
    asked: Mutex<Vec<Vec<String>>>,
}

impl FakeGraph {
    fn pair(a: &str, b: &str) -> (String, String) {
        if a < b {
            (a.into(), b.into())
        } else {
            (b.into(), a.into())
        }
    }

    fn connect(&self, a: &str, b: &str) {
        self.connected.lock().unwrap().insert(Self::pair(a, b));
    }

    fn block(&self, a: &str, b: &str) {
        self.blocked.lock().unwrap().insert(Self::pair(a, b));
    }
}

#[async_trait]
impl MemberGraph for FakeGraph {
    async fn blocked_among(
        &self,
        viewer_id: &str,
        member_ids: &[String],
    ) -> Result<HashSet<String>, EngagementError> {
        self.asked.lock().unwrap().push(member_ids.to_vec());
        let blocked = self.blocked.lock().unwrap();
        Ok(member_ids
            .iter()
            .filter(|m| blocked.contains(&Self::pair(viewer_id, m)))
            .cloned()
            .collect())
    }

    async fn connections(
        &self,
        member_id: &str,
        max: usize,
    ) -> Result<Vec<String>, EngagementError> {
        let mut found: Vec<String> = self
            .connected
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(a, b)| match (a == member_id, b == member_id) {
                (true, _) => Some(b.clone()),
                (_, true) => Some(a.clone()),
                _ => None,
            })
            .collect();
        found.sort();
        found.truncate(max);
        Ok(found)
    }

    /// Every member exists but `ghost`.
    async fn member_exists(&self, member_id: &str) -> Result<bool, EngagementError> {
        Ok(member_id != "ghost")
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    api: EngagementApi,
    posts: Arc<KnownPosts>,
    graph: Arc<FakeGraph>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .unwrap();
    let posts = Arc::new(KnownPosts::default());
    let graph = Arc::new(FakeGraph::default());
    let api = EngagementApi::new(Arc::new(store), posts.clone(), graph.clone());
    Harness {
        _dir: dir,
        api,
        posts,
        graph,
    }
}

async fn api_with_posts(posts: Arc<dyn PostDirectory>) -> (tempfile::TempDir, EngagementApi) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .unwrap();
    let graph = Arc::new(FakeGraph::default());
    (dir, EngagementApi::new(Arc::new(store), posts, graph))
}

fn member(id: &str) -> Caller {
    Caller::Member(id.into())
}

fn service(name: &str) -> Caller {
    Caller::Service(name.into())
}

/// The fields an INVALID_ARGUMENT names, in order (its message is `field: why; field: why`).
fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .message()
        .split("; ")
        .map(|v| v.split(": ").next().unwrap_or_default().to_owned())
        .collect()
}

fn assert_status(status: &Status, code: Code, message: &str) {
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
}

/// `member_id` reacting in their own name.
fn react_req(member_id: &str, post_id: &str, t: pb::ReactionType) -> Request<pb::ReactRequest> {
    from(
        member(member_id),
        pb::ReactRequest {
            member_id: member_id.into(),
            post_id: post_id.into(),
            reaction_type: t as i32,
        },
    )
}

fn comment_req(
    caller: Caller,
    member_id: &str,
    post_id: &str,
) -> Request<pb::CreateCommentRequest> {
    from(
        caller,
        pb::CreateCommentRequest {
            member_id: member_id.into(),
            post_id: post_id.into(),
            text: "nice".into(),
            parent_comment_id: String::new(),
            request_id: String::new(),
        },
    )
}

fn share_req(caller: Caller, member_id: &str, post_id: &str) -> Request<pb::RecordShareRequest> {
    from(
        caller,
        pb::RecordShareRequest {
            member_id: member_id.into(),
            post_id: post_id.into(),
        },
    )
}

fn stats_req(
    caller: Caller,
    post_ids: &[&str],
    viewer_id: &str,
) -> Request<pb::BatchGetPostStatsRequest> {
    from(
        caller,
        pb::BatchGetPostStatsRequest {
            post_ids: post_ids.iter().map(|id| (*id).to_owned()).collect(),
            viewer_id: viewer_id.into(),
        },
    )
}

fn activity_req(member_ids: &[&str]) -> Request<pb::ListRecentActivityRequest> {
    from(
        service("feed"),
        pb::ListRecentActivityRequest {
            member_ids: member_ids.iter().map(|id| (*id).to_owned()).collect(),
            since: since(0),
            max_activities: 0,
        },
    )
}

fn since(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// `(post_id, total_reactions, comments, shares)` of each stat.
fn totals(stats: &[pb::PostStats]) -> Vec<(&str, i64, i64, i64)> {
    stats
        .iter()
        .map(|s| (s.post_id.as_str(), s.total_reactions, s.comments, s.shares))
        .collect()
}

#[test]
fn every_proto_reaction_type_but_unspecified_maps_both_ways() {
    for t in ReactionType::ALL {
        let number = reaction_type_to_pb(t) as i32;
        assert_eq!(i64::from(number), t.number());
        assert_eq!(parse_reaction_type(number), Ok(t));
    }
    assert!(parse_reaction_type(pb::ReactionType::Unspecified as i32).is_err());
    assert!(parse_reaction_type(7).is_err());
    assert!(parse_reaction_type(i32::MIN).is_err());
}

#[tokio::test]
async fn react_reports_every_invalid_field_at_once_without_calling_out() {
    let h = harness().await;
    let status = h
        .api
        .react(react_req("", "a b", pb::ReactionType::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["member_id", "post_id", "reaction_type"]
    );
    assert_eq!(h.posts.calls(), 0);

    let mut req = react_req("m1", "p1", pb::ReactionType::Like);
    req.get_mut().reaction_type = 99;
    let status = h.api.react(req).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["reaction_type"]);
    assert!(status.message().contains("REACTION_TYPE_LIKE"));
}

#[tokio::test]
async fn a_request_the_auth_layer_did_not_pass_is_unauthenticated() {
    let h = harness().await;
    let status = h
        .api
        .react(Request::new(pb::ReactRequest {
            member_id: "m1".into(),
            post_id: "p1".into(),
            reaction_type: pb::ReactionType::Like as i32,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = h
        .api
        .batch_get_post_stats(Request::new(pb::BatchGetPostStatsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = h
        .api
        .list_recent_activity(Request::new(pb::ListRecentActivityRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(h.posts.calls(), 0);
}

#[tokio::test]
async fn engaging_as_someone_else_is_permission_denied_before_any_lookup() {
    let h = harness().await;
    let mut req = react_req("m2", "p1", pb::ReactionType::Like);
    req.extensions_mut().insert(member("m1"));
    let status = h.api.react(req).await.unwrap_err();
    assert_status(
        &status,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );

    // Whether the post exists makes no difference.
    let status = h
        .api
        .create_comment(comment_req(member("m1"), "m2", "nope"))
        .await
        .unwrap_err();
    assert_status(
        &status,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );
    let status = h
        .api
        .record_share(share_req(member("m1"), "m2", "p1"))
        .await
        .unwrap_err();
    assert_status(
        &status,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );

    // Services do not act as members either (RecordShare aside, see its own test).
    let status = h
        .api
        .create_comment(comment_req(service("feed"), "m2", "p1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Invalid input is reported before the actor check.
    let status = h
        .api
        .record_share(share_req(member("m1"), "m2", "a b"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["post_id"]);

    assert_eq!(h.posts.calls(), 0);
    assert!(h
        .api
        .list_recent_activity(activity_req(&["m1", "m2"]))
        .await
        .unwrap()
        .into_inner()
        .activities
        .is_empty());
}

#[tokio::test]
async fn reacting_to_a_missing_post_is_not_found() {
    let h = harness().await;
    let status = h
        .api
        .react(react_req("m1", "nope", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
}

#[tokio::test]
async fn a_post_hidden_from_the_member_is_not_found_and_nothing_is_written() {
    let h = harness().await;
    let status = h
        .api
        .react(react_req("m1", "secret", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
    let status = h
        .api
        .create_comment(comment_req(member("m1"), "m1", "secret"))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
    let status = h
        .api
        .record_share(share_req(member("m1"), "m1", "secret"))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");

    // A service acting for nobody sees every count: nothing was counted.
    let stats = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &["secret"], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(totals(&stats), [("secret", 0, 0, 0)]);
    assert!(h
        .api
        .list_recent_activity(activity_req(&["m1"]))
        .await
        .unwrap()
        .into_inner()
        .activities
        .is_empty());

    // The member who may see it can engage.
    h.api
        .react(react_req("m2", "secret", pb::ReactionType::Like))
        .await
        .unwrap();
}

#[tokio::test]
async fn reacting_again_changes_the_type_and_keeps_the_first_time() {
    let h = harness().await;
    let first = h
        .api
        .react(react_req("m1", "p1", pb::ReactionType::Like))
        .await
        .unwrap()
        .into_inner()
        .reaction
        .unwrap();
    assert_eq!(first.reaction_type, pb::ReactionType::Like as i32);
    let changed = h
        .api
        .react(react_req("m1", "p1", pb::ReactionType::Celebrate))
        .await
        .unwrap()
        .into_inner()
        .reaction
        .unwrap();
    assert_eq!(changed.reaction_type, pb::ReactionType::Celebrate as i32);
    assert_eq!(changed.create_time, first.create_time);
    assert_eq!(
        (changed.post_id.as_str(), changed.member_id.as_str()),
        ("p1", "m1")
    );
}

#[tokio::test]
async fn comments_are_checked_and_get_new_ids() {
    let h = harness().await;
    let req = |text: String| {
        from(
            member("m1"),
            pb::CreateCommentRequest {
                member_id: "m1".into(),
                post_id: "p1".into(),
                text,
                parent_comment_id: String::new(),
                request_id: String::new(),
            },
        )
    };
    for bad in [
        String::new(),
        " \n".into(),
        "x".repeat(1251),
        "bell\u{7}".into(),
    ] {
        let status = h.api.create_comment(req(bad)).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["text"]);
    }
    assert_eq!(h.posts.calls(), 0);

    let text = "Great point.\nThanks for sharing!".to_string();
    let comment = h
        .api
        .create_comment(req(text.clone()))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(comment.text, text);
    assert_eq!(comment.id.len(), 32);
    assert!(comment.create_time.is_some());
    let other = h.api.create_comment(req("é".repeat(1250))).await.unwrap();
    assert_ne!(other.into_inner().comment.unwrap().id, comment.id);
}

/// `caller` commenting "nice" on `p1` as `m1` with `request_id`.
fn keyed_comment_req(caller: Caller, request_id: &str) -> Request<pb::CreateCommentRequest> {
    let mut req = comment_req(caller, "m1", "p1");
    req.get_mut().request_id = request_id.into();
    req
}

async fn comment_count(h: &Harness, post_id: &str) -> i64 {
    let stats = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &[post_id], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    stats[0].comments
}

#[tokio::test]
async fn a_comment_retried_with_its_request_id_is_created_once() {
    let h = harness().await;
    let create = |request_id: &str| {
        h.api
            .create_comment(keyed_comment_req(member("m1"), request_id))
    };
    let first = create("retry-1")
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let again = create("retry-1")
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(comment_count(&h, "p1").await, 1);

    // Another key, or none, is another comment.
    let other = create("retry-2")
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_ne!(other.id, first.id);
    let unkeyed = create("").await.unwrap().into_inner().comment.unwrap();
    let unkeyed_again = create("").await.unwrap().into_inner().comment.unwrap();
    assert_ne!(unkeyed.id, unkeyed_again.id);
    assert_eq!(comment_count(&h, "p1").await, 4);
}

#[tokio::test]
async fn request_ids_are_scoped_by_caller() {
    let h = harness().await;
    let by_m1 = h
        .api
        .create_comment(keyed_comment_req(member("m1"), "same"))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let mut req = comment_req(member("m2"), "m2", "p1");
    req.get_mut().request_id = "same".into();
    let by_m2 = h
        .api
        .create_comment(req)
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_ne!(by_m2.id, by_m1.id);
    assert_eq!(by_m2.member_id, "m2");
    assert_eq!(comment_count(&h, "p1").await, 2);
}

#[tokio::test]
async fn an_invalid_request_id_is_refused_before_any_lookup() {
    let h = harness().await;
    for bad in ["a b", "x'; drop", &"r".repeat(65)] {
        let status = h
            .api
            .create_comment(keyed_comment_req(member("m1"), bad))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["request_id"], "{bad}");
    }
    assert_eq!(h.posts.calls(), 0);
    assert_eq!(comment_count(&h, "p1").await, 0);
}

#[tokio::test]
async fn a_repeat_share_returns_the_first() {
    let h = harness().await;
    let req = || share_req(member("m1"), "m1", "p2");
    let first = h.api.record_share(req()).await.unwrap().into_inner().share;
    let again = h.api.record_share(req()).await.unwrap().into_inner().share;
    assert!(first.is_some());
    assert_eq!(again, first);
}

#[tokio::test]
async fn stats_come_in_request_order_with_reactions_in_enum_order() {
    let h = harness().await;
    for (member, t) in [
        ("m1", pb::ReactionType::Funny),
        ("m2", pb::ReactionType::Like),
        ("m3", pb::ReactionType::Funny),
    ] {
        h.api.react(react_req(member, "p1", t)).await.unwrap();
    }
    let stats = h
        .api
        .batch_get_post_stats(stats_req(member("m1"), &["unknown", "p1"], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(
        stats,
        [
            pb::PostStats {
                post_id: "unknown".into(),
                ..Default::default()
            },
            pb::PostStats {
                post_id: "p1".into(),
                reactions: vec![
                    pb::ReactionCount {
                        reaction_type: pb::ReactionType::Like as i32,
                        count: 1,
                    },
                    pb::ReactionCount {
                        reaction_type: pb::ReactionType::Funny as i32,
                        count: 2,
                    },
                ],
                total_reactions: 3,
                comments: 0,
                shares: 0,
                ..Default::default()
            },
        ]
    );
}

#[tokio::test]
async fn stats_requests_are_bounded_and_every_id_checked() {
    let h = harness().await;
    let stats = |post_ids: Vec<String>| {
        h.api.batch_get_post_stats(from(
            service("feed"),
            pb::BatchGetPostStatsRequest {
                post_ids,
                viewer_id: String::new(),
            },
        ))
    };
    let status = stats(vec!["p1".into(), String::new(), "x;y".into()])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["post_ids[1]", "post_ids[2]"]);

    let status = stats(vec!["p1".into(); 5001]).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["post_ids"]);

    // A flood of bad ids lists a few and sums up the rest.
    let status = stats(vec![String::new(); 100]).await.unwrap_err();
    let fields = violated_fields(&status);
    assert_eq!(fields.len(), MAX_LISTED_VIOLATIONS + 1);
    assert_eq!(fields.last().map(String::as_str), Some("request"));
    assert!(status.message().contains("80 more violations not listed"));

    assert_eq!(
        stats(vec!["p1".into(); 5000])
            .await
            .unwrap()
            .into_inner()
            .stats
            .len(),
        5000
    );
    assert!(stats(Vec::new())
        .await
        .unwrap()
        .into_inner()
        .stats
        .is_empty());

    // The viewer is checked together with the ids.
    let status = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &["p1", "a b"], "x y"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["post_ids[1]", "viewer_id"]);
    assert_eq!(h.posts.calls(), 0);
}

/// `m2` reacts to and comments on their hidden post and `p1`.
async fn engage_with_secret_and_p1(h: &Harness) {
    for post in ["secret", "p1"] {
        h.api
            .react(react_req("m2", post, pb::ReactionType::Love))
            .await
            .unwrap();
        h.api
            .create_comment(comment_req(member("m2"), "m2", post))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_member_gets_zero_counts_for_posts_they_may_not_see() {
    let h = harness().await;
    engage_with_secret_and_p1(&h).await;
    let ids = ["secret", "p1", "secret", "nope"];
    let stats = h
        .api
        .batch_get_post_stats(stats_req(member("m1"), &ids, ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(
        totals(&stats),
        [
            ("secret", 0, 0, 0),
            ("p1", 1, 1, 0),
            ("secret", 0, 0, 0),
            ("nope", 0, 0, 0)
        ]
    );
    assert!(stats[0].reactions.is_empty());
    let asked: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(h.posts.batches(), [(asked, "m1".to_owned())]);

    // The author sees their own counts; naming themself as viewer is allowed.
    let stats = h
        .api
        .batch_get_post_stats(stats_req(member("m2"), &["secret"], "m2"))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(totals(&stats), [("secret", 1, 1, 0)]);
}

#[tokio::test]
async fn a_service_acting_for_a_member_gets_that_members_view() {
    let h = harness().await;
    engage_with_secret_and_p1(&h).await;
    let stats = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &["p1", "secret"], "m1"))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(totals(&stats), [("p1", 1, 1, 0), ("secret", 0, 0, 0)]);
    assert_eq!(
        h.posts.batches(),
        [(vec!["p1".to_owned(), "secret".to_owned()], "m1".to_owned())]
    );
}

#[tokio::test]
async fn a_service_acting_for_nobody_gets_every_count_without_asking_the_post_service() {
    let h = harness().await;
    engage_with_secret_and_p1(&h).await;
    let calls = h.posts.calls();
    let stats = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &["p1", "secret"], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(totals(&stats), [("p1", 1, 1, 0), ("secret", 1, 1, 0)]);
    assert_eq!(h.posts.calls(), calls);
    assert!(h.posts.batches().is_empty());
}

#[tokio::test]
async fn a_member_naming_another_viewer_is_permission_denied() {
    let h = harness().await;
    let status = h
        .api
        .batch_get_post_stats(stats_req(member("m1"), &["secret"], "m2"))
        .await
        .unwrap_err();
    assert_status(
        &status,
        Code::PermissionDenied,
        "viewer_id is for service callers",
    );
    assert_eq!(h.posts.calls(), 0);
}

#[tokio::test]
async fn recent_activity_is_for_services_only() {
    let h = harness().await;
    let mut req = activity_req(&["m1"]);
    req.extensions_mut().insert(member("m1"));
    let status = h.api.list_recent_activity(req).await.unwrap_err();
    assert_status(
        &status,
        Code::PermissionDenied,
        "this method is for pronet services only",
    );
}

#[tokio::test]
async fn recent_activity_needs_since_and_a_sane_maximum() {
    let h = harness().await;
    let req = |member_ids: Vec<String>, since, max_activities| {
        from(
            service("feed"),
            pb::ListRecentActivityRequest {
                member_ids,
                since,
                max_activities,
            },
        )
    };
    let status = h
        .api
        .list_recent_activity(req(vec!["m1".into(), "bad id".into()], None, -1))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["member_ids[1]", "since", "max_activities"]
    );

    for bad in [
        Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        Timestamp {
            seconds: 0,
            nanos: -5,
        },
    ] {
        let status = h
            .api
            .list_recent_activity(req(vec!["m1".into()], Some(bad), 0))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["since"]);
    }

    let status = h
        .api
        .list_recent_activity(req(vec!["m1".into(); 5001], since(0), 0))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["member_ids"]);
}

#[tokio::test]
async fn recent_activity_lists_every_kind_newest_first() {
    let h = harness().await;
    h.api
        .react(react_req("m1", "p1", pb::ReactionType::Support))
        .await
        .unwrap();
    h.api
        .create_comment(comment_req(member("m2"), "m2", "p2"))
        .await
        .unwrap();
    h.api
        .record_share(share_req(member("m1"), "m1", "p3"))
        .await
        .unwrap();
    h.api
        .react(react_req("m9", "p1", pb::ReactionType::Like))
        .await
        .unwrap();

    let list = |max_activities| {
        let mut req = activity_req(&["m1", "m2"]);
        req.get_mut().max_activities = max_activities;
        h.api.list_recent_activity(req)
    };
    let got = list(0).await.unwrap().into_inner().activities;
    let summary: Vec<(&str, &str, i32, i32)> = got
        .iter()
        .map(|a| {
            (
                a.member_id.as_str(),
                a.post_id.as_str(),
                a.kind,
                a.reaction_type,
            )
        })
        .collect();
    let unspecified = pb::ReactionType::Unspecified as i32;
    assert_eq!(
        summary,
        [
            ("m1", "p3", pb::ActivityKind::Share as i32, unspecified),
            ("m2", "p2", pb::ActivityKind::Comment as i32, unspecified),
            (
                "m1",
                "p1",
                pb::ActivityKind::Reaction as i32,
                pb::ReactionType::Support as i32
            ),
        ]
    );
    let times: Vec<_> = got.iter().map(|a| a.create_time.unwrap()).collect();
    assert!(times
        .windows(2)
        .all(|w| (w[0].seconds, w[0].nanos) >= (w[1].seconds, w[1].nanos)));

    assert_eq!(list(1).await.unwrap().into_inner().activities, got[..1]);
}

/// What the fake post service was asked.
#[derive(Debug, Default)]
struct PostCalls {
    /// `(post_id, viewer_id)` of each `GetPost`.
    gets: Vec<(String, String)>,
    /// Each `BatchGetPosts` request.
    batches: Vec<post_pb::BatchGetPostsRequest>,
}

/// A post service that knows the posts of [`fake_visible`] and fails with INTERNAL for
/// `boom`. It sits behind the real auth layer and answers only this service's token.
#[derive(Clone, Default)]
struct FakePostServer {
    calls: Arc<Mutex<PostCalls>>,
}

impl FakePostServer {
    fn require_engagement<T>(request: &Request<T>) -> Result<(), Status> {
        match caller(request)? {
            Caller::Service(name) if name == "engagement" => Ok(()),
            other => Err(Status::permission_denied(format!("unexpected {other:?}"))),
        }
    }
}

fn fake_post(id: &str) -> post_pb::Post {
    post_pb::Post {
        id: id.into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl PostService for FakePostServer {
    async fn create_post(
        &self,
        _: Request<post_pb::CreatePostRequest>,
    ) -> Result<Response<post_pb::CreatePostResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn import_posts(
        &self,
        _: Request<post_pb::ImportPostsRequest>,
    ) -> Result<Response<post_pb::ImportPostsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_post(
        &self,
        request: Request<post_pb::GetPostRequest>,
    ) -> Result<Response<post_pb::GetPostResponse>, Status> {
        Self::require_engagement(&request)?;
        let req = request.into_inner();
        self.calls
            .lock()
            .unwrap()
            .gets
            .push((req.post_id.clone(), req.viewer_id.clone()));
        if req.post_id == "boom" {
            return Err(Status::internal("database on fire"));
        }
        if !fake_visible(&req.post_id, &req.viewer_id) {
            return Err(Status::not_found("post not found"));
        }
        Ok(Response::new(post_pb::GetPostResponse {
            post: Some(fake_post(&req.post_id)),
        }))
    }

    async fn batch_get_posts(
        &self,
        request: Request<post_pb::BatchGetPostsRequest>,
    ) -> Result<Response<post_pb::BatchGetPostsResponse>, Status> {
        Self::require_engagement(&request)?;
        let req = request.into_inner();
        if req.post_ids.len() > MAX_POSTS_PER_BATCH {
            return Err(Status::invalid_argument("too many post ids"));
        }
        let posts = req
            .post_ids
            .iter()
            .filter(|id| fake_visible(id, &req.viewer_id))
            .map(|id| fake_post(id))
            .collect();
        self.calls.lock().unwrap().batches.push(req);
        Ok(Response::new(post_pb::BatchGetPostsResponse { posts }))
    }

    async fn list_posts_by_author(
        &self,
        _: Request<post_pb::ListPostsByAuthorRequest>,
    ) -> Result<Response<post_pb::ListPostsByAuthorResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_recent_posts_by_authors(
        &self,
        _: Request<post_pb::ListRecentPostsByAuthorsRequest>,
    ) -> Result<Response<post_pb::ListRecentPostsByAuthorsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn update_post(
        &self,
        _: Request<post_pb::UpdatePostRequest>,
    ) -> Result<Response<post_pb::UpdatePostResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_post(
        &self,
        _: Request<post_pb::DeletePostRequest>,
    ) -> Result<Response<post_pb::DeletePostResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_posts_by_hashtag(
        &self,
        _: Request<post_pb::ListPostsByHashtagRequest>,
    ) -> Result<Response<post_pb::ListPostsByHashtagResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_trending_hashtags(
        &self,
        _: Request<post_pb::ListTrendingHashtagsRequest>,
    ) -> Result<Response<post_pb::ListTrendingHashtagsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

fn quick_limits() -> CallLimits {
    CallLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    }
}

/// The post service's reads are for members and services alike.
fn post_access(_: &str) -> Access {
    Access::MemberOrService
}

/// Serves `fake` behind the auth layer on a free port; a channel to it.
async fn serve_fake_posts(fake: FakePostServer) -> Channel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(AuthLayer::new(auth(), post_access))
            .add_service(PostServiceServer::new(fake))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    lazy_channel(&addr.to_string(), quick_limits()).unwrap()
}

#[tokio::test]
async fn the_post_service_decides_over_grpc_whether_the_member_may_see_a_post() {
    let fake = FakePostServer::default();
    let channel = serve_fake_posts(fake.clone()).await;
    let (_dir, api) = api_with_posts(Arc::new(GrpcPostDirectory::new(channel, auth(), None))).await;

    let ok = api
        .react(react_req("m1", "p1", pb::ReactionType::Like))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().reaction.unwrap().post_id, "p1");

    let missing = api
        .react(react_req("m1", "p9", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "post not found");
    let hidden = api
        .create_comment(comment_req(member("m1"), "m1", "secret"))
        .await
        .unwrap_err();
    assert_status(&hidden, Code::NotFound, "post not found");

    let failed = api
        .record_share(share_req(member("m1"), "m1", "boom"))
        .await
        .unwrap_err();
    assert_status(&failed, Code::Internal, "internal error");

    // Every ask named the member as the viewer and carried this service's token (the fake
    // refuses anything else).
    let gets = fake.calls.lock().unwrap().gets.clone();
    let want: Vec<(String, String)> = ["p1", "p9", "secret", "boom"]
        .into_iter()
        .map(|p| (p.to_owned(), "m1".to_owned()))
        .collect();
    assert_eq!(gets, want);
}

#[tokio::test]
async fn visibility_is_asked_in_deduplicated_chunks_the_post_service_accepts() {
    let fake = FakePostServer::default();
    let channel = serve_fake_posts(fake.clone()).await;
    let (_dir, api) = api_with_posts(Arc::new(GrpcPostDirectory::new(channel, auth(), None))).await;
    api.react(react_req("m2", "secret", pb::ReactionType::Like))
        .await
        .unwrap();

    // 2,500 distinct ids, each asked twice, the hidden post among them.
    let mut post_ids: Vec<String> = (0..2499).map(|i| format!("x{i}")).collect();
    post_ids.push("secret".into());
    post_ids.extend(post_ids.clone());
    let request = |viewer: Caller| {
        from(
            viewer,
            pb::BatchGetPostStatsRequest {
                post_ids: post_ids.clone(),
                viewer_id: String::new(),
            },
        )
    };

    let stats = api
        .batch_get_post_stats(request(member("m1")))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(stats.len(), 5000);
    assert!(stats.iter().zip(&post_ids).all(|(s, id)| s.post_id == *id));
    assert!(stats.iter().all(|s| s.total_reactions == 0));

    let batches = std::mem::take(&mut fake.calls.lock().unwrap().batches);
    let mut sizes: Vec<usize> = batches.iter().map(|b| b.post_ids.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [500, 1000, 1000]);
    assert!(batches
        .iter()
        .all(|b| b.allow_missing && b.viewer_id == "m1"));
    let asked: HashSet<&String> = batches.iter().flat_map(|b| &b.post_ids).collect();
    assert_eq!(asked.len(), 2500);

    // No ids, no call.
    let none = api
        .batch_get_post_stats(stats_req(member("m1"), &[], ""))
        .await
        .unwrap();
    assert!(none.into_inner().stats.is_empty());
    assert!(fake.calls.lock().unwrap().batches.is_empty());

    // The author sees the count of their post in both places it was asked for.
    let stats = api
        .batch_get_post_stats(request(member("m2")))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(stats[2499].total_reactions, 1);
    assert_eq!(stats[4999].total_reactions, 1);
}

#[tokio::test]
async fn a_down_post_service_makes_writes_and_member_reads_unavailable() {
    // Nothing listens on port 1, so the connection is refused at once.
    let channel = lazy_channel("127.0.0.1:1", quick_limits()).unwrap();
    let (_dir, api) = api_with_posts(Arc::new(GrpcPostDirectory::new(channel, auth(), None))).await;
    let status = api
        .create_comment(comment_req(member("m1"), "m1", "p1"))
        .await
        .unwrap_err();
    assert_status(&status, Code::Unavailable, "post service unavailable");

    // A member's counts depend on what they may see, so they cannot be told without it.
    let status = api
        .batch_get_post_stats(stats_req(member("m1"), &["p1"], ""))
        .await
        .unwrap_err();
    assert_status(&status, Code::Unavailable, "post service unavailable");

    // A service acting for nobody needs no post service.
    let stats = api
        .batch_get_post_stats(stats_req(service("feed"), &["p1"], ""))
        .await
        .unwrap();
    assert_eq!(stats.into_inner().stats[0].comments, 0);
}

fn comment_on(
    h_member: &str,
    post_id: &str,
    parent: &str,
    text: &str,
) -> Request<pb::CreateCommentRequest> {
    let mut req = comment_req(member(h_member), h_member, post_id);
    req.get_mut().parent_comment_id = parent.into();
    req.get_mut().text = text.into();
    req
}

async fn create(h: &Harness, req: Request<pb::CreateCommentRequest>) -> pb::Comment {
    h.api
        .create_comment(req)
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
}

fn list_comments_req(
    caller: Caller,
    parent: &str,
    order: pb::CommentOrder,
    page_size: i32,
    page_token: &str,
) -> Request<pb::ListCommentsRequest> {
    from(
        caller,
        pb::ListCommentsRequest {
            post_id: "p1".into(),
            parent_comment_id: parent.into(),
            order: order as i32,
            page_size,
            page_token: page_token.into(),
            viewer_id: String::new(),
        },
    )
}

#[tokio::test]
async fn unreact_removes_the_members_reaction_once() {
    let h = harness().await;
    h.api
        .react(react_req("m1", "p1", pb::ReactionType::Like))
        .await
        .unwrap();
    let unreact = |caller: Caller, member_id: &str, post_id: &str| {
        from(
            caller,
            pb::UnreactRequest {
                member_id: member_id.into(),
                post_id: post_id.into(),
            },
        )
    };
    let status = h
        .api
        .unreact(unreact(member("m2"), "m1", "p1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = h
        .api
        .unreact(unreact(member("m1"), "m1", "secret"))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
    for _ in 0..2 {
        h.api
            .unreact(unreact(member("m1"), "m1", "p1"))
            .await
            .unwrap();
    }
    let stats = h
        .api
        .batch_get_post_stats(stats_req(member("m1"), &["p1"], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(stats[0].total_reactions, 0);
}

#[tokio::test]
async fn replies_answer_the_top_level_comment_and_deleting_it_takes_them_along() {
    let h = harness().await;
    let top = create(&h, comment_on("m1", "p1", "", "top")).await;
    let r1 = create(&h, comment_on("m2", "p1", &top.id, "reply")).await;
    let r2 = create(&h, comment_on("m3", "p1", &r1.id, "reply to reply")).await;
    assert_eq!(r1.parent_comment_id, top.id);
    assert_eq!(r2.parent_comment_id, top.id);
    for (post, parent) in [("p2", top.id.as_str()), ("p1", "nope")] {
        let status = h
            .api
            .create_comment(comment_on("m2", post, parent, "x"))
            .await
            .unwrap_err();
        assert_status(&status, Code::NotFound, "comment not found");
    }
    assert_eq!(comment_count(&h, "p1").await, 3);

    // Only the author deletes; a stranger is refused, a missing comment is not found.
    let delete = |caller: &str, id: &str| {
        from(
            member(caller),
            pb::DeleteCommentRequest {
                comment_id: id.into(),
            },
        )
    };
    let status = h
        .api
        .delete_comment(delete("m2", &top.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    h.api.delete_comment(delete("m1", &top.id)).await.unwrap();
    assert_eq!(comment_count(&h, "p1").await, 0);
    let status = h
        .api
        .delete_comment(delete("m2", &r1.id))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "comment not found");
    let listed = h
        .api
        .list_comments(list_comments_req(
            member("m1"),
            "",
            pb::CommentOrder::Unspecified,
            0,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.comments.is_empty());
}

#[tokio::test]
async fn only_the_author_edits_a_comment_and_only_its_text() {
    let h = harness().await;
    let c = create(&h, comment_on("m1", "p1", "", "first")).await;
    assert!(!c.edited && c.update_time.is_none());
    let update = |caller: &str, text: &str, paths: &[&str]| {
        from(
            member(caller),
            pb::UpdateCommentRequest {
                comment: Some(pb::Comment {
                    id: c.id.clone(),
                    text: text.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
        )
    };
    let status = h
        .api
        .update_comment(update("m1", "", &["text", "member_id"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["comment.text", "update_mask"]);
    let status = h
        .api
        .update_comment(update("m2", "mine now", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let edited = h
        .api
        .update_comment(update("m1", "second", &["text"]))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(edited.text, "second");
    assert!(edited.edited && edited.update_time.is_some());
    assert_eq!(edited.create_time, c.create_time);
}

#[tokio::test]
async fn comment_reactions_are_one_per_member_and_hidden_comments_are_not_found() {
    let h = harness().await;
    let c = create(&h, comment_on("m1", "p1", "", "hello")).await;
    let react = |member_id: &str, t: pb::ReactionType| {
        from(
            member(member_id),
            pb::ReactToCommentRequest {
                member_id: member_id.into(),
                comment_id: c.id.clone(),
                reaction_type: t as i32,
            },
        )
    };
    h.api
        .react_to_comment(react("m2", pb::ReactionType::Like))
        .await
        .unwrap();
    let got = h
        .api
        .react_to_comment(react("m2", pb::ReactionType::Funny))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(got.total_reactions, 1);
    assert_eq!(
        got.reactions,
        [pb::ReactionCount {
            reaction_type: pb::ReactionType::Funny as i32,
            count: 1
        }]
    );
    let got = h
        .api
        .unreact_to_comment(from(
            member("m2"),
            pb::UnreactToCommentRequest {
                member_id: "m2".into(),
                comment_id: c.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(got.total_reactions, 0);
    // A member blocked with the author cannot tell the comment exists.
    h.graph.block("m1", "m3");
    let status = h
        .api
        .react_to_comment(react("m3", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "comment not found");
}

#[tokio::test]
async fn comments_list_by_relevance_in_pages_without_blocked_authors() {
    let h = harness().await;
    let quiet = create(&h, comment_on("m1", "p1", "", "quiet")).await;
    let busy = create(&h, comment_on("m2", "p1", "", "busy")).await;
    let blocked = create(&h, comment_on("m9", "p1", "", "blocked")).await;
    let reply = create(&h, comment_on("m3", "p1", &busy.id, "reply")).await;
    h.graph.block("m4", "m9");

    let ids = |comments: &[pb::Comment]| comments.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let first = h
        .api
        .list_comments(list_comments_req(
            member("m4"),
            "",
            pb::CommentOrder::MostRelevant,
            2,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    // The blocked author's comment is left out of the page it falls in.
    assert_eq!(ids(&first.comments), [busy.id.as_str()]);
    assert_eq!(first.comments[0].reply_count, 1);
    let second = h
        .api
        .list_comments(list_comments_req(
            member("m4"),
            "",
            pb::CommentOrder::MostRelevant,
            2,
            &first.next_page_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second.comments), [quiet.id.as_str()]);
    assert!(second.next_page_token.is_empty());
    // A service acting for nobody sees everyone, newest first.
    let all = h
        .api
        .list_comments(list_comments_req(
            service("feed"),
            "",
            pb::CommentOrder::Newest,
            0,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&all.comments), [blocked.id, busy.id.clone(), quiet.id]);
    let replies = h
        .api
        .list_comments(list_comments_req(
            member("m4"),
            &busy.id,
            pb::CommentOrder::Unspecified,
            0,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&replies.comments), [reply.id]);
    // A token of one listing is refused by another.
    let status = h
        .api
        .list_comments(list_comments_req(
            member("m4"),
            "",
            pb::CommentOrder::Newest,
            2,
            &first.next_page_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let mut hidden = list_comments_req(member("m1"), "", pb::CommentOrder::Newest, 0, "");
    hidden.get_mut().post_id = "secret".into();
    let status = h.api.list_comments(hidden).await.unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
}

#[tokio::test]
async fn impressions_count_visible_posts_once_a_day_and_seen_posts_are_for_services() {
    let h = harness().await;
    let record = |post_ids: &[&str]| {
        from(
            member("m1"),
            pb::RecordImpressionsRequest {
                member_id: "m1".into(),
                post_ids: post_ids.iter().map(|p| (*p).to_owned()).collect(),
            },
        )
    };
    let counted = |r: Response<pb::RecordImpressionsResponse>| r.into_inner().counted;
    let first = h
        .api
        .record_impressions(record(&["p1", "p2", "p1", "secret", "gone"]))
        .await
        .unwrap();
    assert_eq!(counted(first), 2);
    assert_eq!(h.posts.batches()[0].0, ["p1", "p2", "secret", "gone"]);
    let again = h.api.record_impressions(record(&["p1"])).await.unwrap();
    assert_eq!(counted(again), 0);
    let too_many: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let status = h.api.record_impressions(record(&refs)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["post_ids"]);

    let stats = h
        .api
        .batch_get_post_stats(stats_req(service("feed"), &["p1", "secret"], ""))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!((stats[0].impressions, stats[0].unique_viewers), (1, 1));
    assert_eq!(stats[1].impressions, 0);

    let seen = |caller: Caller| {
        from(
            caller,
            pb::ListSeenPostsRequest {
                member_id: "m1".into(),
                post_ids: vec!["p3".into(), "p2".into(), "secret".into(), "p1".into()],
            },
        )
    };
    let got = h.api.list_seen_posts(seen(service("feed"))).await.unwrap();
    assert_eq!(got.into_inner().post_ids, ["p2", "p1"]);
    let status = h.api.list_seen_posts(seen(member("m1"))).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn reactions_list_connections_first_without_blocked_members() {
    let h = harness().await;
    for m in ["m1", "m2", "m3", "m4", "m5"] {
        h.api
            .react(react_req(m, "p1", pb::ReactionType::Like))
            .await
            .unwrap();
    }
    h.api
        .react(react_req("m6", "p1", pb::ReactionType::Love))
        .await
        .unwrap();
    h.graph.connect("m9", "m2");
    h.graph.connect("m9", "m4");
    h.graph.block("m9", "m5");
    let list = |page_token: &str, reaction_type: pb::ReactionType| {
        from(
            member("m9"),
            pb::ListReactionsRequest {
                post_id: "p1".into(),
                reaction_type: reaction_type as i32,
                page_size: 2,
                page_token: page_token.into(),
                viewer_id: String::new(),
            },
        )
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .api
            .list_reactions(list(&token, pb::ReactionType::Unspecified))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.reactions.into_iter().map(|r| r.member_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // Connections first (newest first), then everyone else newest first; m5 is blocked.
    assert_eq!(seen, ["m4", "m2", "m6", "m3", "m1"]);
    let loves = h
        .api
        .list_reactions(list("", pb::ReactionType::Love))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loves.reactions.len(), 1);
    let status = h
        .api
        .list_reactions(list("garbage", pb::ReactionType::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}

#[tokio::test]
async fn a_service_records_a_share_for_any_member() {
    let h = harness().await;
    let share = h
        .api
        .record_share(share_req(service("post"), "m2", "p1"))
        .await
        .unwrap()
        .into_inner()
        .share
        .unwrap();
    assert_eq!(share.member_id, "m2");
    // Still only on a post the member may see.
    let status = h
        .api
        .record_share(share_req(service("post"), "m1", "secret"))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "post not found");
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn import_request() -> pb::ImportEngagementRequest {
    pb::ImportEngagementRequest {
        reactions: vec![pb::ImportedReaction {
            post_id: "x1".into(),
            member_id: "m1".into(),
            reaction_type: pb::ReactionType::Love as i32,
            create_time: at(1_600_000_000),
        }],
        comments: vec![pb::ImportedComment {
            id: "c1".into(),
            post_id: "x1".into(),
            member_id: "m2".into(),
            text: "imported".into(),
            create_time: at(1_600_000_001),
        }],
        shares: vec![pb::ImportedShare {
            id: "s1".into(),
            post_id: "x1".into(),
            member_id: "m3".into(),
            create_time: at(1_600_000_002),
        }],
        impressions: vec![pb::ImportedImpression {
            post_id: "x1".into(),
            member_id: "m4".into(),
            view_time: at(1_600_000_003),
        }],
    }
}

#[tokio::test]
async fn imports_engagement_without_asking_the_post_service_and_skips_a_retry() {
    let h = harness().await;
    // `x1` is no post the fake post service knows: the importer vouches for it.
    let done = h
        .api
        .import_engagement(from(service("seed"), import_request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            done.reactions,
            done.comments,
            done.shares,
            done.impressions,
            done.skipped
        ),
        (1, 1, 1, 1, 0)
    );
    let stats = h
        .api
        .batch_get_post_stats(from(
            service("seed"),
            pb::BatchGetPostStatsRequest {
                post_ids: vec!["x1".into()],
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(
        (stats[0].total_reactions, stats[0].comments, stats[0].shares),
        (1, 1, 1)
    );
    let again = h
        .api
        .import_engagement(from(service("seed"), import_request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            again.reactions,
            again.comments,
            again.shares,
            again.impressions,
            again.skipped
        ),
        (0, 0, 0, 0, 4)
    );
}

#[tokio::test]
async fn rejects_every_invalid_imported_item_at_once() {
    let h = harness().await;
    let mut req = import_request();
    req.reactions[0].reaction_type = pb::ReactionType::Unspecified as i32;
    req.reactions[0].create_time = None;
    req.comments[0].text = " \n ".into();
    req.comments[0].id = "bad id".into();
    req.shares[0].member_id = String::new();
    req.impressions[0].view_time = at(now_micros() / 1_000_000 + 3600);
    let err = h
        .api
        .import_engagement(from(service("seed"), req))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "reactions[0].reaction_type",
            "reactions[0].create_time",
            "comments[0].id",
            "comments[0].text",
            "shares[0].member_id",
            "impressions[0].view_time",
        ]
    );
    assert!(err
        .message()
        .contains("impressions[0].view_time: must not be in the future"));
    assert!(err
        .message()
        .contains("reactions[0].create_time: is required"));
}

#[tokio::test]
async fn rejects_more_than_ten_thousand_imported_items() {
    let h = harness().await;
    let mut req = import_request();
    let impression = req.impressions[0].clone();
    req.impressions = vec![impression; 9998];
    let err = h
        .api
        .import_engagement(from(service("seed"), req))
        .await
        .unwrap_err();
    assert_status(
        &err,
        Code::InvalidArgument,
        "request: must have at most 10000 items in all four lists, got 10001",
    );
}

#[tokio::test]
async fn imports_are_for_services_only() {
    let h = harness().await;
    let err = h
        .api
        .import_engagement(from(member("m1"), import_request()))
        .await
        .unwrap_err();
    assert_status(
        &err,
        Code::PermissionDenied,
        "this method is for pronet services only",
    );
}

// Negative feedback.

fn hide_req(caller: Caller, member_id: &str, post_id: &str) -> Request<pb::HidePostRequest> {
    from(
        caller,
        pb::HidePostRequest {
            member_id: member_id.into(),
            post_id: post_id.into(),
        },
    )
}

fn mute_author_req(member_id: &str, author_id: &str) -> Request<pb::MuteAuthorRequest> {
    from(
        member(member_id),
        pb::MuteAuthorRequest {
            member_id: member_id.into(),
            author_id: author_id.into(),
        },
    )
}

fn mute_tag_req(member_id: &str, hashtag: &str) -> Request<pb::MuteHashtagRequest> {
    from(
        member(member_id),
        pb::MuteHashtagRequest {
            member_id: member_id.into(),
            hashtag: hashtag.into(),
        },
    )
}

async fn mutes(h: &Harness, member_id: &str) -> pb::ListMutesResponse {
    h.api
        .list_mutes(from(
            member(member_id),
            pb::ListMutesRequest {
                member_id: member_id.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn hiding_a_post_is_for_the_member_themself_and_only_a_post_they_may_see() {
    let h = harness().await;
    let status = h
        .api
        .hide_post(hide_req(member("m1"), "", ""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["member_id", "post_id"]);
    let status = h
        .api
        .hide_post(hide_req(member("m2"), "m1", "p1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = h
        .api
        .hide_post(hide_req(service("feed"), "m1", "p1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(h.posts.calls(), 0, "refused before any lookup");
    for post in ["secret", "nope"] {
        let status = h
            .api
            .hide_post(hide_req(member("m1"), "m1", post))
            .await
            .unwrap_err();
        assert_status(&status, Code::NotFound, "post not found");
    }
    let first = h
        .api
        .hide_post(hide_req(member("m1"), "m1", "p1"))
        .await
        .unwrap()
        .into_inner()
        .hide_time;
    let again = h
        .api
        .hide_post(hide_req(member("m1"), "m1", "p1"))
        .await
        .unwrap()
        .into_inner()
        .hide_time;
    assert!(first.is_some());
    assert_eq!(first, again, "a repeat keeps the first hide");
    let unhide = |post: &str| {
        from(
            member("m1"),
            pb::UnhidePostRequest {
                member_id: "m1".into(),
                post_id: post.into(),
            },
        )
    };
    assert!(
        h.api
            .unhide_post(unhide("p1"))
            .await
            .unwrap()
            .into_inner()
            .was_hidden
    );
    assert!(
        !h.api
            .unhide_post(unhide("p1"))
            .await
            .unwrap()
            .into_inner()
            .was_hidden
    );
}

#[tokio::test]
async fn muted_hashtags_are_normalized_checked_and_listed() {
    let h = harness().await;
    let status = h
        .api
        .mute_hashtag(mute_tag_req("m1", "#no spaces"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["hashtag"]);
    let stored = h
        .api
        .mute_hashtag(mute_tag_req("m1", "#Crypto"))
        .await
        .unwrap()
        .into_inner()
        .hashtag;
    assert_eq!(stored, "crypto");
    h.api
        .mute_hashtag(mute_tag_req("m1", "sales"))
        .await
        .unwrap();
    assert_eq!(mutes(&h, "m1").await.hashtags, ["sales", "crypto"]);
    let was_muted = h
        .api
        .unmute_hashtag(from(
            member("m1"),
            pb::UnmuteHashtagRequest {
                member_id: "m1".into(),
                hashtag: "CRYPTO".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .was_muted;
    assert!(was_muted);
    assert_eq!(mutes(&h, "m1").await.hashtags, ["sales"]);
    // Another member's list is theirs only.
    let status = h
        .api
        .list_mutes(from(
            member("m2"),
            pb::ListMutesRequest {
                member_id: "m1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn muting_an_author_needs_another_member_who_exists() {
    let h = harness().await;
    let status = h
        .api
        .mute_author(mute_author_req("m1", "m1"))
        .await
        .unwrap_err();
    assert_status(
        &status,
        Code::InvalidArgument,
        "author_id: must be another member than member_id",
    );
    let status = h
        .api
        .mute_author(mute_author_req("m1", "ghost"))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "author not found");
    h.api
        .mute_author(mute_author_req("m1", "m2"))
        .await
        .unwrap();
    h.api
        .mute_author(mute_author_req("m1", "m2"))
        .await
        .unwrap();
    assert_eq!(mutes(&h, "m1").await.author_ids, ["m2"]);
    let was_muted = h
        .api
        .unmute_author(from(
            member("m1"),
            pb::UnmuteAuthorRequest {
                member_id: "m1".into(),
                author_id: "m2".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .was_muted;
    assert!(was_muted);
    assert!(mutes(&h, "m1").await.author_ids.is_empty());
}

#[tokio::test]
async fn mutes_past_the_cap_are_resource_exhausted() {
    let h = harness().await;
    for i in 0..crate::domain::MAX_MUTES {
        h.api
            .mute_hashtag(mute_tag_req("m1", &format!("tag{i}")))
            .await
            .unwrap();
    }
    let status = h
        .api
        .mute_hashtag(mute_tag_req("m1", "onemore"))
        .await
        .unwrap_err();
    assert_status(
        &status,
        Code::ResourceExhausted,
        "the member already has 1000 muted hashtags; take one back first",
    );
    // A held one is no new mute.
    h.api
        .mute_hashtag(mute_tag_req("m1", "tag7"))
        .await
        .unwrap();
}
