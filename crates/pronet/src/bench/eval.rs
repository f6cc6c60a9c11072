//! `bench eval`: how good is a ranking? A suite of simulated worlds, each with its own planted
//! ground truth, loaded into a fresh suite through its public API; the feed's model is trained
//! (FeedService.TrainRankingModel), then GetFeed is asked, per ranking profile, for a sample of
//! members, and each served page is scored by NDCG@10 against the true engagement
//! probabilities of the posts the member has not seen.
//!
//! A world:
//! - members on a real graph (an edge list such as `../shared/datasets/socfb-Reed98`) or a
//!   generated one; each has hidden interests over a few topics (hashtags), homophilous: a
//!   member's main topic is, most of the time, the one most of their connections have;
//! - posts with a hidden topic (drawn from the author's interests) and quality; how many each
//!   member writes is skewed (a few write a lot);
//! - a member engages with a post with probability (the ground truth, a [`Truth`])
//!   `P = peak × interest(topic)^a × quality^b × tie × 0.5^(age / half_life)`
//!   where the mix sets `a` and `b` (balanced: 1 and 1; interest-dominated: 1.5 and 0.3;
//!   quality-dominated: 0.3 and 1.5), tie is 1 for a connection's post and `tie_other`
//!   otherwise, and half-lives differ from world to world (12 h to a week);
//! - a history drawn from it: each member was shown some of the posts their network brings
//!   (older posts more likely), and engaged with each shown post with the truth's probability
//!   at the time they were shown it (a reaction, sometimes also a comment or share;
//!   "insightful" more often on good posts).
//!
//! Relevance of a served post for member m: its truth `P` now if m has not seen it (0 if seen:
//! showing it again is worth nothing). The ideal page is the 10 unseen posts of m's candidate
//! pool (their connections' posts, their followed topic's, those their connections engaged
//! with) with the highest `P`: the oracle, NDCG 1 by definition.
//!
//! Nobody can tune for one world: [`standard_suite`] holds worlds whose truths differ, and the
//! classic baselines get their best shot on each, a time-decayed popularity and a time-decayed
//! X 2023 rank over a grid of half-lives, the best of each family picked on that world's scored
//! members (in-sample: an upper bound of the baseline). The other profiles (the default, the
//! learned one) are scored as they are.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::time::{now_micros, to_timestamp};
use pronet_feed::domain::profile::Params;
use pronet_feed::domain::{ProfileSet, RankingProfile, Signal};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::feed::v1::feed_service_client::FeedServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

use super::graph::{member_ids, parse_edge_list, post_id, preferential_attachment};
use crate::rng::SplitMix64;
use crate::suite::{RunningSuite, Storage, SuiteAddrs, SuiteConfig};

const HOUR: f64 = 3_600_000_000.0;
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// The page scored.
const K: usize = 10;
/// GetFeed calls in flight while scoring.
const SCORING_CONCURRENCY: usize = 4;

/// The classic rankings pronet is compared with (profiles of the built-in file).
pub const BASELINES: [&str; 4] = ["chronological", "popularity", "lemmy_hot", "x_2023"];

/// The tuned baseline families: a classic engagement signal times freshness, one profile per
/// half-life of [`HALF_LIFE_GRID`], named `{family}_{hours}h`.
pub const TUNED_FAMILIES: [(&str, Signal); 2] = [
    ("popularity_decay", Signal::Popularity),
    ("x_2023_decay", Signal::XRate),
];

/// The half-lives (hours) the tuned baselines try. Whole hours: a profile's name allows no
/// '.'. The short end matters: on most worlds the decayed baselines do best at a few hours
/// (raw counts grow with a post's exposure, so they need a steep decay to favour the unseen
/// new posts), whatever the truth's own half-life.
pub const HALF_LIFE_GRID: [f64; 10] = [1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 168.0, 336.0];

/// Where the Reed98 graph lives under the datasets directory.
pub const REED98_EDGES: &str = "socfb-Reed98/socfb-Reed98.edges";

/// How a member's engagement depends on a post's topic and quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngagementMix {
    /// `interest × quality`.
    Balanced,
    /// `interest^1.5 × quality^0.3`: what the post is about matters, how good it is little.
    Interest,
    /// `interest^0.3 × quality^1.5`: good posts win whatever their topic.
    Quality,
}

impl EngagementMix {
    pub fn name(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::Interest => "interest",
            Self::Quality => "quality",
        }
    }

    /// (peak probability, interest exponent, quality exponent). The peaks keep the engagement
    /// rate over the impressions of a world near the balanced one's (a few percent), so the
    /// mixes differ in what drives engagement, not in how much there is.
    fn law(self) -> (f64, f64, f64) {
        match self {
            Self::Balanced => (0.6, 1.0, 1.0),
            Self::Interest => (0.32, 1.5, 0.3),
            Self::Quality => (0.6, 0.3, 1.5),
        }
    }
}

/// A world's ground truth: the probability that a member engages with a post shown to them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Truth {
    /// Hours for the interest in a post to halve.
    pub half_life_hours: f64,
    pub mix: EngagementMix,
    /// The tie factor of a post by someone not connected to the member (a connection's: 1).
    pub tie_other: f64,
}

impl Default for Truth {
    fn default() -> Self {
        Self {
            half_life_hours: 48.0,
            mix: EngagementMix::Balanced,
            tie_other: 0.5,
        }
    }
}

impl Truth {
    /// `peak × interest^a × quality^b × tie × 0.5^(age / half_life)`; at most the mix's peak
    /// (interest, quality and tie are at most 1).
    pub fn probability(&self, interest: f64, quality: f64, connected: bool, age_hours: f64) -> f64 {
        let (peak, a, b) = self.mix.law();
        let tie = if connected { 1.0 } else { self.tie_other };
        peak * interest.powf(a)
            * quality.powf(b)
            * tie
            * 0.5f64.powf(age_hours.max(0.0) / self.half_life_hours)
    }

    /// E.g. `interest-12h-tie0.5`.
    pub fn label(&self) -> String {
        format!(
            "{}-{}h-tie{}",
            self.mix.name(),
            self.half_life_hours,
            self.tie_other
        )
    }
}

