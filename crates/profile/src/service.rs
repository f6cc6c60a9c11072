//! The tonic adapter of the profile service: decode, validate, authorize, call the store,
//! encode.
//!
//! Every handler takes the [`Caller`] first, then checks every field (all violations at once),
//! then whether the caller may act (never depending on whether an id exists), then looks up.

use std::sync::Arc;

use pronet_common::auth::{caller, require_self};
use pronet_common::error::invalid_field;
use pronet_common::ids::{new_id, parse_id};
use pronet_common::input::{check_count, parse_hashtag};
use pronet_common::pagination::{
    decode_time_cursor, decode_token, encode_time_cursor, encode_token, page_size,
};
use pronet_common::time::{now_micros, to_timestamp};
use pronet_common::FieldViolations;
use pronet_proto::profile::v1 as pb;
use pronet_proto::profile::v1::profile_service_server::ProfileService;
use tonic::{Request, Response, Status};

use crate::domain::{
    canonical_key, distinct_pairs, limits, parse_search_terms, parse_skills, rank_search,
    rank_suggestions, ConnectionRecord, Cursor, Degree, DegreeRecord, Education, FollowCursor,
    FollowTarget, FollowerRecord, FollowingRecord, Handle, IdempotencyKey, InvitationDirection,
    InvitationRecord, InvitationState, Position, ProfileChanges, ProfileFields, ProfileRecord,
    RawPosition, ReasonKind, RelationshipRecord, SearchQuery, Suggestion, SuggestionCursor,
    UPDATABLE_FIELDS,
};
use crate::store::ProfileStore;

mod convert;
use convert::*;

/// The `pronet.profile.v1.ProfileService` implementation.
#[derive(Clone)]
pub struct ProfileApi {
    store: Arc<dyn ProfileStore>,
}

impl ProfileApi {
    pub fn new(store: Arc<dyn ProfileStore>) -> Self {
        Self { store }
    }
}

impl ProfileApi {
    async fn require_member(&self, id: &str) -> Result<(), Status> {
        match self.store.get_profile(id, None).await? {
            Some(_) => Ok(()),
            None => Err(Status::not_found("member not found")),
        }
    }
}

