//! The chain driven as the RPC server drives it: submit raw transactions,
//! produce blocks, read receipts and state.

use std::sync::Arc;

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_primitives::TxKind;
use alloy_sol_types::{SolCall, SolError};
use chain::{BlockTime, Chain, ChainConfig, PoolConfig};
use keys::{SecretKey, derive_account, encode_2718, sign_eip1559, sign_legacy};
use primitives::abi::{IBank, IParams, Unauthorized};
use primitives::system::{Module, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, Bytes, U256};
use runtime::Genesis;
use runtime::bank::BankRead;

const GWEI: u128 = 1_000_000_000;

fn dev_keys(n: u32) -> Vec<SecretKey> {
    (0..n).map(|i| derive_account(keys::DEV_MNEMONIC, i).unwrap()).collect()
}

fn genesis(keys: &[SecretKey]) -> Genesis {
    Genesis {
        chain_id: 31337,
        timestamp: 1_700_000_000,
        alloc: keys.iter().map(|k| (k.address(), Amount::open(10_000))).collect(),
        params: vec![],
        operators: vec![],
        calls: vec![],
        base_model: None,
    }
}

fn open(dir: &std::path::Path, keys: &[SecretKey]) -> Arc<Chain> {
    Chain::open(ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: genesis(keys),
        block_time: BlockTime::Manual,
        history: 100,
        pool: PoolConfig { max_nonce_gap: 16, ..Default::default() },
        max_txs_per_block: 10_000,
    })
    .unwrap()
}

fn tx(
    key: &SecretKey,
    nonce: u64,
    to: Address,
    value: u128,
    input: Vec<u8>,
    gas: u64,
    max_fee: u128,
    tip: u128,
) -> Vec<u8> {
    let t = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: tip,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    encode_2718(&sign_eip1559(key, t))
}

fn transfer(key: &SecretKey, nonce: u64, to: Address, value: u128) -> Vec<u8> {
    tx(key, nonce, to, value, vec![], 21_000, 10 * GWEI, GWEI)
}

