//! The error type of this crate.

use alloy_primitives::Address;

/// Everything that can go wrong when handling keys, mnemonics and keystores.
///
/// The messages are meant to be shown to a user as they are.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a valid secp256k1 private key.
    #[error(
        "invalid private key: expected 32 bytes (64 hex digits, optionally prefixed with 0x) \
         forming a non-zero number below the secp256k1 curve order"
    )]
    InvalidKey,
    /// The mnemonic phrase (or its passphrase) cannot be used.
    #[error("invalid mnemonic: {0}")]
    InvalidMnemonic(String),
    /// The derivation path is not valid, or leads to an invalid key.
    #[error("invalid derivation path: {0}")]
    InvalidPath(String),
    /// The keystore's MAC did not match: the password is wrong (or the file was altered).
    #[error("wrong password for keystore (MAC mismatch); check the password, or the file may be corrupted")]
    WrongPassword,
    /// The keystore text is not a well-formed keystore file.
    #[error("malformed keystore: {0}")]
    Malformed(String),
    /// The keystore uses a version, cipher, KDF or parameters this crate does not support.
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    /// No keystore file holds this address.
    #[error("no key for address {0} in the keystore directory")]
    NotFound(Address),
    /// A keystore file for this address already exists.
    #[error("a key for address {0} already exists in the keystore directory")]
    AlreadyExists(Address),
    /// Reading or writing keystore files failed.
    #[error("keystore I/O error: {0}")]
    Io(#[from] std::io::Error),
}
