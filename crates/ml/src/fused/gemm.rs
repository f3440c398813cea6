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

/// `dst[i, j] (+)= scale · Σₚ lhs[i, p] rhs[p, j]` for `i < m`, `j < n`, `p < k`;
/// `dst` is row-major with row stride `dst_rs` (the product lands in its first
/// `n` columns; pass a sub-slice to start further right). `accumulate` adds to
/// what `dst` holds, otherwise it is overwritten.
pub(crate) fn gemm(
    dst: &mut [f32],
    dst_rs: usize,
    mnk: (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    scale: f32,
    accumulate: bool,
) -> Result<()> {
    let threads = rayon::current_num_threads();
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    run(dst, dst_rs, mnk, lhs, rhs, scale, accumulate, par)
}

/// [`gemm`] on the calling thread alone: for small products inside a task
/// that is already one of many in parallel.
pub(crate) fn gemm_serial(
    dst: &mut [f32],
    dst_rs: usize,
    mnk: (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    scale: f32,
    accumulate: bool,
) -> Result<()> {
    run(dst, dst_rs, mnk, lhs, rhs, scale, accumulate, gemm::Parallelism::None)
}

#[allow(clippy::too_many_arguments)]
fn run(
    dst: &mut [f32],
    dst_rs: usize,
    (m, n, k): (usize, usize, usize),
    lhs: View<'_>,
    rhs: View<'_>,
    scale: f32,
    accumulate: bool,
    par: gemm::Parallelism,
) -> Result<()> {
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
