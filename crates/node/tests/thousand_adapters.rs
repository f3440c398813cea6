//! A node serving a thousand fine-tuned models: a thousand adapters in the
//! blob store, registered on-chain, made live by one governance proposal, and
//! requests to random ones all answered over the OpenAI API while the adapter
//! cache stays within its byte budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::dev_flow::{
    adapter_registration, approve_by_governance, dev_key as dev, open_allowance, register_and_propose,
};
use serde_json::{Value, json};

const N: u64 = 1000;

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
        base_model: Some(base.clone()),
        serving: Some(serving),
        ..node::NodeConfig::dev(dir.path().join("data"))
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let n = rt.block_on(node::start(&cfg)).unwrap();
    let chain = n.chain.clone();
    let http = n.http_addr.unwrap().to_string();

    // A thousand adapters in the blob store, registered and proposed (dev
    // account 1), made live by one governance proposal; a payer with an
    // allowance and an API key (dev account 2).
    let owner = dev(1);
    rt.block_on(async {
        let mut regs = Vec::new();
        for i in 0..N {
            let a = ml::LoraAdapter::random(lora.clone(), &files.config, 1000 + i, 0.3).unwrap();
            let tmp = dir.path().join(format!("a{i}"));
            a.save_peft(&tmp, "tiny-llama").unwrap();
            let cfg_hash = n.blobs.put(std::fs::read(tmp.join("adapter_config.json")).unwrap().into()).await.unwrap();
            let w_hash =
                n.blobs.put(std::fs::read(tmp.join("adapter_model.safetensors")).unwrap().into()).await.unwrap();
            let metrics = json!({"artefacts": {"adapterConfig": cfg_hash, "adapterModel": w_hash}}).to_string();
            regs.push(adapter_registration(format!("adapter-{i}"), files.hash, a.hash, metrics));
        }
        let ids = register_and_propose(&chain, &owner, regs).await.unwrap();
        // m1 is the genesis base model.
        assert_eq!(ids, (2..=N + 1).collect::<Vec<_>>());
        approve_by_governance(&chain, &dev(0), &dev(9), &ids).await.unwrap();
        let op = node::dev_serving_operator().address();
        open_allowance(&chain, &dev(2), op, 100 * primitives::ONE_OPEN, "sk-thousand").await.unwrap();
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
