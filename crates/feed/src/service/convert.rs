//! What the feed handlers parse requests into and convert results back from: the typed inputs
//! of GetFeed and ExplainFeedItem, and ranked items, reasons and filters as protobuf.

use super::*;

/// GetFeed, parsed: whose feed, how many items, and where the previous page ended.
pub(super) struct GetFeed {
    pub member_id: String,
    pub size: usize,
    pub token: Option<PageToken>,
    pub ranking_profile: String,
}

pub(super) fn parse_get_feed(
    req: pb::GetFeedRequest,
    key: &TokenKey,
) -> Result<GetFeed, FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let size = v.page_size(
        req.page_size,
        limits::DEFAULT_PAGE_SIZE,
        limits::MAX_PAGE_SIZE,
    );
    let token = if req.page_token.is_empty() {
        Some(None)
    } else {
        v.check(
            "page_token",
            PageToken::decode(&req.page_token, key).map(Some),
        )
    };
    let (member_id, size, token) = v.finish((member_id, size, token))?;
    Ok(GetFeed {
        member_id,
        size,
        token,
        ranking_profile: req.ranking_profile,
    })
}

/// ExplainFeedItem, parsed: whose feed, which post, as which profile ranks it.
pub(super) fn parse_explain_feed_item(
    req: pb::ExplainFeedItemRequest,
) -> Result<(String, String, String), FieldViolations> {
    let mut v = FieldViolations::new();
    let member_id = v.check("member_id", parse_id(&req.member_id));
    let post_id = v.check("post_id", parse_id(&req.post_id));
    let (member_id, post_id) = v.finish((member_id, post_id))?;
    Ok((member_id, post_id, req.ranking_profile))
}

/// A ranked item as a response shows it: score, signals, breakdown and reasons, its author and
/// reasons named from `names`.
pub(super) fn item_to_pb(
    ranked: &Ranked,
    profile: &RankingProfile,
    author_id: &str,
    reasons: &[Reason],
    names: &HashMap<String, String>,
    stats: epb::PostStats,
) -> pb::FeedItem {
    pb::FeedItem {
        post: None,
        partial: false,
        stats: Some(stats),
        score: ranked.score,
        reasons: reasons.iter().map(|x| reason_to_pb(x, names)).collect(),
        score_breakdown: Some(breakdown_to_pb(ranked, profile)),
        author_display_name: names.get(author_id).cloned().unwrap_or_default(),
        signals: signals_to_pb(ranked, profile),
        predictions: Vec::new(),
    }
}

/// The learned model's predictions for an item, term by term, when its profile ranks with
/// `expected_engagement` (empty otherwise).
pub(super) fn predictions_to_pb(
    ranked: &Ranked,
    profile: &RankingProfile,
    learned: &Learned,
    index: &FeedIndex,
    as_of: i64,
) -> Vec<pb::EngagementPrediction> {
    if profile.weight(Signal::ExpectedEngagement) == 0.0 {
        return Vec::new();
    }
    let c = &ranked.candidate;
    let f = learned.features(c, index, as_of);
    let model = &learned.model;
    let p = model.predict(&f);
    let values = profile.model.as_array();
    let tag = |i: u8| -> String {
        c.tags
            .as_slice()
            .get(usize::from(i))
            .map_or_else(String::new, |t| format!("#{}", index.hashtag(*t)))
    };
    let author = index.member_id(c.author);
    Kind::ALL
        .into_iter()
        .map(|kind| pb::EngagementPrediction {
            kind: crate::training::saved::kind_to_pb(kind) as i32,
            probability: p[kind as usize],
            value: values[kind as usize],
            terms: model
                .terms(&f, kind)
                .into_iter()
                .map(|t| pb::RankingSignal {
                    name: match t.feature {
                        TermFeature::Dense(i) => DENSE_NAMES[i].to_owned(),
                        TermFeature::Hashed(h) => match h.family {
                            Family::Member | Family::Post => h.family.name().to_owned(),
                            Family::Author | Family::MemberAuthor => {
                                format!("{}:{author}", h.family.name())
                            }
                            Family::Hashtag | Family::MemberHashtag => {
                                format!("{}:{}", h.family.name(), tag(h.tag))
                            }
                        },
                    },
                    value: t.value,
                    weight: t.weight,
                    contribution: t.weight * t.value,
                })
                .collect(),
            model_version: model.version.min(i64::MAX as u64) as i64,
        })
        .collect()
}

