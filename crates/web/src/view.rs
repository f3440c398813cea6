//! Read-only access to the chain for one request: one storage snapshot (so a
//! page never mixes two heads), and views of the system contracts run as
//! `eth_call`s at its head, the same reads the JSON-RPC backend serves.

use std::sync::Arc;

use alloy_sol_types::SolCall;
use chain::Chain;
use primitives::block::{Header, Receipt};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, SignedTransaction};
use runtime::bank::BankRead;

use crate::page::WebError;

/// The most transactions a "recent transactions" list looks at.
pub const MAX_SCANNED: usize = 5000;

/// The chain as one request sees it.
pub struct ChainView {
    chain: Arc<Chain>,
    snap: storage::Snapshot,
    head: Header,
    /// The dev accounts a write page offers (a dev chain only).
    dev_wallet: Option<Arc<crate::wallet::DevWallet>>,
}

/// Where a committed transaction is, with everything its page shows.
pub struct FoundTx {
    pub header: Header,
    pub index: u32,
    pub tx: SignedTransaction,
    pub receipt: Receipt,
}

/// A transaction met while walking back from the head.
pub struct RecentTx {
    pub block: u64,
    pub tx: SignedTransaction,
}

impl ChainView {
    pub fn open(chain: &Arc<Chain>) -> Result<ChainView, WebError> {
        let snap = chain.snapshot().map_err(WebError::unavailable)?;
        let number = snap.head().map_err(WebError::unavailable)?.unwrap_or(0);
        let head = snap
            .header(number)
            .map_err(WebError::unavailable)?
            .ok_or_else(|| WebError::unavailable("the chain has no head block yet"))?;
        Ok(ChainView { chain: chain.clone(), snap, head, dev_wallet: None })
    }

    /// This view, for a page that may offer the dev accounts `dev` to sign with.
    pub fn with_dev_wallet(mut self, dev: Option<Arc<crate::wallet::DevWallet>>) -> ChainView {
        self.dev_wallet = dev;
        self
    }

    /// The dev wallet's accounts, on a dev chain.
    pub fn dev_wallet(&self) -> Option<&crate::wallet::DevWallet> {
        self.dev_wallet.as_deref()
    }

    /// The state at the head, for the runtime's typed read traits
    /// (`DatanetsRead`, `GovernanceRead`, `StakingRead`, ...).
    pub fn state(&self) -> &storage::Snapshot {
        &self.snap
    }

    pub fn chain_id(&self) -> u64 {
        self.chain.chain_id()
    }

    /// The head of this snapshot.
    pub fn head(&self) -> &Header {
        &self.head
    }

    /// The oldest block whose header this node holds (above 0 on a node started from a snapshot).
    pub fn first_block(&self) -> Result<u64, WebError> {
        self.snap.first_block().map_err(WebError::unavailable)
    }

    pub fn header(&self, number: u64) -> Result<Option<Header>, WebError> {
        if number > self.head.number {
            return Ok(None);
        }
        self.snap.header(number).map_err(WebError::unavailable)
    }

    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, WebError> {
        self.snap.block_number(hash).map_err(WebError::unavailable)
    }

    /// The transactions of block `number` (none for a block this node does not hold).
    pub fn transactions(&self, number: u64) -> Result<Vec<SignedTransaction>, WebError> {
        self.first_transactions(number, usize::MAX)
    }

    /// The first `limit` transactions of block `number`, the rest not decoded.
    pub fn first_transactions(&self, number: u64, limit: usize) -> Result<Vec<SignedTransaction>, WebError> {
        let body = self.snap.body(number).map_err(WebError::unavailable)?.unwrap_or_default();
        body.into_iter()
            .take(limit)
            .map(|t| SignedTransaction::from_trusted(t.raw, t.sender).map_err(WebError::unavailable))
            .collect()
    }

    /// How many transactions block `number` holds (without decoding them).
    pub fn transaction_count(&self, number: u64) -> Result<usize, WebError> {
        Ok(self.snap.body(number).map_err(WebError::unavailable)?.map_or(0, |b| b.len()))
    }

    pub fn receipts(&self, number: u64) -> Result<Vec<Receipt>, WebError> {
        Ok(self.snap.receipts(number).map_err(WebError::unavailable)?.unwrap_or_default())
    }

