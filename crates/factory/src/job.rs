//! Running one job: train with checkpoints (resumable after a crash or a
//! restart, to the same bytes), evaluate, keep LoRA checkpoints for attribution
//! and compute the per-row gradient sketches. Pure computation on files in the
//! job's directory; the queue uploads the artefacts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use ml::{Checkpoint, Model, TextTokenizer, TrainConfig, Trainer};
use primitives::B256;
use serde::{Deserialize, Serialize};

use crate::FactoryError;
use crate::data::{Dataset, Packed, batch, pack};
use crate::eval::{EvalReport, evaluate, validation_loss};
use crate::sketch::SketchWriter;
use crate::spec::JobSpec;

/// What a job reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// "training", "evaluating", "sketching".
    pub phase: String,
    pub step: u64,
    pub total_steps: u64,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub eta_seconds: Option<f64>,
    /// The validation loss at `step`, when the job last measured it (ten
    /// times over a run, and at its end).
    #[serde(default)]
    pub validation_loss: Option<f64>,
}

impl Progress {
    /// `phase` at `step` of `total_steps`, nothing measured yet.
    pub fn at(phase: &str, step: u64, total_steps: u64) -> Progress {
        Progress {
            phase: phase.into(),
            step,
            total_steps,
            loss: None,
            learning_rate: None,
            tokens_per_second: None,
            eta_seconds: None,
            validation_loss: None,
        }
    }
}

/// The steps after which a run of `total` steps measures its validation loss:
/// ten evenly spaced points, the last one the final step.
pub fn validation_steps(total: u64) -> Vec<u64> {
    let every = total.div_ceil(10).max(1);
    let mut v: Vec<u64> = (1..=total / every).map(|k| k * every).collect();
    if v.last() != Some(&total) && total > 0 {
        v.push(total);
    }
    v
}

/// One line of a job's `log.jsonl`, as `GET /v1/jobs/{id}/history` serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPoint {
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
}

/// A kept LoRA checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptCheckpoint {
    pub step: u64,
    /// The learning rate of the step that produced it (TracIn weights by it).
    pub learning_rate: f64,
    pub file: String,
    pub hash: B256,
}

/// Everything a finished job produced, in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutput {
    pub base_model_hash: B256,
    pub adapter_hash: B256,
    /// The PEFT folder (adapter_config.json, adapter_model.safetensors).
    pub adapter_dir: String,
    pub checkpoints: Vec<KeptCheckpoint>,
    pub sketch_file: String,
    pub sketch_seed: u64,
    pub sketch_k: usize,
    pub log_file: String,
    pub metrics: Metrics,
}

/// The figures recorded with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub steps: u64,
    pub train_rows: usize,
    pub train_sequences: usize,
    pub train_tokens: u64,
    pub final_train_loss: f64,
    pub tokens_per_second: f64,
    pub validation: EvalReport,
    /// Wall time of the training steps, and of the gradient sketches at job
    /// end (all kept checkpoints), in seconds (0 in outputs written before).
    #[serde(default)]
    pub train_seconds: f64,
    #[serde(default)]
    pub sketch_seconds: f64,
    /// The base model's validation loss on the same rows, for comparison.
    pub base_validation_loss: f64,
}

const RESUME: &str = "resume.safetensors";
/// Rows sketched between cancellation checks and progress reports.
const SKETCH_CHUNK: usize = 16;

/// Rows per batched backward pass of the sketches (rows of similar length together).
const SKETCH_BATCH: usize = 8;

