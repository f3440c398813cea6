//! `ml`: the only crate that knows candle. Llama-family decoders (Llama,
//! Mistral, Qwen2, SmolLM) loaded from Hugging Face folders or GGUF files; LoRA
//! adapters in the PEFT layout; generation over a paged KV cache with mixed
//! adapters per batch; LoRA training with a frozen-weight backward; and the
//! gradients and projections that attribution uses.
//!
//! Other crates (`factory`, `serve`, `attribution`) call this API and never
//! import candle: tensors stay inside, slices and ids cross the boundary.

pub mod bootstrap;
pub mod config;
pub mod eval;
pub mod frozen;
pub mod fused;
pub mod generate;
pub mod grad;
pub mod kernels;
pub mod kv;
pub mod lora;
pub mod model;
mod model_train;
pub mod rng;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use config::{Family, ModelConfig, RopeScaling};
pub use generate::{Finish, Generation, Sampler, SamplingParams, StopWatch, argmax, generate};
pub use grad::{Projection, batch_sequence_gradients, project, sequence_gradients};
pub use kv::{BlockTable, KvCache, SeqId};
pub use lora::{AdapterDtype, LoraAdapter, LoraConfig, LoraVars, Target};
pub use model::{BaseGrad, Logits, Model, OpProfile, SeqStep, Step, StepOutput};
pub use tokenizer::{ChatMessage, TextTokenizer};
pub use train::{AdamW, Checkpoint, StepReport, StepTiming, TokenBatch, TrainConfig, Trainer, lr_at};
pub use weights::{ModelFiles, tensor_bytes};

/// Errors of the ML layer, each with what a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("bad model file: {0}")]
    Format(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("the adapter does not fit this base model: {0}")]
    AdapterMismatch(String),
    #[error("the KV cache is full: {needed} more blocks needed, {free} free")]
    KvFull { needed: usize, free: usize },
    #[error("{needed} positions exceed the model's context of {max}")]
    ContextFull { needed: usize, max: usize },
    #[error("sequence {0} is not in the KV cache")]
    UnknownSequence(u64),
    #[error("I/O: {0}")]
    Io(String),
    #[error("tensor: {0}")]
    Tensor(String),
}

impl From<candle_core::Error> for MlError {
    fn from(e: candle_core::Error) -> Self {
        // candle appends a backtrace to its messages; the first line is the error.
        MlError::Tensor(e.to_string().lines().next().unwrap_or("").to_string())
    }
}
