//! A node owns what it starts: after `shutdown` (or `stop`, or drop) no thread
//! or task of it holds the chain, its ports are closed, its data directory
//! opens again at once, and every transaction it acknowledged is in a block
//! or back in the pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use primitives::B256;

fn transfer(chain: &chain::Chain, from: u32, nonce: u64) -> Vec<u8> {
    let to = primitives::Address::repeat_byte(7);
    node::dev_flow::signed_tx(
        chain,
        &node::dev_flow::dev_key(from),
        nonce,
        node::dev_flow::Call { to, value: 1, data: vec![], gas: 21_000 },
    )
}

fn config(data_dir: PathBuf) -> node::NodeConfig {
    let mut serving = node::ServingConfig::dev();
    serving.settle_every_ms = 50;
    node::NodeConfig {
        block_time: chain::BlockTime::Interval(20),
        base_model: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama")),
        serving: Some(serving),
        verifier: Some(node::VerifierConfig::dev()),
        ..node::NodeConfig::dev(data_dir)
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
        let closed = n.chain.closed();
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
        // `shutdown` returns with the file closed; after a stop or a drop, the
        // servers' tasks let the chain go just after, on the runtime's threads.
        if round == 0 {
            assert!(closed.is_closed(), "shutdown returned with the database still open");
        } else {
            assert!(closed.wait(Duration::from_secs(10)), "round {round}: the servers' tasks did not end");
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

/// The payer's allowance for the dev serving operator, as the chain says.
fn allowance(chain: &chain::Chain) -> primitives::abi::IInference::allowanceReturn {
    use alloy_sol_types::SolCall;
    use primitives::abi::IInference;
    let call = IInference::allowanceCall {
        payer: node::dev_accounts()[0].address(),
        operator: node::dev_serving_operator().address(),
    };
    let out = runtime::call(
        &chain.snapshot().unwrap(),
        &chain.env_at(&chain.head().header),
        primitives::Address::ZERO,
        primitives::system::Module::Inference.address(),
        primitives::Amount::ZERO,
        &call.abi_encode(),
        None,
    )
    .unwrap();
    IInference::allowanceCall::abi_decode_returns(&out.output).unwrap()
}

/// An answer billed but not yet settled when the node stops is settled by the
/// stop (the queue of receipts lives in memory only): after a restart the
/// payer's allowance shows it paid.
#[test]
fn stopping_a_node_settles_what_it_billed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("data"));
    cfg.genesis = node::dev_genesis_serving("sk-stop-settles", None);
    // m1 is the base model this node serves.
    let served = ml::ModelFiles::open(cfg.base_model.as_ref().unwrap()).unwrap().hash;
    cfg.genesis.base_model.as_mut().unwrap().base_hash = served;
    cfg.verifier = None;
    // No settlement round comes before the stop.
    cfg.serving.as_mut().unwrap().settle_every_ms = 3_600_000;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let n = rt.block_on(node::start(&cfg)).unwrap();
    let before = allowance(&n.chain);
    let headers =
        [("Content-Type", "application/json".to_string()), ("Authorization", "Bearer sk-stop-settles".to_string())];
    let body = r#"{"model":"m1","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"temperature":0}"#;
    let r = rpc::http::HttpClient::new(&n.http_addr.unwrap().to_string())
        .request("POST", "/v1/chat/completions", &headers, body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let cost: u128 = answer["receipt"]["cost"].as_str().expect("a receipt with its cost").parse().unwrap();
    assert!(cost > 0);
    assert_eq!(n.serving.as_ref().unwrap().meter.queued(), 1, "billed, not yet settled");
    rt.block_on(n.shutdown());
    let reopened = chain::Chain::open(chain::ChainConfig {
        data_dir: cfg.data_dir.clone(),
        genesis: cfg.genesis.clone(),
        block_time: chain::BlockTime::Manual,
        history: cfg.history,
        pool: Default::default(),
        max_txs_per_block: 100,
    })
    .unwrap();
    let after = allowance(&reopened);
    assert_eq!(after.lastNonce, before.lastNonce + 1, "the receipt settled before the node stopped");
    assert_eq!(before.remaining - after.remaining, cost, "the payer was charged what the receipt says");
}

/// The web app's dev wallet signs with the public dev keys, so it exists only
/// on a dev chain (`up`: dev RPC, chain id 31337): not under `start` (no dev
/// RPC), nor on another chain id with the dev RPC, where it is a 404 while
/// the wallet script is served.
#[test]
fn the_dev_wallet_exists_only_on_a_dev_chain() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}"#;
    for (name, chain_id, dev_rpc, want) in
        [("start", 31337, false, 404), ("another chain", 777, true, 404), ("up", 31337, true, 200)]
    {
        let mut cfg = config(dir.path().join(name));
        (cfg.serving, cfg.verifier, cfg.base_model, cfg.dev_rpc) = (None, None, None, dev_rpc);
        cfg.genesis.chain_id = chain_id;
        let n = rt.block_on(node::start(&cfg)).unwrap();
        let http = rpc::http::HttpClient::new(&n.http_addr.unwrap().to_string());
        let r = http.request("POST", "/web/dev-wallet", &[("content-type", "application/json".into())], body).unwrap();
        assert_eq!(r.status, want, "{name}: {}", r.text());
        assert_eq!(http.request("GET", "/assets/wallet.js", &[], b"").unwrap().status, 200, "{name}");
        rt.block_on(n.shutdown());
    }
}