/// The sketch blob of `rows` at the kept checkpoints `adapters` (learning
/// rates `lrs`), or `None` when cancelled.
///
/// Each chunk's rows are sorted by length and taken `SKETCH_BATCH` at a time
/// through one batched backward pass that keeps each row's own LoRA gradient
/// apart (`ml::batch_sequence_gradients`; one batch-1 pass per row cost about
/// three times as much per token). A row's gradient depends only on the rows it
/// is batched with, which depend only on the rows, so a job's blob is the same
/// bytes at every thread count; rows are written in training order.
fn sketch(
    model: &Model,
    spec: &JobSpec,
    rows: &[crate::data::TrainingRow],
    adapters: &[ml::LoraAdapter],
    lrs: Vec<f64>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<Vec<u8>>, FactoryError> {
    let projection = ml::Projection::CountSketch;
    let mut w = SketchWriter::new(projection, spec.sketch_k, spec.seed, lrs);
    let mut done = 0usize;
    for chunk in rows.chunks(SKETCH_CHUNK) {
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        // Shortest first (ties in training order), so a batch pads little.
        let mut order: Vec<usize> = (0..chunk.len()).collect();
        order.sort_by_key(|&i| (chunk[i].tokens.len(), i));
        let mut sketched: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(adapters.len()); chunk.len()];
        for a in adapters {
            for batch in order.chunks(SKETCH_BATCH) {
                let inputs: Vec<(&[u32], &[bool])> =
                    batch.iter().map(|&i| (chunk[i].tokens.as_slice(), chunk[i].target.as_slice())).collect();
                let grads = ml::batch_sequence_gradients(model, a, &inputs)?;
                let projected: Vec<Vec<f32>> =
                    grads.par_iter().map(|g| projection.apply(g, spec.seed, spec.sketch_k)).collect();
                for (&i, y) in batch.iter().zip(projected) {
                    sketched[i].push(y);
                }
            }
        }
        for (row, per_ck) in chunk.iter().zip(&sketched) {
            w.push(row.id, row.contributor, per_ck);
        }
        done += chunk.len();
        progress(Progress::at("sketching", done as u64, rows.len() as u64));
    }
    Ok(Some(w.finish()))
}

/// The optimiser steps at which checkpoints are kept: `keep` evenly spaced, the last at `total`.
pub fn kept_steps(total: u64, keep: usize) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=keep as u64).map(|i| (total * i).div_ceil(keep as u64).max(1)).collect();
    v.dedup();
    v
}

/// The packed-sequence indices of optimiser step `step`: a seeded permutation
/// per epoch, consumed in order; a function of (seed, step) alone, so a resumed
/// run sees the same batches.
fn step_indices(n: usize, per_step: usize, seed: u64, step: u64) -> Vec<usize> {
    let mut out = Vec::with_capacity(per_step);
    let first = step as usize * per_step;
    let mut cached: Option<(usize, Vec<usize>)> = None;
    for j in first..first + per_step {
        let (epoch, pos) = (j / n, j % n);
        if cached.as_ref().map(|c| c.0) != Some(epoch) {
            let mut perm: Vec<usize> = (0..n).collect();
            let mut rng = ml::rng::Rng::new(seed ^ ml::rng::splitmix64(epoch as u64 + 1));
            for i in (1..n).rev() {
                let k = rng.below(i as u64 + 1) as usize;
                perm.swap(i, k);
            }
            cached = Some((epoch, perm));
        }
        out.push(cached.as_ref().expect("set").1[pos]);
    }
    out
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FactoryError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| FactoryError::Io(format!("{}: {e}", tmp.display())))?;
    let f = std::fs::File::open(&tmp).map_err(|e| FactoryError::Io(e.to_string()))?;
    f.sync_all().map_err(|e| FactoryError::Io(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| FactoryError::Io(format!("{}: {e}", path.display())))
}

/// The points of a job's `log.jsonl` after step `since` (training and
/// validation lines, in order), at most `limit`; a torn last line (a crash
/// mid-append) is skipped. A missing log is an empty history.
pub fn read_log(dir: &Path, since: u64, limit: usize) -> Result<Vec<LogPoint>, FactoryError> {
    use std::io::BufRead;
    let f = match std::fs::File::open(dir.join("log.jsonl")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FactoryError::Io(e.to_string())),
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| FactoryError::Io(e.to_string()))?;
        let Ok(p) = serde_json::from_str::<LogPoint>(&line) else { continue };
        if p.step > since {
            if out.len() == limit {
                break;
            }
            out.push(p);
        }
    }
    Ok(out)
}

fn append_log(path: &Path, v: &serde_json::Value) -> Result<(), FactoryError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| FactoryError::Io(format!("{}: {e}", path.display())))?;
    writeln!(f, "{v}").map_err(|e| FactoryError::Io(e.to_string()))
}

