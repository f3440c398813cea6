//! The small vector operations of a decode step, each a pure function of its
//! own inputs (so batch-invariant): dot and axpy for attention, RMSNorm per
//! row, SwiGLU's `silu(g)·u`, residual adds, argmax per row.

use super::Isa;

/// `Σ a[i]·b[i]` over the shorter length, eight lanes in ascending order and
/// the fixed horizontal sum.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    match Isa::detect() {
        // SAFETY: detect() found AVX and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::AvxFma => unsafe { avx::dot(a, b) },
        _ => {
            let mut lanes = [0.0f32; 8];
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                lanes[i % 8] += x * y;
            }
            let s = [lanes[0] + lanes[4], lanes[1] + lanes[5], lanes[2] + lanes[6], lanes[3] + lanes[7]];
            (s[0] + s[2]) + (s[1] + s[3])
        }
    }
}

/// `y += alpha·x` over the shorter length.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    match Isa::detect() {
        // SAFETY: detect() found AVX and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::AvxFma => unsafe { avx::axpy(alpha, &x[..n], &mut y[..n]) },
        _ => {
            for (yi, xi) in y[..n].iter_mut().zip(&x[..n]) {
                *yi += alpha * xi;
            }
        }
    }
}

/// `x += y` elementwise.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// RMSNorm of every row of `x` (rows of `w.len()`) into `out`:
/// `x / sqrt(mean(x²) + eps) · w`.
pub fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let h = w.len();
    if h == 0 {
        return;
    }
    for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        let ss = dot(xr, xr);
        let r = 1.0 / (ss / h as f32 + eps).sqrt();
        for ((o, xv), wv) in or.iter_mut().zip(xr).zip(w) {
            *o = xv * r * wv;
        }
    }
}

/// SwiGLU's activation in place: `g ← silu(g)·u`.
pub fn silu_mul_in_place(g: &mut [f32], u: &[f32]) {
    // Worth a parallel region past 8,192 values; then two chunks per thread
    // (at least 2,048 values each), so that the threads get equal shares (a
    // fixed 4,096 gave a batch of 8 × 1,536 three chunks: two for one thread).
    const MIN: usize = 2048;
    // silu(g) = g / (1 + e^(-g)), the exps 256 at a time through exp_in_place.
    let f = |(gc, uc): (&mut [f32], &[f32])| {
        let mut t = [0.0f32; 256];
        for (gs, us) in gc.chunks_mut(256).zip(uc.chunks(256)) {
            let t = &mut t[..gs.len()];
            for (t, &g) in t.iter_mut().zip(gs.iter()) {
                *t = -g;
            }
            exp_in_place(t);
            for ((g, &e), &u) in gs.iter_mut().zip(t.iter()).zip(us) {
                *g = *g / (1.0 + e) * u;
            }
        }
    };
    if g.len() > 4 * MIN {
        let chunk = g.len().div_ceil(2 * rayon::current_num_threads().max(1)).max(MIN).next_multiple_of(16);
        super::team::for_each_chunk_mut(g, chunk, || (), |_, i, gc| f((gc, &u[i * chunk..])));
    } else {
        f((g, u));
    }
}

/// The index of the largest value of every row of `logits` (rows of `vocab`),
/// lowest index on ties: greedy sampling of a whole batch in one pass.
pub fn argmax_rows(logits: &[f32], vocab: usize) -> Vec<u32> {
    if vocab == 0 {
        return Vec::new();
    }
    logits.chunks_exact(vocab).map(crate::generate::argmax).collect()
}

/// One query's attention over the keys and values at `rows[p] + off`
/// (positions `p` in order; a row outside `k` or `v` panics), into `out`
/// (its first `q.len()` values, overwritten): softmax of
/// `scale · q·k` with the max subtracted, then the values weighted in
/// position order. Each score is [`dot`], each weighted value an [`axpy`], so
/// the bits are those of calling them one by one; one ISA dispatch for the
/// whole query instead of two per position. `scores` is scratch.
pub fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rows: &[usize],
    off: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let out = &mut out[..q.len()];
    match Isa::detect() {
        // SAFETY: detect() found AVX and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::AvxFma => unsafe { avx::attend(q, k, v, rows, off, scale, scores, out) },
        _ => {
            let inv = attend_scores(q, k, rows, off, scale, scores, dot);
            attend_values(v, rows, off, scores, inv, out, axpy);
        }
    }
}

/// The softmax weights of [`attend`] into `scores` (unnormalised), and the
/// factor that normalises them.
#[inline(always)]
fn attend_scores(
    q: &[f32],
    k: &[f32],
    rows: &[usize],
    off: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    dot: impl Fn(&[f32], &[f32]) -> f32,
) -> f32 {
    let hd = q.len();
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for &r in rows {
        let s = dot(q, &k[r + off..r + off + hd]) * scale;
        max = max.max(s);
        scores.push(s);
    }
    softmax_weights(scores, max)
}

