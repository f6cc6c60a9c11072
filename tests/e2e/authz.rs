//! The authorization matrix: every RPC x every kind of caller -> the exact status code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use prost_types::{FieldMask, Timestamp};
use tonic::{Code, Request};

use crate::helpers::{spawn_app, Member, TestApp};

/// The kinds of caller, in the order of the table's columns.
#[derive(Debug, Clone, Copy)]
enum Who {
    NoToken,
    Malformed,
    BadSignature,
    Expired,
    AnotherMember,
    RightMember,
    Service,
}

const COLUMNS: [Who; 7] = [
    Who::NoToken,
    Who::Malformed,
    Who::BadSignature,
    Who::Expired,
    Who::AnotherMember,
    Who::RightMember,
    Who::Service,
];

// Short names for the table.
const OK: Code = Code::Ok;
const UNAUTH: Code = Code::Unauthenticated;
const DENIED: Code = Code::PermissionDenied;

/// Expected code per RPC for: no token, malformed, bad signature, expired, another member,
/// the right member, a service token. Rows run top to bottom against one fixture, so a row may
/// rely on the rows above (the invitation is accepted before connections are listed).
#[rustfmt::skip]
const MATRIX: &[(&str, [Code; 7])] = &[
    //                           none    malformed bad sig  expired  another  right   service
    // Creating a profile takes the id from the token: another member creates their own.
    ("CreateProfile",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     DENIED]),
    ("GetProfile",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("BatchGetProfiles",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("UpdateProfile",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("CreateInvitation",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListInvitations",          [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("AcceptInvitation",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListConnections",          [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("Follow",                   [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListFollowing",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("BlockMember",              [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UnblockMember",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("BatchGetRelationships",    [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("LookupHandles",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    // Services may import posts for any author (with their original time).
    ("CreatePost",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("GetPost",                  [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("BatchGetPosts",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("ListPostsByAuthor",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("ListRecentPostsByAuthors", [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("UpdatePost",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListPostsByHashtag",       [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("ListTrendingHashtags",     [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("React",                    [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("Unreact",                  [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListReactions",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("CreateComment",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UpdateComment",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ReactToComment",           [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UnreactToComment",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListComments",             [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("DeleteComment",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    // The post service records reshares for their authors with its own token.
    ("RecordShare",              [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("BatchGetPostStats",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     OK]),
    ("ListRecentActivity",       [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("RecordImpressions",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListSeenPosts",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("GetFeed",                  [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("ExplainFeedItem",          [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    // The ranking model is the operators' business.
    ("GetRankingModel",          [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("TrainRankingModel",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("DeclineInvitation",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("WithdrawInvitation",       [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListFollowers",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("GetConnectionDegree",      [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     OK]),
    ("Unfollow",                 [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("RemoveConnection",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("DeletePost",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    // A member asks for their own suggestions; anyone searches as themself.
    ("SuggestConnections",       [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("SearchProfiles",           [UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK,     OK,     DENIED]),
    // Bulk loads are for services only.
    ("ImportConnections",        [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("ImportProfiles",           [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    // Imports write for anyone with any time: services only.
    ("ImportPosts",              [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    ("ImportEngagement",         [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, OK]),
    // Negative feedback on one's own feed: members only, for themselves.
    ("HidePost",                 [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UnhidePost",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("MuteHashtag",              [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UnmuteHashtag",            [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("MuteAuthor",               [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("UnmuteAuthor",             [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    ("ListMutes",                [UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, OK,     DENIED]),
    // Probes and discovery stay open.
    ("Health",                   [OK,     OK,     OK,     OK,     OK,     OK,     OK]),
];

struct Fixture {
    me: Member,
    other: Member,
    third: Member,
    blockee: Member,
    post: ppb::Post,
    doomed_post: ppb::Post,
    comment: String,
    doomed_comment: String,
    invitation: String,
    to_decline: String,
    to_withdraw: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_for(app: &TestApp, f: &Fixture, who: Who, rpc: &str) -> Option<String> {
    match who {
        Who::NoToken => None,
        Who::Malformed => Some("not.a.jwt".into()),
        Who::BadSignature => {
            let forged = pronet_common::auth::AuthConfig::hs256(&[42u8; 32], "pronet").unwrap();
            Some(
                forged
                    .member_token(&f.me.id, Duration::from_secs(600))
                    .unwrap(),
            )
        }
        Who::Expired => Some(app.expired_member_token(&f.me.id, unix_now() - 3600)),
        Who::AnotherMember if rpc == "CreateProfile" => {
            // A member of the identity provider without a profile yet.
            Some(app.identity().1)
        }
        Who::AnotherMember => Some(f.other.token.clone()),
        Who::RightMember if rpc == "CreateProfile" => Some(app.identity().1),
        Who::RightMember => Some(f.me.token.clone()),
        Who::Service => Some(
            app.auth
                .service_token("tests", Duration::from_secs(600))
                .unwrap(),
        ),
    }
}

fn request<T>(message: T, token: &Option<String>) -> Request<T> {
    match token {
        Some(t) => pronet_common::auth::with_token(message, t),
        None => Request::new(message),
    }
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

async fn invoke(app: &TestApp, f: &Fixture, rpc: &str, token: Option<String>) -> Code {
    let (mut profiles, mut posts, mut eng, mut feed) = (
        app.profiles.clone(),
        app.posts.clone(),
        app.engagement.clone(),
        app.feed.clone(),
    );
    let me = f.me.id.clone();
    let t = &token;
    match rpc {
        "CreateProfile" => code(
            profiles
                .create_profile(request(
                    prpb::CreateProfileRequest {
                        profile: Some(prpb::Profile {
                            handle: format!("new_{}", &pronet_common::ids::new_id()[20..]),
                            display_name: "New Member".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "GetProfile" => code(
            profiles
                .get_profile(request(
                    prpb::GetProfileRequest {
                        lookup: Some(prpb::get_profile_request::Lookup::MemberId(me)),
                    },
                    t,
                ))
                .await,
        ),
        "BatchGetProfiles" => code(
            profiles
                .batch_get_profiles(request(
                    prpb::BatchGetProfilesRequest {
                        member_ids: vec![me, f.other.id.clone()],
                        allow_missing: false,
                    },
                    t,
                ))
                .await,
        ),
        "UpdateProfile" => code(
            profiles
                .update_profile(request(
                    prpb::UpdateProfileRequest {
                        profile: Some(prpb::Profile {
                            id: me,
                            headline: "Updated".into(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask {
                            paths: vec!["headline".into()],
                        }),
                    },
                    t,
                ))
                .await,
        ),
        "CreateInvitation" => code(
            profiles
                .create_invitation(request(
                    prpb::CreateInvitationRequest {
                        inviter_id: me,
                        invitee_id: f.third.id.clone(),
                        message: String::new(),
                        request_id: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "ListInvitations" => code(
            profiles
                .list_invitations(request(
                    prpb::ListInvitationsRequest {
                        member_id: me,
                        direction: prpb::InvitationDirection::Received as i32,
                        page_size: 10,
                        page_token: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "AcceptInvitation" => code(
            profiles
                .accept_invitation(request(
                    prpb::AcceptInvitationRequest {
                        invitation_id: f.invitation.clone(),
                        member_id: me,
                    },
                    t,
                ))
                .await,
        ),
        "ListConnections" => code(
            profiles
                .list_connections(request(
                    prpb::ListConnectionsRequest {
                        member_id: me,
                        page_size: 10,
                        page_token: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "Follow" => code(
            profiles
                .follow(request(
                    prpb::FollowRequest {
                        member_id: me,
                        target: Some(prpb::follow_request::Target::Hashtag("rust".into())),
                    },
                    t,
                ))
                .await,
        ),
        "ListFollowing" => code(
            profiles
                .list_following(request(
                    prpb::ListFollowingRequest {
                        member_id: me,
                        page_size: 10,
                        page_token: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "BlockMember" => code(
            profiles
                .block_member(request(
                    prpb::BlockMemberRequest {
                        member_id: me,
                        blocked_id: f.blockee.id.clone(),
                    },
                    t,
                ))
                .await,
        ),
        "UnblockMember" => code(
            profiles
                .unblock_member(request(
                    prpb::UnblockMemberRequest {
                        member_id: me,
                        blocked_id: f.blockee.id.clone(),
                    },
                    t,
                ))
                .await,
        ),
        "BatchGetRelationships" => code(
            profiles
                .batch_get_relationships(request(
                    prpb::BatchGetRelationshipsRequest {
                        viewer_id: me,
                        member_ids: vec![f.other.id.clone()],
                    },
                    t,
                ))
                .await,
        ),
        "CreatePost" => code(
            posts
                .create_post(request(
                    ppb::CreatePostRequest {
                        author_id: me,
                        text: "Matrix post".into(),
                        visibility: ppb::Visibility::Public as i32,
                        create_time: None,
                        request_id: String::new(),
                        reshare_of: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "GetPost" => code(
            posts
                .get_post(request(
                    ppb::GetPostRequest {
                        post_id: f.post.id.clone(),
                        viewer_id: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "BatchGetPosts" => code(
            posts
                .batch_get_posts(request(
                    ppb::BatchGetPostsRequest {
                        post_ids: vec![f.post.id.clone()],
                        allow_missing: false,
                        viewer_id: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "ListPostsByAuthor" => code(
            posts
                .list_posts_by_author(request(
                    ppb::ListPostsByAuthorRequest {
                        author_id: me,
                        page_size: 10,
                        page_token: String::new(),
                        viewer_id: String::new(),
                        start_time: None,
                        end_time: None,
                    },
                    t,
                ))
                .await,
        ),
        "ListRecentPostsByAuthors" => code(
            posts
                .list_recent_posts_by_authors(request(
                    ppb::ListRecentPostsByAuthorsRequest {
                        author_ids: vec![me],
                        hashtags: vec![],
                        since: Some(Timestamp {
                            seconds: 0,
                            nanos: 0,
                        }),
                        max_posts: 10,
                        max_posts_per_author: 0,
                    },
                    t,
                ))
                .await,
        ),
        "React" => code(
            eng.react(request(
                epb::ReactRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                    reaction_type: epb::ReactionType::Insightful as i32,
                },
                t,
            ))
            .await,
        ),
        "CreateComment" => code(
            eng.create_comment(request(
                epb::CreateCommentRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                    text: "A comment".into(),
                    request_id: String::new(),
                    parent_comment_id: String::new(),
                },
                t,
            ))
            .await,
        ),
        "RecordShare" => code(
            eng.record_share(request(
                epb::RecordShareRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "BatchGetPostStats" => code(
            eng.batch_get_post_stats(request(
                epb::BatchGetPostStatsRequest {
                    post_ids: vec![f.post.id.clone()],
                    viewer_id: String::new(),
                },
                t,
            ))
            .await,
        ),
        "ListRecentActivity" => code(
            eng.list_recent_activity(request(
                epb::ListRecentActivityRequest {
                    member_ids: vec![me],
                    since: Some(Timestamp {
                        seconds: 0,
                        nanos: 0,
                    }),
                    max_activities: 10,
                },
                t,
            ))
            .await,
        ),
        "LookupHandles" => code(
            profiles
                .lookup_handles(request(
                    prpb::LookupHandlesRequest {
                        handles: vec!["other".into()],
                    },
                    t,
                ))
                .await,
        ),
        "UpdatePost" => code(
            posts
                .update_post(request(
                    ppb::UpdatePostRequest {
                        post: Some(ppb::Post {
                            id: f.post.id.clone(),
                            text: "Edited for the matrix #rust".into(),
                            ..Default::default()
                        }),
                        update_mask: None,
                    },
                    t,
                ))
                .await,
        ),
        "DeletePost" => code(
            posts
                .delete_post(request(
                    ppb::DeletePostRequest {
                        post_id: f.doomed_post.id.clone(),
                    },
                    t,
                ))
                .await,
        ),
        "ListPostsByHashtag" => code(
            posts
                .list_posts_by_hashtag(request(
                    ppb::ListPostsByHashtagRequest {
                        hashtag: "rust".into(),
                        page_size: 5,
                        page_token: String::new(),
                        viewer_id: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "ListTrendingHashtags" => code(
            posts
                .list_trending_hashtags(request(
                    ppb::ListTrendingHashtagsRequest {
                        window: None,
                        page_size: 5,
                    },
                    t,
                ))
                .await,
        ),
        "HidePost" => code(
            eng.hide_post(request(
                epb::HidePostRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "UnhidePost" => code(
            eng.unhide_post(request(
                epb::UnhidePostRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "MuteHashtag" => code(
            eng.mute_hashtag(request(
                epb::MuteHashtagRequest {
                    member_id: me,
                    hashtag: "#Crypto".into(),
                },
                t,
            ))
            .await,
        ),
        "UnmuteHashtag" => code(
            eng.unmute_hashtag(request(
                epb::UnmuteHashtagRequest {
                    member_id: me,
                    hashtag: "crypto".into(),
                },
                t,
            ))
            .await,
        ),
        "MuteAuthor" => code(
            eng.mute_author(request(
                epb::MuteAuthorRequest {
                    member_id: me,
                    author_id: f.third.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "UnmuteAuthor" => code(
            eng.unmute_author(request(
                epb::UnmuteAuthorRequest {
                    member_id: me,
                    author_id: f.third.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "ListMutes" => code(
            eng.list_mutes(request(epb::ListMutesRequest { member_id: me }, t))
                .await,
        ),
        "Unreact" => code(
            eng.unreact(request(
                epb::UnreactRequest {
                    member_id: me,
                    post_id: f.post.id.clone(),
                },
                t,
            ))
            .await,
        ),
        "ListReactions" => code(
            eng.list_reactions(request(
                epb::ListReactionsRequest {
                    post_id: f.post.id.clone(),
                    page_size: 5,
                    ..Default::default()
                },
                t,
            ))
            .await,
        ),
        "UpdateComment" => code(
            eng.update_comment(request(
                epb::UpdateCommentRequest {
                    comment: Some(epb::Comment {
                        id: f.comment.clone(),
                        text: "Edited comment".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
                t,
            ))
            .await,
        ),
        "DeleteComment" => code(
            eng.delete_comment(request(
                epb::DeleteCommentRequest {
                    comment_id: f.doomed_comment.clone(),
                },
                t,
            ))
            .await,
        ),
        "ReactToComment" => code(
            eng.react_to_comment(request(
                epb::ReactToCommentRequest {
                    member_id: me,
                    comment_id: f.comment.clone(),
                    reaction_type: epb::ReactionType::Celebrate as i32,
                },
                t,
            ))
            .await,
        ),
        "UnreactToComment" => code(
            eng.unreact_to_comment(request(
                epb::UnreactToCommentRequest {
                    member_id: me,
                    comment_id: f.comment.clone(),
                },
                t,
            ))
            .await,
        ),
        "ListComments" => code(
            eng.list_comments(request(
                epb::ListCommentsRequest {
                    post_id: f.post.id.clone(),
                    page_size: 5,
                    ..Default::default()
                },
                t,
            ))
            .await,
        ),
        "RecordImpressions" => code(
            eng.record_impressions(request(
                epb::RecordImpressionsRequest {
                    member_id: me,
                    post_ids: vec![f.post.id.clone()],
                },
                t,
            ))
            .await,
        ),
        "ListSeenPosts" => code(
            eng.list_seen_posts(request(
                epb::ListSeenPostsRequest {
                    member_id: me,
                    post_ids: vec![f.post.id.clone()],
                },
                t,
            ))
            .await,
        ),
        "DeclineInvitation" => code(
            profiles
                .decline_invitation(request(
                    prpb::DeclineInvitationRequest {
                        invitation_id: f.to_decline.clone(),
                        member_id: me,
                    },
                    t,
                ))
                .await,
        ),
        "WithdrawInvitation" => code(
            profiles
                .withdraw_invitation(request(
                    prpb::WithdrawInvitationRequest {
                        invitation_id: f.to_withdraw.clone(),
                        member_id: me,
                    },
                    t,
                ))
                .await,
        ),
        "ListFollowers" => code(
            profiles
                .list_followers(request(
                    prpb::ListFollowersRequest {
                        member_id: me,
                        page_size: 10,
                        page_token: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "GetConnectionDegree" => code(
            profiles
                .get_connection_degree(request(
                    prpb::GetConnectionDegreeRequest {
                        viewer_id: me,
                        member_id: f.third.id.clone(),
                    },
                    t,
                ))
                .await,
        ),
        "Unfollow" => code(
            profiles
                .unfollow(request(
                    prpb::UnfollowRequest {
                        member_id: me,
                        target: Some(prpb::unfollow_request::Target::Hashtag("rust".into())),
                    },
                    t,
                ))
                .await,
        ),
        "RemoveConnection" => code(
            profiles
                .remove_connection(request(
                    prpb::RemoveConnectionRequest {
                        member_id: me,
                        connection_id: f.other.id.clone(),
                    },
                    t,
                ))
                .await,
        ),
        "SuggestConnections" => code(
            profiles
                .suggest_connections(request(
                    prpb::SuggestConnectionsRequest {
                        member_id: me,
                        page_size: 5,
                        page_token: String::new(),
                    },
                    t,
                ))
                .await,
        ),
        "SearchProfiles" => code(
            profiles
                .search_profiles(request(
                    prpb::SearchProfilesRequest {
                        query: "matrix".into(),
                        ..Default::default()
                    },
                    t,
                ))
                .await,
        ),
        "ImportConnections" => code(
            profiles
                .import_connections(request(
                    prpb::ImportConnectionsRequest {
                        pairs: vec![prpb::ConnectionPair {
                            member_id: f.other.id.clone(),
                            other_id: f.third.id.clone(),
                        }],
                    },
                    t,
                ))
                .await,
        ),
        "ImportProfiles" => code(
            profiles
                .import_profiles(request(
                    prpb::ImportProfilesRequest {
                        profiles: vec![prpb::Profile {
                            id: pronet_common::ids::new_id(),
                            handle: format!("imp_{}", &pronet_common::ids::new_id()[20..]),
                            display_name: "Imported Member".into(),
                            ..Default::default()
                        }],
                    },
                    t,
                ))
                .await,
        ),
        "GetFeed" => code(
            feed.get_feed(request(
                fpb::GetFeedRequest {
                    member_id: me,
                    page_size: 5,
                    page_token: String::new(),
                    ..Default::default()
                },
                t,
            ))
            .await,
        ),
        "ExplainFeedItem" => code(
            feed.explain_feed_item(request(
                fpb::ExplainFeedItemRequest {
                    member_id: me,
                    post_id: pronet_common::ids::new_id(),
                    ranking_profile: String::new(),
                },
                t,
            ))
            .await,
        ),
        "GetRankingModel" => code(
            feed.get_ranking_model(request(fpb::GetRankingModelRequest {}, t))
                .await,
        ),
        "TrainRankingModel" => code(
            feed.train_ranking_model(request(fpb::TrainRankingModelRequest {}, t))
                .await,
        ),
        "ImportPosts" => code(
            posts
                .import_posts(request(
                    ppb::ImportPostsRequest {
                        posts: vec![ppb::ImportedPost {
                            id: "matrix-imported-post".into(),
                            author_id: me,
                            text: "Imported for the matrix".into(),
                            visibility: ppb::Visibility::Public as i32,
                            create_time: Some(Timestamp {
                                seconds: 1_600_000_000,
                                nanos: 0,
                            }),
                        }],
                    },
                    t,
                ))
                .await,
        ),
        "ImportEngagement" => code(
            eng.import_engagement(request(
                epb::ImportEngagementRequest {
                    reactions: vec![epb::ImportedReaction {
                        post_id: f.post.id.clone(),
                        member_id: me,
                        reaction_type: epb::ReactionType::Insightful as i32,
                        create_time: Some(Timestamp {
                            seconds: 1_600_000_000,
                            nanos: 0,
                        }),
                    }],
                    ..Default::default()
                },
                t,
            ))
            .await,
        ),
        "Health" => {
            let mut health = tonic_health::pb::health_client::HealthClient::new(
                crate::helpers::channel(app.addrs().feed).await,
            );
            code(
                health
                    .check(request(
                        tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        },
                        t,
                    ))
                    .await,
            )
        }
        other => panic!("no call for {other}"),
    }
}

#[tokio::test]
async fn every_rpc_answers_every_kind_of_caller_with_the_expected_code() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let me = app.member("me_myself").await;
    let other = app.member("other").await;
    let third = app.member("third").await;
    let blockee = app.member("blockee").await;
    let post = app
        .post(&me, "Public post for the matrix", ppb::Visibility::Public)
        .await;
    let invitation = app
        .profiles
        .clone()
        .create_invitation(app.req(
            &other,
            prpb::CreateInvitationRequest {
                inviter_id: other.id.clone(),
                invitee_id: me.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
        .id;
    let doomed_post = app
        .post(&me, "A post the matrix deletes", ppb::Visibility::Public)
        .await;
    let comment = app.comment_id(&me, &post, "A comment for the matrix").await;
    let doomed_comment = app
        .comment_id(&me, &post, "A comment the matrix deletes")
        .await;
    let invite = |from: &Member, to: &Member| {
        app.req(
            from,
            prpb::CreateInvitationRequest {
                inviter_id: from.id.clone(),
                invitee_id: to.id.clone(),
                message: String::new(),
                request_id: String::new(),
            },
        )
    };
    let d1 = app.member("decliner").await;
    let d2 = app.member("withdrawee").await;
    let mut p = app.profiles.clone();
    let to_decline = p
        .create_invitation(invite(&d1, &me))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
        .id;
    let to_withdraw = p
        .create_invitation(invite(&me, &d2))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
        .id;
    let fixture = Fixture {
        to_decline,
        to_withdraw,
        me,
        other,
        third,
        blockee,
        post,
        doomed_post,
        comment,
        doomed_comment,
        invitation,
    };

    let mut mismatches = Vec::new();
    for (rpc, expected) in MATRIX {
        for (who, want) in COLUMNS.iter().zip(expected) {
            let got = invoke(&app, &fixture, rpc, token_for(&app, &fixture, *who, rpc)).await;
            if got != *want {
                mismatches.push(format!("{rpc} as {who:?}: expected {want:?}, got {got:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "authorization mismatches:\n{}",
        mismatches.join("\n")
    );
}
