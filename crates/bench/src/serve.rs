//! `bench serve`: requests spread over N LoRA adapters (N = 1, 10, 100, 1000),
//! served by our OpenLoRA engine (`serve::Engine`: continuous batching, mixed
//! adapters in one batch, adapters just in time from an `AdapterCache` whose
//! source reads the PEFT files from disk), against Hugging Face transformers +
//! PEFT on the CPU switching adapters per request (`set_adapter`, batch 1).
//!
//! Before any clock starts the bench writes, to one work directory:
//! - `model/`: a Hugging Face folder (`config.json`, `model.safetensors`, and a
//!   word-level `tokenizer.json` with one token per id, so that the engine's
//!   streaming decodes real text) with seeded random weights;
//! - `adapters/a<i>/`: the largest N of `--adapters` LoRA adapters (rank
//!   `--rank` on q_proj and v_proj, `LoraAdapter::random`, seed per adapter) in
//!   the PEFT layout (`adapter_config.json`, `adapter_model.safetensors`);
//! - `peer-N<n>.json`: what the peer serves for each N it runs: the model, the
//!   first N adapter folders, the requests (prompt ids and adapter index).
//!
//! `--model FILE` serves a real model instead (e.g. SmolLM2-135M-Instruct as GGUF):
//! ours keeps the weights as the file stores them (quantized blocks multiplied
//! directly, as the node serves a GGUF base), its tokenizer streams the text;
//! `model/` then holds the same weights dequantized to f32 for the peer, and the
//! prompts are random ids of the model's vocabulary. `--targets` puts the
//! adapters on other modules (`all`: the seven linear layers of a block). EOS is
//! off on both sides, so every request still generates exactly its budget.
//!
//! Workload: `--requests` requests, each a seeded `--prompt-len`-token prompt
//! asking for `--new-tokens` greedy tokens (no EOS on either side, so every
//! request generates exactly that many), the adapter of each chosen uniformly
//! at random (seeded) among N; the prompts are the same for every N.
//!
//! Ours: the model is loaded once; each run starts a fresh `Engine` (production
//! `EngineConfig` but `--max-batch`) and an empty `AdapterCache` of
//! `--cache-mb` (production default 256 MiB) whose source is
//! `LoraAdapter::load_peft_as` on `adapters/a<i>` (read, parse safetensors,
//! hash, build the weights as the cache holds them: int8 is quantized straight
//! from the file's f32 bytes). `--concurrency` client threads keep that many requests in
//! flight: each takes the next request, `cache.get(adapter)` (a cold load on a
//! miss), `engine.submit`, and reads its events to `Done`. Figures: generated
//! tokens / wall time; time to first token from `Outcome` (admission to first
//! token) and as the client sees it (request start, adapter load included, to
//! the first streamed piece); request latency (request start to `Done`); cold
//! load (the source's load, which is what the `adapter_load` histogram times,
//! and the whole `get` when the adapter was not resident); the cache's hits,
//! misses, evictions and residency.
//!
//! Peer: `bench/peers/serve_peer.py` in the git-ignored `bench/.venv` (created
//! and filled with `pip install torch transformers peft safetensors` when
//! missing), a fresh process per run, for the N of `--peer-adapters` (default
//! 10: PEFT loading 1000 adapters takes long). Rounds alternate: for each N,
//! ours then (where it runs) the peer. Tokens/s are medians over rounds;
//! latency percentiles pool the requests of every round.
//!
//! `--billed` also sends every run's requests through a node, paid for, right
//! after ours: see `serve_billed.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::chain::write_json;
use crate::machine::{Machine, today};
use crate::peer::{PythonPeer as Peer, cpu_flags, last_json, parse_targets, run_child, write_hf_model};
use crate::stats::{count_list, fmt_ratio, median, percentile, ratio};

/// What the peer installs into bench/.venv when it is missing.
const PEER_PACKAGES: [&str; 4] = ["torch", "transformers", "peft", "safetensors"];
/// The peer's script under bench/.
const PEER_SCRIPT: &str = "peers/serve_peer.py";
/// B of the random adapters is uniform in ± this (A as PEFT initialises it).
pub(crate) const ADAPTER_B_SCALE: f64 = 0.05;

/// `openledger bench serve`: requests over N LoRA adapters through our engine
/// (continuous batching, mixed adapters, adapters loaded just in time) vs HF PEFT
/// switching adapters per request.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeOpts {
    #[command(flatten)]
    pub shape: crate::peer::ModelShape,
    /// Adapter counts N to spread the requests over (0 = the base model, no adapter).
    #[arg(long, default_value = "1,10,100,1000")]
    pub adapters: String,
    /// Requests per run.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub requests: u32,
    /// Requests in flight at once (client threads).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Prompt tokens per request.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_len: u32,
    /// New tokens per request (greedy).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub new_tokens: u32,
    /// Rounds: each runs every N with ours, and the peer right after ours for its N.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// The N the peer runs at (a subset of --adapters; PEFT loads every adapter up front).
    #[arg(long, default_value = "10")]
    pub peer_adapters: String,
    /// Rounds in which the peer runs (default: every round).
    #[arg(long)]
    pub peer_rounds: Option<u32>,
    #[command(flatten)]
    pub peer: crate::peer::PeerArgs,
    /// Sequences per batch in our engine (the node's default).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Prompt tokens our engine feeds per step over all sequences (the node's default).
    #[arg(long, default_value_t = serve::engine::DEFAULT_PREFILL_BUDGET, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub prefill_budget: usize,
    /// Our adapter cache budget in MiB (the node's default is 256).
    #[arg(long, default_value_t = 256)]
    pub cache_mb: u64,
    /// Load every adapter a run uses into our cache before its clock starts:
    /// the steady state of a node whose adapters are resident (no cold loads
    /// in the figures; `--cache-mb` must hold them all).
    #[arg(long)]
    pub resident: bool,
    /// Cold loads read the adapters' held (int8) form from a held tier on
    /// disk (`serve::HeldTier`), as the node's cold loads do (it writes every
    /// live adapter's held form in the background, and at a first load). The
    /// tier is written before the clock starts; with an f32 or bf16 cache it
    /// is unused.
    #[arg(long)]
    pub held_tier: bool,
    /// Also send every run's requests through a node, paid for (module
    /// `serve_billed`): the OpenAI API over loopback HTTP, each answer
    /// reserved, billed with a signed receipt, settled on-chain and
    /// attributed beside the batch; its figures are set beside ours.
    #[arg(long)]
    pub billed: bool,
    /// How our cache holds adapters: auto (the node's rule: i8 on a
    /// quantized base model, else f32), f32, bf16 or i8.
    #[arg(long, default_value = "auto")]
    pub adapter_dtype: String,
    /// LoRA rank (on q_proj and v_proj).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha.
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// LoRA targets: a comma list of q_proj, k_proj, v_proj, o_proj, gate_proj,
    /// up_proj, down_proj, or `all` for the seven.
    #[arg(long, default_value = "q_proj,v_proj")]
    pub targets: String,
    /// Serve this model instead of the seeded one: a GGUF file (weights kept
    /// as stored: quantized blocks stay quantized) or a Hugging Face folder.
    /// The shape options are then ignored.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Seed of the weights, the adapters, the prompts and the adapter choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CPU threads of the peer (torch.set_num_threads); ours uses candle's default (all cores).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
}

impl Default for ServeOpts {
    fn default() -> Self {
        ServeOpts {
            adapters: "1,10,100,1000".into(),
            requests: 64,
            concurrency: 8,
            prompt_len: 32,
            new_tokens: 32,
            rounds: 3,
            peer_adapters: "10".into(),
            peer_rounds: None,
            peer: crate::peer::PeerArgs::default(),
            max_batch: 32,
            cache_mb: 256,
            resident: false,
            held_tier: false,
            billed: false,
            prefill_budget: serve::engine::DEFAULT_PREFILL_BUDGET,
            adapter_dtype: "auto".into(),
            shape: crate::peer::ModelShape::default(),
            rank: 8,
            alpha: 16.0,
            targets: "q_proj,v_proj".into(),
            model: None,
            seed: 1,
            threads: 2,
        }
    }
}

