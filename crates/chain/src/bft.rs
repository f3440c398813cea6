//! The chain's side of BFT consensus: what an engine asks of it.
//!
//! A consensus engine (Malachite, in the `consensus` crate) drives the chain
//! through [`ConsensusHost`] and nothing else, so the engine can be swapped
//! without the chain knowing it. With [`crate::BlockTime::External`] the
//! chain seals nothing on its own: the engine asks the proposer to
//! [`ConsensusHost::propose`] a block from its pool, every validator
//! [`ConsensusHost::check`]s a proposed block by re-executing it on its own
//! head before voting, and a decided block is [`ConsensusHost::commit`]ted
//! with its commit certificate in one storage transaction.
//!
//! A block travels as its header's RLP, the RLP list of its raw signed
//! transactions, and the RLP string of the previous block's commit certificate
//! (empty when it carries none) ([`encode_block`]); its id is the header's
//! hash, and the header binds the certificate (see [`crate::Seal`]).

use std::sync::Arc;

use alloy_rlp::{Decodable, Encodable};
use primitives::block::Header;
use primitives::consensus::CommitCertificate;
use primitives::{B256, Bytes, SignedTransaction};
use runtime::staking::{StakingRead, ValidatorSetRecord};
use storage::BlockRecord;

use crate::producer::{self, BuiltBlock, Seal};
use crate::{Chain, ChainError, Core};

/// The largest encoded block a validator proposes or accepts.
pub const MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// How far past this node's clock a proposed block's timestamp may be, in seconds.
pub const MAX_FUTURE_SECS: u64 = 15;

/// Built blocks kept (proposed here or checked) until one of them is decided.
const MAX_PENDING_BLOCKS: usize = 64;

/// A block this node built as proposer.
#[derive(Clone, Debug)]
pub struct ProposedBlock {
    pub number: u64,
    /// The block's id: its header's hash.
    pub hash: B256,
    /// [`encode_block`]'s bytes.
    pub bytes: Vec<u8>,
}

/// What a consensus engine asks of the chain. [`Chain`] implements it.
pub trait ConsensusHost: Send + Sync + 'static {
    fn chain_id(&self) -> u64;
    /// The committed head's number: consensus decides the height above it.
    fn committed_height(&self) -> u64;
    /// The lowest height whose block this node can serve to peers that sync.
    fn earliest_height(&self) -> Result<u64, ChainError>;
    /// The validators that decide `height`: staking's set as it stands after
    /// block `height - 1`, so a change made in a block takes effect at the next height.
    fn validator_set(&self, height: u64) -> Result<ValidatorSetRecord, ChainError>;
    /// Build the block for `height` (the head's next) from the pool, without committing it.
    fn propose(&self, height: u64) -> Result<ProposedBlock, ChainError>;
    /// Check a proposed block for `height` by re-executing it on the head;
    /// its id when it is valid.
    fn check(&self, height: u64, bytes: &[u8]) -> Result<B256, ChainError>;
    /// Commit the decided block `block` (proposed here or checked) with its certificate.
    fn commit(&self, height: u64, block: B256, certificate: &CommitCertificate) -> Result<(), ChainError>;
    /// A committed block's bytes and certificate, for peers that sync.
    fn decided(&self, height: u64) -> Result<Option<(Vec<u8>, CommitCertificate)>, ChainError>;
}

/// A block as validators exchange it.
#[derive(Clone, Debug)]
pub struct WireBlock {
    pub header: Header,
    pub txs: Vec<Bytes>,
    /// The previous block's commit certificate the block carries.
    pub last_commit: Option<CommitCertificate>,
}

/// The bytes of a block as validators exchange it.
pub fn encode_block(header: &Header, txs: &[Bytes], last_commit: Option<&CommitCertificate>) -> Vec<u8> {
    let mut out = Vec::new();
    header.encode(&mut out);
    txs.to_vec().encode(&mut out);
    Bytes::from(last_commit.map(CommitCertificate::encode).unwrap_or_default()).encode(&mut out);
    out
}

/// Decode [`encode_block`]'s bytes, refusing anything oversized, malformed or trailing.
pub fn decode_block(bytes: &[u8]) -> Result<WireBlock, String> {
    if bytes.len() > MAX_BLOCK_BYTES {
        return Err(format!("block of {} bytes exceeds {MAX_BLOCK_BYTES}", bytes.len()));
    }
    let mut buf = bytes;
    let header = Header::decode(&mut buf).map_err(|e| format!("block header: {e}"))?;
    let txs = Vec::<Bytes>::decode(&mut buf).map_err(|e| format!("block transactions: {e}"))?;
    let cert = Bytes::decode(&mut buf).map_err(|e| format!("block's last commit: {e}"))?;
    if !buf.is_empty() {
        return Err("block has trailing bytes".into());
    }
    let last_commit = if cert.is_empty() {
        None
    } else {
        Some(CommitCertificate::decode(&cert).map_err(|e| format!("block's last commit: {e}"))?)
    };
    Ok(WireBlock { header, txs, last_commit })
}

