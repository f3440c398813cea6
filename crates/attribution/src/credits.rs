//! Credits in parts per million: exact sums of 10^6 from scores, the mix of
//! the two methods, and leaving out excluded (flagged) contributions.

use std::collections::BTreeMap;

/// Integer ppm weights summing to exactly 10^6 from non-negative scores, at
/// most `max` entries (the largest scores), largest remainder, ties by key.
pub fn to_ppm(scores: &BTreeMap<u64, f64>, max: usize) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, f64)> =
        scores.iter().filter(|(_, s)| **s > 0.0 && s.is_finite()).map(|(k, s)| (*k, *s)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(max);
    let total: f64 = v.iter().map(|x| x.1).sum();
    if v.is_empty() || total <= 0.0 {
        return vec![];
    }
    let mut parts: Vec<(u64, u32, f64)> = v
        .iter()
        .map(|(k, s)| {
            let exact = s / total * 1e6;
            (*k, exact.floor() as u32, exact - exact.floor())
        })
        .collect();
    let mut left = 1_000_000u32 - parts.iter().map(|p| p.1).sum::<u32>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.total_cmp(&parts[a].2).then(parts[a].0.cmp(&parts[b].0)));
    for i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        parts[*i].1 += 1;
        left -= 1;
    }
    let mut out: Vec<(u64, u32)> = parts.into_iter().filter(|p| p.1 > 0).map(|p| (p.0, p.1)).collect();
    out.sort();
    out
}

/// Mix two ppm vectors: `span_weight` ppm of the first, the rest of the second
/// (all of one when the other is empty); result re-normalised to 10^6.
pub fn mix(span: &[(u64, u32)], gradient: &[(u64, u32)], span_weight_ppm: u32, max: usize) -> Vec<(u64, u32)> {
    let (ws, wg) = match (span.is_empty(), gradient.is_empty()) {
        (true, true) => return vec![],
        (false, true) => (1_000_000u32, 0),
        (true, false) => (0, 1_000_000u32),
        (false, false) => (span_weight_ppm, 1_000_000 - span_weight_ppm),
    };
    let mut scores: BTreeMap<u64, f64> = BTreeMap::new();
    for (c, w) in span {
        *scores.entry(*c).or_default() += *w as f64 * ws as f64;
    }
    for (c, w) in gradient {
        *scores.entry(*c).or_default() += *w as f64 * wg as f64;
    }
    to_ppm(&scores, max)
}

/// `v` without the excluded contributions, re-normalised to 10^6 (unchanged if none is excluded).
pub(crate) fn without(v: &[(u64, u32)], excluded: &[u64]) -> Vec<(u64, u32)> {
    if !v.iter().any(|(c, _)| excluded.contains(c)) {
        return v.to_vec();
    }
    let kept: BTreeMap<u64, f64> =
        v.iter().filter(|(c, _)| !excluded.contains(c)).map(|(c, w)| (*c, *w as f64)).collect();
    to_ppm(&kept, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_sums_exactly_and_mixing_rules() {
        let s: BTreeMap<u64, f64> = [(1, 1.0), (2, 1.0), (3, 1.0)].into_iter().collect();
        let p = to_ppm(&s, 32);
        assert_eq!(p.iter().map(|x| x.1).sum::<u32>(), 1_000_000);
        assert_eq!(p, vec![(1, 333_334), (2, 333_333), (3, 333_333)]);
        assert_eq!(to_ppm(&s, 2).len(), 2);
        assert!(to_ppm(&BTreeMap::new(), 4).is_empty());
        let m = mix(&[(1, 1_000_000)], &[(2, 1_000_000)], 250_000, 32);
        assert_eq!(m, vec![(1, 250_000), (2, 750_000)]);
        assert_eq!(mix(&[], &[(2, 1_000_000)], 250_000, 32), vec![(2, 1_000_000)]);
        assert_eq!(mix(&[(1, 1_000_000)], &[], 250_000, 32), vec![(1, 1_000_000)]);
    }
}
