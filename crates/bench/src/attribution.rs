//! `bench attribution`: the span index and span tracing of the `attribution`
//! crate against infini-gram (PyPI `infini-gram`, the engine OLMoTrace is built
//! on) on the same corpus and the same responses.
//!
//! For each size in `--tokens` (default 10^6 and 10^7; 10^8 by hand) the bench
//! generates, from `--seed`, before any clock starts:
//! - a corpus of documents of 50–500 tokens drawn from a Zipfian distribution
//!   (exponent `--zipf`, default 1.0) over `--vocab` (50,000) token ids, ten
//!   documents per contribution, exactly N tokens in all;
//! - `--responses` (20) responses of `--response-len` (500) tokens: Zipfian filler
//!   around `--planted` (5) spans of 12–40 tokens, each also written over a random
//!   place in 1–3 documents (so it occurs in the corpus);
//! - word starts from the token id (id mod 5 ≠ 0 starts a word, as a GPT-2-style
//!   "Ġ" token would), the same rule for both sides (infini-gram's `bow_ids`).
//!
//! Then, per size: `--build-rounds` builds alternating ours ([`attribution::SpanIndex::build`]
//! from the rows in memory to the finished file, default shards, rayon on every core)
//! and infini-gram's (`infini_gram.indexing.build_sa` over the same tokens already in
//! its layout on disk, `--cpus` = cores); then `--rounds` rounds of tracing every
//! response, ours ([`attribution::trace`]: maximal spans, ranking, rows and credits,
//! default parameters but `--max-frequency`) then infini-gram's
//! (`InfiniGramEngine.attribute(ids, [], min_len, max_cnt, enforce_bow=True)`, the
//! maximal-span query, index loaded in RAM unless `--peer-mmap`). Every call is timed
//! on its own; p50 and p99 are over all calls of all rounds. Our maximal spans
//! ([`attribution::maximal_spans`], the same definition) must equal infini-gram's
//! (start, end, count) for every response, and every planted span must be found.
//!
//! The peer runs as `bench/peers/attribution_peer.py --serve` under the git-ignored
//! `bench/.venv` (created with `pip install infini-gram` when missing); its licence
//! is unclear, so we measure against it and never depend on it.

use crate::peer::PythonPeer as PeerSetup;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use attribution::{IndexKey, IndexRow, SpanIndex, TraceParams, maximal_spans, trace};
use primitives::rows::RowId;
use primitives::{Address, B256};
use serde_json::{Value, json};

use crate::chain::write_json;
use crate::machine::{Machine, today};
use crate::state::Rng;
use crate::stats::{count_list, fmt_ratio, median, percentile, ratio};

/// `openledger bench attribution`: span index build rate and size, and the time
/// to trace a response, ours vs infini-gram.
#[derive(clap::Args, Debug, Clone)]
pub struct AttributionOpts {
    /// Corpus sizes in tokens, comma-separated (k/M suffixes): 100M is a manual run
    /// (about 3 GB of memory and ten minutes with the peer).
    #[arg(long, default_value = "1M,10M")]
    pub tokens: String,
    /// Responses traced per round.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub responses: u32,
    /// Tokens per response.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(50..))]
    pub response_len: u32,
    /// Spans planted in each response (and in the corpus).
    #[arg(long, default_value_t = 5)]
    pub planted: u32,
    /// Tracing rounds (ours, then the peer, each round).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Index builds per size and system (alternating).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub build_rounds: u32,
    /// Vocabulary size (at most 65,535: infini-gram's u16 layout).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(100..65_535))]
    pub vocab: u32,
    /// Zipf exponent of the token distribution.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Shortest span, in tokens (both sides).
    #[arg(long, default_value_t = 8)]
    pub min_len: u32,
    /// Spans occurring more often are dropped (both sides).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_frequency: u64,
    /// Seed of the corpus and the responses.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run ours only (ratios n/a).
    #[arg(long)]
    pub no_peer: bool,
    /// infini-gram memory-maps its index (its default) instead of loading it into RAM.
    #[arg(long)]
    pub peer_mmap: bool,
    /// Python with infini-gram. Default: bench/.venv/bin/python of the source tree,
    /// created when missing.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Write the corpora and indexes here and keep them (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for AttributionOpts {
    fn default() -> Self {
        AttributionOpts {
            tokens: "1M,10M".into(),
            responses: 20,
            response_len: 500,
            planted: 5,
            rounds: 5,
            build_rounds: 2,
            vocab: 50_000,
            zipf: 1.0,
            min_len: 8,
            max_frequency: 1_000_000,
            seed: 1,
            no_peer: false,
            peer_mmap: false,
            python: None,
            dir: None,
            json_out: None,
        }
    }
}

