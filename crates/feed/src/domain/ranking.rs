//! Scoring and ordering a member's candidates with a [`RankingProfile`]: every signal is a
//! plain number computed from the candidate and what the viewer did, the score is
//! `exp(Σ weight × value)`, and each ranked item keeps its signal values so its score can be
//! explained (and recomputed) from the response.

use std::sync::Arc;

use foldhash::HashMap;

use super::features::{features, stable_hash, Features, Impression};
use super::model::RankingModel;
use super::profile::{Group, Params, RankingProfile, Signal};
use super::{AuthorRelation, Candidate, Counts, EngagementKind, Ids, Key, Reason, TagSet};

const HOUR: f64 = 3_600_000_000.0;

/// One post in the viewer's recent past: shown to them, and what they did with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryEvent {
    pub author: Key,
    pub tags: TagSet,
    /// When it happened (the engagement's time, else the post's).
    pub time: i64,
    pub reacted: bool,
    pub commented: bool,
    pub shared: bool,
    /// The viewer hid it (negative feedback).
    pub hidden: bool,
}

/// The viewer's recent past, one entry per post (see [`Viewer::learn`]).
pub type History = Vec<HistoryEvent>;

/// Decayed exposures and weighted engagement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    shown: f64,
    engaged: f64,
}

impl Tally {
    fn add(&mut self, shown: f64, engaged: f64) {
        self.shown += shown;
        self.engaged += engaged;
    }
}

/// What the viewer cares about, learned from their own engagement and impressions: per
/// hashtag and per author, the engagement per exposure, time-decayed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Viewer {
    tags: HashMap<Key, Tally>,
    authors: HashMap<Key, Tally>,
    overall: Tally,
}

impl Viewer {
    /// Learns from the viewer's history as of `now`: each post shown counts as one exposure
    /// (weighted by `0.5^(age / interest_half_life)`), and a reaction, comment or share on it
    /// as engagement weighted like the post's (1, `comment_weight`, `share_weight`). A post
    /// they hid counts as `hide_exposures` more exposures without engagement: its author and
    /// hashtags look as if passed over that many times.
    pub fn learn(history: &[HistoryEvent], params: &Params, now: i64) -> Self {
        let mut v = Self::default();
        let half_life = params.interest_half_life_hours * HOUR;
        for h in history {
            let decay = 0.5f64.powf((now - h.time).max(0) as f64 / half_life);
            let shown = if h.hidden {
                decay * (1.0 + params.hide_exposures)
            } else {
                decay
            };
            let engaged = decay
                * (f64::from(u8::from(h.reacted))
                    + params.comment_weight * f64::from(u8::from(h.commented))
                    + params.share_weight * f64::from(u8::from(h.shared)));
            v.overall.add(decay, engaged);
            v.authors.entry(h.author).or_default().add(shown, engaged);
            for t in h.tags.as_slice() {
                v.tags.entry(*t).or_default().add(shown, engaged);
            }
        }
        v
    }

    /// The `hashtag_interest` signal of a post with `tags`.
    pub fn hashtag_interest(&self, tags: &TagSet, p: &Params) -> f64 {
        if tags.is_empty() || self.tags.is_empty() {
            return 0.0;
        }
        let base = base_rate(&self.overall, p);
        let sum: f64 = tags
            .as_slice()
            .iter()
            .map(|t| self.tags.get(t).map_or(0.0, |t| lift(t, base, p)))
            .sum();
        sum / tags.as_slice().len() as f64
    }

    /// The `author_affinity` signal of a post by `author`.
    pub fn author_affinity(&self, author: Key, p: &Params) -> f64 {
        match self.authors.get(&author) {
            Some(t) => lift(t, base_rate(&self.overall, p), p),
            None => 0.0,
        }
    }
}

/// One decayed tally kept up to date event by event: its values as of `at`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Timed {
    tally: Tally,
    at: i64,
}

impl Timed {
    /// The tally as of `t` (not before `at`).
    fn as_of(&self, t: i64, half_life: f64) -> Tally {
        let d = 0.5f64.powf((t - self.at).max(0) as f64 / half_life);
        Tally {
            shown: self.tally.shown * d,
            engaged: self.tally.engaged * d,
        }
    }

    fn add(&mut self, shown: f64, engaged: f64, t: i64, half_life: f64) {
        let mut now = self.as_of(t, half_life);
        now.add(shown, engaged);
        *self = Self {
            tally: now,
            at: t.max(self.at),
        };
    }
}