/// The size and shape of one simulated world.
#[derive(Debug, Clone)]
pub struct EvalShape {
    /// The world's name in reports.
    pub name: String,
    /// A loaded edge list (members, edges); `None`: a generated graph of `members`.
    pub graph: Option<(usize, Vec<(usize, usize)>)>,
    pub members: usize,
    pub mean_degree: usize,
    pub topics: usize,
    /// Posts a member writes on average (exponentially distributed).
    pub posts_per_member: f64,
    /// Posts are spread over this many days before now.
    pub days: f64,
    /// Share of the posts in a member's network they were shown (for posts a day old or more;
    /// fewer of the newer ones).
    pub seen_fraction: f64,
    /// Share of members who follow their main topic's hashtag.
    pub follow_fraction: f64,
    /// Members whose feeds are scored.
    pub sample: usize,
    pub seed: u64,
    pub truth: Truth,
}

impl Default for EvalShape {
    fn default() -> Self {
        Self {
            name: "custom".into(),
            graph: None,
            members: 1000,
            mean_degree: 40,
            topics: 12,
            posts_per_member: 10.0,
            days: 7.0,
            seen_fraction: 0.4,
            follow_fraction: 0.3,
            sample: 200,
            seed: 7,
            truth: Truth::default(),
        }
    }
}

/// The graph of a named world.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorldGraph {
    /// Preferential attachment.
    Generated { members: usize, mean_degree: usize },
    /// The Reed College Facebook graph ([`REED98_EDGES`] under the datasets directory).
    Reed98,
}

/// A named world of a suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorldSpec {
    pub name: &'static str,
    pub graph: WorldGraph,
    pub truth: Truth,
    pub seed: u64,
    pub sample: usize,
}

impl WorldSpec {
    /// The world's shape; a Reed98 world reads its graph from `datasets`.
    pub fn shape(&self, datasets: &Path) -> anyhow::Result<EvalShape> {
        let mut shape = EvalShape {
            name: self.name.into(),
            sample: self.sample,
            seed: self.seed,
            truth: self.truth,
            ..Default::default()
        };
        match self.graph {
            WorldGraph::Generated {
                members,
                mean_degree,
            } => {
                shape.members = members;
                shape.mean_degree = mean_degree;
            }
            WorldGraph::Reed98 => {
                let path = datasets.join(REED98_EDGES);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {} (see --datasets)", path.display()))?;
                let graph = parse_edge_list(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                shape.members = graph.0;
                shape.graph = Some(graph);
            }
        }
        Ok(shape)
    }
}

const fn world(
    name: &'static str,
    graph: WorldGraph,
    mix: EngagementMix,
    half_life_hours: f64,
    tie_other: f64,
    seed: u64,
    sample: usize,
) -> WorldSpec {
    WorldSpec {
        name,
        graph,
        truth: Truth {
            half_life_hours,
            mix,
            tie_other,
        },
        seed,
        sample,
    }
}

const GEN_1000: WorldGraph = WorldGraph::Generated {
    members: 1000,
    mean_degree: 40,
};
const GEN_300: WorldGraph = WorldGraph::Generated {
    members: 300,
    mean_degree: 20,
};

/// The worlds `bench eval --suite standard` runs: truths that differ in what drives engagement,
/// how fast interest fades and how much ties matter, on generated and real graphs.
pub fn standard_suite() -> Vec<WorldSpec> {
    use EngagementMix::*;
    vec![
        world("gen-balanced-48h", GEN_1000, Balanced, 48.0, 0.5, 7, 200),
        world("gen-interest-12h", GEN_1000, Interest, 12.0, 0.5, 21, 200),
        world("gen-quality-168h", GEN_1000, Quality, 168.0, 0.5, 33, 200),
        world(
            "reed98-balanced-48h",
            WorldGraph::Reed98,
            Balanced,
            48.0,
            0.3,
            45,
            200,
        ),
        world(
            "reed98-interest-168h",
            WorldGraph::Reed98,
            Interest,
            168.0,
            0.7,
            57,
            200,
        ),
        world(
            "gen-balanced-12h-seed2",
            GEN_1000,
            Balanced,
            12.0,
            0.25,
            69,
            200,
        ),
    ]
}

/// The worlds of the CI floor test (`--suite small`): small generated graphs, two truths far
/// apart.
pub fn small_suite() -> Vec<WorldSpec> {
    use EngagementMix::*;
    vec![
        world("small-interest-12h", GEN_300, Interest, 12.0, 0.5, 11, 80),
        world("small-quality-168h", GEN_300, Quality, 168.0, 0.5, 12, 80),
    ]
}

/// A named world of either suite.
pub fn find_world(name: &str) -> Option<WorldSpec> {
    standard_suite()
        .into_iter()
        .chain(small_suite())
        .find(|w| w.name == name)
}

#[derive(Debug, Clone)]
struct SimPost {
    author: usize,
    topic: usize,
    quality: f64,
    create: i64,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Impression(usize, usize, i64),
    React(usize, usize, epb::ReactionType, i64),
    Comment(usize, usize, i64),
    Share(usize, usize, i64),
}

/// The simulated world and its ground truth.
struct World {
    members: usize,
    edges: Vec<(usize, usize)>,
    adj: Vec<HashSet<usize>>,
    interests: Vec<Vec<f64>>,
    follows: Vec<Option<usize>>,
    posts: Vec<SimPost>,
    seen: Vec<HashSet<usize>>,
    acts: Vec<Act>,
    truth: Truth,
    now: i64,
}

fn topic_name(t: usize) -> String {
    format!("topic{t}")
}

impl World {
    fn build(shape: &EvalShape, now: i64) -> Self {
        let mut rng = SplitMix64::new(shape.seed ^ 0xe7a1_0000);
        let (members, edges) = match &shape.graph {
            Some((n, e)) => (*n, e.clone()),
            None => (
                shape.members,
                preferential_attachment(shape.members, shape.mean_degree, usize::MAX, &mut rng),
            ),
        };
        let mut adj = vec![HashSet::new(); members];
        for &(a, b) in &edges {
            adj[a].insert(b);
            adj[b].insert(a);
        }
        let topics = shape.topics.max(2);

        // Main topics, made homophilous: most members take their connections' majority.
        let mut home: Vec<usize> = (0..members).map(|_| rng.below(topics)).collect();
        for _ in 0..2 {
            for m in 0..members {
                if adj[m].is_empty() || rng.unit() > 0.7 {
                    continue;
                }
                let mut votes = vec![0usize; topics];
                for &n in &adj[m] {
                    votes[home[n]] += 1;
                }
                let best = *votes.iter().max().unwrap_or(&0);
                let tied: Vec<usize> = (0..topics).filter(|t| votes[*t] == best).collect();
                home[m] = *rng.pick(&tied);
            }
        }
        let interests: Vec<Vec<f64>> = home
            .iter()
            .map(|&h| {
                let mut v = vec![0.03f64; topics];
                v[h] = 1.0;
                let second = rng.below(topics);
                v[second] = v[second].max(0.5);
                let third = rng.below(topics);
                v[third] = v[third].max(0.25);
                v
            })
            .collect();
        let follows: Vec<Option<usize>> = home
            .iter()
            .map(|&h| (rng.unit() < shape.follow_fraction).then_some(h))
            .collect();

        // Posts.
        let span = shape.days * 24.0 * HOUR;
        let mut posts = Vec::new();
        for (author, interest) in interests.iter().enumerate() {
            let n = (-(1.0 - rng.unit()).ln() * shape.posts_per_member).floor() as usize;
            let total: f64 = interest.iter().sum();
            for _ in 0..n {
                let mut pick = rng.unit() * total;
                let mut topic = 0;
                for (t, w) in interest.iter().enumerate() {
                    if pick < *w {
                        topic = t;
                        break;
                    }
                    pick -= w;
                }
                let u = rng.unit();
                posts.push(SimPost {
                    author,
                    topic,
                    quality: (u * u).max(0.02),
                    create: now - (10.0 * 60e6 + rng.unit() * span) as i64,
                });
            }
        }
        let mut world = Self {
            members,
            edges,
            adj,
            interests,
            follows,
            posts,
            seen: vec![HashSet::new(); members],
            acts: Vec::new(),
            truth: shape.truth,
            now,
        };

        // History: shown some of the network's posts, engaged by the truth.
        let by_topic = world.posts_by_topic(topics);
        let by_author = world.posts_by_author();
        for m in 0..members {
            for p in world.network_posts(m, &by_author, &by_topic) {
                let post = &world.posts[p];
                let age_h = (now - post.create) as f64 / HOUR;
                if rng.unit() >= shape.seen_fraction * (age_h / 24.0).min(1.0) {
                    continue;
                }
                let shown = post.create + ((now - post.create) as f64 * rng.unit()) as i64;
                world.seen[m].insert(p);
                world.acts.push(Act::Impression(m, p, shown));
                let prob = world.truth_at(m, p, shown);
                if rng.unit() < prob {
                    let q = world.posts[p].quality;
                    let kind = if q > 0.5 && rng.unit() < 0.5 {
                        epb::ReactionType::Insightful
                    } else {
                        *rng.pick(&[
                            epb::ReactionType::Like,
                            epb::ReactionType::Like,
                            epb::ReactionType::Celebrate,
                            epb::ReactionType::Support,
                            epb::ReactionType::Love,
                            epb::ReactionType::Funny,
                        ])
                    };
                    let at = shown + 60_000_000;
                    world.acts.push(Act::React(m, p, kind, at.min(now)));
                    if rng.unit() < 0.3 * q {
                        world.acts.push(Act::Comment(m, p, (at + 1).min(now)));
                    }
                    if rng.unit() < 0.15 * q {
                        world.acts.push(Act::Share(m, p, (at + 2).min(now)));
                    }
                }
            }
        }
        world
    }

