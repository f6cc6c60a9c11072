//! What the post handlers parse requests into and convert results back from: field parsers,
//! page tokens, and the records as protobuf.

use super::*;

/// A post without its original (see [`PostApi::encode`]).
pub(super) fn post_to_pb(p: PostRecord) -> pb::Post {
    pb::Post {
        edited: p.edited(),
        update_time: p.update_time.map(to_timestamp),
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
        reshare_of: p.reshare_of.unwrap_or_default(),
        reshared_post: None,
        mentioned_members: p
            .mentioned_members
            .into_iter()
            .map(|m| pb::Mention {
                handle: m.handle,
                member_id: m.member_id,
            })
            .collect(),
    }
}

pub(super) fn parse_visibility(raw: i32) -> Result<Visibility, String> {
    match pb::Visibility::try_from(raw) {
        Ok(pb::Visibility::Public) => Ok(Visibility::Public),
        Ok(pb::Visibility::Connections) => Ok(Visibility::Connections),
        _ => Err("must be VISIBILITY_PUBLIC or VISIBILITY_CONNECTIONS".into()),
    }
}

pub(super) fn post_cursor(token: &str) -> Result<Option<Cursor>, String> {
    Ok(decode_time_cursor(token)?.map(|(time, id)| Cursor { time, id }))
}

/// A non-negative count where 0 means "no limit".
pub(super) fn optional_limit(raw: i32) -> Result<Option<usize>, String> {
    match usize::try_from(raw) {
        Err(_) => Err("must not be negative".into()),
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
    }
}

/// The next-page token when a page came back full.
pub(super) fn next_token(posts: &[PostRecord], limit: usize) -> String {
    match posts.last() {
        Some(last) if posts.len() == limit => encode_time_cursor(last.create_time, &last.id),
        _ => String::new(),
    }
}

/// A backfilled creation time: valid, and not in the future (a minute of clock skew allowed).
pub(super) fn parse_backfill_time(ts: &prost_types::Timestamp, now: i64) -> Result<i64, String> {
    let t = from_timestamp(ts)?;
    if t > now + 60_000_000 {
        return Err("must not be in the future".into());
    }
    Ok(t)
}

/// An update mask of a post: empty or exactly `text`.
pub(super) fn check_update_mask(v: &mut FieldViolations, mask: Option<&prost_types::FieldMask>) {
    for (i, path) in mask.map_or(&[][..], |m| &m.paths[..]).iter().enumerate() {
        if path != "text" {
            v.add(
                format!("update_mask.paths[{i}]"),
                "only \"text\" can be updated",
            );
        }
    }
}

/// A trending window in microseconds: positive, at most 90 days; unset means 7 days.
pub(super) fn parse_window(window: Option<&prost_types::Duration>) -> Result<i64, String> {
    let Some(d) = window else {
        return Ok(limits::DEFAULT_TRENDING_WINDOW_MICROS);
    };
    if !(-999_999_999..=999_999_999).contains(&d.nanos) {
        return Err("is not a valid duration".into());
    }
    let micros = d
        .seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(d.nanos / 1000)))
        .ok_or("is not a valid duration")?;
    if micros <= 0 {
        return Err("must be positive".into());
    }
    if micros > limits::MAX_TRENDING_WINDOW_MICROS {
        return Err("must be at most 90 days".into());
    }
    Ok(micros)
}

/// Decodes and checks the posts of an import; each keeps its index in the request, for field
/// paths. Hashtags are extracted as for a created post; mentions are left unresolved.
pub(super) fn parse_imported_posts(
    raw: Vec<pb::ImportedPost>,
    now: i64,
) -> Result<Vec<(usize, PostRecord)>, Status> {
    // Refused before the posts are looked at: their violations would say nothing more.
    if let Err(why) = check_count(raw.len(), limits::MAX_IMPORT_POSTS) {
        return Err(pronet_common::error::invalid_field("posts", why));
    }
    let mut v = FieldViolations::new();
    let mut posts = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("posts[{i}].{name}");
        let id = v.check(&field("id"), parse_id(&p.id));
        let author_id = v.check(&field("author_id"), parse_id(&p.author_id));
        let text = v.check(&field("text"), PostText::parse(&p.text));
        let visibility = v.check(&field("visibility"), parse_visibility(p.visibility));
        let create_time = match &p.create_time {
            Some(ts) => v.check(&field("create_time"), parse_backfill_time(ts, now)),
            None => {
                v.add(field("create_time"), "is required");
                None
            }
        };
        if let (Some(id), Some(author_id), Some(text), Some(visibility), Some(create_time)) =
            (id, author_id, text, visibility, create_time)
        {
            let post = PostRecord {
                mentions: Vec::new(),
                ..PostRecord::new(id, author_id, text, visibility, create_time)
            };
            posts.push((i, post));
        }
    }
    v.into_result()?;
    Ok(posts)
}