/// What a member cares about, kept up to date as their views and engagement come in time
/// order (the trainer's replay of the log): the same decayed tallies as [`Viewer::learn`]
/// reads from a history, readable as of any time since the last event, so the model's
/// interest features are computed as of each view. Keyed by stable hashes.
#[derive(Debug, Clone, Default)]
pub struct Taste {
    tags: HashMap<u64, Timed>,
    authors: HashMap<u64, Timed>,
    overall: Timed,
}

impl Taste {
    /// The member was shown a post by `author` with `tags` at `t`.
    pub fn shown(&mut self, tags: &[u64], author: u64, t: i64, p: &Params) {
        self.add(tags, author, 1.0, 0.0, t, p);
    }

    /// The member engaged with it (`weight`: 1 a reaction, `comment_weight`, `share_weight`).
    pub fn engaged(&mut self, tags: &[u64], author: u64, weight: f64, t: i64, p: &Params) {
        self.add(tags, author, 0.0, weight, t, p);
    }

    fn add(&mut self, tags: &[u64], author: u64, shown: f64, engaged: f64, t: i64, p: &Params) {
        let hl = p.interest_half_life_hours * HOUR;
        self.overall.add(shown, engaged, t, hl);
        self.authors
            .entry(author)
            .or_default()
            .add(shown, engaged, t, hl);
        for tag in tags {
            self.tags
                .entry(*tag)
                .or_default()
                .add(shown, engaged, t, hl);
        }
    }

    /// `hashtag_interest` and `author_affinity` of a post as of `t`, as [`Viewer`] computes them.
    pub fn lifts(&self, tags: &[u64], author: u64, t: i64, p: &Params) -> (f64, f64) {
        let hl = p.interest_half_life_hours * HOUR;
        let base = base_rate(&self.overall.as_of(t, hl), p);
        let interest = if tags.is_empty() || self.tags.is_empty() {
            0.0
        } else {
            tags.iter()
                .map(|tag| {
                    self.tags
                        .get(tag)
                        .map_or(0.0, |x| lift(&x.as_of(t, hl), base, p))
                })
                .sum::<f64>()
                / tags.len() as f64
        };
        let affinity = self
            .authors
            .get(&author)
            .map_or(0.0, |x| lift(&x.as_of(t, hl), base, p));
        (interest, affinity)
    }
}

/// A member's overall rate, smoothed toward the profile's prior.
fn base_rate(overall: &Tally, p: &Params) -> f64 {
    let k = p.interest_prior_strength;
    (overall.engaged + k * p.prior_rate) / (overall.shown + k)
}

/// `ln(r / base)` for one tally, smoothed toward the base rate.
fn lift(t: &Tally, base: f64, p: &Params) -> f64 {
    let k = p.interest_prior_strength;
    ((t.engaged + k * base) / (t.shown + k) / base).ln()
}

/// Weighted engagement of a post's counts.
fn weighted(c: &Counts, p: &Params) -> f64 {
    let rw = p.reaction_weights.as_array();
    let reactions: f64 = c
        .reactions
        .iter()
        .zip(rw)
        .map(|(n, w)| (*n).max(0) as f64 * w)
        .sum();
    reactions
        + p.comment_weight * c.comments.max(0) as f64
        + p.share_weight * c.shares.max(0) as f64
}

/// What the learned part of a score needs besides the candidate: the model in use and the
/// viewer (the stable hash of their id).
#[derive(Debug, Clone)]
pub struct Learned {
    pub model: Arc<RankingModel>,
    pub member: u64,
    /// What the viewer cares about, learned with the model's fixed parameters
    /// ([`MODEL_PARAMS`]), as the trainer's replay computes it.
    pub viewer: Arc<Viewer>,
}

/// The interest parameters the model's `hashtag_interest` and `author_affinity` features are
/// computed with, in training and in serving alike (the defaults of a profile's params).
pub fn model_params() -> Params {
    Params::default()
}

impl Learned {
    /// The priors (no model trained yet) for an unnamed viewer.
    pub fn prior() -> Self {
        Self {
            model: Arc::new(RankingModel::prior()),
            member: 0,
            viewer: Arc::default(),
        }
    }