/// "1, 10,100" → [1, 10, 100] (in the order given, duplicates dropped).
fn parse_counts(s: &str, what: &str) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for (part, n) in count_list(s, what)? {
        let n = n.and_then(|n| usize::try_from(n).ok()).with_context(|| format!("{what}: {part:?} is too large"))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        bail!("{what}: no counts given");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The shared inputs

impl ServeOpts {
    fn model_config(&self) -> Result<ml::ModelConfig> {
        self.shape.config(((self.prompt_len + self.new_tokens) as usize + 1).max(2048))
    }

    fn lora_config(&self) -> Result<ml::LoraConfig> {
        let target_modules = parse_targets(&self.targets)?
            .iter()
            .map(|t| ml::Target::from_module(t).expect("parse_targets keeps known modules"))
            .collect();
        Ok(ml::LoraConfig { r: self.rank, lora_alpha: self.alpha, lora_dropout: 0.0, target_modules })
    }
}

/// The base model both sides serve, and what the report calls it. With
/// `--model` ours reads the user's file and, when the peer runs, `model/` gets
/// the same weights dequantized to f32; otherwise `model/` is written with
/// seeded random weights and both sides read it.
fn open_base(o: &ServeOpts, dir: &Path, for_peer: bool) -> Result<(ml::ModelFiles, String)> {
    let model_dir = dir.join("model");
    match &o.model {
        Some(p) => {
            let f = ml::ModelFiles::open(p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            if for_peer {
                f.write_hf_f32(&model_dir).map_err(|e| anyhow!("writing {}: {e}", model_dir.display()))?;
            }
            let mut dtypes: Vec<&str> = f.tensors.values().map(|t| t.dtype.as_str()).collect();
            dtypes.sort_unstable();
            dtypes.dedup();
            let what = format!("{} (weights as stored: {})", p.display(), dtypes.join(", "));
            Ok((f, what))
        }
        None => {
            let c = o.model_config()?;
            write_hf_model(&model_dir, &c, o.seed, true, &word_tokenizer_json(c.vocab_size).to_string())?;
            let f = ml::ModelFiles::open(&model_dir).map_err(|e| anyhow!("loading the model: {e}"))?;
            let what = format!("seeded random weights, f32 ({:.0} MiB)", (c.parameter_count() * 4) as f64 / 1048576.0);
            Ok((f, what))
        }
    }
}

/// A word-level `tokenizer.json` with one token per id (`t0` … `t<vocab-1>`),
/// joined by spaces when decoding: the engine streams real text pieces.
fn word_tokenizer_json(vocab: usize) -> Value {
    let v: serde_json::Map<String, Value> = (0..vocab).map(|i| (format!("t{i}"), json!(i))).collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": v, "unk_token": "t0"},
    })
}

fn adapter_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join("adapters").join(format!("a{i}"))
}

/// The seed of adapter `i` (also `bench generate --adapters`').
pub(crate) fn adapter_seed(seed: u64, i: usize) -> u64 {
    ml::rng::splitmix64(seed ^ 0xADA9_7E25 ^ ((i as u64) << 20))
}

/// Everything both sides serve.
struct Workload {
    prompts: Vec<Vec<u32>>,
    /// Per N: the adapter index of every request.
    choices: BTreeMap<usize, Vec<usize>>,
    /// Every adapter's hash, by index.
    hashes: Vec<primitives::B256>,
}

fn build_workload(o: &ServeOpts, counts: &[usize], vocab: usize) -> Workload {
    let mut rng = ml::rng::Rng::new(ml::rng::splitmix64(o.seed ^ 0x7072_6f6d_7074));
    let prompts =
        (0..o.requests).map(|_| (0..o.prompt_len).map(|_| rng.below(vocab as u64) as u32).collect()).collect();
    let choices = counts
        .iter()
        .map(|&n| {
            let mut rng = ml::rng::Rng::new(ml::rng::splitmix64(o.seed ^ 0x6368_6f69_6365 ^ n as u64));
            let v = (0..o.requests).map(|_| if n == 0 { 0 } else { rng.below(n as u64) as usize }).collect();
            (n, v)
        })
        .collect();
    Workload { prompts, choices, hashes: Vec::new() }
}

/// What the peer reads for one N.
fn peer_spec(o: &ServeOpts, dir: &Path, w: &Workload, n: usize) -> Value {
    let choices = &w.choices[&n];
    json!({
        "model_dir": dir.join("model").display().to_string(),
        "adapter_dirs": (0..n).map(|i| adapter_dir(dir, i).display().to_string()).collect::<Vec<_>>(),
        "requests": w.prompts.iter().zip(choices).map(|(p, a)| json!({"prompt": p, "adapter": a})).collect::<Vec<_>>(),
        "max_new_tokens": o.new_tokens,
        "threads": o.threads,
    })
}

/// Write the adapters (as many as the largest N) and the peer specs for the
/// base of configuration `c` (already in `model/`, see `open_base`).
fn prepare_inputs(
    o: &ServeOpts,
    dir: &Path,
    c: &ml::ModelConfig,
    counts: &[usize],
    peer_counts: &[usize],
) -> Result<Workload> {
    let lora = o.lora_config()?;
    lora.validate(c).map_err(|e| anyhow!("LoRA configuration: {e}"))?;
    let model_dir = dir.join("model");
    let max_n = counts.iter().copied().max().unwrap_or(0);
    let base_name = model_dir.display().to_string();
    let mut hashes = Vec::with_capacity(max_n);
    for i in 0..max_n {
        let a = ml::LoraAdapter::random(lora.clone(), c, adapter_seed(o.seed, i), ADAPTER_B_SCALE)
            .map_err(|e| anyhow!("adapter {i}: {e}"))?;
        a.save_peft(&adapter_dir(dir, i), &base_name).map_err(|e| anyhow!("writing adapter {i}: {e}"))?;
        hashes.push(a.hash);
    }
    let w = Workload { hashes, ..build_workload(o, counts, c.vocab_size) };
    for &n in peer_counts {
        write_json(&dir.join(format!("peer-N{n}.json")), &peer_spec(o, dir, &w, n))?;
    }
    Ok(w)
}

// ---------------------------------------------------------------------------
// Ours

/// Adapters from their PEFT folders on disk, each load timed.
struct DiskAdapters {
    dir: PathBuf,
    config: ml::ModelConfig,
    loads: Mutex<Vec<f64>>,
    /// With `--held-tier`: the tier, and every adapter's hash by index.
    tier: Option<(serve::HeldTier, Vec<primitives::B256>)>,
}

impl serve::AdapterSource for DiskAdapters {
    fn load(&self, model: u64) -> Result<ml::LoraAdapter, String> {
        self.load_as(model, ml::AdapterDtype::F32)
    }

    fn load_as(&self, model: u64, dtype: ml::AdapterDtype) -> Result<ml::LoraAdapter, String> {
        let t = Instant::now();
        let peft = || {
            ml::LoraAdapter::load_peft_as(&adapter_dir(&self.dir, model as usize), &self.config, dtype)
                .map_err(|e| e.to_string())
        };
        let r = match &self.tier {
            Some((tier, hashes)) => {
                let hash = hashes.get(model as usize).ok_or_else(|| format!("no adapter {model}"))?;
                tier.load_as(hash, dtype, peft).map(|(a, _)| a)
            }
            None => peft(),
        };
        self.loads.lock().unwrap().push(t.elapsed().as_secs_f64());
        r
    }
}

/// One request as our client saw it.
#[derive(Clone, Debug)]
struct ReqResult {
    tokens: Vec<u32>,
    /// Outcome.time_to_first_token: admission to first token.
    ttft_s: f64,
    /// Request start (before the adapter lookup) to the first streamed piece.
    client_ttft_s: Option<f64>,
    /// Request start to Done.
    latency_s: f64,
    /// The whole `cache.get` when the adapter was not resident when asked.
    miss_get_s: Option<f64>,
}

/// One run of ours at one N.
#[derive(Clone, Debug)]
struct OursRun {
    wall_s: f64,
    generated: usize,
    tokens_per_s: f64,
    reqs: Vec<ReqResult>,
    /// The source's load times (what the `adapter_load` histogram observes).
    loads_s: Vec<f64>,
    hits: u64,
    misses: u64,
    evictions: u64,
    resident_adapters: u64,
    resident_bytes: u64,
    steps: u64,
    step_p50_s: Option<f64>,
    hist_load_p50_s: Option<f64>,
    hist_load_p99_s: Option<f64>,
}

