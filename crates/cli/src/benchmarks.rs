//! `openledger bench …`: the benchmark suites of the `bench` crate, linked
//! only when the `cli` crate's `bench` feature is on (the default). A binary
//! built without it (`cargo build -p cli --no-default-features`) links none of
//! the harness (its peer drivers included) and answers every `bench` command
//! with an error that says so.

#[cfg(feature = "bench")]
pub use with_bench::{BenchArgs, run};
#[cfg(not(feature = "bench"))]
pub use without_bench::{BenchArgs, run};

#[cfg(feature = "bench")]
mod with_bench {
    use clap::{Args, Subcommand};

    #[derive(Args)]
    pub struct BenchArgs {
        #[command(subcommand)]
        cmd: BenchCmd,
    }

    #[derive(Subcommand)]
    enum BenchCmd {
        /// Transfers over JSON-RPC until every receipt is in, against Hardhat's node.
        Chain(bench::ChainOpts),
        /// State commit cost per block as the state grows, against plain redb.
        State(bench::StateOpts),
        /// Datanet ingest throughput: parse + dedup + score against a growing index.
        Ingest(bench::IngestOpts),
        /// LoRA fine-tuning tokens/s and peak memory, against PyTorch + PEFT on the CPU.
        Train(bench::TrainOpts),
        /// Greedy decode tokens/s at batch 1, 8, 32, against PyTorch + transformers generate.
        Generate(bench::GenerateOpts),
        /// Requests over N LoRA adapters through our engine, against HF PEFT switching adapters.
        Serve(bench::ServeOpts),
        /// Span index build and span tracing of a response, against infini-gram.
        Attribution(bench::AttributionOpts),
        /// Precision@1 of attribution records on planted facts, verbatim and paraphrased; LDS with --lds.
        AttributionQuality(bench::AttributionQualityOpts),
        /// Seeded structured and mutated inputs at every RPC method, HTTP route, the decoder and calldata.
        Fuzz(bench::FuzzOpts),
        /// Recall@k and MRR of BM25, a BM25 scan, dense and hybrid retrieval on planted facts; BM25 latency.
        Retrieval(bench::RetrievalOpts),
        /// The web app's server time per page on a generated dev chain (10^4 blocks, 10^3 contributions).
        Web(bench::WebOpts),
    }

    pub fn run(a: BenchArgs) -> anyhow::Result<()> {
        match a.cmd {
            BenchCmd::Chain(o) => bench::run_chain(&o),
            BenchCmd::State(o) => bench::run_state(&o),
            BenchCmd::Ingest(o) => bench::run_ingest(&o),
            BenchCmd::Train(o) => bench::run_train(&o),
            BenchCmd::Serve(o) => bench::run_serve(&o),
            BenchCmd::Generate(o) => bench::run_generate(&o),
            BenchCmd::Attribution(o) => bench::run_attribution(&o),
            BenchCmd::AttributionQuality(o) => bench::run_attribution_quality(&o),
            BenchCmd::Fuzz(o) => bench::run_fuzz(&o),
            BenchCmd::Retrieval(o) => bench::run_retrieval(&o),
            BenchCmd::Web(o) => bench::run_web(&o),
        }
    }
}

#[cfg(not(feature = "bench"))]
mod without_bench {
    use clap::Args;

    #[derive(Args)]
    pub struct BenchArgs {
        /// The suite and its options (this binary has no benchmarks to run them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    }

    pub fn run(a: BenchArgs) -> anyhow::Result<()> {
        let what = if a.args.is_empty() { "bench".to_owned() } else { format!("bench {}", a.args[0]) };
        anyhow::bail!(
            "`openledger {what}`: this openledger was built without benchmarks (the `bench` feature of the \
             `cli` crate is off); build it with default features (`cargo build -p cli`) to run them"
        )
    }
}