    fn posts_by_topic(&self, topics: usize) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); topics];
        for (i, p) in self.posts.iter().enumerate() {
            by[p.topic].push(i);
        }
        by
    }

    fn posts_by_author(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.members];
        for (i, p) in self.posts.iter().enumerate() {
            by[p.author].push(i);
        }
        by
    }

    /// Posts of m's connections and followed topic (not m's own).
    fn network_posts(
        &self,
        m: usize,
        by_author: &[Vec<usize>],
        by_topic: &[Vec<usize>],
    ) -> Vec<usize> {
        let mut out: HashSet<usize> = HashSet::new();
        for &c in &self.adj[m] {
            out.extend(by_author[c].iter().copied());
        }
        if let Some(t) = self.follows[m] {
            out.extend(
                by_topic[t]
                    .iter()
                    .copied()
                    .filter(|p| self.posts[*p].author != m),
            );
        }
        let mut out: Vec<usize> = out.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// The ground truth: the probability that m engages with post p when shown it at `at`.
    fn truth_at(&self, m: usize, p: usize, at: i64) -> f64 {
        let post = &self.posts[p];
        self.truth.probability(
            self.interests[m][post.topic],
            post.quality,
            self.adj[m].contains(&post.author),
            (at - post.create) as f64 / HOUR,
        )
    }

    /// m's candidate pool: network posts plus posts their connections engaged with.
    fn pool(&self, m: usize, by_author: &[Vec<usize>], by_topic: &[Vec<usize>]) -> Vec<usize> {
        let mut pool: HashSet<usize> = self
            .network_posts(m, by_author, by_topic)
            .into_iter()
            .collect();
        for a in &self.acts {
            let (who, p) = match *a {
                Act::React(w, p, _, _) | Act::Comment(w, p, _) | Act::Share(w, p, _) => (w, p),
                Act::Impression(..) => continue,
            };
            if self.adj[m].contains(&who) && self.posts[p].author != m {
                pool.insert(p);
            }
        }
        let mut pool: Vec<usize> = pool.into_iter().collect();
        pool.sort_unstable();
        pool
    }
}

/// NDCG@K of `served` (post indices, best first) against `relevance`.
pub fn ndcg(served: &[f64], ideal: &[f64]) -> f64 {
    let dcg = |rels: &[f64]| -> f64 {
        rels.iter()
            .take(K)
            .enumerate()
            .map(|(i, r)| r / (i as f64 + 2.0).log2())
            .sum()
    };
    let best = dcg(ideal);
    if best <= 0.0 {
        return 0.0;
    }
    dcg(served) / best
}

/// The tuned baselines: each family of [`TUNED_FAMILIES`] at each half-life of
/// [`HALF_LIFE_GRID`], unpublished.
pub fn tuned_baselines() -> Vec<RankingProfile> {
    let mut out = Vec::new();
    for (family, signal) in TUNED_FAMILIES {
        for hours in HALF_LIFE_GRID {
            let mut weights = [0.0; Signal::COUNT];
            weights[signal as usize] = 1.0;
            weights[Signal::Freshness as usize] = 1.0;
            out.push(RankingProfile {
                name: grid_name(family, hours),
                description: format!("{} halving every {hours} h", signal.name()),
                published: false,
                weights,
                params: Params {
                    half_life_hours: hours,
                    ..Params::default()
                },
                model: Default::default(),
            });
        }
    }
    out
}

