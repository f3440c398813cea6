//! `bench ingest`: the throughput of Datanet ingest — [`ingest::parse`] + [`ingest::analyze`]
//! (normalisation, quality scoring, exact and MinHash near-duplicate detection) — as the Datanet's
//! [`ingest::DedupIndex`] grows. There is no peer (see `/work/shared/BENCHMARKS.md`): figures are
//! MB/s and rows/s. The goal in the issue is ≥ 20 MB/s of text on 2 cores with dedup against
//! 10^6 rows (`--index-rows 1M`, a manual run).
//!
//! Input: the sample Datanets' files under `data/` (or `--files`) plus `--generated-mb` MB of
//! synthetic text (sentences of words drawn from a fixed English word list with a Zipf-like skew by a
//! seeded xorshift generator: no network, the same bytes on every machine for a given seed), cut into
//! files of at most 1 MiB that rotate through the formats (txt, markdown, JSON Lines text and
//! prompt/completion, CSV prompt/completion).
//!
//! Per index size (ascending; the index grows from one size to the next): insert distinct generated
//! rows (timed: rows/s), serialise the index ([`ingest::DedupIndex::to_bytes`], its length is the
//! memory proxy), then time `--rounds` passes of parse + analyze over every input file against the
//! index, once on 1 thread and once on `--threads` threads (files in parallel against the shared
//! index), alternating which goes first. Medians are reported, with the duplicates found: generated
//! rows are distinct from each other and from the index, so any near duplicate among them is a false
//! positive.
//!
//! `--near-dup-check` instead replays the sample Datanets as a sequence of contributions (files in
//! name order, each analysed against the rows approved before it) and checks the cases planted in
//! `data/planted.json`: the near duplicate and the exact copy must be flagged, and it reports the
//! rows flagged that were not planted (false positives) and the scores of the planted low-quality rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::ingest::{
    Analysis, DedupIndex, DupKind, FileKind, IngestConfig, MINHASH_VERSION, Row, RowRef, SCORER_VERSION, analyze,
    detect_kind, parse,
};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::machine::{Machine, today};
use crate::state::Rng;
use crate::stats::{count_list, median};

/// Largest generated file (the ingest crate refuses files over 5 MiB).
const GEN_FILE_BYTES: usize = 1 << 20;
/// Index rows generated and inserted per batch.
const INDEX_BATCH: u64 = 10_000;
/// Rows per contribution in the generated index.
const ROWS_PER_CONTRIBUTION: u64 = 100;
/// Mixed into the seed of the index rows so they differ from the corpus.
const INDEX_SALT: u64 = 0x1D3A_0000_0000_0001;
/// Marks the sample data directory.
const PLANTED_FILE: &str = "planted.json";

/// `openledger bench ingest`: parse + dedup + score throughput (MB/s, rows/s) against a Datanet
/// index of growing size; or, with `--near-dup-check`, the planted-case check on the sample Datanets.
#[derive(clap::Args, Debug, Clone)]
pub struct IngestOpts {
    /// Datanet index sizes in distinct rows, comma-separated; `k` and `M` suffixes allowed; 0 is an
    /// empty index. The goal size, 1M, is a manual run (about 1.4 GB of memory, 20 s to build the index).
    #[arg(long, default_value = "0,10000,100000")]
    pub index_rows: String,
    /// Input files (comma-separated or repeated; .txt, .md, .jsonl, .csv) instead of the sample
    /// Datanets' files under data/.
    #[arg(long, value_delimiter = ',', value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The sample Datanets directory. Default: data/ of the source tree, found from the current
    /// directory upwards, else next to the crate this was built from.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Megabytes (10^6 bytes) of generated text added to the input; 0 for none.
    #[arg(long, default_value_t = 20.0)]
    pub generated_mb: f64,
    /// Timed rounds per index size (medians are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Threads of the parallel passes (files analysed in parallel against the same index); 0: one
    /// per core. A 1-thread pass is always timed as well.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seed of the generated corpus and index rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Do not time anything: check that the cases planted in data/planted.json are flagged and
    /// report the near-duplicate false-positive rate on the other sample rows.
    #[arg(long)]
    pub near_dup_check: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Default for IngestOpts {
    fn default() -> Self {
        IngestOpts {
            index_rows: "0,10000,100000".into(),
            files: Vec::new(),
            data: None,
            generated_mb: 20.0,
            rounds: 3,
            threads: 0,
            seed: 1,
            near_dup_check: false,
            json_out: None,
        }
    }
}

/// "0, 10k,1M" → [0, 10000, 1000000] (zero allowed).
fn parse_counts(s: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (part, n) in count_list(s, "--index-rows")? {
        let n = n.with_context(|| format!("--index-rows: {part:?} is too large"))?;
        if n >= u64::from(u32::MAX) {
            bail!("--index-rows: {part:?} is over the index's limit of 2^32 - 1 rows");
        }
        out.push(n);
    }
    if out.is_empty() {
        bail!("--index-rows: no sizes given");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Synthetic text

/// Common English words, roughly most frequent first (the generator favours the start of the list).
const WORDS: &str = "the of and to a in is that for it as was with be by on not he this are or his from at which \
but have an they you were her she there one all we their been has when who will more no if out so said what up \
its about into than them can only other new some could time these two may then do first any my now such like our \
over man me even most made after also did many before must through back years where much your way well down \
should because each just those people how too little state good very make world still own see men work long get \
here between both life being under never day same another know while last might us great old year off come since \
against go came right used take three himself few house use during without again place around however home small \
found thought went say part once general high upon school every does got left number course until always away \
something fact though water less public put think almost hand enough far took head yet system better set told \
nothing night end why called find look going asked later knew point next program city business give group toward \
young days let room side social given present several order national possible rather second face among form \
important often things looked early white case become large big need four within felt along children saw best \
ever least power development light thing seemed family interest want mind country area others although turned \
done open service certain kind problem began different door thus help means sense whole matter perhaps itself \
times law human line above name example action company hands local show whether five history gave today either \
act feet across taken past quite anything having seen death experience body word half really week field car \
words already themselves information tell together college shall money period held keep sure probably free \
seems real behind cannot question air office making brought whose special heard major problems ago became \
moment study available known result street economic boy position reason change south board individual job \
areas society west close turn love community true court force full seem front garden river market table \
window morning evening summer winter spring autumn village road bridge teacher student doctor letter paper \
story music picture language voice colour energy model method theory answer report season weather \
building forest mountain island ocean train station kitchen bread coffee tea dinner breakfast \
friend brother sister mother father child woman person quiet slow quick bright dark \
warm cold heavy clear happy ready strong simple useful common modern natural careful \
carry build bring begin write read speak listen learn teach travel plant grow cook clean paint follow \
explain remember forget decide notice measure compare prepare improve produce receive suggest describe";

/// Append `w` to `out`: capitalised when it is the `first` word, else after a space.
fn push_word(out: &mut String, w: &str, first: bool) {
    if first {
        let mut cs = w.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.push_str(cs.as_str());
        }
    } else {
        out.push(' ');
        out.push_str(w);
    }
}

/// Sentences, rows and files of synthetic text from a seeded generator.
struct TextGen {
    rng: Rng,
    words: Vec<&'static str>,
}

impl TextGen {
    fn new(seed: u64) -> TextGen {
        TextGen { rng: Rng::new(seed), words: WORDS.split_whitespace().collect() }
    }

    /// A word, index skewed towards the start of the list: the product of three uniform draws
    /// (integer arithmetic, so the same on every machine).
    fn word(&mut self) -> &'static str {
        let v = self.words.len() as u64;
        let (a, b, c) = (self.rng.below(v), self.rng.below(v), self.rng.below(v));
        self.words[(a * b * c / (v * v)) as usize]
    }

    /// 6 to 18 words, capitalised, the odd comma, ending with `end`.
    fn sentence(&mut self, out: &mut String, end: char) {
        let n = 6 + self.rng.below(13);
        for i in 0..n {
            let w = self.word();
            push_word(out, w, i == 0);
            if i >= 2 && i + 2 < n && self.rng.below(8) == 0 {
                out.push(',');
            }
        }
        out.push(end);
    }

    /// `lo..=hi` sentences separated by spaces.
    fn sentences(&mut self, lo: u64, hi: u64) -> String {
        let n = lo + self.rng.below(hi - lo + 1);
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            self.sentence(&mut s, '.');
        }
        s
    }

