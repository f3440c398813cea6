//! `bench attribution`: the span index and span tracing of the `attribution`
//! crate against infini-gram (PyPI `infini-gram`, the engine OLMoTrace is built
//! on) on the same corpus and the same responses.
//!
//! For each size in `--tokens` (default 10^6 and 10^7; 10^8 and 10^9 by hand) the
//! bench generates, from `--seed`, before any clock starts:
//! - a corpus of documents of 50–500 tokens drawn from a Zipfian distribution
//!   (exponent `--zipf`, default 1.0) over `--vocab` (50,000) token ids, ten
//!   documents per contribution, exactly N tokens in all, streamed to disk in
//!   infini-gram's layout (`tokenized.0`, `offset.0`), which both sides build from;
//! - `--responses` (20) responses of `--response-len` (500) tokens: Zipfian filler
//!   around `--planted` (5) spans of 12–40 tokens, each also written over a random
//!   place in 1–3 documents (so it occurs in the corpus);
//! - word starts from the token id (id mod 5 ≠ 0 starts a word, as a GPT-2-style
//!   "Ġ" token would), the same rule for both sides (infini-gram's `bow_ids`).
//!
//! Then, per size: `--build-rounds` builds alternating ours (the corpus file read
//! document by document into an [`attribution::IndexBuilder`], finished with
//! `--build-memory-mib` of sort memory, to the renamed file; rayon on every core;
//! the process's peak resident memory over the build from `VmHWM`, reset before it)
//! and infini-gram's (`infini_gram.indexing.build_sa` over the same tokens,
//! `--cpus` = cores; only at sizes up to `--peer-up-to`); then `--rounds` rounds of
//! tracing every response, ours ([`attribution::trace`]: maximal spans, ranking,
//! rows and credits, default parameters but `--max-frequency`) then infini-gram's
//! (`InfiniGramEngine.attribute(ids, [], min_len, max_cnt, enforce_bow=True)`, the
//! maximal-span query, index loaded in RAM unless `--peer-mmap`). Every call is timed
//! on its own; p50 and p99 are over all calls of all rounds. Our maximal spans
//! ([`attribution::maximal_spans`], the same definition) must equal infini-gram's
//! (start, end, count) for every response, and every planted span must be found.
//! Last, our index cold: its file fsynced and dropped from the page cache
//! (`posix_fadvise(DONTNEED)`, what stays resident checked with `mincore`), then
//! opened and the first response traced, then traced again.
//!
//! The peer runs as `bench/peers/attribution_peer.py --serve` under the git-ignored
//! `bench/.venv` (created with `pip install infini-gram` when missing); its licence
//! is unclear, so we measure against it and never depend on it.

use crate::peer::PythonPeer as PeerSetup;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use attribution::{IndexBuilder, IndexKey, SpanIndex, TraceParams, maximal_spans, trace};
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
    /// Corpus sizes in tokens, comma-separated (k/M/G suffixes): 100M and 1G are
    /// manual runs (1G: 2 GB of corpus and 6 GB of our index on disk).
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
    /// Working memory of our index build's suffix sort, in MiB: past it the sort
    /// runs out of core (`attribution::IndexBuilder::finish`).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub build_memory_mib: u64,
    /// Build and query infini-gram only at sizes up to this many tokens (k/M/G);
    /// default: every size.
    #[arg(long)]
    pub peer_up_to: Option<String>,
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
            build_memory_mib: 1024,
            peer_up_to: None,
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

