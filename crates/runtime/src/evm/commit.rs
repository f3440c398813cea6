//! Applying what revm changed to the block's overlay: accounts to the bank,
//! code and storage to `evm/` keys, then the writes of the module calls that
//! stand.

use std::collections::BTreeMap;

use primitives::state::StateError;
use primitives::{Address, Amount, U256, keccak256};
use revm::state::{Account as EvmAccount, EvmState};

use super::natives::MARKER;
use super::state_key;
use crate::Overlay;
use crate::bank::BankWrite;
use crate::bank::records::Account;

/// Write a transaction's EVM state changes and its standing module writes.
pub(crate) fn commit(
    st: &mut Overlay,
    state: &EvmState,
    native: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> Result<(), StateError> {
    // Sorted, so the overlay's undo log (and nothing else) is in a fixed order.
    let mut touched: Vec<(&Address, &EvmAccount)> =
        state.iter().filter(|(a, acc)| **a != MARKER && acc.is_touched()).collect();
    touched.sort_by_key(|(a, _)| **a);
    for (a, acc) in touched {
        commit_account(st, a, acc)?;
    }
    for (k, v) in native {
        st.put(k, v);
    }
    Ok(())
}

fn commit_account(st: &mut Overlay, a: &Address, acc: &EvmAccount) -> Result<(), StateError> {
    let bank_key = crate::bank::state_key::account(a);
    if acc.is_selfdestructed() {
        // Cancun (EIP-6780): only a contract created in this transaction is
        // destroyed, so its storage was never written outside it.
        st.put(bank_key, None);
        st.put(state_key::code_hash(a), None);
        return Ok(());
    }
    if acc.is_empty() {
        // EIP-161: a touched empty account does not exist.
        st.put(bank_key, None);
    } else {
        let balance =
            Amount::from_u256(acc.info.balance).map_err(|_| StateError(format!("balance of {a} exceeds 2^128")))?;
        st.put_account(a, Account { nonce: acc.info.nonce, balance });
    }
    if acc.is_created()
        && let Some(code) = acc.info.code.as_ref()
    {
        let bytes = code.original_bytes();
        if !bytes.is_empty() {
            let hash = keccak256(&bytes);
            st.put(state_key::bytecode(&hash), Some(bytes.to_vec()));
            st.put(state_key::code_hash(a), Some(hash.to_vec()));
        }
    }
    for (slot, v) in acc.changed_storage_slots() {
        let key = state_key::storage(a, slot);
        let value = v.present_value;
        st.put(key, (value != U256::ZERO).then(|| value.to_be_bytes::<32>().to_vec()));
    }
    Ok(())
}