/// "1M, 10M,500k" → token counts.
pub(crate) fn parse_tokens(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (part, n) in count_list(s, "--tokens")? {
        match n {
            Some(n) if n >= 10_000 => out.push(n),
            _ => bail!("--tokens: {part:?} must be at least 10k tokens"),
        }
    }
    if out.is_empty() {
        bail!("--tokens: no sizes given");
    }
    Ok(out)
}

/// Whether a token starts a word in the synthetic tokenizer.
fn starts_word(t: u32) -> bool {
    !t.is_multiple_of(5)
}

/// Zipfian token ids: id k has weight 1 / (k + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(vocab: u32, s: f64) -> Zipf {
        let mut acc = 0.0;
        let cdf = (0..vocab)
            .map(|k| {
                acc += 1.0 / ((k + 1) as f64).powf(s);
                acc
            })
            .collect();
        Zipf { cdf }
    }
    fn sample(&self, rng: &mut Rng) -> u32 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * self.cdf[self.cdf.len() - 1];
        (self.cdf.partition_point(|&c| c <= u) as u32).min(self.cdf.len() as u32 - 1)
    }
}

/// The corpus and the responses of one size.
struct Workload {
    rows: Vec<IndexRow>,
    responses: Vec<Vec<u32>>,
    word_start: Vec<Vec<bool>>,
    /// Where the planted spans are in each response.
    planted: Vec<Vec<(usize, usize)>>,
}

fn contributor_of(contribution: u64) -> Address {
    let mut a = [0u8; 20];
    a[0] = 0xA7;
    a[12..].copy_from_slice(&(contribution % 1000).to_be_bytes());
    Address::from(a)
}

fn workload(o: &AttributionOpts, n_tokens: u64) -> Result<Workload> {
    let mut rng = Rng::new(o.seed ^ n_tokens.rotate_left(17));
    let zipf = Zipf::new(o.vocab, o.zipf);
    let mut rows: Vec<IndexRow> = Vec::new();
    let mut have = 0u64;
    while have < n_tokens {
        let len = (50 + rng.below(451)).min(n_tokens - have) as usize;
        let tokens: Vec<u32> = (0..len).map(|_| zipf.sample(&mut rng)).collect();
        let k = rows.len() as u64;
        let contribution = k / 10 + 1;
        rows.push(IndexRow {
            id: RowId { contribution, index: (k % 10) as u32 },
            contributor: contributor_of(contribution),
            tombstoned: false,
            tokens,
        });
        have += len as u64;
    }
    let l = o.response_len as usize;
    let planted_n = (o.planted as usize).min(l / 50);
    // Each planted span goes into up to 3 documents of its own.
    if rows.len() < 2 * 3 * planted_n * o.responses as usize {
        bail!("{n_tokens} tokens are too few documents for {} responses with {planted_n} planted spans", o.responses);
    }
    let mut used: HashSet<usize> = HashSet::new();
    let (mut responses, mut word_start, mut planted) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.responses {
        let spans: Vec<Vec<u32>> = (0..planted_n)
            .map(|_| {
                let len = 12 + rng.below(29) as usize;
                let mut s: Vec<u32> = (0..len).map(|_| zipf.sample(&mut rng)).collect();
                if !starts_word(s[0]) {
                    s[0] += 1; // a span starts a word
                }
                s
            })
            .collect();
        for s in &spans {
            let copies = 1 + rng.below(3);
            for _ in 0..copies {
                // A document of its own (planted spans never overwrite each other),
                // long enough to hold it.
                let d = loop {
                    let d = rng.below(rows.len() as u64) as usize;
                    if rows[d].tokens.len() >= s.len() && used.insert(d) {
                        break d;
                    }
                };
                let at = rng.below((rows[d].tokens.len() - s.len() + 1) as u64) as usize;
                rows[d].tokens[at..at + s.len()].copy_from_slice(s);
            }
        }
        let fill = (l - spans.iter().map(Vec::len).sum::<usize>()) / (spans.len() + 1);
        let mut resp = Vec::with_capacity(l);
        let mut where_ = Vec::new();
        for s in &spans {
            resp.extend((0..fill).map(|_| zipf.sample(&mut rng)));
            where_.push((resp.len(), resp.len() + s.len()));
            resp.extend(s);
        }
        while resp.len() < l {
            resp.push(zipf.sample(&mut rng));
        }
        word_start.push(resp.iter().map(|&t| starts_word(t)).collect());
        responses.push(resp);
        planted.push(where_);
    }
    Ok(Workload { rows, responses, word_start, planted })
}

