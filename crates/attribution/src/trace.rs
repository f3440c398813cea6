//! Span tracing, as OLMoTrace does it, into per-contribution credits.
//!
//! For a response (token ids, and per token whether it starts a word):
//! 1. at every word-start position `i`, the longest span `response[i..e]` that
//!    occurs in the index (one binary search for the rest of the response: the
//!    longest match is with a neighbour of its insertion point, so O(L log N) for
//!    the whole response);
//! 2. cut to word boundaries: `e` backs off until `e` is the response end or a
//!    word start; the span is kept if it has at least `min_len` tokens, occurs at
//!    most `max_frequency` times, and at least once in a row that is not tombstoned;
//! 3. maximal spans only: a span whose end does not pass the end of the previous
//!    kept span is contained in it and dropped (infini-gram's `attribute`);
//! 4. ranked by rarity, the span's negated unigram log-probability
//!    `Σ log2(N / count(token))` (lowest log-probability first; ties by start), in
//!    fixed point with 32 fractional bits (`log2`, not `ln`: the same ranking and
//!    the same normalised weights, and integer-exact on every machine);
//! 5. the first `ceil(max_density_ppm × L / 10^6)` spans are kept (returned in start
//!    order); each credits the first `max_rows_per_span` non-tombstoned rows that
//!    contain it, in row order;
//! 6. credits: a span's weight is its rarity (at least 1) over the total, split
//!    equally between its rows, summed per contribution; the `max_credits`
//!    contributions with the most weight (ties: lower id) are kept and given parts
//!    per million by largest remainder (ties: lower id), summing to exactly
//!    1,000,000; per contributor the same over the kept contributions (ties: lower
//!    address). Entries that round to 0 are left out. All of it exact integer
//!    arithmetic (u128, common denominator lcm of the row counts).
//!
//! # Canonical bytes (version 1, little-endian)
//! ```text
//! magic "OLTRACE1" (8)
//! index key: tokenizer hash (32), Datanet id u64, version u64; index digest (32)
//! params: min_len u32, max_frequency u64, max_density_ppm u32, max_rows_per_span u32, max_credits u32
//! response length u32, response digest (32) = blake3(token ids as u32 ‖ word-start flags as 0/1 bytes)
//! spans u32, each: token_start u32, token_end u32, count u64, rarity u64,
//!                  rows u32, each: contribution u64, row index u32, contributor (20)
//! credits u32, each: contribution u64, ppm u32            (contribution order)
//! contributors u32, each: contributor (20), ppm u32       (address order)
//! ```
//! [`SpanTrace::hash`] is the blake3 of these bytes.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Range;

use primitives::rows::RowId;
use primitives::{Address, B256};
use rayon::prelude::*;

use crate::index::{IndexKey, RowRef, SpanIndex, Tok, View, with_view};
use crate::{AttrError, log2_fixed};

/// The first 8 bytes of a trace's canonical bytes.
pub const TRACE_MAGIC: [u8; 8] = *b"OLTRACE1";
const PPM: u128 = 1_000_000;
/// The row-count denominators stay exact up to this many rows per span.
const MAX_ROWS_PER_SPAN: u32 = 32;

/// The governed parameters of span tracing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParams {
    /// Shortest span, in tokens (OLMoTrace's UI default is 1; spans this short are
    /// noise for payment, so 8).
    pub min_len: u32,
    /// Spans occurring more often than this are dropped (OLMoTrace: 1,000,000).
    pub max_frequency: u64,
    /// Kept spans per response token, in parts per million (OLMoTrace: 0.05).
    pub max_density_ppm: u32,
    /// Rows credited per span (OLMoTrace: 10 documents per span); at most 32.
    pub max_rows_per_span: u32,
    /// Contributions credited per trace (a record credits a bounded number).
    pub max_credits: u32,
}

impl Default for TraceParams {
    fn default() -> Self {
        TraceParams {
            min_len: 8,
            max_frequency: 1_000_000,
            max_density_ppm: 50_000,
            max_rows_per_span: 10,
            max_credits: 64,
        }
    }
}

