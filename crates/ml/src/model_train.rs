//! The training forward of [`Model`]: differentiable candle ops over a padded
//! `[batch, time]` block, LoRA weights as variables, base weights frozen.
//! The serving forward is in `model.rs`; both share the weights.

use candle_core::{D, Device, Tensor};

use crate::MlError;
use crate::lora::{LoraVars, Target};
use crate::model::{BaseGrad, Linear, Model};

impl Model {
    /// Logits `[b, t, vocab]` of a `[b, t]` block of token ids, differentiable in
    /// the LoRA variables (if any); `dropout` masks are applied to LoRA inputs.
    pub fn forward_train(
        &self,
        tokens: &Tensor,
        lora: Option<&LoraVars>,
        grad: BaseGrad,
        dropout: Option<&mut crate::rng::Rng>,
    ) -> Result<Tensor, MlError> {
        let h = self.hidden_train(tokens, lora, grad, dropout)?;
        Ok(self.head_train(&h, grad)?)
    }

    /// The final hidden states `[b, t, hidden]` (after the last norm).
    pub fn hidden_train(
        &self,
        tokens: &Tensor,
        lora: Option<&LoraVars>,
        grad: BaseGrad,
        mut dropout: Option<&mut crate::rng::Rng>,
    ) -> Result<Tensor, MlError> {
        let c = &self.config;
        let (bsz, t) = tokens.dims2()?;
        if t > c.max_position_embeddings {
            return Err(MlError::ContextFull { needed: t, max: c.max_position_embeddings });
        }
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let positions: Vec<usize> = (0..t).collect();
        let (cos, sin) = self.rope_tables(&positions);
        let half = hd / 2;
        let cos = Tensor::from_vec(cos, (t, half), &Device::Cpu)?;
        let sin = Tensor::from_vec(sin, (t, half), &Device::Cpu)?;
        let cos = Tensor::cat(&[&cos, &cos], 1)?;
        let sin = Tensor::cat(&[&sin, &sin], 1)?;
        let mask = causal_mask(t)?;
        let mut x = self.embed.index_select(&tokens.flatten_all()?, 0)?.reshape((bsz, t, c.hidden_size))?;
        let drop_p = lora.map(|l| l.config.lora_dropout).unwrap_or(0.0);
        let scale = lora.map(|l| l.config.scale()).unwrap_or(0.0);
        for (l, b) in self.blocks.iter().enumerate() {
            let vars = lora.map(|lv| &lv.layers[l]);
            let mut proj = |tg: Target, h: &Tensor| -> Result<Tensor, MlError> {
                let y = b.linear(tg).forward_train(h, grad)?;
                match vars.and_then(|m| m.get(&tg)) {
                    None => Ok(y),
                    Some((a, bv)) => {
                        let inp = match dropout.as_deref_mut() {
                            Some(rng) if drop_p > 0.0 => (h * dropout_mask(h.dims(), drop_p, rng)?)?,
                            _ => h.clone(),
                        };
                        let d = inp.broadcast_matmul(&a.as_tensor().t()?)?.broadcast_matmul(&bv.as_tensor().t()?)?;
                        Ok((y + (d * scale)?)?)
                    }
                }
            };
            let h = rms_norm_train(&x, &b.input_norm, c.rms_norm_eps)?;
            let q = proj(Target::Q, &h)?.reshape((bsz, t, nh, hd))?.transpose(1, 2)?;
            let k = proj(Target::K, &h)?.reshape((bsz, t, nkv, hd))?.transpose(1, 2)?;
            let v = proj(Target::V, &h)?.reshape((bsz, t, nkv, hd))?.transpose(1, 2)?;
            let q = rope_train(&q, &cos, &sin)?;
            let k = rope_train(&k, &cos, &sin)?;
            let (k, v) = (repeat_kv(&k, nh / nkv)?, repeat_kv(&v, nh / nkv)?);
            let att = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?;
            let att = att.broadcast_add(&mask)?;
            let att = candle_nn::ops::softmax(&att, D::Minus1)?;
            let y = att.matmul(&v.contiguous()?)?.transpose(1, 2)?.reshape((bsz, t, nh * hd))?;
            x = (x + proj(Target::O, &y)?)?;
            let h = rms_norm_train(&x, &b.post_norm, c.rms_norm_eps)?;
            let g = proj(Target::Gate, &h)?;
            let u = proj(Target::Up, &h)?;
            let m = (g.silu()? * u)?;
            x = (x + proj(Target::Down, &m)?)?;
        }
        Ok(rms_norm_train(&x, &self.norm, c.rms_norm_eps)?)
    }

