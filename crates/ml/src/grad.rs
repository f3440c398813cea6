//! Gradients for attribution (DESIGN.md, "Gradients for attribution").
//!
//! [`sequence_gradients`] is the gradient of one sequence's mean next-token loss
//! with respect to an adapter's LoRA weights at a checkpoint, flattened in the
//! canonical order (layer, target in `Target` order, A then B, row-major).
//! [`project`] maps such a gradient to k dimensions with a random sign matrix
//! that anyone can regenerate from the seed, bit for bit:
//!
//! - for output j (0 ≤ j < k) and input i (0 ≤ i < d), let c = ⌊i / 64⌋ and
//!   w = splitmix64(seed ⊕ splitmix64((j << 32) | c)); the entry is −1 if bit
//!   (i mod 64) of w is 1, else +1;
//! - yⱼ = (Σᵢ entry(j, i) · gᵢ, summed in f64 in increasing i) / √k, rounded to f32.
//!
//! Inner products of projected gradients estimate those of the full gradients
//! (Johnson–Lindenstrauss), which is all TracIn-style influence needs.

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

/// Project `grad` to `k` dimensions with the seeded sign matrix described in the module docs.
pub fn project(grad: &[f32], seed: u64, k: usize) -> Vec<f32> {
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
}
