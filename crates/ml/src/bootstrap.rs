//! The recipe of the project's committed base model (`openledger model
//! bootstrap`, DESIGN.md "A base model that is the same everywhere").
//!
//! From the bundled public-domain corpus (`data/corpus/corpus.txt.gz`) it
//! 1. holds out 1% of the paragraphs (chosen by a fixed generator, whatever the seed) for validation;
//! 2. trains a byte-level BPE tokenizer on the training paragraphs (`tokenizers`, no normalizer,
//!    so text round-trips byte for byte; specials `<|endoftext|>` = 0, `<|im_start|>`, `<|im_end|>`,
//!    `<pad>`; a ChatML chat template);
//! 3. initialises a small Llama from the seed (normal, std 0.02, by Box–Muller over [`Rng`];
//!    norms at 1; `o_proj` and `down_proj` scaled by 1/√(2·layers) as GPT-2 does);
//! 4. trains every weight (not LoRA) with AdamW, warm-up and cosine decay, gradient clipping, on
//!    windows sampled from the tokenized training paragraphs by a seeded generator;
//! 5. writes a Hugging Face folder with the weights in bf16, and reloads it to measure the
//!    committed weights' losses and hash ([`ModelFiles::open`]).
//!
//! The same configuration gives the same tokenizer and the same weights on the same machine
//! and thread count.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::MlError;
use crate::config::{Family, ModelConfig};
use crate::generate::{SamplingParams, generate};
use crate::lora::LoraConfig;
use crate::model::{BaseGrad, Model};
use crate::rng::{Rng, splitmix64};
use crate::tokenizer::TextTokenizer;
use crate::train::{AdamW, TrainConfig, lr_at};
use crate::weights::{ModelFiles, StoredTensor, TensorValue, write_hf_folder};

/// The special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 4] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"];

/// ChatML, as Hugging Face spells it.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// What was checked about determinism (written into the README).
pub const DETERMINISM_NOTE: &str = "The same configuration gives the same `tokenizer.json` and the same \
weights, so the same model hash, on the same machine and thread count (the test \
`crates/ml/tests/bootstrap.rs` runs the recipe twice and compares hashes). Across thread counts: a \
20-step run of this configuration gave byte-identical `tokenizer.json` and `model.safetensors` with \
`RAYON_NUM_THREADS=1` and `RAYON_NUM_THREADS=2` on the machine that made this model.";

/// Generator salts: the validation split and the training-loss probe do not depend on the seed,
/// so losses of runs with different seeds are measured on the same text.
const SALT_VALIDATION: u64 = 0x5641_4C5F_5350_4C54; // "VAL_SPLT"
const SALT_TRAIN_PROBE: u64 = 0x5452_4E5F_5052_4F42; // "TRN_PROB"
const SALT_BATCHES: u64 = 0x4241_5443_4845_5321; // "BATCHES!"
const SALT_INIT: u64 = 0x494E_4954_5F57_4754; // "INIT_WGT"

/// Everything that determines the model, plus where to read and write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// The gzip-compressed corpus (UTF-8, paragraphs separated by blank lines).
    pub corpus: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Use only the first this many bytes of the corpus text, cut back to a paragraph boundary.
    pub corpus_limit: Option<usize>,
    /// Fraction of the paragraphs held out for validation.
    pub validation_fraction: f64,
    pub vocab_size: usize,
    /// BPE merges need a pair seen at least this often.
    pub min_frequency: u64,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    /// Standard deviation of the initial weights.
    pub init_std: f64,
    /// Optimiser steps.
    pub steps: u64,
    pub seed: u64,
    /// Sequences per step.
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    /// Decoupled weight decay on the matrices (the norms are not decayed).
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub adam_eps: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    /// Measure the validation loss every this many steps (and after the last).
    pub eval_every: u64,
    /// At most this many windows of `seq_len` tokens in each loss measurement.
    pub eval_windows: usize,
}

impl Default for BootstrapConfig {
    /// The committed base model's recipe.
    fn default() -> Self {
        BootstrapConfig {
            corpus: PathBuf::from("data/corpus/corpus.txt.gz"),
            out: PathBuf::from("models/base"),
            corpus_limit: None,
            validation_fraction: 0.01,
            vocab_size: 4096,
            min_frequency: 2,
            hidden_size: 192,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 6,
            num_key_value_heads: 2,
            max_position_embeddings: 512,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            init_std: 0.02,
            steps: DEFAULT_STEPS,
            seed: 0,
            batch_size: 16,
            seq_len: 128,
            learning_rate: 3e-3,
            warmup_steps: 50,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            adam_eps: 1e-8,
            max_grad_norm: 1.0,
            eval_every: 100,
            eval_windows: 128,
        }
    }
}

/// The default step count: the whole run takes about ten minutes on one core of the 2-core
/// machine the model was made on (dev profile; about 1,000 tokens/s, 2 s a step).
pub const DEFAULT_STEPS: u64 = 300;

