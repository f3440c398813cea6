//! Datanet ingest: turn a contributed file into rows, find what duplicates the Datanet, and score
//! every row with published rules.
//!
//! A pure library: no I/O beyond the bytes a caller passes in, no clock, no randomness, no
//! floating point in anything that ends in a score or a hash, no hash-map iteration in any output.
//! The same input gives the same output on every machine. Contributors have complained that
//! OpenLedger's scoring is opaque and its anti-gaming rules unpublished; here every rule and
//! threshold is written below, versioned ([`SCORER_VERSION`], [`MINHASH_VERSION`]), committed to
//! by [`Analysis::config_digest`], and every row's findings say in words which rules fired.
//!
//! The pipeline: [`detect_kind`] → [`parse`] (refuses files that cannot be ingested) →
//! [`analyze`] against the Datanet's [`DedupIndex`] → per-row [`RowFinding`]s and a file
//! [`Analysis`] (quality score, duplicate counts, rows root); [`ingest_file`] does all of it.
//!
//! # Parsing
//!
//! Checks in order, the first failure refusing the whole file ([`IngestError`] names the place):
//! 1. **Size**: more than [`IngestConfig::max_file_bytes`] (default [`DEFAULT_MAX_FILE_BYTES`] =
//!    5 MiB, the reference per-submission limit) is refused before anything is read.
//! 2. **UTF-8**: invalid UTF-8 is refused with its byte offset and line. Nothing is transcoded.
//! 3. **Control characters**: C0 controls other than tab, LF and CR (NUL, form feed, escape...) are
//!    refused with line and column; in JSON Lines, also when they come from `\u` escapes.
//! 4. **Format**, below. Rows whose fields are all empty after normalisation are skipped; a file
//!    with no row left is refused as empty; more than [`IngestConfig::max_rows`] rows (default
//!    [`DEFAULT_MAX_ROWS`]) is refused.
//!
//! A byte-order mark at the start is dropped. Kinds ([`FileKind`], from the extension by
//! [`detect_kind`], case-insensitive):
//! - **`.txt`, `.text`**: the normalised file is cut at blank lines; each paragraph is a
//!   [`Row::Text`].
//! - **`.md`, `.markdown`**: one [`Row::Text`] per section. A section starts at an ATX heading
//!   (`#` to `######`, at most 3 spaces of indent) outside a fenced code block; headings with
//!   nothing under them join the next section; text before the first heading is a section. Inside a
//!   row, blocks (paragraphs, lists, whole fenced code blocks) are separated by one blank line. A
//!   section longer than [`IngestConfig::max_row_chars`] is cut between blocks into rows of at most
//!   that many characters; a single longer block stays whole (and scores 0 as too long). Setext
//!   headings are not section breaks.
//! - **`.jsonl`, `.ndjson`**: each non-blank line is one JSON object. Fields come from
//!   [`FieldNames`]: the first pair (in order) whose prompt field is present makes a
//!   [`Row::PromptCompletion`], and its completion field must then be present too; otherwise the
//!   text field makes a [`Row::Text`]; otherwise the line is refused. Field names match exactly;
//!   values must be strings (`null` only for the optional input field). Defaults: text `"text"`,
//!   pair `"prompt"`/`"completion"`; [`FieldNames::with_common_aliases`] adds
//!   `"instruction"`/`"output"` (with optional `"input"`, Alpaca style) and `"question"`/`"answer"`.
//! - **`.csv`**: RFC 4180 (quoted fields, doubled quotes, line breaks inside quotes) through the
//!   `csv` crate, delimiter [`CsvFields::delimiter`] (default `,`). A header row is required;
//!   columns are chosen once from it with the same [`FieldNames`] rule, names trimmed and compared
//!   ASCII case-insensitively. Every record must have as many fields as the header.
//!
//! A prompt with an extra input field becomes `prompt + "\n\n" + input` (input non-empty).
//!
//! # Normalisation
//!
//! Every text field goes through [`normalize`]: remove U+FEFF; CRLF and CR → LF; drop C0 controls
//! but tab and LF; Unicode **NFC** (so a decomposed `é` cannot slip past exact deduplication with
//! different bytes; NFC, not NFKC, so ligatures, full-width forms and superscripts stay as typed);
//! trim trailing whitespace on each line (leading whitespace is kept for code and verse); drop
//! leading and trailing blank lines; cut runs of more than 2 blank lines to 2. It is idempotent.
//! NFC tables come from the `unicode-normalization` crate: Unicode's stability policy keeps the
//! NFC of assigned characters fixed across versions.
//!
//! # Quality score
//!
//! Each row starts at 10000 basis points; each rule that fires multiplies the score by a factor
//! (`score = score * factor / 10000`, rounded down, in this order) and adds a reason. Counts are of
//! Unicode scalar values; "visible" characters are the non-whitespace ones; percentages are
//! integers rounded down. Thresholds are [`ScorerConfig`] fields, defaults in square brackets.
//!
//! | # | rule | fires when | factor | reason text |
//! |---|------|------------|--------|-------------|
//! | 1 | empty | text row empty; prompt or completion blank; prompt = completion (trimmed, lower-cased) | 0 | `empty`, `empty prompt`, `empty completion`, `prompt and completion are identical` |
//! | 2 | length | chars < [`IngestConfig::min_row_chars`] \[20\] or > [`IngestConfig::max_row_chars`] \[20000\]; a pair counts prompt + completion | 0 | `too short (12 chars < 20)`, `too long (25000 chars > 20000)` |
//! | 3a | replacement characters | any U+FFFD | 5000, or 0 at ≥ `max_bad_char_pct` \[2\]% of visible | `encoding: 3 replacement characters (U+FFFD), 1% of visible characters` |
//! | 3b | mojibake | `Ã` or `Â` followed by U+0080..=U+00BF (UTF-8 read as Latin-1) | 5000 | `encoding: 2 mojibake sequences ...` |
//! | 4 | control characters | any `char::is_control` other than tab and LF (C1, DEL; C0 never gets past parsing) | 5000, or 0 at ≥ `max_bad_char_pct` \[2\]% | `control characters: 2 (first U+0085), 1% of visible characters` |
//! | 5 | letters | letters (`char::is_alphabetic`) < `min_letter_pct` \[25\]% of visible, or none visible | 0 | `mostly symbols/digits: 12% letters (< 25%)` |
//! | 5 | letters | letters < `ok_letter_pct` \[60\]% of visible | `letter_pct * 10000 / 60` | `symbols/digits: 45% letters (< 60%)` |
//! | 6 | repeated lines | ≥ `min_lines` \[3\] content lines (≥ 3 letters or digits) and ≥ `repeated_line_pct` \[20\]% of them equal (trimmed) to an earlier one | `(100 - pct) * 100` | `repetition: 43% of lines repeated` |
//! | 7 | repeated 3-grams | ≥ `min_words` \[16\] words and ≥ `repeated_ngram_pct` \[30\]% of word 3-grams occurring earlier | `(100 - pct) * 100` | `repetition: 64% of word 3-grams repeated` |
//! | 8 | dominant word | ≥ `min_words` \[16\] words and the most frequent word (ties: the earliest) ≥ `top_word_pct` \[30\]% of words | `(100 - pct) * 100` | `repetition: "buy" is 80% of words` |
//! | 9 | character run | one character ≥ `char_run` \[20\] times in a row, not whitespace nor one of [`RUN_EXEMPT`] (`-=_*#~.·`: rules and leaders) | 5000 | `repetition: 'a' repeated 25 times in a row` |
//! | 10 | all caps | ≥ `caps_min_letters` \[20\] cased letters, ≥ `caps_pct` \[70\]% upper-case | 5000 | `all caps: 92% of letters upper-case` |
//!
//! Words are maximal runs of alphanumeric characters, lower-cased (std's Unicode tables, which
//! only change for characters newly assigned by a Unicode version); each
//! Han ideograph or kana is a word by itself (those scripts use no spaces). For a prompt/completion
//! pair, rules 3–10 look at `prompt + "\n" + completion`. Invalid UTF-8 never reaches the scorer:
//! [`parse`] refuses it. The file's score [`Analysis::quality_bps`] is the mean of the kept (non-
//! duplicate) rows' scores, rounded down, 0 if none is kept.
//!
//! # Exact duplicates
//!
//! A row is an exact duplicate when its leaf ([`Row::leaf`], blake3 of the canonical row bytes
//! after normalisation) is already in the index, or belongs to an earlier row of the same file.
//! It names the first row inserted with that leaf.
//!
//! # Near duplicates
//!
//! MinHash with LSH banding, parameters in [`NearDupConfig`] (defaults in square brackets), version
//! [`MINHASH_VERSION`]:
//! - **Shingles.** Words as above (a prompt/completion pair gets a fixed separator token between
//!   its halves). A row with at least `short_row_words` \[12\] words uses word `shingle_words`-grams
//!   \[3\]; a shorter row uses character `shingle_chars`-grams \[5\] of its folded text (words
//!   lower-cased, single-spaced), or one shingle if shorter than that; a row with no letters or
//!   digits has no signature and is never a near duplicate. Word 3-grams rather than 5-grams:
//!   one changed word breaks `k` shingles, so in a 100-word paragraph with 3 changed words the
//!   Jaccard similarity is about (98 − 9)/(98 + 9) ≈ 0.83 with 3-grams but (96 − 15)/(96 + 15)
//!   ≈ 0.73 with 5-grams; unrelated prose still shares almost no word 3-grams (≈ 0.01).
//! - **Hashes.** A token or character shingle hashes to `mix64(FNV-1a-64(UTF-8 bytes))`, where
//!   `mix64` is the splitmix64 finaliser; a word shingle chains `h = mix64(h ^ token)` from the
//!   constant `"WSHINGLE"`. Permutation `i` has the seed `first 8 bytes (LE) of blake3(SEED_DOMAIN ‖
//!   i as u32 BE)` with [`SEED_DOMAIN`] = `openledger/ingest/minhash/v1`.
//! - **Signature.** `num_perm` \[128\] values (b-bit MinHash, b = 16: 256 bytes per row). Each
//!   hash `h = mix64(x ^ seed_g)` serves four permutations: value `4g + k` is the low 16 bits of
//!   `min over shingles x of rotate_left(h, 16k)` (the ordering is decided by one 16-bit lane of
//!   `h`, the value kept is another, uniform lane), so 128 values cost 32 hashes per shingle
//!   (MinHash v2; v1 computed one hash per value, four times the work). Two different minima
//!   collide with probability 2⁻¹⁶, a negligible bias.
//! - **Candidates.** The signature's first `bands * rows_per_band` values are cut into `bands` \[16\]
//!   bands of `rows_per_band` \[4\]; rows sharing one band exactly are candidates (a pair with
//!   Jaccard s is a candidate with probability 1 − (1 − s⁴)¹⁶: 0.99 at s = 0.7, 0.9998 at 0.8,
//!   0.0016 at 0.1). At most `max_bucket_scan` \[256\] rows are examined per bucket, newest first.
//! - **Decision.** A candidate is a near duplicate when `equal * 100 >= threshold_pct * num_perm`
//!   where `equal` counts the equal values of the whole signatures and `threshold_pct` \[70\]; with
//!   the defaults, at least 90 of 128. Among several, the most equal wins, then the smallest row
//!   id. The reason reports `equal / num_perm` as the Jaccard estimate, formatted with integers.
//!
//! # The index
//!
//! [`DedupIndex`] holds what a Datanet already has: row ids ([`RowRef`] = [`primitives::rows::RowId`]),
//! leaves, signatures and LSH buckets. It is a deterministic function of its insertion sequence.
//!
//! # Index file format
//!
//! [`DedupIndex::to_bytes`], all integers big-endian:
//! `"OLDI"` ‖ format version u8 (1) ‖ [`MINHASH_VERSION`] u32 ‖ the eight [`NearDupConfig`] fields
//! as u32 in declaration order ‖ entry count u64 ‖ per entry in insertion order: contribution u64 ‖
//! index u32 ‖ leaf (32 bytes) ‖ flag u8 (1 if a signature follows, 0 if the row has none or
//! repeats an earlier leaf) ‖ (num_perm × u16 if flagged) ‖ finally blake3 of everything before (32 bytes).
//! [`DedupIndex::from_bytes`] checks all of it and replays the insertions.
//!
//! # Analysis
//!
//! [`analyze`] gives each row its leaf, score, reasons and duplicate finding (index first, then
//! the file's earlier rows, which are referred to with contribution [`PENDING_CONTRIBUTION`]), and
//! the file its rows root over all rows (duplicates included: the contribution is what was
//! submitted), counts, mean score of kept rows, [`SCORER_VERSION`] and
//! [`config_digest`] = blake3 of `"openledger/ingest/config"` ‖ [`SCORER_VERSION`] u32 ‖
//! [`MINHASH_VERSION`] u32 ‖ `min_row_chars` u64 ‖ `max_row_chars` u64 ‖ the eight near-duplicate
//! fields u32 ‖ the eleven [`ScorerConfig`] fields u32 in declaration order (big-endian).
//!
//! # Cost
//!
//! Single-threaded. Measured in release on the shared 2-core development machine
//! (`cargo test -p ingest --release -- --ignored --nocapture throughput`): building an index of
//! 100,000 generated 80-word paragraphs takes about 3 s and 84 MB of memory (30 MB serialised,
//! reloaded in 0.2 s); analysing 10,000 such rows against it takes about 0.4 s (≈ 14 MB/s,
//! ≈ 25,000 rows/s).
//!
//! # Not handled
//!
//! PDF and DOCX files; chat-style JSON (`messages` arrays); TSV (use [`CsvFields::delimiter`]);
//! scripts written without spaces other than Han and kana (Thai, Lao, Khmer: a whole run is one
//! word, so such rows fall back to character shingles only when short); paraphrase, which MinHash
//! does not see.

