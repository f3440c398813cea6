//! Every storage key of inference. Prefix `inference/`. Records are ABI-encoded
//! `sol!` values; amounts and accumulator nodes are fixed big-endian layouts.

use primitives::{Address, B256};

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"inference/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `inference/e/<payer>` → u128 BE: the payer's free escrow (absent = 0).
pub fn escrow(payer: &Address) -> Vec<u8> {
    k(&[b"e/", payer.as_slice()])
}
/// `inference/al/<payer><operator>` → `AllowanceRecord`. Never deleted: it keeps the last settled nonce.
pub fn allowance(payer: &Address, operator: &Address) -> Vec<u8> {
    k(&[b"al/", payer.as_slice(), operator.as_slice()])
}
/// `inference/key/<key hash>` → 20-byte address the API key acts for.
pub fn api_key(hash: &B256) -> Vec<u8> {
    k(&[b"key/", hash.as_slice()])
}
/// `inference/ep/<operator>` → `EndpointRecord`.
pub fn endpoint(operator: &Address) -> Vec<u8> {
    k(&[b"ep/", operator.as_slice()])
}
/// `inference/eps` → `address[]`: operators with an endpoint, in registration order.
pub fn endpoints() -> Vec<u8> {
    k(&[b"eps"])
}
/// `inference/h/<receipt hash>` → `HoldRecord`.
pub fn hold(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"h/", receipt_hash.as_slice()])
}
/// `inference/rh/<receipt hash>` → 32 bytes: the receipt's `retrievalHash`, kept
/// beside its hold when non-zero (the hold's own encoding stays as it was).
pub fn retrieval_hash(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"rh/", receipt_hash.as_slice()])
}
/// `inference/sr/<receipt hash>` → `SettledReceipt`: how a settled receipt was paid out.
pub fn settled_receipt(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"sr/", receipt_hash.as_slice()])
}
/// `inference/pc/<receipt hash>` → `PendingCredits` of a posted record (deleted when finalized).
pub fn pending_credits(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"pc/", receipt_hash.as_slice()])
}
/// `inference/c/<contribution id BE>` → `ContributionAccount`.
pub fn contribution(id: u64) -> Vec<u8> {
    k(&[b"c/", &id.to_be_bytes()])
}
/// `inference/fw/<datanet BE><node index u64 BE>` → U256 BE (32 bytes): a node of
/// the Datanet's Fenwick tree of reward per row (absent = 0).
pub fn fenwick_node(datanet: u64, index: u64) -> Vec<u8> {
    k(&[b"fw/", &datanet.to_be_bytes(), &index.to_be_bytes()])
}
/// `inference/vf/<datanet BE><version BE>` → u128 BE: fallback paid to that version in total.
pub fn version_fallback(datanet: u64, version: u64) -> Vec<u8> {
    k(&[b"vf/", &datanet.to_be_bytes(), &version.to_be_bytes()])
}
/// `inference/lo/count` → u64 BE: licence offers made so far (ids from 1).
pub fn offer_count() -> Vec<u8> {
    k(&[b"lo/count"])
}
/// `inference/lo/<offer id BE>` → `LicenceOffer`.
pub fn offer(id: u64) -> Vec<u8> {
    k(&[b"lo/", &id.to_be_bytes()])
}
/// `inference/lm/<model BE>` → u64 BE ids, concatenated: the model's open offers.
pub fn model_offers(model: u64) -> Vec<u8> {
    k(&[b"lm/", &model.to_be_bytes()])
}
/// `inference/li/count` → u64 BE: licences bought so far (ids from 1).
pub fn licence_count() -> Vec<u8> {
    k(&[b"li/count"])
}
/// `inference/li/<licence id BE>` → `Licence`.
pub fn licence(id: u64) -> Vec<u8> {
    k(&[b"li/", &id.to_be_bytes()])
}
/// `inference/lh/<holder><model BE>` → u64 BE: the holder's licence of the model that is not closed.
pub fn licence_of(holder: &Address, model: u64) -> Vec<u8> {
    k(&[b"lh/", holder.as_slice(), &model.to_be_bytes()])
}
/// `inference/totals` → `InferenceHoldings` (8 × u128 BE; 7 before licences): what the module holds, by kind.
pub fn totals() -> Vec<u8> {
    k(&[b"totals"])
}
