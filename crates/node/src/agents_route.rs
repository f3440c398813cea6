//! The agents' HTTP routes: agent cards, tasks, and the blobs agents and their
//! clients keep in this node's store.
//!
//! - `GET /v1/agents/{id}`: the agent card (the on-chain `AgentInfo`, its
//!   reputation and limits, `tokenURI`, and the registration file's JSON when
//!   this node holds it);
//! - `GET /v1/agents?owner=0x…[&offset=N&limit=N]`: the cards of an owner's agents;
//! - `GET /v1/tasks?open=true` or `?agent=ID` (`offset`, `limit`): tasks;
//! - `GET /v1/tasks/{id}`: one task;
//! - `POST /v1/agents/blobs[?kind=public|memory&agent=ID]` (signed request, raw
//!   bytes, at most [`MAX_AGENT_BLOB`]): store a blob. `public` (registration
//!   files, task specs, results) is readable by anyone through
//!   `GET /v1/blobs/{hash}`; `memory` (a snapshot of an agent's memory map) only
//!   by its agent's owner and operator may store it, and only callers the
//!   agents module's `canReadMemory` allows may read it ([`AgentBlobs::decide`]).
//!
//! Ids are decimal u64s (400 `malformed_id` otherwise), pages hold at most
//! [`MAX_PAGE`] entries, an unknown agent or task is 404. Chain reads are the
//! agents module's own views, so this file knows its storage not at all.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use alloy_sol_types::SolInterface;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use blobs::BlobStore;
use chain::Chain;
use httpapi::{ApiError, AuthedCaller};
use primitives::abi::{AgentInfo, AgentLimits, AgentReputation, AgentTask, IAgents};
use primitives::system::Module;
use primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tx::{ViewError, call_view};

/// The index of agent blobs in the data directory.
pub const INDEX_FILE: &str = "agent-blobs.jsonl";
/// Largest blob `POST /v1/agents/blobs` stores.
pub const MAX_AGENT_BLOB: usize = 256 * 1024;
/// Bytes one caller may store per UTC day through `POST /v1/agents/blobs` on this node.
pub const DAILY_BYTES_PER_CALLER: u64 = 32 * 1024 * 1024;
/// Most entries of one page of agents or tasks.
pub const MAX_PAGE: u64 = 100;

const AGENTS: Address = Module::Agents.address();

/// Who may read an agent blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AgentBlobKind {
    /// Anyone (registration files, task specs, results).
    Public,
    /// Whom the agents module's `canReadMemory(agent, caller)` allows.
    Memory { agent: u64 },
}

#[derive(Serialize, Deserialize)]
struct IndexLine {
    hash: B256,
    #[serde(flatten)]
    kind: AgentBlobKind,
}

/// The agent blobs this node stored and who may read them, kept in a
/// JSON-lines file so the decision survives a restart.
pub struct AgentBlobs {
    chain: Arc<Chain>,
    store: Arc<BlobStore>,
    path: PathBuf,
    index: Mutex<HashMap<B256, AgentBlobKind>>,
    /// (UTC day, bytes stored per caller that day).
    usage: Mutex<(u64, HashMap<Address, u64>)>,
}

impl AgentBlobs {
    /// Open (or start) the index at `path`; malformed lines are skipped with a warning.
    pub fn open(chain: Arc<Chain>, store: Arc<BlobStore>, path: PathBuf) -> std::io::Result<Arc<AgentBlobs>> {
        let mut index = HashMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match serde_json::from_str::<IndexLine>(line) {
                        Ok(l) => merge(&mut index, l.hash, l.kind),
                        Err(e) => tracing::warn!("{}: skipped a malformed line: {e}", path.display()),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Arc::new(AgentBlobs { chain, store, path, index: Mutex::new(index), usage: Default::default() }))
    }

