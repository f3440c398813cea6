//! Applying transactions and calls: dispatch by address, gas, fees, receipts.

use primitives::abi::OutOfGas;
use primitives::block::Receipt;
use primitives::state::{StateError, StateRead};
use primitives::system::{Module, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::tx::intrinsic_gas;
use primitives::{Address, Amount, Bytes, Log, SignedTransaction, U256};

use crate::bank::{BankRead, BankWrite};
use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::dispatch::SystemModule;
use crate::params::ParamsRead;
use crate::{
    Overlay, agents, assets, attribution, bank, datanets, evm, governance, inference, models, params, revert, staking,
};

/// `sys/block` → number u64 BE ‖ timestamp u64 BE of the block being executed.
fn block_info_key() -> Vec<u8> {
    b"sys/block".to_vec()
}

/// The number of the newest block whose state `st` is (0 before any block).
pub fn state_height(st: &(impl StateRead + ?Sized)) -> Result<u64, StateError> {
    Ok(st
        .get(&block_info_key())?
        .and_then(|b| b.get(..8).map(|h| u64::from_be_bytes(h.try_into().unwrap())))
        .unwrap_or(0))
}

pub(crate) fn write_block_info(st: &mut Overlay, number: u64, timestamp: u64) {
    let mut v = number.to_be_bytes().to_vec();
    v.extend_from_slice(&timestamp.to_be_bytes());
    st.put(block_info_key(), Some(v));
}

/// Hook run before a block's transactions: records the block's number and
/// time, then runs the modules' hooks.
pub fn begin_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), StateError> {
    write_block_info(st, env.number, env.timestamp);
    for hooks in HOOKS {
        (hooks.begin)(st, env).map_err(|e| hook_failed("beginning-of-block", e))?;
    }
    Ok(())
}

/// A hook's failure: a block cannot be built past it.
fn hook_failed(which: &str, e: CallFail) -> StateError {
    match e {
        CallFail::Fatal(e) => e,
        CallFail::Revert(d) => StateError(format!("{which} hook reverted: 0x{}", alloy_primitives::hex::encode(d))),
    }
}

/// Hook run after a block's transactions: staking pays the block's fees and
/// issuance to its pool and snapshots the validator set; governance tallies
/// votes that ended.
pub fn end_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), StateError> {
    for hooks in HOOKS {
        (hooks.end)(st, env).map_err(|e| hook_failed("end-of-block", e))?;
    }
    st.commit_checkpoints();
    Ok(())
}

type Hook = fn(&mut Overlay, &BlockEnv) -> Result<(), CallFail>;

/// A module's block hooks.
struct Hooks {
    begin: Hook,
    end: Hook,
}

const fn hooks<M: SystemModule>() -> Hooks {
    Hooks { begin: M::begin_block, end: M::end_block }
}

/// The modules with block hooks, in the order their hooks run.
const HOOKS: [Hooks; 2] = [hooks::<staking::Staking>(), hooks::<governance::Governance>()];

