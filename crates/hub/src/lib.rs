//! The Hugging Face hub for OpenLedger, when the user asks for it.
//!
//! - [`cache`]: the standard cache layout on disk (`$HF_HOME/hub/models--ORG--NAME/…`),
//!   and the resolution of `hf:ORG/NAME` wherever a base model path is accepted.
//!   Resolution never touches the network.
//! - [`pull`]: `openledger model pull ORG/NAME`: the files a model needs, over the
//!   hub's file API (`$HF_ENDPOINT`, default <https://huggingface.co>), resumed
//!   where a download stopped, every size and hash checked against the hub's
//!   metadata before a file enters the cache.
//!
//! Nothing here runs unless the user runs `model pull`: the node and every other
//! command only read the cache.

pub mod cache;
pub mod pull;

use std::path::PathBuf;

pub use cache::{HubCache, ModelSpec, resolve_model_path};
pub use pull::{Hub, Progress, PullReport, PulledFile, Selection};

/// Why a pull or a resolution failed; each says what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{spec:?}: {why}")]
    BadSpec { spec: String, why: String },
    #[error(
        "{repo} (revision {revision}) is not in the Hugging Face cache at {}: run `openledger model pull {repo}` first",
        cache.display()
    )]
    NotInCache { repo: String, revision: String, cache: PathBuf },
    #[error("the Hugging Face cache: {0}")]
    Cache(String),
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error(
        "no model repository {repo} at {endpoint} ({detail}); a repository is ORG/NAME, e.g. HuggingFaceTB/SmolLM2-135M-Instruct"
    )]
    RepoNotFound { repo: String, endpoint: String, detail: String },
    #[error("{repo} has no revision {revision:?} at {endpoint}")]
    RevisionNotFound { repo: String, revision: String, endpoint: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status { url: String, status: u16, detail: String },
    #[error("the hub's metadata for {repo}: {why}")]
    Metadata { repo: String, why: String },
    #[error("{0}")]
    NoModelFiles(String),
    #[error("{file}: {why}")]
    Refused { file: String, why: String },
    #[error(
        "{file}: {algo} of the download is {got}, the hub's metadata says {expected}; the file was discarded and is not in the cache"
    )]
    HashMismatch { file: String, algo: &'static str, expected: String, got: String },
}
