//! Bad input for every RPC gets INVALID_ARGUMENT naming every bad field at once; unknown ids
//! get NOT_FOUND; a dependency that is down gets UNAVAILABLE.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::helpers::{assert_bad_request, spawn_app};

const BAD_TOKEN: &str = "not-a-token";

#[tokio::test]
async fn every_profile_rpc_rejects_bad_input_with_all_violations() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let me = app.member("tester").await;
    let mut c = app.profiles.clone();

    let e = c
        .create_profile(app.req(
            &me,
            prpb::CreateProfileRequest {
                profile: None,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["profile"]);
    let e = c
        .create_profile(app.req(
            &me,
            prpb::CreateProfileRequest {
                profile: Some(prpb::Profile {
                    handle: "a b".into(),
                    display_name: "   ".into(),
                    headline: "h".repeat(221),
                    skills: vec![String::new()],
                    summary: "bell\u{7}".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(
        &e,
        &[
            "profile.handle",
            "profile.display_name",
            "profile.headline",
            "profile.summary",
            "profile.skills",
        ],
    );

    let e = c
        .get_profile(app.req(&me, prpb::GetProfileRequest { lookup: None }))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["lookup"]);
    let e = c
        .get_profile(app.req(
            &me,
            prpb::GetProfileRequest {
                lookup: Some(prpb::get_profile_request::Lookup::MemberId("../etc".into())),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id"]);

    let e = c
        .batch_get_profiles(app.req(
            &me,
            prpb::BatchGetProfilesRequest {
                member_ids: vec!["ok".into(), String::new()],
                allow_missing: false,
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_ids[1]"]);

    let e = c
        .update_profile(app.req(
            &me,
            prpb::UpdateProfileRequest {
                profile: Some(prpb::Profile {
                    id: String::new(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["create_time".into(), "display_name".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(
        &e,
        &["profile.id", "update_mask.paths[0]", "profile.display_name"],
    );

    let e = c
        .create_invitation(app.req(
            &me,
            prpb::CreateInvitationRequest {
                inviter_id: "same".into(),
                invitee_id: "same".into(),
                message: "m".repeat(301),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["invitee_id", "message"]);

    let e = c
        .accept_invitation(app.req(&me, prpb::AcceptInvitationRequest::default()))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["invitation_id", "member_id"]);

    let e = c
        .list_invitations(app.req(
            &me,
            prpb::ListInvitationsRequest {
                member_id: String::new(),
                direction: 99,
                page_size: -1,
                page_token: BAD_TOKEN.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "direction", "page_size", "page_token"]);

    let e = c
        .list_connections(app.req(
            &me,
            prpb::ListConnectionsRequest {
                member_id: String::new(),
                page_size: -5,
                page_token: BAD_TOKEN.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "page_size", "page_token"]);

    let e = c
        .follow(app.req(
            &me,
            prpb::FollowRequest {
                member_id: String::new(),
                target: None,
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "target"]);
    let e = c
        .follow(app.req(
            &me,
            prpb::FollowRequest {
                member_id: "someone".into(),
                target: Some(prpb::follow_request::Target::Hashtag("#not a tag".into())),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["hashtag"]);

    let e = c
        .list_following(app.req(
            &me,
            prpb::ListFollowingRequest {
                member_id: "x".repeat(65),
                page_size: -1,
                page_token: BAD_TOKEN.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "page_size", "page_token"]);
}

#[tokio::test]
async fn every_post_rpc_rejects_bad_input_with_all_violations() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let me = app.member("tester").await;
    let mut c = app.posts.clone();

    let e = c
        .create_post(app.req(
            &me,
            ppb::CreatePostRequest {
                author_id: String::new(),
                text: String::new(),
                visibility: ppb::Visibility::Unspecified as i32,
                create_time: Some(Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                }),
                request_id: String::new(),
                reshare_of: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["author_id", "text", "visibility", "create_time"]);
    let e = c
        .create_post(app.req(
            &me,
            ppb::CreatePostRequest {
                author_id: "author".into(),
                text: "x".repeat(3001),
                visibility: 42,
                create_time: None,
                request_id: String::new(),
                reshare_of: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["text", "visibility"]);

    let e = c
        .get_post(app.req(
            &me,
            ppb::GetPostRequest {
                post_id: String::new(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["post_id"]);

    let e = c
        .batch_get_posts(app.req(
            &me,
            ppb::BatchGetPostsRequest {
                post_ids: vec!["fine".into(), "not fine".into()],
                allow_missing: true,
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["post_ids[1]"]);

    let e = c
        .list_posts_by_author(app.req(
            &me,
            ppb::ListPostsByAuthorRequest {
                author_id: String::new(),
                page_size: -1,
                page_token: BAD_TOKEN.into(),
                viewer_id: String::new(),
                start_time: None,
                end_time: None,
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["author_id", "page_size", "page_token"]);

    let e = c
        .list_recent_posts_by_authors(app.service_req(ppb::ListRecentPostsByAuthorsRequest {
            author_ids: vec!["a b".into()],
            hashtags: vec!["#".into()],
            since: None,
            max_posts: -1,
            max_posts_per_author: -1,
        }))
        .await
        .unwrap_err();
    assert_bad_request(
        &e,
        &[
            "author_ids[0]",
            "hashtags[0]",
            "since",
            "max_posts",
            "max_posts_per_author",
        ],
    );
}

#[tokio::test]
async fn every_engagement_and_feed_rpc_rejects_bad_input_with_all_violations() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let me = app.member("tester").await;
    let mut c = app.engagement.clone();

    let e = c
        .react(app.req(
            &me,
            epb::ReactRequest {
                member_id: String::new(),
                post_id: "p q".into(),
                reaction_type: epb::ReactionType::Unspecified as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "post_id", "reaction_type"]);

    let e = c
        .create_comment(app.req(
            &me,
            epb::CreateCommentRequest {
                member_id: "m".into(),
                post_id: String::new(),
                text: "c".repeat(1251),
                request_id: String::new(),
                parent_comment_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["post_id", "text"]);

    let e = c
        .record_share(app.req(&me, epb::RecordShareRequest::default()))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "post_id"]);

    let e = c
        .batch_get_post_stats(app.req(
            &me,
            epb::BatchGetPostStatsRequest {
                post_ids: vec![String::new()],
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["post_ids[0]"]);

    let e = c
        .list_recent_activity(app.service_req(epb::ListRecentActivityRequest {
            member_ids: vec!["ok".into()],
            since: None,
            max_activities: -3,
        }))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["since", "max_activities"]);

    let mut f = app.feed.clone();
    let e = f
        .get_feed(app.req(
            &me,
            fpb::GetFeedRequest {
                member_id: String::new(),
                page_size: -1,
                page_token: BAD_TOKEN.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_bad_request(&e, &["member_id", "page_size", "page_token"]);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let me = app.member("member").await;
    let member = &me;
    let mut posts = app.posts.clone();
    let e = posts
        .get_post(app.req(
            &me,
            ppb::GetPostRequest {
                post_id: "nope".into(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = posts
        .batch_get_posts(app.req(
            &me,
            ppb::BatchGetPostsRequest {
                post_ids: vec!["nope".into()],
                allow_missing: false,
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let mut eng = app.engagement.clone();
    let e = eng
        .react(app.req(
            &me,
            epb::ReactRequest {
                member_id: member.id.clone(),
                post_id: "nope".into(),
                reaction_type: epb::ReactionType::Like as i32,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), "post not found");
    let e = eng
        .create_comment(app.req(
            &me,
            epb::CreateCommentRequest {
                member_id: member.id.clone(),
                post_id: "nope".into(),
                text: "hello".into(),
                request_id: String::new(),
                parent_comment_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let mut profiles = app.profiles.clone();
    let e = profiles
        .get_profile(app.req(
            &me,
            prpb::GetProfileRequest {
                lookup: Some(prpb::get_profile_request::Lookup::MemberId("nope".into())),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = profiles
        .list_connections(app.service_req(prpb::ListConnectionsRequest {
            member_id: "nope".into(),
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_dependency_that_is_down_makes_the_caller_unavailable() {
    use pronet::suite::{serve_service, Dependencies, ServiceKind, ServiceOptions};
    use pronet_common::auth::{with_token, AuthConfig};
    use pronet_common::shutdown::Shutdown;
    use pronet_common::upstream::CallLimits;
    use std::sync::Arc;
    use std::time::Duration;

    let auth = Arc::new(AuthConfig::hs256(&[3u8; 32], "pronet").unwrap());
    let token = auth
        .member_token("someone", Duration::from_secs(60))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1 of loopback.
    let down = "127.0.0.1:1".to_string();
    let opts = ServiceOptions {
        database: pronet_common::db::DatabaseUrl::Sqlite(dir.path().join("engagement.db")),
        dependencies: Dependencies {
            profile: down.clone(),
            post: down.clone(),
            engagement: down,
        },
        drain_delay: Duration::ZERO,
        feed_window: Duration::from_secs(86_400),
        feed_memory_budget: None,
        feed_saved_index: None,
        ranking_profiles: None,
        call_limits: CallLimits {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
        },
        auth,
        metrics: None,
        nats: None,
        shutdown: Shutdown::new(),
        admission: Default::default(),
    };
    let stop = Shutdown::new();
    let mut addrs = Vec::new();
    for kind in [ServiceKind::Feed, ServiceKind::Engagement] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let (opts, stop) = (opts.clone(), stop.clone());
        tokio::spawn(async move { serve_service(kind, listener, &opts, stop).await });
    }
    let mut feed = pronet_proto::feed::v1::feed_service_client::FeedServiceClient::new(
        crate::helpers::channel(addrs[0]).await,
    );
    let e = feed
        .get_feed(with_token(
            fpb::GetFeedRequest {
                member_id: "someone".into(),
                page_size: 5,
                page_token: String::new(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    // The feed's index cannot load without the services whose events feed it: it says so,
    // and its health says it cannot serve.
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "the feed index is still loading");
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(crate::helpers::channel(addrs[0]).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "pronet.feed.v1.FeedService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );

    let mut eng =
        pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient::new(
            crate::helpers::channel(addrs[1]).await,
        );
    let e = eng
        .react(with_token(
            epb::ReactRequest {
                member_id: "someone".into(),
                post_id: "post".into(),
                reaction_type: epb::ReactionType::Like as i32,
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "post service unavailable");
    stop.trigger();
}
