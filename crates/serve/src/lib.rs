//! `serve`: OpenLoRA. One base model in memory serving many LoRA adapters:
//! a scheduler with continuous batching over `ml`'s paged KV cache, batches
//! that mix adapters (base projections once, low-rank products per adapter
//! group, inside `ml`), a byte-bounded adapter cache loaded just in time (with a disk tier of
//! adapters in their held form), the
//! OpenAI-compatible HTTP API with streaming, Prometheus metrics, the
//! metering seam (reserve, bill, receipt), and the bounded queue on which
//! attribution runs beside the batch.
//!
//! This crate calls `ml` and never imports candle.

pub mod attribution_queue;
pub mod billing;
pub mod cache;
pub mod engine;
pub mod held;
pub mod metrics;
pub mod openai;
pub mod ratelimit;
pub mod retrieval;

pub use attribution_queue::{AttributionQueue, JobStatus, QueueConfig, Refusal, Slot, pending_pointer};
pub use billing::{Billing, BillingError, Reservation, Usage, cost};
pub use cache::{AdapterCache, AdapterSource, CacheError, Residency};
pub use engine::{Engine, EngineConfig, Event, Outcome, Request, SubmitError};
pub use held::{HeldTier, Served};
pub use metrics::Metrics;
pub use openai::{
    ATTRIBUTION_PUBLIC_HEADER, Attributor, Limits, ModelDirectory, ModelEntry, OpenLora, RecordAccess, RecordView,
    record_view, routes,
};
pub use ratelimit::{RateLimiter, RateLimits, RateRefusal};
pub use retrieval::{DatanetSel, Passage, RetrieveError, Retrieved, Retriever};
