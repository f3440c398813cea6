//! Typed reads and writes of the assets module, and the one entry other
//! modules use: paying a model's earnings.

use primitives::abi::IAssets;
use primitives::state::{StateError, StateRead};
use primitives::{Address, Amount, U256};

use super::records::{HolderRecord, ShareRecord};
use super::{ADDRESS, SCALE, model_asset, state_key};
use crate::Overlay;
use crate::bank::BankWrite;
use crate::codec::{load, store};
use crate::context::{CallCtx, CallFail};

pub trait AssetsRead {
    /// Share tokens made so far.
    fn share_token_count(&self) -> Result<u32, StateError>;
    /// The share token of `asset`, if it was split.
    fn share_token_of(&self, asset: &U256) -> Result<Option<u32>, StateError>;
    fn share_token(&self, n: u32) -> Result<Option<ShareRecord>, StateError>;
    fn holder(&self, n: u32, a: &Address) -> Result<HolderRecord, StateError>;
    fn share_allowance(&self, n: u32, owner: &Address, spender: &Address) -> Result<U256, StateError>;
    /// Whether `a` earns: its own choice, else whether it has no code.
    fn earns(&self, a: &Address) -> Result<bool, StateError>;
}

impl<S: StateRead + ?Sized> AssetsRead for S {
    fn share_token_count(&self) -> Result<u32, StateError> {
        Ok(self.get(&state_key::count())?.map(|b| u32_of(&b)).transpose()?.unwrap_or(0))
    }
    fn share_token_of(&self, asset: &U256) -> Result<Option<u32>, StateError> {
        self.get(&state_key::share_of(asset))?.map(|b| u32_of(&b)).transpose()
    }
    fn share_token(&self, n: u32) -> Result<Option<ShareRecord>, StateError> {
        load(self, &state_key::token(n))
    }
    fn holder(&self, n: u32, a: &Address) -> Result<HolderRecord, StateError> {
        Ok(load(self, &state_key::holder(n, a))?.unwrap_or(HolderRecord {
            balance: U256::ZERO,
            debt: U256::ZERO,
            owed: U256::ZERO,
            earning: false,
        }))
    }
    fn share_allowance(&self, n: u32, owner: &Address, spender: &Address) -> Result<U256, StateError> {
        Ok(load::<U256>(self, &state_key::allowance(n, owner, spender))?.unwrap_or(U256::ZERO))
    }
    fn earns(&self, a: &Address) -> Result<bool, StateError> {
        match self.get(&state_key::earning(a))? {
            Some(b) => Ok(b.first() == Some(&1)),
            None => Ok(self.get(&crate::evm::state_key::code_hash(a))?.is_none()),
        }
    }
}

fn u32_of(b: &[u8]) -> Result<u32, StateError> {
    Ok(u32::from_be_bytes(b.try_into().map_err(|_| StateError("assets: a u32 record".into()))?))
}

/// What a holder has earned and not yet settled, at the token's index.
pub fn pending(t: &ShareRecord, h: &HolderRecord) -> U256 {
    if h.earning { h.balance * (t.acc - h.debt) / SCALE } else { U256::ZERO }
}

pub trait AssetsWrite {
    fn put_share_token(&mut self, n: u32, t: &ShareRecord);
    fn put_holder(&mut self, n: u32, a: &Address, h: &HolderRecord);
    fn put_share_allowance(&mut self, n: u32, owner: &Address, spender: &Address, v: U256);
    /// Pay model `model`'s earnings of `amount` from `from`: into its share
    /// token's index if it was split and some of its shares earn (true), else
    /// nothing moves (false: the caller pays the owner).
    fn pay_model_earnings(
        &mut self,
        ctx: &mut CallCtx,
        from: &Address,
        model: u64,
        amount: Amount,
    ) -> Result<bool, CallFail>;
}

impl AssetsWrite for Overlay<'_> {
    fn put_share_token(&mut self, n: u32, t: &ShareRecord) {
        store(self, state_key::token(n), t);
    }
    fn put_holder(&mut self, n: u32, a: &Address, h: &HolderRecord) {
        store(self, state_key::holder(n, a), h);
    }
    fn put_share_allowance(&mut self, n: u32, owner: &Address, spender: &Address, v: U256) {
        let key = state_key::allowance(n, owner, spender);
        if v.is_zero() { self.put(key, None) } else { store(self, key, &v) }
    }
    fn pay_model_earnings(
        &mut self,
        ctx: &mut CallCtx,
        from: &Address,
        model: u64,
        amount: Amount,
    ) -> Result<bool, CallFail> {
        let asset = model_asset(model);
        let Some(n) = self.share_token_of(&asset)? else { return Ok(false) };
        let mut t = self.share_token(n)?.ok_or_else(|| StateError(format!("share token {n} is missing")))?;
        if t.earningSupply.is_zero() || amount == Amount::ZERO {
            return Ok(false);
        }
        self.transfer(from, &ADDRESS, amount)?;
        // In OPEN × SCALE, with the last division's remainder carried: the
        // increments times the earning supplies they were made for sum to
        // exactly the deposits (× SCALE) minus `dust`, so the holders'
        // rounded-down shares never add up to more than was deposited.
        let total = amount.to_u256() * SCALE + t.dust;
        let inc = total / t.earningSupply;
        t.dust = total - inc * t.earningSupply;
        t.acc += inc;
        t.held += amount.to_u256();
        self.put_share_token(n, &t);
        let to_holders = inc * t.earningSupply / SCALE;
        ctx.emit(
            ADDRESS,
            &IAssets::EarningsDeposited { assetId: asset, amount: amount.to_u256(), toHolders: to_holders },
        );
        Ok(true)
    }
}
