//! What ModelFactory needs from the node: base models (loaded once and kept),
//! Datanet versions checked against the chain, their rows through the typed
//! versions API, and the blob store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chain::Chain;
use factory::{DatanetVersion, FactoryEnv, FactoryError};
use ml::{Model, ModelFiles, TextTokenizer};
use primitives::B256;
use runtime::datanets::DatanetsRead;

type Loaded = (Arc<Model>, Arc<TextTokenizer>);

/// The node's [`FactoryEnv`].
pub struct NodeFactoryEnv {
    pub chain: Arc<Chain>,
    pub datanets: Arc<datanets::DatanetService>,
    pub blobs: Arc<blobs::BlobStore>,
    /// The base model used when a job names none.
    pub base_model: Option<PathBuf>,
    pub handle: tokio::runtime::Handle,
    loaded: Mutex<HashMap<PathBuf, Loaded>>,
}

impl NodeFactoryEnv {
    pub fn new(
        chain: Arc<Chain>,
        datanets: Arc<datanets::DatanetService>,
        blobs: Arc<blobs::BlobStore>,
        base_model: Option<PathBuf>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        NodeFactoryEnv { chain, datanets, blobs, base_model, handle, loaded: Mutex::new(HashMap::new()) }
    }

    /// Load (once) the model at `path`.
    pub fn load(&self, path: &std::path::Path) -> Result<Loaded, FactoryError> {
        if let Some(l) = self.loaded.lock().unwrap().get(path) {
            return Ok(l.clone());
        }
        let files = ModelFiles::open(path).map_err(|e| FactoryError::BaseModel(e.to_string()))?;
        let model = Model::from_files(&files).map_err(|e| FactoryError::BaseModel(e.to_string()))?;
        let l = (Arc::new(model), Arc::new(files.tokenizer.clone()));
        self.loaded.lock().unwrap().insert(path.to_path_buf(), l.clone());
        Ok(l)
    }
}

impl FactoryEnv for NodeFactoryEnv {
    fn base_model(&self, name: Option<&str>) -> Result<Loaded, FactoryError> {
        let path = match name {
            Some(p) => PathBuf::from(p),
            None => self.base_model.clone().ok_or_else(|| {
                FactoryError::BaseModel("this node has no base model configured (--base-model)".into())
            })?,
        };
        self.load(&path)
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
