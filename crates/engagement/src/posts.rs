//! The post service as the engagement service sees it: whether a post exists. A trait, so the
//! adapter stays thin and its tests need no post server.

use async_trait::async_trait;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::post::v1::GetPostRequest;
use tonic::transport::Channel;
use tonic::Code;

use crate::error::EngagementError;

#[async_trait]
pub trait PostDirectory: Send + Sync + 'static {
    /// `Ok` when the post exists, `NotFound("post")` when it does not, `Dependency` when the
    /// post service cannot tell.
    async fn require_post(&self, post_id: &str) -> Result<(), EngagementError>;
}

/// Asks the post service over gRPC (`PostService.GetPost`).
#[derive(Debug, Clone)]
pub struct GrpcPostDirectory {
    client: PostServiceClient<Channel>,
}

impl GrpcPostDirectory {
    pub fn new(channel: Channel) -> Self {
        Self {
            client: PostServiceClient::new(channel),
        }
    }
}

#[async_trait]
impl PostDirectory for GrpcPostDirectory {
    async fn require_post(&self, post_id: &str) -> Result<(), EngagementError> {
        // Clients share one channel; a clone per call is cheap and needs no lock.
        let mut client = self.client.clone();
        let request = GetPostRequest {
            post_id: post_id.to_owned(),
        };
        match client.get_post(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => {
                Err(EngagementError::NotFound("post"))
            }
            Err(status) => Err(EngagementError::Dependency {
                dependency: "post",
                status: Box::new(status),
            }),
        }
    }
}
