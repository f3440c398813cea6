//! Node configuration (TOML) and genesis files (JSON): the edges where text
//! becomes typed values.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chain::BlockTime;
use primitives::{Address, Amount, B256};
use runtime::Genesis;
use serde::{Deserialize, Serialize};

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub rpc_addr: SocketAddr,
    /// The HTTP API (uploads, rows, blobs); `None` serves JSON-RPC only.
    pub http_addr: Option<SocketAddr>,
    /// Blob store: a directory or `s3://bucket?...` URL; default `<data-dir>/blobs`.
    pub blobs: Option<String>,
    /// The ingest attester key; without it the node does not attest uploads.
    pub attester: Option<keys::SecretKey>,
    pub block_time: BlockTime,
    pub history: u64,
    pub max_txs_per_block: usize,
    pub genesis: Genesis,
    /// The base model ModelFactory trains on when a job names none (a Hugging
    /// Face folder or a GGUF file); default: the committed `models/base`.
    pub base_model: Option<PathBuf>,
    /// Serve this base model and its adapters (OpenLoRA) as this serving operator.
    pub serving: Option<ServingConfig>,
    /// Judge attribution challenges as this validator (needs `serving`: the
    /// verifier recomputes records with the node's model and span indexes).
    pub verifier: Option<VerifierConfig>,
    /// ModelFactory's per-owner quotas (jobs and training steps queued).
    pub job_limits: factory::JobLimits,
    /// Uploads per contributor per UTC day to this node's ingest route (bytes, files).
    pub ingest_quota: datanets::IngestQuota,
    /// Serve the dev chain's RPC methods (`evm_mine`, `anvil_mine`,
    /// `hardhat_mine`), as Hardhat and Anvil do: `up` only, never `start`.
    pub dev_rpc: bool,
    /// Take part in BFT consensus as this validator; `None`: the dev sealer
    /// makes every block (`block_time`).
    pub validator: Option<ValidatorConfig>,
    /// Other nodes' HTTP APIs, asked for blobs this node lacks.
    pub blob_peers: Vec<String>,
}

impl NodeConfig {
    /// A dev node in `data_dir`: the dev genesis, a block for every
    /// transaction, JSON-RPC and the HTTP API on free loopback ports, serving
    /// nothing (set `base_model`, `serving`, … with `..NodeConfig::dev(dir)`).
    pub fn dev(data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            data_dir,
            rpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            blobs: None,
            attester: None,
            block_time: BlockTime::Instant,
            history: 1000,
            max_txs_per_block: 10_000,
            genesis: crate::dev_genesis(),
            base_model: None,
            serving: None,
            verifier: None,
            job_limits: Default::default(),
            ingest_quota: Default::default(),
            dev_rpc: false,
            validator: None,
            blob_peers: Vec::new(),
        }
    }
}

/// A validator's consensus settings (`[validator]` in `openledger.toml`).
#[derive(Clone)]
pub struct ValidatorConfig {
    /// The operator address it bonded with in `staking`.
    pub operator: Address,
    /// Its registered ed25519 consensus key: signs votes and proposals.
    pub consensus_key: keys::ConsensusKey,
    /// The operator's account key, which sends the evidence of equivocation
    /// this validator observes; `None`: evidence is only logged.
    pub operator_key: Option<keys::SecretKey>,
    /// Where the consensus engine listens (TCP), and the peers it dials.
    pub p2p_addr: SocketAddr,
    pub p2p_peers: Vec<SocketAddr>,
    /// Where transaction gossip listens, and the peers it sends to.
    pub gossip_addr: SocketAddr,
    pub gossip_peers: Vec<SocketAddr>,
    /// Round timeouts: the proposal, and each vote step.
    pub timeout_propose_ms: u64,
    pub timeout_vote_ms: u64,
    /// The least time a height takes (its block time), in milliseconds.
    pub block_time_ms: u64,
}

impl std::fmt::Debug for ValidatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorConfig")
            .field("operator", &self.operator)
            .field("consensus_key", &self.consensus_key.public())
            .field("p2p_addr", &self.p2p_addr)
            .field("p2p_peers", &self.p2p_peers)
            .field("gossip_addr", &self.gossip_addr)
            .field("gossip_peers", &self.gossip_peers)
            .finish_non_exhaustive()
    }
}

/// The validators' verifier service's keys.
#[derive(Clone)]
pub struct VerifierConfig {
    /// The validator's consensus key (ed25519): signs verdicts.
    pub consensus_key: keys::ConsensusKey,
    /// A funded account that sends the verdict transactions.
    pub relayer: keys::SecretKey,
}

impl std::fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("consensus_key", &self.consensus_key.public())
            .field("relayer", &self.relayer.address())
            .finish()
    }
}

impl VerifierConfig {
    /// The dev validator's consensus key, verdicts sent by dev relayer account 103.
    pub fn dev() -> VerifierConfig {
        VerifierConfig { consensus_key: dev_consensus_key(), relayer: dev_relayer() }
    }
}

/// The dev verifier's relayer (account 103 of the standard test mnemonic),
/// funded at genesis to pay for verdict transactions. Public, dev chains only.
pub fn dev_relayer() -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, 103).expect("dev mnemonic derives")
}

/// The dev relayer's genesis balance.
pub const DEV_RELAYER_OPEN: u64 = 100;

/// OpenLoRA's settings.
#[derive(Clone)]
pub struct ServingConfig {
    /// The bonded serving operator's account (sends settlements).
    pub operator: keys::SecretKey,
    /// Its registered serving key (signs receipts).
    pub serving_key: keys::SecretKey,
    /// Host memory for resident adapters, in bytes.
    pub adapter_cache_bytes: usize,
    /// How resident adapters hold their weights; `None`: int8 on a quantized
    /// base model (whose own rounding is larger: tested), else f32.
    pub adapter_dtype: Option<ml::AdapterDtype>,
    /// Sequences per batch.
    pub max_batch: usize,
    /// Prompt tokens fed per step over all sequences.
    pub prefill_budget: usize,
    /// Milliseconds between settlement batches.
    pub settle_every_ms: u64,
    /// Attribution beside the batch: workers, queue capacity, and how long an
    /// answer waits for its summary.
    pub attribution: serve::QueueConfig,
}