impl TraceParams {
    fn check(&self) -> Result<(), AttrError> {
        let bad = |m: &str| Err(AttrError::Params(m.to_string()));
        if self.min_len == 0 {
            return bad("min_len must be at least 1");
        }
        if self.max_frequency == 0 {
            return bad("max_frequency must be at least 1");
        }
        if self.max_density_ppm > 1_000_000 {
            return bad("max_density_ppm is at most 1,000,000 (one span per token)");
        }
        if self.max_rows_per_span == 0 || self.max_rows_per_span > MAX_ROWS_PER_SPAN {
            return bad("max_rows_per_span must be 1 to 32");
        }
        if self.max_credits == 0 {
            return bad("max_credits must be at least 1");
        }
        Ok(())
    }
}

/// A maximal span before ranking: `response[token_start..token_end]` occurs `count`
/// times in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanCandidate {
    pub token_start: u32,
    pub token_end: u32,
    pub count: u64,
}

/// A kept span and the rows it credits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub token_start: u32,
    pub token_end: u32,
    /// Occurrences in the index (tombstoned rows' included).
    pub count: u64,
    /// `Σ log2(N / count(token))` over the span's tokens, 32 fractional bits.
    pub rarity: u64,
    /// The rows credited, in row order.
    pub rows: Vec<RowRef>,
}

/// The span part of an attribution record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpanTrace {
    pub index: IndexKey,
    pub index_digest: B256,
    pub params: TraceParams,
    pub response_len: u32,
    pub response_digest: B256,
    /// In start order.
    pub spans: Vec<Span>,
    /// (contribution id, parts per million), in contribution order; sums to 1,000,000
    /// unless empty (nothing qualified: the fallback applies).
    pub credits: Vec<(u64, u32)>,
    /// (contributor, parts per million), in address order; the same total.
    pub contributors: Vec<(Address, u32)>,
}

/// Parts per million of a response's tokens covered, and the like, for display.
fn ceil_density(ppm: u32, len: usize) -> usize {
    ((ppm as u128 * len as u128).div_ceil(PPM)) as usize
}

/// The digest of a response as the canonical bytes name it.
pub fn response_digest(response: &[u32], word_start: &[bool]) -> B256 {
    let mut h = blake3::Hasher::new();
    for t in response {
        h.update(&t.to_le_bytes());
    }
    for &w in word_start {
        h.update(&[w as u8]);
    }
    B256::from(*h.finalize().as_bytes())
}

struct Found {
    start: usize,
    end: usize,
    range: Range<usize>,
}

fn check_input(response: &[u32], word_start: &[bool]) -> Result<(), AttrError> {
    if response.len() != word_start.len() {
        return Err(AttrError::Input(format!("{} tokens but {} word-start flags", response.len(), word_start.len())));
    }
    if response.len() > u32::MAX as usize {
        return Err(AttrError::Input("response longer than 2^32 tokens".into()));
    }
    Ok(())
}

/// Steps 1–3: the maximal spans, in start order.
fn find_maximal<T: Tok>(
    v: &View<'_, T>,
    response: &[u32],
    word_start: &[bool],
    min_len: usize,
    max_frequency: u64,
) -> Vec<Found> {
    let l = response.len();
    // Stored tokens, and where each in-vocabulary run ends: a span never holds an
    // out-of-vocabulary token (the stand-in 0 stored for one is never compared).
    let rt: Vec<T> = response.iter().map(|&t| T::from_u32(if t < v.vocab { t } else { 0 })).collect();
    let mut run_end = vec![l; l + 1];
    for i in (0..l).rev() {
        run_end[i] = if response[i] < v.vocab { run_end[i + 1] } else { i };
    }
    let found: Vec<Option<Found>> = (0..l)
        .into_par_iter()
        .map(|i| {
            if !word_start[i] || run_end[i] - i < min_len {
                return None;
            }
            let longest = v.longest_prefix(&rt[i..run_end[i]]);
            let mut e = i + longest;
            while e > i && e < l && !word_start[e] {
                e -= 1;
            }
            if e - i < min_len {
                return None;
            }
            let range = v.find(&rt[i..e]);
            if range.len() as u64 > max_frequency || !v.any_live(range.clone()) {
                return None;
            }
            Some(Found { start: i, end: e, range })
        })
        .collect();
    let mut out = Vec::new();
    let mut last_end = 0;
    for f in found.into_iter().flatten() {
        if f.end > last_end {
            last_end = f.end;
            out.push(f);
        }
    }
    out
}

