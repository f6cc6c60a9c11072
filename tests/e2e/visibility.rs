//! Visibility and blocks across all four services: what a member may not see answers exactly
//! like what does not exist.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use tonic::Code;

use crate::helpers::{spawn_app, Member, TestApp};

async fn get_post(app: &TestApp, viewer: &Member, post: &ppb::Post) -> Result<ppb::Post, Code> {
    app.posts
        .clone()
        .get_post(app.req(
            viewer,
            ppb::GetPostRequest {
                post_id: post.id.clone(),
                viewer_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner().post.unwrap_or_default())
        .map_err(|s| s.code())
}

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

async fn react_code(app: &TestApp, who: &Member, post: &ppb::Post) -> Code {
    match app
        .engagement
        .clone()
        .react(app.req(
            who,
            epb::ReactRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                reaction_type: epb::ReactionType::Like as i32,
            },
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

async fn profile_code(app: &TestApp, viewer: &Member, of: &Member) -> Code {
    match app
        .profiles
        .clone()
        .get_profile(app.req(
            viewer,
            prpb::GetProfileRequest {
                lookup: Some(prpb::get_profile_request::Lookup::MemberId(of.id.clone())),
            },
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test]
async fn connections_only_posts_are_invisible_to_strangers_in_every_service() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let author = app.member("author").await;
    let friend = app.member("friend").await;
    let stranger = app.member("stranger").await;
    app.connect(&author, &friend).await;
    let private = app
        .post(&author, "Just for my network", ppb::Visibility::Connections)
        .await;
    app.react(&friend, &private, epb::ReactionType::Support)
        .await;

    assert_eq!(get_post(&app, &author, &private).await, Ok(private.clone()));
    assert_eq!(get_post(&app, &friend, &private).await, Ok(private.clone()));
    assert_eq!(
        get_post(&app, &stranger, &private).await,
        Err(Code::NotFound)
    );

    // The post's counts are only for those who can see it.
    assert_eq!(stats(&app, &friend, &private).await.total_reactions, 1);
    assert_eq!(stats(&app, &stranger, &private).await.total_reactions, 0);

    // A stranger cannot react to or comment on what they cannot see.
    assert_eq!(react_code(&app, &stranger, &private).await, Code::NotFound);
    let comment = app
        .engagement
        .clone()
        .create_comment(app.req(
            &stranger,
            epb::CreateCommentRequest {
                member_id: stranger.id.clone(),
                post_id: private.id.clone(),
                text: "Let me in".into(),
                request_id: String::new(),
                parent_comment_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(comment.code(), Code::NotFound);
    assert_eq!(comment.message(), "post not found");
    assert_eq!(stats(&app, &friend, &private).await.comments, 0);

    // The author's list shows the stranger only public posts.
    let public = app
        .post(&author, "For everyone", ppb::Visibility::Public)
        .await;
    let listed: Vec<String> = app
        .posts
        .clone()
        .list_posts_by_author(app.req(
            &stranger,
            ppb::ListPostsByAuthorRequest {
                author_id: author.id.clone(),
                page_size: 10,
                page_token: String::new(),
                viewer_id: String::new(),
                start_time: None,
                end_time: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .posts
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, [public.id.as_str()]);
}

#[tokio::test]
async fn a_block_hides_both_members_from_each_other_everywhere() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let alice = app.member("alice").await;
    let mallory = app.member("mallory").await;
    let carol = app.member("carol").await;
    app.connect(&alice, &mallory).await;
    app.connect(&alice, &carol).await;
    app.connect(&mallory, &carol).await;
    // Dave sees Mallory's post through Carol's reaction (Carol herself engaged with it, so it
    // left her own feed).
    let dave = app.member("dave").await;
    app.connect(&dave, &carol).await;
    app.follow_member(&mallory, &alice).await;
    app.follow_hashtag(&alice, "security").await;
    let alice_post = app
        .post(
            &alice,
            "Alice's public #security note",
            ppb::Visibility::Public,
        )
        .await;
    let mallory_post = app
        .post(
            &mallory,
            "Mallory's public #security note",
            ppb::Visibility::Public,
        )
        .await;
    app.react(&carol, &mallory_post, epb::ReactionType::Like)
        .await;

    // Before: each sees the other's post in their feed.
    let ids = |items: Vec<pronet_proto::feed::v1::FeedItem>| -> Vec<String> {
        items.into_iter().map(|i| i.post.unwrap().id).collect()
    };
    assert!(ids(app.whole_feed(&alice, 10).await).contains(&mallory_post.id));
    assert!(ids(app.whole_feed(&mallory, 10).await).contains(&alice_post.id));

    app.profiles
        .clone()
        .block_member(app.req(
            &alice,
            prpb::BlockMemberRequest {
                member_id: alice.id.clone(),
                blocked_id: mallory.id.clone(),
            },
        ))
        .await
        .unwrap();

    // Profiles: hidden both ways, exactly like a missing member.
    assert_eq!(profile_code(&app, &alice, &mallory).await, Code::NotFound);
    assert_eq!(profile_code(&app, &mallory, &alice).await, Code::NotFound);
    assert_eq!(profile_code(&app, &carol, &mallory).await, Code::Ok);

    // Posts: hidden both ways, even public ones; no engagement across the block.
    assert_eq!(
        get_post(&app, &mallory, &alice_post).await,
        Err(Code::NotFound)
    );
    assert_eq!(
        get_post(&app, &alice, &mallory_post).await,
        Err(Code::NotFound)
    );
    assert_eq!(
        react_code(&app, &mallory, &alice_post).await,
        Code::NotFound
    );
    assert_eq!(react_code(&app, &carol, &alice_post).await, Code::Ok);

    // Feeds: neither sees the other, not through a hashtag nor a common connection.
    assert!(!ids(app.whole_feed(&alice, 10).await).contains(&mallory_post.id));
    assert!(!ids(app.whole_feed(&mallory, 10).await).contains(&alice_post.id));
    assert!(ids(app.whole_feed(&dave, 10).await).contains(&mallory_post.id));

    // The connection and the follow are gone; invitations are refused both ways.
    let conns = app
        .profiles
        .clone()
        .list_connections(app.req(
            &alice,
            prpb::ListConnectionsRequest {
                member_id: alice.id.clone(),
                page_size: 10,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert_eq!(
        conns
            .iter()
            .map(|c| c.member_id.as_str())
            .collect::<Vec<_>>(),
        [carol.id.as_str()]
    );
    for (from, to) in [(&mallory, &alice), (&alice, &mallory)] {
        let err = app
            .profiles
            .clone()
            .create_invitation(app.req(
                from,
                prpb::CreateInvitationRequest {
                    inviter_id: from.id.clone(),
                    invitee_id: to.id.clone(),
                    message: String::new(),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }

    // Unblocking lets them see each other again (but does not reconnect them).
    app.profiles
        .clone()
        .unblock_member(app.req(
            &alice,
            prpb::UnblockMemberRequest {
                member_id: alice.id.clone(),
                blocked_id: mallory.id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(profile_code(&app, &mallory, &alice).await, Code::Ok);
    assert_eq!(
        get_post(&app, &mallory, &alice_post).await,
        Ok(alice_post.clone())
    );
}
