//! `bank`: OPEN, the native token. Plain value transfers move it; at its system
//! address it also speaks an ERC-20 face (`IBank`), so wallets can show it and
//! contracts-style calls (`transfer`) emit `Transfer` logs.

pub mod genesis;
pub mod state_key;
pub mod view;

use alloy_sol_types::SolCall;
use primitives::abi::IBank::{self, IBankCalls};
use primitives::system::{Module, TREASURY, VALIDATOR_REWARD_POOL};
use primitives::{Amount, Bytes};

use crate::context::{CallCtx, CallFail};
use crate::{Overlay, revert};
pub use view::{Account, BankRead, BankWrite, Supply};

pub const ADDRESS: primitives::Address = Module::Bank.address();

/// Gas charged on top of intrinsic gas, per function.
pub fn gas_cost(call: &IBankCalls) -> u64 {
    match call {
        IBankCalls::transfer(_) => 12_000,
        _ => 2_000,
    }
}

/// Execute a call to the bank.
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IBankCalls) -> Result<Bytes, CallFail> {
    Ok(match call {
        IBankCalls::name(_) => IBank::nameCall::abi_encode_returns(&"OpenLedger".to_string()).into(),
        IBankCalls::symbol(_) => IBank::symbolCall::abi_encode_returns(&"OPEN".to_string()).into(),
        IBankCalls::decimals(_) => IBank::decimalsCall::abi_encode_returns(&(primitives::DECIMALS as u8)).into(),
        IBankCalls::totalSupply(_) => {
            IBank::totalSupplyCall::abi_encode_returns(&st.supply()?.total().to_u256()).into()
        }
        IBankCalls::balanceOf(c) => IBank::balanceOfCall::abi_encode_returns(&st.balance(&c.account)?.to_u256()).into(),
        IBankCalls::transfer(c) => {
            let amount = Amount::from_u256(c.amount).map_err(|_| revert(primitives::abi::Overflow {}))?;
            st.transfer(&ctx.sender, &c.to, amount)?;
            ctx.emit(ADDRESS, &IBank::Transfer { from: ctx.sender, to: c.to, value: c.amount });
            IBank::transferCall::abi_encode_returns(&true).into()
        }
        IBankCalls::supply(_) => {
            let s = st.supply()?;
            IBank::supplyCall::abi_encode_returns(&IBank::supplyReturn {
                total: s.total().to_u256(),
                genesis: s.genesis.to_u256(),
                issued: s.issued.to_u256(),
                burned: s.burned.to_u256(),
                treasury: st.balance(&TREASURY)?.to_u256(),
                rewardPool: st.balance(&VALIDATOR_REWARD_POOL)?.to_u256(),
            })
            .into()
        }
    })
}

/// Decode calldata for the bank.
pub fn decode(input: &[u8]) -> Result<IBankCalls, CallFail> {
    crate::executor::decode_calls::<IBankCalls>(input)
}
