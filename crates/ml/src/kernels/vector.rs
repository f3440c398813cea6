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

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx,fma")]
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
            let lo = _mm256_castps256_ps128(acc);
            let hi = _mm256_extractf128_ps(acc, 1);
            let s = _mm_add_ps(lo, hi);
            let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)))
        }
    }

    #[target_feature(enable = "avx,fma")]
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
