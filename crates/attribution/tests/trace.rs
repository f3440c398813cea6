//! Span tracing: planted spans found and credited, tombstones, word boundaries,
//! rarity ranking and density, exact ppm, determinism across threads and reloads.

mod common;

use attribution::{IndexRow, SpanIndex, SpanTrace, TraceParams, maximal_spans, trace};
use common::Rng;
use common::*;
use proptest::prelude::*;

const VOCAB: u32 = 50_000;

/// Rows of random tokens from a large vocabulary (accidental matches of 8+ tokens
/// are then vanishingly rare), contributions 1.., 3 rows each.
fn corpus(seed: u64, rows: usize) -> Vec<IndexRow> {
    let mut rng = Rng::new(seed);
    random_rows(&mut rng, rows, VOCAB, 40..120)
}

fn filler(rng: &mut Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(VOCAB as u64) as u32).collect()
}

fn all_words(n: usize) -> Vec<bool> {
    vec![true; n]
}

fn params() -> TraceParams {
    TraceParams { max_density_ppm: 1_000_000, ..TraceParams::default() }
}

fn ppm_sum(t: &SpanTrace) -> (u64, u64) {
    (t.credits.iter().map(|c| c.1 as u64).sum(), t.contributors.iter().map(|c| c.1 as u64).sum())
}

#[test]
fn planted_span_is_found_and_credited_to_its_contributions() {
    let mut rows = corpus(1, 300);
    let planted: Vec<u32> = (0..20).map(|k| 40_000 + k).collect();
    // Contribution 11 (row 30) and contribution 51 (row 150) hold the span.
    rows[30].tokens.splice(10..10, planted.iter().copied());
    rows[150].tokens.splice(3..3, planted.iter().copied());
    let dir = tempfile::tempdir().unwrap();
    let ix = build(&rows, VOCAB, 0, dir.path(), "ix");
    let mut rng = Rng::new(99);
    let mut resp = filler(&mut rng, 100);
    resp.extend(&planted);
    resp.extend(filler(&mut rng, 100));
    let t = trace(&ix, &resp, &all_words(resp.len()), &params()).unwrap();
    assert_eq!(t.spans.len(), 1, "{:?}", t.spans);
    let s = &t.spans[0];
    assert_eq!((s.token_start, s.token_end, s.count), (100, 120, 2));
    let ids: Vec<u64> = s.rows.iter().map(|r| r.id.contribution).collect();
    assert_eq!(ids, vec![rows[30].id.contribution, rows[150].id.contribution]);
    assert_eq!(t.credits, vec![(rows[30].id.contribution, 500_000), (rows[150].id.contribution, 500_000)]);
    assert_eq!(ppm_sum(&t), (1_000_000, 1_000_000));
    assert_eq!(t.contributors.len(), 2);
    assert_eq!(t.response_len, 220);
    // Nothing planted, nothing credited.
    let none = filler(&mut rng, 300);
    let t = trace(&ix, &none, &all_words(300), &params()).unwrap();
    assert!(t.spans.is_empty() && t.credits.is_empty() && t.contributors.is_empty());
}

