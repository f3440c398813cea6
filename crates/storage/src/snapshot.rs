//! State snapshots: the whole state at one committed version written to a
//! stream, and a fresh store rebuilt from one, so a node joining a long chain
//! need not re-execute it from genesis.
//!
//! The file (all integers big-endian):
//!
//! ```text
//! magic "OLSNAP\r\n" | format u32 = 1 | chain id u64 | genesis hash [32]
//! | height u64 | header length u32 | header RLP
//! | frames: 0x01 key length u32, key, value length u32, value   (an entry)
//! |         0x02 length u32, borsh(SparseMerkleRangeProof)      (a chunk proof)
//! | 0x00 entry count u64 | sha256 of every byte before it [32]
//! ```
//!
//! Entries come in tree order (ascending `sha256(key)`), which is the order the
//! tree is rebuilt in; every at most [`CHUNK_ENTRIES`] entries a range proof
//! (the right-hand siblings of the chunk's last leaf) lets the importer check
//! everything read so far against the header's state root, so a bad value is
//! refused at its chunk, never after the whole file. The importer also checks
//! the sha256, the count, the bounds of every frame and that nothing follows
//! the trailer, and writes nothing unless all of it holds: one redb write
//! transaction, whose dirty pages redb spills to the file, so memory stays
//! bounded by one chunk plus the page cache.

use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::{Arc, Mutex};

use alloy_rlp::{Decodable, Encodable};
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeWriter};
use jmt::{JellyfishMerkleIterator, KeyHash, OwnedValue, RootHash, Sha256Jmt, Version};
use primitives::B256;
use primitives::block::Header;
use redb::{Durability, ReadableTable};
use sha2::{Digest, Sha256};

use crate::state::key_hash;
use crate::store::{HASHES, HEADERS, LATEST, META, NODES, PREIMAGES, VALUES, be8, value_key};
use crate::{StorageError, Store};

/// The first bytes of a snapshot file (`\r\n` catches text-mode mangling).
pub const MAGIC: [u8; 8] = *b"OLSNAP\r\n";
/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest header RLP accepted.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Largest state key accepted.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Largest state value accepted.
pub const MAX_VALUE_BYTES: usize = 16 << 20;
/// Largest chunk proof accepted (a proof has at most 256 siblings).
pub const MAX_PROOF_BYTES: usize = 32 << 10;
/// Entries the exporter puts between two proofs.
pub const CHUNK_ENTRIES: usize = 4096;
/// Most entries the importer holds before a proof must come.
pub const MAX_CHUNK_ENTRIES: usize = 65_536;
/// Most key and value bytes the importer holds before a proof must come.
pub const MAX_CHUNK_BYTES: usize = 64 << 20;
/// Key and value bytes after which the exporter ends a chunk early.
const CHUNK_BYTES: usize = 8 << 20;

const TAG_END: u8 = 0;
const TAG_ENTRY: u8 = 1;
const TAG_PROOF: u8 = 2;

/// What a snapshot is of: the preamble of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub chain_id: u64,
    /// Hash of the chain's block 0, so a snapshot is never opened as another chain.
    pub genesis_hash: B256,
    /// The block whose post-state the snapshot holds.
    pub height: u64,
    /// That block's header; its `state_root` is what the state must hash to.
    pub header: Header,
}

/// What an export wrote or an import read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub info: SnapshotInfo,
    /// State entries (key/value pairs).
    pub entries: u64,
    /// Bytes of the whole file.
    pub bytes: u64,
}

