//! `bench chain`: pre-signed EIP-1559 transfers over JSON-RPC until every one is
//! in a block, against our node and against Hardhat's node, same client, same
//! signed transactions, alternating runs, each on a fresh node.
//!
//! One run:
//! 1. start a fresh node on a free loopback port and wait for `eth_chainId`;
//! 2. check the chain id (31337) and that every sender's nonce is 0;
//! 3. `--clients` threads, each owning whole senders (sender `s` goes to thread
//!    `s % threads`, a thread interleaves its senders nonce by nonce), send the
//!    raw transactions with `eth_sendRawTransaction`, recording when each send
//!    started; a watcher thread polls `eth_blockNumber` every `--poll-ms` and
//!    fetches new blocks (`eth_getBlockByNumber(n, false)`, batched), recording
//!    when each hash is first seen in a block (the time the head number that
//!    includes it came back);
//! 4. when every hash is seen: throughput = txs / (last inclusion − first send),
//!    latency = seen − sent (p50, p99); then every receipt is fetched and must
//!    have status 0x1, so a node that drops or fails transactions cannot score;
//! 5. kill the node (a guard kills it on every path, errors included).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, TxKind, U256, address, keccak256};
use anyhow::{Context, Result, anyhow, bail};
use rpc::client::{RpcClient, parse_answer};
use rpc::types::{Block, Receipt};
use serde_json::{Value, json};

use crate::machine::{Machine, today};
use crate::stats::{fmt_ratio, median, percentile, ratio};

/// Chain id of both dev chains.
pub(crate) const CHAIN_ID: u64 = 31337;
const GWEI: u128 = 1_000_000_000;
/// Every transfer goes here: not a dev account, not a system or precompile address.
pub(crate) const RECIPIENT: Address = address!("0x4242424242424242424242424242424242424242");
/// The Hardhat release we compare with (bench/peers/install.sh installs it).
const HARDHAT_VERSION: &str = "2.29.1";
/// How long a node may take to answer `eth_chainId` after start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Blocks fetched per JSON-RPC batch by the watcher, receipts per batch when verifying.
const BATCH: usize = 100;
/// A thread stopped because another one failed.
const ABORTED: &str = "aborted";

/// Which block production to compare.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainMode {
    /// Our `--instant` sealing vs Hardhat's automine.
    Instant,
    /// Blocks every `--block-time` ms on both.
    Interval,
    /// Instant, then interval.
    Both,
}