/// The maximal spans of a response (steps 1–3 above, before ranking and the
/// density cap): what infini-gram's `attribute` returns, for comparison.
pub fn maximal_spans(
    index: &SpanIndex,
    response: &[u32],
    word_start: &[bool],
    min_len: u32,
    max_frequency: u64,
) -> Result<Vec<SpanCandidate>, AttrError> {
    check_input(response, word_start)?;
    let min_len = min_len.max(1) as usize;
    Ok(with_view!(index.view(), v => find_maximal(&v, response, word_start, min_len, max_frequency)
        .into_iter()
        .map(|f| SpanCandidate { token_start: f.start as u32, token_end: f.end as u32, count: f.range.len() as u64 })
        .collect()))
}

/// Trace a response through the index: the spans and the credits (see the module
/// documentation for every step). Deterministic: the same bytes for the same index,
/// response and parameters, whatever the thread count.
pub fn trace(
    index: &SpanIndex,
    response: &[u32],
    word_start: &[bool],
    p: &TraceParams,
) -> Result<SpanTrace, AttrError> {
    p.check()?;
    check_input(response, word_start)?;
    let spans = with_view!(index.view(), v => select_spans(&v, response, word_start, p));
    let (credits, contributors) = split_credits(&spans, p.max_credits as usize)?;
    Ok(SpanTrace {
        index: index.key(),
        index_digest: index.digest(),
        params: *p,
        response_len: response.len() as u32,
        response_digest: response_digest(response, word_start),
        spans,
        credits,
        contributors,
    })
}

/// Steps 1–5.
fn select_spans<T: Tok>(v: &View<'_, T>, response: &[u32], word_start: &[bool], p: &TraceParams) -> Vec<Span> {
    let found = find_maximal(v, response, word_start, p.min_len as usize, p.max_frequency);
    if found.is_empty() {
        return Vec::new();
    }
    // Rarity: prefix sums of log2(N / count(token)).
    let log_n = log2_fixed(v.n_tokens as u64);
    let mut pre = vec![0u64; response.len() + 1];
    for (i, &t) in response.iter().enumerate() {
        let c = if t < v.vocab { v.unigram(T::from_u32(t)) } else { 0 };
        let lp = if c == 0 { 0 } else { log_n - log2_fixed(c) };
        pre[i + 1] = pre[i] + lp;
    }
    let mut ranked: Vec<(u64, Found)> = found.into_iter().map(|f| (pre[f.end] - pre[f.start], f)).collect();
    ranked.sort_by_key(|(rarity, f)| (Reverse(*rarity), f.start));
    ranked.truncate(ceil_density(p.max_density_ppm, response.len()));
    ranked.sort_by_key(|(_, f)| f.start);
    ranked
        .into_par_iter()
        .map(|(rarity, f)| Span {
            token_start: f.start as u32,
            token_end: f.end as u32,
            count: f.range.len() as u64,
            rarity,
            rows: v.live_rows(f.range, p.max_rows_per_span as usize).into_iter().map(|r| v.row_ref(r)).collect(),
        })
        .collect()
}

fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Largest-remainder parts per million of `weights` (sorted by key, total > 0);
/// zero parts are left out.
fn largest_remainder<K: Copy + Ord>(weights: &[(K, u128)]) -> Result<Vec<(K, u32)>, AttrError> {
    let overflow = || AttrError::Params("credit arithmetic overflows u128".into());
    let total: u128 = weights.iter().try_fold(0u128, |a, (_, w)| a.checked_add(*w)).ok_or_else(overflow)?;
    let mut parts = Vec::with_capacity(weights.len());
    let mut given = 0u128;
    for &(k, w) in weights {
        let scaled = w.checked_mul(PPM).ok_or_else(overflow)?;
        parts.push((k, scaled / total, scaled % total));
        given += scaled / total;
    }
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| (Reverse(parts[i].2), parts[i].0));
    for &i in order.iter().take((PPM - given) as usize) {
        parts[i].1 += 1;
    }
    Ok(parts.into_iter().filter(|p| p.1 > 0).map(|(k, q, _)| (k, q as u32)).collect())
}

type Credits = (Vec<(u64, u32)>, Vec<(Address, u32)>);

