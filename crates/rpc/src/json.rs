//! The JSON shapes of blocks, transactions, receipts and logs, as go-ethereum
//! writes them (see notes/eth-rpc-conventions.md): quantities are minimal hex
//! ("0x0"), data is even-length hex ("0x" when empty), addresses and hashes are
//! lowercase hex.

use alloy_consensus::Transaction;
use alloy_rlp::Encodable;
use primitives::block::{Header, Receipt};
use primitives::{Address, B256, Log, SignedTransaction};
use serde_json::{Map, Value, json};

/// A quantity: minimal hex with the 0x prefix ("0x0", "0x1a").
pub fn qty<T: std::fmt::LowerHex>(n: T) -> Value {
    Value::String(format!("{n:#x}"))
}

/// Data: "0x" followed by two hex digits per byte.
pub fn hex_data(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    s.push_str(&hex::encode(bytes));
    s
}

pub fn data(bytes: &[u8]) -> Value {
    Value::String(hex_data(bytes))
}

pub fn addr(a: &Address) -> Value {
    data(a.as_slice())
}

pub fn h256(h: &B256) -> Value {
    data(h.as_slice())
}

/// Where a committed transaction sits.
#[derive(Debug, Clone, Copy)]
pub struct TxPlace {
    pub block_hash: B256,
    pub block_number: u64,
    pub index: u64,
    pub base_fee: u64,
    pub timestamp: u64,
}

impl TxPlace {
    pub fn new(header: &Header, hash: B256, index: u64) -> Self {
        TxPlace {
            block_hash: hash,
            block_number: header.number,
            index,
            base_fee: header.base_fee_per_gas.unwrap_or(0),
            timestamp: header.timestamp,
        }
    }
}

/// The RLP size of a block (header, transactions, empty ommers list), as `size` reports it.
pub fn block_size(header: &Header, txs: &[SignedTransaction]) -> u64 {
    let list_len = |payload: usize| payload + alloy_rlp::length_of_length(payload);
    let txs_payload: usize = txs.iter().map(|t| t.envelope.length()).sum();
    let payload = header.length() + list_len(txs_payload) + list_len(0);
    list_len(payload) as u64
}

/// A block object: header fields, `transactions` as hashes or full objects, `uncles: []`.
pub fn block(header: &Header, hash: &B256, txs: &[SignedTransaction], full: bool) -> Value {
    let transactions: Vec<Value> = if full {
        txs.iter().enumerate().map(|(i, t)| transaction(t, Some(TxPlace::new(header, *hash, i as u64)))).collect()
    } else {
        txs.iter().map(|t| h256(&t.hash)).collect()
    };
    let mut m = Map::new();
    m.insert("number".into(), qty(header.number));
    m.insert("hash".into(), h256(hash));
    m.insert("parentHash".into(), h256(&header.parent_hash));
    m.insert("nonce".into(), data(header.nonce.as_slice()));
    m.insert("sha3Uncles".into(), h256(&header.ommers_hash));
    m.insert("logsBloom".into(), data(header.logs_bloom.as_slice()));
    m.insert("transactionsRoot".into(), h256(&header.transactions_root));
    m.insert("stateRoot".into(), h256(&header.state_root));
    m.insert("receiptsRoot".into(), h256(&header.receipts_root));
    m.insert("miner".into(), addr(&header.beneficiary));
    m.insert("difficulty".into(), qty(header.difficulty));
    m.insert("totalDifficulty".into(), qty(0u8));
    m.insert("extraData".into(), data(&header.extra_data));
    m.insert("size".into(), qty(block_size(header, txs)));
    m.insert("gasLimit".into(), qty(header.gas_limit));
    m.insert("gasUsed".into(), qty(header.gas_used));
    m.insert("timestamp".into(), qty(header.timestamp));
    if let Some(b) = header.base_fee_per_gas {
        m.insert("baseFeePerGas".into(), qty(b));
    }
    m.insert("mixHash".into(), h256(&header.mix_hash));
    // Optional header fields, so that a client can recompute the block hash.
    if let Some(r) = &header.withdrawals_root {
        m.insert("withdrawalsRoot".into(), h256(r));
    }
    if let Some(g) = header.blob_gas_used {
        m.insert("blobGasUsed".into(), qty(g));
    }
    if let Some(g) = header.excess_blob_gas {
        m.insert("excessBlobGas".into(), qty(g));
    }
    if let Some(r) = &header.parent_beacon_block_root {
        m.insert("parentBeaconBlockRoot".into(), h256(r));
    }
    if let Some(r) = &header.requests_hash {
        m.insert("requestsHash".into(), h256(r));
    }
    m.insert("uncles".into(), json!([]));
    m.insert("transactions".into(), Value::Array(transactions));
    Value::Object(m)
}

