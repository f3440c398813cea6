//! Stored records of models (ABI-encoded `sol!` structs).

use primitives::abi::DatanetVersionRef;
/// A model's stored record is the ABI's `ModelInfo` (one definition), which the
/// `model(id)` view returns as it is: owner, name, base and adapter hashes, the
/// Datanet versions trained on with their licences (copied at registration),
/// hyperparameters, metrics, training log, kept checkpoints, gradient sketch,
/// prices (base units of OPEN per 1K input and output tokens), state and
/// registration height.
pub use primitives::abi::ModelInfo as ModelRecord;

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

/// What the record says beyond its fields.
pub trait ModelRecordExt {
    fn price(&self) -> ModelPrice;
    /// The Datanet versions trained on, as (Datanet id, version).
    fn versions(&self) -> Vec<(u64, u64)>;
    /// Whether it was trained on Datanet `id` (any version).
    fn trained_on(&self, id: u64) -> bool;
}

impl ModelRecordExt for ModelRecord {
    fn price(&self) -> ModelPrice {
        ModelPrice { in_per_1k: self.priceInPer1k, out_per_1k: self.priceOutPer1k }
    }
    fn versions(&self) -> Vec<(u64, u64)> {
        self.datanets.iter().map(|DatanetVersionRef { datanetId, version }| (*datanetId, *version)).collect()
    }
    fn trained_on(&self, id: u64) -> bool {
        self.datanets.iter().any(|d| d.datanetId == id)
    }
}