/// Why a snapshot could not be written or read. Every refusal of a file says
/// what was wrong with it; nothing is written to the store on any of them.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot i/o: {0}")]
    Io(std::io::Error),
    #[error("the snapshot ends inside {0} (truncated file?)")]
    Truncated(&'static str),
    #[error("not a state snapshot (bad magic bytes)")]
    BadMagic,
    #[error("snapshot format {0} is not supported (this build reads format {FORMAT_VERSION})")]
    UnsupportedFormat(u32),
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    Oversized { what: &'static str, len: u64, max: usize },
    #[error("malformed snapshot: {0}")]
    Malformed(String),
    #[error("bytes follow the snapshot's trailer")]
    TrailingBytes,
    #[error("snapshot checksum mismatch: the file is damaged")]
    Checksum,
    #[error("the snapshot's trailer counts {trailer} entries but {read} were read")]
    CountMismatch { trailer: u64, read: u64 },
    #[error("the snapshot's state does not hash to its header's state root {expected}: {detail}")]
    RootMismatch { expected: B256, detail: String },
    #[error("the store is not empty (head {0}); a snapshot is imported into a fresh store only")]
    NotEmpty(u64),
    #[error(
        "the state key of tree key {0} is not recorded (the store was written before key preimages were kept); export from a node synced with this version"
    )]
    MissingPreimage(B256),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn tree_err(e: anyhow::Error) -> SnapshotError {
    SnapshotError::Storage(StorageError::Tree(e.to_string()))
}

macro_rules! snapshot_from_db {
    ($($t:ty),*) => {$(
        impl From<$t> for SnapshotError {
            fn from(e: $t) -> Self { SnapshotError::Storage(e.into()) }
        }
    )*};
}
snapshot_from_db!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// A `Write` that hashes and counts what passes through.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, b: &[u8]) -> Result<(), SnapshotError> {
        self.hasher.update(b);
        self.bytes += b.len() as u64;
        self.inner.write_all(b).map_err(SnapshotError::Io)
    }

    fn put_bytes(&mut self, b: &[u8]) -> Result<(), SnapshotError> {
        let len = u32::try_from(b.len()).map_err(|_| SnapshotError::Malformed("a frame over 4 GiB".into()))?;
        self.put(&len.to_be_bytes())?;
        self.put(b)
    }
}

impl Store {
    /// Write the state at committed `version` (within the retained history)
    /// to `out`, with the chain's id, genesis hash and that block's header.
    /// Reads one MVCC snapshot, so a node may keep committing meanwhile.
    pub fn export_snapshot(
        &self,
        version: u64,
        chain_id: u64,
        out: &mut dyn Write,
    ) -> Result<SnapshotSummary, SnapshotError> {
        let snap = Arc::new(self.snapshot()?);
        snap.check_version(version)?;
        let header = snap.header(version)?.ok_or(StorageError::MissingBlock(version))?;
        let genesis_hash = snap.genesis_hash()?.ok_or(StorageError::MissingBlock(0))?;
        let info = SnapshotInfo { chain_id, genesis_hash, height: version, header };
        let mut w = HashingWriter { inner: BufWriter::new(out), hasher: Sha256::new(), bytes: 0 };
        write_preamble(&mut w, &info)?;
        let tree = Sha256Jmt::new(&*snap);
        let (mut entries, mut in_chunk, mut chunk_bytes) = (0u64, 0usize, 0usize);
        let mut last = None;
        for item in JellyfishMerkleIterator::new(snap.clone(), version, KeyHash([0; 32])).map_err(tree_err)? {
            let (kh, value) = item.map_err(tree_err)?;
            let key = snap.preimage(&kh)?.ok_or(SnapshotError::MissingPreimage(B256::from(kh.0)))?;
            w.put(&[TAG_ENTRY])?;
            w.put_bytes(&key)?;
            w.put_bytes(&value)?;
            entries += 1;
            in_chunk += 1;
            chunk_bytes += key.len() + value.len();
            last = Some(kh);
            if in_chunk == CHUNK_ENTRIES || chunk_bytes >= CHUNK_BYTES {
                write_proof(&mut w, &tree, kh, version)?;
                (in_chunk, chunk_bytes) = (0, 0);
            }
        }
        match last {
            None => return Err(SnapshotError::Malformed(format!("the state at {version} is empty"))),
            Some(kh) if in_chunk > 0 => write_proof(&mut w, &tree, kh, version)?,
            Some(_) => {}
        }
        w.put(&[TAG_END])?;
        w.put(&entries.to_be_bytes())?;
        let digest: [u8; 32] = w.hasher.clone().finalize().into();
        w.inner.write_all(&digest).map_err(SnapshotError::Io)?;
        w.inner.flush().map_err(SnapshotError::Io)?;
        Ok(SnapshotSummary { info, entries, bytes: w.bytes + 32 })
    }

