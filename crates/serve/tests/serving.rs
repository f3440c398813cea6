//! OpenLoRA on the tiny fixture model: mixed-adapter continuous batching gives
//! each sequence exactly its solo output; a thousand adapters served through a
//! byte-bounded cache; the OpenAI API over real HTTP (streaming and not),
//! its refusals, a client that disconnects mid-stream paying only for
//! what it was sent, and attribution beside the batch (answers that do not
//! wait for it, a full queue refusing paid requests up front).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ml::{LoraAdapter, LoraConfig, Model, ModelFiles, SamplingParams, Target};
use primitives::{Address, B256};
use serde_json::{Value, json};
use serve::*;

fn tiny() -> (Arc<Model>, Arc<ml::TextTokenizer>) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
    let f = ModelFiles::open(&p).unwrap();
    (Arc::new(Model::from_files(&f).unwrap()), Arc::new(f.tokenizer.clone()))
}

/// A distinct adapter per model id, rank 2..=9.
fn adapter_for(m: &Model, id: u64) -> LoraAdapter {
    let r = 2 + (id % 8) as usize;
    let cfg = LoraConfig {
        r,
        lora_alpha: 2.0 * r as f64,
        lora_dropout: 0.0,
        target_modules: vec![Target::Q, Target::V, Target::Down],
    };
    LoraAdapter::random(cfg, &m.config, id, 0.3).unwrap()
}

struct Source {
    model: Arc<Model>,
    loads: Mutex<u64>,
}

impl AdapterSource for Source {
    fn load(&self, id: u64) -> Result<LoraAdapter, String> {
        *self.loads.lock().unwrap() += 1;
        if id == 999_999 {
            return Err("no such adapter".into());
        }
        Ok(adapter_for(&self.model, id))
    }
}

fn greedy(max: usize) -> SamplingParams {
    SamplingParams { max_tokens: max, ..Default::default() }
}

fn no_eos(m: &Model, t: &ml::TextTokenizer) -> (Arc<Model>, Arc<ml::TextTokenizer>) {
    let mut m = m.clone();
    m.config.eos_token_ids.clear();
    let mut t = t.clone();
    t.eos_token = None;
    (Arc::new(m), Arc::new(t))
}

