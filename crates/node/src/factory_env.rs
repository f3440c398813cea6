//! What ModelFactory needs from the node: base models (loaded once and kept),
//! Datanet versions checked against the chain, their rows through the typed
//! versions API, and the blob store.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chain::Chain;
use factory::{DatanetVersion, FactoryEnv, FactoryError};
use ml::{Model, ModelFiles, TextTokenizer};
use primitives::{B256, ModelId};
use runtime::datanets::DatanetsRead;
use runtime::models::ModelsRead;

type Loaded = (Arc<Model>, Arc<TextTokenizer>);

/// The node's [`FactoryEnv`].
pub struct NodeFactoryEnv {
    pub chain: Arc<Chain>,
    pub datanets: Arc<datanets::DatanetService>,
    pub blobs: Arc<blobs::BlobStore>,
    /// The base model this node serves and trains on: the only model files it loads.
    pub base_model: Option<PathBuf>,
    pub handle: tokio::runtime::Handle,
    loaded: Mutex<Option<Loaded>>,
    /// For training, a quantized base's weights dequantized once (see [`Self::load_trainable`]).
    trainable: Mutex<Option<Loaded>>,
}

impl NodeFactoryEnv {
    pub fn new(
        chain: Arc<Chain>,
        datanets: Arc<datanets::DatanetService>,
        blobs: Arc<blobs::BlobStore>,
        base_model: Option<PathBuf>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        NodeFactoryEnv {
            chain,
            datanets,
            blobs,
            base_model,
            handle,
            loaded: Mutex::new(None),
            trainable: Mutex::new(None),
        }
    }

    /// The node's base model, loaded once (the configured files, never a path a
    /// caller names: one copy in memory whatever a job calls it), with its
    /// weights as stored: what the node serves. Training and the gradient
    /// methods of attribution read [`Self::load_trainable`].
    pub fn load_base(&self) -> Result<Loaded, FactoryError> {
        let mut slot = self.loaded.lock().unwrap();
        if let Some(l) = slot.as_ref() {
            return Ok(l.clone());
        }
        let path = self
            .base_model
            .as_ref()
            .ok_or_else(|| FactoryError::BaseModel("this node has no base model configured (--base-model)".into()))?;
        let files = ModelFiles::open(path).map_err(|e| FactoryError::BaseModel(e.to_string()))?;
        // Weights as stored: a Q8_0/Q4 GGUF keeps its quantized blocks, which the
        // kernels multiply directly, faster than f32 at every batch size and a
        // quarter of the memory (docs/benchmarks.md, issue 23). Training and
        // gradient attribution dequantize the same blocks to the same f32 values
        // (`StoredTensor::tensor`), so their results do not depend on this choice.
        let model = Model::from_files(&files).map_err(|e| FactoryError::BaseModel(e.to_string()))?;
        let l = (Arc::new(model), Arc::new(files.tokenizer.clone()));
        *slot = Some(l.clone());
        Ok(l)
    }

    /// The base model as training reads it: a dense base is [`Self::load_base`]'s
    /// own copy; a quantized one is dequantized once, at the first job, and kept
    /// (training would otherwise dequantize every weight at every step). The
    /// values are those every training step would compute, so jobs, checkpoints
    /// and their hashes are the same bits either way.
    pub fn load_trainable(&self) -> Result<Loaded, FactoryError> {
        let (model, tokenizer) = self.load_base()?;
        if model.quantized_formats().is_empty() {
            return Ok((model, tokenizer));
        }
        let mut slot = self.trainable.lock().unwrap();
        if let Some(l) = slot.as_ref() {
            return Ok(l.clone());
        }
        let dense = (*model).clone().into_f32_weights().map_err(|e| FactoryError::BaseModel(e.to_string()))?;
        let l = (Arc::new(dense), tokenizer);
        *slot = Some(l.clone());
        Ok(l)
    }
}

/// The refusal for a base model name this node does not serve. It repeats at most
/// a short prefix of the name and never depends on the file system.
fn not_served(name: &str, why: &str, served: &B256) -> FactoryError {
    let shown: String = name.chars().take(80).collect();
    FactoryError::UnknownBaseModel(format!(
        "base model {shown:?} is not served by this node: {why}; name the base model by its model id (m1) or its \
         base model hash ({served}), or leave baseModel out for the node's base model"
    ))
}

