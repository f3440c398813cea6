//! Governed parameters of governance: the threshold, deposit, voting windows, quorum, pass and veto shares, timelock and grace.
//! Registered in [`crate::params::ALL`].

use crate::params::{DAY_OF_BLOCKS, OPEN, ParamSpec};

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
