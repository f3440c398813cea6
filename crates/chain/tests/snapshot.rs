//! Joining from a state snapshot: a chain exported at a height and imported
//! into a fresh data directory opens at that height with the same state, and
//! carries on exactly as the original does.

use std::path::Path;
use std::sync::Arc;

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use chain::{BlockTime, Chain, ChainConfig, ChainError, PoolConfig};
use keys::{SecretKey, derive_account, encode_2718, sign_eip1559};
use primitives::{Address, Amount, SignedTransaction, U256};
use runtime::Genesis;
use runtime::bank::BankRead;
use storage::{SnapshotError, Store, StoreOptions};

const CHAIN_ID: u64 = 31337;

fn accounts() -> Vec<SecretKey> {
    (0..4).map(|i| derive_account(keys::DEV_MNEMONIC, i).unwrap()).collect()
}

fn genesis_of(chain_id: u64, keys: &[SecretKey]) -> Genesis {
    let alloc = keys.iter().map(|k| (k.address(), Amount::open(1_000))).collect();
    Genesis {
        chain_id,
        timestamp: 1_700_000_000,
        alloc,
        params: vec![],
        operators: vec![],
        calls: vec![],
        base_model: None,
    }
}

fn config(dir: &Path, genesis: Genesis) -> ChainConfig {
    let pool = PoolConfig::default();
    ChainConfig {
        data_dir: dir.into(),
        genesis,
        block_time: BlockTime::Manual,
        history: 100,
        pool,
        max_txs_per_block: 100,
    }
}

fn open(dir: &Path) -> Arc<Chain> {
    Chain::open(config(dir, genesis_of(CHAIN_ID, &accounts()))).unwrap()
}

fn transfer(key: &SecretKey, nonce: u64, to: Address, value: u128) -> Vec<u8> {
    let gwei = 1_000_000_000;
    let t = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * gwei,
        max_priority_fee_per_gas: gwei,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    };
    encode_2718(&sign_eip1559(key, t))
}

fn balance(chain: &Chain, a: &Address) -> Amount {
    chain.snapshot().unwrap().balance(a).unwrap()
}

/// Blocks 1..=n, each with a transfer from every account to the next.
async fn produce(chain: &Chain, keys: &[SecretKey], n: u64) {
    for _ in 0..n {
        let head = chain.head().number();
        for (i, k) in keys.iter().enumerate() {
            let to = keys[(i + 1) % keys.len()].address();
            chain.submit(&transfer(k, head, to, 1_000 + head as u128)).await.unwrap();
        }
        chain.produce_block().unwrap();
    }
}

