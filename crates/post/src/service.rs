//! The tonic adapter of the post service: decode and validate, call the store, encode.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pronet_common::error::invalid_field;
use pronet_common::ids::{new_id, parse_id};
use pronet_common::input::{check_count, parse_hashtag};
use pronet_common::pagination::{decode_time_cursor, encode_time_cursor, page_size};
use pronet_common::time::{from_timestamp, now_micros, to_timestamp};
use pronet_common::FieldViolations;
use pronet_proto::post::v1 as pb;
use pronet_proto::post::v1::post_service_server::PostService;
use tonic::{Request, Response, Status};

use crate::domain::{limits, Cursor, PostRecord, PostText, RecentPostsQuery, Visibility};
use crate::error::PostError;
use crate::store::PostStore;

/// The `pronet.post.v1.PostService` implementation.
#[derive(Clone)]
pub struct PostApi {
    store: Arc<dyn PostStore>,
}

impl PostApi {
    pub fn new(store: Arc<dyn PostStore>) -> Self {
        Self { store }
    }
}

fn post_to_pb(p: PostRecord) -> pb::Post {
    pb::Post {
        id: p.id,
        author_id: p.author_id,
        text: p.text,
        hashtags: p.hashtags,
        mentions: p.mentions,
        visibility: match p.visibility {
            Visibility::Public => pb::Visibility::Public,
            Visibility::Connections => pb::Visibility::Connections,
        } as i32,
        create_time: Some(to_timestamp(p.create_time)),
    }
}

fn parse_visibility(raw: i32) -> Result<Visibility, String> {
    match pb::Visibility::try_from(raw) {
        Ok(pb::Visibility::Public) => Ok(Visibility::Public),
        Ok(pb::Visibility::Connections) => Ok(Visibility::Connections),
        _ => Err("must be VISIBILITY_PUBLIC or VISIBILITY_CONNECTIONS".into()),
    }
}

fn post_cursor(token: &str) -> Result<Option<Cursor>, String> {
    Ok(decode_time_cursor(token)?.map(|(time, id)| Cursor { time, id }))
}

/// A non-negative count where 0 means "no limit".
fn optional_limit(raw: i32) -> Result<Option<usize>, String> {
    match usize::try_from(raw) {
        Err(_) => Err("must not be negative".into()),
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
    }
}

