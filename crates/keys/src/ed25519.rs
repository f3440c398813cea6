//! ed25519 consensus keys of validators (what Malachite signs votes with and
//! what staking registers as a validator's `consensusKey`).

use alloy_primitives::B256;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::KeyError;

/// A validator's ed25519 consensus key.
#[derive(Clone)]
pub struct ConsensusKey(SigningKey);

impl ConsensusKey {
    pub fn random() -> Self {
        ConsensusKey(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }
    /// From a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        ConsensusKey(SigningKey::from_bytes(seed))
    }
    /// A deterministic key from a label: for dev chains only, never for real stake.
    pub fn dev(label: &str) -> Self {
        use sha2::Digest;
        Self::from_seed(&sha2::Sha256::digest(format!("openledger dev consensus key: {label}")).into())
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public key, as staking stores it (`bytes32`).
    pub fn public(&self) -> B256 {
        B256::from(self.0.verifying_key().to_bytes())
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

/// Check an ed25519 signature by `public` over `msg`.
pub fn verify_consensus(public: &B256, msg: &[u8], sig: &[u8; 64]) -> Result<(), KeyError> {
    let vk = VerifyingKey::from_bytes(&public.0).map_err(|_| KeyError::InvalidKey)?;
    vk.verify(msg, &Signature::from_bytes(sig)).map_err(|_| KeyError::InvalidKey)
}

impl std::fmt::Debug for ConsensusKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConsensusKey({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_dev_keys_are_stable() {
        let k = ConsensusKey::dev("validator-0");
        assert_eq!(k.public(), ConsensusKey::dev("validator-0").public());
        assert_ne!(k.public(), ConsensusKey::dev("validator-1").public());
        let sig = k.sign(b"verdict");
        verify_consensus(&k.public(), b"verdict", &sig).unwrap();
        assert!(verify_consensus(&k.public(), b"other", &sig).is_err());
        let r = ConsensusKey::random();
        assert_eq!(ConsensusKey::from_seed(&r.seed()).public(), r.public());
        assert!(!format!("{k:?}").contains(&alloy_primitives::hex::encode(k.seed())));
    }
}
