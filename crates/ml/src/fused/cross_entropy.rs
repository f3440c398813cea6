//! The frozen output projection and the weighted next-token cross-entropy in
//! one op: `loss = Σᵢ wᵢ · (logsumexp(hᵢ Wᵀ) − (hᵢ Wᵀ)[targetᵢ])`.
//!
//! The naive path materialises the logits `[rows, vocab]`, their log-softmax,
//! and candle keeps both (and the gradient of each) for the backward: with the
//! bench's 1,016 rows × 8,192 that is 33 MB per copy. Here the rows with a
//! non-zero weight are taken [`ROWS`] at a time: their logits block is formed,
//! turned in place into its gradient `wᵢ (softmax − onehot)`, and multiplied
//! back by `W` into those rows of `dH`; only one block of logits exists at a
//! time. Because the loss is the end of the graph, the gradient is formed in
//! the forward (saving the backward a second logits pass) and the backward
//! scales it by the incoming gradient. The head gets no gradient (frozen).
//!
//! Blocks are fixed-size and processed in order, each row's sums run over the
//! vocabulary in index order, and the loss sums rows in order in f64, so the
//! result is independent of the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::gemm::{PARALLEL, View};
use super::simd::exp_in_place;
use super::{cpu_f32, tensor, with_f32};

/// Rows per logits block: 256 × vocab 8,192 is 8 MiB (49,152: 48 MiB). gemm
/// measured on the bench's head (384 → 8,192, 2 cores): 130 / 103 GFLOP/s
/// for the logits / dH products of 128-row blocks, 145–170 / 128–150 at 256.
const ROWS: usize = 256;

struct LinearCrossEntropy {
    head: Tensor,
    targets: Vec<u32>,
    weights: Vec<f32>,
    want_grad: bool,
    grad: Mutex<Option<Vec<f32>>>,
}

/// Per-row negative log-likelihoods (of the rows with a non-zero weight; 0
/// elsewhere), and `dH` when `grad` is true.
fn forward(
    h: &[f32],
    hidden: usize,
    head: &Tensor,
    targets: &[u32],
    weights: &[f32],
    grad: bool,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let rows = targets.len();
    let (vocab, k) = head.dims2()?;
    if k != hidden || h.len() != rows * hidden || weights.len() != rows {
        bail!(
            "cross-entropy: {} hidden values, {rows} targets, {} weights and a head {vocab}×{k} do not fit",
            h.len(),
            weights.len()
        );
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= vocab) {
        bail!("cross-entropy: target {t} is outside the vocabulary of {vocab}");
    }
    let active: Vec<usize> = (0..rows).filter(|&i| weights[i] != 0.0).collect();
    let mut nll = vec![0f32; rows];
    let mut dh = grad.then(|| vec![0f32; rows * hidden]);
    // One block's rows, logits and dH rows, reused from block to block.
    let cap = ROWS.min(active.len());
    let mut block = Vec::with_capacity(cap * hidden);
    let mut logits = vec![0f32; cap * vocab];
    let mut g = vec![0f32; if grad { cap * hidden } else { 0 }];
    with_f32(head, "cross-entropy head", |w| {
        for chunk in active.chunks(ROWS) {
            block.clear();
            for &i in chunk {
                block.extend_from_slice(&h[i * hidden..(i + 1) * hidden]);
            }
            let m = chunk.len();
            let logits = &mut logits[..m * vocab];
            PARALLEL.run(
                logits,
                vocab,
                (m, vocab, hidden),
                View::rows(&block, hidden),
                View::t(w, hidden),
                1.0,
                false,
            )?;
            let row_nll: Vec<f32> = logits
                .par_chunks_mut(vocab)
                .zip(chunk.par_iter())
                .map(|(l, &i)| {
                    let tgt = targets[i] as usize;
                    let max = l.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                    let picked = l[tgt];
                    for x in l.iter_mut() {
                        *x -= max;
                    }
                    exp_in_place(l);
                    let mut sum = 0f32;
                    for &x in l.iter() {
                        sum += x;
                    }
                    if grad {
                        let c = weights[i] / sum;
                        for x in l.iter_mut() {
                            *x *= c;
                        }
                        l[tgt] -= weights[i];
                    }
                    max + sum.ln() - picked
                })
                .collect();
            for (&i, v) in chunk.iter().zip(row_nll) {
                nll[i] = v;
            }
            if let Some(dh) = dh.as_mut() {
                let g = &mut g[..m * hidden];
                PARALLEL.run(
                    g,
                    hidden,
                    (m, hidden, vocab),
                    View::rows(logits, vocab),
                    View::rows(w, hidden),
                    1.0,
                    false,
                )?;
                for (r, &i) in chunk.iter().enumerate() {
                    dh[i * hidden..(i + 1) * hidden].copy_from_slice(&g[r * hidden..(r + 1) * hidden]);
                }
            }
        }
        Ok(())
    })?;
    Ok((nll, dh))
}

impl CustomOp1 for LinearCrossEntropy {
    fn name(&self) -> &'static str {
        "fused-linear-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let h = cpu_f32(s, l, "cross-entropy")?;
        let hidden = *l.dims().last().unwrap_or(&0);
        let (nll, dh) = forward(h, hidden, &self.head, &self.targets, &self.weights, self.want_grad)?;
        let loss: f64 = nll.iter().zip(&self.weights).map(|(&n, &w)| n as f64 * w as f64).sum();
        *self.grad.lock().map_err(|_| candle_core::Error::Msg("cross-entropy: poisoned state".into()))? = dh;
        Ok((CpuStorage::F32(vec![loss as f32]), Shape::from(())))
    }

    fn bwd(&self, h: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let guard = self.grad.lock().map_err(|_| candle_core::Error::Msg("cross-entropy: poisoned state".into()))?;
        let Some(dh) = guard.as_ref() else { bail!("cross-entropy backward of a forward run without gradients") };
        let dh = tensor(dh.clone(), h.shape())?;
        let g = g.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        match g.as_slice() {
            [1.0] => Ok(Some(dh)),
            [s] => Ok(Some((dh * *s as f64)?)),
            _ => bail!("cross-entropy: the incoming gradient is not a scalar"),
        }
    }
}

/// `Σᵢ weights[i] · NLL(targets[i] | softmax(h[i] headᵀ))` as a scalar, for
/// `h` `[rows, hidden]` and the frozen `head` `[vocab, hidden]`; rows of weight
/// 0 cost nothing. For a masked mean pass `mask[i] / Σ mask` as the weights.
pub fn linear_cross_entropy(h: &Tensor, head: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Tensor> {
    let op = LinearCrossEntropy {
        head: head.clone(),
        targets: targets.to_vec(),
        weights: weights.to_vec(),
        want_grad: h.track_op(),
        grad: Mutex::new(None),
    };
    h.contiguous()?.apply_op1(op)
}

/// Each row's NLL of its target (0 for rows whose `weights` entry is 0),
/// without gradients: evaluation's and `sequence_nll`'s half of
/// [`linear_cross_entropy`].
pub fn linear_nll_rows(h: &Tensor, head: &Tensor, targets: &[u32], weights: &[f32]) -> Result<Vec<f32>> {
    let hidden = h.dim(candle_core::D::Minus1)?;
    with_f32(h, "cross-entropy", |hv| Ok(forward(hv, hidden, head, targets, weights, false)?.0))
}
