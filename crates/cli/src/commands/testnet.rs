//! `openledger testnet`: the homes of a network of validators on this
//! machine, and optionally the validators running.
//!
//! Each home `<dir>/nodeK` holds `openledger.toml` (a `[validator]` section
//! naming its loopback ports and its peers'), the shared `genesis.json` (every
//! validator bonded, the ten dev accounts funded so that the README's commands
//! work against any node), `node-keys` (a fresh ed25519 consensus key, a
//! secp256k1 serving key and an ingest attester key), the validator operator's account key
//! (`operator.json`, an Ethereum keystore), a serving operator's account key
//! (`serving.json`) and the password all are encrypted with (`node-password`,
//! mode 0600).
//!
//! Every validator also serves inference (`[serving]`: its serving operator is
//! bonded at genesis) and judges attribution challenges (`[verifier]`: verdicts
//! signed with its consensus key, sent by its operator account); the blobs a
//! verdict needs (a model's adapter, a Datanet's rows) come from the other
//! nodes' HTTP APIs (`blob_peers`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use keys::{KdfParams, NodeKeyKind, NodeKeys, SecretKey};
use node::{ConfigFile, GenesisFile, ValidatorFile};
use primitives::Amount;
use serde_json::json;

use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct TestnetArgs {
    /// How many validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Where the homes go (one `nodeK` directory per validator); must not hold a testnet yet.
    #[arg(long)]
    pub dir: PathBuf,
    /// The first of the loopback ports: node K uses base + 10·K + 0..3
    /// (JSON-RPC, HTTP API, consensus, gossip).
    #[arg(long, default_value_t = 26600)]
    pub base_port: u16,
    /// Chain id of the testnet.
    #[arg(long, default_value_t = 7357)]
    pub chain_id: u64,
    /// Milliseconds a height takes at least (the block time).
    #[arg(long, default_value_t = 500)]
    pub block_time: u64,
    /// Then start every validator as a process and wait (Ctrl-C stops them all).
    #[arg(long)]
    pub start: bool,
    /// Then start every validator (with --join: the new node) as a process,
    /// return once they answer, and leave them running.
    #[arg(long, conflicts_with = "start")]
    pub detach: bool,
    /// Stop the nodes `--detach` started in --dir.
    #[arg(long, conflicts_with_all = ["start", "detach", "join"])]
    pub stop: bool,
    /// Key derivation for the node keys: fast, for throwaway test networks.
    #[arg(long)]
    pub insecure_fast_kdf: bool,
    /// Add one node to the testnet already in --dir: a new home whose peers
    /// are every node there, with its own keys, not bonded (it follows the
    /// chain; bond it with `openledger stake` to make it vote).
    #[arg(long)]
    pub join: bool,
    /// With --join: start the new node from the state of node N at its head
    /// (its HTTP API's /v1/snapshot), checked against that block's commit
    /// certificate, instead of re-executing from genesis.
    #[arg(long, requires = "join")]
    pub snapshot_from: Option<usize>,
}

/// Self bond of each testnet validator, in OPEN.
pub const VALIDATOR_BOND_OPEN: u64 = 1_000;

/// The ports of node `i`: (JSON-RPC, HTTP, consensus, gossip).
pub fn ports(base: u16, i: usize) -> anyhow::Result<[u16; 4]> {
    let first = usize::from(base) + 10 * i;
    if first + 3 > usize::from(u16::MAX) {
        bail!("--base-port {base} leaves no room for node {i}'s ports");
    }
    let p = first as u16;
    Ok([p, p + 1, p + 2, p + 3])
}

struct Home {
    dir: PathBuf,
    operator: SecretKey,
    consensus_key: primitives::B256,
    /// The serving operator's account, and the serving key in node-keys.
    serving: SecretKey,
    serving_key: primitives::Address,
}

