//! The feed, end to end: candidates, reasons, ranking, visibility and pagination.

use std::collections::HashSet;

use pronet_proto::engagement::v1::ReactionType;
use pronet_proto::feed::v1::{FeedItem, ReasonKind};
use pronet_proto::post::v1::Visibility;

use crate::helpers::spawn_app;

fn reasons(item: &FeedItem) -> Vec<(ReasonKind, String)> {
    item.reasons
        .iter()
        .map(|r| {
            (
                ReasonKind::try_from(r.kind).unwrap_or(ReasonKind::Unspecified),
                if r.hashtag.is_empty() {
                    r.display_name.clone()
                } else {
                    format!("#{}", r.hashtag)
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn three_members_story_ranks_the_engaged_post_first_and_explains_it() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let cy = app.member("cy_lee").await;
    app.connect(&ada, &bob).await;
    app.connect(&cy, &ada).await;

    let engaged = app
        .post(
            &bob,
            "Shipped our new #rust service today!",
            Visibility::Public,
        )
        .await;
    let quiet = app
        .post(&bob, "Later thought: tabs or spaces?", Visibility::Public)
        .await;
    app.react(&cy, &engaged, ReactionType::Celebrate).await;
    app.comment(&cy, &engaged, "Congratulations!").await;
    app.react(&ada, &engaged, ReactionType::Like).await;

    let page = app.feed_page(&ada, 10, "").await;
    let ids: Vec<&str> = page
        .items
        .iter()
        .map(|i| i.post.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, [engaged.id.as_str(), quiet.id.as_str()]);
    assert_eq!(page.candidates_scored, 2);
    assert!(page.next_page_token.is_empty());

    let top = &page.items[0];
    assert_eq!(
        reasons(top),
        [
            (ReasonKind::ConnectionPosted, "Bob".to_string()),
            (ReasonKind::ConnectionCommented, "Cy lee".to_string()),
            (ReasonKind::ConnectionReacted, "Cy lee".to_string()),
        ]
    );
    assert_eq!(top.reasons[1].member_id, cy.id);
    assert_eq!(top.reasons[1].text, "Cy lee commented on this");
    assert_eq!(top.author_display_name, "Bob");
    let stats = top.stats.as_ref().unwrap();
    assert_eq!(
        (stats.total_reactions, stats.comments, stats.shares),
        (2, 1, 0)
    );
    let b = top.score_breakdown.unwrap();
    let product = b.engagement * b.freshness * b.affinity * b.diversity;
    assert!((top.score - product).abs() < 1e-9);
    assert!(top.score > page.items[1].score);
    assert_eq!(
        reasons(&page.items[1]),
        [(ReasonKind::ConnectionPosted, "Bob".to_string())]
    );

    // Bob's own posts are not in Bob's feed. Cy is not connected to Bob, but to Ada, who
    // reacted: Cy sees that post (and only that one), because a connection reacted.
    let bob_feed = app.feed_page(&bob, 10, "").await;
    assert!(bob_feed.items.is_empty());
    let cy_feed = app.feed_page(&cy, 10, "").await;
    assert_eq!(cy_feed.items.len(), 1);
    assert_eq!(cy_feed.items[0].post.as_ref().unwrap().id, engaged.id);
    assert_eq!(
        reasons(&cy_feed.items[0]),
        [(ReasonKind::ConnectionReacted, "Ada".to_string())]
    );
}

#[tokio::test]
async fn connections_only_posts_reach_only_connections() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let author = app.member("author").await;
    let friend = app.member("friend").await;
    let follower = app.member("follower").await;
    app.connect(&author, &friend).await;
    app.follow_member(&follower, &author).await;

    let public = app
        .post(&author, "Open to everyone", Visibility::Public)
        .await;
    let private = app
        .post(&author, "Only for my connections", Visibility::Connections)
        .await;

    let friend_ids: HashSet<String> = app
        .whole_feed(&friend, 10)
        .await
        .into_iter()
        .map(|i| i.post.unwrap().id)
        .collect();
    assert_eq!(
        friend_ids,
        HashSet::from([public.id.clone(), private.id.clone()])
    );

    let follower_feed = app.whole_feed(&follower, 10).await;
    assert_eq!(follower_feed.len(), 1);
    assert_eq!(follower_feed[0].post.as_ref().unwrap().id, public.id);
    assert_eq!(
        reasons(&follower_feed[0]),
        [(ReasonKind::FollowedMemberPosted, "Author".to_string())]
    );

    // A connection engaging with a connections-only post does not leak it to their network.
    let friends_friend = app.member("friends_friend").await;
    app.connect(&friend, &friends_friend).await;
    app.react(&friend, &private, ReactionType::Like).await;
    app.react(&friend, &public, ReactionType::Like).await;
    let ff: Vec<String> = app
        .whole_feed(&friends_friend, 10)
        .await
        .into_iter()
        .map(|i| i.post.unwrap().id)
        .collect();
    assert_eq!(ff, [public.id.as_str()]);
}

#[tokio::test]
async fn followed_hashtags_bring_posts_from_outside_the_network() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let reader = app.member("reader").await;
    let stranger = app.member("stranger").await;
    app.follow_hashtag(&reader, "#MentalHealth").await;
    let tagged = app
        .post(
            &stranger,
            "Taking a day off is ok. #mentalhealth",
            Visibility::Public,
        )
        .await;
    app.post(&stranger, "Unrelated #rust post", Visibility::Public)
        .await;
    app.post(
        &stranger,
        "Private #MentalHealth note",
        Visibility::Connections,
    )
    .await;
    let feed = app.whole_feed(&reader, 10).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].post.as_ref().unwrap().id, tagged.id);
    assert_eq!(
        reasons(&feed[0]),
        [(ReasonKind::FollowedHashtag, "#mentalhealth".to_string())]
    );
}

