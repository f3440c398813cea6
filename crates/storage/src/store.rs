//! The redb file: tables, the jmt adapter, atomic block commits and pruning.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use alloy_rlp::{Decodable, Encodable};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{OwnedValue, Sha256Jmt, Version};
use primitives::B256;
use primitives::block::{Header, Receipt, StoredTx};
use redb::{Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use crate::history::{HISTORY, index_block, next_unindexed};
use crate::state::{KeyHash, StateProof, StateRead, key_hash};
use crate::{Result, StorageError};

/// "head", "oldest", "indexed" (the history index's next block; u64 BE), "history_format" (u64 BE); "genesis" (32 bytes) on a store imported from a
/// snapshot, which holds no block 0.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// borsh(NodeKey) → borsh(Node)
pub(crate) const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
/// key hash ‖ version BE → 0x00 (deleted) | 0x01 ‖ value
pub(crate) const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_values");
/// key hash → version BE ‖ 0x00 | 0x01 ‖ value: the newest value of every key.
pub(crate) const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest");
/// key hash → state key: the preimage of every key ever written (never pruned),
/// so the state can be exported with its keys (the tree holds only their hashes).
pub(crate) const PREIMAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("key_preimages");
/// stale-since version BE ‖ borsh(NodeKey)
const STALE_NODES: TableDefinition<&[u8], ()> = TableDefinition::new("stale_nodes");
/// stale-since version BE ‖ key hash ‖ old version BE
const STALE_VALUES: TableDefinition<&[u8], ()> = TableDefinition::new("stale_values");
pub(crate) const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
pub(crate) const HASHES: TableDefinition<&[u8], u64> = TableDefinition::new("block_hashes");
const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
/// tx hash → block number BE ‖ index BE (u32)
const TX_LOOKUP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tx_lookup");
/// block number → the block's commit certificate (opaque here; `primitives::consensus`).
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
/// block number → the previous block's commit certificate that this block carries.
const LAST_COMMITS: TableDefinition<u64, &[u8]> = TableDefinition::new("last_commits");

/// Most stale entries removed per block, so pruning never stalls a commit.
const PRUNE_PER_BLOCK: usize = 50_000;

/// How the store behaves.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Versions of state kept for historical reads and proofs (the latest is always kept).
    pub history: u64,
    /// redb page cache in bytes.
    pub cache_bytes: usize,
    /// fsync every commit. Off only for benchmarks of the Merkle layer itself.
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { history: 10_000, cache_bytes: 256 << 20, durable: true }
    }
}

/// Where a transaction sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    pub block: u64,
    pub index: u32,
}

/// Everything a block commit writes besides state.
#[derive(Clone, Debug)]
pub struct BlockRecord {
    pub header: Header,
    pub hash: B256,
    pub txs: Vec<StoredTx>,
    pub tx_hashes: Vec<B256>,
    pub receipts: Vec<Receipt>,
    /// The proof consensus decided the block (its commit certificate), stored
    /// beside it in the same transaction; `None` for blocks sealed without consensus.
    pub certificate: Option<Vec<u8>>,
    /// The previous block's commit certificate, carried in this block (part
    /// of what its header commits to); `None` for blocks that carry none.
    pub last_commit: Option<Vec<u8>>,
}

impl BlockRecord {
    /// A block without transactions, receipts or certificates (genesis, tests).
    pub fn empty(header: Header) -> BlockRecord {
        BlockRecord {
            hash: header.hash_slow(),
            header,
            txs: vec![],
            tx_hashes: vec![],
            receipts: vec![],
            certificate: None,
            last_commit: None,
        }
    }
}

/// A computed, not yet committed, state transition.
pub struct StateUpdate {
    pub version: u64,
    pub root: B256,
    batch: jmt::storage::TreeUpdateBatch,
    /// (key hash, state key, new value or `None` for a deletion)
    writes: Vec<(KeyHash, Vec<u8>, Option<Vec<u8>>)>,
}

/// The database.
pub struct Store {
    pub(crate) db: Database,
    opts: StoreOptions,
    /// Declared last: dropped after `db`, so it tells that the file is closed.
    open: OpenFile,
}

