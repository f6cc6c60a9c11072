//! What the post handlers parse requests into and convert results back from: field parsers,
//! page tokens, and the records as protobuf.

use super::*;

/// A `viewer_id` field: empty, or a valid id.
pub(super) fn check_viewer_id(v: &mut FieldViolations, raw: &str) {
    if !raw.is_empty() {
        v.check("viewer_id", parse_id(raw));
    }
}

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
