//! `asset holders` and `asset history`: a share token's holders and its
//! pool's price over time, read from the node's history index
//! (`ol_getHistory`), where a contract's own logs are filed under it: the
//! token's `Transfer`s name everyone who held shares, the pool's `Sync`s are
//! its reserves after each trade. Both read at most `--scan` logs, newest
//! first, and say when there were more.

use std::collections::{BTreeMap, BTreeSet};

use alloy_sol_types::{SolEvent, sol};
use anyhow::{Context, anyhow};
use primitives::abi::IShareToken;
use primitives::{Address, B256, U256};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use crate::contract::view;
use crate::output::{Out, open, units};

sol! {
    event Sync(uint112 reserve0, uint112 reserve1);
    function token0() external view returns (address);
}

/// The logs `contract` emitted (data and topics), newest first, with their
/// block numbers; at most `max`, and whether there were more.
pub fn emitted(
    c: &mut RpcClient,
    contract: Address,
    max: usize,
) -> anyhow::Result<(Vec<(u64, primitives::Log)>, bool)> {
    let mut out = Vec::new();
    let mut receipts: BTreeMap<B256, Vec<primitives::Log>> = BTreeMap::new();
    let mut before = Value::Null;
    loop {
        let page = c.call("ol_getHistory", json!([contract, {"before": before, "limit": 100}]))?;
        for e in page["entries"].as_array().ok_or_else(|| anyhow!("ol_getHistory: no entries"))? {
            let emitter = e["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "emitter"));
            let (Some(li), Some(tx)) = (e["logIndex"].as_u64(), e["transactionHash"].as_str()) else { continue };
            if !emitter {
                continue;
            }
            if out.len() == max {
                return Ok((out, true));
            }
            let tx: B256 = tx.parse().context("a transaction hash")?;
            if let std::collections::btree_map::Entry::Vacant(slot) = receipts.entry(tx) {
                slot.insert(logs_of(&c.call("eth_getTransactionReceipt", json!([tx]))?)?);
            }
            let block = e["blockNumber"].as_u64().unwrap_or(0);
            if let Some(l) = receipts[&tx].get(li as usize) {
                out.push((block, l.clone()));
            }
        }
        match page["next"].as_str() {
            Some(n) => before = json!(n),
            None => return Ok((out, false)),
        }
    }
}

/// A JSON receipt's logs, in order.
fn logs_of(r: &Value) -> anyhow::Result<Vec<primitives::Log>> {
    let mut out = Vec::new();
    for l in r["logs"].as_array().ok_or_else(|| anyhow!("a receipt without logs"))? {
        let address: Address = l["address"].as_str().unwrap_or_default().parse().context("a log's address")?;
        let topics: Vec<B256> = l["topics"]
            .as_array()
            .map(|t| t.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        let data = hex::decode(l["data"].as_str().unwrap_or("0x").trim_start_matches("0x")).context("log data")?;
        out.push(primitives::Log::new_unchecked(address, topics, data.into()));
    }
    Ok(out)
}

pub fn holders(
    c: &mut RpcClient,
    model: u64,
    share: Address,
    symbol: &str,
    scan: usize,
    limit: usize,
    out: Out,
) -> anyhow::Result<()> {
    let (transfers, more) = emitted(c, share, scan)?;
    let mut seen = BTreeSet::new();
    for (_, log) in &transfers {
        if let Ok(e) = IShareToken::Transfer::decode_log_data(&log.data) {
            seen.extend([e.from, e.to].into_iter().filter(|a| *a != Address::ZERO));
        }
    }
    let total = view(c, share, &IShareToken::totalSupplyCall {})?;
    let mut rows = Vec::new();
    for a in seen {
        let balance = view(c, share, &IShareToken::balanceOfCall { account: a })?;
        if !balance.is_zero() {
            let earned = view(c, share, &IShareToken::earnedCall { holder: a })?;
            rows.push((a, balance, earned));
        }
    }
    let count = rows.len();
    rows.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    rows.truncate(limit);
    let scope = if more { format!(" among the addresses of the latest {scan} transfers") } else { String::new() };
    let mut lines = vec![format!("model {model}'s shares ({symbol}): {count} holders{scope}")];
    for (a, b, e) in &rows {
        let pct = (*b * U256::from(10_000u64) / total.max(U256::from(1u64))).to::<u64>();
        lines.push(format!("{a}  {}  {}.{:02}%  {} earned", units(*b, symbol), pct / 100, pct % 100, open(*e)));
    }
    let v: Vec<Value> =
        rows.iter().map(|(a, b, e)| json!({"holder": a, "balance": b.to_string(), "earned": e.to_string()})).collect();
    out.print(
        || lines.join("\n"),
        json!({"model": model, "shareToken": share, "holders": count, "complete": !more, "largest": v}),
    );
    Ok(())
}

pub fn history(
    c: &mut RpcClient,
    model: u64,
    share: Address,
    pair: Address,
    symbol: &str,
    scan: usize,
    out: Out,
) -> anyhow::Result<()> {
    let t0 = view(c, pair, &token0Call {})?;
    let (syncs, more) = emitted(c, pair, scan)?;
    let e18 = U256::from(10u64).pow(U256::from(18u64));
    let mut points = Vec::new();
    for (block, log) in syncs.iter().rev() {
        if let Ok(s) = Sync::decode_log_data(&log.data) {
            let (r0, r1) = (U256::from(s.reserve0), U256::from(s.reserve1));
            let (sh, o) = if t0 == share { (r0, r1) } else { (r1, r0) };
            if !sh.is_zero() {
                points.push((*block, o * e18 / sh, sh, o));
            }
        }
    }
    let mut lines = vec![format!(
        "model {model}'s pool {pair}: {} trades{}",
        points.len(),
        if more { format!(" (the latest {scan})") } else { String::new() }
    )];
    for (b, p, sh, o) in &points {
        lines.push(format!("block {b:>8}  {} per share  ({} / {})", open(*p), units(*sh, symbol), open(*o)));
    }
    let v: Vec<Value> = points
        .iter()
        .map(|(b, p, sh, o)| json!({"block": b, "pricePerShare": p.to_string(), "shares": sh.to_string(), "open": o.to_string()}))
        .collect();
    out.print(|| lines.join("\n"), json!({"model": model, "pair": pair, "complete": !more, "points": v}));
    Ok(())
}
