//! Building blocks: genesis, the dev producer loop, and replay.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH;
use primitives::block::{Header, Receipt, StoredTx, logs_bloom, next_base_fee, receipts_root, transactions_root};
use primitives::consensus::CommitCertificate;
use primitives::state::StateRead;
use primitives::system::VALIDATOR_REWARD_POOL;
use primitives::{Address, B256, Bytes, SignedTransaction};
use runtime::params::{self, ParamsRead};
use runtime::{ApplyError, BlockEnv, EmptyState, Genesis, Overlay};
use storage::{BlockRecord, StateUpdate, Store, StoreOptions};

use crate::{BlockTime, ChainError, Core, Head, account_of};

/// A block ready to commit.
pub struct BuiltBlock {
    pub record: BlockRecord,
    pub update: StateUpdate,
    /// Pool transactions that can never be included (to drop).
    pub rejected: Vec<B256>,
}

const EXTRA_DATA: &[u8] = b"openledger";

/// The extra data of a block decided by consensus starts with this: format
/// version 1, which carries the previous block's commit certificate (see [`Seal`]).
pub const BFT_EXTRA_PREFIX: &[u8; 3] = b"ol\x01";

/// How a block is sealed, which decides its format.
#[derive(Clone, Copy, Debug)]
pub enum Seal<'a> {
    /// By the dev sealer: extra data `openledger`, no commit carried.
    Dev,
    /// By consensus (format 1): the block carries the previous block's commit
    /// certificate (none at height 1), its signers reach the runtime as
    /// `BlockEnv::last_commit` (liveness), and the extra data is
    /// [`BFT_EXTRA_PREFIX`] ‖ the first 29 bytes of the keccak hash of the
    /// certificate's encoding (29 zero bytes when it carries none): 32 bytes, as
    /// Ethereum clients expect, binding the header to the certificate.
    Bft { last_commit: Option<&'a CommitCertificate> },
}

impl Seal<'_> {
    fn extra_data(&self) -> Bytes {
        match self {
            Seal::Dev => Bytes::from_static(EXTRA_DATA),
            Seal::Bft { last_commit } => {
                let mut extra = BFT_EXTRA_PREFIX.to_vec();
                match last_commit {
                    Some(c) => extra.extend_from_slice(&primitives::keccak256(c.encode())[..29]),
                    None => extra.extend_from_slice(&[0u8; 29]),
                }
                Bytes::from(extra)
            }
        }
    }

    fn last_commit(&self) -> Option<runtime::LastCommit> {
        match self {
            Seal::Bft { last_commit: Some(c) } => Some(runtime::LastCommit {
                height: c.height,
                signers: c.signatures.iter().map(|s| s.validator).collect(),
            }),
            _ => None,
        }
    }
}

/// Whether a stored header is of a consensus-decided block (format 1).
pub fn is_bft_header(h: &Header) -> bool {
    h.extra_data.starts_with(BFT_EXTRA_PREFIX) && h.extra_data.len() == 32
}

/// Block 0 from a genesis.
pub(crate) fn genesis_block(g: &Genesis) -> Result<BuiltBlock, ChainError> {
    // Genesis is computed against an empty in-memory view; its root does not depend on the store.
    let empty = EmptyState;
    let mut st = Overlay::new(&empty);
    g.apply(&mut st).map_err(|e| ChainError::Genesis(e.to_string()))?;
    let base_fee = u64::try_from(st.param(&params::MIN_BASE_FEE)?).unwrap_or(u64::MAX);
    let gas_limit = u64::try_from(st.param(&params::BLOCK_GAS_LIMIT)?).unwrap_or(u64::MAX);
    let writes = st.into_writes();
    let root = genesis_root(&writes)?;
    let header = Header {
        parent_hash: B256::ZERO,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: VALIDATOR_REWARD_POOL,
        state_root: root.root,
        transactions_root: transactions_root(&[]),
        receipts_root: receipts_root(&[]),
        number: 0,
        gas_limit,
        gas_used: 0,
        timestamp: g.timestamp,
        extra_data: Bytes::from_static(EXTRA_DATA),
        base_fee_per_gas: Some(base_fee),
        ..Default::default()
    };
    Ok(BuiltBlock { record: BlockRecord::empty(header), update: root, rejected: vec![] })
}

