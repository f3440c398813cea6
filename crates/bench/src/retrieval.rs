//! `bench retrieval`: does the `retrieval` crate find the row that answers a
//! question, and how fast? Generated data with planted answers; no peer.
//!
//! From `--seed`, before any clock starts, the bench writes for each size N in
//! `--rows` (default 10^5 and 10^6) a Datanet version of N rows (500 rows per
//! contribution): filler sentences of 8 to 20 words drawn (Zipf-like) from a
//! vocabulary of common English words, the relation words the facts use, and
//! invented words; and `--entities` (100) invented places with three facts each,
//! planted at seeded positions, each fact one of six relations (capital, founder,
//! export, river, population, mayor) in one of two sentence frames with an
//! invented value ("The capital of Brelholm is Quenmar."). Every fact has two
//! questions: **shared** (it repeats the fact's relation words: "What is the
//! capital of Brelholm?") and **paraphrased** (other words, only the place name
//! in common: "Which city is the seat of government of Brelholm?"). The place
//! name is in all three of its facts, so a paraphrase must find the relation to
//! rank the right row first.
//!
//! Methods: **BM25** ([`retrieval::Bm25Index`], tantivy), **scan** (exact BM25
//! over every row, [`retrieval::Bm25Scan`]: the index's reference), **dense**
//! (cosine over [`ml::Model::embed`] of the base model, `--base`, default the
//! committed `models/base`; flat exact search) and **hybrid** (reciprocal rank
//! fusion of BM25's and dense's top 64). Dense and hybrid run on the first size
//! only, or on `--dense-rows` rows (embedding every row is the cost; its time is
//! printed). Figures: recall@1, recall@5 and MRR@10 per method and question kind;
//! BM25's build time, index size and search latency p50/p99 (k = 5, every
//! question once after a warm-up pass); the scan's latency.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use ml::rng::Rng;
use ml::{Model, ModelFiles, TextTokenizer};
use retrieval::{Bm25Index, Bm25Scan, DenseIndex, Doc, MAX_K, fuse};
use serde_json::{Value, json};

use crate::machine::{Machine, today};
use crate::stats::{count_list, median, percentile};

/// `openledger bench retrieval`: recall@k and MRR of BM25, a BM25 scan, dense and
/// hybrid retrieval on planted facts; BM25 latency at 10^5 and 10^6 rows.
#[derive(clap::Args, Debug, Clone)]
pub struct RetrievalOpts {
    /// Datanet sizes in rows, comma-separated (k and M suffixes allowed).
    #[arg(long, default_value = "100k,1M")]
    pub rows: String,
    /// Invented places, three planted facts each.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub entities: u32,
    /// Rows for dense and hybrid (embedding every row is their cost; 0 = skip them).
    #[arg(long, default_value_t = 20_000)]
    pub dense_rows: u64,
    /// Skip the exact scan above this many rows (its memory and time grow with N).
    #[arg(long, default_value_t = 1_000_000)]
    pub scan_max_rows: u64,
    /// Base model folder or GGUF file for the embeddings (default: the committed models/base).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Seed of the generated Datanet.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the indexes here (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for RetrievalOpts {
    fn default() -> Self {
        RetrievalOpts {
            rows: "100k,1M".into(),
            entities: 100,
            dense_rows: 20_000,
            scan_max_rows: 1_000_000,
            base: None,
            seed: 1,
            dir: None,
            json_out: None,
        }
    }
}

