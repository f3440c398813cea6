//! SwiGLU's gate, `silu(g) · u`, replacing silu → mul (and silu's own chain of
//! exp, add, div, mul in its backward). The backward recomputes σ(g).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::simd::exp_in_place;
use super::{ROW_TASK, cpu_f32, tensor, with_f32};

/// Elements per rayon task.
const CHUNK: usize = 4096;

struct SwiGlu;

/// `out = σ(x) = 1 / (1 + e⁻ˣ)`, with the vectorised exp.
fn sigmoid_into(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = -x;
    }
    exp_in_place(out);
    for o in out.iter_mut() {
        *o = 1.0 / (1.0 + *o);
    }
}

/// `y = silu(g) · u` elementwise.
fn forward_chunk(g: &[f32], u: &[f32], y: &mut [f32]) {
    sigmoid_into(g, y);
    for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
        *y *= g * u;
    }
}

/// dg = dy·u·σ(g)(1 + g(1 − σ(g))), du = dy·silu(g), elementwise.
fn backward_chunk(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
    // σ(g) into du first, then both gradients from it.
    sigmoid_into(g, du);
    for i in 0..g.len() {
        let s = du[i];
        dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        du[i] = dy[i] * g[i] * s;
    }
}

/// SwiGLU of rows laid out gate | up (`[rows, 2 · inter]`, the fused
/// gate/up projection's output) into `y` (`[rows, inter]`).
pub(crate) fn packed_forward(gu: &[f32], inter: usize, y: &mut [f32]) {
    y.par_chunks_mut(inter * ROW_TASK).zip(gu.par_chunks(2 * inter * ROW_TASK)).for_each(|(yb, gb)| {
        for (y, gu) in yb.chunks_mut(inter).zip(gb.chunks(2 * inter)) {
            let (g, u) = gu.split_at(inter);
            forward_chunk(g, u, y);
        }
    });
}

/// The backward of [`packed_forward`]: the gradient of the packed rows.
pub(crate) fn packed_backward(gu: &[f32], inter: usize, dy: &[f32], dgu: &mut [f32]) {
    dgu.par_chunks_mut(2 * inter * ROW_TASK)
        .zip(gu.par_chunks(2 * inter * ROW_TASK).zip(dy.par_chunks(inter * ROW_TASK)))
        .for_each(|(db, (gb, dyb))| {
            for ((d, gu), dy) in db.chunks_mut(2 * inter).zip(gb.chunks(2 * inter)).zip(dyb.chunks(inter)) {
                let (g, u) = gu.split_at(inter);
                let (dg, du) = d.split_at_mut(inter);
                backward_chunk(g, u, dy, dg, du);
            }
        });
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            bail!("swiglu: gate {:?} and up {:?} differ in shape", l1.dims(), l2.dims());
        }
        let g = cpu_f32(s1, l1, "swiglu gate")?;
        let u = cpu_f32(s2, l2, "swiglu up")?;
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(|(y, (g, u))| forward_chunk(g, u, y));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, g: &Tensor, u: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = with_f32(g, "swiglu backward", |g| {
            with_f32(u, "swiglu backward", |u| {
                with_f32(dy, "swiglu backward", |dy| {
                    let mut dg = vec![0f32; g.len()];
                    let mut du = vec![0f32; g.len()];
                    dg.par_chunks_mut(CHUNK)
                        .zip(du.par_chunks_mut(CHUNK))
                        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)))
                        .for_each(|((dg, du), ((g, u), dy))| backward_chunk(g, u, dy, dg, du));
                    Ok((dg, du))
                })
            })
        })?;
        Ok((Some(tensor(dg, g.shape())?), Some(tensor(du, u.shape())?)))
    }
}

/// `silu(g) · u` elementwise; `g` and `u` have one shape.
pub fn swiglu(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op2(&u.contiguous()?, SwiGlu)
}

/// `x + y` on rayon's threads: a residual add, whose backward hands the
/// incoming gradient to both sides without computing anything. candle's own
/// add runs on its separate elementwise pool, which on a small machine
/// competes with rayon's gemm threads for the same cores.
struct Add;

impl CustomOp2 for Add {
    fn name(&self) -> &'static str {
        "fused-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            bail!("add: {:?} and {:?} differ in shape", l1.dims(), l2.dims());
        }
        let (x, y) = (cpu_f32(s1, l1, "add")?, cpu_f32(s2, l2, "add")?);
        let mut z = vec![0f32; x.len()];
        z.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))).for_each(|(z, (x, y))| {
            for ((z, &x), &y) in z.iter_mut().zip(x).zip(y) {
                *z = x + y;
            }
        });
        Ok((CpuStorage::F32(z), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, _res: &Tensor, dz: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(dz.clone()), Some(dz.clone())))
    }
}

/// `x + y` elementwise (one shape), computed on rayon's pool.
pub fn add(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&y.contiguous()?, Add)
}
