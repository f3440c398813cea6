//! State snapshots through the store's public interface: export at the head
//! and at an older version, import into a fresh store that then carries on,
//! and the refusal of every kind of bad file with nothing written.

use std::collections::BTreeMap;

use primitives::B256;
use primitives::block::Header;
use sha2::{Digest, Sha256};
use storage::{
    BlockRecord, MAX_KEY_BYTES, SnapshotError, SnapshotReader, SnapshotSummary, StorageError, Store, StoreOptions,
};

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

const CHAIN_ID: u64 = 4242;

fn record(n: u64, root: B256) -> BlockRecord {
    let header = Header { number: n, timestamp: 1_000 + n, state_root: root, ..Default::default() };
    BlockRecord::empty(header)
}

fn commit(store: &Store, n: u64, w: &Writes) -> B256 {
    let u = store.prepare(n, w).unwrap();
    let root = u.root;
    store.commit(&record(n, root), u).unwrap();
    root
}

fn mem() -> Store {
    Store::in_memory(StoreOptions { history: 100, ..Default::default() }).unwrap()
}

/// Block `n` writes keys `k{n}-{i}`, rewrites `shared-{i}` and deletes one key of block n-1.
fn block_writes(n: u64, per_block: usize) -> Writes {
    let mut w = Writes::new();
    for i in 0..per_block {
        w.insert(format!("k{n}-{i}").into_bytes(), Some(format!("value-{n}-{i}").into_bytes()));
        w.insert(format!("shared-{i}").into_bytes(), Some(format!("shared at {n}").into_bytes()));
    }
    if n > 0 {
        w.insert(format!("k{}-0", n - 1).into_bytes(), None);
    }
    w
}

/// A store with blocks 0..=head.
fn chain(head: u64, per_block: usize) -> Store {
    let store = mem();
    for n in 0..=head {
        commit(&store, n, &block_writes(n, per_block));
    }
    store
}

fn export(store: &Store, version: u64) -> (Vec<u8>, SnapshotSummary) {
    let mut out = Vec::new();
    let s = store.export_snapshot(version, CHAIN_ID, &mut out).unwrap();
    assert_eq!(s.bytes, out.len() as u64);
    (out, s)
}

fn import(bytes: &[u8]) -> Result<(Store, SnapshotSummary), SnapshotError> {
    let store = mem();
    let r = SnapshotReader::open(bytes)?;
    let s = store.import_snapshot(r)?;
    Ok((store, s))
}

/// Import must fail with nothing written: the store it was imported into stays empty.
fn refused(bytes: &[u8]) -> SnapshotError {
    let store = mem();
    let e = match SnapshotReader::open(bytes) {
        Ok(r) => store.import_snapshot(r).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(store.head().unwrap(), None, "a refused import writes nothing ({e})");
    e
}

/// Replace the trailing sha256 with the right one for the (altered) bytes before it.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 32;
    let d: [u8; 32] = Sha256::digest(&bytes[..n]).into();
    bytes[n..].copy_from_slice(&d);
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).expect("present")
}

fn all_keys(head: u64, per_block: usize) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..per_block).map(|i| format!("shared-{i}").into_bytes()).collect();
    for n in 0..=head {
        keys.extend((0..per_block).map(|i| format!("k{n}-{i}").into_bytes()));
    }
    keys
}