mod analyze;
mod index;
mod minhash;
mod normalize;
mod parse;
mod score;
mod text;

use alloy_primitives::B256;
pub use primitives::rows::Row;

pub use analyze::{Analysis, DupKind, PENDING_CONTRIBUTION, RowFinding, analyze, describe_row};
pub use index::{DedupIndex, INDEX_FORMAT_VERSION, INDEX_MAGIC};
pub use minhash::{MINHASH_VERSION, NearDupConfig, SEED_DOMAIN};
pub use normalize::normalize;
pub use parse::{FileKind, detect_kind, parse};
pub use score::{FULL_SCORE, HALF, RUN_EXEMPT, SCORER_VERSION, ScorerConfig};

/// A row's place: its contribution id and index there (the primitives row id).
pub type RowRef = primitives::rows::RowId;

/// Default largest file: 5 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// Default most rows per file.
pub const DEFAULT_MAX_ROWS: usize = 100_000;
/// Default shortest row that scores above 0, in characters.
pub const DEFAULT_MIN_ROW_CHARS: usize = 20;
/// Default longest row that scores above 0, in characters (about 5k tokens: longer rows would be
/// truncated by training anyway), and the size markdown sections are cut to.
pub const DEFAULT_MAX_ROW_CHARS: usize = 20_000;

