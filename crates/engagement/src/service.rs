//! The tonic adapter of the engagement service: who calls, decode and validate, check the
//! caller may act so, check the post exists and is visible to the member, call the store, encode.

use std::sync::Arc;

use pronet_common::auth::{caller, require_self};
use pronet_common::error::invalid_field;
use pronet_common::ids::{distinct, new_id, parse_id};
use pronet_common::input::{check_count, parse_hashtag};
use pronet_common::pagination::{decode_token, encode_token};
use pronet_common::time::{from_timestamp, now_micros, to_timestamp};
use pronet_common::FieldViolations;
use pronet_proto::engagement::v1 as pb;
use pronet_proto::engagement::v1::engagement_service_server::EngagementService;
use tonic::{Request, Response, Status};

use crate::domain::{
    limits, max_activities, utc_day, ActivityKind, ActivityRecord, CommentCursor, CommentListing,
    CommentOrder, CommentRecord, EngagementImport, IdempotencyKey, ImpressionRecord, Mute,
    MuteKind, PostStatsRecord, ReactionQuery, ReactionRecord, ReactionType, ShareRecord, MAX_MUTES,
};
use crate::error::EngagementError;
use crate::posts::PostDirectory;
use crate::profiles::MemberGraph;
use crate::store::EngagementStore;

mod convert;
use convert::*;

/// The `pronet.engagement.v1.EngagementService` implementation.
#[derive(Clone)]
pub struct EngagementApi {
    store: Arc<dyn EngagementStore>,
    posts: Arc<dyn PostDirectory>,
    graph: Arc<dyn MemberGraph>,
}

impl EngagementApi {
    pub fn new(
        store: Arc<dyn EngagementStore>,
        posts: Arc<dyn PostDirectory>,
        graph: Arc<dyn MemberGraph>,
    ) -> Self {
        Self {
            store,
            posts,
            graph,
        }
    }

    /// The comment, when `viewer` may see it: its post is visible to them and neither blocked
    /// the other. Anything else answers like a missing comment.
    async fn visible_comment(
        &self,
        comment_id: &str,
        viewer: &str,
    ) -> Result<CommentRecord, Status> {
        let comment = self
            .store
            .get_comment(comment_id)
            .await?
            .ok_or(EngagementError::NotFound("comment"))?;
        if comment.member_id == viewer {
            return Ok(comment);
        }
        match self
            .posts
            .require_visible_post(&comment.post_id, viewer)
            .await
        {
            Err(EngagementError::NotFound(_)) => {
                return Err(EngagementError::NotFound("comment").into())
            }
            other => other?,
        }
        let author = [comment.member_id.clone()];
        if !self.graph.blocked_among(viewer, &author).await?.is_empty() {
            return Err(EngagementError::NotFound("comment").into());
        }
        Ok(comment)
    }

    /// The comment, when `member` wrote it; someone else's comment they may see is
    /// PERMISSION_DENIED, one they may not see NOT_FOUND.
    async fn own_comment(&self, comment_id: &str, member: &str) -> Result<CommentRecord, Status> {
        let comment = self.visible_comment(comment_id, member).await?;
        if comment.member_id != member {
            return Err(Status::permission_denied(
                "only the author may change a comment",
            ));
        }
        Ok(comment)
    }

