use super::*;
use crate::domain::{PostKey, ProfileSet};

const HOUR: i64 = 3_600_000_000;
const NOW: i64 = 1000 * HOUR;

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

fn profile(name: &str) -> Arc<RankingProfile> {
    ProfileSet::built_in().get(name).unwrap().clone()
}

fn pronet() -> FeedRanker {
    FeedRanker::new(profile("pronet"))
}

fn candidate(id: &str, author: &str, hours_old: i64) -> Candidate {
    Candidate::plain(PostKey::from(k(id)), k(author), NOW - hours_old * HOUR)
}

fn tagged(mut c: Candidate, tags: &[&str]) -> Candidate {
    c.tags = TagSet::from_keys(tags.iter().map(|t| k(t)));
    c
}

fn with_counts(mut c: Candidate, likes: i64, comments: i64, impressions: i64) -> Candidate {
    c.counts.reactions[0] = likes;
    c.counts.comments = comments;
    c.counts.impressions = impressions;
    c
}

fn order(r: &Ranking) -> Vec<String> {
    r.items
        .iter()
        .map(|i| Names.post_id(i.candidate.post).unwrap().to_string())
        .collect()
}

fn rank(ranker: &FeedRanker, candidates: Vec<Candidate>, viewer: &Viewer) -> Ranking {
    ranker.rank(candidates, viewer, &Names, NOW, 1000)
}

#[test]
fn engagement_per_impression_beats_raw_counts() {
    // 8 likes from 20 viewers is a better post than 30 likes from 5,000.
    let small = with_counts(candidate("small", "a", 2), 8, 0, 20);
    let big = with_counts(candidate("big", "b", 2), 30, 0, 5000);
    let r = rank(
        &pronet(),
        vec![big.clone(), small.clone()],
        &Viewer::default(),
    );
    assert_eq!(order(&r), ["small", "big"]);
    // Raw popularity says the opposite.
    let pop = FeedRanker::new(profile("popularity"));
    assert_eq!(
        order(&rank(&pop, vec![small, big], &Viewer::default())),
        ["big", "small"]
    );
}

#[test]
fn the_prior_keeps_one_lucky_reaction_from_winning() {
    // 1 like from 1 viewer is not better than 40 likes from 200.
    let lucky = with_counts(candidate("lucky", "a", 2), 1, 0, 1);
    let proven = with_counts(candidate("proven", "b", 2), 40, 0, 200);
    let r = rank(&pronet(), vec![lucky, proven], &Viewer::default());
    assert_eq!(order(&r), ["proven", "lucky"]);
}

#[test]
fn reaction_types_are_weighted_separately_and_comments_above_reactions() {
    let p = profile("pronet");
    let v = Viewer::default();
    let with = |slot: usize, comments: i64| {
        let mut c = candidate("q", "a", 1);
        c.counts.impressions = 100;
        if slot < 6 {
            c.counts.reactions[slot] = 3;
        }
        c.counts.comments = comments;
        signal_values(&p, &c, &v, &Learned::prior(), &Names, NOW)[Signal::Quality as usize]
    };
    let (insightful, funny, comment) = (with(4, 0), with(5, 0), with(6, 3));
    assert!(insightful > funny, "{insightful} vs {funny}");
    assert!(comment > insightful);
}

#[test]
fn freshness_halves_every_half_life() {
    let p = profile("pronet");
    let v = Viewer::default();
    let f = |hours| {
        let c = candidate("f", "a", hours);
        signal_values(&p, &c, &v, &Learned::prior(), &Names, NOW)[Signal::Freshness as usize].exp()
    };
    assert_eq!(f(0), 1.0);
    let half_life = p.params.half_life_hours as i64;
    assert!((f(half_life) - 0.5).abs() < 1e-12);
    // A post from the future (clock skew) is not fresher than new.
    assert_eq!(f(-5), 1.0);
}

