//! `attribution`: challenges of posted attribution records (Proof of
//! Attribution's second line of defence; the records themselves are posted to
//! `inference`).
//!
//! 1. **Challenge.** Within a record's challenge window
//!    (`inference.challenge_window_blocks` after posting) anyone bonds at least
//!    `attribution.challenge_bond` (doubled for every 32 open challenges:
//!    [`required_bond`]) and names the record they computed instead.
//!    The record's credits cannot be finalized while the challenge is open.
//! 2. **Reveal.** The operator that posted the record has
//!    `attribution.reveal_blocks` to reveal the record's canonical bytes (their
//!    blake3 must be the posted record hash) and the prompt's token ids. Without
//!    a reveal anyone resolves the challenge against it (`resolveUnrevealed`).
//! 3. **Verdict.** The validators' verifier services recompute the record
//!    from public inputs and sign `verdict_digest(chain, receipt, openedAt,
//!    recordCorrect)` with their consensus keys (ed25519). Anyone submits
//!    signatures; they count by the power of the validator-set snapshot in force
//!    when the challenge opened, and more than two thirds of that power decides.
//!    Without a verdict within `attribution.verdict_blocks` the challenge lapses.
//!
//! The set that judges is the snapshot in force when the challenge opened, as
//! it stood before that block ([`judging_set`]): staking writes a block's
//! snapshot at its end, so both the total power (read at `challenge`) and the
//! signers (counted at `submitVerdict`) come from one snapshot no later
//! transaction can change.
//!
//! Outcomes:
//! - **wrong or unrevealed record**: the operator is slashed
//!   `attribution.challenge_slash_ppm` of its stake (and jailed
//!   `attribution.challenge_jail_blocks`) through staking, which pays the
//!   challenger the reporter's share (`staking.slash_reporter_bps`); the bond
//!   goes back to the challenger; the record's pending credits are replaced by
//!   the fallback (the data share pro rata to the model's Datanet versions'
//!   rows), because the verifiers agree on "wrong", not on one replacement
//!   record (the gradient part matches only within a tolerance);
//! - **right record**: the bond is forfeited to the validators' reward pool
//!   (the verifiers did the work), the credits stand and finalize as usual;
//! - **lapsed** (no verdict in time): the bond goes back and the credits do
//!   not stand: they are replaced by the fallback, since a record no two thirds
//!   of the validators vouched for cannot keep a data share it was challenged
//!   on. A lapsed challenge is closed and never blocks another one.
//!
//! The module's balance is exactly the bonds it holds.

mod calls;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use primitives::abi::IAttribution::{self, IAttributionCalls};
use primitives::abi::{AttributionChallenge, Overflow, verdict_digest};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};

