//! What the profile handlers parse requests into and convert results back from: field
//! parsers, page tokens, and the records as protobuf.

use super::*;

pub(super) fn profile_to_pb(p: ProfileRecord) -> pb::Profile {
    pb::Profile {
        id: p.id,
        handle: p.handle,
        display_name: p.display_name,
        headline: p.headline,
        summary: p.summary,
        location: p.location,
        industry: p.industry,
        skills: p.skills,
        create_time: Some(to_timestamp(p.create_time)),
        update_time: Some(to_timestamp(p.update_time)),
        connection_count: p.connection_count,
        follower_count: p.follower_count,
        positions: p
            .positions
            .into_iter()
            .map(|p| pb::Position {
                title: p.title,
                company: p.company,
                start: Some(pb::YearMonth {
                    year: p.start.year,
                    month: p.start.month,
                }),
                end: p.end.map(|e| pb::YearMonth {
                    year: e.year,
                    month: e.month,
                }),
                current: p.current,
            })
            .collect(),
        education: p
            .education
            .into_iter()
            .map(|e| pb::Education {
                school: e.school,
                degree: e.degree,
                field_of_study: e.field_of_study,
                start_year: e.start_year,
                end_year: e.end_year,
            })
            .collect(),
        open_to_work: p.open_to_work,
    }
}

pub(super) fn degree_pb(d: Degree) -> pb::ConnectionDegree {
    match d {
        Degree::Myself => pb::ConnectionDegree::Self_,
        Degree::First => pb::ConnectionDegree::First,
        Degree::Second => pb::ConnectionDegree::Second,
        Degree::Third => pb::ConnectionDegree::Third,
        Degree::OutOfNetwork => pb::ConnectionDegree::OutOfNetwork,
    }
}

/// Positions, each violation under `field[i].part`.
pub(super) fn parse_positions(
    raw: &[pb::Position],
    v: &mut FieldViolations,
    field: &str,
) -> Option<Vec<Position>> {
    if let Err(e) = check_count(raw.len(), limits::MAX_POSITIONS) {
        v.add(field, e);
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, p) in raw.iter().enumerate() {
        let parsed = Position::parse(RawPosition {
            title: &p.title,
            company: &p.company,
            start: p.start.map(|s| (s.year, s.month)),
            end: p.end.map(|e| (e.year, e.month)),
            current: p.current,
        });
        match parsed {
            Ok(p) => out.push(p),
            Err(errors) => {
                ok = false;
                for (part, e) in errors {
                    v.add(format!("{field}[{i}].{part}"), e);
                }
            }
        }
    }
    ok.then_some(out)
}

/// Education entries, each violation under `field[i].part`.
pub(super) fn parse_education(
    raw: &[pb::Education],
    v: &mut FieldViolations,
    field: &str,
) -> Option<Vec<Education>> {
    if let Err(e) = check_count(raw.len(), limits::MAX_EDUCATION) {
        v.add(field, e);
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, e) in raw.iter().enumerate() {
        match Education::parse(
            &e.school,
            &e.degree,
            &e.field_of_study,
            e.start_year,
            e.end_year,
        ) {
            Ok(e) => out.push(e),
            Err(errors) => {
                ok = false;
                for (part, e) in errors {
                    v.add(format!("{field}[{i}].{part}"), e);
                }
            }
        }
    }
    ok.then_some(out)
}

pub(super) fn suggestion_to_pb(s: Suggestion) -> pb::ConnectionSuggestion {
    pb::ConnectionSuggestion {
        member_id: s.member_id,
        mutual_connection_count: s.mutual_count,
        mutual_member_ids: s.mutual_ids,
        reasons: s
            .reasons
            .into_iter()
            .map(|r| pb::SuggestionReason {
                kind: match r.kind {
                    ReasonKind::MutualConnections => pb::SuggestionReasonKind::MutualConnections,
                    ReasonKind::SharedCompany => pb::SuggestionReasonKind::SharedCompany,
                    ReasonKind::SharedSchool => pb::SuggestionReasonKind::SharedSchool,
                    ReasonKind::SharedIndustry => pb::SuggestionReasonKind::SharedIndustry,
                } as i32,
                value: r.value,
                text: r.text,
            })
            .collect(),
        score: s.score,
    }
}

