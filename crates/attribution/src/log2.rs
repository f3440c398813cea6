//! A base-2 logarithm in fixed point, with integer operations only, so that every
//! machine computes the same bits (libm's `ln` is not specified to the last bit).

/// 1.0 in the fixed point of [`log2_fixed`]: 32 fractional bits.
pub const LOG2_ONE: u64 = 1 << 32;

/// `log2(x)` for `x >= 1` with 32 fractional bits, rounded down (error below
/// 2^-31): the integer part from the bit length, the fraction by repeated squaring
/// of the mantissa (each squaring yields one bit). `log2_fixed(0)` is 0 by convention.
pub fn log2_fixed(x: u64) -> u64 {
    if x <= 1 {
        return 0;
    }
    let int = 63 - x.leading_zeros() as u64;
    // The mantissa x / 2^int in [1, 2) as a Q63 number in [2^63, 2^64).
    let mut m: u128 = (x as u128) << (63 - int);
    let mut frac = 0u64;
    for bit in (0..32).rev() {
        m = (m * m) >> 63; // [2^63, 2^65): the square of the mantissa, Q63
        if m >= 1u128 << 64 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    (int << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_powers_and_accuracy() {
        assert_eq!(log2_fixed(0), 0);
        assert_eq!(log2_fixed(1), 0);
        for k in 0..64 {
            assert_eq!(log2_fixed(1u64 << k), (k as u64) << 32);
        }
        for x in [3u64, 5, 7, 10, 1000, 65_537, 1_000_000_007, u64::MAX] {
            let got = log2_fixed(x) as f64 / LOG2_ONE as f64;
            let want = (x as f64).log2();
            assert!((got - want).abs() < 1e-8, "log2({x}) = {got}, want {want}");
        }
        // Monotone.
        let mut prev = 0;
        for x in 1..5000u64 {
            let v = log2_fixed(x);
            assert!(v >= prev);
            prev = v;
        }
    }
}
