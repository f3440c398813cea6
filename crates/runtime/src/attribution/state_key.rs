//! Every storage key of attribution challenges. Prefix `attribution/`.

use primitives::B256;

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"attribution/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `attribution/c/<receipt hash>` → `AttributionChallenge`.
pub fn challenge(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"c/", receipt_hash.as_slice()])
}
/// `attribution/r/<receipt hash>` → `Revealed` (deleted when the challenge resolves).
pub fn revealed(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"r/", receipt_hash.as_slice()])
}
/// `attribution/open` → `bytes32[]`: challenges not resolved yet, oldest first.
pub fn open() -> Vec<u8> {
    k(&[b"open"])
}
/// `attribution/bonds` → u128 BE: bonds held (the module's balance).
pub fn bonds() -> Vec<u8> {
    k(&[b"bonds"])
}