#[tonic::async_trait]
impl ProfileService for ProfileApi {
    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Result<Response<pb::CreateProfileResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let Some(profile) = req.profile else {
            return Err(invalid_field("profile", "is required"));
        };
        let mut v = FieldViolations::new();
        let fields = parse_fields(&profile, &mut v, "profile");
        let request_id = v.check("request_id", parse_request_id(&req.request_id));
        let (Some(fields), Some(request_id)) = (fields, request_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        // The profile's id is the token subject: one profile per member.
        let member_id = parse_id(caller.member()?).map_err(|_| {
            Status::permission_denied("the caller's member id is not a valid id".to_string())
        })?;
        let key = request_id.map(|id| IdempotencyKey::new(&caller, id));
        let created = self
            .store
            .create_profile(&member_id, fields, now_micros(), key.as_ref())
            .await?;
        tracing::debug!(member_id = %created.id, "profile created");
        Ok(Response::new(pb::CreateProfileResponse {
            profile: Some(profile_to_pb(created)),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        use pb::get_profile_request::Lookup;
        let caller = caller(&request)?;
        let viewer = caller.viewer();
        let found = match request.into_inner().lookup {
            Some(Lookup::MemberId(id)) => {
                let id = parse_id(&id).map_err(|e| invalid_field("member_id", e))?;
                self.store.get_profile(&id, viewer).await?
            }
            Some(Lookup::Handle(handle)) => {
                let handle = Handle::parse(&handle).map_err(|e| invalid_field("handle", e))?;
                self.store
                    .get_profile_by_handle(&handle.key(), viewer)
                    .await?
            }
            None => return Err(invalid_field("lookup", "set member_id or handle")),
        };
        let profile = found.ok_or_else(|| Status::not_found("profile not found"))?;
        // A member looking at someone else sees how far they are; the same degree search as
        // GetConnectionDegree (bounded for hubs).
        let viewer_context = match viewer {
            Some(viewer) if viewer != profile.id => {
                match self.store.connection_degree(viewer, &profile.id).await {
                    Ok(d) => Some(pb::ViewerContext {
                        degree: degree_pb(d.degree) as i32,
                        mutual_connection_count: d.mutual_count,
                    }),
                    // A viewer without a profile yet has no network.
                    Err(crate::error::ProfileError::NotFound("viewer")) => {
                        Some(pb::ViewerContext {
                            degree: pb::ConnectionDegree::OutOfNetwork as i32,
                            mutual_connection_count: 0,
                        })
                    }
                    // Blocked or deleted between the two reads: as if never found.
                    Err(crate::error::ProfileError::NotFound(_)) => {
                        return Err(Status::not_found("profile not found"))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ => None,
        };
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(profile_to_pb(profile)),
            viewer_context,
        }))
    }

    async fn batch_get_profiles(
        &self,
        request: Request<pb::BatchGetProfilesRequest>,
    ) -> Result<Response<pb::BatchGetProfilesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "member_ids",
            check_count(req.member_ids.len(), limits::MAX_BATCH_GET),
        );
        for (i, id) in req.member_ids.iter().enumerate() {
            v.check(&format!("member_ids[{i}]"), parse_id(id));
        }
        v.into_result()?;
        // Profiles the viewer may not see come back missing, and are answered as missing.
        let found: std::collections::HashMap<String, ProfileRecord> = self
            .store
            .batch_get_profiles(&req.member_ids, caller.viewer())
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut profiles = Vec::with_capacity(req.member_ids.len());
        for id in &req.member_ids {
            // A repeated id gets the same profile again.
            match found.get(id) {
                Some(p) => profiles.push(profile_to_pb(p.clone())),
                None if req.allow_missing => {}
                None => return Err(Status::not_found(format!("profile {id} not found"))),
            }
        }
        Ok(Response::new(pb::BatchGetProfilesResponse { profiles }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let Some(p) = req.profile else {
            return Err(invalid_field("profile", "is required"));
        };
        let mut v = FieldViolations::new();
        let id = v.check("profile.id", parse_id(&p.id));
        let paths: Vec<String> = match req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            // AIP-134: without a mask, every populated field is updated.
            _ => {
                let populated = [
                    ("handle", !p.handle.is_empty()),
                    ("display_name", !p.display_name.is_empty()),
                    ("headline", !p.headline.is_empty()),
                    ("summary", !p.summary.is_empty()),
                    ("location", !p.location.is_empty()),
                    ("industry", !p.industry.is_empty()),
                    ("skills", !p.skills.is_empty()),
                    ("positions", !p.positions.is_empty()),
                    ("education", !p.education.is_empty()),
                    ("open_to_work", p.open_to_work),
                ];
                populated
                    .iter()
                    .filter(|(_, set)| *set)
                    .map(|(name, _)| name.to_string())
                    .collect()
            }
        };
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        let all = paths.iter().any(|p| p == "*");
        let wants = |name: &str| all || paths.iter().any(|p| p == name);
        for (i, path) in paths.iter().enumerate() {
            if path != "*" && !UPDATABLE_FIELDS.contains(&path.as_str()) {
                v.add(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "unknown or read-only field {path:?}; updatable: {}",
                        UPDATABLE_FIELDS.join(", ")
                    ),
                );
            }
        }
        let mut changes = ProfileChanges::default();
        if wants("handle") {
            changes.handle = v.check("profile.handle", Handle::parse(&p.handle));
        }
        if wants("display_name") {
            changes.display_name = v.check(
                "profile.display_name",
                limits::DISPLAY_NAME.parse(&p.display_name),
            );
        }
        if wants("headline") {
            changes.headline = v.check("profile.headline", limits::HEADLINE.parse(&p.headline));
        }
        if wants("summary") {
            changes.summary = v.check("profile.summary", limits::SUMMARY.parse(&p.summary));
        }
        if wants("location") {
            changes.location = v.check("profile.location", limits::LOCATION.parse(&p.location));
        }
        if wants("industry") {
            changes.industry = v.check("profile.industry", limits::INDUSTRY.parse(&p.industry));
        }
        if wants("skills") {
            changes.skills = v.check("profile.skills", parse_skills(&p.skills));
        }
        if wants("positions") {
            changes.positions = parse_positions(&p.positions, &mut v, "profile.positions");
        }
        if wants("education") {
            changes.education = parse_education(&p.education, &mut v, "profile.education");
        }
        if wants("open_to_work") {
            changes.open_to_work = Some(p.open_to_work);
        }
        let Some(id) = id else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "profile.id", &id)?;
        let updated = self
            .store
            .update_profile(&id, changes, now_micros())
            .await?;
        Ok(Response::new(pb::UpdateProfileResponse {
            profile: Some(profile_to_pb(updated)),
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let inviter = v.check("inviter_id", parse_id(&req.inviter_id));
        let invitee = v.check("invitee_id", parse_id(&req.invitee_id));
        let message = v.check("message", limits::INVITATION_MESSAGE.parse(&req.message));
        if inviter.is_some() && inviter == invitee {
            v.add("invitee_id", "cannot invite yourself");
        }
        let request_id = v.check("request_id", parse_request_id(&req.request_id));
        let (Some(inviter_id), Some(invitee_id), Some(message), Some(request_id)) =
            (inviter, invitee, message, request_id)
        else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "inviter_id", &inviter_id)?;
        let key = request_id.map(|id| IdempotencyKey::new(&caller, id));
        let invitation = self
            .store
            .create_invitation(
                InvitationRecord {
                    id: new_id(),
                    inviter_id,
                    invitee_id,
                    message,
                    state: InvitationState::Pending,
                    create_time: now_micros(),
                },
                key.as_ref(),
            )
            .await?;
        Ok(Response::new(pb::CreateInvitationResponse {
            invitation: Some(invitation_to_pb(invitation)),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let invitation_id = v.check("invitation_id", parse_id(&req.invitation_id));
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let (Some(invitation_id), Some(member_id)) = (invitation_id, member_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        let now = now_micros();
        let inv = self
            .store
            .accept_invitation(&invitation_id, &member_id, now)
            .await?;
        let connection = ConnectionRecord {
            member_id: inv.inviter_id.clone(),
            create_time: now,
        };
        Ok(Response::new(pb::AcceptInvitationResponse {
            invitation: Some(invitation_to_pb(inv)),
            connection: Some(connection_to_pb(connection)),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let direction = match pb::InvitationDirection::try_from(req.direction) {
            Ok(pb::InvitationDirection::Received) => Some(InvitationDirection::Received),
            Ok(pb::InvitationDirection::Sent) => Some(InvitationDirection::Sent),
            _ => {
                v.add(
                    "direction",
                    "must be INVITATION_DIRECTION_RECEIVED or INVITATION_DIRECTION_SENT",
                );
                None
            }
        };
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", connection_cursor(&req.page_token));
        let (Some(member_id), Some(direction), Some(limit), Some(after)) =
            (member_id, direction, limit, after)
        else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_self_or_service("member_id", &member_id)?;
        self.require_member(&member_id).await?;
        let items = self
            .store
            .list_invitations(&member_id, direction, after, limit)
            .await?;
        let next_page_token =
            next_token(&items, limit, |i| encode_time_cursor(i.create_time, &i.id));
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: items.into_iter().map(invitation_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", connection_cursor(&req.page_token));
        let (Some(member_id), Some(limit), Some(after)) = (member_id, limit, after) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_self_or_service("member_id", &member_id)?;
        self.require_member(&member_id).await?;
        let items = self
            .store
            .list_connections(&member_id, after, limit)
            .await?;
        let next_page_token = next_token(&items, limit, |c| {
            encode_time_cursor(c.create_time, &c.member_id)
        });
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: items.into_iter().map(connection_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn follow(
        &self,
        request: Request<pb::FollowRequest>,
    ) -> Result<Response<pb::FollowResponse>, Status> {
        use pb::follow_request::Target;
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let target = match req.target {
            Some(Target::FolloweeId(id)) => {
                let id = v.check("followee_id", parse_id(&id));
                if id.is_some() && id == member_id {
                    v.add("followee_id", "cannot follow yourself");
                }
                id.map(FollowTarget::Member)
            }
            Some(Target::Hashtag(tag)) => v
                .check("hashtag", parse_hashtag(&tag))
                .map(FollowTarget::Hashtag),
            None => {
                v.add("target", "set followee_id or hashtag");
                None
            }
        };
        let (Some(member_id), Some(target)) = (member_id, target) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        let following = self.store.follow(&member_id, target, now_micros()).await?;
        Ok(Response::new(pb::FollowResponse {
            following: Some(following_to_pb(following)),
        }))
    }

    async fn list_following(
        &self,
        request: Request<pb::ListFollowingRequest>,
    ) -> Result<Response<pb::ListFollowingResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", follow_cursor(&req.page_token));
        let (Some(member_id), Some(limit), Some(after)) = (member_id, limit, after) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_self_or_service("member_id", &member_id)?;
        self.require_member(&member_id).await?;
        let items = self.store.list_following(&member_id, after, limit).await?;
        let next_page_token = next_token(&items, limit, |f| {
            encode_token(&[
                &f.create_time.to_string(),
                &f.target.kind().to_string(),
                f.target.value(),
            ])
        });
        Ok(Response::new(pb::ListFollowingResponse {
            following: items.into_iter().map(following_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn block_member(
        &self,
        request: Request<pb::BlockMemberRequest>,
    ) -> Result<Response<pb::BlockMemberResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let blocked_id = v.check("blocked_id", parse_id(&req.blocked_id));
        if member_id.is_some() && member_id == blocked_id {
            v.add("blocked_id", "cannot block yourself");
        }
        let (Some(member_id), Some(blocked_id)) = (member_id, blocked_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        self.store
            .block_member(&member_id, &blocked_id, now_micros())
            .await?;
        tracing::debug!(%member_id, %blocked_id, "member blocked");
        Ok(Response::new(pb::BlockMemberResponse {}))
    }

    async fn unblock_member(
        &self,
        request: Request<pb::UnblockMemberRequest>,
    ) -> Result<Response<pb::UnblockMemberResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let blocked_id = v.check("blocked_id", parse_id(&req.blocked_id));
        let (Some(member_id), Some(blocked_id)) = (member_id, blocked_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        // Idempotent, and silent about whether the member exists or was blocked.
        self.store.unblock_member(&member_id, &blocked_id).await?;
        Ok(Response::new(pb::UnblockMemberResponse {}))
    }

    async fn decline_invitation(
        &self,
        request: Request<pb::DeclineInvitationRequest>,
    ) -> Result<Response<pb::DeclineInvitationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let (invitation_id, member_id) =
            parse_invitation_action(&req.invitation_id, &req.member_id)?;
        require_self(&caller, "member_id", &member_id)?;
        let inv = self
            .store
            .decline_invitation(&invitation_id, &member_id, now_micros())
            .await?;
        Ok(Response::new(pb::DeclineInvitationResponse {
            invitation: Some(invitation_to_pb(inv)),
        }))
    }

    async fn withdraw_invitation(
        &self,
        request: Request<pb::WithdrawInvitationRequest>,
    ) -> Result<Response<pb::WithdrawInvitationResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let (invitation_id, member_id) =
            parse_invitation_action(&req.invitation_id, &req.member_id)?;
        require_self(&caller, "member_id", &member_id)?;
        let inv = self
            .store
            .withdraw_invitation(&invitation_id, &member_id, now_micros())
            .await?;
        Ok(Response::new(pb::WithdrawInvitationResponse {
            invitation: Some(invitation_to_pb(inv)),
        }))
    }

    async fn remove_connection(
        &self,
        request: Request<pb::RemoveConnectionRequest>,
    ) -> Result<Response<pb::RemoveConnectionResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let connection_id = v.check("connection_id", parse_id(&req.connection_id));
        if member_id.is_some() && member_id == connection_id {
            v.add("connection_id", "cannot be the member themself");
        }
        let (Some(member_id), Some(connection_id)) = (member_id, connection_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        self.store
            .remove_connection(&member_id, &connection_id)
            .await?;
        Ok(Response::new(pb::RemoveConnectionResponse {}))
    }

    async fn unfollow(
        &self,
        request: Request<pb::UnfollowRequest>,
    ) -> Result<Response<pb::UnfollowResponse>, Status> {
        use pb::unfollow_request::Target;
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let target = match req.target {
            Some(Target::FolloweeId(id)) => v
                .check("followee_id", parse_id(&id))
                .map(FollowTarget::Member),
            Some(Target::Hashtag(tag)) => v
                .check("hashtag", parse_hashtag(&tag))
                .map(FollowTarget::Hashtag),
            None => {
                v.add("target", "set followee_id or hashtag");
                None
            }
        };
        let (Some(member_id), Some(target)) = (member_id, target) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        // Idempotent, and silent about whether the target exists or was followed.
        self.store.unfollow(&member_id, &target).await?;
        Ok(Response::new(pb::UnfollowResponse {}))
    }

    async fn list_followers(
        &self,
        request: Request<pb::ListFollowersRequest>,
    ) -> Result<Response<pb::ListFollowersResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", connection_cursor(&req.page_token));
        let (Some(member_id), Some(limit), Some(after)) = (member_id, limit, after) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_self_or_service("member_id", &member_id)?;
        self.require_member(&member_id).await?;
        let items = self.store.list_followers(&member_id, after, limit).await?;
        let next_page_token = next_token(&items, limit, |f| {
            encode_time_cursor(f.create_time, &f.member_id)
        });
        Ok(Response::new(pb::ListFollowersResponse {
            followers: items.into_iter().map(follower_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_connection_degree(
        &self,
        request: Request<pb::GetConnectionDegreeRequest>,
    ) -> Result<Response<pb::GetConnectionDegreeResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let viewer_id = v.check("viewer_id", parse_id(&req.viewer_id));
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let (Some(viewer_id), Some(member_id)) = (viewer_id, member_id) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_self_or_service("viewer_id", &viewer_id)?;
        let degree = self.store.connection_degree(&viewer_id, &member_id).await?;
        Ok(Response::new(degree_to_pb(degree)))
    }

    async fn batch_get_relationships(
        &self,
        request: Request<pb::BatchGetRelationshipsRequest>,
    ) -> Result<Response<pb::BatchGetRelationshipsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let viewer_id = v.check("viewer_id", parse_id(&req.viewer_id));
        v.check(
            "member_ids",
            check_count(req.member_ids.len(), limits::MAX_RELATIONSHIP_IDS),
        );
        for (i, id) in req.member_ids.iter().enumerate() {
            v.check(&format!("member_ids[{i}]"), parse_id(id));
        }
        let Some(viewer_id) = viewer_id else {
            return Err(v.into_status());
        };
        v.into_result()?;
        caller.require_service()?;
        let relationships = self
            .store
            .relationships(&viewer_id, &req.member_ids)
            .await?;
        Ok(Response::new(pb::BatchGetRelationshipsResponse {
            relationships: relationships.into_iter().map(relationship_to_pb).collect(),
        }))
    }

    async fn lookup_handles(
        &self,
        request: Request<pb::LookupHandlesRequest>,
    ) -> Result<Response<pb::LookupHandlesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "handles",
            check_count(req.handles.len(), limits::MAX_LOOKUP_HANDLES),
        );
        let keys: Vec<String> = req
            .handles
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| v.check(&format!("handles[{i}]"), Handle::parse(raw)))
            .map(|handle| handle.key())
            .collect();
        v.into_result()?;
        caller.require_service()?;
        let owners = self.store.lookup_handles(&keys).await?;
        Ok(Response::new(pb::LookupHandlesResponse {
            owners: owners
                .into_iter()
                .map(|(handle, member_id)| pb::HandleOwner { handle, member_id })
                .collect(),
        }))
    }

    async fn suggest_connections(
        &self,
        request: Request<pb::SuggestConnectionsRequest>,
    ) -> Result<Response<pb::SuggestConnectionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::SUGGESTION_DEFAULT_PAGE_SIZE,
                limits::SUGGESTION_MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", suggestion_cursor(&req.page_token));
        let (Some(member_id), Some(limit), Some(after)) = (member_id, limit, after) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        require_self(&caller, "member_id", &member_id)?;
        let inputs = self.store.suggestion_candidates(&member_id).await?;
        let page: Vec<Suggestion> = rank_suggestions(inputs)
            .into_iter()
            .filter(|s| after.as_ref().is_none_or(|c| c.precedes(s)))
            .take(limit)
            .collect();
        let next_page_token = next_token(&page, limit, |s| {
            encode_token(&[&s.score.to_string(), &s.member_id])
        });
        Ok(Response::new(pb::SuggestConnectionsResponse {
            suggestions: page.into_iter().map(suggestion_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn search_profiles(
        &self,
        request: Request<pb::SearchProfilesRequest>,
    ) -> Result<Response<pb::SearchProfilesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let filters = req.filters.unwrap_or_default();
        let mut v = FieldViolations::new();
        let terms = v.check("query", parse_search_terms(&req.query));
        let mut skill_keys = Vec::new();
        if let Err(e) = check_count(filters.skills.len(), limits::SEARCH_MAX_SKILLS) {
            v.add("filters.skills", e);
        }
        for (i, skill) in filters.skills.iter().enumerate() {
            if let Some(skill) =
                v.check(&format!("filters.skills[{i}]"), limits::SKILL.parse(skill))
            {
                let key = canonical_key(&skill);
                if !skill_keys.contains(&key) {
                    skill_keys.push(key);
                }
            }
        }
        let location_key = v.check("filters.location", filter_key(&filters.location));
        let industry_key = v.check("filters.industry", filter_key(&filters.industry));
        let company_key = v.check(
            "filters.current_company",
            filter_key(&filters.current_company),
        );
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::SEARCH_DEFAULT_PAGE_SIZE,
                limits::SEARCH_MAX_PAGE_SIZE,
            ),
        );
        let offset = v.check("page_token", search_offset(&req.page_token));
        let query = match (terms, location_key, industry_key, company_key) {
            (Some(terms), Some(location_key), Some(industry_key), Some(company_key)) => {
                Some(SearchQuery {
                    terms,
                    skill_keys,
                    location_key,
                    industry_key,
                    open_to_work: filters.open_to_work,
                    company_key,
                })
            }
            _ => None,
        };
        if let Some(q) = &query {
            if q.terms.is_empty() && !q.has_filter() {
                v.add("query", "set words to search for or at least one filter");
            }
        }
        let (Some(query), Some(limit), Some(offset)) = (query, limit, offset) else {
            return Err(v.into_status());
        };
        v.into_result()?;
        // The searcher is the calling member: their network ranks the results.
        let searcher = caller.member()?.to_owned();
        let hits = self
            .store
            .search_profiles(&searcher, &query, offset..offset + limit)
            .await?;
        let ranked = rank_search(hits, !query.terms.is_empty());
        let page: Vec<_> = ranked.iter().skip(offset).take(limit).cloned().collect();
        let next_page_token = if offset + page.len() < ranked.len() && page.len() == limit {
            encode_token(&[&(offset + page.len()).to_string()])
        } else {
            String::new()
        };
        let ids: Vec<String> = page.iter().map(|h| h.member_id.clone()).collect();
        // The page's profiles and highlights are independent reads: both at once.
        let (profiles, highlights) = tokio::join!(
            self.store.batch_get_profiles(&ids, Some(&searcher)),
            self.store.search_highlights(&query, &ids)
        );
        let mut profiles: std::collections::HashMap<String, ProfileRecord> =
            profiles?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut highlights = highlights?;
        let results = page
            .into_iter()
            // A profile gone (or blocked) between the two reads is left out.
            .filter_map(|h| {
                let profile = profiles.remove(&h.member_id)?;
                Some(pb::SearchResult {
                    highlights: highlights.remove(&h.member_id).unwrap_or_default(),
                    profile: Some(profile_to_pb(profile)),
                    // Every hit of the page has its degree (the store computed the window).
                    degree: degree_pb(h.degree.unwrap_or(Degree::OutOfNetwork)) as i32,
                    relevance: h.relevance,
                })
            })
            .collect();
        Ok(Response::new(pb::SearchProfilesResponse {
            results,
            next_page_token,
        }))
    }

    async fn import_connections(
        &self,
        request: Request<pb::ImportConnectionsRequest>,
    ) -> Result<Response<pb::ImportConnectionsResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "pairs",
            check_count(req.pairs.len(), limits::MAX_IMPORT_CONNECTIONS),
        );
        let mut pairs = Vec::with_capacity(req.pairs.len());
        for (i, pair) in req.pairs.iter().enumerate() {
            let a = v.check(&format!("pairs[{i}].member_id"), parse_id(&pair.member_id));
            let b = v.check(&format!("pairs[{i}].other_id"), parse_id(&pair.other_id));
            if let (Some(a), Some(b)) = (a, b) {
                pairs.push((a, b));
            }
        }
        v.into_result()?;
        caller.require_service()?;
        let (distinct, dropped) = distinct_pairs(&pairs);
        let (created, skipped) = self
            .store
            .import_connections(&distinct, now_micros())
            .await?;
        tracing::info!(created, skipped = skipped + dropped, "connections imported");
        Ok(Response::new(pb::ImportConnectionsResponse {
            created_count: created as i64,
            skipped_count: (skipped + dropped) as i64,
        }))
    }

    async fn import_profiles(
        &self,
        request: Request<pb::ImportProfilesRequest>,
    ) -> Result<Response<pb::ImportProfilesResponse>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "profiles",
            check_count(req.profiles.len(), limits::MAX_IMPORT_PROFILES),
        );
        let mut profiles = Vec::with_capacity(req.profiles.len());
        for (i, p) in req.profiles.iter().enumerate() {
            let prefix = format!("profiles[{i}]");
            let id = v.check(&format!("{prefix}.id"), parse_id(&p.id));
            let fields = parse_fields(p, &mut v, &prefix);
            if let (Some(id), Some(fields)) = (id, fields) {
                profiles.push((id, fields));
            }
        }
        v.into_result()?;
        caller.require_service()?;
        let (created, skipped) = self.store.import_profiles(profiles, now_micros()).await?;
        tracing::info!(created, skipped, "profiles imported");
        Ok(Response::new(pb::ImportProfilesResponse {
            created_count: created as i64,
            skipped_count: skipped as i64,
        }))
    }
}

#[cfg(test)]
mod tests;