    fn remember(&self, hash: B256, kind: AgentBlobKind) -> std::io::Result<()> {
        let mut index = self.index.lock().unwrap();
        if index.get(&hash) == Some(&AgentBlobKind::Public) || index.get(&hash) == Some(&kind) {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(f, "{}", serde_json::to_string(&IndexLine { hash, kind }).expect("plain struct"))?;
        merge(&mut index, hash, kind);
        Ok(())
    }

    /// `None` when the blob is no agent blob of this node; else whether `caller` may read it.
    pub fn decide(&self, hash: &B256, caller: Option<Address>) -> Result<Option<bool>, String> {
        let kind = self.index.lock().unwrap().get(hash).copied();
        match (kind, caller) {
            (None, _) => Ok(None),
            (Some(AgentBlobKind::Public), _) => Ok(Some(true)),
            (Some(AgentBlobKind::Memory { .. }), None) => Ok(Some(false)),
            (Some(AgentBlobKind::Memory { agent }), Some(reader)) => {
                match call_view(&self.chain, AGENTS, &IAgents::canReadMemoryCall { id: agent, reader }) {
                    Ok(ok) => Ok(Some(ok)),
                    Err(ViewError::Reverted(_)) => Ok(Some(false)),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    /// Count `bytes` against the caller's daily allowance of this node's store.
    fn charge(&self, caller: Address, bytes: u64) -> Result<(), ApiError> {
        let day = httpapi::unix_now() / 86_400;
        let mut u = self.usage.lock().unwrap();
        if u.0 != day {
            *u = (day, HashMap::new());
        }
        let used = u.1.entry(caller).or_default();
        if *used + bytes > DAILY_BYTES_PER_CALLER {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "agent_blob_quota",
                format!("{caller} stored {used} bytes today; this node keeps at most {DAILY_BYTES_PER_CALLER} a day"),
            ));
        }
        *used += bytes;
        Ok(())
    }
}

/// A public entry stays public: anyone may have read it already.
fn merge(index: &mut HashMap<B256, AgentBlobKind>, hash: B256, kind: AgentBlobKind) {
    if index.get(&hash) != Some(&AgentBlobKind::Public) {
        index.insert(hash, kind);
    }
}

/// The agents routes, for the node's HTTP server.
pub fn routes(blobs: Arc<AgentBlobs>) -> Router {
    Router::new()
        .route("/v1/agents", get(list_agents))
        .route("/v1/agents/blobs", post(put_blob))
        .route("/v1/agents/{id}", get(get_agent))
        .route("/v1/tasks", get(list_tasks))
        .route("/v1/tasks/{id}", get(get_task))
        .with_state(blobs)
}

fn answer(r: Result<Value, ApiError>, ok: StatusCode) -> Response {
    match r {
        Ok(v) => (ok, axum::Json(v)).into_response(),
        Err(e) => httpapi::error_response(e.status, e.kind, e.code, e.message),
    }
}

/// A decimal u64 id.
fn parse_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request("malformed_id", format!("{raw:?} is not {what} id (a decimal number)")));
    }
    raw.parse().map_err(|_| ApiError::bad_request("malformed_id", format!("{raw:?} is not {what} id (too large)")))
}

/// The query string's parameters (no percent-decoding: every value here is a number, a bool or hex).
fn query(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    let q = uri.query().unwrap_or("");
    if q.len() > 512 {
        return Err(ApiError::bad_request("malformed_query", "the query string is longer than 512 bytes"));
    }
    Ok(q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect())
}

fn page(q: &HashMap<String, String>) -> Result<(u64, u64), ApiError> {
    let num = |k: &str, default: u64| -> Result<u64, ApiError> {
        match q.get(k) {
            None => Ok(default),
            Some(v) => {
                v.parse().map_err(|_| ApiError::bad_request("malformed_query", format!("{k}={v:?} is not a number")))
            }
        }
    };
    Ok((num("offset", 0)?, num("limit", 20)?.clamp(1, MAX_PAGE)))
}

/// An agents view, with the module's "unknown" errors as 404.
fn read<C: alloy_sol_types::SolCall>(chain: &Chain, call: &C) -> Result<C::Return, ApiError> {
    call_view(chain, AGENTS, call).map_err(|e| match e {
        ViewError::Reverted(d) => match IAgents::IAgentsErrors::abi_decode(&d) {
            Ok(IAgents::IAgentsErrors::UnknownAgent(u)) => {
                ApiError::not_found("unknown_agent", format!("no agent {} on this chain", u.id))
            }
            Ok(IAgents::IAgentsErrors::UnknownTask(u)) => {
                ApiError::not_found("unknown_task", format!("no task {} on this chain", u.id))
            }
            Ok(IAgents::IAgentsErrors::ERC721NonexistentToken(u)) => {
                ApiError::not_found("unknown_agent", format!("no agent {} on this chain", u.tokenId))
            }
            _ => ApiError::internal("agents_view", format!("{} {}", C::SIGNATURE, ViewError::Reverted(d))),
        },
        ViewError::Failed(m) => ApiError::internal("agents_view", m),
    })
}