#[test]
fn mixed_adapter_batches_equal_solo_runs_and_a_thousand_adapters_fit_the_budget() {
    let (m0, t0) = tiny();
    let (m, t) = no_eos(&m0, &t0);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(
        m.clone(),
        t.clone(),
        EngineConfig { max_batch: 8, prefill_chunk: 5, ..Default::default() },
        metrics.clone(),
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Twelve requests over four adapters and the base, submitted at once: the
    // batch is mixed, prompts of different lengths (some prefilled in chunks).
    let prompts: Vec<Vec<u32>> =
        (0..12).map(|i| (0..(3 + 2 * i)).map(|k| 5 + (k * 37 + i * 11) % 500).collect()).collect();
    let adapters: Vec<Option<Arc<LoraAdapter>>> =
        (0..12).map(|i| if i % 5 == 4 { None } else { Some(Arc::new(adapter_for(&m, 1 + (i % 4) as u64))) }).collect();
    // All twelve submitted at once, then read to the end.
    let burst = |engine: &Engine| -> Vec<Outcome> {
        let rxs: Vec<_> = (0..12)
            .map(|i| {
                engine
                    .submit(Request {
                        prompt: prompts[i].clone(),
                        adapter: adapters[i].clone(),
                        params: greedy(10),
                        cancel: Arc::new(AtomicBool::new(false)),
                    })
                    .unwrap()
            })
            .collect();
        rxs.into_iter().map(|rx| rt.block_on(serve::engine::collect(rx)).unwrap()).collect()
    };
    let outs = burst(&engine);
    for i in 0..12 {
        let solo = ml::generate(&m, &t, adapters[i].as_deref(), &prompts[i], &greedy(10), |_| true).unwrap();
        assert_eq!(outs[i].tokens, solo.tokens, "request {i}: batched output differs from its solo run");
        assert_eq!(outs[i].completion_tokens, 10);
    }
    assert!(metrics.steps.load(Ordering::Relaxed) < 12 * 12, "requests shared steps");
    // Eight prompts in a batch, at most five tokens of each per step: under the default budget.
    let most = metrics.step_prompt_tokens_max.load(Ordering::Relaxed);
    assert!(most > 7 && most <= 40, "{most}");

    // The same burst with a budget of 7 prompt tokens per step (not a multiple
    // of the chunk): steps never feed more, and every output is its solo run's.
    let small = Arc::new(Metrics::default());
    let budgeted = Engine::start(
        m.clone(),
        t.clone(),
        EngineConfig { max_batch: 8, prefill_chunk: 5, prefill_budget: 7, ..Default::default() },
        small.clone(),
    );
    for (i, o) in burst(&budgeted).iter().enumerate() {
        assert_eq!(o.tokens, outs[i].tokens, "request {i}");
    }
    assert_eq!(small.step_prompt_tokens_max.load(Ordering::Relaxed), 7);
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    assert!(small.steps.load(Ordering::Relaxed) as usize >= prompt_tokens.div_ceil(7));
    budgeted.stop();

    // A thousand adapters through a cache smaller than all of them.
    let one = adapter_for(&m, 1).byte_size();
    let budget = 40 * one;
    let src = Arc::new(Source { model: m.clone(), loads: Mutex::new(0) });
    let cache = AdapterCache::new(budget, src.clone(), metrics.clone());
    let mut rng = ml::rng::Rng::new(7);
    let mut pending = Vec::new();
    for _ in 0..200 {
        let id = 1 + rng.below(1000);
        let a = cache.get(id).unwrap();
        assert!(cache.resident_bytes() <= budget, "the cache stays within its byte budget");
        pending.push(
            engine
                .submit(Request {
                    prompt: vec![10, 20, 30],
                    adapter: Some(a),
                    params: greedy(2),
                    cancel: Arc::new(AtomicBool::new(false)),
                })
                .unwrap(),
        );
        if pending.len() == 8 {
            for rx in pending.drain(..) {
                assert_eq!(rt.block_on(serve::engine::collect(rx)).unwrap().completion_tokens, 2);
            }
        }
    }
    for rx in pending.drain(..) {
        rt.block_on(serve::engine::collect(rx)).unwrap();
    }
    assert!(cache.resident_bytes() <= budget);
    assert!(metrics.cache_evictions.load(Ordering::Relaxed) > 0);
    // Pinned adapters stay; the same id twice is a hit.
    cache.pin(5).unwrap();
    for id in 100..160 {
        cache.get(id).unwrap();
    }
    assert!(cache.is_resident(5));
    let hits = metrics.cache_hits.load(Ordering::Relaxed);
    cache.get(5).unwrap();
    assert_eq!(metrics.cache_hits.load(Ordering::Relaxed), hits + 1);
    assert!(matches!(cache.get(999_999), Err(CacheError::Load(..))));
    engine.stop();
}

/// Billing for the API tests: every caller may spend up to `limit`; bills are recorded.
struct TestBilling {
    limit: u128,
    billed: Mutex<Vec<Usage>>,
    reserved: Mutex<u128>,
}

impl Billing for TestBilling {
    fn reserve(
        &self,
        payer: Option<Address>,
        model: &ModelEntry,
        p: usize,
        max: usize,
    ) -> Result<Reservation, BillingError> {
        let payer = payer.ok_or_else(|| BillingError::Unauthenticated("an API key is required".into()))?;
        let max_cost = cost(p as u64, max as u64, model.price_in_per_1k, model.price_out_per_1k);
        let mut r = self.reserved.lock().unwrap();
        if *r + max_cost > self.limit {
            return Err(BillingError::InsufficientAllowance(format!(
                "needs {max_cost}, allowance {}",
                self.limit - *r
            )));
        }
        *r += max_cost;
        Ok(Reservation {
            id: 1,
            payer,
            model: model.clone(),
            max_cost,
            retrieval_hash: B256::ZERO,
            licence: 0,
            licence_tokens: 0,
        })
    }
    fn release(&self, r: Reservation) {
        *self.reserved.lock().unwrap() -= r.max_cost;
    }
    fn bill(&self, r: Reservation, u: Usage, req: B256, resp: B256) -> Result<Option<Value>, BillingError> {
        *self.reserved.lock().unwrap() -= r.max_cost;
        self.billed.lock().unwrap().push(u);
        Ok(Some(
            json!({"requestHash": req.to_string(), "responseHash": resp.to_string(), "inputTokens": u.prompt_tokens, "outputTokens": u.completion_tokens}),
        ))
    }
}

struct Dir {
    base: B256,
}

impl ModelDirectory for Dir {
    fn model(&self, id: u64) -> Result<Option<ModelEntry>, String> {
        let e = |id: u64, live: bool, adapter: bool| ModelEntry {
            id,
            name: format!("model {id}"),
            owner: Address::repeat_byte(1),
            live,
            has_adapter: adapter,
            adapter_hash: B256::repeat_byte(id as u8),
            base_hash: self.base,
            price_in_per_1k: 1000,
            price_out_per_1k: 2000,
            created: 1,
        };
        Ok(match id {
            1 => Some(e(1, true, false)),
            2 => Some(e(2, true, true)),
            3 => Some(e(3, false, true)),
            _ => None,
        })
    }
    fn live(&self) -> Result<Vec<ModelEntry>, String> {
        Ok(vec![self.model(1)?.unwrap(), self.model(2)?.unwrap()])
    }
}

struct Keys;
impl httpapi::ApiKeyResolver for Keys {
    fn resolve(&self, h: &B256) -> Option<Address> {
        (*h == httpapi::auth::api_key_hash("sk-test")).then(|| Address::repeat_byte(7))
    }
}

fn post(addr: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    headers.extend(key.map(|k| ("Authorization", format!("Bearer {k}"))));
    let r = rpc::http::HttpClient::new(addr).request("POST", path, &headers, body.as_bytes()).unwrap();
    (r.status, r.text())
}

fn get(addr: &str, path: &str) -> String {
    rpc::http::HttpClient::new(addr).request("GET", path, &[], b"").unwrap().text()
}

/// [`post`] on a given connection (one from a chosen source address, which the
/// HTTP client cannot make): (status, head, body).
fn post_on(mut s: std::net::TcpStream, path: &str, key: Option<&str>, body: &str) -> (u16, String, String) {
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    (status, head.to_string(), body)
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        b = &rest[n + 2..];
    }
    out
}

