//! General smart contracts: revm with Cancun's rules beside the native modules.
//!
//! - A message runs here when it creates a contract (`to` empty) or goes to
//!   an account with code that is not a system contract; everything else
//!   stays on the native path (`executor`).
//! - State: contracts' balances and nonces are bank accounts; code and
//!   storage are `evm/` keys ([`state_key`]), all in the authenticated state.
//! - Contracts call the system contracts at their addresses ([`natives`]).
//! - Fees: revm charges the sender, refunds, and pays the priority fee to
//!   the validators' reward pool (the block's beneficiary); the executor
//!   then splits the base fee as for native transactions.
//! - Not here: blob transactions (type 3, refused at decoding), EIP-7702,
//!   BLOCKHASH (answers zero), PREVRANDAO (zero).

mod commit;
mod db;
mod natives;
mod overrides;
pub mod state_key;
mod trace;

use primitives::state::StateError;
use primitives::system::VALIDATOR_REWARD_POOL;
use primitives::{Address, Bytes, Log, U256};
use revm::context::result::{EVMError, ExecutionResult};
use revm::context::{BlockEnv as RevmBlock, TxEnv};
pub use revm::context_interface::JournalTr;
pub use revm::context_interface::transaction::{AccessList, AccessListItem};
use revm::handler::{ExecuteEvm, MainBuilder};
use revm::inspector::{InspectEvm, Inspector, NoOpInspector};
use revm::interpreter::interpreter::EthInterpreter;
use revm::primitives::TxKind;
use revm::primitives::hardfork::SpecId;

pub use db::{code_at, has_contract_code, storage_at};
pub(crate) use natives::EvmCtx;
pub use overrides::{AccountChange, Overridden};
pub use trace::CallTracer;

use crate::Overlay;
use crate::context::BlockEnv;

/// How a message pays.
pub(crate) enum Mode {
    /// A signed transaction: nonce, fee caps and balance are checked and charged.
    Transaction { nonce: u64, tx_type: u8, max_fee: u128, priority_fee: Option<u128>, access_list: AccessList },
    /// `eth_call`, `eth_estimateGas` and genesis calls: no fee, no nonce check.
    Call,
}

/// A message for the EVM.
pub(crate) struct Message<'m> {
    pub caller: Address,
    /// `None` creates a contract.
    pub to: Option<Address>,
    pub value: U256,
    pub data: &'m Bytes,
    pub gas_limit: u64,
    pub mode: Mode,
}

/// What a message did.
#[derive(Clone, Debug)]
pub(crate) struct EvmOutcome {
    pub success: bool,
    /// Return data, or revert data (empty when execution halted).
    pub output: Bytes,
    /// Gas the receipt shows (after refunds).
    pub gas_used: u64,
    pub logs: Vec<Log>,
}

/// Why a message did not run.
#[derive(Debug)]
pub(crate) enum EvmError {
    /// The transaction is invalid (revm's validation): it is not included.
    Invalid(String),
    Fatal(StateError),
}

impl From<StateError> for EvmError {
    fn from(e: StateError) -> Self {
        EvmError::Fatal(e)
    }
}

fn block(env: &BlockEnv) -> RevmBlock {
    RevmBlock {
        number: U256::from(env.number),
        beneficiary: VALIDATOR_REWARD_POOL,
        timestamp: U256::from(env.timestamp),
        gas_limit: env.gas_limit,
        basefee: env.base_fee,
        ..Default::default()
    }
}

fn tx_env(env: &BlockEnv, msg: &Message) -> TxEnv {
    let mut tx = TxEnv {
        caller: msg.caller,
        gas_limit: msg.gas_limit,
        kind: msg.to.map_or(TxKind::Create, TxKind::Call),
        value: msg.value,
        data: msg.data.clone(),
        chain_id: Some(env.chain_id),
        ..Default::default()
    };
    if let Mode::Transaction { nonce, tx_type, max_fee, priority_fee, access_list } = &msg.mode {
        tx.nonce = *nonce;
        tx.tx_type = *tx_type;
        tx.gas_price = *max_fee;
        tx.gas_priority_fee = *priority_fee;
        tx.access_list = access_list.clone();
    }
    tx
}

/// Run a message against `st` and keep its effects there (the caller reverts
/// `st` if it wants nothing kept, as `eth_call` does by dropping the overlay).
pub(crate) fn run(st: &mut Overlay, env: &BlockEnv, msg: &Message) -> Result<EvmOutcome, EvmError> {
    run_inspected(st, env, msg, NoOpInspector, false).map(|(o, _)| o)
}

/// [`run`] with an inspector watching (`inspect`: call its hooks).
pub(crate) fn run_inspected<I>(
    st: &mut Overlay,
    env: &BlockEnv,
    msg: &Message,
    inspector: I,
    inspect: bool,
) -> Result<(EvmOutcome, I), EvmError>
where
    I: for<'a> Inspector<EvmCtx<'a>, EthInterpreter>,
{
    let call = matches!(msg.mode, Mode::Call);
    let (result, state, native, inspector) = {
        let db = db::StateDb::new(&*st, env);
        let ctx = EvmCtx::new(db, SpecId::CANCUN)
            .modify_cfg_chained(|c| {
                c.chain_id = env.chain_id;
                if call {
                    c.disable_nonce_check = true;
                    c.disable_base_fee = true;
                    c.disable_fee_charge = true;
                    c.disable_eip3607 = true;
                }
            })
            .with_block(block(env));
        let mut evm = ctx.build_mainnet_with_inspector(inspector).with_precompiles(natives::Natives::new());
        let tx = tx_env(env, msg);
        let r = if inspect { evm.inspect_tx(tx) } else { evm.transact(tx) };
        let db = evm.ctx.journaled_state.db_mut();
        if let Some(e) = db.fatal.take() {
            return Err(EvmError::Fatal(e));
        }
        let out = r.map_err(|e| match e {
            EVMError::Transaction(t) => EvmError::Invalid(t.to_string()),
            EVMError::Header(h) => EvmError::Invalid(h.to_string()),
            EVMError::Database(d) => EvmError::Fatal(StateError(d.0)),
            other => EvmError::Fatal(StateError(format!("EVM: {other}"))),
        })?;
        let mut native = std::mem::take(&mut db.native);
        native.prune(&out.state);
        (out.result, out.state, native.merged(), evm.inspector)
    };
    commit::commit(st, &state, native)?;
    let gas_used = result.tx_gas_used();
    let outcome = match result {
        ExecutionResult::Success { logs, output, .. } => {
            EvmOutcome { success: true, output: output.into_data(), gas_used, logs }
        }
        ExecutionResult::Revert { output, .. } => EvmOutcome { success: false, output, gas_used, logs: Vec::new() },
        ExecutionResult::Halt { .. } => EvmOutcome { success: false, output: Bytes::new(), gas_used, logs: Vec::new() },
    };
    Ok((outcome, inspector))
}