/// A decoded call to a system contract, whatever its module.
pub(crate) trait SystemCall {
    fn gas(&self) -> u64;
    fn payable(&self) -> bool;
    fn execute(self: Box<Self>, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Bytes, CallFail>;
}

struct Decoded<M: SystemModule>(M::Calls);

impl<M: SystemModule> SystemCall for Decoded<M> {
    fn gas(&self) -> u64 {
        M::gas(&self.0)
    }
    fn payable(&self) -> bool {
        M::payable(&self.0)
    }
    fn execute(self: Box<Self>, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Bytes, CallFail> {
        M::execute(st, ctx, self.0)
    }
}

fn decode_as<M: SystemModule + 'static>(input: &[u8]) -> Result<Box<dyn SystemCall>, CallFail> {
    Ok(Box::new(Decoded::<M>(M::decode(input)?)))
}

/// `None` if `to` is not a module; otherwise the decoded call or its revert.
/// Every module is listed here, by its address.
pub(crate) fn decode_system_call(to: &Address, input: &[u8]) -> Option<Result<Box<dyn SystemCall>, CallFail>> {
    if let Some(share) = assets::decode_share_call(to, input) {
        return Some(share);
    }
    Some(match Module::from_address(to)? {
        Module::Bank => decode_as::<bank::Bank>(input),
        Module::Params => decode_as::<params::Params>(input),
        Module::Staking => decode_as::<staking::Staking>(input),
        Module::Governance => decode_as::<governance::Governance>(input),
        Module::Datanets => decode_as::<datanets::Datanets>(input),
        Module::Models => decode_as::<models::Models>(input),
        Module::Inference => decode_as::<inference::Inference>(input),
        Module::Attribution => decode_as::<attribution::Attribution>(input),
        Module::Agents => decode_as::<agents::Agents>(input),
        Module::Assets => decode_as::<assets::Assets>(input),
    })
}

/// Code reported by `eth_getCode` at a system-contract address: non-empty, so
/// wallets treat calls there as contract calls. It is the INVALID opcode (0xfe)
/// followed by the module's name; no EVM runs it.
pub fn system_code(a: &Address) -> Option<Bytes> {
    let mut code = vec![0xfe];
    code.extend_from_slice(b"OpenLedger system contract: ");
    match Module::from_address(a) {
        Some(m) => code.extend_from_slice(m.name().as_bytes()),
        None => {
            primitives::system::share_token_index(a)?;
            code.extend_from_slice(b"share token");
        }
    }
    Some(code.into())
}

/// The result of one message (a transaction's call, or an `eth_call`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    pub success: bool,
    /// Return data on success, ABI-encoded custom error on failure.
    pub output: Bytes,
    pub gas_used: u64,
    pub logs: Vec<Log>,
}

/// Run one message: move `value` and call the system contract at `to`, if any.
/// Writes and logs of a failed message are undone; the caller charges gas.
#[allow(clippy::too_many_arguments)]
fn execute_message(
    st: &mut Overlay,
    env: &BlockEnv,
    sender: Address,
    to: Address,
    value: Amount,
    input: &[u8],
    gas_limit: u64,
    access_list_gas: u64,
) -> Result<CallOutcome, StateError> {
    let intrinsic = intrinsic_gas(input).saturating_add(access_list_gas);
    let cp = st.checkpoint();
    let decoded = decode_system_call(&to, input);
    let (result, gas_used) = match decoded {
        None => {
            // A plain transfer (calldata to an account is carried but not interpreted).
            (st.transfer(&sender, &to, value).map(|_| Bytes::new()), intrinsic)
        }
        Some(Err(fail)) => (Err(fail), intrinsic),
        Some(Ok(call)) if value != Amount::ZERO && !call.payable() => {
            (Err(revert(primitives::abi::NonPayable {})), intrinsic)
        }
        Some(Ok(call)) => {
            let required = intrinsic.saturating_add(call.gas());
            if required > gas_limit {
                (Err(revert(OutOfGas { required, available: gas_limit })), gas_limit)
            } else {
                let mut ctx = CallCtx { env, sender, value, logs: Vec::new(), calls: Vec::new() };
                let r = st.transfer(&sender, &to, value).and_then(|_| call.execute(st, &mut ctx));
                let r = r
                    .and_then(|out| run_subcalls(st, &mut ctx, to, gas_limit - required).map(|sub_gas| (out, sub_gas)));
                match r {
                    Ok((out, sub_gas)) => {
                        return Ok(CallOutcome {
                            success: true,
                            output: out,
                            gas_used: required + sub_gas,
                            logs: ctx.logs,
                        });
                    }
                    Err(e) => (Err(e), required),
                }
            }
        }
    };
    match result {
        Ok(output) => Ok(CallOutcome { success: true, output, gas_used, logs: Vec::new() }),
        Err(CallFail::Revert(data)) => {
            st.revert_to(cp);
            Ok(CallOutcome { success: false, output: data, gas_used, logs: Vec::new() })
        }
        Err(CallFail::Fatal(e)) => Err(e),
    }
}

