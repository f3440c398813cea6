//! `staking`: bonded operators (validators and serving operators), delegation,
//! unbonding with a cooldown, rewards pro rata to stake with a commission,
//! slashing with jailing and recorded evidence, voting-power checkpoints for
//! governance, and validator-set snapshots by height.
//!
//! Rewards use two lazily settled indexes (no loop over stakers per deposit):
//! a pool index (reward per staked token) moves on every deposit; an operator
//! settles its share when touched, keeps its self-bond part and its commission
//! on the delegated part, and raises its delegators' index (reward per
//! delegation unit) by the rest. Every division rounds down; the dust stays in
//! staking's balance, so claims never exceed deposits.
//!
//! Slashing is lazy too (no loop over delegators or unbondings): delegations
//! and unbondings are held in units of their operator, worth
//! `units × slashFactor / SLASH_SCALE`. A slash of `f` multiplies the
//! operator's factor by `1 - f`, which lowers every delegation at once; it
//! records the new factor by height, so an unbonding is valued at the factor
//! of the last slash before its release; the units of unbondings still in
//! their cooldown are kept per operator (and leave that sum at their release,
//! from a per-height list the end of block reads), so the slash knows what
//! they are worth together. Voting power of the slashed delegations follows
//! within a bounded number of blocks (a sweep of at most
//! [`SWEEP_PER_BLOCK`] delegations per block) or at their next touch.
//!
//! The validator set is accountable: two conflicting messages a validator
//! signed are evidence anyone can submit ([`evidence`]: a slash, jail for good
//! and a tombstone), and the beginning of each block decided by consensus
//! counts who signed the previous block's certificate ([`liveness`]: a
//! validator that misses too much of a sliding window is slashed and jailed).

mod calls;
pub mod evidence;
pub mod genesis;
pub mod liveness;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use alloy_primitives::U256;
use alloy_sol_types::SolValue;
use primitives::abi::IStaking::{self, IStakingCalls};
use primitives::abi::Unauthorized;
use primitives::system::{Module, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Address, Amount, B256, Bytes};