pub(super) fn suggestion_cursor(token: &str) -> Result<Option<SuggestionCursor>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let parts = decode_token(token, 2)?;
    Ok(Some(SuggestionCursor {
        score: parts[0]
            .parse()
            .map_err(|_| "is not a page token from this service".to_string())?,
        member_id: parts[1].clone(),
    }))
}

/// A search page token: how many ranked results earlier pages held.
pub(super) fn search_offset(token: &str) -> Result<usize, String> {
    if token.is_empty() {
        return Ok(0);
    }
    let parts = decode_token(token, 1)?;
    match parts[0].parse::<usize>() {
        Ok(n) if n <= limits::SEARCH_CANDIDATE_CAP => Ok(n),
        _ => Err("is not a page token from this service".into()),
    }
}

/// An optional filter text: empty means none; else its canonical key.
pub(super) fn filter_key(raw: &str) -> Result<Option<String>, String> {
    let text = limits::SEARCH_FILTER_TEXT.parse(raw)?;
    let key = canonical_key(&text);
    Ok((!key.is_empty()).then_some(key))
}

pub(super) fn invitation_to_pb(i: InvitationRecord) -> pb::Invitation {
    pb::Invitation {
        id: i.id,
        inviter_id: i.inviter_id,
        invitee_id: i.invitee_id,
        message: i.message,
        state: match i.state {
            InvitationState::Pending => pb::InvitationState::Pending,
            InvitationState::Accepted => pb::InvitationState::Accepted,
            InvitationState::Declined => pb::InvitationState::Declined,
            InvitationState::Withdrawn => pb::InvitationState::Withdrawn,
        } as i32,
        create_time: Some(to_timestamp(i.create_time)),
    }
}

pub(super) fn connection_to_pb(c: ConnectionRecord) -> pb::Connection {
    pb::Connection {
        member_id: c.member_id,
        create_time: Some(to_timestamp(c.create_time)),
    }
}

pub(super) fn follower_to_pb(f: FollowerRecord) -> pb::Follower {
    pb::Follower {
        member_id: f.member_id,
        create_time: Some(to_timestamp(f.create_time)),
    }
}

pub(super) fn degree_to_pb(d: DegreeRecord) -> pb::GetConnectionDegreeResponse {
    pb::GetConnectionDegreeResponse {
        degree: degree_pb(d.degree) as i32,
        mutual_connection_count: d.mutual_count,
        mutual_member_ids: d.mutual_ids,
    }
}

pub(super) fn relationship_to_pb(r: RelationshipRecord) -> pb::Relationship {
    pb::Relationship {
        member_id: r.member_id,
        connected: r.connected,
        blocked: r.blocked,
    }
}

pub(super) fn following_to_pb(f: FollowingRecord) -> pb::Following {
    pb::Following {
        target: Some(match f.target {
            FollowTarget::Member(id) => pb::following::Target::FolloweeId(id),
            FollowTarget::Hashtag(tag) => pb::following::Target::Hashtag(tag),
        }),
        create_time: Some(to_timestamp(f.create_time)),
    }
}

/// Parses every editable field of `p`, recording violations under `prefix`.
pub(super) fn parse_fields(
    p: &pb::Profile,
    v: &mut FieldViolations,
    prefix: &str,
) -> Option<ProfileFields> {
    let f = |name: &str| format!("{prefix}.{name}");
    let handle = v.check(&f("handle"), Handle::parse(&p.handle));
    let display_name = v.check(
        &f("display_name"),
        limits::DISPLAY_NAME.parse(&p.display_name),
    );
    let headline = v.check(&f("headline"), limits::HEADLINE.parse(&p.headline));
    let summary = v.check(&f("summary"), limits::SUMMARY.parse(&p.summary));
    let location = v.check(&f("location"), limits::LOCATION.parse(&p.location));
    let industry = v.check(&f("industry"), limits::INDUSTRY.parse(&p.industry));
    let skills = v.check(&f("skills"), parse_skills(&p.skills));
    let positions = parse_positions(&p.positions, v, &f("positions"));
    let education = parse_education(&p.education, v, &f("education"));
    Some(ProfileFields {
        handle: handle?,
        display_name: display_name?,
        headline: headline?,
        summary: summary?,
        location: location?,
        industry: industry?,
        skills: skills?,
        positions: positions?,
        education: education?,
        open_to_work: p.open_to_work,
    })
}

