//! LoRA training: AdamW (PyTorch's semantics, decoupled weight decay), linear
//! warm-up then cosine decay (Hugging Face's `get_cosine_schedule_with_warmup`),
//! gradient accumulation, gradient-norm clipping, and checkpoints that hold
//! everything a resumed run needs to continue bit for bit (weights, moments,
//! step, dropout generator).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::MlError;
use crate::lora::{LoraAdapter, LoraConfig, LoraVars};
use crate::model::{BaseGrad, Model};
use crate::rng::Rng;

/// Hyperparameters of a LoRA run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub lora: LoraConfig,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    /// Optimiser steps in all (the schedule's length).
    pub total_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    pub seed: u64,
}

impl TrainConfig {
    pub fn new(lora: LoraConfig, learning_rate: f64, total_steps: u64) -> TrainConfig {
        TrainConfig {
            lora,
            learning_rate,
            warmup_steps: 0,
            total_steps,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

/// The learning rate at optimiser step `step` (0-based): linear warm-up from 0,
/// then cosine decay to 0 at `total`.
pub fn lr_at(base: f64, warmup: u64, total: u64, step: u64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// AdamW over a fixed list of variables.
pub struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub t: u64,
}

impl AdamW {
    pub fn new(vars: &[&Var]) -> Result<AdamW, MlError> {
        let z = |v: &&Var| Tensor::zeros(v.as_tensor().dims(), DType::F32, &Device::Cpu);
        Ok(AdamW {
            m: vars.iter().map(z).collect::<Result<_, _>>()?,
            v: vars.iter().map(z).collect::<Result<_, _>>()?,
            t: 0,
        })
    }

    /// One update with gradients `grads` (same order as the variables).
    pub fn step(&mut self, vars: &[&Var], grads: &[Tensor], lr: f64, cfg: &TrainConfig) -> Result<(), MlError> {
        self.t += 1;
        let bc1 = 1.0 - cfg.beta1.powi(self.t as i32);
        let bc2 = 1.0 - cfg.beta2.powi(self.t as i32);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let p = var.as_tensor();
            let m = ((&self.m[i] * cfg.beta1)? + (g * (1.0 - cfg.beta1))?)?;
            let v = ((&self.v[i] * cfg.beta2)? + (g.sqr()? * (1.0 - cfg.beta2))?)?;
            let decayed = if cfg.weight_decay > 0.0 { (p * (1.0 - lr * cfg.weight_decay))? } else { p.clone() };
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + cfg.eps)?)?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// A training checkpoint: everything needed to resume exactly.
#[derive(Clone)]
pub struct Checkpoint {
    /// The adapter's weights at this point.
    pub adapter: LoraAdapter,
    /// Optimiser steps taken.
    pub step: u64,
    /// The learning rate the last step used.
    pub last_lr: f64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    rng: [u64; 4],
}

impl Checkpoint {
    /// Canonical bytes (safetensors): weights, moments, step, generator state.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlError> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for (n, t) in self.adapter.named_tensors() {
            map.insert(n, t);
        }
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            map.insert(format!("optimizer.m.{i:05}"), m.clone());
            map.insert(format!("optimizer.v.{i:05}"), v.clone());
        }
        let words = |x: u64| [(x >> 32) as u32, x as u32];
        let mut meta: Vec<u32> = words(self.step).to_vec();
        meta.extend(words(self.last_lr.to_bits()));
        for w in self.rng {
            meta.extend(words(w));
        }
        let n = meta.len();
        map.insert("trainer.state".into(), Tensor::from_vec(meta, n, &Device::Cpu)?);
        crate::weights::safetensors_bytes(&map)
    }

    pub fn from_bytes(bytes: &[u8], lora: &LoraConfig, model: &crate::ModelConfig) -> Result<Checkpoint, MlError> {
        let all = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| MlError::Format(format!("checkpoint: {e}")))?;
        let state = all
            .get("trainer.state")
            .ok_or_else(|| MlError::Format("checkpoint without trainer.state".into()))?
            .to_vec1::<u32>()?;
        if state.len() != 12 {
            return Err(MlError::Format("checkpoint trainer.state has the wrong length".into()));
        }
        let w = |i: usize| ((state[2 * i] as u64) << 32) | state[2 * i + 1] as u64;
        let mut adapter_map = HashMap::new();
        let mut m = Vec::new();
        let mut v = Vec::new();
        let mut keys: Vec<&String> = all.keys().collect();
        keys.sort();
        for k in keys {
            if k.starts_with("optimizer.m.") {
                m.push(all[k].clone());
            } else if k.starts_with("optimizer.v.") {
                v.push(all[k].clone());
            } else if k != "trainer.state" {
                adapter_map.insert(k.clone(), all[k].clone());
            }
        }
        let ab = crate::weights::safetensors_bytes(&adapter_map)?;
        let adapter = LoraAdapter::from_parts(lora.clone(), &ab, model)?;
        if m.len() != adapter.named_tensors().len() || v.len() != m.len() {
            return Err(MlError::Format("checkpoint optimiser state does not match the adapter".into()));
        }
        Ok(Checkpoint { adapter, step: w(0), last_lr: f64::from_bits(w(1)), m, v, rng: [w(2), w(3), w(4), w(5)] })
    }
}

/// A `[rows, len]` block of token ids with its target mask (1.0 = the token
/// is predicted and counts in the loss), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub tokens: Vec<u32>,
    pub mask: Vec<f32>,
    pub rows: usize,
    pub len: usize,
}

