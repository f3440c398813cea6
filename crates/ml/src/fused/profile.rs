//! Per-op timings of one training step's shapes, the fused ops against the
//! candle compositions they replace (`bench train --profile` prints them).
//!
//! Each op runs alone on random inputs of the shape it has in the model's
//! training step (inputs are variables, so the backward computes what
//! training needs); forward and forward + backward are timed separately, the
//! backward reported as their difference; the median of `reps` runs after one
//! warm-up. Multiplied by the op's count per step, the rows estimate where a
//! step's time goes.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};

use super::reference;
use crate::{MlError, ModelConfig};

/// One op's median seconds per call, naive and fused.
#[derive(Debug, Clone)]
pub struct OpProfile {
    pub op: String,
    /// Calls per training step.
    pub per_step: usize,
    pub naive_forward_s: f64,
    pub naive_backward_s: f64,
    pub fused_forward_s: f64,
    pub fused_backward_s: f64,
    /// The whole-block row: the ops above it together, as one fused op (not
    /// to be added to them).
    pub whole_block: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn random(dims: &[usize], seed: u64) -> Result<Tensor, MlError> {
    let mut rng = crate::rng::Rng::new(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

/// Median (forward, backward) seconds of `f` over `reps` runs.
fn time(
    inputs: &[Tensor],
    reps: usize,
    f: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
) -> Result<(f64, f64), MlError> {
    let vars: Vec<Var> = inputs.iter().map(Var::from_tensor).collect::<Result<_, _>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (mut fwd, mut all) = (Vec::new(), Vec::new());
    for i in 0..=reps {
        let t = Instant::now();
        let y = f(&ts)?;
        let f_s = t.elapsed().as_secs_f64();
        let loss = if y.rank() == 0 { y } else { y.sum_all()? };
        let _g = loss.backward()?;
        let a_s = t.elapsed().as_secs_f64();
        if i > 0 {
            fwd.push(f_s);
            all.push(a_s);
        }
    }
    let (f, a) = (median(fwd), median(all));
    Ok((f, (a - f).max(0.0)))
}

/// Time every op of a LoRA training step of `config` on `batch` × `seq`
/// tokens (LoRA of rank `lora_rank` on q and v), in a rayon pool of `threads`
/// threads.
pub fn profile_ops(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    lora_rank: usize,
    reps: usize,
    threads: usize,
) -> Result<Vec<OpProfile>, MlError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| MlError::Config(format!("a pool of {threads} threads: {e}")))?;
    pool.install(|| profile_in_pool(config, batch, seq, lora_rank.max(1), reps))
}

fn profile_in_pool(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    lora_rank: usize,
    reps: usize,
) -> Result<Vec<OpProfile>, MlError> {
    let c = config;
    let (b, t, d, layers) = (batch, seq, c.hidden_size, c.num_hidden_layers);
    let (nh, nkv, hd, inter, vocab) =
        (c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size, c.vocab_size);
    let reps = reps.max(1);
    let mut out = Vec::new();
    let mut row = |op: String,
                   per_step: usize,
                   inputs: Vec<Tensor>,
                   naive: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
                   fused: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>|
     -> Result<(), MlError> {
        let (nf, nb) = time(&inputs, reps, naive)?;
        let (ff, fb) = time(&inputs, reps, fused)?;
        let whole_block = op.starts_with(BLOCK_ROW);
        out.push(OpProfile {
            op,
            per_step,
            naive_forward_s: nf,
            naive_backward_s: nb,
            fused_forward_s: ff,
            fused_backward_s: fb,
            whole_block,
        });
        Ok(())
    };
    let x = random(&[b, t, d], 1)?;
    let w = random(&[d], 2)?.affine(0.1, 1.0)?;
    let eps = c.rms_norm_eps;
    row(
        format!("rms norm [{b}, {t}, {d}]"),
        2 * layers + 1,
        vec![x.clone()],
        &|a| reference::rms_norm(&a[0], &w, eps),
        &|a| super::rms_norm(&a[0], &w, eps),
    )?;
    let half = hd / 2;
    let (cos, sin): (Vec<f32>, Vec<f32>) =
        (0..t * half).map(|i| ((i as f32 * 0.01).cos(), (i as f32 * 0.01).sin())).unzip();
    let cos_t = Tensor::from_slice(&cos, (t, half), &Device::Cpu)?;
    let sin_t = Tensor::from_slice(&sin, (t, half), &Device::Cpu)?;
    let (cos_full, sin_full) = (Tensor::cat(&[&cos_t, &cos_t], 1)?, Tensor::cat(&[&sin_t, &sin_t], 1)?);
    let (cos, sin) = (std::sync::Arc::new(cos), std::sync::Arc::new(sin));
    for (name, heads) in [("q", nh), ("k", nkv)] {
        row(
            format!("rope {name} [{b}, {t}, {heads}, {hd}]"),
            layers,
            vec![random(&[b, t, heads, hd], 3)?],
            &|a| reference::rope(&a[0].transpose(1, 2)?, &cos_full, &sin_full),
            &|a| super::rope(&a[0], cos.clone(), sin.clone()),
        )?;
    }
    let mask = reference::causal_mask(t)?;
    row(
        format!("attention {nh}/{nkv} heads, t {t}, d {hd}"),
        layers,
        vec![random(&[b, t, nh, hd], 4)?, random(&[b, t, nkv, hd], 5)?, random(&[b, t, nkv, hd], 6)?],
        &|a| {
            reference::attention(&a[0].transpose(1, 2)?, &a[1].transpose(1, 2)?, &a[2].transpose(1, 2)?, &mask)?
                .transpose(1, 2)?
                .reshape((b, t, nh * hd))
        },
        &|a| super::causal_attention(&a[0], &a[1], &a[2])?.reshape((b, t, nh * hd)),
    )?;
    row(
        format!("swiglu [{b}, {t}, {inter}]"),
        layers,
        vec![random(&[b, t, inter], 7)?, random(&[b, t, inter], 8)?],
        &|a| reference::swiglu(&a[0], &a[1]),
        &|a| super::swiglu(&a[0], &a[1]),
    )?;
    // q and v carry the LoRA pair (the bench's targets); k and o are plain frozen layers.
    for (name, n_in, n_out, count, lora) in [
        ("q + LoRA", d, nh * hd, 1, true),
        ("o", nh * hd, d, 1, false),
        ("k", d, nkv * hd, 1, false),
        ("v + LoRA", d, nkv * hd, 1, true),
        ("gate, up", d, inter, 2, false),
        ("down", inter, d, 1, false),
    ] {
        let wt = (random(&[n_out, n_in], 9)? * 0.05)?;
        let x = random(&[b, t, n_in], 10)?;
        let s = 2.0;
        if lora {
            let (a, bm) = ((random(&[lora_rank, n_in], 14)? * 0.1)?, (random(&[n_out, lora_rank], 15)? * 0.1)?);
            row(
                format!("linear {name} {n_in}→{n_out} r {lora_rank}"),
                count * layers,
                vec![x, a, bm],
                &|v| {
                    let y = v[0].reshape(((), n_in))?.matmul(&wt.t()?)?.reshape((b, t, n_out))?;
                    let dd = v[0].broadcast_matmul(&v[1].t()?)?.broadcast_matmul(&v[2].t()?)?;
                    y + (dd * s)?
                },
                &|v| super::lora_linear(&v[0], &wt, &v[1], &v[2], s),
            )?;
        } else {
            row(
                format!("linear {name} {n_in}→{n_out}"),
                count * layers,
                vec![x],
                &|v| v[0].reshape(((), n_in))?.matmul(&wt.t()?)?.reshape((b, t, n_out)),
                &|v| super::frozen_linear(&v[0], &wt),
            )?;
        }
    }
    block_row(&mut row, c, (b, t), lora_rank, (&cos, &sin), (&cos_full, &sin_full), &mask)?;
    let rows = b * t;
    let head = (random(&[vocab, d], 11)? * 0.05)?;
    let targets: Vec<u32> = (0..rows).map(|i| ((i * 7919) % vocab) as u32).collect();
    let weights: Vec<f32> = (0..rows).map(|i| if i % t == t - 1 { 0.0 } else { 1.0 / (b * (t - 1)) as f32 }).collect();
    row(
        format!("head + cross-entropy {rows}×{d} → {vocab}"),
        1,
        vec![random(&[rows, d], 12)?],
        &|a| reference::linear_cross_entropy(&a[0], &head, &targets, &weights),
        &|a| super::linear_cross_entropy(&a[0], &head, &targets, &weights),
    )?;
    row(
        format!("residual add [{b}, {t}, {d}]"),
        2 * layers,
        vec![x.clone(), random(&[b, t, d], 13)?],
        &|a| &a[0] + &a[1],
        &|a| super::add(&a[0], &a[1]),
    )?;
    Ok(out)
}

/// The name the whole-block row starts with.
const BLOCK_ROW: &str = "whole block";

type RowFn<'a> = dyn FnMut(
        String,
        usize,
        Vec<Tensor>,
        &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
        &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    ) -> Result<(), MlError>
    + 'a;

