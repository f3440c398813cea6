//! A linear layer whose weight is frozen: `y = x Wᵀ`, with a backward pass that
//! returns only the input's gradient. candle's matmul backward always computes
//! the right-hand side's gradient too, even for a weight that is no variable;
//! for LoRA training that is a third of the backward arithmetic and a
//! weight-sized gradient per layer, computed and thrown away.
//!
//! The forward hands the op's input storage and the weight's (as a transposed
//! layout) straight to candle's gemm, so neither input nor output is copied.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// The op; holds the frozen weight `(out, in)`.
pub struct FrozenLinear {
    pub weight: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = crate::fused::matmul_nt(storage, layout, &self.weight)?;
        let mut dims = layout.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.weight.dim(0)?;
        }
        Ok((out, Shape::from(dims)))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // dX = dY W; the weight gets no gradient.
        Ok(Some(grad_res.broadcast_matmul(&self.weight)?))
    }
}

/// `x Wᵀ` with the frozen-weight backward; `x` is `[..., in]`.
pub fn frozen_linear(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_arc(std::sync::Arc::new(Box::new(FrozenLinear { weight: weight.clone() })))
}
