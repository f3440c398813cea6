//! `agent …`: agents as tokens with a wallet (register, show, list, transfer),
//! their budgets (fund, defund, limits, allow, bind-key, freeze), their bond,
//! their memory ([`super::agent_memory`]), paid tasks and the trail of a task
//! ([`super::agent_task`]), and an agent that works tasks ([`super::agent_run`]).

use std::str::FromStr;

use alloy_sol_types::SolCall;
use anyhow::{Context, anyhow, bail};
use primitives::abi::{IAgents, IInference, agent_wallet};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::agent_memory::MemoryCmd;
use super::agent_run::RunArgs;
use super::agent_task::TaskCmd;
use super::httpc::{HttpArgs, error_message};
use super::keys::SignerArgs;
use crate::contract::{Sent, send_call, signer_address, view};
use crate::output::Out;

pub(super) const AGENTS: Address = Module::Agents.address();

/// A signed transaction to the agents module: who signs, which node.
#[derive(clap::Args, Clone, Debug)]
pub struct TxArgs {
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
}

impl TxArgs {
    /// Send `call` with `value` to the agents module; a refusal names the module's error.
    pub fn send(&self, value: Amount, call: impl SolCall, what: &str) -> anyhow::Result<Sent> {
        send_call(&self.signer, &self.rpc, AGENTS, value, call.abi_encode(), what)
    }
}

/// A spending limit: an amount of OPEN, or `none`.
#[derive(Clone, Copy, Debug)]
pub struct Limit(pub u128);

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Limit, String> {
        match s.trim() {
            "none" | "unlimited" => Ok(Limit(u128::MAX)),
            t => t.parse::<Amount>().map(|a| Limit(a.0)).map_err(|e| format!("{e} (or `none`)")),
        }
    }
}

