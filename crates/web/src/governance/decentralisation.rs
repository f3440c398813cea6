//! How spread out a validator set's power is, computed exactly with integers:
//! the Nakamoto coefficient (the fewest validators that together hold more
//! than a third of the power, enough to halt a BFT chain) and the largest
//! single share.

use alloy_primitives::U512;
use primitives::U256;

/// The fewest validators whose powers sum to more than a third of the total
/// (`3 × sum > total`, exact: sums in 512 bits never overflow); 0 for an
/// empty or powerless set.
pub fn nakamoto_coefficient(powers: &[U256]) -> usize {
    let wide = |p: &U256| U512::from_limbs_slice(p.as_limbs());
    let total = powers.iter().map(wide).fold(U512::ZERO, |a, p| a + p);
    if total.is_zero() {
        return 0;
    }
    let mut sorted: Vec<U512> = powers.iter().map(wide).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let three = U512::from(3u64);
    let mut sum = U512::ZERO;
    for (i, p) in sorted.iter().enumerate() {
        sum += *p;
        if sum * three > total {
            return i + 1;
        }
    }
    sorted.len()
}

/// The largest single power (its share of the total is the most one validator holds).
pub fn largest(powers: &[U256]) -> Option<U256> {
    powers.iter().max().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(xs: &[u64]) -> usize {
        nakamoto_coefficient(&xs.iter().map(|x| U256::from(*x)).collect::<Vec<_>>())
    }

    #[test]
    fn the_fewest_validators_holding_more_than_a_third() {
        assert_eq!(n(&[]), 0);
        assert_eq!(n(&[0, 0]), 0);
        assert_eq!(n(&[1000]), 1);
        // Exactly a third is not more than a third.
        assert_eq!(n(&[1, 1, 1]), 2);
        assert_eq!(n(&[34, 33, 33]), 1);
        assert_eq!(n(&[33, 33, 34]), 1);
        assert_eq!(n(&[10; 10]), 4);
        assert_eq!(n(&[10, 10, 10, 10, 10, 10, 10, 10, 10, 11]), 4);
        // Order does not matter and huge powers do not overflow.
        assert_eq!(nakamoto_coefficient(&[U256::MAX, U256::MAX, U256::MAX]), 2);
        assert_eq!(nakamoto_coefficient(&[U256::from(1u64), U256::MAX]), 1);
    }
}