fn grid_name(family: &str, hours: f64) -> String {
    format!("{family}_{hours}h")
}

/// The grid point (half-life, NDCG) with the highest NDCG; the first of equals.
pub fn pick_best(grid: &[(f64, f64)]) -> Option<(f64, f64)> {
    grid.iter()
        .copied()
        .reduce(|best, p| if p.1 > best.1 { p } else { best })
}

/// What a scored profile is to the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// The profile set's default: what must win.
    Default,
    /// One of [`BASELINES`], as the profile file has it.
    Classic,
    /// A half-life of a tuned family (only each family's best counts as a baseline).
    Tuned,
    /// The default with one signal switched off.
    Ablation,
    /// Any other profile of the file (e.g. `learned`), scored as it is.
    Other,
}

fn row_kind(name: &str, default: &str) -> RowKind {
    if name == default {
        RowKind::Default
    } else if BASELINES.contains(&name) {
        RowKind::Classic
    } else if TUNED_FAMILIES
        .iter()
        .any(|(f, _)| HALF_LIFE_GRID.iter().any(|h| name == grid_name(f, *h)))
    {
        RowKind::Tuned
    } else if name
        .strip_prefix(default)
        .is_some_and(|rest| rest.starts_with("-no-"))
    {
        RowKind::Ablation
    } else {
        RowKind::Other
    }
}

/// One profile's quality.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalRow {
    pub profile: String,
    pub kind: RowKind,
    pub ndcg: f64,
    /// Standard error of the mean over the sampled members.
    pub stderr: f64,
}

/// A tuned family on one world: NDCG per half-life, and the best.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TunedFamily {
    pub family: String,
    /// The profile of the best half-life.
    pub best: String,
    pub half_life_hours: f64,
    pub ndcg: f64,
    /// (half-life in hours, NDCG@10), by half-life.
    pub grid: Vec<(f64, f64)>,
}

/// How well the feed's trained model predicts one engagement kind on its holdout.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelKind {
    /// `react`, `comment` or `share`.
    pub kind: String,
    pub positives: i64,
    pub holdout_auc: f64,
    pub holdout_log_loss: f64,
    pub global_only_auc: f64,
    pub global_only_log_loss: f64,
    /// (mean predicted, observed rate, examples) by decile of the prediction.
    pub calibration: Vec<(f64, f64, i64)>,
}

/// What FeedService.TrainRankingModel answered for a world.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelFigures {
    pub version: i64,
    pub examples: i64,
    pub holdout_examples: i64,
    pub train_seconds: f64,
    pub kinds: Vec<ModelKind>,
    /// What the model's own holdout chose: its learning rate and families of crosses.
    pub learning_rate: f64,
    pub families: Vec<String>,
    /// Every candidate compared, with its holdout log loss.
    pub selection: Vec<(String, f64)>,
}

impl ModelFigures {
    fn from_proto(m: fpb::RankingModel) -> Self {
        Self {
            version: m.version,
            examples: m.examples,
            holdout_examples: m.holdout_examples,
            train_seconds: m.train_seconds,
            learning_rate: m.learning_rate,
            families: m.families,
            selection: m
                .selection
                .into_iter()
                .map(|c| (c.name, c.holdout_log_loss))
                .collect(),
            kinds: m
                .kinds
                .into_iter()
                .map(|k| ModelKind {
                    kind: match fpb::EngagementKind::try_from(k.kind) {
                        Ok(fpb::EngagementKind::React) => "react".into(),
                        Ok(fpb::EngagementKind::Comment) => "comment".into(),
                        Ok(fpb::EngagementKind::Share) => "share".into(),
                        _ => format!("kind{}", k.kind),
                    },
                    positives: k.positives,
                    holdout_auc: k.holdout_auc,
                    holdout_log_loss: k.holdout_log_loss,
                    global_only_auc: k.global_only_auc,
                    global_only_log_loss: k.global_only_log_loss,
                    calibration: k
                        .calibration
                        .iter()
                        .map(|b| (b.mean_predicted, b.observed_rate, b.examples))
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn kind(&self, kind: &str) -> Option<&ModelKind> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// One line per kind.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "model v{}: {} examples ({} holdout), trained in {:.1}s; learning rate {}, crosses kept: {}\n",
            self.version,
            self.examples,
            self.holdout_examples,
            self.train_seconds,
            self.learning_rate,
            if self.families.is_empty() {
                "none".to_owned()
            } else {
                self.families.join(", ")
            }
        );
        let compared: Vec<String> = self
            .selection
            .iter()
            .map(|(name, loss)| format!("{name}: {loss:.5}"))
            .collect();
        out.push_str(&format!(
            "  holdout log loss of the candidates: {}\n",
            compared.join("; ")
        ));
        for k in &self.kinds {
            let calibration: Vec<String> = k
                .calibration
                .iter()
                .map(|(p, o, _)| format!("{p:.3}/{o:.3}"))
                .collect();
            out.push_str(&format!(
                "  {}: {} positives, holdout AUC {:.3} (global only {:.3}), log loss {:.4} (global only {:.4}); calibration predicted/observed by decile: {}\n",
                k.kind,
                k.positives,
                k.holdout_auc,
                k.global_only_auc,
                k.holdout_log_loss,
                k.global_only_log_loss,
                calibration.join(" ")
            ));
        }
        out
    }
}

/// What `bench eval` found on one world.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub world: String,
    pub truth: Truth,
    pub seed: u64,
    pub members: usize,
    pub edges: usize,
    pub posts: usize,
    pub impressions: usize,
    pub engagements: usize,
    pub sampled: usize,
    /// The profile set's default profile.
    pub default_profile: String,
    /// Every profile, tuned grids and ablations included, best first.
    pub rows: Vec<EvalRow>,
    /// Each tuned family's half-lives and its best on this world.
    pub tuned: Vec<TunedFamily>,
    /// The feed's trained model; `None` when the feed trains none (TrainRankingModel answered
    /// UNIMPLEMENTED).
    pub model: Option<ModelFigures>,
    pub load_seconds: f64,
    pub train_seconds: f64,
    pub score_seconds: f64,
}

impl EvalReport {
    pub fn ndcg(&self, profile: &str) -> Option<f64> {
        self.row(profile).map(|r| r.ndcg)
    }

    pub fn row(&self, profile: &str) -> Option<&EvalRow> {
        self.rows.iter().find(|r| r.profile == profile)
    }

