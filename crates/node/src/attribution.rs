//! Proof of Attribution, phase two of a paid inference: which contributions
//! influenced an answer, computed by the serving node, stored as a blob,
//! signed with its serving key and posted with `inference.postAttribution`
//! once the receipt has settled.
//!
//! A record mixes two methods (DESIGN.md, "Proof of Attribution"):
//! - **span tracing** (`attribution` crate): maximal spans of the response
//!   that occur verbatim in the training rows of the model's Datanet
//!   versions, ranked by rarity; exact and byte-for-byte reproducible;
//! - **gradient influence** (TracIn over the kept LoRA checkpoints with
//!   projected gradients): for every training row,
//!   Σ_c lr_c · ⟨P g_response(c), P g_row(c)⟩, positives only, where the rows'
//!   projections are the sketches ModelFactory stored and the response's is
//!   computed with the same `ml::sequence_gradients` and `ml::project`. It is
//!   computed on the response tokens alone (teacher-forced, no prompt), so
//!   anyone can recompute it from public data; it is reproducible within the
//!   tolerance the record states.
//!
//! Weights are parts per million summing to exactly 10^6 (largest remainder,
//! ties by contribution id), mixed by `attribution.span_weight_ppm`; when one
//! method credits nothing the other takes it all; at most
//! `inference.max_credits` contributions; no credits at all selects the
//! on-chain fallback (pro rata to approved rows).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chain::Chain;
use factory::Sketches;
use ml::{Checkpoint, LoraAdapter, LoraConfig, Model, TextTokenizer};
use primitives::abi::Credit;
use primitives::{B256, ModelId};
use runtime::models::{ModelRecord, ModelsRead};
use runtime::params::ParamsRead;
use serde_json::{Value, json};

/// The gradient part's reproducibility bound, per credit, in ppm.
pub const GRADIENT_TOLERANCE_PPM: u32 = 2_000;

/// Integer ppm weights summing to exactly 10^6 from non-negative scores, at
/// most `max` entries (the largest scores), largest remainder, ties by key.
pub fn to_ppm(scores: &BTreeMap<u64, f64>, max: usize) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, f64)> =
        scores.iter().filter(|(_, s)| **s > 0.0 && s.is_finite()).map(|(k, s)| (*k, *s)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(max);
    let total: f64 = v.iter().map(|x| x.1).sum();
    if v.is_empty() || total <= 0.0 {
        return vec![];
    }
    let mut parts: Vec<(u64, u32, f64)> = v
        .iter()
        .map(|(k, s)| {
            let exact = s / total * 1e6;
            (*k, exact.floor() as u32, exact - exact.floor())
        })
        .collect();
    let mut left = 1_000_000u32 - parts.iter().map(|p| p.1).sum::<u32>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.total_cmp(&parts[a].2).then(parts[a].0.cmp(&parts[b].0)));
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[*i].1 += 1;
        left -= 1;
    }
    let mut out: Vec<(u64, u32)> = parts.into_iter().filter(|p| p.1 > 0).map(|p| (p.0, p.1)).collect();
    out.sort();
    out
}

/// Mix two ppm vectors: `span_weight` ppm of the first, the rest of the second
/// (all of one when the other is empty); result re-normalised to 10^6.
pub fn mix(span: &[(u64, u32)], gradient: &[(u64, u32)], span_weight_ppm: u32, max: usize) -> Vec<(u64, u32)> {
    let (ws, wg) = match (span.is_empty(), gradient.is_empty()) {
        (true, true) => return vec![],
        (false, true) => (1_000_000u32, 0),
        (true, false) => (0, 1_000_000u32),
        (false, false) => (span_weight_ppm, 1_000_000 - span_weight_ppm),
    };
    let mut scores: BTreeMap<u64, f64> = BTreeMap::new();
    for (c, w) in span {
        *scores.entry(*c).or_default() += *w as f64 * ws as f64;
    }
    for (c, w) in gradient {
        *scores.entry(*c).or_default() += *w as f64 * wg as f64;
    }
    to_ppm(&scores, max)
}

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

/// Governed parameters a record uses, and the contributions it may not credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParams {
    pub span_weight_ppm: u32,
    pub min_span_tokens: usize,
    pub max_credits: usize,
    /// Contributions of the model's Datanets flagged (duplicated, adversarial)
    /// since training: the methods still see them (the span part is the raw
    /// trace), the final credits leave them out.
    pub excluded: Vec<u64>,
    /// The block whose parameters these are (the state the record was made
    /// from); a verifier reads the governed parameters in force at this height.
    pub params_height: u64,
}

