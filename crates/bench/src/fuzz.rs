//! `bench fuzz`: seeded, bounded bad input at every surface of a running node, measured.
//!
//! One run, single-threaded so that exactly one input is in flight at a time:
//! 1. start a fresh dev node (`openledger up --instant`, serving on, free loopback
//!    ports, stderr to a log file in a temporary directory), or attach to the
//!    `--rpc`/`--http` given; wait until its start-up transactions are sealed;
//! 2. until `--seconds` or `--max-inputs`, pick a surface and throw one input from
//!    the generator ([`ml::rng::Rng`] seeded with `--seed`: the same seed gives the
//!    same inputs, up to answers that depend on time, such as nonces and hashes):
//!    - `rpc`: every method the server knows and unknown ones, with valid parameter
//!      shapes, structured mutations (boundary numbers, wrong types, deep nesting, long
//!      and unicode strings, missing and extra fields) and byte mutations of the body;
//!    - `rpc-batch`: batches, empty, mixed, heavy (over 50 executing calls) and
//!      oversize (over 1000 entries);
//!    - `http`: every route of the HTTP API and unknown ones, random methods, paths
//!      with random ids and hashes, `Authorization` and `X-OpenLedger-Auth` headers
//!      valid, mutated or garbage, JSON and raw bodies, chunked, and oversized within
//!      a cap;
//!    - `tx-decode`: mutated signed transactions (bit flips, truncation, duplication,
//!      splicing) fed in-process to [`primitives::SignedTransaction::decode`] under
//!      `catch_unwind`, and `tx-raw`: the same bytes sent with `eth_sendRawTransaction`;
//!    - `calldata-call` / `calldata-tx`: for every system module, one of its selectors
//!      (from the `sol!` interfaces) or a random one, with random argument words, as
//!      `eth_call` and as a transaction signed by dev account 7 (funded);
//! 3. classify each answer: `ok`; `refused` (a JSON-RPC error object with a message,
//!    an HTTP 4xx with a JSON error body); `unclear` (a 4xx without one, or a
//!    malformed answer); `503` (with `Retry-After`, deliberate); `5xx` (any other:
//!    unexpected); `hang` (no answer within `--request-timeout-ms`); `reset` (the
//!    connection closed without an answer); `panic` (a caught in-process panic, or a
//!    new "panicked" line in the node's log after the input);
//! 4. admission: before every `eth_sendRawTransaction` and a sample of HTTP requests
//!    that may write, take `(head, head hash, state root, pending, queued)` from
//!    `ol_status` and the latest block in one batch; when the input is refused, take
//!    it again. The first is taken when the pool holds no executable transaction
//!    (an accepted one is sealed after its answer, so the harness waits up to 1 s
//!    for the pool to rest) and is taken twice to be stable. Only one input is in
//!    flight and an instant node seals only on demand, so an unchanged head must
//!    come with the same root and pool sizes (else: a violation). When the head
//!    moved (a transaction of the node's own) or the pool did not rest, the check
//!    is counted as inconclusive, not passed. The node settles inference receipts
//!    on-chain by itself after completions; when the pool grew only by such
//!    `inference.settle` transactions (checked in the blocks that seal them), the
//!    check is counted apart, not as a violation. A refused transaction must also
//!    be unknown to `eth_getTransactionByHash`;
//! 5. `eth_blockNumber` every 2 s and at the end: the node is live when it answers.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256, keccak256};
use alloy_sol_types::SolInterface;
use anyhow::{Context, Result, bail};
use ml::rng::Rng;
use primitives::abi;
use primitives::{Module, SYSTEM_MODULES, SignedTransaction};
use serde_json::{Value, json};

use crate::chain::{CHAIN_ID, write_results};
use crate::machine::{Machine, today};

/// Every method the JSON-RPC server dispatches (`rpc::methods`); the run checks that
/// none of them answers "method not found", so a renamed method is noticed.
pub const RPC_METHODS: &[&str] = &[
    "web3_clientVersion",
    "web3_sha3",
    "net_version",
    "net_listening",
    "net_peerCount",
    "eth_chainId",
    "eth_syncing",
    "eth_mining",
    "eth_hashrate",
    "eth_accounts",
    "eth_blockNumber",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getUncleCountByBlockNumber",
    "eth_getUncleCountByBlockHash",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getBlockReceipts",
    "eth_getLogs",
    "ol_getProof",
    "ol_supply",
    "ol_status",
    "eth_sendRawTransaction",
];

