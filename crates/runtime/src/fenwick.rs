//! A Fenwick (binary indexed) tree in state: point additions and prefix sums
//! over positions `1..=CAPACITY`, each touching at most 32 nodes, whatever
//! how many positions are used. Nodes live under keys a caller names
//! (`key(index)`); absent nodes are zero. Sums are U256 taken modulo 2^256
//! (wrapping), so a "subtraction" is the addition of a two's complement and
//! only differences are meaningful when values can wrap.

use alloy_primitives::U256;
use primitives::state::{StateError, StateRead};

use crate::Overlay;

/// Highest position (2^32).
pub const CAPACITY: u64 = 1 << 32;

fn node(st: &(impl StateRead + ?Sized), key: &dyn Fn(u64) -> Vec<u8>, i: u64) -> Result<U256, StateError> {
    match st.get(&key(i))? {
        Some(b) if b.len() == 32 => Ok(U256::from_be_slice(&b)),
        Some(b) => Err(StateError(format!("fenwick node of {} bytes", b.len()))),
        None => Ok(U256::ZERO),
    }
}

/// Add `delta` (wrapping) at `pos` (1..=CAPACITY; others are ignored).
pub fn add(st: &mut Overlay, key: &dyn Fn(u64) -> Vec<u8>, pos: u64, delta: U256) -> Result<(), StateError> {
    if !(1..=CAPACITY).contains(&pos) {
        return Ok(());
    }
    let mut i = pos;
    while i <= CAPACITY {
        let v = node(st, key, i)?.wrapping_add(delta);
        st.put(key(i), Some(v.to_be_bytes::<32>().to_vec()));
        i += i & i.wrapping_neg();
    }
    Ok(())
}

/// `Σ_{p ≤ pos}` (mod 2^256); positions above CAPACITY count as CAPACITY.
pub fn prefix(st: &(impl StateRead + ?Sized), key: &dyn Fn(u64) -> Vec<u8>, pos: u64) -> Result<U256, StateError> {
    let mut i = pos.min(CAPACITY);
    let mut sum = U256::ZERO;
    while i > 0 {
        sum = sum.wrapping_add(node(st, key, i)?);
        i &= i - 1;
    }
    Ok(sum)
}

/// The smallest position whose prefix sum reaches `k` (≥ 1), for a tree of
/// non-negative counts; `None` if the total is below `k`. At most 33 reads.
pub fn find(st: &(impl StateRead + ?Sized), key: &dyn Fn(u64) -> Vec<u8>, k: U256) -> Result<Option<u64>, StateError> {
    let (mut pos, mut rem, mut step) = (0u64, k, CAPACITY);
    while step > 0 {
        let next = pos + step;
        if next <= CAPACITY {
            let v = node(st, key, next)?;
            if v < rem {
                pos = next;
                rem -= v;
            }
        }
        step >>= 1;
    }
    Ok(if pos < CAPACITY && !k.is_zero() { Some(pos + 1) } else { None })
}
