//! `params`: the registry of governed parameters. Every parameter is declared
//! here with its default and bounds; only the governance address may change one
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

const OPEN: u128 = primitives::ONE_OPEN;
const DAY_OF_BLOCKS: u128 = 86_400;

/// Smallest self bond of an operator.
pub const STAKING_MIN_SELF_BOND: ParamSpec = ParamSpec {
    name: "staking.min_self_bond",
    default: 1_000 * OPEN,
    min: 1,
    max: u128::MAX / 2,
    doc: "smallest self bond of an operator (base units)",
};
/// Blocks between unbonding and withdrawal; stake stays slashable meanwhile.
pub const STAKING_UNBONDING_BLOCKS: ParamSpec = ParamSpec {
    name: "staking.unbonding_blocks",
    default: 14 * DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks before unbonded stake can be withdrawn",
};
/// OPEN minted each block for the validators' pool.
pub const STAKING_ISSUANCE_PER_BLOCK: ParamSpec = ParamSpec {
    name: "staking.issuance_per_block",
    default: 0,
    min: 0,
    max: 1_000 * OPEN,
    doc: "OPEN minted per block for validators and their delegators (base units)",
};
/// Share of slashed stake paid to whoever proved the fault.
pub const STAKING_SLASH_REPORTER_BPS: ParamSpec = ParamSpec {
    name: "staking.slash_reporter_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "basis points of slashed stake paid to the reporter; the rest goes to the treasury",
};
/// Voting power needed to propose.
pub const GOV_PROPOSAL_THRESHOLD: ParamSpec = ParamSpec {
    name: "governance.proposal_threshold",
    default: 100 * OPEN,
    min: 0,
    max: u128::MAX / 2,
    doc: "voting power needed to propose (base units)",
};
/// Deposit locked by a proposal (doubled for every 8 open proposals); returned
/// when the vote reaches quorum without a veto, burned otherwise.
pub const GOV_DEPOSIT: ParamSpec = ParamSpec {
    name: "governance.deposit",
    default: 100 * OPEN,
    min: 0,
    max: u128::MAX / 2,
    doc: "deposit a proposal locks (base units), doubled per 8 open proposals; burned if vetoed or without quorum",
};
pub const GOV_VOTING_DELAY: ParamSpec = ParamSpec {
    name: "governance.voting_delay",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks between a proposal and the start of its vote (the snapshot is the block before)",
};
pub const GOV_VOTING_PERIOD: ParamSpec = ParamSpec {
    name: "governance.voting_period",
    default: 14 * DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks a vote stays open",
};
pub const GOV_QUORUM_BPS: ParamSpec = ParamSpec {
    name: "governance.quorum_bps",
    default: 2_500,
    min: 1,
    max: 10_000,
    doc: "share of the total voting power at the snapshot that must vote (basis points)",
};
pub const GOV_PASS_BPS: ParamSpec = ParamSpec {
    name: "governance.pass_bps",
    default: 5_000,
    min: 1,
    max: 10_000,
    doc: "a proposal passes when for-votes exceed this share of for + against + veto (basis points)",
};
pub const GOV_VETO_BPS: ParamSpec = ParamSpec {
    name: "governance.veto_bps",
    default: 3_340,
    min: 1,
    max: 10_000,
    doc: "veto votes above this share of all votes reject the proposal and burn its deposit",
};
pub const GOV_TIMELOCK: ParamSpec = ParamSpec {
    name: "governance.timelock",
    default: DAY_OF_BLOCKS,
    min: 0,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks between a proposal passing and its earliest execution",
};
pub const GOV_GRACE_PERIOD: ParamSpec = ParamSpec {
    name: "governance.grace_period",
    default: 14 * DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks after the timelock during which a passed proposal can be executed",
};

const MB: u128 = 1_000_000;