/// The same tokens in infini-gram's layout (version 4, u16): tokenized.0,
/// offset.0 and the word-start token ids.
fn write_peer_corpus(w: &Workload, vocab: u32, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut ds = BufWriter::new(File::create(dir.join("tokenized.0"))?);
    let mut od = BufWriter::new(File::create(dir.join("offset.0"))?);
    let mut at = 0u64;
    for r in &w.rows {
        od.write_all(&at.to_le_bytes())?;
        ds.write_all(&[0xFF, 0xFF])?;
        for &t in &r.tokens {
            ds.write_all(&(t as u16).to_le_bytes())?;
        }
        at += 2 + 2 * r.tokens.len() as u64;
    }
    ds.flush()?;
    od.flush()?;
    let mut bow = BufWriter::new(File::create(dir.join("bow_ids.txt"))?);
    for t in (0..vocab).filter(|&t| starts_word(t)) {
        writeln!(bow, "{t}")?;
    }
    bow.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The peer

/// A running `attribution_peer.py --serve`.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Peer {
    fn start(setup: &PeerSetup, log: &Path) -> Result<Peer> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(&setup.python)
            .arg(&setup.script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .context("starting the infini-gram peer")?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Peer { child, stdin, stdout, log: log.to_path_buf() })
    }

    fn call(&mut self, cmd: &Value) -> Result<Value> {
        let what = cmd["cmd"].as_str().unwrap_or("?").to_string();
        let fail = |log: &Path, e: String| {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            anyhow!(
                "infini-gram peer, {what}: {e}\n  last lines of {}:\n    {}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
            )
        };
        writeln!(self.stdin, "{cmd}").and_then(|_| self.stdin.flush()).map_err(|e| fail(&self.log, e.to_string()))?;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).map_err(|e| fail(&self.log, e.to_string()))?;
        if n == 0 {
            return Err(fail(&self.log, "exited".into()));
        }
        let v: Value = serde_json::from_str(line.trim()).map_err(|e| fail(&self.log, format!("bad JSON: {e}")))?;
        if let Some(e) = v.get("error") {
            return Err(fail(&self.log, e.to_string()));
        }
        Ok(v)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        if self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if self.child.try_wait().ok().flatten().is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The suite

fn fmt_ms(s: Option<f64>) -> String {
    match s {
        Some(s) if s < 0.01 => format!("{:.2} ms", s * 1e3),
        Some(s) => format!("{:.1} ms", s * 1e3),
        None => "n/a".into(),
    }
}

fn fmt_rate(tokens: u64, s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{:.2} s ({:.2} M tokens/s)", s, tokens as f64 / s / 1e6))
}

