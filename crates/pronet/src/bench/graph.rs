//! The seeded network of `bench seed`, as plain data: member ids, a heavy-tailed connection
//! graph (preferential attachment with a cap on hubs, or a real edge list), follows, posts
//! with Zipf-distributed hashtags over a time span, and engagement concentrated on popular
//! authors and recent posts. The same shape and seed always give the same plan.

use std::collections::HashSet;

use crate::rng::SplitMix64;

/// Sizes of the seeded network.
#[derive(Debug, Clone, Copy)]
pub struct SeedShape {
    pub members: usize,
    /// Average connections per member.
    pub mean_degree: usize,
    /// No member gets more connections than this.
    pub max_hub: usize,
    /// Members (the first ones) made into big hubs on top of the attachment graph: preferential
    /// attachment alone tops out near `mean_degree / 2 * sqrt(members)` connections.
    pub hubs: usize,
    /// About how many connections each of those hubs gets.
    pub hub_size: usize,
    pub posts: usize,
    /// Posts spread over this many days before now.
    pub days: u32,
    pub reactions: usize,
    pub comments: usize,
    pub shares: usize,
    /// Impressions (one member shown one post).
    pub impressions: usize,
    /// Size of the hashtag vocabulary.
    pub hashtags: usize,
    pub seed: u64,
}

impl Default for SeedShape {
    fn default() -> Self {
        Self {
            // 100k members, 1M posts and 10M engagement events: the scale of issue 7.
            members: 100_000,
            mean_degree: 100,
            max_hub: 20_000,
            hubs: 0,
            hub_size: 12_000,
            posts: 1_000_000,
            days: 14,
            reactions: 4_000_000,
            comments: 400_000,
            shares: 100_000,
            impressions: 5_500_000,
            hashtags: 2_000,
            seed: 7,
        }
    }
}

/// Member ids are the identity provider's; the bench makes up stable ones from the seed.
pub fn member_ids(seed: u64, members: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(seed ^ 0xbe4c_4b1d);
    (0..members)
        .map(|_| format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()))
        .collect()
}

/// Preferential attachment (Barabási–Albert): each new member links to `mean_degree / 2`
/// existing members drawn in proportion to their degree, so early members become hubs; a
/// member at `max_hub` takes no more. Pairs are `(lower, higher)`, in creation order.
pub fn preferential_attachment(
    members: usize,
    mean_degree: usize,
    max_hub: usize,
    rng: &mut SplitMix64,
) -> Vec<(usize, usize)> {
    let m = (mean_degree / 2).max(1);
    let mut degree = vec![0usize; members];
    // Every edge end once: a uniform draw from it is a degree-proportional draw of a member.
    let mut ends: Vec<usize> = Vec::with_capacity(members * m * 2);
    let mut edges = Vec::with_capacity(members * m);
    let mut seen: HashSet<(usize, usize)> = HashSet::with_capacity(members * m);
    // A small clique to start from.
    let core = (m + 1).min(members);
    for a in 0..core {
        for b in a + 1..core {
            edges.push((a, b));
            seen.insert((a, b));
            ends.extend([a, b]);
            degree[a] += 1;
            degree[b] += 1;
        }
    }
    for new in core..members {
        let mut linked = 0;
        let mut tries = 0;
        while linked < m && tries < m * 20 {
            tries += 1;
            let target = ends[rng.below(ends.len())];
            if degree[target] >= max_hub || !seen.insert((target, new)) {
                continue;
            }
            edges.push((target, new));
            degree[target] += 1;
            degree[new] += 1;
            linked += 1;
        }
        for &(a, b) in &edges[edges.len() - linked..] {
            ends.extend([a, b]);
        }
    }
    edges
}

/// Connects each of the first `hubs` members with about `hub_size` others (each other member
/// with probability `hub_size / members`), skipping pairs already connected.
pub fn add_hubs(
    edges: &mut Vec<(usize, usize)>,
    members: usize,
    hubs: usize,
    hub_size: usize,
    rng: &mut SplitMix64,
) {
    let hubs = hubs.min(members);
    if hubs == 0 {
        return;
    }
    let existing: HashSet<(usize, usize)> =
        edges.iter().copied().filter(|&(a, _)| a < hubs).collect();
    let p = hub_size.min(members) as f64 / members as f64;
    for m in 1..members {
        for h in 0..hubs.min(m) {
            if rng.unit() < p && !existing.contains(&(h, m)) {
                edges.push((h, m));
            }
        }
    }
}

