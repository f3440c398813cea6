//! Stored records as ABI-encoded values: one canonical encoding, decoded with
//! validation by alloy, shared by every module that stores structs or lists.

use alloy_sol_types::SolValue;
use primitives::state::{StateError, StateRead};

use crate::Overlay;

/// Read and decode `key`, or `None` if absent.
pub fn load<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
    st: &(impl StateRead + ?Sized),
    key: &[u8],
) -> Result<Option<T>, StateError> {
    match st.get(key)? {
        Some(b) => {
            T::abi_decode(&b).map(Some).map_err(|e| StateError(format!("record {}: {e}", String::from_utf8_lossy(key))))
        }
        None => Ok(None),
    }
}

/// Encode and write `value` at `key`.
pub fn store<T: SolValue>(st: &mut Overlay, key: Vec<u8>, value: &T) {
    st.put(key, Some(value.abi_encode()));
}
