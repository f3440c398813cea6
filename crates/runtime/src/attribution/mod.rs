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

pub mod records;
pub mod state_key;
pub mod view;

use alloy_sol_types::SolCall;
use primitives::abi::IAttribution::{self, IAttributionCalls};
use primitives::abi::{AttributionChallenge, Overflow, verdict_digest};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, U256};

use crate::bank::BankWrite;
use crate::codec::store;
use crate::context::{CallCtx, CallFail};
use crate::inference::{InferenceRead, InferenceWrite, POSTED};
use crate::params::{self, ParamsRead};
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

/// Gas charged on top of intrinsic gas (which prices calldata by the byte, so a
/// reveal pays for its record and prompt).
///
/// | function | gas |
/// |---|---|
/// | `challenge` | 80,000 |
/// | `reveal` | 60,000 + 8 per revealed byte (stored until the verdict) |
/// | `submitVerdict` | 60,000 + 50,000 per signature (ed25519 verification) + 600,000 (resolution) |
/// | `resolveUnrevealed` | 60,000 + 600,000 |
/// | `resolveLapsed` | 60,000 + 400,000 (the fallback payout) |
/// | views | 5,000 |
pub fn gas_cost(call: &IAttributionCalls) -> u64 {
    use IAttributionCalls::*;
    match call {
        challenge(_) => 80_000,
        reveal(c) => 60_000 + 8 * (c.record.len() + c.prompt.len()) as u64,
        submitVerdict(c) => 60_000 + 50_000 * c.signatures.len() as u64 + LOSE_GAS,
        resolveUnrevealed(_) => 60_000 + LOSE_GAS,
        resolveLapsed(_) => 60_000 + FALLBACK_GAS,
        challengeOf(_) | revealed(_) | awaitingVerdict(_) | verdictDigest(_) | bonds(_) | challengeBond(_) => 5_000,
    }
}

pub fn decode(input: &[u8]) -> Result<IAttributionCalls, CallFail> {
    crate::executor::decode_calls::<IAttributionCalls>(input)
}