#[test]
fn tombstoned_rows_are_never_credited() {
    let mut rows = corpus(2, 120);
    let a: Vec<u32> = (0..12).map(|k| 41_000 + k).collect();
    let b: Vec<u32> = (0..12).map(|k| 42_000 + k).collect();
    rows[5].tokens.splice(0..0, a.iter().copied()); // contribution 2
    rows[50].tokens.splice(0..0, a.iter().copied()); // contribution 17
    rows[80].tokens.splice(4..4, b.iter().copied()); // contribution 27, only holder of b
    let mut rng = Rng::new(5);
    let mut resp = filler(&mut rng, 30);
    resp.extend(&a);
    resp.extend(filler(&mut rng, 30));
    resp.extend(&b);
    resp.extend(filler(&mut rng, 30));
    let ws = all_words(resp.len());
    let dir = tempfile::tempdir().unwrap();
    let before = trace(&build(&rows, VOCAB, 0, dir.path(), "before"), &resp, &ws, &params()).unwrap();
    assert_eq!(before.spans.len(), 2);
    assert_eq!(before.credits.len(), 3);

    rows[5].tombstoned = true;
    rows[80].tombstoned = true;
    let ix = build(&rows, VOCAB, 0, dir.path(), "after");
    let after = trace(&ix, &resp, &ws, &params()).unwrap();
    // b occurs only in a tombstoned row: no span; a credits only contribution 17.
    assert_eq!(after.spans.len(), 1);
    assert_eq!(after.spans[0].count, 2, "the count still sees both occurrences");
    assert_eq!(after.credits, vec![(rows[50].id.contribution, 1_000_000)]);
    for s in &after.spans {
        assert!(s.rows.iter().all(|r| r.id != rows[5].id && r.id != rows[80].id));
    }
    // The same through an in-place tombstone of the first index.
    drop(ix);
    SpanIndex::mark_tombstoned(&dir.path().join("before"), key(1), &[rows[5].id, rows[80].id]).unwrap();
    let marked = SpanIndex::open(&dir.path().join("before")).unwrap();
    assert_eq!(trace(&marked, &resp, &ws, &params()).unwrap().canonical_bytes(), after.canonical_bytes());
}

#[test]
fn spans_are_cut_to_word_boundaries() {
    let mut rows = corpus(3, 60);
    let planted: Vec<u32> = (0..16).map(|k| 43_000 + k).collect();
    rows[7].tokens.splice(0..0, planted.iter().copied());
    let ix = build(&rows, VOCAB, 0, tempfile::tempdir().unwrap().path(), "ix");
    let mut rng = Rng::new(8);
    let mut resp = filler(&mut rng, 10);
    resp.extend(&planted);
    resp.extend(filler(&mut rng, 10));
    // Words start every 3 tokens from 11: the match 10..26 must start at 11
    // (10 is not a word start here) and end before a word start (<= 26 → 26 is one).
    let ws: Vec<bool> = (0..resp.len()).map(|i| i >= 11 && (i - 11) % 3 == 0).collect();
    let spans = maximal_spans(&ix, &resp, &ws, 8, 1_000_000).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!((spans[0].token_start, spans[0].token_end), (11, 26));
    // A boundary that leaves fewer than min_len tokens drops the span.
    let ws: Vec<bool> = (0..resp.len()).map(|i| i == 20 || i == 27).collect();
    assert!(maximal_spans(&ix, &resp, &ws, 8, 1_000_000).unwrap().is_empty());
    let ws: Vec<bool> = (0..resp.len()).map(|i| i == 12 || i == 21).collect();
    let spans = maximal_spans(&ix, &resp, &ws, 8, 1_000_000).unwrap();
    assert_eq!(spans.iter().map(|s| (s.token_start, s.token_end)).collect::<Vec<_>>(), vec![(12, 21)]);
}

