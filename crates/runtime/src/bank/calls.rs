//! The functions of `IBank`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of the bank's views.
const VIEW_GAS: u64 = 2_000;

impl Handler for IBank::nameCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<String, CallFail> {
        Ok("OpenLedger".to_string())
    }
}

impl Handler for IBank::symbolCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<String, CallFail> {
        Ok("OPEN".to_string())
    }
}

impl Handler for IBank::decimalsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<u8, CallFail> {
        Ok(primitives::DECIMALS as u8)
    }
}

impl Handler for IBank::totalSupplyCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<U256, CallFail> {
        Ok(st.supply()?.total().to_u256())
    }
}

impl Handler for IBank::balanceOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<U256, CallFail> {
        Ok(st.balance(&self.account)?.to_u256())
    }
}

impl Handler for IBank::transferCall {
    fn gas(&self) -> u64 {
        12_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<bool, CallFail> {
        let amount = Amount::from_u256(self.amount).map_err(|_| revert(primitives::abi::Overflow {}))?;
        st.transfer(&ctx.sender, &self.to, amount)?;
        ctx.emit(ADDRESS, &IBank::Transfer { from: ctx.sender, to: self.to, value: self.amount });
        Ok(true)
    }
}

impl Handler for IBank::supplyCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<IBank::supplyReturn, CallFail> {
        let s = st.supply()?;
        Ok(IBank::supplyReturn {
            total: s.total().to_u256(),
            genesis: s.genesis.to_u256(),
            issued: s.issued.to_u256(),
            burned: s.burned.to_u256(),
            treasury: st.balance(&TREASURY)?.to_u256(),
            rewardPool: st.balance(&VALIDATOR_REWARD_POOL)?.to_u256(),
        })
    }
}
