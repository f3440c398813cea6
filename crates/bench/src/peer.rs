//! Helpers the benchmarks against Python peers share: seeded model weights,
//! running a peer process and reading its JSON, the machine's vector units.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// `n` samples of N(0, std²) (Box–Muller over the seeded generator).
pub(crate) fn normal(rng: &mut ml::rng::Rng, n: usize, std: f64) -> Vec<f32> {
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        v.push((r * c * std) as f32);
        v.push((r * s * std) as f32);
    }
    v.truncate(n);
    v
}

/// Seeded random base weights by Hugging Face name: N(0, 0.02²), the output
/// projections scaled by 1/sqrt(2 · layers), norms at 1.
pub(crate) fn random_weights(c: &ml::ModelConfig, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let h = c.hidden_size;
    let std = 0.02;
    let mut shapes: Vec<(String, Vec<usize>, Option<f64>)> = vec![
        ("model.embed_tokens.weight".into(), vec![c.vocab_size, h], Some(std)),
        ("model.norm.weight".into(), vec![h], None),
        ("lm_head.weight".into(), vec![c.vocab_size, h], Some(std)),
    ];
    shapes.extend(ml::bootstrap::layer_weight_shapes(c, std));
    shapes
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape, std))| {
            let n: usize = shape.iter().product();
            let data = match std {
                None => vec![1.0; n],
                Some(s) => {
                    let mut rng = ml::rng::Rng::new(ml::rng::splitmix64(seed ^ ((k as u64 + 1) << 32)));
                    normal(&mut rng, n, s)
                }
            };
            (name, shape, data)
        })
        .collect()
}

/// The last line of `stdout` that is a JSON object.
pub(crate) fn last_json(stdout: &str, what: &str) -> Result<Value> {
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("{what} printed no JSON result"))
        .and_then(|l| serde_json::from_str(l).with_context(|| format!("{what}: bad JSON result")))
}

pub(crate) fn status_ok(what: &str, mut cmd: Command) -> bool {
    eprintln!("peer: {what}");
    match cmd.stdin(Stdio::null()).stdout(Stdio::inherit()).stderr(Stdio::inherit()).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("peer: {what} failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("peer: cannot run {what}: {e}");
            false
        }
    }
}

/// SIMD flags of /proc/cpuinfo that decide which kernels run.
pub(crate) fn cpu_flags() -> Vec<&'static str> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default();
    ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"]
        .into_iter()
        .filter(|f| flags.contains(f))
        .collect()
}

/// A Python peer found (or installed) for a benchmark.
pub(crate) struct PythonPeer {
    pub python: PathBuf,
    pub script: PathBuf,
    /// What `script --versions` printed (the packages' versions).
    pub versions: Value,
}

