//! Four Malachite engines with our Context, over loopback TCP, decide the
//! same blocks; with one of them stopped, the other three go on.
//!
//! Each engine drives a small in-memory application: it proposes a block
//! whose bytes name its height and round (its id is their keccak hash), checks
//! the parts it receives (the proposer's signature, the id against the bytes),
//! serves and accepts synced blocks, and records what is decided. Timeouts are
//! generous and the test waits for heights, never for rates: two cores are
//! shared by the whole machine.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, keccak256};
use bytes::Bytes;
use consensus::app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use consensus::app_channel::app::streaming::StreamContent;
use consensus::app_channel::app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, LinearTimeouts, Round, Validity, VoteExtensions,
};
use consensus::app_channel::app::types::sync::RawDecidedValue;
use consensus::app_channel::app::types::{Keypair, LocallyProposedValue, ProposedValue};
use consensus::app_channel::{AppMsg, Channels, EngineHandle};
use consensus::{
    BlockId, ConsensusSigner, EngineConfig, Height, OlContext, ProposalPart, Signature, ValidatorAddress, ValidatorSet,
    loopback_addr, start_validator,
};
use keys::ConsensusKey;

const CHAIN_ID: u64 = 31337;
const VALIDATORS: usize = 4;

/// What a node has decided: height → block id.
type Decisions = Arc<Mutex<BTreeMap<u64, BlockId>>>;

fn operator(i: usize) -> ValidatorAddress {
    ValidatorAddress(Address::with_last_byte(i as u8 + 1))
}

fn consensus_key(i: usize) -> ConsensusKey {
    ConsensusKey::dev(&format!("validator-{i}"))
}

fn genesis_set() -> ValidatorSet {
    ValidatorSet::new((0..VALIDATORS).map(|i| consensus::Validator {
        address: operator(i),
        public_key: ConsensusSigner::new(consensus_key(i), CHAIN_ID).public_key(),
        power: 10,
    }))
    .expect("four validators of power 10 make a set")
}

fn timeouts() -> LinearTimeouts {
    LinearTimeouts {
        propose: Duration::from_secs(3),
        prevote: Duration::from_secs(2),
        precommit: Duration::from_secs(2),
        rebroadcast: Duration::from_secs(7),
        ..LinearTimeouts::default()
    }
}

/// A decided block, kept to answer peers that sync.
struct Committed {
    block: Vec<u8>,
    certificate: CommitCertificate<OlContext>,
    extensions: VoteExtensions<OlContext>,
}

/// The in-memory application behind one engine.
struct App {
    me: ValidatorAddress,
    signer: ConsensusSigner,
    height: Height,
    set: ValidatorSet,
    /// Parts received or built, by height and round, checked or not yet.
    parts: BTreeMap<(u64, u32), Vec<ProposalPart>>,
    /// Blocks seen (built, received with a matching id, or synced), by id.
    blocks: BTreeMap<BlockId, Vec<u8>>,
    committed: BTreeMap<u64, Committed>,
    decisions: Decisions,
    streams: u64,
}

impl App {
    fn new(i: usize, decisions: Decisions) -> Self {
        Self {
            me: operator(i),
            signer: ConsensusSigner::new(consensus_key(i), CHAIN_ID),
            height: Height(1),
            set: genesis_set(),
            parts: BTreeMap::new(),
            blocks: BTreeMap::new(),
            committed: BTreeMap::new(),
            decisions,
            streams: 0,
        }
    }

    fn params(&self) -> HeightParams<OlContext> {
        HeightParams::new(self.set.clone(), timeouts(), None)
    }

    /// A part this node accepts as the proposal of its height and round.
    fn proposed_value(&self, part: &ProposalPart) -> Option<ProposedValue<OlContext>> {
        if part.height != self.height {
            return None;
        }
        if let Err(e) = part.verify(&self.set, CHAIN_ID) {
            tracing::warn!("dropping proposal part: {e}");
            return None;
        }
        let validity = Validity::from_bool(keccak256(&part.block) == part.value.0);
        Some(ProposedValue {
            height: part.height,
            round: part.round,
            valid_round: part.pol_round,
            proposer: part.proposer,
            value: part.value,
            validity,
        })
    }

