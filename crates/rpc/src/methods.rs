//! The methods: each turns positional parameters into `Backend` calls and the
//! answer into go-ethereum's JSON.
//!
//! `eth_sendRawTransaction` is awaited on the server's runtime (it resolves once the
//! transaction is durable); methods that may read many blocks or execute code
//! run on tokio's blocking pool; the rest are cheap reads done in place.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use alloy_consensus::Transaction;
use alloy_primitives::BloomInput;
use primitives::history::{MAX_HISTORY_PAGE, ROLE_EMITTER, ROLE_LOG, ROLE_RECIPIENT, ROLE_SENDER};
use primitives::{Address, B256, Bloom, Log};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::error::RpcError;
use crate::json::{self, h256, qty};
use crate::params::{self, BlockSpec, Params};
use crate::types::{self, tx_info};

/// Most blocks one `eth_getLogs` may scan.
pub const MAX_LOG_BLOCK_RANGE: u64 = 10_000;
/// Most logs one `eth_getLogs` may return.
pub const MAX_LOG_RESULTS: usize = 10_000;
/// Most blocks one `eth_feeHistory` may cover.
pub const MAX_FEE_HISTORY_BLOCKS: u64 = 1024;
/// Most gas an `eth_call` / `eth_estimateGas` may use (go-ethereum's default
/// RPC gas cap): a larger `gas` is lowered to it, and an estimate above it fails.
pub const RPC_GAS_CAP: u64 = 50_000_000;
/// How long an executing or scanning call may take (go-ethereum's `RPCEVMTimeout`).
pub const RPC_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The methods that execute code or scan many blocks (run on the blocking
/// pool, under the time cap, and counted against a batch's [`crate::MAX_BATCH_HEAVY`]).
pub const HEAVY_METHODS: [&str; 12] = [
    "eth_getLogs",
    "debug_traceTransaction",
    "ol_getStorageProof",
    "ol_getHistory",
    "eth_call",
    "eth_estimateGas",
    "eth_feeHistory",
    "ol_getProof",
    "eth_getBlockReceipts",
    "evm_mine",
    "anvil_mine",
    "hardhat_mine",
];
/// Most blocks one `anvil_mine`/`hardhat_mine` seals.
pub const MAX_MINE_BLOCKS: u64 = 256;
/// Most topic positions of a log filter (LOG4).
const MAX_TOPICS: usize = 4;

/// Run one method.
pub(crate) async fn dispatch(backend: Arc<dyn Backend>, method: String, params: Params) -> Result<Value, RpcError> {
    match method.as_str() {
        "eth_sendRawTransaction" => {
            params.at_most(1)?;
            let raw = params.parse(0, "raw transaction", params::data)?;
            if raw.is_empty() {
                return Err(RpcError::invalid_params("invalid argument 0: empty transaction"));
            }
            let hash = backend.submit(raw).await?;
            Ok(h256(&hash))
        }
        m if HEAVY_METHODS.contains(&m) => {
            let timeout = backend.call_timeout();
            let work = tokio::task::spawn_blocking(move || dispatch_sync(&*backend, &method, &params));
            match tokio::time::timeout(timeout, work).await {
                Ok(r) => r.unwrap_or_else(|_| Err(RpcError::internal("internal error"))),
                Err(_) => Err(RpcError::server(format!("execution aborted (timeout = {}s)", timeout.as_secs_f32()))),
            }
        }
        _ => std::panic::catch_unwind(AssertUnwindSafe(|| dispatch_sync(&*backend, &method, &params)))
            .unwrap_or_else(|_| Err(RpcError::internal("internal error"))),
    }
}

fn dispatch_sync(b: &dyn Backend, method: &str, p: &Params) -> Result<Value, RpcError> {
    match method {
        "web3_clientVersion" => Ok(Value::String(b.client_version())),
        "web3_sha3" => {
            let d = p.parse(0, "data", params::data)?;
            Ok(h256(&primitives::keccak256(&d)))
        }
        "net_version" => Ok(Value::String(b.chain_id().to_string())),
        "net_listening" => Ok(Value::Bool(true)),
        "net_peerCount" => Ok(qty(0u8)),
        "eth_chainId" => Ok(qty(b.chain_id())),
        "eth_syncing" | "eth_mining" => Ok(Value::Bool(false)),
        "eth_hashrate" => Ok(qty(0u8)),
        "eth_accounts" => Ok(json!([])),
        "eth_blockNumber" => Ok(qty(b.head_number())),
        "eth_gasPrice" => Ok(qty(b.next_base_fee() as u128 + b.suggested_tip())),
        "eth_maxPriorityFeePerGas" => Ok(qty(b.suggested_tip())),
        "eth_getBalance" => get_balance(b, p),
        "eth_getTransactionCount" => get_transaction_count(b, p),
        "eth_getCode" => get_code(b, p),
        "eth_getStorageAt" => get_storage_at(b, p),
        "eth_call" => call(b, p),
        "eth_estimateGas" => estimate_gas(b, p),
        "eth_feeHistory" => fee_history(b, p),
        "eth_getTransactionByHash" => {
            p.at_most(1)?;
            let h = p.parse(0, "transaction hash", params::hash)?;
            Ok(transaction_by_hash(b, &h))
        }
        "eth_getTransactionReceipt" => {
            p.at_most(1)?;
            let h = p.parse(0, "transaction hash", params::hash)?;
            Ok(receipt_by_hash(b, &h))
        }
        "eth_getBlockByNumber" | "eth_getBlockByHash" => {
            p.at_most(2)?;
            let n = block_arg(b, p, method == "eth_getBlockByHash")?;
            let full = p.parse_opt(1, params::boolean)?.unwrap_or(false);
            Ok(n.and_then(|n| block(b, n, full)).unwrap_or(Value::Null))
        }
        "eth_getBlockTransactionCountByNumber" | "eth_getBlockTransactionCountByHash" => {
            p.at_most(1)?;
            let n = block_arg(b, p, method.ends_with("ByHash"))?;
            Ok(n.and_then(|n| b.block_transactions(n)).map_or(Value::Null, |t| qty(t.len())))
        }
        "eth_getUncleCountByBlockNumber" | "eth_getUncleCountByBlockHash" => {
            p.at_most(1)?;
            let n = block_arg(b, p, method.ends_with("ByHash"))?;
            Ok(n.filter(|n| b.header(*n).is_some()).map_or(Value::Null, |_| qty(0u8)))
        }
        "eth_getTransactionByBlockNumberAndIndex" | "eth_getTransactionByBlockHashAndIndex" => {
            transaction_by_block_and_index(b, p, method.contains("ByBlockHash"))
        }
        "eth_getBlockReceipts" => get_block_receipts(b, p),
        "eth_getLogs" => {
            p.at_most(1)?;
            let q = p.parse(0, "filter", LogQuery::parse)?;
            get_logs(b, &q).map(|logs| to_json(&logs))
        }
        "evm_mine" | "anvil_mine" | "hardhat_mine" => mine(b, p, method),
        "ol_getProof" => ol_get_proof(b, p),
        "ol_getStorageProof" => ol_get_storage_proof(b, p),
        "debug_traceTransaction" => trace_transaction(b, p),
        "ol_supply" => ol_supply(b, p),
        "ol_getCommit" => ol_get_commit(b, p),
        "ol_getHistory" => ol_get_history(b, p),
        "ol_status" => Ok(ol_status(b)),
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn get_balance(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let a = p.parse(0, "address", params::address)?;
    let n = state_block(b, p, 1)?;
    Ok(qty(b.account(&a, n)?.1))
}

/// The nonce at a committed block, or counting the pool's transactions at "pending".
fn get_transaction_count(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let a = p.parse(0, "address", params::address)?;
    if p.parse_opt(1, params::block_spec)? == Some(BlockSpec::Pending) {
        return Ok(qty(b.pending_nonce(&a)));
    }
    let n = state_block(b, p, 1)?;
    Ok(qty(b.account(&a, n)?.0))
}

/// The dev chain's mining methods, as Hardhat and Anvil answer them:
/// `evm_mine` seals one block (`"0x0"`); `anvil_mine`/`hardhat_mine [n]` seal
/// `n` (default 1, at most [`MAX_MINE_BLOCKS`]; `null`). Block times follow the
/// clock: a timestamp or an interval between blocks is refused.
fn mine(b: &dyn Backend, p: &Params, method: &str) -> Result<Value, RpcError> {
    p.at_most(if method == "evm_mine" { 1 } else { 2 })?;
    let n = if method == "evm_mine" {
        if p.opt(0).is_some() {
            return Err(params::arg_error(0, "setting a block's timestamp is not supported".into()));
        }
        1
    } else {
        if p.parse_opt(1, params::quantity_u64)?.is_some_and(|i| i != 0) {
            return Err(params::arg_error(1, "an interval between mined blocks is not supported".into()));
        }
        p.parse_opt(0, params::quantity_u64)?.unwrap_or(1)
    };
    if n == 0 || n > MAX_MINE_BLOCKS {
        return Err(params::arg_error(0, format!("mine 1 to {MAX_MINE_BLOCKS} blocks per call")));
    }
    b.mine(n).map_err(RpcError::server)?;
    Ok(if method == "evm_mine" { Value::String("0x0".into()) } else { Value::Null })
}

fn get_code(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let a = p.parse(0, "address", params::address)?;
    let n = state_block(b, p, 1)?;
    Ok(json::data(&b.code(&a, n)?))
}

fn get_storage_at(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(3)?;
    let a = p.parse(0, "address", params::address)?;
    let slot = p.parse(1, "storage slot", params::quantity_u256)?;
    let n = state_block(b, p, 2)?;
    Ok(h256(&B256::from(b.storage(&a, &slot, n)?)))
}

/// Parameter 0 as a call object, its gas capped at [`RPC_GAS_CAP`].
fn capped_call_request(p: &Params) -> Result<crate::backend::CallRequest, RpcError> {
    let mut req = p.parse(0, "call object", params::call_request)?;
    req.gas = Some(req.gas.unwrap_or(RPC_GAS_CAP).min(RPC_GAS_CAP));
    Ok(req)
}

fn call(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(3)?;
    let mut req = capped_call_request(p)?;
    let n = state_block(b, p, 1)?;
    req.overrides = p.parse_opt(2, params::state_overrides)?.unwrap_or_default();
    Ok(json::data(&b.call(&req, n)?))
}

fn estimate_gas(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(3)?;
    let mut req = capped_call_request(p)?;
    // The estimate runs against the pending state; a block, if given, must parse.
    p.parse_opt(1, params::block_spec)?;
    req.overrides = p.parse_opt(2, params::state_overrides)?.unwrap_or_default();
    Ok(qty(b.estimate_gas(&req)?.saturating_add(req.access_list_gas)))
}

fn transaction_by_block_and_index(b: &dyn Backend, p: &Params, by_hash: bool) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let n = block_arg(b, p, by_hash)?;
    let i = p.parse(1, "index", params::quantity_u64)?;
    let Some(n) = n else { return Ok(Value::Null) };
    let (Some((header, hash)), Some(txs)) = (b.header(n), b.block_transactions(n)) else {
        return Ok(Value::Null);
    };
    Ok(txs
        .get(i as usize)
        .map_or(Value::Null, |t| to_json(&types::transaction(t, Some(tx_info(&header, hash, t.hash, i))))))
}

fn get_block_receipts(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(1)?;
    let spec = p.parse(0, "block", params::block_spec)?;
    let Some(n) = spec.resolve(b) else {
        return Ok(Value::Null);
    };
    let (Some((header, hash)), Some(txs), Some(receipts)) = (b.header(n), b.block_transactions(n), b.block_receipts(n))
    else {
        return Ok(Value::Null);
    };
    Ok(to_json(&types::block_receipts(&header, hash, &txs, &receipts)))
}

fn ol_get_proof(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let key = p.parse(0, "key", params::data)?;
    let n = state_block(b, p, 1)?;
    Ok(proof_json(b.proof(&key, n)?))
}

/// `ol_getStorageProof(address, slot, block?)`: a contract's storage slot
/// with its proof against the state root (the JMT's, not Ethereum's
/// Patricia trie, so `eth_getProof` is not offered).
fn ol_get_storage_proof(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(3)?;
    let a = p.parse(0, "address", params::address)?;
    let slot = p.parse(1, "storage slot", params::quantity_u256)?;
    let n = state_block(b, p, 2)?;
    Ok(proof_json(b.storage_proof(&a, &slot, n)?))
}

/// `debug_traceTransaction(hash, {tracer: "callTracer", tracerConfig: {onlyTopCall}})`.
fn trace_transaction(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let hash = p.parse(0, "transaction hash", params::hash)?;
    let only_top = p.parse_opt(1, params::call_tracer_options)?.unwrap_or(false);
    let frame = b.trace_transaction(&hash)?.ok_or_else(|| RpcError::server("transaction not found"))?;
    Ok(call_frame_json(&frame, only_top))
}

fn call_frame_json(f: &primitives::trace::CallFrame, only_top: bool) -> Value {
    let mut o = json!({
        "type": f.kind,
        "from": f.from,
        "gas": qty(f.gas),
        "gasUsed": qty(f.gas_used),
        "input": json::data(&f.input),
    });
    if let Some(to) = f.to {
        o["to"] = json!(to);
    }
    if let Some(v) = f.value {
        o["value"] = qty(v);
    }
    if !f.output.is_empty() {
        o["output"] = json::data(&f.output);
    }
    if let Some(e) = &f.error {
        o["error"] = json!(e);
        if let Ok(r) = <alloy_sol_types::Revert as alloy_sol_types::SolError>::abi_decode(&f.output) {
            o["revertReason"] = json!(r.reason);
        }
    }
    if !only_top && !f.calls.is_empty() {
        o["calls"] = Value::Array(f.calls.iter().map(|c| call_frame_json(c, false)).collect());
    }
    o
}

fn proof_json(r: crate::backend::ProofResult) -> Value {
    json!({
        "blockNumber": r.block_number,
        "stateRoot": h256(&r.state_root),
        "key": json::data(&r.key),
        "value": r.value.as_ref().map(|v| json::data(v)),
        "proof": json::data(&r.proof),
    })
}

/// A block's commit certificate: the precommit signatures of more than two
/// thirds of its height's voting power over
/// `primitives::consensus::vote_sign_bytes(chainId, height, round, precommit,
/// blockHash)`. A light client checks it against `validatorSetAt(height - 1)`
/// of `staking`. `null` for a block no consensus decided (a dev chain's).
fn ol_get_commit(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(1)?;
    let Some(n) = block_arg(b, p, false)? else {
        return Ok(Value::Null);
    };
    Ok(match b.commit_certificate(n) {
        None => Value::Null,
        Some(c) => json!({
            "height": c.height,
            "round": c.round,
            "blockHash": h256(&c.block_hash),
            "signatures": c.signatures.iter().map(|s| json!({
                "validator": s.validator,
                "signature": json::data(&s.signature),
            })).collect::<Vec<_>>(),
            "encoded": json::data(&c.encode()),
        }),
    })
}

/// `ol_getHistory(subject, {before, limit})`: a page of the transactions and
/// logs of an address (or a `{"datanet"|"model"|"contribution": id}`), newest
/// first, at most [`primitives::history::MAX_HISTORY_PAGE`] (the default).
fn ol_get_history(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let subject = p.parse(0, "history subject", params::history_subject)?;
    let (before, limit) = p.parse_opt(1, params::history_options)?.unwrap_or((None, MAX_HISTORY_PAGE));
    let page = b.history(&subject, before, limit.clamp(1, MAX_HISTORY_PAGE))?;
    // Each block's transactions are decoded once per page.
    let mut blocks: std::collections::HashMap<u64, Vec<B256>> = Default::default();
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|e| {
            let hashes = blocks
                .entry(e.block)
                .or_insert_with(|| b.block_transactions(e.block).unwrap_or_default().iter().map(|t| t.hash).collect());
            let roles: Vec<&str> =
                [(ROLE_SENDER, "sender"), (ROLE_RECIPIENT, "recipient"), (ROLE_LOG, "log"), (ROLE_EMITTER, "emitter")]
                    .into_iter()
                    .filter(|(r, _)| e.roles & r != 0)
                    .map(|(_, name)| name)
                    .collect();
            json!({
                "blockNumber": e.block,
                "transactionIndex": e.tx_index,
                "transactionHash": hashes.get(e.tx_index as usize).map_or(Value::Null, h256),
                "logIndex": e.log_index,
                "roles": roles,
                "cursor": e.cursor().to_string(),
            })
        })
        .collect();
    Ok(json!({
        "entries": entries,
        "next": page.next.map(|c| c.to_string()),
        "indexedFrom": page.indexed_from,
        "indexedTo": page.indexed_to,
    }))
}

fn ol_supply(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(1)?;
    let n = state_block(b, p, 0)?;
    let v = b.supply(n)?;
    Ok(json!({
        "blockNumber": v.block_number,
        "total": v.total.to_string(),
        "genesis": v.genesis.to_string(),
        "issued": v.issued.to_string(),
        "burned": v.burned.to_string(),
        "treasury": v.treasury.to_string(),
        "rewardPool": v.reward_pool.to_string(),
        "heldByModules": v.held_by_modules.to_string(),
    }))
}

fn ol_status(b: &dyn Backend) -> Value {
    let s = b.status();
    json!({
        "chainId": s.chain_id,
        "head": s.head,
        "headHash": h256(&s.head_hash),
        "pendingTxs": s.pending_txs,
        "queuedTxs": s.queued_txs,
        "blockTimeMs": s.block_time_ms,
        "history": s.history,
        "version": s.version,
    })
}

/// The committed block whose state a read at parameter `i` uses (absent: latest).
fn state_block(b: &dyn Backend, p: &Params, i: usize) -> Result<u64, RpcError> {
    p.parse_opt(i, params::block_spec)?.unwrap_or(BlockSpec::Latest).resolve_state(b)
}

/// Parameter 0 as a block hash (`by_hash`) or a block number/tag; `None` if no such block.
fn block_arg(b: &dyn Backend, p: &Params, by_hash: bool) -> Result<Option<u64>, RpcError> {
    if by_hash {
        let h = p.parse(0, "block hash", params::hash)?;
        Ok(b.block_number_by_hash(&h))
    } else {
        let spec = p.parse(0, "block", |v| match params::block_spec(v)? {
            BlockSpec::Hash(_) => Err("want a block number or tag, not a hash".to_string()),
            spec => Ok(spec),
        })?;
        Ok(spec.resolve(b))
    }
}

fn block(b: &dyn Backend, n: u64, full: bool) -> Option<Value> {
    let (header, hash) = b.header(n)?;
    let txs = b.block_transactions(n).unwrap_or_default();
    Some(to_json(&types::block(&header, hash, &txs, full)))
}

fn transaction_by_hash(b: &dyn Backend, h: &B256) -> Value {
    if let Some((n, i)) = b.tx_location(h)
        && let (Some((header, hash)), Some(txs)) = (b.header(n), b.block_transactions(n))
        && let Some(tx) = txs.get(i as usize)
    {
        return to_json(&types::transaction(tx, Some(tx_info(&header, hash, tx.hash, i as u64))));
    }
    match b.pool_transaction(h) {
        Some(tx) => to_json(&types::transaction(&tx, None)),
        None => Value::Null,
    }
}

fn receipt_by_hash(b: &dyn Backend, h: &B256) -> Value {
    let Some((n, i)) = b.tx_location(h) else {
        return Value::Null;
    };
    let (Some((header, hash)), Some((tx, r, first_log_index))) = (b.header(n), b.receipt_parts(n, i as usize)) else {
        return Value::Null;
    };
    to_json(&types::receipt(&tx, &r, &tx_info(&header, hash, tx.hash, u64::from(i)), first_log_index))
}

/// An answer of alloy's RPC types as JSON (their serde is the wire format).
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("RPC types serialise")
}

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles?)`.
fn fee_history(b: &dyn Backend, p: &Params) -> Result<Value, RpcError> {
    p.at_most(3)?;
    let count = p.parse(0, "block count", params::quantity_u64)?.min(MAX_FEE_HISTORY_BLOCKS);
    let newest_spec = p.parse(1, "newest block", params::block_spec)?;
    let percentiles: Vec<f64> = p
        .parse_opt(2, |v| {
            let arr = v.as_array().ok_or_else(|| format!("reward percentiles must be an array, got {v}"))?;
            let mut out: Vec<f64> = Vec::with_capacity(arr.len());
            for x in arr {
                let f = x.as_f64().ok_or_else(|| format!("invalid reward percentile {x}"))?;
                if !(0.0..=100.0).contains(&f) {
                    return Err(format!("invalid reward percentile: {f}"));
                }
                if out.last().is_some_and(|last| f < *last) {
                    return Err(format!(
                        "invalid reward percentile: #{} = {f} < #{} = {}",
                        out.len(),
                        out.len() - 1,
                        out[out.len() - 1]
                    ));
                }
                out.push(f);
            }
            Ok(out)
        })?
        .unwrap_or_default();
    let head = b.head_number();
    let newest = match newest_spec {
        BlockSpec::Number(n) if n > head => {
            return Err(RpcError::server(format!("request beyond head block: requested {n}, head {head}")));
        }
        spec => spec.resolve_state(b)?,
    };
    if count == 0 {
        return Ok(to_json(&types::FeeHistory::default()));
    }
    let count = count.min(newest + 1);
    let oldest = newest + 1 - count;
    let mut base_fees = Vec::with_capacity(count as usize + 1);
    let mut ratios = Vec::with_capacity(count as usize);
    let mut rewards = Vec::with_capacity(if percentiles.is_empty() { 0 } else { count as usize });
    for n in oldest..=newest {
        let (header, _) = b.header(n).ok_or_else(RpcError::header_not_found)?;
        let base_fee = header.base_fee_per_gas.unwrap_or(0);
        base_fees.push(u128::from(base_fee));
        let ratio = if header.gas_limit == 0 { 0.0 } else { header.gas_used as f64 / header.gas_limit as f64 };
        ratios.push(ratio);
        if !percentiles.is_empty() {
            let txs = b.block_transactions(n).unwrap_or_default();
            let receipts = b.block_receipts(n).unwrap_or_default();
            rewards.push(block_rewards(&txs, &receipts, base_fee, &percentiles, b.suggested_tip()));
        }
    }
    let next_base_fee = if newest >= head {
        b.next_base_fee()
    } else {
        b.header(newest + 1).and_then(|(h, _)| h.base_fee_per_gas).unwrap_or(0)
    };
    base_fees.push(u128::from(next_base_fee));
    Ok(to_json(&types::FeeHistory {
        oldest_block: oldest,
        base_fee_per_gas: base_fees,
        gas_used_ratio: ratios,
        reward: (!percentiles.is_empty()).then_some(rewards),
        ..Default::default()
    }))
}

/// The tip paid at each percentile of a block's gas, like go-ethereum: transactions
/// sorted by effective tip, each weighted by the gas it used. An empty block gives
/// `empty_tip` at every percentile.
pub(crate) fn block_rewards(
    txs: &[primitives::SignedTransaction],
    receipts: &[primitives::Receipt],
    base_fee: u64,
    percentiles: &[f64],
    empty_tip: u128,
) -> Vec<u128> {
    let mut sorted: Vec<(u128, u64)> = txs
        .iter()
        .zip(receipts)
        .map(|(t, r)| (t.envelope.effective_tip_per_gas(base_fee).unwrap_or(0), r.gas_used))
        .collect();
    if sorted.is_empty() {
        return vec![empty_tip; percentiles.len()];
    }
    sorted.sort_by_key(|(tip, _)| *tip);
    let total: u64 = sorted.iter().map(|(_, g)| *g).sum();
    let mut idx = 0;
    let mut sum = sorted[0].1;
    percentiles
        .iter()
        .map(|pct| {
            let threshold = (total as f64 * pct / 100.0) as u64;
            while sum < threshold && idx < sorted.len() - 1 {
                idx += 1;
                sum += sorted[idx].1;
            }
            sorted[idx].0
        })
        .collect()
}

/// An `eth_getLogs` filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogQuery {
    pub range: LogRange,
    pub filter: LogFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogRange {
    Hash(B256),
    /// fromBlock, toBlock (absent: latest).
    Range(Option<BlockSpec>, Option<BlockSpec>),
}

impl Default for LogRange {
    fn default() -> Self {
        LogRange::Range(None, None)
    }
}

/// Which logs match: any of `addresses` (none: all), and at each topic position,
/// any of the topics given there (`None`: wildcard).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogFilter {
    pub addresses: Vec<Address>,
    pub topics: Vec<Option<Vec<B256>>>,
}

impl LogQuery {
    fn parse(v: &Value) -> Result<Self, String> {
        let o = v.as_object().ok_or_else(|| format!("filter must be a JSON object, got {v}"))?;
        let field = |name: &str| o.get(name).filter(|v| !v.is_null());
        let from = field("fromBlock").map(params::block_spec).transpose().map_err(|e| format!("fromBlock: {e}"))?;
        let to = field("toBlock").map(params::block_spec).transpose().map_err(|e| format!("toBlock: {e}"))?;
        let range = match field("blockHash") {
            Some(h) => {
                if from.is_some() || to.is_some() {
                    return Err(
                        "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other".to_string()
                    );
                }
                LogRange::Hash(params::hash(h).map_err(|e| format!("blockHash: {e}"))?)
            }
            None => {
                if matches!(from, Some(BlockSpec::Hash(_))) || matches!(to, Some(BlockSpec::Hash(_))) {
                    return Err("fromBlock and toBlock must be block numbers or tags; use blockHash".to_string());
                }
                LogRange::Range(from, to)
            }
        };
        let addresses = match field("address") {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a.iter().map(params::address).collect::<Result<_, _>>(),
            Some(a) => params::address(a).map(|a| vec![a]),
        }
        .map_err(|e| format!("address: {e}"))?;
        let topics = match field("topics") {
            None => vec![],
            Some(Value::Array(positions)) => {
                if positions.len() > MAX_TOPICS {
                    return Err(format!("exceed max topics: {} positions, at most {MAX_TOPICS}", positions.len()));
                }
                positions
                    .iter()
                    .map(|pos| match pos {
                        Value::Null => Ok(None),
                        Value::Array(alts) => {
                            // A null among the alternatives matches anything, as in go-ethereum.
                            if alts.iter().any(Value::is_null) {
                                return Ok(None);
                            }
                            alts.iter().map(params::hash).collect::<Result<Vec<_>, _>>().map(Some)
                        }
                        t => params::hash(t).map(|t| Some(vec![t])),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("topics: {e}"))?
            }
            Some(t) => return Err(format!("topics must be an array, got {t}")),
        };
        Ok(LogQuery { range, filter: LogFilter { addresses, topics } })
    }
}

impl LogFilter {
    /// Whether a block with this logs bloom may hold a matching log.
    pub fn bloom_may_match(&self, bloom: &Bloom) -> bool {
        if *bloom == Bloom::ZERO {
            return false;
        }
        if !self.addresses.is_empty()
            && !self.addresses.iter().any(|a| bloom.contains_input(BloomInput::Raw(a.as_slice())))
        {
            return false;
        }
        self.topics
            .iter()
            .flatten()
            .all(|alts| alts.is_empty() || alts.iter().any(|t| bloom.contains_input(BloomInput::Raw(t.as_slice()))))
    }

    /// Whether a log matches. Like go-ethereum, a log with fewer topics than the
    /// filter has positions never matches, even if the extra positions are wildcards.
    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        let topics = log.topics();
        if self.topics.len() > topics.len() {
            return false;
        }
        self.topics.iter().zip(topics).all(|(want, got)| match want {
            None => true,
            Some(alts) => alts.is_empty() || alts.contains(got),
        })
    }
}

fn get_logs(b: &dyn Backend, q: &LogQuery) -> Result<Vec<types::Log>, RpcError> {
    let (from, to) = match q.range {
        LogRange::Hash(h) => {
            let n = b.block_number_by_hash(&h).ok_or_else(|| RpcError::server("unknown block"))?;
            (n, n)
        }
        LogRange::Range(from, to) => {
            let head = b.head_number();
            let resolve = |s: Option<BlockSpec>| match s.unwrap_or(BlockSpec::Latest) {
                BlockSpec::Latest | BlockSpec::Pending => head,
                BlockSpec::Earliest => 0,
                BlockSpec::Number(n) => n,
                BlockSpec::Hash(_) => unreachable!("refused when parsing"),
            };
            let (from, to) = (resolve(from), resolve(to));
            if from > to {
                return Err(RpcError::invalid_params("invalid block range params: fromBlock is after toBlock"));
            }
            if to - from >= MAX_LOG_BLOCK_RANGE {
                return Err(RpcError::limit(format!("query exceeds max block range {MAX_LOG_BLOCK_RANGE}")));
            }
            if from > head {
                return Ok(vec![]);
            }
            (from, to.min(head))
        }
    };
    let mut out = Vec::new();
    for n in from..=to {
        let Some((header, hash)) = b.header(n) else {
            continue;
        };
        if !q.filter.bloom_may_match(&header.logs_bloom) {
            continue;
        }
        let Some(receipts) = b.block_receipts(n) else {
            continue;
        };
        let mut txs = None;
        let mut log_index = 0u64;
        for (i, r) in receipts.iter().enumerate() {
            for l in &r.logs {
                if q.filter.matches(l) {
                    let txs = txs.get_or_insert_with(|| b.block_transactions(n).unwrap_or_default());
                    let tx_hash = txs.get(i).map_or(B256::ZERO, |t| t.hash);
                    out.push(types::log(l, &tx_info(&header, hash, tx_hash, i as u64), log_index));
                    if out.len() > MAX_LOG_RESULTS {
                        return Err(RpcError::limit(format!("query returned more than {MAX_LOG_RESULTS} results")));
                    }
                }
                log_index += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn parse_log_query(v: &Value) -> Result<LogQuery, RpcError> {
    LogQuery::parse(v).map_err(|e| crate::params::arg_error(0, e))
}
