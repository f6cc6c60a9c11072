//! The event-fed feed index end to end: random writes through the public API, then the index
//! the suite's feed kept current is compared with indexes built other ways: one that joined
//! midway (export while writes were flowing, then the tail) and one built from scratch after
//! the writes.

use std::collections::BTreeMap;
use std::time::Duration;

use pronet_common::auth::with_token;
use pronet_feed::events::SharedIndex;
use pronet_feed::index::{FeedIndex, IndexView, MemberView, Source};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::events::v1 as evpb;
use pronet_proto::events::v1::event::Payload;
use pronet_proto::events::v1::event_service_client::EventServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;

use crate::helpers::{spawn_app, Member, TestApp};

/// A small deterministic generator (xorshift), so a failure can be replayed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The configuration of a feed replica reading the suite's services.
pub(crate) fn feed_config(app: &TestApp) -> pronet_feed::FeedConfig {
    let addrs = app.addrs();
    pronet_feed::FeedConfig::new(pronet_feed::Upstreams {
        profile_addr: addrs.profile.to_string(),
        post_addr: addrs.post.to_string(),
        engagement_addr: addrs.engagement.to_string(),
        limits: pronet_common::upstream::CallLimits::default(),
        auth: app.auth.clone(),
    })
}

/// A feed index of its own, fed from the suite's services as a new replica would be.
pub(crate) async fn extra_feed(app: &TestApp) -> SharedIndex {
    extra_feed_with(app, None).await
}

pub(crate) async fn extra_feed_with(
    app: &TestApp,
    nats: Option<pronet_common::nats::NatsConfig>,
) -> SharedIndex {
    let mut config = feed_config(app);
    config.nats = nats;
    let built = pronet_feed::build(&config).expect("feed builds");
    let mut ready = built.ready.clone();
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
        .await
        .expect("the extra feed loads in time")
        .expect("ready");
    built.index
}

/// Waits until `index` has applied every event committed so far, then takes its view.
pub(crate) async fn settled_view(app: &TestApp, index: &SharedIndex) -> IndexView {
    let heads = app.event_heads().await;
    for _ in 0..5000 {
        let (positions, view) = {
            let index = index.read().unwrap_or_else(|p| p.into_inner());
            (Source::ALL.map(|s| index.position(s)), index.view())
        };
        if positions.iter().zip(heads).all(|(p, h)| *p >= h) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("index did not reach {heads:?}");
}

pub(crate) fn suite_index(app: &TestApp) -> SharedIndex {
    app.suite
        .as_ref()
        .and_then(|s| s.feed_index.clone())
        .expect("suite feed index")
}

/// Every kind of domain event, by name.
const EVERY_KIND: [&str; 25] = [
    "profile_created",
    "profile_renamed",
    "connection_made",
    "connection_removed",
    "member_followed",
    "member_unfollowed",
    "hashtag_followed",
    "hashtag_unfollowed",
    "member_blocked",
    "member_unblocked",
    "post_created",
    "post_edited",
    "post_deleted",
    "reaction_set",
    "reaction_removed",
    "comment_created",
    "comment_deleted",
    "share_recorded",
    "impressions_recorded",
    "post_hidden",
    "post_unhidden",
    "hashtag_muted",
    "hashtag_unmuted",
    "author_muted",
    "author_unmuted",
];

/// The kind of an event. No wildcard arm: a new kind of event does not compile here until it
/// is named, and [`EVERY_KIND`] with it, so the random writes are asked to make it too.
fn kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::ProfileCreated(_) => "profile_created",
        Payload::ProfileRenamed(_) => "profile_renamed",
        Payload::ConnectionMade(_) => "connection_made",
        Payload::ConnectionRemoved(_) => "connection_removed",
        Payload::MemberFollowed(_) => "member_followed",
        Payload::MemberUnfollowed(_) => "member_unfollowed",
        Payload::HashtagFollowed(_) => "hashtag_followed",
        Payload::HashtagUnfollowed(_) => "hashtag_unfollowed",
        Payload::MemberBlocked(_) => "member_blocked",
        Payload::MemberUnblocked(_) => "member_unblocked",
        Payload::PostCreated(_) => "post_created",
        Payload::PostEdited(_) => "post_edited",
        Payload::PostDeleted(_) => "post_deleted",
        Payload::ReactionSet(_) => "reaction_set",
        Payload::ReactionRemoved(_) => "reaction_removed",
        Payload::CommentCreated(_) => "comment_created",
        Payload::CommentDeleted(_) => "comment_deleted",
        Payload::ShareRecorded(_) => "share_recorded",
        Payload::ImpressionsRecorded(_) => "impressions_recorded",
        Payload::PostHidden(_) => "post_hidden",
        Payload::PostUnhidden(_) => "post_unhidden",
        Payload::HashtagMuted(_) => "hashtag_muted",
        Payload::HashtagUnmuted(_) => "hashtag_unmuted",
        Payload::AuthorMuted(_) => "author_muted",
        Payload::AuthorUnmuted(_) => "author_unmuted",
    }
}

