//! The store through its public interface: state writes and deletes, atomic
//! block commits, block indexes, snapshots, reopening, and the errors a user
//! meets when the file is held, damaged or not a database.

use std::collections::BTreeMap;
use std::path::Path;

use primitives::block::{Header, Receipt, StoredTx};
use primitives::{Address, B256, Bytes};
use storage::{BlockRecord, StateProof, StorageError, Store, StoreOptions, TxLocation};

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn writes(kv: &[(&str, Option<&str>)]) -> Writes {
    kv.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect()
}

fn record(n: u64) -> BlockRecord {
    let header = Header { number: n, timestamp: 1_000 + n, ..Default::default() };
    BlockRecord::empty(header)
}

/// Prepare and commit `kv` as block `n`; the new state root.
fn commit(store: &Store, n: u64, kv: &[(&str, Option<&str>)]) -> B256 {
    let u = store.prepare(n, &writes(kv)).unwrap();
    let root = u.root;
    store.commit(&record(n), u).unwrap();
    root
}

fn open(path: &Path) -> Store {
    Store::open(path, StoreOptions { history: 100, ..Default::default() }).unwrap()
}

fn latest(store: &Store, key: &str) -> Option<String> {
    store.snapshot().unwrap().get_latest(key.as_bytes()).unwrap().map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn put_get_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db.redb"));
    assert_eq!(store.head().unwrap(), None, "a new store has no block");
    assert_eq!(latest(&store, "a"), None);
    commit(&store, 0, &[("a", Some("1")), ("b", Some("2"))]);
    commit(&store, 1, &[("a", Some("3")), ("b", None), ("c", Some(""))]);
    assert_eq!(latest(&store, "a").as_deref(), Some("3"), "overwritten");
    assert_eq!(latest(&store, "b"), None, "deleted");
    assert_eq!(latest(&store, "c").as_deref(), Some(""), "an empty value is a value, not a deletion");
    let s = store.snapshot().unwrap();
    assert_eq!(s.get_at(b"b", 0).unwrap(), Some(b"2".to_vec()), "the deleted value stays readable at its version");
    assert_eq!(s.get_at(b"b", 1).unwrap(), None);
    assert_eq!(s.get_at(b"c", 0).unwrap(), None);
    // A deletion is proven as an absence against the new root.
    let p = s.prove(b"b", 1).unwrap();
    assert_eq!(p.value, None);
    assert!(StateProof::verify_bytes(&s.state_root(1).unwrap(), b"b", None, &p.proof_bytes()).is_ok());
    assert!(StateProof::verify_bytes(&s.state_root(1).unwrap(), b"b", Some(b"2"), &p.proof_bytes()).is_err());
}

#[test]
fn roots_depend_on_content_only() {
    let dir = tempfile::tempdir().unwrap();
    let on_disk = open(&dir.path().join("db.redb"));
    let in_memory = Store::in_memory(StoreOptions { durable: false, ..Default::default() }).unwrap();
    let kv = [("x", Some("1")), ("y", Some("2"))];
    assert_eq!(commit(&on_disk, 0, &kv), commit(&in_memory, 0, &kv), "same writes, same root");
    // Deleting a key that never existed changes nothing.
    assert_eq!(commit(&on_disk, 1, &[("nothing", None)]), on_disk.snapshot().unwrap().state_root(0).unwrap());
    let changed = commit(&in_memory, 1, &[("y", Some("3"))]);
    assert_ne!(changed, on_disk.snapshot().unwrap().state_root(1).unwrap(), "another value, another root");
}

#[test]
fn prepare_writes_nothing_until_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db.redb"));
    commit(&store, 0, &[("a", Some("1"))]);
    let u = store.prepare(1, &writes(&[("a", Some("2")), ("b", Some("new"))])).unwrap();
    assert_eq!(store.head().unwrap(), Some(0));
    assert_eq!(latest(&store, "a").as_deref(), Some("1"));
    assert_eq!(latest(&store, "b"), None);
    drop(u);
    // Versions follow the head one by one.
    for v in [0, 2, 7] {
        let e = store.prepare(v, &Writes::new()).err().expect("a version out of order is refused");
        assert!(e.to_string().contains("does not follow head 0"), "{e}");
    }
}

#[test]
fn a_refused_commit_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db.redb"));
    let root0 = commit(&store, 0, &[("a", Some("1"))]);
    let u = store.prepare(1, &writes(&[("a", Some("2"))])).unwrap();
    // A block record whose number is not the update's version.
    let e = store.commit(&record(5), u).unwrap_err();
    assert!(e.to_string().contains("differ"), "{e}");
    let s = store.snapshot().unwrap();
    assert_eq!(s.head().unwrap(), Some(0));
    assert_eq!(s.header(5).unwrap(), None);
    assert_eq!(s.header(1).unwrap(), None);
    assert_eq!(s.get_latest(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.state_root(0).unwrap(), root0);
    drop(s);
    // The same version commits normally afterwards.
    commit(&store, 1, &[("a", Some("2"))]);
    assert_eq!(latest(&store, "a").as_deref(), Some("2"));
}