/// The corpus (on disk) and the responses of one size.
struct Workload {
    /// The documents in infini-gram's layout: each a 0xFFFF separator and its u16 tokens.
    corpus: PathBuf,
    /// Tokens of each document, in order.
    lens: Vec<u32>,
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

/// The row id of document `k`: ten documents per contribution.
fn row_id(k: usize) -> RowId {
    RowId { contribution: k as u64 / 10 + 1, index: (k % 10) as u32 }
}

/// Generate one size's corpus into `dir` in infini-gram's layout (version 4,
/// u16): `tokenized.0`, `offset.0` and the word-start token ids, streamed, so that
/// 10^9 tokens take no memory beyond 4 bytes per document; then the responses,
/// whose planted spans are written over places in the corpus file.
fn workload(o: &AttributionOpts, n_tokens: u64, dir: &Path) -> Result<Workload> {
    if o.vocab > u16::MAX as u32 {
        bail!("--vocab {} does not fit the u16 corpus layout", o.vocab);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = Rng::new(o.seed ^ n_tokens.rotate_left(17));
    let zipf = Zipf::new(o.vocab, o.zipf);
    let corpus = dir.join("tokenized.0");
    let mut ds = BufWriter::with_capacity(1 << 20, File::create(&corpus)?);
    let mut od = BufWriter::new(File::create(dir.join("offset.0"))?);
    let (mut lens, mut offsets): (Vec<u32>, Vec<u64>) = (Vec::new(), Vec::new());
    let (mut have, mut at) = (0u64, 0u64);
    let mut buf: Vec<u8> = Vec::new();
    while have < n_tokens {
        let len = (50 + rng.below(451)).min(n_tokens - have) as usize;
        buf.clear();
        buf.extend([0xFF, 0xFF]);
        for _ in 0..len {
            buf.extend((zipf.sample(&mut rng) as u16).to_le_bytes());
        }
        ds.write_all(&buf)?;
        od.write_all(&at.to_le_bytes())?;
        offsets.push(at);
        lens.push(len as u32);
        at += buf.len() as u64;
        have += len as u64;
    }
    od.flush()?;
    let file = ds.into_inner().map_err(|e| anyhow!("writing {}: {}", corpus.display(), e.error()))?;
    let l = o.response_len as usize;
    let planted_n = (o.planted as usize).min(l / 50);
    // Each planted span goes into up to 3 documents of its own.
    if lens.len() < 2 * 3 * planted_n * o.responses as usize {
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
                    let d = rng.below(lens.len() as u64) as usize;
                    if lens[d] as usize >= s.len() && used.insert(d) {
                        break d;
                    }
                };
                let at = rng.below((lens[d] as usize - s.len() + 1) as u64);
                let bytes: Vec<u8> = s.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect();
                std::os::unix::fs::FileExt::write_all_at(&file, &bytes, offsets[d] + 2 + 2 * at)?;
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
    drop(file);
    let mut bow = BufWriter::new(File::create(dir.join("bow_ids.txt"))?);
    for t in (0..o.vocab).filter(|&t| starts_word(t)) {
        writeln!(bow, "{t}")?;
    }
    bow.flush()?;
    Ok(Workload { corpus, lens, responses, word_start, planted })
}

/// The documents of the corpus file in order, each with its row id.
fn for_each_doc(w: &Workload, mut f: impl FnMut(usize, &[u32]) -> Result<()>) -> Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(&w.corpus)?);
    let (mut bytes, mut toks): (Vec<u8>, Vec<u32>) = (Vec::new(), Vec::new());
    for (k, &len) in w.lens.iter().enumerate() {
        bytes.resize(2 + 2 * len as usize, 0);
        r.read_exact(&mut bytes).with_context(|| format!("reading {}", w.corpus.display()))?;
        toks.clear();
        toks.extend(bytes[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32));
        f(k, &toks)?;
    }
    Ok(())
}

/// Our index of the corpus: its rows streamed from the corpus file through an
/// `IndexBuilder` into `path`.
fn build_ours(o: &AttributionOpts, w: &Workload, path: &Path) -> Result<SpanIndex> {
    let key = IndexKey { tokenizer: B256::repeat_byte(0xB0), datanet: 1, version: 1 };
    let mut b = IndexBuilder::new(key, o.vocab, path).map_err(|e| anyhow!("building our index: {e}"))?;
    for_each_doc(w, |k, toks| {
        let id = row_id(k);
        b.push(id, contributor_of(id.contribution), false, toks).map_err(|e| anyhow!("building our index: {e}"))
    })?;
    b.finish(o.build_memory_mib << 20, &mut |_, _| {}).map_err(|e| anyhow!("building our index: {e}"))
}

/// Forget this process's peak resident memory (`VmHWM` restarts from the current
/// resident set); false when the kernel refuses.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Write `path`'s dirty pages to disk and ask the kernel to drop the file from
/// its page cache; returns the fraction of its pages still resident after (by
/// `mincore`), None when that cannot be told.
fn evict(path: &Path) -> Result<Option<f64>> {
    use std::os::fd::AsRawFd;
    let f = File::open(path)?;
    f.sync_all()?;
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!("posix_fadvise(DONTNEED) on {}: error {rc}", path.display());
    }
    Ok(resident(&f))
}