struct Ours {
    model: Arc<ml::Model>,
    tokenizer: Arc<ml::TextTokenizer>,
    dir: PathBuf,
    /// How the cache holds adapters.
    dtype: ml::AdapterDtype,
}

impl Ours {
    fn engine(&self, o: &ServeOpts, metrics: &Arc<serve::Metrics>) -> serve::Engine {
        let cfg =
            serve::EngineConfig { max_batch: o.max_batch, prefill_budget: o.prefill_budget, ..Default::default() };
        serve::Engine::start(self.model.clone(), self.tokenizer.clone(), cfg, metrics.clone())
    }

    /// A few base-model requests through a throwaway engine: first-touch
    /// allocations and thread start-up are not what the runs measure.
    fn warm_up(&self, o: &ServeOpts, prompts: &[Vec<u32>]) -> Result<()> {
        let metrics = Arc::new(serve::Metrics::default());
        let engine = self.engine(o, &metrics);
        let params = ml::SamplingParams { max_tokens: o.new_tokens as usize, ..Default::default() };
        let rxs: Vec<_> = prompts
            .iter()
            .take(o.concurrency as usize)
            .map(|p| {
                engine.submit(serve::Request {
                    prompt: p.clone(),
                    adapter: None,
                    params: params.clone(),
                    cancel: Arc::new(AtomicBool::new(false)),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("warm-up: {e}"))?;
        for mut rx in rxs {
            loop {
                match rx.blocking_recv() {
                    Some(serve::Event::Text(..)) => {}
                    Some(serve::Event::Done(_)) => break,
                    Some(serve::Event::Error(e)) => bail!("warm-up: {e}"),
                    None => bail!("warm-up: the engine dropped a request"),
                }
            }
        }
        engine.stop();
        Ok(())
    }

    fn run(&self, o: &ServeOpts, w: &Workload, n: usize) -> Result<OursRun> {
        let metrics = Arc::new(serve::Metrics::default());
        let engine = self.engine(o, &metrics);
        let tier = if o.held_tier {
            let tier = serve::HeldTier::open(&self.dir.join("held-tier"), self.model.config.clone())
                .map_err(|e| anyhow!("--held-tier: {e}"))?;
            Some((tier, w.hashes.clone()))
        } else {
            None
        };
        let source = Arc::new(DiskAdapters {
            dir: self.dir.clone(),
            config: self.model.config.clone(),
            loads: Mutex::new(vec![]),
            tier,
        });
        if o.held_tier && n > 0 {
            // The held forms a node has of adapters it loaded before: written
            // before the clock (a file already there is kept).
            let distinct: std::collections::BTreeSet<usize> = w.choices[&n].iter().copied().collect();
            for &a in &distinct {
                serve::AdapterSource::load_as(&*source, a as u64, self.dtype)
                    .map_err(|e| anyhow!("--held-tier: adapter {a}: {e}"))?;
            }
            source.loads.lock().unwrap().clear();
        }
        let cache =
            serve::AdapterCache::with_dtype((o.cache_mb as usize) << 20, source.clone(), metrics.clone(), self.dtype);
        let choices = &w.choices[&n];
        if o.resident && n > 0 {
            let distinct: std::collections::BTreeSet<usize> = choices.iter().copied().collect();
            for &a in &distinct {
                cache.get(a as u64).map_err(|e| anyhow!("--resident: adapter {a}: {e}"))?;
            }
            if metrics.cache_evictions.load(Ordering::Relaxed) > 0 {
                bail!("--resident: {} adapters do not fit in --cache-mb {}", distinct.len(), o.cache_mb);
            }
            // The figures count the run, not the loading before it.
            source.loads.lock().unwrap().clear();
            metrics.cache_misses.store(0, Ordering::Relaxed);
            metrics.cache_hits.store(0, Ordering::Relaxed);
        }
        let params = ml::SamplingParams { max_tokens: o.new_tokens as usize, ..Default::default() };
        let out = run_clients(o.concurrency, w.prompts.len(), |i| {
            one_request(&engine, &cache, &w.prompts[i], (n > 0).then(|| choices[i]), &params)
        });
        engine.stop();
        let (reqs, wall_s) = out.map_err(|e| anyhow!("our engine at N = {n}: {e:#}"))?;
        let generated: usize = reqs.iter().map(|r| r.tokens.len()).sum();
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Ok(OursRun {
            wall_s,
            generated,
            tokens_per_s: generated as f64 / wall_s,
            reqs,
            loads_s: source.loads.lock().unwrap().clone(),
            hits: ld(&metrics.cache_hits),
            misses: ld(&metrics.cache_misses),
            evictions: ld(&metrics.cache_evictions),
            resident_adapters: ld(&metrics.cache_adapters),
            resident_bytes: ld(&metrics.cache_bytes),
            steps: ld(&metrics.steps),
            step_p50_s: metrics.step_time.quantile(0.5),
            hist_load_p50_s: metrics.adapter_load.quantile(0.5),
            hist_load_p99_s: metrics.adapter_load.quantile(0.99),
        })
    }
}

/// Requests `0..count` from `concurrency` client threads, each taking the next
/// index: their results in order and the wall time. The first failure stops
/// every client and is the error.
pub(crate) fn run_clients<T: Send>(
    concurrency: u32,
    count: usize,
    request: impl Fn(usize) -> Result<T> + Sync,
) -> Result<(Vec<T>, f64)> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let errors: Mutex<Vec<String>> = Mutex::new(vec![]);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    match request(i) {
                        Ok(r) => results.lock().unwrap()[i] = Some(r),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            errors.lock().unwrap().push(format!("request {i}: {e:#}"));
                        }
                    }
                }
            });
        }
    });
    let wall_s = t0.elapsed().as_secs_f64();
    if let Some(e) = errors.into_inner().unwrap().into_iter().next() {
        bail!("{e}");
    }
    Ok((results.into_inner().unwrap().into_iter().map(|r| r.expect("every request ran")).collect(), wall_s))
}

/// One request, as a client of the engine: adapter from the cache, submit, read to Done.
fn one_request(
    engine: &serve::Engine,
    cache: &serve::AdapterCache,
    prompt: &[u32],
    adapter: Option<usize>,
    params: &ml::SamplingParams,
) -> Result<ReqResult> {
    let t0 = Instant::now();
    let (adapter, miss_get_s) = match adapter {
        None => (None, None),
        Some(id) => {
            let id = id as u64;
            let cold = !cache.is_resident(id);
            let a = cache.get(id).map_err(|e| anyhow!("{e}"))?;
            (Some(a), cold.then(|| t0.elapsed().as_secs_f64()))
        }
    };
    let mut rx = engine
        .submit(serve::Request {
            prompt: prompt.to_vec(),
            adapter,
            params: params.clone(),
            cancel: Arc::new(AtomicBool::new(false)),
        })
        .map_err(|e| anyhow!("submit: {e}"))?;
    let mut first = None;
    loop {
        match rx.blocking_recv() {
            Some(serve::Event::Text(..)) => {
                if first.is_none() {
                    first = Some(t0.elapsed().as_secs_f64());
                }
            }
            Some(serve::Event::Done(out)) => {
                let latency_s = t0.elapsed().as_secs_f64();
                if out.completion_tokens != params.max_tokens {
                    bail!("generated {} tokens, not {}", out.completion_tokens, params.max_tokens);
                }
                return Ok(ReqResult {
                    tokens: out.tokens,
                    ttft_s: out.time_to_first_token.as_secs_f64(),
                    client_ttft_s: first,
                    latency_s,
                    miss_get_s,
                });
            }
            Some(serve::Event::Error(e)) => bail!("generation failed: {e}"),
            None => bail!("the engine dropped the request"),
        }
    }
}

// ---------------------------------------------------------------------------
// The peer

/// One run of the peer at one N.
#[derive(Clone, Debug)]
struct PeerRun {
    tokens_per_s: f64,
    request_s: Vec<f64>,
    ttft_s: Vec<f64>,
    tokens: Vec<Vec<u32>>,
    adapter_load_s: Vec<f64>,
    base_load_s: f64,
    wall_s: f64,
    raw: Value,
}

