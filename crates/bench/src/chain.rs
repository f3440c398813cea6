//! `bench chain`: pre-signed EIP-1559 transactions over JSON-RPC until every
//! one is in a block, against our node and against its peers (Hardhat's node,
//! Foundry's Anvil; see [`peers`]), same client, same signed transactions,
//! alternating runs, each on a fresh node, each node's memory sampled.
//!
//! Two workloads: plain transfers (`--workload transfer`, the native path) and
//! ERC-20 `transfer` calls on an OpenZeppelin token each sender deployed before
//! the clock started (`--workload erc20`, the EVM path; see [`erc20`]).
//!
//! One run:
//! 1. start a fresh node on a free loopback port and wait for `eth_chainId`;
//!    sample its process group's RSS every 250 ms from then on ([`memory`]);
//! 2. check the chain id (31337) and that every sender's nonce is 0; send the
//!    workload's set-up transactions (the ERC-20 deployments) and wait for
//!    their successful receipts;
//! 3. `--clients` threads, each owning whole senders (sender `s` goes to thread
//!    `s % threads`, a thread interleaves its senders nonce by nonce), send the
//!    raw transactions with `eth_sendRawTransaction`, recording when each send
//!    started; a watcher thread polls `eth_blockNumber` every `--poll-ms` and
//!    fetches new blocks (`eth_getBlockByNumber(n, false)`, batched), recording
//!    when each hash is first seen in a block (the time the head number that
//!    includes it came back);
//! 4. when every hash is seen: throughput = txs / (last inclusion − first send),
//!    latency = seen − sent (p50, p99); then every receipt is fetched and must
//!    have status 0x1 (and, for ERC-20, every token's balances must add up), so a
//!    node that drops or fails transactions cannot score;
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

mod erc20;
mod peers;
mod usage;

pub use peers::PeerKind;
use peers::{Peer, prepare_peers};
use usage::{UsageFigures, UsageSampler};

/// Chain id of both dev chains.
pub(crate) const CHAIN_ID: u64 = 31337;
const GWEI: u128 = 1_000_000_000;
/// Every transfer goes here: not a dev account, not a system or precompile address.
pub(crate) const RECIPIENT: Address = address!("0x4242424242424242424242424242424242424242");
/// How long a node may take to answer `eth_chainId` after start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Blocks fetched per JSON-RPC batch by the watcher, receipts per batch when verifying.
const BATCH: usize = 100;
/// A thread stopped because another one failed.
const ABORTED: &str = "aborted";

/// What the transactions do.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// 1 wei to a fixed recipient (gas 21,000): the native transfer path.
    Transfer,
    /// `transfer(recipient, 1)` on an OpenZeppelin ERC-20 each sender deployed
    /// first: the EVM path.
    Erc20,
}

impl WorkloadKind {
    fn label(self) -> &'static str {
        match self {
            WorkloadKind::Transfer => "transfer",
            WorkloadKind::Erc20 => "erc20",
        }
    }
}

/// Which block production to compare.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainMode {
    /// Our `--instant` sealing vs the peers' automine.
    Instant,
    /// Blocks every `--block-time` ms on both.
    Interval,
    /// Instant, then interval.
    Both,
}

