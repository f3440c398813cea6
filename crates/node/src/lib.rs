//! The node: reads configuration and genesis files, opens the chain, starts the
//! block producer and serves JSON-RPC. The CLI calls [`start`]; tests can start
//! the same node in-process.
//!
//! A [`Node`] owns what it started: [`Node::shutdown`] (or [`Node::stop`], or
//! dropping it) stops the servers' accept loops, then the engine and its
//! adapter prefetcher, the job worker, the settlement and verifier threads,
//! and last the chain, joining every thread, so a stopped node has committed
//! or journaled everything it acknowledged and holds its data directory no
//! longer.

pub mod access;
pub mod agents_route;
pub mod attribution;
mod backend;
pub mod blob_route;
mod config;
pub mod dev_flow;
pub mod dev_market;
mod factory_env;
mod meter;
pub mod peer_blobs;
pub mod pending;
pub mod playground;
mod records;
pub mod retriever;
mod serving;
pub mod snapshot_route;
pub mod spans;
mod tx;
mod validator;
pub mod verifier;
mod worker;

pub use worker::{JOIN_LIMIT, Periodic};

pub use meter::Meter;
/// `serving.prefill_budget`'s default.
pub use serve::engine::DEFAULT_PREFILL_BUDGET;

pub use serving::{BlobAdapters, ChainModels};

pub use factory_env::NodeFactoryEnv;

pub use backend::ChainBackend;
pub use config::{
    AdapterDtypeSetting, ConfigError, ConfigFile, DEV_API_ALLOWANCE_OPEN, DEV_BASE_MODEL_HASH, DEV_BASE_MODEL_NAME,
    DEV_RELAYER_OPEN, DEV_SERVING_BOND_OPEN, DEV_VALIDATOR_BOND_OPEN, GenesisFile, GenesisOperatorFile, NodeConfig,
    ServingConfig, ServingFile, ValidatorConfig, ValidatorFile, VerifierConfig, VerifierFile, default_base_model,
    dev_accounts, dev_attester, dev_consensus_key, dev_genesis, dev_genesis_serving, dev_params, dev_relayer,
    dev_serving_key, dev_serving_operator, load_genesis,
};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain::{Chain, ChainConfig};

/// A started node.
pub struct Node {
    pub chain: Arc<Chain>,
    pub rpc_addr: SocketAddr,
    /// Where the HTTP API listens, if it does.
    pub http_addr: Option<SocketAddr>,
    /// What signed HTTP requests to this node must name (chain id, node identity).
    pub http_audience: httpapi::Audience,
    pub datanets: Arc<datanets::DatanetService>,
    /// ModelFactory's job queue.
    pub jobs: Arc<factory::JobQueue>,
    /// OpenLoRA, when the node serves.
    pub serving: Option<Serving>,
    /// The blob store (files, rows, model artefacts).
    pub blobs: Arc<blobs::BlobStore>,
    lifecycle: Lifecycle,
}

/// What a node stops besides its services' own threads.
#[derive(Default)]
struct Lifecycle {
    /// Set once: the servers stop accepting and finish what is in flight.
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    /// The JSON-RPC and HTTP servers.
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Start-up work that a stop may cut short.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Settlement and verifier threads.
    workers: Mutex<Vec<Periodic>>,
    /// Consensus, when the node is a validator.
    validator: Mutex<Option<validator::Validator>>,
}

