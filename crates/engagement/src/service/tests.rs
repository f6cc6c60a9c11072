use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pronet_common::upstream::{lazy_channel, CallLimits};
use pronet_proto::post::v1 as post_pb;
use pronet_proto::post::v1::post_service_server::{PostService, PostServiceServer};
use pronet_proto::Timestamp;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::Code;

use super::*;
use crate::error::EngagementError;
use crate::posts::GrpcPostDirectory;
use crate::store::sqlite::SqliteEngagementStore;

/// Posts that exist: `p1`, `p2`, `p3`. Counts the calls, so tests can tell that a bad request
/// never reached the post service.
#[derive(Default)]
struct KnownPosts {
    calls: AtomicUsize,
}

#[async_trait]
impl PostDirectory for KnownPosts {
    async fn require_post(&self, post_id: &str) -> Result<(), EngagementError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match post_id {
            "p1" | "p2" | "p3" => Ok(()),
            _ => Err(EngagementError::NotFound("post")),
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    api: EngagementApi,
    posts: Arc<KnownPosts>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .unwrap();
    let posts = Arc::new(KnownPosts::default());
    let api = EngagementApi::new(Arc::new(store), posts.clone());
    Harness {
        _dir: dir,
        api,
        posts,
    }
}

async fn api_with_posts(posts: Arc<dyn PostDirectory>) -> (tempfile::TempDir, EngagementApi) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEngagementStore::open(&dir.path().join("engagement.db"))
        .await
        .unwrap();
    (dir, EngagementApi::new(Arc::new(store), posts))
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

fn react_req(member_id: &str, post_id: &str, t: pb::ReactionType) -> Request<pb::ReactRequest> {
    Request::new(pb::ReactRequest {
        member_id: member_id.into(),
        post_id: post_id.into(),
        reaction_type: t as i32,
    })
}

fn since(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
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
    assert_eq!(h.posts.calls.load(Ordering::SeqCst), 0);

    let mut req = react_req("m1", "p1", pb::ReactionType::Like);
    req.get_mut().reaction_type = 99;
    let status = h.api.react(req).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["reaction_type"]);
    assert!(status.message().contains("REACTION_TYPE_LIKE"));
}

#[tokio::test]
async fn reacting_to_a_missing_post_is_not_found() {
    let h = harness().await;
    let status = h
        .api
        .react(react_req("m1", "nope", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "post not found");
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
        Request::new(pb::CreateCommentRequest {
            member_id: "m1".into(),
            post_id: "p1".into(),
            text,
        })
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
    assert_eq!(h.posts.calls.load(Ordering::SeqCst), 0);

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

#[tokio::test]
async fn a_repeat_share_returns_the_first() {
    let h = harness().await;
    let req = || {
        Request::new(pb::RecordShareRequest {
            member_id: "m1".into(),
            post_id: "p2".into(),
        })
    };
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
        .batch_get_post_stats(Request::new(pb::BatchGetPostStatsRequest {
            post_ids: vec!["unknown".into(), "p1".into()],
        }))
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
            },
        ]
    );
}

