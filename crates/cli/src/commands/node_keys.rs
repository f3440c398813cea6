//! `keys node new/list/rotate`: the node's own keys (validator consensus key,
//! serving key, ingest attester key), encrypted in `<data-dir>/node-keys`.
//!
//! Rotating the consensus or serving key also registers the new key on chain
//! under the same operator (`rotateConsensusKey` / `rotateServingKey`); if the
//! chain refuses it, the previous key file is restored.

use std::path::PathBuf;

use alloy_sol_types::SolCall;
use anyhow::{Context, bail};
use keys::{KdfParams, NodeKeyId, NodeKeyKind, NodeKeys};
use primitives::abi::IStaking;
use primitives::system::Module;
use primitives::{Address, Amount, B256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::{Kdf, KeystoreArgs, SignerArgs};
use crate::contract::{Refused, preflight, send_call, signer_address};
use crate::output::Out;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    /// The validator's ed25519 consensus key.
    Consensus,
    /// The serving operator's secp256k1 key (signs receipts).
    Serving,
    /// The ingest attester's secp256k1 key.
    Attester,
}

impl KindArg {
    fn kind(self) -> NodeKeyKind {
        match self {
            KindArg::Consensus => NodeKeyKind::Consensus,
            KindArg::Serving => NodeKeyKind::Serving,
            KindArg::Attester => NodeKeyKind::Attester,
        }
    }
}