/// The HTTP API's routes (method, path template); `{…}` is filled with random ids.
const HTTP_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/v1/node/auth"),
    ("GET", "/metrics"),
    ("GET", "/v1/models"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/adapters"),
    ("GET", "/v1/attribution/{hash}"),
    ("POST", "/v1/datanets/{id}/contributions"),
    ("GET", "/v1/datanets/{id}/versions/{n}/rows"),
    ("GET", "/v1/node/attester"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("POST", "/v1/jobs/{id}/cancel"),
    ("GET", "/v1/blobs/{hash}"),
];

/// Largest body the harness sends (the RPC cap is 5 MiB, the HTTP API's 2 MiB).
const MAX_FUZZ_BODY: usize = 6 * 1024 * 1024;
/// The funded dev account that signs calldata transactions.
const CALLDATA_ACCOUNT: u32 = 7;
/// The funded dev account whose signed transfers are mutated.
const TX_ACCOUNT: u32 = 8;
/// Examples kept per surface and class.
const MAX_EXAMPLES: usize = 5;
const GWEI: u128 = 1_000_000_000;

/// `openledger bench fuzz`: structured and mutated inputs at every JSON-RPC method,
/// HTTP route, the transaction decoder and every system contract's calldata.
#[derive(clap::Args, Debug, Clone)]
pub struct FuzzOpts {
    /// Seed of the input generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds to throw inputs (the run stops after the input in flight).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Stop after this many inputs (over all surfaces).
    #[arg(long)]
    pub max_inputs: Option<u64>,
    /// Milliseconds without an answer after which a request counts as a hang.
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Attach to this node's JSON-RPC (host:port) instead of starting one.
    #[arg(long, requires = "http")]
    pub rpc: Option<String>,
    /// Attach to this node's HTTP API (host:port) instead of starting one.
    #[arg(long, requires = "rpc")]
    pub http: Option<String>,
    /// An API key of the attached node (`Authorization: Bearer`); a started node's
    /// dev key is read from its data directory.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The `openledger` binary to start. Default: this executable.
    #[arg(long)]
    pub openledger_bin: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for FuzzOpts {
    fn default() -> Self {
        FuzzOpts {
            seed: 1,
            seconds: 60,
            max_inputs: None,
            request_timeout_ms: 10_000,
            rpc: None,
            http: None,
            api_key: None,
            openledger_bin: None,
            json_out: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Figures

/// How one answer was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Unclear,
    Deliberate503,
    Unexpected5xx,
    Hang,
    Reset,
    Panic,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Unclear => "unclear",
            Outcome::Deliberate503 => "503",
            Outcome::Unexpected5xx => "5xx",
            Outcome::Hang => "hang",
            Outcome::Reset => "reset",
            Outcome::Panic => "panic",
        }
    }
}

/// One input worth a look: what was sent and what came back.
#[derive(Clone, Debug)]
pub struct Example {
    pub outcome: Outcome,
    pub input: String,
    pub answer: String,
}

/// Counts of one surface.
#[derive(Clone, Debug, Default)]
pub struct SurfaceStats {
    pub name: &'static str,
    pub tried: u64,
    pub ok: u64,
    pub refused: u64,
    pub unclear: u64,
    pub deliberate_503: u64,
    pub unexpected_5xx: u64,
    pub hangs: u64,
    pub resets: u64,
    pub panics: u64,
    /// Wall time spent on this surface's inputs, and the slowest one.
    pub busy: Duration,
    pub slowest: Duration,
    /// Answers by HTTP status and JSON-RPC error code (`200 result`, `200 error -32602`, `404`, ...).
    pub answers: std::collections::BTreeMap<String, u64>,
    /// Inputs worth a look (every class but ok and refused), a few per class.
    pub examples: Vec<Example>,
}

impl SurfaceStats {
    fn new(name: &'static str) -> Self {
        SurfaceStats { name, ..Default::default() }
    }

    fn record(&mut self, o: Outcome, input: impl FnOnce() -> String, answer: &str) {
        self.tried += 1;
        let c = match o {
            Outcome::Ok => &mut self.ok,
            Outcome::Refused => &mut self.refused,
            Outcome::Unclear => &mut self.unclear,
            Outcome::Deliberate503 => &mut self.deliberate_503,
            Outcome::Unexpected5xx => &mut self.unexpected_5xx,
            Outcome::Hang => &mut self.hangs,
            Outcome::Reset => &mut self.resets,
            Outcome::Panic => &mut self.panics,
        };
        *c += 1;
        if !matches!(o, Outcome::Ok | Outcome::Refused)
            && self.examples.iter().filter(|e| e.outcome == o).count() < MAX_EXAMPLES
        {
            self.examples.push(Example { outcome: o, input: clip(&input(), 400), answer: clip(answer, 400) });
        }
    }

    /// tried, ok, refused, unclear, 503, 5xx, hangs, resets, panics.
    fn counts(&self) -> [u64; 9] {
        [
            self.tried,
            self.ok,
            self.refused,
            self.unclear,
            self.deliberate_503,
            self.unexpected_5xx,
            self.hangs,
            self.resets,
            self.panics,
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "surface": self.name, "tried": self.tried, "ok": self.ok, "refused": self.refused,
            "unclear": self.unclear, "deliberate503": self.deliberate_503,
            "unexpected5xx": self.unexpected_5xx, "hangs": self.hangs, "resets": self.resets,
            "panics": self.panics, "busyMs": self.busy.as_millis() as u64,
            "slowestMs": self.slowest.as_millis() as u64, "answers": self.answers,
            "examples": self.examples.iter().map(|e| json!({
                "outcome": e.outcome.label(), "input": e.input, "answer": e.answer,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The admission checks: refused inputs must leave the root and the pool unchanged.
#[derive(Clone, Debug, Default)]
pub struct AdmissionStats {
    /// Refused inputs checked with the head unchanged: root and pool compared.
    pub checked: u64,
    /// Of those, root or pool changed.
    pub violations: u64,
    /// Refused inputs after which the head had moved, or the pool did not rest
    /// before: not judged.
    pub inconclusive: u64,
    /// Refused inputs around which the pool grew by the node's own receipt
    /// settlements (`inference.settle` from its serving key, after completions):
    /// not judged either.
    pub node_settlements: u64,
    pub examples: Vec<Example>,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct FuzzReport {
    pub seed: u64,
    pub seconds: f64,
    pub surfaces: Vec<SurfaceStats>,
    pub admission: AdmissionStats,
    /// The node answered `eth_blockNumber` at every check and at the end.
    pub node_live: bool,
    /// "panicked" lines in the started node's log (None when attached).
    pub log_panics: Option<u64>,
    /// Known methods that answered "method not found" (the list is stale).
    pub missing_methods: Vec<String>,
}

impl FuzzReport {
    pub fn total(&self, f: impl Fn(&SurfaceStats) -> u64) -> u64 {
        self.surfaces.iter().map(f).sum()
    }

    /// Inputs per second over all surfaces.
    pub fn rate(&self) -> f64 {
        self.total(|s| s.tried) as f64 / self.seconds.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "suite": "fuzz", "date": today(), "machine": Machine::detect().to_json(),
            "seed": self.seed, "seconds": self.seconds, "inputsPerSecond": self.rate(),
            "totals": {
                "tried": self.total(|s| s.tried), "ok": self.total(|s| s.ok),
                "refused": self.total(|s| s.refused), "unclear": self.total(|s| s.unclear),
                "deliberate503": self.total(|s| s.deliberate_503),
                "unexpected5xx": self.total(|s| s.unexpected_5xx), "hangs": self.total(|s| s.hangs),
                "resets": self.total(|s| s.resets), "panics": self.total(|s| s.panics),
            },
            "surfaces": self.surfaces.iter().map(SurfaceStats::to_json).collect::<Vec<_>>(),
            "admission": {
                "checked": self.admission.checked, "violations": self.admission.violations,
                "inconclusive": self.admission.inconclusive,
                "nodeSettlements": self.admission.node_settlements,
                "examples": self.admission.examples.iter().map(|e| json!({"input": e.input, "answer": e.answer})).collect::<Vec<_>>(),
            },
            "nodeLive": self.node_live, "logPanics": self.log_panics,
            "missingMethods": self.missing_methods,
        })
    }

    pub fn print(&self) {
        println!(
            "{:<14} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>5} {:>6} {:>6}",
            "surface", "tried", "ok", "refused", "unclear", "503", "5xx", "hangs", "resets", "panics"
        );
        let row = |n: &str, c: [u64; 9]| {
            println!(
                "{:<14} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>5} {:>6} {:>6}",
                n, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
            );
        };
        let mut total = [0u64; 9];
        for st in &self.surfaces {
            let c = st.counts();
            row(st.name, c);
            for (t, x) in total.iter_mut().zip(c) {
                *t += x;
            }
        }
        row("total", total);
        for st in &self.surfaces {
            println!(
                "  {:<14} {:>8.1} ms per input, slowest {} ms; answers: {}",
                st.name,
                st.busy.as_secs_f64() * 1e3 / st.tried.max(1) as f64,
                st.slowest.as_millis(),
                st.answers.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ")
            );
        }
        println!(
            "{} inputs in {:.1} s ({:.0}/s), seed {}; admission: {} refused inputs checked, {} violations, {} inconclusive (head moved), {} beside the node's own settlements",
            self.total(|s| s.tried),
            self.seconds,
            self.rate(),
            self.seed,
            self.admission.checked,
            self.admission.violations,
            self.admission.inconclusive,
            self.admission.node_settlements
        );
        println!(
            "node live: {}; panics in the node's log: {}",
            if self.node_live { "yes" } else { "NO" },
            self.log_panics.map_or("n/a (attached)".to_string(), |n| n.to_string())
        );
        if !self.missing_methods.is_empty() {
            println!("methods the harness knows but the node does not: {:?}", self.missing_methods);
        }
        for st in &self.surfaces {
            for e in &st.examples {
                println!("[{} {}] input: {}\n    answer: {}", st.name, e.outcome.label(), e.input, e.answer);
            }
        }
        for e in &self.admission.examples {
            println!("[admission violation] input: {}\n    {}", e.input, e.answer);
        }
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 exchange: one connection per request, `Connection: close`.

/// What came back for one request.
#[derive(Debug)]
enum Answer {
    Response { status: u16, retry_after: bool, body: Vec<u8> },
    Hang,
    Reset(String),
}

struct Request<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    /// Send the body in chunks of these sizes (`Transfer-Encoding: chunked`).
    chunks: Option<Vec<usize>>,
}

fn exchange(addr: &str, req: &Request, timeout: Duration) -> Answer {
    let start = Instant::now();
    let sock: std::net::SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => return Answer::Reset(format!("bad address {addr}: {e}")),
    };
    let mut s = match TcpStream::connect_timeout(&sock, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Answer::Hang,
        Err(e) => return Answer::Reset(format!("connect: {e}")),
    };
    let _ = s.set_write_timeout(Some(timeout));
    let _ = s.set_nodelay(true);
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut out = Vec::with_capacity(head.len() + req.body.len() + 64);
    match &req.chunks {
        None => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.len()));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(req.body);
        }
        Some(sizes) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(head.as_bytes());
            let mut rest = req.body;
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(rest.len()).clamp(1, rest.len());
                out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                i += 1;
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    // A server may answer (413) and close before reading the whole body: keep reading.
    let write_err = s.write_all(&out).err();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Answer::Hang;
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > 64 * 1024 * 1024 {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Answer::Hang;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if raw.is_empty() {
                    let w = write_err.map(|w| format!(" (write: {w})")).unwrap_or_default();
                    return Answer::Reset(format!("read: {e}{w}"));
                }
                break;
            }
        }
    }
    parse_response(&raw).unwrap_or_else(|| {
        let w = write_err.map(|w| format!(" (write: {w})")).unwrap_or_default();
        Answer::Reset(format!("no HTTP response ({} bytes){w}", raw.len()))
    })
}

fn parse_response(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let retry_after = head.lines().any(|l| l.starts_with("retry-after:"));
    let mut body = raw[split + 4..].to_vec();
    if head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked")) {
        let (mut rest, mut out) = (&body[..], Vec::new());
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&rest[..end]).ok()?.split(';').next()?.trim().to_string();
            let n = usize::from_str_radix(&size, 16).ok()?;
            rest = &rest[end + 2..];
            if n == 0 || rest.len() < n {
                break;
            }
            out.extend_from_slice(&rest[..n]);
            rest = &rest[(n + 2).min(rest.len())..];
        }
        body = out;
    }
    Some(Answer::Response { status, retry_after, body })
}

