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
    pub posts: usize,
    /// Posts spread over this many days before now.
    pub days: u32,
    pub reactions: usize,
    pub comments: usize,
    pub shares: usize,
    /// RecordImpressions calls, of 10 posts each.
    pub impressions: usize,
    /// Size of the hashtag vocabulary.
    pub hashtags: usize,
    pub seed: u64,
}

impl Default for SeedShape {
    fn default() -> Self {
        Self {
            members: 100_000,
            mean_degree: 20,
            max_hub: 5_000,
            posts: 200_000,
            days: 14,
            reactions: 1_000_000,
            comments: 100_000,
            shares: 50_000,
            impressions: 100_000,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engagement {
    /// Member, post, reaction type index in 0..6.
    React(usize, usize, usize),
    Comment(usize, usize),
    Share(usize, usize),
    Impressions(usize, Vec<usize>),
}

/// Everything `bench seed` writes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub members: usize,
    pub edges: Vec<(usize, usize)>,
    pub follows: Vec<(usize, Follow)>,
    pub posts: Vec<PostSpec>,
    pub engagement: Vec<Engagement>,
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
    let mut degree = vec![0usize; members];
    for &(a, b) in &edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    // Members by popularity (degree, then index): rank 0 is the biggest hub.
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
            let author = popular(&mut rng, 0.8);
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

    // Posts by appeal: popular authors and recent posts first, then drawn with a Zipf skew.
    let mut author_rank = vec![0usize; members];
    for (r, &m) in by_rank.iter().enumerate() {
        author_rank[m] = r;
    }
    let mut by_appeal: Vec<usize> = (0..posts.len()).collect();
    by_appeal.sort_by(|&x, &y| {
        let key = |p: usize| {
            (author_rank[posts[p].author] as f64 + 1.0).ln()
                + posts[p].age_us as f64 / 86_400e6 / 3.0
        };
        key(x).total_cmp(&key(y)).then(x.cmp(&y))
    });
    let mut engagement = Vec::new();
    if !posts.is_empty() && members > 1 {
        let draw = |rng: &mut SplitMix64| {
            let p = by_appeal[rng.skewed(by_appeal.len(), 0.9)];
            let m = rng.below(members);
            (m != posts[p].author).then_some((m, p))
        };
        let mut reacted = HashSet::new();
        let mut tries = 0;
        while reacted.len() < shape.reactions && tries < shape.reactions * 4 {
            tries += 1;
            if let Some((m, p)) = draw(&mut rng) {
                if reacted.insert((m, p)) {
                    engagement.push(Engagement::React(m, p, rng.below(6)));
                }
            }
        }
        for _ in 0..shape.comments {
            if let Some((m, p)) = draw(&mut rng) {
                engagement.push(Engagement::Comment(m, p));
            }
        }
        let mut shared = HashSet::new();
        for _ in 0..shape.shares {
            if let Some((m, p)) = draw(&mut rng) {
                if shared.insert((m, p)) {
                    engagement.push(Engagement::Share(m, p));
                }
            }
        }
        for _ in 0..shape.impressions {
            let m = rng.below(members);
            let seen: Vec<usize> = (0..10)
                .map(|_| by_appeal[rng.skewed(by_appeal.len(), 0.9)])
                .collect();
            engagement.push(Engagement::Impressions(m, seen));
        }
    }
    Plan {
        members,
        edges,
        follows,
        posts,
        engagement,
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
            impressions: 300,
            hashtags: 100,
            ..SeedShape::default()
        }
    }

    #[test]
    fn same_seed_same_plan() {
        let a = plan(&small(), None);
        let b = plan(&small(), None);
        assert_eq!(a, b);
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
