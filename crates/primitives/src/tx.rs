//! Ethereum EIP-2718 transactions: decoded, chain-id checked and sender-recovered
//! with alloy. EIP-1559 is the primary type; legacy EIP-155 transactions are
//! accepted; other types and pre-EIP-155 legacy transactions are refused.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Eip2718Error, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, U256};

/// Largest accepted encoded transaction (go-ethereum's pool limit is 128 KiB).
pub const MAX_TX_BYTES: usize = 128 * 1024;
/// Largest init code of a contract creation (EIP-3860: twice EIP-170's 24,576-byte code limit).
pub const MAX_INITCODE_BYTES: usize = 49_152;

/// Why a transaction was refused before execution. The messages are go-ethereum's,
/// which wallets and libraries match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("rlp: {0}")]
    Decode(String),
    #[error("transaction type not supported")]
    UnsupportedType,
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    NotReplayProtected,
    #[error("invalid chain id for signer")]
    WrongChainId,
    #[error("invalid sender")]
    InvalidSender,
    #[error("oversized data")]
    Oversized,
}

/// A decoded transaction with its recovered sender, hash and original bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    pub envelope: TxEnvelope,
    pub sender: Address,
    pub hash: B256,
    pub raw: Bytes,
}

impl SignedTransaction {
    /// Decode the bytes `eth_sendRawTransaction` receives, check the chain id and recover the sender.
    pub fn decode(raw: &[u8], chain_id: u64) -> Result<Self, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::Oversized);
        }
        let mut buf = raw;
        if raw.is_empty() {
            return Err(TxError::Decode("empty transaction".into()));
        }
        // Typed transactions other than EIP-1559 are refused before decoding.
        if raw[0] < 0x80 && raw[0] != 0x02 {
            return Err(TxError::UnsupportedType);
        }
        let envelope = TxEnvelope::decode_2718(&mut buf).map_err(|e| match e {
            // alloy reports a broken legacy list as an unexpected type; only a
            // type byte below 0x80 is really a transaction type.
            Eip2718Error::UnexpectedType(_) if raw[0] < 0x80 => TxError::UnsupportedType,
            Eip2718Error::UnexpectedType(t) => {
                TxError::Decode(format!("malformed legacy transaction (first byte {t:#04x})"))
            }
            Eip2718Error::RlpError(e) => TxError::Decode(e.to_string()),
            other => TxError::Decode(other.to_string()),
        })?;
        if !buf.is_empty() {
            return Err(TxError::Decode("input contains more than one value".into()));
        }
        match &envelope {
            TxEnvelope::Eip1559(_) => {}
            TxEnvelope::Legacy(t) => {
                if t.tx().chain_id.is_none() {
                    return Err(TxError::NotReplayProtected);
                }
            }
            _ => return Err(TxError::UnsupportedType),
        }
        if envelope.chain_id() != Some(chain_id) {
            return Err(TxError::WrongChainId);
        }
        let sender = envelope.recover_signer().map_err(|_| TxError::InvalidSender)?;
        let hash = *envelope.tx_hash();
        Ok(SignedTransaction { envelope, sender, hash, raw: Bytes::copy_from_slice(raw) })
    }

    /// Rebuild from stored bytes and a sender recovered earlier (no signature check).
    pub fn from_trusted(raw: Bytes, sender: Address) -> Result<Self, TxError> {
        let mut buf: &[u8] = &raw;
        let envelope = TxEnvelope::decode_2718(&mut buf).map_err(|e| TxError::Decode(e.to_string()))?;
        let hash = *envelope.tx_hash();
        Ok(SignedTransaction { envelope, sender, hash, raw })
    }

    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }
    /// The most per gas the sender pays (legacy: the gas price).
    pub fn max_fee_per_gas(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }
    /// The most per gas above the base fee (legacy: the gas price).
    pub fn max_priority_fee_per_gas(&self) -> u128 {
        self.envelope.max_priority_fee_per_gas().unwrap_or_else(|| self.envelope.max_fee_per_gas())
    }
    /// The tip cap of an EIP-1559 transaction (`None` for legacy).
    pub fn priority_fee_cap(&self) -> Option<u128> {
        self.envelope.max_priority_fee_per_gas()
    }
    /// The EIP-2930 access list (`None` for legacy).
    pub fn access_list(&self) -> Option<&alloy_eips::eip2930::AccessList> {
        self.envelope.access_list()
    }
    /// `None` for contract creation.
    pub fn to(&self) -> Option<Address> {
        self.envelope.to()
    }
    pub fn value(&self) -> U256 {
        self.envelope.value()
    }
    pub fn input(&self) -> &Bytes {
        self.envelope.input()
    }
    /// Gas of the EIP-2930 access list (typed transactions): 2,400 per
    /// address and 1,900 per storage key, as Ethereum charges it.
    pub fn access_list_gas(&self) -> u64 {
        use alloy_consensus::Transaction;
        self.envelope.access_list().map_or(0, |l| {
            l.0.iter().fold(0u64, |g, item| {
                g.saturating_add(ACCESS_LIST_ADDRESS_GAS)
                    .saturating_add(ACCESS_LIST_KEY_GAS.saturating_mul(item.storage_keys.len() as u64))
            })
        })
    }

    /// Intrinsic gas of the transaction: [`intrinsic_gas`] of its calldata
    /// plus its access list's, plus [`create_gas`] for a contract creation.
    pub fn intrinsic_gas(&self) -> u64 {
        let create = if self.to().is_none() { create_gas(self.input()) } else { 0 };
        intrinsic_gas(self.input()).saturating_add(self.access_list_gas()).saturating_add(create)
    }

    pub fn chain_id(&self) -> Option<u64> {
        self.envelope.chain_id()
    }
    /// What one unit of gas costs the sender at `base_fee`: min(max fee, base fee + tip).
    pub fn effective_gas_price(&self, base_fee: u64) -> u128 {
        self.envelope.effective_gas_price(Some(base_fee))
    }
    pub fn encoded_len(&self) -> usize {
        self.envelope.encode_2718_len()
    }
}

/// Gas per address of an access list (EIP-2930).
pub const ACCESS_LIST_ADDRESS_GAS: u64 = 2_400;
/// Gas per storage key of an access list (EIP-2930).
pub const ACCESS_LIST_KEY_GAS: u64 = 1_900;

/// What creating a contract adds to intrinsic gas: 32,000 (EIP-2) and 2 per
/// 32-byte word of init code (EIP-3860).
pub fn create_gas(init_code: &[u8]) -> u64 {
    32_000 + 2 * (init_code.len() as u64).div_ceil(32)
}

/// Intrinsic gas of a call: 21,000 plus 4 per zero and 16 per non-zero calldata byte.
pub fn intrinsic_gas(input: &[u8]) -> u64 {
    let zeros = input.iter().filter(|b| **b == 0).count() as u64;
    21_000 + zeros * 4 + (input.len() as u64 - zeros) * 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bytes_are_rlp_errors_and_unknown_types_unsupported() {
        for raw in [&[0xde, 0xad, 0xbe, 0xef][..], &[0x02, 0xc0, 0x01][..], &[0xf8][..]] {
            match SignedTransaction::decode(raw, 1) {
                Err(TxError::Decode(_)) => {}
                other => panic!("{raw:x?}: {other:?}"),
            }
        }
        assert_eq!(SignedTransaction::decode(&[0x05, 0xc0], 1), Err(TxError::UnsupportedType));
        assert!(SignedTransaction::decode(&[0x03, 0xc0], 1).is_err());
    }
}