fn balance(chain: &Chain, a: &Address) -> Amount {
    chain.snapshot().unwrap().balance(a).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_is_mined_with_exact_fees() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let chain = open(dir.path(), &k);
    let (a, b) = (k[0].address(), k[1].address());
    let h = chain.submit(&transfer(&k[0], 0, b, 5 * primitives::ONE_OPEN)).await.unwrap();
    assert_eq!(chain.pending_nonce(&a).unwrap(), 1);
    let n = chain.produce_block().unwrap();
    assert_eq!(n, 1);
    let snap = chain.snapshot().unwrap();
    let loc = snap.tx_location(&h).unwrap().unwrap();
    assert_eq!((loc.block, loc.index), (1, 0));
    let r = &snap.receipts(1).unwrap().unwrap()[0];
    assert!(r.success);
    assert_eq!(r.gas_used, 21_000);
    let header = snap.header(1).unwrap().unwrap();
    let base = header.base_fee_per_gas.unwrap() as u128;
    assert_eq!(r.effective_gas_price, base + GWEI);
    let fee = 21_000 * r.effective_gas_price;
    assert_eq!(balance(&chain, &b), Amount(Amount::open(10_000).0 + 5 * primitives::ONE_OPEN));
    assert_eq!(balance(&chain, &a), Amount(Amount::open(10_000).0 - 5 * primitives::ONE_OPEN - fee));
    // The receipt's fee splits exactly; with nobody staking, the validators'
    // share is swept to the treasury at the end of the block.
    let treasury = balance(&chain, &TREASURY).0;
    assert_eq!(treasury, fee);
    assert_eq!(balance(&chain, &VALIDATOR_REWARD_POOL).0, 0);
    assert_eq!(snap.state_root(1).unwrap(), header.state_root);
    assert_eq!(chain.pool_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_at_submission_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let chain = open(dir.path(), &k);
    let b = k[1].address();
    let poor = SecretKey::from_bytes(&[7u8; 32]).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0x02, 0xc0, 0x01], "rlp:"),
        (transfer(&k[0], 1, b, 1), ""), // accepted (queued, nonce 1) — checked below
        (transfer(&k[0], 50, b, 1), "nonce too high"),
        (transfer(&poor, 0, b, 1), "insufficient funds for gas * price + value"),
        (tx(&k[0], 0, b, 1, vec![], 20_000, 10 * GWEI, GWEI), "intrinsic gas too low"),
        (tx(&k[0], 0, b, 1, vec![], 21_000, GWEI / 2, 0), "max fee per gas less than block base fee"),
        (
            tx(&k[0], 0, b, 1, vec![], 21_000, 2 * GWEI, 3 * GWEI),
            "max priority fee per gas higher than max fee per gas",
        ),
        (tx(&k[0], 0, b, 1, vec![], 100_000_000, 2 * GWEI, GWEI), "exceeds block gas limit"),
        (tx(&k[0], 0, b, 1, vec![1u8; 200 * 1024], 10_000_000, 2 * GWEI, GWEI), "oversized data"),
    ];
    for (raw, want) in &cases {
        let r = chain.submit(raw).await;
        if want.is_empty() {
            r.unwrap();
        } else {
            let e = r.unwrap_err().0;
            assert!(e.starts_with(want), "wanted {want:?}, got {e:?}");
        }
    }
    // Wrong chain id, legacy without EIP-155, bad signature.
    let legacy = |chain_id| {
        encode_2718(&sign_legacy(
            &k[0],
            TxLegacy {
                chain_id,
                nonce: 0,
                gas_price: 10 * GWEI,
                gas_limit: 21_000,
                to: TxKind::Call(b),
                value: U256::from(1),
                input: Bytes::new(),
            },
        ))
    };
    assert_eq!(chain.submit(&legacy(Some(1))).await.unwrap_err().0, "invalid chain id for signer");
    assert_eq!(
        chain.submit(&legacy(None)).await.unwrap_err().0,
        "only replay-protected (EIP-155) transactions allowed over RPC"
    );
    // A signature that recovers no key (r = 0).
    let t = TxEip1559 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        to: TxKind::Call(b),
        ..Default::default()
    };
    let sig = alloy_primitives::Signature::new(U256::ZERO, U256::from(1u64), false);
    use alloy_consensus::SignableTransaction;
    let bad = encode_2718(&alloy_consensus::TxEnvelope::Eip1559(t.into_signed(sig)));
    assert_eq!(chain.submit(&bad).await.unwrap_err().0, "invalid sender");
    // Same tx again, and an underpriced replacement.
    let ok = transfer(&k[0], 0, b, 1);
    chain.submit(&ok).await.unwrap();
    assert_eq!(chain.submit(&ok).await.unwrap_err().0, "already known");
    let repl = tx(&k[0], 0, b, 2, vec![], 21_000, 10 * GWEI + 1, GWEI);
    assert_eq!(chain.submit(&repl).await.unwrap_err().0, "replacement transaction underpriced");
    let repl = tx(&k[0], 0, b, 2, vec![], 21_000, 11 * GWEI, 2 * GWEI);
    chain.submit(&repl).await.unwrap();
    assert_eq!(chain.pool_len(), 2);
    chain.produce_block().unwrap();
    // Nonce 0 (replacement) and nonce 1 mined; the replaced one is gone.
    assert_eq!(chain.snapshot().unwrap().account(&k[0].address()).unwrap().nonce, 2);
    assert_eq!(chain.pool_len(), 0);
    assert_eq!(chain.submit(&transfer(&k[0], 1, b, 1)).await.unwrap_err().0, "nonce too low");
    // Nothing else moved: b got exactly 1 + 2 base units.
    assert_eq!(balance(&chain, &b), Amount(Amount::open(10_000).0 + 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_calls_log_and_fail_with_custom_errors() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let chain = open(dir.path(), &k);
    let (a, b) = (k[0].address(), k[1].address());
    let bank = Module::Bank.address();
    let call = IBank::transferCall { to: b, amount: U256::from(1234u64) }.abi_encode();
    chain.submit(&tx(&k[0], 0, bank, 0, call, 100_000, 10 * GWEI, GWEI)).await.unwrap();
    let set = IParams::setCall { name: "fee.treasury_bps".into(), value: U256::from(1) }.abi_encode();
    let hset = chain.submit(&tx(&k[0], 1, Module::Params.address(), 0, set, 100_000, 10 * GWEI, GWEI)).await.unwrap();
    // Value to a non-payable function reverts.
    let bal = IBank::balanceOfCall { account: a }.abi_encode();
    chain.submit(&tx(&k[0], 2, bank, 5, bal, 100_000, 10 * GWEI, GWEI)).await.unwrap();
    // Unknown selector, and not enough gas for the call.
    chain.submit(&tx(&k[0], 3, bank, 0, vec![1, 2, 3, 4], 100_000, 10 * GWEI, GWEI)).await.unwrap();
    let call = IBank::transferCall { to: b, amount: U256::from(1u64) }.abi_encode();
    chain.submit(&tx(&k[0], 4, bank, 0, call, 25_000, 10 * GWEI, GWEI)).await.unwrap();
    chain.produce_block().unwrap();
    let snap = chain.snapshot().unwrap();
    let rs = snap.receipts(1).unwrap().unwrap();
    assert_eq!(rs.len(), 5);
    assert!(rs[0].success);
    assert_eq!(rs[0].logs.len(), 1);
    let ev = rs[0].logs[0].clone();
    assert_eq!(ev.address, bank);
    let decoded = <IBank::Transfer as alloy_sol_types::SolEvent>::decode_log_data(&ev.data).unwrap();
    assert_eq!((decoded.from, decoded.to, decoded.value), (a, b, U256::from(1234u64)));
    assert!(!rs[1].success);
    assert_eq!(Unauthorized::abi_decode(&rs[1].revert_data).unwrap().caller, a);
    assert!(rs[1].logs.is_empty());
    assert!(rs[1].gas_used > 21_000);
    assert_eq!(snap.tx_location(&hset).unwrap().unwrap().index, 1);
    assert!(!rs[2].success);
    assert_eq!(&rs[2].revert_data[..], &primitives::abi::NonPayable::SELECTOR[..]);
    assert!(!rs[3].success);
    assert_eq!(&rs[3].revert_data[..4], &primitives::abi::UnknownFunction::SELECTOR[..]);
    assert!(!rs[4].success);
    assert_eq!(rs[4].gas_used, 25_000);
    // Failed calls still bumped the nonce and changed no parameter.
    assert_eq!(snap.account(&a).unwrap().nonce, 5);
    use runtime::params::ParamsRead;
    assert_eq!(snap.param(&runtime::params::FEE_TREASURY_BPS).unwrap(), 2_000);
    assert_eq!(balance(&chain, &b), Amount(Amount::open(10_000).0 + 1234));
    // eth_call of a view.
    let head = snap.header(1).unwrap().unwrap();
    let env = chain.env_at(&head);
    let out =
        runtime::call(&snap, &env, a, bank, Amount::ZERO, &IBank::balanceOfCall { account: b }.abi_encode(), None)
            .unwrap();
    assert!(out.success);
    assert_eq!(
        IBank::balanceOfCall::abi_decode_returns(&out.output).unwrap(),
        U256::from(Amount::open(10_000).0 + 1234)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transactions_survive_restart_and_replay_matches() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(3);
    let b = k[2].address();
    {
        let chain = open(dir.path(), &k);
        for n in 0..5 {
            chain.submit(&transfer(&k[0], n, b, 1)).await.unwrap();
        }
        chain.produce_block().unwrap();
        for n in 0..3 {
            chain.submit(&transfer(&k[1], n, b, 1)).await.unwrap();
        }
        // Dropped without producing: the last three are only in the journal.
    }
    let chain = open(dir.path(), &k);
    assert_eq!(chain.pool_len(), 3);
    assert_eq!(chain.pending_nonce(&k[1].address()).unwrap(), 3);
    chain.produce_block().unwrap();
    assert_eq!(chain.pool_len(), 0);
    assert_eq!(balance(&chain, &b), Amount(Amount::open(10_000).0 + 8));
    let scratch = tempfile::tempdir().unwrap();
    let checked = chain::replay_dir(&chain, scratch.path()).unwrap();
    assert_eq!(checked, 2);
    drop(chain);
    // Another genesis is refused on the same directory.
    let other = Chain::open(ChainConfig {
        data_dir: dir.path().to_path_buf(),
        genesis: genesis(&k[..1]),
        block_time: BlockTime::Manual,
        history: 100,
        pool: PoolConfig::default(),
        max_txs_per_block: 100,
    });
    let e = other.err().unwrap().to_string();
    assert!(e.contains("different chain"), "{e}");
}

/// Access lists cost gas as EIP-2930 prices them (2,400 per address, 1,900
/// per storage key): a transaction whose limit covers only its calldata is
/// refused at submission, and a mined one is charged for its list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lists_are_charged() {
    use alloy_eips::eip2930::{AccessList, AccessListItem};
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let chain = open(dir.path(), &k);
    let b = k[1].address();
    let list = AccessList(
        (0..3u8)
            .map(|i| AccessListItem {
                address: Address::repeat_byte(i + 1),
                storage_keys: (0..4u8).map(primitives::B256::repeat_byte).collect(),
            })
            .collect(),
    );
    let with_list = |nonce: u64, gas: u64| {
        let t = TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: TxKind::Call(b),
            value: U256::from(1),
            access_list: list.clone(),
            input: Bytes::new(),
        };
        encode_2718(&sign_eip1559(&k[0], t))
    };
    let list_gas = 3 * 2_400 + 12 * 1_900;
    // Enough for a plain transfer, not for its list: refused, nothing changes.
    let e = chain.submit(&with_list(0, 21_000 + list_gas - 1)).await.unwrap_err().0;
    assert!(e.starts_with("intrinsic gas too low"), "{e}");
    assert_eq!(chain.pool_len(), 0);
    let h = chain.submit(&with_list(0, 21_000 + list_gas)).await.unwrap();
    chain.produce_block().unwrap();
    let snap = chain.snapshot().unwrap();
    let loc = snap.tx_location(&h).unwrap().unwrap();
    let r = &snap.receipts(loc.block).unwrap().unwrap()[loc.index as usize];
    assert!(r.success);
    assert_eq!(r.gas_used, 21_000 + list_gas, "the list is paid for in execution too");
}