#[test]
fn rarest_spans_are_kept_within_the_density() {
    // Three planted spans: one of frequent tokens, two of rare ones.
    let mut rows = corpus(4, 200);
    let frequent: Vec<u32> = vec![45_000; 10];
    for r in rows.iter_mut().take(150) {
        r.tokens.extend(&frequent); // in 150 rows: frequent tokens, a frequent span
    }
    let rare1: Vec<u32> = (0..10).map(|k| 46_000 + k).collect();
    let rare2: Vec<u32> = (0..14).map(|k| 47_000 + k).collect();
    rows[170].tokens.splice(0..0, rare1.iter().copied());
    rows[180].tokens.splice(0..0, rare2.iter().copied());
    let ix = build(&rows, VOCAB, 0, tempfile::tempdir().unwrap().path(), "ix");
    let mut rng = Rng::new(10);
    let mut resp = Vec::new();
    for span in [&frequent, &rare1, &rare2] {
        resp.extend(filler(&mut rng, 13));
        resp.extend(span.iter());
    }
    resp.extend(filler(&mut rng, 6)); // 80 tokens
    let ws = all_words(resp.len());
    let all = trace(&ix, &resp, &ws, &params()).unwrap();
    assert_eq!(all.spans.len(), 3);
    let rarity: Vec<u64> = all.spans.iter().map(|s| s.rarity).collect();
    assert!(rarity[0] < rarity[1] && rarity[1] < rarity[2], "{rarity:?}");
    // Density 2/80: the two rarest survive, in start order.
    let p = TraceParams { max_density_ppm: 25_000, ..params() };
    let two = trace(&ix, &resp, &ws, &p).unwrap();
    assert_eq!(two.spans, all.spans[1..].to_vec());
    // Weights follow rarity: rare2's contribution gets more than rare1's.
    let share = |c: u64| two.credits.iter().find(|x| x.0 == c).unwrap().1;
    assert!(share(rows[180].id.contribution) > share(rows[170].id.contribution));
    assert_eq!(ppm_sum(&two), (1_000_000, 1_000_000));
    // max_frequency drops the frequent span (it occurs in 150 rows).
    let p = TraceParams { max_frequency: 100, ..params() };
    let t = trace(&ix, &resp, &ws, &p).unwrap();
    assert_eq!(t.spans.len(), 2);
    // max_credits keeps the heaviest contributions.
    let p = TraceParams { max_credits: 1, ..params() };
    let t = trace(&ix, &resp, &ws, &p).unwrap();
    assert_eq!(t.credits, vec![(rows[180].id.contribution, 1_000_000)]);
}

#[test]
fn rows_per_span_are_capped_in_row_order() {
    let mut rows = corpus(6, 90);
    let planted: Vec<u32> = (0..9).map(|k| 48_000 + k).collect();
    for r in rows.iter_mut().step_by(3) {
        r.tokens.splice(2..2, planted.iter().copied()); // 30 rows, one per contribution
    }
    let ix = build(&rows, VOCAB, 0, tempfile::tempdir().unwrap().path(), "ix");
    let resp = planted.clone();
    let t = trace(&ix, &resp, &all_words(9), &params()).unwrap();
    assert_eq!(t.spans[0].count, 30);
    let got: Vec<_> = t.spans[0].rows.iter().map(|r| r.id).collect();
    let want: Vec<_> = rows.iter().step_by(3).take(10).map(|r| r.id).collect();
    assert_eq!(got, want);
    assert_eq!(t.credits.len(), 10);
    assert!(t.credits.iter().all(|c| c.1 == 100_000));
}

#[test]
fn same_bytes_on_one_and_two_threads_and_after_reopening() {
    let mut rows = corpus(7, 400);
    let mut rng = Rng::new(70);
    let mut resp = Vec::new();
    // Fragments of many rows: lots of spans, some rows credited by several.
    for k in 0..12 {
        let r = &rows[(k * 31) % rows.len()].tokens;
        let at = rng.below(20) as usize;
        resp.extend(&r[at..at + 10 + k]);
        resp.extend(filler(&mut rng, 5));
    }
    for k in 0..5 {
        let dup = rows[k * 7].tokens[..30].to_vec();
        rows[200 + k].tokens.extend(dup);
    }
    let ws: Vec<bool> = resp.iter().map(|t| t % 4 != 0).collect();
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: usize, name: &str| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let ix = SpanIndex::build(key(1), &rows, VOCAB, 3_000, &dir.path().join(name), &mut |_, _| {}).unwrap();
            let t = trace(&ix, &resp, &ws, &TraceParams::default()).unwrap();
            (std::fs::read(ix.path()).unwrap(), t.canonical_bytes(), t.hash())
        })
    };
    let (f1, b1, h1) = run(1, "one");
    let (f2, b2, h2) = run(2, "two");
    assert_eq!(f1, f2);
    assert_eq!(b1, b2);
    assert_eq!(h1, h2);
    let t = SpanTrace::from_canonical_bytes(&b1).unwrap();
    assert!(!t.spans.is_empty());
    assert_eq!(ppm_sum(&t), (1_000_000, 1_000_000));
    assert_eq!(t.canonical_bytes(), b1);
    // Reopened from disk: the same trace.
    let ix = SpanIndex::open(&dir.path().join("one")).unwrap();
    assert_eq!(trace(&ix, &resp, &ws, &TraceParams::default()).unwrap().hash(), h1);
    // Everything the trace commits to changes its hash.
    let t2 = trace(&ix, &resp, &ws, &TraceParams { min_len: 9, ..TraceParams::default() }).unwrap();
    assert_ne!(t2.hash(), h1);
    let mut ws2 = ws.clone();
    ws2[0] = !ws2[0];
    assert_ne!(trace(&ix, &resp, &ws2, &TraceParams::default()).unwrap().response_digest, t.response_digest);
}