/// Run the calls a module queued (a governance proposal's), each with the
/// module as sender, all-or-nothing; returns the gas they used.
pub(crate) fn run_subcalls(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    caller: Address,
    gas_left: u64,
) -> Result<u64, CallFail> {
    let calls = std::mem::take(&mut ctx.calls);
    let mut used = 0u64;
    for (i, (target, data)) in calls.into_iter().enumerate() {
        let fail =
            |reason: Bytes| revert(primitives::abi::IGovernance::ProposalCallFailed { index: U256::from(i), reason });
        let call = match decode_system_call(&target, &data) {
            None => return Err(fail(Bytes::new())),
            Some(Err(CallFail::Revert(d))) => return Err(fail(d)),
            Some(Err(e)) => return Err(e),
            Some(Ok(c)) => c,
        };
        used = used.saturating_add(call.gas());
        if used > gas_left {
            return Err(revert(OutOfGas { required: used, available: gas_left }));
        }
        let mut sub =
            CallCtx { env: ctx.env, sender: caller, value: Amount::ZERO, logs: Vec::new(), calls: Vec::new() };
        match call.execute(st, &mut sub) {
            Ok(_) => {}
            Err(CallFail::Revert(d)) => return Err(fail(d)),
            Err(e) => return Err(e),
        }
        if !sub.calls.is_empty() {
            // Nested execution (a proposal executing a proposal) is not allowed.
            return Err(fail(Bytes::new()));
        }
        ctx.logs.append(&mut sub.logs);
    }
    Ok(used)
}

/// Why a transaction cannot be included in this block (it is not executed at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("nonce mismatch: account expects {expected}, transaction has {got}")]
    NonceMismatch { expected: u64, got: u64 },
    #[error("max fee per gas less than block base fee")]
    FeeCapTooLow,
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds,
    #[error("transaction gas limit exceeds the gas left in the block")]
    BlockFull,
    #[error("intrinsic gas too low")]
    IntrinsicGas,
    /// The EVM's own validation refused it (e.g. the sender has code, EIP-3607).
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Fatal(#[from] StateError),
}

impl ApplyError {
    /// Whether the transaction could still fit a later block unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApplyError::BlockFull | ApplyError::FeeCapTooLow | ApplyError::NonceMismatch { .. })
    }
}

fn fatal_of(e: CallFail) -> StateError {
    match e {
        CallFail::Fatal(e) => e,
        // Crediting fees to accounts cannot revert unless the supply overflows u128.
        CallFail::Revert(_) => StateError("fee accounting overflow".into()),
    }
}

/// Apply a signed transaction: check it can pay, charge gas, run it, refund,
/// split the fee. `block_gas_used` is the gas used by earlier transactions of the block.
pub fn apply_transaction(
    st: &mut Overlay,
    env: &BlockEnv,
    tx: &SignedTransaction,
    block_gas_used: u64,
) -> Result<Receipt, ApplyError> {
    let gas_limit = tx.gas_limit();
    if block_gas_used.saturating_add(gas_limit) > env.gas_limit {
        return Err(ApplyError::BlockFull);
    }
    if tx.intrinsic_gas() > gas_limit {
        return Err(ApplyError::IntrinsicGas);
    }
    if tx.max_fee_per_gas() < env.base_fee as u128 {
        return Err(ApplyError::FeeCapTooLow);
    }
    let mut acct = st.account(&tx.sender)?;
    if acct.nonce != tx.nonce() {
        return Err(ApplyError::NonceMismatch { expected: acct.nonce, got: tx.nonce() });
    }
    let max_cost = U256::from(gas_limit) * U256::from(tx.max_fee_per_gas()) + tx.value();
    if max_cost > acct.balance.to_u256() {
        return Err(ApplyError::InsufficientFunds);
    }
    let value = Amount::from_u256(tx.value()).map_err(|_| ApplyError::InsufficientFunds)?;
    let to = match tx.to() {
        Some(to) if !evm::has_contract_code(st, &to)? => to,
        _ => return apply_evm_transaction(st, env, tx, block_gas_used),
    };
    let price = tx.effective_gas_price(env.base_fee);
    // Fits: gas_limit * price <= gas_limit * max_fee <= balance < 2^128.
    let upfront = Amount(gas_limit as u128 * price);
    acct.balance = acct.balance.checked_sub(upfront).map_err(|_| ApplyError::InsufficientFunds)?;
    acct.nonce += 1;
    st.put_account(&tx.sender, acct);

    let out = execute_message(st, env, tx.sender, to, value, tx.input(), gas_limit, tx.access_list_gas())?;

    let refund = Amount((gas_limit - out.gas_used) as u128 * price);
    let fee = Amount(out.gas_used as u128 * price);
    credit(st, &tx.sender, refund)?;
    // The priority part goes to the pool; the base part is split below.
    credit(st, &VALIDATOR_REWARD_POOL, Amount(fee.0 - out.gas_used as u128 * env.base_fee as u128))?;
    split_base_fee(st, env, out.gas_used)?;
    st.commit_checkpoints();
    Ok(receipt(tx, block_gas_used, price, out))
}

