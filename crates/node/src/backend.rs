//! The chain as the JSON-RPC server sees it.

use std::sync::Arc;

use chain::{Chain, HistoricState};
use primitives::block::{Header, Receipt};
use primitives::history::{HistoryCursor, HistoryPage, Subject};
use primitives::state::StateRead;
use primitives::{Address, Amount, B256, Bytes, SignedTransaction, U256};
use rpc::{Backend, BoxFuture, CallError, CallRequest, NodeStatus, ProofResult, SubmitError, SupplyView};
use runtime::bank::BankRead;

/// Adapter from [`Chain`] to [`rpc::Backend`].
pub struct ChainBackend {
    chain: Arc<Chain>,
    /// Serve the dev chain's methods (`evm_mine`, `anvil_mine`).
    dev_rpc: bool,
    /// The block whose receipts were last asked for, read once: clients poll
    /// receipts of the newest block, one transaction at a time.
    recent: std::sync::Mutex<Option<Arc<RecentBlock>>>,
}

/// A committed block's stored transactions and receipts, with the index of
/// each transaction's first log (committed blocks never change).
struct RecentBlock {
    number: u64,
    body: Vec<primitives::block::StoredTx>,
    receipts: Vec<Receipt>,
    first_logs: Vec<u64>,
}

impl ChainBackend {
    pub fn new(chain: Arc<Chain>) -> Self {
        ChainBackend { chain, dev_rpc: false, recent: std::sync::Mutex::new(None) }
    }

    /// This backend with the dev chain's methods served or refused.
    pub fn with_dev_rpc(mut self, dev_rpc: bool) -> Self {
        self.dev_rpc = dev_rpc;
        self
    }

    /// Run `f` against the state after block `number` (latest state when it is the head).
    fn with_state<T>(
        &self,
        number: u64,
        f: impl FnOnce(&dyn StateRead, &Header) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let snap = self.chain.snapshot().map_err(|e| CallError::Unavailable(e.to_string()))?;
        let head = snap.head().map_err(|e| CallError::Unavailable(e.to_string()))?.unwrap_or(0);
        let header = snap
            .header(number)
            .map_err(|e| CallError::Unavailable(e.to_string()))?
            .ok_or_else(|| CallError::Unavailable("header not found".into()))?;
        if number == head {
            f(&snap, &header)
        } else {
            let oldest = snap.oldest_state().map_err(|e| CallError::Unavailable(e.to_string()))?;
            if number < oldest {
                return Err(CallError::Unavailable(format!(
                    "missing trie node: state of block {number} was pruned (history kept from block {oldest})"
                )));
            }
            let hist = HistoricState { snap: &snap, version: number };
            f(&hist, &header)
        }
    }
}

/// The RPC's state override set as the runtime takes it.
fn overrides(set: &[rpc::backend::AccountOverride]) -> Result<Vec<runtime::evm::AccountChange>, CallError> {
    set.iter()
        .map(|o| {
            let balance = o
                .balance
                .map(Amount::from_u256)
                .transpose()
                .map_err(|_| CallError::Invalid(format!("balance override of {} exceeds 2^128", o.address)))?;
            Ok(runtime::evm::AccountChange {
                address: o.address,
                balance,
                nonce: o.nonce,
                code: o.code.clone(),
                storage: o.state.clone(),
                storage_diff: o.state_diff.clone(),
            })
        })
        .collect()
}

fn fatal(e: impl std::fmt::Display) -> CallError {
    CallError::Unavailable(e.to_string())
}

impl Backend for ChainBackend {
    fn chain_id(&self) -> u64 {
        self.chain.chain_id()
    }

    fn client_version(&self) -> String {
        format!("openledger/v{}", env!("CARGO_PKG_VERSION"))
    }

    fn mine(&self, blocks: u64) -> Result<u64, String> {
        if !self.dev_rpc {
            return Err(rpc::backend::NOT_A_DEV_CHAIN.into());
        }
        let mut head = self.chain.head().header.number;
        for _ in 0..blocks {
            head = self.chain.produce_block().map_err(|e| e.to_string())?;
        }
        Ok(head)
    }

    fn head_number(&self) -> u64 {
        self.chain.head().header.number
    }