/// Tells when a [`Store`]'s file is closed, so it can be opened again. The
/// store may be dropped on another thread, and redb writes its shutdown header
/// while dropping: waiting on this, not on a reference count, is what makes
/// "stopped" mean "the directory is free".
#[derive(Clone, Debug)]
pub struct Closed(Arc<(Mutex<bool>, Condvar)>);

impl Closed {
    /// Whether the file is closed now.
    pub fn is_closed(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until the file is closed, at most `timeout`; whether it is.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv.wait_timeout_while(guard, timeout, |closed| !*closed).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Held by the store; dropped after its database, it fires [`Closed`].
#[derive(Debug)]
struct OpenFile(Closed);

impl Drop for OpenFile {
    fn drop(&mut self) {
        let (lock, cv) = &*(self.0).0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

pub(crate) fn be8(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub(crate) fn value_key(kh: &KeyHash, version: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&kh.0);
    k[32..].copy_from_slice(&be8(version));
    k
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

fn decode_opt_value(b: &[u8]) -> Result<Option<Vec<u8>>> {
    match b.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, rest)) => Ok(Some(rest.to_vec())),
        _ => Err(corrupt("value encoding")),
    }
}

impl Store {
    /// Open or create the database file at `path` (and its directory). A file
    /// another `Store` holds open is refused ([`StorageError::InUse`]), and one
    /// that is not a database ([`StorageError::Unreadable`]), naming the file.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Db(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::builder().set_cache_size(opts.cache_bytes).create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse(path.to_path_buf()),
            e => StorageError::Unreadable { path: path.to_path_buf(), reason: e.to_string() },
        })?;
        Self::init(db, opts)
    }

    /// A store that lives in memory only (genesis computation, tests).
    pub fn in_memory(opts: StoreOptions) -> Result<Store> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, opts)
    }

    fn init(db: Database, opts: StoreOptions) -> Result<Store> {
        // Create every table so that readers never meet a missing one.
        let w = db.begin_write()?;
        {
            w.open_table(META)?;
            w.open_table(NODES)?;
            w.open_table(VALUES)?;
            w.open_table(LATEST)?;
            w.open_table(PREIMAGES)?;
            w.open_table(STALE_NODES)?;
            w.open_table(STALE_VALUES)?;
            w.open_table(HEADERS)?;
            w.open_table(HASHES)?;
            w.open_table(BODIES)?;
            w.open_table(RECEIPTS)?;
            w.open_table(TX_LOOKUP)?;
            w.open_table(CERTIFICATES)?;
            w.open_table(LAST_COMMITS)?;
            w.open_table(HISTORY)?;
        }
        crate::history::upgrade(&w)?;
        w.commit()?;
        let open = OpenFile(Closed(Arc::new((Mutex::new(false), Condvar::new()))));
        Ok(Store { db, opts, open })
    }

    /// What tells when this store's file is closed (see [`Closed`]).
    pub fn closed(&self) -> Closed {
        self.open.0.clone()
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// A consistent read view of the latest committed block and state.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::new(self.db.begin_read()?)
    }

    /// The newest committed block number, if any block was committed.
    pub fn head(&self) -> Result<Option<u64>> {
        self.snapshot()?.head()
    }

    /// Compute the state root after applying `writes` (key → new value, `None` deletes)
    /// to the latest state as version `version`. Nothing is written yet.
    pub fn prepare(&self, version: u64, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Result<StateUpdate> {
        let snap = self.snapshot()?;
        if let Some(h) = snap.head()?
            && version != h + 1
        {
            return Err(StorageError::Tree(format!("version {version} does not follow head {h}")));
        }
        let writes: Vec<(KeyHash, Vec<u8>, Option<Vec<u8>>)> =
            writes.iter().map(|(k, v)| (key_hash(k), k.clone(), v.clone())).collect();
        let tree = Sha256Jmt::new(&snap);
        let (root, batch) = tree
            .put_value_set(writes.iter().map(|(kh, _, v)| (*kh, v.clone())), version)
            .map_err(|e| StorageError::Tree(e.to_string()))?;
        Ok(StateUpdate { version, root: B256::from(root.0), batch, writes })
    }

    /// Store `certificate` as block `number`'s commit certificate (a block
    /// committed before its certificate was known, e.g. a snapshot's).
    pub fn put_certificate(&self, number: u64, certificate: &[u8]) -> Result<()> {
        let w = self.db.begin_write()?;
        w.open_table(CERTIFICATES)?.insert(number, certificate)?;
        w.commit()?;
        Ok(())
    }

    /// Atomically write a block, its receipts and its state update; prune history
    /// beyond the window. Durable when this returns (unless `durable` is off).
    pub fn commit(&self, block: &BlockRecord, update: StateUpdate) -> Result<()> {
        let version = update.version;
        if block.header.number != version {
            return Err(StorageError::Tree("block number and state version differ".into()));
        }
        let mut w = self.db.begin_write()?;
        w.set_durability(if self.opts.durable { Durability::Immediate } else { Durability::None })
            .map_err(|e| StorageError::Db(e.to_string()))?;
        {
            let mut nodes = w.open_table(NODES)?;
            for (k, n) in update.batch.node_batch.nodes() {
                nodes.insert(borsh::to_vec(k).unwrap().as_slice(), borsh::to_vec(n).unwrap().as_slice())?;
            }
            let mut stale = w.open_table(STALE_NODES)?;
            for s in &update.batch.stale_node_index_batch {
                let mut key = be8(s.stale_since_version).to_vec();
                key.extend_from_slice(&borsh::to_vec(&s.node_key).unwrap());
                stale.insert(key.as_slice(), ())?;
            }
            let mut values = w.open_table(VALUES)?;
            let mut latest = w.open_table(LATEST)?;
            let mut stale_values = w.open_table(STALE_VALUES)?;
            let mut preimages = w.open_table(PREIMAGES)?;
            for (kh, key, v) in &update.writes {
                let prev = latest.get(kh.0.as_slice())?.map(|g| {
                    let b = g.value();
                    u64::from_be_bytes(b[..8].try_into().unwrap())
                });
                match prev {
                    Some(u) => {
                        let mut sk = be8(version).to_vec();
                        sk.extend_from_slice(&kh.0);
                        sk.extend_from_slice(&be8(u));
                        stale_values.insert(sk.as_slice(), ())?;
                    }
                    // A key seen for the first time: keep its preimage.
                    None => {
                        preimages.insert(kh.0.as_slice(), key.as_slice())?;
                    }
                }
                let mut enc = Vec::with_capacity(1 + v.as_ref().map_or(0, Vec::len));
                match v {
                    Some(b) => {
                        enc.push(1);
                        enc.extend_from_slice(b);
                    }
                    None => enc.push(0),
                }
                values.insert(value_key(kh, version).as_slice(), enc.as_slice())?;
                let mut l = be8(version).to_vec();
                l.extend_from_slice(&enc);
                latest.insert(kh.0.as_slice(), l.as_slice())?;
            }
            let mut headers = w.open_table(HEADERS)?;
            let mut hbuf = Vec::new();
            block.header.encode(&mut hbuf);
            headers.insert(version, hbuf.as_slice())?;
            w.open_table(HASHES)?.insert(block.hash.as_slice(), version)?;
            let mut bbuf = Vec::new();
            block.txs.encode(&mut bbuf);
            w.open_table(BODIES)?.insert(version, bbuf.as_slice())?;
            let mut rbuf = Vec::new();
            block.receipts.encode(&mut rbuf);
            w.open_table(RECEIPTS)?.insert(version, rbuf.as_slice())?;
            if let Some(c) = &block.certificate {
                w.open_table(CERTIFICATES)?.insert(version, c.as_slice())?;
            }
            if let Some(c) = &block.last_commit {
                w.open_table(LAST_COMMITS)?.insert(version, c.as_slice())?;
            }
            let mut lookup = w.open_table(TX_LOOKUP)?;
            for (i, h) in block.tx_hashes.iter().enumerate() {
                let mut loc = be8(version).to_vec();
                loc.extend_from_slice(&(i as u32).to_be_bytes());
                lookup.insert(h.as_slice(), loc.as_slice())?;
            }
            // The index is written with the block unless it has blocks to
            // catch up on first (a store from before it: `index_history`).
            if next_unindexed(&w)? == version {
                index_block(&w, version, &block.txs, &block.receipts)?;
            }
            let mut meta = w.open_table(META)?;
            meta.insert("head", be8(version).as_slice())?;
            if version > self.opts.history {
                let cutoff = version - self.opts.history;
                prune(&mut nodes, &mut stale, &mut values, &mut stale_values, cutoff)?;
                // Never below where the state begins (a store imported from a
                // snapshot holds nothing older than its height).
                let oldest = match meta.get("oldest")? {
                    Some(g) => u64::from_be_bytes(g.value().try_into().map_err(|_| corrupt("meta"))?),
                    None => 0,
                };
                if cutoff > oldest {
                    meta.insert("oldest", be8(cutoff).as_slice())?;
                }
            }
        }
        w.commit()?;
        Ok(())
    }
}

