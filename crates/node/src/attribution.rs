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

/// Method version, in every record.
pub const RECORD_VERSION: u32 = 1;
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
#[derive(Debug, Clone)]
pub struct RecordParams {
    pub span_weight_ppm: u32,
    pub min_span_tokens: usize,
    pub max_credits: usize,
    /// Contributions of the model's Datanets flagged (duplicated, adversarial)
    /// since training: the methods still see them (the span part is the raw
    /// trace), the final credits leave them out.
    pub excluded: Vec<u64>,
}

impl RecordParams {
    pub fn from_state(st: &dyn primitives::state::StateRead, r: &ModelRecord) -> Result<RecordParams, String> {
        use runtime::datanets::DatanetsRead;
        let p = |spec| st.param(spec).map_err(|e| e.to_string());
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
        })
    }

    /// The parameters a record states (what a verifier recomputes it with).
    pub fn stated(record: &Value) -> RecordParams {
        RecordParams {
            span_weight_ppm: record["mix"]["spanWeightPpm"].as_u64().unwrap_or(0) as u32,
            min_span_tokens: record["span"]["minSpanTokens"].as_u64().unwrap_or(8) as usize,
            max_credits: record["mix"]["maxCredits"].as_u64().unwrap_or(32) as usize,
            excluded: record["mix"]["excluded"].as_array().into_iter().flatten().filter_map(|v| v.as_u64()).collect(),
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
    let pairs = |v: &[(u64, u32)]| v.iter().map(|(c, w)| json!([c, w])).collect::<Vec<_>>();
    Ok(json!({
        "version": RECORD_VERSION,
        "receiptHash": receipt_hash.to_string(),
        "model": format!("m{model_id}"),
        "baseModelHash": r.baseModelHash.to_string(),
        "adapterHash": r.adapterHash.to_string(),
        "datanets": versions.iter().map(|(d, v)| json!({"datanet": d, "version": v})).collect::<Vec<_>>(),
        "promptHash": prompt_hash.to_string(),
        "response": text,
        "responseTokens": response,
        "span": {
            "method": "maximal-spans-suffix-array",
            "minSpanTokens": p.min_span_tokens,
            "spans": span.spans,
            "credits": pairs(&span.credits),
        },
        "gradient": {
            "method": "tracin-projected-lora",
            "sketchHash": r.sketchHash.to_string(),
            "k": r.sketchK,
            "seed": r.sketchSeed,
            "checkpoints": r.checkpointHashes.iter().zip(&r.checkpointLearningRates)
                .map(|(h, l)| json!({"hash": h.to_string(), "lrNano": l})).collect::<Vec<_>>(),
            "tolerancePpm": GRADIENT_TOLERANCE_PPM,
            "credits": pairs(&grad),
        },
        "mix": {"spanWeightPpm": p.span_weight_ppm, "maxCredits": p.max_credits, "excluded": p.excluded,
                "rule": "span and gradient ppm without the excluded (flagged) contributions, weighted by spanWeightPpm; one method alone when the other credits nothing"},
        "credits": pairs(&credits),
    }))
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
            RecordParams::from_state(&st, &r)?
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

    /// A verifier's judgement of a revealed record: recompute it from the
    /// public inputs, the revealed prompt and the chain's parameters, and
    /// compare. `Ok((correct, checks))`; `Err` when it cannot judge (the
    /// model's artefacts are missing here), so it signs nothing.
    pub fn judge(&self, receipt_hash: B256, record: &[u8], prompt: &[u8]) -> Result<(bool, Vec<Check>), String> {
        use runtime::inference::InferenceRead;
        let theirs: Value = match serde_json::from_slice(record) {
            Ok(v) => v,
            Err(e) => return Ok((false, vec![Check::new("record is JSON", false, e.to_string())])),
        };
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let hold = st.hold(&receipt_hash).map_err(|e| e.to_string())?.ok_or("unknown receipt")?;
        let mut checks = vec![
            Check::new("receipt", theirs["receiptHash"].as_str() == Some(&receipt_hash.to_string()), String::new()),
            Check::new(
                "prompt hash",
                theirs["promptHash"].as_str() == Some(&primitives::content_hash(prompt).to_string()),
                String::new(),
            ),
            Check::new("model", theirs["model"].as_str() == Some(&format!("m{}", hold.modelId)), String::new()),
        ];
        let r = self.record_of(hold.modelId)?;
        let governed = RecordParams::from_state(&st, &r)?;
        drop(st);
        let stated = RecordParams::stated(&theirs);
        // The chain keeps no parameter history here: a record whose parameters
        // differ from today's may predate a governance change, so the verifier
        // abstains rather than slash an honest operator (the challenge lapses).
        if (stated.span_weight_ppm, stated.min_span_tokens, stated.max_credits)
            != (governed.span_weight_ppm, governed.min_span_tokens, governed.max_credits)
        {
            return Err(format!(
                "the record states parameters {stated:?}, the chain now governs {governed:?}: cannot tell which applied"
            ));
        }
        // A record may leave out only contributions that really are flagged; one
        // flagged after the record was made is not missing from it (its credit is
        // forfeited at finalization anyway).
        let unflagged: Vec<u64> = stated.excluded.iter().copied().filter(|c| !governed.excluded.contains(c)).collect();
        checks.push(Check::new("excluded contributions are flagged", unflagged.is_empty(), format!("{unflagged:?}")));
        let response = response_tokens(&theirs);
        let text = theirs["response"].as_str().unwrap_or("");
        checks.push(Check::new(
            "response tokens",
            self.tokenizer.decode(&response).ok().as_deref() == Some(text),
            String::new(),
        ));
        let prompt_hash = primitives::content_hash(prompt);
        let mine = self.compute_with(hold.modelId, &r, receipt_hash, prompt_hash, &response, text, stated)?;
        checks.extend(compare(&mine, &theirs));
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