/// Pay the base part of a transaction's fee (`gas_used × base fee`): the
/// governed share to the treasury, the rest to the validators' reward pool.
fn split_base_fee(st: &mut Overlay, env: &BlockEnv, gas_used: u64) -> Result<(), StateError> {
    let base_part = Amount(gas_used as u128 * env.base_fee as u128);
    let bps = st.param(&params::FEE_TREASURY_BPS)?;
    let to_treasury = base_part.mul_div(bps, 10_000).map_err(|_| StateError("fee split".into()))?;
    credit(st, &TREASURY, to_treasury)?;
    credit(st, &VALIDATOR_REWARD_POOL, Amount(base_part.0 - to_treasury.0))
}

fn receipt(tx: &SignedTransaction, block_gas_used: u64, price: u128, out: CallOutcome) -> Receipt {
    Receipt {
        tx_type: tx.tx_type(),
        success: out.success,
        cumulative_gas_used: block_gas_used + out.gas_used,
        gas_used: out.gas_used,
        effective_gas_price: price,
        logs: out.logs,
        revert_data: if out.success { Bytes::new() } else { out.output },
    }
}

/// A transaction that creates a contract or calls one: revm checks and charges
/// it, refunds, and pays the priority fee to the reward pool (the block's
/// beneficiary); the base part is split here as for native transactions.
fn apply_evm_transaction(
    st: &mut Overlay,
    env: &BlockEnv,
    tx: &SignedTransaction,
    block_gas_used: u64,
) -> Result<Receipt, ApplyError> {
    apply_evm_inspected(st, env, tx, block_gas_used, revm::inspector::NoOpInspector, false).map(|(r, _)| r)
}

