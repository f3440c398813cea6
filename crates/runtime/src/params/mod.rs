//! `params`: the registry of governed parameters. Each module declares its own
//! in its `params.rs` (name, default, bounds); the chain's own (fees, gas, block
//! size) are declared here, and [`ALL`] collects them all. Only
//! the governance address may change one
//! (`IParams.set`), which is how proposals tune the system without per-module
//! proposal kinds.

mod calls;
pub mod genesis;
pub mod state_key;
pub mod view;

use primitives::abi::IParams::{self, IParamsCalls};
use primitives::system::Module;
use primitives::{Bytes, U256};

use crate::context::{CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::genesis::{Genesis, GenesisError};
use crate::{Overlay, revert};
pub use view::{ParamsRead, ParamsWrite};

pub const ADDRESS: primitives::Address = Module::Params.address();

/// A governed parameter: its name, default and inclusive bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub default: u128,
    pub min: u128,
    pub max: u128,
    pub doc: &'static str,
}

/// Share of every fee's base-fee part that goes to the treasury, in basis points;
/// the rest of the base-fee part and the whole tip go to the validators' reward pool.
pub const FEE_TREASURY_BPS: ParamSpec = ParamSpec {
    name: "fee.treasury_bps",
    default: 2_000,
    min: 0,
    max: 10_000,
    doc: "basis points of the base-fee part of each fee paid to the treasury",
};
/// Floor of the EIP-1559 base fee, in base units per gas.
pub const MIN_BASE_FEE: ParamSpec = ParamSpec {
    name: "gas.min_base_fee",
    default: 1_000_000_000,
    min: 1,
    max: 1_000_000_000_000_000,
    doc: "floor of the base fee (base units of OPEN per gas)",
};
/// Gas limit of a block.
pub const BLOCK_GAS_LIMIT: ParamSpec = ParamSpec {
    name: "block.gas_limit",
    default: 30_000_000,
    min: 1_000_000,
    max: 2_000_000_000,
    doc: "gas limit of each block",
};

/// One OPEN in base units, for defaults and bounds.
pub(crate) const OPEN: u128 = primitives::ONE_OPEN;
/// A day of one-second blocks, for defaults and bounds.
pub(crate) const DAY_OF_BLOCKS: u128 = 86_400;

pub use crate::agents::params::*;
pub use crate::assets::params::*;
pub use crate::attribution::params::*;
pub use crate::datanets::params::*;
pub use crate::governance::params::*;
pub use crate::inference::params::*;
pub use crate::models::params::*;
pub use crate::staking::params::*;

