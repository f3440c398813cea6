//! One whole transformer block of the training forward as a single candle op:
//!
//! ```text
//! h₁ = norm₁(x);  qkv = [q | k | v](h₁) with RoPE;  a = attention(qkv)
//! x₁ = x + o(a);  h₂ = norm₂(x₁);  gu = [gate | up](h₂);  y = x₁ + down(swiglu(gu))
//! ```
//!
//! with every linear layer's LoRA pair (if any) read from one flat variable.
//!
//! Op by op, candle's autograd gives each intermediate its own gradient
//! tensor: a zero-filled buffer per node plus an add into it, and a sum
//! wherever an activation feeds several ops (h₁ feeds q, k, v and their LoRA
//! inputs; x feeds the norm and the residual), each an elementwise pass on
//! candle's own thread pool competing with rayon's gemm threads for the same
//! cores. Here the backward is written out: the residual stream's gradient is
//! one buffer that the norms' backward passes add into, the projections add
//! their parts' input gradients inside gemm ([`super::projection`]), and the
//! residual adds of the forward are gemm accumulations onto a copy of the
//! stream. The graph holds two nodes per block (this op and the flattening of
//! its LoRA pairs), so autograd's bookkeeping is negligible.
//!
//! The forward keeps h₁, qkv, a, x₁, h₂, gu and swiglu(gu) (what the op-by-op
//! graph kept, minus the copies) for the backward. The first block's input
//! comes from the embedding, which has no gradient: its q/k/v input gradient
//! and norm backward are skipped.
//!
//! Every step is per row, or a gemm (fixed summation order per element), or
//! attention's fixed-order tasks: results do not depend on the thread count.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};

use super::attention::{self, Dims};
use super::projection::{Proj, SeqSplit};
use super::{cpu_f32, norm, swiglu, tensor, with_f32};

/// What the backward needs from the forward.
struct Saved {
    h1: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    lse: Vec<f32>,
    x1: Vec<f32>,
    h2: Vec<f32>,
    gu: Vec<f32>,
    act: Vec<f32>,
}

/// The block's frozen parts and shapes.
pub(crate) struct Block {
    pub norm1: Vec<f32>,
    pub norm2: Vec<f32>,
    pub eps: f32,
    pub qkv: Proj,
    pub o: Proj,
    pub gu: Proj,
    pub down: Proj,
    pub dims: Dims,
    pub inter: usize,
    /// Length of the flat LoRA buffer (0: no LoRA).
    pub lora_len: usize,
    /// Where the backward leaves each sequence's own LoRA gradient, and this
    /// block's layer (`None`: only the batch's gradient, as training needs).
    per_seq: Option<(Arc<PerSequence>, usize)>,
    saved: Mutex<Option<Saved>>,
}

/// Each sequence's own LoRA gradients of a batch's backward, by layer: layer
/// `l`'s buffer holds sequence `q`'s flat block gradient at `q × lora_len`.
/// The batch's loss must be the sum of the sequences' losses (rows of different
/// sequences never meet in a block), so each is that sequence's gradient.
#[derive(Default)]
pub(crate) struct PerSequence {
    pub layers: Mutex<Vec<Option<Vec<f32>>>>,
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("block: poisoned state".into())
}

/// A block's backward: dx (when asked for) and the LoRA gradients (when it has LoRA).
type BlockGrads = (Option<Vec<f32>>, Option<Vec<f32>>);

