//! A checked, safe face on the `gemm` crate (the one candle's CPU matmul
//! calls) for strided f32 matrices.
//!
//! candle's matmul always writes a fresh contiguous result. The fused
//! projections need two things it cannot do: write a product into a column
//! range of a wider output (q, k and v side by side in one buffer, so nothing
//! is concatenated or split afterwards), and add a product into an existing
//! result (`dX += dY_k W_k` over the projections sharing an input, the LoRA
//! term `y += s (x Aᵀ) Bᵀ`), so that gradient sums and LoRA additions cost no
//! separate pass over the activations.
//!
//! Every call checks that the strided views fit their slices, then runs one
//! gemm. gemm splits its work over output tiles only (each element's sum over
//! `k` runs in one order on one thread), so results do not depend on the
//! thread count.

use candle_core::{Result, bail};

/// A read-only strided view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// Row-major with row stride `rs` (columns adjacent).
    pub fn rows(data: &'a [f32], rs: usize) -> View<'a> {
        View { data, rs, cs: 1 }
    }
    /// The transpose of a row-major matrix with row stride `rs`: element
    /// `(i, j)` of the view is element `(j, i)` of the matrix.
    pub fn t(data: &'a [f32], rs: usize) -> View<'a> {
        View { data, rs: 1, cs: rs }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// How a product may use the machine: rayon's whole pool, or only the
/// calling thread (for small products inside a task that is already one of
/// many in parallel).
#[derive(Clone, Copy)]
pub(crate) struct Gemm {
    parallel: bool,
}

pub(crate) const PARALLEL: Gemm = Gemm { parallel: true };
pub(crate) const SERIAL: Gemm = Gemm { parallel: false };

impl Gemm {
    /// `dst[i, j] (+)= scale · Σₚ lhs[i, p] rhs[p, j]` for `i < m`, `j < n`, `p < k`;
    /// `dst` is row-major with row stride `dst_rs` (the product lands in its first
    /// `n` columns; pass a sub-slice to start further right). `accumulate` adds to
    /// what `dst` holds, otherwise it is overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        self,
        dst: &mut [f32],
        dst_rs: usize,
        (m, n, k): (usize, usize, usize),
        lhs: View<'_>,
        rhs: View<'_>,
        scale: f32,
        accumulate: bool,
    ) -> Result<()> {
        let threads = if self.parallel { rayon::current_num_threads() } else { 1 };
        let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        if m == 0 || n == 0 {
            return Ok(());
        }
        let dst_fits = (m - 1) * dst_rs + n <= dst.len() && (m == 1 || dst_rs >= n);
        if !dst_fits || !lhs.fits(m, k) || !rhs.fits(k, n) {
            bail!("gemm: a {m}×{k} by {k}×{n} product does not fit its buffers");
        }
        if k == 0 {
            if !accumulate {
                for i in 0..m {
                    dst[i * dst_rs..i * dst_rs + n].fill(0.0);
                }
            }
            return Ok(());
        }
        // SAFETY: the checks above keep every element gemm reads inside `lhs` and
        // `rhs` and every element it writes inside `dst`; the destination's rows
        // do not overlap (dst_rs ≥ n), and `dst` is borrowed mutably, so no other
        // reference aliases it.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                dst_rs as isize,
                accumulate,
                lhs.data.as_ptr(),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr(),
                rhs.cs as isize,
                rhs.rs as isize,
                1.0,
                scale,
                false,
                false,
                false,
                par,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs]).sum();
            }
        }
        c
    }

    #[test]
    fn strided_products_accumulate_into_column_ranges() {
        let mut rng = crate::rng::Rng::new(3);
        let mut rand = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f64() as f32 - 0.5).collect() };
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (64, 130, 9)] {
            let (x, w) = (rand(m * k), rand(n * k));
            // x · wᵀ into columns 2.. of a wider buffer, then + 0.5 · x · wᵀ again.
            let wide = n + 3;
            let mut dst = vec![9f32; m * wide];
            let (a, b) = (View::rows(&x, k), View::t(&w, k));
            PARALLEL.run(&mut dst[2..], wide, (m, n, k), a, b, 1.0, false).unwrap();
            SERIAL.run(&mut dst[2..], wide, (m, n, k), a, b, 0.5, true).unwrap();
            let want = naive(m, n, k, a, b);
            for i in 0..m {
                assert_eq!(&dst[i * wide..i * wide + 2], &[9.0, 9.0], "columns left of the range untouched");
                for j in 0..n {
                    let (got, w) = (dst[i * wide + 2 + j], 1.5 * want[i * n + j]);
                    assert!((got - w).abs() < 1e-4, "{m}×{n}×{k} ({i}, {j}): {got} vs {w}");
                }
                if 2 + n < wide {
                    assert_eq!(dst[i * wide + 2 + n], 9.0, "columns right of the range untouched");
                }
            }
        }
    }

    #[test]
    fn buffers_that_do_not_fit_are_errors() {
        let (x, w) = (vec![1f32; 12], vec![1f32; 12]);
        let mut dst = vec![0f32; 8];
        let (a, b) = (View::rows(&x, 4), View::t(&w, 4));
        // 3×4 by 4×3 needs 9 outputs.
        assert!(PARALLEL.run(&mut dst, 3, (3, 3, 4), a, b, 1.0, false).is_err());
        // A row stride shorter than the row.
        let mut dst = vec![0f32; 16];
        assert!(PARALLEL.run(&mut dst, 2, (3, 3, 4), a, b, 1.0, false).is_err());
        // lhs too short for 4 rows.
        assert!(PARALLEL.run(&mut dst, 4, (4, 3, 4), a, b, 1.0, false).is_err());
        assert!(PARALLEL.run(&mut dst, 4, (3, 3, 4), a, b, 1.0, false).is_ok());
    }
}