/// Parses an edge list (`a b` per line, members numbered from 0; `%` and `#` lines are
/// comments): the member count and the distinct undirected edges, self-loops dropped.
pub fn parse_edge_list(text: &str) -> Result<(usize, Vec<(usize, usize)>), String> {
    let mut seen = HashSet::new();
    let mut edges = Vec::new();
    let mut members = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('%') || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace().map(str::parse::<usize>);
        let (Some(Ok(a)), Some(Ok(b))) = (it.next(), it.next()) else {
            return Err(format!("line {}: expected two member numbers", n + 1));
        };
        members = members.max(a + 1).max(b + 1);
        let e = (a.min(b), a.max(b));
        if a != b && seen.insert(e) {
            edges.push(e);
        }
    }
    Ok((members, edges))
}

const TAG_WORDS: &[&str] = &[
    "hiring",
    "rust",
    "leadership",
    "ai",
    "careers",
    "startups",
    "remote",
    "design",
    "data",
    "cloud",
    "security",
    "product",
    "sales",
    "marketing",
    "devops",
    "finance",
    "health",
    "education",
    "climate",
    "mentoring",
];

/// The `k`-th hashtag of the vocabulary (0 is the most popular).
pub fn hashtag(k: usize) -> String {
    let word = TAG_WORDS[k % TAG_WORDS.len()];
    match k / TAG_WORDS.len() {
        0 => word.to_string(),
        n => format!("{word}{n}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    Member(usize),
    Hashtag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostSpec {
    pub author: usize,
    /// How long before now the post was written, in microseconds.
    pub age_us: i64,
    pub text: String,
}

/// One engagement event: member, post, and how long after the post it happened (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    /// Reaction type index in 0..6.
    React(usize, usize, usize, i64),
    Comment(usize, usize, i64),
    Share(usize, usize, i64),
    Impression(usize, usize, i64),
}

/// Everything `bench seed` writes before the engagement, which [`EngagementPlan`] streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub members: usize,
    pub edges: Vec<(usize, usize)>,
    pub follows: Vec<(usize, Follow)>,
    pub posts: Vec<PostSpec>,
    /// Members by popularity (degree, then index): rank 0 is the biggest hub.
    pub by_rank: Vec<usize>,
    seed: u64,
}

/// Plans the network; `edges` (a loaded graph with its member count) replaces the generated one.
pub fn plan(shape: &SeedShape, loaded: Option<(usize, Vec<(usize, usize)>)>) -> Plan {
    let mut rng = SplitMix64::new(shape.seed);
    let (members, edges) = match loaded {
        Some(g) => g,
        None => (
            shape.members,
            preferential_attachment(shape.members, shape.mean_degree, shape.max_hub, &mut rng),
        ),
    };
    let mut edges = edges;
    add_hubs(&mut edges, members, shape.hubs, shape.hub_size, &mut rng);
    let mut degree = vec![0usize; members];
    for &(a, b) in &edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    let mut by_rank: Vec<usize> = (0..members).collect();
    by_rank.sort_by_key(|&m| (std::cmp::Reverse(degree[m]), m));
    let popular = |rng: &mut SplitMix64, s: f64| by_rank[rng.skewed(members, s)];

    let mut follows = Vec::new();
    for m in 0..members {
        let tags: std::collections::BTreeSet<usize> = (0..1 + rng.below(3))
            .map(|_| rng.skewed(shape.hashtags, 1.0))
            .collect();
        follows.extend(tags.into_iter().map(|t| (m, Follow::Hashtag(hashtag(t)))));
        let star = popular(&mut rng, 1.0);
        if star != m {
            follows.push((m, Follow::Member(star)));
        }
    }

    let span_us = i64::from(shape.days.max(1)) * 86_400 * 1_000_000;
    let posts: Vec<PostSpec> = (0..shape.posts)
        .map(|i| {
            // Every member writes now and then; popular ones write more.
            let author = if rng.below(2) == 0 {
                popular(&mut rng, 0.8)
            } else {
                rng.below(members.max(1))
            };
            // Recent days hold more posts; a minute of margin keeps backfill in the past.
            let age_us = (rng.unit().powf(1.5) * (span_us - 60_000_000) as f64) as i64 + 60_000_000;
            let t1 = hashtag(rng.skewed(shape.hashtags, 1.0));
            let t2 = hashtag(rng.skewed(shape.hashtags, 1.0));
            PostSpec {
                author,
                age_us,
                text: format!("Update {i} from the bench network. #{t1} #{t2}"),
            }
        })
        .collect();
    Plan {
        members,
        edges,
        follows,
        posts,
        by_rank,
        seed: shape.seed,
    }
}

/// The post id of planned post `i`: a UUIDv7 (simple form) from the post's creation time, so
/// ids sort by time as the service's own do, with `i` in the random part so none collide.
pub fn post_id(seed: u64, i: usize, create_us: i64) -> String {
    let ms = (create_us.max(0) as u64 / 1000) & 0xffff_ffff_ffff;
    let r = SplitMix64::new(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64();
    let low = (0b10u64 << 62) | ((i as u64 & 0xff_ffff_ffff) << 20) | (r & 0xf_ffff);
    format!("{ms:012x}7{:03x}{low:016x}", (r >> 20) & 0xfff)
}

/// Streams the engagement of a plan in batches, deterministically: reactions, comments,
/// shares, then impressions, each drawn on posts by appeal (popular authors and recent posts
/// first, Zipf-skewed) by uniformly drawn members, at a time after the post.
pub struct EngagementPlan {
    rng: SplitMix64,
    by_appeal: Vec<usize>,
    authors: Vec<usize>,
    ages: Vec<i64>,
    members: usize,
    /// Still to draw: reactions, comments, shares, impressions.
    left: [usize; 4],
}

impl EngagementPlan {
    pub fn new(shape: &SeedShape, plan: &Plan) -> Self {
        let mut author_rank = vec![0usize; plan.members];
        for (r, &m) in plan.by_rank.iter().enumerate() {
            author_rank[m] = r;
        }
        let key = |p: &PostSpec| {
            (author_rank[p.author] as f64 + 1.0).ln() + p.age_us as f64 / 86_400e6 / 3.0
        };
        let keys: Vec<f64> = plan.posts.iter().map(key).collect();
        let mut by_appeal: Vec<usize> = (0..plan.posts.len()).collect();
        by_appeal.sort_by(|&x, &y| keys[x].total_cmp(&keys[y]).then(x.cmp(&y)));
        let usable = !plan.posts.is_empty() && plan.members > 1;
        Self {
            rng: SplitMix64::new(plan.seed ^ 0xe9a9_e3e7),
            by_appeal,
            authors: plan.posts.iter().map(|p| p.author).collect(),
            ages: plan.posts.iter().map(|p| p.age_us).collect(),
            members: plan.members,
            left: if usable {
                [
                    shape.reactions,
                    shape.comments,
                    shape.shares,
                    shape.impressions,
                ]
            } else {
                [0; 4]
            },
        }
    }

    /// Events still to come.
    pub fn remaining(&self) -> usize {
        self.left.iter().sum()
    }

    /// Up to `max` more events; empty when done.
    pub fn next_batch(&mut self, max: usize) -> Vec<Engagement> {
        let mut out = Vec::with_capacity(max.min(self.remaining()));
        while out.len() < max {
            let Some(kind) = self.left.iter().position(|&n| n > 0) else {
                break;
            };
            let p = self.by_appeal[self.rng.skewed(self.by_appeal.len(), 0.9)];
            let m = self.rng.below(self.members);
            if m == self.authors[p] {
                continue;
            }
            self.left[kind] -= 1;
            // Within three days of the post (or of now, for a recent one), earlier more often.
            let window = self.ages[p].min(3 * 86_400_000_000) - 1_000_000;
            let after = (self.rng.unit().powi(2) * window.max(0) as f64) as i64;
            out.push(match kind {
                0 => Engagement::React(m, p, self.rng.below(6), after),
                1 => Engagement::Comment(m, p, after),
                2 => Engagement::Share(m, p, after),
                _ => Engagement::Impression(m, p, after),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SeedShape {
        SeedShape {
            members: 2_000,
            mean_degree: 10,
            max_hub: 300,
            posts: 3_000,
            reactions: 5_000,
            comments: 500,
            shares: 200,
            impressions: 3_000,
            hashtags: 100,
            ..SeedShape::default()
        }
    }

    #[test]
    fn same_seed_same_plan() {
        let a = plan(&small(), None);
        let b = plan(&small(), None);
        assert_eq!(a, b);
        let events = |p: &Plan| {
            let mut e = EngagementPlan::new(&small(), p);
            let mut all = Vec::new();
            loop {
                let batch = e.next_batch(1000);
                if batch.is_empty() {
                    break all;
                }
                all.extend(batch);
            }
        };
        let (ea, eb) = (events(&a), events(&b));
        assert_eq!(ea, eb);
        assert_eq!(ea.len(), 5_000 + 500 + 200 + 3_000);
        assert_eq!(
            post_id(7, 3, 1_700_000_000_000_000),
            post_id(7, 3, 1_700_000_000_000_000)
        );
        assert_eq!(member_ids(7, 50), member_ids(7, 50));
        let c = plan(&SeedShape { seed: 8, ..small() }, None);
        assert_ne!(a.edges, c.edges);
        assert_ne!(member_ids(7, 50), member_ids(8, 50));
    }

    #[test]
    fn graph_is_heavy_tailed_and_capped() {
        let s = small();
        let edges =
            preferential_attachment(s.members, s.mean_degree, s.max_hub, &mut SplitMix64::new(1));
        let mut degree = vec![0usize; s.members];
        for &(a, b) in &edges {
            assert!(a < b);
            degree[a] += 1;
            degree[b] += 1;
        }
        let mean = 2.0 * edges.len() as f64 / s.members as f64;
        assert!((mean - 10.0).abs() < 1.0, "mean degree {mean}");
        let max = *degree.iter().max().unwrap();
        assert!(max <= s.max_hub);
        assert!(max > 10 * s.mean_degree, "max degree {max}: no hubs");
        assert_eq!(edges.iter().collect::<HashSet<_>>().len(), edges.len());
    }

    #[test]
    fn engagement_follows_the_post_and_spares_its_author() {
        let p = plan(&small(), None);
        let mut e = EngagementPlan::new(&small(), &p);
        let mut reactions = 0;
        loop {
            let batch = e.next_batch(777);
            if batch.is_empty() {
                break;
            }
            for ev in batch {
                let (m, post, after) = match ev {
                    Engagement::React(m, post, t, after) => {
                        assert!(t < 6);
                        reactions += 1;
                        (m, post, after)
                    }
                    Engagement::Comment(m, post, after)
                    | Engagement::Share(m, post, after)
                    | Engagement::Impression(m, post, after) => (m, post, after),
                };
                assert_ne!(m, p.posts[post].author);
                assert!(
                    after >= 0 && after < p.posts[post].age_us,
                    "after the post, before now"
                );
            }
        }
        assert_eq!(reactions, 5_000);
    }

    #[test]
    fn post_ids_sort_by_time_and_never_collide() {
        let t = 1_700_000_000_000_000;
        assert!(post_id(1, 5, t) < post_id(1, 4, t + 1_000));
        let ids: HashSet<String> = (0..10_000).map(|i| post_id(1, i, t)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }

    #[test]
    fn hubs_reach_their_size_without_repeating_a_pair() {
        let s = small();
        let mut rng = SplitMix64::new(3);
        let mut edges = preferential_attachment(s.members, s.mean_degree, s.max_hub, &mut rng);
        add_hubs(&mut edges, s.members, 2, 1_200, &mut rng);
        let mut degree = vec![0usize; s.members];
        for &(a, b) in &edges {
            assert!(a < b);
            degree[a] += 1;
            degree[b] += 1;
        }
        assert!(
            degree[0] >= 1_100 && degree[1] >= 1_100,
            "hubs {} {}",
            degree[0],
            degree[1]
        );
        assert_eq!(edges.iter().collect::<HashSet<_>>().len(), edges.len());
    }

    #[test]
    fn parses_edge_lists() {
        let (n, edges) = parse_edge_list("% comment\n1 0\n0 1\n2 2\n3 1\n").unwrap();
        assert_eq!(n, 4);
        assert_eq!(edges, vec![(0, 1), (1, 3)]);
        assert!(parse_edge_list("1 x\n").is_err());
    }

    #[test]
    fn loads_the_reed_graph_when_present() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/socfb-Reed98/socfb-Reed98.edges"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            return; // The dataset lives beside the repository, not in it.
        };
        let (n, edges) = parse_edge_list(&text).unwrap();
        assert_eq!((n, edges.len()), (962, 18_812));
    }
}