impl std::fmt::Debug for ServingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingConfig").field("operator", &self.operator.address()).finish_non_exhaustive()
    }
}

impl ServingConfig {
    /// The dev chain's serving operator and key, with default limits.
    pub fn dev() -> ServingConfig {
        ServingConfig {
            operator: dev_serving_operator(),
            serving_key: dev_serving_key(),
            adapter_cache_bytes: 256 << 20,
            adapter_dtype: None,
            max_batch: 32,
            prefill_budget: serve::engine::DEFAULT_PREFILL_BUDGET,
            settle_every_ms: 2000,
            attribution: serve::QueueConfig::default(),
        }
    }
}

/// Why configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

/// Number of prefunded dev accounts, as Hardhat and Anvil.
pub const DEV_ACCOUNTS: u32 = 10;
/// Balance of each dev account.
pub const DEV_BALANCE_OPEN: u64 = 10_000;
/// Fixed timestamp of the dev genesis, so its hash is the same on every machine.
pub const DEV_GENESIS_TIMESTAMP: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// The dev accounts: the standard test mnemonic's first ten keys.
pub fn dev_accounts() -> Vec<keys::SecretKey> {
    (0..DEV_ACCOUNTS).map(|i| keys::derive_account(keys::DEV_MNEMONIC, i).expect("dev mnemonic derives")).collect()
}

/// Self bond of the dev validator (dev account 0).
pub const DEV_VALIDATOR_BOND_OPEN: u64 = 1_000;

/// The dev node's ingest attester key: deterministic and public, dev chains only
/// (account 100 of the standard test mnemonic).
pub fn dev_attester() -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, 100).expect("dev mnemonic derives")
}

/// The dev validator's consensus key: deterministic and public, dev chains only.
pub fn dev_consensus_key() -> keys::ConsensusKey {
    keys::ConsensusKey::dev("validator-0")
}

/// Parameters of the dev genesis: governance, unbonding and the challenge window
/// in a few blocks. The attribution timeout is longer: a dev chain in instant
/// mode seals a block per transaction, and the node posts its records on its
/// next settlement round, so a short timeout would be run out by anyone's
/// transactions meanwhile, and contributors would lose their credits to the fallback.
pub fn dev_params() -> Vec<(String, u128)> {
    let open = primitives::ONE_OPEN;
    [
        ("governance.voting_delay", 2),
        ("governance.voting_period", 6),
        ("governance.timelock", 2),
        ("governance.grace_period", 1_000),
        ("governance.deposit", 10 * open),
        ("governance.proposal_threshold", 100 * open),
        ("staking.min_self_bond", 100 * open),
        ("staking.unbonding_blocks", 10),
        ("inference.release_delay_blocks", 10),
        ("inference.attribution_timeout_blocks", 600),
        ("inference.challenge_window_blocks", 10),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect::<std::collections::BTreeMap<_, _>>()
    .into_iter()
    .collect()
}

/// The dev node's serving operator (account 101 of the standard test mnemonic):
/// bonded at genesis, it sends the settlement transactions. Public, dev chains only.
pub fn dev_serving_operator() -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, 101).expect("dev mnemonic derives")
}

/// The dev serving operator's registered serving key (account 102): signs receipts.
pub fn dev_serving_key() -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, 102).expect("dev mnemonic derives")
}

/// Self bond of the dev serving operator.
pub const DEV_SERVING_BOND_OPEN: u64 = 1_000;

/// The dev genesis: chain id 31337, ten accounts with 10,000 OPEN each, dev
/// account 0 bonded as the single validator (1,000 OPEN of its balance), the
/// node's serving operator bonded (account 101), the committed base model as
/// m1, and governance periods of a few blocks.
pub fn dev_genesis() -> Genesis {
    let accounts = dev_accounts();
    let serving = dev_serving_operator();
    let mut alloc: Vec<(Address, Amount)> =
        accounts.iter().map(|k| (k.address(), Amount::open(DEV_BALANCE_OPEN))).collect();
    alloc.push((serving.address(), Amount::open(2 * DEV_SERVING_BOND_OPEN)));
    alloc.push((dev_relayer().address(), Amount::open(DEV_RELAYER_OPEN)));
    Genesis {
        chain_id: primitives::DEV_CHAIN_ID,
        timestamp: DEV_GENESIS_TIMESTAMP,
        alloc,
        params: dev_params(),
        operators: vec![
            runtime::staking::genesis::GenesisOperator {
                operator: accounts[0].address(),
                role: runtime::staking::ROLE_VALIDATOR,
                consensus_key: dev_consensus_key().public(),
                serving_key: accounts[0].address(),
                commission_bps: 500,
                bond: Amount::open(DEV_VALIDATOR_BOND_OPEN),
            },
            runtime::staking::genesis::GenesisOperator {
                operator: serving.address(),
                role: runtime::staking::ROLE_SERVING,
                consensus_key: B256::ZERO,
                serving_key: dev_serving_key().address(),
                commission_bps: 1000,
                bond: Amount::open(DEV_SERVING_BOND_OPEN),
            },
        ],
        calls: crate::dev_market::dev_market_calls(),
        base_model: Some(runtime::genesis::BaseModelGenesis {
            name: DEV_BASE_MODEL_NAME.into(),
            base_hash: DEV_BASE_MODEL_HASH,
        }),
    }
}