/// The genesis state update, computed in a throwaway in-memory store so that the
/// genesis hash can be checked before touching the real one.
fn genesis_root(writes: &std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Result<StateUpdate, ChainError> {
    let store = Store::in_memory(StoreOptions { durable: false, cache_bytes: 1 << 20, history: 1 })?;
    Ok(store.prepare(0, writes)?)
}

/// Seconds since the epoch by this node's clock.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Seconds since the epoch, never before the parent's timestamp.
fn timestamp_after(parent: &Header) -> u64 {
    now_secs().max(parent.timestamp)
}

/// Execute `candidates` on top of `parent` (state from `base`). With `strict`,
/// every candidate must apply (replay); otherwise those that cannot are skipped
/// (and reported in `rejected` when they never could).
pub fn build_block(
    store: &Store,
    base: &dyn StateRead,
    chain_id: u64,
    parent: &Header,
    parent_hash: B256,
    timestamp: u64,
    candidates: &[Arc<SignedTransaction>],
    strict: bool,
    seal: Seal<'_>,
) -> Result<BuiltBlock, ChainError> {
    let number = parent.number + 1;
    let min_base_fee = u64::try_from(base.param(&params::MIN_BASE_FEE)?).unwrap_or(u64::MAX);
    let gas_limit = u64::try_from(base.param(&params::BLOCK_GAS_LIMIT)?).unwrap_or(u64::MAX);
    let base_fee = next_base_fee(parent.gas_used, parent.gas_limit, parent.base_fee_per_gas.unwrap_or(0), min_base_fee);
    let env = BlockEnv {
        chain_id,
        number,
        timestamp,
        base_fee,
        gas_limit,
        coinbase: VALIDATOR_REWARD_POOL,
        last_commit: seal.last_commit(),
    };
    let mut st = Overlay::new(base);
    runtime::begin_block(&mut st, &env)?;
    let mut receipts: Vec<Receipt> = Vec::new();
    let mut included: Vec<Arc<SignedTransaction>> = Vec::new();
    let mut rejected = Vec::new();
    let mut gas_used = 0u64;
    let mut skip_senders: std::collections::HashSet<Address> = Default::default();
    for tx in candidates {
        if skip_senders.contains(&tx.sender) {
            continue;
        }
        match runtime::apply_transaction(&mut st, &env, tx, gas_used) {
            Ok(r) => {
                gas_used = r.cumulative_gas_used;
                receipts.push(r);
                included.push(tx.clone());
            }
            Err(ApplyError::Fatal(e)) => return Err(e.into()),
            Err(e) => {
                if strict {
                    return Err(ChainError::Diverged { block: number, what: format!("transaction {}: {e}", tx.hash) });
                }
                match e {
                    ApplyError::NonceMismatch { expected, got } if got < expected => rejected.push(tx.hash),
                    e if e.is_retryable() => {}
                    _ => rejected.push(tx.hash),
                }
                // Later nonces of this sender cannot apply in this block either.
                skip_senders.insert(tx.sender);
            }
        }
    }
    runtime::end_block(&mut st, &env)?;
    let writes = st.into_writes();
    let update = store.prepare(number, &writes)?;
    let txs: Vec<SignedTransaction> = included.iter().map(|t| (**t).clone()).collect();
    let header = Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: VALIDATOR_REWARD_POOL,
        state_root: update.root,
        transactions_root: transactions_root(&txs),
        receipts_root: receipts_root(&receipts),
        logs_bloom: logs_bloom(receipts.iter().flat_map(|r| r.logs.iter())),
        number,
        gas_limit,
        gas_used,
        timestamp,
        extra_data: seal.extra_data(),
        base_fee_per_gas: Some(base_fee),
        ..Default::default()
    };
    let hash = header.hash_slow();
    let last_commit = match seal {
        Seal::Bft { last_commit: Some(c) } => Some(c.encode()),
        _ => None,
    };
    let record = BlockRecord {
        header,
        hash,
        txs: txs.iter().map(|t| StoredTx { raw: t.raw.clone(), sender: t.sender }).collect(),
        tx_hashes: txs.iter().map(|t| t.hash).collect(),
        receipts,
        certificate: None,
        last_commit,
    };
    Ok(BuiltBlock { record, update, rejected })
}

/// Produce one block from the pool and commit it. With `allow_empty` false,
/// nothing is produced (`Ok(None)`) when no pooled transaction is executable.
pub(crate) fn produce(chain: &Core, allow_empty: bool) -> Result<Option<u64>, ChainError> {
    let _guard = chain.producing.lock().unwrap();
    let head = chain.head();
    if !allow_empty && !has_candidates(chain, &head)? {
        return Ok(None);
    }
    let built = build_from_pool(chain, &head, Seal::Dev)?;
    let number = built.record.header.number;
    chain.store.commit(&built.record, built.update)?;
    after_commit(chain, &built.record, &built.rejected)?;
    Ok(Some(number))
}