pub const DATANETS_MAX_SUBMISSION_BYTES: ParamSpec = ParamSpec {
    name: "datanets.max_submission_bytes",
    default: 5 * MB,
    min: 1,
    max: 1_000 * MB,
    doc: "largest contribution a Datanet may accept (bytes); a Datanet's own limit may only be lower",
};
pub const DATANETS_CONTRIBUTOR_DAILY_BYTES: ParamSpec = ParamSpec {
    name: "datanets.contributor_daily_bytes",
    default: 10 * MB,
    min: 1,
    max: 100_000 * MB,
    doc: "default bytes one contributor may submit to one Datanet per day",
};
pub const DATANETS_DATANET_DAILY_BYTES: ParamSpec = ParamSpec {
    name: "datanets.datanet_daily_bytes",
    default: 10 * MB,
    min: 1,
    max: 1_000_000 * MB,
    doc: "default bytes one Datanet accepts per day from all contributors",
};
pub const DATANETS_CONTRIBUTOR_DAILY_FILES: ParamSpec = ParamSpec {
    name: "datanets.contributor_daily_files",
    default: 20,
    min: 1,
    max: 100_000,
    doc: "default files one contributor may submit to one Datanet per day",
};
pub const DATANETS_REJECT_SLASH_BPS: ParamSpec = ParamSpec {
    name: "datanets.reject_slash_bps",
    default: 5_000,
    min: 0,
    max: 10_000,
    doc: "share of the bond sent to the treasury when a contribution is rejected as spam or duplicate",
};
pub const DATANETS_ATTESTATION_TTL: ParamSpec = ParamSpec {
    name: "datanets.attestation_ttl",
    default: 86_400,
    min: 60,
    max: 30 * 86_400,
    doc: "seconds an ingest attestation stays valid after it was signed",
};

/// Price of the base model m1 per 1K input tokens, written into its record at
/// genesis; a proposal reprices m1 later with `models.setPrice(1, in, out)`.
pub const MODELS_BASE_PRICE_IN_PER_1K: ParamSpec = ParamSpec {
    name: "models.base_price_in_per_1k",
    default: OPEN / 1_000,
    min: 0,
    max: 1_000 * OPEN,
    doc: "genesis price of the base model m1 per 1K input tokens (base units of OPEN)",
};
/// Price of the base model m1 per 1K output tokens, written into its record at genesis.
pub const MODELS_BASE_PRICE_OUT_PER_1K: ParamSpec = ParamSpec {
    name: "models.base_price_out_per_1k",
    default: 2 * OPEN / 1_000,
    min: 0,
    max: 1_000 * OPEN,
    doc: "genesis price of the base model m1 per 1K output tokens (base units of OPEN)",
};

