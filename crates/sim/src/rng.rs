//! The simulator's only source of randomness: SplitMix64 from the scenario's
//! seed, so a run is a pure function of its scenario.

/// A seeded generator (SplitMix64; its output is fixed by its published constants).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6f70_656e_6c65_6467)
    }

    /// A generator for one purpose, independent of how much another one drew.
    pub fn fork(&self, label: u64) -> Rng {
        let mut r = Rng(self.0 ^ label.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `bps` / 10,000.
    pub fn chance(&mut self, bps: u32) -> bool {
        self.below(10_000) < bps as u64
    }

    /// Pareto-distributed multiplier ≥ 1 in millionths, shape `alpha_pct` / 100
    /// (integer arithmetic: inverse transform on a 2^-20 grid, capped at 1000×).
    pub fn pareto_ppm(&mut self, alpha_pct: u32) -> u128 {
        // u in (0, 1]; x = u^(-1/alpha). Computed by bisection on x^alpha = 1/u with
        // integer powers of the form x^(alpha_pct/100), via repeated squaring in fixed point.
        let u = self.below(1 << 20) + 1; // 1..=2^20
        let target = (1u128 << 20) * 1_000_000 / u as u128; // (1/u) in ppm
        let (mut lo, mut hi) = (1_000_000u128, 1_000_000_000u128);
        while hi - lo > 1_000 {
            let mid = (lo + hi) / 2;
            if pow_ppm(mid, alpha_pct) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// `x^(alpha_pct / 100)` for `x` in ppm, in ppm: the integer part by
/// multiplication, the fractional part by linear interpolation (monotone,
/// which is all bisection needs).
fn pow_ppm(x: u128, alpha_pct: u32) -> u128 {
    let whole = alpha_pct / 100;
    let frac = (alpha_pct % 100) as u128;
    let mut r = 1_000_000u128;
    for _ in 0..whole {
        r = (r * x / 1_000_000).min(u64::MAX as u128);
    }
    // x^f ≈ 1 + f (x - 1) for the fractional exponent: monotone in x.
    let lin = 1_000_000 + frac * (x - 1_000_000) / 100;
    (r * lin / 1_000_000).min(u64::MAX as u128)
}