    /// Share of the impressions engaged with (reactions).
    pub fn engagement_rate(&self) -> f64 {
        self.engagements as f64 / self.impressions.max(1) as f64
    }

    /// The classic baselines and each tuned family's best half-life.
    pub fn baselines(&self) -> Vec<&EvalRow> {
        self.rows
            .iter()
            .filter(|r| {
                r.kind == RowKind::Classic || self.tuned.iter().any(|t| t.best == r.profile)
            })
            .collect()
    }

    /// The best baseline, classic or tuned.
    pub fn best_baseline(&self) -> Option<&EvalRow> {
        self.baselines()
            .into_iter()
            .max_by(|a, b| a.ndcg.total_cmp(&b.ndcg))
    }

    /// The report as a Markdown table: the default, the baselines (each tuned family at its
    /// best half-life), the other profiles and the default's ablations; then each family's
    /// half-lives and the model's figures.
    pub fn table(&self) -> String {
        let best = self.best_baseline().map_or(0.0, |b| b.ndcg);
        let ours = self.ndcg(&self.default_profile).unwrap_or(0.0);
        let mut out = String::from(
            "| profile | NDCG@10 | ± s.e. | of the oracle | vs best baseline | ablation: lost |\n|---|---:|---:|---:|---:|---:|\n",
        );
        let shown = self
            .rows
            .iter()
            .filter(|r| r.kind != RowKind::Tuned || self.tuned.iter().any(|t| t.best == r.profile));
        for r in shown {
            let lost = if r.kind == RowKind::Ablation {
                format!("{:+.1}%", (r.ndcg / ours - 1.0) * 100.0)
            } else {
                String::new()
            };
            let name = match r.kind {
                RowKind::Default => format!("**{}** (default)", r.profile),
                RowKind::Tuned => format!("{} (tuned)", r.profile),
                _ => r.profile.clone(),
            };
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.3} | {:+.1}% | {} |\n",
                name,
                r.ndcg,
                r.stderr,
                r.ndcg,
                (r.ndcg / best - 1.0) * 100.0,
                lost
            ));
        }
        out.push_str("| oracle | 1.0000 | | 1.000 | | |\n");
        for t in &self.tuned {
            let grid: Vec<String> = t.grid.iter().map(|(h, n)| format!("{h}h {n:.4}")).collect();
            // A best at either end of the grid may not be the family's best.
            let edge = if t.half_life_hours == HALF_LIFE_GRID[0]
                || t.half_life_hours == HALF_LIFE_GRID[HALF_LIFE_GRID.len() - 1]
            {
                ", at the grid's edge"
            } else {
                ""
            };
            out.push_str(&format!(
                "{}: best half-life {} h{edge} ({})\n",
                t.family,
                t.half_life_hours,
                grid.join(", ")
            ));
        }
        match &self.model {
            Some(m) => out.push_str(&m.describe()),
            None => out.push_str("model: none (TrainRankingModel is unimplemented)\n"),
        }
        out
    }

    /// The world's line of the suite summary.
    pub fn summary(&self) -> WorldSummary {
        let best = self.best_baseline();
        let default_ndcg = self.ndcg(&self.default_profile).unwrap_or(0.0);
        let best_ndcg = best.map_or(0.0, |b| b.ndcg);
        let react = self.model.as_ref().and_then(|m| m.kind("react"));
        WorldSummary {
            world: self.world.clone(),
            truth: self.truth.label(),
            default_profile: self.default_profile.clone(),
            default_ndcg,
            best_baseline: best.map(|b| b.profile.clone()).unwrap_or_default(),
            best_baseline_ndcg: best_ndcg,
            ratio: default_ndcg / best_ndcg,
            react_holdout_auc: react.map(|k| k.holdout_auc),
            react_global_only_auc: react.map(|k| k.global_only_auc),
        }
    }
}

/// One world's line of the suite summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorldSummary {
    pub world: String,
    pub truth: String,
    pub default_profile: String,
    /// NDCG@10 of the default: its share of the oracle.
    pub default_ndcg: f64,
    pub best_baseline: String,
    pub best_baseline_ndcg: f64,
    /// Default over best baseline.
    pub ratio: f64,
    pub react_holdout_auc: Option<f64>,
    pub react_global_only_auc: Option<f64>,
}

/// What `bench eval --suite` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteReport {
    pub summary: Vec<WorldSummary>,
    pub worlds: Vec<EvalReport>,
}

impl SuiteReport {
    pub fn new(worlds: Vec<EvalReport>) -> Self {
        Self {
            summary: worlds.iter().map(EvalReport::summary).collect(),
            worlds,
        }
    }

    /// The summary as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| world | truth | default | NDCG@10 | best baseline | its NDCG@10 | default / best | of the oracle | react AUC (global only) |\n|---|---|---|---:|---|---:|---:|---:|---:|\n",
        );
        for s in &self.summary {
            let auc = match (s.react_holdout_auc, s.react_global_only_auc) {
                (Some(a), Some(g)) => format!("{a:.3} ({g:.3})"),
                _ => "no model".into(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {:.4} | {} | {:.4} | {:.3} | {:.3} | {} |\n",
                s.world,
                s.truth,
                s.default_profile,
                s.default_ndcg,
                s.best_baseline,
                s.best_baseline_ndcg,
                s.ratio,
                s.default_ndcg,
                auc
            ));
        }
        out
    }
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

/// The profiles scored on a world: `profiles`, an ablation of the default profile for each
/// signal it weighs, and the tuned baselines.
pub fn scored_profiles(profiles: ProfileSet) -> ProfileSet {
    let mut profiles = profiles;
    let default = profiles.default_profile().clone();
    for s in Signal::ALL {
        if default.weight(s) != 0.0 {
            profiles.insert(default.without(s));
        }
    }
    for p in tuned_baselines() {
        profiles.insert(p);
    }
    profiles
}

/// Runs every world of `worlds` in turn, each in its own fresh suite under `dir`, calling
/// `done` with each world's report as it comes.
pub async fn run_suite(
    worlds: &[EvalShape],
    dir: PathBuf,
    profiles: ProfileSet,
    mut done: impl FnMut(&EvalReport),
) -> anyhow::Result<SuiteReport> {
    let mut reports = Vec::new();
    for shape in worlds {
        let report = run(shape, dir.join(&shape.name), profiles.clone())
            .await
            .with_context(|| format!("world {}", shape.name))?;
        done(&report);
        reports.push(report);
    }
    Ok(SuiteReport::new(reports))
}

