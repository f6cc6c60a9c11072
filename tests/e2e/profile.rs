//! Profiles, invitations, connections and follows over gRPC.

use pronet_proto::profile::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn handles_are_unique_ignoring_case_and_found_in_any_case() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("Ada_L").await;
    assert_eq!(ada.profile.handle, "Ada_L");
    let mut c = app.profiles.clone();
    let (_, someone_else) = app.identity();
    let err = c
        .create_profile(pronet_common::auth::with_token(
            pb::CreateProfileRequest {
                profile: Some(pb::Profile {
                    handle: "ada_l".into(),
                    display_name: "Someone Else".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &someone_else,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(err.message(), "handle is already taken");

    let found = c
        .get_profile(app.req(
            &ada,
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::Handle("ADA_L".into())),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(found, ada.profile);
}

#[tokio::test]
async fn batch_get_keeps_request_order_and_reports_missing() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let a = app.member("first").await;
    let b = app.member("second").await;
    let mut c = app.profiles.clone();
    let got = c
        .batch_get_profiles(app.req(
            &a,
            pb::BatchGetProfilesRequest {
                member_ids: vec![b.id.clone(), a.id.clone(), b.id.clone()],
                allow_missing: false,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profiles;
    let handles: Vec<&str> = got.iter().map(|p| p.handle.as_str()).collect();
    assert_eq!(handles, ["second", "first", "second"]);

    let err = c
        .batch_get_profiles(app.req(
            &a,
            pb::BatchGetProfilesRequest {
                member_ids: vec![a.id.clone(), "missing".into()],
                allow_missing: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let got = c
        .batch_get_profiles(app.req(
            &a,
            pb::BatchGetProfilesRequest {
                member_ids: vec!["missing".into(), a.id.clone()],
                allow_missing: true,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profiles;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, a.id);
}

#[tokio::test]
async fn update_changes_only_the_masked_fields() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada").await;
    let mut c = app.profiles.clone();
    let updated = c
        .update_profile(app.req(
            &ada,
            pb::UpdateProfileRequest {
                profile: Some(pb::Profile {
                    id: ada.id.clone(),
                    headline: "Principal Engineer".into(),
                    display_name: "ignored because not in the mask".into(),
                    skills: vec!["Rust".into(), "rust".into(), "Go".into()],
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["headline".into(), "skills".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(updated.headline, "Principal Engineer");
    assert_eq!(updated.display_name, ada.profile.display_name);
    assert_eq!(updated.skills, ["Rust", "Go"]);
    assert_eq!(updated.create_time, ada.profile.create_time);
    assert_ne!(updated.update_time, ada.profile.update_time);

    let other = app.member("taken").await;
    let err = c
        .update_profile(app.req(
            &ada,
            pb::UpdateProfileRequest {
                profile: Some(pb::Profile {
                    id: ada.id.clone(),
                    handle: "TAKEN".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["handle".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let _ = other;

    let err = c
        .update_profile(app.req(
            &ada,
            pb::UpdateProfileRequest {
                profile: Some(pb::Profile {
                    id: "nobody".into(),
                    headline: "x".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    // Only the owner updates a profile; whether "nobody" exists is not revealed.
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn invitations_connect_both_ways_once() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let a = app.member("alice").await;
    let b = app.member("bruno").await;
    let eve = app.member("eve").await;
    let mut c = app.profiles.clone();
    let inv = c
        .create_invitation(app.req(
            &a,
            pb::CreateInvitationRequest {
                inviter_id: a.id.clone(),
                invitee_id: b.id.clone(),
                message: "Met you at RustConf".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(inv.state, pb::InvitationState::Pending as i32);

    // The same invitation twice is refused.
    let err = c
        .create_invitation(app.req(
            &a,
            pb::CreateInvitationRequest {
                inviter_id: a.id.clone(),
                invitee_id: b.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // Inviting someone who already invited you connects you (eve and alice here).
    let from_eve = c
        .create_invitation(app.req(
            &eve,
            pb::CreateInvitationRequest {
                inviter_id: eve.id.clone(),
                invitee_id: a.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let back = c
        .create_invitation(app.req(
            &a,
            pb::CreateInvitationRequest {
                inviter_id: a.id.clone(),
                invitee_id: eve.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(back.id, from_eve.id);
    assert_eq!(back.state, pb::InvitationState::Accepted as i32);

    let received = c
        .list_invitations(app.req(
            &b,
            pb::ListInvitationsRequest {
                member_id: b.id.clone(),
                direction: pb::InvitationDirection::Received as i32,
                page_size: 10,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, "Met you at RustConf");

    // Someone else cannot accept it.
    let err = c
        .accept_invitation(app.req(
            &eve,
            pb::AcceptInvitationRequest {
                invitation_id: inv.id.clone(),
                member_id: eve.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let accepted = c
        .accept_invitation(app.req(
            &b,
            pb::AcceptInvitationRequest {
                invitation_id: inv.id.clone(),
                member_id: b.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        accepted.invitation.unwrap().state,
        pb::InvitationState::Accepted as i32
    );
    assert_eq!(accepted.connection.unwrap().member_id, a.id);

    let err = c
        .accept_invitation(app.req(
            &b,
            pb::AcceptInvitationRequest {
                invitation_id: inv.id.clone(),
                member_id: b.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = c
        .create_invitation(app.req(
            &b,
            pb::CreateInvitationRequest {
                inviter_id: b.id.clone(),
                invitee_id: a.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    for (member, other) in [(&a, &b), (&b, &a)] {
        let conns = c
            .list_connections(app.req(
                member,
                pb::ListConnectionsRequest {
                    member_id: member.id.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = conns
            .connections
            .iter()
            .map(|c| c.member_id.as_str())
            .collect();
        // Alice is also connected to eve (newest first: bruno, then eve).
        let expected: Vec<&str> = if member.id == a.id {
            vec![other.id.as_str(), eve.id.as_str()]
        } else {
            vec![other.id.as_str()]
        };
        assert_eq!(ids, expected);
        assert!(conns.next_page_token.is_empty());
    }

    let err = c
        .accept_invitation(app.req(
            &b,
            pb::AcceptInvitationRequest {
                invitation_id: "nope".into(),
                member_id: b.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn connections_page_without_repeats() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let hub = app.member("hub").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let m = app.member(&format!("member_{i}")).await;
        app.connect(&m, &hub).await;
        expected.push(m.id);
    }
    let mut c = app.profiles.clone();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_connections(app.req(
                &hub,
                pb::ListConnectionsRequest {
                    member_id: hub.id.clone(),
                    page_size: 3,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.connections.len() <= 3);
        seen.extend(page.connections.into_iter().map(|c| c.member_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    expected.reverse(); // newest first
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn follows_members_and_hashtags() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let fan = app.member("fan").await;
    let star = app.member("star").await;
    app.follow_member(&fan, &star).await;
    app.follow_hashtag(&fan, "#OpenToWork").await;
    app.follow_hashtag(&fan, "opentowork").await; // the same hashtag: no duplicate
    let mut c = app.profiles.clone();
    let following = c
        .list_following(app.req(
            &fan,
            pb::ListFollowingRequest {
                member_id: fan.id.clone(),
                page_size: 10,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .following;
    use pb::following::Target;
    let targets: Vec<Target> = following.into_iter().filter_map(|f| f.target).collect();
    assert_eq!(
        targets,
        [
            Target::Hashtag("opentowork".into()),
            Target::FolloweeId(star.id.clone())
        ]
    );
    let err = c
        .follow(app.req(
            &fan,
            pb::FollowRequest {
                member_id: fan.id.clone(),
                target: Some(pb::follow_request::Target::FolloweeId("ghost".into())),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn create_retried_with_its_request_id_returns_the_first_result() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let mut c = app.profiles.clone();
    let invite = || {
        app.req(
            &ada,
            pb::CreateInvitationRequest {
                inviter_id: ada.id.clone(),
                invitee_id: bob.id.clone(),
                message: "hello".into(),
                request_id: "invite-bob-1".into(),
            },
        )
    };
    let first = c.create_invitation(invite()).await.unwrap().into_inner();
    // A retry (say, after a timeout) gets the same invitation instead of ALREADY_EXISTS.
    let again = c.create_invitation(invite()).await.unwrap().into_inner();
    assert_eq!(first, again);

    let mut posts = app.posts.clone();
    let post = || {
        app.req(
            &ada,
            pronet_proto::post::v1::CreatePostRequest {
                author_id: ada.id.clone(),
                text: "Posted once, however often it is sent".into(),
                visibility: pronet_proto::post::v1::Visibility::Public as i32,
                create_time: None,
                request_id: "post-1".into(),
                reshare_of: String::new(),
            },
        )
    };
    let mut other_posts = posts.clone();
    let (a, b) = tokio::join!(other_posts.create_post(post()), posts.create_post(post()));
    let (a, b) = (a.unwrap().into_inner().post, b.unwrap().into_inner().post);
    assert_eq!(a, b);
    let listed = app
        .posts
        .clone()
        .list_posts_by_author(app.req(
            &ada,
            pronet_proto::post::v1::ListPostsByAuthorRequest {
                author_id: ada.id.clone(),
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
        .posts;
    assert_eq!(listed.len(), 1);
}

/// Sets a member's current company (and industry), through UpdateProfile.
async fn works_at(app: &crate::helpers::TestApp, who: &crate::helpers::Member, company: &str) {
    app.profiles
        .clone()
        .update_profile(app.req(
            who,
            pb::UpdateProfileRequest {
                profile: Some(pb::Profile {
                    id: who.id.clone(),
                    positions: vec![pb::Position {
                        title: "Engineer".into(),
                        company: company.into(),
                        start: Some(pb::YearMonth {
                            year: 2021,
                            month: 4,
                        }),
                        end: None,
                        current: true,
                    }],
                    industry: "Software".into(),
                    open_to_work: true,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["positions".into(), "industry".into(), "open_to_work".into()],
                }),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn suggestions_rank_second_degree_members_and_page_through() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_s").await;
    let bob = app.member("bob_s").await;
    let cyd = app.member("cyd_s").await;
    let dee = app.member("dee_s").await;
    app.connect(&ada, &bob).await;
    app.connect(&bob, &cyd).await;
    app.connect(&bob, &dee).await;
    works_at(&app, &ada, "Acme").await;
    works_at(&app, &dee, "acme").await;
    let mut c = app.profiles.clone();
    let page = |token: String| {
        app.req(
            &ada,
            pb::SuggestConnectionsRequest {
                member_id: ada.id.clone(),
                page_size: 1,
                page_token: token,
            },
        )
    };
    let first = c
        .suggest_connections(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    let s = &first.suggestions[0];
    assert_eq!(s.member_id, dee.id);
    // 1 mutual (10) + shared company (30) + shared industry (10).
    assert_eq!(s.score, 50);
    assert_eq!(s.mutual_member_ids, std::slice::from_ref(&bob.id));
    let texts: Vec<&str> = s.reasons.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        ["1 mutual connection", "also at Acme", "also in Software"]
    );
    assert_eq!(
        s.reasons[1].kind,
        pb::SuggestionReasonKind::SharedCompany as i32
    );
    let second = c
        .suggest_connections(page(first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.suggestions[0].member_id, cyd.id);
    let third = c
        .suggest_connections(page(second.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert!(third.suggestions.is_empty());
    assert_eq!(third.next_page_token, "");

    // Another member may not ask for ada's suggestions.
    let err = c
        .suggest_connections(app.req(
            &bob,
            pb::SuggestConnectionsRequest {
                member_id: ada.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // GetProfile tells ada how far dee is.
    let got = c
        .get_profile(app.req(
            &ada,
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId(dee.id.clone())),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let ctx = got.viewer_context.unwrap();
    assert_eq!(ctx.degree, pb::ConnectionDegree::Second as i32);
    assert_eq!(ctx.mutual_connection_count, 1);
    assert_eq!(got.profile.unwrap().positions[0].company, "acme");
}

#[tokio::test]
async fn search_ranks_by_relevance_then_network_and_hides_blocked_members() {
    let Some(app) = spawn_app().await else {
        return;
    };
    // Every helper member's headline is "<handle> at Acme" with the skill Rust.
    let rec = app.member("recruiter").await;
    let near = app.member("near_one").await;
    let far = app.member("far_one").await;
    let foe = app.member("foe_one").await;
    let mid = app.member("mid_one").await;
    app.connect(&rec, &near).await;
    app.connect(&near, &mid).await;
    app.profiles
        .clone()
        .block_member(app.req(
            &foe,
            pb::BlockMemberRequest {
                member_id: foe.id.clone(),
                blocked_id: rec.id.clone(),
            },
        ))
        .await
        .unwrap();
    works_at(&app, &far, "Globex").await;
    let mut c = app.profiles.clone();
    let search = |query: &str, filters: Option<pb::SearchFilters>| {
        app.req(
            &rec,
            pb::SearchProfilesRequest {
                query: query.into(),
                filters,
                page_size: 10,
                page_token: String::new(),
            },
        )
    };
    let got = c
        .search_profiles(search("ACME", None))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = got
        .results
        .iter()
        .map(|r| r.profile.as_ref().unwrap().id.as_str())
        .collect();
    // One relevance band: the connection first, then the second degree, then the rest; the
    // blocker and the searcher never show.
    let expected = [near.id.as_str(), mid.id.as_str(), far.id.as_str()];
    assert_eq!(ids, expected);
    let degrees: Vec<i32> = got.results.iter().map(|r| r.degree).collect();
    assert_eq!(
        degrees,
        [
            pb::ConnectionDegree::First as i32,
            pb::ConnectionDegree::Second as i32,
            pb::ConnectionDegree::OutOfNetwork as i32
        ]
    );
    assert!(got.next_page_token.is_empty());
    // One result a page, following next_page_token: the same order, no repeats, and the last
    // page ends the paging with an empty token.
    let mut paged: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .search_profiles(app.req(
                &rec,
                pb::SearchProfilesRequest {
                    query: "ACME".into(),
                    filters: None,
                    page_size: 1,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert_eq!(page.results.len(), 1, "page {pages}");
        paged.extend(
            page.results
                .iter()
                .map(|r| r.profile.as_ref().unwrap().id.clone()),
        );
        assert!(pages <= expected.len(), "paging does not end: {paged:?}");
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, expected);
    assert_eq!(pages, 3);
    assert!(
        got.results[0].highlights[0].contains("[Acme]"),
        "{:?}",
        got.results[0].highlights
    );
    // Filters alone: current company, open to work.
    let got = c
        .search_profiles(search(
            "",
            Some(pb::SearchFilters {
                current_company: " GLOBEX ".into(),
                open_to_work: true,
                skills: vec!["rust".into()],
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.results.len(), 1);
    assert_eq!(got.results[0].profile.as_ref().unwrap().id, far.id);
    assert!(got.results[0].highlights.is_empty());
    let err = c.search_profiles(search("", None)).await.unwrap_err();
    crate::helpers::assert_bad_request(&err, &["query"]);
}

#[tokio::test]
async fn imports_connect_many_pairs_for_services() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let mut c = app.profiles.clone();
    let ids: Vec<String> = (0..30).map(|i| format!("imp{i:03}")).collect();
    let got = c
        .import_profiles(
            app.service_req(pb::ImportProfilesRequest {
                profiles: ids
                    .iter()
                    .map(|id| pb::Profile {
                        id: id.clone(),
                        handle: id.clone(),
                        display_name: format!("Imported {id}"),
                        ..Default::default()
                    })
                    .collect(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.created_count, got.skipped_count), (30, 0));
    // Everyone with imp000, once, plus a self pair and an unknown member.
    let mut pairs: Vec<pb::ConnectionPair> = ids[1..]
        .iter()
        .map(|id| pb::ConnectionPair {
            member_id: ids[0].clone(),
            other_id: id.clone(),
        })
        .collect();
    pairs.push(pb::ConnectionPair {
        member_id: ids[1].clone(),
        other_id: ids[1].clone(),
    });
    pairs.push(pb::ConnectionPair {
        member_id: ids[1].clone(),
        other_id: "nobody".into(),
    });
    let got = c
        .import_connections(app.service_req(pb::ImportConnectionsRequest { pairs }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.created_count, got.skipped_count), (29, 2));
    let hub = c
        .get_profile(app.service_req(pb::GetProfileRequest {
            lookup: Some(pb::get_profile_request::Lookup::MemberId(ids[0].clone())),
        }))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(hub.connection_count, 29);
    let err = c
        .import_connections(app.service_req(pb::ImportConnectionsRequest {
            pairs: vec![pb::ConnectionPair::default(); 10_001],
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn degrees_reach_the_third_and_name_the_mutual_connections() {
    let Some(app) = spawn_app().await else {
        return;
    };
    // a - b - c - d, and a - e - c: c is second degree through b and e, d third.
    let a = app.member("deg_a").await;
    let b = app.member("deg_b").await;
    let c = app.member("deg_c").await;
    let d = app.member("deg_d").await;
    let e = app.member("deg_e").await;
    let lone = app.member("deg_lone").await;
    app.connect(&a, &b).await;
    app.connect(&b, &c).await;
    app.connect(&c, &d).await;
    app.connect(&a, &e).await;
    app.connect(&e, &c).await;
    let mut client = app.profiles.clone();
    let degree = |viewer: &crate::helpers::Member, member: &crate::helpers::Member| {
        app.req(
            viewer,
            pb::GetConnectionDegreeRequest {
                viewer_id: viewer.id.clone(),
                member_id: member.id.clone(),
            },
        )
    };
    let third = client
        .get_connection_degree(degree(&a, &d))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        third,
        pb::GetConnectionDegreeResponse {
            degree: pb::ConnectionDegree::Third as i32,
            mutual_connection_count: 0,
            mutual_member_ids: Vec::new(),
        }
    );
    // The other way round too.
    let back = client
        .get_connection_degree(degree(&d, &a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.degree, pb::ConnectionDegree::Third as i32);

    let second = client
        .get_connection_degree(degree(&a, &c))
        .await
        .unwrap()
        .into_inner();
    let mut mutuals = vec![b.id.clone(), e.id.clone()];
    mutuals.sort(); // smallest ids first
    assert_eq!(
        second,
        pb::GetConnectionDegreeResponse {
            degree: pb::ConnectionDegree::Second as i32,
            mutual_connection_count: 2,
            mutual_member_ids: mutuals,
        }
    );
    let second = client
        .get_connection_degree(degree(&b, &d))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.degree, pb::ConnectionDegree::Second as i32);
    assert_eq!(second.mutual_member_ids, std::slice::from_ref(&c.id));

    let first = client
        .get_connection_degree(degree(&a, &b))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.degree, pb::ConnectionDegree::First as i32);
    let out = client
        .get_connection_degree(degree(&a, &lone))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.degree, pb::ConnectionDegree::OutOfNetwork as i32);
    assert_eq!(out.mutual_connection_count, 0);

    // A service asks on a member's behalf and gets the same answer.
    let as_service = client
        .get_connection_degree(app.service_req(pb::GetConnectionDegreeRequest {
            viewer_id: a.id.clone(),
            member_id: d.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(as_service, third);

    // GetProfile tells a how far d is.
    let got = client
        .get_profile(app.req(
            &a,
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId(d.id.clone())),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.viewer_context,
        Some(pb::ViewerContext {
            degree: pb::ConnectionDegree::Third as i32,
            mutual_connection_count: 0,
        })
    );
}

#[tokio::test]
async fn decline_withdraw_unfollow_followers_and_education_round_trip() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("life_ada").await;
    let bob = app.member("life_bob").await;
    let cyd = app.member("life_cyd").await;
    let mut c = app.profiles.clone();
    let invite = |from: &crate::helpers::Member, to: &crate::helpers::Member| {
        app.req(
            from,
            pb::CreateInvitationRequest {
                inviter_id: from.id.clone(),
                invitee_id: to.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        )
    };
    let pending = |member: &crate::helpers::Member, direction: pb::InvitationDirection| {
        app.req(
            member,
            pb::ListInvitationsRequest {
                member_id: member.id.clone(),
                direction: direction as i32,
                page_size: 10,
                page_token: String::new(),
            },
        )
    };

    // bob declines ada's invitation: no longer pending for either, and final.
    let to_bob = c
        .create_invitation(invite(&ada, &bob))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let declined = c
        .decline_invitation(app.req(
            &bob,
            pb::DeclineInvitationRequest {
                invitation_id: to_bob.id.clone(),
                member_id: bob.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(declined.id, to_bob.id);
    assert_eq!(declined.state, pb::InvitationState::Declined as i32);
    let received = c
        .list_invitations(pending(&bob, pb::InvitationDirection::Received))
        .await
        .unwrap()
        .into_inner();
    assert!(received.invitations.is_empty(), "{received:?}");
    let err = c
        .accept_invitation(app.req(
            &bob,
            pb::AcceptInvitationRequest {
                invitation_id: to_bob.id.clone(),
                member_id: bob.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // ada withdraws her invitation to cyd; only the inviter may.
    let to_cyd = c
        .create_invitation(invite(&ada, &cyd))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let withdraw = |member: &crate::helpers::Member| {
        app.req(
            member,
            pb::WithdrawInvitationRequest {
                invitation_id: to_cyd.id.clone(),
                member_id: member.id.clone(),
            },
        )
    };
    let err = c.withdraw_invitation(withdraw(&cyd)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let withdrawn = c
        .withdraw_invitation(withdraw(&ada))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(withdrawn.state, pb::InvitationState::Withdrawn as i32);
    let sent = c
        .list_invitations(pending(&ada, pb::InvitationDirection::Sent))
        .await
        .unwrap()
        .into_inner();
    assert!(sent.invitations.is_empty(), "{sent:?}");
    let err = c.withdraw_invitation(withdraw(&ada)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Neither left a connection.
    let ada_now = c
        .get_profile(app.req(
            &ada,
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId(ada.id.clone())),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ada_now.profile.as_ref().unwrap().connection_count, 0);
    // A member looking at their own profile gets no viewer context.
    assert_eq!(ada_now.viewer_context, None);

    // bob then cyd follow ada: followers newest first, counted on the profile.
    app.follow_member(&bob, &ada).await;
    app.follow_member(&cyd, &ada).await;
    let followers = || {
        let request = app.req(
            &ada,
            pb::ListFollowersRequest {
                member_id: ada.id.clone(),
                page_size: 10,
                page_token: String::new(),
            },
        );
        let mut c = app.profiles.clone();
        async move {
            let got = c.list_followers(request).await.unwrap().into_inner();
            assert!(got.next_page_token.is_empty());
            got.followers
                .into_iter()
                .map(|f| f.member_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(followers().await, [cyd.id.clone(), bob.id.clone()]);
    let seen_by_bob = || {
        let request = app.req(
            &bob,
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId(ada.id.clone())),
            },
        );
        let mut c = app.profiles.clone();
        async move { c.get_profile(request).await.unwrap().into_inner() }
    };
    let got = seen_by_bob().await;
    assert_eq!(got.profile.unwrap().follower_count, 2);
    // Someone else's profile comes with the viewer's context.
    assert_eq!(
        got.viewer_context,
        Some(pb::ViewerContext {
            degree: pb::ConnectionDegree::OutOfNetwork as i32,
            mutual_connection_count: 0,
        })
    );

    // cyd unfollows: gone from the list and the count; unfollowing again changes nothing.
    for _ in 0..2 {
        c.unfollow(app.req(
            &cyd,
            pb::UnfollowRequest {
                member_id: cyd.id.clone(),
                target: Some(pb::unfollow_request::Target::FolloweeId(ada.id.clone())),
            },
        ))
        .await
        .unwrap();
    }
    assert_eq!(followers().await, std::slice::from_ref(&bob.id));
    assert_eq!(seen_by_bob().await.profile.unwrap().follower_count, 1);

    // Education through UpdateProfile, with skills that are one skill in three spellings.
    let education = vec![
        pb::Education {
            school: "MIT".into(),
            degree: "BSc".into(),
            field_of_study: "Physics".into(),
            start_year: 2010,
            end_year: 2014,
        },
        pb::Education {
            school: "ETH  Zürich ".into(),
            degree: String::new(),
            field_of_study: String::new(),
            start_year: 0,
            end_year: 0,
        },
    ];
    let updated = c
        .update_profile(app.req(
            &ada,
            pb::UpdateProfileRequest {
                profile: Some(pb::Profile {
                    id: ada.id.clone(),
                    education: education.clone(),
                    skills: vec!["rust ".into(), "RUST".into(), "Rust".into()],
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["education".into(), "skills".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    // One skill, spelled as first given (trimmed).
    assert_eq!(updated.skills, ["rust"]);
    let mut stored = education.clone();
    stored[1].school = "ETH Zürich".into(); // spaces collapsed and trimmed
    assert_eq!(updated.education, stored);
    // Untouched by the mask.
    assert_eq!(updated.headline, ada.profile.headline);
    let got = seen_by_bob().await.profile.unwrap();
    assert_eq!(got.education, stored);
    assert_eq!(got.skills, ["rust"]);
    assert_eq!(got.follower_count, 1);
}