use crate::bank::{BankRead, BankWrite};
use crate::codec::{IndexedList, IndexedSet, load, store};
use crate::context::{BlockEnv, CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::genesis::{Genesis, GenesisError};
use crate::params::ParamsRead;
use crate::{Overlay, revert};
pub use calls::MAX_PAGE;
pub use records::*;
pub use view::{StakingRead, StakingWrite};

pub const ADDRESS: Address = Module::Staking.address();
pub const ROLE_VALIDATOR: u8 = 1;
pub const ROLE_SERVING: u8 = 2;
/// Scale of the reward indexes.
pub fn index_scale() -> U256 {
    U256::from(10u8).pow(U256::from(36u8))
}
/// Scale of the slash factor: a unit is worth one token until the first slash.
pub fn slash_scale() -> U256 {
    U256::from(10u8).pow(U256::from(36u8))
}
/// Most pending unbondings per account.
pub const MAX_UNBONDINGS: usize = 16;
/// Delegations whose voting power the end of a block syncs after slashes.
pub const SWEEP_PER_BLOCK: u64 = 64;
const PPM: u128 = 1_000_000;

pub fn pool_role(name: &str) -> Option<u8> {
    match name {
        "validators" => Some(ROLE_VALIDATOR),
        "serving" => Some(ROLE_SERVING),
        _ => None,
    }
}

fn amt(v: U256) -> Result<Amount, CallFail> {
    Amount::from_u256(v).map_err(|_| revert(primitives::abi::Overflow {}))
}

fn stake_of_op(op: &OperatorRecord) -> U256 {
    op.selfBond + op.delegated
}

/// Whether an operator takes part in its pool (and, for validators, the validator set).
fn active(op: &OperatorRecord, min_self_bond: U256) -> bool {
    !op.jailed && op.selfBond >= min_self_bond
}

/// Credit an operator with its share of the pool since it was last settled,
/// on the stake it had counted in the pool meanwhile.
fn settle_operator(op: &mut OperatorRecord, pool: &PoolRecord) {
    if op.countedStake.is_zero() || pool.index <= op.lastPoolIndex {
        op.lastPoolIndex = op.lastPoolIndex.max(pool.index);
        return;
    }
    let stake = stake_of_op(op);
    let gross = op.countedStake * (pool.index - op.lastPoolIndex) / index_scale();
    op.lastPoolIndex = pool.index;
    if gross.is_zero() || stake.is_zero() {
        return;
    }
    let self_part = gross * op.selfBond / stake;
    let del_part = gross - self_part;
    let commission = del_part * U256::from(op.commissionBps) / U256::from(10_000u32);
    op.rewards += self_part + commission;
    if !op.delegatedUnits.is_zero() {
        op.delegatorIndex += (del_part - commission) * index_scale() / op.delegatedUnits;
    }
}

fn settle_delegation(op: &OperatorRecord, d: &mut DelegationRecord) {
    if op.delegatorIndex > d.lastIndex {
        d.rewards += d.units * (op.delegatorIndex - d.lastIndex) / index_scale();
    }
    d.lastIndex = op.delegatorIndex;
}

/// Tokens `units` of an operator are worth at slash factor `factor` (rounded down).
pub fn units_value(units: U256, factor: U256) -> U256 {
    units * factor / slash_scale()
}

/// Units worth `tokens` at slash factor `factor` (> 0), rounded down: what a bond or an unbonding gets.
fn units_for(tokens: U256, factor: U256) -> U256 {
    tokens * slash_scale() / factor
}

/// Units an unbonding of `tokens` burns at slash factor `factor` (> 0), rounded up:
/// the delegations left behind never lose to rounding.
fn units_to_burn(tokens: U256, factor: U256) -> U256 {
    (tokens * slash_scale()).div_ceil(factor)
}

/// `delegated` after `delegatedUnits` or `slashFactor` moved.
fn refresh_delegated(op: &mut OperatorRecord) {
    op.delegated = units_value(op.delegatedUnits, op.slashFactor);
}

/// The tokens a delegation is worth now.
pub fn delegation_value(op: &OperatorRecord, d: &DelegationRecord) -> U256 {
    units_value(d.units, op.slashFactor)
}

/// Bring the delegator's voting power to what the delegation is worth (after slashes).
fn sync_power(
    st: &mut Overlay,
    height: u64,
    op: &OperatorRecord,
    account: &Address,
    d: &mut DelegationRecord,
) -> Result<(), CallFail> {
    let v = delegation_value(op, d);
    if v < d.power {
        power_change(st, height, account, -1, d.power - v)?;
    } else {
        power_change(st, height, account, 1, v - d.power)?;
    }
    d.power = v;
    Ok(())
}

/// The slash factor that applies to an unbonding of `operator` released at
/// `release`: the factor after its last slash before that height.
fn factor_before(st: &Overlay, operator: &Address, release: u64) -> Result<U256, CallFail> {
    let list = IndexedList::new(state_key::slash_factors(operator));
    let i = list.partition_point::<SlashFactor>(st, |f| f.height < release)?;
    if i == 0 {
        return Ok(slash_scale());
    }
    Ok(list.get::<SlashFactor>(st, i - 1)?.map(|f| f.factor).unwrap_or_else(slash_scale))
}

/// Everything about to change for one operator, loaded and settled.
struct OpCtx {
    addr: Address,
    op: OperatorRecord,
    pool: PoolRecord,
}

fn load_op(st: &Overlay, addr: &Address) -> Result<OpCtx, CallFail> {
    let mut op = st.operator(addr)?.ok_or_else(|| revert(IStaking::NotOperator { account: *addr }))?;
    let pool = st.pool(op.role)?;
    settle_operator(&mut op, &pool);
    Ok(OpCtx { addr: *addr, op, pool })
}

/// Store a settled operator, recounting its stake in the pool's total.
fn save_op(st: &mut Overlay, c: &mut OpCtx) -> Result<(), CallFail> {
    let min = U256::from(st.param(&params::STAKING_MIN_SELF_BOND)?);
    let mut counts = active(&c.op, min);
    if c.op.role == ROLE_VALIDATOR {
        counts = update_membership(st, c, counts)?;
    }
    let counted = if counts { stake_of_op(&c.op) } else { U256::ZERO };
    c.pool.totalStake = c.pool.totalStake - c.op.countedStake + counted;
    c.op.countedStake = counted;
    store(st, state_key::operator(&c.addr), &c.op);
    if c.op.role == ROLE_VALIDATOR {
        // The end of the block snapshots the set again (only then: an unchanged
        // set costs the end-of-block hook one read).
        st.put(state_key::validator_set_dirty(), Some(vec![1]));
    }
    store(st, state_key::pool(c.op.role), &c.pool);
    Ok(())
}

/// Keep the validator set's membership for `c`, `eligible` (active) or not:
/// an eligible validator joins while there is room, or in place of the
/// smallest member it outweighs (at most `staking.max_validators` reads);
/// one no longer eligible leaves. Returns whether `c` is in the set.
fn update_membership(st: &mut Overlay, c: &mut OpCtx, eligible: bool) -> Result<bool, CallFail> {
    let set = IndexedSet::new(state_key::validator_members());
    let member = set.contains(st, &c.addr)?;
    if !eligible || member {
        if member && !eligible {
            set.remove(st, &c.addr)?;
        }
        return Ok(eligible);
    }
    let max = u64::try_from(st.param(&params::STAKING_MAX_VALIDATORS)?).unwrap_or(u64::MAX);
    if set.len(st)? >= max {
        let mut smallest: Option<(U256, Address, OperatorRecord)> = None;
        for a in set.members(st)? {
            let op = st.operator(&a)?.ok_or_else(|| revert(IStaking::NotOperator { account: a }))?;
            let stake = stake_of_op(&op);
            if smallest.as_ref().is_none_or(|(s, sa, _)| (stake, a) < (*s, *sa)) {
                smallest = Some((stake, a, op));
            }
        }
        match smallest {
            Some((stake, a, mut op)) if stake_of_op(&c.op) > stake => {
                // The smallest member waits outside the set from now on: it
                // stops counting in the pool (settled first, so it keeps what it earned).
                settle_operator(&mut op, &c.pool);
                c.pool.totalStake -= op.countedStake;
                op.countedStake = U256::ZERO;
                store(st, state_key::operator(&a), &op);
                set.remove(st, &a)?;
            }
            _ => return Ok(false),
        }
    }
    set.insert(st, &c.addr)?;
    Ok(true)
}

/// Record a checkpoint at `height` (one read and one or two writes: the list is indexed).
fn push_checkpoint(st: &mut Overlay, key: Vec<u8>, height: u64, delta: i8, amount: U256) -> Result<(), CallFail> {
    let list = IndexedList::new(key);
    let n = list.len(st)?;
    let last = if n == 0 { None } else { list.get::<Checkpoint>(st, n - 1)? };
    let cur = last.as_ref().map(|c| c.power).unwrap_or(U256::ZERO);
    let power = if delta >= 0 { cur + amount } else { cur.saturating_sub(amount) };
    match last {
        Some(c) if c.height == height => list.set(st, n - 1, &Checkpoint { height, power }),
        _ => {
            list.push(st, &Checkpoint { height, power })?;
        }
    }
    Ok(())
}

/// Record a change of `account`'s voting power (and the total) at `height`.
fn power_change(st: &mut Overlay, height: u64, account: &Address, delta: i8, amount: U256) -> Result<(), CallFail> {
    if amount.is_zero() {
        return Ok(());
    }
    push_checkpoint(st, state_key::power_checkpoints(account), height, delta, amount)?;
    push_checkpoint(st, state_key::total_power_checkpoints(), height, delta, amount)
}

/// Add `account` to `operator`'s delegators once (a membership key, so it is
/// O(1) however many delegate).
fn list_delegator(st: &mut Overlay, operator: &Address, account: &Address) -> Result<(), CallFail> {
    let member = state_key::delegator_listed(operator, account);
    if st.get(&member)?.is_none() {
        IndexedList::new(state_key::delegators(operator)).push(st, account)?;
        st.put(member, Some(vec![1]));
    }
    Ok(())
}

/// Distribute `amount`, already held by staking, to pool `role`; to the treasury if nobody stakes there.
fn distribute(st: &mut Overlay, ctx_logs: Option<&mut CallCtx>, role: u8, amount: Amount) -> Result<(), CallFail> {
    if amount == Amount::ZERO {
        return Ok(());
    }
    let mut pool = st.pool(role)?;
    if pool.totalStake.is_zero() {
        st.transfer(&ADDRESS, &TREASURY, amount)?;
        return Ok(());
    }
    pool.index += amount.to_u256() * index_scale() / pool.totalStake;
    store(st, state_key::pool(role), &pool);
    if let Some(ctx) = ctx_logs {
        let name = if role == ROLE_VALIDATOR { "validators" } else { "serving" };
        ctx.emit(ADDRESS, &IStaking::RewardsDeposited { pool: name.into(), amount: amount.to_u256() });
    }
    Ok(())
}

pub(crate) fn slash(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    operator: &Address,
    fraction_ppm: u32,
    jail_blocks: u64,
    reason: &str,
    reporter: &Address,
) -> Result<Amount, CallFail> {
    if fraction_ppm as u128 > PPM {
        return Err(revert(IStaking::InvalidFraction { fractionPpm: fraction_ppm }));
    }
    let height = ctx.env.number;
    let mut c = load_op(st, operator)?;
    let f = U256::from(fraction_ppm);
    let ppm = U256::from(PPM);
    // Self bond.
    let s = c.op.selfBond * f / ppm;
    c.op.selfBond -= s;
    power_change(st, height, operator, -1, s)?;
    // Delegations and unbondings in their cooldown: one new slash factor.
    let old = c.op.slashFactor;
    let new = if fraction_ppm as u128 == PPM || old.is_zero() {
        U256::ZERO
    } else {
        // Never zero short of a 100% slash: zero means tombstoned.
        (old * (ppm - f) / ppm).max(U256::from(1u8))
    };
    let delegated_before = c.op.delegated;
    c.op.slashFactor = new;
    refresh_delegated(&mut c.op);
    let x = delegated_before - c.op.delegated;
    let y = units_value(c.op.unbondingUnits, old) - units_value(c.op.unbondingUnits, new);
    if new != old {
        IndexedList::new(state_key::slash_factors(operator)).push(st, &SlashFactor { height, factor: new })?;
    }
    // The delegators' voting power follows at the end of blocks.
    let delegators = IndexedList::new(state_key::delegators(operator)).len(st)?;
    if !x.is_zero() && delegators > 0 {
        IndexedList::new(state_key::sweep_jobs())
            .push(st, &SweepJob { operator: *operator, next: 0, end: delegators })?;
    }
    let total = s + x + y;
    let mut jailed_until = c.op.jailedUntil;
    if jail_blocks > 0 {
        c.op.jailed = true;
        jailed_until = jailed_until.max(height.saturating_add(jail_blocks));
        c.op.jailedUntil = jailed_until;
    }
    save_op(st, &mut c)?;
    let total_amt = amt(total)?;
    let to_reporter = if *reporter == Address::ZERO {
        Amount::ZERO
    } else {
        total_amt
            .mul_div(st.param(&params::STAKING_SLASH_REPORTER_BPS)?, 10_000)
            .map_err(|_| revert(primitives::abi::Overflow {}))?
    };
    st.transfer(&ADDRESS, reporter, to_reporter)?;
    st.transfer(&ADDRESS, &TREASURY, Amount(total_amt.0 - to_reporter.0))?;
    IndexedList::new(state_key::slashes(operator)).push(
        st,
        &SlashRecord { height, fractionPpm: fraction_ppm, amount: total, reason: reason.into(), reporter: *reporter },
    )?;
    ctx.emit(
        ADDRESS,
        &IStaking::Slashed {
            operator: *operator,
            amount: total,
            fractionPpm: fraction_ppm,
            jailedUntil: jailed_until,
            reason: reason.into(),
            reporter: *reporter,
        },
    );
    Ok(total_amt)
}

/// `account`'s stake at the operator (tokens) and, for a delegator, its settled delegation.
fn own_stake(st: &Overlay, c: &OpCtx, account: &Address) -> Result<(U256, Option<DelegationRecord>), CallFail> {
    if *account == c.addr {
        return Ok((c.op.selfBond, None));
    }
    let mut d = st.delegation(&c.addr, account)?;
    if let Some(d) = d.as_mut() {
        settle_delegation(&c.op, d);
    }
    Ok((d.as_ref().map(|d| delegation_value(&c.op, d)).unwrap_or(U256::ZERO), d))
}

/// Staking at its system address.
pub struct Staking;

impl SystemModule for Staking {
    type Calls = IStakingCalls;
    calls!(IStakingCalls {
        registerOperator,
        bond,
        unbond,
        withdraw,
        claimRewards,
        rotateConsensusKey,
        rotateServingKey,
        setCommission,
        unjail,
        depositRewards,
        slash,
        reportDoubleVote,
        reportDoubleProposal,
        operatorInfo,
        stakeOf,
        unbondings,
        poolStake,
        operators,
        validatorSetAt,
        votingPower,
        votingPowerAt,
        totalVotingPowerAt,
        tombstoned,
        evidenceSubmitted,
        liveness,
    });
    fn begin_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
        liveness::account_last_commit(st, env)
    }
    fn end_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
        end_block(st, env)
    }
    fn genesis(st: &mut Overlay, g: &Genesis) -> Result<(), GenesisError> {
        genesis::init(st, g.chain_id, &g.operators).map_err(|e| {
            crate::genesis::refused(
                "a genesis operator cannot be bonded (is its allocation at least its bond and the minimum self bond?)",
                e,
            )
        })
    }
}

