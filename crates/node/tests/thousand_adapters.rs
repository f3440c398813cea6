//! A node serving a thousand fine-tuned models: a thousand adapters in the
//! blob store, registered on-chain, made live by one governance proposal, and
//! requests to random ones all answered over the OpenAI API while the adapter
//! cache stays within its byte budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use alloy_sol_types::SolCall;
use primitives::abi::{IGovernance, IModels, ModelRegistration};
use primitives::system::Module;
use primitives::{B256, Bytes, U256};
use serde_json::{Value, json};

const N: u64 = 1000;

fn dev(i: u32) -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, i).unwrap()
}

fn tx(
    chain: &chain::Chain,
    k: &keys::SecretKey,
    nonce: u64,
    to: primitives::Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) -> Vec<u8> {
    let t = TxEip1559 {
        chain_id: chain.chain_id(),
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(data),
    };
    keys::encode_2718(&keys::sign_eip1559(k, t))
}

async fn mined(chain: &chain::Chain, hash: B256) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = chain.snapshot().unwrap();
        if let Some(loc) = st.tx_location(&hash).unwrap() {
            return st.receipts(loc.block).unwrap().unwrap()[loc.index as usize].success;
        }
        drop(st);
        assert!(Instant::now() < deadline, "transaction {hash} not mined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send(
    chain: &chain::Chain,
    k: &keys::SecretKey,
    to: primitives::Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) {
    let nonce = chain.pending_nonce(&k.address()).unwrap();
    let h = chain.submit(&tx(chain, k, nonce, to, value, data, gas)).await.unwrap();
    assert!(mined(chain, h).await, "transaction reverted");
}

fn post(addr: &str, key: &str, body: &str) -> (u16, String) {
    let headers = [("Content-Type", "application/json".to_string()), ("Authorization", format!("Bearer {key}"))];
    let r =
        rpc::http::HttpClient::new(addr).request("POST", "/v1/chat/completions", &headers, body.as_bytes()).unwrap();
    (r.status, r.text())
}

fn get(addr: &str, path: &str) -> String {
    rpc::http::HttpClient::new(addr).request("GET", path, &[], b"").unwrap().text()
}

