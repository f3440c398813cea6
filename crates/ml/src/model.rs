//! One decoder for the Llama family, read top to bottom like the paper:
//! embeddings, `n` blocks of (RMSNorm → grouped-query attention with RoPE →
//! residual, RMSNorm → SwiGLU MLP → residual), a final RMSNorm and the head.
//!
//! Two entry points share the weights:
//! - [`Model::forward`] serves: it takes a [`Step`], the batch descriptor (which
//!   sequences, their new tokens, their adapters; positions and block tables
//!   come from the [`KvCache`]), and computes base projections once for the
//!   whole batch and low-rank products per adapter group. It runs on plain
//!   slices with [`crate::kernels`] (the weights read in place from their
//!   tensors, f32 or bf16, activations in reused scratch buffers), not candle
//!   ops: a decode step is a few rows, where per-op overhead would dominate,
//!   and every row's result must not depend on the rest of the batch.
//! - [`Model::forward_train`] (in `model_train.rs`) trains: differentiable candle ops over a padded
//!   `[batch, time]` block, LoRA weights as variables, base weights frozen.

use std::collections::BTreeMap;

use candle_core::{CpuStorage, DType, Device, IndexOp, Storage, Tensor};

use crate::MlError;
use crate::config::ModelConfig;
use crate::frozen::frozen_linear;
use crate::kernels::{self, Weights};
use crate::kv::{AttnSpan, KvCache, SeqId, paged_attention_into};
use crate::lora::{LoraAdapter, LoraPair, Target};
use crate::weights::{ModelFiles, TensorValue};

/// A frozen linear layer, Hugging Face layout: weight `(out, in)`, dense or
/// kept in its GGUF quantization.
#[derive(Clone)]
pub struct Linear {
    pub w: TensorValue,
    pub b: Option<Tensor>,
}

impl Linear {
    /// Differentiable in `x` only (the weight is frozen), for `x` of shape `[b, t, in]`.
    /// The batch is flattened to `[b·t, in]` so that one large matmul runs, not `b` small ones.
    pub(crate) fn forward_train(&self, x: &Tensor, grad: BaseGrad) -> candle_core::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let inp = *dims.last().expect("rank >= 1");
        let x2 = x.reshape(((), inp))?;
        // A serving model's bf16 weights are widened per call (see `Model::into_bf16_weights`),
        // quantized ones dequantized per call (training does not run on the quantized kernels).
        let w = self.w.tensor()?;
        let w = if w.dtype() == DType::F32 { w } else { w.to_dtype(DType::F32)? };
        let y = match grad {
            BaseGrad::Frozen => frozen_linear(&x2.contiguous()?, &w)?,
            BaseGrad::Naive => x2.matmul(&w.t()?)?,
        };
        *dims.last_mut().expect("rank >= 1") = w.dim(0)?;
        let y = y.reshape(dims)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Which training path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseGrad {
    /// The fast path: the fused ops of `crate::fused` (RMSNorm, RoPE, causal
    /// GQA attention, SwiGLU, LoRA linear, head + cross-entropy), each with a
    /// hand-written backward, and frozen linears that give only input gradients.
    Frozen,
    /// The straightforward composition of candle ops (the reference): plain
    /// matmuls, for which candle also computes (and drops) the weights' gradients.
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
    pub(crate) embed: TensorValue,
    pub(crate) blocks: Vec<Block>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: TensorValue,
    pub(crate) inv_freq: Vec<f32>,
    /// Activation buffers of serving steps, reused so that a decode step allocates
    /// (almost) nothing; one per concurrent `forward`.
    scratch: ScratchPool,
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
                w: files.weight(&format!("{p}.weight"))?,
                b: files
                    .tensors
                    .get(&format!("{p}.bias"))
                    .map(|_| files.get(&format!("{p}.bias")).cloned())
                    .transpose()?,
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
        let embed = files.weight("model.embed_tokens.weight")?;
        let lm_head = if c.tie_word_embeddings { embed.clone() } else { files.weight("lm_head.weight")? };
        let inv_freq = c.inv_freqs().into_iter().map(|f| f as f32).collect();
        Ok(Model {
            hash: files.hash,
            embed,
            blocks,
            norm: files.get("model.norm.weight")?.clone(),
            lm_head,
            inv_freq,
            config: c,
            scratch: ScratchPool::default(),
        })
    }

