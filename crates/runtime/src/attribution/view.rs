//! Typed reads of challenges, for this module, `inference` (finalization waits
//! for an open challenge) and the node (the verifier service, the operator's
//! automatic reveal).

use primitives::abi::AttributionChallenge;
use primitives::state::{StateError, StateRead};
use primitives::{Amount, B256};

use super::state_key;
use super::{AWAITING_REVEAL, AWAITING_VERDICT, Revealed};
use crate::codec::load;

pub trait AttributionRead {
    fn challenge(&self, receipt_hash: &B256) -> Result<Option<AttributionChallenge>, StateError>;
    /// Whether a challenge of the receipt's record is waiting for a reveal or a verdict.
    fn under_challenge(&self, receipt_hash: &B256) -> Result<bool, StateError>;
    fn revealed(&self, receipt_hash: &B256) -> Result<Option<Revealed>, StateError>;
    /// Unresolved challenges, oldest first.
    fn open_challenges(&self) -> Result<Vec<B256>, StateError>;
    /// Bonds held by the module.
    fn bonds(&self) -> Result<Amount, StateError>;
}

impl<S: StateRead + ?Sized> AttributionRead for S {
    fn challenge(&self, receipt_hash: &B256) -> Result<Option<AttributionChallenge>, StateError> {
        load(self, &state_key::challenge(receipt_hash))
    }
    fn under_challenge(&self, receipt_hash: &B256) -> Result<bool, StateError> {
        Ok(self.challenge(receipt_hash)?.is_some_and(|c| c.status == AWAITING_REVEAL || c.status == AWAITING_VERDICT))
    }
    fn revealed(&self, receipt_hash: &B256) -> Result<Option<Revealed>, StateError> {
        load(self, &state_key::revealed(receipt_hash))
    }
    fn open_challenges(&self) -> Result<Vec<B256>, StateError> {
        Ok(load::<Vec<B256>>(self, &state_key::open())?.unwrap_or_default())
    }
    fn bonds(&self) -> Result<Amount, StateError> {
        Ok(load::<u128>(self, &state_key::bonds())?.map(Amount).unwrap_or(Amount::ZERO))
    }
}
