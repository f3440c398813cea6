//! `openledger bench web`: the web app's server time per page on a dev chain
//! the bench generates: `--contributions` real contributions (each file
//! uploaded to the node's ingest API, attested, bonded, submitted and
//! approved, as `openledger contribute` and `curate approve` do) across
//! `--datanets` Datanets by `--contributors` accounts (funded by dev account 9,
//! which owns the Datanets and approves), then empty
//! blocks (`anvil_mine`) up to `--blocks`. Each page is then fetched
//! `--requests` times after one warm-up request, one at a time over loopback
//! HTTP; the figures are p50, p95 and the worst, against the target
//! of 50 ms p95 for every page. No peer: the target is absolute.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{Context, Result, bail};
use primitives::abi::IDatanets;
use primitives::system::Module;
use rpc::client::RpcClient;
use rpc::http::HttpClient;
use serde_json::{Value, json};

use crate::chain::{TxSpec, dev_keys, sign};
use crate::fuzz::start_node;
use crate::machine::Machine;
use crate::stats::percentile;

/// The target: every page's server time at p95.
pub const TARGET_P95_MS: f64 = 50.0;

#[derive(clap::Args, Clone, Debug)]
pub struct WebOpts {
    /// Blocks in the chain before measuring (empty blocks mined to reach it).
    #[arg(long, default_value_t = 10_000)]
    pub blocks: u64,
    /// Contributions made (and approved) before measuring.
    #[arg(long, default_value_t = 1_000)]
    pub contributions: usize,
    /// Datanets they go to.
    #[arg(long, default_value_t = 10)]
    pub datanets: usize,
    /// Accounts that contribute (derived from the dev mnemonic after the 10
    /// funded ones, and funded by dev account 9).
    #[arg(long, default_value_t = 20)]
    pub contributors: usize,
    /// Requests per page (after one warm-up request).
    #[arg(long, default_value_t = 30)]
    pub requests: usize,
    /// The `openledger` binary to start (default: this one).
    #[arg(long)]
    pub openledger_bin: Option<PathBuf>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

const GWEI: u128 = 1_000_000_000;

/// Transactions of one sender, its nonce tracked here.
struct Sender {
    key: keys::SecretKey,
    nonce: u64,
}

impl Sender {
    fn send(&mut self, c: &mut RpcClient, to: TxKind, value: U256, input: Vec<u8>, gas: u64) -> Result<B256> {
        let t = sign(&self.key, 0, TxSpec { nonce: self.nonce, to, gas, value, input });
        self.nonce += 1;
        c.send_raw(&t.raw)
            .with_context(|| format!("eth_sendRawTransaction from {} nonce {}", self.key.address(), self.nonce - 1))
    }
}

fn wait_all(c: &mut RpcClient, hashes: &[B256]) -> Result<Vec<rpc::types::Receipt>> {
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let r = c.wait_receipt(h, Duration::from_secs(120)).with_context(|| format!("receipt of {h:#x}"))?;
        if !r.status() {
            bail!("transaction {h:#x} failed");
        }
        out.push(r);
    }
    Ok(out)
}

fn logs_of<E: SolEvent>(r: &rpc::types::Receipt) -> Vec<E> {
    r.inner.logs().iter().filter_map(|l| E::decode_log_data(&l.inner.data).ok()).collect()
}

