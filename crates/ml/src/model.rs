//! One decoder for the Llama family, read top to bottom like the paper:
//! embeddings, `n` blocks of (RMSNorm → grouped-query attention with RoPE →
//! residual, RMSNorm → SwiGLU MLP → residual), a final RMSNorm and the head.
//!
//! Two entry points share the weights:
//! - [`Model::forward`] serves: it takes a [`Step`], the batch descriptor (which
//!   sequences, their new tokens, their adapters; positions and block tables
//!   come from the [`KvCache`]), and computes base projections once for the
//!   whole batch and low-rank products per adapter group.
//! - [`Model::forward_train`] (in `model_train.rs`) trains: differentiable candle ops over a padded
//!   `[batch, time]` block, LoRA weights as variables, base weights frozen.

use std::collections::BTreeMap;

use candle_core::{Device, IndexOp, Tensor};

use crate::MlError;
use crate::config::ModelConfig;
use crate::frozen::frozen_linear;
use crate::kv::{AttnSpan, KvCache, SeqId, paged_attention};
use crate::lora::{LoraAdapter, LoraPair, Target};
use crate::weights::ModelFiles;

/// A frozen linear layer, Hugging Face layout: weight `(out, in)`.
#[derive(Clone)]
pub struct Linear {
    pub w: Tensor,
    pub b: Option<Tensor>,
}

impl Linear {
    /// `x Wᵀ + b` for `x` of shape `[n, in]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.matmul(&self.w.t()?)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// Differentiable in `x` only (the weight is frozen), for `x` of shape `[b, t, in]`.
    /// The batch is flattened to `[b·t, in]` so that one large matmul runs, not `b` small ones.
    pub(crate) fn forward_train(&self, x: &Tensor, grad: BaseGrad) -> candle_core::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let inp = *dims.last().expect("rank >= 1");
        let x2 = x.reshape(((), inp))?;
        let y = match grad {
            BaseGrad::Frozen => frozen_linear(&x2.contiguous()?, &self.w)?,
            BaseGrad::Naive => x2.matmul(&self.w.t()?)?,
        };
        *dims.last_mut().expect("rank >= 1") = self.w.dim(0)?;
        let y = y.reshape(dims)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// How the backward pass treats the frozen base weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseGrad {
    /// The frozen-linear op: only input gradients.
    Frozen,
    /// Plain matmuls: candle also computes (and drops) the weights' gradients.
    Naive,
}

#[derive(Clone)]
pub(crate) struct Block {
    pub(crate) input_norm: Tensor,
    pub(crate) post_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Block {
    pub(crate) fn linear(&self, t: Target) -> &Linear {
        match t {
            Target::Q => &self.q,
            Target::K => &self.k,
            Target::V => &self.v,
            Target::O => &self.o,
            Target::Gate => &self.gate,
            Target::Up => &self.up,
            Target::Down => &self.down,
        }
    }
}

/// A loaded base model.
#[derive(Clone)]
pub struct Model {
    pub config: ModelConfig,
    /// The base model hash (weights and tokenizer).
    pub hash: primitives::B256,
    pub(crate) embed: Tensor,
    pub(crate) blocks: Vec<Block>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: Tensor,
    pub(crate) inv_freq: Vec<f32>,
}

/// What logits a sequence wants from a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// The last new token's (the next-token distribution).
    Last,
    /// Every new token's (scoring a prompt).
    All,
}

/// One sequence in a [`Step`].
#[derive(Debug, Clone)]
pub struct SeqStep<'a> {
    pub seq: SeqId,
    /// The new tokens: the whole prompt on the first step, one token when decoding.
    pub tokens: &'a [u32],
    /// Index into the adapters passed to [`Model::forward`], or `None` for the base model.
    pub adapter: Option<usize>,
    pub logits: Logits,
}

/// The batch descriptor of one forward step. Positions continue each
/// sequence's cache; the cache's block tables say where its keys and values live.
#[derive(Debug, Clone, Default)]
pub struct Step<'a> {
    pub seqs: Vec<SeqStep<'a>>,
}

/// The result of a step: logits rows `[rows, vocab]`; sequence `i` owns rows `ranges[i]`.
#[derive(Debug)]
pub struct StepOutput {
    pub logits: Tensor,
    pub ranges: Vec<std::ops::Range<usize>>,
}

impl StepOutput {
    /// Sequence `i`'s logits rows as vectors.
    pub fn rows(&self, i: usize) -> Result<Vec<Vec<f32>>, MlError> {
        let r = self.ranges[i].clone();
        Ok(self.logits.narrow(0, r.start, r.len())?.to_vec2::<f32>()?)
    }

    /// Sequence `i`'s last logits row.
    pub fn last(&self, i: usize) -> Result<Vec<f32>, MlError> {
        let r = self.ranges[i].clone();
        Ok(self.logits.i(r.end - 1)?.to_vec1::<f32>()?)
    }
}

