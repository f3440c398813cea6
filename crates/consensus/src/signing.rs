//! ed25519 signing with the consensus keys staking registers.
//!
//! Our own scheme rather than Malachite's `signing-ed25519`: that crate's
//! signature type has no borsh encoding (and the orphan rule forbids adding
//! one here), and it verifies with `ed25519-consensus` where the rest of the
//! node (`keys::verify_consensus`, the runtime's checks) uses `ed25519-dalek`'s
//! `verify`. One library means the engine and the runtime accept exactly the
//! same signatures.

use async_trait::async_trait;
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Verifier as _, VerifyingKey};
use keys::ConsensusKey;
use malachitebft_core_types::{self as mc, SignedMessage, ValidatorProof, VoteExtensionScope};
use malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};

use crate::context::OlContext;
use crate::messages::{Extension, Proposal, ProposalPart, Vote};
use crate::types::round_number;

/// Domain tag of a vote extension's signed bytes (extensions are off for now;
/// the engine still asks for a signer of them).
pub const VOTE_EXTENSION_DOMAIN: &[u8] = b"openledger/consensus/vote-extension/v1";

/// An ed25519 signature.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// A key or signature that is not ed25519.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodingError {
    #[error("an ed25519 signature is 64 bytes, got {0}")]
    SignatureLength(usize),
    #[error("not an ed25519 public key")]
    PublicKey,
}

/// The signing scheme of our Context: ed25519 over `ed25519-dalek`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = KeyDecodingError;
    type Signature = Signature;
    type PublicKey = VerifyingKey;
    type PrivateKey = ConsensusKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, KeyDecodingError> {
        let raw: [u8; 64] = bytes.try_into().map_err(|_| KeyDecodingError::SignatureLength(bytes.len()))?;
        Ok(Signature(raw))
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey, KeyDecodingError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| KeyDecodingError::PublicKey)?;
        VerifyingKey::from_bytes(&raw).map_err(|_| KeyDecodingError::PublicKey)
    }

    fn encode_public_key(public_key: &VerifyingKey) -> Vec<u8> {
        public_key.to_bytes().to_vec()
    }
}

/// Whether `signature` by `public_key` over `msg` is valid (the same rule as
/// `keys::verify_consensus`).
pub fn verify(public_key: &VerifyingKey, msg: &[u8], signature: &Signature) -> bool {
    public_key.verify(msg, &ed25519_dalek::Signature::from_bytes(&signature.0)).is_ok()
}