/// `openledger bench chain`: JSON-RPC transfers/s and submit-to-inclusion
/// latency, our node vs Hardhat's node.
#[derive(clap::Args, Debug, Clone)]
pub struct ChainOpts {
    /// Transfers per run, split round-robin over the senders.
    #[arg(long, default_value_t = 2000)]
    pub txs: usize,
    /// Sending accounts: the first N dev accounts (1 to 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub senders: u32,
    /// Client threads sending transactions (each owns whole senders; at most one per sender).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Rounds per mode; each round runs ours then the peer, each on a fresh node.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// instant (vs automine), interval (vs interval mining) or both.
    #[arg(long, value_enum, default_value_t = ChainMode::Both)]
    pub mode: ChainMode,
    /// Milliseconds between blocks in interval mode (both nodes).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub block_time: u64,
    /// The `openledger` binary to start as our node. Default: this executable.
    #[arg(long)]
    pub openledger_bin: Option<PathBuf>,
    /// Run our node only (no Hardhat, ratio n/a).
    #[arg(long)]
    pub no_peer: bool,
    /// Where Hardhat is (or gets) installed. Default: bench/.peers/hardhat of the
    /// source tree (found from the current directory upwards, else from the build).
    #[arg(long)]
    pub peer_dir: Option<PathBuf>,
    /// Milliseconds between the watcher's `eth_blockNumber` polls.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Seconds one run may take before it fails.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for ChainOpts {
    fn default() -> Self {
        ChainOpts {
            txs: 2000,
            senders: 10,
            clients: 8,
            rounds: 3,
            mode: ChainMode::Both,
            block_time: 1000,
            openledger_bin: None,
            no_peer: false,
            peer_dir: None,
            poll_ms: 5,
            timeout: 300,
            json_out: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Workload

/// One pre-signed transfer.
#[derive(Clone, Debug)]
pub(crate) struct SignedTransfer {
    /// Index into [`Workload::senders`].
    pub sender: usize,
    pub nonce: u64,
    /// EIP-2718 bytes for `eth_sendRawTransaction`.
    pub raw: Vec<u8>,
    /// keccak256 of `raw`: the transaction hash.
    pub hash: B256,
}

/// All transfers of a run, signed before any clock starts. Transfer `i` is
/// sent by sender `i % senders` with nonce `i / senders`.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub senders: Vec<Address>,
    pub txs: Vec<SignedTransfer>,
}

/// Sign `txs` transfers of 1 wei to [`RECIPIENT`] (gas 21,000, max fee 10 gwei,
/// tip 1 gwei) from the first `senders` dev accounts.
pub(crate) fn build_workload(txs: usize, senders: usize) -> Result<Workload> {
    if senders == 0 || senders > 10 {
        bail!("--senders must be between 1 and 10 (the funded dev accounts), got {senders}");
    }
    let keys = (0..senders)
        .map(|i| keys::derive_account(keys::DEV_MNEMONIC, i as u32))
        .collect::<Result<Vec<_>, _>>()
        .context("deriving the dev accounts")?;
    let txs = (0..txs)
        .map(|i| {
            let sender = i % senders;
            let nonce = (i / senders) as u64;
            let tx = TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: 10 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to: TxKind::Call(RECIPIENT),
                value: U256::from(1u8),
                ..Default::default()
            };
            let raw = keys::encode_2718(&keys::sign_eip1559(&keys[sender], tx));
            let hash = keccak256(&raw);
            SignedTransfer { sender, nonce, raw, hash }
        })
        .collect();
    Ok(Workload { senders: keys.iter().map(|k| k.address()).collect(), txs })
}

/// Which transfers each client thread sends, in order: sender `s` belongs to
/// thread `s % threads` (threads = min(clients, senders)); a thread sends nonce 0
/// of each of its senders, then nonce 1, and so on.
pub(crate) fn plan_threads(w: &Workload, clients: usize) -> Vec<Vec<usize>> {
    let senders = w.senders.len().max(1);
    let threads = clients.clamp(1, senders);
    let n = w.txs.len();
    (0..threads)
        .map(|t| {
            let mine: Vec<usize> = (t..senders).step_by(threads).collect();
            let mut order = Vec::new();
            let mut nonce = 0;
            while nonce * senders < n {
                for &s in &mine {
                    let i = nonce * senders + s;
                    if i < n {
                        order.push(i);
                    }
                }
                nonce += 1;
            }
            order
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Node processes

/// A node running as a child process, killed (with its process group) on drop.
struct NodeProc {
    name: &'static str,
    child: Child,
    addr: String,
    log: PathBuf,
    /// Holds the data directory and the log; removed on drop.
    _dir: tempfile::TempDir,
}

impl NodeProc {
    fn spawn(name: &'static str, mut cmd: Command, dir: tempfile::TempDir, addr: String) -> Result<Self> {
        let log = dir.path().join(format!("{name}.log"));
        let f = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f);
        #[cfg(unix)]
        {
            // Own process group, so the guard also kills whatever the node forks.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().with_context(|| format!("starting {name}: {:?}", cmd.get_program()))?;
        let mut p = NodeProc { name, child, addr, log, _dir: dir };
        p.wait_ready()?;
        Ok(p)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before answering on {}; its log ends with:\n{}",
                    self.name,
                    self.addr,
                    log_tail(&self.log)
                );
            }
            let mut c = RpcClient::new(&self.addr).with_timeout(Duration::from_secs(5));
            let last_err = match c.chain_id() {
                Ok(CHAIN_ID) => return Ok(()),
                Ok(other) => bail!("{} reports chain id {other}, want {CHAIN_ID}", self.name),
                Err(e) => e.to_string(),
            };
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} did not answer eth_chainId on {} within {} s ({last_err}); its log ends with:\n{}",
                    self.name,
                    self.addr,
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            // The child leads its own process group (process_group(0)): kill the group.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last ~2 KB of a log file.
fn log_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return "(no log)".into();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let s = String::from_utf8_lossy(&buf).trim().to_string();
    if s.is_empty() { "(empty log)".into() } else { s }
}

/// A loopback port nobody listens on (bound then released: a small race we accept).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn tmp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).tempdir().context("creating a temporary directory")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Production {
    Instant,
    Interval(u64),
}

impl Production {
    fn label(self) -> &'static str {
        match self {
            Production::Instant => "instant",
            Production::Interval(_) => "interval",
        }
    }
}