    fn head_train(&self, h: &Tensor, grad: BaseGrad) -> candle_core::Result<Tensor> {
        let head = Linear { w: self.lm_head.clone(), b: None };
        head.forward_train(h, grad)
    }

    /// Mean next-token cross-entropy over the positions where `mask` is 1:
    /// logits at position i predict token i + 1. `tokens` and `mask` are `[b, t]`
    /// (u32 and f32); the mask's last column is ignored.
    pub fn loss(
        &self,
        tokens: &Tensor,
        mask: &Tensor,
        lora: Option<&LoraVars>,
        grad: BaseGrad,
        dropout: Option<&mut crate::rng::Rng>,
    ) -> Result<Tensor, MlError> {
        let (b, t) = tokens.dims2()?;
        if t < 2 {
            return Err(MlError::Config("a training sequence needs at least two tokens".into()));
        }
        let logits = self.forward_train(tokens, lora, grad, dropout)?;
        let logits = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), self.config.vocab_size))?;
        let targets = tokens.narrow(1, 1, t - 1)?.flatten_all()?;
        let m = mask.narrow(1, 1, t - 1)?.flatten_all()?;
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let nll = lsm.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
        let count = m.sum_all()?.to_scalar::<f32>()?;
        if count == 0.0 {
            return Err(MlError::Config("no target tokens in the batch".into()));
        }
        Ok(((nll * m)?.sum_all()? / count as f64)?)
    }

    /// Per-sequence mean NLL over the masked targets, without gradients (evaluation).
    pub fn sequence_nll(
        &self,
        tokens: &Tensor,
        mask: &Tensor,
        lora: Option<&LoraVars>,
    ) -> Result<Vec<(f64, f64)>, MlError> {
        let (b, t) = tokens.dims2()?;
        let logits = self.forward_train(tokens, lora, BaseGrad::Frozen, None)?.detach();
        let logits = logits.narrow(1, 0, t - 1)?;
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let targets = tokens.narrow(1, 1, t - 1)?.contiguous()?;
        let nll = lsm.gather(&targets.unsqueeze(2)?, 2)?.squeeze(2)?.neg()?;
        let m = mask.narrow(1, 1, t - 1)?;
        let sum = (nll * &m)?.sum(1)?.to_vec1::<f32>()?;
        let cnt = m.sum(1)?.to_vec1::<f32>()?;
        let _ = b;
        Ok(sum.into_iter().zip(cnt).map(|(s, c)| (s as f64, c as f64)).collect())
    }
}

fn rms_norm_train(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(w)
}

fn rope_train(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let hd = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, hd / 2)?;
    let x2 = x.narrow(D::Minus1, hd / 2, hd / 2)?;
    let rot = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rot.broadcast_mul(sin)?
}

fn repeat_kv(x: &Tensor, n: usize) -> candle_core::Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, h, n, t, d))?.contiguous()?.reshape((b, h * n, t, d))
}

fn causal_mask(t: usize) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(v, (t, t), &Device::Cpu)
}

/// Inverted dropout mask (kept entries scaled by 1 / (1 - p)) from the seeded generator.
fn dropout_mask(dims: &[usize], p: f64, rng: &mut crate::rng::Rng) -> candle_core::Result<Tensor> {
    let n: usize = dims.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    let v: Vec<f32> = (0..n).map(|_| if rng.next_f64() < p { 0.0 } else { keep }).collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
}
