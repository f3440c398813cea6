//! Hierarchical deterministic keys: BIP-39 seeds and BIP-32 derivation.

use hmac::{Hmac, Mac};
use k256::{NonZeroScalar, Scalar, ecdsa::SigningKey, elliptic_curve::PrimeField};
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::{KeyError, SecretKey};

/// The mnemonic every Ethereum development tool (Hardhat, Anvil, Foundry)
/// uses by default. Its accounts are public knowledge: never hold real value
/// with them.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Children with an index at or above this are hardened.
const HARDENED: u32 = 0x8000_0000;

/// BIP-32 depth is stored in one byte.
const MAX_DEPTH: usize = 255;

type HmacSha512 = Hmac<Sha512>;

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    let mut out = Zeroizing::new([0u8; 64]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// BIP-39 seed from a mnemonic phrase: PBKDF2-HMAC-SHA512 with 2048 rounds,
/// password the phrase and salt `"mnemonic" + passphrase`.
///
/// Limitations, by design:
///
/// * BIP-39 normalises phrase and passphrase to Unicode NFKD first. That is
///   a no-op for ASCII text, and the English word list is ASCII, so this
///   function accepts only ASCII phrases and passphrases and rejects anything
///   else with [`KeyError::InvalidMnemonic`] rather than derive a wrong seed.
/// * The word list is not embedded, so the checksum is **not** validated: a
///   mistyped word gives a valid seed of a different wallet. The phrase is
///   checked to have 12, 15, 18, 21 or 24 words of lowercase letters `a`-`z`.
/// * Words may be separated by any ASCII whitespace; they are joined with
///   single spaces before hashing, as wallets write them.
pub fn mnemonic_to_seed(phrase: &str, passphrase: &str) -> Result<[u8; 64], KeyError> {
    if !phrase.is_ascii() {
        return Err(KeyError::InvalidMnemonic("only ASCII (English word list) phrases are supported".into()));
    }
    if !passphrase.is_ascii() {
        return Err(KeyError::InvalidMnemonic(
            "only ASCII passphrases are supported (Unicode NFKD normalisation is not implemented)".into(),
        ));
    }
    let words: Vec<&str> = phrase.split_ascii_whitespace().collect();
    if ![12, 15, 18, 21, 24].contains(&words.len()) {
        return Err(KeyError::InvalidMnemonic(format!("expected 12, 15, 18, 21 or 24 words, found {}", words.len())));
    }
    if let Some(pos) = words.iter().position(|w| !w.bytes().all(|b| b.is_ascii_lowercase())) {
        return Err(KeyError::InvalidMnemonic(format!("word {} is not made of lowercase letters a-z", pos + 1)));
    }
    let normalized = Zeroizing::new(words.join(" "));
    let salt = Zeroizing::new(format!("mnemonic{passphrase}"));
    let mut seed = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(normalized.as_bytes(), salt.as_bytes(), 2048, &mut seed);
    Ok(seed)
}

/// Parse `m/44'/60'/0'/0/3` into child indexes (hardened ones with the top
/// bit set). `'`, `h` and `H` mark hardened children.
fn parse_path(path: &str) -> Result<Vec<u32>, KeyError> {
    let bad = |why: &str| KeyError::InvalidPath(format!("{path:?}: {why}"));
    let mut parts = path.split('/');
    if parts.next() != Some("m") {
        return Err(bad("must start with \"m\", like m/44'/60'/0'/0/0"));
    }
    let mut indexes = Vec::new();
    for part in parts {
        let (digits, hardened) =
            match part.strip_suffix('\'').or_else(|| part.strip_suffix('h')).or_else(|| part.strip_suffix('H')) {
                Some(d) => (d, true),
                None => (part, false),
            };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("component {part:?} is not a number optionally followed by '")));
        }
        let index: u32 = digits
            .parse()
            .ok()
            .filter(|i| *i < HARDENED)
            .ok_or_else(|| bad(&format!("index {digits} is not below 2^31")))?;
        indexes.push(if hardened { index | HARDENED } else { index });
    }
    if indexes.len() > MAX_DEPTH {
        return Err(bad("deeper than 255 levels"));
    }
    Ok(indexes)
}

fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
    Option::from(Scalar::from_repr((*bytes).into()))
}

/// BIP-32 derivation of a private key along a path like `m/44'/60'/0'/0/3`.
///
/// Hardened (`'`, `h` or `H`) and normal children are supported. A path
/// leading to an invalid key (`I_L` not below the curve order, or a zero
/// key: probability below 2^-127 per step) is rejected with
/// [`KeyError::InvalidPath`], as BIP-32 requires; use the next index.
pub fn derive_path(seed: &[u8; 64], path: &str) -> Result<SecretKey, KeyError> {
    derive_from_seed(seed, path)
}

/// [`derive_path`] for a seed of any length (BIP-32 allows 16 to 64 bytes;
/// its first test vectors use 16-byte seeds).
fn derive_from_seed(seed: &[u8], path: &str) -> Result<SecretKey, KeyError> {
    let indexes = parse_path(path)?;

    let i = hmac_sha512(b"Bitcoin seed", &[seed]);
    let mut il = Zeroizing::new([0u8; 32]);
    il.copy_from_slice(&i[..32]);
    let mut chain_code = Zeroizing::new([0u8; 32]);
    chain_code.copy_from_slice(&i[32..]);
    let mut key: NonZeroScalar = Option::from(NonZeroScalar::from_repr((*il).into()))
        .ok_or_else(|| KeyError::InvalidPath("this seed gives an invalid BIP-32 master key".into()))?;

    for (depth, &index) in indexes.iter().enumerate() {
        let index_bytes = index.to_be_bytes();
        let i = if index >= HARDENED {
            let key_bytes = Zeroizing::new(key.to_repr());
            hmac_sha512(&chain_code[..], &[&[0u8], &key_bytes[..], &index_bytes])
        } else {
            let public = SigningKey::from(key).verifying_key().to_encoded_point(true);
            hmac_sha512(&chain_code[..], &[public.as_bytes(), &index_bytes])
        };
        il.copy_from_slice(&i[..32]);
        chain_code.copy_from_slice(&i[32..]);
        let invalid = || {
            KeyError::InvalidPath(format!(
                "{path:?}: the child at depth {} is an invalid key (BIP-32); use the next index",
                depth + 1
            ))
        };
        let tweak = scalar_from_bytes(&il).ok_or_else(invalid)?;
        key = Option::from(NonZeroScalar::new(tweak + key.as_ref())).ok_or_else(invalid)?;
    }

    Ok(SecretKey::from_signing_key(SigningKey::from(key)))
}

