//! The straightforward compositions of candle ops that the fused ops replace:
//! the maths of `BaseGrad::Naive`, which the training path runs as its
//! reference and `bench train --profile` times against the fused ops. Every
//! link is a candle op, so candle's autograd differentiates them (and keeps
//! each link's result for the backward).

use candle_core::{D, Device, Result, Tensor};

/// RMSNorm over the last dimension: sqr → mean → add ε → sqrt → div → mul.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(w)
}

/// Rotate-half RoPE on `[b, heads, t, d]` with full-width `cos`, `sin` `[t, d]`
/// (each half-table repeated twice).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rot.broadcast_mul(sin)?
}

/// `[b, kv_heads, t, d]` → `[b, kv_heads · n, t, d]`, each head repeated n times.
pub fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, h, n, t, d))?.contiguous()?.reshape((b, h * n, t, d))
}

/// `[t, t]`: 0 on and below the diagonal, −∞ above.
pub fn causal_mask(t: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(v, (t, t), &Device::Cpu)
}

/// Causal GQA attention on `[b, heads, t, d]` queries and `[b, kv_heads, t, d]`
/// keys and values (after RoPE); returns `[b, heads, t, d]`. The full `[t, t]`
/// scores of every head are materialised.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (nh, nkv, hd) = (q.dim(1)?, k.dim(1)?, q.dim(3)?);
    let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
    let att = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?;
    let att = candle_nn::ops::softmax(&att.broadcast_add(mask)?, D::Minus1)?;
    att.matmul(&v.contiguous()?)
}

/// `silu(g) · u`.
pub fn swiglu(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    g.silu()? * u
}

/// `Σᵢ weights[i] · NLL(targets[i] | softmax(h[i] headᵀ))` through the full
/// `[rows, vocab]` logits and their log-softmax.
pub fn linear_cross_entropy(h: &Tensor, head: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let logits = h.matmul(&head.t()?)?;
    let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let t = Tensor::from_slice(targets, (targets.len(), 1), &Device::Cpu)?;
    let nll = lsm.gather(&t, 1)?.squeeze(1)?.neg()?;
    (nll * Tensor::from_slice(weights, weights.len(), &Device::Cpu)?)?.sum_all()
}
