//! `bench serve --billed`: the same requests through a node, paid for. Before
//! any clock starts the bench starts a dev node in process (its own data
//! directory under the work directory, an instant-block chain, serving the
//! same base file with the same engine and cache settings as ours), puts the
//! largest N adapters' PEFT files in its blob store, registers and proposes
//! them, makes them live with one governance proposal, and opens a payer's
//! allowance bound to an API key (`node::dev_flow`). Each run then sends the
//! workload over loopback HTTP as an application would: `POST
//! /v1/completions`, streamed, the prompt as text (ours' prompt ids decoded),
//! `ignore_eos` so every answer is `--new-tokens` long, one client thread
//! per request in flight. Every answer is reserved against the allowance,
//! billed, returned with a signed receipt, journaled, settled on-chain in
//! batches, and has its attribution record computed beside the batch: what a
//! paying application's request costs the node. The figures set beside ours:
//! tokens/s, time to first token as the client sees it (request sent to the
//! first streamed token) and the engine's step time; after the last round,
//! the receipts settled and the time the settlement took to drain.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use primitives::B256;
use serde_json::{Value, json};

use node::dev_flow::{adapter_registration, approve_by_governance, dev_key, open_allowance, register_and_propose};

/// The payer's API key.
const API_KEY: &str = "sk-bench-serve";

/// One paid request as its client saw it.
#[derive(Clone, Debug)]
pub(crate) struct PaidRequest {
    pub completion_tokens: usize,
    pub prompt_tokens: usize,
    /// Request sent to the first streamed token.
    pub ttft_s: f64,
    /// Request sent to the end of the stream.
    pub latency_s: f64,
}

/// One run through the node at one N.
#[derive(Clone, Debug)]
pub(crate) struct BilledRun {
    pub wall_s: f64,
    pub tokens_per_s: f64,
    pub reqs: Vec<PaidRequest>,
    /// Engine steps of the run and their median time (the node's metrics).
    pub steps: u64,
}

/// A dev node serving the bench's adapters to a paying client.
pub(crate) struct BilledNode {
    rt: tokio::runtime::Runtime,
    node: node::Node,
    http: String,
    /// The base model's id, then every adapter's, by index.
    ids: Vec<u64>,
    /// The prompts as text.
    texts: Vec<String>,
    /// Answers that came with a signed receipt (warm-up included).
    receipts: AtomicU64,
}

/// The PEFT files of adapter `i` in the bench's work directory.
fn adapter_files(dir: &Path, i: usize) -> (PathBuf, PathBuf) {
    let d = dir.join("adapters").join(format!("a{i}"));
    (d.join("adapter_config.json"), d.join("adapter_model.safetensors"))
}