/// Run a decoded call (what the executor does after charging its gas).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IStakingCalls) -> Result<Bytes, CallFail> {
    <Staking as SystemModule>::execute(st, ctx, call)
}

/// Register `operator` with `bond` already held at staking's address.
#[allow(clippy::too_many_arguments)]
pub(crate) fn register(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    operator: Address,
    role: u8,
    consensus_key: B256,
    serving_key: Address,
    commission_bps: u16,
    bond: Amount,
) -> Result<(), CallFail> {
    let min = st.param(&params::STAKING_MIN_SELF_BOND)?;
    if bond.0 < min {
        return Err(revert(IStaking::BelowMinimumBond { amount: bond.to_u256(), minimum: U256::from(min) }));
    }
    if consensus_key != B256::ZERO && st.get(&state_key::consensus_key_owner(&consensus_key))?.is_some() {
        return Err(revert(IStaking::InvalidKey {}));
    }
    let pool = st.pool(role)?;
    let op = OperatorRecord {
        role,
        selfBond: bond.to_u256(),
        delegated: U256::ZERO,
        commissionBps: commission_bps,
        consensusKey: consensus_key,
        servingKey: serving_key,
        jailedUntil: 0,
        jailed: false,
        lastPoolIndex: pool.index,
        delegatorIndex: U256::ZERO,
        rewards: U256::ZERO,
        registeredAt: ctx.env.number,
        countedStake: U256::ZERO,
        delegatedUnits: U256::ZERO,
        unbondingUnits: U256::ZERO,
        slashFactor: slash_scale(),
    };
    save_op(st, &mut OpCtx { addr: operator, op, pool })?;
    if consensus_key != B256::ZERO {
        st.put(state_key::consensus_key_owner(&consensus_key), Some(operator.to_vec()));
    }
    // New operators only (registering twice is refused above).
    IndexedList::new(state_key::operators(role)).push(st, &operator)?;
    power_change(st, ctx.env.number, &operator, 1, bond.to_u256())?;
    ctx.emit(
        ADDRESS,
        &IStaking::OperatorRegistered {
            operator,
            role,
            consensusKey: consensus_key,
            servingKey: serving_key,
            commissionBps: commission_bps,
        },
    );
    ctx.emit(ADDRESS, &IStaking::Bonded { operator, account: operator, amount: bond.to_u256() });
    Ok(())
}

