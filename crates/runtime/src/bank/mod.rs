//! `bank`: OPEN, the native token. Plain value transfers move it; at its system
//! address it also speaks an ERC-20 face (`IBank`), so wallets can show it and
//! contracts-style calls (`transfer`) emit `Transfer` logs.

mod calls;
pub mod genesis;
pub mod records;
pub mod state_key;
pub mod view;

use primitives::abi::IBank::{self, IBankCalls};
use primitives::system::{Module, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Amount, U256};

use crate::context::{CallCtx, CallFail};
use crate::dispatch::{SystemModule, calls};
use crate::genesis::{Genesis, GenesisError};
use crate::{Overlay, revert};
pub use records::{Account, Supply};
pub use view::{BankRead, BankWrite};

pub const ADDRESS: primitives::Address = Module::Bank.address();

/// The bank as a system module.
pub struct Bank;

impl SystemModule for Bank {
    type Calls = IBankCalls;
    calls!(IBankCalls { name, symbol, decimals, totalSupply, balanceOf, transfer, supply });

    fn genesis(st: &mut Overlay, g: &Genesis) -> Result<(), GenesisError> {
        genesis::init(st, &g.alloc).map_err(|e| match e {
            CallFail::Revert(_) => GenesisError::Overflow,
            CallFail::Fatal(e) => GenesisError::State(e.0),
        })
    }
}
