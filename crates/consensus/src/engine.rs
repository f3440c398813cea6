//! Starting a Malachite engine with our Context, codec and signer.
//!
//! The engine talks to the application over the channels it returns
//! ([`Channels`]): the application answers `AppMsg`s (build a value, take a
//! proposal part, commit a decision) and publishes its proposal parts.

use std::path::PathBuf;
use std::time::Duration;

use malachitebft_app_channel::app::config::{
    ConsensusConfig, DiscoveryConfig, NodeConfig, P2pConfig, PubSubProtocol, TransportProtocol, ValuePayload,
    ValueSyncConfig,
};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::types::Keypair;
use malachitebft_app_channel::{
    Channels, ConsensusContext, EngineBuilder, EngineHandle, NetworkContext, NetworkIdentity, RequestContext,
    SyncContext, WalContext,
};

use crate::codec::WireCodec;
use crate::context::OlContext;
use crate::signing::{ConsensusSigner, ConsensusVerifier};
use crate::types::ValidatorAddress;

/// The engine's configuration: what Malachite's `NodeConfig` asks for.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub moniker: String,
    pub consensus: ConsensusConfig,
    pub value_sync: ValueSyncConfig,
}

impl EngineConfig {
    /// A validator on TCP at `listen`, dialing exactly `peers`: peer discovery
    /// off, only persistent peers admitted, and proposals sent as parts.
    pub fn tcp(moniker: impl Into<String>, listen: Multiaddr, peers: Vec<Multiaddr>) -> Self {
        let p2p = P2pConfig {
            listen_addr: listen,
            persistent_peers: peers,
            persistent_peers_only: false,
            discovery: DiscoveryConfig { enabled: false, ..Default::default() },
            protocol: PubSubProtocol::default(),
            ..Default::default()
        };
        let consensus = ConsensusConfig { p2p, value_payload: ValuePayload::ProposalAndParts, ..Default::default() };
        let value_sync = ValueSyncConfig { status_update_interval: Duration::from_secs(2), ..Default::default() };
        Self { moniker: moniker.into(), consensus, value_sync }
    }
}

/// The TCP address of a loopback port.
pub fn loopback_addr(port: u16) -> Multiaddr {
    TransportProtocol::Tcp.multiaddr("127.0.0.1", usize::from(port))
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("consensus engine failed to start: {0}")]
pub struct EngineError(String);

/// Start a validator's engine: its WAL at `wal_path`, its libp2p identity
/// `network_key`, signing with `signer` as `address`.
pub async fn start_validator(
    config: EngineConfig,
    wal_path: PathBuf,
    network_key: Keypair,
    address: ValidatorAddress,
    signer: ConsensusSigner,
    chain_id: u64,
) -> Result<(Channels<OlContext>, EngineHandle), EngineError> {
    let identity = NetworkIdentity::new(config.moniker.clone(), network_key, Some(address.to_string()));
    EngineBuilder::new(OlContext, config)
        .with_default_wal(WalContext::new(wal_path, WireCodec))
        .with_default_network(NetworkContext::new(identity, WireCodec))
        .with_default_sync(SyncContext::new(WireCodec))
        .with_default_consensus(ConsensusContext::new_validator(
            address,
            Box::new(ConsensusVerifier::new(chain_id)),
            Box::new(signer),
        ))
        .with_default_request(RequestContext::new(100))
        .build()
        .await
        .map_err(|e| EngineError(format!("{e:#}")))
}
