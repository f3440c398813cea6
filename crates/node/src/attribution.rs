//! Proof of Attribution, phase two of a paid inference, as the node wires it:
//! the serving node computes a record for every paid answer
//! ([`attribution::compute_record`] over this node's span indexes and the
//! model's artefacts from the blob store), keeps it as a blob, signs its hash
//! with the serving key and posts it with `inference.postAttribution` once the
//! receipt has settled; a validator's verifier judges a revealed record
//! ([`attribution::judge`] with what the chain says about it).
//!
//! The record, its encoding and hash, the methods (span tracing, TracIn) and
//! the judgement live in the `attribution` crate; this module reads chain
//! state and services and calls into it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use attribution::{
    AttributionRecord, Check, Governed, GradientInputs, RecordParams, RetrievalInputs, RetrievedRow, SettledReceipt,
    canonical, record_credits, record_hash,
};
use chain::Chain;

use crate::pending::{Pending, PendingRecords};
use ml::{Model, TextTokenizer};
use primitives::{B256, ModelId};
use runtime::models::{ModelRecord, ModelRecordExt, ModelsRead};
use runtime::params::ParamsRead;
use serde_json::{Value, json};

/// The node's attribution service.
pub struct AttributionService {
    pub chain: Arc<Chain>,
    pub blobs: Arc<blobs::BlobStore>,
    pub datanets: Arc<datanets::DatanetService>,
    /// The base model, through the node's one loader: the gradient methods read
    /// it dense (`NodeFactoryEnv::load_trainable`: a quantized base's blocks
    /// dequantized once, loaded at the first record that needs it), as
    /// `openledger attribution verify` and every validator compute them.
    base: Arc<crate::NodeFactoryEnv>,
    pub tokenizer: Arc<TextTokenizer>,
    pub serving_key: keys::SecretKey,
    pub dir: PathBuf,
    pub handle: tokio::runtime::Handle,
    spans: crate::spans::SpanIndexes,
    gradients: Mutex<HashMap<u64, Arc<GradientInputs>>>,
    /// Receipt → the signed record and who may read it; record hash (its
    /// blob) → who may read it (the same as its route). On disk, the newest in memory.
    records: crate::records::RecordStore,
    /// Records waiting for their receipt to settle, journaled under `<dir>/to-post`.
    pub to_post: Arc<PendingRecords>,
}

impl AttributionService {
    pub fn new(
        chain: Arc<Chain>,
        blobs: Arc<blobs::BlobStore>,
        datanets: Arc<datanets::DatanetService>,
        base: Arc<crate::NodeFactoryEnv>,
        tokenizer: Arc<TextTokenizer>,
        serving_key: keys::SecretKey,
        dir: PathBuf,
        handle: tokio::runtime::Handle,
    ) -> Arc<AttributionService> {
        let spans = crate::spans::SpanIndexes::new(dir.join("span-indexes"));
        let records = crate::records::RecordStore::new(dir.join("records"));
        let to_post = Arc::new(PendingRecords::open(dir.join("to-post")));
        Arc::new(AttributionService {
            chain,
            blobs,
            datanets,
            base,
            tokenizer,
            serving_key,
            dir,
            handle,
            spans,
            gradients: Mutex::new(HashMap::new()),
            records,
            to_post,
        })
    }

    /// The base model as the gradient methods read it (see `base`).
    fn model(&self) -> Result<Arc<Model>, String> {
        self.base.load_trainable().map(|(m, _)| m).map_err(|e| e.to_string())
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
        let Some(g) = GradientInputs::load(r, &self.model()?.config, &|h| self.blob(h))? else { return Ok(None) };
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
        retrieved: Option<&RetrievalInputs>,
    ) -> Result<Value, String> {
        let r = self.record_of(model_id)?;
        let p = {
            let st = self.chain.snapshot().map_err(|e| e.to_string())?;
            let height = st.head().map_err(|e| e.to_string())?.unwrap_or(0);
            RecordParams::from_state(&st, &r, height)?
        };
        self.compute_with(
            attribution::RECORD_VERSION,
            model_id,
            &r,
            receipt_hash,
            prompt_hash,
            response,
            text,
            p,
            retrieved,
        )
    }

