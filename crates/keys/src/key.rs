//! secp256k1 private keys, message and transaction signing.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Signature, eip191_hash_message, hex, keccak256};
use k256::ecdsa::{RecoveryId, SigningKey};
use rand::rngs::OsRng;

use crate::KeyError;

/// A secp256k1 private key with its Ethereum address.
///
/// The key is wiped from memory when dropped. `Debug` prints the address
/// only; use [`SecretKey::to_hex`] explicitly to reveal the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    inner: SigningKey,
    address: Address,
}

impl SecretKey {
    pub(crate) fn from_signing_key(inner: SigningKey) -> Self {
        let point = inner.verifying_key().to_encoded_point(false);
        // Uncompressed SEC1 encoding: 0x04 || x || y; the address hashes x || y.
        let hash = keccak256(&point.as_bytes()[1..]);
        let address = Address::from_slice(&hash[12..]);
        Self { inner, address }
    }

    /// A new key from the operating system's secure random number generator.
    pub fn random() -> Self {
        Self::from_signing_key(SigningKey::random(&mut OsRng))
    }

    /// The key with these big-endian bytes.
    ///
    /// Fails with [`KeyError::InvalidKey`] for zero or a number not below the
    /// curve order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let inner = SigningKey::from_bytes(&(*bytes).into()).map_err(|_| KeyError::InvalidKey)?;
        Ok(Self::from_signing_key(inner))
    }

    /// The key from 64 hex digits, with or without a `0x` prefix
    /// (surrounding whitespace is ignored).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        if digits.len() != 64 {
            return Err(KeyError::InvalidKey);
        }
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, &mut bytes[..]).map_err(|_| KeyError::InvalidKey)?;
        Self::from_bytes(&bytes)
    }

    /// The key's 32 big-endian bytes. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.inner.to_bytes().into()
    }

    /// The key as `0x` followed by 64 lowercase hex digits. Handle with care.
    pub fn to_hex(&self) -> String {
        let bytes = zeroize::Zeroizing::new(self.to_bytes());
        format!("0x{}", hex::encode(&bytes[..]))
    }

    /// The Ethereum address: the last 20 bytes of the Keccak-256 hash of the
    /// uncompressed public key (without its `0x04` prefix).
    pub fn address(&self) -> Address {
        self.address
    }

    /// The underlying k256 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.inner
    }

    /// Sign a 32-byte prehash, returning an alloy Signature (r, s, y_parity),
    /// low-s normalised.
    pub fn sign_hash(&self, hash: &B256) -> Signature {
        let (mut sig, mut recid) = self
            .inner
            .sign_prehash_recoverable(hash.as_slice())
            .expect("signing a 32-byte prehash with a valid key cannot fail");
        // k256 already returns low-s signatures; normalise anyway so the
        // guarantee does not depend on the backend's version.
        if let Some(normalized) = sig.normalize_s() {
            sig = normalized;
            recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
        }
        Signature::from((sig, recid))
    }

    /// EIP-191 `personal_sign` of a message: signs
    /// `keccak256("\x19Ethereum Signed Message:\n" ++ len(msg) ++ msg)`.
    pub fn sign_message(&self, msg: &[u8]) -> Signature {
        self.sign_hash(&eip191_hash_message(msg))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey").field("address", &self.address).finish_non_exhaustive()
    }
}

/// Sign an EIP-1559 transaction and return its EIP-2718 envelope.
pub fn sign_eip1559(key: &SecretKey, tx: TxEip1559) -> TxEnvelope {
    let sig = key.sign_hash(&tx.signature_hash());
    TxEnvelope::from(tx.into_signed(sig))
}

/// Sign a legacy transaction and return its envelope.
///
/// With `tx.chain_id = Some(id)` the signature is EIP-155 replay protected
/// (`v = 35 + 2 * id + y_parity`); with `None` it is a pre-EIP-155
/// signature (`v = 27 + y_parity`).
pub fn sign_legacy(key: &SecretKey, tx: TxLegacy) -> TxEnvelope {
    let sig = key.sign_hash(&tx.signature_hash());
    TxEnvelope::from(tx.into_signed(sig))
}

