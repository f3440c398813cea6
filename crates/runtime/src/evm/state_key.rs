//! Every storage key of contract state, in one place. Prefix `evm/`.
//!
//! Balances and nonces of contracts are bank accounts (`bank/a/<address>`),
//! as for every other account; only code and storage live here.

use primitives::{Address, B256, U256};

/// `evm/code/<address>` → keccak256 of the account's runtime code (32 bytes).
pub fn code_hash(a: &Address) -> Vec<u8> {
    let mut k = b"evm/code/".to_vec();
    k.extend_from_slice(a.as_slice());
    k
}

/// `evm/bytecode/<code hash>` → the code itself (content-addressed: contracts
/// with the same code share it).
pub fn bytecode(hash: &B256) -> Vec<u8> {
    let mut k = b"evm/bytecode/".to_vec();
    k.extend_from_slice(hash.as_slice());
    k
}

/// `evm/s/<address><slot, 32 bytes BE>` → the slot's value, 32 bytes BE. A
/// zero value is a deleted key. `ol_getProof` proves this key like any other.
pub fn storage(a: &Address, slot: &U256) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + 20 + 32);
    k.extend_from_slice(b"evm/s/");
    k.extend_from_slice(a.as_slice());
    k.extend_from_slice(&slot.to_be_bytes::<32>());
    k
}