fn run_peer(p: &Peer, dir: &Path, n: usize, o: &ServeOpts) -> Result<PeerRun> {
    let mut cmd = Command::new(&p.python);
    cmd.arg(&p.script).arg("--spec").arg(dir.join(format!("peer-N{n}.json")));
    cmd.env("OMP_NUM_THREADS", o.threads.to_string());
    let (stdout, _) = run_child(cmd, "the PEFT peer", Duration::from_secs(o.peer.timeout))?;
    let v = last_json(&stdout, "the PEFT peer")?;
    let nums = |k: &str| -> Result<Vec<f64>> {
        Ok(v.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("peer result without {k}"))?
            .iter()
            .filter_map(Value::as_f64)
            .collect())
    };
    let tokens: Vec<Vec<u32>> = v
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("peer result without tokens"))?
        .iter()
        .map(|r| {
            r.as_array().map(|a| a.iter().filter_map(Value::as_u64).map(|t| t as u32).collect()).unwrap_or_default()
        })
        .collect();
    let f = |k: &str| v.get(k).and_then(Value::as_f64).ok_or_else(|| anyhow!("peer result without {k}"));
    let mut raw = v.clone();
    if let Some(m) = raw.as_object_mut() {
        m.remove("tokens"); // compared below, not kept in the JSON report
    }
    Ok(PeerRun {
        tokens_per_s: f("tokensPerS")?,
        request_s: nums("requestS")?,
        ttft_s: nums("ttftS")?,
        tokens,
        adapter_load_s: nums("adapterLoadS")?,
        base_load_s: f("baseLoadS")?,
        wall_s: f("wallS")?,
        raw,
    })
}

// ---------------------------------------------------------------------------
// Machine details

fn simd_line() -> String {
    let f = cpu_flags();
    format!(
        "AVX flags: {}; this binary compiled with avx2 {}, avx512f {}",
        if f.is_empty() { "none found".to_string() } else { f.join(" ") },
        if cfg!(target_feature = "avx2") { "yes" } else { "no" },
        if cfg!(target_feature = "avx512f") { "yes" } else { "no" },
    )
}

// ---------------------------------------------------------------------------
// Figures

fn ms(s: f64) -> f64 {
    s * 1000.0
}

pub(crate) fn fmt_ms(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => {
            let m = ms(v);
            if m < 10.0 { format!("{m:.2}") } else { format!("{m:.0}") }
        }
        _ => "n/a".into(),
    }
}

/// p50 and p99 of a sample, `None` when empty.
pub(crate) fn p50_p99(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() { (None, None) } else { (Some(percentile(v, 50.0)), Some(percentile(v, 99.0))) }
}

/// The medians and pooled percentiles of ours at one N.
#[derive(Clone, Debug)]
struct OursSummary {
    runs: usize,
    tps: f64,
    tps_min: f64,
    tps_max: f64,
    ttft: (Option<f64>, Option<f64>),
    client_ttft: (Option<f64>, Option<f64>),
    latency: (Option<f64>, Option<f64>),
    load: (Option<f64>, Option<f64>),
    miss_get: (Option<f64>, Option<f64>),
    loads: usize,
    hits: f64,
    misses: f64,
    evictions: f64,
    resident_adapters: f64,
    resident_bytes: f64,
    tokens_per_step: f64,
    step_p50: Option<f64>,
}

fn summarize_ours(runs: &[&OursRun]) -> OursSummary {
    let tps: Vec<f64> = runs.iter().map(|r| r.tokens_per_s).collect();
    let pool = |g: &dyn Fn(&ReqResult) -> Option<f64>| -> Vec<f64> {
        runs.iter().flat_map(|r| r.reqs.iter().filter_map(g)).collect()
    };
    let loads: Vec<f64> = runs.iter().flat_map(|r| r.loads_s.iter().copied()).collect();
    let m = |g: &dyn Fn(&OursRun) -> f64| median(&runs.iter().map(|r| g(r)).collect::<Vec<_>>());
    let steps: Vec<f64> = runs.iter().filter_map(|r| r.step_p50_s).collect();
    OursSummary {
        runs: runs.len(),
        tps: median(&tps),
        tps_min: tps.iter().copied().fold(f64::INFINITY, f64::min),
        tps_max: tps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ttft: p50_p99(&pool(&|r| Some(r.ttft_s))),
        client_ttft: p50_p99(&pool(&|r| r.client_ttft_s)),
        latency: p50_p99(&pool(&|r| Some(r.latency_s))),
        load: p50_p99(&loads),
        miss_get: p50_p99(&pool(&|r| r.miss_get_s)),
        loads: loads.len(),
        hits: m(&|r| r.hits as f64),
        misses: m(&|r| r.misses as f64),
        evictions: m(&|r| r.evictions as f64),
        resident_adapters: m(&|r| r.resident_adapters as f64),
        resident_bytes: m(&|r| r.resident_bytes as f64),
        tokens_per_step: m(&|r| r.generated as f64 / r.steps.max(1) as f64),
        step_p50: (!steps.is_empty()).then(|| median(&steps)),
    }
}

#[derive(Clone, Debug)]
struct PeerSummary {
    runs: usize,
    tps: f64,
    request: (Option<f64>, Option<f64>),
    ttft: (Option<f64>, Option<f64>),
    adapter_load: (Option<f64>, Option<f64>),
    base_load: f64,
}

fn summarize_peer(runs: &[&PeerRun]) -> PeerSummary {
    let pool =
        |g: &dyn Fn(&PeerRun) -> &Vec<f64>| -> Vec<f64> { runs.iter().flat_map(|r| g(r).iter().copied()).collect() };
    PeerSummary {
        runs: runs.len(),
        tps: median(&runs.iter().map(|r| r.tokens_per_s).collect::<Vec<_>>()),
        request: p50_p99(&pool(&|r| &r.request_s)),
        ttft: p50_p99(&pool(&|r| &r.ttft_s)),
        adapter_load: p50_p99(&pool(&|r| &r.adapter_load_s)),
        base_load: median(&runs.iter().map(|r| r.base_load_s).collect::<Vec<_>>()),
    }
}

/// Requests whose tokens are identical on both sides, and whose first token is.
fn agreement(ours: &[ReqResult], theirs: &[Vec<u32>]) -> (usize, usize, usize) {
    let same = ours.iter().zip(theirs).filter(|(a, b)| &a.tokens == *b).count();
    let first = ours.iter().zip(theirs).filter(|(a, b)| a.tokens.first() == b.first()).count();
    (same, first, ours.len().min(theirs.len()))
}

fn pair_json(p: (Option<f64>, Option<f64>)) -> Value {
    json!({"p50S": p.0, "p99S": p.1})
}

// ---------------------------------------------------------------------------
// The suite

/// Which N each side runs at, and in how many rounds the peer runs.
struct Plan {
    counts: Vec<usize>,
    peer_counts: Vec<usize>,
    peer_rounds: u32,
}

impl Plan {
    fn new(o: &ServeOpts) -> Result<Plan> {
        let counts = parse_counts(&o.adapters, "--adapters")?;
        let mut peer_counts = if o.peer.no_peer { vec![] } else { parse_counts(&o.peer_adapters, "--peer-adapters")? };
        peer_counts.retain(|n| *n > 0 && counts.contains(n));
        let peer_rounds = o.peer_rounds.unwrap_or(o.rounds).min(o.rounds);
        Ok(Plan { counts, peer_counts, peer_rounds })
    }
}

/// Every run of every round, with its N and round.
#[derive(Default)]
struct Runs {
    ours: Vec<(usize, u32, OursRun)>,
    peer: Vec<(usize, u32, PeerRun)>,
    billed: Vec<(usize, u32, crate::serve_billed::BilledRun)>,
}

/// The per-N summaries of both sides.
struct Summaries {
    ours: BTreeMap<usize, OursSummary>,
    peer: BTreeMap<usize, PeerSummary>,
    /// Ours with one adapter, the baseline of the N/1 ratios.
    base_tps: Option<f64>,
}