    /// Rebuild the state of `src` into this store, which must be empty, as
    /// version `src.info().height`, and make that block's header the head.
    /// Accepted only if the state hashes to the header's state root and the
    /// file is whole (see the module doc); otherwise nothing is written. The
    /// store then holds no block below the snapshot's height: `header(n)` is
    /// `None` there, reads and proofs of older state are refused as pruned,
    /// and blocks commit on top of it as on any store.
    pub fn import_snapshot<R: Read>(&self, mut src: SnapshotReader<R>) -> Result<SnapshotSummary, SnapshotError> {
        if let Some(h) = self.head()? {
            return Err(SnapshotError::NotEmpty(h));
        }
        let info = src.info.clone();
        let version = info.height;
        let expected = info.header.state_root;
        let sink = Arc::new(NodeSink::default());
        let mut restore = JellyfishMerkleRestore::<Sha256>::new_overwrite(sink.clone(), version, RootHash(expected.0))
            .map_err(tree_err)?;
        let mut w = self.db.begin_write()?;
        w.set_durability(Durability::Immediate).map_err(|e| StorageError::Db(e.to_string()))?;
        let entries;
        {
            let mut nodes = w.open_table(NODES)?;
            let mut values = w.open_table(VALUES)?;
            let mut latest = w.open_table(LATEST)?;
            let mut preimages = w.open_table(PREIMAGES)?;
            let mut chunk: Vec<(KeyHash, OwnedValue)> = Vec::new();
            let (mut chunk_bytes, mut count) = (0usize, 0u64);
            let mut last: Option<KeyHash> = None;
            loop {
                match src.next_frame()? {
                    Frame::Entry(key, value) => {
                        let kh = key_hash(&key);
                        if last.is_some_and(|l| l >= kh) {
                            return Err(SnapshotError::Malformed(format!(
                                "entry {count} is out of tree order or repeats a key"
                            )));
                        }
                        last = Some(kh);
                        let mut enc = Vec::with_capacity(1 + value.len());
                        enc.push(1);
                        enc.extend_from_slice(&value);
                        values.insert(value_key(&kh, version).as_slice(), enc.as_slice())?;
                        let mut l = be8(version).to_vec();
                        l.extend_from_slice(&enc);
                        latest.insert(kh.0.as_slice(), l.as_slice())?;
                        preimages.insert(kh.0.as_slice(), key.as_slice())?;
                        chunk_bytes += key.len() + value.len();
                        chunk.push((kh, value));
                        count += 1;
                        if chunk.len() > MAX_CHUNK_ENTRIES || chunk_bytes > MAX_CHUNK_BYTES {
                            return Err(SnapshotError::Malformed(format!(
                                "more than {MAX_CHUNK_ENTRIES} entries or {MAX_CHUNK_BYTES} bytes without a proof"
                            )));
                        }
                    }
                    Frame::Proof(proof) => {
                        if chunk.is_empty() {
                            return Err(SnapshotError::Malformed("a proof with no entries before it".into()));
                        }
                        restore.add_chunk(std::mem::take(&mut chunk), proof).map_err(|e| {
                            SnapshotError::RootMismatch { expected, detail: format!("at entry {count}: {e}") }
                        })?;
                        chunk_bytes = 0;
                        sink.drain_into(&mut nodes)?;
                    }
                    Frame::End(trailer) => {
                        if !chunk.is_empty() {
                            return Err(SnapshotError::Malformed("entries after the last proof".into()));
                        }
                        if trailer != count {
                            return Err(SnapshotError::CountMismatch { trailer, read: count });
                        }
                        if count == 0 {
                            return Err(SnapshotError::Malformed("no state entries".into()));
                        }
                        entries = count;
                        break;
                    }
                }
            }
            src.finish()?;
            restore.finish().map_err(tree_err)?;
            sink.drain_into(&mut nodes)?;
            let computed = Sha256Jmt::new(&TableReader(&nodes)).get_root_hash(version).map_err(tree_err)?;
            if computed.0 != expected.0 {
                return Err(SnapshotError::RootMismatch {
                    expected,
                    detail: format!("the rebuilt tree's root is {}", B256::from(computed.0)),
                });
            }
            let mut hbuf = Vec::new();
            info.header.encode(&mut hbuf);
            w.open_table(HEADERS)?.insert(version, hbuf.as_slice())?;
            w.open_table(HASHES)?.insert(info.header.hash_slow().as_slice(), version)?;
            let mut meta = w.open_table(META)?;
            meta.insert("head", be8(version).as_slice())?;
            meta.insert("oldest", be8(version).as_slice())?;
            meta.insert("first_block", be8(version).as_slice())?;
            // The snapshot's block has no body here: the history index starts after it.
            meta.insert("indexed", be8(version + 1).as_slice())?;
            meta.insert("genesis", info.genesis_hash.as_slice())?;
        }
        w.commit()?;
        Ok(SnapshotSummary { info, entries, bytes: src.bytes })
    }
}

