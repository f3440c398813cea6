//! `cargo run --release -p bench --example ingest -- [options]`: `openledger bench ingest` without
//! building the whole CLI (same options; `--help` lists them).

use clap::Parser;

/// Parse + dedup + score throughput of Datanet ingest (see `bench::IngestOpts`).
#[derive(Parser)]
#[command(name = "bench-ingest")]
struct Cli {
    #[command(flatten)]
    opts: bench::IngestOpts,
}

fn main() -> anyhow::Result<()> {
    bench::run_ingest(&Cli::parse().opts)
}