/// The dev genesis with the dev node's serving set-up done at genesis (no
/// transaction of a user's account runs before the ports open): dev account 0
/// deposits 1,000 OPEN into its inference escrow, grants the dev serving
/// operator that allowance and binds `api_key`; the operator announces
/// `endpoint` (its OpenAI base URL) for m1 when given.
pub fn dev_genesis_serving(api_key: &str, endpoint: Option<String>) -> Genesis {
    use alloy_sol_types::SolCall;
    use primitives::abi::IInference;
    let mut g = dev_genesis();
    let (payer, operator) = (dev_accounts()[0].address(), dev_serving_operator().address());
    let inference = primitives::system::Module::Inference.address();
    let amount = DEV_API_ALLOWANCE_OPEN as u128 * primitives::ONE_OPEN;
    let call = |from: Address, value: u128, data: Vec<u8>| runtime::genesis::GenesisCall {
        from,
        to: inference,
        value: Amount(value),
        data: data.into(),
    };
    g.calls.extend([
        call(payer, amount, IInference::depositCall {}.abi_encode()),
        call(payer, 0, IInference::allowCall { operator, amount }.abi_encode()),
        call(payer, 0, IInference::bindApiKeyCall { keyHash: httpapi::auth::api_key_hash(api_key) }.abi_encode()),
    ]);
    if let Some(url) = endpoint {
        g.calls.push(call(operator, 0, IInference::registerEndpointCall { url, modelIds: vec![1] }.abi_encode()));
    }
    g
}

/// The allowance dev account 0 grants the dev serving operator at genesis, in OPEN.
pub const DEV_API_ALLOWANCE_OPEN: u64 = 1_000;

/// The committed base model (`models/base`, made by `openledger model bootstrap`),
/// registered as m1 by the dev genesis.
pub const DEV_BASE_MODEL_NAME: &str = "openledger-base";

/// Its model hash (a test checks it against the committed files).
pub const DEV_BASE_MODEL_HASH: primitives::B256 =
    primitives::b256!("0xc00889411e617bcf4353c9be8c61264c939d5bbd7b4899b82a8492cfa8c80409");

/// A genesis file:
/// ```json
/// { "chainId": 31337, "timestamp": 1767225600,
///   "alloc": { "0xf39f…2266": "10000", "0x7099…79c8": "1500000000000000000wei" },
///   "params": { "fee.treasury_bps": "2000" } }
/// ```
/// Balances are decimal OPEN, or base units with a `wei` suffix, or `0x` hex base units.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisFile {
    pub chain_id: u64,
    #[serde(default)]
    pub timestamp: u64,
    #[serde(default)]
    pub alloc: BTreeMap<String, String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub operators: Vec<GenesisOperatorFile>,
    /// The base model registered as m1: `{ "name": "...", "hash": "0x…" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<BaseModelFile>,
    /// Calls to system contracts executed at genesis, in order:
    /// `{ "from": "0x…", "to": "0x…1007", "value": "1000", "data": "0x…" }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<GenesisCallFile>,
}

/// A call executed at genesis, in a genesis file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisCallFile {
    pub from: String,
    pub to: String,
    /// Decimal OPEN, base units with `wei`, or `0x` hex base units.
    #[serde(default)]
    pub value: Option<String>,
    /// ABI calldata, 0x-hex.
    pub data: String,
}

/// The base model of a genesis file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseModelFile {
    pub name: String,
    /// The base model hash (blake3 over tensors and tokenizer), 0x-hex.
    pub hash: String,
}

/// An operator bonded at genesis, in a genesis file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisOperatorFile {
    pub operator: String,
    /// "validator" or "serving".
    pub role: String,
    #[serde(default)]
    pub consensus_key: Option<String>,
    #[serde(default)]
    pub serving_key: Option<String>,
    #[serde(default)]
    pub commission_bps: u16,
    /// Taken from the operator's allocation.
    pub bond: String,
}

fn parse_amount(s: &str) -> Result<Amount, String> {
    if let Some(h) = s.strip_prefix("0x") {
        return u128::from_str_radix(h, 16).map(Amount).map_err(|e| format!("{s:?}: {e}"));
    }
    s.parse::<Amount>().map_err(|e| e.to_string())
}

impl GenesisFile {
    pub fn to_genesis(&self) -> Result<Genesis, String> {
        let mut alloc = Vec::new();
        for (a, v) in &self.alloc {
            let addr: Address = a.parse().map_err(|_| format!("alloc: {a:?} is not an address"))?;
            alloc.push((addr, parse_amount(v).map_err(|e| format!("alloc {a}: {e}"))?));
        }
        let mut params = Vec::new();
        for (k, v) in &self.params {
            let n: u128 = v.parse().map_err(|_| format!("params.{k}: {v:?} is not an integer"))?;
            runtime::params::check(k, n).map_err(|e| e.to_string())?;
            params.push((k.clone(), n));
        }
        let mut operators = Vec::new();
        for o in &self.operators {
            let operator: Address =
                o.operator.parse().map_err(|_| format!("operators: {:?} is not an address", o.operator))?;
            let role = match o.role.as_str() {
                "validator" => runtime::staking::ROLE_VALIDATOR,
                "serving" => runtime::staking::ROLE_SERVING,
                r => return Err(format!("operators.{operator}: role {r:?} is neither \"validator\" nor \"serving\"")),
            };
            let consensus_key = match &o.consensus_key {
                Some(k) => {
                    k.parse().map_err(|_| format!("operators.{operator}: consensusKey {k:?} is not 32 bytes of hex"))?
                }
                None => primitives::B256::ZERO,
            };
            let serving_key = match &o.serving_key {
                Some(k) => {
                    k.parse().map_err(|_| format!("operators.{operator}: servingKey {k:?} is not an address"))?
                }
                None => Address::ZERO,
            };
            let bond = parse_amount(&o.bond).map_err(|e| format!("operators.{operator}: {e}"))?;
            operators.push(runtime::staking::genesis::GenesisOperator {
                operator,
                role,
                consensus_key,
                serving_key,
                commission_bps: o.commission_bps,
                bond,
            });
        }
        let base_model = match &self.base_model {
            None => None,
            Some(b) => Some(runtime::genesis::BaseModelGenesis {
                name: b.name.clone(),
                base_hash: b
                    .hash
                    .parse()
                    .map_err(|_| format!("baseModel.hash {:?} is not a 32-byte hex hash", b.hash))?,
            }),
        };
        let mut calls = Vec::new();
        for (i, c) in self.calls.iter().enumerate() {
            let addr = |s: &str, what: &str| -> Result<Address, String> {
                s.parse().map_err(|_| format!("calls[{i}].{what}: {s:?} is not an address"))
            };
            let data = hex::decode(c.data.trim_start_matches("0x"))
                .map_err(|_| format!("calls[{i}].data: {:?} is not 0x-hex", c.data))?;
            let value = match &c.value {
                Some(v) => parse_amount(v).map_err(|e| format!("calls[{i}].value: {e}"))?,
                None => Amount::ZERO,
            };
            calls.push(runtime::genesis::GenesisCall {
                from: addr(&c.from, "from")?,
                to: addr(&c.to, "to")?,
                value,
                data: data.into(),
            });
        }
        Ok(Genesis { chain_id: self.chain_id, timestamp: self.timestamp, alloc, params, operators, base_model, calls })
    }

