//! The ranking stage alone: 1,000 and 5,000 candidates of a realistic mix (counts, hashtags,
//! social proof, some seen), a viewer with a learned history, the default profile and the
//! learned one (a model with a weight for every member, post, author, hashtag and cross the
//! candidates bring, so every lookup hits).
//! `cargo bench -p pronet-feed --bench ranking` (goal: <= 1 ms for 1,000 on one core).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use pronet_common::rng::SplitMix64;
use pronet_feed::domain::model::RankingModel;
use pronet_feed::domain::{
    AuthorRelation, Candidate, Counts, EngagementKind, FeedRanker, HistoryEvent, Ids, Key, Learned,
    PostKey, ProfileSet, TagSet, Viewer,
};

const HOUR: i64 = 3_600_000_000;
const NOW: i64 = 10_000 * HOUR;

struct Names(Vec<Arc<str>>);

impl Ids for Names {
    fn post_id(&self, post: PostKey) -> Option<Arc<str>> {
        self.0.get(post as usize).cloned()
    }
    fn member_id(&self, member: Key) -> Arc<str> {
        Arc::from(format!("m{member}"))
    }
    fn hashtag(&self, tag: Key) -> Arc<str> {
        Arc::from(format!("t{tag}"))
    }
}

fn candidates(n: usize, rng: &mut SplitMix64) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let mut counts = Counts::default();
            for r in counts.reactions.iter_mut() {
                *r = rng.below(20) as i64;
            }
            counts.comments = rng.below(8) as i64;
            counts.shares = rng.below(3) as i64;
            counts.impressions = 50 + rng.below(2000) as i64;
            let engaged = (0..rng.below(3))
                .map(|_| (EngagementKind::Reacted, rng.below(5000) as Key))
                .collect();
            Candidate {
                post: i as PostKey,
                author: rng.below(300) as Key,
                create_time: NOW - rng.below(14 * 24) as i64 * HOUR,
                relation: if rng.below(4) == 0 {
                    AuthorRelation::Followed
                } else {
                    AuthorRelation::Connection
                },
                tags: TagSet::from_keys((0..rng.below(3)).map(|_| rng.below(200) as Key)),
                matched_hashtags: Vec::new(),
                engaged,
                counts,
                seen: rng.below(5) == 0,
                engaged_by_viewer: rng.below(50) == 0,
            }
        })
        .collect()
}

fn ranking(c: &mut Criterion) {
    let profile = ProfileSet::built_in().default_profile().clone();
    let ranker = FeedRanker::new(profile.clone());
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let history: Vec<HistoryEvent> = (0..500)
        .map(|_| {
            let mut h = HistoryEvent {
                author: rng.below(300) as Key,
                tags: TagSet::from_keys([rng.below(200) as Key]),
                time: NOW - rng.below(14 * 24) as i64 * HOUR,
                reacted: false,
                commented: false,
                shared: false,
                hidden: false,
            };
            if rng.below(10) == 0 {
                h.mark(EngagementKind::Reacted);
            }
            h
        })
        .collect();
    let mut group = c.benchmark_group("rank");
    for n in [1000usize, 5000] {
        let names = Names((0..n).map(|i| Arc::from(format!("{i:032x}"))).collect());
        let pool = candidates(n, &mut rng);
        // A model with a weight for every hashed feature of these candidates.
        let mut model = RankingModel::prior();
        let probe = Learned::new(Arc::new(RankingModel::prior()), "m1", &history, NOW);
        for c in &pool {
            for h in probe.features(c, &names, NOW).hashed() {
                model.hashed.insert(h.key, [0.1, -0.1, 0.05]);
            }
        }
        model.version = 1;
        let model = Arc::new(model);
        let learned_profile = ProfileSet::built_in().get("learned").unwrap().clone();
        let learned_ranker = FeedRanker::new(learned_profile);
        group.bench_with_input(BenchmarkId::new("learned", n), &n, |b, _| {
            b.iter_batched(
                || pool.clone(),
                |cands| {
                    let learned = Learned::new(model.clone(), "m1", &history, NOW);
                    learned_ranker.clone().with_model(learned).rank(
                        cands,
                        &Viewer::default(),
                        &names,
                        NOW,
                        1000,
                    )
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_with_input(BenchmarkId::new("learn+rank", n), &n, |b, _| {
            b.iter_batched(
                || pool.clone(),
                |cands| {
                    let viewer = Viewer::learn(&history, &profile.params, NOW);
                    ranker.rank(cands, &viewer, &names, NOW, 1000)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, ranking);
criterion_main!(benches);