    /// Takes back the caller's mute the request names; whether there was one.
    async fn unmute<T: MuteRequest>(&self, request: &Request<T>) -> Result<bool, Status> {
        let caller = caller(request)?;
        let (member_id, mute) = parse_mute(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        Ok(self.store.unmute(&member_id, &mute).await?)
    }

    /// Leaves out what members blocked either way with `viewer` wrote or did.
    async fn without_blocked<T>(
        &self,
        viewer: Option<&str>,
        items: Vec<T>,
        member_of: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, Status> {
        let Some(viewer) = viewer else {
            return Ok(items);
        };
        if items.is_empty() {
            return Ok(items);
        }
        let members: Vec<String> = items.iter().map(|i| member_of(i).to_owned()).collect();
        let blocked = self.graph.blocked_among(viewer, &members).await?;
        Ok(items
            .into_iter()
            .filter(|i| !blocked.contains(member_of(i)))
            .collect())
    }
}

/// The two parts of a reactions list: the viewer's connections, then everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReactorPhase {
    Connections,
    Others,
}

type ReactionPosition = (ReactorPhase, Option<(i64, String)>);

#[tonic::async_trait]
impl EngagementService for EngagementApi {
    async fn react(
        &self,
        request: Request<pb::ReactRequest>,
    ) -> Result<Response<pb::ReactResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, post_id, reaction_type) = parse_react(request.get_ref())?;
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
        let CreateComment {
            member_id,
            post_id,
            text,
            parent_id,
            request_id,
        } = parse_create_comment(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        let key = request_id.map(|request_id| IdempotencyKey::new(&caller, request_id));
        // A post the member may not see is answered like a missing one.
        self.posts
            .require_visible_post(&post_id, &member_id)
            .await?;
        let mut comment = CommentRecord::new(new_id(), post_id, member_id, text, now_micros());
        comment.parent_id = parent_id;
        let comment = self.store.create_comment(comment, key).await?;
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
        let (member_id, post_id) = parse_member_target(request.get_ref())?;
        // A member shares as themself; a service (the post service recording a reshare) for
        // the member it names.
        caller.require_self_or_service("member_id", &member_id)?;
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
        let (post_ids, viewer_id) = parse_batch_get_post_stats(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        let visible = match &viewer {
            Some(viewer) => Some(self.posts.visible_posts(&post_ids, viewer).await?),
            None => None,
        };
        let mut stats = self.store.batch_get_post_stats(&post_ids).await?;
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
        caller(&request)?.require_service()?;
        let ListRecentActivity {
            member_ids,
            since,
            limit,
        } = parse_list_recent_activity(request.into_inner())?;
        let activities = self
            .store
            .list_recent_activity(&member_ids, since, limit)
            .await?;
        Ok(Response::new(pb::ListRecentActivityResponse {
            activities: activities.into_iter().map(activity_to_pb).collect(),
        }))
    }

    async fn unreact(
        &self,
        request: Request<pb::UnreactRequest>,
    ) -> Result<Response<pb::UnreactResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, post_id) = parse_member_target(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        self.posts
            .require_visible_post(&post_id, &member_id)
            .await?;
        self.store.unreact(&post_id, &member_id).await?;
        Ok(Response::new(pb::UnreactResponse {}))
    }

