//! The tonic adapter of the post service: decode and validate, authorize, call the store, keep
//! what the viewer may see, encode.

use std::collections::HashMap;
use std::sync::Arc;

use pronet_common::auth::{caller, require_self, Caller};
use pronet_common::ids::{distinct, in_request_order, new_id, parse_id};
use pronet_common::input::{check_count, parse_hashtag};
use pronet_common::pagination::{decode_time_cursor, encode_time_cursor, page_size};
use pronet_common::time::{from_timestamp, now_micros, to_timestamp};
use pronet_common::FieldViolations;
use pronet_proto::post::v1 as pb;
use pronet_proto::post::v1::post_service_server::PostService;
use tonic::{Request, Response, Status};

use crate::domain::{
    is_visible, limits, rank_trending, resolve_mentions, Cursor, IdempotencyKey, Mention, PostEdit,
    PostRecord, PostText, RecentPostsQuery, Relation, TimeRange, TrendingHashtag, Visibility,
};
use crate::engagement::Engagement;
use crate::error::PostError;
use crate::profiles::{Handles, Members, Relationships};
use crate::store::PostStore;

mod convert;
use convert::*;

/// The `pronet.post.v1.PostService` implementation.
#[derive(Clone)]
pub struct PostApi {
    store: Arc<dyn PostStore>,
    relationships: Arc<dyn Relationships>,
    handles: Arc<dyn Handles>,
    members: Arc<dyn Members>,
    engagement: Arc<dyn Engagement>,
}

impl PostApi {
    pub fn new(
        store: Arc<dyn PostStore>,
        relationships: Arc<dyn Relationships>,
        handles: Arc<dyn Handles>,
        members: Arc<dyn Members>,
        engagement: Arc<dyn Engagement>,
    ) -> Self {
        Self {
            store,
            relationships,
            handles,
            members,
            engagement,
        }
    }

    /// How `viewer` relates to each author of `posts` other than themself; the profile
    /// service is asked only when there is such an author.
    async fn relations_to_authors(
        &self,
        viewer: &str,
        posts: &[PostRecord],
    ) -> Result<HashMap<String, Relation>, PostError> {
        let others = distinct(
            posts
                .iter()
                .filter(|p| p.author_id != viewer)
                .map(|p| p.author_id.clone()),
        );
        if others.is_empty() {
            return Ok(HashMap::new());
        }
        self.relationships.relationships(viewer, &others).await
    }

    /// The posts `viewer` may see, in their order; all of them without a viewer.
    async fn visible_posts(
        &self,
        viewer: Option<&str>,
        posts: Vec<PostRecord>,
    ) -> Result<Vec<PostRecord>, PostError> {
        let Some(viewer) = viewer else {
            return Ok(posts);
        };
        let relations = self.relations_to_authors(viewer, &posts).await?;
        Ok(posts
            .into_iter()
            .filter(|p| {
                let relation = relations.get(&p.author_id).copied().unwrap_or_default();
                is_visible(&p.author_id, viewer, p.visibility, relation)
            })
            .collect())
    }

    /// The post if it exists, is not deleted and `viewer` may see it.
    async fn visible_post(
        &self,
        viewer: Option<&str>,
        id: &str,
    ) -> Result<Option<PostRecord>, PostError> {
        let found = self.store.get_post(id).await?.into_iter().collect();
        Ok(self.visible_posts(viewer, found).await?.pop())
    }

    /// The visibilities of `author_id`'s posts that `viewer` may see: all without a viewer,
    /// none when the two blocked each other.
    async fn visible_kinds(
        &self,
        viewer: Option<&str>,
        author_id: &str,
    ) -> Result<Vec<Visibility>, PostError> {
        let Some(viewer) = viewer else {
            return Ok(Visibility::ALL.to_vec());
        };
        let relation = if viewer == author_id {
            Relation::default()
        } else {
            let author = [author_id.to_owned()];
            let relations = self.relationships.relationships(viewer, &author).await?;
            relations.get(author_id).copied().unwrap_or_default()
        };
        Ok(Visibility::ALL
            .into_iter()
            .filter(|&visibility| is_visible(author_id, viewer, visibility, relation))
            .collect())
    }

