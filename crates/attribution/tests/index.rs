//! The span index against a naive scan, across shard sizes, widths, row maps,
//! extension, tombstones and reloads.

mod common;

use attribution::{AttrError, IndexBuilder, IndexRow, SpanIndex};
use common::Rng;
use common::*;
use primitives::rows::RowId;
use proptest::prelude::*;

fn check_queries(ix: &SpanIndex, rows: &[IndexRow], queries: &[Vec<u32>]) -> Result<(), TestCaseError> {
    for q in queries {
        let mut want = naive_positions(rows, q);
        want.sort();
        let mut got = ix.positions(q);
        got.sort();
        prop_assert_eq!(&got, &want, "positions of {:?}", q);
        prop_assert_eq!(ix.count(q), want.len() as u64);
        let r = ix.find(q);
        prop_assert_eq!(r.end - r.start, want.len() as u64);
        for max in [1, 2, 5] {
            prop_assert_eq!(ix.rows_containing(q, max), naive_rows(rows, q, max), "rows of {:?}", q);
        }
    }
    Ok(())
}

fn arb_rows() -> impl Strategy<Value = Vec<IndexRow>> {
    // A small alphabet makes repeats (and long common prefixes) common.
    proptest::collection::vec((proptest::collection::vec(0u32..4, 0..24), any::<bool>()), 0..24).prop_map(|rs| {
        rs.into_iter()
            .enumerate()
            .map(|(k, (toks, dead))| {
                let mut r = row(k as u64 / 2 + 1, (k % 2) as u32, toks);
                r.tombstoned = dead && k % 3 == 0;
                r
            })
            .collect()
    })
}

/// The rows through an [`IndexBuilder`] with `memory` bytes to sort in.
fn build_streamed(rows: &[IndexRow], vocab: u32, memory: u64, dir: &std::path::Path, name: &str) -> SpanIndex {
    let mut b = IndexBuilder::new(key(1), vocab, &dir.join(name)).unwrap();
    for r in rows {
        b.push(r.id, r.contributor, r.tombstoned, &r.tokens).unwrap();
    }
    assert_eq!((b.rows(), b.tokens()), (rows.len() as u64, rows.iter().map(|r| r.tokens.len() as u64).sum()));
    let ix = b.finish(memory, &mut |_, _| {}).unwrap();
    assert_eq!(building_files(dir, name), 0);
    ix
}

/// Files of builds of `name` in `dir` (published or dropped builds leave none).
fn building_files(dir: &std::path::Path, name: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let f = e.file_name();
            attribution::is_building_file(&f) && f.to_str().is_some_and(|f| f.starts_with(&format!("{name}.")))
        })
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_streamed_build_is_the_same_file_in_memory_or_out_of_core(rows in arb_rows(), memory in 1u64..600) {
        let dir = tempfile::tempdir().unwrap();
        let whole = build(&rows, 5, 0, dir.path(), "whole");
        // 16 bytes per entry out of core: from one entry per group up to ~40.
        let out_of_core = build_streamed(&rows, 5, memory, dir.path(), "ooc");
        let in_memory = build_streamed(&rows, 5, 1 << 30, dir.path(), "mem");
        let want = std::fs::read(whole.path()).unwrap();
        prop_assert_eq!(&std::fs::read(out_of_core.path()).unwrap(), &want);
        prop_assert_eq!(&std::fs::read(in_memory.path()).unwrap(), &want);
    }

    #[test]
    fn counts_match_a_naive_scan(rows in arb_rows(), qs in proptest::collection::vec(proptest::collection::vec(0u32..5, 1..6), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        // vocab 5: token 4 never occurs; shard 1: every row is a shard (many-way merge).
        let one = build(&rows, 5, 1, dir.path(), "one");
        let all = build(&rows, 5, 0, dir.path(), "all");
        one.verify().unwrap();
        prop_assert_eq!(std::fs::read(one.path()).unwrap(), std::fs::read(all.path()).unwrap());
        let mut queries = qs;
        // Substrings of the rows too, so that most queries hit.
        for r in rows.iter().filter(|r| r.tokens.len() >= 3) {
            queries.push(r.tokens[1..r.tokens.len().min(5)].to_vec());
        }
        check_queries(&one, &rows, &queries)?;
        // Reopened from disk: the same answers.
        let again = SpanIndex::open(one.path()).unwrap();
        check_queries(&again, &rows, &queries)?;
        prop_assert_eq!(again.digest(), one.digest());
    }

    #[test]
    fn extend_equals_a_fresh_build(rows in arb_rows(), cut in 0usize..24, shard in 0usize..40) {
        let cut = cut.min(rows.len());
        let dir = tempfile::tempdir().unwrap();
        let whole = build(&rows, 5, shard, dir.path(), "whole");
        let first = build(&rows[..cut], 5, shard, dir.path(), "first");
        let ext = first.extend(key(1), &rows[cut..], shard, &dir.path().join("ext"), &mut |_, _| {}).unwrap();
        ext.verify().unwrap();
        prop_assert_eq!(std::fs::read(ext.path()).unwrap(), std::fs::read(whole.path()).unwrap());
    }
}