/// A relation: two fact frames, the shared question, the paraphrased question.
/// `{A}` is the place, `{B}` the value.
struct Relation {
    facts: [&'static str; 2],
    shared: &'static str,
    paraphrase: &'static str,
    /// The value is a number, not an invented name.
    numeric: bool,
}

const RELATIONS: [Relation; 6] = [
    Relation {
        facts: ["The capital of {A} is {B}.", "{B} has been the capital of {A} for many years."],
        shared: "What is the capital of {A}?",
        paraphrase: "Which city is the seat of government for {A}?",
        numeric: false,
    },
    Relation {
        facts: ["{A} was founded by {B} long ago.", "Long ago {B} founded the town of {A}."],
        shared: "Who founded the town of {A}?",
        paraphrase: "Which person first established {A}?",
        numeric: false,
    },
    Relation {
        facts: ["The main export of {A} is {B} wool.", "{A} exports {B} wool more than anything else."],
        shared: "What is the main export of {A}?",
        paraphrase: "Which goods does {A} sell abroad most?",
        numeric: false,
    },
    Relation {
        facts: ["The river that flows through {A} is called the {B}.", "The {B} river flows through {A}."],
        shared: "What is the river that flows through {A} called?",
        paraphrase: "Which stream runs across {A}?",
        numeric: false,
    },
    Relation {
        facts: ["{A} has a population of {B} people.", "About {B} people live in {A} today."],
        shared: "What is the population of {A}?",
        paraphrase: "How many inhabitants does {A} have?",
        numeric: true,
    },
    Relation {
        facts: ["The mayor of {A} is {B}.", "{B} was elected mayor of {A} last spring."],
        shared: "Who is the mayor of {A}?",
        paraphrase: "Who leads the council that governs {A}?",
        numeric: false,
    },
];

/// Common words of the filler, including every word the questions use.
const COMMON: &str = "the of and a to in is was for on that by with as at from it be this which or are an were \
    but not have had has all one their there been more when who will would no out so what up said about into than \
    them can only other time new some could these two may first then do any like my now over such our man me even \
    most made after also did many before must through back years where much your way well down should because each \
    just those people how too little state good very make world still own see men work long get here between both \
    life being under never day same another know while last might us great old year off come since against go came \
    right used take three city town capital founded export river flows called population mayor elected council \
    governs leads seat government person established goods sell abroad stream runs across inhabitants live today \
    wool spring ago main thing else flow name market bridge harbour winter north south";

const ONSETS: [&str; 20] =
    ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "qu", "r", "s", "t", "th", "v"];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ae", "ei", "ou"];
const CODAS: [&str; 9] = ["", "l", "n", "r", "s", "th", "m", "rk", "nd"];
const ENDINGS: [&str; 8] = ["holm", "mar", "wick", "dale", "ford", "moor", "haven", "by"];
/// Invented words in the filler vocabulary.
const FILLER_INVENTED: usize = 20_000;
const ROWS_PER_CONTRIBUTION: u64 = 500;

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

/// An invented word (capitalised if `name`), not yet in `used`.
fn invented(rng: &mut Rng, syllables: usize, ending: bool, name: bool, used: &mut HashSet<String>) -> String {
    loop {
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(pick(rng, &ONSETS));
            w.push_str(pick(rng, &VOWELS));
            w.push_str(pick(rng, &CODAS));
        }
        if ending {
            w.push_str(pick(rng, &ENDINGS));
        }
        if used.insert(w.clone()) {
            if name {
                let mut c = w.chars();
                return c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default();
            }
            return w;
        }
    }
}

/// A planted fact: its row and its two questions.
#[derive(Debug, Clone, PartialEq)]
struct Fact {
    key: (u64, u32),
    /// The invented place the fact is about (in its row and both questions).
    place: String,
    shared: String,
    paraphrase: String,
}

/// One generated Datanet version.
struct Workload {
    docs: Vec<Doc>,
    facts: Vec<Fact>,
}

fn key_of(i: u64) -> (u64, u32) {
    (1 + i / ROWS_PER_CONTRIBUTION, (i % ROWS_PER_CONTRIBUTION) as u32)
}

/// The facts' texts and questions, in planting order.
fn facts(rng: &mut Rng, entities: u32, used: &mut HashSet<String>) -> Vec<(String, Fact)> {
    let mut out = Vec::new();
    for _ in 0..entities {
        let place = invented(rng, 2, true, true, used);
        let mut rels: Vec<usize> = (0..RELATIONS.len()).collect();
        for i in 0..3 {
            let j = i + rng.below((rels.len() - i) as u64) as usize;
            rels.swap(i, j);
        }
        for &r in &rels[..3] {
            let rel = &RELATIONS[r];
            let value = if rel.numeric {
                (1_000 + rng.below(900_000)).to_string()
            } else {
                let syllables = 2 + rng.below(2) as usize;
                invented(rng, syllables, false, true, used)
            };
            let fill = |s: &str| s.replace("{A}", &place).replace("{B}", &value);
            let frame = rel.facts[rng.below(2) as usize];
            let fact =
                Fact { key: (0, 0), place: place.clone(), shared: fill(rel.shared), paraphrase: fill(rel.paraphrase) };
            out.push((fill(frame), fact));
        }
    }
    out
}