    /// [`Self::compute`] with given parameters and the methods of record `version`.
    #[allow(clippy::too_many_arguments)]
    fn compute_with(
        &self,
        version: u32,
        model_id: u64,
        r: &ModelRecord,
        receipt_hash: B256,
        prompt_hash: B256,
        response: &[u32],
        text: &str,
        p: RecordParams,
        retrieved: Option<&RetrievalInputs>,
    ) -> Result<Value, String> {
        let versions = r.versions();
        let index = if versions.is_empty() {
            None
        } else {
            Some(self.spans.index(&self.datanets, &self.handle, &self.tokenizer, &versions)?)
        };
        let gradient = self.gradient_inputs(model_id, r)?;
        // Only the gradient methods read the weights: the dense copy is made
        // for the first record that has them.
        let model = match gradient {
            Some(_) => self.model()?,
            None => self.base.load_base().map(|(m, _)| m).map_err(|e| e.to_string())?,
        };
        let inputs = attribution::Inputs {
            model: &model,
            tok: &self.tokenizer,
            model_id,
            r,
            receipt_hash,
            prompt_hash,
            response,
            text,
            index: index.as_deref(),
            gradient: gradient.as_deref(),
        };
        let record = attribution::compute_record_version(version, &inputs, p.clone())?;
        match retrieved {
            Some(inputs) => attribution::add_retrieval(&record, &self.tokenizer, inputs, &p),
            None => Ok(record),
        }
    }

    /// The inputs of a record's retrieval part from the rows it names, read
    /// (checked against their roots) from the Datanet versions it names. A
    /// row that is not in those versions is left out, so a record that names
    /// one does not match its recomputation.
    pub fn retrieval_inputs(&self, part: &attribution::RetrievalPartRecord) -> Result<RetrievalInputs, String> {
        use runtime::datanets::{APPROVED, DatanetsRead};
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let versions: Vec<(u64, u64)> = part.datanets.iter().map(|d| (d.datanet, d.version)).collect();
        let mut texts: HashMap<u64, Vec<primitives::rows::Row>> = HashMap::new();
        let mut rows = Vec::with_capacity(part.rows.len());
        for (c, i) in &part.rows {
            let Some(rec) = st.contribution(*c).map_err(|e| e.to_string())? else { continue };
            let in_version =
                versions.iter().any(|(d, v)| *d == rec.attestation.datanetId && rec.version <= *v && rec.version > 0);
            if !in_version || rec.status != APPROVED {
                continue;
            }
            if !texts.contains_key(c) {
                let (_, r) =
                    self.handle.block_on(self.datanets.reader().contribution_rows(*c)).map_err(|e| e.to_string())?;
                texts.insert(*c, r);
            }
            let Some(row) = texts[c].get(*i as usize) else { continue };
            let tokens = self.tokenizer.encode(&crate::spans::row_text(row), false).map_err(|e| e.to_string())?;
            rows.push(RetrievedRow { contribution: *c, row: *i, tokens });
        }
        Ok(RetrievalInputs { datanets: versions, rows })
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

    /// A verifier's judgement of a revealed record ([`attribution::judge`]):
    /// the receipt, the attribution timeout in force when it settled and the
    /// governed parameters at the record's stated height come from one
    /// snapshot of the chain (dropped before the recomputation), the
    /// recomputation from this node's span indexes and the model's artefacts.
    /// `Err` only when it cannot judge here (unknown receipt, the model's
    /// artefacts are missing), so it signs nothing.
    pub fn judge(&self, receipt_hash: B256, record: &[u8], prompt: &[u8]) -> Result<(bool, Vec<Check>), String> {
        self.judge_recomputing(receipt_hash, record, prompt).map(|(ok, checks, _)| (ok, checks))
    }

    /// [`Self::judge`], with the record this node recomputed (`None` when a
    /// check before the recomputation failed): its hash is what a challenger names.
    pub fn judge_recomputing(
        &self,
        receipt_hash: B256,
        record: &[u8],
        prompt: &[u8],
    ) -> Result<(bool, Vec<Check>, Option<Value>), String> {
        use runtime::inference::InferenceRead;
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let hold = st.hold(&receipt_hash).map_err(|e| e.to_string())?.ok_or("unknown receipt")?;
        let retrieval_hash = st.retrieval_hash_of(&receipt_hash).map_err(|e| e.to_string())?;
        let posted = st
            .pending_credits(&receipt_hash)
            .map_err(|e| e.to_string())?
            .map(|pc| attribution::PostedCredits::new(hold.amount, &pc.contributionIds, &pc.amounts));
        let receipt =
            SettledReceipt { receipt_hash, model_id: hold.modelId, settled_at: hold.settledAt, retrieval_hash, posted };
        let governed_at = move |height: u64| {
            let model = self.record_of(hold.modelId)?;
            // The timeout in force when the receipt settled (the window the operator had).
            let timeout = st
                .param_at(&runtime::params::INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS, hold.settledAt)
                .map_err(|e| e.to_string())?;
            let params = RecordParams::from_state(&st, &model, height)?;
            Ok(Governed { params, timeout: timeout as u64, model })
        };
        let mut mine = None;
        let recompute = |r: &ModelRecord, theirs: &AttributionRecord, stated: RecordParams| {
            let prompt_hash = primitives::content_hash(prompt);
            let (response, text) = (&theirs.response_tokens, &theirs.response);
            let retrieved = theirs.retrieval.as_ref().map(|p| self.retrieval_inputs(p)).transpose()?;
            let v = theirs.version;
            let m = self.compute_with(
                v,
                hold.modelId,
                r,
                receipt_hash,
                prompt_hash,
                response,
                text,
                stated,
                retrieved.as_ref(),
            )?;
            mine = Some(m.clone());
            Ok(m)
        };
        let (ok, checks) = attribution::judge(&receipt, record, prompt, &self.tokenizer, governed_at, recompute)?;
        Ok((ok, checks, mine))
    }

    /// Who may read the blob `hash` if it is a record this node made (its
    /// canonical bytes): the same readers as `GET /v1/attribution/{receipt}`.
    pub fn record_blob_access(&self, hash: &B256) -> Option<serve::RecordAccess> {
        self.records.access_by_hash(hash)
    }

    /// The retrieval part's inputs of rows this node retrieved (their text as
    /// its retrieval index holds it: `spans::row_text` of the checked rows).
    fn inputs_of(&self, r: &serve::Retrieved) -> Result<RetrievalInputs, String> {
        let mut rows = Vec::with_capacity(r.passages.len());
        for p in &r.passages {
            let tokens = self.tokenizer.encode(&p.text, false).map_err(|e| e.to_string())?;
            rows.push(RetrievedRow { contribution: p.contribution, row: p.row, tokens });
        }
        Ok(RetrievalInputs { datanets: r.versions.clone(), rows })
    }

    fn sign(&self, hash: &B256) -> String {
        format!("0x{}", hex::encode(self.serving_key.sign_message(hash.as_slice()).as_bytes()))
    }
}

impl serve::Attributor for AttributionService {
    /// An adapter model has Datanets to attribute to; the base model only when
    /// the answer retrieved rows (otherwise its data share goes to the
    /// treasury at settlement, so there is nothing to attribute).
    fn wants(&self, model: &serve::ModelEntry, retrieved: Option<&serve::Retrieved>) -> bool {
        model.has_adapter || retrieved.is_some_and(|r| !r.passages.is_empty())
    }

