//! FTRL-Proximal for logistic regression ("Ad Click Prediction: a View from the Trenches",
//! McMahan et al. 2013, Algorithm 1): per-coordinate learning rates (a coordinate seen often
//! moves slowly, a rare one — a member's cross — fast), L1 that keeps unneeded weights at
//! exactly zero, L2 on top. One learner per engagement kind shares the features: dense
//! coordinates in arrays, hashed ones in a map of the keys seen.

use foldhash::HashMap;

use crate::domain::features::{Family, Features, DENSE, PERSONAL_DENSE};
use crate::domain::model::{sigmoid, KINDS};

/// The learner's settings (the paper's α, β, λ1, λ2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FtrlParams {
    pub alpha: f64,
    pub beta: f64,
    pub l1: f64,
    pub l2: f64,
}

impl Default for FtrlParams {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            beta: 1.0,
            l1: 0.05,
            l2: 0.5,
        }
    }
}

/// One coordinate's state: `z` (gradients less the proximal shifts) and `n` (squared
/// gradients).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Coord {
    z: f64,
    n: f64,
}

impl Coord {
    fn weight(&self, p: &FtrlParams) -> f64 {
        if self.z.abs() <= p.l1 {
            0.0
        } else {
            -(self.z - p.l1 * self.z.signum()) / ((p.beta + self.n.sqrt()) / p.alpha + p.l2)
        }
    }

    fn update(&mut self, g: f64, w: f64, p: &FtrlParams) {
        let sigma = ((self.n + g * g).sqrt() - self.n.sqrt()) / p.alpha;
        self.z += g - sigma * w;
        self.n += g * g;
    }
}

/// FTRL-Proximal state of the three kinds' logistic models.
#[derive(Debug, Clone)]
pub struct Ftrl {
    params: FtrlParams,
    dense: [[Coord; DENSE]; KINDS],
    /// Hashed coordinates (`None`: a global-only learner that ignores them).
    hashed: Option<HashMap<u64, [Coord; KINDS]>>,
    /// The families of hashed features it learns (a bit per `Family as u32`).
    families: u32,
    /// Whether it reads the member's interests among the dense features (a global learner
    /// does not).
    personal_dense: bool,
}

/// Every family of hashed features, as a [`Ftrl`] family set.
pub const ALL_FAMILIES: u32 = (1 << Family::ALL.len()) - 1;

/// The family set of `families`.
pub fn family_set(families: &[Family]) -> u32 {
    families.iter().fold(0, |m, f| m | 1 << (*f as u32))
}

impl Ftrl {
    /// A learner of the dense features and, when `with_hashed`, every family of hashed ones.
    pub fn new(params: FtrlParams, with_hashed: bool) -> Self {
        if with_hashed {
            Self::with_families(params, ALL_FAMILIES)
        } else {
            Self::global(params)
        }
    }

    /// A learner of the dense features and the hashed families in `families`.
    pub fn with_families(params: FtrlParams, families: u32) -> Self {
        Self {
            params,
            dense: [[Coord::default(); DENSE]; KINDS],
            hashed: (families != 0).then(HashMap::default),
            families,
            personal_dense: true,
        }
    }

    /// A global learner: no hashed crosses, and the member's interests left out of the dense
    /// features, so it predicts the same for every member.
    pub fn global(params: FtrlParams) -> Self {
        Self {
            personal_dense: false,
            ..Self::with_families(params, 0)
        }
    }

    /// The dense value of feature `i` as this learner reads it.
    fn x(&self, f: &Features, i: usize) -> f64 {
        if !self.personal_dense && PERSONAL_DENSE.contains(&i) {
            0.0
        } else {
            f64::from(f.dense[i])
        }
    }

    fn learns(&self, family: Family) -> bool {
        self.families & (1 << family as u32) != 0
    }

    /// The current weights of the features present, per kind: (dense, hashed).
    fn weights(&self, f: &Features, k: usize, hashed: &mut Vec<f64>) -> [f64; DENSE] {
        let p = &self.params;
        let mut dense = [0.0; DENSE];
        for (i, w) in dense.iter_mut().enumerate() {
            if self.x(f, i) != 0.0 {
                *w = self.dense[k][i].weight(p);
            }
        }
        hashed.clear();
        if let Some(map) = &self.hashed {
            for h in f.hashed() {
                let w = if self.learns(h.family) {
                    map.get(&h.key).map_or(0.0, |c| c[k].weight(p))
                } else {
                    0.0
                };
                hashed.push(w);
            }
        }
        dense
    }

    /// `P(kind)` per kind with the current weights.
    pub fn predict(&self, f: &Features) -> [f64; KINDS] {
        let mut hashed = Vec::with_capacity(f.hashed().len());
        let mut out = [0.0; KINDS];
        for (k, o) in out.iter_mut().enumerate() {
            let dense = self.weights(f, k, &mut hashed);
            *o = sigmoid(self.logit(f, &dense, &hashed));
        }
        out
    }