#[test]
fn blocks_receipts_and_the_transaction_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db.redb"));
    commit(&store, 0, &[]);
    let header = Header { number: 1, gas_used: 42_000, timestamp: 7, ..Default::default() };
    let hash = header.hash_slow();
    let txs: Vec<StoredTx> =
        (0..3u8).map(|i| StoredTx { raw: Bytes::from(vec![i; 5]), sender: Address::repeat_byte(i + 1) }).collect();
    let tx_hashes: Vec<B256> = (0..3u8).map(|i| B256::repeat_byte(0xa0 + i)).collect();
    let receipts: Vec<Receipt> = (0..3u64)
        .map(|i| Receipt {
            tx_type: 2,
            success: i != 1,
            cumulative_gas_used: 14_000 * (i + 1),
            gas_used: 14_000,
            effective_gas_price: 1_000_000_000,
            logs: vec![],
            revert_data: if i == 1 { Bytes::from_static(&[0xde, 0xad]) } else { Bytes::new() },
        })
        .collect();
    let block = BlockRecord {
        header: header.clone(),
        hash,
        txs: txs.clone(),
        tx_hashes,
        receipts: receipts.clone(),
        certificate: None,
        last_commit: None,
    };
    store.commit(&block, store.prepare(1, &Writes::new()).unwrap()).unwrap();
    let s = store.snapshot().unwrap();
    assert_eq!(s.header(1).unwrap(), Some(header));
    assert_eq!(s.block_number(&hash).unwrap(), Some(1));
    assert_eq!(s.block_number(&B256::repeat_byte(9)).unwrap(), None);
    assert_eq!(s.body(1).unwrap(), Some(txs));
    assert_eq!(s.receipts(1).unwrap(), Some(receipts));
    assert_eq!(s.tx_location(&B256::repeat_byte(0xa2)).unwrap(), Some(TxLocation { block: 1, index: 2 }));
    assert_eq!(s.tx_location(&B256::repeat_byte(0xb0)).unwrap(), None);
    assert_eq!((s.body(2).unwrap(), s.receipts(2).unwrap(), s.header(2).unwrap()), (None, None, None));
}

#[test]
fn a_snapshot_keeps_its_view_while_blocks_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db.redb"));
    commit(&store, 0, &[("a", Some("1"))]);
    let before = store.snapshot().unwrap();
    commit(&store, 1, &[("a", Some("2")), ("b", Some("x"))]);
    assert_eq!(before.head().unwrap(), Some(0));
    assert_eq!(before.get_latest(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(before.get_latest(b"b").unwrap(), None);
    assert!(matches!(before.get_at(b"a", 1), Err(StorageError::Pruned(1, 0))), "version 1 is past its head");
    assert_eq!(latest(&store, "a").as_deref(), Some("2"));
}

#[test]
fn reopening_keeps_every_committed_block_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/db.redb");
    let roots: Vec<B256> = {
        let store = open(&path);
        let roots = (0..5u64).map(|n| commit(&store, n, &[("k", Some(&n.to_string()))])).collect();
        // Prepared but never committed: must not survive.
        let _ = store.prepare(5, &writes(&[("k", Some("lost"))])).unwrap();
        roots
    };
    let store = open(&path);
    assert_eq!(store.head().unwrap(), Some(4));
    assert_eq!(latest(&store, "k").as_deref(), Some("4"));
    let s = store.snapshot().unwrap();
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(s.state_root(n as u64).unwrap(), *root);
        assert_eq!(s.header(n as u64).unwrap().unwrap().timestamp, 1_000 + n as u64);
    }
    drop(s);
    commit(&store, 5, &[("k", Some("5"))]);
    assert_eq!(latest(&store, "k").as_deref(), Some("5"));
}

#[test]
fn a_file_in_use_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = open(&path);
    commit(&store, 0, &[("a", Some("1"))]);
    let e = Store::open(&path, StoreOptions::default()).err().expect("a second open is refused");
    assert!(matches!(&e, StorageError::InUse(p) if p == &path), "{e:?}");
    assert!(e.to_string().contains("db.redb") && e.to_string().contains("in use"), "{e}");
    drop(store);
    assert_eq!(latest(&open(&path), "a").as_deref(), Some("1"), "free once the first store is dropped");
}

#[test]
fn closed_fires_once_the_store_dropped_on_another_thread_let_the_file_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = open(&path);
    commit(&store, 0, &[("a", Some("1"))]);
    let closed = store.closed();
    assert!(!closed.is_closed() && !closed.wait(std::time::Duration::from_millis(20)), "open while held");
    let waiter = {
        let closed = closed.clone();
        std::thread::spawn(move || closed.wait(std::time::Duration::from_secs(10)))
    };
    std::thread::spawn(move || drop(store)).join().unwrap();
    assert!(waiter.join().unwrap(), "the waiter is woken");
    assert!(closed.is_closed());
    assert_eq!(latest(&open(&path), "a").as_deref(), Some("1"), "free once closed fired");
}

#[test]
fn a_damaged_or_foreign_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // Not a database at all.
    let foreign = dir.path().join("foreign.redb");
    std::fs::write(&foreign, vec![0x5a; 64 * 1024]).unwrap();
    let e = Store::open(&foreign, StoreOptions::default()).err().expect("a foreign file is refused");
    assert!(matches!(&e, StorageError::Unreadable { path, .. } if path == &foreign), "{e:?}");
    assert!(e.to_string().contains("foreign.redb"), "{e}");
    assert_eq!(std::fs::read(&foreign).unwrap(), vec![0x5a; 64 * 1024], "the file is left as it was");
    // A real database whose header was overwritten.
    let damaged = dir.path().join("damaged.redb");
    {
        let store = open(&damaged);
        commit(&store, 0, &[("a", Some("1"))]);
    }
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[..512].fill(0xff);
    std::fs::write(&damaged, &bytes).unwrap();
    let e = Store::open(&damaged, StoreOptions::default()).err().expect("a damaged file is refused");
    assert!(e.to_string().contains("damaged.redb"), "{e}");
    // A directory where the file should be.
    let dir_path = dir.path().join("a-directory");
    std::fs::create_dir(&dir_path).unwrap();
    let e = Store::open(&dir_path, StoreOptions::default()).err().expect("a directory is refused");
    assert!(e.to_string().contains("a-directory"), "{e}");
}