impl Lifecycle {
    /// A future that completes when the node is told to stop.
    fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.as_ref().expect("made in start").subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// How long [`Node::shutdown`] lets the servers finish requests in flight
/// (a streamed completion may run longer; it is then cut).
pub const SERVER_DRAIN: Duration = Duration::from_secs(10);

/// How long [`Node::shutdown`] waits, after the stop, for the last holder of
/// the chain (a server's connection task) to let its database file go.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How long [`Node::stop`] lets the receipts billed but not yet settled
/// settle (a block or two while the chain runs); past it they are logged and
/// left unpaid.
pub const SETTLE_ON_STOP: Duration = Duration::from_secs(30);

/// How long [`Node::stop`] lets the attribution workers finish the queued
/// jobs; past it the rest are dropped, each logged (no record is posted for
/// them, so the fallback pays their data share).
pub const ATTRIBUTE_ON_STOP: Duration = Duration::from_secs(30);

/// The serving side of a node.
pub struct Serving {
    pub openlora: Arc<serve::OpenLora>,
    pub meter: Arc<Meter>,
    /// The records this node makes (and who may read them).
    pub attribution: Arc<attribution::AttributionService>,
}

/// API keys bound on-chain (`inference.bindApiKey`).
struct ChainApiKeys(Arc<Chain>);

impl httpapi::ApiKeyResolver for ChainApiKeys {
    fn resolve(&self, key_hash: &primitives::B256) -> Option<primitives::Address> {
        use runtime::inference::InferenceRead;
        let st = self.0.snapshot().ok()?;
        st.api_key_owner(key_hash).ok().flatten()
    }
}

fn start_serving(
    cfg: &NodeConfig,
    chain: &Arc<Chain>,
    store: &Arc<blobs::BlobStore>,
    datanets: &Arc<datanets::DatanetService>,
    env: &Arc<NodeFactoryEnv>,
    workers: &mut Vec<Periodic>,
) -> Result<Option<Serving>, NodeError> {
    let (Some(sc), Some(_)) = (&cfg.serving, &cfg.base_model) else { return Ok(None) };
    // The node serves the base model it trains on: the one copy the factory loads.
    let (model, tokenizer) = env.load_base().map_err(|e| NodeError::Serving(e.to_string()))?;
    let env_tokenizer = tokenizer.clone();
    let metrics = Arc::new(serve::Metrics::default());
    let engine = serve::Engine::start(
        model.clone(),
        tokenizer,
        serve::EngineConfig { max_batch: sc.max_batch, prefill_budget: sc.prefill_budget, ..Default::default() },
        metrics.clone(),
    );
    let source = Arc::new(BlobAdapters {
        chain: chain.clone(),
        blobs: store.clone(),
        model: model.config.clone(),
        handle: tokio::runtime::Handle::current(),
        tier: Some(
            serve::HeldTier::open(&cfg.data_dir.join("adapter-tier"), model.config.clone())
                .map_err(|e| NodeError::Serving(format!("adapter tier: {e}")))?
                .with_metrics(metrics.clone()),
        ),
    });
    let dtype = sc.adapter_dtype.unwrap_or_else(|| model.default_adapter_dtype());
    if dtype == ml::AdapterDtype::I8 {
        // Live models' adapters get their held form in the background, a
        // bounded round every two seconds, so first requests read it too.
        let (warm, models) = (source.clone(), ChainModels { chain: chain.clone(), base_hash: model.hash });
        let mut failed = std::collections::HashSet::new();
        workers.push(
            Periodic::spawn("held-tier", Duration::from_secs(2), move || {
                warm.warm_tier(&models, &mut failed);
            })
            .map_err(|e| NodeError::Serving(format!("held tier thread: {e}")))?,
        );
    }
    let cache = serve::AdapterCache::with_dtype(sc.adapter_cache_bytes, source, metrics.clone(), dtype);
    let meter = Meter::open(
        chain.clone(),
        sc.operator.clone(),
        sc.serving_key.clone(),
        tokio::runtime::Handle::current(),
        metrics,
        &cfg.data_dir.join("receipts.journal"),
    )
    .map_err(NodeError::Serving)?;
    let every = Duration::from_millis(sc.settle_every_ms.max(50));
    workers.push(meter.start(every).map_err(|e| NodeError::Serving(format!("settlement thread: {e}")))?);
    let attribution = attribution::AttributionService::new(
        chain.clone(),
        store.clone(),
        datanets.clone(),
        env.clone(),
        env_tokenizer.clone(),
        sc.serving_key.clone(),
        cfg.data_dir.join("attribution"),
        tokio::runtime::Handle::current(),
    );
    meter.post_attributions_from(attribution.to_post.clone());
    let revealing = attribution.clone();
    meter.reveal_challenges_with(Arc::new(move |h: &primitives::B256| revealing.reveal_inputs(h)));
    if let Some(v) = &cfg.verifier {
        let verifier = verifier::Verifier::new(
            chain.clone(),
            attribution.clone(),
            v.consensus_key.clone(),
            v.relayer.clone(),
            tokio::runtime::Handle::current(),
        );
        workers.push(verifier.start(every).map_err(|e| NodeError::Serving(format!("verifier thread: {e}")))?);
    }
    let queue = serve::AttributionQueue::start(attribution.clone(), sc.attribution, engine.metrics.clone())
        .map_err(|e| NodeError::Serving(format!("attribution threads: {e}")))?;
    let openlora = Arc::new(serve::OpenLora {
        engine,
        cache,
        models: Arc::new(ChainModels { chain: chain.clone(), base_hash: model.hash }),
        billing: meter.clone(),
        limits: serve::Limits::default(),
        rate: Default::default(),
        attributor: Some(queue),
        retriever: Some(retriever::RetrievalService::new(
            chain.clone(),
            datanets.clone(),
            tokio::runtime::Handle::current(),
            cfg.data_dir.join("retrieval").join("bm25"),
        )),
    });
    Ok(Some(Serving { openlora, meter, attribution }))
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
    #[error("consensus: {0}")]
    Consensus(String),
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
    #[error("serving: {0}")]
    Serving(String),
    #[error("cannot write {ENDPOINTS_FILE} in the data directory: {0}")]
    Endpoints(std::io::Error),
    #[error("cannot read or create {NODE_ID_FILE} in the data directory: {0}")]
    NodeId(std::io::Error),
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
    if !cfg.blob_peers.is_empty() {
        // Requests signed as the validator's operator (allow-list rows during a challenge).
        let signer = cfg.validator.as_ref().and_then(|v| v.operator_key.clone());
        store.set_fallback(Arc::new(peer_blobs::PeerBlobs::new(&cfg.blob_peers, signer)));
    }
    let agent_blobs =
        agents_route::AgentBlobs::open(chain.clone(), store.clone(), cfg.data_dir.join(agents_route::INDEX_FILE))
            .map_err(|e| NodeError::Blobs(format!("the agent blob index: {e}")))?;
    let datanets = datanets::DatanetService::with_quota(
        Arc::new(ChainState(chain.clone())),
        store.clone(),
        cfg.attester.clone(),
        cfg.ingest_quota,
    );
    let env = Arc::new(NodeFactoryEnv::new(
        chain.clone(),
        datanets.clone(),
        store.clone(),
        cfg.base_model.clone(),
        tokio::runtime::Handle::current(),
    ));
    let jobs = factory::JobQueue::open_with_limits(&cfg.data_dir.join("jobs"), env.clone(), cfg.job_limits)
        .map_err(|e| NodeError::Jobs(e.to_string()))?;
    let http_listener = match cfg.http_addr {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|err| NodeError::BindHttp { addr, err })?),
        None => None,
    };
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    let http_audience =
        httpapi::Audience { chain_id: chain.chain_id(), node: http_node_id(&cfg.data_dir).map_err(NodeError::NodeId)? };
    // Nothing fails past this point without stopping what it started.
    jobs.start();
    let (shutdown, _) = tokio::sync::watch::channel(false);
    let lifecycle = Lifecycle { shutdown: Some(shutdown), ..Default::default() };
    let mut workers = Vec::new();
    let serving = start_serving(cfg, &chain, &store, &datanets, &env, &mut workers);
    *lifecycle.workers.lock().unwrap() = workers;
    let serving = match serving {
        Ok(s) => s,
        Err(e) => {
            // Stop what already runs before reporting.
            jobs.stop();
            chain.stop();
            return Err(e);
        }
    };
    let store_for_node = store.clone();
    chain.start();
    if let Some(v) = &cfg.validator {
        match validator::start(v, chain.clone()).await {
            Ok(v) => *lifecycle.validator.lock().unwrap() = Some(v),
            Err(e) => {
                jobs.stop();
                for w in lifecycle.workers.lock().unwrap().iter_mut() {
                    w.stop();
                }
                chain.stop();
                return Err(e);
            }
        }
    }
    let backend: Arc<dyn rpc::Backend> = Arc::new(ChainBackend::new(chain.clone()).with_dev_rpc(cfg.dev_rpc));
    let stopping = lifecycle.stopping();
    lifecycle.servers.lock().unwrap().push(tokio::spawn(async move {
        if let Err(e) = rpc::serve_until(listener, backend, stopping).await {
            tracing::error!("JSON-RPC server stopped: {e}");
        }
    }));
    // Place every contribution's blobs before the blob route may serve unknown hashes.
    let svc = datanets.clone();
    lifecycle.background.lock().unwrap().push(tokio::spawn(async move {
        if let Err(e) = svc.sync_owners().await {
            tracing::error!("Datanet blob access sync failed (unknown blobs stay refused): {e}");
        }
    }));
    if let Some(l) = http_listener {
        let policy: Arc<dyn blobs::BlobAccessPolicy> = Arc::new(access::NodeBlobPolicy::new(
            chain.clone(),
            datanets.clone(),
            jobs.clone(),
            serving.as_ref().map(|s| s.attribution.clone()),
            Some(agent_blobs.clone()),
        ));
        let playground = web::playground::Playground {
            records: serving.as_ref().map(|s| {
                Arc::new(playground::PlaygroundRecords::new(s.openlora.clone(), s.meter.clone(), s.attribution.clone()))
                    as Arc<dyn web::playground::AnswerRecords>
            }),
            dev_key_file: Some(cfg.data_dir.join(DEV_API_KEY_FILE)),
        };
        let mut router = datanets::routes(datanets.clone())
            .merge(agents_route::routes(agent_blobs))
            .merge(blob_route::routes(store, policy))
            .merge(factory::routes::routes(jobs.clone()))
            .merge(snapshot_route::routes(chain.clone()))
            .merge(web::routes(chain.clone(), Some(jobs.clone()), playground, writes(cfg, &chain, &datanets)));
        if let Some(s) = &serving {
            router = router.merge(serve::routes(s.openlora.clone()));
        }
        let config = httpapi::ServerConfig {
            api_keys: Arc::new(ChainApiKeys(chain.clone())),
            audience: http_audience,
            ..Default::default()
        };
        let stopping = lifecycle.stopping();
        lifecycle.servers.lock().unwrap().push(tokio::spawn(async move {
            if let Err(e) = httpapi::serve_with(l, router, config, stopping).await {
                tracing::error!("HTTP server stopped: {e}");
            }
        }));
    }
    let node =
        Node { chain, rpc_addr, http_addr, http_audience, datanets, jobs, serving, blobs: store_for_node, lifecycle };
    // On failure the node is dropped here, which stops everything it started.
    write_endpoints(&endpoints_path, rpc_addr, http_addr).map_err(NodeError::Endpoints)?;
    Ok(node)
}

