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

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::simd::{axpy, dot, exp_in_place};
use super::{cpu_f32, tensor, with_f32};

struct Attention {
    scale: f32,
    /// Log-sum-exp of each query row's scaled scores, `[batch, time, heads]`,
    /// written by the forward for the backward.
    lse: Mutex<Option<Vec<f32>>>,
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    nh: usize,
    nkv: usize,
    d: usize,
}

impl Dims {
    fn of(q: &[usize], k: &[usize], v: &[usize]) -> Result<Dims> {
        let (&[b, t, nh, d], &[kb, kt, nkv, kd]) = (q, k) else {
            bail!("attention: expected q [b, t, heads, d] and k [b, t, kv_heads, d], got {q:?} and {k:?}")
        };
        if (kb, kt, kd) != (b, t, d) || v != k {
            bail!("attention: q {q:?}, k {k:?} and v {v:?} do not fit together");
        }
        if nkv == 0 || nh % nkv != 0 {
            bail!("attention: {nh} query heads are not a multiple of {nkv} key-value heads");
        }
        Ok(Dims { b, t, nh, nkv, d })
    }
    fn group(&self) -> usize {
        self.nh / self.nkv
    }
    /// Offset of row (batch, time) of a `[b, t, heads, d]` tensor with `heads` heads, head `h`.
    fn at(&self, heads: usize, b: usize, t: usize, h: usize) -> usize {
        ((b * self.t + t) * heads + h) * self.d
    }
}

impl Attention {
    /// Scaled scores of query (b, i, h) against keys 0..=i into `s`.
    fn scores(&self, dm: Dims, q: &[f32], k: &[f32], (b, i, h): (usize, usize, usize), s: &mut Vec<f32>) {
        let d = dm.d;
        let qr = &q[dm.at(dm.nh, b, i, h)..][..d];
        let kvh = h / dm.group();
        s.clear();
        for j in 0..=i {
            s.push(self.scale * dot(qr, &k[dm.at(dm.nkv, b, j, kvh)..][..d]));
        }
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dm = Dims::of(l1.dims(), l2.dims(), l3.dims())?;
        let (q, k, v) =
            (cpu_f32(s1, l1, "attention q")?, cpu_f32(s2, l2, "attention k")?, cpu_f32(s3, l3, "attention v")?);
        let (nh, d) = (dm.nh, dm.d);
        let mut o = vec![0f32; q.len()];
        let mut lse = vec![0f32; dm.b * dm.t * nh];
        o.par_chunks_mut(nh * d).zip(lse.par_chunks_mut(nh)).enumerate().for_each(|(bt, (orow, lrow))| {
            let (b, i) = (bt / dm.t, bt % dm.t);
            let mut s = Vec::with_capacity(i + 1);
            for h in 0..nh {
                self.scores(dm, q, k, (b, i, h), &mut s);
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
                    axpy(p / sum, &v[dm.at(dm.nkv, b, j, kvh)..][..d], out);
                }
                lrow[h] = max + sum.ln();
            }
        });
        *self.lse.lock().map_err(|_| candle_core::Error::Msg("attention: poisoned state".into()))? = Some(lse);
        Ok((CpuStorage::F32(o), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        o: &Tensor,
        d_o: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dm = Dims::of(q.dims(), k.dims(), v.dims())?;
        let guard = self.lse.lock().map_err(|_| candle_core::Error::Msg("attention: poisoned state".into()))?;
        let Some(lse) = guard.as_ref() else { bail!("attention backward without a forward") };
        let (nh, nkv, d, t) = (dm.nh, dm.nkv, dm.d, dm.t);
        let (dq, dk, dv) = with_f32(q, "attention backward", |q| {
            with_f32(k, "attention backward", |k| {
                with_f32(v, "attention backward", |v| {
                    with_f32(o, "attention backward", |o| {
                        with_f32(d_o, "attention backward", |d_o| {
                            // Dᵢ = dOᵢ · Oᵢ, per (b, i, h).
                            let big_d: Vec<f32> =
                                d_o.par_chunks(d).zip(o.par_chunks(d)).map(|(a, b)| dot(a, b)).collect();
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
                                            let qr = &q[dm.at(nh, b, i, h)..][..d];
                                            let dor = &d_o[dm.at(nh, b, i, h)..][..d];
                                            let (lse_i, di) = (lse[(b * t + i) * nh + h], big_d[(b * t + i) * nh + h]);
                                            let dqr = &mut dq[(hg * t + i) * d..][..d];
                                            // This row's probabilities, recomputed from its log-sum-exp.
                                            probs.clear();
                                            for j in 0..=i {
                                                probs.push(
                                                    self.scale * dot(qr, &k[dm.at(nkv, b, j, kvh)..][..d]) - lse_i,
                                                );
                                            }
                                            exp_in_place(&mut probs);
                                            for (j, &p) in probs.iter().enumerate() {
                                                let kr = &k[dm.at(nkv, b, j, kvh)..][..d];
                                                let vr = &v[dm.at(nkv, b, j, kvh)..][..d];
                                                axpy(p, dor, &mut dv[j * d..][..d]);
                                                let ds = self.scale * p * (dot(dor, vr) - di);
                                                axpy(ds, kr, dqr);
                                                axpy(ds, qr, &mut dk[j * d..][..d]);
                                            }
                                        }
                                    }
                                    (dq, dk, dv)
                                })
                                .collect();
                            let mut dq = vec![0f32; q.len()];
                            let mut dk = vec![0f32; k.len()];
                            let mut dv = vec![0f32; v.len()];
                            for (task, (pq, pk, pv)) in parts.iter().enumerate() {
                                let (b, kvh) = (task / nkv, task % nkv);
                                for i in 0..t {
                                    for hg in 0..g {
                                        let o = dm.at(nh, b, i, kvh * g + hg);
                                        dq[o..o + d].copy_from_slice(&pq[(hg * t + i) * d..][..d]);
                                    }
                                    let o = dm.at(nkv, b, i, kvh);
                                    dk[o..o + d].copy_from_slice(&pk[i * d..][..d]);
                                    dv[o..o + d].copy_from_slice(&pv[i * d..][..d]);
                                }
                            }
                            Ok((dq, dk, dv))
                        })
                    })
                })
            })
        })?;
        Ok((Some(tensor(dq, q.shape())?), Some(tensor(dk, k.shape())?), Some(tensor(dv, v.shape())?)))
    }
}

/// Causal attention `softmax(q kᵀ / √d + mask) v` with `heads / kv_heads`
/// query heads sharing each key-value head; `q` is `[b, t, heads, d]`, `k` and
/// `v` are `[b, t, kv_heads, d]`, the result `[b, t, heads, d]`.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let d = q.dim(candle_core::D::Minus1)?;
    let op = Attention { scale: 1.0 / (d as f32).sqrt(), lse: Mutex::new(None) };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}