fn export(chain: &Chain, height: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let s = chain.export_snapshot(height, &mut out).unwrap();
    assert_eq!((s.info.height, s.entries > 0, s.bytes), (height, true, out.len() as u64));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_chain_opens_at_the_height_and_carries_on_as_the_original() {
    let keys = accounts();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let original = open(a.path());
    produce(&original, &keys, 5).await;
    let bytes = export(&original, 5);

    let s = chain::import_snapshot(b.path(), &genesis_of(CHAIN_ID, &keys), bytes.as_slice()).unwrap();
    assert_eq!(s.info.height, 5);
    let joined = open(b.path());
    assert_eq!(joined.head().number(), 5);
    assert_eq!(joined.head().hash, original.head().hash);
    assert_eq!(joined.head().next_base_fee, original.head().next_base_fee);
    assert_eq!(joined.head().header.state_root, original.head().header.state_root);
    for k in &keys {
        assert_eq!(balance(&joined, &k.address()), balance(&original, &k.address()));
        assert_eq!(joined.pending_nonce(&k.address()).unwrap(), 5);
    }
    let snap = joined.snapshot().unwrap();
    assert_eq!(snap.header(4).unwrap(), None, "no block below the snapshot");
    assert_eq!(snap.genesis_hash().unwrap(), original.snapshot().unwrap().genesis_hash().unwrap());
    drop(snap);

    // The same transactions make the same block on both.
    let raws: Vec<Vec<u8>> = keys.iter().map(|k| transfer(k, 5, keys[0].address(), 7)).collect();
    for raw in &raws {
        joined.submit(raw).await.unwrap();
    }
    assert_eq!(joined.produce_block().unwrap(), 6);
    let built = joined.snapshot().unwrap().header(6).unwrap().unwrap();
    let parent = original.head();
    drop(original);
    let store = Store::open(&a.path().join("chain.redb"), StoreOptions::default()).unwrap();
    let txs: Vec<Arc<SignedTransaction>> =
        raws.iter().map(|r| Arc::new(SignedTransaction::decode(r, CHAIN_ID).unwrap())).collect();
    let base = store.snapshot().unwrap();
    let same = chain::build_block(
        &store,
        &base,
        CHAIN_ID,
        &parent.header,
        parent.hash,
        built.timestamp,
        &txs,
        true,
        chain::Seal::Dev,
    )
    .unwrap();
    assert_eq!(same.record.header, built);
    assert_eq!(same.record.receipts, joined.block_receipts(6).unwrap().unwrap());

    // Restarts keep it; replay from genesis is refused with the reason.
    drop(joined);
    let joined = open(b.path());
    assert_eq!(joined.head().number(), 6);
    let scratch = tempfile::tempdir().unwrap();
    let e = chain::replay_dir(&joined, scratch.path()).unwrap_err();
    assert!(e.to_string().contains("imported from a snapshot at block 5"), "{e}");
    drop(joined);
    let store_b = Store::open(&b.path().join("chain.redb"), StoreOptions::default()).unwrap();
    assert!(chain::check_replayable(&store_b).is_err());
    assert!(chain::replay(&store_b, &genesis_of(CHAIN_ID, &keys), scratch.path()).is_err());
    assert!(chain::check_replayable(&store).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_of_the_wrong_chain_or_into_a_used_directory_are_refused() {
    let keys = accounts();
    let dir = tempfile::tempdir().unwrap();
    let original = open(dir.path());
    produce(&original, &keys, 3).await;
    // An older height within history works too.
    let older = export(&original, 2);
    let fresh = tempfile::tempdir().unwrap();
    chain::import_snapshot(fresh.path(), &genesis_of(CHAIN_ID, &keys), older.as_slice()).unwrap();
    let joined = open(fresh.path());
    assert_eq!(joined.head().header, original.snapshot().unwrap().header(2).unwrap().unwrap());
    drop(joined);

    let refused = |g: Genesis, bytes: &[u8]| {
        let d = tempfile::tempdir().unwrap();
        let e = chain::import_snapshot(d.path(), &g, bytes).unwrap_err();
        assert!(!d.path().join("chain.redb").exists(), "nothing is left behind ({e})");
        e.to_string()
    };
    let e = refused(genesis_of(7, &keys), &older);
    assert!(e.contains("chain id 31337") && e.contains("chain id 7"), "{e}");
    let e = refused(genesis_of(CHAIN_ID, &keys[..2]), &older);
    assert!(e.contains("genesis"), "{e}");
    let mut damaged = older.clone();
    let n = damaged.len();
    damaged[n - 1] ^= 1;
    let e = refused(genesis_of(CHAIN_ID, &keys), &damaged);
    assert!(e.contains("checksum"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let e = chain::import_snapshot(d.path(), &genesis_of(CHAIN_ID, &keys), &older[..100]).unwrap_err();
    assert!(matches!(e, ChainError::Snapshot(SnapshotError::Truncated(_))), "{e}");

    // A directory that holds a chain is refused, and keeps its chain.
    let e = chain::import_snapshot(fresh.path(), &genesis_of(CHAIN_ID, &keys), older.as_slice()).unwrap_err();
    assert!(e.to_string().contains("already holds a chain"), "{e}");
    // Opening the imported chain with another genesis is refused.
    let e = Chain::open(config(fresh.path(), genesis_of(CHAIN_ID, &keys[..2]))).err().unwrap();
    assert!(e.to_string().contains("different chain"), "{e}");

    // Export from a stopped node's directory checks the genesis it is given.
    drop(original);
    let mut out = Vec::new();
    let s = chain::export_snapshot(dir.path(), &genesis_of(CHAIN_ID, &keys), None, &mut out).unwrap();
    assert_eq!(s.info.height, 3);
    let e =
        chain::export_snapshot(dir.path(), &genesis_of(CHAIN_ID, &keys[..1]), Some(3), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("different chain"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = chain::export_snapshot(empty.path(), &genesis_of(CHAIN_ID, &keys), Some(0), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("holds no chain"), "{e}");
}