/// A JSON-RPC answer is clear when it is an object with `result`, or with an
/// `error` object carrying an integer code and a non-empty message.
fn rpc_entry(v: &Value) -> Option<Outcome> {
    let o = v.as_object()?;
    if o.contains_key("result") {
        return Some(Outcome::Ok);
    }
    let e = o.get("error")?.as_object()?;
    let msg = e.get("message")?.as_str()?;
    (e.get("code")?.is_i64() && !msg.is_empty()).then_some(Outcome::Refused)
}

/// Classify a JSON-RPC exchange (`batch`: the request was an array).
fn classify_rpc(a: &Answer, batch: bool) -> Outcome {
    match a {
        Answer::Hang => Outcome::Hang,
        Answer::Reset(_) => Outcome::Reset,
        Answer::Response { status, retry_after, body } => match *status {
            200 => {
                let Ok(v) = serde_json::from_slice::<Value>(body) else { return Outcome::Unclear };
                match (&v, batch) {
                    (Value::Array(items), true) => {
                        let all: Option<Vec<Outcome>> = items.iter().map(rpc_entry).collect();
                        match all {
                            Some(outs) if outs.contains(&Outcome::Ok) => Outcome::Ok,
                            Some(_) => Outcome::Refused,
                            None => Outcome::Unclear,
                        }
                    }
                    _ => rpc_entry(&v).unwrap_or(Outcome::Unclear),
                }
            }
            204 => Outcome::Ok, // notifications only
            s => classify_status(s, *retry_after, body),
        },
    }
}

fn classify_status(status: u16, retry_after: bool, body: &[u8]) -> Outcome {
    match status {
        100..=399 => Outcome::Ok,
        400..=499 => {
            let clear = serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
                v.get("error").is_some_and(|e| {
                    e.as_str().is_some_and(|s| !s.is_empty())
                        || e.get("message").and_then(Value::as_str).is_some_and(|s| !s.is_empty())
                })
            });
            if clear { Outcome::Refused } else { Outcome::Unclear }
        }
        503 if retry_after => Outcome::Deliberate503,
        _ => Outcome::Unexpected5xx,
    }
}

/// `200 result`, `200 error -32602`, `200 batch`, `404`, `hang`, ...
fn answer_key(a: &Answer) -> String {
    match a {
        Answer::Hang => "hang".into(),
        Answer::Reset(_) => "reset".into(),
        Answer::Response { status, body, .. } => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(_)) => format!("{status} batch"),
            Ok(v) if v.get("result").is_some() => format!("{status} result"),
            Ok(v) if v["error"]["code"].is_i64() => format!("{status} error {}", v["error"]["code"]),
            _ => status.to_string(),
        },
    }
}

fn describe(a: &Answer) -> String {
    match a {
        Answer::Hang => "no answer (hang)".into(),
        Answer::Reset(e) => format!("connection: {e}"),
        Answer::Response { status, retry_after, body } => format!(
            "HTTP {status}{} {}",
            if *retry_after { " Retry-After" } else { "" },
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    }
}

fn show_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n') => clip(s, 300),
        _ => format!("0x{}", hex(&b[..b.len().min(150)])),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The generator

struct Gen {
    rng: Rng,
    /// Dev accounts 0..12 (derived once: a derivation runs PBKDF2).
    dev: Vec<Address>,
}

impl Gen {
    fn new(seed: u64) -> Result<Gen> {
        let dev = (0..12)
            .map(|i| keys::derive_account(keys::DEV_MNEMONIC, i).map(|k| k.address()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Gen { rng: Rng::new(seed), dev })
    }
    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.rng.next_f64() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.rng.next_u64() as u8).collect()
    }
    /// A length biased to the small and the boundaries.
    fn len(&mut self, max: usize) -> usize {
        match self.below(6) {
            0 => 0,
            1 => 1,
            2 => self.below(8),
            3 => self.below(64),
            4 => self.below(max.min(4096) + 1),
            _ => self.below(max + 1),
        }
    }
    fn hex_data(&mut self, n: usize) -> String {
        let b = self.bytes(n);
        format!("0x{}", hex(&b))
    }

    fn string(&mut self) -> String {
        match self.below(10) {
            0 => String::new(),
            1 => "x".repeat(self.len(200_000)),
            2 => "é漢字🦀\u{202e}\u{0}\u{feff}".repeat(1 + self.below(50)),
            3 => (*self.pick(&[
                "latest",
                "pending",
                "earliest",
                "safe",
                "finalized",
                "0x",
                "0x0",
                "0x00",
                "-0x1",
                "0X1",
                "null",
                "true",
                "NaN",
                "0x1g",
            ]))
            .to_string(),
            4 => {
                let n = self.len(80);
                self.hex_data(n)
            }
            5 => format!("0x{}", "f".repeat(1 + self.below(130))),
            6 => self.dev_address_hex(),
            7 => {
                let n = self.len(64);
                String::from_utf8_lossy(&self.bytes(n)).into_owned()
            }
            8 => format!("{}", self.rng.next_u64()),
            _ => "%00../../etc/passwd\\\"'<script>".to_string(),
        }
    }

    fn dev_address(&mut self) -> Address {
        let i = self.below(self.dev.len());
        self.dev[i]
    }

    fn dev_address_hex(&mut self) -> String {
        let a = self.dev_address();
        format!("{a:#x}")
    }

    fn number(&mut self) -> Value {
        match self.below(12) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(u64::MAX),
            3 => json!(i64::MIN),
            4 => json!(1e308),
            5 => json!(0.5),
            6 => json!(-0.0),
            7 => json!(self.rng.next_u64() % 1000),
            8 => json!(u32::MAX),
            9 => json!(format!("0x{:x}", self.rng.next_u64() >> self.below(64))),
            10 => json!(format!("0x{}", "f".repeat(1 + self.below(80)))),
            _ => json!(format!("{}", self.rng.next_u64())),
        }
    }

    /// Any JSON value, `depth` levels deep at most.
    fn value(&mut self, depth: usize) -> Value {
        let k = if depth == 0 { self.below(5) } else { self.below(8) };
        match k {
            0 => Value::Null,
            1 => Value::Bool(self.chance(0.5)),
            2 => self.number(),
            3 | 4 => Value::String(self.string()),
            5 => {
                let n = self.len(20);
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            6 => {
                let n = self.len(12);
                let keys = [
                    "to",
                    "from",
                    "data",
                    "input",
                    "gas",
                    "value",
                    "blockHash",
                    "fromBlock",
                    "toBlock",
                    "address",
                    "topics",
                    "model",
                    "prompt",
                    "messages",
                    "max_tokens",
                    "",
                    "🦀",
                ];
                Value::Object((0..n).map(|_| (self.pick(&keys).to_string(), self.value(depth - 1))).collect())
            }
            _ => {
                // Deep nesting.
                let d = 1 + self.below(200);
                let mut v = Value::Null;
                for _ in 0..d {
                    v = if self.chance(0.5) { json!([v]) } else { json!({ "a": v }) };
                }
                v
            }
        }
    }

    /// Change one node of `v`: replace, delete, duplicate, retype.
    fn mutate_value(&mut self, v: &mut Value) {
        match v {
            Value::Array(items) if !items.is_empty() && self.chance(0.7) => {
                let i = self.below(items.len());
                match self.below(4) {
                    0 => {
                        items.remove(i);
                    }
                    1 => {
                        let d = items[i].clone();
                        items.insert(i, d);
                    }
                    _ => self.mutate_value(&mut items[i]),
                }
            }
            Value::Object(map) if !map.is_empty() && self.chance(0.7) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                let k = self.pick(&keys).clone();
                match self.below(4) {
                    0 => {
                        map.remove(&k);
                    }
                    1 => {
                        let extra = self.string();
                        map.insert(extra, self.value(2));
                    }
                    _ => self.mutate_value(map.get_mut(&k).expect("key present")),
                }
            }
            _ => *v = self.value(3),
        }
    }

    /// Bit flips, truncation, duplication, insertion and splicing of raw bytes.
    fn mutate_bytes(&mut self, b: &mut Vec<u8>, other: &[u8]) {
        let rounds = 1 + self.below(4);
        for _ in 0..rounds {
            let n = b.len();
            match self.below(8) {
                0 | 1 if n > 0 => {
                    let i = self.below(n);
                    b[i] ^= 1 << self.below(8);
                }
                2 if n > 0 => {
                    let i = self.below(n);
                    b[i] = *self.pick(&[0x00, 0x7f, 0x80, 0xb7, 0xb8, 0xbf, 0xc0, 0xf7, 0xf8, 0xff]);
                }
                3 if n > 0 => {
                    let cut = self.below(n);
                    b.truncate(cut);
                }
                4 if n > 0 => {
                    let i = self.below(n);
                    let j = i + self.below(n - i + 1);
                    let dup = b[i..j].to_vec();
                    let at = self.below(n + 1);
                    b.splice(at..at, dup);
                }
                5 if !other.is_empty() => {
                    let i = self.below(other.len());
                    let j = i + self.below(other.len() - i + 1);
                    let at = self.below(n + 1);
                    let end = (at + (j - i)).min(n);
                    b.splice(at..end, other[i..j].iter().copied());
                }
                6 if n > 0 => {
                    let i = self.below(n);
                    let j = i + self.below(n - i + 1);
                    b.drain(i..j);
                }
                _ => {
                    let at = self.below(n + 1);
                    let k = self.len(64);
                    let ins = self.bytes(k);
                    b.splice(at..at, ins);
                }
            }
            if b.len() > MAX_FUZZ_BODY {
                b.truncate(MAX_FUZZ_BODY);
            }
        }
    }

    fn block_tag(&mut self, ctx: &Ctx) -> Value {
        match self.below(5) {
            0 => json!("latest"),
            1 => json!(format!("0x{:x}", self.below(ctx.head as usize + 3))),
            2 => json!(format!("{:#x}", ctx.head_hash)),
            3 => json!({ "blockNumber": "0x0" }),
            _ => json!(*self.pick(&["earliest", "pending", "safe", "finalized"])),
        }
    }

    /// Parameters of the right shape for `method`, with plausible values.
    fn valid_params(&mut self, method: &str, ctx: &Ctx) -> Value {
        let addr = self.dev_address_hex();
        let tag = self.block_tag(ctx);
        let hash = if self.chance(0.5) { format!("{:#x}", ctx.head_hash) } else { self.hex_data(32) };
        let module = format!("{:#x}", self.pick(&SYSTEM_MODULES).address());
        match method {
            "web3_sha3" => json!([self.hex_data(40)]),
            "eth_getBalance" | "eth_getTransactionCount" | "eth_getCode" => json!([addr, tag]),
            "eth_getStorageAt" => json!([module, self.hex_data(32), tag]),
            "eth_call" | "eth_estimateGas" => {
                let n = 4 + 32 * self.below(4);
                let data = self.hex_data(n);
                json!([{ "from": addr, "to": module, "data": data, "gas": "0x5f5e100", "value": "0x0" }, tag])
            }
            "eth_feeHistory" => json!([format!("0x{:x}", self.below(2000)), tag, [10, 50, 90]]),
            "eth_getTransactionByHash" | "eth_getTransactionReceipt" => json!([hash]),
            "eth_getBlockByNumber" => json!([tag, self.chance(0.5)]),
            "eth_getBlockByHash" => json!([hash, self.chance(0.5)]),
            "eth_getBlockTransactionCountByNumber" | "eth_getUncleCountByBlockNumber" => json!([tag]),
            "eth_getBlockTransactionCountByHash" | "eth_getUncleCountByBlockHash" => json!([hash]),
            "eth_getTransactionByBlockNumberAndIndex" => json!([tag, "0x0"]),
            "eth_getTransactionByBlockHashAndIndex" => json!([hash, "0x0"]),
            "eth_getBlockReceipts" => json!([tag]),
            "eth_getLogs" => {
                json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": module, "topics": [null, self.hex_data(32)] }])
            }
            "ol_getProof" => {
                let n = self.below(64);
                json!([self.hex_data(n), tag])
            }
            "ol_supply" => json!([tag]),
            "eth_sendRawTransaction" => {
                let n = self.len(300);
                json!([self.hex_data(n)])
            }
            _ => json!([]),
        }
    }
}