#[tokio::test]
async fn pages_never_repeat_an_item_even_while_engagement_moves_scores() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let viewer = app.member("viewer").await;
    let mut all = Vec::new();
    for a in 0..3 {
        let author = app.member(&format!("author_{a}")).await;
        app.connect(&viewer, &author).await;
        for p in 0..10 {
            all.push(
                app.post(&author, &format!("post {p} by {a}"), Visibility::Public)
                    .await,
            );
        }
    }
    let fan = app.member("fan").await;

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app.feed_page(&viewer, 7, &token).await;
        pages += 1;
        assert!(page.items.len() <= 7);
        assert_eq!(page.candidates_scored, 30);
        seen.extend(
            page.items
                .iter()
                .map(|i| i.post.as_ref().unwrap().id.clone()),
        );
        // Push the lowest-ranked unseen posts up between pages: they must not come back.
        for p in all.iter().rev().take(3) {
            app.react(&fan, p, ReactionType::Insightful).await;
            app.share(&fan, p).await;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 5);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an item was repeated");
    assert_eq!(seen.len(), 30);
}

#[tokio::test]
async fn a_page_token_survives_a_restart_without_repeats() {
    let Some(mut app) = spawn_app().await else {
        return;
    };
    let viewer = app.member("viewer").await;
    let author = app.member("author").await;
    app.connect(&viewer, &author).await;
    for p in 0..12 {
        app.post(&author, &format!("post number {p}"), Visibility::Public)
            .await;
    }
    let first = app.feed_page(&viewer, 5, "").await;
    assert_eq!(first.items.len(), 5);
    // The ranked snapshot lives in memory: after a restart the token alone must do.
    app.restart().await;
    let mut seen: Vec<String> = first
        .items
        .iter()
        .map(|i| i.post.as_ref().unwrap().id.clone())
        .collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = app.feed_page(&viewer, 5, &token).await;
        seen.extend(
            page.items
                .iter()
                .map(|i| i.post.as_ref().unwrap().id.clone()),
        );
        token = page.next_page_token;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 12);
    assert_eq!(seen.len(), 12);
}

#[tokio::test]
async fn unknown_member_gets_not_found_and_a_member_without_network_an_empty_feed() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let loner = app.member("loner").await;
    let page = app.feed_page(&loner, 0, "").await;
    assert!(page.items.is_empty());
    assert!(page.next_page_token.is_empty());

    // A valid identity that never created a profile.
    let (id, token) = app.identity();
    let mut feed = app.feed.clone();
    let err = feed
        .get_feed(pronet_common::auth::with_token(
            pronet_proto::feed::v1::GetFeedRequest {
                member_id: id,
                page_size: 10,
                page_token: String::new(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "member not found");
}

#[tokio::test]
async fn a_page_token_of_another_member_is_refused() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let a = app.member("member_a").await;
    let b = app.member("member_b").await;
    let author = app.member("author").await;
    app.connect(&a, &author).await;
    for p in 0..3 {
        app.post(&author, &format!("p{p}"), Visibility::Public)
            .await;
    }
    let page = app.feed_page(&a, 1, "").await;
    assert!(!page.next_page_token.is_empty());
    let mut feed = app.feed.clone();
    let err = feed
        .get_feed(app.req(
            &b,
            pronet_proto::feed::v1::GetFeedRequest {
                member_id: b.id.clone(),
                page_size: 1,
                page_token: page.next_page_token,
            },
        ))
        .await
        .unwrap_err();
    crate::helpers::assert_bad_request(&err, &["page_token"]);
}
