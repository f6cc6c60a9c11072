//! Feed ranking: how candidates are scored and explained. Pure functions over plain data, so
//! every rule is unit-tested without a network.

use foldhash::HashMap;
use std::sync::Arc;

/// Every limit of the feed service.
pub mod limits {
    pub const DEFAULT_PAGE_SIZE: usize = 20;
    pub const MAX_PAGE_SIZE: usize = 100;
    /// Deepest a member can page into one feed.
    pub const MAX_FEED_DEPTH: usize = 1000;
    /// Connections and followed members considered as authors.
    pub const MAX_AUTHORS: usize = 5000;
    /// Followed hashtags considered.
    pub const MAX_HASHTAGS: usize = 200;
    /// Recent posts taken by author and hashtag (newest first). Read from the in-memory index,
    /// so the cap is about ranking cost (~1 µs a candidate), not about moving rows between
    /// services as it was when candidates were fetched per request.
    pub const MAX_RECENT_POSTS: i32 = 2000;
    /// Posts per author among the candidates, so one prolific poster cannot crowd out the rest.
    pub const MAX_POSTS_PER_AUTHOR: i32 = 25;
    /// Recent engagement events of connections read (newest first).
    pub const MAX_ACTIVITIES: i32 = 1000;
    /// Members named per reason kind on an item.
    pub const MAX_NAMED_PER_REASON: usize = 3;
    /// Ids per call to another service's batch RPC (hydrating a page needs one).
    pub const BATCH_CHUNK: usize = 1000;
}

/// The ranking weights, all in one place.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    /// A reaction is the cheapest signal: one tap.
    pub reaction: f64,
    /// A comment costs effort and starts a conversation others join: worth three reactions.
    pub comment: f64,
    /// A share carries the post to a new audience and puts the sharer's name on it: worth four.
    pub share: f64,
    /// Hours for freshness to halve: a day and a half keeps yesterday's strong post above this
    /// morning's unnoticed one, while two-week-old posts fade to under 0.2%.
    pub half_life_hours: f64,
    /// Affinity when a connection wrote the post: the strongest tie.
    pub connection_author: f64,
    /// Affinity when a followed (unconnected) member wrote it: chosen, but one-way.
    pub followed_author: f64,
    /// Affinity when only a hashtag or a connection's engagement brought it.
    pub other_author: f64,
    /// Added per followed hashtag the post carries (interest match).
    pub per_hashtag: f64,
    /// At most this much from hashtags.
    pub max_hashtag_bonus: f64,
    /// Added per distinct connection that engaged (social proof).
    pub per_engaged_connection: f64,
    /// At most this much from engaged connections.
    pub max_engagement_bonus: f64,
    /// Each further post by the same author in one feed is multiplied by this again, so a
    /// member who posts a lot does not drown everyone else out.
    pub same_author_decay: f64,
}

pub const WEIGHTS: Weights = Weights {
    reaction: 1.0,
    comment: 3.0,
    share: 4.0,
    half_life_hours: 36.0,
    connection_author: 1.0,
    followed_author: 0.8,
    other_author: 0.4,
    per_hashtag: 0.2,
    max_hashtag_bonus: 0.4,
    per_engaged_connection: 0.15,
    max_engagement_bonus: 0.6,
    same_author_decay: 0.6,
};

/// Who may see a post, and the rule (one copy, shared with the post and engagement services).
pub use pronet_common::visibility::{is_visible, is_visible_to_another, Relation, Visibility};

/// A member's or a hashtag's key in the source of candidates (the feed index).
pub type Key = u32;

/// A post's key in the source of candidates. Unlike members, posts leave (deleted, out of the
/// window), so the key also says which post held the slot: [`Ids::post_id`] answers `None`
/// once that post is gone.
pub type PostKey = u64;

/// Turns the keys candidates carry into the ids responses show. Ranking scores and orders
/// plain numbers; ids are read to break exact ties and, for the items of a page, to show them.
pub trait Ids {
    /// The post's id, `None` once it left the source.
    fn post_id(&self, post: PostKey) -> Option<Arc<str>>;
    fn member_id(&self, member: Key) -> Arc<str>;
    fn hashtag(&self, tag: Key) -> Arc<str>;
}

/// How the viewer relates to a post's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorRelation {
    Connection,
    Followed,
    Other,
}

/// What a connection did to a post, in the order reasons are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngagementKind {
    Commented,
    Shared,
    Reacted,
}

/// Engagement counts of a post.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub reactions: i64,
    pub comments: i64,
    pub shares: i64,
}

