//! Rotary position embedding in the Hugging Face "rotate half" layout, on
//! `[batch, time, heads, head_dim]` (the layout the projections produce, so no
//! transpose is needed before or after): for i < d/2,
//! `y_i = x_i cos − x_{i+d/2} sin`, `y_{i+d/2} = x_{i+d/2} cos + x_i sin`.
//! It replaces narrow → neg → cat → two broadcast muls → add. The backward is
//! the inverse rotation (the transpose of an orthogonal map).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::{cpu_f32, tensor, with_f32};

struct Rope {
    /// `[time, d/2]` each.
    cos: Arc<Vec<f32>>,
    sin: Arc<Vec<f32>>,
    /// Multiply the angle by −1: the backward pass.
    inverse: bool,
}

/// Rotate the heads of one position in place: `row` holds whole heads of
/// `d` values, `cos` and `sin` that position's `d / 2` angles; `inverse`
/// rotates by the opposite angles (the backward).
pub(crate) fn rotate_heads(row: &mut [f32], d: usize, cos: &[f32], sin: &[f32], inverse: bool) {
    let half = d / 2;
    let sign = if inverse { -1.0f32 } else { 1.0 };
    for head in row.chunks_mut(d) {
        let (x1, x2) = head.split_at_mut(half);
        for i in 0..half {
            let (a, b, si) = (x1[i], x2[i], sign * sin[i]);
            x1[i] = a * cos[i] - b * si;
            x2[i] = b * cos[i] + a * si;
        }
    }
}

impl Rope {
    fn apply(&self, x: &[f32], dims: &[usize]) -> Result<Vec<f32>> {
        let [_, t, h, d] = dims else { bail!("rope: expected [batch, time, heads, head_dim], got {dims:?}") };
        let (t, h, d) = (*t, *h, *d);
        let half = d / 2;
        if d % 2 != 0 || self.cos.len() != t * half || self.sin.len() != t * half {
            bail!("rope: tables of {} entries do not fit time {t} × head_dim/2 {half}", self.cos.len());
        }
        let mut y = x.to_vec();
        // One task per (batch, position): all heads share that position's angles.
        y.par_chunks_mut(h * d).enumerate().for_each(|(bt, yb)| {
            let p = bt % t;
            rotate_heads(yb, d, &self.cos[p * half..(p + 1) * half], &self.sin[p * half..(p + 1) * half], self.inverse);
        });
        Ok(y)
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "fused-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s, l, "rope")?;
        Ok((CpuStorage::F32(self.apply(x, l.dims())?), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let inv = Rope { cos: self.cos.clone(), sin: self.sin.clone(), inverse: !self.inverse };
        let dx = with_f32(dy, "rope backward", |dy| inv.apply(dy, x.dims()))?;
        Ok(Some(tensor(dx, x.shape())?))
    }
}

/// Rotate `x` (`[batch, time, heads, head_dim]`) by the angles whose cosines and
/// sines are `cos`, `sin` (`[time, head_dim / 2]`, row-major).
pub fn rope(x: &Tensor, cos: Arc<Vec<f32>>, sin: Arc<Vec<f32>>) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Rope { cos, sin, inverse: false })
}