/// An item's signals as responses show them.
pub(super) fn signals_to_pb(r: &Ranked, profile: &RankingProfile) -> Vec<pb::RankingSignal> {
    r.signals(profile)
        .into_iter()
        .map(|s| pb::RankingSignal {
            name: s.signal.name().to_owned(),
            value: s.value,
            weight: s.weight,
            contribution: s.contribution,
        })
        .collect()
}

pub(super) fn breakdown_to_pb(r: &Ranked, profile: &RankingProfile) -> pb::ScoreBreakdown {
    let b = r.breakdown(profile);
    pb::ScoreBreakdown {
        engagement: b.engagement,
        freshness: b.freshness,
        affinity: b.affinity,
        diversity: b.diversity,
    }
}

/// A post's counts as the engagement service's `PostStats` reports them.
pub(super) fn stats_to_pb(post_id: &str, c: &PostCounts) -> epb::PostStats {
    epb::PostStats {
        post_id: post_id.to_owned(),
        reactions: c
            .reactions
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| epb::ReactionCount {
                reaction_type: i as i32 + 1,
                count: *n,
            })
            .collect(),
        total_reactions: c.total_reactions(),
        comments: c.comments,
        shares: c.shares,
        impressions: c.impressions,
        unique_viewers: c.unique_viewers,
    }
}

pub(super) fn reason_kind(r: &Reason) -> pb::ReasonKind {
    match r {
        Reason::ConnectionPosted(_) => pb::ReasonKind::ConnectionPosted,
        Reason::FollowedMemberPosted(_) => pb::ReasonKind::FollowedMemberPosted,
        Reason::FollowedHashtag(_) => pb::ReasonKind::FollowedHashtag,
        Reason::ConnectionEngaged(EngagementKind::Reacted, _) => pb::ReasonKind::ConnectionReacted,
        Reason::ConnectionEngaged(EngagementKind::Commented, _) => {
            pb::ReasonKind::ConnectionCommented
        }
        Reason::ConnectionEngaged(EngagementKind::Shared, _) => pb::ReasonKind::ConnectionShared,
    }
}

pub(super) fn reason_to_pb(r: &Reason, names: &HashMap<String, String>) -> pb::FeedReason {
    let name_of = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "A member".to_string())
    };
    let (member_id, hashtag, text) = match r {
        Reason::ConnectionPosted(m) => (
            m.to_string(),
            "",
            format!("{}, a connection, posted this", name_of(m)),
        ),
        Reason::FollowedMemberPosted(m) => (
            m.to_string(),
            "",
            format!("{}, whom you follow, posted this", name_of(m)),
        ),
        Reason::ConnectionEngaged(kind, m) => {
            let verb = match kind {
                EngagementKind::Reacted => "reacted to this",
                EngagementKind::Commented => "commented on this",
                EngagementKind::Shared => "shared this",
            };
            (m.to_string(), "", format!("{} {verb}", name_of(m)))
        }
        Reason::FollowedHashtag(tag) => (String::new(), &**tag, format!("You follow #{tag}")),
    };
    pb::FeedReason {
        kind: reason_kind(r) as i32,
        display_name: if member_id.is_empty() {
            String::new()
        } else {
            name_of(&member_id)
        },
        member_id,
        hashtag: hashtag.to_owned(),
        text,
    }
}

