//! The node's own transactions (settlements, attribution records, reveals,
//! verdicts, dev set-up): signed with one of its keys, submitted to the local
//! pool, and waited for until a block includes them.

use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use chain::Chain;
use primitives::{Address, B256, Bytes, U256};

/// Why one of the node's transactions did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxFailure {
    /// Not admitted (pool full, fee, funds), not mined in time, or the node
    /// could not read its own state: the same call may succeed later.
    Transient(String),
    /// Mined with status 0: the module refused it, with this custom error.
    Reverted { hash: B256, data: Bytes },
}

impl std::fmt::Display for TxFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxFailure::Transient(e) => f.write_str(e),
            TxFailure::Reverted { hash, data } => write!(f, "transaction {hash} reverted: {}", error_name(data)),
        }
    }
}

impl From<TxFailure> for String {
    fn from(e: TxFailure) -> String {
        e.to_string()
    }
}

/// How long [`submit_and_wait`] waits for a block to include its transaction.
pub const MINED_WITHIN: Duration = Duration::from_secs(60);

/// Submit a call from `key` to `to` and wait (up to [`MINED_WITHIN`]) for its
/// block; an error names the module's custom error when the call reverted.
pub fn submit_and_wait(
    chain: &Chain,
    handle: &tokio::runtime::Handle,
    key: &keys::SecretKey,
    to: Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) -> Result<(), TxFailure> {
    let hash = submit(chain, handle, key, to, value, data, gas)?;
    wait_mined(chain, hash, Instant::now() + MINED_WITHIN)
}

/// Sign a call from `key` to `to` with its next nonce and submit it to the
/// local pool; its hash once the pool has acknowledged it.
pub fn submit(
    chain: &Chain,
    handle: &tokio::runtime::Handle,
    key: &keys::SecretKey,
    to: Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) -> Result<B256, TxFailure> {
    let nonce = chain.pending_nonce(&key.address()).map_err(|e| transient(&e))?;
    let base = chain.head().header.base_fee_per_gas.unwrap_or(1_000_000_000) as u128;
    let raw = signed_call(chain, key, nonce, base * 2 + 1_000_000_000, Call { to, value, data, gas });
    handle.block_on(chain.submit(&raw)).map_err(|e| transient(&e))
}

/// One call: where to, the value sent with it, its calldata and its gas limit.
#[derive(Debug, Clone)]
pub struct Call {
    pub to: Address,
    pub value: u128,
    pub data: Vec<u8>,
    pub gas: u64,
}

/// `call` from `key` with `nonce` and a fee cap of `max_fee` wei per gas (tip
/// 1 gwei), as an EIP-1559 transaction of this chain, signed and encoded.
pub fn signed_call(chain: &Chain, key: &keys::SecretKey, nonce: u64, max_fee: u128, call: Call) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: chain.chain_id(),
        nonce,
        gas_limit: call.gas,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(call.to),
        value: U256::from(call.value),
        access_list: Default::default(),
        input: Bytes::from(call.data),
    };
    keys::encode_2718(&keys::sign_eip1559(key, tx))
}

/// The verdict of `hash` if a committed block includes it, else `None`.
pub fn mined_verdict(chain: &Chain, hash: B256) -> Result<Option<Result<(), TxFailure>>, TxFailure> {
    let st = chain.snapshot().map_err(|e| transient(&e))?;
    let Some(loc) = st.tx_location(&hash).map_err(|e| transient(&e))? else {
        return Ok(None);
    };
    let rs = st.receipts(loc.block).map_err(|e| transient(&e))?.unwrap_or_default();
    let r = rs.get(loc.index as usize).ok_or_else(|| transient(&"receipt missing"))?;
    Ok(Some(if r.success { Ok(()) } else { Err(TxFailure::Reverted { hash, data: r.revert_data.clone() }) }))
}

/// Wait until a block includes `hash`, waking at each commit (no polling
/// timer), until `deadline`; the receipt's verdict.
pub fn wait_mined(chain: &Chain, hash: B256, deadline: Instant) -> Result<(), TxFailure> {
    loop {
        // The head before the look: a block committed after it ends the wait below at once.
        let seen = chain.head().header.number;
        if let Some(verdict) = mined_verdict(chain, hash)? {
            return verdict;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if chain.wait_for_block(seen, left).is_none() {
            let why = if chain.is_stopped() { "the chain stopped first" } else { "not in time" };
            return Err(TxFailure::Transient(format!("transaction {hash} was not mined: {why}")));
        }
    }
}

fn transient(e: &dyn std::fmt::Display) -> TxFailure {
    TxFailure::Transient(e.to_string())
}

/// The name and fields of a module's custom error, else the raw bytes.
pub fn error_name(data: &[u8]) -> String {
    use alloy_sol_types::SolInterface;
    use primitives::abi::{IAgents, IAttribution, IInference};
    if let Ok(e) = IInference::IInferenceErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = IAgents::IAgentsErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = IAttribution::IAttributionErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    format!("0x{}", hex::encode(data))
}

/// Why a read-only call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// The module reverted with this data (a custom error).
    Reverted(Bytes),
    /// The node could not run the call or decode its answer.
    Failed(String),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::Reverted(d) => write!(f, "reverted: {}", error_name(d)),
            ViewError::Failed(e) => f.write_str(e),
        }
    }
}

/// A module's read-only call (an `eth_call` at the head, as `Address::ZERO`), decoded.
pub fn call_view<C: alloy_sol_types::SolCall>(chain: &Chain, to: Address, call: &C) -> Result<C::Return, ViewError> {
    let st = chain.snapshot().map_err(|e| ViewError::Failed(e.to_string()))?;
    let env = chain.env_at(&chain.head().header);
    let out = runtime::call(&st, &env, Address::ZERO, to, primitives::Amount::ZERO, &call.abi_encode(), None)
        .map_err(|e| ViewError::Failed(e.to_string()))?;
    if !out.success {
        return Err(ViewError::Reverted(out.output));
    }
    C::abi_decode_returns(&out.output).map_err(|e| ViewError::Failed(format!("{}: {e}", C::SIGNATURE)))
}

/// [`call_view`] with a revert as an error naming the module's custom error.
pub fn view_at<C: alloy_sol_types::SolCall>(chain: &Chain, to: Address, call: &C) -> Result<C::Return, String> {
    call_view(chain, to, call).map_err(|e| format!("{} {e}", C::SIGNATURE))
}
