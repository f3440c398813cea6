//! The retrieval part of a record (version 3): paying the contributors of the
//! Datanet rows a serving node retrieved and put in the prompt, by what the
//! answer quotes of them.
//!
//! Retrieval ranks rows by float scores, and the serving node chooses what it
//! retrieves, so payment never depends on the ranking: the record lists the
//! retrieved rows, and a contribution's support is the number of answer
//! tokens covered by the answer's maximal spans (the span method:
//! [`crate::maximal_spans`], at least `attribution.min_span_tokens` tokens, on
//! word boundaries) that occur in its retrieved rows. Support is an integer,
//! its ppm come from integer largest-remainder rounding ([`int_ppm`]), and the
//! record's final credits combine the training-data credits and the
//! retrieval credits by `attribution.retrieval_share_bps` ([`combine`]), also
//! in integers. A node that retrieves rows of its own gains nothing unless
//! the answer quotes them, and anyone holding the answer and the rows
//! recomputes the part byte for byte.

use std::collections::BTreeMap;

use ml::TextTokenizer;
use primitives::Address;
use primitives::rows::RowId;
use serde_json::Value;

use crate::record::{AttributionRecord, DatanetVersionRef, RecordParams, RetrievalPartRecord, SpanRecord};
use crate::{IndexKey, IndexRow, SpanIndex};

pub(crate) const RETRIEVAL_METHOD: &str = "retrieved-row-spans";
/// Most rows one answer retrieves (the retrieval API's largest `k`).
pub const MAX_RETRIEVED_ROWS: usize = 64;
const BPS: u128 = 10_000;
const PPM: u128 = 1_000_000;

/// One retrieved row: its id and token ids (the row's text as the span
/// index tokenises it, `node::spans::row_text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievedRow {
    pub contribution: u64,
    pub row: u32,
    pub tokens: Vec<u32>,
}

/// What the retrieval part is computed from: the Datanet versions retrieved
/// from (in (datanet, version) order) and the rows, in prompt order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalInputs {
    pub datanets: Vec<(u64, u64)>,
    pub rows: Vec<RetrievedRow>,
}

/// Integer ppm summing to exactly 10^6 from non-negative integer scores: at
/// most `max` entries (the largest scores, ties to the lower key), each
/// `floor(score × 10^6 / total)` plus one for the largest remainders (ties to
/// the lower key); empty when every score is zero.
pub fn int_ppm(scores: &BTreeMap<u64, u128>, max: usize) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u128)> = scores.iter().filter(|(_, s)| **s > 0).map(|(k, s)| (*k, *s)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(max);
    let total: u128 = v.iter().map(|x| x.1).sum();
    if total == 0 {
        return vec![];
    }
    let mut parts: Vec<(u64, u128, u128)> = v.iter().map(|(k, s)| (*k, s * PPM / total, s * PPM % total)).collect();
    let left = PPM - parts.iter().map(|p| p.1).sum::<u128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.cmp(&parts[a].2).then(parts[a].0.cmp(&parts[b].0)));
    // The floors lose less than one ppm per entry, so `left < parts.len()`.
    for &i in order.iter().take(left as usize) {
        parts[i].1 += 1;
    }
    let mut out: Vec<(u64, u32)> = parts.into_iter().filter(|p| p.1 > 0).map(|p| (p.0, p.1 as u32)).collect();
    out.sort();
    out
}

/// The final credits of a record with a retrieval part: `share_bps` of the
/// data share to the retrieval credits, the rest to the training-data
/// credits, re-normalised to 10^6 in integers ([`int_ppm`]). When the answer
/// quotes no retrieved row (or the share is 0) the training credits stand;
/// when training attribution credits nothing (the base model has no
/// Datanets) the retrieval credits take it all.
pub fn combine(training: &[(u64, u32)], retrieval: &[(u64, u32)], share_bps: u32, max: usize) -> Vec<(u64, u32)> {
    if retrieval.is_empty() || share_bps == 0 {
        return training.to_vec();
    }
    if training.is_empty() {
        return retrieval.to_vec();
    }
    let share = (share_bps as u128).min(BPS);
    let mut scores: BTreeMap<u64, u128> = BTreeMap::new();
    for (c, w) in training {
        *scores.entry(*c).or_default() += *w as u128 * (BPS - share);
    }
    for (c, w) in retrieval {
        *scores.entry(*c).or_default() += *w as u128 * share;
    }
    int_ppm(&scores, max)
}