impl RecordParams {
    /// The parameters in force after block `height` (`st` is that block's
    /// state or a later one: parameters come from their history by height).
    pub fn from_state(
        st: &dyn primitives::state::StateRead,
        r: &ModelRecord,
        height: u64,
    ) -> Result<RecordParams, String> {
        use runtime::datanets::DatanetsRead;
        let p = |spec| st.param_at(spec, height).map_err(|e| e.to_string());
        let mut excluded = Vec::new();
        for d in &r.datanetIds {
            excluded.extend(st.flagged(*d).map_err(|e| e.to_string())?);
        }
        excluded.sort_unstable();
        excluded.dedup();
        Ok(RecordParams {
            span_weight_ppm: p(&runtime::params::ATTRIBUTION_SPAN_WEIGHT_PPM)? as u32,
            min_span_tokens: p(&runtime::params::ATTRIBUTION_MIN_SPAN_TOKENS)? as usize,
            max_credits: p(&runtime::params::INFERENCE_MAX_CREDITS)? as usize,
            excluded,
            params_height: height,
        })
    }

    /// The governed values only (what must match the chain's history).
    fn governed(&self) -> (u32, usize, usize) {
        (self.span_weight_ppm, self.min_span_tokens, self.max_credits)
    }
}

/// The current record version (2: the mix states `paramsHeight`).
pub const RECORD_VERSION: u32 = 2;
/// Versions a verifier still accepts: 1 (before `paramsHeight`; judged by the
/// parameters in force when its receipt settled) and 2.
pub const RECORD_VERSIONS: [u32; 2] = [1, 2];
const SPAN_METHOD: &str = "maximal-spans-suffix-array";
const GRADIENT_METHOD: &str = "tracin-projected-lora";
const MIX_RULE: &str = "span and gradient ppm without the excluded (flagged) contributions, weighted by spanWeightPpm; one method alone when the other credits nothing";

/// An attribution record: what a serving node signs for one paid answer and
/// what a challenged operator reveals.
///
/// **Canonical encoding**: the JSON of this type with keys sorted and no
/// whitespace ([`canonical`]); numbers are integers, hashes `0x`-prefixed
/// lowercase hex, credit lists `[contribution, ppm]` pairs in contribution
/// order. The record hash is blake3 of those bytes. [`AttributionRecord::decode`]
/// accepts exactly the canonical bytes of a valid record of a known version:
/// unknown or missing fields, another method, a non-canonical encoding or
/// weights that do not sum to 10^6 make a record invalid, and an invalid
/// record is judged wrong.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributionRecord {
    pub version: u32,
    pub receipt_hash: B256,
    /// `m<id>`.
    pub model: String,
    pub base_model_hash: B256,
    pub adapter_hash: B256,
    pub datanets: Vec<DatanetVersionRef>,
    /// blake3 of the prompt's token ids (u32 LE); the prompt itself is never in the record.
    pub prompt_hash: B256,
    pub response: String,
    pub response_tokens: Vec<u32>,
    pub span: SpanPartRecord,
    pub gradient: GradientPartRecord,
    pub mix: MixRecord,
    /// The final credits: (contribution, ppm), summing to 10^6 (or empty: the fallback).
    pub credits: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatanetVersionRef {
    pub datanet: u64,
    pub version: u64,
}

