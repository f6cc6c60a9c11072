//! The tonic adapter of the engagement service: who calls, decode and validate, check the
//! caller may act so, check the post exists and is visible to the member, call the store, encode.

use std::sync::Arc;

use pronet_common::auth::{caller, require_self, AuthError, Caller};
use pronet_common::ids::{new_id, parse_id};
use pronet_common::input::check_count;
use pronet_common::time::{from_timestamp, now_micros, to_timestamp};
use pronet_common::FieldViolations;
use pronet_proto::engagement::v1 as pb;
use pronet_proto::engagement::v1::engagement_service_server::EngagementService;
use tonic::{Request, Response, Status};

use crate::domain::{
    limits, max_activities, ActivityKind, ActivityRecord, CommentRecord, IdempotencyKey,
    PostStatsRecord, ReactionRecord, ReactionType, ShareRecord,
};
use crate::posts::PostDirectory;
use crate::store::EngagementStore;

/// The `pronet.engagement.v1.EngagementService` implementation.
#[derive(Clone)]
pub struct EngagementApi {
    store: Arc<dyn EngagementStore>,
    posts: Arc<dyn PostDirectory>,
}

impl EngagementApi {
    pub fn new(store: Arc<dyn EngagementStore>, posts: Arc<dyn PostDirectory>) -> Self {
        Self { store, posts }
    }
}

fn reaction_type_to_pb(t: ReactionType) -> pb::ReactionType {
    match t {
        ReactionType::Like => pb::ReactionType::Like,
        ReactionType::Celebrate => pb::ReactionType::Celebrate,
        ReactionType::Support => pb::ReactionType::Support,
        ReactionType::Love => pb::ReactionType::Love,
        ReactionType::Insightful => pb::ReactionType::Insightful,
        ReactionType::Funny => pb::ReactionType::Funny,
    }
}

/// A client's reaction type; UNSPECIFIED and unknown numbers are refused.
fn parse_reaction_type(raw: i32) -> Result<ReactionType, String> {
    ReactionType::ALL
        .into_iter()
        .find(|t| reaction_type_to_pb(*t) as i32 == raw)
        .ok_or_else(|| {
            let names: Vec<&str> = ReactionType::ALL
                .into_iter()
                .map(|t| reaction_type_to_pb(t).as_str_name())
                .collect();
            format!("must be one of {}", names.join(", "))
        })
}

/// Whose view of the posts stats are for: the calling member, or the member a service acts for;
/// `None` for a service acting for nobody (it sees every count). A member may name only
/// themself.
fn stats_viewer(caller: &Caller, viewer_id: &str) -> Result<Option<String>, Status> {
    match caller {
        Caller::Member(id) if viewer_id.is_empty() || viewer_id == id => Ok(Some(id.clone())),
        Caller::Member(_) => Err(Status::permission_denied(
            "viewer_id is for service callers",
        )),
        Caller::Service(_) if viewer_id.is_empty() => Ok(None),
        Caller::Service(_) => Ok(Some(viewer_id.to_owned())),
    }
}

/// Checks the count and every id of a repeated id field (FieldViolations caps how many are
/// listed).
fn check_ids(v: &mut FieldViolations, field: &str, ids: &[String], max: usize) {
    v.check(field, check_count(ids.len(), max));
    for (i, id) in ids.iter().enumerate() {
        v.check(&format!("{field}[{i}]"), parse_id(id));
    }
}

fn reaction_to_pb(r: ReactionRecord) -> pb::Reaction {
    pb::Reaction {
        post_id: r.post_id,
        member_id: r.member_id,
        reaction_type: reaction_type_to_pb(r.reaction_type) as i32,
        create_time: Some(to_timestamp(r.create_time)),
    }
}

fn comment_to_pb(c: CommentRecord) -> pb::Comment {
    pb::Comment {
        id: c.id,
        post_id: c.post_id,
        member_id: c.member_id,
        text: c.text,
        create_time: Some(to_timestamp(c.create_time)),
    }
}

fn share_to_pb(s: ShareRecord) -> pb::Share {
    pb::Share {
        id: s.id,
        post_id: s.post_id,
        member_id: s.member_id,
        create_time: Some(to_timestamp(s.create_time)),
    }
}

fn stats_to_pb(s: PostStatsRecord) -> pb::PostStats {
    pb::PostStats {
        reactions: s
            .non_zero_reactions()
            .map(|(t, count)| pb::ReactionCount {
                reaction_type: reaction_type_to_pb(t) as i32,
                count,
            })
            .collect(),
        total_reactions: s.total_reactions(),
        comments: s.comments,
        shares: s.shares,
        post_id: s.post_id,
    }
}

fn activity_to_pb(a: ActivityRecord) -> pb::Activity {
    let (kind, reaction_type) = match a.kind {
        ActivityKind::Reaction(t) => (pb::ActivityKind::Reaction, reaction_type_to_pb(t)),
        ActivityKind::Comment => (pb::ActivityKind::Comment, pb::ReactionType::Unspecified),
        ActivityKind::Share => (pb::ActivityKind::Share, pb::ReactionType::Unspecified),
    };
    pb::Activity {
        member_id: a.member_id,
        post_id: a.post_id,
        kind: kind as i32,
        reaction_type: reaction_type as i32,
        create_time: Some(to_timestamp(a.create_time)),
    }
}

