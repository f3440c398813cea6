//! Every storage key of governance. Prefix `governance/`.

use primitives::Address;

/// `governance/count` → u64 (ABI): proposals ever made.
pub fn count() -> Vec<u8> {
    b"governance/count".to_vec()
}
/// `governance/p/<id BE>` → `ProposalRecord`.
pub fn proposal(id: u64) -> Vec<u8> {
    let mut k = b"governance/p/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}
/// `governance/v/<id BE><voter>` → uint8 support + 1 (present = voted).
pub fn vote(id: u64, voter: &Address) -> Vec<u8> {
    let mut k = b"governance/v/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(voter.as_slice());
    k
}
/// `governance/open` → `uint64[]`: proposals not yet tallied.
pub fn open() -> Vec<u8> {
    b"governance/open".to_vec()
}