/// A sender cannot lock the pool with transactions that never run: past its
/// share of queued (future-nonce) transactions it is refused, while its
/// executable ones are still admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_nonce_transactions_are_bounded_per_sender() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let chain = Chain::open(ChainConfig {
        data_dir: dir.path().to_path_buf(),
        genesis: genesis(&k),
        block_time: BlockTime::Manual,
        history: 100,
        pool: PoolConfig::default(),
        max_txs_per_block: 10_000,
    })
    .unwrap();
    let b = k[1].address();
    let limit = PoolConfig::default().max_queued_per_sender as u64;
    for n in 1..=limit {
        chain.submit(&transfer(&k[0], n, b, 1)).await.unwrap();
    }
    assert_eq!(chain.submit(&transfer(&k[0], limit + 1, b, 1)).await.unwrap_err().0, "account limit exceeded");
    assert_eq!(chain.pool_counts(), (0, limit as usize));
    // The gap filled, all of them are executable and mined.
    chain.submit(&transfer(&k[0], 0, b, 1)).await.unwrap();
    assert_eq!(chain.pool_counts(), (limit as usize + 1, 0));
    chain.produce_block().unwrap();
    assert_eq!(chain.pool_len(), 0);
}

fn config(dir: &std::path::Path, keys: &[SecretKey], block_time: BlockTime, pool: PoolConfig) -> ChainConfig {
    ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: genesis(keys),
        block_time,
        history: 100,
        pool,
        max_txs_per_block: 10_000,
    }
}

