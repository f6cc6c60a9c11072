//! Training examples from the log, and a model trained on them: the log is replayed in time
//! order, so each view's features are computed from the post's counts as they stood before it
//! (a post's later success never leaks into its earlier views), and its labels are the
//! engagement by the same member on the same post within the label window after it.
//! FTRL-Proximal learns from the examples in time order; the latest slice of time is the
//! holdout, predicted by models fitted only on what came before it, which chooses the model's
//! make-up and gives its figures (see [`train`]).

use std::time::{Duration, Instant};

use foldhash::HashMap;

use super::ftrl::{family_set, Ftrl, FtrlParams};
use crate::domain::features::{features, Family, Impression};
use crate::domain::model::{CalibrationBucket, Kind, KindReport, ModelReport, RankingModel, KINDS};
use crate::domain::ranking::{model_params, Taste};
use crate::domain::Counts;
use crate::index::TrainingData;

/// How a model is trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    /// β, λ1 and λ2 of FTRL-Proximal; its α (the learning rate) is chosen among `alphas`.
    pub ftrl: FtrlParams,
    /// The learning rates tried, on the time-split holdout.
    pub alphas: [f64; 3],
    /// An engagement counts for a view when it comes at most this long after it (or up to a
    /// minute before: a client may record the view after the reaction).
    pub label_window: Duration,
    /// The latest share of the examples (by view time) that is the holdout.
    pub holdout_share: f64,
    /// Share of one core training may use (it sleeps in between); 1: all it can.
    pub cpu_share: f64,
    /// Passes over the examples per fit (FTRL's per-coordinate rates shrink as it goes: one
    /// pass over a log of this size leaves the shared weights far from their optimum).
    pub epochs: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            ftrl: FtrlParams::default(),
            alphas: [0.1, 0.3, 1.0],
            label_window: Duration::from_secs(3600),
            holdout_share: 0.2,
            cpu_share: 1.0,
            epochs: 3,
        }
    }
}

/// Engagement up to this long before a view still labels it.
const EARLY: i64 = 60_000_000;

/// A family of hashed features joins the model only if it lowers the holdout's log loss by
/// at least this share (a per-key coefficient must earn its memory and its noise).
const MIN_GAIN: f64 = 0.001;

/// Sleeps between bursts of work so training uses at most `share` of a core.
struct Throttle {
    share: f64,
    since: Instant,
}

impl Throttle {
    fn tick(&mut self) {
        if self.share < 1.0 && self.since.elapsed() >= Duration::from_millis(50) {
            let busy = self.since.elapsed();
            std::thread::sleep(busy.mul_f64(1.0 / self.share.max(0.05) - 1.0));
            self.since = Instant::now();
        }
    }
}

/// Predictions and labels of the holdout.
type Holdout = Vec<([f64; KINDS], [bool; KINDS])>;

/// The holdout's log loss summed over the kinds (0 without a holdout).
fn holdout_loss(pairs: &Holdout) -> f64 {
    (0..KINDS)
        .map(|k| {
            let l = log_loss(&pairs.iter().map(|(p, y)| (p[k], y[k])).collect::<Vec<_>>());
            if l.is_nan() {
                0.0
            } else {
                l
            }
        })
        .sum()
}

