//! The post service as the engagement service sees it: whether a post exists and whether a
//! member may see it. A trait, so the adapter stays thin and its tests need no post server.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use pronet_common::auth::{AuthConfig, ServiceAuth};
use pronet_common::upstream::Upstream;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::post::v1::{BatchGetPostsRequest, GetPostRequest};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::error::EngagementError;

/// The name in the service token this service calls the post service with.
pub const SERVICE_TOKEN_NAME: &str = "engagement";

/// The most ids the post service takes in one `BatchGetPosts`.
pub const MAX_POSTS_PER_BATCH: usize = 1000;

/// A full batch of posts of up to 3,000 characters each is far over tonic's 4 MiB default.
const MAX_POST_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

#[async_trait]
pub trait PostDirectory: Send + Sync + 'static {
    /// `Ok` when the post exists and `viewer_id` may see it; `NotFound("post")` when it does not
    /// exist or is hidden from the viewer (the two are indistinguishable on purpose);
    /// `Dependency` when the post service cannot tell.
    async fn require_visible_post(
        &self,
        post_id: &str,
        viewer_id: &str,
    ) -> Result<(), EngagementError>;

    /// The ids among `post_ids` that exist and `viewer_id` may see; `Dependency` when the post
    /// service cannot tell.
    async fn visible_posts(
        &self,
        post_ids: &[String],
        viewer_id: &str,
    ) -> Result<HashSet<String>, EngagementError>;
}

type AuthedChannel = InterceptedService<Channel, ServiceAuth>;

/// Asks the post service over gRPC (`PostService.GetPost` and `BatchGetPosts`), with this
/// service's token.
#[derive(Clone)]
pub struct GrpcPostDirectory {
    post: Upstream<PostServiceClient<AuthedChannel>>,
}

impl GrpcPostDirectory {
    /// Calls go over `channel` and carry a service token signed with `auth`.
    pub fn new(
        channel: Channel,
        auth: Arc<AuthConfig>,
        metrics: Option<Arc<pronet_common::metrics::Metrics>>,
    ) -> Self {
        let credentials = ServiceAuth::new(auth, SERVICE_TOKEN_NAME);
        let client = PostServiceClient::with_interceptor(channel, credentials)
            .max_decoding_message_size(MAX_POST_RESPONSE_BYTES);
        Self {
            post: Upstream::new("post", client).with_metrics(metrics),
        }
    }
}

#[async_trait]
impl PostDirectory for GrpcPostDirectory {
    async fn require_visible_post(
        &self,
        post_id: &str,
        viewer_id: &str,
    ) -> Result<(), EngagementError> {
        let request = GetPostRequest {
            post_id: post_id.to_owned(),
            viewer_id: viewer_id.to_owned(),
        };
        // NOT_FOUND: missing, or hidden from the member, and answered alike.
        self.post
            .read_found(&request, |mut c, r| async move { c.get_post(r).await })
            .await?
            .map(|_| ())
            .ok_or(EngagementError::NotFound("post"))
    }

    async fn visible_posts(
        &self,
        post_ids: &[String],
        viewer_id: &str,
    ) -> Result<HashSet<String>, EngagementError> {
        let mut seen = HashSet::new();
        let unique: Vec<String> = post_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        // The chunks go out together: one round trip however many there are.
        let calls = unique.chunks(MAX_POSTS_PER_BATCH).map(|chunk| {
            let request = BatchGetPostsRequest {
                post_ids: chunk.to_vec(),
                // Missing and invisible posts are left out instead of failing the batch.
                allow_missing: true,
                viewer_id: viewer_id.to_owned(),
            };
            let post = self.post.clone();
            async move {
                post.read(
                    &request,
                    |mut c, r| async move { c.batch_get_posts(r).await },
                )
                .await
            }
        });
        let responses = try_join_all(calls).await?;
        Ok(responses
            .into_iter()
            .flat_map(|r| r.posts)
            .map(|post| post.id)
            .collect())
    }
}
