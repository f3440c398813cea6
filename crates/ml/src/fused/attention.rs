//! Causal scaled-dot-product attention with grouped-query heads, on
//! `q [batch, time, heads, d]`, `k`, `v [batch, time, kv_heads, d]` (the
//! projections' own layout: no transposes, no repeated K/V heads).
//!
//! The score matrix is never materialised: each query row's scores live in a
//! scratch of at most `time` floats while its softmax and output are formed,
//! and the forward keeps only the row's log-sum-exp (`batch × time × heads`
//! floats) for the backward, which recomputes the probabilities from it
//! (FlashAttention's trade of a little arithmetic for the t² memory).
//!
//! Work is split so that every output element is written by one task with a
//! fixed summation order: the forward by query row, the backward by (batch,
//! key-value head), each task owning that head's dK, dV and its query heads'
//! dQ. So results do not depend on the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::simd::{axpy, dot, exp_in_place};
use super::{cpu_f32, tensor, with_f32};

/// Shapes of one attention call: `b` sequences of `t` positions, `nh` query
/// heads and `nkv` key-value heads of size `d`, read from rows laid out as
/// q heads | k heads | v heads (the fused q/k/v projection's output).
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub b: usize,
    pub t: usize,
    pub nh: usize,
    pub nkv: usize,
    pub d: usize,
}

impl Dims {
    pub fn check(&self) -> Result<()> {
        if self.nkv == 0 || self.nh % self.nkv != 0 || self.d == 0 {
            bail!("attention: {} query heads are not a multiple of {} key-value heads", self.nh, self.nkv);
        }
        Ok(())
    }
    fn group(&self) -> usize {
        self.nh / self.nkv
    }
    /// Width of a packed q | k | v row.
    pub fn row(&self) -> usize {
        (self.nh + 2 * self.nkv) * self.d
    }
    fn q(&self, b: usize, t: usize, h: usize) -> usize {
        (b * self.t + t) * self.row() + h * self.d
    }
    fn k(&self, b: usize, t: usize, h: usize) -> usize {
        (b * self.t + t) * self.row() + (self.nh + h) * self.d
    }
    fn v(&self, b: usize, t: usize, h: usize) -> usize {
        (b * self.t + t) * self.row() + (self.nh + self.nkv + h) * self.d
    }
}

/// Scaled scores of query (b, i, h) against keys 0..=i into `s`.
fn scores(dm: Dims, qkv: &[f32], scale: f32, (b, i, h): (usize, usize, usize), s: &mut Vec<f32>) {
    let d = dm.d;
    let qr = &qkv[dm.q(b, i, h)..][..d];
    let kvh = h / dm.group();
    s.clear();
    for j in 0..=i {
        s.push(scale * dot(qr, &qkv[dm.k(b, j, kvh)..][..d]));
    }
}

/// The output `[b, t, nh·d]` of packed `qkv` (`[b, t, row]`) and each query
/// row's log-sum-exp `[b, t, nh]`.
pub(crate) fn forward(dm: Dims, qkv: &[f32], scale: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    dm.check()?;
    if qkv.len() != dm.b * dm.t * dm.row() {
        bail!("attention: {} values do not fit {} × {} rows of {}", qkv.len(), dm.b, dm.t, dm.row());
    }
    let (nh, d) = (dm.nh, dm.d);
    let mut o = vec![0f32; dm.b * dm.t * nh * d];
    let mut lse = vec![0f32; dm.b * dm.t * nh];
    o.par_chunks_mut(nh * d).zip(lse.par_chunks_mut(nh)).enumerate().for_each(|(bt, (orow, lrow))| {
        let (b, i) = (bt / dm.t, bt % dm.t);
        let mut s = Vec::with_capacity(i + 1);
        for h in 0..nh {
            scores(dm, qkv, scale, (b, i, h), &mut s);
            let max = s.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
            for x in s.iter_mut() {
                *x -= max;
            }
            exp_in_place(&mut s);
            let mut sum = 0f32;
            for &x in s.iter() {
                sum += x;
            }
            let out = &mut orow[h * d..(h + 1) * d];
            let kvh = h / dm.group();
            for (j, &p) in s.iter().enumerate() {
                axpy(p / sum, &qkv[dm.v(b, j, kvh)..][..d], out);
            }
            lrow[h] = max + sum.ln();
        }
    });
    Ok((o, lse))
}