/// The `bench/` directory holding `script` (e.g. `peers/train_peer.py`): from the
/// current directory upwards, else next to the crate this was built from.
pub(crate) fn bench_dir(script: &str) -> Option<PathBuf> {
    let has = |d: &Path| d.join(script).is_file();
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            let d = a.join("bench");
            if has(&d) {
                return Some(d);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    has(&built).then_some(built)
}

/// The last JSON line `script --versions` prints under `python`, if it runs.
pub(crate) fn peer_versions(python: &Path, script: &Path) -> Option<Value> {
    let out = Command::new(python).arg(script).arg("--versions").stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    last_json(&String::from_utf8_lossy(&out.stdout), "the peer").ok()
}

/// Find the Python peer `script` (under `bench/`): the given interpreter, else
/// `bench/.venv`, created and given `packages` when missing. `None` (after
/// saying why) when it cannot be had; the benchmark then runs ours alone.
pub(crate) fn prepare_python_peer(script: &str, packages: &[&str], python: Option<&Path>) -> Option<PythonPeer> {
    let Some(bench) = bench_dir(script) else {
        eprintln!("peer: cannot find bench/{script} (run from the source tree); running ours alone");
        return None;
    };
    let script = bench.join(script);
    let wanted = packages.join(", ");
    if let Some(p) = python {
        return match peer_versions(p, &script) {
            Some(versions) => Some(PythonPeer { python: p.to_path_buf(), script, versions }),
            None => {
                eprintln!("peer: {} cannot import {wanted}; running ours alone", p.display());
                None
            }
        };
    }
    let venv = bench.join(".venv");
    let python = venv.join("bin/python");
    if let Some(versions) = peer_versions(&python, &script) {
        return Some(PythonPeer { python, script, versions });
    }
    if !python.exists() {
        let mut c = Command::new("python3");
        c.arg("-m").arg("venv").arg(&venv);
        if !status_ok(&format!("python3 -m venv {}", venv.display()), c) {
            eprintln!("peer: running ours alone");
            return None;
        }
    }
    let pip = venv.join("bin/pip");
    let mut c = Command::new(&pip);
    c.arg("install").args(packages);
    if !status_ok(&format!("{} install {} (network once)", pip.display(), packages.join(" ")), c) {
        eprintln!("peer: running ours alone");
        return None;
    }
    match peer_versions(&python, &script) {
        Some(versions) => Some(PythonPeer { python, script, versions }),
        None => {
            eprintln!("peer: {} still cannot import {wanted}; running ours alone", python.display());
            None
        }
    }
}

/// A tokenizer.json our loader accepts, for benches that never tokenize text.
pub(crate) const TRIVIAL_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"<unk>":0},"unk_token":"<unk>"}}"#;

/// Write the seeded model as a Hugging Face folder both sides load:
/// config.json (transformers 5 reads theta from `rope_parameters`; for
/// generation, no BOS/EOS/pad, which LlamaConfig would otherwise default, so
/// both sides always run to the token budget), model.safetensors (PyTorch's
/// `format` metadata) and `tokenizer` as tokenizer.json.
pub(crate) fn write_hf_model(
    dir: &Path,
    c: &ml::ModelConfig,
    seed: u64,
    generation: bool,
    tokenizer: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cfg = c.to_hf_json();
    cfg["rope_parameters"] = json!({"rope_theta": c.rope_theta, "rope_type": "default"});
    cfg["use_cache"] = json!(generation);
    if generation {
        cfg["bos_token_id"] = Value::Null;
        cfg["eos_token_id"] = Value::Null;
        cfg["pad_token_id"] = Value::Null;
    }
    crate::chain::write_json(&dir.join("config.json"), &cfg)?;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = random_weights(c, seed)
        .into_iter()
        .map(|(n, s, d)| (n, s, d.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("safetensors: {e}"))?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let p = dir.join("model.safetensors");
    safetensors::tensor::serialize_to_file(views, Some(meta), &p)
        .map_err(|e| anyhow!("writing {}: {e}", p.display()))?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer).context("writing tokenizer.json")?;
    Ok(())
}

/// Run `cmd` to completion (killed after `timeout`): its stdout and stderr, or
/// an error with the tail of its stderr.
pub(crate) fn run_child(mut cmd: Command, what: &str, timeout: Duration) -> Result<(String, String)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("piped")));
    let err = pipe(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().with_context(|| format!("waiting for {what}"))? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {} s and was killed", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let lines: Vec<&str> = stderr.lines().collect();
        bail!("{what} failed ({status}):\n{}", lines[lines.len().saturating_sub(15)..].join("\n"));
    }
    Ok((stdout, stderr))
}

/// The options of every benchmark run side by side with a Python peer.
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// Run ours only (no peer, ratios n/a).
    #[arg(long)]
    pub no_peer: bool,
    /// Python with the peer's packages (torch, transformers, peft). Default:
    /// bench/.venv/bin/python of the source tree, created when missing.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Keep the work directory (the model and inputs both sides read) here
    /// (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds one run may take before it is killed and fails.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for PeerArgs {
    fn default() -> Self {
        PeerArgs { no_peer: false, python: None, dir: None, timeout: 3600, json_out: None }
    }
}

