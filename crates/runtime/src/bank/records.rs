//! Stored records of the bank: accounts (nonce and balance in 24 bytes) and
//! the supply counters.

use primitives::Amount;
use primitives::state::StateError;

/// An account: its nonce and balance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub nonce: u64,
    pub balance: Amount,
}

impl Account {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(&self.nonce.to_be_bytes());
        v.extend_from_slice(&self.balance.to_be_bytes());
        v
    }
    pub fn decode(b: &[u8]) -> Result<Account, StateError> {
        if b.len() != 24 {
            return Err(StateError(format!("bank account record of {} bytes", b.len())));
        }
        Ok(Account {
            nonce: u64::from_be_bytes(b[..8].try_into().unwrap()),
            balance: Amount::from_be_bytes(b[8..].try_into().unwrap()),
        })
    }
}

/// The terms of the supply equation the bank tracks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supply {
    pub genesis: Amount,
    pub issued: Amount,
    pub burned: Amount,
}

impl Supply {
    /// genesis + issued − burned.
    pub fn total(&self) -> Amount {
        Amount(self.genesis.0 + self.issued.0 - self.burned.0)
    }
}
