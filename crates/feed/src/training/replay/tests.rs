use super::*;
use crate::domain::features::{stable_hash, DENSE_NAMES};
use crate::domain::AuthorRelation;
use crate::index::{TrainingPost, TrainingRecord, TrainingView};

const HOUR: i64 = 3_600_000_000;

fn dense(name: &str) -> usize {
    DENSE_NAMES.iter().position(|n| *n == name).unwrap()
}

fn post(id: &str, tag: &str) -> Option<TrainingPost> {
    let mut tags = [0u64; crate::domain::RANKED_TAGS];
    tags[0] = stable_hash(tag);
    Some(TrainingPost {
        post: stable_hash(id),
        author: stable_hash(&format!("author-of-{id}")),
        tags,
        tags_len: 1,
        create_time: 0,
    })
}

fn view(member: &str, post: u32, time: i64) -> TrainingRecord {
    TrainingRecord {
        time,
        member: stable_hash(member),
        post,
        view: Some(TrainingView {
            relation: AuthorRelation::Connection,
            followed_hashtags: 0,
        }),
        kind: None,
    }
}

fn engaged(member: &str, post: u32, kind: Kind, time: i64) -> TrainingRecord {
    TrainingRecord {
        time,
        member: stable_hash(member),
        post,
        view: None,
        kind: Some(kind),
    }
}

#[test]
fn a_views_features_see_only_what_came_before_it_even_when_logged_out_of_order() {
    // An import logs in any order: the later reactions come first in the log.
    let data = TrainingData {
        records: vec![
            engaged("b", 0, Kind::React, 5 * HOUR),
            engaged("c", 0, Kind::React, 6 * HOUR),
            view("a", 0, 2 * HOUR),
            view("b", 0, 4 * HOUR),
            view("d", 0, 7 * HOUR),
        ],
        posts: vec![post("p1", "rust")],
        appended: 5,
    };
    let mut seen = Vec::new();
    let n = replay(
        &data,
        Duration::from_secs(3600),
        100 * HOUR,
        |f, labels, t| {
            seen.push((
                t,
                f.dense[dense("log_reactions")],
                f.dense[dense("log_views")],
                labels,
            ))
        },
    );
    assert_eq!(n, 3);
    let r = |n: f32| n.ln_1p();
    assert_eq!(seen[0], (2 * HOUR, r(0.0), r(0.0), [false; 3]));
    // b's view: one view before it, no reaction yet; b reacts an hour later: a positive.
    assert_eq!(seen[1], (4 * HOUR, r(0.0), r(1.0), [true, false, false]));
    // d's view: both reactions and two views before it.
    assert_eq!(seen[2], (7 * HOUR, r(2.0), r(2.0), [false; 3]));
}

#[test]
fn engagement_outside_the_label_window_and_open_windows_make_no_label_or_example() {
    let data = TrainingData {
        records: vec![
            view("a", 0, 0),
            engaged("a", 0, Kind::Comment, 2 * HOUR),
            // Its window (1 h) is still open at `now`: not an example yet.
            view("b", 0, 10 * HOUR - HOUR / 2),
        ],
        posts: vec![post("p1", "rust")],
        appended: 3,
    };
    let mut labels = Vec::new();
    let n = replay(&data, Duration::from_secs(3600), 10 * HOUR, |_, l, _| {
        labels.push(l)
    });
    assert_eq!(n, 1);
    assert_eq!(labels, [[false; 3]]);
}

#[test]
fn views_of_posts_never_known_are_no_examples() {
    let data = TrainingData {
        records: vec![view("a", 0, 0), view("a", 1, 0)],
        posts: vec![None, post("p2", "go")],
        appended: 2,
    };
    assert_eq!(
        replay(&data, Duration::from_secs(60), HOUR, |_, _, _| {}),
        1
    );
}

/// Members who react to one hashtag's posts and pass over the other's: only a personal model
/// can tell them apart.
fn two_tastes(views_per_member: usize) -> TrainingData {
    let mut rng = pronet_common::rng::SplitMix64::new(9);
    let mut records = Vec::new();
    let posts: Vec<Option<TrainingPost>> = (0..200)
        .map(|i| post(&format!("p{i}"), if i % 2 == 0 { "rust" } else { "go" }))
        .collect();
    for m in 0..100 {
        let member = format!("m{m}");
        let likes = m % 2;
        for v in 0..views_per_member {
            let p = rng.below(200) as u32;
            let t = ((v * 100 + m) as i64) * 60_000_000;
            records.push(view(&member, p, t));
            let rate = if p as usize % 2 == likes { 0.5 } else { 0.02 };
            if rng.unit() < rate {
                records.push(engaged(&member, p, Kind::React, t + 60_000_000));
            }
        }
    }
    let appended = records.len() as u64;
    TrainingData {
        records,
        posts,
        appended,
    }
}

#[test]
fn the_personal_model_beats_the_global_one_on_the_later_holdout() {
    let data = two_tastes(60);
    let now = 1_000 * HOUR;
    let model = train(&data, &TrainSettings::default(), now, 3);
    let r = &model.report;
    assert_eq!(model.version, 3);
    assert_eq!(r.examples, 6000);
    assert!(
        r.holdout_examples >= 1100 && r.holdout_examples <= 1300,
        "{r:?}"
    );
    let react = &r.kinds[Kind::React as usize];
    assert!(react.positives > 500, "{react:?}");
    assert!(
        react.holdout_auc > react.global_auc + 0.15,
        "personal {:.3} vs global {:.3}",
        react.holdout_auc,
        react.global_auc
    );
    assert!(react.holdout_log_loss < react.global_log_loss, "{react:?}");
    // Calibration: ten deciles, rising observed rates from the first to the last.
    assert_eq!(react.calibration.len(), 10);
    let first = react.calibration.first().unwrap();
    let last = react.calibration.last().unwrap();
    assert!(
        last.observed_rate > first.observed_rate + 0.2,
        "{:?}",
        react.calibration
    );
    // Nothing ever commented: the comment model learns only that.
    assert_eq!(r.kinds[Kind::Comment as usize].positives, 0);
}

#[test]
fn auc_log_loss_and_calibration_have_their_textbook_values() {
    let pairs = [(0.9, true), (0.8, false), (0.3, true), (0.1, false)];
    // Positives above negatives in 3 of 4 pairs.
    assert!((auc(&pairs) - 0.75).abs() < 1e-12);
    assert!((auc(&[(0.5, true), (0.5, false)]) - 0.5).abs() < 1e-12);
    assert!(auc(&[(0.5, true)]).is_nan());
    let ll = log_loss(&[(0.8, true), (0.2, false)]);
    assert!((ll - -(0.8f64.ln())).abs() < 1e-12);
    let c = calibration(&pairs, 2);
    assert_eq!(c.len(), 2);
    assert!((c[0].mean_predicted - 0.2).abs() < 1e-12);
    assert!((c[0].observed_rate - 0.5).abs() < 1e-12);
    assert_eq!(c[1].examples, 2);
}
