//! The application behind a Malachite engine: the chain, through
//! [`chain::ConsensusHost`].
//!
//! The loop answers the engine's `AppMsg`s: the proposer builds the block from
//! its pool and publishes it as one signed part; every validator checks a
//! received part (its proposer's signature, then the block by re-executing it
//! on its head) before consensus may vote for it; a decided block commits with
//! its certificate; peers that sync get committed blocks with their
//! certificates, and synced blocks are checked like proposals. The chain's work
//! runs on blocking threads, never on the engine's.
//!
//! Bad input is dropped with a log line: parts with a bad signature, for a
//! past height, beyond [`MAX_FUTURE_HEIGHTS`] ahead, or past [`MAX_STORED_PARTS`]
//! (parts of later heights give way to those of earlier ones).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chain::ConsensusHost;
use malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, ExtendedCommitCertificate, LinearTimeouts, Round, Validity, VoteExtensions,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use primitives::consensus as pc;
use tokio::sync::mpsc;

use crate::context::OlContext;
use crate::messages::ProposalPart;
use crate::signing::{ConsensusSigner, Signature};
use crate::types::{BlockId, Height, ValidatorAddress};
use crate::validator_set::ValidatorSet;

/// Parts for heights this far above ours are kept (a node a little behind);
/// farther ones are dropped: sync brings those blocks.
pub const MAX_FUTURE_HEIGHTS: u64 = 2;

/// The most proposal parts kept at once.
pub const MAX_STORED_PARTS: usize = 256;

/// The most decided blocks served to a syncing peer in one answer.
pub const MAX_SYNC_BATCH: u64 = 64;

/// What the application needs besides the chain.
pub struct AppConfig {
    pub me: ValidatorAddress,
    pub signer: ConsensusSigner,
    pub timeouts: LinearTimeouts,
    /// The least time a height takes: the engine waits this long from the
    /// start of a height before it moves to the next (collecting late
    /// precommits meanwhile), which sets the block time.
    pub target_time: std::time::Duration,
}

pub use malachitebft_core_consensus::MisbehaviorEvidence;

/// Equivocation the engine observed, for the node to turn into evidence transactions.
pub type EvidenceSink = mpsc::UnboundedSender<Vec<crate::evidence::Misbehavior>>;

/// The application state the loop carries.
struct ChainApp {
    host: Arc<dyn ConsensusHost>,
    cfg: AppConfig,
    chain_id: u64,
    height: Height,
    set: Option<ValidatorSet>,
    /// Parts received or built, by (height, round).
    parts: BTreeMap<(u64, u32), Vec<ProposalPart>>,
    /// Verdicts on blocks of the current height, by id.
    verdicts: BTreeMap<BlockId, bool>,
    streams: u64,
    evidence: Option<EvidenceSink>,
}

/// Run the application until the engine closes its channel.
pub async fn run(
    host: Arc<dyn ConsensusHost>,
    cfg: AppConfig,
    mut channels: Channels<OlContext>,
    evidence: Option<EvidenceSink>,
) {
    let chain_id = host.chain_id();
    let mut app = ChainApp {
        host,
        cfg,
        chain_id,
        height: Height(0),
        set: None,
        parts: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        streams: 0,
        evidence,
    };
    while let Some(msg) = channels.consensus.recv().await {
        app.handle(&channels, msg).await;
    }
    tracing::info!("consensus application stopped: the engine closed its channel");
}

/// Run `f` against the chain on a blocking thread.
async fn blocking<T: Send + 'static>(
    host: &Arc<dyn ConsensusHost>,
    f: impl FnOnce(&dyn ConsensusHost) -> T + Send + 'static,
) -> Option<T> {
    let host = host.clone();
    match tokio::task::spawn_blocking(move || f(host.as_ref())).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("chain task failed: {e}");
            None
        }
    }
}

fn round_key(round: Round) -> u32 {
    round.as_u32().unwrap_or(0)
}

impl ChainApp {
    fn params(&self, set: ValidatorSet) -> HeightParams<OlContext> {
        let target = (!self.cfg.target_time.is_zero()).then_some(self.cfg.target_time);
        HeightParams::new(set, self.cfg.timeouts, target)
    }

