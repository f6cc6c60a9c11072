//! The other services as the feed calls them: where they listen, and the one call a page makes
//! (post bodies). Candidates, the graph and counts come from the index, fed by their events
//! ([`crate::events`]); the feed never reads another service's store.

use std::sync::Arc;

use pronet_common::auth::{AuthConfig, ServiceAuth, ServiceCredentials};
use pronet_common::upstream::{dependency_failed, lazy_channel, CallLimits};
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Status;

/// Posts of up to 3,000 characters, reshares with their originals: a page of 100 fits easily.
const MAX_INTERNAL_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Addresses of the services the feed reads from, and the keys its service token is signed
/// with.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub profile_addr: String,
    pub post_addr: String,
    pub engagement_addr: String,
    pub limits: CallLimits,
    pub auth: Arc<AuthConfig>,
}

type Authed = InterceptedService<Channel, ServiceAuth>;

/// The post service, for the bodies of the posts on a page: the one call a feed page makes.
#[derive(Clone)]
pub struct PostBodies {
    posts: PostServiceClient<Authed>,
}

impl PostBodies {
    pub fn connect(up: &Upstreams) -> Result<Self, String> {
        let auth = ServiceAuth(ServiceCredentials::new(up.auth.clone(), "feed"));
        let posts =
            PostServiceClient::with_interceptor(lazy_channel(&up.post_addr, up.limits)?, auth)
                .max_decoding_message_size(MAX_INTERNAL_MESSAGE_BYTES);
        Ok(Self { posts })
    }

    /// The posts that still exist among `ids` (at most a page), in one call.
    pub async fn posts(&self, ids: Vec<String>) -> Result<Vec<ppb::Post>, Status> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.posts.clone();
        let resp = client
            .batch_get_posts(ppb::BatchGetPostsRequest {
                post_ids: ids,
                allow_missing: true,
                viewer_id: String::new(),
            })
            .await
            .map_err(|s| dependency_failed("post", s))?;
        Ok(resp.into_inner().posts)
    }
}