    fn question(&mut self) -> String {
        let mut s = String::new();
        self.sentence(&mut s, '?');
        s
    }

    fn title(&mut self) -> String {
        let n = 2 + self.rng.below(4);
        let mut s = String::new();
        for i in 0..n {
            let w = self.word();
            push_word(&mut s, w, i == 0);
        }
        s
    }

    /// A Datanet row: two in three are text of 1 to 5 sentences, one in three a question and an
    /// answer of 1 to 4 sentences.
    fn row(&mut self) -> Row {
        if self.rng.below(3) == 0 {
            Row::PromptCompletion { prompt: self.question(), completion: self.sentences(1, 4) }
        } else {
            Row::Text { text: self.sentences(1, 5) }
        }
    }
}

/// The formats the generated files rotate through.
#[derive(Clone, Copy, Debug)]
enum GenFormat {
    Txt,
    Md,
    JsonlText,
    JsonlPair,
    CsvPair,
}

const GEN_FORMATS: [GenFormat; 5] =
    [GenFormat::Txt, GenFormat::JsonlPair, GenFormat::Md, GenFormat::CsvPair, GenFormat::JsonlText];

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One generated file of about `target` bytes (at least one row).
fn generate_file(g: &mut TextGen, format: GenFormat, target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 4096);
    if let GenFormat::CsvPair = format {
        out.push_str("prompt,completion\n");
    }
    while out.len() < target {
        match format {
            GenFormat::Txt => {
                out.push_str(&g.sentences(1, 5));
                out.push_str("\n\n");
            }
            GenFormat::Md => {
                out.push_str("## ");
                out.push_str(&g.title());
                out.push_str("\n\n");
                out.push_str(&g.sentences(1, 5));
                out.push_str("\n\n");
            }
            GenFormat::JsonlText => {
                out.push_str(&json!({ "text": g.sentences(1, 5) }).to_string());
                out.push('\n');
            }
            GenFormat::JsonlPair => {
                out.push_str(&json!({ "prompt": g.question(), "completion": g.sentences(1, 4) }).to_string());
                out.push('\n');
            }
            GenFormat::CsvPair => {
                out.push_str(&csv_field(&g.question()));
                out.push(',');
                out.push_str(&csv_field(&g.sentences(1, 4)));
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

fn format_ext(f: GenFormat) -> &'static str {
    match f {
        GenFormat::Txt => "txt",
        GenFormat::Md => "md",
        GenFormat::JsonlText | GenFormat::JsonlPair => "jsonl",
        GenFormat::CsvPair => "csv",
    }
}

/// About `total` bytes of generated files, each at most [`GEN_FILE_BYTES`] (give or take a row).
fn generate_corpus(total: u64, seed: u64) -> Result<Vec<Input>> {
    let mut g = TextGen::new(seed);
    let mut out = Vec::new();
    let mut made = 0u64;
    while made < total {
        let format = GEN_FORMATS[out.len() % GEN_FORMATS.len()];
        let target = (total - made).min(GEN_FILE_BYTES as u64) as usize;
        let bytes = generate_file(&mut g, format, target);
        made += bytes.len() as u64;
        let name = format!("generated-{:03}.{}", out.len(), format_ext(format));
        out.push(Input { kind: detect_kind(&name)?, name, group: Group::Generated, bytes, rows: 0 });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Input files

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    /// Sample Datanet files or `--files`.
    Files = 0,
    Generated = 1,
}

struct Input {
    name: String,
    group: Group,
    kind: FileKind,
    bytes: Vec<u8>,
    /// Rows it parses into (filled in by [`validate`]).
    rows: usize,
}

/// The sample data directory: `--data`, else data/ (holding planted.json) from the current
/// directory upwards, else next to the crate this was built from.
fn data_dir(opt: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = opt {
        return Some(d.to_path_buf());
    }
    let is_data = |d: &Path| d.join(PLANTED_FILE).is_file();
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            let d = a.join("data");
            if is_data(&d) {
                return Some(d);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    is_data(&built).then_some(built)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// The Datanets of a data directory: its subdirectories holding a datanet.json, each with its
/// ingestible files (by extension) in name order.
fn sample_datanets(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut out = Vec::new();
    for d in sorted_entries(dir)? {
        if !d.is_dir() || !d.join("datanet.json").is_file() {
            continue;
        }
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let files: Vec<PathBuf> = sorted_entries(&d)?
            .into_iter()
            .filter(|p| p.is_file() && detect_kind(&p.to_string_lossy()).is_ok())
            .collect();
        out.push((name, files));
    }
    Ok(out)
}

fn read_input(path: &Path, name: String) -> Result<Input> {
    let kind = detect_kind(&path.to_string_lossy()).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Input { name, group: Group::Files, kind, bytes, rows: 0 })
}

/// Parse every input once (untimed), refusing files that cannot be ingested, and record row counts.
fn validate(inputs: &mut [Input], cfg: &IngestConfig) -> Result<()> {
    for inp in inputs {
        let rows = parse(&inp.bytes, inp.kind, cfg).map_err(|e| anyhow!("{}: {e}", inp.name))?;
        inp.rows = rows.len();
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The index

/// A Datanet index grown with distinct generated rows.
struct GrowingIndex {
    index: DedupIndex,
    textgen: TextGen,
    rows: u64,
}

impl GrowingIndex {
    fn new(cfg: &IngestConfig, seed: u64) -> Self {
        GrowingIndex { index: DedupIndex::new(&cfg.near_dup), textgen: TextGen::new(seed ^ INDEX_SALT), rows: 0 }
    }

    /// Insert rows until there are `n`; returns the time spent inserting (generation not included).
    fn grow_to(&mut self, n: u64) -> Duration {
        let mut spent = Duration::ZERO;
        let mut last_report = Instant::now();
        while self.rows < n {
            let batch = (n - self.rows).min(INDEX_BATCH);
            let rows: Vec<Row> = (0..batch).map(|_| self.textgen.row()).collect();
            let t = Instant::now();
            for (k, row) in rows.iter().enumerate() {
                let i = self.rows + k as u64;
                let id =
                    RowRef { contribution: 1 + i / ROWS_PER_CONTRIBUTION, index: (i % ROWS_PER_CONTRIBUTION) as u32 };
                self.index.insert(id, row);
            }
            spent += t.elapsed();
            self.rows += batch;
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!("  index: {} of {n} rows inserted ({:.1} s)", self.rows, spent.as_secs_f64());
                last_report = Instant::now();
            }
        }
        spent
    }
}

// ---------------------------------------------------------------------------
// Timed passes

/// What one group of files gave in a pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    files: u64,
    bytes: u64,
    rows: u64,
    exact: u64,
    near: u64,
    kept: u64,
}

impl Counts {
    fn add(&mut self, bytes: usize, a: &Analysis) {
        self.files += 1;
        self.bytes += bytes as u64;
        self.rows += a.rows.len() as u64;
        self.exact += u64::from(a.exact_duplicates);
        self.near += u64::from(a.near_duplicates);
        self.kept += u64::from(a.kept_rows);
    }

    fn merge(&mut self, o: &Counts) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.rows += o.rows;
        self.exact += o.exact;
        self.near += o.near;
        self.kept += o.kept;
    }

    fn to_json(self) -> Value {
        json!({ "files": self.files, "bytes": self.bytes, "rows": self.rows, "exact": self.exact, "near": self.near, "kept": self.kept })
    }
}

/// CPU time (user + system) of this process so far, from /proc/self/stat (Linux; clock ticks of
/// 1/100 s); `None` elsewhere.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start with field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The 1-minute load average (/proc/loadavg), if known.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// One timed pass over the input.
struct Pass {
    elapsed: Duration,
    /// Cores kept busy on average: process CPU time / elapsed.
    cores_used: Option<f64>,
    /// Time spent in `parse` and in `analyze`, summed over the threads.
    parse: Duration,
    analyze: Duration,
    /// Per group ([`Group`] as index).
    counts: [Counts; 2],
}

/// Parse + analyze every input against `index` on `threads` threads.
fn pass(inputs: &[Input], index: &DedupIndex, cfg: &IngestConfig, threads: usize) -> Result<Pass> {
    type Part = ([Counts; 2], Duration, Duration);
    let next = AtomicUsize::new(0);
    let cpu0 = process_cpu_s();
    let t = Instant::now();
    let parts: Vec<Result<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| -> Result<Part> {
                    let (mut c, mut tp, mut ta) = ([Counts::default(); 2], Duration::ZERO, Duration::ZERO);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(inp) = inputs.get(i) else { break };
                        let t0 = Instant::now();
                        let rows = parse(&inp.bytes, inp.kind, cfg).map_err(|e| anyhow!("{}: {e}", inp.name))?;
                        let t1 = Instant::now();
                        let a = analyze(&rows, index, cfg);
                        let t2 = Instant::now();
                        tp += t1 - t0;
                        ta += t2 - t1;
                        c[inp.group as usize].add(inp.bytes.len(), &a);
                    }
                    Ok((c, tp, ta))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("an ingest thread panicked")))).collect()
    });
    let elapsed = t.elapsed();
    let cores_used = match (cpu0, process_cpu_s()) {
        (Some(a), Some(b)) if elapsed.as_secs_f64() > 0.0 => Some((b - a) / elapsed.as_secs_f64()),
        _ => None,
    };
    let mut out =
        Pass { elapsed, cores_used, parse: Duration::ZERO, analyze: Duration::ZERO, counts: [Counts::default(); 2] };
    for p in parts {
        let (c, tp, ta) = p?;
        out.counts[0].merge(&c[0]);
        out.counts[1].merge(&c[1]);
        out.parse += tp;
        out.analyze += ta;
    }
    Ok(out)
}

