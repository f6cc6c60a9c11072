//! The tonic adapter of the profile service: decode, validate, authorize, call the store,
//! encode.
//!
//! Every handler takes the [`Caller`] first, then checks every field (all violations at once),
//! then whether the caller may act (never depending on whether an id exists), then looks up.

use std::sync::Arc;

use pronet_common::auth::{caller, require_self};
use pronet_common::error::invalid_field;
use pronet_common::ids::{in_request_order, new_id, parse_id};
use pronet_common::input::{check_count, parse_hashtag};
use pronet_common::pagination::{
    decode_time_cursor, decode_token, encode_time_cursor, encode_token,
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
        let (fields, request_id) = parse_create_profile(request.get_ref())?;
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
        let (ids, allow_missing) = parse_batch_get_profiles(request.into_inner())?;
        // Profiles the viewer may not see come back missing, and are answered as missing.
        let found = self.store.batch_get_profiles(&ids, caller.viewer()).await?;
        let found = in_request_order(&ids, found, |p| &p.id, allow_missing, "profile")?;
        let profiles = found.into_iter().map(profile_to_pb).collect();
        Ok(Response::new(pb::BatchGetProfilesResponse { profiles }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let caller = caller(&request)?;
        let (id, changes) = parse_update_profile(request.into_inner())?;
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
        let CreateInvitation {
            inviter_id,
            invitee_id,
            message,
            request_id,
        } = parse_create_invitation(request.get_ref())?;
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
        let (invitation_id, member_id) = parse_accept_invitation(request.get_ref())?;
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
        let (page, direction) = parse_list_invitations(request.get_ref())?;
        caller.require_self_or_service("member_id", &page.member_id)?;
        self.require_member(&page.member_id).await?;
        let items = self
            .store
            .list_invitations(&page.member_id, direction, page.after, page.limit)
            .await?;
        let next_page_token = next_token(&items, page.limit, |i| {
            encode_time_cursor(i.create_time, &i.id)
        });
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
        let page = parse_list_connections(request.get_ref())?;
        caller.require_self_or_service("member_id", &page.member_id)?;
        self.require_member(&page.member_id).await?;
        let items = self
            .store
            .list_connections(&page.member_id, page.after, page.limit)
            .await?;
        let next_page_token = next_token(&items, page.limit, |c| {
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
        let caller = caller(&request)?;
        let (member_id, target) = parse_follow(request.get_ref())?;
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
        let page = parse_list_following(request.get_ref())?;
        caller.require_self_or_service("member_id", &page.member_id)?;
        self.require_member(&page.member_id).await?;
        let items = self
            .store
            .list_following(&page.member_id, page.after, page.limit)
            .await?;
        let next_page_token = next_token(&items, page.limit, |f| {
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
        let (member_id, blocked_id) = parse_block_member(request.get_ref())?;
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
        let (member_id, blocked_id) = parse_unblock_member(request.get_ref())?;
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
        let (invitation_id, member_id) = parse_decline_invitation(request.get_ref())?;
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
        let (invitation_id, member_id) = parse_withdraw_invitation(request.get_ref())?;
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
        let (member_id, connection_id) = parse_remove_connection(request.get_ref())?;
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
        let caller = caller(&request)?;
        let (member_id, target) = parse_unfollow(request.get_ref())?;
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
        let page = parse_list_followers(request.get_ref())?;
        caller.require_self_or_service("member_id", &page.member_id)?;
        self.require_member(&page.member_id).await?;
        let items = self
            .store
            .list_followers(&page.member_id, page.after, page.limit)
            .await?;
        let next_page_token = next_token(&items, page.limit, |f| {
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
        let (viewer_id, member_id) = parse_get_connection_degree(request.get_ref())?;
        caller.require_self_or_service("viewer_id", &viewer_id)?;
        let degree = self.store.connection_degree(&viewer_id, &member_id).await?;
        Ok(Response::new(degree_to_pb(degree)))
    }

    async fn batch_get_relationships(
        &self,
        request: Request<pb::BatchGetRelationshipsRequest>,
    ) -> Result<Response<pb::BatchGetRelationshipsResponse>, Status> {
        let caller = caller(&request)?;
        let (viewer_id, member_ids) = parse_batch_get_relationships(request.into_inner())?;
        caller.require_service()?;
        let relationships = self.store.relationships(&viewer_id, &member_ids).await?;
        Ok(Response::new(pb::BatchGetRelationshipsResponse {
            relationships: relationships.into_iter().map(relationship_to_pb).collect(),
        }))
    }

    async fn lookup_handles(
        &self,
        request: Request<pb::LookupHandlesRequest>,
    ) -> Result<Response<pb::LookupHandlesResponse>, Status> {
        let caller = caller(&request)?;
        let keys = parse_lookup_handles(request.get_ref())?;
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
        let MemberPage {
            member_id,
            after,
            limit,
        } = parse_suggest_connections(request.get_ref())?;
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
        let SearchProfiles {
            query,
            offset,
            limit,
        } = parse_search_profiles(request.into_inner())?;
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
        let pairs = parse_import_connections(request.get_ref())?;
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
        let profiles = parse_import_profiles(request.get_ref())?;
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