    /// The same model with its linear layers' weights and its head in bf16, for
    /// serving: half the bytes a decode step reads (products still accumulate
    /// in f32). Quantized weights stay as they are. Consumes the f32 model so that its weights are freed as they
    /// are converted instead of the two copies living side by side. The
    /// embedding table and the norms stay f32: the training forward gathers and
    /// scales with them, and a tied head gets its own bf16 copy (half the
    /// embedding's bytes more). Training such a model still works (the weights
    /// are widened per step), but it is meant for `forward`.
    pub fn into_bf16_weights(mut self) -> Result<Model, MlError> {
        for b in &mut self.blocks {
            for lin in [&mut b.q, &mut b.k, &mut b.v, &mut b.o, &mut b.gate, &mut b.up, &mut b.down] {
                if let TensorValue::Dense(w) = &lin.w {
                    lin.w = TensorValue::Dense(w.to_dtype(DType::BF16)?);
                }
            }
        }
        if let TensorValue::Dense(w) = &self.lm_head {
            self.lm_head = TensorValue::Dense(w.to_dtype(DType::BF16)?);
        }
        Ok(self)
    }

    /// The same model with every quantized weight dequantized to f32 (what
    /// loading a GGUF file gave before quantized weights were kept): for
    /// comparisons, and for training at full speed on a quantized base. A tied
    /// head stays one matrix with the embedding.
    pub fn into_f32_weights(mut self) -> Result<Model, MlError> {
        let dense = |w: &mut TensorValue| -> Result<(), MlError> {
            if let TensorValue::Quant(_) = w {
                *w = TensorValue::Dense(w.tensor()?);
            }
            Ok(())
        };
        for b in &mut self.blocks {
            for lin in [&mut b.q, &mut b.k, &mut b.v, &mut b.o, &mut b.gate, &mut b.up, &mut b.down] {
                dense(&mut lin.w)?;
            }
        }
        dense(&mut self.embed)?;
        if self.config.tie_word_embeddings {
            self.lm_head = self.embed.clone();
        } else {
            dense(&mut self.lm_head)?;
        }
        Ok(self)
    }