#[test]
fn a_member_who_engages_with_rust_and_scrolls_past_sales_gets_more_rust() {
    let p = profile("pronet");
    let mut history = Vec::new();
    for i in 0..10 {
        let mut rust = HistoryEvent {
            author: k(&format!("ra{i}")),
            tags: TagSet::from_keys([k("rust")]),
            time: NOW - (i + 1) * HOUR,
            reacted: false,
            commented: false,
            shared: false,
            hidden: false,
        };
        if i % 2 == 0 {
            rust.mark(EngagementKind::Reacted);
        }
        history.push(rust);
        history.push(HistoryEvent {
            author: k(&format!("sa{i}")),
            tags: TagSet::from_keys([k("sales")]),
            time: NOW - (i + 1) * HOUR,
            reacted: false,
            commented: false,
            shared: false,
            hidden: false,
        });
    }
    let viewer = Viewer::learn(&history, &p.params, NOW);
    let rust_interest = viewer.hashtag_interest(&TagSet::from_keys([k("rust")]), &p.params);
    let sales_interest = viewer.hashtag_interest(&TagSet::from_keys([k("sales")]), &p.params);
    assert!(rust_interest > 0.0 && sales_interest < 0.0);
    // Equal posts but for their hashtag: #rust first (the #sales one is a bit newer).
    let rust = tagged(candidate("rust-post", "x", 3), &["rust"]);
    let sales = tagged(candidate("sales-post", "y", 2), &["sales"]);
    let r = rank(&pronet(), vec![sales.clone(), rust.clone()], &viewer);
    assert_eq!(order(&r), ["rust-post", "sales-post"]);
    // Without the signal, the newer one wins.
    let ablated = FeedRanker::new(Arc::new(p.without(Signal::HashtagInterest)));
    assert_eq!(
        order(&rank(&ablated, vec![sales, rust], &viewer)),
        ["sales-post", "rust-post"]
    );
}

#[test]
fn a_hidden_post_teaches_less_of_its_author_and_hashtags_and_nothing_else() {
    let p = profile("pronet");
    let shown = |author: &str, tag: &str| HistoryEvent {
        author: k(author),
        tags: TagSet::from_keys([k(tag)]),
        time: NOW - HOUR,
        reacted: false,
        commented: false,
        shared: false,
        hidden: false,
    };
    let history = vec![shown("hype-author", "crypto"), shown("rust-author", "rust")];
    let before = Viewer::learn(&history, &p.params, NOW);
    let mut hid = history.clone();
    hid[0].hidden = true;
    let after = Viewer::learn(&hid, &p.params, NOW);
    let crypto = TagSet::from_keys([k("crypto")]);
    let rust = TagSet::from_keys([k("rust")]);
    assert!(
        after.author_affinity(k("hype-author"), &p.params)
            < before.author_affinity(k("hype-author"), &p.params) - 0.3
    );
    assert!(
        after.hashtag_interest(&crypto, &p.params)
            < before.hashtag_interest(&crypto, &p.params) - 0.3
    );
    assert_eq!(
        after.author_affinity(k("rust-author"), &p.params),
        before.author_affinity(k("rust-author"), &p.params)
    );
    assert_eq!(
        after.hashtag_interest(&rust, &p.params),
        before.hashtag_interest(&rust, &p.params)
    );
    // Switched off, a hide teaches no more than an impression.
    let mut params = p.params.clone();
    params.hide_exposures = 0.0;
    assert_eq!(
        Viewer::learn(&hid, &params, NOW),
        Viewer::learn(&history, &params, NOW)
    );
}

#[test]
fn old_history_counts_less() {
    let p = profile("pronet");
    let event = |age_hours: i64, reacted| HistoryEvent {
        author: k("old-author"),
        tags: TagSet::default(),
        time: NOW - age_hours * HOUR,
        reacted,
        commented: false,
        shared: false,
        hidden: false,
    };
    let recent = Viewer::learn(&[event(1, true), event(1, false)], &p.params, NOW);
    let old = Viewer::learn(&[event(400, true), event(400, false)], &p.params, NOW);
    let a = k("old-author");
    assert!(recent.author_affinity(a, &p.params) > old.author_affinity(a, &p.params));
    assert!(old.author_affinity(a, &p.params) > 0.0);
}

#[test]
fn seen_posts_sink_and_engaged_ones_leave() {
    let mut seen = candidate("seen", "a", 1);
    seen.seen = true;
    let mut engaged = candidate("engaged", "b", 1);
    engaged.engaged_by_viewer = true;
    let fresh = candidate("fresh", "c", 20);
    let r = rank(
        &pronet(),
        vec![seen, engaged.clone(), fresh],
        &Viewer::default(),
    );
    assert_eq!(order(&r), ["fresh", "seen"]);
    assert_eq!(r.dropped.engaged, 1);
    // The chronological profile keeps them.
    let chrono = FeedRanker::new(profile("chronological"));
    assert_eq!(
        order(&rank(&chrono, vec![engaged], &Viewer::default())),
        ["engaged"]
    );
}