/// Everything that can go wrong in ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("unsupported file type {name:?}: expected .txt, .md, .jsonl or .csv")]
    UnsupportedKind { name: String },
    #[error("file is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("file has no rows")]
    Empty,
    #[error("invalid UTF-8 at byte offset {offset} (line {line})")]
    InvalidUtf8 { offset: usize, line: usize },
    #[error("line {line}, column {column}: control character U+{code:04X} is not allowed (only tab and line breaks)")]
    ControlChar { line: usize, column: usize, code: u32 },
    #[error("line {line}: {msg}")]
    Jsonl { line: usize, msg: String },
    #[error("CSV header: {msg}")]
    CsvHeader { msg: String },
    #[error("CSV record {record} (line {line}): {msg}")]
    Csv { record: u64, line: u64, msg: String },
    #[error("more than {max} rows")]
    TooManyRows { max: usize },
    #[error("dedup index: {0}")]
    Index(String),
}

/// A prompt/completion field pair, with an optional extra input appended to the prompt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPair {
    pub prompt: String,
    pub completion: String,
    /// Appended to the prompt after a blank line when present and non-empty (Alpaca's `input`).
    pub input: Option<String>,
}

impl FieldPair {
    pub fn new(prompt: &str, completion: &str) -> Self {
        FieldPair { prompt: prompt.into(), completion: completion.into(), input: None }
    }
}

