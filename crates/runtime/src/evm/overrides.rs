//! `eth_call`'s state override set: accounts changed for one call only.

use std::collections::{BTreeMap, BTreeSet};

use primitives::state::{StateError, StateRead};
use primitives::{Address, Amount, Bytes, U256, keccak256};

use super::state_key;
use crate::bank::BankRead;
use crate::bank::records::Account;

/// One account's changes (go-ethereum's `OverrideAccount`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub address: Address,
    pub balance: Option<Amount>,
    pub nonce: Option<u64>,
    pub code: Option<Bytes>,
    /// The whole storage: every slot not listed reads zero.
    pub storage: Option<Vec<(U256, U256)>>,
    /// Slots changed, the others kept.
    pub storage_diff: Vec<(U256, U256)>,
}

/// A state with some accounts changed over it.
pub struct Overridden<'a> {
    base: &'a dyn StateRead,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Accounts whose storage was replaced as a whole.
    cleared: BTreeSet<Address>,
}

impl<'a> Overridden<'a> {
    pub fn new(base: &'a dyn StateRead, changes: &[AccountChange]) -> Result<Self, StateError> {
        let mut o = Overridden { base, writes: BTreeMap::new(), cleared: BTreeSet::new() };
        for c in changes {
            let a = &c.address;
            if c.balance.is_some() || c.nonce.is_some() {
                let mut acct: Account = base.account(a)?;
                acct.balance = c.balance.unwrap_or(acct.balance);
                acct.nonce = c.nonce.unwrap_or(acct.nonce);
                o.writes.insert(crate::bank::state_key::account(a), Some(acct.encode()));
            }
            if let Some(code) = &c.code {
                if code.is_empty() {
                    o.writes.insert(state_key::code_hash(a), None);
                } else {
                    let h = keccak256(code);
                    o.writes.insert(state_key::bytecode(&h), Some(code.to_vec()));
                    o.writes.insert(state_key::code_hash(a), Some(h.to_vec()));
                }
            }
            if let Some(all) = &c.storage {
                o.cleared.insert(*a);
                o.set_slots(a, all);
            }
            o.set_slots(a, &c.storage_diff);
        }
        Ok(o)
    }

    fn set_slots(&mut self, a: &Address, slots: &[(U256, U256)]) {
        for (slot, v) in slots {
            let value = (!v.is_zero()).then(|| v.to_be_bytes::<32>().to_vec());
            self.writes.insert(state_key::storage(a, slot), value);
        }
    }
}

impl StateRead for Overridden<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        if let Some(rest) = key.strip_prefix(b"evm/s/")
            && rest.len() == 52
            && self.cleared.contains(&Address::from_slice(&rest[..20]))
        {
            return Ok(None);
        }
        self.base.get(key)
    }
}
