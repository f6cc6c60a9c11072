//! What the engagement handlers parse requests into and convert results back from: field
//! parsers, the typed inputs of the RPCs (`parse_<rpc>`), page tokens, and the records as
//! protobuf.

use super::*;

/// A client's comment order; UNSPECIFIED means most relevant.
pub(super) fn parse_comment_order(raw: i32) -> Result<CommentOrder, String> {
    match pb::CommentOrder::try_from(raw) {
        Ok(pb::CommentOrder::Unspecified | pb::CommentOrder::MostRelevant) => {
            Ok(CommentOrder::MostRelevant)
        }
        Ok(pb::CommentOrder::Newest) => Ok(CommentOrder::Newest),
        Err(_) => Err("must be one of COMMENT_ORDER_MOST_RELEVANT, COMMENT_ORDER_NEWEST".into()),
    }
}

pub(super) const BAD_TOKEN: &str = "is not a page token from this service";

/// The tag of a comment listing in its page tokens, so a token of one listing cannot be used
/// for another.
pub(super) fn listing_tag(listing: &CommentListing) -> String {
    match listing {
        CommentListing::TopLevel(CommentOrder::MostRelevant) => "relevant".into(),
        CommentListing::TopLevel(CommentOrder::Newest) => "newest".into(),
        CommentListing::Replies(parent) => format!("replies:{parent}"),
    }
}

pub(super) fn encode_comment_token(listing: &CommentListing, after: &CommentCursor) -> String {
    encode_token(&[
        &listing_tag(listing),
        &after.score.to_string(),
        &after.create_time.to_string(),
        &after.id,
    ])
}

pub(super) fn decode_comment_token(
    token: &str,
    listing: &CommentListing,
) -> Result<Option<CommentCursor>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let parts = decode_token(token, 4)?;
    if parts[0] != listing_tag(listing) {
        return Err("belongs to another listing".into());
    }
    let score = parts[1].parse().map_err(|_| BAD_TOKEN.to_string())?;
    let create_time = parts[2].parse().map_err(|_| BAD_TOKEN.to_string())?;
    Ok(Some(CommentCursor {
        score,
        create_time,
        id: parts[3].clone(),
    }))
}

pub(super) fn encode_reaction_token(phase: ReactorPhase, after: Option<(i64, &str)>) -> String {
    let phase = match phase {
        ReactorPhase::Connections => "connections",
        ReactorPhase::Others => "others",
    };
    match after {
        Some((time, member)) => encode_token(&[phase, &time.to_string(), member]),
        None => encode_token(&[phase, "", ""]),
    }
}

pub(super) fn decode_reaction_token(token: &str) -> Result<ReactionPosition, String> {
    if token.is_empty() {
        return Ok((ReactorPhase::Connections, None));
    }
    let parts = decode_token(token, 3)?;
    let phase = match parts[0].as_str() {
        "connections" => ReactorPhase::Connections,
        "others" => ReactorPhase::Others,
        _ => return Err(BAD_TOKEN.into()),
    };
    if parts[1].is_empty() {
        return Ok((phase, None));
    }
    let time = parts[1].parse().map_err(|_| BAD_TOKEN.to_string())?;
    Ok((phase, Some((time, parts[2].clone()))))
}

pub(super) fn reaction_type_to_pb(t: ReactionType) -> pb::ReactionType {
    match t {
        ReactionType::Like => pb::ReactionType::Like,
        ReactionType::Celebrate => pb::ReactionType::Celebrate,
        ReactionType::Support => pb::ReactionType::Support,
        ReactionType::Love => pb::ReactionType::Love,
        ReactionType::Insightful => pb::ReactionType::Insightful,
        ReactionType::Funny => pb::ReactionType::Funny,
    }
}

/// A client's reaction type; UNSPECIFIED and unknown numbers are refused.
pub(super) fn parse_reaction_type(raw: i32) -> Result<ReactionType, String> {
    ReactionType::ALL
        .into_iter()
        .find(|t| reaction_type_to_pb(*t) as i32 == raw)
        .ok_or_else(|| {
            let names: Vec<&str> = ReactionType::ALL
                .into_iter()
                .map(|t| reaction_type_to_pb(t).as_str_name())
                .collect();
            format!("must be one of {}", names.join(", "))
        })
}

/// Clock skew allowed between an importer and this service.
pub(super) const MAX_CLOCK_SKEW_MICROS: i64 = 60_000_000;