/// CreatePost, parsed. A member's call has no `create_time`: [`CreatePost::backfilled`] says
/// whether one was given.
pub(super) struct CreatePost {
    pub author_id: String,
    pub reshare_of: Option<String>,
    pub text: PostText,
    pub visibility: Visibility,
    pub create_time: i64,
    pub backfilled: bool,
    pub request_id: Option<String>,
}

pub(super) fn parse_create_post(
    req: &pb::CreatePostRequest,
    now: i64,
) -> Result<CreatePost, FieldViolations> {
    let mut v = FieldViolations::new();
    let author_id = v.check("author_id", parse_id(&req.author_id));
    let reshare_of = v.optional("reshare_of", &req.reshare_of, parse_id);
    // A reshare's commentary may be empty; a post needs text.
    let text = if req.reshare_of.is_empty() {
        v.check("text", PostText::parse(&req.text))
    } else {
        v.check("text", PostText::parse_reshare(&req.text))
    };
    let visibility = v.check("visibility", parse_visibility(req.visibility));
    let create_time = match &req.create_time {
        None => Some(now),
        Some(ts) => v.check("create_time", parse_backfill_time(ts, now)),
    };
    let request_id = v.optional("request_id", &req.request_id, parse_id);
    let (author_id, text, visibility, create_time) =
        v.finish((author_id, text, visibility, create_time))?;
    Ok(CreatePost {
        author_id,
        reshare_of,
        text,
        visibility,
        create_time,
        backfilled: req.create_time.is_some(),
        request_id,
    })
}

/// A read of one post: its id, and the viewer a service reads for (empty: the caller).
pub(super) struct GetPost {
    pub id: String,
    pub viewer_id: String,
}

pub(super) fn parse_get_post(req: pb::GetPostRequest) -> Result<GetPost, FieldViolations> {
    let mut v = FieldViolations::new();
    let id = v.check("post_id", parse_id(&req.post_id));
    v.optional("viewer_id", &req.viewer_id, parse_id);
    let id = v.finish(id)?;
    Ok(GetPost {
        id,
        viewer_id: req.viewer_id,
    })
}

pub(super) struct BatchGetPosts {
    pub ids: Vec<String>,
    pub viewer_id: String,
    pub allow_missing: bool,
}

pub(super) fn parse_batch_get_posts(
    req: pb::BatchGetPostsRequest,
) -> Result<BatchGetPosts, FieldViolations> {
    let mut v = FieldViolations::new();
    v.check(
        "post_ids",
        check_count(req.post_ids.len(), limits::MAX_BATCH_GET),
    );
    for (i, id) in req.post_ids.iter().enumerate() {
        v.check(&format!("post_ids[{i}]"), parse_id(id));
    }
    v.optional("viewer_id", &req.viewer_id, parse_id);
    v.finish(Some(()))?;
    Ok(BatchGetPosts {
        ids: req.post_ids,
        viewer_id: req.viewer_id,
        allow_missing: req.allow_missing,
    })
}

/// A newest-first page of posts: how many, and after which (from the page token).
fn post_page(v: &mut FieldViolations, size: i32, token: &str) -> Option<(usize, Option<Cursor>)> {
    let limit = v.page_size(size, limits::DEFAULT_PAGE_SIZE, limits::MAX_PAGE_SIZE);
    let after = v.check("page_token", post_cursor(token));
    limit.zip(after)
}