/// A post that may enter the feed, with everything ranking needs. Posts and members are keys
/// ([`Ids`] names them), so a candidate copies no strings; the two lists are usually empty and
/// then allocate nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub post: PostKey,
    pub author: Key,
    pub create_time: i64,
    pub relation: AuthorRelation,
    /// Followed hashtags the post carries.
    pub matched_hashtags: Vec<Key>,
    /// Connections who engaged, by kind, sorted and without repeats (a member may appear
    /// under several kinds): see [`Candidate::normalize_engaged`].
    pub engaged: Vec<(EngagementKind, Key)>,
    pub counts: Counts,
}

impl Candidate {
    /// Sorts the engagers by kind then member and drops repeats (a member who commented
    /// twice is one commenter).
    pub fn normalize_engaged(&mut self) {
        if self.engaged.len() > 1 {
            self.engaged.sort_unstable();
            self.engaged.dedup();
        }
    }

    /// Members who engaged, each once whatever they did.
    pub fn distinct_engagers(&self) -> usize {
        match self.engaged.len() {
            0 | 1 => self.engaged.len(),
            n if n <= 16 => (0..n)
                .filter(|&i| {
                    !self.engaged[..i]
                        .iter()
                        .any(|(_, m)| *m == self.engaged[i].1)
                })
                .count(),
            _ => {
                let mut members: Vec<Key> = self.engaged.iter().map(|(_, m)| *m).collect();
                members.sort_unstable();
                members.dedup();
                members.len()
            }
        }
    }

    /// The engagers of one kind, in key order.
    pub fn engagers(&self, kind: EngagementKind) -> impl Iterator<Item = Key> + '_ {
        self.engaged
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, m)| *m)
    }
}

/// The factors of a score; their product is the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakdown {
    pub engagement: f64,
    pub freshness: f64,
    pub affinity: f64,
    pub diversity: f64,
}

impl Breakdown {
    pub fn score(&self) -> f64 {
        self.engagement * self.freshness * self.affinity * self.diversity
    }
}

/// Why an item is in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ConnectionPosted(Arc<str>),
    FollowedMemberPosted(Arc<str>),
    ConnectionEngaged(EngagementKind, Arc<str>),
    FollowedHashtag(Arc<str>),
}

/// One ranked item: the candidate (keys; ids and reasons are read for the items a page
/// shows) and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    pub breakdown: Breakdown,
    pub score: f64,
}

impl Ranked {
    /// Why the item is in the feed, named.
    pub fn reasons(&self, ids: &impl Ids) -> Vec<Reason> {
        reasons(&self.candidate, ids)
    }
}

/// Scores and orders candidates for a viewer at time `now` (microseconds).
#[derive(Debug, Clone, Copy)]
pub struct FeedRanker {
    pub weights: Weights,
}

impl Default for FeedRanker {
    fn default() -> Self {
        Self { weights: WEIGHTS }
    }
}

impl FeedRanker {
    pub fn engagement(&self, c: &Counts) -> f64 {
        let w = &self.weights;
        let weighted = w.reaction * c.reactions.max(0) as f64
            + w.comment * c.comments.max(0) as f64
            + w.share * c.shares.max(0) as f64;
        1.0 + weighted.ln_1p()
    }

    pub fn freshness(&self, create_time: i64, now: i64) -> f64 {
        let age_hours = (now - create_time).max(0) as f64 / 3_600_000_000.0;
        0.5f64.powf(age_hours / self.weights.half_life_hours)
    }

    pub fn affinity(&self, c: &Candidate) -> f64 {
        let w = &self.weights;
        let base = match c.relation {
            AuthorRelation::Connection => w.connection_author,
            AuthorRelation::Followed => w.followed_author,
            AuthorRelation::Other => w.other_author,
        };
        let hashtags = (w.per_hashtag * c.matched_hashtags.len() as f64).min(w.max_hashtag_bonus);
        let social =
            (w.per_engaged_connection * c.distinct_engagers() as f64).min(w.max_engagement_bonus);
        base + hashtags + social
    }

    /// Ranks candidates best first. Within one author, the k-th best post is multiplied by
    /// `same_author_decay^k`. Ties go to the newer post, then the larger id, so the order is
    /// total and repeatable.
    pub fn rank(&self, candidates: Vec<Candidate>, ids: &impl Ids, now: i64) -> Vec<Ranked> {
        self.rank_top(candidates, ids, now, usize::MAX)
    }

