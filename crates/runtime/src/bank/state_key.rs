//! Every storage key of the bank, in one place. Prefix `bank/`.

use primitives::Address;

/// `bank/a/<address>` → nonce u64 BE ‖ balance u128 BE (24 bytes).
pub fn account(a: &Address) -> Vec<u8> {
    let mut k = b"bank/a/".to_vec();
    k.extend_from_slice(a.as_slice());
    k
}

/// `bank/supply` → genesis u128 BE ‖ issued u128 BE ‖ burned u128 BE.
pub fn supply() -> Vec<u8> {
    b"bank/supply".to_vec()
}