pub(super) fn connection_cursor(token: &str) -> Result<Option<Cursor>, String> {
    Ok(decode_time_cursor(token)?.map(|(time, key)| Cursor { time, key }))
}

pub(super) fn follow_cursor(token: &str) -> Result<Option<FollowCursor>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || "is not a page token from this service".to_string();
    let parts = decode_token(token, 3)?;
    Ok(Some(FollowCursor {
        time: parts[0].parse().map_err(|_| bad())?,
        kind: parts[1].parse().map_err(|_| bad())?,
        target: parts[2].clone(),
    }))
}

/// The next-page token when a page came back full.
pub(super) fn next_token<T>(items: &[T], limit: usize, key: impl Fn(&T) -> String) -> String {
    match items.last() {
        Some(last) if items.len() == limit => key(last),
        _ => String::new(),
    }
}

/// A list of member ids: at most `max`, each a valid id.
fn check_member_ids(v: &mut FieldViolations, ids: &[String], max: usize) {
    v.check("member_ids", check_count(ids.len(), max));
    for (i, id) in ids.iter().enumerate() {
        v.check(&format!("member_ids[{i}]"), parse_id(id));
    }
}

/// An invitation and the member acting on it (accept, decline, withdraw).
fn parse_invitation_action(
    invitation_id: &str,
    member_id: &str,
) -> Result<(String, String), FieldViolations> {
    let mut v = FieldViolations::new();
    let invitation_id = v.check("invitation_id", parse_id(invitation_id));
    let member_id = v.check("member_id", parse_id(member_id));
    v.finish((invitation_id, member_id))
}

/// A page of one member's list.
pub(super) struct MemberPage<C> {
    pub member_id: String,
    pub after: Option<C>,
    pub limit: usize,
}

/// The default and largest `page_size` of a member's list.
const PAGE_SIZES: (usize, usize) = (limits::DEFAULT_PAGE_SIZE, limits::MAX_PAGE_SIZE);

/// `member_id`, then `page_size` (its default and largest given as a pair), then `page_token`
/// (read by `cursor`).
fn parse_member_page<C>(
    member_id: &str,
    page_size: i32,
    page_token: &str,
    (default, max): (usize, usize),
    cursor: impl FnOnce(&str) -> Result<Option<C>, String>,
) -> Result<MemberPage<C>, FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(member_id));
    let limit = v.page_size(page_size, default, max);
    let after = v.check("page_token", cursor(page_token));
    let (member_id, limit, after) = v.finish((member_id, limit, after))?;
    Ok(MemberPage {
        member_id,
        after,
        limit,
    })
}

/// The new profile's fields, and the optional `request_id` (AIP-155).
pub(super) fn parse_create_profile(
    req: &pb::CreateProfileRequest,
) -> Result<(ProfileFields, Option<String>), FieldViolations> {
    let mut v = FieldViolations::new();
    let Some(profile) = &req.profile else {
        v.add("profile", "is required");
        return Err(v);
    };
    let fields = parse_fields(profile, &mut v, "profile");
    let request_id = v.optional("request_id", &req.request_id, parse_id);
    v.finish((fields, Some(request_id)))
}

/// The ids to read, repeats kept, and whether missing profiles may be left out.
pub(super) fn parse_batch_get_profiles(
    req: pb::BatchGetProfilesRequest,
) -> Result<(Vec<String>, bool), FieldViolations> {
    let mut v = FieldViolations::new();
    check_member_ids(&mut v, &req.member_ids, limits::MAX_BATCH_GET);
    v.finish(Some((req.member_ids, req.allow_missing)))
}