    /// The model for one viewer who has no history to learn from (or whose profile does not
    /// read the model).
    pub fn without_history(model: Arc<RankingModel>, member_id: &str) -> Self {
        Self {
            model,
            member: stable_hash(member_id),
            viewer: Arc::default(),
        }
    }

    /// The model for one viewer, with what they care about learned from `history` as of `now`.
    pub fn new(
        model: Arc<RankingModel>,
        member_id: &str,
        history: &[HistoryEvent],
        now: i64,
    ) -> Self {
        Self {
            model,
            member: stable_hash(member_id),
            viewer: Arc::new(Viewer::learn(history, &model_params(), now)),
        }
    }

    /// The features of showing candidate `c` to the viewer at `now`.
    pub fn features(&self, c: &Candidate, ids: &impl Ids, now: i64) -> Features {
        let post = ids.post_hash(c.post);
        let mut tags = [0u64; super::RANKED_TAGS];
        let n = c.tags.as_slice().len();
        for (h, t) in tags.iter_mut().zip(c.tags.as_slice()) {
            *h = ids.hashtag_hash(*t);
        }
        let p = model_params();
        features(&Impression {
            member: self.member,
            post,
            interest: self.viewer.hashtag_interest(&c.tags, &p),
            affinity: self.viewer.author_affinity(c.author, &p),
            author: ids.member_hash(c.author),
            tags: &tags[..n],
            create_time: c.create_time,
            counts: &c.counts,
            relation: c.relation,
            followed_hashtags: c.matched_hashtags.len(),
            at: now,
        })
    }
}

/// The value of each signal for one candidate (those a profile weighs at 0 are left at 0).
/// `author_repeat` and `topic_repeat` depend on the ranking around the item and are set while
/// ordering.
pub fn signal_values(
    profile: &RankingProfile,
    c: &Candidate,
    viewer: &Viewer,
    learned: &Learned,
    ids: &impl Ids,
    now: i64,
) -> [f64; Signal::COUNT] {
    let p = &profile.params;
    let mut x = [0.0; Signal::COUNT];
    let on = |s: Signal| profile.weight(s) != 0.0;
    if on(Signal::ExpectedEngagement) {
        let f = learned.features(c, ids, now);
        let ev = learned.model.expected_value(&f, &profile.model.as_array());
        x[Signal::ExpectedEngagement as usize] = ev.max(1e-12).ln();
    }
    let age_hours = (now - c.create_time).max(0) as f64 / HOUR;
    let total_reactions = c.counts.total_reactions().max(0);
    if on(Signal::Quality) || on(Signal::Popularity) {
        let e = weighted(&c.counts, p);
        let events = total_reactions + c.counts.comments.max(0) + c.counts.shares.max(0);
        let exposures = c.counts.impressions.max(events).max(0) as f64;
        let k = p.prior_strength;
        let q = (e + k * p.prior_rate) / (exposures + k);
        x[Signal::Quality as usize] = if q > 0.0 {
            (q / p.prior_rate).ln()
        } else {
            0.0
        };
        x[Signal::Popularity as usize] = e.ln_1p();
    }
    x[Signal::Freshness as usize] = -std::f64::consts::LN_2 * age_hours / p.half_life_hours;
    if on(Signal::AgeGravity) {
        x[Signal::AgeGravity as usize] = -(age_hours + 2.0).ln();
    }
    if on(Signal::Votes) {
        x[Signal::Votes as usize] = ((total_reactions as f64 + 2.0).max(2.0)).ln().ln();
    }
    if on(Signal::XRate) {
        let x_score = 27.0 * c.counts.comments.max(0) as f64
            + c.counts.shares.max(0) as f64
            + 0.5 * total_reactions as f64;
        x[Signal::XRate as usize] = (0.001 + x_score / c.counts.impressions.max(1) as f64).ln();
    }
    if on(Signal::HashtagInterest) {
        x[Signal::HashtagInterest as usize] = viewer.hashtag_interest(&c.tags, p);
    }
    if on(Signal::AuthorAffinity) {
        x[Signal::AuthorAffinity as usize] = viewer.author_affinity(c.author, p);
    }
    x[Signal::Tie as usize] = match c.relation {
        AuthorRelation::Connection => p.tie_connection,
        AuthorRelation::Followed => p.tie_followed,
        AuthorRelation::Other => p.tie_other,
    }
    .ln();
    x[Signal::SocialProof as usize] = (c.distinct_engagers() as f64).ln_1p();
    x[Signal::FollowedHashtag as usize] = c.matched_hashtags.len().min(2) as f64;
    x[Signal::Seen as usize] = f64::from(u8::from(c.seen));
    x
}