impl BilledNode {
    /// Start the node on `base` and make adapters `0..adapters` live on it (hashes
    /// `hashes`, files under `dir`); the prompts `prompts` as text.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        o: &crate::serve::ServeOpts,
        dir: &Path,
        base: &Path,
        base_hash: B256,
        hashes: &[B256],
        dtype: ml::AdapterDtype,
        tokenizer: &ml::TextTokenizer,
        prompts: &[Vec<u32>],
    ) -> Result<BilledNode> {
        let t = Instant::now();
        let mut serving = node::ServingConfig::dev();
        serving.adapter_cache_bytes = (o.cache_mb as usize) << 20;
        serving.adapter_dtype = Some(dtype);
        serving.max_batch = o.max_batch;
        serving.prefill_budget = o.prefill_budget;
        let cfg = node::NodeConfig {
            base_model: Some(base.to_path_buf()),
            serving: Some(serving),
            ..node::NodeConfig::dev(dir.join("node"))
        };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let node = rt.block_on(node::start(&cfg)).map_err(|e| anyhow!("starting the node: {e}"))?;
        let http = node.http_addr.ok_or_else(|| anyhow!("the node has no HTTP address"))?.to_string();
        let ids = rt.block_on(async {
            // The base model itself first (N = 0 and the warm-up), then every adapter.
            let entry = |name: String, adapter: B256, metrics: Value| {
                adapter_registration(name, base_hash, adapter, metrics.to_string())
            };
            let mut regs = vec![entry("bench-base".into(), B256::ZERO, json!({}))];
            for (i, hash) in hashes.iter().enumerate() {
                let (cfg_file, weights) = adapter_files(dir, i);
                let put = |p: PathBuf| {
                    let blobs = node.blobs.clone();
                    async move {
                        let bytes = std::fs::read(&p).with_context(|| p.display().to_string())?;
                        blobs.put(bytes.into()).await.map_err(|e| anyhow!("storing {}: {e}", p.display()))
                    }
                };
                let metrics =
                    json!({"artefacts": {"adapterConfig": put(cfg_file).await?, "adapterModel": put(weights).await?}});
                regs.push(entry(format!("bench-adapter-{i}"), *hash, metrics));
            }
            let chain = &node.chain;
            let ids = register_and_propose(chain, &dev_key(1), regs).await.map_err(|e| anyhow!("registering: {e}"))?;
            approve_by_governance(chain, &dev_key(0), &dev_key(9), &ids)
                .await
                .map_err(|e| anyhow!("governance: {e}"))?;
            let op = node::dev_serving_operator().address();
            open_allowance(chain, &dev_key(2), op, 1000 * primitives::ONE_OPEN, API_KEY)
                .await
                .map_err(|e| anyhow!("the payer's allowance: {e}"))?;
            Ok::<_, anyhow::Error>(ids)
        })?;
        let texts = prompts
            .iter()
            .map(|p| tokenizer.decode(p).map_err(|e| anyhow!("decoding a prompt: {e}")))
            .collect::<Result<Vec<_>>>()?;
        let b = BilledNode { rt, node, http, ids, texts, receipts: AtomicU64::new(0) };
        // As ours: first-touch allocations and thread start-up are not what the runs measure.
        let n = (o.concurrency as usize).min(b.texts.len());
        b.clients(o, n, |i| (b.ids[0], i)).context("warm-up")?;
        println!(
            "  node: {} adapters registered and made live by governance, a payer funded, warmed up in {:.1} s ({})",
            hashes.len(),
            t.elapsed().as_secs_f64(),
            b.http
        );
        Ok(b)
    }

    /// Requests `0..count` from `--concurrency` client threads, request `i`
    /// to model and prompt `pick(i)`; their results and the wall time.
    fn clients(
        &self,
        o: &crate::serve::ServeOpts,
        count: usize,
        pick: impl Fn(usize) -> (u64, usize) + Sync,
    ) -> Result<(Vec<PaidRequest>, f64)> {
        crate::serve::run_clients(o.concurrency, count, |i| {
            let (model, prompt) = pick(i);
            let r = paid_request(&self.http, model, &self.texts[prompt], o.new_tokens)?;
            self.receipts.fetch_add(1, Ordering::Relaxed);
            Ok(r)
        })
    }

    fn engine_steps(&self) -> u64 {
        self.node.serving.as_ref().map_or(0, |s| s.openlora.engine.metrics.steps.load(Ordering::Relaxed))
    }

    /// One run of the workload at `n` adapters (0: the base model).
    pub fn run(&self, o: &crate::serve::ServeOpts, choices: &[usize], n: usize) -> Result<BilledRun> {
        let steps0 = self.engine_steps();
        let (reqs, wall_s) =
            self.clients(o, choices.len(), |i| (if n == 0 { self.ids[0] } else { self.ids[1 + choices[i]] }, i))?;
        let generated: usize = reqs.iter().map(|r| r.completion_tokens).sum();
        Ok(BilledRun { wall_s, tokens_per_s: generated as f64 / wall_s, reqs, steps: self.engine_steps() - steps0 })
    }

    /// The engine's step time over every paid run (its histogram), and after
    /// the runs: how long the attribution queue and the settlement took to
    /// drain once the last answer was sent, the records computed (and failed),
    /// and the receipts settled on-chain.
    pub fn finish(self) -> Result<Value> {
        let s = self.node.serving.as_ref().ok_or_else(|| anyhow!("the node does not serve"))?;
        let m = &s.openlora.engine.metrics;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let (step_p50, step_p99) = (m.step_time.quantile(0.5), m.step_time.quantile(0.99));
        let t = Instant::now();
        let deadline = t + Duration::from_secs(300);
        // Every receipt handed out settled (a settlement round takes its batch
        // off the queue before its transaction is mined: the queue empties first).
        let receipts = self.receipts.load(Ordering::Relaxed);
        while ld(&m.settlement_settled) < receipts || ld(&m.attribution_queued) + ld(&m.attribution_computing) > 0 {
            if Instant::now() > deadline {
                bail!("{} of {receipts} receipts settled after 300 s", ld(&m.settlement_settled));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let drain_s = t.elapsed().as_secs_f64();
        let doc = json!({
            "stepP50S": step_p50,
            "stepP99S": step_p99,
            "drainS": drain_s,
            "receipts": receipts,
            "receiptsSettled": ld(&m.settlement_settled),
            "attributionRecords": ld(&m.attribution_computed),
            "attributionFailed": ld(&m.attribution_failed),
            "attributionP50S": m.attribution_seconds.quantile(0.5),
        });
        println!(
            "node: engine step p50 {} ms, p99 {} ms over the paid runs; {} attribution records (p50 {} ms, {} failed), {} receipts settled on-chain; both drained {:.2} s after the last answer",
            crate::serve::fmt_ms(step_p50),
            crate::serve::fmt_ms(step_p99),
            doc["attributionRecords"],
            crate::serve::fmt_ms(doc["attributionP50S"].as_f64()),
            doc["attributionFailed"],
            doc["receiptsSettled"],
            drain_s
        );
        self.node.stop();
        drop(self.rt);
        Ok(doc)
    }
}

/// One streamed, paid completion over a fresh connection.
fn paid_request(http: &str, model: u64, prompt: &str, max_tokens: u32) -> Result<PaidRequest> {
    let body = json!({
        "model": format!("m{model}"),
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": true,
        "stream_options": {"include_usage": true},
        "ignore_eos": true,
    })
    .to_string();
    let t0 = Instant::now();
    let mut s = TcpStream::connect(http)?;
    s.set_nodelay(true)?;
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let mut first = None;
    loop {
        let k = s.read(&mut buf)?;
        if k == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..k]);
        if first.is_none() && memfind(&raw, b"\"text\":\"").is_some() {
            first = Some(t0.elapsed().as_secs_f64());
        }
    }
    let latency_s = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no HTTP head in the answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{}: {}", head.lines().next().unwrap_or(""), rest.chars().take(300).collect::<String>());
    }
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest)? } else { rest.into() };
    if !body.lines().filter_map(|l| l.strip_prefix("data: ")).any(|e| e.contains("\"receipt\":{")) {
        bail!("the answer carried no receipt");
    }
    let usage: Value = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|v| v["usage"].is_object())
        .map(|v| v["usage"].clone())
        .ok_or_else(|| anyhow!("the stream carried no usage"))?;
    let n = |k: &str| usage[k].as_u64().map(|x| x as usize).ok_or_else(|| anyhow!("usage without {k}"));
    let completion_tokens = n("completion_tokens")?;
    if completion_tokens != max_tokens as usize {
        bail!("generated {completion_tokens} tokens, not {max_tokens}");
    }
    Ok(PaidRequest {
        completion_tokens,
        prompt_tokens: n("prompt_tokens")?,
        ttft_s: first.ok_or_else(|| anyhow!("no token was streamed"))?,
        latency_s,
    })
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(mut b: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = b.split_once("\r\n").ok_or_else(|| anyhow!("a truncated chunked body"))?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| anyhow!("a bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or_else(|| anyhow!("a truncated chunk"))?;
        out.push_str(chunk);
        b = rest.get(size + 2..).ok_or_else(|| anyhow!("a truncated chunked body"))?;
    }
}
