//! A node owns what it starts: after `shutdown` (or `stop`, or drop) no thread
//! or task of it holds the chain, its ports are closed, its data directory
//! opens again at once, and every transaction it acknowledged is in a block
//! or back in the pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use primitives::{B256, Bytes, U256};

fn transfer(chain: &chain::Chain, from: u32, nonce: u64) -> Vec<u8> {
    let k = keys::derive_account(keys::DEV_MNEMONIC, from).unwrap();
    let t = TxEip1559 {
        chain_id: chain.chain_id(),
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(primitives::Address::repeat_byte(7)),
        value: U256::from(1),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    keys::encode_2718(&keys::sign_eip1559(&k, t))
}

fn config(data_dir: PathBuf) -> node::NodeConfig {
    let mut serving = node::ServingConfig::dev();
    serving.settle_every_ms = 50;
    node::NodeConfig {
        data_dir,
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        blobs: None,
        attester: None,
        block_time: chain::BlockTime::Interval(20),
        history: 1000,
        max_txs_per_block: 10_000,
        genesis: node::dev_genesis(),
        base_model: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama")),
        serving: Some(serving),
        verifier: Some(node::VerifierConfig::dev()),
        job_limits: Default::default(),
        ingest_quota: Default::default(),
    }
}

/// The transaction is in a committed block or in the pool of `chain`.
fn known(chain: &chain::Chain, h: &B256) -> bool {
    chain.pool_transaction(h).is_some() || chain.snapshot().unwrap().tx_location(h).unwrap().is_some()
}

#[test]
fn a_stopped_node_lets_go_of_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path().join("data"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..3u64 {
        let n = rt.block_on(node::start(&cfg)).unwrap();
        let (rpc, http) = (n.rpc_addr, n.http_addr.unwrap());
        for h in &acknowledged {
            assert!(known(&n.chain, h), "round {round}: acknowledged {h} was lost");
        }
        for i in 0..3 {
            let raw = transfer(&n.chain, 0, round * 3 + i);
            acknowledged.push(rt.block_on(n.chain.submit(&raw)).unwrap());
        }
        // A connection open while the node stops must not keep it running.
        let idle = std::net::TcpStream::connect(http).unwrap();
        let chain = Arc::downgrade(&n.chain);
        let stopping = Instant::now();
        match round {
            // Waits for the servers too: nothing may hold the chain once it returns.
            0 => rt.block_on(n.shutdown()),
            // The threads are joined; the servers' tasks end on the runtime just after.
            1 => {
                n.stop();
                drop(n);
            }
            _ => drop(n),
        }
        if round > 0 {
            rt.block_on(async {
                while chain.strong_count() > 0 {
                    assert!(stopping.elapsed() < Duration::from_secs(10), "the servers' tasks did not end");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
        assert!(stopping.elapsed() < node::SERVER_DRAIN, "round {round}: stopping waited for the idle connection");
        drop(idle);
        assert!(chain.upgrade().is_none(), "round {round}: a thread or task of the node still holds the chain");
        assert!(std::net::TcpStream::connect(rpc).is_err(), "round {round}: the JSON-RPC port still accepts");
        let reopened = chain::Chain::open(chain::ChainConfig {
            data_dir: cfg.data_dir.clone(),
            genesis: cfg.genesis.clone(),
            block_time: chain::BlockTime::Manual,
            history: cfg.history,
            pool: Default::default(),
            max_txs_per_block: 100,
        })
        .expect("the data directory is free once the node stopped");
        for h in &acknowledged {
            assert!(known(&reopened, h), "round {round}: acknowledged {h} was lost");
        }
    }
}
