//! The span index: a suffix array over the token ids of a Datanet version's rows,
//! in one memory-mapped file.
//!
//! # Order
//! The rows' tokens are concatenated, each row followed by a separator (the
//! largest value of the token width, which no token may take), into `n_slots` =
//! tokens + rows slots. The suffix array lists every token position (separators
//! excluded) by its suffix **up to the end of its row**: token by token, a row's
//! end comparing above every token, and two suffixes that are equal up to the ends
//! of their rows in position order. That is a total order that only depends on
//! each row's own tokens and the rows' order, so: a match never crosses rows; any
//! partition of the rows into shards gives the same array once the shards' arrays
//! are merged; and rows appended later never reorder the existing suffixes, which
//! is what makes [`SpanIndex::extend`] a merge.
//!
//! # Building
//! Rows are cut into contiguous shards of about `shard_tokens` slots (by default
//! one per rayon thread, at most [`DEFAULT_SHARD_TOKENS`], small enough for SA-IS to
//! run mostly in cache). Each shard's suffix array is built by SA-IS over the
//! shard's tokens with one distinct separator symbol per row (numbered in row
//! order, all above the vocabulary), which is exactly the order above; shards are
//! built in parallel on rayon's pool. The shards' arrays are then merged in one
//! k-way pass: each entry carries a key of its suffix's first tokens (4 u16 or 2
//! u32 tokens in a u64), so most comparisons read no tokens; a loser tree makes
//! one comparison per level; the output is cut between threads at splitter
//! suffixes taken from the largest run. [`SpanIndex::extend`] merges the existing
//! array as one more run, or, when the new rows are few, inserts them by binary
//! search. We merge rather than keep shards separate and query them all: the file
//! stays one array, a query stays one binary search (a trace at 10^8 tokens would
//! otherwise pay once per shard), and the result does not depend on how the index
//! was sharded. The price is the merge: O(n log k) key comparisons for k shards,
//! plus a token-by-token comparison (two random reads) when keys tie.
//!
//! # Long repeats
//! Every comparison of two suffixes (the merge, the insertion of `extend`, the
//! out-of-core sort below) reads at most [`DEEP`] tokens: rows that copy long
//! stretches of one another (an adversary's rows, or a corpus's duplicated
//! boilerplate) would otherwise make each comparison as long as the stretch, a
//! sort quadratic in it. Suffixes that agree that far with neither row ending
//! (deep ties) are left together and then ordered by [`resolve_deep`]: prefix
//! doubling over those suffixes only, whose rounds are linear in them and at
//! most log₂ of the longest row / [`DEEP`]. SA-IS within a shard is linear
//! whatever the input.
//!
//! That in-memory build holds the rows and about 16 bytes per token. An index
//! larger than memory is built by [`IndexBuilder`]: rows are pushed one at a
//! time and their tokens streamed into the file, then the suffixes are sorted in
//! groups of key ranges that fit a memory budget, each written straight to its
//! place (see the type). Both give the same file, byte for byte.
//!
//! # File format (version [`FORMAT_VERSION`], all integers little-endian)
//! ```text
//! header, 256 bytes:
//!   0   8  magic "OLSPANIX"
//!   8   4  format version (1)
//!   12  1  token width tw: 2 (vocabulary <= 65,535) or 4
//!   13  1  suffix-array entry width sw: the fewest bytes that hold n_slots - 1
//!   14  1  bucket entry width bw: 4 (n_tokens < 2^32) or 8
//!   15  1  row map kind: 0 = row start array, 1 = row start bitmap with rank directory
//!   16  1  row start width rw (kind 0): 4 (n_slots < 2^32) or 8
//!   17  7  zero
//!   24  32 key: tokenizer hash
//!   56  8  key: Datanet id
//!   64  8  key: Datanet version
//!   72  4  vocabulary size V
//!   76  4  zero
//!   80  8  n_tokens (indexed tokens)
//!   88  8  n_slots (tokens + one separator per row)
//!   96  8  n_rows
//!   104 8  offset of the tokens section
//!   112 8  offset of the suffix array
//!   120 8  offset of the buckets
//!   128 8  offset of the row map
//!   136 8  length of the row map
//!   144 8  offset of the row table
//!   152 8  file length
//!   160 32 blake3 of the tokens section (n_slots * tw bytes)
//!   192 32 blake3 of the row table (n_rows * 33 bytes)
//!   224 32 zero
//! sections, each starting on a multiple of 8:
//!   tokens     n_slots entries of tw bytes; separator = 0xFFFF (tw 2) or 0xFFFFFFFF (tw 4)
//!   suffix array n_tokens entries of sw bytes (slot positions), then 8 zero bytes
//!   buckets    V + 1 entries of bw bytes: bucket[t] = first suffix-array index whose
//!              suffix starts with token t (so count(t) = bucket[t+1] - bucket[t])
//!   row map    kind 0: n_rows entries of rw bytes, the slot where each row starts;
//!              kind 1: ceil(n_slots / 64) u64 words, bit s set when a row starts at
//!              slot s, then one u64 per 8 words (and one more): set bits before it
//!   row table  n_rows records of 33 bytes: contribution id u64, row index u32,
//!              contributor 20 bytes, flags u8 (bit 0: tombstoned)
//! ```
//! The row map takes whichever kind is smaller: 4 or 8 bytes per row, or about
//! 0.14 bytes per slot (short rows). [`SpanIndex::digest`] is the blake3 of the
//! header, which covers the key, every size and the two content hashes (the suffix
//! array, buckets and row map are functions of the tokens; [`SpanIndex::verify`]
//! checks them).

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use memmap2::{Mmap, MmapMut};
use primitives::rows::RowId;
use primitives::{Address, B256};
use rayon::prelude::*;

use crate::{AttrError, sais};

/// The version of the file format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest shard [`SpanIndex::build`] makes when given a shard size of 0 (it
/// then splits the rows evenly between rayon's threads, 2^16 to 2^22 slots per
/// shard): about 70 MB of SA-IS working memory per shard being built, and shards
/// small enough for SA-IS to run mostly in cache.
pub const DEFAULT_SHARD_TOKENS: usize = 1 << 22;
/// The largest vocabulary an index accepts (the bucket table has one entry per token).
pub const MAX_VOCAB: u32 = 1 << 24;

const MAGIC: [u8; 8] = *b"OLSPANIX";
const HEADER_LEN: usize = 256;
const ROW_RECORD_LEN: usize = 33;
const FLAG_TOMBSTONED: u8 = 1;
/// Shards are capped so that SA-IS positions and symbols fit in u32.
const MAX_SHARD_SLOTS: usize = 1 << 31;
/// Entries per parallel merge task.
const MERGE_CHUNK: usize = 1 << 16;
/// The smallest shard the default shard size makes.
const MIN_SHARD_SLOTS: usize = 1 << 16;

/// What an index is the index of: the tokenizer that made its token ids and the
/// Datanet version whose rows it holds. Written into the file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexKey {
    /// The tokenizer's hash (as in the model hash).
    pub tokenizer: B256,
    pub datanet: u64,
    pub version: u64,
}

/// One row to index: its id, contributor, tombstone status and token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    pub id: RowId,
    pub contributor: Address,
    /// Tombstoned rows' tokens are indexed (so that the index of a version equals
    /// the earlier index with the row flagged), but such rows are never credited.
    pub tombstoned: bool,
    pub tokens: Vec<u32>,
}

/// A row a span is credited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowRef {
    pub id: RowId,
    pub contributor: Address,
}

/// A row as the index holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedRow {
    pub id: RowId,
    pub contributor: Address,
    pub tombstoned: bool,
    /// The row's token slots (its separator is the slot after the range).
    pub slots: Range<u64>,
}

/// Bytes of each part of an index file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSizes {
    pub n_tokens: u64,
    pub n_rows: u64,
    /// Token ids proper (`n_tokens * tw`).
    pub tokens: u64,
    /// The row separators in the tokens section (`n_rows * tw`).
    pub separators: u64,
    /// Suffix-array entries (`n_tokens * sw`).
    pub suffix_array: u64,
    /// Row map (position → row).
    pub row_map: u64,
    /// Row table (ids, contributors, flags).
    pub row_table: u64,
    /// The per-token bucket table (unigram counts).
    pub buckets: u64,
    /// The whole file, header and padding included.
    pub file: u64,
    pub token_width: u8,
    pub sa_width: u8,
}

impl IndexSizes {
    fn per_token(&self, b: u64) -> f64 {
        if self.n_tokens == 0 { 0.0 } else { b as f64 / self.n_tokens as f64 }
    }
    /// (token ids + suffix array) / token.
    pub fn tokens_and_sa_per_token(&self) -> f64 {
        self.per_token(self.tokens + self.suffix_array)
    }
    /// (row map + separators) / token: what it costs to know where rows are.
    pub fn row_map_per_token(&self) -> f64 {
        self.per_token(self.row_map + self.separators)
    }
    /// The whole file / token.
    pub fn file_per_token(&self) -> f64 {
        self.per_token(self.file)
    }
}

// ---------------------------------------------------------------------------
// Token and position types

/// A token as stored: u16 or u32, the separator being the type's maximum.
pub(crate) trait Tok: Copy + Ord + Eq + Send + Sync + 'static {
    const SEP: Self;
    /// Tokens packed into a u64 merge key.
    const KEY_TOKENS: usize;
    fn from_u32(v: u32) -> Self;
    fn to_u32(self) -> u32;
}

impl Tok for u16 {
    const SEP: u16 = u16::MAX;
    const KEY_TOKENS: usize = 4;
    #[inline]
    fn from_u32(v: u32) -> u16 {
        v as u16
    }
    #[inline]
    fn to_u32(self) -> u32 {
        self as u32
    }
}

impl Tok for u32 {
    const SEP: u32 = u32::MAX;
    const KEY_TOKENS: usize = 2;
    #[inline]
    fn from_u32(v: u32) -> u32 {
        v
    }
    #[inline]
    fn to_u32(self) -> u32 {
        self
    }
}

/// A slot position in the merge buffers: u32 while the index has fewer than 2^32 slots.
trait Pos: Copy + Send + Sync + 'static {
    fn new(v: usize) -> Self;
    fn get(self) -> usize;
}

impl Pos for u32 {
    #[inline]
    fn new(v: usize) -> u32 {
        v as u32
    }
    #[inline]
    fn get(self) -> usize {
        self as usize
    }
}

impl Pos for u64 {
    #[inline]
    fn new(v: usize) -> u64 {
        v as u64
    }
    #[inline]
    fn get(self) -> usize {
        self as usize
    }
}

/// Plain integers that may be viewed in place in the (page-aligned) map.
trait Plain: Copy {}
impl Plain for u16 {}
impl Plain for u32 {}
impl Plain for u64 {}
impl Plain for [u64; 2] {}
impl Plain for [u64; 3] {}

fn cast<T: Plain>(b: &[u8]) -> &[T] {
    let size = std::mem::size_of::<T>();
    assert!((b.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) && b.len().is_multiple_of(size));
    // SAFETY: the pointer is aligned for T, the length is a whole number of T, and
    // every bit pattern is a valid T (plain integers); the lifetime is b's.
    unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<T>(), b.len() / size) }
}

fn cast_mut<T: Plain>(b: &mut [u8]) -> &mut [T] {
    let size = std::mem::size_of::<T>();
    assert!((b.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) && b.len().is_multiple_of(size));
    // SAFETY: as in `cast`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<T>(), b.len() / size) }
}