/// Read `path` through so that its pages are in the page cache (what a warm
/// index is); returns the fraction resident after.
fn warm(path: &Path) -> Result<Option<f64>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 8 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(resident(&f))
}

/// The fraction of `f`'s pages in the page cache (`mincore` over a mapping of
/// it), None when that cannot be told.
fn resident(f: &File) -> Option<f64> {
    use std::os::fd::AsRawFd;
    let len = f.metadata().ok()?.len() as usize;
    if len == 0 {
        return None;
    }
    // SAFETY: a read-only shared mapping of the whole file, only passed to
    // mincore and unmapped here.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0);
        if addr == libc::MAP_FAILED {
            return None;
        }
        let page = libc::sysconf(libc::_SC_PAGESIZE).max(1) as usize;
        let mut vec = vec![0u8; len.div_ceil(page)];
        let ok = libc::mincore(addr, len, vec.as_mut_ptr()) == 0;
        libc::munmap(addr, len);
        ok.then(|| vec.iter().filter(|&&b| b & 1 != 0).count() as f64 / vec.len() as f64)
    }
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
    let sdir = dir.join(format!("n{n}"));
    let peer_dir = sdir.join("infini-gram");
    let w = workload(o, n, &peer_dir)?;
    let peer_up_to = match &o.peer_up_to {
        Some(s) => parse_tokens(s)?.into_iter().max().unwrap_or(u64::MAX),
        None => u64::MAX,
    };
    let mut peer = match setup {
        Some(s) if n <= peer_up_to => Some(Peer::start(s, &sdir.join("peer.log"))?),
        _ => None,
    };
    println!(
        "\n{n} tokens: {} documents of 50-500 tokens (Zipf {} over {} ids), {} responses of {} tokens with {} planted spans each (prepared in {:.1} s)",
        w.lens.len(),
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
    let Builds { ours_s, ours_peak_rss, peer_s, peer_bytes, index } = b;
    let sizes = index.sizes();
    let path = index.path().to_path_buf();
    drop(index);
    let cold = cold_query(o, &path, &w)?;
    let b = BuildFigures { ours_s, ours_peak_rss, peer_s, peer_bytes, sizes };
    Ok(report_size(o, n, &w, &b, &tr, &cold))
}

/// Both sides' index builds of one size, and our last index.
struct Builds {
    ours_s: Vec<f64>,
    /// Our process's peak resident memory during each build (`VmHWM`, reset before it).
    ours_peak_rss: Vec<Option<u64>>,
    peer_s: Vec<f64>,
    peer_bytes: Option<u64>,
    index: SpanIndex,
}

/// What the report needs of the builds once our index is closed.
struct BuildFigures {
    ours_s: Vec<f64>,
    ours_peak_rss: Vec<Option<u64>>,
    peer_s: Vec<f64>,
    peer_bytes: Option<u64>,
    sizes: attribution::IndexSizes,
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
    let path = sdir.join("ours.olsa");
    let peer_dir = sdir.join("infini-gram");
    let mem_gib = machine.mem_bytes.map_or(8, |b| (b / (1 << 30) / 2).clamp(1, 64));
    let (mut ours_s, mut ours_peak_rss, mut peer_s, mut peer_bytes) = (Vec::new(), Vec::new(), Vec::new(), None);
    let mut index = None;
    for round in 0..o.build_rounds {
        drop(index.take());
        let reset = reset_peak_rss();
        let t = Instant::now();
        let ix = build_ours(o, w, &path)?;
        ours_s.push(t.elapsed().as_secs_f64());
        ours_peak_rss.push(if reset { crate::train::proc_status_bytes("VmHWM") } else { None });
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
            "  build round {}: ours {:.2} s (peak RSS {}), peer {}",
            round + 1,
            ours_s[ours_s.len() - 1],
            fmt_gib(ours_peak_rss[ours_peak_rss.len() - 1]),
            peer_s.last().map_or("n/a".into(), |s| format!("{s:.2} s"))
        );
    }
    let index = index.expect("at least one build round");
    Ok(Builds { ours_s, ours_peak_rss, peer_s, peer_bytes, index })
}

