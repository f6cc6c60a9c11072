//! Property tests with hostile input against the running suite: arbitrary bytes as request
//! bodies, and well-formed messages full of hostile values (control characters, huge and empty
//! strings, extreme numbers, unknown enum values, long lists). No input may panic a server or
//! come back INTERNAL/UNKNOWN: bad input is the caller's fault and must say so.

use bytes::{Buf, BufMut};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use prost_types::{FieldMask, Timestamp};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::helpers::{spawn_app, TestApp};

/// Sends and receives raw bytes, so tests can put anything on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;
#[derive(Debug, Clone, Default)]
struct RawEncoder;
#[derive(Debug, Clone, Default)]
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Every method of the four services, with the server that answers it.
const METHODS: &[(&str, &str)] = &[
    ("profile", "/pronet.profile.v1.ProfileService/CreateProfile"),
    ("profile", "/pronet.profile.v1.ProfileService/GetProfile"),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/BatchGetProfiles",
    ),
    ("profile", "/pronet.profile.v1.ProfileService/UpdateProfile"),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/CreateInvitation",
    ),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/AcceptInvitation",
    ),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/ListInvitations",
    ),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/ListConnections",
    ),
    ("profile", "/pronet.profile.v1.ProfileService/Follow"),
    ("profile", "/pronet.profile.v1.ProfileService/ListFollowing"),
    ("profile", "/pronet.profile.v1.ProfileService/BlockMember"),
    ("profile", "/pronet.profile.v1.ProfileService/UnblockMember"),
    (
        "profile",
        "/pronet.profile.v1.ProfileService/BatchGetRelationships",
    ),
    ("post", "/pronet.post.v1.PostService/CreatePost"),
    ("post", "/pronet.post.v1.PostService/GetPost"),
    ("post", "/pronet.post.v1.PostService/BatchGetPosts"),
    ("post", "/pronet.post.v1.PostService/ListPostsByAuthor"),
    (
        "post",
        "/pronet.post.v1.PostService/ListRecentPostsByAuthors",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/React",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/CreateComment",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/RecordShare",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/BatchGetPostStats",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/ListRecentActivity",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/HidePost",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/UnhidePost",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/MuteHashtag",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/UnmuteHashtag",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/MuteAuthor",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/UnmuteAuthor",
    ),
    (
        "engagement",
        "/pronet.engagement.v1.EngagementService/ListMutes",
    ),
    ("feed", "/pronet.feed.v1.FeedService/GetFeed"),
    ("feed", "/pronet.feed.v1.FeedService/ExplainFeedItem"),
];

/// Codes that would mean the server, not the caller, is at fault.
const SERVER_FAULTS: &[Code] = &[
    Code::Internal,
    Code::Unknown,
    Code::DataLoss,
    Code::Unavailable,
];

struct Target {
    channels: Vec<Channel>,
    member_token: String,
    service_token: String,
}

async fn target(app: &TestApp) -> (Target, String) {
    let addrs = app.addrs();
    let mut channels = Vec::new();
    for (server, _) in METHODS {
        let addr = match *server {
            "profile" => addrs.profile,
            "post" => addrs.post,
            "engagement" => addrs.engagement,
            _ => addrs.feed,
        };
        channels.push(crate::helpers::channel(addr).await);
    }
    let me = app.member("fuzzer").await;
    let service_token = app
        .auth
        .service_token("fuzz", std::time::Duration::from_secs(3600))
        .unwrap();
    (
        Target {
            channels,
            member_token: me.token.clone(),
            service_token,
        },
        me.id,
    )
}

async fn raw_call(t: &Target, method: usize, body: Vec<u8>, as_service: bool) -> Code {
    let mut grpc = tonic::client::Grpc::new(t.channels[method].clone());
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let token = if as_service {
        &t.service_token
    } else {
        &t.member_token
    };
    let request = pronet_common::auth::with_token(body, token);
    let path = PathAndQuery::from_static(METHODS[method].1);
    match grpc.unary(request, path, RawCodec).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Strings a hostile client would send.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_string()),
        Just("\u{0}\u{7}\u{1b}[31m".to_string()),
        Just("a".repeat(70_000)),
        Just("#".repeat(3001)),
        Just("../../etc/passwd".to_string()),
        Just("'; DROP TABLE posts; --".to_string()),
        Just("\u{202e}evil\u{200b}".to_string()),
        Just("e\u{301}".repeat(1600)),
        vec(any::<char>(), 0..40).prop_map(String::from_iter),
        "[a-z0-9_-]{1,70}".prop_map(|s| s),
    ]
}

fn hostile_int() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(-1),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(7),
        any::<i32>()
    ]
}

