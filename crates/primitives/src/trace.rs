//! A transaction's calls as go-ethereum's `callTracer` reports them
//! (`debug_traceTransaction`): the runtime fills it, the RPC writes it out.

use alloy_primitives::{Address, Bytes, U256};

/// One call frame and the calls it made, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFrame {
    /// CALL, STATICCALL, DELEGATECALL, CALLCODE, CREATE or CREATE2.
    pub kind: &'static str,
    pub from: Address,
    /// The callee; for DELEGATECALL and CALLCODE the code's address; for a
    /// creation the new contract (none when it failed).
    pub to: Option<Address>,
    /// Value moved (none for STATICCALL and DELEGATECALL).
    pub value: Option<U256>,
    /// Gas the frame was given; the top frame shows the transaction's gas limit.
    pub gas: u64,
    /// Gas the frame used; the top frame shows the receipt's.
    pub gas_used: u64,
    pub input: Bytes,
    /// Return data, or revert data when the frame reverted.
    pub output: Bytes,
    /// "execution reverted", or why execution halted; none on success.
    pub error: Option<String>,
    pub calls: Vec<CallFrame>,
}
