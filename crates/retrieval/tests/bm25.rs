//! The BM25 index through its public API: building, opening, extending, refusing, searching.

use std::fs;
use std::path::Path;

use retrieval::{Bm25Index, Bm25Scan, Doc, MAX_K, MAX_QUERY_BYTES, RetrievalError};

const WORDS: &[&str] = &[
    "river", "stone", "market", "winter", "lantern", "harbor", "copper", "meadow", "signal", "orchard", "thunder",
    "glass", "valley", "engine", "paper", "forest", "silver", "garden", "bridge", "candle",
];

/// Seeded filler rows: contribution c has rows 0..per, every row a few words.
fn corpus(contributions: u64, per: u32) -> Vec<Doc> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut docs = Vec::new();
    for contribution in 1..=contributions {
        for row in 0..per {
            let n = 5 + next() % 8;
            let text: Vec<&str> = (0..n).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
            docs.push(Doc { contribution, row, text: text.join(" ") });
        }
    }
    docs
}

fn planted() -> Vec<Doc> {
    let mut docs = corpus(20, 10);
    docs[137].text = "The capital of Zorvania is Quellmarsh, on the copper river.".into();
    docs
}

fn keys(hits: &[retrieval::Hit]) -> Vec<(u64, u32)> {
    hits.iter().map(|h| (h.contribution, h.row)).collect()
}

fn leftovers(parent: &Path) -> Vec<String> {
    fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn build_then_open_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v1");
    let docs = planted();
    let built = Bm25Index::build(&dir, docs.clone()).unwrap();
    assert_eq!(built.n_docs(), 200);
    assert_eq!(built.last_row(), Some((20, 9)));
    let want: Vec<(u64, u32)> = docs.iter().map(|d| (d.contribution, d.row)).collect();
    assert_eq!(built.rows().unwrap(), want);
    let hits = built.search("copper lantern meadow", 10).unwrap();
    drop(built);
    let opened = Bm25Index::open(&dir).unwrap();
    assert_eq!(opened.n_docs(), 200);
    assert_eq!(opened.rows().unwrap(), want);
    assert_eq!(opened.search("copper lantern meadow", 10).unwrap(), hits);
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn planted_answer_is_rank_one_with_its_text() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Bm25Index::build(&tmp.path().join("i"), planted()).unwrap();
    let hits = index.search("What is the capital of Zorvania?", 5).unwrap();
    assert_eq!((hits[0].contribution, hits[0].row), (14, 7));
    assert_eq!(hits[0].text, "The capital of Zorvania is Quellmarsh, on the copper river.");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let scan = Bm25Scan::new(planted()).unwrap();
    let reference = scan.search("What is the capital of Zorvania?", 5).unwrap();
    assert_eq!((reference[0].contribution, reference[0].row), (14, 7));
}

#[test]
fn ties_are_broken_by_key_ascending() {
    let tmp = tempfile::tempdir().unwrap();
    let docs: Vec<Doc> = (0..30).map(|i| Doc { contribution: 30 - i / 3, row: 0, text: String::new() }).collect();
    // Same text everywhere except the keys, given in increasing order.
    let mut docs: Vec<Doc> = docs.into_iter().map(|d| Doc { text: "same words here".into(), ..d }).collect();
    docs.sort_by_key(|d| (d.contribution, d.row));
    docs.dedup_by_key(|d| (d.contribution, d.row));
    let index = Bm25Index::build(&tmp.path().join("i"), docs.clone()).unwrap();
    let hits = index.search("words", 4).unwrap();
    let want: Vec<(u64, u32)> = docs.iter().take(4).map(|d| (d.contribution, d.row)).collect();
    assert_eq!(keys(&hits), want);
    assert!(hits.iter().all(|h| h.score == hits[0].score));
}

#[test]
fn extend_matches_a_fresh_build() {
    let tmp = tempfile::tempdir().unwrap();
    let all = planted();
    let (old, new) = all.split_at(120);
    let v1 = Bm25Index::build(&tmp.path().join("v1"), old.to_vec()).unwrap();
    let v2 = v1.extend(&tmp.path().join("v2"), new.to_vec()).unwrap();
    let fresh = Bm25Index::build(&tmp.path().join("fresh"), all.clone()).unwrap();
    assert_eq!(v2.n_docs(), 200);
    assert_eq!(v2.last_row(), fresh.last_row());
    assert_eq!(v2.rows().unwrap(), fresh.rows().unwrap());
    // The old version is untouched.
    assert_eq!(Bm25Index::open(&tmp.path().join("v1")).unwrap().n_docs(), 120);
    for q in ["capital of Zorvania", "copper river stone", "winter harbor lantern glass", "paper"] {
        let a = v2.search(q, MAX_K).unwrap();
        let b = fresh.search(q, MAX_K).unwrap();
        assert_eq!(keys(&a), keys(&b), "{q}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x.score - y.score).abs() <= 1e-5 * y.score.abs(), "{q}: {} vs {}", x.score, y.score);
            assert_eq!(x.text, y.text);
        }
    }
    // Reopened from disk, the extended index is the same.
    assert_eq!(
        Bm25Index::open(&tmp.path().join("v2")).unwrap().search("paper", 8).unwrap(),
        v2.search("paper", 8).unwrap()
    );
}

