//! Downtime: at the beginning of a block decided by consensus, staking reads
//! who signed the previous block's commit certificate (`BlockEnv::last_commit`)
//! and records, for every validator of the set that decided that height
//! ([`StakingRead::deciding_set`]), whether it signed, in a sliding window of
//! the last `staking.downtime_window` heights (a bitmap and a count per
//! validator: O(validators) work a block, bounded by `staking.max_validators`).
//!
//! A validator is judged once it has been tracked for a full window without a
//! gap: one that missed more than `staking.downtime_max_missed_ppm` of the
//! window is slashed `staking.downtime_slash_ppm`, jailed for
//! `staking.downtime_jail_blocks` and its window starts over (it may `unjail`
//! after the jail). Blocks sealed without consensus (`last_commit` `None`, the
//! dev sealer) change nothing. Signers outside the set are ignored: the chain
//! layer verifies the certificate, the runtime trusts the block env.
//!
//! Slashes made here emit their `Slashed` events into no receipt (block hooks
//! have none); the operator's `SlashRecord` (reason "downtime") is their trace.

use alloy_primitives::U256;
use primitives::{Address, Amount, ONE_OPEN};

use super::{ADDRESS, LivenessRecord, StakingRead, params, slash, state_key};
use crate::codec::{load, store};
use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::params::ParamsRead;
use crate::{Overlay, revert};

/// Record the last commit of `env` (if the block was decided by consensus)
/// and slash and jail the validators that missed too much of their window.
pub(super) fn account_last_commit(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
    let Some(commit) = &env.last_commit else {
        return Ok(());
    };
    // A certificate of another height (or of the genesis) is no account of the
    // block before: the chain layer never builds one, and it is not judged.
    if commit.height == 0 || commit.height.checked_add(1) != Some(env.number) {
        return Ok(());
    }
    let window = u64::try_from(st.param(&params::STAKING_DOWNTIME_WINDOW)?).unwrap_or(u64::MAX).max(1);
    let max_ppm = st.param(&params::STAKING_DOWNTIME_MAX_MISSED_PPM)?;
    let max_missed = u128::from(window) * max_ppm / 1_000_000;
    let mut signers = commit.signers.clone();
    signers.sort_unstable();
    let set = st.deciding_set(commit.height)?;
    let mut down = vec![];
    for (operator, power) in set.operators.iter().zip(&set.powers) {
        // The consensus engine counts power in whole OPEN: a member with less
        // has none and is never asked to sign.
        if *power < U256::from(ONE_OPEN) {
            continue;
        }
        let signed = signers.binary_search(operator).is_ok();
        if let Some(missed) = record(st, operator, commit.height, window, signed)?
            && u128::from(missed) > max_missed
        {
            down.push(*operator);
        }
    }
    for operator in down {
        jail_for_downtime(st, env, &operator)?;
    }
    Ok(())
}

/// Record whether `operator` signed height `h`; returns its missed count once
/// it has been tracked for a full window, `None` before (or if it is jailed:
/// it is not tracked then, and its window starts over when it is back).
fn record(st: &mut Overlay, operator: &Address, h: u64, window: u64, signed: bool) -> Result<Option<u32>, CallFail> {
    let key = state_key::liveness(operator);
    if st.operator(operator)?.is_none_or(|op| op.jailed) {
        st.put(key, None);
        return Ok(None);
    }
    let bitmap_len = usize::try_from(window.div_ceil(8)).unwrap_or(usize::MAX);
    let mut r = load::<LivenessRecord>(st, &key)?
        .filter(|r| r.window == window && r.last.checked_add(1) == Some(h) && r.bitmap.len() == bitmap_len)
        .unwrap_or_else(|| LivenessRecord {
            window,
            since: h,
            last: h - 1,
            missed: 0,
            bitmap: vec![0u8; bitmap_len].into(),
        });
    let i = usize::try_from(h % window).unwrap_or(0);
    let (byte, bit) = (i / 8, 1u8 << (i % 8));
    let mut bitmap = r.bitmap.to_vec();
    // The bit holds height `h - window` (or nothing, in a fresh window): it
    // leaves the window now. A miss that leaves for a signature, or the reverse,
    // moves the count.
    let was_missed = bitmap[byte] & bit != 0;
    if was_missed == signed {
        bitmap[byte] ^= bit;
        r.missed = if signed { r.missed.saturating_sub(1) } else { r.missed.saturating_add(1) };
    }
    r.bitmap = bitmap.into();
    r.last = h;
    let full = h.saturating_sub(r.since) + 1 >= window;
    let missed = r.missed;
    store(st, key, &r);
    Ok(full.then_some(missed))
}

/// Slash and jail `operator` for downtime; its window starts over.
fn jail_for_downtime(st: &mut Overlay, env: &BlockEnv, operator: &Address) -> Result<(), CallFail> {
    let ppm = u32::try_from(st.param(&params::STAKING_DOWNTIME_SLASH_PPM)?).unwrap_or(u32::MAX);
    let jail = u64::try_from(st.param(&params::STAKING_DOWNTIME_JAIL_BLOCKS)?).unwrap_or(u64::MAX);
    let mut ctx = CallCtx { env, sender: ADDRESS, value: Amount::ZERO, logs: vec![], calls: vec![] };
    slash(st, &mut ctx, operator, ppm, jail, "downtime", &Address::ZERO)?;
    st.put(state_key::liveness(operator), None);
    Ok(())
}

/// The operator's missed heights and heights tracked in its current window.
pub(super) fn liveness_of(st: &Overlay, operator: &Address) -> Result<(u32, u64), CallFail> {
    if st.operator(operator)?.is_none() {
        return Err(revert(primitives::abi::IStaking::NotOperator { account: *operator }));
    }
    Ok(st.liveness(operator)?.map(|r| (r.missed, (r.last.saturating_sub(r.since) + 1).min(r.window))).unwrap_or((0, 0)))
}