/// One traced span.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanRecord {
    pub token_start: u64,
    pub token_end: u64,
    pub char_start: u64,
    pub char_end: u64,
    pub count: u64,
    /// (contribution, row index) of the rows that contain it.
    pub rows: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanPartRecord {
    pub method: String,
    pub min_span_tokens: u64,
    pub spans: Vec<SpanRecord>,
    pub credits: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointRef {
    pub hash: B256,
    pub lr_nano: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GradientPartRecord {
    pub method: String,
    pub sketch_hash: B256,
    pub k: u32,
    pub seed: u64,
    pub checkpoints: Vec<CheckpointRef>,
    pub tolerance_ppm: u32,
    pub credits: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MixRecord {
    pub span_weight_ppm: u32,
    pub max_credits: u64,
    pub excluded: Vec<u64>,
    pub rule: String,
    /// Version 2 on: the block whose governed parameters the record used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_height: Option<u64>,
}

impl AttributionRecord {
    /// The record as JSON (its canonical bytes are [`canonical`] of this).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a record serializes")
    }

    /// Its canonical bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical(&self.to_value()).into_bytes()
    }

    /// Its hash: blake3 of the canonical bytes.
    pub fn hash(&self) -> B256 {
        primitives::content_hash(&self.canonical_bytes())
    }

    /// Decode canonical bytes into a valid record (see the type's docs).
    pub fn decode(bytes: &[u8]) -> Result<AttributionRecord, String> {
        let r: AttributionRecord = serde_json::from_slice(bytes).map_err(|e| format!("not a record: {e}"))?;
        r.validate()?;
        if r.canonical_bytes() != bytes {
            return Err("not the record's canonical encoding (sorted keys, no whitespace)".into());
        }
        Ok(r)
    }

    /// A record from JSON already parsed (e.g. from the attribution API):
    /// valid, whatever its key order.
    pub fn from_value(v: &Value) -> Result<AttributionRecord, String> {
        let r: AttributionRecord = serde_json::from_value(v.clone()).map_err(|e| format!("not a record: {e}"))?;
        r.validate()?;
        Ok(r)
    }

    /// The checks that make a record of its version well formed.
    pub fn validate(&self) -> Result<(), String> {
        if !RECORD_VERSIONS.contains(&self.version) {
            return Err(format!("unknown record version {} (known: {RECORD_VERSIONS:?})", self.version));
        }
        match (self.version, self.mix.params_height) {
            (1, Some(_)) => return Err("a version 1 record states no paramsHeight".into()),
            (2, None) => return Err("a version 2 record must state mix.paramsHeight".into()),
            _ => {}
        }
        if self.model.strip_prefix('m').and_then(|m| m.parse::<u64>().ok()).is_none() {
            return Err(format!("model {:?} is not m<id>", self.model));
        }
        if self.span.method != SPAN_METHOD || self.gradient.method != GRADIENT_METHOD || self.mix.rule != MIX_RULE {
            return Err("unknown attribution method or mixing rule".into());
        }
        if self.mix.span_weight_ppm > 1_000_000 {
            return Err("spanWeightPpm is more than 10^6".into());
        }
        for (name, v) in [("span", &self.span.credits), ("gradient", &self.gradient.credits), ("final", &self.credits)]
        {
            let sorted = v.windows(2).all(|w| w[0].0 < w[1].0);
            let sum: u64 = v.iter().map(|c| c.1 as u64).sum();
            if !sorted || (!v.is_empty() && sum != 1_000_000) || v.iter().any(|c| c.1 == 0) {
                return Err(format!(
                    "{name} credits must be distinct contributions in order with non-zero ppm summing to 10^6"
                ));
            }
        }
        Ok(())
    }

    /// The model id it names.
    pub fn model_id(&self) -> u64 {
        self.model.strip_prefix('m').and_then(|m| m.parse().ok()).unwrap_or(0)
    }

    /// The parameters the record states; a version 1 record states no height,
    /// so `settled_at` (its receipt's settlement block) stands in.
    pub fn stated(&self, settled_at: u64) -> RecordParams {
        RecordParams {
            span_weight_ppm: self.mix.span_weight_ppm,
            min_span_tokens: self.span.min_span_tokens as usize,
            max_credits: self.mix.max_credits as usize,
            excluded: self.mix.excluded.clone(),
            params_height: self.mix.params_height.unwrap_or(settled_at),
        }
    }
}

/// `v` without the excluded contributions, re-normalised to 10^6 (unchanged if none is excluded).
fn without(v: &[(u64, u32)], excluded: &[u64]) -> Vec<(u64, u32)> {
    if !v.iter().any(|(c, _)| excluded.contains(c)) {
        return v.to_vec();
    }
    let kept: BTreeMap<u64, f64> =
        v.iter().filter(|(c, _)| !excluded.contains(c)).map(|(c, w)| (*c, *w as f64)).collect();
    to_ppm(&kept, usize::MAX)
}

/// Compute a record from its inputs: what the serving node signs and what a
/// verifier recomputes (`openledger attribution verify`).
#[allow(clippy::too_many_arguments)]
pub fn compute_record(
    model: &Model,
    tok: &TextTokenizer,
    model_id: u64,
    r: &ModelRecord,
    receipt_hash: B256,
    prompt_hash: B256,
    response: &[u32],
    text: &str,
    index: Option<&attribution::SpanIndex>,
    gradient: Option<&GradientInputs>,
    p: RecordParams,
) -> Result<Value, String> {
    let versions: Vec<(u64, u64)> = r.datanetIds.iter().copied().zip(r.datanetVersions.iter().copied()).collect();
    let starts = word_starts(tok, response);
    let span = match index {
        Some(i) => crate::spans::trace_index(i, tok, response, &starts, p.min_span_tokens, p.max_credits),
        None => crate::spans::SpanPart { spans: vec![], credits: vec![] },
    };
    let grad = match gradient {
        Some(g) => to_ppm(&gradient_scores(model, g, response)?, p.max_credits),
        None => vec![],
    };
    let credits =
        mix(&without(&span.credits, &p.excluded), &without(&grad, &p.excluded), p.span_weight_ppm, p.max_credits);
    Ok(AttributionRecord {
        version: RECORD_VERSION,
        receipt_hash,
        model: format!("m{model_id}"),
        base_model_hash: r.baseModelHash,
        adapter_hash: r.adapterHash,
        datanets: versions.iter().map(|(d, v)| DatanetVersionRef { datanet: *d, version: *v }).collect(),
        prompt_hash,
        response: text.to_string(),
        response_tokens: response.to_vec(),
        span: SpanPartRecord {
            method: SPAN_METHOD.into(),
            min_span_tokens: p.min_span_tokens as u64,
            spans: span.spans,
            credits: span.credits,
        },
        gradient: GradientPartRecord {
            method: GRADIENT_METHOD.into(),
            sketch_hash: r.sketchHash,
            k: r.sketchK,
            seed: r.sketchSeed,
            checkpoints: r
                .checkpointHashes
                .iter()
                .zip(&r.checkpointLearningRates)
                .map(|(h, l)| CheckpointRef { hash: *h, lr_nano: *l })
                .collect(),
            tolerance_ppm: GRADIENT_TOLERANCE_PPM,
            credits: grad,
        },
        mix: MixRecord {
            span_weight_ppm: p.span_weight_ppm,
            max_credits: p.max_credits as u64,
            excluded: p.excluded,
            rule: MIX_RULE.into(),
            params_height: Some(p.params_height),
        },
        credits,
    }
    .to_value())
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

/// Canonical JSON: sorted keys, no whitespace (the bytes the record hash covers).
pub fn canonical(v: &Value) -> String {
    factory::spec::canonical_json(v)
}

/// The record's hash: blake3 of its canonical bytes.
pub fn record_hash(record: &Value) -> B256 {
    primitives::content_hash(canonical(record).as_bytes())
}

/// Which token starts a word (byte-level BPE: its text begins with whitespace, or it is the first).
pub fn word_starts(tok: &TextTokenizer, tokens: &[u32]) -> Vec<bool> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            i == 0
                || tok
                    .inner
                    .id_to_token(*t)
                    .map(|s| s.starts_with('Ġ') || s.starts_with('Ċ') || s.starts_with(' '))
                    .unwrap_or(false)
        })
        .collect()
}

