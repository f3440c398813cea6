//! The bytes a validator signs with its ed25519 consensus key.
//!
//! A vote or a proposal is signed over a canonical, domain-separated encoding
//! defined here and nowhere else, so that whoever holds two signed messages (the
//! runtime checking double-sign evidence, a light client checking a commit
//! certificate) can rebuild the signed bytes without knowing the consensus
//! engine's wire codecs.
//!
//! Layout (integers big-endian, fixed widths):
//! ```text
//! vote:     "openledger/consensus/vote/v1"     ‖ chain_id u64 ‖ height u64 ‖ round u32 ‖ kind u8 ‖ value
//! proposal: "openledger/consensus/proposal/v1" ‖ chain_id u64 ‖ height u64 ‖ round u32 ‖ pol_round ‖ value_id[32]
//! value     = 0x00 (nil) | 0x01 ‖ block_id[32]
//! pol_round = 0x00 (none) | 0x01 ‖ round u32
//! ```
//! Every field has a fixed width or a tag, so no two different messages share
//! their bytes, and the domain tags (which differ in length and content) keep
//! a vote's bytes from ever being a proposal's.

use alloy_primitives::{Address, B256};

/// Domain tag of a vote's signed bytes.
pub const VOTE_DOMAIN: &[u8] = b"openledger/consensus/vote/v1";
/// Domain tag of a proposal's signed bytes.
pub const PROPOSAL_DOMAIN: &[u8] = b"openledger/consensus/proposal/v1";

/// The two votes of a Tendermint round.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    /// The byte that stands for the kind in signed bytes.
    pub fn code(self) -> u8 {
        match self {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        }
    }

    /// The kind a byte stands for, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(VoteKind::Prevote),
            2 => Some(VoteKind::Precommit),
            _ => None,
        }
    }
}

/// The bytes a validator signs for a vote of `kind` at `height` and `round`,
/// for the block `value_id`, or for nil when `value_id` is `None`.
pub fn vote_sign_bytes(chain_id: u64, height: u64, round: u32, kind: VoteKind, value_id: Option<B256>) -> Vec<u8> {
    let mut out = Vec::with_capacity(VOTE_DOMAIN.len() + 8 + 8 + 4 + 1 + 33);
    out.extend_from_slice(VOTE_DOMAIN);
    out.extend_from_slice(&chain_id.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&round.to_be_bytes());
    out.push(kind.code());
    match value_id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_slice());
        }
    }
    out
}

/// The bytes a proposer signs for proposing the block `value_id` at `height`
/// and `round`; `pol_round` is the round of the proof-of-lock it re-proposes
/// from, `None` for a fresh value.
pub fn proposal_sign_bytes(chain_id: u64, height: u64, round: u32, pol_round: Option<u32>, value_id: B256) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROPOSAL_DOMAIN.len() + 8 + 8 + 4 + 5 + 32);
    out.extend_from_slice(PROPOSAL_DOMAIN);
    out.extend_from_slice(&chain_id.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&round.to_be_bytes());
    match pol_round {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&r.to_be_bytes());
        }
    }
    out.extend_from_slice(value_id.as_slice());
    out
}

/// The most signatures a commit certificate may carry (one per validator).
pub const MAX_COMMIT_SIGNATURES: usize = 1024;

/// Magic and version of an encoded [`CommitCertificate`].
const CERTIFICATE_TAG: &[u8] = b"olcc\x01";

/// One validator's precommit signature in a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitSignature {
    /// The validator's operator address (how staking names it).
    pub validator: Address,
    pub signature: [u8; 64],
}

/// Proof that a block was decided: the precommits for it, at one height and
/// round, of validators holding more than two thirds of that height's power.
/// Each signature is over [`vote_sign_bytes`]`(chain_id, height, round,
/// Precommit, Some(block_hash))`, so anyone holding the height's validator set
/// (staking's `validatorSetAt`) checks it without the engine's codecs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCertificate {
    pub height: u64,
    pub round: u32,
    pub block_hash: B256,
    pub signatures: Vec<CommitSignature>,
}

/// Why bytes are not a commit certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a commit certificate (bad tag or version)")]
    BadTag,
    #[error("commit certificate truncated")]
    Truncated,
    #[error("commit certificate has {0} signatures, more than {MAX_COMMIT_SIGNATURES}")]
    TooManySignatures(usize),
    #[error("commit certificate has trailing bytes")]
    Trailing,
}

