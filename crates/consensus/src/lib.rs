//! BFT consensus for OpenLedger validators, on the Malachite engine (Tendermint).
//!
//! Malachite (`arc-malachitebft-*`, pinned `=0.8.2`) runs the protocol; this
//! crate gives it what it leaves to the application:
//! - [`context`]: our `Context` ([`OlContext`]): heights, validator addresses,
//!   block ids as values;
//! - [`messages`]: proposals, votes and proposal parts (a whole block in one
//!   part, signed by its proposer); the bytes signed are `primitives::consensus`'s;
//! - [`validator_set`]: the set of a height from `staking`'s record, voting power, and
//!   Tendermint's weighted round-robin choice of proposer;
//! - [`signing`]: ed25519 with the consensus keys staking registers;
//! - [`codec`]: the borsh wire/WAL/sync codec, bounded, refusing bad bytes;
//! - [`engine`]: starting an engine on TCP with explicit peers;
//! - [`app`]: the application loop that drives the chain ([`chain::ConsensusHost`]).
//!
//! The engine's app-channel API carries no application messages: the
//! application can only publish proposal parts (`NetworkMsg::PublishProposalPart`),
//! so transactions reach other validators by a gossip of our own.

pub mod app;
pub mod codec;
pub mod context;
pub mod engine;
pub mod evidence;
pub mod gossip;
pub mod messages;
pub mod signing;
pub mod types;
pub mod validator_set;

pub use codec::{CodecError, MAX_MESSAGE_BYTES, WireCodec};
pub use context::OlContext;
pub use engine::{EngineConfig, EngineError, loopback_addr, start_validator};
pub use messages::{MAX_BLOCK_BYTES, PartError, Proposal, ProposalPart, Vote};
pub use signing::{ConsensusSigner, ConsensusVerifier, Ed25519, Signature};
pub use types::{BlockId, Height, ValidatorAddress};
pub use validator_set::{Validator, ValidatorSet, ValidatorSetError};

/// Malachite's app-channel API, re-exported so callers use the pinned version.
pub use malachitebft_app_channel as app_channel;
