//! Posts and engagement in depth, end to end: edits, deletes, reshares, mentions, threads,
//! impressions.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::post::v1 as ppb;
use tonic::Code;

use crate::helpers::{spawn_app, Member, TestApp};

async fn stats(app: &TestApp, viewer: &Member, post: &ppb::Post) -> epb::PostStats {
    app.engagement
        .clone()
        .batch_get_post_stats(app.req(
            viewer,
            epb::BatchGetPostStatsRequest {
                post_ids: vec![post.id.clone()],
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .stats
        .remove(0)
}

fn create(
    author: &Member,
    text: &str,
    vis: ppb::Visibility,
    reshare_of: &str,
) -> ppb::CreatePostRequest {
    ppb::CreatePostRequest {
        author_id: author.id.clone(),
        text: text.into(),
        visibility: vis as i32,
        create_time: None,
        request_id: String::new(),
        reshare_of: reshare_of.into(),
    }
}

#[tokio::test]
async fn edits_reshares_mentions_and_deletes() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_l").await;
    let bob = app.member("bob_b").await;
    app.connect(&ada, &bob).await;
    let mut posts = app.posts.clone();

    // Mentions resolve to members; unknown handles stay plain text.
    let post = posts
        .create_post(app.req(
            &ada,
            create(
                &ada,
                "Thanks @BOB_B and @nobody_here #Rust",
                ppb::Visibility::Public,
                "",
            ),
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(post.mentions, ["bob_b"]);
    assert_eq!(post.mentioned_members.len(), 1);
    assert_eq!(post.mentioned_members[0].member_id, bob.id);
    assert_eq!(post.hashtags, ["rust"]);

    // Only the author edits; the edit re-extracts hashtags and says so.
    let edit = |who: &Member| {
        app.req(
            who,
            ppb::UpdatePostRequest {
                post: Some(ppb::Post {
                    id: post.id.clone(),
                    text: "Now about #MentalHealth".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        )
    };
    assert_eq!(
        posts.update_post(edit(&bob)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let edited = posts
        .update_post(edit(&ada))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert!(edited.edited);
    assert!(edited.update_time.is_some());
    assert_eq!(edited.hashtags, ["mentalhealth"]);

    // A reshare shows the original and records a share on it.
    let reshare = posts
        .create_post(app.req(
            &bob,
            create(&bob, "Worth reading", ppb::Visibility::Public, &post.id),
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(reshare.reshare_of, post.id);
    assert_eq!(reshare.reshared_post.as_ref().unwrap().id, post.id);
    assert_eq!(stats(&app, &ada, &post).await.shares, 1);

    // A connections-only post cannot be reshared publicly.
    let private = app
        .post(&ada, "Only for my network", ppb::Visibility::Connections)
        .await;
    let err = posts
        .create_post(app.req(&bob, create(&bob, "", ppb::Visibility::Public, &private.id)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Deleted: gone from every read, its engagement counted nowhere.
    app.react(&bob, &post, epb::ReactionType::Love).await;
    assert_eq!(stats(&app, &bob, &post).await.total_reactions, 1);
    posts
        .delete_post(app.req(
            &ada,
            ppb::DeletePostRequest {
                post_id: post.id.clone(),
            },
        ))
        .await
        .unwrap();
    let err = posts
        .get_post(app.req(
            &bob,
            ppb::GetPostRequest {
                post_id: post.id.clone(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(stats(&app, &bob, &post).await.total_reactions, 0);
    let feed: Vec<String> = app
        .whole_feed(&bob, 20)
        .await
        .into_iter()
        .map(|i| i.post.unwrap().id)
        .collect();
    assert!(!feed.contains(&post.id));
}

#[tokio::test]
async fn threads_reactions_and_impressions_keep_exact_counts() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_l").await;
    let bob = app.member("bob_b").await;
    let post = app
        .post(&ada, "Tell me about your week", ppb::Visibility::Public)
        .await;
    let mut eng = app.engagement.clone();
    let comment = |who: &Member, text: &str, parent: &str| {
        app.req(
            who,
            epb::CreateCommentRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                text: text.into(),
                request_id: String::new(),
                parent_comment_id: parent.into(),
            },
        )
    };
    let top = eng
        .create_comment(comment(&bob, "Busy!", ""))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let reply = eng
        .create_comment(comment(&ada, "Same here", &top.id))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    // A reply to a reply answers the top-level comment.
    let nested = eng
        .create_comment(comment(&bob, "Ha", &reply.id))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(reply.parent_comment_id, top.id);
    assert_eq!(nested.parent_comment_id, top.id);
    assert_eq!(stats(&app, &ada, &post).await.comments, 3);

    let replies: Vec<String> = eng
        .list_comments(app.req(
            &ada,
            epb::ListCommentsRequest {
                post_id: post.id.clone(),
                parent_comment_id: top.id.clone(),
                page_size: 10,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .comments
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        replies,
        [reply.id.clone(), nested.id.clone()],
        "replies oldest first"
    );

    // Deleting the top-level comment takes its replies: no phantom counts.
    assert_eq!(
        eng.delete_comment(app.req(
            &ada,
            epb::DeleteCommentRequest {
                comment_id: top.id.clone()
            }
        ))
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    eng.delete_comment(app.req(
        &bob,
        epb::DeleteCommentRequest {
            comment_id: top.id.clone(),
        },
    ))
    .await
    .unwrap();
    assert_eq!(stats(&app, &ada, &post).await.comments, 0);

    // Reacting twice is one reaction; unreacting removes it.
    app.react(&bob, &post, epb::ReactionType::Like).await;
    app.react(&bob, &post, epb::ReactionType::Celebrate).await;
    let s = stats(&app, &ada, &post).await;
    assert_eq!(s.total_reactions, 1);
    assert_eq!(
        s.reactions[0].reaction_type,
        epb::ReactionType::Celebrate as i32
    );
    eng.unreact(app.req(
        &bob,
        epb::UnreactRequest {
            member_id: bob.id.clone(),
            post_id: post.id.clone(),
        },
    ))
    .await
    .unwrap();
    assert_eq!(stats(&app, &ada, &post).await.total_reactions, 0);

    // Impressions count once per member, post and day.
    for _ in 0..3 {
        eng.record_impressions(app.req(
            &bob,
            epb::RecordImpressionsRequest {
                member_id: bob.id.clone(),
                post_ids: vec![post.id.clone(), post.id.clone()],
            },
        ))
        .await
        .unwrap();
    }
    let s = stats(&app, &ada, &post).await;
    assert_eq!((s.impressions, s.unique_viewers), (1, 1));
}