/// Figures for one index size.
struct SizeFigures {
    index_rows: u64,
    /// Rows inserted to reach this size from the previous one, and the time that took.
    inserted: u64,
    insert_s: f64,
    index_bytes: u64,
    to_bytes_s: f64,
    /// Seconds per pass on 1 thread and on `threads` threads.
    one_s: Vec<f64>,
    multi_s: Vec<f64>,
    /// Seconds in parse and in analyze of the 1-thread passes.
    parse_s: Vec<f64>,
    analyze_s: Vec<f64>,
    /// Cores kept busy during the multi-thread passes (CPU time / elapsed), when known.
    multi_cores: Vec<f64>,
    counts: [Counts; 2],
}

fn per_s(x: u64, secs: f64) -> f64 {
    if secs > 0.0 { x as f64 / secs } else { f64::NAN }
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// "1234567" → "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Files, bytes and rows of one group of inputs.
#[derive(Clone, Copy, Debug, Default)]
struct GroupTotals {
    files: u64,
    bytes: u64,
    rows: u64,
}

impl GroupTotals {
    fn of(inputs: &[Input], g: Group) -> GroupTotals {
        inputs.iter().filter(|i| i.group == g).fold(GroupTotals::default(), |t, i| GroupTotals {
            files: t.files + 1,
            bytes: t.bytes + i.bytes.len() as u64,
            rows: t.rows + i.rows as u64,
        })
    }

    fn to_json(self) -> Value {
        json!({ "count": self.files, "bytes": self.bytes, "rows": self.rows })
    }
}

/// What every pass reads: the inputs (largest first), where they came from,
/// and the totals of each group and of all.
struct Corpus {
    inputs: Vec<Input>,
    source: String,
    files: GroupTotals,
    generated: GroupTotals,
    total_bytes: u64,
    total_rows: u64,
}

impl Corpus {
    /// The sample Datanets (or `--files`) and the generated text, validated.
    fn load(opts: &IngestOpts, cfg: &IngestConfig) -> Result<Corpus> {
        let mut inputs = Vec::new();
        let source = if opts.files.is_empty() {
            match data_dir(opts.data.as_deref()) {
                Some(dir) => {
                    for (datanet, files) in sample_datanets(&dir)? {
                        for f in files {
                            let name = format!("{datanet}/{}", f.file_name().unwrap_or_default().to_string_lossy());
                            inputs.push(read_input(&f, name)?);
                        }
                    }
                    format!("sample Datanets in {}", dir.display())
                }
                None => {
                    eprintln!("bench ingest: no data/ directory found (use --data DIR): generated text only");
                    "no sample files found".to_string()
                }
            }
        } else {
            for f in &opts.files {
                inputs.push(read_input(f, f.display().to_string())?);
            }
            "--files".to_string()
        };
        let gen_bytes = (opts.generated_mb * 1e6).round() as u64;
        inputs.extend(generate_corpus(gen_bytes, opts.seed)?);
        if inputs.is_empty() {
            bail!("nothing to ingest: no input files and --generated-mb 0");
        }
        validate(&mut inputs, cfg)?;
        // Large files first, so the parallel passes end together.
        inputs.sort_by(|a, b| b.bytes.len().cmp(&a.bytes.len()).then_with(|| a.name.cmp(&b.name)));
        let files = GroupTotals::of(&inputs, Group::Files);
        let generated = GroupTotals::of(&inputs, Group::Generated);
        let (total_bytes, total_rows) = (files.bytes + generated.bytes, files.rows + generated.rows);
        Ok(Corpus { inputs, source, files, generated, total_bytes, total_rows })
    }
}

/// Run `bench ingest` (or the planted-case check with `--near-dup-check`).
pub fn run_ingest(opts: &IngestOpts) -> Result<()> {
    if opts.near_dup_check {
        return run_near_dup_check(opts);
    }
    let sizes = {
        let mut s = parse_counts(&opts.index_rows)?;
        s.sort_unstable();
        s.dedup();
        s
    };
    if !opts.generated_mb.is_finite() || opts.generated_mb < 0.0 || opts.generated_mb > 100_000.0 {
        bail!("--generated-mb must be between 0 and 100000, got {}", opts.generated_mb);
    }
    let machine = Machine::detect();
    let threads = if opts.threads == 0 { machine.cores } else { opts.threads };
    let cfg = IngestConfig::default();
    let corpus = Corpus::load(opts, &cfg)?;
    let load_start = load_average();
    print_setup(opts, &cfg, &corpus, &sizes, threads, &machine, load_start);

    let mut grow = GrowingIndex::new(&cfg, opts.seed);
    let mut results: Vec<SizeFigures> = Vec::new();
    for &n in &sizes {
        let f = measure_size(&mut grow, n, &corpus.inputs, &cfg, opts.rounds, threads)?;
        print_size(&f, corpus.total_bytes, corpus.total_rows, threads);
        results.push(f);
    }

    print_medians(opts.rounds, &corpus, &results, threads);
    let load_end = load_average();
    println!(
        "machine: {}; load average {} at the start, {} at the end",
        machine.describe(),
        load_start.map_or("unknown".to_string(), |l| format!("{l:.2}")),
        load_end.map_or("unknown".to_string(), |l| format!("{l:.2}"))
    );

    if let Some(path) = &opts.json_out {
        let doc = json!({
            "suite": "ingest",
            "loadAverage": { "start": load_start, "end": load_end },
            "date": today(),
            "machine": machine.to_json(),
            "config": {
                "indexRows": sizes, "rounds": opts.rounds, "threads": threads, "seed": opts.seed,
                "generatedMb": opts.generated_mb, "source": corpus.source,
                "scorerVersion": SCORER_VERSION, "minhashVersion": MINHASH_VERSION,
                "files": corpus.files.to_json(),
                "generated": corpus.generated.to_json(),
            },
            "results": results.iter().map(|f| size_json(f, &corpus, threads)).collect::<Vec<_>>(),
        });
        crate::chain::write_results(path, &doc)?;
    }
    Ok(())
}

/// The header: the ingest configuration, the input, the index sizes, the machine.
fn print_setup(
    opts: &IngestOpts,
    cfg: &IngestConfig,
    corpus: &Corpus,
    sizes: &[u64],
    threads: usize,
    machine: &Machine,
    load_start: Option<f64>,
) {
    let near = &cfg.near_dup;
    let (f, g) = (corpus.files, corpus.generated);
    println!(
        "bench ingest: parse + score + dedup (exact and MinHash near duplicates) against a Datanet index, ingest crate (scorer v{SCORER_VERSION}, MinHash v{MINHASH_VERSION}: {} permutations, {} bands × {}, threshold {}%)",
        near.num_perm, near.bands, near.rows_per_band, near.threshold_pct
    );
    println!(
        "  input: {} files, {:.3} MB, {} rows ({}) + {} generated files, {:.2} MB, {} rows (seed {}); total {:.2} MB, {} rows",
        f.files,
        mb(f.bytes),
        thousands(f.rows),
        corpus.source,
        g.files,
        mb(g.bytes),
        thousands(g.rows),
        opts.seed,
        mb(corpus.total_bytes),
        thousands(corpus.total_rows)
    );
    println!(
        "  index sizes {:?} distinct generated rows (grown in place); {} rounds per size; passes on 1 thread and on {threads} threads, alternating",
        sizes, opts.rounds
    );
    println!(
        "  machine: {}; load average {}\n",
        machine.describe(),
        load_start
            .map_or("unknown".to_string(), |l| format!("{l:.2} (a shared machine: figures drop when it is busy)"))
    );
}

/// Grow the index to `n` rows, then time `rounds` rounds of passes over the
/// inputs, on 1 thread and on `threads`, alternating which goes first.
fn measure_size(
    grow: &mut GrowingIndex,
    n: u64,
    inputs: &[Input],
    cfg: &IngestConfig,
    rounds: u32,
    threads: usize,
) -> Result<SizeFigures> {
    let before = grow.rows;
    let insert = grow.grow_to(n);
    let t = Instant::now();
    let index_bytes = grow.index.to_bytes().len() as u64;
    let to_bytes_s = t.elapsed().as_secs_f64();
    let mut f = SizeFigures {
        index_rows: n,
        inserted: n - before,
        insert_s: insert.as_secs_f64(),
        index_bytes,
        to_bytes_s,
        one_s: Vec::new(),
        multi_s: Vec::new(),
        parse_s: Vec::new(),
        analyze_s: Vec::new(),
        multi_cores: Vec::new(),
        counts: [Counts::default(); 2],
    };
    for r in 0..rounds {
        let mut order = vec![1usize];
        if threads > 1 {
            order.push(threads);
            if r % 2 == 1 {
                order.reverse();
            }
        }
        for th in order {
            let p = pass(inputs, &grow.index, cfg, th)?;
            if th == 1 {
                f.one_s.push(p.elapsed.as_secs_f64());
                f.parse_s.push(p.parse.as_secs_f64());
                f.analyze_s.push(p.analyze.as_secs_f64());
            } else {
                f.multi_s.push(p.elapsed.as_secs_f64());
                f.multi_cores.extend(p.cores_used);
            }
            f.counts = p.counts;
        }
    }
    Ok(f)
}

impl SizeFigures {
    /// Median seconds of a 1-thread pass.
    fn one(&self) -> f64 {
        median(&self.one_s)
    }

    /// Median seconds of a multi-thread pass (the 1-thread one when there were none).
    fn multi(&self) -> f64 {
        if self.multi_s.is_empty() { self.one() } else { median(&self.multi_s) }
    }
}

/// The table of medians per index size, and the goal line.
fn print_medians(rounds: u32, corpus: &Corpus, results: &[SizeFigures], threads: usize) {
    let (total_bytes, total_rows) = (corpus.total_bytes, corpus.total_rows);
    println!("\nmedians over {} rounds; input {:.2} MB, {} rows:", rounds, mb(total_bytes), thousands(total_rows));
    println!(
        "{:>10} | {:>9} {:>10} | {:>11} {:>12} | {:>9} {:>9} | {:>10} {:>12} | {:>9} {:>9}",
        "index rows",
        "1t MB/s",
        "1t rows/s",
        format!("{threads}t MB/s"),
        format!("{threads}t rows/s"),
        "insert/s",
        "index MB",
        "gen. near",
        "gen. exact",
        "file near",
        "file exact"
    );
    for f in results {
        let (one, multi) = (f.one(), f.multi());
        println!(
            "{:>10} | {:>9.2} {:>10.0} | {:>11.2} {:>12.0} | {:>9} {:>9.1} | {:>10} {:>12} | {:>9} {:>9}",
            f.index_rows,
            mb(total_bytes) / one,
            per_s(total_rows, one),
            mb(total_bytes) / multi,
            per_s(total_rows, multi),
            if f.inserted == 0 { "-".to_string() } else { format!("{:.0}", per_s(f.inserted, f.insert_s)) },
            mb(f.index_bytes),
            f.counts[1].near,
            f.counts[1].exact,
            f.counts[0].near,
            f.counts[0].exact,
        );
    }
    if let Some(last) = results.last() {
        let rate = mb(total_bytes) / last.multi();
        if last.index_rows >= 1_000_000 {
            println!(
                "goal (≥ 20 MB/s on 2 cores, dedup against 10^6 rows): {rate:.1} MB/s on {threads} threads against {} rows: {}",
                thousands(last.index_rows),
                if rate >= 20.0 { "met" } else { "NOT met" }
            );
        } else {
            println!(
                "goal (≥ 20 MB/s on 2 cores, dedup against 10^6 rows): not measured here; run with --index-rows 1M ({rate:.1} MB/s at {} rows)",
                thousands(last.index_rows)
            );
        }
    }
}

/// One index size in the `--json-out` document.
fn size_json(f: &SizeFigures, corpus: &Corpus, threads: usize) -> Value {
    let (total_bytes, total_rows) = (corpus.total_bytes, corpus.total_rows);
    let (one, multi) = (f.one(), f.multi());
    json!({
        "indexRows": f.index_rows,
        "insertedRows": f.inserted,
        "insertS": f.insert_s,
        "insertRowsPerS": if f.inserted == 0 { Value::Null } else { json!(per_s(f.inserted, f.insert_s)) },
        "indexBytes": f.index_bytes,
        "toBytesS": f.to_bytes_s,
        "oneThread": {
            "mbPerS": mb(total_bytes) / one, "rowsPerS": per_s(total_rows, one), "seconds": f.one_s,
            "parseMbPerS": mb(total_bytes) / median(&f.parse_s),
            "analyzeMbPerS": mb(total_bytes) / median(&f.analyze_s),
            "parseSeconds": f.parse_s, "analyzeSeconds": f.analyze_s,
        },
        "multiThread": {
            "threads": threads, "mbPerS": mb(total_bytes) / multi, "rowsPerS": per_s(total_rows, multi),
            "seconds": f.multi_s, "coresBusy": f.multi_cores,
        },
        "files": f.counts[0].to_json(),
        "generated": f.counts[1].to_json(),
        "generatedNearFalsePositives": f.counts[1].near,
    })
}

fn print_size(f: &SizeFigures, total_bytes: u64, total_rows: u64, threads: usize) {
    let one = median(&f.one_s);
    let insert = if f.inserted == 0 {
        "nothing inserted".to_string()
    } else {
        format!(
            "+{} rows inserted in {:.2} s ({:.0} rows/s)",
            thousands(f.inserted),
            f.insert_s,
            per_s(f.inserted, f.insert_s)
        )
    };
    let mut line = format!(
        "{:>10} index rows: {insert}, to_bytes {:.1} MB in {:.2} s | 1 thread {:.2} MB/s {:.0} rows/s (parse alone {:.1} MB/s, analyze alone {:.1} MB/s)",
        f.index_rows,
        mb(f.index_bytes),
        f.to_bytes_s,
        mb(total_bytes) / one,
        per_s(total_rows, one),
        mb(total_bytes) / median(&f.parse_s),
        mb(total_bytes) / median(&f.analyze_s),
    );
    if !f.multi_s.is_empty() {
        let multi = median(&f.multi_s);
        line.push_str(&format!(
            " | {threads} threads {:.2} MB/s {:.0} rows/s",
            mb(total_bytes) / multi,
            per_s(total_rows, multi)
        ));
        if !f.multi_cores.is_empty() {
            line.push_str(&format!(" ({:.2} cores busy)", median(&f.multi_cores)));
        }
    }
    let (files, generated) = (f.counts[0], f.counts[1]);
    line.push_str(&format!(
        " | duplicates: generated {} near (false positives) + {} exact of {} rows; files {} near + {} exact of {} rows",
        generated.near, generated.exact, generated.rows, files.near, files.exact, files.rows
    ));
    println!("{line}");
}

// ---------------------------------------------------------------------------
// The planted-case check

/// A planted near duplicate: `file` row `row` is a light edit of `of_file` row `of_row`.
#[derive(Clone, Debug)]
struct PlantedNear {
    datanet: String,
    file: String,
    row: u32,
    of_file: String,
    of_row: u32,
}

/// A planted copy: every row of `file` repeats the same row of `of_file`.
#[derive(Clone, Debug)]
struct PlantedCopy {
    datanet: String,
    file: String,
    of_file: String,
}

/// Planted low-quality rows.
#[derive(Clone, Debug)]
struct PlantedLow {
    datanet: String,
    file: String,
    rows: Vec<u32>,
}

#[derive(Clone, Debug, Default)]
struct Planted {
    near: Vec<PlantedNear>,
    copies: Vec<PlantedCopy>,
    low: Vec<PlantedLow>,
}

fn load_planted(path: &Path) -> Result<Planted> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let s = |e: &Value, k: &str| -> Result<String> {
        e.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("{}: missing {k:?}", path.display()))
    };
    let n = |e: &Value, k: &str| -> Result<u32> {
        e.get(k)
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok())
            .with_context(|| format!("{}: missing {k:?}", path.display()))
    };
    let list = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut p = Planted::default();
    for e in list("near_duplicates") {
        p.near.push(PlantedNear {
            datanet: s(&e, "datanet")?,
            file: s(&e, "file")?,
            row: n(&e, "row")?,
            of_file: s(&e, "of_file")?,
            of_row: n(&e, "of_row")?,
        });
    }
    for e in list("exact_copies") {
        p.copies.push(PlantedCopy { datanet: s(&e, "datanet")?, file: s(&e, "file")?, of_file: s(&e, "of_file")? });
    }
    for e in list("low_quality") {
        let rows = e
            .get("rows")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).map(|x| x as u32).collect())
            .unwrap_or_default();
        p.low.push(PlantedLow { datanet: s(&e, "datanet")?, file: s(&e, "file")?, rows });
    }
    Ok(p)
}