#[test]
fn round_trip_at_the_head_and_at_an_older_version() {
    let (head, per) = (6, 30);
    let src = chain(head, per);
    for version in [head, 3] {
        let (bytes, exported) = export(&src, version);
        let (dst, imported) = import(&bytes).unwrap();
        assert_eq!(imported, exported);
        assert_eq!(imported.info.height, version);
        assert_eq!(imported.info.chain_id, CHAIN_ID);
        let s = src.snapshot().unwrap();
        let d = dst.snapshot().unwrap();
        assert_eq!(imported.info.genesis_hash, s.header(0).unwrap().unwrap().hash_slow());
        assert_eq!(d.genesis_hash().unwrap(), Some(imported.info.genesis_hash));
        assert_eq!(d.head().unwrap(), Some(version));
        assert_eq!(d.first_block().unwrap(), version);
        assert_eq!(d.header(version).unwrap(), s.header(version).unwrap());
        assert_eq!(d.block_number(&s.header(version).unwrap().unwrap().hash_slow()).unwrap(), Some(version));
        assert_eq!(d.header(version - 1).unwrap(), None, "no block below the snapshot");
        assert_eq!(d.header(0).unwrap(), None);
        assert_eq!(d.state_root(version).unwrap(), s.state_root(version).unwrap());
        // Every key reads the same, deleted ones included.
        let mut live = 0;
        for k in all_keys(head, per) {
            let want = s.get_at(&k, version).unwrap();
            live += want.is_some() as u64;
            assert_eq!(d.get_latest(&k).unwrap(), want, "{}", String::from_utf8_lossy(&k));
            assert_eq!(d.get_at(&k, version).unwrap(), want);
        }
        assert_eq!(imported.entries, live);
        assert!(matches!(d.get_at(b"shared-0", version - 1), Err(StorageError::Pruned(_, v)) if v == version));
        // Proofs work against the imported root.
        let p = d.prove(b"shared-1", version).unwrap();
        assert!(storage::StateProof::verify_bytes(&p.root, b"shared-1", p.value.as_deref(), &p.proof_bytes()).is_ok());
        // The imported store exports the same file again.
        drop(d);
        assert_eq!(export(&dst, version).0, bytes);
        // Later blocks commit on top of it exactly as on the original.
        let next = block_writes(100, per);
        let want = if version == head {
            commit(&src, head + 1, &next)
        } else {
            let fork = import(&bytes).unwrap().0;
            commit(&fork, version + 1, &next)
        };
        assert_eq!(commit(&dst, version + 1, &next), want);
        assert_eq!(dst.head().unwrap(), Some(version + 1));
        assert!(dst.prepare(version + 3, &Writes::new()).is_err());
    }
}

#[test]
fn export_is_refused_outside_history() {
    let store = Store::in_memory(StoreOptions { history: 2, ..Default::default() }).unwrap();
    for n in 0..6 {
        commit(&store, n, &block_writes(n, 3));
    }
    let mut out = Vec::new();
    assert!(matches!(
        store.export_snapshot(1, CHAIN_ID, &mut out),
        Err(SnapshotError::Storage(StorageError::Pruned(1, 3)))
    ));
    assert!(matches!(store.export_snapshot(9, CHAIN_ID, &mut out), Err(SnapshotError::Storage(_))));
    assert!(store.export_snapshot(3, CHAIN_ID, &mut out).is_ok());
    let mut out = Vec::new();
    assert!(mem().export_snapshot(0, CHAIN_ID, &mut out).is_err(), "an empty store has nothing to export");
}

#[test]
fn history_of_an_imported_store_starts_at_its_height() {
    let (bytes, _) = export(&chain(6, 5), 6);
    let dst = Store::in_memory(StoreOptions { history: 3, ..Default::default() }).unwrap();
    dst.import_snapshot(SnapshotReader::open(bytes.as_slice()).unwrap()).unwrap();
    for n in 7..=11 {
        commit(&dst, n, &block_writes(n, 5));
        let oldest = dst.snapshot().unwrap().oldest_state().unwrap();
        assert_eq!(oldest, 6.max(n - 3), "after block {n}");
        let e = dst.snapshot().unwrap().get_at(b"shared-0", 5).unwrap_err();
        assert!(matches!(e, StorageError::Pruned(5, o) if o == oldest), "{e}");
    }
    assert_eq!(dst.snapshot().unwrap().get_latest(b"shared-0").unwrap(), Some(b"shared at 11".to_vec()));
}

