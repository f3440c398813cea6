//! `x Wᵀ` for a frozen weight `W` (`[out, in]`), straight into candle's gemm on
//! the CPU storages: no copy of the input, none of the output, and `Wᵀ` is a
//! transposed layout, never a transposed copy.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Storage, Tensor, bail};

pub use crate::frozen::frozen_linear;

/// `x Wᵀ` where `x` is the rows `[m, k]` of `xs` laid out by `xl` (any rank,
/// contiguous, its last dimension k) and `w` is `[n, k]`; returns `[m, n]`.
pub fn matmul_nt(xs: &CpuStorage, xl: &Layout, w: &Tensor) -> Result<CpuStorage> {
    let (ws, wl) = w.storage_and_layout();
    let Storage::Cpu(ws) = &*ws else { bail!("matmul: the weight must be on the CPU") };
    matmul_nt_storage(xs, xl, ws, wl)
}

/// [`matmul_nt`] with the weight given as a CPU storage and its 2-D layout.
pub(crate) fn matmul_nt_storage(xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<CpuStorage> {
    let Some((start, end)) = xl.contiguous_offsets() else { bail!("matmul: the input must be contiguous") };
    let &[n, k] = wl.dims() else { bail!("matmul: the weight must be 2-D, got {:?}", wl.dims()) };
    if xl.dims().last() != Some(&k) {
        bail!("matmul: input {:?} does not end in the weight's input size {k}", xl.dims());
    }
    let m = (end - start) / k.max(1);
    let lhs = Layout::contiguous_with_offset((m, k), start);
    let rhs = wl.transpose(0, 1)?;
    xs.matmul(ws, (1, m, n, k), &lhs, &rhs)
}