/// The profile's id, and the changes its update mask names.
pub(super) fn parse_update_profile(
    req: pb::UpdateProfileRequest,
) -> Result<(String, ProfileChanges), FieldViolations> {
    let mut v = FieldViolations::new();
    let Some(p) = req.profile else {
        v.add("profile", "is required");
        return Err(v);
    };
    let id = v.check("profile.id", parse_id(&p.id));
    let paths: Vec<String> = match req.update_mask {
        Some(mask) if !mask.paths.is_empty() => mask.paths,
        // AIP-134: without a mask, every populated field is updated.
        _ => {
            let populated = [
                ("handle", !p.handle.is_empty()),
                ("display_name", !p.display_name.is_empty()),
                ("headline", !p.headline.is_empty()),
                ("summary", !p.summary.is_empty()),
                ("location", !p.location.is_empty()),
                ("industry", !p.industry.is_empty()),
                ("skills", !p.skills.is_empty()),
                ("positions", !p.positions.is_empty()),
                ("education", !p.education.is_empty()),
                ("open_to_work", p.open_to_work),
            ];
            populated
                .iter()
                .filter(|(_, set)| *set)
                .map(|(name, _)| name.to_string())
                .collect()
        }
    };
    if paths.is_empty() {
        v.add("update_mask", "names no field to update");
    }
    let all = paths.iter().any(|p| p == "*");
    let wants = |name: &str| all || paths.iter().any(|p| p == name);
    for (i, path) in paths.iter().enumerate() {
        if path != "*" && !UPDATABLE_FIELDS.contains(&path.as_str()) {
            v.add(
                format!("update_mask.paths[{i}]"),
                format!(
                    "unknown or read-only field {path:?}; updatable: {}",
                    UPDATABLE_FIELDS.join(", ")
                ),
            );
        }
    }
    let mut changes = ProfileChanges::default();
    if wants("handle") {
        changes.handle = v.check("profile.handle", Handle::parse(&p.handle));
    }
    if wants("display_name") {
        changes.display_name = v.check(
            "profile.display_name",
            limits::DISPLAY_NAME.parse(&p.display_name),
        );
    }
    if wants("headline") {
        changes.headline = v.check("profile.headline", limits::HEADLINE.parse(&p.headline));
    }
    if wants("summary") {
        changes.summary = v.check("profile.summary", limits::SUMMARY.parse(&p.summary));
    }
    if wants("location") {
        changes.location = v.check("profile.location", limits::LOCATION.parse(&p.location));
    }
    if wants("industry") {
        changes.industry = v.check("profile.industry", limits::INDUSTRY.parse(&p.industry));
    }
    if wants("skills") {
        changes.skills = v.check("profile.skills", parse_skills(&p.skills));
    }
    if wants("positions") {
        changes.positions = parse_positions(&p.positions, &mut v, "profile.positions");
    }
    if wants("education") {
        changes.education = parse_education(&p.education, &mut v, "profile.education");
    }
    if wants("open_to_work") {
        changes.open_to_work = Some(p.open_to_work);
    }
    v.finish((id, Some(changes)))
}

/// A new invitation, and the optional `request_id` (AIP-155).
pub(super) struct CreateInvitation {
    pub inviter_id: String,
    pub invitee_id: String,
    pub message: String,
    pub request_id: Option<String>,
}

pub(super) fn parse_create_invitation(
    req: &pb::CreateInvitationRequest,
) -> Result<CreateInvitation, FieldViolations> {
    let mut v = FieldViolations::new();
    let inviter = v.check("inviter_id", parse_id(&req.inviter_id));
    let invitee = v.check("invitee_id", parse_id(&req.invitee_id));
    let message = v.check("message", limits::INVITATION_MESSAGE.parse(&req.message));
    if inviter.is_some() && inviter == invitee {
        v.add("invitee_id", "cannot invite yourself");
    }
    let request_id = v.optional("request_id", &req.request_id, parse_id);
    let (inviter_id, invitee_id, message) = v.finish((inviter, invitee, message))?;
    Ok(CreateInvitation {
        inviter_id,
        invitee_id,
        message,
        request_id,
    })
}