impl BootstrapConfig {
    /// The model configuration this recipe trains.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            family: Family::Llama,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.hidden_size / self.num_attention_heads.max(1),
            max_position_embeddings: self.max_position_embeddings,
            rope_theta: self.rope_theta,
            rope_scaling: None,
            rms_norm_eps: self.rms_norm_eps,
            tie_word_embeddings: true,
            qkv_bias: false,
            o_bias: false,
            bos_token_id: Some(0),
            eos_token_ids: vec![0, 2],
        }
    }

    pub fn validate(&self) -> Result<(), MlError> {
        let bad = |m: String| Err(MlError::Config(m));
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} must be a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        self.model_config().validate()?;
        if self.vocab_size < 256 + SPECIAL_TOKENS.len() {
            return bad(format!(
                "vocab_size {} is smaller than the 256 bytes and {} special tokens",
                self.vocab_size,
                SPECIAL_TOKENS.len()
            ));
        }
        if self.steps == 0 || self.batch_size == 0 || self.eval_windows == 0 {
            return bad("steps, batch_size and eval_windows must be positive".into());
        }
        if self.seq_len < 2 || self.seq_len > self.max_position_embeddings {
            return bad(format!(
                "seq_len {} must be in 2..={} (max_position_embeddings)",
                self.seq_len, self.max_position_embeddings
            ));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 0.5) {
            return bad(format!("validation_fraction {} must be in (0, 0.5)", self.validation_fraction));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!("learning_rate {} must be positive", self.learning_rate));
        }
        Ok(())
    }

    /// True when everything but the corpus, output, steps and seed is the committed recipe's,
    /// so that the CLI command reproduces it.
    fn is_cli_reachable(&self) -> bool {
        let d = BootstrapConfig::default();
        let mut s = self.clone();
        s.corpus = d.corpus.clone();
        s.out = d.out.clone();
        s.steps = d.steps;
        s.seed = d.seed;
        s == d
    }

    /// The `openledger` command that runs this configuration (meaningful when only the
    /// corpus, output, steps and seed differ from the defaults).
    pub fn command(&self) -> String {
        format!(
            "openledger model bootstrap --out {} --corpus {} --steps {} --seed {}",
            self.out.display(),
            self.corpus.display(),
            self.steps,
            self.seed
        )
    }
}

/// What the run reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage starts ("reading the corpus", "training the tokenizer", ...).
    Stage(String),
    /// An optimiser step ended.
    Step {
        step: u64,
        steps: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_second: f64,
        elapsed_seconds: f64,
        eta_seconds: f64,
    },
    /// A validation loss was measured after `step` steps.
    Eval { step: u64, val_loss: f64 },
}

/// One measurement on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    /// Mean training-batch loss of the steps since the previous point.
    pub train_loss: f64,
    pub val_loss: f64,
}

/// A greedy continuation of a prompt by the written model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub prompt: String,
    pub completion: String,
}

/// What a run made and measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootstrapReport {
    pub out: PathBuf,
    /// `ModelFiles::open(out).hash`: tensors (bf16, as written) and tokenizer.
    pub model_hash: String,
    pub tokenizer_hash: String,
    /// Tokens in the trained tokenizer (at most `vocab_size`).
    pub tokenizer_tokens: usize,
    pub parameters: usize,
    pub corpus_sha256: String,
    pub corpus_text_sha256: String,
    /// Bytes of corpus text used.
    pub corpus_bytes: usize,
    pub paragraphs: usize,
    pub validation_paragraphs: usize,
    pub train_tokens: usize,
    pub validation_tokens: usize,
    /// Bytes of text per token on the training paragraphs.
    pub bytes_per_token: f64,
    /// Tokens the optimiser saw (steps × batch × sequence length).
    pub tokens_seen: u64,
    /// The validation loss of the initial weights (about ln(vocab)).
    pub initial_val_loss: f64,
    /// Losses (mean next-token cross-entropy, nats) of the written bf16 weights: on a fixed
    /// sample of training windows and on the held-out paragraphs.
    pub final_train_loss: f64,
    pub final_val_loss: f64,
    /// The same validation loss measured with the f32 weights before rounding to bf16.
    pub final_val_loss_f32: f64,
    /// Mean training-batch loss of the last ten steps.
    pub last_steps_loss: f64,
    pub history: Vec<EvalPoint>,
    pub samples: Vec<Sample>,
    /// Training throughput (tokens of the optimiser steps per second of step time).
    pub tokens_per_second: f64,
    pub tokenizer_seconds: f64,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    /// Rayon threads (candle's matmuls and the tokenizer use them).
    pub threads: usize,
    /// UTC date of the run, YYYY-MM-DD.
    pub date: String,
    /// The files written and their sizes in bytes.
    pub files: Vec<(String, u64)>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MlError + '_ {
    move |e| MlError::Io(format!("{}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The corpus text (gzip-decompressed and checked as UTF-8) with the sha256 of the file and of the text.
fn read_corpus(path: &Path) -> Result<(String, String, String), MlError> {
    let gz = std::fs::read(path).map_err(|e| {
        MlError::NotFound(format!(
            "{}: {e} (the corpus is data/corpus/corpus.txt.gz in the repository; pass --corpus)",
            path.display()
        ))
    })?;
    let file_sha = hex(&sha2::Sha256::digest(&gz));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut raw)
        .map_err(|e| MlError::Format(format!("{}: not a gzip file: {e}", path.display())))?;
    let text_sha = hex(&sha2::Sha256::digest(&raw));
    let text = String::from_utf8(raw)
        .map_err(|e| MlError::Format(format!("{}: the text is not UTF-8: {e}", path.display())))?;
    Ok((text, file_sha, text_sha))
}

/// The paragraphs of `text` (separated by blank lines), after cutting it to `limit` bytes at a
/// paragraph boundary.
fn paragraphs(text: &str, limit: Option<usize>) -> (Vec<&str>, usize) {
    let mut used = text;
    if let Some(n) = limit
        && n < text.len()
    {
        let mut end = n;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = &text[..end];
        used = match cut.rfind("\n\n") {
            Some(i) => &text[..i],
            None => cut,
        };
    }
    let paras = used.split("\n\n").map(|p| p.trim_matches('\n')).filter(|p| !p.trim().is_empty()).collect();
    (paras, used.len())
}

/// Indices of the validation paragraphs: a partial Fisher–Yates shuffle by a fixed generator.
fn validation_split(n: usize, fraction: f64) -> Vec<bool> {
    let k = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(SALT_VALIDATION);
    for i in 0..k {
        let j = i + rng.below((n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut val = vec![false; n];
    for &i in &idx[..k] {
        val[i] = true;
    }
    val
}

/// Train the byte-level BPE tokenizer on `texts` and load it as a [`TextTokenizer`].
fn train_tokenizer(texts: &[String], cfg: &BootstrapConfig) -> Result<TextTokenizer, MlError> {
    use tokenizers::decoders::DecoderWrapper;
    use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
    use tokenizers::normalizers::NormalizerWrapper;
    use tokenizers::pre_tokenizers::PreTokenizerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::processors::PostProcessorWrapper;
    use tokenizers::{AddedToken, TokenizerBuilder, TokenizerImpl};

    let terr = |e: tokenizers::Error| MlError::Tokenizer(format!("training the tokenizer: {e}"));
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(cfg.vocab_size)
        .min_frequency(cfg.min_frequency)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(SPECIAL_TOKENS.iter().map(|s| AddedToken::from(*s, true)).collect())
        .build();
    // add_prefix_space = false: no space is invented before the text, so decoding gives the input back.
    let byte_level = ByteLevel::new(false, true, true);
    let mut tk: TokenizerImpl<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper> =
        TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(byte_level.into()))
            .with_post_processor(Some(byte_level.into()))
            .with_decoder(Some(byte_level.into()))
            .build()
            .map_err(terr)?;
    tk.train(&mut trainer, texts.iter()).map_err(terr)?;
    let json = tk.to_string(false).map_err(terr)?;
    let tokenizer = TextTokenizer::from_json(json, Some(tokenizer_config_json(cfg)))?;
    for (id, s) in SPECIAL_TOKENS.iter().enumerate() {
        if tokenizer.token_id(s) != Some(id as u32) {
            return Err(MlError::Tokenizer(format!("special token {s} did not get id {id}")));
        }
    }
    if tokenizer.vocab_size() > cfg.vocab_size {
        return Err(MlError::Tokenizer(format!(
            "the tokenizer has {} tokens, more than vocab_size {}",
            tokenizer.vocab_size(),
            cfg.vocab_size
        )));
    }
    Ok(tokenizer)
}

/// `tokenizer_config.json`: special tokens, the ChatML template, no added BOS/EOS.
fn tokenizer_config_json(cfg: &BootstrapConfig) -> String {
    let decoder: serde_json::Map<String, serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i.to_string(),
                serde_json::json!({"content": s, "lstrip": false, "normalized": false, "rstrip": false,
                    "single_word": false, "special": true}),
            )
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "add_bos_token": false,
        "add_eos_token": false,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": "<|endoftext|>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": false,
        "eos_token": "<|im_end|>",
        "model_max_length": cfg.max_position_embeddings,
        "pad_token": "<pad>",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": null,
    }))
    .expect("json")
}