#[test]
fn large_merges_split_between_threads() {
    // Enough tokens for the parallel merge to cut the runs at splitters, and for
    // both the k-way merge and the binary-search insertion of `extend`.
    let mut rng = Rng::new(5);
    let rows = random_rows(&mut rng, 3000, 6, 50..250);
    let dir = tempfile::tempdir().unwrap();
    let single = build(&rows, 6, usize::MAX, dir.path(), "single");
    let sharded = build(&rows, 6, 20_000, dir.path(), "sharded");
    sharded.verify().unwrap();
    assert_eq!(std::fs::read(single.path()).unwrap(), std::fs::read(sharded.path()).unwrap());
    // A large delta (merged) and a small one (inserted by binary search).
    for cut in [1500, 2990] {
        let first = build(&rows[..cut], 6, 20_000, dir.path(), "first");
        let ext = first.extend(key(1), &rows[cut..], 0, &dir.path().join("ext"), &mut |_, _| {}).unwrap();
        assert_eq!(std::fs::read(ext.path()).unwrap(), std::fs::read(single.path()).unwrap(), "cut {cut}");
    }
    let q: Vec<u32> = rows[10].tokens[5..12].to_vec();
    assert_eq!(single.count(&q), naive_positions(&rows, &q).len() as u64);
}

#[test]
fn progress_reaches_the_total() {
    let mut rng = Rng::new(9);
    let rows = random_rows(&mut rng, 400, 100, 50..200);
    let dir = tempfile::tempdir().unwrap();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    SpanIndex::build(key(1), &rows, 100, 5_000, &dir.path().join("p"), &mut |d, t| seen.push((d, t))).unwrap();
    let (last_done, total) = *seen.last().unwrap();
    assert_eq!(last_done, total);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1));
    assert!(seen.len() > 3);
}

