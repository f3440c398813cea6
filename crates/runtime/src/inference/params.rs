//! Governed parameters of inference: release delay, attribution timeout and challenge window, the retired model's grace, credits per record, and the fee split.
//! Registered in [`crate::params::ALL`].

use crate::params::{DAY_OF_BLOCKS, ParamSpec};

/// Blocks between `release` and the earliest `completeRelease` of an allowance:
/// long enough for an operator to settle the receipts it served before the request.
pub const INFERENCE_RELEASE_DELAY_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.release_delay_blocks",
    default: 3_600,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks a released allowance stays spendable by its operator before it returns to the free escrow",
};

/// Blocks after settlement within which the settling operator may post a receipt's attribution record.
pub const INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.attribution_timeout_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after settlement to post an attribution record; afterwards the data part goes to the fallback",
};

/// Blocks after a live model's retirement during which its receipts issued before
/// the retirement still settle.
pub const INFERENCE_RETIRED_GRACE_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.retired_grace_blocks",
    default: DAY_OF_BLOCKS,
    min: 0,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after a live model retires during which its receipts issued before the retirement still settle",
};

/// Blocks a posted record's credits stay pending (challengeable) before they can be finalized.
pub const INFERENCE_CHALLENGE_WINDOW_BLOCKS: ParamSpec = ParamSpec {
    name: "inference.challenge_window_blocks",
    default: DAY_OF_BLOCKS,
    min: 1,
    max: 30 * DAY_OF_BLOCKS,
    doc: "blocks after an attribution record is posted before its credits can be finalized",
};

/// Most contributions one attribution record credits (state stays small).
pub const INFERENCE_MAX_CREDITS: ParamSpec = ParamSpec {
    name: "inference.max_credits",
    default: 32,
    min: 1,
    max: 256,
    doc: "most contributions one attribution record may credit",
};

/// Fee split of every settled receipt, in basis points. If the five shares sum
/// to more than 10,000 (set inconsistently by separate proposals), settlement
/// uses the defaults (30/40/15/10/5 %) until they are fixed. The treasury always
/// gets the cost minus the other four parts, so a sum below 10,000 leaves the
/// remainder to it, as does the rounding dust of every part.
pub const INFERENCE_SPLIT_OWNER_BPS: ParamSpec = ParamSpec {
    name: "inference.split_owner_bps",
    default: 3_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost paid to the model's owner",
};

pub const INFERENCE_SPLIT_DATA_BPS: ParamSpec = ParamSpec {
    name: "inference.split_data_bps",
    default: 4_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost held for the data contributors (by attribution, else the fallback)",
};

pub const INFERENCE_SPLIT_SERVING_BPS: ParamSpec = ParamSpec {
    name: "inference.split_serving_bps",
    default: 1_500,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost paid to the serving operator",
};

pub const INFERENCE_SPLIT_STAKERS_BPS: ParamSpec = ParamSpec {
    name: "inference.split_stakers_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost deposited to staking's serving pool",
};

pub const INFERENCE_SPLIT_TREASURY_BPS: ParamSpec = ParamSpec {
    name: "inference.split_treasury_bps",
    default: 500,
    min: 0,
    max: 10_000,
    doc: "basis points of each receipt's cost for the treasury (which also receives any remainder and rounding dust)",
};