fn write_preamble<W: Write>(w: &mut HashingWriter<W>, info: &SnapshotInfo) -> Result<(), SnapshotError> {
    w.put(&MAGIC)?;
    w.put(&FORMAT_VERSION.to_be_bytes())?;
    w.put(&info.chain_id.to_be_bytes())?;
    w.put(info.genesis_hash.as_slice())?;
    w.put(&info.height.to_be_bytes())?;
    let mut rlp = Vec::new();
    info.header.encode(&mut rlp);
    w.put_bytes(&rlp)
}

fn write_proof<W: Write>(
    w: &mut HashingWriter<W>,
    tree: &Sha256Jmt<'_, crate::Snapshot>,
    last: KeyHash,
    version: Version,
) -> Result<(), SnapshotError> {
    let proof = tree.get_range_proof(last, version).map_err(tree_err)?;
    let bytes = borsh::to_vec(&proof).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
    w.put(&[TAG_PROOF])?;
    w.put_bytes(&bytes)
}

/// One frame after the preamble.
enum Frame {
    Entry(Vec<u8>, Vec<u8>),
    Proof(jmt::proof::SparseMerkleRangeProof<Sha256>),
    End(u64),
}

/// A snapshot being read: the preamble is read and checked by [`SnapshotReader::open`],
/// so a caller can look at [`SnapshotReader::info`] (chain id, genesis) before
/// handing it to [`Store::import_snapshot`].
pub struct SnapshotReader<R: Read> {
    inner: BufReader<R>,
    hasher: Sha256,
    bytes: u64,
    info: SnapshotInfo,
}