fn kdf_params(k: Kdf) -> KdfParams {
    match k {
        Kdf::Standard => KdfParams::standard(),
        Kdf::Light => KdfParams::light(),
        Kdf::InsecureTest => KdfParams::insecure_for_tests(),
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct DirArgs {
    /// Node keys directory. Default: <data-dir>/node-keys.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The node's data directory. Default: ~/.openledger/dev (or $OPENLEDGER_HOME/dev).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl DirArgs {
    fn path(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| self.data_dir.clone().unwrap_or_else(|| super::home().join("dev")).join("node-keys"))
    }
    fn open(&self) -> anyhow::Result<NodeKeys> {
        let p = self.path();
        NodeKeys::open(&p).with_context(|| format!("opening node keys directory {}", p.display()))
    }
}

/// The node keys' password: --password-file's first line, else
/// $OPENLEDGER_NODE_PASSWORD, else a prompt (never the accounts' $OPENLEDGER_PASSWORD).
fn password(file: &Option<PathBuf>, prompt: &str) -> anyhow::Result<String> {
    super::keys::read_password(file.as_deref(), "OPENLEDGER_NODE_PASSWORD", prompt)
}

#[derive(clap::Subcommand, Debug)]
pub enum NodeKeysCmd {
    /// Create a node key (refuses if one exists: rotate it instead).
    New {
        #[arg(value_enum)]
        kind: KindArg,
        #[command(flatten)]
        dir: DirArgs,
        #[arg(long, value_enum, default_value = "standard")]
        kdf: Kdf,
        /// File whose first line is the password (else $OPENLEDGER_NODE_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// The node keys' public identities (never their secrets).
    List {
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Replace a node key by a new one (consensus, serving: also registered on chain).
    ///
    /// The old file is kept as <name>.<unix-time>.old.json. For the consensus and
    /// serving keys, the operator's account then registers the new key
    /// (rotateConsensusKey / rotateServingKey); if the chain refuses it, the
    /// previous file is restored. The attester key only changes its file.
    Rotate {
        #[arg(value_enum)]
        kind: KindArg,
        #[command(flatten)]
        dir: DirArgs,
        #[arg(long, value_enum, default_value = "standard")]
        kdf: Kdf,
        /// File whose first line is the node keys' password (else $OPENLEDGER_NODE_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// The operator account (in the keystore) that registers the new key.
        #[arg(long, conflicts_with = "operator_dev_account")]
        operator_from: Option<Address>,
        /// The operator as dev account N (dev chains only).
        #[arg(long)]
        operator_dev_account: Option<u32>,
        /// Keystore of --operator-from. Default: ~/.openledger/keystore.
        #[arg(long, env = "OPENLEDGER_KEYSTORE")]
        keystore: Option<PathBuf>,
        /// Password file of --operator-from (else $OPENLEDGER_PASSWORD, else a prompt).
        #[arg(long)]
        operator_password_file: Option<PathBuf>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn id_json(kind: NodeKeyKind, id: &NodeKeyId) -> Value {
    let mut v = json!({"kind": kind.name(), "curve": kind.curve(), "identity": id.to_string()});
    match id {
        NodeKeyId::Ed25519(k) => v["publicKey"] = json!(k),
        NodeKeyId::Secp256k1(a) => v["address"] = json!(a.to_checksum(None)),
    }
    v
}

fn id_label(id: &NodeKeyId) -> &'static str {
    match id {
        NodeKeyId::Ed25519(_) => "public key",
        NodeKeyId::Secp256k1(_) => "address",
    }
}

pub fn run(c: NodeKeysCmd, out: Out) -> anyhow::Result<()> {
    match c {
        NodeKeysCmd::New { kind, dir, kdf, password_file } => {
            let nk = dir.open()?;
            let kind = kind.kind();
            if nk.path(kind).exists() {
                bail!(
                    "a {kind} key already exists at {}; use `openledger keys node rotate {kind}` to replace it",
                    nk.path(kind).display()
                );
            }
            let pw = password(&password_file, &format!("password for the new {kind} key"))?;
            let id = nk.create(kind, &pw, &kdf_params(kdf))?;
            let mut v = id_json(kind, &id);
            v["file"] = json!(nk.path(kind).display().to_string());
            out.print(|| format!("created {kind} key, {} {id}\nin {}", id_label(&id), nk.path(kind).display()), v);
        }
        NodeKeysCmd::List { dir } => {
            let p = dir.path();
            let list = if p.is_dir() { NodeKeys::open(&p)?.list()? } else { Vec::new() };
            out.print(
                || {
                    if list.is_empty() {
                        return format!("no node keys in {} (create one with `openledger keys node new`)", p.display());
                    }
                    list.iter()
                        .map(|(k, id)| format!("{:<10} {:<10} {id}", k.name(), k.curve()))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                json!(list.iter().map(|(k, id)| id_json(*k, id)).collect::<Vec<_>>()),
            );
        }
        NodeKeysCmd::Rotate {
            kind,
            dir,
            kdf,
            password_file,
            operator_from,
            operator_dev_account,
            keystore,
            operator_password_file,
            rpc,
        } => {
            let kind = kind.kind();
            let nk = dir.open()?;
            let Some(previous) = nk.identity(kind)? else {
                bail!(
                    "no {kind} key in {} to rotate; create one with `openledger keys node new {kind}`",
                    nk.dir().display()
                );
            };
            if kind == NodeKeyKind::Attester {
                // Attesters are not bonded: only the file changes.
                let pw = password(&password_file, "password of the node keys")?;
                let id = nk.rotate(kind, &pw, &kdf_params(kdf))?;
                let mut v = id_json(kind, &id);
                v["previous"] = json!(previous.to_string());
                out.print(|| format!("rotated the {kind} key: {previous} -> {id} (file only)"), v);
                return Ok(());
            }
            let signer = SignerArgs {
                from: operator_from,
                dev_account: operator_dev_account,
                ks: KeystoreArgs { keystore, password_file: operator_password_file },
            };
            if signer.from.is_none() && signer.dev_account.is_none() {
                bail!(
                    "rotating the {kind} key registers it on chain: give --operator-from ADDRESS or --operator-dev-account N"
                );
            }
            let operator = signer_address(&signer)?;
            let (what, encode): (&str, fn(&NodeKeyId) -> Vec<u8>) = match kind {
                NodeKeyKind::Consensus => ("rotate consensus key", |id| {
                    IStaking::rotateConsensusKeyCall { key: id.public_key().unwrap_or(B256::ZERO) }.abi_encode()
                }),
                _ => ("rotate serving key", |id| {
                    IStaking::rotateServingKeyCall { key: id.address().unwrap_or(Address::ZERO) }.abi_encode()
                }),
            };
            let staking = Module::Staking.address();
            // Would the chain take a new key from this operator at all? (Not an operator, wrong role, ...)
            // Probed with a fresh key: a key once registered can never be registered again.
            let probe = match kind {
                NodeKeyKind::Consensus => {
                    IStaking::rotateConsensusKeyCall { key: keys::ConsensusKey::random().public() }.abi_encode()
                }
                _ => IStaking::rotateServingKeyCall { key: keys::SecretKey::random().address() }.abi_encode(),
            };
            preflight(&rpc, operator, staking, Amount::ZERO, &probe, what)?;
            let pw = password(&password_file, "password of the node keys")?;
            let id = nk.rotate(kind, &pw, &kdf_params(kdf))?;
            let sent = match send_call(&signer, &rpc, staking, Amount::ZERO, encode(&id), what) {
                Ok(s) => s,
                Err(e) if e.downcast_ref::<Refused>().is_some() => {
                    let restored = nk.restore_previous(kind)?;
                    bail!("{e:#}\nthe chain kept the old key; restored the previous {kind} key file ({restored})");
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "the {kind} key file was rotated to {id} but its registration's outcome is unknown; \
                         check `openledger stake show {}` (the previous key is kept as {}.<time>.old.json)",
                        operator.to_checksum(None),
                        kind.name()
                    )));
                }
            };
            let mut extra = id_json(kind, &id);
            extra["previous"] = json!(previous.to_string());
            extra["operator"] = json!(operator);
            out.print(
                || {
                    format!(
                        "{}\nrotated the {kind} key of operator {}: {previous} -> {id}\nthe node must use the new key from now on",
                        sent.human(what),
                        operator.to_checksum(None)
                    )
                },
                sent.json(extra),
            );
        }
    }
    Ok(())
}
