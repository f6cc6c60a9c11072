//! The post service's domain events (`pronet.events.v1`): what a store appends to its outbox
//! with each change, and what an export sends for each post, built here once so the store
//! backends never assemble protobuf themselves.

use pronet_common::outbox::{NewEvent, Payload};
use pronet_common::time::to_timestamp;
use pronet_proto::events::v1 as pb;
use pronet_proto::post::v1 as post_pb;

use crate::domain::{PostRecord, Visibility};

/// The `source` of every event of this service.
pub const SOURCE: &str = "post";

fn visibility(v: Visibility) -> post_pb::Visibility {
    match v {
        Visibility::Public => post_pb::Visibility::Public,
        Visibility::Connections => post_pb::Visibility::Connections,
    }
}

fn mentioned_member_ids(post: &PostRecord) -> Vec<String> {
    post.mentioned_members
        .iter()
        .map(|m| m.member_id.clone())
        .collect()
}

/// `post` as it was created: the payload of its `PostCreated` event and of its export.
pub fn post_created_payload(post: &PostRecord) -> Payload {
    Payload::PostCreated(pb::PostCreated {
        post_id: post.id.clone(),
        author_id: post.author_id.clone(),
        create_time: Some(to_timestamp(post.create_time)),
        visibility: visibility(post.visibility) as i32,
        hashtags: post.hashtags.clone(),
        mentioned_member_ids: mentioned_member_ids(post),
        reshare_of_post_id: post.reshare_of.clone().unwrap_or_default(),
    })
}

/// `post` was created (or imported), committed at `now`.
pub fn post_created(post: &PostRecord, now: i64) -> NewEvent {
    NewEvent::new(SOURCE, now, post_created_payload(post))
}

/// `post` (as it is after the edit) was edited, committed at `now`.
pub fn post_edited(post: &PostRecord, now: i64) -> NewEvent {
    NewEvent::new(
        SOURCE,
        now,
        Payload::PostEdited(pb::PostEdited {
            post_id: post.id.clone(),
            author_id: post.author_id.clone(),
            hashtags: post.hashtags.clone(),
            mentioned_member_ids: mentioned_member_ids(post),
            update_time: post.update_time.map(to_timestamp),
        }),
    )
}

/// The post `post_id` by `author_id` was deleted, committed at `now`.
pub fn post_deleted(post_id: &str, author_id: &str, now: i64) -> NewEvent {
    NewEvent::new(SOURCE, now, post_deleted_payload(post_id, author_id))
}

/// The `PostDeleted` payload (the outbox's event, and a deleted post in an export).
pub fn post_deleted_payload(post_id: &str, author_id: &str) -> Payload {
    Payload::PostDeleted(pb::PostDeleted {
        post_id: post_id.to_owned(),
        author_id: author_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Mention, PostText};

    #[test]
    fn post_created_carries_what_a_feed_needs() {
        let mut post = PostRecord::new(
            "p1".into(),
            "alice".into(),
            PostText::parse("hi #rust @bob").unwrap(),
            Visibility::Connections,
            1_500_000,
        );
        post.reshare_of = Some("p0".into());
        post.mentioned_members = vec![Mention {
            handle: "Bob".into(),
            member_id: "m-bob".into(),
        }];
        let Payload::PostCreated(created) = post_created_payload(&post) else {
            panic!("not a PostCreated");
        };
        assert_eq!(
            created,
            pb::PostCreated {
                post_id: "p1".into(),
                author_id: "alice".into(),
                create_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 500_000_000
                }),
                visibility: post_pb::Visibility::Connections as i32,
                hashtags: vec!["rust".into()],
                mentioned_member_ids: vec!["m-bob".into()],
                reshare_of_post_id: "p0".into(),
            }
        );
    }

    #[test]
    fn an_original_post_reshares_nothing_and_public_maps_to_public() {
        let post = PostRecord::new(
            "p1".into(),
            "alice".into(),
            PostText::parse("hi").unwrap(),
            Visibility::Public,
            7,
        );
        let Payload::PostCreated(created) = post_created_payload(&post) else {
            panic!("not a PostCreated");
        };
        assert_eq!(created.reshare_of_post_id, "");
        assert_eq!(created.visibility, post_pb::Visibility::Public as i32);
    }
}