#[test]
fn a_store_that_holds_blocks_refuses_an_import() {
    let src = chain(2, 4);
    let (bytes, _) = export(&src, 2);
    let e = src.import_snapshot(SnapshotReader::open(bytes.as_slice()).unwrap()).unwrap_err();
    assert!(matches!(e, SnapshotError::NotEmpty(2)), "{e}");
}

#[test]
fn every_truncation_is_refused() {
    let (bytes, _) = export(&chain(1, 3), 1);
    for cut in 0..bytes.len() {
        let e = refused(&bytes[..cut]);
        assert!(matches!(e, SnapshotError::Truncated(_)), "cut at {cut}: {e}");
    }
    assert!(refused(&bytes[..bytes.len() - 1]).to_string().contains("truncated"));
}

#[test]
fn bad_files_are_refused_with_what_is_wrong() {
    let (bytes, _) = export(&chain(3, 20), 3);
    assert!(import(&bytes).is_ok());

    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(refused(&b), SnapshotError::BadMagic));

    let mut b = bytes.clone();
    b[11] = 9;
    assert!(matches!(refused(&b), SnapshotError::UnsupportedFormat(9)));

    let mut b = bytes.clone();
    b.push(0);
    assert!(matches!(refused(&b), SnapshotError::TrailingBytes));

    let mut b = bytes.clone();
    let n = b.len();
    b[n - 1] ^= 1;
    assert!(matches!(refused(&b), SnapshotError::Checksum));

    // A changed value with a valid checksum: the state no longer hashes to the root.
    let mut b = bytes.clone();
    let at = find(&b, b"value-2-7");
    b[at + 8] = b'8';
    reseal(&mut b);
    let e = refused(&b);
    assert!(matches!(e, SnapshotError::RootMismatch { .. }), "{e}");
    assert!(e.to_string().contains("state root"), "{e}");

    // A header whose state root is not the state's.
    let src = chain(3, 20);
    let mut h = src.snapshot().unwrap().header(3).unwrap().unwrap();
    let old_root = h.state_root;
    h.state_root = B256::repeat_byte(7);
    let mut b = bytes.clone();
    let at = find(&b, old_root.as_slice());
    b[at..at + 32].copy_from_slice(h.state_root.as_slice());
    reseal(&mut b);
    assert!(matches!(refused(&b), SnapshotError::RootMismatch { expected, .. } if expected == h.state_root));

    // A trailer that counts wrong.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 33] ^= 1;
    reseal(&mut b);
    assert!(matches!(refused(&b), SnapshotError::CountMismatch { .. }));

    // The preamble's height and its header disagree.
    let mut b = bytes.clone();
    b[8 + 4 + 8 + 32 + 7] = 9;
    reseal(&mut b);
    assert!(matches!(refused(&b), SnapshotError::Malformed(m) if m.contains("not 9")));
}

/// The byte offset of the first frame: after magic, format, chain id, genesis, height, header.
fn first_frame(bytes: &[u8]) -> usize {
    let at = 8 + 4 + 8 + 32 + 8;
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    at + 4 + len
}

#[test]
fn oversized_and_unknown_frames_are_refused() {
    let (bytes, _) = export(&chain(1, 3), 1);
    let f = first_frame(&bytes);
    assert_eq!(bytes[f], 1, "an entry comes first");

    let mut b = bytes.clone();
    b[f + 1..f + 5].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = refused(&b);
    assert!(matches!(e, SnapshotError::Oversized { max, .. } if max == MAX_KEY_BYTES), "{e}");
    assert!(e.to_string().contains("exceeds the limit"), "{e}");

    let mut b = bytes.clone();
    b[8 + 4 + 8 + 32 + 8..][..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(refused(&b), SnapshotError::Oversized { what: "the header", .. }));

    let mut b = bytes.clone();
    b[f] = 7;
    reseal(&mut b);
    assert!(matches!(refused(&b), SnapshotError::Malformed(m) if m.contains("frame tag 0x07")));

    // Entries out of tree order: swap the first two entries' keys' frames by
    // moving the first entry after the second.
    let entry_len = |at: usize| {
        let k = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let v = u32::from_be_bytes(bytes[at + 5 + k..at + 9 + k].try_into().unwrap()) as usize;
        9 + k + v
    };
    let (l1, l2) = (entry_len(f), entry_len(f + entry_len(f)));
    let mut b = bytes.clone();
    let mut swapped = bytes[f + l1..f + l1 + l2].to_vec();
    swapped.extend_from_slice(&bytes[f..f + l1]);
    b[f..f + l1 + l2].copy_from_slice(&swapped);
    reseal(&mut b);
    assert!(matches!(refused(&b), SnapshotError::Malformed(m) if m.contains("out of tree order")));
}

