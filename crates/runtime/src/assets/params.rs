//! Governed parameters of assets. Registered in [`crate::params::ALL`].

use crate::params::ParamSpec;

/// Share of a fine-tune's owner part paid to its base model (the base's
/// owner, or its shareholders once split), per settled receipt.
pub const ASSETS_BASE_ROYALTY_BPS: ParamSpec = ParamSpec {
    name: "assets.base_royalty_bps",
    default: 1_000,
    min: 0,
    max: 10_000,
    doc: "share of a fine-tune's owner part paid to its base model's owner or shareholders (bps)",
};
