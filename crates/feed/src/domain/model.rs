//! The learned ranking model: per engagement kind (react, comment, share), a logistic model
//! over an impression's [`features`](super::features), `P(kind) = σ(Σ w × x)`. A model is
//! immutable once published (training makes a new version), so ranking scores with whatever
//! model is current as a pure function of the features, and every prediction can be shown
//! term by term.

use foldhash::HashMap;

use super::features::{Features, Hashed, DENSE};

/// Engagement kinds the model predicts.
pub const KINDS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    React,
    Comment,
    Share,
}

impl Kind {
    pub const ALL: [Kind; KINDS] = [Kind::React, Kind::Comment, Kind::Share];

    pub fn name(self) -> &'static str {
        match self {
            Self::React => "react",
            Self::Comment => "comment",
            Self::Share => "share",
        }
    }
}

/// What the model's rates are before it learned anything (version 0): a few percent of views
/// bring a reaction, fewer a comment or a share.
pub const PRIOR_RATES: [f64; KINDS] = [0.03, 0.005, 0.002];

/// How well a model predicted one kind on its holdout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindReport {
    pub positives: u64,
    pub holdout_log_loss: f64,
    pub holdout_auc: f64,
    /// The same, for the model trained beside it on the dense (global) features alone.
    pub global_log_loss: f64,
    pub global_auc: f64,
    pub calibration: Vec<CalibrationBucket>,
    pub nonzero_weights: u64,
}

/// Predicted against observed, for one decile of the predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CalibrationBucket {
    pub mean_predicted: f64,
    pub observed_rate: f64,
    pub examples: u64,
}

/// What a model learned from and how well it predicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelReport {
    /// When it was trained (microseconds).
    pub train_time: i64,
    pub examples: u64,
    pub log_records: u64,
    /// Examples viewed from then on were predicted before being learned from.
    pub holdout_start: i64,
    pub holdout_examples: u64,
    pub train_seconds: f64,
    pub state_bytes: u64,
    /// An engagement counts for a view when it follows within this many microseconds.
    pub label_window: i64,
    pub kinds: [KindReport; KINDS],
    /// FTRL's learning rate, as the holdout chose it.
    pub learning_rate: f64,
    /// The families of hashed crosses the holdout kept.
    pub families: Vec<super::features::Family>,
    /// Every candidate the holdout compared, with its log loss (summed over the kinds).
    pub selection: Vec<(String, f64)>,
    /// Passes over the examples per fit.
    pub epochs: u32,
}

/// One published model.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingModel {
    /// 0 for the priors (nothing learned yet).
    pub version: u64,
    /// Per kind, the dense features' weights.
    pub dense: [[f32; DENSE]; KINDS],
    /// Per hashed feature key, its weight per kind (only the non-zero ones are kept).
    pub hashed: HashMap<u64, [f32; KINDS]>,
    pub report: ModelReport,
}

