//! The profile service as the post service sees it: how a viewer relates to post authors
//! (connected, blocked either way), which members @handles name, and which members exist.
//! Traits, so the adapter stays thin and its tests need no profile server.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::auth::AuthConfig;
use pronet_common::upstream::{ProfileServiceClient, Upstream};
use pronet_proto::profile::v1::{BatchGetProfilesRequest, LookupHandlesRequest};
use tonic::transport::Channel;

use crate::domain::{limits, Mention, Relation};
use crate::error::PostError;

/// The name in this service's service token.
pub const CREDENTIALS_NAME: &str = "post";

/// Most members one `BatchGetRelationships` call may name.
const MAX_MEMBERS_PER_CALL: usize = 5000;

#[async_trait]
pub trait Relationships: Send + Sync + 'static {
    /// How `viewer` relates to each of `members` (distinct ids). Members the answer leaves out
    /// relate to the viewer as strangers do. `Dependency` when the profile service cannot tell.
    async fn relationships(
        &self,
        viewer: &str,
        members: &[String],
    ) -> Result<HashMap<String, Relation>, PostError>;
}

#[async_trait]
pub trait Handles: Send + Sync + 'static {
    /// The members behind `handles` (lowercase, distinct), keyed by the lowercase handle;
    /// handles of nobody are left out. `Dependency` when the profile service cannot tell.
    async fn lookup_handles(
        &self,
        handles: &[String],
    ) -> Result<HashMap<String, Mention>, PostError>;
}

#[async_trait]
pub trait Members: Send + Sync + 'static {
    /// Which of `member_ids` (distinct, at most [`limits::MAX_BATCH_GET`]) have a profile.
    /// `Dependency` when the profile service cannot tell.
    async fn existing_members(&self, member_ids: &[String]) -> Result<HashSet<String>, PostError>;
}

/// Asks the profile service over gRPC (`ProfileService.BatchGetRelationships`), with this
/// service's token.
#[derive(Debug, Clone)]
pub struct GrpcRelationships {
    profile: Upstream<ProfileServiceClient>,
}

impl GrpcRelationships {
    pub fn new(channel: Channel, auth: Arc<AuthConfig>) -> Self {
        Self {
            profile: Upstream::profile(channel, auth, CREDENTIALS_NAME),
        }
    }
}

#[async_trait]
impl Relationships for GrpcRelationships {
    async fn relationships(
        &self,
        viewer: &str,
        members: &[String],
    ) -> Result<HashMap<String, Relation>, PostError> {
        // Callers ask about at most 1000 authors today; chunking keeps the limit ours to keep.
        let found = pronet_common::upstream::relationships(
            &self.profile,
            viewer,
            members,
            MAX_MEMBERS_PER_CALL,
        )
        .await?;
        let relations = found
            .into_iter()
            .map(|r| {
                (
                    r.member_id,
                    Relation {
                        connected: r.connected,
                        blocked: r.blocked,
                    },
                )
            })
            .collect();
        Ok(relations)
    }
}

#[async_trait]
impl Handles for GrpcRelationships {
    async fn lookup_handles(
        &self,
        handles: &[String],
    ) -> Result<HashMap<String, Mention>, PostError> {
        let mut owners = HashMap::with_capacity(handles.len());
        for chunk in handles.chunks(limits::MAX_LOOKUP_HANDLES) {
            let request = LookupHandlesRequest {
                handles: chunk.to_vec(),
            };
            let response = self
                .profile
                .read(
                    &request,
                    |mut c, r| async move { c.lookup_handles(r).await },
                )
                .await?;
            owners.extend(response.owners.into_iter().map(|o| {
                (
                    o.handle.to_ascii_lowercase(),
                    Mention {
                        handle: o.handle,
                        member_id: o.member_id,
                    },
                )
            }));
        }
        Ok(owners)
    }
}

#[async_trait]
impl Members for GrpcRelationships {
    async fn existing_members(&self, member_ids: &[String]) -> Result<HashSet<String>, PostError> {
        let mut existing = HashSet::with_capacity(member_ids.len());
        // One call for an import (at most 1000 posts, so at most 1000 authors).
        for chunk in member_ids.chunks(limits::MAX_BATCH_GET) {
            let request = BatchGetProfilesRequest {
                member_ids: chunk.to_vec(),
                allow_missing: true,
            };
            let response = self
                .profile
                .read(
                    &request,
                    |mut c, r| async move { c.batch_get_profiles(r).await },
                )
                .await?;
            existing.extend(response.profiles.into_iter().map(|p| p.id));
        }
        Ok(existing)
    }
}
