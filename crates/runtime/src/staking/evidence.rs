//! Double-sign evidence: two messages a validator signed for the same height
//! and round (and vote kind) but different values prove that it equivocated.
//! Anyone may submit them; staking rebuilds the signed bytes
//! (`primitives::consensus`), checks both signatures against the consensus key
//! the validator held in the set that decided that height
//! ([`StakingRead::deciding_set`]: a key rotated later does not help it), then
//! slashes `staking.double_sign_slash_ppm`, jails it for good and tombstones
//! it; the sender gets the reporter's share.
//!
//! The slash takes its fraction of the stake the operator has when the
//! evidence lands (self bond, delegations, unbondings still in their
//! cooldown), as every slash does: stake bonded after the fault pays too, and
//! stake whose unbonding was released before the evidence escapes, which is
//! why `staking.evidence_max_age` should stay below `staking.unbonding_blocks`.

use alloy_primitives::{B256, Bytes};
use primitives::Address;
use primitives::abi::{IStaking, SignedProposal, SignedVote};

use super::{StakingRead, params, slash, state_key};
use crate::context::{CallCtx, CallFail};
use crate::params::ParamsRead;
use crate::{Overlay, revert};

/// The kind under which evidence of a double proposal is recorded (votes use
/// their `primitives::consensus::VoteKind::code`, 1 and 2).
pub const PROPOSAL_KIND: u8 = 0;

/// Gas of one ed25519 verification.
pub const VERIFY_GAS: u64 = 50_000;
/// Gas of a report: the checks and the set lookup, two verifications and the slash.
pub const REPORT_GAS: u64 = 20_000 + 2 * VERIFY_GAS + super::calls::SLASH_GAS;

/// One signed message of a pair, reduced to what the checks compare.
pub(super) struct Signed {
    height: u64,
    round: u32,
    kind: u8,
    value: Option<B256>,
    bytes: Vec<u8>,
    signature: Bytes,
}

impl Signed {
    /// A vote signed on chain `chain_id`.
    pub(super) fn vote(v: SignedVote, chain_id: u64) -> Result<Signed, CallFail> {
        let bytes = v.sign_bytes(chain_id).ok_or_else(|| {
            revert(IStaking::InvalidEvidence {
                reason: format!("vote kind {} is neither 1 (prevote) nor 2 (precommit)", v.kind),
            })
        })?;
        Ok(Signed {
            height: v.height,
            round: v.round,
            kind: v.kind,
            value: v.value_id(),
            bytes,
            signature: v.signature,
        })
    }

    /// A proposal signed on chain `chain_id` (its proof-of-lock round is signed but not compared).
    pub(super) fn proposal(p: SignedProposal, chain_id: u64) -> Signed {
        let bytes = p.sign_bytes(chain_id);
        Signed {
            height: p.height,
            round: p.round,
            kind: PROPOSAL_KIND,
            value: Some(p.value),
            bytes,
            signature: p.signature,
        }
    }
}

/// Check `a` and `b` as proof that `operator` double-signed and, if they are,
/// slash, jail and tombstone it, paying the sender the reporter's share.
pub(super) fn report(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    operator: &Address,
    a: Signed,
    b: Signed,
    reason: &str,
) -> Result<(), CallFail> {
    if (a.height, a.round, a.kind) != (b.height, b.round, b.kind) || a.value == b.value {
        return Err(revert(IStaking::EvidenceNotConflicting {}));
    }
    let (height, round, kind) = (a.height, a.round, a.kind);
    check_height(st, height, ctx.env.number)?;
    let key = state_key::evidence(operator, height, round, kind);
    if st.get(&key)?.is_some() {
        return Err(revert(IStaking::EvidenceAlreadySubmitted { operator: *operator, height, round, kind }));
    }
    // One tombstone per validator: evidence of its other faults adds nothing.
    if st.tombstoned(operator)? {
        return Err(revert(IStaking::Tombstoned { operator: *operator }));
    }
    let set = st.deciding_set(height)?;
    let pos = set.operators.iter().position(|o| o == operator);
    let Some(consensus_key) = pos.and_then(|i| set.consensusKeys.get(i).copied()) else {
        return Err(revert(IStaking::NotInValidatorSet { operator: *operator, height }));
    };
    for (index, m) in [(0u8, &a), (1, &b)] {
        verify(&consensus_key, &m.bytes, &m.signature)
            .map_err(|()| revert(IStaking::BadEvidenceSignature { index }))?;
    }
    st.put(key, Some(vec![1]));
    st.put(state_key::tombstone(operator), Some(vec![1]));
    let rate = u32::try_from(st.param(&params::STAKING_DOUBLE_SIGN_SLASH_PPM)?).unwrap_or(u32::MAX);
    let reporter = ctx.sender;
    slash(st, ctx, operator, rate, u64::MAX, reason, &reporter)?;
    ctx.emit(super::ADDRESS, &IStaking::DoubleSignReported { operator: *operator, height, round, kind, reporter });
    Ok(())
}

/// Evidence is judged for heights `1..=now` no older than `staking.evidence_max_age`.
fn check_height(st: &Overlay, height: u64, now: u64) -> Result<(), CallFail> {
    if height == 0 {
        return Err(revert(IStaking::InvalidEvidence { reason: "height 0 is the genesis: nobody signs it".into() }));
    }
    if height > now {
        return Err(revert(IStaking::EvidenceFromFuture { height, current: now }));
    }
    let max_age = u64::try_from(st.param(&params::STAKING_EVIDENCE_MAX_AGE)?).unwrap_or(u64::MAX);
    let oldest = now.saturating_sub(max_age);
    if height < oldest {
        return Err(revert(IStaking::EvidenceTooOld { height, oldestAccepted: oldest }));
    }
    Ok(())
}

/// Whether `signature` (64 bytes) by `key` is valid over `msg`, by the same
/// (non-strict) ed25519 check the consensus engine accepts votes with, so every
/// signature that counted in consensus counts as evidence.
fn verify(key: &B256, msg: &[u8], signature: &[u8]) -> Result<(), ()> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| ())?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| ())?;
    ed25519_dalek::Verifier::verify(&vk, msg, &sig).map_err(|_| ())
}
