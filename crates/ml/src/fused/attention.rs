//! Causal scaled-dot-product attention with grouped-query heads, on
//! `q [batch, time, heads, d]`, `k`, `v [batch, time, kv_heads, d]` (the
//! projections' own layout: no transposes, no repeated K/V heads).
//!
//! The transformer block reads q, k and v packed in one row per position (q
//! heads | k heads | v heads, the fused projection's output);
//! [`causal_attention`] packs separate tensors for the same op.
//!
//! The score matrix is never materialised: queries are taken [`BQ`] at a time,
//! their scores against the keys so far (a `BQ × t` scratch) formed by gemm,
//! softmaxed in place and multiplied by V by gemm; the forward keeps only each
//! row's log-sum-exp (`batch × time × heads` floats) for the backward, which
//! recomputes the probabilities from it (FlashAttention's trade of a little
//! arithmetic for the t² memory). The blocks' gemms run on the task's own
//! thread (the tasks are many), which is what makes this fast: a dot product
//! per score is bound by the latency of one accumulator chain.
//!
//! Work is split so that every output element is written by one task with a
//! fixed summation order: the forward by (batch, query head), the backward by
//! (batch, key-value head), each task owning that head's dK, dV and its query
//! heads' dQ. So results do not depend on the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::gemm::{SERIAL, View};
use super::simd::{dot, exp_in_place};
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

/// One (batch, key-value head) task's gradients: dQ of its query heads, dK, dV.
type KvGrads = (Vec<f32>, Vec<f32>, Vec<f32>);

