//! The chain: genesis, the mempool and its durable journal, the dev block
//! producer, replay, and state snapshots (export, and a data directory made
//! from one).
//!
//! A transaction's life: [`Chain::submit`] decodes it and checks what needs no
//! execution (refusing with go-ethereum's messages), admits it to the pool,
//! journals it with group commit and answers once it is on disk. The producer
//! thread takes the best executable transactions, runs them through `runtime`,
//! computes the state root through `storage`, and commits block, receipts and
//! state in one redb transaction. On restart the journal is replayed into the pool,
//! so an acknowledged transaction is either in a committed block or back in the pool.
//!
//! Lifecycle: [`Chain::open`], [`Chain::start`] (the producer thread), and
//! [`Chain::stop`], which lets the block being built commit, joins the producer,
//! then closes the journal (every queued append is written, synced and answered)
//! and joins its writer. Dropping the last `Arc<Chain>` does the same, so once
//! it returns the data directory is free to open again. The producer holds only a
//! weak reference between blocks, so it never keeps a dropped chain alive.

mod bft;
mod journal;
mod mempool;
mod producer;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use primitives::block::{Header, Receipt};
use primitives::history::Subject;
use primitives::state::{StateError, StateRead};
use primitives::tx::{MAX_INITCODE_BYTES, MAX_TX_BYTES};
use primitives::{Address, B256, SignedTransaction};
use runtime::Genesis;
use runtime::params::{self, ParamsRead};
use storage::{HistoryCursor, HistoryPage, Snapshot, Store, StoreOptions};

pub use bft::{
    ConsensusHost, MAX_BLOCK_BYTES, MAX_FUTURE_SECS, ProposedBlock, WireBlock, decode_block, encode_block,
    verify_certificate,
};
pub use journal::Journal;
pub use mempool::{Pool, PoolConfig, PoolError};
pub use producer::{BFT_EXTRA_PREFIX, BuiltBlock, Seal, build_block, is_bft_header, replay};
pub use snapshot::{check_replayable, export_snapshot, import_snapshot};

/// When the dev producer seals blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockTime {
    /// Seal whatever is pending as soon as possible.
    Instant,
    /// Seal every so many milliseconds, empty or not.
    Interval(u64),
    /// Never on its own: only [`Chain::produce_block`] (tests).
    Manual,
    /// Decided by a consensus engine through [`ConsensusHost`]: validators.
    External,
}

/// How a chain is set up.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    pub data_dir: PathBuf,
    pub genesis: Genesis,
    pub block_time: BlockTime,
    pub history: u64,
    pub pool: PoolConfig,
    pub max_txs_per_block: usize,
}

/// Errors of the chain as a whole (not of one transaction).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("replay diverged at block {block}: {what}")]
    Diverged { block: u64, what: String },
    #[error("block {block} is invalid: {what}")]
    InvalidBlock { block: u64, what: String },
    /// The state a request needs is older than the history kept.
    #[error("{0}")]
    Pruned(String),
    /// A state snapshot could not be written or was refused.
    #[error(transparent)]
    Snapshot(#[from] storage::SnapshotError),
}

/// A refusal at submission, in go-ethereum's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubmitError(pub String);

/// The committed head as everyone else sees it.
#[derive(Clone, Debug)]
pub struct Head {
    pub header: Header,
    pub hash: B256,
    /// Base fee of the next block.
    pub next_base_fee: u64,
}

/// A running chain. It owns its threads: [`Chain::stop`], or dropping it, joins them.
pub struct Chain {
    pub(crate) core: Arc<Core>,
    /// Wakes the producer early (a new transaction, or stop); `None` when not running.
    wake: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    producer: Mutex<Option<JoinHandle<()>>>,
    /// Every transaction admitted, raw, for gossip to other validators.
    admitted: tokio::sync::broadcast::Sender<primitives::Bytes>,
}

/// Admitted transactions a slow [`Chain::subscribe_admitted`] receiver may fall behind by.
pub const ADMITTED_BACKLOG: usize = 8192;

