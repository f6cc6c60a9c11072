//! A member's feed and its explanations, over any [`CandidateSource`] (the index): gathering,
//! learning what the member cares about and ranking make a feed; the same steps say where one
//! post stands in it, or which rule keeps it out.

use std::sync::Arc;

use super::model::RankingModel;
use super::ranking::{History, Learned, Ranking};
use super::{limits, Candidate, FeedRanker, Ids, Ranked, RankingProfile, Viewer};

/// How a feed is scored: the ranking profile, and the learned model its
/// `expected_engagement` reads (the priors when none is given).
#[derive(Debug, Clone)]
pub struct Scoring {
    pub profile: Arc<RankingProfile>,
    pub model: Arc<RankingModel>,
}

impl From<Arc<RankingProfile>> for Scoring {
    fn from(profile: Arc<RankingProfile>) -> Self {
        Self {
            profile,
            model: Arc::new(RankingModel::prior()),
        }
    }
}

impl Scoring {
    /// The viewer's ranker, and what they learned (empty when the profile does not read it).
    fn ranker(&self, member_id: &str, history: &History, as_of: i64) -> (FeedRanker, Viewer) {
        let profile = &self.profile;
        let reads_history = profile.weight(super::Signal::HashtagInterest) != 0.0
            || profile.weight(super::Signal::AuthorAffinity) != 0.0;
        let viewer = if reads_history {
            Viewer::learn(history, &profile.params, as_of)
        } else {
            Viewer::default()
        };
        let learned = if profile.weight(super::Signal::ExpectedEngagement) != 0.0 {
            Learned::new(self.model.clone(), member_id, history, as_of)
        } else {
            Learned::without_history(self.model.clone(), member_id)
        };
        let ranker = FeedRanker::new(profile.clone()).with_model(learned);
        (ranker, viewer)
    }
}

/// What a [`CandidateSource`] found for a member.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub candidates: Vec<Candidate>,
    /// The member's own recent past (what they were shown and engaged with), to learn from.
    pub history: History,
    /// Posts by authors considered plus hashtag posts, before visibility filters.
    pub considered: usize,
}

/// Why a post is not among a member's candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotGathered {
    /// Unknown, deleted, or outside the window.
    UnknownPost,
    OwnPost,
    /// Connections-only and not connected.
    NotVisible,
    Blocked,
    /// No candidate source brings it.
    NotInNetwork,
    /// A source brings it, but newer posts filled that source's cap.
    SourceCap,
    /// The member hid it.
    Hidden,
    /// The member muted its author.
    MutedAuthor,
    /// The member muted one of its hashtags.
    MutedHashtag,
}

/// Where a feed's candidates come from.
pub trait CandidateSource: Ids {
    /// The member's candidates as of `as_of`; `None` when the member has no profile.
    fn gather(&self, member_id: &str, as_of: i64) -> Option<Gathered>;

    /// Why `post_id` is not among the member's candidates (for a post [`Self::gather`] left
    /// out); `None` when the member has no profile.
    fn why_not_gathered(&self, member_id: &str, post_id: &str, as_of: i64) -> Option<NotGathered>;
}

/// A member's ranked feed.
#[derive(Debug)]
pub struct RankedFeed {
    pub ranking: Ranking,
    /// Candidates scored.
    pub scored: usize,
    /// Posts considered before visibility filters.
    pub considered: usize,
    /// Entries of the member's past learned from.
    pub history: usize,
    /// The model and what it knows of the viewer, to show each item's predictions.
    pub learned: Learned,
}

/// The member's feed as of `as_of` with `profile`, at most `depth` items; `None` when the
/// member has no profile.
pub fn rank_feed(
    source: &impl CandidateSource,
    member_id: &str,
    as_of: i64,
    scoring: impl Into<Scoring>,
    depth: usize,
) -> Option<RankedFeed> {
    let gathered = source.gather(member_id, as_of)?;
    let scored = gathered.candidates.len();
    let (ranker, viewer) = scoring.into().ranker(member_id, &gathered.history, as_of);
    let ranking = ranker.rank(gathered.candidates, &viewer, source, as_of, depth);
    Some(RankedFeed {
        learned: ranker.learned,
        ranking,
        scored,
        considered: gathered.considered,
        history: gathered.history.len(),
    })
}

