//! The engagement service as the post service sees it: recording the share a reshare is, and
//! the engagement of posts for trending hashtags. A trait, so the adapter's tests need no
//! engagement server.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use pronet_common::auth::{AuthConfig, ServiceAuth};
use pronet_common::upstream::Upstream;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::engagement::v1::{BatchGetPostStatsRequest, RecordShareRequest};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::domain::limits;
use crate::error::PostError;
use crate::profiles::CREDENTIALS_NAME;

#[async_trait]
pub trait Engagement: Send + Sync + 'static {
    /// Records that `member_id` shared `post_id`.
    async fn record_share(&self, member_id: &str, post_id: &str) -> Result<(), PostError>;

    /// Reactions + comments + shares of each of `post_ids` (distinct), counted for nobody in
    /// particular. Posts the answer leaves out have none.
    async fn engagement(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, PostError>;
}

/// Asks the engagement service over gRPC, with this service's token.
#[derive(Debug, Clone)]
pub struct GrpcEngagement {
    engagement: Upstream<EngagementServiceClient<InterceptedService<Channel, ServiceAuth>>>,
}

impl GrpcEngagement {
    pub fn new(channel: Channel, auth: Arc<AuthConfig>) -> Self {
        let credentials = ServiceAuth::new(auth, CREDENTIALS_NAME);
        let client = EngagementServiceClient::with_interceptor(channel, credentials);
        Self {
            engagement: Upstream::new("engagement", client),
        }
    }
}

#[async_trait]
impl Engagement for GrpcEngagement {
    async fn record_share(&self, member_id: &str, post_id: &str) -> Result<(), PostError> {
        let request = RecordShareRequest {
            member_id: member_id.to_owned(),
            post_id: post_id.to_owned(),
        };
        self.engagement
            .write(request, |mut c, r| async move { c.record_share(r).await })
            .await?;
        Ok(())
    }

    async fn engagement(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, PostError> {
        let mut engagement = HashMap::with_capacity(post_ids.len());
        for chunk in post_ids.chunks(limits::STATS_CHUNK) {
            // No viewer: counts for everyone, and the engagement service asks nobody.
            let request = BatchGetPostStatsRequest {
                post_ids: chunk.to_vec(),
                viewer_id: String::new(),
            };
            let response = self
                .engagement
                .read(&request, |mut c, r| async move {
                    c.batch_get_post_stats(r).await
                })
                .await?;
            engagement.extend(
                response
                    .stats
                    .into_iter()
                    .map(|s| (s.post_id, s.total_reactions + s.comments + s.shares)),
            );
        }
        Ok(engagement)
    }
}