#[test]
fn an_authors_later_posts_are_damped_and_capped() {
    let mut posts: Vec<Candidate> = (0..8)
        .map(|i| candidate(&format!("a{i}"), "prolific", i))
        .collect();
    posts.push(candidate("b1", "other", 5));
    let r = rank(&pronet(), posts, &Viewer::default());
    let got = order(&r);
    // At most author_cap (5) of the prolific author's posts; the other author's older post
    // beats the prolific author's third.
    assert_eq!(got.len(), 6);
    assert_eq!(r.dropped.capped, 3);
    assert!(got.iter().position(|p| p == "b1") < got.iter().position(|p| p == "a2"));
    let repeats: Vec<f64> = r
        .items
        .iter()
        .filter(|i| i.candidate.author == k("prolific"))
        .map(|i| i.values[Signal::AuthorRepeat as usize])
        .collect();
    assert_eq!(repeats, [0.0, 1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn topics_are_mixed() {
    // Three #rust posts slightly ahead of a #go post: the #go post moves up past the second
    // #rust one.
    let posts = vec![
        tagged(candidate("r1", "a", 1), &["rust"]),
        tagged(candidate("r2", "b", 1), &["rust"]),
        tagged(candidate("r3", "c", 1), &["rust"]),
        tagged(candidate("g1", "d", 2), &["go"]),
    ];
    let r = rank(&pronet(), posts, &Viewer::default());
    let got = order(&r);
    assert!(got[0].starts_with('r') && got[1] == "g1", "{got:?}");
    let top = &r.items[2];
    assert_eq!(top.values[Signal::TopicRepeat as usize], 1.0);
}

#[test]
fn the_score_is_exp_of_the_sum_of_contributions_and_the_product_of_the_breakdown() {
    let p = profile("pronet");
    let mut c = tagged(with_counts(candidate("p", "a", 3), 4, 1, 50), &["rust"]);
    c.engaged = vec![(EngagementKind::Commented, k("x"))];
    c.matched_hashtags = vec![k("rust")];
    let r = rank(&pronet(), vec![c], &Viewer::default());
    let item = &r.items[0];
    let sum: f64 = item.signals(&p).iter().map(|s| s.contribution).sum();
    assert!((item.score - sum.exp()).abs() < 1e-12);
    let b = item.breakdown(&p);
    let product = b.engagement * b.freshness * b.affinity * b.diversity;
    assert!((item.score - product).abs() < 1e-12);
    // Only the weighted signals are shown.
    assert!(item.signals(&p).iter().all(|s| s.weight != 0.0));
    assert!(item
        .signals(&p)
        .iter()
        .any(|s| s.signal == Signal::SocialProof && s.value > 0.0));
}

#[test]
fn the_baselines_rank_by_their_published_formulas() {
    let v = Viewer::default();
    // Lemmy: log(max(2, votes + 2)) / (hours + 2)^1.8.
    let lemmy = FeedRanker::new(profile("lemmy_hot"));
    let a = with_counts(candidate("l-old-popular", "a", 20), 100, 0, 0);
    let b = with_counts(candidate("l-new-quiet", "b", 1), 1, 0, 0);
    let r = rank(&lemmy, vec![a, b], &v);
    let hot = |votes: f64, hours: f64| (votes + 2.0).max(2.0).ln() / (hours + 2.0).powf(1.8);
    let expected = if hot(100.0, 20.0) > hot(1.0, 1.0) {
        ["l-old-popular", "l-new-quiet"]
    } else {
        ["l-new-quiet", "l-old-popular"]
    };
    assert_eq!(order(&r), expected);
    let ratio = r.items[0].score / r.items[1].score;
    let hots = [hot(100.0, 20.0), hot(1.0, 1.0)];
    let want = hots[0].max(hots[1]) / hots[0].min(hots[1]);
    assert!((ratio - want).abs() < 1e-9, "{ratio} vs {want}");
    // X: one reply outweighs 50 likes.
    let x = FeedRanker::new(profile("x_2023"));
    let replied = with_counts(candidate("x-replied", "a", 1), 0, 1, 100);
    let liked = with_counts(candidate("x-liked", "b", 1), 50, 0, 100);
    assert_eq!(
        order(&rank(&x, vec![liked, replied], &v)),
        ["x-replied", "x-liked"]
    );
    // Chronological: newest first whatever the engagement.
    let chrono = FeedRanker::new(profile("chronological"));
    let old = with_counts(candidate("c-old", "a", 10), 100, 10, 100);
    let new = candidate("c-new", "b", 1);
    assert_eq!(
        order(&rank(&chrono, vec![old, new], &v)),
        ["c-new", "c-old"]
    );
}

#[test]
fn the_top_of_a_ranking_is_the_ranking_cut() {
    let posts: Vec<Candidate> = (0..60)
        .map(|i| {
            tagged(
                with_counts(
                    candidate(&format!("t{i:02}"), &format!("a{}", i % 7), i % 11),
                    i * 3 % 13,
                    i % 4,
                    40 + i,
                ),
                &[["rust", "go", "sales"][(i % 3) as usize]],
            )
        })
        .collect();
    let ranker = pronet();
    let all = ranker.rank(posts.clone(), &Viewer::default(), &Names, NOW, 1000);
    let top = ranker.rank(posts, &Viewer::default(), &Names, NOW, 10);
    assert_eq!(top.items, all.items[..10]);
}

#[test]
fn tagsets_keep_the_first_four_distinct_tags() {
    let t = TagSet::from_keys([1, 2, 2, 3, 4, 5]);
    assert_eq!(t.as_slice(), [1, 2, 3, 4]);
    assert!(TagSet::from_keys([]).is_empty());
}

#[test]
fn reasons_name_author_then_engagers_then_hashtags() {
    let mut c = candidate("p", "author", 1);
    c.engaged = vec![
        (EngagementKind::Reacted, k("y")),
        (EngagementKind::Reacted, k("x")),
        (EngagementKind::Commented, k("y")),
        (EngagementKind::Reacted, k("x")),
    ];
    c.normalize_engaged();
    c.matched_hashtags = vec![k("rust")];
    assert_eq!(c.distinct_engagers(), 2);
    assert_eq!(
        crate::domain::reasons(&c, &Names),
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
fn a_taste_kept_event_by_event_reads_the_same_interests_as_a_viewer_learned_from_history() {
    let p = Params::default();
    let (rust, go) = (k("rust"), k("go"));
    let (ann, bob) = (k("ann"), k("bob"));
    let hist = [
        (rust, ann, 10 * HOUR, true),
        (rust, bob, 20 * HOUR, false),
        (go, bob, 30 * HOUR, false),
        (go, ann, 40 * HOUR, true),
        (rust, ann, 50 * HOUR, true),
    ];
    let history: History = hist
        .iter()
        .map(|&(tag, author, time, reacted)| HistoryEvent {
            author,
            tags: TagSet::from_keys([tag]),
            time,
            reacted,
            commented: false,
            shared: false,
            hidden: false,
        })
        .collect();
    let now = 60 * HOUR;
    let viewer = Viewer::learn(&history, &p, now);
    let mut taste = Taste::default();
    let h = |key: Key| u64::from(key) + 1000;
    for &(tag, author, time, reacted) in &hist {
        taste.shown(&[h(tag)], h(author), time, &p);
        if reacted {
            taste.engaged(&[h(tag)], h(author), 1.0, time, &p);
        }
    }
    for (tag, author) in [(rust, ann), (go, bob), (rust, bob)] {
        let (interest, affinity) = taste.lifts(&[h(tag)], h(author), now, &p);
        let want_interest = viewer.hashtag_interest(&TagSet::from_keys([tag]), &p);
        let want_affinity = viewer.author_affinity(author, &p);
        assert!(
            (interest - want_interest).abs() < 1e-9,
            "{interest} vs {want_interest}"
        );
        assert!(
            (affinity - want_affinity).abs() < 1e-9,
            "{affinity} vs {want_affinity}"
        );
    }
    // Ann's posts drew engagement, Bob's none.
    assert!(taste.lifts(&[], h(ann), now, &p).1 > 0.0);
    assert!(taste.lifts(&[], h(bob), now, &p).1 < 0.0);
}