/// Poll (with a deadline) until `hash` is in a committed block.
async fn until_mined(chain: &Chain, hash: &primitives::B256) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while chain.snapshot().unwrap().tx_location(hash).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "{hash} was not mined");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Dropping the last handle of a running chain stops and joins its producer
/// and journal threads before it returns: the directory opens again at once
/// (redb refuses a file that anything in the process still holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_chain_frees_its_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(2);
    let b = k[1].address();
    for block_time in [BlockTime::Instant, BlockTime::Interval(5), BlockTime::Instant] {
        let chain = Chain::open(config(dir.path(), &k, block_time, PoolConfig::default())).unwrap();
        chain.start();
        let e = Chain::open(config(dir.path(), &k, BlockTime::Manual, PoolConfig::default())).err().unwrap();
        assert!(e.to_string().contains("in use"), "a running chain holds its directory: {e}");
        let nonce = chain.pending_nonce(&k[0].address()).unwrap();
        let mut last = None;
        for n in nonce..nonce + 5 {
            last = Some(chain.submit(&transfer(&k[0], n, b, 1)).await.unwrap());
        }
        until_mined(&chain, &last.unwrap()).await;
        // More work in flight while the chain is dropped.
        chain.submit(&transfer(&k[0], nonce + 5, b, 1)).await.unwrap();
        let head = chain.head().number();
        drop(chain);
        let again = Chain::open(config(dir.path(), &k, BlockTime::Manual, PoolConfig::default()))
            .expect("no thread of the dropped chain still holds its directory");
        assert!(again.head().number() >= head);
        assert_eq!(again.pending_nonce(&k[0].address()).unwrap(), nonce + 6, "the last transaction is kept");
    }
}