    fn stored(&self, height: Height, round: Round) -> Vec<ProposedValue<OlContext>> {
        let key = (height.0, round.as_u32().unwrap_or(0));
        self.parts.get(&key).into_iter().flatten().filter_map(|p| self.proposed_value(p)).collect()
    }

    fn build(&mut self, height: Height, round: Round) -> ProposalPart {
        let key = (height.0, round.as_u32().unwrap_or(0));
        if let Some(own) = self.parts.get(&key).and_then(|ps| ps.iter().find(|p| p.proposer == self.me)) {
            return own.clone();
        }
        let block = format!("block {} round {} by {}", height, round.as_i64(), self.me).into_bytes();
        let mut part = ProposalPart {
            height,
            round,
            pol_round: Round::Nil,
            proposer: self.me,
            value: BlockId(keccak256(&block)),
            block,
            signature: Signature([0; 64]),
        };
        self.signer.sign_part(&mut part);
        self.blocks.insert(part.value, part.block.clone());
        self.parts.entry(key).or_default().push(part.clone());
        part
    }

    async fn publish(&mut self, channels: &Channels<OlContext>, part: ProposalPart) {
        self.streams += 1;
        consensus::app::publish_part(channels, self.me, self.streams, part).await;
    }

    fn decided_values(&self, from: Height, to: Height) -> Vec<RawDecidedValue<OlContext>> {
        self.committed
            .range(from.0..=to.0)
            .map(|(_, c)| {
                let certificate = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    c.certificate.clone(),
                    c.extensions.clone(),
                );
                RawDecidedValue::new(Bytes::from(c.block.clone()), certificate)
            })
            .collect()
    }

    fn commit(&mut self, certificate: CommitCertificate<OlContext>, extensions: VoteExtensions<OlContext>) {
        let h = certificate.height.0;
        let block = self.blocks.remove(&certificate.value_id).unwrap_or_default();
        self.decisions.lock().unwrap().insert(h, certificate.value_id);
        self.committed.insert(h, Committed { block, certificate, extensions });
    }

    async fn run(mut self, mut channels: Channels<OlContext>) {
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(&channels, msg).await;
        }
    }

    async fn handle(&mut self, channels: &Channels<OlContext>, msg: AppMsg<OlContext>) {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let _ = reply.send((self.height, self.params()));
            }
            AppMsg::StartedRound { height, round, reply_value, .. } => {
                let _ = reply_value.send(self.stored(height, round));
            }
            AppMsg::GetValue { height, round, reply, .. } => {
                let part = self.build(height, round);
                let _ = reply.send(LocallyProposedValue::new(height, round, part.value));
                self.publish(channels, part).await;
            }
            AppMsg::ReceivedProposalPart { part, reply, .. } => {
                let value = match part.content {
                    StreamContent::Data(part) if part.height >= self.height => {
                        let value = self.proposed_value(&part);
                        if value.as_ref().is_some_and(|v| v.validity.is_valid()) {
                            self.blocks.insert(part.value, part.block.clone());
                        }
                        let key = (part.height.0, part.round.as_u32().unwrap_or(0));
                        self.parts.entry(key).or_default().push(part);
                        value
                    }
                    _ => None,
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided { certificate, extensions, reply } => {
                self.commit(certificate, extensions);
                let _ = reply.send(());
            }
            AppMsg::Finalized { certificate, reply, .. } => {
                self.height = Height(certificate.height.0 + 1);
                self.parts.retain(|(h, _), _| *h >= self.height.0);
                let _ = reply.send(Next::Start(self.height, self.params()));
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(Height(1));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let _ = reply.send(self.decided_values(*range.start(), *range.end()));
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let value = BlockId(keccak256(&value_bytes));
                self.blocks.insert(value, value_bytes.to_vec());
                let proposed = ProposedValue {
                    height,
                    round,
                    valid_round: Round::Nil,
                    proposer,
                    value,
                    validity: Validity::Valid,
                };
                let _ = reply.send(SyncedValueOutcome::Verdict(proposed));
            }
            AppMsg::RestreamProposal { height, round, value_id, .. } => {
                let key = (height.0, round.as_u32().unwrap_or(0));
                let part = self.parts.get(&key).and_then(|ps| ps.iter().find(|p| p.value == value_id)).cloned();
                if let Some(part) = part {
                    self.publish(channels, part).await;
                }
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { extensions, reply, .. } => {
                let _ = reply.send(extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect());
            }
        }
    }
}