#[test]
fn extend_refuses_rows_not_after_the_last() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = Bm25Index::build(&tmp.path().join("v1"), corpus(2, 3)).unwrap();
    let err =
        v1.extend(&tmp.path().join("v2"), vec![Doc { contribution: 2, row: 2, text: "again".into() }]).unwrap_err();
    assert!(matches!(err, RetrievalError::Order { prev: (2, 2), next: (2, 2) }), "{err}");
    assert!(!tmp.path().join("v2").exists());
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn out_of_order_build_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let mut docs = corpus(3, 3);
    docs.swap(4, 5);
    let err = Bm25Index::build(&dir, docs).unwrap_err();
    assert!(matches!(err, RetrievalError::Order { prev: (2, 2), next: (2, 1) }), "{err}");
    assert!(err.to_string().contains("strictly increasing"));
    assert!(!dir.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn build_refuses_a_non_empty_directory_but_takes_an_empty_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("precious.txt"), b"keep me").unwrap();
    assert!(matches!(Bm25Index::build(&dir, corpus(1, 2)), Err(RetrievalError::NotEmpty { .. })));
    assert_eq!(fs::read(dir.join("precious.txt")).unwrap(), b"keep me");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert_eq!(Bm25Index::build(&empty, corpus(1, 2)).unwrap().n_docs(), 2);
}

#[test]
fn an_empty_index_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Bm25Index::build(&tmp.path().join("i"), Vec::new()).unwrap();
    assert_eq!((index.n_docs(), index.last_row()), (0, None));
    assert!(index.rows().unwrap().is_empty());
    assert!(index.search("anything", 3).unwrap().is_empty());
    let grown = index.extend(&tmp.path().join("j"), corpus(1, 2)).unwrap();
    assert_eq!(grown.n_docs(), 2);
}

#[test]
fn foreign_and_corrupt_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let not_an_index = |dir: &Path| match Bm25Index::open(dir) {
        Err(RetrievalError::NotAnIndex { reason, .. }) => reason,
        other => panic!("{}: expected NotAnIndex, got {other:?}", dir.display()),
    };
    // A directory of other files, and one that does not exist.
    let foreign = tmp.path().join("foreign");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("meta.json"), b"{}").unwrap();
    assert!(not_an_index(&foreign).contains("retrieval.json"));
    assert!(not_an_index(&tmp.path().join("missing")).contains("retrieval.json"));

    let good = tmp.path().join("good");
    Bm25Index::build(&good, corpus(3, 4)).unwrap();
    let meta = fs::read_to_string(good.join("retrieval.json")).unwrap();
    let copy = |name: &str, meta: &str| {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        for e in fs::read_dir(&good).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        fs::write(dir.join("retrieval.json"), meta).unwrap();
        dir
    };
    assert!(not_an_index(&copy("garbage", "not json")).contains("unreadable"));
    assert!(
        not_an_index(&copy("other", &meta.replace("openledger-retrieval-bm25", "something-else"))).contains("format")
    );
    assert!(not_an_index(&copy("newer", &meta.replace("\"version\":1", "\"version\":99"))).contains("rebuild"));
    assert!(not_an_index(&copy("count", &meta.replace("\"n_docs\":12", "\"n_docs\":13"))).contains("13 rows"));
    assert!(not_an_index(&copy("last", &meta.replace("[3,3]", "[3,4]"))).contains("last row"));
    // Segment files gone: tantivy's metadata names files that are not there.
    let broken = copy("broken", &meta);
    for e in fs::read_dir(&broken).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "idx" || x == "store" || x == "term") {
            fs::remove_file(p).unwrap();
        }
    }
    assert!(Bm25Index::open(&broken).is_err());
    // The original still opens.
    assert_eq!(Bm25Index::open(&good).unwrap().n_docs(), 12);
}