/// The EIP-2718 bytes that `eth_sendRawTransaction` takes: the RLP list for
/// legacy transactions, `type || rlp(...)` for typed ones.
pub fn encode_2718(env: &TxEnvelope) -> Vec<u8> {
    env.encoded_2718()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;
    use alloy_primitives::{Bytes, TxKind, U256, address, b256};

    const HARDHAT_0_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn key0() -> SecretKey {
        SecretKey::from_hex(HARDHAT_0_KEY).unwrap()
    }

    #[test]
    fn address_of_known_key() {
        assert_eq!(key0().address(), address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
    }

    #[test]
    fn hex_round_trip_and_prefixes() {
        let k = key0();
        assert_eq!(k.to_hex(), format!("0x{HARDHAT_0_KEY}"));
        let with_prefix = SecretKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(with_prefix, k);
        assert_eq!(SecretKey::from_bytes(&k.to_bytes()).unwrap(), k);
        assert_eq!(SecretKey::from_hex(&format!("  0X{}\n", HARDHAT_0_KEY.to_uppercase())).unwrap(), k);
    }

    #[test]
    fn invalid_keys_rejected() {
        assert!(matches!(SecretKey::from_bytes(&[0u8; 32]), Err(KeyError::InvalidKey)));
        assert!(matches!(SecretKey::from_bytes(&[0xffu8; 32]), Err(KeyError::InvalidKey)));
        // The curve order n itself is not a valid key; n - 1 is.
        let n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let n_minus_1 = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
        assert!(SecretKey::from_hex(n).is_err());
        assert!(SecretKey::from_hex(n_minus_1).is_ok());
        for bad in ["", "0x", "0x1234", &HARDHAT_0_KEY[1..], "zz", &"g".repeat(64)] {
            assert!(matches!(SecretKey::from_hex(bad), Err(KeyError::InvalidKey)), "{bad:?} accepted");
        }
    }

    #[test]
    fn random_keys_differ_and_round_trip() {
        let a = SecretKey::random();
        let b = SecretKey::random();
        assert_ne!(a.address(), b.address());
        assert_eq!(SecretKey::from_hex(&a.to_hex()).unwrap(), a);
    }

    #[test]
    fn debug_does_not_leak_key() {
        let k = key0();
        let dbg = format!("{k:?}");
        let alt = format!("{k:#?}");
        for text in [&dbg, &alt] {
            assert!(!text.contains(HARDHAT_0_KEY), "{text}");
            assert!(!text.contains(&HARDHAT_0_KEY[..16]), "{text}");
            assert!(text.to_lowercase().contains("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"));
        }
    }

    #[test]
    fn sign_hash_recovers_and_is_low_s() {
        let k = key0();
        let half_n = U256::from_be_slice(
            &hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0").unwrap(),
        );
        for i in 0u8..32 {
            let hash = keccak256([i]);
            let sig = k.sign_hash(&hash);
            assert!(sig.s() <= half_n, "high s for message {i}");
            assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), k.address());
        }
        // RFC 6979: deterministic.
        let h = b256!("0101010101010101010101010101010101010101010101010101010101010101");
        assert_eq!(k.sign_hash(&h), k.sign_hash(&h));
    }

    #[test]
    fn personal_sign_recovers() {
        let k = key0();
        let msg = b"hello OpenLedger";
        let sig = k.sign_message(msg);
        assert_eq!(sig.recover_address_from_msg(msg).unwrap(), k.address());
        // A different message recovers to a different address.
        assert_ne!(sig.recover_address_from_msg(b"hello OpenLedger!").unwrap(), k.address());
    }

    #[test]
    fn eip1559_round_trip() {
        let k = key0();
        let tx = TxEip1559 {
            chain_id: 31337,
            nonce: 7,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(address!("70997970C51812dc3A010C7d01b50e0d17dc79C8")),
            value: U256::from(10u64).pow(U256::from(18u64)),
            access_list: Default::default(),
            input: Bytes::from_static(b"\x01\x02"),
        };
        let env = sign_eip1559(&k, tx.clone());
        let raw = encode_2718(&env);
        assert_eq!(raw[0], 0x02, "EIP-1559 type byte");
        let decoded = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
        assert_eq!(decoded, env);
        assert_eq!(decoded.recover_signer().unwrap(), k.address());
        let signed = decoded.as_eip1559().expect("an EIP-1559 transaction");
        assert_eq!(signed.tx(), &tx);
        // Another key's signature recovers to another address.
        let other = sign_eip1559(&SecretKey::random(), tx);
        assert_ne!(other.recover_signer().unwrap(), k.address());
    }

    #[test]
    fn legacy_eip155_round_trip() {
        let k = key0();
        let tx = TxLegacy {
            chain_id: Some(31337),
            nonce: 0,
            gas_price: 1_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(address!("70997970C51812dc3A010C7d01b50e0d17dc79C8")),
            value: U256::from(1u64),
            input: Bytes::new(),
        };
        let env = sign_legacy(&k, tx.clone());
        let raw = encode_2718(&env);
        assert!(raw[0] >= 0xc0, "legacy transactions are a bare RLP list");
        let decoded = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
        assert_eq!(decoded, env);
        assert_eq!(decoded.recover_signer().unwrap(), k.address());
        let signed = decoded.as_legacy().expect("a legacy transaction");
        assert_eq!(signed.tx().chain_id, Some(31337));
        assert_eq!(signed.tx(), &tx);
    }

    #[test]
    fn legacy_eip155_known_vector() {
        // The EIP-155 specification's example: key 0x4646..46, chain id 1.
        let k = SecretKey::from_hex(&"46".repeat(32)).unwrap();
        let tx = TxLegacy {
            chain_id: Some(1),
            nonce: 9,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(address!("3535353535353535353535353535353535353535")),
            value: U256::from(10u64).pow(U256::from(18u64)),
            input: Bytes::new(),
        };
        let raw = encode_2718(&sign_legacy(&k, tx));
        assert_eq!(
            hex::encode(raw),
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        );
    }
}