    /// `Σ w × x` of one kind, from its weights of the features present.
    fn logit(&self, f: &Features, dense: &[f64; DENSE], hashed: &[f64]) -> f64 {
        dense
            .iter()
            .enumerate()
            .map(|(i, w)| w * self.x(f, i))
            .sum::<f64>()
            + hashed.iter().sum::<f64>()
    }

    /// Learns from one example with `labels` per kind; returns the predictions made before.
    pub fn learn(&mut self, f: &Features, labels: [bool; KINDS]) -> [f64; KINDS] {
        let mut hashed = Vec::with_capacity(f.hashed().len());
        let mut before = [0.0; KINDS];
        let params = self.params;
        for k in 0..KINDS {
            let dense = self.weights(f, k, &mut hashed);
            let p = sigmoid(self.logit(f, &dense, &hashed));
            before[k] = p;
            let g = p - f64::from(u8::from(labels[k]));
            for (i, w) in dense.iter().enumerate() {
                let x = self.x(f, i);
                if x != 0.0 {
                    self.dense[k][i].update(g * x, *w, &params);
                }
            }
            let families = self.families;
            if let Some(map) = &mut self.hashed {
                for (h, w) in f.hashed().iter().zip(&hashed) {
                    if families & (1 << h.family as u32) != 0 {
                        map.entry(h.key).or_default()[k].update(g, *w, &params);
                    }
                }
            }
        }
        before
    }

    /// The weights to publish: dense per kind, and the hashed keys with a non-zero weight.
    pub fn export(&self) -> ([[f32; DENSE]; KINDS], HashMap<u64, [f32; KINDS]>) {
        let p = &self.params;
        let mut dense = [[0.0f32; DENSE]; KINDS];
        for (k, d) in dense.iter_mut().enumerate() {
            for (i, w) in d.iter_mut().enumerate() {
                *w = self.dense[k][i].weight(p) as f32;
            }
        }
        let mut hashed = HashMap::default();
        if let Some(map) = &self.hashed {
            hashed.reserve(map.len() / 2);
            for (key, c) in map {
                let w = [0, 1, 2].map(|k| c[k].weight(p) as f32);
                if w.iter().any(|w| *w != 0.0) {
                    hashed.insert(*key, w);
                }
            }
        }
        (dense, hashed)
    }