fn start_ours(bin: &Path, prod: Production) -> Result<NodeProc> {
    let dir = tmp_dir("openledger-bench-")?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut cmd = Command::new(bin);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--rpc-addr")
        .arg(&addr)
        .arg("--http-addr")
        .arg("127.0.0.1:0");
    match prod {
        Production::Instant => cmd.arg("--instant"),
        Production::Interval(ms) => cmd.arg("--block-time").arg(ms.to_string()),
    };
    cmd.arg("--quiet");
    NodeProc::spawn("openledger", cmd, dir, addr)
}

/// An installed Hardhat.
#[derive(Clone, Debug)]
struct Hardhat {
    dir: PathBuf,
    version: String,
}

impl Hardhat {
    fn start(&self, prod: Production) -> Result<NodeProc> {
        let dir = tmp_dir("hardhat-bench-")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        // Run Hardhat's CLI module with node directly: the `hardhat` bin script forks
        // it into a second process, which a plain kill would leave running.
        let cli = self.dir.join("node_modules/hardhat/internal/cli/cli.js");
        let mut cmd = if cli.is_file() {
            let mut c = Command::new("node");
            c.arg(cli);
            c
        } else {
            Command::new(self.dir.join("node_modules/.bin/hardhat"))
        };
        cmd.args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
            .arg("--config")
            .arg(self.dir.join("hardhat.config.js"))
            .current_dir(&self.dir)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .env("DO_NOT_TRACK", "1");
        match prod {
            Production::Instant => cmd.env("OL_BENCH_MINING", "instant"),
            Production::Interval(ms) => {
                cmd.env("OL_BENCH_MINING", "interval").env("OL_BENCH_INTERVAL_MS", ms.to_string())
            }
        };
        NodeProc::spawn("hardhat", cmd, dir, addr)
    }
}