impl Block {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        norm1: Vec<f32>,
        norm2: Vec<f32>,
        eps: f32,
        [qkv, o, gu, down]: [Proj; 4],
        dims: Dims,
        inter: usize,
    ) -> Result<Block> {
        dims.check()?;
        let hidden = norm1.len();
        let fits = norm2.len() == hidden
            && qkv.k == hidden
            && qkv.n == dims.row()
            && o.k == dims.nh * dims.d
            && o.n == hidden
            && gu.k == hidden
            && gu.n == 2 * inter
            && down.k == inter
            && down.n == hidden;
        if !fits {
            bail!("block: the projections do not fit hidden {hidden}, intermediate {inter} and the attention heads");
        }
        let lora_len = qkv.lora_len + o.lora_len + gu.lora_len + down.lora_len;
        Ok(Block { norm1, norm2, eps, qkv, o, gu, down, dims, inter, lora_len, per_seq: None, saved: Mutex::new(None) })
    }

    /// Leave each sequence's LoRA gradient in `into` as layer `layer` (see [`PerSequence`]).
    pub fn per_sequence(mut self, into: Arc<PerSequence>, layer: usize) -> Block {
        self.per_seq = Some((into, layer));
        self
    }

    fn rows(&self) -> usize {
        self.dims.b * self.dims.t
    }

    fn scale(&self) -> f32 {
        1.0 / (self.dims.d as f32).sqrt()
    }

    fn forward(&self, x: &[f32], lora: Option<&[f32]>) -> Result<Vec<f32>> {
        let (m, hidden, t) = (self.rows(), self.norm1.len(), self.dims.t);
        if x.len() != m * hidden {
            bail!("block: {} inputs do not fit {m} rows of {hidden}", x.len());
        }
        if lora.map_or(0, |l| l.len()) != self.lora_len {
            bail!("block: {} LoRA values, expected {}", lora.map_or(0, |l| l.len()), self.lora_len);
        }
        let mut h1 = vec![0f32; m * hidden];
        norm::forward(x, &self.norm1, self.eps, &mut h1);
        let mut qkv = vec![0f32; m * self.qkv.n];
        self.qkv.forward(&h1, lora, t, &mut qkv, false)?;
        let (att, lse) = attention::forward(self.dims, &qkv, self.scale())?;
        let mut x1 = x.to_vec();
        self.o.forward(&att, lora, t, &mut x1, true)?;
        let mut h2 = vec![0f32; m * hidden];
        norm::forward(&x1, &self.norm2, self.eps, &mut h2);
        let mut gu = vec![0f32; m * 2 * self.inter];
        self.gu.forward(&h2, lora, t, &mut gu, false)?;
        let mut act = vec![0f32; m * self.inter];
        swiglu::packed_forward(&gu, self.inter, &mut act);
        let mut y = x1.clone();
        self.down.forward(&act, lora, t, &mut y, true)?;
        *self.saved.lock().map_err(|_| poisoned())? = Some(Saved { h1, qkv, att, lse, x1, h2, gu, act });
        Ok(y)
    }

    /// `(dx, dlora)` for the output gradient `dy`; `dx` only when `want_dx`.
    fn backward(&self, x: &[f32], lora: Option<&[f32]>, dy: &[f32], want_dx: bool) -> Result<BlockGrads> {
        let guard = self.saved.lock().map_err(|_| poisoned())?;
        let Some(s) = guard.as_ref() else { bail!("block backward without a forward") };
        let (m, hidden, t) = (self.rows(), self.norm1.len(), self.dims.t);
        if dy.len() != m * hidden || x.len() != m * hidden {
            bail!("block backward: {} gradients do not fit {m} rows of {hidden}", dy.len());
        }
        let split = match &self.per_seq {
            Some(_) => SeqSplit { seqs: self.dims.b, stride: self.lora_len },
            None => SeqSplit::WHOLE,
        };
        let mut dlora = lora.map(|l| vec![0f32; l.len() * split.seqs]);
        // The gradient of x₁: the residual's share, then the MLP's.
        let mut dx1 = dy.to_vec();
        let mut dact = vec![0f32; m * self.inter];
        let mut g = dy.to_vec();
        self.down.backward(&s.act, lora, t, &mut g, Some(&mut dact), dlora.as_deref_mut(), split)?;
        let mut dgu = vec![0f32; m * 2 * self.inter];
        swiglu::packed_backward(&s.gu, self.inter, &dact, &mut dgu);
        drop(dact);
        let mut dh2 = vec![0f32; m * hidden];
        self.gu.backward(&s.h2, lora, t, &mut dgu, Some(&mut dh2), dlora.as_deref_mut(), split)?;
        drop(dgu);
        norm::backward(&s.x1, &self.norm2, self.eps, &dh2, &mut dx1, true, false);
        // Attention: dx₁ is also the o projection's output gradient.
        let mut datt = vec![0f32; m * self.dims.nh * self.dims.d];
        g.copy_from_slice(&dx1);
        self.o.backward(&s.att, lora, t, &mut g, Some(&mut datt), dlora.as_deref_mut(), split)?;
        let mut dqkv = attention::backward(self.dims, &s.qkv, &s.att, &s.lse, &datt, self.scale())?;
        drop(datt);
        let dx = if want_dx {
            let mut dh1 = dh2;
            dh1.fill(0.0);
            self.qkv.backward(&s.h1, lora, t, &mut dqkv, Some(&mut dh1), dlora.as_deref_mut(), split)?;
            norm::backward(x, &self.norm1, self.eps, &dh1, &mut dx1, true, false);
            Some(dx1)
        } else {
            self.qkv.backward(&s.h1, lora, t, &mut dqkv, None, dlora.as_deref_mut(), split)?;
            None
        };
        let dlora = match (&self.per_seq, dlora) {
            (Some((into, layer)), Some(each)) => {
                // The batch's gradient (for autograd) is the sequences' sum.
                let mut sum = vec![0f32; self.lora_len];
                for q in each.chunks_exact(self.lora_len.max(1)) {
                    sum.iter_mut().zip(q).for_each(|(s, g)| *s += g);
                }
                let mut layers = into.layers.lock().map_err(|_| poisoned())?;
                if layers.len() <= *layer {
                    layers.resize(*layer + 1, None);
                }
                layers[*layer] = Some(each);
                Some(sum)
            }
            (_, d) => d,
        };
        Ok((dx, dlora))
    }

    fn out_shape(&self, l: &Layout) -> Result<Shape> {
        let hidden = self.norm1.len();
        if l.dims() != [self.dims.b, self.dims.t, hidden] {
            bail!("block: input {:?} is not [{}, {}, {hidden}]", l.dims(), self.dims.b, self.dims.t);
        }
        Ok(l.shape().clone())
    }
}

