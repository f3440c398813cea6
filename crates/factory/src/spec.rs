//! What a training job asks for. JSON at the edge (HTTP, CLI), checked here.

use serde::{Deserialize, Serialize};

use crate::FactoryError;
use ml::{LoraConfig, Target};

/// One Datanet version a job trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatanetVersion {
    pub datanet: u64,
    pub version: u64,
}

/// A LoRA fine-tuning job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// A name for the model this job makes.
    #[serde(default)]
    pub name: String,
    /// The base model to fine-tune, by the model id of the base model this node
    /// serves (`m1`) or by its base model hash (`0x…`, 64 hex digits); none = the
    /// node's base model. Never a path: the node loads only the base it serves.
    #[serde(default)]
    pub base_model: Option<String>,
    pub datanets: Vec<DatanetVersion>,
    #[serde(default = "d_rank")]
    pub rank: usize,
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub dropout: f64,
    /// PEFT module names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    #[serde(default = "d_targets")]
    pub targets: Vec<String>,
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    #[serde(default)]
    pub warmup_steps: u64,
    /// Passes over the training rows (ignored when `steps` is set).
    #[serde(default = "d_epochs")]
    pub epochs: u64,
    /// Optimiser steps in all (overrides `epochs`).
    #[serde(default)]
    pub steps: Option<u64>,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_accum")]
    pub grad_accum: usize,
    #[serde(default = "d_seq")]
    pub max_seq_len: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_val")]
    pub validation_percent: u32,
    /// LoRA checkpoints kept for attribution (evenly spaced, the last at the end).
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    /// Dimensions of the projected per-row gradients.
    #[serde(default = "d_k")]
    pub sketch_k: usize,
    /// Optimiser steps between resume checkpoints.
    #[serde(default = "d_every")]
    pub checkpoint_every: u64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
}

fn d_rank() -> usize {
    8
}
fn d_alpha() -> f64 {
    16.0
}
fn d_targets() -> Vec<String> {
    vec!["q_proj".into(), "v_proj".into()]
}
fn d_lr() -> f64 {
    2e-3
}
fn d_epochs() -> u64 {
    2
}
fn d_batch() -> usize {
    8
}
fn d_accum() -> usize {
    1
}
fn d_seq() -> usize {
    128
}
fn d_val() -> u32 {
    10
}
fn d_keep() -> usize {
    3
}
fn d_k() -> usize {
    256
}
fn d_every() -> u64 {
    20
}
fn d_wd() -> f64 {
    0.0
}

impl JobSpec {
    /// A spec with defaults for the given versions.
    pub fn new(datanets: Vec<DatanetVersion>) -> JobSpec {
        serde_json::from_value(serde_json::json!({ "datanets": datanets })).expect("defaults")
    }

    /// An upper bound of the optimiser steps this job runs over `rows` training
    /// rows: `steps` if set, else `epochs` passes over at most `rows` packed
    /// sequences (packing keeps rows whole, so never more sequences than rows).
    pub fn max_steps(&self, rows: u64) -> u64 {
        let per_step = (self.batch_size.max(1) as u64).saturating_mul(self.grad_accum.max(1) as u64);
        self.steps.unwrap_or_else(|| self.epochs.saturating_mul(rows).div_ceil(per_step).max(1))
    }

    /// Everything that can be checked without the model and the data.
    pub fn validate(&self) -> Result<(), FactoryError> {
        let bad = |m: String| Err(FactoryError::Spec(m));
        if self.datanets.is_empty() {
            return bad("a job needs at least one Datanet version".into());
        }
        if self.datanets.iter().any(|d| d.version == 0) {
            return bad("Datanet versions start at 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad(format!("learningRate {} must be in (0, 1)", self.learning_rate));
        }
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("batchSize and gradAccum must be at least 1".into());
        }
        if self.max_seq_len < 8 {
            return bad(format!("maxSeqLen {} is too short (at least 8)", self.max_seq_len));
        }
        if self.validation_percent > 50 {
            return bad(format!("validationPercent {} is above 50", self.validation_percent));
        }
        if self.steps == Some(0) || (self.steps.is_none() && self.epochs == 0) {
            return bad("a job needs at least one step".into());
        }
        if self.keep_checkpoints == 0 || self.keep_checkpoints > 16 {
            return bad("keepCheckpoints must be 1..=16".into());
        }
        if self.sketch_k == 0 || self.sketch_k > 8192 {
            return bad("sketchK must be 1..=8192".into());
        }
        if self.checkpoint_every == 0 {
            return bad("checkpointEvery must be at least 1".into());
        }
        self.lora()?;
        Ok(())
    }

    pub fn lora(&self) -> Result<LoraConfig, FactoryError> {
        let mut targets = Vec::new();
        for t in &self.targets {
            targets.push(Target::from_module(t).ok_or_else(|| {
                FactoryError::Spec(format!(
                    "unknown LoRA target {t:?}; use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
                ))
            })?);
        }
        targets.sort();
        targets.dedup();
        if self.rank == 0 {
            return Err(FactoryError::Spec("rank must be at least 1".into()));
        }
        Ok(LoraConfig { r: self.rank, lora_alpha: self.alpha, lora_dropout: self.dropout, target_modules: targets })
    }

    /// The canonical bytes of the hyperparameters recorded on-chain: this spec as
    /// JSON with sorted keys and no whitespace.
    pub fn hyperparams_bytes(&self) -> Vec<u8> {
        let v = serde_json::to_value(self).expect("spec serialises");
        canonical_json(&v).into_bytes()
    }
}

/// JSON with object keys sorted and no whitespace: the same value, the same bytes.
pub fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::Value::String(k.clone()), canonical_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}