/// The checks that make a retrieval part well formed.
pub(crate) fn validate(r: &RetrievalPartRecord) -> Result<(), String> {
    if r.method != RETRIEVAL_METHOD {
        return Err(format!("unknown retrieval method {:?}", r.method));
    }
    if r.share_bps as u128 > BPS {
        return Err("retrieval shareBps is more than 10^4".into());
    }
    let versions: Vec<(u64, u64)> = r.datanets.iter().map(|d| (d.datanet, d.version)).collect();
    if versions.is_empty()
        || versions.len() > primitives::abi::MAX_RETRIEVED_VERSIONS
        || !versions.windows(2).all(|w| w[0] < w[1])
    {
        return Err(format!(
            "retrieval datanets must be 1 to {} distinct versions in order",
            primitives::abi::MAX_RETRIEVED_VERSIONS
        ));
    }
    let mut rows = r.rows.clone();
    rows.sort_unstable();
    rows.dedup();
    if r.rows.is_empty() || r.rows.len() > MAX_RETRIEVED_ROWS || rows.len() != r.rows.len() {
        return Err(format!("retrieval rows must be 1 to {MAX_RETRIEVED_ROWS} distinct rows"));
    }
    if !r.support.windows(2).all(|w| w[0].0 < w[1].0) || r.support.iter().any(|s| s.1 == 0) {
        return Err("retrieval support must be distinct contributions in order with non-zero tokens".into());
    }
    let sum: u64 = r.credits.iter().map(|c| c.1 as u64).sum();
    if !r.credits.windows(2).all(|w| w[0].0 < w[1].0)
        || (!r.credits.is_empty() && sum != PPM as u64)
        || r.credits.iter().any(|c| c.1 == 0)
    {
        return Err(
            "retrieval credits must be distinct contributions in order with non-zero ppm summing to 10^6".into()
        );
    }
    Ok(())
}

/// The retrieval part of an answer: its maximal spans over the retrieved
/// rows, each contribution's support and credits.
pub fn retrieval_part(
    tok: &TextTokenizer,
    inputs: &RetrievalInputs,
    response: &[u32],
    min_span_tokens: usize,
    max_credits: usize,
    share_bps: u32,
) -> Result<RetrievalPartRecord, String> {
    let mut rows: Vec<IndexRow> = inputs
        .rows
        .iter()
        .map(|r| IndexRow {
            id: RowId { contribution: r.contribution, index: r.row },
            // Contributors are not part of the retrieval part.
            contributor: Address::ZERO,
            tombstoned: false,
            tokens: r.tokens.clone(),
        })
        .collect();
    rows.sort_by_key(|r| (r.id.contribution, r.id.index));
    rows.dedup_by_key(|r| (r.id.contribution, r.id.index));
    let part = RetrievalPartRecord {
        method: RETRIEVAL_METHOD.into(),
        share_bps,
        datanets: inputs.datanets.iter().map(|(d, v)| DatanetVersionRef { datanet: *d, version: *v }).collect(),
        rows: inputs.rows.iter().map(|r| (r.contribution, r.row)).collect(),
        spans: vec![],
        support: vec![],
        credits: vec![],
    };
    if rows.iter().all(|r| r.tokens.is_empty()) || response.is_empty() {
        return Ok(part);
    }
    // A suffix array over the retrieved rows alone (a few hundred tokens),
    // written to a scratch file the index memory-maps and dropped after.
    let scratch = tempfile::tempdir().map_err(|e| format!("retrieval scratch directory: {e}"))?;
    let key = IndexKey { tokenizer: tok.hash, datanet: 0, version: 0 };
    let index =
        SpanIndex::build(key, &rows, tok.vocab_size() as u32, 0, &scratch.path().join("rows.olsa"), &mut |_, _| {})
            .map_err(|e| format!("retrieved rows' span index: {e}"))?;
    let starts = crate::word_starts(tok, response);
    let candidates = crate::maximal_spans(&index, response, &starts, min_span_tokens as u32, u64::MAX)
        .map_err(|e| format!("retrieval spans: {e}"))?;
    let offsets = crate::compute::char_offsets(tok, response);
    let mut covered: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
    let mut spans = Vec::with_capacity(candidates.len());
    for c in candidates {
        let (s, e) = (c.token_start as usize, c.token_end as usize);
        let found = index.rows_containing(&response[s..e], MAX_RETRIEVED_ROWS);
        for r in &found {
            let marks = covered.entry(r.id.contribution).or_insert_with(|| vec![false; response.len()]);
            marks[s..e].iter_mut().for_each(|m| *m = true);
        }
        spans.push(SpanRecord {
            token_start: s as u64,
            token_end: e as u64,
            char_start: offsets[s] as u64,
            char_end: offsets[e] as u64,
            count: c.count,
            rows: found.iter().map(|r| (r.id.contribution, r.id.index)).collect(),
        });
    }
    let support: Vec<(u64, u64)> =
        covered.into_iter().map(|(c, m)| (c, m.iter().filter(|x| **x).count() as u64)).filter(|s| s.1 > 0).collect();
    let scores: BTreeMap<u64, u128> = support.iter().map(|(c, n)| (*c, *n as u128)).collect();
    Ok(RetrievalPartRecord { spans, credits: int_ppm(&scores, max_credits), support, ..part })
}