impl FactoryEnv for NodeFactoryEnv {
    fn base_model(&self, name: Option<&str>) -> Result<Loaded, FactoryError> {
        // Named against the stored copy; a job gets the trainable one.
        let served = self.load_base()?.0.hash;
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else { return self.load_trainable() };
        if let Some(digits) = name.strip_prefix('m').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            let Ok(id) = digits.parse::<u64>() else { return Err(not_served(name, "no such model", &served)) };
            let st = self.chain.snapshot().map_err(|e| FactoryError::Data(e.to_string()))?;
            let rec = st.model(ModelId(id)).map_err(|e| FactoryError::Data(e.to_string()))?;
            return match rec {
                None => Err(not_served(name, "no such model", &served)),
                Some(r) if r.adapterHash != B256::ZERO => {
                    Err(not_served(name, "it is an adapter model, not a base model", &served))
                }
                Some(r) if r.baseModelHash != served => {
                    Err(not_served(name, &format!("its base model hash is {}", r.baseModelHash), &served))
                }
                Some(_) => self.load_trainable(),
            };
        }
        let digits = name.strip_prefix("0x").unwrap_or(name);
        if digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hash: B256 = digits.parse().map_err(|_| not_served(name, "not a hash", &served))?;
            return if hash == served {
                self.load_trainable()
            } else {
                Err(not_served(name, "no base model has that hash here", &served))
            };
        }
        Err(not_served(name, "it is neither a model id nor a base model hash", &served))
    }

    fn check_versions(&self, versions: &[DatanetVersion]) -> Result<Vec<String>, FactoryError> {
        let st = self.chain.snapshot().map_err(|e| FactoryError::Data(e.to_string()))?;
        let mut licences = Vec::new();
        for v in versions {
            let d = st
                .datanet(v.datanet)
                .map_err(|e| FactoryError::Data(e.to_string()))?
                .ok_or_else(|| FactoryError::Data(format!("Datanet {} does not exist", v.datanet)))?;
            let rec =
                st.version(v.datanet, v.version).map_err(|e| FactoryError::Data(e.to_string()))?.ok_or_else(|| {
                    FactoryError::Data(format!(
                        "Datanet {} has no version {} (it has {})",
                        v.datanet, v.version, d.versionCount
                    ))
                })?;
            if rec.closed {
                return Err(FactoryError::Data(format!(
                    "Datanet {} version {} is closed to training: a later tombstone removed rows it contains",
                    v.datanet, v.version
                )));
            }
            licences.push(d.licence.clone());
        }
        Ok(licences)
    }

    fn row_count(&self, v: DatanetVersion) -> Result<u64, FactoryError> {
        let st = self.chain.snapshot().map_err(|e| FactoryError::Data(e.to_string()))?;
        let rec = st.version(v.datanet, v.version).map_err(|e| FactoryError::Data(e.to_string()))?;
        rec.map(|r| r.rowCount)
            .ok_or_else(|| FactoryError::Data(format!("Datanet {} has no version {}", v.datanet, v.version)))
    }

    fn may_train(&self, trainer: primitives::Address, versions: &[DatanetVersion]) -> Result<(), FactoryError> {
        for v in versions {
            if !self.datanets.may_train(v.datanet, trainer).map_err(FactoryError::Data)? {
                return Err(FactoryError::NotMember(format!(
                    "{trainer} may not train on Datanet {}: it is an allow-list Datanet, trainable only by its \
                     members, owner and curators",
                    v.datanet
                )));
            }
        }
        Ok(())
    }

    fn rows(&self, v: DatanetVersion) -> Result<Vec<datanets::VersionRow>, FactoryError> {
        self.handle
            .block_on(self.datanets.reader().version_rows(v.datanet, v.version))
            .map_err(|e| FactoryError::Data(e.to_string()))
    }

    fn put_blob(&self, bytes: Vec<u8>) -> Result<B256, FactoryError> {
        self.handle.block_on(self.blobs.put(bytes.into())).map_err(|e| FactoryError::Blobs(e.to_string()))
    }

    fn now(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}
