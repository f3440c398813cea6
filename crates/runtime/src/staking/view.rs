//! Typed reads of staking state, for this module and the others (governance
//! reads voting power; attribution reads the validator set).

use alloy_primitives::U256;
use primitives::Address;
use primitives::state::{StateError, StateRead};

use super::records::{Checkpoint, DelegationRecord, OperatorRecord, PoolRecord, UnbondingRecord, ValidatorSetRecord};
use super::state_key;
use crate::codec::load;

fn power_at(list: &[Checkpoint], height: u64) -> u128 {
    // Last checkpoint at or before `height`.
    let i = list.partition_point(|c| c.height <= height);
    if i == 0 { 0 } else { list[i - 1].power.to::<u128>() }
}

/// Reads of staking state.
pub trait StakingRead {
    fn operator(&self, op: &Address) -> Result<Option<OperatorRecord>, StateError>;
    fn operators(&self, role: u8) -> Result<Vec<Address>, StateError>;
    fn delegation(&self, op: &Address, account: &Address) -> Result<Option<DelegationRecord>, StateError>;
    fn delegators(&self, op: &Address) -> Result<Vec<Address>, StateError>;
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
}

impl<S: StateRead + ?Sized> StakingRead for S {
    fn operator(&self, op: &Address) -> Result<Option<OperatorRecord>, StateError> {
        load(self, &state_key::operator(op))
    }
    fn operators(&self, role: u8) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::operators(role))?.unwrap_or_default())
    }
    fn delegation(&self, op: &Address, account: &Address) -> Result<Option<DelegationRecord>, StateError> {
        load(self, &state_key::delegation(op, account))
    }
    fn delegators(&self, op: &Address) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::delegators(op))?.unwrap_or_default())
    }
    fn pool(&self, role: u8) -> Result<PoolRecord, StateError> {
        Ok(load(self, &state_key::pool(role))?.unwrap_or(PoolRecord { totalStake: U256::ZERO, index: U256::ZERO }))
    }
    fn unbondings(&self, account: &Address) -> Result<Vec<UnbondingRecord>, StateError> {
        Ok(load::<Vec<UnbondingRecord>>(self, &state_key::unbondings(account))?.unwrap_or_default())
    }
    fn voting_power_at(&self, account: &Address, height: u64) -> Result<u128, StateError> {
        let list = load::<Vec<Checkpoint>>(self, &state_key::power_checkpoints(account))?.unwrap_or_default();
        Ok(power_at(&list, height))
    }
    fn voting_power(&self, account: &Address) -> Result<u128, StateError> {
        let list = load::<Vec<Checkpoint>>(self, &state_key::power_checkpoints(account))?.unwrap_or_default();
        Ok(list.last().map(|c| c.power.to::<u128>()).unwrap_or(0))
    }
    fn total_voting_power_at(&self, height: u64) -> Result<u128, StateError> {
        let list = load::<Vec<Checkpoint>>(self, &state_key::total_power_checkpoints())?.unwrap_or_default();
        Ok(power_at(&list, height))
    }
    fn validator_set_at(&self, height: u64) -> Result<ValidatorSetRecord, StateError> {
        let heights = load::<Vec<u64>>(self, &state_key::validator_set_heights())?.unwrap_or_default();
        let i = heights.partition_point(|h| *h <= height);
        if i == 0 {
            return Ok(ValidatorSetRecord { operators: vec![], consensusKeys: vec![], powers: vec![] });
        }
        Ok(load(self, &state_key::validator_set(heights[i - 1]))?.unwrap_or(ValidatorSetRecord {
            operators: vec![],
            consensusKeys: vec![],
            powers: vec![],
        }))
    }
}
