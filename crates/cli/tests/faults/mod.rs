//! The fault harness's parts: link proxies, the proxied testnet, the load
//! client, and the checks every scenario ends with.

pub mod load;
pub mod net;
pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use primitives::B256;
use serde_json::json;

use net::Net;

/// The height each member reports, polled in the background, and when each
/// height was first seen on any member (for block gaps and block times).
pub struct Watcher {
    pub first_seen: Arc<Mutex<BTreeMap<u64, Instant>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watcher {
    pub fn start(net: &Net) -> Watcher {
        let first_seen: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..net.validators)
            .map(|i| {
                let rpc = net.members[i].rpc.to_string();
                let (seen, stop) = (first_seen.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut c = rpc::client::RpcClient::new(&rpc).with_timeout(Duration::from_millis(500));
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(h) = c.block_number() {
                            let now = Instant::now();
                            let mut s = seen.lock().unwrap();
                            let top = s.keys().next_back().copied().unwrap_or(0);
                            for k in top + 1..=h {
                                s.insert(k, now);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(25));
                    }
                })
            })
            .collect();
        Watcher { first_seen, stop, threads }
    }

    /// The longest wait between two consecutive heights first seen in `[from, to]`.
    pub fn max_gap(&self, from: Instant, to: Instant) -> Duration {
        let s = self.first_seen.lock().unwrap();
        let times: Vec<Instant> = s.values().copied().filter(|t| *t >= from && *t <= to).collect();
        let mut gap = times.first().map(|t| *t - from).unwrap_or(to - from);
        for w in times.windows(2) {
            gap = gap.max(w[1] - w[0]);
        }
        gap.max(to - times.last().copied().unwrap_or(from))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The heights of `nodes`, asked now.
pub fn heights(net: &Net, nodes: &[usize]) -> Vec<u64> {
    nodes.iter().map(|i| net.client(*i).block_number().unwrap_or_else(|e| panic!("node{i}: {e}"))).collect()
}

pub fn max_height(net: &Net, nodes: &[usize]) -> u64 {
    heights(net, nodes).into_iter().max().unwrap_or(0)
}

/// Wait until every one of `nodes` holds a height above the highest any of them
/// holds now; the time it took (recovery: first new height on all of them).
pub fn wait_new_height(net: &Net, nodes: &[usize], within: Duration, what: &str) -> Duration {
    let t0 = Instant::now();
    let h0 = max_height(net, nodes);
    net.wait_until(&format!("{what}: a height above {h0} on nodes {nodes:?}"), within, |n| {
        heights(n, nodes).into_iter().all(|h| h > h0)
    });
    t0.elapsed()
}

/// [`wait_new_height`] `n` times: `n` heights decided by `nodes` (each of
/// which holds them); the time the first took.
pub fn wait_heights(net: &Net, nodes: &[usize], n: usize, within: Duration, what: &str) -> Duration {
    let first = wait_new_height(net, nodes, within, what);
    for _ in 1..n {
        wait_new_height(net, nodes, within, what);
    }
    first
}

/// After `settle` (a decision already under way may land), no height above
/// the highest of `nodes` may appear for `window`: the chain stopped.
pub fn assert_stalled(net: &Net, nodes: &[usize], settle: Duration, window: Duration, what: &str) -> u64 {
    std::thread::sleep(settle);
    let h0 = max_height(net, nodes);
    let end = Instant::now() + window;
    while Instant::now() < end {
        let h = max_height(net, nodes);
        assert!(h <= h0, "{what}: the chain went on from {h0} to {h} on nodes {nodes:?} without a quorum");
        std::thread::sleep(Duration::from_millis(100));
    }
    h0
}

/// Blocks seen so far: every height's hash and state root as the first member
/// to show it had them, and which height holds each transaction.
#[derive(Default)]
pub struct Checker {
    blocks: BTreeMap<u64, (String, String, usize)>,
    mined: HashMap<B256, u64>,
    checked: HashMap<usize, u64>,
}

impl Checker {
    /// Compare every height of `nodes` not compared yet with the blocks seen
    /// so far: one hash and one state root per height, no transaction twice.
    pub fn compare(&mut self, net: &Net, nodes: &[usize]) {
        for &i in nodes {
            let mut c = net.client(i);
            let head = c.block_number().unwrap_or_else(|e| panic!("node{i}: {e}"));
            let from = self.checked.get(&i).copied().unwrap_or(0) + 1;
            for h in from..=head {
                let b = c.call("eth_getBlockByNumber", json!([format!("{h:#x}"), false])).unwrap();
                let hash = b["hash"].as_str().unwrap_or_else(|| panic!("node{i} has no block {h}: {b}")).to_string();
                let root = b["stateRoot"].as_str().unwrap().to_string();
                if let Some((h2, r2, by)) = self.blocks.get(&h) {
                    assert_eq!(&hash, h2, "FORK at height {h}: node{i} holds {hash}, node{by} held {h2}");
                    assert_eq!(&root, r2, "state roots differ at height {h}: node{i} {root}, node{by} {r2}");
                    continue;
                }
                for tx in b["transactions"].as_array().unwrap() {
                    let t: B256 = tx.as_str().unwrap().parse().unwrap();
                    if let Some(prev) = self.mined.insert(t, h) {
                        panic!("transaction {t} mined twice: at heights {prev} and {h}");
                    }
                }
                self.blocks.insert(h, (hash, root, i));
            }
            self.checked.insert(i, head);
        }
    }

    /// Let the network catch up: every transaction of `acked` mined exactly
    /// once, every one of `nodes` past the highest block holding one and
    /// agreeing with the others on every height; receipts of a sample on every node.
    pub fn settle(&mut self, net: &Net, nodes: &[usize], acked: &[B256], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.compare(net, nodes);
            let missing: Vec<&B256> = acked.iter().filter(|h| !self.mined.contains_key(*h)).collect();
            let top = acked.iter().filter_map(|h| self.mined.get(h)).max().copied().unwrap_or(0);
            let behind: Vec<usize> = nodes.iter().copied().filter(|i| self.checked[i] < top).collect();
            if missing.is_empty() && behind.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let mut where_ = String::new();
                for h in missing.iter().take(5) {
                    for &i in nodes {
                        let t = net.client(i).call("eth_getTransactionByHash", json!([h])).unwrap_or_default();
                        where_ += &format!("  {h} on node{i}: {}\n", if t.is_null() { "unknown" } else { "pooled" });
                    }
                }
                panic!(
                    "within {within:?}: {} of {} acknowledged transactions not mined, nodes {behind:?} below height {top}\n{where_}",
                    missing.len(),
                    acked.len()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let step = (acked.len() / 8).max(1);
        for h in acked.iter().step_by(step) {
            for &i in nodes {
                let r = net.client(i).call("eth_getTransactionReceipt", json!([h])).unwrap();
                assert!(!r.is_null(), "node{i} has no receipt for acknowledged transaction {h}");
            }
        }
    }

    pub fn mined_count(&self) -> usize {
        self.mined.len()
    }
}

/// Follows one node's chain: when each block was first seen there and how
/// many transactions it held, and when each transaction became visible.
pub struct BlockTail {
    /// (height, first seen, transactions).
    pub blocks: Arc<Mutex<Vec<(u64, Instant, usize)>>>,
    pub included: Arc<Mutex<HashMap<B256, Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlockTail {
    pub fn start(net: &Net, node: usize) -> BlockTail {
        let mut c =
            rpc::client::RpcClient::new(&net.members[node].rpc.to_string()).with_timeout(Duration::from_secs(5));
        let mut next = c.block_number().expect("the tailed node answers") + 1;
        let (blocks, included): (Arc<Mutex<Vec<_>>>, Arc<Mutex<HashMap<_, _>>>) = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (b, inc, s) = (blocks.clone(), included.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok(b2) = c.call("eth_getBlockByNumber", json!([format!("{next:#x}"), false])) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let Some(txs) = b2["transactions"].as_array() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let now = Instant::now();
                let mut inc = inc.lock().unwrap();
                for t in txs {
                    inc.insert(t.as_str().unwrap().parse().unwrap(), now);
                }
                b.lock().unwrap().push((next, now, txs.len()));
                next += 1;
            }
        });
        BlockTail { blocks, included, stop, thread: Some(thread) }
    }
}

impl Drop for BlockTail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `p`-th percentile (0..=100) of `v`, sorted in place.
pub fn percentile(v: &mut [Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) * p) / 100]
}
