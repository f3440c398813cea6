//! Gradients for attribution (DESIGN.md, "Gradients for attribution").
//!
//! [`sequence_gradients`] is the gradient of one sequence's mean next-token loss
//! with respect to an adapter's LoRA weights at a checkpoint, flattened in the
//! canonical order (layer, target in `Target` order, A then B, row-major).
//! [`project`] maps such a gradient to k dimensions with one of two
//! [`Projection`]s that anyone can regenerate from the seed, bit for bit:
//!
//! - **`count-sketch` (id 1, the default since record version 4)**: O(d). For
//!   input i (0 ≤ i < d), let c = ⌊i / 4⌋, w = splitmix64(seed ⊕
//!   splitmix64(c ⊕ 2^63)) and h = (w >> 16·(i mod 4)) & 0xFFFF; the input goes
//!   to bucket b(i) = ((h >> 1) · k) >> 15 with sign −1 if h & 1 = 1, else +1.
//!   yⱼ = Σ over i with b(i) = j of sign(i) · gᵢ, summed in f64 in increasing i,
//!   rounded to f32 (no scaling: E⟨Sa, Sb⟩ = ⟨a, b⟩). k ≤ 2^15.
//! - **`dense-sign` (id 0, records up to version 3)**: O(k·d). For output j
//!   (0 ≤ j < k) and input i, let c = ⌊i / 64⌋ and w = splitmix64(seed ⊕
//!   splitmix64((j << 32) | c)); the entry is −1 if bit (i mod 64) of w is 1,
//!   else +1; yⱼ = (Σᵢ entry(j, i) · gᵢ, summed in f64 in increasing i) / √k,
//!   rounded to f32.
//!
//! Inner products (and so cosines) of projected gradients estimate those of
//! the full gradients (Johnson–Lindenstrauss; for the count sketch, Charikar
//! et al. 2002 and Weinberger et al. 2009), which is all the influence
//! estimates need.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::MlError;
use crate::lora::LoraAdapter;
use crate::model::{BaseGrad, Model};
use crate::rng::splitmix64;

/// The flattened LoRA gradient of the mean loss of `tokens` over the positions
/// whose `target_mask` is true (position i's target is token i; position 0 is
/// never a target), at the adapter weights `checkpoint`.
pub fn sequence_gradients(
    model: &Model,
    checkpoint: &LoraAdapter,
    tokens: &[u32],
    target_mask: &[bool],
) -> Result<Vec<f32>, MlError> {
    if tokens.len() != target_mask.len() {
        return Err(MlError::Config(format!("{} tokens but {} mask entries", tokens.len(), target_mask.len())));
    }
    model.check_adapter(checkpoint)?;
    let vars = checkpoint.to_vars()?;
    let t = tokens.len();
    let toks = Tensor::from_slice(tokens, (1, t), &Device::Cpu)?;
    let mask: Vec<f32> = target_mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, (1, t), &Device::Cpu)?;
    let loss = model.loss(&toks, &mask, Some(&vars), BaseGrad::Frozen, None)?;
    let grads = loss.backward()?;
    let mut out = Vec::with_capacity(checkpoint.parameter_count());
    for v in vars.all() {
        match grads.get(v.as_tensor()) {
            Some(g) => out.extend(g.flatten_all()?.to_vec1::<f32>()?),
            None => out.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
        }
    }
    Ok(out)
}

