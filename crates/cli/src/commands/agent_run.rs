//! `agent run ID --domain D --api-key KEY`: an agent at work. It polls the open
//! offers and the tasks directed to it, takes one whose spec is in its domain
//! (and whose deadline and stake it meets), answers the spec's prompt with a
//! live model through the node's OpenAI-compatible API with an API key bound to
//! the agent's wallet (so the agent pays), stores the answer as a blob, waits
//! until the answer's receipt is settled on chain (the serving node settles
//! periodically), and delivers the result with that receipt.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use primitives::abi::{AgentTask, IAgents, IInference};
use primitives::system::Module;
use primitives::{Amount, B256};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use super::agent::{AGENTS, TxArgs, get_blob, put_blob};
use super::agent_task::TaskSpec;
use super::httpc::{HttpArgs, error_message};
use crate::contract::{head, view};
use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The agent to work for (the signer is its operator or owner).
    pub id: u64,
    /// Take tasks whose spec is in this domain (case-insensitive).
    #[arg(long)]
    pub domain: String,
    /// An API key bound to the agent's wallet (default: one `agent bind-key` kept on this machine).
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
    /// The model that answers.
    #[arg(long, default_value = "m1")]
    pub model: String,
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u64,
    /// Handle one task and exit (waiting up to --timeout-secs for one).
    #[arg(long)]
    pub once: bool,
    /// How long `--once` waits for a task, and how long a receipt may take to settle.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    #[command(flatten)]
    pub tx: TxArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Most tasks looked at per poll, from each list.
const PAGE: u64 = 100;

pub fn run(mut a: RunArgs, out: Out) -> anyhow::Result<()> {
    if a.api_key.is_none() {
        let wallet = primitives::abi::agent_wallet(a.id);
        a.api_key = super::apikey::kept_key_for(wallet, &a.tx.rpc)?;
        if a.api_key.is_none() {
            bail!(
                "no API key of agent {}'s wallet {wallet} on this machine: give --api-key (agent bind-key makes one)",
                a.id
            );
        }
    }
    let mut skipped = HashSet::new();
    let started = Instant::now();
    loop {
        let mut c = a.tx.rpc.client();
        if let Some((task, spec)) = next_task(&mut c, &a, &mut skipped)? {
            let done = work(&mut c, &a, &task, &spec)?;
            out.print(
                || {
                    format!(
                        "task {} delivered: result {} with receipt {}\n{}",
                        task.id,
                        done["resultHash"].as_str().unwrap_or(""),
                        done["receipts"][0].as_str().unwrap_or(""),
                        done["answer"].as_str().unwrap_or("")
                    )
                },
                done.clone(),
            );
            if a.once {
                return Ok(());
            }
        } else if a.once && started.elapsed() > Duration::from_secs(a.timeout_secs) {
            bail!("no task in domain {:?} for agent {} within {} s", a.domain, a.id, a.timeout_secs);
        }
        std::thread::sleep(Duration::from_millis(a.poll_ms));
    }
}

/// The first open task this agent may take whose spec is in its domain.
fn next_task(
    c: &mut RpcClient,
    a: &RunArgs,
    skipped: &mut HashSet<u64>,
) -> anyhow::Result<Option<(AgentTask, TaskSpec)>> {
    let me = view(c, AGENTS, &IAgents::agentCall { id: a.id })?;
    if me.frozenAt != 0 {
        bail!("agent {} is frozen (since block {}): it can pay for nothing", a.id, me.frozenAt);
    }
    let mut ids = view(c, AGENTS, &IAgents::tasksOfCall { agentId: a.id, offset: 0, limit: PAGE })?;
    ids.extend(view(c, AGENTS, &IAgents::openTasksCall { offset: 0, limit: PAGE })?);
    let now = head(c)?;
    for id in ids {
        if skipped.contains(&id) {
            continue;
        }
        let t = view(c, AGENTS, &IAgents::taskCall { taskId: id })?;
        let for_me = t.agentId == 0 || t.agentId == a.id;
        if t.status != 1 || !for_me {
            continue;
        }
        if t.deadline <= now || t.requiredStake > me.bond {
            skipped.insert(id);
            continue;
        }
        let spec = get_blob(&a.http, None, &t.specHash)
            .ok()
            .and_then(|b| TaskSpec::parse(&b).ok())
            .filter(|s| s.domain.eq_ignore_ascii_case(&a.domain));
        match spec {
            Some(s) => return Ok(Some((t, s))),
            // Not readable, not a spec, or another domain: not for this agent.
            None => {
                skipped.insert(id);
            }
        }
    }
    Ok(None)
}

/// Accept, answer, wait for the receipt to settle, deliver.
fn work(c: &mut RpcClient, a: &RunArgs, t: &AgentTask, spec: &TaskSpec) -> anyhow::Result<Value> {
    a.tx.send(Amount::ZERO, IAgents::acceptTaskCall { taskId: t.id, agentId: a.id }, "agents.acceptTask")?;
    let (answer, receipt) = ask(a, &spec.prompt)?;
    let result = json!({
        "task": t.id, "agent": a.id, "model": a.model, "prompt": spec.prompt, "answer": answer, "receipts": [receipt],
    });
    let key = a.tx.signer.key()?;
    let result_hash = put_blob(&a.http, &key, &serde_json::to_vec(&result)?, "public")?;
    wait_settled(c, receipt, Duration::from_secs(a.timeout_secs))?;
    let call = IAgents::deliverCall { taskId: t.id, resultHash: result_hash, receipts: vec![receipt] };
    let s = a.tx.send(Amount::ZERO, call, "agents.deliver")?;
    Ok(s.json(json!({"taskId": t.id, "resultHash": result_hash, "receipts": [receipt], "answer": answer})))
}

/// Ask the model with the agent's API key: (the answer, its receipt's hash).
fn ask(a: &RunArgs, prompt: &str) -> anyhow::Result<(String, B256)> {
    let body = json!({
        "model": a.model, "messages": [{"role": "user", "content": prompt}],
        "max_tokens": a.max_tokens, "temperature": 0.0,
    });
    let headers = [
        ("Content-Type", "application/json".to_string()),
        ("Authorization", format!("Bearer {}", a.api_key.as_deref().unwrap_or(""))),
    ];
    let (status, resp) = a.http.request("POST", "/v1/chat/completions", &headers, &serde_json::to_vec(&body)?)?;
    if status != 200 {
        bail!("the model refused the agent's request: HTTP {status}: {}", error_message(&resp));
    }
    let v: Value = serde_json::from_slice(&resp)?;
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string();
    let receipt = v["receipt"]["hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| anyhow!("the answer carries no receipt (does this node bill its answers?)"))?;
    Ok((answer, receipt))
}

/// Wait until the inference module has settled `receipt`.
fn wait_settled(c: &mut RpcClient, receipt: B256, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = view(c, Module::Inference.address(), &IInference::settledReceiptCall { receiptHash: receipt })?;
        if s.settledAt != 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("receipt {receipt} not settled within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
