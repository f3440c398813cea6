//! A linear layer whose weight is frozen: `y = x Wᵀ`, with a backward pass that
//! returns only the input's gradient. candle's matmul backward always computes
//! the right-hand side's gradient too, even for a weight that is no variable;
//! for LoRA training that is a third of the backward arithmetic and a
//! weight-sized gradient per layer, computed and thrown away.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Storage, Tensor};

/// The op; holds the frozen weight `(out, in)`.
pub struct FrozenLinear {
    pub weight: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims().to_vec();
        let x = match storage {
            CpuStorage::F32(v) => match layout.contiguous_offsets() {
                Some((a, b)) => Tensor::from_slice(&v[a..b], dims.as_slice(), &candle_core::Device::Cpu)?,
                // `frozen_linear` makes its input contiguous first.
                None => candle_core::bail!("frozen-linear: the input must be contiguous"),
            },
            _ => candle_core::bail!("frozen-linear: f32 activations only"),
        };
        let y = x.broadcast_matmul(&self.weight.t()?)?;
        let shape = y.shape().clone();
        let (s, l) = y.storage_and_layout();
        let out = match &*s {
            Storage::Cpu(c) => match l.contiguous_offsets() {
                Some((0, _)) => c.clone(),
                _ => candle_core::bail!("frozen-linear: unexpected output layout"),
            },
            _ => candle_core::bail!("frozen-linear: CPU only"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // dX = dY W; the weight gets no gradient.
        Ok(Some(grad_res.broadcast_matmul(&self.weight)?))
    }
}

/// `x Wᵀ` with the frozen-weight backward.
pub fn frozen_linear(x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    x.apply_op1_arc(std::sync::Arc::new(Box::new(FrozenLinear { weight: weight.clone() })))
}