/// [`sequence_gradients`] of several sequences `(tokens, target_mask)` from one
/// batched backward pass: padded to the longest, the loss the sum of each
/// sequence's mean loss, each sequence's LoRA gradient taken apart inside the
/// fused backward (rows of different sequences never meet in a block). Equal
/// to `sequence_gradients` of each sequence up to the order of float sums;
/// a model the fused path cannot take (bf16 or quantized weights) runs one
/// pass per sequence instead.
pub fn batch_sequence_gradients(
    model: &Model,
    checkpoint: &LoraAdapter,
    rows: &[(&[u32], &[bool])],
) -> Result<Vec<Vec<f32>>, MlError> {
    for (tokens, mask) in rows {
        if tokens.len() != mask.len() {
            return Err(MlError::Config(format!("{} tokens but {} mask entries", tokens.len(), mask.len())));
        }
    }
    if rows.len() < 2 || !model.dense_f32_blocks() {
        // One batch-1 pass per sequence, in parallel (a short pass leaves cores idle).
        return rows.par_iter().map(|(t, m)| sequence_gradients(model, checkpoint, t, m)).collect();
    }
    model.check_adapter(checkpoint)?;
    let vars = checkpoint.to_vars()?;
    let (b, t) = (rows.len(), rows.iter().map(|r| r.0.len()).max().unwrap_or(0));
    let mut toks = vec![0u32; b * t];
    let mut mask = vec![0f32; b * t];
    for (q, (tokens, m)) in rows.iter().enumerate() {
        toks[q * t..q * t + tokens.len()].copy_from_slice(tokens);
        for (i, &on) in m.iter().enumerate() {
            mask[q * t + i] = if on { 1.0 } else { 0.0 };
        }
    }
    let toks = Tensor::from_vec(toks, (b, t), &Device::Cpu)?;
    let mask = Tensor::from_vec(mask, (b, t), &Device::Cpu)?;
    let per = std::sync::Arc::new(crate::fused::block::PerSequence::default());
    model.per_sequence_loss(&toks, &mask, &vars, &per)?.backward()?;
    let layers = per.layers.lock().map_err(|_| MlError::Config("per-sequence gradients: poisoned".into()))?;
    let mut out: Vec<Vec<f32>> = (0..b).map(|_| Vec::with_capacity(checkpoint.parameter_count())).collect();
    for buf in layers.iter().flatten() {
        let len = buf.len() / b;
        for (q, g) in out.iter_mut().enumerate() {
            g.extend_from_slice(&buf[q * len..(q + 1) * len]);
        }
    }
    if out.iter().any(|g| g.len() != checkpoint.parameter_count()) {
        return Err(MlError::Config("per-sequence gradients do not cover the adapter".into()));
    }
    Ok(out)
}

/// A gradient projection, named in the sketch blob and the attribution
/// record by its id (see the module docs for each one's definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// id 0: the dense ±1 matrix, k·d work.
    DenseSign,
    /// id 1: the count sketch, d work.
    CountSketch,
}

impl Projection {
    /// The largest k a count sketch takes (its bucket has 15 bits).
    pub const MAX_COUNT_SKETCH_K: usize = 1 << 15;

    pub fn id(self) -> u32 {
        match self {
            Projection::DenseSign => 0,
            Projection::CountSketch => 1,
        }
    }

    pub fn from_id(id: u32) -> Option<Projection> {
        match id {
            0 => Some(Projection::DenseSign),
            1 => Some(Projection::CountSketch),
            _ => None,
        }
    }

    /// Its name in records and docs.
    pub fn name(self) -> &'static str {
        match self {
            Projection::DenseSign => "dense-sign",
            Projection::CountSketch => "count-sketch",
        }
    }

    /// Project `grad` to `k` dimensions with `seed`.
    pub fn apply(self, grad: &[f32], seed: u64, k: usize) -> Vec<f32> {
        match self {
            Projection::DenseSign => dense_sign(grad, seed, k),
            Projection::CountSketch => count_sketch(grad, seed, k),
        }
    }
}

/// Project `grad` to `k` dimensions with the seeded dense sign matrix (id 0).
pub fn project(grad: &[f32], seed: u64, k: usize) -> Vec<f32> {
    dense_sign(grad, seed, k)
}

fn dense_sign(grad: &[f32], seed: u64, k: usize) -> Vec<f32> {
    let scale = 1.0 / (k as f64).sqrt();
    (0..k)
        .into_par_iter()
        .map(|j| {
            let mut acc = 0.0f64;
            for (c, chunk) in grad.chunks(64).enumerate() {
                let w = splitmix64(seed ^ splitmix64(((j as u64) << 32) | c as u64));
                for (b, &g) in chunk.iter().enumerate() {
                    if (w >> b) & 1 == 1 {
                        acc -= g as f64;
                    } else {
                        acc += g as f64;
                    }
                }
            }
            (acc * scale) as f32
        })
        .collect()
}