/// Add `amount` (already held at staking's address) to `account`'s stake at `operator`.
fn bond(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    operator: &Address,
    account: &Address,
    amount: Amount,
) -> Result<(), CallFail> {
    let mut oc = load_op(st, operator)?;
    if st.tombstoned(operator)? {
        return Err(revert(IStaking::Tombstoned { operator: *operator }));
    }
    let v = amount.to_u256();
    let height = ctx.env.number;
    if account == operator {
        oc.op.selfBond += v;
        power_change(st, height, account, 1, v)?;
    } else {
        let key = state_key::delegation(operator, account);
        let mut d = load::<DelegationRecord>(st, &key)?.unwrap_or(DelegationRecord {
            units: U256::ZERO,
            lastIndex: oc.op.delegatorIndex,
            rewards: U256::ZERO,
            power: U256::ZERO,
        });
        settle_delegation(&oc.op, &mut d);
        let units = units_for(v, oc.op.slashFactor);
        d.units += units;
        oc.op.delegatedUnits += units;
        refresh_delegated(&mut oc.op);
        sync_power(st, height, &oc.op, account, &mut d)?;
        store(st, key, &d);
        list_delegator(st, operator, account)?;
    }
    save_op(st, &mut oc)?;
    ctx.emit(ADDRESS, &IStaking::Bonded { operator: *operator, account: *account, amount: v });
    Ok(())
}

