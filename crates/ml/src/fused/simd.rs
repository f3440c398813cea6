//! The inner loops the fused ops spend their time in besides gemm: `dot` and
//! `exp`, both the `kernels` module's (the decode path's): vectorised where
//! the CPU allows, chosen at run time, the same bits on every machine and
//! whatever the thread count.

// dot is the kernels module's (the decode path's): one implementation for
// serving and training.
pub(crate) use crate::kernels::dot;

// exp too: serving's softmax and SiLU and training's run one exp.
pub(crate) use crate::kernels::exp_in_place;

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