/// Blocks between `release` and the earliest `completeRelease` of an allowance:
/// long enough for an operator to settle the receipts it served before the request.
pub const INFERENCE_RELEASE_DELAY_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.release_delay_blocks",
    default: 3_600,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks a released allowance stays spendable by its operator before it returns to the free escrow",
};
/// Blocks after settlement within which the settling operator may post a receipt's attribution record.
pub const INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.attribution_timeout_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after settlement to post an attribution record; afterwards the data part goes to the fallback",
};
/// Blocks after a live model's retirement during which its receipts issued before
/// the retirement still settle.
pub const INFERENCE_RETIRED_GRACE_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.retired_grace_blocks",
    default: DAY_OF_BLOCKS,
    min: 0,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after a live model retires during which its receipts issued before the retirement still settle",
};
/// Blocks a posted record's credits stay pending (challengeable) before they can be finalized.
pub const INFERENCE_CHALLENGE_WINDOW_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.challenge_window_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after an attribution record is posted before its credits can be finalized",
};
/// Proof of Attribution: the share of the span (exact-match) method in a
/// record's credits, the rest going to the gradient method; when one method
/// credits nothing the other takes it all.
pub const ATTRIBUTION_SPAN_WEIGHT_PPM: ParamSpec = ParamSpec {
    name: "attribution.span_weight_ppm",
    default: 500_000,
    min: 0,
    max: 1_000_000,
    doc: "share (ppm) of span tracing in an attribution record; the gradient method gets the rest",
};
/// The shortest span (in tokens) span tracing credits.
pub const ATTRIBUTION_MIN_SPAN_TOKENS: ParamSpec = ParamSpec {
    name: "attribution.min_span_tokens",
    default: 8,
    min: 2,
    max: 1_000,
    doc: "shortest span, in tokens, that span tracing credits",
};
/// Challenges of attribution records (the `attribution` module): the bond a
/// challenger posts, the blocks the challenged operator has to reveal the record
/// and prompt, the blocks the validators have to sign a verdict, and what a
/// wrong (or unrevealed) record costs the operator.
pub const ATTRIBUTION_CHALLENGE_BOND: ParamSpec = ParamSpec {
    name: "attribution.challenge_bond",
    default: 10 * primitives::ONE_OPEN,
    min: 1,
    max: 1_000_000 * primitives::ONE_OPEN,
    doc: "least bond (base units) of a challenge of an attribution record; forfeited if the record was right",
};
pub const ATTRIBUTION_REVEAL_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.reveal_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks the challenged operator has to reveal the record and prompt, else it is slashed",
};
pub const ATTRIBUTION_VERDICT_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.verdict_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after the reveal for the validators' verdict; without one the bond goes back",
};
pub const ATTRIBUTION_CHALLENGE_SLASH_PPM: ParamSpec = ParamSpec {
    name: "attribution.challenge_slash_ppm",
    default: 10_000,
    min: 0,
    max: 1_000_000,
    doc: "share (ppm) of the serving operator's stake slashed for a wrong or unrevealed attribution record",
};
pub const ATTRIBUTION_CHALLENGE_JAIL_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.challenge_jail_blocks",
    default: 0,
    min: 0,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks a serving operator is jailed for a wrong or unrevealed attribution record",
};
/// Most contributions one attribution record credits (state stays small).
pub const INFERENCE_MAX_CREDITS: ParamSpec = ParamSpec {
    name: "inference.max_credits",
    default: 32,
    min: 1,
    max: 256,
    doc: "most contributions one attribution record may credit",
};
/// Fee split of every settled receipt, in basis points. If the five shares sum
/// to more than 10,000 (set inconsistently by separate proposals), settlement
/// uses the defaults (30/40/15/10/5 %) until they are fixed. The treasury always
/// gets the cost minus the other four parts, so a sum below 10,000 leaves the
/// remainder to it, as does the rounding dust of every part.
pub const INFERENCE_SPLIT_OWNER_BPS: ParamSpec = ParamSpec {
    name: "inference.split_owner_bps",
    default: 3_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost paid to the model's owner",
};
pub const INFERENCE_SPLIT_DATA_BPS: ParamSpec = ParamSpec {
    name: "inference.split_data_bps",
    default: 4_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost held for the data contributors (by attribution, else the fallback)",
};
pub const INFERENCE_SPLIT_SERVING_BPS: ParamSpec = ParamSpec {
    name: "inference.split_serving_bps",
    default: 1_500,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost paid to the serving operator",
};
pub const INFERENCE_SPLIT_STAKERS_BPS: ParamSpec = ParamSpec {
    name: "inference.split_stakers_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost deposited to staking's serving pool",
};
pub const INFERENCE_SPLIT_TREASURY_BPS: ParamSpec = ParamSpec {
    name: "inference.split_treasury_bps",
    default: 500,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost for the treasury (which also receives any remainder and rounding dust)",
};

/// Every registered parameter, sorted by name.
pub const ALL: &[ParamSpec] = &[
    ATTRIBUTION_CHALLENGE_BOND,
    ATTRIBUTION_CHALLENGE_JAIL_BLOCKS,
    ATTRIBUTION_CHALLENGE_SLASH_PPM,
    ATTRIBUTION_MIN_SPAN_TOKENS,
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
    STAKING_ISSUANCE_PER_BLOCK,
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