/// `Σ weight × value`.
fn log_score(profile: &RankingProfile, x: &[f64; Signal::COUNT]) -> f64 {
    profile.weights.iter().zip(x).map(|(w, v)| w * v).sum()
}

/// The four factors of the score (each the exp of its signals' contributions); their product
/// is the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakdown {
    pub engagement: f64,
    pub freshness: f64,
    pub affinity: f64,
    pub diversity: f64,
}

/// One signal of a ranked item, as responses show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalValue {
    pub signal: Signal,
    pub value: f64,
    pub weight: f64,
    /// `weight × value`; the score is `exp` of their sum.
    pub contribution: f64,
}

/// One ranked item: the candidate (keys; ids and reasons are read for the items a page
/// shows), its signals and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    pub values: [f64; Signal::COUNT],
    pub score: f64,
}

impl Ranked {
    /// The candidate scored on its own, as [`FeedRanker::rank`] would before the rules that
    /// depend on the items around it (filters, author repeats, topic mixing): for explaining
    /// a post the ranking left out.
    pub fn alone(
        profile: &RankingProfile,
        candidate: Candidate,
        viewer: &Viewer,
        learned: &Learned,
        ids: &impl Ids,
        now: i64,
    ) -> Self {
        let values = signal_values(profile, &candidate, viewer, learned, ids, now);
        let score = log_score(profile, &values).exp();
        Self {
            candidate,
            values,
            score,
        }
    }

    /// Why the item is in the feed, named.
    pub fn reasons(&self, ids: &impl Ids) -> Vec<Reason> {
        super::reasons(&self.candidate, ids)
    }

    /// The signals the profile weighs (non-zero weight), in [`Signal::ALL`] order.
    pub fn signals(&self, profile: &RankingProfile) -> Vec<SignalValue> {
        Signal::ALL
            .into_iter()
            .filter(|s| profile.weight(*s) != 0.0)
            .map(|s| SignalValue {
                signal: s,
                value: self.values[s as usize],
                weight: profile.weight(s),
                contribution: profile.weight(s) * self.values[s as usize],
            })
            .collect()
    }

    pub fn breakdown(&self, profile: &RankingProfile) -> Breakdown {
        let mut sums = [0.0f64; 4];
        for s in self.signals(profile) {
            let g = match s.signal.group() {
                Group::Engagement => 0,
                Group::Freshness => 1,
                Group::Affinity => 2,
                Group::Diversity => 3,
            };
            sums[g] += s.contribution;
        }
        Breakdown {
            engagement: sums[0].exp(),
            freshness: sums[1].exp(),
            affinity: sums[2].exp(),
            diversity: sums[3].exp(),
        }
    }
}

/// Candidates left out of a ranking, by the rule that dropped them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The viewer engaged with them (`drop_engaged`).
    pub engaged: usize,
    /// Past the profile's `author_cap`.
    pub capped: usize,
}

/// A ranking: the best items first and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub items: Vec<Ranked>,
    pub dropped: Dropped,
}

/// Scores and orders candidates with one profile (and, for `expected_engagement`, the
/// learned model).
#[derive(Debug, Clone)]
pub struct FeedRanker {
    pub profile: Arc<RankingProfile>,
    pub learned: Learned,
}

impl FeedRanker {
    /// A ranker with the model's priors (see [`FeedRanker::with_model`]).
    pub fn new(profile: Arc<RankingProfile>) -> Self {
        Self {
            profile,
            learned: Learned::prior(),
        }
    }

    /// Scores `expected_engagement` with `learned`.
    pub fn with_model(mut self, learned: Learned) -> Self {
        self.learned = learned;
        self
    }