fn fmt_gib(b: Option<u64>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64))
}

/// The first query on an index whose pages were evicted from the page cache.
struct Cold {
    /// Fraction of the file's pages still resident after the eviction.
    resident_after_evict: Option<f64>,
    open_s: f64,
    first_trace_s: f64,
    second_trace_s: f64,
}

/// Evict our index file's pages, open it and trace the first response, then once more warm.
fn cold_query(o: &AttributionOpts, path: &Path, w: &Workload) -> Result<Cold> {
    let params = TraceParams { min_len: o.min_len, max_frequency: o.max_frequency, ..TraceParams::default() };
    let resident_after_evict = evict(path)?;
    let t = Instant::now();
    let ix = SpanIndex::open(path).map_err(|e| anyhow!("{e}"))?;
    let open_s = t.elapsed().as_secs_f64();
    let mut times = [0.0; 2];
    for t_out in times.iter_mut() {
        let t = Instant::now();
        trace(&ix, &w.responses[0], &w.word_start[0], &params).map_err(|e| anyhow!("tracing: {e}"))?;
        *t_out = t.elapsed().as_secs_f64();
    }
    Ok(Cold { resident_after_evict, open_s, first_trace_s: times[0], second_trace_s: times[1] })
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
    /// The smallest fraction of our index file resident at the start of a round.
    ours_resident: f64,
}