/// `n` rows with the facts planted at seeded positions.
fn workload(n: u64, entities: u32, seed: u64) -> Result<Workload> {
    let mut rng = Rng::new(seed);
    let mut used = HashSet::new();
    let planted = facts(&mut rng, entities, &mut used);
    if (planted.len() as u64) > n {
        bail!("--rows {n} is fewer than the {} planted facts", planted.len());
    }
    let mut vocab: Vec<String> = COMMON.split_whitespace().map(str::to_owned).collect();
    used.extend(vocab.iter().cloned());
    for _ in 0..FILLER_INVENTED {
        // Two or three syllables: 20 × 8 × 9 = 1,440 one-syllable words would run out.
        let syllables = 2 + rng.below(2) as usize;
        vocab.push(invented(&mut rng, syllables, false, false, &mut used));
    }
    // Distinct positions for the facts.
    let mut at: Vec<u64> = Vec::new();
    let mut taken = HashSet::new();
    while at.len() < planted.len() {
        let p = rng.below(n);
        if taken.insert(p) {
            at.push(p);
        }
    }
    let mut fact_at: Vec<(u64, usize)> = at.iter().copied().zip(0..).collect();
    fact_at.sort_unstable();
    let mut docs = Vec::with_capacity(n as usize);
    let mut next_fact = fact_at.iter().peekable();
    for i in 0..n {
        let (contribution, row) = key_of(i);
        let text = match next_fact.peek() {
            Some(&&(p, f)) if p == i => {
                next_fact.next();
                planted[f].0.clone()
            }
            _ => filler(&mut rng, &vocab),
        };
        docs.push(Doc { contribution, row, text });
    }
    let facts = planted.into_iter().zip(&at).map(|((_, fact), &p)| Fact { key: key_of(p), ..fact }).collect();
    Ok(Workload { docs, facts })
}

/// One filler sentence: 8 to 20 words, word i of the vocabulary drawn with
/// weight about 1/(i+1) (the square of a uniform draw over ranks approximates it).
fn filler(rng: &mut Rng, vocab: &[String]) -> String {
    let len = 8 + rng.below(13);
    let mut words: Vec<&str> = Vec::with_capacity(len as usize);
    for _ in 0..len {
        let u = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
        let rank = ((vocab.len() as f64).powf(u) - 1.0) as usize;
        words.push(&vocab[rank.min(vocab.len() - 1)]);
    }
    let mut s = words.join(" ");
    if let Some(first) = s.get(..1) {
        s.replace_range(..1, &first.to_uppercase());
    }
    s.push('.');
    s
}

/// Recall@1, recall@5, MRR@10 over questions, from each question's rank of its row.
#[derive(Debug, Default, Clone)]
struct Quality {
    ranks: Vec<Option<usize>>,
}

impl Quality {
    fn add(&mut self, ranked: &[(u64, u32)], want: (u64, u32)) {
        self.ranks.push(ranked.iter().take(10).position(|k| *k == want).map(|r| r + 1));
    }
    fn recall(&self, k: usize) -> f64 {
        self.ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / self.ranks.len().max(1) as f64
    }
    fn mrr(&self) -> f64 {
        self.ranks.iter().map(|r| r.map_or(0.0, |r| 1.0 / r as f64)).sum::<f64>() / self.ranks.len().max(1) as f64
    }
}

/// One table line: a method on one kind of question at one size.
#[derive(Debug, Clone)]
struct Line {
    n: u64,
    method: &'static str,
    kind: &'static str,
    quality: Quality,
    /// Per-question latencies in ms (empty where not measured).
    ms: Vec<f64>,
}

impl Line {
    fn print(&self) {
        let lat = if self.ms.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2} / {:.2}", median(&self.ms), percentile(&self.ms, 99.0))
        };
        println!(
            "| {:>9} | {:<6} | {:<11} | {:>5.3} | {:>5.3} | {:>5.3} | {:>15} |",
            self.n,
            self.method,
            self.kind,
            self.quality.recall(1),
            self.quality.recall(5),
            self.quality.mrr(),
            lat
        );
    }
    fn to_json(&self) -> Value {
        json!({
            "rows": self.n, "method": self.method, "questions": self.kind,
            "recall_at_1": self.quality.recall(1), "recall_at_5": self.quality.recall(5), "mrr_at_10": self.quality.mrr(),
            "p50_ms": (!self.ms.is_empty()).then(|| median(&self.ms)),
            "p99_ms": (!self.ms.is_empty()).then(|| percentile(&self.ms, 99.0)),
        })
    }
}

const KINDS: [&str; 2] = ["shared", "paraphrased"];

fn question(f: &Fact, kind: &str) -> String {
    if kind == "shared" { f.shared.clone() } else { f.paraphrase.clone() }
}

/// Run `search` on every question of every kind; one line per kind.
fn measure(
    n: u64,
    method: &'static str,
    facts: &[Fact],
    timed: bool,
    mut search: impl FnMut(&str) -> Result<Vec<(u64, u32)>>,
) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for kind in KINDS {
        let mut line = Line { n, method, kind, quality: Quality::default(), ms: Vec::new() };
        for f in facts {
            let t = Instant::now();
            let ranked = search(&question(f, kind))?;
            if timed {
                line.ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            line.quality.add(&ranked, f.key);
        }
        lines.push(line);
    }
    Ok(lines)
}