/// [`apply_evm_transaction`] with an inspector watching (`inspect`: call its hooks).
fn apply_evm_inspected<I>(
    st: &mut Overlay,
    env: &BlockEnv,
    tx: &SignedTransaction,
    block_gas_used: u64,
    inspector: I,
    inspect: bool,
) -> Result<(Receipt, I), ApplyError>
where
    I: for<'a> revm::inspector::Inspector<evm::EvmCtx<'a>, revm::interpreter::interpreter::EthInterpreter>,
{
    let msg = evm::Message {
        caller: tx.sender,
        to: tx.to(),
        value: tx.value(),
        data: tx.input(),
        gas_limit: tx.gas_limit(),
        mode: evm::Mode::Transaction {
            nonce: tx.nonce(),
            tx_type: tx.tx_type(),
            max_fee: tx.max_fee_per_gas(),
            priority_fee: tx.priority_fee_cap(),
            access_list: evm::AccessList(
                tx.access_list()
                    .map(|l| {
                        l.0.iter()
                            .map(|i| evm::AccessListItem { address: i.address, storage_keys: i.storage_keys.clone() })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        },
    };
    let (out, inspector) = evm::run_inspected(st, env, &msg, inspector, inspect).map_err(|e| match e {
        evm::EvmError::Invalid(m) => ApplyError::Rejected(m),
        evm::EvmError::Fatal(e) => ApplyError::Fatal(e),
    })?;
    split_base_fee(st, env, out.gas_used)?;
    st.commit_checkpoints();
    let price = tx.effective_gas_price(env.base_fee);
    let out = CallOutcome { success: out.success, output: out.output, gas_used: out.gas_used, logs: out.logs };
    Ok((receipt(tx, block_gas_used, price, out), inspector))
}

/// Apply a transaction as [`apply_transaction`] does and report its calls as
/// go-ethereum's `callTracer` would. A transaction to a system contract is
/// one frame (modules' inner calls are not traced); a contract's calls,
/// including its calls into system contracts, are frames under it.
pub fn trace_transaction(
    st: &mut Overlay,
    env: &BlockEnv,
    tx: &SignedTransaction,
    block_gas_used: u64,
) -> Result<primitives::trace::CallFrame, ApplyError> {
    let evm_tx = match tx.to() {
        Some(to) => evm::has_contract_code(st, &to)?,
        None => true,
    };
    let (receipt, calls) = if evm_tx {
        let (r, tracer) = apply_evm_inspected(st, env, tx, block_gas_used, evm::CallTracer::default(), true)?;
        (r, tracer.finish())
    } else {
        (apply_transaction(st, env, tx, block_gas_used)?, None)
    };
    let mut top = calls.unwrap_or_else(|| primitives::trace::CallFrame {
        kind: "CALL",
        from: tx.sender,
        to: tx.to(),
        value: Some(tx.value()),
        input: tx.input().clone(),
        output: receipt.revert_data.clone(),
        error: (!receipt.success).then(|| "execution reverted".to_string()),
        ..Default::default()
    });
    // The top frame shows the transaction's gas, intrinsic gas included.
    top.gas = tx.gas_limit();
    top.gas_used = receipt.gas_used;
    Ok(top)
}

fn credit(st: &mut Overlay, to: &Address, amount: Amount) -> Result<(), StateError> {
    if amount == Amount::ZERO {
        return Ok(());
    }
    let mut a = st.account(to)?;
    a.balance = a.balance.checked_add(amount).map_err(|_| fatal_of(revert(primitives::abi::Overflow {})))?;
    st.put_account(to, a);
    Ok(())
}

/// Why an `eth_call` could not run at all (a revert is an outcome, not this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Fatal(#[from] StateError),
}

/// Execute a call without keeping anything (`eth_call`): no gas is charged and
/// the nonce is untouched, as in Ethereum. Reverts come back as
/// `Ok(CallOutcome { success: false, .. })`; value the sender lacks is an error.
pub fn call(
    base: &dyn StateRead,
    env: &BlockEnv,
    from: Address,
    to: Address,
    value: Amount,
    input: &[u8],
    gas: Option<u64>,
) -> Result<CallOutcome, CallError> {
    call_message(base, env, from, Some(to), value, input, gas)
}

/// [`call`] to any target: `None` runs `input` as contract-creation code (and
/// returns the code it would deploy); a contract runs in the EVM.
pub fn call_message(
    base: &dyn StateRead,
    env: &BlockEnv,
    from: Address,
    to: Option<Address>,
    value: Amount,
    input: &[u8],
    gas: Option<u64>,
) -> Result<CallOutcome, CallError> {
    let mut st = Overlay::new(base);
    if st.balance(&from)? < value {
        return Err(CallError::Invalid("insufficient funds for gas * price + value".into()));
    }
    let gas_limit = gas.unwrap_or(env.gas_limit);
    match to {
        Some(to) if !evm::has_contract_code(&st, &to)? => {
            Ok(execute_message(&mut st, env, from, to, value, input, gas_limit, 0)?)
        }
        _ => {
            // revm holds a message to the block's gas limit, as a transaction is.
            let gas_limit = gas_limit.min(env.gas_limit);
            let data = Bytes::copy_from_slice(input);
            let msg = evm::Message {
                caller: from,
                to,
                value: value.to_u256(),
                data: &data,
                gas_limit,
                mode: evm::Mode::Call,
            };
            let out = evm::run(&mut st, env, &msg).map_err(|e| match e {
                evm::EvmError::Invalid(m) => CallError::Invalid(m),
                evm::EvmError::Fatal(e) => CallError::Fatal(e),
            })?;
            Ok(CallOutcome { success: out.success, output: out.output, gas_used: out.gas_used, logs: out.logs })
        }
    }
}

/// Execute a genesis call and keep its writes (logs are dropped: block 0 has
/// no transactions to carry them).
pub(crate) fn genesis_call(
    st: &mut Overlay,
    env: &BlockEnv,
    c: &crate::genesis::GenesisCall,
) -> Result<CallOutcome, StateError> {
    let out = execute_message(st, env, c.from, c.to, c.value, &c.data, u64::MAX, 0)?;
    st.commit_checkpoints();
    Ok(out)
}

/// Deploy a genesis contract (`c.data` is its init code) from `c.from` and
/// keep its state; the deployer's nonce counts the deployment.
pub(crate) fn genesis_deploy(
    st: &mut Overlay,
    env: &BlockEnv,
    c: &crate::genesis::GenesisCall,
) -> Result<CallOutcome, StateError> {
    let value = c.value.to_u256();
    let msg =
        evm::Message { caller: c.from, to: None, value, data: &c.data, gas_limit: 30_000_000, mode: evm::Mode::Call };
    let out = evm::run(st, env, &msg).map_err(|e| match e {
        evm::EvmError::Invalid(m) => StateError(format!("genesis deployment from {}: {m}", c.from)),
        evm::EvmError::Fatal(e) => e,
    })?;
    st.commit_checkpoints();
    Ok(CallOutcome { success: out.success, output: out.output, gas_used: out.gas_used, logs: Vec::new() })
}

/// Gas a transaction with this call needs: the gas it uses, or the revert.
///
/// Native calls use exactly the gas they report. A contract may need more gas
/// than it ends up using (refunds; the 63/64 rule leaves gas behind at each
/// call), so for the EVM the lowest limit that succeeds is searched for, as
/// go-ethereum does, to within 1%.
pub fn estimate_gas(
    base: &dyn StateRead,
    env: &BlockEnv,
    from: Address,
    to: Option<Address>,
    value: Amount,
    input: &[u8],
) -> Result<CallOutcome, CallError> {
    let first = call_message(base, env, from, to, value, input, None)?;
    let native = match to {
        Some(a) => !evm::has_contract_code(base, &a)?,
        None => false,
    };
    if native || !first.success {
        return Ok(first);
    }
    let runs = |gas: u64| -> Result<bool, CallError> {
        Ok(call_message(base, env, from, to, value, input, Some(gas))?.success)
    };
    let (mut lo, mut hi) = (first.gas_used.saturating_sub(1), env.gas_limit);
    // Most calls fit in what they used plus what the 63/64 rule holds back.
    let guess = first.gas_used.saturating_mul(64) / 63 + 5_000;
    if guess < hi {
        if runs(guess)? {
            hi = guess;
        } else {
            lo = guess;
        }
    }
    while hi - lo > (hi / 100).max(1) {
        let mid = lo + (hi - lo) / 2;
        if runs(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(CallOutcome { gas_used: hi, ..first })
}

/// The supply equation's terms as state holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplyReport {
    /// genesis + issued − burned.
    pub total: Amount,
    pub genesis: Amount,
    pub issued: Amount,
    pub burned: Amount,
    pub treasury: Amount,
    pub reward_pool: Amount,
    /// Funds held at module addresses (escrows, bonds, ... as modules land).
    pub held_by_modules: Amount,
    /// What `inference` reports holding, by kind; its total is the inference
    /// address's balance (part of `held_by_modules`).
    pub inference: crate::inference::InferenceHoldings,
    /// What `agents` reports holding (task escrow, bonds); its total is the
    /// agents address's balance (part of `held_by_modules`).
    pub agents: crate::agents::AgentsHoldings,
}

pub fn supply_report(st: &dyn StateRead) -> Result<SupplyReport, StateError> {
    let s = st.supply()?;
    let mut held = Amount::ZERO;
    for m in primitives::SYSTEM_MODULES {
        held = Amount(held.0 + st.balance(&m.address())?.0);
    }
    for a in primitives::system::MODULE_ESCROWS {
        held = Amount(held.0 + st.balance(&a)?.0);
    }
    Ok(SupplyReport {
        total: s.total(),
        genesis: s.genesis,
        issued: s.issued,
        burned: s.burned,
        treasury: st.balance(&TREASURY)?,
        reward_pool: st.balance(&VALIDATOR_REWARD_POOL)?,
        held_by_modules: held,
        inference: crate::inference::InferenceRead::holdings(st)?,
        agents: crate::agents::AgentsRead::agent_holdings(st)?,
    })
}
