//! Stored records of agents (ABI-encoded `sol!` structs) and the holdings the
//! supply report shows.

use alloy_sol_types::sol;
use primitives::Amount;
use primitives::state::StateError;

/// An agent's stored record is the ABI's `AgentInfo`, which the `agent(id)`
/// view returns as it is.
pub use primitives::abi::AgentInfo as AgentRecord;
/// A task's stored record is the ABI's `AgentTask` (its dispute height is kept apart).
pub use primitives::abi::AgentTask as TaskRecord;
pub use primitives::abi::{AgentLimits, AgentReputation};

sol! {
    /// What an agent granted in allowances during one period (in total, or to one serving operator).
    struct PeriodUsage {
        /// First block of the period it counts (a record of an older period counts as zero).
        uint64 periodStart;
        uint128 amount;
    }
}

/// Task statuses (`AgentTask.status`).
pub const TASK_OPEN: u8 = 1;
pub const TASK_ACCEPTED: u8 = 2;
pub const TASK_DELIVERED: u8 = 3;
pub const TASK_DISPUTED: u8 = 4;
pub const TASK_PAID: u8 = 5;
pub const TASK_REFUNDED: u8 = 6;
/// `AgentTask.score` before feedback.
pub const NO_SCORE: u8 = 255;

/// Names of the task statuses, for humans.
pub fn task_status_name(s: u8) -> &'static str {
    ["none", "open", "accepted", "delivered", "disputed", "paid", "refunded"]
        .get(s as usize)
        .copied()
        .unwrap_or("unknown")
}

/// What the agents module holds, by kind; the sum equals its bank balance (OPEN
/// sent to the address by a plain transfer is outside every kind and stuck).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentsHoldings {
    /// Payments of tasks neither paid nor refunded.
    pub task_escrow: Amount,
    /// Agents' bonds, with the parts unbonding.
    pub bonds: Amount,
}

impl AgentsHoldings {
    pub fn total(&self) -> Amount {
        Amount(self.task_escrow.0 + self.bonds.0)
    }

    pub fn encode(&self) -> Vec<u8> {
        [self.task_escrow, self.bonds].iter().flat_map(|a| a.to_be_bytes()).collect()
    }

    pub fn decode(b: &[u8]) -> Result<AgentsHoldings, StateError> {
        if b.len() != 32 {
            return Err(StateError(format!("agents holdings record of {} bytes", b.len())));
        }
        let f = |i: usize| Amount::from_be_bytes(b[16 * i..16 * (i + 1)].try_into().unwrap());
        Ok(AgentsHoldings { task_escrow: f(0), bonds: f(1) })
    }
}