fn keys(hits: &[retrieval::Hit]) -> Vec<(u64, u32)> {
    hits.iter().map(|h| (h.contribution, h.row)).collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
}

/// BM25 (and the scan, up to `--scan-max-rows`) at one size.
fn run_size(o: &RetrievalOpts, n: u64, dir: &Path, lines: &mut Vec<Line>, builds: &mut Vec<Value>) -> Result<()> {
    let w = workload(n, o.entities, o.seed)?;
    let index_dir = dir.join(format!("bm25-{n}"));
    let t = Instant::now();
    let index = Bm25Index::build(&index_dir, w.docs.iter().cloned())?;
    let build_s = t.elapsed().as_secs_f64();
    let bytes = dir_bytes(&index_dir);
    println!(
        "{n} rows: BM25 index built in {build_s:.1} s ({:.0} rows/s), {:.1} MB on disk ({:.0} bytes/row)",
        n as f64 / build_s,
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );
    builds.push(json!({"rows": n, "build_s": build_s, "index_bytes": bytes}));
    // Warm-up: every question once, untimed (page cache, tantivy's lazy loads).
    measure(n, "bm25", &w.facts, false, |q| Ok(keys(&index.search(q, 5)?)))?;
    lines.extend(measure(n, "bm25", &w.facts, true, |q| Ok(keys(&index.search(q, 10)?)))?);
    if n <= o.scan_max_rows {
        let t = Instant::now();
        let scan = Bm25Scan::new(w.docs)?;
        println!("{n} rows: scan reference loaded in {:.1} s", t.elapsed().as_secs_f64());
        lines.extend(measure(n, "scan", &w.facts, true, |q| Ok(keys(&scan.search(q, 10)?)))?);
    }
    Ok(())
}

/// Dense and hybrid (and BM25 for comparison) at `--dense-rows`.
fn run_dense(o: &RetrievalOpts, dir: &Path, lines: &mut Vec<Line>) -> Result<Value> {
    let n = o.dense_rows;
    let base = match &o.base {
        Some(p) => p.clone(),
        None => node::default_base_model()
            .ok_or_else(|| anyhow!("no base model: models/base is missing; pass --base PATH"))?,
    };
    let files = ModelFiles::open(&base).map_err(|e| anyhow!("{}: {e}", base.display()))?;
    let model = Model::from_files(&files).map_err(|e| anyhow!("{}: {e}", base.display()))?;
    let tok = files.tokenizer.clone();
    let w = workload(n, o.entities, o.seed)?;
    let t = Instant::now();
    let mut dense = DenseIndex::new(model.config.hidden_size)?;
    for d in &w.docs {
        dense.push(d.contribution, d.row, &embed(&model, &tok, &d.text)?)?;
    }
    let embed_s = t.elapsed().as_secs_f64();
    println!(
        "{n} rows: embedded with {} ({} hidden, mean-pooled final states) in {embed_s:.1} s ({:.2} ms/row)",
        base.display(),
        model.config.hidden_size,
        embed_s * 1e3 / n as f64
    );
    let index = Bm25Index::build(&dir.join(format!("bm25-dense-{n}")), w.docs.iter().cloned())?;
    let dense_keys = |q: &str| -> Result<Vec<(u64, u32)>> {
        let hits = dense.search(&embed(&model, &tok, q)?, MAX_K)?;
        Ok(hits.iter().map(|h| (h.contribution, h.row)).collect())
    };
    lines.extend(measure(n, "bm25", &w.facts, true, |q| Ok(keys(&index.search(q, 10)?)))?);
    lines.extend(measure(n, "dense", &w.facts, true, |q| Ok(dense_keys(q)?.into_iter().take(10).collect()))?);
    lines.extend(measure(n, "hybrid", &w.facts, true, |q| {
        let (b, d) = (keys(&index.search(q, MAX_K)?), dense_keys(q)?);
        Ok(fuse(&[&b, &d], 10)?.iter().map(|f| (f.contribution, f.row)).collect())
    })?);
    Ok(json!({"rows": n, "model": base.display().to_string(), "model_hash": files.hash.to_string(),
        "embed_s": embed_s, "hidden_size": model.config.hidden_size}))
}

fn embed(model: &Model, tok: &TextTokenizer, text: &str) -> Result<Vec<f32>> {
    let mut ids = tok.encode(text, false).map_err(|e| anyhow!("tokenizing: {e}"))?;
    ids.truncate(model.config.max_position_embeddings);
    if ids.is_empty() {
        bail!("{text:?} has no tokens");
    }
    model.embed(&ids).map_err(|e| anyhow!("embedding: {e}"))
}