/// One sample file replayed as a contribution.
struct Replayed {
    /// Contribution id: 1-based position in the Datanet's name order.
    id: u64,
    analysis: Analysis,
}

/// A flagged row: where, and what it duplicates.
#[derive(Clone, Debug)]
struct Flag {
    datanet: String,
    file: String,
    row: u32,
    of: RowRef,
    kind: DupKind,
}

/// The outcome of the planted-case check.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckReport {
    pub datanets: usize,
    pub files: usize,
    pub rows: usize,
    /// Per planted near duplicate: description, flagged as a near duplicate of the right row.
    pub near: Vec<(String, bool, String)>,
    /// Per planted copy: description, rows, rows flagged as exact duplicates of the matching row.
    pub copies: Vec<(String, usize, usize)>,
    /// Sample rows that are not planted duplicates.
    pub other_rows: usize,
    /// Non-planted rows flagged as near / exact duplicates (descriptions).
    pub false_near: Vec<String>,
    pub false_exact: Vec<String>,
    /// Planted low-quality rows: description, score, reasons.
    pub low: Vec<(String, u16, Vec<String>)>,
    /// Other rows scoring below full marks: description, score, reasons.
    pub other_low: Vec<(String, u16, Vec<String>)>,
    /// Files not approved in the replay (half or more of their rows duplicates).
    pub rejected: Vec<String>,
    /// Per file in replay order: `datanet/file`, rows, exact and near duplicates, file quality score.
    pub per_file: Vec<(String, usize, u32, u32, u16)>,
}

