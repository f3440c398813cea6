//! What OpenLoRA needs from the node: the models the chain knows (and which
//! are live), and adapters fetched from the blob store by the hashes their
//! records name, checked against the registered adapter hash.

use std::sync::Arc;

use chain::Chain;
use ml::{LoraAdapter, LoraConfig, ModelConfig};
use primitives::{B256, ModelId};
use runtime::models::ModelsRead;
use serve::{AdapterSource, ModelDirectory, ModelEntry};

/// Models from the chain's latest state.
pub struct ChainModels {
    pub chain: Arc<Chain>,
    /// The base model this node serves: only models on it are listed.
    pub base_hash: B256,
}

fn entry(id: u64, r: &runtime::models::ModelRecord) -> ModelEntry {
    ModelEntry {
        id,
        name: r.name.clone(),
        owner: r.owner,
        live: r.state == runtime::models::LIVE,
        has_adapter: r.adapterHash != B256::ZERO,
        adapter_hash: r.adapterHash,
        base_hash: r.baseModelHash,
        price_in_per_1k: r.priceInPer1k,
        price_out_per_1k: r.priceOutPer1k,
        created: r.createdAt,
    }
}

impl ModelDirectory for ChainModels {
    fn model(&self, id: u64) -> Result<Option<ModelEntry>, String> {
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        Ok(st.model(ModelId(id)).map_err(|e| e.to_string())?.map(|r| entry(id, &r)))
    }

    fn live(&self) -> Result<Vec<ModelEntry>, String> {
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for id in st.live_models().map_err(|e| e.to_string())? {
            if let Some(r) = st.model(id).map_err(|e| e.to_string())?
                && r.baseModelHash == self.base_hash
            {
                out.push(entry(id.0, &r));
            }
        }
        Ok(out)
    }
}

/// Adapters from the blob store: the model record's metrics name the PEFT
/// files' blob hashes (as ModelFactory registers them).
pub struct BlobAdapters {
    pub chain: Arc<Chain>,
    pub blobs: Arc<blobs::BlobStore>,
    pub model: ModelConfig,
    pub handle: tokio::runtime::Handle,
    /// Adapters' held (int8) forms on local disk, read by later cold loads.
    pub tier: Option<serve::HeldTier>,
}

impl BlobAdapters {
    fn blob(&self, hash: &str) -> Result<bytes::Bytes, String> {
        let h: B256 = hash.parse().map_err(|_| format!("bad blob hash {hash:?}"))?;
        self.handle.block_on(self.blobs.get(&h)).map_err(|e| format!("blob {h}: {e}"))
    }
}

impl AdapterSource for BlobAdapters {
    fn load(&self, id: u64) -> Result<LoraAdapter, String> {
        self.load_as(id, ml::AdapterDtype::F32)
    }

    fn load_as(&self, id: u64, dtype: ml::AdapterDtype) -> Result<LoraAdapter, String> {
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let r = st.model(ModelId(id)).map_err(|e| e.to_string())?.ok_or_else(|| format!("m{id} does not exist"))?;
        drop(st);
        match &self.tier {
            Some(tier) => tier.load_as(&r.adapterHash, dtype, || self.load_blobs(id, &r, dtype)).map(|(a, _)| a),
            None => self.load_blobs(id, &r, dtype),
        }
    }
}

/// How long one round of [`BlobAdapters::warm_tier`] may convert adapters.
pub const WARM_ROUND: std::time::Duration = std::time::Duration::from_millis(250);

impl BlobAdapters {
    /// One round of the held tier's warmer: held forms of adapters no longer
    /// live are removed, and the live models on this base whose adapter has
    /// no held form yet get one (loaded from their blobs, checked and
    /// converted), for at most [`WARM_ROUND`], so that a model's first
    /// request reads the tier too. An adapter that fails to load is logged
    /// once and skipped afterwards (`failed`). Returns how many were written.
    pub fn warm_tier(&self, models: &ChainModels, failed: &mut std::collections::HashSet<B256>) -> usize {
        let Some(tier) = &self.tier else { return 0 };
        let live = match models.live() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("held tier: cannot list the live models: {e}");
                return 0;
            }
        };
        let keep: std::collections::HashSet<B256> = live.iter().map(|m| m.adapter_hash).collect();
        let removed = tier.retain(&keep);
        if removed > 0 {
            tracing::info!(removed, "held tier: forms of adapters no longer live removed");
        }
        let deadline = std::time::Instant::now() + WARM_ROUND;
        let mut written = 0;
        for m in live {
            if std::time::Instant::now() >= deadline {
                break;
            }
            if !m.has_adapter || failed.contains(&m.adapter_hash) || tier.has(&m.adapter_hash) {
                continue;
            }
            match self.load_as(m.id, ml::AdapterDtype::I8) {
                Ok(_) => written += 1,
                Err(e) => {
                    tracing::warn!("held tier: m{}: {e} (not tried again until the node restarts)", m.id);
                    failed.insert(m.adapter_hash);
                }
            }
        }
        written
    }

    /// Model `id`'s adapter from the blobs its record names, checked against its adapter hash.
    fn load_blobs(
        &self,
        id: u64,
        r: &runtime::models::ModelRecord,
        dtype: ml::AdapterDtype,
    ) -> Result<LoraAdapter, String> {
        let m: serde_json::Value =
            serde_json::from_slice(&r.metrics).map_err(|_| format!("m{id}: its metrics do not name its artefacts"))?;
        let a = &m["artefacts"];
        let (cfg, weights) = match (a["adapterConfig"].as_str(), a["adapterModel"].as_str()) {
            (Some(c), Some(w)) => (c.to_string(), w.to_string()),
            _ => return Err(format!("m{id}: its record names no adapter blobs")),
        };
        let cfg = self.blob(&cfg)?;
        let cfg = std::str::from_utf8(&cfg).map_err(|_| "adapter_config.json is not UTF-8".to_string())?;
        let weights = self.blob(&weights)?;
        let lora = LoraConfig::from_peft_json(cfg).map_err(|e| e.to_string())?;
        let ad = LoraAdapter::from_parts_as(lora, &weights, &self.model, dtype).map_err(|e| e.to_string())?;
        if ad.hash != r.adapterHash {
            return Err(format!("m{id}: the stored adapter hashes to {}, the chain says {}", ad.hash, r.adapterHash));
        }
        Ok(ad)
    }
}
