//! RMSNorm, `y = x / √(mean(x²) + ε) · w`, over the last dimension.
//!
//! It replaces sqr → mean → add → sqrt → div → mul (six ops, five kept
//! temporaries of the activation's size) with one pass forward and one pass
//! backward; the backward recomputes the row's 1/rms rather than storing it.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::{ROW_TASK, cpu_f32, tensor, with_f32};

struct RmsNorm {
    eps: f32,
}

/// 1 / √(mean(x²) + ε) of one row, summed in f64 so long rows lose nothing.
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    (1.0 / (ss / x.len() as f64 + eps as f64).sqrt()) as f32
}

/// `y = rmsnorm(x) · w` over rows of `w.len()`.
pub(crate) fn forward(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let n = w.len();
    y.par_chunks_mut(n * ROW_TASK).zip(x.par_chunks(n * ROW_TASK)).for_each(|(yb, xb)| {
        for (yr, xr) in yb.chunks_mut(n).zip(xb.chunks(n)) {
            let r = inv_rms(xr, eps);
            for ((y, &x), &w) in yr.iter_mut().zip(xr).zip(w) {
                *y = x * r * w;
            }
        }
    });
}

/// The backward of [`forward`]: `dx = r·w∘dy − x · r³/n · Σ(dy∘w∘x)` written
/// into `dx` (added to it when `accumulate`: the residual stream's gradient);
/// returns `dw = Σ_rows dy∘x·r` when `want_dw`, summed over blocks of
/// [`ROW_TASK`] rows in row order.
pub(crate) fn backward(
    x: &[f32],
    w: &[f32],
    eps: f32,
    dy: &[f32],
    dx: &mut [f32],
    accumulate: bool,
    want_dw: bool,
) -> Option<Vec<f32>> {
    let n = w.len();
    let partial: Vec<Vec<f32>> = dx
        .par_chunks_mut(n * ROW_TASK)
        .zip(x.par_chunks(n * ROW_TASK).zip(dy.par_chunks(n * ROW_TASK)))
        .map(|(dxb, (xb, dyb))| {
            let mut dw = if want_dw { vec![0f32; n] } else { Vec::new() };
            for ((dxr, xr), dyr) in dxb.chunks_mut(n).zip(xb.chunks(n)).zip(dyb.chunks(n)) {
                let r = inv_rms(xr, eps);
                let mut s = 0f64;
                for i in 0..n {
                    s += (dyr[i] * w[i] * xr[i]) as f64;
                }
                let c = (s * (r as f64).powi(3) / n as f64) as f32;
                if accumulate {
                    for i in 0..n {
                        dxr[i] += r * w[i] * dyr[i] - xr[i] * c;
                    }
                } else {
                    for i in 0..n {
                        dxr[i] = r * w[i] * dyr[i] - xr[i] * c;
                    }
                }
                if want_dw {
                    for i in 0..n {
                        dw[i] += dyr[i] * xr[i] * r;
                    }
                }
            }
            dw
        })
        .collect();
    want_dw.then(|| {
        let mut acc = vec![0f32; n];
        for p in &partial {
            for (a, v) in acc.iter_mut().zip(p) {
                *a += v;
            }
        }
        acc
    })
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s1, l1, "rms-norm")?;
        let w = cpu_f32(s2, l2, "rms-norm weight")?;
        let n = w.len();
        if l1.dims().last() != Some(&n) {
            bail!("rms-norm: input {:?} does not end in the weight's size {n}", l1.dims());
        }
        let mut y = vec![0f32; x.len()];
        forward(x, w, self.eps, &mut y);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// The weight gets a gradient only when it is a variable (a frozen norm
    /// weight gets none, as in LoRA).
    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let want_dw = w.track_op();
        let (dx, dw) = with_f32(x, "rms-norm backward", |x| {
            with_f32(w, "rms-norm backward", |w| {
                with_f32(dy, "rms-norm backward", |dy| {
                    let mut dx = vec![0f32; x.len()];
                    let dw = backward(x, w, self.eps, dy, &mut dx, false, want_dw);
                    Ok((dx, dw))
                })
            })
        })?;
        let dx = tensor(dx, x.shape())?;
        let dw = match dw {
            Some(v) => Some(tensor(v, w.shape())?),
            None => None,
        };
        Ok((Some(dx), dw))
    }
}

/// RMSNorm of `x` (`[..., n]`) with weight `w` (`[n]`).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}
