//! The profile service as the engagement service sees it: who a viewer is connected to, and
//! whom they blocked or were blocked by. A trait, so the adapter's tests need no profile server.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::auth::AuthConfig;
use pronet_common::upstream::{ProfileServiceClient, Upstream};
use pronet_proto::profile::v1::get_profile_request::Lookup;
use pronet_proto::profile::v1::{GetProfileRequest, ListConnectionsRequest};
use tonic::transport::Channel;

use crate::error::EngagementError;
use crate::posts::SERVICE_TOKEN_NAME;

/// The most members the profile service relates in one `BatchGetRelationships`.
pub const MAX_RELATIONSHIPS_PER_BATCH: usize = 5000;

/// The largest page of connections the profile service gives.
const CONNECTIONS_PAGE: i32 = 1000;

#[async_trait]
pub trait MemberGraph: Send + Sync + 'static {
    /// The members among `member_ids` that blocked `viewer_id` or were blocked by them.
    async fn blocked_among(
        &self,
        viewer_id: &str,
        member_ids: &[String],
    ) -> Result<HashSet<String>, EngagementError>;

    /// Up to `max` of the member's connections, newest first.
    async fn connections(
        &self,
        member_id: &str,
        max: usize,
    ) -> Result<Vec<String>, EngagementError>;

    /// Whether the member has a profile.
    async fn member_exists(&self, member_id: &str) -> Result<bool, EngagementError>;
}

/// Asks the profile service over gRPC, with this service's token.
#[derive(Clone)]
pub struct GrpcMemberGraph {
    profile: Upstream<ProfileServiceClient>,
}

impl GrpcMemberGraph {
    pub fn new(channel: Channel, auth: Arc<AuthConfig>) -> Self {
        Self {
            profile: Upstream::profile(channel, auth, SERVICE_TOKEN_NAME),
        }
    }
}

#[async_trait]
impl MemberGraph for GrpcMemberGraph {
    async fn blocked_among(
        &self,
        viewer_id: &str,
        member_ids: &[String],
    ) -> Result<HashSet<String>, EngagementError> {
        let mut seen = HashSet::new();
        let others: Vec<String> = member_ids
            .iter()
            .filter(|id| *id != viewer_id && seen.insert(id.as_str()))
            .cloned()
            .collect();
        let found = pronet_common::upstream::relationships(
            &self.profile,
            viewer_id,
            &others,
            MAX_RELATIONSHIPS_PER_BATCH,
        )
        .await?;
        let blocked = found
            .into_iter()
            .filter(|r| r.blocked)
            .map(|r| r.member_id)
            .collect();
        Ok(blocked)
    }

    async fn connections(
        &self,
        member_id: &str,
        max: usize,
    ) -> Result<Vec<String>, EngagementError> {
        let mut connections = Vec::new();
        let mut page_token = String::new();
        while connections.len() < max {
            let request = ListConnectionsRequest {
                member_id: member_id.to_owned(),
                page_size: CONNECTIONS_PAGE,
                page_token,
            };
            let page = self
                .profile
                .read(
                    &request,
                    |mut c, r| async move { c.list_connections(r).await },
                )
                .await?;
            connections.extend(page.connections.into_iter().map(|c| c.member_id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        connections.truncate(max);
        Ok(connections)
    }

    async fn member_exists(&self, member_id: &str) -> Result<bool, EngagementError> {
        let request = GetProfileRequest {
            lookup: Some(Lookup::MemberId(member_id.to_owned())),
        };
        // NOT_FOUND: no such profile.
        let found = self
            .profile
            .read_found(&request, |mut c, r| async move { c.get_profile(r).await })
            .await?;
        Ok(found.is_some())
    }
}