/// Builds the world, starts a fresh embedded suite in `dir` with the [`scored_profiles`],
/// loads the world through the API, trains the feed's model and scores every profile.
pub async fn run(
    shape: &EvalShape,
    dir: PathBuf,
    profiles: ProfileSet,
) -> anyhow::Result<EvalReport> {
    let profiles = scored_profiles(profiles);
    std::fs::create_dir_all(&dir)?;
    let profiles_file = dir.join("ranking-eval.toml");
    std::fs::write(&profiles_file, profiles.to_toml())?;

    let started = Instant::now();
    let now = now_micros();
    let world = World::build(shape, now);
    let secret = format!(
        "{}{}",
        pronet_common::ids::new_id(),
        pronet_common::ids::new_id()
    );
    let auth = Arc::new(
        AuthConfig::hs256(secret.as_bytes(), "pronet-eval").map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let mut config = SuiteConfig::new(
        Storage::Embedded(dir.clone()),
        SuiteAddrs::ephemeral(),
        auth.clone(),
    );
    config.ranking_profiles = Some(profiles_file);
    let suite = RunningSuite::start(config).await?;
    let result = load_and_score(shape, &world, &suite, &auth, &profiles, started).await;
    suite.stop().await?;
    result
}

async fn load_and_score(
    shape: &EvalShape,
    world: &World,
    suite: &RunningSuite,
    auth: &AuthConfig,
    profiles: &ProfileSet,
    started: Instant,
) -> anyhow::Result<EvalReport> {
    let addrs = suite.addrs;
    let service = auth
        .service_token("bench-eval", TOKEN_TTL)
        .map_err(anyhow::Error::msg)?;
    let ids = member_ids(shape.seed, world.members);
    let post_ids: Vec<String> = world
        .posts
        .iter()
        .enumerate()
        .map(|(i, p)| post_id(shape.seed, i, p.create))
        .collect();
    let mut profiles_client = ProfileServiceClient::new(connect(addrs.profile).await?);
    let mut posts_client = PostServiceClient::new(connect(addrs.post).await?);
    let mut engagement_client = EngagementServiceClient::new(connect(addrs.engagement).await?);
    let mut feed = FeedServiceClient::new(connect(addrs.feed).await?);

    for chunk in (0..world.members).collect::<Vec<_>>().chunks(1000) {
        let req = prpb::ImportProfilesRequest {
            profiles: chunk
                .iter()
                .map(|&i| super::seed::bench_profile(shape.seed, i, &ids[i]))
                .collect(),
        };
        profiles_client
            .import_profiles(with_token(req, &service))
            .await
            .context("ImportProfiles")?;
    }
    for chunk in world.edges.chunks(10_000) {
        let req = prpb::ImportConnectionsRequest {
            pairs: chunk
                .iter()
                .map(|&(a, b)| prpb::ConnectionPair {
                    member_id: ids[a].clone(),
                    other_id: ids[b].clone(),
                })
                .collect(),
        };
        profiles_client
            .import_connections(with_token(req, &service))
            .await
            .context("ImportConnections")?;
    }
    let follows: Vec<_> = world
        .follows
        .iter()
        .enumerate()
        .filter_map(|(m, t)| t.map(|t| (m, t)))
        .collect();
    let results: Vec<Result<(), tonic::Status>> =
        stream::iter(follows.into_iter().map(|(m, t)| {
            let mut c = profiles_client.clone();
            let token = auth.member_token(&ids[m], TOKEN_TTL);
            let member_id = ids[m].clone();
            async move {
                let token = token.map_err(tonic::Status::internal)?;
                let req = prpb::FollowRequest {
                    member_id,
                    target: Some(prpb::follow_request::Target::Hashtag(topic_name(t))),
                };
                c.follow(with_token(req, &token)).await.map(|_| ())
            }
        }))
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r.context("Follow")?;
    }
    let numbered: Vec<usize> = (0..world.posts.len()).collect();
    for chunk in numbered.chunks(1000) {
        let req = ppb::ImportPostsRequest {
            posts: chunk
                .iter()
                .map(|&i| {
                    let p = &world.posts[i];
                    ppb::ImportedPost {
                        id: post_ids[i].clone(),
                        author_id: ids[p.author].clone(),
                        text: format!("Notes on #{} (post {i})", topic_name(p.topic)),
                        visibility: ppb::Visibility::Public as i32,
                        create_time: Some(to_timestamp(p.create)),
                    }
                })
                .collect(),
        };
        posts_client
            .import_posts(with_token(req, &service))
            .await
            .context("ImportPosts")?;
    }
    let (mut impressions, mut engagements) = (0usize, 0usize);
    for (n, chunk) in world.acts.chunks(10_000).enumerate() {
        let mut req = epb::ImportEngagementRequest::default();
        for (k, a) in chunk.iter().enumerate() {
            match *a {
                Act::Impression(m, p, t) => {
                    impressions += 1;
                    req.impressions.push(epb::ImportedImpression {
                        post_id: post_ids[p].clone(),
                        member_id: ids[m].clone(),
                        view_time: Some(to_timestamp(t)),
                    })
                }
                Act::React(m, p, kind, t) => {
                    engagements += 1;
                    req.reactions.push(epb::ImportedReaction {
                        post_id: post_ids[p].clone(),
                        member_id: ids[m].clone(),
                        reaction_type: kind as i32,
                        create_time: Some(to_timestamp(t)),
                    })
                }
                Act::Comment(m, p, t) => req.comments.push(epb::ImportedComment {
                    id: format!("ev{:014x}{:016x}", shape.seed, n * 10_000 + k),
                    post_id: post_ids[p].clone(),
                    member_id: ids[m].clone(),
                    text: "Well said.".into(),
                    create_time: Some(to_timestamp(t)),
                }),
                Act::Share(m, p, t) => req.shares.push(epb::ImportedShare {
                    id: format!("ev{:014x}{:016x}", shape.seed, n * 10_000 + k),
                    post_id: post_ids[p].clone(),
                    member_id: ids[m].clone(),
                    create_time: Some(to_timestamp(t)),
                }),
            }
        }
        engagement_client
            .import_engagement(with_token(req, &service))
            .await
            .context("ImportEngagement")?;
    }
    suite.settle(Duration::from_secs(300)).await?;
    let load_seconds = started.elapsed().as_secs_f64();

    // The feed learns from the history before anything is scored.
    let training = Instant::now();
    // Training a large log takes seconds: longer than the default deadline.
    let mut train = with_token(fpb::TrainRankingModelRequest {}, &service);
    train.set_timeout(Duration::from_secs(600));
    let model = feed
        .train_ranking_model(train)
        .await
        .context("TrainRankingModel")?
        .into_inner()
        .model
        .map(ModelFigures::from_proto);
    let train_seconds = training.elapsed().as_secs_f64();

    // The sample: members with a pool of at least K unseen posts, drawn evenly.
    let topics = shape.topics.max(2);
    let by_topic = world.posts_by_topic(topics);
    let by_author = world.posts_by_author();
    let now = world.now;
    let mut sample: Vec<(usize, BTreeMap<usize, f64>, Vec<f64>)> = Vec::new();
    let step = (world.members / shape.sample.max(1)).max(1);
    for m in (0..world.members).step_by(step) {
        let rel: BTreeMap<usize, f64> = world
            .pool(m, &by_author, &by_topic)
            .into_iter()
            .filter(|p| !world.seen[m].contains(p))
            .map(|p| (p, world.truth_at(m, p, now)))
            .collect();
        if rel.len() < K {
            continue;
        }
        let mut ideal: Vec<f64> = rel.values().copied().collect();
        ideal.sort_by(|a, b| b.total_cmp(a));
        ideal.truncate(K);
        sample.push((m, rel, ideal));
        if sample.len() == shape.sample {
            break;
        }
    }
    anyhow::ensure!(
        !sample.is_empty(),
        "no member has {K} unseen posts in their pool"
    );
    let index_of: std::collections::HashMap<&str, usize> = post_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();

    // Every (profile, member) page, a few in flight.
    let scoring = Instant::now();
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    let pages = (0..names.len()).flat_map(|p| (0..sample.len()).map(move |s| (p, s)));
    let scored: Vec<anyhow::Result<(usize, f64)>> = stream::iter(pages.map(|(p, s)| {
        let mut feed = feed.clone();
        let (m, rel, ideal) = &sample[s];
        let req = fpb::GetFeedRequest {
            member_id: ids[*m].clone(),
            page_size: K as i32,
            ranking_profile: names[p].clone(),
            ..Default::default()
        };
        let (service, index_of, name) = (&service, &index_of, &names[p]);
        async move {
            let page = feed
                .get_feed(with_token(req, service))
                .await
                .with_context(|| format!("GetFeed with profile {name}"))?
                .into_inner();
            let served: Vec<f64> = page
                .items
                .iter()
                .map(|item| {
                    let id = item.post.as_ref().map_or("", |p| p.id.as_str());
                    index_of
                        .get(id)
                        .and_then(|p| rel.get(p))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            Ok((p, ndcg(&served, ideal)))
        }
    }))
    .buffer_unordered(SCORING_CONCURRENCY)
    .collect()
    .await;
    let mut scores = vec![Vec::with_capacity(sample.len()); names.len()];
    for r in scored {
        let (p, score) = r?;
        scores[p].push(score);
    }
    let score_seconds = scoring.elapsed().as_secs_f64();

    let default = profiles.default_profile().name.clone();
    let mut rows: Vec<EvalRow> = names
        .iter()
        .zip(&scores)
        .map(|(name, scores)| {
            let n = scores.len() as f64;
            let mean = scores.iter().sum::<f64>() / n;
            let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            EvalRow {
                profile: name.clone(),
                kind: row_kind(name, &default),
                ndcg: mean,
                stderr: (var / n).sqrt(),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.ndcg.total_cmp(&a.ndcg));
    let tuned = TUNED_FAMILIES
        .iter()
        .filter_map(|(family, _)| {
            let grid: Vec<(f64, f64)> = HALF_LIFE_GRID
                .iter()
                .filter_map(|h| {
                    let name = grid_name(family, *h);
                    rows.iter()
                        .find(|r| r.profile == name)
                        .map(|r| (*h, r.ndcg))
                })
                .collect();
            let (half_life_hours, ndcg) = pick_best(&grid)?;
            Some(TunedFamily {
                family: (*family).into(),
                best: grid_name(family, half_life_hours),
                half_life_hours,
                ndcg,
                grid,
            })
        })
        .collect();
    Ok(EvalReport {
        world: shape.name.clone(),
        truth: shape.truth,
        seed: shape.seed,
        members: world.members,
        edges: world.edges.len(),
        posts: world.posts.len(),
        impressions,
        engagements,
        sampled: sample.len(),
        default_profile: default,
        rows,
        tuned,
        model,
        load_seconds,
        train_seconds,
        score_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_is_one_for_the_ideal_order_and_less_otherwise() {
        let ideal = [0.5, 0.3, 0.1];
        assert!((ndcg(&ideal, &ideal) - 1.0).abs() < 1e-12);
        assert!(ndcg(&[0.1, 0.3, 0.5], &ideal) < 1.0);
        assert_eq!(ndcg(&[0.0, 0.0], &ideal), 0.0);
        assert_eq!(ndcg(&[0.3], &[]), 0.0);
    }

    #[test]
    fn the_world_is_repeatable_and_its_history_follows_the_truth() {
        let shape = EvalShape {
            members: 300,
            mean_degree: 20,
            ..Default::default()
        };
        let a = World::build(&shape, 1_000_000 * HOUR as i64);
        let b = World::build(&shape, 1_000_000 * HOUR as i64);
        assert_eq!(a.posts.len(), b.posts.len());
        assert_eq!(a.acts.len(), b.acts.len());
        // Members engage more with their main topic than with the rest.
        let mut on = (0usize, 0usize);
        let mut off = (0usize, 0usize);
        let engaged = reacted(&a);
        for x in &a.acts {
            if let Act::Impression(m, p, _) = *x {
                let main = a.interests[m][a.posts[p].topic] >= 1.0;
                let hit = usize::from(engaged.contains(&(m, p)));
                if main {
                    on = (on.0 + hit, on.1 + 1);
                } else {
                    off = (off.0 + hit, off.1 + 1);
                }
            }
        }
        let rate = |(h, n): (usize, usize)| h as f64 / n.max(1) as f64;
        assert!(rate(on) > 2.0 * rate(off), "{on:?} vs {off:?}");
    }
    /// The (member, post) pairs of the world's reactions.
    fn reacted(w: &World) -> HashSet<(usize, usize)> {
        w.acts
            .iter()
            .filter_map(|x| match *x {
                Act::React(m, p, _, _) => Some((m, p)),
                _ => None,
            })
            .collect()
    }

    fn world_of(mix: EngagementMix, half_life_hours: f64, seed: u64) -> World {
        let shape = EvalShape {
            members: 300,
            mean_degree: 20,
            seed,
            truth: Truth {
                half_life_hours,
                mix,
                tie_other: 0.5,
            },
            ..Default::default()
        };
        World::build(&shape, 1_000_000 * HOUR as i64)
    }

    /// Engagement rates over the world's impressions: (overall, main topic / other topics,
    /// best third of quality / worst third).
    fn rates(w: &World) -> (f64, f64, f64) {
        let engaged = reacted(w);
        let (mut all, mut main, mut off, mut good, mut bad) =
            ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0));
        let add = |c: &mut (usize, usize), hit: bool| *c = (c.0 + usize::from(hit), c.1 + 1);
        for x in &w.acts {
            if let Act::Impression(m, p, _) = *x {
                let hit = engaged.contains(&(m, p));
                add(&mut all, hit);
                add(
                    if w.interests[m][w.posts[p].topic] >= 1.0 {
                        &mut main
                    } else {
                        &mut off
                    },
                    hit,
                );
                // quality = u², u uniform: thirds of u.
                let q = w.posts[p].quality;
                if q >= 4.0 / 9.0 {
                    add(&mut good, hit);
                } else if q < 1.0 / 9.0 {
                    add(&mut bad, hit);
                }
            }
        }
        let rate = |(h, n): (usize, usize)| h as f64 / n.max(1) as f64;
        (rate(all), rate(main) / rate(off), rate(good) / rate(bad))
    }

    #[test]
    fn the_truth_halves_after_one_half_life() {
        for hours in [12.0, 48.0, 168.0] {
            let w = world_of(EngagementMix::Balanced, hours, 3);
            let p = 0;
            let m = (0..w.members).find(|m| w.posts[p].author != *m).unwrap();
            let at = w.posts[p].create;
            let fresh = w.truth_at(m, p, at);
            let later = w.truth_at(m, p, at + (hours * HOUR) as i64);
            assert!(fresh > 0.0);
            assert!(
                (later / fresh - 0.5).abs() < 1e-9,
                "{hours} h: {fresh} -> {later}"
            );
            let twice = w.truth_at(m, p, at + (2.0 * hours * HOUR) as i64);
            assert!(
                (twice / fresh - 0.25).abs() < 1e-9,
                "{hours} h: {fresh} -> {twice}"
            );
        }
    }

    #[test]
    fn the_truth_never_exceeds_its_peak() {
        for mix in [
            EngagementMix::Balanced,
            EngagementMix::Interest,
            EngagementMix::Quality,
        ] {
            let t = Truth {
                mix,
                ..Default::default()
            };
            assert!(t.probability(1.0, 1.0, true, 0.0) <= 0.6);
            assert!(t.probability(1.0, 1.0, false, 0.0) < t.probability(1.0, 1.0, true, 0.0));
        }
    }

    #[test]
    fn interest_and_quality_worlds_engage_for_different_reasons() {
        let (rate_i, by_interest_i, by_quality_i) =
            rates(&world_of(EngagementMix::Interest, 48.0, 5));
        let (rate_q, by_interest_q, by_quality_q) =
            rates(&world_of(EngagementMix::Quality, 48.0, 5));
        let (rate_b, _, _) = rates(&world_of(EngagementMix::Balanced, 48.0, 5));
        // In the interest world the topic moves engagement more than quality does; in the
        // quality world the other way round.
        assert!(
            by_interest_i > by_quality_i,
            "interest world: x{by_interest_i:.2} by topic, x{by_quality_i:.2} by quality"
        );
        assert!(
            by_quality_q > by_interest_q,
            "quality world: x{by_interest_q:.2} by topic, x{by_quality_q:.2} by quality"
        );
        assert!(by_interest_i > by_interest_q && by_quality_q > by_quality_i);
        // Realistic base rates, about the same in every mix: a few percent of impressions.
        for rate in [rate_i, rate_q, rate_b] {
            assert!((0.01..0.12).contains(&rate), "{rate_i} {rate_q} {rate_b}");
        }
    }

    #[test]
    fn grid_tuning_picks_the_argmax() {
        let grid = [
            (3.0, 0.41),
            (6.0, 0.47),
            (12.0, 0.52),
            (24.0, 0.49),
            (48.0, 0.52),
        ];
        assert_eq!(pick_best(&grid), Some((12.0, 0.52)));
        assert_eq!(pick_best(&[]), None);
        assert_eq!(pick_best(&[(336.0, 0.1)]), Some((336.0, 0.1)));
    }

    #[test]
    fn the_scored_profiles_hold_every_tuned_half_life_and_load_back() {
        let set = scored_profiles(ProfileSet::built_in());
        let reread = ProfileSet::parse(&set.to_toml()).expect("the eval's profile file loads");
        let default = reread.default_profile().name.clone();
        let tuned: Vec<&str> = reread
            .iter()
            .filter(|p| row_kind(&p.name, &default) == RowKind::Tuned)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(tuned.len(), TUNED_FAMILIES.len() * HALF_LIFE_GRID.len());
        let p = reread.get("popularity_decay_12h").unwrap();
        assert_eq!(p.params.half_life_hours, 12.0);
        assert_eq!(p.weight(Signal::Popularity), 1.0);
        assert_eq!(p.weight(Signal::Freshness), 1.0);
        assert_eq!(row_kind("x_2023_decay_336h", &default), RowKind::Tuned);
        assert_eq!(row_kind("x_2023", &default), RowKind::Classic);
        assert_eq!(
            row_kind(&format!("{default}-no-tie"), &default),
            RowKind::Ablation
        );
        assert_eq!(row_kind(&default, &default), RowKind::Default);
    }

    #[test]
    fn suite_worlds_have_distinct_names_and_seeds() {
        for suite in [standard_suite(), small_suite()] {
            let names: HashSet<&str> = suite.iter().map(|w| w.name).collect();
            let seeds: HashSet<u64> = suite.iter().map(|w| w.seed).collect();
            assert_eq!(names.len(), suite.len());
            assert_eq!(seeds.len(), suite.len());
        }
        assert_eq!(
            find_world("gen-interest-12h")
                .unwrap()
                .truth
                .half_life_hours,
            12.0
        );
        assert!(find_world("nowhere").is_none());
    }
}