/// The key of the standard Ethereum account path `m/44'/60'/0'/0/{index}`
/// for a BIP-39 phrase without passphrase (as MetaMask, Hardhat and Anvil).
pub fn derive_account(phrase: &str, index: u32) -> Result<SecretKey, KeyError> {
    if index >= HARDENED {
        return Err(KeyError::InvalidPath(format!("account index {index} is not below 2^31")));
    }
    let seed = Zeroizing::new(mnemonic_to_seed(phrase, "")?);
    derive_path(&seed, &format!("m/44'/60'/0'/0/{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, hex};

    fn seed_from_hex(s: &str) -> [u8; 64] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn dev_mnemonic_accounts() {
        let k0 = derive_account(DEV_MNEMONIC, 0).unwrap();
        assert_eq!(k0.address(), address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
        assert_eq!(k0.to_hex(), "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
        let k1 = derive_account(DEV_MNEMONIC, 1).unwrap();
        assert_eq!(k1.address(), address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"));
        assert_eq!(k1.to_hex(), "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
        let k9 = derive_account(DEV_MNEMONIC, 9).unwrap();
        assert_eq!(k9.address(), address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"));
    }

    #[test]
    fn derive_account_matches_derive_path() {
        let seed = mnemonic_to_seed(DEV_MNEMONIC, "").unwrap();
        assert_eq!(derive_path(&seed, "m/44'/60'/0'/0/3").unwrap(), derive_account(DEV_MNEMONIC, 3).unwrap());
        assert_eq!(derive_path(&seed, "m/44h/60H/0'/0/3").unwrap(), derive_account(DEV_MNEMONIC, 3).unwrap());
    }

    #[test]
    fn bip39_trezor_vector() {
        // From the Trezor reference vectors (passphrase "TREZOR").
        let seed = mnemonic_to_seed(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            "TREZOR",
        )
        .unwrap();
        assert_eq!(
            hex::encode(seed),
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
        );
    }

    #[test]
    fn mnemonic_whitespace_is_normalised() {
        let messy = format!("  {}\n", DEV_MNEMONIC.replace(' ', " \t "));
        assert_eq!(mnemonic_to_seed(&messy, "").unwrap(), mnemonic_to_seed(DEV_MNEMONIC, "").unwrap());
        assert_ne!(mnemonic_to_seed(DEV_MNEMONIC, "x").unwrap(), mnemonic_to_seed(DEV_MNEMONIC, "").unwrap());
    }

    #[test]
    fn bad_mnemonics_rejected() {
        for (phrase, pass) in [
            ("", ""),
            ("test test test", ""),
            ("Test test test test test test test test test test test junk", ""),
            ("test test test test test test test test test test test jünk", ""),
            (DEV_MNEMONIC, "pässword"),
            ("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", ""),
        ] {
            assert!(
                matches!(mnemonic_to_seed(phrase, pass), Err(KeyError::InvalidMnemonic(_))),
                "{phrase:?} / {pass:?} accepted"
            );
            if pass.is_empty() {
                assert!(derive_account(phrase, 0).is_err(), "{phrase:?} accepted");
            }
        }
    }

    #[test]
    fn bip32_vector_1() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let cases = [
            ("m", "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"),
            ("m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"),
            ("m/0'/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"),
            ("m/0'/1/2'", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"),
            ("m/0'/1/2'/2", "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"),
            ("m/0'/1/2'/2/1000000000", "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"),
        ];
        for (path, expected) in cases {
            assert_eq!(hex::encode(derive_from_seed(&seed, path).unwrap().to_bytes()), expected, "{path}");
        }
    }

    #[test]
    fn bip32_vector_2_with_64_byte_seed() {
        // BIP-32 test vector 2 has a 64-byte seed, so it exercises derive_path itself.
        let seed = seed_from_hex(
            "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
        );
        let cases = [
            ("m", "4b03d6fc340455b363f51020ad3ecca4f0850280cf436c70c727923f6db46c3e"),
            ("m/0", "abe74a98f6c7eabee0428f53798f0ab8aa1bd37873999041703c742f15ac7e1e"),
            ("m/0/2147483647'/1/2147483646'/2", "bb7d39bdb83ecf58f2fd82b6d918341cbef428661ef01ab97c28a4842125ac23"),
        ];
        for (path, expected) in cases {
            let key = derive_path(&seed, path).unwrap();
            assert_eq!(hex::encode(key.to_bytes()), expected, "{path}");
        }
    }

    #[test]
    fn bad_paths_rejected() {
        let seed = [7u8; 64];
        for path in [
            "",
            "44'/60'",
            "M/0",
            "m/",
            "m//0",
            "m/0/",
            "m/-1",
            "m/+1",
            "m/0x1",
            "m/ 1",
            "m/1''",
            "m/2147483648",
            "m/2147483648'",
            "m/99999999999999999999",
        ] {
            assert!(matches!(derive_path(&seed, path), Err(KeyError::InvalidPath(_))), "{path:?} accepted");
        }
        assert!(matches!(derive_account(DEV_MNEMONIC, HARDENED), Err(KeyError::InvalidPath(_))));
        let deep = format!("m{}", "/0".repeat(256));
        assert!(derive_path(&seed, &deep).is_err());
        let ok = format!("m{}", "/0".repeat(255));
        assert!(derive_path(&seed, &ok).is_ok());
    }
}