/// The values of `items` without repeats, first occurrence kept.
fn distinct(items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// The next-page token when a page came back full.
fn next_token(posts: &[PostRecord], limit: usize) -> String {
    match posts.last() {
        Some(last) if posts.len() == limit => encode_time_cursor(last.create_time, &last.id),
        _ => String::new(),
    }
}

/// A backfilled creation time: valid, and not in the future (a minute of clock skew allowed).
fn parse_backfill_time(ts: &prost_types::Timestamp, now: i64) -> Result<i64, String> {
    let t = from_timestamp(ts)?;
    if t > now + 60_000_000 {
        return Err("must not be in the future".into());
    }
    Ok(t)
}

#[tonic::async_trait]
impl PostService for PostApi {
    async fn create_post(
        &self,
        request: Request<pb::CreatePostRequest>,
    ) -> Result<Response<pb::CreatePostResponse>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let author_id = v.check("author_id", parse_id(&req.author_id));
        let text = v.check("text", PostText::parse(&req.text));
        let visibility = v.check("visibility", parse_visibility(req.visibility));
        let now = now_micros();
        let create_time = match &req.create_time {
            None => Some(now),
            Some(ts) => v.check("create_time", parse_backfill_time(ts, now)),
        };
        v.into_result()?;
        let (Some(author_id), Some(text), Some(visibility), Some(create_time)) =
            (author_id, text, visibility, create_time)
        else {
            return Err(Status::internal("internal error"));
        };
        // The author is not checked against profiles: members belong to the profile service,
        // and callers (the gateway, other services) vouch for the ids they pass.
        let post = PostRecord::new(new_id(), author_id, text, visibility, create_time);
        let created = self.store.create_post(post).await?;
        tracing::debug!(post_id = %created.id, author_id = %created.author_id, "post created");
        Ok(Response::new(pb::CreatePostResponse {
            post: Some(post_to_pb(created)),
        }))
    }

    async fn get_post(
        &self,
        request: Request<pb::GetPostRequest>,
    ) -> Result<Response<pb::GetPostResponse>, Status> {
        let id =
            parse_id(&request.into_inner().post_id).map_err(|e| invalid_field("post_id", e))?;
        let post = self
            .store
            .get_post(&id)
            .await?
            .ok_or(PostError::NotFound("post"))?;
        Ok(Response::new(pb::GetPostResponse {
            post: Some(post_to_pb(post)),
        }))
    }

    async fn batch_get_posts(
        &self,
        request: Request<pb::BatchGetPostsRequest>,
    ) -> Result<Response<pb::BatchGetPostsResponse>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "post_ids",
            check_count(req.post_ids.len(), limits::MAX_BATCH_GET),
        );
        for (i, id) in req.post_ids.iter().enumerate() {
            v.check(&format!("post_ids[{i}]"), parse_id(id));
        }
        v.into_result()?;
        let found: HashMap<String, PostRecord> = self
            .store
            .batch_get_posts(&req.post_ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut posts = Vec::with_capacity(req.post_ids.len());
        for id in &req.post_ids {
            // A repeated id gets the same post again.
            match found.get(id) {
                Some(p) => posts.push(post_to_pb(p.clone())),
                None if req.allow_missing => {}
                None => return Err(Status::not_found(format!("post {id} not found"))),
            }
        }
        Ok(Response::new(pb::BatchGetPostsResponse { posts }))
    }

    async fn list_posts_by_author(
        &self,
        request: Request<pb::ListPostsByAuthorRequest>,
    ) -> Result<Response<pb::ListPostsByAuthorResponse>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let author_id = v.check("author_id", parse_id(&req.author_id));
        let limit = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let after = v.check("page_token", post_cursor(&req.page_token));
        v.into_result()?;
        let (Some(author_id), Some(limit), Some(after)) = (author_id, limit, after) else {
            return Err(Status::internal("internal error"));
        };
        // No NOT_FOUND for an author without posts: the post service does not know members.
        let posts = self
            .store
            .list_posts_by_author(&author_id, after, limit)
            .await?;
        let next_page_token = next_token(&posts, limit);
        Ok(Response::new(pb::ListPostsByAuthorResponse {
            posts: posts.into_iter().map(post_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn list_recent_posts_by_authors(
        &self,
        request: Request<pb::ListRecentPostsByAuthorsRequest>,
    ) -> Result<Response<pb::ListRecentPostsByAuthorsResponse>, Status> {
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        v.check(
            "author_ids",
            check_count(req.author_ids.len(), limits::MAX_RECENT_AUTHORS),
        );
        for (i, id) in req.author_ids.iter().enumerate() {
            v.check(&format!("author_ids[{i}]"), parse_id(id));
        }
        v.check(
            "hashtags",
            check_count(req.hashtags.len(), limits::MAX_RECENT_HASHTAGS),
        );
        let hashtags: Vec<String> = req
            .hashtags
            .iter()
            .enumerate()
            .filter_map(|(i, tag)| v.check(&format!("hashtags[{i}]"), parse_hashtag(tag)))
            .collect();
        let since = match &req.since {
            Some(ts) => v.check("since", from_timestamp(ts)),
            None => {
                v.add("since", "is required");
                None
            }
        };
        let max_posts = v.check(
            "max_posts",
            page_size(
                req.max_posts,
                limits::DEFAULT_RECENT_POSTS,
                limits::MAX_RECENT_POSTS,
            ),
        );
        let max_posts_per_author = v.check(
            "max_posts_per_author",
            optional_limit(req.max_posts_per_author),
        );
        v.into_result()?;
        let (Some(since), Some(max_posts), Some(max_posts_per_author)) =
            (since, max_posts, max_posts_per_author)
        else {
            return Err(Status::internal("internal error"));
        };
        if req.author_ids.is_empty() && hashtags.is_empty() {
            return Ok(Response::new(pb::ListRecentPostsByAuthorsResponse {
                posts: Vec::new(),
            }));
        }
        let query = RecentPostsQuery {
            author_ids: distinct(req.author_ids),
            hashtags: distinct(hashtags),
            since,
            max_posts,
            max_posts_per_author,
        };
        let posts = self.store.list_recent_posts(&query).await?;
        Ok(Response::new(pb::ListRecentPostsByAuthorsResponse {
            posts: posts.into_iter().map(post_to_pb).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;
    use tonic::Code;

    use super::*;
    use crate::store::sqlite::SqlitePostStore;

    async fn api(dir: &tempfile::TempDir) -> PostApi {
        let store = SqlitePostStore::open(&dir.path().join("post.db"))
            .await
            .unwrap();
        PostApi::new(Arc::new(store))
    }

    async fn create(api: &PostApi, author: &str, text: &str) -> pb::Post {
        api.create_post(Request::new(pb::CreatePostRequest {
            author_id: author.into(),
            text: text.into(),
            visibility: pb::Visibility::Public as i32,
            create_time: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap()
    }

    #[tokio::test]
    async fn creates_a_post_with_its_hashtags_and_mentions() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let post = create(&api, "ada", "Hi @Bob! #MentalHealth matters, mail a@b.com").await;
        assert_eq!(post.author_id, "ada");
        assert_eq!(post.hashtags, ["mentalhealth"]);
        assert_eq!(post.mentions, ["bob"]);
        assert_eq!(post.visibility, pb::Visibility::Public as i32);
        assert!(post.create_time.is_some());
        let got = api
            .get_post(Request::new(pb::GetPostRequest {
                post_id: post.id.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .post
            .unwrap();
        assert_eq!(got, post);
    }

    #[tokio::test]
    async fn rejects_every_invalid_create_field_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let err = api
            .create_post(Request::new(pb::CreatePostRequest {
                author_id: "not an id".into(),
                text: String::new(),
                visibility: pb::Visibility::Unspecified as i32,
                create_time: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        for field in ["author_id:", "text:", "visibility:"] {
            assert!(err.message().contains(field), "{}", err.message());
        }
        let err = api
            .create_post(Request::new(pb::CreatePostRequest {
                author_id: "ada".into(),
                text: "x".repeat(3001),
                visibility: 7,
                create_time: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("text:"));
        assert!(err.message().contains("visibility:"));
    }

    #[tokio::test]
    async fn unknown_post_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let err = api
            .get_post(Request::new(pb::GetPostRequest {
                post_id: "missing".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.message(), "post not found");
        let err = api
            .get_post(Request::new(pb::GetPostRequest {
                post_id: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn batch_get_keeps_request_order_and_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let a = create(&api, "ada", "first").await;
        let b = create(&api, "bob", "second").await;
        let batch = |ids: Vec<String>, allow_missing| {
            let api = api.clone();
            async move {
                api.batch_get_posts(Request::new(pb::BatchGetPostsRequest {
                    post_ids: ids,
                    allow_missing,
                }))
                .await
            }
        };
        let got = batch(vec![b.id.clone(), a.id.clone(), b.id.clone()], false)
            .await
            .unwrap()
            .into_inner()
            .posts;
        let got: Vec<&str> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(got, [b.id.as_str(), a.id.as_str(), b.id.as_str()]);

        let err = batch(vec![a.id.clone(), "missing".into()], false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.message(), "post missing not found");

        let got = batch(vec!["missing".into(), a.id.clone()], true)
            .await
            .unwrap()
            .into_inner()
            .posts;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, a.id);

        let err = batch(vec!["ok".into(), "b a d".into(), String::new()], false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("post_ids[1]"));
        assert!(err.message().contains("post_ids[2]"));
        let err = batch(vec!["x".into(); 1001], true).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn lists_an_authors_posts_page_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        for i in 0..5 {
            create(&api, "ada", &format!("post {i}")).await;
        }
        let list = |token: String, page_size| {
            let api = api.clone();
            async move {
                api.list_posts_by_author(Request::new(pb::ListPostsByAuthorRequest {
                    author_id: "ada".into(),
                    page_size,
                    page_token: token,
                }))
                .await
            }
        };
        let first = list(String::new(), 3).await.unwrap().into_inner();
        assert_eq!(first.posts.len(), 3);
        assert_eq!(first.posts[0].text, "post 4");
        assert!(!first.next_page_token.is_empty());
        let second = list(first.next_page_token, 3).await.unwrap().into_inner();
        let texts: Vec<&str> = second.posts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["post 1", "post 0"]);
        assert!(second.next_page_token.is_empty());

        let err = list("garbage".into(), -1).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("page_size"));
        assert!(err.message().contains("page_token"));

        let none = api
            .list_posts_by_author(Request::new(pb::ListPostsByAuthorRequest {
                author_id: "nobody".into(),
                page_size: 0,
                page_token: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(none.posts.is_empty());
        assert!(none.next_page_token.is_empty());
    }

    fn recent_request(
        author_ids: &[&str],
        hashtags: &[&str],
    ) -> pb::ListRecentPostsByAuthorsRequest {
        pb::ListRecentPostsByAuthorsRequest {
            author_ids: author_ids.iter().map(|s| s.to_string()).collect(),
            hashtags: hashtags.iter().map(|s| s.to_string()).collect(),
            since: Some(Timestamp::default()),
            max_posts: 0,
            max_posts_per_author: 0,
        }
    }

    #[tokio::test]
    async fn recent_posts_by_authors_and_hashtags() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let a1 = create(&api, "ada", "one").await;
        let a2 = create(&api, "ada", "two").await;
        let c1 = create(&api, "cat", "about #Rust").await;
        create(&api, "dan", "unrelated").await;
        let mut req = recent_request(&["ada", "ada"], &["#RUST", "rust"]);
        req.max_posts_per_author = 1;
        let posts = api
            .list_recent_posts_by_authors(Request::new(req))
            .await
            .unwrap()
            .into_inner()
            .posts;
        let got: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(got, [c1.id.as_str(), a2.id.as_str()]);
        assert_ne!(a1.id, a2.id);

        let empty = api
            .list_recent_posts_by_authors(Request::new(recent_request(&[], &[])))
            .await
            .unwrap()
            .into_inner();
        assert!(empty.posts.is_empty());
    }

    #[tokio::test]
    async fn rejects_every_invalid_recent_field_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let mut req = recent_request(&["ok", "not ok"], &["rust", "#2024"]);
        req.since = None;
        req.max_posts = -1;
        req.max_posts_per_author = -1;
        let err = api
            .list_recent_posts_by_authors(Request::new(req))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        for field in [
            "author_ids[1]:",
            "hashtags[1]:",
            "since:",
            "max_posts:",
            "max_posts_per_author:",
        ] {
            assert!(err.message().contains(field), "{}", err.message());
        }
        let mut req = recent_request(&["ok"], &[]);
        req.since = Some(Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        let err = api
            .list_recent_posts_by_authors(Request::new(req))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("since:"));
    }

    #[tokio::test]
    async fn backfilled_posts_keep_their_time_but_not_a_future_one() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&dir).await;
        let past = prost_types::Timestamp {
            seconds: 1_600_000_000,
            nanos: 0,
        };
        let post = api
            .create_post(Request::new(pb::CreatePostRequest {
                author_id: "ada".into(),
                text: "from the archive".into(),
                visibility: pb::Visibility::Public as i32,
                create_time: Some(past),
            }))
            .await
            .unwrap()
            .into_inner()
            .post
            .unwrap();
        assert_eq!(post.create_time, Some(past));
        let err = api
            .create_post(Request::new(pb::CreatePostRequest {
                author_id: "ada".into(),
                text: "from the future".into(),
                visibility: pb::Visibility::Public as i32,
                create_time: Some(prost_types::Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                }),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("create_time:"));
    }
}
