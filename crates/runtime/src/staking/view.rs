//! Typed reads of staking state, for this module and the others (governance
//! reads voting power; attribution reads the validator set), and the typed
//! writes other modules make (attribution slashes, inference deposits rewards).

use alloy_primitives::U256;
use primitives::state::{StateError, StateRead};
use primitives::{Address, Amount};

use super::records::{
    Checkpoint, DelegationRecord, LivenessRecord, OperatorRecord, PoolRecord, SlashRecord, UnbondingRecord,
    ValidatorSetRecord,
};
use super::state_key;
use super::{ADDRESS, pool_role};
use crate::bank::BankWrite;
use crate::codec::{IndexedList, load};
use crate::context::{CallCtx, CallFail};
use crate::revert;
use primitives::abi::IStaking;

/// The power of the last checkpoint at or before `height` (binary search over the indexed list).
fn power_at(st: &(impl StateRead + ?Sized), key: Vec<u8>, height: u64) -> Result<u128, StateError> {
    let list = IndexedList::new(key);
    let i = list.partition_point::<Checkpoint>(st, |c| c.height <= height)?;
    if i == 0 {
        return Ok(0);
    }
    Ok(list.get::<Checkpoint>(st, i - 1)?.map(|c| c.power.to::<u128>()).unwrap_or(0))
}

/// Every item of an indexed list of addresses (off-chain readers and bounded on-chain loops).
fn all_addresses(st: &(impl StateRead + ?Sized), key: Vec<u8>) -> Result<Vec<Address>, StateError> {
    IndexedList::new(key).page(st, 0, u64::MAX)
}

/// Reads of staking state.
pub trait StakingRead {
    fn operator(&self, op: &Address) -> Result<Option<OperatorRecord>, StateError>;
    fn operators(&self, role: u8) -> Result<Vec<Address>, StateError>;
    fn delegation(&self, op: &Address, account: &Address) -> Result<Option<DelegationRecord>, StateError>;
    fn delegators(&self, op: &Address) -> Result<Vec<Address>, StateError>;
    /// How many accounts ever bonded to the operator (its delegators list).
    fn delegator_count(&self, op: &Address) -> Result<u64, StateError>;
    /// Delegators `offset..offset + limit` of the operator, in order of first
    /// bond: a read per item, for readers that must stay bounded (web pages).
    fn delegators_page(&self, op: &Address, offset: u64, limit: u64) -> Result<Vec<Address>, StateError>;
    fn pool(&self, role: u8) -> Result<PoolRecord, StateError>;
    fn unbondings(&self, account: &Address) -> Result<Vec<UnbondingRecord>, StateError>;
    /// Voting power (stake the account owns: self bond plus delegations) after block `height`.
    fn voting_power_at(&self, account: &Address, height: u64) -> Result<u128, StateError>;
    /// Current voting power.
    fn voting_power(&self, account: &Address) -> Result<u128, StateError>;
    /// Total voting power after block `height`.
    fn total_voting_power_at(&self, height: u64) -> Result<u128, StateError>;
    /// The validator set in force at `height` (the newest snapshot at or before it).
    fn validator_set_at(&self, height: u64) -> Result<ValidatorSetRecord, StateError>;
    /// The validator set that decides height `height`: signs its proposals and
    /// votes, with the consensus keys it holds in this record.
    ///
    /// The rule, which the consensus layer follows and evidence and downtime
    /// are judged by: the set for height `H` is `validator_set_at(H - 1)`,
    /// read from the state after block `H - 1` (snapshots of past heights
    /// never change, so any later state reads the same). A change made in block
    /// `H - 1` (a bond, a jail, a key rotation) takes effect at height `H`.
    /// Height 0 is the genesis, which nobody decides: its set is empty.
    fn deciding_set(&self, height: u64) -> Result<ValidatorSetRecord, StateError>;
    /// Whether the operator is tombstoned: proven to double-sign, or slashed 100%.
    fn tombstoned(&self, op: &Address) -> Result<bool, StateError>;
    /// The operator's downtime window, if it is tracked.
    fn liveness(&self, op: &Address) -> Result<Option<LivenessRecord>, StateError>;
    /// Every slash of the operator, oldest first, with its reason and reporter.
    fn slashes(&self, op: &Address) -> Result<Vec<SlashRecord>, StateError>;
    /// How many times the operator was slashed.
    fn slash_count(&self, op: &Address) -> Result<u64, StateError>;
    /// Slashes `offset..offset + limit` of the operator, oldest first: a read
    /// per item, for readers that must stay bounded (web pages).
    fn slashes_page(&self, op: &Address, offset: u64, limit: u64) -> Result<Vec<SlashRecord>, StateError>;
}

fn empty_set() -> ValidatorSetRecord {
    ValidatorSetRecord { operators: vec![], consensusKeys: vec![], powers: vec![] }
}