    /// The best `depth` of [`FeedRanker::rank`]'s order: candidates are scored as plain
    /// numbers and only the kept ones get their reasons.
    pub fn rank_top(
        &self,
        candidates: Vec<Candidate>,
        ids: &impl Ids,
        now: i64,
        depth: usize,
    ) -> Vec<Ranked> {
        struct Scored {
            at: usize,
            breakdown: Breakdown,
            score: f64,
        }
        let mut scored: Vec<Scored> = candidates
            .iter()
            .enumerate()
            .map(|(at, c)| {
                let breakdown = Breakdown {
                    engagement: self.engagement(&c.counts),
                    freshness: self.freshness(c.create_time, now),
                    affinity: self.affinity(c),
                    diversity: 1.0,
                };
                Scored {
                    at,
                    score: breakdown.score(),
                    breakdown,
                }
            })
            .collect();
        let best_first = |a: &Scored, b: &Scored| {
            // Post ids are time-ordered, so the id tie-break also prefers the newer post.
            b.score.total_cmp(&a.score).then_with(|| {
                ids.post_id(candidates[b.at].post)
                    .cmp(&ids.post_id(candidates[a.at].post))
            })
        };
        scored.sort_unstable_by(best_first);
        let mut seen_per_author: HashMap<Key, i32> = HashMap::default();
        seen_per_author.reserve(scored.len());
        for s in &mut scored {
            let k = seen_per_author.entry(candidates[s.at].author).or_insert(0);
            s.breakdown.diversity = self.weights.same_author_decay.powi(*k);
            s.score = s.breakdown.score();
            *k += 1;
        }
        scored.sort_unstable_by(best_first);
        scored.truncate(depth);
        let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
        scored
            .into_iter()
            .filter_map(|s| {
                Some(Ranked {
                    candidate: slots[s.at].take()?,
                    breakdown: s.breakdown,
                    score: s.score,
                })
            })
            .collect()
    }
}