    fn attribute(
        &self,
        model: &serve::ModelEntry,
        receipt_hash: B256,
        prompt: &[u32],
        response: &[u32],
        text: &str,
        access: serve::RecordAccess,
        retrieved: Option<&serve::Retrieved>,
    ) -> Result<Value, String> {
        if !serve::Attributor::wants(self, model, retrieved) {
            return Err(format!("m{} without retrieved rows has no Datanet to attribute to", model.id));
        }
        let inputs = retrieved.filter(|r| !r.passages.is_empty()).map(|r| self.inputs_of(r));
        let inputs = inputs.transpose().map_err(|e| format!("the retrieved rows are not tokenised: {e}"))?;
        let prompt_bytes: Vec<u8> = prompt.iter().flat_map(|t| t.to_le_bytes()).collect();
        // Kept (privately: the blob API serves no blob it cannot place, and a
        // prompt is never placed) for a reveal, should the record be challenged.
        if let Err(e) = self.handle.block_on(self.blobs.put(prompt_bytes.clone().into())) {
            tracing::warn!("prompt of {receipt_hash} not stored (a challenge could not be answered): {e}");
        }
        let prompt_hash = primitives::content_hash(&prompt_bytes);
        let record = self.compute(model.id, receipt_hash, prompt_hash, response, text, inputs.as_ref())?;
        let hash = record_hash(&record);
        let credits = record_credits(&record);
        let summary = json!({
            "recordHash": hash.to_string(),
            "credits": credits.iter().map(|c| json!({"contribution": c.contributionId, "ppm": c.weightPpm})).collect::<Vec<_>>(),
            "spans": record["span"]["spans"].as_array().map(|a| a.len()).unwrap_or(0),
            "retrieval": record.get("retrieval").map(|r| json!({
                "support": r["support"], "credits": r["credits"], "spans": r["spans"].as_array().map(|a| a.len()),
                "shareBps": r["shareBps"],
            })),
        });
        // The summary rides along, so a client whose answer carried the pending
        // pointer shows what it would have shown (it is not part of the signed record).
        let signed = json!({"record": record, "recordHash": hash.to_string(), "signature": self.sign(&hash),
                            "signer": self.serving_key.address(), "summary": summary});
        if let Err(e) = self.handle.block_on(self.blobs.put(canonical(&record).into_bytes().into())) {
            tracing::warn!("attribution record of {receipt_hash} not stored: {e}");
        }
        let retrieved = inputs.map(|i| i.datanets).unwrap_or_default();
        if let Err(e) = self.to_post.insert(receipt_hash, Pending { record: hash, credits, retrieved }) {
            tracing::warn!("{e}");
        }
        if let Err(e) = self.records.put(receipt_hash, hash, signed, access) {
            tracing::warn!("{e}");
        }
        Ok(summary)
    }

    fn record(&self, receipt_hash: B256) -> Option<(Value, serve::RecordAccess)> {
        self.records.get(&receipt_hash)
    }
}