/// The resolved shape of a run.
pub struct Plan {
    pub packed: Vec<Packed>,
    pub per_step: usize,
    pub total_steps: u64,
    pub train: TrainConfig,
}

/// Check the spec against the model and the data, and plan the run.
pub fn plan(spec: &JobSpec, model: &Model, data: &Dataset) -> Result<Plan, FactoryError> {
    spec.validate()?;
    let lora = spec.lora()?;
    lora.validate(&model.config)?;
    if spec.max_seq_len > model.config.max_position_embeddings {
        return Err(FactoryError::Spec(format!(
            "maxSeqLen {} is beyond the base model's context of {}",
            spec.max_seq_len, model.config.max_position_embeddings
        )));
    }
    let packed = pack(&data.train, spec.max_seq_len);
    let per_step = spec.batch_size * spec.grad_accum;
    let total_steps =
        spec.steps.unwrap_or_else(|| (spec.epochs * packed.len() as u64).div_ceil(per_step as u64).max(1));
    let mut train = TrainConfig::new(lora, spec.learning_rate, total_steps);
    train.warmup_steps = spec.warmup_steps.min(total_steps);
    train.weight_decay = spec.weight_decay;
    train.seed = spec.seed;
    Ok(Plan { packed, per_step, total_steps, train })
}

