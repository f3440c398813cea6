//! The load client: transfers from a few dev accounts, each sent to a node a
//! seeded RNG picks among those the harness says the client can reach; every
//! acknowledged hash is recorded with the time it was sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keys::SecretKey;
use primitives::{B256, keccak256};
use rpc::client::{ClientError, RpcClient};

use crate::common::{dev, signed};

/// xorshift64*: tiny, seeded, reproducible.
#[derive(Clone)]
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `HARNESS_SEED` or a constant, printed so that a run can be replayed.
pub fn seed() -> u64 {
    let s = std::env::var("HARNESS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0f_a017_2026);
    eprintln!("fault harness seed {s} (set HARNESS_SEED={s} to replay)");
    s
}

/// What the load threads share with the harness.
#[derive(Default)]
pub struct LoadState {
    /// Acknowledged transactions and when they were sent.
    pub acked: Mutex<Vec<(B256, Instant)>>,
    /// Indices of the nodes the client may send to.
    pub targets: Mutex<Vec<usize>>,
    pub refused: std::sync::atomic::AtomicU64,
    stop: AtomicBool,
}

impl LoadState {
    pub fn acked_hashes(&self) -> Vec<B256> {
        self.acked.lock().unwrap().iter().map(|(h, _)| *h).collect()
    }
    pub fn set_targets(&self, t: &[usize]) {
        *self.targets.lock().unwrap() = t.to_vec();
    }
}

/// How hard a load thread pushes.
#[derive(Clone)]
pub struct LoadSpec {
    /// Dev account indices this thread sends from.
    pub accounts: Vec<u32>,
    /// Pause between two sends.
    pub pace: Duration,
    /// The most transactions of one account sent but not yet mined (by the sending node's view).
    pub max_ahead: u64,
    /// Each account keeps to one node (picked by the RNG, picked again when
    /// it fails): a heavy pipelined load then never races its own nonces
    /// across nodes. Otherwise every transaction picks its node.
    pub sticky: bool,
}

pub struct Load {
    pub state: Arc<LoadState>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Start one thread per spec, sending to the nodes at `rpcs` (indices as in `targets`).
    pub fn start(rpcs: Vec<String>, targets: &[usize], specs: Vec<LoadSpec>, rng: &mut Rng) -> Load {
        let state = Arc::new(LoadState::default());
        state.set_targets(targets);
        let threads = specs
            .into_iter()
            .map(|spec| {
                let (state, rpcs, rng) = (state.clone(), rpcs.clone(), Rng(rng.next() | 1));
                std::thread::spawn(move || Sender::new(rpcs, spec, rng).run(&state))
            })
            .collect();
        Load { state, threads }
    }

    pub fn stop(mut self) -> Arc<LoadState> {
        self.state.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            t.join().expect("load thread panicked");
        }
        self.state.clone()
    }
}

impl Drop for Load {
    /// A test that fails midway leaves no thread sending.
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

struct Account {
    key: SecretKey,
    next: u64,
    /// The account's mined nonce as last seen, and when that was asked.
    mined: u64,
    seen: Instant,
    /// Skip the account until then (refused for a full pool).
    backoff_until: Instant,
    /// Its node, when sticky.
    node: Option<usize>,
}

struct Sender {
    clients: Vec<RpcClient>,
    down_until: HashMap<usize, Instant>,
    accounts: Vec<Account>,
    spec: LoadSpec,
    rng: Rng,
}

impl Sender {
    fn new(rpcs: Vec<String>, spec: LoadSpec, rng: Rng) -> Sender {
        let clients = rpcs.iter().map(|r| RpcClient::new(r).with_timeout(Duration::from_secs(2))).collect();
        let now = Instant::now();
        let accounts = spec
            .accounts
            .iter()
            .map(|i| Account { key: dev(*i), next: u64::MAX, mined: 0, seen: now, backoff_until: now, node: None })
            .collect();
        Sender { clients, down_until: HashMap::new(), accounts, spec, rng }
    }

    fn pick(&mut self, state: &LoadState) -> Option<usize> {
        let now = Instant::now();
        let t: Vec<usize> = state
            .targets
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|i| self.down_until.get(i).is_none_or(|u| *u < now))
            .collect();
        if t.is_empty() { None } else { Some(t[self.rng.below(t.len())]) }
    }

    fn run(mut self, state: &LoadState) {
        let mut k = 0usize;
        while !state.stop.load(Ordering::SeqCst) {
            k = (k + 1) % self.accounts.len();
            let node = match self.accounts[k].node {
                Some(n) if self.spec.sticky && state.targets.lock().unwrap().contains(&n) => Some(n),
                _ => self.pick(state),
            };
            self.accounts[k].node = node;
            let Some(node) = node else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            self.send_one(state, k, node);
            if !self.spec.pace.is_zero() {
                std::thread::sleep(self.spec.pace);
            }
        }
    }

    fn send_one(&mut self, state: &LoadState, k: usize, node: usize) {
        let now = Instant::now();
        let c = &mut self.clients[node];
        let a = &mut self.accounts[k];
        if a.backoff_until > now {
            return;
        }
        // Learn the nonce first; then now and then how far the chain has mined it.
        if a.next == u64::MAX || (a.next >= a.mined + self.spec.max_ahead && now - a.seen > Duration::from_millis(200))
        {
            match c.nonce(&a.key.address(), false) {
                Ok(n) => {
                    a.mined = n;
                    a.seen = now;
                    if a.next == u64::MAX {
                        a.next = n;
                    }
                }
                Err(_) => {
                    self.down_until.insert(node, now + Duration::from_secs(1));
                    a.node = None;
                    return;
                }
            }
        }
        if a.next >= a.mined + self.spec.max_ahead {
            return;
        }
        let raw = signed(&a.key, a.next, dev(9).address(), 1, vec![], 21_000);
        let sent = Instant::now();
        match c.send_raw(&raw) {
            Ok(h) => {
                state.acked.lock().unwrap().push((h, sent));
                a.next += 1;
            }
            Err(e) if e.is_transport() || matches!(e, ClientError::Timeout(_)) => {
                // Down or paused: the same bytes go to another node next time.
                self.down_until.insert(node, Instant::now() + Duration::from_secs(2));
                a.node = None;
            }
            Err(e) => {
                state.refused.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                if msg.contains("already known") {
                    // This node holds these very bytes (an earlier send that timed out reached it).
                    state.acked.lock().unwrap().push((keccak256(&raw), sent));
                    a.next += 1;
                } else if msg.contains("nonce too low") {
                    if let Ok(n) = c.nonce(&a.key.address(), false) {
                        a.next = a.next.max(n);
                        a.mined = n;
                    }
                } else {
                    a.backoff_until = Instant::now() + Duration::from_millis(300);
                }
            }
        }
    }
}