/// A transaction object; `place` is `None` for a pooled transaction (block fields null,
/// `gasPrice` = max fee), otherwise `gasPrice` is the effective price in its block.
pub fn transaction(tx: &SignedTransaction, place: Option<TxPlace>) -> Value {
    let env = &tx.envelope;
    let sig = env.signature();
    let ty = tx.tx_type();
    let y = sig.v() as u64;
    let mut m = Map::new();
    match place {
        Some(p) => {
            m.insert("blockHash".into(), h256(&p.block_hash));
            m.insert("blockNumber".into(), qty(p.block_number));
            m.insert("transactionIndex".into(), qty(p.index));
        }
        None => {
            m.insert("blockHash".into(), Value::Null);
            m.insert("blockNumber".into(), Value::Null);
            m.insert("transactionIndex".into(), Value::Null);
        }
    }
    m.insert("hash".into(), h256(&tx.hash));
    m.insert("from".into(), addr(&tx.sender));
    m.insert("to".into(), tx.to().map_or(Value::Null, |a| addr(&a)));
    m.insert("nonce".into(), qty(tx.nonce()));
    m.insert("gas".into(), qty(tx.gas_limit()));
    m.insert("value".into(), qty(tx.value()));
    m.insert("input".into(), data(tx.input()));
    m.insert("type".into(), qty(ty));
    if let Some(c) = tx.chain_id() {
        m.insert("chainId".into(), qty(c));
    }
    let gas_price = match (env.is_dynamic_fee(), place) {
        (true, Some(p)) => tx.effective_gas_price(p.base_fee),
        (true, None) => tx.max_fee_per_gas(),
        (false, _) => env.gas_price().unwrap_or_else(|| tx.max_fee_per_gas()),
    };
    m.insert("gasPrice".into(), qty(gas_price));
    if env.is_dynamic_fee() {
        m.insert("maxFeePerGas".into(), qty(tx.max_fee_per_gas()));
        m.insert("maxPriorityFeePerGas".into(), qty(tx.max_priority_fee_per_gas()));
    }
    if ty != 0 {
        let list: Vec<Value> = env
            .access_list()
            .map(|l| {
                l.iter()
                    .map(|item| {
                        json!({
                            "address": addr(&item.address),
                            "storageKeys": item.storage_keys.iter().map(h256).collect::<Vec<_>>(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        m.insert("accessList".into(), Value::Array(list));
        m.insert("v".into(), qty(y));
        m.insert("yParity".into(), qty(y));
    } else {
        // EIP-155: v = 35 + 2 * chain id + parity; pre-EIP-155: 27 + parity.
        let v = match tx.chain_id() {
            Some(c) => 35u128 + 2 * c as u128 + y as u128,
            None => 27 + y as u128,
        };
        m.insert("v".into(), qty(v));
    }
    m.insert("r".into(), qty(sig.r()));
    m.insert("s".into(), qty(sig.s()));
    Value::Object(m)
}

/// A log object; `log_index` counts the logs of the whole block.
pub fn log(l: &Log, place: &TxPlace, tx_hash: &B256, log_index: u64) -> Value {
    json!({
        "address": addr(&l.address),
        "topics": l.topics().iter().map(h256).collect::<Vec<_>>(),
        "data": data(&l.data.data),
        "blockNumber": qty(place.block_number),
        "blockHash": h256(&place.block_hash),
        "blockTimestamp": qty(place.timestamp),
        "transactionHash": h256(tx_hash),
        "transactionIndex": qty(place.index),
        "logIndex": qty(log_index),
        "removed": false,
    })
}

/// A receipt object. `first_log_index` is the number of logs of the block's earlier
/// transactions. A failed transaction's revert data goes in `revertReason` (Besu's name).
pub fn receipt(tx: &SignedTransaction, r: &Receipt, place: &TxPlace, first_log_index: u64) -> Value {
    let logs: Vec<Value> =
        r.logs.iter().enumerate().map(|(i, l)| log(l, place, &tx.hash, first_log_index + i as u64)).collect();
    let mut m = Map::new();
    m.insert("transactionHash".into(), h256(&tx.hash));
    m.insert("transactionIndex".into(), qty(place.index));
    m.insert("blockHash".into(), h256(&place.block_hash));
    m.insert("blockNumber".into(), qty(place.block_number));
    m.insert("from".into(), addr(&tx.sender));
    m.insert("to".into(), tx.to().map_or(Value::Null, |a| addr(&a)));
    m.insert("cumulativeGasUsed".into(), qty(r.cumulative_gas_used));
    m.insert("gasUsed".into(), qty(r.gas_used));
    m.insert("effectiveGasPrice".into(), qty(r.effective_gas_price));
    m.insert("contractAddress".into(), Value::Null);
    m.insert("logs".into(), Value::Array(logs));
    m.insert("logsBloom".into(), data(r.bloom().as_slice()));
    m.insert("type".into(), qty(r.tx_type));
    m.insert("status".into(), qty(r.success as u8));
    if !r.revert_data.is_empty() {
        m.insert("revertReason".into(), data(&r.revert_data));
    }
    Value::Object(m)
}

/// All receipts of a block, with block-wide log indexes.
pub fn block_receipts(header: &Header, hash: B256, txs: &[SignedTransaction], receipts: &[Receipt]) -> Vec<Value> {
    let mut log_index = 0u64;
    txs.iter()
        .zip(receipts)
        .enumerate()
        .map(|(i, (t, r))| {
            let v = receipt(t, r, &TxPlace::new(header, hash, i as u64), log_index);
            log_index += r.logs.len() as u64;
            v
        })
        .collect()
}