impl Summaries {
    fn of(plan: &Plan, runs: &Runs) -> Summaries {
        let ours: BTreeMap<usize, OursSummary> = plan
            .counts
            .iter()
            .map(|&n| {
                let rs: Vec<&OursRun> = runs.ours.iter().filter(|(m, ..)| *m == n).map(|(.., r)| r).collect();
                (n, summarize_ours(&rs))
            })
            .collect();
        let peer: BTreeMap<usize, PeerSummary> = plan
            .peer_counts
            .iter()
            .filter_map(|&n| {
                let rs: Vec<&PeerRun> = runs.peer.iter().filter(|(m, ..)| *m == n).map(|(.., r)| r).collect();
                (!rs.is_empty()).then(|| (n, summarize_peer(&rs)))
            })
            .collect();
        let base_tps = ours.get(&1).map(|s| s.tps);
        Summaries { ours, peer, base_tps }
    }
}

/// The comparisons the report ends with, kept for the JSON.
#[derive(Default)]
struct Comparisons {
    /// Ours at N over ours at 1, by N.
    n_ratios: serde_json::Map<String, Value>,
    /// Ours over the peer's tokens/s, by N.
    peer_ratio: serde_json::Map<String, Value>,
    /// Token agreement of the first round, by N.
    agree: serde_json::Map<String, Value>,
}