/// Start unbonding `amount` of the sender's stake at `operator`: it leaves the
/// stake (and voting power) now and can be withdrawn after the cooldown,
/// slashable until then.
fn unbond(st: &mut Overlay, ctx: &mut CallCtx, operator: &Address, amount: U256) -> Result<(), CallFail> {
    let (height, sender) = (ctx.env.number, ctx.sender);
    let mut oc = load_op(st, operator)?;
    let (have, d) = own_stake(st, &oc, &sender)?;
    if amount.is_zero() || amount > have {
        return Err(revert(IStaking::InsufficientStake { available: have, requested: amount }));
    }
    let mut list = st.unbondings(&sender)?;
    list.retain(|e| !e.units.is_zero());
    if list.len() >= MAX_UNBONDINGS {
        return Err(revert(IStaking::TooManyUnbondings { max: U256::from(MAX_UNBONDINGS) }));
    }
    // `have > 0`, so the operator is not tombstoned: its factor is positive.
    let factor = oc.op.slashFactor;
    match d {
        None => {
            oc.op.selfBond -= amount;
            power_change(st, height, &sender, -1, amount)?;
        }
        Some(mut d) => {
            sync_power(st, height, &oc.op, &sender, &mut d)?;
            let burn = units_to_burn(amount, factor).min(d.units);
            d.units -= burn;
            oc.op.delegatedUnits -= burn;
            refresh_delegated(&mut oc.op);
            power_change(st, height, &sender, -1, amount)?;
            d.power -= amount;
            store(st, state_key::delegation(operator, &sender), &d);
        }
    }
    let units = units_for(amount, factor);
    oc.op.unbondingUnits += units;
    save_op(st, &mut oc)?;
    let release =
        height.saturating_add(u64::try_from(st.param(&params::STAKING_UNBONDING_BLOCKS)?).unwrap_or(u64::MAX));
    list.push(UnbondingRecord { operator: *operator, units, releaseHeight: release });
    store(st, state_key::unbondings(&sender), &list);
    // Its units leave the operator's slashable sum at the end of the block before release.
    let due = state_key::due_units(release, operator);
    let prev = match st.get(&due)? {
        Some(b) => U256::from_be_slice(&b),
        None => {
            IndexedList::new(state_key::due_operators(release)).push(st, operator)?;
            U256::ZERO
        }
    };
    st.put(due, Some((prev + units).to_be_bytes::<32>().to_vec()));
    ctx.emit(
        ADDRESS,
        &IStaking::UnbondStarted { operator: *operator, account: sender, amount, releaseHeight: release },
    );
    Ok(())
}

