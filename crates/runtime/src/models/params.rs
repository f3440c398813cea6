//! Governed parameters of models: the base model's genesis prices.
//! Registered in [`crate::params::ALL`].

use crate::params::{OPEN, ParamSpec};

/// Price of the base model m1 per 1K input tokens, written into its record at
/// genesis; a proposal reprices m1 later with `models.setPrice(1, in, out)`.
pub const MODELS_BASE_PRICE_IN_PER_1K: ParamSpec = ParamSpec {
    name: "models.base_price_in_per_1k",
    default: OPEN / 1_000,
    min: 0,
    max: 1_000 * OPEN,
    doc: "genesis price of the base model m1 per 1K input tokens (base units of OPEN)",
};

/// Price of the base model m1 per 1K output tokens, written into its record at genesis.
pub const MODELS_BASE_PRICE_OUT_PER_1K: ParamSpec = ParamSpec {
    name: "models.base_price_out_per_1k",
    default: 2 * OPEN / 1_000,
    min: 0,
    max: 1_000 * OPEN,
    doc: "genesis price of the base model m1 per 1K output tokens (base units of OPEN)",
};
