//! Reward per approved row, per Datanet: a Fenwick (binary indexed) tree over versions.
//!
//! A contribution approved at version `a` is in every version `v ≥ a` of its
//! Datanet, so a fallback deposit to version `v` must reach every contribution
//! approved at a version `≤ v`, without looping over them. Each deposit adds
//! `perRow = floor(amount × 10^18 / liveRows(v))` at `v`; contribution `c` is owed
//! `(Σ_{v ≥ c.version} perRow[v] − c.paidIndex) × c.liveRows / 10^18` (rounded
//! down), and a claim sets `paidIndex` to the current suffix sum.
//!
//! Layout: versions `1..=CAPACITY` map to tree indices `CAPACITY + 1 − v`, so a
//! suffix sum over versions is a prefix sum over indices; each update and each
//! query touches at most 32 nodes (`log2 CAPACITY`). Absent nodes are zero. Sums
//! are U256 taken modulo 2^256 (wrapping): only differences of suffix sums are
//! ever paid, and they are exact as long as one contribution's unclaimed
//! increment stays below 2^256 (it is bounded by the OPEN supply × 10^18).

use alloy_primitives::U256;
use primitives::state::{StateError, StateRead};

use super::state_key;
use crate::Overlay;

/// Highest version the accumulator covers (2^32); a fallback share of a higher
/// version goes to the treasury. Datanets create one version per approval or
/// tombstone, so this is far beyond reach.
pub const CAPACITY: u64 = crate::fenwick::CAPACITY;

/// Scale of reward per row: 10^18.
pub fn scale() -> U256 {
    U256::from(1_000_000_000_000_000_000u128)
}

fn index(version: u64) -> u64 {
    CAPACITY + 1 - version
}

/// Add `per_row` at `version` (1..=CAPACITY) of `datanet`.
pub fn add(st: &mut Overlay, datanet: u64, version: u64, per_row: U256) -> Result<(), StateError> {
    debug_assert!((1..=CAPACITY).contains(&version));
    crate::fenwick::add(st, &|i| state_key::fenwick_node(datanet, i), index(version), per_row)
}

/// `Σ_{v ≥ from} perRow[v]` of `datanet` (mod 2^256); zero for `from` outside 1..=CAPACITY.
pub fn suffix(st: &(impl StateRead + ?Sized), datanet: u64, from: u64) -> Result<U256, StateError> {
    if !(1..=CAPACITY).contains(&from) {
        return Ok(U256::ZERO);
    }
    crate::fenwick::prefix(st, &|i| state_key::fenwick_node(datanet, i), index(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmptyState;

    #[test]
    fn suffix_sums_match_a_plain_array() {
        let e = EmptyState;
        let mut st = Overlay::new(&e);
        let mut plain = vec![U256::ZERO; 40];
        let mut x = 7u64;
        for _ in 0..60 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = 1 + (x >> 33) % 39;
            let d = U256::from(x % 1_000_003);
            add(&mut st, 9, v, d).unwrap();
            plain[v as usize] += d;
            for from in 1..40u64 {
                let want: U256 = plain[from as usize..].iter().copied().fold(U256::ZERO, |a, b| a + b);
                assert_eq!(suffix(&st, 9, from).unwrap(), want, "from {from}");
            }
        }
        // Other Datanets are untouched; versions at the edges work.
        assert_eq!(suffix(&st, 8, 1).unwrap(), U256::ZERO);
        add(&mut st, 3, CAPACITY, U256::from(5)).unwrap();
        add(&mut st, 3, 1, U256::from(2)).unwrap();
        assert_eq!(suffix(&st, 3, 1).unwrap(), U256::from(7));
        assert_eq!(suffix(&st, 3, 2).unwrap(), U256::from(5));
        assert_eq!(suffix(&st, 3, CAPACITY).unwrap(), U256::from(5));
        assert_eq!(suffix(&st, 3, 0).unwrap(), U256::ZERO);
    }
}