#[tokio::test]
async fn stats_requests_are_bounded_and_every_id_checked() {
    let h = harness().await;
    let stats = |post_ids: Vec<String>| {
        h.api
            .batch_get_post_stats(Request::new(pb::BatchGetPostStatsRequest { post_ids }))
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
    assert_eq!(fields.len(), MAX_LISTED_ITEM_VIOLATIONS + 1);
    assert_eq!(fields.last().map(String::as_str), Some("post_ids"));
    assert!(status.message().contains("80 more invalid ids"));

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
}

#[tokio::test]
async fn recent_activity_needs_since_and_a_sane_maximum() {
    let h = harness().await;
    let status = h
        .api
        .list_recent_activity(Request::new(pb::ListRecentActivityRequest {
            member_ids: vec!["m1".into(), "bad id".into()],
            since: None,
            max_activities: -1,
        }))
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
            .list_recent_activity(Request::new(pb::ListRecentActivityRequest {
                member_ids: vec!["m1".into()],
                since: Some(bad),
                max_activities: 0,
            }))
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["since"]);
    }

    let status = h
        .api
        .list_recent_activity(Request::new(pb::ListRecentActivityRequest {
            member_ids: vec!["m1".into(); 5001],
            since: since(0),
            max_activities: 0,
        }))
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
        .create_comment(Request::new(pb::CreateCommentRequest {
            member_id: "m2".into(),
            post_id: "p2".into(),
            text: "nice".into(),
        }))
        .await
        .unwrap();
    h.api
        .record_share(Request::new(pb::RecordShareRequest {
            member_id: "m1".into(),
            post_id: "p3".into(),
        }))
        .await
        .unwrap();
    h.api
        .react(react_req("m9", "p1", pb::ReactionType::Like))
        .await
        .unwrap();

    let list = |max_activities| {
        h.api
            .list_recent_activity(Request::new(pb::ListRecentActivityRequest {
                member_ids: vec!["m1".into(), "m2".into()],
                since: since(0),
                max_activities,
            }))
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

/// A post service that knows `p1` and fails with INTERNAL for `boom`.
struct FakePostServer;

#[tonic::async_trait]
impl PostService for FakePostServer {
    async fn create_post(
        &self,
        _: Request<post_pb::CreatePostRequest>,
    ) -> Result<Response<post_pb::CreatePostResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_post(
        &self,
        request: Request<post_pb::GetPostRequest>,
    ) -> Result<Response<post_pb::GetPostResponse>, Status> {
        match request.into_inner().post_id.as_str() {
            "p1" => Ok(Response::new(post_pb::GetPostResponse {
                post: Some(post_pb::Post {
                    id: "p1".into(),
                    ..Default::default()
                }),
            })),
            "boom" => Err(Status::internal("database on fire")),
            _ => Err(Status::not_found("post not found")),
        }
    }

    async fn batch_get_posts(
        &self,
        _: Request<post_pb::BatchGetPostsRequest>,
    ) -> Result<Response<post_pb::BatchGetPostsResponse>, Status> {
        Err(Status::unimplemented("fake"))
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
}

fn quick_limits() -> CallLimits {
    CallLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn the_post_service_decides_over_grpc_whether_a_post_exists() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(PostServiceServer::new(FakePostServer))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = lazy_channel(&addr.to_string(), quick_limits()).unwrap();
    let (_dir, api) = api_with_posts(Arc::new(GrpcPostDirectory::new(channel))).await;

    let ok = api
        .react(react_req("m1", "p1", pb::ReactionType::Like))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().reaction.unwrap().post_id, "p1");

    let missing = api
        .react(react_req("m1", "p2", pb::ReactionType::Like))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "post not found");

    let failed = api
        .record_share(Request::new(pb::RecordShareRequest {
            member_id: "m1".into(),
            post_id: "boom".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Internal);
    assert_eq!(failed.message(), "internal error");
}

#[tokio::test]
async fn a_down_post_service_makes_writes_unavailable() {
    // Nothing listens on port 1, so the connection is refused at once.
    let channel = lazy_channel("127.0.0.1:1", quick_limits()).unwrap();
    let (_dir, api) = api_with_posts(Arc::new(GrpcPostDirectory::new(channel))).await;
    let status = api
        .create_comment(Request::new(pb::CreateCommentRequest {
            member_id: "m1".into(),
            post_id: "p1".into(),
            text: "hello".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "post service unavailable");

    // Reads need no post service.
    let stats = api
        .batch_get_post_stats(Request::new(pb::BatchGetPostStatsRequest {
            post_ids: vec!["p1".into()],
        }))
        .await
        .unwrap();
    assert_eq!(stats.into_inner().stats[0].comments, 0);
}
