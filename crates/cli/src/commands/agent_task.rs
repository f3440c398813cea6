//! `agent task …`: paid tasks (post with escrow, accept, deliver with the
//! receipts paid for, accept the result or dispute it, resolve, settle,
//! feedback), and `agent trail TASK`: who was paid for a task, to the wei.
//!
//! A task's spec is a small JSON blob ([`TaskSpec`]) in the node's blob store;
//! the task's `specHash` is its blob hash.

use anyhow::{anyhow, bail};
use primitives::abi::{AgentTask, IAgents, IDatanets, IInference};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use super::RpcArgs;
use super::agent::{AGENTS, TxArgs, done, put_blob};
use super::httpc::HttpArgs;
use crate::contract::{events, head, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();

/// What a task asks: the domain an agent must work in, and the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub domain: String,
    pub prompt: String,
}

impl TaskSpec {
    /// A spec blob's bytes: a JSON object with string fields `domain` and `prompt` (others ignored).
    pub fn parse(bytes: &[u8]) -> Result<TaskSpec, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let field = |k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| format!("no string field {k:?}"));
        Ok(TaskSpec { domain: field("domain")?, prompt: field("prompt")? })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"domain": self.domain, "prompt": self.prompt})).expect("strings only")
    }
}

/// The spec's bytes: a JSON file as given (checked to be a [`TaskSpec`]), or
/// the text as the prompt of a spec in `domain`.
pub fn spec_bytes(spec: &str, domain: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let path = std::path::Path::new(spec);
    if path.is_file() {
        let bytes = std::fs::read(path)?;
        let s = TaskSpec::parse(&bytes)
            .map_err(|e| anyhow!("{spec}: a task spec is JSON {{\"domain\": …, \"prompt\": …}}: {e}"))?;
        if let Some(d) = domain
            && d != s.domain
        {
            bail!("{spec} is in domain {:?}, not {d:?}", s.domain);
        }
        return Ok(bytes);
    }
    if spec.trim().is_empty() {
        bail!("the task spec is empty");
    }
    let s = TaskSpec { domain: domain.unwrap_or("general").to_string(), prompt: spec.to_string() };
    Ok(s.to_bytes())
}

/// A file's bytes, or the text itself.
fn file_or_text(s: &str) -> anyhow::Result<Vec<u8>> {
    let p = std::path::Path::new(s);
    Ok(if p.is_file() { std::fs::read(p)? } else { s.as_bytes().to_vec() })
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    Agent,
    Client,
}

