//! Governed parameters of staking: the self bond, the cooldown, issuance, the reporter's share and the validator seats.
//! Registered in [`crate::params::ALL`].

use crate::params::{DAY_OF_BLOCKS, OPEN, ParamSpec};

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
/// Most validators in the set: the end of a block reads at most this many.
pub const STAKING_MAX_VALIDATORS: ParamSpec = ParamSpec {
    name: "staking.max_validators",
    default: 200,
    min: 1,
    max: 1_000,
    doc: "most validators in the set; an eligible operator beyond it waits until it outweighs the smallest member when it is next touched",
};
/// Share of slashed stake paid to whoever proved the fault.
pub const STAKING_SLASH_REPORTER_BPS: ParamSpec = ParamSpec {
    name: "staking.slash_reporter_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "basis points of slashed stake paid to the reporter; the rest goes to the treasury",
};