/// What the producer thread shares with the chain's handle. The thread holds
/// this, never the [`Chain`], so dropping the last `Arc<Chain>` always runs
/// [`Chain`]'s `Drop` on the dropping thread, which joins the producer.
pub(crate) struct Core {
    pub(crate) cfg: ChainConfig,
    pub(crate) store: Store,
    pub(crate) pool: Mutex<Pool>,
    pub(crate) journal: Journal,
    pub(crate) head: RwLock<Head>,
    /// The number of the committed head, announced on `committed` at every
    /// commit (and on stop), for [`Chain::wait_for_block`].
    pub(crate) committed_number: Mutex<u64>,
    pub(crate) committed: Condvar,
    /// Serialises block production (the producer thread and manual calls).
    pub(crate) producing: Mutex<()>,
    pub(crate) stop: AtomicBool,
    /// Blocks built for consensus (proposed here or checked), by height and
    /// hash, until one of their height is decided.
    pub(crate) pending: Mutex<std::collections::BTreeMap<(u64, B256), BuiltBlock>>,
}

impl Core {
    pub(crate) fn chain_id(&self) -> u64 {
        self.cfg.genesis.chain_id
    }

    pub(crate) fn head(&self) -> Head {
        self.head.read().unwrap().clone()
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Make `head` the committed head and wake every [`Chain::wait_for_block`].
    pub(crate) fn announce(&self, head: Head) {
        let number = head.header.number;
        *self.head.write().unwrap() = head;
        *self.committed_number.lock().unwrap() = number;
        self.committed.notify_all();
    }
}

/// Blocks the history index fills in per write transaction when catching up.
const HISTORY_BATCH: u64 = 1_000;

/// Build the history index for blocks committed before it existed (a data
/// directory from an older node), at open and before any new block, logging
/// progress. Done in the foreground: it reads every stored body and receipt
/// once, and the chain's pages need the index complete.
fn catch_up_history_index(store: &Store) -> Result<(), ChainError> {
    let started = Instant::now();
    let mut blocks = 0;
    loop {
        let p = store.index_history(HISTORY_BATCH)?;
        blocks += p.indexed;
        if p.remaining == 0 {
            if blocks > 0 {
                tracing::info!(blocks, secs = started.elapsed().as_secs(), "history index built for existing blocks");
            }
            return Ok(());
        }
        tracing::info!(
            indexed_through = p.next - 1,
            remaining = p.remaining,
            "building the history index of existing blocks"
        );
    }
}

/// State as of a committed version older than the head.
pub struct HistoricState<'a> {
    pub snap: &'a Snapshot,
    pub version: u64,
}

impl StateRead for HistoricState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.snap.get_at(key, self.version).map_err(|e| StateError(e.to_string()))
    }
}