/// Run `bench serve`.
pub fn run_serve(o: &ServeOpts) -> Result<()> {
    let plan = Plan::new(o)?;
    let machine = Machine::detect();
    let (_tmp, dir) = crate::peer::work_dir(o.peer.dir.as_deref(), "bench-serve-")?;

    let t = Instant::now();
    let (files, what) = open_base(o, &dir, !plan.peer_counts.is_empty())?;
    let c = files.config.clone();
    let w = prepare_inputs(o, &dir, &c, &plan.counts, &plan.peer_counts)?;
    let prep_s = t.elapsed().as_secs_f64();
    let one_adapter = {
        let p = adapter_dir(&dir, 0).join("adapter_model.safetensors");
        std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
    };
    print_setup(o, &plan, &c, &what, one_adapter, &dir, prep_s, &machine);

    let peer = if plan.peer_counts.is_empty() { None } else { prepare_peer(o) };
    print_peer(o, &plan, peer.as_ref());

    let ours = load_ours(o, files, &dir, &w)?;
    let billed = if o.billed {
        let base = o.model.clone().unwrap_or_else(|| dir.join("model"));
        let max_n = plan.counts.iter().copied().max().unwrap_or(0);
        let hashes = &w.hashes[..max_n];
        Some(crate::serve_billed::BilledNode::start(
            o,
            &dir,
            &base,
            ours.model.hash,
            hashes,
            ours.dtype,
            &ours.tokenizer,
            &w.prompts,
        )?)
    } else {
        None
    };
    println!();

    let runs = run_rounds(o, &plan, &ours, &w, peer.as_ref(), billed.as_ref())?;
    let sums = Summaries::of(&plan, &runs);
    print_medians(o, &sums);
    let cmp = print_comparisons(o, &sums, &runs);
    let billed = match billed {
        Some(node) => {
            let per_n = print_billed(&plan, &runs);
            Some(json!({"perN": per_n, "node": node.finish()?}))
        }
        None => None,
    };
    println!("machine: {}", machine.describe());

    if let Some(path) = &o.peer.json_out {
        let doc = json!({
            "suite": "serve",
            "date": today(),
            "machine": machine.to_json(),
            "cpuFlags": cpu_flags(),
            "config": config_json(o, &plan, &c, &what, one_adapter),
            "peer": peer.as_ref().map(|p| p.versions.clone()),
            "runs": runs_json(&runs),
            "summary": summary_json(&sums, cmp),
            "billed": billed,
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

/// The header: model, adapters, workload, our engine, inputs, the machine.
#[allow(clippy::too_many_arguments)]
fn print_setup(
    o: &ServeOpts,
    plan: &Plan,
    c: &ml::ModelConfig,
    what: &str,
    one_adapter: u64,
    dir: &Path,
    prep_s: f64,
    machine: &Machine,
) {
    let max_n = plan.counts.iter().copied().max().unwrap_or(0);
    println!(
        "bench serve: requests over N LoRA adapters, Llama architecture, {}, {what}",
        crate::peer::describe_shape(c),
    );
    println!(
        "  adapters: LoRA r={} alpha={} on {}, {} KiB each on disk (PEFT safetensors); N = {}",
        o.rank,
        o.alpha,
        parse_targets(&o.targets).map(|t| t.join(", ")).unwrap_or_default(),
        one_adapter / 1024,
        plan.counts.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  workload: {} requests × ({}-token prompt → {} new tokens, greedy), adapter uniform at random among N (seed {}), {} in flight",
        o.requests, o.prompt_len, o.new_tokens, o.seed, o.concurrency
    );
    println!(
        "  ours: serve::Engine (continuous batching, mixed adapters, max batch {}, {} prompt tokens per step), fresh engine and {} ({} MiB) per run",
        o.max_batch,
        o.prefill_budget,
        match (o.resident, o.held_tier) {
            (true, _) => "AdapterCache holding the run's adapters before its clock starts (--resident)",
            (false, true) => {
                "empty AdapterCache, adapters loaded on a miss from their held (int8) form on disk, written before the clock (--held-tier)"
            }
            (false, false) => "empty AdapterCache, adapters loaded on a miss from their PEFT files on disk",
        },
        o.cache_mb
    );
    println!("  inputs (model, {max_n} adapters, prompts) written in {prep_s:.1} s to {}", dir.display());
    println!("  machine: {}", machine.describe());
    println!("  cpu: {}", simd_line());
}

fn print_peer(o: &ServeOpts, plan: &Plan, peer: Option<&Peer>) {
    match peer {
        Some(p) => println!(
            "  peer: transformers {} + PEFT {} on PyTorch {} (CPU, {} threads), batch 1 sequentially, set_adapter per request, at N = {} for {} round(s); {} {}",
            p.versions["transformers"].as_str().unwrap_or("?"),
            p.versions["peft"].as_str().unwrap_or("?"),
            p.versions["torch"].as_str().unwrap_or("?"),
            o.threads,
            plan.peer_counts.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "),
            plan.peer_rounds,
            p.python.display(),
            p.script.display()
        ),
        None => println!("  peer: none{}", if o.peer.no_peer { " (--no-peer)" } else { "" }),
    }
}

/// Our model, loaded once for every run and warmed up. EOS is off (as on
/// the peer's side), so every request generates exactly `--new-tokens`.
fn load_ours(o: &ServeOpts, files: ml::ModelFiles, dir: &Path, w: &Workload) -> Result<Ours> {
    let t = Instant::now();
    let mut model = ml::Model::from_files(&files).map_err(|e| anyhow!("loading the model: {e}"))?;
    model.config.eos_token_ids.clear();
    let mut tokenizer = files.tokenizer.clone();
    tokenizer.eos_token = None;
    drop(files);
    let (model, tokenizer) = (Arc::new(model), Arc::new(tokenizer));
    // `auto`: the node's rule.
    let dtype = match o.adapter_dtype.as_str() {
        "auto" => model.default_adapter_dtype(),
        s => s.parse().map_err(|e| anyhow!("--adapter-dtype: {e} or auto"))?,
    };
    let ours = Ours { model, tokenizer, dir: dir.to_path_buf(), dtype };
    ours.warm_up(o, &w.prompts)?;
    println!(
        "  our model loaded and warmed up in {:.1} s; adapters held as {}",
        t.elapsed().as_secs_f64(),
        dtype.name()
    );
    Ok(ours)
}

/// Every round: for each N ours, then the peer where it runs, each printed as
/// it ends. A failing peer is dropped; a failing run of ours fails the bench.
fn run_rounds(
    o: &ServeOpts,
    plan: &Plan,
    ours: &Ours,
    w: &Workload,
    peer: Option<&Peer>,
    billed: Option<&crate::serve_billed::BilledNode>,
) -> Result<Runs> {
    let mut runs = Runs::default();
    let mut peer_ok = peer.is_some();
    for round in 1..=o.rounds {
        for &n in &plan.counts {
            let r = ours.run(o, w, n).with_context(|| format!("ours, N = {n}, round {round}"))?;
            print_our_run(round, n, &r);
            runs.ours.push((n, round, r));
            if let Some(node) = billed {
                let r = node.run(o, &w.choices[&n], n).with_context(|| format!("billed, N = {n}, round {round}"))?;
                print_billed_run(round, n, &r);
                runs.billed.push((n, round, r));
            }
            if peer_ok && round <= plan.peer_rounds && plan.peer_counts.contains(&n) {
                match run_peer(peer.expect("peer"), &ours.dir, n, o) {
                    Ok(p) => {
                        print_peer_run(round, n, &p);
                        runs.peer.push((n, round, p));
                    }
                    Err(e) => {
                        eprintln!(
                            "peer: PEFT failed in round {round} at N = {n}: {e:#}\npeer: continuing with ours alone"
                        );
                        peer_ok = false;
                    }
                }
            }
        }
    }
    Ok(runs)
}

fn print_our_run(round: u32, n: usize, r: &OursRun) {
    let (t50, t99) = p50_p99(&r.reqs.iter().map(|x| x.ttft_s).collect::<Vec<_>>());
    let (l50, l99) = p50_p99(&r.reqs.iter().map(|x| x.latency_s).collect::<Vec<_>>());
    println!(
        "round {round:<2} N={n:<5} ours      {:>8.1} tokens/s  TTFT p50 {:>6} p99 {:>6} ms  request p50 {:>6} p99 {:>6} ms  loads {:>4} (p50 {} ms)  hits {:>3}  {:.2} s",
        r.tokens_per_s,
        fmt_ms(t50),
        fmt_ms(t99),
        fmt_ms(l50),
        fmt_ms(l99),
        r.loads_s.len(),
        fmt_ms(p50_p99(&r.loads_s).0),
        r.hits,
        r.wall_s
    );
}

fn print_billed_run(round: u32, n: usize, r: &crate::serve_billed::BilledRun) {
    let (t50, t99) = p50_p99(&r.reqs.iter().map(|x| x.ttft_s).collect::<Vec<_>>());
    let (l50, l99) = p50_p99(&r.reqs.iter().map(|x| x.latency_s).collect::<Vec<_>>());
    println!(
        "round {round:<2} N={n:<5} billed    {:>8.1} tokens/s  TTFT p50 {:>6} p99 {:>6} ms  request p50 {:>6} p99 {:>6} ms  steps {:>5}  {:.2} s",
        r.tokens_per_s,
        fmt_ms(t50),
        fmt_ms(t99),
        fmt_ms(l50),
        fmt_ms(l99),
        r.steps,
        r.wall_s
    );
}

/// Paid requests through the node beside ours, per N: medians of tokens/s,
/// and the time to first token as each client sees it (ours: request start,
/// adapter lookup included, to the first streamed piece; billed: request sent
/// to the first streamed token), pooled over rounds.
fn print_billed(plan: &Plan, runs: &Runs) -> Vec<Value> {
    println!("\nthrough the node, paid (billed) beside ours (the engine called directly):");
    println!(
        "N       ours t/s   billed t/s   billed/ours   client TTFT p50/p99 ours   billed        prompt tokens billed (mean)"
    );
    let (mut out, mut goals) = (Vec::new(), Vec::new());
    for &n in &plan.counts {
        let ours: Vec<&OursRun> = runs.ours.iter().filter(|(m, ..)| *m == n).map(|(.., r)| r).collect();
        let billed: Vec<_> = runs.billed.iter().filter(|(m, ..)| *m == n).map(|(.., r)| r).collect();
        if billed.is_empty() {
            continue;
        }
        let o_tps = median(&ours.iter().map(|r| r.tokens_per_s).collect::<Vec<_>>());
        let b_tps = median(&billed.iter().map(|r| r.tokens_per_s).collect::<Vec<_>>());
        let o_ttft =
            p50_p99(&ours.iter().flat_map(|r| r.reqs.iter().filter_map(|x| x.client_ttft_s)).collect::<Vec<_>>());
        let b_ttft = p50_p99(&billed.iter().flat_map(|r| r.reqs.iter().map(|x| x.ttft_s)).collect::<Vec<_>>());
        let prompts: Vec<f64> = billed.iter().flat_map(|r| r.reqs.iter().map(|x| x.prompt_tokens as f64)).collect();
        let mean_prompt = prompts.iter().sum::<f64>() / prompts.len().max(1) as f64;
        println!(
            "{n:<7} {:>8.1}   {:>10.1}   {:>11}   {:>6} / {:<6} ms        {:>6} / {:<6} ms   {mean_prompt:.1}",
            o_tps,
            b_tps,
            fmt_ratio(ratio(Some(b_tps), Some(o_tps))),
            fmt_ms(o_ttft.0),
            fmt_ms(o_ttft.1),
            fmt_ms(b_ttft.0),
            fmt_ms(b_ttft.1),
        );
        goals.push((n, b_tps, b_ttft));
        out.push(json!({
            "n": n, "oursTokensPerS": o_tps, "billedTokensPerS": b_tps, "ratio": ratio(Some(b_tps), Some(o_tps)),
            "oursClientTtft": pair_json(o_ttft), "billedClientTtft": pair_json(b_ttft), "billedMeanPromptTokens": mean_prompt,
        }));
    }
    // Through the node the time to first token is the client's (request sent to first token).
    print_goals("through the node: ", &goals);
    out
}

fn print_peer_run(round: u32, n: usize, p: &PeerRun) {
    let (r50, r99) = p50_p99(&p.request_s);
    let (t50, t99) = p50_p99(&p.ttft_s);
    println!(
        "round {round:<2} N={n:<5} hf-peft   {:>8.1} tokens/s  TTFT p50 {:>6} p99 {:>6} ms  request p50 {:>6} p99 {:>6} ms  {} adapters loaded (p50 {} ms)  {:.2} s",
        p.tokens_per_s,
        fmt_ms(t50),
        fmt_ms(t99),
        fmt_ms(r50),
        fmt_ms(r99),
        p.adapter_load_s.len(),
        fmt_ms(p50_p99(&p.adapter_load_s).0),
        p.wall_s
    );
}

/// The table of medians and percentiles by system and N, and ours' details per N.
fn print_medians(o: &ServeOpts, sums: &Summaries) {
    println!(
        "\nmedians over {} round(s) (tokens/s: median of runs; latencies: percentiles over the requests of every round); times in ms:",
        o.rounds
    );
    println!(
        "{:<8} {:<8} {:>4} {:>9} {:>7} {:>11} {:>11} {:>13} {:>13} {:>13} {:>13} {:>6} {:>6} {:>5} {:>9}",
        "system",
        "N",
        "runs",
        "tokens/s",
        "N/1",
        "TTFT p50",
        "TTFT p99",
        "client TTFT",
        "request p50",
        "request p99",
        "cold load",
        "hits",
        "misses",
        "evict",
        "resident"
    );
    for (&n, s) in &sums.ours {
        println!(
            "{:<8} {:<8} {:>4} {:>9.1} {:>7} {:>11} {:>11} {:>13} {:>13} {:>13} {:>13} {:>6.0} {:>6.0} {:>5.0} {:>9}",
            "ours",
            n,
            s.runs,
            s.tps,
            fmt_ratio(ratio(Some(s.tps), sums.base_tps)),
            fmt_ms(s.ttft.0),
            fmt_ms(s.ttft.1),
            format!("{}/{}", fmt_ms(s.client_ttft.0), fmt_ms(s.client_ttft.1)),
            fmt_ms(s.latency.0),
            fmt_ms(s.latency.1),
            format!("{}/{}", fmt_ms(s.load.0), fmt_ms(s.load.1)),
            s.hits,
            s.misses,
            s.evictions,
            format!("{:.0} ({:.1}M)", s.resident_adapters, s.resident_bytes / (1u64 << 20) as f64),
        );
    }
    for (&n, s) in &sums.peer {
        println!(
            "{:<8} {:<8} {:>4} {:>9.1} {:>7} {:>11} {:>11} {:>13} {:>13} {:>13} {:>13}",
            "hf-peft",
            n,
            s.runs,
            s.tps,
            "",
            fmt_ms(s.ttft.0),
            fmt_ms(s.ttft.1),
            "",
            fmt_ms(s.request.0),
            fmt_ms(s.request.1),
            format!("{}/{}", fmt_ms(s.adapter_load.0), fmt_ms(s.adapter_load.1)),
        );
    }
    println!(
        "(TTFT: Outcome.time_to_first_token, admission to first token; client TTFT p50/p99: request start, adapter lookup included, to the first streamed piece; cold load p50/p99: AdapterSource::load_as = read + parse safetensors + hash + the weights built as the cache holds them; for hf-peft: load_adapter)"
    );
    for (&n, s) in &sums.ours {
        println!(
            "  N={n:<5} ours: tokens/s min–max {:.1}–{:.1}; {:.2} tokens per engine step, step p50 {} ms; cache get on a miss p50/p99 {}/{} ms over {} cold loads",
            s.tps_min,
            s.tps_max,
            s.tokens_per_step,
            fmt_ms(s.step_p50),
            fmt_ms(s.miss_get.0),
            fmt_ms(s.miss_get.1),
            s.loads
        );
    }
}

/// A p50 and a p99, either missing when there were no values.
type P50P99 = (Option<f64>, Option<f64>);

/// The goals for one path (`label`: "" for ours, or which path),
/// from its (N, tokens/s, time to first token p50 and p99) by N: N = 100
/// against N = 1, and p99 against p50.
fn print_goals(label: &str, by_n: &[(usize, f64, P50P99)]) {
    let tps = |n: usize| by_n.iter().find(|x| x.0 == n).map(|x| x.1);
    if let (Some(one), Some(hundred)) = (tps(1), tps(100)) {
        let r = hundred / one;
        println!(
            "{label}N-adapter / 1-adapter throughput at N = 100: {r:.2} (goal ≥ 0.9: {})",
            if r >= 0.9 { "met" } else { "NOT met" }
        );
    }
    for &(n, _, ttft) in by_n {
        if let (Some(p50), Some(p99)) = ttft {
            let r = p99 / p50;
            println!(
                "{label}time to first token at N = {n}: p99 / p50 = {r:.2} (goal ≤ 2: {})",
                if r <= 2.0 { "met" } else { "NOT met" }
            );
        }
    }
}

/// N adapters against one, ours against the peer, and whether both sides
/// generate the same tokens: printed, and kept for the JSON.
fn print_comparisons(o: &ServeOpts, sums: &Summaries, runs: &Runs) -> Comparisons {
    let mut cmp = Comparisons::default();
    for (&n, s) in &sums.ours {
        cmp.n_ratios.insert(n.to_string(), json!(ratio(Some(s.tps), sums.base_tps)));
    }
    print_goals("", &sums.ours.iter().map(|(&n, s)| (n, s.tps, s.ttft)).collect::<Vec<_>>());
    for (&n, p) in &sums.peer {
        let ours_n = sums.ours.get(&n);
        let r = ratio(ours_n.map(|s| s.tps), Some(p.tps));
        cmp.peer_ratio.insert(n.to_string(), json!(r));
        println!(
            "ours / hf-peft at N = {n}: tokens/s {} (goal ≥ 5×; {} peer round(s)); request latency p50 {}, p99 {} (below 1× is better; ours runs --concurrency requests at once, the peer one at a time); PEFT base load {:.2} s, {} load_adapter calls",
            fmt_ratio(r),
            p.runs,
            fmt_ratio(ratio(ours_n.and_then(|s| s.latency.0), p.request.0)),
            fmt_ratio(ratio(ours_n.and_then(|s| s.latency.1), p.request.1)),
            p.base_load,
            n
        );
        let ours1 = runs.ours.iter().find(|(m, ..)| *m == n).map(|(.., r)| r);
        let theirs1 = runs.peer.iter().find(|(m, ..)| *m == n).map(|(.., r)| r);
        if let (Some(a), Some(b)) = (ours1, theirs1) {
            let (same, first, total) = agreement(&a.reqs, &b.tokens);
            println!(
                "  same weights, same adapters, same prompts: {same}/{total} requests give identical {} tokens on both sides, {first}/{total} the same first token",
                o.new_tokens
            );
            cmp.agree.insert(n.to_string(), json!({"identical": same, "sameFirstToken": first, "requests": total}));
        }
    }
    cmp
}

/// The `config` part of the `--json-out` document.
fn config_json(o: &ServeOpts, plan: &Plan, c: &ml::ModelConfig, what: &str, one_adapter: u64) -> Value {
    json!({
        "model": what,
        "vocab": c.vocab_size, "hidden": c.hidden_size, "layers": c.num_hidden_layers,
        "heads": c.num_attention_heads, "kvHeads": c.num_key_value_heads, "intermediate": c.intermediate_size,
        "params": c.parameter_count(), "loraR": o.rank, "loraAlpha": o.alpha, "targets": parse_targets(&o.targets).unwrap_or_default(),
        "adapters": plan.counts, "peerAdapters": plan.peer_counts, "requests": o.requests, "promptLen": o.prompt_len,
        "newTokens": o.new_tokens, "concurrency": o.concurrency, "maxBatch": o.max_batch,
        "cacheMiB": o.cache_mb, "resident": o.resident, "heldTier": o.held_tier, "prefillBudget": o.prefill_budget, "rounds": o.rounds, "peerRounds": plan.peer_rounds, "seed": o.seed,
        "peerThreads": o.threads, "adapterFileBytes": one_adapter,
    })
}

/// The `runs` part of the `--json-out` document: ours, then the peer's.
fn runs_json(runs: &Runs) -> Vec<Value> {
    runs.ours
        .iter()
        .map(|(n, round, r)| {
            json!({
                "system": "ours", "adapters": n, "round": round, "tokensPerS": r.tokens_per_s, "wallS": r.wall_s,
                "generated": r.generated, "coldLoads": r.loads_s.len(), "cacheHits": r.hits,
                "cacheMisses": r.misses, "cacheEvictions": r.evictions, "steps": r.steps,
                "adapterLoadHistogram": {"p50S": r.hist_load_p50_s, "p99S": r.hist_load_p99_s},
            })
        })
        .chain(runs.peer.iter().map(|(n, round, p)| {
            json!({
                "system": "hf-peft", "adapters": n, "round": round, "tokensPerS": p.tokens_per_s, "result": p.raw,
            })
        }))
        .collect()
}

/// The `summary` part of the `--json-out` document.
fn summary_json(sums: &Summaries, cmp: Comparisons) -> Value {
    let ours_json: serde_json::Map<String, Value> = sums
        .ours
        .iter()
        .map(|(n, s)| {
            (
                n.to_string(),
                json!({
                    "runs": s.runs, "tokensPerS": s.tps, "tokensPerSMin": s.tps_min, "tokensPerSMax": s.tps_max,
                    "ttft": pair_json(s.ttft), "clientTtft": pair_json(s.client_ttft),
                    "request": pair_json(s.latency), "coldLoad": pair_json(s.load), "missGet": pair_json(s.miss_get),
                    "coldLoads": s.loads, "cacheHits": s.hits, "cacheMisses": s.misses,
                    "cacheEvictions": s.evictions, "residentAdapters": s.resident_adapters,
                    "residentBytes": s.resident_bytes, "tokensPerStep": s.tokens_per_step, "stepP50S": s.step_p50,
                }),
            )
        })
        .collect();
    let peer_json: serde_json::Map<String, Value> = sums
        .peer
        .iter()
        .map(|(n, s)| {
            (
                n.to_string(),
                json!({
                    "runs": s.runs, "tokensPerS": s.tps, "request": pair_json(s.request), "ttft": pair_json(s.ttft),
                    "adapterLoad": pair_json(s.adapter_load), "baseLoadS": s.base_load,
                }),
            )
        })
        .collect();
    json!({
        "ours": ours_json, "hfPeft": peer_json, "ratioToOneAdapter": cmp.n_ratios,
        "ratioOursPeerTps": cmp.peer_ratio, "tokenAgreement": cmp.agree,
    })
}

/// The Python peer of this benchmark.
fn prepare_peer(o: &ServeOpts) -> Option<Peer> {
    crate::peer::prepare_python_peer(PEER_SCRIPT, &PEER_PACKAGES, o.peer.python.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ServeOpts {
        ServeOpts {
            adapters: "0,1,3".into(),
            requests: 6,
            concurrency: 3,
            prompt_len: 5,
            new_tokens: 4,
            rounds: 1,
            peer: crate::peer::PeerArgs { no_peer: true, ..Default::default() },
            shape: crate::peer::ModelShape::tiny(),
            rank: 2,
            ..ServeOpts::default()
        }
    }

    #[test]
    fn counts_parse() {
        assert_eq!(parse_counts("1,10, 100,1k,10", "x").unwrap(), vec![1, 10, 100, 1000]);
        assert!(parse_counts("", "x").is_err());
        assert!(parse_counts("a", "x").is_err());
    }

    #[test]
    fn inputs_are_seeded_and_our_engine_serves_them() {
        let o = small();
        let counts = parse_counts(&o.adapters, "--adapters").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = open_base(&o, dir.path(), true).unwrap();
        let w = prepare_inputs(&o, dir.path(), &files.config, &counts, &[3]).unwrap();
        assert_eq!(w.prompts.len(), 6);
        assert!(w.prompts.iter().all(|p| p.len() == 5 && p.iter().all(|&t| t < 64)));
        assert!(w.choices[&3].iter().all(|&a| a < 3));
        assert!(w.choices[&0].iter().all(|&a| a == 0));
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("peer-N3.json")).unwrap()).unwrap();
        assert_eq!(spec["adapter_dirs"].as_array().unwrap().len(), 3);
        assert_eq!(spec["requests"].as_array().unwrap().len(), 6);
        // Seeded: the same inputs again.
        let dir2 = tempfile::tempdir().unwrap();
        let (files2, _) = open_base(&o, dir2.path(), false).unwrap();
        prepare_inputs(&o, dir2.path(), &files2.config, &counts, &[]).unwrap();
        for f in ["model/model.safetensors", "adapters/a2/adapter_model.safetensors"] {
            assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), std::fs::read(dir2.path().join(f)).unwrap(), "{f}");
        }

        let model = Arc::new(ml::Model::from_files(&files).unwrap());
        let ours = Ours {
            model: model.clone(),
            tokenizer: Arc::new(files.tokenizer.clone()),
            dir: dir.path().into(),
            dtype: ml::AdapterDtype::Bf16,
        };
        ours.warm_up(&o, &w.prompts).unwrap();
        let r = ours.run(&o, &w, 3).unwrap();
        assert_eq!(r.generated, 6 * 4);
        assert_eq!(r.hits + r.misses, 6);
        assert_eq!(r.misses as usize, r.loads_s.len());
        assert!(r.reqs.iter().all(|q| q.client_ttft_s.is_some() && q.latency_s >= q.ttft_s));
        // Each request's tokens are its solo generation with its adapter.
        for (i, q) in r.reqs.iter().enumerate() {
            let a = ml::LoraAdapter::load_peft(&adapter_dir(dir.path(), w.choices[&3][i]), &model.config).unwrap();
            let params = ml::SamplingParams { max_tokens: 4, ..Default::default() };
            let solo = ml::generate(&model, &files.tokenizer, Some(&a), &w.prompts[i], &params, |_| true).unwrap();
            assert_eq!(q.tokens, solo.tokens, "request {i}");
        }
        let base = ours.run(&o, &w, 0).unwrap();
        assert_eq!(base.loads_s.len(), 0);
        let s = summarize_ours(&[&r]);
        assert_eq!(s.runs, 1);
        assert!(s.tps > 0.0 && s.ttft.0.is_some());
    }

    /// `--billed`: the workload through a dev node, paid: every request
    /// answers its full length over HTTP, and after the runs every receipt
    /// is settled on-chain and every adapter answer has its record.
    #[test]
    fn billed_runs_pay_through_a_node() {
        let o = ServeOpts { billed: true, ..small() };
        let counts = parse_counts(&o.adapters, "--adapters").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = open_base(&o, dir.path(), false).unwrap();
        let w = prepare_inputs(&o, dir.path(), &files.config, &counts, &[]).unwrap();
        let tokenizer = files.tokenizer.clone();
        let node = crate::serve_billed::BilledNode::start(
            &o,
            dir.path(),
            &dir.path().join("model"),
            files.hash,
            &w.hashes,
            ml::AdapterDtype::F32,
            &tokenizer,
            &w.prompts,
        )
        .unwrap();
        for n in [0, 3] {
            let r = node.run(&o, &w.choices[&n], n).unwrap();
            assert_eq!(r.reqs.len(), 6);
            assert!(r.reqs.iter().all(|q| q.completion_tokens == 4 && q.prompt_tokens == 5 && q.latency_s >= q.ttft_s));
            assert!(r.steps >= 4, "{} engine steps", r.steps);
        }
        let doc = node.finish().unwrap();
        // The warm-up's 3 answers and the runs' 12 came with receipts, and all
        // settle; the 6 adapter answers have records.
        assert_eq!(doc["receipts"], 15, "{doc}");
        assert_eq!(doc["receiptsSettled"], 15, "{doc}");
        assert_eq!(doc["attributionRecords"], 6, "{doc}");
        assert_eq!(doc["attributionFailed"], 0, "{doc}");
    }

    /// `--model FILE.gguf --targets all`: ours serves the file's quantized
    /// weights with adapters on every linear layer; the peer's folder holds the
    /// same weights in f32; each request is its solo generation.
    #[test]
    fn a_quantized_gguf_model_with_adapters_on_all_targets() {
        let dir = tempfile::tempdir().unwrap();
        let shape =
            crate::peer::ModelShape { vocab: 64, hidden: 64, layers: 1, heads: 2, kv_heads: 1, intermediate: 64 };
        let c = shape.config(64).unwrap();
        let src = dir.path().join("src");
        write_hf_model(&src, &c, 7, true, &word_tokenizer_json(c.vocab_size).to_string()).unwrap();
        let gguf = dir.path().join("m.gguf");
        ml::ModelFiles::open(&src).unwrap().write_gguf_as(&gguf, Some(ml::kernels::QuantType::Q8_0)).unwrap();
        let o = ServeOpts { model: Some(gguf), targets: "all".into(), adapters: "2".into(), ..small() };
        assert!(ServeOpts { targets: "q_proj,lm_head".into(), ..o.clone() }.lora_config().is_err());

        let work = dir.path().join("work");
        let (files, what) = open_base(&o, &work, true).unwrap();
        assert!(what.contains("Q8_0"), "{what}");
        assert!(work.join("model/model.safetensors").is_file(), "the peer's f32 copy");
        let w = prepare_inputs(&o, &work, &files.config, &[2], &[2]).unwrap();
        let a0 = ml::LoraAdapter::load_peft(&adapter_dir(&work, 0), &files.config).unwrap();
        assert_eq!(a0.config.target_modules.len(), 7);
        let ours = load_ours(&o, files, &work, &w).unwrap();
        let r = ours.run(&o, &w, 2).unwrap();
        assert_eq!(r.generated, 6 * 4);
        let files = ml::ModelFiles::open(o.model.as_ref().unwrap()).unwrap();
        let model = ml::Model::from_files(&files).unwrap();
        for (i, q) in r.reqs.iter().enumerate() {
            let a = ml::LoraAdapter::load_peft(&adapter_dir(&work, w.choices[&2][i]), &model.config).unwrap();
            let params = ml::SamplingParams { max_tokens: 4, ..Default::default() };
            let solo = ml::generate(&model, &files.tokenizer, Some(&a), &w.prompts[i], &params, |_| true).unwrap();
            assert_eq!(q.tokens, solo.tokens, "request {i}");
        }
    }

    #[test]
    fn agreement_counts() {
        let r =
            |t: Vec<u32>| ReqResult { tokens: t, ttft_s: 0.0, client_ttft_s: None, latency_s: 0.0, miss_get_s: None };
        let ours = vec![r(vec![1, 2]), r(vec![1, 3]), r(vec![4, 5])];
        let theirs = vec![vec![1, 2], vec![1, 2], vec![5, 5]];
        assert_eq!(agreement(&ours, &theirs), (1, 2, 3));
        assert_eq!(last_json("x\n{\"a\": 2}\n", "t").unwrap()["a"], 2);
    }
}