/// The OpenAI API on `m` over HTTP, billed by a `TestBilling` (limit 450)
/// and keyed by `Keys`: the runtime serving it, its billing, its address.
fn http_api(m: Arc<Model>, t: Arc<ml::TextTokenizer>) -> (tokio::runtime::Runtime, Arc<TestBilling>, String) {
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(m.clone(), t, EngineConfig::default(), metrics.clone());
    let cache = AdapterCache::new(1 << 20, Arc::new(Source { model: m.clone(), loads: Mutex::new(0) }), metrics);
    let billing = Arc::new(TestBilling { limit: 450, billed: Mutex::new(vec![]), reserved: Mutex::new(0) });
    let svc = Arc::new(OpenLora {
        engine,
        cache,
        models: Arc::new(Dir { base: m.hash }),
        billing: billing.clone(),
        limits: Limits { requests_per_minute: 40, ..Default::default() },
        rate: Default::default(),
        attributor: None,
        retriever: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cfg = httpapi::ServerConfig { api_keys: Arc::new(Keys), ..Default::default() };
    rt.spawn(httpapi::serve_with(listener, routes(svc), cfg, std::future::pending()));
    (rt, billing, addr)
}

/// An answer ends at the model's end-of-sequence token (billed for what it
/// generated) unless the request sets `ignore_eos` (vLLM's extension), which
/// generates `max_tokens` as the model would without an EOS token.
#[test]
fn answers_stop_at_eos_unless_ignore_eos_asks_for_every_token() {
    let (m0, t0) = tiny();
    let (plain, t) = no_eos(&m0, &t0);
    let prompt = t.encode("The", false).unwrap();
    let full = ml::generate(&plain, &t, None, &prompt, &greedy(6), |_| true).unwrap().tokens;
    // The model's EOS is the token its greedy answer ends with: third of six.
    let mut m = (*plain).clone();
    m.config.eos_token_ids = vec![full[2]];
    assert!(!full[..2].contains(&full[2]), "the test needs a first occurrence at index 2: {full:?}");
    let (_rt, billing, addr) = http_api(Arc::new(m), t.clone());
    let ask = |extra: &str| -> Value {
        let body = format!(r#"{{"model":"m1","prompt":"The","max_tokens":6,"temperature":0{extra}}}"#);
        let (st, b) = post(&addr, "/v1/completions", Some("sk-test"), &body);
        assert_eq!(st, 200, "{b}");
        serde_json::from_str(&b).unwrap()
    };
    let stopped = ask("");
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert_eq!(stopped["usage"]["completion_tokens"], 2);
    let all = ask(r#","ignore_eos":true"#);
    assert_eq!(all["choices"][0]["finish_reason"], "length");
    assert_eq!(all["usage"]["completion_tokens"], 6);
    assert_eq!(all["choices"][0]["text"].as_str().unwrap(), t.decode(&full).unwrap());
    let billed: Vec<usize> = billing.billed.lock().unwrap().iter().map(|u| u.completion_tokens).collect();
    assert_eq!(billed, vec![2, 6], "each answer is billed for what it generated");
}

#[test]
fn openai_api_over_http() {
    let (m0, t0) = tiny();
    let (m, t) = no_eos(&m0, &t0);
    let (_rt, billing, addr) = http_api(m.clone(), t.clone());

    // Non-streaming chat on an adapter model: usage and receipt.
    let (st, body) = post(
        &addr,
        "/v1/chat/completions",
        Some("sk-test"),
        r#"{"model":"m2","messages":[{"role":"user","content":"hello"}],"max_tokens":6,"temperature":0}"#,
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["receipt"]["outputTokens"], 6);
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(v["receipt"]["inputTokens"].as_u64().unwrap(), prompt_tokens);

    // Streaming completion on the base model: chunks, the final chunk with usage and receipt, [DONE].
    let (st, body) = post(
        &addr,
        "/v1/completions",
        Some("sk-test"),
        r#"{"model":"m1","prompt":"The","max_tokens":5,"stream":true,"temperature":0,"stream_options":{"include_usage":true}}"#,
    );
    assert_eq!(st, 200, "{body}");
    let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    // OpenAI's include_usage: "usage": null on every chunk, then one chunk without choices carrying it.
    let (usage_chunk, chunks) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], serde_json::json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    assert!(chunks.iter().all(|c| c["usage"].is_null() && c.as_object().unwrap().contains_key("usage")));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert!(last["receipt"].is_object());
    assert_eq!(usage_chunk["receipt"], last["receipt"]);
    // Without include_usage no chunk has a usage field.
    let (_, plain) = post(
        &addr,
        "/v1/completions",
        Some("sk-test"),
        r#"{"model":"m1","prompt":"The","max_tokens":3,"stream":true,"temperature":0}"#,
    );
    let plain: Vec<Value> = plain
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(plain.iter().all(|c| !c.as_object().unwrap().contains_key("usage")), "{plain:?}");
    assert!(plain.last().unwrap()["receipt"].is_object());
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    // The same prompt non-streamed gives the same text (greedy).
    let (_, b2) = post(
        &addr,
        "/v1/completions",
        Some("sk-test"),
        r#"{"model":"m1","prompt":"The","max_tokens":5,"temperature":0}"#,
    );
    let v2: Value = serde_json::from_str(&b2).unwrap();
    assert_eq!(v2["choices"][0]["text"].as_str().unwrap(), text);

    // Refusals, each OpenAI-shaped, nothing billed.
    let billed_before = billing.billed.lock().unwrap().len();
    let cases = [
        (r#"{"model":"m9","prompt":"x"}"#, "/v1/completions", Some("sk-test"), 404, "model_not_found"),
        (r#"{"model":"gpt-4","prompt":"x"}"#, "/v1/completions", Some("sk-test"), 404, "model_not_found"),
        (r#"{"model":"m3","prompt":"x"}"#, "/v1/completions", Some("sk-test"), 404, "model_not_live"),
        (r#"{"model":"m1","prompt":"#, "/v1/completions", Some("sk-test"), 400, "invalid_json"),
        (
            r#"{"model":"m1","prompt":"x","temperature":5}"#,
            "/v1/completions",
            Some("sk-test"),
            400,
            "invalid_temperature",
        ),
        (
            r#"{"model":"m1","prompt":"x","max_tokens":0}"#,
            "/v1/completions",
            Some("sk-test"),
            400,
            "invalid_max_tokens",
        ),
        (r#"{"model":"m1","messages":[]}"#, "/v1/chat/completions", Some("sk-test"), 400, "invalid_messages"),
        (r#"{"model":"m1","prompt":"x"}"#, "/v1/completions", None, 401, "invalid_api_key"),
        (
            r#"{"model":"m1","prompt":"x","max_tokens":1000}"#,
            "/v1/completions",
            Some("sk-test"),
            402,
            "insufficient_allowance",
        ),
    ];
    for (body, path, key, status, code) in cases {
        let (st, b) = post(&addr, path, key, body);
        assert_eq!(st, status, "{body}: {b}");
        let v: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
        assert_eq!(v["error"]["code"], code, "{body}: {b}");
    }
    let (st, b) = post(&addr, "/v1/completions", Some("sk-wrong"), r#"{"model":"m1","prompt":"x"}"#);
    assert_eq!(st, 401, "{b}");
    let long = format!(r#"{{"model":"m1","prompt":"{}"}}"#, "word ".repeat(400));
    let (st, b) = post(&addr, "/v1/completions", Some("sk-test"), &long);
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("context_length_exceeded"), "{b}");
    assert_eq!(billing.billed.lock().unwrap().len(), billed_before, "refusals bill nothing");

    // A client that disconnects mid-stream pays only for what it was sent.
    {
        let body = r#"{"model":"m1","messages":[{"role":"user","content":"go on"}],"max_tokens":200,"stream":true,"temperature":0}"#;
        let headers =
            [("Content-Type", "application/json".to_string()), ("Authorization", "Bearer sk-test".to_string())];
        let stream = rpc::http::HttpClient::new(&addr)
            .stream("POST", "/v1/chat/completions", &headers, body.as_bytes())
            .unwrap();
        let mut events = stream.events();
        let mut seen = 0;
        while seen < 3 {
            let e = events.next().unwrap().unwrap();
            if e.data.contains("\"content\"") && !e.data.contains("\"content\":\"\"") {
                seen += 1;
            }
        }
        // Dropping the events closes the connection.
    }
    let mut billed = None;
    for _ in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = billing.billed.lock().unwrap();
        if b.len() > billed_before {
            billed = b.last().copied();
            break;
        }
    }
    let u = billed.expect("the cancelled stream was billed");
    assert!(u.completion_tokens >= 3 && u.completion_tokens < 200, "billed {} tokens", u.completion_tokens);
    assert_eq!(*billing.reserved.lock().unwrap(), 0, "no reservation left behind");

    // Models, adapters and metrics.
    let get = |path: &str| get(&addr, path);
    let models: Value = serde_json::from_str(&get("/v1/models")).unwrap();
    assert_eq!(models["data"].as_array().unwrap().len(), 2);
    assert_eq!(models["data"][1]["id"], "m2");
    let ad: Value = serde_json::from_str(&get("/v1/adapters")).unwrap();
    assert_eq!(ad["data"][0]["model"], "m2");
    let text = get("/metrics");
    for name in [
        "openlora_queue_depth",
        "openlora_time_to_first_token_seconds_bucket",
        "openlora_inter_token_latency_seconds_count",
        "openlora_adapter_cache_misses_total 1",
        "openlora_tokens_per_second",
    ] {
        assert!(text.contains(name), "metrics lack {name}");
    }
    // Per-key rate limit (40 per minute here): soon refused with 429 and Retry-After.
    let mut limited = false;
    for _ in 0..60 {
        let (st, b) = post(&addr, "/v1/completions", Some("sk-test"), r#"{"model":"m1","prompt":"x","max_tokens":1}"#);
        if st == 429 {
            assert!(b.contains("rate_limit_exceeded"), "{b}");
            limited = true;
            break;
        }
    }
    assert!(limited, "the per-key rate limit never applied");
    let _: HashMap<u8, u8> = HashMap::new();
}

/// A connection to `addr` from the loopback address `from` (any of 127.0.0.0/8
/// on Linux): another network address for the server's anonymous rate limit.
fn connect_from(rt: &tokio::runtime::Runtime, from: &str, addr: &str) -> std::net::TcpStream {
    let (from, addr) = (format!("{from}:0").parse().unwrap(), addr.parse().unwrap());
    let s = rt
        .block_on(async move {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(from)?;
            sock.connect(addr).await
        })
        .unwrap();
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

fn tokenized(m: &Metrics) -> u64 {
    m.prompts_tokenized.load(Ordering::Relaxed)
}

#[test]
fn callers_are_rate_limited_before_their_request_is_read_anonymous_ones_by_network_address() {
    let (m, t) = tiny();
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(m.clone(), t.clone(), EngineConfig::default(), metrics.clone());
    let cache =
        AdapterCache::new(1 << 20, Arc::new(Source { model: m.clone(), loads: Mutex::new(0) }), metrics.clone());
    let billing = Arc::new(TestBilling { limit: 1_000_000, billed: Mutex::new(vec![]), reserved: Mutex::new(0) });
    let svc = Arc::new(OpenLora {
        engine,
        cache,
        models: Arc::new(Dir { base: m.hash }),
        billing: billing.clone(),
        limits: Limits {
            requests_per_minute: 3,
            anonymous_requests_per_minute: 2,
            max_body_bytes: 4096,
            ..Default::default()
        },
        rate: Default::default(),
        attributor: None,
        retriever: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cfg = httpapi::ServerConfig { api_keys: Arc::new(Keys), ..Default::default() };
    rt.spawn(httpapi::serve_with(listener, routes(svc.clone()), cfg, std::future::pending()));
    let chat = r#"{"model":"m1","messages":[{"role":"user","content":"hello there"}],"max_tokens":1,"temperature":0}"#;
    let anon = |from: &str, body: &str| post_on(connect_from(&rt, from, &addr), "/v1/chat/completions", None, body);

    // Anonymous callers from 127.0.0.2: two requests are worked on (rendered,
    // tokenized, then refused by billing, which wants an API key) ...
    for _ in 0..2 {
        let (st, _, b) = anon("127.0.0.2", chat);
        assert_eq!(st, 401, "{b}");
    }
    let work = tokenized(&metrics);
    assert_eq!(work, 2);
    // ... the third is refused before any work: 429, Retry-After, an OpenAI error,
    // nothing tokenized; a malformed body is refused the same way, not parsed.
    for body in [chat, r#"{"model":"m1","messages":"#] {
        let (st, head, b) = anon("127.0.0.2", body);
        assert_eq!(st, 429, "{b}");
        let retry = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after:").map(|v| v.trim().to_string()));
        assert!(retry.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v >= 1), "{head}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error", "{b}");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{b}");
        assert!(v["error"]["message"].as_str().unwrap().contains("127.0.0.2"), "{b}");
    }
    assert_eq!(tokenized(&metrics), work, "a rate-limited request is never tokenized");
    assert!(metrics.render().contains("openlora_requests_rate_limited_total 2"));

    // Another network address is unaffected.
    let (st, _, b) = anon("127.0.0.3", chat);
    assert_eq!(st, 401, "{b}");
    assert_eq!(tokenized(&metrics), work + 1);
    // A body larger than the limit is refused by its length, unread.
    let (st, _, b) = anon("127.0.0.4", &format!(r#"{{"model":"m1","prompt":"{}"}}"#, "x".repeat(5000)));
    assert_eq!(st, 413, "{b}");
    assert!(b.contains("request_too_large"), "{b}");
    assert_eq!(tokenized(&metrics), work + 1);

    // An API key is limited by its account (3 a minute here), before parsing:
    // past the limit a malformed body is 429, not 400 `invalid_json`.
    for _ in 0..3 {
        let (st, b) = post(&addr, "/v1/chat/completions", Some("sk-test"), chat);
        assert_eq!(st, 200, "{b}");
    }
    let work = tokenized(&metrics);
    let (st, b) = post(&addr, "/v1/chat/completions", Some("sk-test"), r#"{"model":"m1","messages":"#);
    assert_eq!(st, 429, "{b}");
    assert!(b.contains("rate_limit_exceeded") && b.contains(&Address::repeat_byte(7).to_string()), "{b}");
    // From another network address too: the key's limit is its account's.
    let (st, _, b) = post_on(connect_from(&rt, "127.0.0.5", &addr), "/v1/completions", Some("sk-test"), chat);
    assert_eq!(st, 429, "{b}");
    assert_eq!(tokenized(&metrics), work);
    assert_eq!(billing.billed.lock().unwrap().len(), 3);
}

/// An attributor that computes nothing until the test opens its gate, so the
/// queue's states can be seen through the API; it fails on request.
#[derive(Default)]
struct GatedAttributor {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    fail: AtomicBool,
    records: Mutex<HashMap<B256, (Value, RecordAccess)>>,
}

impl GatedAttributor {
    fn set_open(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl Attributor for GatedAttributor {
    fn wants(&self, model: &ModelEntry, _retrieved: Option<&Retrieved>) -> bool {
        model.has_adapter
    }
    fn attribute(
        &self,
        model: &ModelEntry,
        receipt_hash: B256,
        _prompt: &[u32],
        response: &[u32],
        _text: &str,
        access: RecordAccess,
        _retrieved: Option<&Retrieved>,
    ) -> Result<Value, String> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        if self.fail.load(Ordering::Relaxed) {
            return Err("the test asked for a failure".into());
        }
        let summary =
            json!({"recordHash": primitives::content_hash(receipt_hash.as_slice()).to_string(), "credits": []});
        let record = json!({"record": {"receipt": receipt_hash.to_string(), "model": model.id, "tokens": response.len()},
                            "recordHash": summary["recordHash"], "summary": summary});
        self.records.lock().unwrap().insert(receipt_hash, (record, access));
        Ok(summary)
    }
    fn record(&self, receipt_hash: B256) -> Option<(Value, RecordAccess)> {
        self.records.lock().unwrap().get(&receipt_hash).cloned()
    }
}

/// [`TestBilling`] whose receipts have a hash and a payer (what attribution keys on).
struct ReceiptedBilling(TestBilling, std::sync::atomic::AtomicU64);

impl Billing for ReceiptedBilling {
    fn reserve(
        &self,
        payer: Option<Address>,
        m: &ModelEntry,
        p: usize,
        max: usize,
    ) -> Result<Reservation, BillingError> {
        self.0.reserve(payer, m, p, max)
    }
    fn release(&self, r: Reservation) {
        self.0.release(r)
    }
    fn bill(&self, r: Reservation, u: Usage, req: B256, resp: B256) -> Result<Option<Value>, BillingError> {
        let (payer, n) = (r.payer, self.1.fetch_add(1, Ordering::Relaxed));
        let mut v = self.0.bill(r, u, req, resp)?.unwrap();
        v["hash"] = json!(primitives::content_hash(&n.to_le_bytes()).to_string());
        v["payer"] = json!(payer.to_string());
        v["operator"] = json!(Address::repeat_byte(9).to_string());
        Ok(Some(v))
    }
}

/// Two API keys: the payer's (`sk-test`) and a stranger's (`sk-other`).
struct TwoKeys;
impl httpapi::ApiKeyResolver for TwoKeys {
    fn resolve(&self, h: &B256) -> Option<Address> {
        if *h == httpapi::auth::api_key_hash("sk-test") {
            Some(Address::repeat_byte(7))
        } else {
            (*h == httpapi::auth::api_key_hash("sk-other")).then(|| Address::repeat_byte(8))
        }
    }
}

/// GET `path` as `key`: (status, Retry-After, body).
fn get_as(addr: &str, path: &str, key: Option<&str>) -> (u16, Option<String>, Value) {
    let headers: Vec<(&str, String)> = key.map(|k| ("Authorization", format!("Bearer {k}"))).into_iter().collect();
    let r = rpc::http::HttpClient::new(addr).request("GET", path, &headers, b"").unwrap();
    let retry = r.header("retry-after").map(str::to_string);
    (r.status, retry, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Poll the record route until `done` holds of its answer (bounded, no timing asserted).
fn poll_record(addr: &str, receipt: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    for _ in 0..1000 {
        let (st, _, v) = get_as(addr, &format!("/v1/attribution/{receipt}"), Some("sk-test"));
        if done(st, &v) {
            return (st, v);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the attribution of {receipt} never got there");
}

#[test]
fn answers_do_not_wait_for_attribution_and_a_full_queue_refuses_paid_requests_up_front() {
    let (m0, t0) = tiny();
    let (m, t) = no_eos(&m0, &t0);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(m.clone(), t.clone(), EngineConfig::default(), metrics.clone());
    let cache =
        AdapterCache::new(1 << 20, Arc::new(Source { model: m.clone(), loads: Mutex::new(0) }), metrics.clone());
    let billing = Arc::new(ReceiptedBilling(
        TestBilling { limit: 1_000_000, billed: Mutex::new(vec![]), reserved: Mutex::new(0) },
        Default::default(),
    ));
    let gate = Arc::new(GatedAttributor::default());
    let config = QueueConfig { workers: 1, capacity: 1, ..Default::default() };
    let queue = AttributionQueue::start(gate.clone(), config, metrics.clone()).unwrap();
    let svc = Arc::new(OpenLora {
        engine,
        cache,
        models: Arc::new(Dir { base: m.hash }),
        billing: billing.clone(),
        limits: Limits::default(),
        rate: Default::default(),
        attributor: Some(queue.clone()),
        retriever: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cfg = httpapi::ServerConfig { api_keys: Arc::new(TwoKeys), ..Default::default() };
    rt.spawn(httpapi::serve_with(listener, routes(svc.clone()), cfg, std::future::pending()));
    let chat = |model: &str, stream: bool| {
        format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}],"max_tokens":4,"temperature":0,"stream":{stream}}}"#
        )
    };

    // The gate is closed: the whole answer arrives with its receipt and a pointer to the record.
    let (st, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", false));
    assert_eq!(st, 200, "{body}");
    let a: Value = serde_json::from_str(&body).unwrap();
    let ra = a["receipt"]["hash"].as_str().unwrap().to_string();
    assert_eq!(
        a["attribution"],
        json!({"status": "pending", "receipt": ra, "record": format!("/v1/attribution/{ra}")}),
        "{a}"
    );
    // Its record is on its way: 202 (queued, then computing), to the payer only.
    let (st, v) = poll_record(&addr, &ra, |_, v| v["status"] == "computing");
    assert_eq!((st, &v["receipt"]), (202, &json!(ra)), "{v}");
    for stranger in [None, Some("sk-other")] {
        let (st, _, v) = get_as(&addr, &format!("/v1/attribution/{ra}"), stranger);
        assert_eq!((st, &v["error"]["code"]), (403, &json!("record_forbidden")), "{v}");
    }

    // Streamed: the final chunk carries the receipt and the pointer; its job waits behind the first.
    let (st, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", true));
    assert_eq!(st, 200, "{body}");
    let last: Value = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .next_back()
        .unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{last}");
    let rb = last["receipt"]["hash"].as_str().unwrap().to_string();
    assert_eq!(last["attribution"]["status"], "pending", "{last}");
    assert_eq!(last["attribution"]["record"], format!("/v1/attribution/{rb}"));
    let (st, retry, v) = get_as(&addr, &format!("/v1/attribution/{rb}"), Some("sk-test"));
    assert_eq!((st, retry.as_deref()), (202, Some("1")), "{v}");
    assert_eq!(v, json!({"status": "pending", "receipt": rb, "position": 1}));

    // The queue is full (capacity 1): a paid request is refused before anything
    // is reserved or charged; an answer with nothing to attribute is still served.
    let billed = billing.0.billed.lock().unwrap().len();
    let r = rpc::http::HttpClient::new(&addr)
        .request(
            "POST",
            "/v1/chat/completions",
            &[("Content-Type", "application/json".into()), ("Authorization", "Bearer sk-test".into())],
            chat("m2", false).as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    let e: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(e["error"]["code"], "attribution_queue_full", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("nothing was reserved"), "{e}");
    assert_eq!(*billing.0.reserved.lock().unwrap(), 0, "nothing reserved");
    assert_eq!(billing.0.billed.lock().unwrap().len(), billed, "nothing billed");
    let (st, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m1", false));
    assert_eq!(st, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["attribution"].is_null(), "{body}");
    let text = get(&addr, "/metrics");
    for line in [
        "openledger_attribution_refused_total 1",
        "openledger_attribution_queue_depth 1",
        "openledger_attribution_queue_capacity 1",
        "openledger_attribution_computing 1",
        "openledger_attribution_computed_total 0",
        "openlora_final_chunk_delay_seconds_count 3",
    ] {
        assert!(text.contains(line), "metrics lack {line:?}:\n{text}");
    }

    // The gate opens: both records are served as they are kept.
    gate.set_open(true);
    for r in [&ra, &rb] {
        let (_, v) = poll_record(&addr, r, |st, _| st == 200);
        assert_eq!(v["record"]["receipt"], json!(r), "{v}");
        assert!(v["summary"]["recordHash"].is_string(), "{v}");
    }
    assert!(get(&addr, "/metrics").contains("openledger_attribution_computed_total 2"));

    // A computation that fails: no record; the route says why, and who pays.
    gate.fail.store(true, Ordering::Relaxed);
    let (_, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", false));
    let rc = serde_json::from_str::<Value>(&body).unwrap()["receipt"]["hash"].as_str().unwrap().to_string();
    let (st, v) = poll_record(&addr, &rc, |st, _| st != 202);
    assert_eq!((st, &v["error"]["code"]), (404, &json!("attribution_failed")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("fallback"), "{v}");
    gate.fail.store(false, Ordering::Relaxed);

    // Shutdown with one job computing and one queued: the stop is bounded, the
    // queued job is dropped (and says so), new paid requests are refused.
    gate.set_open(false);
    let (_, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", false));
    let rd = serde_json::from_str::<Value>(&body).unwrap()["receipt"]["hash"].as_str().unwrap().to_string();
    poll_record(&addr, &rd, |_, v| v["status"] == "computing");
    let (_, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", false));
    let re = serde_json::from_str::<Value>(&body).unwrap()["receipt"]["hash"].as_str().unwrap().to_string();
    queue.stop(std::time::Duration::from_millis(100));
    let (st, _, v) = get_as(&addr, &format!("/v1/attribution/{re}"), Some("sk-test"));
    assert_eq!((st, &v["error"]["code"]), (404, &json!("attribution_dropped")), "{v}");
    let (st, body) = post(&addr, "/v1/chat/completions", Some("sk-test"), &chat("m2", false));
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("node_stopping"), "{body}");
    gate.set_open(true);
    let (st, _) = poll_record(&addr, &rd, |st, _| st != 202);
    assert_eq!(st, 200, "the job computing at the stop finishes on its thread");
    svc.engine.stop();
}

#[test]
fn the_held_tier_serves_later_cold_loads_and_reloads_a_damaged_file() {
    let (m, _) = tiny();
    let dir = tempfile::tempdir().unwrap();
    // A write a crash interrupted is cleared at open.
    std::fs::write(dir.path().join("ab.i8.tmp.1.0"), b"half").unwrap();
    let tier = HeldTier::open(dir.path(), m.config.clone()).unwrap();
    assert!(!dir.path().join("ab.i8.tmp.1.0").exists());
    let a = adapter_for(&m, 3);
    let loads = std::cell::Cell::new(0);
    let source = |dtype| {
        loads.set(loads.get() + 1);
        a.with_weights_dtype(dtype).map_err(|e| e.to_string())
    };
    let i8 = ml::AdapterDtype::I8;
    // The first load reads the source and writes the held form; the next reads it.
    let (first, from) = tier.load_as(&a.hash, i8, || source(i8)).unwrap();
    assert_eq!((from, loads.get()), (Served::Source, 1));
    assert!(tier.path(&a.hash).exists());
    let (again, from) = tier.load_as(&a.hash, i8, || source(i8)).unwrap();
    assert_eq!((from, loads.get()), (Served::Tier, 1));
    assert_eq!((again.hash, again.byte_size()), (first.hash, first.byte_size()));
    for (x, y) in again.layers.iter().zip(&first.layers) {
        for (p, q) in x.values().zip(y.values()) {
            assert_eq!(
                p.to_f32().unwrap().0.to_vec2::<f32>().unwrap(),
                q.to_f32().unwrap().0.to_vec2::<f32>().unwrap()
            );
            assert_eq!(p.scales, q.scales);
        }
    }
    // A damaged file is removed and the source read again (and its form rewritten).
    let path = tier.path(&a.hash);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (_, from) = tier.load_as(&a.hash, i8, || source(i8)).unwrap();
    assert_eq!((from, loads.get()), (Served::Source, 2));
    assert_eq!(tier.load_as(&a.hash, i8, || source(i8)).unwrap().1, Served::Tier);
    // A file under another adapter's name is not taken for it.
    let b = adapter_for(&m, 4);
    std::fs::copy(&path, tier.path(&b.hash)).unwrap();
    let (got, from) = tier.load_as(&b.hash, i8, || b.with_weights_dtype(i8).map_err(|e| e.to_string())).unwrap();
    assert_eq!((from, got.hash), (Served::Source, b.hash));
    // A source answering with another adapter than asked: served as is, not written.
    let c = adapter_for(&m, 5);
    let (got, _) = tier.load_as(&c.hash, i8, || a.with_weights_dtype(i8).map_err(|e| e.to_string())).unwrap();
    assert_eq!(got.hash, a.hash);
    assert!(!tier.path(&c.hash).exists());
    // Only the held forms of adapters still wanted are kept; other files are not the tier's.
    std::fs::write(dir.path().join("notes.txt"), b"not a held form").unwrap();
    assert!(tier.has(&b.hash));
    assert_eq!(tier.retain(&std::collections::HashSet::from([a.hash])), 1);
    assert!(tier.has(&a.hash) && !tier.has(&b.hash) && dir.path().join("notes.txt").exists());
    assert_eq!(tier.retain(&std::collections::HashSet::from([a.hash])), 0);
    // f32 and bf16 caches have no held form: always the source.
    let f32 = ml::AdapterDtype::F32;
    let before = loads.get();
    for _ in 0..2 {
        assert_eq!(tier.load_as(&a.hash, f32, || source(f32)).unwrap().1, Served::Source);
    }
    assert_eq!(loads.get(), before + 2);
}
