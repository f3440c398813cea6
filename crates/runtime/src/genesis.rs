//! The initial state: balances, parameter overrides, genesis operators and the base model.

use primitives::{Address, Amount};

use crate::context::CallFail;
use crate::params::ParamError;
use crate::{Overlay, bank, params};

pub use crate::models::genesis::BaseModelGenesis;

/// What the chain starts from. The node reads it from a genesis file (JSON at
/// the edge) and hands it here typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub chain_id: u64,
    /// Seconds since the Unix epoch of block 0.
    pub timestamp: u64,
    pub alloc: Vec<(Address, Amount)>,
    /// Overrides of parameter defaults, by name.
    pub params: Vec<(String, u128)>,
    /// Operators bonded at genesis (their bonds come out of their allocations).
    pub operators: Vec<crate::staking::genesis::GenesisOperator>,
    /// The base model, registered as m1 (no adapter, owned by the treasury, live,
    /// priced by the parameters `models.base_price_in_per_1k` and
    /// `models.base_price_out_per_1k`, which `params` may override). `None`: the
    /// chain starts without one and the first registered model is m1.
    pub base_model: Option<BaseModelGenesis>,
}

/// Why a genesis is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis parameter: {0}")]
    Param(#[from] ParamError),
    #[error("genesis allocation overflows the supply")]
    Overflow,
    #[error("genesis: {0}")]
    State(String),
}

impl Genesis {
    /// Write the genesis state.
    pub fn apply(&self, st: &mut Overlay) -> Result<(), GenesisError> {
        params::genesis::init(st, &self.params)?;
        bank::genesis::init(st, &self.alloc).map_err(|e| match e {
            CallFail::Revert(_) => GenesisError::Overflow,
            CallFail::Fatal(e) => GenesisError::State(e.0),
        })?;
        crate::staking::genesis::init(st, self.chain_id, &self.operators).map_err(|e| match e {
            CallFail::Revert(d) => GenesisError::State(format!(
                "a genesis operator cannot be bonded (is its allocation at least its bond and the minimum self bond?): 0x{}",
                alloy_primitives::hex::encode(d)
            )),
            CallFail::Fatal(e) => GenesisError::State(e.0),
        })?;
        crate::models::genesis::init(st, self.base_model.as_ref()).map_err(|e| match e {
            CallFail::Revert(d) => GenesisError::State(format!(
                "the base model cannot be registered (is its name 1 to 128 bytes and its hash non-zero?): 0x{}",
                alloy_primitives::hex::encode(d)
            )),
            CallFail::Fatal(e) => GenesisError::State(e.0),
        })?;
        crate::executor::write_block_info(st, 0, self.timestamp);
        Ok(())
    }
}
