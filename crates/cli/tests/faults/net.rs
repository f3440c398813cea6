//! A testnet of validator processes on loopback whose consensus and gossip
//! links all run through [`Proxy`]s: written by `openledger testnet`, then each
//! home's `openledger.toml` rewritten to free ports and proxied peers.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use primitives::Address;
use rpc::client::RpcClient;

use super::proxy::Proxy;
use crate::common::{NodeProc, bin, cli_ok};

/// The two protocols a validator dials its peers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Consensus,
    Gossip,
}

/// One validator process's home and ports, and the process when it runs.
pub struct Member {
    pub home: PathBuf,
    pub rpc: SocketAddr,
    pub operator: Address,
    ports: [SocketAddr; 4],
    env: Vec<(String, String)>,
    log: PathBuf,
    proc: Option<NodeProc>,
    paused: bool,
}

/// The network: members `0..validators` are the honest validators; a twin
/// (scenario 6) is one more member, dialing the honest ones but dialed by none.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    pub validators: usize,
    links: BTreeMap<(usize, usize, Proto), Proxy>,
}

/// `n` distinct loopback ports, free now and below the kernel's ephemeral
/// range: a node's ports are free while it is down, and one in the ephemeral
/// range can be taken meanwhile as the source port of any outgoing connection
/// (the load client opens thousands), which made a restarted node fail to bind.
fn free_ports(n: usize) -> Vec<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let low = ephemeral_low.saturating_sub(12_000).max(1024);
    let mut port = low + (std::process::id() % 8_000) as u16;
    let mut held = Vec::new();
    let mut tried = 0;
    while held.len() < n && tried < 12_000 {
        if port >= ephemeral_low {
            port = low;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
        port += 1;
        tried += 1;
    }
    assert_eq!(held.len(), n, "{n} free ports below {ephemeral_low}");
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Net {
    /// Write a testnet of `validators` homes; with `twin`, one more home, a copy
    /// of the last validator's keys, that will run with `OPENLEDGER_BYZANTINE=twin`.
    pub fn new(validators: usize, twin: bool) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let n = validators.to_string();
        // Chain id 31337: what `common::signed` signs for.
        let args = ["testnet", "--validators", &n, "--dir", &d, "--base-port", "40000", "--chain-id", "31337"];
        cli_ok(&[&args[..], &["--insecure-fast-kdf"]].concat());
        let mut homes: Vec<PathBuf> = (0..validators).map(|i| dir.path().join(format!("node{i}"))).collect();
        if twin {
            let twin_home = dir.path().join("twin");
            std::fs::create_dir_all(&twin_home).unwrap();
            for f in ["openledger.toml", "genesis.json", "node-keys", "operator.json", "node-password"] {
                copy_path(&homes[validators - 1].join(f), &twin_home.join(f));
            }
            homes.push(twin_home);
        }
        let ports = free_ports(4 * homes.len());
        let mut members: Vec<Member> = homes
            .into_iter()
            .enumerate()
            .map(|(i, home)| {
                let p: Vec<SocketAddr> = ports[4 * i..4 * i + 4].iter().map(|p| loopback(*p)).collect();
                let cfg = node::ConfigFile::load(&home.join("openledger.toml")).unwrap();
                let operator = cfg.validator.as_ref().expect("a [validator] section").operator.parse().unwrap();
                Member {
                    log: home.join("node.log"),
                    home,
                    rpc: p[0],
                    operator,
                    ports: [p[0], p[1], p[2], p[3]],
                    env: Vec::new(),
                    proc: None,
                    paused: false,
                }
            })
            .collect();
        if twin {
            members[validators].env.push(("OPENLEDGER_BYZANTINE".into(), "twin".into()));
        }
        let mut links = BTreeMap::new();
        for i in 0..members.len() {
            for (j, peer) in members[..validators].iter().enumerate() {
                // The twin shares the last validator's identity: it does not dial it.
                if i == j || (twin && i == validators && j == validators - 1) {
                    continue;
                }
                links.insert((i, j, Proto::Consensus), Proxy::start(peer.ports[2]).unwrap());
                links.insert((i, j, Proto::Gossip), Proxy::start(peer.ports[3]).unwrap());
            }
        }
        let net = Net { dir, members, validators, links };
        for i in 0..net.members.len() {
            net.write_config(i);
        }
        net
    }

    /// Rewrite member `i`'s `openledger.toml`: its own free ports, its peers through the proxies.
    fn write_config(&self, i: usize) {
        let m = &self.members[i];
        let path = m.home.join("openledger.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v = node::ConfigFile::load(&path).unwrap().validator.unwrap();
        let head = text.split("\n[validator]").next().unwrap();
        let head: Vec<String> = head
            .lines()
            .map(|l| {
                if l.starts_with("rpc_addr =") {
                    format!("rpc_addr = \"{}\"", m.ports[0])
                } else if l.starts_with("http_addr =") {
                    format!("http_addr = \"{}\"", m.ports[1])
                } else {
                    l.to_string()
                }
            })
            .collect();
        let peers = |proto: Proto| -> Vec<String> {
            self.links
                .iter()
                .filter(|((a, _, p), _)| *a == i && *p == proto)
                .map(|(_, px)| px.listen.to_string())
                .collect()
        };
        v.p2p_addr = m.ports[2].to_string();
        v.gossip_addr = m.ports[3].to_string();
        v.p2p_peers = peers(Proto::Consensus);
        v.gossip_peers = peers(Proto::Gossip);
        std::fs::write(&path, head.join("\n") + "\n" + &v.to_toml()).unwrap();
    }

    /// Start member `i` (`openledger start`, RUST_LOG=warn or `$HARNESS_RUST_LOG`,
    /// stderr appended to its log) and wait for its RPC.
    pub fn start(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.proc.is_none(), "member {i} already runs");
        let _ = std::fs::remove_file(m.home.join(node::ENDPOINTS_FILE));
        let log = OpenOptions::new().create(true).append(true).open(&m.log).unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["start", "--data-dir"]).arg(&m.home);
        let filter = std::env::var("HARNESS_RUST_LOG").unwrap_or_else(|_| "warn".into());
        cmd.env("RUST_LOG", filter).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        for (k, v) in &m.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn openledger start");
        m.proc = Some(NodeProc::attach(child, &m.home));
        m.paused = false;
    }

    pub fn kill9(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.paused {
            signal(m.proc.as_ref().unwrap(), "CONT");
        }
        m.proc.take().expect("member runs").kill9();
    }

    /// SIGSTOP (`pause`) or SIGCONT.
    pub fn pause(&mut self, i: usize, pause: bool) {
        let m = &mut self.members[i];
        signal(m.proc.as_ref().expect("member runs"), if pause { "STOP" } else { "CONT" });
        m.paused = pause;
    }

    pub fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.members[i].rpc.to_string()).with_timeout(Duration::from_secs(3))
    }

    /// Cut (or heal) every link between a member of `a` and a member of `b`, both directions, both protocols.
    pub fn set_cut(&self, a: &[usize], b: &[usize], cut: bool) {
        for ((x, y, _), p) in &self.links {
            if (a.contains(x) && b.contains(y)) || (a.contains(y) && b.contains(x)) {
                if cut { p.link.cut() } else { p.link.heal() }
            }
        }
    }

    pub fn set_delay_all(&self, d: Duration) {
        self.links.values().for_each(|p| p.link.set_delay(d));
    }

    /// Bytes forwarded so far on every cut link, by link.
    pub fn cut_link_bytes(&self) -> BTreeMap<(usize, usize, Proto), u64> {
        self.links.iter().filter(|(_, p)| p.link.is_cut()).map(|(k, p)| (*k, p.link.bytes())).collect()
    }

    /// Bytes forwarded on every link, in all.
    pub fn total_bytes(&self) -> u64 {
        self.links.values().map(|p| p.link.bytes()).sum()
    }

    /// The last lines of every member's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut s = String::new();
        for (i, m) in self.members.iter().enumerate() {
            let all: Vec<String> = std::fs::File::open(&m.log)
                .map(|f| BufReader::new(f).lines().map_while(Result::ok).collect())
                .unwrap_or_default();
            s += &format!("---- member {i} log ({}), last {lines} of {} lines ----\n", m.log.display(), all.len());
            for l in &all[all.len().saturating_sub(lines)..] {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    /// Count log lines of member `i` that contain `needle`.
    pub fn log_count(&self, i: usize, needle: &str) -> usize {
        std::fs::read_to_string(&self.members[i].log)
            .map(|t| t.lines().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }

    pub fn wait_until(&self, what: &str, within: Duration, mut ok: impl FnMut(&Net) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self) {
            assert!(Instant::now() < deadline, "{what}: not within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].paused {
                self.pause(i, false);
            }
        }
        let failed = std::thread::panicking();
        if failed {
            eprintln!("{}", self.log_tails(40));
        }
        // A failure keeps the homes and whole logs for a post-mortem.
        if failed || std::env::var_os("HARNESS_KEEP").is_some() {
            eprintln!("keeping {}", self.dir.path().display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
        }
    }
}

fn signal(p: &NodeProc, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(p.child.id().to_string()).status().unwrap();
    assert!(ok.success(), "kill -{sig} failed");
}

fn copy_path(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_path(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}