/// What an unbonding is worth now: at its operator's factor while in its
/// cooldown, at the factor of the last slash before its release after.
fn unbonding_value(st: &Overlay, e: &UnbondingRecord) -> Result<U256, CallFail> {
    let factor = factor_before(st, &e.operator, e.releaseHeight)?;
    Ok(units_value(e.units, factor))
}

/// Pay `account` every unbonding released by `height`; returns the total.
fn withdraw(st: &mut Overlay, account: &Address, height: u64) -> Result<U256, CallFail> {
    let list = st.unbondings(account)?;
    let (ready, pending): (Vec<_>, Vec<_>) = list.into_iter().partition(|e| e.releaseHeight <= height);
    let mut total = U256::ZERO;
    for e in &ready {
        total += unbonding_value(st, e)?;
    }
    store(st, state_key::unbondings(account), &pending);
    st.transfer(&ADDRESS, account, amt(total)?)?;
    Ok(total)
}

/// The validator set now: its members (at most `staking.max_validators`), by address.
fn current_validator_set(st: &Overlay) -> Result<ValidatorSetRecord, CallFail> {
    let mut ops = IndexedSet::new(state_key::validator_members()).members(st)?;
    ops.sort();
    let mut set = ValidatorSetRecord { operators: vec![], consensusKeys: vec![], powers: vec![] };
    for a in ops {
        let op = st.operator(&a)?.ok_or_else(|| revert(IStaking::NotOperator { account: a }))?;
        set.operators.push(a);
        set.consensusKeys.push(op.consensusKey);
        set.powers.push(stake_of_op(&op));
    }
    Ok(set)
}

