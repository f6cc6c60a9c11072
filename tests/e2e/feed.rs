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
async fn the_engaged_post_ranks_first_explained_and_leaves_once_the_member_engages() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let cy = app.member("cy_lee").await;
    let dan = app.member("dan").await;
    let eve = app.member("eve").await;
    app.connect(&ada, &bob).await;
    app.connect(&cy, &ada).await;
    app.connect(&eve, &ada).await;

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
    // Dan is nobody's connection here: his reaction counts, it names no one.
    app.react(&dan, &engaged, ReactionType::Like).await;

    let page = app.feed_page(&ada, 10, "").await;
    let ids: Vec<&str> = page
        .items
        .iter()
        .map(|i| i.post.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, [engaged.id.as_str(), quiet.id.as_str()]);
    assert_eq!(page.candidates_scored, 2);
    assert_eq!(page.ranking_profile, "pronet");
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
    // The score is reproducible from the response: exp of the signals' contributions, and
    // the product of the breakdown's factors.
    let sum: f64 = top.signals.iter().map(|s| s.contribution).sum();
    assert!((top.score - sum.exp()).abs() < 1e-9 * top.score.max(1.0));
    for s in &top.signals {
        assert!((s.contribution - s.weight * s.value).abs() < 1e-12, "{s:?}");
    }
    let signal = |name: &str| top.signals.iter().find(|s| s.name == name).unwrap().value;
    assert!(
        signal("quality") > 0.0,
        "engagement on a post shown to no one"
    );
    assert_eq!(signal("social_proof"), 2f64.ln());
    let b = top.score_breakdown.unwrap();
    let product = b.engagement * b.freshness * b.affinity * b.diversity;
    assert!((top.score - product).abs() < 1e-9);
    assert!(top.score > page.items[1].score);
    assert_eq!(
        reasons(&page.items[1]),
        [(ReasonKind::ConnectionPosted, "Bob".to_string())]
    );

    // Ada reacts: the post leaves her feed (she engaged with it); the quiet one stays.
    app.react(&ada, &engaged, ReactionType::Insightful).await;
    let after = app.feed_page(&ada, 10, "").await;
    let ids: Vec<&str> = after
        .items
        .iter()
        .map(|i| i.post.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, [quiet.id.as_str()]);

    // Bob's own posts are not in Bob's feed. Eve is not connected to Bob, but to Ada, who
    // reacted: Eve sees that post (and only that one), because a connection reacted. Cy, in
    // the same place, engaged with it: it left Cy's feed.
    let bob_feed = app.feed_page(&bob, 10, "").await;
    assert!(bob_feed.items.is_empty());
    let eve_feed = app.feed_page(&eve, 10, "").await;
    assert_eq!(eve_feed.items.len(), 1);
    assert_eq!(eve_feed.items[0].post.as_ref().unwrap().id, engaged.id);
    assert_eq!(
        reasons(&eve_feed.items[0]),
        [(ReasonKind::ConnectionReacted, "Ada".to_string())]
    );
    let cy_feed = app.feed_page(&cy, 10, "").await;
    assert!(cy_feed.items.is_empty());
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
    // Five posts per author: the default profile ranks at most five of one author.
    for a in 0..6 {
        let author = app.member(&format!("author_{a}")).await;
        app.connect(&viewer, &author).await;
        for p in 0..5 {
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
    for a in 0..3 {
        let author = app.member(&format!("author_{a}")).await;
        app.connect(&viewer, &author).await;
        for p in 0..4 {
            app.post(&author, &format!("post number {p}"), Visibility::Public)
                .await;
        }
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
                ..Default::default()
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
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    crate::helpers::assert_bad_request(&err, &["page_token"]);
}

async fn explain(
    app: &crate::helpers::TestApp,
    member: &crate::helpers::Member,
    post_id: &str,
) -> pronet_proto::feed::v1::ExplainFeedItemResponse {
    app.settle().await;
    let mut feed = app.feed.clone();
    feed.explain_feed_item(app.req(
        member,
        pronet_proto::feed::v1::ExplainFeedItemRequest {
            member_id: member.id.clone(),
            post_id: post_id.to_owned(),
            ranking_profile: String::new(),
        },
    ))
    .await
    .expect("explain")
    .into_inner()
}

#[tokio::test]
async fn explain_feed_item_says_where_a_post_is_or_what_keeps_it_out() {
    use pronet_proto::feed::v1::FeedFilter;
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_x").await;
    let bob = app.member("bob_x").await;
    let stranger = app.member("stranger").await;
    app.connect(&ada, &bob).await;
    let first = app.post(&bob, "First #rust", Visibility::Public).await;
    let second = app.post(&bob, "Second", Visibility::Public).await;
    let private = app
        .post(&stranger, "Connections only", Visibility::Connections)
        .await;
    let public = app
        .post(&stranger, "Public elsewhere", Visibility::Public)
        .await;
    let own = app.post(&ada, "Mine", Visibility::Public).await;

    let page = app.feed_page(&ada, 10, "").await;
    let top = page.items[0].post.as_ref().unwrap().id.clone();
    let e = explain(&app, &ada, &top).await;
    assert_eq!((e.position, e.filter), (1, FeedFilter::Unspecified as i32));
    assert_eq!(e.ranking_profile, "pronet");
    let item = e.item.unwrap();
    // The same score (a moment later: freshness moved a little) and signals as the feed
    // showed.
    assert!((item.score / page.items[0].score - 1.0).abs() < 1e-3);
    assert_eq!(item.signals.len(), page.items[0].signals.len());
    assert_eq!(item.author_display_name, "Bob x");

    let cases = [
        (&own.id, FeedFilter::OwnPost),
        (&private.id, FeedFilter::NotVisible),
        (&public.id, FeedFilter::NotInNetwork),
    ];
    for (post, filter) in cases {
        let e = explain(&app, &ada, post).await;
        assert_eq!((e.position, e.filter), (0, filter as i32), "{}", e.summary);
        assert!(!e.summary.is_empty());
    }
    let unknown = explain(&app, &ada, &pronet_common::ids::new_id()).await;
    assert_eq!(unknown.filter, FeedFilter::UnknownPost as i32);

    // Engaging takes a post out, and the explanation says so (with its signals).
    app.react(&ada, &first, ReactionType::Like).await;
    let e = explain(&app, &ada, &first.id).await;
    assert_eq!((e.position, e.filter), (0, FeedFilter::Engaged as i32));
    assert!(!e.item.unwrap().signals.is_empty());
    let e = explain(&app, &ada, &second.id).await;
    assert_eq!(e.position, 1);

    // Blocking the author keeps everything of theirs out.
    let mut profiles = pronet_proto::profile::v1::profile_service_client::ProfileServiceClient::new(
        crate::helpers::channel(app.addrs().profile).await,
    );
    profiles
        .block_member(app.req(
            &ada,
            pronet_proto::profile::v1::BlockMemberRequest {
                member_id: ada.id.clone(),
                blocked_id: bob.id.clone(),
            },
        ))
        .await
        .expect("block");
    let e = explain(&app, &ada, &second.id).await;
    assert_eq!(e.filter, FeedFilter::Blocked as i32, "{}", e.summary);

    // Another member may not ask about Ada's feed.
    let mut feed = app.feed.clone();
    let err = feed
        .explain_feed_item(app.req(
            &bob,
            pronet_proto::feed::v1::ExplainFeedItemRequest {
                member_id: ada.id.clone(),
                post_id: second.id.clone(),
                ranking_profile: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn members_pick_published_ranking_profiles_and_pages_keep_theirs() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_p").await;
    let bob = app.member("bob_p").await;
    let cy = app.member("cy_p").await;
    app.connect(&ada, &bob).await;
    app.connect(&cy, &bob).await;
    let popular = app.post(&bob, "Popular", Visibility::Public).await;
    for _ in 0..2 {
        app.post(&bob, "Newer, quiet", Visibility::Public).await;
    }
    app.comment(&cy, &popular, "Great point").await;
    app.share(&cy, &popular).await;

    let get = |member: &crate::helpers::Member, profile: &str, token: &str, service: bool| {
        let req = pronet_proto::feed::v1::GetFeedRequest {
            member_id: member.id.clone(),
            page_size: 1,
            page_token: token.to_owned(),
            ranking_profile: profile.to_owned(),
        };
        let req = if service {
            app.service_req(req)
        } else {
            app.req(member, req)
        };
        let mut feed = app.feed.clone();
        async move { feed.get_feed(req).await.map(|r| r.into_inner()) }
    };
    app.settle().await;
    let chrono = get(&ada, "chronological", "", false).await.unwrap();
    assert_eq!(chrono.ranking_profile, "chronological");
    assert_ne!(chrono.items[0].post.as_ref().unwrap().id, popular.id);
    assert_eq!(chrono.items[0].signals.len(), 1);
    assert_eq!(chrono.items[0].signals[0].name, "freshness");
    let popularity = get(&ada, "popularity", "", true).await.unwrap();
    assert_eq!(popularity.items[0].post.as_ref().unwrap().id, popular.id);

    // Unpublished profiles are for services; unknown ones for no one.
    let err = get(&ada, "popularity", "", false).await.unwrap_err();
    crate::helpers::assert_bad_request(&err, &["ranking_profile"]);
    assert!(err.message().contains("not published"), "{}", err.message());
    let err = get(&ada, "no_such_profile", "", true).await.unwrap_err();
    crate::helpers::assert_bad_request(&err, &["ranking_profile"]);

    // A later page keeps the first page's profile.
    let next = get(&ada, "chronological", &chrono.next_page_token, false)
        .await
        .unwrap();
    assert_eq!(next.ranking_profile, "chronological");
    let err = get(&ada, "", &chrono.next_page_token, false)
        .await
        .unwrap_err();
    crate::helpers::assert_bad_request(&err, &["page_token"]);
}

/// The ids of the member's whole feed, in order.
async fn feed_ids(app: &crate::helpers::TestApp, member: &crate::helpers::Member) -> Vec<String> {
    app.settle().await;
    app.whole_feed(member, 50)
        .await
        .into_iter()
        .map(|i| i.post.unwrap().id)
        .collect()
}

#[tokio::test]
async fn hidden_posts_and_muted_hashtags_and_authors_leave_the_feed_until_taken_back() {
    use pronet_proto::engagement::v1 as epb;
    use pronet_proto::feed::v1::FeedFilter;
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_n").await;
    let bob = app.member("bob_n").await;
    let cat = app.member("cat_n").await;
    app.connect(&ada, &bob).await;
    app.connect(&ada, &cat).await;
    let plain = app.post(&bob, "Plain news", Visibility::Public).await;
    let hype = app
        .post(&bob, "To the moon #Crypto", Visibility::Public)
        .await;
    let cats = app.post(&cat, "A cat post", Visibility::Public).await;
    let all = feed_ids(&app, &ada).await;
    assert_eq!(all.len(), 3);
    let mut eng = app.engagement.clone();

    eng.hide_post(app.req(
        &ada,
        epb::HidePostRequest {
            member_id: ada.id.clone(),
            post_id: plain.id.clone(),
        },
    ))
    .await
    .expect("hide");
    eng.mute_hashtag(app.req(
        &ada,
        epb::MuteHashtagRequest {
            member_id: ada.id.clone(),
            hashtag: "#crypto".into(),
        },
    ))
    .await
    .expect("mute hashtag");
    eng.mute_author(app.req(
        &ada,
        epb::MuteAuthorRequest {
            member_id: ada.id.clone(),
            author_id: cat.id.clone(),
        },
    ))
    .await
    .expect("mute author");
    assert!(feed_ids(&app, &ada).await.is_empty());
    for (post, filter) in [
        (&plain.id, FeedFilter::Hidden),
        (&hype.id, FeedFilter::MutedHashtag),
        (&cats.id, FeedFilter::MutedAuthor),
    ] {
        let e = explain(&app, &ada, post).await;
        assert_eq!((e.position, e.filter), (0, filter as i32), "{}", e.summary);
    }
    // Bob's feed of the same posts is untouched.
    app.connect(&bob, &cat).await;
    assert_eq!(feed_ids(&app, &bob).await, std::slice::from_ref(&cats.id));
    let listed = eng
        .list_mutes(app.req(
            &ada,
            epb::ListMutesRequest {
                member_id: ada.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.hashtags, ["crypto"]);
    assert_eq!(listed.author_ids, std::slice::from_ref(&cat.id));

    // Taken back, each comes back.
    eng.unhide_post(app.req(
        &ada,
        epb::UnhidePostRequest {
            member_id: ada.id.clone(),
            post_id: plain.id.clone(),
        },
    ))
    .await
    .unwrap();
    eng.unmute_hashtag(app.req(
        &ada,
        epb::UnmuteHashtagRequest {
            member_id: ada.id.clone(),
            hashtag: "crypto".into(),
        },
    ))
    .await
    .unwrap();
    eng.unmute_author(app.req(
        &ada,
        epb::UnmuteAuthorRequest {
            member_id: ada.id.clone(),
            author_id: cat.id.clone(),
        },
    ))
    .await
    .unwrap();
    let mut back = feed_ids(&app, &ada).await;
    back.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(back, expected);

    // The feed remembers across a restart (saved index or export alike).
    eng.hide_post(app.req(
        &ada,
        epb::HidePostRequest {
            member_id: ada.id.clone(),
            post_id: hype.id.clone(),
        },
    ))
    .await
    .unwrap();
    let mut app = app;
    app.restart().await;
    let after = feed_ids(&app, &ada).await;
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&hype.id));
}