impl CheckReport {
    /// Every planted duplicate was flagged.
    pub fn planted_found(&self) -> bool {
        self.near.iter().all(|n| n.1) && self.copies.iter().all(|c| c.1 > 0 && c.1 == c.2)
    }

    /// Non-planted rows flagged as near duplicates / all sample rows.
    pub fn near_fp_rate(&self) -> f64 {
        if self.rows == 0 { 0.0 } else { self.false_near.len() as f64 / self.rows as f64 }
    }
}

/// Every sample file replayed, Datanet by Datanet, as contributions in name order.
struct Replay {
    /// datanet → file → replay
    files: BTreeMap<String, BTreeMap<String, Replayed>>,
    /// (datanet, contribution id) → file
    names: BTreeMap<(String, u64), String>,
    /// Every row flagged as a duplicate.
    flags: Vec<Flag>,
}

impl Replay {
    /// Replay the sample Datanets of `dir`, each against its own index: a file
    /// is approved (its rows indexed) unless half or more of its rows are
    /// duplicates. Counts the files and rows into `rep`.
    fn run(dir: &Path, cfg: &IngestConfig, rep: &mut CheckReport) -> Result<Replay> {
        let mut replay = Replay { files: BTreeMap::new(), names: BTreeMap::new(), flags: Vec::new() };
        for (datanet, files) in sample_datanets(dir)? {
            rep.datanets += 1;
            let mut index = DedupIndex::new(&cfg.near_dup);
            let mut per_file = BTreeMap::new();
            for (k, path) in files.iter().enumerate() {
                let id = k as u64 + 1;
                let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let kind = detect_kind(&file).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                let rows = parse(&bytes, kind, cfg).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                let analysis = analyze(&rows, &index, cfg);
                let dups = (analysis.exact_duplicates + analysis.near_duplicates) as usize;
                let approved = dups * 2 < rows.len();
                if approved {
                    for (i, row) in rows.iter().enumerate() {
                        index.insert(RowRef { contribution: id, index: i as u32 }, row);
                    }
                } else {
                    rep.rejected.push(format!("{datanet}/{file}"));
                }
                rep.files += 1;
                rep.rows += rows.len();
                rep.per_file.push((
                    format!("{datanet}/{file}"),
                    rows.len(),
                    analysis.exact_duplicates,
                    analysis.near_duplicates,
                    analysis.quality_bps,
                ));
                for f in &analysis.rows {
                    if let Some((of, kind)) = f.duplicate_of {
                        replay.flags.push(Flag {
                            datanet: datanet.clone(),
                            file: file.clone(),
                            row: f.index,
                            of,
                            kind,
                        });
                    }
                }
                replay.names.insert((datanet.clone(), id), file.clone());
                per_file.insert(file, Replayed { id, analysis });
            }
            replay.files.insert(datanet, per_file);
        }
        Ok(replay)
    }