pub(super) fn reason_member(r: &Reason) -> Option<&str> {
    match r {
        Reason::ConnectionPosted(m)
        | Reason::FollowedMemberPosted(m)
        | Reason::ConnectionEngaged(_, m) => Some(m),
        Reason::FollowedHashtag(_) => None,
    }
}

/// The display names of `members` that have a profile, by id.
pub(super) fn display_names<'a>(
    index: &FeedIndex,
    members: impl Iterator<Item = &'a str>,
) -> HashMap<String, String> {
    members
        .filter_map(|id| {
            index
                .display_name(id)
                .map(|n| (id.to_owned(), n.to_owned()))
        })
        .collect()
}

/// A post as a degraded page shows it: what the index knows, without its text.
pub(super) fn outline_to_pb(post_id: &str, o: crate::index::PostOutline) -> ppb::Post {
    ppb::Post {
        id: post_id.to_owned(),
        author_id: o.author.to_string(),
        hashtags: o.hashtags,
        visibility: match o.visibility {
            crate::domain::Visibility::Public => ppb::Visibility::Public,
            crate::domain::Visibility::Connections => ppb::Visibility::Connections,
        } as i32,
        create_time: Some(pronet_common::time::to_timestamp(o.create_time)),
        ..Default::default()
    }
}

/// Where `post_id` stands in the member's feed now, or what keeps it out, as the response says
/// it.
pub(super) fn explain_to_pb(
    index: &FeedIndex,
    member_id: &str,
    post_id: &str,
    scoring: Scoring,
    now: i64,
) -> Result<pb::ExplainFeedItemResponse, Status> {
    let profile = scoring.profile.clone();
    let e = explain(index, member_id, post_id, scoring, now).ok_or(FeedError::MemberNotFound)?;
    let (position, filter) = match e.standing {
        Standing::InFeed(place) => (place, pb::FeedFilter::Unspecified),
        Standing::BelowDepth(_) => (0, pb::FeedFilter::BelowDepth),
        Standing::Engaged => (0, pb::FeedFilter::Engaged),
        Standing::AuthorCap => (0, pb::FeedFilter::AuthorCap),
        Standing::NotGathered(why) => (0, filter_of(why)),
    };
    let item = e.ranked.map(|ranked| {
        let reasons = ranked.reasons(index);
        let author_id = index.member_id(ranked.candidate.author);
        let names = display_names(
            index,
            std::iter::once(&*author_id).chain(reasons.iter().filter_map(reason_member)),
        );
        let stats = stats_to_pb(post_id, &index.counts(post_id));
        pb::FeedItem {
            predictions: predictions_to_pb(&ranked, &profile, &e.learned, index, now),
            ..item_to_pb(&ranked, &profile, &author_id, &reasons, &names, stats)
        }
    });
    Ok(pb::ExplainFeedItemResponse {
        position: position.min(i32::MAX as usize) as i32,
        filter: filter as i32,
        item,
        summary: e.summary,
        ranking_profile: profile.name.clone(),
    })
}

/// The filter a response names for a post that is not a candidate.
pub(super) fn filter_of(why: NotGathered) -> pb::FeedFilter {
    match why {
        NotGathered::UnknownPost => pb::FeedFilter::UnknownPost,
        NotGathered::OwnPost => pb::FeedFilter::OwnPost,
        NotGathered::NotVisible => pb::FeedFilter::NotVisible,
        NotGathered::Blocked => pb::FeedFilter::Blocked,
        NotGathered::NotInNetwork => pb::FeedFilter::NotInNetwork,
        NotGathered::SourceCap => pb::FeedFilter::SourceCap,
        NotGathered::Hidden => pb::FeedFilter::Hidden,
        NotGathered::MutedAuthor => pb::FeedFilter::MutedAuthor,
        NotGathered::MutedHashtag => pb::FeedFilter::MutedHashtag,
    }
}