    /// Bytes of every linear layer's weight and the head's: what one decode step
    /// reads from memory at least (the embedding is only gathered).
    pub fn linear_weight_bytes(&self) -> usize {
        let layers: usize =
            self.blocks.iter().map(|b| Target::ALL.iter().map(|&t| b.linear(t).w.bytes()).sum::<usize>()).sum();
        layers + self.lm_head.bytes()
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
                // An int8 pair holds A and B transposed.
                let r = a.config.r;
                let dims = if p.scales.is_some() { ([inp, r], [r, out]) } else { ([r, inp], [out, r]) };
                if p.a.dims() != dims.0 || p.b.dims() != dims.1 {
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
        self.forward_clocked(step, cache, adapters, &mut OpClock::off())
    }

    /// [`Model::forward`], adding the time each kind of operation took to `profile`.
    pub fn forward_profiled(
        &self,
        step: &Step,
        cache: &mut KvCache,
        adapters: &[&LoraAdapter],
        profile: &mut OpProfile,
    ) -> Result<StepOutput, MlError> {
        let mut clock = OpClock::on();
        let r = self.forward_clocked(step, cache, adapters, &mut clock);
        clock.finish(profile);
        r
    }

    fn forward_clocked(
        &self,
        step: &Step,
        cache: &mut KvCache,
        adapters: &[&LoraAdapter],
        clock: &mut OpClock,
    ) -> Result<StepOutput, MlError> {
        if rayon::current_thread_index().is_none() {
            // Called from outside the pool (an engine's or a client's thread): the
            // whole step runs on a pool thread, so its ~200 parallel products
            // split work with the other threads directly instead of each waking
            // the pool and sleeping on it (a futex round trip per product).
            return rayon::scope(|_| self.forward_clocked(step, cache, adapters, clock));
        }
        // The pool's other threads stay with this step between its regions.
        kernels::team::with_team(|| {
            let (mut s, spans) = self.layers(step, cache, adapters, clock)?;
            let out = self.head(step, &spans, &mut s, clock);
            self.scratch.put(s);
            out
        })
    }

    /// Mean-pooled final hidden states of `tokens` (after the final norm, before
    /// the head), one vector of `hidden_size` values: a text embedding from the
    /// base model for dense retrieval. Pure function of the weights and tokens.
    pub fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, MlError> {
        let h = self.config.hidden_size;
        let step = Step { seqs: vec![SeqStep { seq: 0, tokens, adapter: None, logits: Logits::Last }] };
        let mut cache = KvCache::for_tokens(&self.config, tokens.len(), 16);
        let (mut s, _) = self.layers(&step, &mut cache, &[], &mut OpClock::off())?;
        let n = tokens.len();
        let (x, hn) = (&s.x[..n * h], &mut s.hn[..n * h]);
        with_f32(&self.norm, |w| {
            kernels::rms_norm_rows(x, w, self.eps(), hn);
            Ok(())
        })?;
        let mut mean = vec![0.0f32; h];
        for row in hn.chunks_exact(h) {
            kernels::add_in_place(&mut mean, row);
        }
        let scale = 1.0 / n as f32;
        mean.iter_mut().for_each(|v| *v *= scale);
        self.scratch.put(s);
        Ok(mean)
    }

    /// Embedding and every decoder layer over the step's rows: the final hidden
    /// states (before the final norm) in the returned scratch's `x`.
    fn layers(
        &self,
        step: &Step,
        cache: &mut KvCache,
        adapters: &[&LoraAdapter],
        clock: &mut OpClock,
    ) -> Result<(Scratch, Vec<AttnSpan>), MlError> {
        let c = &self.config;
        let StepLayout { spans, positions, tokens } = self.plan_step(step, cache, adapters)?;
        reserve_all(cache, &spans)?;
        let groups = adapter_groups(step, &spans);

        let n = tokens.len();
        let (cos, sin) = self.rope_tables(&positions);
        let (h, qd, kvd) = (c.hidden_size, c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim);
        let mut s = self.scratch.take();
        s.size(n, h, qd, kvd, c.intermediate_size);
        let x = &mut s.x;
        match &self.embed {
            TensorValue::Dense(e) => with_f32(e, |e| {
                for (row, &t) in x.chunks_exact_mut(h).zip(&tokens) {
                    row.copy_from_slice(&e[t as usize * h..(t as usize + 1) * h]);
                }
                Ok(())
            })?,
            TensorValue::Quant(e) => {
                for (row, &t) in x.chunks_exact_mut(h).zip(&tokens) {
                    e.dequantize_row(t as usize, row)?;
                }
            }
        }
        clock.lap(Op::Other);
        let ctx = StepRows { n, spans: &spans, cos: &cos, sin: &sin, groups: &groups, adapters };
        for (l, b) in self.blocks.iter().enumerate() {
            self.block_forward(l, b, &ctx, &mut s, cache, clock)?;
        }
        clock.lap(Op::Other);
        for sp in &spans {
            cache.set_len(sp.seq, sp.start + sp.n);
        }
        Ok((s, spans))
    }

    /// Check the step against the model and the cache, and lay its sequences
    /// out as rows: each sequence's span, every row's position and token.
    fn plan_step(&self, step: &Step, cache: &KvCache, adapters: &[&LoraAdapter]) -> Result<StepLayout, MlError> {
        let c = &self.config;
        if step.seqs.is_empty() {
            return Err(MlError::Config("a step needs at least one sequence".into()));
        }
        for a in adapters {
            self.check_adapter(a)?;
        }
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
        Ok(StepLayout { spans, positions, tokens })
    }

    /// One decoder layer over every row of the step, in place on `s.x`; writes
    /// the layer's keys and values into the cache.
    fn block_forward(
        &self,
        l: usize,
        b: &Block,
        ctx: &StepRows,
        s: &mut Scratch,
        cache: &mut KvCache,
        clock: &mut OpClock,
    ) -> Result<(), MlError> {
        let c = &self.config;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        let kvd = nkv * hd;
        let (n, spans, eps) = (ctx.n, ctx.spans, self.eps());
        let Scratch { x, hn, q, k, v, att, o, g, u } = s;
        let pairs: Vec<(&BTreeMap<Target, LoraPair>, f32, &[u32])> = ctx
            .groups
            .iter()
            .map(|(a, rows)| (&ctx.adapters[*a].layers[l], ctx.adapters[*a].config.scale() as f32, rows.as_slice()))
            .collect();
        // y = x Wᵀ (+ b), then the low-rank products of every adapter group
        // on the group's rows (x Aᵀ then · Bᵀ, per row, f32, a fixed order).
        // Targets that read the same input (q, k, v; gate, up) go through one
        // call, which quantizes the input once for quantized weights.
        let proj = |ts: &[Target], xin: &[f32], ys: &mut [&mut [f32]], clock: &mut OpClock| {
            let inp = xin.len() / n;
            let ws: Vec<&TensorValue> = ts.iter().map(|&t| &b.linear(t).w).collect();
            // The adapters' products run in the base products' parallel region
            // (their own buffers; added after the base and its bias, the order
            // they always had), each after a base task that prefetched its
            // adapter weights while it multiplied (on a quantized base).
            lora_beside(&pairs, ts, xin, inp, ys, |ys, reads, extra, run_extra| {
                project_many_beside(&ws, xin, inp, ys, reads, extra, run_extra)?;
                for (&t, y) in ts.iter().zip(ys.iter_mut()) {
                    if let Some(bias) = &b.linear(t).b {
                        with_f32(bias, |bv| {
                            for row in y.chunks_exact_mut(bv.len()) {
                                kernels::add_in_place(row, bv);
                            }
                            Ok(())
                        })?;
                    }
                }
                clock.lap(Op::Matmul);
                Ok(())
            })?;
            clock.lap(Op::Lora);
            Ok::<(), MlError>(())
        };
        with_f32(&b.input_norm, |w| {
            kernels::rms_norm_rows(x, w, eps, hn);
            Ok(())
        })?;
        clock.lap(Op::Norm);
        proj(&[Target::Q, Target::K, Target::V], hn, &mut [&mut q[..], &mut k[..], &mut v[..]], clock)?;
        apply_rope(q, nh, hd, ctx.cos, ctx.sin);
        apply_rope(k, nkv, hd, ctx.cos, ctx.sin);
        clock.lap(Op::Rope);
        for sp in spans {
            let r = sp.row * kvd..(sp.row + sp.n) * kvd;
            cache.write(l, sp.seq, sp.start, &k[r.clone()], &v[r])?;
        }
        clock.lap(Op::Other);
        paged_attention_into(q, nh, cache, l, spans, att)?;
        clock.lap(Op::Attention);
        proj(&[Target::O], att, &mut [&mut o[..]], clock)?;
        kernels::add_in_place(x, o);
        clock.lap(Op::Other);
        with_f32(&b.post_norm, |w| {
            kernels::rms_norm_rows(x, w, eps, hn);
            Ok(())
        })?;
        clock.lap(Op::Norm);
        proj(&[Target::Gate, Target::Up], hn, &mut [&mut g[..], &mut u[..]], clock)?;
        kernels::silu_mul_in_place(g, u);
        clock.lap(Op::Other);
        proj(&[Target::Down], g, &mut [&mut o[..]], clock)?;
        kernels::add_in_place(x, o);
        Ok(())
    }

    /// The final norm and the head, over only the rows whose logits are wanted.
    fn head(
        &self,
        step: &Step,
        spans: &[AttnSpan],
        s: &mut Scratch,
        clock: &mut OpClock,
    ) -> Result<StepOutput, MlError> {
        let c = &self.config;
        let h = c.hidden_size;
        let (x, hn) = (&mut s.x, &mut s.hn);
        let mut ranges = Vec::with_capacity(spans.len());
        let mut nw = 0;
        for (st, sp) in step.seqs.iter().zip(spans) {
            let from = nw;
            let (r0, r1) = match st.logits {
                Logits::Last => (sp.row + sp.n - 1, sp.row + sp.n),
                Logits::All => (sp.row, sp.row + sp.n),
            };
            // Rows only move down (r0 >= nw), so the gather can run in place.
            x.copy_within(r0 * h..r1 * h, nw * h);
            nw += r1 - r0;
            ranges.push(from..nw);
        }
        with_f32(&self.norm, |w| {
            kernels::rms_norm_rows(&x[..nw * h], w, self.eps(), &mut hn[..nw * h]);
            Ok(())
        })?;
        clock.lap(Op::Norm);
        let mut logits = vec![0.0f32; nw * c.vocab_size];
        project(&self.lm_head, &hn[..nw * h], h, &mut logits)?;
        clock.lap(Op::Head);
        let logits = Tensor::from_vec(logits, (nw, c.vocab_size), &Device::Cpu)?;
        Ok(StepOutput { logits, ranges })
    }

    /// The embedding matrix in f32 (dequantized when it is quantized; for tests and tools).
    pub fn embeddings(&self) -> Result<Tensor, MlError> {
        Ok(self.embed.tensor()?)
    }

    /// How a serving cache should hold adapters for this base when not told:
    /// int8 on a quantized base (its own rounding moves the logits more than
    /// int8 adapters do: test `held_adapters_serve_batch_invariantly_and_close_to_f32`,
    /// and on SmolLM2-135M `held_adapters_on_a_real_model`), f32 on a dense one.
    pub fn default_adapter_dtype(&self) -> crate::AdapterDtype {
        if self.quantized_formats().is_empty() { crate::AdapterDtype::F32 } else { crate::AdapterDtype::I8 }
    }

    /// The block formats of the weights kept quantized, sorted (empty for a dense model).
    pub fn quantized_formats(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .blocks
            .iter()
            .flat_map(|b| Target::ALL.iter().map(|&t| &b.linear(t).w))
            .chain([&self.embed, &self.lm_head])
            .filter_map(|w| match w {
                TensorValue::Quant(q) => Some(q.quant_type().name()),
                TensorValue::Dense(_) => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A step's sequences laid out as rows (see [`Model::plan_step`]).
struct StepLayout {
    /// Each sequence's rows and cache positions.
    spans: Vec<AttnSpan>,
    /// Every row's position in its sequence.
    positions: Vec<usize>,
    /// Every row's token.
    tokens: Vec<u32>,
}

/// The rows of one serving step and what every layer reads about them.
struct StepRows<'a> {
    /// Rows (new tokens) in the step.
    n: usize,
    spans: &'a [AttnSpan],
    /// RoPE tables of the rows' positions.
    cos: &'a [f32],
    sin: &'a [f32],
    /// Each adapter's rows (see [`adapter_groups`]).
    groups: &'a [(usize, Vec<u32>)],
    adapters: &'a [&'a LoraAdapter],
}

/// Reserve cache space for every span, all or nothing: on a failure the
/// sequences reserved so far are put back as they were.
fn reserve_all(cache: &mut KvCache, spans: &[AttnSpan]) -> Result<(), MlError> {
    let mut reserved = Vec::new();
    for sp in spans {
        let existed = cache.contains(sp.seq);
        if let Err(e) = cache.reserve(sp.seq, sp.start + sp.n) {
            for (id, len, existed) in reserved {
                if existed { cache.truncate(id, len) } else { cache.free_seq(id) }
            }
            return Err(e);
        }
        reserved.push((sp.seq, sp.start, existed));
    }
    Ok(())
}

/// Adapter groups: the rows of each adapter, gathered once per step, so a
/// batch pays one low-rank product per adapter, not per sequence.
fn adapter_groups(step: &Step, spans: &[AttnSpan]) -> Vec<(usize, Vec<u32>)> {
    let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
    for (s, sp) in step.seqs.iter().zip(spans) {
        if let Some(a) = s.adapter {
            let rows = (sp.row as u32)..((sp.row + sp.n) as u32);
            match groups.iter_mut().find(|g| g.0 == a) {
                Some(g) => g.1.extend(rows),
                None => groups.push((a, rows.collect())),
            }
        }
    }
    groups
}

/// The activations of one serving step, `[rows, width]` each.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    hn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
}

impl Scratch {
    /// Every buffer at its length for `n` rows (kept capacity, no zeroing needed:
    /// each is written in full before it is read).
    fn size(&mut self, n: usize, h: usize, qd: usize, kvd: usize, inter: usize) {
        self.x.resize(n * h, 0.0);
        self.hn.resize(n * h, 0.0);
        self.q.resize(n * qd, 0.0);
        self.k.resize(n * kvd, 0.0);
        self.v.resize(n * kvd, 0.0);
        self.att.resize(n * qd, 0.0);
        self.o.resize(n * h, 0.0);
        self.g.resize(n * inter, 0.0);
        self.u.resize(n * inter, 0.0);
    }
}

/// Scratch buffers shared by the clones of a model; a clone starts with none.
#[derive(Default)]
struct ScratchPool(std::sync::Mutex<Vec<Scratch>>);

impl Clone for ScratchPool {
    fn clone(&self) -> Self {
        ScratchPool::default()
    }
}

impl ScratchPool {
    fn take(&self) -> Scratch {
        self.0.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default()
    }

    fn put(&self, s: Scratch) {
        if let Ok(mut v) = self.0.lock() {
            // Keep as many as forwards ran at once, never more than a few.
            if v.len() < 4 {
                v.push(s);
            }
        }
    }
}

/// `y = x·Wᵀ` for `x` of rows of `inp`, with the kernel of `w`'s storage.
fn project(w: &TensorValue, x: &[f32], inp: usize, y: &mut [f32]) -> Result<(), MlError> {
    match w {
        TensorValue::Dense(t) => with_weights(t, |w| kernels::linear(x, w, inp, y)),
        TensorValue::Quant(q) => kernels::linear_q(x, q, y),
    }
}

/// [`project`] for several weights of one input, with `extra` more tasks
/// (`run_extra(0..extra)`): quantized weights in one call (one quantization
/// of the input, one parallel region with the extra tasks in it), the same
/// bits; dense weights one by one, the extra tasks after them.
fn project_many_beside(
    ws: &[&TensorValue],
    x: &[f32],
    inp: usize,
    ys: &mut [&mut [f32]],
    reads: &[&[&[u8]]],
    extra: usize,
    run_extra: &(dyn Fn(usize) + Sync),
) -> Result<(), MlError> {
    let quant: Vec<&kernels::QMatrix> = ws
        .iter()
        .filter_map(|w| match w {
            TensorValue::Quant(q) => Some(&**q),
            TensorValue::Dense(_) => None,
        })
        .collect();
    if quant.len() == ws.len() {
        return kernels::linear_q_many_warming(kernels::QuantIsa::detect(), x, &quant, ys, reads, extra, run_extra);
    }
    for (w, y) in ws.iter().zip(ys.iter_mut()) {
        project(w, x, inp, y)?;
    }
    kernels::team::for_each(extra, run_extra);
    Ok(())
}

/// Run `f` on a contiguous CPU tensor's weights in place (f32 or bf16), without copying.
fn with_weights<R>(t: &Tensor, f: impl FnOnce(Weights) -> Result<R, MlError>) -> Result<R, MlError> {
    let (st, l) = t.storage_and_layout();
    let (a, b) = l.contiguous_offsets().ok_or_else(|| MlError::Tensor("a weight tensor is not contiguous".into()))?;
    match &*st {
        Storage::Cpu(CpuStorage::F32(v)) => f(Weights::F32(&v[a..b])),
        Storage::Cpu(CpuStorage::BF16(v)) => f(Weights::Bf16(&v[a..b])),
        _ => Err(MlError::Unsupported(format!(
            "serving from {:?} weights on this device (f32 or bf16 on the CPU)",
            t.dtype()
        ))),
    }
}

/// An adapter group's A and B for the kernels: dense (f32 or bf16), or int8
/// values with their rows' scales.
#[derive(Clone, Copy)]
enum LoraMats<'a> {
    Dense(kernels::Weights<'a>, kernels::Weights<'a>),
    /// A and B transposed, (in, r) and (r, out), with the scales of A's and B's rows.
    I8 {
        a: &'a [i8],
        sa: &'a [f32],
        b: &'a [i8],
        sb: &'a [f32],
    },
}

impl<'a> LoraMats<'a> {
    /// The memory the products read: A and B (and their scales).
    fn bytes(&self) -> [&'a [u8]; 4] {
        match *self {
            LoraMats::Dense(a, b) => [a.bytes(), b.bytes(), &[], &[]],
            LoraMats::I8 { a, sa, b, sb } => {
                [kernels::plain_bytes(a), kernels::plain_bytes(sa), kernels::plain_bytes(b), kernels::plain_bytes(sb)]
            }
        }
    }

