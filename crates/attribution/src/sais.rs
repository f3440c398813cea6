//! Suffix array construction by induced sorting (SA-IS, Nong, Zhang and Chan 2009)
//! over an integer alphabet, in the compact formulation of the AtCoder Library's
//! `sa_is` (a virtual sentinel, L/S types in a byte vector, LMS substrings named
//! and sorted recursively).
//!
//! Linear time whatever the text (long repeats included), about 16 bytes of
//! working memory per symbol on top of the input. Small inputs use a plain
//! comparison sort, which is faster below a few dozen symbols.

const EMPTY: u32 = u32::MAX;
/// Bit 31 of a symbol holds its suffix's type while SA-IS runs (set: S-type), so
/// that the induction loops read the symbol and the type in one memory access.
const S_TYPE: u32 = 1 << 31;
const SYMBOL: u32 = S_TYPE - 1;

/// The suffix array of `s`, whose symbols are all `<= upper < 2^31`: the starting
/// positions of the suffixes of `s` in lexicographic order (a proper prefix sorts
/// before the longer string). `s.len()` must be below 2^31. `s` is used as
/// scratch space and restored before returning.
pub fn suffix_array(s: &mut [u32], upper: u32) -> Vec<u32> {
    assert!(s.len() < S_TYPE as usize, "SA-IS input of {} symbols is too long for u32 positions", s.len());
    assert!(upper < S_TYPE, "SA-IS symbols must be below 2^31");
    debug_assert!(s.iter().all(|&c| c <= upper));
    let sa = sa_is(s, upper as usize);
    for c in s.iter_mut() {
        *c &= SYMBOL;
    }
    sa
}

/// How far ahead the induction loops prefetch (entries of the suffix array).
const AHEAD: usize = 32;

/// Ask the CPU to fetch the cache line of `p`: the induction loops read and write
/// all over the input and the array, and are bound by memory latency otherwise.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and has no visible effect,
    // whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn sa_naive(s: &[u32]) -> Vec<u32> {
    let mut sa: Vec<u32> = (0..s.len() as u32).collect();
    sa.sort_unstable_by(|&a, &b| s[a as usize..].cmp(&s[b as usize..]));
    sa
}

/// SA-IS; leaves the type bits set in `s`.
fn sa_is(s: &mut [u32], upper: usize) -> Vec<u32> {
    let n = s.len();
    match n {
        0 => return Vec::new(),
        1 => return vec![0],
        2 => return if s[0] < s[1] { vec![0, 1] } else { vec![1, 0] },
        _ if n < 40 => return sa_naive(s),
        _ => {}
    }
    mark_types(s);
    let s: &[u32] = s;
    let is_s = |i: usize| s[i] & S_TYPE != 0;
    let (sum_l, sum_s) = bucket_starts(s, upper);

    let mut sa = vec![EMPTY; n];
    let mut buf = vec![0u32; upper + 2];
    let induce = |lms: &[u32], sa: &mut [u32], buf: &mut [u32]| {
        sa.fill(EMPTY);
        buf[..=upper].copy_from_slice(&sum_s[..=upper]);
        for &d in lms {
            let c = (s[d as usize] & SYMBOL) as usize;
            sa[buf[c] as usize] = d;
            buf[c] += 1;
        }
        buf[..=upper].copy_from_slice(&sum_l[..=upper]);
        let c = (s[n - 1] & SYMBOL) as usize;
        sa[buf[c] as usize] = (n - 1) as u32;
        buf[c] += 1;
        for i in 0..n {
            // Two stages ahead: the symbol before a later entry, and where it will go.
            if i + AHEAD < n {
                prefetch(s.as_ptr().wrapping_add((sa[i + AHEAD] as usize).wrapping_sub(1)));
                let w = sa[i + AHEAD / 2] as usize;
                if w.wrapping_sub(1) < n {
                    let c = (s[w - 1] & SYMBOL) as usize;
                    prefetch(sa.as_ptr().wrapping_add(buf[c] as usize));
                }
            }
            let v = sa[i];
            if v != EMPTY && v >= 1 {
                let x = s[v as usize - 1];
                if x & S_TYPE == 0 {
                    let c = (x & SYMBOL) as usize;
                    sa[buf[c] as usize] = v - 1;
                    buf[c] += 1;
                }
            }
        }
        buf[..=upper].copy_from_slice(&sum_l[..=upper]);
        for i in (0..n).rev() {
            if i >= AHEAD {
                prefetch(s.as_ptr().wrapping_add((sa[i - AHEAD] as usize).wrapping_sub(1)));
                let w = sa[i - AHEAD / 2] as usize;
                if w.wrapping_sub(1) < n {
                    let c = (s[w - 1] & SYMBOL) as usize + 1;
                    prefetch(sa.as_ptr().wrapping_add((buf[c] as usize).wrapping_sub(1)));
                }
            }
            let v = sa[i];
            if v != EMPTY && v >= 1 {
                let x = s[v as usize - 1];
                if x & S_TYPE != 0 {
                    let c = (x & SYMBOL) as usize + 1;
                    buf[c] -= 1;
                    sa[buf[c] as usize] = v - 1;
                }
            }
        }
    };

    // LMS positions (an S-type suffix right after an L-type one), numbered left to right.
    let mut lms_map = vec![EMPTY; n + 1];
    let mut lms: Vec<u32> = Vec::new();
    for (i, slot) in lms_map.iter_mut().enumerate().take(n).skip(1) {
        if !is_s(i - 1) && is_s(i) {
            *slot = lms.len() as u32;
            lms.push(i as u32);
        }
    }
    let m = lms.len();
    induce(&lms, &mut sa, &mut buf);

    if m > 0 {
        let mut sorted_lms: Vec<u32> = Vec::with_capacity(m);
        for (i, &v) in sa.iter().enumerate() {
            if let Some(&w) = sa.get(i + AHEAD) {
                prefetch(lms_map.as_ptr().wrapping_add(w as usize));
            }
            if lms_map[v as usize] != EMPTY {
                sorted_lms.push(v);
            }
        }
        let (mut rec_s, rec_upper) = name_lms_substrings(s, &lms, &sorted_lms, &lms_map);
        drop(lms_map);
        let rec_sa = sa_is(&mut rec_s, rec_upper as usize);
        drop(rec_s);
        for (slot, &r) in sorted_lms.iter_mut().zip(&rec_sa) {
            *slot = lms[r as usize];
        }
        drop(rec_sa);
        induce(&sorted_lms, &mut sa, &mut buf);
    }
    sa
}

