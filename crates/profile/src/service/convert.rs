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

/// An optional `request_id` (AIP-155): empty means none, anything else must look like an id.
pub(super) fn parse_request_id(raw: &str) -> Result<Option<String>, String> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse_id(raw).map(Some)
    }
}

/// Parses an invitation id and the acting member's id (decline, withdraw).
pub(super) fn parse_invitation_action(
    invitation_id: &str,
    member_id: &str,
) -> Result<(String, String), Status> {
    let mut v = FieldViolations::new();
    let invitation_id = v.check("invitation_id", parse_id(invitation_id));
    let member_id = v.check("member_id", parse_id(member_id));
    let (Some(invitation_id), Some(member_id)) = (invitation_id, member_id) else {
        return Err(v.into_status());
    };
    v.into_result()?;
    Ok((invitation_id, member_id))
}
