//! The base model, registered at genesis as m1: no adapter, owned by the
//! treasury, live, priced by the genesis values of `models.base_price_in_per_1k`
//! and `models.base_price_out_per_1k`.

use primitives::system::TREASURY;
use primitives::{B256, Bytes, ModelId, content_hash};

use super::check_name;
use super::records::{LIVE, ModelRecord};
use super::view::ModelsWrite;
use crate::Overlay;
use crate::context::CallFail;
use crate::params::{self, ParamsRead};

/// The base model a chain starts with (the node reads it from the genesis file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseModelGenesis {
    /// Shown to users, 1 to 128 bytes.
    pub name: String,
    /// Model hash (`primitives::model_hash`) of the base model's weights and tokenizer.
    pub base_hash: B256,
}

/// Register `base`, if any, as the first model; returns its id.
pub fn init(st: &mut Overlay, base: Option<&BaseModelGenesis>) -> Result<Option<ModelId>, CallFail> {
    let Some(b) = base else { return Ok(None) };
    let name = check_name(&b.name)?.to_string();
    if b.base_hash == B256::ZERO {
        return Err(super::invalid("the base model hash is required"));
    }
    let rec = ModelRecord {
        id: 0,
        owner: TREASURY,
        name,
        baseModelHash: b.base_hash,
        adapterHash: B256::ZERO,
        datanets: vec![],
        licences: vec![],
        hyperparamsHash: content_hash(&[]),
        hyperparams: Bytes::new(),
        metricsHash: content_hash(&[]),
        metrics: Bytes::new(),
        trainingLogHash: B256::ZERO,
        checkpointHashes: vec![],
        checkpointLearningRates: vec![],
        sketchHash: B256::ZERO,
        sketchSeed: 0,
        sketchK: 0,
        priceInPer1k: st.param(&params::MODELS_BASE_PRICE_IN_PER_1K)?,
        priceOutPer1k: st.param(&params::MODELS_BASE_PRICE_OUT_PER_1K)?,
        state: LIVE,
        createdAt: 0,
    };
    Ok(Some(st.insert_model(&rec)?))
}