    /// Bytes the state holds, roughly (map entries with their load factor).
    pub fn state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, [Coord; KINDS])>() + 1;
        std::mem::size_of::<Self>() + self.hashed.as_ref().map_or(0, |m| m.capacity() * entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::features::{features, Impression};
    use crate::domain::{AuthorRelation, Counts};
    use pronet_common::rng::SplitMix64 as Rng;

    /// The features of `member` shown the same post (no hashtags, no counts, a connection's).
    fn member_view(member: u64) -> Features {
        features(&Impression {
            member,
            post: 0,
            author: 0,
            tags: &[],
            create_time: 0,
            counts: &Counts::default(),
            relation: AuthorRelation::Connection,
            followed_hashtags: 0,
            interest: 0.0,
            affinity: 0.0,
            at: 0,
        })
    }

    /// Examples whose only varying features are `age_days` (x1) and `followed_hashtag` (x2),
    /// with labels drawn from a known logistic model.
    fn dataset(n: usize, truth: [f64; 3], rng: &mut Rng) -> Vec<(Features, bool)> {
        let counts = Counts::default();
        (0..n)
            .map(|_| {
                let age_h = rng.unit() * 24.0 * 10.0;
                let followed = rng.below(3);
                let mut f = features(&Impression {
                    member: 0,
                    post: 0,
                    author: 0,
                    tags: &[],
                    create_time: 0,
                    counts: &counts,
                    relation: AuthorRelation::Connection,
                    followed_hashtags: followed,
                    interest: 0.0,
                    affinity: 0.0,
                    at: (age_h * 3_600_000_000.0) as i64,
                });
                // Keep bias, age_days and followed_hashtag only.
                for (i, x) in f.dense.iter_mut().enumerate() {
                    if ![0, 1, 20].contains(&i) {
                        *x = 0.0;
                    }
                }
                let z =
                    truth[0] + truth[1] * f64::from(f.dense[1]) + truth[2] * f64::from(f.dense[20]);
                let y = rng.unit() < sigmoid(z);
                (f, y)
            })
            .collect()
    }

    /// The maximum-likelihood weights by Newton's method (three coordinates: a 3×3 solve).
    #[allow(clippy::needless_range_loop)]
    fn newton(data: &[(Features, bool)]) -> [f64; 3] {
        let idx = [0usize, 1, 20];
        let mut w = [0.0f64; 3];
        for _ in 0..50 {
            let mut g = [0.0f64; 3];
            let mut h = [[0.0f64; 3]; 3];
            for (f, y) in data {
                let x = idx.map(|i| f64::from(f.dense[i]));
                let p = sigmoid(w.iter().zip(&x).map(|(a, b)| a * b).sum());
                for a in 0..3 {
                    g[a] += (p - f64::from(u8::from(*y))) * x[a];
                    for b in 0..3 {
                        h[a][b] += p * (1.0 - p) * x[a] * x[b];
                    }
                }
            }
            let step = solve3(h, g);
            for a in 0..3 {
                w[a] -= step[a];
            }
        }
        w
    }

    // Matrix code reads best with indices.
    #[allow(clippy::needless_range_loop)]
    fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
        for c in 0..3 {
            let p = (c..3)
                .max_by(|i, j| a[*i][c].abs().total_cmp(&a[*j][c].abs()))
                .unwrap();
            a.swap(c, p);
            b.swap(c, p);
            for r in c + 1..3 {
                let f = a[r][c] / a[c][c];
                for k in c..3 {
                    a[r][k] -= f * a[c][k];
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = [0.0; 3];
        for r in (0..3).rev() {
            let s: f64 = (r + 1..3).map(|k| a[r][k] * x[k]).sum();
            x[r] = (b[r] - s) / a[r][r];
        }
        x
    }

    #[test]
    fn without_regularization_it_converges_to_the_maximum_likelihood_weights() {
        let mut rng = Rng::new(3);
        let data = dataset(20_000, [-2.0, -0.4, 0.8], &mut rng);
        let mle = newton(&data);
        let mut ftrl = Ftrl::new(
            FtrlParams {
                alpha: 0.5,
                beta: 1.0,
                l1: 0.0,
                l2: 0.0,
            },
            false,
        );
        for _ in 0..30 {
            for (f, y) in &data {
                ftrl.learn(f, [*y, false, false]);
            }
        }
        let (dense, _) = ftrl.export();
        let got = [dense[0][0], dense[0][1], dense[0][20]].map(f64::from);
        for (g, m) in got.iter().zip(mle) {
            assert!((g - m).abs() < 0.05, "ftrl {got:?} vs newton {mle:?}");
        }
        // And the MLE is near the truth that drew the labels.
        assert!((mle[1] + 0.4).abs() < 0.1, "{mle:?}");
    }

    #[test]
    fn l1_keeps_coordinates_that_carry_nothing_at_exactly_zero() {
        // 200 members, 20 views each, who all react at the same 30% rate: their own
        // coefficients carry nothing. A member's gradient sum at zero is noise of about
        // √20 × 0.46 ≈ 2, so an L1 of 5 keeps nearly all at exactly zero; without L1 every
        // one of them moves.
        let run = |l1: f64| {
            let mut rng = Rng::new(5);
            let mut ftrl = Ftrl::new(
                FtrlParams {
                    l1,
                    ..FtrlParams::default()
                },
                true,
            );
            for _ in 0..20 {
                for m in 0..200u64 {
                    let f = member_view(m);
                    ftrl.learn(&f, [rng.unit() < 0.3, false, false]);
                }
            }
            ftrl
        };
        let sparse = run(5.0);
        // Member, member x author, post and author keys: the shared post and author learn.
        let per_member = sparse.export().1.len().saturating_sub(2);
        assert!(
            per_member <= 20,
            "{per_member} of 400 member coordinates moved"
        );
        // The rate is learned all the same (by the bias and the shared post and author).
        let any = member_view(7);
        let p = sparse.predict(&any)[0];
        assert!((p - 0.3).abs() < 0.05, "{p}");
        let free = run(0.0).export().1.len();
        assert!(free >= 400, "{free}");
    }

    #[test]
    fn hashed_coordinates_learn_per_key_and_only_with_hashed_on() {
        let imp = member_view;
        let mut personal = Ftrl::new(FtrlParams::default(), true);
        let mut global = Ftrl::new(FtrlParams::default(), false);
        // Member 1 always reacts, member 2 never.
        for _ in 0..300 {
            for (m, y) in [(1, true), (2, false)] {
                personal.learn(&imp(m), [y, false, false]);
                global.learn(&imp(m), [y, false, false]);
            }
        }
        let p1 = personal.predict(&imp(1))[0];
        let p2 = personal.predict(&imp(2))[0];
        assert!(p1 > 0.8 && p2 < 0.2, "{p1} {p2}");
        let g1 = global.predict(&imp(1))[0];
        assert!((g1 - global.predict(&imp(2))[0]).abs() < 1e-12);
        assert!((g1 - 0.5).abs() < 0.1, "{g1}");
        let (_, hashed) = personal.export();
        assert!(!hashed.is_empty());
        assert!(global.export().1.is_empty());
    }
}
