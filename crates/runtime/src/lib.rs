//! The deterministic state machine: every transaction's effect on state.
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - no I/O, no clock, no floats, no JSON: a block's transactions, its environment
//!   ([`BlockEnv`]) and the previous state are the only inputs, so every node computes
//!   the same writes and the same receipts;
//! - every module has the same shape: `mod.rs` (the module's `SystemModule`
//!   impl: its call enum, block hooks and genesis, and shared helpers),
//!   `calls.rs` (one `Handler` per ABI function, its gas beside it),
//!   `state_key.rs` (every key), `records.rs` (stored records), `view.rs`
//!   (typed read/write traits), `params.rs` (its governed parameters) and
//!   `genesis.rs` where it has genesis state; it owns one system-contract
//!   address and speaks the Solidity ABI declared in `primitives::abi`
//!   (`dispatch.rs` holds the two traits, below the modules and the executor);
//! - modules touch each other's state only through those typed traits;
//! - failures follow Ethereum: what fails in execution reverts the call's writes and
//!   logs, still charges gas and bumps the nonce, and carries a Solidity custom error.

pub mod agents;
pub mod assets;
pub mod attribution;
pub mod bank;
mod codec;
mod context;
pub mod datanets;
mod dispatch;
pub use dispatch::{Handler, SystemModule};
pub mod evm;
mod executor;
mod fenwick;
pub mod genesis;
pub mod governance;
pub mod inference;
pub mod models;
mod overlay;
pub mod params;
pub mod staking;

pub use context::{BlockEnv, CallCtx, CallFail, LastCommit, revert};
pub use executor::{
    ApplyError, CallError, CallOutcome, SupplyReport, apply_transaction, begin_block, call, call_message, end_block,
    estimate_gas, state_height, supply_report, system_code, trace_transaction,
};
pub use genesis::Genesis;
pub use overlay::{Checkpoint, EmptyState, Overlay};
pub use primitives::state::{StateError, StateRead};
