//! Bulk imports over gRPC with a service token: posts with their times and hashtags, then
//! engagement with exact counts, read back through the ordinary reads; a retry writes nothing.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::post::v1 as ppb;
use prost_types::Timestamp;
use tonic::Code;

use crate::helpers::{assert_bad_request, spawn_app};

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn imported_post(id: &str, author_id: &str, text: &str, seconds: i64) -> ppb::ImportedPost {
    ppb::ImportedPost {
        id: id.into(),
        author_id: author_id.into(),
        text: text.into(),
        visibility: ppb::Visibility::Public as i32,
        create_time: at(seconds),
    }
}

fn reaction(post_id: &str, member_id: &str, t: epb::ReactionType) -> epb::ImportedReaction {
    epb::ImportedReaction {
        post_id: post_id.into(),
        member_id: member_id.into(),
        reaction_type: t as i32,
        create_time: at(1_600_000_500),
    }
}

#[tokio::test]
async fn imported_posts_and_engagement_read_back_with_exact_counts() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("import_ada").await;
    let bob = app.member("import_bob").await;
    let mut posts = app.posts.clone();
    let mut engagement = app.engagement.clone();

    let batch = ppb::ImportPostsRequest {
        posts: vec![
            imported_post("imp-1", &ada.id, "Imported #Rust notes", 1_600_000_000),
            imported_post("imp-2", &bob.id, "Imported too #rust #wasm", 1_600_000_100),
        ],
    };
    let done = posts
        .import_posts(app.service_req(batch.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.imported, done.skipped), (2, 0));
    let retried = posts
        .import_posts(app.service_req(batch))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((retried.imported, retried.skipped), (0, 2));

    // An author without a profile fails the whole batch, naming the field.
    let err = posts
        .import_posts(app.service_req(ppb::ImportPostsRequest {
            posts: vec![
                imported_post("imp-3", &ada.id, "fine", 1_600_000_200),
                imported_post("imp-4", "nobody_here", "orphan", 1_600_000_200),
            ],
        }))
        .await
        .unwrap_err();
    assert_bad_request(&err, &["posts[1].author_id"]);
    // Members may not import.
    let err = posts
        .import_posts(app.req(
            &ada,
            ppb::ImportPostsRequest {
                posts: vec![imported_post("imp-5", &ada.id, "mine", 1_600_000_300)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A member reads an imported post like any other.
    let post = posts
        .get_post(app.req(
            &bob,
            ppb::GetPostRequest {
                post_id: "imp-1".into(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(post.author_id, ada.id);
    assert_eq!(post.hashtags, ["rust"]);
    assert_eq!(post.create_time, at(1_600_000_000));
    let missing = posts
        .get_post(app.service_req(ppb::GetPostRequest {
            post_id: "imp-3".into(),
            viewer_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let tagged = posts
        .list_posts_by_hashtag(app.req(
            &ada,
            ppb::ListPostsByHashtagRequest {
                hashtag: "rust".into(),
                page_size: 10,
                page_token: String::new(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .posts;
    let ids: Vec<&str> = tagged.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["imp-2", "imp-1"]);

    let engagement_batch = epb::ImportEngagementRequest {
        reactions: vec![
            reaction("imp-1", &bob.id, epb::ReactionType::Like),
            reaction("imp-1", "m-elsewhere", epb::ReactionType::Celebrate),
            reaction("imp-2", &ada.id, epb::ReactionType::Like),
            // Ada changes her mind: one reaction, Insightful.
            reaction("imp-2", &ada.id, epb::ReactionType::Insightful),
        ],
        comments: vec![epb::ImportedComment {
            id: "imp-c1".into(),
            post_id: "imp-1".into(),
            member_id: bob.id.clone(),
            text: "An imported comment".into(),
            create_time: at(1_600_000_600),
        }],
        shares: vec![epb::ImportedShare {
            id: "imp-s1".into(),
            post_id: "imp-1".into(),
            member_id: bob.id.clone(),
            create_time: at(1_600_000_700),
        }],
        impressions: vec![
            epb::ImportedImpression {
                post_id: "imp-1".into(),
                member_id: bob.id.clone(),
                view_time: at(1_600_000_800),
            },
            // The next day: another impression, the same viewer.
            epb::ImportedImpression {
                post_id: "imp-1".into(),
                member_id: bob.id.clone(),
                view_time: at(1_600_000_800 + 86_400),
            },
        ],
    };
    let done = engagement
        .import_engagement(app.service_req(engagement_batch.clone()))
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
        (3, 1, 1, 2, 1)
    );
    let retried = engagement
        .import_engagement(app.service_req(engagement_batch))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            retried.reactions,
            retried.comments,
            retried.shares,
            retried.impressions
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(retried.skipped, 8);

    let stats = engagement
        .batch_get_post_stats(app.service_req(epb::BatchGetPostStatsRequest {
            post_ids: vec!["imp-1".into(), "imp-2".into()],
            viewer_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .stats;
    let counts = |s: &epb::PostStats| {
        let reactions: Vec<(i32, i64)> = s
            .reactions
            .iter()
            .map(|r| (r.reaction_type, r.count))
            .collect();
        (
            reactions,
            s.total_reactions,
            s.comments,
            s.shares,
            s.impressions,
            s.unique_viewers,
        )
    };
    assert_eq!(
        counts(&stats[0]),
        (
            vec![
                (epb::ReactionType::Like as i32, 1),
                (epb::ReactionType::Celebrate as i32, 1)
            ],
            2,
            1,
            1,
            2,
            1
        )
    );
    assert_eq!(
        counts(&stats[1]),
        (
            vec![(epb::ReactionType::Insightful as i32, 1)],
            1,
            0,
            0,
            0,
            0
        )
    );
}