/// The gradient of packed `qkv` given the forward's output `o`, its
/// log-sum-exp and the output gradient `d_o`.
pub(crate) fn backward(dm: Dims, qkv: &[f32], o: &[f32], lse: &[f32], d_o: &[f32], scale: f32) -> Result<Vec<f32>> {
    dm.check()?;
    let (nh, nkv, d, t) = (dm.nh, dm.nkv, dm.d, dm.t);
    if qkv.len() != dm.b * t * dm.row() || o.len() != dm.b * t * nh * d || d_o.len() != o.len() || lse.len() != dm.b * t * nh
    {
        bail!("attention backward: inputs do not fit {} × {t} rows", dm.b);
    }
    // Dᵢ = dOᵢ · Oᵢ, per (b, i, h).
    let big_d: Vec<f32> = d_o.par_chunks(d).zip(o.par_chunks(d)).map(|(a, b)| dot(a, b)).collect();
    // One task per (batch, kv head): it owns that head's dK and dV rows and
    // the dQ rows of its query heads, so each score is recomputed once and
    // every sum runs in one fixed order (heads, then queries, then keys).
    let g = dm.group();
    let parts: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..dm.b * nkv)
        .into_par_iter()
        .map(|task| {
            let (b, kvh) = (task / nkv, task % nkv);
            let mut dq = vec![0f32; g * t * d];
            let mut dk = vec![0f32; t * d];
            let mut dv = vec![0f32; t * d];
            let mut probs = Vec::with_capacity(t);
            for hg in 0..g {
                let h = kvh * g + hg;
                for i in 0..t {
                    let qr = &qkv[dm.q(b, i, h)..][..d];
                    let dor = &d_o[((b * t + i) * nh + h) * d..][..d];
                    let (lse_i, di) = (lse[(b * t + i) * nh + h], big_d[(b * t + i) * nh + h]);
                    let dqr = &mut dq[(hg * t + i) * d..][..d];
                    // This row's probabilities, recomputed from its log-sum-exp.
                    probs.clear();
                    for j in 0..=i {
                        probs.push(scale * dot(qr, &qkv[dm.k(b, j, kvh)..][..d]) - lse_i);
                    }
                    exp_in_place(&mut probs);
                    for (j, &p) in probs.iter().enumerate() {
                        let kr = &qkv[dm.k(b, j, kvh)..][..d];
                        let vr = &qkv[dm.v(b, j, kvh)..][..d];
                        axpy(p, dor, &mut dv[j * d..][..d]);
                        let ds = scale * p * (dot(dor, vr) - di);
                        axpy(ds, kr, dqr);
                        axpy(ds, qr, &mut dk[j * d..][..d]);
                    }
                }
            }
            (dq, dk, dv)
        })
        .collect();
    let mut dqkv = vec![0f32; qkv.len()];
    for (task, (pq, pk, pv)) in parts.iter().enumerate() {
        let (b, kvh) = (task / nkv, task % nkv);
        for i in 0..t {
            for hg in 0..g {
                let o = dm.q(b, i, kvh * g + hg);
                dqkv[o..o + d].copy_from_slice(&pq[(hg * t + i) * d..][..d]);
            }
            let o = dm.k(b, i, kvh);
            dqkv[o..o + d].copy_from_slice(&pk[i * d..][..d]);
            let o = dm.v(b, i, kvh);
            dqkv[o..o + d].copy_from_slice(&pv[i * d..][..d]);
        }
    }
    Ok(dqkv)
}

/// The candle op over a packed `[b, t, heads + 2 kv_heads, d]` tensor.
struct Attention {
    nh: usize,
    nkv: usize,
    /// Log-sum-exp of each query row's scaled scores, `[batch, time, heads]`,
    /// written by the forward for the backward.
    lse: Mutex<Option<Vec<f32>>>,
}

impl Attention {
    fn dims(&self, qkv: &[usize]) -> Result<Dims> {
        let &[b, t, heads, d] = qkv else { bail!("attention: expected [b, t, heads, d], got {qkv:?}") };
        if heads != self.nh + 2 * self.nkv {
            bail!("attention: {heads} packed heads are not {} + 2 × {}", self.nh, self.nkv);
        }
        Ok(Dims { b, t, nh: self.nh, nkv: self.nkv, d })
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dm = self.dims(l.dims())?;
        let (o, lse) = forward(dm, cpu_f32(s, l, "attention")?, 1.0 / (dm.d as f32).sqrt())?;
        *self.lse.lock().map_err(|_| candle_core::Error::Msg("attention: poisoned state".into()))? = Some(lse);
        Ok((CpuStorage::F32(o), Shape::from((dm.b, dm.t, dm.nh, dm.d))))
    }

    fn bwd(&self, qkv: &Tensor, o: &Tensor, d_o: &Tensor) -> Result<Option<Tensor>> {
        let dm = self.dims(qkv.dims())?;
        let guard = self.lse.lock().map_err(|_| candle_core::Error::Msg("attention: poisoned state".into()))?;
        let Some(lse) = guard.as_ref() else { bail!("attention backward without a forward") };
        let scale = 1.0 / (dm.d as f32).sqrt();
        let dqkv = with_f32(qkv, "attention backward", |qkv| {
            with_f32(o, "attention backward", |o| {
                with_f32(d_o, "attention backward", |d_o| backward(dm, qkv, o, lse, d_o, scale))
            })
        })?;
        Ok(Some(tensor(dqkv, qkv.shape())?))
    }
}

/// Causal attention `softmax(q kᵀ / √d + mask) v` with `heads / kv_heads`
/// query heads sharing each key-value head; `q` is `[b, t, heads, d]`, `k` and
/// `v` are `[b, t, kv_heads, d]`, the result `[b, t, heads, d]`. (The
/// transformer block reads them packed from its q/k/v projection; here they
/// are packed by a concatenation.)
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (&[b, t, nh, d], &[kb, kt, nkv, kd]) = (q.dims(), k.dims()) else {
        bail!("attention: expected q [b, t, heads, d] and k [b, t, kv_heads, d], got {:?} and {:?}", q.dims(), k.dims())
    };
    if (kb, kt, kd) != (b, t, d) || v.dims() != k.dims() {
        bail!("attention: q {:?}, k {:?} and v {:?} do not fit together", q.dims(), k.dims(), v.dims());
    }
    Dims { b, t, nh, nkv, d }.check()?;
    let qkv = Tensor::cat(&[q, k, v], 2)?;
    qkv.apply_op1(Attention { nh, nkv, lse: Mutex::new(None) })
}
