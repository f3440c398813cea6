//! `models`: the registry of models and their provenance. A model builder
//! registers a draft naming its base model, adapter, the Datanet versions it
//! was trained on (their licences are copied into the record), hyperparameters,
//! metrics, training log, kept checkpoints and gradient sketch, and its prices;
//! the owner proposes it; governance makes it live with `approve(ids)` from an
//! executed proposal; the owner or governance retires it. A live model's
//! retirement height is kept: its receipts issued before it settle within
//! `inference.retired_grace_blocks`; a model retired before it was live never
//! settles anything.
//!
//! Rules:
//! - ids are u64 from 1, written `m<id>` ([`primitives::ModelId`]); when the
//!   genesis names a base model it is m1: no adapter, owned by the treasury,
//!   live, priced by `models.base_price_in_per_1k` / `models.base_price_out_per_1k`
//!   at genesis (a proposal reprices it later through `setPrice`);
//! - a Datanet version can be trained on while it exists and is not closed (a
//!   tombstone closes every version that contains the removed row);
//! - a non-commercial licence ([`is_non_commercial`]) forbids a non-zero price;
//! - models hold no funds: every function refuses value.

mod calls;
pub mod genesis;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use primitives::abi::IModels::{self, IModelsCalls};
use primitives::abi::{ModelRegistration, Unauthorized};
use primitives::system::{Module, TREASURY};
use primitives::{Address, B256, Bytes, ModelId, content_hash};

use crate::context::{CallCtx, CallFail};
use crate::datanets::DatanetsRead;
use crate::dispatch::{SystemModule, calls};
use crate::genesis::{Genesis, GenesisError};
use crate::{Overlay, revert};
pub use records::*;
pub use view::{ModelsRead, ModelsWrite};

pub const ADDRESS: Address = Module::Models.address();
/// Most Datanet versions one model names.
pub const MAX_DATANETS: usize = 32;
/// Most kept checkpoints one model lists.
pub const MAX_CHECKPOINTS: usize = 64;
/// Largest hyperparameters or metrics blob kept in state (bytes).
pub const MAX_BLOB: usize = 8 * 1024;
/// Most ids in one `approve` and in one page of `liveModels`.
pub const MAX_IDS: usize = 256;
const MAX_NAME: usize = 128;

/// Whether a licence is non-commercial: one of its SPDX-style components (the
/// parts between characters that are not ASCII letters or digits) is "NC", in
/// any case. `CC-BY-NC-4.0`, `CC-BY-NC-SA-4.0` and `MIT OR CC-BY-NC-4.0` are;
/// `CC-BY-4.0`, `Apache-2.0` and `NCSA` are not.
pub fn is_non_commercial(licence: &str) -> bool {
    licence.split(|c: char| !c.is_ascii_alphanumeric()).any(|p| p.eq_ignore_ascii_case("nc"))
}

fn get(st: &Overlay, id: u64) -> Result<ModelRecord, CallFail> {
    st.model(ModelId(id))?.ok_or_else(|| revert(IModels::UnknownModel { id }))
}

fn invalid(reason: &str) -> CallFail {
    revert(IModels::InvalidModel { reason: reason.into() })
}

fn transition(id: u64, from: u8, to: u8) -> CallFail {
    revert(IModels::InvalidTransition { id, from, to })
}

/// The trimmed name, if it is 1 to 128 bytes.
pub(crate) fn check_name(name: &str) -> Result<&str, CallFail> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid("the name must be 1 to 128 bytes"));
    }
    Ok(name)
}

/// Refuse a non-zero price when any licence is non-commercial.
fn check_price(
    datanets: &[primitives::abi::DatanetVersionRef],
    licences: &[String],
    price_in: u128,
    price_out: u128,
) -> Result<(), CallFail> {
    if price_in == 0 && price_out == 0 {
        return Ok(());
    }
    match datanets.iter().zip(licences).find(|(_, l)| is_non_commercial(l)) {
        Some((d, l)) => Err(revert(IModels::NonCommercialLicence { datanetId: d.datanetId, licence: l.clone() })),
        None => Ok(()),
    }
}