impl<R: Read> SnapshotReader<R> {
    /// Read and check the preamble: magic, format, chain id, genesis hash, height, header.
    pub fn open(r: R) -> Result<Self, SnapshotError> {
        let mut s = SnapshotReader {
            inner: BufReader::with_capacity(1 << 16, r),
            hasher: Sha256::new(),
            bytes: 0,
            info: SnapshotInfo { chain_id: 0, genesis_hash: B256::ZERO, height: 0, header: Header::default() },
        };
        let magic: [u8; 8] = s.array("the magic bytes")?;
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let format = u32::from_be_bytes(s.array("the format version")?);
        if format != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedFormat(format));
        }
        let chain_id = u64::from_be_bytes(s.array("the chain id")?);
        let genesis_hash = B256::from(s.array::<32>("the genesis hash")?);
        let height = u64::from_be_bytes(s.array("the height")?);
        let rlp = s.sized("the header", MAX_HEADER_BYTES)?;
        let mut slice = rlp.as_slice();
        let header = Header::decode(&mut slice).map_err(|e| SnapshotError::Malformed(format!("header: {e}")))?;
        if !slice.is_empty() {
            return Err(SnapshotError::Malformed("bytes after the header's RLP".into()));
        }
        if header.number != height {
            return Err(SnapshotError::Malformed(format!("the header is block {}, not {height}", header.number)));
        }
        s.info = SnapshotInfo { chain_id, genesis_hash, height, header };
        Ok(s)
    }

    /// What the snapshot says it is of (not yet verified against its state).
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => SnapshotError::Truncated(what),
            _ => SnapshotError::Io(e),
        })?;
        self.hasher.update(&*buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let mut b = [0u8; N];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    /// A u32 length, at most `max`, then that many bytes.
    fn sized(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, SnapshotError> {
        let len = u32::from_be_bytes(self.array(what)?);
        if len as usize > max {
            return Err(SnapshotError::Oversized { what, len: len.into(), max });
        }
        let mut b = vec![0u8; len as usize];
        self.fill(&mut b, what)?;
        Ok(b)
    }

    fn next_frame(&mut self) -> Result<Frame, SnapshotError> {
        let [tag] = self.array("a frame tag")?;
        match tag {
            TAG_ENTRY => {
                let key = self.sized("a state key", MAX_KEY_BYTES)?;
                let value = self.sized("a state value", MAX_VALUE_BYTES)?;
                Ok(Frame::Entry(key, value))
            }
            TAG_PROOF => {
                let b = self.sized("a chunk proof", MAX_PROOF_BYTES)?;
                let p = borsh::from_slice(&b).map_err(|e| SnapshotError::Malformed(format!("chunk proof: {e}")))?;
                Ok(Frame::Proof(p))
            }
            TAG_END => Ok(Frame::End(u64::from_be_bytes(self.array("the trailer")?))),
            t => Err(SnapshotError::Malformed(format!("unknown frame tag {t:#04x}"))),
        }
    }

    /// Read the digest, compare it with what was read, and require the end of the stream.
    fn finish(&mut self) -> Result<(), SnapshotError> {
        let computed: [u8; 32] = self.hasher.clone().finalize().into();
        let mut stored = [0u8; 32];
        self.inner.read_exact(&mut stored).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => SnapshotError::Truncated("the checksum"),
            _ => SnapshotError::Io(e),
        })?;
        self.bytes += 32;
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => return Err(SnapshotError::TrailingBytes),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SnapshotError::Io(e)),
            }
        }
        if stored != computed {
            return Err(SnapshotError::Checksum);
        }
        Ok(())
    }
}

/// Collects the nodes the restore freezes, for the import to write into its
/// redb transaction (the restore wants a `'static` writer, the table borrows
/// the transaction).
#[derive(Default)]
struct NodeSink(Mutex<Vec<(NodeKey, Node)>>);

impl TreeWriter for NodeSink {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let mut nodes = self.0.lock().map_err(|_| anyhow::anyhow!("node sink poisoned"))?;
        nodes.extend(batch.nodes().iter().map(|(k, n)| (k.clone(), n.clone())));
        Ok(())
    }
}

impl NodeSink {
    fn drain_into(&self, table: &mut redb::Table<&[u8], &[u8]>) -> Result<(), SnapshotError> {
        let drained = std::mem::take(&mut *self.0.lock().map_err(|_| StorageError::Tree("node sink poisoned".into()))?);
        for (k, n) in drained {
            let k = borsh::to_vec(&k).map_err(|e| StorageError::Tree(e.to_string()))?;
            let n = borsh::to_vec(&n).map_err(|e| StorageError::Tree(e.to_string()))?;
            table.insert(k.as_slice(), n.as_slice())?;
        }
        Ok(())
    }
}

/// The tree's nodes as the import's write transaction sees them, to compute
/// the rebuilt root before committing.
struct TableReader<'a, 't>(&'a redb::Table<'t, &'static [u8], &'static [u8]>);

impl TreeReader for TableReader<'_, '_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let k = borsh::to_vec(node_key)?;
        match self.0.get(k.as_slice())? {
            Some(g) => Ok(Some(borsh::from_slice(g.value())?)),
            None => Ok(None),
        }
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::bail!("values are not read while computing a root")
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("not restoring from this reader")
    }
}