fn prune(
    nodes: &mut redb::Table<&[u8], &[u8]>,
    stale: &mut redb::Table<&[u8], ()>,
    values: &mut redb::Table<&[u8], &[u8]>,
    stale_values: &mut redb::Table<&[u8], ()>,
    cutoff: u64,
) -> Result<()> {
    let end = be8(cutoff + 1);
    let mut done = Vec::new();
    for e in stale.range::<&[u8]>(..end.as_slice())?.take(PRUNE_PER_BLOCK) {
        done.push(e?.0.value().to_vec());
    }
    for k in &done {
        nodes.remove(&k[8..])?;
        stale.remove(k.as_slice())?;
    }
    done.clear();
    for e in stale_values.range::<&[u8]>(..end.as_slice())?.take(PRUNE_PER_BLOCK) {
        done.push(e?.0.value().to_vec());
    }
    for k in &done {
        let kh = KeyHash(k[8..40].try_into().unwrap());
        let old = u64::from_be_bytes(k[40..48].try_into().unwrap());
        values.remove(value_key(&kh, old).as_slice())?;
        stale_values.remove(k.as_slice())?;
    }
    Ok(())
}

/// A consistent read view (an MVCC read transaction) of blocks and state.
pub struct Snapshot {
    _txn: ReadTransaction,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: ReadOnlyTable<&'static [u8], &'static [u8]>,
    latest: ReadOnlyTable<&'static [u8], &'static [u8]>,
    preimages: ReadOnlyTable<&'static [u8], &'static [u8]>,
    headers: ReadOnlyTable<u64, &'static [u8]>,
    hashes: ReadOnlyTable<&'static [u8], u64>,
    bodies: ReadOnlyTable<u64, &'static [u8]>,
    receipts: ReadOnlyTable<u64, &'static [u8]>,
    lookup: ReadOnlyTable<&'static [u8], &'static [u8]>,
    certificates: ReadOnlyTable<u64, &'static [u8]>,
    last_commits: ReadOnlyTable<u64, &'static [u8]>,
    pub(crate) history: ReadOnlyTable<&'static [u8], u8>,
}

