//! The other services as the feed calls them: where they listen, and the one call a page makes
//! (post bodies). Candidates, the graph and counts come from the index, fed by their events
//! ([`crate::events`]); the feed never reads another service's store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pronet_common::auth::{AuthConfig, ServiceAuth};
use pronet_common::error::ServiceError;
use pronet_common::upstream::{
    is_transport_failure, lazy_channel, CallLimits, OutageEvidence, Upstream,
};
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

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

/// Most post bodies kept for degraded pages (~2 KB each at most: ~40 MB).
const BODY_CACHE_CAPACITY: usize = 20_000;

/// The post service, for the bodies of the posts on a page: the one call a feed page makes.
/// Bodies it returned are kept (bounded, oldest out first), so that when it fails or is too
/// slow a page is still served, from those copies and the index ("degraded").
#[derive(Clone)]
pub struct PostBodies {
    /// Calls that find it unavailable are retried once, within its retry budget.
    post: Upstream<PostServiceClient<Authed>>,
    /// Longest a page waits for bodies (less when the caller's deadline is nearer).
    budget: Duration,
    cache: Arc<Mutex<BodyCache>>,
    /// Whether the post service counts as down: then pages skip it and serve degraded at once,
    /// instead of each waiting out the budget, and one page at a time tries it again.
    health: Arc<Mutex<OutageEvidence>>,
}

#[derive(Default)]
struct BodyCache {
    posts: HashMap<String, ppb::Post>,
    order: VecDeque<String>,
}

impl BodyCache {
    fn insert(&mut self, post: &ppb::Post) {
        if self.posts.insert(post.id.clone(), post.clone()).is_none() {
            self.order.push_back(post.id.clone());
        }
        while self.posts.len() > BODY_CACHE_CAPACITY {
            match self.order.pop_front() {
                Some(old) => {
                    self.posts.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// A page's bodies.
#[derive(Debug, Default)]
pub struct Bodies {
    /// By post id: fresh from the post service, or kept copies when `degraded`.
    pub posts: HashMap<String, ppb::Post>,
    /// The post service failed or was too slow: `posts` are kept copies (perhaps not all
    /// of the page; a post missing from them is not known to be deleted).
    pub degraded: bool,
}

impl PostBodies {
    pub fn connect(
        up: &Upstreams,
        budget: Duration,
        metrics: Option<Arc<pronet_common::metrics::Metrics>>,
    ) -> Result<Self, String> {
        let auth = ServiceAuth::new(up.auth.clone(), "feed");
        let client =
            PostServiceClient::with_interceptor(lazy_channel(&up.post_addr, up.limits)?, auth)
                .max_decoding_message_size(MAX_INTERNAL_MESSAGE_BYTES);
        Ok(Self {
            post: Upstream::new("post", client).with_metrics(metrics),
            budget,
            cache: Arc::default(),
            health: Arc::default(),
        })
    }

    /// The bodies of `ids` (at most a page) in one call. When the post service fails, or
    /// does not answer within the budget, the kept copies instead, marked degraded.
    pub async fn get(&self, ids: Vec<String>) -> Bodies {
        if ids.is_empty() {
            return Bodies::default();
        }
        // While the post service counts as down, one page at a time tries it again (the
        // others serve degraded at once instead of each waiting out the budget).
        if self.health().may_call() {
            // Within the call's own deadline too (less the time to answer).
            let budget = match pronet_common::deadline::remaining() {
                Some(left) => self
                    .budget
                    .min(left.saturating_sub(pronet_common::deadline::MARGIN)),
                None => self.budget,
            };
            let outcome = tokio::time::timeout(budget, self.fetch(ids.clone())).await;
            let unreachable = match outcome {
                Ok(Ok(posts)) => {
                    self.health().answered();
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    for p in &posts {
                        cache.insert(p);
                    }
                    return Bodies {
                        posts: posts.into_iter().map(|p| (p.id.clone(), p)).collect(),
                        degraded: false,
                    };
                }
                Ok(Err(err)) => {
                    tracing::warn!(%err, "post bodies failed: serving a degraded page");
                    // Not reachable even after the retry on a new connection: down already.
                    matches!(&err, ServiceError::Dependency { status, .. } if is_transport_failure(status))
                }
                Err(_) => {
                    tracing::warn!(
                        budget_ms = budget.as_millis() as u64,
                        "post bodies too slow: serving a degraded page"
                    );
                    false
                }
            };
            self.health().failed(unreachable);
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Bodies {
            posts: ids
                .iter()
                .filter_map(|id| cache.posts.get(id).map(|p| (id.clone(), p.clone())))
                .collect(),
            degraded: true,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, OutageEvidence> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The posts that still exist among `ids`, in one call.
    async fn fetch(&self, ids: Vec<String>) -> Result<Vec<ppb::Post>, ServiceError> {
        let request = ppb::BatchGetPostsRequest {
            post_ids: ids,
            allow_missing: true,
            viewer_id: String::new(),
        };
        let resp = self
            .post
            .read(
                &request,
                |mut c, r| async move { c.batch_get_posts(r).await },
            )
            .await?;
        Ok(resp.posts)
    }
}