    fn get(&self, datanet: &str, file: &str) -> Option<&Replayed> {
        self.files.get(datanet).and_then(|m| m.get(file))
    }

    /// The contribution id of `datanet/file`.
    fn id_of(&self, datanet: &str, file: &str) -> Option<u64> {
        self.get(datanet, file).map(|r| r.id)
    }

    /// The file `r` points into, for a description.
    fn file_of(&self, datanet: &str, r: RowRef) -> String {
        if r.contribution == ::ingest::PENDING_CONTRIBUTION {
            "this file".to_string()
        } else {
            self.names
                .get(&(datanet.to_string(), r.contribution))
                .cloned()
                .unwrap_or_else(|| format!("#{}", r.contribution))
        }
    }
}

/// Replay the sample Datanets of `dir` and check the cases planted in its planted.json.
pub(crate) fn near_dup_check(dir: &Path) -> Result<CheckReport> {
    let planted = load_planted(&dir.join(PLANTED_FILE))?;
    let cfg = IngestConfig::default();
    let mut rep = CheckReport::default();
    let replay = Replay::run(dir, &cfg, &mut rep)?;
    // (datanet, file, row) of every planted duplicate.
    let mut planted_rows: Vec<(String, String, u32)> = Vec::new();
    check_planted_near(&planted, &replay, &mut rep, &mut planted_rows);
    check_planted_copies(&planted, &replay, &mut rep, &mut planted_rows);
    collect_false_positives(&replay, &planted_rows, &mut rep);
    check_scores(&planted, &replay, &mut rep)?;
    Ok(rep)
}

