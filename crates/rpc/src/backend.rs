//! What the RPC server needs from a node. The chain implements it; the server
//! only translates between JSON-RPC and these calls.

use std::future::Future;
use std::pin::Pin;

use primitives::block::{Header, Receipt};
use primitives::history::{HistoryCursor, HistoryPage, Subject};
use primitives::{Address, B256, Bytes, SignedTransaction, U256};

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why `eth_sendRawTransaction` refused a transaction. `message` is go-ethereum's
/// wording (see notes/eth-rpc-conventions.md); it goes out as JSON-RPC error -32000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitError {
    pub message: String,
}

/// A call for `eth_call` / `eth_estimateGas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<u64>,
    pub value: U256,
    pub data: Bytes,
    /// Gas of the call object's `accessList` (EIP-2930 prices), which a
    /// transaction carrying it pays on top of execution.
    pub access_list_gas: u64,
    /// `eth_call`'s third parameter: accounts to change before the call, as
    /// go-ethereum accepts them.
    pub overrides: Vec<AccountOverride>,
}

/// One account of a state override set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOverride {
    pub address: Address,
    pub balance: Option<U256>,
    pub nonce: Option<u64>,
    pub code: Option<Bytes>,
    /// `state`: the account's whole storage (every other slot reads zero).
    pub state: Option<Vec<(U256, U256)>>,
    /// `stateDiff`: these slots changed, the others kept.
    pub state_diff: Vec<(U256, U256)>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Execution reverted with ABI-encoded error data: JSON-RPC code 3, message
    /// "execution reverted", `data` = the hex revert data.
    Revert(Bytes),
    /// The request itself is invalid (-32000 with this message, e.g.
    /// "insufficient funds for gas * price + value").
    Invalid(String),
    /// The requested block's state was pruned or does not exist (-32000).
    Unavailable(String),
}

/// A value with its Merkle proof against a block's state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofResult {
    pub block_number: u64,
    pub state_root: B256,
    pub key: Bytes,
    pub value: Option<Bytes>,
    /// Canonical proof bytes (borsh of jmt's `SparseMerkleProof<Sha256>`);
    /// `storage::StateProof::verify_bytes` checks them.
    pub proof: Bytes,
}

/// The terms of the supply equation at a block, for `ol_supply` (base units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplyView {
    pub block_number: u64,
    /// genesis + issued − burned.
    pub total: U256,
    pub genesis: U256,
    pub issued: U256,
    pub burned: U256,
    pub treasury: U256,
    /// Fees waiting for the validators' pool (swept into staking every block).
    pub reward_pool: U256,
    /// OPEN held by system contracts (bonds, escrows, deposits, unclaimed rewards).
    pub held_by_modules: U256,
}

/// Node status for `ol_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub chain_id: u64,
    pub head: u64,
    pub head_hash: B256,
    pub pending_txs: usize,
    pub queued_txs: usize,
    pub block_time_ms: Option<u64>,
    pub history: u64,
    pub version: String,
}

/// Why a node that is not a dev chain refuses `evm_mine` and `anvil_mine`.
pub const NOT_A_DEV_CHAIN: &str =
    "this node does not mine on request: evm_mine and anvil_mine are dev-chain methods (openledger up)";