/// `stop` lets the producer finish and the journal sync, then refuses new
/// transactions; a restart finds the same head and every acknowledged
/// transaction that was not yet in a block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_reopen_keeps_the_head_and_pending_acknowledged_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(3);
    let to = k[2].address();
    let chain = Chain::open(config(dir.path(), &k, BlockTime::Instant, PoolConfig::default())).unwrap();
    chain.start();
    let mut mined = Vec::new();
    for n in 0..3 {
        mined.push(chain.submit(&transfer(&k[0], n, to, 1)).await.unwrap());
    }
    until_mined(&chain, &mined[2]).await;
    // Queued behind a nonce gap: acknowledged, never minable until the gap fills.
    let queued: Vec<_> = submit_all(&chain, (1..3).map(|n| transfer(&k[1], n, to, 1)).collect()).await;
    let racing = chain.submit(&transfer(&k[0], 3, to, 1)).await.unwrap();
    chain.stop();
    let head = chain.head();
    assert_eq!(chain.pool_counts().1, 2, "the queued transactions wait in the pool");
    let e = chain.submit(&transfer(&k[1], 0, to, 1)).await.unwrap_err().0;
    assert!(e.contains("stopped"), "a stopped chain acknowledges nothing: {e}");
    assert_eq!(chain.pending_nonce(&k[1].address()).unwrap(), 0, "the refused transaction is not pooled");
    chain.stop(); // idempotent
    assert_eq!(chain.head().hash, head.hash, "no block after stop");
    drop(chain);
    let chain = Chain::open(config(dir.path(), &k, BlockTime::Manual, PoolConfig::default())).unwrap();
    assert_eq!(chain.head().hash, head.hash);
    assert_eq!(chain.head().number(), head.number());
    for h in &queued {
        assert!(chain.pool_transaction(h).is_some(), "acknowledged {h} lost");
    }
    let snap = chain.snapshot().unwrap();
    assert!(
        chain.pool_transaction(&racing).is_some() || snap.tx_location(&racing).unwrap().is_some(),
        "the transaction acknowledged just before stop is in a block or the pool"
    );
    drop(snap);
    chain.submit(&transfer(&k[1], 0, to, 1)).await.unwrap();
    chain.produce_block().unwrap();
    assert_eq!(chain.pool_len(), 0);
    assert_eq!(chain.snapshot().unwrap().account(&k[1].address()).unwrap().nonce, 3);
}

/// Submit each transaction, in order; their hashes.
async fn submit_all(chain: &Chain, raws: Vec<Vec<u8>>) -> Vec<primitives::B256> {
    let mut out = Vec::new();
    for raw in raws {
        out.push(chain.submit(&raw).await.unwrap());
    }
    out
}