    pub fn from_genesis(g: &Genesis) -> GenesisFile {
        GenesisFile {
            chain_id: g.chain_id,
            timestamp: g.timestamp,
            alloc: g.alloc.iter().map(|(a, v)| (a.to_checksum(None), format!("{}wei", v.0))).collect(),
            params: g.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            operators: g
                .operators
                .iter()
                .map(|o| GenesisOperatorFile {
                    operator: o.operator.to_checksum(None),
                    role: if o.role == runtime::staking::ROLE_VALIDATOR { "validator" } else { "serving" }.into(),
                    consensus_key: Some(o.consensus_key.to_string()),
                    serving_key: Some(o.serving_key.to_checksum(None)),
                    commission_bps: o.commission_bps,
                    bond: format!("{}wei", o.bond.0),
                })
                .collect(),
            base_model: g
                .base_model
                .as_ref()
                .map(|b| BaseModelFile { name: b.name.clone(), hash: b.base_hash.to_string() }),
            calls: g
                .calls
                .iter()
                .map(|c| GenesisCallFile {
                    from: c.from.to_checksum(None),
                    to: c.to.to_checksum(None),
                    value: Some(format!("{}wei", c.value.0)),
                    data: format!("0x{}", hex::encode(&c.data)),
                })
                .collect(),
        }
    }
}

/// Read a genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read { path: path.into(), err })?;
    let f: GenesisFile =
        serde_json::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.into(), msg: e.to_string() })?;
    f.to_genesis().map_err(|msg| ConfigError::Invalid { path: path.into(), msg })
}

/// `openledger.toml`, written by `openledger init` and read by `openledger start`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Path of the genesis file, relative to the config file's directory.
    pub genesis: String,
    #[serde(default = "default_rpc")]
    pub rpc_addr: String,
    /// 0 seals as soon as transactions are pending.
    #[serde(default = "default_block_time")]
    pub block_time_ms: u64,
    #[serde(default = "default_history")]
    pub history: u64,
    /// The HTTP API; empty to serve none.
    #[serde(default = "default_http")]
    pub http_addr: String,
    /// Blob store: a directory (relative to the data directory) or an `s3://` URL.
    #[serde(default = "default_blobs")]
    pub blobs: String,
    /// The base model for ModelFactory: a Hugging Face folder or a GGUF file
    /// (absolute, or relative to the data directory), or `hf:ORG/NAME` from the
    /// Hugging Face cache (`openledger model pull`); empty: the committed `models/base`.
    #[serde(default)]
    pub base_model: String,
    /// ModelFactory: jobs one owner may have queued or running (default 4).
    #[serde(default = "default_max_queued_jobs")]
    pub max_queued_jobs_per_owner: usize,
    /// ModelFactory: training steps one owner may have queued or running (default 20000).
    #[serde(default = "default_max_queued_steps")]
    pub max_queued_steps_per_owner: u64,
    /// Ingest: bytes of uploads one contributor may send this node per UTC day,
    /// across all Datanets (default 50000000).
    #[serde(default = "default_ingest_daily_bytes")]
    pub ingest_daily_bytes_per_contributor: u64,
    /// Ingest: uploads one contributor may send this node per UTC day (default 100).
    #[serde(default = "default_ingest_daily_files")]
    pub ingest_daily_files_per_contributor: u32,
    /// Other nodes' HTTP APIs (host:port), asked for blobs this node lacks
    /// (a verifier's model artefacts and Datanet rows).
    #[serde(default)]
    pub blob_peers: Vec<String>,
    /// Take part in consensus as a validator (absent: the dev sealer).
    #[serde(default)]
    pub validator: Option<ValidatorFile>,
    /// Serve inference (OpenLoRA) as a bonded serving operator.
    #[serde(default)]
    pub serving: Option<ServingFile>,
    /// Judge attribution challenges as a validator.
    #[serde(default)]
    pub verifier: Option<VerifierFile>,
}

/// `[validator]` of `openledger.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ValidatorFile {
    /// The operator address bonded in `staking` (0x…).
    pub operator: String,
    /// host:port the consensus engine listens on.
    pub p2p_addr: String,
    /// The other validators' consensus addresses (host:port).
    #[serde(default)]
    pub p2p_peers: Vec<String>,
    /// host:port transaction gossip listens on.
    pub gossip_addr: String,
    /// The other validators' gossip addresses (host:port).
    #[serde(default)]
    pub gossip_peers: Vec<String>,
    /// A file holding the node keys' password (relative to the data
    /// directory); without it, `$OPENLEDGER_NODE_PASSWORD`.
    #[serde(default)]
    pub password_file: String,
    /// The operator's account keystore (relative to the data directory, same
    /// password), which sends evidence of equivocation; empty: evidence is only logged.
    #[serde(default)]
    pub operator_keystore: String,
    #[serde(default = "default_timeout_propose")]
    pub timeout_propose_ms: u64,
    #[serde(default = "default_timeout_vote")]
    pub timeout_vote_ms: u64,
}