/// The bench/ directory of the source tree: from the current directory upwards,
/// else next to the crate this was built from.
fn bench_dir() -> Option<PathBuf> {
    let has_script = |d: &Path| d.join("peers/install.sh").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            let d = a.join("bench");
            if has_script(&d) {
                return Some(d);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    has_script(&built).then_some(built)
}

fn hardhat_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("node_modules/hardhat/package.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

/// Find Hardhat, installing it with bench/peers/install.sh if needed. `None`
/// (after saying why) when it cannot be had.
fn prepare_hardhat(opts: &ChainOpts) -> Option<Hardhat> {
    let bench = bench_dir();
    let dir = match (&opts.peer_dir, &bench) {
        (Some(d), _) => d.clone(),
        (None, Some(b)) => b.join(".peers/hardhat"),
        (None, None) => {
            eprintln!(
                "peer: cannot find bench/peers/install.sh (run from the source tree or pass --peer-dir); running our node alone"
            );
            return None;
        }
    };
    let installed =
        |d: &Path| d.join("hardhat.config.js").is_file() && d.join("node_modules/hardhat/package.json").is_file();
    if !installed(&dir) {
        let Some(script) = bench.as_ref().map(|b| b.join("peers/install.sh")) else {
            eprintln!(
                "peer: Hardhat is not installed in {} and bench/peers/install.sh was not found; running our node alone",
                dir.display()
            );
            return None;
        };
        eprintln!("peer: installing hardhat@{HARDHAT_VERSION} into {} with {} ...", dir.display(), script.display());
        let status = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status();
        match status {
            Ok(s) if s.success() && installed(&dir) => {}
            Ok(s) => {
                eprintln!("peer: {} failed ({s}); running our node alone", script.display());
                return None;
            }
            Err(e) => {
                eprintln!("peer: cannot run bash {}: {e}; running our node alone", script.display());
                return None;
            }
        }
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!("peer: `node` (Node.js) is not on PATH; running our node alone");
            return None;
        }
    }
    let version = hardhat_version(&dir).unwrap_or_else(|| "?".into());
    if version != HARDHAT_VERSION {
        eprintln!("peer: note: Hardhat {version} in {}, the reference is {HARDHAT_VERSION}", dir.display());
    }
    Some(Hardhat { dir, version })
}

// ---------------------------------------------------------------------------
// One run

/// Figures of one run.
#[derive(Clone, Debug)]
pub(crate) struct RunFigures {
    pub txs: usize,
    /// First send → last inclusion, seconds.
    pub elapsed_s: f64,
    /// First send → last send answered, seconds.
    pub submit_s: f64,
    pub tps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Blocks produced during the run.
    pub blocks: u64,
}

/// One client thread's sends (transfer index, when its send started) and when
/// its last answer came back.
type Sent = (Vec<(usize, Instant)>, Instant);
/// When each transfer was first seen in a block, by transfer index.
type Seen = Vec<Option<Instant>>;

/// Send the workload to the node at `addr`, wait until every transfer is in a
/// block, then check every receipt. The node must be fresh (all nonces 0).
pub(crate) fn run_workload(
    addr: &str,
    w: &Workload,
    clients: usize,
    poll: Duration,
    timeout: Duration,
) -> Result<RunFigures> {
    let n = w.txs.len();
    if n == 0 {
        bail!("no transactions to send");
    }
    let mut c = RpcClient::new(addr);
    let id = c.chain_id().context("eth_chainId")?;
    if id != CHAIN_ID {
        bail!("the node at {addr} has chain id {id}, want {CHAIN_ID}");
    }
    for (i, a) in w.senders.iter().enumerate() {
        let nonce = c.nonce(a, true).context("eth_getTransactionCount")?;
        if nonce != 0 {
            bail!("dev account {i} ({a}) has nonce {nonce} on the node at {addr}: the node is not fresh");
        }
    }
    let head0 = c.block_number().context("eth_blockNumber")?;
    let index: HashMap<B256, usize> = w.txs.iter().enumerate().map(|(i, t)| (t.hash, i)).collect();
    if index.len() != n {
        bail!("duplicate transaction hashes in the workload");
    }

    let plan = plan_threads(w, clients);
    let abort = AtomicBool::new(false);
    let barrier = Barrier::new(plan.len() + 1);

    let (sent, seen, head1) = std::thread::scope(|s| -> Result<(Vec<Sent>, Seen, u64)> {
        let senders: Vec<_> = plan
            .iter()
            .map(|order| {
                let (abort, barrier) = (&abort, &barrier);
                s.spawn(move || -> Result<Sent> {
                    let mut c = RpcClient::new(addr);
                    // Open the keep-alive connection before the clock starts.
                    let warm = c.chain_id();
                    barrier.wait();
                    warm.context("eth_chainId")?;
                    let mut sent = Vec::with_capacity(order.len());
                    for &i in order {
                        if abort.load(Ordering::Relaxed) {
                            bail!(ABORTED);
                        }
                        let t = &w.txs[i];
                        let at = Instant::now();
                        let r = c.send_raw(&t.raw);
                        match r {
                            Ok(h) if h == t.hash => sent.push((i, at)),
                            Ok(h) => {
                                abort.store(true, Ordering::Relaxed);
                                bail!(
                                    "the node answered hash {h} for transaction {} (sender {} nonce {})",
                                    t.hash,
                                    t.sender,
                                    t.nonce
                                );
                            }
                            Err(e) => {
                                abort.store(true, Ordering::Relaxed);
                                return Err(anyhow!(e)).with_context(|| {
                                    format!("eth_sendRawTransaction (sender {} nonce {})", t.sender, t.nonce)
                                });
                            }
                        }
                    }
                    Ok((sent, Instant::now()))
                })
            })
            .collect();
        let watcher = {
            let (abort, index) = (&abort, &index);
            s.spawn(move || -> Result<(Seen, u64)> {
                let r = watch(addr, index, n, head0, poll, timeout, abort);
                if r.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                r
            })
        };
        barrier.wait();
        let mut sent = Vec::new();
        let mut errors = Vec::new();
        for h in senders {
            match h.join().expect("sender thread panicked") {
                Ok(x) => sent.push(x),
                Err(e) => {
                    abort.store(true, Ordering::Relaxed);
                    errors.push(e);
                }
            }
        }
        match watcher.join().expect("watcher thread panicked") {
            Ok((seen, head1)) if errors.is_empty() => Ok((sent, seen, head1)),
            Ok(_) => Err(first_cause(errors)),
            Err(e) => {
                errors.push(e);
                Err(first_cause(errors))
            }
        }
    })?;

    let mut sent_at: Vec<Option<Instant>> = vec![None; n];
    let mut last_answer: Option<Instant> = None;
    for (list, done) in &sent {
        for &(i, at) in list {
            sent_at[i] = Some(at);
        }
        last_answer = Some(last_answer.map_or(*done, |l: Instant| l.max(*done)));
    }
    let first_send = sent_at.iter().flatten().min().copied().ok_or_else(|| anyhow!("nothing was sent"))?;
    let last_seen = seen.iter().flatten().max().copied().ok_or_else(|| anyhow!("nothing was seen"))?;
    let mut lat_ms = Vec::with_capacity(n);
    for i in 0..n {
        let (Some(a), Some(b)) = (sent_at[i], seen[i]) else {
            bail!("transaction {i} was not both sent and seen");
        };
        lat_ms.push(b.saturating_duration_since(a).as_secs_f64() * 1e3);
    }
    let elapsed_s = last_seen.saturating_duration_since(first_send).as_secs_f64();
    let submit_s = last_answer.map_or(0.0, |l| l.saturating_duration_since(first_send).as_secs_f64());

    verify_receipts(&mut c, w)?;

    Ok(RunFigures {
        txs: n,
        elapsed_s,
        submit_s,
        tps: if elapsed_s > 0.0 { n as f64 / elapsed_s } else { f64::INFINITY },
        p50_ms: percentile(&lat_ms, 50.0),
        p99_ms: percentile(&lat_ms, 99.0),
        blocks: head1.saturating_sub(head0),
    })
}

/// Poll the head and record when each transaction is first seen in a block.
/// Returns the times and the last head read.
fn watch(
    addr: &str,
    index: &HashMap<B256, usize>,
    n: usize,
    head0: u64,
    poll: Duration,
    timeout: Duration,
    abort: &AtomicBool,
) -> Result<(Seen, u64)> {
    let mut c = RpcClient::new(addr);
    let mut seen: Vec<Option<Instant>> = vec![None; n];
    let mut count = 0;
    let mut next = head0 + 1;
    let mut head = head0;
    let start = Instant::now();
    while count < n {
        if abort.load(Ordering::Relaxed) {
            bail!(ABORTED);
        }
        if start.elapsed() > timeout {
            bail!(
                "only {count} of {n} transactions were in a block after {} s (head {head}, started at {head0})",
                timeout.as_secs()
            );
        }
        head = c.block_number().context("watcher: eth_blockNumber")?;
        let now = Instant::now();
        'fetch: while next <= head {
            let last = head.min(next + BATCH as u64 - 1);
            let calls: Vec<(&str, Value)> =
                (next..=last).map(|b| ("eth_getBlockByNumber", json!([format!("0x{b:x}"), false]))).collect();
            let answers = c.batch(&calls).context("watcher: eth_getBlockByNumber")?;
            for (k, a) in answers.into_iter().enumerate() {
                let block: Option<Block> = a
                    .and_then(|v| parse_answer("eth_getBlockByNumber", v))
                    .with_context(|| format!("watcher: block {}", next + k as u64))?;
                let Some(block) = block else {
                    // Head announced before the block is readable: retry on the next poll.
                    next += k as u64;
                    break 'fetch;
                };
                for h in block.transactions.hashes() {
                    if let Some(&i) = index.get(&h)
                        && seen[i].is_none()
                    {
                        seen[i] = Some(now);
                        count += 1;
                    }
                }
            }
            next = last + 1;
        }
        if count < n {
            std::thread::sleep(poll);
        }
    }
    Ok((seen, head))
}

