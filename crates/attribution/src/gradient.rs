//! The gradient part of a record: TracIn over a model's kept LoRA checkpoints
//! with projected gradients, against the sketches ModelFactory stored for
//! every training row (`factory::Sketches`).

use std::collections::BTreeMap;

use factory::Sketches;
use ml::{Checkpoint, LoraAdapter, LoraConfig, Model};
use primitives::B256;
use runtime::models::ModelRecord;
use serde_json::Value;

/// The gradient part's reproducibility bound, per credit, in ppm.
pub const GRADIENT_TOLERANCE_PPM: u32 = 2_000;

/// Everything the gradient part needs for one model.
pub struct GradientInputs {
    pub sketches: Sketches,
    /// (learning rate, adapter) at each kept checkpoint, in the sketches' order.
    pub checkpoints: Vec<(f64, LoraAdapter)>,
}

impl GradientInputs {
    /// Load a model's kept checkpoints and sketches through `blob` (the blob store, or HTTP for a verifier).
    pub fn load(
        r: &ModelRecord,
        model: &ml::ModelConfig,
        blob: &dyn Fn(&B256) -> Result<Vec<u8>, String>,
    ) -> Result<Option<GradientInputs>, String> {
        if r.sketchHash == B256::ZERO || r.checkpointHashes.is_empty() {
            return Ok(None);
        }
        let m: Value = serde_json::from_slice(&r.metrics).map_err(|_| "metrics name no artefacts".to_string())?;
        let cfg_hash: B256 =
            m["artefacts"]["adapterConfig"].as_str().and_then(|s| s.parse().ok()).ok_or("no adapter config")?;
        let lora =
            LoraConfig::from_peft_json(&String::from_utf8_lossy(&blob(&cfg_hash)?)).map_err(|e| e.to_string())?;
        let sketches = Sketches::parse(&blob(&r.sketchHash)?).map_err(|e| e.to_string())?;
        let mut checkpoints = Vec::new();
        for (h, lr_nano) in r.checkpointHashes.iter().zip(&r.checkpointLearningRates) {
            let ck = Checkpoint::from_bytes(&blob(h)?, &lora, model).map_err(|e| e.to_string())?;
            checkpoints.push((*lr_nano as f64 / 1e9, ck.adapter));
        }
        Ok(Some(GradientInputs { sketches, checkpoints }))
    }
}

/// TracIn with projected gradients; scores per contribution (positives only).
pub fn gradient_scores(model: &Model, g: &GradientInputs, response: &[u32]) -> Result<BTreeMap<u64, f64>, String> {
    let mut out = BTreeMap::new();
    if response.len() < 2 || g.checkpoints.is_empty() {
        return Ok(out);
    }
    let mask: Vec<bool> = (0..response.len()).map(|i| i > 0).collect();
    let mut proj = Vec::with_capacity(g.checkpoints.len());
    for (_, a) in &g.checkpoints {
        let grad = ml::sequence_gradients(model, a, response, &mask).map_err(|e| e.to_string())?;
        proj.push(ml::project(&grad, g.sketches.seed, g.sketches.k));
    }
    for (row, _, vs) in &g.sketches.rows {
        let mut s = 0.0f64;
        for (c, v) in vs.iter().enumerate() {
            let lr = g.checkpoints.get(c).map(|x| x.0).unwrap_or(0.0);
            let dot: f64 = v.iter().zip(&proj[c]).map(|(a, b)| *a as f64 * *b as f64).sum();
            s += lr * dot;
        }
        if s > 0.0 {
            *out.entry(row.contribution).or_default() += s;
        }
    }
    Ok(out)
}
