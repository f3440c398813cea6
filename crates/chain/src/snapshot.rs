//! Joining from a state snapshot: the state after one block, exported from a
//! node's store, becomes a new data directory whose chain starts at that block,
//! so a node joining a long chain need not re-execute it from genesis.
//!
//! What is checked: the snapshot's chain id and genesis hash against the
//! configured genesis (before anything is written), then its state against its
//! header's state root (by `storage`). What is trusted: that header. Whoever
//! imports compares the printed block hash with one they trust (another node,
//! an explorer). A store made this way holds no block below the snapshot's
//! height, so it cannot be replayed from genesis ([`check_replayable`]).

use std::io::{Read, Write};
use std::path::Path;

use runtime::Genesis;
use storage::{SnapshotReader, SnapshotSummary, Store, StoreOptions};

use crate::{Chain, ChainError, producer};

/// The store file in a data directory.
const STORE_FILE: &str = "chain.redb";

impl Chain {
    /// Write the state after block `height` (the head or an older block
    /// within the retained history) to `out`. Reads one consistent view, so
    /// the chain keeps producing meanwhile.
    pub fn export_snapshot(&self, height: u64, out: &mut dyn Write) -> Result<SnapshotSummary, ChainError> {
        Ok(self.core.store.export_snapshot(height, self.chain_id(), out)?)
    }
}

/// Export the state after block `height` (`None`: the head) from the data
/// directory of a stopped node (its store opens only when no node holds it),
/// checking that it holds the chain of `genesis`.
pub fn export_snapshot(
    data_dir: &Path,
    genesis: &Genesis,
    height: Option<u64>,
    out: &mut dyn Write,
) -> Result<SnapshotSummary, ChainError> {
    let path = data_dir.join(STORE_FILE);
    if !path.exists() {
        return Err(ChainError::Genesis(format!(
            "{} holds no chain ({} is missing)",
            data_dir.display(),
            path.display()
        )));
    }
    let store = Store::open(&path, StoreOptions::default())?;
    let want = producer::genesis_block(genesis)?.record.hash;
    let stored = store.snapshot()?.genesis_hash()?;
    if stored != Some(want) {
        return Err(ChainError::Genesis(format!(
            "{} holds a different chain (genesis {}) than the configured genesis {want}",
            data_dir.display(),
            stored.unwrap_or_default()
        )));
    }
    let height = match height {
        Some(h) => h,
        None => store.head()?.ok_or(storage::StorageError::MissingBlock(0))?,
    };
    Ok(store.export_snapshot(height, genesis.chain_id, out)?)
}

/// Create the chain store of `data_dir` from the snapshot `src`, for a
/// following [`Chain::open`] with the same `genesis` to open at the
/// snapshot's height. Refuses a directory that already holds a chain, and a
/// snapshot of another chain (chain id or genesis hash) before writing
/// anything; on any refusal of the snapshot itself the new store is removed.
/// Other files (the configuration, `genesis.json`) may already be there.
pub fn import_snapshot(data_dir: &Path, genesis: &Genesis, src: impl Read) -> Result<SnapshotSummary, ChainError> {
    let path = data_dir.join(STORE_FILE);
    if path.exists() {
        return Err(ChainError::Genesis(format!(
            "{} already holds a chain ({}); import a snapshot into a new data directory",
            data_dir.display(),
            path.display()
        )));
    }
    let reader = SnapshotReader::open(src)?;
    let info = reader.info();
    if info.chain_id != genesis.chain_id {
        return Err(ChainError::Genesis(format!(
            "the snapshot is of chain id {}, the configured genesis is chain id {}",
            info.chain_id, genesis.chain_id
        )));
    }
    let want = producer::genesis_block(genesis)?.record.hash;
    if info.genesis_hash != want {
        return Err(ChainError::Genesis(format!(
            "the snapshot is of the chain with genesis {}, the configured genesis is {want}",
            info.genesis_hash
        )));
    }
    std::fs::create_dir_all(data_dir)?;
    let result = Store::open(&path, StoreOptions::default())
        .map_err(ChainError::from)
        .and_then(|store| Ok(store.import_snapshot(reader)?));
    if result.is_err() {
        // The store was closed when `result` was made; nothing of it is kept.
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Refuse a store that holds no block 0 (imported from a snapshot): replay
/// re-executes from genesis and has nothing to start from.
pub fn check_replayable(store: &Store) -> Result<(), ChainError> {
    let first = store.snapshot()?.first_block()?;
    if first > 0 {
        return Err(ChainError::Genesis(format!(
            "this chain was imported from a snapshot at block {first}: it holds no blocks below {first}, so it cannot be replayed from genesis"
        )));
    }
    Ok(())
}
