//! How values read: OPEN amounts exact from their integers, times in UTC,
//! long hashes shortened for tables (the full value stays in the link and
//! its title).

use primitives::{DECIMALS, U256};

/// An amount of base units as OPEN, exactly: the integer part, then the
/// 18-decimal fraction with trailing zeros trimmed (`1.5`, `0.000000000000000001`).
/// Works for any uint256 (amounts in calldata are not bounded by u128).
pub fn open(base_units: U256) -> String {
    let one = U256::from(10u64).pow(U256::from(DECIMALS));
    let (whole, frac) = base_units.div_rem(one);
    if frac.is_zero() {
        return whole.to_string();
    }
    let digits = format!("{frac:0>width$}", frac = frac.to_string(), width = DECIMALS as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Basis points as a percentage with two decimals, exactly (`8750` → `87.50 %`).
pub fn bps(bps: u64) -> String {
    format!("{}.{:02} %", bps / 100, bps % 100)
}

/// `0x1234…cdef` for a long hex string; shorter (or non-ASCII) strings as they are.
pub fn short(hex: &str) -> String {
    if hex.len() <= 14 || !hex.is_ascii() {
        hex.to_string()
    } else {
        format!("{}…{}", &hex[..8], &hex[hex.len() - 6..])
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic
/// Gregorian calendar, days from civil by Howard Hinnant's algorithm).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(open(U256::ZERO), "0");
        assert_eq!(open(U256::from(1u64)), "0.000000000000000001");
        assert_eq!(open(U256::from(1_500_000_000_000_000_000u128)), "1.5");
        assert_eq!(open(U256::from(1_000_000_000_000_000_001u128)), "1.000000000000000001");
        assert_eq!(open(U256::from(7u128 * 10u128.pow(18))), "7");
        assert_eq!(open(U256::MAX), "115792089237316195423570985008687907853269984665640564039457.584007913129639935");
        // Agrees with the protocol's own formatting wherever both apply.
        for x in [0u128, 1, 10, 999_999_999_999_999_999, u128::MAX] {
            assert_eq!(open(U256::from(x)), primitives::Amount(x).to_string());
        }
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_764_909_296), "2025-12-05 04:34:56 UTC");
        assert!(utc(u64::MAX).ends_with(" UTC"));
    }

    #[test]
    fn basis_points_are_exact_percentages() {
        assert_eq!(bps(0), "0.00 %");
        assert_eq!(bps(8705), "87.05 %");
        assert_eq!(bps(10_000), "100.00 %");
    }

    #[test]
    fn short_keeps_both_ends() {
        assert_eq!(short("0x12"), "0x12");
        assert_eq!(short("0x1234567890abcdef1234"), "0x123456…ef1234");
        assert_eq!(short("ééééééééééééééé"), "ééééééééééééééé");
    }
}