pub fn testnet(a: TestnetArgs, out: Out) -> anyhow::Result<()> {
    if a.stop {
        return stop_all(&a.dir, out);
    }
    if a.join {
        return join(a, out);
    }
    if !(1..=64).contains(&a.validators) {
        bail!("--validators must be between 1 and 64");
    }
    if a.dir.join("node0").exists() {
        bail!("{} already holds a testnet; pick another --dir or delete it", a.dir.display());
    }
    let kdf = if a.insecure_fast_kdf { KdfParams::insecure_for_tests() } else { KdfParams::light() };
    let mut homes = Vec::new();
    for i in 0..a.validators {
        homes.push(make_home(&a.dir.join(format!("node{i}")), &kdf)?);
    }
    let genesis = genesis(&a, &homes);
    let genesis_text = serde_json::to_string_pretty(&GenesisFile::from_genesis(&genesis))?;
    for (i, h) in homes.iter().enumerate() {
        std::fs::write(h.dir.join("genesis.json"), &genesis_text)?;
        let text = config_text(&a, i, &h.operator)?;
        std::fs::write(h.dir.join("openledger.toml"), text)?;
    }
    let rpcs: Vec<String> = (0..a.validators)
        .map(|i| ports(a.base_port, i).map(|p| format!("http://127.0.0.1:{}", p[0])))
        .collect::<anyhow::Result<_>>()?;
    out.print(
        || {
            let mut s = format!("wrote {} validator homes in {} (chain id {})\n", a.validators, a.dir.display(), a.chain_id);
            for (i, r) in rpcs.iter().enumerate() {
                s += &format!("  node{i}: JSON-RPC {r}, start with: openledger start --data-dir {}\n", a.dir.join(format!("node{i}")).display());
            }
            s
        },
        json!({"dir": a.dir, "chainId": a.chain_id, "rpc": rpcs, "operators": homes.iter().map(|h| h.operator.address()).collect::<Vec<_>>(), "serving": homes.iter().map(|h| h.serving.address()).collect::<Vec<_>>()}),
    );
    if a.start || a.detach { run_all(&a.dir, a.validators, a.detach) } else { Ok(()) }
}

fn make_home(dir: &Path, kdf: &KdfParams) -> anyhow::Result<Home> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let password = hex::encode(rand_bytes());
    write_private(&dir.join("node-password"), &password)?;
    let id = NodeKeys::open(dir.join("node-keys"))?.create(NodeKeyKind::Consensus, &password, kdf)?;
    let consensus_key = id.public_key().context("a consensus key has a public key")?;
    let sid = NodeKeys::open(dir.join("node-keys"))?.create(NodeKeyKind::Serving, &password, kdf)?;
    let serving_key = sid.address().context("a serving key has an address")?;
    // Attests the uploads this node ingests (a Datanet names the attester it trusts).
    NodeKeys::open(dir.join("node-keys"))?.create(NodeKeyKind::Attester, &password, kdf)?;
    let operator = SecretKey::random();
    write_private(&dir.join("operator.json"), &keys::encrypt_keystore(&operator, &password, kdf))?;
    let serving = SecretKey::random();
    write_private(&dir.join("serving.json"), &keys::encrypt_keystore(&serving, &password, kdf))?;
    Ok(Home { dir: dir.to_path_buf(), operator, consensus_key, serving, serving_key })
}

