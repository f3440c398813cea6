//! Sampling and generation with a KV cache: greedy, temperature, top-k, top-p,
//! seeds, stop sequences, maximum tokens.

use serde::{Deserialize, Serialize};

use crate::MlError;
use crate::kv::KvCache;
use crate::lora::LoraAdapter;
use crate::model::{Logits, Model, SeqStep, Step};
use crate::rng::Rng;
use crate::tokenizer::TextTokenizer;

/// How to pick tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1.0 = all).
    pub top_p: f32,
    pub seed: u64,
    pub max_tokens: usize,
    /// Generation stops when the text ends with one of these (the stop text is not returned).
    pub stop: Vec<String>,
    /// Generate past the end-of-sequence token until `max_tokens` (or a stop
    /// text): for benchmarks that need every answer to be the same length.
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            max_tokens: 64,
            stop: vec![],
            ignore_eos: false,
        }
    }
}

impl SamplingParams {
    pub fn validate(&self) -> Result<(), MlError> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(MlError::Config(format!("temperature {} must be finite and >= 0", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(MlError::Config(format!("top_p {} must be in (0, 1]", self.top_p)));
        }
        Ok(())
    }
}

/// Picks the next token from a logits row. Deterministic given the seed.
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    scratch: Vec<(f32, u32)>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Sampler {
        let rng = Rng::new(params.seed);
        Sampler { params, rng, scratch: Vec::new() }
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature == 0.0 {
            return argmax(logits);
        }
        let t = self.params.temperature;
        let v = &mut self.scratch;
        v.clear();
        v.extend(logits.iter().enumerate().map(|(i, &l)| (l / t, i as u32)));
        // Highest first; ties by token id so the order is total.
        v.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        if self.params.top_k > 0 && self.params.top_k < v.len() {
            v.truncate(self.params.top_k);
        }
        let max = v[0].0;
        let mut sum = 0.0f64;
        for e in v.iter_mut() {
            e.0 = (e.0 - max).exp();
            sum += e.0 as f64;
        }
        if self.params.top_p < 1.0 {
            let mut acc = 0.0f64;
            let mut keep = v.len();
            for (i, e) in v.iter().enumerate() {
                acc += e.0 as f64 / sum;
                if acc >= self.params.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            v.truncate(keep);
            sum = v.iter().map(|e| e.0 as f64).sum();
        }
        let r = self.rng.next_f64() * sum;
        let mut acc = 0.0f64;
        for e in v.iter() {
            acc += e.0 as f64;
            if r < acc {
                return e.1;
            }
        }
        v.last().expect("non-empty").1
    }
}

/// Index of the largest value, lowest index on ties.
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Why generation ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// An end-of-sequence token or a stop sequence.
    Stop,
    /// `max_tokens` or the context.
    Length,
}

/// A finished generation.
#[derive(Debug, Clone)]
pub struct Generation {
    pub prompt_tokens: usize,
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: Finish,
}

/// Tracks decoded text and stop sequences across tokens, releasing only text
/// that can no longer become part of a stop sequence (for streaming).
pub struct StopWatch {
    stop: Vec<String>,
    text: String,
    released: usize,
}

impl StopWatch {
    pub fn new(stop: Vec<String>) -> StopWatch {
        StopWatch { stop: stop.into_iter().filter(|s| !s.is_empty()).collect(), text: String::new(), released: 0 }
    }

    /// Set the full decoded text so far; returns (newly releasable text, stopped).
    pub fn update(&mut self, full: String) -> (String, bool) {
        self.text = full;
        for s in &self.stop {
            if let Some(i) = self.text.find(s.as_str()) {
                self.text.truncate(i);
                let out = self.text.get(self.released..).unwrap_or("").to_string();
                self.released = self.text.len();
                return (out, true);
            }
        }
        // Hold back a suffix that is a prefix of some stop sequence, and an incomplete character.
        let mut hold = 0;
        for s in &self.stop {
            for k in (1..s.len()).rev() {
                if self.text.ends_with(&s[..k.min(s.len())]) && s.is_char_boundary(k) {
                    hold = hold.max(k);
                    break;
                }
            }
        }
        let mut end = self.text.len() - hold;
        if self.text.ends_with('\u{FFFD}') {
            end = end.min(self.text.len() - '\u{FFFD}'.len_utf8());
        }
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        if end <= self.released {
            return (String::new(), false);
        }
        let out = self.text[self.released..end].to_string();
        self.released = end;
        (out, false)
    }

    /// Everything not yet released (at the end of generation).
    pub fn finish(&mut self) -> String {
        let out = self.text.get(self.released..).unwrap_or("").to_string();
        self.released = self.text.len();
        out
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Generate for one prompt with an optional adapter, calling `on_text` with each
/// piece of text as it becomes final (return `false` from it to cancel).
pub fn generate(
    model: &Model,
    tokenizer: &TextTokenizer,
    adapter: Option<&LoraAdapter>,
    prompt: &[u32],
    params: &SamplingParams,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<Generation, MlError> {
    params.validate()?;
    if prompt.is_empty() {
        return Err(MlError::Config("the prompt has no tokens".into()));
    }
    let max_ctx = model.config.max_position_embeddings;
    if prompt.len() >= max_ctx {
        return Err(MlError::ContextFull { needed: prompt.len() + 1, max: max_ctx });
    }
    let budget = params.max_tokens.min(max_ctx - prompt.len());
    let mut cache = KvCache::for_tokens(&model.config, prompt.len() + budget + 1, 16);
    let eos = tokenizer.eos_ids(&model.config.eos_token_ids);
    let adapters: Vec<&LoraAdapter> = adapter.into_iter().collect();
    let mut sampler = Sampler::new(params.clone());
    let mut stops = StopWatch::new(params.stop.clone());
    let mut out: Vec<u32> = Vec::new();
    let mut next_input: Vec<u32> = prompt.to_vec();
    let mut finish = Finish::Length;
    while out.len() < budget {
        let step = Step {
            seqs: vec![SeqStep {
                seq: 0,
                tokens: &next_input,
                adapter: if adapters.is_empty() { None } else { Some(0) },
                logits: Logits::Last,
            }],
        };
        let o = model.forward(&step, &mut cache, &adapters)?;
        let tok = sampler.sample(&o.last(0)?);
        if !params.ignore_eos && eos.contains(&tok) {
            finish = Finish::Stop;
            break;
        }
        out.push(tok);
        let (piece, stopped) = stops.update(tokenizer.decode(&out)?);
        if !piece.is_empty() && !on_text(&piece) {
            finish = Finish::Stop;
            break;
        }
        if stopped {
            finish = Finish::Stop;
            break;
        }
        next_input = vec![tok];
    }
    let rest = stops.finish();
    if !rest.is_empty() {
        on_text(&rest);
    }
    Ok(Generation { prompt_tokens: prompt.len(), tokens: out, text: stops.text().to_string(), finish })
}
