//! Proof of Attribution: which contributions influenced a paid answer, as a
//! typed, versioned record that anyone can recompute and a verifier judges.
//!
//! # The record
//! - [`AttributionRecord`] (`record.rs`): the record a serving node signs and
//!   posts (its hash) and a challenged operator reveals (its bytes), with its
//!   canonical encoding (sorted-key JSON without whitespace) and hash (blake3
//!   of those bytes) documented on the type; [`AttributionRecord::decode`]
//!   accepts only the canonical bytes of a valid record of a known version.
//!   [`RecordParams`]: the governed parameters a record uses, read from any
//!   state by height ([`RecordParams::from_state`]).
//! - [`compute_record`] (`compute.rs`): the one function the serving node and
//!   `openledger attribution verify` run: the span part ([`trace_index`] over a
//!   [`SpanIndex`]), the gradient part ([`gradient_scores`]: TracIn over the
//!   kept LoRA checkpoints with `ml::sequence_gradients` + `ml::project`
//!   against ModelFactory's sketches, [`GradientInputs`]), and their mix
//!   (`credits.rs`: [`to_ppm`], [`mix`]), without flagged contributions.
//! - [`add_retrieval`] (`retrieval.rs`): for an answer whose prompt quoted
//!   retrieved Datanet rows, the record's retrieval part (the span method
//!   over the retrieved rows, credits by integer support) and the final
//!   credits combined by `attribution.retrieval_share_bps` ([`combine`]).
//! - [`compare`], [`params_checks`] and [`judge`] (`judge.rs`): the one
//!   comparison of a recomputed record with a claimed one, the checks of a
//!   record's stated parameters against the governed ones, and the verifier's
//!   judgement of a revealed record. What the chain says comes in through
//!   arguments and callbacks: this crate reads no chain and opens no file
//!   beyond a span index; the node wires it (`node::attribution`).
//!
//! # The span part
//! Which training rows a response repeats verbatim, and the contributions to
//! credit for it. Exact, deterministic and cheap, so anyone holding the rows
//! can recompute it byte for byte. Two pieces, after infini-gram (arXiv
//! 2401.17377) and OLMoTrace (arXiv 2504.07096):
//!
//! - [`SpanIndex`] (`index.rs`): a suffix array over the token ids of a Datanet
//!   version's rows, keyed by [`IndexKey`] (tokenizer hash, Datanet id, version),
//!   built in row-contiguous shards (each shard's suffix array by SA-IS, in
//!   parallel on rayon's pool) that are merged into one sorted array, written to a
//!   single file and memory-mapped for queries: [`SpanIndex::count`],
//!   [`SpanIndex::find`] (O(m log n) binary search), [`SpanIndex::rows_containing`].
//!   [`SpanIndex::extend`] appends rows to an existing index by building a shard for
//!   them and merging it in (the result is byte-identical to a fresh build), and
//!   [`SpanIndex::mark_tombstoned`] flags rows that must never be credited again.
//! - [`trace`] (`trace.rs`): for a response's token ids and word-start flags, the
//!   maximal spans (at least `min_len` tokens, on word boundaries, at most
//!   `max_frequency` occurrences) that occur in the index, ranked by rarity (lowest
//!   unigram log-probability first), at most `max_density` per response token,
//!   each crediting up to `max_rows_per_span` rows; credits are aggregated per
//!   contribution and per contributor in parts per million that sum to exactly
//!   1,000,000. The result, a [`SpanTrace`], has canonical bytes and a blake3 hash.
//!
//! # What the caller provides
//! Token ids and word boundaries: this crate knows no tokenizer. The caller
//! tokenizes each row (and the response) with the model's tokenizer and passes the
//! ids; for the response it also passes, per token, whether that token starts a
//! word (for a byte-level BPE such as GPT-2's or Llama 3's: the token's text begins
//! with a space, a newline or punctuation, or it is the first token; for a
//! SentencePiece tokenizer: the piece begins with `▁`). Rows go in the canonical
//! order of the version (contribution id, then row index), as
//! `datanets::DatanetReader` yields them.
//!
//! # Determinism
//! Everything that reaches a [`SpanTrace`] is integer arithmetic: the index is a
//! unique total order (suffixes compared token by token up to the end of their row,
//! then by position), so every build of the same rows is the same file whatever the
//! shard size or thread count; rarity is a fixed-point log2 computed with integer
//! operations only (no libm, whose last bits differ between platforms); the credit
//! split is exact rational arithmetic with largest-remainder rounding.
//!
//! # Limits and choices
//! - Token ids take 2 bytes when the vocabulary has at most 65,535 ids (the top
//!   value of the width is the row separator), 4 bytes above, up to [`MAX_VOCAB`].
//!   Suffix-array entries take the fewest bytes that address the slots (3 up to 2^24,
//!   4 up to 2^32, 5 above).
//! - A tombstoned row's tokens stay in the index, so that flagging a row in place
//!   ([`SpanIndex::mark_tombstoned`]) and building with the flag give the same file:
//!   counts and rarity still see them, a span found only in tombstoned rows is no
//!   span, and such rows are never credited. To remove the tokens too, rebuild
//!   without the rows.
//! - [`maximal_spans`] exposes steps 1–3 of [`trace`] (what infini-gram's
//!   `attribute` returns) for comparisons and tools.
//!
//! # Architecture invariants
//! - The span index and tracing know no candle, no tokenizer, no JSON and no
//!   network: token ids in, integers out.
//! - The record part reaches models only through `ml` (never candle), and JSON
//!   only as the record's canonical encoding.
//! - Nothing here reads the chain, a clock or the network: a record is a
//!   function of its inputs, so every machine computes and judges it alike.
//! - The index file is the only state; a query never writes.
//! - Tombstoned rows are never credited.