/// A multipart body with one file part, as `openledger contribute` sends it.
fn multipart(name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "openledger-bench-web-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Rows of contribution `i`: question/answer pairs nobody else wrote.
fn file_of(i: usize) -> Vec<u8> {
    let mut s = String::new();
    for r in 0..4 {
        s.push_str(
            &json!({
                "prompt": format!("How does step {r} of procedure {i} work in practice?"),
                "completion": format!(
                    "Procedure {i} step {r}: check the gauge number {}, record reading {} and report it to shift {}.",
                    i * 7 + r,
                    (i * 31 + r * 17) % 997,
                    (i + r) % 13
                ),
            })
            .to_string(),
        );
        s.push('\n');
    }
    s.into_bytes()
}

/// What the generated chain holds, for the pages' parameters.
struct Generated {
    datanets: Vec<u64>,
    contributions: Vec<(u64, u64)>,
    contributor: Address,
    tx: B256,
    head: u64,
}

fn generate(o: &WebOpts, rpc: &str, http: &str) -> Result<Generated> {
    let mut c = RpcClient::new(rpc).with_timeout(Duration::from_secs(60));
    let h = HttpClient::new(http).with_timeout(Duration::from_secs(120));
    let auth = h.request("GET", "/v1/node/auth", &[], b"").context("GET /v1/node/auth")?;
    let v: Value = serde_json::from_slice(&auth.body).context("/v1/node/auth")?;
    let audience = keys::request::Audience {
        chain_id: v["chainId"].as_u64().context("no chainId")?,
        node: v["node"].as_str().context("no node")?.parse()?,
    };
    let att = h.request("GET", "/v1/node/attester", &[], b"").context("GET /v1/node/attester")?;
    let attester: Address =
        serde_json::from_slice::<Value>(&att.body)?["attester"].as_str().context("no attester")?.parse()?;

    // Dev account 9 (account 0 sends the node's own set-up transactions).
    let owner_key = dev_keys(10)?.pop().context("dev key")?;
    let mut owner = Sender { nonce: c.nonce(&owner_key.address(), true)?, key: owner_key };
    let datanets_addr = Module::Datanets.address();
    // Datanets, owned (and curated) by dev account 9, trusting the node's attester.
    let mut hashes = Vec::new();
    for d in 0..o.datanets {
        let call = IDatanets::createDatanetCall {
            name: format!("bench web {d}"),
            summary: format!("Generated procedures, part {d}"),
            description: "Rows generated by `openledger bench web`.".into(),
            tags: vec!["bench".into()],
            dataType: 0,
            licence: "CC-BY-4.0".into(),
            policy: 0,
            contributorBond: U256::ZERO,
            curators: vec![],
            attesters: vec![attester],
            limits: primitives::abi::DatanetLimits {
                maxSubmissionBytes: 0,
                contributorDailyBytes: 0,
                datanetDailyBytes: 0,
                contributorDailyFiles: 1_000,
            },
        };
        hashes.push(owner.send(&mut c, TxKind::Call(datanets_addr), U256::ZERO, call.abi_encode(), 3_000_000)?);
    }
    let mut datanets = Vec::new();
    for r in wait_all(&mut c, &hashes)? {
        datanets.extend(logs_of::<IDatanets::DatanetCreated>(&r).into_iter().map(|e| e.id));
    }
    // Contributors: accounts after the ten funded ones, funded by account 0.
    let mut contributors = Vec::new();
    let mut hashes = Vec::new();
    for i in 0..o.contributors.max(1) {
        let key = keys::derive_account(keys::DEV_MNEMONIC, 1_000 + i as u32)?;
        let to = TxKind::Call(key.address());
        hashes.push(owner.send(&mut c, to, U256::from(100u128 * 1_000_000_000 * GWEI), vec![], 21_000)?);
        contributors.push(Sender { key, nonce: 0 });
    }
    wait_all(&mut c, &hashes)?;
    // Contributions: upload, attest, submit with the bond; then approve each.
    let started = Instant::now();
    let mut submitted = Vec::new();
    let n = contributors.len();
    for i in 0..o.contributions {
        let s = &mut contributors[i % n];
        let d = datanets[i % datanets.len()];
        let path = format!("/v1/datanets/{d}/contributions");
        let (ctype, body) = multipart(&format!("c{i}.jsonl"), &file_of(i));
        let sig = keys::request::sign_request(&s.key, &audience, "POST", &path, &body, keys::request::unix_now());
        let r = h
            .request("POST", &path, &[("Content-Type", ctype), (keys::request::AUTH_HEADER, sig)], &body)
            .with_context(|| format!("uploading contribution {i}"))?;
        if r.status != 200 {
            bail!("the ingest service refused contribution {i} ({}): {}", r.status, String::from_utf8_lossy(&r.body));
        }
        let v: Value = serde_json::from_slice(&r.body)?;
        let value: U256 = v["value"].as_str().unwrap_or("0").parse()?;
        let calldata = alloy_primitives::hex::decode(v["calldata"].as_str().unwrap_or("").trim_start_matches("0x"))?;
        submitted.push(s.send(&mut c, TxKind::Call(datanets_addr), value, calldata, 2_000_000)?);
        if (i + 1) % 100 == 0 {
            eprintln!("  {} contributions uploaded ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let mut ids = Vec::new();
    for r in wait_all(&mut c, &submitted)? {
        ids.extend(
            logs_of::<IDatanets::ContributionSubmitted>(&r).into_iter().map(|e| (e.datanetId, e.contributionId)),
        );
    }
    let mut approvals = Vec::new();
    for (_, id) in &ids {
        let call = IDatanets::approveCall { contributionId: *id };
        approvals.push(owner.send(&mut c, TxKind::Call(datanets_addr), U256::ZERO, call.abi_encode(), 3_000_000)?);
    }
    wait_all(&mut c, &approvals)?;
    eprintln!("  {} contributions approved ({:.1} s)", ids.len(), started.elapsed().as_secs_f64());
    // Empty blocks up to the length asked (the node mines at most 256 a call).
    let mut head = c.block_number()?;
    while head < o.blocks {
        let n = (o.blocks - head).min(256);
        c.call("anvil_mine", json!([format!("{n:#x}")])).context("anvil_mine")?;
        head = c.block_number()?;
    }
    Ok(Generated {
        datanets,
        contributions: ids,
        contributor: contributors[0].key.address(),
        tx: *submitted.last().context("no contribution")?,
        head,
    })
}

/// One page's figures.
struct PageFigures {
    path: String,
    p50: f64,
    p95: f64,
    max: f64,
    bytes: usize,
}

fn measure(h: &HttpClient, path: &str, requests: usize) -> Result<PageFigures> {
    let mut ms = Vec::with_capacity(requests);
    let mut bytes = 0;
    for k in 0..=requests {
        let t = Instant::now();
        let r = h.request("GET", path, &[], b"").with_context(|| format!("GET {path}"))?;
        let dt = t.elapsed().as_secs_f64() * 1e3;
        // A search answers with a redirect to what it found.
        if !(200..400).contains(&r.status) {
            bail!(
                "GET {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body).chars().take(300).collect::<String>()
            );
        }
        bytes = r.body.len();
        if k > 0 {
            ms.push(dt);
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok(PageFigures {
        path: path.into(),
        p50: percentile(&ms, 50.0),
        p95: percentile(&ms, 95.0),
        max: *ms.last().unwrap_or(&0.0),
        bytes,
    })
}

pub fn run_web(o: &WebOpts) -> Result<()> {
    if o.contributions == 0 || o.datanets == 0 || o.requests == 0 {
        bail!("--contributions, --datanets and --requests must be at least 1");
    }
    let bin = match &o.openledger_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating the openledger binary")?,
    };
    let machine = Machine::detect();
    println!(
        "bench web: {} blocks, {} contributions in {} Datanets, {} requests a page",
        o.blocks, o.contributions, o.datanets, o.requests
    );
    println!("machine: {}", machine.describe());
    let (node, rpc, http) = start_node(&bin)?;
    let t = Instant::now();
    let g = generate(o, &rpc, &http)?;
    println!(
        "generated in {:.1} s: head {}, {} contributions",
        t.elapsed().as_secs_f64(),
        g.head,
        g.contributions.len()
    );
    let (d, cid) = g.contributions[g.contributions.len() / 2];
    // The dev chain's one validator: dev account 0.
    let validator = dev_keys(1)?.pop().context("dev key")?.address();
    let pages = vec![
        "/".to_string(),
        "/explorer".into(),
        "/explorer/blocks".into(),
        format!("/explorer/blocks/{}", g.head / 2),
        format!("/explorer/tx/{:#x}", g.tx),
        format!("/explorer/accounts/{}", g.contributor),
        "/explorer/models/m1".into(),
        format!("/explorer/datanets/{}", g.datanets[0]),
        format!("/explorer/search?q={}", g.contributor),
        "/datanets".into(),
        format!("/datanets/{d}"),
        format!("/datanets/{d}/contributions/{cid}"),
        format!("/datanets/{d}/contributions/{cid}/rows"),
        "/datanets/new".into(),
        format!("/datanets/{d}/upload"),
        format!("/datanets/{d}/curate"),
        format!("/earnings/{}", g.contributor),
        "/governance".into(),
        "/validators".into(),
        format!("/validators/{validator:#x}"),
        "/validators/decentralisation".into(),
        "/models/jobs".into(),
        "/models/new".into(),
        "/assets".into(),
        "/playground".into(),
    ];
    let h = HttpClient::new(&http).with_timeout(Duration::from_secs(60));
    let mut figures = Vec::new();
    println!(
        "{:<60} {:>9} {:>9} {:>9} {:>9}  target p95 ≤ {TARGET_P95_MS} ms",
        "page", "p50 ms", "p95 ms", "max ms", "KiB"
    );
    for p in &pages {
        let f = measure(&h, p, o.requests)?;
        let ok = if f.p95 <= TARGET_P95_MS { "ok" } else { "OVER" };
        println!("{:<60} {:>9.2} {:>9.2} {:>9.2} {:>9.1}  {ok}", f.path, f.p50, f.p95, f.max, f.bytes as f64 / 1024.0);
        figures.push(f);
    }
    let over: Vec<&PageFigures> = figures.iter().filter(|f| f.p95 > TARGET_P95_MS).collect();
    let worst = figures.iter().map(|f| f.p95).fold(0.0, f64::max);
    println!(
        "worst p95 {worst:.2} ms; {} of {} pages within {TARGET_P95_MS} ms",
        figures.len() - over.len(),
        figures.len()
    );
    if let Some(path) = &o.json_out {
        let v = json!({
            "bench": "web", "blocks": g.head, "contributions": g.contributions.len(), "datanets": g.datanets.len(),
            "requests": o.requests, "machine": machine.describe(), "targetP95Ms": TARGET_P95_MS,
            "pages": figures.iter().map(|f| json!({"path": f.path, "p50Ms": f.p50, "p95Ms": f.p95, "maxMs": f.max, "bytes": f.bytes})).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(node);
    Ok(())
}
