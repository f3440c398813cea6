//! Every storage key of models. Prefix `models/`. Records are ABI-encoded
//! `sol!` values (canonical, decoded with validation by alloy).

use primitives::{Address, ModelId};

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"models/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `models/count` → u64: models ever registered (ids are 1..=count).
pub fn count() -> Vec<u8> {
    k(&[b"count"])
}
/// `models/m/<id BE>` → `ModelRecord`.
pub fn model(id: ModelId) -> Vec<u8> {
    k(&[b"m/", &id.0.to_be_bytes()])
}
/// `models/by/<owner>` → `uint64[]`: the owner's models, in registration order.
pub fn models_of(owner: &Address) -> Vec<u8> {
    k(&[b"by/", owner.as_slice()])
}
/// `models/base/<model hash>` → u64: the first model registered with this
/// base hash and no adapter (a base model), which fine-tunes of it pay royalties to.
pub fn base_by_hash(hash: &primitives::B256) -> Vec<u8> {
    let mut k = b"models/base/".to_vec();
    k.extend_from_slice(hash.as_slice());
    k
}
/// `models/live` → `uint64[]`: live models, ascending.
pub fn live() -> Vec<u8> {
    k(&[b"live"])
}
/// `models/retired/<id BE>` → u64: the block a live model was retired at
/// (absent for a model retired before it was live).
pub fn retired_at(id: ModelId) -> Vec<u8> {
    k(&[b"retired/", &id.0.to_be_bytes()])
}