    /// `posts` encoded, each reshare with its original when `viewer` may see it (one level:
    /// an original is never a reshare itself).
    async fn encode(
        &self,
        viewer: Option<&str>,
        posts: Vec<PostRecord>,
    ) -> Result<Vec<pb::Post>, PostError> {
        let original_ids = distinct(posts.iter().filter_map(|p| p.reshare_of.clone()));
        let originals: HashMap<String, PostRecord> = if original_ids.is_empty() {
            HashMap::new()
        } else {
            let found = self.store.batch_get_posts(&original_ids).await?;
            self.visible_posts(viewer, found)
                .await?
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect()
        };
        Ok(posts
            .into_iter()
            .map(|p| {
                let original = p.reshare_of.as_ref().and_then(|id| originals.get(id));
                let reshared_post = original.map(|o| Box::new(post_to_pb(o.clone())));
                pb::Post {
                    reshared_post,
                    ..post_to_pb(p)
                }
            })
            .collect())
    }

    /// The mentions of `text` that name members: their lowercase handles and the members.
    /// Fails (UNAVAILABLE) rather than dropping mentions when the profile service is down.
    async fn resolve_mentions(
        &self,
        text: &PostText,
    ) -> Result<(Vec<String>, Vec<Mention>), PostError> {
        let handles = text.mentions();
        if handles.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let owners = self.handles.lookup_handles(&handles).await?;
        Ok(resolve_mentions(&handles, &owners))
    }

    /// The root original a reshare by `author_id` of `id` points at. NOT_FOUND when the named
    /// post (or its root) is missing, deleted or invisible to the author; FAILED_PRECONDITION
    /// when a connections-only post would be reshared publicly.
    async fn reshare_root(
        &self,
        author_id: &str,
        id: &str,
        visibility: Visibility,
    ) -> Result<String, Status> {
        let not_found = || Status::from(PostError::NotFound("post"));
        let named = self
            .visible_post(Some(author_id), id)
            .await?
            .ok_or_else(not_found)?;
        let root = match &named.reshare_of {
            None => named.clone(),
            Some(root_id) => self
                .visible_post(Some(author_id), root_id)
                .await?
                .ok_or_else(not_found)?,
        };
        let connections_only = [&named, &root]
            .iter()
            .any(|p| p.visibility == Visibility::Connections);
        if connections_only && visibility == Visibility::Public {
            return Err(Status::failed_precondition(
                "a connections-only post cannot be reshared publicly",
            ));
        }
        Ok(root.id)
    }

    /// Engagement of each post id in `pairs` summed per hashtag. Posts are distinct before the
    /// engagement service is asked.
    async fn engagement_by_hashtag(
        &self,
        pairs: &[(String, String)],
    ) -> Result<HashMap<String, i64>, PostError> {
        let ids = distinct(pairs.iter().map(|(_, id)| id.clone()));
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let engagement = self.engagement.engagement(&ids).await?;
        let mut sums: HashMap<String, i64> = HashMap::new();
        for (hashtag, id) in pairs {
            *sums.entry(hashtag.clone()).or_default() += engagement.get(id).copied().unwrap_or(0);
        }
        Ok(sums)
    }
}