/// Trains a model of `version` from `data` as of `now`. The time split decides what the
/// model is made of: fitted (`epochs` passes) on the examples before the holdout and judged
/// on the holdout by log loss, it picks the learning rate (dense features alone), then each
/// family of hashed crosses that lowers the loss on its own; the model published is the one
/// chosen, fitted again on every example. The report's holdout figures are those of the
/// chosen model fitted before the holdout, beside the dense-only model's.
pub fn train(
    data: &TrainingData,
    settings: &TrainSettings,
    now: i64,
    version: u64,
) -> RankingModel {
    let started = Instant::now();
    let window = settings.label_window.as_micros() as i64;
    let label_window = settings.label_window;
    let epochs = settings.epochs.max(1);

    // The holdout: the latest `holdout_share` of the examples by view time.
    let mut example_times: Vec<i64> = data
        .records
        .iter()
        .enumerate()
        .filter(|(i, _)| is_example(data, window, now, *i))
        .map(|(_, r)| r.time)
        .collect();
    let examples_total = example_times.len();
    let holdout_start = if examples_total == 0 {
        now
    } else {
        let at = (((examples_total as f64) * (1.0 - settings.holdout_share)).floor() as usize)
            .min(examples_total - 1);
        *example_times.select_nth_unstable(at).1
    };
    drop(example_times);

    let mut throttle = Throttle {
        share: settings.cpu_share,
        since: Instant::now(),
    };
    let mut state_bytes = 0usize;
    // `families`: None for the global learner.
    let mut trial = |alpha: f64, families: Option<u32>| -> Holdout {
        let params = FtrlParams {
            alpha,
            ..settings.ftrl
        };
        let mut ftrl = match families {
            Some(families) => Ftrl::with_families(params, families),
            None => Ftrl::global(params),
        };
        for _ in 0..epochs {
            replay(data, label_window, now, |f, labels, time| {
                if time < holdout_start {
                    ftrl.learn(f, labels);
                    throttle.tick();
                }
            });
        }
        let mut pairs = Vec::new();
        replay(data, label_window, now, |f, labels, time| {
            if time >= holdout_start {
                pairs.push((ftrl.predict(f), labels));
            }
        });
        state_bytes = state_bytes.max(ftrl.state_bytes());
        pairs
    };

    // The learning rate, on the dense features.
    let mut selection: Vec<(String, f64)> = Vec::new();
    let mut best: Option<(f64, f64, Holdout)> = None;
    for alpha in settings.alphas {
        let pairs = trial(alpha, Some(0));
        let loss = holdout_loss(&pairs);
        selection.push((format!("dense, learning rate {alpha}"), loss));
        if best.as_ref().is_none_or(|(_, l, _)| loss < *l) {
            best = Some((alpha, loss, pairs));
        }
    }
    let (alpha, base_loss, dense_only) = best.expect("alphas is not empty");
    // The global reference: nothing about the member.
    let global = trial(alpha, None);
    selection.push((
        format!("global (no member features), learning rate {alpha}"),
        holdout_loss(&global),
    ));
    // Each family of crosses on top.
    let mut families = 0u32;
    for family in Family::ALL {
        let loss = holdout_loss(&trial(alpha, Some(family_set(&[family]))));
        selection.push((format!("dense + {}", family.name()), loss));
        if loss < base_loss * (1.0 - MIN_GAIN) {
            families |= family_set(&[family]);
        }
    }
    let mut chosen = dense_only;
    if families != 0 {
        let pairs = trial(alpha, Some(families));
        let loss = holdout_loss(&pairs);
        let names: Vec<&str> = Family::ALL
            .iter()
            .filter(|f| families & family_set(&[**f]) != 0)
            .map(|f| f.name())
            .collect();
        selection.push((format!("dense + {}", names.join(" + ")), loss));
        if loss < base_loss {
            chosen = pairs;
        } else {
            families = 0;
        }
    }

    // The model published: the choice, fitted on every example.
    let mut full = Ftrl::with_families(
        FtrlParams {
            alpha,
            ..settings.ftrl
        },
        families,
    );
    let mut positives = [0u64; KINDS];
    let mut examples = 0u64;
    for epoch in 0..epochs {
        replay(data, label_window, now, |f, labels, _| {
            if epoch == 0 {
                examples += 1;
                for (p, l) in positives.iter_mut().zip(labels) {
                    *p += u64::from(l);
                }
            }
            full.learn(f, labels);
            throttle.tick();
        });
    }
    state_bytes = state_bytes.max(full.state_bytes());

    let (dense, hashed) = full.export();
    let mut model = RankingModel {
        version,
        dense,
        hashed,
        report: ModelReport::default(),
    };
    let nonzero = model.nonzero_weights();
    let mut kinds: [KindReport; KINDS] = Default::default();
    for (k, report) in kinds.iter_mut().enumerate() {
        let chosen_pairs: Vec<(f64, bool)> = chosen.iter().map(|(p, y)| (p[k], y[k])).collect();
        let global_pairs: Vec<(f64, bool)> = global.iter().map(|(p, y)| (p[k], y[k])).collect();
        *report = KindReport {
            positives: positives[k],
            holdout_log_loss: log_loss(&chosen_pairs),
            holdout_auc: auc(&chosen_pairs),
            global_log_loss: log_loss(&global_pairs),
            global_auc: auc(&global_pairs),
            calibration: calibration(&chosen_pairs, 10),
            nonzero_weights: nonzero[k],
        };
    }
    model.report = ModelReport {
        train_time: now,
        examples,
        log_records: data.records.len() as u64,
        holdout_start,
        holdout_examples: chosen.len() as u64,
        train_seconds: started.elapsed().as_secs_f64(),
        state_bytes: state_bytes as u64,
        label_window: window,
        kinds,
        learning_rate: alpha,
        families: Family::ALL
            .into_iter()
            .filter(|f| families & family_set(&[*f]) != 0)
            .collect(),
        selection,
        epochs: epochs as u32,
    };
    model
}