/// A chat request for model `id`, answered with three tokens.
fn ask(http: &str, id: u64) {
    let body =
        format!(r#"{{"model":"m{id}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":3,"temperature":0}}"#);
    let (st, b) = post(http, "sk-thousand", &body);
    assert_eq!(st, 200, "m{id}: {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["model"], format!("m{id}"));
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[test]
fn a_thousand_adapters_registered_approved_and_served() {
    let dir = tempfile::tempdir().unwrap();
    // A quantized base, as people download them: tiny-llama as a Q4_1 GGUF.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
    let base = dir.path().join("tiny-llama.Q4_1.gguf");
    ml::ModelFiles::open(&fixture).unwrap().write_gguf_as(&base, Some(ml::kernels::QuantType::Q4_1)).unwrap();
    let files = ml::ModelFiles::open(&base).unwrap();
    let lora =
        ml::LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: vec![ml::Target::Q, ml::Target::V] };
    // The node keeps the base's blocks as stored and so, by its rule, holds
    // adapters as int8 (no dtype is configured): the held tier then serves
    // every cold load, which the counts below check.
    let i8 = ml::AdapterDtype::I8;
    let one = ml::LoraAdapter::random(lora.clone(), &files.config, 1, 0.3).unwrap().with_weights_dtype(i8).unwrap();
    let budget = 64 * one.byte_size();
    let mut serving = node::ServingConfig::dev();
    serving.adapter_cache_bytes = budget;
    assert_eq!(serving.adapter_dtype, None);
    serving.settle_every_ms = 500;
    let cfg = node::NodeConfig {
        data_dir: dir.path().join("data"),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        blobs: None,
        attester: None,
        block_time: chain::BlockTime::Instant,
        history: 1000,
        max_txs_per_block: 10_000,
        genesis: node::dev_genesis(),
        base_model: Some(base.clone()),
        serving: Some(serving),
        verifier: None,
        job_limits: Default::default(),
        ingest_quota: Default::default(),
        dev_rpc: false,
        validator: None,
        blob_peers: Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let n = rt.block_on(node::start(&cfg)).unwrap();
    let chain = n.chain.clone();
    let http = n.http_addr.unwrap().to_string();

    // A thousand adapters in the blob store, and their registrations (dev account 1).
    let owner = dev(1);
    let mut hashes = Vec::new();
    rt.block_on(async {
        let start = chain.pending_nonce(&owner.address()).unwrap();
        for i in 0..N {
            let a = ml::LoraAdapter::random(lora.clone(), &files.config, 1000 + i, 0.3).unwrap();
            let tmp = dir.path().join(format!("a{i}"));
            a.save_peft(&tmp, "tiny-llama").unwrap();
            let cfg_hash = n.blobs.put(std::fs::read(tmp.join("adapter_config.json")).unwrap().into()).await.unwrap();
            let w_hash =
                n.blobs.put(std::fs::read(tmp.join("adapter_model.safetensors")).unwrap().into()).await.unwrap();
            let metrics = json!({"artefacts": {"adapterConfig": cfg_hash, "adapterModel": w_hash}}).to_string();
            let reg = ModelRegistration {
                name: format!("adapter-{i}"),
                baseModelHash: files.hash,
                adapterHash: a.hash,
                datanets: vec![],
                hyperparams: Bytes::new(),
                metrics: Bytes::from(metrics.into_bytes()),
                trainingLogHash: B256::repeat_byte(1),
                checkpointHashes: vec![],
                checkpointLearningRates: vec![],
                sketchHash: B256::ZERO,
                sketchSeed: 0,
                sketchK: 0,
                priceInPer1k: 1_000_000,
                priceOutPer1k: 2_000_000,
            };
            let data = IModels::registerCall { registration: reg }.abi_encode();
            let raw = tx(&chain, &owner, start + i, Module::Models.address(), 0, data, 400_000);
            hashes.push(chain.submit(&raw).await.unwrap());
        }
        for h in &hashes {
            assert!(mined(&chain, *h).await, "registration reverted");
        }
        // Propose all (m2..=m1001; m1 is the genesis base model).
        for id in 2..=N + 1 {
            let raw = tx(
                &chain,
                &owner,
                start + N + id - 2,
                Module::Models.address(),
                0,
                IModels::proposeCall { id }.abi_encode(),
                100_000,
            );
            hashes.push(chain.submit(&raw).await.unwrap());
        }
        assert!(mined(&chain, *hashes.last().unwrap()).await);
        // One governance proposal approving them all (four calls of 250 ids).
        let targets = vec![Module::Models.address(); 4];
        let calldatas: Vec<Bytes> = (0..4u64)
            .map(|c| Bytes::from(IModels::approveCall { ids: (2 + 250 * c..2 + 250 * (c + 1)).collect() }.abi_encode()))
            .collect();
        let gov = Module::Governance.address();
        let v = dev(0);
        send(
            &chain,
            &v,
            gov,
            10 * primitives::ONE_OPEN,
            IGovernance::proposeCall { description: "a thousand adapters".into(), targets, calldatas }.abi_encode(),
            2_000_000,
        )
        .await;
        let count = 1u64; // the first proposal of this chain
        // Voting opens after the voting delay; blocks are sealed by transactions.
        let filler = dev(9);
        let advance = |blocks: u64| {
            let chain = chain.clone();
            let filler = filler.clone();
            async move {
                for _ in 0..blocks {
                    send(&chain, &filler, dev(8).address(), 1, vec![], 21_000).await;
                }
            }
        };
        advance(3).await;
        send(&chain, &v, gov, 0, IGovernance::castVoteCall { id: count, support: 1 }.abi_encode(), 300_000).await;
        advance(9).await;
        send(&chain, &v, gov, 0, IGovernance::executeCall { id: count }.abi_encode(), 28_000_000).await;
        // A payer with an allowance and an API key (dev account 2).
        let payer = dev(2);
        let inf = Module::Inference.address();
        let op = node::dev_serving_operator().address();
        use primitives::abi::IInference;
        send(&chain, &payer, inf, 100 * primitives::ONE_OPEN, IInference::depositCall {}.abi_encode(), 200_000).await;
        send(
            &chain,
            &payer,
            inf,
            0,
            IInference::allowCall { operator: op, amount: 100 * primitives::ONE_OPEN }.abi_encode(),
            200_000,
        )
        .await;
        send(
            &chain,
            &payer,
            inf,
            0,
            IInference::bindApiKeyCall { keyHash: httpapi::auth::api_key_hash("sk-thousand") }.abi_encode(),
            200_000,
        )
        .await;
    });
    let live: Value = serde_json::from_str(&get(&http, "/v1/models")).unwrap();
    assert_eq!(live["data"].as_array().unwrap().len(), N as usize, "all thousand are live and served on this base");
    // Before any request, the node writes every live adapter's held form in the background.
    let tier_dir = cfg.data_dir.join("adapter-tier");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_dir(&tier_dir).unwrap().count() < N as usize {
        assert!(Instant::now() < deadline, "the held tier was not warmed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Requests to random models, four clients at a time: all answered.
    let http = Arc::new(http);
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let http = http.clone();
        threads.push(std::thread::spawn(move || {
            let mut rng = ml::rng::Rng::new(t);
            for _ in 0..30 {
                ask(&http, 2 + rng.below(N));
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    // m2, then 70 others, then m2 again: evicted by then, it is loaded again.
    for id in [2].into_iter().chain(3..73).chain([2]) {
        ask(&http, id);
    }
    assert_eq!(std::fs::read_dir(&tier_dir).unwrap().count(), N as usize, "one held form per adapter");
    let ad: Value = serde_json::from_str(&get(&http, "/v1/adapters")).unwrap();
    let resident = ad["residentBytes"].as_u64().unwrap() as usize;
    assert!(resident <= budget, "{resident} resident bytes exceed the budget of {budget}");
    let metrics = get(&http, "/metrics");
    let counter = |name: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).unwrap().trim().parse().unwrap()
    };
    let misses = counter("openlora_adapter_cache_misses_total");
    assert!(misses > 64, "adapters were loaded just in time ({misses} loads)");
    let tier_loads = counter("openlora_adapter_held_tier_loads_total");
    assert_eq!(tier_loads, misses, "every load read the held tier");
    // Every receipt settles.
    let s = n.serving.as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.meter.queued() > 0 {
        assert!(Instant::now() < deadline, "receipts did not settle");
        std::thread::sleep(Duration::from_millis(100));
    }
    n.stop();
}
