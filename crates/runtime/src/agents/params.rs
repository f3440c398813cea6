//! Governed parameters of agents: the default budget period, the bond's
//! unbonding delay, the memory update bound, and the task rules (protocol
//! share, dispute window, slash, resolution timeout). Registered in
//! [`crate::params::ALL`].

use crate::params::{DAY_OF_BLOCKS, ParamSpec};

/// Length of a new agent's budget period (the owner changes it with `setLimits`).
pub const AGENTS_DEFAULT_PERIOD_BLOCKS: ParamSpec = ParamSpec {
    name: "agents.default_period_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "length of a newly registered agent's budget period (blocks)",
};

/// Delay between `unbond` and `withdrawBond`: a bond asked back stays slashable by a lost dispute until then.
pub const AGENTS_UNBOND_DELAY_BLOCKS: ParamSpec = ParamSpec {
    name: "agents.unbond_delay_blocks",
    default: 7 * DAY_OF_BLOCKS,
    min: 0,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks between asking an agent's bond back and withdrawing it",
};

/// Largest memory update blob `updateMemory` records (bytes).
pub const AGENTS_MAX_MEMORY_UPDATE: ParamSpec = ParamSpec {
    name: "agents.max_memory_update",
    default: 64 * 1024,
    min: 0,
    max: u32::MAX as u128,
    doc: "largest memory update blob an agent records (bytes)",
};

/// Share of a paid task's payment that goes to the treasury.
pub const AGENTS_PROTOCOL_SHARE_BPS: ParamSpec = ParamSpec {
    name: "agents.protocol_share_bps",
    default: 500,
    min: 0,
    max: 10_000,
    doc: "basis points of a paid task's payment that go to the treasury",
};

/// Blocks after a delivery during which the client may dispute it.
pub const AGENTS_DISPUTE_WINDOW_BLOCKS: ParamSpec = ParamSpec {
    name: "agents.dispute_window_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after a task's delivery during which its client may dispute it",
};

/// Share of the agent's bond (then its unbonding part) a lost dispute pays to the client.
pub const AGENTS_DISPUTE_SLASH_BPS: ParamSpec = ParamSpec {
    name: "agents.dispute_slash_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "basis points of an agent's bond a lost dispute pays to the task's client",
};

/// Blocks after a dispute after which anyone may refund it unresolved (no slash).
pub const AGENTS_RESOLVE_TIMEOUT_BLOCKS: ParamSpec = ParamSpec {
    name: "agents.resolve_timeout_blocks",
    default: 7 * DAY_OF_BLOCKS,
    min: 1,
    max: 365 * DAY_OF_BLOCKS,
    doc: "blocks after a dispute after which an unresolved task is refunded without slashing",
};