pub(super) struct ListPostsByAuthor {
    pub author_id: String,
    pub viewer_id: String,
    pub range: TimeRange,
    pub after: Option<Cursor>,
    pub limit: usize,
}

pub(super) fn parse_list_posts_by_author(
    req: pb::ListPostsByAuthorRequest,
) -> Result<ListPostsByAuthor, FieldViolations> {
    let mut v = FieldViolations::new();
    let author_id = v.check("author_id", parse_id(&req.author_id));
    let page = post_page(&mut v, req.page_size, &req.page_token);
    v.optional("viewer_id", &req.viewer_id, parse_id);
    let start = req
        .start_time
        .as_ref()
        .and_then(|ts| v.check("start_time", from_timestamp(ts)));
    let end = req
        .end_time
        .as_ref()
        .and_then(|ts| v.check("end_time", from_timestamp(ts)));
    if let (Some(start), Some(end)) = (start, end) {
        if start >= end {
            v.add("end_time", "must be after start_time");
        }
    }
    let (author_id, (limit, after)) = v.finish((author_id, page))?;
    Ok(ListPostsByAuthor {
        author_id,
        viewer_id: req.viewer_id,
        range: TimeRange { start, end },
        after,
        limit,
    })
}

/// The query of ListRecentPostsByAuthors, ids and hashtags deduplicated.
pub(super) fn parse_list_recent_posts_by_authors(
    req: pb::ListRecentPostsByAuthorsRequest,
) -> Result<RecentPostsQuery, FieldViolations> {
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
    let (since, max_posts, max_posts_per_author) =
        v.finish((since, max_posts, max_posts_per_author))?;
    Ok(RecentPostsQuery {
        author_ids: distinct(req.author_ids),
        hashtags: distinct(hashtags),
        since,
        max_posts,
        max_posts_per_author,
    })
}

/// An edit: the post's id and its new text, validated as a reshare's commentary (which may be
/// empty; only the stored post can tell whether it is one).
pub(super) fn parse_update_post(
    req: &pb::UpdatePostRequest,
) -> Result<(String, PostText), FieldViolations> {
    let mut v = FieldViolations::new();
    check_update_mask(&mut v, req.update_mask.as_ref());
    let (id, text) = match &req.post {
        None => {
            v.add("post", "is required");
            (None, None)
        }
        Some(post) => (
            v.check("post.id", parse_id(&post.id)),
            v.check("post.text", PostText::parse_reshare(&post.text)),
        ),
    };
    v.finish((id, text))
}

/// The id of the post to delete.
pub(super) fn parse_delete_post(req: &pb::DeletePostRequest) -> Result<String, FieldViolations> {
    let mut v = FieldViolations::new();
    let id = v.check("post_id", parse_id(&req.post_id));
    v.finish(id)
}

pub(super) struct ListPostsByHashtag {
    pub hashtag: String,
    pub viewer_id: String,
    pub after: Option<Cursor>,
    pub limit: usize,
}

pub(super) fn parse_list_posts_by_hashtag(
    req: pb::ListPostsByHashtagRequest,
) -> Result<ListPostsByHashtag, FieldViolations> {
    let mut v = FieldViolations::new();
    let hashtag = v.check("hashtag", parse_hashtag(&req.hashtag));
    let page = post_page(&mut v, req.page_size, &req.page_token);
    v.optional("viewer_id", &req.viewer_id, parse_id);
    let (hashtag, (limit, after)) = v.finish((hashtag, page))?;
    Ok(ListPostsByHashtag {
        hashtag,
        viewer_id: req.viewer_id,
        after,
        limit,
    })
}

/// The trending window in microseconds, and how many hashtags to answer.
pub(super) fn parse_list_trending_hashtags(
    req: &pb::ListTrendingHashtagsRequest,
) -> Result<(i64, usize), FieldViolations> {
    let mut v = FieldViolations::new();
    let window = v.check("window", parse_window(req.window.as_ref()));
    let limit = v.page_size(
        req.page_size,
        limits::DEFAULT_TRENDING,
        limits::MAX_TRENDING,
    );
    v.finish((window, limit))
}