    async fn list_reactions(
        &self,
        request: Request<pb::ListReactionsRequest>,
    ) -> Result<Response<pb::ListReactionsResponse>, Status> {
        let caller = caller(&request)?;
        let ListReactions {
            post_id,
            reaction_type,
            limit,
            mut phase,
            mut after,
            viewer_id,
        } = parse_list_reactions(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        self.posts
            .require_visible_post(&post_id, viewer.as_deref().unwrap_or(""))
            .await?;
        // A service acting for nobody has no connections: everyone is "else".
        let connections = match &viewer {
            Some(viewer) => {
                self.graph
                    .connections(viewer, limits::MAX_CONNECTIONS_FIRST)
                    .await?
            }
            None => Vec::new(),
        };
        let mut page: Vec<ReactionRecord> = Vec::new();
        let mut next_page_token = String::new();
        loop {
            let remaining = limit - page.len();
            // One more than fits tells whether this part goes on.
            let rows = self
                .store
                .list_reactions(&ReactionQuery {
                    post_id: post_id.clone(),
                    reaction_type,
                    members: connections.clone(),
                    include: phase == ReactorPhase::Connections,
                    after: after.take(),
                    limit: remaining + 1,
                })
                .await?;
            if rows.len() > remaining {
                page.extend(rows.into_iter().take(remaining));
                let last = page.last().map(|r| (r.create_time, r.member_id.as_str()));
                next_page_token = encode_reaction_token(phase, last);
                break;
            }
            page.extend(rows);
            if phase == ReactorPhase::Others {
                break;
            }
            phase = ReactorPhase::Others;
            if page.len() == limit {
                next_page_token = encode_reaction_token(phase, None);
                break;
            }
        }
        let page = self
            .without_blocked(viewer.as_deref(), page, |r| r.member_id.as_str())
            .await?;
        Ok(Response::new(pb::ListReactionsResponse {
            reactions: page.into_iter().map(reaction_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn update_comment(
        &self,
        request: Request<pb::UpdateCommentRequest>,
    ) -> Result<Response<pb::UpdateCommentResponse>, Status> {
        let caller = caller(&request)?;
        let (id, text) = parse_update_comment(request.get_ref())?;
        let member = caller.member()?;
        self.own_comment(&id, member).await?;
        let comment = self
            .store
            .update_comment_text(&id, &text, now_micros())
            .await?;
        Ok(Response::new(pb::UpdateCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    async fn delete_comment(
        &self,
        request: Request<pb::DeleteCommentRequest>,
    ) -> Result<Response<pb::DeleteCommentResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_delete_comment(request.get_ref())?;
        let member = caller.member()?;
        self.own_comment(&id, member).await?;
        let removed = self.store.delete_comment(&id).await?;
        tracing::debug!(comment_id = %id, removed, "comment deleted");
        Ok(Response::new(pb::DeleteCommentResponse {}))
    }

    async fn react_to_comment(
        &self,
        request: Request<pb::ReactToCommentRequest>,
    ) -> Result<Response<pb::ReactToCommentResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, comment_id, reaction_type) = parse_react(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        self.visible_comment(&comment_id, &member_id).await?;
        let comment = self
            .store
            .react_to_comment(&comment_id, &member_id, reaction_type, now_micros())
            .await?;
        Ok(Response::new(pb::ReactToCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    async fn unreact_to_comment(
        &self,
        request: Request<pb::UnreactToCommentRequest>,
    ) -> Result<Response<pb::UnreactToCommentResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, comment_id) = parse_member_target(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        self.visible_comment(&comment_id, &member_id).await?;
        let comment = self
            .store
            .unreact_to_comment(&comment_id, &member_id)
            .await?;
        Ok(Response::new(pb::UnreactToCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let caller = caller(&request)?;
        let ListComments {
            post_id,
            parent_id,
            order,
            limit,
            viewer_id,
            page_token,
        } = parse_list_comments(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        self.posts
            .require_visible_post(&post_id, viewer.as_deref().unwrap_or(""))
            .await?;
        let listing = match parent_id {
            None => CommentListing::TopLevel(order),
            Some(parent_id) => {
                let parent = self
                    .store
                    .get_comment(&parent_id)
                    .await?
                    .filter(|p| p.post_id == post_id)
                    .ok_or(EngagementError::NotFound("comment"))?;
                // The replies to a reply are those of its top-level comment.
                CommentListing::Replies(parent.parent_id.unwrap_or(parent.id))
            }
        };
        let after = decode_comment_token(&page_token, &listing)
            .map_err(|why| pronet_common::error::invalid_field("page_token", why))?;
        let mut rows = self
            .store
            .list_comments(&post_id, &listing, after.as_ref(), limit + 1)
            .await?;
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|c| encode_comment_token(&listing, &c.cursor()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let rows = self
            .without_blocked(viewer.as_deref(), rows, |c| c.member_id.as_str())
            .await?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: rows.into_iter().map(comment_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn record_impressions(
        &self,
        request: Request<pb::RecordImpressionsRequest>,
    ) -> Result<Response<pb::RecordImpressionsResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, post_ids) = parse_record_impressions(request.into_inner())?;
        require_self(&caller, "member_id", &member_id)?;
        let post_ids = distinct(post_ids);
        if post_ids.is_empty() {
            return Ok(Response::new(pb::RecordImpressionsResponse { counted: 0 }));
        }
        // Only posts the member may see count: a missing or hidden one was never shown.
        let visible = self.posts.visible_posts(&post_ids, &member_id).await?;
        let mut shown: Vec<String> = post_ids
            .into_iter()
            .filter(|id| visible.contains(id))
            .collect();
        // Sorted, so concurrent writers touch shared posts in the same order.
        shown.sort_unstable();
        let now = now_micros();
        let counted = self
            .store
            .record_impressions(&member_id, &shown, utc_day(now), now)
            .await?;
        Ok(Response::new(pb::RecordImpressionsResponse {
            // At most 100.
            counted: i32::try_from(counted).unwrap_or(i32::MAX),
        }))
    }

    async fn list_seen_posts(
        &self,
        request: Request<pb::ListSeenPostsRequest>,
    ) -> Result<Response<pb::ListSeenPostsResponse>, Status> {
        // The auth layer already keeps members out; a second look costs nothing.
        caller(&request)?.require_service()?;
        let (member_id, post_ids) = parse_list_seen_posts(request.into_inner())?;
        let post_ids = self.store.list_seen_posts(&member_id, &post_ids).await?;
        Ok(Response::new(pb::ListSeenPostsResponse { post_ids }))
    }

    async fn import_engagement(
        &self,
        request: Request<pb::ImportEngagementRequest>,
    ) -> Result<Response<pb::ImportEngagementResponse>, Status> {
        // The auth layer already keeps members out; an import writes in anyone's name.
        caller(&request)?.require_service()?;
        let batch = parse_import(request.into_inner(), now_micros())?;
        // The importer vouches for the posts and members (as the proto says): nothing is
        // looked up, so a batch costs one transaction and no calls.
        let counts = self.store.import_engagement(batch).await?;
        tracing::debug!(?counts, "engagement imported");
        Ok(Response::new(pb::ImportEngagementResponse {
            reactions: count_to_pb(counts.reactions),
            comments: count_to_pb(counts.comments),
            shares: count_to_pb(counts.shares),
            impressions: count_to_pb(counts.impressions),
            skipped: count_to_pb(counts.skipped),
        }))
    }

    async fn hide_post(
        &self,
        request: Request<pb::HidePostRequest>,
    ) -> Result<Response<pb::HidePostResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, mute) = parse_mute(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        // Hiding a post the member may not see is answered like a missing post.
        self.posts
            .require_visible_post(&mute.target, &member_id)
            .await?;
        let hide_time = self.store.mute(&member_id, &mute, now_micros()).await?;
        Ok(Response::new(pb::HidePostResponse {
            hide_time: Some(to_timestamp(hide_time)),
        }))
    }

    async fn unhide_post(
        &self,
        request: Request<pb::UnhidePostRequest>,
    ) -> Result<Response<pb::UnhidePostResponse>, Status> {
        let was_hidden = self.unmute(&request).await?;
        Ok(Response::new(pb::UnhidePostResponse { was_hidden }))
    }

    async fn mute_hashtag(
        &self,
        request: Request<pb::MuteHashtagRequest>,
    ) -> Result<Response<pb::MuteHashtagResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, mute) = parse_mute(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        self.store.mute(&member_id, &mute, now_micros()).await?;
        Ok(Response::new(pb::MuteHashtagResponse {
            hashtag: mute.target,
        }))
    }

    async fn unmute_hashtag(
        &self,
        request: Request<pb::UnmuteHashtagRequest>,
    ) -> Result<Response<pb::UnmuteHashtagResponse>, Status> {
        let was_muted = self.unmute(&request).await?;
        Ok(Response::new(pb::UnmuteHashtagResponse { was_muted }))
    }

    async fn mute_author(
        &self,
        request: Request<pb::MuteAuthorRequest>,
    ) -> Result<Response<pb::MuteAuthorResponse>, Status> {
        let caller = caller(&request)?;
        let (member_id, mute) = parse_mute(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        if mute.target == member_id {
            return Err(invalid_field(
                "author_id",
                "must be another member than member_id",
            ));
        }
        if !self.graph.member_exists(&mute.target).await? {
            return Err(EngagementError::NotFound("author").into());
        }
        self.store.mute(&member_id, &mute, now_micros()).await?;
        Ok(Response::new(pb::MuteAuthorResponse {}))
    }

    async fn unmute_author(
        &self,
        request: Request<pb::UnmuteAuthorRequest>,
    ) -> Result<Response<pb::UnmuteAuthorResponse>, Status> {
        let was_muted = self.unmute(&request).await?;
        Ok(Response::new(pb::UnmuteAuthorResponse { was_muted }))
    }

    async fn list_mutes(
        &self,
        request: Request<pb::ListMutesRequest>,
    ) -> Result<Response<pb::ListMutesResponse>, Status> {
        let caller = caller(&request)?;
        let member_id = parse_list_mutes(request.get_ref())?;
        require_self(&caller, "member_id", &member_id)?;
        let (hashtags, author_ids) = tokio::try_join!(
            self.store
                .list_mutes(&member_id, MuteKind::Hashtag, MAX_MUTES),
            self.store
                .list_mutes(&member_id, MuteKind::Author, MAX_MUTES),
        )?;
        Ok(Response::new(pb::ListMutesResponse {
            hashtags,
            author_ids,
        }))
    }
}

#[cfg(test)]
mod tests;
