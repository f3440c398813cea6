//! `apikey new|list|revoke`: API keys for the OpenAI-compatible API, kept on chain by their hash.

use std::path::PathBuf;

use alloy_sol_types::SolCall;
use anyhow::Context;
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount, B256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::contract::{send_call, signer_address, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();
use super::escrow::inference_call;

#[derive(clap::Subcommand, Debug)]
pub enum ApiKeyCmd {
    /// Make an API key and bind its hash to your address on-chain (the key is printed once
    /// and kept in ~/.openledger/api-keys).
    New {
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Keys kept on this machine, and whether the chain still binds them.
    List {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Unbind a key (by the key or its hash).
    Revoke {
        key: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn keys_dir() -> PathBuf {
    super::home().join("api-keys")
}

fn key_hash(key: &str) -> B256 {
    if let Ok(h) = key.parse::<B256>()
        && key.starts_with("0x")
    {
        return h;
    }
    keys::request::api_key_hash(key)
}

/// A fresh API key and its on-chain hash.
pub(super) fn new_key() -> (String, B256) {
    let key = format!("ol-{}", hex::encode(&keys::SecretKey::random().to_bytes()[..20]));
    let h = keys::request::api_key_hash(&key);
    (key, h)
}

/// Keep a key bound to `owner` in ~/.openledger/api-keys (owner-only file) and print it once.
pub(super) fn print_kept_key(key: &str, h: B256, owner: Address, out: Out) -> anyhow::Result<()> {
    let dir = keys_dir();
    std::fs::create_dir_all(&dir)?;
    let p = dir.join(format!("{}.json", h));
    // The file holds the key itself: owner-only from its creation, never chmod after.
    keys::write_secret_file(
        &p,
        serde_json::to_string_pretty(&json!({"key": key, "hash": h.to_string(), "owner": owner}))?.as_bytes(),
    )
    .with_context(|| format!("writing {}", p.display()))?;
    out.print(
        || format!("API key for {owner} (shown once; kept in {}):\n{key}", p.display()),
        json!({"key": key, "hash": h.to_string(), "owner": owner}),
    );
    Ok(())
}

/// A key kept on this machine that the chain binds to `owner` (the first found).
pub(super) fn kept_key_for(owner: Address, rpc: &RpcArgs) -> anyhow::Result<Option<String>> {
    let Ok(rd) = std::fs::read_dir(keys_dir()) else { return Ok(None) };
    let mut c = rpc.client();
    for e in rd.flatten() {
        let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(e.path()).unwrap_or_default()) else {
            continue;
        };
        let (Some(key), Ok(kept_for)) = (v["key"].as_str(), v["owner"].as_str().unwrap_or("").parse::<Address>())
        else {
            continue;
        };
        if kept_for == owner
            && view(&mut c, INFERENCE, &IInference::apiKeyOwnerCall { keyHash: key_hash(key) })? == owner
        {
            return Ok(Some(key.to_string()));
        }
    }
    Ok(None)
}

pub fn apikey(c: ApiKeyCmd, out: Out) -> anyhow::Result<()> {
    match c {
        ApiKeyCmd::New { signer, rpc } => {
            let owner = signer_address(&signer)?;
            let (key, h) = new_key();
            send_call(
                &signer,
                &rpc,
                INFERENCE,
                Amount::ZERO,
                IInference::bindApiKeyCall { keyHash: h }.abi_encode(),
                "inference.bindApiKey",
            )?;
            print_kept_key(&key, h, owner, out)?;
        }
        ApiKeyCmd::List { rpc } => {
            let mut c = rpc.client();
            let mut rows = Vec::new();
            if let Ok(rd) = std::fs::read_dir(keys_dir()) {
                for e in rd.flatten() {
                    let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(e.path())?) else { continue };
                    let h: B256 = v["hash"].as_str().unwrap_or("").parse().unwrap_or_default();
                    let bound =
                        view(&mut c, INFERENCE, &IInference::apiKeyOwnerCall { keyHash: h }).unwrap_or_default();
                    rows.push(json!({"hash": h.to_string(), "owner": v["owner"], "boundTo": bound, "active": bound != Address::ZERO}));
                }
            }
            out.print(
                || {
                    if rows.is_empty() {
                        return "no API keys on this machine (openledger apikey new)".into();
                    }
                    rows.iter()
                        .map(|r| {
                            format!(
                                "{}  {}  {}",
                                r["hash"].as_str().unwrap_or(""),
                                r["owner"].as_str().unwrap_or(""),
                                if r["active"] == true { "active" } else { "revoked" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                Value::Array(rows.clone()),
            );
        }
        ApiKeyCmd::Revoke { key, signer, rpc } => {
            let h = key_hash(&key);
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::revokeApiKeyCall { keyHash: h },
                "inference.revokeApiKey",
            )?;
            out.print(|| format!("API key {h} revoked"), v);
        }
    }
    Ok(())
}