/// Step 6.
fn split_credits(spans: &[Span], max_credits: usize) -> Result<Credits, AttrError> {
    if spans.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let overflow = || AttrError::Params("credit arithmetic overflows u128".into());
    // A common denominator for "split equally between its rows".
    let mut d: u128 = 1;
    for s in spans {
        let k = s.rows.len().max(1) as u128;
        d = d / gcd(d, k) * k;
    }
    let mut by_contribution: BTreeMap<u64, u128> = BTreeMap::new();
    let mut by_pair: BTreeMap<(u64, Address), u128> = BTreeMap::new();
    for s in spans {
        let share = (s.rarity.max(1) as u128).checked_mul(d / s.rows.len().max(1) as u128).ok_or_else(overflow)?;
        for r in &s.rows {
            let RowId { contribution, .. } = r.id;
            let c = by_contribution.entry(contribution).or_default();
            *c = c.checked_add(share).ok_or_else(overflow)?;
            *by_pair.entry((contribution, r.contributor)).or_default() += share;
        }
    }
    let mut kept: Vec<(u64, u128)> = by_contribution.into_iter().collect();
    kept.sort_by_key(|&(id, w)| (Reverse(w), id));
    kept.truncate(max_credits);
    kept.sort_by_key(|&(id, _)| id);
    let credits = largest_remainder(&kept)?;
    let mut by_contributor: BTreeMap<Address, u128> = BTreeMap::new();
    for ((c, a), w) in by_pair {
        if kept.binary_search_by_key(&c, |&(id, _)| id).is_ok() {
            *by_contributor.entry(a).or_default() += w;
        }
    }
    let by_contributor: Vec<(Address, u128)> = by_contributor.into_iter().collect();
    let contributors = largest_remainder(&by_contributor)?;
    Ok((credits, contributors))
}