/// What the web app's write pages need: the node's attester, and the dev wallet
/// on a dev chain only (`openledger up`, which serves the dev RPC methods, on
/// chain id 31337), signing with the public dev accounts.
fn writes(cfg: &NodeConfig, chain: &Arc<Chain>, datanets: &Arc<datanets::DatanetService>) -> web::wallet::Writes {
    web::wallet::Writes {
        dev_wallet: (cfg.dev_rpc && chain.chain_id() == primitives::DEV_CHAIN_ID)
            .then(|| Arc::new(web::wallet::DevWallet::new(config::dev_accounts()))),
        attester: datanets.attester(),
        rows: Some(Arc::new(ContributionRowsOf { datanets: datanets.clone(), chain: chain.clone() })),
    }
}

/// The web app's tombstone page reads a contribution's rows through the node's
/// Datanet reader (checked against the on-chain rows root); their text only
/// when anyone may read the Datanet's rows.
struct ContributionRowsOf {
    datanets: Arc<datanets::DatanetService>,
    chain: Arc<Chain>,
}

impl web::datanets::write::ContributionRows for ContributionRowsOf {
    fn rows(
        &self,
        cid: u64,
    ) -> web::datanets::write::BoxFuture<'_, Result<Vec<web::datanets::write::RowView>, String>> {
        Box::pin(async move {
            let (rec, rows) = self.datanets.reader().contribution_rows(cid).await.map_err(|e| e.to_string())?;
            let id = rec.attestation.datanetId;
            let snap = self.chain.snapshot().map_err(|e| e.to_string())?;
            let d = runtime::datanets::DatanetsRead::datanet(&snap, id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no Datanet {id}"))?;
            let public = self.datanets.may_read(id, &d, None, "rows")?;
            Ok(rows
                .iter()
                .map(|r| web::datanets::write::RowView {
                    leaf: r.leaf(),
                    text: public.then(|| match r {
                        primitives::rows::Row::Text { text } => text.clone(),
                        primitives::rows::Row::PromptCompletion { prompt, completion } => {
                            format!("{prompt} → {completion}")
                        }
                    }),
                })
                .collect())
        })
    }
}