/// A whole transformer block with LoRA on q and v: the op-by-op candle
/// composition against the fused block op (what the training step runs).
fn block_row(
    row: &mut RowFn<'_>,
    c: &ModelConfig,
    (b, t): (usize, usize),
    r: usize,
    (cos, sin): (&std::sync::Arc<Vec<f32>>, &std::sync::Arc<Vec<f32>>),
    (cos_full, sin_full): (&Tensor, &Tensor),
    mask: &Tensor,
) -> Result<(), MlError> {
    use super::block::{Block, BlockLoraOp};
    use super::{Dims, PartSpec, Proj, RopeTables};
    let (d, nh, nkv, hd, inter) =
        (c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size);
    let w = |o: usize, i: usize, seed: u64| -> Result<Tensor, MlError> { Ok((random(&[o, i], seed)? * 0.05)?) };
    let (wq, wk, wv, wo) = (w(nh * hd, d, 20)?, w(nkv * hd, d, 21)?, w(nkv * hd, d, 22)?, w(d, nh * hd, 23)?);
    let (wg, wu, wd) = (w(inter, d, 24)?, w(inter, d, 25)?, w(d, inter, 26)?);
    let n1 = random(&[d], 27)?.affine(0.1, 1.0)?;
    let n2 = random(&[d], 28)?.affine(0.1, 1.0)?;
    let (eps, scale) = (c.rms_norm_eps, 2.0);
    // The flat LoRA buffer: A_q, B_q, A_v, B_v.
    let (aq, bq, av) = (r * d, nh * hd * r, r * d);
    let flat_len = aq + bq + av + nkv * hd * r;
    let flat = (random(&[flat_len], 29)? * 0.1)?;
    let fused = |a: &[Tensor]| -> candle_core::Result<Tensor> {
        let rope = RopeTables { cos: cos.clone(), sin: sin.clone(), head_dim: hd };
        let spec = |w, lora, rope| PartSpec { weight: w, bias: None, lora, rope };
        let qkv = Proj::new(
            &[spec(&wq, true, true), spec(&wk, false, true), spec(&wv, true, false)],
            r,
            scale,
            Some(rope),
            0,
        )?;
        let base = qkv.lora_len;
        let projs = [
            qkv,
            Proj::new(&[spec(&wo, false, false)], r, scale, None, base)?,
            Proj::new(&[spec(&wg, false, false), spec(&wu, false, false)], r, scale, None, base)?,
            Proj::new(&[spec(&wd, false, false)], r, scale, None, base)?,
        ];
        let vec = |t: &Tensor| t.to_vec1::<f32>();
        let dims = Dims { b, t, nh, nkv, d: hd };
        let block = Block::new(vec(&n1)?, vec(&n2)?, eps as f32, projs, dims, inter)?;
        a[0].apply_op2(&a[1], BlockLoraOp(block))
    };
    let naive = |a: &[Tensor]| -> candle_core::Result<Tensor> {
        let (x, f) = (&a[0], &a[1]);
        let pair = |off: usize, out: usize| -> candle_core::Result<(Tensor, Tensor)> {
            Ok((f.narrow(0, off, r * d)?.reshape((r, d))?, f.narrow(0, off + r * d, out * r)?.reshape((out, r))?))
        };
        let lin = |h: &Tensor, w: &Tensor| h.broadcast_matmul(&w.t()?);
        let lora = |h: &Tensor, w: &Tensor, (la, lb): (Tensor, Tensor)| -> candle_core::Result<Tensor> {
            lin(h, w)? + (lin(&lin(h, &la)?, &lb)? * scale)?
        };
        let h = reference::rms_norm(x, &n1, eps)?;
        let heads = |y: Tensor, n: usize| y.reshape((b, t, n, hd))?.transpose(1, 2);
        let q = reference::rope(&heads(lora(&h, &wq, pair(0, nh * hd)?)?, nh)?, cos_full, sin_full)?;
        let k = reference::rope(&heads(lin(&h, &wk)?, nkv)?, cos_full, sin_full)?;
        let v = heads(lora(&h, &wv, pair(aq + bq, nkv * hd)?)?, nkv)?;
        let att = reference::attention(&q, &k, &v, mask)?.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        let x1 = (x + lin(&att, &wo)?)?;
        let h2 = reference::rms_norm(&x1, &n2, eps)?;
        let m = reference::swiglu(&lin(&h2, &wg)?, &lin(&h2, &wu)?)?;
        x1 + lin(&m, &wd)?
    };
    row(
        format!("{BLOCK_ROW}, LoRA r {r} on q, v"),
        c.num_hidden_layers,
        vec![random(&[b, t, d], 30)?, flat],
        &naive,
        &fused,
    )
}