/// `--rounds` rounds of tracing every response on both sides. The maximal
/// spans must agree, and the planted spans be found.
fn trace_rounds(o: &AttributionOpts, ix: &SpanIndex, w: &Workload, mut peer: Option<&mut Peer>) -> Result<Traces> {
    let params = TraceParams { min_len: o.min_len, max_frequency: o.max_frequency, ..TraceParams::default() };
    let peer_cmd = json!({"cmd": "trace", "responses": w.responses, "minLen": o.min_len, "maxCnt": o.max_frequency});
    let mut tr = Traces { ours_resident: 1.0, ..Traces::default() };
    let mut ours_max: Vec<Vec<(u32, u32, u64)>> = Vec::new();
    for round in 0..o.rounds {
        // Warm: the peer's index in RAM competes for the page cache.
        if let Some(f) = warm(ix.path())? {
            tr.ours_resident = tr.ours_resident.min(f);
        }
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
fn report_size(o: &AttributionOpts, n: u64, w: &Workload, b: &BuildFigures, tr: &Traces, cold: &Cold) -> Value {
    let sizes_ours = b.sizes;
    let planted_total: usize = w.planted.iter().map(Vec::len).sum();
    let ob = med(&b.ours_s);
    let pb = med(&b.peer_s);
    let (o50, o99) = (pct(&tr.ours_s, 50.0), pct(&tr.ours_s, 99.0));
    let (p50, p99) = (pct(&tr.peer_s, 50.0), pct(&tr.peer_s, 99.0));
    let m50 = pct(&tr.ours_max_s, 50.0);
    let peer_bpt = b.peer_bytes.map(|b| b as f64 / n as f64);
    let peak = b.ours_peak_rss.iter().flatten().max().copied();
    println!(
        "  build            ours {} (peak RSS {}, sort memory {} MiB)   infini-gram {}   time ratio {}",
        fmt_rate(n, ob),
        fmt_gib(peak),
        o.build_memory_mib,
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
        "  trace {} tokens ours p50 {} p99 {} (maximal spans alone p50 {}; index {:.1}% resident)   infini-gram attribute() p50 {} p99 {}   ratio p50 {} p99 {}",
        o.response_len,
        fmt_ms(o50),
        fmt_ms(o99),
        fmt_ms(m50),
        100.0 * tr.ours_resident,
        fmt_ms(p50),
        fmt_ms(p99),
        fmt_small_ratio(ratio(o50, p50)),
        fmt_small_ratio(ratio(o99, p99)),
    );
    println!(
        "  cold index       pages evicted ({} still resident): open {}, first trace {}, then {}",
        cold.resident_after_evict.map_or("n/a".into(), |f| format!("{:.1}%", 100.0 * f)),
        fmt_ms(Some(cold.open_s)),
        fmt_ms(Some(cold.first_trace_s)),
        fmt_ms(Some(cold.second_trace_s)),
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
        "documents": w.lens.len(),
        "ours": {
            "buildS": b.ours_s,
            "buildTokensPerS": ob.map(|s| n as f64 / s),
            "buildPeakRssBytes": b.ours_peak_rss,
            "buildMemoryMib": o.build_memory_mib,
            "cold": {
                "residentAfterEvict": cold.resident_after_evict,
                "openS": cold.open_s, "firstTraceS": cold.first_trace_s, "secondTraceS": cold.second_trace_s,
            },
            "bytesPerToken": {
                "tokensAndSa": sizes_ours.tokens_and_sa_per_token(),
                "rowMapAndSeparators": sizes_ours.row_map_per_token(),
                "file": sizes_ours.file_per_token(),
            },
            "traceP50S": o50, "traceP99S": o99, "maximalSpansP50S": m50, "indexResident": tr.ours_resident,
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
        assert_eq!(parse_tokens("1G").unwrap(), vec![1_000_000_000]);
        assert!(parse_tokens("").is_err());
        assert!(parse_tokens("12").is_err());
        assert!(parse_tokens("x").is_err());
    }

    #[test]
    fn workload_is_seeded_and_planted() {
        let o = AttributionOpts { responses: 3, ..AttributionOpts::default() };
        let dir = tempfile::tempdir().unwrap();
        let a = workload(&o, 50_000, &dir.path().join("a")).unwrap();
        let b = workload(&o, 50_000, &dir.path().join("b")).unwrap();
        assert_eq!(std::fs::read(&a.corpus).unwrap(), std::fs::read(&b.corpus).unwrap());
        assert_eq!(a.responses, b.responses);
        assert_eq!(a.lens.iter().map(|&l| l as u64).sum::<u64>(), 50_000);
        assert!(a.lens.iter().all(|&l| l <= 500));
        let mut docs: Vec<Vec<u32>> = Vec::new();
        for_each_doc(&a, |k, toks| {
            assert_eq!(k, docs.len());
            docs.push(toks.to_vec());
            Ok(())
        })
        .unwrap();
        // infini-gram's layout: a 0xFFFF separator before each document, offsets to it.
        let bytes = std::fs::read(&a.corpus).unwrap();
        assert_eq!(bytes.len() as u64, 2 * (50_000 + docs.len() as u64));
        let offsets = std::fs::read(dir.path().join("a/offset.0")).unwrap();
        assert_eq!(offsets.len(), 8 * docs.len());
        let last = u64::from_le_bytes(offsets[offsets.len() - 8..].try_into().unwrap()) as usize;
        assert_eq!(&bytes[last..last + 2], &[0xFF, 0xFF]);
        for (resp, planted) in a.responses.iter().zip(&a.planted) {
            assert_eq!(resp.len(), 500);
            assert_eq!(planted.len(), 5);
            for &(s, e) in planted {
                let span = &resp[s..e];
                assert!(docs.iter().any(|d| d.windows(span.len()).any(|w| w == span)));
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
        assert!(s["ours"]["cold"]["firstTraceS"].as_f64().unwrap() > 0.0);
        // The index on disk is the one SpanIndex::build makes of the same rows.
        let o2 = AttributionOpts { responses: 2, ..AttributionOpts::default() };
        let w = workload(&o2, 20_000, &dir.path().join("again")).unwrap();
        let mut rows = Vec::new();
        for_each_doc(&w, |k, toks| {
            let id = row_id(k);
            rows.push(attribution::IndexRow {
                id,
                contributor: contributor_of(id.contribution),
                tombstoned: false,
                tokens: toks.to_vec(),
            });
            Ok(())
        })
        .unwrap();
        let key = IndexKey { tokenizer: B256::repeat_byte(0xB0), datanet: 1, version: 1 };
        let built = SpanIndex::build(key, &rows, o2.vocab, 0, &dir.path().join("built"), &mut |_, _| {}).unwrap();
        assert_eq!(std::fs::read(built.path()).unwrap(), std::fs::read(dir.path().join("n20000/ours.olsa")).unwrap());
    }
}
