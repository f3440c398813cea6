//! Every storage key of the assets module, in one place. Prefix `assets/`.

use primitives::{Address, U256};

/// `assets/count` → u32 BE: share tokens made so far.
pub fn count() -> Vec<u8> {
    b"assets/count".to_vec()
}

/// `assets/token/<n u32 BE>` → `ShareRecord` of share token `n`.
pub fn token(n: u32) -> Vec<u8> {
    let mut k = b"assets/token/".to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// `assets/of/<asset id, 32 bytes>` → u32 BE: the asset's share token.
pub fn share_of(asset: &U256) -> Vec<u8> {
    let mut k = b"assets/of/".to_vec();
    k.extend_from_slice(&asset.to_be_bytes::<32>());
    k
}

/// `assets/h/<n><holder>` → `HolderRecord`.
pub fn holder(n: u32, a: &Address) -> Vec<u8> {
    let mut k = b"assets/h/".to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k.extend_from_slice(a.as_slice());
    k
}

/// `assets/al/<n><owner><spender>` → U256 allowance.
pub fn allowance(n: u32, owner: &Address, spender: &Address) -> Vec<u8> {
    let mut k = b"assets/al/".to_vec();
    k.extend_from_slice(&n.to_be_bytes());
    k.extend_from_slice(owner.as_slice());
    k.extend_from_slice(spender.as_slice());
    k
}

/// `assets/earning/<address>` → one byte, 1 or 0: the account's own choice
/// (absent: accounts without code earn, contracts do not).
pub fn earning(a: &Address) -> Vec<u8> {
    let mut k = b"assets/earning/".to_vec();
    k.extend_from_slice(a.as_slice());
    k
}

/// `assets/ap/<token id>` → the address approved for one ownership token.
pub fn approved(token: &U256) -> Vec<u8> {
    let mut k = b"assets/ap/".to_vec();
    k.extend_from_slice(&token.to_be_bytes::<32>());
    k
}

/// `assets/op/<owner><operator>` → present when `operator` may move all of `owner`'s tokens.
pub fn operator(owner: &Address, operator: &Address) -> Vec<u8> {
    let mut k = b"assets/op/".to_vec();
    k.extend_from_slice(owner.as_slice());
    k.extend_from_slice(operator.as_slice());
    k
}