/// A free loopback port (bound, read, released: the engine binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

struct Node {
    decisions: Decisions,
    engine: EngineHandle,
    app: tokio::task::JoinHandle<()>,
    _wal: tempfile::TempDir,
}

async fn start_network() -> Vec<Node> {
    let ports: Vec<u16> = (0..VALIDATORS).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for i in 0..VALIDATORS {
        let peers = (0..VALIDATORS).filter(|j| *j != i).map(|j| loopback_addr(ports[j])).collect();
        let config = EngineConfig::tcp(format!("validator-{i}"), loopback_addr(ports[i]), peers);
        let wal = tempfile::tempdir().expect("a temporary directory");
        let network_key = Keypair::ed25519_from_bytes([i as u8 + 1; 32]).expect("a 32-byte ed25519 secret");
        let signer = ConsensusSigner::new(consensus_key(i), CHAIN_ID);
        let (channels, engine) =
            start_validator(config, wal.path().join("consensus.wal"), network_key, operator(i), signer, CHAIN_ID)
                .await
                .expect("the engine starts");
        let decisions = Decisions::default();
        let app = tokio::spawn(App::new(i, decisions.clone()).run(channels));
        nodes.push(Node { decisions, engine, app, _wal: wal });
    }
    nodes
}

/// Wait until every node in `nodes` has decided `height`; false on timeout.
async fn wait_for_height(nodes: &[&Node], height: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if nodes.iter().all(|n| n.decisions.lock().unwrap().contains_key(&height)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Every height decided by two nodes has the same block at both.
fn assert_agreement(nodes: &[&Node]) {
    let all: Vec<BTreeMap<u64, BlockId>> = nodes.iter().map(|n| n.decisions.lock().unwrap().clone()).collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            for (h, id) in a {
                if let Some(other) = b.get(h) {
                    assert_eq!(id, other, "two nodes decided different blocks at height {h}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_decide_and_three_go_on_without_the_fourth() {
    let mut nodes = start_network().await;
    let all: Vec<&Node> = nodes.iter().collect();
    assert!(wait_for_height(&all, 5, Duration::from_secs(180)).await, "4 validators did not reach height 5");
    assert_agreement(&all);
    for h in 1..=5 {
        assert!(nodes.iter().all(|n| n.decisions.lock().unwrap().contains_key(&h)), "height {h} missing");
    }

    // Stop one validator (a quarter of the power): the other three hold more
    // than two thirds and keep deciding.
    let stopped = nodes.pop().expect("four nodes");
    stopped.engine.actor.stop(Some("test stops a validator".into()));
    let _ = stopped.engine.handle.await;
    stopped.app.abort();
    let reached = nodes.iter().map(|n| *n.decisions.lock().unwrap().keys().last().unwrap_or(&0)).max().unwrap_or(0);
    let rest: Vec<&Node> = nodes.iter().collect();
    assert!(
        wait_for_height(&rest, reached + 3, Duration::from_secs(240)).await,
        "3 of 4 validators did not go on past height {reached}"
    );
    assert_agreement(&rest);
    for node in nodes {
        node.engine.actor.stop(None);
        let _ = node.engine.handle.await;
        node.app.abort();
    }
}