/// Which fields (JSON Lines) or columns (CSV) make a row: the first pair whose prompt is present,
/// else the text field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldNames {
    pub text: String,
    pub pairs: Vec<FieldPair>,
}

impl Default for FieldNames {
    /// Text `"text"`; pair `"prompt"` / `"completion"`.
    fn default() -> Self {
        FieldNames { text: "text".into(), pairs: vec![FieldPair::new("prompt", "completion")] }
    }
}

impl FieldNames {
    /// Also accept `"instruction"` / `"output"` (with optional `"input"`) and `"question"` / `"answer"`.
    pub fn with_common_aliases(mut self) -> Self {
        self.pairs.push(FieldPair { input: Some("input".into()), ..FieldPair::new("instruction", "output") });
        self.pairs.push(FieldPair::new("question", "answer"));
        self
    }
}

/// The fields of a JSON Lines object.
pub type JsonlFields = FieldNames;

/// The columns and delimiter of a CSV file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CsvFields {
    pub names: FieldNames,
    pub delimiter: u8,
}

impl Default for CsvFields {
    fn default() -> Self {
        CsvFields { names: FieldNames::default(), delimiter: b',' }
    }
}

/// Ingest parameters; the defaults are the documented ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IngestConfig {
    pub max_file_bytes: u64,
    pub max_rows: usize,
    pub min_row_chars: usize,
    pub max_row_chars: usize,
    pub jsonl: JsonlFields,
    pub csv: CsvFields,
    pub near_dup: NearDupConfig,
    pub scorer: ScorerConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_rows: DEFAULT_MAX_ROWS,
            min_row_chars: DEFAULT_MIN_ROW_CHARS,
            max_row_chars: DEFAULT_MAX_ROW_CHARS,
            jsonl: JsonlFields::default(),
            csv: CsvFields::default(),
            near_dup: NearDupConfig::default(),
            scorer: ScorerConfig::default(),
        }
    }
}

