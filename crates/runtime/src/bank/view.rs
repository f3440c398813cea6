//! Typed reads and writes of bank state. Other modules move OPEN only through these.

use primitives::state::StateError;
use primitives::{Address, Amount};

use super::records::{Account, Supply};
use super::state_key;
use crate::Overlay;
use crate::context::CallFail;

/// Reads of bank state.
pub trait BankRead {
    fn account(&self, a: &Address) -> Result<Account, StateError>;
    fn balance(&self, a: &Address) -> Result<Amount, StateError> {
        Ok(self.account(a)?.balance)
    }
    fn supply(&self) -> Result<Supply, StateError>;
}

impl<S: primitives::state::StateRead + ?Sized> BankRead for S {
    fn account(&self, a: &Address) -> Result<Account, StateError> {
        match self.get(&state_key::account(a))? {
            Some(b) => Account::decode(&b),
            None => Ok(Account::default()),
        }
    }
    fn supply(&self) -> Result<Supply, StateError> {
        match self.get(&state_key::supply())? {
            Some(b) if b.len() == 48 => Ok(Supply {
                genesis: Amount::from_be_bytes(b[..16].try_into().unwrap()),
                issued: Amount::from_be_bytes(b[16..32].try_into().unwrap()),
                burned: Amount::from_be_bytes(b[32..].try_into().unwrap()),
            }),
            Some(_) => Err(StateError("bank supply record".into())),
            None => Ok(Supply::default()),
        }
    }
}

/// Writes of bank state. Every movement of OPEN goes through `transfer`, `mint` or `burn`,
/// so the supply equation holds by construction.
pub trait BankWrite {
    fn put_account(&mut self, a: &Address, acct: Account);
    fn put_supply(&mut self, s: Supply);
    /// Move `amount` from `from` to `to`; reverts with InsufficientBalance.
    fn transfer(&mut self, from: &Address, to: &Address, amount: Amount) -> Result<(), CallFail>;
    /// Create `amount` for `to` (counted as issued).
    fn mint(&mut self, to: &Address, amount: Amount) -> Result<(), CallFail>;
    /// Destroy `amount` held by `from` (counted as burned).
    fn burn(&mut self, from: &Address, amount: Amount) -> Result<(), CallFail>;
}

impl BankWrite for Overlay<'_> {
    fn put_account(&mut self, a: &Address, acct: Account) {
        self.put(state_key::account(a), Some(acct.encode()));
    }
    fn put_supply(&mut self, s: Supply) {
        let mut v = Vec::with_capacity(48);
        v.extend_from_slice(&s.genesis.to_be_bytes());
        v.extend_from_slice(&s.issued.to_be_bytes());
        v.extend_from_slice(&s.burned.to_be_bytes());
        self.put(state_key::supply(), Some(v));
    }
    fn transfer(&mut self, from: &Address, to: &Address, amount: Amount) -> Result<(), CallFail> {
        if amount == Amount::ZERO || from == to {
            // Still check the sender could pay, as ERC-20 does.
            let bal = self.balance(from)?;
            if bal < amount {
                return Err(insufficient(bal, amount));
            }
            return Ok(());
        }
        let mut f = self.account(from)?;
        f.balance = f.balance.checked_sub(amount).map_err(|_| insufficient(f.balance, amount))?;
        let mut t = self.account(to)?;
        t.balance = t.balance.checked_add(amount).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        self.put_account(from, f);
        self.put_account(to, t);
        Ok(())
    }
    fn mint(&mut self, to: &Address, amount: Amount) -> Result<(), CallFail> {
        let mut s = self.supply()?;
        s.issued = s.issued.checked_add(amount).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        let mut t = self.account(to)?;
        t.balance = t.balance.checked_add(amount).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        self.put_account(to, t);
        self.put_supply(s);
        Ok(())
    }
    fn burn(&mut self, from: &Address, amount: Amount) -> Result<(), CallFail> {
        let mut f = self.account(from)?;
        f.balance = f.balance.checked_sub(amount).map_err(|_| insufficient(f.balance, amount))?;
        let mut s = self.supply()?;
        s.burned = s.burned.checked_add(amount).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        self.put_account(from, f);
        self.put_supply(s);
        Ok(())
    }
}

fn insufficient(available: Amount, required: Amount) -> CallFail {
    crate::revert(primitives::abi::InsufficientBalance { available: available.to_u256(), required: required.to_u256() })
}
