//! A small seeded generator (SplitMix64) for the demo, the benchmark and test data: the same
//! seed gives the same sequence on every machine and with every dependency version.

#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index in `0..n` skewed towards 0: Zipf-like with exponent `s` (about 1 for the
    /// "few are popular, most are not" shape of social data).
    pub fn skewed(&mut self, n: usize, s: f64) -> usize {
        // Inverse-CDF of a continuous power law on [1, n+1), good enough for seeding.
        let u = self.unit();
        let n1 = (n + 1) as f64;
        let x = if (s - 1.0).abs() < 1e-9 {
            n1.powf(u)
        } else {
            (1.0 + u * (n1.powf(1.0 - s) - 1.0)).powf(1.0 / (1.0 - s))
        };
        ((x - 1.0) as usize).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        // Known first output of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn below_and_skewed_stay_in_range_and_skew() {
        let mut r = SplitMix64::new(1);
        let mut low = 0;
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let k = r.skewed(100, 1.0);
            assert!(k < 100);
            if k < 10 {
                low += 1;
            }
        }
        // With s = 1, the first tenth of ranks draws about half of the picks.
        assert!(low > 4_000, "low = {low}");
    }
}