impl CommitCertificate {
    /// The bytes every signer signed.
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        vote_sign_bytes(chain_id, self.height, self.round, VoteKind::Precommit, Some(self.block_hash))
    }

    /// Canonical encoding: tag ‖ height u64 ‖ round u32 ‖ block hash ‖ count u32 ‖
    /// (address[20] ‖ signature[64])*, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CERTIFICATE_TAG.len() + 48 + 84 * self.signatures.len());
        out.extend_from_slice(CERTIFICATE_TAG);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(self.block_hash.as_slice());
        out.extend_from_slice(&(self.signatures.len() as u32).to_be_bytes());
        for s in &self.signatures {
            out.extend_from_slice(s.validator.as_slice());
            out.extend_from_slice(&s.signature);
        }
        out
    }

    /// Decode [`CommitCertificate::encode`]'s bytes, refusing anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertificateError> {
        let rest = bytes.strip_prefix(CERTIFICATE_TAG).ok_or(CertificateError::BadTag)?;
        let mut r = Reader(rest);
        let height = u64::from_be_bytes(r.take()?);
        let round = u32::from_be_bytes(r.take()?);
        let block_hash = B256::from(r.take::<32>()?);
        let n = u32::from_be_bytes(r.take()?) as usize;
        if n > MAX_COMMIT_SIGNATURES {
            return Err(CertificateError::TooManySignatures(n));
        }
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            let validator = Address::from(r.take::<20>()?);
            signatures.push(CommitSignature { validator, signature: r.take::<64>()? });
        }
        if !r.0.is_empty() {
            return Err(CertificateError::Trailing);
        }
        Ok(CommitCertificate { height, round, block_hash, signatures })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CertificateError> {
        if self.0.len() < N {
            return Err(CertificateError::Truncated);
        }
        let (head, tail) = self.0.split_at(N);
        self.0 = tail;
        Ok(head.try_into().expect("split at N"))
    }
}

impl crate::abi::SignedVote {
    /// A vote as `IStaking.reportDoubleVote` carries it.
    pub fn new(height: u64, round: u32, kind: VoteKind, value_id: Option<B256>, signature: [u8; 64]) -> Self {
        Self {
            height,
            round,
            kind: kind.code(),
            hasValue: value_id.is_some(),
            value: value_id.unwrap_or_default(),
            signature: signature.to_vec().into(),
        }
    }

    /// The block id voted for, `None` for nil (whatever `value` holds then).
    pub fn value_id(&self) -> Option<B256> {
        self.hasValue.then_some(self.value)
    }

    /// The bytes the vote's signer signed on chain `chain_id`; `None` if `kind` names no vote kind.
    pub fn sign_bytes(&self, chain_id: u64) -> Option<Vec<u8>> {
        let kind = VoteKind::from_code(self.kind)?;
        Some(vote_sign_bytes(chain_id, self.height, self.round, kind, self.value_id()))
    }
}

impl crate::abi::SignedProposal {
    /// A proposal as `IStaking.reportDoubleProposal` carries it.
    pub fn new(height: u64, round: u32, pol_round: Option<u32>, value_id: B256, signature: [u8; 64]) -> Self {
        Self {
            height,
            round,
            hasPolRound: pol_round.is_some(),
            polRound: pol_round.unwrap_or_default(),
            value: value_id,
            signature: signature.to_vec().into(),
        }
    }

    /// The proof-of-lock round, `None` for a fresh value (whatever `polRound` holds then).
    pub fn pol_round(&self) -> Option<u32> {
        self.hasPolRound.then_some(self.polRound)
    }

