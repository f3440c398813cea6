//! Equivocation the engine observed, as `staking` takes it: two signed votes
//! (or proposals) of one validator for the same height and round (and kind).
//!
//! The engine's `MisbehaviorEvidence` holds, per validator, the pairs of
//! conflicting messages its vote and proposal keepers saw; this turns each pair
//! into the arguments of `IStaking.reportDoubleVote` / `reportDoubleProposal`,
//! whose signed bytes are `primitives::consensus`'s.

use malachitebft_core_consensus::MisbehaviorEvidence;
use primitives::Address;
use primitives::abi::{SignedProposal, SignedVote};

use crate::context::OlContext;
use crate::messages::{Proposal, Vote};
use crate::types::round_number;
use crate::validator_set::ValidatorSet;

/// One proven equivocation, ready to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehavior {
    DoubleVote { operator: Address, a: SignedVote, b: SignedVote },
    DoubleProposal { operator: Address, a: SignedProposal, b: SignedProposal },
}

impl Misbehavior {
    /// (operator, height, round, kind) as `IStaking.evidenceSubmitted` names
    /// it: kind 0 for proposals, else the vote kind's code.
    pub fn key(&self) -> (Address, u64, u32, u8) {
        match self {
            Misbehavior::DoubleVote { operator, a, .. } => (*operator, a.height, a.round, a.kind),
            Misbehavior::DoubleProposal { operator, a, .. } => (*operator, a.height, a.round, 0),
        }
    }
}

fn signed_vote(v: &Vote, signature: [u8; 64]) -> SignedVote {
    let kind = v.kind();
    let value = match v.value {
        malachitebft_core_types::NilOrVal::Nil => None,
        malachitebft_core_types::NilOrVal::Val(id) => Some(id.0),
    };
    SignedVote::new(v.height.0, round_number(v.round).unwrap_or(0), kind, value, signature)
}

fn signed_proposal(p: &Proposal, signature: [u8; 64]) -> SignedProposal {
    SignedProposal::new(p.height.0, round_number(p.round).unwrap_or(0), round_number(p.pol_round), p.value.0, signature)
}

/// Every equivocation in `evidence` by a member of `set`.
pub fn misbehavior(evidence: &MisbehaviorEvidence<OlContext>, set: &ValidatorSet) -> Vec<Misbehavior> {
    let mut out = Vec::new();
    for v in set.validators() {
        let operator = v.address.0;
        for (a, b) in evidence.votes.get(&v.address).into_iter().flatten() {
            out.push(Misbehavior::DoubleVote {
                operator,
                a: signed_vote(&a.message, a.signature.0),
                b: signed_vote(&b.message, b.signature.0),
            });
        }
        for (a, b) in evidence.proposals.get(&v.address).into_iter().flatten() {
            out.push(Misbehavior::DoubleProposal {
                operator,
                a: signed_proposal(&a.message, a.signature.0),
                b: signed_proposal(&b.message, b.signature.0),
            });
        }
    }
    out
}