    /// Move to the head's next height and load its validator set.
    async fn enter_next_height(&mut self) -> Option<HeightParams<OlContext>> {
        let (height, record) = blocking(&self.host, |h| {
            let height = h.committed_height() + 1;
            (height, h.validator_set(height))
        })
        .await?;
        self.height = Height(height);
        self.verdicts.clear();
        self.parts.retain(|(h, _), _| *h >= height);
        let set = match record.map_err(|e| e.to_string()).and_then(|r| {
            ValidatorSet::from_staking(&r.operators, &r.consensusKeys, &r.powers).map_err(|e| e.to_string())
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(height, "no validator set: {e}");
                return None;
            }
        };
        // Parts kept for this height came before its set was known, unverified:
        // forget those it refuses, so that they hold no room of the store.
        let chain_id = self.chain_id;
        for (_, ps) in self.parts.range_mut((height, 0)..=(height, u32::MAX)) {
            ps.retain(|p| p.verify(&set, chain_id).is_ok());
        }
        self.parts.retain(|_, ps| !ps.is_empty());
        self.set = Some(set.clone());
        Some(self.params(set))
    }

    async fn handle(&mut self, channels: &Channels<OlContext>, msg: AppMsg<OlContext>) {
        match msg {
            AppMsg::ConsensusReady { reply } => match self.enter_next_height().await {
                Some(params) => {
                    let _ = reply.send((self.height, params));
                }
                None => tracing::error!("consensus cannot start: no validator set for the next height"),
            },
            AppMsg::StartedRound { height, round, reply_value, .. } => {
                let values = self.stored(height, round).await;
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue { height, round, reply, .. } => {
                if let Some(part) = self.build(height, round).await {
                    let _ = reply.send(LocallyProposedValue::new(height, round, part.value));
                    self.publish(channels, part).await;
                }
            }
            AppMsg::ReceivedProposalPart { part, reply, .. } => {
                let value = match part.content {
                    StreamContent::Data(part) => self.receive(part).await,
                    StreamContent::Fin => None,
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided { certificate, reply, .. } => {
                self.commit(certificate).await;
                let _ = reply.send(());
            }
            AppMsg::Finalized { certificate, evidence, reply, .. } => {
                if !evidence.is_empty()
                    && let (Some(sink), Some(set)) = (&self.evidence, &self.set)
                {
                    let found = crate::evidence::misbehavior(&evidence, set);
                    if !found.is_empty() {
                        let _ = sink.send(found);
                    }
                }
                let committed = blocking(&self.host, |h| h.committed_height()).await.unwrap_or(0);
                let next = if committed >= certificate.height.0 {
                    self.enter_next_height().await.map(|p| Next::Start(self.height, p))
                } else {
                    tracing::warn!(height = certificate.height.0, "decided block not committed; restarting the height");
                    self.set.clone().map(|s| Next::Restart(certificate.height, self.params(s)))
                };
                match next {
                    Some(n) => {
                        let _ = reply.send(n);
                    }
                    None => tracing::error!("consensus stalls: no validator set for the next height"),
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let h = blocking(&self.host, |h| h.earliest_height()).await.and_then(|r| r.ok()).unwrap_or(1);
                let _ = reply.send(Height(h));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let (from, to) =
                    (range.start().0, range.end().0.min(range.start().0.saturating_add(MAX_SYNC_BATCH - 1)));
                let values = blocking(&self.host, move |h| decided_values(h, from, to)).await.unwrap_or_default();
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue { height, round, proposer, value_bytes, reply } => {
                let outcome = self.synced(height, round, proposer, value_bytes).await;
                let _ = reply.send(outcome);
            }
            AppMsg::RestreamProposal { height, round, valid_round, address, value_id } => {
                match self.restream(height, round, valid_round, address, value_id) {
                    Some(part) => self.publish(channels, part).await,
                    None => {
                        tracing::warn!(height = height.0, block = %value_id, "cannot re-send a proposal whose block this node does not hold")
                    }
                }
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions { extensions, reply, .. } => {
                // Heights run without extensions: none is acceptable content.
                let verdicts = extensions
                    .into_iter()
                    .map(|(a, _)| (a, Err(malachitebft_core_consensus::VoteExtensionError::InvalidVoteExtension)))
                    .collect();
                let _ = reply.send(verdicts);
            }
        }
    }

    /// Our own part for (height, round): the one already built, or a new block from the pool.
    async fn build(&mut self, height: Height, round: Round) -> Option<ProposalPart> {
        let key = (height.0, round_key(round));
        if let Some(own) = self.parts.get(&key).and_then(|ps| ps.iter().find(|p| p.proposer == self.cfg.me)) {
            return Some(own.clone());
        }
        let proposed = match blocking(&self.host, move |h| h.propose(height.0)).await? {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(height = height.0, "cannot build a block to propose: {e}");
                return None;
            }
        };
        let mut part = ProposalPart {
            height,
            round,
            pol_round: Round::Nil,
            proposer: self.cfg.me,
            value: BlockId(proposed.hash),
            block: proposed.bytes,
            signature: Signature([0; 64]),
        };
        self.cfg.signer.sign_part(&mut part);
        self.verdicts.insert(part.value, true);
        self.parts.entry(key).or_default().push(part.clone());
        Some(part)
    }

    async fn publish(&mut self, channels: &Channels<OlContext>, part: ProposalPart) {
        self.streams += 1;
        publish_part(channels, self.cfg.me, self.streams, part).await;
    }

    /// The part to re-send for `value_id` proposed by `address` at (`height`, `round`).
    /// Malachite asks for two things under one name: a part already seen (when
    /// a validator locks, it re-sends what made it lock), and, when this node
    /// re-proposes a locked value in a later round, a new part for that round
    /// with `valid_round` as its proof-of-lock round, signed by this node, from
    /// the block bytes kept for any round of the height. Without the second, a
    /// value locked by some validators could never be proposed again and the
    /// height would stall.
    fn restream(
        &mut self,
        height: Height,
        round: Round,
        valid_round: Round,
        address: ValidatorAddress,
        value_id: BlockId,
    ) -> Option<ProposalPart> {
        let key = (height.0, round_key(round));
        if let Some(p) =
            self.parts.get(&key).and_then(|ps| ps.iter().find(|p| p.value == value_id && p.proposer == address))
        {
            return Some(p.clone());
        }
        if address != self.cfg.me {
            return None;
        }
        let block = self
            .parts
            .iter()
            .filter(|((h, _), _)| *h == height.0)
            .flat_map(|(_, ps)| ps)
            .find(|p| p.value == value_id)?
            .block
            .clone();
        let mut part = ProposalPart {
            height,
            round,
            pol_round: valid_round,
            proposer: self.cfg.me,
            value: value_id,
            block,
            signature: Signature([0; 64]),
        };
        self.cfg.signer.sign_part(&mut part);
        self.parts.entry(key).or_default().push(part.clone());
        Some(part)
    }

    /// Keep a received part; the value it proposes when it is for our height.
    async fn receive(&mut self, part: ProposalPart) -> Option<ProposedValue<OlContext>> {
        let h = part.height.0;
        if h < self.height.0 || h > self.height.0 + MAX_FUTURE_HEIGHTS {
            tracing::debug!(part = h, ours = self.height.0, "dropping a proposal part outside our heights");
            return None;
        }
        while self.parts.values().map(Vec::len).sum::<usize>() >= MAX_STORED_PARTS {
            if !self.forget_one_above(h) {
                tracing::warn!(part = h, "dropping a proposal part: {MAX_STORED_PARTS} parts already kept");
                return None;
            }
        }
        let key = (h, round_key(part.round));
        let entry = self.parts.entry(key).or_default();
        if entry.iter().any(|p| p.value == part.value && p.proposer == part.proposer) {
            return None;
        }
        entry.push(part.clone());
        if h != self.height.0 {
            return None;
        }
        self.judge(&part).await
    }

    /// Make room for a part of height `h` by forgetting one kept for the
    /// highest height above it, if any. Parts of later heights are kept
    /// unverified (their height's set is not known yet), so anyone can send
    /// them: they must never crowd out the parts of the heights before.
    fn forget_one_above(&mut self, h: u64) -> bool {
        let Some(mut last) = self.parts.last_entry() else {
            return false;
        };
        if last.key().0 <= h {
            return false;
        }
        if last.get_mut().pop().is_none() || last.get().is_empty() {
            last.remove();
        }
        true
    }

    /// The value a part of our height proposes, with its validity; `None`
    /// (and the part forgotten) when its signature does not verify.
    async fn judge(&mut self, part: &ProposalPart) -> Option<ProposedValue<OlContext>> {
        let set = self.set.as_ref()?;
        if let Err(e) = part.verify(set, self.chain_id) {
            tracing::warn!(height = part.height.0, "dropping proposal part: {e}");
            if let Some(ps) = self.parts.get_mut(&(part.height.0, round_key(part.round))) {
                ps.retain(|p| p != part);
            }
            return None;
        }
        let valid = self.verdict(part.height, part.value, part.block.clone()).await;
        Some(ProposedValue {
            height: part.height,
            round: part.round,
            valid_round: part.pol_round,
            proposer: part.proposer,
            value: part.value,
            validity: Validity::from_bool(valid),
        })
    }

    /// Whether the block `bytes` is a valid block `id` at `height` (re-executed once per id).
    async fn verdict(&mut self, height: Height, id: BlockId, bytes: Vec<u8>) -> bool {
        if let Some(v) = self.verdicts.get(&id) {
            return *v;
        }
        let checked = blocking(&self.host, move |h| h.check(height.0, &bytes)).await;
        let valid = match checked {
            Some(Ok(hash)) if hash == id.0 => true,
            Some(Ok(hash)) => {
                tracing::warn!(height = height.0, "proposal names block {id} but its bytes are block {hash}");
                false
            }
            Some(Err(e)) => {
                tracing::warn!(height = height.0, "rejecting proposed block {id}: {e}");
                false
            }
            None => return false,
        };
        self.verdicts.insert(id, valid);
        valid
    }

    /// The values already received for (height, round), judged (after a restart, or parts that came early).
    async fn stored(&mut self, height: Height, round: Round) -> Vec<ProposedValue<OlContext>> {
        if height != self.height {
            return Vec::new();
        }
        let parts = self.parts.get(&(height.0, round_key(round))).cloned().unwrap_or_default();
        let mut values = Vec::new();
        for p in parts {
            if let Some(v) = self.judge(&p).await {
                values.push(v);
            }
        }
        values
    }

    async fn commit(&mut self, certificate: CommitCertificate<OlContext>) {
        let cert = to_primitive(&certificate);
        let (height, id) = (certificate.height.0, certificate.value_id.0);
        match blocking(&self.host, move |h| h.commit(height, id, &cert)).await {
            Some(Ok(())) => tracing::debug!(height, block = %id, "committed"),
            Some(Err(e)) => tracing::error!(height, block = %id, "decided block did not commit: {e}"),
            None => {}
        }
    }

    async fn synced(
        &mut self,
        height: Height,
        round: Round,
        proposer: ValidatorAddress,
        value_bytes: Bytes,
    ) -> SyncedValueOutcome<OlContext> {
        if height != self.height {
            return SyncedValueOutcome::LocalTransientError;
        }
        let Ok(block) = chain::decode_block(&value_bytes) else {
            return SyncedValueOutcome::PeerFault;
        };
        let id = BlockId(block.header.hash_slow());
        let valid = self.verdict(height, id, value_bytes.to_vec()).await;
        SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: id,
            validity: Validity::from_bool(valid),
        })
    }
}

/// Publish `part` as stream number `stream` of `publisher`: the whole block in
/// one data message, then the end of the stream.
pub async fn publish_part(
    channels: &Channels<OlContext>,
    publisher: ValidatorAddress,
    stream: u64,
    part: ProposalPart,
) {
    let mut id = publisher.0.to_vec();
    id.extend_from_slice(&stream.to_be_bytes());
    let stream = StreamId::new(Bytes::from(id));
    for msg in [
        StreamMessage::new(stream.clone(), 0, StreamContent::Data(part)),
        StreamMessage::new(stream, 1, StreamContent::Fin),
    ] {
        if channels.network.send(NetworkMsg::PublishProposalPart(msg)).await.is_err() {
            return;
        }
    }
}

/// Malachite's certificate as `primitives` defines it (what is stored and served).
pub fn to_primitive(c: &CommitCertificate<OlContext>) -> pc::CommitCertificate {
    pc::CommitCertificate {
        height: c.height.0,
        round: round_key(c.round),
        block_hash: c.value_id.0,
        signatures: c
            .commit_signatures
            .iter()
            .map(|s| pc::CommitSignature { validator: s.address.0, signature: s.signature.0 })
            .collect(),
    }
}

/// A stored certificate as Malachite's, for peers that sync.
pub fn from_primitive(c: &pc::CommitCertificate) -> CommitCertificate<OlContext> {
    CommitCertificate {
        height: Height(c.height),
        round: Round::new(c.round),
        value_id: BlockId(c.block_hash),
        commit_signatures: c
            .signatures
            .iter()
            .map(|s| CommitSignature::new(ValidatorAddress(s.validator), Signature(s.signature)))
            .collect(),
    }
}

fn decided_values(host: &dyn ConsensusHost, from: u64, to: u64) -> Vec<RawDecidedValue<OlContext>> {
    let mut out = Vec::new();
    for h in from..=to {
        match host.decided(h) {
            Ok(Some((bytes, cert))) => {
                let certificate = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    from_primitive(&cert),
                    VoteExtensions::default(),
                );
                out.push(RawDecidedValue::new(Bytes::from(bytes), certificate));
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(height = h, "cannot read a decided block for a peer: {e}");
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use alloy_primitives::{Address, B256, keccak256};
    use chain::{ChainError, ProposedBlock};
    use keys::ConsensusKey;
    use runtime::staking::ValidatorSetRecord;

    use super::*;
    use crate::validator_set::Validator;

    const CHAIN_ID: u64 = 7;

    /// A chain whose blocks are any bytes, named by their keccak hash; it records the heights it checks.
    #[derive(Default)]
    struct Host {
        checked: Mutex<Vec<u64>>,
        committed: std::sync::atomic::AtomicU64,
    }

    fn no(what: &str) -> ChainError {
        ChainError::InvalidBlock { block: 0, what: format!("{what}: not in these tests") }
    }

    impl ConsensusHost for Host {
        fn chain_id(&self) -> u64 {
            CHAIN_ID
        }
        fn committed_height(&self) -> u64 {
            self.committed.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn earliest_height(&self) -> Result<u64, ChainError> {
            Ok(1)
        }
        fn validator_set(&self, _: u64) -> Result<ValidatorSetRecord, ChainError> {
            Ok(ValidatorSetRecord {
                operators: (1..=4).map(|i| member(i).0).collect(),
                consensusKeys: (1..=4).map(|i| key(i).public()).collect(),
                powers: vec![alloy_primitives::U256::from(10 * primitives::ONE_OPEN); 4],
            })
        }
        fn propose(&self, _: u64) -> Result<ProposedBlock, ChainError> {
            Err(no("propose"))
        }
        fn check(&self, height: u64, bytes: &[u8]) -> Result<B256, ChainError> {
            self.checked.lock().unwrap().push(height);
            Ok(keccak256(bytes))
        }
        fn commit(&self, _: u64, _: B256, _: &pc::CommitCertificate) -> Result<(), ChainError> {
            Err(no("commit"))
        }
        fn decided(&self, _: u64) -> Result<Option<(Vec<u8>, pc::CommitCertificate)>, ChainError> {
            Ok(None)
        }
    }

    fn key(i: u8) -> ConsensusKey {
        ConsensusKey::dev(&format!("app-{i}"))
    }

    fn signer(i: u8) -> ConsensusSigner {
        ConsensusSigner::new(key(i), CHAIN_ID)
    }

    fn member(i: u8) -> ValidatorAddress {
        ValidatorAddress(Address::repeat_byte(i))
    }

    fn set() -> ValidatorSet {
        ValidatorSet::new((1..=4).map(|i| Validator {
            address: member(i),
            public_key: signer(i).public_key(),
            power: 10,
        }))
        .unwrap()
    }

    /// The application at height 1, validator 1, over a fresh [`Host`].
    fn app() -> (ChainApp, Arc<Host>) {
        let host = Arc::new(Host::default());
        let app = ChainApp {
            host: host.clone(),
            cfg: AppConfig {
                me: member(1),
                signer: signer(1),
                timeouts: LinearTimeouts::default(),
                target_time: std::time::Duration::ZERO,
            },
            chain_id: CHAIN_ID,
            height: Height(1),
            set: Some(set()),
            parts: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            streams: 0,
            evidence: None,
        };
        (app, host)
    }

    /// A part of `block` at (`height`, `round`) from `from`, signed by `by`.
    fn part(height: u64, round: u32, from: ValidatorAddress, by: &ConsensusSigner, block: &[u8]) -> ProposalPart {
        let mut p = ProposalPart {
            height: Height(height),
            round: Round::new(round),
            pol_round: Round::Nil,
            proposer: from,
            value: BlockId(keccak256(block)),
            block: block.to_vec(),
            signature: Signature([0; 64]),
        };
        by.sign_part(&mut p);
        p
    }

    /// A part from the proposer of (`height`, `round`), signed by it.
    fn proper(height: u64, round: u32, block: &[u8]) -> ProposalPart {
        let proposer = set().proposer(Height(height), Round::new(round)).address;
        let i = (1..=4).find(|i| member(*i) == proposer).unwrap();
        part(height, round, proposer, &signer(i), block)
    }

    fn kept(app: &ChainApp) -> usize {
        app.parts.values().map(Vec::len).sum()
    }

    #[tokio::test]
    async fn a_proposers_part_is_checked_once_and_its_verdict_given() {
        let (mut app, host) = app();
        let v = app.receive(proper(1, 0, b"a block")).await.unwrap();
        assert_eq!((v.validity, v.value), (Validity::Valid, BlockId(keccak256(b"a block"))));
        assert!(app.receive(proper(1, 0, b"a block")).await.is_none(), "a part already kept is not judged twice");
        // Bytes that are not the block the signed proposal names: a verdict of invalid.
        let mut lying = proper(1, 1, b"another block");
        lying.block = b"not that block".to_vec();
        assert_eq!(app.receive(lying).await.unwrap().validity, Validity::Invalid);
        assert_eq!(*host.checked.lock().unwrap(), vec![1, 1]);
    }

    #[tokio::test]
    async fn parts_from_non_validators_or_with_bad_signatures_are_dropped_unchecked() {
        let (mut app, host) = app();
        let block = b"a block";
        let proposer = set().proposer(Height(1), Round::new(0)).address;
        let other = (1..=4).map(member).find(|m| *m != proposer).unwrap();
        let outsider = ConsensusSigner::new(ConsensusKey::dev("outsider"), CHAIN_ID);
        let mut tampered = proper(1, 0, block);
        tampered.value = BlockId(B256::repeat_byte(9));
        let mut flipped = proper(1, 0, block);
        flipped.signature.0[0] ^= 1;
        let mut oversized = proper(1, 0, block);
        oversized.block = vec![0; crate::MAX_BLOCK_BYTES + 1];
        let attacks = [
            part(1, 0, ValidatorAddress(Address::repeat_byte(0xee)), &outsider, block),
            part(1, 0, proposer, &outsider, block),
            part(1, 0, other, &signer(other.0[0]), block),
            part(1, 0, proposer, &ConsensusSigner::new(key(proposer.0[0]), CHAIN_ID + 1), block),
            tampered,
            flipped,
            oversized,
        ];
        for p in attacks {
            assert!(app.receive(p).await.is_none());
        }
        assert!(host.checked.lock().unwrap().is_empty(), "no bad part reaches the chain");
        assert_eq!(kept(&app), 0, "bad parts are forgotten");
        assert!(app.receive(proper(1, 0, block)).await.is_some(), "the proposer's own part is still heard");
    }

    #[tokio::test]
    async fn parts_outside_our_heights_are_dropped() {
        let (mut app, host) = app();
        app.height = Height(5);
        for h in [0, 4, 5 + MAX_FUTURE_HEIGHTS + 1, u64::MAX] {
            assert!(app.receive(proper(h, 0, b"block")).await.is_none(), "height {h}");
        }
        assert_eq!(kept(&app), 0, "parts for past or far heights are not kept");
        for h in 6..=5 + MAX_FUTURE_HEIGHTS {
            assert!(app.receive(proper(h, 0, b"block")).await.is_none(), "kept for later, not judged now");
        }
        assert_eq!(kept(&app), MAX_FUTURE_HEIGHTS as usize);
        assert!(host.checked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_flood_of_later_parts_is_bounded_and_gives_way_to_ours() {
        let (mut app, host) = app();
        let outsider = ConsensusSigner::new(ConsensusKey::dev("outsider"), CHAIN_ID);
        let junk = |h: u64, r: u32| part(h, r, ValidatorAddress(Address::repeat_byte(0xee)), &outsider, b"junk");
        for r in 0..(MAX_STORED_PARTS + 10) as u32 {
            assert!(app.receive(junk(1 + MAX_FUTURE_HEIGHTS, r)).await.is_none());
        }
        assert_eq!(kept(&app), MAX_STORED_PARTS, "the store is bounded");
        assert!(app.receive(junk(1 + MAX_FUTURE_HEIGHTS, u32::MAX - 1)).await.is_none());
        assert_eq!(kept(&app), MAX_STORED_PARTS);
        // A part of a nearer height, then one of ours, each takes the place of a farther one.
        assert!(app.receive(proper(2, 0, b"next")).await.is_none());
        assert!(app.parts.contains_key(&(2, 0)));
        let v = app.receive(proper(1, 0, b"ours")).await.expect("our height's proposal is heard");
        assert_eq!(v.validity, Validity::Valid);
        assert_eq!(*host.checked.lock().unwrap(), vec![1]);
        assert!(kept(&app) <= MAX_STORED_PARTS);
    }

    #[tokio::test]
    async fn unverified_parts_of_a_height_are_forgotten_when_it_starts() {
        let (mut app, host) = app();
        let outsider = ConsensusSigner::new(ConsensusKey::dev("outsider"), CHAIN_ID);
        let junk = |r: u32| part(2, r, ValidatorAddress(Address::repeat_byte(0xee)), &outsider, b"junk");
        for r in 0..MAX_STORED_PARTS as u32 {
            assert!(app.receive(junk(r)).await.is_none());
        }
        assert!(app.receive(proper(2, 0, b"early")).await.is_none(), "the store is full of junk");
        assert!(app.receive(proper(3, 0, b"later")).await.is_none());
        assert_eq!(kept(&app), MAX_STORED_PARTS);
        // Height 1 is committed: the junk of height 2 goes as height 2 starts, the proposer's part is heard.
        host.committed.store(1, std::sync::atomic::Ordering::SeqCst);
        assert!(app.enter_next_height().await.is_some());
        assert_eq!((app.height, kept(&app)), (Height(2), 0));
        let v = app.receive(proper(2, 0, b"early")).await.expect("a proposer's part is heard");
        assert_eq!(v.validity, Validity::Valid);
        assert_eq!(*host.checked.lock().unwrap(), vec![2]);
    }

    #[tokio::test]
    async fn a_locked_value_is_proposed_again_in_a_later_round() {
        let (mut app, _) = app();
        // Round 0's proposer (another validator) proposed a block; this node kept it.
        let first = proper(1, 0, b"the locked block");
        let id = first.value;
        assert!(app.receive(first.clone()).await.is_some());
        // Re-sending what made it lock: the very part of round 0.
        assert_eq!(app.restream(Height(1), Round::new(0), Round::Nil, first.proposer, id), Some(first.clone()));
        // Proposing it again in round 5 with proof-of-lock round 0: a new part, signed by this node.
        let again = app.restream(Height(1), Round::new(5), Round::new(0), member(1), id).expect("re-proposed");
        assert_eq!(
            (again.round, again.pol_round, again.proposer, again.value),
            (Round::new(5), Round::new(0), member(1), id)
        );
        assert_eq!(again.block, first.block);
        assert!(
            again.verify(&set(), CHAIN_ID).is_ok() || set().proposer(Height(1), Round::new(5)).address != member(1)
        );
        let signed = again.proposal().sign_bytes(CHAIN_ID);
        assert!(crate::signing::verify(&signer(1).public_key(), &signed, &again.signature));
        // A block this node never held cannot be re-sent; nor another validator's round it never saw.
        assert_eq!(
            app.restream(Height(1), Round::new(6), Round::new(0), member(1), BlockId(B256::repeat_byte(7))),
            None
        );
        assert_eq!(app.restream(Height(1), Round::new(6), Round::new(0), member(2), id), None);
    }
}