/// A required time of an imported item: present, valid and not in the future.
pub(super) fn past_time(
    v: &mut FieldViolations,
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    now: i64,
) -> Option<i64> {
    let Some(ts) = ts else {
        v.add(field, "is required");
        return None;
    };
    let t = v.check(field, from_timestamp(ts))?;
    if t > now + MAX_CLOCK_SKEW_MICROS {
        v.add(field, "must not be in the future");
        return None;
    }
    Some(t)
}

/// Decodes and checks an import, every field of every item, into what the store imports.
pub(super) fn parse_import(
    req: pb::ImportEngagementRequest,
    now: i64,
) -> Result<EngagementImport, Status> {
    let total = req.reactions.len() + req.comments.len() + req.shares.len() + req.impressions.len();
    // Refused before the items are looked at: their violations would say nothing more.
    if total > limits::MAX_IMPORT_ITEMS {
        return Err(pronet_common::error::invalid_field(
            "request",
            format!(
                "must have at most {} items in all four lists, got {total}",
                limits::MAX_IMPORT_ITEMS
            ),
        ));
    }
    let mut v = FieldViolations::new();
    let mut batch = EngagementImport::default();
    for (i, r) in req.reactions.into_iter().enumerate() {
        let f = |name: &str| format!("reactions[{i}].{name}");
        let post_id = v.check(&f("post_id"), parse_id(&r.post_id));
        let member_id = v.check(&f("member_id"), parse_id(&r.member_id));
        let reaction_type = v.check(&f("reaction_type"), parse_reaction_type(r.reaction_type));
        let time = past_time(&mut v, &f("create_time"), r.create_time.as_ref(), now);
        if let (Some(post_id), Some(member_id), Some(reaction_type), Some(create_time)) =
            (post_id, member_id, reaction_type, time)
        {
            batch.reactions.push(ReactionRecord {
                post_id,
                member_id,
                reaction_type,
                create_time,
            });
        }
    }
    for (i, c) in req.comments.into_iter().enumerate() {
        let f = |name: &str| format!("comments[{i}].{name}");
        let id = v.check(&f("id"), parse_id(&c.id));
        let post_id = v.check(&f("post_id"), parse_id(&c.post_id));
        let member_id = v.check(&f("member_id"), parse_id(&c.member_id));
        let text = v.check(&f("text"), limits::COMMENT_TEXT.parse(&c.text));
        let time = past_time(&mut v, &f("create_time"), c.create_time.as_ref(), now);
        if let (Some(id), Some(post_id), Some(member_id), Some(text), Some(time)) =
            (id, post_id, member_id, text, time)
        {
            batch
                .comments
                .push(CommentRecord::new(id, post_id, member_id, text, time));
        }
    }
    for (i, s) in req.shares.into_iter().enumerate() {
        let f = |name: &str| format!("shares[{i}].{name}");
        let id = v.check(&f("id"), parse_id(&s.id));
        let post_id = v.check(&f("post_id"), parse_id(&s.post_id));
        let member_id = v.check(&f("member_id"), parse_id(&s.member_id));
        let time = past_time(&mut v, &f("create_time"), s.create_time.as_ref(), now);
        if let (Some(id), Some(post_id), Some(member_id), Some(create_time)) =
            (id, post_id, member_id, time)
        {
            batch.shares.push(ShareRecord {
                id,
                post_id,
                member_id,
                create_time,
            });
        }
    }
    for (i, m) in req.impressions.into_iter().enumerate() {
        let f = |name: &str| format!("impressions[{i}].{name}");
        let post_id = v.check(&f("post_id"), parse_id(&m.post_id));
        let member_id = v.check(&f("member_id"), parse_id(&m.member_id));
        let time = past_time(&mut v, &f("view_time"), m.view_time.as_ref(), now);
        if let (Some(post_id), Some(member_id), Some(view_time)) = (post_id, member_id, time) {
            batch.impressions.push(ImpressionRecord {
                post_id,
                member_id,
                view_time,
            });
        }
    }
    v.into_result()?;
    Ok(batch)
}