/// Whether the pool holds a transaction executable on `head`.
fn has_candidates(chain: &Core, head: &Head) -> Result<bool, ChainError> {
    let snap = chain.store.snapshot()?;
    let pool = chain.pool.lock().unwrap();
    Ok(!pool.best(head.next_base_fee, 1, |a| account_of(&snap, a).map(|x| x.nonce).unwrap_or(0)).is_empty())
}

/// Build the block above `head` from the pool's best transactions (queued
/// ones past their lifetime dropped first), stamped with this node's clock.
pub(crate) fn build_from_pool(chain: &Core, head: &Head, seal: Seal<'_>) -> Result<BuiltBlock, ChainError> {
    let expired = chain.pool.lock().unwrap().expire_queued(Instant::now());
    if expired > 0 {
        tracing::info!(expired, "dropped queued (future-nonce) transactions past their lifetime");
    }
    let snap = chain.store.snapshot()?;
    let candidates = {
        let pool = chain.pool.lock().unwrap();
        pool.best(head.next_base_fee, chain.cfg.max_txs_per_block, |a| {
            account_of(&snap, a).map(|x| x.nonce).unwrap_or(0)
        })
    };
    build_block(
        &chain.store,
        &snap,
        chain.chain_id(),
        &head.header,
        head.hash,
        timestamp_after(&head.header),
        &candidates,
        false,
        seal,
    )
}

/// After `record` committed: announce the new head, then clean the pool of
/// what the block included and of `rejected`, and compact the journal.
pub(crate) fn after_commit(chain: &Core, record: &BlockRecord, rejected: &[B256]) -> Result<(), ChainError> {
    chain.announce(crate::load_head(&chain.store)?);
    let snap = chain.store.snapshot()?;
    let mut senders: Vec<Address> = record.txs.iter().map(|t| t.sender).collect();
    senders.sort();
    senders.dedup();
    let compact = {
        let mut pool = chain.pool.lock().unwrap();
        for h in rejected {
            pool.remove(h);
        }
        for s in &senders {
            let n = account_of(&snap, s)?.nonce;
            pool.prune_sender(s, n);
        }
        // Rewrite the journal when it holds mostly included transactions. Queued
        // under the pool lock so no acknowledged append can fall between the
        // snapshot of the pool and the rewrite.
        if chain.journal.frames() > 2 * pool.len() + 4096 { Some(chain.journal.rewrite(pool.all_raw())) } else { None }
    };
    drop(compact); // the writer thread completes it; its result only matters for the next restart
    Ok(())
}

/// The producer loop, until [`crate::Chain::stop`]: it waits on `wake`, which
/// [`crate::Chain::submit`] signals and `stop` disconnects.
pub(crate) fn run(chain: Arc<Core>, wake: Receiver<()>) {
    let mut next = Instant::now();
    while !chain.stopped() {
        let wait = step(&chain, &mut next);
        if !wait.is_zero() && wake.recv_timeout(wait) == Err(RecvTimeoutError::Disconnected) {
            return;
        }
    }
}

/// One turn of the producer: produce if it is time; how long to wait before the next turn.
fn step(chain: &Core, next: &mut Instant) -> Duration {
    const IDLE: Duration = Duration::from_millis(500);
    const AFTER_ERROR: Duration = Duration::from_millis(200);
    match chain.cfg.block_time {
        BlockTime::Instant => {
            if chain.pool.lock().unwrap().is_empty() {
                return IDLE;
            }
            match produce(chain, false) {
                Ok(Some(_)) => Duration::ZERO,
                // Nothing executable (gapped nonces or fee caps under the base fee): wait for news.
                Ok(None) => IDLE,
                Err(e) => {
                    tracing::error!("block production failed: {e}");
                    AFTER_ERROR
                }
            }
        }
        BlockTime::Interval(ms) => {
            let now = Instant::now();
            if now < *next {
                return *next - now;
            }
            *next = now + Duration::from_millis(ms);
            if let Err(e) = produce(chain, true) {
                tracing::error!("block production failed: {e}");
            }
            Duration::ZERO
        }
        // Never started in manual or external mode; wait for stop.
        BlockTime::Manual | BlockTime::External => Duration::MAX,
    }
}