/// Each planted near duplicate must be flagged as a near duplicate of the row it edits.
fn check_planted_near(
    planted: &Planted,
    replay: &Replay,
    rep: &mut CheckReport,
    planted_rows: &mut Vec<(String, String, u32)>,
) {
    for p in &planted.near {
        let desc = format!("{}/{} row {} ≈ {} row {}", p.datanet, p.file, p.row, p.of_file, p.of_row);
        planted_rows.push((p.datanet.clone(), p.file.clone(), p.row));
        let want = replay.id_of(&p.datanet, &p.of_file).map(|id| RowRef { contribution: id, index: p.of_row });
        let got = replay.flags.iter().find(|f| f.datanet == p.datanet && f.file == p.file && f.row == p.row);
        let (ok, detail) = match got {
            Some(f) => {
                let kind = match f.kind {
                    DupKind::Exact => "exact duplicate".to_string(),
                    DupKind::Near { equal, of } => format!("near duplicate, {equal}/{of} MinHash values equal"),
                };
                let ok = matches!(f.kind, DupKind::Near { .. }) && Some(f.of) == want;
                (ok, format!("{kind} of {} row {}", replay.file_of(&f.datanet, f.of), f.of.index))
            }
            None => {
                // Say how close it came.
                let detail = match (replay.get(&p.datanet, &p.file), want) {
                    (Some(_), Some(_)) => "not flagged".to_string(),
                    _ => "file or row not found".to_string(),
                };
                (false, detail)
            }
        };
        rep.near.push((desc, ok, detail));
    }
}

/// Every row of a planted copy must be flagged as an exact duplicate of the same row of its original.
fn check_planted_copies(
    planted: &Planted,
    replay: &Replay,
    rep: &mut CheckReport,
    planted_rows: &mut Vec<(String, String, u32)>,
) {
    for p in &planted.copies {
        let desc = format!("{}/{} = {}", p.datanet, p.file, p.of_file);
        let want = replay.id_of(&p.datanet, &p.of_file);
        let Some(r) = replay.get(&p.datanet, &p.file) else {
            rep.copies.push((desc, 0, 0));
            continue;
        };
        let n = r.analysis.rows.len();
        let ok = r
            .analysis
            .rows
            .iter()
            .filter(|f| {
                matches!(f.duplicate_of, Some((of, DupKind::Exact))
                    if Some(of.contribution) == want && of.index == f.index)
            })
            .count();
        for i in 0..n {
            planted_rows.push((p.datanet.clone(), p.file.clone(), i as u32));
        }
        rep.copies.push((desc, n, ok));
    }
}

/// Everything flagged that was not planted is a false positive.
fn collect_false_positives(replay: &Replay, planted_rows: &[(String, String, u32)], rep: &mut CheckReport) {
    rep.other_rows = rep.rows - planted_rows.len().min(rep.rows);
    for f in &replay.flags {
        if planted_rows.iter().any(|(d, file, row)| *d == f.datanet && *file == f.file && *row == f.row) {
            continue;
        }
        let what = match f.kind {
            DupKind::Exact => "exact duplicate".to_string(),
            DupKind::Near { equal, of } => format!("near duplicate ({equal}/{of} MinHash values equal)"),
        };
        let desc = format!(
            "{}/{} row {}: {what} of {} row {}",
            f.datanet,
            f.file,
            f.row,
            replay.file_of(&f.datanet, f.of),
            f.of.index
        );
        match f.kind {
            DupKind::Exact => rep.false_exact.push(desc),
            DupKind::Near { .. } => rep.false_near.push(desc),
        }
    }
}

/// The scores of the planted low-quality rows, and of every other row below full marks.
fn check_scores(planted: &Planted, replay: &Replay, rep: &mut CheckReport) -> Result<()> {
    let mut low_rows: Vec<(String, String, u32)> = Vec::new();
    for p in &planted.low {
        let Some(r) = replay.get(&p.datanet, &p.file) else {
            bail!("planted low-quality file {}/{} not found", p.datanet, p.file);
        };
        for &i in &p.rows {
            let Some(f) = r.analysis.rows.get(i as usize) else {
                bail!("planted low-quality row {}/{} row {i} not found", p.datanet, p.file);
            };
            low_rows.push((p.datanet.clone(), p.file.clone(), i));
            rep.low.push((format!("{}/{} row {i}", p.datanet, p.file), f.score_bps, f.reasons.clone()));
        }
    }
    for (datanet, files) in &replay.files {
        for (file, r) in files {
            for f in &r.analysis.rows {
                let planted = low_rows.iter().any(|(d, fl, i)| d == datanet && fl == file && *i == f.index);
                if !planted && f.score_bps < ::ingest::FULL_SCORE {
                    let reasons = f.reasons.iter().filter(|s| !s.contains("duplicate of")).cloned().collect();
                    rep.other_low.push((format!("{datanet}/{file} row {}", f.index), f.score_bps, reasons));
                }
            }
        }
    }
    Ok(())
}

