//! Paying for inference: `escrow deposit|allow|release|complete-release|withdraw|show`,
//! `apikey new|list|revoke`, and `infer MODEL PROMPT` through the node's
//! OpenAI-compatible API.

use std::io::Write;
use std::path::PathBuf;

use alloy_sol_types::SolCall;
use anyhow::{Context, anyhow, bail};
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount, B256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::HttpArgs;
use super::keys::SignerArgs;
use crate::contract::{send_call, signer_address, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();

#[derive(clap::Subcommand, Debug)]
pub enum EscrowCmd {
    /// Put OPEN into your inference escrow.
    Deposit {
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Grant a serving operator an allowance from your escrow (it may bill up to it).
    Allow {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Ask for unspent allowance back (effective after the release delay).
    Release {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Move a released allowance back into your escrow once the delay has passed.
    CompleteRelease {
        operator: Address,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Take free escrow back to your balance.
    Withdraw {
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Escrow and allowances of an account.
    Show {
        account: Address,
        /// Operators to show allowances for (default: every registered endpoint, and the dev operator).
        #[arg(long = "operator")]
        operators: Vec<Address>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

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

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// The model: `m<id>` (m1 is the base model).
    pub model: String,
    pub prompt: String,
    /// The API key (default: $OPENLEDGER_API_KEY, else the dev key of the default data dir).
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u64,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// A plain completion instead of a chat.
    #[arg(long)]
    pub completion: bool,
    /// Print the answer as it is generated.
    #[arg(long)]
    pub stream: bool,
    /// Publish this answer's attribution record (sends `OpenLedger-Attribution-Public: true`):
    /// anyone may then read and verify it; by default only you and the serving operator can.
    #[arg(long)]
    pub public_attribution: bool,
    #[command(flatten)]
    pub http: HttpArgs,
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

fn inference_call(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    value: Amount,
    call: impl SolCall,
    what: &str,
) -> anyhow::Result<Value> {
    let s = send_call(signer, rpc, INFERENCE, value, call.abi_encode(), what)?;
    Ok(s.json(json!({})))
}

pub fn escrow(c: EscrowCmd, out: Out) -> anyhow::Result<()> {
    match c {
        EscrowCmd::Deposit { amount, signer, rpc } => {
            let v = inference_call(&signer, &rpc, amount, IInference::depositCall {}, "inference.deposit")?;
            out.print(|| format!("deposited {amount} OPEN into the inference escrow"), v);
        }
        EscrowCmd::Allow { operator, amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::allowCall { operator, amount: amount.0 },
                "inference.allow",
            )?;
            out.print(|| format!("allowed {operator} to bill up to {amount} OPEN more"), v);
        }
        EscrowCmd::Release { operator, amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::releaseCall { operator, amount: amount.0 },
                "inference.release",
            )?;
            out.print(|| format!("release of {amount} OPEN from {operator} requested"), v);
        }
        EscrowCmd::CompleteRelease { operator, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::completeReleaseCall { operator },
                "inference.completeRelease",
            )?;
            out.print(|| "released allowance returned to the escrow".into(), v);
        }
        EscrowCmd::Withdraw { amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::withdrawCall { amount: amount.0 },
                "inference.withdraw",
            )?;
            out.print(|| format!("withdrew {amount} OPEN from the escrow"), v);
        }
        EscrowCmd::Show { account, mut operators, rpc } => {
            let mut c = rpc.client();
            let free = view(&mut c, INFERENCE, &IInference::escrowOfCall { payer: account })?;
            if operators.is_empty() {
                if let Ok(eps) = view(&mut c, INFERENCE, &IInference::endpointsCall {}) {
                    operators.extend(eps.iter().map(|e| e.operator));
                }
                let dev = node::dev_serving_operator().address();
                if !operators.contains(&dev) {
                    operators.push(dev);
                }
            }
            let mut rows = Vec::new();
            for op in operators {
                let a = view(&mut c, INFERENCE, &IInference::allowanceCall { payer: account, operator: op })?;
                rows.push(json!({
                    "operator": op, "remaining": a.remaining.to_string(), "pendingRelease": a.pendingRelease.to_string(),
                    "releaseAt": a.releaseAt, "lastNonce": a.lastNonce,
                }));
            }
            let v = json!({"account": account, "freeEscrow": free.to_string(), "allowances": rows});
            out.print(
                || {
                    let mut s = format!("{account}: {} OPEN free in escrow", Amount(free));
                    for r in &rows {
                        let rem: u128 = r["remaining"].as_str().unwrap_or("0").parse().unwrap_or(0);
                        s += &format!(
                            "\n  allowance for {}: {} OPEN (last receipt nonce {})",
                            r["operator"].as_str().unwrap_or(""),
                            Amount(rem),
                            r["lastNonce"]
                        );
                    }
                    s
                },
                v,
            );
        }
    }
    Ok(())
}

pub fn apikey(c: ApiKeyCmd, out: Out) -> anyhow::Result<()> {
    match c {
        ApiKeyCmd::New { signer, rpc } => {
            let owner = signer_address(&signer)?;
            let key = format!("ol-{}", hex::encode(&keys::SecretKey::random().to_bytes()[..20]));
            let h = keys::request::api_key_hash(&key);
            send_call(
                &signer,
                &rpc,
                INFERENCE,
                Amount::ZERO,
                IInference::bindApiKeyCall { keyHash: h }.abi_encode(),
                "inference.bindApiKey",
            )?;
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

fn default_key() -> Option<String> {
    std::fs::read_to_string(super::home().join("dev").join("dev-api-key")).ok().map(|s| s.trim().to_string())
}

pub fn infer(a: InferArgs, out: Out) -> anyhow::Result<()> {
    let key = a.api_key.clone().or_else(default_key).ok_or_else(|| {
        anyhow!("no API key: give --api-key or $OPENLEDGER_API_KEY (openledger apikey new), or start `openledger up`")
    })?;
    let (path, mut body) = if a.completion {
        ("/v1/completions", json!({"model": a.model, "prompt": a.prompt}))
    } else {
        ("/v1/chat/completions", json!({"model": a.model, "messages": [{"role": "user", "content": a.prompt}]}))
    };
    body["max_tokens"] = json!(a.max_tokens);
    body["temperature"] = json!(a.temperature);
    body["stream"] = json!(a.stream);
    if a.stream {
        // The usage arrives in a last chunk of its own, as OpenAI sends it.
        body["stream_options"] = json!({"include_usage": true});
    }
    let bytes = serde_json::to_vec(&body)?;
    let mut headers =
        vec![("Content-Type", "application/json".to_string()), ("Authorization", format!("Bearer {key}"))];
    if a.public_attribution {
        headers.push(("OpenLedger-Attribution-Public", "true".to_string()));
    }
    if !a.stream {
        let (status, resp) = a.http.request("POST", path, &headers, &bytes)?;
        if status != 200 {
            bail!("{status}: {}", super::httpc::error_message(&resp));
        }
        let v: Value = serde_json::from_slice(&resp)?;
        let text =
            if a.completion { v["choices"][0]["text"].clone() } else { v["choices"][0]["message"]["content"].clone() };
        out.print(
            || {
                format!(
                    "{}\n\n[{} tokens in, {} out; cost {} base units; receipt {}]",
                    text.as_str().unwrap_or(""),
                    v["usage"]["prompt_tokens"],
                    v["usage"]["completion_tokens"],
                    v["receipt"]["cost"].as_str().unwrap_or("?"),
                    v["receipt"]["hash"].as_str().unwrap_or("none")
                )
            },
            v.clone(),
        );
        return Ok(());
    }
    // Streaming: read server-sent events as they arrive.
    let stream = a.http.stream("POST", path, &headers, &bytes)?;
    if stream.status != 200 {
        let status = stream.status;
        let body = stream.read_body(1024 * 1024).context("reading the node's error answer")?;
        bail!("{status}: {}", super::httpc::error_message(&body));
    }
    let mut last = Value::Null;
    for event in stream.events() {
        let event = event.context("reading the answer stream")?;
        if event.data == "[DONE]" {
            break;
        }
        let v: Value = serde_json::from_str(&event.data).context("an event of the answer stream is not JSON")?;
        if !v["error"].is_null() {
            bail!("{}", v["error"]["message"]);
        }
        let piece =
            if a.completion { v["choices"][0]["text"].as_str() } else { v["choices"][0]["delta"]["content"].as_str() };
        if let Some(p) = piece
            && !out.json
        {
            print!("{p}");
            let _ = std::io::stdout().flush();
        }
        last = v;
    }
    if out.json {
        out.print(String::new, last);
    } else {
        println!(
            "\n\n[{} tokens out; receipt {}]",
            last["usage"]["completion_tokens"],
            last["receipt"]["hash"].as_str().unwrap_or("none")
        );
    }
    Ok(())
}