/// A record (as computed by [`crate::compute_record`] from the training
/// side) with the retrieval part of `inputs` added: version 3, and final
/// credits that [`combine`] the two (the retrieval credits without the
/// excluded contributions, as the training ones are).
pub fn add_retrieval(
    record: &Value,
    tok: &TextTokenizer,
    inputs: &RetrievalInputs,
    p: &RecordParams,
) -> Result<Value, String> {
    let mut r = AttributionRecord::from_value(record)?;
    let share = p.retrieval_share_bps.ok_or("the retrieval share is not known")?;
    let part = retrieval_part(tok, inputs, &r.response_tokens, p.min_span_tokens, p.max_credits, share)?;
    let retrieved = crate::credits::without(&part.credits, &p.excluded);
    r.credits = combine(&r.credits, &retrieved, share, p.max_credits);
    r.version = r.version.max(3);
    r.retrieval = Some(part);
    r.validate()?;
    Ok(r.to_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integer_ppm_and_the_combination_rules() {
        let s: BTreeMap<u64, u128> = [(1, 1), (2, 1), (3, 1)].into_iter().collect();
        assert_eq!(int_ppm(&s, 32), vec![(1, 333_334), (2, 333_333), (3, 333_333)]);
        assert_eq!(int_ppm(&s, 2), vec![(1, 500_000), (2, 500_000)]);
        assert!(int_ppm(&BTreeMap::new(), 4).is_empty());
        assert!(int_ppm(&[(1, 0)].into_iter().collect(), 4).is_empty());
        // 30 % to the retrieved row, 70 % to training; a contribution in both adds up.
        let t = [(1, 500_000), (2, 500_000)];
        assert_eq!(combine(&t, &[(9, 1_000_000)], 3_000, 32), vec![(1, 350_000), (2, 350_000), (9, 300_000)]);
        assert_eq!(combine(&t, &[(2, 1_000_000)], 3_000, 32), vec![(1, 350_000), (2, 650_000)]);
        // Nothing quoted, or a zero share: training alone; no training credits: retrieval alone.
        assert_eq!(combine(&t, &[], 3_000, 32), t.to_vec());
        assert_eq!(combine(&t, &[(9, 1_000_000)], 0, 32), t.to_vec());
        assert_eq!(combine(&[], &[(9, 1_000_000)], 3_000, 32), vec![(9, 1_000_000)]);
        assert!(combine(&[], &[], 3_000, 32).is_empty());
    }

    fn tokenizer() -> TextTokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
        TextTokenizer::from_hf_dir(&dir).unwrap()
    }

    fn inputs(tok: &TextTokenizer, rows: &[(u64, u32, &str)]) -> RetrievalInputs {
        RetrievalInputs {
            datanets: vec![(1, 2), (3, 1)],
            rows: rows
                .iter()
                .map(|(c, r, text)| RetrievedRow {
                    contribution: *c,
                    row: *r,
                    tokens: tok.encode(text, false).unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn support_is_what_the_answer_quotes_of_each_retrieved_row() {
        let tok = tokenizer();
        let fox = "the quick brown fox jumps over the lazy dog beside the quiet river bank";
        let ledger = "every approved contribution becomes part of an immutable version with its root on chain";
        let noise = "nothing in this row is ever quoted by the answer at all";
        let inp = inputs(&tok, &[(9, 0, noise), (5, 1, fox), (6, 0, ledger)]);
        let part = |answer: &str| {
            let response = tok.encode(answer, false).unwrap();
            retrieval_part(&tok, &inp, &response, 4, 32, 3_000).unwrap()
        };
        // One row quoted: its contribution takes the whole retrieval part.
        let p = part("As the notes say, the quick brown fox jumps over the lazy dog beside the quiet river.");
        assert_eq!(p.credits, vec![(5, 1_000_000)]);
        assert_eq!(p.support.len(), 1);
        assert!(!p.spans.is_empty() && p.spans.iter().all(|s| s.rows == vec![(5, 1)]));
        // The rows are listed in prompt order, whatever they earn.
        assert_eq!(p.rows, vec![(9, 0), (5, 1), (6, 0)]);
        // Two rows quoted: credits by the tokens each covers, exactly 10^6.
        let p = part(&format!("{fox}. Also, every approved contribution becomes part of an immutable version."));
        assert_eq!(p.credits.iter().map(|c| c.1).sum::<u32>(), 1_000_000);
        assert_eq!(p.credits.iter().map(|c| c.0).collect::<Vec<_>>(), vec![5, 6]);
        let (s5, s6) = (p.support[0].1, p.support[1].1);
        assert!(s5 > s6 && s6 > 0, "{:?}", p.support);
        let floor = s5 * 1_000_000 / (s5 + s6);
        assert!([floor, floor + 1].contains(&(p.credits[0].1 as u64)), "{:?} for {:?}", p.credits, p.support);
        // An answer that quotes nothing earns the retrieved rows nothing.
        let p = part("I do not know anything about that topic, sorry.");
        assert!(p.credits.is_empty() && p.support.is_empty() && p.spans.is_empty());
    }

    #[test]
    fn a_record_with_retrieval_is_version_3_and_decodes() {
        let tok = tokenizer();
        let fox = "the quick brown fox jumps over the lazy dog beside the quiet river bank";
        let inp = inputs(&tok, &[(5, 1, fox)]);
        let mut r = crate::record::tests::record();
        r.response = format!("Indeed {fox}");
        r.response_tokens = tok.encode(&r.response, false).unwrap();
        let p = RecordParams { retrieval_share_bps: Some(3_000), ..r.stated(40) };
        let with = add_retrieval(&r.to_value(), &tok, &inp, &p).unwrap();
        let decoded = AttributionRecord::decode(crate::canonical(&with).as_bytes()).unwrap();
        assert_eq!(decoded.version, 3);
        assert_eq!(decoded.stated(40).retrieval_share_bps, Some(3_000));
        // Training credited 7 alone; the retrieved row's contribution gets 30 %.
        assert_eq!(decoded.credits, vec![(5, 300_000), (7, 700_000)]);
        // A version 2 record may not carry a retrieval part; a bad part is refused.
        let v2 = AttributionRecord { version: 2, ..decoded.clone() };
        assert!(AttributionRecord::decode(&v2.canonical_bytes()).unwrap_err().contains("retrieval"));
        let mut bad = decoded.clone();
        bad.retrieval.as_mut().unwrap().credits = vec![(5, 999_999)];
        assert!(AttributionRecord::decode(&bad.canonical_bytes()).is_err());
        let mut bad = decoded;
        bad.retrieval.as_mut().unwrap().datanets.reverse();
        assert!(AttributionRecord::decode(&bad.canonical_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn integer_ppm_always_sums_to_a_million(scores in proptest::collection::btree_map(0u64..50, 0u128..1u128 << 80, 0..40), max in 1usize..40) {
            let p = int_ppm(&scores, max);
            prop_assert!(p.len() <= max);
            if scores.values().any(|s| *s > 0) {
                prop_assert_eq!(p.iter().map(|x| x.1 as u64).sum::<u64>(), 1_000_000);
            } else {
                prop_assert!(p.is_empty());
            }
            prop_assert!(p.windows(2).all(|w| w[0].0 < w[1].0) && p.iter().all(|x| x.1 > 0));
        }

        #[test]
        fn combined_credits_sum_to_a_million(
            a in proptest::collection::btree_map(0u64..30, 1u128..1000, 0..20),
            b in proptest::collection::btree_map(0u64..30, 1u128..1000, 0..20),
            bps in 0u32..=10_000,
        ) {
            let (a, b) = (int_ppm(&a, 32), int_ppm(&b, 32));
            let c = combine(&a, &b, bps, 32);
            if !a.is_empty() || (!b.is_empty() && bps > 0) {
                prop_assert_eq!(c.iter().map(|x| x.1 as u64).sum::<u64>(), 1_000_000);
            } else {
                prop_assert!(c.is_empty());
            }
        }
    }
}
