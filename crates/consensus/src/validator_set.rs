//! The validators of a height, their voting power, and who proposes.
//!
//! The set comes from `staking` (`StakingRead::validator_set_at`): operators,
//! their ed25519 consensus keys and their stake. Voting power is the stake in
//! whole OPEN (Malachite counts power in `u64`); a validator with less than one
//! OPEN has no power and is left out.
//!
//! The proposer needs no state carried from height to height, so a node that
//! restarts, syncs or joins from a snapshot picks the same one as everybody:
//! the height's hash draws a point on the line of the set's power (each
//! validator owning a stretch as long as its power), and each further round
//! moves the point on by `total / n`. Over heights each validator proposes in
//! proportion to its power; within a height, rounds rotate through the set
//! (with equal powers, through every validator in turn), so a crashed
//! proposer costs one round.

use alloy_primitives::{Address, B256, U256, keccak256};
use ed25519_dalek::VerifyingKey;
use malachitebft_core_types::{self as mc, Round, VotingPower};
use primitives::ONE_OPEN;

use crate::context::OlContext;
use crate::types::{Height, ValidatorAddress};

/// The most voting power a set may hold (CometBFT's bound, `i64::MAX / 8`):
/// priorities stay far from overflow.
pub const MAX_TOTAL_POWER: u64 = (i64::MAX / 8) as u64;

/// One validator of a height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: ValidatorAddress,
    pub public_key: VerifyingKey,
    pub power: VotingPower,
}

impl mc::Validator<OlContext> for Validator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }
    fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }
    fn voting_power(&self) -> VotingPower {
        self.power
    }
}

/// Why a validator set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty (no validator with at least one OPEN of stake)")]
    Empty,
    #[error("staking's validator set is malformed: {operators} operators, {keys} keys, {powers} powers")]
    LengthMismatch { operators: usize, keys: usize, powers: usize },
    #[error("validator {0} has a consensus key that is not an ed25519 public key")]
    BadKey(Address),
    #[error("validator {0} appears twice")]
    Duplicate(Address),
    #[error("the set's total voting power exceeds {MAX_TOTAL_POWER}")]
    TooMuchPower,
}

/// The validators of a height, ordered by power (descending) then address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total: VotingPower,
}

impl ValidatorSet {
    /// A set of `validators`; those without power are dropped.
    pub fn new(validators: impl IntoIterator<Item = Validator>) -> Result<Self, ValidatorSetError> {
        let mut validators: Vec<Validator> = validators.into_iter().filter(|v| v.power > 0).collect();
        validators.sort_by(|a, b| b.power.cmp(&a.power).then(a.address.cmp(&b.address)));
        let mut seen: Vec<ValidatorAddress> = validators.iter().map(|v| v.address).collect();
        seen.sort();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(ValidatorSetError::Duplicate(w[0].0));
        }
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let total = validators
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(v.power))
            .filter(|t| *t <= MAX_TOTAL_POWER)
            .ok_or(ValidatorSetError::TooMuchPower)?;
        Ok(Self { validators, total })
    }

    /// The set staking recorded at a height (the three columns of
    /// `runtime::staking::ValidatorSetRecord`, from `validator_set_at`):
    /// operators, their consensus keys and their stake in base units, which
    /// becomes voting power in whole OPEN.
    pub fn from_staking(
        operators: &[Address],
        consensus_keys: &[B256],
        stakes: &[U256],
    ) -> Result<Self, ValidatorSetError> {
        if operators.len() != consensus_keys.len() || operators.len() != stakes.len() {
            return Err(ValidatorSetError::LengthMismatch {
                operators: operators.len(),
                keys: consensus_keys.len(),
                powers: stakes.len(),
            });
        }
        let mut validators = Vec::with_capacity(operators.len());
        for ((op, key), stake) in operators.iter().zip(consensus_keys).zip(stakes) {
            let public_key = VerifyingKey::from_bytes(&key.0).map_err(|_| ValidatorSetError::BadKey(*op))?;
            let whole = *stake / U256::from(ONE_OPEN);
            let power = u64::try_from(whole).map_err(|_| ValidatorSetError::TooMuchPower)?;
            validators.push(Validator { address: ValidatorAddress(*op), public_key, power });
        }
        Self::new(validators)
    }

    /// The validators, ordered by power then address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The total voting power.
    pub fn total_power(&self) -> VotingPower {
        self.total
    }

    /// The validator named `address`, if it is in the set.
    pub fn get(&self, address: &ValidatorAddress) -> Option<&Validator> {
        self.validators.iter().find(|v| v.address == *address)
    }

    /// The proposer of `round` at `height` (this set being the height's).
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let total = u128::from(self.total);
        let start = U256::from_be_bytes(keccak256(height.0.to_be_bytes()).0) % U256::from(total);
        let start = u128::try_from(start).unwrap_or(0);
        let stride = total.div_ceil(self.validators.len() as u128);
        let round = u128::from(round.as_u32().unwrap_or(0));
        let mut point = (start + round * stride) % total;
        for v in &self.validators {
            let power = u128::from(v.power);
            if point < power {
                return v;
            }
            point -= power;
        }
        &self.validators[0]
    }
}