impl Chain {
    /// Open the chain in `cfg.data_dir`, writing genesis on first start and
    /// replaying the mempool journal. Does not start producing blocks: see [`Chain::start`].
    pub fn open(cfg: ChainConfig) -> Result<Arc<Chain>, ChainError> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        let store =
            Store::open(&cfg.data_dir.join("chain.redb"), StoreOptions { history: cfg.history, ..Default::default() })?;
        let genesis = producer::genesis_block(&cfg.genesis)?;
        match store.head()? {
            None => store.commit(&genesis.record, genesis.update)?,
            Some(_) => {
                // Block 0's hash, or the one a snapshot import recorded.
                let stored = store.snapshot()?.genesis_hash()?;
                if stored != Some(genesis.record.hash) {
                    return Err(ChainError::Genesis(format!(
                        "{} holds a different chain (genesis {}, configured genesis {}); use another --data-dir, or `openledger up --reset` to start the dev chain afresh",
                        cfg.data_dir.display(),
                        stored.unwrap_or_default(),
                        genesis.record.hash
                    )));
                }
            }
        }
        catch_up_history_index(&store)?;
        let (journal, recovered) = Journal::open(&cfg.data_dir.join("mempool.journal"))?;
        let head = load_head(&store)?;
        let core = Arc::new(Core {
            pool: Mutex::new(Pool::new(cfg.pool.clone())),
            cfg,
            store,
            journal,
            committed_number: Mutex::new(head.header.number),
            committed: Condvar::new(),
            head: RwLock::new(head),
            producing: Mutex::new(()),
            stop: AtomicBool::new(false),
            pending: Mutex::new(Default::default()),
        });
        let (admitted, _) = tokio::sync::broadcast::channel(ADMITTED_BACKLOG);
        let chain = Arc::new(Chain { core, wake: Mutex::new(None), producer: Mutex::new(None), admitted });
        // Re-admit what was acknowledged but not yet in a block; drop the rest.
        let mut readmitted = 0;
        for raw in &recovered {
            if let Ok(tx) = SignedTransaction::decode(raw, chain.chain_id())
                && chain.admit(tx).is_ok()
            {
                readmitted += 1;
            }
        }
        let keep = chain.core.pool.lock().unwrap().all_raw();
        futures_block_on(chain.core.journal.rewrite(keep))?;
        if !recovered.is_empty() {
            tracing::info!(journal = recovered.len(), readmitted, "mempool recovered from journal");
        }
        Ok(chain)
    }

    /// Start the producer thread (nothing in [`BlockTime::Manual`], after
    /// [`Chain::stop`], or when it already runs).
    pub fn start(&self) {
        let mut producer = self.producer.lock().unwrap();
        let sealed_elsewhere = matches!(self.core.cfg.block_time, BlockTime::Manual | BlockTime::External);
        if sealed_elsewhere || self.core.stopped() || producer.is_some() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let me = self.core.clone();
        let handle = std::thread::Builder::new()
            .name("block-producer".into())
            .spawn(move || producer::run(me, rx))
            .expect("spawn block producer");
        *self.wake.lock().unwrap() = Some(tx);
        *producer = Some(handle);
    }

    /// Stop for good: the block being built commits, the producer thread is
    /// joined, then the journal writes, syncs and answers every append already
    /// queued and its writer is joined. Later submissions are refused ("journal
    /// stopped"); reads still work. Idempotent; also what dropping the chain does.
    pub fn stop(&self) {
        self.core.stop.store(true, Ordering::SeqCst);
        // Dropping the sender wakes the producer at once, whatever it waits for.
        drop(self.wake.lock().unwrap().take());
        let handle = self.producer.lock().unwrap().take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the block producer panicked");
        }
        self.core.journal.close();
        // No block comes any more: wake whoever waits for one.
        let _n = self.core.committed_number.lock().unwrap();
        self.core.committed.notify_all();
    }

    /// Wait until a block above `after` has committed: the head's number then.
    /// `None` when `timeout` passed, or the chain stopped, with no such block.
    /// Those who wait for their transaction wait on this, not on a timer.
    pub fn wait_for_block(&self, after: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        let mut n = self.core.committed_number.lock().unwrap();
        while *n <= after && !self.core.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            n = self.core.committed.wait_timeout(n, left).unwrap().0;
        }
        (*n > after).then_some(*n)
    }

    /// True once [`Chain::stop`] has begun: no block is produced any more.
    pub fn is_stopped(&self) -> bool {
        self.core.stopped()
    }

    pub fn chain_id(&self) -> u64 {
        self.core.chain_id()
    }

    pub fn config(&self) -> &ChainConfig {
        &self.core.cfg
    }

    pub fn data_dir(&self) -> &Path {
        &self.core.cfg.data_dir
    }

    pub fn head(&self) -> Head {
        self.core.head()
    }

    /// What tells when the chain's database file is closed: every handle and
    /// read view of it dropped, on whichever thread (see [`storage::Closed`]).
    pub fn closed(&self) -> storage::Closed {
        self.core.store.closed()
    }

    /// A consistent read view of the latest committed state and blocks.
    pub fn snapshot(&self) -> Result<Snapshot, ChainError> {
        Ok(self.core.store.snapshot()?)
    }

    pub fn pool_len(&self) -> usize {
        self.core.pool.lock().unwrap().len()
    }

    /// (executable, queued) pool counts.
    pub fn pool_counts(&self) -> (usize, usize) {
        let snap = match self.core.store.snapshot() {
            Ok(s) => s,
            Err(_) => return (0, 0),
        };
        let pool = self.core.pool.lock().unwrap();
        pool.counts(|a| account_of(&snap, a).map(|x| x.nonce).unwrap_or(0))
    }

    pub fn pool_transaction(&self, hash: &B256) -> Option<Arc<SignedTransaction>> {
        self.core.pool.lock().unwrap().get(hash)
    }

    /// The nonce `address`'s next transaction should carry, counting the pool.
    pub fn pending_nonce(&self, address: &Address) -> Result<u64, ChainError> {
        let snap = self.core.store.snapshot()?;
        let n = account_of(&snap, address)?.nonce;
        Ok(self.core.pool.lock().unwrap().pending_nonce(address, n))
    }

    /// Checks that need no state, in go-ethereum's order and words. Init code
    /// is bounded by EIP-3860 ([`MAX_INITCODE_BYTES`]).
    fn check_stateless(&self, tx: &SignedTransaction) -> Result<(), SubmitError> {
        let err = |m: &str| Err(SubmitError(m.to_string()));
        if tx.encoded_len() > MAX_TX_BYTES {
            return err("oversized data");
        }
        if tx.to().is_none() && tx.input().len() > MAX_INITCODE_BYTES {
            return err("max initcode size exceeded");
        }
        let head = self.head();
        if tx.gas_limit() > head.header.gas_limit {
            return err("exceeds block gas limit");
        }
        if tx.max_priority_fee_per_gas() > tx.max_fee_per_gas() {
            return err("max priority fee per gas higher than max fee per gas");
        }
        if tx.gas_limit() < tx.intrinsic_gas() {
            return err("intrinsic gas too low");
        }
        if tx.max_fee_per_gas() < head.next_base_fee as u128 {
            return err("max fee per gas less than block base fee");
        }
        Ok(())
    }

    /// Validate against state and the pool and admit; returns the receiver of
    /// the journal's durability acknowledgement.
    fn admit(&self, tx: SignedTransaction) -> Result<tokio::sync::oneshot::Receiver<std::io::Result<()>>, SubmitError> {
        self.check_stateless(&tx)?;
        let snap = self.core.store.snapshot().map_err(|e| SubmitError(format!("internal error: {e}")))?;
        let acct = account_of(&snap, &tx.sender).map_err(|e| SubmitError(format!("internal error: {e}")))?;
        let base_fee = self.head().next_base_fee;
        let raw = tx.raw.clone();
        let mut pool = self.core.pool.lock().unwrap();
        pool.add(tx, acct.nonce, acct.balance.to_u256(), base_fee).map_err(|e| SubmitError(e.to_string()))?;
        // Queued under the pool lock so the journal's order matches the pool's (see compaction).
        Ok(self.core.journal.append(raw))
    }

    /// `eth_sendRawTransaction`: decode, validate, pool, journal durably; the hash.
    pub async fn submit(&self, raw: &[u8]) -> Result<B256, SubmitError> {
        let tx = SignedTransaction::decode(raw, self.chain_id()).map_err(|e| SubmitError(e.to_string()))?;
        let hash = tx.hash;
        let raw = tx.raw.clone();
        let ack = self.admit(tx)?;
        match ack.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.core.pool.lock().unwrap().remove(&hash);
                return Err(SubmitError(format!("internal error: {e}")));
            }
            Err(_) => {
                self.core.pool.lock().unwrap().remove(&hash);
                return Err(SubmitError("internal error: journal stopped".into()));
            }
        }
        if let Some(w) = self.wake.lock().unwrap().as_ref() {
            let _ = w.try_send(());
        }
        // Nobody listening (a single node) is fine.
        let _ = self.admitted.send(raw);
        Ok(hash)
    }

    /// Every transaction admitted from now on (by [`Chain::submit`]), raw.
    pub fn subscribe_admitted(&self) -> tokio::sync::broadcast::Receiver<primitives::Bytes> {
        self.admitted.subscribe()
    }

    /// Build, commit and announce one block now (empty if nothing is executable); returns its number.
    pub fn produce_block(&self) -> Result<u64, ChainError> {
        Ok(producer::produce(&self.core, true)?.expect("an empty block is allowed"))
    }

    /// A page of `subject`'s history (its transactions and the logs naming
    /// it), newest first, strictly before `before`; `limit` is clamped to
    /// 1..=[`storage::MAX_HISTORY_PAGE`].
    pub fn history(
        &self,
        subject: &Subject,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage, ChainError> {
        Ok(self.core.store.snapshot()?.history(subject, before, limit)?)
    }

    /// Header, hash and receipts of a committed block.
    pub fn block_receipts(&self, number: u64) -> Result<Option<Vec<Receipt>>, ChainError> {
        Ok(self.core.store.snapshot()?.receipts(number)?)
    }

    /// The environment a call "at" block `number` sees: that block's own.
    pub fn env_at(&self, header: &Header) -> runtime::BlockEnv {
        runtime::BlockEnv {
            chain_id: self.chain_id(),
            number: header.number,
            timestamp: header.timestamp,
            base_fee: header.base_fee_per_gas.unwrap_or(0),
            gas_limit: header.gas_limit,
            coinbase: header.beneficiary,
            last_commit: None,
        }
    }

    /// Block-time setting in milliseconds (None for instant or manual).
    pub fn block_time_ms(&self) -> Option<u64> {
        match self.core.cfg.block_time {
            BlockTime::Interval(ms) => Some(ms),
            _ => None,
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Bank account of `a` in `st`.
pub fn account_of(st: &dyn StateRead, a: &Address) -> Result<runtime::bank::Account, StateError> {
    use runtime::bank::BankRead;
    st.account(a)
}

fn load_head(store: &Store) -> Result<Head, ChainError> {
    let snap = store.snapshot()?;
    let n = snap.head()?.ok_or_else(|| ChainError::Genesis("no genesis block".into()))?;
    let header = snap.header(n)?.ok_or(storage::StorageError::MissingBlock(n))?;
    let min = snap.param(&params::MIN_BASE_FEE)?;
    let next_base_fee = primitives::block::next_base_fee(
        header.gas_used,
        header.gas_limit,
        header.base_fee_per_gas.unwrap_or(0),
        u64::try_from(min).unwrap_or(u64::MAX),
    );
    Ok(Head { hash: header.hash_slow(), header, next_base_fee })
}

/// Wait for a journal acknowledgement from synchronous code (also inside an async runtime).
fn futures_block_on(mut rx: tokio::sync::oneshot::Receiver<std::io::Result<()>>) -> std::io::Result<()> {
    use tokio::sync::oneshot::error::TryRecvError;
    loop {
        match rx.try_recv() {
            Ok(r) => return r,
            Err(TryRecvError::Empty) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(TryRecvError::Closed) => return Err(std::io::Error::other("journal stopped")),
        }
    }
}

/// Replay the running chain's blocks into a scratch directory and check them.
/// The call frames of a committed transaction (`debug_traceTransaction`'s callTracer).
pub fn trace_transaction(chain: &Chain, hash: &B256) -> Result<Option<primitives::trace::CallFrame>, ChainError> {
    producer::trace(&chain.core.store, chain.chain_id(), hash)
}

pub fn replay_dir(chain: &Chain, scratch: &Path) -> Result<u64, ChainError> {
    check_replayable(&chain.core.store)?;
    replay(&chain.core.store, &chain.core.cfg.genesis, scratch)
}