/// Whether `sender` may act as the owner of `rec`: the owner itself, or
/// governance for models the treasury owns (the treasury is governed).
fn acts_as_owner(rec: &ModelRecord, sender: &Address) -> bool {
    *sender == rec.owner || (rec.owner == TREASURY && *sender == Module::Governance.address())
}

/// A draft from a registration, after every check.
fn draft(st: &Overlay, owner: Address, r: ModelRegistration, height: u64) -> Result<ModelRecord, CallFail> {
    let name = check_name(&r.name)?.to_string();
    if r.baseModelHash == B256::ZERO {
        return Err(invalid("the base model hash is required"));
    }
    if r.datanets.len() > MAX_DATANETS {
        return Err(invalid("at most 32 Datanet versions"));
    }
    if r.hyperparams.len() > MAX_BLOB || r.metrics.len() > MAX_BLOB {
        return Err(invalid("hyperparameters and metrics are at most 8 KiB each"));
    }
    if r.checkpointHashes.len() != r.checkpointLearningRates.len() {
        return Err(invalid("one learning rate per checkpoint"));
    }
    if r.checkpointHashes.len() > MAX_CHECKPOINTS {
        return Err(invalid("at most 64 checkpoints"));
    }
    let mut licences = Vec::new();
    for (i, dv) in r.datanets.iter().enumerate() {
        if r.datanets[..i].contains(dv) {
            return Err(invalid("a Datanet version is named twice"));
        }
        let unknown = || revert(IModels::UnknownDatanetVersion { datanetId: dv.datanetId, version: dv.version });
        let d = st.datanet(dv.datanetId)?.ok_or_else(unknown)?;
        let v = st.version(dv.datanetId, dv.version)?.ok_or_else(unknown)?;
        if v.closed {
            return Err(revert(IModels::VersionClosed { datanetId: dv.datanetId, version: dv.version }));
        }
        licences.push(d.licence);
    }
    check_price(&r.datanets, &licences, r.priceInPer1k, r.priceOutPer1k)?;
    Ok(ModelRecord {
        // Set when the record is stored (`ModelsWrite::insert_model`).
        id: 0,
        owner,
        name,
        baseModelHash: r.baseModelHash,
        adapterHash: r.adapterHash,
        datanets: r.datanets,
        licences,
        hyperparamsHash: content_hash(&r.hyperparams),
        hyperparams: r.hyperparams,
        metricsHash: content_hash(&r.metrics),
        metrics: r.metrics,
        trainingLogHash: r.trainingLogHash,
        checkpointHashes: r.checkpointHashes,
        checkpointLearningRates: r.checkpointLearningRates,
        sketchHash: r.sketchHash,
        sketchSeed: r.sketchSeed,
        sketchK: r.sketchK,
        priceInPer1k: r.priceInPer1k,
        priceOutPer1k: r.priceOutPer1k,
        state: DRAFT,
        createdAt: height,
    })
}

/// The model registry as a system module.
pub struct Models;

impl SystemModule for Models {
    type Calls = IModelsCalls;
    calls!(IModelsCalls {
        register,
        propose,
        approve,
        retire,
        setPrice,
        model,
        retiredAt,
        modelCount,
        modelsOf,
        liveModels
    });

    fn genesis(st: &mut Overlay, g: &Genesis) -> Result<(), GenesisError> {
        genesis::init(st, g.base_model.as_ref()).map(|_| ()).map_err(|e| {
            crate::genesis::refused(
                "the base model cannot be registered (is its name 1 to 128 bytes and its hash non-zero?)",
                e,
            )
        })
    }
}

/// Execute a call to the registry directly (tests and tools).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IModelsCalls) -> Result<Bytes, CallFail> {
    <Models as SystemModule>::execute(st, ctx, call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_commercial_licences() {
        for l in ["CC-BY-NC-4.0", "cc-by-nc-sa-4.0", "CC-BY-NC-ND-3.0", "MIT OR CC-BY-NC-4.0", "LicenseRef-NC", "NC"] {
            assert!(is_non_commercial(l), "{l}");
        }
        for l in ["CC-BY-4.0", "CC0-1.0", "Apache-2.0", "MIT", "NCSA", "CC-BY-SA-4.0", "", "ANC-1.0"] {
            assert!(!is_non_commercial(l), "{l}");
        }
    }
}
