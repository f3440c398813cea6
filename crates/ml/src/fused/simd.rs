//! The inner loops the fused ops spend their time in besides gemm: `dot` (the
//! `kernels` module's, AVX + FMA chosen at run time, fixed summation order) and
//! a vectorised `exp`, chosen at run time too, with a plain fallback, so one
//! binary runs on every x86-64 machine and always gives the same bits
//! whatever the thread count.

// dot is the kernels module's (the decode path's): one implementation for
// serving and training.
pub(crate) use crate::kernels::dot;

/// `x ← eˣ` for every element. The AVX2 + FMA version is the Cephes
/// polynomial (range reduction by ln 2, degree-5 polynomial, exponent built in
/// the integer lanes; relative error ≈ 2e-7, underflows to 0 below −87.3);
/// elsewhere it is `f32::exp`. Softmax, cross-entropy and SiLU spend most of
/// their time here with a scalar exp.
pub(crate) fn exp_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { exp_avx2(x) };
    }
    for v in x.iter_mut() {
        *v = v.exp();
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_avx2(x: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = x.len();
    let body = n - n % 8;
    let p = x.as_mut_ptr();
    // SAFETY: every access touches 8 floats below `body` ≤ n.
    unsafe {
        let hi = _mm256_set1_ps(88.376_26);
        let lo = _mm256_set1_ps(-87.336_55);
        let log2e = _mm256_set1_ps(std::f32::consts::LOG2_E);
        let c1 = _mm256_set1_ps(0.693_359_4);
        let c2 = _mm256_set1_ps(-2.121_944_4e-4);
        let p0 = _mm256_set1_ps(1.987_569_1e-4);
        let p1 = _mm256_set1_ps(1.398_199_9e-3);
        let p2 = _mm256_set1_ps(8.333_452e-3);
        let p3 = _mm256_set1_ps(4.166_579_6e-2);
        let p4 = _mm256_set1_ps(1.666_666_5e-1);
        let p5 = _mm256_set1_ps(5e-1);
        let one = _mm256_set1_ps(1.0);
        let mut i = 0;
        while i < body {
            let v = _mm256_loadu_ps(p.add(i));
            let under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
            let v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
            // n = round(x / ln 2); r = x − n ln 2 (in two parts for accuracy).
            let fx = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            let r = _mm256_fnmadd_ps(fx, c1, v);
            let r = _mm256_fnmadd_ps(fx, c2, r);
            let r2 = _mm256_mul_ps(r, r);
            let mut y = _mm256_fmadd_ps(p0, r, p1);
            y = _mm256_fmadd_ps(y, r, p2);
            y = _mm256_fmadd_ps(y, r, p3);
            y = _mm256_fmadd_ps(y, r, p4);
            y = _mm256_fmadd_ps(y, r, p5);
            y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, one));
            let e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
            let y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
            _mm256_storeu_ps(p.add(i), _mm256_andnot_ps(under, y));
            i += 8;
        }
    }
    for v in &mut x[body..] {
        *v = v.exp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let xs: Vec<f32> =
            (0..2000).map(|i| -100.0 + i as f32 * 0.0937).chain([f32::NEG_INFINITY, 0.0, -87.0]).collect();
        let mut y = xs.clone();
        exp_in_place(&mut y);
        for (x, y) in xs.iter().zip(&y) {
            let want = (*x as f64).exp();
            let err = (*y as f64 - want).abs() / want.max(1e-38);
            assert!(err < 1e-6 || (want < 1e-37 && *y < 1e-37), "exp({x}) = {y}, want {want}");
        }
    }

    #[test]
    fn dispatched_kernels_agree_with_plain_loops() {
        for n in [0usize, 1, 7, 16, 17, 64, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - exact).abs() < 1e-5, "dot n={n}");
            let mut y = b.clone();
            crate::kernels::axpy(0.5, &a, &mut y);
            for i in 0..n {
                assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6, "axpy n={n} i={i}");
            }
        }
    }
}