/// The file in the data directory that holds the node's HTTP identity: a random
/// 20-byte id, made once, that every signed request to this node names, so that a
/// request signed for one node is refused by every other (even dev nodes that share
/// the dev keys). Not a secret.
pub const NODE_ID_FILE: &str = "node-id";

/// The file in the data directory where `openledger up` writes a dev node's
/// API key (the web app's Playground names it; the node never reads it).
pub const DEV_API_KEY_FILE: &str = "dev-api-key";

/// The node's HTTP identity ([`NODE_ID_FILE`]), created on first use.
pub fn http_node_id(data_dir: &std::path::Path) -> std::io::Result<primitives::Address> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: not an address: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut id = [0u8; 20];
            getrandom_fill(&mut id);
            let id = primitives::Address::from(id);
            std::fs::create_dir_all(data_dir)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{id:#x}\n"))?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
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
    /// Stop everything, joining every thread: the servers stop accepting (the
    /// requests in flight finish on the runtime: await [`Node::shutdown`] to wait
    /// for them), generation stops with an error to each caller, a running job
    /// stops at its next step (it resumes from its checkpoint at the next start),
    /// the settlement and verifier rounds in progress finish, the attribution
    /// jobs queued are computed (up to [`ATTRIBUTE_ON_STOP`]), the receipts
    /// billed and not yet settled are settled (up to [`SETTLE_ON_STOP`]; with
    /// [`Node::shutdown`] this includes the requests that were in flight), and
    /// the chain commits the block it is building and syncs every transaction
    /// it acknowledged. Idempotent; also what dropping the node does. It blocks
    /// until the threads are joined.
    pub fn stop(&self) {
        if let Some(s) = &self.lifecycle.shutdown {
            let _ = s.send(true);
        }
        for t in self.lifecycle.background.lock().unwrap().drain(..) {
            t.abort();
        }
        if let Some(s) = &self.serving {
            s.openlora.engine.stop();
            s.openlora.cache.stop();
        }
        self.jobs.stop();
        for w in self.lifecycle.workers.lock().unwrap().iter_mut() {
            w.stop();
        }
        // Billed answers are paid before the chain stops (the engine, stopped
        // above, bills no more): the queue lives in memory only. Their records
        // are computed first (bounded), so those posted in the flush are there.
        if let Some(s) = &self.serving {
            if let Some(q) = &s.openlora.attributor {
                q.stop(ATTRIBUTE_ON_STOP);
            }
            s.meter.flush(SETTLE_ON_STOP);
        }
        if let Some(mut v) = self.lifecycle.validator.lock().unwrap().take() {
            v.stop();
        }
        self.chain.stop();
    }

    /// [`Node::stop`], after letting the servers finish the requests in flight
    /// (up to [`SERVER_DRAIN`]), with the blocking joins off the async workers.
    pub async fn shutdown(self) {
        if let Some(s) = &self.lifecycle.shutdown {
            let _ = s.send(true);
        }
        let servers = std::mem::take(&mut *self.lifecycle.servers.lock().unwrap());
        let drained = tokio::time::timeout(SERVER_DRAIN, futures_all(servers)).await;
        if drained.is_err() {
            tracing::warn!("requests still in flight after {SERVER_DRAIN:?} were cut");
        }
        // Returns once the data directory is free: the last task holding the
        // chain may drop it on another thread, and closing writes the file.
        let closed = self.chain.closed();
        let stopped = tokio::task::spawn_blocking(move || {
            self.stop();
            drop(self);
            closed.wait(CLOSE_WAIT)
        })
        .await;
        match stopped {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the database was still open {CLOSE_WAIT:?} after the stop: a task holds it"),
            Err(e) => tracing::error!("stopping the node failed: {e}"),
        }
    }
}