/// `s ← e^(s − max)` for every score (through [`exp_in_place`]); returns 1
/// over their sum, added in order.
#[inline]
fn softmax_weights(scores: &mut [f32], max: f32) -> f32 {
    for s in scores.iter_mut() {
        *s -= max;
    }
    exp_in_place(scores);
    1.0 / scores.iter().fold(0.0f32, |a, &s| a + s)
}

/// `x ← eˣ` for every element, the same bits on every machine: the Cephes
/// polynomial (range reduction by ln 2 in two parts, a degree-5 polynomial,
/// the exponent built in the integer bits; relative error ≈ 2e-7; 0 below
/// −87.34, inputs clamped to 88.38 above), eight at a time with AVX2 + FMA,
/// else [`exp_one`], the same operations one value at a time. Serving's
/// softmax and SiLU and training's fused ops run it: libm's `expf` was one
/// call per value (and picks its own variant per CPU).
pub fn exp_in_place(x: &mut [f32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        done = x.len() - x.len() % 8;
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        unsafe { avx::exp8s(&mut x[..done]) };
    }
    for v in &mut x[done..] {
        *v = exp_one(*v);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// The Cephes exp's constants: clamps, log2(e), ln 2 in two parts, the polynomial.
const EXP_HI: f32 = 88.376_26;
const EXP_LO: f32 = -87.336_55;
const EXP_C1: f32 = 0.693_359_4;
const EXP_C2: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];

/// One value of [`exp_in_place`], operation for operation the vector code's
/// (`min` and `max` pick the bound when `v` is NaN, as `minps`/`maxps` do).
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN; `minps`/`maxps` (and these) give the bound.
pub(crate) fn exp_one(v: f32) -> f32 {
    let under = v < EXP_LO;
    let v = v.min(EXP_HI).max(EXP_LO);
    let fx = (v * std::f32::consts::LOG2_E).round_ties_even();
    let r = (-fx).mul_add(EXP_C1, v);
    let r = (-fx).mul_add(EXP_C2, r);
    let r2 = r * r;
    let mut y = EXP_P[0].mul_add(r, EXP_P[1]);
    for &p in &EXP_P[2..] {
        y = y.mul_add(r, p);
    }
    let y = y.mul_add(r2, r + 1.0);
    let e = f32::from_bits(((fx as i32 + 127) as u32) << 23);
    if under { 0.0 } else { y * e }
}

/// The weighted values of [`attend`], columns `cols` of `out`: per column, an
/// `axpy` step per position in order.
#[inline(always)]
fn attend_values(
    v: &[f32],
    rows: &[usize],
    off: usize,
    weights: &[f32],
    inv: f32,
    out: &mut [f32],
    axpy: impl Fn(f32, &[f32], &mut [f32]),
) {
    let hd = out.len();
    out.fill(0.0);
    for (&r, w) in rows.iter().zip(weights) {
        axpy(w * inv, &v[r + off..r + off + hd], out);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// [`super::attend`] with this module's dot and axpy, inlined; the
    /// weighted values of 64 columns at a time summed in registers over every
    /// position (the same fused multiply-adds in the same order as `axpy`
    /// into memory, so the same bits, without a store and a reload per
    /// position).
    ///
    /// # Safety
    /// AVX and FMA are present.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx,fma")]
    pub(super) unsafe fn attend(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        rows: &[usize],
        off: usize,
        scale: f32,
        scores: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let hd = q.len();
        let inv = if hd.is_multiple_of(8) {
            // SAFETY: this function runs with AVX and FMA.
            unsafe { scores4(q, k, v, rows, off, scale, scores) }
        } else {
            // SAFETY (the closure): this function runs with AVX and FMA.
            super::attend_scores(q, k, rows, off, scale, scores, |a, b| unsafe { dot(a, b) })
        };
        let mut c0 = 0;
        while c0 + 64 <= hd {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (&r, w) in rows.iter().zip(scores.iter()) {
                let x = &v[r + off + c0..r + off + c0 + 64];
                let a = _mm256_set1_ps(w * inv);
                for (j, s) in acc.iter_mut().enumerate() {
                    // SAFETY: x holds 64 values.
                    *s = _mm256_fmadd_ps(a, unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * j)) }, *s);
                }
            }
            for (j, s) in acc.iter().enumerate() {
                // SAFETY: out holds hd >= c0 + 64 values.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c0 + 8 * j), *s) };
            }
            c0 += 64;
        }
        if c0 < hd {
            super::attend_values(v, rows, off + c0, scores, inv, &mut out[c0..hd], |a, x, y| unsafe { axpy(a, x, y) });
        }
    }

    /// [`super::attend_scores`] for a head width that is whole vectors: the
    /// dots of four positions at a time, each its own chain of the same fused
    /// multiply-adds and the same final sum as [`dot`] (so the same bits), so
    /// that four chains overlap where one waited on each add's latency.
    ///
    /// # Safety
    /// AVX and FMA are present.
    ///
    /// The positions' keys (and values, for the pass after this one) are
    /// scattered a row of the cache apart, so the hardware's prefetcher
    /// misses them: each quad asks for the keys of the quad two ahead and its
    /// own values, so that a group's first head does not wait on memory at
    /// every position (hints only: no bit changes).
    #[target_feature(enable = "avx,fma")]
    unsafe fn scores4(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        rows: &[usize],
        off: usize,
        scale: f32,
        scores: &mut Vec<f32>,
    ) -> f32 {
        let hd = q.len();
        debug_assert!(hd.is_multiple_of(8));
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        let warm = |m: &[f32], r: usize| {
            for line in (0..hd).step_by(16) {
                // A prefetch reads nothing into the program and cannot fault;
                // the address is made without going out of bounds (`wrapping_add`).
                _mm_prefetch::<_MM_HINT_T0>(m.as_ptr().wrapping_add(r + off + line).cast());
            }
        };
        let mut quads = rows.chunks_exact(4);
        for (qi, quad) in (&mut quads).enumerate() {
            for &r in rows.iter().skip(4 * qi + 8).take(4) {
                warm(k, r);
            }
            for &r in quad {
                warm(v, r);
            }
            let (k0, k1) = (&k[quad[0] + off..quad[0] + off + hd], &k[quad[1] + off..quad[1] + off + hd]);
            let (k2, k3) = (&k[quad[2] + off..quad[2] + off + hd], &k[quad[3] + off..quad[3] + off + hd]);
            // Four named sums (an array of them was kept in memory, not in registers).
            let (mut a0, mut a1, mut a2, mut a3) =
                (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
            for c in 0..hd / 8 {
                // SAFETY: q, k0, k1, k2 and k3 hold hd values, c * 8 + 8 <= hd.
                unsafe {
                    let x = _mm256_loadu_ps(q.as_ptr().add(c * 8));
                    a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k0.as_ptr().add(c * 8)), a0);
                    a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k1.as_ptr().add(c * 8)), a1);
                    a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k2.as_ptr().add(c * 8)), a2);
                    a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k3.as_ptr().add(c * 8)), a3);
                }
            }
            for a in [a0, a1, a2, a3] {
                let s = hsum(a) * scale;
                max = max.max(s);
                scores.push(s);
            }
        }
        for &r in quads.remainder() {
            // SAFETY: this function runs with AVX and FMA.
            let s = unsafe { dot(q, &k[r + off..r + off + hd]) } * scale;
            max = max.max(s);
            scores.push(s);
        }
        super::softmax_weights(scores, max)
    }

    /// [`super::exp_in_place`] on a whole number of vectors of 8.
    ///
    /// # Safety
    /// AVX2 and FMA are present.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp8s(x: &mut [f32]) {
        use super::{EXP_C1, EXP_C2, EXP_HI, EXP_LO, EXP_P};
        assert!(x.len().is_multiple_of(8));
        let p = x.as_mut_ptr();
        let hi = _mm256_set1_ps(EXP_HI);
        let lo = _mm256_set1_ps(EXP_LO);
        let log2e = _mm256_set1_ps(std::f32::consts::LOG2_E);
        let c1 = _mm256_set1_ps(EXP_C1);
        let c2 = _mm256_set1_ps(EXP_C2);
        let pc = EXP_P.map(|c| _mm256_set1_ps(c));
        let one = _mm256_set1_ps(1.0);
        for i in (0..x.len()).step_by(8) {
            // SAFETY: i + 8 <= x.len() (a multiple of 8).
            unsafe {
                let v = _mm256_loadu_ps(p.add(i));
                let under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
                let v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
                // n = round(x / ln 2); r = x − n ln 2 (in two parts for accuracy).
                let fx = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                let r = _mm256_fnmadd_ps(fx, c1, v);
                let r = _mm256_fnmadd_ps(fx, c2, r);
                let r2 = _mm256_mul_ps(r, r);
                let mut y = _mm256_fmadd_ps(pc[0], r, pc[1]);
                for &c in &pc[2..] {
                    y = _mm256_fmadd_ps(y, r, c);
                }
                y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, one));
                let e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
                let y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
                _mm256_storeu_ps(p.add(i), _mm256_andnot_ps(under, y));
            }
        }
    }

    /// The sum of a vector's lanes, in [`dot`]'s order.
    #[target_feature(enable = "avx,fma")]
    #[inline]
    fn hsum(acc: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(acc);
        let hi = _mm256_extractf128_ps(acc, 1);
        let s = _mm_add_ps(lo, hi);
        let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
    }

    #[target_feature(enable = "avx,fma")]
    #[inline]
    pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let full = n / 8;
        unsafe {
            let mut acc = _mm256_setzero_ps();
            for c in 0..full {
                let x = _mm256_loadu_ps(a.as_ptr().add(c * 8));
                let y = _mm256_loadu_ps(b.as_ptr().add(c * 8));
                acc = _mm256_fmadd_ps(x, y, acc);
            }
            let rem = n - full * 8;
            if rem > 0 {
                let mut xa = [0.0f32; 8];
                let mut ya = [0.0f32; 8];
                xa[..rem].copy_from_slice(&a[full * 8..]);
                ya[..rem].copy_from_slice(&b[full * 8..]);
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(xa.as_ptr()), _mm256_loadu_ps(ya.as_ptr()), acc);
            }
            hsum(acc)
        }
    }

    #[target_feature(enable = "avx,fma")]
    #[inline]
    pub(super) unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len();
        let full = n / 8;
        unsafe {
            let a = _mm256_set1_ps(alpha);
            for c in 0..full {
                let xv = _mm256_loadu_ps(x.as_ptr().add(c * 8));
                let yp = y.as_mut_ptr().add(c * 8);
                _mm256_storeu_ps(yp, _mm256_fmadd_ps(a, xv, _mm256_loadu_ps(yp)));
            }
        }
        for i in full * 8..n {
            y[i] = alpha.mul_add(x[i], y[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector exp gives `exp_one`'s bits, value for value: random values
    /// over the range, the clamps and their neighbours, ties of the rounding,
    /// zeros, infinities and NaN, at lengths with and without a tail.
    #[test]
    fn exp_vector_and_scalar_agree() {
        let mut rng = crate::rng::Rng::new(19);
        let mut xs: Vec<f32> = (0..4000).map(|_| (rng.next_f64() * 200.0 - 100.0) as f32).collect();
        for b in [EXP_HI, EXP_LO, 0.0, 1.0, -1.0] {
            xs.extend([b, f32::from_bits(b.to_bits() + 1), f32::from_bits(b.to_bits().max(1) - 1)]);
        }
        // x · log2(e) half-way between integers.
        xs.extend((-120..120).map(|i| (i as f32 + 0.5) / std::f32::consts::LOG2_E));
        xs.extend([-0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, f32::MAX, f32::MIN]);
        for len in [xs.len(), xs.len() - 3] {
            let mut v = xs[..len].to_vec();
            exp_in_place(&mut v);
            for (x, y) in xs.iter().zip(&v) {
                assert_eq!(y.to_bits(), exp_one(*x).to_bits(), "exp({x}): {y} against {}", exp_one(*x));
            }
        }
        // And it is exp: within 1e-6 relative over the softmax range.
        for &x in &xs {
            if (-87.0..88.0).contains(&x) {
                let want = (x as f64).exp();
                assert!(((exp_one(x) as f64 - want) / want).abs() < 1e-6, "exp({x})");
            }
        }
    }

    /// `attend` gives the bits of dot and axpy called one by one, for head
    /// widths with and without a whole 64-column chunk and a remainder.
    #[test]
    fn attend_is_its_dots_and_axpys() {
        let mut rng = crate::rng::Rng::new(11);
        let mut val = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.below(2001) as f32 / 500.0 - 2.0).collect() };
        for hd in [8, 60, 64, 72, 128, 200] {
            let (stride, positions) = (3 * hd + 5, 39);
            let (k, v) = (val(stride * positions), val(stride * positions));
            let q = val(hd);
            // Positions in a shuffled order, as a block table leaves them.
            let rows: Vec<usize> = (0..positions).map(|p| ((p * 17) % positions) * stride).collect();
            // Fewer than four positions, whole fours, and fours with one to three left.
            for n in [1, 2, 3, 4, 5, 8, 10, positions] {
                let mut s1 = Vec::new();
                let (mut got, mut want) = (vec![f32::NAN; hd], vec![f32::NAN; hd]);
                attend(&q, &k, &v, &rows[..n], hd + 2, 0.125, &mut s1, &mut got);
                // One by one: a dot per position, softmax, an axpy per position.
                let at = |r: usize| r + hd + 2..r + 2 * hd + 2;
                let mut s2: Vec<f32> = rows[..n].iter().map(|&r| dot(&q, &k[at(r)]) * 0.125).collect();
                let max = s2.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                s2.iter_mut().for_each(|x| *x -= max);
                exp_in_place(&mut s2);
                let inv = 1.0 / s2.iter().fold(0.0f32, |a, &x| a + x);
                want.fill(0.0);
                for (&r, w) in rows[..n].iter().zip(&s2) {
                    axpy(w * inv, &v[at(r)], &mut want);
                }
                let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "head width {hd}, {n} positions");
            }
        }
    }
}
