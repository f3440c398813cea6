//! `factory`: ModelFactory. A job names a base model, Datanet versions and
//! hyperparameters; the factory tokenises the versions' rows (chat-formatted
//! for `{prompt, completion}` rows), splits train/validation by row id, packs
//! sequences, trains a LoRA adapter with checkpoints it can resume from,
//! evaluates it, keeps checkpoints for attribution with per-row gradient
//! sketches, and stores every artefact in the blob store. Jobs are queued and
//! persisted; progress streams over HTTP (`/v1/jobs/...`).
//!
//! This crate calls `ml` and never imports candle.

pub mod data;
pub mod eval;
pub mod job;
pub mod queue;
pub mod registration;
pub mod routes;
pub mod sketch;
pub mod spec;

pub use data::{Dataset, TrainingRow};
pub use job::{JobOutput, KeptCheckpoint, Metrics, Progress};
pub use queue::{Artefacts, FactoryEnv, JobLimits, JobQueue, JobRecord, JobStatus};
pub use sketch::{SketchWriter, Sketches};
pub use spec::{DatanetVersion, JobSpec};

/// Why a job cannot be submitted or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error("invalid job: {0}")]
    Spec(String),
    #[error("data: {0}")]
    Data(String),
    #[error("base model: {0}")]
    BaseModel(String),
    /// The job names a base model this node does not serve (never a path on disk).
    #[error("{0}")]
    UnknownBaseModel(String),
    /// The owner has as many jobs or training steps queued as the node allows.
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Ml(#[from] ml::MlError),
    #[error("I/O: {0}")]
    Io(String),
    #[error("job {0} does not exist")]
    UnknownJob(u64),
    #[error("{0}")]
    Forbidden(String),
    /// The submitter may not train on a Datanet (an allow-list Datanet it is no member of).
    #[error("{0}")]
    NotMember(String),
    #[error("blob store: {0}")]
    Blobs(String),
}