    /// Ranks `candidates` best first and keeps the best `depth`:
    /// 1. drops posts the viewer engaged with (when the profile says so);
    /// 2. scores the rest from their signals;
    /// 3. walks them best first per author: the k-th gets `author_repeat = k`, and those past
    ///    `author_cap` leave;
    /// 4. fills the ranking greedily: each place takes, among the next best few, the one
    ///    whose score after `topic_repeat` (hashtags shared with the items just above) is
    ///    highest.
    ///
    /// Ties go to the newer post, then the larger id, so the order is total and repeatable.
    pub fn rank(
        &self,
        candidates: Vec<Candidate>,
        viewer: &Viewer,
        ids: &impl Ids,
        now: i64,
        depth: usize,
    ) -> Ranking {
        let profile = &*self.profile;
        let params = &profile.params;
        let mut dropped = Dropped::default();
        let mut items: Vec<Ranked> = Vec::with_capacity(candidates.len());
        for c in candidates {
            if params.drop_engaged && c.engaged_by_viewer {
                dropped.engaged += 1;
                continue;
            }
            let values = signal_values(profile, &c, viewer, &self.learned, ids, now);
            let score = log_score(profile, &values);
            items.push(Ranked {
                candidate: c,
                values,
                score,
            });
        }
        // Scores are logs while ordering; exp() at the end.
        let best_first = |a: &Ranked, b: &Ranked| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| b.candidate.create_time.cmp(&a.candidate.create_time))
                .then_with(|| {
                    ids.post_id(b.candidate.post)
                        .cmp(&ids.post_id(a.candidate.post))
                })
        };
        items.sort_unstable_by(best_first);

        let repeat_weight = profile.weight(Signal::AuthorRepeat);
        if repeat_weight != 0.0 || params.author_cap > 0 {
            let mut per_author: HashMap<Key, u32> = HashMap::default();
            per_author.reserve(items.len());
            items.retain_mut(|r| {
                let k = per_author.entry(r.candidate.author).or_insert(0);
                if params.author_cap > 0 && *k as usize >= params.author_cap {
                    dropped.capped += 1;
                    return false;
                }
                r.values[Signal::AuthorRepeat as usize] = f64::from(*k);
                r.score += repeat_weight * f64::from(*k);
                *k += 1;
                true
            });
            if repeat_weight != 0.0 {
                items.sort_unstable_by(best_first);
            }
        }

        let topic_weight = profile.weight(Signal::TopicRepeat);
        let window = params.diversity_window;
        if topic_weight != 0.0 && window > 0 {
            const LOOKAHEAD: usize = 16;
            // How many of the last `window` placed items carry each hashtag.
            let mut in_window: HashMap<Key, u32> = HashMap::default();
            let places = depth.min(items.len());
            for at in 0..places {
                let overlap = |r: &Ranked| -> f64 {
                    r.candidate
                        .tags
                        .as_slice()
                        .iter()
                        .map(|t| in_window.get(t).copied().unwrap_or(0))
                        .sum::<u32>() as f64
                };
                let end = (at + LOOKAHEAD).min(items.len());
                let mut best = at;
                let mut best_overlap = overlap(&items[at]);
                let mut best_score = items[at].score + topic_weight * best_overlap;
                for (i, item) in items.iter().enumerate().take(end).skip(at + 1) {
                    // Sorted by score before the penalty: once a penalty can only lower it,
                    // nothing further down can beat the best.
                    if topic_weight < 0.0 && item.score <= best_score {
                        break;
                    }
                    let o = overlap(item);
                    let s = item.score + topic_weight * o;
                    // Strictly better only: on equal scores the earlier (better base) wins.
                    if s > best_score {
                        (best, best_overlap, best_score) = (i, o, s);
                    }
                }
                // Keep the rest in their order: move the pick up, shift the skipped down.
                items[at..=best].rotate_right(1);
                items[at].values[Signal::TopicRepeat as usize] = best_overlap;
                items[at].score = best_score;
                for t in items[at].candidate.tags.as_slice() {
                    *in_window.entry(*t).or_insert(0) += 1;
                }
                if at >= window {
                    for t in items[at - window].candidate.tags.as_slice() {
                        if let Some(n) = in_window.get_mut(t) {
                            *n = n.saturating_sub(1);
                        }
                    }
                }
            }
        }
        items.truncate(depth);
        for r in &mut items {
            r.score = r.score.exp();
        }
        Ranking { items, dropped }
    }
}

impl HistoryEvent {
    /// Records that the viewer engaged with the post this way.
    pub fn mark(&mut self, kind: EngagementKind) {
        match kind {
            EngagementKind::Reacted => self.reacted = true,
            EngagementKind::Commented => self.commented = true,
            EngagementKind::Shared => self.shared = true,
        }
    }
}

#[cfg(test)]
mod tests;