#[tonic::async_trait]
impl PostService for PostApi {
    async fn create_post(
        &self,
        request: Request<pb::CreatePostRequest>,
    ) -> Result<Response<pb::CreatePostResponse>, Status> {
        let caller = caller(&request)?;
        let CreatePost {
            author_id,
            reshare_of,
            text,
            visibility,
            create_time,
            backfilled,
            request_id,
        } = parse_create_post(request.get_ref(), now_micros())?;
        // Members post as themselves, now; services (imports, the demo, the seeder) may post
        // for anyone and backfill. The author is not checked against profiles: members belong
        // to the profile service, and services vouch for the ids they pass.
        if let Caller::Member(_) = caller {
            require_self(&caller, "author_id", &author_id)?;
            if backfilled {
                return Err(Status::permission_denied(
                    "create_time can only be set by services",
                ));
            }
        }
        // A reshare of a reshare reshares its root: originals are never reshares.
        let root = match &reshare_of {
            Some(id) => Some(self.reshare_root(&author_id, id, visibility).await?),
            None => None,
        };
        let (mentions, mentioned_members) = self.resolve_mentions(&text).await?;
        let key = request_id.map(|id| IdempotencyKey::new(&caller, id));
        let post = PostRecord {
            mentions,
            mentioned_members,
            reshare_of: root,
            ..PostRecord::new(new_id(), author_id, text, visibility, create_time)
        };
        let created = self.store.create_post(post, key.as_ref()).await?;
        let post = created.post;
        if created.replayed {
            tracing::debug!(post_id = %post.id, "create retried: first result returned");
        } else {
            tracing::debug!(post_id = %post.id, author_id = %post.author_id, "post created");
            if let Some(original) = &post.reshare_of {
                // The reshare stands on its own: a lost share count is logged, not undone.
                if let Err(err) = self
                    .engagement
                    .record_share(&post.author_id, original)
                    .await
                {
                    tracing::warn!(post_id = %post.id, original, %err, "share not recorded");
                }
            }
        }
        let author = post.author_id.clone();
        let post = self.encode(Some(&author), vec![post]).await?.pop();
        Ok(Response::new(pb::CreatePostResponse { post }))
    }

    async fn import_posts(
        &self,
        request: Request<pb::ImportPostsRequest>,
    ) -> Result<Response<pb::ImportPostsResponse>, Status> {
        // The auth layer admits only services here; this keeps a miswired server from letting
        // members post in anyone's name at any time.
        caller(&request)?.require_service()?;
        let posts = parse_imported_posts(request.into_inner().posts, now_micros())?;
        if posts.is_empty() {
            return Ok(Response::new(pb::ImportPostsResponse::default()));
        }
        // Unlike CreatePost, an import names its authors' profiles: a batch from elsewhere is
        // where ids go wrong. One call for the whole batch; an unknown author is the request's
        // fault (INVALID_ARGUMENT naming the field), and nothing is written.
        let authors = distinct(posts.iter().map(|(_, p)| p.author_id.clone()));
        let existing = self.members.existing_members(&authors).await?;
        let mut v = FieldViolations::new();
        for (i, post) in &posts {
            if !existing.contains(&post.author_id) {
                v.add(format!("posts[{i}].author_id"), "names no member");
            }
        }
        v.into_result()?;
        let posts: Vec<PostRecord> = posts.into_iter().map(|(_, p)| p).collect();
        let (imported, skipped) = self.store.import_posts(posts).await?;
        tracing::debug!(imported, skipped, "posts imported");
        Ok(Response::new(pb::ImportPostsResponse {
            imported: i64::try_from(imported).unwrap_or(i64::MAX),
            skipped: i64::try_from(skipped).unwrap_or(i64::MAX),
        }))
    }

