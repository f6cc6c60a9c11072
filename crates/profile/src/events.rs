//! The profile service's domain events (`pronet.events.v1`): what the store backends append to
//! the outbox with each change, and the exporter behind `ExportState`.
//!
//! The constructors here are the only place that builds the protobuf payloads, so the backends
//! stay free of it and both write exactly the same events.

use pronet_common::outbox::{NewEvent, Payload};
use pronet_proto::events::v1 as pb;

use crate::domain::{FollowTarget, ProfileRecord};

/// The `source` of every event this service writes.
pub const SOURCE: &str = "profile";

fn event(now: i64, payload: Payload) -> NewEvent {
    NewEvent::new(SOURCE, now, payload)
}

/// A profile was created (by CreateProfile or an import).
pub fn profile_created(now: i64, id: &str, handle: &str, display_name: &str) -> NewEvent {
    event(now, profile_created_payload(id, handle, display_name))
}

pub fn profile_created_payload(id: &str, handle: &str, display_name: &str) -> Payload {
    Payload::ProfileCreated(pb::ProfileCreated {
        member_id: id.to_owned(),
        handle: handle.to_owned(),
        display_name: display_name.to_owned(),
    })
}

/// `after` is `before` updated: an event only when its handle or display name changed.
pub fn profile_renamed(
    now: i64,
    before: &ProfileRecord,
    after: &ProfileRecord,
) -> Option<NewEvent> {
    (before.handle != after.handle || before.display_name != after.display_name).then(|| {
        event(
            now,
            Payload::ProfileRenamed(pb::ProfileRenamed {
                member_id: after.id.clone(),
                handle: after.handle.clone(),
                display_name: after.display_name.clone(),
            }),
        )
    })
}

/// `member_id` and `other_id` became connected (inviter first, when by invitation).
pub fn connection_made(now: i64, member_id: &str, other_id: &str) -> NewEvent {
    event(now, connection_made_payload(member_id, other_id))
}

pub fn connection_made_payload(member_id: &str, other_id: &str) -> Payload {
    Payload::ConnectionMade(pb::ConnectionMade {
        member_id: member_id.to_owned(),
        other_id: other_id.to_owned(),
    })
}

/// `member_id` removed their connection with `other_id`.
pub fn connection_removed(now: i64, member_id: &str, other_id: &str) -> NewEvent {
    event(
        now,
        Payload::ConnectionRemoved(pb::ConnectionRemoved {
            member_id: member_id.to_owned(),
            other_id: other_id.to_owned(),
        }),
    )
}

/// `member_id` started following `target`.
pub fn followed(now: i64, member_id: &str, target: &FollowTarget) -> NewEvent {
    event(now, followed_payload(member_id, target))
}

pub fn followed_payload(member_id: &str, target: &FollowTarget) -> Payload {
    match target {
        FollowTarget::Member(followee) => Payload::MemberFollowed(pb::MemberFollowed {
            member_id: member_id.to_owned(),
            followee_id: followee.clone(),
        }),
        FollowTarget::Hashtag(tag) => Payload::HashtagFollowed(pb::HashtagFollowed {
            member_id: member_id.to_owned(),
            hashtag: tag.clone(),
        }),
    }
}

/// `member_id` stopped following `target`.
pub fn unfollowed(now: i64, member_id: &str, target: &FollowTarget) -> NewEvent {
    let payload = match target {
        FollowTarget::Member(followee) => Payload::MemberUnfollowed(pb::MemberUnfollowed {
            member_id: member_id.to_owned(),
            followee_id: followee.clone(),
        }),
        FollowTarget::Hashtag(tag) => Payload::HashtagUnfollowed(pb::HashtagUnfollowed {
            member_id: member_id.to_owned(),
            hashtag: tag.clone(),
        }),
    };
    event(now, payload)
}

/// `member_id` blocked `blocked_id` (which also ended their connection and follows).
pub fn member_blocked(now: i64, member_id: &str, blocked_id: &str) -> NewEvent {
    event(now, member_blocked_payload(member_id, blocked_id))
}

pub fn member_blocked_payload(member_id: &str, blocked_id: &str) -> Payload {
    Payload::MemberBlocked(pb::MemberBlocked {
        member_id: member_id.to_owned(),
        blocked_id: blocked_id.to_owned(),
    })
}

/// `member_id` lifted their block of `blocked_id`.
pub fn member_unblocked(now: i64, member_id: &str, blocked_id: &str) -> NewEvent {
    event(
        now,
        Payload::MemberUnblocked(pb::MemberUnblocked {
            member_id: member_id.to_owned(),
            blocked_id: blocked_id.to_owned(),
        }),
    )
}
