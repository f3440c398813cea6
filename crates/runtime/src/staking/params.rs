//! Governed parameters of staking: the self bond, the cooldown, issuance, the
//! reporter's share, the validator seats, double-sign evidence and downtime.
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
/// Share of its stake a validator proven to double-sign loses (it is also tombstoned).
pub const STAKING_DOUBLE_SIGN_SLASH_PPM: ParamSpec = ParamSpec {
    name: "staking.double_sign_slash_ppm",
    default: 50_000,
    min: 1,
    max: 1_000_000,
    doc: "parts per million of a validator's stake slashed for double-sign evidence (it is also jailed for good)",
};
/// How many blocks back double-sign evidence is accepted; keep it below
/// `staking.unbonding_blocks`, or stake unbonded after the fault escapes.
pub const STAKING_EVIDENCE_MAX_AGE: ParamSpec = ParamSpec {
    name: "staking.evidence_max_age",
    default: 7 * DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks after its height within which double-sign evidence is accepted (keep below staking.unbonding_blocks)",
};
/// Heights of the sliding window over which a validator's missed precommits are counted.
pub const STAKING_DOWNTIME_WINDOW: ParamSpec = ParamSpec {
    name: "staking.downtime_window",
    default: 100,
    min: 10,
    max: 10_000,
    doc: "heights of the sliding window in which a validator's missed commit signatures are counted",
};
/// Share of a full window a validator may miss before it is slashed and jailed.
pub const STAKING_DOWNTIME_MAX_MISSED_PPM: ParamSpec = ParamSpec {
    name: "staking.downtime_max_missed_ppm",
    default: 500_000,
    min: 0,
    max: 1_000_000,
    doc: "parts per million of a full downtime window a validator may miss; more is slashed and jailed (1000000 never)",
};
/// Share of its stake a validator loses for downtime.
pub const STAKING_DOWNTIME_SLASH_PPM: ParamSpec = ParamSpec {
    name: "staking.downtime_slash_ppm",
    default: 100,
    min: 0,
    max: 100_000,
    doc: "parts per million of a validator's stake slashed for downtime",
};
/// Blocks a validator jailed for downtime waits before it may unjail.
pub const STAKING_DOWNTIME_JAIL_BLOCKS: ParamSpec = ParamSpec {
    name: "staking.downtime_jail_blocks",
    default: 600,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks a validator jailed for downtime waits before it may unjail",
};
