//! OpenLedger benchmarks, run side by side with a peer (see `docs/benchmarks.md`).
//!
//! The `openledger` binary embeds these suites:
//!
//! - `openledger bench chain` ([`ChainOpts`], [`run_chain`]): pre-signed EIP-1559
//!   transactions from many senders sent over JSON-RPC with [`rpc::client::RpcClient`]
//!   until every one is in a block, against our node (`openledger up`, started as a
//!   subprocess on a fresh data directory) and against its peers ([`PeerKind`]):
//!   Hardhat's node (npm `hardhat`, installed by `bench/peers/install.sh` into the
//!   git-ignored `bench/.peers/hardhat`) and Foundry's Anvil (npm
//!   `@foundry-rs/anvil-linux-amd64`, by `bench/peers/install_anvil.sh` into
//!   `bench/.peers/anvil`), alternating runs, instant sealing vs automine and
//!   interval blocks vs interval mining; plain transfers or ERC-20 `transfer` calls
//!   ([`WorkloadKind`]). Figures: transactions/s and the ratios ours/peer, p50/p99
//!   submit-to-inclusion latency, each node's peak and final RSS and CPU per
//!   transaction.
//! - `openledger bench state` ([`StateOpts`], [`run_state`]): the cost of one block
//!   commit as the state grows, [`storage::Store`] (Jellyfish Merkle tree on redb,
//!   fsync per block) vs the same writes to a plain redb table without the Merkle
//!   layer. Figures: µs per write, ms per block, the ratio, file sizes.
//! - `openledger bench ingest` ([`IngestOpts`], [`run_ingest`]): parse + score + dedup
//!   throughput of the `ingest` crate against a Datanet index growing to 10^6 rows, over the
//!   sample Datanets under `data/` and generated text. No peer: MB/s and rows/s. With
//!   `--near-dup-check`, the cases planted in `data/planted.json` must be flagged and the
//!   near-duplicate false-positive rate on the other sample rows is reported.
//! - `openledger bench train` ([`TrainOpts`], [`run_train`]): LoRA fine-tuning of the same
//!   Llama-architecture model on the same tokens, `ml::Trainer` (frozen-linear backward, and
//!   the naive candle backward as a third column) vs PyTorch + PEFT on the CPU
//!   (`bench/peers/train_peer.py` in the git-ignored `bench/.venv`), each run a fresh
//!   process. Figures: tokens/s, peak RSS, the ratios, and the two loss curves.
//! - `openledger bench generate` ([`GenerateOpts`], [`run_generate`]): greedy decoding at
//!   batch 1, 8 and 32 on the same seeded Llama configuration, `ml::Model::forward` over a
//!   paged KV cache vs PyTorch + transformers `generate(do_sample=False)`
//!   (`bench/peers/generate_peer.py` in `bench/.venv`), alternating rounds. Figures: tokens/s
//!   (whole generation and decode steps only), ms per step, the ratios, token agreement, the
//!   share of the memory-bandwidth bound; `--profile` adds where our step time goes;
//!   `--gguf PATH` decodes a real model (ours only).
//! - `openledger bench attribution` ([`AttributionOpts`], [`run_attribution`]): the
//!   `attribution` crate's span index (build rate, bytes per token) and span tracing of
//!   500-token responses (p50/p99) vs infini-gram (`bench/peers/attribution_peer.py` in
//!   `bench/.venv`) on the same seeded Zipfian corpus with planted spans, at 10^6 and
//!   10^7 tokens (10^8 by hand); both sides' maximal spans must be identical.
//! - `openledger bench attribution-quality` ([`AttributionQualityOpts`],
//!   [`run_attribution_quality`]): a seeded Datanet of planted facts (each contributor's
//!   own, plus shared filler), fine-tuned through ModelFactory on the base model; records
//!   from `attribution::compute_record` for verbatim and paraphrased queries at span
//!   weight 10^6, 0 and the governed 5×10^5. No peer: precision@1 per method, the share
//!   reaching the right contributor, time per record; `--lds` (by hand) the linear
//!   datamodeling score of the gradient method against models retrained on random halves;
//!   `--answers` (for a real model, `--model FILE.gguf`) adds a generic contributor and a
//!   copycat and attributes the fine-tuned model's greedy answers: precision@1, credit to
//!   non-suppliers, recall and per-answer latency p50/p99.
//! - `openledger bench fuzz` ([`FuzzOpts`], [`fuzz`], [`run_fuzz`]): seeded structured
//!   and mutated inputs at every JSON-RPC method (batches included), every HTTP route,
//!   the transaction decoder (in-process and over `eth_sendRawTransaction`) and every
//!   system module's calldata (`eth_call` and signed transactions), against a dev node
//!   it starts (or `--rpc`/`--http`). No peer: per surface the inputs tried, clear
//!   refusals, deliberate 503s, unexpected 5xx, hangs, panics, the admission check
//!   (refused inputs leave the state root and pool unchanged) and whether the node
//!   stayed live. `cli/tests/fuzz.rs` runs it for 30 s in `cargo test`.
//! - `openledger bench retrieval` ([`RetrievalOpts`], [`run_retrieval`]): the `retrieval`
//!   crate on a generated Datanet with planted facts, questions that share the fact's words
//!   and paraphrased ones: recall@1/@5 and MRR@10 of BM25 (tantivy), an exact BM25 scan
//!   (the reference), dense (mean-pooled base-model states, flat search) and hybrid (RRF);
//!   BM25 build time, index size and latency p50/p99 at 10^5 and 10^6 rows. No peer.
//! - `openledger bench web` ([`WebOpts`], [`run_web`]): the web app's server time per
//!   page (p50/p95/worst over loopback HTTP) on a dev chain it generates: 10^3 real
//!   contributions (uploaded, attested, submitted, approved) and 10^4 blocks. No peer:
//!   the target is 50 ms p95 for every page.
//!
//! As `/work/shared/BENCHMARKS.md` asks: both systems run in one process on the
//! same input, alternating (A B A B), and every report prints what ran, the input
//! size, the medians, the ratio and the machine (cores, memory). Benchmarks print
//! figures; the tests here only check the helpers and that the suites run.

mod attribution;
mod attribution_quality;
mod chain;
mod fuzz;
mod generate;
mod ingest;
mod machine;
mod peer;
mod retrieval;
mod serve;
mod serve_billed;
mod state;
mod stats;
mod train;
mod web;

pub use self::attribution::{AttributionOpts, run_attribution};
pub use self::attribution_quality::{AttributionQualityOpts, run_attribution_quality};
pub use self::generate::{GenerateOpts, WeightsDtype, run_generate};
pub use self::ingest::{IngestOpts, run_ingest};
pub use self::retrieval::{RetrievalOpts, run_retrieval};
pub use self::serve::{ServeOpts, run_serve};
pub use chain::{ChainMode, ChainOpts, PeerKind, WorkloadKind, run_chain};
pub use fuzz::{FuzzOpts, FuzzReport, Outcome, SurfaceStats, fuzz, run_fuzz};
pub use machine::Machine;
pub use state::{StateOpts, run_state};
pub use stats::{median, percentile};
pub use train::{TrainOpts, WorkerGrad, run_train};
pub use web::{WebOpts, run_web};
