//! What validators say to each other: proposals, votes and proposal parts.
//!
//! Each signed message has its signed bytes in `primitives::consensus`
//! ([`Vote::sign_bytes`], [`Proposal::sign_bytes`]), so evidence of a double
//! sign is checked without this crate's codecs.

use alloy_primitives::B256;
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{self as mc, NilOrVal, Round, VoteType};
use primitives::consensus::{VoteKind, proposal_sign_bytes, vote_sign_bytes};

use crate::context::OlContext;
use crate::signing::{Signature, verify};
use crate::types::{BlockId, Height, ValidatorAddress, round_number};
use crate::validator_set::ValidatorSet;

/// The largest block a proposal part may carry. Larger parts are refused by
/// the codec before they are decoded, and never built.
pub const MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// A proposer's claim that `value` is the block for `height` and `round`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
}

impl Proposal {
    /// The bytes the proposer signs (see `primitives::consensus`).
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        proposal_sign_bytes(
            chain_id,
            self.height.0,
            round_number(self.round).unwrap_or(0),
            round_number(self.pol_round),
            self.value.0,
        )
    }
}

impl mc::Proposal<OlContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// A vote extension: opaque bytes a precommit may carry (unused so far:
/// heights run with extensions off).
pub type Extension = Vec<u8>;

/// A signed vote extension.
pub type SignedExtension = mc::SignedExtension<OlContext>;

/// A prevote or precommit by `validator` for `value` (a block id, or nil).
///
/// Equality leaves the extension out, as Malachite requires: the extension is
/// not part of the signed bytes, and a vote replayed from the WAL must equal
/// the one recorded whatever extension it carried.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub kind: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub validator: ValidatorAddress,
    pub extension: Option<SignedExtension>,
}

impl PartialEq for Vote {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.height, self.round, &self.value, self.validator)
            == (other.kind, other.height, other.round, &other.value, other.validator)
    }
}

impl Eq for Vote {}

impl Vote {
    /// The vote's kind as `primitives` names it.
    pub fn kind(&self) -> VoteKind {
        match self.kind {
            VoteType::Prevote => VoteKind::Prevote,
            VoteType::Precommit => VoteKind::Precommit,
        }
    }

    /// The bytes the validator signs (see `primitives::consensus`).
    pub fn sign_bytes(&self, chain_id: u64) -> Vec<u8> {
        let value: Option<B256> = match self.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(id) => Some(id.0),
        };
        vote_sign_bytes(chain_id, self.height.0, round_number(self.round).unwrap_or(0), self.kind(), value)
    }
}

impl mc::Vote<OlContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.kind
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension) -> Self {
        Self { extension: Some(extension), ..self }
    }
}

/// A whole proposed block in one part, signed by its proposer.
///
/// Parts are gossiped and relayed by any peer, so a part authenticates itself:
/// `signature` is the proposer's signature over the proposal's signed bytes
/// (the same bytes as the `Proposal` message's), checked by [`crate::verify_part`]
/// before the block is looked at.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalPart {
    pub height: Height,
    pub round: Round,
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
    pub value: BlockId,
    /// The encoded block, at most [`MAX_BLOCK_BYTES`].
    pub block: Vec<u8>,
    pub signature: Signature,
}

impl ProposalPart {
    /// The proposal this part carries the block of.
    pub fn proposal(&self) -> Proposal {
        Proposal {
            height: self.height,
            round: self.round,
            value: self.value,
            pol_round: self.pol_round,
            proposer: self.proposer,
        }
    }
}

/// Why a proposal part was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("part for height {height} round {round} is from {from}, but the proposer is {proposer}")]
    NotTheProposer { height: Height, round: Round, from: ValidatorAddress, proposer: ValidatorAddress },
    #[error("part from {0} has a bad signature")]
    BadSignature(ValidatorAddress),
    #[error("part carries a block of {0} bytes, over the limit")]
    BlockTooLarge(usize),
}

impl ProposalPart {
    /// Check that the part comes from the proposer `validators` choose for its
    /// height and round, signed by that proposer's key, with a bounded block.
    /// What the block holds is the application's to check.
    pub fn verify(&self, validators: &ValidatorSet, chain_id: u64) -> Result<(), PartError> {
        if self.block.len() > MAX_BLOCK_BYTES {
            return Err(PartError::BlockTooLarge(self.block.len()));
        }
        let proposer = validators.proposer(self.height, self.round);
        if proposer.address != self.proposer {
            return Err(PartError::NotTheProposer {
                height: self.height,
                round: self.round,
                from: self.proposer,
                proposer: proposer.address,
            });
        }
        if !verify(&proposer.public_key, &self.proposal().sign_bytes(chain_id), &self.signature) {
            return Err(PartError::BadSignature(self.proposer));
        }
        Ok(())
    }
}

impl mc::ProposalPart<OlContext> for ProposalPart {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    fn vote(value: NilOrVal<BlockId>) -> Vote {
        Vote {
            kind: VoteType::Precommit,
            height: Height(3),
            round: Round::new(1),
            value,
            validator: ValidatorAddress(Address::repeat_byte(1)),
            extension: None,
        }
    }

    #[test]
    fn vote_sign_bytes_are_primitives_bytes() {
        let id = BlockId(B256::repeat_byte(5));
        assert_eq!(vote(NilOrVal::Val(id)).sign_bytes(7), vote_sign_bytes(7, 3, 1, VoteKind::Precommit, Some(id.0)));
        assert_eq!(vote(NilOrVal::Nil).sign_bytes(7), vote_sign_bytes(7, 3, 1, VoteKind::Precommit, None));
    }

    #[test]
    fn proposal_sign_bytes_are_primitives_bytes() {
        let p = Proposal {
            height: Height(4),
            round: Round::new(2),
            value: BlockId(B256::repeat_byte(6)),
            pol_round: Round::Nil,
            proposer: ValidatorAddress(Address::repeat_byte(2)),
        };
        assert_eq!(p.sign_bytes(9), proposal_sign_bytes(9, 4, 2, None, p.value.0));
        let relocked = Proposal { pol_round: Round::new(1), ..p.clone() };
        assert_eq!(relocked.sign_bytes(9), proposal_sign_bytes(9, 4, 2, Some(1), p.value.0));
    }
}