/// Mark each suffix's type in bit 31 of its first symbol, right to left: the
/// last suffix is L-type.
fn mark_types(s: &mut [u32]) {
    for i in (0..s.len() - 1).rev() {
        let (c, next) = (s[i], s[i + 1]);
        let is_s = c < next & SYMBOL || (c == next & SYMBOL && next & S_TYPE != 0);
        if is_s {
            s[i] = c | S_TYPE;
        }
    }
}

/// `(sum_l, sum_s)` of a typed `s`: `sum_l[c]` is the start of bucket c (its L
/// part), `sum_s[c]` the start of the S part of bucket c.
fn bucket_starts(s: &[u32], upper: usize) -> (Vec<u32>, Vec<u32>) {
    let mut sum_l = vec![0u32; upper + 2];
    let mut sum_s = vec![0u32; upper + 2];
    for &x in s {
        let c = (x & SYMBOL) as usize;
        if x & S_TYPE == 0 {
            sum_s[c] += 1;
        } else {
            sum_l[c + 1] += 1;
        }
    }
    for i in 0..=upper {
        sum_s[i] += sum_l[i];
        if i < upper {
            sum_l[i + 1] += sum_s[i];
        }
    }
    (sum_l, sum_s)
}

/// Name the LMS substrings in their sorted order: equal substrings get the
/// same name. Returns the names in text order (the reduced string) and the
/// largest name.
fn name_lms_substrings(s: &[u32], lms: &[u32], sorted_lms: &[u32], lms_map: &[u32]) -> (Vec<u32>, u32) {
    let (n, m) = (s.len(), lms.len());
    let sym = |i: usize| (s[i] & SYMBOL) as usize;
    let mut rec_s = vec![0u32; m];
    let mut rec_upper = 0u32;
    rec_s[lms_map[sorted_lms[0] as usize] as usize] = 0;
    for i in 1..m {
        let mut l = sorted_lms[i - 1] as usize;
        let mut r = sorted_lms[i] as usize;
        let li = lms_map[l] as usize;
        let ri = lms_map[r] as usize;
        let end_l = if li + 1 < m { lms[li + 1] as usize } else { n };
        let end_r = if ri + 1 < m { lms[ri + 1] as usize } else { n };
        let mut same = true;
        if end_l - l != end_r - r {
            same = false;
        } else {
            while l < end_l {
                if sym(l) != sym(r) {
                    break;
                }
                l += 1;
                r += 1;
            }
            if l == n || r == n || sym(l) != sym(r) {
                same = false;
            }
        }
        if !same {
            rec_upper += 1;
        }
        rec_s[ri] = rec_upper;
    }
    (rec_s, rec_upper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_cases() {
        assert!(suffix_array(&mut [], 0).is_empty());
        assert_eq!(suffix_array(&mut [5], 5), vec![0]);
        assert_eq!(suffix_array(&mut [2, 1], 2), vec![1, 0]);
        // "banana" with a=0 b=1 n=2
        let mut s = [1, 0, 2, 0, 2, 0];
        assert_eq!(suffix_array(&mut s, 2), vec![5, 3, 1, 0, 4, 2]);
        assert_eq!(s, [1, 0, 2, 0, 2, 0]);
    }

    #[test]
    fn long_repeats() {
        let mut s = vec![3u32; 10_000];
        let sa = suffix_array(&mut s, 3);
        assert_eq!(sa, (0..10_000u32).rev().collect::<Vec<_>>());
        let s: Vec<u32> = (0..20_000u32).map(|i| i % 7 % 3).collect();
        let mut t = s.clone();
        assert_eq!(suffix_array(&mut t, 2), sa_naive(&s));
        assert_eq!(t, s);
    }

    proptest! {
        #[test]
        fn matches_naive(s in proptest::collection::vec(0u32..4, 0..600), big in 0u32..3) {
            // Also a sparse large alphabet.
            let s: Vec<u32> = s.into_iter().map(|c| c * (1 + big * 1000)).collect();
            let upper = s.iter().copied().max().unwrap_or(0);
            let mut t = s.clone();
            prop_assert_eq!(suffix_array(&mut t, upper), sa_naive(&s));
            prop_assert_eq!(t, s);
        }
    }
}