    fn a_len(&self) -> usize {
        match self {
            LoraMats::Dense(a, _) => a.len(),
            LoraMats::I8 { a, .. } => a.len(),
        }
    }
    fn b_len(&self) -> usize {
        match self {
            LoraMats::Dense(_, b) => b.len(),
            LoraMats::I8 { b, .. } => b.len(),
        }
    }
    /// `t = x·Aᵀ` (`[m, r]`), then `z = t·Bᵀ` (`[m, out]`).
    fn products(&self, x: &[f32], inp: usize, t: &mut [f32], z: &mut [f32]) -> Result<(), MlError> {
        let r = self.a_len() / inp;
        match *self {
            LoraMats::Dense(a, b) => kernels::linear(x, a, inp, t).and_then(|()| kernels::linear(t, b, r, z)),
            LoraMats::I8 { a, sa, b, sb } => {
                kernels::linear_i8_t(x, a, sa, inp, t).and_then(|()| kernels::linear_i8_t(t, b, sb, r, z))
            }
        }
    }
}

/// Input rows an adapter task takes at most: the kernels' own row block, so
/// splitting a group's rows into tasks reads no weight more often.
const LORA_TASK_ROWS: usize = 4;

/// One task of the low-rank products: an adapter's A and B for one target,
/// its scale, up to [`LORA_TASK_ROWS`] of its rows, where they go (target
/// index, row), and its own buffers (the gathered rows, `x Aᵀ`, `(x Aᵀ) Bᵀ`).
struct LoraTask<'a> {
    mats: LoraMats<'a>,
    scale: f32,
    target: usize,
    rows: Vec<usize>,
    out: usize,
    buf: std::sync::Mutex<[Vec<f32>; 3]>,
}