impl TokenBatch {
    pub fn tensors(&self) -> Result<(Tensor, Tensor), MlError> {
        if self.tokens.len() != self.rows * self.len || self.mask.len() != self.tokens.len() {
            return Err(MlError::Config(format!(
                "a batch of {}×{} needs {} tokens and mask entries, got {} and {}",
                self.rows,
                self.len,
                self.rows * self.len,
                self.tokens.len(),
                self.mask.len()
            )));
        }
        Ok((
            Tensor::from_slice(&self.tokens, (self.rows, self.len), &Device::Cpu)?,
            Tensor::from_slice(&self.mask, (self.rows, self.len), &Device::Cpu)?,
        ))
    }
}

/// One LoRA run over a frozen base model.
pub struct Trainer<'m> {
    pub model: &'m Model,
    pub config: TrainConfig,
    vars: LoraVars,
    opt: AdamW,
    rng: Rng,
    last_lr: f64,
    pub base_grad: BaseGrad,
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    /// Where the step's time went (wall clock, for `bench train --profile`).
    pub timing: StepTiming,
}

/// Seconds of one step spent in the loss's forward, its backward, and the rest
/// (gradient sums, clipping, the AdamW update).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTiming {
    pub forward_s: f64,
    pub backward_s: f64,
    pub update_s: f64,
}

impl<'m> Trainer<'m> {
    /// A fresh run: the adapter initialised from the seed.
    pub fn new(model: &'m Model, config: TrainConfig) -> Result<Trainer<'m>, MlError> {
        let adapter = LoraAdapter::init(config.lora.clone(), &model.config, config.seed)?;
        let vars = adapter.to_vars()?;
        let opt = AdamW::new(&vars.all())?;
        let rng = Rng::new(config.seed ^ 0xD20F_0D20_F0D2_0F0D);
        Ok(Trainer { model, config, vars, opt, rng, last_lr: 0.0, base_grad: BaseGrad::Frozen })
    }

    /// Continue from a checkpoint of a run with the same configuration.
    pub fn resume(model: &'m Model, config: TrainConfig, ck: &Checkpoint) -> Result<Trainer<'m>, MlError> {
        model.check_adapter(&ck.adapter)?;
        let vars = ck.adapter.to_vars()?;
        let opt = AdamW { m: ck.m.clone(), v: ck.v.clone(), t: ck.step };
        let rng = Rng::from_state(ck.rng);
        Ok(Trainer { model, config, vars, opt, rng, last_lr: ck.last_lr, base_grad: BaseGrad::Frozen })
    }

    /// Optimiser steps taken.
    pub fn step_count(&self) -> u64 {
        self.opt.t
    }

    /// One optimiser step over `micro` micro-batches, gradients averaged over them.
    pub fn step(&mut self, micro: &[TokenBatch]) -> Result<StepReport, MlError> {
        if micro.is_empty() {
            return Err(MlError::Config("a training step needs at least one micro-batch".into()));
        }
        let start = std::time::Instant::now();
        let mut timing = StepTiming::default();
        let micro: Vec<(Tensor, Tensor)> = micro.iter().map(|b| b.tensors()).collect::<Result<_, _>>()?;
        let vars = self.vars.all();
        let mut sum: Vec<Option<Tensor>> = vec![None; vars.len()];
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        for (toks, mask) in &micro {
            tokens += toks.elem_count();
            let dropout = if self.config.lora.lora_dropout > 0.0 { Some(&mut self.rng) } else { None };
            let t = std::time::Instant::now();
            let loss = self.model.loss(toks, mask, Some(&self.vars), self.base_grad, dropout)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            timing.forward_s += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let g = loss.backward()?;
            timing.backward_s += t.elapsed().as_secs_f64();
            for (i, v) in vars.iter().enumerate() {
                let gi = match g.get(v.as_tensor()) {
                    Some(t) => t.clone(),
                    None => v.as_tensor().zeros_like()?,
                };
                sum[i] = Some(match sum[i].take() {
                    Some(s) => (s + gi)?,
                    None => gi,
                });
            }
        }
        let n = micro.len() as f64;
        let mut grads: Vec<Tensor> = sum.into_iter().map(|g| g.expect("filled") / n).collect::<Result<_, _>>()?;
        let norm = grads.iter().map(|g| g.sqr()?.sum_all()?.to_scalar::<f32>()).collect::<Result<Vec<_>, _>>()?;
        let grad_norm = norm.iter().map(|x| *x as f64).sum::<f64>().sqrt();
        if self.config.max_grad_norm > 0.0 && grad_norm > self.config.max_grad_norm {
            let s = self.config.max_grad_norm / (grad_norm + 1e-6);
            grads = grads.into_iter().map(|g| g * s).collect::<Result<_, _>>()?;
        }
        let lr = lr_at(self.config.learning_rate, self.config.warmup_steps, self.config.total_steps, self.opt.t);
        self.opt.step(&vars, &grads, lr, &self.config)?;
        self.last_lr = lr;
        timing.update_s = start.elapsed().as_secs_f64() - timing.forward_s - timing.backward_s;
        Ok(StepReport { step: self.opt.t, loss: loss_sum / n, lr, grad_norm, tokens, timing })
    }

    /// The adapter as it is now.
    pub fn adapter(&self) -> Result<LoraAdapter, MlError> {
        self.vars.to_adapter()
    }

    pub fn vars(&self) -> &LoraVars {
        &self.vars
    }

    pub fn checkpoint(&self) -> Result<Checkpoint, MlError> {
        Ok(Checkpoint {
            adapter: self.adapter()?,
            step: self.opt.t,
            last_lr: self.last_lr,
            m: self.opt.m.iter().map(|t| t.copy()).collect::<Result<_, _>>()?,
            v: self.opt.v.iter().map(|t| t.copy()).collect::<Result<_, _>>()?,
            rng: self.rng.state(),
        })
    }
}
