//! Canonical primitives of OpenLedger: the types, encodings and identifiers that
//! every other crate agrees on.
//!
//! Nothing here does I/O. Everything that ends up in a hash, a signature or the
//! state tree has exactly one encoding, defined in this crate:
//! - [`amount`]: OPEN amounts (u128 base units, 18 decimals, checked arithmetic);
//! - [`hash`]: keccak256 for transactions and blocks, blake3 for content;
//! - [`tx`]: Ethereum EIP-2718 transactions, decoded and sender-recovered with alloy;
//! - [`block`]: headers (Ethereum's header layout), bodies, receipts and logs;
//! - [`consensus`]: the bytes validators sign for votes and proposals;
//! - [`system`]: the fixed addresses of the system contracts and the EIP-712 domain rule;
//! - [`abi`]: the Solidity interfaces of the system contracts (`sol!`);
//! - [`rows`]: Datanet rows, row ids, rows roots and version roots;
//! - [`model_hash`]: model and adapter hashes over tensors;
//! - [`model_id`]: model ids and their text form `m<id>`;
//! - [`history`]: the subjects (addresses, Datanets, models, contributions) a
//!   transaction or log is indexed under for account histories.

pub mod abi;
pub mod amount;
pub mod block;
pub mod consensus;
pub mod hash;
pub mod history;
pub mod merkle;
pub mod model_hash;
pub mod model_id;
pub mod rows;
pub mod state;
pub mod system;
pub mod trace;
pub mod tx;

pub use alloy_primitives::{Address, B256, Bloom, Bytes, Log, LogData, U256, address, b256, keccak256};
pub use amount::{Amount, AmountError, DECIMALS, ONE_OPEN};
pub use block::{Block, Header, Receipt};
pub use hash::content_hash;
pub use model_id::ModelId;
pub use system::{Module, SYSTEM_MODULES};
pub use tx::{SignedTransaction, TxError};

/// Chain id of the development network (the local-chain convention of Hardhat and Anvil).
pub const DEV_CHAIN_ID: u64 = 31337;