/// blake3 of a file's bytes ([`Analysis::content_hash`]).
pub fn content_hash(bytes: &[u8]) -> B256 {
    primitives::content_hash(bytes)
}

/// The digest of the parameters that decide an analysis (layout in the crate docs, "Analysis").
pub fn config_digest(cfg: &IngestConfig, near: &NearDupConfig) -> B256 {
    let mut h = blake3::Hasher::new();
    h.update(b"openledger/ingest/config");
    h.update(&SCORER_VERSION.to_be_bytes());
    h.update(&MINHASH_VERSION.to_be_bytes());
    h.update(&(cfg.min_row_chars as u64).to_be_bytes());
    h.update(&(cfg.max_row_chars as u64).to_be_bytes());
    for v in index::config_fields(near) {
        h.update(&v.to_be_bytes());
    }
    for v in cfg.scorer.fields() {
        h.update(&v.to_be_bytes());
    }
    B256::from(*h.finalize().as_bytes())
}

/// Parse and analyse a file: its rows and their analysis, with [`Analysis::content_hash`] set.
pub fn ingest_file(
    bytes: &[u8],
    kind: FileKind,
    index: &DedupIndex,
    cfg: &IngestConfig,
) -> Result<(Vec<Row>, Analysis), IngestError> {
    let rows = parse(bytes, kind, cfg)?;
    let mut analysis = analyze(&rows, index, cfg);
    analysis.content_hash = content_hash(bytes);
    Ok((rows, analysis))
}