/// The agent's on-chain record as JSON (amounts as decimal strings of base units).
pub fn agent_json(a: &AgentInfo) -> Value {
    json!({
        "id": a.id, "owner": a.owner, "operator": a.operator, "wallet": a.wallet,
        "name": a.name, "description": a.description, "metadataHash": a.metadataHash,
        "createdAt": a.createdAt, "frozenAt": a.frozenAt, "frozen": a.frozenAt != 0,
        "bond": a.bond.to_string(), "unbonding": a.unbonding.to_string(), "unbondAt": a.unbondAt,
        "memoryRoot": a.memoryRoot, "memoryVersion": a.memoryVersion,
    })
}

/// An agent's limits as JSON (`null` for `type(uint128).max`: no limit).
pub fn limits_json(l: &AgentLimits) -> Value {
    let amount = |v: u128| if v == u128::MAX { Value::Null } else { Value::String(v.to_string()) };
    json!({
        "perPeriod": amount(l.perPeriod), "perOperator": amount(l.perOperator),
        "periodBlocks": l.periodBlocks, "models": l.models, "modelsSince": l.modelsSince,
    })
}

pub fn reputation_json(r: &AgentReputation) -> Value {
    let average = (r.feedbackCount > 0).then(|| r.scoreSum as f64 / r.feedbackCount as f64);
    json!({
        "tasksCompleted": r.tasksCompleted, "feedbackCount": r.feedbackCount, "scoreSum": r.scoreSum,
        "averageScore": average, "disputesLost": r.disputesLost, "disputesWon": r.disputesWon,
    })
}

/// A task status's name.
pub fn task_status(s: u8) -> &'static str {
    match s {
        1 => "open",
        2 => "accepted",
        3 => "delivered",
        4 => "disputed",
        5 => "paid",
        6 => "refunded",
        _ => "unknown",
    }
}

pub fn task_json(t: &AgentTask) -> Value {
    json!({
        "id": t.id, "client": t.client, "agentId": t.agentId, "specHash": t.specHash,
        "payment": t.payment.to_string(), "deadline": t.deadline, "requiredStake": t.requiredStake.to_string(),
        "resolver": t.resolver, "status": task_status(t.status), "statusCode": t.status,
        "postedAt": t.postedAt, "deliveredAt": t.deliveredAt, "resultHash": t.resultHash,
        "receipts": t.receipts, "score": (t.score != 255).then_some(t.score), "commentHash": t.commentHash,
    })
}

/// The card of agent `id`.
async fn card(st: &AgentBlobs, id: u64) -> Result<Value, ApiError> {
    let info = read(&st.chain, &IAgents::agentCall { id })?;
    let reputation = read(&st.chain, &IAgents::reputationCall { id })?;
    let limits = read(&st.chain, &IAgents::limitsCall { id })?;
    // The registration file, when this node holds it as a public blob and it is JSON.
    let mut metadata = Value::Null;
    if info.metadataHash != B256::ZERO
        && st.decide(&info.metadataHash, None).ok().flatten() == Some(true)
        && let Ok(bytes) = st.store.get(&info.metadataHash).await
    {
        metadata = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    }
    Ok(json!({
        "agent": agent_json(&info),
        "reputation": reputation_json(&reputation),
        "limits": limits_json(&limits),
        "tokenURI": format!("openledger://agents/{id}"),
        "metadata": metadata,
    }))
}

async fn get_agent(State(st): State<Arc<AgentBlobs>>, Path(raw): Path<String>) -> Response {
    let r = async { card(&st, parse_id(&raw, "an agent")?).await }.await;
    answer(r, StatusCode::OK)
}

async fn list_agents(State(st): State<Arc<AgentBlobs>>, uri: Uri) -> Response {
    let r = async {
        let q = query(&uri)?;
        let raw = q.get("owner").ok_or_else(|| ApiError::bad_request("missing_owner", "give ?owner=0x…"))?;
        let owner: Address =
            raw.parse().map_err(|_| ApiError::bad_request("malformed_owner", format!("{raw:?} is not an address")))?;
        let (offset, limit) = page(&q)?;
        let ids = read(&st.chain, &IAgents::agentsOfCall { owner, offset, limit })?;
        let mut agents = Vec::with_capacity(ids.len());
        for id in ids {
            agents.push(agent_json(&read(&st.chain, &IAgents::agentCall { id })?));
        }
        Ok(json!({"owner": owner, "offset": offset, "agents": agents}))
    }
    .await;
    answer(r, StatusCode::OK)
}