/// The invitation, and the invitee accepting it.
pub(super) fn parse_accept_invitation(
    req: &pb::AcceptInvitationRequest,
) -> Result<(String, String), FieldViolations> {
    parse_invitation_action(&req.invitation_id, &req.member_id)
}

/// The invitation, and the invitee declining it.
pub(super) fn parse_decline_invitation(
    req: &pb::DeclineInvitationRequest,
) -> Result<(String, String), FieldViolations> {
    parse_invitation_action(&req.invitation_id, &req.member_id)
}

/// The invitation, and the inviter withdrawing it.
pub(super) fn parse_withdraw_invitation(
    req: &pb::WithdrawInvitationRequest,
) -> Result<(String, String), FieldViolations> {
    parse_invitation_action(&req.invitation_id, &req.member_id)
}

/// Which of a member's invitations to list.
fn invitation_direction(raw: i32) -> Result<InvitationDirection, String> {
    match pb::InvitationDirection::try_from(raw) {
        Ok(pb::InvitationDirection::Received) => Ok(InvitationDirection::Received),
        Ok(pb::InvitationDirection::Sent) => Ok(InvitationDirection::Sent),
        _ => Err("must be INVITATION_DIRECTION_RECEIVED or INVITATION_DIRECTION_SENT".into()),
    }
}

/// A page of a member's invitations, and whether those received or those sent.
pub(super) fn parse_list_invitations(
    req: &pb::ListInvitationsRequest,
) -> Result<(MemberPage<Cursor>, InvitationDirection), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let direction = v.check("direction", invitation_direction(req.direction));
    let limit = v.page_size(
        req.page_size,
        limits::DEFAULT_PAGE_SIZE,
        limits::MAX_PAGE_SIZE,
    );
    let after = v.check("page_token", connection_cursor(&req.page_token));
    let (member_id, direction, limit, after) = v.finish((member_id, direction, limit, after))?;
    let page = MemberPage {
        member_id,
        after,
        limit,
    };
    Ok((page, direction))
}

pub(super) fn parse_list_connections(
    req: &pb::ListConnectionsRequest,
) -> Result<MemberPage<Cursor>, FieldViolations> {
    let (id, size, token) = (&req.member_id, req.page_size, &req.page_token);
    parse_member_page(id, size, token, PAGE_SIZES, connection_cursor)
}

/// The follower and whom or what they follow.
pub(super) fn parse_follow(
    req: &pb::FollowRequest,
) -> Result<(String, FollowTarget), FieldViolations> {
    use pb::follow_request::Target;
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let target = match &req.target {
        Some(Target::FolloweeId(id)) => follow_target(&mut v, Some(id), None),
        Some(Target::Hashtag(tag)) => follow_target(&mut v, None, Some(tag)),
        None => follow_target(&mut v, None, None),
    };
    if let (Some(member), Some(FollowTarget::Member(followee))) = (&member_id, &target) {
        if member == followee {
            v.add("followee_id", "cannot follow yourself");
        }
    }
    v.finish((member_id, target))
}

/// Whom or what a follow or an unfollow names: a member (`followee_id`) or a hashtag.
fn follow_target(
    v: &mut FieldViolations,
    followee: Option<&str>,
    hashtag: Option<&str>,
) -> Option<FollowTarget> {
    match (followee, hashtag) {
        (Some(id), _) => v
            .check("followee_id", parse_id(id))
            .map(FollowTarget::Member),
        (None, Some(tag)) => v
            .check("hashtag", parse_hashtag(tag))
            .map(FollowTarget::Hashtag),
        (None, None) => {
            v.add("target", "set followee_id or hashtag");
            None
        }
    }
}

/// Two ids of a request, each under its field's name; with `not_itself`, the second may not
/// be the first (the description says why).
fn two_ids(
    (first_field, first): (&str, &str),
    (second_field, second): (&str, &str),
    not_itself: Option<&str>,
) -> Result<(String, String), FieldViolations> {
    let mut v = FieldViolations::new();
    let first = v.check(first_field, parse_id(first));
    let second = v.check(second_field, parse_id(second));
    if let Some(why) = not_itself {
        if first.is_some() && first == second {
            v.add(second_field, why);
        }
    }
    v.finish((first, second))
}

