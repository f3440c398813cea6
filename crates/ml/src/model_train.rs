//! The training forward of [`Model`]: differentiable candle ops over a padded
//! `[batch, time]` block, LoRA weights as variables, base weights frozen.
//! The serving forward is in `model.rs`; both share the weights.
//!
//! Two compositions of the same maths. `BaseGrad::Naive` is plain candle ops
//! (every link of every chain kept for autograd, base-weight gradients computed
//! and dropped): the reference the fused ops are tested against.
//! `BaseGrad::Frozen` is the fast path: the frozen-linear op and the fused ops
//! of [`crate::fused`] (RMSNorm, RoPE, causal GQA attention, SwiGLU, and the
//! head fused with the cross-entropy in [`Model::loss`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{D, Device, Tensor, Var};

use crate::MlError;
use crate::fused::block::{Block, BlockLoraOp, BlockOp, PerSequence};
use crate::fused::{Dims, PartSpec, Proj, RopeTables, reference};
use crate::lora::{LoraConfig, LoraVars, Target};
use crate::model::{BaseGrad, Linear, Model};

/// A block's LoRA factors (A, B) by target.
type BlockLora = BTreeMap<Target, (Var, Var)>;

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
        dropout: Option<&mut crate::rng::Rng>,
    ) -> Result<Tensor, MlError> {
        self.hidden_train_split(tokens, lora, grad, dropout, None)
    }

    /// [`Self::hidden_train`]; with `per_seq`, the backward also leaves each
    /// sequence's own LoRA gradients there (the fused path only: f32 weights,
    /// `BaseGrad::Frozen`, no dropout; an error otherwise).
    pub(crate) fn hidden_train_split(
        &self,
        tokens: &Tensor,
        lora: Option<&LoraVars>,
        grad: BaseGrad,
        mut dropout: Option<&mut crate::rng::Rng>,
        per_seq: Option<&Arc<PerSequence>>,
    ) -> Result<Tensor, MlError> {
        let c = &self.config;
        let (bsz, t) = tokens.dims2()?;
        if t > c.max_position_embeddings {
            return Err(MlError::ContextFull { needed: t, max: c.max_position_embeddings });
        }
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let fast = grad == BaseGrad::Frozen;
        let positions: Vec<usize> = (0..t).collect();
        let (cos_v, sin_v) = self.rope_tables(&positions);
        let half = hd / 2;
        let (cos_v, sin_v) = (Arc::new(cos_v), Arc::new(sin_v));
        let cos = Tensor::from_slice(&cos_v, (t, half), &Device::Cpu)?;
        let sin = Tensor::from_slice(&sin_v, (t, half), &Device::Cpu)?;
        let cos = Tensor::cat(&[&cos, &cos], 1)?;
        let sin = Tensor::cat(&[&sin, &sin], 1)?;
        let mask = if fast { None } else { Some(reference::causal_mask(t)?) };
        let eps = c.rms_norm_eps;
        let residual = |x: &Tensor, y: &Tensor| -> candle_core::Result<Tensor> {
            if fast { crate::fused::add(x, y) } else { x + y }
        };
        let norm = |x: &Tensor, w: &Tensor| -> candle_core::Result<Tensor> {
            if fast { crate::fused::rms_norm(x, w, eps) } else { reference::rms_norm(x, w, eps) }
        };
        let mut x = self.embed.tensor()?.index_select(&tokens.flatten_all()?, 0)?.reshape((bsz, t, c.hidden_size))?;
        let drop_p = lora.map(|l| l.config.lora_dropout).unwrap_or(0.0);
        // The block op reads f32 weights in place (a bf16 model takes the op-by-op path).
        let f32_weights = self.dense_f32_blocks();
        if fast && f32_weights && !(drop_p > 0.0 && dropout.is_some()) {
            // Each block in one op (see `fused::block`).
            let rope = RopeTables { cos: cos_v, sin: sin_v, head_dim: hd };
            for (l, b) in self.blocks.iter().enumerate() {
                let into = per_seq.map(|p| (p.clone(), l));
                x = self.fused_block(b, &x, lora.map(|lv| (&lv.layers[l], &lv.config)), &rope, into)?;
            }
            return Ok(norm(&x, &self.norm)?);
        }
        if per_seq.is_some() {
            return Err(MlError::Config(
                "per-sequence gradients need the fused path (dense f32 weights, no dropout)".into(),
            ));
        }
        let scale = lora.map(|l| l.config.scale()).unwrap_or(0.0);
        for (l, b) in self.blocks.iter().enumerate() {
            let vars = lora.map(|lv| &lv.layers[l]);
            let mut proj = |tg: Target, h: &Tensor| -> Result<Tensor, MlError> {
                let lin = b.linear(tg);
                let dropping = drop_p > 0.0 && dropout.is_some();
                if let (true, false, Some((a, bv))) = (fast, dropping, vars.and_then(|m| m.get(&tg))) {
                    // The frozen layer and its LoRA pair in one op.
                    let y = crate::fused::lora_linear(h, &lin.w.tensor()?, a.as_tensor(), bv.as_tensor(), scale)?;
                    return Ok(match &lin.b {
                        Some(bias) => y.broadcast_add(bias)?,
                        None => y,
                    });
                }
                let y = lin.forward_train(h, grad)?;
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
            let h = norm(&x, &b.input_norm)?;
            let y = match &mask {
                // [b, t, heads, d] throughout: the projections' layout, no transposes.
                None => {
                    let q = proj(Target::Q, &h)?.reshape((bsz, t, nh, hd))?;
                    let k = proj(Target::K, &h)?.reshape((bsz, t, nkv, hd))?;
                    let v = proj(Target::V, &h)?.reshape((bsz, t, nkv, hd))?;
                    let q = crate::fused::rope(&q, cos_v.clone(), sin_v.clone())?;
                    let k = crate::fused::rope(&k, cos_v.clone(), sin_v.clone())?;
                    crate::fused::causal_attention(&q, &k, &v)?.reshape((bsz, t, nh * hd))?
                }
                Some(mask) => {
                    let q = proj(Target::Q, &h)?.reshape((bsz, t, nh, hd))?.transpose(1, 2)?;
                    let k = proj(Target::K, &h)?.reshape((bsz, t, nkv, hd))?.transpose(1, 2)?;
                    let v = proj(Target::V, &h)?.reshape((bsz, t, nkv, hd))?.transpose(1, 2)?;
                    let q = reference::rope(&q, &cos, &sin)?;
                    let k = reference::rope(&k, &cos, &sin)?;
                    reference::attention(&q, &k, &v, mask)?.transpose(1, 2)?.reshape((bsz, t, nh * hd))?
                }
            };
            x = residual(&x, &proj(Target::O, &y)?)?;
            let h = norm(&x, &b.post_norm)?;
            let g = proj(Target::Gate, &h)?;
            let u = proj(Target::Up, &h)?;
            let m = if fast { crate::fused::swiglu(&g, &u)? } else { reference::swiglu(&g, &u)? };
            x = residual(&x, &proj(Target::Down, &m)?)?;
        }
        Ok(norm(&x, &self.norm)?)
    }

    /// One block as a single fused op; its LoRA pairs (if any) are flattened
    /// into one variable-backed tensor in the order q, k, v, o, gate, up, down.
    fn fused_block(
        &self,
        b: &crate::model::Block,
        x: &Tensor,
        lora: Option<(&BlockLora, &LoraConfig)>,
        rope: &RopeTables,
        per_seq: Option<(Arc<PerSequence>, usize)>,
    ) -> Result<Tensor, MlError> {
        let c = &self.config;
        let (rank, scale) = lora.map_or((0, 0.0), |(_, cfg)| (cfg.r, cfg.scale()));
        let has = |tg: Target| lora.is_some_and(|(m, _)| m.contains_key(&tg));
        let mut base = 0;
        let mut proj = |tgs: &[Target], rot: bool| -> candle_core::Result<Proj> {
            let specs: Vec<PartSpec<'_>> =
                tgs.iter()
                    .map(|&tg| {
                        Ok(PartSpec {
                            // The caller takes this path only when every weight is dense f32.
                            weight: b.linear(tg).w.f32_dense().ok_or_else(|| {
                                candle_core::Error::Msg("the fused block reads dense f32 weights".into())
                            })?,
                            bias: b.linear(tg).b.as_ref(),
                            lora: has(tg),
                            rope: rot && matches!(tg, Target::Q | Target::K),
                        })
                    })
                    .collect::<candle_core::Result<_>>()?;
            let p = Proj::new(&specs, rank, scale, rot.then(|| rope.clone()), base)?;
            base += p.lora_len;
            Ok(p)
        };
        let projs = [
            proj(&[Target::Q, Target::K, Target::V], true)?,
            proj(&[Target::O], false)?,
            proj(&[Target::Gate, Target::Up], false)?,
            proj(&[Target::Down], false)?,
        ];
        let (bsz, t, _) = x.dims3()?;
        let dims = Dims { b: bsz, t, nh: c.num_attention_heads, nkv: c.num_key_value_heads, d: c.head_dim };
        let vec = |w: &Tensor| w.flatten_all().and_then(|w| w.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>());
        let block = Block::new(
            vec(&b.input_norm)?,
            vec(&b.post_norm)?,
            c.rms_norm_eps as f32,
            projs,
            dims,
            c.intermediate_size,
        )?;
        let block = match per_seq {
            Some((into, layer)) => block.per_sequence(into, layer),
            None => block,
        };
        let x = x.contiguous()?;
        let pairs: Vec<Tensor> = match lora {
            None => Vec::new(),
            Some((m, _)) => Target::ALL
                .iter()
                .filter_map(|tg| m.get(tg))
                .map(|(a, bv)| Ok([a.as_tensor().flatten_all()?, bv.as_tensor().flatten_all()?]))
                .collect::<candle_core::Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect(),
        };
        Ok(if pairs.is_empty() {
            x.apply_op1(BlockOp(block))?
        } else {
            x.apply_op2(&Tensor::cat(&pairs, 0)?, BlockLoraOp(block))?
        })
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
        if grad == BaseGrad::Frozen {
            let (targets, weights) = shifted_targets(tokens, mask)?;
            let count: f32 = weights.iter().sum();
            if count == 0.0 {
                return Err(MlError::Config("no target tokens in the batch".into()));
            }
            // The same count the naive path divides by (an f32 sum of the mask).
            let weights: Vec<f32> = weights.iter().map(|&w| w / count).collect();
            let h = self.hidden_train(tokens, lora, grad, dropout)?;
            let h = h.reshape((b * t, self.config.hidden_size))?;
            return Ok(crate::fused::linear_cross_entropy(&h, &self.lm_head.tensor()?, &targets, &weights)?);
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

    /// Whether every block's linear weights are dense f32 (what the fused block op reads).
    pub(crate) fn dense_f32_blocks(&self) -> bool {
        self.blocks.iter().all(|b| Target::ALL.iter().all(|&tg| b.linear(tg).w.f32_dense().is_some()))
    }

    /// The sum over the `[b, t]` block's sequences of each one's mean
    /// next-token loss over its masked targets (each divided by its own count,
    /// the f32 sum [`Self::loss`] divides a single sequence by), through the
    /// fused path, whose backward leaves each sequence's own LoRA gradients in
    /// `per_seq`.
    pub(crate) fn per_sequence_loss(
        &self,
        tokens: &Tensor,
        mask: &Tensor,
        lora: &LoraVars,
        per_seq: &Arc<PerSequence>,
    ) -> Result<Tensor, MlError> {
        let (b, t) = tokens.dims2()?;
        if t < 2 {
            return Err(MlError::Config("a training sequence needs at least two tokens".into()));
        }
        let (targets, mut weights) = shifted_targets(tokens, mask)?;
        for (q, w) in weights.chunks_exact_mut(t).enumerate() {
            let count: f32 = w.iter().sum();
            if count == 0.0 {
                return Err(MlError::Config(format!("sequence {q} of the batch has no target tokens")));
            }
            w.iter_mut().for_each(|x| *x /= count);
        }
        let h = self.hidden_train_split(tokens, Some(lora), BaseGrad::Frozen, None, Some(per_seq))?;
        let h = h.reshape((b * t, self.config.hidden_size))?;
        Ok(crate::fused::linear_cross_entropy(&h, &self.lm_head.tensor()?, &targets, &weights)?)
    }

    /// Per-sequence mean NLL over the masked targets, without gradients (evaluation).
    pub fn sequence_nll(
        &self,
        tokens: &Tensor,
        mask: &Tensor,
        lora: Option<&LoraVars>,
    ) -> Result<Vec<(f64, f64)>, MlError> {
        let (b, t) = tokens.dims2()?;
        // The fused head: per-row NLL of the masked rows only, never all the logits.
        let h = self.hidden_train(tokens, lora, BaseGrad::Frozen, None)?.detach();
        let h = h.reshape((b * t, self.config.hidden_size))?;
        let (targets, weights) = shifted_targets(tokens, mask)?;
        let nll = crate::fused::linear_nll_rows(&h, &self.lm_head.tensor()?, &targets, &weights)?;
        Ok((0..b)
            .map(|r| {
                let rows = r * t..(r + 1) * t;
                // Summed in f32 in position order, as the naive `sum(1)` did.
                let sum: f32 = rows.clone().map(|i| nll[i] * weights[i]).sum();
                let cnt: f32 = rows.map(|i| weights[i]).sum();
                (sum as f64, cnt as f64)
            })
            .collect())
    }
}

/// Row `(s, i)` of a `[b, t]` block predicts token `i + 1` of sequence `s` with
/// weight `mask[s, i + 1]`; the last position of each sequence predicts nothing
/// (target 0, weight 0). Both `[b · t]`, row-major.
fn shifted_targets(tokens: &Tensor, mask: &Tensor) -> Result<(Vec<u32>, Vec<f32>), MlError> {
    let (b, t) = tokens.dims2()?;
    if mask.dims2()? != (b, t) {
        return Err(MlError::Config(format!("mask {:?} does not match tokens {:?}", mask.dims(), tokens.dims())));
    }
    let toks = tokens.flatten_all()?.to_vec1::<u32>()?;
    let m = mask.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    let mut targets = vec![0u32; b * t];
    let mut weights = vec![0f32; b * t];
    for s in 0..b {
        for i in 0..t.saturating_sub(1) {
            targets[s * t + i] = toks[s * t + i + 1];
            weights[s * t + i] = m[s * t + i + 1];
        }
    }
    Ok((targets, weights))
}

/// Inverted dropout mask (kept entries scaled by 1 / (1 - p)) from the seeded generator.
fn dropout_mask(dims: &[usize], p: f64, rng: &mut crate::rng::Rng) -> candle_core::Result<Tensor> {
    let n: usize = dims.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    let v: Vec<f32> = (0..n).map(|_| if rng.next_f64() < p { 0.0 } else { keep }).collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
}