/// The Llama shape the peer benchmarks share (the 15.7M model of
/// ../shared/notes/ml-stack.md by default).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelShape {
    /// Vocabulary size.
    #[arg(long, default_value_t = 8192)]
    pub vocab: usize,
    /// Hidden size.
    #[arg(long, default_value_t = 384)]
    pub hidden: usize,
    /// Decoder layers.
    #[arg(long, default_value_t = 6)]
    pub layers: usize,
    /// Attention heads (head_dim = hidden / heads).
    #[arg(long, default_value_t = 6)]
    pub heads: usize,
    /// Key-value heads (grouped-query attention).
    #[arg(long, default_value_t = 2)]
    pub kv_heads: usize,
    /// MLP (SwiGLU) intermediate size.
    #[arg(long, default_value_t = 1024)]
    pub intermediate: usize,
}

impl Default for ModelShape {
    fn default() -> Self {
        ModelShape { vocab: 8192, hidden: 384, layers: 6, heads: 6, kv_heads: 2, intermediate: 1024 }
    }
}

impl ModelShape {
    /// The one-layer shape the benches' own tests run.
    #[cfg(test)]
    pub(crate) fn tiny() -> ModelShape {
        ModelShape { vocab: 64, hidden: 32, layers: 1, heads: 2, kv_heads: 1, intermediate: 48 }
    }

    /// The untied, bias-free Llama configuration of this shape.
    pub(crate) fn config(&self, max_position_embeddings: usize) -> Result<ml::ModelConfig> {
        if self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
            bail!("--hidden {} is not a multiple of --heads {}", self.hidden, self.heads);
        }
        let c = ml::ModelConfig {
            family: ml::Family::Llama,
            vocab_size: self.vocab,
            hidden_size: self.hidden,
            intermediate_size: self.intermediate,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            num_key_value_heads: self.kv_heads,
            head_dim: self.hidden / self.heads,
            max_position_embeddings,
            rope_theta: 10_000.0,
            rope_scaling: None,
            rms_norm_eps: 1e-5,
            tie_word_embeddings: false,
            qkv_bias: false,
            o_bias: false,
            bos_token_id: None,
            eos_token_ids: vec![],
        };
        c.validate().map_err(|e| anyhow!("model configuration: {e}"))?;
        Ok(c)
    }
}

/// The bench's work directory: `dir` (created, kept) if given, else a fresh
/// temporary one (removed when the guard drops).
pub(crate) fn work_dir(dir: Option<&Path>, prefix: &str) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            Ok((None, d.canonicalize()?))
        }
        None => {
            let t = tempfile::Builder::new().prefix(prefix).tempdir().context("creating a temporary directory")?;
            let p = t.path().to_path_buf();
            Ok((Some(t), p))
        }
    }
}

/// "vocab V, hidden H, L layers, A heads / K KV heads, MLP I, tied|untied head,
/// N.NM params": the model line every peer bench prints.
pub(crate) fn describe_shape(c: &ml::ModelConfig) -> String {
    format!(
        "vocab {}, hidden {}, {} layers, {} heads / {} KV heads, MLP {}, {} head, {:.1}M params",
        c.vocab_size,
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.intermediate_size,
        if c.tie_word_embeddings { "tied" } else { "untied" },
        c.parameter_count() as f64 / 1e6
    )
}

/// Every linear layer of a Llama block (`--targets all`).
pub(crate) const ALL_TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/// `--targets`: a comma list of module names, or `all`.
pub(crate) fn parse_targets(s: &str) -> Result<Vec<String>> {
    if s.trim() == "all" {
        return Ok(ALL_TARGETS.iter().map(|t| t.to_string()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !ALL_TARGETS.contains(&t) {
            bail!("--targets: unknown module {t:?} (one of {}, or all)", ALL_TARGETS.join(", "));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.is_empty() {
        bail!("--targets: no module given (a comma list of {}, or all)", ALL_TARGETS.join(", "));
    }
    Ok(out)
}