/// Re-execute every block of `store` from genesis in a scratch store under
/// `scratch_dir`, checking each block's receipts and state root. Returns the
/// number of blocks checked.
pub fn replay(store: &Store, genesis: &Genesis, scratch_dir: &std::path::Path) -> Result<u64, ChainError> {
    let snap = store.snapshot()?;
    let head = snap.head()?.unwrap_or(0);
    let scratch = Store::open(
        &scratch_dir.join("replay.redb"),
        StoreOptions { durable: false, history: 2, ..Default::default() },
    )?;
    let g = genesis_block(genesis)?;
    let stored0 = snap.header(0)?.ok_or(storage::StorageError::MissingBlock(0))?;
    if stored0.hash_slow() != g.record.hash {
        return Err(ChainError::Diverged { block: 0, what: "genesis differs".into() });
    }
    scratch.commit(&g.record, g.update)?;
    let mut parent = stored0;
    for n in 1..=head {
        let header = snap.header(n)?.ok_or(storage::StorageError::MissingBlock(n))?;
        let body = snap.body(n)?.ok_or(storage::StorageError::MissingBlock(n))?;
        let txs: Vec<Arc<SignedTransaction>> = body
            .into_iter()
            .map(|t| SignedTransaction::from_trusted(t.raw, t.sender).map(Arc::new))
            .collect::<Result<_, _>>()
            .map_err(|e| ChainError::Diverged { block: n, what: e.to_string() })?;
        let last_commit = match snap.last_commit(n)? {
            Some(b) => Some(
                CommitCertificate::decode(&b).map_err(|e| ChainError::Diverged { block: n, what: e.to_string() })?,
            ),
            None => None,
        };
        let seal = if is_bft_header(&header) { Seal::Bft { last_commit: last_commit.as_ref() } } else { Seal::Dev };
        let base = scratch.snapshot()?;
        let built = build_block(
            &scratch,
            &base,
            genesis.chain_id,
            &parent,
            parent.hash_slow(),
            header.timestamp,
            &txs,
            true,
            seal,
        )?;
        drop(base);
        if built.record.header.state_root != header.state_root {
            return Err(ChainError::Diverged {
                block: n,
                what: format!(
                    "state root {} (replayed) != {} (stored)",
                    built.record.header.state_root, header.state_root
                ),
            });
        }
        if built.record.hash != header.hash_slow() {
            return Err(ChainError::Diverged { block: n, what: "block hash differs".into() });
        }
        let stored_receipts = snap.receipts(n)?.unwrap_or_default();
        if stored_receipts != built.record.receipts {
            return Err(ChainError::Diverged { block: n, what: "receipts differ".into() });
        }
        scratch.commit(&built.record, built.update)?;
        parent = header;
    }
    Ok(head)
}

/// Re-execute the block of transaction `hash` up to it on the state before
/// the block, and trace it (`debug_traceTransaction`). `None` if no committed
/// block holds it; an error if the state before its block was pruned.
pub fn trace(store: &Store, chain_id: u64, hash: &B256) -> Result<Option<primitives::trace::CallFrame>, ChainError> {
    let snap = store.snapshot()?;
    let Some(loc) = snap.tx_location(hash)? else { return Ok(None) };
    let n = loc.block;
    let oldest = snap.oldest_state()?;
    if n == 0 || n - 1 < oldest {
        return Err(ChainError::Pruned(format!(
            "the state before block {n} was pruned (history kept from block {oldest}): raise [chain] history to trace it"
        )));
    }
    let header = snap.header(n)?.ok_or(storage::StorageError::MissingBlock(n))?;
    let body = snap.body(n)?.ok_or(storage::StorageError::MissingBlock(n))?;
    let last_commit = match snap.last_commit(n)? {
        Some(b) => {
            Some(CommitCertificate::decode(&b).map_err(|e| ChainError::Diverged { block: n, what: e.to_string() })?)
        }
        None => None,
    };
    let seal = if is_bft_header(&header) { Seal::Bft { last_commit: last_commit.as_ref() } } else { Seal::Dev };
    let env = BlockEnv {
        chain_id,
        number: n,
        timestamp: header.timestamp,
        base_fee: header.base_fee_per_gas.unwrap_or(0),
        gas_limit: header.gas_limit,
        coinbase: VALIDATOR_REWARD_POOL,
        last_commit: seal.last_commit(),
    };
    let base = crate::HistoricState { snap: &snap, version: n - 1 };
    let mut st = Overlay::new(&base);
    runtime::begin_block(&mut st, &env)?;
    let mut used = 0;
    let diverged = |e: String| ChainError::Diverged { block: n, what: e };
    for (i, t) in body.into_iter().enumerate() {
        let tx = SignedTransaction::from_trusted(t.raw, t.sender).map_err(|e| diverged(e.to_string()))?;
        if i as u32 == loc.index {
            return runtime::trace_transaction(&mut st, &env, &tx, used).map(Some).map_err(|e| diverged(e.to_string()));
        }
        used = runtime::apply_transaction(&mut st, &env, &tx, used)
            .map_err(|e| diverged(e.to_string()))?
            .cumulative_gas_used;
    }
    Err(diverged(format!("transaction {hash} is not at index {} of its block", loc.index)))
}

impl Head {
    pub fn number(&self) -> u64 {
        self.header.number
    }
}
