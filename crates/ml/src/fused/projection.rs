//! Frozen linear layers that share one input, with their LoRA pairs, biases and
//! (for q and k) the rotary embedding, as one computation:
//! `y[:, part] = x W_partᵀ + b_part + s · (x A_partᵀ) B_partᵀ`, then RoPE.
//!
//! The parts' outputs sit side by side in one `[rows, Σ out]` buffer (q | k | v,
//! or gate | up), written there by gemm directly, so nothing is concatenated
//! or split. The backward sums the parts' input gradients inside gemm
//! (`dX = Σ dY_part W_part + s (dY_part B_part) A_part`, each product added
//! into the same buffer), so the input, used by every part, gets one gradient
//! and no separate sum pass. Frozen weights and biases get no gradient; the
//! LoRA pairs are read from, and their gradients written to, one flat buffer
//! (`A` `[r, in]` then `B` `[out, r]` per part with LoRA).
//!
//! [`lora_linear`] is the one-part case as a candle op; the transformer block
//! ([`super::block`]) uses [`Proj`] on slices.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::gemm::{PARALLEL, View};
use super::rope::rotate_heads;
use super::{ROW_TASK, cpu_f32, tensor, with_f32};

/// One frozen linear layer of a [`Proj`].
pub(crate) struct Part {
    /// `[out, in]`, f32, contiguous.
    weight: Tensor,
    bias: Option<Vec<f32>>,
    out: usize,
    /// Offset of its outputs in the row.
    off: usize,
    /// Offset of its `A` in the flat LoRA buffer (`B` follows it).
    lora: Option<usize>,
    rope: bool,
}

/// Rotary tables for the parts marked `rope`: `[time, head_dim / 2]` each.
#[derive(Clone)]
pub(crate) struct RopeTables {
    pub cos: Arc<Vec<f32>>,
    pub sin: Arc<Vec<f32>>,
    pub head_dim: usize,
}

/// The description a caller gives of one part.
pub(crate) struct PartSpec<'a> {
    pub weight: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    /// Whether this part has a LoRA pair (of rank [`Proj::rank`]) in the flat buffer.
    pub lora: bool,
    pub rope: bool,
}

pub(crate) struct Proj {
    parts: Vec<Part>,
    /// Input and total output sizes.
    pub k: usize,
    pub n: usize,
    rank: usize,
    scale: f32,
    rope: Option<RopeTables>,
    /// Length of this projection's share of the flat LoRA buffer.
    pub lora_len: usize,
}

/// The f32 elements of a contiguous CPU tensor (`what` names it in errors).
fn f32_of(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    with_f32(t, what, |v| Ok(v.to_vec()))
}

impl Proj {
    /// `lora_base` is where this projection's pairs start in the flat buffer.
    pub fn new(
        specs: &[PartSpec<'_>],
        rank: usize,
        scale: f64,
        rope: Option<RopeTables>,
        lora_base: usize,
    ) -> Result<Proj> {
        let Some(first) = specs.first() else { bail!("projection: no parts") };
        let k = first.weight.dim(1)?;
        let (mut parts, mut off, mut lora_off) = (Vec::new(), 0, lora_base);
        for s in specs {
            let (out, kk) = s.weight.dims2()?;
            if kk != k {
                bail!("projection: a weight {out}×{kk} does not take the input size {k}");
            }
            if s.weight.dtype() != candle_core::DType::F32 {
                bail!("projection: f32 weights only, got {:?}", s.weight.dtype());
            }
            let bias = match s.bias {
                Some(b) if b.elem_count() != out => bail!("projection: a bias of {} for {out} outputs", b.elem_count()),
                Some(b) => Some(f32_of(b, "projection bias")?),
                None => None,
            };
            if s.rope && rope.as_ref().is_none_or(|r| r.head_dim == 0 || out % r.head_dim != 0 || r.head_dim % 2 != 0) {
                bail!("projection: a rotated part of {out} outputs needs tables of an even head size dividing it");
            }
            let lora = s.lora.then_some(lora_off);
            if s.lora {
                lora_off += rank * (k + out);
            }
            parts.push(Part { weight: s.weight.contiguous()?, bias, out, off, lora, rope: s.rope });
            off += out;
        }
        Ok(Proj { parts, k, n: off, rank, scale: scale as f32, rope, lora_len: lora_off - lora_base })
    }

    fn lora_ab<'a>(&self, p: &Part, lora: Option<&'a [f32]>) -> Result<Option<(&'a [f32], &'a [f32])>> {
        let (Some(a_off), Some(flat)) = (p.lora, lora) else {
            return if p.lora.is_some() { bail!("projection: LoRA parts but no LoRA values") } else { Ok(None) };
        };
        let (r, k) = (self.rank, self.k);
        let Some(ab) = flat.get(a_off..a_off + r * (k + p.out)) else {
            bail!("projection: the LoRA buffer of {} values is too short", flat.len())
        };
        Ok(Some(ab.split_at(r * k)))
    }