/// End of block: pay the block's fee share and issuance to the validators'
/// pool, and snapshot the validator set if it changed.
pub fn end_block(st: &mut Overlay, env: &BlockEnv) -> Result<(), CallFail> {
    reconcile_pools(st)?;
    let fees = st.balance(&VALIDATOR_REWARD_POOL)?;
    if fees != Amount::ZERO {
        st.transfer(&VALIDATOR_REWARD_POOL, &ADDRESS, fees)?;
        distribute(st, None, ROLE_VALIDATOR, fees)?;
    }
    let issuance = Amount(st.param(&params::STAKING_ISSUANCE_PER_BLOCK)?);
    if issuance != Amount::ZERO && !st.pool(ROLE_VALIDATOR)?.totalStake.is_zero() {
        st.mint(&ADDRESS, issuance)?;
        distribute(st, None, ROLE_VALIDATOR, issuance)?;
    }
    release_unbondings(st, env.number.saturating_add(1))?;
    sweep_slashed_power(st, env.number)?;
    snapshot_validator_set(st, env.number)
}

/// Unbondings released at `release` stop being slashable: their units leave
/// their operators' slashable sums. The work is one step per operator with
/// unbondings released then, each paid for by the unbond that listed it.
fn release_unbondings(st: &mut Overlay, release: u64) -> Result<(), CallFail> {
    let list = IndexedList::new(state_key::due_operators(release));
    for op_addr in list.page::<Address>(st, 0, u64::MAX)? {
        let key = state_key::due_units(release, &op_addr);
        let units = st.get(&key)?.map(|b| U256::from_be_slice(&b)).unwrap_or_default();
        st.put(key, None);
        if let Some(mut op) = st.operator(&op_addr)? {
            op.unbondingUnits -= units.min(op.unbondingUnits);
            store(st, state_key::operator(&op_addr), &op);
        }
    }
    list.clear(st)?;
    Ok(())
}

