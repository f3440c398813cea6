//! The system contracts inside the EVM: a call from a contract to a module's
//! address runs the module in Rust, precompile-style, with the module's own
//! gas table, its reverts as the call's revert data and its events as logs.
//!
//! The module runs on an overlay over a view of the transaction so far: bank
//! accounts as revm's journal holds them (so a contract's balance is what the
//! EVM says it is), then what earlier module calls of the transaction wrote,
//! then the state before the transaction. What the module writes splits in two:
//! - account balances go into revm's journal (journaled, so they revert with
//!   the frame that made them);
//! - every other key goes to a [`NativeLog`] entry, and the call writes a
//!   marker slot (its entry's index) in the storage of [`MARKER`] through the
//!   journal. revm reverts the marker with the frame, so an entry whose marker
//!   reads zero was reverted: later calls do not see it and the transaction
//!   does not keep it. The marker account itself is never stored.

use std::collections::BTreeMap;

use alloy_sol_types::SolError;
use primitives::abi::{DelegateCallToSystem, NonPayable, WriteInStaticCall};
use primitives::state::{StateError, StateRead};
use primitives::system::Module;
use primitives::{Address, Amount, U256, address};
use revm::context::{BlockEnv as RevmBlock, CfgEnv, Context, Journal, TxEnv};
use revm::context_interface::journaled_state::account::JournaledAccountTr;
use revm::context_interface::{ContextTr, JournalTr};
use revm::handler::{EthPrecompiles, PrecompileProvider, precompile_output_to_interpreter_result};
use revm::interpreter::{CallInputs, InterpreterResult};
use revm::precompile::{PrecompileHalt, PrecompileOutput};
use revm::primitives::AddressSet;
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;

use super::db::StateDb;
use crate::Overlay;
use crate::bank::records::Account;
use crate::context::{CallCtx, CallFail};
use crate::executor::{decode_system_call, run_subcalls};

/// The account whose storage slots mark module calls that still stand (never stored).
pub const MARKER: Address = address!("0x00000000000000000000000000000000000010fb");

/// The context revm runs in.
pub(crate) type EvmCtx<'a> = Context<RevmBlock, TxEnv, CfgEnv, StateDb<'a>, Journal<StateDb<'a>>, ()>;

/// Key writes (`None` deletes), as an overlay keeps them.
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What module calls made from contracts wrote, one entry per call that succeeded.
#[derive(Default)]
pub(crate) struct NativeLog {
    /// (marker slot, writes) in call order.
    entries: Vec<(U256, Writes)>,
    next: u64,
}

impl NativeLog {
    /// Drop the entries whose marker was reverted; what remains, in call order.
    pub fn prune(&mut self, state: &EvmState) {
        let live = |slot: &U256| {
            state.get(&MARKER).and_then(|a| a.storage.get(slot)).is_some_and(|s| !s.present_value.is_zero())
        };
        self.entries.retain(|(slot, _)| live(slot));
    }

