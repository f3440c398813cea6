//! Hash rules: keccak256 for what Ethereum tools hash (transactions, blocks,
//! selectors), blake3 for content (files, rows, model artefacts).

use alloy_primitives::B256;

/// blake3 digest of content bytes.
pub fn content_hash(bytes: &[u8]) -> B256 {
    B256::from(*blake3::hash(bytes).as_bytes())
}