fn ts(n: i32) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: i64::from(n) * 1_000_000,
        nanos: n,
    })
}

/// A well-formed request for `method` built from hostile values.
fn message(method: usize, s: &[String], n: &[i32], me: &str, list_len: usize) -> Vec<u8> {
    // Mix the real member id in, so some requests get past the "act as yourself" checks.
    let id = |i: usize| {
        if n[i % n.len()] % 3 == 0 {
            me.to_string()
        } else {
            s[i % s.len()].clone()
        }
    };
    let list = |i: usize| -> Vec<String> { (0..list_len).map(|k| id(i + k)).collect() };
    let (a, b, c) = (n[0], n[1], n[2]);
    match METHODS[method].1.rsplit('/').next().unwrap_or_default() {
        "CreateProfile" => prpb::CreateProfileRequest {
            profile: Some(prpb::Profile {
                id: id(0),
                handle: s[1].clone(),
                display_name: s[2].clone(),
                headline: s[3].clone(),
                summary: s[4].clone(),
                location: s[5].clone(),
                industry: s[0].clone(),
                skills: list(2),
                create_time: ts(a),
                update_time: ts(b),
                connection_count: 0,
                follower_count: 0,
                positions: Vec::new(),
                education: Vec::new(),
                open_to_work: a % 2 == 0,
            }),
            request_id: String::new(),
        }
        .encode_to_vec(),
        "GetProfile" => prpb::GetProfileRequest {
            lookup: Some(if a % 2 == 0 {
                prpb::get_profile_request::Lookup::MemberId(id(0))
            } else {
                prpb::get_profile_request::Lookup::Handle(s[1].clone())
            }),
        }
        .encode_to_vec(),
        "BatchGetProfiles" => prpb::BatchGetProfilesRequest {
            member_ids: list(0),
            allow_missing: a % 2 == 0,
        }
        .encode_to_vec(),
        "UpdateProfile" => prpb::UpdateProfileRequest {
            profile: Some(prpb::Profile {
                id: id(0),
                handle: s[1].clone(),
                display_name: s[2].clone(),
                skills: list(3),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec![s[4].clone(), "handle".into(), "*".into()],
            }),
        }
        .encode_to_vec(),
        "CreateInvitation" => prpb::CreateInvitationRequest {
            inviter_id: id(0),
            invitee_id: id(1),
            message: s[2].clone(),
            request_id: String::new(),
        }
        .encode_to_vec(),
        "AcceptInvitation" => prpb::AcceptInvitationRequest {
            invitation_id: s[0].clone(),
            member_id: id(1),
        }
        .encode_to_vec(),
        "ListInvitations" => prpb::ListInvitationsRequest {
            member_id: id(0),
            direction: a,
            page_size: b,
            page_token: s[2].clone(),
        }
        .encode_to_vec(),
        "ListConnections" => prpb::ListConnectionsRequest {
            member_id: id(0),
            page_size: a,
            page_token: s[1].clone(),
        }
        .encode_to_vec(),
        "Follow" => prpb::FollowRequest {
            member_id: id(0),
            target: Some(if b % 2 == 0 {
                prpb::follow_request::Target::FolloweeId(id(1))
            } else {
                prpb::follow_request::Target::Hashtag(s[2].clone())
            }),
        }
        .encode_to_vec(),
        "ListFollowing" => prpb::ListFollowingRequest {
            member_id: id(0),
            page_size: a,
            page_token: s[1].clone(),
        }
        .encode_to_vec(),
        "BlockMember" => prpb::BlockMemberRequest {
            member_id: id(0),
            blocked_id: id(1),
        }
        .encode_to_vec(),
        "UnblockMember" => prpb::UnblockMemberRequest {
            member_id: id(0),
            blocked_id: id(1),
        }
        .encode_to_vec(),
        "BatchGetRelationships" => prpb::BatchGetRelationshipsRequest {
            viewer_id: id(0),
            member_ids: list(1),
        }
        .encode_to_vec(),
        "CreatePost" => ppb::CreatePostRequest {
            author_id: id(0),
            text: s[1].clone(),
            visibility: a,
            create_time: if b % 2 == 0 { ts(c) } else { None },
            request_id: String::new(),
            reshare_of: String::new(),
        }
        .encode_to_vec(),
        "GetPost" => ppb::GetPostRequest {
            post_id: s[0].clone(),
            viewer_id: id(1),
        }
        .encode_to_vec(),
        "BatchGetPosts" => ppb::BatchGetPostsRequest {
            post_ids: list(0),
            allow_missing: a % 2 == 0,
            viewer_id: id(1),
        }
        .encode_to_vec(),
        "ListPostsByAuthor" => ppb::ListPostsByAuthorRequest {
            author_id: id(0),
            page_size: a,
            page_token: s[1].clone(),
            viewer_id: id(2),
            start_time: None,
            end_time: None,
        }
        .encode_to_vec(),
        "ListRecentPostsByAuthors" => ppb::ListRecentPostsByAuthorsRequest {
            author_ids: list(0),
            hashtags: list(1),
            since: ts(a),
            max_posts: b,
            max_posts_per_author: c,
        }
        .encode_to_vec(),
        "React" => epb::ReactRequest {
            member_id: id(0),
            post_id: s[1].clone(),
            reaction_type: a,
        }
        .encode_to_vec(),
        "CreateComment" => epb::CreateCommentRequest {
            member_id: id(0),
            post_id: s[1].clone(),
            text: s[2].clone(),
            request_id: String::new(),
            parent_comment_id: String::new(),
        }
        .encode_to_vec(),
        "RecordShare" => epb::RecordShareRequest {
            member_id: id(0),
            post_id: s[1].clone(),
        }
        .encode_to_vec(),
        "BatchGetPostStats" => epb::BatchGetPostStatsRequest {
            post_ids: list(0),
            viewer_id: id(1),
        }
        .encode_to_vec(),
        "ListRecentActivity" => epb::ListRecentActivityRequest {
            member_ids: list(0),
            since: ts(a),
            max_activities: b,
        }
        .encode_to_vec(),
        "HidePost" => epb::HidePostRequest {
            member_id: id(0),
            post_id: s[1].clone(),
        }
        .encode_to_vec(),
        "UnhidePost" => epb::UnhidePostRequest {
            member_id: id(0),
            post_id: s[1].clone(),
        }
        .encode_to_vec(),
        "MuteHashtag" => epb::MuteHashtagRequest {
            member_id: id(0),
            hashtag: s[1].clone(),
        }
        .encode_to_vec(),
        "UnmuteHashtag" => epb::UnmuteHashtagRequest {
            member_id: id(0),
            hashtag: s[1].clone(),
        }
        .encode_to_vec(),
        "MuteAuthor" => epb::MuteAuthorRequest {
            member_id: id(0),
            author_id: s[1].clone(),
        }
        .encode_to_vec(),
        "UnmuteAuthor" => epb::UnmuteAuthorRequest {
            member_id: id(0),
            author_id: s[1].clone(),
        }
        .encode_to_vec(),
        "ListMutes" => epb::ListMutesRequest { member_id: id(0) }.encode_to_vec(),
        "GetFeed" => fpb::GetFeedRequest {
            member_id: id(0),
            page_size: a,
            page_token: s[1].clone(),
            ranking_profile: s[2].clone(),
        }
        .encode_to_vec(),
        "ExplainFeedItem" => fpb::ExplainFeedItemRequest {
            member_id: id(0),
            post_id: id(1),
            ranking_profile: s[2].clone(),
        }
        .encode_to_vec(),
        other => panic!("no message for {other}"),
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn arbitrary_bytes_are_refused_without_server_faults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(app) = rt.block_on(spawn_app()) else {
        return;
    };
    let (t, _) = rt.block_on(target(&app));
    let strategy = (0..METHODS.len(), vec(any::<u8>(), 0..300), any::<bool>());
    runner(400)
        .run(&strategy, |(method, bytes, as_service)| {
            let code = rt.block_on(raw_call(&t, method, bytes, as_service));
            prop_assert!(
                !SERVER_FAULTS.contains(&code),
                "{} answered {code:?}",
                METHODS[method].1
            );
            Ok(())
        })
        .unwrap();
    // Every server is still there.
    for method in [0, 13, 18, 23] {
        let code = rt.block_on(raw_call(&t, method, Vec::new(), false));
        assert!(!SERVER_FAULTS.contains(&code), "{code:?}");
    }
}

#[test]
fn hostile_well_formed_messages_are_refused_without_server_faults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(app) = rt.block_on(spawn_app()) else {
        return;
    };
    let (t, me) = rt.block_on(target(&app));
    let strategy = (
        0..METHODS.len(),
        vec(hostile_string(), 6),
        vec(hostile_int(), 3),
        prop_oneof![Just(0usize), Just(1), Just(3), Just(1001), Just(5001)],
        any::<bool>(),
    );
    runner(300)
        .run(
            &strategy,
            |(method, strings, ints, list_len, as_service)| {
                let body = message(method, &strings, &ints, &me, list_len);
                let code = rt.block_on(raw_call(&t, method, body, as_service));
                prop_assert!(
                    !SERVER_FAULTS.contains(&code),
                    "{} answered {code:?}",
                    METHODS[method].1
                );
                Ok(())
            },
        )
        .unwrap();
}
