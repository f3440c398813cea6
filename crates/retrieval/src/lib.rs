//! Retrieval over a Datanet version's rows: which rows to put in a prompt for a
//! user's question (issue 18). Scores here only rank rows; payment never depends
//! on them (the attribution record pays retrieved rows by their span overlap with
//! the answer), so floats are fine in this crate.
//!
//! # What
//! - [`Bm25Index`] (`bm25.rs`): a BM25 index (tantivy, k1 = 1.2, b = 0.75) over
//!   one Datanet version's rows, each row a [`Doc`] keyed by (contribution id, row
//!   index) with its text stored, so a [`Hit`] carries the passage.
//!   [`Bm25Index::build`] writes a fresh index, [`Bm25Index::extend`] a new one for
//!   a version that only adds rows (the old segment files are copied, not
//!   re-indexed), [`Bm25Index::open`] checks and opens one, [`Bm25Index::rows`]
//!   lists the keys it holds so the caller can check them against the version.
//! - [`Bm25Scan`] (`scan.rs`): exact BM25 over every row in memory, the
//!   reference the index is measured against (`openledger bench retrieval`).
//! - [`DenseIndex`] (`dense.rs`): exact (flat) cosine search over embeddings the
//!   caller computes (this crate knows no model); no approximate index.
//!   [`fuse`]: reciprocal rank fusion (k = [`RRF_K`]) of a BM25 and a dense list.
//! - [`query_terms`]: the tokenisation documents and queries share.
//!
//! # On disk
//! An index is a directory: tantivy's segment files plus `retrieval.json` (format
//! name and version, document count, last row), written last. Builds happen in a
//! temporary sibling directory (`.<name>.tmp-…`) that is renamed into place once
//! complete, so a crash mid-build leaves at most a temporary directory, which
//! [`Bm25Index::open`] refuses (no metadata) and the next build next to it
//! removes. [`Bm25Index::open`] refuses a directory whose metadata is missing, of
//! another format or version, or disagrees with the segments.
//!
//! # Determinism
//! Ranking is total: score descending, then (contribution, row) ascending, in
//! every segment and across segments, whatever the segment layout. The index is
//! written by one indexing thread with merging off, so the same documents give the
//! same segments and therefore the same scores bit for bit. An extended index has
//! more segments than a fresh build over the same rows; BM25 statistics are
//! index-wide so scores agree, up to the order in which term scores are summed
//! (last-bit differences at most). Dense search sums in a fixed order and
//! [`fuse`] works on ranks only, so both are bit-for-bit deterministic.
//!
//! # Limits
//! - A search returns at most [`MAX_K`] hits; `k` outside `1..=MAX_K` is an error.
//! - A query longer than [`MAX_QUERY_BYTES`] bytes is refused. Only its first
//!   [`MAX_QUERY_TERMS`] distinct terms count; a term longer than
//!   [`MAX_TERM_BYTES`] bytes is dropped (as in documents).
//! - A query is free text: tantivy's query syntax (`AND`, `field:x`, quotes,
//!   parentheses) means nothing; a query with no term returns no hits.
//! - Tokens are maximal runs of Unicode alphanumeric characters, lowercased; no
//!   stemming and no stop words (BM25's idf already discounts common words).

mod bm25;
mod dense;
mod layout;
mod scan;

pub use bm25::{Bm25Index, query_terms};
pub use dense::{DenseHit, DenseIndex, Fused, RRF_K, fuse};
pub use scan::Bm25Scan;

use std::path::PathBuf;

/// Most hits one search returns.
pub const MAX_K: usize = 64;
/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Distinct query terms searched for; later ones are ignored.
pub const MAX_QUERY_TERMS: usize = 64;
/// Longest indexed term, in bytes; longer tokens are dropped from documents and queries.
pub const MAX_TERM_BYTES: usize = 40;
/// BM25 term-frequency saturation (tantivy's, used by [`Bm25Scan`] too).
pub const BM25_K1: f32 = 1.2;
/// BM25 length normalisation (tantivy's, used by [`Bm25Scan`] too).
pub const BM25_B: f32 = 0.75;

/// One row of a Datanet version to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Contribution id.
    pub contribution: u64,
    /// Row index within the contribution.
    pub row: u32,
    /// The row's text.
    pub text: String,
}

/// One retrieved row.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Contribution id.
    pub contribution: u64,
    /// Row index within the contribution.
    pub row: u32,
    /// BM25 score (higher is better); ranks only, never pays.
    pub score: f32,
    /// The row's text.
    pub text: String,
}

/// Why an index could not be built, opened or searched.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// tantivy failed (I/O inside the index, a damaged segment).
    #[error("index at {}: {source}", path.display())]
    Index {
        /// The index directory.
        path: PathBuf,
        /// The cause.
        source: tantivy::TantivyError,
    },
    /// The directory is not an index this crate wrote, or is damaged.
    #[error("{} is not a usable retrieval index: {reason}", path.display())]
    NotAnIndex {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `build`/`extend` target exists and holds files.
    #[error("{} exists and is not empty; an index is only written to a new or empty directory", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// Documents not in strictly increasing (contribution, row) order.
    #[error("rows out of order: ({}, {}) after ({}, {}); rows must come in strictly increasing (contribution, row) order", next.0, next.1, prev.0, prev.1)]
    Order {
        /// The row before.
        prev: (u64, u32),
        /// The offending row.
        next: (u64, u32),
    },
    /// A query over [`MAX_QUERY_BYTES`].
    #[error("query of {len} bytes is longer than the limit of {max} bytes", max = MAX_QUERY_BYTES)]
    QueryTooLong {
        /// The query's length in bytes.
        len: usize,
    },
    /// `k` outside `1..=MAX_K`.
    #[error("k = {k} is out of range: ask for 1 to {max} hits", max = MAX_K)]
    KOutOfRange {
        /// The requested k.
        k: usize,
    },
    /// A vector of the wrong length, or not finite, or zero.
    #[error("bad vector: {0}")]
    BadVector(String),
}

/// Check `k` against `1..=MAX_K`.
fn check_k(k: usize) -> Result<(), RetrievalError> {
    if (1..=MAX_K).contains(&k) { Ok(()) } else { Err(RetrievalError::KOutOfRange { k }) }
}

/// Check that `next` sorts strictly after `prev`.
fn check_order(prev: Option<(u64, u32)>, next: (u64, u32)) -> Result<(), RetrievalError> {
    match prev {
        Some(p) if p >= next => Err(RetrievalError::Order { prev: p, next }),
        _ => Ok(()),
    }
}