    /// Rotate (or, `inverse`, rotate back) the rope parts of every row of `y`
    /// (`[rows, n]`, row `i` at position `i % time`).
    fn rotate(&self, y: &mut [f32], time: usize, inverse: bool) {
        let Some(rt) = &self.rope else { return };
        if !self.parts.iter().any(|p| p.rope) || time == 0 {
            return;
        }
        let (n, half) = (self.n, rt.head_dim / 2);
        y.par_chunks_mut(n * ROW_TASK).enumerate().for_each(|(blk, rows)| {
            for (j, row) in rows.chunks_mut(n).enumerate() {
                let pos = (blk * ROW_TASK + j) % time;
                let (c, s) = (&rt.cos[pos * half..(pos + 1) * half], &rt.sin[pos * half..(pos + 1) * half]);
                for p in self.parts.iter().filter(|p| p.rope) {
                    rotate_heads(&mut row[p.off..p.off + p.out], rt.head_dim, c, s, inverse);
                }
            }
        });
    }

    /// `y` (`[m, n]`) `=` (or `+=` when `accumulate`) the projection of `x`
    /// (`[m, k]`, rows at positions `i % time`), RoPE included.
    pub fn forward(&self, x: &[f32], lora: Option<&[f32]>, time: usize, y: &mut [f32], accumulate: bool) -> Result<()> {
        let (k, n) = (self.k, self.n);
        let m = x.len() / k.max(1);
        if x.len() != m * k || y.len() != m * n {
            bail!("projection: {} inputs and {} outputs do not fit {k} → {n}", x.len(), y.len());
        }
        if accumulate && self.parts.iter().any(|p| p.rope) {
            bail!("projection: rotated outputs cannot be accumulated");
        }
        let r = self.rank;
        let mut xa = vec![0f32; m * r];
        for p in &self.parts {
            let out = &mut y[p.off..];
            with_f32(&p.weight, "projection weight", |w| {
                PARALLEL.run(out, n, (m, p.out, k), View::rows(x, k), View::t(w, k), 1.0, accumulate)
            })?;
            if let Some((a, b)) = self.lora_ab(p, lora)? {
                PARALLEL.run(&mut xa, r, (m, r, k), View::rows(x, k), View::t(a, k), 1.0, false)?;
                PARALLEL.run(&mut y[p.off..], n, (m, p.out, r), View::rows(&xa, r), View::t(b, r), self.scale, true)?;
            }
        }
        if self.parts.iter().any(|p| p.bias.is_some()) {
            y.par_chunks_mut(n * ROW_TASK).for_each(|rows| {
                for row in rows.chunks_mut(n) {
                    for p in &self.parts {
                        if let Some(b) = &p.bias {
                            for (y, &b) in row[p.off..p.off + p.out].iter_mut().zip(b) {
                                *y += b;
                            }
                        }
                    }
                }
            });
        }
        self.rotate(y, time, false);
        Ok(())
    }