/// A count as the proto's int64.
pub(super) fn count_to_pb(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Checks the count and every id of a repeated id field (FieldViolations caps how many are
/// listed).
pub(super) fn check_ids(v: &mut FieldViolations, field: &str, ids: &[String], max: usize) {
    v.check(field, check_count(ids.len(), max));
    for (i, id) in ids.iter().enumerate() {
        v.check(&format!("{field}[{i}]"), parse_id(id));
    }
}

pub(super) fn reaction_to_pb(r: ReactionRecord) -> pb::Reaction {
    pb::Reaction {
        post_id: r.post_id,
        member_id: r.member_id,
        reaction_type: reaction_type_to_pb(r.reaction_type) as i32,
        create_time: Some(to_timestamp(r.create_time)),
    }
}

pub(super) fn reaction_counts_to_pb(
    counts: impl Iterator<Item = (ReactionType, i64)>,
) -> Vec<pb::ReactionCount> {
    counts
        .filter(|(_, n)| *n != 0)
        .map(|(t, count)| pb::ReactionCount {
            reaction_type: reaction_type_to_pb(t) as i32,
            count,
        })
        .collect()
}

pub(super) fn comment_to_pb(c: CommentRecord) -> pb::Comment {
    let total_reactions = c.total_reactions();
    pb::Comment {
        reactions: reaction_counts_to_pb(
            ReactionType::ALL
                .into_iter()
                .map(|t| (t, c.reactions[t.index()])),
        ),
        total_reactions,
        id: c.id,
        post_id: c.post_id,
        member_id: c.member_id,
        text: c.text,
        create_time: Some(to_timestamp(c.create_time)),
        parent_comment_id: c.parent_id.unwrap_or_default(),
        update_time: c.update_time.map(to_timestamp),
        edited: c.update_time.is_some(),
        reply_count: c.reply_count,
    }
}

pub(super) fn share_to_pb(s: ShareRecord) -> pb::Share {
    pb::Share {
        id: s.id,
        post_id: s.post_id,
        member_id: s.member_id,
        create_time: Some(to_timestamp(s.create_time)),
    }
}

pub(super) fn stats_to_pb(s: PostStatsRecord) -> pb::PostStats {
    pb::PostStats {
        reactions: reaction_counts_to_pb(s.non_zero_reactions()),
        total_reactions: s.total_reactions(),
        comments: s.comments,
        shares: s.shares,
        impressions: s.impressions,
        unique_viewers: s.unique_viewers,
        post_id: s.post_id,
    }
}

pub(super) fn activity_to_pb(a: ActivityRecord) -> pb::Activity {
    let (kind, reaction_type) = match a.kind {
        ActivityKind::Reaction(t) => (pb::ActivityKind::Reaction, reaction_type_to_pb(t)),
        ActivityKind::Comment => (pb::ActivityKind::Comment, pb::ReactionType::Unspecified),
        ActivityKind::Share => (pb::ActivityKind::Share, pb::ReactionType::Unspecified),
    };
    pb::Activity {
        member_id: a.member_id,
        post_id: a.post_id,
        kind: kind as i32,
        reaction_type: reaction_type as i32,
        create_time: Some(to_timestamp(a.create_time)),
    }
}

/// A request a member makes about one thing (a post, a comment, a hashtag, an author): the
/// member's id, and the field naming the thing. Requests of one shape share their parse.
pub(super) trait MemberRequest {
    /// The field naming what the member acts on.
    const TARGET: &'static str;
    fn member_id(&self) -> &str;
    fn target(&self) -> &str;
}

/// A reaction to a post or a comment.
pub(super) trait ReactionRequest: MemberRequest {
    fn reaction_type(&self) -> i32;
}

/// Negative feedback, or taking it back.
pub(super) trait MuteRequest: MemberRequest {
    const KIND: MuteKind;
}

macro_rules! member_requests {
    ($($req:ident { $target:ident $(, $kind:ident)? })+) => {$(
        impl MemberRequest for pb::$req {
            const TARGET: &'static str = stringify!($target);
            fn member_id(&self) -> &str {
                &self.member_id
            }
            fn target(&self) -> &str {
                &self.$target
            }
        }
        $(impl MuteRequest for pb::$req {
            const KIND: MuteKind = MuteKind::$kind;
        })?
    )+};
}

member_requests! {
    ReactRequest { post_id }
    UnreactRequest { post_id }
    RecordShareRequest { post_id }
    ReactToCommentRequest { comment_id }
    UnreactToCommentRequest { comment_id }
    HidePostRequest { post_id, Post }
    UnhidePostRequest { post_id, Post }
    MuteHashtagRequest { hashtag, Hashtag }
    UnmuteHashtagRequest { hashtag, Hashtag }
    MuteAuthorRequest { author_id, Author }
    UnmuteAuthorRequest { author_id, Author }
}

impl ReactionRequest for pb::ReactRequest {
    fn reaction_type(&self) -> i32 {
        self.reaction_type
    }
}

impl ReactionRequest for pb::ReactToCommentRequest {
    fn reaction_type(&self) -> i32 {
        self.reaction_type
    }
}

/// React and ReactToComment: the member, the id of the post or comment, and the reaction.
pub(super) fn parse_react<R: ReactionRequest>(
    req: &R,
) -> Result<(String, String, ReactionType), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(req.member_id()));
    let target = v.check(R::TARGET, parse_id(req.target()));
    let reaction_type = v.check("reaction_type", parse_reaction_type(req.reaction_type()));
    v.finish((member_id, target, reaction_type))
}