fn as_bytes<T: Plain>(v: &[T]) -> &[u8] {
    // SAFETY: plain integers have no padding; the same memory viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// How many tokens a comparison of two suffixes reads before it leaves them to
/// [`resolve_deep`]: past it, sorting by comparisons would cost as much per
/// comparison as the suffixes repeat (rows that copy long stretches of one
/// another), which an adversary controls.
const DEEP: usize = 64;

/// Whether suffixes `a` and `b` agree through their first [`DEEP`] tokens with
/// neither row ending there (a deep tie).
fn deep_tie<T: Tok>(toks: &[T], a: usize, b: usize) -> bool {
    a != b && (0..DEEP).all(|k| toks[a + k] == toks[b + k] && toks[a + k] != T::SEP)
}

/// Suffix `a` against suffix `b` in the index order (both token positions).
#[inline]
fn cmp_pos<T: Tok>(toks: &[T], a: usize, b: usize) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let mut k = 0;
    loop {
        let (x, y) = (toks[a + k], toks[b + k]);
        if x != y {
            return x.cmp(&y);
        }
        if x == T::SEP {
            return a.cmp(&b);
        }
        k += 1;
    }
}

// ---------------------------------------------------------------------------
// Layout

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    vocab: u32,
    tw: usize,
    sw: usize,
    bw: usize,
    rowmap_kind: u8,
    rw: usize,
    n_tokens: u64,
    n_slots: u64,
    n_rows: u64,
    tokens_off: u64,
    sa_off: u64,
    buckets_off: u64,
    rowmap_off: u64,
    rowmap_len: u64,
    rows_off: u64,
    file_len: u64,
}

fn align8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

fn bitmap_words(n_slots: u64) -> u64 {
    n_slots.div_ceil(64)
}

fn rank_dir_len(n_slots: u64) -> u64 {
    bitmap_words(n_slots) / 8 + 1
}

impl Layout {
    fn new(vocab: u32, n_tokens: u64, n_slots: u64, n_rows: u64) -> Layout {
        let tw = if vocab <= u16::MAX as u32 { 2 } else { 4 };
        let max_pos = n_slots.saturating_sub(1);
        let sw = (((64 - max_pos.leading_zeros()) as usize).div_ceil(8)).max(1);
        let bw = if n_tokens <= u32::MAX as u64 { 4 } else { 8 };
        let rw = if n_slots <= u32::MAX as u64 { 4 } else { 8 };
        let starts_len = n_rows * rw as u64;
        let bitmap_len = (bitmap_words(n_slots) + rank_dir_len(n_slots)) * 8;
        let (rowmap_kind, rowmap_len) = if starts_len <= bitmap_len { (0, starts_len) } else { (1, bitmap_len) };
        let tokens_off = HEADER_LEN as u64;
        let sa_off = align8(tokens_off + n_slots * tw as u64);
        let buckets_off = align8(sa_off + n_tokens * sw as u64 + 8);
        let rowmap_off = align8(buckets_off + (vocab as u64 + 1) * bw as u64);
        let rows_off = align8(rowmap_off + rowmap_len);
        let file_len = align8(rows_off + n_rows * ROW_RECORD_LEN as u64);
        Layout {
            vocab,
            tw,
            sw,
            bw,
            rowmap_kind,
            rw,
            n_tokens,
            n_slots,
            n_rows,
            tokens_off,
            sa_off,
            buckets_off,
            rowmap_off,
            rowmap_len,
            rows_off,
            file_len,
        }
    }

    fn tokens_range(&self) -> Range<usize> {
        self.tokens_off as usize..(self.tokens_off + self.n_slots * self.tw as u64) as usize
    }
    fn sa_range(&self) -> Range<usize> {
        self.sa_off as usize..(self.sa_off + self.n_tokens * self.sw as u64 + 8) as usize
    }
    fn buckets_range(&self) -> Range<usize> {
        self.buckets_off as usize..(self.buckets_off + (self.vocab as u64 + 1) * self.bw as u64) as usize
    }
    fn rowmap_range(&self) -> Range<usize> {
        self.rowmap_off as usize..(self.rowmap_off + self.rowmap_len) as usize
    }
    fn rows_range(&self) -> Range<usize> {
        self.rows_off as usize..(self.rows_off + self.n_rows * ROW_RECORD_LEN as u64) as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    layout: Layout,
    key: IndexKey,
    tokens_hash: [u8; 32],
    rows_hash: [u8; 32],
}

fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let l = &self.layout;
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12] = l.tw as u8;
        h[13] = l.sw as u8;
        h[14] = l.bw as u8;
        h[15] = l.rowmap_kind;
        h[16] = l.rw as u8;
        h[24..56].copy_from_slice(self.key.tokenizer.as_slice());
        h[56..64].copy_from_slice(&self.key.datanet.to_le_bytes());
        h[64..72].copy_from_slice(&self.key.version.to_le_bytes());
        h[72..76].copy_from_slice(&l.vocab.to_le_bytes());
        for (at, v) in [
            (80, l.n_tokens),
            (88, l.n_slots),
            (96, l.n_rows),
            (104, l.tokens_off),
            (112, l.sa_off),
            (120, l.buckets_off),
            (128, l.rowmap_off),
            (136, l.rowmap_len),
            (144, l.rows_off),
            (152, l.file_len),
        ] {
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[160..192].copy_from_slice(&self.tokens_hash);
        h[192..224].copy_from_slice(&self.rows_hash);
        h
    }

    fn decode(h: &[u8], file_len: u64) -> Result<Header, String> {
        if h.len() < HEADER_LEN {
            return Err(format!("{} bytes, shorter than the {HEADER_LEN}-byte header", h.len()));
        }
        if h[0..8] != MAGIC {
            return Err("bad magic (not written by this crate)".into());
        }
        let version = rd_u32(h, 8);
        if version != FORMAT_VERSION {
            return Err(format!("format version {version}, this build reads {FORMAT_VERSION}"));
        }
        let vocab = rd_u32(h, 72);
        if vocab == 0 || vocab > MAX_VOCAB {
            return Err(format!("vocabulary of {vocab} tokens"));
        }
        let layout = Layout::new(vocab, rd_u64(h, 80), rd_u64(h, 88), rd_u64(h, 96));
        let stored = (
            h[12] as usize,
            h[13] as usize,
            h[14] as usize,
            h[15],
            h[16] as usize,
            [104, 112, 120, 128, 136, 144, 152].map(|at| rd_u64(h, at)),
        );
        let expected = (
            layout.tw,
            layout.sw,
            layout.bw,
            layout.rowmap_kind,
            layout.rw,
            [
                layout.tokens_off,
                layout.sa_off,
                layout.buckets_off,
                layout.rowmap_off,
                layout.rowmap_len,
                layout.rows_off,
                layout.file_len,
            ],
        );
        if stored != expected {
            return Err("widths or section offsets do not match the counts".into());
        }
        if layout.n_tokens + layout.n_rows != layout.n_slots {
            return Err("n_slots is not n_tokens + n_rows".into());
        }
        if layout.file_len != file_len {
            return Err(format!("file is {file_len} bytes, header says {}", layout.file_len));
        }
        let key = IndexKey { tokenizer: B256::from_slice(&h[24..56]), datanet: rd_u64(h, 56), version: rd_u64(h, 64) };
        Ok(Header {
            layout,
            key,
            tokens_hash: h[160..192].try_into().unwrap(),
            rows_hash: h[192..224].try_into().unwrap(),
        })
    }
}

// ---------------------------------------------------------------------------
// Read-only views over the sections

#[derive(Clone, Copy)]
pub(crate) struct SaView<'a> {
    b: &'a [u8],
    w: usize,
    mask: u64,
}

