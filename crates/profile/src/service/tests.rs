//! The handlers over a real SQLite store: who may do what, and what blocks change.

use pronet_common::testing::as_member;
use pronet_proto::profile::v1::profile_service_server::ProfileService;
use tonic::Code;

use super::*;
use crate::store::sqlite::SqliteProfileStore;

struct TestApp {
    api: ProfileApi,
    _dir: tempfile::TempDir,
}

async fn app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteProfileStore::open(&dir.path().join("profile.db"))
        .await
        .unwrap();
    TestApp {
        api: ProfileApi::new(Arc::new(store)),
        _dir: dir,
    }
}

/// A request as the auth layer hands it on for another pronet service.
fn as_service<T>(message: T) -> Request<T> {
    pronet_common::testing::as_service("post", message)
}

#[track_caller]
fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, message: &str) {
    let status = result.expect_err("expected an error status");
    assert_eq!(
        (status.code(), status.message()),
        (code, message),
        "{status:?}"
    );
}

fn new_profile(handle: &str) -> pb::CreateProfileRequest {
    pb::CreateProfileRequest {
        profile: Some(pb::Profile {
            handle: handle.into(),
            display_name: format!("{handle} display"),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

impl TestApp {
    /// Creates a profile for member `id`, with handle `id`.
    async fn member(&self, id: &str) {
        self.api
            .create_profile(as_member(id, new_profile(id)))
            .await
            .unwrap();
    }

    async fn connect(&self, a: &str, b: &str) {
        let inv = self.invite(a, b).await.unwrap();
        self.api
            .accept_invitation(as_member(
                b,
                pb::AcceptInvitationRequest {
                    invitation_id: inv.id,
                    member_id: b.into(),
                },
            ))
            .await
            .unwrap();
    }

    async fn invite(&self, from: &str, to: &str) -> Result<pb::Invitation, Status> {
        let r = self
            .api
            .create_invitation(as_member(
                from,
                pb::CreateInvitationRequest {
                    inviter_id: from.into(),
                    invitee_id: to.into(),
                    message: String::new(),
                    request_id: String::new(),
                },
            ))
            .await?;
        Ok(r.into_inner().invitation.unwrap())
    }

    async fn follow(&self, who: &str, whom: &str) -> Result<(), Status> {
        self.api
            .follow(as_member(
                who,
                pb::FollowRequest {
                    member_id: who.into(),
                    target: Some(pb::follow_request::Target::FolloweeId(whom.into())),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn follow_hashtag(&self, who: &str, tag: &str) {
        self.api
            .follow(as_member(
                who,
                pb::FollowRequest {
                    member_id: who.into(),
                    target: Some(pb::follow_request::Target::Hashtag(tag.into())),
                },
            ))
            .await
            .unwrap();
    }

    async fn block(&self, who: &str, whom: &str) -> Result<(), Status> {
        self.api
            .block_member(as_member(
                who,
                pb::BlockMemberRequest {
                    member_id: who.into(),
                    blocked_id: whom.into(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn unblock(&self, who: &str, whom: &str) -> Result<(), Status> {
        self.api
            .unblock_member(as_member(
                who,
                pb::UnblockMemberRequest {
                    member_id: who.into(),
                    blocked_id: whom.into(),
                },
            ))
            .await
            .map(|_| ())
    }

    async fn get(&self, viewer: &str, id: &str) -> Result<pb::Profile, Status> {
        let r = self
            .api
            .get_profile(as_member(
                viewer,
                pb::GetProfileRequest {
                    lookup: Some(pb::get_profile_request::Lookup::MemberId(id.into())),
                },
            ))
            .await?;
        Ok(r.into_inner().profile.unwrap())
    }

    /// The connections of `id`, listed by a service.
    async fn connections(&self, id: &str) -> Vec<String> {
        let r = self
            .api
            .list_connections(as_service(pb::ListConnectionsRequest {
                member_id: id.into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        r.into_inner()
            .connections
            .into_iter()
            .map(|c| c.member_id)
            .collect()
    }

    /// What `id` follows, members and hashtags alike, listed by a service.
    async fn following(&self, id: &str) -> Vec<String> {
        let r = self
            .api
            .list_following(as_service(pb::ListFollowingRequest {
                member_id: id.into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        let mut targets: Vec<String> = r
            .into_inner()
            .following
            .into_iter()
            .map(|f| match f.target.unwrap() {
                pb::following::Target::FolloweeId(id) => id,
                pb::following::Target::Hashtag(tag) => format!("#{tag}"),
            })
            .collect();
        targets.sort();
        targets
    }

    /// Pending invitations of `id` in `direction`, as (inviter, invitee), listed by a service.
    async fn invitations(&self, id: &str, direction: pb::InvitationDirection) -> Vec<String> {
        let r = self
            .api
            .list_invitations(as_service(pb::ListInvitationsRequest {
                member_id: id.into(),
                direction: direction as i32,
                ..Default::default()
            }))
            .await
            .unwrap();
        r.into_inner()
            .invitations
            .into_iter()
            .map(|i| format!("{}->{}", i.inviter_id, i.invitee_id))
            .collect()
    }

    async fn relationships(
        &self,
        viewer: &str,
        ids: &[&str],
    ) -> Result<Vec<(String, bool, bool)>, Status> {
        let r = self
            .api
            .batch_get_relationships(as_service(pb::BatchGetRelationshipsRequest {
                viewer_id: viewer.into(),
                member_ids: ids.iter().map(|s| s.to_string()).collect(),
            }))
            .await?;
        Ok(r.into_inner()
            .relationships
            .into_iter()
            .map(|r| (r.member_id, r.connected, r.blocked))
            .collect())
    }
}

#[tokio::test]
async fn create_profile_takes_the_callers_member_id() {
    let app = app().await;
    let mut req = new_profile("ada");
    req.profile.as_mut().unwrap().id = "someone-else".into();
    let created = app
        .api
        .create_profile(as_member("ada", req))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(created.id, "ada");
    assert_eq!(app.get("ada", "ada").await.unwrap().handle, "ada");
}

#[tokio::test]
async fn second_profile_of_a_member_already_exists() {
    let app = app().await;
    app.member("ada").await;
    // The same request again, and one with a new handle: one profile per member either way.
    assert_status(
        app.api
            .create_profile(as_member("ada", new_profile("ada")))
            .await,
        Code::AlreadyExists,
        "profile already exists",
    );
    assert_status(
        app.api
            .create_profile(as_member("ada", new_profile("ada2")))
            .await,
        Code::AlreadyExists,
        "profile already exists",
    );
    // Another member with a taken handle hears about the handle.
    assert_status(
        app.api
            .create_profile(as_member("bob", new_profile("ADA")))
            .await,
        Code::AlreadyExists,
        "handle is already taken",
    );
}

#[tokio::test]
async fn create_profile_retried_with_its_request_id_returns_the_first_profile() {
    let app = app().await;
    let mut req = new_profile("ada");
    req.request_id = "req-1".into();
    let first = app
        .api
        .create_profile(as_member("ada", req.clone()))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    // The retry may differ (a client rebuilt it): the first result stands, nothing is created.
    req.profile.as_mut().unwrap().handle = "ada2".into();
    let again = app
        .api
        .create_profile(as_member("ada", req))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(again, first);
    assert_status(
        app.api
            .get_profile(as_member(
                "ada",
                pb::GetProfileRequest {
                    lookup: Some(pb::get_profile_request::Lookup::Handle("ada2".into())),
                },
            ))
            .await,
        Code::NotFound,
        "profile not found",
    );
    // Without the key, or with another, it is a second create.
    assert_status(
        app.api
            .create_profile(as_member("ada", new_profile("ada")))
            .await,
        Code::AlreadyExists,
        "profile already exists",
    );
}

#[tokio::test]
async fn create_invitation_retried_with_its_request_id_returns_the_first_invitation() {
    let app = app().await;
    for id in ["ada", "bob", "cyd"] {
        app.member(id).await;
    }
    let invite = |from: &str, to: &str, request_id: &str| {
        as_member(
            from,
            pb::CreateInvitationRequest {
                inviter_id: from.into(),
                invitee_id: to.into(),
                message: String::new(),
                request_id: request_id.into(),
            },
        )
    };
    let first = app
        .api
        .create_invitation(invite("ada", "bob", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let again = app
        .api
        .create_invitation(invite("ada", "bob", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        app.invitations("bob", pb::InvitationDirection::Received)
            .await,
        ["ada->bob"]
    );
    // Another key is another request.
    assert_status(
        app.api
            .create_invitation(invite("ada", "bob", "req-2"))
            .await,
        Code::AlreadyExists,
        "an invitation between these members is already pending",
    );
    // Accepted since: the retry still answers with the invitation, now accepted.
    app.api
        .accept_invitation(as_member(
            "bob",
            pb::AcceptInvitationRequest {
                invitation_id: first.id.clone(),
                member_id: "bob".into(),
            },
        ))
        .await
        .unwrap();
    let late = app
        .api
        .create_invitation(invite("ada", "bob", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(late.id, first.id);
    assert_eq!(late.state, pb::InvitationState::Accepted as i32);
    // Keys belong to their caller: bob's "req-1" is his own.
    let bobs = app
        .api
        .create_invitation(invite("bob", "cyd", "req-1"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_ne!(bobs.id, first.id);
    assert_eq!(
        app.invitations("cyd", pb::InvitationDirection::Received)
            .await,
        ["bob->cyd"]
    );
}

#[tokio::test]
async fn request_ids_are_checked_like_ids() {
    let app = app().await;
    app.member("bob").await;
    let mut req = new_profile("ada");
    req.request_id = "not an id".into();
    let status = app
        .api
        .create_profile(as_member("ada", req))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("request_id"), "{status:?}");
    let status = app
        .api
        .create_invitation(as_member(
            "ada",
            pb::CreateInvitationRequest {
                inviter_id: "ada".into(),
                invitee_id: "bob".into(),
                message: String::new(),
                request_id: "x".repeat(65),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("request_id"), "{status:?}");
}

#[tokio::test]
async fn a_service_cannot_create_a_profile() {
    let app = app().await;
    assert_status(
        app.api.create_profile(as_service(new_profile("ada"))).await,
        Code::PermissionDenied,
        "this method is for members only",
    );
}

#[tokio::test]
async fn a_handler_reached_without_a_caller_is_unauthenticated() {
    let app = app().await;
    assert_status(
        app.api
            .create_profile(Request::new(new_profile("ada")))
            .await,
        Code::Unauthenticated,
        "missing bearer token",
    );
    assert_status(
        app.api
            .get_profile(Request::new(pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId("ada".into())),
            }))
            .await,
        Code::Unauthenticated,
        "missing bearer token",
    );
}

#[tokio::test]
async fn acting_as_another_member_is_permission_denied() {
    let app = app().await;
    app.member("ada").await;
    app.member("bob").await;
    let inv = app.invite("ada", "bob").await.unwrap();
    // "zed" does not exist: the answer is the same, so it tells nothing.
    for other in ["ada", "zed"] {
        let denied = |field: &str| format!("{field} must be the caller's own member id");
        assert_status(
            app.api
                .update_profile(as_member(
                    "bob",
                    pb::UpdateProfileRequest {
                        profile: Some(pb::Profile {
                            id: other.into(),
                            headline: "hacked".into(),
                            ..Default::default()
                        }),
                        update_mask: None,
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("profile.id"),
        );
        assert_status(
            app.api
                .create_invitation(as_member(
                    "bob",
                    pb::CreateInvitationRequest {
                        inviter_id: other.into(),
                        invitee_id: "bob".into(),
                        message: String::new(),
                        request_id: String::new(),
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("inviter_id"),
        );
        assert_status(
            app.api
                .accept_invitation(as_member(
                    "ada",
                    pb::AcceptInvitationRequest {
                        invitation_id: inv.id.clone(),
                        member_id: if other == "ada" { "bob" } else { other }.into(),
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("member_id"),
        );
        assert_status(
            app.api
                .follow(as_member(
                    "bob",
                    pb::FollowRequest {
                        member_id: other.into(),
                        target: Some(pb::follow_request::Target::Hashtag("rust".into())),
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("member_id"),
        );
        assert_status(
            app.api
                .block_member(as_member(
                    "bob",
                    pb::BlockMemberRequest {
                        member_id: other.into(),
                        blocked_id: "bob".into(),
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("member_id"),
        );
        assert_status(
            app.api
                .unblock_member(as_member(
                    "bob",
                    pb::UnblockMemberRequest {
                        member_id: other.into(),
                        blocked_id: "bob".into(),
                    },
                ))
                .await,
            Code::PermissionDenied,
            &denied("member_id"),
        );
    }
    // Nothing changed: the invitation is still pending, ada's headline untouched.
    assert_eq!(
        app.invitations("bob", pb::InvitationDirection::Received)
            .await,
        ["ada->bob"]
    );
    assert_eq!(app.get("ada", "ada").await.unwrap().headline, "");
}

#[tokio::test]
async fn invalid_fields_are_reported_before_permission() {
    let app = app().await;
    let status = app
        .api
        .block_member(as_member(
            "bob",
            pb::BlockMemberRequest {
                member_id: "not an id".into(),
                blocked_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("member_id"), "{status:?}");
    assert!(status.message().contains("blocked_id"), "{status:?}");
}

#[tokio::test]
async fn listing_someone_elses_lists_is_for_services_only() {
    let app = app().await;
    app.member("ada").await;
    app.member("bob").await;
    app.connect("ada", "bob").await;
    let denied = "member_id must be the caller's own member id";
    let list = pb::ListConnectionsRequest {
        member_id: "ada".into(),
        ..Default::default()
    };
    assert_status(
        app.api
            .list_connections(as_member("bob", list.clone()))
            .await,
        Code::PermissionDenied,
        denied,
    );
    let own = app
        .api
        .list_connections(as_member("ada", list.clone()))
        .await
        .unwrap();
    assert_eq!(own.into_inner().connections.len(), 1);
    let by_service = app.api.list_connections(as_service(list)).await.unwrap();
    assert_eq!(by_service.into_inner().connections[0].member_id, "bob");

    assert_status(
        app.api
            .list_following(as_member(
                "bob",
                pb::ListFollowingRequest {
                    member_id: "ada".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        denied,
    );
    assert_status(
        app.api
            .list_invitations(as_member(
                "bob",
                pb::ListInvitationsRequest {
                    member_id: "ada".into(),
                    direction: pb::InvitationDirection::Received as i32,
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        denied,
    );
    // Permission does not depend on existence.
    assert_status(
        app.api
            .list_connections(as_member(
                "bob",
                pb::ListConnectionsRequest {
                    member_id: "zed".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        denied,
    );
}

#[tokio::test]
async fn block_removes_connection_follows_and_pending_invitations_both_ways() {
    let app = app().await;
    for m in ["ada", "bob", "cyd", "dan", "eve"] {
        app.member(m).await;
    }
    // ada and bob: connected and following each other.
    app.connect("ada", "bob").await;
    app.follow("ada", "bob").await.unwrap();
    app.follow("bob", "ada").await.unwrap();
    // A pending invitation each way: cyd invited ada, ada invited dan.
    app.invite("cyd", "ada").await.unwrap();
    app.invite("ada", "dan").await.unwrap();
    // Left alone: ada's other ties.
    app.connect("ada", "eve").await;
    app.follow("ada", "eve").await.unwrap();
    app.follow_hashtag("ada", "rust").await;
    app.connect("bob", "eve").await;

    app.block("ada", "bob").await.unwrap();
    app.block("cyd", "ada").await.unwrap();
    app.block("ada", "dan").await.unwrap();

    assert_eq!(app.connections("ada").await, ["eve"]);
    assert_eq!(app.connections("bob").await, ["eve"]);
    assert_eq!(app.following("ada").await, ["#rust", "eve"]);
    assert!(app.following("bob").await.is_empty());
    use pb::InvitationDirection::{Received, Sent};
    assert!(app.invitations("ada", Received).await.is_empty());
    assert!(app.invitations("ada", Sent).await.is_empty());
    assert!(app.invitations("cyd", Sent).await.is_empty());
    assert!(app.invitations("dan", Received).await.is_empty());
}

#[tokio::test]
async fn blocked_members_cannot_invite_or_follow_each_other_either_way() {
    let app = app().await;
    for m in ["ada", "bob"] {
        app.member(m).await;
    }
    app.block("ada", "bob").await.unwrap();
    for (from, to) in [("ada", "bob"), ("bob", "ada")] {
        assert_status(
            app.invite(from, to).await,
            Code::NotFound,
            "invitee not found",
        );
        assert_status(
            app.follow(from, to).await,
            Code::NotFound,
            "followee not found",
        );
    }
    // Exactly what a missing member answers.
    assert_status(
        app.invite("ada", "zed").await,
        Code::NotFound,
        "invitee not found",
    );
    assert_status(
        app.follow("ada", "zed").await,
        Code::NotFound,
        "followee not found",
    );
}

#[tokio::test]
async fn blocking_is_idempotent_and_checks_its_target() {
    let app = app().await;
    app.member("ada").await;
    app.member("bob").await;
    app.block("ada", "bob").await.unwrap();
    app.block("ada", "bob").await.unwrap();
    // Both may block each other.
    app.block("bob", "ada").await.unwrap();
    assert_status(
        app.block("ada", "zed").await,
        Code::NotFound,
        "blocked member not found",
    );
    let status = app.block("ada", "ada").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "blocked_id: cannot block yourself");
}

#[tokio::test]
async fn unblock_lifts_the_block_but_not_its_clean_up() {
    let app = app().await;
    app.member("ada").await;
    app.member("bob").await;
    app.connect("ada", "bob").await;
    app.follow("bob", "ada").await.unwrap();
    app.block("ada", "bob").await.unwrap();
    app.unblock("ada", "bob").await.unwrap();
    // Idempotent, and fine when there was no block or no such member.
    app.unblock("ada", "bob").await.unwrap();
    app.unblock("bob", "ada").await.unwrap();
    app.unblock("ada", "zed").await.unwrap();

    assert!(app.connections("ada").await.is_empty());
    assert!(app.following("bob").await.is_empty());
    app.follow("bob", "ada").await.unwrap();
    app.invite("bob", "ada").await.unwrap();
    assert_eq!(app.following("bob").await, ["ada"]);
    assert_eq!(app.get("bob", "ada").await.unwrap().id, "ada");
}

#[tokio::test]
async fn a_member_blocked_either_way_is_not_found_until_unblocked() {
    let app = app().await;
    for m in ["ada", "bob", "cyd"] {
        app.member(m).await;
    }
    app.block("ada", "bob").await.unwrap();
    let missing = "profile not found";
    // The blocked side and the blocker alike; as for a member who does not exist.
    assert_status(app.get("bob", "ada").await, Code::NotFound, missing);
    assert_status(app.get("ada", "bob").await, Code::NotFound, missing);
    assert_status(app.get("ada", "zed").await, Code::NotFound, missing);
    assert_status(
        app.api
            .get_profile(as_member(
                "bob",
                pb::GetProfileRequest {
                    lookup: Some(pb::get_profile_request::Lookup::Handle("ADA".into())),
                },
            ))
            .await,
        Code::NotFound,
        missing,
    );
    let batch = |allow_missing| pb::BatchGetProfilesRequest {
        member_ids: vec!["cyd".into(), "ada".into(), "bob".into()],
        allow_missing,
    };
    assert_status(
        app.api
            .batch_get_profiles(as_member("bob", batch(false)))
            .await,
        Code::NotFound,
        "profile ada not found",
    );
    let seen: Vec<String> = app
        .api
        .batch_get_profiles(as_member("bob", batch(true)))
        .await
        .unwrap()
        .into_inner()
        .profiles
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(seen, ["cyd", "bob"]);
    // Each still sees themself, others see both, and services see everything.
    assert_eq!(app.get("ada", "ada").await.unwrap().id, "ada");
    assert_eq!(app.get("bob", "bob").await.unwrap().id, "bob");
    assert_eq!(app.get("cyd", "ada").await.unwrap().id, "ada");
    let by_service = app
        .api
        .batch_get_profiles(as_service(batch(false)))
        .await
        .unwrap();
    assert_eq!(by_service.into_inner().profiles.len(), 3);

    app.unblock("ada", "bob").await.unwrap();
    assert_eq!(app.get("bob", "ada").await.unwrap().id, "ada");
    assert_eq!(app.get("ada", "bob").await.unwrap().id, "bob");
}

#[tokio::test]
async fn relationships_come_in_request_order() {
    let app = app().await;
    for m in ["ada", "bob", "cyd", "dan", "eve"] {
        app.member(m).await;
    }
    app.connect("ada", "bob").await;
    app.block("ada", "cyd").await.unwrap();
    app.block("dan", "ada").await.unwrap();
    let got = app
        .relationships("ada", &["eve", "dan", "zed", "bob", "cyd", "ada", "bob"])
        .await
        .unwrap();
    let want = [
        ("eve", false, false),
        ("dan", false, true),
        ("zed", false, false),
        ("bob", true, false),
        ("cyd", false, true),
        ("ada", false, false),
        ("bob", true, false),
    ]
    .map(|(id, c, b)| (id.to_string(), c, b));
    assert_eq!(got, want);
    assert!(app.relationships("ada", &[]).await.unwrap().is_empty());
    // An unknown viewer relates to nobody.
    assert_eq!(
        app.relationships("zed", &["ada"]).await.unwrap(),
        [("ada".to_string(), false, false)]
    );
}

#[tokio::test]
async fn relationships_are_for_services_with_bounded_input() {
    let app = app().await;
    let too_many: Vec<String> = (0..=limits::MAX_RELATIONSHIP_IDS)
        .map(|i| format!("m{i}"))
        .collect();
    let status = app
        .api
        .batch_get_relationships(as_service(pb::BatchGetRelationshipsRequest {
            viewer_id: String::new(),
            member_ids: too_many,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("viewer_id"), "{status:?}");
    assert!(status.message().contains("at most 5000"), "{status:?}");
    let most: Vec<String> = (0..limits::MAX_RELATIONSHIP_IDS)
        .map(|i| format!("m{i}"))
        .collect();
    let ok = app
        .api
        .batch_get_relationships(as_service(pb::BatchGetRelationshipsRequest {
            viewer_id: "ada".into(),
            member_ids: most,
        }))
        .await
        .unwrap();
    assert_eq!(
        ok.into_inner().relationships.len(),
        limits::MAX_RELATIONSHIP_IDS
    );
    assert_status(
        app.api
            .batch_get_relationships(as_member(
                "ada",
                pb::BatchGetRelationshipsRequest {
                    viewer_id: "ada".into(),
                    member_ids: vec!["bob".into()],
                },
            ))
            .await,
        Code::PermissionDenied,
        "this method is for pronet services only",
    );
}

fn lookup(handles: &[&str]) -> pb::LookupHandlesRequest {
    pb::LookupHandlesRequest {
        handles: handles.iter().map(|h| h.to_string()).collect(),
    }
}

#[tokio::test]
async fn handles_resolve_to_members_in_request_order() {
    let app = app().await;
    app.api
        .create_profile(as_member("m-ada", new_profile("Ada_L")))
        .await
        .unwrap();
    app.member("bob").await;
    let owners = app
        .api
        .lookup_handles(as_service(lookup(&["@BOB", "ghost", "ada_l"])))
        .await
        .unwrap()
        .into_inner()
        .owners;
    let got: Vec<(&str, &str)> = owners
        .iter()
        .map(|o| (o.handle.as_str(), o.member_id.as_str()))
        .collect();
    assert_eq!(got, [("bob", "bob"), ("Ada_L", "m-ada")]);
    let none = app
        .api
        .lookup_handles(as_service(lookup(&[])))
        .await
        .unwrap();
    assert!(none.into_inner().owners.is_empty());
}

#[tokio::test]
async fn handle_lookups_are_for_services_with_valid_bounded_input() {
    let app = app().await;
    let status = app
        .api
        .lookup_handles(as_service(lookup(&["ok_handle", "x", "bad handle"])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("handles[1]"), "{status:?}");
    assert!(status.message().contains("handles[2]"), "{status:?}");
    assert!(!status.message().contains("handles[0]"), "{status:?}");
    let too_many: Vec<String> = (0..=limits::MAX_LOOKUP_HANDLES)
        .map(|i| format!("member{i}"))
        .collect();
    let status = app
        .api
        .lookup_handles(as_service(pb::LookupHandlesRequest { handles: too_many }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("at most 100"), "{status:?}");
    assert_status(
        app.api
            .lookup_handles(as_member("ada", lookup(&["bob"])))
            .await,
        Code::PermissionDenied,
        "this method is for pronet services only",
    );
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = result.expect_err("expected INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{field}: ")),
        "{status:?}"
    );
}

fn degree_request(viewer: &str, member: &str) -> pb::GetConnectionDegreeRequest {
    pb::GetConnectionDegreeRequest {
        viewer_id: viewer.into(),
        member_id: member.into(),
    }
}

fn unfollow_member(who: &str, whom: &str) -> pb::UnfollowRequest {
    pb::UnfollowRequest {
        member_id: who.into(),
        target: Some(pb::unfollow_request::Target::FolloweeId(whom.into())),
    }
}

fn followers_of(id: &str) -> pb::ListFollowersRequest {
    pb::ListFollowersRequest {
        member_id: id.into(),
        page_size: 0,
        page_token: String::new(),
    }
}

#[tokio::test]
async fn only_the_invitee_declines_and_only_the_inviter_withdraws() {
    let app = app().await;
    for id in ["ada", "bob", "cyd"] {
        app.member(id).await;
    }
    let inv = app.invite("ada", "bob").await.unwrap();
    let decline = |who: &str, member: &str| {
        as_member(
            who,
            pb::DeclineInvitationRequest {
                invitation_id: inv.id.clone(),
                member_id: member.into(),
            },
        )
    };
    let withdraw = |who: &str, member: &str| {
        as_member(
            who,
            pb::WithdrawInvitationRequest {
                invitation_id: inv.id.clone(),
                member_id: member.into(),
            },
        )
    };
    // Acting as someone else, whoever that is.
    for (who, as_whom) in [("cyd", "bob"), ("cyd", "nobody")] {
        assert_status(
            app.api.decline_invitation(decline(who, as_whom)).await,
            Code::PermissionDenied,
            "member_id must be the caller's own member id",
        );
        assert_status(
            app.api.withdraw_invitation(withdraw(who, as_whom)).await,
            Code::PermissionDenied,
            "member_id must be the caller's own member id",
        );
    }
    assert_status(
        app.api.decline_invitation(decline("ada", "ada")).await,
        Code::PermissionDenied,
        "only the invitee can decline this invitation",
    );
    assert_status(
        app.api.withdraw_invitation(withdraw("bob", "bob")).await,
        Code::PermissionDenied,
        "only the inviter can withdraw this invitation",
    );
    assert_invalid(
        app.api
            .decline_invitation(as_member(
                "bob",
                pb::DeclineInvitationRequest {
                    invitation_id: String::new(),
                    member_id: "bob".into(),
                },
            ))
            .await,
        "invitation_id",
    );
    let declined = app
        .api
        .decline_invitation(decline("bob", "bob"))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(declined.state, pb::InvitationState::Declined as i32);
    assert_status(
        app.api.withdraw_invitation(withdraw("ada", "ada")).await,
        Code::FailedPrecondition,
        "invitation is no longer pending",
    );
    let again = app.invite("ada", "bob").await.unwrap();
    let withdrawn = app
        .api
        .withdraw_invitation(as_member(
            "ada",
            pb::WithdrawInvitationRequest {
                invitation_id: again.id,
                member_id: "ada".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(withdrawn.state, pb::InvitationState::Withdrawn as i32);
}

#[tokio::test]
async fn inviting_back_connects_and_counts_show_on_the_profile() {
    let app = app().await;
    for id in ["ada", "bob"] {
        app.member(id).await;
    }
    let first = app.invite("ada", "bob").await.unwrap();
    let back = app.invite("bob", "ada").await.unwrap();
    assert_eq!(back.id, first.id);
    assert_eq!(back.state, pb::InvitationState::Accepted as i32);
    app.follow("bob", "ada").await.unwrap();
    let ada = app
        .api
        .get_profile(as_member(
            "bob",
            pb::GetProfileRequest {
                lookup: Some(pb::get_profile_request::Lookup::MemberId("ada".into())),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!((ada.connection_count, ada.follower_count), (1, 1));
}

#[tokio::test]
async fn remove_connection_and_unfollow_are_for_the_member_themself() {
    let app = app().await;
    for id in ["ada", "bob", "cyd"] {
        app.member(id).await;
    }
    app.connect("ada", "bob").await;
    app.follow("ada", "bob").await.unwrap();
    let remove = |who: &str, member: &str, other: &str| {
        as_member(
            who,
            pb::RemoveConnectionRequest {
                member_id: member.into(),
                connection_id: other.into(),
            },
        )
    };
    assert_status(
        app.api.remove_connection(remove("cyd", "ada", "bob")).await,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );
    assert_invalid(
        app.api.remove_connection(remove("ada", "ada", "ada")).await,
        "connection_id",
    );
    assert_status(
        app.api.remove_connection(remove("ada", "ada", "cyd")).await,
        Code::NotFound,
        "connection not found",
    );
    app.api
        .remove_connection(remove("bob", "bob", "ada"))
        .await
        .unwrap();
    assert_status(
        app.api.remove_connection(remove("ada", "ada", "bob")).await,
        Code::NotFound,
        "connection not found",
    );
    assert_status(
        app.api
            .unfollow(as_member("cyd", unfollow_member("ada", "bob")))
            .await,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );
    for _ in 0..2 {
        app.api
            .unfollow(as_member("ada", unfollow_member("ada", "bob")))
            .await
            .unwrap();
    }
    assert_invalid(
        app.api
            .unfollow(as_member(
                "ada",
                pb::UnfollowRequest {
                    member_id: "ada".into(),
                    target: None,
                },
            ))
            .await,
        "target",
    );
}

#[tokio::test]
async fn followers_are_listed_by_their_member_or_a_service() {
    let app = app().await;
    for id in ["ada", "bob", "cyd"] {
        app.member(id).await;
    }
    app.follow("bob", "ada").await.unwrap();
    app.follow("cyd", "ada").await.unwrap();
    assert_status(
        app.api
            .list_followers(as_member("bob", followers_of("ada")))
            .await,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );
    let mine = app
        .api
        .list_followers(as_member("ada", followers_of("ada")))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<String> = mine.followers.into_iter().map(|f| f.member_id).collect();
    assert_eq!(ids, ["cyd", "bob"]);
    let by_service = app
        .api
        .list_followers(as_service(followers_of("ada")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_service.followers.len(), 2);
    assert_status(
        app.api
            .list_followers(as_service(followers_of("zed")))
            .await,
        Code::NotFound,
        "member not found",
    );
}

#[tokio::test]
async fn connection_degree_is_for_the_viewer_or_a_service_and_hides_blocks() {
    let app = app().await;
    for id in ["ada", "bob", "cyd", "dan"] {
        app.member(id).await;
    }
    app.connect("ada", "bob").await;
    app.connect("bob", "cyd").await;
    assert_status(
        app.api
            .get_connection_degree(as_member("bob", degree_request("ada", "cyd")))
            .await,
        Code::PermissionDenied,
        "viewer_id must be the caller's own member id",
    );
    let second = app
        .api
        .get_connection_degree(as_member("ada", degree_request("ada", "cyd")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second,
        pb::GetConnectionDegreeResponse {
            degree: pb::ConnectionDegree::Second as i32,
            mutual_connection_count: 1,
            mutual_member_ids: vec!["bob".into()],
        }
    );
    let by_service = app
        .api
        .get_connection_degree(as_service(degree_request("cyd", "ada")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_service, second);
    let out = app
        .api
        .get_connection_degree(as_member("ada", degree_request("ada", "dan")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.degree, pb::ConnectionDegree::OutOfNetwork as i32);
    // A block either way answers exactly like a missing member.
    app.api
        .block_member(as_member(
            "dan",
            pb::BlockMemberRequest {
                member_id: "dan".into(),
                blocked_id: "ada".into(),
            },
        ))
        .await
        .unwrap();
    for member in ["dan", "zed"] {
        assert_status(
            app.api
                .get_connection_degree(as_member("ada", degree_request("ada", member)))
                .await,
            Code::NotFound,
            "member not found",
        );
    }
    assert_invalid(
        app.api
            .get_connection_degree(as_member("ada", degree_request("ada", "")))
            .await,
        "member_id",
    );
}

fn position(
    title: &str,
    company: &str,
    start: (i32, i32),
    end: Option<(i32, i32)>,
) -> pb::Position {
    pb::Position {
        title: title.into(),
        company: company.into(),
        start: Some(pb::YearMonth {
            year: start.0,
            month: start.1,
        }),
        end: end.map(|(year, month)| pb::YearMonth { year, month }),
        current: end.is_none(),
    }
}

fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    let mut fields: Vec<String> = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn update_sets_positions_education_and_open_to_work_only_when_masked() {
    let app = app().await;
    app.member("ada").await;
    let update = |paths: &[&str]| pb::UpdateProfileRequest {
        profile: Some(pb::Profile {
            id: "ada".into(),
            headline: "not masked".into(),
            positions: vec![position("Engineer", " Acme  Corp ", (2020, 3), None)],
            education: vec![pb::Education {
                school: "MIT".into(),
                start_year: 2010,
                end_year: 2014,
                ..Default::default()
            }],
            open_to_work: true,
            skills: vec![
                "Rust".into(),
                " rust ".into(),
                "RUST".into(),
                "Machine   Learning".into(),
            ],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    let p = app
        .api
        .update_profile(as_member("ada", update(&["positions", "skills"])))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(p.positions[0].company, "Acme Corp");
    assert_eq!(p.skills, ["Rust", "Machine Learning"]);
    assert!(p.education.is_empty());
    assert!(!p.open_to_work);
    assert_eq!(p.headline, "");
    let p = app
        .api
        .update_profile(as_member("ada", update(&["education", "open_to_work"])))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(p.education[0].school, "MIT");
    assert!(p.open_to_work);
    assert_eq!(p.positions.len(), 1);
    // "*" includes them: clearing with an empty profile body.
    let mut all = update(&["*"]);
    let body = all.profile.as_mut().unwrap();
    body.handle = "ada".into();
    body.display_name = "Ada".into();
    body.positions.clear();
    body.open_to_work = false;
    let p = app
        .api
        .update_profile(as_member("ada", all))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert!(p.positions.is_empty());
    assert!(!p.open_to_work);
    assert_eq!(p.headline, "not masked");
}

#[tokio::test]
async fn invalid_positions_and_education_name_every_field() {
    let app = app().await;
    app.member("ada").await;
    let mut current_with_end = position("Engineer", "Acme", (2020, 1), Some((2021, 1)));
    current_with_end.current = true;
    let req = pb::UpdateProfileRequest {
        profile: Some(pb::Profile {
            id: "ada".into(),
            positions: vec![
                position("", "Acme", (2020, 13), None),
                position("Engineer", "Acme", (2020, 5), Some((2019, 1))),
                current_with_end,
                pb::Position {
                    start: None,
                    ..position("Engineer", "Acme", (2020, 1), None)
                },
            ],
            education: vec![pb::Education {
                school: "MIT".into(),
                start_year: 2015,
                end_year: 2014,
                ..Default::default()
            }],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["positions".into(), "education".into()],
        }),
    };
    let err = app
        .api
        .update_profile(as_member("ada", req))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        [
            "profile.education[0].end_year",
            "profile.positions[0].start",
            "profile.positions[0].title",
            "profile.positions[1].end",
            "profile.positions[2].end",
            "profile.positions[3].start",
        ]
    );
    let too_many = pb::UpdateProfileRequest {
        profile: Some(pb::Profile {
            id: "ada".into(),
            positions: vec![position("E", "A", (2020, 1), None); limits::MAX_POSITIONS + 1],
            ..Default::default()
        }),
        update_mask: None,
    };
    let err = app
        .api
        .update_profile(as_member("ada", too_many))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["profile.positions"]);
}

#[tokio::test]
async fn get_profile_tells_another_member_their_degree_but_not_self_or_services() {
    let app = app().await;
    for id in ["ada", "bob", "cyd"] {
        app.member(id).await;
    }
    app.connect("ada", "bob").await;
    app.connect("bob", "cyd").await;
    let get = |id: &str| pb::GetProfileRequest {
        lookup: Some(pb::get_profile_request::Lookup::MemberId(id.into())),
    };
    let ctx = app
        .api
        .get_profile(as_member("ada", get("cyd")))
        .await
        .unwrap()
        .into_inner()
        .viewer_context
        .unwrap();
    assert_eq!(ctx.degree, pb::ConnectionDegree::Second as i32);
    assert_eq!(ctx.mutual_connection_count, 1);
    let ctx = app
        .api
        .get_profile(as_member("ada", get("bob")))
        .await
        .unwrap()
        .into_inner()
        .viewer_context
        .unwrap();
    assert_eq!(ctx.degree, pb::ConnectionDegree::First as i32);
    for req in [as_member("ada", get("ada")), as_service(get("ada"))] {
        let got = app.api.get_profile(req).await.unwrap().into_inner();
        assert_eq!(got.viewer_context, None);
    }
}

#[tokio::test]
async fn suggestions_and_search_are_for_the_member_themself() {
    let app = app().await;
    app.member("ada").await;
    let suggest = |id: &str| pb::SuggestConnectionsRequest {
        member_id: id.into(),
        ..Default::default()
    };
    assert_status(
        app.api
            .suggest_connections(as_member("bob", suggest("ada")))
            .await,
        Code::PermissionDenied,
        "member_id must be the caller's own member id",
    );
    let err = app
        .api
        .suggest_connections(as_service(suggest("ada")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let search = pb::SearchProfilesRequest {
        query: "rust".into(),
        ..Default::default()
    };
    let err = app
        .api
        .search_profiles(as_service(search.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A member without a profile has nobody to search as.
    assert_status(
        app.api.search_profiles(as_member("ghost", search)).await,
        Code::NotFound,
        "searcher not found",
    );
}

#[tokio::test]
async fn search_and_suggestion_inputs_are_checked() {
    let app = app().await;
    app.member("ada").await;
    let err = app
        .api
        .search_profiles(as_member(
            "ada",
            pb::SearchProfilesRequest {
                query: "x".repeat(201),
                filters: Some(pb::SearchFilters {
                    skills: vec![String::new()],
                    location: "l".repeat(101),
                    ..Default::default()
                }),
                page_size: -1,
                page_token: "garbage".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "filters.location",
            "filters.skills[0]",
            "page_size",
            "page_token",
            "query"
        ]
    );
    let err = app
        .api
        .search_profiles(as_member("ada", pb::SearchProfilesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["query"]);
    let err = app
        .api
        .suggest_connections(as_member(
            "ada",
            pb::SuggestConnectionsRequest {
                member_id: "ada".into(),
                page_size: -5,
                page_token: "nope".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size", "page_token"]);
}

#[tokio::test]
async fn imports_are_for_services_and_count_what_they_skip() {
    let app = app().await;
    for id in ["ada", "bob"] {
        app.member(id).await;
    }
    let pairs = |list: &[(&str, &str)]| pb::ImportConnectionsRequest {
        pairs: list
            .iter()
            .map(|(a, b)| pb::ConnectionPair {
                member_id: a.to_string(),
                other_id: b.to_string(),
            })
            .collect(),
    };
    let req = pairs(&[
        ("ada", "bob"),
        ("bob", "ada"),
        ("ada", "ada"),
        ("ada", "ghost"),
    ]);
    let err = app
        .api
        .import_connections(as_member("ada", req.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let got = app
        .api
        .import_connections(as_service(req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.created_count, got.skipped_count), (1, 3));
    let err = app
        .api
        .import_connections(as_service(pairs(&[("", "bob")])))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["pairs[0].member_id"]);

    let profile = |id: &str, handle: &str| pb::Profile {
        id: id.into(),
        handle: handle.into(),
        display_name: handle.into(),
        ..Default::default()
    };
    let req = pb::ImportProfilesRequest {
        profiles: vec![
            profile("cyd", "cyd"),
            profile("ada", "ada_again"),
            profile("dee", "cyd"),
        ],
    };
    let got = app
        .api
        .import_profiles(as_service(req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.created_count, got.skipped_count), (1, 2));
    let err = app
        .api
        .import_profiles(as_service(pb::ImportProfilesRequest {
            profiles: vec![profile("", "x")],
        }))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["profiles[0].handle", "profiles[0].id"]
    );
}