/// Check `cert` against the validator set that decided its height: every
/// signature by a distinct member over the certificate's precommit bytes, and
/// the signers holding more than two thirds of the set's power. Returns the
/// signers' power. This is what a light client does with `ol_getCommit`.
pub fn verify_certificate(cert: &CommitCertificate, set: &ValidatorSetRecord, chain_id: u64) -> Result<u128, String> {
    let power = |i: usize| u128::try_from(set.powers[i] / primitives::U256::from(primitives::ONE_OPEN)).unwrap_or(0);
    let total: u128 = (0..set.operators.len()).map(power).sum();
    let msg = cert.sign_bytes(chain_id);
    let mut seen = std::collections::BTreeSet::new();
    let mut signed = 0u128;
    for s in &cert.signatures {
        let i = set
            .operators
            .iter()
            .position(|o| *o == s.validator)
            .ok_or_else(|| format!("{} signed but is not in the validator set", s.validator))?;
        if !seen.insert(s.validator) {
            return Err(format!("{} signed twice", s.validator));
        }
        keys::verify_consensus(&set.consensusKeys[i], &msg, &s.signature)
            .map_err(|_| format!("{}'s signature does not verify", s.validator))?;
        signed += power(i);
    }
    if signed * 3 <= total * 2 {
        return Err(format!("signers hold {signed} of {total} voting power, not more than two thirds"));
    }
    Ok(signed)
}

impl Core {
    /// Keep `built` until a block of its height is committed.
    fn keep_built(&self, built: BuiltBlock) {
        let mut pending = self.pending.lock().unwrap();
        if pending.len() >= MAX_PENDING_BLOCKS
            && let Some(oldest) = pending.keys().next().copied()
        {
            pending.remove(&oldest);
        }
        pending.insert((built.record.header.number, built.record.hash), built);
    }
}

impl ConsensusHost for Chain {
    fn chain_id(&self) -> u64 {
        self.core.chain_id()
    }

    fn committed_height(&self) -> u64 {
        self.core.head().header.number
    }

    fn earliest_height(&self) -> Result<u64, ChainError> {
        let snap = self.core.store.snapshot()?;
        Ok(if snap.header(1)?.is_some() { 1 } else { snap.head()?.unwrap_or(0) + 1 })
    }

    fn validator_set(&self, height: u64) -> Result<ValidatorSetRecord, ChainError> {
        let snap = self.core.store.snapshot()?;
        Ok(snap.validator_set_at(height.saturating_sub(1))?)
    }

    fn propose(&self, height: u64) -> Result<ProposedBlock, ChainError> {
        let core = &self.core;
        let _guard = core.producing.lock().unwrap();
        let head = core.head();
        expect_next(&head.header, height)?;
        let last_commit = match core.store.snapshot()?.certificate(height - 1)? {
            Some(b) => Some(decode_certificate(&b)?),
            None => None,
        };
        let built = producer::build_from_pool(core, &head, Seal::Bft { last_commit: last_commit.as_ref() })?;
        if !built.rejected.is_empty() {
            let mut pool = core.pool.lock().unwrap();
            for h in &built.rejected {
                pool.remove(h);
            }
        }
        let raw: Vec<Bytes> = built.record.txs.iter().map(|t| t.raw.clone()).collect();
        let proposed = ProposedBlock {
            number: height,
            hash: built.record.hash,
            bytes: encode_block(&built.record.header, &raw, last_commit.as_ref()),
        };
        core.keep_built(built);
        Ok(proposed)
    }