/// Where a post stands in a member's feed, or the rule that keeps it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In the feed at this 1-based place.
    InFeed(usize),
    /// Not a candidate.
    NotGathered(NotGathered),
    /// Ranked at this 1-based place, below the deepest page.
    BelowDepth(usize),
    /// The member engaged with it, and the profile drops engaged posts.
    Engaged,
    /// The author already has the profile's maximum of posts above it.
    AuthorCap,
}

/// An answer to "why am I (not) seeing this post".
#[derive(Debug, Clone)]
pub struct Explanation {
    pub standing: Standing,
    /// The post as ranked (or, when a ranking rule left it out, scored alone); `None` when it
    /// is not a candidate.
    pub ranked: Option<Ranked>,
    /// The same in a sentence.
    pub summary: String,
    /// The model and what it knows of the viewer (the priors when the post is no candidate).
    pub learned: Learned,
}

/// Where `post_id` stands in the member's feed as of `now`; `None` when the member has no
/// profile.
pub fn explain(
    source: &impl CandidateSource,
    member_id: &str,
    post_id: &str,
    scoring: impl Into<Scoring>,
    now: i64,
) -> Option<Explanation> {
    let scoring = scoring.into();
    let profile = scoring.profile.clone();
    let gathered = source.gather(member_id, now)?;
    let found = gathered
        .candidates
        .iter()
        .position(|c| source.post_id(c.post).as_deref() == Some(post_id));
    let Some(at) = found else {
        let why = source
            .why_not_gathered(member_id, post_id, now)
            .unwrap_or(NotGathered::NotInNetwork);
        return Some(Explanation {
            standing: Standing::NotGathered(why),
            ranked: None,
            summary: not_gathered_summary(why).to_owned(),
            learned: Learned::prior(),
        });
    };
    let (ranker, viewer) = scoring.ranker(member_id, &gathered.history, now);
    let candidate = gathered.candidates[at].clone();
    let ranking = ranker.rank(gathered.candidates, &viewer, source, now, usize::MAX);
    let place = ranking
        .items
        .iter()
        .position(|r| r.candidate.post == candidate.post);
    let ranked = match place {
        Some(i) => ranking.items[i].clone(),
        // Left out by a rule of the ranking: scored alone, as it would have been.
        None => Ranked::alone(&profile, candidate, &viewer, &ranker.learned, source, now),
    };
    let (standing, summary) = match place {
        Some(i) if i < limits::MAX_FEED_DEPTH => (
            Standing::InFeed(i + 1),
            format!(
                "In your feed at place {} of {}, ranked by profile {:?}.",
                i + 1,
                ranking.items.len().min(limits::MAX_FEED_DEPTH),
                profile.name
            ),
        ),
        Some(i) => (
            Standing::BelowDepth(i + 1),
            format!(
                "Ranked at place {}, below the deepest page ({}).",
                i + 1,
                limits::MAX_FEED_DEPTH
            ),
        ),
        None if profile.params.drop_engaged && ranked.candidate.engaged_by_viewer => (
            Standing::Engaged,
            "You already reacted to, commented on or shared this post.".to_owned(),
        ),
        None => (
            Standing::AuthorCap,
            format!(
                "The author already has {} posts ranked above this one.",
                profile.params.author_cap
            ),
        ),
    };
    Some(Explanation {
        standing,
        ranked: Some(ranked),
        summary,
        learned: ranker.learned,
    })
}

/// The sentence for a post that is not a candidate.
fn not_gathered_summary(why: NotGathered) -> &'static str {
    match why {
        NotGathered::UnknownPost => {
            "The post does not exist, was deleted, or is older than the feed's window."
        }
        NotGathered::OwnPost => "You wrote this post.",
        NotGathered::NotVisible => {
            "The post is for the author's connections, and you are not connected."
        }
        NotGathered::Blocked => "You blocked the author, or the author blocked you.",
        NotGathered::NotInNetwork => {
            "Nothing brings it to you: the author is not a connection or followed, it carries no hashtag you follow, and no connection engaged with it recently."
        }
        NotGathered::SourceCap => {
            "Newer posts of the same author or hashtag filled the feed's per-source limit."
        }
        NotGathered::Hidden => "You hid this post (UnhidePost shows it again).",
        NotGathered::MutedAuthor => "You muted the author (UnmuteAuthor hears from them again).",
        NotGathered::MutedHashtag => {
            "You muted one of the post's hashtags (UnmuteHashtag lifts it)."
        }
    }
}

#[cfg(test)]
mod tests;