fn run_near_dup_check(opts: &IngestOpts) -> Result<()> {
    let dir = data_dir(opts.data.as_deref())
        .context("no data/ directory with planted.json found from the current directory upwards: use --data DIR")?;
    let rep = near_dup_check(&dir)?;
    println!(
        "bench ingest --near-dup-check: {} sample Datanets in {}, {} files, {} rows replayed as contributions in file-name order (each file against the rows approved before it)",
        rep.datanets,
        dir.display(),
        rep.files,
        rep.rows
    );
    for (file, rows, exact, near, q) in &rep.per_file {
        println!("  {file}: {rows} rows, {exact} exact + {near} near duplicates, quality {q} bps");
    }
    for (desc, ok, detail) in &rep.near {
        println!("  planted near duplicate {desc}: {} ({detail})", if *ok { "FLAGGED" } else { "MISSED" });
    }
    for (desc, n, ok) in &rep.copies {
        println!(
            "  planted copy {desc}: {ok} of {n} rows flagged as exact duplicates of the matching row: {}",
            if *n > 0 && ok == n { "FLAGGED" } else { "MISSED" }
        );
    }
    if !rep.rejected.is_empty() {
        println!("  not approved in the replay (half or more rows duplicates): {}", rep.rejected.join(", "));
    }
    println!(
        "  false positives: {} near-duplicate and {} exact-duplicate flags on the {} rows that are not planted duplicates",
        rep.false_near.len(),
        rep.false_exact.len(),
        rep.other_rows
    );
    for d in rep.false_near.iter().chain(&rep.false_exact) {
        println!("    {d}");
    }
    println!(
        "  near-duplicate false-positive rate: {} / {} sample rows = {:.2}%",
        rep.false_near.len(),
        rep.rows,
        rep.near_fp_rate() * 100.0
    );
    for (desc, score, reasons) in &rep.low {
        println!("  planted low-quality {desc}: score {score} bps ({})", reasons.join("; "));
    }
    println!("  other rows scoring below {}: {} of {}", ::ingest::FULL_SCORE, rep.other_low.len(), rep.rows);
    for (desc, score, reasons) in &rep.other_low {
        println!("    {desc}: {score} bps ({})", reasons.join("; "));
    }

    if let Some(path) = &opts.json_out {
        let doc = json!({
            "suite": "ingest-near-dup-check",
            "date": today(),
            "machine": Machine::detect().to_json(),
            "data": dir.display().to_string(),
            "datanets": rep.datanets, "files": rep.files, "rows": rep.rows,
            "perFile": rep.per_file.iter().map(|(f, r, e, n, q)| json!({"file": f, "rows": r, "exact": e, "near": n, "qualityBps": q})).collect::<Vec<_>>(),
            "plantedNear": rep.near.iter().map(|(d, ok, detail)| json!({"case": d, "flagged": ok, "detail": detail})).collect::<Vec<_>>(),
            "plantedCopies": rep.copies.iter().map(|(d, n, ok)| json!({"case": d, "rows": n, "flagged": ok})).collect::<Vec<_>>(),
            "otherRows": rep.other_rows,
            "falseNear": rep.false_near,
            "falseExact": rep.false_exact,
            "nearFalsePositiveRate": rep.near_fp_rate(),
            "lowQuality": rep.low.iter().map(|(d, s, r)| json!({"row": d, "scoreBps": s, "reasons": r})).collect::<Vec<_>>(),
            "otherBelowFull": rep.other_low.iter().map(|(d, s, r)| json!({"row": d, "scoreBps": s, "reasons": r})).collect::<Vec<_>>(),
        });
        crate::chain::write_results(path, &doc)?;
    }
    if !rep.planted_found() {
        bail!("a planted duplicate was not flagged (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
    }

    #[test]
    fn counts() {
        assert_eq!(parse_counts("0,10000,100000").unwrap(), vec![0, 10_000, 100_000]);
        assert_eq!(parse_counts(" 10k, 1M ,2_000").unwrap(), vec![10_000, 1_000_000, 2_000]);
        assert!(parse_counts("").is_err());
        assert!(parse_counts("ten").is_err());
        assert!(parse_counts("5000M").is_err());
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn generated_text_is_deterministic_and_parses() {
        let a = generate_corpus(300_000, 7).unwrap();
        let b = generate_corpus(300_000, 7).unwrap();
        let c = generate_corpus(300_000, 8).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].bytes, b[0].bytes);
        assert_ne!(a[0].bytes, c[0].bytes);
        let total: usize = a.iter().map(|i| i.bytes.len()).sum();
        assert!((300_000..310_000).contains(&total), "{total}");
        let cfg = IngestConfig::default();
        // Every format parses into rows that score well and are all distinct.
        let mut g = TextGen::new(3);
        for format in GEN_FORMATS {
            let bytes = generate_file(&mut g, format, 20_000);
            let name = format!("x.{}", format_ext(format));
            let rows = parse(&bytes, detect_kind(&name).unwrap(), &cfg).unwrap();
            assert!(rows.len() > 20, "{format:?}");
            let a = analyze(&rows, &DedupIndex::new(&cfg.near_dup), &cfg);
            assert_eq!(a.exact_duplicates + a.near_duplicates, 0, "{format:?}");
            assert!(a.quality_bps > 9000, "{format:?}: {}", a.quality_bps);
        }
    }

    #[test]
    fn run_ingest_smoke() {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("ingest.json");
        let opts = IngestOpts {
            index_rows: "1000".into(),
            generated_mb: 0.2,
            rounds: 1,
            threads: 2,
            data: Some(data()),
            json_out: Some(json_path.clone()),
            ..IngestOpts::default()
        };
        run_ingest(&opts).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let results = doc["results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert_eq!(r["indexRows"], 1000);
        assert!(r["oneThread"]["mbPerS"].as_f64().unwrap() > 0.0);
        assert!(r["multiThread"]["rowsPerS"].as_f64().unwrap() > 0.0);
        assert!(r["indexBytes"].as_u64().unwrap() > 1000 * 45);
        assert!(r["files"]["rows"].as_u64().unwrap() > 100, "the sample files were read");
        assert!(r["generated"]["rows"].as_u64().unwrap() > 500);
        assert_eq!(r["generatedNearFalsePositives"], 0);
        assert_eq!(r["generated"]["exact"], 0);
    }

    #[test]
    fn planted_cases_are_found() {
        let rep = near_dup_check(&data()).unwrap();
        assert_eq!(rep.datanets, 2);
        assert!(!rep.near.is_empty() && !rep.copies.is_empty());
        for (desc, ok, detail) in &rep.near {
            assert!(ok, "planted near duplicate {desc} not flagged: {detail}");
        }
        for (desc, n, ok) in &rep.copies {
            assert!(*n > 0 && ok == n, "planted copy {desc}: {ok} of {n} rows flagged");
        }
        assert!(rep.false_near.is_empty(), "near-duplicate false positives: {:?}", rep.false_near);
        assert!(rep.false_exact.is_empty(), "exact-duplicate false positives: {:?}", rep.false_exact);
        assert!(rep.planted_found());
        assert_eq!(rep.near_fp_rate(), 0.0);
        // The planted low-quality rows score at most half marks.
        assert!(!rep.low.is_empty());
        for (desc, score, reasons) in &rep.low {
            assert!(*score <= ::ingest::HALF as u16, "{desc} scored {score}: {reasons:?}");
        }
    }

    #[test]
    fn run_near_dup_check_mode() {
        let opts = IngestOpts { near_dup_check: true, data: Some(data()), ..IngestOpts::default() };
        run_ingest(&opts).unwrap();
    }
}