    fn check(&self, height: u64, bytes: &[u8]) -> Result<B256, ChainError> {
        let core = &self.core;
        let invalid = |what: String| ChainError::InvalidBlock { block: height, what };
        let WireBlock { header, txs: raw, last_commit } = decode_block(bytes).map_err(invalid)?;
        let hash = header.hash_slow();
        if core.pending.lock().unwrap().contains_key(&(height, hash)) {
            return Ok(hash);
        }
        let _guard = core.producing.lock().unwrap();
        let head = core.head();
        expect_next(&head.header, height)?;
        if header.number != height || header.parent_hash != head.hash {
            return Err(invalid(format!("block {} does not extend the head {}", header.number, head.hash)));
        }
        if header.timestamp < head.header.timestamp {
            return Err(invalid("timestamp before its parent's".into()));
        }
        if header.timestamp > producer::now_secs().saturating_add(MAX_FUTURE_SECS) {
            return Err(invalid(format!("timestamp {} is in the future", header.timestamp)));
        }
        if raw.len() > core.cfg.max_txs_per_block {
            return Err(invalid(format!("{} transactions, more than {}", raw.len(), core.cfg.max_txs_per_block)));
        }
        let txs: Vec<Arc<SignedTransaction>> = raw
            .iter()
            .map(|r| SignedTransaction::decode(r, core.chain_id()).map(Arc::new))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("transaction: {e}")))?;
        if let Some(c) = &last_commit {
            self.check_last_commit(height, &head.hash, c).map_err(invalid)?;
        }
        let snap = core.store.snapshot()?;
        let built = producer::build_block(
            &core.store,
            &snap,
            core.chain_id(),
            &head.header,
            head.hash,
            header.timestamp,
            &txs,
            true,
            Seal::Bft { last_commit: last_commit.as_ref() },
        )
        .map_err(|e| match e {
            ChainError::Diverged { what, .. } => invalid(what),
            e => e,
        })?;
        if built.record.hash != hash {
            return Err(invalid(format!(
                "re-executed block {} differs from the proposed {hash} (state root {} vs {})",
                built.record.hash, built.record.header.state_root, header.state_root
            )));
        }
        core.keep_built(built);
        Ok(hash)
    }

    fn commit(&self, height: u64, block: B256, certificate: &CommitCertificate) -> Result<(), ChainError> {
        let core = &self.core;
        let _guard = core.producing.lock().unwrap();
        let head = core.head();
        if head.header.number >= height {
            // Decided twice (a replayed decision after a restart): already ours, or a fork.
            let snap = core.store.snapshot()?;
            return match snap.header(height)? {
                Some(h) if h.hash_slow() == block => Ok(()),
                _ => Err(ChainError::InvalidBlock {
                    block: height,
                    what: format!("{block} conflicts with the committed block"),
                }),
            };
        }
        expect_next(&head.header, height)?;
        let mut built = core.pending.lock().unwrap().remove(&(height, block)).ok_or_else(|| {
            ChainError::InvalidBlock { block: height, what: format!("decided block {block} was never checked here") }
        })?;
        built.record.certificate = Some(certificate.encode());
        let record: BlockRecord = built.record;
        core.store.commit(&record, built.update)?;
        core.pending.lock().unwrap().retain(|(n, _), _| *n > height);
        producer::after_commit(core, &record, &built.rejected)
    }

    fn decided(&self, height: u64) -> Result<Option<(Vec<u8>, CommitCertificate)>, ChainError> {
        let snap = self.core.store.snapshot()?;
        let (Some(header), Some(body), Some(cert)) =
            (snap.header(height)?, snap.body(height)?, snap.certificate(height)?)
        else {
            return Ok(None);
        };
        let cert = decode_certificate(&cert)?;
        let last_commit = match snap.last_commit(height)? {
            Some(b) => Some(decode_certificate(&b)?),
            None => None,
        };
        let raw: Vec<Bytes> = body.into_iter().map(|t| t.raw).collect();
        Ok(Some((encode_block(&header, &raw, last_commit.as_ref()), cert)))
    }
}

impl Chain {
    /// The commit certificate of block `number`, if consensus decided it: the
    /// one the next block carries (what every node holds alike), else the one
    /// this node stored when it decided the block.
    pub fn certificate(&self, number: u64) -> Result<Option<CommitCertificate>, ChainError> {
        let snap = self.core.store.snapshot()?;
        match snap.last_commit(number + 1)?.or(snap.certificate(number)?) {
            None => Ok(None),
            Some(b) => Ok(Some(decode_certificate(&b)?)),
        }
    }

    /// A carried certificate must prove the head: height `height - 1`, the
    /// head's hash, signed by more than two thirds of that height's set.
    fn check_last_commit(&self, height: u64, head: &B256, c: &CommitCertificate) -> Result<(), String> {
        if c.height + 1 != height || c.block_hash != *head {
            return Err(format!("its last commit is for block {} at {}, not the head", c.block_hash, c.height));
        }
        let set = self.validator_set(c.height).map_err(|e| e.to_string())?;
        verify_certificate(c, &set, self.chain_id()).map(|_| ()).map_err(|e| format!("its last commit: {e}"))
    }
}

fn decode_certificate(b: &[u8]) -> Result<CommitCertificate, ChainError> {
    Ok(CommitCertificate::decode(b).map_err(|e| storage::StorageError::Tree(format!("certificate: {e}")))?)
}

/// Consensus works on the head's next height only.
fn expect_next(head: &Header, height: u64) -> Result<(), ChainError> {
    if height != head.number + 1 {
        return Err(ChainError::InvalidBlock {
            block: height,
            what: format!("the head is {}; only {} can be built or checked", head.number, head.number + 1),
        });
    }
    Ok(())
}