impl<S: StateRead + ?Sized> StakingRead for S {
    fn operator(&self, op: &Address) -> Result<Option<OperatorRecord>, StateError> {
        load(self, &state_key::operator(op))
    }
    fn operators(&self, role: u8) -> Result<Vec<Address>, StateError> {
        all_addresses(self, state_key::operators(role))
    }
    fn delegation(&self, op: &Address, account: &Address) -> Result<Option<DelegationRecord>, StateError> {
        load(self, &state_key::delegation(op, account))
    }
    fn delegators(&self, op: &Address) -> Result<Vec<Address>, StateError> {
        all_addresses(self, state_key::delegators(op))
    }
    fn delegator_count(&self, op: &Address) -> Result<u64, StateError> {
        IndexedList::new(state_key::delegators(op)).len(self)
    }
    fn delegators_page(&self, op: &Address, offset: u64, limit: u64) -> Result<Vec<Address>, StateError> {
        IndexedList::new(state_key::delegators(op)).page(self, offset, limit)
    }
    fn pool(&self, role: u8) -> Result<PoolRecord, StateError> {
        Ok(load(self, &state_key::pool(role))?.unwrap_or(PoolRecord { totalStake: U256::ZERO, index: U256::ZERO }))
    }
    fn unbondings(&self, account: &Address) -> Result<Vec<UnbondingRecord>, StateError> {
        Ok(load::<Vec<UnbondingRecord>>(self, &state_key::unbondings(account))?.unwrap_or_default())
    }
    fn voting_power_at(&self, account: &Address, height: u64) -> Result<u128, StateError> {
        power_at(self, state_key::power_checkpoints(account), height)
    }
    fn voting_power(&self, account: &Address) -> Result<u128, StateError> {
        power_at(self, state_key::power_checkpoints(account), u64::MAX)
    }
    fn total_voting_power_at(&self, height: u64) -> Result<u128, StateError> {
        power_at(self, state_key::total_power_checkpoints(), height)
    }
    fn validator_set_at(&self, height: u64) -> Result<ValidatorSetRecord, StateError> {
        let heights = IndexedList::new(state_key::validator_set_heights());
        let i = heights.partition_point::<u64>(self, |h| *h <= height)?;
        let at = match i {
            0 => None,
            i => heights.get::<u64>(self, i - 1)?,
        };
        let Some(at) = at else {
            return Ok(empty_set());
        };
        Ok(load(self, &state_key::validator_set(at))?.unwrap_or_else(empty_set))
    }
    fn deciding_set(&self, height: u64) -> Result<ValidatorSetRecord, StateError> {
        match height.checked_sub(1) {
            Some(before) => self.validator_set_at(before),
            None => Ok(empty_set()),
        }
    }
    fn tombstoned(&self, op: &Address) -> Result<bool, StateError> {
        Ok(self.operator(op)?.is_some_and(|o| o.slashFactor.is_zero())
            || self.get(&state_key::tombstone(op))?.is_some())
    }
    fn liveness(&self, op: &Address) -> Result<Option<LivenessRecord>, StateError> {
        load(self, &state_key::liveness(op))
    }
    fn slashes(&self, op: &Address) -> Result<Vec<SlashRecord>, StateError> {
        IndexedList::new(state_key::slashes(op)).page(self, 0, u64::MAX)
    }
    fn slash_count(&self, op: &Address) -> Result<u64, StateError> {
        IndexedList::new(state_key::slashes(op)).len(self)
    }
    fn slashes_page(&self, op: &Address, offset: u64, limit: u64) -> Result<Vec<SlashRecord>, StateError> {
        IndexedList::new(state_key::slashes(op)).page(self, offset, limit)
    }
}

/// Typed writes other modules use: slashing and reward deposits.
pub trait StakingWrite {
    /// Slash `fraction_ppm` of `operator`'s stake (self bond, delegations and
    /// pending unbondings), jail it for `jail_blocks`, pay the reporter's share
    /// and send the rest to the treasury. Returns the amount slashed.
    fn slash(
        &mut self,
        ctx: &mut CallCtx,
        operator: &Address,
        fraction_ppm: u32,
        jail_blocks: u64,
        reason: &str,
        reporter: &Address,
    ) -> Result<Amount, CallFail>;
    /// Pay `amount` from `payer` to pool "validators" or "serving".
    fn deposit_rewards(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        amount: Amount,
        pool: &str,
    ) -> Result<(), CallFail>;
}

impl StakingWrite for crate::Overlay<'_> {
    fn slash(
        &mut self,
        ctx: &mut CallCtx,
        operator: &Address,
        fraction_ppm: u32,
        jail_blocks: u64,
        reason: &str,
        reporter: &Address,
    ) -> Result<Amount, CallFail> {
        super::slash(self, ctx, operator, fraction_ppm, jail_blocks, reason, reporter)
    }
    fn deposit_rewards(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        amount: Amount,
        pool: &str,
    ) -> Result<(), CallFail> {
        let role = pool_role(pool).ok_or_else(|| revert(IStaking::UnknownPool { pool: pool.into() }))?;
        self.transfer(payer, &ADDRESS, amount)?;
        super::distribute(self, Some(ctx), role, amount)
    }
}