/// A model id, `m3` or `3`.
pub fn parse_model(s: &str) -> Result<u64, String> {
    s.trim().trim_start_matches('m').parse().map_err(|_| format!("{s:?} is not a model (m<id>)"))
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCmd {
    /// Register an agent (an ERC-721 token you own, with a wallet no key holds).
    Register {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The registration file (JSON: capabilities, endpoints, models, a public key), stored
        /// in the node's blob store; its hash goes on chain and its JSON on the agent card.
        #[arg(long)]
        metadata: Option<std::path::PathBuf>,
        /// Who acts for the agent (accepts and delivers tasks, binds keys); default: you.
        #[arg(long)]
        operator: Option<Address>,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// An agent's record, reputation, limits and free escrow.
    Show {
        id: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The agents an address owns.
    List {
        #[arg(long)]
        owner: Address,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Put OPEN into the agent wallet's inference escrow (anyone may).
    Fund {
        id: u64,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The owner: take free escrow back from the agent wallet.
    Defund {
        id: u64,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The owner: set the spending limits (unset flags keep their current value).
    Limits {
        id: u64,
        /// Most OPEN moved into allowances per period (`none`: no limit).
        #[arg(long)]
        per_period: Option<Limit>,
        /// Most OPEN moved into one serving operator's allowance per period (`none`: no limit).
        #[arg(long)]
        per_operator: Option<Limit>,
        #[arg(long)]
        period_blocks: Option<u64>,
        /// The models the agent may pay for, `m1,m2` (`any`: every model).
        #[arg(long)]
        models: Option<String>,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The operator or owner: move free escrow into a serving operator's allowance, within the limits.
    Allow {
        id: u64,
        serving_operator: Address,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The operator or owner: ask unspent allowance back from a serving operator.
    Release {
        id: u64,
        serving_operator: Address,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The operator or owner: make an API key billed to the agent wallet (printed once).
    BindKey {
        id: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The owner: stop all spending at once.
    Freeze {
        id: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    Unfreeze {
        id: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Bond OPEN behind the agent (tasks may require a stake; a lost dispute costs part of it).
    Bond {
        id: u64,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Ask part of the bond back (returned after the unbonding delay).
    Unbond {
        id: u64,
        amount: Amount,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Take an unbonded part of the bond once its delay is over.
    WithdrawBond {
        id: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Transfer the agent token (its owner's rights; the operator resets to the new owner).
    Transfer {
        id: u64,
        to: Address,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The agent's memory: a key-value map kept as blobs under an on-chain Merkle root.
    #[command(subcommand)]
    Memory(MemoryCmd),
    /// Paid tasks: post, accept, deliver, accept the result, dispute, resolve, settle, feedback.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Who was paid for a task, to the wei: client → agent owner → each receipt's parties → data contributors.
    Trail {
        task: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Work tasks for an agent: poll open and directed tasks in a domain, answer them with a live model, deliver.
    Run(RunArgs),
}

pub fn run(c: AgentCmd, out: Out) -> anyhow::Result<()> {
    match c {
        AgentCmd::Register { name, description, metadata, operator, tx, http } => {
            register(name, description, metadata, operator, &tx, &http, out)
        }
        AgentCmd::Show { id, rpc } => show(id, &rpc, out),
        AgentCmd::List { owner, offset, limit, rpc } => {
            let mut c = rpc.client();
            let ids = view(&mut c, AGENTS, &IAgents::agentsOfCall { owner, offset, limit })?;
            let mut rows = Vec::new();
            for id in &ids {
                rows.push(node::agents_route::agent_json(&view(&mut c, AGENTS, &IAgents::agentCall { id: *id })?));
            }
            let human = || {
                if rows.is_empty() {
                    return format!("{owner} owns no agents");
                }
                rows.iter()
                    .map(|r| format!("{}  {}", r["id"], r["name"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            out.print(human, json!({"owner": owner, "agents": rows}));
            Ok(())
        }
        AgentCmd::Fund { id, amount, tx } => {
            let s = tx.send(amount, IAgents::fundCall { id }, "agents.fund")?;
            done(
                out,
                &s,
                format!("funded agent {id} with {amount} OPEN"),
                json!({"id": id, "amount": amount.0.to_string()}),
            )
        }
        AgentCmd::Defund { id, amount, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::defundCall { id, amount: amount.0 }, "agents.defund")?;
            done(out, &s, format!("took {amount} OPEN back from agent {id}"), json!({"id": id}))
        }
        AgentCmd::Limits { id, per_period, per_operator, period_blocks, models, tx } => {
            let mut c = tx.rpc.client();
            let cur = view(&mut c, AGENTS, &IAgents::limitsCall { id })?;
            let models = match models.as_deref() {
                None => cur.models,
                Some("any") | Some("") => vec![],
                Some(list) => list.split(',').map(parse_model).collect::<Result<_, _>>().map_err(|e| anyhow!(e))?,
            };
            let call = IAgents::setLimitsCall {
                id,
                perPeriod: per_period.map_or(cur.perPeriod, |l| l.0),
                perOperator: per_operator.map_or(cur.perOperator, |l| l.0),
                periodBlocks: period_blocks.unwrap_or(cur.periodBlocks),
                models,
            };
            let limits = primitives::abi::AgentLimits {
                perPeriod: call.perPeriod,
                perOperator: call.perOperator,
                periodBlocks: call.periodBlocks,
                models: call.models.clone(),
                modelsSince: 0,
            };
            let s = tx.send(Amount::ZERO, call, "agents.setLimits")?;
            let v = node::agents_route::limits_json(&limits);
            done(out, &s, format!("limits of agent {id}: {v}"), json!({"id": id, "limits": v}))
        }
        AgentCmd::Allow { id, serving_operator, amount, tx } => {
            let call = IAgents::allowCall { id, servingOperator: serving_operator, amount: amount.0 };
            let s = tx.send(Amount::ZERO, call, "agents.allow")?;
            let msg = format!("agent {id}: {serving_operator} may bill up to {amount} OPEN more");
            done(out, &s, msg, json!({"id": id, "servingOperator": serving_operator, "amount": amount.0.to_string()}))
        }
        AgentCmd::Release { id, serving_operator, amount, tx } => {
            let call = IAgents::releaseCall { id, servingOperator: serving_operator, amount: amount.0 };
            let s = tx.send(Amount::ZERO, call, "agents.release")?;
            done(out, &s, format!("agent {id}: release of {amount} OPEN from {serving_operator} requested"), json!({}))
        }
        AgentCmd::BindKey { id, tx } => {
            let (key, h) = super::apikey::new_key();
            tx.send(Amount::ZERO, IAgents::bindApiKeyCall { id, keyHash: h }, "agents.bindApiKey")?;
            super::apikey::print_kept_key(&key, h, agent_wallet(id), out)
        }
        AgentCmd::Freeze { id, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::freezeCall { id }, "agents.freeze")?;
            done(out, &s, format!("agent {id} frozen: it pays for nothing until unfrozen"), json!({"id": id}))
        }
        AgentCmd::Unfreeze { id, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::unfreezeCall { id }, "agents.unfreeze")?;
            done(out, &s, format!("agent {id} unfrozen"), json!({"id": id}))
        }
        AgentCmd::Bond { id, amount, tx } => {
            let s = tx.send(amount, IAgents::bondCall { id }, "agents.bond")?;
            done(out, &s, format!("bonded {amount} OPEN behind agent {id}"), json!({"id": id}))
        }
        AgentCmd::Unbond { id, amount, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::unbondCall { id, amount: amount.0 }, "agents.unbond")?;
            done(out, &s, format!("unbonding {amount} OPEN of agent {id}"), json!({"id": id}))
        }
        AgentCmd::WithdrawBond { id, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::withdrawBondCall { id }, "agents.withdrawBond")?;
            done(out, &s, format!("withdrew the unbonded part of agent {id}'s bond"), json!({"id": id}))
        }
        AgentCmd::Transfer { id, to, tx } => {
            let from = signer_address(&tx.signer)?;
            let call = IAgents::transferFromCall { from, to, tokenId: U256::from(id) };
            let s = tx.send(Amount::ZERO, call, "agents.transferFrom")?;
            done(out, &s, format!("agent {id} transferred from {from} to {to}"), json!({"id": id, "to": to}))
        }
        AgentCmd::Memory(c) => super::agent_memory::run(c, out),
        AgentCmd::Task(c) => super::agent_task::run(c, out),
        AgentCmd::Trail { task, rpc } => super::agent_task::trail(task, &rpc, out),
        AgentCmd::Run(a) => super::agent_run::run(a, out),
    }
}

/// Print a mined transaction: `human` (and where it was mined), or its JSON with `extra`.
pub(super) fn done(out: Out, s: &Sent, human: String, extra: Value) -> anyhow::Result<()> {
    out.print(|| format!("{human}\n{}", s.human("transaction")), s.json(extra));
    Ok(())
}

fn register(
    name: String,
    description: String,
    metadata: Option<std::path::PathBuf>,
    operator: Option<Address>,
    tx: &TxArgs,
    http: &HttpArgs,
    out: Out,
) -> anyhow::Result<()> {
    let metadata_hash = match &metadata {
        None => B256::ZERO,
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_slice::<Value>(&bytes)
                .with_context(|| format!("{}: the registration file is JSON", p.display()))?;
            put_blob(http, &tx.signer.key()?, &bytes, "public")?
        }
    };
    let call = IAgents::registerCall {
        name: name.clone(),
        description,
        metadataHash: metadata_hash,
        operator: operator.unwrap_or(Address::ZERO),
    };
    let s = tx.send(Amount::ZERO, call, "agents.register")?;
    let ev = s
        .event::<IAgents::AgentRegistered>(AGENTS)
        .ok_or_else(|| anyhow!("agents.register mined without an AgentRegistered event"))?;
    let msg = format!("agent {} ({name}) registered; its wallet is {}", ev.id, ev.wallet);
    done(out, &s, msg, json!({"id": ev.id, "wallet": ev.wallet, "metadataHash": metadata_hash}))
}

fn show(id: u64, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    use node::agents_route::{agent_json, limits_json, reputation_json};
    let mut c = rpc.client();
    let a = view(&mut c, AGENTS, &IAgents::agentCall { id })?;
    let r = view(&mut c, AGENTS, &IAgents::reputationCall { id })?;
    let l = view(&mut c, AGENTS, &IAgents::limitsCall { id })?;
    let free = view(&mut c, Module::Inference.address(), &IInference::escrowOfCall { payer: a.wallet })?;
    let v = json!({
        "agent": agent_json(&a), "reputation": reputation_json(&r), "limits": limits_json(&l),
        "freeEscrow": free.to_string(),
    });
    out.print(
        || {
            format!(
                "agent {id}: {} — {}\n  owner {}  operator {}\n  wallet {} ({} OPEN free)\n  bond {} OPEN{}\n  \
                 {} tasks completed, {} feedback (score sum {}), disputes lost {} won {}\n  limits {}",
                a.name,
                a.description,
                a.owner,
                a.operator,
                a.wallet,
                Amount(free),
                Amount(a.bond),
                if a.frozenAt != 0 { format!("\n  FROZEN at block {}", a.frozenAt) } else { String::new() },
                r.tasksCompleted,
                r.feedbackCount,
                r.scoreSum,
                r.disputesLost,
                r.disputesWon,
                v["limits"]
            )
        },
        v.clone(),
    );
    Ok(())
}

/// Store `bytes` in the node's blob store as an agent blob (`kind`: `public`, or
/// `memory&agent=ID`), signed by `key`; returns its hash (checked).
pub(super) fn put_blob(http: &HttpArgs, key: &keys::SecretKey, bytes: &[u8], kind: &str) -> anyhow::Result<B256> {
    let path = format!("/v1/agents/blobs?kind={kind}");
    let auth = http.auth_header(key, "POST", &path, bytes)?;
    let headers = [auth, ("Content-Type", "application/octet-stream".to_string())];
    let (status, body) = http.request("POST", &path, &headers, bytes)?;
    if status != 201 {
        bail!("storing a blob: HTTP {status}: {}", error_message(&body));
    }
    let v: Value = serde_json::from_slice(&body).context("the node's answer to a blob upload")?;
    let h: B256 = v["hash"].as_str().unwrap_or("").parse().context("the stored blob's hash")?;
    if h != primitives::content_hash(bytes) {
        bail!("the node stored the blob under {h}, not its content hash");
    }
    Ok(h)
}

/// A blob's bytes from the node (signed by `key` when given), checked against its hash.
pub(super) fn get_blob(http: &HttpArgs, key: Option<&keys::SecretKey>, h: &B256) -> anyhow::Result<Vec<u8>> {
    let path = format!("/v1/blobs/{h}");
    let headers = match key {
        Some(k) => vec![http.auth_header(k, "GET", &path, b"")?],
        None => vec![],
    };
    let (status, body) = http.request("GET", &path, &headers, b"")?;
    if status != 200 {
        bail!("blob {h}: HTTP {status}: {}", error_message(&body));
    }
    if primitives::content_hash(&body) != *h {
        bail!("blob {h}: the node sent bytes with another hash");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_models_parse() {
        assert_eq!("none".parse::<Limit>().unwrap().0, u128::MAX);
        assert_eq!("5OPEN".parse::<Limit>().unwrap().0, 5 * primitives::ONE_OPEN);
        assert_eq!("7wei".parse::<Limit>().unwrap().0, 7);
        assert!("lots".parse::<Limit>().is_err());
        assert_eq!(parse_model("m3"), Ok(3));
        assert_eq!(parse_model("12"), Ok(12));
        assert!(parse_model("mx").is_err());
    }
}