impl mc::ValidatorSet<OlContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> VotingPower {
        self.total
    }
    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&Validator> {
        self.get(address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keys::ConsensusKey;

    fn validator(i: u8, power: u64) -> Validator {
        let key = ConsensusKey::dev(&format!("v{i}"));
        Validator {
            address: ValidatorAddress(Address::repeat_byte(i)),
            public_key: VerifyingKey::from_bytes(&key.public().0).unwrap(),
            power,
        }
    }

    fn proposals_per_validator(set: &ValidatorSet, heights: u64) -> Vec<(u8, u64)> {
        let mut counts = std::collections::BTreeMap::new();
        for h in 1..=heights {
            *counts.entry(set.proposer(Height(h), Round::ZERO).address.0[0]).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }

    #[test]
    fn proposers_follow_power() {
        let set = ValidatorSet::new([validator(1, 1), validator(2, 2), validator(3, 3), validator(4, 4)]).unwrap();
        for (v, n) in proposals_per_validator(&set, 10_000) {
            let expected = 1000 * u64::from(v);
            assert!(
                n.abs_diff(expected) < expected / 5,
                "validator {v} proposed {n} of 10000, expected about {expected}"
            );
        }
    }

    #[test]
    fn rounds_rotate_through_equal_validators() {
        let set = ValidatorSet::new((1..=4).map(|i| validator(i, 10))).unwrap();
        for h in 1..50 {
            let mut round0: Vec<u8> = (0..4).map(|r| set.proposer(Height(h), Round::new(r)).address.0[0]).collect();
            round0.sort();
            assert_eq!(round0, vec![1, 2, 3, 4], "height {h}: four rounds, four proposers");
        }
    }

    #[test]
    fn selection_is_deterministic_and_far_rounds_are_cheap() {
        let set = ValidatorSet::new((1..=4).map(|i| validator(i, 1 + u64::from(i)))).unwrap();
        let far = Round::new(u32::MAX - 1);
        assert_eq!(set.proposer(Height(9), far), set.clone().proposer(Height(9), far));
        assert!(set.get(&set.proposer(Height(9), far).address).is_some());
        let big = ValidatorSet::new([validator(1, MAX_TOTAL_POWER - 1), validator(2, 1)]).unwrap();
        assert!(big.get(&big.proposer(Height(u64::MAX), far).address).is_some());
    }

    #[test]
    fn bad_sets_are_refused() {
        assert_eq!(ValidatorSet::new([validator(1, 0)]), Err(ValidatorSetError::Empty));
        assert_eq!(
            ValidatorSet::new([validator(1, 1), validator(1, 2)]),
            Err(ValidatorSetError::Duplicate(Address::repeat_byte(1)))
        );
        assert_eq!(
            ValidatorSet::new([validator(1, MAX_TOTAL_POWER), validator(2, 1)]),
            Err(ValidatorSetError::TooMuchPower)
        );
    }

    #[test]
    fn staking_records_become_sets_in_whole_open() {
        let ops = [Address::repeat_byte(1), Address::repeat_byte(2)];
        let keys = [ConsensusKey::dev("a").public(), ConsensusKey::dev("b").public()];
        let stakes = [U256::from(ONE_OPEN) * U256::from(5u8), U256::from(ONE_OPEN - 1)];
        let set = ValidatorSet::from_staking(&ops, &keys, &stakes).unwrap();
        assert_eq!(set.validators().len(), 1);
        assert_eq!(set.total_power(), 5);
        assert!(matches!(ValidatorSet::from_staking(&ops, &keys, &[]), Err(ValidatorSetError::LengthMismatch { .. })));
        // Not every 32-byte string is a point on the curve.
        let bad_key = (0u8..=255).map(B256::repeat_byte).find(|k| VerifyingKey::from_bytes(&k.0).is_err()).unwrap();
        assert_eq!(
            ValidatorSet::from_staking(&ops, &[keys[0], bad_key], &stakes),
            Err(ValidatorSetError::BadKey(Address::repeat_byte(2)))
        );
        let huge = [U256::MAX, U256::from(ONE_OPEN)];
        assert_eq!(ValidatorSet::from_staking(&ops, &keys, &huge), Err(ValidatorSetError::TooMuchPower));
    }
}
