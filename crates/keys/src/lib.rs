//! Key management for OpenLedger.
//!
//! This crate holds everything the node, its RPC server and its tools need to
//! handle Ethereum-style secp256k1 accounts:
//!
//! * [`SecretKey`]: a private key with its Ethereum address, signing of raw
//!   32-byte hashes and of EIP-191 `personal_sign` messages;
//! * transaction signing ([`sign_eip1559`], [`sign_legacy`]) producing alloy
//!   [`TxEnvelope`](alloy_consensus::TxEnvelope)s, and [`encode_2718`] for the
//!   bytes `eth_sendRawTransaction` takes;
//! * hierarchical deterministic keys (on `coins-bip39`/`coins-bip32`): BIP-39
//!   seeds with checksum validation ([`mnemonic_to_seed`]),
//!   BIP-32 derivation ([`derive_path`]) and the standard Ethereum account path
//!   ([`derive_account`]), with the well-known development mnemonic
//!   [`DEV_MNEMONIC`];
//! * Web3 Secret Storage (keystore v3) files as geth, ethers and MetaMask
//!   write them ([`encrypt_keystore`], [`decrypt_keystore`]) and a directory
//!   of such files ([`Keystore`]);
//! * signed HTTP requests to a node ([`request`]: the `X-OpenLedger-Auth`
//!   header a client sends, verified by `httpapi::auth`).
//!
//! Secret material is kept in [`k256::ecdsa::SigningKey`] (which wipes itself
//! on drop) and intermediate secrets (seeds, chain codes, derived encryption
//! keys) are zeroised when no longer needed. [`SecretKey`]'s `Debug` output
//! shows only the address, never the key.

mod ed25519;
mod error;
mod hd;
mod key;
mod keystore;
mod node_keys;
pub mod request;

pub use alloy_primitives::{Address, B256};
pub use ed25519::{ConsensusKey, verify_consensus};
pub use error::KeyError;
pub use hd::{DEV_MNEMONIC, derive_account, derive_account_with_passphrase, derive_path, mnemonic_to_seed};
pub use key::{SecretKey, encode_2718, sign_eip1559, sign_legacy};
pub use keystore::{KdfParams, Keystore, decrypt_keystore, encrypt_keystore, write_secret_file};
pub use node_keys::{NodeKeyError, NodeKeyId, NodeKeyKind, NodeKeys};