/// The node's attribution service.
pub struct AttributionService {
    pub chain: Arc<Chain>,
    pub blobs: Arc<blobs::BlobStore>,
    pub datanets: Arc<datanets::DatanetService>,
    pub model: Arc<Model>,
    pub tokenizer: Arc<TextTokenizer>,
    pub serving_key: keys::SecretKey,
    pub dir: PathBuf,
    pub handle: tokio::runtime::Handle,
    spans: crate::spans::SpanIndexes,
    gradients: Mutex<HashMap<u64, Arc<GradientInputs>>>,
    /// Receipt → the signed record and who may read it.
    records: Mutex<HashMap<B256, (Value, serve::RecordAccess)>>,
    /// Record hash (its blob) → who may read it (the same as its route).
    record_blobs: Mutex<HashMap<B256, serve::RecordAccess>>,
    /// Records waiting for their receipt to settle: receipt → (record hash, credits).
    pub to_post: Arc<Mutex<HashMap<B256, (B256, Vec<Credit>)>>>,
}

impl AttributionService {
    pub fn new(
        chain: Arc<Chain>,
        blobs: Arc<blobs::BlobStore>,
        datanets: Arc<datanets::DatanetService>,
        model: Arc<Model>,
        tokenizer: Arc<TextTokenizer>,
        serving_key: keys::SecretKey,
        dir: PathBuf,
        handle: tokio::runtime::Handle,
    ) -> Arc<AttributionService> {
        let spans = crate::spans::SpanIndexes::new(dir.join("span-indexes"));
        Arc::new(AttributionService {
            chain,
            blobs,
            datanets,
            model,
            tokenizer,
            serving_key,
            dir,
            handle,
            spans,
            gradients: Mutex::new(HashMap::new()),
            records: Mutex::new(HashMap::new()),
            record_blobs: Mutex::new(HashMap::new()),
            to_post: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn blob(&self, h: &B256) -> Result<Vec<u8>, String> {
        self.handle.block_on(self.blobs.get(h)).map(|b| b.to_vec()).map_err(|e| format!("blob {h}: {e}"))
    }

    fn record_of(&self, id: u64) -> Result<ModelRecord, String> {
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        st.model(ModelId(id)).map_err(|e| e.to_string())?.ok_or_else(|| format!("m{id} does not exist"))
    }

    /// The kept checkpoints and sketches of a model (loaded once).
    pub fn gradient_inputs(&self, id: u64, r: &ModelRecord) -> Result<Option<Arc<GradientInputs>>, String> {
        if let Some(g) = self.gradients.lock().unwrap().get(&id) {
            return Ok(Some(g.clone()));
        }
        let Some(g) = GradientInputs::load(r, &self.model.config, &|h| self.blob(h))? else { return Ok(None) };
        let g = Arc::new(g);
        self.gradients.lock().unwrap().insert(id, g.clone());
        Ok(Some(g))
    }

    /// Compute the record of an answer (public inputs only: the response, the
    /// model's artefacts and the Datanet rows).
    pub fn compute(
        &self,
        model_id: u64,
        receipt_hash: B256,
        prompt_hash: B256,
        response: &[u32],
        text: &str,
    ) -> Result<Value, String> {
        let r = self.record_of(model_id)?;
        let p = {
            let st = self.chain.snapshot().map_err(|e| e.to_string())?;
            let height = st.head().map_err(|e| e.to_string())?.unwrap_or(0);
            RecordParams::from_state(&st, &r, height)?
        };
        self.compute_with(model_id, &r, receipt_hash, prompt_hash, response, text, p)
    }

    /// [`Self::compute`] with given parameters.
    #[allow(clippy::too_many_arguments)]
    fn compute_with(
        &self,
        model_id: u64,
        r: &ModelRecord,
        receipt_hash: B256,
        prompt_hash: B256,
        response: &[u32],
        text: &str,
        p: RecordParams,
    ) -> Result<Value, String> {
        let versions: Vec<(u64, u64)> = r.datanetIds.iter().copied().zip(r.datanetVersions.iter().copied()).collect();
        let index = if versions.is_empty() {
            None
        } else {
            Some(self.spans.index(&self.datanets, &self.handle, &self.tokenizer, &versions)?)
        };
        let gradient = self.gradient_inputs(model_id, r)?;
        compute_record(
            &self.model,
            &self.tokenizer,
            model_id,
            r,
            receipt_hash,
            prompt_hash,
            response,
            text,
            index.as_deref(),
            gradient.as_deref(),
            p,
        )
    }

    /// What a challenged operator reveals: the record's canonical bytes (from
    /// the blob store, by its hash) and the prompt's token ids (stored when the
    /// record was made).
    pub fn reveal_inputs(&self, record_hash: &B256) -> Result<(Vec<u8>, Vec<u8>), String> {
        let record = self.blob(record_hash)?;
        let v: Value = serde_json::from_slice(&record).map_err(|e| format!("record {record_hash}: {e}"))?;
        let prompt_hash: B256 =
            v["promptHash"].as_str().and_then(|s| s.parse().ok()).ok_or("the record names no prompt hash")?;
        Ok((record, self.blob(&prompt_hash)?))
    }

    /// A verifier's judgement of a revealed record: decode it into the record
    /// type of its version, check its stated parameters against the governed
    /// parameters in force at the height it states (the chain keeps every
    /// change), recompute it from the public inputs and the revealed prompt,
    /// and compare. `Ok((correct, checks))`: a record that does not decode,
    /// lacks a parameter, or states parameters that were not in force is
    /// wrong. `Err` only when it cannot judge here (unknown receipt, the
    /// model's artefacts are missing), so it signs nothing.
    pub fn judge(&self, receipt_hash: B256, record: &[u8], prompt: &[u8]) -> Result<(bool, Vec<Check>), String> {
        use runtime::inference::InferenceRead;
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let hold = st.hold(&receipt_hash).map_err(|e| e.to_string())?.ok_or("unknown receipt")?;
        let theirs = match AttributionRecord::decode(record) {
            Ok(r) => r,
            Err(e) => return Ok((false, vec![Check::new("record decodes into its version's type", false, e)])),
        };
        let r = self.record_of(hold.modelId)?;
        let stated = theirs.stated(hold.settledAt);
        // The timeout in force when the receipt settled (the window the operator had).
        let timeout = st
            .param_at(&runtime::params::INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS, hold.settledAt)
            .map_err(|e| e.to_string())?;
        let governed = RecordParams::from_state(&st, &r, stated.params_height)?;
        drop(st);
        let mut checks = params_checks(&stated, &governed, hold.settledAt, timeout as u64);
        checks.extend([
            Check::new("receipt", theirs.receipt_hash == receipt_hash, String::new()),
            Check::new("prompt hash", theirs.prompt_hash == primitives::content_hash(prompt), String::new()),
            Check::new("model", theirs.model_id() == hold.modelId, String::new()),
            Check::new(
                "response tokens",
                self.tokenizer.decode(&theirs.response_tokens).ok().as_deref() == Some(theirs.response.as_str()),
                String::new(),
            ),
        ]);
        if !checks.iter().all(|c| c.ok) {
            return Ok((false, checks));
        }
        let prompt_hash = primitives::content_hash(prompt);
        let (response, text) = (theirs.response_tokens.clone(), theirs.response.clone());
        let mine = self.compute_with(hold.modelId, &r, receipt_hash, prompt_hash, &response, &text, stated)?;
        checks.extend(compare(&mine, &theirs.to_value()));
        Ok((checks.iter().all(|c| c.ok), checks))
    }

    /// Who may read the blob `hash` if it is a record this node made (its
    /// canonical bytes): the same readers as `GET /v1/attribution/{receipt}`.
    pub fn record_blob_access(&self, hash: &B256) -> Option<serve::RecordAccess> {
        self.record_blobs.lock().unwrap().get(hash).copied()
    }

    fn sign(&self, hash: &B256) -> String {
        format!("0x{}", hex::encode(self.serving_key.sign_message(hash.as_slice()).as_bytes()))
    }
}

/// One comparison of a verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(check: &str, ok: bool, detail: String) -> Check {
        Check { check: check.into(), ok, detail }
    }
}

/// The checks of a record's stated parameters against the governed ones in
/// force at the height it states (`governed`): that height lies between
/// `timeout` blocks before its receipt settled and the settlement (an honest
/// node makes the record from its head before settling), the governed values
/// are the stated ones, and it leaves out only contributions that really are
/// flagged (one flagged after the record was made is not missing from it: its
/// credit is forfeited at finalization anyway).
pub fn params_checks(stated: &RecordParams, governed: &RecordParams, settled_at: u64, timeout: u64) -> Vec<Check> {
    let h = stated.params_height;
    let unflagged: Vec<u64> = stated.excluded.iter().copied().filter(|c| !governed.excluded.contains(c)).collect();
    vec![
        Check::new(
            "parameters' height",
            h <= settled_at && h >= settled_at.saturating_sub(timeout),
            format!("block {h}, receipt settled at {settled_at}"),
        ),
        Check::new(
            "parameters in force at that height",
            stated.governed() == governed.governed(),
            format!("stated {:?}, governed {:?}", stated.governed(), governed.governed()),
        ),
        Check::new("excluded contributions are flagged", unflagged.is_empty(), format!("{unflagged:?}")),
    ]
}

/// A record's response token ids.
pub fn response_tokens(record: &Value) -> Vec<u32> {
    record["responseTokens"].as_array().into_iter().flatten().filter_map(|t| t.as_u64()).map(|t| t as u32).collect()
}

fn pairs_of(v: &Value) -> BTreeMap<u64, i64> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()? as i64))).collect()
}