/// Every adapter group's low-rank products on its rows for the targets `ts`
/// that read the input `xin` (q, k and v; gate and up; o; down), into `ys`:
/// `y_row += scale · (x_row Aᵀ) Bᵀ`, added after `base(ys, tasks, run_task)`
/// computed the base products (and their bias) with the adapter tasks in its
/// parallel region. The rows of a group go through the kernels together
/// (`linear`, or `linear_i8_t` for int8 adapters, whose every output is a
/// fixed sequence over its own row, so a row's result never depends on the
/// batch, the group or the task), so A and B are read once per block of
/// rows, not once per row. The tasks are (target, group, block of rows), so
/// one adapter's products spread over the team too. A step with many
/// distinct adapters reads each one's A and B (4.9 MB per int8 adapter at
/// r 16 on the seven targets of SmolLM2-135M) for one row or a few: `base`
/// gets the memory each task reads, and on a quantized base every adapter
/// task runs right after a base task that prefetched its weights while it
/// multiplied, on the same thread (`kernels::linear_q_many_warming`), so
/// those loads overlap the base's arithmetic instead of stalling the task.
fn lora_beside(
    pairs: &[(&BTreeMap<Target, LoraPair>, f32, &[u32])],
    ts: &[Target],
    xin: &[f32],
    inp: usize,
    ys: &mut [&mut [f32]],
    base: impl FnOnce(&mut [&mut [f32]], &[&[&[u8]]], usize, &(dyn Fn(usize) + Sync)) -> Result<(), MlError>,
) -> Result<(), MlError> {
    let n = xin.len() / inp.max(1);
    let mut held = Vec::new();
    for (ti, (&t, y)) in ts.iter().zip(ys.iter()).enumerate() {
        // No rows (n = 0): no adapter work.
        let Some(out) = y.len().checked_div(n) else { break };
        for (m, scale, rows) in pairs {
            if let Some(p) = m.get(&t) {
                held.push((
                    p.a.storage_and_layout(),
                    p.b.storage_and_layout(),
                    p.scales.as_deref(),
                    *scale,
                    ti,
                    out,
                    *rows,
                ));
            }
        }
    }
    let mut taken = vec![vec![false; n]; ts.len()];
    let mut tasks: Vec<LoraTask> = Vec::new();
    for ((sa, la), (sb, lb), scales, scale, ti, out, rows) in &held {
        let mats = match scales {
            None => LoraMats::Dense(cpu_weights(sa, la)?, cpu_weights(sb, lb)?),
            Some(sc) => {
                LoraMats::I8 { a: cpu_i8(sa, la)?, sa: sc.a.as_slice(), b: cpu_i8(sb, lb)?, sb: sc.b.as_slice() }
            }
        };
        let (al, bl, out) = (mats.a_len(), mats.b_len(), *out);
        let r = al / inp;
        let scales_fit = scales.is_none_or(|sc| sc.a.len() == r && sc.b.len() == out);
        if r == 0 || al != r * inp || bl != out * r || !scales_fit {
            return Err(MlError::Tensor(format!("adapter of {al} and {bl} values for {inp} inputs and {out} outputs")));
        }
        for block in rows.chunks(LORA_TASK_ROWS) {
            let mut rs = Vec::with_capacity(block.len());
            for &row in block {
                let row = row as usize;
                match taken[*ti].get_mut(row) {
                    Some(t) if !*t => *t = true,
                    _ => {
                        return Err(MlError::Tensor(format!("adapter row {row} out of the step or in two groups")));
                    }
                }
                rs.push(row);
            }
            let buf = std::sync::Mutex::new(Default::default());
            tasks.push(LoraTask { mats, scale: *scale, target: *ti, rows: rs, out, buf });
        }
    }
    let failed = std::sync::Mutex::new(None);
    let run = |i: usize| {
        let task = &tasks[i];
        let mut buf = task.buf.lock().unwrap_or_else(|e| e.into_inner());
        let [xg, tg, zg] = &mut *buf;
        let (m, r, out) = (task.rows.len(), task.mats.a_len() / inp, task.out);
        let x: &[f32] = if m == 1 {
            &xin[task.rows[0] * inp..(task.rows[0] + 1) * inp]
        } else {
            xg.clear();
            task.rows.iter().for_each(|&row| xg.extend_from_slice(&xin[row * inp..(row + 1) * inp]));
            xg
        };
        tg.resize(m * r, 0.0);
        zg.resize(m * out, 0.0);
        if let Err(e) = task.mats.products(x, inp, tg, zg) {
            failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
        }
    };
    let bytes: Vec<[&[u8]; 4]> = tasks.iter().map(|t| t.mats.bytes()).collect();
    let reads: Vec<&[&[u8]]> = bytes.iter().map(|b| &b[..]).collect();
    base(ys, &reads, tasks.len(), &run)?;
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    for task in &mut tasks {
        let [_, _, zg] = task.buf.get_mut().unwrap_or_else(|e| e.into_inner());
        for (&row, z) in task.rows.iter().zip(zg.chunks_exact(task.out)) {
            kernels::axpy(task.scale, z, &mut ys[task.target][row * task.out..(row + 1) * task.out]);
        }
    }
    Ok(())
}

