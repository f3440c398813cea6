//! A validator's side of the node: the consensus engine (Malachite) over TCP,
//! the application that drives the chain through `chain::ConsensusHost`, and
//! transaction gossip to the other validators.

use std::sync::Arc;
use std::time::Duration;

use chain::{Chain, ConsensusHost};
use consensus::app::{AppConfig, EvidenceSink};
use consensus::app_channel::EngineHandle;
use consensus::app_channel::app::types::Keypair;
use consensus::app_channel::app::types::core::LinearTimeouts;
use consensus::evidence::Misbehavior;
use consensus::{ConsensusSigner, EngineConfig, ValidatorAddress, loopback_addr};

use crate::NodeError;
use crate::config::ValidatorConfig;

/// A running validator: stop it before the chain.
pub(crate) struct Validator {
    engine: EngineHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Validator {
    /// Stop the engine and the application and gossip tasks.
    pub(crate) fn stop(&mut self) {
        self.engine.actor.stop(Some("node stops".into()));
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// The environment variable that makes this process a Byzantine twin of its
/// validator (the fault harness's double-voter): set to `twin`, the process
/// signs every prevote for nil and takes its own network identity, so beside
/// the honest process with the same key it signs two prevotes per round and
/// gets its operator slashed. Never set it on a validator you care about.
pub const BYZANTINE_ENV: &str = "OPENLEDGER_BYZANTINE";

fn byzantine_twin() -> bool {
    std::env::var(BYZANTINE_ENV).is_ok_and(|v| v == "twin")
}

/// The libp2p identity of a validator: derived from its consensus key, never the key itself.
fn network_key(cfg: &ValidatorConfig) -> Result<Keypair, NodeError> {
    let mut seed = b"openledger/p2p-identity/v1".to_vec();
    if byzantine_twin() {
        seed.extend_from_slice(b"/twin");
    }
    seed.extend_from_slice(&cfg.consensus_key.seed());
    Keypair::ed25519_from_bytes(primitives::keccak256(&seed).0)
        .map_err(|e| NodeError::Consensus(format!("network identity: {e}")))
}

fn socket_multiaddr(a: std::net::SocketAddr) -> consensus::app_channel::app::net::Multiaddr {
    match a.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() => loopback_addr(a.port()),
        ip => consensus::app_channel::app::config::TransportProtocol::Tcp
            .multiaddr(&ip.to_string(), usize::from(a.port())),
    }
}

/// Start consensus for `chain` (opened with `BlockTime::External`) as `cfg`'s validator.
pub(crate) async fn start(cfg: &ValidatorConfig, chain: Arc<Chain>) -> Result<Validator, NodeError> {
    let chain_id = chain.chain_id();
    let me = ValidatorAddress(cfg.operator);
    let registered = {
        let host: &dyn ConsensusHost = chain.as_ref();
        let set = host.validator_set(host.committed_height() + 1).map_err(|e| NodeError::Consensus(e.to_string()))?;
        set.operators.iter().position(|o| *o == cfg.operator).map(|i| set.consensusKeys[i])
    };
    match registered {
        Some(k) if k != cfg.consensus_key.public() => {
            return Err(NodeError::Consensus(format!(
                "operator {} registered consensus key {k}, but node-keys holds {}",
                cfg.operator,
                cfg.consensus_key.public()
            )));
        }
        Some(_) => {}
        None => tracing::warn!(operator = %cfg.operator, "not in the validator set of the next height: following only"),
    }
    let peers = cfg.p2p_peers.iter().copied().map(socket_multiaddr).collect();
    let engine_cfg = EngineConfig::tcp(format!("validator-{}", cfg.operator), socket_multiaddr(cfg.p2p_addr), peers);
    let wal_dir = chain.data_dir().join("consensus");
    std::fs::create_dir_all(&wal_dir).map_err(|e| NodeError::Consensus(format!("{}: {e}", wal_dir.display())))?;
    let mut signer = ConsensusSigner::new(cfg.consensus_key.clone(), chain_id);
    if byzantine_twin() {
        tracing::warn!("{BYZANTINE_ENV}=twin: this process signs nil prevotes and will get its operator slashed");
        signer = signer.byzantine_nil_prevotes();
    }
    let (channels, engine) =
        consensus::start_validator(engine_cfg, wal_dir.join("wal"), network_key(cfg)?, me, signer.clone(), chain_id)
            .await
            .map_err(|e| NodeError::Consensus(e.to_string()))?;
    let gossip = tokio::net::TcpListener::bind(cfg.gossip_addr)
        .await
        .map_err(|err| NodeError::Consensus(format!("gossip cannot listen on {}: {err}", cfg.gossip_addr)))?;
    let timeouts = LinearTimeouts {
        propose: Duration::from_millis(cfg.timeout_propose_ms),
        prevote: Duration::from_millis(cfg.timeout_vote_ms),
        precommit: Duration::from_millis(cfg.timeout_vote_ms),
        // Votes are re-sent this often while a round is stuck: a validator that
        // comes back (or a healed partition) hears the round's votes within it.
        rebroadcast: Duration::from_millis((2 * cfg.timeout_vote_ms).max(1000)),
        ..LinearTimeouts::default()
    };
    let (evidence_tx, evidence_rx) = tokio::sync::mpsc::unbounded_channel();
    let app_cfg = AppConfig { me, signer, timeouts, target_time: Duration::from_millis(cfg.block_time_ms) };
    let host: Arc<dyn ConsensusHost> = chain.clone();
    let mut tasks = vec![
        tokio::spawn(consensus::app::run(host, app_cfg, channels, Some(evidence_tx as EvidenceSink))),
        tokio::spawn(report_evidence(chain.clone(), cfg.operator_key.clone(), evidence_rx)),
    ];
    tasks.extend(consensus::gossip::start(chain, gossip, cfg.gossip_peers.clone()));
    tracing::info!(operator = %cfg.operator, p2p = %cfg.p2p_addr, gossip = %cfg.gossip_addr, "validator started");
    Ok(Validator { engine, tasks })
}

/// Report the equivocation the engine observed: each proof not yet on chain
/// goes to `staking` in a transaction from the operator's account (the
/// reporter's share of the slash pays for it); without an operator key it is logged.
async fn report_evidence(
    chain: Arc<Chain>,
    operator_key: Option<keys::SecretKey>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<Misbehavior>>,
) {
    while let Some(found) = rx.recv().await {
        for m in found {
            tracing::warn!(?m, "consensus observed equivocation");
            let Some(key) = operator_key.clone() else { continue };
            let chain = chain.clone();
            let handle = tokio::runtime::Handle::current();
            let sent = tokio::task::spawn_blocking(move || report(&chain, &handle, &key, &m)).await;
            match sent {
                Ok(Ok(true)) => tracing::info!("evidence reported to staking"),
                Ok(Ok(false)) => tracing::debug!("evidence already on chain"),
                Ok(Err(e)) => tracing::warn!("reporting evidence failed: {e}"),
                Err(e) => tracing::error!("evidence task failed: {e}"),
            }
        }
    }
}

/// Gas for one report: two signature checks and the slash.
const REPORT_GAS: u64 = 1_000_000;

/// Send one proof unless it is already on chain; whether it was sent.
fn report(
    chain: &Chain,
    handle: &tokio::runtime::Handle,
    key: &keys::SecretKey,
    m: &Misbehavior,
) -> Result<bool, String> {
    use alloy_sol_types::SolCall;
    use primitives::abi::IStaking;
    let staking = primitives::system::Module::Staking.address();
    let (operator, height, round, kind) = m.key();
    let known = IStaking::evidenceSubmittedCall { operator, height, round, kind };
    let tombstoned = IStaking::tombstonedCall { operator };
    if crate::tx::call_view(chain, staking, &known).map_err(|e| e.to_string())?
        || crate::tx::call_view(chain, staking, &tombstoned).map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    let data = match m.clone() {
        Misbehavior::DoubleVote { operator, a, b } => IStaking::reportDoubleVoteCall { operator, a, b }.abi_encode(),
        Misbehavior::DoubleProposal { operator, a, b } => {
            IStaking::reportDoubleProposalCall { operator, a, b }.abi_encode()
        }
    };
    crate::tx::submit_and_wait(chain, handle, key, staking, 0, data, REPORT_GAS).map_err(String::from)?;
    Ok(true)
}
