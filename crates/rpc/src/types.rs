//! The `eth_` answers as alloy's RPC types (`alloy-rpc-types-eth`): blocks,
//! transactions, receipts, logs and fee history. The server builds them from the chain's
//! headers, transactions and receipts and serialises them (go-ethereum's shapes,
//! see notes/eth-rpc-conventions.md); [`crate::client::RpcClient`] reads the same
//! types back, so both ends agree on one definition of the wire format.
//!
//! One field goes beyond the standard: the receipt of a failed transaction carries
//! its revert data as `revertReason` (Besu's name), kept in [`Receipt`]'s `other`
//! fields and read with [`revert_reason`].

use alloy_consensus::transaction::{Recovered, TransactionInfo};
use alloy_consensus::{Eip658Value, ReceiptWithBloom, Sealed};
use alloy_rlp::Encodable;
use primitives::block::Header;
use primitives::{B256, Bytes, SignedTransaction, U256};

pub use alloy_rpc_types_eth::{
    Block, BlockNumberOrTag, BlockTransactions, FeeHistory, Filter, Log, Transaction, TransactionReceipt,
};
pub use alloy_serde::WithOtherFields;

/// A receipt as this node serves it: alloy's, plus `revertReason` when the
/// transaction failed with revert data.
pub type Receipt = WithOtherFields<TransactionReceipt>;

/// The receipt field that carries a failed transaction's revert data (Besu's name).
pub const REVERT_REASON: &str = "revertReason";

/// The revert data of a failed transaction's receipt (`None` on success, or when
/// the transaction failed without data).
pub fn revert_reason(r: &Receipt) -> Option<Bytes> {
    r.other.get_deserialized::<Bytes>(REVERT_REASON).and_then(Result::ok)
}

/// Where a committed transaction sits: block hash, number and timestamp, its
/// index, and the block's base fee (which prices a dynamic-fee transaction).
pub(crate) fn tx_info(header: &Header, block_hash: B256, tx_hash: B256, index: u64) -> TransactionInfo {
    TransactionInfo {
        hash: Some(tx_hash),
        index: Some(index),
        block_hash: Some(block_hash),
        block_number: Some(header.number),
        base_fee: Some(header.base_fee_per_gas.unwrap_or(0)),
        block_timestamp: Some(header.timestamp),
    }
}

/// The RLP size of a block (header, transactions, empty ommers list), as `size` reports it.
pub(crate) fn block_size(header: &Header, txs: &[SignedTransaction]) -> u64 {
    let list_len = |payload: usize| payload + alloy_rlp::length_of_length(payload);
    let txs_payload: usize = txs.iter().map(|t| t.envelope.length()).sum();
    let payload = header.length() + list_len(txs_payload) + list_len(0);
    list_len(payload) as u64
}

/// A block: its header (with `size`, and `totalDifficulty` 0 as after the merge),
/// `transactions` as hashes or full objects, no uncles and no withdrawals.
pub(crate) fn block(header: &Header, hash: B256, txs: &[SignedTransaction], full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full(
            txs.iter()
                .enumerate()
                .map(|(i, t)| transaction(t, Some(tx_info(header, hash, t.hash, i as u64))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(txs.iter().map(|t| t.hash).collect())
    };
    let sealed = Sealed::new_unchecked(header.clone(), hash);
    let size = U256::from(block_size(header, txs));
    let header = alloy_rpc_types_eth::Header::from_consensus(sealed, Some(U256::ZERO), Some(size));
    Block { header, uncles: vec![], transactions, withdrawals: None }
}

/// A transaction; `info` is `None` for a pooled transaction (block fields null,
/// `gasPrice` = its max fee), otherwise `gasPrice` is the effective price in its block.
pub(crate) fn transaction(tx: &SignedTransaction, info: Option<TransactionInfo>) -> Transaction {
    let info = info.unwrap_or_default();
    let effective_gas_price = match info.base_fee {
        Some(base_fee) => tx.effective_gas_price(base_fee),
        None => tx.max_fee_per_gas(),
    };
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
        block_hash: info.block_hash,
        block_number: info.block_number,
        transaction_index: info.index,
        effective_gas_price: Some(effective_gas_price),
        block_timestamp: info.block_timestamp,
    }
}

/// A log of the transaction at `info`; `log_index` counts the logs of the whole block.
pub(crate) fn log(l: &primitives::Log, info: &TransactionInfo, log_index: u64) -> Log {
    Log {
        inner: l.clone(),
        block_hash: info.block_hash,
        block_number: info.block_number,
        block_timestamp: info.block_timestamp,
        transaction_hash: info.hash,
        transaction_index: info.index,
        log_index: Some(log_index),
        removed: false,
    }
}

/// The receipt of the transaction at `info`. `first_log_index` is the number of
/// logs of the block's earlier transactions.
pub(crate) fn receipt(
    tx: &SignedTransaction,
    r: &primitives::Receipt,
    info: &TransactionInfo,
    first_log_index: u64,
) -> Receipt {
    let logs = r.logs.iter().enumerate().map(|(i, l)| log(l, info, first_log_index + i as u64)).collect();
    let consensus = alloy_consensus::Receipt {
        status: Eip658Value::Eip658(r.success),
        cumulative_gas_used: r.cumulative_gas_used,
        logs,
    };
    let inner = TransactionReceipt {
        inner: alloy_consensus::ReceiptEnvelope::from_typed(
            tx.envelope.tx_type(),
            ReceiptWithBloom::new(consensus, r.bloom()),
        ),
        transaction_hash: tx.hash,
        transaction_index: info.index,
        block_hash: info.block_hash,
        block_number: info.block_number,
        gas_used: r.gas_used,
        effective_gas_price: r.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to: tx.to(),
        // As go-ethereum: the address a creation's code went (or would have gone) to.
        contract_address: tx.to().is_none().then(|| tx.sender.create(tx.nonce())),
    };
    let mut receipt = WithOtherFields::new(inner);
    if !r.revert_data.is_empty() {
        receipt.other.insert(REVERT_REASON.to_string(), serde_json::Value::String(r.revert_data.to_string()));
    }
    receipt
}

/// All receipts of a block, with block-wide log indexes.
pub(crate) fn block_receipts(
    header: &Header,
    hash: B256,
    txs: &[SignedTransaction],
    receipts: &[primitives::Receipt],
) -> Vec<Receipt> {
    let mut log_index = 0u64;
    txs.iter()
        .zip(receipts)
        .enumerate()
        .map(|(i, (t, r))| {
            let v = receipt(t, r, &tx_info(header, hash, t.hash, i as u64), log_index);
            log_index += r.logs.len() as u64;
            v
        })
        .collect()
}
