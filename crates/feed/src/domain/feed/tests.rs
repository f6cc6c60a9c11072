use std::collections::HashMap;

use super::*;
use crate::domain::{PostKey, ProfileSet};

const HOUR: i64 = 3_600_000_000;
const NOW: i64 = 1000 * HOUR;

/// A source of fixed candidates for one member (`ada`), posts and members named by number.
struct Fixed {
    candidates: Vec<Candidate>,
    /// Why each post that is not a candidate is left out.
    left_out: HashMap<&'static str, NotGathered>,
}

impl Ids for Fixed {
    fn post_id(&self, post: PostKey) -> Option<Arc<str>> {
        Some(Arc::from(format!("p{post}").as_str()))
    }
    fn member_id(&self, member: super::super::Key) -> Arc<str> {
        Arc::from(format!("m{member}").as_str())
    }
    fn hashtag(&self, tag: super::super::Key) -> Arc<str> {
        Arc::from(format!("t{tag}").as_str())
    }
}

impl CandidateSource for Fixed {
    fn gather(&self, member_id: &str, _: i64) -> Option<Gathered> {
        (member_id == "ada").then(|| Gathered {
            candidates: self.candidates.clone(),
            history: Vec::new(),
            considered: self.candidates.len(),
        })
    }

    fn why_not_gathered(&self, member_id: &str, post_id: &str, _: i64) -> Option<NotGathered> {
        (member_id == "ada").then(|| {
            self.left_out
                .get(post_id)
                .copied()
                .unwrap_or(NotGathered::UnknownPost)
        })
    }
}

fn candidate(post: PostKey, author: u32, hours_old: i64) -> Candidate {
    Candidate::plain(post, author, NOW - hours_old * HOUR)
}

fn pronet() -> Arc<RankingProfile> {
    ProfileSet::built_in().get("pronet").unwrap().clone()
}

#[test]
fn a_feed_ranks_the_gathered_candidates_and_a_member_without_a_profile_has_none() {
    let source = Fixed {
        candidates: vec![candidate(1, 1, 10), candidate(2, 2, 1)],
        left_out: HashMap::new(),
    };
    let feed = rank_feed(&source, "ada", NOW, pronet(), 10).unwrap();
    assert_eq!(feed.scored, 2);
    let order: Vec<u64> = feed
        .ranking
        .items
        .iter()
        .map(|r| r.candidate.post)
        .collect();
    assert_eq!(order, [2, 1], "the fresher post first");
    assert!(rank_feed(&source, "nobody", NOW, pronet(), 10).is_none());
}

#[test]
fn explanations_give_the_place_or_the_rule_that_keeps_a_post_out() {
    let mut engaged = candidate(3, 3, 1);
    engaged.engaged_by_viewer = true;
    // Six posts of one author: the profile's cap is five.
    let mut candidates: Vec<Candidate> = (10..16).map(|p| candidate(p, 9, p as i64)).collect();
    candidates.push(candidate(1, 1, 2));
    candidates.push(engaged);
    let source = Fixed {
        candidates,
        left_out: [("p7", NotGathered::MutedHashtag)].into(),
    };
    let e = explain(&source, "ada", "p1", pronet(), NOW).unwrap();
    assert!(matches!(e.standing, Standing::InFeed(_)), "{e:?}");
    assert!(e.ranked.is_some() && e.summary.starts_with("In your feed at place"));

    let e = explain(&source, "ada", "p3", pronet(), NOW).unwrap();
    assert_eq!(e.standing, Standing::Engaged);
    assert!(e.ranked.unwrap().score > 0.0, "scored alone");

    let e = explain(&source, "ada", "p15", pronet(), NOW).unwrap();
    assert_eq!(e.standing, Standing::AuthorCap);
    assert_eq!(
        e.summary,
        "The author already has 5 posts ranked above this one."
    );

    let e = explain(&source, "ada", "p7", pronet(), NOW).unwrap();
    assert_eq!(e.standing, Standing::NotGathered(NotGathered::MutedHashtag));
    assert!(e.ranked.is_none());
    let e = explain(&source, "ada", "p99", pronet(), NOW).unwrap();
    assert_eq!(e.standing, Standing::NotGathered(NotGathered::UnknownPost));
    assert!(explain(&source, "nobody", "p1", pronet(), NOW).is_none());
}