#[test]
fn wide_vocabulary_uses_u32_tokens() {
    let mut rng = Rng::new(3);
    let vocab = 100_000;
    let mut rows = random_rows(&mut rng, 300, 8, 10..60);
    for r in rows.iter_mut() {
        for t in r.tokens.iter_mut() {
            *t = *t * 12_345 + 7; // spread over the whole vocabulary, repeats kept
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let a = build(&rows, vocab, 0, dir.path(), "a");
    let b = build(&rows, vocab, 777, dir.path(), "b");
    a.verify().unwrap();
    assert_eq!(std::fs::read(a.path()).unwrap(), std::fs::read(b.path()).unwrap());
    assert_eq!(a.sizes().token_width, 4);
    for r in rows.iter().step_by(17) {
        let q = &r.tokens[..r.tokens.len().min(3)];
        assert_eq!(a.count(q), naive_positions(&rows, q).len() as u64);
    }
    assert_eq!(a.count(&[vocab]), 0);
    assert!(a.sizes().tokens_and_sa_per_token() <= 7.0);
}

#[test]
fn bytes_per_token_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    // Rows of 50-500 tokens from a 50,000-token vocabulary.
    let mut rng = Rng::new(1);
    let rows = random_rows(&mut rng, 2_000, 50_000, 50..500);
    let ix = build(&rows, 50_000, 0, dir.path(), "long");
    let s = ix.sizes();
    assert_eq!((s.token_width, s.sa_width), (2, 3)); // < 2^24 slots: 3-byte entries
    assert!(s.tokens_and_sa_per_token() <= 6.0, "{s:?}");
    assert!(s.row_map_per_token() <= 0.25, "{s:?}");
    assert_eq!(s.row_map, s.n_rows * 4); // long rows: the row start array
    // Short rows (2-6 tokens): the bitmap row map keeps it under budget.
    let rows = random_rows(&mut rng, 50_000, 1_000, 2..7);
    let ix = build(&rows, 1_000, 0, dir.path(), "short");
    let s = ix.sizes();
    assert!(s.row_map < s.n_rows * 4, "{s:?}");
    assert!((s.row_map as f64 / s.n_tokens as f64) <= 0.25, "{s:?}");
    for r in rows.iter().step_by(997) {
        assert_eq!(ix.rows_containing(&r.tokens, 1).len(), 1);
        let got = ix.row(rows.iter().position(|x| x.id == r.id).unwrap() as u64).unwrap();
        assert_eq!(got.id, r.id);
        assert_eq!(got.slots.end - got.slots.start, r.tokens.len() as u64);
    }
    ix.verify().unwrap();
}

#[test]
fn tombstones_in_place_equal_a_build_with_the_flags() {
    let mut rng = Rng::new(4);
    let mut rows = random_rows(&mut rng, 60, 4, 5..40);
    let dir = tempfile::tempdir().unwrap();
    let live = build(&rows, 4, 0, dir.path(), "live");
    drop(live);
    let dead = [rows[3].id, rows[40].id];
    let n = SpanIndex::mark_tombstoned(&dir.path().join("live"), key(2), &dead).unwrap();
    assert_eq!(n, 2);
    assert_eq!(SpanIndex::mark_tombstoned(&dir.path().join("live"), key(2), &dead).unwrap(), 0);
    assert!(matches!(
        SpanIndex::mark_tombstoned(&dir.path().join("live"), key(2), &[RowId { contribution: 999, index: 0 }]),
        Err(attribution::AttrError::UnknownRow(_))
    ));
    for r in rows.iter_mut() {
        r.tombstoned = dead.contains(&r.id);
    }
    let flagged = SpanIndex::build(key(2), &rows, 4, 0, &dir.path().join("flagged"), &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read(dir.path().join("live")).unwrap(), std::fs::read(flagged.path()).unwrap());
    let marked = SpanIndex::open(&dir.path().join("live")).unwrap();
    marked.verify().unwrap();
    let q = rows[3].tokens[..3].to_vec();
    assert!(marked.rows_containing(&q, 100).iter().all(|r| !dead.contains(&r.id)));
    assert_eq!(marked.rows_containing(&q, 100), naive_rows(&rows, &q, 100));
    assert!(marked.row(3).unwrap().tombstoned);
}

#[test]
fn extend_in_place_keeps_the_old_index_valid() {
    let mut rng = Rng::new(12);
    let rows = random_rows(&mut rng, 40, 5, 5..30);
    let dir = tempfile::tempdir().unwrap();
    let first = build(&rows[..25], 5, 0, dir.path(), "ix");
    let q = rows[30].tokens[..3].to_vec();
    let before = first.count(&q);
    let ext = first.extend(key(2), &rows[25..], 0, first.path(), &mut |_, _| {}).unwrap();
    // The old mapping still answers for the old rows; the file is the new index.
    assert_eq!(first.count(&q), before);
    assert_eq!(ext.count(&q), naive_positions(&rows, &q).len() as u64);
    assert_eq!(SpanIndex::open(&dir.path().join("ix")).unwrap().digest(), ext.digest());
    assert!(!dir.path().join("ix.building").exists());
    // Rows out of order are refused and leave the file alone.
    assert!(ext.extend(key(3), &rows[..1], 0, ext.path(), &mut |_, _| {}).is_err());
    assert_eq!(SpanIndex::open(&dir.path().join("ix")).unwrap().digest(), ext.digest());
}

#[test]
fn out_of_core_groups_give_the_build_of_a_large_corpus() {
    let mut rng = Rng::new(21);
    // A small alphabet: keys tie often and suffixes repeat for long stretches.
    let mut rows = random_rows(&mut rng, 2_000, 3, 20..200);
    let copy = rows[7].tokens.clone();
    rows[1500].tokens = copy; // a whole row repeated
    let dir = tempfile::tempdir().unwrap();
    let whole = build(&rows, 3, 0, dir.path(), "whole");
    let want = std::fs::read(whole.path()).unwrap();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let mut b = IndexBuilder::new(key(1), 3, &dir.path().join("ooc")).unwrap();
    for r in &rows {
        b.push(r.id, r.contributor, r.tombstoned, &r.tokens).unwrap();
    }
    // ~220k tokens in 16-byte entries: about 14 groups.
    let ix = b.finish(256 << 10, &mut |d, t| seen.push((d, t))).unwrap();
    assert_eq!(std::fs::read(ix.path()).unwrap(), want);
    ix.verify().unwrap();
    assert!(seen.len() >= 10, "{} progress calls", seen.len());
    assert_eq!(seen.last().unwrap().0, ix.n_tokens());
    // u32 tokens too.
    for r in rows.iter_mut() {
        for t in r.tokens.iter_mut() {
            *t = *t * 40_000 + 1;
        }
    }
    let wide = build(&rows, 100_000, 0, dir.path(), "wide");
    let streamed = build_streamed(&rows, 100_000, 64 << 10, dir.path(), "wide-ooc");
    assert_eq!(std::fs::read(streamed.path()).unwrap(), std::fs::read(wide.path()).unwrap());
}

#[test]
fn a_streamed_build_refuses_bad_rows_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix");
    assert!(matches!(IndexBuilder::new(key(1), 0, &path), Err(AttrError::Vocab(0))));
    let mut b = IndexBuilder::new(key(1), 10, &path).unwrap();
    let r = row(2, 0, vec![1, 2, 3]);
    b.push(r.id, r.contributor, false, &r.tokens).unwrap();
    let e = b.push(RowId { contribution: 1, index: 5 }, r.contributor, false, &[1]);
    assert!(matches!(e, Err(AttrError::RowOrder { .. })), "{e:?}");
    let e = b.push(RowId { contribution: 3, index: 0 }, r.contributor, false, &[4, 10]);
    assert!(matches!(e, Err(AttrError::TokenOutOfVocab { token: 10, .. })), "{e:?}");
    // Refused rows left nothing behind: the index holds the one good row.
    b.push(RowId { contribution: 3, index: 0 }, r.contributor, false, &[2, 3]).unwrap();
    assert_eq!(building_files(dir.path(), "ix"), 1);
    drop(b);
    assert!(building_files(dir.path(), "ix") == 0 && !path.exists(), "a dropped builder leaves no file");
    let mut b = IndexBuilder::new(key(1), 10, &path).unwrap();
    b.push(r.id, r.contributor, false, &r.tokens).unwrap();
    b.push(RowId { contribution: 3, index: 0 }, r.contributor, false, &[2, 3]).unwrap();
    let ix = b.finish(1, &mut |_, _| {}).unwrap();
    assert_eq!((ix.n_rows(), ix.n_tokens(), ix.count(&[2, 3])), (2, 5, 2));
    ix.verify().unwrap();
}