    /// A committed transaction by hash.
    pub fn transaction(&self, hash: &B256) -> Result<Option<FoundTx>, WebError> {
        let Some(loc) = self.snap.tx_location(hash).map_err(WebError::unavailable)? else {
            return Ok(None);
        };
        let missing = || WebError::unavailable(format!("transaction {hash} is indexed but its block is missing"));
        let header = self.header(loc.block)?.ok_or_else(missing)?;
        let tx = self.transactions(loc.block)?.into_iter().nth(loc.index as usize).ok_or_else(missing)?;
        let receipt = self.receipts(loc.block)?.into_iter().nth(loc.index as usize).ok_or_else(missing)?;
        Ok(Some(FoundTx { header, index: loc.index, tx, receipt }))
    }

    /// A transaction waiting in this node's pool.
    pub fn pending(&self, hash: &B256) -> Option<SignedTransaction> {
        self.chain.pool_transaction(hash).map(|t| (*t).clone())
    }

    /// Nonce and balance at the head.
    pub fn account(&self, address: &Address) -> Result<(u64, Amount), WebError> {
        let a = self.snap.account(address).map_err(WebError::unavailable)?;
        Ok((a.nonce, a.balance))
    }

    /// A page of `subject`'s history, newest first, from the node's index.
    pub fn history(
        &self,
        subject: &primitives::history::Subject,
        before: Option<primitives::history::HistoryCursor>,
        limit: usize,
    ) -> Result<primitives::history::HistoryPage, WebError> {
        self.snap.history(subject, before, limit).map_err(WebError::unavailable)
    }

    /// Up to `max_txs` transactions that `keep` accepts, newest first, from
    /// at most `max_blocks` blocks back from the head and among at most
    /// [`MAX_SCANNED`] transactions: the bounds keep every page's work
    /// independent of the chain's length and load.
    pub fn recent_transactions(
        &self,
        max_blocks: u64,
        max_txs: usize,
        keep: impl Fn(&SignedTransaction) -> bool,
    ) -> Result<Vec<RecentTx>, WebError> {
        let mut out = Vec::new();
        let mut scanned = 0;
        let lowest = self.head.number.saturating_sub(max_blocks.saturating_sub(1)).max(self.first_block()?);
        for block in (lowest..=self.head.number).rev() {
            for tx in self.transactions(block)?.into_iter().rev() {
                scanned += 1;
                if scanned > MAX_SCANNED {
                    return Ok(out);
                }
                if keep(&tx) {
                    out.push(RecentTx { block, tx });
                    if out.len() >= max_txs {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Run `data` against module `m` as a view at the head: `Ok(Ok(output))`,
    /// or `Ok(Err(revert data))` when the contract refuses.
    pub fn call_raw(&self, m: Module, data: &[u8]) -> Result<Result<Bytes, Bytes>, WebError> {
        let env = self.chain.env_at(&self.head);
        let out = runtime::call(&self.snap, &env, Address::ZERO, m.address(), Amount::ZERO, data, None)
            .map_err(WebError::unavailable)?;
        Ok(if out.success { Ok(out.output) } else { Err(out.output) })
    }

    /// A typed view of the contract at `to` (a share token, a pool); a
    /// refusal, or no code there, is `Ok(Err(revert data))`.
    pub fn call_at<C: SolCall>(&self, to: Address, call: &C) -> Result<Result<C::Return, Bytes>, WebError> {
        let env = self.chain.env_at(&self.head);
        let out = runtime::call(&self.snap, &env, Address::ZERO, to, Amount::ZERO, &call.abi_encode(), None)
            .map_err(WebError::unavailable)?;
        if !out.success || out.output.is_empty() {
            return Ok(Err(out.output));
        }
        C::abi_decode_returns(&out.output)
            .map(Ok)
            .map_err(|e| WebError::unavailable(format!("{to}.{}: bad answer: {e}", C::SIGNATURE)))
    }

    /// A typed view of module `m`; a refusal is `Ok(Err(revert data))`.
    pub fn call<C: SolCall>(&self, m: Module, call: &C) -> Result<Result<C::Return, Bytes>, WebError> {
        match self.call_raw(m, &call.abi_encode())? {
            Ok(out) => C::abi_decode_returns(&out)
                .map(Ok)
                .map_err(|e| WebError::unavailable(format!("{}.{}: bad answer: {e}", m.name(), C::SIGNATURE))),
            Err(revert) => Ok(Err(revert)),
        }
    }
}