/// Compare a recomputed record with a claimed one: the span part byte for
/// byte, the gradient part and the final credits within the claimed record's
/// stated tolerance (what `attribution verify` and the verifier service check).
pub fn compare(mine: &Value, theirs: &Value) -> Vec<Check> {
    let tol = theirs["gradient"]["tolerancePpm"].as_u64().unwrap_or(0).min(GRADIENT_TOLERANCE_PPM as u64) as i64;
    let within = |a: &Value, b: &Value| {
        let (ka, kb) = (pairs_of(a), pairs_of(b));
        ka.keys().chain(kb.keys()).all(|k| (ka.get(k).unwrap_or(&0) - kb.get(k).unwrap_or(&0)).abs() <= tol)
    };
    let span_same = canonical(&mine["span"]) == canonical(&theirs["span"]);
    let same = |k: &str| canonical(&mine[k]) == canonical(&theirs[k]);
    vec![
        Check::new("span part (byte for byte)", span_same, String::new()),
        Check::new(
            &format!("gradient part (within {tol} ppm)"),
            within(&mine["gradient"]["credits"], &theirs["gradient"]["credits"]),
            String::new(),
        ),
        Check::new("credits", within(&mine["credits"], &theirs["credits"]), String::new()),
        Check::new(
            "model artefacts",
            same("baseModelHash") && same("adapterHash") && same("datanets") && same("responseTokens"),
            String::new(),
        ),
    ]
}

