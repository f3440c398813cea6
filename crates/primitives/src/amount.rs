//! OPEN amounts: u128 base units ("wei"), 18 decimals, checked arithmetic only.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;

/// Number of decimals of OPEN.
pub const DECIMALS: u32 = 18;
/// One OPEN in base units.
pub const ONE_OPEN: u128 = 1_000_000_000_000_000_000;

/// An amount of OPEN in base units. Arithmetic never wraps: every operation is
/// checked and returns an error the caller must handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(pub u128);

/// Why an amount operation or parse failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount overflow")]
    Overflow,
    #[error("amount underflow")]
    Underflow,
    #[error(
        "invalid amount {0:?}: expected a decimal number of OPEN with at most 18 decimals, or a base-unit integer followed by 'wei'"
    )]
    Parse(String),
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// `n` whole OPEN.
    pub const fn open(n: u64) -> Amount {
        Amount(n as u128 * ONE_OPEN)
    }
    pub fn checked_add(self, o: Amount) -> Result<Amount, AmountError> {
        self.0.checked_add(o.0).map(Amount).ok_or(AmountError::Overflow)
    }
    pub fn checked_sub(self, o: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(o.0).map(Amount).ok_or(AmountError::Underflow)
    }
    pub fn checked_mul(self, k: u128) -> Result<Amount, AmountError> {
        self.0.checked_mul(k).map(Amount).ok_or(AmountError::Overflow)
    }
    /// `self * num / den`, rounding down, without intermediate overflow for
    /// `num <= den` (the usual case of a share in basis points or ppm).
    pub fn mul_div(self, num: u128, den: u128) -> Result<Amount, AmountError> {
        if den == 0 {
            return Err(AmountError::Overflow);
        }
        let r = U256::from(self.0) * U256::from(num) / U256::from(den);
        u128::try_from(r).map(Amount).map_err(|_| AmountError::Overflow)
    }
    pub fn to_u256(self) -> U256 {
        U256::from(self.0)
    }
    /// Fails if the value does not fit in u128.
    pub fn from_u256(v: U256) -> Result<Amount, AmountError> {
        u128::try_from(v).map(Amount).map_err(|_| AmountError::Overflow)
    }
    pub fn to_be_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
    pub fn from_be_bytes(b: [u8; 16]) -> Amount {
        Amount(u128::from_be_bytes(b))
    }
}

/// Human form: "1.5 OPEN" style decimal without the unit ("1.5"), trailing zeros trimmed.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / ONE_OPEN;
        let frac = self.0 % ONE_OPEN;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let s = format!("{frac:018}");
            write!(f, "{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

/// Parses "12", "0.5", "1.000000000000000001" (OPEN) or "1234wei" (base units).
impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Amount, AmountError> {
        let err = || AmountError::Parse(s.to_string());
        let t = s.trim();
        let t = t.strip_suffix("OPEN").map(str::trim_end).unwrap_or(t);
        if let Some(w) = t.strip_suffix("wei") {
            let w = w.trim_end();
            if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            return w.parse::<u128>().map(Amount).map_err(|_| err());
        }
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(err());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > DECIMALS as usize {
            return Err(err());
        }
        let w: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err())? };
        let mut f: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| err())? };
        for _ in frac.len()..DECIMALS as usize {
            f *= 10;
        }
        w.checked_mul(ONE_OPEN).and_then(|x| x.checked_add(f)).map(Amount).ok_or(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_display() {
        assert_eq!("1".parse::<Amount>().unwrap(), Amount(ONE_OPEN));
        assert_eq!("0.5".parse::<Amount>().unwrap(), Amount(ONE_OPEN / 2));
        assert_eq!("7wei".parse::<Amount>().unwrap(), Amount(7));
        assert_eq!("2.5 OPEN".parse::<Amount>().unwrap(), Amount(5 * ONE_OPEN / 2));
        assert!("1.0000000000000000001".parse::<Amount>().is_err());
        assert!("-1".parse::<Amount>().is_err());
        assert!("abc".parse::<Amount>().is_err());
        assert!("".parse::<Amount>().is_err());
        assert!("1e5".parse::<Amount>().is_err());
        assert_eq!(Amount(ONE_OPEN + 1).to_string(), "1.000000000000000001");
        assert_eq!(Amount(ONE_OPEN * 3).to_string(), "3");
    }

    #[test]
    fn checked_ops() {
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), Err(AmountError::Overflow));
        assert_eq!(Amount(0).checked_sub(Amount(1)), Err(AmountError::Underflow));
        assert_eq!(Amount(u128::MAX).mul_div(3, 4).unwrap(), Amount(u128::MAX / 4 * 3 + (u128::MAX % 4) * 3 / 4));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(x in any::<u128>()) {
            let a = Amount(x);
            prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        }
    }
}
