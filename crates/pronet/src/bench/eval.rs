//! `bench eval`: how good is a ranking? A simulated world with planted ground truth, loaded
//! into a fresh suite through its public API, then GetFeed asked, per ranking profile, for a
//! sample of members; each served page is scored by NDCG@10 against the true engagement
//! probabilities of the posts the member has not seen.
//!
//! The world:
//! - members on a real graph (an edge list such as `../shared/datasets/socfb-Reed98`) or a
//!   generated one; each has hidden interests over a few topics (hashtags), homophilous: a
//!   member's main topic is, most of the time, the one most of their connections have;
//! - posts with a hidden topic (drawn from the author's interests) and quality; how many each
//!   member writes is skewed (a few write a lot);
//! - a member engages with a post with probability
//!   `P = 0.6 × quality × interest(topic) × tie × 0.5^(age / 48 h)`
//!   (tie: 1 for a connection's post, 0.5 otherwise) — the ground truth;
//! - a history drawn from it: each member was shown some of the posts their network brings
//!   (older posts more likely), and engaged with each shown post with the truth's probability
//!   at that time (a reaction, sometimes also a comment or share; "insightful" more often on
//!   good posts).
//!
//! Relevance of a served post for member m: its truth `P` now if m has not seen it (0 if seen:
//! showing it again is worth nothing). The ideal page is the 10 unseen posts of m's candidate
//! pool (their connections' posts, their followed topic's, those their connections engaged
//! with) with the highest `P`: the oracle, NDCG 1 by definition.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::time::{now_micros, to_timestamp};
use pronet_feed::domain::{ProfileSet, Signal};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::feed::v1::feed_service_client::FeedServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

use super::graph::{member_ids, post_id, preferential_attachment};
use crate::rng::SplitMix64;
use crate::suite::{RunningSuite, Storage, SuiteAddrs, SuiteConfig};

const HOUR: f64 = 3_600_000_000.0;
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// Hours for the truth's interest in a post to halve.
const TRUTH_HALF_LIFE_HOURS: f64 = 48.0;
/// The page scored.
const K: usize = 10;

/// The classic rankings pronet is compared with (profiles of the built-in file).
pub const BASELINES: [&str; 4] = ["chronological", "popularity", "lemmy_hot", "x_2023"];

/// The size and shape of the simulated world.
#[derive(Debug, Clone)]
pub struct EvalShape {
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
}

impl Default for EvalShape {
    fn default() -> Self {
        Self {
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
        }
    }
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
        let tie = if self.adj[m].contains(&post.author) {
            1.0
        } else {
            0.5
        };
        let age_h = (at - post.create).max(0) as f64 / HOUR;
        0.6 * post.quality
            * self.interests[m][post.topic]
            * tie
            * 0.5f64.powf(age_h / TRUTH_HALF_LIFE_HOURS)
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

/// One profile's quality.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalRow {
    pub profile: String,
    pub ndcg: f64,
    /// Standard error of the mean over the sampled members.
    pub stderr: f64,
}

/// What `bench eval` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub members: usize,
    pub edges: usize,
    pub posts: usize,
    pub impressions: usize,
    pub engagements: usize,
    pub sampled: usize,
    /// Every profile, ablations included, best first.
    pub rows: Vec<EvalRow>,
    pub load_seconds: f64,
}

impl EvalReport {
    pub fn ndcg(&self, profile: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.profile == profile)
            .map(|r| r.ndcg)
    }

    /// The best classic baseline.
    pub fn best_baseline(&self) -> Option<&EvalRow> {
        self.rows
            .iter()
            .filter(|r| BASELINES.contains(&r.profile.as_str()))
            .max_by(|a, b| a.ndcg.total_cmp(&b.ndcg))
    }

    /// The report as a Markdown table.
    pub fn table(&self, default: &str) -> String {
        let best = self.best_baseline().map_or(0.0, |b| b.ndcg);
        let pronet = self.ndcg(default).unwrap_or(0.0);
        let mut out = String::from(
            "| profile | NDCG@10 | ± s.e. | vs best baseline | of the oracle | ablation: lost |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let lost = r
                .profile
                .strip_prefix(&format!("{default}-no-"))
                .map(|_| format!("{:+.1}%", (r.ndcg / pronet - 1.0) * 100.0))
                .unwrap_or_default();
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:+.1}% | {:.3} | {} |\n",
                r.profile,
                r.ndcg,
                r.stderr,
                (r.ndcg / best - 1.0) * 100.0,
                r.ndcg,
                lost
            ));
        }
        out.push_str("| oracle | 1.0000 | | | 1.000 | |\n");
        out
    }
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

/// Builds the world, starts a fresh embedded suite in `dir` with `profiles` (plus an ablation
/// of the default profile for each signal it weighs), loads the world through the API and
/// scores every profile.
pub async fn run(
    shape: &EvalShape,
    dir: PathBuf,
    profiles: ProfileSet,
) -> anyhow::Result<EvalReport> {
    let mut profiles = profiles;
    let default = profiles.default_profile().clone();
    for s in Signal::ALL {
        if default.weight(s) != 0.0 {
            profiles.insert(default.without(s));
        }
    }
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

    let mut rows = Vec::new();
    for profile in profiles.iter() {
        let mut scores = Vec::with_capacity(sample.len());
        for (m, rel, ideal) in &sample {
            let req = fpb::GetFeedRequest {
                member_id: ids[*m].clone(),
                page_size: K as i32,
                ranking_profile: profile.name.clone(),
                ..Default::default()
            };
            let page = feed
                .get_feed(with_token(req, &service))
                .await
                .with_context(|| format!("GetFeed with profile {}", profile.name))?
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
            scores.push(ndcg(&served, ideal));
        }
        let n = scores.len() as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        rows.push(EvalRow {
            profile: profile.name.clone(),
            ndcg: mean,
            stderr: (var / n).sqrt(),
        });
    }
    rows.sort_by(|a, b| b.ndcg.total_cmp(&a.ndcg));
    Ok(EvalReport {
        members: world.members,
        edges: world.edges.len(),
        posts: world.posts.len(),
        impressions,
        engagements,
        sampled: sample.len(),
        rows,
        load_seconds,
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
        let engaged: HashSet<(usize, usize)> = a
            .acts
            .iter()
            .filter_map(|x| match *x {
                Act::React(m, p, _, _) => Some((m, p)),
                _ => None,
            })
            .collect();
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
}