fn rand_bytes() -> [u8; 16] {
    let k = SecretKey::random();
    let mut b = [0u8; 16];
    b.copy_from_slice(&k.address().as_slice()[..16]);
    b
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The dev genesis with the testnet's validators and serving operators bonded
/// in place of the dev ones (whose keys are public).
fn genesis(a: &TestnetArgs, homes: &[Home]) -> runtime::Genesis {
    let mut g = node::dev_genesis();
    g.chain_id = a.chain_id;
    g.operators.clear();
    for h in homes {
        g.alloc.push((h.serving.address(), Amount::open(2 * node::DEV_SERVING_BOND_OPEN)));
        g.operators.push(runtime::staking::genesis::GenesisOperator {
            operator: h.serving.address(),
            role: runtime::staking::ROLE_SERVING,
            consensus_key: primitives::B256::ZERO,
            serving_key: h.serving_key,
            commission_bps: 500,
            bond: Amount::open(node::DEV_SERVING_BOND_OPEN),
        });
        g.alloc.push((h.operator.address(), Amount::open(2 * VALIDATOR_BOND_OPEN)));
        g.operators.push(runtime::staking::genesis::GenesisOperator {
            operator: h.operator.address(),
            role: runtime::staking::ROLE_VALIDATOR,
            consensus_key: h.consensus_key,
            serving_key: h.operator.address(),
            commission_bps: 500,
            bond: Amount::open(VALIDATOR_BOND_OPEN),
        });
    }
    g
}

fn config_text(a: &TestnetArgs, i: usize, operator: &SecretKey) -> anyhow::Result<String> {
    let [rpc, http, p2p, gossip] = ports(a.base_port, i)?;
    let others: Vec<[u16; 4]> =
        (0..a.validators).filter(|j| *j != i).map(|j| ports(a.base_port, j)).collect::<anyhow::Result<_>>()?;
    let serving = node::ServingFile {
        operator_keystore: "serving.json".into(),
        adapter_cache_mb: 256,
        adapter_dtype: node::AdapterDtypeSetting::Auto,
        max_batch: 32,
        prefill_budget: node::DEFAULT_PREFILL_BUDGET,
        settle_every_ms: 2000,
        attribution_workers: 1,
        attribution_queue: 64,
        attribution_wait_ms: 50,
    };
    let verifier = node::VerifierFile { relayer_keystore: "operator.json".into() };
    Ok(config_with_peers(a, operator, &others, rpc, http, p2p, gossip)? + &serving.to_toml() + &verifier.to_toml())
}

fn config_with_peers(
    a: &TestnetArgs,
    operator: &SecretKey,
    others: &[[u16; 4]],
    rpc: u16,
    http: u16,
    p2p: u16,
    gossip: u16,
) -> anyhow::Result<String> {
    let mut c = ConfigFile::new("genesis.json");
    c.rpc_addr = format!("127.0.0.1:{rpc}");
    c.http_addr = format!("127.0.0.1:{http}");
    c.block_time_ms = a.block_time;
    c.blob_peers = others.iter().map(|p| format!("127.0.0.1:{}", p[1])).collect();
    let v = ValidatorFile {
        operator: operator.address().to_string(),
        p2p_addr: format!("127.0.0.1:{p2p}"),
        p2p_peers: others.iter().map(|p| format!("127.0.0.1:{}", p[2])).collect(),
        gossip_addr: format!("127.0.0.1:{gossip}"),
        gossip_peers: others.iter().map(|p| format!("127.0.0.1:{}", p[3])).collect(),
        password_file: "node-password".into(),
        operator_keystore: "operator.json".into(),
        timeout_propose_ms: 3000,
        timeout_vote_ms: 1000,
    };
    Ok(super::node::toml_string(&c)? + &v.to_toml())
}

/// The nodes already in a testnet directory: `node0`, `node1`, ... in order.
fn existing_nodes(dir: &Path) -> usize {
    (0..).take_while(|i| dir.join(format!("node{i}")).join("openledger.toml").is_file()).count()
}

/// `--join`: one more home, peered with every node, optionally from a snapshot.
fn join(mut a: TestnetArgs, out: Out) -> anyhow::Result<()> {
    let n = existing_nodes(&a.dir);
    if n == 0 {
        bail!("{} holds no testnet (no node0/openledger.toml); write one first", a.dir.display());
    }
    let first = ConfigFile::load(&a.dir.join("node0/openledger.toml"))?;
    let rpc0: std::net::SocketAddr = first.rpc_addr.parse().context("node0's rpc_addr")?;
    a.base_port = rpc0.port();
    a.block_time = first.block_time_ms;
    let genesis_path = a.dir.join("node0/genesis.json");
    let genesis = node::load_genesis(&genesis_path)?;
    a.chain_id = genesis.chain_id;
    let kdf = if a.insecure_fast_kdf { KdfParams::insecure_for_tests() } else { KdfParams::light() };
    let home = make_home(&a.dir.join(format!("node{n}")), &kdf)?;
    std::fs::copy(&genesis_path, home.dir.join("genesis.json"))?;
    let peers: Vec<[u16; 4]> = (0..n).map(|j| ports(a.base_port, j)).collect::<anyhow::Result<_>>()?;
    let [rpc, http, p2p, gossip] = ports(a.base_port, n)?;
    std::fs::write(
        home.dir.join("openledger.toml"),
        config_with_peers(&a, &home.operator, &peers, rpc, http, p2p, gossip)?,
    )?;
    let from_snapshot = match a.snapshot_from {
        Some(k) if k < n => Some(import_from(&home.dir, &genesis, ports(a.base_port, k)?)?),
        Some(k) => bail!("--snapshot-from {k}: the testnet has nodes 0..{}", n - 1),
        None => None,
    };
    out.print(
        || {
            let from = from_snapshot.map(|h| format!(" from a snapshot at block {h}")).unwrap_or_default();
            format!("node{n} joins{from}: start it with: openledger start --data-dir {}", home.dir.display())
        },
        json!({"node": n, "dir": home.dir, "rpc": format!("http://127.0.0.1:{rpc}"), "snapshotHeight": from_snapshot}),
    );
    if a.detach {
        spawn_nodes(&a.dir, &[n])?;
        eprintln!("node{n} running (log in {})", home.dir.join("node.log").display());
    }
    Ok(())
}

/// Fetch node `from`'s state at its head into `dir`, then check the snapshot's
/// block against its commit certificate: signed by more than two thirds of the
/// set that the imported state itself says decided that height. Returns the height.
fn import_from(dir: &Path, genesis: &runtime::Genesis, from: [u16; 4]) -> anyhow::Result<u64> {
    let http = super::httpc::HttpArgs { http: format!("127.0.0.1:{}", from[1]) };
    let resp = http.stream("GET", "/v1/snapshot", &[], &[])?;
    if resp.status != 200 {
        let status = resp.status;
        let body = resp.read_body(1 << 16).unwrap_or_default();
        bail!("node on port {} refused the snapshot: HTTP {status}: {}", from[1], super::httpc::error_message(&body));
    }
    let summary = chain::import_snapshot(dir, genesis, std::io::BufReader::new(resp.into_reader()))
        .context("importing the snapshot")?;
    let height = summary.info.height;
    let mut rpc = rpc::client::RpcClient::new(&format!("127.0.0.1:{}", from[0]));
    let commit = rpc.call("ol_getCommit", json!([format!("0x{height:x}")]))?;
    let encoded = commit["encoded"].as_str().context("the node has no commit certificate for the snapshot's block")?;
    let cert = primitives::consensus::CommitCertificate::decode(&hex::decode(encoded.trim_start_matches("0x"))?)
        .map_err(|e| anyhow::anyhow!("the snapshot block's certificate: {e}"))?;
    let cfg = chain::ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: genesis.clone(),
        block_time: chain::BlockTime::External,
        history: 10_000,
        pool: chain::PoolConfig::default(),
        max_txs_per_block: 10_000,
    };
    let imported = chain::Chain::open(cfg)?;
    let head = imported.head();
    use chain::ConsensusHost;
    let set = imported.validator_set(height)?;
    let checked =
        chain::verify_certificate(&cert, &set, genesis.chain_id).map_err(|e| anyhow::anyhow!(e)).and_then(|_| {
            if cert.block_hash == head.hash && cert.height == height {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "the certificate is for block {} at {}, the snapshot's is {} at {height}",
                    cert.block_hash,
                    cert.height,
                    head.hash
                ))
            }
        });
    let kept = checked.and_then(|_| imported.keep_certificate(height, &cert).map_err(anyhow::Error::from));
    drop(imported);
    if let Err(e) = kept {
        let _ = std::fs::remove_file(dir.join("chain.redb"));
        bail!("the snapshot's block is not the one the validators decided: {e}");
    }
    Ok(height)
}