/// The count sketch (id 1). `k` must be 1..=2^15 (larger k is clamped, which
/// callers prevent: the job spec and the sketch blob check it).
fn count_sketch(grad: &[f32], seed: u64, k: usize) -> Vec<f32> {
    let k = k.clamp(1, Projection::MAX_COUNT_SKETCH_K) as u64;
    let mut acc = vec![0.0f64; k as usize];
    for (c, chunk) in grad.chunks(4).enumerate() {
        let w = splitmix64(seed ^ splitmix64(c as u64 ^ (1 << 63)));
        for (q, &g) in chunk.iter().enumerate() {
            let h = (w >> (16 * q)) & 0xFFFF;
            let bucket = (((h >> 1) * k) >> 15) as usize;
            // Branch-free: the sign bit of g flipped when h is odd (exactly
            // −g, so the sums are those of the definition, bit for bit).
            let signed = f64::from_bits((g as f64).to_bits() ^ ((h & 1) << 63));
            acc[bucket] += signed;
        }
    }
    acc.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_is_seeded_and_preserves_inner_products_roughly() {
        let a: Vec<f32> = (0..3000).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b: Vec<f32> = (0..3000).map(|i| ((i * 104729) % 97) as f32 / 48.0 - 1.0).collect();
        let pa = project(&a, 7, 512);
        assert_eq!(pa, project(&a, 7, 512));
        assert_ne!(pa, project(&a, 8, 512));
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (*p as f64) * (*q as f64)).sum::<f64>();
        let pb = project(&b, 7, 512);
        let (full, proj) = (dot(&a, &a), dot(&pa, &pa));
        assert!((proj / full - 1.0).abs() < 0.2, "norm ratio {}", proj / full);
        let cos_full = dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt();
        let cos_proj = dot(&pa, &pb) / (dot(&pa, &pa) * dot(&pb, &pb)).sqrt();
        assert!((cos_full - cos_proj).abs() < 0.15, "{cos_full} vs {cos_proj}");
    }

    #[test]
    fn count_sketch_is_seeded_linear_and_preserves_inner_products_roughly() {
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (*p as f64) * (*q as f64)).sum::<f64>();
        let cos = |x: &[f32], y: &[f32]| dot(x, y) / (dot(x, x) * dot(y, y)).sqrt();
        let a: Vec<f32> = (0..40_000).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b: Vec<f32> =
            a.iter().enumerate().map(|(i, x)| 0.6 * x + (((i * 104729) % 97) as f32 / 48.0 - 1.0)).collect();
        let cs = Projection::CountSketch;
        let pa = cs.apply(&a, 7, 512);
        assert_eq!(pa, cs.apply(&a, 7, 512));
        assert_ne!(pa, cs.apply(&a, 8, 512));
        // Linear: the sketch of a sum is the sum of the sketches (up to rounding).
        let ab: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let (pb, pab) = (cs.apply(&b, 7, 512), cs.apply(&ab, 7, 512));
        assert!(pab.iter().zip(pa.iter().zip(&pb)).all(|(s, (x, y))| (s - (x + y)).abs() < 1e-2));
        // Every input lands in exactly one bucket: a one-hot input is ±1 in one place.
        let mut e = vec![0.0f32; 40_000];
        e[12_345] = 1.0;
        let pe = cs.apply(&e, 7, 512);
        assert_eq!(pe.iter().filter(|x| **x != 0.0).count(), 1);
        assert_eq!(pe.iter().map(|x| x.abs()).sum::<f32>(), 1.0);
        assert!((dot(&pa, &pa) / dot(&a, &a) - 1.0).abs() < 0.2);
        assert!((cos(&a, &b) - cos(&pa, &pb)).abs() < 0.1, "{} vs {}", cos(&a, &b), cos(&pa, &pb));
        // Ids round-trip; unknown ids are refused.
        for p in [Projection::DenseSign, Projection::CountSketch] {
            assert_eq!(Projection::from_id(p.id()), Some(p));
        }
        assert_eq!(Projection::from_id(2), None);
        assert_eq!(project(&a[..300], 3, 16), Projection::DenseSign.apply(&a[..300], 3, 16));
    }

    /// The count sketch's definition, pinned: a change to the hashing or the
    /// order of summation changes these values and every stored sketch.
    #[test]
    fn count_sketch_is_pinned() {
        let g: Vec<f32> = (0..10).map(|i| i as f32 - 4.5).collect();
        let p = Projection::CountSketch.apply(&g, 42, 4);
        let bits: Vec<u32> = p.iter().map(|x| x.to_bits()).collect();
        // Computed from the module docs' definition by an independent script.
        assert_eq!(p, vec![2.5, -1.0, 13.5, -7.0]);
        assert_eq!(bits, [0x4020_0000, 0xbf80_0000, 0x4158_0000, 0xc0e0_0000]);
    }
}
