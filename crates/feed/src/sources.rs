//! Where candidates come from: the profile, post and engagement services, called over gRPC in
//! batches with deadlines. The feed never reads another service's store.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::try_join_all;
use pronet_common::auth::{AuthConfig, ServiceAuth, ServiceCredentials};
use pronet_common::time::to_timestamp;
use pronet_common::upstream::{dependency_failed, lazy_channel, CallLimits};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::domain::limits;

/// Internal responses can be large (thousands of posts of up to 3,000 characters).
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

/// A member's network as the feed sees it.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub connections: HashSet<String>,
    pub followed_members: HashSet<String>,
    pub followed_hashtags: BTreeSet<String>,
}

/// gRPC clients of the three other services.
#[derive(Clone)]
pub struct CandidateSource {
    profiles: ProfileServiceClient<Authed>,
    posts: PostServiceClient<Authed>,
    engagement: EngagementServiceClient<Authed>,
}

fn profile_failed(s: Status) -> Status {
    dependency_failed("profile", s)
}
fn post_failed(s: Status) -> Status {
    dependency_failed("post", s)
}
fn engagement_failed(s: Status) -> Status {
    dependency_failed("engagement", s)
}

impl CandidateSource {
    pub fn connect(up: &Upstreams) -> Result<Self, String> {
        let auth = ServiceAuth(ServiceCredentials::new(up.auth.clone(), "feed"));
        let profiles = ProfileServiceClient::with_interceptor(
            lazy_channel(&up.profile_addr, up.limits)?,
            auth.clone(),
        )
        .max_decoding_message_size(MAX_INTERNAL_MESSAGE_BYTES);
        let posts = PostServiceClient::with_interceptor(
            lazy_channel(&up.post_addr, up.limits)?,
            auth.clone(),
        )
        .max_decoding_message_size(MAX_INTERNAL_MESSAGE_BYTES);
        let engagement = EngagementServiceClient::with_interceptor(
            lazy_channel(&up.engagement_addr, up.limits)?,
            auth,
        )
        .max_decoding_message_size(MAX_INTERNAL_MESSAGE_BYTES);
        Ok(Self {
            profiles,
            posts,
            engagement,
        })
    }

    /// The member's connections and follows. NOT_FOUND when the member has no profile.
    pub async fn network(&self, member_id: &str) -> Result<Network, Status> {
        let (connections, following) =
            tokio::try_join!(self.connections(member_id), self.following(member_id))?;
        let mut network = Network {
            connections,
            ..Default::default()
        };
        for f in following {
            match f.target {
                Some(prpb::following::Target::FolloweeId(id)) => {
                    network.followed_members.insert(id);
                }
                Some(prpb::following::Target::Hashtag(tag))
                    if network.followed_hashtags.len() < limits::MAX_HASHTAGS =>
                {
                    network.followed_hashtags.insert(tag);
                }
                _ => {}
            }
        }
        Ok(network)
    }

    async fn connections(&self, member_id: &str) -> Result<HashSet<String>, Status> {
        let mut client = self.profiles.clone();
        let mut out = HashSet::new();
        let mut page_token = String::new();
        loop {
            let resp = client
                .list_connections(prpb::ListConnectionsRequest {
                    member_id: member_id.to_owned(),
                    page_size: 1000,
                    page_token,
                })
                .await
                .map_err(member_or_failed)?
                .into_inner();
            out.extend(resp.connections.into_iter().map(|c| c.member_id));
            if resp.next_page_token.is_empty() || out.len() >= limits::MAX_AUTHORS {
                return Ok(out);
            }
            page_token = resp.next_page_token;
        }
    }

