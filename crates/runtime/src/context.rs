//! What a system-contract call sees: its caller, value, block and gas.

use alloy_sol_types::{SolError, SolEvent};
use primitives::state::StateError;
use primitives::{Address, Amount, Bytes, Log};

/// The block a transaction executes in. Chosen by the block producer; the only
/// source of time the runtime knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEnv {
    pub chain_id: u64,
    pub number: u64,
    /// Seconds since the Unix epoch, as the producer stamped the block.
    pub timestamp: u64,
    pub base_fee: u64,
    pub gas_limit: u64,
    pub coinbase: Address,
    /// The commit certificate of the block before (`number - 1`), as the
    /// consensus layer verified it: who signed. `None` when the block was
    /// sealed without consensus (the dev sealer), and then staking keeps no
    /// liveness accounting for it.
    pub last_commit: Option<LastCommit>,
}

/// Who signed the commit certificate of a block: the operators whose
/// precommits for it are in the certificate. The chain layer verifies the
/// certificate; the runtime trusts this list (signers outside the validator
/// set of that height are ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCommit {
    /// The height the certificate decided: the block env's `number - 1`.
    pub height: u64,
    /// Operator addresses (not consensus keys) of the signers.
    pub signers: Vec<Address>,
}

/// One call into a system contract.
pub struct CallCtx<'e> {
    pub env: &'e BlockEnv,
    /// The immediate caller (the governance address for executed proposals).
    pub sender: Address,
    /// OPEN sent with the call, already credited to the contract's address.
    pub value: Amount,
    /// Logs emitted so far by this transaction.
    pub logs: Vec<Log>,
    /// Calls the module asks the runtime to make next, with the module's own
    /// address as sender (how governance executes a proposal's calls).
    pub calls: Vec<(Address, Bytes)>,
}

impl CallCtx<'_> {
    /// Emit a Solidity event from `address`.
    pub fn emit<E: SolEvent>(&mut self, address: Address, event: &E) {
        self.logs.push(Log { address, data: event.encode_log_data() });
    }
}

/// Why a call did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFail {
    /// Reverted with ABI-encoded custom-error data: the transaction fails, the block goes on.
    Revert(Bytes),
    /// The store failed: the block cannot be built.
    Fatal(StateError),
}

impl From<StateError> for CallFail {
    fn from(e: StateError) -> Self {
        CallFail::Fatal(e)
    }
}

/// A revert carrying Solidity custom error `e`.
pub fn revert<E: SolError>(e: E) -> CallFail {
    CallFail::Revert(Bytes::from(e.abi_encode()))
}
