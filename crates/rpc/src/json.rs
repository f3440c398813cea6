//! The JSON encodings of plain values in answers that have no alloy RPC type
//! (`eth_chainId`, `eth_getCode`, the `ol_` methods, ...), as go-ethereum writes
//! them (see notes/eth-rpc-conventions.md): quantities are minimal hex ("0x0"),
//! data is even-length hex ("0x" when empty), hashes are lowercase hex. Blocks,
//! transactions, receipts and logs are alloy's types ([`crate::types`]).

use primitives::B256;
use serde_json::Value;

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

pub fn h256(h: &B256) -> Value {
    data(h.as_slice())
}
