//! The node: reads configuration and genesis files, opens the chain, starts the
//! block producer and serves JSON-RPC. The CLI calls [`run`]; tests can start
//! the same node in-process.

mod backend;
mod config;
mod factory_env;

pub use factory_env::NodeFactoryEnv;

pub use backend::ChainBackend;
pub use config::{
    ConfigError, ConfigFile, DEV_BASE_MODEL_HASH, DEV_BASE_MODEL_NAME, DEV_VALIDATOR_BOND_OPEN, GenesisFile,
    GenesisOperatorFile, NodeConfig, default_base_model, dev_accounts, dev_attester, dev_consensus_key, dev_genesis,
    dev_params, load_genesis,
};

use std::net::SocketAddr;
use std::sync::Arc;

use chain::{Chain, ChainConfig};

/// A started node.
pub struct Node {
    pub chain: Arc<Chain>,
    pub rpc_addr: SocketAddr,
    /// Where the HTTP API listens, if it does.
    pub http_addr: Option<SocketAddr>,
    pub datanets: Arc<datanets::DatanetService>,
    /// ModelFactory's job queue.
    pub jobs: Arc<factory::JobQueue>,
}

/// Chain state for the Datanet services: the latest committed snapshot.
struct ChainState(Arc<Chain>);

impl datanets::StateSource for ChainState {
    fn state(&self) -> Result<Box<dyn primitives::state::StateRead>, String> {
        self.0.snapshot().map(|s| Box::new(s) as Box<dyn primitives::state::StateRead>).map_err(|e| e.to_string())
    }
    fn chain_id(&self) -> u64 {
        self.0.chain_id()
    }
}

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Chain(#[from] chain::ChainError),
    #[error("cannot listen for JSON-RPC on {addr}: {err} (is another node running? pick another --rpc-addr)")]
    Bind { addr: SocketAddr, err: std::io::Error },
    #[error("cannot listen for HTTP on {addr}: {err} (is another node running? pick another --http-addr)")]
    BindHttp { addr: SocketAddr, err: std::io::Error },
    #[error("blob store: {0}")]
    Blobs(String),
    #[error("job queue: {0}")]
    Jobs(String),
    #[error("cannot write {ENDPOINTS_FILE} in the data directory: {0}")]
    Endpoints(std::io::Error),
}

/// Open the chain, start producing blocks and serving RPC. Returns once the
/// RPC socket is listening; the services run on the current tokio runtime.
pub async fn start(cfg: &NodeConfig) -> Result<Node, NodeError> {
    // A stale file from an earlier run must never point a client at the wrong port.
    let endpoints_path = cfg.data_dir.join(ENDPOINTS_FILE);
    let _ = std::fs::remove_file(&endpoints_path);
    let chain_cfg = ChainConfig {
        data_dir: cfg.data_dir.clone(),
        genesis: cfg.genesis.clone(),
        block_time: cfg.block_time,
        history: cfg.history,
        pool: chain::PoolConfig::default(),
        max_txs_per_block: cfg.max_txs_per_block,
    };
    let chain = tokio::task::spawn_blocking(move || Chain::open(chain_cfg)).await.expect("chain open task")?;
    let listener =
        tokio::net::TcpListener::bind(cfg.rpc_addr).await.map_err(|err| NodeError::Bind { addr: cfg.rpc_addr, err })?;
    let rpc_addr = listener.local_addr().map_err(|err| NodeError::Bind { addr: cfg.rpc_addr, err })?;
    let blob_cfg = match &cfg.blobs {
        Some(s) => s.parse::<blobs::BlobConfig>().map_err(|e| NodeError::Blobs(e.to_string()))?,
        None => blobs::BlobConfig::local(cfg.data_dir.join("blobs")),
    };
    let store = Arc::new(blobs::BlobStore::open(&blob_cfg).map_err(|e| NodeError::Blobs(e.to_string()))?);
    let datanets =
        datanets::DatanetService::new(Arc::new(ChainState(chain.clone())), store.clone(), cfg.attester.clone());
    let env = Arc::new(NodeFactoryEnv::new(
        chain.clone(),
        datanets.clone(),
        store.clone(),
        cfg.base_model.clone(),
        tokio::runtime::Handle::current(),
    ));
    let jobs = factory::JobQueue::open(&cfg.data_dir.join("jobs"), env).map_err(|e| NodeError::Jobs(e.to_string()))?;
    jobs.start();
    let http_listener = match cfg.http_addr {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|err| NodeError::BindHttp { addr, err })?),
        None => None,
    };
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    chain.start();
    let backend: Arc<dyn rpc::Backend> = Arc::new(ChainBackend::new(chain.clone()));
    tokio::spawn(async move {
        if let Err(e) = rpc::serve(listener, backend).await {
            tracing::error!("JSON-RPC server stopped: {e}");
        }
    });
    // Place every contribution's blobs before the blob route may serve unknown hashes.
    let svc = datanets.clone();
    tokio::spawn(async move {
        if let Err(e) = svc.sync_owners().await {
            tracing::error!("Datanet blob access sync failed (unknown blobs stay refused): {e}");
        }
    });
    if let Some(l) = http_listener {
        let policy: Arc<dyn blobs::BlobAccessPolicy> = Arc::new(datanets::DatanetBlobPolicy(datanets.clone()));
        let router = datanets::routes(datanets.clone())
            .merge(blobs::routes(store, policy))
            .merge(factory::routes::routes(jobs.clone()));
        tokio::spawn(async move {
            if let Err(e) = httpapi::serve(l, router).await {
                tracing::error!("HTTP server stopped: {e}");
            }
        });
    }
    write_endpoints(&endpoints_path, rpc_addr, http_addr).map_err(NodeError::Endpoints)?;
    Ok(Node { chain, rpc_addr, http_addr, datanets, jobs })
}

/// The file in the data directory that names the addresses a running node
/// actually listens on, written once both sockets are bound. With
/// `--rpc-addr 127.0.0.1:0` the operating system picks a free port, and scripts
/// (and the project's own tests) read the port from here, race-free.
pub const ENDPOINTS_FILE: &str = "endpoints.json";

/// The addresses a running node listens on, as written to [`ENDPOINTS_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    pub rpc: SocketAddr,
    pub http: Option<SocketAddr>,
}

impl Endpoints {
    /// Read the endpoints of the node running in `data_dir`, if it has written them.
    pub fn read(data_dir: &std::path::Path) -> Option<Endpoints> {
        let text = std::fs::read_to_string(data_dir.join(ENDPOINTS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Write atomically (temporary file, then rename), so a reader never sees half a file.
fn write_endpoints(path: &std::path::Path, rpc: SocketAddr, http: Option<SocketAddr>) -> std::io::Result<()> {
    let text = serde_json::to_string(&Endpoints { rpc, http }).expect("endpoints serialise");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Node {
    /// Stop producing blocks and training; committed state is already durable,
    /// and a running job resumes from its checkpoint at the next start.
    pub fn stop(&self) {
        self.jobs.stop();
        self.chain.stop();
    }
}