impl Snapshot {
    fn new(txn: ReadTransaction) -> Result<Snapshot> {
        Ok(Snapshot {
            meta: txn.open_table(META)?,
            nodes: txn.open_table(NODES)?,
            values: txn.open_table(VALUES)?,
            latest: txn.open_table(LATEST)?,
            preimages: txn.open_table(PREIMAGES)?,
            headers: txn.open_table(HEADERS)?,
            hashes: txn.open_table(HASHES)?,
            bodies: txn.open_table(BODIES)?,
            receipts: txn.open_table(RECEIPTS)?,
            lookup: txn.open_table(TX_LOOKUP)?,
            certificates: txn.open_table(CERTIFICATES)?,
            last_commits: txn.open_table(LAST_COMMITS)?,
            history: txn.open_table(HISTORY)?,
            _txn: txn,
        })
    }

    pub(crate) fn meta_u64(&self, k: &str) -> Result<Option<u64>> {
        Ok(match self.meta.get(k)? {
            Some(g) => Some(u64::from_be_bytes(g.value().try_into().map_err(|_| corrupt("meta"))?)),
            None => None,
        })
    }

    /// The newest committed block number.
    pub fn head(&self) -> Result<Option<u64>> {
        self.meta_u64("head")
    }

    /// The oldest version whose state can still be read and proven. On a store
    /// imported from a snapshot, never below the snapshot's height.
    pub fn oldest_state(&self) -> Result<u64> {
        Ok(self.meta_u64("oldest")?.unwrap_or(0))
    }