/// `n` normal draws with standard deviation `std` (Box–Muller, both outputs used).
fn normal(rng: &mut Rng, n: usize, std: f64) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let u1 = 1.0 - rng.next_f64(); // (0, 1]
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        v.push((r * c * std) as f32);
        if v.len() < n {
            v.push((r * s * std) as f32);
        }
    }
    v
}

/// The weights of a bias-free Llama's decoder layers by Hugging Face name, with their shapes
/// and the standard deviation they are initialised with (`None`: a norm, all ones): `std`, and
/// `std / sqrt(2 · layers)` for `o_proj` and `down_proj`, which write into the residual stream.
pub fn layer_weight_shapes(c: &ModelConfig, std: f64) -> Vec<(String, Vec<usize>, Option<f64>)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim);
    let proj_std = std / ((2 * c.num_hidden_layers) as f64).sqrt();
    let mut shapes = Vec::with_capacity(9 * c.num_hidden_layers);
    for l in 0..c.num_hidden_layers {
        let p = format!("model.layers.{l}");
        shapes.push((format!("{p}.input_layernorm.weight"), vec![h], None));
        shapes.push((format!("{p}.post_attention_layernorm.weight"), vec![h], None));
        shapes.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h], Some(std)));
        shapes.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h], Some(std)));
        shapes.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h], Some(std)));
        shapes.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q], Some(proj_std)));
        shapes.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h], Some(std)));
        shapes.push((format!("{p}.mlp.up_proj.weight"), vec![i, h], Some(std)));
        shapes.push((format!("{p}.mlp.down_proj.weight"), vec![h, i], Some(proj_std)));
    }
    shapes
}