#[cfg(not(all(target_endian = "little", target_pointer_width = "64")))]
compile_error!("the span index memory-maps little-endian integers and needs a 64-bit target");

mod compute;
mod credits;
mod gradient;
mod index;
mod judge;
mod log2;
mod record;
mod retrieval;
mod sais;
mod trace;

pub use index::{
    DEFAULT_BUILD_MEMORY, DEFAULT_SHARD_TOKENS, FORMAT_VERSION, IndexBuilder, IndexKey, IndexRow, IndexSizes,
    IndexedRow, MAX_VOCAB, RowRef, SpanIndex, is_building_file,
};
pub use log2::{LOG2_ONE, log2_fixed};
pub use trace::{Span, SpanCandidate, SpanTrace, TRACE_MAGIC, TraceParams, maximal_spans, response_digest, trace};

pub use compute::{Inputs, SpanPart, compute_record, compute_record_version, trace_index, word_starts};
pub use credits::{mix, to_ppm};
pub use gradient::{
    GRADIENT_TOLERANCE_PPM, GradientInputs, OUTLIER_Z_MILLI, contribution_cosines, gradient_scores, relative_from,
    relative_scores,
};
pub use judge::{
    Check, Governed, PostedCredits, SettledReceipt, compare, credits_digest, judge, params_checks, record_credits,
    response_tokens, signed_record_checks,
};
pub use record::{
    AttributionRecord, CheckpointRef, DatanetVersionRef, GradientPartRecord, MixRecord, RECORD_VERSION,
    RECORD_VERSIONS, RecordParams, RetrievalPartRecord, SpanPartRecord, SpanRecord, canonical, record_hash,
};
pub use retrieval::{
    MAX_RETRIEVED_ROWS, RetrievalInputs, RetrievedRow, add_retrieval, combine, int_ppm, retrieval_part,
};

use std::path::PathBuf;

use primitives::rows::RowId;

/// Why an index could not be built, opened or queried, or a trace computed.
#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("span index {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable span index: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("span index {path} does not verify: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("a vocabulary of {0} tokens is not supported (1 to {MAX_VOCAB})")]
    Vocab(u64),
    #[error("row {row:?} has token id {token}, outside the vocabulary of {vocab} tokens")]
    TokenOutOfVocab { row: RowId, token: u32, vocab: u32 },
    #[error("rows must come in strictly increasing (contribution, index) order: {next:?} follows {prev:?}")]
    RowOrder { prev: RowId, next: RowId },
    #[error("row {0:?} is not in this index")]
    UnknownRow(RowId),
    #[error("trace parameters: {0}")]
    Params(String),
    #[error("trace input: {0}")]
    Input(String),
    #[error("span trace bytes: {0}")]
    Decode(String),
}
