//! What the engagement handlers parse requests into and convert results back from: field
//! parsers, page tokens, and the records as protobuf.

use super::*;

/// A client's comment order; UNSPECIFIED means most relevant.
/// A negative-feedback request checked: the member, who must be the caller, and what they mute
/// (`field` names the target's field).
pub(super) fn parse_mute(
    caller: &Caller,
    member_id: &str,
    kind: MuteKind,
    field: &str,
    target: &str,
) -> Result<(String, Mute), Status> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(member_id));
    let target = v.check(
        field,
        match kind {
            MuteKind::Hashtag => parse_hashtag(target),
            MuteKind::Post | MuteKind::Author => parse_id(target),
        },
    );
    let (Some(member_id), Some(target)) = (member_id, target) else {
        return Err(v.into_status());
    };
    require_self(caller, "member_id", &member_id)?;
    Ok((member_id, Mute::new(kind, target)))
}

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