async fn list_tasks(State(st): State<Arc<AgentBlobs>>, uri: Uri) -> Response {
    let r = (|| {
        let q = query(&uri)?;
        let (offset, limit) = page(&q)?;
        let ids = match (q.get("open").map(String::as_str), q.get("agent")) {
            (Some("true"), None) => read(&st.chain, &IAgents::openTasksCall { offset, limit })?,
            (None, Some(a)) => {
                read(&st.chain, &IAgents::tasksOfCall { agentId: parse_id(a, "an agent")?, offset, limit })?
            }
            _ => return Err(ApiError::bad_request("malformed_query", "give ?open=true or ?agent=ID (not both)")),
        };
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            tasks.push(task_json(&read(&st.chain, &IAgents::taskCall { taskId: id })?));
        }
        Ok(json!({"offset": offset, "tasks": tasks}))
    })();
    answer(r, StatusCode::OK)
}

async fn get_task(State(st): State<Arc<AgentBlobs>>, Path(raw): Path<String>) -> Response {
    let r = parse_id(&raw, "a task").and_then(|id| Ok(task_json(&read(&st.chain, &IAgents::taskCall { taskId: id })?)));
    answer(r, StatusCode::OK)
}

async fn put_blob(
    State(st): State<Arc<AgentBlobs>>,
    AuthedCaller(caller): AuthedCaller,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let r = async {
        let q = query(&uri)?;
        if body.is_empty() {
            return Err(ApiError::bad_request("empty_blob", "the body is the blob's bytes; it is empty"));
        }
        if body.len() > MAX_AGENT_BLOB {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "blob_too_large",
                format!("{} bytes; an agent blob has at most {MAX_AGENT_BLOB}", body.len()),
            ));
        }
        let kind = match q.get("kind").map(String::as_str).unwrap_or("public") {
            "public" => AgentBlobKind::Public,
            "memory" => {
                let raw = q.get("agent").ok_or_else(|| {
                    ApiError::bad_request("missing_agent", "a memory blob names its agent: ?kind=memory&agent=ID")
                })?;
                let agent = parse_id(raw, "an agent")?;
                let info = read(&st.chain, &IAgents::agentCall { id: agent })?;
                if caller != info.owner && caller != info.operator {
                    return Err(ApiError::forbidden(
                        "not_agent_operator",
                        format!("{caller} is neither the owner nor the operator of agent {agent}"),
                    ));
                }
                AgentBlobKind::Memory { agent }
            }
            other => {
                return Err(ApiError::bad_request("malformed_kind", format!("kind={other:?}: give public or memory")));
            }
        };
        st.charge(caller, body.len() as u64)?;
        let size = body.len();
        let hash = st.store.put(body).await.map_err(|e| ApiError::internal("blob_store_error", e.to_string()))?;
        st.remember(hash, kind).map_err(|e| ApiError::internal("agent_blob_index", e.to_string()))?;
        Ok(json!({"hash": hash, "size": size, "access": kind}))
    }
    .await;
    answer(r, StatusCode::CREATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_queries_are_bounded() {
        assert_eq!(parse_id("42", "an agent").unwrap(), 42);
        for bad in ["", "-1", "0x1", "1e3", "99999999999999999999", "123456789012345678901"] {
            assert_eq!(parse_id(bad, "an agent").unwrap_err().code, "malformed_id", "{bad}");
        }
        let uri: Uri = "/v1/tasks?open=true&limit=100000".parse().unwrap();
        let q = query(&uri).unwrap();
        assert_eq!(page(&q).unwrap(), (0, MAX_PAGE));
        let uri: Uri = "/v1/tasks?offset=x".parse().unwrap();
        assert_eq!(page(&query(&uri).unwrap()).unwrap_err().code, "malformed_query");
    }

    #[test]
    fn a_public_blob_stays_public() {
        let mut m = HashMap::new();
        let h = B256::repeat_byte(1);
        merge(&mut m, h, AgentBlobKind::Memory { agent: 3 });
        merge(&mut m, h, AgentBlobKind::Public);
        merge(&mut m, h, AgentBlobKind::Memory { agent: 4 });
        assert_eq!(m[&h], AgentBlobKind::Public);
        let line = serde_json::to_string(&IndexLine { hash: h, kind: AgentBlobKind::Memory { agent: 3 } }).unwrap();
        assert!(line.contains("\"kind\":\"memory\"") && line.contains("\"agent\":3"), "{line}");
    }
}
