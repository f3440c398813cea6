//! Stored records of models (ABI-encoded `sol!` structs).

use alloy_sol_types::sol;
use primitives::ModelId;
use primitives::abi::{DatanetVersionRef, ModelInfo};

sol! {
    struct ModelRecord {
        address owner;
        string name;
        bytes32 baseModelHash;
        /// Zero for a model without an adapter (the base model).
        bytes32 adapterHash;
        /// The Datanet versions trained on: `datanetIds[i]` at `datanetVersions[i]`,
        /// under `licences[i]` (copied from the Datanet at registration).
        uint64[] datanetIds;
        uint64[] datanetVersions;
        string[] licences;
        /// blake3 of `hyperparams`.
        bytes32 hyperparamsHash;
        bytes hyperparams;
        /// blake3 of `metrics`.
        bytes32 metricsHash;
        bytes metrics;
        bytes32 trainingLogHash;
        bytes32[] checkpointHashes;
        /// Learning rate at each kept checkpoint, × 1e9.
        uint64[] checkpointLearningRates;
        bytes32 sketchHash;
        uint64 sketchSeed;
        uint32 sketchK;
        /// Base units of OPEN per 1K input tokens and per 1K output tokens.
        uint128 priceInPer1k;
        uint128 priceOutPer1k;
        /// DRAFT, PROPOSED, LIVE or RETIRED.
        uint8 state;
        uint64 createdAt;
    }
}

pub const DRAFT: u8 = 0;
pub const PROPOSED: u8 = 1;
pub const LIVE: u8 = 2;
pub const RETIRED: u8 = 3;

/// Names of the states, for humans.
pub fn state_name(s: u8) -> &'static str {
    ["draft", "proposed", "live", "retired"].get(s as usize).copied().unwrap_or("unknown")
}

/// A model's prices: base units of OPEN per 1K input and per 1K output tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelPrice {
    pub in_per_1k: u128,
    pub out_per_1k: u128,
}

impl ModelRecord {
    pub fn price(&self) -> ModelPrice {
        ModelPrice { in_per_1k: self.priceInPer1k, out_per_1k: self.priceOutPer1k }
    }

    /// The record as the `model(id)` view answers it.
    pub fn to_info(&self, id: ModelId) -> ModelInfo {
        ModelInfo {
            id: id.0,
            owner: self.owner,
            name: self.name.clone(),
            state: self.state,
            baseModelHash: self.baseModelHash,
            adapterHash: self.adapterHash,
            datanets: self
                .datanetIds
                .iter()
                .zip(&self.datanetVersions)
                .map(|(d, v)| DatanetVersionRef { datanetId: *d, version: *v })
                .collect(),
            licences: self.licences.clone(),
            hyperparamsHash: self.hyperparamsHash,
            hyperparams: self.hyperparams.clone(),
            metricsHash: self.metricsHash,
            metrics: self.metrics.clone(),
            trainingLogHash: self.trainingLogHash,
            checkpointHashes: self.checkpointHashes.clone(),
            checkpointLearningRates: self.checkpointLearningRates.clone(),
            sketchHash: self.sketchHash,
            sketchSeed: self.sketchSeed,
            sketchK: self.sketchK,
            priceInPer1k: self.priceInPer1k,
            priceOutPer1k: self.priceOutPer1k,
            createdAt: self.createdAt,
        }
    }
}