pub(super) fn parse_list_following(
    req: &pb::ListFollowingRequest,
) -> Result<MemberPage<FollowCursor>, FieldViolations> {
    let (id, size, token) = (&req.member_id, req.page_size, &req.page_token);
    parse_member_page(id, size, token, PAGE_SIZES, follow_cursor)
}

/// The blocker and the member to block.
pub(super) fn parse_block_member(
    req: &pb::BlockMemberRequest,
) -> Result<(String, String), FieldViolations> {
    let (member, blocked) = (
        ("member_id", &*req.member_id),
        ("blocked_id", &*req.blocked_id),
    );
    two_ids(member, blocked, Some("cannot block yourself"))
}

/// The blocker and the member to unblock.
pub(super) fn parse_unblock_member(
    req: &pb::UnblockMemberRequest,
) -> Result<(String, String), FieldViolations> {
    let (member, blocked) = (
        ("member_id", &*req.member_id),
        ("blocked_id", &*req.blocked_id),
    );
    two_ids(member, blocked, None)
}

/// The member and the connection to remove.
pub(super) fn parse_remove_connection(
    req: &pb::RemoveConnectionRequest,
) -> Result<(String, String), FieldViolations> {
    let member = ("member_id", &*req.member_id);
    let connection = ("connection_id", &*req.connection_id);
    two_ids(member, connection, Some("cannot be the member themself"))
}

/// The member and whom or what they stop following.
pub(super) fn parse_unfollow(
    req: &pb::UnfollowRequest,
) -> Result<(String, FollowTarget), FieldViolations> {
    use pb::unfollow_request::Target;
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let target = match &req.target {
        Some(Target::FolloweeId(id)) => follow_target(&mut v, Some(id), None),
        Some(Target::Hashtag(tag)) => follow_target(&mut v, None, Some(tag)),
        None => follow_target(&mut v, None, None),
    };
    v.finish((member_id, target))
}

pub(super) fn parse_list_followers(
    req: &pb::ListFollowersRequest,
) -> Result<MemberPage<Cursor>, FieldViolations> {
    let (id, size, token) = (&req.member_id, req.page_size, &req.page_token);
    parse_member_page(id, size, token, PAGE_SIZES, connection_cursor)
}

/// The viewer, and the member whose degree from them is asked.
pub(super) fn parse_get_connection_degree(
    req: &pb::GetConnectionDegreeRequest,
) -> Result<(String, String), FieldViolations> {
    let (viewer, member) = (
        ("viewer_id", &*req.viewer_id),
        ("member_id", &*req.member_id),
    );
    two_ids(viewer, member, None)
}

/// The viewer, and the members whose relationship to them is asked.
pub(super) fn parse_batch_get_relationships(
    req: pb::BatchGetRelationshipsRequest,
) -> Result<(String, Vec<String>), FieldViolations> {
    let mut v = FieldViolations::new();
    let viewer_id = v.check("viewer_id", parse_id(&req.viewer_id));
    check_member_ids(&mut v, &req.member_ids, limits::MAX_RELATIONSHIP_IDS);
    v.finish((viewer_id, Some(req.member_ids)))
}

/// The keys of the handles to look up.
pub(super) fn parse_lookup_handles(
    req: &pb::LookupHandlesRequest,
) -> Result<Vec<String>, FieldViolations> {
    let mut v = FieldViolations::new();
    v.check(
        "handles",
        check_count(req.handles.len(), limits::MAX_LOOKUP_HANDLES),
    );
    let keys = req
        .handles
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| v.check(&format!("handles[{i}]"), Handle::parse(raw)))
        .map(|handle| handle.key())
        .collect();
    v.finish(Some(keys))
}

pub(super) fn parse_suggest_connections(
    req: &pb::SuggestConnectionsRequest,
) -> Result<MemberPage<SuggestionCursor>, FieldViolations> {
    let (id, size, token) = (&req.member_id, req.page_size, &req.page_token);
    let sizes = (
        limits::SUGGESTION_DEFAULT_PAGE_SIZE,
        limits::SUGGESTION_MAX_PAGE_SIZE,
    );
    parse_member_page(id, size, token, sizes, suggestion_cursor)
}