#[tonic::async_trait]
impl EngagementService for EngagementApi {
    async fn react(
        &self,
        request: Request<pb::ReactRequest>,
    ) -> Result<Response<pb::ReactResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let post_id = v.check("post_id", parse_id(&req.post_id));
        let reaction_type = v.check("reaction_type", parse_reaction_type(req.reaction_type));
        v.into_result()?;
        let (Some(member_id), Some(post_id), Some(reaction_type)) =
            (member_id, post_id, reaction_type)
        else {
            return Err(Status::internal("internal error"));
        };
        require_self(&caller, "member_id", &member_id)?;
        // A post the member may not see is answered like a missing one.
        self.posts
            .require_visible_post(&post_id, &member_id)
            .await?;
        let reaction = self
            .store
            .react(&post_id, &member_id, reaction_type, now_micros())
            .await?;
        Ok(Response::new(pb::ReactResponse {
            reaction: Some(reaction_to_pb(reaction)),
        }))
    }

    async fn create_comment(
        &self,
        request: Request<pb::CreateCommentRequest>,
    ) -> Result<Response<pb::CreateCommentResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let post_id = v.check("post_id", parse_id(&req.post_id));
        let text = v.check("text", limits::COMMENT_TEXT.parse(&req.text));
        // Optional: empty means the request is not to be deduplicated.
        let request_id = if req.request_id.is_empty() {
            None
        } else {
            v.check("request_id", parse_id(&req.request_id))
        };
        v.into_result()?;
        let (Some(member_id), Some(post_id), Some(text)) = (member_id, post_id, text) else {
            return Err(Status::internal("internal error"));
        };
        require_self(&caller, "member_id", &member_id)?;
        let key = request_id.map(|request_id| IdempotencyKey::new(&caller, request_id));
        // A post the member may not see is answered like a missing one.
        self.posts
            .require_visible_post(&post_id, &member_id)
            .await?;
        let comment = self
            .store
            .create_comment(
                CommentRecord {
                    id: new_id(),
                    post_id,
                    member_id,
                    text,
                    create_time: now_micros(),
                },
                key,
            )
            .await?;
        tracing::debug!(comment_id = %comment.id, post_id = %comment.post_id, "comment created");
        Ok(Response::new(pb::CreateCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    async fn record_share(
        &self,
        request: Request<pb::RecordShareRequest>,
    ) -> Result<Response<pb::RecordShareResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let post_id = v.check("post_id", parse_id(&req.post_id));
        v.into_result()?;
        let (Some(member_id), Some(post_id)) = (member_id, post_id) else {
            return Err(Status::internal("internal error"));
        };
        require_self(&caller, "member_id", &member_id)?;
        // A post the member may not see is answered like a missing one.
        self.posts
            .require_visible_post(&post_id, &member_id)
            .await?;
        let share = self
            .store
            .record_share(ShareRecord {
                id: new_id(),
                post_id,
                member_id,
                create_time: now_micros(),
            })
            .await?;
        Ok(Response::new(pb::RecordShareResponse {
            share: Some(share_to_pb(share)),
        }))
    }

    async fn batch_get_post_stats(
        &self,
        request: Request<pb::BatchGetPostStatsRequest>,
    ) -> Result<Response<pb::BatchGetPostStatsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        check_ids(&mut v, "post_ids", &req.post_ids, limits::MAX_BATCH_STATS);
        if !req.viewer_id.is_empty() {
            v.check("viewer_id", parse_id(&req.viewer_id));
        }
        v.into_result()?;
        let viewer = stats_viewer(&caller, &req.viewer_id)?;
        let visible = match &viewer {
            Some(viewer) => Some(self.posts.visible_posts(&req.post_ids, viewer).await?),
            None => None,
        };
        let mut stats = self.store.batch_get_post_stats(&req.post_ids).await?;
        if let Some(visible) = visible {
            // Counts of a post the viewer may not see would tell that it exists.
            for s in stats.iter_mut().filter(|s| !visible.contains(&s.post_id)) {
                *s = PostStatsRecord::zero(&s.post_id);
            }
        }
        Ok(Response::new(pb::BatchGetPostStatsResponse {
            stats: stats.into_iter().map(stats_to_pb).collect(),
        }))
    }

    async fn list_recent_activity(
        &self,
        request: Request<pb::ListRecentActivityRequest>,
    ) -> Result<Response<pb::ListRecentActivityResponse>, Status> {
        // The auth layer already keeps members out; a second look costs nothing.
        if let Caller::Member(_) = caller(&request)? {
            return Err(AuthError::ServicesOnly.into());
        }
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        check_ids(
            &mut v,
            "member_ids",
            &req.member_ids,
            limits::MAX_ACTIVITY_MEMBERS,
        );
        let since = match &req.since {
            Some(ts) => v.check("since", from_timestamp(ts)),
            None => {
                v.add("since", "is required");
                None
            }
        };
        let limit = v.check("max_activities", max_activities(req.max_activities));
        v.into_result()?;
        let (Some(since), Some(limit)) = (since, limit) else {
            return Err(Status::internal("internal error"));
        };
        let activities = self
            .store
            .list_recent_activity(&req.member_ids, since, limit)
            .await?;
        Ok(Response::new(pb::ListRecentActivityResponse {
            activities: activities.into_iter().map(activity_to_pb).collect(),
        }))
    }
}

#[cfg(test)]
mod tests;
