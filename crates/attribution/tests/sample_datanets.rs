//! The sample Datanets under `data/`, parsed into rows as ingest does, tokenized by
//! a simple deterministic word-piece split (whitespace words cut into pieces of at
//! most 4 characters; the first piece of a word starts it), indexed and traced.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use attribution::{IndexRow, SpanIndex, TraceParams, trace};
use common::*;
use ingest::{IngestConfig, Row, detect_kind, parse};
use primitives::rows::RowId;

/// Word pieces → ids, assigned in first-seen order.
#[derive(Default)]
struct Pieces {
    ids: BTreeMap<String, u32>,
    names: Vec<String>,
}

impl Pieces {
    fn tokenize(&mut self, text: &str, grow: bool) -> (Vec<u32>, Vec<bool>) {
        let (mut ids, mut starts) = (Vec::new(), Vec::new());
        for word in text.split_whitespace() {
            let chars: Vec<char> = word.chars().collect();
            for (k, piece) in chars.chunks(4).enumerate() {
                let piece: String = piece.iter().collect();
                let id = match self.ids.get(&piece) {
                    Some(&id) => id,
                    None if grow => {
                        let id = self.names.len() as u32;
                        self.ids.insert(piece.clone(), id);
                        self.names.push(piece);
                        id
                    }
                    // Unknown to the index: an id past the vocabulary.
                    None => u32::MAX - 1,
                };
                ids.push(id);
                starts.push(k == 0);
            }
        }
        (ids, starts)
    }
}

fn row_text(r: &Row) -> String {
    match r {
        Row::Text { text } => text.clone(),
        Row::PromptCompletion { prompt, completion } => format!("{prompt}\n{completion}"),
    }
}

struct Sample {
    /// (file name, contribution id, rows' texts)
    files: Vec<(String, u64, Vec<String>)>,
    rows: Vec<IndexRow>,
    pieces: Pieces,
}

fn load() -> Sample {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let mut names: Vec<String> = Vec::new();
    for datanet in ["home-gardening", "unix-shell"] {
        let mut files: Vec<String> = std::fs::read_dir(data.join(datanet))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "datanet.json")
            .map(|n| format!("{datanet}/{n}"))
            .collect();
        files.sort();
        names.extend(files);
    }
    let mut pieces = Pieces::default();
    let mut files = Vec::new();
    let mut rows = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let bytes = std::fs::read(data.join(name)).unwrap();
        let parsed = parse(&bytes, detect_kind(name).unwrap(), &IngestConfig::default()).unwrap();
        let contribution = k as u64 + 1;
        let texts: Vec<String> = parsed.iter().map(row_text).collect();
        for (i, t) in texts.iter().enumerate() {
            let (tokens, _) = pieces.tokenize(t, true);
            rows.push(IndexRow {
                id: RowId { contribution, index: i as u32 },
                contributor: contributor(contribution),
                tombstoned: false,
                tokens,
            });
        }
        files.push((name.clone(), contribution, texts));
    }
    Sample { files, rows, pieces }
}

fn contribution_of(s: &Sample, file: &str) -> u64 {
    s.files.iter().find(|f| f.0 == file).unwrap().1
}

#[test]
fn sample_datanets_index_and_count() {
    let s = load();
    assert_eq!(s.rows.len(), 213, "data/README.md: 213 rows");
    let dir = tempfile::tempdir().unwrap();
    let vocab = s.pieces.names.len() as u32;
    let ix = SpanIndex::build(key(1), &s.rows, vocab, 0, &dir.path().join("ix"), &mut |_, _| {}).unwrap();
    ix.verify().unwrap();
    // Counts against a scan, for windows of every 10th row.
    for r in s.rows.iter().step_by(10) {
        for w in r.tokens.windows(3).step_by(7) {
            assert_eq!(ix.count(w), naive_positions(&s.rows, w).len() as u64);
        }
    }
    // Small shards and a reload give the very same file.
    let small = SpanIndex::build(key(1), &s.rows, vocab, 500, &dir.path().join("small"), &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read(small.path()).unwrap(), std::fs::read(ix.path()).unwrap());
    let s2 = small.sizes();
    assert!(s2.tokens_and_sa_per_token() <= 6.0 && s2.row_map_per_token() <= 0.25, "{s2:?}");
}

#[test]
fn a_quoted_tip_credits_its_contribution() {
    let mut s = load();
    let vocab = s.pieces.names.len() as u32;
    let dir = tempfile::tempdir().unwrap();
    let ix = SpanIndex::build(key(1), &s.rows, vocab, 0, &dir.path().join("ix"), &mut |_, _| {}).unwrap();
    let file = "unix-shell/contributor-2.jsonl";
    let tip = s.files.iter().find(|f| f.0 == file).unwrap().2[1].clone(); // the `sort | uniq -c` tip
    let quoted: String = tip.split_whitespace().take(16).collect::<Vec<_>>().join(" ");
    let response = format!("Here is a trick I like: {quoted} and that is about it, glorbnax.");
    let (ids, starts) = s.pieces.tokenize(&response, false);
    let t = trace(&ix, &ids, &starts, &TraceParams::default()).unwrap();
    assert_eq!(t.credits, vec![(contribution_of(&s, file), 1_000_000)], "{:?}", t.spans);
    let span = &t.spans[0];
    let text: String = ids[span.token_start as usize..span.token_end as usize]
        .iter()
        .zip(&starts[span.token_start as usize..span.token_end as usize])
        .map(|(&id, &st)| format!("{}{}", if st { " " } else { "" }, s.pieces.names[id as usize]))
        .collect();
    assert!(text.trim().starts_with("Use `sort | uniq -c"), "{text}");
    assert_eq!(span.rows[0].id, RowId { contribution: contribution_of(&s, file), index: 1 });
}

#[test]
fn a_duplicated_file_shares_the_credit() {
    let mut s = load();
    let vocab = s.pieces.names.len() as u32;
    let dir = tempfile::tempdir().unwrap();
    let ix = SpanIndex::build(key(1), &s.rows, vocab, 0, &dir.path().join("ix"), &mut |_, _| {}).unwrap();
    let original = "home-gardening/contributor-1.md";
    let copy = "home-gardening/duplicate-of-contributor-1.md";
    let section = s.files.iter().find(|f| f.0 == original).unwrap().2[1].clone();
    let (ids, starts) = s.pieces.tokenize(&section, false);
    let t = trace(&ix, &ids, &starts, &TraceParams::default()).unwrap();
    let (a, b) = (contribution_of(&s, original), contribution_of(&s, copy));
    let mut want = vec![(a, 500_000), (b, 500_000)];
    want.sort();
    assert_eq!(t.credits, want);
    // With the copy tombstoned, the original gets it all.
    drop(ix);
    let dead: Vec<RowId> = s.rows.iter().filter(|r| r.id.contribution == b).map(|r| r.id).collect();
    SpanIndex::mark_tombstoned(&dir.path().join("ix"), key(2), &dead).unwrap();
    let ix = SpanIndex::open(&dir.path().join("ix")).unwrap();
    let t = trace(&ix, &ids, &starts, &TraceParams::default()).unwrap();
    assert_eq!(t.credits, vec![(a, 1_000_000)]);
    assert_eq!(t.index.version, 2);
}
