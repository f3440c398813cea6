//! Our Context for Malachite: which types stand for heights, values, votes,
//! proposals and validators, and how a proposer is chosen.

use malachitebft_core_types::{self as mc, LinearTimeouts, NilOrVal, Round, VoteType};

use crate::messages::{Extension, Proposal, ProposalPart, Vote};
use crate::signing::Ed25519;
use crate::types::{BlockId, Height, ValidatorAddress};
use crate::validator_set::{Validator, ValidatorSet};

/// OpenLedger's consensus context. It holds nothing: the chain id lives with
/// the signer and verifier, the validator set with each height's parameters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct OlContext;

impl mc::Context for OlContext {
    type Address = ValidatorAddress;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = Extension;
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(&self, validator_set: &'a ValidatorSet, height: Height, round: Round) -> &'a Validator {
        validator_set.proposer(height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> Proposal {
        Proposal { height, round, value, pol_round, proposer: address }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote { kind: VoteType::Prevote, height, round, value: value_id, validator: address, extension: None }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote { kind: VoteType::Precommit, height, round, value: value_id, validator: address, extension: None }
    }
}