fn parse_sizes(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (part, n) in count_list(s, "--rows")? {
        match n {
            Some(n) if n > 0 => out.push(n),
            _ => bail!("--rows: {part:?} must be a positive row count"),
        }
    }
    if out.is_empty() {
        bail!("--rows: give at least one size");
    }
    Ok(out)
}

/// Run the suite and print its tables (see the module docs).
pub fn run_retrieval(o: &RetrievalOpts) -> Result<()> {
    let machine = Machine::detect();
    let sizes = parse_sizes(&o.rows)?;
    let (_tmp, dir) = crate::peer::work_dir(o.dir.as_deref(), "bench-retrieval-")?;
    println!(
        "bench retrieval: planted facts, retrieval::Bm25Index (tantivy) vs an exact BM25 scan, dense, hybrid (no peer)"
    );
    println!("machine: {}", machine.describe());
    println!(
        "{} places × 3 facts = {} facts, {} questions of each kind; seed {}",
        o.entities,
        3 * o.entities,
        3 * o.entities,
        o.seed
    );
    let (mut lines, mut builds) = (Vec::new(), Vec::new());
    for &n in &sizes {
        run_size(o, n, &dir, &mut lines, &mut builds)?;
    }
    let dense = if o.dense_rows > 0 { Some(run_dense(o, &dir, &mut lines)?) } else { None };
    println!();
    println!("| rows      | method | questions   | R@1   | R@5   | MRR   | p50 / p99 ms    |");
    println!("| --------- | ------ | ----------- | ----- | ----- | ----- | --------------- |");
    for l in &lines {
        l.print();
    }
    if let Some(path) = &o.json_out {
        let out = json!({
            "bench": "retrieval", "date": today(), "machine": machine.to_json(), "seed": o.seed,
            "facts": 3 * o.entities, "builds": builds, "dense": dense,
            "lines": lines.iter().map(Line::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_seeded_and_plants_every_fact_once() {
        let a = workload(3_000, 20, 7).unwrap();
        let b = workload(3_000, 20, 7).unwrap();
        assert_eq!(a.docs, b.docs);
        assert_eq!(a.facts, b.facts);
        assert_eq!(a.facts.len(), 60);
        let keys: HashSet<(u64, u32)> = a.facts.iter().map(|f| f.key).collect();
        assert_eq!(keys.len(), 60);
        assert!(a.docs.windows(2).all(|w| (w[0].contribution, w[0].row) < (w[1].contribution, w[1].row)));
        for f in &a.facts {
            let doc = a.docs.iter().find(|d| (d.contribution, d.row) == f.key).unwrap();
            assert!(doc.text.contains(&f.place), "{} / {}", doc.text, f.shared);
            assert!(f.shared.contains(&f.place) && f.paraphrase.contains(&f.place));
        }
        assert!(workload(10, 20, 7).is_err());
    }

    #[test]
    fn quality_counts_ranks() {
        let mut q = Quality::default();
        q.add(&[(1, 0), (2, 0)], (1, 0));
        q.add(&[(1, 0), (2, 0)], (2, 0));
        q.add(&[(1, 0)], (3, 0));
        assert!((q.recall(1) - 1.0 / 3.0).abs() < 1e-9);
        assert!((q.recall(5) - 2.0 / 3.0).abs() < 1e-9);
        assert!((q.mrr() - 0.5).abs() < 1e-9);
        assert!(parse_sizes("1k, 2M").unwrap() == vec![1_000, 2_000_000]);
        assert!(parse_sizes("0").is_err() && parse_sizes("").is_err());
    }

    #[test]
    fn run_retrieval_smoke() {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("retrieval.json");
        let o = RetrievalOpts {
            rows: "2000".into(),
            entities: 10,
            dense_rows: 300,
            dir: Some(dir.path().join("work")),
            json_out: Some(json_path.clone()),
            ..RetrievalOpts::default()
        };
        run_retrieval(&o).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap();
        let lines = v["lines"].as_array().unwrap();
        // bm25 and scan at 2000 rows; bm25, dense and hybrid at 300; two kinds each.
        assert_eq!(lines.len(), 10);
        let shared_bm25 = &lines[0];
        assert_eq!((shared_bm25["method"].as_str(), shared_bm25["questions"].as_str()), (Some("bm25"), Some("shared")));
        assert!(shared_bm25["recall_at_5"].as_f64().unwrap() >= 0.9, "{shared_bm25}");
    }
}
