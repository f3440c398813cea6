//! A frozen linear layer with its LoRA pair in one op:
//! `y = x Wᵀ + s · (x Aᵀ) Bᵀ`, `W` `[out, in]` frozen, `A` `[r, in]` and `B`
//! `[out, r]` trained, `s` = alpha / r.
//!
//! As separate candle ops this is three matmuls, a scale, an add, and two uses
//! of `x` (whose gradients candle then adds): four elementwise passes over
//! activation-sized tensors forward and backward, each a round trip through
//! candle's elementwise thread pool. Here the products go straight to gemm and
//! the sums are formed in place. The backward gives
//! `dX = dY W + s (dY B) A`, `dA = s (dY B)ᵀ x`, `dB = s dYᵀ (x Aᵀ)`, the
//! weight `W` nothing. `x Aᵀ` is recomputed in the backward (r columns: cheap).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::linear::matmul_nt_storage;
use super::{tensor, with_f32};

/// Elements per rayon task of the in-place sums.
const CHUNK: usize = 8192;

struct LoraLinear {
    weight: Tensor,
    scale: f32,
}

fn f32_vec(s: CpuStorage, what: &str) -> Result<Vec<f32>> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => bail!("{what}: gemm returned a non-f32 result"),
    }
}

/// `acc += s · v`, elementwise, in parallel (each element alone: deterministic).
fn add_scaled(acc: &mut [f32], v: &[f32], s: f32) {
    acc.par_chunks_mut(CHUNK).zip(v.par_chunks(CHUNK)).for_each(|(a, v)| {
        for (a, &v) in a.iter_mut().zip(v) {
            *a += s * v;
        }
    });
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "fused-lora-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        as_: &CpuStorage,
        al: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k) = self.weight.dims2()?;
        let (&[r, ak], &[bn, br]) = (al.dims(), bl.dims()) else {
            bail!("lora-linear: A {:?} and B {:?} must be 2-D", al.dims(), bl.dims())
        };
        if ak != k || bn != n || br != r {
            bail!("lora-linear: A {:?} and B {:?} do not fit a weight {n}×{k}", al.dims(), bl.dims());
        }
        let (ws, wl) = self.weight.storage_and_layout();
        let candle_core::Storage::Cpu(ws) = &*ws else { bail!("lora-linear: the weight must be on the CPU") };
        let mut y = f32_vec(matmul_nt_storage(xs, xl, ws, wl)?, "lora-linear")?;
        let xa = matmul_nt_storage(xs, xl, as_, al)?;
        let m = y.len() / n.max(1);
        let lora = f32_vec(matmul_nt_storage(&xa, &Layout::contiguous((m, r)), bs, bl)?, "lora-linear")?;
        add_scaled(&mut y, &lora, self.scale);
        let mut dims = xl.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = self.weight.dims2()?;
        // Detached: the gradients must carry no graph. A and B are leaves, so
        // candle stores their gradients as returned, and one built from the
        // tracked inputs would keep the whole step's graph alive (the trainer
        // folds the gradients into its AdamW moments, step after step).
        let (x, a, b, dy) = (x.detach(), a.detach(), b.detach(), dy.detach());
        let x2 = x.reshape(((), k))?;
        let dy2 = dy.reshape(((), n))?.contiguous()?;
        let s = self.scale as f64;
        let dyb = dy2.matmul(&b)?; // [m, r]
        let base = dy2.matmul(&self.weight)?; // [m, k]
        let lora = dyb.matmul(&a)?; // [m, k]
        let dx = with_f32(&base, "lora-linear backward", |base| {
            with_f32(&lora, "lora-linear backward", |lora| {
                let mut dx = base.to_vec();
                add_scaled(&mut dx, lora, self.scale);
                Ok(dx)
            })
        })?;
        let dx = tensor(dx, x.shape())?;
        // Small ([r, in] and [out, r]): plain candle ops.
        let da = (dyb.t()?.matmul(&x2)? * s)?;
        let xa = x2.matmul(&a.t()?)?;
        let db = (dy2.t()?.matmul(&xa)? * s)?;
        Ok((Some(dx), Some(da), Some(db)))
    }
}

/// `x Wᵀ + scale · (x Aᵀ) Bᵀ` for `x` `[..., in]`, frozen `w` `[out, in]`, and
/// the LoRA pair `a` `[r, in]`, `b` `[out, r]`.
pub fn lora_linear(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
    let op = LoraLinear { weight: w.clone(), scale: scale as f32 };
    x.contiguous()?.apply_op3(&a.contiguous()?, &b.contiguous()?, op)
}
