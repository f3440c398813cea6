//! The peers of `bench chain`: Hardhat's node (npm `hardhat`, its Rust EDR
//! engine) and Foundry's Anvil (Rust, revm; npm `@foundry-rs/anvil-linux-amd64`
//! ships the binary), each installed by its script under `bench/peers/` into
//! the git-ignored `bench/.peers/<name>`, each started fresh per run on the
//! same dev chain as ours: chain id 31337, the ten accounts of the standard
//! test mnemonic, automine (instant mode) or interval mining.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{ChainOpts, NodeProc, Production, free_port, tmp_dir};

/// The Hardhat release we compare with (bench/peers/install.sh installs it).
const HARDHAT_VERSION: &str = "2.29.1";
/// The Anvil release we compare with (bench/peers/install_anvil.sh installs it).
const ANVIL_VERSION: &str = "1.7.1";
/// Where the Anvil npm package keeps its binary, under the install directory.
const ANVIL_BIN: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// A peer `bench chain` can run beside our node.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// Hardhat's node (EDR), npm `hardhat`.
    Hardhat,
    /// Foundry's Anvil (revm), npm `@foundry-rs/anvil-linux-amd64`.
    Anvil,
}

impl PeerKind {
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Hardhat => "hardhat",
            PeerKind::Anvil => "anvil",
        }
    }

    fn script(self) -> &'static str {
        match self {
            PeerKind::Hardhat => "install.sh",
            PeerKind::Anvil => "install_anvil.sh",
        }
    }

    fn reference_version(self) -> &'static str {
        match self {
            PeerKind::Hardhat => HARDHAT_VERSION,
            PeerKind::Anvil => ANVIL_VERSION,
        }
    }

    /// Is the peer installed in `dir`?
    fn installed(self, dir: &Path) -> bool {
        match self {
            PeerKind::Hardhat => {
                dir.join("hardhat.config.js").is_file() && dir.join("node_modules/hardhat/package.json").is_file()
            }
            PeerKind::Anvil => dir.join(ANVIL_BIN).is_file(),
        }
    }

    /// The installed version, if it can be read.
    fn version(self, dir: &Path) -> Option<String> {
        match self {
            PeerKind::Hardhat => {
                let text = std::fs::read_to_string(dir.join("node_modules/hardhat/package.json")).ok()?;
                let v: Value = serde_json::from_str(&text).ok()?;
                v.get("version")?.as_str().map(str::to_string)
            }
            PeerKind::Anvil => {
                let out = Command::new(dir.join(ANVIL_BIN)).arg("--version").stdin(Stdio::null()).output().ok()?;
                parse_anvil_version(&String::from_utf8_lossy(&out.stdout))
            }
        }
    }
}

/// `anvil --version` prints `anvil Version: 1.7.1` (then the commit and build).
pub(crate) fn parse_anvil_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("anvil Version:"))?;
    let v = line.split(':').nth(1)?.trim();
    (!v.is_empty()).then(|| v.split_whitespace().next().unwrap_or(v).to_string())
}

/// Anvil's `--block-time` is in seconds and takes fractions.
pub(crate) fn anvil_block_time(ms: u64) -> String {
    if ms.is_multiple_of(1000) { (ms / 1000).to_string() } else { format!("{}", ms as f64 / 1000.0) }
}

/// An installed peer.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub kind: PeerKind,
    pub dir: PathBuf,
    pub version: String,
}

impl Peer {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// How the peer runs, for the header.
    pub fn describe(&self, block_time_ms: u64) -> String {
        match self.kind {
            PeerKind::Hardhat => format!(
                "Hardhat {} node (EDR) in {}: automine | interval mining {block_time_ms} ms",
                self.version,
                self.dir.display()
            ),
            PeerKind::Anvil => format!(
                "Anvil {} ({}): automine | --block-time {}",
                self.version,
                self.dir.join(ANVIL_BIN).display(),
                anvil_block_time(block_time_ms)
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name(), "version": self.version})
    }

    /// A fresh node of this peer on a free loopback port.
    pub fn start(&self, prod: Production) -> anyhow::Result<NodeProc> {
        match self.kind {
            PeerKind::Hardhat => self.start_hardhat(prod),
            PeerKind::Anvil => self.start_anvil(prod),
        }
    }