impl<'a> SaView<'a> {
    fn new(b: &'a [u8], w: usize) -> SaView<'a> {
        SaView { b, w, mask: if w == 8 { u64::MAX } else { (1u64 << (8 * w)) - 1 } }
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> usize {
        let o = i * self.w;
        (u64::from_le_bytes(self.b[o..o + 8].try_into().unwrap()) & self.mask) as usize
    }
}

#[derive(Clone, Copy)]
enum RowMapView<'a> {
    Starts { b: &'a [u8], w: usize, n: usize },
    Bitmap { words: &'a [u64], dir: &'a [u64], n: usize },
}

impl RowMapView<'_> {
    fn start_at(b: &[u8], w: usize, i: usize) -> usize {
        if w == 4 { rd_u32(b, i * 4) as usize } else { rd_u64(b, i * 8) as usize }
    }

    /// The row holding slot `s`.
    #[inline]
    fn row_of(&self, s: usize) -> usize {
        match *self {
            RowMapView::Starts { b, w, n } => {
                // The last row whose start is <= s.
                let (mut lo, mut hi) = (0usize, n);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if Self::start_at(b, w, mid) <= s {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
            RowMapView::Bitmap { words, dir, .. } => {
                // rank1(s + 1) - 1: set bits at or before s.
                let w = s / 64;
                let mut r = dir[w / 8];
                for &x in &words[w / 8 * 8..w] {
                    r += x.count_ones() as u64;
                }
                let bit = s % 64;
                let mask = if bit == 63 { u64::MAX } else { (1u64 << (bit + 1)) - 1 };
                r += (words[w] & mask).count_ones() as u64;
                (r - 1) as usize
            }
        }
    }

    /// The first slot of row `r`.
    fn row_start(&self, r: usize) -> usize {
        match *self {
            RowMapView::Starts { b, w, .. } => Self::start_at(b, w, r),
            RowMapView::Bitmap { words, dir, .. } => {
                // select1(r): the block holding the (r+1)-th set bit, then the word, then the bit.
                let target = r as u64;
                let blocks = dir.len();
                let (mut lo, mut hi) = (0usize, blocks);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if dir[mid] <= target {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let mut seen = dir[lo];
                let mut w = lo * 8;
                loop {
                    let c = words[w].count_ones() as u64;
                    if seen + c > target {
                        break;
                    }
                    seen += c;
                    w += 1;
                }
                let mut x = words[w];
                for _ in 0..(target - seen) {
                    x &= x - 1;
                }
                w * 64 + x.trailing_zeros() as usize
            }
        }
    }

    fn n(&self) -> usize {
        match *self {
            RowMapView::Starts { n, .. } | RowMapView::Bitmap { n, .. } => n,
        }
    }
}

/// Typed views of an index's sections, for one token width.
#[derive(Clone, Copy)]
pub(crate) struct View<'a, T> {
    pub(crate) toks: &'a [T],
    pub(crate) sa: SaView<'a>,
    buckets: &'a [u8],
    bw: usize,
    rowmap: RowMapView<'a>,
    rows: &'a [u8],
    pub(crate) n_tokens: usize,
    n_slots: usize,
    pub(crate) vocab: u32,
    any_tombstoned: bool,
}

pub(crate) enum AnyView<'a> {
    U16(View<'a, u16>),
    U32(View<'a, u32>),
}

/// Runs `$body` with `$v` bound to the typed view, for either token width.
macro_rules! with_view {
    ($any:expr, $v:ident => $body:expr) => {
        match $any {
            $crate::index::AnyView::U16($v) => $body,
            $crate::index::AnyView::U32($v) => $body,
        }
    };
}
pub(crate) use with_view;

impl<'a, T: Tok> View<'a, T> {
    #[inline]
    fn bucket(&self, t: usize) -> usize {
        if self.bw == 4 { rd_u32(self.buckets, t * 4) as usize } else { rd_u64(self.buckets, t * 8) as usize }
    }

    /// The suffix-array range of suffixes starting with token `t` (< vocab).
    #[inline]
    pub(crate) fn bucket_range(&self, t: T) -> (usize, usize) {
        let t = t.to_u32() as usize;
        (self.bucket(t), self.bucket(t + 1))
    }

    /// Occurrences of token `t` (< vocab) in the index.
    #[inline]
    pub(crate) fn unigram(&self, t: T) -> u64 {
        let (lo, hi) = self.bucket_range(t);
        (hi - lo) as u64
    }

    /// The suffix at slot `p` against the query `q`, knowing that their first `k`
    /// tokens agree: (order of the suffix relative to q, common prefix length).
    /// `Equal` means q is a prefix of the suffix. q holds no separator.
    #[inline]
    fn cmp_query(&self, p: usize, q: &[T], mut k: usize) -> (Ordering, usize) {
        let toks = &self.toks[p..];
        while k < q.len() {
            // A row ends with a separator that q never holds, so this stays in bounds.
            let t = toks[k];
            if t != q[k] {
                return (t.cmp(&q[k]), k);
            }
            k += 1;
        }
        (Ordering::Equal, k)
    }

    /// Binary search in [lo, hi), all of whose suffixes start with q[0], for the first
    /// suffix not below q (`upper`: not below or prefixed by q). Returns the index and
    /// the common prefix lengths of q with the suffixes just before and at it (1 where
    /// the search never compared one).
    fn search(&self, q: &[T], mut lo: usize, mut hi: usize, upper: bool) -> (usize, usize, usize) {
        let (mut llcp, mut rlcp) = (1usize, 1usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (ord, l) = self.cmp_query(self.sa.get(mid), q, llcp.min(rlcp));
            let right = match ord {
                Ordering::Less => true,
                Ordering::Equal => upper,
                Ordering::Greater => false,
            };
            if right {
                lo = mid + 1;
                llcp = l;
            } else {
                hi = mid;
                rlcp = l;
            }
        }
        (lo, llcp, rlcp)
    }

    /// The suffix-array range of the suffixes that start with q (q in vocabulary).
    pub(crate) fn find(&self, q: &[T]) -> Range<usize> {
        let Some(&first) = q.first() else { return 0..self.n_tokens };
        let (lo, hi) = self.bucket_range(first);
        if q.len() == 1 || lo == hi {
            return lo..hi;
        }
        let (start, _, _) = self.search(q, lo, hi, false);
        let (end, _, _) = self.search(q, start, hi, true);
        start..end
    }

    /// The length of the longest prefix of q that occurs in the index (q in vocabulary).
    pub(crate) fn longest_prefix(&self, q: &[T]) -> usize {
        let Some(&first) = q.first() else { return 0 };
        let (lo, hi) = self.bucket_range(first);
        if lo == hi {
            return 0;
        }
        if q.len() == 1 {
            return 1;
        }
        // The longest match is with a neighbour of q's insertion point.
        let (_, llcp, rlcp) = self.search(q, lo, hi, false);
        llcp.max(rlcp)
    }

    fn record(&self, r: usize) -> &'a [u8] {
        &self.rows[r * ROW_RECORD_LEN..(r + 1) * ROW_RECORD_LEN]
    }

    #[inline]
    pub(crate) fn tombstoned(&self, r: usize) -> bool {
        self.any_tombstoned && self.record(r)[32] & FLAG_TOMBSTONED != 0
    }

    pub(crate) fn row_ref(&self, r: usize) -> RowRef {
        let b = self.record(r);
        RowRef {
            id: RowId { contribution: rd_u64(b, 0), index: rd_u32(b, 8) },
            contributor: Address::from_slice(&b[12..32]),
        }
    }

    fn indexed_row(&self, r: usize) -> IndexedRow {
        let rr = self.row_ref(r);
        let start = self.rowmap.row_start(r) as u64;
        let end = if r + 1 < self.rowmap.n() { self.rowmap.row_start(r + 1) as u64 } else { self.n_slots as u64 } - 1;
        IndexedRow { id: rr.id, contributor: rr.contributor, tombstoned: self.tombstoned(r), slots: start..end }
    }

    /// Whether any occurrence in the suffix-array range lies in a row that is not tombstoned.
    pub(crate) fn any_live(&self, range: Range<usize>) -> bool {
        if !self.any_tombstoned {
            return !range.is_empty();
        }
        range.into_iter().any(|i| !self.tombstoned(self.rowmap.row_of(self.sa.get(i))))
    }

    /// The first `max` rows (in row order) that are not tombstoned and hold an
    /// occurrence in the suffix-array range.
    pub(crate) fn live_rows(&self, range: Range<usize>, max: usize) -> Vec<usize> {
        let mut kept: Vec<usize> = Vec::with_capacity(max + 1);
        if max == 0 {
            return kept;
        }
        // Once `max` rows are kept, positions at or after the start of the last
        // kept row cannot improve the set: skip them without a row lookup.
        let mut limit = usize::MAX;
        for i in range {
            let p = self.sa.get(i);
            if p >= limit {
                continue;
            }
            let r = self.rowmap.row_of(p);
            if self.tombstoned(r) {
                continue;
            }
            if let Err(at) = kept.binary_search(&r) {
                kept.insert(at, r);
                kept.truncate(max);
                if kept.len() == max {
                    limit = self.rowmap.row_start(kept[max - 1]);
                }
            }
        }
        kept
    }

    /// `q` as stored tokens, or `None` if a token is outside the vocabulary.
    pub(crate) fn convert(&self, q: &[u32]) -> Option<Vec<T>> {
        q.iter().map(|&t| (t < self.vocab).then(|| T::from_u32(t))).collect()
    }
}

// ---------------------------------------------------------------------------
// The index

/// A span index, memory-mapped from its file. Cheap to share between threads
/// (`&SpanIndex` is `Sync`); queries never write.
pub struct SpanIndex {
    map: Mmap,
    header: Header,
    path: PathBuf,
    any_tombstoned: bool,
}

impl std::fmt::Debug for SpanIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanIndex")
            .field("path", &self.path)
            .field("key", &self.header.key)
            .field("n_tokens", &self.header.layout.n_tokens)
            .field("n_rows", &self.header.layout.n_rows)
            .finish()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AttrError + '_ {
    move |source| AttrError::Io { path: path.to_path_buf(), source }
}

impl SpanIndex {
    /// Build the index of `rows` (in strictly increasing row-id order, every token
    /// below `vocab`) into a new file at `path`, then open it. The file is written as
    /// `<path>.building.<pid>.<n>` and renamed over `path` when complete, so an index already
    /// at `path` stays valid for whoever has it open.
    /// Shards of about `shard_tokens` slots (0: one per thread, at most
    /// [`DEFAULT_SHARD_TOKENS`]) are sorted
    /// in parallel on the current rayon pool and merged; the file is the same for any
    /// shard size and thread count. `progress(done, total)` is called on the calling
    /// thread as work units (tokens sorted, then tokens merged) complete.
    pub fn build(
        key: IndexKey,
        rows: &[IndexRow],
        vocab: u32,
        shard_tokens: usize,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<SpanIndex, AttrError> {
        if vocab == 0 || vocab > MAX_VOCAB {
            return Err(AttrError::Vocab(vocab as u64));
        }
        check_rows(None, rows, vocab)?;
        write_index(key, None, rows, vocab, shard_tokens, path, progress)
    }

    /// A new index at `path` (this index's own file too: it is replaced when the new
    /// one is complete, and this one stays valid) holding this index's rows
    /// (tombstone flags included) followed by `rows`, whose ids must all
    /// come after this index's last row: the new rows are sorted as shards and merged
    /// into the existing suffix array. Byte-identical to building all rows afresh.
    pub fn extend(
        &self,
        key: IndexKey,
        rows: &[IndexRow],
        shard_tokens: usize,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<SpanIndex, AttrError> {
        check_rows(self.last_row_id(), rows, self.vocab())?;
        write_index(key, Some(self), rows, self.vocab(), shard_tokens, path, progress)
    }

    /// Open an index file.
    pub fn open(path: &Path) -> Result<SpanIndex, AttrError> {
        let file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        // SAFETY: the file is only read through this map; an index file is written
        // once and then only modified by `mark_tombstoned`, whose documentation says
        // not to run it while the file is open elsewhere.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        let header =
            Header::decode(&map, len).map_err(|reason| AttrError::Format { path: path.to_path_buf(), reason })?;
        let l = header.layout;
        let rows = &map[l.rows_range()];
        let any_tombstoned = rows.chunks_exact(ROW_RECORD_LEN).any(|r| r[32] & FLAG_TOMBSTONED != 0);
        Ok(SpanIndex { map, header, path: path.to_path_buf(), any_tombstoned })
    }

    /// Flag rows of the index file at `path` as tombstoned, in place, and give the
    /// file its new key (the version the tombstones make). Returns how many rows
    /// were not flagged before. Run it on a file no one has open (or on a copy).
    pub fn mark_tombstoned(path: &Path, key: IndexKey, ids: &[RowId]) -> Result<usize, AttrError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        // SAFETY: the caller guarantees that no one else maps the file meanwhile.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(io_err(path))?;
        let mut header =
            Header::decode(&map, len).map_err(|reason| AttrError::Format { path: path.to_path_buf(), reason })?;
        let l = header.layout;
        let rows = &mut map[l.rows_range()];
        let id_at = |rows: &[u8], r: usize| {
            let b = &rows[r * ROW_RECORD_LEN..];
            RowId { contribution: rd_u64(b, 0), index: rd_u32(b, 8) }
        };
        let mut targets = Vec::with_capacity(ids.len());
        for id in ids {
            // Rows are sorted by id.
            let (mut lo, mut hi) = (0usize, l.n_rows as usize);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if id_at(rows, mid) < *id { lo = mid + 1 } else { hi = mid }
            }
            if lo == l.n_rows as usize || id_at(rows, lo) != *id {
                return Err(AttrError::UnknownRow(*id));
            }
            targets.push(lo);
        }
        let mut newly = 0;
        for r in targets {
            let flag = &mut rows[r * ROW_RECORD_LEN + 32];
            if *flag & FLAG_TOMBSTONED == 0 {
                *flag |= FLAG_TOMBSTONED;
                newly += 1;
            }
        }
        header.rows_hash = *blake3::hash(rows).as_bytes();
        header.key = key;
        map[..HEADER_LEN].copy_from_slice(&header.encode());
        map.flush().map_err(io_err(path))?;
        Ok(newly)
    }

    pub(crate) fn view(&self) -> AnyView<'_> {
        let l = &self.header.layout;
        let m = &self.map[..];
        let rowmap = if l.rowmap_kind == 0 {
            RowMapView::Starts { b: &m[l.rowmap_range()], w: l.rw, n: l.n_rows as usize }
        } else {
            let words = bitmap_words(l.n_slots) as usize;
            let all: &[u64] = cast(&m[l.rowmap_range()]);
            RowMapView::Bitmap { words: &all[..words], dir: &all[words..], n: l.n_rows as usize }
        };
        let sa = SaView::new(&m[l.sa_range()], l.sw);
        let buckets = &m[l.buckets_range()];
        let rows = &m[l.rows_range()];
        macro_rules! v {
            ($t:ty) => {
                View::<$t> {
                    toks: cast(&m[l.tokens_range()]),
                    sa,
                    buckets,
                    bw: l.bw,
                    rowmap,
                    rows,
                    n_tokens: l.n_tokens as usize,
                    n_slots: l.n_slots as usize,
                    vocab: l.vocab,
                    any_tombstoned: self.any_tombstoned,
                }
            };
        }
        if l.tw == 2 { AnyView::U16(v!(u16)) } else { AnyView::U32(v!(u32)) }
    }

    /// The key in the file header.
    pub fn key(&self) -> IndexKey {
        self.header.key
    }

    /// blake3 of the file header: names this exact index (key, sizes, tokens, rows and flags).
    pub fn digest(&self) -> B256 {
        B256::from(*blake3::hash(&self.header.encode()).as_bytes())
    }

    pub fn vocab(&self) -> u32 {
        self.header.layout.vocab
    }

    /// Indexed tokens (separators excluded).
    pub fn n_tokens(&self) -> u64 {
        self.header.layout.n_tokens
    }

    pub fn n_rows(&self) -> u64 {
        self.header.layout.n_rows
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Row `i` of the index (in row order).
    pub fn row(&self, i: u64) -> Option<IndexedRow> {
        (i < self.n_rows()).then(|| with_view!(self.view(), v => v.indexed_row(i as usize)))
    }

    fn last_row_id(&self) -> Option<RowId> {
        self.n_rows().checked_sub(1).and_then(|i| self.row(i)).map(|r| r.id)
    }

    /// The bytes of each part of the file.
    pub fn sizes(&self) -> IndexSizes {
        let l = &self.header.layout;
        IndexSizes {
            n_tokens: l.n_tokens,
            n_rows: l.n_rows,
            tokens: l.n_tokens * l.tw as u64,
            separators: l.n_rows * l.tw as u64,
            suffix_array: l.n_tokens * l.sw as u64,
            row_map: l.rowmap_len,
            row_table: l.n_rows * ROW_RECORD_LEN as u64,
            buckets: (l.vocab as u64 + 1) * l.bw as u64,
            file: l.file_len,
            token_width: l.tw as u8,
            sa_width: l.sw as u8,
        }
    }

    /// Ask the kernel to read the whole file into the page cache ahead of queries.
    pub fn prefetch(&self) {
        #[cfg(unix)]
        let _ = self.map.advise(memmap2::Advice::WillNeed);
    }

    /// The suffix-array range of the suffixes that start with `q` (empty if a token
    /// of q is outside the vocabulary; everything for an empty q). O(|q| log n).
    pub fn find(&self, q: &[u32]) -> Range<u64> {
        with_view!(self.view(), v => match v.convert(q) {
            Some(q) => {
                let r = v.find(&q);
                r.start as u64..r.end as u64
            }
            None => 0..0,
        })
    }

    /// How many times `q` occurs in the index (within rows).
    pub fn count(&self, q: &[u32]) -> u64 {
        let r = self.find(q);
        r.end - r.start
    }

    /// Occurrences of the single token `t`, from the bucket table (0 outside the vocabulary).
    pub fn unigram_count(&self, t: u32) -> u64 {
        if t >= self.vocab() {
            return 0;
        }
        with_view!(self.view(), v => v.unigram(Tok::from_u32(t)))
    }

    /// The first `max` rows, in row order, that contain `q` and are not tombstoned.
    pub fn rows_containing(&self, q: &[u32], max: usize) -> Vec<RowRef> {
        with_view!(self.view(), v => match v.convert(q) {
            Some(q) => v.live_rows(v.find(&q), max).into_iter().map(|r| v.row_ref(r)).collect(),
            None => Vec::new(),
        })
    }

    /// The slot positions of every occurrence of `q`, in suffix-array order.
    pub fn positions(&self, q: &[u32]) -> Vec<u64> {
        with_view!(self.view(), v => match v.convert(q) {
            Some(q) => v.find(&q).map(|i| v.sa.get(i) as u64).collect(),
            None => Vec::new(),
        })
    }

    /// Check the file against itself: the content hashes, the rows' separators and
    /// row map, the suffix array (a permutation of the token slots, in order) and the
    /// buckets. O(n) comparisons; what a verifier runs on an index it was handed.
    pub fn verify(&self) -> Result<(), AttrError> {
        let corrupt = |reason: String| AttrError::Corrupt { path: self.path.clone(), reason };
        let l = self.header.layout;
        if *blake3::hash(&self.map[l.tokens_range()]).as_bytes() != self.header.tokens_hash {
            return Err(corrupt("tokens do not match their hash".into()));
        }
        if *blake3::hash(&self.map[l.rows_range()]).as_bytes() != self.header.rows_hash {
            return Err(corrupt("row table does not match its hash".into()));
        }
        with_view!(self.view(), v => verify_view(&v).map_err(corrupt))
    }
}

fn verify_view<T: Tok>(v: &View<'_, T>) -> Result<(), String> {
    let n_rows = v.rowmap.n();
    // Separators sit exactly at the ends of rows.
    let mut row = 0usize;
    let mut start = 0usize;
    for (s, &t) in v.toks.iter().enumerate() {
        if t == T::SEP {
            if row >= n_rows || v.rowmap.row_start(row) != start {
                return Err(format!("row map disagrees with the separators at row {row}"));
            }
            row += 1;
            start = s + 1;
        } else if t.to_u32() >= v.vocab {
            return Err(format!("token {} at slot {s} is outside the vocabulary", t.to_u32()));
        }
    }
    if row != n_rows || start != v.n_slots {
        return Err("the tokens do not end with the last row's separator".into());
    }
    for r in 1..n_rows {
        let (a, b) = (v.row_ref(r - 1).id, v.row_ref(r).id);
        if a >= b {
            return Err(format!("rows out of order: {b:?} after {a:?}"));
        }
    }
    // The suffix array: every token slot once, in order.
    let mut seen = vec![false; v.n_slots];
    for i in 0..v.n_tokens {
        let p = v.sa.get(i);
        if p >= v.n_slots || v.toks[p] == T::SEP || seen[p] {
            return Err(format!("suffix array entry {i} ({p}) is not a new token slot"));
        }
        seen[p] = true;
    }
    let unsorted = (1..v.n_tokens)
        .into_par_iter()
        .find_first(|&i| cmp_pos(v.toks, v.sa.get(i - 1), v.sa.get(i)) != Ordering::Less);
    if let Some(i) = unsorted {
        return Err(format!("suffix array out of order at entry {i}"));
    }
    // Buckets: the first entry of each token's run.
    let mut expect = 0usize;
    for t in 0..v.vocab as usize {
        if v.bucket(t) != expect {
            return Err(format!("bucket of token {t} is wrong"));
        }
        while expect < v.n_tokens && v.toks[v.sa.get(expect)].to_u32() as usize == t {
            expect += 1;
        }
    }
    if v.bucket(v.vocab as usize) != v.n_tokens || expect != v.n_tokens {
        return Err("buckets do not end at n_tokens".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Building

fn check_rows(after: Option<RowId>, rows: &[IndexRow], vocab: u32) -> Result<(), AttrError> {
    let mut prev = after;
    for r in rows {
        if let Some(p) = prev
            && r.id <= p
        {
            return Err(AttrError::RowOrder { prev: p, next: r.id });
        }
        prev = Some(r.id);
    }
    let bad = rows.par_iter().find_map_first(|r| r.tokens.iter().find(|&&t| t >= vocab).map(|&t| (r.id, t)));
    match bad {
        Some((row, token)) => Err(AttrError::TokenOutOfVocab { row, token, vocab }),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_index(
    key: IndexKey,
    old: Option<&SpanIndex>,
    rows: &[IndexRow],
    vocab: u32,
    shard_tokens: usize,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SpanIndex, AttrError> {
    let (old_tokens, old_rows) = old.map_or((0, 0), |o| (o.header.layout.n_tokens, o.header.layout.n_rows));
    let new_tokens: u64 = rows.iter().map(|r| r.tokens.len() as u64).sum();
    let n_rows = old_rows + rows.len() as u64;
    let n_tokens = old_tokens + new_tokens;
    let n_slots = n_tokens + n_rows;
    let layout = Layout::new(vocab, n_tokens, n_slots, n_rows);

    // Written beside the destination and renamed over it when complete: a reader
    // never sees a partial file, and one that has the old file mapped keeps it.
    let tmp = building_path(path);
    let written = (|| {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).map_err(io_err(&tmp))?;
        file.set_len(layout.file_len).map_err(io_err(&tmp))?;
        let mut map = map_mut(&file, &tmp)?;
        let (tokens_hash, rows_hash) = match (layout.tw, n_slots <= u32::MAX as u64) {
            (2, true) => fill::<u16, u32>(&mut map, &layout, old, rows, shard_tokens, &tmp, progress)?,
            (2, false) => fill::<u16, u64>(&mut map, &layout, old, rows, shard_tokens, &tmp, progress)?,
            (_, true) => fill::<u32, u32>(&mut map, &layout, old, rows, shard_tokens, &tmp, progress)?,
            (_, false) => fill::<u32, u64>(&mut map, &layout, old, rows, shard_tokens, &tmp, progress)?,
        };
        let header = Header { layout, key, tokens_hash, rows_hash };
        map[..HEADER_LEN].copy_from_slice(&header.encode());
        map.flush().map_err(io_err(&tmp))?;
        drop(map);
        publish(file, &tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    SpanIndex::open(path)
}

// ---------------------------------------------------------------------------
// Building from rows handed over one at a time

/// The working memory [`IndexBuilder::finish`] gives its suffix sort when given 0.
pub const DEFAULT_BUILD_MEMORY: u64 = 1 << 30;
/// Keys sampled to place the boundaries of an out-of-core build's groups.
const SAMPLE_KEYS: usize = 1 << 20;
/// Slots per task of an out-of-core build's scans.
const SCAN_CHUNK: usize = 1 << 22;
/// The most groups (each a scan of the tokens) an out-of-core sort makes: a
/// budget too small for that many is raised to what they need.
const MAX_GROUPS: u64 = 256;
/// Suffix-array entries per write of an out-of-core build.
const WRITE_CHUNK: usize = 1 << 20;

/// Builds an index from rows handed over one at a time, so that neither the rows
/// nor (past the memory budget) the suffix array need be held in memory: an index
/// of 10^9 tokens builds in a few GiB.
///
/// [`push`](IndexBuilder::push) streams each row's tokens into the file (written
/// as `<path>.building.<pid>.<n>`, renamed over `path` by [`finish`](IndexBuilder::finish)),
/// keeping only 41 bytes per row (its first slot and its row-table record) and the
/// token histogram. `finish` then sorts the suffixes one of two ways, both giving
/// the same file as [`SpanIndex::build`] of the same rows, byte for byte:
/// - **in memory** when the shards' runs and their merge fit the budget (about
///   16 bytes per token): SA-IS shards merged, as `build` does;
/// - **out of core** otherwise: the suffixes are cut into groups by their first
///   tokens (a range of merge keys each, placed at quantiles of a sample of keys
///   so that a group fits the budget); groups are sorted one after the other, in
///   key order, so each one's entries go straight to their final place in the
///   file. A group is gathered by one parallel scan of the tokens (mapped from the
///   file being written), sorted in parallel by the index order (keys first; tokens
///   read only when keys tie) and written out. Working memory: the group (12–16
///   bytes per entry) plus the mapped tokens the page cache keeps.
///
/// The out-of-core sort compares suffixes through [`DEEP`] tokens at most, and
/// orders the deep ties it leaves by prefix doubling (see the module docs), so
/// rows that repeat long stretches cost a bounded factor more, not a sort as long
/// as the stretch; that pass holds 40 bytes per deeply tied suffix, in files
/// mapped beside the index when they would pass the budget. One key shared by
/// more suffixes than the budget holds makes its group exceed the budget.
///
/// Dropping a builder before `finish` removes the partial file.
pub struct IndexBuilder {
    key: IndexKey,
    vocab: u32,
    tw: usize,
    path: PathBuf,
    tmp: PathBuf,
    out: Option<std::io::BufWriter<File>>,
    hasher: blake3::Hasher,
    hist: Vec<u64>,
    starts: Vec<u64>,
    records: Vec<u8>,
    n_tokens: u64,
    n_slots: u64,
    last: Option<RowId>,
    buf: Vec<u8>,
    /// A write failed: the file no longer matches what was pushed.
    failed: bool,
}

impl std::fmt::Debug for IndexBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuilder")
            .field("path", &self.path)
            .field("rows", &self.starts.len())
            .field("tokens", &self.n_tokens)
            .finish()
    }
}

impl IndexBuilder {
    /// Start an index of `key` over a vocabulary of `vocab` token ids, to be
    /// written at `path`.
    pub fn new(key: IndexKey, vocab: u32, path: &Path) -> Result<IndexBuilder, AttrError> {
        if vocab == 0 || vocab > MAX_VOCAB {
            return Err(AttrError::Vocab(vocab as u64));
        }
        let tmp = building_path(path);
        // Read too: the tokens are mapped back to sort them.
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).map_err(io_err(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        // The header is written last; the tokens section follows it.
        std::io::Write::write_all(&mut out, &[0u8; HEADER_LEN]).map_err(io_err(&tmp))?;
        Ok(IndexBuilder {
            key,
            vocab,
            tw: Layout::new(vocab, 0, 0, 0).tw,
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            hasher: blake3::Hasher::new(),
            hist: vec![0; vocab as usize],
            starts: Vec::new(),
            records: Vec::new(),
            n_tokens: 0,
            n_slots: 0,
            last: None,
            buf: Vec::new(),
            failed: false,
        })
    }

    /// Add the next row: ids strictly increasing, every token below the vocabulary.
    /// A refused row leaves the builder as it was; after a failed write every
    /// call fails.
    pub fn push(&mut self, id: RowId, contributor: Address, tombstoned: bool, tokens: &[u32]) -> Result<(), AttrError> {
        self.check_written()?;
        if let Some(p) = self.last
            && id <= p
        {
            return Err(AttrError::RowOrder { prev: p, next: id });
        }
        if let Some(&token) = tokens.iter().find(|&&t| t >= self.vocab) {
            return Err(AttrError::TokenOutOfVocab { row: id, token, vocab: self.vocab });
        }
        self.buf.clear();
        if self.tw == 2 {
            self.buf.extend(tokens.iter().flat_map(|&t| (t as u16).to_le_bytes()));
            self.buf.extend(u16::SEP.to_le_bytes());
        } else {
            self.buf.extend(tokens.iter().flat_map(|&t| t.to_le_bytes()));
            self.buf.extend(u32::SEP.to_le_bytes());
        }
        let out = self.out.as_mut().expect("a builder is not used after finish");
        if let Err(e) = std::io::Write::write_all(out, &self.buf) {
            self.failed = true;
            return Err(io_err(&self.tmp)(e));
        }
        self.hasher.update(&self.buf);
        for &t in tokens {
            self.hist[t as usize] += 1;
        }
        self.starts.push(self.n_slots);
        let at = self.records.len();
        self.records.resize(at + ROW_RECORD_LEN, 0);
        write_row_record(&mut self.records[at..], id, contributor, tombstoned);
        self.n_tokens += tokens.len() as u64;
        self.n_slots += tokens.len() as u64 + 1;
        self.last = Some(id);
        Ok(())
    }

    fn check_written(&self) -> Result<(), AttrError> {
        match self.failed {
            true => Err(AttrError::Io {
                path: self.tmp.clone(),
                source: std::io::Error::other("an earlier write to this index failed"),
            }),
            false => Ok(()),
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.starts.len() as u64
    }

    /// Tokens pushed so far.
    pub fn tokens(&self) -> u64 {
        self.n_tokens
    }

    /// Sort the suffixes within `memory` bytes of working memory (0:
    /// [`DEFAULT_BUILD_MEMORY`]), write the remaining sections and the header,
    /// rename the file over `path` and open it. `progress(done, total)` counts
    /// tokens sorted (then merged, in memory).
    pub fn finish(mut self, memory: u64, progress: &mut dyn FnMut(u64, u64)) -> Result<SpanIndex, AttrError> {
        let memory = if memory == 0 { DEFAULT_BUILD_MEMORY } else { memory };
        self.check_written()?;
        let out = self.out.take().expect("finish runs once");
        let tmp = self.tmp.clone();
        let written = (|| {
            let file = out.into_inner().map_err(|e| AttrError::Io { path: tmp.clone(), source: e.into_error() })?;
            let n_rows = self.starts.len() as u64;
            let l = Layout::new(self.vocab, self.n_tokens, self.n_slots, n_rows);
            file.set_len(l.file_len).map_err(io_err(&tmp))?;
            let header = Header {
                layout: l,
                key: self.key,
                tokens_hash: *self.hasher.finalize().as_bytes(),
                rows_hash: *blake3::hash(&self.records).as_bytes(),
            };
            let wide = l.n_slots > u32::MAX as u64;
            let per_token = 8 + 2 * if wide { 8 } else { 4 };
            if l.n_tokens * per_token <= memory {
                self.finish_in_memory(&file, &l, wide, progress)?;
            } else {
                self.finish_out_of_core(&file, &l, wide, memory, progress)?;
            }
            write_at(&file, &tmp, 0, &header.encode())?;
            publish(file, &tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        SpanIndex::open(&self.path)
    }

    fn finish_in_memory(
        &self,
        file: &File,
        l: &Layout,
        wide: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), AttrError> {
        let mut map = map_mut(file, &self.tmp)?;
        let sec = split_sections(&mut map, l);
        sec.rows.copy_from_slice(&self.records);
        macro_rules! go {
            ($t:ty, $p:ty) => {
                sort_and_write::<$t, $p>(
                    cast(sec.toks),
                    sec.sa,
                    sec.buckets,
                    sec.rowmap,
                    &Sorting { l, old: None, starts: &self.starts, new_tokens: l.n_tokens, shard: 0, path: &self.tmp },
                    progress,
                )?
            };
        }
        match (l.tw, wide) {
            (2, false) => go!(u16, u32),
            (2, true) => go!(u16, u64),
            (_, false) => go!(u32, u32),
            (_, true) => go!(u32, u64),
        }
        Ok(())
    }

    fn finish_out_of_core(
        &self,
        file: &File,
        l: &Layout,
        wide: bool,
        memory: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), AttrError> {
        let tmp = &self.tmp;
        {
            // SAFETY: the file is ours until renamed; this map only reads the
            // tokens section, which nothing writes any more.
            let map = unsafe { Mmap::map(file) }.map_err(io_err(tmp))?;
            let toks = &map[l.tokens_range()];
            match (l.tw, wide) {
                (2, false) => sort_out_of_core::<u16, u32>(cast(toks), l, memory, file, tmp, progress)?,
                (2, true) => sort_out_of_core::<u16, u64>(cast(toks), l, memory, file, tmp, progress)?,
                (_, false) => sort_out_of_core::<u32, u32>(cast(toks), l, memory, file, tmp, progress)?,
                (_, true) => sort_out_of_core::<u32, u64>(cast(toks), l, memory, file, tmp, progress)?,
            }
        }
        let mut buckets = vec![0u8; l.buckets_range().len()];
        write_buckets(&mut buckets, &self.hist, l);
        write_at(file, tmp, l.buckets_off, &buckets)?;
        let mut rowmap = vec![0u8; l.rowmap_len as usize];
        write_rowmap(&mut rowmap, l, &self.starts);
        write_at(file, tmp, l.rowmap_off, &rowmap)?;
        write_at(file, tmp, l.rows_off, &self.records)
    }
}

impl Drop for IndexBuilder {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Where an index for `path` is written until it is complete.
/// A fresh `<path>.building.<pid>.<n>` for one build, so that two builds of
/// one index at once (two threads of a node, or two processes) never write
/// the same file: each publishes a whole file of the same bytes, whichever
/// rename comes last. A crash leaves the file behind; [`is_building_file`]
/// names such files for whoever owns the directory to remove.
fn building_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".building.{}.{n}", std::process::id()));
    path.with_file_name(name)
}

/// Whether a file name is that of an index being built (or of a build a
/// crash interrupted): `<name>.building.<pid>.<n>`.
pub fn is_building_file(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.contains(".building."))
}

/// Make a finished build's file durable and rename it over `path`:
/// after a crash `path` holds the old file or the whole new one, never a part.
fn publish(file: File, tmp: &Path, path: &Path) -> Result<(), AttrError> {
    file.sync_all().map_err(io_err(tmp))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    Ok(())
}

fn map_mut(file: &File, path: &Path) -> Result<MmapMut, AttrError> {
    // SAFETY: the file is a `.building` file, its writer's own until renamed.
    unsafe { MmapMut::map_mut(file) }.map_err(io_err(path))
}

fn write_at(file: &File, path: &Path, at: u64, bytes: &[u8]) -> Result<(), AttrError> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at).map_err(io_err(path))
}

/// A suffix's merge key and position.
type Keyed<P> = (u64, P);

/// The out-of-core suffix sort: groups of suffixes by key range, each gathered,
/// sorted and written to its place in the suffix-array section of `file`.
fn sort_out_of_core<T: Tok, P: Pos>(
    toks: &[T],
    l: &Layout,
    memory: u64,
    file: &File,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), AttrError> {
    let total = l.n_tokens;
    progress(0, total);
    if total == 0 {
        return Ok(());
    }
    let n_slots = toks.len();
    let cap = (memory / std::mem::size_of::<Keyed<P>>() as u64).max(total.div_ceil(MAX_GROUPS)).max(1);
    let n_groups = total.div_ceil(cap) as usize;
    // Group g holds the keys in [bounds[g - 1], bounds[g]) (from 0, to the end):
    // boundaries at even quantiles of a sample of keys, so that groups come out
    // about even.
    let stride = (n_slots / SAMPLE_KEYS).max(1);
    let mut sample: Vec<u64> = (0..n_slots.div_ceil(stride))
        .into_par_iter()
        .map(|i| i * stride)
        .filter(|&p| toks[p] != T::SEP)
        .map(|p| key_at(toks, p))
        .collect();
    sample.par_sort_unstable();
    let mut bounds: Vec<u64> = Vec::with_capacity(n_groups);
    for g in 1..n_groups {
        let b = sample[g * sample.len() / n_groups];
        if bounds.last().map_or(b > 0, |&last| b > last) {
            bounds.push(b);
        }
    }
    drop(sample);
    let chunks: Vec<Range<usize>> =
        (0..n_slots).step_by(SCAN_CHUNK).map(|s| s..(s + SCAN_CHUNK).min(n_slots)).collect();
    // Entries of each group in each chunk, so each group's buffer is cut exactly.
    let counts: Vec<Vec<u64>> = chunks
        .par_iter()
        .map(|c| {
            let mut k = vec![0u64; bounds.len() + 1];
            for p in c.clone() {
                if toks[p] != T::SEP {
                    let key = key_at(toks, p);
                    k[bounds.partition_point(|&b| b <= key)] += 1;
                }
            }
            k
        })
        .collect();
    let shift = 64 - 64 / T::KEY_TOKENS;
    // Deep ties of every group, by their entries in the whole array.
    let mut deep_all: Vec<(usize, usize)> = Vec::new();
    let mut entries: Vec<Keyed<P>> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut done = 0u64;
    for g in 0..=bounds.len() {
        let lo = if g == 0 { 0 } else { bounds[g - 1] };
        let hi = bounds.get(g).copied();
        let (lo_tok, hi_tok) = ((lo >> shift) as u32, hi.map_or(u32::MAX, |h| (h >> shift) as u32));
        let n: usize = counts.iter().map(|c| c[g] as usize).sum();
        entries.clear();
        entries.resize(n, (0, P::new(0)));
        let mut pieces: Vec<(&Range<usize>, &mut [Keyed<P>])> = Vec::with_capacity(chunks.len());
        let mut rest = &mut entries[..];
        for (c, k) in chunks.iter().zip(&counts) {
            let (mine, tail) = rest.split_at_mut(k[g] as usize);
            pieces.push((c, mine));
            rest = tail;
        }
        pieces.into_par_iter().for_each(|(c, dst)| {
            let mut i = 0;
            for p in c.clone() {
                let t = toks[p];
                // The first token rules most suffixes out before a key is made.
                if t == T::SEP || t.to_u32() < lo_tok || t.to_u32() > hi_tok {
                    continue;
                }
                let key = key_at(toks, p);
                if key >= lo && hi.is_none_or(|h| key < h) {
                    dst[i] = (key, P::new(p));
                    i += 1;
                }
            }
            debug_assert_eq!(i, dst.len());
        });
        let deep = AtomicBool::new(false);
        entries.par_sort_unstable_by(|a, b| cmp_keyed(toks, a.0, a.1.get(), b.0, b.1.get(), &deep));
        if deep.load(AtomicOrdering::Relaxed) {
            let base = done as usize;
            let runs = deep_runs(toks, |i| entries[i].1.get(), 0..entries.len());
            deep_all.extend(runs.into_iter().map(|(s, len)| (base + s, len)));
        }
        let w = l.sw;
        for (j, part) in entries.chunks(WRITE_CHUNK).enumerate() {
            bytes.clear();
            bytes.extend(part.iter().flat_map(|e| (e.1.get() as u64).to_le_bytes().into_iter().take(w)));
            let at = l.sa_off + (done + (j * WRITE_CHUNK) as u64) * w as u64;
            write_at(file, path, at, &bytes)?;
        }
        done += n as u64;
        progress(done, total);
    }
    debug_assert_eq!(done, total);
    drop(entries);
    if !deep_all.is_empty() {
        // SAFETY: the file is ours until renamed; the suffix array section is
        // read through this map and written with positioned writes only here.
        let map = unsafe { Mmap::map(file) }.map_err(io_err(path))?;
        resolve_deep(toks, &mut FileSa { map: &map, file, path, l }, deep_all, path, Some(memory))?;
    }
    Ok(())
}

struct Sections<'m> {
    toks: &'m mut [u8],
    sa: &'m mut [u8],
    buckets: &'m mut [u8],
    rowmap: &'m mut [u8],
    rows: &'m mut [u8],
}

fn split_sections<'m>(map: &'m mut [u8], l: &Layout) -> Sections<'m> {
    let (_, rest) = map.split_at_mut(l.tokens_off as usize);
    let (toks, rest) = rest.split_at_mut((l.sa_off - l.tokens_off) as usize);
    let (sa, rest) = rest.split_at_mut((l.buckets_off - l.sa_off) as usize);
    let (buckets, rest) = rest.split_at_mut((l.rowmap_off - l.buckets_off) as usize);
    let (rowmap, rest) = rest.split_at_mut((l.rows_off - l.rowmap_off) as usize);
    let rows = &mut rest[..(l.n_rows as usize * ROW_RECORD_LEN)];
    Sections {
        toks: &mut toks[..(l.n_slots as usize * l.tw)],
        sa: &mut sa[..(l.n_tokens as usize * l.sw)],
        buckets: &mut buckets[..((l.vocab as usize + 1) * l.bw)],
        rowmap: &mut rowmap[..l.rowmap_len as usize],
        rows,
    }
}

/// Write every section but the header; returns the tokens and rows hashes.
#[allow(clippy::too_many_arguments)]
fn fill<T: Tok + Plain, P: Pos>(
    map: &mut [u8],
    l: &Layout,
    old: Option<&SpanIndex>,
    rows: &[IndexRow],
    shard: usize,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<([u8; 32], [u8; 32]), AttrError> {
    let sec = split_sections(map, l);
    let old_rows = old.map_or(0, |o| o.header.layout.n_rows as usize);
    let toks: &mut [T] = cast_mut(sec.toks);
    let starts = write_tokens(toks, sec.rows, old, rows);
    let toks: &[T] = toks;
    for (d, r) in sec.rows[old_rows * ROW_RECORD_LEN..].chunks_exact_mut(ROW_RECORD_LEN).zip(rows) {
        write_row_record(d, r.id, r.contributor, r.tombstoned);
    }
    let new_tokens = rows.iter().map(|r| r.tokens.len() as u64).sum();
    let sorted = Sorting { l, old, starts: &starts, new_tokens, shard, path };
    sort_and_write::<T, P>(toks, sec.sa, sec.buckets, sec.rowmap, &sorted, progress)?;
    let tok_bytes = as_bytes(toks);
    Ok(rayon::join(|| *blake3::hash(tok_bytes).as_bytes(), || *blake3::hash(sec.rows).as_bytes()))
}

/// What an in-memory sort of a build's suffixes works from.
struct Sorting<'a> {
    l: &'a Layout,
    old: Option<&'a SpanIndex>,
    starts: &'a [u64],
    new_tokens: u64,
    shard: usize,
    /// The file being built (named in errors).
    path: &'a Path,
}

/// Sort the suffixes in memory (SA-IS shards, merged) and write the suffix array,
/// buckets and row map of the tokens already in place.
fn sort_and_write<T: Tok + Plain, P: Pos>(
    toks: &[T],
    sa_out: &mut [u8],
    buckets: &mut [u8],
    rowmap: &mut [u8],
    s: &Sorting,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), AttrError> {
    let (l, starts) = (s.l, s.starts);
    let old_rows = s.old.map_or(0, |o| o.header.layout.n_rows as usize);
    let shards = plan_shards(l, starts, old_rows, s.shard);
    let sa: Vec<P> = sort_suffixes(toks, l, s.old, s.new_tokens, &shards, s.path, progress)?;
    debug_assert_eq!(sa.len() as u64, l.n_tokens);
    let w = l.sw;
    sa_out.par_chunks_mut(MERGE_CHUNK * w).zip(sa.par_chunks(MERGE_CHUNK)).for_each(|(dst, src)| {
        for (d, p) in dst.chunks_exact_mut(w).zip(src) {
            d.copy_from_slice(&(p.get() as u64).to_le_bytes()[..w]);
        }
    });
    drop(sa);
    write_buckets(buckets, &token_histogram(toks, l.vocab), l);
    write_rowmap(rowmap, l, starts);
    Ok(())
}

/// One row's record in the row table.
fn write_row_record(d: &mut [u8], id: RowId, contributor: Address, tombstoned: bool) {
    d[0..8].copy_from_slice(&id.contribution.to_le_bytes());
    d[8..12].copy_from_slice(&id.index.to_le_bytes());
    d[12..32].copy_from_slice(contributor.as_slice());
    d[32] = if tombstoned { FLAG_TOMBSTONED } else { 0 };
}

/// Tokens and separators: `old`'s as they are (and its row records into
/// `row_table`), then each new row and a separator. Returns every row's first slot.
fn write_tokens<T: Tok + Plain>(
    toks: &mut [T],
    row_table: &mut [u8],
    old: Option<&SpanIndex>,
    rows: &[IndexRow],
) -> Vec<u64> {
    let (old_slots, old_rows) =
        old.map_or((0, 0), |o| (o.header.layout.n_slots as usize, o.header.layout.n_rows as usize));
    let mut starts: Vec<u64> = Vec::with_capacity(old_rows + rows.len());
    if let Some(o) = old {
        let ol = o.header.layout;
        let src: &[T] = cast(&o.map[ol.tokens_range()]);
        toks[..old_slots].copy_from_slice(src);
        with_view!(o.view(), v => starts.extend((0..old_rows).map(|r| v.rowmap.row_start(r) as u64)));
        row_table[..old_rows * ROW_RECORD_LEN].copy_from_slice(&o.map[ol.rows_range()]);
    }
    let mut at = old_slots;
    let mut pieces: Vec<(&IndexRow, &mut [T])> = Vec::with_capacity(rows.len());
    let mut rest = &mut toks[old_slots..];
    for r in rows {
        starts.push(at as u64);
        let (mine, tail) = rest.split_at_mut(r.tokens.len() + 1);
        pieces.push((r, mine));
        rest = tail;
        at += r.tokens.len() + 1;
    }
    pieces.into_par_iter().for_each(|(r, dst)| {
        for (d, &t) in dst.iter_mut().zip(&r.tokens) {
            *d = T::from_u32(t);
        }
        dst[r.tokens.len()] = T::SEP;
    });
    starts
}

/// Shards of the rows after the first `old_rows`: contiguous, about `shard`
/// slots each (by default enough shards to keep every thread busy, but not
/// smaller than MIN_SHARD_SLOTS), each with its count of tokens.
fn plan_shards(l: &Layout, starts: &[u64], old_rows: usize, shard: usize) -> Vec<(Range<usize>, u64)> {
    let n_rows = l.n_rows as usize;
    let old_slots = if old_rows < n_rows { starts[old_rows] as usize } else { l.n_slots as usize };
    let new_slots = l.n_slots as usize - old_slots;
    let threads = rayon::current_num_threads().max(1);
    let shard = match shard {
        0 => new_slots.div_ceil(threads).clamp(MIN_SHARD_SLOTS, DEFAULT_SHARD_TOKENS),
        s => s.min(MAX_SHARD_SLOTS),
    };
    let mut shards: Vec<(Range<usize>, u64)> = Vec::new();
    let (mut from, mut tokens) = (old_rows, 0u64);
    for i in old_rows..n_rows {
        let end = if i + 1 < n_rows { starts[i + 1] } else { l.n_slots } as usize;
        tokens += (end - starts[i] as usize - 1) as u64;
        if end - starts[from] as usize >= shard || i + 1 == n_rows {
            shards.push((starts[from] as usize..end, tokens));
            (from, tokens) = (i + 1, 0);
        }
    }
    shards
}

/// The suffix array of every token: each shard sorted (SA-IS), a thread's
/// worth at a time, then the runs (and `old`'s suffix array) merged, or a small
/// delta inserted into `old`'s by binary search.
fn sort_suffixes<T: Tok, P: Pos>(
    toks: &[T],
    l: &Layout,
    old: Option<&SpanIndex>,
    new_tokens: u64,
    shards: &[(Range<usize>, u64)],
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<P>, AttrError> {
    let threads = rayon::current_num_threads().max(1);
    // Work units: tokens sorted in shards, then tokens merged.
    let merging = shards.len() + old.is_some() as usize > 1;
    let total = new_tokens + if merging { l.n_tokens } else { 0 };
    let mut done = 0u64;
    progress(done, total);
    let mut runs: Vec<Vec<P>> = Vec::with_capacity(shards.len());
    for batch in shards.chunks(threads) {
        runs.extend(batch.par_iter().map(|(s, _)| shard_run::<T, P>(toks, s.clone(), l.vocab)).collect::<Vec<_>>());
        done += batch.iter().map(|(_, t)| t).sum::<u64>();
        progress(done, total);
    }
    let old_run = old.map(|o| {
        with_view!(o.view(), v => {
            let mut run = vec![P::new(0); v.n_tokens];
            run.par_chunks_mut(MERGE_CHUNK).enumerate().for_each(|(c, out)| {
                for (k, x) in out.iter_mut().enumerate() {
                    *x = P::new(v.sa.get(c * MERGE_CHUNK + k));
                }
            });
            run
        })
    });
    // Comparisons stop at DEEP tokens; the ties they leave are ordered after.
    let deep = AtomicBool::new(false);
    let mut sa: Vec<P> = match old_run {
        None => merge_runs(toks, runs, &deep),
        Some(old_run) => {
            // A small delta is cheaper to insert by binary search than to merge.
            let log = (u64::BITS - (old_run.len() as u64).leading_zeros()) as u64;
            if new_tokens * (log + 1) < old_run.len() as u64 / 2 {
                let new_run = merge_runs(toks, runs, &deep);
                insert_run(toks, old_run, new_run, &deep)
            } else {
                runs.insert(0, old_run);
                merge_runs(toks, runs, &deep)
            }
        }
    };
    if deep.load(AtomicOrdering::Relaxed) {
        let runs = deep_runs(toks, |i| sa[i].get(), 0..sa.len());
        resolve_deep(toks, &mut sa, runs, path, None)?;
    }
    if merging {
        progress(total, total);
    }
    Ok(sa)
}

/// How many times each token occurs (separators not counted).
fn token_histogram<T: Tok>(toks: &[T], vocab: u32) -> Vec<u64> {
    let vocab = vocab as usize;
    toks.par_chunks(1 << 20)
        .fold(
            || vec![0u64; vocab],
            |mut h, c| {
                for &t in c {
                    if t != T::SEP {
                        h[t.to_u32() as usize] += 1;
                    }
                }
                h
            },
        )
        .reduce(
            || vec![0u64; vocab],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        )
}

/// Buckets from the token histogram: token t's suffixes start at entry `buckets[t]`.
fn write_buckets(buckets: &mut [u8], hist: &[u64], l: &Layout) {
    let mut acc = 0u64;
    for (t, chunk) in buckets.chunks_exact_mut(l.bw).enumerate() {
        chunk.copy_from_slice(&acc.to_le_bytes()[..l.bw]);
        if let Some(h) = hist.get(t) {
            acc += h;
        }
    }
}

/// The row map: the rows' first slots at their width, or a bitmap of them with
/// a directory of running counts (`rowmap_kind` 1).
fn write_rowmap(rowmap: &mut [u8], l: &Layout, starts: &[u64]) {
    if l.rowmap_kind == 0 {
        for (d, s) in rowmap.chunks_exact_mut(l.rw).zip(starts) {
            d.copy_from_slice(&s.to_le_bytes()[..l.rw]);
        }
    } else {
        let nw = bitmap_words(l.n_slots) as usize;
        let all: &mut [u64] = cast_mut(rowmap);
        let (words, dir) = all.split_at_mut(nw);
        words.fill(0);
        for &s in starts {
            words[s as usize / 64] |= 1u64 << (s % 64);
        }
        let mut acc = 0u64;
        for (b, d) in dir.iter_mut().enumerate() {
            *d = acc;
            for &x in words.iter().skip(b * 8).take(8) {
                acc += x.count_ones() as u64;
            }
        }
    }
}

/// The sorted token positions of one shard (slots `slots`, ending with a separator).
fn shard_run<T: Tok, P: Pos>(toks: &[T], slots: Range<usize>, vocab: u32) -> Vec<P> {
    let seg = &toks[slots.clone()];
    let mut s: Vec<u32> = Vec::with_capacity(seg.len());
    let mut row = 0u32;
    for &t in seg {
        if t == T::SEP {
            // One separator symbol per row, above every token, increasing with the
            // row: SA-IS then orders equal row tails by position, as the index does.
            s.push(vocab + row);
            row += 1;
        } else {
            s.push(t.to_u32());
        }
    }
    let upper = vocab + row.saturating_sub(1);
    let mut sa = sais::suffix_array(&mut s, upper);
    drop(s);
    // The separators are the largest symbols: their suffixes are the last `row` entries.
    sa.truncate(seg.len() - row as usize);
    let base = slots.start;
    sa.into_iter().map(|p| P::new(base + p as usize)).collect()
}

/// The first `KEY_TOKENS` tokens of the suffix at `p`, packed big-end first into a
/// u64 that orders like the tokens (lanes after the row's end hold the separator).
#[inline]
fn key_at<T: Tok>(toks: &[T], p: usize) -> u64 {
    let bits = 64 / T::KEY_TOKENS;
    let mut key = 0u64;
    let mut ended = false;
    for j in 0..T::KEY_TOKENS {
        let t = if ended { T::SEP } else { toks[p + j] };
        ended |= t == T::SEP;
        key = (key << bits) | t.to_u32() as u64;
    }
    key
}

/// Suffixes (key, position) compared in the index order through their first
/// [`DEEP`] tokens: by key, then (when both keys run into the end of their rows)
/// by position, else token by token after the key. Two that agree through
/// [`DEEP`] tokens with neither row ending are a deep tie: they compare in
/// position order for now, `deep` is set, and [`resolve_deep`] orders them.
#[inline]
fn cmp_keyed<T: Tok>(toks: &[T], ka: u64, a: usize, kb: u64, b: usize, deep: &AtomicBool) -> Ordering {
    if ka != kb {
        return ka.cmp(&kb);
    }
    let lane = u64::MAX >> (64 - 64 / T::KEY_TOKENS);
    if ka & lane == T::SEP.to_u32() as u64 {
        return a.cmp(&b);
    }
    let mut k = T::KEY_TOKENS;
    loop {
        if k == DEEP {
            if a != b {
                deep.store(true, AtomicOrdering::Relaxed);
            }
            return a.cmp(&b);
        }
        let (x, y) = (toks[a + k], toks[b + k]);
        if x != y {
            return x.cmp(&y);
        }
        if x == T::SEP {
            return a.cmp(&b);
        }
        k += 1;
    }
}

/// Merge sorted runs into one: a k-way merge on suffix keys (so that most
/// comparisons read no tokens), split between threads by splitter suffixes taken
/// from the largest run.
fn merge_runs<T: Tok, P: Pos>(toks: &[T], mut runs: Vec<Vec<P>>, deep: &AtomicBool) -> Vec<P> {
    runs.retain(|r| !r.is_empty());
    match runs.len() {
        0 => return Vec::new(),
        1 => return runs.pop().unwrap(),
        _ => {}
    }
    let keys: Vec<Vec<u64>> = runs.iter().map(|r| r.par_iter().map(|p| key_at(toks, p.get())).collect()).collect();
    let n: usize = runs.iter().map(Vec::len).sum();
    let k = runs.len();
    // Splitters: evenly spaced entries of the largest run; each run cut where they go.
    let big = (0..k).max_by_key(|&r| runs[r].len()).unwrap();
    let parts = (rayon::current_num_threads() * 8).min(n / MERGE_CHUNK).max(1);
    let mut cuts: Vec<Vec<usize>> = vec![vec![0; k]];
    for j in 1..parts {
        let at = j * runs[big].len() / parts;
        let (kx, x) = (keys[big][at], runs[big][at].get());
        let cut = (0..k)
            .map(|r| {
                let (mut lo, mut hi) = (0usize, runs[r].len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if cmp_keyed(toks, keys[r][mid], runs[r][mid].get(), kx, x, deep) == Ordering::Less {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            })
            .collect();
        cuts.push(cut);
    }
    cuts.push(runs.iter().map(Vec::len).collect());
    let mut out: Vec<P> = vec![P::new(0); n];
    let mut pieces: Vec<(usize, &mut [P])> = Vec::with_capacity(parts);
    let mut rest: &mut [P] = &mut out;
    for j in 0..parts {
        let len: usize = (0..k).map(|r| cuts[j + 1][r] - cuts[j][r]).sum();
        let (mine, tail) = rest.split_at_mut(len);
        pieces.push((j, mine));
        rest = tail;
    }
    pieces.into_par_iter().for_each(|(j, dst)| {
        let mut at: Vec<usize> = cuts[j].clone();
        let end = &cuts[j + 1];
        // Each run's head in this part, None once the part of the run is used up.
        let head_of = |r: usize, i: usize| (i < end[r]).then(|| (keys[r][i], runs[r][i].get()));
        let mut head: Vec<Option<(u64, usize)>> = (0..k).map(|r| head_of(r, at[r])).collect();
        let beats = |head: &[Option<(u64, usize)>], x: usize, y: usize| match (head[x], head[y]) {
            (Some((kx, px)), Some((ky, py))) => cmp_keyed(toks, kx, px, ky, py, deep) == Ordering::Less,
            (Some(_), None) => true,
            _ => false,
        };
        // A loser tree: leaf r sits at k + r, node i's children are 2i and 2i + 1;
        // tree[i] (1 <= i < k) holds the loser of the match at i, tree[0] the winner.
        // One comparison per level for each entry out.
        const NONE: usize = usize::MAX;
        let mut tree = vec![NONE; k];
        for r in 0..k {
            let (mut w, mut node) = (r, (k + r) / 2);
            while node > 0 {
                if tree[node] == NONE {
                    tree[node] = w; // waits there for the other side
                    w = NONE;
                    break;
                }
                if beats(&head, tree[node], w) {
                    std::mem::swap(&mut tree[node], &mut w);
                }
                node /= 2;
            }
            if w != NONE {
                tree[0] = w;
            }
        }
        for d in dst.iter_mut() {
            let r = tree[0];
            *d = runs[r][at[r]];
            at[r] += 1;
            head[r] = head_of(r, at[r]);
            let (mut w, mut node) = (r, (k + r) / 2);
            while node > 0 {
                if beats(&head, tree[node], w) {
                    std::mem::swap(&mut tree[node], &mut w);
                }
                node /= 2;
            }
            tree[0] = w;
        }
    });
    out
}

/// Insert a small sorted run into a large one: where each small entry goes by
/// binary search (in parallel), then block copies.
fn insert_run<T: Tok, P: Pos>(toks: &[T], big: Vec<P>, small: Vec<P>, deep: &AtomicBool) -> Vec<P> {
    let at: Vec<usize> = small
        .par_iter()
        .map(|&x| {
            let (x, kx) = (x.get(), key_at(toks, x.get()));
            let (mut lo, mut hi) = (0usize, big.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let m = big[mid].get();
                if cmp_keyed(toks, key_at(toks, m), m, kx, x, deep) == Ordering::Less {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        })
        .collect();
    let mut out: Vec<P> = Vec::with_capacity(big.len() + small.len());
    let mut from = 0;
    for (&x, &k) in small.iter().zip(&at) {
        out.extend_from_slice(&big[from..k]);
        out.push(x);
        from = k;
    }
    out.extend_from_slice(&big[from..]);
    out
}

// ---------------------------------------------------------------------------
// Deep ties: suffixes that agree through DEEP tokens

/// Where [`resolve_deep`] reads and rewrites the suffix array: in memory, or
/// the file being built.
trait SaStore {
    fn entries(&self) -> usize;
    fn entry(&self, i: usize) -> usize;
    fn put(&mut self, at: usize, positions: &[usize]) -> Result<(), AttrError>;
}

impl<P: Pos> SaStore for Vec<P> {
    fn entries(&self) -> usize {
        self.len()
    }
    fn entry(&self, i: usize) -> usize {
        self[i].get()
    }
    fn put(&mut self, at: usize, positions: &[usize]) -> Result<(), AttrError> {
        for (d, &p) in self[at..at + positions.len()].iter_mut().zip(positions) {
            *d = P::new(p);
        }
        Ok(())
    }
}

/// The suffix array section of the file being built: read through a map,
/// written with positioned writes (the map sees them: one page cache).
struct FileSa<'a> {
    map: &'a [u8],
    file: &'a File,
    path: &'a Path,
    l: &'a Layout,
}

impl SaStore for FileSa<'_> {
    fn entries(&self) -> usize {
        self.l.n_tokens as usize
    }
    fn entry(&self, i: usize) -> usize {
        SaView::new(&self.map[self.l.sa_range()], self.l.sw).get(i)
    }
    fn put(&mut self, at: usize, positions: &[usize]) -> Result<(), AttrError> {
        let w = self.l.sw;
        let bytes: Vec<u8> = positions.iter().flat_map(|&p| (p as u64).to_le_bytes().into_iter().take(w)).collect();
        write_at(self.file, self.path, self.l.sa_off + (at * w) as u64, &bytes)
    }
}

/// The deep ties among entries `range` of a suffix array sorted through [`DEEP`]
/// tokens: maximal runs of neighbours that tie deeply, as (first entry, length).
fn deep_runs<T: Tok>(toks: &[T], sa: impl Fn(usize) -> usize + Sync, range: Range<usize>) -> Vec<(usize, usize)> {
    let starts: Vec<usize> = (range.start + 1..range.end.max(range.start + 1))
        .into_par_iter()
        .filter(|&i| deep_tie(toks, sa(i - 1), sa(i)))
        .collect();
    // `starts` holds i for each tied pair (i - 1, i): consecutive i make one run.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in starts {
        match runs.last_mut() {
            Some((s, len)) if *s + *len == i => *len += 1,
            _ => runs.push((i - 1, 2)),
        }
    }
    runs
}

/// Working arrays of [`resolve_deep`]: in memory, or (when they would pass a
/// build's memory budget) a temporary file mapped beside the index, whose pages
/// the kernel may write back and evict. Removed when dropped.
enum Scratch<E: Plain> {
    Mem(Vec<E>),
    File { map: MmapMut, path: PathBuf, _e: std::marker::PhantomData<E> },
}

impl<E: Plain + Default> Scratch<E> {
    /// `len` zeroed entries; in a file beside `spill` when it is given.
    fn new(len: usize, spill: Option<&Path>) -> Result<Scratch<E>, AttrError> {
        let Some(beside) = spill else { return Ok(Scratch::Mem(vec![E::default(); len])) };
        // `<build>.building.<pid>.<n>.deep`: unique, and removed with interrupted builds' files.
        let mut name = building_path(beside).into_os_string();
        name.push(".deep");
        let path = PathBuf::from(name);
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).map_err(io_err(&path))?;
        let bytes = (len * std::mem::size_of::<E>()).max(1) as u64;
        file.set_len(bytes).map_err(io_err(&path))?;
        let map = map_mut(&file, &path)?;
        Ok(Scratch::File { map, path, _e: std::marker::PhantomData })
    }
}

impl<E: Plain> std::ops::Deref for Scratch<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        match self {
            Scratch::Mem(v) => v,
            Scratch::File { map, .. } => {
                let n = map.len() / std::mem::size_of::<E>() * std::mem::size_of::<E>();
                cast(&map[..n])
            }
        }
    }
}

impl<E: Plain> std::ops::DerefMut for Scratch<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        match self {
            Scratch::Mem(v) => v,
            Scratch::File { map, .. } => {
                let n = map.len() / std::mem::size_of::<E>() * std::mem::size_of::<E>();
                cast_mut(&mut map[..n])
            }
        }
    }
}

impl<E: Plain> Drop for Scratch<E> {
    fn drop(&mut self) {
        if let Scratch::File { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Bytes [`resolve_deep`] holds per deeply tied suffix: while it starts, each
/// one's (position, entry, run) and its rank; then its rank and its place in
/// its group.
const DEEP_BYTES: u64 = 40;

/// Put the suffixes of each deep run in the index order. A run's suffixes agree
/// through their first `h` tokens, so their order is that of the suffixes `h`
/// further on: prefix doubling (Larsson and Sadakane's) over the runs' members
/// only, `h` = [`DEEP`], 2·[`DEEP`], …, each member ranked by where the suffix
/// `h` on stands (its run's first entry while it is in a run, else its place,
/// found by binary search, which no deep tie can confuse). Linear in the members
/// per round and at most log₂ of the longest row / [`DEEP`] rounds, however long
/// the stretches the rows repeat. Memory: [`DEEP_BYTES`] per member, plus the
/// keys of [`RESOLVE_BATCH`] members and 16 bytes per group; past `memory`
/// (when given) the per-member arrays are files mapped beside `path`.
fn resolve_deep<T: Tok, S: SaStore + Sync>(
    toks: &[T],
    sa: &mut S,
    runs: Vec<(usize, usize)>,
    path: &Path,
    memory: Option<u64>,
) -> Result<(), AttrError> {
    if runs.is_empty() {
        return Ok(());
    }
    let corrupt = |reason: String| AttrError::Corrupt { path: path.to_path_buf(), reason };
    let n: usize = runs.iter().map(|r| r.1).sum();
    let spill = memory.filter(|&m| n as u64 * DEEP_BYTES > m).map(|_| path);
    // Every member as (position, entry, its run's first entry), sorted by
    // position: `rank` keeps (position, rank), the rank being the first entry of
    // its run (later, of its part of it). `order` lists each group's members (by
    // their place in `rank`) in the array's order, group after group.
    let mut rank: Scratch<[u64; 2]> = Scratch::new(n, spill)?;
    let mut order: Scratch<u64> = Scratch::new(n, spill)?;
    {
        let mut members: Scratch<[u64; 3]> = Scratch::new(n, spill)?;
        let mut at = 0;
        for &(s, len) in &runs {
            for i in s..s + len {
                members[at] = [sa.entry(i) as u64, i as u64, s as u64];
                at += 1;
            }
        }
        members.par_sort_unstable();
        for (r, m) in rank.iter_mut().zip(members.iter()) {
            *r = [m[0], m[2]];
        }
        // Now (entry, place in `rank`), by entry: the groups' members in order.
        for (me, m) in members.iter_mut().enumerate() {
            *m = [m[1], me as u64, 0];
        }
        members.par_sort_unstable();
        for (o, m) in order.iter_mut().zip(members.iter()) {
            *o = m[1];
        }
    }
    let mut groups: Vec<(usize, usize)> = runs;
    let never = AtomicBool::new(false);
    // The entry holding suffix `q`, which ties no other deeply.
    let place = |sa: &S, q: usize| -> Result<usize, AttrError> {
        let kq = key_at(toks, q);
        let (mut lo, mut hi) = (0usize, sa.entries());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let p = sa.entry(mid);
            if cmp_keyed(toks, key_at(toks, p), p, kq, q, &never) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < sa.entries() && sa.entry(lo) == q {
            Ok(lo)
        } else {
            Err(corrupt(format!("suffix {q} is not where the order puts it")))
        }
    };
    let mut h = DEEP;
    while !groups.is_empty() {
        let mut next = Vec::new();
        // Members of the next round's groups, written over `order` from the
        // start (they are a subsequence of this round's, in the same order).
        let mut kept = 0;
        // Groups a batch at a time (keys in memory for one batch). A batch's
        // ranks are updated before the next batch reads them: a finer rank only
        // splits what a coarser one tied, so every key still orders its group
        // through at least 2h tokens, as Larsson and Sadakane update in place.
        let (mut g0, mut off0) = (0, 0);
        while g0 < groups.len() {
            let (mut g1, mut count) = (g0, 0);
            while g1 < groups.len() && (g1 == g0 || count + groups[g1].1 <= RESOLVE_BATCH) {
                count += groups[g1].1;
                g1 += 1;
            }
            let view: &S = sa;
            let ranks: &[[u64; 2]] = &rank;
            let mine = &order[off0..off0 + count];
            let mut starts = Vec::with_capacity(g1 - g0);
            let mut o = 0;
            for &(_, len) in &groups[g0..g1] {
                starts.push(o);
                o += len;
            }
            // Each member's key (the rank of the suffix h on, or, its row ending
            // there, past every rank, by position), position, and place in `rank`.
            let keyed: Vec<Vec<(u64, u64, u64, u64)>> = groups[g0..g1]
                .par_iter()
                .zip(starts.par_iter())
                .map(|(&(_, len), &o)| {
                    mine[o..o + len]
                        .iter()
                        .map(|&me| {
                            let me = me as usize;
                            let p = ranks[me][0] as usize;
                            let q = p + h;
                            if toks.get(q).is_none_or(|&t| t == T::SEP) {
                                return Ok((u64::MAX, p as u64, p as u64, me as u64));
                            }
                            // Members often fill whole stretches of positions: try `h` places on first.
                            let at = match ranks.get(me + h) {
                                Some(&[x, _]) if x == q as u64 => Ok(me + h),
                                _ => ranks.binary_search_by_key(&(q as u64), |r| r[0]),
                            };
                            match at {
                                Ok(at) => Ok((ranks[at][1], 0, p as u64, me as u64)),
                                Err(_) => Ok((place(view, q)? as u64, 0, p as u64, me as u64)),
                            }
                        })
                        .collect::<Result<Vec<_>, AttrError>>()
                })
                .collect::<Result<_, _>>()?;
            for (&(s, _), mut keys) in groups[g0..g1].iter().zip(keyed) {
                keys.sort_unstable();
                let positions: Vec<usize> = keys.iter().map(|m| m.2 as usize).collect();
                sa.put(s, &positions)?;
                let mut i = 0;
                while i < keys.len() {
                    let same = |m: &&(u64, u64, u64, u64)| (m.0, m.1) == (keys[i].0, keys[i].1);
                    let j = i + keys[i..].iter().take_while(same).count();
                    for m in &keys[i..j] {
                        rank[m.3 as usize][1] = (s + i) as u64;
                    }
                    if j - i > 1 {
                        next.push((s + i, j - i));
                        for m in &keys[i..j] {
                            order[kept] = m.3;
                            kept += 1;
                        }
                    }
                    i = j;
                }
            }
            g0 = g1;
            off0 += count;
        }
        groups = next;
        h = h.saturating_mul(2);
    }
    Ok(())
}

/// Members of deep ties whose keys [`resolve_deep`] holds at once (32 bytes each).
const RESOLVE_BATCH: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key() -> IndexKey {
        IndexKey { tokenizer: B256::repeat_byte(7), datanet: 3, version: 2 }
    }

    fn row(c: u64, i: u32, tokens: &[u32]) -> IndexRow {
        IndexRow {
            id: RowId { contribution: c, index: i },
            contributor: Address::repeat_byte(c as u8),
            tombstoned: false,
            tokens: tokens.to_vec(),
        }
    }

    #[test]
    fn layout_widths() {
        let l = Layout::new(50_000, 1_000_000, 1_004_000, 4_000);
        assert_eq!((l.tw, l.sw, l.bw, l.rw, l.rowmap_kind), (2, 3, 4, 4, 0));
        let l = Layout::new(70_000, 100_000_000, 100_400_000, 400_000);
        assert_eq!((l.tw, l.sw), (4, 4));
        let l = Layout::new(50_000, 5_000_000_000, 5_000_100_000, 100_000);
        assert_eq!((l.sw, l.bw, l.rw), (5, 8, 8));
        // Short rows: the bitmap is smaller.
        let l = Layout::new(100, 1_000_000, 1_250_000, 250_000);
        assert_eq!(l.rowmap_kind, 1);
    }

    #[test]
    fn small_index_queries() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![row(1, 0, &[1, 2, 3, 4]), row(1, 1, &[2, 3]), row(2, 0, &[]), row(2, 1, &[3, 4, 1, 2, 3])];
        let p = dir.path().join("i");
        let ix = SpanIndex::build(key(), &rows, 10, 0, &p, &mut |_, _| {}).unwrap();
        ix.verify().unwrap();
        assert_eq!(ix.n_tokens(), 11);
        assert_eq!(ix.count(&[2, 3]), 3);
        assert_eq!(ix.count(&[2, 3, 4]), 1);
        assert_eq!(ix.count(&[4, 1]), 1);
        // Never across rows: row 0 ends with 4, row 1 starts with 2.
        assert_eq!(ix.count(&[4, 2]), 0);
        assert_eq!(ix.count(&[3, 2]), 0);
        assert_eq!(ix.count(&[]), 11);
        assert_eq!(ix.count(&[11]), 0);
        assert_eq!(ix.unigram_count(3), 4);
        let rr = ix.rows_containing(&[2, 3], 10);
        assert_eq!(
            rr.iter().map(|r| (r.id.contribution, r.id.index)).collect::<Vec<_>>(),
            vec![(1, 0), (1, 1), (2, 1)]
        );
        assert_eq!(ix.rows_containing(&[2, 3], 2).len(), 2);
        assert_eq!(ix.row(2).unwrap().slots, 8..8);
        assert_eq!(ix.row(3).unwrap().slots, 9..14);
        with_view!(ix.view(), v => {
            assert_eq!(v.longest_prefix(&v.convert(&[3, 4, 1, 2, 3, 4]).unwrap()), 5);
            assert_eq!(v.longest_prefix(&v.convert(&[2, 3, 4, 9]).unwrap()), 3);
            assert_eq!(v.longest_prefix(&v.convert(&[9]).unwrap()), 0);
        });
    }

    #[test]
    fn row_order_and_vocab_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i");
        let e = SpanIndex::build(key(), &[row(2, 0, &[1]), row(1, 0, &[1])], 10, 0, &p, &mut |_, _| {});
        assert!(matches!(e, Err(AttrError::RowOrder { .. })));
        let e = SpanIndex::build(key(), &[row(2, 0, &[10])], 10, 0, &p, &mut |_, _| {});
        assert!(matches!(e, Err(AttrError::TokenOutOfVocab { token: 10, .. })));
        assert!(matches!(SpanIndex::build(key(), &[], 0, 0, &p, &mut |_, _| {}), Err(AttrError::Vocab(0))));
    }

    #[test]
    fn empty_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i");
        let ix = SpanIndex::build(key(), &[], 5, 0, &p, &mut |_, _| {}).unwrap();
        ix.verify().unwrap();
        assert_eq!(ix.count(&[1]), 0);
        assert!(ix.rows_containing(&[1], 3).is_empty());
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i");
        SpanIndex::build(key(), &[row(1, 0, &[1, 2, 3])], 10, 0, &p, &mut |_, _| {}).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        std::fs::write(dir.path().join("short"), &bytes[..100]).unwrap();
        assert!(matches!(SpanIndex::open(&dir.path().join("short")), Err(AttrError::Format { .. })));
        bytes[HEADER_LEN] ^= 1; // first token
        std::fs::write(dir.path().join("bad"), &bytes).unwrap();
        let ix = SpanIndex::open(&dir.path().join("bad")).unwrap();
        assert!(matches!(ix.verify(), Err(AttrError::Corrupt { .. })));
    }
}