#[derive(clap::Subcommand, Debug)]
pub enum TaskCmd {
    /// Post a task with its payment in escrow, for one agent or as an open offer.
    Post {
        /// The agent it is for (default: an open offer any agent may accept).
        #[arg(long)]
        agent: Option<u64>,
        /// A spec file (JSON `{"domain": …, "prompt": …}`) or the prompt's text.
        #[arg(long)]
        spec: String,
        /// The domain of a spec given as text.
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        payment: Amount,
        /// Blocks from now to the delivery deadline.
        #[arg(long, default_value_t = 200)]
        deadline_blocks: u64,
        /// Least bond an agent needs to accept it.
        #[arg(long, default_value = "0")]
        stake: Amount,
        /// Who rules on a dispute (default: governance).
        #[arg(long)]
        resolver: Option<Address>,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The client, before acceptance: cancel and get the payment back.
    Cancel {
        task: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The agent's operator or owner: take the task on.
    Accept {
        task: u64,
        #[arg(long)]
        agent: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The agent's operator or owner: deliver the result with the receipts the agent paid for.
    Deliver {
        task: u64,
        /// A result file, or the result's text (stored as a blob; its hash goes on chain).
        #[arg(long)]
        result: String,
        #[arg(long = "receipt")]
        receipts: Vec<B256>,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The client: accept the delivery (the agent's owner is paid).
    AcceptResult {
        task: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The client, within the dispute window: dispute the delivery.
    Dispute {
        task: u64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The task's resolver: rule on a dispute.
    Resolve {
        task: u64,
        #[arg(long, value_enum)]
        winner: Winner,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Anyone: release an undisputed delivery after the window, or refund a missed deadline.
    Settle {
        task: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The client, once per paid task: a score 0..=100 and a comment.
    Feedback {
        task: u64,
        score: u8,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    Show {
        task: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Open offers (`--open`) or an agent's tasks (`--agent ID`).
    List {
        #[arg(long, conflicts_with = "agent")]
        open: bool,
        #[arg(long)]
        agent: Option<u64>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

pub fn run(c: TaskCmd, out: Out) -> anyhow::Result<()> {
    use node::agents_route::task_json;
    match c {
        TaskCmd::Post { agent, spec, domain, payment, deadline_blocks, stake, resolver, tx, http } => {
            let bytes = spec_bytes(&spec, domain.as_deref())?;
            let spec_hash = put_blob(&http, &tx.signer.key()?, &bytes, "public")?;
            let deadline = head(&mut tx.rpc.client())? + deadline_blocks;
            let call = IAgents::postTaskCall {
                agentId: agent.unwrap_or(0),
                specHash: spec_hash,
                deadline,
                requiredStake: stake.0,
                resolver: resolver.unwrap_or(Module::Governance.address()),
            };
            let s = tx.send(payment, call, "agents.postTask")?;
            let ev = s
                .event::<IAgents::TaskPosted>(AGENTS)
                .ok_or_else(|| anyhow!("agents.postTask mined without a TaskPosted event"))?;
            let msg = format!("task {} posted: {payment} OPEN in escrow until block {deadline}", ev.taskId);
            done(out, &s, msg, json!({"taskId": ev.taskId, "specHash": spec_hash, "deadline": deadline}))
        }
        TaskCmd::Cancel { task, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::cancelTaskCall { taskId: task }, "agents.cancelTask")?;
            done(out, &s, format!("task {task} cancelled and refunded"), json!({"taskId": task}))
        }
        TaskCmd::Accept { task, agent, tx } => {
            let s =
                tx.send(Amount::ZERO, IAgents::acceptTaskCall { taskId: task, agentId: agent }, "agents.acceptTask")?;
            done(out, &s, format!("agent {agent} accepted task {task}"), json!({"taskId": task, "agentId": agent}))
        }
        TaskCmd::Deliver { task, result, receipts, tx, http } => {
            let result_hash = put_blob(&http, &tx.signer.key()?, &file_or_text(&result)?, "public")?;
            deliver(&tx, task, result_hash, receipts, out)
        }
        TaskCmd::AcceptResult { task, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::acceptResultCall { taskId: task }, "agents.acceptResult")?;
            let paid = s.event::<IAgents::TaskPaid>(AGENTS);
            let msg = match &paid {
                Some(p) => format!(
                    "task {task} paid: {} OPEN to {}, {} OPEN protocol share",
                    Amount(p.toAgent),
                    p.agentOwner,
                    Amount(p.protocolShare)
                ),
                None => format!("task {task} accepted"),
            };
            let extra = paid.map_or(json!({"taskId": task}), |p| {
                json!({"taskId": task, "agentOwner": p.agentOwner, "toAgent": p.toAgent.to_string(),
                       "protocolShare": p.protocolShare.to_string()})
            });
            done(out, &s, msg, extra)
        }
        TaskCmd::Dispute { task, reason, tx, http } => {
            let reason_hash = put_blob(&http, &tx.signer.key()?, reason.as_bytes(), "public")?;
            let s = tx.send(
                Amount::ZERO,
                IAgents::disputeCall { taskId: task, reasonHash: reason_hash },
                "agents.dispute",
            )?;
            done(out, &s, format!("task {task} disputed"), json!({"taskId": task, "reasonHash": reason_hash}))
        }
        TaskCmd::Resolve { task, winner, tx } => {
            let call = IAgents::resolveDisputeCall { taskId: task, agentWins: winner == Winner::Agent };
            let s = tx.send(Amount::ZERO, call, "agents.resolveDispute")?;
            done(out, &s, format!("task {task}: the dispute goes to the {winner:?}"), json!({"taskId": task}))
        }
        TaskCmd::Settle { task, tx } => {
            let s = tx.send(Amount::ZERO, IAgents::settleTaskCall { taskId: task }, "agents.settleTask")?;
            done(out, &s, format!("task {task} settled"), json!({"taskId": task}))
        }
        TaskCmd::Feedback { task, score, comment, tx, http } => {
            let comment_hash = match comment {
                Some(c) => put_blob(&http, &tx.signer.key()?, c.as_bytes(), "public")?,
                None => B256::ZERO,
            };
            let call = IAgents::feedbackCall { taskId: task, score, commentHash: comment_hash };
            let s = tx.send(Amount::ZERO, call, "agents.feedback")?;
            done(out, &s, format!("task {task}: feedback {score}"), json!({"taskId": task, "score": score}))
        }
        TaskCmd::Show { task, rpc } => {
            let t = view(&mut rpc.client(), AGENTS, &IAgents::taskCall { taskId: task })?;
            let v = task_json(&t);
            out.print(|| human_task(&t), v);
            Ok(())
        }
        TaskCmd::List { open, agent, offset, limit, rpc } => {
            let mut c = rpc.client();
            let ids = match (open, agent) {
                (_, Some(a)) => view(&mut c, AGENTS, &IAgents::tasksOfCall { agentId: a, offset, limit })?,
                (true, None) => view(&mut c, AGENTS, &IAgents::openTasksCall { offset, limit })?,
                (false, None) => bail!("give --open or --agent ID"),
            };
            let mut tasks = Vec::new();
            for id in ids {
                tasks.push(view(&mut c, AGENTS, &IAgents::taskCall { taskId: id })?);
            }
            let v = Value::Array(tasks.iter().map(task_json).collect());
            out.print(|| tasks.iter().map(human_task).collect::<Vec<_>>().join("\n"), v);
            Ok(())
        }
    }
}

/// Deliver `result_hash` and the receipts for `task` (the agent's operator or owner).
pub(super) fn deliver(tx: &TxArgs, task: u64, result_hash: B256, receipts: Vec<B256>, out: Out) -> anyhow::Result<()> {
    let n = receipts.len();
    let call = IAgents::deliverCall { taskId: task, resultHash: result_hash, receipts };
    let s = tx.send(Amount::ZERO, call, "agents.deliver")?;
    let msg = format!("task {task} delivered: result {result_hash}, {n} receipts");
    done(out, &s, msg, json!({"taskId": task, "resultHash": result_hash, "receipts": n}))
}

fn human_task(t: &AgentTask) -> String {
    format!(
        "task {}: {} — client {}, agent {}, {} OPEN, deadline {}, spec {}{}",
        t.id,
        node::agents_route::task_status(t.status),
        t.client,
        t.agentId,
        Amount(t.payment),
        t.deadline,
        t.specHash,
        if t.receipts.is_empty() { String::new() } else { format!(", {} receipts", t.receipts.len()) }
    )
}

fn hold_status(s: u8) -> &'static str {
    match s {
        1 => "open",
        2 => "posted",
        3 => "finalized",
        4 => "fallback",
        _ => "none",
    }
}

/// A receipt's data part, where it went: per-contribution credits (finalized:
/// the `Credited` logs and the rounding dust; posted: the pending credits), the
/// fallback's payments, or still held.
fn data_part(c: &mut RpcClient, receipt: B256, amount: u128) -> anyhow::Result<Value> {
    // A model without Datanet versions has no data part, and no hold.
    let hold = match amount {
        0 => Default::default(),
        _ => view(c, INFERENCE, &IInference::holdCall { receiptHash: receipt })?,
    };
    let mut credits: Vec<(u64, u128)> = Vec::new();
    let mut dust = 0u128;
    let mut forfeited = 0u128;
    let mut fallback = Vec::new();
    match hold.status {
        2 => {
            let p = view(c, INFERENCE, &IInference::pendingCreditsCall { receiptHash: receipt })?;
            credits = p.contributionIds.into_iter().zip(p.amounts).collect();
        }
        3 => {
            credits = events::<IInference::Credited>(c, INFERENCE, receipt)?
                .into_iter()
                .map(|e| (e.contributionId, e.amount))
                .collect();
            dust = events::<IInference::AttributionFinalized>(c, INFERENCE, receipt)?.iter().map(|e| e.dust).sum();
            forfeited = events::<IInference::CreditForfeited>(c, INFERENCE, receipt)?.iter().map(|e| e.amount).sum();
        }
        4 => {
            for e in events::<IInference::FallbackPaid>(c, INFERENCE, receipt)? {
                fallback.push(json!({"datanetId": e.datanetId, "version": e.version, "amount": e.amount.to_string()}));
            }
        }
        _ => {}
    }
    let mut rows = Vec::new();
    for (id, amt) in &credits {
        let contributor = view(c, Module::Datanets.address(), &IDatanets::contributionCall { contributionId: *id })
            .map(|r| r.contributor)
            .unwrap_or(Address::ZERO);
        rows.push(json!({"contributionId": id, "contributor": contributor, "amount": amt.to_string()}));
    }
    let credited: u128 = credits.iter().map(|c| c.1).sum();
    Ok(json!({
        "amount": amount.to_string(), "status": hold_status(hold.status), "held": hold.amount.to_string(),
        "recordHash": hold.recordHash, "credits": rows, "credited": credited.to_string(),
        "dust": dust.to_string(), "forfeited": forfeited.to_string(), "fallback": fallback,
    }))
}

/// The trail of a task as JSON: the client's payment, the agent owner's part
/// and the protocol share, and for each receipt every party's part.
pub fn trail_json(c: &mut RpcClient, task: u64) -> anyhow::Result<Value> {
    let t = view(c, AGENTS, &IAgents::taskCall { taskId: task })?;
    let topic = B256::from(U256::from(task));
    let paid = events::<IAgents::TaskPaid>(c, AGENTS, topic)?.pop();
    let refunded = events::<IAgents::TaskRefunded>(c, AGENTS, topic)?.pop();
    let owner = match &paid {
        Some(p) => json!({"address": p.agentOwner, "paid": p.toAgent.to_string(),
                          "protocolShare": p.protocolShare.to_string()}),
        None => Value::Null,
    };
    let refund = refunded
        .map(|r| json!({"to": r.client, "amount": r.amount.to_string(), "bondSlashed": r.bondSlashed.to_string()}));
    let mut receipts = Vec::new();
    for h in &t.receipts {
        let s = view(c, INFERENCE, &IInference::settledReceiptCall { receiptHash: *h })?;
        receipts.push(json!({
            "hash": h, "payer": s.payer, "modelId": s.modelId, "settledAt": s.settledAt, "cost": s.cost.to_string(),
            "modelOwner": {"address": s.modelOwner, "amount": s.ownerPart.to_string()},
            "servingOperator": {"address": s.operator, "amount": s.servingPart.to_string()},
            "stakers": s.stakersPart.to_string(),
            "treasury": s.treasuryPart.to_string(),
            "data": data_part(c, *h, s.dataPart)?,
        }));
    }
    Ok(json!({
        "task": task, "status": node::agents_route::task_status(t.status), "client": t.client,
        "payment": t.payment.to_string(), "agentId": t.agentId, "agentOwner": owner, "refund": refund,
        "receipts": receipts,
    }))
}

fn wei(v: &Value) -> String {
    let n: u128 = v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    format!("{} OPEN", Amount(n))
}

fn human_trail(v: &Value) -> String {
    let mut s = format!(
        "task {} ({}): client {} paid {}",
        v["task"],
        v["status"].as_str().unwrap_or(""),
        v["client"].as_str().unwrap_or(""),
        wei(&v["payment"])
    );
    if let Some(o) = v["agentOwner"].as_object() {
        s += &format!(
            "\n  → agent {} owner {}: {} (protocol share {})",
            v["agentId"],
            o["address"].as_str().unwrap_or(""),
            wei(&o["paid"]),
            wei(&o["protocolShare"])
        );
    }
    if let Some(r) = v["refund"].as_object() {
        s += &format!("\n  → refunded to {}: {}", r["to"].as_str().unwrap_or(""), wei(&r["amount"]));
    }
    for r in v["receipts"].as_array().into_iter().flatten() {
        s += &format!(
            "\n  receipt {} (m{}): {} paid by the agent wallet",
            r["hash"].as_str().unwrap_or(""),
            r["modelId"],
            wei(&r["cost"])
        );
        s += &format!(
            "\n    → model owner {}: {}",
            r["modelOwner"]["address"].as_str().unwrap_or(""),
            wei(&r["modelOwner"]["amount"])
        );
        s += &format!(
            "\n    → serving operator {}: {}",
            r["servingOperator"]["address"].as_str().unwrap_or(""),
            wei(&r["servingOperator"]["amount"])
        );
        s += &format!("\n    → stakers: {}\n    → treasury: {}", wei(&r["stakers"]), wei(&r["treasury"]));
        let d = &r["data"];
        s += &format!("\n    → data ({}): {}", d["status"].as_str().unwrap_or(""), wei(&d["amount"]));
        for c in d["credits"].as_array().into_iter().flatten() {
            s += &format!(
                "\n      → contribution {} of {}: {}",
                c["contributionId"],
                c["contributor"].as_str().unwrap_or(""),
                wei(&c["amount"])
            );
        }
        if d["dust"] != "0" {
            s += &format!("\n      → rounding dust to the treasury: {}", wei(&d["dust"]));
        }
    }
    s
}

/// `agent trail TASK`.
pub fn trail(task: u64, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let v = trail_json(&mut rpc.client(), task)?;
    out.print(|| human_trail(&v), v.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_from_text_and_files() {
        let b = spec_bytes("say hi", Some("greetings")).unwrap();
        let s = TaskSpec::parse(&b).unwrap();
        assert_eq!(s, TaskSpec { domain: "greetings".into(), prompt: "say hi".into() });
        assert!(spec_bytes("  ", None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spec.json");
        std::fs::write(&p, br#"{"domain":"shell","prompt":"list files"}"#).unwrap();
        assert_eq!(spec_bytes(p.to_str().unwrap(), None).unwrap(), std::fs::read(&p).unwrap());
        assert!(spec_bytes(p.to_str().unwrap(), Some("law")).is_err());
        std::fs::write(&p, b"not json").unwrap();
        assert!(spec_bytes(p.to_str().unwrap(), None).is_err());
    }
}