/// Every registered parameter, sorted by name: the chain's own above, each
/// module's in its `params.rs`.
pub const ALL: &[ParamSpec] = &[
    AGENTS_DEFAULT_PERIOD_BLOCKS,
    AGENTS_DISPUTE_SLASH_BPS,
    AGENTS_DISPUTE_WINDOW_BLOCKS,
    AGENTS_MAX_MEMORY_UPDATE,
    AGENTS_PROTOCOL_SHARE_BPS,
    AGENTS_RESOLVE_TIMEOUT_BLOCKS,
    AGENTS_UNBOND_DELAY_BLOCKS,
    ASSETS_BASE_ROYALTY_BPS,
    ATTRIBUTION_CHALLENGE_BOND,
    ATTRIBUTION_CHALLENGE_JAIL_BLOCKS,
    ATTRIBUTION_CHALLENGE_SLASH_PPM,
    ATTRIBUTION_MIN_SPAN_TOKENS,
    ATTRIBUTION_RETRIEVAL_SHARE_BPS,
    ATTRIBUTION_REVEAL_BLOCKS,
    ATTRIBUTION_SPAN_WEIGHT_PPM,
    ATTRIBUTION_VERDICT_BLOCKS,
    BLOCK_GAS_LIMIT,
    DATANETS_ATTESTATION_TTL,
    DATANETS_CONTRIBUTOR_DAILY_BYTES,
    DATANETS_CONTRIBUTOR_DAILY_FILES,
    DATANETS_DATANET_DAILY_BYTES,
    DATANETS_MAX_SUBMISSION_BYTES,
    DATANETS_REJECT_SLASH_BPS,
    FEE_TREASURY_BPS,
    MIN_BASE_FEE,
    GOV_DEPOSIT,
    GOV_GRACE_PERIOD,
    GOV_PASS_BPS,
    GOV_PROPOSAL_THRESHOLD,
    GOV_QUORUM_BPS,
    GOV_TIMELOCK,
    GOV_VETO_BPS,
    GOV_VOTING_DELAY,
    GOV_VOTING_PERIOD,
    INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS,
    INFERENCE_CHALLENGE_WINDOW_BLOCKS,
    INFERENCE_MAX_CREDITS,
    INFERENCE_RELEASE_DELAY_BLOCKS,
    INFERENCE_RETIRED_GRACE_BLOCKS,
    INFERENCE_SPLIT_DATA_BPS,
    INFERENCE_SPLIT_OWNER_BPS,
    INFERENCE_SPLIT_SERVING_BPS,
    INFERENCE_SPLIT_STAKERS_BPS,
    INFERENCE_SPLIT_TREASURY_BPS,
    MODELS_BASE_PRICE_IN_PER_1K,
    MODELS_BASE_PRICE_OUT_PER_1K,
    STAKING_DOUBLE_SIGN_SLASH_PPM,
    STAKING_DOWNTIME_JAIL_BLOCKS,
    STAKING_DOWNTIME_MAX_MISSED_PPM,
    STAKING_DOWNTIME_SLASH_PPM,
    STAKING_DOWNTIME_WINDOW,
    STAKING_EVIDENCE_MAX_AGE,
    STAKING_ISSUANCE_PER_BLOCK,
    STAKING_MAX_VALIDATORS,
    STAKING_MIN_SELF_BOND,
    STAKING_SLASH_REPORTER_BPS,
    STAKING_UNBONDING_BLOCKS,
];

pub fn spec(name: &str) -> Option<&'static ParamSpec> {
    ALL.iter().find(|s| s.name == name)
}

/// Why a parameter value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter {0:?}")]
    Unknown(String),
    #[error("parameter {name} = {value} is outside [{min}, {max}]")]
    OutOfRange { name: String, value: u128, min: u128, max: u128 },
    #[error("state: {0}")]
    State(String),
}

/// The spec of `name` if `value` is within its bounds.
pub fn check(name: &str, value: u128) -> Result<&'static ParamSpec, ParamError> {
    let s = spec(name).ok_or_else(|| ParamError::Unknown(name.to_string()))?;
    if value < s.min || value > s.max {
        return Err(ParamError::OutOfRange { name: name.into(), value, min: s.min, max: s.max });
    }
    Ok(s)
}

/// The registry as a system module.
pub struct Params;

impl SystemModule for Params {
    type Calls = IParamsCalls;
    calls!(IParamsCalls { get, getAt, names, set });

    fn genesis(st: &mut Overlay, g: &Genesis) -> Result<(), GenesisError> {
        Ok(genesis::init(st, &g.params)?)
    }
}

/// Execute a call to the registry directly (tests and tools).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IParamsCalls) -> Result<Bytes, CallFail> {
    <Params as SystemModule>::execute(st, ctx, call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_kept_and_read_by_height() {
        let e = crate::EmptyState;
        let mut st = Overlay::new(&e);
        let s = &ATTRIBUTION_SPAN_WEIGHT_PPM;
        assert_eq!(st.param_at(s, 5).unwrap(), s.default);
        st.put_param(s.name, 10, 3).unwrap();
        st.put_param(s.name, 20, 7).unwrap();
        st.put_param(s.name, 30, 7).unwrap();
        st.put_param(s.name, 40, 12).unwrap();
        let at = |h| st.param_at(s, h).unwrap();
        assert_eq!(
            [at(0), at(2), at(3), at(6), at(7), at(11), at(12), at(u64::MAX)],
            [s.default, s.default, 10, 10, 30, 30, 40, 40],
            "the last change at or before each height; two in one block: the later"
        );
        assert_eq!(st.param(s).unwrap(), 40);
        // Another parameter's history is its own.
        assert_eq!(st.param_at(&INFERENCE_MAX_CREDITS, 12).unwrap(), INFERENCE_MAX_CREDITS.default);
    }
}