impl SpanTrace {
    /// The canonical bytes (layout in the module documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256 + self.spans.iter().map(|s| 32 + 32 * s.rows.len()).sum::<usize>());
        b.extend_from_slice(&TRACE_MAGIC);
        b.extend_from_slice(self.index.tokenizer.as_slice());
        b.extend_from_slice(&self.index.datanet.to_le_bytes());
        b.extend_from_slice(&self.index.version.to_le_bytes());
        b.extend_from_slice(self.index_digest.as_slice());
        let p = &self.params;
        b.extend_from_slice(&p.min_len.to_le_bytes());
        b.extend_from_slice(&p.max_frequency.to_le_bytes());
        b.extend_from_slice(&p.max_density_ppm.to_le_bytes());
        b.extend_from_slice(&p.max_rows_per_span.to_le_bytes());
        b.extend_from_slice(&p.max_credits.to_le_bytes());
        b.extend_from_slice(&self.response_len.to_le_bytes());
        b.extend_from_slice(self.response_digest.as_slice());
        b.extend_from_slice(&(self.spans.len() as u32).to_le_bytes());
        for s in &self.spans {
            b.extend_from_slice(&s.token_start.to_le_bytes());
            b.extend_from_slice(&s.token_end.to_le_bytes());
            b.extend_from_slice(&s.count.to_le_bytes());
            b.extend_from_slice(&s.rarity.to_le_bytes());
            b.extend_from_slice(&(s.rows.len() as u32).to_le_bytes());
            for r in &s.rows {
                b.extend_from_slice(&r.id.contribution.to_le_bytes());
                b.extend_from_slice(&r.id.index.to_le_bytes());
                b.extend_from_slice(r.contributor.as_slice());
            }
        }
        b.extend_from_slice(&(self.credits.len() as u32).to_le_bytes());
        for (c, ppm) in &self.credits {
            b.extend_from_slice(&c.to_le_bytes());
            b.extend_from_slice(&ppm.to_le_bytes());
        }
        b.extend_from_slice(&(self.contributors.len() as u32).to_le_bytes());
        for (a, ppm) in &self.contributors {
            b.extend_from_slice(a.as_slice());
            b.extend_from_slice(&ppm.to_le_bytes());
        }
        b
    }

    /// blake3 of the canonical bytes.
    pub fn hash(&self) -> B256 {
        B256::from(*blake3::hash(&self.canonical_bytes()).as_bytes())
    }

    /// Parse canonical bytes (the whole input, nothing after).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<SpanTrace, AttrError> {
        let mut r = Reader { b: bytes };
        if r.take(8)? != TRACE_MAGIC {
            return Err(AttrError::Decode("not a span trace (magic)".into()));
        }
        let index = IndexKey { tokenizer: r.b256()?, datanet: r.u64()?, version: r.u64()? };
        let index_digest = r.b256()?;
        let params = TraceParams {
            min_len: r.u32()?,
            max_frequency: r.u64()?,
            max_density_ppm: r.u32()?,
            max_rows_per_span: r.u32()?,
            max_credits: r.u32()?,
        };
        let response_len = r.u32()?;
        let response_digest = r.b256()?;
        let n = r.count(32)?;
        let mut spans = Vec::with_capacity(n);
        for _ in 0..n {
            let (token_start, token_end, count, rarity) = (r.u32()?, r.u32()?, r.u64()?, r.u64()?);
            let k = r.count(32)?;
            let mut rows = Vec::with_capacity(k);
            for _ in 0..k {
                let id = RowId { contribution: r.u64()?, index: r.u32()? };
                rows.push(RowRef { id, contributor: r.address()? });
            }
            spans.push(Span { token_start, token_end, count, rarity, rows });
        }
        let n = r.count(12)?;
        let mut credits = Vec::with_capacity(n);
        for _ in 0..n {
            credits.push((r.u64()?, r.u32()?));
        }
        let n = r.count(24)?;
        let mut contributors = Vec::with_capacity(n);
        for _ in 0..n {
            contributors.push((r.address()?, r.u32()?));
        }
        if !r.b.is_empty() {
            return Err(AttrError::Decode(format!("{} bytes after the end", r.b.len())));
        }
        Ok(SpanTrace { index, index_digest, params, response_len, response_digest, spans, credits, contributors })
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AttrError> {
        if self.b.len() < n {
            return Err(AttrError::Decode("truncated".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32, AttrError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, AttrError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn b256(&mut self) -> Result<B256, AttrError> {
        Ok(B256::from_slice(self.take(32)?))
    }
    fn address(&mut self) -> Result<Address, AttrError> {
        Ok(Address::from_slice(self.take(20)?))
    }
    /// An element count, refused if the remaining bytes cannot hold that many
    /// elements of at least `min_size` bytes (so a forged count cannot allocate).
    fn count(&mut self, min_size: usize) -> Result<usize, AttrError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.b.len() {
            return Err(AttrError::Decode("count larger than the remaining bytes".into()));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_sums_exactly() {
        let w = [(1u64, 1u128), (2, 1), (3, 1)];
        let p = largest_remainder(&w).unwrap();
        assert_eq!(p, vec![(1, 333_334), (2, 333_333), (3, 333_333)]);
        let w = [(5u64, 7u128), (9, 0), (11, 3)];
        let p = largest_remainder(&w).unwrap();
        assert_eq!(p.iter().map(|x| x.1 as u64).sum::<u64>(), 1_000_000);
        assert_eq!(p, vec![(5, 700_000), (11, 300_000)]);
        // A tiny weight among big ones rounds to 0 and is left out.
        let w = [(1u64, 10_000_000u128), (2, 1)];
        assert_eq!(largest_remainder(&w).unwrap(), vec![(1, 1_000_000)]);
    }

    #[test]
    fn params_are_checked() {
        let ok = TraceParams::default();
        assert!(ok.check().is_ok());
        assert!(TraceParams { min_len: 0, ..ok }.check().is_err());
        assert!(TraceParams { max_rows_per_span: 33, ..ok }.check().is_err());
        assert!(TraceParams { max_density_ppm: 1_000_001, ..ok }.check().is_err());
        assert!(TraceParams { max_credits: 0, ..ok }.check().is_err());
        assert_eq!(ceil_density(50_000, 500), 25);
        assert_eq!(ceil_density(50_000, 1), 1);
        assert_eq!(ceil_density(50_000, 0), 0);
    }

    #[test]
    fn decode_refuses_junk() {
        assert!(SpanTrace::from_canonical_bytes(b"nope").is_err());
        let t = SpanTrace {
            index: IndexKey { tokenizer: B256::ZERO, datanet: 1, version: 1 },
            index_digest: B256::ZERO,
            params: TraceParams::default(),
            response_len: 0,
            response_digest: B256::ZERO,
            spans: vec![],
            credits: vec![],
            contributors: vec![],
        };
        let mut b = t.canonical_bytes();
        assert_eq!(SpanTrace::from_canonical_bytes(&b).unwrap(), t);
        b.push(0);
        assert!(SpanTrace::from_canonical_bytes(&b).is_err());
        let n = b.len();
        b.truncate(n - 2);
        assert!(SpanTrace::from_canonical_bytes(&b).is_err());
    }
}