impl Dims {
    pub fn check(&self) -> Result<()> {
        if self.nkv == 0 || !self.nh.is_multiple_of(self.nkv) || self.d == 0 {
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

/// Query rows per block: a block's scores are `BQ × keys` floats, never `t × t`.
const BQ: usize = 32;

/// Softmax of each row `r` of the `bq × nk` block `s` over its causal keys
/// `0..=i0 + r` (the rest set to 0), in place; returns each row's log-sum-exp.
fn softmax_rows(s: &mut [f32], nk: usize, i0: usize, lse: &mut [f32]) {
    for (r, row) in s.chunks_mut(nk).enumerate() {
        let (live, masked) = row.split_at_mut(i0 + r + 1);
        let max = live.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
        for x in live.iter_mut() {
            *x -= max;
        }
        exp_in_place(live);
        let mut sum = 0f32;
        for &x in live.iter() {
            sum += x;
        }
        let inv = 1.0 / sum;
        for x in live.iter_mut() {
            *x *= inv;
        }
        masked.fill(0.0);
        lse[r] = max + sum.ln();
    }
}

/// The output `[b, t, nh·d]` of packed `qkv` (`[b, t, row]`) and each query
/// row's log-sum-exp `[b, t, nh]`. One task per (batch, query head), going
/// through its queries [`BQ`] at a time: scores and outputs by gemm on the
/// block against the keys so far.
pub(crate) fn forward(dm: Dims, qkv: &[f32], scale: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    dm.check()?;
    if qkv.len() != dm.b * dm.t * dm.row() {
        bail!("attention: {} values do not fit {} × {} rows of {}", qkv.len(), dm.b, dm.t, dm.row());
    }
    let (nh, d, t, row) = (dm.nh, dm.d, dm.t, dm.row());
    let parts: Vec<Result<(Vec<f32>, Vec<f32>)>> = (0..dm.b * nh)
        .into_par_iter()
        .map(|task| {
            let (b, h) = (task / nh, task % nh);
            let kvh = h / dm.group();
            let (mut o, mut lse, mut s) = (vec![0f32; t * d], vec![0f32; t], vec![0f32; BQ.min(t) * t]);
            for i0 in (0..t).step_by(BQ) {
                let (bq, nk) = ((i0 + BQ).min(t) - i0, (i0 + BQ).min(t));
                let q = View::rows(&qkv[dm.q(b, i0, h)..], row);
                SERIAL.run(&mut s, nk, (bq, nk, d), q, View::t(&qkv[dm.k(b, 0, kvh)..], row), scale, false)?;
                let s = &mut s[..bq * nk];
                softmax_rows(s, nk, i0, &mut lse[i0..i0 + bq]);
                let v = View::rows(&qkv[dm.v(b, 0, kvh)..], row);
                SERIAL.run(&mut o[i0 * d..], d, (bq, d, nk), View::rows(s, nk), v, 1.0, false)?;
            }
            Ok((o, lse))
        })
        .collect();
    let mut o = vec![0f32; dm.b * t * nh * d];
    let mut lse = vec![0f32; dm.b * t * nh];
    for (task, part) in parts.into_iter().enumerate() {
        let (po, pl) = part?;
        let (b, h) = (task / nh, task % nh);
        for i in 0..t {
            let at = (b * t + i) * nh + h;
            o[at * d..(at + 1) * d].copy_from_slice(&po[i * d..(i + 1) * d]);
            lse[at] = pl[i];
        }
    }
    Ok((o, lse))
}

/// The gradient of packed `qkv` given the forward's output `o`, its
/// log-sum-exp and the output gradient `d_o`.
pub(crate) fn backward(dm: Dims, qkv: &[f32], o: &[f32], lse: &[f32], d_o: &[f32], scale: f32) -> Result<Vec<f32>> {
    dm.check()?;
    let (nh, nkv, d, t, row) = (dm.nh, dm.nkv, dm.d, dm.t, dm.row());
    if qkv.len() != dm.b * t * row || o.len() != dm.b * t * nh * d || d_o.len() != o.len() || lse.len() != dm.b * t * nh
    {
        bail!("attention backward: inputs do not fit {} × {t} rows", dm.b);
    }
    // Dᵢ = dOᵢ · Oᵢ, per (b, i, h).
    let big_d: Vec<f32> = d_o.par_chunks(d).zip(o.par_chunks(d)).map(|(a, b)| dot(a, b)).collect();
    // One task per (batch, kv head): it owns that head's dK and dV rows and
    // the dQ rows of its query heads, so every sum runs in one fixed order
    // (heads, then query blocks); per block, with P the probabilities
    // recomputed from the log-sum-exp and dS = P ∘ (dO Vᵀ − D) · scale:
    // dV += Pᵀ dO, dQ = dS K, dK += dSᵀ Q, all by gemm.
    let g = dm.group();
    let parts: Vec<Result<KvGrads>> = (0..dm.b * nkv)
        .into_par_iter()
        .map(|task| {
            let (b, kvh) = (task / nkv, task % nkv);
            let mut dq = vec![0f32; g * t * d];
            let mut dk = vec![0f32; t * d];
            let mut dv = vec![0f32; t * d];
            let (mut p, mut dp) = (vec![0f32; BQ.min(t) * t], vec![0f32; BQ.min(t) * t]);
            let (k, kt) = (View::rows(&qkv[dm.k(b, 0, kvh)..], row), View::t(&qkv[dm.k(b, 0, kvh)..], row));
            let vt = View::t(&qkv[dm.v(b, 0, kvh)..], row);
            for hg in 0..g {
                let h = kvh * g + hg;
                for i0 in (0..t).step_by(BQ) {
                    let (bq, nk) = ((i0 + BQ).min(t) - i0, (i0 + BQ).min(t));
                    let q = View::rows(&qkv[dm.q(b, i0, h)..], row);
                    let dob = View::rows(&d_o[((b * t + i0) * nh + h) * d..], nh * d);
                    SERIAL.run(&mut p, nk, (bq, nk, d), q, kt, scale, false)?;
                    SERIAL.run(&mut dp, nk, (bq, nk, d), dob, vt, 1.0, false)?;
                    for r in 0..bq {
                        let at = (b * t + i0 + r) * nh + h;
                        let (lse_i, di) = (lse[at], big_d[at]);
                        let (pr, dpr) = (&mut p[r * nk..(r + 1) * nk], &mut dp[r * nk..(r + 1) * nk]);
                        let (live, masked) = pr.split_at_mut(i0 + r + 1);
                        for x in live.iter_mut() {
                            *x -= lse_i;
                        }
                        exp_in_place(live);
                        masked.fill(0.0);
                        for (ds, &pv) in dpr.iter_mut().zip(pr.iter()) {
                            *ds = scale * pv * (*ds - di);
                        }
                    }
                    let (p, dp) = (&p[..bq * nk], &dp[..bq * nk]);
                    SERIAL.run(&mut dv, d, (nk, d, bq), View::t(p, nk), dob, 1.0, true)?;
                    SERIAL.run(&mut dq[(hg * t + i0) * d..], d, (bq, d, nk), View::rows(dp, nk), k, 1.0, false)?;
                    SERIAL.run(&mut dk, d, (nk, d, bq), View::t(dp, nk), q, 1.0, true)?;
                }
            }
            Ok((dq, dk, dv))
        })
        .collect();
    let mut dqkv = vec![0f32; qkv.len()];
    for (task, part) in parts.into_iter().enumerate() {
        let (pq, pk, pv) = part?;
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