/// `openledger bench chain`: JSON-RPC transactions/s, submit-to-inclusion
/// latency and memory, our node vs Hardhat's node and Anvil.
#[derive(clap::Args, Debug, Clone)]
pub struct ChainOpts {
    /// Transactions per run, split round-robin over the senders (a large run,
    /// e.g. 20000, shows how each node's memory grows).
    #[arg(long, default_value_t = 2000)]
    pub txs: usize,
    /// transfer (native value transfers) or erc20 (ERC-20 `transfer` calls in the EVM).
    #[arg(long, value_enum, default_value_t = WorkloadKind::Transfer)]
    pub workload: WorkloadKind,
    /// Sending accounts: the first N dev accounts (1 to 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub senders: u32,
    /// Client threads sending transactions (each owns whole senders; at most one per sender).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Rounds per mode; each round runs ours then each peer, each on a fresh node.
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
    /// Run our node only (no peer, ratios n/a).
    #[arg(long)]
    pub no_peer: bool,
    /// The peers to run beside ours, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "hardhat,anvil")]
    pub peers: Vec<PeerKind>,
    /// Where Hardhat is (or gets) installed. Default: bench/.peers/hardhat of the
    /// source tree (found from the current directory upwards, else from the build).
    #[arg(long)]
    pub peer_dir: Option<PathBuf>,
    /// Where Anvil is (or gets) installed. Default: bench/.peers/anvil of the source tree.
    #[arg(long)]
    pub anvil_dir: Option<PathBuf>,
    /// A node whose processes together pass this many MiB of RSS is killed and
    /// its run fails (the machine is shared).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(64..))]
    pub max_rss_mib: u64,
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
            workload: WorkloadKind::Transfer,
            senders: 10,
            clients: 8,
            rounds: 3,
            mode: ChainMode::Both,
            block_time: 1000,
            openledger_bin: None,
            no_peer: false,
            peers: vec![PeerKind::Hardhat, PeerKind::Anvil],
            peer_dir: None,
            anvil_dir: None,
            max_rss_mib: 8192,
            poll_ms: 5,
            timeout: 300,
            json_out: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Workload

/// One pre-signed transaction.
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

/// What the bench checks after a run, beyond every receipt's success.
#[derive(Clone, Debug)]
pub(crate) enum WorkloadCheck {
    /// Nothing more.
    Receipts,
    /// Each sender's token (by sender index): the recipient holds what that sender sent.
    Erc20 { tokens: Vec<Address> },
}

/// All transactions of a run, signed before any clock starts: the set-up (sent
/// and confirmed before the clock) and the measured ones. Measured transaction
/// `i` is sent by sender `i % senders`, with nonces counting up per sender
/// after its set-up.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub senders: Vec<Address>,
    pub setup: Vec<SignedTransfer>,
    pub txs: Vec<SignedTransfer>,
    pub check: WorkloadCheck,
}

/// The fields that differ between the workloads' transactions; all pay max fee
/// 10 gwei, tip 1 gwei.
pub(crate) struct TxSpec {
    pub nonce: u64,
    pub gas: u64,
    pub to: TxKind,
    pub value: U256,
    pub input: Vec<u8>,
}

/// The keys of the first `senders` dev accounts (of the standard test mnemonic).
pub(crate) fn dev_keys(senders: usize) -> Result<Vec<keys::SecretKey>> {
    if senders == 0 || senders > 10 {
        bail!("--senders must be between 1 and 10 (the funded dev accounts), got {senders}");
    }
    (0..senders)
        .map(|i| keys::derive_account(keys::DEV_MNEMONIC, i as u32))
        .collect::<Result<Vec<_>, _>>()
        .context("deriving the dev accounts")
}

/// Sign one EIP-1559 transaction of dev account `sender`.
pub(crate) fn sign(key: &keys::SecretKey, sender: usize, spec: TxSpec) -> SignedTransfer {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: spec.nonce,
        gas_limit: spec.gas,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: spec.to,
        value: spec.value,
        input: spec.input.into(),
        ..Default::default()
    };
    let raw = keys::encode_2718(&keys::sign_eip1559(key, tx));
    let hash = keccak256(&raw);
    SignedTransfer { sender, nonce: spec.nonce, raw, hash }
}

/// Sign `txs` transfers of 1 wei to [`RECIPIENT`] (gas 21,000, max fee 10 gwei,
/// tip 1 gwei) from the first `senders` dev accounts: transfer `i` is sent by
/// sender `i % senders` with nonce `i / senders`. No set-up.
pub(crate) fn build_workload(txs: usize, senders: usize) -> Result<Workload> {
    let keys = dev_keys(senders)?;
    let txs = (0..txs)
        .map(|i| {
            let s = i % senders;
            let spec = TxSpec {
                nonce: (i / senders) as u64,
                gas: 21_000,
                to: TxKind::Call(RECIPIENT),
                value: U256::from(1u8),
                input: Vec::new(),
            };
            sign(&keys[s], s, spec)
        })
        .collect();
    Ok(Workload {
        senders: keys.iter().map(|k| k.address()).collect(),
        setup: Vec::new(),
        txs,
        check: WorkloadCheck::Receipts,
    })
}

