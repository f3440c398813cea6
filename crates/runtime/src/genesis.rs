//! The initial state: balances, parameter overrides, genesis operators, the
//! base model, and calls to system contracts made at genesis.

use primitives::{Address, Amount, Bytes};

use crate::context::CallFail;
use crate::dispatch::SystemModule;
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
    /// Calls to system contracts executed at genesis, in order, each as if its
    /// `from` had sent it (no gas, no nonce): set-up a chain starts with, such
    /// as the dev node's escrow, allowance and API key for account 0, so no
    /// transaction of a user's account is needed before the ports open. Each
    /// must succeed.
    pub calls: Vec<GenesisCall>,
}

/// One call executed at genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisCall {
    pub from: Address,
    /// A system contract, or the zero address to deploy `data` as a
    /// contract's init code (at `from.create(nonce)`, `from`'s nonce counting
    /// its earlier deployments: the addresses are fixed by the list).
    pub to: Address,
    pub value: Amount,
    pub data: Bytes,
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

/// One module's part of the genesis ([`SystemModule::genesis`]).
type ModuleGenesis = fn(&mut Overlay, &Genesis) -> Result<(), GenesisError>;

/// The modules' genesis, in order: parameters first (the others read them),
/// then balances (operators bond out of them), operators, the base model.
const MODULE_GENESIS: [ModuleGenesis; 4] = [
    <params::Params as SystemModule>::genesis,
    <bank::Bank as SystemModule>::genesis,
    <crate::staking::Staking as SystemModule>::genesis,
    <crate::models::Models as SystemModule>::genesis,
];

/// A module's genesis refused by a revert: `what` says which precondition failed.
pub(crate) fn refused(what: &str, e: CallFail) -> GenesisError {
    match e {
        CallFail::Revert(d) => GenesisError::State(format!("{what}: 0x{}", alloy_primitives::hex::encode(d))),
        CallFail::Fatal(e) => GenesisError::State(e.0),
    }
}

impl Genesis {
    /// Write the genesis state.
    pub fn apply(&self, st: &mut Overlay) -> Result<(), GenesisError> {
        for init in MODULE_GENESIS {
            init(st, self)?;
        }
        crate::executor::write_block_info(st, 0, self.timestamp);
        let env = crate::BlockEnv {
            chain_id: self.chain_id,
            number: 0,
            timestamp: self.timestamp,
            base_fee: 0,
            gas_limit: u64::MAX,
            coinbase: primitives::system::VALIDATOR_REWARD_POOL,
            last_commit: None,
        };
        for (i, c) in self.calls.iter().enumerate() {
            let deploy = c.to == Address::ZERO;
            if !deploy && primitives::system::Module::from_address(&c.to).is_none() {
                return Err(GenesisError::State(format!("genesis call {i}: {} is not a system contract", c.to)));
            }
            let out = if deploy {
                crate::executor::genesis_deploy(st, &env, c)
            } else {
                crate::executor::genesis_call(st, &env, c)
            };
            let out = out.map_err(|e| GenesisError::State(e.0))?;
            if !out.success {
                return Err(GenesisError::State(format!(
                    "genesis call {i} ({} to {}) reverted: 0x{}",
                    c.from,
                    c.to,
                    alloy_primitives::hex::encode(&out.output)
                )));
            }
        }
        Ok(())
    }
}