/// A store whose block 0 writes `n` keys `key-{i}` → `val-{i}`.
fn wide(n: usize) -> Store {
    let w: Writes =
        (0..n).map(|i| (format!("key-{i}").into_bytes(), Some(format!("val-{i:08}").into_bytes()))).collect();
    let store = mem();
    commit(&store, 0, &w);
    store
}

#[test]
fn a_state_of_several_chunks_is_checked_chunk_by_chunk() {
    let n = 2 * storage::CHUNK_ENTRIES + 100;
    let src = wide(n);
    let (bytes, s) = export(&src, 0);
    assert_eq!(s.entries, n as u64);
    let (dst, _) = import(&bytes).unwrap();
    assert_eq!(dst.snapshot().unwrap().state_root(0).unwrap(), src.snapshot().unwrap().state_root(0).unwrap());
    // A value of the last chunk changed (checksum fixed): refused at that chunk.
    let mut b = bytes.clone();
    let at = b.len() - 32 - 9 - 200;
    let at = at + find(&b[at..], b"val-") + 5;
    b[at] = if b[at] == b'9' { b'8' } else { b'9' };
    reseal(&mut b);
    let e = refused(&b);
    assert!(
        matches!(&e, SnapshotError::RootMismatch { detail, .. } if detail.contains(&format!("at entry {n}"))),
        "{e}"
    );
}

/// Export and import time and file size for a state of 100k keys (run with
/// `--ignored --nocapture`; the figures are in ARCHITECTURE.md).
#[test]
#[ignore]
fn measure_100k_keys() {
    let n = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open(&dir.path().join("src.redb"), StoreOptions::default()).unwrap();
    // Runtime-like values: 60-byte keys, 80-byte values, in 10 blocks.
    for b in 0..10u64 {
        let w: Writes = (0..n / 10)
            .map(|i| {
                let i = b as usize * (n / 10) + i;
                (format!("bank/accounts/{i:046}").into_bytes(), Some(vec![(i % 251) as u8; 80]))
            })
            .collect();
        commit(&src, b, &w);
    }
    let t = std::time::Instant::now();
    let file = dir.path().join("state.snap");
    let mut out = std::fs::File::create(&file).unwrap();
    let s = src.export_snapshot(9, CHAIN_ID, &mut out).unwrap();
    drop(out);
    let export = t.elapsed();
    let t = std::time::Instant::now();
    let dst = Store::open(&dir.path().join("dst.redb"), StoreOptions::default()).unwrap();
    let r = SnapshotReader::open(std::fs::File::open(&file).unwrap()).unwrap();
    let i = dst.import_snapshot(r).unwrap();
    let import = t.elapsed();
    assert_eq!(i.entries, n as u64);
    assert_eq!(dst.snapshot().unwrap().state_root(9).unwrap(), src.snapshot().unwrap().state_root(9).unwrap());
    println!(
        "{n} keys: file {} bytes ({:.1} MB), export {export:?}, import {import:?}, imported db {} bytes",
        s.bytes,
        s.bytes as f64 / 1e6,
        std::fs::metadata(dir.path().join("dst.redb")).unwrap().len()
    );
}
