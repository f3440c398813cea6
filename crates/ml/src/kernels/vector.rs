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
    const CHUNK: usize = 4096;
    let f = |(gc, uc): (&mut [f32], &[f32])| {
        for (a, b) in gc.iter_mut().zip(uc) {
            *a = *a / (1.0 + (-*a).exp()) * b;
        }
    };
    if g.len() > 2 * CHUNK {
        super::team::for_each_chunk_mut(g, CHUNK, || (), |_, i, gc| f((gc, &u[i * CHUNK..])));
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
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    1.0 / sum
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
            unsafe { scores4(q, k, rows, off, scale, scores) }
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
    #[target_feature(enable = "avx,fma")]
    unsafe fn scores4(q: &[f32], k: &[f32], rows: &[usize], off: usize, scale: f32, scores: &mut Vec<f32>) -> f32 {
        let hd = q.len();
        debug_assert!(hd.is_multiple_of(8));
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        let mut quads = rows.chunks_exact(4);
        for quad in &mut quads {
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
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        1.0 / sum
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
                s2.iter_mut().for_each(|x| *x = (*x - max).exp());
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