    /// The hash of the chain's block 0: block 0's own hash, or, on a store
    /// imported from a snapshot (which holds no block 0), the one the snapshot
    /// named. `None` on an empty store.
    pub fn genesis_hash(&self) -> Result<Option<B256>> {
        if let Some(g) = self.meta.get("genesis")? {
            return Ok(Some(B256::try_from(g.value()).map_err(|_| corrupt("genesis hash"))?));
        }
        Ok(self.header(0)?.map(|h| h.hash_slow()))
    }

    /// The first block whose header this store holds: 0, or the height of the
    /// snapshot it was imported from (blocks below it were never stored).
    pub fn first_block(&self) -> Result<u64> {
        Ok(self.meta_u64("first_block")?.unwrap_or(0))
    }

    /// The state key whose tree key is `kh`, if it was ever written here.
    pub(crate) fn preimage(&self, kh: &KeyHash) -> Result<Option<Vec<u8>>> {
        Ok(self.preimages.get(kh.0.as_slice())?.map(|g| g.value().to_vec()))
    }

    pub fn header(&self, number: u64) -> Result<Option<Header>> {
        match self.headers.get(number)? {
            Some(g) => Ok(Some(Header::decode(&mut g.value()).map_err(|_| corrupt("header"))?)),
            None => Ok(None),
        }
    }

    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>> {
        Ok(self.hashes.get(hash.as_slice())?.map(|g| g.value()))
    }

    pub fn body(&self, number: u64) -> Result<Option<Vec<StoredTx>>> {
        match self.bodies.get(number)? {
            Some(g) => Ok(Some(Vec::<StoredTx>::decode(&mut g.value()).map_err(|_| corrupt("body"))?)),
            None => Ok(None),
        }
    }

    pub fn receipts(&self, number: u64) -> Result<Option<Vec<Receipt>>> {
        match self.receipts.get(number)? {
            Some(g) => Ok(Some(Vec::<Receipt>::decode(&mut g.value()).map_err(|_| corrupt("receipts"))?)),
            None => Ok(None),
        }
    }

    /// The commit certificate stored with block `number` (consensus-decided blocks only).
    pub fn certificate(&self, number: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.certificates.get(number)?.map(|g| g.value().to_vec()))
    }

    /// The previous block's certificate that block `number` carries, if any.
    pub fn last_commit(&self, number: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.last_commits.get(number)?.map(|g| g.value().to_vec()))
    }

    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>> {
        Ok(match self.lookup.get(hash.as_slice())? {
            Some(g) => {
                let b = g.value();
                if b.len() != 12 {
                    return Err(corrupt("tx lookup"));
                }
                Some(TxLocation {
                    block: u64::from_be_bytes(b[..8].try_into().unwrap()),
                    index: u32::from_be_bytes(b[8..].try_into().unwrap()),
                })
            }
            None => None,
        })
    }

    pub(crate) fn check_version(&self, version: u64) -> Result<()> {
        let oldest = self.oldest_state()?;
        let head = self.head()?.unwrap_or(0);
        if version < oldest || version > head {
            return Err(StorageError::Pruned(version, oldest));
        }
        Ok(())
    }

    /// The newest value of `key`.
    pub fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.latest.get(key_hash(key).0.as_slice())? {
            Some(g) => decode_opt_value(&g.value()[8..]),
            None => Ok(None),
        }
    }

    /// The value of `key` as of block `version`.
    pub fn get_at(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>> {
        self.check_version(version)?;
        self.get_value_option(version, key_hash(key)).map_err(|e| StorageError::Tree(e.to_string()))
    }

    /// The state root after block `version`.
    pub fn state_root(&self, version: u64) -> Result<B256> {
        let tree = Sha256Jmt::new(self);
        let r = tree.get_root_hash(version).map_err(|e| StorageError::Tree(e.to_string()))?;
        Ok(B256::from(r.0))
    }

    /// The value of `key` at `version` with a proof against that version's state root.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<StateProof> {
        self.check_version(version)?;
        let tree = Sha256Jmt::new(self);
        let (value, proof) =
            tree.get_with_proof(key_hash(key), version).map_err(|e| StorageError::Tree(e.to_string()))?;
        let root = self.state_root(version)?;
        Ok(StateProof { version, root, key: key.to_vec(), value, proof })
    }
}

