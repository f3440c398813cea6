//! `openledger`: one binary for the node, keys, transactions, queries and benchmarks.
//!
//! Human output by default; `--json` prints machine-readable JSON for scripts.

mod benchmarks;
mod commands;
mod contract;
mod output;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "openledger", version, about = "OpenLedger: the AI-native ledger node", propagate_version = true)]
struct Cli {
    /// Print JSON instead of human-readable text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a development node: chain id 31337, ten funded accounts, RPC on 127.0.0.1:8545.
    Up(commands::node::UpArgs),
    /// Write a node configuration and genesis into a data directory.
    Init(commands::node::InitArgs),
    /// Play the whole story on a running dev node (`openledger up` in another terminal): Datanet,
    /// contributions, a spammer slashed, a fine-tune, governance, paid answers, attribution, claims.
    Demo(commands::demo::DemoArgs),
    /// Start a node from a configuration written by `init` or `testnet`.
    Start(commands::node::StartArgs),
    /// Write the homes of a network of validators on this machine (and start them with --start).
    Testnet(commands::testnet::TestnetArgs),
    /// Manage keystore accounts (Ethereum keystore v3 files).
    #[command(subcommand)]
    Keys(commands::keys::KeysCmd),
    /// Sign and send transactions.
    #[command(subcommand)]
    Tx(commands::tx::TxCmd),
    /// EVM contracts: deploy from an artifact, call, send, trace.
    #[command(subcommand)]
    Contract(commands::contract::ContractCmd),
    /// Models and Datanets as tokens: owner, transfer; a model's revenue shares: split, claim,
    /// and trade them in a Uniswap v2 pool (quote, swap, add-liquidity).
    #[command(subcommand)]
    Asset(commands::asset::AssetCmd),
    /// Prepaid licences of a model: offer, withdraw, buy, close, show, list.
    #[command(subcommand)]
    Licence(commands::licence::LicenceCmd),
    /// Read chain state over JSON-RPC.
    #[command(subcommand)]
    Query(commands::query::QueryCmd),
    /// Stake: register operators, bond, delegate, unbond, rewards.
    #[command(subcommand)]
    Stake(commands::stake::StakeCmd),
    /// Governance: propose, vote, execute.
    #[command(subcommand)]
    Gov(commands::gov::GovCmd),
    /// Datanets: create, show, list, export, reputation, leaderboard.
    #[command(subcommand)]
    Datanet(commands::datanet::DatanetCmd),
    /// Contribute a file to a Datanet (ingest, attest, submit with your bond).
    Contribute(commands::datanet::ContributeArgs),
    /// Curate contributions: approve, reject, tombstone rows.
    #[command(subcommand)]
    Curate(commands::datanet::CurateCmd),
    /// Models: `bootstrap` trains the project's base model, `pull` fetches one from the Hugging Face hub;
    /// propose, show, list, retire, price.
    #[command(subcommand)]
    Model(commands::model::ModelCmd),
    /// Chat with a registered model on this machine (its adapter from the node's blob store).
    Chat(commands::chat::ChatArgs),
    /// Ask a model through the node's OpenAI-compatible API (billed to your API key).
    Infer(commands::infer::InferArgs),
    /// The rows of Datanets that best match a query (BM25; what `infer --retrieve` puts in the prompt).
    Retrieve(commands::infer::RetrieveArgs),
    /// Proof of Attribution: a receipt's record, and its verification from public inputs.
    #[command(subcommand)]
    Attribution(commands::attribution::AttributionCmd),
    /// Contributors' rewards from attribution: show and claim.
    #[command(subcommand)]
    Rewards(commands::attribution::RewardsCmd),
    /// Your inference escrow and the allowances it grants serving operators.
    #[command(subcommand)]
    Escrow(commands::escrow::EscrowCmd),
    /// API keys bound on-chain to your address.
    #[command(subcommand)]
    Apikey(commands::apikey::ApiKeyCmd),
    /// Agents: identity, budgets, bond, memory, paid tasks, the trail of a task, and an agent at work.
    #[command(subcommand)]
    Agent(commands::agent::AgentCmd),
    /// ModelFactory: LoRA fine-tuning jobs on Datanet versions.
    #[command(subcommand)]
    Train(commands::train::TrainCmd),
    /// Benchmarks (see docs/benchmarks.md); not in a binary built without the `bench` feature.
    Bench(benchmarks::BenchArgs),
    /// The economic simulator: thousands of simulated participants over simulated weeks on the
    /// real runtime and ingest, in-process; CSV files and an HTML report (docs/simulator.md).
    Sim(commands::sim::SimArgs),
    /// Maintenance of a stopped node's data.
    #[command(subcommand)]
    Debug(commands::node::DebugCmd),
    /// State snapshots: export the state after a block, or start a new data directory from one.
    #[command(subcommand)]
    Snapshot(commands::snapshot::SnapshotCmd),
}

fn main() {
    let cli = Cli::parse();
    let out = output::Out { json: cli.json };
    let r = match cli.cmd {
        Cmd::Up(a) => commands::node::up(a, out),
        Cmd::Init(a) => commands::node::init(a, out),
        Cmd::Demo(a) => commands::demo::run(a, out),
        Cmd::Start(a) => commands::node::start(a, out),
        Cmd::Testnet(a) => commands::testnet::testnet(a, out),
        Cmd::Keys(c) => commands::keys::run(c, out),
        Cmd::Tx(c) => commands::tx::run(c, out),
        Cmd::Contract(c) => commands::contract::run(c, out),
        Cmd::Asset(c) => commands::asset::run(c, out),
        Cmd::Licence(c) => commands::licence::run(c, out),
        Cmd::Query(c) => commands::query::run(c, out),
        Cmd::Stake(c) => commands::stake::run(c, out),
        Cmd::Gov(c) => commands::gov::run(c, out),
        Cmd::Datanet(c) => commands::datanet::run(c, out),
        Cmd::Contribute(a) => commands::datanet::contribute(a, out),
        Cmd::Curate(c) => commands::datanet::curate(c, out),
        Cmd::Model(c) => commands::model::run(c, out),
        Cmd::Train(c) => commands::train::run(c, out),
        Cmd::Chat(a) => commands::chat::run(a, out),
        Cmd::Infer(a) => commands::infer::infer(a, out),
        Cmd::Retrieve(a) => commands::infer::retrieve(a, out),
        Cmd::Attribution(c) => commands::attribution::attribution(c, out),
        Cmd::Rewards(c) => commands::attribution::rewards(c, out),
        Cmd::Escrow(c) => commands::escrow::escrow(c, out),
        Cmd::Apikey(c) => commands::apikey::apikey(c, out),
        Cmd::Agent(c) => commands::agent::run(c, out),
        Cmd::Bench(a) => benchmarks::run(a),
        Cmd::Sim(a) => commands::sim::run(a, out),
        Cmd::Debug(c) => commands::node::debug(c, out),
        Cmd::Snapshot(c) => commands::snapshot::run(c, out),
    };
    if let Err(e) = r {
        if cli.json {
            println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}
