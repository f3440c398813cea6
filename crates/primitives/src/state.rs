//! The one interface through which the runtime reads state. Storage implements
//! it over the database; the runtime layers its overlay on top.

/// A failure of the underlying store while reading state. Fatal for the block
/// being built: it is never turned into a transaction's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StateError(pub String);

/// Read access to state at one version.
pub trait StateRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}