    fn start_hardhat(&self, prod: Production) -> anyhow::Result<NodeProc> {
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

    fn start_anvil(&self, prod: Production) -> anyhow::Result<NodeProc> {
        let dir = tmp_dir("anvil-bench-")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(self.dir.join(ANVIL_BIN));
        // Anvil's defaults otherwise (10,000 ETH per account, base fee 1 gwei,
        // 30M gas per block, its own history limits); the mnemonic is its default
        // too, named so that a change of default cannot slip by. States it spills
        // to disk go into the run's temporary directory rather than ~/.foundry.
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", "31337"])
            .args(["--accounts", "10", "--mnemonic", keys::DEV_MNEMONIC])
            .arg("--cache-path")
            .arg(dir.path().join("cache"));
        if let Production::Interval(ms) = prod {
            cmd.arg("--block-time").arg(anvil_block_time(ms));
        }
        NodeProc::spawn("anvil", cmd, dir, addr)
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

/// The peers asked for (`--peers`, none with `--no-peer`), each found or
/// installed; a peer that cannot be had is left out after saying why.
pub(crate) fn prepare_peers(opts: &ChainOpts) -> Vec<Peer> {
    if opts.no_peer {
        return Vec::new();
    }
    let mut kinds: Vec<PeerKind> = Vec::new();
    for &k in &opts.peers {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.into_iter().filter_map(|k| prepare(k, opts)).collect()
}

/// Find a peer, installing it with its script if needed.
fn prepare(kind: PeerKind, opts: &ChainOpts) -> Option<Peer> {
    let name = kind.name();
    let bench = bench_dir();
    let given = match kind {
        PeerKind::Hardhat => &opts.peer_dir,
        PeerKind::Anvil => &opts.anvil_dir,
    };
    let dir = match (given, &bench) {
        (Some(d), _) => d.clone(),
        (None, Some(b)) => b.join(".peers").join(name),
        (None, None) => {
            eprintln!(
                "peer: cannot find bench/peers/ (run from the source tree or pass the peer's directory); no {name}"
            );
            return None;
        }
    };
    if !kind.installed(&dir) {
        let Some(script) = bench.as_ref().map(|b| b.join("peers").join(kind.script())) else {
            eprintln!("peer: {name} is not installed in {} and bench/peers/ was not found; no {name}", dir.display());
            return None;
        };
        eprintln!(
            "peer: installing {name}@{} into {} with {} ...",
            kind.reference_version(),
            dir.display(),
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status();
        match status {
            Ok(s) if s.success() && kind.installed(&dir) => {}
            Ok(s) => {
                eprintln!("peer: {} failed ({s}); no {name}", script.display());
                return None;
            }
            Err(e) => {
                eprintln!("peer: cannot run bash {}: {e}; no {name}", script.display());
                return None;
            }
        }
    }
    if kind == PeerKind::Hardhat
        && !matches!(Command::new("node").arg("--version").output(), Ok(o) if o.status.success())
    {
        eprintln!("peer: `node` (Node.js) is not on PATH; no hardhat");
        return None;
    }
    let Some(version) = kind.version(&dir) else {
        eprintln!("peer: cannot read the version of {name} in {}; no {name}", dir.display());
        return None;
    };
    if version != kind.reference_version() {
        eprintln!("peer: note: {name} {version} in {}, the reference is {}", dir.display(), kind.reference_version());
    }
    Some(Peer { kind, dir, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anvil_version_and_block_time() {
        let out = "anvil Version: 1.7.1\nCommit SHA: 4072e48705af9d93e3c0f6e29e93b5e9a40caed8\nBuild Profile: dist\n";
        assert_eq!(parse_anvil_version(out).as_deref(), Some("1.7.1"));
        assert_eq!(parse_anvil_version("anvil Version: 1.8.0-nightly (abc)\n").as_deref(), Some("1.8.0-nightly"));
        assert_eq!(parse_anvil_version("anvil 0.2.0 (abc)\n"), None);
        assert_eq!(parse_anvil_version("anvil Version:\n"), None);
        assert_eq!(anvil_block_time(1000), "1");
        assert_eq!(anvil_block_time(3000), "3");
        assert_eq!(anvil_block_time(200), "0.2");
        assert_eq!(anvil_block_time(1500), "1.5");
    }

    #[test]
    fn no_peer_means_none() {
        let opts = ChainOpts { no_peer: true, ..ChainOpts::default() };
        assert!(prepare_peers(&opts).is_empty());
    }
}