/// Unreact, RecordShare and UnreactToComment: the member and the id of the post or comment.
pub(super) fn parse_member_target<R: MemberRequest>(
    req: &R,
) -> Result<(String, String), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(req.member_id()));
    let target = v.check(R::TARGET, parse_id(req.target()));
    v.finish((member_id, target))
}

/// A negative-feedback request (HidePost, MuteHashtag, MuteAuthor, and the three taking one
/// back): the member and what they mute.
pub(super) fn parse_mute<R: MuteRequest>(req: &R) -> Result<(String, Mute), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(req.member_id()));
    let target = v.check(
        R::TARGET,
        match R::KIND {
            MuteKind::Hashtag => parse_hashtag(req.target()),
            MuteKind::Post | MuteKind::Author => parse_id(req.target()),
        },
    );
    let (member_id, target) = v.finish((member_id, target))?;
    Ok((member_id, Mute::new(R::KIND, target)))
}

/// CreateComment, parsed.
pub(super) struct CreateComment {
    pub member_id: String,
    pub post_id: String,
    pub text: String,
    /// The comment replied to; `None` for a top-level comment.
    pub parent_id: Option<String>,
    /// `None`: the request is not to be deduplicated.
    pub request_id: Option<String>,
}

pub(super) fn parse_create_comment(
    req: &pb::CreateCommentRequest,
) -> Result<CreateComment, FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let post_id = v.check("post_id", parse_id(&req.post_id));
    let text = v.check("text", limits::COMMENT_TEXT.parse(&req.text));
    // Optional: empty means a top-level comment.
    let parent_id = v.optional("parent_comment_id", &req.parent_comment_id, parse_id);
    // Optional: empty means the request is not to be deduplicated.
    let request_id = v.optional("request_id", &req.request_id, parse_id);
    let (member_id, post_id, text) = v.finish((member_id, post_id, text))?;
    Ok(CreateComment {
        member_id,
        post_id,
        text,
        parent_id,
        request_id,
    })
}

/// The post ids, and the viewer a service reads for (empty: the caller).
pub(super) fn parse_batch_get_post_stats(
    req: pb::BatchGetPostStatsRequest,
) -> Result<(Vec<String>, String), FieldViolations> {
    let mut v = FieldViolations::new();
    check_ids(&mut v, "post_ids", &req.post_ids, limits::MAX_BATCH_STATS);
    v.optional("viewer_id", &req.viewer_id, parse_id);
    v.finish(Some(()))?;
    Ok((req.post_ids, req.viewer_id))
}

pub(super) struct ListRecentActivity {
    pub member_ids: Vec<String>,
    pub since: i64,
    pub limit: usize,
}

pub(super) fn parse_list_recent_activity(
    req: pb::ListRecentActivityRequest,
) -> Result<ListRecentActivity, FieldViolations> {
    let mut v = FieldViolations::new();
    check_ids(
        &mut v,
        "member_ids",
        &req.member_ids,
        limits::MAX_ACTIVITY_MEMBERS,
    );
    let since = match &req.since {
        Some(ts) => v.check("since", from_timestamp(ts)),
        None => {
            v.add("since", "is required");
            None
        }
    };
    let limit = v.check("max_activities", max_activities(req.max_activities));
    let (since, limit) = v.finish((since, limit))?;
    Ok(ListRecentActivity {
        member_ids: req.member_ids,
        since,
        limit,
    })
}

/// ListReactions, parsed: `reaction_type` `None` lists every type; `phase` and `after` are
/// where the previous page ended.
pub(super) struct ListReactions {
    pub post_id: String,
    pub reaction_type: Option<ReactionType>,
    pub limit: usize,
    pub phase: ReactorPhase,
    pub after: Option<(i64, String)>,
    pub viewer_id: String,
}