/// Await every task; a task still running when this is dropped is aborted.
async fn futures_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    let _abort_on_drop = AbortAll(aborts);
    for t in tasks {
        let _ = t.await;
    }
}

struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for a in &self.0 {
            a.abort();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh dev API key (`ol-dev-` and 32 hex digits of randomness).
pub fn new_dev_api_key() -> String {
    let mut seed = [0u8; 16];
    getrandom_fill(&mut seed);
    format!("ol-dev-{}", hex::encode(seed))
}

fn getrandom_fill(buf: &mut [u8]) {
    let k = keys::SecretKey::random();
    buf.copy_from_slice(&k.to_bytes()[..buf.len()]);
}

/// Dev mode, after start, when the genesis could not name the serving
/// endpoint (the HTTP port was chosen at bind time): the serving operator
/// announces it. Account 0 sends nothing: its set-up is in the genesis
/// ([`dev_genesis_serving`]).
pub fn dev_register_endpoint(
    chain: &Arc<Chain>,
    operator: &keys::SecretKey,
    http: std::net::SocketAddr,
) -> Result<(), String> {
    use alloy_sol_types::SolCall;
    let call =
        primitives::abi::IInference::registerEndpointCall { url: format!("http://{http}/v1"), modelIds: vec![1] };
    send_and_wait(chain, operator, primitives::system::Module::Inference.address(), 0, call.abi_encode())
}

/// Sign, submit and wait for a transaction of `key` (in-process).
/// Submit a call from `key` and wait for its block (from inside the node's runtime).
pub fn send_and_wait(
    chain: &Arc<Chain>,
    key: &keys::SecretKey,
    to: primitives::Address,
    value: u128,
    data: Vec<u8>,
) -> Result<(), String> {
    Ok(tx::submit_and_wait(chain, &tokio::runtime::Handle::current(), key, to, value, data, 1_000_000)?)
}