    /// The bytes the proposal's signer signed on chain `chain_id`.
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        proposal_sign_bytes(chain_id, self.height, self.round, self.pol_round(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_bytes_have_the_documented_layout() {
        let id = B256::repeat_byte(0xab);
        let b = vote_sign_bytes(31337, 7, 2, VoteKind::Precommit, Some(id));
        let (domain, rest) = b.split_at(VOTE_DOMAIN.len());
        assert_eq!(domain, VOTE_DOMAIN);
        assert_eq!(&rest[..8], &31337u64.to_be_bytes());
        assert_eq!(&rest[8..16], &7u64.to_be_bytes());
        assert_eq!(&rest[16..20], &2u32.to_be_bytes());
        assert_eq!(rest[20], 2);
        assert_eq!(rest[21], 1);
        assert_eq!(&rest[22..], id.as_slice());
        let nil = vote_sign_bytes(31337, 7, 2, VoteKind::Precommit, None);
        assert_eq!(nil.len(), VOTE_DOMAIN.len() + 22);
    }

    #[test]
    fn every_field_changes_the_vote_bytes() {
        let id = B256::repeat_byte(1);
        let base = vote_sign_bytes(1, 2, 3, VoteKind::Prevote, Some(id));
        let variants = [
            vote_sign_bytes(9, 2, 3, VoteKind::Prevote, Some(id)),
            vote_sign_bytes(1, 9, 3, VoteKind::Prevote, Some(id)),
            vote_sign_bytes(1, 2, 9, VoteKind::Prevote, Some(id)),
            vote_sign_bytes(1, 2, 3, VoteKind::Precommit, Some(id)),
            vote_sign_bytes(1, 2, 3, VoteKind::Prevote, None),
            vote_sign_bytes(1, 2, 3, VoteKind::Prevote, Some(B256::repeat_byte(2))),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    #[test]
    fn proposal_bytes_are_domain_separated_from_votes() {
        let id = B256::repeat_byte(1);
        let p = proposal_sign_bytes(1, 2, 3, None, id);
        assert!(p.starts_with(PROPOSAL_DOMAIN));
        assert_ne!(p, proposal_sign_bytes(1, 2, 3, Some(0), id));
        assert_ne!(proposal_sign_bytes(1, 2, 3, Some(0), id), proposal_sign_bytes(1, 2, 3, Some(1), id));
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            assert!(!vote_sign_bytes(1, 2, 3, kind, Some(id)).starts_with(PROPOSAL_DOMAIN));
        }
        assert!(!PROPOSAL_DOMAIN.starts_with(VOTE_DOMAIN) && !VOTE_DOMAIN.starts_with(PROPOSAL_DOMAIN));
    }

    #[test]
    fn evidence_structs_sign_what_the_functions_encode() {
        let id = B256::repeat_byte(7);
        let v = crate::abi::SignedVote::new(5, 1, VoteKind::Prevote, Some(id), [0; 64]);
        assert_eq!(v.sign_bytes(9), Some(vote_sign_bytes(9, 5, 1, VoteKind::Prevote, Some(id))));
        let mut nil = crate::abi::SignedVote::new(5, 1, VoteKind::Prevote, None, [0; 64]);
        nil.value = id;
        assert_eq!(nil.sign_bytes(9), Some(vote_sign_bytes(9, 5, 1, VoteKind::Prevote, None)), "nil ignores value");
        nil.kind = 3;
        assert_eq!(nil.sign_bytes(9), None);
        let p = crate::abi::SignedProposal::new(5, 1, Some(0), id, [0; 64]);
        assert_eq!(p.sign_bytes(9), proposal_sign_bytes(9, 5, 1, Some(0), id));
        let fresh =
            crate::abi::SignedProposal { polRound: 4, ..crate::abi::SignedProposal::new(5, 1, None, id, [0; 64]) };
        assert_eq!(fresh.sign_bytes(9), proposal_sign_bytes(9, 5, 1, None, id));
    }

    #[test]
    fn vote_kind_codes_round_trip() {
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            assert_eq!(VoteKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(VoteKind::from_code(0), None);
        assert_eq!(VoteKind::from_code(3), None);
    }
    #[test]
    fn certificates_round_trip_and_refuse_bad_bytes() {
        let cert = CommitCertificate {
            height: 9,
            round: 1,
            block_hash: B256::repeat_byte(3),
            signatures: vec![
                CommitSignature { validator: Address::repeat_byte(1), signature: [7; 64] },
                CommitSignature { validator: Address::repeat_byte(2), signature: [8; 64] },
            ],
        };
        let bytes = cert.encode();
        assert_eq!(CommitCertificate::decode(&bytes), Ok(cert.clone()));
        assert_eq!(CommitCertificate::decode(&bytes[..bytes.len() - 1]), Err(CertificateError::Truncated));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(CommitCertificate::decode(&long), Err(CertificateError::Trailing));
        assert_eq!(CommitCertificate::decode(b"nope"), Err(CertificateError::BadTag));
        let mut many = bytes[..CERTIFICATE_TAG.len() + 44].to_vec();
        many.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(CommitCertificate::decode(&many), Err(CertificateError::TooManySignatures(u32::MAX as usize)));
        assert_eq!(cert.sign_bytes(5), vote_sign_bytes(5, 9, 1, VoteKind::Precommit, Some(B256::repeat_byte(3))));
    }
}
