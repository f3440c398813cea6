//! Hierarchical deterministic keys: BIP-39 mnemonics and BIP-32 derivation,
//! on the `coins-bip39` and `coins-bip32` crates (the ones alloy's signer uses).

use coins_bip32::xkeys::XPriv;
use coins_bip39::{English, Mnemonic, MnemonicError, Wordlist};
use unicode_normalization::UnicodeNormalization;
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

/// BIP-39 seed from a mnemonic phrase of the English word list and an
/// optional passphrase (`""` for none).
///
/// The phrase is checked word by word against the word list and its checksum
/// is verified, so a mistyped word is refused rather than silently giving
/// another wallet. Phrase and passphrase are normalised to Unicode NFKD as
/// BIP-39 requires, so a passphrase may be any Unicode text; words may be
/// separated by any whitespace.
pub fn mnemonic_to_seed(phrase: &str, passphrase: &str) -> Result<[u8; 64], KeyError> {
    let mnemonic = parse_mnemonic(phrase)?;
    let passphrase = Zeroizing::new(passphrase.nfkd().collect::<String>());
    mnemonic.to_seed(Some(&passphrase)).map_err(|e| KeyError::InvalidMnemonic(e.to_string()))
}

/// The phrase as a checked mnemonic, with errors that say which word is wrong
/// without repeating the (secret) phrase.
fn parse_mnemonic(phrase: &str) -> Result<Mnemonic<English>, KeyError> {
    let normalized = Zeroizing::new(phrase.nfkd().collect::<String>());
    let words: Vec<&str> = normalized.split_whitespace().collect();
    if ![12, 15, 18, 21, 24].contains(&words.len()) {
        return Err(KeyError::InvalidMnemonic(format!("expected 12, 15, 18, 21 or 24 words, found {}", words.len())));
    }
    if let Some(pos) = words.iter().position(|w| English::get_index(w).is_err()) {
        return Err(KeyError::InvalidMnemonic(format!(
            "word {} is not in the BIP-39 English word list (words are lowercase)",
            pos + 1
        )));
    }
    let joined = Zeroizing::new(words.join(" "));
    Mnemonic::<English>::new_from_phrase(&joined).map_err(|e| match e {
        MnemonicError::InvalidPhrase(_) => KeyError::InvalidMnemonic(
            "the checksum does not match: a word is mistyped or the words are out of order".into(),
        ),
        other => KeyError::InvalidMnemonic(other.to_string()),
    })
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

/// BIP-32 derivation of a private key along a path like `m/44'/60'/0'/0/3`.
///
/// Hardened (`'`, `h` or `H`) and normal children are supported. The path is
/// checked here (clear errors, indexes below 2^31, at most 255 levels) before
/// `coins-bip32` derives along it; a child whose key would be invalid (odds
/// below 2^-127 per step) is replaced by the next index, as BIP-32 says.
pub fn derive_path(seed: &[u8; 64], path: &str) -> Result<SecretKey, KeyError> {
    derive_from_seed(seed, path)
}

/// [`derive_path`] for a seed of any length (BIP-32 allows 16 to 64 bytes;
/// its first test vectors use 16-byte seeds).
fn derive_from_seed(seed: &[u8], path: &str) -> Result<SecretKey, KeyError> {
    let indexes = parse_path(path)?;
    let bip32 = |e: coins_bip32::Bip32Error| KeyError::InvalidPath(format!("{path:?}: {e}"));
    let key = XPriv::root_from_seed(seed, None).map_err(bip32)?.derive_path(indexes).map_err(bip32)?;
    let signing: &k256::ecdsa::SigningKey = key.as_ref();
    Ok(SecretKey::from_signing_key(signing.clone()))
}

/// The key of the standard Ethereum account path `m/44'/60'/0'/0/{index}`
/// for a BIP-39 phrase without passphrase (as MetaMask, Hardhat and Anvil).
pub fn derive_account(phrase: &str, index: u32) -> Result<SecretKey, KeyError> {
    derive_account_with_passphrase(phrase, "", index)
}

/// [`derive_account`] for a phrase protected by a BIP-39 passphrase (any
/// Unicode text, NFKD-normalised; `""` for none).
pub fn derive_account_with_passphrase(phrase: &str, passphrase: &str, index: u32) -> Result<SecretKey, KeyError> {
    if index >= HARDENED {
        return Err(KeyError::InvalidPath(format!("account index {index} is not below 2^31")));
    }
    let seed = Zeroizing::new(mnemonic_to_seed(phrase, passphrase)?);
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
    fn bad_checksum_refused() {
        // Every word is in the list, but the last one does not carry the checksum.
        let typo = DEV_MNEMONIC.replace("junk", "test");
        match mnemonic_to_seed(&typo, "") {
            Err(KeyError::InvalidMnemonic(msg)) => assert!(msg.contains("checksum"), "{msg}"),
            other => panic!("bad checksum accepted: {other:?}"),
        }
        assert!(derive_account(&typo, 0).is_err());
        // A word outside the list is named by position, and the phrase is not echoed.
        let unknown = DEV_MNEMONIC.replacen("test", "tset", 1);
        match mnemonic_to_seed(&unknown, "") {
            Err(KeyError::InvalidMnemonic(msg)) => {
                assert!(msg.contains("word 1 ") && !msg.contains("tset"), "{msg}")
            }
            other => panic!("unknown word accepted: {other:?}"),
        }
    }

    #[test]
    fn unicode_passphrase_is_nfkd_normalised() {
        // Expected seed from Python: pbkdf2_hmac("sha512", phrase, "mnemonic" + NFKD(passphrase), 2048).
        let expected = "510658be9ada433eda973089e551f80c93004644a1e9fb0c938902b19b64f3d7d8b9b419a5763a9f4f9a154867ccbfdd0005066302de1ca5c09c1a18e6800827";
        let composed = "p\u{e4}ssw\u{f6}rd \u{1f511} \u{2167}";
        let decomposed = "pa\u{308}sswo\u{308}rd \u{1f511} VIII";
        assert_eq!(hex::encode(mnemonic_to_seed(DEV_MNEMONIC, composed).unwrap()), expected);
        assert_eq!(hex::encode(mnemonic_to_seed(DEV_MNEMONIC, decomposed).unwrap()), expected);
        let a = derive_account_with_passphrase(DEV_MNEMONIC, composed, 0).unwrap();
        assert_eq!(a, derive_account_with_passphrase(DEV_MNEMONIC, decomposed, 0).unwrap());
        assert_ne!(a, derive_account(DEV_MNEMONIC, 0).unwrap());
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