/// An int8 adapter's values (U8 storage holding their bits), contiguous, on the CPU.
fn cpu_i8<'a>(st: &'a Storage, l: &candle_core::Layout) -> Result<&'a [i8], MlError> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| MlError::Tensor("a tensor is not contiguous".into()))?;
    match st {
        Storage::Cpu(CpuStorage::U8(v)) => {
            let v = &v[a..b];
            // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid in both.
            Ok(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<i8>(), v.len()) })
        }
        other => {
            Err(MlError::Unsupported(format!("{:?} adapter weights where int8 (U8) values are needed", other.dtype())))
        }
    }
}

/// A contiguous f32 CPU tensor's values, from its storage and layout (held by the caller).
fn cpu_f32<'a>(st: &'a Storage, l: &candle_core::Layout) -> Result<&'a [f32], MlError> {
    match cpu_weights(st, l)? {
        kernels::Weights::F32(v) => Ok(v),
        kernels::Weights::Bf16(_) => Err(MlError::Unsupported("BF16 tensor where f32 on the CPU is needed".into())),
    }
}

/// An adapter's weights (f32 or bf16, contiguous, on the CPU) for the kernels.
fn cpu_weights<'a>(st: &'a Storage, l: &candle_core::Layout) -> Result<kernels::Weights<'a>, MlError> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| MlError::Tensor("a tensor is not contiguous".into()))?;
    match st {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(kernels::Weights::F32(&v[a..b])),
        Storage::Cpu(CpuStorage::BF16(v)) => Ok(kernels::Weights::Bf16(&v[a..b])),
        other => Err(MlError::Unsupported(format!(
            "{:?} adapter weights where f32 or bf16 on the CPU are needed",
            other.dtype()
        ))),
    }
}

fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R, MlError>) -> Result<R, MlError> {
    let (st, l) = t.storage_and_layout();
    f(cpu_f32(&st, l)?)
}

/// Where a serving step's time went, summed over the steps it was passed to
/// ([`Model::forward_profiled`]): a profile shows which kernel stands between a
/// figure and the memory-bandwidth bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpProfile {
    /// Steps profiled.
    pub steps: usize,
    /// Base projections (q, k, v, o, gate, up, down), seconds.
    pub matmul: f64,
    /// The low-rank adapter products.
    pub lora: f64,
    /// Attention over the KV cache (scores, softmax, weighted values).
    pub attention: f64,
    /// RMSNorms.
    pub norm: f64,
    /// Rotary embeddings.
    pub rope: f64,
    /// The final projection to the vocabulary.
    pub head: f64,
    /// Everything else: embedding lookup, KV writes, activations, residuals,
    /// copies between tensors and buffers, bookkeeping.
    pub other: f64,
}

impl OpProfile {
    /// Seconds in all.
    pub fn total(&self) -> f64 {
        self.matmul + self.lora + self.attention + self.norm + self.rope + self.head + self.other
    }

    /// (name, seconds) of every bucket, in a fixed order.
    pub fn buckets(&self) -> [(&'static str, f64); 7] {
        [
            ("matmul", self.matmul),
            ("attention", self.attention),
            ("norm", self.norm),
            ("rope", self.rope),
            ("lora", self.lora),
            ("head", self.head),
            ("other", self.other),
        ]
    }
}

#[derive(Clone, Copy)]
enum Op {
    Matmul,
    Lora,
    Attention,
    Norm,
    Rope,
    Head,
    Other,
}

/// Laps of a step's clock; off (no clock reads) unless profiling.
struct OpClock {
    last: Option<std::time::Instant>,
    acc: OpProfile,
}

impl OpClock {
    fn off() -> OpClock {
        OpClock { last: None, acc: OpProfile::default() }
    }

    fn on() -> OpClock {
        OpClock { last: Some(std::time::Instant::now()), acc: OpProfile::default() }
    }

    /// Charge the time since the previous lap to `op`.
    #[inline]
    fn lap(&mut self, op: Op) {
        let Some(last) = self.last else { return };
        let now = std::time::Instant::now();
        let dt = (now - last).as_secs_f64();
        self.last = Some(now);
        let a = &mut self.acc;
        *match op {
            Op::Matmul => &mut a.matmul,
            Op::Lora => &mut a.lora,
            Op::Attention => &mut a.attention,
            Op::Norm => &mut a.norm,
            Op::Rope => &mut a.rope,
            Op::Head => &mut a.head,
            Op::Other => &mut a.other,
        } += dt;
    }

    fn finish(mut self, into: &mut OpProfile) {
        self.lap(Op::Other);
        let a = &self.acc;
        into.steps += 1;
        into.matmul += a.matmul;
        into.lora += a.lora;
        into.attention += a.attention;
        into.norm += a.norm;
        into.rope += a.rope;
        into.head += a.head;
        into.other += a.other;
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
