//! Governed parameters of attribution: the span/gradient weighting, the retrieval share and span length the records use, and the challenges' bond, windows and penalty.
//! Registered in [`crate::params::ALL`].

use crate::params::{DAY_OF_BLOCKS, ParamSpec};

/// Proof of Attribution: the share of the span (exact-match) method in a
/// record's credits, the rest going to the gradient method; when one method
/// credits nothing the other takes it all.
pub const ATTRIBUTION_SPAN_WEIGHT_PPM: ParamSpec = ParamSpec {
    name: "attribution.span_weight_ppm",
    default: 500_000,
    min: 0,
    max: 1_000_000,
    doc: "share (ppm) of span tracing in an attribution record; the gradient method gets the rest",
};

/// Retrieval-augmented answers: the share of a receipt's data part that goes
/// to the retrieved rows the answer quotes, when the record also credits
/// training data (the record's mix applies it; the chain only governs it).
pub const ATTRIBUTION_RETRIEVAL_SHARE_BPS: ParamSpec = ParamSpec {
    name: "attribution.retrieval_share_bps",
    default: 3_000,
    min: 0,
    max: 10_000,
    doc: "share (bps) of an answer's data part that goes to the retrieved rows it quotes, when it also credits training data; the rest to training-data attribution",
};

/// The shortest span (in tokens) span tracing credits.
pub const ATTRIBUTION_MIN_SPAN_TOKENS: ParamSpec = ParamSpec {
    name: "attribution.min_span_tokens",
    default: 8,
    min: 2,
    max: 1_000,
    doc: "shortest span, in tokens, that span tracing credits",
};

/// Challenges of attribution records (the `attribution` module): the bond a
/// challenger posts, the blocks the challenged operator has to reveal the record
/// and prompt, the blocks the validators have to sign a verdict, and what a
/// wrong (or unrevealed) record costs the operator.
pub const ATTRIBUTION_CHALLENGE_BOND: ParamSpec = ParamSpec {
    name: "attribution.challenge_bond",
    default: 10 * primitives::ONE_OPEN,
    min: 1,
    max: 1_000_000 * primitives::ONE_OPEN,
    doc: "least bond (base units) of a challenge of an attribution record; forfeited if the record was right",
};

pub const ATTRIBUTION_REVEAL_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.reveal_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks the challenged operator has to reveal the record and prompt, else it is slashed",
};

pub const ATTRIBUTION_VERDICT_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.verdict_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after the reveal for the validators' verdict; without one the bond goes back",
};

pub const ATTRIBUTION_CHALLENGE_SLASH_PPM: ParamSpec = ParamSpec {
    name: "attribution.challenge_slash_ppm",
    default: 10_000,
    min: 0,
    max: 1_000_000,
    doc: "share (ppm) of the serving operator's stake slashed for a wrong or unrevealed attribution record",
};

pub const ATTRIBUTION_CHALLENGE_JAIL_BLOCKS: ParamSpec = ParamSpec {
    name: "attribution.challenge_jail_blocks",
    default: 0,
    min: 0,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks a serving operator is jailed for a wrong or unrevealed attribution record",
};