    async fn get_post(
        &self,
        request: Request<pb::GetPostRequest>,
    ) -> Result<Response<pb::GetPostResponse>, Status> {
        let caller = caller(&request)?;
        let GetPost { id, viewer_id } = parse_get_post(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        // A post the viewer may not see is answered exactly as a missing one.
        let post = self
            .visible_post(viewer.as_deref(), &id)
            .await?
            .ok_or(PostError::NotFound("post"))?;
        let post = self.encode(viewer.as_deref(), vec![post]).await?.pop();
        Ok(Response::new(pb::GetPostResponse { post }))
    }

    async fn batch_get_posts(
        &self,
        request: Request<pb::BatchGetPostsRequest>,
    ) -> Result<Response<pb::BatchGetPostsResponse>, Status> {
        let caller = caller(&request)?;
        let req = parse_batch_get_posts(request.into_inner())?;
        let viewer = caller.view_for(&req.viewer_id)?;
        let found = self.store.batch_get_posts(&req.ids).await?;
        // Posts the viewer may not see are dropped here, so they answer as missing ones do.
        let visible = self.visible_posts(viewer.as_deref(), found).await?;
        let found = self.encode(viewer.as_deref(), visible).await?;
        let posts = in_request_order(&req.ids, found, |p| &p.id, req.allow_missing, "post")?;
        Ok(Response::new(pb::BatchGetPostsResponse { posts }))
    }

    async fn list_posts_by_author(
        &self,
        request: Request<pb::ListPostsByAuthorRequest>,
    ) -> Result<Response<pb::ListPostsByAuthorResponse>, Status> {
        let caller = caller(&request)?;
        let ListPostsByAuthor {
            author_id,
            viewer_id,
            range,
            after,
            limit,
        } = parse_list_posts_by_author(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        // No NOT_FOUND for an author without posts: the post service does not know members.
        // One author, one relation: the store keeps only the visibilities the viewer may see,
        // so pages stay full (and a blocked author's list is empty).
        let visibilities = self.visible_kinds(viewer.as_deref(), &author_id).await?;
        let posts = self
            .store
            .list_posts_by_author(&author_id, &visibilities, range, after, limit)
            .await?;
        let next_page_token = next_token(&posts, limit);
        Ok(Response::new(pb::ListPostsByAuthorResponse {
            posts: self.encode(viewer.as_deref(), posts).await?,
            next_page_token,
        }))
    }

    async fn list_recent_posts_by_authors(
        &self,
        request: Request<pb::ListRecentPostsByAuthorsRequest>,
    ) -> Result<Response<pb::ListRecentPostsByAuthorsResponse>, Status> {
        // The auth layer admits only services here; this keeps a miswired server from
        // handing members every post unfiltered.
        caller(&request)?.require_service()?;
        let query = parse_list_recent_posts_by_authors(request.into_inner())?;
        if query.author_ids.is_empty() && query.hashtags.is_empty() {
            return Ok(Response::new(pb::ListRecentPostsByAuthorsResponse {
                posts: Vec::new(),
            }));
        }
        let posts = self.store.list_recent_posts(&query).await?;
        Ok(Response::new(pb::ListRecentPostsByAuthorsResponse {
            posts: self.encode(None, posts).await?,
        }))
    }

    async fn update_post(
        &self,
        request: Request<pb::UpdatePostRequest>,
    ) -> Result<Response<pb::UpdatePostResponse>, Status> {
        let caller = caller(&request)?;
        let (id, text) = parse_update_post(request.get_ref())?;
        let member = caller.member()?;
        // Someone else's post: PERMISSION_DENIED if they may see it, else as missing.
        let post = self
            .visible_post(Some(member), &id)
            .await?
            .ok_or(PostError::NotFound("post"))?;
        if post.author_id != member {
            return Err(Status::permission_denied("only the author can edit a post"));
        }
        if post.reshare_of.is_none() && text.as_str().trim().is_empty() {
            return Err(pronet_common::error::invalid_field(
                "post.text",
                "must not be empty",
            ));
        }
        let (mentions, mentioned_members) = self.resolve_mentions(&text).await?;
        let edit = PostEdit {
            hashtags: text.hashtags(),
            text: text.into_string(),
            mentions,
            mentioned_members,
            update_time: now_micros(),
        };
        // Deleted meanwhile: as missing.
        let post = self
            .store
            .update_post(&id, &edit)
            .await?
            .ok_or(PostError::NotFound("post"))?;
        tracing::debug!(post_id = %post.id, "post edited");
        let post = self.encode(Some(member), vec![post]).await?.pop();
        Ok(Response::new(pb::UpdatePostResponse { post }))
    }

    async fn delete_post(
        &self,
        request: Request<pb::DeletePostRequest>,
    ) -> Result<Response<pb::DeletePostResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_delete_post(request.get_ref())?;
        let member = caller.member()?;
        // Someone else's post: PERMISSION_DENIED if they may see it, else as missing.
        let post = self
            .visible_post(Some(member), &id)
            .await?
            .ok_or(PostError::NotFound("post"))?;
        if post.author_id != member {
            return Err(Status::permission_denied(
                "only the author can delete a post",
            ));
        }
        // Deleted by a racing call: as missing, like any second delete.
        if !self.store.delete_post(&id, now_micros()).await? {
            return Err(PostError::NotFound("post").into());
        }
        tracing::debug!(post_id = %id, "post deleted");
        Ok(Response::new(pb::DeletePostResponse {}))
    }

    async fn list_posts_by_hashtag(
        &self,
        request: Request<pb::ListPostsByHashtagRequest>,
    ) -> Result<Response<pb::ListPostsByHashtagResponse>, Status> {
        let caller = caller(&request)?;
        let ListPostsByHashtag {
            hashtag,
            viewer_id,
            mut after,
            limit,
        } = parse_list_posts_by_hashtag(request.into_inner())?;
        let viewer = caller.view_for(&viewer_id)?;
        // Many authors, so visibility is checked after reading: pages of the index are read
        // until one page of visible posts is full, a bounded number of times. The token is the
        // position of the last post read, so hidden posts are not read again.
        let mut posts = Vec::with_capacity(limit);
        let mut next_page_token = String::new();
        for _ in 0..limits::MAX_HASHTAG_SCANS {
            let want = limit - posts.len();
            let page = self
                .store
                .list_posts_by_hashtag(&hashtag, after.clone(), want)
                .await?;
            let full = page.len() == want;
            let last = page.last().map(|p| Cursor {
                time: p.create_time,
                id: p.id.clone(),
            });
            posts.extend(self.visible_posts(viewer.as_deref(), page).await?);
            next_page_token = match (&last, full) {
                (Some(last), true) => encode_time_cursor(last.time, &last.id),
                _ => String::new(),
            };
            if !full || posts.len() == limit {
                break;
            }
            after = last;
        }
        Ok(Response::new(pb::ListPostsByHashtagResponse {
            posts: self.encode(viewer.as_deref(), posts).await?,
            next_page_token,
        }))
    }

    async fn list_trending_hashtags(
        &self,
        request: Request<pb::ListTrendingHashtagsRequest>,
    ) -> Result<Response<pb::ListTrendingHashtagsResponse>, Status> {
        caller(&request)?;
        let (window, limit) = parse_list_trending_hashtags(request.get_ref())?;
        let now = now_micros();
        let (start, previous_start) = (now - window, now - 2 * window);
        let current = self.store.count_hashtag_posts(start, now).await?;
        let previous: HashMap<String, i64> = self
            .store
            .count_hashtag_posts(previous_start, start)
            .await?
            .into_iter()
            .collect();
        // Engagement is counted for the busiest hashtags only, over a bounded number of posts.
        let mut busiest = current.clone();
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let busiest: Vec<String> = busiest
            .into_iter()
            .take(limits::MAX_TRENDING_ENGAGED_HASHTAGS)
            .map(|(tag, _)| tag)
            .collect();
        let mut engagement = [HashMap::new(), HashMap::new()];
        for (sums, (since, until)) in engagement
            .iter_mut()
            .zip([(start, now), (previous_start, start)])
        {
            let pairs = self
                .store
                .hashtag_posts(&busiest, since, until, limits::MAX_TRENDING_ENGAGED_POSTS)
                .await?;
            *sums = self.engagement_by_hashtag(&pairs).await?;
        }
        let [engagement, previous_engagement] = engagement;
        let mut tags: Vec<TrendingHashtag> = current
            .into_iter()
            .map(|(tag, posts)| {
                let now = (posts, engagement.get(&tag).copied().unwrap_or(0));
                let before = (
                    previous.get(&tag).copied().unwrap_or(0),
                    previous_engagement.get(&tag).copied().unwrap_or(0),
                );
                TrendingHashtag::new(tag, now, before)
            })
            .collect();
        rank_trending(&mut tags);
        tags.truncate(limit);
        Ok(Response::new(pb::ListTrendingHashtagsResponse {
            hashtags: tags
                .into_iter()
                .map(|t| pb::TrendingHashtag {
                    hashtag: t.hashtag,
                    posts: t.posts,
                    previous_posts: t.previous_posts,
                    engagement: t.engagement,
                    previous_engagement: t.previous_engagement,
                    growth: t.growth,
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests;