/// A full pool refuses a newcomer that pays no more than what it holds, and
/// makes room for one that pays more by evicting the cheapest (latest on a
/// tie); a restart rebuilds the same pool from the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_evicts_the_cheapest_and_a_restart_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(5);
    let to = k[4].address();
    let pool = PoolConfig { max_txs: 3, ..Default::default() };
    let held = {
        let chain = Chain::open(config(dir.path(), &k, BlockTime::Manual, pool.clone())).unwrap();
        let first = submit_all(&chain, (0..3).map(|i| transfer(&k[i], 0, to, 1)).collect()).await;
        let e = chain.submit(&transfer(&k[3], 0, to, 1)).await.unwrap_err().0;
        assert_eq!(e, "txpool is full");
        let rich = chain.submit(&tx(&k[3], 0, to, 1, vec![], 21_000, 10 * GWEI, 3 * GWEI)).await.unwrap();
        assert_eq!(chain.pool_len(), 3);
        assert!(chain.pool_transaction(&first[2]).is_none(), "the latest of the cheapest is evicted");
        vec![first[0], first[1], rich]
    };
    let chain = Chain::open(config(dir.path(), &k, BlockTime::Manual, pool)).unwrap();
    assert_eq!(chain.pool_len(), 3);
    for h in &held {
        assert!(chain.pool_transaction(h).is_some(), "{h} is back in the pool");
    }
    chain.produce_block().unwrap();
    let snap = chain.snapshot().unwrap();
    assert_eq!(snap.tx_location(&held[2]).unwrap().map(|l| l.index), Some(0), "the best tip goes first");
    assert_eq!(snap.account(&k[2].address()).unwrap().nonce, 0, "the evicted transaction never ran");
    assert_eq!(snap.receipts(1).unwrap().unwrap().len(), 3);
}

/// One sender cannot fill the pool: past `max_per_sender` it is refused
/// while others are still admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sender_is_held_to_its_share_of_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let k = dev_keys(3);
    let to = k[2].address();
    let pool = PoolConfig { max_per_sender: 4, ..Default::default() };
    let chain = Chain::open(config(dir.path(), &k, BlockTime::Manual, pool)).unwrap();
    submit_all(&chain, (0..4).map(|n| transfer(&k[0], n, to, 1)).collect()).await;
    assert_eq!(chain.submit(&transfer(&k[0], 4, to, 1)).await.unwrap_err().0, "account limit exceeded");
    chain.submit(&transfer(&k[1], 0, to, 1)).await.unwrap();
    assert_eq!(chain.pool_counts(), (5, 0));
    chain.produce_block().unwrap();
    // Room again once the block took them.
    chain.submit(&transfer(&k[0], 4, to, 1)).await.unwrap();
    assert_eq!(chain.pool_len(), 1);
}

/// A wait for a block ends at its commit, not at a timer's next tick; a
/// timeout or a stop ends it without one, and a stopped chain's wait returns at once.
#[test]
fn waiting_for_a_block_wakes_at_its_commit() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path(), &dev_keys(1));
    let head = chain.head().number();
    assert_eq!(chain.wait_for_block(head, Duration::from_millis(10)), None, "no block comes in manual mode");
    let waiter = {
        let chain = chain.clone();
        std::thread::spawn(move || chain.wait_for_block(head, Duration::from_secs(60)))
    };
    let n = chain.produce_block().unwrap();
    assert_eq!(waiter.join().unwrap(), Some(n));
    assert_eq!(chain.wait_for_block(head, Duration::ZERO), Some(n), "a block already committed ends the wait");
    let waiter = {
        let chain = chain.clone();
        std::thread::spawn(move || chain.wait_for_block(n, Duration::from_secs(60)))
    };
    let stopping = Instant::now();
    chain.stop();
    assert_eq!(waiter.join().unwrap(), None);
    assert!(chain.is_stopped());
    assert_eq!(chain.wait_for_block(n, Duration::from_secs(60)), None);
    assert!(stopping.elapsed() < Duration::from_secs(30), "the stop woke the waiters");
}
