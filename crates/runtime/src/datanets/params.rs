//! Governed parameters of Datanets: submission limits, the reject slash and the attestation lifetime.
//! Registered in [`crate::params::ALL`].

use crate::params::ParamSpec;

const MB: u128 = 1_000_000;

pub const DATANETS_MAX_SUBMISSION_BYTES: ParamSpec = ParamSpec {
    name: "datanets.max_submission_bytes",
    default: 5 * MB,
    min: 1,
    max: 1_000 * MB,
    doc: "largest contribution a Datanet may accept (bytes); a Datanet's own limit may only be lower",
};

pub const DATANETS_CONTRIBUTOR_DAILY_BYTES: ParamSpec = ParamSpec {
    name: "datanets.contributor_daily_bytes",
    default: 10 * MB,
    min: 1,
    max: 100_000 * MB,
    doc: "default bytes one contributor may submit to one Datanet per day",
};

pub const DATANETS_DATANET_DAILY_BYTES: ParamSpec = ParamSpec {
    name: "datanets.datanet_daily_bytes",
    default: 10 * MB,
    min: 1,
    max: 1_000_000 * MB,
    doc: "default bytes one Datanet accepts per day from all contributors",
};

pub const DATANETS_CONTRIBUTOR_DAILY_FILES: ParamSpec = ParamSpec {
    name: "datanets.contributor_daily_files",
    default: 20,
    min: 1,
    max: 100_000,
    doc: "default files one contributor may submit to one Datanet per day",
};

pub const DATANETS_REJECT_SLASH_BPS: ParamSpec = ParamSpec {
    name: "datanets.reject_slash_bps",
    default: 5_000,
    min: 0,
    max: 10_000,
    doc: "share of the bond sent to the treasury when a contribution is rejected as spam or duplicate",
};

pub const DATANETS_ATTESTATION_TTL: ParamSpec = ParamSpec {
    name: "datanets.attestation_ttl",
    default: 86_400,
    min: 60,
    max: 30 * 86_400,
    doc: "seconds an ingest attestation stays valid after it was signed",
};