/// ours/peer with enough digits for ratios far below 1, and the inverse.
fn fmt_small_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r > 0.0 && r < 0.1 => format!("{r:.4}× (infini-gram/ours {:.0}×)", 1.0 / r),
        Some(r) if r > 0.0 && r < 1.0 => format!("{r:.2}× (infini-gram/ours {:.1}×)", 1.0 / r),
        r => fmt_ratio(r),
    }
}

fn pct(xs: &[f64], p: f64) -> Option<f64> {
    (!xs.is_empty()).then(|| percentile(xs, p))
}

fn med(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| median(xs))
}

/// Spans (start, end) of a response that cover at least `min_len` tokens of a planted span.
fn planted_found(spans: &[(usize, usize)], planted: &[(usize, usize)], min_len: usize) -> usize {
    planted
        .iter()
        .filter(|&&(a, b)| spans.iter().any(|&(s, e)| e.min(b).saturating_sub(s.max(a)) >= min_len.min(b - a)))
        .count()
}

/// Run `bench attribution`.
pub fn run_attribution(o: &AttributionOpts) -> Result<()> {
    let sizes = parse_tokens(&o.tokens)?;
    let machine = Machine::detect();
    let (_tmp, dir) = crate::peer::work_dir(o.dir.as_deref(), "bench-attribution-")?;

    let setup = if o.no_peer { None } else { prepare_peer(o) };
    let peer_name = setup
        .as_ref()
        .map(|s| format!("infini-gram {}", s.versions["infini-gram"].as_str().unwrap_or("?")))
        .unwrap_or_else(|| "infini-gram (not run)".into());
    println!("bench attribution: ours (attribution crate) vs {peer_name}");
    println!("machine: {}", machine.describe());
    let mut results = Vec::new();
    for &n in &sizes {
        results.push(run_size(o, n, &dir, setup.as_ref(), &machine)?);
    }
    if let Some(path) = &o.json_out {
        write_json(
            path,
            &json!({
                "suite": "attribution",
                "date": today(),
                "machine": machine.to_json(),
                "peer": setup.as_ref().map(|s| s.versions.clone()),
                "options": {
                    "responses": o.responses, "responseLen": o.response_len, "planted": o.planted,
                    "rounds": o.rounds, "buildRounds": o.build_rounds, "vocab": o.vocab, "zipf": o.zipf,
                    "minLen": o.min_len, "maxFrequency": o.max_frequency, "seed": o.seed,
                },
                "sizes": results,
            }),
        )?;
    }
    Ok(())
}

/// One corpus size: the workload, both builds, both traces, the report lines;
/// returns the size's part of the JSON.
fn run_size(o: &AttributionOpts, n: u64, dir: &Path, setup: Option<&PeerSetup>, machine: &Machine) -> Result<Value> {
    let t = Instant::now();
    let w = workload(o, n)?;
    let sdir = dir.join(format!("n{n}"));
    let peer_dir = sdir.join("infini-gram");
    std::fs::create_dir_all(&sdir)?;
    let mut peer = match setup {
        Some(s) => {
            write_peer_corpus(&w, o.vocab, &peer_dir)?;
            Some(Peer::start(s, &sdir.join("peer.log"))?)
        }
        None => None,
    };
    println!(
        "\n{n} tokens: {} documents of 50-500 tokens (Zipf {} over {} ids), {} responses of {} tokens with {} planted spans each (prepared in {:.1} s)",
        w.rows.len(),
        o.zipf,
        o.vocab,
        w.responses.len(),
        o.response_len,
        w.planted.first().map_or(0, Vec::len),
        t.elapsed().as_secs_f64()
    );
    let b = build_rounds(o, n, &w, &sdir, peer.as_mut(), machine)?;
    b.index.prefetch();
    if let Some(p) = peer.as_mut() {
        p.call(&json!({"cmd": "load", "dir": peer_dir, "loadToRam": !o.peer_mmap}))?;
    }
    let tr = trace_rounds(o, &b.index, &w, peer.as_mut())?;
    drop(peer);
    Ok(report_size(o, n, &w, &b, &tr))
}