/// What the generator knows of the node.
struct Ctx {
    head: u64,
    head_hash: alloy_primitives::B256,
}

// ---------------------------------------------------------------------------
// The node

pub(crate) struct StartedNode {
    child: Child,
    log: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for StartedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_node(bin: &Path) -> Result<(StartedNode, String, String)> {
    let dir =
        tempfile::Builder::new().prefix("openledger-fuzz-").tempdir().context("creating a temporary directory")?;
    let data = dir.path().join("data");
    let log = dir.path().join("node.log");
    let f = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(["up", "--quiet", "--instant", "--data-dir"])
        .arg(&data)
        .args(["--rpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f);
    let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let mut node = StartedNode { child, log, data, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = node.child.try_wait()? {
            bail!("the node exited ({status}) before answering; its log:\n{}", log_tail(&node.log));
        }
        if let Some(ep) = node::Endpoints::read(&node.data)
            && let Some(http) = ep.http
        {
            let rpc = ep.rpc.to_string();
            let mut c = rpc::client::RpcClient::new(&rpc).with_timeout(Duration::from_secs(5));
            if c.chain_id().is_ok() && node.data.join("dev-api-key").is_file() {
                return Ok((node, rpc, http.to_string()));
            }
        }
        if Instant::now() > deadline {
            bail!("the node did not come up in 120 s; its log:\n{}", log_tail(&node.log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else { return "(no log)".into() };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Watches the node's log for new "panicked" lines.
struct LogWatch {
    path: PathBuf,
    read_to: u64,
    panics: u64,
}

impl LogWatch {
    /// New panic messages since the last call (empty when none).
    fn new_panics(&mut self) -> Vec<String> {
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if len <= self.read_to {
            return Vec::new();
        }
        let Ok(mut f) = File::open(&self.path) else { return Vec::new() };
        let _ = f.seek(SeekFrom::Start(self.read_to));
        let mut buf = Vec::new();
        let _ = Read::by_ref(&mut f).take(len - self.read_to).read_to_end(&mut buf);
        self.read_to = len;
        let found: Vec<String> =
            String::from_utf8_lossy(&buf).lines().filter(|l| l.contains("panicked")).map(str::to_string).collect();
        self.panics += found.len() as u64;
        found
    }
}

// ---------------------------------------------------------------------------
// The run

/// The pool and chain state compared around a refused input.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    head: u64,
    head_hash: String,
    state_root: String,
    pending: u64,
    queued: u64,
}

struct Fuzzer {
    g: Gen,
    rpc: String,
    http: String,
    timeout: Duration,
    api_key: Option<String>,
    audience: Option<keys::request::Audience>,
    /// Model ids `GET /v1/models` listed at the start, and names that are not.
    models: Vec<String>,
    calldata_key: keys::SecretKey,
    tx_key: keys::SecretKey,
    /// Valid signed transactions seen so far: seeds for mutation and splicing.
    tx_seeds: Vec<Vec<u8>>,
    ctx: Ctx,
    stats: Vec<SurfaceStats>,
    admission: AdmissionStats,
    log: Option<LogWatch>,
    live: bool,
}

const S_RPC: usize = 0;
const S_BATCH: usize = 1;
const S_HTTP: usize = 2;
const S_DECODE: usize = 3;
const S_RAW: usize = 4;
const S_CALL: usize = 5;
const S_CALLTX: usize = 6;

impl Fuzzer {
    fn rpc_raw(&self, body: &[u8], chunked: Option<Vec<usize>>) -> Answer {
        let req = Request {
            method: "POST",
            target: "/",
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
            chunks: chunked,
        };
        exchange(&self.rpc, &req, self.timeout)
    }

    /// A well-formed call of the harness's own (not counted).
    fn call(&self, method: &str, params: Value) -> Option<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
        match self.rpc_raw(body.as_bytes(), None) {
            Answer::Response { status: 200, body, .. } => {
                serde_json::from_slice::<Value>(&body).ok()?.get("result").cloned()
            }
            _ => None,
        }
    }

    fn snapshot(&self) -> Option<Snapshot> {
        let body = json!([
            { "jsonrpc": "2.0", "id": 1, "method": "ol_status", "params": [] },
            { "jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["latest", false] },
        ])
        .to_string();
        let Answer::Response { status: 200, body, .. } = self.rpc_raw(body.as_bytes(), None) else { return None };
        let v: Value = serde_json::from_slice(&body).ok()?;
        let arr = v.as_array()?;
        let by_id = |id: u64| arr.iter().find(|e| e["id"] == id).map(|e| &e["result"]);
        let st = by_id(1)?;
        let blk = by_id(2)?;
        Some(Snapshot {
            head: st["head"].as_u64()?,
            head_hash: blk["hash"].as_str()?.to_string(),
            state_root: blk["stateRoot"].as_str()?.to_string(),
            pending: st["pendingTxs"].as_u64()?,
            queued: st["queuedTxs"].as_u64()?,
        })
    }

    /// A snapshot taken when nothing is waiting to be sealed: an accepted
    /// transaction is sealed after its `eth_sendRawTransaction` has answered, so
    /// "no input in flight" also needs "no executable transaction in the pool".
    /// `None` when the pool does not come to rest within a second.
    fn quiet_snapshot(&self) -> Option<Snapshot> {
        for _ in 0..20 {
            if let Some(a) = self.snapshot()
                && a.pending == 0
                && self.snapshot().as_ref() == Some(&a)
            {
                return Some(a);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn refresh_ctx(&mut self) {
        if let Some(s) = self.snapshot() {
            self.ctx.head = s.head;
            self.ctx.head_hash = s.head_hash.parse().unwrap_or_default();
        }
    }

    fn check_live(&mut self) -> bool {
        let ok = (0..2).any(|_| self.call("eth_blockNumber", json!([])).is_some());
        if !ok {
            self.live = false;
        }
        ok
    }

    /// Count an answer by its status and JSON-RPC error code.
    fn note(&mut self, surface: usize, a: &Answer) {
        *self.stats[surface].answers.entry(answer_key(a)).or_default() += 1;
    }

    /// Record an answer, with node panics seen in the log since the input.
    fn record(&mut self, surface: usize, outcome: Outcome, input: impl FnOnce() -> String, answer: &str) {
        let panics = self.log.as_mut().map(LogWatch::new_panics).unwrap_or_default();
        if panics.is_empty() {
            self.stats[surface].record(outcome, input, answer);
        } else {
            let answer = format!("{answer}; node log: {}", panics.join(" | "));
            self.stats[surface].record(Outcome::Panic, input, &answer);
        }
    }

    /// After a refused input: the root and the pool must be as before.
    fn judge_admission(&mut self, before: Option<Snapshot>, input: impl FnOnce() -> String) {
        let (Some(b), Some(a)) = (before, self.snapshot()) else {
            self.admission.inconclusive += 1;
            return;
        };
        if a.head != b.head || a.head_hash != b.head_hash {
            self.admission.inconclusive += 1;
        } else if a != b && a.state_root == b.state_root && self.only_node_settlements(&b) {
            self.admission.node_settlements += 1;
        } else if a != b {
            self.admission.checked += 1;
            self.admission.violations += 1;
            if self.admission.examples.len() < MAX_EXAMPLES {
                self.admission.examples.push(Example {
                    outcome: Outcome::Refused,
                    input: clip(&input(), 400),
                    answer: format!("before {b:?}, after {a:?}"),
                });
            }
        } else {
            self.admission.checked += 1;
        }
    }

    /// Whether the pool changed since `before` only by the node's own receipt
    /// settlements: wait (up to 3 s) for them to be sealed, then every transaction
    /// of the new blocks must be an `inference.settle` call from an account the
    /// harness does not sign with.
    fn only_node_settlements(&self, before: &Snapshot) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        let now = loop {
            match self.snapshot() {
                Some(s) if s.head > before.head && s.pending == 0 => break s,
                _ if Instant::now() > deadline => return false,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let inference = format!("{:#x}", Module::Inference.address());
        let selector = format!("0x{}", hex(&<abi::IInference::settleCall as alloy_sol_types::SolCall>::SELECTOR));
        let ours = [format!("{:#x}", self.calldata_key.address()), format!("{:#x}", self.tx_key.address())];
        let mut seen = 0;
        for n in before.head + 1..=now.head {
            let Some(block) = self.call("eth_getBlockByNumber", json!([format!("0x{n:x}"), true])) else {
                return false;
            };
            for tx in block["transactions"].as_array().into_iter().flatten() {
                let from = tx["from"].as_str().unwrap_or("").to_ascii_lowercase();
                let to = tx["to"].as_str().unwrap_or("").to_ascii_lowercase();
                let input = tx["input"].as_str().unwrap_or("");
                if to != inference || !input.starts_with(&selector) || ours.contains(&from) {
                    return false;
                }
                seen += 1;
            }
        }
        seen > 0
    }

    // --- JSON-RPC -------------------------------------------------------------

    fn rpc_request(&mut self) -> Value {
        let g = &mut self.g;
        let method: Value = match g.below(20) {
            0 => Value::String(g.string()),
            1 => Value::String(g.pick(RPC_METHODS).to_uppercase()),
            2 => g.value(2),
            3 => Value::String(format!(
                "{}_{}",
                g.pick(&["eth", "ol", "debug", "admin", "personal", "txpool", "rpc"]),
                g.pick(&["sign", "modules", "status", "content", "sendTransaction", "getProof"])
            )),
            _ => Value::String(g.pick(RPC_METHODS).to_string()),
        };
        let m = method.as_str().unwrap_or("").to_string();
        let mut params = self.g.valid_params(&m, &self.ctx);
        let g = &mut self.g;
        match g.below(10) {
            0..=3 => {}
            4..=7 => {
                for _ in 0..1 + g.below(3) {
                    g.mutate_value(&mut params);
                }
            }
            8 => params = g.value(3),
            _ => params = if g.chance(0.5) { json!({}) } else { Value::Null },
        }
        let mut req = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        let id = match g.below(8) {
            0 => None, // a notification
            1 => Some(g.value(1)),
            _ => Some(json!(g.below(1_000_000))),
        };
        if let Some(id) = id {
            req["id"] = id;
        }
        if g.chance(0.05) {
            req["jsonrpc"] = json!(*g.pick(&["1.0", "2", ""]));
        }
        if g.chance(0.03) {
            req.as_object_mut().expect("object").remove(*g.pick(&["jsonrpc", "method", "params"]));
        }
        req
    }

    fn fuzz_rpc(&mut self) -> usize {
        let req = self.rpc_request();
        let mut body = serde_json::to_vec(&req).unwrap_or_default();
        if self.g.chance(0.2) {
            let other = serde_json::to_vec(&self.rpc_request()).unwrap_or_default();
            self.g.mutate_bytes(&mut body, &other);
        }
        if self.g.chance(0.02) {
            body = deep_nesting(&mut self.g);
        }
        if self.g.chance(0.002) {
            body = oversized_json(&mut self.g);
        }
        let chunks = self.g.chance(0.05).then(|| vec![1 + self.g.below(64), 1 + self.g.below(4096)]);
        let mut line = "POST /";
        let a = if self.g.chance(0.03) {
            // Not a POST to `/`: other methods and paths on the RPC port.
            line = *self.g.pick(&[
                "GET /",
                "PUT /",
                "DELETE /",
                "OPTIONS /x",
                "HEAD /",
                "POST /rpc",
                "GET /?a=1",
                "POST //",
                "GET /%00",
            ]);
            let (method, target) = line.split_once(' ').expect("method and path");
            let req = Request { method, target, headers: vec![], body: &body, chunks };
            exchange(&self.rpc, &req, self.timeout)
        } else {
            self.rpc_raw(&body, chunks)
        };
        let mut o = classify_rpc(&a, false);
        if line.starts_with("HEAD") && o == Outcome::Unclear {
            o = Outcome::Refused; // a HEAD answer has no body to be clear in
        }
        self.note(S_RPC, &a);
        self.record(S_RPC, o, || format!("{line} {}", show_bytes(&body)), &describe(&a));
        S_RPC
    }

    fn fuzz_batch(&mut self) -> usize {
        let n = match self.g.below(20) {
            0 | 1 => 0,
            2 => 51 + self.g.below(30),       // heavy: more than 50 executing calls
            3 | 4 => 1001 + self.g.below(50), // oversize
            _ => 1 + self.g.below(20),
        };
        let heavy = n > 50 && n <= 1000;
        let mut items = Vec::with_capacity(n);
        for k in 0..n {
            let item = if n > 1000 && k > 0 {
                // Refused for its size before anything runs: cheap entries suffice.
                json!({ "jsonrpc": "2.0", "id": k, "method": "eth_blockNumber" })
            } else if heavy {
                let m = *self.g.pick(&["eth_call", "eth_getLogs", "eth_feeHistory", "eth_estimateGas"]);
                let p = self.g.valid_params(m, &self.ctx);
                json!({ "jsonrpc": "2.0", "id": self.g.below(1000), "method": m, "params": p })
            } else if self.g.chance(0.1) {
                self.g.value(2)
            } else {
                self.rpc_request()
            };
            items.push(item);
        }
        let mut body = serde_json::to_vec(&Value::Array(items)).unwrap_or_default();
        if self.g.chance(0.1) && body.len() < 100_000 {
            let other = serde_json::to_vec(&self.rpc_request()).unwrap_or_default();
            self.g.mutate_bytes(&mut body, &other);
        }
        let a = self.rpc_raw(&body, None);
        let o = classify_rpc(&a, body.first() == Some(&b'['));
        self.note(S_BATCH, &a);
        self.record(S_BATCH, o, || show_bytes(&body), &describe(&a));
        S_BATCH
    }

    // --- HTTP -----------------------------------------------------------------

    fn http_path(&mut self, template: &str) -> String {
        let mut out = String::new();
        for seg in template.split('/').skip(1) {
            out.push('/');
            let s = match seg {
                "{hash}" => match self.g.below(4) {
                    0 => self.g.hex_data(32),
                    1 => hex(&self.g.bytes(32)),
                    2 => percent(&self.g.string()),
                    _ => {
                        let n = self.g.len(40);
                        self.g.hex_data(n)
                    }
                },
                "{id}" | "{n}" => match self.g.below(5) {
                    0 => (self.g.below(4)).to_string(),
                    1 => u64::MAX.to_string(),
                    2 => "-1".into(),
                    3 => self.g.hex_data(32),
                    _ => percent(&self.g.string()),
                },
                s => s.to_string(),
            };
            out.push_str(&s);
        }
        if self.g.chance(0.2) {
            out.push('?');
            out.push_str(&percent(&self.g.string()));
            out.push_str(&format!(
                "&limit={}&offset={}",
                self.g.pick(&["0", "-1", "18446744073709551616", "10", "x"]),
                self.g.below(1 << 20)
            ));
        }
        out
    }

    fn http_body(&mut self, path: &str) -> Vec<u8> {
        let g = &mut self.g;
        let mut v = if path.contains("completions") {
            let model = g.pick(&self.models).clone();
            let max_tokens = if g.chance(0.8) { json!(1 + g.below(8)) } else { g.number() };
            if path.contains("chat") {
                json!({ "model": model, "messages": [{ "role": *g.pick(&["user", "system", "assistant", "tool", ""]), "content": g.string() }], "max_tokens": max_tokens })
            } else {
                json!({ "model": model, "prompt": g.string(), "max_tokens": max_tokens, "stream": g.chance(0.2) })
            }
        } else if path.contains("jobs") {
            json!({ "datanet": g.below(4), "version": g.below(3), "base": "base", "epochs": g.number(), "rank": g.number(), "lr": g.number() })
        } else if path.contains("contributions") {
            return match g.below(3) {
                0 => g.string().into_bytes(),
                1 => {
                    let n = g.len(4096);
                    g.bytes(n)
                }
                _ => b"question,answer\nwhat is 1+1,2\n".to_vec(),
            };
        } else {
            g.value(2)
        };
        if g.chance(0.5) {
            g.mutate_value(&mut v);
        }
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        if g.chance(0.15) {
            let other = g.string().into_bytes();
            g.mutate_bytes(&mut b, &other);
        }
        b
    }

    fn fuzz_http(&mut self) -> usize {
        let (method, template) =
            if self.g.chance(0.05) { ("GET", "/v1/nothing/{id}") } else { *self.g.pick(HTTP_ROUTES) };
        let method = if self.g.chance(0.8) {
            method.to_string()
        } else {
            self.g.pick(&["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FUZZ"]).to_string()
        };
        let target = self.http_path(template);
        let mut body = if method == "GET" && self.g.chance(0.8) { Vec::new() } else { self.http_body(&target) };
        if self.g.chance(0.003) {
            body = vec![b'a'; 2 * 1024 * 1024 + self.g.below(1024 * 1024)];
        }
        let mut headers = Vec::new();
        match self.g.below(4) {
            0 => headers.push(("Content-Type".to_string(), "application/json".to_string())),
            1 => headers.push((
                "Content-Type".to_string(),
                self.g.string().chars().filter(|c| c.is_ascii_graphic()).take(100).collect(),
            )),
            _ => {}
        }
        match self.g.below(5) {
            0 => {}
            1 => {
                let key = self.api_key.clone().unwrap_or_else(|| "ol-dev-nokey".into());
                headers.push(("Authorization".into(), format!("Bearer {key}")));
            }
            2 => {
                let junk: String =
                    self.g.string().chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(300).collect();
                headers.push((
                    "Authorization".into(),
                    format!("{} {junk}", self.g.pick(&["Bearer", "Basic", "", "bearer"])),
                ));
            }
            _ => {
                if let Some(aud) = self.audience {
                    let key = if self.g.chance(0.7) { &self.calldata_key } else { &self.tx_key };
                    let mut h =
                        keys::request::sign_request(key, &aud, &method, &target, &body, keys::request::unix_now());
                    if self.g.chance(0.15) {
                        h = self.g.pick(&["", "v2", "v2:", "v1:0x00", "v2:0xzz:1:2:3:4:5:6", "v2::::::::"]).to_string();
                        if self.g.chance(0.3) {
                            h = h.repeat(1 + self.g.below(2000));
                        }
                    } else if self.g.chance(0.5) {
                        let mut b = h.into_bytes();
                        self.g.mutate_bytes(&mut b, b":0x");
                        h = String::from_utf8_lossy(&b).chars().filter(|c| c.is_ascii_graphic()).collect();
                    }
                    headers.push(("X-OpenLedger-Auth".into(), h));
                } else {
                    headers.push(("X-OpenLedger-Auth".into(), "v2:garbage".into()));
                }
            }
        }
        let chunks = self.g.chance(0.1).then(|| vec![1 + self.g.below(16), 1 + self.g.below(8192)]);
        let writes = method != "GET" && method != "HEAD";
        let judge = writes && self.g.chance(0.25);
        let before = if judge { self.quiet_snapshot() } else { None };
        let req = Request { method: &method, target: &target, headers: headers.clone(), body: &body, chunks };
        let a = exchange(&self.http, &req, self.timeout);
        let mut o = classify_status_answer(&a);
        if method == "HEAD" && o == Outcome::Unclear {
            o = Outcome::Refused; // a HEAD answer has no body to be clear in
        }
        let input = || format!("{method} {target} {headers:?} body {}", show_bytes(&body));
        if o == Outcome::Refused && judge {
            self.judge_admission(before, input);
        }
        self.note(S_HTTP, &a);
        self.record(S_HTTP, o, input, &describe(&a));
        S_HTTP
    }

    // --- Transactions -----------------------------------------------------------

    fn nonce_of(&self, a: Address) -> u64 {
        self.call("eth_getTransactionCount", json!([format!("{a:#x}"), "pending"]))
            .and_then(|v| v.as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()))
            .unwrap_or(0)
    }

    fn signed(
        &mut self,
        key: &keys::SecretKey,
        nonce: u64,
        to: Address,
        input: Vec<u8>,
        gas: u64,
        value: u128,
    ) -> Vec<u8> {
        keys::encode_2718(&keys::sign_eip1559(
            key,
            TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: gas,
                max_fee_per_gas: 20 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to: TxKind::Call(to),
                value: U256::from(value),
                access_list: Default::default(),
                input: input.into(),
            },
        ))
    }

    /// A mutated signed transfer, decoded in-process and sent over JSON-RPC.
    fn fuzz_tx(&mut self) -> usize {
        let key = self.tx_key.clone();
        let nonce = if self.g.chance(0.5) { self.nonce_of(key.address()) } else { self.g.below(3) as u64 };
        let to = Address::from_slice(&self.g.bytes(20));
        let input = if self.g.chance(0.5) {
            Vec::new()
        } else {
            let n = self.g.len(200);
            self.g.bytes(n)
        };
        let gas = *self.g.pick(&[0u64, 21_000, 100_000, 30_000_000, u64::MAX]);
        let value = *self.g.pick(&[0u128, 1, u128::MAX]);
        let valid = self.signed(&key, nonce, to, input, gas, value);
        if self.tx_seeds.len() < 64 {
            self.tx_seeds.push(valid.clone());
        }
        let mut raw = valid.clone();
        if self.g.chance(0.9) {
            let other = self.g.pick(&self.tx_seeds).clone();
            self.g.mutate_bytes(&mut raw, &other);
        }
        if self.g.chance(0.03) {
            raw = vec![self.g.below(256) as u8; self.g.len(200_000)];
        }

        // In-process: the decoder must refuse, never panic.
        let r = std::panic::catch_unwind(|| SignedTransaction::decode(&raw, CHAIN_ID).map(|_| ()));
        let (o, answer) = match r {
            Ok(Ok(())) => (Outcome::Ok, "decoded".to_string()),
            Ok(Err(e)) if !e.to_string().is_empty() => (Outcome::Refused, e.to_string()),
            Ok(Err(_)) => (Outcome::Unclear, "error without a message".to_string()),
            Err(p) => (Outcome::Panic, panic_text(&p)),
        };
        self.stats[S_DECODE].record(o, || format!("0x{}", hex(&raw)), &answer);

        self.send_raw(S_RAW, &raw);
        S_RAW
    }

    /// `eth_sendRawTransaction(raw)`, with the admission check when refused.
    fn send_raw(&mut self, surface: usize, raw: &[u8]) {
        let before = self.quiet_snapshot();
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [format!("0x{}", hex(raw))] }).to_string();
        let a = self.rpc_raw(body.as_bytes(), None);
        let o = classify_rpc(&a, false);
        let input = || format!("eth_sendRawTransaction 0x{}", hex(&raw[..raw.len().min(200)]));
        if o == Outcome::Refused {
            self.judge_admission(before, input);
            // A refused transaction must not be findable either.
            let h = format!("{:#x}", keccak256(raw));
            if let Some(v) = self.call("eth_getTransactionByHash", json!([h]))
                && !v.is_null()
            {
                self.admission.violations += 1;
                if self.admission.examples.len() < MAX_EXAMPLES {
                    self.admission.examples.push(Example {
                        outcome: o,
                        input: clip(&input(), 400),
                        answer: format!("refused ({}) but eth_getTransactionByHash finds it", describe(&a)),
                    });
                }
            }
        }
        self.note(surface, &a);
        self.record(surface, o, input, &describe(&a));
    }

    // --- System-contract calldata ---------------------------------------------

    fn calldata(&mut self) -> (Address, Vec<u8>) {
        let module = *self.g.pick(&SYSTEM_MODULES);
        let selectors = module_selectors(module);
        let selector: [u8; 4] = if selectors.is_empty() || self.g.chance(0.05) {
            self.g.bytes(4).try_into().expect("4 bytes")
        } else {
            *self.g.pick(&selectors)
        };
        let mut data = selector.to_vec();
        let words = self.g.len(12);
        for _ in 0..words {
            let mut w = [0u8; 32];
            match self.g.below(8) {
                0 => {}
                1 => w[31] = 1,
                2 => w = [0xff; 32],
                3 => w[24..].copy_from_slice(&(self.g.below(1 << 16) as u64).to_be_bytes()),
                4 => w[31] = (32 * self.g.below(8)) as u8, // a plausible dynamic offset
                5 => {
                    let a = self.g.dev_address();
                    w[12..].copy_from_slice(a.as_slice());
                }
                6 => w[24..].copy_from_slice(&u64::MAX.to_be_bytes()),
                _ => w.copy_from_slice(&self.g.bytes(32)),
            }
            data.extend_from_slice(&w);
        }
        if self.g.chance(0.2) {
            let other = self.g.bytes(36);
            self.g.mutate_bytes(&mut data, &other);
        }
        (module.address(), data)
    }

    fn fuzz_call(&mut self) -> usize {
        let (to, data) = self.calldata();
        let from = self.g.dev_address_hex();
        let mut call = json!({ "from": from, "to": format!("{to:#x}"), "data": format!("0x{}", hex(&data)) });
        if self.g.chance(0.2) {
            call["value"] = json!(*self.g.pick(&["0x1", "0xffffffffffffffffffffffffffffffff"]));
        }
        if self.g.chance(0.2) {
            call["gas"] = self.g.number();
        }
        let method = if self.g.chance(0.8) { "eth_call" } else { "eth_estimateGas" };
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": [call, "latest"] }).to_string();
        let a = self.rpc_raw(body.as_bytes(), None);
        let o = classify_rpc(&a, false);
        self.note(S_CALL, &a);
        self.record(S_CALL, o, || body.clone(), &describe(&a));
        S_CALL
    }

    fn fuzz_call_tx(&mut self) -> usize {
        let (to, data) = self.calldata();
        let key = self.calldata_key.clone();
        let nonce = self.nonce_of(key.address());
        let gas = *self.g.pick(&[21_000u64, 100_000, 1_000_000, 5_000_000]);
        let value = if self.g.chance(0.1) { 1 } else { 0 };
        let raw = self.signed(&key, nonce, to, data, gas, value);
        if self.tx_seeds.len() < 64 {
            self.tx_seeds.push(raw.clone());
        }
        self.send_raw(S_CALLTX, &raw);
        self.refresh_ctx();
        S_CALLTX
    }
}

fn classify_status_answer(a: &Answer) -> Outcome {
    match a {
        Answer::Hang => Outcome::Hang,
        Answer::Reset(_) => Outcome::Reset,
        Answer::Response { status, retry_after, body } => classify_status(*status, *retry_after, body),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Percent-encode everything but unreserved characters, so any string fits a path.
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes().take(2000) {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn deep_nesting(g: &mut Gen) -> Vec<u8> {
    let d = 100 + g.below(100_000);
    let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":".to_vec();
    b.extend(std::iter::repeat_n(b'[', d));
    b.extend(std::iter::repeat_n(b']', d));
    b.push(b'}');
    b
}

fn oversized_json(g: &mut Gen) -> Vec<u8> {
    let n = rpc::MAX_BODY_BYTES - 64 + g.below(1024 * 1024);
    let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"web3_sha3\",\"params\":[\"0x".to_vec();
    b.extend(std::iter::repeat_n(b'a', n & !1));
    b.extend_from_slice(b"\"]}");
    b
}

/// The selectors of a module's `sol!` interface (none for a module without one).
fn module_selectors(m: Module) -> Vec<[u8; 4]> {
    fn all<I: SolInterface>() -> Vec<[u8; 4]> {
        (0..I::COUNT).filter_map(I::selector_at).collect()
    }
    match m {
        Module::Bank => all::<abi::IBank::IBankCalls>(),
        Module::Params => all::<abi::IParams::IParamsCalls>(),
        Module::Staking => all::<abi::IStaking::IStakingCalls>(),
        Module::Governance => all::<abi::IGovernance::IGovernanceCalls>(),
        Module::Datanets => all::<abi::IDatanets::IDatanetsCalls>(),
        Module::Models => all::<abi::IModels::IModelsCalls>(),
        Module::Inference => all::<abi::IInference::IInferenceCalls>(),
        Module::Attribution => all::<abi::IAttribution::IAttributionCalls>(),
        Module::Agents => Vec::new(),
        Module::Assets => all::<abi::IAssets::IAssetsCalls>(),
    }
}

/// Run the harness and return its figures (no printing).
pub fn fuzz(opts: &FuzzOpts) -> Result<FuzzReport> {
    let (node, rpc, http) = match (&opts.rpc, &opts.http) {
        (Some(r), Some(h)) => (None, r.clone(), h.clone()),
        _ => {
            let bin = match &opts.openledger_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe().context("finding this executable")?,
            };
            let (n, r, h) = start_node(&bin)?;
            (Some(n), r, h)
        }
    };
    let api_key = opts.api_key.clone().or_else(|| {
        node.as_ref()
            .and_then(|n| std::fs::read_to_string(n.data.join("dev-api-key")).ok())
            .map(|s| s.trim().to_string())
    });
    let mut f = Fuzzer {
        g: Gen::new(opts.seed)?,
        rpc,
        http,
        timeout: Duration::from_millis(opts.request_timeout_ms.max(1)),
        api_key,
        audience: None,
        models: vec!["openledger-base".into(), "m1".into(), String::new(), "🦀".into()],
        calldata_key: keys::derive_account(keys::DEV_MNEMONIC, CALLDATA_ACCOUNT)?,
        tx_key: keys::derive_account(keys::DEV_MNEMONIC, TX_ACCOUNT)?,
        tx_seeds: Vec::new(),
        ctx: Ctx { head: 0, head_hash: Default::default() },
        stats: ["rpc", "rpc-batch", "http", "tx-decode", "tx-raw", "calldata-call", "calldata-tx"]
            .into_iter()
            .map(SurfaceStats::new)
            .collect(),
        admission: AdmissionStats::default(),
        log: node.as_ref().map(|n| LogWatch { path: n.log.clone(), read_to: 0, panics: 0 }),
        live: true,
    };
    if !f.check_live() {
        bail!("the node at {} does not answer eth_blockNumber", f.rpc);
    }
    // What signed requests must name.
    if let Answer::Response { status: 200, body, .. } = exchange(
        &f.http,
        &Request { method: "GET", target: "/v1/node/auth", headers: vec![], body: b"", chunks: None },
        f.timeout,
    ) && let Ok(v) = serde_json::from_slice::<Value>(&body)
    {
        f.audience = match (v["chainId"].as_u64(), v["node"].as_str().and_then(|s| s.parse().ok())) {
            (Some(chain_id), Some(node)) => Some(keys::request::Audience { chain_id, node }),
            _ => None,
        };
    }
    // The models it serves, so that some completions reach the engine.
    if let Answer::Response { status: 200, body, .. } = exchange(
        &f.http,
        &Request { method: "GET", target: "/v1/models", headers: vec![], body: b"", chunks: None },
        f.timeout,
    ) && let Ok(v) = serde_json::from_slice::<Value>(&body)
    {
        let listed = v["data"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str());
        f.models.extend(listed.map(str::to_string));
    }
    // The node's own start-up transactions (serving set-up): wait until the head rests.
    let settle = Instant::now();
    let mut last = f.snapshot();
    while settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(500));
        let now = f.snapshot();
        if now == last && now.as_ref().is_some_and(|s| s.pending == 0 && s.queued == 0) {
            break;
        }
        last = now;
    }
    f.refresh_ctx();
    let missing_methods: Vec<String> = RPC_METHODS
        .iter()
        .filter(|m| {
            let body = json!({ "jsonrpc": "2.0", "id": 1, "method": m, "params": [] }).to_string();
            matches!(f.rpc_raw(body.as_bytes(), None), Answer::Response { body, .. }
                if serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["error"]["code"].as_i64()) == Some(-32601))
        })
        .map(|m| m.to_string())
        .collect();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(opts.seconds);
    let max_inputs = opts.max_inputs.unwrap_or(u64::MAX);
    let mut last_live = Instant::now();
    let mut i: u64 = 0;
    while Instant::now() < deadline && f.stats.iter().map(|s| s.tried).sum::<u64>() < max_inputs {
        // Weights: cheap reads often, sealed transactions (a block each) rarely.
        let t = Instant::now();
        let s = match f.g.below(100) {
            0..=34 => f.fuzz_rpc(),
            35..=42 => f.fuzz_batch(),
            43..=69 => f.fuzz_http(),
            70..=84 => f.fuzz_tx(),
            85..=96 => f.fuzz_call(),
            _ => f.fuzz_call_tx(),
        };
        let dt = t.elapsed();
        f.stats[s].busy += dt;
        f.stats[s].slowest = f.stats[s].slowest.max(dt);
        i += 1;
        if i.is_multiple_of(50) {
            f.refresh_ctx();
        }
        if last_live.elapsed() > Duration::from_secs(2) {
            last_live = Instant::now();
            if !f.check_live() {
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    f.check_live();
    if let Some(l) = f.log.as_mut() {
        let late = l.new_panics();
        if !late.is_empty() {
            f.stats[S_RPC].examples.push(Example {
                outcome: Outcome::Panic,
                input: "(after the run)".into(),
                answer: late.join(" | "),
            });
        }
    }
    Ok(FuzzReport {
        seed: opts.seed,
        seconds,
        node_live: f.live,
        log_panics: f.log.as_ref().map(|l| l.panics),
        surfaces: f.stats,
        admission: f.admission,
        missing_methods,
    })
}

/// `openledger bench fuzz`: run, print the table, write `--json-out`.
pub fn run_fuzz(opts: &FuzzOpts) -> Result<()> {
    println!(
        "bench fuzz: seed {}, {} s{}, request timeout {} ms; {}",
        opts.seed,
        opts.seconds,
        opts.max_inputs.map(|n| format!(", at most {n} inputs")).unwrap_or_default(),
        opts.request_timeout_ms,
        Machine::detect().describe()
    );
    let r = fuzz(opts)?;
    r.print();
    if let Some(p) = &opts.json_out {
        write_results(p, &r.to_json())?;
    }
    let bad = r.total(|s| s.panics + s.hangs + s.unexpected_5xx) + r.log_panics.unwrap_or(0) + r.admission.violations;
    if bad > 0 || !r.node_live {
        bail!("the node failed the fuzz run: see the table and the examples above");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic() {
        let run = |seed| {
            let mut g = Gen::new(seed).unwrap();
            let ctx = Ctx { head: 3, head_hash: Default::default() };
            (0..50)
                .map(|_| {
                    let mut v = g.valid_params("eth_call", &ctx);
                    g.mutate_value(&mut v);
                    let mut b = serde_json::to_vec(&v).unwrap();
                    g.mutate_bytes(&mut b, b"other");
                    b
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn every_module_with_an_interface_has_selectors() {
        for m in SYSTEM_MODULES {
            assert_eq!(module_selectors(m).is_empty(), m == Module::Agents, "{m:?}");
        }
    }

    #[test]
    fn answers_are_classified() {
        let resp =
            |status, retry_after, body: &str| Answer::Response { status, retry_after, body: body.as_bytes().to_vec() };
        assert_eq!(classify_rpc(&resp(200, false, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#), false), Outcome::Ok);
        assert_eq!(
            classify_rpc(&resp(200, false, r#"{"id":1,"error":{"code":-32602,"message":"bad"}}"#), false),
            Outcome::Refused
        );
        assert_eq!(classify_rpc(&resp(200, false, r#"{"id":1,"error":{"code":-32602}}"#), false), Outcome::Unclear);
        assert_eq!(
            classify_rpc(&resp(200, false, r#"[{"id":1,"result":1},{"id":2,"error":{"code":1,"message":"m"}}]"#), true),
            Outcome::Ok
        );
        assert_eq!(classify_status_answer(&resp(404, false, r#"{"error":{"message":"no"}}"#)), Outcome::Refused);
        assert_eq!(classify_status_answer(&resp(400, false, "bad")), Outcome::Unclear);
        assert_eq!(classify_status_answer(&resp(503, true, "")), Outcome::Deliberate503);
        assert_eq!(classify_status_answer(&resp(503, false, "")), Outcome::Unexpected5xx);
        assert_eq!(classify_status_answer(&resp(500, false, "")), Outcome::Unexpected5xx);
        assert_eq!(classify_status_answer(&Answer::Hang), Outcome::Hang);
    }

    #[test]
    fn mutations_stay_under_the_cap() {
        let mut g = Gen::new(1).unwrap();
        let mut b = vec![1u8; MAX_FUZZ_BODY];
        for _ in 0..20 {
            g.mutate_bytes(&mut b, &[2u8; 1000]);
            assert!(b.len() <= MAX_FUZZ_BODY);
        }
    }
}