/// The initial weights by Hugging Face name; each tensor draws from its own generator, seeded
/// from the seed and the tensor's name.
fn init_weights(c: &ModelConfig, seed: u64, std: f64) -> Result<BTreeMap<String, Tensor>, MlError> {
    let mut shapes: Vec<(String, Vec<usize>, Option<f64>)> = vec![
        ("model.embed_tokens.weight".into(), vec![c.vocab_size, c.hidden_size], Some(std)),
        ("model.norm.weight".into(), vec![c.hidden_size], None),
    ];
    shapes.extend(layer_weight_shapes(c, std));
    let mut out = BTreeMap::new();
    for (name, shape, std) in shapes {
        let n: usize = shape.iter().product();
        let t = match std {
            None => Tensor::ones(shape.as_slice(), DType::F32, &Device::Cpu)?,
            Some(s) => {
                let d = blake3::hash(name.as_bytes());
                let salt = u64::from_le_bytes(d.as_bytes()[..8].try_into().expect("8 bytes"));
                let mut rng = Rng::new(splitmix64(seed ^ SALT_INIT) ^ salt);
                Tensor::from_vec(normal(&mut rng, n, s), shape.as_slice(), &Device::Cpu)?
            }
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// A [`Model`] whose weights are the given tensors (variables, for training).
fn model_from_tensors(
    config: &ModelConfig,
    tensors: &BTreeMap<String, Tensor>,
    tokenizer: &TextTokenizer,
) -> Result<Model, MlError> {
    let files = ModelFiles {
        source: PathBuf::from("<bootstrap>"),
        config: config.clone(),
        tensors: tensors
            .iter()
            .map(|(n, t)| {
                let st = StoredTensor {
                    dtype: "F32".into(),
                    shape: t.dims().to_vec(),
                    value: TensorValue::Dense(t.clone()),
                };
                (n.clone(), st)
            })
            .collect(),
        tokenizer: tokenizer.clone(),
        hash: primitives::B256::ZERO,
    };
    Model::from_files(&files)
}

/// Mean next-token loss over windows `starts` of `stream` (no gradients).
fn eval_loss(model: &Model, stream: &[u32], starts: &[usize], seq_len: usize, batch: usize) -> Result<f64, MlError> {
    let (mut sum, mut count) = (0.0f64, 0.0f64);
    for chunk in starts.chunks(batch) {
        let mut toks = Vec::with_capacity(chunk.len() * seq_len);
        for &s in chunk {
            toks.extend_from_slice(&stream[s..s + seq_len]);
        }
        let t = Tensor::from_vec(toks, (chunk.len(), seq_len), &Device::Cpu)?;
        // The mean over every target of every window, summed in f64.
        let logits = model.forward_train(&t, None, BaseGrad::Frozen, None)?.detach();
        let logits = logits.narrow(1, 0, seq_len - 1)?.contiguous()?;
        let lsm = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        let targets = t.narrow(1, 1, seq_len - 1)?.contiguous()?;
        let nll = lsm.gather(&targets.unsqueeze(2)?, 2)?.neg()?;
        sum += nll.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        count += (chunk.len() * (seq_len - 1)) as f64;
    }
    Ok(sum / count.max(1.0))
}

/// UTC date of a Unix time, YYYY-MM-DD (times past the year 9999 give 9999-12-31).
fn utc_date(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.min(253_402_300_799));
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

/// The tokenized corpus: training and validation token streams, the windows
/// losses are measured on, and what the report says about the corpus.
struct Corpus {
    corpus_sha256: String,
    corpus_text_sha256: String,
    corpus_bytes: usize,
    paragraphs: usize,
    validation_paragraphs: usize,
    /// Bytes of the training paragraphs' text.
    train_bytes: usize,
    train_ids: Vec<u32>,
    val_ids: Vec<u32>,
    /// Consecutive windows over the held-out paragraphs.
    val_starts: Vec<usize>,
    /// Windows of the training stream at positions a fixed generator picks.
    train_starts: Vec<usize>,
}

/// Read and split the corpus, train the tokenizer on the training paragraphs,
/// and tokenize both parts. Returns the tokenizer and the seconds training it took.
fn prepare_corpus(
    cfg: &BootstrapConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Corpus, TextTokenizer, f64), MlError> {
    progress(Progress::Stage(format!("reading {}", cfg.corpus.display())));
    let (text, corpus_sha256, corpus_text_sha256) = read_corpus(&cfg.corpus)?;
    let (paras, corpus_bytes) = paragraphs(&text, cfg.corpus_limit);
    if paras.len() < 2 {
        return Err(MlError::Config(format!("the corpus has {} paragraphs; it needs at least two", paras.len())));
    }
    let is_val = validation_split(paras.len(), cfg.validation_fraction);
    // Each paragraph keeps its blank-line separator, so the model learns where paragraphs end.
    let with_sep = |p: &str| format!("{p}\n\n");
    let train_texts: Vec<String> = paras.iter().zip(&is_val).filter(|(_, v)| !**v).map(|(p, _)| with_sep(p)).collect();
    let val_texts: Vec<String> = paras.iter().zip(&is_val).filter(|(_, v)| **v).map(|(p, _)| with_sep(p)).collect();

    progress(Progress::Stage(format!(
        "training the tokenizer ({} tokens) on {} paragraphs",
        cfg.vocab_size,
        train_texts.len()
    )));
    let t_tok = Instant::now();
    let tokenizer = train_tokenizer(&train_texts, cfg)?;
    let tokenizer_seconds = t_tok.elapsed().as_secs_f64();

    progress(Progress::Stage("tokenizing the corpus".into()));
    let encode_all = |texts: &[String]| -> Result<Vec<u32>, MlError> {
        let enc = tokenizer
            .inner
            .encode_batch(texts.to_vec(), false)
            .map_err(|e| MlError::Tokenizer(format!("encoding the corpus: {e}")))?;
        Ok(enc.iter().flat_map(|e| e.get_ids().iter().copied()).collect())
    };
    let train_ids = encode_all(&train_texts)?;
    let val_ids = encode_all(&val_texts)?;
    let train_bytes: usize = train_texts.iter().map(|t| t.len()).sum();
    let t = cfg.seq_len;
    if train_ids.len() <= t || val_ids.len() < t {
        return Err(MlError::Config(format!(
            "too little text: {} training and {} validation tokens for windows of {t}",
            train_ids.len(),
            val_ids.len()
        )));
    }
    // Validation: consecutive windows over the held-out paragraphs. Training probe: windows at
    // positions a fixed generator picks.
    let val_starts: Vec<usize> = (0..val_ids.len() / t).map(|w| w * t).take(cfg.eval_windows).collect();
    let mut probe = Rng::new(SALT_TRAIN_PROBE);
    let span = (train_ids.len() - t + 1) as u64;
    let train_starts: Vec<usize> = (0..val_starts.len()).map(|_| probe.below(span) as usize).collect();
    let corpus = Corpus {
        corpus_sha256,
        corpus_text_sha256,
        corpus_bytes,
        paragraphs: paras.len(),
        validation_paragraphs: val_texts.len(),
        train_bytes,
        train_ids,
        val_ids,
        val_starts,
        train_starts,
    };
    Ok((corpus, tokenizer, tokenizer_seconds))
}

/// What training measured on the way.
struct Training {
    history: Vec<EvalPoint>,
    /// Seconds spent in optimiser steps (evaluations not included).
    train_seconds: f64,
    /// Mean training-batch loss of the last ten steps.
    last_steps_loss: f64,
}

/// The two AdamW optimisers of full-parameter training: the matrices are
/// decayed, the norms are not.
struct Optimisers<'v> {
    mats: Vec<&'v Var>,
    norms: Vec<&'v Var>,
    opt_mats: AdamW,
    opt_norms: AdamW,
    /// Settings of the norms' steps; `decay_cfg` adds the weight decay for the matrices'.
    opt_cfg: TrainConfig,
    decay_cfg: TrainConfig,
}

impl<'v> Optimisers<'v> {
    fn new(cfg: &BootstrapConfig, vars: &'v BTreeMap<String, Var>) -> Result<Self, MlError> {
        let (mats, norms): (Vec<&Var>, Vec<&Var>) = vars.values().partition(|v| v.as_tensor().rank() >= 2);
        // Full-parameter training uses only TrainConfig's optimiser settings; its LoRA part is never read.
        let unused_lora = LoraConfig { r: 1, lora_alpha: 1.0, lora_dropout: 0.0, target_modules: vec![] };
        let mut opt_cfg = TrainConfig::new(unused_lora, cfg.learning_rate, cfg.steps);
        opt_cfg.warmup_steps = cfg.warmup_steps;
        opt_cfg.beta1 = cfg.beta1;
        opt_cfg.beta2 = cfg.beta2;
        opt_cfg.eps = cfg.adam_eps;
        opt_cfg.max_grad_norm = cfg.max_grad_norm;
        opt_cfg.seed = cfg.seed;
        let mut decay_cfg = opt_cfg.clone();
        decay_cfg.weight_decay = cfg.weight_decay;
        let opt_mats = AdamW::new(&mats)?;
        let opt_norms = AdamW::new(&norms)?;
        Ok(Optimisers { mats, norms, opt_mats, opt_norms, opt_cfg, decay_cfg })
    }

    /// Backward from `loss_t`, clip the global gradient norm to `max_grad_norm`,
    /// and step both optimisers at `lr`. Returns the norm before clipping.
    fn step(&mut self, loss_t: &Tensor, max_grad_norm: f64, lr: f64) -> Result<f64, MlError> {
        let grads = loss_t.backward()?;
        let grad_of = |v: &Var| -> Result<Tensor, MlError> {
            Ok(match grads.get(v.as_tensor()) {
                Some(g) => g.clone(),
                None => v.as_tensor().zeros_like()?,
            })
        };
        let mut g_mats: Vec<Tensor> = self.mats.iter().map(|v| grad_of(v)).collect::<Result<_, _>>()?;
        let mut g_norms: Vec<Tensor> = self.norms.iter().map(|v| grad_of(v)).collect::<Result<_, _>>()?;
        drop(grads);
        let mut sq = 0.0f64;
        for g in g_mats.iter().chain(&g_norms) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        let grad_norm = sq.sqrt();
        if max_grad_norm > 0.0 && grad_norm > max_grad_norm {
            let s = max_grad_norm / (grad_norm + 1e-6);
            g_mats = g_mats.into_iter().map(|g| g * s).collect::<Result<_, _>>()?;
            g_norms = g_norms.into_iter().map(|g| g * s).collect::<Result<_, _>>()?;
        }
        self.opt_mats.step(&self.mats, &g_mats, lr, &self.decay_cfg)?;
        self.opt_norms.step(&self.norms, &g_norms, lr, &self.opt_cfg)?;
        Ok(grad_norm)
    }
}

/// `cfg.steps` optimiser steps on seeded windows of the training stream,
/// reporting each step and measuring the validation loss every `eval_every`.
fn train_all(
    cfg: &BootstrapConfig,
    model: &Model,
    vars: &BTreeMap<String, Var>,
    data: &Corpus,
    wall: Instant,
    progress: &mut dyn FnMut(Progress),
) -> Result<Training, MlError> {
    let t = cfg.seq_len;
    let span = (data.train_ids.len() - t + 1) as u64;
    let mut opt = Optimisers::new(cfg, vars)?;
    let mut batches = Rng::new(splitmix64(cfg.seed ^ SALT_BATCHES));
    let mask = Tensor::ones((cfg.batch_size, t), DType::F32, &Device::Cpu)?;
    let step_tokens = (cfg.batch_size * t) as u64;
    let mut train_seconds = 0.0f64;
    let mut history = Vec::new();
    let mut since_eval: Vec<f64> = Vec::new();
    let mut recent: Vec<f64> = Vec::new();
    progress(Progress::Stage(format!("training: {} steps of {} sequences × {} tokens", cfg.steps, cfg.batch_size, t)));
    for step in 0..cfg.steps {
        let t0 = Instant::now();
        let mut toks = Vec::with_capacity(cfg.batch_size * t);
        for _ in 0..cfg.batch_size {
            let s = batches.below(span) as usize;
            toks.extend_from_slice(&data.train_ids[s..s + t]);
        }
        let toks = Tensor::from_vec(toks, (cfg.batch_size, t), &Device::Cpu)?;
        let loss_t = model.loss(&toks, &mask, None, BaseGrad::Naive, None)?;
        let loss = loss_t.to_scalar::<f32>()? as f64;
        if !loss.is_finite() {
            return Err(MlError::Tensor(format!("the training loss is {loss} at step {}", step + 1)));
        }
        let lr = lr_at(cfg.learning_rate, cfg.warmup_steps, cfg.steps, step);
        let grad_norm = opt.step(&loss_t, cfg.max_grad_norm, lr)?;
        train_seconds += t0.elapsed().as_secs_f64();
        since_eval.push(loss);
        recent.push(loss);
        if recent.len() > 10 {
            recent.remove(0);
        }
        let done = step + 1;
        let per_step = train_seconds / done as f64;
        progress(Progress::Step {
            step: done,
            steps: cfg.steps,
            loss,
            lr,
            grad_norm,
            tokens_per_second: (done * step_tokens) as f64 / train_seconds.max(1e-9),
            elapsed_seconds: wall.elapsed().as_secs_f64(),
            eta_seconds: per_step * (cfg.steps - done) as f64,
        });
        if done % cfg.eval_every.max(1) == 0 || done == cfg.steps {
            let val_loss = eval_loss(model, &data.val_ids, &data.val_starts, t, cfg.batch_size)?;
            let train_loss = since_eval.iter().sum::<f64>() / since_eval.len() as f64;
            since_eval.clear();
            history.push(EvalPoint { step: done, train_loss, val_loss });
            progress(Progress::Eval { step: done, val_loss });
        }
    }
    let last_steps_loss = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
    Ok(Training { history, train_seconds, last_steps_loss })
}

/// Write the weights in bf16 as a Hugging Face folder (config.json saying so).
fn write_model(
    cfg: &BootstrapConfig,
    mc: &ModelConfig,
    vars: &BTreeMap<String, Var>,
    tokenizer: &TextTokenizer,
) -> Result<(), MlError> {
    let bf16: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| v.as_tensor().to_dtype(DType::BF16).map(|t| (n.clone(), t)))
        .collect::<Result<_, _>>()?;
    write_hf_folder(&cfg.out, mc, &bf16, tokenizer)?;
    // The weights are stored in bf16 (the model computes in f32 after loading).
    let mut cj = mc.to_hf_json();
    cj["torch_dtype"] = serde_json::json!("bfloat16");
    let cp = cfg.out.join("config.json");
    std::fs::write(&cp, serde_json::to_string_pretty(&cj).expect("json") + "\n").map_err(io(&cp))
}

/// What the written model measures: its files, train and validation losses, greedy samples.
struct Written {
    files: ModelFiles,
    final_train_loss: f64,
    final_val_loss: f64,
    samples: Vec<Sample>,
}

/// Reload the written folder and measure the committed (bf16) weights.
fn measure_written(cfg: &BootstrapConfig, mc: &ModelConfig, data: &Corpus) -> Result<Written, MlError> {
    let t = cfg.seq_len;
    let files = ModelFiles::open(&cfg.out)?;
    if files.config != *mc {
        return Err(MlError::Format("the written config.json does not read back as written".into()));
    }
    let loaded = Model::from_files(&files)?;
    let final_val_loss = eval_loss(&loaded, &data.val_ids, &data.val_starts, t, cfg.batch_size)?;
    let final_train_loss = eval_loss(&loaded, &data.train_ids, &data.train_starts, t, cfg.batch_size)?;
    let mut samples = Vec::new();
    for prompt in ["And God said", "hacker n."] {
        let ids = files.tokenizer.encode(prompt, false)?;
        let params = SamplingParams { max_tokens: 40, ..SamplingParams::default() };
        let g = generate(&loaded, &files.tokenizer, None, &ids, &params, |_| true)?;
        samples.push(Sample { prompt: prompt.into(), completion: g.text });
    }
    Ok(Written { files, final_train_loss, final_val_loss, samples })
}

/// Run the recipe: corpus → tokenizer → model → training → folder. See the module docs.
pub fn run(cfg: &BootstrapConfig, progress: &mut dyn FnMut(Progress)) -> Result<BootstrapReport, MlError> {
    let wall = Instant::now();
    cfg.validate()?;
    let mc = cfg.model_config();
    let (data, tokenizer, tokenizer_seconds) = prepare_corpus(cfg, progress)?;
    let t = cfg.seq_len;

    progress(Progress::Stage(format!("initialising {} parameters (seed {})", mc.parameter_count(), cfg.seed)));
    let init = init_weights(&mc, cfg.seed, cfg.init_std)?;
    let vars: BTreeMap<String, Var> =
        init.into_iter().map(|(n, t)| Var::from_tensor(&t).map(|v| (n, v))).collect::<Result<_, _>>()?;
    let var_tensors: BTreeMap<String, Tensor> = vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let model = model_from_tensors(&mc, &var_tensors, &tokenizer)?;
    let parameters: usize = vars.values().map(|v| v.as_tensor().elem_count()).sum();

    let initial_val_loss = eval_loss(&model, &data.val_ids, &data.val_starts, t, cfg.batch_size)?;
    progress(Progress::Eval { step: 0, val_loss: initial_val_loss });
    let training = train_all(cfg, &model, &vars, &data, wall, progress)?;
    let final_val_loss_f32 = training.history.last().map(|p| p.val_loss).unwrap_or(f64::NAN);

    progress(Progress::Stage(format!("writing {}", cfg.out.display())));
    drop(model);
    write_model(cfg, &mc, &vars, &tokenizer)?;

    progress(Progress::Stage("reloading the written model and measuring its losses".into()));
    let written = measure_written(cfg, &mc, &data)?;

    let step_tokens = (cfg.batch_size * t) as u64;
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut report = BootstrapReport {
        out: cfg.out.clone(),
        model_hash: written.files.hash.to_string(),
        tokenizer_hash: written.files.tokenizer.hash.to_string(),
        tokenizer_tokens: written.files.tokenizer.vocab_size(),
        parameters,
        corpus_sha256: data.corpus_sha256,
        corpus_text_sha256: data.corpus_text_sha256,
        corpus_bytes: data.corpus_bytes,
        paragraphs: data.paragraphs,
        validation_paragraphs: data.validation_paragraphs,
        train_tokens: data.train_ids.len(),
        validation_tokens: data.val_ids.len(),
        bytes_per_token: data.train_bytes as f64 / data.train_ids.len() as f64,
        tokens_seen: cfg.steps * step_tokens,
        initial_val_loss,
        final_train_loss: written.final_train_loss,
        final_val_loss: written.final_val_loss,
        final_val_loss_f32,
        last_steps_loss: training.last_steps_loss,
        history: training.history,
        samples: written.samples,
        tokens_per_second: (cfg.steps * step_tokens) as f64 / training.train_seconds.max(1e-9),
        tokenizer_seconds,
        train_seconds: training.train_seconds,
        wall_seconds: 0.0,
        threads: rayon::current_num_threads(),
        date: utc_date(unix),
        files: vec![],
    };
    let model_files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
    let size = |name: &str| std::fs::metadata(cfg.out.join(name)).map(|m| m.len()).unwrap_or(0);
    report.files = model_files.iter().map(|n| (n.to_string(), size(n))).collect();
    report.wall_seconds = wall.elapsed().as_secs_f64();

    let p = cfg.out.join("README.md");
    std::fs::write(&p, readme(cfg, &mc, &report)).map_err(io(&p))?;
    let p = cfg.out.join("bootstrap.json");
    let j = serde_json::json!({ "config": cfg, "report": report });
    std::fs::write(&p, serde_json::to_string_pretty(&j).expect("json") + "\n").map_err(io(&p))?;
    report.files.push(("README.md".into(), size("README.md")));
    report.files.push(("bootstrap.json".into(), size("bootstrap.json")));
    Ok(report)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{s}s") }
}

fn readme(cfg: &BootstrapConfig, mc: &ModelConfig, r: &BootstrapReport) -> String {
    let mut s = String::new();
    let epochs = r.tokens_seen as f64 / r.train_tokens as f64;
    s.push_str("# The OpenLedger base model\n\n");
    s.push_str(&format!(
        "A small Llama-family decoder ({} parameters) trained from scratch, every weight, on the \
         project's public-domain corpus (`data/corpus/corpus.txt.gz`: the Jargon File 4.4.7 and the \
         King James Bible; see `data/corpus/README.md`). It is committed to the repository so that a \
         machine with no downloads has a working base model whose hash is the same everywhere \
         (DESIGN.md, \"A base model that is the same everywhere\"): ModelFactory fine-tunes LoRA \
         adapters on it and OpenLoRA serves it. It continues text in the style of its corpus; it is \
         not an assistant, and it knows nothing else.\n\n",
        thousands(r.parameters as u64)
    ));
    s.push_str("| | |\n|---|---|\n");
    s.push_str(&format!("| model hash | `{}` |\n", r.model_hash));
    s.push_str(&format!("| tokenizer hash | `{}` (blake3 of `tokenizer.json`) |\n", r.tokenizer_hash));
    s.push_str(&format!(
        "| architecture | Llama: vocab {}, hidden {}, {} layers, {} heads / {} KV heads (head dim {}), MLP {} \
         (SwiGLU), context {}, RoPE θ {}, RMSNorm ε {:e}, tied embeddings, no biases |\n",
        mc.vocab_size,
        mc.hidden_size,
        mc.num_hidden_layers,
        mc.num_attention_heads,
        mc.num_key_value_heads,
        mc.head_dim,
        mc.intermediate_size,
        mc.max_position_embeddings,
        mc.rope_theta,
        mc.rms_norm_eps
    ));
    s.push_str(&format!("| parameters | {} |\n", thousands(r.parameters as u64)));
    s.push_str(
        "| weights | bf16 in `model.safetensors` (the model computes in f32 after loading); the hash covers \
         the bf16 bytes |\n",
    );
    s.push_str(&format!(
        "| tokenizer | byte-level BPE, {} tokens, trained on the training paragraphs (min. frequency {}); no \
         normalizer, no prefix space, so text round-trips byte for byte; {:.2} bytes per token on the training \
         text; specials `<|endoftext|>` (0, bos), `<|im_start|>` (1), `<|im_end|>` (2, eos), `<pad>` (3); \
         ChatML chat template |\n",
        r.tokenizer_tokens, cfg.min_frequency, r.bytes_per_token
    ));
    s.push_str(&format!(
        "| corpus | sha256 of `corpus.txt.gz` `{}`; of its text `{}`; {} bytes used, {} paragraphs, {} of \
         them ({}%) held out for validation by a fixed generator; {} training and {} validation tokens |\n",
        r.corpus_sha256,
        r.corpus_text_sha256,
        thousands(r.corpus_bytes as u64),
        thousands(r.paragraphs as u64),
        r.validation_paragraphs,
        cfg.validation_fraction * 100.0,
        thousands(r.train_tokens as u64),
        thousands(r.validation_tokens as u64)
    ));
    s.push_str(&format!(
        "| initialisation | normal, std {} (Box–Muller over the project's xoshiro256** generator, a stream per \
         tensor seeded from the seed and the tensor's name); `o_proj` and `down_proj` × 1/√(2·{}); norms 1 |\n",
        cfg.init_std, mc.num_hidden_layers
    ));
    s.push_str(&format!(
        "| training | {} steps × {} sequences × {} tokens = {} tokens ({:.2} passes over the training tokens), \
         windows sampled by the seeded generator; AdamW (β {} / {}, ε {:e}, weight decay {} on matrices, none on \
         norms), lr {:e} with {} warm-up steps then cosine to 0, gradient norm clipped at {}; seed {} |\n",
        cfg.steps,
        cfg.batch_size,
        cfg.seq_len,
        thousands(r.tokens_seen),
        epochs,
        cfg.beta1,
        cfg.beta2,
        cfg.adam_eps,
        cfg.weight_decay,
        cfg.learning_rate,
        cfg.warmup_steps,
        cfg.max_grad_norm,
        cfg.seed
    ));
    s.push_str(&format!(
        "| losses (nats/token) | initial validation {:.3} (ln {} = {:.3}); final, of the bf16 weights as committed: \
         training {:.3}, validation **{:.3}** (perplexity {:.1}); validation with the f32 weights before \
         rounding {:.3} |\n",
        r.initial_val_loss,
        mc.vocab_size,
        (mc.vocab_size as f64).ln(),
        r.final_train_loss,
        r.final_val_loss,
        r.final_val_loss.exp(),
        r.final_val_loss_f32
    ));
    s.push_str(&format!(
        "| run | {} on {} rayon thread(s): {:.0} tokens/s, tokenizer {}, training {}, wall time {} |\n\n",
        r.date,
        r.threads,
        r.tokens_per_second,
        duration(r.tokenizer_seconds),
        duration(r.train_seconds),
        duration(r.wall_seconds)
    ));

    s.push_str("## How it was made\n\n");
    if cfg.is_cli_reachable() {
        s.push_str("From the repository root:\n\n```\ncargo build -p cli\n");
        s.push_str(&format!("RAYON_NUM_THREADS={} target/debug/{}\n```\n\n", r.threads, cfg.command()));
        s.push_str(
            "Every other setting is the recipe's default (`ml::bootstrap::BootstrapConfig::default()` in \
             `crates/ml/src/bootstrap.rs`); `bootstrap.json` holds the whole configuration and this report.\n\n",
        );
    } else {
        s.push_str(
            "By a library call of `ml::bootstrap::run` with a configuration other than the CLI's; \
             `bootstrap.json` holds the whole configuration and this report.\n\n",
        );
    }
    s.push_str(&format!("{DETERMINISM_NOTE}\n\n"));

    s.push_str("## Loss during training\n\n| step | training loss (mean since the previous row) | validation loss |\n|---:|---:|---:|\n");
    s.push_str(&format!("| 0 | | {:.3} |\n", r.initial_val_loss));
    for p in &r.history {
        s.push_str(&format!("| {} | {:.3} | {:.3} |\n", p.step, p.train_loss, p.val_loss));
    }
    s.push_str("\n## Greedy continuations\n\n");
    for smp in &r.samples {
        s.push_str(&format!("- `{}` → {:?}\n", smp.prompt, smp.completion));
    }
    s.push_str("\n## Files\n\n| file | bytes |\n|---|---:|\n");
    for (n, b) in &r.files {
        s.push_str(&format!("| `{n}` | {} |\n", thousands(*b)));
    }
    s.push_str(
        "| `README.md` | this file |\n| `bootstrap.json` | the configuration and the report |\n\n\
         `config.json`, `model.safetensors`, `tokenizer.json` and `tokenizer_config.json` form a Hugging Face \
         folder (`LlamaForCausalLM`, `PreTrainedTokenizerFast`); `ml::ModelFiles::open` reads it and computes \
         the model hash. The corpus is public domain, and so is this model.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_splits() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_735_689_600), "2025-01-01");
        let v = validation_split(1000, 0.01);
        assert_eq!(v.iter().filter(|x| **x).count(), 10);
        assert_eq!(v, validation_split(1000, 0.01));
        let (p, used) = paragraphs("a\n\nb b\n\n\nc\n", Some(8));
        assert_eq!(p, vec!["a", "b b"]);
        assert_eq!(used, 6);
        assert_eq!(thousands(2_412_000), "2,412,000");
    }

    #[test]
    fn normal_draws_have_the_asked_spread() {
        let mut r = Rng::new(1);
        let v = normal(&mut r, 20_001, 0.02);
        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 1e-3 && (var.sqrt() - 0.02).abs() < 1e-3, "{mean} {}", var.sqrt());
    }
}