/// Both sides' index builds of one size, and our last index.
struct Builds {
    ours_s: Vec<f64>,
    peer_s: Vec<f64>,
    peer_bytes: Option<u64>,
    index: SpanIndex,
}

/// `--build-rounds` builds of our index and the peer's, alternating.
fn build_rounds(
    o: &AttributionOpts,
    n: u64,
    w: &Workload,
    sdir: &Path,
    mut peer: Option<&mut Peer>,
    machine: &Machine,
) -> Result<Builds> {
    let key = IndexKey { tokenizer: B256::repeat_byte(0xB0), datanet: 1, version: 1 };
    let path = sdir.join("ours.olsa");
    let peer_dir = sdir.join("infini-gram");
    let mem_gib = machine.mem_bytes.map_or(8, |b| (b / (1 << 30) / 2).clamp(1, 64));
    let (mut ours_s, mut peer_s, mut peer_bytes) = (Vec::new(), Vec::new(), None);
    let mut index = None;
    for round in 0..o.build_rounds {
        drop(index.take());
        let t = Instant::now();
        let ix = SpanIndex::build(key, &w.rows, o.vocab, 0, &path, &mut |_, _| {})
            .map_err(|e| anyhow!("building our index: {e}"))?;
        ours_s.push(t.elapsed().as_secs_f64());
        index = Some(ix);
        if let Some(p) = peer.as_deref_mut() {
            // infini-gram's parallel make-part overlaps its parts by 100 kB, which
            // breaks on tiny corpora: one job below 10^6 tokens.
            let cpus = if n >= 1_000_000 { machine.cores } else { 1 };
            let r = p.call(&json!({"cmd": "build", "dir": peer_dir, "cpus": cpus, "memGib": mem_gib}))?;
            peer_s.push(r["buildS"].as_f64().unwrap_or(f64::NAN));
            peer_bytes = r["bytes"].as_u64();
        }
        eprintln!(
            "  build round {}: ours {:.2} s, peer {}",
            round + 1,
            ours_s[ours_s.len() - 1],
            peer_s.last().map_or("n/a".into(), |s| format!("{s:.2} s"))
        );
    }
    let index = index.expect("at least one build round");
    Ok(Builds { ours_s, peer_s, peer_bytes, index })
}

/// Trace times of both sides, and what the first round found.
#[derive(Default)]
struct Traces {
    ours_s: Vec<f64>,
    ours_max_s: Vec<f64>,
    peer_s: Vec<f64>,
    /// Responses whose maximal spans are the same on both sides.
    identical: usize,
    ours_found: usize,
    peer_found: usize,
    /// Spans our trace kept.
    spans_total: usize,
}

/// `--rounds` rounds of tracing every response on both sides. The maximal
/// spans must agree, and the planted spans be found.
fn trace_rounds(o: &AttributionOpts, ix: &SpanIndex, w: &Workload, mut peer: Option<&mut Peer>) -> Result<Traces> {
    let params = TraceParams { min_len: o.min_len, max_frequency: o.max_frequency, ..TraceParams::default() };
    let peer_cmd = json!({"cmd": "trace", "responses": w.responses, "minLen": o.min_len, "maxCnt": o.max_frequency});
    let mut tr = Traces::default();
    let mut ours_max: Vec<Vec<(u32, u32, u64)>> = Vec::new();
    for round in 0..o.rounds {
        for (k, (resp, ws)) in w.responses.iter().zip(&w.word_start).enumerate() {
            let t = Instant::now();
            let traced = trace(ix, resp, ws, &params).map_err(|e| anyhow!("tracing: {e}"))?;
            tr.ours_s.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let max = maximal_spans(ix, resp, ws, o.min_len, o.max_frequency).map_err(|e| anyhow!("{e}"))?;
            tr.ours_max_s.push(t.elapsed().as_secs_f64());
            if round == 0 {
                let kept: Vec<(usize, usize)> =
                    traced.spans.iter().map(|s| (s.token_start as usize, s.token_end as usize)).collect();
                tr.ours_found += planted_found(&kept, &w.planted[k], o.min_len as usize);
                tr.spans_total += traced.spans.len();
                let sum: u64 = traced.credits.iter().map(|c| c.1 as u64).sum();
                if !traced.credits.is_empty() && sum != 1_000_000 {
                    bail!("our credits sum to {sum} ppm");
                }
                ours_max.push(max.into_iter().map(|s| (s.token_start, s.token_end, s.count)).collect());
            }
        }
        if let Some(p) = peer.as_deref_mut() {
            let r = p.call(&peer_cmd)?;
            let times = r["times"].as_array().ok_or_else(|| anyhow!("peer: no times"))?;
            tr.peer_s.extend(times.iter().filter_map(Value::as_f64));
            if round == 0 {
                let spans = r["spans"].as_array().ok_or_else(|| anyhow!("peer: no spans"))?;
                compare_peer_spans(o, w, spans, &ours_max, &mut tr);
            }
        }
    }
    Ok(tr)
}

