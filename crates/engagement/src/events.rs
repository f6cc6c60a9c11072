//! The engagement service's domain events (`pronet.events.v1`): what each change looks like as
//! an event, built from the store's records so the backends append events without building
//! protobuf themselves. Both the outbox (as [`NewEvent`]s) and the state export (as
//! [`Payload`]s) describe changes with these functions.

use pronet_common::outbox::{NewEvent, Payload};
use pronet_common::time::to_timestamp;
use pronet_proto::engagement::v1::ReactionType as PbReactionType;
use pronet_proto::events::v1 as pb;

use crate::domain::{CommentRecord, Mute, MuteKind, ReactionRecord, ReactionType, ShareRecord};

/// The `source` of every event this service writes.
pub const SOURCE: &str = "engagement";

/// An event of this service that happened at `now` (microseconds).
pub fn at(now: i64, payload: Payload) -> NewEvent {
    NewEvent::new(SOURCE, now, payload)
}

fn reaction_number(reaction_type: Option<ReactionType>) -> i32 {
    // Domain numbers are the proto's (1..=6); none is UNSPECIFIED.
    reaction_type.map_or(PbReactionType::Unspecified as i32, |t| t.number() as i32)
}

/// A member's reaction to a post is now `reaction`, replacing `previous` (`None` when the
/// member had none).
pub fn reaction_set(reaction: &ReactionRecord, previous: Option<ReactionType>) -> Payload {
    Payload::ReactionSet(pb::ReactionSet {
        post_id: reaction.post_id.clone(),
        member_id: reaction.member_id.clone(),
        reaction_type: reaction_number(Some(reaction.reaction_type)),
        previous_type: reaction_number(previous),
        create_time: Some(to_timestamp(reaction.create_time)),
    })
}

/// A member removed their reaction (of `reaction_type`) to a post.
pub fn reaction_removed(post_id: &str, member_id: &str, reaction_type: ReactionType) -> Payload {
    Payload::ReactionRemoved(pb::ReactionRemoved {
        post_id: post_id.to_owned(),
        member_id: member_id.to_owned(),
        reaction_type: reaction_number(Some(reaction_type)),
    })
}

/// A comment (or a reply, with its top-level comment) was created.
pub fn comment_created(comment: &CommentRecord) -> Payload {
    Payload::CommentCreated(pb::CommentCreated {
        comment_id: comment.id.clone(),
        post_id: comment.post_id.clone(),
        member_id: comment.member_id.clone(),
        parent_comment_id: comment.parent_id.clone().unwrap_or_default(),
        create_time: Some(to_timestamp(comment.create_time)),
    })
}

/// A comment by `member_id` on `post_id` was deleted.
pub fn comment_deleted(comment_id: &str, post_id: &str, member_id: &str) -> Payload {
    Payload::CommentDeleted(pb::CommentDeleted {
        comment_id: comment_id.to_owned(),
        post_id: post_id.to_owned(),
        member_id: member_id.to_owned(),
    })
}

/// A share was counted.
pub fn share_recorded(share: &ShareRecord) -> Payload {
    Payload::ShareRecorded(pb::ShareRecorded {
        share_id: share.id.clone(),
        post_id: share.post_id.clone(),
        member_id: share.member_id.clone(),
        create_time: Some(to_timestamp(share.create_time)),
    })
}

/// `member_id` was shown `post_ids` (each a counted impression), `first_view_post_ids` among
/// them for the first time ever.
pub fn impressions_recorded(
    member_id: &str,
    post_ids: Vec<String>,
    first_view_post_ids: Vec<String>,
) -> Payload {
    impressions_recorded_at(member_id, post_ids, first_view_post_ids, Vec::new())
}

/// The same, with when each of `post_ids` was shown (an import's or an export's views, whose
/// times differ from the event's; a live write's views happen at the event's time).
pub fn impressions_recorded_at(
    member_id: &str,
    post_ids: Vec<String>,
    first_view_post_ids: Vec<String>,
    view_times: Vec<i64>,
) -> Payload {
    Payload::ImpressionsRecorded(pb::ImpressionsRecorded {
        member_id: member_id.to_owned(),
        post_ids,
        first_view_post_ids,
        view_times: view_times.into_iter().map(to_timestamp).collect(),
    })
}

/// `member_id` hid a post, or muted a hashtag or an author, at `time`.
pub fn muted(member_id: &str, mute: &Mute, time: i64) -> Payload {
    let member_id = member_id.to_owned();
    let target = mute.target.clone();
    match mute.kind {
        MuteKind::Post => Payload::PostHidden(pb::PostHidden {
            member_id,
            post_id: target,
            hide_time: Some(to_timestamp(time)),
        }),
        MuteKind::Hashtag => Payload::HashtagMuted(pb::HashtagMuted {
            member_id,
            hashtag: target,
        }),
        MuteKind::Author => Payload::AuthorMuted(pb::AuthorMuted {
            member_id,
            author_id: target,
        }),
    }
}

/// `member_id` took back a mute.
pub fn unmuted(member_id: &str, mute: &Mute) -> Payload {
    let member_id = member_id.to_owned();
    let target = mute.target.clone();
    match mute.kind {
        MuteKind::Post => Payload::PostUnhidden(pb::PostUnhidden {
            member_id,
            post_id: target,
        }),
        MuteKind::Hashtag => Payload::HashtagUnmuted(pb::HashtagUnmuted {
            member_id,
            hashtag: target,
        }),
        MuteKind::Author => Payload::AuthorUnmuted(pb::AuthorUnmuted {
            member_id,
            author_id: target,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_types_keep_their_proto_numbers_and_none_is_unspecified() {
        for t in ReactionType::ALL {
            let pb = PbReactionType::try_from(reaction_number(Some(t))).unwrap();
            assert_eq!(pb as i64, t.number());
            assert_ne!(pb, PbReactionType::Unspecified);
        }
        assert_eq!(reaction_number(None), PbReactionType::Unspecified as i32);
    }

    #[test]
    fn a_top_level_comment_has_no_parent_and_a_reply_names_it() {
        let mut comment = CommentRecord::new("c1".into(), "p1".into(), "m1".into(), "x".into(), 7);
        let Payload::CommentCreated(top) = comment_created(&comment) else {
            panic!("not a CommentCreated");
        };
        assert_eq!(top.parent_comment_id, "");
        assert_eq!(top.create_time, Some(to_timestamp(7)));
        comment.parent_id = Some("c0".into());
        let Payload::CommentCreated(reply) = comment_created(&comment) else {
            panic!("not a CommentCreated");
        };
        assert_eq!(reply.parent_comment_id, "c0");
    }
}