    /// The writes of the entries that stand, later ones over earlier ones.
    pub fn merged(&self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let mut all = BTreeMap::new();
        for (_, w) in &self.entries {
            all.extend(w.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }

    fn push(&mut self, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> U256 {
        // Markers only grow: a pruned entry's slot is never reused.
        self.next += 1;
        let slot = U256::from(self.next);
        self.entries.push((slot, writes));
        slot
    }
}

/// The state a module call inside the EVM reads.
struct NativeView<'v> {
    base: &'v dyn StateRead,
    native: &'v BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    journal: &'v EvmState,
}

impl StateRead for NativeView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(a) = account_of_key(key)
            && let Some(acc) = self.journal.get(&a)
        {
            let balance =
                Amount::from_u256(acc.info.balance).map_err(|_| StateError(format!("balance of {a} exceeds 2^128")))?;
            return Ok(Some(Account { nonce: acc.info.nonce, balance }.encode()));
        }
        // Whether an account has code, as the transaction so far made it (a
        // contract created earlier in it, e.g. a Uniswap pair, has code).
        if let Some(a) = key.strip_prefix(b"evm/code/").filter(|a| a.len() == 20).map(Address::from_slice)
            && let Some(acc) = self.journal.get(&a)
        {
            let h = acc.info.code_hash;
            let none = h == revm::primitives::KECCAK_EMPTY || h == primitives::B256::ZERO;
            return Ok((!none).then(|| h.to_vec()));
        }
        match self.native.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

/// The address a bank account key names.
fn account_of_key(key: &[u8]) -> Option<Address> {
    let a = key.strip_prefix(b"bank/a/")?;
    (a.len() == 20).then(|| Address::from_slice(a))
}

/// Ethereum's precompiles, and the system contracts at their addresses.
pub(crate) struct Natives {
    eth: EthPrecompiles,
    addresses: AddressSet,
}

impl Natives {
    pub fn new() -> Self {
        let eth = EthPrecompiles::new(SpecId::CANCUN);
        let mut addresses = eth.warm_addresses().clone();
        addresses.extend(primitives::SYSTEM_MODULES.iter().map(|m| m.address()));
        Natives { eth, addresses }
    }
}

impl<'a> PrecompileProvider<EvmCtx<'a>> for Natives {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        <EthPrecompiles as PrecompileProvider<EvmCtx<'a>>>::set_spec(&mut self.eth, spec)
    }

    fn run(&mut self, ctx: &mut EvmCtx<'a>, inputs: &CallInputs) -> Result<Option<InterpreterResult>, String> {
        if !is_native(&inputs.bytecode_address) {
            return self.eth.run(ctx, inputs);
        }
        match module_call(ctx, inputs) {
            Ok(out) => Ok(Some(precompile_output_to_interpreter_result(out, inputs.gas_limit))),
            Err(e) => {
                let msg = e.0.clone();
                ctx.journal_mut().db_mut().fatal = Some(e);
                Err(msg)
            }
        }
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.addresses
    }

    fn contains(&self, address: &Address) -> bool {
        self.addresses.contains(address) || primitives::system::share_token_index(address).is_some()
    }
}

/// Whether the runtime answers calls to `a` (a system contract or a share token).
fn is_native(a: &Address) -> bool {
    Module::from_address(a).is_some() || primitives::system::share_token_index(a).is_some()
}

/// Gas of a module call from a contract: the module's gas table plus its
/// calldata as a transaction would pay for it (without the 21,000 base).
fn calldata_gas(input: &[u8]) -> u64 {
    primitives::tx::intrinsic_gas(input) - primitives::tx::intrinsic_gas(&[])
}

fn module_call(ctx: &mut EvmCtx<'_>, inputs: &CallInputs) -> Result<PrecompileOutput, StateError> {
    let reservoir = inputs.reservoir;
    let revert = |gas: u64, data: Vec<u8>| PrecompileOutput::revert(gas, data.into(), reservoir);
    let to = inputs.bytecode_address;
    if inputs.target_address != to {
        return Ok(revert(0, DelegateCallToSystem {}.abi_encode()));
    }
    let input = inputs.input.bytes(ctx);
    let call = match decode_system_call(&to, &input) {
        Some(Ok(c)) => c,
        Some(Err(CallFail::Revert(d))) => return Ok(revert(0, d.to_vec())),
        Some(Err(CallFail::Fatal(e))) => return Err(e),
        None => return Err(StateError(format!("{to} is not a system contract"))),
    };
    let value = inputs.transfer_value().unwrap_or_default();
    if !value.is_zero() && !call.payable() {
        return Ok(revert(0, NonPayable {}.abi_encode()));
    }
    let required = call.gas().saturating_add(calldata_gas(&input));
    if required > inputs.gas_limit {
        return Ok(PrecompileOutput::halt(PrecompileHalt::OutOfGas, reservoir));
    }
    let value = Amount::from_u256(value).map_err(|_| StateError("call value exceeds 2^128".into()))?;

    let (db, journal_state) = ctx.journal_mut().db_and_state_mut();
    db.native.prune(journal_state);
    let native = db.native.merged();
    let env = db.env;
    let view = NativeView { base: db.base, native: &native, journal: journal_state };
    let mut st = Overlay::new(&view);
    let mut cctx = CallCtx { env, sender: inputs.caller, value, logs: Vec::new(), calls: Vec::new() };
    let ran = call
        .execute(&mut st, &mut cctx)
        .and_then(|out| run_subcalls(&mut st, &mut cctx, to, inputs.gas_limit - required).map(|g| (out, g)));
    let (out, sub_gas) = match ran {
        Ok(r) => r,
        Err(CallFail::Revert(d)) => return Ok(revert(required, d.to_vec())),
        Err(CallFail::Fatal(e)) => return Err(e),
    };
    let gas = required.saturating_add(sub_gas);
    let mut writes = st.into_writes();
    let logs = std::mem::take(&mut cctx.logs);
    if inputs.is_static && (!writes.is_empty() || !logs.is_empty()) {
        return Ok(revert(gas, WriteInStaticCall {}.abi_encode()));
    }
    // Balances the module moved: into the journal.
    let mut balances = Vec::new();
    for (key, v) in &writes {
        if let Some(a) = account_of_key(key) {
            let acct = match v {
                Some(b) => Account::decode(b)?,
                None => Account::default(),
            };
            let before = view.get(key)?.map(|b| Account::decode(&b)).transpose()?.unwrap_or_default();
            if acct.nonce != before.nonce {
                return Err(StateError(format!("system contract {to} changed the nonce of {a} inside the EVM")));
            }
            balances.push((a, acct.balance));
        }
    }
    writes.retain(|k, _| account_of_key(k).is_none());
    apply(ctx, balances, writes, logs)?;
    Ok(PrecompileOutput::new(gas, out, reservoir))
}

/// Put a module call's effects into the transaction: balances and logs through
/// revm's journal, other writes into the native log under a fresh marker.
fn apply(
    ctx: &mut EvmCtx<'_>,
    balances: Vec<(Address, Amount)>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    logs: Vec<primitives::Log>,
) -> Result<(), StateError> {
    let j = ctx.journal_mut();
    let db_err = |e: super::db::DbError| StateError(e.0);
    for (a, balance) in balances {
        let mut acc = j.load_account_mut(a).map_err(db_err)?;
        acc.set_balance(balance.to_u256());
        acc.touch();
    }
    if !writes.is_empty() {
        let slot = j.db_mut().native.push(writes);
        j.load_account(MARKER).map_err(db_err)?;
        j.sstore(MARKER, slot, U256::from(1)).map_err(db_err)?;
    }
    for log in logs {
        j.log(log);
    }
    Ok(())
}