#[test]
fn a_leftover_temporary_directory_is_refused_and_cleaned_by_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    // What a build killed before its rename leaves: a half-written index without metadata.
    let half = tmp.path().join(".v1.tmp-4242-1");
    fs::create_dir(&half).unwrap();
    fs::write(half.join("meta.json"), b"{\"segments\":[").unwrap();
    fs::write(half.join("0123.idx"), b"partial").unwrap();
    assert!(matches!(Bm25Index::open(&half), Err(RetrievalError::NotAnIndex { .. })));
    assert!(Bm25Index::open(&tmp.path().join("v1")).is_err());
    let index = Bm25Index::build(&tmp.path().join("v1"), corpus(2, 2)).unwrap();
    assert_eq!(index.n_docs(), 4);
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
}

#[test]
fn adversarial_queries_neither_error_nor_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Bm25Index::build(&tmp.path().join("i"), planted()).unwrap();
    let long_word = "a".repeat(MAX_QUERY_BYTES);
    let many_terms: String = (0..1000).map(|i| format!("w{i} ")).collect::<String>()[..MAX_QUERY_BYTES].to_owned();
    let syntax = [
        "a AND (b OR",
        "text:copper",
        "contribution:1",
        "\"unclosed phrase",
        "copper~2 river^10 -stone +meadow",
        "*",
        "[1 TO 5]",
        "NOT",
        "\\",
    ];
    for q in ["", "   ", "?!.,;:'\"()[]{}<>/\\|@#$%^&*~`", "—…«»", &long_word, &many_terms] {
        assert!(index.search(q, 5).unwrap().is_empty(), "{q:?} should find nothing");
    }
    for q in syntax {
        index.search(q, 5).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    // Only the first 64 distinct terms count.
    let junk: String = (0..64).map(|i| format!("junk{i} ")).collect();
    assert!(index.search(&format!("{junk} zorvania"), 5).unwrap().is_empty());
    assert_eq!(
        keys(&index.search(&format!("{}zorvania", &junk[..junk.len() - "junk63 ".len()]), 1).unwrap()),
        vec![(14, 7)]
    );
    // Operators are words: "text:copper" finds copper rows like "copper" does.
    assert_eq!(keys(&index.search("text:copper", 5).unwrap()), keys(&index.search("text copper", 5).unwrap()));
    // Unicode is tokenised and lowercased like the rows.
    let uni = Bm25Index::build(
        &tmp.path().join("u"),
        vec![
            Doc { contribution: 1, row: 0, text: "Ünïcödé Straße 東京 river".into() },
            Doc { contribution: 1, row: 1, text: "plain words".into() },
        ],
    )
    .unwrap();
    assert_eq!(keys(&uni.search("ÜNÏCÖDÉ?", 2).unwrap()), vec![(1, 0)]);
    assert_eq!(keys(&uni.search("東京", 2).unwrap()), vec![(1, 0)]);
    assert!(uni.search("🦀🦀🦀", 2).unwrap().is_empty());
}

#[test]
fn limits_are_errors_with_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Bm25Index::build(&tmp.path().join("i"), corpus(2, 2)).unwrap();
    for k in [0, MAX_K + 1, usize::MAX] {
        let err = index.search("river", k).unwrap_err();
        assert!(matches!(err, RetrievalError::KOutOfRange { .. }), "{err}");
        assert!(err.to_string().contains("1 to 64"));
    }
    assert_eq!(index.search(&WORDS.join(" "), MAX_K).unwrap().len(), 4);
    let err = index.search(&"x".repeat(MAX_QUERY_BYTES + 1), 3).unwrap_err();
    assert!(matches!(err, RetrievalError::QueryTooLong { len: 4097 }), "{err}");
    assert!(err.to_string().contains("4096"));
}

#[test]
fn the_scan_reference_agrees_with_the_index_on_clear_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = planted();
    let index = Bm25Index::build(&tmp.path().join("i"), docs.clone()).unwrap();
    let scan = Bm25Scan::new(docs).unwrap();
    assert_eq!(scan.n_docs(), 200);
    for q in ["Zorvania", "Quellmarsh capital"] {
        assert_eq!(keys(&index.search(q, 1).unwrap()), keys(&scan.search(q, 1).unwrap()), "{q}");
    }
    assert!(scan.search("?!", 3).unwrap().is_empty());
    assert!(matches!(
        Bm25Scan::new(vec![
            Doc { contribution: 1, row: 1, text: String::new() },
            Doc { contribution: 1, row: 0, text: String::new() }
        ]),
        Err(RetrievalError::Order { .. })
    ));
}

#[test]
fn the_index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Bm25Index>();
}