/// The bytes a validator signs for a vote extension: bound to the precommit's
/// height, round, value and validator, and length-prefixed.
pub fn vote_extension_sign_bytes(chain_id: u64, scope: &VoteExtensionScope<OlContext>, extension: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(VOTE_EXTENSION_DOMAIN.len() + 8 + 8 + 4 + 32 + 20 + 4 + extension.len());
    out.extend_from_slice(VOTE_EXTENSION_DOMAIN);
    out.extend_from_slice(&chain_id.to_be_bytes());
    out.extend_from_slice(&scope.height.0.to_be_bytes());
    out.extend_from_slice(&round_number(scope.round).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(scope.value_id.0.as_slice());
    out.extend_from_slice(scope.validator_address.0.as_slice());
    out.extend_from_slice(&(extension.len() as u32).to_be_bytes());
    out.extend_from_slice(extension);
    out
}

/// Signs a validator's votes, proposals and parts with its consensus key.
#[derive(Clone)]
pub struct ConsensusSigner {
    key: ConsensusKey,
    chain_id: u64,
    nil_prevotes: bool,
}

impl ConsensusSigner {
    pub fn new(key: ConsensusKey, chain_id: u64) -> Self {
        Self { key, chain_id, nil_prevotes: false }
    }

    /// A Byzantine signer, for the fault harness only: every prevote it signs
    /// is for nil, whatever the engine voted. Run beside an honest process with
    /// the same key, it makes that validator sign two different prevotes for
    /// the same height and round, which peers catch and `staking` slashes.
    pub fn byzantine_nil_prevotes(mut self) -> Self {
        self.nil_prevotes = true;
        self
    }

    /// The verifying key peers check this signer's messages with.
    pub fn public_key(&self) -> VerifyingKey {
        ed25519_dalek::SigningKey::from_bytes(&self.key.seed()).verifying_key()
    }

    fn sign_bytes(&self, msg: &[u8]) -> Signature {
        Signature(self.key.sign(msg))
    }

    /// Sign the proposal a part carries: the part then authenticates itself.
    pub fn sign_part(&self, part: &mut ProposalPart) {
        part.signature = self.sign_bytes(&part.proposal().sign_bytes(self.chain_id));
    }
}

#[async_trait]
impl Signer<OlContext> for ConsensusSigner {
    async fn sign_vote(&self, mut vote: Vote) -> Result<SignedMessage<OlContext, Vote>, SigningError> {
        if self.nil_prevotes && vote.kind == malachitebft_core_types::VoteType::Prevote {
            vote.value = malachitebft_core_types::NilOrVal::Nil;
        }
        let signature = self.sign_bytes(&vote.sign_bytes(self.chain_id));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<OlContext, Proposal>, SigningError> {
        let signature = self.sign_bytes(&proposal.sign_bytes(self.chain_id));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<OlContext>,
        extension: Extension,
    ) -> Result<SignedMessage<OlContext, Extension>, SigningError> {
        let signature = self.sign_bytes(&vote_extension_sign_bytes(self.chain_id, &scope, &extension));
        Ok(SignedMessage::new(extension, signature))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<OlContext>, SigningError> {
        // Malachite fixes this preimage ("PoV" ‖ lengths ‖ key ‖ peer id): it
        // cannot collide with our domain-tagged bytes, which start "openledger/".
        let signature = self.sign_bytes(&ValidatorProof::<OlContext>::signing_bytes(&public_key, &peer_id));
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// Checks signatures of votes, proposals and proofs against validators' keys.
#[derive(Copy, Clone, Debug)]
pub struct ConsensusVerifier {
    chain_id: u64,
}

impl ConsensusVerifier {
    pub fn new(chain_id: u64) -> Self {
        Self { chain_id }
    }
}

#[async_trait]
impl Verifier<OlContext> for ConsensusVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(verify(public_key, &vote.sign_bytes(self.chain_id), signature)))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(verify(public_key, &proposal.sign_bytes(self.chain_id), signature)))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<OlContext>,
        extension: &Extension,
        signature: &Signature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        let bytes = vote_extension_sign_bytes(self.chain_id, scope, extension);
        Ok(VerificationResult::from_bool(verify(public_key, &bytes, signature)))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<OlContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(raw) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let Ok(key) = VerifyingKey::from_bytes(&raw) else {
            return Ok(VerificationResult::Invalid);
        };
        let bytes = ValidatorProof::<OlContext>::signing_bytes(&proof.public_key, &proof.peer_id);
        Ok(VerificationResult::from_bool(verify(&key, &bytes, &proof.signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256};
    use malachitebft_core_types::{NilOrVal, Round, VoteType};

    use crate::messages::PartError;
    use crate::types::{BlockId, Height, ValidatorAddress};
    use crate::validator_set::{Validator, ValidatorSet};

    const CHAIN: u64 = 7;

    fn signer(i: u8) -> ConsensusSigner {
        ConsensusSigner::new(ConsensusKey::dev(&format!("v{i}")), CHAIN)
    }

    fn set() -> ValidatorSet {
        ValidatorSet::new((1..=3).map(|i| Validator {
            address: ValidatorAddress(Address::repeat_byte(i)),
            public_key: signer(i).public_key(),
            power: 1,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn votes_verify_under_their_key_and_chain_only() {
        let vote = Vote {
            kind: VoteType::Precommit,
            height: Height(2),
            round: Round::new(0),
            value: NilOrVal::Val(BlockId(B256::repeat_byte(1))),
            validator: ValidatorAddress(Address::repeat_byte(1)),
            extension: None,
        };
        let signed = signer(1).sign_vote(vote.clone()).await.unwrap();
        let ok = ConsensusVerifier::new(CHAIN);
        let key = signer(1).public_key();
        assert!(ok.verify_signed_vote(&vote, &signed.signature, &key).await.unwrap().is_valid());
        let other_chain = ConsensusVerifier::new(CHAIN + 1);
        assert!(other_chain.verify_signed_vote(&vote, &signed.signature, &key).await.unwrap().is_invalid());
        let nil = Vote { value: NilOrVal::Nil, ..vote.clone() };
        assert!(ok.verify_signed_vote(&nil, &signed.signature, &key).await.unwrap().is_invalid());
        let other_key = signer(2).public_key();
        assert!(ok.verify_signed_vote(&vote, &signed.signature, &other_key).await.unwrap().is_invalid());
        // The evidence path: primitives' bytes and keys' verification agree.
        let bytes = primitives::consensus::vote_sign_bytes(
            CHAIN,
            2,
            0,
            primitives::consensus::VoteKind::Precommit,
            Some(B256::repeat_byte(1)),
        );
        keys::verify_consensus(&B256::from(key.to_bytes()), &bytes, &signed.signature.0).unwrap();
    }

    #[tokio::test]
    async fn validator_proofs_bind_the_key_to_the_peer() {
        let s = signer(1);
        let key = s.public_key().to_bytes().to_vec();
        let proof = s.sign_validator_proof(key, b"peer".to_vec()).await.unwrap();
        let v = ConsensusVerifier::new(CHAIN);
        assert!(v.verify_validator_proof(&proof).await.unwrap().is_valid());
        let stolen = ValidatorProof::new(proof.public_key.clone(), b"other peer".to_vec(), proof.signature);
        assert!(v.verify_validator_proof(&stolen).await.unwrap().is_invalid());
        let garbled = ValidatorProof::new(vec![1, 2, 3], proof.peer_id.clone(), proof.signature);
        assert!(v.verify_validator_proof(&garbled).await.unwrap().is_invalid());
    }

    #[test]
    fn parts_verify_only_from_the_rounds_proposer() {
        let set = set();
        let proposer = set.proposer(Height(1), Round::new(0)).address;
        let i = proposer.0[0];
        let mut part = ProposalPart {
            height: Height(1),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer,
            value: BlockId(B256::repeat_byte(9)),
            block: vec![1, 2, 3],
            signature: Signature([0; 64]),
        };
        assert_eq!(part.verify(&set, CHAIN), Err(PartError::BadSignature(proposer)));
        signer(i).sign_part(&mut part);
        assert_eq!(part.verify(&set, CHAIN), Ok(()));
        let mut impostor = ProposalPart { proposer: ValidatorAddress(Address::repeat_byte(i % 3 + 1)), ..part.clone() };
        signer(i % 3 + 1).sign_part(&mut impostor);
        assert!(matches!(impostor.verify(&set, CHAIN), Err(PartError::NotTheProposer { .. })));
        let moved = ProposalPart { value: BlockId(B256::repeat_byte(8)), ..part };
        assert_eq!(moved.verify(&set, CHAIN), Err(PartError::BadSignature(proposer)));
    }
}
