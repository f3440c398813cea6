//! Fused CPU ops with hand-written backward passes, for LoRA training.
//!
//! Each op replaces a chain of small candle ops (and the temporaries candle's
//! autograd keeps for each link) by one pass over the data: [`rms_norm`],
//! [`rope`], [`causal_attention`], [`swiglu`], [`linear_cross_entropy`] (the
//! frozen head and the masked mean cross-entropy in one, never holding the
//! whole `[rows, vocab]` logits), [`lora_linear`] (a frozen linear layer and
//! its LoRA pair), [`add`] (the residual add, on rayon's threads rather than
//! candle's separate elementwise pool), and [`matmul_nt`], the frozen-linear
//! forward straight into candle's gemm without copies. [`profile`] times each
//! against its candle composition at a model's shapes (`bench train --profile`).
//!
//! The training step itself runs one op per transformer block ([`block`]):
//! the same kernels on slices, the projections that share an input side by
//! side in one buffer (`projection`, on direct gemm calls that write into
//! column ranges and accumulate), and a written-out backward, so candle's
//! autograd sees two nodes per block instead of about twenty. The per-op
//! candle ops above remain for LoRA dropout (a mask per target) and as the
//! units the tests check one by one.
//!
//! Invariants every op keeps:
//! - **Deterministic and thread-count independent.** Attribution compares
//!   gradients bit for bit, so no result may depend on how rayon splits the
//!   work: every sum has a fixed order (per row, per head, or over fixed-size
//!   blocks reduced in index order), never a per-thread partial.
//! - **Batch invariant.** A row's result depends only on that row's inputs.
//! - f32 activations on the CPU, row-major contiguous inputs (the wrappers make
//!   them contiguous; that is free when they already are).
//!
//! The composition of plain candle ops each op replaces is in [`reference`]
//! (what `BaseGrad::Naive` runs); `tests/fused.rs` checks every op against it
//! and against finite differences.

mod attention;
pub(crate) mod block;
mod cross_entropy;
mod gemm;
mod linear;
mod norm;
pub mod profile;
mod projection;
pub mod reference;
mod rope;
mod simd;
mod swiglu;

pub(crate) use attention::Dims;
pub use attention::causal_attention;
pub use cross_entropy::{linear_cross_entropy, linear_nll_rows};
pub use linear::{frozen_linear, matmul_nt};
pub use norm::rms_norm;
pub use projection::lora_linear;
pub(crate) use projection::{PartSpec, Proj, RopeTables};
pub use rope::rope;
pub use swiglu::{add, swiglu};

use candle_core::{CpuStorage, Device, Layout, Result, Shape, Storage, Tensor, bail};

/// Run `f` on the f32 elements of `t` in row-major order, borrowing them when
/// `t` is contiguous (it is made contiguous first otherwise).
pub(crate) fn with_f32<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = if t.is_contiguous() { t.clone() } else { t.contiguous()? };
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(CpuStorage::F32(v)) => match l.contiguous_offsets() {
            Some((a, b)) => f(&v[a..b]),
            None => bail!("{what}: a contiguous tensor was not laid out contiguously"),
        },
        Storage::Cpu(_) => bail!("{what}: f32 tensors only, got {:?}", t.dtype()),
        _ => bail!("{what}: CPU tensors only"),
    }
}

/// The f32 elements of a custom op's CPU input, which must be contiguous (the
/// public wrappers make sure of that).
pub(crate) fn cpu_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) => match l.contiguous_offsets() {
            Some((a, b)) => Ok(&v[a..b]),
            None => bail!("{what}: the input must be contiguous"),
        },
        _ => bail!("{what}: f32 activations only, got {:?}", candle_core::backend::BackendStorage::dtype(s)),
    }
}

/// A CPU tensor from a vector, for the backward passes.
pub(crate) fn tensor(v: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(v, shape.into(), &Device::Cpu)
}

/// Rows handled by one rayon task in the row-wise ops: large enough to amortise
/// scheduling, small enough for 2 cores to share a 128-row batch evenly. The
/// result never depends on it (each row is computed alone).
pub(crate) const ROW_TASK: usize = 16;