use crate::bank::BankWrite;
use crate::codec::store;
use crate::context::{CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::inference::{InferenceRead, InferenceWrite, POSTED};
use crate::params::ParamsRead;
use crate::staking::StakingWrite;
use crate::{Overlay, revert};
pub use records::*;
pub use view::AttributionRead;

pub const ADDRESS: Address = Module::Attribution.address();
/// Most unresolved challenges at once (the `awaitingVerdict` view returns them all).
pub const MAX_OPEN: usize = 256;
/// The least bond doubles for every this many open challenges.
pub const BOND_DOUBLING: usize = 32;

/// The least bond of a challenge opened while `open` are open: the governed
/// bond doubled for every [`BOND_DOUBLING`] of them, so filling the slots to
/// block challenges costs far more than it could gain (a challenge of a right
/// record forfeits its bond).
pub fn required_bond(base: u128, open: usize) -> u128 {
    base.saturating_mul(1u128 << (open / BOND_DOUBLING).min(64))
}

/// Most signatures in one `submitVerdict`.
pub const MAX_SIGNATURES: usize = 128;

pub const AWAITING_REVEAL: u8 = 1;
pub const AWAITING_VERDICT: u8 = 2;
/// The record was wrong: the operator was slashed.
pub const UPHELD: u8 = 3;
/// The record was right: the bond was forfeited.
pub const REJECTED: u8 = 4;
/// The operator revealed nothing in time: slashed.
pub const DEFAULTED: u8 = 5;
/// No verdict in time: the bond went back.
pub const LAPSED: u8 = 6;

/// Gas of resolving against the operator: a slash (staking walks the
/// operator's delegations) and the fallback payout.
const LOSE_GAS: u64 = 600_000;
/// Gas of replacing a record's credits by the fallback (inference's fallback payout).
const FALLBACK_GAS: u64 = 400_000;

/// The validator set that judges a challenge opened at `opened_at`: the last
/// snapshot written before that block (staking writes a block's snapshot in its
/// end-of-block hook), so it is fixed before the challenge exists.
pub fn judging_set(
    st: &(impl crate::staking::StakingRead + ?Sized),
    opened_at: u64,
) -> Result<crate::staking::ValidatorSetRecord, primitives::state::StateError> {
    st.validator_set_at(opened_at.saturating_sub(1))
}

fn get(st: &Overlay, h: &B256) -> Result<AttributionChallenge, CallFail> {
    st.challenge(h)?.ok_or_else(|| revert(IAttribution::NoChallenge { receiptHash: *h }))
}

/// The challenge of `h`, if it is in `status`.
fn in_status(st: &Overlay, h: &B256, status: u8) -> Result<AttributionChallenge, CallFail> {
    let ch = get(st, h)?;
    if ch.status != status {
        return Err(revert(IAttribution::WrongChallengeStatus { receiptHash: *h, status: ch.status }));
    }
    Ok(ch)
}

fn set_bonds(st: &mut Overlay, a: Amount) {
    store(st, state_key::bonds(), &a.0);
}

fn close(st: &mut Overlay, h: &B256) -> Result<(), CallFail> {
    let mut open = st.open_challenges()?;
    open.retain(|x| x != h);
    store(st, state_key::open(), &open);
    st.put(state_key::revealed(h), None);
    Ok(())
}

/// Pay the bond back to the challenger (or forfeit it) and close the challenge.
fn settle_bond(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    h: &B256,
    c: &AttributionChallenge,
    forfeit: bool,
) -> Result<u128, CallFail> {
    let bonds = st.bonds()?.checked_sub(Amount(c.bond)).map_err(|_| revert(Overflow {}))?;
    set_bonds(st, bonds);
    close(st, h)?;
    if forfeit {
        st.deposit_rewards(ctx, &ADDRESS, Amount(c.bond), "validators")?;
        Ok(0)
    } else {
        st.transfer(&ADDRESS, &c.challenger, Amount(c.bond))?;
        Ok(c.bond)
    }
}

/// The operator lost (wrong or unrevealed record): slash it, reward the
/// challenger, return the bond, and pay the hold by the fallback instead.
fn operator_loses(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    h: &B256,
    c: &mut AttributionChallenge,
    status: u8,
) -> Result<(), CallFail> {
    let ppm = st.param(&params::ATTRIBUTION_CHALLENGE_SLASH_PPM)? as u32;
    let jail = u64::try_from(st.param(&params::ATTRIBUTION_CHALLENGE_JAIL_BLOCKS)?).unwrap_or(u64::MAX);
    let slashed = st.slash(ctx, &c.operator, ppm, jail, "wrong attribution record", &c.challenger)?;
    st.replace_pending(ctx, h, B256::ZERO, &[])?;
    c.status = status;
    store(st, state_key::challenge(h), &*c);
    let returned = settle_bond(st, ctx, h, c, false)?;
    ctx.emit(
        ADDRESS,
        &IAttribution::ChallengeResolved {
            receiptHash: *h,
            status,
            slashed: slashed.to_u256(),
            bondReturned: returned,
        },
    );
    Ok(())
}

/// Attribution challenges as a system module.
pub struct Attribution;

impl SystemModule for Attribution {
    type Calls = IAttributionCalls;
    calls!(IAttributionCalls {
        challenge,
        reveal,
        submitVerdict,
        resolveUnrevealed,
        resolveLapsed,
        challengeOf,
        revealed,
        awaitingVerdict,
        verdictDigest,
        bonds,
        challengeBond
    });
}
