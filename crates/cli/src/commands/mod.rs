//! One module per command group.

pub mod agent;
pub mod agent_memory;
pub mod agent_run;
pub mod agent_task;
pub mod apikey;
pub mod asset;
pub mod asset_history;
pub mod attribution;
pub mod chat;
pub mod contract;
pub mod datanet;
pub mod demo;
pub mod escrow;
pub mod gov;
pub mod httpc;
pub mod infer;
pub mod keys;
pub mod licence;
pub mod model;
pub mod model_bootstrap;
pub mod model_pull;
pub mod node;
pub mod node_keys;
pub mod query;
pub mod sim;
pub mod snapshot;
pub mod stake;
pub mod testnet;
pub mod train;
pub mod tx;

use std::path::PathBuf;

/// `$OPENLEDGER_HOME`, or `~/.openledger`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("OPENLEDGER_HOME") {
        return PathBuf::from(h);
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".openledger"),
        None => PathBuf::from(".openledger"),
    }
}

/// The base model a command was given (`hf:ORG/NAME` resolved in the Hugging
/// Face cache, a path as it is), or else the committed `models/base`.
pub fn base_model(given: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    match given {
        Some(p) => Ok(Some(hub::resolve_model_path(&p)?)),
        None => Ok(::node::default_base_model()),
    }
}

/// The default keystore directory.
pub fn default_keystore() -> PathBuf {
    home().join("keystore")
}

/// Default RPC endpoint, overridable by `$OPENLEDGER_RPC`.
pub const DEFAULT_RPC: &str = "127.0.0.1:8545";

#[derive(clap::Args, Clone, Debug)]
pub struct RpcArgs {
    /// JSON-RPC endpoint of the node.
    #[arg(long, env = "OPENLEDGER_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
}

impl RpcArgs {
    pub fn client(&self) -> rpc::client::RpcClient {
        rpc::client::RpcClient::new(&self.rpc)
    }
}