/// Sync the voting power of delegations a slash lowered, at most
/// [`SWEEP_PER_BLOCK`] a block, in the order of the slashes.
fn sweep_slashed_power(st: &mut Overlay, height: u64) -> Result<(), CallFail> {
    let jobs = IndexedList::new(state_key::sweep_jobs());
    let cursor_key = state_key::sweep_cursor();
    let mut cursor = match st.get(&cursor_key)? {
        Some(b) => u64::from_be_bytes(b.as_slice().try_into().map_err(|_| revert(primitives::abi::Overflow {}))?),
        None => 0,
    };
    let start = cursor;
    let mut budget = SWEEP_PER_BLOCK;
    while budget > 0 {
        let Some(mut job) = jobs.get::<SweepJob>(st, cursor)? else { break };
        let op = st.operator(&job.operator)?.ok_or_else(|| revert(IStaking::NotOperator { account: job.operator }))?;
        let delegators = IndexedList::new(state_key::delegators(&job.operator));
        while job.next < job.end && budget > 0 {
            let account: Address = delegators.get(st, job.next)?.ok_or_else(|| revert(primitives::abi::Overflow {}))?;
            let key = state_key::delegation(&job.operator, &account);
            if let Some(mut d) = load::<DelegationRecord>(st, &key)? {
                sync_power(st, height, &op, &account, &mut d)?;
                store(st, key, &d);
            }
            job.next += 1;
            budget -= 1;
        }
        if job.next < job.end {
            jobs.set(st, cursor, &job);
            break;
        }
        cursor += 1;
    }
    if cursor != start {
        st.put(cursor_key, Some(cursor.to_be_bytes().to_vec()));
    }
    Ok(())
}

/// Operators recounted per block after `staking.min_self_bond` changed.
pub const RECONCILE_PER_BLOCK: u64 = 64;

/// Recount operators whose activity changed without being touched: when
/// governance moves `staking.min_self_bond`, operators join or leave their
/// pool. The recount walks the operators from where it stopped, at most
/// [`RECONCILE_PER_BLOCK`] a block, so the hook's work is bounded whatever
/// the number of operators; in a block where the minimum did not move it is
/// one read.
fn reconcile_pools(st: &mut Overlay) -> Result<(), CallFail> {
    let min = st.param(&params::STAKING_MIN_SELF_BOND)?;
    let (seen, mut role, mut next) = match st.get(&state_key::reconcile())? {
        Some(b) if b.len() == 25 => (
            u128::from_be_bytes(b[..16].try_into().unwrap_or_default()),
            b[16],
            u64::from_be_bytes(b[17..].try_into().unwrap_or_default()),
        ),
        // Never recorded: the genesis minimum, nothing to recount.
        _ => (min, 0, 0),
    };
    if seen != min {
        // A new minimum: start over from the first validator.
        (role, next) = (ROLE_VALIDATOR, 0);
    }
    let min_u = U256::from(min);
    let mut budget = RECONCILE_PER_BLOCK;
    while role != 0 && budget > 0 {
        let list = IndexedList::new(state_key::operators(role));
        let len = list.len(st)?;
        while next < len && budget > 0 {
            let a: Address = list.get(st, next)?.ok_or_else(|| revert(primitives::abi::Overflow {}))?;
            if let Some(op) = st.operator(&a)? {
                let counted = if active(&op, min_u) { stake_of_op(&op) } else { U256::ZERO };
                if counted != op.countedStake {
                    let mut c = load_op(st, &a)?;
                    save_op(st, &mut c)?;
                }
            }
            next += 1;
            budget -= 1;
        }
        if next >= len {
            (role, next) = if role == ROLE_VALIDATOR { (ROLE_SERVING, 0) } else { (0, 0) };
        }
    }
    let mut rec = min.to_be_bytes().to_vec();
    rec.push(role);
    rec.extend_from_slice(&next.to_be_bytes());
    st.put(state_key::reconcile(), Some(rec));
    Ok(())
}

pub(crate) fn snapshot_validator_set(st: &mut Overlay, height: u64) -> Result<(), CallFail> {
    let heights = IndexedList::new(state_key::validator_set_heights());
    let n = heights.len(st)?;
    if n > 0 && st.get(&state_key::validator_set_dirty())?.is_none() {
        return Ok(());
    }
    st.put(state_key::validator_set_dirty(), None);
    let set = current_validator_set(st)?;
    let last = if n == 0 { None } else { heights.get::<u64>(st, n - 1)? };
    if let Some(last) = last {
        let prev = load::<ValidatorSetRecord>(st, &state_key::validator_set(last))?;
        if prev.map(|p| p.abi_encode()) == Some(set.abi_encode()) {
            return Ok(());
        }
    }
    if last != Some(height) {
        heights.push(st, &height)?;
    }
    store(st, state_key::validator_set(height), &set);
    Ok(())
}