/// The op without LoRA (gradient for the input only).
pub(crate) struct BlockOp(pub Block);

/// The op with the block's LoRA pairs as a flat second input.
pub(crate) struct BlockLoraOp(pub Block);

impl CustomOp1 for BlockOp {
    fn name(&self) -> &'static str {
        "fused-block"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let shape = self.0.out_shape(l)?;
        Ok((CpuStorage::F32(self.0.forward(cpu_f32(s, l, "block")?, None)?), shape))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        let dx = with_f32(x, "block backward", |x| {
            with_f32(dy, "block backward", |dy| Ok(self.0.backward(x, None, dy, true)?.0))
        })?;
        dx.map(|v| tensor(v, x.shape())).transpose()
    }
}

impl CustomOp2 for BlockLoraOp {
    fn name(&self) -> &'static str {
        "fused-block-lora"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let shape = self.0.out_shape(l1)?;
        let lora = cpu_f32(s2, l2, "block LoRA")?;
        Ok((CpuStorage::F32(self.0.forward(cpu_f32(s1, l1, "block")?, Some(lora))?), shape))
    }

    fn bwd(&self, x: &Tensor, lora: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let want_dx = x.track_op();
        let (dx, dl) = with_f32(x, "block backward", |xv| {
            with_f32(lora, "block backward", |lv| {
                with_f32(dy, "block backward", |dy| self.0.backward(xv, Some(lv), dy, want_dx))
            })
        })?;
        let dx = dx.map(|v| tensor(v, x.shape())).transpose()?;
        let dl = dl.map(|v| tensor(v, lora.shape())).transpose()?;
        Ok((dx, dl))
    }
}