/// One term of a prediction: a feature, its value and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    pub feature: TermFeature,
    pub value: f64,
    pub weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TermFeature {
    /// Index into [`super::features::DENSE_NAMES`].
    Dense(usize),
    Hashed(Hashed),
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl RankingModel {
    /// The model before any training: the prior rates for every impression, so the learned
    /// profile ranks newest first (its ties' order) until the log has taught it something.
    pub fn prior() -> Self {
        let mut dense = [[0.0f32; DENSE]; KINDS];
        for (k, rate) in PRIOR_RATES.iter().enumerate() {
            dense[k][0] = logit(*rate) as f32;
        }
        Self {
            version: 0,
            dense,
            hashed: HashMap::default(),
            report: ModelReport::default(),
        }
    }

    /// `Σ w × x` per kind.
    pub fn logits(&self, f: &Features) -> [f64; KINDS] {
        let mut out = [0.0f64; KINDS];
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.dense[k]
                .iter()
                .zip(&f.dense)
                .map(|(w, x)| f64::from(*w) * f64::from(*x))
                .sum();
        }
        if !self.hashed.is_empty() {
            // Only the families the model kept have weights: the others are not looked up (a
            // lookup that misses still costs a cache miss in a large map).
            let kept = self.family_mask();
            for h in f.hashed() {
                if kept & (1 << h.family as u32) == 0 {
                    continue;
                }
                if let Some(w) = self.hashed.get(&h.key) {
                    for (o, w) in out.iter_mut().zip(w) {
                        *o += f64::from(*w);
                    }
                }
            }
        }
        out
    }

    /// `P(kind)` per kind.
    pub fn predict(&self, f: &Features) -> [f64; KINDS] {
        self.logits(f).map(sigmoid)
    }

    /// `Σ P(kind) × value(kind)`.
    pub fn expected_value(&self, f: &Features, values: &[f64; KINDS]) -> f64 {
        self.predict(f).iter().zip(values).map(|(p, v)| p * v).sum()
    }

    /// The terms of one kind's logit, every feature the impression has (weight 0 included, so
    /// an explanation shows what the model has not learned yet too); their `weight × value`
    /// sums to [`Self::logits`].
    pub fn terms(&self, f: &Features, kind: Kind) -> Vec<Term> {
        let k = kind as usize;
        let mut out: Vec<Term> = f
            .dense
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != 0.0)
            .map(|(i, x)| Term {
                feature: TermFeature::Dense(i),
                value: f64::from(*x),
                weight: f64::from(self.dense[k][i]),
            })
            .collect();
        out.extend(f.hashed().iter().map(|h| Term {
            feature: TermFeature::Hashed(*h),
            value: 1.0,
            weight: self.hashed.get(&h.key).map_or(0.0, |w| f64::from(w[k])),
        }));
        out
    }

    /// The families of hashed features that have weights, a bit per `Family as u32` (all of
    /// them for a model whose report does not say, such as one built by hand).
    fn family_mask(&self) -> u32 {
        if self.report.families.is_empty() {
            u32::MAX
        } else {
            self.report
                .families
                .iter()
                .fold(0, |m, f| m | 1 << (*f as u32))
        }
    }

    /// Weights that are not zero, per kind.
    pub fn nonzero_weights(&self) -> [u64; KINDS] {
        let mut n = [0u64; KINDS];
        for (k, n) in n.iter_mut().enumerate() {
            *n = self.dense[k].iter().filter(|w| **w != 0.0).count() as u64
                + self.hashed.values().filter(|w| w[k] != 0.0).count() as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::features::{features, stable_hash, Family, Impression};
    use crate::domain::{AuthorRelation, Counts};

    fn some_features() -> Features {
        let counts = Counts {
            impressions: 10,
            ..Default::default()
        };
        let tags = [stable_hash("rust")];
        features(&Impression {
            member: 1,
            post: 2,
            author: 3,
            tags: &tags,
            create_time: 0,
            counts: &counts,
            relation: AuthorRelation::Connection,
            followed_hashtags: 1,
            interest: 0.0,
            affinity: 0.0,
            at: 3_600_000_000,
        })
    }

    #[test]
    fn the_prior_predicts_the_prior_rates_for_everything() {
        let m = RankingModel::prior();
        let p = m.predict(&some_features());
        for (p, r) in p.iter().zip(PRIOR_RATES) {
            assert!((p - r).abs() < 1e-6, "{p} vs {r}");
        }
    }

    #[test]
    fn terms_sum_to_the_logit_and_name_their_features() {
        let mut m = RankingModel::prior();
        m.dense[1][1] = -0.5;
        let f = some_features();
        let cross = f
            .hashed()
            .iter()
            .find(|h| h.family == Family::MemberHashtag)
            .unwrap()
            .key;
        m.hashed.insert(cross, [0.0, 1.25, 0.0]);
        let terms = m.terms(&f, Kind::Comment);
        let sum: f64 = terms.iter().map(|t| t.weight * t.value).sum();
        assert!((sum - m.logits(&f)[1]).abs() < 1e-9);
        assert!(terms.iter().any(|t| matches!(
            t.feature,
            TermFeature::Hashed(h) if h.family == Family::MemberHashtag && t.weight == 1.25
        )));
        let ev = m.expected_value(&f, &[1.0, 3.0, 4.0]);
        let p = m.predict(&f);
        assert!((ev - (p[0] + 3.0 * p[1] + 4.0 * p[2])).abs() < 1e-12);
    }

    #[test]
    fn only_the_families_the_model_kept_are_read() {
        let mut m = RankingModel::prior();
        let f = some_features();
        let key = |fam: Family| f.hashed().iter().find(|h| h.family == fam).unwrap().key;
        m.hashed.insert(key(Family::Hashtag), [1.0, 0.0, 0.0]);
        m.hashed.insert(key(Family::Author), [2.0, 0.0, 0.0]);
        let both = m.logits(&f)[0];
        // A trained model says which families it kept; a weight outside them is not read.
        m.report.families = vec![Family::Hashtag];
        assert!((m.logits(&f)[0] - (both - 2.0)).abs() < 1e-9);
    }

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-12);
    }
}