/// Compare the peer's maximal spans of the first round with ours, and count the planted spans it found.
fn compare_peer_spans(
    o: &AttributionOpts,
    w: &Workload,
    spans: &[Value],
    ours_max: &[Vec<(u32, u32, u64)>],
    tr: &mut Traces,
) {
    for (k, ps) in spans.iter().enumerate() {
        let theirs: Vec<(u32, u32, u64)> = ps
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let s = s.as_array()?;
                Some((s[0].as_u64()? as u32, s[1].as_u64()? as u32, s[2].as_u64()?))
            })
            .collect();
        if ours_max.get(k) == Some(&theirs) {
            tr.identical += 1;
        } else {
            eprintln!("  response {k}: maximal spans differ: ours {:?}, infini-gram {:?}", ours_max.get(k), theirs);
        }
        let se: Vec<(usize, usize)> = theirs.iter().map(|s| (s.0 as usize, s.1 as usize)).collect();
        tr.peer_found += planted_found(&se, &w.planted[k], o.min_len as usize);
    }
}

/// Print one size's figures and return them as JSON.
fn report_size(o: &AttributionOpts, n: u64, w: &Workload, b: &Builds, tr: &Traces) -> Value {
    let sizes_ours = b.index.sizes();
    let planted_total: usize = w.planted.iter().map(Vec::len).sum();
    let ob = med(&b.ours_s);
    let pb = med(&b.peer_s);
    let (o50, o99) = (pct(&tr.ours_s, 50.0), pct(&tr.ours_s, 99.0));
    let (p50, p99) = (pct(&tr.peer_s, 50.0), pct(&tr.peer_s, 99.0));
    let m50 = pct(&tr.ours_max_s, 50.0);
    let peer_bpt = b.peer_bytes.map(|b| b as f64 / n as f64);
    println!(
        "  build            ours {}   infini-gram {}   time ratio {}",
        fmt_rate(n, ob),
        fmt_rate(n, pb),
        fmt_ratio(ratio(ob, pb))
    );
    println!(
        "  bytes/token      ours {:.3} (tokens+SA {:.3}, row map+separators {:.4}, whole file {:.3}; {}-byte tokens, {}-byte SA)   infini-gram {}",
        sizes_ours.tokens_and_sa_per_token() + sizes_ours.row_map_per_token(),
        sizes_ours.tokens_and_sa_per_token(),
        sizes_ours.row_map_per_token(),
        sizes_ours.file_per_token(),
        sizes_ours.token_width,
        sizes_ours.sa_width,
        peer_bpt.map_or("n/a".into(), |b| format!("{b:.3} (tokenized + table + offset)")),
    );
    println!(
        "  trace {} tokens ours p50 {} p99 {} (maximal spans alone p50 {})   infini-gram attribute() p50 {} p99 {}   ratio p50 {} p99 {}",
        o.response_len,
        fmt_ms(o50),
        fmt_ms(o99),
        fmt_ms(m50),
        fmt_ms(p50),
        fmt_ms(p99),
        fmt_small_ratio(ratio(o50, p50)),
        fmt_small_ratio(ratio(o99, p99)),
    );
    let (ours_found, spans_total, peer_found, identical) = (tr.ours_found, tr.spans_total, tr.peer_found, tr.identical);
    let peer_ran = !tr.peer_s.is_empty();
    println!(
        "  planted spans    ours {ours_found}/{planted_total} (in {spans_total} kept spans)   infini-gram {}   maximal spans identical in {}",
        if peer_ran { format!("{peer_found}/{planted_total}") } else { "n/a".into() },
        if peer_ran { format!("{identical}/{} responses", w.responses.len()) } else { "n/a".into() },
    );
    if peer_ran && identical != w.responses.len() {
        eprintln!(
            "  WARNING: our maximal spans differ from infini-gram's in {} responses",
            w.responses.len() - identical
        );
    }
    json!({
        "tokens": n,
        "documents": w.rows.len(),
        "ours": {
            "buildS": b.ours_s,
            "buildTokensPerS": ob.map(|s| n as f64 / s),
            "bytesPerToken": {
                "tokensAndSa": sizes_ours.tokens_and_sa_per_token(),
                "rowMapAndSeparators": sizes_ours.row_map_per_token(),
                "file": sizes_ours.file_per_token(),
            },
            "traceP50S": o50, "traceP99S": o99, "maximalSpansP50S": m50,
            "plantedFound": ours_found, "keptSpans": spans_total,
        },
        "peer": {
            "buildS": b.peer_s,
            "buildTokensPerS": pb.map(|s| n as f64 / s),
            "bytesPerToken": peer_bpt,
            "attributeP50S": p50, "attributeP99S": p99,
            "plantedFound": peer_found,
            "maximalSpansIdentical": identical,
            "indexInRam": !o.peer_mmap,
        },
        "plantedTotal": planted_total,
        "responses": w.responses.len(),
        "ratios": { "build": ratio(ob, pb), "traceP50": ratio(o50, p50), "traceP99": ratio(o99, p99) },
    })
}

