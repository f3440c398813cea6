//! Blocks, receipts and logs. Headers use Ethereum's header layout (alloy's
//! `Header`), so a block hash is keccak256 of its RLP as every tool expects; the
//! state root is the root of the authenticated state tree after the block.

use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log};
use alloy_rlp::{RlpDecodable, RlpEncodable};

pub use alloy_consensus::Header;

use crate::tx::SignedTransaction;

/// A transaction as a block body stores it: the signed bytes and the sender
/// recovered when it entered the pool, so reading a block never re-verifies.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct StoredTx {
    pub raw: Bytes,
    pub sender: Address,
}

/// A sealed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub hash: B256,
    pub transactions: Vec<SignedTransaction>,
}

/// The outcome of one transaction, with its logs.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Receipt {
    pub tx_type: u8,
    pub success: bool,
    pub cumulative_gas_used: u64,
    pub gas_used: u64,
    pub effective_gas_price: u128,
    pub logs: Vec<Log>,
    /// ABI-encoded Solidity custom error of a failed call (empty on success).
    pub revert_data: Bytes,
}

impl Receipt {
    pub fn bloom(&self) -> Bloom {
        logs_bloom(self.logs.iter())
    }

    /// The receipt as Ethereum encodes it (for the receipts root).
    pub fn to_envelope(&self) -> ReceiptEnvelope {
        let r = alloy_consensus::Receipt {
            status: Eip658Value::Eip658(self.success),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.clone(),
        };
        let rb = ReceiptWithBloom { logs_bloom: self.bloom(), receipt: r };
        match TxType::try_from(self.tx_type).unwrap_or(TxType::Legacy) {
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(rb),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(rb),
            _ => ReceiptEnvelope::Legacy(rb),
        }
    }
}

/// Bloom filter of a set of logs.
pub fn logs_bloom<'a>(logs: impl Iterator<Item = &'a Log>) -> Bloom {
    let mut b = Bloom::ZERO;
    for l in logs {
        b.accrue_log(l);
    }
    b
}

/// Ethereum's transactions root (ordered Merkle-Patricia trie).
pub fn transactions_root(txs: &[SignedTransaction]) -> B256 {
    let envs: Vec<TxEnvelope> = txs.iter().map(|t| t.envelope.clone()).collect();
    alloy_consensus::proofs::calculate_transaction_root(&envs)
}

/// Ethereum's receipts root (ordered Merkle-Patricia trie).
pub fn receipts_root(receipts: &[Receipt]) -> B256 {
    let envs: Vec<ReceiptEnvelope> = receipts.iter().map(Receipt::to_envelope).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envs)
}

/// The EIP-1559 base fee of the block after `parent`: ±12.5% around half the gas
/// limit, never below `min_base_fee`. Integer arithmetic only.
pub fn next_base_fee(parent_gas_used: u64, parent_gas_limit: u64, parent_base_fee: u64, min_base_fee: u64) -> u64 {
    let target = (parent_gas_limit / 2).max(1);
    let base = parent_base_fee as u128;
    let next = if parent_gas_used == target {
        base
    } else if parent_gas_used > target {
        let delta = (base * (parent_gas_used - target) as u128 / target as u128 / 8).max(1);
        base + delta
    } else {
        let delta = base * (target - parent_gas_used) as u128 / target as u128 / 8;
        base.saturating_sub(delta)
    };
    (next.min(u64::MAX as u128) as u64).max(min_base_fee)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_rlp::{Decodable, Encodable};

    #[test]
    fn receipt_rlp_round_trip() {
        let log = Log::new_unchecked(Address::repeat_byte(7), vec![B256::repeat_byte(1)], Bytes::from_static(b"data"));
        let r = Receipt {
            tx_type: 2,
            success: false,
            cumulative_gas_used: 42_000,
            gas_used: 21_000,
            effective_gas_price: 1_000_000_007,
            logs: vec![log],
            revert_data: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(Receipt::decode(&mut buf.as_slice()).unwrap(), r);
        assert!(r.bloom().contains_input(alloy_primitives::BloomInput::Raw(Address::repeat_byte(7).as_slice())));
    }

    #[test]
    fn base_fee_moves_with_usage() {
        assert_eq!(next_base_fee(15_000_000, 30_000_000, 1_000_000_000, 7), 1_000_000_000);
        assert_eq!(next_base_fee(30_000_000, 30_000_000, 1_000_000_000, 7), 1_125_000_000);
        assert_eq!(next_base_fee(0, 30_000_000, 1_000_000_000, 7), 875_000_000);
        assert_eq!(next_base_fee(0, 30_000_000, 8, 7), 7);
    }
}