    fn commit_certificate(&self, number: u64) -> Option<primitives::consensus::CommitCertificate> {
        self.chain.certificate(number).ok()?
    }

    fn header(&self, number: u64) -> Option<(Header, B256)> {
        let h = self.chain.snapshot().ok()?.header(number).ok()??;
        let hash = h.hash_slow();
        Some((h, hash))
    }

    fn block_number_by_hash(&self, hash: &B256) -> Option<u64> {
        self.chain.snapshot().ok()?.block_number(hash).ok()?
    }

    fn block_transactions(&self, number: u64) -> Option<Vec<SignedTransaction>> {
        let body = self.chain.snapshot().ok()?.body(number).ok()??;
        body.into_iter().map(|t| SignedTransaction::from_trusted(t.raw, t.sender).ok()).collect()
    }

    fn block_receipts(&self, number: u64) -> Option<Vec<Receipt>> {
        self.chain.snapshot().ok()?.receipts(number).ok()?
    }

    /// Where a transaction was included, once "latest" has reached its block:
    /// the store holds a block a moment before the chain announces it as the
    /// head, and a client that got its receipt must read its own write at "latest".
    fn tx_location(&self, hash: &B256) -> Option<(u64, u32)> {
        let loc = self.chain.snapshot().ok()?.tx_location(hash).ok()??;
        (loc.block <= self.head_number()).then_some((loc.block, loc.index))
    }

    fn receipt_parts(&self, number: u64, index: usize) -> Option<(SignedTransaction, Receipt, u64)> {
        let cached = self.recent.lock().unwrap().clone().filter(|b| b.number == number);
        let block = match cached {
            Some(b) => b,
            None => {
                let snap = self.chain.snapshot().ok()?;
                let (body, receipts) = (snap.body(number).ok()??, snap.receipts(number).ok()??);
                let mut first_logs = Vec::with_capacity(receipts.len());
                let mut logs = 0u64;
                for r in &receipts {
                    first_logs.push(logs);
                    logs += r.logs.len() as u64;
                }
                let b = Arc::new(RecentBlock { number, body, receipts, first_logs });
                *self.recent.lock().unwrap() = Some(b.clone());
                b
            }
        };
        let t = block.body.get(index)?;
        let tx = SignedTransaction::from_trusted(t.raw.clone(), t.sender).ok()?;
        Some((tx, block.receipts.get(index)?.clone(), *block.first_logs.get(index)?))
    }

    fn pool_transaction(&self, hash: &B256) -> Option<SignedTransaction> {
        self.chain.pool_transaction(hash).map(|t| (*t).clone())
    }

    fn account(&self, address: &Address, number: u64) -> Result<(u64, U256), CallError> {
        self.with_state(number, |st, _| {
            let a = st.account(address).map_err(fatal)?;
            Ok((a.nonce, a.balance.to_u256()))
        })
    }

    fn pending_nonce(&self, address: &Address) -> u64 {
        self.chain.pending_nonce(address).unwrap_or(0)
    }

    fn next_base_fee(&self) -> u64 {
        self.chain.head().next_base_fee
    }

    fn suggested_tip(&self) -> u128 {
        // A single producer orders by tip; 1 gwei is plenty and what wallets expect.
        1_000_000_000
    }