/// The workload `kind` of `txs` transactions from the first `senders` dev accounts.
pub(crate) fn build(kind: WorkloadKind, txs: usize, senders: usize) -> Result<Workload> {
    match kind {
        WorkloadKind::Transfer => build_workload(txs, senders),
        WorkloadKind::Erc20 => erc20::build_erc20_workload(txs, senders),
    }
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
pub(crate) struct NodeProc {
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

    /// Its process id, which is also its process group's.
    fn pid(&self) -> u32 {
        self.child.id()
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
        // The child leads its own process group (process_group(0)): kill the group.
        #[cfg(unix)]
        usage::kill_group(self.child.id());
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
pub(crate) enum Production {
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
    run_setup(&mut c, w, timeout)?;
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
    if let WorkloadCheck::Erc20 { tokens } = &w.check {
        erc20::verify_balances(&mut c, &w.senders, tokens, &w.txs)?;
    }

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

/// Send the set-up transactions (before any clock starts) and wait until each
/// has a successful receipt.
fn run_setup(c: &mut RpcClient, w: &Workload, timeout: Duration) -> Result<()> {
    for t in &w.setup {
        let h = c
            .send_raw(&t.raw)
            .with_context(|| format!("set-up: eth_sendRawTransaction (sender {} nonce {})", t.sender, t.nonce))?;
        if h != t.hash {
            bail!("set-up: the node answered hash {h} for transaction {}", t.hash);
        }
    }
    let deadline = Instant::now() + timeout;
    for t in &w.setup {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = c
            .wait_receipt(&t.hash, left)
            .with_context(|| format!("set-up: receipt of sender {} nonce {} ({:#x})", t.sender, t.nonce, t.hash))?;
        if !r.status() {
            bail!("set-up: transaction of sender {} nonce {} ({:#x}) failed", t.sender, t.nonce, t.hash);
        }
    }
    Ok(())
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
    mem: UsageFigures,
}

/// What every run shares.
struct RunSetting<'a> {
    w: &'a Workload,
    clients: usize,
    poll: Duration,
    timeout: Duration,
    rss_cap_bytes: u64,
    rss_cap_mib: u64,
}

impl RunSetting<'_> {
    /// Start a node, run the workload on it while sampling its memory, kill it.
    /// The memory figures come back whatever happened (a node killed for its
    /// memory is a finding, not only an error).
    fn measure(&self, name: &str, start: impl FnOnce() -> Result<NodeProc>) -> (Result<RunFigures>, UsageFigures) {
        let node = match start() {
            Ok(n) => n,
            Err(e) => return (Err(e), UsageFigures::default()),
        };
        let sampler = UsageSampler::start(node.pid(), self.rss_cap_bytes);
        let r = run_workload(&node.addr, self.w, self.clients, self.poll, self.timeout);
        let mem = sampler.finish();
        let r = r.map_err(|e| e.context(format!("{name}'s log ends with:\n{}", log_tail(&node.log))));
        drop(node);
        let r = match mem.killed_at {
            Some(b) => Err(anyhow!(
                "{name} was killed by the bench when its RSS reached {:.0} MiB (--max-rss-mib {}); before that: {}",
                b as f64 / (1024.0 * 1024.0),
                self.rss_cap_mib,
                r.err().map_or_else(|| "the run had finished".to_string(), |e| format!("{e:#}"))
            )),
            None => r,
        };
        (r, mem)
    }
}

/// Run `bench chain`: print each run, the medians, the ratios ours/peer and the machine.
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

    print_header(opts, &bin, senders, clients, &machine);
    let mut peers = prepare_peers(opts);
    if peers.is_empty() {
        println!("  peers: none{}", if opts.no_peer { " (--no-peer)" } else { "" });
    }
    for p in &peers {
        println!("  peer: {}", p.describe(opts.block_time));
    }
    let peer_info: Vec<Value> = peers.iter().map(Peer::to_json).collect();
    let names: Vec<&'static str> = std::iter::once("openledger").chain(peers.iter().map(Peer::name)).collect();

    let t = Instant::now();
    let w = build(opts.workload, opts.txs, senders)?;
    println!(
        "  signed {} set-up and {} measured transactions in {:.2} s (before any clock starts)\n",
        w.setup.len(),
        w.txs.len(),
        t.elapsed().as_secs_f64()
    );
    let setting = RunSetting {
        w: &w,
        clients,
        poll: Duration::from_millis(opts.poll_ms),
        timeout: Duration::from_secs(opts.timeout),
        rss_cap_bytes: opts.max_rss_mib.saturating_mul(1024 * 1024),
        rss_cap_mib: opts.max_rss_mib,
    };

    let mut runs: Vec<Run> = Vec::new();
    let mut failures: Vec<Value> = Vec::new();
    for &prod in &modes {
        for round in 1..=opts.rounds {
            let (r, mem) = setting.measure("openledger", || start_ours(&bin, prod));
            let f = r.with_context(|| format!("openledger, {} mode, round {round}", prod.label()))?;
            print_run("openledger", prod.label(), round, &f, &mem);
            runs.push(Run { system: "openledger", mode: prod.label(), round, f, mem });

            peers.retain(|p| {
                let (r, mem) = setting.measure(p.name(), || p.start(prod));
                match r {
                    Ok(f) => {
                        print_run(p.name(), prod.label(), round, &f, &mem);
                        runs.push(Run { system: p.name(), mode: prod.label(), round, f, mem });
                        true
                    }
                    Err(e) => {
                        eprintln!(
                            "peer: {} failed ({} mode, round {round}; {}): {e:#}\npeer: no more runs of {}",
                            p.name(),
                            prod.label(),
                            mem.describe(),
                            p.name()
                        );
                        failures.push(json!({
                            "system": p.name(), "mode": prod.label(), "round": round,
                            "error": format!("{e:#}"), "memory": mem.to_json(),
                        }));
                        false
                    }
                }
            });
        }
    }

    let summary = print_summary(opts, &modes, &names, &runs);
    println!("machine: {}", machine.describe());

    if let Some(path) = &opts.json_out {
        let doc = json!({
            "suite": "chain",
            "date": today(),
            "machine": machine.to_json(),
            "config": {
                "workload": opts.workload.label(),
                "txs": opts.txs, "setupTxs": w.setup.len(), "senders": senders, "clients": clients,
                "rounds": opts.rounds, "blockTimeMs": opts.block_time, "pollMs": opts.poll_ms,
                "maxRssMib": opts.max_rss_mib, "openledgerBin": bin.display().to_string(),
            },
            "peers": peer_info,
            "runs": runs.iter().map(|r| json!({
                "system": r.system, "mode": r.mode, "round": r.round, "txs": r.f.txs,
                "elapsedS": r.f.elapsed_s, "submitS": r.f.submit_s, "tps": r.f.tps,
                "p50Ms": r.f.p50_ms, "p99Ms": r.f.p99_ms, "blocks": r.f.blocks,
                "memory": r.mem.to_json(),
            })).collect::<Vec<_>>(),
            "failures": failures,
            "summary": summary,
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

fn print_header(opts: &ChainOpts, bin: &Path, senders: usize, clients: usize, machine: &Machine) {
    match opts.workload {
        WorkloadKind::Transfer => println!(
            "bench chain: {} pre-signed EIP-1559 transfers (1 wei, gas 21000, max fee 10 gwei, tip 1 gwei)",
            opts.txs
        ),
        WorkloadKind::Erc20 => println!(
            "bench chain --workload erc20: {} pre-signed ERC-20 transfer(recipient, 1) calls (gas limit {}, max fee 10 gwei, tip 1 gwei) on OpenZeppelin TestToken, each sender's own (deployed and confirmed before the clock)",
            opts.txs,
            erc20::TRANSFER_GAS
        ),
    }
    println!(
        "  from {senders} dev accounts over JSON-RPC by {clients} client threads; watcher polls every {} ms; {} round(s) per mode, fresh node per run; RSS sampled every {} ms (cap {} MiB)",
        opts.poll_ms,
        opts.rounds,
        usage::INTERVAL.as_millis(),
        opts.max_rss_mib
    );
    println!("  ours: {} up --instant | --block-time {}", bin.display(), opts.block_time);
    println!("  machine: {}", machine.describe());
}

/// Medians of one system in one mode.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Medians {
    runs: usize,
    tps: f64,
    p50_ms: f64,
    p99_ms: f64,
    per_block: f64,
    peak_rss_mib: Option<f64>,
    end_rss_mib: Option<f64>,
    /// The node's CPU time over the run (set-up and checks included) per measured transaction.
    cpu_ms_per_tx: Option<f64>,
}

/// The medians over the runs given; `None` for no runs.
fn medians(rs: &[(&RunFigures, &UsageFigures)]) -> Option<Medians> {
    if rs.is_empty() {
        return None;
    }
    let med = |g: &dyn Fn(&RunFigures) -> f64| median(&rs.iter().map(|(f, _)| g(f)).collect::<Vec<_>>());
    let med_usage = |g: &dyn Fn(&RunFigures, &UsageFigures) -> Option<f64>| {
        let xs: Vec<f64> = rs.iter().filter_map(|(f, m)| g(f, m)).collect();
        (!xs.is_empty()).then(|| median(&xs))
    };
    Some(Medians {
        runs: rs.len(),
        tps: med(&|f| f.tps),
        p50_ms: med(&|f| f.p50_ms),
        p99_ms: med(&|f| f.p99_ms),
        per_block: med(&|f| f.txs as f64 / f.blocks.max(1) as f64),
        peak_rss_mib: med_usage(&|_, m| m.peak_mib()),
        end_rss_mib: med_usage(&|_, m| m.end_mib()),
        cpu_ms_per_tx: med_usage(&|f, m| m.cpu_s().map(|c| c * 1e3 / f.txs.max(1) as f64)),
    })
}

fn fmt_mib(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
}

/// Print the medians per mode and system and the ratios ours/peer; return them as JSON.
fn print_summary(opts: &ChainOpts, modes: &[Production], names: &[&'static str], runs: &[Run]) -> Vec<Value> {
    println!("\nmedians over {} round(s), {} {} transactions per run:", opts.rounds, opts.txs, opts.workload.label());
    println!(
        "{:<9} {:<11} {:>5} {:>9} {:>9} {:>9} {:>9} {:>13} {:>12} {:>11}",
        "mode", "system", "runs", "tx/s", "p50 ms", "p99 ms", "tx/block", "peak RSS MiB", "end RSS MiB", "CPU ms/tx"
    );
    let mut summary = Vec::new();
    for &prod in modes {
        let mode = prod.label();
        let mut meds: Vec<(&str, Medians)> = Vec::new();
        for &system in names {
            let rs: Vec<(&RunFigures, &UsageFigures)> =
                runs.iter().filter(|r| r.mode == mode && r.system == system).map(|r| (&r.f, &r.mem)).collect();
            let Some(m) = medians(&rs) else { continue };
            println!(
                "{mode:<9} {system:<11} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>13} {:>12} {:>11}",
                m.runs,
                m.tps,
                m.p50_ms,
                m.p99_ms,
                m.per_block,
                fmt_mib(m.peak_rss_mib),
                fmt_mib(m.end_rss_mib),
                m.cpu_ms_per_tx.map_or_else(|| "n/a".into(), |c| format!("{c:.3}"))
            );
            meds.push((system, m));
        }
        let ours = meds.iter().find(|(s, _)| *s == "openledger").map(|(_, m)| *m);
        let mut ratios = serde_json::Map::new();
        for &(peer, theirs) in meds.iter().filter(|(s, _)| *s != "openledger") {
            let r = |g: fn(&Medians) -> Option<f64>| ratio(ours.as_ref().and_then(g), g(&theirs));
            let (r_tps, r_p50, r_p99) = (r(|m| Some(m.tps)), r(|m| Some(m.p50_ms)), r(|m| Some(m.p99_ms)));
            let (r_rss, r_cpu) = (r(|m| m.peak_rss_mib), r(|m| m.cpu_ms_per_tx));
            println!(
                "{mode:<9} ratio ours/{peer}: tx/s {}, p50 latency {}, p99 latency {}, peak RSS {}, CPU per tx {}",
                fmt_ratio(r_tps),
                fmt_ratio(r_p50),
                fmt_ratio(r_p99),
                fmt_ratio(r_rss),
                fmt_ratio(r_cpu)
            );
            let v = json!({"tps": r_tps, "p50": r_p50, "p99": r_p99, "peakRss": r_rss, "cpuPerTx": r_cpu});
            ratios.insert(peer.into(), v);
        }
        let systems: serde_json::Map<String, Value> = meds
            .iter()
            .map(|(s, m)| {
                let v = json!({
                    "runs": m.runs, "tps": m.tps, "p50Ms": m.p50_ms, "p99Ms": m.p99_ms, "txPerBlock": m.per_block,
                    "peakRssMib": m.peak_rss_mib, "endRssMib": m.end_rss_mib, "cpuMsPerTx": m.cpu_ms_per_tx,
                });
                (s.to_string(), v)
            })
            .collect();
        summary.push(json!({"mode": mode, "systems": systems, "ratios": ratios}));
    }
    summary
}

fn print_run(system: &str, mode: &str, round: u32, f: &RunFigures, mem: &UsageFigures) {
    println!(
        "{mode:<9} round {round:<2} {system:<11} {:>8.1} tx/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {:>5} blocks  (all sent in {:.2} s, all in blocks in {:.2} s)  {}",
        f.tps,
        f.p50_ms,
        f.p99_ms,
        f.blocks,
        f.submit_s,
        f.elapsed_s,
        mem.describe()
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
        let cfg = node::NodeConfig { http_addr: None, block_time, ..node::NodeConfig::dev(dir.join("data")) };
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
    fn erc20_transfers_against_an_in_process_node() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, n) = in_process_node(dir.path(), chain::BlockTime::Instant);
        let addr = n.rpc_addr.to_string();
        let w = build(WorkloadKind::Erc20, 45, 4).unwrap();
        let f = run_workload(&addr, &w, 3, Duration::from_millis(2), Duration::from_secs(60)).unwrap();
        assert_eq!(f.txs, 45);
        // The balances were checked by the run; check one by hand too.
        let WorkloadCheck::Erc20 { tokens } = &w.check else { panic!("not an ERC-20 workload") };
        let mut c = RpcClient::new(&addr);
        assert!(erc20::verify_balances(&mut c, &w.senders, tokens, &w.txs).is_ok());
        // Claiming one transfer more than was sent must fail the check.
        let mut more = w.txs.clone();
        more.push(w.txs[0].clone());
        let e = erc20::verify_balances(&mut c, &w.senders, tokens, &more).unwrap_err();
        assert!(e.to_string().contains("recipient holds 12"), "{e:#}");
        n.stop();
    }

    #[test]
    fn medians_per_system_with_and_without_memory() {
        let f = |tps: f64, p99: f64, blocks: u64| RunFigures {
            txs: 100,
            elapsed_s: 1.0,
            submit_s: 0.5,
            tps,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            blocks,
        };
        let s = |t_s, mib: u64, cpu_ticks| usage::Sample { t_s, rss: mib << 20, cpu_ticks };
        let mem = |mib: u64| UsageFigures { samples: vec![s(0.0, mib, 0), s(0.25, mib + 10, mib)], killed_at: None };
        let (f1, f2, f3) = (f(100.0, 10.0, 100), f(300.0, 30.0, 50), f(200.0, 20.0, 25));
        let (m1, m2, m3) = (mem(50), mem(70), UsageFigures::default());
        let m = medians(&[(&f1, &m1), (&f2, &m2), (&f3, &m3)]).unwrap();
        assert_eq!((m.runs, m.tps, m.p50_ms, m.p99_ms, m.per_block), (3, 200.0, 10.0, 20.0, 2.0));
        // The run without samples does not count for the RSS and CPU medians:
        // peaks 60 and 80, CPU 0.5 s and 0.7 s over 100 transactions.
        assert_eq!((m.peak_rss_mib, m.end_rss_mib), (Some(70.0), Some(70.0)));
        assert!((m.cpu_ms_per_tx.unwrap() - 6.0).abs() < 1e-9, "{m:?}");
        assert!(medians(&[]).is_none());
        let none = medians(&[(&f1, &m3)]).unwrap();
        assert_eq!((none.peak_rss_mib, none.end_rss_mib, none.cpu_ms_per_tx), (None, None, None));
    }

    #[test]
    fn peers_and_workload_from_the_command_line() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: ChainOpts,
        }
        let d = Cli::try_parse_from(["x"]).unwrap().o;
        assert_eq!(d.peers, ChainOpts::default().peers);
        assert_eq!(d.peers, vec![PeerKind::Hardhat, PeerKind::Anvil]);
        assert_eq!((d.workload, d.max_rss_mib), (WorkloadKind::Transfer, 8192));
        let o = Cli::try_parse_from(["x", "--peers", "anvil", "--workload", "erc20"]).unwrap().o;
        assert_eq!((o.peers, o.workload), (vec![PeerKind::Anvil], WorkloadKind::Erc20));
        let o = Cli::try_parse_from(["x", "--peers", "anvil,hardhat"]).unwrap().o;
        assert_eq!(o.peers, vec![PeerKind::Anvil, PeerKind::Hardhat]);
        assert!(Cli::try_parse_from(["x", "--peers", "geth"]).is_err());
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