/// How many events of each kind the suite's services committed, read back from their streams.
async fn committed_kinds(app: &TestApp) -> BTreeMap<&'static str, usize> {
    let addrs = app.addrs();
    let mut kinds = BTreeMap::new();
    for addr in [addrs.profile, addrs.post, addrs.engagement] {
        let mut client = EventServiceClient::new(crate::helpers::channel(addr).await)
            .max_decoding_message_size(64 << 20);
        let mut stream = client
            .stream_events(app.service_req(evpb::StreamEventsRequest {
                stop_at_head: true,
                max_batch: 5000,
                ..Default::default()
            }))
            .await
            .expect("stream events")
            .into_inner();
        while let Some(message) = stream.message().await.expect("events") {
            for event in message.events {
                let payload = event.payload.as_ref().expect("every event has a payload");
                *kinds.entry(kind(payload)).or_default() += 1;
            }
        }
    }
    kinds
}

/// One random write through the API, of any kind the services make an event of (see
/// [`EVERY_KIND`]); refusals (a post deleted meanwhile, a block) are part of the game and
/// change nothing.
pub(crate) async fn random_write(
    app: &TestApp,
    rng: &mut Rng,
    members: &[Member],
    posts: &mut Vec<ppb::Post>,
) {
    let a = &members[rng.below(members.len())];
    let b = &members[rng.below(members.len())];
    let mut profiles = app.profiles.clone();
    let mut post_client = app.posts.clone();
    let mut engagement = app.engagement.clone();
    let tags = ["rust", "sales", "ai", "hiring"];
    let post = (!posts.is_empty()).then(|| posts[rng.below(posts.len())].clone());
    match rng.below(22) {
        0 | 1 if a.id != b.id => {
            let invited = profiles
                .create_invitation(app.req(
                    a,
                    prpb::CreateInvitationRequest {
                        inviter_id: a.id.clone(),
                        invitee_id: b.id.clone(),
                        message: String::new(),
                        request_id: String::new(),
                    },
                ))
                .await;
            if let Ok(inv) = invited {
                if let Some(inv) = inv.into_inner().invitation {
                    let _ = profiles
                        .accept_invitation(app.req(
                            b,
                            prpb::AcceptInvitationRequest {
                                invitation_id: inv.id,
                                member_id: b.id.clone(),
                            },
                        ))
                        .await;
                }
            }
        }
        2 => {
            let _ = profiles
                .remove_connection(app.req(
                    a,
                    prpb::RemoveConnectionRequest {
                        member_id: a.id.clone(),
                        connection_id: b.id.clone(),
                    },
                ))
                .await;
        }
        3 => {
            // Followed, and half the time unfollowed again.
            let followed = profiles
                .follow(app.req(
                    a,
                    prpb::FollowRequest {
                        member_id: a.id.clone(),
                        target: Some(prpb::follow_request::Target::FolloweeId(b.id.clone())),
                    },
                ))
                .await;
            if followed.is_ok() && rng.below(2) == 0 {
                let _ = profiles
                    .unfollow(app.req(
                        a,
                        prpb::UnfollowRequest {
                            member_id: a.id.clone(),
                            target: Some(prpb::unfollow_request::Target::FolloweeId(b.id.clone())),
                        },
                    ))
                    .await;
            }
        }
        4 => {
            let target = if rng.below(2) == 0 {
                prpb::unfollow_request::Target::FolloweeId(b.id.clone())
            } else {
                prpb::unfollow_request::Target::Hashtag(tags[rng.below(tags.len())].into())
            };
            let _ = profiles
                .unfollow(app.req(
                    a,
                    prpb::UnfollowRequest {
                        member_id: a.id.clone(),
                        target: Some(target),
                    },
                ))
                .await;
        }
        5 => {
            // Followed, and a third of the time unfollowed again.
            let tag = tags[rng.below(tags.len())];
            let followed = profiles
                .follow(app.req(
                    a,
                    prpb::FollowRequest {
                        member_id: a.id.clone(),
                        target: Some(prpb::follow_request::Target::Hashtag(tag.into())),
                    },
                ))
                .await;
            if followed.is_ok() && rng.below(3) == 0 {
                let _ = profiles
                    .unfollow(app.req(
                        a,
                        prpb::UnfollowRequest {
                            member_id: a.id.clone(),
                            target: Some(prpb::unfollow_request::Target::Hashtag(tag.into())),
                        },
                    ))
                    .await;
            }
        }
        6 if rng.below(3) == 0 => {
            let _ = profiles
                .block_member(app.req(
                    a,
                    prpb::BlockMemberRequest {
                        member_id: a.id.clone(),
                        blocked_id: b.id.clone(),
                    },
                ))
                .await;
        }
        7 if rng.below(2) == 0 => {
            // A block lifted at once (a block ends connections and follows for good).
            let blocked = profiles
                .block_member(app.req(
                    a,
                    prpb::BlockMemberRequest {
                        member_id: a.id.clone(),
                        blocked_id: b.id.clone(),
                    },
                ))
                .await;
            if blocked.is_ok() {
                let _ = profiles
                    .unblock_member(app.req(
                        a,
                        prpb::UnblockMemberRequest {
                            member_id: a.id.clone(),
                            blocked_id: b.id.clone(),
                        },
                    ))
                    .await;
            }
        }
        8 | 9 => {
            let vis = if rng.below(3) == 0 {
                ppb::Visibility::Connections
            } else {
                ppb::Visibility::Public
            };
            let text = format!(
                "update {} #{}",
                rng.next() % 1000,
                tags[rng.below(tags.len())]
            );
            if let Ok(r) = post_client
                .create_post(app.req(
                    a,
                    ppb::CreatePostRequest {
                        author_id: a.id.clone(),
                        text,
                        visibility: vis as i32,
                        create_time: None,
                        request_id: String::new(),
                        reshare_of: String::new(),
                    },
                ))
                .await
            {
                posts.extend(r.into_inner().post);
            }
        }
        10 if post.is_some() => {
            let p = post.expect("checked");
            let author = members
                .iter()
                .find(|m| m.id == p.author_id)
                .expect("author");
            let _ = post_client
                .update_post(app.req(
                    author,
                    ppb::UpdatePostRequest {
                        post: Some(ppb::Post {
                            id: p.id.clone(),
                            text: format!("edited #{}", tags[rng.below(tags.len())]),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["text".into()],
                        }),
                    },
                ))
                .await;
        }
        11 if post.is_some() && rng.below(4) == 0 => {
            let p = post.expect("checked");
            let author = members
                .iter()
                .find(|m| m.id == p.author_id)
                .expect("author");
            let _ = post_client
                .delete_post(with_token(
                    ppb::DeletePostRequest {
                        post_id: p.id.clone(),
                    },
                    &author.token,
                ))
                .await;
        }
        12 | 13 if post.is_some() => {
            let p = post.expect("checked");
            let kinds = [
                epb::ReactionType::Like,
                epb::ReactionType::Insightful,
                epb::ReactionType::Celebrate,
            ];
            // Reacted (a second time: another type), and a quarter of the time unreacted.
            let reacted = engagement
                .react(app.req(
                    a,
                    epb::ReactRequest {
                        member_id: a.id.clone(),
                        post_id: p.id.clone(),
                        reaction_type: kinds[rng.below(kinds.len())] as i32,
                    },
                ))
                .await;
            if reacted.is_ok() && rng.below(4) == 0 {
                let _ = engagement
                    .unreact(app.req(
                        a,
                        epb::UnreactRequest {
                            member_id: a.id.clone(),
                            post_id: p.id.clone(),
                        },
                    ))
                    .await;
            }
        }
        14 if post.is_some() => {
            let p = post.expect("checked");
            let created = engagement
                .create_comment(app.req(
                    a,
                    epb::CreateCommentRequest {
                        member_id: a.id.clone(),
                        post_id: p.id.clone(),
                        text: "well said".into(),
                        ..Default::default()
                    },
                ))
                .await;
            if let (Ok(c), true) = (created, rng.below(3) == 0) {
                if let Some(c) = c.into_inner().comment {
                    let _ = engagement
                        .delete_comment(app.req(a, epb::DeleteCommentRequest { comment_id: c.id }))
                        .await;
                }
            }
        }
        16 | 20 if post.is_some() => {
            // Hidden, and half the time shown again.
            let p = post.expect("checked");
            let hidden = engagement
                .hide_post(app.req(
                    a,
                    epb::HidePostRequest {
                        member_id: a.id.clone(),
                        post_id: p.id.clone(),
                    },
                ))
                .await;
            if hidden.is_ok() && rng.below(2) == 0 {
                let _ = engagement
                    .unhide_post(app.req(
                        a,
                        epb::UnhidePostRequest {
                            member_id: a.id.clone(),
                            post_id: p.id.clone(),
                        },
                    ))
                    .await;
            }
        }
        17 => {
            // Muted, and half the time unmuted again.
            let tag = tags[rng.below(tags.len())];
            let muted = engagement
                .mute_hashtag(app.req(
                    a,
                    epb::MuteHashtagRequest {
                        member_id: a.id.clone(),
                        hashtag: tag.into(),
                    },
                ))
                .await;
            if muted.is_ok() && rng.below(2) == 0 {
                let _ = engagement
                    .unmute_hashtag(app.req(
                        a,
                        epb::UnmuteHashtagRequest {
                            member_id: a.id.clone(),
                            hashtag: tag.into(),
                        },
                    ))
                    .await;
            }
        }
        18 if a.id != b.id => {
            // Muted, and a third of the time unmuted again.
            let muted = engagement
                .mute_author(app.req(
                    a,
                    epb::MuteAuthorRequest {
                        member_id: a.id.clone(),
                        author_id: b.id.clone(),
                    },
                ))
                .await;
            if muted.is_ok() && rng.below(3) == 0 {
                let _ = engagement
                    .unmute_author(app.req(
                        a,
                        epb::UnmuteAuthorRequest {
                            member_id: a.id.clone(),
                            author_id: b.id.clone(),
                        },
                    ))
                    .await;
            }
        }
        19 => {
            let _ = profiles
                .update_profile(app.req(
                    a,
                    prpb::UpdateProfileRequest {
                        profile: Some(prpb::Profile {
                            id: a.id.clone(),
                            display_name: format!("Renamed {}", rng.next() % 1000),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["display_name".into()],
                        }),
                    },
                ))
                .await;
        }
        15 if post.is_some() => {
            let p = post.expect("checked");
            let _ = engagement
                .record_share(app.req(
                    a,
                    epb::RecordShareRequest {
                        member_id: a.id.clone(),
                        post_id: p.id.clone(),
                    },
                ))
                .await;
        }
        21 if post.is_some() => {
            let p = post.expect("checked");
            let _ = engagement
                .record_impressions(app.req(
                    a,
                    epb::RecordImpressionsRequest {
                        member_id: a.id.clone(),
                        post_ids: vec![p.id.clone()],
                    },
                ))
                .await;
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_feed_index_equals_indexes_rebuilt_midway_and_from_scratch() {
    let Some(app) = spawn_app().await else { return };
    let mut members = Vec::new();
    for i in 0..10 {
        members.push(app.member(&format!("member_{i}")).await);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut posts = Vec::new();
    for _ in 0..150 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    // A replica that joins while writes keep coming: its export races the writes, the tail
    // after the export's position must make up for it exactly.
    let writes = async {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut posts = posts.clone();
        for _ in 0..150 {
            random_write(&app, &mut rng, &members, &mut posts).await;
        }
    };
    let (midway, ()) = tokio::join!(extra_feed(&app), writes);

    let followed = settled_view(&app, &suite_index(&app)).await;
    let joined = settled_view(&app, &midway).await;
    let scratch = extra_feed(&app).await;
    let rebuilt = settled_view(&app, &scratch).await;

    assert!(
        followed.posts.len() > 10 && followed.members.len() == members.len(),
        "the random writes built a network: {} posts, {} members",
        followed.posts.len(),
        followed.members.len()
    );
    assert!(
        followed.members.values().any(|m| !m.connections.is_empty())
            && followed
                .posts
                .values()
                .any(|p| p.counts.total_reactions() > 0),
        "connections and reactions were made"
    );
    let kinds = committed_kinds(&app).await;
    let missing: Vec<&str> = EVERY_KIND
        .into_iter()
        .filter(|k| !kinds.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "the random writes made no {missing:?} event (made {kinds:?})"
    );
    // What the writes made is in the index, so the comparisons below compare it.
    let any = |has: fn(&MemberView) -> bool| followed.members.values().any(has);
    let present = [
        ("hidden posts", any(|m| !m.hidden.is_empty())),
        ("impressions", any(|m| !m.seen.is_empty())),
        ("muted hashtags", any(|m| !m.muted_hashtags.is_empty())),
        ("muted authors", any(|m| !m.muted_authors.is_empty())),
        ("blocks", any(|m| !m.blocked_by.is_empty())),
        ("engagement", any(|m| !m.activity.is_empty())),
        ("own posts", any(|m| !m.posts.is_empty())),
        (
            "new names",
            any(|m| {
                m.display_name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("Renamed"))
            }),
        ),
        ("deleted posts", !followed.deleted.is_empty()),
        ("hashtag timelines", !followed.hashtag_timelines.is_empty()),
    ];
    let absent: Vec<&str> = present
        .iter()
        .filter(|(_, there)| !there)
        .map(|(what, _)| *what)
        .collect();
    assert!(absent.is_empty(), "the index holds no {absent:?}");
    assert_eq!(joined, followed, "a replica that joined midway");
    assert_eq!(rebuilt, followed, "an index built from scratch");
}

#[tokio::test]
async fn a_restarted_feed_rebuilds_the_same_index() {
    let Some(mut app) = spawn_app().await else {
        return;
    };
    let members: Vec<Member> = futures_join(&app, 6).await;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut posts = Vec::new();
    for _ in 0..120 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    let before = settled_view(&app, &suite_index(&app)).await;
    app.restart().await;
    let after = settled_view(&app, &suite_index(&app)).await;
    assert_eq!(after, before);
}

/// A feed replica that saves its index to `path` every 100 ms, stopped by `stop`, reading its
/// events from JetStream when `nats` is given.
pub(crate) fn saving_feed(
    app: &TestApp,
    path: &std::path::Path,
    stop: &pronet_common::shutdown::Shutdown,
    nats: Option<pronet_common::nats::NatsConfig>,
) -> pronet_feed::BuiltFeed {
    let mut config = feed_config(app);
    config.nats = nats;
    config.saved_index = Some(pronet_feed::events::SavedIndex {
        path: path.to_path_buf(),
        every: Duration::from_millis(100),
    });
    config.shutdown = stop.clone();
    pronet_feed::build(&config).expect("feed builds")
}

/// Waits until the file at `path` holds an index saved at `heads` or past them; that index.
pub(crate) async fn saved_copy_at(path: &std::path::Path, heads: [i64; 3]) -> FeedIndex {
    for _ in 0..200 {
        if let Ok(bytes) = std::fs::read(path) {
            if let Ok((index, _)) = FeedIndex::load(&bytes, i64::MAX / 4) {
                if Source::ALL
                    .iter()
                    .zip(heads)
                    .all(|(s, h)| index.position(*s) >= h)
                {
                    return index;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the feed saved no index at {heads:?} to {}", path.display());
}

#[tokio::test]
async fn a_feed_restarted_from_its_saved_index_replays_only_what_came_after() {
    let Some(app) = spawn_app().await else { return };
    let members: Vec<Member> = futures_join(&app, 6).await;
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    let mut posts = Vec::new();
    for _ in 0..100 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed-index.bin");
    let stop = pronet_common::shutdown::Shutdown::new();
    let first = saving_feed(&app, &path, &stop, None);
    settled_view(&app, &first.index).await;
    // Wait for a save of the settled index.
    let heads = app.event_heads().await;
    saved_copy_at(&path, heads).await;
    stop.trigger();
    // Writes the saved copy has not seen.
    for _ in 0..100 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    let later = app.event_heads().await;
    assert!(
        later.iter().zip(heads).any(|(l, h)| *l > h),
        "the second round of writes made events"
    );

    let second = saving_feed(&app, &path, &pronet_common::shutdown::Shutdown::new(), None);
    let mut ready = second.ready.clone();
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
        .await
        .expect("the restarted feed is ready in time")
        .expect("ready");
    let restored = settled_view(&app, &second.index).await;
    let followed = settled_view(&app, &suite_index(&app)).await;
    assert_eq!(restored, followed);
    assert_eq!(
        second.index.read().unwrap().exports(),
        0,
        "the restarted feed loaded its saved copy and replayed events, exporting nothing"
    );

    // A saved copy ahead of its sources (their data was replaced) is rebuilt by export.
    let fresh = spawn_app().await.expect("a second suite");
    let third = saving_feed(
        &fresh,
        &path,
        &pronet_common::shutdown::Shutdown::new(),
        None,
    );
    let mut ready = third.ready.clone();
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
        .await
        .expect("the feed on other data is ready in time")
        .expect("ready");
    let rebuilt = settled_view(&fresh, &third.index).await;
    assert_eq!(rebuilt, settled_view(&fresh, &suite_index(&fresh)).await);
    assert!(third.index.read().unwrap().exports() >= 3);
}

async fn futures_join(app: &TestApp, n: usize) -> Vec<Member> {
    let mut members = Vec::new();
    for i in 0..n {
        members.push(app.member(&format!("restart_{i}")).await);
    }
    members
}

#[tokio::test]
async fn the_event_stream_is_for_services_only_and_validates_its_input() {
    use tonic::Code;

    let Some(app) = spawn_app().await else { return };
    let member = app.member("curious").await;
    let mut c = EventServiceClient::new(crate::helpers::channel(app.addrs().post).await);
    let e = c
        .stream_events(app.req(&member, evpb::StreamEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = c
        .stream_events(evpb::StreamEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c
        .stream_events(app.service_req(evpb::StreamEventsRequest {
            after_sequence: -1,
            max_batch: 100_000,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    crate::helpers::assert_bad_request(&e, &["after_sequence", "max_batch"]);

    // A post's creation is on the post service's stream, with its sequence.
    app.post(&member, "hello #events", ppb::Visibility::Public)
        .await;
    let mut stream = c
        .stream_events(app.service_req(evpb::StreamEventsRequest {
            stop_at_head: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        events.extend(m.events);
    }
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 1);
    assert_eq!(events[0].source, "post");
    match &events[0].payload {
        Some(evpb::event::Payload::PostCreated(p)) => {
            assert_eq!(p.author_id, member.id);
            assert_eq!(p.hashtags, ["events"]);
        }
        other => panic!("expected PostCreated, got {other:?}"),
    }
}

#[tokio::test]
async fn events_over_jetstream_feed_the_index_like_the_grpc_stream() {
    let Some(nats) = pronet_common::testing::nats("e2e_jetstream").await else {
        return;
    };
    let Some(app) = crate::helpers::spawn_app_with(Some(nats.config.clone())).await else {
        nats.cleanup().await;
        return;
    };
    let mut members = Vec::new();
    for i in 0..8 {
        members.push(app.member(&format!("js_member_{i}")).await);
    }
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let mut posts = Vec::new();
    for _ in 0..150 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    let over_nats = settled_view(&app, &suite_index(&app)).await;
    // The same state read over the gRPC streams, and over NATS by a replica starting now.
    let grpc = extra_feed(&app).await;
    let joined = extra_feed_with(&app, Some(nats.config.clone())).await;
    assert_eq!(settled_view(&app, &grpc).await, over_nats, "gRPC stream");
    assert_eq!(settled_view(&app, &joined).await, over_nats, "NATS replica");
    // Every committed event was published, each once.
    let heads = app.event_heads().await;
    for (source, head) in ["profile", "post", "engagement"].into_iter().zip(heads) {
        let mut published = 0;
        for _ in 0..500 {
            published = nats.stream_messages(source).await;
            if published >= head as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            published, head as u64,
            "{source}: JetStream holds each event once"
        );
    }
    // And the feed serves from it: a connection's new post is there.
    let (a, b) = (app.member("js_reader").await, app.member("js_writer").await);
    app.connect(&a, &b).await;
    let post = app
        .post(&b, "over the stream #nats", ppb::Visibility::Public)
        .await;
    let feed = app.feed_page(&a, 10, "").await;
    assert!(feed
        .items
        .iter()
        .any(|i| i.post.as_ref().is_some_and(|p| p.id == post.id)));
    nats.cleanup().await;
}

/// A NATS server of the test's own (the machine's `nats-server`), so the test can stop it.
struct PrivateNats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateNats {
    const BINARY: &'static str = "/usr/sbin/nats-server";

    fn start() -> Option<Self> {
        if !std::path::Path::new(Self::BINARY).exists() {
            assert!(
                !pronet_common::testing::services_required(),
                "{} is required (PRONET_TEST_REQUIRE_SERVICES or CI)",
                Self::BINARY
            );
            pronet_common::testing::skipped(
                "private NATS",
                &format!("no {} to stop and start", Self::BINARY),
            );
            return None;
        }
        let port = pronet_common::testing::unused_port();
        let mut nats = Self {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        nats.run();
        Some(nats)
    }

    fn run(&mut self) {
        let child = std::process::Command::new(Self::BINARY)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not listen on {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether anything accepts connections on the server's port.
    fn is_listening(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn config(&self) -> pronet_common::nats::NatsConfig {
        pronet_common::nats::NatsConfig {
            url: format!("nats://127.0.0.1:{}", self.port),
            prefix: "pronet".into(),
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_ten_seconds_under_writes_loses_nothing_and_applies_nothing_twice() {
    let Some(mut nats) = PrivateNats::start() else {
        return;
    };
    let Some(app) = crate::helpers::spawn_app_with(Some(nats.config())).await else {
        return;
    };
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.member(&format!("outage_{i}")).await);
    }
    let mut rng = Rng(0x5851_F42D_4C95_7F2D);
    let mut posts = Vec::new();
    for _ in 0..60 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    settled_view(&app, &suite_index(&app)).await;
    let exports = suite_index(&app).read().unwrap().exports();
    assert_eq!(exports, 3, "one export per source when the suite started");
    // Writes go on while NATS is away for 10 s: they commit (the outbox holds their events)
    // and reach the feed once it is back.
    let writing = async {
        let mut rng = Rng(0x1405_7B7E_F767_814F);
        let mut posts = posts.clone();
        let until = tokio::time::Instant::now() + Duration::from_secs(14);
        let mut writes = 0;
        while tokio::time::Instant::now() < until {
            random_write(&app, &mut rng, &members, &mut posts).await;
            writes += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        writes
    };
    let outage = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        nats.stop();
        let down = !nats.is_listening();
        let heads = app.event_heads().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let grown = app
            .event_heads()
            .await
            .iter()
            .zip(heads)
            .any(|(l, h)| *l > h);
        nats.run();
        (down, grown)
    };
    let (writes, (down, grown)) = tokio::join!(writing, outage);
    assert!(down, "NATS was really down: nothing listened on its port");
    assert!(grown, "events were committed while NATS was down");
    assert!(writes > 100, "writes went on during the outage: {writes}");

    let followed = settled_view(&app, &suite_index(&app)).await;
    let rebuilt = settled_view(&app, &extra_feed(&app).await).await;
    assert_eq!(
        followed, rebuilt,
        "the NATS-fed index equals one built from scratch"
    );
    // Events lost in the outage would be repaired, and so hidden, by a rebuild: there was none.
    assert_eq!(
        suite_index(&app).read().unwrap().exports(),
        exports,
        "the feed resumed from JetStream without exporting again"
    );
    // Every committed event is in JetStream exactly once.
    let js = pronet_common::nats::connect(&nats.config().url)
        .await
        .unwrap();
    let heads = app.event_heads().await;
    for (source, head) in ["profile", "post", "engagement"].into_iter().zip(heads) {
        let name = nats.config().stream_name(source);
        let mut messages = 0;
        for _ in 0..500 {
            let mut stream = js.get_stream(&name).await.unwrap();
            messages = stream.info().await.unwrap().state.messages;
            if messages >= head as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(messages, head as u64, "{source}: each committed event once");
    }
}
