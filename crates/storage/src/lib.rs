//! The node's storage: one redb file holding the authenticated state (a
//! Jellyfish Merkle tree, sha256, one version per block), blocks, receipts and
//! indexes.
//!
//! Invariants:
//! - one block = one redb write transaction: state nodes, values, block, receipts,
//!   indexes and the head pointer commit together or not at all, so a crash at any
//!   instant recovers to the last committed block;
//! - state keys are arbitrary bytes chosen by runtime modules; the tree is keyed by
//!   `sha256(key)`; values are opaque canonical bytes;
//! - history older than the configured window is pruned: proofs and reads are
//!   served for the last `history` versions only; the latest state is always complete;
//! - the state key of every tree key ever written is kept (`key_preimages`), so
//!   the state at any retained version can be exported as a snapshot, and a
//!   store imported from one starts at its height: no block below it exists;
//! - the history index (transactions and logs by address, Datanet, model and
//!   contribution) is written in the block's transaction, so it covers exactly
//!   the committed blocks once caught up; bodies and receipts are never pruned,
//!   so neither is it.
//!
//! No JSON here: everything is RLP (blocks, receipts) or borsh (tree nodes).

mod history;
mod snapshot;
mod state;
mod store;

pub use history::IndexProgress;
pub use primitives::history::{
    HistoryCursor, HistoryEntry, HistoryPage, MAX_HISTORY_PAGE, ROLE_LOG, ROLE_RECIPIENT, ROLE_SENDER, Subject,
};
pub use snapshot::{
    CHUNK_ENTRIES, FORMAT_VERSION, MAGIC, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES, MAX_HEADER_BYTES, MAX_KEY_BYTES,
    MAX_PROOF_BYTES, MAX_VALUE_BYTES, SnapshotError, SnapshotInfo, SnapshotReader, SnapshotSummary,
};
pub use state::{KeyHash, StateError, StateProof, StateRead, key_hash};
pub use store::{BlockRecord, Closed, Snapshot, StateUpdate, Store, StoreOptions, TxLocation};

/// Storage errors. Corruption and I/O are fatal to the node; the caller reports them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Db(String),
    #[error("state tree: {0}")]
    Tree(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("version {0} is outside the retained history (oldest kept: {1})")]
    Pruned(u64, u64),
    #[error("block {0} not found")]
    MissingBlock(u64),
    /// The file is open already (a running node, or another `Store` in this process).
    #[error("{0} is in use (is a node already running on this data directory?)")]
    InUse(std::path::PathBuf),
    /// The file exists but cannot be opened as a database.
    #[error("cannot open {path} as the node's database: {reason}")]
    Unreadable { path: std::path::PathBuf, reason: String },
}

macro_rules! from_db {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self { StorageError::Db(e.to_string()) }
        }
    )*};
}
from_db!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