fn default_timeout_propose() -> u64 {
    3000
}
fn default_timeout_vote() -> u64 {
    1000
}

impl ValidatorFile {
    /// The settings it describes, the consensus key unlocked from `<data-dir>/node-keys`
    /// with the node's `password` ([`ConfigFile::password`]).
    pub fn validator_config(
        &self,
        path: &Path,
        data_dir: &Path,
        password: &str,
    ) -> Result<ValidatorConfig, ConfigError> {
        let invalid = |msg: String| ConfigError::Invalid { path: path.into(), msg };
        let addr = |what: &str, s: &str| -> Result<SocketAddr, ConfigError> {
            s.parse().map_err(|_| invalid(format!("validator.{what} {s:?} is not host:port")))
        };
        let addrs = |what: &str, v: &[String]| -> Result<Vec<SocketAddr>, ConfigError> {
            v.iter().map(|s| addr(what, s)).collect()
        };
        let operator: Address = self
            .operator
            .parse()
            .map_err(|_| invalid(format!("validator.operator {:?} is not an address", self.operator)))?;
        let consensus_key = consensus_key(path, data_dir, password)?;
        let operator_key = if self.operator_keystore.is_empty() {
            None
        } else {
            let key = load_keystore(path, data_dir, "validator.operator_keystore", &self.operator_keystore, password)?;
            if key.address() != operator {
                return Err(invalid(format!(
                    "{} holds {}, not the operator {operator}",
                    data_dir.join(&self.operator_keystore).display(),
                    key.address()
                )));
            }
            Some(key)
        };
        Ok(ValidatorConfig {
            operator,
            consensus_key,
            operator_key,
            p2p_addr: addr("p2p_addr", &self.p2p_addr)?,
            p2p_peers: addrs("p2p_peers", &self.p2p_peers)?,
            gossip_addr: addr("gossip_addr", &self.gossip_addr)?,
            gossip_peers: addrs("gossip_peers", &self.gossip_peers)?,
            timeout_propose_ms: self.timeout_propose_ms,
            timeout_vote_ms: self.timeout_vote_ms,
            block_time_ms: 0,
        })
    }

    /// The `[validator]` section as `openledger.toml` holds it.
    pub fn to_toml(&self) -> String {
        format!(
            "\n[validator]\n# the operator bonded in staking; its consensus key is in node-keys\noperator = {:?}\np2p_addr = {:?}\np2p_peers = {:?}\ngossip_addr = {:?}\ngossip_peers = {:?}\npassword_file = {:?}\noperator_keystore = {:?}\ntimeout_propose_ms = {}\ntimeout_vote_ms = {}\n",
            self.operator,
            self.p2p_addr,
            self.p2p_peers,
            self.gossip_addr,
            self.gossip_peers,
            self.password_file,
            self.operator_keystore,
            self.timeout_propose_ms,
            self.timeout_vote_ms
        )
    }
}

/// `[serving]` of `openledger.toml`: serve the base model and its adapters
/// (OpenLoRA) as a bonded serving operator. Its serving key (which signs
/// receipts and records) is the `serving` key in `node-keys`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServingFile {
    /// The serving operator's account keystore (relative to the data
    /// directory; the node keys' password): it sends settlements.
    pub operator_keystore: String,
    /// Host memory for resident adapters, in MiB.
    #[serde(default = "default_adapter_cache_mb")]
    pub adapter_cache_mb: u64,
    /// How resident adapters hold their weights: "auto" (i8 on a quantized
    /// base model, else f32), "f32", "bf16" or "i8".
    #[serde(default)]
    pub adapter_dtype: AdapterDtypeSetting,
    /// Sequences per decoding batch.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Prompt tokens fed per step over all sequences (default 256): a burst
    /// of long prompts is spread over steps; smaller halves the median time
    /// to first token of a burst, not its tail.
    #[serde(default = "default_prefill_budget")]
    pub prefill_budget: usize,
    /// Milliseconds between settlement batches.
    #[serde(default = "default_settle_every")]
    pub settle_every_ms: u64,
    /// Threads computing attribution records beside the batch (default 1:
    /// attribution itself uses every core).
    #[serde(default = "default_attribution_workers")]
    pub attribution_workers: usize,
    /// Paid answers whose record is not yet being computed, at most (default
    /// 64); beyond, paid requests are refused with 503 and `Retry-After`.
    #[serde(default = "default_attribution_queue")]
    pub attribution_queue: usize,
    /// Milliseconds an answer waits for its attribution summary after its
    /// last token (default 50); past it the answer points to the record.
    #[serde(default = "default_attribution_wait_ms")]
    pub attribution_wait_ms: u64,
}

fn default_adapter_cache_mb() -> u64 {
    (ServingConfig::dev().adapter_cache_bytes >> 20) as u64
}
/// `serving.adapter_dtype`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterDtypeSetting {
    /// int8 on a quantized base model, else f32.
    #[default]
    Auto,
    F32,
    Bf16,
    /// int8 per row with a scale: a quarter of f32's bytes.
    I8,
}

impl AdapterDtypeSetting {
    fn name(self) -> &'static str {
        match self {
            AdapterDtypeSetting::Auto => "auto",
            AdapterDtypeSetting::F32 => "f32",
            AdapterDtypeSetting::Bf16 => "bf16",
            AdapterDtypeSetting::I8 => "i8",
        }
    }
}
fn default_max_batch() -> usize {
    ServingConfig::dev().max_batch
}
fn default_prefill_budget() -> usize {
    ServingConfig::dev().prefill_budget
}
fn default_settle_every() -> u64 {
    ServingConfig::dev().settle_every_ms
}
fn default_attribution_workers() -> usize {
    serve::QueueConfig::default().workers
}
fn default_attribution_queue() -> usize {
    serve::QueueConfig::default().capacity
}
fn default_attribution_wait_ms() -> u64 {
    serve::QueueConfig::default().budget.as_millis() as u64
}

