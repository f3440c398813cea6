//! Typed reads of governance state, for the node and the CLI.

use primitives::state::{StateError, StateRead};

use super::records::ProposalRecord;
use super::state_key;
use crate::codec::load;

/// Reads of governance state.
pub trait GovernanceRead {
    fn proposal(&self, id: u64) -> Result<Option<ProposalRecord>, StateError>;
    fn proposal_count(&self) -> Result<u64, StateError>;
}

impl<S: StateRead + ?Sized> GovernanceRead for S {
    fn proposal(&self, id: u64) -> Result<Option<ProposalRecord>, StateError> {
        load(self, &state_key::proposal(id))
    }
    fn proposal_count(&self) -> Result<u64, StateError> {
        Ok(load::<u64>(self, &state_key::count())?.unwrap_or(0))
    }
}