/// Several builds of one index at once (a node's attribution workers, or a
/// verifier, asking for an index not built yet) each write their own file and
/// publish the same bytes: the index at the path is whole and verifies, and
/// no build's file is left behind. With one shared `.building` file the
/// builds truncated and overwrote each other's.
#[test]
fn concurrent_builds_of_one_index_publish_a_whole_file() {
    let mut rng = Rng::new(5);
    let rows = random_rows(&mut rng, 400, 7, 10..120);
    let dir = tempfile::tempdir().unwrap();
    let want = std::fs::read(build(&rows, 7, 0, dir.path(), "alone").path()).unwrap();
    let path = dir.path().join("shared");
    for round in 0..4 {
        std::thread::scope(|s| {
            for t in 0..4 {
                let (rows, path) = (&rows, &path);
                s.spawn(move || {
                    if (t + round) % 2 == 0 {
                        let mut b = IndexBuilder::new(key(1), 7, path).unwrap();
                        for r in rows {
                            b.push(r.id, r.contributor, r.tombstoned, &r.tokens).unwrap();
                        }
                        b.finish(if t % 3 == 0 { 1 << 12 } else { 0 }, &mut |_, _| {}).unwrap();
                    } else {
                        SpanIndex::build(key(1), rows, 7, 0, path, &mut |_, _| {}).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read(&path).unwrap(), want, "round {round}");
        SpanIndex::open(&path).unwrap().verify().unwrap();
        assert_eq!(building_files(dir.path(), "shared"), 0);
    }
}

/// Rows that repeat long stretches of one another and of themselves: a stretch
/// shared by several rows at different offsets, a row that is one block
/// repeated (period 1, 3, 64 and 128: ties that depend on each other in a
/// cycle), a row holding the stretch twice, and rows equal to a prefix of
/// another. Each tie longer than a comparison reads is ordered afterwards;
/// every way of building gives the same file, in the exact order (`verify`
/// compares every neighbour in full), and answers as a naive scan.
#[test]
fn long_repeats_are_ordered_exactly_by_every_build() {
    let mut rng = Rng::new(41);
    let stretch: Vec<u32> = (0..300).map(|_| rng.below(5) as u32).collect();
    let noise = |rng: &mut Rng, n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(5) as u32).collect() };
    let mut token_rows: Vec<Vec<u32>> = Vec::new();
    for k in 0..6 {
        let mut t = noise(&mut rng, 10 * k);
        t.extend(&stretch);
        t.extend(noise(&mut rng, 7 * k));
        token_rows.push(t);
    }
    for period in [1usize, 3, 64, 128] {
        let block = noise(&mut rng, period);
        token_rows.push(block.iter().copied().cycle().take(500).collect());
    }
    let mut twice = stretch.clone();
    twice.extend(&stretch);
    token_rows.push(twice);
    token_rows.push(stretch[..200].to_vec());
    token_rows.push(stretch[100..].to_vec());
    token_rows.extend((0..30).map(|_| {
        let n = 20 + rng.below(100) as usize;
        noise(&mut rng, n)
    }));
    let rows: Vec<IndexRow> = token_rows.into_iter().enumerate().map(|(k, t)| row(k as u64 + 1, 0, t)).collect();
    let dir = tempfile::tempdir().unwrap();
    let whole = build(&rows, 5, usize::MAX, dir.path(), "whole");
    whole.verify().unwrap();
    let want = std::fs::read(whole.path()).unwrap();
    let mut queries = vec![stretch[..64].to_vec(), stretch[..130].to_vec(), stretch.clone(), vec![0; 70], vec![0; 300]];
    queries.extend((0..20).map(|i| stretch[i * 7..i * 7 + 80].to_vec()));
    check_queries(&whole, &rows, &queries).unwrap();
    for shard in [0, 64, 500, 2_000] {
        let ix = build(&rows, 5, shard, dir.path(), &format!("shard-{shard}"));
        assert_eq!(std::fs::read(ix.path()).unwrap(), want, "shards of {shard} tokens");
    }
    for memory in [1, 4 << 10, 32 << 10, 1 << 30] {
        let ix = build_streamed(&rows, 5, memory, dir.path(), &format!("streamed-{memory}"));
        assert_eq!(std::fs::read(ix.path()).unwrap(), want, "streamed with {memory} bytes");
    }
    for cut in [1, 6, 11, rows.len() - 2] {
        let first = build(&rows[..cut], 5, 300, dir.path(), "first");
        let ext = first.extend(key(1), &rows[cut..], 300, &dir.path().join("ext"), &mut |_, _| {}).unwrap();
        assert_eq!(std::fs::read(ext.path()).unwrap(), want, "extended at row {cut}");
    }
}

/// The attack the depth bound defends against: 200 rows, each a few tokens of
/// its own then the same 20,000-token stretch (ingest's longest row is 20,000
/// characters). Sorting by comparisons alone reads about as many tokens per
/// comparison as the stretch is long: this test took 119 s that way (the bound
/// lifted), 6.8 s with comparisons bounded and the deep ties ordered by prefix
/// doubling, and the gap grows with the stretch and the number of copies. In
/// memory (shards merged) and out of core (many groups) give the same file,
/// and every copy is found.
#[test]
fn rows_that_repeat_one_long_stretch_build_in_bounded_work() {
    let mut rng = Rng::new(43);
    let stretch: Vec<u32> = (0..20_000).map(|_| rng.below(1000) as u32).collect();
    let rows: Vec<IndexRow> = (0..200u64)
        .map(|c| {
            let mut t: Vec<u32> = (0..3).map(|_| rng.below(1000) as u32).collect();
            t.extend(&stretch);
            row(c + 1, 0, t)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let in_memory = build(&rows, 1000, 200_000, dir.path(), "mem");
    let streamed = build_streamed(&rows, 1000, 8 << 20, dir.path(), "ooc");
    assert_eq!(std::fs::read(streamed.path()).unwrap(), std::fs::read(in_memory.path()).unwrap());
    for at in [0, 5_000, 19_000] {
        let q = &stretch[at..at + 500];
        assert_eq!(in_memory.count(q), 200);
        let mut got = in_memory.positions(q);
        got.sort();
        assert_eq!(got, naive_positions(&rows, q));
    }
}