/// Whether record `i` is an example: a view whose post is known and whose label window
/// closed by `now`.
fn is_example(data: &TrainingData, window: i64, now: i64, i: usize) -> bool {
    let r = &data.records[i];
    r.view.is_some()
        && r.time + window <= now
        && data.posts.get(r.post as usize).is_some_and(Option::is_some)
}

/// Replays the log in time order and calls `each` with every example's features (as of its
/// view), labels and view time, in view-time order; returns how many there were.
pub fn replay(
    data: &TrainingData,
    label_window: Duration,
    now: i64,
    mut each: impl FnMut(&crate::domain::features::Features, [bool; KINDS], i64),
) -> u64 {
    let window = label_window.as_micros() as i64;
    // Engagement per (member, post), for the labels.
    let mut engaged: HashMap<(u64, u32), Vec<(Kind, i64)>> = HashMap::default();
    for r in &data.records {
        if let Some(kind) = r.kind {
            engaged
                .entry((r.member, r.post))
                .or_default()
                .push((kind, r.time));
        }
    }
    let mut order: Vec<usize> = (0..data.records.len()).collect();
    // In time order; at the same time, engagement before views (it happened first).
    order.sort_by_key(|&i| (data.records[i].time, data.records[i].view.is_some()));
    let mut counts: Vec<Counts> = vec![Counts::default(); data.posts.len()];
    // What each member cares about, as of the record being replayed.
    let params = model_params();
    let mut tastes: HashMap<u64, Taste> = HashMap::default();
    let mut examples = 0u64;
    for &i in &order {
        let r = &data.records[i];
        let post = r.post as usize;
        let known = data.posts.get(post).copied().flatten();
        if let Some(kind) = r.kind {
            let c = &mut counts[post];
            let weight = match kind {
                Kind::React => {
                    c.reactions[0] += 1;
                    1.0
                }
                Kind::Comment => {
                    c.comments += 1;
                    params.comment_weight
                }
                Kind::Share => {
                    c.shares += 1;
                    params.share_weight
                }
            };
            if let Some(p) = known {
                tastes.entry(r.member).or_default().engaged(
                    p.tags(),
                    p.author,
                    weight,
                    r.time,
                    &params,
                );
            }
            continue;
        }
        if is_example(data, window, now, i) {
            if let (Some(view), Some(p)) = (r.view, known) {
                let (interest, affinity) = tastes
                    .get(&r.member)
                    .map_or((0.0, 0.0), |t| t.lifts(p.tags(), p.author, r.time, &params));
                let f = features(&Impression {
                    interest,
                    affinity,
                    member: r.member,
                    post: p.post,
                    author: p.author,
                    tags: p.tags(),
                    create_time: p.create_time,
                    counts: &counts[post],
                    relation: view.relation,
                    followed_hashtags: usize::from(view.followed_hashtags),
                    at: r.time,
                });
                let mut labels = [false; KINDS];
                if let Some(list) = engaged.get(&(r.member, r.post)) {
                    for (kind, t) in list {
                        if *t >= r.time - EARLY && *t <= r.time + window {
                            labels[*kind as usize] = true;
                        }
                    }
                }
                each(&f, labels, r.time);
                examples += 1;
            }
        }
        counts[post].impressions += 1;
        if let Some(p) = known {
            tastes
                .entry(r.member)
                .or_default()
                .shown(p.tags(), p.author, r.time, &params);
        }
    }
    examples
}

/// Mean negative log-likelihood (NaN without examples).
pub fn log_loss(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = pairs
        .iter()
        .map(|(p, y)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if *y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    sum / pairs.len() as f64
}

/// The area under the ROC curve: the chance a random positive is predicted above a random
/// negative (ties count half); NaN without both.
pub fn auc(pairs: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0.0f64, 0u64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1..=j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for item in &sorted[i..j] {
            if item.1 {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = sorted.len() as u64 - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// Predicted against observed rate per `buckets` equal-count slices of the predictions.
pub fn calibration(pairs: &[(f64, bool)], buckets: usize) -> Vec<CalibrationBucket> {
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = sorted.len();
    (0..buckets)
        .filter_map(|b| {
            let (lo, hi) = (b * n / buckets, (b + 1) * n / buckets);
            let slice = &sorted[lo..hi];
            if slice.is_empty() {
                return None;
            }
            let len = slice.len() as f64;
            Some(CalibrationBucket {
                mean_predicted: slice.iter().map(|(p, _)| p).sum::<f64>() / len,
                observed_rate: slice.iter().filter(|(_, y)| *y).count() as f64 / len,
                examples: slice.len() as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