fn get(st: &Overlay, h: &B256) -> Result<AttributionChallenge, CallFail> {
    st.challenge(h)?.ok_or_else(|| revert(IAttribution::NoChallenge { receiptHash: *h }))
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

pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IAttributionCalls) -> Result<Bytes, CallFail> {
    use IAttributionCalls as C;
    let height = ctx.env.number;
    let sender = ctx.sender;
    Ok(match call {
        C::challenge(c) => {
            let h = c.receiptHash;
            let not = |reason: &str| revert(IAttribution::NotChallengeable { receiptHash: h, reason: reason.into() });
            let hold = st.hold(&h)?.ok_or_else(|| revert(IAttribution::UnknownReceipt { receiptHash: h }))?;
            if st.challenge(&h)?.is_some_and(|c| c.status != LAPSED) {
                return Err(revert(IAttribution::ChallengeExists { receiptHash: h }));
            }
            if hold.status != POSTED {
                return Err(not(
                    "no posted record with credits awaits finalization (not posted yet, finalized, or paid by the fallback)",
                ));
            }
            let window = u64::try_from(st.param(&params::INFERENCE_CHALLENGE_WINDOW_BLOCKS)?).unwrap_or(u64::MAX);
            if height >= hold.postedAt.saturating_add(window) {
                return Err(not(&format!(
                    "the challenge window closed at block {}",
                    hold.postedAt.saturating_add(window)
                )));
            }
            let mut open = st.open_challenges()?;
            let min = required_bond(st.param(&params::ATTRIBUTION_CHALLENGE_BOND)?, open.len());
            if ctx.value.0 < min {
                return Err(revert(IAttribution::BondTooSmall {
                    required: U256::from(min),
                    given: ctx.value.to_u256(),
                }));
            }
            if open.len() >= MAX_OPEN {
                return Err(revert(IAttribution::TooManyChallenges { max: U256::from(MAX_OPEN) }));
            }
            let set = judging_set(&*st, height)?;
            let total: U256 = set.powers.iter().fold(U256::ZERO, |a, p| a + *p);
            let reveal_by =
                height.saturating_add(u64::try_from(st.param(&params::ATTRIBUTION_REVEAL_BLOCKS)?).unwrap_or(u64::MAX));
            let rec = AttributionChallenge {
                challenger: sender,
                bond: ctx.value.0,
                challengerRecordHash: c.challengerRecordHash,
                operator: hold.operator,
                openedAt: height,
                revealBy: reveal_by,
                verdictBy: 0,
                status: AWAITING_REVEAL,
                totalPower: total,
                powerRecordCorrect: U256::ZERO,
                powerRecordWrong: U256::ZERO,
                signers: vec![],
            };
            store(st, state_key::challenge(&h), &rec);
            open.push(h);
            store(st, state_key::open(), &open);
            let bonds = st.bonds()?.checked_add(ctx.value).map_err(|_| revert(Overflow {}))?;
            set_bonds(st, bonds);
            ctx.emit(
                ADDRESS,
                &IAttribution::ChallengeOpened {
                    receiptHash: h,
                    challenger: sender,
                    operator: hold.operator,
                    bond: ctx.value.0,
                    challengerRecordHash: c.challengerRecordHash,
                    revealBy: reveal_by,
                },
            );
            IAttribution::challengeCall::abi_encode_returns(&IAttribution::challengeReturn {}).into()
        }
        C::reveal(c) => {
            let h = c.receiptHash;
            let mut ch = get(st, &h)?;
            if ch.status != AWAITING_REVEAL {
                return Err(revert(IAttribution::WrongChallengeStatus { receiptHash: h, status: ch.status }));
            }
            if sender != ch.operator {
                return Err(revert(IAttribution::NotChallengedOperator { caller: sender }));
            }
            if height > ch.revealBy {
                return Err(revert(IAttribution::RevealClosed { receiptHash: h, revealBy: ch.revealBy }));
            }
            let hold = st.hold(&h)?.ok_or_else(|| revert(IAttribution::UnknownReceipt { receiptHash: h }))?;
            if primitives::content_hash(&c.record) != hold.recordHash {
                return Err(revert(IAttribution::RevealMismatch {
                    reason: "the record's blake3 is not the posted record hash".into(),
                }));
            }
            if c.prompt.len() % 4 != 0 {
                return Err(revert(IAttribution::RevealMismatch {
                    reason: "the prompt must be token ids, 4 bytes each (u32 little-endian)".into(),
                }));
            }
            ch.status = AWAITING_VERDICT;
            ch.verdictBy = height
                .saturating_add(u64::try_from(st.param(&params::ATTRIBUTION_VERDICT_BLOCKS)?).unwrap_or(u64::MAX));
            store(st, state_key::challenge(&h), &ch);
            store(st, state_key::revealed(&h), &Revealed { record: c.record.clone(), prompt: c.prompt.clone() });
            ctx.emit(
                ADDRESS,
                &IAttribution::RecordRevealed {
                    receiptHash: h,
                    record: c.record,
                    prompt: c.prompt,
                    verdictBy: ch.verdictBy,
                },
            );
            IAttribution::revealCall::abi_encode_returns(&IAttribution::revealReturn {}).into()
        }
        C::submitVerdict(c) => {
            let h = c.receiptHash;
            let mut ch = get(st, &h)?;
            if ch.status != AWAITING_VERDICT {
                return Err(revert(IAttribution::WrongChallengeStatus { receiptHash: h, status: ch.status }));
            }
            if height > ch.verdictBy {
                return Err(revert(IAttribution::VerdictClosed { receiptHash: h, verdictBy: ch.verdictBy }));
            }
            if c.consensusKeys.len() != c.signatures.len()
                || c.signatures.is_empty()
                || c.signatures.len() > MAX_SIGNATURES
            {
                return Err(revert(IAttribution::BadVerdictSignature {
                    index: U256::ZERO,
                    reason: format!("one signature per key, 1 to {MAX_SIGNATURES} of them"),
                }));
            }
            let set = judging_set(&*st, ch.openedAt)?;
            let digest = verdict_digest(ctx.env.chain_id, h, ch.openedAt, c.recordCorrect);
            for (i, (key, sig)) in c.consensusKeys.iter().zip(&c.signatures).enumerate() {
                let bad = |reason: &str| {
                    revert(IAttribution::BadVerdictSignature { index: U256::from(i), reason: reason.into() })
                };
                let Some(pos) = set.consensusKeys.iter().position(|k| k == key) else {
                    return Err(bad("the key is not in the validator set the challenge is judged by"));
                };
                if ch.signers.contains(key) {
                    return Err(bad("this validator has already signed a verdict"));
                }
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| bad("not an ed25519 key"))?;
                let sig =
                    ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad("not a 64-byte ed25519 signature"))?;
                vk.verify_strict(digest.as_slice(), &sig).map_err(|_| bad("the signature does not verify"))?;
                ch.signers.push(*key);
                let p = set.powers[pos];
                if c.recordCorrect {
                    ch.powerRecordCorrect += p
                } else {
                    ch.powerRecordWrong += p
                }
                ctx.emit(
                    ADDRESS,
                    &IAttribution::VerdictSigned { receiptHash: h, consensusKey: *key, recordCorrect: c.recordCorrect },
                );
            }
            let decided = |p: U256| p * U256::from(3) > ch.totalPower * U256::from(2);
            if decided(ch.powerRecordWrong) {
                operator_loses(st, ctx, &h, &mut ch, UPHELD)?;
            } else if decided(ch.powerRecordCorrect) {
                ch.status = REJECTED;
                store(st, state_key::challenge(&h), &ch);
                settle_bond(st, ctx, &h, &ch, true)?;
                ctx.emit(
                    ADDRESS,
                    &IAttribution::ChallengeResolved {
                        receiptHash: h,
                        status: REJECTED,
                        slashed: U256::ZERO,
                        bondReturned: 0,
                    },
                );
            } else {
                store(st, state_key::challenge(&h), &ch);
            }
            IAttribution::submitVerdictCall::abi_encode_returns(&IAttribution::submitVerdictReturn {}).into()
        }
        C::resolveUnrevealed(c) => {
            let h = c.receiptHash;
            let mut ch = get(st, &h)?;
            if ch.status != AWAITING_REVEAL {
                return Err(revert(IAttribution::WrongChallengeStatus { receiptHash: h, status: ch.status }));
            }
            if height <= ch.revealBy {
                return Err(revert(IAttribution::RevealOpen { receiptHash: h, revealBy: ch.revealBy }));
            }
            operator_loses(st, ctx, &h, &mut ch, DEFAULTED)?;
            IAttribution::resolveUnrevealedCall::abi_encode_returns(&IAttribution::resolveUnrevealedReturn {}).into()
        }
        C::resolveLapsed(c) => {
            let h = c.receiptHash;
            let mut ch = get(st, &h)?;
            if ch.status != AWAITING_VERDICT {
                return Err(revert(IAttribution::WrongChallengeStatus { receiptHash: h, status: ch.status }));
            }
            if height <= ch.verdictBy {
                return Err(revert(IAttribution::VerdictOpen { receiptHash: h, verdictBy: ch.verdictBy }));
            }
            ch.status = LAPSED;
            store(st, state_key::challenge(&h), &ch);
            st.replace_pending(ctx, &h, B256::ZERO, &[])?;
            let returned = settle_bond(st, ctx, &h, &ch, false)?;
            ctx.emit(
                ADDRESS,
                &IAttribution::ChallengeResolved {
                    receiptHash: h,
                    status: LAPSED,
                    slashed: U256::ZERO,
                    bondReturned: returned,
                },
            );
            IAttribution::resolveLapsedCall::abi_encode_returns(&IAttribution::resolveLapsedReturn {}).into()
        }
        C::challengeOf(c) => IAttribution::challengeOfCall::abi_encode_returns(&get(st, &c.receiptHash)?).into(),
        C::revealed(c) => {
            let r = st
                .revealed(&c.receiptHash)?
                .ok_or_else(|| revert(IAttribution::NoChallenge { receiptHash: c.receiptHash }))?;
            IAttribution::revealedCall::abi_encode_returns(&IAttribution::revealedReturn {
                record: r.record,
                prompt: r.prompt,
            })
            .into()
        }
        C::awaitingVerdict(_) => {
            let mut v = Vec::new();
            for h in st.open_challenges()? {
                if st.challenge(&h)?.is_some_and(|c| c.status == AWAITING_VERDICT) {
                    v.push(h);
                }
            }
            IAttribution::awaitingVerdictCall::abi_encode_returns(&v).into()
        }
        C::verdictDigest(c) => {
            let ch = get(st, &c.receiptHash)?;
            IAttribution::verdictDigestCall::abi_encode_returns(&verdict_digest(
                ctx.env.chain_id,
                c.receiptHash,
                ch.openedAt,
                c.recordCorrect,
            ))
            .into()
        }
        C::bonds(_) => IAttribution::bondsCall::abi_encode_returns(&st.bonds()?.0).into(),
        C::challengeBond(_) => {
            let b = required_bond(st.param(&params::ATTRIBUTION_CHALLENGE_BOND)?, st.open_challenges()?.len());
            IAttribution::challengeBondCall::abi_encode_returns(&U256::from(b)).into()
        }
    })
}