/// The latest state.
impl StateRead for Snapshot {
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, primitives::state::StateError> {
        self.get_latest(key).map_err(|e| primitives::state::StateError(e.to_string()))
    }
}

impl TreeReader for Snapshot {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let k = borsh::to_vec(node_key)?;
        match self.nodes.get(k.as_slice())? {
            Some(g) => Ok(Some(borsh::from_slice(g.value())?)),
            None => Ok(None),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let lo = value_key(&key_hash, 0);
        let hi = value_key(&key_hash, max_version);
        match self.values.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?.next_back() {
            Some(e) => Ok(decode_opt_value(e?.1.value())?),
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("state restore from a snapshot is not supported")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::block::Header;

    fn record(n: u64) -> BlockRecord {
        let header = Header { number: n, ..Default::default() };
        BlockRecord::empty(header)
    }

    fn put(store: &Store, n: u64, kv: &[(&[u8], Option<&[u8]>)]) -> B256 {
        let w: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            kv.iter().map(|(k, v)| (k.to_vec(), v.map(|x| x.to_vec()))).collect();
        let u = store.prepare(n, &w).unwrap();
        let root = u.root;
        store.commit(&record(n), u).unwrap();
        root
    }

    #[test]
    fn versions_proofs_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, StoreOptions { history: 3, ..Default::default() }).unwrap();
        let r0 = put(&store, 0, &[(b"a", Some(b"1")), (b"b", Some(b"2"))]);
        let r1 = put(&store, 1, &[(b"a", Some(b"3"))]);
        assert_ne!(r0, r1);
        let s = store.snapshot().unwrap();
        assert_eq!(s.get_latest(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(s.get_at(b"a", 0).unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.state_root(0).unwrap(), r0);
        let p = s.prove(b"a", 0).unwrap();
        let bytes = p.proof_bytes();
        assert!(StateProof::verify_bytes(&r0, b"a", Some(b"1"), &bytes).is_ok());
        assert!(StateProof::verify_bytes(&r0, b"a", Some(b"3"), &bytes).is_err());
        assert!(StateProof::verify_bytes(&r1, b"a", Some(b"1"), &bytes).is_err());
        // Absence is provable too.
        let p = s.prove(b"zz", 1).unwrap();
        assert_eq!(p.value, None);
        assert!(StateProof::verify_bytes(&r1, b"zz", None, &p.proof_bytes()).is_ok());
        drop(s);
        put(&store, 2, &[(b"b", None)]);
        for n in 3..8 {
            put(&store, n, &[(b"a", Some(format!("{n}").as_bytes()))]);
        }
        let s = store.snapshot().unwrap();
        assert_eq!(s.get_latest(b"b").unwrap(), None);
        assert!(matches!(s.get_at(b"a", 1), Err(StorageError::Pruned(1, 4))));
        assert_eq!(s.get_at(b"a", 5).unwrap(), Some(b"5".to_vec()));
        assert!(s.prove(b"a", 4).is_ok());
        // Reopening keeps everything committed.
        drop(s);
        drop(store);
        let store = Store::open(&path, StoreOptions { history: 3, ..Default::default() }).unwrap();
        assert_eq!(store.head().unwrap(), Some(7));
        assert_eq!(store.snapshot().unwrap().get_latest(b"a").unwrap(), Some(b"7".to_vec()));
        assert!(store.prepare(9, &BTreeMap::new()).is_err());
    }
}
