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

/// The libp2p identity of a validator: derived from its consensus key, never the key itself.
fn network_key(cfg: &ValidatorConfig) -> Result<Keypair, NodeError> {
    let mut seed = b"openledger/p2p-identity/v1".to_vec();
    seed.extend_from_slice(&cfg.consensus_key.seed());
    Keypair::ed25519_from_bytes(primitives::keccak256(&seed).0)
        .map_err(|e| NodeError::Consensus(format!("network identity: {e}")))
}

fn socket_multiaddr(a: std::net::SocketAddr) -> consensus::app_channel::app::net::Multiaddr {
    match a.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() => loopback_addr(a.port()),
        ip => consensus::app_channel::app::config::TransportProtocol::Tcp.multiaddr(&ip.to_string(), usize::from(a.port())),
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
    let signer = ConsensusSigner::new(cfg.consensus_key.clone(), chain_id);
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
        rebroadcast: Duration::from_millis(cfg.timeout_propose_ms + 2 * cfg.timeout_vote_ms),
        ..LinearTimeouts::default()
    };
    let (evidence_tx, evidence_rx) = tokio::sync::mpsc::unbounded_channel();
    let app_cfg = AppConfig { me, signer, timeouts, target_time: Duration::from_millis(cfg.block_time_ms) };
    let host: Arc<dyn ConsensusHost> = chain.clone();
    let mut tasks = vec![
        tokio::spawn(consensus::app::run(host, app_cfg, channels, Some(evidence_tx as EvidenceSink))),
        tokio::spawn(report_evidence(evidence_rx)),
    ];
    tasks.extend(consensus::gossip::start(chain, gossip, cfg.gossip_peers.clone()));
    tracing::info!(operator = %cfg.operator, p2p = %cfg.p2p_addr, gossip = %cfg.gossip_addr, "validator started");
    Ok(Validator { engine, tasks })
}

/// Log the equivocation the engine observed.
async fn report_evidence(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<
        consensus::app::MisbehaviorEvidence<consensus::OlContext>,
    >,
) {
    while let Some(e) = rx.recv().await {
        tracing::warn!(?e, "consensus observed equivocation");
    }
}