/// The credits of a record as the chain takes them.
pub fn record_credits(record: &Value) -> Vec<Credit> {
    record["credits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some(Credit { contributionId: p[0].as_u64()?, weightPpm: p[1].as_u64()? as u32 }))
        .collect()
}

impl serve::Attributor for AttributionService {
    fn attribute(
        &self,
        model: &serve::ModelEntry,
        receipt_hash: B256,
        prompt: &[u32],
        response: &[u32],
        text: &str,
        access: serve::RecordAccess,
    ) -> Option<Value> {
        if !model.has_adapter {
            return None; // the base model: no Datanets, its data share goes to the treasury
        }
        let prompt_bytes: Vec<u8> = prompt.iter().flat_map(|t| t.to_le_bytes()).collect();
        // Kept (privately: the blob API serves no blob it cannot place, and a
        // prompt is never placed) for a reveal, should the record be challenged.
        if let Err(e) = self.handle.block_on(self.blobs.put(prompt_bytes.clone().into())) {
            tracing::warn!("prompt of {receipt_hash} not stored (a challenge could not be answered): {e}");
        }
        let record = match self.compute(model.id, receipt_hash, primitives::content_hash(&prompt_bytes), response, text)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("attribution of {receipt_hash} failed (the fallback will pay): {e}");
                return None;
            }
        };
        let hash = record_hash(&record);
        let signed = json!({"record": record, "recordHash": hash.to_string(), "signature": self.sign(&hash),
                            "signer": self.serving_key.address()});
        if let Err(e) = self.handle.block_on(self.blobs.put(canonical(&record).into_bytes().into())) {
            tracing::warn!("attribution record of {receipt_hash} not stored: {e}");
        }
        let credits = record_credits(&record);
        self.to_post.lock().unwrap().insert(receipt_hash, (hash, credits.clone()));
        self.record_blobs.lock().unwrap().insert(hash, access);
        self.records.lock().unwrap().insert(receipt_hash, (signed, access));
        Some(json!({
            "recordHash": hash.to_string(),
            "credits": credits.iter().map(|c| json!({"contribution": c.contributionId, "ppm": c.weightPpm})).collect::<Vec<_>>(),
            "spans": record["span"]["spans"].as_array().map(|a| a.len()).unwrap_or(0),
        }))
    }

    fn record(&self, receipt_hash: B256) -> Option<(Value, serve::RecordAccess)> {
        self.records.lock().unwrap().get(&receipt_hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_catches_each_tampered_part() {
        let rec = json!({
            "baseModelHash": "0x01", "adapterHash": "0x02", "datanets": [{"datanet": 1, "version": 1}],
            "responseTokens": [5, 6, 7],
            "span": {"method": "maximal-spans-suffix-array", "spans": [{"charStart": 0, "charEnd": 4}], "credits": [[1, 1_000_000]]},
            "gradient": {"tolerancePpm": 2_000, "credits": [[1, 600_000], [2, 400_000]]},
            "credits": [[1, 800_000], [2, 200_000]],
        });
        assert!(compare(&rec, &rec).iter().all(|c| c.ok));
        // Within the tolerance the gradient part and the credits may differ.
        let mut close = rec.clone();
        close["gradient"]["credits"] = json!([[1, 601_000], [2, 399_000]]);
        close["credits"] = json!([[1, 799_000], [2, 201_000]]);
        assert!(compare(&close, &rec).iter().all(|c| c.ok));
        let failed = |m: &Value| compare(m, &rec).into_iter().filter(|c| !c.ok).map(|c| c.check).collect::<Vec<_>>();
        let mut t = rec.clone();
        t["span"]["spans"][0]["charEnd"] = json!(5);
        assert_eq!(failed(&t), vec!["span part (byte for byte)"]);
        let mut t = rec.clone();
        t["credits"] = json!([[1, 700_000], [2, 300_000]]);
        assert_eq!(failed(&t), vec!["credits"]);
        let mut t = rec.clone();
        t["gradient"]["credits"] = json!([[2, 1_000_000]]);
        assert_eq!(failed(&t), vec!["gradient part (within 2000 ppm)"]);
        let mut t = rec.clone();
        t["adapterHash"] = json!("0x03");
        assert_eq!(failed(&t), vec!["model artefacts"]);
        // A claimed record cannot widen its own tolerance past the method's bound.
        let mut loose = rec.clone();
        loose["gradient"]["tolerancePpm"] = json!(500_000);
        let mut far = rec.clone();
        far["credits"] = json!([[1, 600_000], [2, 400_000]]);
        assert!(compare(&far, &loose).iter().any(|c| !c.ok));
    }

    /// A well-formed version 2 record.
    fn record() -> AttributionRecord {
        AttributionRecord {
            version: RECORD_VERSION,
            receipt_hash: B256::repeat_byte(1),
            model: "m2".into(),
            base_model_hash: B256::repeat_byte(2),
            adapter_hash: B256::repeat_byte(3),
            datanets: vec![DatanetVersionRef { datanet: 1, version: 2 }],
            prompt_hash: B256::repeat_byte(4),
            response: "a b".into(),
            response_tokens: vec![5, 6],
            span: SpanPartRecord {
                method: SPAN_METHOD.into(),
                min_span_tokens: 8,
                spans: vec![SpanRecord {
                    token_start: 0,
                    token_end: 2,
                    char_start: 0,
                    char_end: 3,
                    count: 1,
                    rows: vec![(7, 0)],
                }],
                credits: vec![(7, 1_000_000)],
            },
            gradient: GradientPartRecord {
                method: GRADIENT_METHOD.into(),
                sketch_hash: B256::ZERO,
                k: 0,
                seed: 0,
                checkpoints: vec![],
                tolerance_ppm: GRADIENT_TOLERANCE_PPM,
                credits: vec![],
            },
            mix: MixRecord {
                span_weight_ppm: 500_000,
                max_credits: 32,
                excluded: vec![],
                rule: MIX_RULE.into(),
                params_height: Some(40),
            },
            credits: vec![(7, 1_000_000)],
        }
    }

    #[test]
    fn only_canonical_records_of_a_known_version_decode() {
        let r = record();
        let bytes = r.canonical_bytes();
        assert_eq!(AttributionRecord::decode(&bytes).unwrap(), r);
        assert_eq!(r.hash(), record_hash(&r.to_value()));
        // The lapsed-challenge trick: `{}` (or any record missing a parameter
        // the verifier needs) is not a record, so it is judged wrong.
        assert!(AttributionRecord::decode(b"{}").is_err());
        let mut v = r.to_value();
        v["mix"].as_object_mut().unwrap().remove("spanWeightPpm");
        assert!(AttributionRecord::decode(canonical(&v).as_bytes()).unwrap_err().contains("spanWeightPpm"));
        // Unknown fields, unknown versions, other methods, bad weights.
        let mut v = r.to_value();
        v["extra"] = json!(1);
        assert!(AttributionRecord::decode(canonical(&v).as_bytes()).is_err());
        for bad in [
            AttributionRecord { version: 3, ..record() },
            AttributionRecord { model: "x".into(), ..record() },
            AttributionRecord { credits: vec![(7, 999_999)], ..record() },
            AttributionRecord { credits: vec![(8, 500_000), (7, 500_000)], ..record() },
            AttributionRecord { mix: MixRecord { params_height: None, ..record().mix }, ..record() },
            AttributionRecord { span: SpanPartRecord { method: "mine".into(), ..record().span }, ..record() },
        ] {
            assert!(AttributionRecord::decode(&bad.canonical_bytes()).is_err(), "{bad:?}");
        }
        // Whitespace or another key order: not the canonical bytes.
        let pretty = serde_json::to_vec_pretty(&r.to_value()).unwrap();
        assert!(AttributionRecord::decode(&pretty).unwrap_err().contains("canonical"));
        // A version 1 record (no paramsHeight) still decodes, and is judged by
        // the parameters in force when its receipt settled.
        let v1 = AttributionRecord { version: 1, mix: MixRecord { params_height: None, ..record().mix }, ..record() };
        let d = AttributionRecord::decode(&v1.canonical_bytes()).unwrap();
        assert_eq!(d.stated(77).params_height, 77);
        assert_eq!(record().stated(77).params_height, 40);
    }

    #[test]
    fn stated_parameters_must_be_the_governed_ones_at_their_height() {
        let stated = record().stated(45);
        let governed = RecordParams { excluded: vec![], ..stated.clone() };
        let failed = |g: &RecordParams, settled: u64, timeout: u64| {
            params_checks(&stated, g, settled, timeout)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.check)
                .collect::<Vec<_>>()
        };
        assert!(failed(&governed, 45, 30).is_empty());
        // Governance changed the weight at that height's side: wrong, not "cannot judge".
        let other = RecordParams { span_weight_ppm: 250_000, ..governed.clone() };
        assert_eq!(failed(&other, 45, 30), vec!["parameters in force at that height"]);
        // A height after settlement, or one older than the attribution timeout, is refused.
        assert_eq!(failed(&governed, 39, 30), vec!["parameters' height"]);
        assert_eq!(failed(&governed, 71, 30), vec!["parameters' height"]);
        // Exclusions must be flagged contributions.
        let excl = RecordParams { excluded: vec![9], ..stated.clone() };
        assert_eq!(
            params_checks(&excl, &governed, 45, 30).into_iter().filter(|c| !c.ok).map(|c| c.check).collect::<Vec<_>>(),
            vec!["excluded contributions are flagged"]
        );
    }

    #[test]
    fn ppm_sums_exactly_and_mixing_rules() {
        let s: BTreeMap<u64, f64> = [(1, 1.0), (2, 1.0), (3, 1.0)].into_iter().collect();
        let p = to_ppm(&s, 32);
        assert_eq!(p.iter().map(|x| x.1).sum::<u32>(), 1_000_000);
        assert_eq!(p, vec![(1, 333_334), (2, 333_333), (3, 333_333)]);
        assert_eq!(to_ppm(&s, 2).len(), 2);
        assert!(to_ppm(&BTreeMap::new(), 4).is_empty());
        let m = mix(&[(1, 1_000_000)], &[(2, 1_000_000)], 250_000, 32);
        assert_eq!(m, vec![(1, 250_000), (2, 750_000)]);
        assert_eq!(mix(&[], &[(2, 1_000_000)], 250_000, 32), vec![(2, 1_000_000)]);
        assert_eq!(mix(&[(1, 1_000_000)], &[], 250_000, 32), vec![(1, 1_000_000)]);
    }
}