/// `[verifier]` of `openledger.toml`: judge attribution challenges as the
/// validator whose consensus key is in `node-keys` (needs `[serving]`: the
/// verifier recomputes records with the node's model and span indexes).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerifierFile {
    /// The funded account keystore that pays for verdict transactions
    /// (relative to the data directory; the node keys' password).
    pub relayer_keystore: String,
}

/// The ed25519 consensus key in `<data-dir>/node-keys`.
fn consensus_key(path: &Path, data_dir: &Path, password: &str) -> Result<keys::ConsensusKey, ConfigError> {
    keys::NodeKeys::open(data_dir.join("node-keys")).and_then(|nk| nk.load_consensus(password)).map_err(|e| {
        ConfigError::Invalid { path: path.into(), msg: format!("the validator's consensus key in node-keys: {e}") }
    })
}

/// An account keystore named by `field`, relative to the data directory.
fn load_keystore(
    path: &Path,
    data_dir: &Path,
    field: &str,
    file: &str,
    password: &str,
) -> Result<keys::SecretKey, ConfigError> {
    let p = data_dir.join(file);
    let json = std::fs::read_to_string(&p).map_err(|err| ConfigError::Read { path: p.clone(), err })?;
    keys::decrypt_keystore(&json, password)
        .map_err(|e| ConfigError::Invalid { path: path.into(), msg: format!("{field} {}: {e}", p.display()) })
}