pub(super) fn parse_list_reactions(
    req: pb::ListReactionsRequest,
) -> Result<ListReactions, FieldViolations> {
    let mut v = FieldViolations::new();
    let post_id = v.check("post_id", parse_id(&req.post_id));
    let reaction_type = if req.reaction_type == pb::ReactionType::Unspecified as i32 {
        Some(None)
    } else {
        v.check("reaction_type", parse_reaction_type(req.reaction_type))
            .map(Some)
    };
    let limit = v.page_size(
        req.page_size,
        limits::DEFAULT_REACTION_PAGE,
        limits::MAX_REACTION_PAGE,
    );
    let position = v.check("page_token", decode_reaction_token(&req.page_token));
    v.optional("viewer_id", &req.viewer_id, parse_id);
    let (post_id, reaction_type, limit, (phase, after)) =
        v.finish((post_id, reaction_type, limit, position))?;
    Ok(ListReactions {
        post_id,
        reaction_type,
        limit,
        phase,
        after,
        viewer_id: req.viewer_id,
    })
}

/// An edit: the comment's id and its new text.
pub(super) fn parse_update_comment(
    req: &pb::UpdateCommentRequest,
) -> Result<(String, String), FieldViolations> {
    let mut v = FieldViolations::new();
    let (id, text) = match &req.comment {
        Some(c) => (
            v.check("comment.id", parse_id(&c.id)),
            v.check("comment.text", limits::COMMENT_TEXT.parse(&c.text)),
        ),
        None => {
            v.add("comment", "is required");
            (None, None)
        }
    };
    if let Some(mask) = &req.update_mask {
        if mask.paths.iter().any(|p| p != "text") {
            v.add("update_mask", "only \"text\" can be updated");
        }
    }
    v.finish((id, text))
}

/// The id of the comment to delete.
pub(super) fn parse_delete_comment(
    req: &pb::DeleteCommentRequest,
) -> Result<String, FieldViolations> {
    let mut v = FieldViolations::new();
    let id = v.check("comment_id", parse_id(&req.comment_id));
    v.finish(id)
}

/// ListComments, parsed. The page token is decoded by the handler, once the listing is known
/// (replies need their parent from the store).
pub(super) struct ListComments {
    pub post_id: String,
    /// The comment whose replies are listed; `None` lists the top-level comments.
    pub parent_id: Option<String>,
    pub order: CommentOrder,
    pub limit: usize,
    pub viewer_id: String,
    pub page_token: String,
}

pub(super) fn parse_list_comments(
    req: pb::ListCommentsRequest,
) -> Result<ListComments, FieldViolations> {
    let mut v = FieldViolations::new();
    let post_id = v.check("post_id", parse_id(&req.post_id));
    let parent_id = v.optional("parent_comment_id", &req.parent_comment_id, parse_id);
    let order = v.check("order", parse_comment_order(req.order));
    let limit = v.page_size(
        req.page_size,
        limits::DEFAULT_COMMENT_PAGE,
        limits::MAX_COMMENT_PAGE,
    );
    v.optional("viewer_id", &req.viewer_id, parse_id);
    let (post_id, order, limit) = v.finish((post_id, order, limit))?;
    Ok(ListComments {
        post_id,
        parent_id,
        order,
        limit,
        viewer_id: req.viewer_id,
        page_token: req.page_token,
    })
}

/// A member and at most `max` post ids.
fn parse_member_posts(
    member_id: &str,
    post_ids: Vec<String>,
    max: usize,
) -> Result<(String, Vec<String>), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(member_id));
    check_ids(&mut v, "post_ids", &post_ids, max);
    let member_id = v.finish(member_id)?;
    Ok((member_id, post_ids))
}

/// The member and the posts shown to them.
pub(super) fn parse_record_impressions(
    req: pb::RecordImpressionsRequest,
) -> Result<(String, Vec<String>), FieldViolations> {
    parse_member_posts(&req.member_id, req.post_ids, limits::MAX_IMPRESSIONS)
}

/// The member and the posts asked about.
pub(super) fn parse_list_seen_posts(
    req: pb::ListSeenPostsRequest,
) -> Result<(String, Vec<String>), FieldViolations> {
    parse_member_posts(&req.member_id, req.post_ids, limits::MAX_SEEN_POSTS)
}

/// The member whose mutes are listed.
pub(super) fn parse_list_mutes(req: &pb::ListMutesRequest) -> Result<String, FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    v.finish(member_id)
}