impl Model {
    pub fn from_files(files: &ModelFiles) -> Result<Model, MlError> {
        let c = files.config.clone();
        let lin = |p: &str| -> Result<Linear, MlError> {
            Ok(Linear {
                w: files.get(&format!("{p}.weight"))?.clone(),
                b: files.tensors.get(&format!("{p}.bias")).map(|t| t.value.clone()),
            })
        };
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            blocks.push(Block {
                input_norm: files.get(&format!("{p}.input_layernorm.weight"))?.clone(),
                post_norm: files.get(&format!("{p}.post_attention_layernorm.weight"))?.clone(),
                q: lin(&format!("{p}.self_attn.q_proj"))?,
                k: lin(&format!("{p}.self_attn.k_proj"))?,
                v: lin(&format!("{p}.self_attn.v_proj"))?,
                o: lin(&format!("{p}.self_attn.o_proj"))?,
                gate: lin(&format!("{p}.mlp.gate_proj"))?,
                up: lin(&format!("{p}.mlp.up_proj"))?,
                down: lin(&format!("{p}.mlp.down_proj"))?,
            });
        }
        let embed = files.get("model.embed_tokens.weight")?.clone();
        let lm_head = if c.tie_word_embeddings { embed.clone() } else { files.get("lm_head.weight")?.clone() };
        let inv_freq = c.inv_freqs().into_iter().map(|f| f as f32).collect();
        Ok(Model {
            hash: files.hash,
            embed,
            blocks,
            norm: files.get("model.norm.weight")?.clone(),
            lm_head,
            inv_freq,
            config: c,
        })
    }

    /// Refuse an adapter made for another base model.
    pub fn check_adapter(&self, a: &LoraAdapter) -> Result<(), MlError> {
        if a.layers.len() != self.config.num_hidden_layers {
            return Err(MlError::AdapterMismatch(format!(
                "the adapter has {} layers, the base model {}",
                a.layers.len(),
                self.config.num_hidden_layers
            )));
        }
        for m in &a.layers {
            for (t, p) in m {
                let (out, inp) = t.shape(&self.config);
                if p.a.dims() != [a.config.r, inp] || p.b.dims() != [out, a.config.r] {
                    return Err(MlError::AdapterMismatch(format!("{} shapes do not fit the base model", t.module())));
                }
            }
        }
        Ok(())
    }

    fn eps(&self) -> f32 {
        self.config.rms_norm_eps as f32
    }

    /// cos and sin of every frequency at each position, `[n, head_dim / 2]` flattened.
    pub(crate) fn rope_tables(&self, positions: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        (cos, sin)
    }

    /// One serving step over the batch descriptor `step`. Reserves cache space
    /// for every sequence first (all or nothing), then runs the layers.
    pub fn forward(&self, step: &Step, cache: &mut KvCache, adapters: &[&LoraAdapter]) -> Result<StepOutput, MlError> {
        let c = &self.config;
        if step.seqs.is_empty() {
            return Err(MlError::Config("a step needs at least one sequence".into()));
        }
        for a in adapters {
            self.check_adapter(a)?;
        }
        // Positions and space.
        let mut spans = Vec::with_capacity(step.seqs.len());
        let mut positions = Vec::new();
        let mut tokens: Vec<u32> = Vec::new();
        for s in &step.seqs {
            if s.tokens.is_empty() {
                return Err(MlError::Config(format!("sequence {} has no new tokens", s.seq)));
            }
            if let Some(a) = s.adapter
                && a >= adapters.len()
            {
                return Err(MlError::Config(format!("sequence {} names adapter {a} of {}", s.seq, adapters.len())));
            }
            if let Some(&t) = s.tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
                return Err(MlError::Config(format!("token id {t} is outside the vocabulary ({})", c.vocab_size)));
            }
            let start = cache.len(s.seq);
            if start + s.tokens.len() > c.max_position_embeddings {
                return Err(MlError::ContextFull { needed: start + s.tokens.len(), max: c.max_position_embeddings });
            }
            spans.push(AttnSpan { seq: s.seq, row: tokens.len(), n: s.tokens.len(), start });
            positions.extend(start..start + s.tokens.len());
            tokens.extend_from_slice(s.tokens);
        }
        let mut reserved = Vec::new();
        for sp in &spans {
            let existed = cache.contains(sp.seq);
            if let Err(e) = cache.reserve(sp.seq, sp.start + sp.n) {
                for (id, len, existed) in reserved {
                    if existed { cache.truncate(id, len) } else { cache.free_seq(id) }
                }
                return Err(e);
            }
            reserved.push((sp.seq, sp.start, existed));
        }
        // Adapter groups: the rows of each adapter, gathered once per step, so a
        // batch pays one low-rank product per adapter, not per sequence.
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for (s, sp) in step.seqs.iter().zip(&spans) {
            if let Some(a) = s.adapter {
                let rows = (sp.row as u32)..((sp.row + sp.n) as u32);
                match groups.iter_mut().find(|g| g.0 == a) {
                    Some(g) => g.1.extend(rows),
                    None => groups.push((a, rows.collect())),
                }
            }
        }
        let row_index: Vec<(usize, Vec<u32>)> = groups;

        let n = tokens.len();
        let (cos, sin) = self.rope_tables(&positions);
        let ids = Tensor::from_vec(tokens, n, &Device::Cpu)?;
        let mut x = self.embed.index_select(&ids, 0)?;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        for (l, b) in self.blocks.iter().enumerate() {
            let pairs: Vec<(&BTreeMap<Target, LoraPair>, f64, &[u32])> = row_index
                .iter()
                .map(|(a, rows)| (&adapters[*a].layers[l], adapters[*a].config.scale(), rows.as_slice()))
                .collect();
            // The low-rank products of every adapter group in one pass over the
            // group's rows (x Aᵀ then · Bᵀ, per row, in f32 with a fixed order),
            // added to the base projection once: a handful of tensor ops per
            // layer and target whatever the number of adapters in the batch.
            let proj = |t: Target, h: &Tensor| -> Result<Tensor, MlError> {
                let y = b.linear(t).forward(h)?;
                if !pairs.iter().any(|(m, _, _)| m.contains_key(&t)) {
                    return Ok(y);
                }
                let (n, inp) = h.dims2()?;
                let out = y.dim(1)?;
                let xs = h.flatten_all()?.to_vec1::<f32>()?;
                let mut delta = vec![0.0f32; n * out];
                for (m, scale, rows) in &pairs {
                    let Some(p) = m.get(&t) else { continue };
                    let r = p.a.dim(0)?;
                    let a = p.a.flatten_all()?.to_vec1::<f32>()?;
                    let bw = p.b.flatten_all()?.to_vec1::<f32>()?;
                    let scale = *scale as f32;
                    let mut tmp = vec![0.0f32; r];
                    for &row in *rows {
                        let x = &xs[row as usize * inp..(row as usize + 1) * inp];
                        for (j, tj) in tmp.iter_mut().enumerate() {
                            *tj = crate::kv::dot(&a[j * inp..(j + 1) * inp], x);
                        }
                        let d = &mut delta[row as usize * out..(row as usize + 1) * out];
                        for (o, dv) in d.iter_mut().enumerate() {
                            *dv = scale * crate::kv::dot(&bw[o * r..(o + 1) * r], &tmp);
                        }
                    }
                }
                Ok((y + Tensor::from_vec(delta, (n, out), &Device::Cpu)?)?)
            };
            let h = candle_nn::ops::rms_norm(&x, &b.input_norm, self.eps())?;
            let q = proj(Target::Q, &h)?;
            let k = proj(Target::K, &h)?;
            let v = proj(Target::V, &h)?;
            let mut qv = q.flatten_all()?.to_vec1::<f32>()?;
            let mut kv = k.flatten_all()?.to_vec1::<f32>()?;
            apply_rope(&mut qv, nh, hd, &cos, &sin);
            apply_rope(&mut kv, nkv, hd, &cos, &sin);
            let vv = v.flatten_all()?.to_vec1::<f32>()?;
            let kvd = nkv * hd;
            for sp in &spans {
                let r = sp.row * kvd..(sp.row + sp.n) * kvd;
                cache.write(l, sp.seq, sp.start, &kv[r.clone()], &vv[r])?;
            }
            let att = paged_attention(&qv, nh, cache, l, &spans)?;
            let att = Tensor::from_vec(att, (n, nh * hd), &Device::Cpu)?;
            x = (x + proj(Target::O, &att)?)?;
            let h = candle_nn::ops::rms_norm(&x, &b.post_norm, self.eps())?;
            let g = proj(Target::Gate, &h)?;
            let u = proj(Target::Up, &h)?;
            let m = (candle_nn::ops::silu(&g)? * u)?;
            x = (x + proj(Target::Down, &m)?)?;
        }
        for sp in &spans {
            cache.set_len(sp.seq, sp.start + sp.n);
        }
        // Only the rows whose logits are wanted go through the head.
        let mut want: Vec<u32> = Vec::new();
        let mut ranges = Vec::with_capacity(spans.len());
        for (s, sp) in step.seqs.iter().zip(&spans) {
            let from = want.len();
            match s.logits {
                Logits::Last => want.push((sp.row + sp.n - 1) as u32),
                Logits::All => want.extend((sp.row..sp.row + sp.n).map(|r| r as u32)),
            }
            ranges.push(from..want.len());
        }
        let nw = want.len();
        let x = x.index_select(&Tensor::from_vec(want, nw, &Device::Cpu)?, 0)?;
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.eps())?;
        let logits = x.matmul(&self.lm_head.t()?)?;
        Ok(StepOutput { logits, ranges })
    }

    /// The embedding matrix (for tests and tools).
    pub fn embeddings(&self) -> &Tensor {
        &self.embed
    }
}

/// Rotate-half RoPE (Hugging Face's layout) on `[rows, heads, head_dim]` in place.
fn apply_rope(x: &mut [f32], heads: usize, hd: usize, cos: &[f32], sin: &[f32]) {
    let half = hd / 2;
    for (r, row) in x.chunks_mut(heads * hd).enumerate() {
        let c = &cos[r * half..(r + 1) * half];
        let s = &sin[r * half..(r + 1) * half];
        for h in row.chunks_mut(hd) {
            for i in 0..half {
                let (x1, x2) = (h[i], h[i + half]);
                h[i] = x1 * c[i] - x2 * s[i];
                h[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}