/// Every transaction must have a receipt with status 0x1.
fn verify_receipts(c: &mut RpcClient, w: &Workload) -> Result<()> {
    let mut bad = Vec::new();
    for chunk in w.txs.chunks(BATCH) {
        let calls: Vec<(&str, Value)> =
            chunk.iter().map(|t| ("eth_getTransactionReceipt", json!([format!("{:#x}", t.hash)]))).collect();
        let answers = c.batch(&calls).context("eth_getTransactionReceipt")?;
        for (t, a) in chunk.iter().zip(answers) {
            let r: Option<Receipt> = a
                .and_then(|v| parse_answer("eth_getTransactionReceipt", v))
                .with_context(|| format!("receipt of {:#x}", t.hash))?;
            let problem = match r {
                None => "no receipt",
                Some(r) if !r.status() => "status 0",
                Some(_) => continue,
            };
            bad.push(format!("sender {} nonce {} ({:#x}): {problem}", t.sender, t.nonce, t.hash));
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} of {} transactions have no successful receipt, e.g. {}",
            bad.len(),
            w.txs.len(),
            bad[..bad.len().min(3)].join("; ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The suite

struct Run {
    system: &'static str,
    mode: &'static str,
    round: u32,
    f: RunFigures,
}

/// Run `bench chain`: print each run, the medians, the ratio ours/peer and the machine.
pub fn run_chain(opts: &ChainOpts) -> Result<()> {
    let machine = Machine::detect();
    let bin = match &opts.openledger_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating the openledger binary")?,
    };
    let modes: Vec<Production> = match opts.mode {
        ChainMode::Instant => vec![Production::Instant],
        ChainMode::Interval => vec![Production::Interval(opts.block_time)],
        ChainMode::Both => vec![Production::Instant, Production::Interval(opts.block_time)],
    };
    let senders = opts.senders as usize;
    let clients = (opts.clients as usize).min(senders);
    let poll = Duration::from_millis(opts.poll_ms);
    let timeout = Duration::from_secs(opts.timeout);

    println!("bench chain: {} pre-signed EIP-1559 transfers (1 wei, gas 21000, max fee 10 gwei, tip 1 gwei)", opts.txs);
    println!(
        "  from {senders} dev accounts over JSON-RPC by {clients} client threads; watcher polls every {} ms; {} round(s) per mode, fresh node per run",
        opts.poll_ms, opts.rounds
    );
    println!("  ours: {} up --instant | --block-time {}", bin.display(), opts.block_time);
    println!("  machine: {}", machine.describe());

    let mut peer = if opts.no_peer { None } else { prepare_hardhat(opts) };
    match &peer {
        Some(h) => println!(
            "  peer: Hardhat {} node (EDR) in {}: automine | interval mining {} ms",
            h.version,
            h.dir.display(),
            opts.block_time
        ),
        None => println!("  peer: none{}", if opts.no_peer { " (--no-peer)" } else { "" }),
    }
    let peer_info = peer.as_ref().map(|h| json!({"name": "hardhat", "version": h.version}));

    let t = Instant::now();
    let w = build_workload(opts.txs, senders)?;
    println!("  signed {} transactions in {:.2} s (before any clock starts)\n", w.txs.len(), t.elapsed().as_secs_f64());

    let mut runs: Vec<Run> = Vec::new();
    for &prod in &modes {
        for round in 1..=opts.rounds {
            let node = start_ours(&bin, prod)?;
            let f = run_workload(&node.addr, &w, clients, poll, timeout)
                .with_context(|| format!("openledger, {} mode, round {round}", prod.label()))?;
            drop(node);
            print_run("openledger", prod.label(), round, &f);
            runs.push(Run { system: "openledger", mode: prod.label(), round, f });

            if let Some(h) = &peer {
                let r = h.start(prod).and_then(|node| {
                    let f = run_workload(&node.addr, &w, clients, poll, timeout);
                    drop(node);
                    f
                });
                match r {
                    Ok(f) => {
                        print_run("hardhat", prod.label(), round, &f);
                        runs.push(Run { system: "hardhat", mode: prod.label(), round, f });
                    }
                    Err(e) => {
                        eprintln!(
                            "peer: hardhat failed ({} mode, round {round}): {e:#}\npeer: continuing with our node alone",
                            prod.label()
                        );
                        peer = None;
                    }
                }
            }
        }
    }

    // Summary.
    println!("\nmedians over {} round(s), {} transfers per run:", opts.rounds, opts.txs);
    println!(
        "{:<9} {:<11} {:>5} {:>12} {:>10} {:>10} {:>9}",
        "mode", "system", "runs", "transfers/s", "p50 ms", "p99 ms", "tx/block"
    );
    let mut summary = Vec::new();
    for &prod in &modes {
        let mode = prod.label();
        let mut meds: HashMap<&str, (f64, f64, f64)> = HashMap::new();
        for system in ["openledger", "hardhat"] {
            let rs: Vec<&RunFigures> =
                runs.iter().filter(|r| r.mode == mode && r.system == system).map(|r| &r.f).collect();
            if rs.is_empty() {
                continue;
            }
            let tps = median(&rs.iter().map(|f| f.tps).collect::<Vec<_>>());
            let p50 = median(&rs.iter().map(|f| f.p50_ms).collect::<Vec<_>>());
            let p99 = median(&rs.iter().map(|f| f.p99_ms).collect::<Vec<_>>());
            let per_block = median(&rs.iter().map(|f| f.txs as f64 / f.blocks.max(1) as f64).collect::<Vec<_>>());
            println!("{mode:<9} {system:<11} {:>5} {tps:>12.1} {p50:>10.1} {p99:>10.1} {per_block:>9.1}", rs.len());
            meds.insert(system, (tps, p50, p99));
        }
        let ours = meds.get("openledger").copied();
        let theirs = meds.get("hardhat").copied();
        let r_tps = ratio(ours.map(|m| m.0), theirs.map(|m| m.0));
        let r_p50 = ratio(ours.map(|m| m.1), theirs.map(|m| m.1));
        let r_p99 = ratio(ours.map(|m| m.2), theirs.map(|m| m.2));
        println!(
            "{mode:<9} ratio ours/peer: transfers/s {}, p50 latency {}, p99 latency {}",
            fmt_ratio(r_tps),
            fmt_ratio(r_p50),
            fmt_ratio(r_p99)
        );
        summary.push(json!({
            "mode": mode,
            "ours": ours.map(|m| json!({"tps": m.0, "p50Ms": m.1, "p99Ms": m.2})),
            "peer": theirs.map(|m| json!({"tps": m.0, "p50Ms": m.1, "p99Ms": m.2})),
            "ratioTps": r_tps,
            "ratioP50": r_p50,
            "ratioP99": r_p99,
        }));
    }
    println!("machine: {}", machine.describe());

    if let Some(path) = &opts.json_out {
        let doc = json!({
            "suite": "chain",
            "date": today(),
            "machine": machine.to_json(),
            "config": {
                "txs": opts.txs, "senders": senders, "clients": clients, "rounds": opts.rounds,
                "blockTimeMs": opts.block_time, "pollMs": opts.poll_ms,
                "openledgerBin": bin.display().to_string(),
            },
            "peer": peer_info,
            "runs": runs.iter().map(|r| json!({
                "system": r.system, "mode": r.mode, "round": r.round, "txs": r.f.txs,
                "elapsedS": r.f.elapsed_s, "submitS": r.f.submit_s, "tps": r.f.tps,
                "p50Ms": r.f.p50_ms, "p99Ms": r.f.p99_ms, "blocks": r.f.blocks,
            })).collect::<Vec<_>>(),
            "summary": summary,
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

fn print_run(system: &str, mode: &str, round: u32, f: &RunFigures) {
    println!(
        "{mode:<9} round {round:<2} {system:<11} {:>8.1} transfers/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {:>5} blocks  (all sent in {:.2} s, all in blocks in {:.2} s)",
        f.tps, f.p50_ms, f.p99_ms, f.blocks, f.submit_s, f.elapsed_s
    );
}

pub(crate) fn write_json(path: &Path, doc: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `--json-out`: write the results and say where.
pub(crate) fn write_results(path: &Path, doc: &Value) -> Result<()> {
    write_json(path, doc)?;
    println!("results written to {}", path.display());
    Ok(())
}

/// The first error that is not a thread stopping because another one failed.
fn first_cause(mut errors: Vec<anyhow::Error>) -> anyhow::Error {
    let i = errors.iter().position(|e| e.to_string() != ABORTED).unwrap_or(0);
    errors.swap_remove(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn workload_nonces_and_hashes() {
        let w = build_workload(23, 3).unwrap();
        assert_eq!(w.txs.len(), 23);
        assert_eq!(w.senders.len(), 3);
        assert_eq!(w.senders[0], address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
        let hashes: HashSet<B256> = w.txs.iter().map(|t| t.hash).collect();
        assert_eq!(hashes.len(), 23, "hashes distinct");
        for s in 0..3 {
            let nonces: Vec<u64> = w.txs.iter().filter(|t| t.sender == s).map(|t| t.nonce).collect();
            assert_eq!(nonces, (0..nonces.len() as u64).collect::<Vec<_>>(), "sender {s}");
        }
        // 23 = 8 + 8 + 7.
        assert_eq!(w.txs.iter().filter(|t| t.sender == 2).count(), 7);
        // The bytes are an EIP-1559 envelope whose hash is what we expect.
        use alloy_eips::eip2718::Decodable2718;
        let env = alloy_consensus::TxEnvelope::decode_2718(&mut w.txs[4].raw.as_slice()).unwrap();
        assert_eq!(*env.tx_hash(), w.txs[4].hash);
        use alloy_consensus::Transaction;
        assert_eq!(env.nonce(), 1);
        assert_eq!(env.chain_id(), Some(CHAIN_ID));
        assert_eq!(env.gas_limit(), 21_000);
        assert_eq!(env.to(), Some(RECIPIENT));
        use alloy_consensus::transaction::SignerRecoverable;
        assert_eq!(env.recover_signer().unwrap(), w.senders[1]);
        assert!(build_workload(5, 0).is_err());
        assert!(build_workload(5, 11).is_err());
    }

    #[test]
    fn threads_own_whole_senders_in_nonce_order() {
        let w = build_workload(2000, 10).unwrap();
        let plan = plan_threads(&w, 8);
        assert_eq!(plan.len(), 8);
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..2000).collect::<Vec<_>>(), "every tx exactly once");
        let mut owner = HashMap::new();
        for (t, order) in plan.iter().enumerate() {
            let mut next_nonce: HashMap<usize, u64> = HashMap::new();
            for &i in order {
                let tx = &w.txs[i];
                assert_eq!(*owner.entry(tx.sender).or_insert(t), t, "sender split over threads");
                let nn = next_nonce.entry(tx.sender).or_insert(0);
                assert_eq!(tx.nonce, *nn, "nonces in order per sender");
                *nn += 1;
            }
        }
        // 10 senders over 8 threads: threads 0 and 1 get two senders.
        assert_eq!(plan[0].len(), 400);
        assert_eq!(plan[1].len(), 400);
        assert_eq!(plan[7].len(), 200);
        // Interleaved: thread 0 sends sender 0 nonce 0, sender 8 nonce 0, sender 0 nonce 1...
        assert_eq!((w.txs[plan[0][0]].sender, w.txs[plan[0][1]].sender, w.txs[plan[0][2]].sender), (0, 8, 0));
        // More clients than senders: one thread per sender.
        assert_eq!(plan_threads(&w, 64).len(), 10);
        assert_eq!(plan_threads(&w, 0).len(), 1);
        let small = build_workload(3, 10).unwrap();
        let p: Vec<usize> = plan_threads(&small, 8).into_iter().flatten().collect();
        assert_eq!(p.len(), 3);
    }

    fn in_process_node(dir: &Path, block_time: chain::BlockTime) -> (tokio::runtime::Runtime, node::Node) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let cfg = node::NodeConfig {
            data_dir: dir.join("data"),
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: None,
            blobs: None,
            attester: None,
            block_time,
            history: 1000,
            max_txs_per_block: 10_000,
            genesis: node::dev_genesis(),
            base_model: None,
            serving: None,
            verifier: None,
            job_limits: Default::default(),
            ingest_quota: Default::default(),
            dev_rpc: false,
            validator: None,
            blob_peers: Vec::new(),
        };
        let n = rt.block_on(node::start(&cfg)).unwrap();
        (rt, n)
    }

    #[test]
    fn run_against_an_in_process_node() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, n) = in_process_node(dir.path(), chain::BlockTime::Instant);
        let addr = n.rpc_addr.to_string();
        let w = build_workload(60, 4).unwrap();
        let f = run_workload(&addr, &w, 3, Duration::from_millis(2), Duration::from_secs(60)).unwrap();
        assert_eq!(f.txs, 60);
        assert!(f.tps > 0.0 && f.tps.is_finite());
        assert!(f.blocks >= 1 && f.blocks <= 60, "{} blocks", f.blocks);
        assert!(f.p50_ms <= f.p99_ms);
        assert!(f.submit_s <= f.elapsed_s + 0.05);
        // The same workload again: the node is no longer fresh.
        let e = run_workload(&addr, &w, 3, Duration::from_millis(2), Duration::from_secs(60)).unwrap_err();
        assert!(e.to_string().contains("not fresh"), "{e:#}");
        n.stop();
    }

    #[test]
    fn interval_blocks_hold_many_transfers() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, n) = in_process_node(dir.path(), chain::BlockTime::Interval(200));
        let w = build_workload(40, 10).unwrap();
        let f =
            run_workload(&n.rpc_addr.to_string(), &w, 8, Duration::from_millis(5), Duration::from_secs(60)).unwrap();
        assert_eq!(f.txs, 40);
        assert!(f.blocks < 40, "{} blocks", f.blocks);
        n.stop();
    }

    #[test]
    fn a_node_that_exits_early_is_reported_with_its_log() {
        let dir = tmp_dir("bench-test-").unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom: no such flag; exit 3"]);
        let e = match NodeProc::spawn("fake", cmd, dir, "127.0.0.1:1".into()) {
            Ok(_) => panic!("a node that exits cannot be ready"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("fake exited"), "{e}");
        assert!(e.contains("boom: no such flag"), "{e}");
    }
}
