//! Medians and percentiles, and the count lists the suites' options take.

use anyhow::{Context, Result};

/// The items of a comma-separated count list such as "10k, 1M,2_000" with their
/// values (`_` ignored, `k` = 10^3, `m` = 10^6, either case): `None` for one
/// that overflows. `flag` names the option in the error for an item that is
/// not a number. The caller checks the values and that there are any.
pub(crate) fn count_list<'s>(s: &'s str, flag: &str) -> Result<Vec<(&'s str, Option<u64>)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p = part.replace('_', "");
        let (digits, mult) = match p.chars().last() {
            Some('k' | 'K') => (&p[..p.len() - 1], 1_000),
            Some('m' | 'M') => (&p[..p.len() - 1], 1_000_000),
            Some('g' | 'G') => (&p[..p.len() - 1], 1_000_000_000),
            _ => (&p[..], 1),
        };
        let n: u64 = digits.parse().with_context(|| format!("{flag}: {part:?} is not a number"))?;
        out.push((part, n.checked_mul(mult)));
    }
    Ok(out)
}

/// The median of `xs` (the mean of the two middle values for an even count);
/// NaN for an empty slice. The input need not be sorted.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The `p`-th percentile (0 ≤ p ≤ 100) by the nearest-rank method: the smallest
/// value with at least p% of the values at or below it (p = 0 gives the minimum);
/// NaN for an empty slice. The input need not be sorted.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.saturating_sub(1).min(v.len() - 1)]
}

/// `a / b`, or `None` when either is missing or `b` is not positive.
pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

/// A ratio for a table cell: "1.23×" or "n/a".
pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}×"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_unsorted() {
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[5.0]), 5.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[1.0, 1.0, 100.0]), 1.0);
    }

    #[test]
    fn percentile_nearest_rank() {
        assert!(percentile(&[], 50.0).is_nan());
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 1.0);
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.5), 100.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 250.0), 100.0);
        // Textbook example: 15, 20, 35, 40, 50.
        let w = [50.0, 15.0, 40.0, 20.0, 35.0];
        assert_eq!(percentile(&w, 5.0), 15.0);
        assert_eq!(percentile(&w, 30.0), 20.0);
        assert_eq!(percentile(&w, 40.0), 20.0);
        assert_eq!(percentile(&w, 50.0), 35.0);
        assert_eq!(percentile(&w, 100.0), 50.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), None), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(fmt_ratio(Some(1.5)), "1.50×");
        assert_eq!(fmt_ratio(None), "n/a");
    }
}