/// A profile search, and the page of its ranked results to answer.
pub(super) struct SearchProfiles {
    pub query: SearchQuery,
    pub offset: usize,
    pub limit: usize,
}

pub(super) fn parse_search_profiles(
    req: pb::SearchProfilesRequest,
) -> Result<SearchProfiles, FieldViolations> {
    let filters = req.filters.unwrap_or_default();
    let mut v = FieldViolations::new();
    let terms = v.check("query", parse_search_terms(&req.query));
    let mut skill_keys = Vec::new();
    v.check(
        "filters.skills",
        check_count(filters.skills.len(), limits::SEARCH_MAX_SKILLS),
    );
    for (i, skill) in filters.skills.iter().enumerate() {
        if let Some(skill) = v.check(&format!("filters.skills[{i}]"), limits::SKILL.parse(skill)) {
            let key = canonical_key(&skill);
            if !skill_keys.contains(&key) {
                skill_keys.push(key);
            }
        }
    }
    let location_key = v.check("filters.location", filter_key(&filters.location));
    let industry_key = v.check("filters.industry", filter_key(&filters.industry));
    let company_key = v.check(
        "filters.current_company",
        filter_key(&filters.current_company),
    );
    let limit = v.page_size(
        req.page_size,
        limits::SEARCH_DEFAULT_PAGE_SIZE,
        limits::SEARCH_MAX_PAGE_SIZE,
    );
    let offset = v.check("page_token", search_offset(&req.page_token));
    let query = match (terms, location_key, industry_key, company_key) {
        (Some(terms), Some(location_key), Some(industry_key), Some(company_key)) => {
            Some(SearchQuery {
                terms,
                skill_keys,
                location_key,
                industry_key,
                open_to_work: filters.open_to_work,
                company_key,
            })
        }
        _ => None,
    };
    if let Some(q) = &query {
        if q.terms.is_empty() && !q.has_filter() {
            v.add("query", "set words to search for or at least one filter");
        }
    }
    let (query, limit, offset) = v.finish((query, limit, offset))?;
    Ok(SearchProfiles {
        query,
        offset,
        limit,
    })
}

/// The pairs to connect, as given ([`distinct_pairs`] drops repeats later).
pub(super) fn parse_import_connections(
    req: &pb::ImportConnectionsRequest,
) -> Result<Vec<(String, String)>, FieldViolations> {
    let mut v = FieldViolations::new();
    v.check(
        "pairs",
        check_count(req.pairs.len(), limits::MAX_IMPORT_CONNECTIONS),
    );
    let mut pairs = Vec::with_capacity(req.pairs.len());
    for (i, pair) in req.pairs.iter().enumerate() {
        let a = v.check(&format!("pairs[{i}].member_id"), parse_id(&pair.member_id));
        let b = v.check(&format!("pairs[{i}].other_id"), parse_id(&pair.other_id));
        if let (Some(a), Some(b)) = (a, b) {
            pairs.push((a, b));
        }
    }
    v.finish(Some(pairs))
}

/// Each profile's id and fields.
pub(super) fn parse_import_profiles(
    req: &pb::ImportProfilesRequest,
) -> Result<Vec<(String, ProfileFields)>, FieldViolations> {
    let mut v = FieldViolations::new();
    v.check(
        "profiles",
        check_count(req.profiles.len(), limits::MAX_IMPORT_PROFILES),
    );
    let mut profiles = Vec::with_capacity(req.profiles.len());
    for (i, p) in req.profiles.iter().enumerate() {
        let prefix = format!("profiles[{i}]");
        let id = v.check(&format!("{prefix}.id"), parse_id(&p.id));
        let fields = parse_fields(p, &mut v, &prefix);
        if let (Some(id), Some(fields)) = (id, fields) {
            profiles.push((id, fields));
        }
    }
    v.finish(Some(profiles))
}