    fn submit(&self, raw: Bytes) -> BoxFuture<'_, Result<B256, SubmitError>> {
        Box::pin(async move { self.chain.submit(&raw).await.map_err(|e| SubmitError { message: e.0 }) })
    }

    fn call(&self, req: &CallRequest, number: u64) -> Result<Bytes, CallError> {
        let value = Amount::from_u256(req.value).map_err(|_| CallError::Invalid("value overflows".into()))?;
        let changes = overrides(&req.overrides)?;
        self.with_state(number, |st, header| {
            let env = self.chain.env_at(header);
            let st = runtime::evm::Overridden::new(st, &changes).map_err(fatal)?;
            let from = req.from.unwrap_or_default();
            let out = runtime::call_message(&st, &env, from, req.to, value, &req.data, req.gas)
                .map_err(|e| CallError::Invalid(e.to_string()))?;
            if out.success { Ok(out.output) } else { Err(CallError::Revert(out.output)) }
        })
    }

    fn estimate_gas(&self, req: &CallRequest) -> Result<u64, CallError> {
        let value = Amount::from_u256(req.value).map_err(|_| CallError::Invalid("value overflows".into()))?;
        let changes = overrides(&req.overrides)?;
        let head = self.head_number();
        self.with_state(head, |st, header| {
            let st = runtime::evm::Overridden::new(st, &changes).map_err(fatal)?;
            let st: &dyn StateRead = &st;
            // The transaction will land in the next block: estimate in that block's environment,
            // so calls that depend on the height (votes, timelocks, unbonding) are judged as mined.
            let mut env = self.chain.env_at(header);
            env.number += 1;
            env.base_fee = self.chain.head().next_base_fee;
            // Its time too: a block after the head's second, so a contract
            // whose gas depends on elapsed time (a Uniswap pair's price
            // accumulators) is estimated as it will run, not as of the head.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            env.timestamp = now.max(env.timestamp + 1);
            if let Some(cap) = req.gas {
                env.gas_limit = env.gas_limit.min(cap);
            }
            let out = runtime::estimate_gas(st, &env, req.from.unwrap_or_default(), req.to, value, &req.data)
                .map_err(|e| CallError::Invalid(e.to_string()))?;
            if !out.success {
                return Err(CallError::Revert(out.output));
            }
            if let Some(cap) = req.gas
                && out.gas_used > cap
            {
                return Err(CallError::Invalid(format!("gas required exceeds allowance ({cap})")));
            }
            Ok(out.gas_used)
        })
    }

    fn code(&self, address: &Address, number: u64) -> Result<Bytes, CallError> {
        self.with_state(number, |st, _| runtime::evm::code_at(st, address).map_err(fatal))
    }

    fn trace_transaction(&self, hash: &B256) -> Result<Option<primitives::trace::CallFrame>, CallError> {
        chain::trace_transaction(&self.chain, hash).map_err(|e| match e {
            chain::ChainError::Pruned(m) => CallError::Unavailable(m),
            e => fatal(e),
        })
    }

    fn storage_proof(&self, address: &Address, slot: &U256, number: u64) -> Result<ProofResult, CallError> {
        self.proof(&runtime::evm::state_key::storage(address, slot), number)
    }

    fn storage(&self, address: &Address, slot: &U256, number: u64) -> Result<U256, CallError> {
        self.with_state(number, |st, _| runtime::evm::storage_at(st, address, slot).map_err(fatal))
    }

    fn proof(&self, key: &[u8], number: u64) -> Result<ProofResult, CallError> {
        let snap = self.chain.snapshot().map_err(fatal)?;
        let p = snap.prove(key, number).map_err(|e| CallError::Unavailable(e.to_string()))?;
        let header =
            snap.header(number).map_err(fatal)?.ok_or_else(|| CallError::Unavailable("header not found".into()))?;
        debug_assert_eq!(header.state_root, p.root);
        Ok(ProofResult {
            block_number: number,
            state_root: header.state_root,
            key: Bytes::copy_from_slice(key),
            value: p.value.clone().map(Bytes::from),
            proof: Bytes::from(p.proof_bytes()),
        })
    }

    fn supply(&self, number: u64) -> Result<SupplyView, CallError> {
        self.with_state(number, |st, _| {
            let r = runtime::supply_report(st).map_err(fatal)?;
            Ok(SupplyView {
                block_number: number,
                total: r.total.to_u256(),
                genesis: r.genesis.to_u256(),
                issued: r.issued.to_u256(),
                burned: r.burned.to_u256(),
                treasury: r.treasury.to_u256(),
                reward_pool: r.reward_pool.to_u256(),
                held_by_modules: r.held_by_modules.to_u256(),
            })
        })
    }

    fn history(
        &self,
        subject: &Subject,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, CallError> {
        self.chain.history(subject, before, limit).map_err(fatal)
    }

    fn status(&self) -> NodeStatus {
        let head = self.chain.head();
        let (pending, queued) = self.chain.pool_counts();
        NodeStatus {
            chain_id: self.chain.chain_id(),
            head: head.header.number,
            head_hash: head.hash,
            pending_txs: pending,
            queued_txs: queued,
            block_time_ms: self.chain.block_time_ms(),
            history: self.chain.config().history,
            version: self.client_version(),
        }
    }
}