#[test]
fn bad_input_is_refused() {
    let rows = corpus(8, 10);
    let ix = build(&rows, VOCAB, 0, tempfile::tempdir().unwrap().path(), "ix");
    assert!(trace(&ix, &[1, 2, 3], &[true, true], &TraceParams::default()).is_err());
    assert!(trace(&ix, &[1], &[true], &TraceParams { min_len: 0, ..TraceParams::default() }).is_err());
    // Out-of-vocabulary tokens break spans but are not an error.
    let mut resp = rows[0].tokens[..20].to_vec();
    resp[10] = VOCAB + 5;
    let t = trace(&ix, &resp, &all_words(20), &params()).unwrap();
    assert_eq!(t.spans.iter().map(|s| (s.token_start, s.token_end)).collect::<Vec<_>>(), vec![(0, 10), (11, 20)]);
    assert!(trace(&ix, &[], &[], &params()).unwrap().spans.is_empty());
}

fn arb_case() -> impl Strategy<Value = (Vec<IndexRow>, Vec<u32>, Vec<bool>, u32)> {
    let rows = proptest::collection::vec((proptest::collection::vec(0u32..3, 0..30), any::<bool>()), 1..14);
    (rows, proptest::collection::vec(0u32..4, 0..60), proptest::collection::vec(any::<bool>(), 60), 1u32..5).prop_map(
        |(rs, resp, ws, min_len)| {
            let rows: Vec<IndexRow> = rs
                .into_iter()
                .enumerate()
                .map(|(k, (t, dead))| {
                    let mut r = row(k as u64 / 2 + 1, (k % 2) as u32, t);
                    r.tombstoned = dead && k % 4 == 1;
                    r
                })
                .collect();
            let ws = ws[..resp.len()].to_vec();
            (rows, resp, ws, min_len)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn maximal_spans_match_brute_force((rows, resp, ws, min_len) in arb_case(), max_freq in 1u64..40) {
        let dir = tempfile::tempdir().unwrap();
        let ix = build(&rows, 4, 7, dir.path(), "ix");
        let got: Vec<(u32, u32, u64)> = maximal_spans(&ix, &resp, &ws, min_len, max_freq)
            .unwrap()
            .into_iter()
            .map(|s| (s.token_start, s.token_end, s.count))
            .collect();
        prop_assert_eq!(got, naive_maximal(&rows, &resp, &ws, min_len as usize, max_freq));
        let p = TraceParams { min_len, max_frequency: max_freq, max_density_ppm: 100_000, max_rows_per_span: 3, max_credits: 4 };
        let t = trace(&ix, &resp, &ws, &p).unwrap();
        prop_assert!(t.spans.len() <= (resp.len() as u64 * 100_000).div_ceil(1_000_000) as usize);
        if t.spans.is_empty() {
            prop_assert!(t.credits.is_empty());
        } else {
            prop_assert_eq!(ppm_sum(&t), (1_000_000, 1_000_000));
            prop_assert!(t.credits.len() <= 4);
        }
        for s in &t.spans {
            let q = &resp[s.token_start as usize..s.token_end as usize];
            prop_assert_eq!(s.rows.clone(), naive_rows(&rows, q, 3));
        }
        // Credits only go to contributions of credited (hence live) rows.
        for (c, _) in &t.credits {
            prop_assert!(t.spans.iter().flat_map(|s| &s.rows).any(|r| r.id.contribution == *c));
        }
        prop_assert_eq!(SpanTrace::from_canonical_bytes(&t.canonical_bytes()).unwrap(), t);
    }
}