/// The node as the RPC server sees it. Block numbers passed in are already
/// resolved from tags ("latest", "safe", "finalized" → head; "earliest" → 0;
/// "pending" → head for state reads, with the pool counted where noted).
pub trait Backend: Send + Sync + 'static {
    fn chain_id(&self) -> u64;
    /// How long one executing or scanning call (`eth_call`, `eth_estimateGas`,
    /// `eth_getLogs`, ...) may take before its caller gets an error.
    fn call_timeout(&self) -> std::time::Duration {
        crate::methods::RPC_CALL_TIMEOUT
    }
    /// e.g. "openledger/0.1.0".
    fn client_version(&self) -> String;
    /// Seal `blocks` blocks now, empty if nothing is pending (`evm_mine`,
    /// `anvil_mine`): a dev chain's tool, refused by every other node.
    fn mine(&self, _blocks: u64) -> Result<u64, String> {
        Err(NOT_A_DEV_CHAIN.into())
    }
    /// The commit certificate stored with block `number` (`ol_getCommit`):
    /// `None` when consensus did not decide it (a dev chain) or it is unknown.
    fn commit_certificate(&self, _number: u64) -> Option<primitives::consensus::CommitCertificate> {
        None
    }
    /// The newest committed block.
    fn head_number(&self) -> u64;
    /// Header and hash of a committed block.
    fn header(&self, number: u64) -> Option<(Header, B256)>;
    fn block_number_by_hash(&self, hash: &B256) -> Option<u64>;
    /// The transactions of a committed block, in order.
    fn block_transactions(&self, number: u64) -> Option<Vec<SignedTransaction>>;
    /// The receipts of a committed block, in transaction order.
    fn block_receipts(&self, number: u64) -> Option<Vec<Receipt>>;
    /// (block number, index) of a committed transaction.
    fn tx_location(&self, hash: &B256) -> Option<(u64, u32)>;
    /// What the receipt of the transaction at `index` of block `number`
    /// needs: the transaction, its receipt, and the block-wide index of its
    /// first log. The default reads the whole block; a backend over storage
    /// decodes only that transaction (a receipt poll on a block of 1,000
    /// transfers must not decode and hash all 1,000).
    fn receipt_parts(&self, number: u64, index: usize) -> Option<(SignedTransaction, Receipt, u64)> {
        let tx = self.block_transactions(number)?.into_iter().nth(index)?;
        let receipts = self.block_receipts(number)?;
        let first_log = receipts.get(..index)?.iter().map(|r| r.logs.len() as u64).sum();
        Some((tx, receipts.get(index)?.clone(), first_log))
    }
    /// A transaction still in the pool.
    fn pool_transaction(&self, hash: &B256) -> Option<SignedTransaction>;
    /// (nonce, balance) of an account after block `number`.
    fn account(&self, address: &Address, number: u64) -> Result<(u64, U256), CallError>;
    /// The nonce the account's next transaction must carry, counting the pool.
    fn pending_nonce(&self, address: &Address) -> u64;
    /// Base fee of the next block.
    fn next_base_fee(&self) -> u64;
    /// The tip suggested to wallets (eth_maxPriorityFeePerGas).
    fn suggested_tip(&self) -> u128;
    /// Validate, pool and durably journal a raw transaction; resolves once it is
    /// durable, with its hash.
    fn submit(&self, raw: Bytes) -> BoxFuture<'_, Result<B256, SubmitError>>;
    /// Execute a call against the state after block `number`; nothing is kept.
    fn call(&self, req: &CallRequest, number: u64) -> Result<Bytes, CallError>;
    fn estimate_gas(&self, req: &CallRequest) -> Result<u64, CallError>;
    /// Code at an address: non-empty for system contracts, empty otherwise.
    fn code(&self, address: &Address, number: u64) -> Result<Bytes, CallError>;
    /// The calls of a committed transaction as go-ethereum's `callTracer`
    /// reports them; `None` for an unknown transaction.
    fn trace_transaction(&self, _hash: &B256) -> Result<Option<primitives::trace::CallFrame>, CallError> {
        Err(CallError::Invalid("tracing is not available on this node".into()))
    }
    /// A contract's storage slot with its proof at block `number`.
    fn storage_proof(&self, _address: &Address, _slot: &U256, _number: u64) -> Result<ProofResult, CallError> {
        Err(CallError::Invalid("storage proofs are not available on this node".into()))
    }
    /// A contract's storage slot at block `number`.
    fn storage(&self, address: &Address, slot: &U256, number: u64) -> Result<U256, CallError>;
    /// A state key's value with its proof at block `number`.
    fn proof(&self, key: &[u8], number: u64) -> Result<ProofResult, CallError>;
    fn status(&self) -> NodeStatus;
    /// The supply equation's terms after block `number`.
    fn supply(&self, number: u64) -> Result<SupplyView, CallError>;
    /// A page of `subject`'s history, newest first, strictly before `before`
    /// (`ol_getHistory`); `limit` is already clamped. A node without the
    /// history index answers with an error.
    fn history(
        &self,
        _subject: &Subject,
        _before: Option<HistoryCursor>,
        _limit: usize,
    ) -> Result<HistoryPage, CallError> {
        Err(CallError::Unavailable("this node keeps no history index".into()))
    }
}
