//! Reading state and proving it.

use primitives::B256;
use sha2::Digest;

pub use jmt::KeyHash;

pub use primitives::state::{StateError, StateRead};

/// The tree key of a state key: `sha256(key)`.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(sha2::Sha256::digest(key).into())
}

/// A value (or its absence) at a version, with a proof against that version's state root.
#[derive(Debug)]
pub struct StateProof {
    pub version: u64,
    pub root: B256,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub proof: jmt::proof::SparseMerkleProof<sha2::Sha256>,
}

impl StateProof {
    /// Canonical bytes of the proof (borsh of jmt's `SparseMerkleProof<Sha256>`).
    pub fn proof_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.proof).expect("in-memory serialisation")
    }

    /// Check `value` for `key` against `root` from proof bytes: what a light client does.
    pub fn verify_bytes(root: &B256, key: &[u8], value: Option<&[u8]>, proof: &[u8]) -> Result<(), String> {
        let p: jmt::proof::SparseMerkleProof<sha2::Sha256> =
            borsh::from_slice(proof).map_err(|e| format!("malformed proof: {e}"))?;
        p.verify(jmt::RootHash(root.0), key_hash(key), value).map_err(|e| e.to_string())
    }
}