/// The Python peer of this benchmark.
fn prepare_peer(o: &AttributionOpts) -> Option<PeerSetup> {
    crate::peer::prepare_python_peer("peers/attribution_peer.py", &["infini-gram"], o.python.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_tokens("1M, 10M,500k").unwrap(), vec![1_000_000, 10_000_000, 500_000]);
        assert!(parse_tokens("").is_err());
        assert!(parse_tokens("12").is_err());
        assert!(parse_tokens("x").is_err());
    }

    #[test]
    fn workload_is_seeded_and_planted() {
        let o = AttributionOpts { responses: 3, ..AttributionOpts::default() };
        let a = workload(&o, 50_000).unwrap();
        let b = workload(&o, 50_000).unwrap();
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.responses, b.responses);
        assert_eq!(a.rows.iter().map(|r| r.tokens.len() as u64).sum::<u64>(), 50_000);
        assert!(a.rows.iter().all(|r| r.tokens.len() <= 500));
        for (resp, planted) in a.responses.iter().zip(&a.planted) {
            assert_eq!(resp.len(), 500);
            assert_eq!(planted.len(), 5);
            for &(s, e) in planted {
                let span = &resp[s..e];
                assert!(a.rows.iter().any(|r| r.tokens.windows(span.len()).any(|w| w == span)));
            }
        }
    }

    #[test]
    fn ours_alone_runs_and_finds_the_planted_spans() {
        let dir = tempfile::tempdir().unwrap();
        let o = AttributionOpts {
            tokens: "20k".into(),
            responses: 2,
            rounds: 1,
            build_rounds: 1,
            no_peer: true,
            dir: Some(dir.path().to_path_buf()),
            json_out: Some(dir.path().join("out.json")),
            ..AttributionOpts::default()
        };
        run_attribution(&o).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
        let s = &v["sizes"][0];
        assert_eq!(s["ours"]["plantedFound"], s["plantedTotal"]);
        assert!(s["ours"]["bytesPerToken"]["tokensAndSa"].as_f64().unwrap() <= 6.0);
    }
}