/// Run (or resume) a job in `dir`. Returns `Ok(None)` when cancelled (the
/// resume checkpoint stays, so the job can continue later).
pub fn run(
    spec: &JobSpec,
    model: &Model,
    tok: &TextTokenizer,
    data: &Dataset,
    dir: &Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<JobOutput>, FactoryError> {
    std::fs::create_dir_all(dir).map_err(|e| FactoryError::Io(format!("{}: {e}", dir.display())))?;
    let p = plan(spec, model, data)?;
    let pad = tok.pad_token.as_deref().and_then(|t| tok.token_id(t)).unwrap_or(0);
    let log = dir.join("log.jsonl");
    let resume = dir.join(RESUME);
    let mut trainer = if resume.exists() {
        let bytes = std::fs::read(&resume).map_err(|e| FactoryError::Io(e.to_string()))?;
        let ck = Checkpoint::from_bytes(&bytes, &p.train.lora, &model.config)?;
        Trainer::resume(model, p.train.clone(), &ck)?
    } else {
        let _ = std::fs::remove_file(&log);
        Trainer::new(model, p.train.clone())?
    };
    let kept = kept_steps(p.total_steps, spec.keep_checkpoints);
    let started = Instant::now();
    let start_step = trainer.step_count();
    let mut tokens_done = 0u64;
    let mut last_loss = f64::NAN;
    let validate_at = if data.validation.is_empty() { Vec::new() } else { validation_steps(p.total_steps) };
    let mut validation = None;
    progress(Progress::at("training", start_step, p.total_steps));
    while trainer.step_count() < p.total_steps {
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let s = trainer.step_count();
        let idx = step_indices(p.packed.len(), p.per_step, spec.seed, s);
        let mut micro = Vec::with_capacity(spec.grad_accum);
        for chunk in idx.chunks(spec.batch_size) {
            let seqs: Vec<&Packed> = chunk.iter().map(|&i| &p.packed[i]).collect();
            let (t, m, len) = batch(&seqs, pad);
            micro.push(ml::TokenBatch { tokens: t, mask: m, rows: seqs.len(), len });
        }
        let r = trainer.step(&micro)?;
        last_loss = r.loss;
        tokens_done += r.tokens as u64;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let tps = tokens_done as f64 / secs;
        let done = r.step - start_step;
        let eta = secs / done as f64 * (p.total_steps - r.step) as f64;
        append_log(
            &log,
            &serde_json::json!({"step": r.step, "loss": r.loss, "lr": r.lr, "gradNorm": r.grad_norm, "tokens": r.tokens}),
        )?;
        if r.step % spec.checkpoint_every == 0 || r.step == p.total_steps || kept.contains(&r.step) {
            let ck = trainer.checkpoint()?;
            let bytes = ck.to_bytes()?;
            if kept.contains(&r.step) {
                write_atomic(&dir.join(format!("kept-{:06}.safetensors", r.step)), &bytes)?;
            }
            write_atomic(&resume, &bytes)?;
        }
        if validate_at.contains(&r.step) {
            let (loss, _) = validation_loss(model, Some(&trainer.adapter()?), &data.validation)?;
            append_log(&log, &serde_json::json!({"step": r.step, "validationLoss": loss}))?;
            validation = Some(loss);
        }
        progress(Progress {
            phase: "training".into(),
            step: r.step,
            total_steps: p.total_steps,
            loss: Some(r.loss),
            learning_rate: Some(r.lr),
            tokens_per_second: Some(tps),
            eta_seconds: Some(eta),
            validation_loss: validation,
        });
    }
    let train_secs = started.elapsed().as_secs_f64();
    let adapter = trainer.adapter()?;
    let adapter_dir = dir.join("adapter");
    adapter.save_peft(&adapter_dir, &format!("{}", model.hash))?;
    progress(Progress {
        loss: Some(last_loss),
        validation_loss: validation,
        ..Progress::at("evaluating", p.total_steps, p.total_steps)
    });
    let validation = evaluate(model, tok, Some(&adapter), &data.validation, 32)?;
    let (base_validation_loss, _) = validation_loss(model, None, &data.validation)?;
    // Kept checkpoints and their learning rates, then the sketches.
    let mut checkpoints = Vec::new();
    let mut ck_adapters = Vec::new();
    for s in &kept {
        let file = format!("kept-{s:06}.safetensors");
        let bytes = std::fs::read(dir.join(&file)).map_err(|e| FactoryError::Io(format!("{file}: {e}")))?;
        let ck = Checkpoint::from_bytes(&bytes, &p.train.lora, &model.config)?;
        checkpoints.push(KeptCheckpoint {
            step: *s,
            learning_rate: ck.last_lr,
            file,
            hash: primitives::hash::content_hash(&bytes),
        });
        ck_adapters.push(ck.adapter);
    }
    let sketch_file = "sketch.bin".to_string();
    let sketch_started = Instant::now();
    let lrs = checkpoints.iter().map(|c| c.learning_rate).collect();
    let Some(blob) = sketch(model, spec, &data.train, &ck_adapters, lrs, cancel, progress)? else { return Ok(None) };
    write_atomic(&dir.join(&sketch_file), &blob)?;
    let sketch_seconds = sketch_started.elapsed().as_secs_f64();
    let metrics = Metrics {
        steps: p.total_steps,
        train_rows: data.train.len(),
        train_sequences: p.packed.len(),
        train_tokens: p.packed.iter().map(|s| s.tokens.len() as u64).sum(),
        final_train_loss: last_loss,
        tokens_per_second: if train_secs > 0.0 { tokens_done as f64 / train_secs } else { 0.0 },
        validation,
        base_validation_loss,
        train_seconds: train_secs,
        sketch_seconds,
    };
    let out = JobOutput {
        base_model_hash: model.hash,
        adapter_hash: adapter.hash,
        adapter_dir: "adapter".into(),
        checkpoints,
        sketch_file,
        sketch_seed: spec.seed,
        sketch_k: spec.sketch_k,
        log_file: "log.jsonl".into(),
        metrics,
    };
    write_atomic(&dir.join("output.json"), serde_json::to_string_pretty(&out).expect("json").as_bytes())?;
    Ok(Some(out))
}

/// Where a job's files live.
pub fn job_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("{id:08}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_steps_are_spread_and_end_at_total() {
        assert_eq!(kept_steps(30, 3), vec![10, 20, 30]);
        assert_eq!(kept_steps(2, 3), vec![1, 2]);
        assert_eq!(kept_steps(1, 3), vec![1]);
    }

    #[test]
    fn batches_depend_on_seed_and_step_only() {
        let a = step_indices(10, 4, 7, 3);
        assert_eq!(a, step_indices(10, 4, 7, 3));
        // Every index of an epoch appears exactly once.
        let mut all: Vec<usize> = (0..5).flat_map(|s| step_indices(10, 2, 7, s)).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