impl ServingFile {
    fn serving_config(&self, path: &Path, data_dir: &Path, password: &str) -> Result<ServingConfig, ConfigError> {
        // Limits first: a bad number is reported before any key is unlocked.
        if !(1..=65_536).contains(&self.prefill_budget) {
            return Err(ConfigError::Invalid {
                path: path.into(),
                msg: format!("serving.prefill_budget {} is not between 1 and 65536", self.prefill_budget),
            });
        }
        let operator = load_keystore(path, data_dir, "serving.operator_keystore", &self.operator_keystore, password)?;
        let serving_key = keys::NodeKeys::open(data_dir.join("node-keys"))
            .and_then(|nk| nk.load_secp(keys::NodeKeyKind::Serving, password))
            .map_err(|e| ConfigError::Invalid {
                path: path.into(),
                msg: format!("[serving] needs a serving key in node-keys: {e}"),
            })?;
        let adapter_cache_bytes = usize::try_from(self.adapter_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        if self.max_batch == 0 || self.max_batch > 1024 {
            return Err(ConfigError::Invalid {
                path: path.into(),
                msg: format!("serving.max_batch {} is not between 1 and 1024", self.max_batch),
            });
        }
        let invalid = |msg: String| ConfigError::Invalid { path: path.into(), msg };
        let adapter_dtype = match self.adapter_dtype {
            AdapterDtypeSetting::Auto => None,
            AdapterDtypeSetting::F32 => Some(ml::AdapterDtype::F32),
            AdapterDtypeSetting::Bf16 => Some(ml::AdapterDtype::Bf16),
            AdapterDtypeSetting::I8 => Some(ml::AdapterDtype::I8),
        };
        if !(1..=64).contains(&self.attribution_workers) {
            return Err(invalid(format!(
                "serving.attribution_workers {} is not between 1 and 64",
                self.attribution_workers
            )));
        }
        if !(1..=100_000).contains(&self.attribution_queue) {
            return Err(invalid(format!(
                "serving.attribution_queue {} is not between 1 and 100000",
                self.attribution_queue
            )));
        }
        if self.attribution_wait_ms > 60_000 {
            return Err(invalid(format!("serving.attribution_wait_ms {} is over 60000", self.attribution_wait_ms)));
        }
        Ok(ServingConfig {
            operator,
            serving_key,
            adapter_cache_bytes,
            adapter_dtype,
            max_batch: self.max_batch,
            prefill_budget: self.prefill_budget,
            settle_every_ms: self.settle_every_ms,
            attribution: serve::QueueConfig {
                workers: self.attribution_workers,
                capacity: self.attribution_queue,
                budget: std::time::Duration::from_millis(self.attribution_wait_ms),
            },
        })
    }

    /// The `[serving]` section as `openledger.toml` holds it.
    pub fn to_toml(&self) -> String {
        format!(
            "\n[serving]\n# the bonded serving operator; its serving key is in node-keys\noperator_keystore = {:?}\nadapter_cache_mb = {}\n# adapters' weights: auto (i8 on a quantized base, else f32), f32, bf16 or i8\nadapter_dtype = {:?}\nmax_batch = {}\n# prompt tokens fed per step over all sequences\nprefill_budget = {}\nsettle_every_ms = {}\n\
             # attribution beside the batch: worker threads, answers queued at most (then 503), wait for the summary\n\
             attribution_workers = {}\nattribution_queue = {}\nattribution_wait_ms = {}\n",
            self.operator_keystore,
            self.adapter_cache_mb,
            self.adapter_dtype.name(),
            self.max_batch,
            self.prefill_budget,
            self.settle_every_ms,
            self.attribution_workers,
            self.attribution_queue,
            self.attribution_wait_ms
        )
    }
}

impl VerifierFile {
    /// The `[verifier]` section as `openledger.toml` holds it.
    pub fn to_toml(&self) -> String {
        format!(
            "\n[verifier]\n# judges attribution challenges with the consensus key in node-keys\nrelayer_keystore = {:?}\n",
            self.relayer_keystore
        )
    }
}

fn default_max_queued_jobs() -> usize {
    factory::JobLimits::default().max_queued_jobs_per_owner
}
fn default_max_queued_steps() -> u64 {
    factory::JobLimits::default().max_queued_steps_per_owner
}
fn default_ingest_daily_bytes() -> u64 {
    datanets::IngestQuota::default().daily_bytes
}
fn default_ingest_daily_files() -> u32 {
    datanets::IngestQuota::default().daily_files
}

/// The committed base model (`models/base` of the repository), if this binary
/// runs where it can find it: under the current directory or the source tree.
pub fn default_base_model() -> Option<PathBuf> {
    let candidates =
        [PathBuf::from("models/base"), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/base")];
    candidates.into_iter().find(|p| p.join("config.json").is_file()).map(|p| p.canonicalize().unwrap_or(p))
}

fn default_http() -> String {
    "127.0.0.1:8080".into()
}
fn default_blobs() -> String {
    "blobs".into()
}

fn default_rpc() -> String {
    "127.0.0.1:8545".into()
}
fn default_block_time() -> u64 {
    1000
}
fn default_history() -> u64 {
    10_000
}

impl ConfigFile {
    pub fn new(genesis: &str) -> Self {
        ConfigFile {
            genesis: genesis.into(),
            rpc_addr: default_rpc(),
            block_time_ms: default_block_time(),
            history: default_history(),
            http_addr: default_http(),
            blobs: default_blobs(),
            base_model: String::new(),
            max_queued_jobs_per_owner: default_max_queued_jobs(),
            max_queued_steps_per_owner: default_max_queued_steps(),
            ingest_daily_bytes_per_contributor: default_ingest_daily_bytes(),
            ingest_daily_files_per_contributor: default_ingest_daily_files(),
            blob_peers: Vec::new(),
            validator: None,
            serving: None,
            verifier: None,
        }
    }

    /// The password of the node keys and keystores: `validator.password_file`
    /// (relative to the data directory) when set, else `$OPENLEDGER_NODE_PASSWORD`.
    pub fn password(&self, path: &Path, data_dir: &Path) -> Result<String, ConfigError> {
        let file = self.validator.as_ref().map(|v| v.password_file.as_str()).unwrap_or("");
        if file.is_empty() {
            return std::env::var("OPENLEDGER_NODE_PASSWORD").map_err(|_| ConfigError::Invalid {
                path: path.into(),
                msg: "the node keys are locked: set OPENLEDGER_NODE_PASSWORD or validator.password_file".into(),
            });
        }
        let p = data_dir.join(file);
        Ok(std::fs::read_to_string(&p).map_err(|err| ConfigError::Read { path: p, err })?.trim_end().to_string())
    }

    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read { path: path.into(), err })?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.into(), msg: e.to_string() })
    }

    /// The node configuration this file describes, with data in `data_dir`.
    pub fn node_config(&self, path: &Path, data_dir: PathBuf) -> Result<NodeConfig, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let genesis = load_genesis(&base.join(&self.genesis))?;
        let rpc_addr = self.rpc_addr.parse().map_err(|_| ConfigError::Invalid {
            path: path.into(),
            msg: format!("rpc_addr {:?} is not host:port", self.rpc_addr),
        })?;
        let http_addr = if self.http_addr.trim().is_empty() {
            None
        } else {
            Some(self.http_addr.parse().map_err(|_| ConfigError::Invalid {
                path: path.into(),
                msg: format!("http_addr {:?} is not host:port", self.http_addr),
            })?)
        };
        let blobs = if self.blobs.contains("://") {
            self.blobs.clone()
        } else {
            data_dir.join(&self.blobs).display().to_string()
        };
        if self.verifier.is_some() && self.serving.is_none() {
            return Err(ConfigError::Invalid {
                path: path.into(),
                msg: "[verifier] needs [serving]: a verifier recomputes records with the node's model".into(),
            });
        }
        let unlocked = self.password(path, &data_dir);
        // The attester key, if the node keys hold one and can be unlocked.
        let attester = unlocked.as_ref().ok().and_then(|pw| {
            keys::NodeKeys::open(data_dir.join("node-keys")).ok()?.load_secp(keys::NodeKeyKind::Attester, pw).ok()
        });
        let keyed = self.validator.is_some() || self.serving.is_some() || self.verifier.is_some();
        let password = if keyed { unlocked? } else { String::new() };
        let validator = match &self.validator {
            Some(v) => Some(ValidatorConfig {
                block_time_ms: self.block_time_ms,
                ..v.validator_config(path, &data_dir, &password)?
            }),
            None => None,
        };
        let serving = match &self.serving {
            Some(s) => Some(s.serving_config(path, &data_dir, &password)?),
            None => None,
        };
        let verifier = match &self.verifier {
            Some(v) => Some(VerifierConfig {
                consensus_key: consensus_key(path, &data_dir, &password)?,
                relayer: load_keystore(path, &data_dir, "verifier.relayer_keystore", &v.relayer_keystore, &password)?,
            }),
            None => None,
        };
        let base_model = if self.base_model.is_empty() {
            default_base_model()
        } else if let Some(spec) = hub::ModelSpec::parse(&self.base_model) {
            let invalid =
                |e: hub::HubError| ConfigError::Invalid { path: path.into(), msg: format!("base_model: {e}") };
            Some(hub::HubCache::from_env().resolve(&spec.map_err(invalid)?).map_err(invalid)?)
        } else {
            let p = PathBuf::from(&self.base_model);
            Some(if p.is_absolute() { p } else { data_dir.join(p) })
        };
        Ok(NodeConfig {
            http_addr,
            blobs: Some(blobs),
            attester,
            data_dir,
            rpc_addr,
            block_time: if validator.is_some() {
                BlockTime::External
            } else if self.block_time_ms == 0 {
                BlockTime::Instant
            } else {
                BlockTime::Interval(self.block_time_ms)
            },
            history: self.history,
            max_txs_per_block: 10_000,
            genesis,
            base_model,
            serving,
            verifier,
            blob_peers: self.blob_peers.clone(),
            job_limits: factory::JobLimits {
                max_queued_jobs_per_owner: self.max_queued_jobs_per_owner,
                max_queued_steps_per_owner: self.max_queued_steps_per_owner,
            },
            ingest_quota: datanets::IngestQuota {
                daily_bytes: self.ingest_daily_bytes_per_contributor,
                daily_files: self.ingest_daily_files_per_contributor,
                ..Default::default()
            },
            dev_rpc: false,
            validator,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_genesis_names_the_committed_base_model() {
        let p = super::default_base_model().expect("models/base is committed");
        let f = ml::ModelFiles::open(&p).unwrap();
        assert_eq!(f.hash, super::DEV_BASE_MODEL_HASH, "models/base changed: update DEV_BASE_MODEL_HASH");
        assert_eq!(super::dev_genesis().base_model.unwrap().base_hash, f.hash);
    }

    use super::*;

    #[test]
    fn genesis_file_round_trip_and_errors() {
        let g = dev_genesis();
        let f = GenesisFile::from_genesis(&g);
        let text = serde_json::to_string_pretty(&f).unwrap();
        let back: GenesisFile = serde_json::from_str(&text).unwrap();
        let mut g2 = back.to_genesis().unwrap();
        g2.alloc.sort();
        let mut g1 = g.clone();
        g1.alloc.sort();
        assert_eq!(g1, g2);
        let bad: GenesisFile = serde_json::from_str(r#"{"chainId":1,"alloc":{"0x01":"5"}}"#).unwrap();
        assert!(bad.to_genesis().unwrap_err().contains("not an address"));
        let bad: GenesisFile = serde_json::from_str(r#"{"chainId":1,"params":{"fee.treasury_bps":"20000"}}"#).unwrap();
        assert!(bad.to_genesis().unwrap_err().contains("outside"));
        assert!(serde_json::from_str::<GenesisFile>(r#"{"chainId":1,"typo":1}"#).is_err());
    }

    #[test]
    fn ingest_quotas_come_from_the_configuration_file_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = serde_json::to_string(&GenesisFile::from_genesis(&dev_genesis())).unwrap();
        std::fs::write(dir.path().join("genesis.json"), genesis).unwrap();
        let load = |extra: &str| {
            let path = dir.path().join("openledger.toml");
            std::fs::write(&path, format!("genesis = \"genesis.json\"\n{extra}")).unwrap();
            ConfigFile::load(&path).unwrap().node_config(&path, dir.path().join("data")).unwrap().ingest_quota
        };
        assert_eq!(load(""), datanets::IngestQuota::default());
        let q = load("ingest_daily_bytes_per_contributor = 1000\ningest_daily_files_per_contributor = 3\n");
        assert_eq!((q.daily_bytes, q.daily_files), (1000, 3));
        assert_eq!(q.max_tracked_contributors, datanets::IngestQuota::default().max_tracked_contributors);
    }

    #[test]
    fn serving_and_verifier_sections_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = serde_json::to_string(&GenesisFile::from_genesis(&dev_genesis())).unwrap();
        std::fs::write(dir.path().join("genesis.json"), genesis).unwrap();
        let path = dir.path().join("openledger.toml");
        let load = |extra: &str| {
            std::fs::write(&path, format!("genesis = \"genesis.json\"\n{extra}")).unwrap();
            ConfigFile::load(&path).and_then(|c| c.node_config(&path, dir.path().join("data")))
        };
        let e = load("[verifier]\nrelayer_keystore = \"operator.json\"\n").unwrap_err().to_string();
        assert!(e.contains("[verifier] needs [serving]"), "{e}");
        let e = load("[serving]\noperator_keystore = \"s.json\"\ntypo = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = load("[serving]\noperator_keystore = \"s.json\"\nadapter_dtype = \"fp8\"\n").unwrap_err().to_string();
        assert!(e.contains("fp8") && e.contains("bf16"), "{e}");
        // The sections as `testnet` writes them read back as they were.
        let s = ServingFile {
            operator_keystore: "serving.json".into(),
            adapter_cache_mb: 64,
            adapter_dtype: AdapterDtypeSetting::Bf16,
            max_batch: 8,
            prefill_budget: 64,
            settle_every_ms: 500,
            attribution_workers: 2,
            attribution_queue: 16,
            attribution_wait_ms: 40,
        };
        // A prompt budget of 0 is refused before any key is read.
        let zero = ServingFile { prefill_budget: 0, ..s.clone() };
        let e = zero.serving_config(&path, dir.path(), "").unwrap_err().to_string();
        assert!(e.contains("serving.prefill_budget 0 is not between 1 and 65536"), "{e}");
        let v = VerifierFile { relayer_keystore: "operator.json".into() };
        std::fs::write(&path, format!("genesis = \"genesis.json\"\n{}{}", s.to_toml(), v.to_toml())).unwrap();
        let c = ConfigFile::load(&path).unwrap();
        assert_eq!((c.serving, c.verifier), (Some(s), Some(v)));
    }

    #[test]
    fn an_hf_base_model_is_read_from_the_cache_only() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = serde_json::to_string(&GenesisFile::from_genesis(&dev_genesis())).unwrap();
        std::fs::write(dir.path().join("genesis.json"), genesis).unwrap();
        let path = dir.path().join("openledger.toml");
        let load = |base: &str| {
            std::fs::write(&path, format!("genesis = \"genesis.json\"\nbase_model = {base:?}\n")).unwrap();
            ConfigFile::load(&path).unwrap().node_config(&path, dir.path().join("data"))
        };
        // Never pulled (a repository name no cache holds): the error says how to get it.
        let e = load("hf:openledger-test-none/absent-model").unwrap_err().to_string();
        assert!(
            e.contains("base_model") && e.contains("openledger model pull openledger-test-none/absent-model"),
            "{e}"
        );
        let e = load("hf:no-slash").unwrap_err().to_string();
        assert!(e.contains("hf:ORG/NAME"), "{e}");
        // A path stays a path, relative to the data directory.
        assert_eq!(load("m.gguf").unwrap().base_model, Some(dir.path().join("data/m.gguf")));
    }

    #[test]
    fn dev_accounts_are_the_standard_ones() {
        let a = dev_accounts();
        assert_eq!(a[0].address(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().unwrap());
        assert_eq!(a.len(), 10);
    }
}