    /// The backward of [`Proj::forward`] at input `x` for the output gradient
    /// `dy` (`[m, n]`; its rotated parts are rotated back in place):
    /// `dx` (`[m, k]`) gets the input gradient added when given, `dlora` (the
    /// flat LoRA gradient buffer) this projection's pairs' gradients written,
    /// one gradient per sequence of `split`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        x: &[f32],
        lora: Option<&[f32]>,
        time: usize,
        dy: &mut [f32],
        mut dx: Option<&mut [f32]>,
        mut dlora: Option<&mut [f32]>,
        split: SeqSplit,
    ) -> Result<()> {
        let (k, n, r) = (self.k, self.n, self.rank);
        let m = x.len() / k.max(1);
        if x.len() != m * k || dy.len() != m * n || dx.as_ref().is_some_and(|d| d.len() != m * k) {
            bail!("projection backward: {} inputs and {} gradients do not fit {k} → {n}", x.len(), dy.len());
        }
        self.rotate(dy, time, true);
        let dy: &[f32] = dy;
        let mut xa = vec![0f32; m * r];
        let mut gb = vec![0f32; m * r];
        for p in &self.parts {
            let g = View::rows(&dy[p.off..], n);
            if let Some(dx) = dx.as_deref_mut() {
                with_f32(&p.weight, "projection weight", |w| {
                    PARALLEL.run(dx, k, (m, k, p.out), g, View::rows(w, k), 1.0, true)
                })?;
            }
            let Some((a, b)) = self.lora_ab(p, lora)? else { continue };
            let a_off = p.lora.unwrap_or(0);
            // gb = dY_p B_p [m, r]; dX += s gb A_p; dA = s gbᵀ x; dB = s dY_pᵀ (x A_pᵀ).
            PARALLEL.run(&mut gb, r, (m, r, p.out), g, View::rows(b, r), 1.0, false)?;
            if let Some(dx) = dx.as_deref_mut() {
                PARALLEL.run(dx, k, (m, k, r), View::rows(&gb, r), View::rows(a, k), self.scale, true)?;
            }
            let Some(dl) = dlora.as_deref_mut() else { continue };
            PARALLEL.run(&mut xa, r, (m, r, k), View::rows(x, k), View::t(a, k), 1.0, false)?;
            // One pair of products per sequence, over its rows only (one sequence: all rows).
            let seqs = split.seqs.max(1);
            if !m.is_multiple_of(seqs) {
                bail!("projection backward: {m} rows do not split into {seqs} sequences");
            }
            let ms = m / seqs;
            for q in 0..seqs {
                let at = q * split.stride + a_off;
                let Some(dab) = dl.get_mut(at..at + r * (k + p.out)) else {
                    bail!("projection backward: the LoRA gradient buffer is too short")
                };
                let (da, db) = dab.split_at_mut(r * k);
                let (gq, xq, aq) = (&gb[q * ms * r..], &x[q * ms * k..], &xa[q * ms * r..]);
                PARALLEL.run(da, k, (r, k, ms), View::t(gq, r), View::rows(xq, k), self.scale, false)?;
                let dyq = &dy[q * ms * n + p.off..];
                PARALLEL.run(db, r, (p.out, r, ms), View::t(dyq, n), View::rows(aq, r), self.scale, false)?;
            }
        }
        Ok(())
    }
}

/// How a backward writes LoRA gradients: the batch's rows as `seqs` equal
/// ranges (sequences of a `[b, t]` block), sequence `q`'s gradient at
/// `q × stride` of the buffer. [`SeqSplit::WHOLE`]: one gradient, of all rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeqSplit {
    pub seqs: usize,
    pub stride: usize,
}

impl SeqSplit {
    pub const WHOLE: SeqSplit = SeqSplit { seqs: 1, stride: 0 };
}

/// [`lora_linear`]'s op: one part with LoRA, `A` and `B` as separate inputs.
struct LoraLinear {
    proj: Proj,
}

impl LoraLinear {
    fn flat(a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        v
    }
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
        let (k, n, r) = (self.proj.k, self.proj.n, self.proj.rank);
        if al.dims() != [r, k] || bl.dims() != [n, r] || xl.dims().last() != Some(&k) {
            bail!(
                "lora-linear: x {:?}, A {:?} and B {:?} do not fit a weight {n}×{k}",
                xl.dims(),
                al.dims(),
                bl.dims()
            );
        }
        let x = cpu_f32(xs, xl, "lora-linear")?;
        let flat = Self::flat(cpu_f32(as_, al, "lora-linear A")?, cpu_f32(bs, bl, "lora-linear B")?);
        let mut y = vec![0f32; x.len() / k * n];
        self.proj.forward(x, Some(&flat), 0, &mut y, false)?;
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
        let (k, r) = (self.proj.k, self.proj.rank);
        let flat = Self::flat(&f32_of(a, "lora-linear A")?, &f32_of(b, "lora-linear B")?);
        let mut dlora = vec![0f32; flat.len()];
        let want_dx = x.track_op();
        let dx = with_f32(x, "lora-linear backward", |xv| {
            let mut dyv = f32_of(dy, "lora-linear backward")?;
            let mut dx = want_dx.then(|| vec![0f32; xv.len()]);
            self.proj.backward(xv, Some(&flat), 0, &mut dyv, dx.as_deref_mut(), Some(&mut dlora), SeqSplit::WHOLE)?;
            Ok(dx)
        })?;
        let db = dlora.split_off(r * k);
        let dx = match dx {
            Some(v) => Some(tensor(v, x.shape())?),
            None => None,
        };
        Ok((dx, Some(tensor(dlora, a.shape())?), Some(tensor(db, b.shape())?)))
    }
}

/// `x Wᵀ + scale · (x Aᵀ) Bᵀ` for `x` `[..., in]`, frozen `w` `[out, in]`, and
/// the LoRA pair `a` `[r, in]`, `b` `[out, r]`.
pub fn lora_linear(x: &Tensor, w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
    let spec = PartSpec { weight: w, bias: None, lora: true, rope: false };
    let proj = Proj::new(&[spec], a.dim(0)?, scale, None, 0)?;
    x.contiguous()?.apply_op3(&a.contiguous()?, &b.contiguous()?, LoraLinear { proj })
}