    async fn following(&self, member_id: &str) -> Result<Vec<prpb::Following>, Status> {
        let mut client = self.profiles.clone();
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let resp = client
                .list_following(prpb::ListFollowingRequest {
                    member_id: member_id.to_owned(),
                    page_size: 1000,
                    page_token,
                })
                .await
                .map_err(member_or_failed)?
                .into_inner();
            out.extend(resp.following);
            if resp.next_page_token.is_empty() || out.len() >= limits::MAX_AUTHORS {
                return Ok(out);
            }
            page_token = resp.next_page_token;
        }
    }

    /// Recent posts by `authors` or carrying `hashtags`, created at or after `since`.
    pub async fn recent_posts(
        &self,
        authors: Vec<String>,
        hashtags: Vec<String>,
        since: i64,
    ) -> Result<Vec<ppb::Post>, Status> {
        if authors.is_empty() && hashtags.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.posts.clone();
        let resp = client
            .list_recent_posts_by_authors(ppb::ListRecentPostsByAuthorsRequest {
                author_ids: authors,
                hashtags,
                since: Some(to_timestamp(since)),
                max_posts: limits::MAX_RECENT_POSTS,
                max_posts_per_author: limits::MAX_POSTS_PER_AUTHOR,
            })
            .await
            .map_err(post_failed)?;
        Ok(resp.into_inner().posts)
    }

    /// What `members` did since `since`, newest first.
    pub async fn recent_activity(
        &self,
        members: Vec<String>,
        since: i64,
    ) -> Result<Vec<epb::Activity>, Status> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.engagement.clone();
        let resp = client
            .list_recent_activity(epb::ListRecentActivityRequest {
                member_ids: members,
                since: Some(to_timestamp(since)),
                max_activities: limits::MAX_ACTIVITIES,
            })
            .await
            .map_err(engagement_failed)?;
        Ok(resp.into_inner().activities)
    }

    /// The posts that still exist among `ids`, in chunks fetched concurrently.
    pub async fn posts(&self, ids: Vec<String>) -> Result<Vec<ppb::Post>, Status> {
        let calls = ids.chunks(limits::BATCH_CHUNK).map(|chunk| {
            let mut client = self.posts.clone();
            let req = ppb::BatchGetPostsRequest {
                post_ids: chunk.to_vec(),
                allow_missing: true,
                viewer_id: String::new(),
            };
            async move { client.batch_get_posts(req).await.map_err(post_failed) }
        });
        let pages = try_join_all(calls).await?;
        Ok(pages
            .into_iter()
            .flat_map(|r| r.into_inner().posts)
            .collect())
    }

    /// Stats of `ids`, keyed by post id.
    pub async fn stats(&self, ids: Vec<String>) -> Result<HashMap<String, epb::PostStats>, Status> {
        let calls = ids.chunks(limits::BATCH_CHUNK).map(|chunk| {
            let mut client = self.engagement.clone();
            let req = epb::BatchGetPostStatsRequest {
                post_ids: chunk.to_vec(),
                viewer_id: String::new(),
            };
            async move {
                client
                    .batch_get_post_stats(req)
                    .await
                    .map_err(engagement_failed)
            }
        });
        let pages = try_join_all(calls).await?;
        Ok(pages
            .into_iter()
            .flat_map(|r| r.into_inner().stats)
            .map(|s| (s.post_id.clone(), s))
            .collect())
    }

    /// The members among `ids` that `viewer` blocked or was blocked by.
    pub async fn blocked(&self, viewer: &str, ids: Vec<String>) -> Result<HashSet<String>, Status> {
        let calls = ids.chunks(limits::BATCH_CHUNK).map(|chunk| {
            let mut client = self.profiles.clone();
            let req = prpb::BatchGetRelationshipsRequest {
                viewer_id: viewer.to_owned(),
                member_ids: chunk.to_vec(),
            };
            async move {
                client
                    .batch_get_relationships(req)
                    .await
                    .map_err(profile_failed)
            }
        });
        let pages = try_join_all(calls).await?;
        Ok(pages
            .into_iter()
            .flat_map(|r| r.into_inner().relationships)
            .filter(|r| r.blocked)
            .map(|r| r.member_id)
            .collect())
    }

    /// Display names of the members among `ids` that have a profile.
    pub async fn display_names(&self, ids: Vec<String>) -> Result<HashMap<String, String>, Status> {
        let calls = ids.chunks(limits::BATCH_CHUNK).map(|chunk| {
            let mut client = self.profiles.clone();
            let req = prpb::BatchGetProfilesRequest {
                member_ids: chunk.to_vec(),
                allow_missing: true,
            };
            async move { client.batch_get_profiles(req).await.map_err(profile_failed) }
        });
        let pages = try_join_all(calls).await?;
        Ok(pages
            .into_iter()
            .flat_map(|r| r.into_inner().profiles)
            .map(|p| (p.id, p.display_name))
            .collect())
    }
}

/// The profile service's NOT_FOUND for the viewer is ours too; anything else is a dependency
/// failure.
fn member_or_failed(s: Status) -> Status {
    if s.code() == Code::NotFound {
        Status::not_found("member not found")
    } else {
        profile_failed(s)
    }
}