/// The file in a node's home that holds the pid of a node `testnet` started.
const PID_FILE: &str = "node.pid";

/// Start the nodes `which` of `dir` as processes (logs in `nodeK/node.log`,
/// pids in `nodeK/node.pid`) and wait until each answers; a node that exits is an error.
fn spawn_nodes(dir: &Path, which: &[usize]) -> anyhow::Result<Vec<Child>> {
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    let started = which.iter().try_for_each(|&i| {
        let home = dir.join(format!("node{i}"));
        let _ = std::fs::remove_file(home.join(node::ENDPOINTS_FILE));
        let log = std::fs::File::options().create(true).append(true).open(home.join("node.log"))?;
        let child = Command::new(&exe)
            .args(["start", "--data-dir"])
            .arg(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node{i}"))?;
        std::fs::write(home.join(PID_FILE), child.id().to_string())?;
        children.push(child);
        anyhow::Ok(())
    });
    match started.and_then(|_| wait_running(dir, which, &mut children)) {
        Ok(()) => Ok(children),
        Err(e) => {
            terminate(&mut children);
            Err(e)
        }
    }
}

fn terminate(children: &mut [Child]) {
    for c in children.iter() {
        signal_term(c.id());
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

fn signal_term(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).stderr(Stdio::null()).status();
}

/// Start every node of `dir`; with `detach`, return once they answer and
/// leave them running (`--stop` stops them); else wait for Ctrl-C and stop them.
fn run_all(dir: &Path, n: usize, detach: bool) -> anyhow::Result<()> {
    let which: Vec<usize> = (0..n).collect();
    let mut children = spawn_nodes(dir, &which)?;
    if detach {
        eprintln!(
            "{n} nodes running (logs in {0}/nodeK/node.log); stop them with: openledger testnet --stop --dir {0}",
            dir.display()
        );
        return Ok(());
    }
    eprintln!("{n} nodes running (logs in {}/nodeK/node.log); Ctrl-C stops them", dir.display());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    terminate(&mut children);
    Ok(())
}

/// `--stop`: SIGTERM every node `testnet` started in `dir`, and wait until they are gone.
fn stop_all(dir: &Path, out: Out) -> anyhow::Result<()> {
    let mut stopped = 0;
    for i in 0..existing_nodes(dir) {
        let pid_file = dir.join(format!("node{i}")).join(PID_FILE);
        let Ok(pid) = std::fs::read_to_string(&pid_file) else { continue };
        let _ = std::fs::remove_file(&pid_file);
        let Ok(pid) = pid.trim().parse::<u32>() else { continue };
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if !proc_dir.exists() {
            continue;
        }
        signal_term(pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc_dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        stopped += 1;
    }
    out.print(|| format!("stopped {stopped} nodes in {}", dir.display()), json!({"stopped": stopped}));
    Ok(())
}

/// Wait until every node in `which` writes its endpoints (its RPC is up); a node that exits is an error.
fn wait_running(dir: &Path, which: &[usize], children: &mut [Child]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for (&i, c) in which.iter().zip(children.iter_mut()) {
            if let Some(status) = c.try_wait()? {
                bail!("node{i} exited ({status}); see {}", dir.join(format!("node{i}/node.log")).display());
            }
        }
        let up = which.iter().filter(|i| node::Endpoints::read(&dir.join(format!("node{i}"))).is_some()).count();
        if up == which.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {up} of {} nodes started within 120 s", which.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