/// The reasons of a candidate, strongest first: who wrote it, what connections did, hashtags.
pub fn reasons(c: &Candidate, ids: &impl Ids) -> Vec<Reason> {
    let mut out = Vec::new();
    match c.relation {
        AuthorRelation::Connection => out.push(Reason::ConnectionPosted(ids.member_id(c.author))),
        AuthorRelation::Followed => out.push(Reason::FollowedMemberPosted(ids.member_id(c.author))),
        AuthorRelation::Other => {}
    }
    for kind in [
        EngagementKind::Commented,
        EngagementKind::Shared,
        EngagementKind::Reacted,
    ] {
        let mut named: Vec<Arc<str>> = c.engagers(kind).map(|m| ids.member_id(m)).collect();
        // Named in id order, so the reasons do not depend on how the source keys members.
        named.sort_unstable();
        for m in named.into_iter().take(limits::MAX_NAMED_PER_REASON) {
            out.push(Reason::ConnectionEngaged(kind, m));
        }
    }
    for tag in &c.matched_hashtags {
        out.push(Reason::FollowedHashtag(ids.hashtag(*tag)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    /// Names interned as keys, shared by every test (keys stay stable across threads).
    static NAMES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn k(name: &str) -> Key {
        let mut names = NAMES.lock().unwrap();
        match names.iter().position(|n| n == name) {
            Some(i) => i as Key,
            None => {
                names.push(name.to_owned());
                (names.len() - 1) as Key
            }
        }
    }

    struct Names;

    impl Ids for Names {
        fn post_id(&self, post: PostKey) -> Option<Arc<str>> {
            Some(self.member_id(post as Key))
        }
        fn member_id(&self, member: Key) -> Arc<str> {
            Arc::from(NAMES.lock().unwrap()[member as usize].as_str())
        }
        fn hashtag(&self, tag: Key) -> Arc<str> {
            self.member_id(tag)
        }
    }

    fn post_id(r: &Ranked) -> Arc<str> {
        Names.post_id(r.candidate.post).unwrap()
    }

    fn candidate(id: &str, author: &str, hours_old: i64, counts: Counts) -> Candidate {
        Candidate {
            post: PostKey::from(k(id)),
            author: k(author),
            create_time: 100 * HOUR - hours_old * HOUR,
            relation: AuthorRelation::Connection,
            matched_hashtags: vec![],
            engaged: Vec::new(),
            counts,
        }
    }

    #[test]
    fn comments_and_shares_weigh_more_than_reactions() {
        let r = FeedRanker::default();
        let reactions = r.engagement(&Counts {
            reactions: 3,
            ..Default::default()
        });
        let comments = r.engagement(&Counts {
            comments: 3,
            ..Default::default()
        });
        let shares = r.engagement(&Counts {
            shares: 3,
            ..Default::default()
        });
        assert!(reactions < comments && comments < shares);
        assert_eq!(r.engagement(&Counts::default()), 1.0);
    }

    #[test]
    fn freshness_halves_every_half_life() {
        let r = FeedRanker::default();
        assert_eq!(r.freshness(10 * HOUR, 10 * HOUR), 1.0);
        let f = r.freshness(0, 36 * HOUR);
        assert!((f - 0.5).abs() < 1e-12);
        // A post from the future (clock skew) is not fresher than new.
        assert_eq!(r.freshness(11 * HOUR, 10 * HOUR), 1.0);
    }

    #[test]
    fn more_engaged_post_ranks_first_at_equal_age() {
        let r = FeedRanker::default();
        let quiet = candidate("p1", "a", 2, Counts::default());
        let busy = candidate(
            "p2",
            "b",
            2,
            Counts {
                reactions: 5,
                comments: 2,
                shares: 1,
            },
        );
        let ranked = r.rank(vec![quiet, busy], &Names, 100 * HOUR);
        assert_eq!(&*post_id(&ranked[0]), "p2");
        assert!(ranked[0].score > ranked[1].score);
    }

    #[test]
    fn an_authors_later_posts_are_damped() {
        let r = FeedRanker::default();
        let posts = vec![
            candidate("a1", "a", 1, Counts::default()),
            candidate("a2", "a", 1, Counts::default()),
            candidate("a3", "a", 1, Counts::default()),
            candidate("b1", "b", 5, Counts::default()),
        ];
        let ranked = r.rank(posts, &Names, 100 * HOUR);
        let order: Vec<_> = ranked.iter().map(|r| post_id(r).to_string()).collect();
        // b's older post beats a's third post thanks to the diversity factor.
        assert_eq!(order[0], "a3");
        assert!(order.iter().position(|p| *p == "b1") < order.iter().position(|p| *p == "a1"));
        let diversities: Vec<f64> = ranked
            .iter()
            .filter(|r| r.candidate.author == k("a"))
            .map(|r| r.breakdown.diversity)
            .collect();
        assert_eq!(diversities, [1.0, 0.6, 0.6 * 0.6]);
    }

    #[test]
    fn score_is_the_product_of_its_factors() {
        let r = FeedRanker::default();
        let c = candidate(
            "p",
            "a",
            3,
            Counts {
                reactions: 2,
                comments: 1,
                shares: 0,
            },
        );
        let ranked = r.rank(vec![c], &Names, 100 * HOUR);
        let b = ranked[0].breakdown;
        assert_eq!(
            ranked[0].score,
            b.engagement * b.freshness * b.affinity * b.diversity
        );
    }

    #[test]
    fn reasons_name_author_then_engagers_then_hashtags() {
        let mut c = candidate("p", "author", 1, Counts::default());
        c.engaged = vec![
            (EngagementKind::Reacted, k("y")),
            (EngagementKind::Reacted, k("x")),
            (EngagementKind::Commented, k("y")),
            (EngagementKind::Reacted, k("x")),
        ];
        c.normalize_engaged();
        c.matched_hashtags = vec![k("rust")];
        assert_eq!(
            reasons(&c, &Names),
            vec![
                Reason::ConnectionPosted("author".into()),
                Reason::ConnectionEngaged(EngagementKind::Commented, "y".into()),
                Reason::ConnectionEngaged(EngagementKind::Reacted, "x".into()),
                Reason::ConnectionEngaged(EngagementKind::Reacted, "y".into()),
                Reason::FollowedHashtag("rust".into()),
            ]
        );
    }

    #[test]
    fn social_proof_counts_distinct_connections_and_is_capped() {
        let r = FeedRanker::default();
        let mut c = candidate("p", "a", 1, Counts::default());
        c.relation = AuthorRelation::Other;
        c.engaged = vec![
            (EngagementKind::Reacted, k("x")),
            (EngagementKind::Commented, k("x")),
        ];
        c.normalize_engaged();
        assert!((r.affinity(&c) - (0.4 + 0.15)).abs() < 1e-12);
        c.engaged
            .extend((0..20).map(|i| (EngagementKind::Shared, k(&format!("m{i}")))));
        c.normalize_engaged();
        assert_eq!(c.distinct_engagers(), 21);
        assert!((r.affinity(&c) - (0.4 + 0.6)).abs() < 1e-12);
    }

    #[test]
    fn the_top_of_a_ranking_is_the_ranking_cut() {
        let r = FeedRanker::default();
        let posts: Vec<Candidate> = (0..50)
            .map(|i| {
                candidate(
                    &format!("p{i:02}"),
                    &format!("a{}", i % 7),
                    i % 11,
                    Counts {
                        reactions: i * 3 % 13,
                        comments: i % 4,
                        shares: i % 3,
                    },
                )
            })
            .collect();
        let all = r.rank(posts.clone(), &Names, 100 * HOUR);
        assert_eq!(r.rank_top(posts, &Names, 100 * HOUR, 10), all[..10]);
    }
}
